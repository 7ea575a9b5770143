"""Tests for kdlab.losses: the loss against an independent float64 formula, its gradients,
the 1/T^2 story the notebooks tell, and the error messages for bad inputs."""

import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from kdlab import (
    KDLossParts,
    alpha_from_ce_weighting,
    kd_loss,
    soft_targets,
    soft_term_gradient,
    soft_term_gradient_high_T,
)
from kdlab import losses as kdlab_losses
from kdlab.losses import (
    MAX_GRADIENT_TEMPERATURE,
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    check_hyperparameters,
    check_temperature,
)

# --- an independent reference, written from the definitions in numpy / float64 -------------


def np_log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_kl_ce(student, teacher, labels, T):
    """KL(p_teacher^T || p_student^T) summed over classes and CE at T=1, both averaged over examples."""
    n = student.shape[0]
    log_p = np_log_softmax(teacher / T)
    log_q = np_log_softmax(student / T)
    kl = sum(sum(math.exp(log_p[i, c]) * (log_p[i, c] - log_q[i, c]) for c in range(student.shape[1]))
             for i in range(n)) / n
    log_q1 = np_log_softmax(student)
    ce = -sum(log_q1[i, labels[i]] for i in range(n)) / n
    return kl, ce


def make_batch(n=6, c=5, scale=3.0, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    student = (scale * torch.randn(n, c, generator=g)).to(dtype)
    teacher = (scale * torch.randn(n, c, generator=g)).to(dtype)
    labels = torch.randint(0, c, (n,), generator=g)
    return student, teacher, labels


# --- agreement with the reference ------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 8),
    c=st.integers(2, 12),
    T=st.floats(0.1, 50.0),
    alpha=st.floats(0.0, 1.0),
    scale=st.floats(0.1, 20.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_kd_loss_matches_independent_formula(n, c, T, alpha, scale, seed):
    student, teacher, labels = make_batch(n, c, scale, seed)
    kl, ce = np_kl_ce(student.numpy(), teacher.numpy(), labels.numpy(), T)
    expected = alpha * T**2 * kl + (1 - alpha) * ce
    parts = kd_loss(student, teacher, labels, T=T, alpha=alpha, return_parts=True)
    assert parts.kl.item() == pytest.approx(kl, rel=1e-9, abs=1e-12)
    assert parts.ce.item() == pytest.approx(ce, rel=1e-9, abs=1e-12)
    assert parts.total.item() == pytest.approx(expected, rel=1e-9, abs=1e-10)


def test_float32_loss_close_to_reference():
    student, teacher, labels = make_batch(8, 10, seed=1, dtype=torch.float32)
    kl, ce = np_kl_ce(student.double().numpy(), teacher.double().numpy(), labels.numpy(), 4.0)
    got = kd_loss(student, teacher, labels, T=4.0, alpha=0.7)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(0.7 * 16 * kl + 0.3 * ce, rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_logits_are_computed_in_float32(dtype):
    student, teacher, labels = make_batch(8, 10, seed=2, dtype=torch.float32)
    low_s, low_t = student.to(dtype), teacher.to(dtype)
    got = kd_loss(low_s, low_t, labels, T=20.0)
    # The reference is the float32 loss of the same (rounded) logits: only the rounding of
    # the inputs may differ, not the arithmetic.
    expected = kd_loss(low_s.float(), low_t.float(), labels, T=20.0)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


# Across the documented range, both ends included, and at every logit scale a model produces.
RANGE_TEMPERATURES = [MIN_TEMPERATURE, 0.1, 0.5, 1.0, 4.0, 20.0, 50.0, MAX_TEMPERATURE]


@pytest.mark.parametrize("scale", [0.3, 1.0, 5.0, 30.0])
@pytest.mark.parametrize("T", RANGE_TEMPERATURES)
def test_float32_loss_and_gradient_are_accurate_across_the_temperature_range(T, scale):
    student, teacher, labels = make_batch(32, 10, scale=scale, seed=20, dtype=torch.float32)
    kl, ce = np_kl_ce(student.double().numpy(), teacher.double().numpy(), labels.numpy(), T)
    leaf, reference_leaf = student.clone().requires_grad_(), student.double().requires_grad_()
    loss = kd_loss(leaf, teacher, labels, T=T, alpha=0.9)
    (gradient,) = torch.autograd.grad(loss, leaf)
    reference_loss = kd_loss(reference_leaf, teacher.double(), labels, T=T, alpha=0.9)
    (reference_gradient,) = torch.autograd.grad(reference_loss, reference_leaf)
    assert loss.item() == pytest.approx(0.9 * T**2 * kl + 0.1 * ce, rel=1e-5, abs=1e-3)  # 1e-3 nats, documented
    assert (gradient.double() - reference_gradient).abs().max() <= 1e-4 * reference_gradient.abs().max()


def test_above_the_range_float32_is_no_longer_accurate():
    """Why MAX_TEMPERATURE is where it is: the unchecked loss drifts as about 1e-7 * T^2 nats."""
    student, teacher, labels = make_batch(32, 10, scale=1.0, seed=21, dtype=torch.float32)
    kl, _ = np_kl_ce(student.double().numpy(), teacher.double().numpy(), labels.numpy(), 1e6)
    true_soft_term = 1e12 * kl
    soft_term = kd_loss(student, teacher, labels, T=1e6, alpha=1.0, check_inputs=False).item()
    assert abs(soft_term - true_soft_term) > 100 * true_soft_term  # T = 1e6: garbage, hence the bound


@pytest.mark.parametrize("T", [MIN_TEMPERATURE, 1.0, 100.0, MAX_GRADIENT_TEMPERATURE])
def test_gradient_formula_is_accurate_up_to_its_own_bound(T):
    student, teacher, _ = make_batch(64, 10, scale=1.0, seed=22, dtype=torch.float32)
    got = soft_term_gradient(student, teacher, T).double()
    reference = soft_term_gradient(student.double(), teacher.double(), T)
    assert ((got - reference).norm(dim=1) / reference.norm(dim=1)).max() < 1e-3


def test_soft_targets_is_tempered_softmax():
    logits = torch.tensor([[1.0, 2.0, 4.0], [0.0, -3.0, 3.0]], dtype=torch.float64)
    expected = np.exp(np_log_softmax(logits.numpy() / 2.5))
    np.testing.assert_allclose(soft_targets(logits, 2.5).numpy(), expected, rtol=1e-12)


# --- gradients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("T,alpha", [(0.5, 0.3), (1.0, 0.9), (4.0, 0.5), (20.0, 1.0)])
def test_autograd_matches_analytic_gradients(T, alpha):
    student, teacher, labels = make_batch(7, 6, seed=3)
    student.requires_grad_(True)
    n = student.shape[0]
    parts = kd_loss(student, teacher, labels, T=T, alpha=alpha, return_parts=True)
    (grad_kl,) = torch.autograd.grad(parts.kl, student, retain_graph=True)
    analytic = soft_term_gradient(student.detach(), teacher, T)
    torch.testing.assert_close(grad_kl, analytic / n, rtol=1e-10, atol=1e-12)

    (grad_total,) = torch.autograd.grad(parts.total, student)
    hard_grad = (torch.softmax(student.detach(), -1) - F.one_hot(labels, 6)) / n
    torch.testing.assert_close(grad_total, alpha * T**2 * analytic / n + (1 - alpha) * hard_grad,
                               rtol=1e-10, atol=1e-12)


def test_soft_gradient_falls_as_one_over_T_squared_and_T2_restores_it():
    student, teacher, _ = make_batch(16, 10, scale=1.0, seed=4)
    temperatures = np.logspace(1, 3, 9)
    norms = np.array([soft_term_gradient(student, teacher, T).norm().item() for T in temperatures])
    slope = np.polyfit(np.log(temperatures), np.log(norms), 1)[0]
    assert slope == pytest.approx(-2.0, abs=0.05)
    weighted = 0.9 * temperatures**2 * norms
    assert weighted.max() / weighted.min() < 1.03


def test_high_T_approximation_holds_only_at_high_T():
    student, teacher, _ = make_batch(16, 10, scale=3.0, seed=5)
    student = student - student.mean(-1, keepdim=True)
    teacher = teacher - teacher.mean(-1, keepdim=True)

    def rel_error(T):
        exact = soft_term_gradient(student, teacher, T)
        approx = soft_term_gradient_high_T(student, teacher, T)
        return ((approx - exact).norm() / exact.norm()).item()

    assert rel_error(100.0) < 0.02
    assert rel_error(1.0) > 0.3


def test_teacher_gets_no_gradient():
    student, teacher, labels = make_batch(seed=6)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    kd_loss(student, teacher, labels).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None or not teacher.grad.any()


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
@pytest.mark.parametrize("T", [MIN_TEMPERATURE, 1.0, MAX_TEMPERATURE])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stable_for_extreme_logits_and_temperatures(scale, T, dtype):
    student, teacher, labels = make_batch(8, 10, scale=scale, seed=7, dtype=dtype)
    student.requires_grad_(True)
    loss = kd_loss(student, teacher, labels, T=T, alpha=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    assert torch.isfinite(soft_term_gradient(student.detach(), teacher, T)).all()


# --- special cases and structure -------------------------------------------------------------


def test_alpha_zero_is_cross_entropy():
    student, teacher, labels = make_batch(seed=8)
    torch.testing.assert_close(kd_loss(student, teacher, labels, T=3.0, alpha=0.0), F.cross_entropy(student, labels))


def test_alpha_one_is_T2_times_kl_only():
    student, teacher, labels = make_batch(seed=9)
    kl, _ = np_kl_ce(student.numpy(), teacher.numpy(), labels.numpy(), 3.0)
    loss = kd_loss(student, teacher, labels, T=3.0, alpha=1.0)
    assert loss.item() == pytest.approx(9.0 * kl, rel=1e-10)
    other_labels = (labels + 1) % student.shape[1]
    assert kd_loss(student, teacher, other_labels, T=3.0, alpha=1.0).item() == loss.item()


def test_kl_is_zero_when_student_equals_teacher():
    student, _, labels = make_batch(seed=10)
    parts = kd_loss(student, student.clone(), labels, T=2.0, return_parts=True)
    assert parts.kl.item() == pytest.approx(0.0, abs=1e-12)
    different = kd_loss(student, student.flip(-1), labels, T=2.0, return_parts=True)
    assert different.kl.item() > 1e-3


def test_return_parts_are_consistent():
    student, teacher, labels = make_batch(seed=11)
    student.requires_grad_(True)
    parts = kd_loss(student, teacher, labels, T=5.0, alpha=0.8, return_parts=True)
    assert isinstance(parts, KDLossParts)
    assert parts.soft.item() == pytest.approx(0.8 * 25 * parts.kl.item(), rel=1e-12)
    assert parts.hard.item() == pytest.approx(0.2 * parts.ce.item(), rel=1e-12)
    assert parts.total.item() == pytest.approx(parts.soft.item() + parts.hard.item(), rel=1e-12)
    assert parts.total.item() == kd_loss(student, teacher, labels, T=5.0, alpha=0.8).item()
    assert parts.total.requires_grad


def test_token_level_loss_is_mean_over_tokens():
    b, length, c = 3, 4, 7
    student, teacher, labels = make_batch(b * length, c, seed=12)
    student, teacher, labels = student.view(b, length, c), teacher.view(b, length, c), labels.view(b, length)
    per_token = [
        kd_loss(student[i, j : j + 1], teacher[i, j : j + 1], labels[i, j : j + 1], T=2.0, alpha=0.6)
        for i in range(b)
        for j in range(length)
    ]
    got = kd_loss(student, teacher, labels, T=2.0, alpha=0.6)
    torch.testing.assert_close(got, torch.stack(per_token).mean())


# --- conventions -----------------------------------------------------------------------------


@pytest.mark.parametrize("alpha_on_ce", [0.0, 0.1, 0.5, 1.0])
def test_alpha_from_ce_weighting_reproduces_other_convention(alpha_on_ce):
    student, teacher, labels = make_batch(seed=13)
    T = 4.0
    kl, ce = np_kl_ce(student.numpy(), teacher.numpy(), labels.numpy(), T)
    keras_style = alpha_on_ce * ce + (1 - alpha_on_ce) * T**2 * kl
    ours = kd_loss(student, teacher, labels, T=T, alpha=alpha_from_ce_weighting(alpha_on_ce))
    assert ours.item() == pytest.approx(keras_style, rel=1e-10)


# --- validation --------------------------------------------------------------------------------


def _good():
    student, teacher, labels = make_batch(4, 5, seed=14)
    return dict(student_logits=student, teacher_logits=teacher, labels=labels, T=2.0, alpha=0.5)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(T=0.0), r"T must be a number in \[0\.05, 100\], got 0\.0; outside that range float32"),
        (dict(T=-1.0), r"T must be a number in \[0\.05, 100\], got -1\.0"),
        (dict(T=1e-300), r"T must be a number in \[0\.05, 100\], got 1e-300"),
        (dict(T=1e20), r"T must be a number in \[0\.05, 100\], got 1e\+20"),
        (dict(T=0.049), r"got 0\.049"),
        (dict(T=100.5), r"got 100\.5"),
        (dict(T=float("inf")), r"T must be a number in .*, got inf"),
        (dict(T=float("nan")), r"T must be a number in .*, got nan"),
        (dict(T=True), r"T must be .*got True of type bool"),
        (dict(T="4"), r"T must be .*got '4' of type str"),
        (dict(T=None), r"T must be .*got None of type NoneType"),
        (dict(alpha=1.5), r"alpha must be a finite number in \[0, 1\], got 1\.5"),
        (dict(alpha=-0.1), r"alpha must be .*\[0, 1\], got -0\.1"),
        (dict(alpha=float("nan")), r"alpha must be .*, got nan"),
        (dict(teacher_logits=torch.zeros(4, 6)), r"same shape, got \(4, 5\) and \(4, 6\)"),
        (dict(labels=torch.zeros(3, dtype=torch.long)), r"labels must have shape \(4,\).*got \(3,\)"),
        (dict(labels=torch.zeros(4)), r"labels must be integer class indices, got dtype torch\.float32"),
        (dict(labels=torch.tensor([0, 1, 5, 2])), r"labels must be in \[0, 5\), got 5"),
        (dict(labels=torch.tensor([0, -1, 2, 2])), r"labels must be in \[0, 5\), got -1"),
        (dict(student_logits=torch.tensor([[0.0, float("nan"), 0, 0, 0]] * 4)), r"student_logits must be finite"),
        (dict(teacher_logits=torch.full((4, 5), float("inf"))), r"teacher_logits must be finite"),
        (dict(student_logits=torch.empty(0, 5), teacher_logits=torch.empty(0, 5),
              labels=torch.empty(0, dtype=torch.long)), r"the batch is empty \(logits of shape \(0, 5\)\)"),
    ],
)
def test_kd_loss_rejects_bad_inputs(change, match):
    kwargs = {**_good(), **change}
    with pytest.raises(ValueError, match=match):
        kd_loss(**kwargs)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s, t: soft_targets(s, 0), r"T must be a number in \[0\.05, 100\], got 0"),
        (lambda s, t: soft_targets(s, 1e6), r"T must be a number in \[0\.05, 100\], got 1000000\.0"),
        (lambda s, t: soft_term_gradient(s, t, 1e9), r"T must be a number in \[0\.05, 1000\], got 1000000000"),
        (lambda s, t: soft_term_gradient_high_T(s, t, 0.01), r"T must be a number in \[0\.05, 1000\]"),
        (lambda s, t: soft_term_gradient(s, t[:, :3], 2.0), r"same shape, got \(4, 5\) and \(4, 3\)"),
        (lambda s, t: soft_term_gradient_high_T(s, t, -2.0), r"T must be .*got -2\.0"),
        (lambda s, t: alpha_from_ce_weighting(2.0), r"alpha must be .*\[0, 1\], got 2\.0"),
    ],
)
def test_helpers_reject_bad_inputs(call, match):
    student, teacher, _ = make_batch(4, 5, seed=15)
    with pytest.raises(ValueError, match=match):
        call(student, teacher)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8])
