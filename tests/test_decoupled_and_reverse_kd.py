"""Tests for the two variants of KD's soft term in kdlab.losses: decoupled KD (Zhao et al., CVPR 2022) and the
reverse KL, each against a float64 reference written from the paper's formulas, their gradients, and their errors."""

import decimal
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlab.losses import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    DecoupledKLParts,
    KDLossParts,
    decoupled_kd_loss,
    decoupled_kl_parts,
    kd_loss,
    reverse_kd_loss,
)

TEMPERATURES = [MIN_TEMPERATURE, 0.5, 1.0, 4.0, 20.0, MAX_TEMPERATURE]


def make_batch(n=6, c=5, scale=3.0, seed=0, dtype=torch.float64, teacher_margin=0.0):
    """Random logits; teacher_margin > 0 lifts the teacher's target logit, making it near one-hot."""
    g = torch.Generator().manual_seed(seed)
    student = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    teacher = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    labels = torch.randint(0, c, (n,), generator=g)
    teacher[torch.arange(n), labels] += teacher_margin
    return student.to(dtype), teacher.to(dtype), labels


# --- references, from the definitions ---------------------------------------------------------------------

def exact_softmax(z, T):
    """softmax(z / T) in 50-digit decimals: the paper's formulas may then divide probabilities near 1 freely."""
    scaled = [decimal.Decimal(float(v)) / decimal.Decimal(T) for v in z]
    top = max(scaled)
    weights = [(v - top).exp() for v in scaled]
    total = sum(weights)
    return [w / total for w in weights]


def exact_kl(p, q):
    return sum(a * (a / b).ln() for a, b in zip(p, q) if a > 0)


def reference_dkd_parts(student, teacher, labels, T):
    """Zhao et al.'s eq. 1-3 as written: b = [p_t, sum of the others], p_hat = p_i / sum of the others."""
    tckd, nckd, weight = [], [], []
    with decimal.localcontext(decimal.Context(prec=50)):
        for s, t, y in zip(student.tolist(), teacher.tolist(), labels.tolist()):
            p_s, p_t = exact_softmax(s, T), exact_softmax(t, T)
            rest_s, rest_t = p_s[:y] + p_s[y + 1:], p_t[:y] + p_t[y + 1:]
            tckd.append(exact_kl([p_t[y], sum(rest_t)], [p_s[y], sum(rest_s)]))
            nckd.append(exact_kl([v / sum(rest_t) for v in rest_t], [v / sum(rest_s) for v in rest_s]))
            weight.append(sum(rest_t))
    return tuple(np.array([float(v) for v in values]) for values in (tckd, nckd, weight))


def reference_kl_and_ce(student, teacher, labels, T, reverse=False):
    """Per-example KL at T (teacher || student, or student || teacher) and CE at T = 1."""
    kls, ces = [], []
    with decimal.localcontext(decimal.Context(prec=50)):
        for s, t, y in zip(student.tolist(), teacher.tolist(), labels.tolist()):
            p_s, p_t = exact_softmax(s, T), exact_softmax(t, T)
            kls.append(exact_kl(p_s, p_t) if reverse else exact_kl(p_t, p_s))
            ces.append(-exact_softmax(s, 1)[y].ln())
    return tuple(np.array([float(v) for v in values]) for values in (kls, ces))


def resolution(student, teacher, T):
    """What float64 resolves in a KL at T: logits / T are rounded to about 1e-16 of their size."""
    return 1e-15 * max(1.0, max(student.abs().max().item(), teacher.abs().max().item()) / T)


def teacher_at_half(teacher, labels, T):
    """The teacher with its target logit set so that p_teacher(target) = 1/2 at T in every example."""
    teacher = teacher.clone()
    rows = torch.arange(len(labels))
    others = teacher.scatter(1, labels[:, None], -math.inf)
    teacher[rows, labels] = T * torch.logsumexp(others / T, dim=1)
    return teacher


# --- decoupled KD: agreement with the paper ---------------------------------------------------------------

@pytest.mark.parametrize("margin", [0.0, 8.0, 40.0])
@pytest.mark.parametrize("T", TEMPERATURES)
def test_decoupled_parts_and_loss_match_the_papers_formulas(T, margin):
    student, teacher, labels = make_batch(16, 10, scale=3.0, seed=1, teacher_margin=margin * min(T, 1.0))
    tckd, nckd, weight = reference_dkd_parts(student, teacher, labels, T)
    parts = decoupled_kl_parts(student, teacher, labels, T)
    assert isinstance(parts, DecoupledKLParts)
    atol = resolution(student, teacher, T)
    np.testing.assert_allclose(parts.tckd.numpy(), tckd, rtol=1e-12, atol=atol)
    np.testing.assert_allclose(parts.nckd.numpy(), nckd, rtol=1e-12, atol=atol)
    np.testing.assert_allclose(parts.non_target_weight.numpy(), weight, rtol=1e-12, atol=0)
    _, ce = reference_kl_and_ce(student, teacher, labels, T)
    expected = 0.7 * T**2 * (2.0 * tckd + 5.0 * nckd).mean() + 0.3 * ce.mean()
    got = decoupled_kd_loss(student, teacher, labels, T=T, alpha=0.7, tckd_weight=2.0, nckd_weight=5.0)
    assert got.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("margin", [0.0, 10.0, 1e4])
