import pytest
import torch

from kdlab.data import jitter
from kdlab.device import pick_device, predict_logits
from kdlab.interrupt import TrainingInterrupted
from kdlab.models import build_model, mlp_spec, teacher_spec
from kdlab.train import distill, evaluate, fit, teacher_answers


def small_student(train):
    return build_model(mlp_spec(train.input_shape, hidden=(32,)), seed=0)


def test_pick_device_prefers_what_exists_and_refuses_what_does_not():
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("gpu please")


def test_fit_learns_digits_and_records_a_history(digits):
    train, test = digits
    model = small_student(train)
    before = evaluate(model, test)["accuracy"]
    history = fit(model, train, test, epochs=10, progress=False)
    assert history.epochs == 10 and len(history.test_accuracy) == 10 and not history.interrupted
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.test_accuracy[-1] > 0.9 > before
    assert not model.training


def test_same_seed_same_numbers_on_cpu(digits):
    train, test = digits
    runs = []
    for _ in range(2):
        model = build_model(teacher_spec(train.input_shape), seed=1)  # dropout: the global RNG must be seeded too
        history = fit(model, train.subset(200), test, epochs=2, seed=4, progress=False)
        runs.append((history.train_loss, history.test_accuracy, next(model.parameters()).detach().clone()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][2], runs[1][2])


def test_distill_caches_teacher_logits_uses_eval_mode_and_moves_the_student_toward_the_teacher(digits):
    train, test = digits
    teacher = build_model(teacher_spec(train.input_shape), seed=0)
    fit(teacher, train, test, epochs=3, progress=False)
    teacher.zero_grad(set_to_none=True)
    teacher.train()  # distill must switch dropout off itself
    calls, modes = [], []

    def record(module, inputs, output):
        calls.append(len(inputs[0]))
        modes.append(module.training)

    teacher.register_forward_hook(record)
    transfer = train.subset(100)
    student = small_student(train)
    history = distill(student, teacher, transfer, test, T=4.0, alpha=1.0, epochs=20, progress=False)
    # one pass over the transfer set for the cached soft targets, then evaluation passes only
    assert calls[0] == len(transfer) and set(calls[1:]) == {len(test)}
    assert not any(modes)
    assert teacher.training  # its mode is restored afterwards
    assert all(p.grad is None for p in teacher.parameters())
    assert history.agreement[-1] > history.agreement[0]


def test_ctrl_c_stops_at_once_and_keeps_what_was_learned(digits):
    train, test = digits
    model = small_student(train)
    steps = []

    def interrupt_in_third_epoch(module, inputs, output):
        steps.append(1)
        if len(steps) == 2 * 21 + 5:  # 21 batches of 64 per epoch
            raise KeyboardInterrupt

    model.register_forward_hook(interrupt_in_third_epoch)
    with pytest.raises(TrainingInterrupted, match="stopped after 2 of 10 epochs") as stopped:
        fit(model, train, None, epochs=10, progress=False)
    assert isinstance(stopped.value, KeyboardInterrupt)  # code that does not know it still stops
    assert stopped.value.history.interrupted and stopped.value.history.epochs == 2
    model._forward_hooks.clear()
    assert evaluate(model, test)["accuracy"] > 0.5  # two epochs of learning kept, not thrown away


@pytest.mark.parametrize("options, message", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
    ({"teacher": "t", "T": -1.0}, "T must be"), ({"teacher": "t", "alpha": 2.0}, "alpha"),
])
def test_bad_training_arguments_are_refused_before_training(digits, options, message):
    train, _ = digits
    if options.get("teacher") == "t":
        options = {**options, "teacher": small_student(train)}
    with pytest.raises(ValueError, match=message):
        fit(small_student(train), train, epochs=options.pop("epochs", 1), **options)


def test_predict_logits_works_in_chunks_and_keeps_the_mode(digits):
    train, _ = digits
    model = small_student(train).train()
    whole = predict_logits(model, train.inputs[:100], batch_size=1000)
    chunked = predict_logits(model, train.inputs[:100], batch_size=7)
    assert torch.allclose(whole, chunked, atol=1e-6) and model.training


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a GPU: on a CPU-only machine every model is already on the only device")
def test_evaluate_moves_a_model_loaded_on_the_cpu_to_the_gpu(digits):
    _, test = digits
    model = small_student(test)  # as load_checkpoint returns it: on the CPU
    scores = evaluate(model, test, device="cuda")
    assert next(model.parameters()).device.type == "cuda" and 0 <= scores["accuracy"] <= 1


def test_training_leaves_the_callers_random_stream_alone(digits):
    train, _ = digits
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    fit(build_model(teacher_spec(train.input_shape), seed=0), train.subset(64), epochs=1, seed=5, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_jitter_moves_every_image_by_at_most_its_shift_and_keeps_the_pixels():
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, 4, 4] = 1.0
    images = image.repeat(200, 1, 1, 1)
    moved = jitter(images, 2, torch.Generator().manual_seed(0))
    assert moved.shape == images.shape
    rows, columns = (moved[:, 0] == 1.0).nonzero()[:, 1:].T
    assert len(rows) == 200  # one lit pixel per image, none lost
    assert set((rows - 4).tolist()) == set(range(-2, 3)) == set((columns - 4).tolist())
    assert torch.equal(jitter(images, 0, torch.Generator()), images)