@pytest.mark.parametrize("check_inputs", [True, False])
def test_labels_of_any_integer_dtype_give_the_int64_loss(dtype, check_inputs):
    student, teacher, labels = make_batch(6, 5, seed=17)
    expected = kd_loss(student, teacher, labels, T=3.0, alpha=0.4)
    found = kd_loss(student, teacher, labels.to(dtype), T=3.0, alpha=0.4, check_inputs=check_inputs)
    assert torch.equal(found, expected)


_NOT_TENSORS = {"list": [[0.5, 1.0]], "ndarray": np.zeros((4, 5)), "NoneType": None}


@pytest.mark.parametrize("type_name", sorted(_NOT_TENSORS))
@pytest.mark.parametrize("function, argument", [
    ("kd_loss", "student_logits"), ("kd_loss", "teacher_logits"), ("kd_loss", "labels"),
    ("soft_targets", "logits"),
    ("soft_term_gradient", "student_logits"), ("soft_term_gradient", "teacher_logits"),
    ("soft_term_gradient_high_T", "student_logits"), ("soft_term_gradient_high_T", "teacher_logits"),
    ("cosine_feature_loss", "student_features"), ("cosine_feature_loss", "teacher_features"),
    ("hint_loss", "regressed_student_features"), ("hint_loss", "teacher_features"),
])
def test_losses_refuse_what_is_not_a_tensor_naming_the_argument(function, argument, type_name):
    student, teacher, labels = make_batch(4, 5, seed=18)
    tensors = {"student_logits": student, "teacher_logits": teacher, "labels": labels, "logits": student,
               "student_features": student, "regressed_student_features": student, "teacher_features": teacher}
    names = [name for name in inspect.signature(getattr(kdlab_losses, function)).parameters if name in tensors]
    arguments = {name: tensors[name] for name in names} | {argument: _NOT_TENSORS[type_name]}
    if function.startswith("soft"):
        arguments["T"] = 2.0
    with pytest.raises(TypeError, match=rf"^{argument} must be a torch\.Tensor, got {type_name}$"):
        getattr(kdlab_losses, function)(**arguments)


