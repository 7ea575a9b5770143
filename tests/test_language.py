import json

import pytest
import torch

from kdlab import checkpoints, experiment, language
from kdlab.__main__ import main
from kdlab.checkpoints import cache_path, load_checkpoint, save_checkpoint
from kdlab.experiment import compare_language_students, load_or_train_language_teacher
from kdlab.interrupt import TrainingInterrupted
from kdlab.language import (
    cache_teacher_logits,
    next_character_logits,
    sample,
    text_windows,
    train_language_model,
    validation_loss,
)
from kdlab.losses import kd_loss
from kdlab.models import build_model, count_parameters, gpt_spec
from kdlab.text import load_corpus

TINY = {"width": 16, "depth": 1, "heads": 2}


def teacher_path(root, corpus, seed):
    """Where the text experiment caches `corpus`'s teacher, by the rule its docstring states."""
    return root / f"lm-teacher-{corpus.name}-{corpus.fingerprint[:12]}-seed{seed}.pt"


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "abc.txt"
    path.write_text("the cat sat on the mat. " * 120, encoding="utf-8")
    return load_corpus(path)


def test_causal_mask_hides_the_future():
    model = build_model(gpt_spec(20, context=12, width=16, depth=2, heads=4), seed=0).eval()
    ids = torch.randint(20, (3, 12), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 20
    with torch.no_grad():
        before, after = model(ids), model(changed)
    torch.testing.assert_close(after[:, :7], before[:, :7], rtol=0, atol=1e-6)  # earlier outputs: untouched
    assert (after[:, 7:] - before[:, 7:]).abs().amax(dim=-1).min() > 1e-4  # from position 7 on: changed


def test_gpt_models_build_reproducibly_and_survive_a_checkpoint(tmp_path):
    spec = gpt_spec(30, context=8, **TINY)
    first, second, other = build_model(spec, seed=1), build_model(spec, seed=1), build_model(spec, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert not torch.equal(first.head.weight, other.head.weight)
    save_checkpoint(tmp_path / "gpt.pt", first, spec, note="test")
    loaded, metadata = load_checkpoint(tmp_path / "gpt.pt", expect_spec=spec)
    ids = torch.randint(30, (2, 8))
    torch.testing.assert_close(loaded(ids), first.eval()(ids))
    assert count_parameters(loaded) == count_parameters(first) and metadata["note"] == "test"


def test_gpt_rejects_bad_shapes():
    with pytest.raises(ValueError, match="multiple of heads"):
        gpt_spec(30, width=10, heads=4)
    model = build_model(gpt_spec(30, context=8, **TINY))
    with pytest.raises(ValueError, match="at most 8 characters"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_windows_predict_every_character_once():
    ids = torch.arange(23)
    windows = text_windows(ids, context=5)
    assert windows.shape == (4, 6)
    assert torch.equal(windows[:, 1:].flatten(), ids[1:21])  # targets: each character once, in order
    assert torch.equal(windows[1:, 0], windows[:-1, -1])  # a window starts where the last one ended
    with pytest.raises(ValueError, match="fewer than one window"):
        text_windows(ids[:5], context=5)


def test_training_learns_a_repetitive_text_and_is_reproducible(small_corpus):
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    windows = text_windows(small_corpus.train, 16)
    validation = text_windows(small_corpus.validation, 16)
    runs = []
    for _ in range(2):
        model = build_model(spec, seed=0)
        runs.append(train_language_model(model, windows, validation, steps=60, batch_size=16, seed=3,
                                         evaluations=3, progress=False, device="cpu"))
    assert runs[0].validation_loss == runs[1].validation_loss
    assert runs[0].step == [20, 40, 60]
    assert runs[0].validation_loss[-1] < 0.5 * runs[0].validation_loss[0]
    assert runs[0].validation_loss[-1] == pytest.approx(validation_loss(model, validation, device="cpu"))


def test_distilling_with_cached_logits_pulls_the_student_towards_the_teacher(small_corpus):
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    windows = text_windows(small_corpus.train, 16)
    validation = text_windows(small_corpus.validation, 16)
    teacher = build_model(spec, seed=9)
    train_language_model(teacher, windows, validation, steps=60, batch_size=16, progress=False, device="cpu")
    cache = cache_teacher_logits(teacher, windows, device="cpu")
    assert cache.shape == (*windows[:, :-1].shape, small_corpus.vocab_size) and cache.dtype == torch.float16
    distances = []
    for cached in (None, cache):
        student = build_model(spec, seed=0)
        train_language_model(student, windows, validation, steps=30, batch_size=16, progress=False, device="cpu",
                             cached_teacher_logits=cached, T=2.0, alpha=1.0)
        with torch.no_grad():
            distances.append(kd_loss(student(windows[:, :-1]), teacher(windows[:, :-1]), windows[:, 1:],
                                     T=2.0, alpha=1.0).item())
    assert distances[1] < distances[0]  # alpha=1: the student learned the teacher's distributions
    with pytest.raises(ValueError, match="do not match"):
        train_language_model(student, windows[:-1], validation, steps=1, cached_teacher_logits=cache)


def test_sampling_is_seeded_and_stays_in_the_vocabulary(small_corpus):
    model = build_model(gpt_spec(small_corpus.vocab_size, context=16, **TINY), seed=0)
    text = sample(model, small_corpus, "the cat", 40, seed=5, device="cpu")
    assert len(text) == 40 and set(text) <= set(small_corpus.vocabulary)
    assert sample(model, small_corpus, "the cat", 40, seed=5, device="cpu") == text
    assert next_character_logits(model, small_corpus, "the " * 10, device="cpu").shape == (
        small_corpus.vocab_size,)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        sample(model, small_corpus, "the cat", 5, temperature=0.0)
    with pytest.raises(ValueError, match="prompt is empty"):
        sample(model, small_corpus, "", 5)
    with pytest.raises(ValueError, match="not in the abc vocabulary"):
        sample(model, small_corpus, "the dog!", 5)


def test_the_teacher_is_trained_once_then_loaded(small_corpus, tmp_path, capsys):
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    teacher, metadata = load_or_train_language_teacher(small_corpus, root=tmp_path, spec=spec, steps=5,
                                                       progress=False, device="cpu")
    path = teacher_path(tmp_path, small_corpus, 0)
    assert path.name == f"lm-teacher-abc-{small_corpus.fingerprint[:12]}-seed0.pt"
    stamp = path.stat().st_mtime_ns
    again, metadata_again = load_or_train_language_teacher(small_corpus, root=tmp_path, spec=spec, steps=5,
                                                           progress=False, device="cpu")
    assert path.stat().st_mtime_ns == stamp
    assert metadata_again["validation_loss"] == metadata["validation_loss"]
    load_or_train_language_teacher(small_corpus, root=tmp_path, spec=spec, steps=6, progress=False, device="cpu")
    assert "Not reusing the saved model" in capsys.readouterr().out  # another step count: retrained


def test_compare_language_students_starts_both_students_alike(small_corpus):
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    teacher = build_model(spec, seed=9)
    results = compare_language_students(teacher, small_corpus, spec, seeds=(0, 1), steps=4, T=1.0, alpha=0.5,
                                        progress=False, device="cpu", batch_size=8, evaluations=2)
    assert [run["seed"] for run in results["runs"]] == [0, 1]
    assert results["baseline"]["mean"] == pytest.approx(sum(run["baseline"] for run in results["runs"]) / 2)
    first = results["runs"][0]
    assert first["baseline_history"]["step"] == first["distilled_history"]["step"] == [2, 4]
    assert results["teacher_windows"] == len(text_windows(small_corpus.train, 16))
    differences = [run["baseline"] - run["distilled"] for run in results["runs"]]  # lower loss is better
    assert results["gain"]["mean"] == pytest.approx(sum(differences) / 2)
    assert results["verdict"] == results["gain"].verdict


def test_cli_runs_the_language_experiment_and_writes_json(tmp_path, capsys):
    text = tmp_path / "story.txt"
    text.write_text("Once upon a time, a small model learned from a larger one. " * 40, encoding="utf-8")
    output = tmp_path / "results.json"
    code = main(["distill", "--dataset", "pydoc-text", "--text", str(text), "--data-root", str(tmp_path),
                 "--teacher-steps", "3", "--steps", "2", "--seeds", "2", "--no-progress", "--device", "cpu",
                 "--json", str(output)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "nats/char" in printed
    results = json.loads(output.read_text())
    assert results["dataset"] == "story"
    assert [run["seed"] for run in results["runs"]] == [0, 1]
    differences = [run["baseline"] - run["distilled"] for run in results["runs"]]
    assert results["gain"]["n"] == 2 and results["gain"]["mean"] == pytest.approx(sum(differences) / 2)
    assert f"baseline - distilled, paired: {results['gain']['mean']:+.3f} nats/char" in printed
    assert results["verdict"] in printed
    for name in ("teacher", "baseline", "distilled"):
        assert results[name]["validation_loss"] > 0
    assert results["settings"]["steps"] == 2
    assert list(tmp_path.glob("*.pt")) == [teacher_path(tmp_path, load_corpus(text), 0)]


def test_cli_compares_forward_with_reverse_kl_paired_as_notebook_12_does(tmp_path, capsys):
    text = tmp_path / "story.txt"
    text.write_text("Once upon a time, a small model learned from a larger one. " * 40, encoding="utf-8")
    output = tmp_path / "results.json"
    assert main(["distill", "--text", str(text), "--data-root", str(tmp_path), "--divergence", "reverse",
                 "--teacher-steps", "3", "--steps", "2", "--seeds", "2", "--no-progress", "--device", "cpu",
                 "--json", str(output)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(output.read_text())
    assert results["compared"] == "forward - reverse" and results["settings"]["divergence"] == "reverse"
    assert (results["settings"]["T"], results["settings"]["alpha"], results["settings"]["steps"]) == (1.0, 1.0, 2)
    differences = [run["forward"] - run["reverse"] for run in results["runs"]]  # lower loss is better
    assert [run["seed"] for run in results["runs"]] == [0, 1] and len(set(differences)) == 2
    assert results["gain"]["n"] == 2 and results["gain"]["mean"] == pytest.approx(sum(differences) / 2)
    assert f"forward - reverse, paired: {results['gain']['mean']:+.3f} nats/char" in printed
    assert "T=" not in printed.splitlines()[0]  # the labels-vs-KD settings are not what ran


def test_cli_reverse_kl_refuses_a_temperature_or_alpha_it_would_not_use(tmp_path, capsys):
    assert main(["distill", "--dataset", "pydoc-text", "--data-root", str(tmp_path), "--divergence", "reverse",
                 "-T", "2"]) == 2
    assert "leave out --temperature and --alpha" in capsys.readouterr().err
    assert main(["distill", "--data-root", str(tmp_path), "--divergence", "reverse"]) == 2
    assert "--divergence only apply to --dataset pydoc-text or --text" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("content, message", [
    (None, "no text file at"), (b"", "is empty"), (b"GIF89a\x00\x01\x00", "looks binary")])
def test_cli_bad_text_file_is_an_error_not_a_traceback(tmp_path, content, message, run_cli):
    path = tmp_path / "input.txt"
    if content is not None:
        path.write_bytes(content)
    result = run_cli("distill", "--dataset", "pydoc-text", "--text", str(path), "--data-root", str(tmp_path))
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_text_teachers_never_share_a_cache_name_with_image_teachers_or_other_texts(tmp_path):
    root = tmp_path / "cache"
    first, second = tmp_path / "a" / "digits.txt", tmp_path / "b" / "digits.txt"
    for path, text in ((first, "one text about digits. " * 20), (second, "another text entirely. " * 20)):
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        corpus = load_corpus(path)
        load_or_train_language_teacher(corpus, root=root, spec=gpt_spec(corpus.vocab_size, context=8, **TINY),
                                       steps=1, progress=False, device="cpu")
    saved = sorted(path.name for path in root.glob("*.pt"))
    assert len(saved) == 2  # same file name, different text: two teachers, neither replacing the other
    assert all(name.startswith("lm-teacher-digits-") for name in saved)
    assert cache_path(root, "teacher", "digits", seed=0).name not in saved  # the image teacher's name


def _interrupt_model(monkeypatch, arm, model_number, forward_call):
    """Make the `model_number`-th seeded model that kdlab builds raise KeyboardInterrupt (Ctrl-C)
    on its `forward_call`-th forward pass."""
    real_build_model, built = experiment.build_model, []

    def build_model(spec, seed=None):
        model = real_build_model(spec, seed=seed)
        if seed is not None:
            built.append(model)
            if len(built) == model_number:
                arm(model, forward_call)
        return model
    for module in (experiment, checkpoints):  # cached teachers are built by checkpoints.load_or_train
        monkeypatch.setattr(module, "build_model", build_model)


def test_ctrl_c_stops_training_and_says_after_how_many_steps(small_corpus, monkeypatch, ctrl_c):
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    windows, validation = text_windows(small_corpus.train, 16), text_windows(small_corpus.validation, 16)
    _interrupt_model(monkeypatch, ctrl_c, 1, forward_call=4)  # steps 1-3 finish, step 4 is cut off
    model = experiment.build_model(spec, seed=0)
    before = [parameter.detach().clone() for parameter in model.parameters()]
    with pytest.raises(TrainingInterrupted, match="^training stopped after 3 of 50 steps$") as stop:
        train_language_model(model, windows, validation, steps=50, evaluations=1, progress=False,
                             device="cpu")
    assert stop.value.history.interrupted and stop.value.history.steps_completed == 3
    assert isinstance(stop.value, KeyboardInterrupt)  # code that knows nothing about it stops too
    assert not model.training  # left in eval mode, with the weights it had reached
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_an_interrupted_teacher_is_kept_apart_and_the_old_checkpoint_stays_intact(small_corpus, tmp_path,
                                                                                   monkeypatch, capsys, ctrl_c):
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    train = dict(root=tmp_path, spec=spec, progress=False, device="cpu")
    load_or_train_language_teacher(small_corpus, steps=5, **train)
    path = teacher_path(tmp_path, small_corpus, 0)
    previous = path.read_bytes()
    _interrupt_model(monkeypatch, ctrl_c, 1, forward_call=2)  # no scoring between steps: step 2 is cut off
    with pytest.raises(TrainingInterrupted) as stop:
        load_or_train_language_teacher(small_corpus, steps=6, **train)
    kept = path.with_name(f"{path.stem}.interrupted-step1.pt")
    assert stop.value.message == (f"the teacher's training stopped after 1 of 6 steps; its weights are in {kept}, "
                                  f"which is never loaded automatically; {path} was left as it was")
    assert path.read_bytes() == previous
    _, metadata = load_checkpoint(kept, expect_spec=spec)
    assert metadata["interrupted"] and metadata["steps"] == 1 and metadata["steps_requested"] == 6
    monkeypatch.undo()
    capsys.readouterr()
    _, metadata = load_or_train_language_teacher(small_corpus, steps=6, **train)
    assert metadata["history"]["steps_completed"] == 6  # retrained in full, the kept file not taken for it
    assert "steps=5, expected 6" in capsys.readouterr().out


def test_a_teacher_interrupted_before_its_first_step_is_not_saved(small_corpus, tmp_path, monkeypatch,
                                                                  ctrl_c):
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    _interrupt_model(monkeypatch, ctrl_c, 1, forward_call=1)
    with pytest.raises(TrainingInterrupted, match="after 0 of 6 steps.*was left as it was"):
        load_or_train_language_teacher(small_corpus, root=tmp_path, spec=spec, steps=6, progress=False,
                                       device="cpu")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("model_number, student", [(3, "baseline"), (4, "distilled")])  # both of seed 1
def test_an_interrupted_comparison_reports_only_the_seeds_whose_students_both_finished(
        small_corpus, monkeypatch, ctrl_c, model_number, student):
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    teacher = build_model(spec, seed=9)
    options = dict(steps=4, T=1.0, alpha=0.5, progress=False, device="cpu", batch_size=8, evaluations=2)
    complete = compare_language_students(teacher, small_corpus, spec, seeds=(0,), **options)
    _interrupt_model(monkeypatch, ctrl_c, model_number, forward_call=4)  # step 1, 2, evaluation, step 3 cut off
    with pytest.raises(TrainingInterrupted) as stop:
        compare_language_students(teacher, small_corpus, spec, seeds=(0, 1, 2), **options)
    assert stop.value.message == (f"seed 1: the {student} student's training stopped after 2 of 4 steps; the "
                                  "comparison covers the 1 seed(s) whose students both finished")
    partial = stop.value.partial
    assert partial["interrupted"] == stop.value.message
    assert set(partial) == set(complete) | {"interrupted"}  # the same shape as a finished comparison
    assert [run["seed"] for run in partial["runs"]] == [0]
    for name in ("baseline", "distilled"):
        assert partial[name] == complete[name] and partial["runs"][0][name] == complete["runs"][0][name]


def test_an_interrupted_first_seed_leaves_nothing_to_compare(small_corpus, monkeypatch, ctrl_c):
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    _interrupt_model(monkeypatch, ctrl_c, 2, forward_call=1)
    expected = "^seed 0: the distilled student's training stopped after 0 of 4 steps"
    with pytest.raises(TrainingInterrupted, match=expected) as stop:
        compare_language_students(build_model(spec, seed=9), small_corpus, spec, seeds=(0, 1), steps=4,
                                  progress=False, device="cpu", batch_size=8, evaluations=2)
    assert stop.value.partial is None


def test_without_a_progress_bar_the_language_teacher_is_scored_once_and_trains_the_same(small_corpus, tmp_path,
                                                                                         monkeypatch):
    """Scoring on validation along the way is for the progress bar only: without one the teacher is scored once,
    after its last step, and scoring never changes what it learns or the loss its checkpoint records."""
    spec = gpt_spec(small_corpus.vocab_size, context=16, **TINY)
    passes, score = [], language.validation_loss

    def counted(*args, **kwargs):
        passes.append(1)
        return score(*args, **kwargs)

    monkeypatch.setattr(language, "validation_loss", counted)
    quiet, quiet_info = load_or_train_language_teacher(small_corpus, root=tmp_path / "quiet", spec=spec, steps=20,
                                                       progress=False, device="cpu")
    assert len(passes) == 1 and quiet_info["history"]["step"] == [20]
    passes.clear()
    shown, shown_info = load_or_train_language_teacher(small_corpus, root=tmp_path / "shown", spec=spec, steps=20,
                                                       progress=True, device="cpu")
    assert len(passes) == 10 and shown_info["history"]["step"] == list(range(2, 21, 2))
    assert all(torch.equal(a, b) for a, b in zip(quiet.state_dict().values(), shown.state_dict().values()))
    validation = text_windows(small_corpus.validation, 16)
    assert quiet_info["validation_loss"] == shown_info["validation_loss"] == score(quiet, validation, device="cpu")
