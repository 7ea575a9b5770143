"""The field writes one loss five ways: translate each public convention into kdlab's, and lint a user's.

kdlab writes L = alpha * T^2 * KL_T + (1 - alpha) * CE, with KL_T = KL(softmax(z_t/T) || softmax(z_s/T))
averaged over examples ("batchmean") and CE the cross-entropy with the labels at T = 1. The others,
in the same terms (their default weights in brackets):

    keras             L = a * CE + (1 - a) * T^2 * KL_T      keras.io's example   (alpha=0.1, temperature=3)
    torchdistill      L = a * CE + b * T^2 * KL_T            KDLoss               (alpha, beta=1-alpha)
    pytorch-tutorial  L = w_soft * T^2 * KL_T + w_ce * CE    the PyTorch tutorial (0.25, 0.75, T=2)
    repdistiller      L = gamma * CE + alpha * T^2 * KL_T    train_student.py     (-r 0.1 -a 0.9, kd_T=4)
    huggingface       L = (1 - lambda) * CE + lambda * T^2 * KL_T   the image-classification guide (0.5, T=5)

A convention with two free weights is kdlab's loss times an overall `scale`, the sum of the weights:
with Adam a scale hardly matters; with SGD it multiplies the learning rate. `reference_loss` writes
each convention the way its own code does (probabilities or log-probabilities, KLDivLoss or a sum),
so that the translation can be checked numerically rather than trusted.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kdlab.losses import check_hyperparameters, kd_loss

__all__ = ["CONVENTIONS", "KNOWN_BUGS", "KDWeights", "lint_kd_loss", "reference_loss", "to_kdlab"]


@dataclass(frozen=True)
class KDWeights:
    """kdlab's (alpha, T), and the factor by which a convention's loss is larger than kdlab's."""

    alpha: float
    T: float
    scale: float = 1.0


def _weights(soft: float, hard: float, T: float) -> KDWeights:
    if soft < 0 or hard < 0 or soft + hard <= 0:
        raise ValueError(f"the soft and hard weights must be >= 0 and not both 0, got {soft} and {hard}")
    weights = KDWeights(alpha=soft / (soft + hard), T=T, scale=soft + hard)
    check_hyperparameters(weights.T, weights.alpha)
    return weights


# convention -> (its weights with their defaults, the weights on (T^2 * KL_T, CE) as a function of them)
CONVENTIONS: dict[str, tuple[dict, Callable[..., tuple[float, float]]]] = {
    "keras": ({"alpha": 0.1, "temperature": 3.0}, lambda alpha, temperature: (1 - alpha, alpha)),
    "torchdistill": ({"alpha": 0.5, "beta": None, "temperature": 4.0},
                     lambda alpha, beta, temperature: (1 - alpha if beta is None else beta, alpha)),
    "pytorch-tutorial": ({"soft_target_loss_weight": 0.25, "ce_loss_weight": 0.75, "T": 2.0},
                         lambda soft_target_loss_weight, ce_loss_weight, T: (soft_target_loss_weight, ce_loss_weight)),
    "repdistiller": ({"gamma": 0.1, "alpha": 0.9, "kd_T": 4.0}, lambda gamma, alpha, kd_T: (alpha, gamma)),
    "huggingface": ({"lambda_param": 0.5, "temperature": 5.0}, lambda lambda_param, temperature: (lambda_param,
                                                                                                   1 - lambda_param)),
}
_TEMPERATURE_NAME = {"keras": "temperature", "torchdistill": "temperature", "pytorch-tutorial": "T",
                     "repdistiller": "kd_T", "huggingface": "temperature"}


def _settings(convention: str, weights: dict) -> dict:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
    defaults, _ = CONVENTIONS[convention]
    unknown = set(weights) - set(defaults)
    if unknown:
        raise ValueError(f"{convention} takes {', '.join(defaults)}; got {', '.join(sorted(unknown))}")
    for name, value in weights.items():
        if value is None and defaults[name] is None:  # torchdistill's beta=None means 1 - alpha
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{convention}'s {name} must be a number, got {value!r}")
    return {**defaults, **weights}


def to_kdlab(convention: str, **weights) -> KDWeights:
    """kdlab's (alpha, T, scale) for a convention's own weights, named as that code names them.

    to_kdlab("keras", alpha=0.1, temperature=3) -> KDWeights(alpha=0.9, T=3.0, scale=1.0)
    """
    settings = _settings(convention, weights)
    soft, hard = CONVENTIONS[convention][1](**settings)
    return _weights(soft, hard, float(settings[_TEMPERATURE_NAME[convention]]))