def test_the_ends_of_the_range_are_accepted_everywhere():
    student, teacher, labels = make_batch(4, 5, seed=16)
    for T in (MIN_TEMPERATURE, MAX_TEMPERATURE):
        check_temperature(T)
        check_hyperparameters(T, 0.5)
        assert torch.isfinite(kd_loss(student, teacher, labels, T=T))
        assert torch.isfinite(soft_targets(student, T)).all()
    with pytest.raises(ValueError, match=r"T must be a number in \[0\.05, 100\], got 1e\+20; .*a T inside it"):
        check_temperature(1e20)


def test_unchecked_fast_path_gives_the_same_loss_and_check_hyperparameters_refuses_bad_values():
    student, teacher = torch.randn(6, 5), torch.randn(6, 5)
    labels = torch.randint(0, 5, (6,))
    checked = kd_loss(student, teacher, labels, T=3.0, alpha=0.4)
    unchecked = kd_loss(student, teacher, labels, T=3.0, alpha=0.4, check_inputs=False)
    assert torch.equal(checked, unchecked)
    check_hyperparameters(3.0, 0.4)
    with pytest.raises(ValueError, match="alpha"):
        check_hyperparameters(3.0, 1.5)
    with pytest.raises(ValueError, match="T must be"):
        check_hyperparameters(0, 0.5)


