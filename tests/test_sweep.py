import json

import numpy as np
import pytest
import torch
from torch.func import stack_module_state

from kdlab import experiment
from kdlab import sweep as sweep_module
from kdlab.data import TensorData, load_dataset
from kdlab.experiment import Split
from kdlab.interrupt import TrainingInterrupted
from kdlab.losses import decoupled_kd_loss, kd_loss
from kdlab.models import build_model, cnn_spec, mlp_spec, student_spec, teacher_spec
from kdlab.sweep import (
    Grid,
    batched_dkd_gradient,
    batched_kd_gradient,
    best_cell,
    distill_students,
    load_or_run_grid,
    stacked_mlp_activations,
    stacked_mlp_gradients,
    sweep,
    sweep_transfer_sets,
)
from kdlab.train import distill, evaluate, fit


@pytest.fixture(scope="module")
def setting():
    """Digits, a briefly trained teacher, a 100-example transfer set and a small student spec."""
    train, test = load_dataset("digits")
    teacher = build_model(mlp_spec(train.input_shape, hidden=(64,)), seed=0)
    fit(teacher, train.subset(300), epochs=3, progress=False)
    return train, test, teacher, train.subset(100), student_spec(train.input_shape, "small")


def test_a_batched_2x2_grid_equals_four_students_trained_one_at_a_time(setting):
    _, test, teacher, transfer, spec = setting
    temperatures, alphas = (1.0, 8.0), (0.0, 0.75)
    grid = sweep(teacher, transfer, test, spec, temperatures, alphas, epochs=4, seed=5, progress=False)
    cells = [(T, alpha) for T in temperatures for alpha in alphas]
    batched = distill_students(spec, teacher, transfer, seeds=[5, 6, 7, 8],
                                            temperatures=[T for T, _ in cells], alphas=[a for _, a in cells],
                                            epochs=4, seed=5, progress=False)
    for k, (T, alpha) in enumerate(cells):
        alone = build_model(spec, seed=5 + k)  # the documented rule: cell k starts from seed + k
        distill(alone, teacher, transfer, T=T, alpha=alpha, epochs=4, seed=5, progress=False)
        for ours, theirs in zip(batched[k].state_dict().values(), alone.state_dict().values()):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
        assert grid.accuracy[divmod(k, 2)] == pytest.approx(evaluate(alone, test)["accuracy"], abs=1e-6)
    # the students really differ: different T, alpha and initial weights give different weights
    assert not torch.allclose(batched[0].state_dict()["1.weight"], batched[3].state_dict()["1.weight"])


def test_batched_kd_gradient_equals_autograd_of_kd_loss_per_student():
    generator = torch.Generator().manual_seed(0)
    students = torch.randn(3, 10, 16, generator=generator) * 5  # class-major: (K, C, B)
    teacher = torch.randn(16, 10, generator=generator) * 5
    labels = torch.randint(0, 10, (16,), generator=generator)
    temperatures, alphas = [0.5, 4.0, 20.0], [0.0, 0.3, 1.0]
    gradients = batched_kd_gradient(students, teacher, labels, torch.tensor(temperatures), torch.tensor(alphas))
    for k in range(3):
        logits = students[k].t().clone().requires_grad_()
        kd_loss(logits, teacher, labels, T=temperatures[k], alpha=alphas[k]).backward()
        torch.testing.assert_close(gradients[k], logits.grad.t())


def test_batched_dkd_gradient_equals_autograd_of_decoupled_kd_loss_per_student():
    generator = torch.Generator().manual_seed(3)
    students = torch.randn(4, 10, 16, generator=generator) * 5  # class-major: (K, C, B)
    teacher = torch.randn(16, 10, generator=generator) * 5
    teacher[:4, :] = 0
    teacher[torch.arange(4), torch.arange(4)] = 60.0  # a teacher sure of some labels: 1 - p_t rounds to 0 there
    labels = torch.cat([torch.arange(4), torch.randint(0, 10, (12,), generator=generator)])
    temperatures, alphas = [1.0, 4.0, 12.0, 4.0], [1.0, 0.5, 0.9, 0.0]
    tckd_weights, nckd_weights = [1.0, 2.0, 0.5, 1.0], [8.0, 1.0, 0.0, 8.0]
    gradients = batched_dkd_gradient(students, teacher, labels, *(torch.tensor(values) for values in (
        temperatures, alphas, tckd_weights, nckd_weights)))
    assert torch.isfinite(gradients).all()
    for k in range(4):
        logits = students[k].t().clone().requires_grad_()
        decoupled_kd_loss(logits, teacher, labels, T=temperatures[k], alpha=alphas[k], tckd_weight=tckd_weights[k],
                          nckd_weight=nckd_weights[k]).backward()
        torch.testing.assert_close(gradients[k], logits.grad.t())


