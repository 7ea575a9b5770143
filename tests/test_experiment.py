import dataclasses

import pytest
import torch

from kdlab import checkpoints, experiment
from kdlab import train as train_module
from kdlab.checkpoints import CheckpointError, cache_path, load_checkpoint, save_checkpoint
from kdlab.comparison import paired_difference_over_examples
from kdlab.data import load_dataset
from kdlab.experiment import (
    VALIDATION_SEED,
    Split,
    compare_dkd_with_kd,
    compare_students,
    load_data_and_teacher,
    load_or_train_teacher,
    split_dataset,
    teacher_cache_name,
)
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
        distill(student, teacher, transfer, T=experiment.TEMPERATURE, alpha=experiment.ALPHA, epochs=4,
                seed=run["seed"], progress=False)
        assert run["transfer_size"] == 60
        assert run["baseline"] == evaluate(baseline, test)["accuracy"]
        assert run["distilled"] == evaluate(student, test)["accuracy"]
    assert not torch.equal(train.subset(60, seed=3).inputs, train.subset(60, seed=4).inputs)


def test_students_watched_on_other_images_are_the_same_students_scored_on_test(digits_and_teacher):
    """`watch` only says where the per-epoch history is scored: the students, and their test scores, are those of a
    run watched on the test images (notebook 05 chooses a budget on validation this way, then reads test)."""
    train, test, teacher = digits_and_teacher
    held_out = train.subset(100, seed=9)
    common = {"transfer_size": 60, "seeds": (0, 1), "epochs": 3, "progress": False}
    watched = compare_students(teacher, train, test, small_spec(train), watch=held_out, **common)
    plain = compare_students(teacher, train, test, small_spec(train), **common)
    for ours, theirs in zip(watched["runs"], plain["runs"]):
        for name in ("baseline", "distilled"):
            assert ours[f"{name}_correct"] == theirs[f"{name}_correct"] and ours[name] == theirs[name]
            assert ours[f"{name}_history"]["train_loss"] == theirs[f"{name}_history"]["train_loss"]
            assert ours[f"{name}_history"]["test_accuracy"] != theirs[f"{name}_history"]["test_accuracy"]
    student = build_model(small_spec(train), seed=1)
    history = fit(student, train.subset(60, seed=1), held_out, epochs=3, seed=1, progress=False)
    assert watched["runs"][1]["baseline_history"]["test_accuracy"] == history.test_accuracy  # scored on held_out


def test_the_gain_is_the_mean_paired_difference_with_its_interval(digits_and_teacher):
    train, test, teacher = digits_and_teacher
    results = compare_students(teacher, train, test, small_spec(train), transfer_size=60, seeds=range(3), epochs=3,
                               progress=False)
    differences = [run["distilled"] - run["baseline"] for run in results["runs"]]
    gain = results["gain"]
    assert gain["mean"] == pytest.approx(sum(differences) / 3) and gain["n"] == 3
    # the interval covers the seeds and the finite test set: the per-example scores are kept for it
    assert gain["covers"] == "seeds and test images" and gain["examples"] == len(test) == 200
    for run in results["runs"]:
        for name in ("baseline", "distilled"):
            assert len(run[f"{name}_correct"]) == len(test) and set(run[f"{name}_correct"]) <= {0, 1}
            assert sum(run[f"{name}_correct"]) / len(test) == pytest.approx(run[name])
    expected = paired_difference_over_examples([run["baseline_correct"] for run in results["runs"]],
                                               [run["distilled_correct"] for run in results["runs"]])
    assert (gain["ci_low"], gain["ci_high"]) == pytest.approx((expected["ci_low"], expected["ci_high"]))
    assert gain["ci_low"] <= gain["mean"] <= gain["ci_high"]
    assert results["verdict"] == gain.verdict in ("helps", "hurts", "inconclusive")
    assert results["baseline"]["ci_low"] <= results["baseline"]["mean"] <= results["baseline"]["ci_high"]
    single = compare_students(teacher, train, test, small_spec(train), transfer_size=60, seeds=[0], epochs=1,
                              progress=False)
    assert single["gain"] is None and single["verdict"] == "inconclusive"