def reference_loss(convention: str, student_logits, teacher_logits, labels, **weights) -> torch.Tensor:
    """The convention's loss written as its own code writes it, for checking `to_kdlab` numerically."""
    settings = _settings(convention, weights)
    soft, hard = CONVENTIONS[convention][1](**settings)
    T = float(settings[_TEMPERATURE_NAME[convention]])
    ce = F.cross_entropy(student_logits, labels)
    if convention == "keras":  # keras.losses.KLDivergence on probabilities: sum p log(p/q), mean over the batch
        p, q = torch.softmax(teacher_logits / T, 1), torch.softmax(student_logits / T, 1)
        kl = (p * (p / q).log()).sum(1).mean()
    elif convention == "pytorch-tutorial":  # sum(p * (log p - log q)) / batch size
        p, log_q = torch.softmax(teacher_logits / T, 1), torch.log_softmax(student_logits / T, 1)
        kl = (p * (p.log() - log_q)).sum() / log_q.size(0)
    elif convention == "repdistiller":  # DistillKL: kl_div(..., reduction="sum") / batch size
        kl = F.kl_div(torch.log_softmax(student_logits / T, 1), torch.softmax(teacher_logits / T, 1),
                      reduction="sum") / student_logits.shape[0]
    else:  # torchdistill and Hugging Face: nn.KLDivLoss(reduction="batchmean")
        kl = F.kl_div(torch.log_softmax(student_logits / T, 1), torch.softmax(teacher_logits / T, 1),
                      reduction="batchmean")
    return soft * T**2 * kl + hard * ce


# The bugs a loss function can carry, each as the loss it computes instead of kdlab's.
def _alpha_on_the_other_term(s, t, y, T, alpha):
    return kd_loss(s, t, y, T=T, alpha=1 - alpha)


def _no_T2(s, t, y, T, alpha):
    parts = kd_loss(s, t, y, T=T, alpha=alpha, return_parts=True)
    return alpha * parts.kl + parts.hard


def _reduction_mean(s, t, y, T, alpha):
    parts = kd_loss(s, t, y, T=T, alpha=alpha, return_parts=True)
    return parts.soft / s.shape[-1] + parts.hard


def _probabilities_for_log_probabilities(s, t, y, T, alpha):
    kl = F.kl_div(torch.softmax(s / T, 1), torch.softmax(t / T, 1), reduction="batchmean")
    return alpha * T**2 * kl + (1 - alpha) * F.cross_entropy(s, y)


def _teacher_and_student_swapped(s, t, y, T, alpha):
    kl = F.kl_div(torch.log_softmax(t / T, 1), torch.log_softmax(s / T, 1), reduction="batchmean", log_target=True)
    return alpha * T**2 * kl + (1 - alpha) * F.cross_entropy(s, y)


KNOWN_BUGS = {
    "alpha weights the cross-entropy instead of the teacher term (Keras' and torchdistill's convention)":
        _alpha_on_the_other_term,
    "the T^2 factor is missing (keras-io#869): the teacher's gradient fades as 1/T^2": _no_T2,
    "the KL uses reduction='mean', which also divides by the number of classes; use 'batchmean'": _reduction_mean,
    "kl_div is given probabilities where it expects log-probabilities (log_softmax)":
        _probabilities_for_log_probabilities,
    "teacher and student are swapped in the KL (keras-io#257)": _teacher_and_student_swapped,
}
_PROBES = ((4.0, 0.9), (2.0, 0.3), (8.0, 0.7))


def lint_kd_loss(loss_function: Callable, *, num_classes: int = 10, tolerance: float = 1e-5) -> list[str]:
    """What is wrong with `loss_function(student_logits, teacher_logits, labels, T, alpha)`, meant as
    kdlab's loss: [] if it computes kd_loss, else the known bugs whose loss it matches (or a note that it
    matches neither). Probed on random float64 logits at several (T, alpha). A teacher left in train mode
    is a bug of the training loop, not of the loss, and cannot be seen from here.
    """
    generator = torch.Generator().manual_seed(0)
    student = 3 * torch.randn(16, num_classes, generator=generator, dtype=torch.float64)
    teacher = 3 * torch.randn(16, num_classes, generator=generator, dtype=torch.float64)
    labels = torch.randint(num_classes, (16,), generator=generator)

    def matches(reference) -> bool:
        for T, alpha in _PROBES:
            expected = float(reference(student, teacher, labels, T, alpha))
            found = float(loss_function(student, teacher, labels, T, alpha))
            if not abs(found - expected) <= tolerance * (1 + abs(expected)):  # a NaN matches nothing
                return False
        return True

    try:
        first = loss_function(student, teacher, labels, *_PROBES[0])
    except Exception as error:  # a lint reports, it does not crash
        return [f"it raised {type(error).__name__}: {error}"]
    if not (isinstance(first, numbers.Real) or isinstance(first, torch.Tensor) and first.numel() == 1):
        what = f"a tensor of shape {tuple(first.shape)}" if isinstance(first, torch.Tensor) else type(first).__name__
        return [f"it returned {what}, not a single number: reduce over the batch"]
    if not math.isfinite(float(first)):
        return [f"it returned {float(first)} on finite logits: look for a log of 0 or a division by 0"]
    if matches(lambda s, t, y, T, alpha: kd_loss(s, t, y, T=T, alpha=alpha)):
        return []
    found = [bug for bug, reference in KNOWN_BUGS.items() if matches(reference)]
    return found or ["it matches neither kdlab's loss nor a known bug; compare it with kdlab.kd_loss on your logits"]