@pytest.mark.parametrize("T", TEMPERATURES)
def test_tckd_plus_weighted_nckd_is_the_kl_to_float64_precision(T, margin):
    student, teacher, labels = make_batch(32, 10, scale=5.0, seed=2, teacher_margin=margin)
    parts = decoupled_kl_parts(student, teacher, labels, T)
    kl_per_example = F.kl_div(F.log_softmax(student / T, -1), F.log_softmax(teacher / T, -1),
                              reduction="none", log_target=True).sum(-1)
    identity = parts.tckd + parts.non_target_weight * parts.nckd
    torch.testing.assert_close(identity, kl_per_example, rtol=1e-12, atol=resolution(student, teacher, T))
    soft = kd_loss(student, teacher, labels, T=T, alpha=1.0)
    assert (T**2 * identity.mean()).item() == pytest.approx(soft.item(), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("T", [MIN_TEMPERATURE, 1.0, 4.0, MAX_TEMPERATURE])
def test_dkd_is_kd_when_its_nckd_weight_is_kds_own(T, alpha):
    """KD's NCKD weight is 1 - p_teacher(target); a teacher at p(target) = 1/2 everywhere makes it the constant
    1/2, so DKD with tckd_weight = 1 and nckd_weight = 1/2 must give kd_loss itself."""
    student, teacher, labels = make_batch(16, 10, scale=3.0, seed=3)
    teacher = teacher_at_half(teacher, labels, T)
    weight = decoupled_kl_parts(student, teacher, labels, T).non_target_weight
    torch.testing.assert_close(weight, torch.full_like(weight, 0.5), rtol=0, atol=resolution(student, teacher, T))
    dkd = decoupled_kd_loss(student, teacher, labels, T=T, alpha=alpha, tckd_weight=1.0, nckd_weight=0.5)
    assert dkd.item() == pytest.approx(kd_loss(student, teacher, labels, T=T, alpha=alpha).item(), rel=1e-12)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_at_weights_one_one_dkd_exceeds_kd_by_the_nckd_kd_suppresses(T):
    """alpha = beta = 1 is not KD: it adds back p_teacher(target) * NCKD, what the teacher's confidence removed."""
    student, teacher, labels = make_batch(16, 10, scale=3.0, seed=4, teacher_margin=4.0)
    parts = decoupled_kl_parts(student, teacher, labels, T)
    gap = (decoupled_kd_loss(student, teacher, labels, T=T, alpha=1.0, tckd_weight=1.0, nckd_weight=1.0)
           - kd_loss(student, teacher, labels, T=T, alpha=1.0))
    expected = T**2 * ((1 - parts.non_target_weight) * parts.nckd).mean()
    assert gap.item() == pytest.approx(expected.item(), rel=1e-10) and expected.item() > 0.1


def test_nckd_ignores_the_target_logit_even_where_p_target_rounds_to_one():
    """Renormalising by masking logits, not dividing probabilities: at a margin of 1e4, p(target) is exactly 1.0
    in float64 and 1 - p(target) underflows to 0, yet NCKD is the same as with no margin, and TCKD is ~0."""
    student, teacher, labels = make_batch(8, 10, seed=5)
    plain = decoupled_kl_parts(student, teacher, labels, 1.0)
    lifted_s, lifted_t = student.clone(), teacher.clone()
    rows = torch.arange(len(labels))
    lifted_s[rows, labels] += 1e4
    lifted_t[rows, labels] += 1e4
    lifted = decoupled_kl_parts(lifted_s, lifted_t, labels, 1.0)
    assert (F.softmax(lifted_t, -1)[rows, labels] == 1.0).all()
    torch.testing.assert_close(lifted.nckd, plain.nckd, rtol=1e-12, atol=0)
    assert (lifted.non_target_weight == 0).all() and lifted.tckd.abs().max() < 1e-300


def test_float32_dkd_is_close_to_float64_and_low_precision_is_computed_in_float32():
    student, teacher, labels = make_batch(32, 10, seed=6, teacher_margin=6.0)
    reference = decoupled_kd_loss(student, teacher, labels, T=4.0)
    got = decoupled_kd_loss(student.float(), teacher.float(), labels, T=4.0)
    assert got.dtype == torch.float32 and got.item() == pytest.approx(reference.item(), rel=1e-5)
    low = decoupled_kd_loss(student.bfloat16(), teacher.bfloat16(), labels, T=4.0)
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(
        decoupled_kd_loss(student.bfloat16().float(), teacher.bfloat16().float(), labels, T=4.0).item(), rel=1e-6)


def test_dkd_structure_tokens_teacher_and_fast_path():
    b, length, c = 3, 4, 7
    student, teacher, labels = make_batch(b * length, c, seed=7)
    student, teacher, labels = student.view(b, length, c), teacher.view(b, length, c), labels.view(b, length)
    per_token = [decoupled_kd_loss(student[i, j:j + 1], teacher[i, j:j + 1], labels[i, j:j + 1], T=2.0)
                 for i in range(b) for j in range(length)]
    torch.testing.assert_close(decoupled_kd_loss(student, teacher, labels, T=2.0), torch.stack(per_token).mean())
    assert decoupled_kl_parts(student, teacher, labels, 2.0).nckd.shape == (b, length)
    assert torch.equal(decoupled_kd_loss(student, teacher, labels.int(), T=2.0, check_inputs=False),
                       decoupled_kd_loss(student, teacher, labels, T=2.0))
    assert decoupled_kd_loss(student, teacher, labels, alpha=0.0).item() == pytest.approx(
        F.cross_entropy(student.reshape(-1, c), labels.reshape(-1)).item(), rel=1e-12)
    assert decoupled_kd_loss(student, student.clone(), labels, alpha=1.0).item() == pytest.approx(0.0, abs=1e-12)


# --- reverse KL -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [0.3, 3.0, 30.0])
@pytest.mark.parametrize("T", TEMPERATURES)
def test_reverse_kd_loss_matches_the_float64_reference(T, scale):
    student, teacher, labels = make_batch(16, 10, scale=scale, seed=8)
    kl_values, ce = reference_kl_and_ce(student, teacher, labels, T, reverse=True)
    parts = reverse_kd_loss(student, teacher, labels, T=T, alpha=0.8, return_parts=True)
    assert isinstance(parts, KDLossParts)
    assert parts.kl.item() == pytest.approx(kl_values.mean(), rel=1e-9, abs=1e-14)
    assert parts.total.item() == pytest.approx(0.8 * T**2 * kl_values.mean() + 0.2 * ce.mean(), rel=1e-9, abs=1e-12)
    assert parts.total.item() == pytest.approx(parts.soft.item() + parts.hard.item(), rel=1e-12)


@pytest.mark.parametrize("T", TEMPERATURES)
def test_float32_reverse_kl_is_within_the_documented_error_across_the_range(T):
    student, teacher, labels = make_batch(32, 10, scale=5.0, seed=9)
    reference = reverse_kd_loss(student, teacher, labels, T=T)
    got = reverse_kd_loss(student.float(), teacher.float(), labels, T=T)
    assert got.dtype == torch.float32 and got.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-3)