def test_dkd_against_kd_pairs_three_students_per_seed_and_reports_dkd_minus_kd(digits_and_teacher):
    train, test, teacher = digits_and_teacher
    spec = small_spec(train)
    results = compare_dkd_with_kd(teacher, train, test, spec, nckd_weight=4.0, tckd_weight=0.5, transfer_size=60,
                                  seeds=(3, 4, 5), T=4.0, alpha=0.9, epochs=3, progress=False)
    for run in results["runs"]:  # each student as if trained alone, from the seed's weights, on its transfer set
        transfer = train.subset(60, seed=run["seed"])
        for name, options in (("baseline", {"alpha": 0.0}), ("kd", {"alpha": 0.9}),
                              ("dkd", {"alpha": 0.9, "method": "dkd", "tckd_weight": 0.5, "nckd_weight": 4.0})):
            alone = build_model(spec, seed=run["seed"])
            distill(alone, teacher, transfer, T=4.0, epochs=3, seed=run["seed"], progress=False, **options)
            assert run[name] == pytest.approx(evaluate(alone, test)["accuracy"], abs=1 / len(test))
            assert sum(run[f"{name}_correct"]) / len(test) == pytest.approx(run[name])
    assert results["compared"] == "dkd - kd" and (results["tckd_weight"], results["nckd_weight"]) == (0.5, 4.0)
    gain = results["gain"]
    assert gain["mean"] == pytest.approx(sum(run["dkd"] - run["kd"] for run in results["runs"]) / 3)
    assert gain["covers"] == "seeds and test images" and gain["examples"] == len(test)
    expected = paired_difference_over_examples([run["kd_correct"] for run in results["runs"]],
                                               [run["dkd_correct"] for run in results["runs"]])
    assert (gain["ci_low"], gain["ci_high"]) == pytest.approx((expected["ci_low"], expected["ci_high"]))
    assert results["verdict"] == gain.verdict
    for name in ("kd", "dkd"):
        assert results[f"{name}_gain"]["mean"] == pytest.approx(
            sum(run[name] - run["baseline"] for run in results["runs"]) / 3)
    single = compare_dkd_with_kd(teacher, train, test, spec, transfer_size=60, seeds=[0], epochs=1, progress=False)
    assert single["gain"] is None and single["verdict"] == "inconclusive"
    assert single["nckd_weight"] == experiment.NCKD_WEIGHT == experiment.SETTINGS["digits"].nckd_weight


def test_dkd_against_kd_refuses_bad_weights_and_keeps_the_finished_seeds_on_ctrl_c(digits_and_teacher, monkeypatch):
    train, test, teacher = digits_and_teacher
    with pytest.raises(ValueError, match="nckd_weight must be a finite number >= 0"):
        compare_dkd_with_kd(teacher, train, test, small_spec(train), nckd_weight=-1.0, seeds=[0], epochs=1)
    from kdlab import sweep

    real = sweep.distill_students

    def stop_at_seed_1(*arguments, seed, **options):
        if seed == 1:
            raise TrainingInterrupted("the sweep of 3 students: interrupted after 0 of 2 epochs; nothing was saved")
        return real(*arguments, seed=seed, **options)

    monkeypatch.setattr(sweep, "distill_students", stop_at_seed_1)
    with pytest.raises(TrainingInterrupted) as stopped:
        compare_dkd_with_kd(teacher, train, test, small_spec(train), transfer_size=60, seeds=range(3), epochs=2,
                            progress=False)
    assert "seed 1" in stopped.value.message and "baseline, KD and DKD students" in stopped.value.message
    assert [run["seed"] for run in stopped.value.partial["runs"]] == [0]
    assert stopped.value.partial["gain"] is None


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
    split = split_dataset(train.subset(400), test, validation=100)  # the pool: 300 images, 5 batches
    old = build_model(teacher_spec(train.input_shape), seed=7)
    save_checkpoint(teacher_path(tmp_path, "digits-validation100", 0), old, teacher_spec(train.input_shape),
                    dataset="digits")
    before = teacher_path(tmp_path, "digits-validation100", 0).read_bytes()
    # 5 batches and 1 validation pass an epoch: stopped in the third epoch
    interrupting_build_model(monkeypatch, ctrl_c, seed_to_stop=0, forward_calls=2 * 6 + 1)
    with pytest.raises(TrainingInterrupted, match="after 2 of 30 epochs") as stopped:
        load_or_train_teacher(split, root=tmp_path, progress=False)
    assert teacher_path(tmp_path, "digits-validation100", 0).read_bytes() == before
    kept = tmp_path / "teacher-digits-validation100-seed0.interrupted-epoch2.pt"
    assert kept.exists() and str(kept) in stopped.value.message
    kept.replace(teacher_path(tmp_path, "digits-validation100", 0))  # even renamed, it never passes for 30 epochs
    with pytest.raises(CheckpointError, match="epochs=2, expected 30"):
        load_checkpoint(teacher_path(tmp_path, "digits-validation100", 0), expect_spec=teacher_spec(train.input_shape),
                        expect={"dataset": "digits", "seed": 0, "epochs": 30, "jitter": 0})