def test_jitter_is_refused_when_distilling(digits):
    train, _ = digits
    with pytest.raises(ValueError, match="jitter_pixels is for training on labels"):
        fit(small_student(train), train.subset(50), teacher=small_student(train), epochs=1, jitter_pixels=2)


def test_label_smoothing_trains_towards_softer_targets(digits):
    train, _ = digits
    transfer = train.subset(100)
    plain, smoothed = small_student(train), small_student(train)
    fit(plain, transfer, epochs=200, seed=1, progress=False)
    fit(smoothed, transfer, epochs=200, seed=1, progress=False, label_smoothing=0.3)
    confidence = {name: torch.softmax(predict_logits(model, transfer.inputs), 1).max(1).values.mean().item()
                  for name, model in (("plain", plain), ("smoothed", smoothed))}
    assert confidence["smoothed"] < 0.85 < confidence["plain"]  # 0.3 spread over 10 classes caps it near 0.73
    with pytest.raises(ValueError, match="label_smoothing must lie in"):
        fit(small_student(train), transfer, epochs=1, label_smoothing=1.5)


def test_evaluate_per_example_says_which_examples_are_right_and_matches_the_accuracy(digits):
    train, test = digits
    model = small_student(train)
    fit(model, train.subset(200), epochs=2, progress=False)
    teacher = build_model(mlp_spec(train.input_shape, hidden=(8,)), seed=3)
    scores = evaluate(model, test, teacher=teacher, per_example=True)
    predictions = predict_logits(model, test.inputs).argmax(1).cpu()
    assert scores["correct"] == (predictions == test.labels.cpu()).int().tolist()
    assert len(scores["correct"]) == len(test) and set(scores["correct"]) == {0, 1}  # partly right after 2 epochs
    assert sum(scores["correct"]) / len(test) == pytest.approx(scores["accuracy"])
    assert "agreement" in scores
    assert evaluate(model, test, teacher=teacher).keys() == scores.keys() - {"correct"}  # only when asked


def test_a_teachers_answers_given_once_score_as_the_teacher_does(digits):
    train, test = digits
    model = small_student(train)
    fit(model, train.subset(200), epochs=2, progress=False)
    teacher = build_model(mlp_spec(train.input_shape, hidden=(8,)), seed=3)
    answers = teacher_answers(teacher, test)
    assert torch.equal(answers, predict_logits(teacher, test.inputs).argmax(1))
    with_teacher = evaluate(model, test, teacher=teacher, per_example=True)
    assert evaluate(model, test, teacher_predictions=answers, per_example=True) == with_teacher
    assert 0 < with_teacher["agreement"] < 1
    with pytest.raises(ValueError, match="the teacher or its predictions, not both"):
        evaluate(model, test, teacher=teacher, teacher_predictions=answers)


def test_method_dkd_takes_adams_step_on_decoupled_kd_loss(digits):
    from kdlab.losses import decoupled_kd_loss

    train, _ = digits
    transfer = train.subset(64)
    teacher = build_model(mlp_spec(train.input_shape, hidden=(32,)), seed=1)
    student = small_student(train)
    by_hand = small_student(train)
    fit(student, transfer, teacher=teacher, method="dkd", T=4.0, alpha=0.7, tckd_weight=0.5, nckd_weight=3.0,
        epochs=1, batch_size=64, progress=False)  # one batch: one step
    optimizer = torch.optim.Adam(by_hand.parameters(), lr=1e-3)
    by_hand.train()
    loss = decoupled_kd_loss(by_hand(transfer.inputs), predict_logits(teacher, transfer.inputs), transfer.labels,
                             T=4.0, alpha=0.7, tckd_weight=0.5, nckd_weight=3.0)
    loss.backward()
    optimizer.step()
    for ours, theirs in zip(student.parameters(), by_hand.parameters()):
        torch.testing.assert_close(ours, theirs)
    kd_student = small_student(train)
    fit(kd_student, transfer, teacher=teacher, T=4.0, alpha=0.7, epochs=1, batch_size=64, progress=False)
    assert not torch.allclose(next(kd_student.parameters()), next(student.parameters()))  # not kd_loss's step


@pytest.mark.parametrize("options, message", [
    ({"method": "dkd"}, 'method="dkd" distills from a teacher'),
    ({"method": "fkd", "teacher": True}, "method must be one of kd, dkd, got 'fkd'"),
    ({"method": "dkd", "teacher": True, "nckd_weight": -1.0}, "nckd_weight must be a finite number >= 0, got -1.0"),
    ({"method": "dkd", "teacher": True, "tckd_weight": float("nan")}, "tckd_weight must be a finite number >= 0"),
    ({"method": "dkd", "teacher": True, "nckd_weight": "8"}, "nckd_weight must be a finite number >= 0, got '8'"),
])
def test_a_bad_method_or_dkd_weight_is_refused_before_any_training(digits, options, message):
    train, _ = digits
    options = dict(options)
    teacher = build_model(mlp_spec(train.input_shape, hidden=(8,)), seed=0) if options.pop("teacher", False) else None
    model = small_student(train)
    before = [parameter.detach().clone() for parameter in model.parameters()]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit(model, train.subset(50), teacher=teacher, epochs=1, progress=False, **options)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