def test_reverse_is_not_forward_and_both_vanish_at_the_teacher():
    student, teacher, labels = make_batch(seed=10)
    assert reverse_kd_loss(student, student.clone(), labels, alpha=1.0).item() == pytest.approx(0.0, abs=1e-12)
    forward = kd_loss(student, teacher, labels, alpha=1.0)
    assert abs(reverse_kd_loss(student, teacher, labels, alpha=1.0).item() - forward.item()) > 1e-2
    # KL(student || teacher) is kd_loss's KL with the two swapped.
    assert reverse_kd_loss(student, teacher, labels, alpha=1.0).item() == pytest.approx(
        kd_loss(teacher, student, labels, alpha=1.0).item(), rel=1e-12)


@pytest.mark.parametrize("T", [0.5, 4.0, 50.0])
def test_reverse_kl_gradient_is_the_analytic_one(T):
    """d KL(q || p) / d z_s,i = (1/T) q_i (log q_i - log p_i - KL(q || p)); batchmean divides by N."""
    student, teacher, labels = make_batch(8, 6, seed=11)
    student.requires_grad_(True)
    (gradient,) = torch.autograd.grad(reverse_kd_loss(student, teacher, labels, T=T, alpha=1.0), student)
    log_q, log_p = F.log_softmax(student.detach() / T, -1), F.log_softmax(teacher / T, -1)
    kl_values = (log_q.exp() * (log_q - log_p)).sum(-1, keepdim=True)
    expected = T**2 * log_q.exp() * (log_q - log_p - kl_values) / T / len(student)
    torch.testing.assert_close(gradient, expected, rtol=1e-10, atol=1e-14)