def test_the_default_teacher_keeps_its_name_and_other_settings_get_their_own():
    digits, mnist = experiment.SETTINGS["digits"].validation, experiment.SETTINGS["mnist"].validation
    assert teacher_cache_name("digits", epochs=30, jitter=0, validation=digits) == "digits"  # the committed name
    assert teacher_cache_name("mnist", epochs=20, jitter=2, validation=mnist) == "mnist"
    assert teacher_cache_name("digits", epochs=1, jitter=0, validation=digits) == "digits-epochs1"
    assert teacher_cache_name("mnist", epochs=20, jitter=0, validation=mnist) == "mnist-jitter0"
    assert teacher_cache_name("fashion-mnist", epochs=5, jitter=1, validation=5000) == "fashion-mnist-epochs5-jitter1"
    assert teacher_cache_name("digits", epochs=1, jitter=0, validation=100) == "digits-epochs1-validation100"


def default_metadata(split, **changes):
    """What the real default digits teacher's checkpoint says, with `changes` (None: the key left out)."""
    metadata = {"dataset": "digits", "seed": 0, "epochs": experiment.SETTINGS["digits"].teacher_epochs, "jitter": 0,
                "validation": len(split.validation), "pool": len(split.pool), "accuracy": 0.98,
                "validation_accuracy": 0.97}
    return {key: value for key, value in {**metadata, **changes}.items() if value is not None}


def test_a_teacher_trained_with_other_settings_never_replaces_the_default_one(tmp_path):
    split = split_dataset(*load_dataset("digits"))
    spec = teacher_spec(split.pool.input_shape)
    default = save_checkpoint(teacher_path(tmp_path, "digits", 0), build_model(spec, seed=7), spec,
                              **default_metadata(split))
    before = default.read_bytes()
    _, quick = load_or_train_teacher(split, root=tmp_path, epochs=1, progress=False)
    assert quick["epochs"] == 1 and default.read_bytes() == before
    assert load_checkpoint(tmp_path / "teacher-digits-epochs1-seed0.pt")[1]["accuracy"] == quick["accuracy"]
    _, metadata = load_or_train_teacher(split, root=tmp_path, progress=False)  # loaded: 0.98, not trained
    assert metadata["accuracy"] == 0.98 and metadata["validation_accuracy"] == 0.97


def tagged(data):
    """`data` whose first pixel is each image's index in it, so that where an image went can be read back."""
    inputs = data.inputs.clone()
    inputs[:, 0, 0, 0] = torch.arange(len(data), dtype=inputs.dtype)
    return dataclasses.replace(data, inputs=inputs)


def indices(data):
    return set(data.inputs[:, 0, 0, 0].long().tolist())


def test_split_dataset_holds_out_the_same_balanced_validation_images_every_time(digits):
    train, test = digits
    train = tagged(train)
    split = split_dataset(train, test)
    assert isinstance(split, Split) and split.test is test
    assert len(split.validation) == experiment.SETTINGS["digits"].validation == 300
    assert indices(split.pool).isdisjoint(indices(split.validation))  # no image is in both
    assert indices(split.pool) | indices(split.validation) == set(range(len(train)))  # and none is lost
    assert len(split.pool) + len(split.validation) == len(train)
    counts = torch.bincount(split.validation.labels, minlength=10)
    assert counts.max() - counts.min() <= 1  # balanced over the classes
    again = split_dataset(train, test)  # the same images on every call, whatever the global seed
    torch.manual_seed(99)
    assert torch.equal(again.validation.inputs, split.validation.inputs)
    assert torch.equal(split_dataset(train, test).pool.inputs, split.pool.inputs)
    assert indices(split_dataset(train, test, validation=50).validation) == indices(
        train.split(50, seed=VALIDATION_SEED)[1])


