import json
import subprocess
import sys

import pytest

from kdlab.__main__ import main


def run_cli(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "kdlab", *arguments], capture_output=True, text=True, cwd=cwd)


def test_distill_prints_a_table_and_writes_json(tmp_path, capsys):
    output = tmp_path / "results.json"
    code = main(["distill", "--data-root", str(tmp_path), "--teacher-epochs", "3", "--epochs", "5",
                 "--seeds", "2", "--transfer-size", "60", "--no-progress", "--json", str(output)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "baseline" in printed and "distilled" in printed and "mean ± sd" in printed
    results = json.loads(output.read_text())
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
    (["distill", "--temperature", "-1"], "temperature must be a finite number above 0"),
    (["distill", "--temperature", "hot"], "expected a real number"),
    (["distill", "--alpha", "1.5"], "alpha must lie in [0, 1]"),
    (["distill", "--seeds", "0"], "at least 1"),
    (["distill", "--device", "tpu"], "unknown device"),
    (["distill", "--student", "enormous"], "invalid choice"),
    (["fly"], "invalid choice"),
    (["teacher", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
])
def test_bad_arguments_give_a_usage_error_not_a_traceback(arguments, message):
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


def test_a_transfer_set_larger_than_the_data_is_refused_before_any_training(tmp_path):
    result = run_cli("distill", "--transfer-size", "5000", "--data-root", str(tmp_path))
    assert result.returncode == 2
    assert "more than the 1297 training examples" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # no teacher was trained first


def test_a_text_too_short_to_train_on_is_an_error_not_a_traceback(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("def f(): return 1\n" * 3)
    result = run_cli("distill", "--text", str(short), "--data-root", str(tmp_path), "--steps", "1",
                     "--teacher-steps", "1", "--seeds", "1", "--no-progress")
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_teacher_refuses_the_text_corpus_with_a_pointer_to_distill(capsys):
    assert main(["teacher", "--dataset", "pydoc-text"]) == 2
    assert "distill --dataset pydoc-text" in capsys.readouterr().err


def test_missing_dataset_offline_says_how_to_get_it(tmp_path):
    result = run_cli("distill", "--dataset", "mnist", "--offline", "--data-root", str(tmp_path))
    assert result.returncode == 1
    assert "python -m kdlab download mnist" in result.stderr
    assert "Traceback" not in result.stderr
