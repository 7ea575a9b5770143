import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kdlab import experiment
from kdlab.__main__ import main
from kdlab.checkpoints import save_checkpoint
from kdlab.experiment import TEACHER_EPOCHS
from kdlab.models import build_model, teacher_spec

QUICK = ["--teacher-epochs", "1", "--epochs", "1", "--seeds", "2", "--transfer-size", "50"]  # seconds, not minutes


def test_distill_prints_a_table_and_writes_json(tmp_path, capsys):
    output = tmp_path / "results.json"
    code = main(["distill", "--data-root", str(tmp_path), "--teacher-epochs", "3", "--epochs", "5",
                 "--seeds", "2", "--transfer-size", "60", "--no-progress", "--json", str(output)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "baseline" in printed and "distilled" in printed and "mean ± sd" in printed
    assert "distilled - baseline, paired:" in printed and "95 % CI" in printed
    results = json.loads(output.read_text())
    differences = [run["distilled"] - run["baseline"] for run in results["runs"]]
    assert results["gain"]["mean"] == pytest.approx(sum(differences) / 2)
    assert results["gain"]["ci_low"] <= results["gain"]["mean"] <= results["gain"]["ci_high"]
    assert results["verdict"] in ("helps", "hurts", "inconclusive") and results["verdict"] in printed
    assert [run["seed"] for run in results["runs"]] == [0, 1]
    assert 0 < results["teacher"]["accuracy"] <= 1
    for name in ("baseline", "distilled"):
        values = [run[name] for run in results["runs"]]
        assert results[name]["mean"] == pytest.approx(sum(values) / 2)
    assert results["settings"]["transfer_size"] == 60
    assert results["settings"]["scored_on"] == "test" and results["settings"]["validation"] == 300  # the defaults
    assert results["settings"]["pool"] == results["teacher"]["pool"] == 1297 - 300
    assert results["gain"]["covers"] == "seeds and test images" and results["gain"]["examples"] == 500
    assert results["gain"]["se_seeds"] >= 0 and results["gain"]["se_examples"] >= 0
    assert "2 seeds and 500 test images" in printed
    assert "teacher trained on 997 of 1297 training images" in printed and "scored on the 500 test images" in printed
    assert 0 <= results["teacher"]["validation_accuracy"] <= 1
    assert (tmp_path / "teacher-digits-epochs3-seed0.pt").exists()  # cached for the next run, apart from the default
    assert results["compared"] == "distilled - baseline" and results["settings"]["method"] == "kd"


def test_distill_method_dkd_compares_dkd_with_kd_and_says_so(tmp_path, capsys):
    output = tmp_path / "results.json"
    assert main(["distill", "--method", "dkd", "--nckd-weight", "2", "--data-root", str(tmp_path), *QUICK,
                 "--no-progress", "--json", str(output)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(output.read_text())
    assert results["compared"] == "dkd - kd"
    assert results["settings"] | {"method": "dkd", "tckd_weight": 1.0, "nckd_weight": 2.0} == results["settings"]
    assert results["gain"]["mean"] == pytest.approx(sum(run["dkd"] - run["kd"] for run in results["runs"]) / 2)
    assert results["gain"]["covers"] == "seeds and test images" and results["gain"]["examples"] == 500
    assert results["verdict"] in ("helps", "hurts", "inconclusive") and "dkd - kd, paired: " in printed
    for name, control, treated in (("kd_gain", "baseline", "kd"), ("dkd_gain", "baseline", "dkd")):
        assert results[name]["mean"] == pytest.approx(
            sum(run[treated] - run[control] for run in results["runs"]) / 2)
    assert [run["seed"] for run in results["runs"]] == [0, 1]
    assert {"baseline", "kd", "dkd", "kd_agreement", "dkd_loss"} <= set(results["runs"][0])
    assert "KD and DKD (tckd_weight=1.0, nckd_weight=2.0)" in printed and "kd - baseline, paired:" in printed


def test_distill_method_dkd_takes_the_datasets_beta_by_default(tmp_path):
    output = tmp_path / "results.json"
    assert main(["distill", "--method", "dkd", "--data-root", str(tmp_path), *QUICK, "--seeds", "1", "--no-progress",
                 "--json", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["settings"]["nckd_weight"] == results["nckd_weight"] == experiment.SETTINGS["digits"].nckd_weight
    assert results["gain"] is None and results["verdict"] == "inconclusive"  # one seed: no interval


@pytest.mark.parametrize("arguments, message", [
    (["--nckd-weight", "2"], "--nckd-weight applies only to --method dkd"),
    (["--method", "kd", "--tckd-weight", "2", "--nckd-weight", "1"], "--nckd-weight, --tckd-weight apply only to"),
    (["--dataset", "pydoc-text", "--method", "dkd"], "--method dkd distills image classifiers"),
    (["--text", "notes.txt", "--method", "dkd"], "--method dkd distills image classifiers"),
])
def test_dkd_options_out_of_place_are_refused_before_any_work(tmp_path, capsys, arguments, message):
    assert main(["distill", "--data-root", str(tmp_path), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_teacher_is_reused_from_its_checkpoint(tmp_path, capsys):
    arguments = ["teacher", "--data-root", str(tmp_path), "--epochs", "2", "--no-progress"]
    assert main(arguments) == 0
    first = capsys.readouterr().out
    stamp = (tmp_path / "teacher-digits-epochs2-seed0.pt").stat().st_mtime_ns
    assert main(arguments) == 0
    assert capsys.readouterr().out == first
    assert (tmp_path / "teacher-digits-epochs2-seed0.pt").stat().st_mtime_ns == stamp


def test_corrupt_teacher_checkpoint_is_reported_and_rebuilt(tmp_path, capsys):
    (tmp_path / "teacher-digits-epochs1-seed0.pt").write_bytes(b"garbage")
    assert main(["teacher", "--data-root", str(tmp_path), "--epochs", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "is corrupt or not a kdlab checkpoint (UnpicklingError); rebuilding it." in printed
    assert "delete it" not in printed  # kdlab rebuilds it: the user has nothing to do


def save_default_teacher(root, accuracy=0.98, epochs=TEACHER_EPOCHS):
    """A stand-in for the real 30-epoch digits teacher (never trained in tests): untrained weights whose
    metadata says they are the default teacher, trained on the 997 pool images, so that a run that loads it
    prints `accuracy`. With other `epochs`, the same for the quick teacher in its own file."""
    spec = teacher_spec((1, 8, 8), 10)
    name = "digits" if epochs == TEACHER_EPOCHS else f"digits-epochs{epochs}"
    return save_checkpoint(root / f"teacher-{name}-seed0.pt", build_model(spec, seed=0), spec, dataset="digits",
                           seed=0, epochs=epochs, jitter=0, validation=300, pool=997, accuracy=accuracy,
                           validation_accuracy=0.97)


def test_a_quick_teacher_gets_its_own_file_and_never_replaces_the_default_one(tmp_path, capsys):
    default = save_default_teacher(tmp_path)
    before = default.read_bytes()
    assert main(["teacher", "--data-root", str(tmp_path), "--epochs", "1", "--no-progress"]) == 0
    assert "(1 epochs, seed 0)" in capsys.readouterr().out
    assert default.read_bytes() == before
    assert (tmp_path / "teacher-digits-epochs1-seed0.pt").exists()
    assert main(["teacher", "--data-root", str(tmp_path), "--no-progress"]) == 0  # loaded, not trained again
    assert capsys.readouterr().out == ("teacher on digits (997 training images; 300 held out): validation accuracy "
                                       f"0.9700, test accuracy 0.9800 ({TEACHER_EPOCHS} epochs, seed 0)\n")


def test_a_teacher_whose_metadata_is_hostile_is_reported_and_retrained(tmp_path, capsys):
    save_default_teacher(tmp_path, accuracy="high", epochs=1)  # the quick teacher's file: one epoch to retrain, not 30
    code = main(["distill", "--data-root", str(tmp_path), *QUICK, "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "its metadata has accuracy='high', not a number in [0, 1]; rebuilding it." in printed
    assert "distilled - baseline, paired:" in printed


@pytest.mark.parametrize("arguments, message", [
    (["distill", "--temperature", "-1"], "T must be a number in [0.05, 100], got -1"),
    (["distill", "-T", "1e20"], "T must be a number in [0.05, 100], got 1e+20"),
    (["distill", "-T", "1e-300"], "T must be a number in [0.05, 100]"),
    (["distill", "--temperature", "hot"], "expected a real number"),
    (["distill", "--alpha", "1.5"], "alpha must be a finite number in [0, 1]"),
    (["distill", "--method", "fkd"], "invalid choice: 'fkd'"),
    (["distill", "--method", "dkd", "--nckd-weight", "-1"], "--nckd-weight: must be a finite number >= 0, got -1.0"),
    (["distill", "--method", "dkd", "--nckd-weight", "nan"], "--nckd-weight: must be a finite number >= 0, got nan"),
    (["distill", "--method", "dkd", "--tckd-weight", "inf"], "--tckd-weight: must be a finite number >= 0, got inf"),
    (["distill", "--method", "dkd", "--tckd-weight", "heavy"], "expected a real number"),
    (["teacher", "--seed", "99999999999999999999999"], "the seed must be a whole number from 0 to 2147483647"),
    (["distill", "--seeds", "0"], "at least 1"),
    (["distill", "--epochs", "3.5"], "expected a whole number, got '3.5'"),
    (["distill", "--device", "tpu"], "unknown device"),
    (["distill", "--student", "enormous"], "invalid choice"),
    (["fly"], "invalid choice"),
    (["teacher", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
])
def test_bad_arguments_give_a_usage_error_not_a_traceback(arguments, message, capsys):
    assert usage_error(arguments) == 2
    errors = capsys.readouterr().err
    assert message in errors and "usage:" in errors


def usage_error(arguments) -> int:
    """main(arguments) in this process (a child process per case costs seconds of imports): argparse's exit code."""
    with pytest.raises(SystemExit) as exit:
        main(arguments)
    return exit.value.code


def test_a_usage_error_from_the_command_line_is_one_message_not_a_traceback(run_cli):
    result = run_cli("distill", "--temperature", "hot")
    assert result.returncode == 2 and "expected a real number" in result.stderr and "usage:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("arguments, message", [
    (["--dataset", "pydoc-text", "--epochs", "5"], "--epochs only apply to image datasets"),
    (["--text", "notes.txt", "--student", "tiny", "--transfer-size", "9"], "--student, --transfer-size only apply"),
    (["--steps", "10"], "--steps only apply to --dataset pydoc-text or --text"),
    (["--dataset", "mnist", "--text", "notes.txt"], "cannot be combined with --dataset mnist"),
])
def test_options_of_the_other_experiment_are_refused_not_ignored(tmp_path, capsys, arguments, message):
    assert main(["distill", "--data-root", str(tmp_path), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before any data or teacher work


def test_a_transfer_set_larger_than_the_data_is_refused_before_any_training(tmp_path, capsys):
    assert main(["distill", "--transfer-size", "1000", "--data-root", str(tmp_path)]) == 2
    assert "more than the 997 training examples left after 300 are held out" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # no teacher was trained first


def test_a_text_too_short_to_train_on_is_an_error_not_a_traceback(tmp_path, run_cli):
    short = tmp_path / "short.txt"
    short.write_text("def f(): return 1\n" * 3)
    result = run_cli("distill", "--text", str(short), "--data-root", str(tmp_path), "--steps", "1",
                     "--teacher-steps", "1", "--seeds", "1", "--no-progress")
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_teacher_refuses_the_text_corpus_with_a_pointer_to_distill(capsys):
    assert main(["teacher", "--dataset", "pydoc-text"]) == 2
    assert "distill --dataset pydoc-text" in capsys.readouterr().err


def test_missing_dataset_offline_says_how_to_get_it(tmp_path, capsys):
    assert main(["distill", "--dataset", "mnist", "--offline", "--data-root", str(tmp_path)]) == 1
    assert "python -m kdlab download mnist" in capsys.readouterr().err


def test_score_on_validation_scores_on_the_held_out_training_images_never_the_test_set(tmp_path, capsys):
    output = tmp_path / "results.json"
    assert main(["distill", "--data-root", str(tmp_path), "--teacher-epochs", "2", "--epochs", "2", "--seeds", "2",
                 "--score-on", "validation", "--no-progress", "--json", str(output)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(output.read_text())
    assert results["settings"]["scored_on"] == "validation" and results["settings"]["validation"] == 300
    assert results["gain"]["covers"] == "seeds and validation images" and results["gain"]["examples"] == 300
    assert "scored on the 300 validation images" in printed and "2 seeds and 300 validation images" in printed
    assert "test images" not in printed
    for run in results["runs"]:  # accuracies counted out of the 300 held-out training digits
        assert run["baseline"] * 300 == pytest.approx(round(run["baseline"] * 300), abs=1e-3)


def test_validation_sets_how_many_images_are_held_out_from_the_teacher_and_the_students(tmp_path):
    output = tmp_path / "results.json"
    assert main(["distill", "--data-root", str(tmp_path), "--validation", "200", "--score-on", "validation", *QUICK,
                 "--no-progress", "--json", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["settings"]["validation"] == 200 and results["settings"]["pool"] == 1097
    assert results["teacher"]["validation"] == 200 and results["teacher"]["pool"] == 1097
    assert results["gain"]["examples"] == 200
    assert (tmp_path / "teacher-digits-epochs1-validation200-seed0.pt").exists()  # never the default split's file


def test_teacher_validation_trains_the_teacher_that_distill_validation_then_loads(tmp_path, capsys):
    assert main(["teacher", "--data-root", str(tmp_path), "--epochs", "1", "--validation", "200", "--no-progress"]) == 0
    assert "(1097 training images; 200 held out)" in capsys.readouterr().out
    teacher = tmp_path / "teacher-digits-epochs1-validation200-seed0.pt"
    stamp = teacher.stat().st_mtime_ns
    assert main(["distill", "--data-root", str(tmp_path), "--validation", "200", *QUICK, "--no-progress"]) == 0
    assert teacher.stat().st_mtime_ns == stamp and sorted(path.name for path in tmp_path.iterdir()) == [teacher.name]
    assert main(["teacher", "--data-root", str(tmp_path), "--validation", "1297"]) == 2
    assert "--validation 1297: hold out between 1 and 1296" in capsys.readouterr().err


def test_a_validation_set_as_large_as_the_training_set_is_refused_before_any_training(tmp_path, capsys):
    assert main(["distill", "--data-root", str(tmp_path), "--validation", "1297", *QUICK, "--no-progress"]) == 2
    assert "--validation 1297: hold out between 1 and 1296 of digits's 1297" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_score_on_only_takes_test_or_validation(capsys):
    assert usage_error(["distill", "--score-on", "train"]) == 2
    assert "invalid choice: 'train'" in capsys.readouterr().err


def _fifo(root):
    os.mkfifo(root.parent / "results.fifo")
    return ["--json", str(root.parent / "results.fifo")]


def _symlink(root):
    (root.parent / "results.json").write_text("{}")
    (root.parent / "link.json").symlink_to(root.parent / "results.json")
    return ["--json", str(root.parent / "link.json")]


def _socket(root):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root.parent / "results.sock"))
    server.close()
    return ["--json", str(root.parent / "results.sock")]


@pytest.mark.parametrize("make_bad_output, message", [
    (lambda root: ["--json", str(root)], "is a folder"),
    (lambda root: ["--json", "/proc/kdlab/results.json"], "cannot write into /proc/kdlab"),
    (lambda root: ["--json", str(root / "teacher-digits-epochs1-seed0.pt")], "is a file kdlab manages"),
    (lambda root: ["--json", str(root / "grid-digits-seed0.json")], "is a file kdlab manages"),
    (lambda root: ["--json", "data/teacher-digits-seed0.interrupted-epoch3.pt"], "is a file kdlab manages"),
    (lambda root: ["--json", "/dev/null"], "/dev/null is not a regular file"),
    (_fifo, "results.fifo is not a regular file"),
    (_socket, "results.sock is not a regular file"),
    (_symlink, "link.json is a symbolic link"),
    (lambda root: ["--json", ""], "--json needs a file name"),
    (lambda root: ["--data-root", ""], "--data-root needs a folder name"),
    (lambda root: ["--data-root", str(root / "teacher-digits-epochs1-seed0.pt")], "is a file"),
])
def test_bad_outputs_are_refused_before_any_training(tmp_path, make_bad_output, message, capsys, monkeypatch):
    root = tmp_path / "data"  # also the data root of a run in tmp_path that gives no --data-root
    assert main(["teacher", "--data-root", str(root), "--epochs", "1", "--no-progress"]) == 0
    checkpoint = root / "teacher-digits-epochs1-seed0.pt"
    before = checkpoint.read_bytes()
    arguments = ["distill", "--data-root", str(root), *make_bad_output(root), *QUICK]
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert usage_error(arguments) == 2 and message in capsys.readouterr().err
    assert checkpoint.read_bytes() == before and sorted(path.name for path in root.iterdir()) == [checkpoint.name]
    assert Path("/dev/null").is_char_device()
    assert {path.name for path in tmp_path.iterdir()} <= {"data", "link.json", "results.fifo", "results.json",
                                                          "results.sock"}  # nothing written beside them


# `python -m kdlab ARGUMENTS` with a progress line every 0.1 s instead of every 5 (kdlab.progress.LOG_SECONDS, in
# a log), so that a marker is on stderr as soon as training starts instead of after 5 s of it
FREQUENT_PROGRESS = ("import runpy, kdlab.progress; kdlab.progress.LOG_SECONDS = 0.1; "
                     "runpy.run_module('kdlab', run_name='__main__', alter_sys=True)")


def interrupt_when(arguments, marker, cwd, *, signals=(signal.SIGINT,), count=1):
    """Run the CLI with Python's own SIGINT handling (the default disposition, even when this test runs as a
    background job, which starts with SIGINT ignored), send `signals`, one after the other, once `marker` (a
    progress bar's name) is on stderr `count` times and a progress line has followed it, and return (exit code,
    stdout, stderr, seconds from the first signal to the exit)."""
    child = subprocess.Popen([sys.executable, "-c", FREQUENT_PROGRESS, *arguments], cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(child.stderr.fileno(), 4096), b"")),
                              daemon=True)
    reader.start()

    def progress_lines():
        return b"".join(chunks).decode(errors="replace").count(" epochs, ")

    def wait_until(condition):
        deadline = time.monotonic() + 120
        while not condition() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    wait_until(lambda: b"".join(chunks).decode(errors="replace").count(marker) >= count)
    seen = progress_lines()
    wait_until(lambda: progress_lines() > seen)  # one more progress line: well inside training
    assert child.poll() is None, "the run ended before it could be interrupted"
    sent = time.monotonic()
    for number in signals:
        child.send_signal(number)
        time.sleep(0.3)  # two signals pending at once are handled in signal-number order, SIGINT before SIGTERM
    code = child.wait(timeout=30)
    seconds = time.monotonic() - sent
    reader.join(timeout=5)
    return code, child.stdout.read().decode(), b"".join(chunks).decode(errors="replace"), seconds


def test_ctrl_c_during_the_teacher_stops_everything_and_exits_130(tmp_path):
    output = tmp_path / "results.json"
    code, printed, errors, seconds = interrupt_when(
        ["distill", "--data-root", str(tmp_path), "--teacher-epochs", "100000", "--epochs", "20", "--seeds", "2",
         "--json", str(output)], marker="fit", cwd=tmp_path)
    assert code == 130 and seconds < 10
    assert "the teacher's training stopped after" in errors and "of 100000 epochs" in errors
    assert "baseline" not in printed  # no student ran on the half-trained teacher
    assert not list(tmp_path.glob("teacher-*-seed0.pt"))
    results = json.loads(output.read_text())
    assert "interrupted" in results and results["runs"] == []


def test_ctrl_c_during_a_student_reports_no_unfinished_seed(tmp_path):
    assert main(["teacher", "--data-root", str(tmp_path), "--epochs", "2", "--no-progress"]) == 0
    output = tmp_path / "results.json"
    code, printed, errors, seconds = interrupt_when(
        ["distill", "--data-root", str(tmp_path), "--teacher-epochs", "2", "--epochs", "100000", "--seeds", "3",
         "--json", str(output)], marker="fit", cwd=tmp_path)  # the teacher is cached: this is seed 0's baseline
    assert code == 130 and seconds < 10
    assert "seed 0: the baseline student's training stopped after" in errors
    results = json.loads(output.read_text())
    assert results["runs"] == [] and results["settings"]["seeds"] == 3 and "baseline student" in results["interrupted"]
    assert "helps" not in printed and "distilled - baseline" not in printed


def test_ctrl_c_during_teacher_keeps_the_weights_apart_and_the_old_checkpoint(tmp_path):
    assert main(["teacher", "--data-root", str(tmp_path), "--epochs", "1", "--no-progress"]) == 0
    checkpoint = tmp_path / "teacher-digits-epochs100000-seed0.pt"  # stands in for one that --retrain replaces
    (tmp_path / "teacher-digits-epochs1-seed0.pt").rename(checkpoint)
    before = checkpoint.read_bytes()
    output = tmp_path / "teacher.json"
    code, printed, errors, _ = interrupt_when(
        ["teacher", "--retrain", "--data-root", str(tmp_path), "--epochs", "100000", "--json", str(output)],
        marker="/100000 epochs", cwd=tmp_path)  # a progress line: at least one epoch done, weights to keep
    assert code == 130 and "test accuracy" not in printed
    assert checkpoint.read_bytes() == before
    kept = list(tmp_path.glob("teacher-digits-epochs100000-seed0.interrupted-epoch*.pt"))
    assert len(kept) == 1 and str(kept[0]) in errors
    results = json.loads(output.read_text())
    assert 0 < results["teacher"]["epochs_done"] < 100000 and "interrupted" in results


def test_sigterm_after_a_finished_seed_reports_it_writes_the_json_and_exits_143(tmp_path):
    assert main(["teacher", "--data-root", str(tmp_path), "--epochs", "1", "--no-progress"]) == 0
    output = tmp_path / "results.json"
    code, printed, errors, seconds = interrupt_when(  # SIGTERM, then a Ctrl-C while shutting down
        ["distill", "--data-root", str(tmp_path), "--teacher-epochs", "1", "--epochs", "300", "--seeds", "50",
         "--transfer-size", "50", "--json", str(output)], marker="distill: 300/300 epochs", cwd=tmp_path,
        signals=(signal.SIGTERM, signal.SIGINT))  # seed 0's distilled student, the second of its pair, finished
    assert code == 143 and seconds < 10
    assert "Traceback" not in errors and "SIGTERM" in errors
    results = json.loads(output.read_text())
    assert 1 <= len(results["runs"]) < 50 and "interrupted" in results
    assert printed.count("\n") >= len(results["runs"]) + 1 and "baseline:" in printed  # the finished seeds' table


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MB tmpfs: room for results, not for a digits teacher (6 MB). Needs root and mount."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "full"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("mount -t tmpfs failed (no CAP_SYS_ADMIN in this container?)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_teacher_that_cannot_be_saved_is_reported_and_the_run_finishes(full_disk, capsys):
    output = full_disk / "results.json"  # main() in this process: a child process would cost seconds of imports
    code = main(["distill", "--data-root", str(full_disk), *QUICK, "--no-progress", "--json", str(output)])
    result = capsys.readouterr()
    assert code == 1 and "Traceback" not in result.err
    teacher = full_disk / "teacher-digits-epochs1-seed0.pt"
    assert f"Could not save the model to {teacher} (No space left on device)" in result.err
    assert "distilled - baseline, paired:" in result.out
    assert len(json.loads(output.read_text())["runs"]) == 2
    assert f"results were printed but not all saved: {teacher} (No space left on device)" in result.err
    assert sorted(path.name for path in full_disk.iterdir()) == ["results.json"]


def test_json_that_cannot_be_written_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    assert main(["teacher", "--data-root", str(tmp_path), "--epochs", "1", "--no-progress"]) == 0
    capsys.readouterr()

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", disk_full)  # what a full disk can first say on a write that was buffered
    output = tmp_path / "results.json"
    assert main(["distill", "--data-root", str(tmp_path), *QUICK, "--no-progress", "--json", str(output)]) == 1
    printed = capsys.readouterr()
    assert "distilled - baseline, paired:" in printed.out and not output.exists()
    assert printed.err == (f"Could not save the results to {output} (No space left on device).\n"
                           f"error: results were printed but not all saved: {output} (No space left on device)\n")


def test_a_folder_where_the_teacher_goes_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "teacher-digits-epochs1-seed0.pt").mkdir()
    assert main(["distill", "--data-root", str(tmp_path), *QUICK, "--no-progress"]) == 1
    printed = capsys.readouterr()
    assert printed.err == (f"error: {tmp_path / 'teacher-digits-epochs1-seed0.pt'} is a folder, not the model's "
                           "file; move it away or choose another data root\n")
    assert printed.out == ""