# --- feature losses, against hand-written loops in numpy / float64 -------------------------------

def reference_cosine_feature_loss(student, teacher):
    student, teacher = (np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in (student, teacher))
    losses = []
    for s, t in zip(student, teacher):
        dot = sum(a * b for a, b in zip(s, t))
        norms = math.sqrt(sum(a * a for a in s)) * math.sqrt(sum(b * b for b in t))
        losses.append(1 - dot / norms)
    return sum(losses) / len(losses)


def reference_hint_loss(student, teacher):
    student, teacher = (np.asarray(a, dtype=np.float64).ravel() for a in (student, teacher))
    return sum((a - b) ** 2 for a, b in zip(student, teacher)) / len(student)


@pytest.mark.parametrize("shape", [(1, 3), (7, 16), (4, 2, 3, 3)])
def test_cosine_feature_loss_matches_a_hand_written_loop(shape):
    generator = torch.Generator().manual_seed(21)
    student, teacher = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
    loss = kdlab_losses.cosine_feature_loss(student, teacher)
    assert loss.shape == () and loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference_cosine_feature_loss(student, teacher), abs=1e-6)


def test_cosine_feature_loss_sees_only_direction_and_trains_only_the_student():
    generator = torch.Generator().manual_seed(22)
    teacher = torch.randn(5, 8, generator=generator)
    assert kdlab_losses.cosine_feature_loss(3.0 * teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert kdlab_losses.cosine_feature_loss(-teacher, teacher).item() == pytest.approx(2.0, abs=1e-6)
    student = torch.randn(5, 8, generator=generator, requires_grad=True)
    teacher.requires_grad_(True)
    kdlab_losses.cosine_feature_loss(student, teacher).backward()
    assert student.grad is not None and teacher.grad is None
    # the gradient is orthogonal to the student's own vector: scaling it changes nothing
    assert torch.allclose((student.grad * student.detach()).sum(dim=1), torch.zeros(5), atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 5), (3, 4, 2, 2), (1, 1, 1, 1)])
