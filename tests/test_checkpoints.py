import errno
import math
import os
import re
import threading
import time
from pathlib import Path

import pytest
import torch

import kdlab
from kdlab.checkpoints import (
    FORMAT,
    CheckpointError,
    cache_path,
    collect_unsaved,
    is_cache_file,
    is_checkpoint,
    load_checkpoint,
    load_or_compute,
    save_checkpoint,
    tensors_sha256,
    write_text_atomically,
)
from kdlab.models import build_model, mlp_spec

SPEC = mlp_spec((1, 8, 8), hidden=(12,))


def saved(tmp_path, **metadata):
    model = build_model(SPEC, seed=0)
    path = save_checkpoint(tmp_path / "sub" / "model.pt", model, SPEC, dataset="digits", seed=0, **metadata)
    return model, path


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    model, path = saved(tmp_path, accuracy=0.97)
    loaded, metadata = load_checkpoint(path, expect_spec=SPEC, expect={"dataset": "digits"})
    assert not loaded.training
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert metadata == {"kdlab_version": kdlab.__version__, "dataset": "digits", "seed": 0, "accuracy": 0.97}
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left behind


def test_loading_uses_weights_only(tmp_path, monkeypatch):
    _, path = saved(tmp_path)
    calls = []
    original = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or original(*a, **k))
    load_checkpoint(path)
    assert calls and calls[0]["weights_only"] is True