def test_kd_and_dkd_students_train_together_batched_as_they_would_alone(setting):
    """A baseline, a KD and two DKD students in one pass, each equal to its own one-at-a-time run; on the MLP path
    and on the vmap path (a CNN)."""
    _, test, teacher, transfer, spec = setting
    images = TensorData(torch.randn(40, 3, 8, 8, generator=torch.Generator().manual_seed(4)),
                        torch.arange(40) % 10, tuple("0123456789"), "colour")
    cases = [(spec, teacher, transfer, 64),
             (student_spec((3, 8, 8), "tiny"), build_model(cnn_spec((3, 8, 8), channels=(4,)), seed=0), images, 16)]
    students = [(4.0, 0.0, None), (4.0, 0.9, None), (4.0, 0.9, (1.0, 8.0)), (12.0, 1.0, (0.5, 2.0))]
    for student_spec_, teacher_, data, batch_size in cases:
        batched = distill_students(student_spec_, teacher_, data, seeds=[7] * len(students),
                                   temperatures=[T for T, _, _ in students], alphas=[alpha for _, alpha, _ in students],
                                   dkd_weights=[weights for _, _, weights in students], epochs=4, seed=2,
                                   batch_size=batch_size, progress=False)
        for k, (T, alpha, weights) in enumerate(students):
            alone = build_model(student_spec_, seed=7)  # all four from the same weights: a paired comparison
            method = {} if weights is None else {"method": "dkd", "tckd_weight": weights[0], "nckd_weight": weights[1]}
            distill(alone, teacher_, data, T=T, alpha=alpha, epochs=4, seed=2, batch_size=batch_size, progress=False,
                    **method)
            for ours, theirs in zip(batched[k].state_dict().values(), alone.state_dict().values()):
                torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
        first_layer = next(iter(batched[1].state_dict()))
        assert not torch.allclose(batched[1].state_dict()[first_layer], batched[2].state_dict()[first_layer])


@pytest.mark.parametrize("dkd_weights, message", [
    ([None], "need one entry per student"),
    ([None, (1.0,)], "is None \\(kd_loss\\) or a pair"),
    ([None, (1.0, -2.0)], "nckd_weight must be a finite number >= 0"),
    ([None, (float("inf"), 2.0)], "tckd_weight must be a finite number >= 0"),
])
def test_bad_dkd_weights_are_refused(setting, dkd_weights, message):
    _, _, teacher, transfer, spec = setting
    with pytest.raises(ValueError, match=message):
        distill_students(spec, teacher, transfer, seeds=[0, 1], temperatures=[4.0, 4.0], alphas=[0.5, 0.5],
                         dkd_weights=dkd_weights, epochs=1, progress=False)


def test_stacked_mlp_gradients_equal_autograd_through_each_student():
    spec = mlp_spec((1, 8, 8), hidden=(20, 15))
    students = [build_model(spec, seed=k) for k in range(3)]
    parameters, _ = stack_module_state(students)
    inputs = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    linear_names = ["1", "3", "5"]
    with torch.no_grad():
        activations = stacked_mlp_activations(parameters, linear_names, inputs)
    logit_gradients = torch.randn_like(activations[-1])
    gradients = stacked_mlp_gradients(parameters, linear_names, activations, logit_gradients)
    for k, student in enumerate(students):
        logits = student(inputs)
        torch.testing.assert_close(activations[-1][k], logits.detach().t())
        logits.backward(logit_gradients[k].t())
        for name, parameter in student.named_parameters():
            torch.testing.assert_close(gradients[name][k], parameter.grad)