@pytest.mark.parametrize("size", [0, -3, 1297, 5000])
def test_split_dataset_refuses_a_validation_set_that_leaves_nothing_or_holds_out_nothing(digits, size):
    train, test = digits
    with pytest.raises(ValueError, match=f"--validation {size}: hold out between 1 and 1296 of digits's 1297"):
        split_dataset(train, test, validation=size)


def test_the_teacher_trains_on_the_pool_only_and_reports_both_accuracies(tmp_path, monkeypatch):
    seen = []

    def spy(model, train, test=None, **options):
        seen.append((train, test))
        return fit(model, train, test, **options)
    monkeypatch.setattr(experiment, "fit", spy)
    split, _, metadata = load_data_and_teacher("digits", tmp_path, teacher_epochs=1, validation=200, progress=False)
    assert len(seen) == 1
    trained_on, watched = seen[0]
    # trained on the pool, never the validation or test images; without a progress bar nothing is scored per
    # epoch (validation and test are scored once, for the metadata)
    assert trained_on is split.pool and watched is None
    assert metadata["pool"] == len(split.pool) == 1097 and metadata["validation"] == len(split.validation) == 200
    assert 0 <= metadata["validation_accuracy"] <= 1 and 0 <= metadata["accuracy"] <= 1
    assert (tmp_path / "teacher-digits-epochs1-validation200-seed0.pt").exists()
    again, _, loaded = load_data_and_teacher("digits", tmp_path, teacher_epochs=1, validation=200, progress=False)
    assert len(seen) == 1 and loaded.items() >= metadata.items()  # cached: loaded, not trained again
    assert torch.equal(again.validation.inputs, split.validation.inputs)


@pytest.mark.parametrize("changes, reason", [
    ({"validation": None, "pool": None, "validation_accuracy": None}, "validation=None, expected 300"),  # before
    ({"pool": 1297}, "pool=1297, expected 997"),
])
def test_a_teacher_from_before_the_split_is_retrained_not_reused(tmp_path, digits, capsys, changes, reason):
    split = split_dataset(*digits)
    spec = teacher_spec(split.pool.input_shape)
    path = teacher_path(tmp_path, "digits-epochs1", 0)  # saw every training image, validation ones included
    save_checkpoint(path, build_model(spec, seed=7), spec, **default_metadata(split, epochs=1, **changes))
    _, metadata = load_or_train_teacher(split, root=tmp_path, epochs=1, progress=False)
    assert reason in capsys.readouterr().out
    assert metadata["accuracy"] != 0.98 and metadata["pool"] == 997 and "validation_accuracy" in metadata
    assert load_checkpoint(path)[1].items() >= metadata.items()  # replaced by the one trained on the pool


def test_split_dataset_of_a_dataset_without_a_setting_asks_for_a_size(digits):
    train, test = digits
    letters = dataclasses.replace(train, name="letters")
    with pytest.raises(ValueError, match="no default experiment for 'letters'"):  # not a bare KeyError
        split_dataset(letters, test)
    assert len(split_dataset(letters, test, validation=100).validation) == 100


def test_without_a_progress_bar_the_teacher_is_scored_once_at_the_end_and_trains_the_same(tmp_path, digits,
                                                                                            monkeypatch):
    """The per-epoch validation score is for the progress bar only: without one it is not computed, and scoring
    never changes what the teacher learns."""
    from kdlab import train as training

    split = split_dataset(*digits)
    scored, score = [], training._scores

    def counted(model, data, *args, **kwargs):
        scored.append({id(split.test): "test", id(split.validation): "validation"}[id(data)])
        return score(model, data, *args, **kwargs)

    monkeypatch.setattr(training, "_scores", counted)
    quiet, _ = load_or_train_teacher(split, root=tmp_path / "quiet", epochs=2, progress=False)
    assert scored == ["test", "validation"]  # once each, for the checkpoint's metadata
    scored.clear()
    shown, _ = load_or_train_teacher(split, root=tmp_path / "shown", epochs=2, progress=True)
    assert scored == ["validation", "validation", "test", "validation"]
    assert all(torch.equal(a, b) for a, b in zip(quiet.state_dict().values(), shown.state_dict().values()))