# --- gradients of both -------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", [decoupled_kd_loss, reverse_kd_loss])
def test_autograd_agrees_with_finite_differences(loss):
    student, teacher, labels = make_batch(4, 5, seed=12, teacher_margin=3.0)
    student.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: loss(s, teacher, labels, T=2.0, alpha=0.6), (student,))


@pytest.mark.parametrize("loss", [decoupled_kd_loss, reverse_kd_loss])
@pytest.mark.parametrize("scale, margin", [(1e-3, 0.0), (1.0, 0.0), (1e4, 0.0), (1.0, 1e4)])
@pytest.mark.parametrize("T", [MIN_TEMPERATURE, 1.0, MAX_TEMPERATURE])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gradients_are_finite_for_extreme_logits(loss, scale, margin, T, dtype):
    student, teacher, labels = make_batch(8, 10, scale=scale, seed=13, teacher_margin=margin)
    student = student.to(dtype).requires_grad_(True)
    value = loss(student, teacher.to(dtype), labels, T=T, alpha=0.5)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("loss", [decoupled_kd_loss, reverse_kd_loss])
def test_only_the_student_gets_a_gradient(loss):
    student, teacher, labels = make_batch(seed=14)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    loss(student, teacher, labels).backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None


# --- validation: the same errors as kd_loss --------------------------------------------------------------

def _good():
    student, teacher, labels = make_batch(4, 5, seed=15)
    return dict(student_logits=student, teacher_logits=teacher, labels=labels, T=2.0)


BAD_COMMON = [
    (dict(T=0.0), ValueError, r"T must be a number in \[0\.05, 100\], got 0\.0; outside that range float32"),
    (dict(T=100.5), ValueError, r"T must be a number in \[0\.05, 100\], got 100\.5"),
    (dict(T=None), ValueError, r"T must be .*got None of type NoneType"),
    (dict(teacher_logits=torch.zeros(4, 6)), ValueError, r"same shape, got \(4, 5\) and \(4, 6\)"),
    (dict(labels=torch.zeros(3, dtype=torch.long)), ValueError, r"labels must have shape \(4,\).*got \(3,\)"),
    (dict(labels=torch.zeros(4)), ValueError, r"labels must be integer class indices, got dtype torch\.float32"),
    (dict(labels=torch.tensor([0, 1, 5, 2])), ValueError, r"labels must be in \[0, 5\), got 5"),
    (dict(labels=torch.tensor([0, -1, 2, 2])), ValueError, r"labels must be in \[0, 5\), got -1"),
    (dict(teacher_logits=torch.full((4, 5), float("inf"))), ValueError, r"teacher_logits must be finite"),
    (dict(student_logits=[[0.0] * 5] * 4), TypeError, r"^student_logits must be a torch\.Tensor, got list$"),
    (dict(labels=np.zeros(4, dtype=int)), TypeError, r"^labels must be a torch\.Tensor, got ndarray$"),
]
BAD_WEIGHTED = [
    (dict(alpha=1.5), ValueError, r"alpha must be a finite number in \[0, 1\], got 1\.5"),
    (dict(nckd_weight=-1.0), ValueError, r"nckd_weight must be a finite number >= 0, got -1\.0"),
    (dict(tckd_weight=float("nan")), ValueError, r"tckd_weight must be a finite number >= 0, got nan"),
    (dict(nckd_weight=float("inf")), ValueError, r"nckd_weight must be .*, got inf"),
    (dict(tckd_weight=True), ValueError, r"tckd_weight must be .*got True of type bool"),
    (dict(student_logits=torch.zeros(4, 1), teacher_logits=torch.zeros(4, 1), labels=torch.zeros(4, dtype=torch.long)),
     ValueError, r"decoupled distillation needs at least 2 classes, got logits of shape \(4, 1\)"),
]


@pytest.mark.parametrize("change, error, match", BAD_COMMON + BAD_WEIGHTED)
def test_decoupled_kd_loss_rejects_bad_inputs(change, error, match):
    with pytest.raises(error, match=match):
        decoupled_kd_loss(**{**_good(), **change})


@pytest.mark.parametrize("change, error, match", BAD_COMMON + BAD_WEIGHTED[-1:])
def test_decoupled_kl_parts_rejects_bad_inputs(change, error, match):
    with pytest.raises(error, match=match):
        decoupled_kl_parts(**{**_good(), **change})


@pytest.mark.parametrize("change, error, match", BAD_COMMON + BAD_WEIGHTED[:1])
def test_reverse_kd_loss_rejects_bad_inputs(change, error, match):
    with pytest.raises(error, match=match):
        reverse_kd_loss(**{**_good(), **change})