def test_a_failed_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    _, path = saved(tmp_path, accuracy=0.5)
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, build_model(SPEC, seed=1), SPEC, accuracy=0.9)
    monkeypatch.undo()
    assert load_checkpoint(path)[1]["accuracy"] == 0.5
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "corrupt"),
    (lambda p: p.write_bytes(b"not a checkpoint at all"), "corrupt"),
    (lambda p: torch.save({"weights": torch.zeros(1)}, p), "not a kdlab checkpoint"),
    (lambda p: p.unlink(), "no checkpoint"),
])
def test_damaged_or_missing_checkpoints_give_clear_errors(tmp_path, damage, message):
    _, path = saved(tmp_path)
    damage(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_mismatches_are_reported(tmp_path):
    _, path = saved(tmp_path)
    with pytest.raises(CheckpointError, match="different model"):
        load_checkpoint(path, expect_spec=mlp_spec((1, 8, 8), hidden=(13,)))
    with pytest.raises(CheckpointError, match="dataset='digits', expected 'mnist'"):
        load_checkpoint(path, expect={"dataset": "mnist"})
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["1.weight"] = torch.zeros(3, 3)
    payload["sha256"] = tensors_sha256(payload["state_dict"])
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit") as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)  # torch's multi-line message, folded onto one line


def reused(path, expect):
    """What load_or_compute gives for a checkpoint read with `expect`: the (model, metadata) or "computed"."""
    written = []
    result = load_or_compute(path, lambda path: load_checkpoint(path, expect_spec=SPEC, expect=expect),
                             lambda: "computed", lambda path, result: written.append(path))
    assert written == ([] if result != "computed" else [Path(path)])  # only what was computed is written
    return result


def test_load_or_compute_misses_silently_on_no_file_and_says_why_on_a_mismatch(tmp_path, capsys):
    assert reused(tmp_path / "none.pt", {}) == "computed"
    assert capsys.readouterr().out == ""
    _, path = saved(tmp_path)
    model, metadata = reused(path, {"dataset": "digits"})
    assert metadata["dataset"] == "digits"
    assert reused(path, {"seed": 1}) == "computed"
    printed = capsys.readouterr().out
    assert "Not reusing the saved model" in printed and "seed=0, expected 1" in printed


def test_load_or_compute_skips_a_good_file_when_told_to_retrain(tmp_path):
    _, path = saved(tmp_path)
    assert load_or_compute(path, lambda path: "read", lambda: "computed", lambda path, result: None,
                           retrain=True) == "computed"


class _TwoBuilders:
    """Two load_or_compute calls that miss the same file at once, each in a thread of its own (flock treats two
    opens of the lock file as two holders, as it does two processes). The first one's computation runs until
    `finish` is set; `outcome` holds what each call returned or raised."""

    def __init__(self, path, first_fails=False):
        self.path, self.first_fails = path, first_fails
        self.computing, self.finish = threading.Event(), threading.Event()
        self.computed, self.outcome = [], {}

    def _compute(self, name):
        self.computed.append(name)
        if name == "first":
            self.computing.set()
            assert self.finish.wait(60)
            if self.first_fails:
                raise KeyboardInterrupt
        return name

    def _call(self, name):
        try:
            self.outcome[name] = load_or_compute(self.path, lambda path: path.read_text(),
                                                 lambda: self._compute(name), write_text_atomically, what="grid")
        except BaseException as error:  # the first one's Ctrl-C is the point of one test
            self.outcome[name] = type(error).__name__

    def run(self, capsys):
        first = threading.Thread(target=self._call, args=("first",))
        first.start()
        assert self.computing.wait(60)
        second = threading.Thread(target=self._call, args=("second",))
        second.start()
        printed, deadline = "", time.monotonic() + 60
        while "Waiting for another process" not in printed and time.monotonic() < deadline:
            time.sleep(0.01)
            printed += capsys.readouterr().out
        self.finish.set()
        first.join(60)
        second.join(60)
        return printed


def test_a_second_caller_missing_the_same_cache_waits_for_the_first_and_reads_its_file(tmp_path, capsys):
    builders = _TwoBuilders(tmp_path / "grid.json")
    printed = builders.run(capsys)
    assert f"Waiting for another process that is building the grid at {builders.path}." in printed
    assert builders.computed == ["first"] and builders.outcome == {"first": "first", "second": "first"}
    assert [path.name for path in tmp_path.iterdir()] == ["grid.json"]  # no lock file left behind


def test_when_the_first_builder_stops_the_one_waiting_builds_the_file_itself(tmp_path, capsys):
    builders = _TwoBuilders(tmp_path / "grid.json", first_fails=True)
    builders.run(capsys)
    assert builders.computed == ["first", "second"]
    assert builders.outcome == {"first": "KeyboardInterrupt", "second": "second"}
    assert builders.path.read_text() == "second" and [path.name for path in tmp_path.iterdir()] == ["grid.json"]


def test_cache_path_is_the_one_naming_rule():
    assert cache_path("data", "teacher", "digits", seed=3) == Path("data/teacher-digits-seed3.pt")
    assert cache_path("data", "grid", "mnist", seed=0, suffix=".json") == Path("data/grid-mnist-seed0.json")


def test_is_cache_file_knows_every_name_kdlab_writes_in_its_data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (tmp_path / "elsewhere").symlink_to(root, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for name in ("teacher-digits-seed0.pt", "grid-digits-seed0.json", "lm-teacher-pydoc-0123abcd-seed2.pt",
                 "teacher-digits-epochs1-seed0.interrupted-epoch3.pt"):
        assert is_cache_file(root / name, root) and is_cache_file(Path("data") / name, root)
        assert is_cache_file(tmp_path / "elsewhere" / name, root)  # the same folder by another path
        assert not is_cache_file(tmp_path / name, root)  # kdlab caches nothing outside its data root
    for name in ("results.json", "seed0.json", "my-seedling.json", ".teacher-digits-seed0.pt.1a2b.tmp"):
        assert not is_cache_file(root / name, root)


@pytest.mark.parametrize("make", [
    lambda path: os.mkfifo(path),
    lambda path: path.symlink_to(path.with_name("elsewhere.json")),
    lambda path: path.mkdir(),
])
def test_an_atomic_write_never_replaces_what_is_not_a_regular_file(tmp_path, make):
    path = tmp_path / "results.json"
    make(path)
    kind = path.lstat().st_mode
    with pytest.raises(OSError, match="kdlab replaces only regular files"):
        write_text_atomically(path, "{}")
    assert path.lstat().st_mode == kind and not list(tmp_path.glob(".*.tmp"))


def test_a_save_reaches_the_disk_before_it_replaces_the_old_file(tmp_path, monkeypatch):
    calls = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda descriptor: (calls.append("fsync"), fsync(descriptor))[1])
    monkeypatch.setattr(os, "replace", lambda *paths: (calls.append("replace"), replace(*paths))[1])
    write_text_atomically(tmp_path / "results.json", "{}")
    assert calls == ["fsync", "replace", "fsync"]  # the file's bytes, the rename, then the folder's entry


def test_a_result_that_cannot_be_saved_is_kept_and_reported_in_one_line(tmp_path, capsys):
    def disk_full(path, result):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    with collect_unsaved() as unsaved:
        assert load_or_compute(tmp_path / "model.pt", None, lambda: "computed", disk_full, what="model") == "computed"
    assert capsys.readouterr().err == (f"Could not save the model to {tmp_path / 'model.pt'} "
                                       "(No space left on device); carrying on with it in memory.\n")
    assert unsaved == [f"{tmp_path / 'model.pt'} (No space left on device)"]


def test_a_folder_in_the_way_of_a_cache_is_refused_before_computing(tmp_path):
    (tmp_path / "model.pt").mkdir()
    computed = []
    with pytest.raises(ValueError, match="model.pt is a folder, not the model's file; move it away or choose"):
        load_or_compute(tmp_path / "model.pt", None, lambda: computed.append(1), None, what="model")
    assert not computed


@pytest.mark.parametrize("error", [RecursionError("maximum recursion depth exceeded"), TypeError("list indices"),
                                   KeyError("accuracy")])
def test_a_cache_that_parses_into_nonsense_is_rebuilt(tmp_path, capsys, error):
    path = tmp_path / "grid.json"
    path.write_text("[]")

    def read(path):
        raise error
    assert load_or_compute(path, read, lambda: "computed", lambda path, result: None) == "computed"
    assert capsys.readouterr().out.startswith("Not reusing the saved model: ")


@pytest.mark.parametrize("metadata, message", [
    ({"accuracy": "high"}, "accuracy='high', not a number in [0, 1]"),
    ({"accuracy": math.nan}, "accuracy=nan, not a number in [0, 1]"),
    ({"accuracy": 1.5}, "accuracy=1.5, not a number in [0, 1]"),
    ({"epochs": 30.0}, "epochs=30.0, not a whole number"),
    ({"seed": True}, "seed=True, not a whole number"),
    ({"dataset": ["digits"]}, "dataset=['digits'], not a text"),
    ({"validation_loss": math.inf}, "validation_loss=inf, not a finite number"),
    ({"curve": [0.5, "x"]}, "curve=[0.5, 'x'], not a list of numbers in [0, 1]"),
    ({"history": "long"}, "history='long', not a dictionary"),
])
def test_metadata_of_the_wrong_type_is_a_checkpoint_error_and_retrained(tmp_path, capsys, metadata, message):
    _, path = saved(tmp_path)
    _rewrite(path, lambda payload: payload["metadata"].update(metadata))  # the SHA-256 covers only the weights
    with pytest.raises(CheckpointError, match=f"is malformed: its metadata has {re.escape(message)}"):
        load_checkpoint(path)
    assert reused(path, {}) == "computed"
    assert message in capsys.readouterr().out


def test_the_checkpoint_carries_the_sha256_of_its_tensors(tmp_path):
    model, path = saved(tmp_path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT == "kdlab-checkpoint/2"
    assert payload["sha256"] == tensors_sha256(model.state_dict())
    other = build_model(SPEC, seed=1).state_dict()
    assert tensors_sha256(other) != payload["sha256"]
    assert tensors_sha256(dict(reversed(list(other.items())))) == tensors_sha256(other)  # order-independent
    bf16 = {"w": torch.ones(2, 3)}
    assert tensors_sha256({"w": bf16["w"].bfloat16()}) != tensors_sha256(bf16)  # the dtype counts


def test_flipped_bytes_inside_the_weights_are_caught(tmp_path):
    model, path = saved(tmp_path)
    weights = model.state_dict()["1.weight"].numpy().tobytes()  # 12 x 64 float32, stored raw in the zip
    data = path.read_bytes()
    start = data.index(weights)
    path.write_bytes(data[:start] + bytes(b ^ 0x01 for b in data[start:start + 400]) + data[start + 400:])
    assert torch.load(path, weights_only=True)["format"] == FORMAT  # torch itself loads it silently
    with pytest.raises(CheckpointError, match="is damaged: its weights do not match their SHA-256"):
        load_checkpoint(path)


def _rewrite(path, change):
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


@pytest.mark.parametrize("change, message", [
    (lambda p: p.pop("spec"), "is malformed: it has no model spec"),
    (lambda p: p.update(spec=["mlp"]), "is malformed: it has no model spec"),
    (lambda p: p.update(metadata=[1, 2]), "is malformed: it has no metadata dictionary"),
    (lambda p: p.update(state_dict=[torch.zeros(1)]), "is malformed: it has no dictionary of named tensors"),
    (lambda p: p.update(state_dict={"w": 3}), "is malformed: it has no dictionary of named tensors"),
    (lambda p: p.pop("sha256"), "is malformed: it has no SHA-256"),
    (lambda p: p.update(sha256="0" * 64), "is damaged"),
    (lambda p: (p.pop("sha256"), p.update(format="kdlab-checkpoint/1")),
     "outdated format kdlab-checkpoint/1 "),
    (lambda p: p.update(format=None), "not a kdlab checkpoint"),
])
def test_malformed_checkpoints_are_one_line_errors_and_get_retrained(tmp_path, capsys, change, message):
    _, path = saved(tmp_path)
    _rewrite(path, change)
    with pytest.raises(CheckpointError, match=message) as error:
        load_checkpoint(path, expect_spec=SPEC)
    assert "\n" not in str(error.value)
    assert reused(path, {"dataset": "digits"}) == "computed"
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and printed.startswith("Not reusing the saved model")
    assert message in printed and printed.endswith("; rebuilding it.\n") and "delete it" not in printed


@pytest.mark.parametrize("spec", [{"family": "no such model"}, {**SPEC, "hidden": "twelve"}, {}])
def test_a_spec_kdlab_cannot_build_is_a_one_line_error(tmp_path, spec):
    _, path = saved(tmp_path)
    _rewrite(path, lambda p: p.update(spec=spec))
    with pytest.raises(CheckpointError, match="do not fit the model they claim to be") as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)


def test_foreign_files_are_one_line_errors(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a kdlab checkpoint"):
        load_checkpoint(path)


class _Malicious:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "spec": _Malicious(marker)}, path)
    with pytest.raises(CheckpointError, match="corrupt or not a kdlab checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.fixture
def umask():
    """Set a umask for one test, and give the old one back."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_are_written_with_the_users_umask(tmp_path, umask, mask):
    umask(mask)
    _, path = saved(tmp_path)
    text = write_text_atomically(tmp_path / "results.json", "{}")
    assert path.stat().st_mode & 0o777 == text.stat().st_mode & 0o777 == 0o666 & ~mask


def _temporary(path, name, age_seconds):
    temporary = path.parent / name
    temporary.write_bytes(b"half a checkpoint")
    stamp = time.time() - age_seconds
    os.utime(temporary, (stamp, stamp))
    return temporary


def test_the_next_save_removes_only_stale_temporaries_of_the_same_target(tmp_path):
    import fcntl

    _, path = saved(tmp_path)
    orphan = _temporary(path, ".model.pt.k1ll3d_a.tmp", 3600)  # a save killed an hour ago
    starting = _temporary(path, ".model.pt.y0ung123.tmp", 1)  # a writer that has just started
    running = _temporary(path, ".model.pt.l0cked12.tmp", 3600)  # a slow writer, still holding its lock
    other_target = _temporary(path, ".model.pt.backup.0rphan12.tmp", 3600)  # belongs to model.pt.backup
    with open(running, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)
        save_checkpoint(path, build_model(SPEC, seed=1), SPEC)
    assert not orphan.exists()
    assert starting.exists() and running.exists() and other_target.exists()
    reloaded = load_checkpoint(path)[0].state_dict()["1.weight"]
    assert reloaded.equal(build_model(SPEC, seed=1).state_dict()["1.weight"])


def test_write_text_atomically_replaces_whole_files_or_nothing(tmp_path):
    path = write_text_atomically(tmp_path / "results.json", '{"old": 1}')
    assert path.read_text() == '{"old": 1}'
    with pytest.raises(UnicodeEncodeError):
        write_text_atomically(path, "\ud800 cannot be encoded")
    assert path.read_text() == '{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    write_text_atomically(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"


def test_is_checkpoint_recognises_checkpoints_and_nothing_else(tmp_path):
    _, path = saved(tmp_path)
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(path.read_bytes())
    results = write_text_atomically(tmp_path / "results.json", "{}")
    assert is_checkpoint(path) and is_checkpoint(renamed)
    assert not is_checkpoint(results)
    assert not is_checkpoint(tmp_path / "missing.pt") and not is_checkpoint(tmp_path)