def test_hint_loss_matches_a_hand_written_loop(shape):
    generator = torch.Generator().manual_seed(23)
    student, teacher = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
    loss = kdlab_losses.hint_loss(student, teacher)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(reference_hint_loss(student, teacher), rel=1e-6)


def test_hint_loss_trains_the_student_and_its_regressor_but_not_the_teacher():
    generator = torch.Generator().manual_seed(24)
    student_map = torch.randn(3, 4, 2, 2, generator=generator)
    teacher_map = torch.randn(3, 8, 2, 2, generator=generator, requires_grad=True)
    regressor = torch.nn.Conv2d(4, 8, kernel_size=1)
    kdlab_losses.hint_loss(regressor(student_map), teacher_map).backward()
    assert regressor.weight.grad is not None and teacher_map.grad is None
    half_precision = kdlab_losses.hint_loss(student_map.bfloat16(), student_map.bfloat16())
    assert half_precision.dtype == torch.float32 and half_precision.item() == 0.0


@pytest.mark.parametrize(
    "loss, student, teacher, match",
    [
        ("cosine_feature_loss", torch.randn(4, 16), torch.randn(4, 64),
         r"same shape, got \(4, 16\) and \(4, 64\); pool"),
        ("cosine_feature_loss", torch.randn(16), torch.randn(16), r"features must be \(N, D\)"),
        ("cosine_feature_loss", torch.randn(0, 16), torch.randn(0, 16), "the batch is empty"),
        ("hint_loss", torch.randn(2, 4, 4, 4), torch.randn(2, 32, 4, 4), r"same shape.*regressor.*1x1 nn\.Conv2d"),
        ("hint_loss", torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2), r"\(2, 8, 4, 4\) and \(2, 8, 2, 2\)"),
        ("hint_loss", torch.randn(3), torch.randn(3), r"features must be \(N, C, H, W\)"),
    ],
)
def test_feature_losses_refuse_bad_shapes_clearly(loss, student, teacher, match):
    with pytest.raises(ValueError, match=match):
        getattr(kdlab_losses, loss)(student, teacher)
