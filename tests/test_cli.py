import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from kdlab.__main__ import main


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
    assert (tmp_path / "teacher-digits-seed0.pt").exists()  # the teacher is cached for the next run


def test_teacher_is_reused_from_its_checkpoint(tmp_path, capsys):
    arguments = ["teacher", "--data-root", str(tmp_path), "--epochs", "2", "--no-progress"]
    assert main(arguments) == 0
    first = capsys.readouterr().out
    stamp = (tmp_path / "teacher-digits-seed0.pt").stat().st_mtime_ns
    assert main(arguments) == 0
    assert capsys.readouterr().out == first
    assert (tmp_path / "teacher-digits-seed0.pt").stat().st_mtime_ns == stamp


def test_corrupt_teacher_checkpoint_is_reported_and_replaced(tmp_path, capsys):
    (tmp_path / "teacher-digits-seed0.pt").write_bytes(b"garbage")
    assert main(["teacher", "--data-root", str(tmp_path), "--epochs", "1", "--no-progress"]) == 0
    assert "corrupt" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["distill", "--temperature", "-1"], "T must be a number in [0.05, 100], got -1"),
    (["distill", "-T", "1e20"], "T must be a number in [0.05, 100], got 1e+20"),
    (["distill", "-T", "1e-300"], "T must be a number in [0.05, 100]"),
    (["distill", "--temperature", "hot"], "expected a real number"),
    (["distill", "--alpha", "1.5"], "alpha must be a finite number in [0, 1]"),
    (["teacher", "--seed", "99999999999999999999999"], "the seed must be a whole number from 0 to 2147483647"),
    (["distill", "--seeds", "0"], "at least 1"),
    (["distill", "--device", "tpu"], "unknown device"),
    (["distill", "--student", "enormous"], "invalid choice"),
    (["fly"], "invalid choice"),
    (["teacher", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
])
def test_bad_arguments_give_a_usage_error_not_a_traceback(arguments, message, run_cli):
    result = run_cli(*arguments)
    assert result.returncode == 2
    assert message in result.stderr and "usage:" in result.stderr
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


def test_a_transfer_set_larger_than_the_data_is_refused_before_any_training(tmp_path, run_cli):
    result = run_cli("distill", "--transfer-size", "5000", "--data-root", str(tmp_path))
    assert result.returncode == 2
    assert "more than the 1297 training examples" in result.stderr and "Traceback" not in result.stderr
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


def test_missing_dataset_offline_says_how_to_get_it(tmp_path, run_cli):
    result = run_cli("distill", "--dataset", "mnist", "--offline", "--data-root", str(tmp_path))
    assert result.returncode == 1
    assert "python -m kdlab download mnist" in result.stderr
    assert "Traceback" not in result.stderr


def test_validation_scores_on_held_out_training_examples_never_the_test_set(tmp_path):
    output = tmp_path / "results.json"
    assert main(["distill", "--data-root", str(tmp_path), "--teacher-epochs", "2", "--epochs", "2", "--seeds", "2",
                 "--validation", "300", "--no-progress", "--json", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["settings"]["scored_on"] == "validation"
    for run in results["runs"]:  # accuracies counted out of the 300 held-out training digits
        assert run["baseline"] * 300 == pytest.approx(round(run["baseline"] * 300), abs=1e-3)


@pytest.mark.parametrize("make_bad_output, message", [
    (lambda root: ["--json", str(root)], "is a folder"),
    (lambda root: ["--json", "/proc/kdlab/results.json"], "cannot write into /proc/kdlab"),
    (lambda root: ["--json", str(root / "teacher-digits-seed0.pt")], "is a kdlab checkpoint"),
    (lambda root: ["--data-root", str(root / "teacher-digits-seed0.pt")], "is a file"),
])
def test_bad_outputs_are_refused_before_any_training(tmp_path, make_bad_output, message, run_cli):
    root = tmp_path / "data"
    assert main(["teacher", "--data-root", str(root), "--epochs", "1", "--no-progress"]) == 0
    checkpoint = root / "teacher-digits-seed0.pt"
    before = checkpoint.read_bytes()
    result = run_cli("distill", "--data-root", str(root), *make_bad_output(root), "--epochs", "500")
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert checkpoint.read_bytes() == before and sorted(path.name for path in root.iterdir()) == [checkpoint.name]


def interrupt_when(arguments, marker, cwd):
    """Run the CLI with Python's own SIGINT handling (the default disposition, even when this test runs as a
    background job, which starts with SIGINT ignored), send SIGINT once `marker` (a progress bar's name) is
    on stderr, and return (exit code, stdout, stderr, seconds from the signal to the exit)."""
    child = subprocess.Popen([sys.executable, "-m", "kdlab", *arguments], cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(child.stderr.fileno(), 4096), b"")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while marker not in b"".join(chunks).decode(errors="replace") and child.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.poll() is None, "the run ended before it could be interrupted"
    time.sleep(0.5)  # well inside training
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
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
    assert not (tmp_path / "teacher-digits-seed0.pt").exists()
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
    checkpoint = tmp_path / "teacher-digits-seed0.pt"
    before = checkpoint.read_bytes()
    output = tmp_path / "teacher.json"
    code, printed, errors, _ = interrupt_when(
        ["teacher", "--retrain", "--data-root", str(tmp_path), "--epochs", "100000", "--json", str(output)],
        marker="/100000 epochs", cwd=tmp_path)  # a progress line: at least one epoch done, weights to keep
    assert code == 130 and "test accuracy" not in printed
    assert checkpoint.read_bytes() == before
    kept = list(tmp_path.glob("teacher-digits-seed0.interrupted-epoch*.pt"))
    assert len(kept) == 1 and str(kept[0]) in errors
    results = json.loads(output.read_text())
    assert 0 < results["teacher"]["epochs_done"] < 100000 and "interrupted" in results
