import pytest
import torch

import kdlab
from kdlab.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
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
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)


def test_reuse_checkpoint_misses_silently_on_no_file_and_says_why_on_a_mismatch(tmp_path, capsys):
    from kdlab.checkpoints import reuse_checkpoint

    assert reuse_checkpoint(tmp_path / "none.pt", expect_spec=SPEC, expect={}) is None
    assert capsys.readouterr().out == ""
    _, path = saved(tmp_path)
    model, metadata = reuse_checkpoint(path, expect_spec=SPEC, expect={"dataset": "digits"})
    assert metadata["dataset"] == "digits"
    assert reuse_checkpoint(path, expect_spec=SPEC, expect={"seed": 1}) is None
    printed = capsys.readouterr().out
    assert "Not reusing the saved model" in printed and "seed=0, expected 1" in printed
