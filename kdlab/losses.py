"""The distillation loss kdlab teaches, and the gradients that explain it.

    L = alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(y, softmax(z_s))

alpha weights the teacher (soft) term. The KL is "batchmean" (sum over classes, mean over
examples); reduction="mean" would also divide by the number of classes, a common bug. The
T^2 factor exists because the soft term's gradient falls as 1/T^2 (Hinton et al. 2015,
section 2.1); `soft_term_gradient` and `soft_term_gradient_high_T` let the notebooks show
that directly. Everything is computed from log-probabilities in at least float32, so the
loss stays finite for huge logits and bf16/fp16 inputs.

T must lie in [MIN_TEMPERATURE, MAX_TEMPERATURE] = [0.05, 100]; outside it a ValueError says so.
Measured against float64: the float32 soft term is off by about 1e-7 * T^2 nats whatever the
logits or the number of classes (the log-probabilities differ by ~1/T, are each rounded to ~1e-7,
and the difference is multiplied by T^2), so at T = 100 the loss is within 1e-3 nats and its
gradient within 1e-4 relative; at T = 1e6 the loss is garbage (-26425 for a true 12.5). Below
T = 0.05 nothing is gained (the soft targets are already one-hot) and logits / T overflow sooner.
The gradient formulas stay accurate further, to MAX_GRADIENT_TEMPERATURE = 1000 (within 1e-3).

Two variants of the soft term, for the notebooks that question it: `decoupled_kd_loss` (DKD) reweights the
two parts KD's KL splits into, and `reverse_kd_loss` swaps the KL's arguments.
"""

import math
import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["DecoupledKLParts", "KDLossParts", "MAX_TEMPERATURE", "MIN_TEMPERATURE", "alpha_from_ce_weighting",
           "check_alpha", "check_hyperparameters", "check_temperature", "cosine_feature_loss", "decoupled_kd_loss",
           "decoupled_kl_parts", "hint_loss", "kd_loss", "reverse_kd_loss", "soft_targets", "soft_term_gradient",
           "soft_term_gradient_high_T"]


class KDLossParts(NamedTuple):
    """The pieces of the loss, so a notebook can plot each term on its own."""

    total: torch.Tensor  # soft + hard; differentiable
    soft: torch.Tensor  # alpha * T^2 * kl
    hard: torch.Tensor  # (1 - alpha) * ce
    kl: torch.Tensor  # KL(teacher || student) at temperature T, batchmean (student || teacher for reverse_kd_loss)
    ce: torch.Tensor  # cross-entropy with the labels at T = 1, mean over examples


MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 100.0  # kd_loss is within 1e-3 nats of float64 up to here (error ~1e-7 * T^2)
MAX_GRADIENT_TEMPERATURE = 1000.0  # (q - p) / T is within 1e-3 relative of float64 up to here

_NOT_GIVEN = object()  # lets _validate tell "not checked here" from a caller's T=None


def _check_tensors(**named):
    """TypeError naming the first argument that is not a tensor: a list, numpy array or None would fail
    deep inside torch with an AttributeError that names neither the argument nor the fix."""
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")


def _validate(*, T=_NOT_GIVEN, alpha=_NOT_GIVEN, student_logits=_NOT_GIVEN, teacher_logits=_NOT_GIVEN,
              labels=_NOT_GIVEN, max_T=MAX_TEMPERATURE, **weights):
    """Raise ValueError (TypeError for a non-tensor), naming the bad value and what is expected, for whichever
    inputs are given; `weights` are other loss weights by name, each a finite number >= 0."""
    for name, value, expected, ok, advice in (
        ("T", T, f"a number in [{MIN_TEMPERATURE:g}, {max_T:g}]", lambda v: MIN_TEMPERATURE <= v <= max_T,
         "; outside that range float32 cannot compute the loss accurately, so choose a T inside it"),
        ("alpha", alpha, "a finite number in [0, 1]", lambda v: 0 <= v <= 1, ""),
        *((name, value, "a finite number >= 0", lambda v: v >= 0, "") for name, value in weights.items()),
    ):
        if value is _NOT_GIVEN:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be {expected}, got {value!r} of type {type(value).__name__}")
        if not (math.isfinite(value) and ok(value)):
            raise ValueError(f"{name} must be {expected}, got {value!r}{advice}")
    if student_logits is _NOT_GIVEN:
        return
    _check_tensors(student_logits=student_logits, teacher_logits=teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student_logits and teacher_logits must have the same shape, got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    if student_logits.dim() < 2:
        raise ValueError(f"logits must be (N, C) or (B, L, C), got shape {tuple(student_logits.shape)}")
    if student_logits.numel() == 0:
        raise ValueError(f"the batch is empty (logits of shape {tuple(student_logits.shape)}); "
                         "pass at least one example with at least one class")
    for name, logits in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not torch.isfinite(logits).all():
            raise ValueError(f"{name} must be finite, got NaN or inf in a tensor of shape {tuple(logits.shape)}")
    if labels is _NOT_GIVEN:
        return
    _check_tensors(labels=labels)
    if labels.shape != student_logits.shape[:-1]:
        raise ValueError(
            f"labels must have shape {tuple(student_logits.shape[:-1])} to match logits "
            f"{tuple(student_logits.shape)}, got {tuple(labels.shape)}"
        )
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    num_classes = student_logits.shape[-1]
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0].item()
        raise ValueError(f"labels must be in [0, {num_classes}), got {bad}")