def test_students_of_another_family_train_batched_as_they_would_alone():
    """The vmap path: a CNN student's batch norm, and a family stacked_mlp_activations does not run."""
    images = TensorData(torch.randn(40, 3, 8, 8, generator=torch.Generator().manual_seed(2)),
                        torch.arange(40) % 10, tuple("0123456789"), "colour")
    teacher = build_model(cnn_spec((3, 8, 8), channels=(4,)), seed=0)
    spec = student_spec((3, 8, 8), "tiny")
    assert spec["family"] == "cnn"
    batched = distill_students(spec, teacher, images, seeds=[3, 4], temperatures=[2.0, 8.0], alphas=[0.0, 0.5],
                               epochs=2, batch_size=16, progress=False)
    for k, (T, alpha) in enumerate([(2.0, 0.0), (8.0, 0.5)]):
        alone = build_model(spec, seed=3 + k)
        distill(alone, teacher, images, T=T, alpha=alpha, epochs=2, batch_size=16, progress=False)
        for ours, theirs in zip(batched[k].state_dict().values(), alone.state_dict().values()):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_cell_finds_the_nearest_grid_point_with_T_on_a_log_scale():
    grid = Grid((1.0, 2.0, 4.0, 8.0, 16.0), (0.0, 0.25, 0.5, 0.75, 1.0), np.zeros((5, 5)), "digits", {})
    assert grid.cell(2.9, 0.6) == (2, 2)  # log 2.9 is nearer log 4 than log 2, though 2.9 is nearer 2
    assert grid.cell(0.1, 0.0) == (0, 0) and grid.cell(100.0, 1.0) == (4, 4)
    assert grid.cell(8.0, 0.9) == (3, 4)
    with pytest.raises(ValueError, match="T must be"):
        grid.cell(0.0, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        grid.cell(4.0, 1.5)


def test_a_grid_survives_a_json_round_trip_and_garbage_is_refused():
    accuracy = np.arange(6, dtype=float).reshape(2, 3) / 10
    grid = Grid((1.0, 4.0), (0.0, 0.5, 1.0), accuracy, "digits", {"epochs": 3, "student": {"hidden": [30, 30]}})
    again = Grid.from_json(json.loads(json.dumps(grid.to_json())))
    assert (again.temperatures, again.alphas, again.dataset, again.settings) == (
        grid.temperatures, grid.alphas, grid.dataset, grid.settings)
    np.testing.assert_array_equal(again.accuracy, accuracy)
    with pytest.raises(ValueError, match="not a kdlab grid"):
        Grid.from_json({"temperatures": [1.0]})
    with pytest.raises(ValueError, match="shape"):
        Grid.from_json({**grid.to_json(), "accuracy": [[0.5]]})


def fake_split(train, test):
    return Split(*train.split(300, seed=experiment.VALIDATION_SEED), test)


def test_load_or_run_grid_caches_and_recomputes_when_missing_corrupt_or_stale(setting, tmp_path, monkeypatch, capsys):
    train, test, teacher, _, _ = setting
    teacher_metadata = {"accuracy": 0.9}
    split = fake_split(train, test)
    monkeypatch.setattr(experiment, "load_data_and_teacher",
                        lambda *args, **kwargs: (split, teacher, teacher_metadata))
    options = {"temperatures": (1.0, 4.0), "alphas": (0.0, 1.0), "transfer_sets": 2, "progress": False}
    first = load_or_run_grid(tmp_path, epochs=2, **options)
    assert (f"grid (one student per cell on each of 2 transfer sets) into {tmp_path / 'grid-digits-seed0.json'}"
            in capsys.readouterr().out)
    assert first.accuracy.shape == (2, 2) and first.settings["transfer_size"] == experiment.TRANSFER_SIZE
    assert first.settings["scored_on"] == len(split.validation) == 300  # chosen on validation images, not test ones
    again = sweep_transfer_sets(teacher, split.pool, split.validation,
                                student_spec(train.input_shape, experiment.STUDENT_SIZE), (1.0, 4.0), (0.0, 1.0),
                                transfer_size=experiment.TRANSFER_SIZE, seeds=[0, 1], epochs=2, progress=False)
    np.testing.assert_allclose(first.runs, again.runs, atol=1e-6)
    np.testing.assert_allclose(first.runs * 300, np.round(first.runs * 300), atol=1e-3)  # out of 300 images

    cached = load_or_run_grid(tmp_path, epochs=2, **options)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(cached.accuracy, first.accuracy)

    load_or_run_grid(tmp_path, epochs=3, **options)
    assert "epochs=2, expected 3" in capsys.readouterr().out

    teacher_metadata["accuracy"] = 0.95  # a retrained teacher
    load_or_run_grid(tmp_path, epochs=3, **options)
    assert "teacher_accuracy=0.9, expected 0.95" in capsys.readouterr().out

    (tmp_path / "grid-digits-seed0.json").write_text("{not json")
    load_or_run_grid(tmp_path, epochs=3, **options)
    assert "corrupt" in capsys.readouterr().out

    (tmp_path / "grid-digits-seed0.json").write_text("[" * 100_000 + "]" * 100_000)  # parses, with enough stack
    load_or_run_grid(tmp_path, epochs=3, **options)
    assert "is corrupt (maximum recursion depth exceeded" in capsys.readouterr().out

    good = json.loads((tmp_path / "grid-digits-seed0.json").read_text())  # made with epochs=3, as asked
    for hostile in ([], {**good, "accuracy": [[2.0, 0.5], [0.5, 0.5]]}, {**good, "runs": [[[0.5, "x"]] * 2]}):
        (tmp_path / "grid-digits-seed0.json").write_text(json.dumps(hostile))
        load_or_run_grid(tmp_path, epochs=3, **options)
        printed = capsys.readouterr().out
        assert printed.startswith("Not reusing the saved grid") and printed.count("\n") == 2, printed
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files behind


@pytest.mark.parametrize("change, message", [
    ({"seeds": [0]}, "one entry per student"),
    ({"temperatures": [4.0, -1.0]}, "T must be"),
    ({"alphas": [0.5, 2.0]}, "alpha"),
    ({"epochs": 0}, "epochs"),
])
def test_bad_sweep_arguments_are_refused_with_a_clear_message(setting, change, message):
    _, _, teacher, transfer, spec = setting
    arguments = {"seeds": [0, 1], "temperatures": [1.0, 4.0], "alphas": [0.0, 0.5], "epochs": 1, "progress": False}
    with pytest.raises(ValueError, match=message):
        distill_students(spec, teacher, transfer, **{**arguments, **change})


def test_students_with_dropout_are_refused_and_empty_axes_too(setting):
    train, test, teacher, transfer, _ = setting
    with pytest.raises(ValueError, match="dropout"):
        distill_students(teacher_spec(train.input_shape), teacher, transfer, seeds=[0], temperatures=[4.0],
                         alphas=[0.5], epochs=1, progress=False)
    with pytest.raises(ValueError, match="at least one"):
        sweep(teacher, transfer, test, student_spec(train.input_shape, "tiny"), (), (0.5,), epochs=1, progress=False)


def test_repeats_average_students_that_start_from_the_documented_seeds(setting):
    _, test, teacher, transfer, spec = setting
    temperatures, alphas = (1.0, 4.0), (0.0, 1.0)
    grid = sweep(teacher, transfer, test, spec, temperatures, alphas, epochs=2, seed=3, repeats=3, progress=False)
    assert grid.runs.shape == (3, 2, 2) and grid.settings["repeats"] == 3
    np.testing.assert_allclose(grid.accuracy, grid.runs.mean(axis=0))
    alone = build_model(spec, seed=3 + 2 * 4 + 1)  # repetition 2 of cell 1 (T=1, alpha=1)
    distill(alone, teacher, transfer, T=1.0, alpha=1.0, epochs=2, seed=3, progress=False)
    assert grid.runs[2, 0, 1] == pytest.approx(evaluate(alone, test)["accuracy"], abs=1e-6)
    low, high = grid.interval(0, 1)
    assert low <= grid.accuracy[0, 1] <= high
    again = Grid.from_json(json.loads(json.dumps(grid.to_json())))
    np.testing.assert_array_equal(again.runs, grid.runs)


def test_within_noise_marks_cells_whose_paired_difference_from_alpha_0_may_be_zero():
    runs = np.array([[[0.90, 0.95, 0.91]], [[0.91, 0.96, 0.89]], [[0.92, 0.97, 0.93]]])  # 3 runs, 1 T, 3 alphas
    grid = Grid((4.0,), (0.0, 0.5, 1.0), runs.mean(axis=0), "digits", {}, runs=runs)
    np.testing.assert_array_equal(grid.within_noise(), [[True, False, True]])  # +0.05 on every run: signal
    assert Grid((4.0,), (0.5, 1.0), runs.mean(axis=0)[:, 1:], "digits", {}, runs=runs[:, :, 1:]).within_noise() is None
    one_run = Grid((4.0,), (0.0, 0.5, 1.0), runs[0], "digits", {}, runs=runs[:1])
    assert one_run.within_noise() is None and one_run.interval(0, 0) is None


def test_ctrl_c_stops_the_sweep_at_once_and_nothing_is_cached(setting, tmp_path, monkeypatch):
    train, test, teacher, _, _ = setting
    monkeypatch.setattr(experiment, "load_data_and_teacher",
                        lambda *args, **kwargs: (fake_split(train, test), teacher, {"accuracy": 0.9}))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(sweep_module, "batched_kd_gradient", interrupted)
    stopped = "the sweep of .* students: training stopped after 0 of 2 epochs; nothing was saved"
    with pytest.raises(TrainingInterrupted, match=stopped) as error:
        load_or_run_grid(tmp_path, epochs=2, temperatures=(1.0,), alphas=(0.0, 1.0), progress=False)
    assert error.value.partial is None
    assert not list(tmp_path.glob("grid-*"))


def test_sweep_transfer_sets_gives_each_seed_its_own_transfer_set(setting):
    train, test, teacher, _, spec = setting
    pool, scored_on = train.split(300, seed=experiment.VALIDATION_SEED)
    temperatures, alphas = (1.0, 4.0), (0.0, 1.0)
    grid = sweep_transfer_sets(teacher, pool, scored_on, spec, temperatures, alphas, transfer_size=50,
                               seeds=(seed for seed in (3, 4)), epochs=2, progress=False)  # a generator will do
    assert grid.runs.shape == (2, 2, 2) and grid.settings["seeds"] == [3, 4] and "seed" not in grid.settings
    assert grid.settings["scored_on"] == 300 and grid.settings["transfer_size"] == 50
    np.testing.assert_allclose(grid.accuracy, grid.runs.mean(axis=0))
    for run, seed in enumerate((3, 4)):  # run s: one student per cell, on seed s's own draw from the pool
        alone = sweep(teacher, pool.subset(50, seed=seed), scored_on, spec, temperatures, alphas, epochs=2, seed=seed,
                      progress=False)
        np.testing.assert_allclose(grid.runs[run], alone.runs[0], atol=1e-6)
    assert not torch.equal(pool.subset(50, seed=3).inputs, pool.subset(50, seed=4).inputs)
    low, high = grid.interval(0, 1)
    assert low <= grid.accuracy[0, 1] <= high
    with pytest.raises(ValueError, match="at least one seed"):
        sweep_transfer_sets(teacher, pool, scored_on, spec, temperatures, alphas, transfer_size=50, seeds=[],
                            epochs=1, progress=False)


def test_best_cell_is_the_highest_mean_not_the_highest_single_run():
    runs = np.array([[[0.80, 0.99], [0.90, 0.70]],
                     [[0.80, 0.70], [0.92, 0.71]]])  # (T=1, alpha=0.5) has the best run, (T=4, alpha=0) the best mean
    grid = Grid((1.0, 4.0), (0.0, 0.5), runs.mean(axis=0), "digits", {}, runs=runs)
    assert best_cell(grid) == (4.0, 0.0)
    assert best_cell(Grid((2.0,), (0.0, 0.25, 1.0), np.array([[0.5, 0.9, 0.6]]), "digits", {})) == (2.0, 0.25)
