import pytest
import torch

from kdlab import checkpoints
from kdlab import train as train_module
from kdlab.checkpoints import CheckpointError, cache_path, load_checkpoint, save_checkpoint
from kdlab.data import load_dataset
from kdlab.experiment import compare_students, load_or_train_teacher, teacher_cache_name
from kdlab.interrupt import TrainingInterrupted
from kdlab.models import build_model, mlp_spec, teacher_spec
from kdlab.train import distill, evaluate, fit


def teacher_path(root, dataset, seed):
    return cache_path(root, "teacher", dataset, seed=seed)


@pytest.fixture(scope="module")
def digits_and_teacher():
    train, test = load_dataset("digits")
    teacher = build_model(mlp_spec(train.input_shape, hidden=(64,)), seed=0)
    fit(teacher, train, epochs=3, progress=False)
    return train, test.subset(200), teacher


def small_spec(train):
    return mlp_spec(train.input_shape, hidden=(16,))


def test_each_seed_draws_its_own_transfer_set_and_both_students_share_it(digits_and_teacher):
    train, test, teacher = digits_and_teacher
    results = compare_students(teacher, train, test, small_spec(train), transfer_size=60, seeds=(3, 4), epochs=4,
                               progress=False)
    for run in results["runs"]:
        transfer = train.subset(60, seed=run["seed"])
        baseline = build_model(small_spec(train), seed=run["seed"])
        fit(baseline, transfer, epochs=4, seed=run["seed"], progress=False)
        student = build_model(small_spec(train), seed=run["seed"])
        distill(student, teacher, transfer, epochs=4, seed=run["seed"], progress=False)
        assert run["transfer_size"] == 60
        assert run["baseline"] == evaluate(baseline, test)["accuracy"]
        assert run["distilled"] == evaluate(student, test)["accuracy"]
    assert not torch.equal(train.subset(60, seed=3).inputs, train.subset(60, seed=4).inputs)


def test_the_gain_is_the_mean_paired_difference_with_its_interval(digits_and_teacher):
    train, test, teacher = digits_and_teacher
    results = compare_students(teacher, train, test, small_spec(train), transfer_size=60, seeds=range(3), epochs=3,
                               progress=False)
    differences = [run["distilled"] - run["baseline"] for run in results["runs"]]
    gain = results["gain"]
    assert gain["mean"] == pytest.approx(sum(differences) / 3) and gain["n"] == 3
    assert gain["ci_low"] <= gain["mean"] <= gain["ci_high"]
    assert results["verdict"] == gain.verdict in ("helps", "hurts", "inconclusive")
    assert results["baseline"]["ci_low"] <= results["baseline"]["mean"] <= results["baseline"]["ci_high"]
    single = compare_students(teacher, train, test, small_spec(train), transfer_size=60, seeds=[0], epochs=1,
                              progress=False)
    assert single["gain"] is None and single["verdict"] == "inconclusive"


def interrupting_build_model(monkeypatch, arm, *, seed_to_stop, forward_calls):
    """build_model whose models of one seed raise KeyboardInterrupt (Ctrl-C) on their n-th forward pass."""
    def build(spec, seed=None):
        model = build_model(spec, seed=seed)
        return arm(model, forward_calls) if seed == seed_to_stop else model

    for module in (train_module, checkpoints):  # students are built by train.train_student, teachers by load_or_train
        monkeypatch.setattr(module, "build_model", build)


def test_ctrl_c_reports_only_the_seeds_whose_students_both_finished(digits_and_teacher, monkeypatch, ctrl_c):
    train, test, teacher = digits_and_teacher
    interrupting_build_model(monkeypatch, ctrl_c, seed_to_stop=1, forward_calls=1)  # seed 1's baseline, first batch
    with pytest.raises(TrainingInterrupted) as stopped:
        compare_students(teacher, train, test, small_spec(train), transfer_size=60, seeds=range(3), epochs=3,
                         progress=False)
    message = stopped.value.message
    assert "seed 1" in message and "baseline student" in message and "after 0 of 3 epochs" in message
    partial = stopped.value.partial
    assert [run["seed"] for run in partial["runs"]] == [0]
    assert partial["gain"] is None and partial["verdict"] == "inconclusive"


def test_an_interrupted_teacher_is_kept_apart_and_the_old_checkpoint_is_untouched(tmp_path, monkeypatch,
                                                                                   ctrl_c):
    train, test = load_dataset("digits")
    train = train.subset(200)
    old = build_model(teacher_spec(train.input_shape), seed=7)
    save_checkpoint(teacher_path(tmp_path, "digits", 0), old, teacher_spec(train.input_shape), dataset="digits")
    before = teacher_path(tmp_path, "digits", 0).read_bytes()
    # 4 batches and 1 test pass an epoch: stopped in the third epoch
    interrupting_build_model(monkeypatch, ctrl_c, seed_to_stop=0, forward_calls=2 * 5 + 1)
    with pytest.raises(TrainingInterrupted, match="after 2 of 30 epochs") as stopped:
        load_or_train_teacher(train, test, root=tmp_path, progress=False)
    assert teacher_path(tmp_path, "digits", 0).read_bytes() == before
    kept = tmp_path / "teacher-digits-seed0.interrupted-epoch2.pt"
    assert kept.exists() and str(kept) in stopped.value.message
    kept.replace(teacher_path(tmp_path, "digits", 0))  # even renamed, it never passes for the 30-epoch teacher
    with pytest.raises(CheckpointError, match="epochs=2, expected 30"):
        load_checkpoint(teacher_path(tmp_path, "digits", 0), expect_spec=teacher_spec(train.input_shape),
                        expect={"dataset": "digits", "seed": 0, "epochs": 30, "jitter": 0})


def test_the_default_teacher_keeps_its_name_and_other_settings_get_their_own():
    assert teacher_cache_name("digits", epochs=30, jitter=0) == "digits"  # as every committed cache is named
    assert teacher_cache_name("mnist", epochs=20, jitter=2) == "mnist"
    assert teacher_cache_name("digits", epochs=1, jitter=0) == "digits-epochs1"
    assert teacher_cache_name("mnist", epochs=20, jitter=0) == "mnist-jitter0"
    assert teacher_cache_name("fashion-mnist", epochs=5, jitter=1) == "fashion-mnist-epochs5-jitter1"


def test_a_teacher_trained_with_other_settings_never_replaces_the_default_one(tmp_path):
    train, test = load_dataset("digits")
    spec = teacher_spec(train.input_shape)
    default = save_checkpoint(teacher_path(tmp_path, "digits", 0), build_model(spec, seed=7), spec, dataset="digits",
                              seed=0, epochs=30, jitter=0, accuracy=0.98)
    before = default.read_bytes()
    _, quick = load_or_train_teacher(train.subset(200), test, root=tmp_path, epochs=1, progress=False)
    assert quick["epochs"] == 1 and default.read_bytes() == before
    assert load_checkpoint(tmp_path / "teacher-digits-epochs1-seed0.pt")[1]["accuracy"] == quick["accuracy"]
    _, metadata = load_or_train_teacher(train, test, root=tmp_path, progress=False)  # loaded: 0.98, not trained
    assert metadata["accuracy"] == 0.98