def _upcast(logits):
    """At least float32: bf16/fp16 softmax at high T loses the small differences the loss is about."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def _flattened(student_logits, teacher_logits):
    """(N, C) logits in at least float32, leading dims flattened; the teacher detached, so only the student learns."""
    num_classes = student_logits.shape[-1]
    return (_upcast(student_logits).reshape(-1, num_classes),
            _upcast(teacher_logits.detach()).reshape(-1, num_classes))


def _cross_entropy(student, labels):
    return F.cross_entropy(student, labels.reshape(-1).to(torch.int64))  # cross_entropy refuses int32 indices


def _softmax(logits, T):
    return torch.softmax(_upcast(logits) / T, dim=-1)


def soft_targets(logits, T):
    """softmax(logits / T) over the last dim: higher T spreads probability onto the wrong classes."""
    _validate(T=T)
    _check_tensors(logits=logits)
    return _softmax(logits, T)


def check_temperature(T):
    """Raise ValueError unless MIN_TEMPERATURE <= T <= MAX_TEMPERATURE (e.g. for a CLI option)."""
    _validate(T=T)


def check_alpha(alpha):
    """Raise ValueError unless 0 <= alpha <= 1 (e.g. for a CLI option)."""
    _validate(alpha=alpha)


def check_hyperparameters(T, alpha):
    """Raise ValueError unless T lies in [MIN_TEMPERATURE, MAX_TEMPERATURE] and alpha in [0, 1]."""
    _validate(T=T, alpha=alpha)


def kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9, return_parts=False, check_inputs=True):
    """alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(labels, p_student).

    Logits are (N, C), or (B, L, C) for token-level distillation: leading dims are flattened
    to (B*L, C) and labels (B, L) to (B*L,), so both terms average over tokens. Labels are class indices
    of any integer dtype (int32 from numpy or a file is as good as int64). The teacher
    logits are detached, so only the student gets a gradient. Returns a scalar tensor, or
    KDLossParts when return_parts is True. A training loop that has checked its data and
    hyperparameters once passes check_inputs=False: the finiteness and label-range checks read
    values back to the host, which would stall a GPU at every step.
    """
    if check_inputs:
        _validate(T=T, alpha=alpha, student_logits=student_logits, teacher_logits=teacher_logits, labels=labels)
    student, teacher = _flattened(student_logits, teacher_logits)
    kl = F.kl_div(
        F.log_softmax(student / T, dim=-1),
        F.log_softmax(teacher / T, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    ce = _cross_entropy(student, labels)
    soft = alpha * T**2 * kl
    hard = (1 - alpha) * ce
    total = soft + hard
    return KDLossParts(total, soft, hard, kl, ce) if return_parts else total


def soft_term_gradient(student_logits, teacher_logits, T):
    """(1/T)(q - p), q = softmax(z_s/T), p = softmax(z_t/T): d KL / d z_s for each example.

    Autograd of the batchmean kl equals this divided by the batch size; the gradient of the
    weighted soft term alpha * T^2 * kl is alpha * T^2 times that.
    """
    _validate(T=T, student_logits=student_logits, teacher_logits=teacher_logits,
              max_T=MAX_GRADIENT_TEMPERATURE)
    return (_softmax(student_logits, T) - _softmax(teacher_logits, T)) / T


def soft_term_gradient_high_T(student_logits, teacher_logits, T):
    """(z_s - z_t) / (N T^2), N = number of classes: the large-T limit of soft_term_gradient.

    Valid only for zero-mean logits and T large compared with the logits (Hinton et al. 2015,
    section 2.1); it shows why the soft gradients fall as 1/T^2.
    """
    _validate(T=T, student_logits=student_logits, teacher_logits=teacher_logits,
              max_T=MAX_GRADIENT_TEMPERATURE)
    num_classes = student_logits.shape[-1]
    return (_upcast(student_logits) - _upcast(teacher_logits)) / (num_classes * T**2)


def alpha_from_ce_weighting(alpha_on_ce):
    """Convert an alpha that weights the cross-entropy into kdlab's alpha (on the teacher term).

    Keras' distillation example and torchdistill write L = alpha*CE + (1-alpha)*T^2*KL; kdlab
    writes L = alpha*T^2*KL + (1-alpha)*CE. So their alpha=0.1 is kdlab's alpha=0.9.
    """
    _validate(alpha=alpha_on_ce)
    return 1 - alpha_on_ce


def reverse_kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9, return_parts=False, check_inputs=True):
    """kd_loss with the KL reversed: alpha * T^2 * KL(p_student^T || p_teacher^T) + (1 - alpha) * CE(labels, p_student).

    Forward KL (kd_loss) averages over the teacher's distribution, so the student pays wherever the teacher puts
    mass and spreads to cover it all. Reverse KL averages over the student's own distribution, so it pays only
    where it puts mass: a student too small for every mode of the teacher picks some and stays sharp there
    (mode-seeking; MiniLLM, Gu et al. 2024, which optimises it per sequence, not per token as here). Its gradient
    also falls as 1/T^2 at high T, so T^2 stays. Inputs, checks and return value are kd_loss's; parts.kl is
    KL(student || teacher).
    """
    if check_inputs:
        _validate(T=T, alpha=alpha, student_logits=student_logits, teacher_logits=teacher_logits, labels=labels)
    student, teacher = _flattened(student_logits, teacher_logits)
    log_student = F.log_softmax(student / T, dim=-1)
    log_teacher = F.log_softmax(teacher / T, dim=-1)
    kl = (log_student.exp() * (log_student - log_teacher)).sum(-1).mean()
    ce = _cross_entropy(student, labels)
    soft = alpha * T**2 * kl
    hard = (1 - alpha) * ce
    total = soft + hard
    return KDLossParts(total, soft, hard, kl, ce) if return_parts else total


# --- decoupled knowledge distillation (Zhao et al., CVPR 2022) -----------------------------------------------

class DecoupledKLParts(NamedTuple):
    """KL(p_teacher^T || p_student^T) = tckd + non_target_weight * nckd, each per example (shape of labels)."""

    tckd: torch.Tensor  # KL between the binary distributions [p(target), 1 - p(target)]
    nckd: torch.Tensor  # KL between the distributions over the non-target classes, renormalised among themselves
    non_target_weight: torch.Tensor  # 1 - the teacher's p(target): high confidence silences nckd inside KD


def _validate_decoupled(student_logits, teacher_logits, labels, **hyperparameters):
    _validate(student_logits=student_logits, teacher_logits=teacher_logits, labels=labels, **hyperparameters)
    if student_logits.shape[-1] < 2:
        raise ValueError(f"decoupled distillation needs at least 2 classes, got logits of shape "
                         f"{tuple(student_logits.shape)}: with one class there is nothing besides the target")


def _target_split(logits, is_target, T):
    """log [p(target), 1 - p(target)] and the log-softmax over the non-target logits alone.

    Both come from logits, never from dividing probabilities: 1 - p(target) rounds to 0 when the target
    dominates, and renormalising by it would give 0/0; its log, logsumexp(non-target) - logsumexp(all), and
    the non-target log-softmax stay accurate.
    """
    scaled = logits / T
    non_target = scaled[~is_target].view(len(scaled), -1)  # the target column dropped
    log_total = scaled.logsumexp(-1)
    log_binary = torch.stack([scaled[is_target] - log_total, non_target.logsumexp(-1) - log_total], dim=-1)
    return log_binary, F.log_softmax(non_target, dim=-1)


def _decoupled_kl(student, teacher, labels, T):
    """(tckd, nckd, non_target_weight) for (N, C) logits, each of shape (N,)."""
    is_target = F.one_hot(labels.reshape(-1).to(torch.int64), student.shape[-1]).bool()
    student_binary, student_non_target = _target_split(student, is_target, T)
    teacher_binary, teacher_non_target = _target_split(teacher, is_target, T)
    tckd = F.kl_div(student_binary, teacher_binary, reduction="none", log_target=True).sum(-1)
    nckd = F.kl_div(student_non_target, teacher_non_target, reduction="none", log_target=True).sum(-1)
    return tckd, nckd, teacher_binary[:, 1].exp()


def decoupled_kl_parts(student_logits, teacher_logits, labels, T):
    """KD's KL at temperature T split into TCKD, NCKD and the weight 1 - p_teacher(target) that ties them.

    KL(p_t || p_s) = TCKD + (1 - p_t(target)) * NCKD exactly, per example; returns DecoupledKLParts, each of
    labels' shape. No T^2 and no mean: these are the terms of the identity. Teacher detached.
    """
    _validate_decoupled(student_logits, teacher_logits, labels, T=T)
    student, teacher = _flattened(student_logits, teacher_logits)
    return DecoupledKLParts(*(part.view(labels.shape) for part in _decoupled_kl(student, teacher, labels, T)))


def decoupled_kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.5, tckd_weight=1.0, nckd_weight=8.0,
                      check_inputs=True):
    """DKD: alpha * T^2 * mean(tckd_weight * TCKD + nckd_weight * NCKD) + (1 - alpha) * CE(labels, p_student).

    KD's KL is TCKD + (1 - p_teacher(target)) * NCKD (decoupled_kl_parts), so the more confident the teacher,
    the less KD passes on about the wrong classes. DKD (Zhao et al., CVPR 2022) frees the two weights: their
    alpha and beta are tckd_weight and nckd_weight. Around them everything is kd_loss's: the KL at T scaled by
    T^2 (as mdistiller scales both parts), the mean over examples or tokens, CE at T = 1, kdlab's alpha between
    teacher and labels, the same inputs and checks. The defaults are mdistiller's CIFAR-100 setting (T = 4,
    alpha = 1, beta = 8, CE weight 1), whose loss is twice this at alpha = 0.5; mdistiller also ramps the DKD
    term in over the first 20 epochs, a matter for the training loop. No fixed nckd_weight gives kd_loss, since
    KD's NCKD weight changes with each example.
    """
    if check_inputs:
        _validate_decoupled(student_logits, teacher_logits, labels, T=T, alpha=alpha, tckd_weight=tckd_weight,
                            nckd_weight=nckd_weight)
    student, teacher = _flattened(student_logits, teacher_logits)
    tckd, nckd, _ = _decoupled_kl(student, teacher, labels, T)
    soft = alpha * T**2 * (tckd_weight * tckd + nckd_weight * nckd).mean()
    return soft + (1 - alpha) * _cross_entropy(student, labels)


# --- feature distillation: matching what the teacher computes inside, not only its logits ----------

def _validate_features(student_features, teacher_features, *, student_name, what, advice):
    _check_tensors(**{student_name: student_features, "teacher_features": teacher_features})
    if student_features.shape != teacher_features.shape:
        raise ValueError(f"{student_name} and teacher_features must have the same shape, got "
                         f"{tuple(student_features.shape)} and {tuple(teacher_features.shape)}; {advice}")
    if student_features.dim() < 2:
        raise ValueError(f"features must be {what}, got shape {tuple(student_features.shape)}")
    if student_features.numel() == 0:
        raise ValueError(f"the batch is empty (features of shape {tuple(student_features.shape)}); "
                         "pass at least one example with at least one feature")


def cosine_feature_loss(student_features, teacher_features):
    """1 - cos(h_s, h_t), mean over the batch: the student's hidden vector points where the teacher's does.

    Features are (N, D) pooled hidden representations (any (N, ...) is flattened to (N, D)), the
    same D for both: pool or project the wider one first. This is the PyTorch KD tutorial's
    CosineEmbeddingLoss with target +1 (its "cosine loss" student). Only the direction counts, so
    the student's scale is left free. An all-zero vector has no direction: torch's cosine_similarity
    clamps its norm at 1e-8, so it scores 0 similarity (a loss of 1). The teacher's features are
    detached, so only the student gets a gradient.
    """
    _validate_features(student_features, teacher_features, student_name="student_features",
                       what="(N, D) or (N, ...) with a batch dimension first",
                       advice="pool or project the wider representation to the other's size first")
    student = _upcast(student_features).flatten(1)
    teacher = _upcast(teacher_features.detach()).flatten(1)
    return (1 - F.cosine_similarity(student, teacher, dim=1)).mean()


def hint_loss(regressed_student_features, teacher_features):
    """FitNets' hint: the mean squared error between a regressed student feature map and the teacher's.

    Romero et al. (2015) guide a student layer by a teacher layer (the "hint") through a learned
    regressor r that maps the student's channels to the teacher's, e.g. a 1x1 or 3x3 convolution
    trained with the student and discarded after: L_hint = mean((r(f_s) - f_t)^2). Pass r(f_s),
    not f_s. Maps are (N, C, H, W) (any (N, ...) works), the same shape for both; the mean is over
    every element, like nn.MSELoss (FitNets writes 1/2 times the sum: a constant factor, which
    the term's weight absorbs). The teacher's features are detached.
    """
    _validate_features(regressed_student_features, teacher_features, student_name="regressed_student_features",
                       what="(N, C, H, W) feature maps (or any (N, ...))",
                       advice="map the student's channels to the teacher's with a regressor (e.g. a 1x1 "
                              "nn.Conv2d) and take both maps where their height and width agree")
    student = _upcast(regressed_student_features)
    teacher = _upcast(teacher_features.detach())
    return F.mse_loss(student, teacher)
