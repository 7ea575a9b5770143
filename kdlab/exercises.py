"""Exercises that check themselves: `check("05.2", answer)` prints ✓, or ✗ with a hint.

Notebooks 01-12 end with exercises whose answer is a function. A check calls it on fresh inputs and
compares what it does with kdlab's own reference, or with the property the exercise asks for, so any
correct way of writing it passes and a copied number cannot. A hint points at the idea that is
missing, never at the code that would fix it. A check never raises: a wrong type, an exception inside
the learner's function or a NaN is a ✗ with a hint, because a learner should read feedback, not a
traceback from inside kdlab.

Each exercise also keeps, beside its check, plausible wrong answers (the mistakes the notebooks warn
about); tests/test_exercises.py proves that every one of them fails its check, and that each notebook's
reference solution passes and its blank starter fails.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from kdlab.comparison import paired_difference, t_critical
from kdlab.losses import (
    cosine_feature_loss,
    decoupled_kd_loss,
    decoupled_kl_parts,
    kd_loss,
    soft_targets,
    soft_term_gradient,
    soft_term_gradient_high_T,
)
from kdlab.models import build_model, count_parameters, mlp_spec
from kdlab.similarity import linear_cka
from kdlab.viz import class_similarity, mean_soft_targets

__all__ = ["EXERCISES", "Exercise", "Wrong", "check", "feedback"]


class Wrong(Exception):
    """A wrong answer; its message is the hint the learner sees."""


@dataclass(frozen=True)
class Exercise:
    verify: Callable  # verify(answer) returns what was checked, or raises Wrong(hint)
    wrong_answers: tuple  # plausible mistakes, each of which verify must reject


EXERCISES: dict[str, Exercise] = {}


def _exercise(exercise_id: str, *wrong_answers):
    def register(verify):
        EXERCISES[exercise_id] = Exercise(verify, wrong_answers)
        return verify
    return register


def feedback(exercise_id: str, answer) -> tuple[bool, str]:
    """(passed, message) for `answer` to exercise `exercise_id`; never raises."""
    exercise = EXERCISES.get(exercise_id)
    if exercise is None:
        return False, f"there is no exercise {exercise_id!r}; the exercises are {', '.join(EXERCISES)}"
    if not callable(answer):
        return False, (f"pass the function itself, as in check({exercise_id!r}, my_function), "
                       f"not {type(answer).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a learner's reduction='mean' warns; the hint says more
            return True, exercise.verify(_Answer(answer))
    except Wrong as wrong:
        return False, str(wrong)
    except Exception as error:  # a check must answer whatever it is given
        return False, f"the check could not use your answer ({type(error).__name__}: {error})"


def check(exercise_id: str, answer) -> None:
    """Print ✓ with what was checked, or ✗ with a hint."""
    passed, message = feedback(exercise_id, answer)
    print(f"{'✓' if passed else '✗'} {exercise_id}: {message}")


class _Answer:
    """The learner's function, called on copies of fresh inputs; whatever goes wrong inside it is a Wrong."""

    def __init__(self, function):
        self.function = function
        self.name = getattr(function, "__name__", "your function")

    def __call__(self, *args):
        copies = [arg.clone() if isinstance(arg, torch.Tensor) else arg.copy() if isinstance(arg, np.ndarray)
                  else arg for arg in args]  # so that an in-place edit cannot change the reference's inputs
        try:
            result = self.function(*copies)
        except Exception as error:
            raise Wrong(f"{self.name} raised {type(error).__name__}: {error}") from None
        if result is None:
            raise Wrong(f"{self.name} returned None: fill in its body so that it returns its result")
        return result

    def numbers(self, *args) -> torch.Tensor:
        return _numbers(self(*args), self.name)


def _numbers(value, name: str) -> torch.Tensor:
    """`value` as a float64 tensor, or a Wrong saying why it is not one."""
    try:
        tensor = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value, dtype=float))
        tensor = tensor.to(torch.float64)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise Wrong(f"{name} returned {type(value).__name__}, not numbers") from None
    if not torch.isfinite(tensor).all():
        raise Wrong(f"{name} returned NaN or infinity on finite inputs: look for an exp that overflows, "
                    "a log of 0 or a division by 0")
    return tensor


def _pair(value, name: str, what: str) -> tuple[float, float]:
    """Two numbers from a learner's (a, b)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().flatten().tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Wrong(f"{name} should return two numbers, ({what}); it returned {type(value).__name__}")
    first, second = (_numbers(part, name) for part in value)
    if first.numel() != 1 or second.numel() != 1:
        raise Wrong(f"{name} should return two single numbers, ({what})")
    return first.item(), second.item()


def _scalar(value, name: str) -> float:
    number = _numbers(value, name)
    if number.numel() != 1:
        raise Wrong(f"{name} should return one number, got a shape of {tuple(number.shape)}")
    return number.item()


def _same_shape(found: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    if found.shape != expected.shape:
        raise Wrong(f"{name} returned a shape of {tuple(found.shape)}, expected {tuple(expected.shape)}")


def _same(found: torch.Tensor, expected, name: str, hint: str, rtol=1e-4, atol=1e-6) -> None:
    expected = torch.as_tensor(expected).detach().to(torch.float64)
    _same_shape(found, expected, name)
    if not torch.allclose(found, expected, rtol=rtol, atol=atol):
        raise Wrong(hint)


def _generator(seed: int) -> torch.Generator:
    """Fresh inputs that are the same on every run, so a hint is too, and that leave the global RNG alone."""
    return torch.Generator().manual_seed(seed)


def _ratio(found: torch.Tensor, expected: torch.Tensor) -> float | None:
    """found / expected when one constant factor relates them, else None: a factor often names the mistake."""
    scale = expected.abs().max()
    if scale == 0:
        return None
    mask = expected.abs() > 1e-3 * scale
    ratios = found[mask] / expected[mask]
    ratio = ratios.median().item()
    return ratio if torch.allclose(ratios, torch.full_like(ratios, ratio), rtol=1e-3) else None


# --- 01 · soft targets and temperature -------------------------------------------------------------

def _softmax_after_dividing(logits, T):
    return torch.softmax(logits, dim=-1) / T


def _overflowing_softmax(logits, T):
    exponentials = torch.exp(logits / T)
    return exponentials / exponentials.sum(dim=-1, keepdim=True)


@_exercise("01.1", _softmax_after_dividing, _overflowing_softmax,
           lambda logits, T: torch.softmax(logits * T, dim=-1), lambda logits, T: torch.softmax(logits / T, dim=0))
def _soft_targets_from_the_formula(answer):
    generator = _generator(1)
    for logits, temperatures in ((3 * torch.randn(6, 10, generator=generator), (0.5, 1.0, 4.0, 20.0)),
                                 (torch.randn(5, generator=generator), (2.0,))):
        for T in temperatures:
            found = answer.numbers(logits, T)
            if found.shape == logits.shape and not torch.allclose(found.sum(-1), torch.ones(()).double(), atol=1e-5):
                raise Wrong(f"at T = {T:g} the probabilities of an example do not sum to 1: "
                            "normalise over the classes, the last dimension")
            _same(found, soft_targets(logits, T), answer.name,
                  f"at T = {T:g} the probabilities sum to 1 but are not softmax(z/T): where does T enter? "
                  "A higher T should flatten them, a lower T sharpen them")
    confident = torch.tensor([[1000.0, 990.0, 0.0]])
    _same(answer.numbers(confident, 1.0), soft_targets(confident, 1.0), answer.name,
          "logits near 1000 go wrong: exp overflows there. A softmax does not change when the same number is "
          "subtracted from every logit of an example")
    return f"{answer.name} is softmax(z/T) over the last dimension, for batches, one vector and logits near 1000"


def _wrong_class_mass(logits, labels, T) -> float:
    return 1 - torch.softmax(logits / T, dim=1).gather(1, labels[:, None]).mean().item()


def _confident_logits(generator, examples=300, classes=10, mislabelled=0.15):
    """A confident teacher's logits, with the label on another class for some examples (its mistakes)."""
    labels = torch.randint(classes, (examples,), generator=generator)
    top = torch.where(torch.rand(examples, generator=generator) < mislabelled,
                      torch.randint(classes, (examples,), generator=generator), labels)
    logits = 2 * torch.randn(examples, classes, generator=generator) + 9 * F.one_hot(top, classes)
    return logits, labels


def _half_mass_from_the_table(logits, labels):
    return min((1, 2, 4, 8, 20), key=lambda T: abs(_wrong_class_mass(logits, labels, T) - 0.5))


def _half_mass_off_the_top_class(logits, labels):
    low, high = math.log(0.05), math.log(1000)
    for _ in range(60):
        middle = (low + high) / 2
        off_top = 1 - torch.softmax(logits / math.exp(middle), dim=1).max(dim=1).values.mean().item()
        low, high = (middle, high) if off_top < 0.5 else (low, middle)
    return math.exp(low)


@_exercise("01.2", _half_mass_from_the_table, _half_mass_off_the_top_class)
def _half_mass_temperature(answer):
    generator = _generator(2)
    for scale in (1.0, 3.0):
        logits, labels = _confident_logits(generator)
        logits = scale * logits
        T = _scalar(answer(logits, labels), answer.name)
        if not T > 0:
            raise Wrong(f"{answer.name} returned T = {T:g}; a temperature is positive")
        mass = _wrong_class_mass(logits, labels, T)
        if abs(mass - 0.5) > 0.005:
            raise Wrong(f"at your T = {T:.3g} the wrong classes (all but the label) hold {mass:.1%} of the "
                        "probability on average, not half. The mass grows with T: narrow the search down until "
                        "it is half to within a fraction of a percent")
    return f"{answer.name} finds the T at which the wrong classes hold half the probability, on two fresh teachers"


def _closest_including_the_true_class(logits, labels, T):
    return mean_soft_targets(logits, labels, T).argmax(dim=1)


def _closest_without_renormalising(logits, labels, T):
    average = mean_soft_targets(logits, labels, T).fill_diagonal_(-1.0)
    return average.argmax(dim=1)


def _hesitant_and_confident(generator, classes=6, per_class=40):
    """Per class: most images confident with their small doubt on one class, a few hesitant on another.
    Averaging raw probabilities lets the few hesitant images win; renormalised, the many confident ones do."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    logits = 0.3 * torch.randn(len(labels), classes, generator=generator)
    logits[torch.arange(len(labels)), labels] += 12.0
    confident_doubt, hesitant_doubt = (labels + 1) % classes, (labels + 2) % classes
    hesitant = torch.arange(len(labels)) % per_class < per_class // 8
    logits[torch.arange(len(labels)), torch.where(hesitant, hesitant_doubt, confident_doubt)] += torch.where(
        hesitant, torch.tensor(11.5), torch.tensor(4.0))
    return logits, labels


@_exercise("01.3", _closest_including_the_true_class, _closest_without_renormalising)
def _closest_class(answer):
    generator = _generator(3)
    cases = [(*_hesitant_and_confident(generator), 1.0), (*_confident_logits(generator, examples=400), 4.0)]
    for logits, labels, T in cases:
        found = answer.numbers(logits, labels, T)
        expected = class_similarity(logits, labels, T).nan_to_num(-1.0).argmax(dim=1)
        if found.shape == expected.shape and (found == torch.arange(len(found))).any():
            raise Wrong("for some class your answer is the class itself: the question is which *other* class it "
                        "looks like, so leave the true class out")
        _same(found, expected, answer.name,
              "not the classes kdlab finds. Section 3 renormalises each image's wrong-class probabilities to sum "
              "to 1 before averaging them over the images of a class: otherwise the few images the teacher "
              "hesitates on outweigh all the confident ones", rtol=0, atol=0)
    return f"{answer.name} names each class's closest other class, as section 3's renormalised average does"


# --- 02 · the distillation loss ----------------------------------------------------------------------

def _buggy_kd_loss(student_logits, teacher_logits, labels, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1), reduction="mean")
    hard = F.cross_entropy(student_logits / T, labels)
    return alpha * T**2 * soft + (1 - alpha) * hard


def _half_fixed_kd_loss(student_logits, teacher_logits, labels, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                    reduction="batchmean")
    hard = F.cross_entropy(student_logits / T, labels)
    return alpha * T**2 * soft + (1 - alpha) * hard


def _kd_loss_with_alpha_on_the_labels(student_logits, teacher_logits, labels, T, alpha):
    return kd_loss(student_logits, teacher_logits, labels, T=T, alpha=1 - alpha)


@_exercise("02.1", _buggy_kd_loss, _half_fixed_kd_loss, _kd_loss_with_alpha_on_the_labels)
def _find_the_bugs(answer):
    generator = _generator(4)
    student, teacher = 2 * torch.randn(8, 10, generator=generator), 5 * torch.randn(8, 10, generator=generator)
    labels = torch.randint(10, (8,), generator=generator)
    for T in (2.0, 4.0):
        found = _scalar(answer(student, teacher, labels, T, 1.0), answer.name)
        expected = kd_loss(student, teacher, labels, T=T, alpha=1.0).item()
        if math.isclose(found, kd_loss(student, teacher, labels, T=T, alpha=0.0).item(), rel_tol=1e-4):
            raise Wrong("at alpha = 1 yours is the labels' term alone: in kdlab's convention alpha weighs the teacher")
        if not math.isclose(found, expected, rel_tol=1e-4):
            raise Wrong(f"at alpha = 1 only the teacher's term counts, and yours is {found / expected:.3g} times "
                        "kdlab's: over which dimensions does the KL average?")
        found = _scalar(answer(student, teacher, labels, T, 0.0), answer.name)
        if not math.isclose(found, kd_loss(student, teacher, labels, T=T, alpha=0.0).item(), rel_tol=1e-4):
            raise Wrong(f"at alpha = 0 only the labels' term counts, and yours changes with T (here T = {T:g}): "
                        "at which temperature does the hard term compare the student with the labels?")
    for T, alpha in ((2.0, 0.3), (8.0, 0.9)):
        found = _scalar(answer(student, teacher, labels, T, alpha), answer.name)
        if not math.isclose(found, kd_loss(student, teacher, labels, T=T, alpha=alpha).item(), rel_tol=1e-4):
            raise Wrong(f"each term alone is right, but at alpha = {alpha:g} the mix is not kdlab's: which term does "
                        "alpha weigh?")
    return f"{answer.name} equals kd_loss term by term and mixed, at several T and alpha: both bugs are fixed"


def _tutorial_alpha_unnormalised(soft_target_loss_weight, ce_loss_weight):
    return soft_target_loss_weight, 1.0


def _tutorial_alpha_on_the_labels(soft_target_loss_weight, ce_loss_weight):
    total = soft_target_loss_weight + ce_loss_weight
    return ce_loss_weight / total, total


def _tutorial_without_scale(soft_target_loss_weight, ce_loss_weight):
    return soft_target_loss_weight / (soft_target_loss_weight + ce_loss_weight), 1.0


def _tutorial_loss(student, teacher, labels, T, soft_weight, ce_weight):
    parts = kd_loss(student, teacher, labels, T=T, alpha=1.0, return_parts=True)
    return soft_weight * T**2 * parts.kl + ce_weight * parts.ce


@_exercise("02.2", _tutorial_alpha_unnormalised, _tutorial_alpha_on_the_labels, _tutorial_without_scale)
def _tutorial_to_kdlab(answer):
    generator = _generator(5)
    student, teacher = 2 * torch.randn(8, 10, generator=generator), 5 * torch.randn(8, 10, generator=generator)
    labels = torch.randint(10, (8,), generator=generator)
    for soft_weight, ce_weight in ((0.25, 0.75), (2.0, 0.5), (1.0, 3.0)):
        alpha, scale = _pair(answer(soft_weight, ce_weight), answer.name, "alpha, scale")
        if not 0 <= alpha <= 1:
            raise Wrong(f"for weights {soft_weight:g} and {ce_weight:g} your alpha is {alpha:g}; kdlab's alpha lies "
                        "between 0 and 1")
        for T in (2.0, 5.0):
            theirs = _tutorial_loss(student, teacher, labels, T, soft_weight, ce_weight).item()
            ours = scale * kd_loss(student, teacher, labels, T=T, alpha=alpha).item()
            if not math.isclose(theirs, ours, rel_tol=1e-4):
                if soft_weight + ce_weight == 1:
                    raise Wrong(f"the weights {soft_weight:g} and {ce_weight:g} sum to 1, so scale is 1; but which "
                                "of them is kdlab's alpha? kdlab's alpha weighs the teacher's term")
                raise Wrong(f"the weights {soft_weight:g} and {ce_weight:g} do not sum to 1: factor an overall scale "
                            "out of the tutorial's loss so that what is left weighs its terms alpha and 1 - alpha")
    return f"{answer.name} turns the tutorial's two weights into kdlab's alpha and a scale, checked on its loss"


def _equal_terms_without_T2(student_logits, teacher_logits, labels, T):
    parts = kd_loss(student_logits, teacher_logits, labels, T=T, alpha=1.0, return_parts=True)
    return (parts.ce / (parts.kl + parts.ce)).item()


def _equal_terms_inverted(student_logits, teacher_logits, labels, T):
    parts = kd_loss(student_logits, teacher_logits, labels, T=T, alpha=1.0, return_parts=True)
    return (T**2 * parts.kl / (T**2 * parts.kl + parts.ce)).item()


@_exercise("02.3", lambda student_logits, teacher_logits, labels, T: 0.5, _equal_terms_without_T2,
           _equal_terms_inverted)
def _alpha_for_equal_terms(answer):
    generator = _generator(6)
    student, teacher = 2 * torch.randn(16, 10, generator=generator), 5 * torch.randn(16, 10, generator=generator)
    labels = torch.randint(10, (16,), generator=generator)
    for T in (1.0, 3.0, 12.0):
        alpha = _scalar(answer(student, teacher, labels, T), answer.name)
        if not 0 <= alpha <= 1:
            raise Wrong(f"at T = {T:g} your alpha is {alpha:g}; kdlab's alpha lies between 0 and 1")
        parts = kd_loss(student, teacher, labels, T=T, alpha=alpha, return_parts=True)
        share = (parts.soft / parts.total).item()
        if abs(share - 0.5) > 1e-4:
            raise Wrong(f"at T = {T:g} and your alpha the teacher's term is {share:.1%} of the loss, not half. A "
                        "weight is not a share: the terms' own sizes count too (kd_loss(..., return_parts=True) "
                        "gives them)")
    return f"{answer.name} finds the alpha at which both terms weigh the same, at several T"


# --- 03 · gradients and the T^2 factor ----------------------------------------------------------------

def _kd_gradient_per_example(student_logits, teacher_logits, labels, T, alpha):
    hard = soft_targets(student_logits, 1.0) - F.one_hot(labels, student_logits.shape[1])
    return alpha * T * soft_term_gradient(student_logits, teacher_logits, T) + (1 - alpha) * hard


def _kd_gradient_without_T2(student_logits, teacher_logits, labels, T, alpha):
    hard = soft_targets(student_logits, 1.0) - F.one_hot(labels, student_logits.shape[1])
    return (alpha * soft_term_gradient(student_logits, teacher_logits, T) + (1 - alpha) * hard) / len(labels)


def _kd_gradient_flipped(student_logits, teacher_logits, labels, T, alpha):
    return -_kd_gradient_reference(student_logits, teacher_logits, labels, T, alpha)


def _kd_gradient_reference(student_logits, teacher_logits, labels, T, alpha):
    leaf = student_logits.clone().requires_grad_()
    (gradient,) = torch.autograd.grad(kd_loss(leaf, teacher_logits, labels, T=T, alpha=alpha), leaf)
    return gradient


@_exercise("03.1", _kd_gradient_per_example, _kd_gradient_without_T2, _kd_gradient_flipped)
def _kd_gradient(answer):
    generator = _generator(7)
    student, teacher = 2 * torch.randn(5, 10, generator=generator), 4 * torch.randn(5, 10, generator=generator)
    labels = torch.randint(10, (5,), generator=generator)
    for T, alpha in ((1.0, 0.5), (4.0, 1.0), (4.0, 0.0), (20.0, 0.9)):
        found = answer.numbers(student, teacher, labels, T, alpha)
        expected = _kd_gradient_reference(student, teacher, labels, T, alpha).double()
        _same_shape(found, expected, answer.name)
        if torch.allclose(found, expected, rtol=1e-4, atol=1e-7):
            continue
        factor, where = _ratio(found, expected), f"at T = {T:g}, alpha = {alpha:g}"
        if factor is not None and math.isclose(factor, -1, rel_tol=1e-3):
            raise Wrong(f"{where} your gradient points the wrong way: the soft term's gradient is positive on the "
                        "classes where the student's probability exceeds the teacher's")
        if factor is not None and math.isclose(factor, len(labels), rel_tol=1e-3):
            raise Wrong(f"{where} yours is {len(labels)} times autograd's, the number of examples: the loss is a "
                        "mean over the batch")
        if factor is not None:
            raise Wrong(f"{where} yours is {factor:.4g} times autograd's: follow the factors of T, from the loss's "
                        "T^2 and from the chain rule through z/T")
        raise Wrong(f"{where} your gradient is not autograd's; take the two terms one at a time (alpha = 1, then "
                    "alpha = 0)")
    return f"{answer.name} equals autograd's gradient of kd_loss at several T and alpha"


def _logit_matching_uncentred(student_logits, teacher_logits, T):
    return soft_term_gradient_high_T(student_logits, teacher_logits, T)


def _logit_matching_exact(student_logits, teacher_logits, T):
    return soft_term_gradient(student_logits, teacher_logits, T)


def _centred(logits):
    return logits - logits.mean(dim=-1, keepdim=True)


@_exercise("03.2", _logit_matching_uncentred, _logit_matching_exact,
           lambda student_logits, teacher_logits, T: (_centred(student_logits) - _centred(teacher_logits)) / T**2)
def _logit_matching_gradient(answer):
    generator = _generator(8)
    offsets = 5 * torch.randn(6, 1, generator=generator)  # raw logits: a different mean on every row
    student = 2 * torch.randn(6, 10, generator=generator) + offsets
    teacher = 3 * torch.randn(6, 10, generator=generator)
    for T in (500.0, 1000.0):
        found, exact = answer.numbers(student, teacher, T), soft_term_gradient(student, teacher, T).double()
        _same_shape(found, exact, answer.name)
        factor = _ratio(found, soft_term_gradient_high_T(_centred(student), _centred(teacher), T).double())
        if factor is not None and not math.isclose(factor, 1, rel_tol=1e-3):
            raise Wrong(f"at T = {T:g} yours is {factor:.3g} times the limit: recheck the constant factors of the "
                        "expansion of the softmax for large T")
        error = ((found - exact).norm(dim=1) / exact.norm(dim=1)).mean().item()
        if error > 0.02:
            raise Wrong(f"at T = {T:g} yours is {error:.0%} off the exact soft gradient on these logits, whose rows "
                        "do not average to zero. The softmax cannot see a constant added to every logit of an "
                        "example; can your formula?")
    expected = soft_term_gradient_high_T(_centred(student), _centred(teacher), 1.0)
    _same(answer.numbers(student, teacher, 1.0), expected, answer.name,
          "at large T yours is right, but it should be the limit itself, the gradient of a mean squared error "
          "between logits, at every T (at T = 1 it should differ from the exact gradient)")
    return f"{answer.name} is the high-T limit, and it holds for logits whose rows do not average to zero"


# --- 04 · training the teacher ------------------------------------------------------------------------

def _parameters_without_biases(input_size, hidden, num_classes):
    sizes = [input_size, *hidden, num_classes]
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def _parameters_without_the_output_layer(input_size, hidden, num_classes):
    sizes = [input_size, *hidden]
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


@_exercise("04.1", _parameters_without_biases, _parameters_without_the_output_layer)
def _mlp_parameters(answer):
    for input_size, hidden, num_classes in ((64, (1200, 1200), 10), (784, (800, 800), 10), (7, (5,), 3),
                                            (20, (), 4)):
        found = _scalar(answer(input_size, hidden, num_classes), answer.name)
        expected = count_parameters(build_model(mlp_spec((input_size,), hidden, num_classes)))
        if found != expected:
            layers = " -> ".join(map(str, (input_size, *hidden, num_classes)))
            raise Wrong(f"for an MLP {layers} your count, {found:,.0f}, is {'below' if found < expected else 'above'} "
                        "kdlab's: count every Linear layer, including the last, and everything each one learns")
    return f"{answer.name} counts what count_parameters counts, for MLPs from none to two hidden layers"


def _most_confused_with_the_diagonal(logits, labels, T):
    average = mean_soft_targets(logits, labels, T)
    row, column = divmod(int(average.argmax()), average.shape[1])
    return row, column


def _most_confused_at_T1(logits, labels, T):
    return _most_confused_reference(logits, labels, 1.0)


def _most_confused_reference(logits, labels, T):
    average = mean_soft_targets(logits, labels, T).fill_diagonal_(-1.0)
    row, column = divmod(int(average.argmax()), average.shape[1])
    return row, column


@_exercise("04.2", _most_confused_with_the_diagonal, _most_confused_at_T1)
def _most_confused(answer):
    generator = _generator(9)
    logits, labels = _hesitant_and_confident(generator)
    for T in (4.0, 12.0):
        found = _pair(answer(logits, labels, T), answer.name, "true class, other class")
        expected = _most_confused_reference(logits, labels, T)
        if found[0] == found[1]:
            raise Wrong("your pair is one class twice: the diagonal is the teacher being right; look off it")
        if found != expected:
            raise Wrong(f"at T = {T:g} kdlab's mean soft targets put more probability on another pair: does your "
                        "answer use T, and average softmax(z/T) over the images of each true class?")
    return f"{answer.name} finds the largest off-diagonal mean soft target, at two temperatures"


# --- 05 · distilling the student ----------------------------------------------------------------------

def _interval_unpaired(baseline, distilled):
    baseline, distilled = np.asarray(baseline, dtype=float), np.asarray(distilled, dtype=float)
    mean = distilled.mean() - baseline.mean()
    half = t_critical(len(baseline) - 1) * math.sqrt((baseline.var(ddof=1) + distilled.var(ddof=1)) / len(baseline))
    return mean, mean - half, mean + half


def _interval_normal(baseline, distilled):
    differences = np.asarray(distilled, dtype=float) - np.asarray(baseline, dtype=float)
    half = 1.96 * differences.std(ddof=1) / math.sqrt(len(differences))
    return differences.mean(), differences.mean() - half, differences.mean() + half


@_exercise("05.1", _interval_unpaired, _interval_normal)
def _paired_interval(answer):
    generator = np.random.default_rng(10)
    for seeds in (5, 10):
        baseline = 0.88 + 0.03 * generator.standard_normal(seeds)  # hard draws are hard for both students
        distilled = baseline + 0.04 + 0.01 * generator.standard_normal(seeds)
        found = answer.numbers(baseline, distilled)
        if found.numel() != 3:
            raise Wrong(f"{answer.name} should return three numbers: (mean, low, high)")
        mean, low, high = found.tolist()
        expected = paired_difference(baseline, distilled)
        if not math.isclose(mean, expected["mean"], rel_tol=1e-6):
            raise Wrong("the centre is not the mean difference, distilled minus baseline, seed by seed")
        width, expected_width = high - low, expected["ci_high"] - expected["ci_low"]
        if not math.isclose(width, expected_width, rel_tol=1e-3) or not math.isclose(low, expected["ci_low"],
                                                                                     rel_tol=1e-6, abs_tol=1e-9):
            if width > expected_width:
                raise Wrong(f"with {seeds} seeds your interval is {width / expected_width:.1f} times as wide as the "
                            "paired one: the students of a seed share a transfer set, so take the spread of the "
                            "per-seed differences")
            raise Wrong(f"with {seeds} seeds your interval is too narrow: use Student's t with n - 1 degrees of "
                        "freedom (kdlab.comparison.t_critical) and the sample standard deviation")
    return f"{answer.name} is the paired 95 % t-interval, for five and for ten seeds"


@_exercise("05.2", lambda student_logits, teacher_logits: (student_logits.argmax(0) == teacher_logits.argmax(0)
                                                            ).float().mean(),
           lambda student_logits, teacher_logits: (student_logits.argmax(1) == teacher_logits.argmax(1)).sum())
def _top1_agreement(answer):
    generator = _generator(11)
    teacher = 3 * torch.randn(40, 10, generator=generator)
    student = teacher + 4 * torch.randn(40, 10, generator=generator)
    found = _scalar(answer(student, teacher), answer.name)
    expected = (student.argmax(1) == teacher.argmax(1)).double().mean().item()
    if not math.isclose(found, expected, abs_tol=1e-6):
        raise Wrong(f"{answer.name} gives {found:.3g}: agreement is the share of images, between 0 and 1, on which "
                    "the student's most probable class is the teacher's")
    return f"{answer.name} is the share of images on which student and teacher pick the same class"


def _smoothing_as_mass(mass_off_label, num_classes):
    return mass_off_label


def _smoothing_inverted(mass_off_label, num_classes):
    return mass_off_label * (num_classes - 1) / num_classes


@_exercise("05.3", _smoothing_as_mass, _smoothing_inverted)
def _matched_smoothing(answer):
    generator = _generator(12)
    for mass, classes in ((0.639, 10), (0.3, 10), (0.2, 3)):
        epsilon = _scalar(answer(mass, classes), answer.name)
        if not 0 <= epsilon <= 1:
            raise Wrong(f"for a mass of {mass:g} over {classes} classes your label_smoothing is {epsilon:g}; "
                        "PyTorch takes it between 0 and 1")
        logits, labels = torch.randn(8, classes, generator=generator), torch.randint(classes, (8,), generator=generator)
        target = torch.full((8, classes), mass / (classes - 1)).scatter(1, labels[:, None], 1 - mass)
        smoothed = F.cross_entropy(logits, labels, label_smoothing=epsilon)
        if not torch.isclose(smoothed, -(target * F.log_softmax(logits, 1)).sum(1).mean(), rtol=1e-5):
            raise Wrong(f"with {classes} classes, label_smoothing={epsilon:.3g} does not move {mass:g} off the label: "
                        "PyTorch keeps 1 - eps + eps/K on it, so how much does eps move?")
    return f"{answer.name} gives the label_smoothing that moves a given mass off the label, checked in PyTorch"


# --- 06 · sweeping T and alpha ------------------------------------------------------------------------

def _choose_on_test(validation_runs, test_runs, alphas):
    return alphas[int(np.argmax(np.mean(test_runs, axis=0)))]


def _choose_on_both(validation_runs, test_runs, alphas):
    return alphas[int(np.argmax(np.mean(validation_runs, axis=0) + np.mean(test_runs, axis=0)))]


def _choose_the_luckiest_run(validation_runs, test_runs, alphas):
    return alphas[int(np.argmax(np.max(validation_runs, axis=0)))]


@_exercise("06.1", _choose_on_test, _choose_on_both, _choose_the_luckiest_run)
def _choose_alpha(answer):
    alphas = (0.0, 0.25, 0.5, 0.75, 1.0)
    # the highest mean on validation is 0.75; one lucky run puts 0.25 on top; the test runs favour others
    validation = np.array([[0.86, 0.90, 0.90, 0.91, 0.90], [0.87, 0.95, 0.91, 0.92, 0.91],
                           [0.85, 0.88, 0.90, 0.92, 0.91], [0.86, 0.89, 0.91, 0.93, 0.90]])
    for test in (np.array([[0.85, 0.92, 0.93, 0.90, 0.94]] * 4), np.array([[0.95, 0.80, 0.80, 0.80, 0.80]] * 4)):
        chosen = _scalar(answer(validation, test, alphas), answer.name)
        if math.isclose(chosen, 0.25):
            raise Wrong("you chose the cell of the single luckiest student: the highest of several noisy numbers is "
                        "partly luck, so choose by the mean over the transfer sets")
        if not math.isclose(chosen, 0.75):
            raise Wrong(f"you chose alpha = {chosen:g}. Look at what your choice depends on: with the same validation "
                        "scores it must not move when only the test scores change. The test set only reports")
    return f"{answer.name} chooses by the mean validation accuracy, and the test scores cannot move its choice"


def _tell_apart_by_overlap(runs_a, runs_b):
    a, b = (paired_difference(np.zeros(len(runs)), runs) for runs in (runs_a, runs_b))
    return "better" if b["ci_low"] > a["ci_high"] else "worse" if b["ci_high"] < a["ci_low"] else "inconclusive"


def _tell_apart_by_means(runs_a, runs_b):
    return "better" if np.mean(runs_b) > np.mean(runs_a) else "worse"


@_exercise("06.2", _tell_apart_by_overlap, _tell_apart_by_means)
def _tell_apart(answer):
    generator = np.random.default_rng(13)
    shared = 0.03 * generator.standard_normal(10)  # how hard each transfer set is, for every cell alike
    cases = {"b above a, seed by seed": (0.90 + shared, 0.91 + shared + 0.004 * generator.standard_normal(10)),
             "b below a, seed by seed": (0.90 + shared, 0.89 + shared + 0.004 * generator.standard_normal(10)),
             "no difference beyond the noise": (0.90 + shared, 0.9005 + shared + 0.01 * generator.standard_normal(10))}
    for case, (runs_a, runs_b) in cases.items():
        found = answer(runs_a, runs_b)
        expected = {"helps": "better", "hurts": "worse", "inconclusive": "inconclusive"}[
            paired_difference(runs_a, runs_b).verdict]
        if not isinstance(found, str) or found not in ("better", "worse", "inconclusive"):
            raise Wrong(f"{answer.name} should return 'better', 'worse' or 'inconclusive', got {found!r}")
        if found != expected:
            if expected == "inconclusive":
                raise Wrong(f"when {case}, you say {found!r}: a higher mean is not enough; the interval of the "
                            "differences must lie on one side of 0")
            raise Wrong(f"when {case}, you say {found!r}: the two cells share their transfer sets, so compare them "
                        "set by set; two separate intervals that overlap can hide a clear paired difference")
    return f"{answer.name} tells cells apart by the paired interval of their differences"


# --- 07 · dark knowledge: the missing class -----------------------------------------------------------

def _bias_from_a_grid(logits, cls, count):
    for bias in torch.linspace(0, 30, 601).tolist():
        raised = logits.clone()
        raised[:, cls] += bias
        if (raised.argmax(1) == cls).sum() >= count:
            return bias
    return 30.0


def _bias_from_the_wrong_end(logits, cls, count):
    others = logits.clone()
    others[:, cls] = float("-inf")
    return (others.max(1).values - logits[:, cls]).sort(descending=True).values[count - 1].item()


@_exercise("07.1", _bias_from_a_grid, _bias_from_the_wrong_end)
def _exact_bias(answer):
    generator = _generator(14)
    logits = 3 * torch.randn(120, 10, generator=generator)
    logits[:, 3] -= 6  # a class the student learned to avoid: it needs a raised bias
    for cls, count in ((3, 12), (3, 1), (3, 60), (5, 30)):
        bias = _scalar(answer(logits, cls, count), answer.name)
        predicted = {}
        for shift in (-1e-4, 1e-4):
            raised = logits.double().clone()
            raised[:, cls] += bias + shift
            predicted[shift] = int((raised.argmax(1) == cls).sum())
        if predicted[1e-4] < count:
            raise Wrong(f"with your bias only {predicted[1e-4]} images predict class {cls}, not {count}")
        if predicted[-1e-4] >= count:
            raise Wrong(f"a slightly smaller bias still makes {count} images predict class {cls}: yours is not the "
                        f"smallest. For one image, which bias makes its class-{cls} logit just reach its largest "
                        "other logit?")
    return f"{answer.name} finds the smallest bias exactly, without a grid"


def _auc_ignoring_ties(scores, positive):
    scores, positive = torch.as_tensor(scores), torch.as_tensor(positive).bool()
    return (scores[positive][:, None] > scores[~positive][None, :]).double().mean().item()


def _auc_as_accuracy(scores, positive):
    scores, positive = torch.as_tensor(scores), torch.as_tensor(positive).bool()
    return ((scores > 0) == positive).double().mean().item()


@_exercise("07.2", _auc_ignoring_ties, _auc_as_accuracy)
def _ranking_auc(answer):
    generator = _generator(15)
    positive = torch.rand(80, generator=generator) < 0.3
    continuous = torch.randn(80, generator=generator) + 1.5 * positive - 4  # every score below 0: a low level
    for scores in (continuous, continuous.round()):  # rounded: many ties
        found = _scalar(answer(scores, positive), answer.name)
        wins = (scores[positive][:, None] > scores[~positive][None, :]).double()
        ties = (scores[positive][:, None] == scores[~positive][None, :]).double()
        expected = (wins + ties / 2).mean().item()
        if not math.isclose(found, expected, abs_tol=1e-6):
            if (ties.sum() > 0).item() and math.isclose(found, wins.mean().item(), abs_tol=1e-6):
                raise Wrong("right without ties; with tied scores count each tie as half a win")
            raise Wrong(f"{answer.name} gives {found:.3g}: the AUC is the chance that a random image of the class "
                        "scores higher than a random image of another class. It must not depend on the level: "
                        "adding one number to every score changes nothing")
    return f"{answer.name} is the AUC, ties included: a bias cannot change it"


# --- 08 · distilling a language model -----------------------------------------------------------------

def _kl_per_sequence(student_logits, teacher_logits, T):
    return F.kl_div(F.log_softmax(student_logits / T, -1), F.log_softmax(teacher_logits / T, -1),
                    reduction="batchmean", log_target=True)


def _kl_over_every_element(student_logits, teacher_logits, T):
    return F.kl_div(F.log_softmax(student_logits / T, -1), F.log_softmax(teacher_logits / T, -1),
                    reduction="mean", log_target=True)


@_exercise("08.1", _kl_per_sequence, _kl_over_every_element)
def _token_kl(answer):
    generator = _generator(16)
    for length, T in ((8, 1.0), (32, 2.0)):
        student, teacher = (torch.randn(4, length, 30, generator=generator) for _ in range(2))
        labels = torch.zeros(4, length, dtype=torch.long)
        found = _scalar(answer(student, teacher, T), answer.name)
        expected = kd_loss(student, teacher, labels, T=T, return_parts=True).kl.item()
        if not math.isclose(found, expected, rel_tol=1e-4):
            if math.isclose(found, length * expected, rel_tol=1e-4):
                raise Wrong(f"at a context of {length} yours is {length} times kdlab's: it grows with the context "
                            "length. Every position is an example")
            raise Wrong(f"at a context of {length} yours is {found / expected:.3g} times kdlab's per-token KL: sum "
                        "over the vocabulary, average over every (sequence, position)")
    return f"{answer.name} averages the KL over tokens, whatever the context length"


def _pulled_towards_reference(teacher_logits, labels, alpha):
    return alpha * torch.softmax(teacher_logits, -1) + (1 - alpha) * F.one_hot(labels, teacher_logits.shape[-1])


@_exercise("08.2", lambda teacher_logits, labels, alpha: _pulled_towards_reference(teacher_logits, labels, 1 - alpha),
           lambda teacher_logits, labels, alpha: torch.softmax(
               alpha * teacher_logits + (1 - alpha) * F.one_hot(labels, teacher_logits.shape[-1]), -1))
def _pulled_towards(answer):
    generator = _generator(17)
    teacher, labels = 3 * torch.randn(6, 20, generator=generator), torch.randint(20, (6,), generator=generator)
    for alpha in (0.3, 0.9):
        found = answer.numbers(teacher, labels, alpha)
        _same_shape(found, teacher.double(), answer.name)
        if (found < 0).any() or not torch.allclose(found.sum(-1), torch.ones(()).double(), atol=1e-5):
            raise Wrong("each row should be a distribution over the vocabulary: non-negative, summing to 1")
        student = found.clamp_min(1e-30).log().float().requires_grad_()  # a student whose softmax is yours
        kd_loss(student, teacher, labels, T=1.0, alpha=alpha).backward()
        if student.grad.norm() > 1e-4:
            raise Wrong(f"a student whose probabilities are yours still gets a gradient of size "
                        f"{student.grad.norm():.2g} from kd_loss at T = 1, alpha = {alpha:g}: it has not reached the "
                        "target. Which of the two distributions does alpha weigh?")
    return f"{answer.name} is where kd_loss pulls the student at T = 1: a student there gets no gradient"


# --- 09 · what the teacher really teaches -------------------------------------------------------------

@_exercise("09.1", lambda member_logits, T: torch.softmax(member_logits.mean(0) / T, -1),
           lambda member_logits, T: torch.softmax(member_logits, -1).mean(0))
def _ensemble_targets(answer):
    generator = _generator(18)
    members = 4 * torch.randn(5, 12, 10, generator=generator)
    for T in (1.0, 4.0, 12.0):
        found = answer.numbers(members, T)
        _same(found, soft_targets(members, T).mean(0), answer.name,
              f"at T = {T:g} these are not the ensemble's soft targets: average the members' distributions at T, "
              "not their logits (a softmax of the mean logits is a geometric mean, sharper than the average)")
    return f"{answer.name} averages the members' soft targets at T"


def _fidelity_reversed(student_logits, teacher_logits):
    agreement = (student_logits.argmax(1) == teacher_logits.argmax(1)).float().mean()
    return agreement, kd_loss(teacher_logits, student_logits, teacher_logits.argmax(1), T=1.0, return_parts=True).kl


def _fidelity_mean_over_elements(student_logits, teacher_logits):
    agreement = (student_logits.argmax(1) == teacher_logits.argmax(1)).float().mean()
    return agreement, F.kl_div(F.log_softmax(student_logits, 1), F.log_softmax(teacher_logits, 1), reduction="mean",
                               log_target=True)


@_exercise("09.2", _fidelity_reversed, _fidelity_mean_over_elements)
def _agreement_and_kl(answer):
    generator = _generator(19)
    teacher = 4 * torch.randn(30, 10, generator=generator)
    student = 0.5 * teacher + 2 * torch.randn(30, 10, generator=generator)
    agreement, kl = _pair(answer(student, teacher), answer.name, "agreement, KL")
    if not math.isclose(agreement, (student.argmax(1) == teacher.argmax(1)).double().mean().item(), abs_tol=1e-6):
        raise Wrong("the agreement is not the share of images on which the two top classes are the same")
    expected = kd_loss(student, teacher, teacher.argmax(1), T=1.0, return_parts=True).kl.item()
    if math.isclose(kl, expected / teacher.shape[1], rel_tol=1e-4):
        raise Wrong("your KL is divided by the number of classes: sum over the classes, average over the images")
    if not math.isclose(kl, expected, rel_tol=1e-4):
        raise Wrong("the KL is not KL(teacher || student) at T = 1, summed over classes and averaged over images: "
                    "a KL is not symmetric, and fidelity asks how far the student is from the teacher")
    return f"{answer.name} gives top-1 agreement and KL(teacher || student), as section 4 measures fidelity"


# --- 10 · distilling features -------------------------------------------------------------------------

def _cka_uncentred(x, y):
    x, y = x.flatten(1).double(), y.flatten(1).double()
    return (torch.linalg.matrix_norm(y.T @ x) ** 2
            / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y))).item()


def _cka_unsquared(x, y):
    x, y = (_centred(t.flatten(1).double().T).T for t in (x, y))
    return (torch.linalg.matrix_norm(y.T @ x)
            / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)).sqrt()).item()


@_exercise("10.1", _cka_uncentred, _cka_unsquared)
def _linear_cka(answer):
    generator = _generator(20)
    x = torch.randn(50, 8, generator=generator) + 3  # features that do not average to zero
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    cases = {"two unrelated layers": (x, torch.randn(50, 2, 3, 3, generator=generator)),
             "a related, wider layer": (x, torch.cat([x @ torch.randn(8, 12, generator=generator),
                                                      torch.randn(50, 4, generator=generator)], 1)),
             "a layer and its rotation, scaled": (x, 2 * x @ rotation)}
    for case, (first, second) in cases.items():
        found = _scalar(answer(first, second), answer.name)
        if not math.isclose(found, linear_cka(first, second), rel_tol=1e-4, abs_tol=1e-6):
            raise Wrong(f"on {case} yours is {found:.3g}, not kdlab's. CKA compares how the examples vary: would "
                        "adding the same vector to every example change yours?")
    return f"{answer.name} is linear CKA: 1 for a rotated, scaled copy, and blind to a shift of every example"


def _cosine_loss_not_detached(student_features, teacher_features):
    return (1 - F.cosine_similarity(student_features.flatten(1), teacher_features.flatten(1), dim=1)).mean()


def _cosine_loss_over_the_batch(student_features, teacher_features):
    cosine = F.cosine_similarity(student_features.flatten(1), teacher_features.detach().flatten(1), dim=0)
    return (1 - cosine).mean()


@_exercise("10.2", _cosine_loss_not_detached, _cosine_loss_over_the_batch)
def _cosine_loss(answer):
    generator = _generator(21)
    for shape in ((6, 16), (6, 4, 2, 2)):
        student = torch.randn(shape, generator=generator).requires_grad_()
        teacher = torch.randn(shape, generator=generator).requires_grad_()
        loss = answer(student, teacher)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or loss.grad_fn is None:
            raise Wrong(f"{answer.name} should return a one-number tensor that the student's gradient can flow "
                        "through (not a float from .item())")
        _same(_numbers(loss, answer.name).reshape(()), cosine_feature_loss(student, teacher), answer.name,
              f"on features of shape {shape} yours is not 1 - cos(h_s, h_t) averaged over the batch: compare each "
              "example's two vectors (flattened), then average")
        loss.backward()
        if teacher.grad is not None and teacher.grad.abs().sum() > 0:
            raise Wrong("the loss sends a gradient into the teacher's features: the teacher only answers, so only "
                        "the student should learn from this loss")
    return f"{answer.name} equals cosine_feature_loss, and no gradient reaches the teacher"


def _pool_positions(teacher_map, student_channels):
    batch, channels, height, width = teacher_map.shape
    flat = F.avg_pool1d(teacher_map.flatten(1)[:, None], channels // student_channels)[:, 0]
    return flat.reshape(batch, student_channels, height, width)


def _pool_strided_channels(teacher_map, student_channels):
    batch, channels, height, width = teacher_map.shape
    return teacher_map.reshape(batch, channels // student_channels, student_channels, height, width).mean(1)


@_exercise("10.3", _pool_positions, _pool_strided_channels)
def _pool_channels(answer):
    generator = _generator(22)
    for channels, student_channels in ((16, 4), (12, 6)):
        teacher_map = torch.randn(3, channels, 2, 3, generator=generator)
        expected = teacher_map.unflatten(1, (student_channels, -1)).mean(2)
        _same(answer.numbers(teacher_map, student_channels), expected, answer.name,
              f"from {channels} to {student_channels} channels yours is not the average of each group of adjacent "
              "teacher channels at each position: pooling the flattened map averages neighbouring positions of one "
              "channel instead, and loses where each feature is")
    return f"{answer.name} averages groups of adjacent channels and keeps every position"


# --- 11 · decoupled knowledge distillation -----------------------------------------------------------

def _kl_per_example(log_p, log_q):
    """KL(p || q) per example, from log-probabilities."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _parts_dividing_probabilities(student_logits, teacher_logits, labels, T):
    """The parts from probabilities, renormalised by dividing by 1 - p(target): 0/0 for a confident teacher."""
    target = F.one_hot(labels, student_logits.shape[-1]).bool()
    parts = []
    for logits in (student_logits, teacher_logits):
        p = torch.softmax(logits.double() / T, dim=-1)
        p_target = p[target]
        parts.append((torch.stack([p_target, 1 - p_target], -1), p[~target].view(len(p), -1) / (1 - p_target[:, None])))
    (student_binary, student_rest), (teacher_binary, teacher_rest) = parts
    return (_kl_per_example(teacher_binary.log(), student_binary.log()),
            _kl_per_example(teacher_rest.log(), student_rest.log()), teacher_binary[:, 1])


def _parts_weight_from_the_student(student_logits, teacher_logits, labels, T):
    tckd, nckd, _ = decoupled_kl_parts(student_logits, teacher_logits, labels, T)
    return tckd, nckd, 1 - torch.softmax(student_logits / T, -1).gather(1, labels[:, None])[:, 0]


def _parts_without_removing_the_target(student_logits, teacher_logits, labels, T):
    tckd, _, weight = decoupled_kl_parts(student_logits, teacher_logits, labels, T)
    nckd = _kl_per_example(F.log_softmax(teacher_logits / T, -1), F.log_softmax(student_logits / T, -1))
    return tckd, nckd, weight


def _parts_weight_at_T1(student_logits, teacher_logits, labels, T):
    tckd, nckd, _ = decoupled_kl_parts(student_logits, teacher_logits, labels, T)
    return tckd, nckd, 1 - torch.softmax(teacher_logits, -1).gather(1, labels[:, None])[:, 0]


def _three(value, name: str) -> list[torch.Tensor]:
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise Wrong(f"{name} should return three tensors, (tckd, nckd, non_target_weight), one number per example; "
                    f"it returned {type(value).__name__}")
    return [_numbers(part, name) for part in value]


@_exercise("11.1", _parts_dividing_probabilities, _parts_weight_from_the_student, _parts_without_removing_the_target,
           _parts_weight_at_T1)
def _decoupled_parts(answer):
    generator = _generator(23)
    labels = torch.randint(10, (8,), generator=generator)
    student, teacher = 2 * torch.randn(8, 10, generator=generator), 4 * torch.randn(8, 10, generator=generator)
    confident = teacher.clone()
    confident[torch.arange(8), labels] = 200.0  # a teacher sure of every label: 1 - p(target) rounds to 0
    for case, teacher_logits, T in (("T = 1", teacher, 1.0), ("T = 4", teacher, 4.0), ("T = 12", teacher, 12.0),
                                    ("a teacher sure of every label, T = 1", confident, 1.0)):
        found = _three(answer(student, teacher_logits, labels, T), answer.name)
        expected = decoupled_kl_parts(student.double(), teacher_logits.double(), labels, T)
        for part, mine, theirs, hint in (
                ("non_target_weight", found[2], expected.non_target_weight,
                 "it is 1 minus the teacher's probability of the target at temperature T: the share of the teacher's "
                 "probability that lies on the other classes"),
                ("tckd", found[0], expected.tckd, "TCKD compares two two-class distributions, [p(target), "
                 "1 - p(target)], the teacher's and the student's, as KL(teacher || student)"),
                ("nckd", found[1], expected.nckd, "NCKD is the KL between the teacher's and the student's "
                 "distributions over the non-target classes alone, each renormalised to sum to 1")):
            _same(mine.reshape(-1), theirs, answer.name, f"with {case} your {part} is not kdlab's: {hint}",
                  rtol=1e-4, atol=1e-6)
        identity = found[0] + found[2] * found[1]
        kl = _kl_per_example(F.log_softmax(teacher_logits.double() / T, -1), F.log_softmax(student.double() / T, -1))
        _same(identity, kl, answer.name, f"with {case} tckd + non_target_weight * nckd is not KD's KL")
    return f"{answer.name} splits KD's KL into TCKD + (1 - p_t) NCKD, for a confident teacher too"


def _dkd_without_T2(student_logits, teacher_logits, labels, T, alpha, beta):
    return _dkd_loss_reference(student_logits, teacher_logits, labels, T, alpha, beta, scale=1.0)


def _dkd_alpha_on_the_labels(student_logits, teacher_logits, labels, T, alpha, beta):
    return _dkd_loss_reference(student_logits, teacher_logits, labels, T, 1 - alpha, beta)


def _dkd_summed_over_examples(student_logits, teacher_logits, labels, T, alpha, beta):
    parts = decoupled_kl_parts(student_logits, teacher_logits, labels, T)
    return (alpha * T**2 * (parts.tckd + beta * parts.nckd).sum()
            + (1 - alpha) * F.cross_entropy(student_logits, labels, reduction="sum"))


def _dkd_cross_entropy_at_T(student_logits, teacher_logits, labels, T, alpha, beta):
    parts = decoupled_kl_parts(student_logits, teacher_logits, labels, T)
    return alpha * T**2 * (parts.tckd + beta * parts.nckd).mean() + (1 - alpha) * F.cross_entropy(student_logits / T,
                                                                                                   labels)


def _dkd_loss_reference(student_logits, teacher_logits, labels, T, alpha, beta, scale=None):
    parts = decoupled_kl_parts(student_logits, teacher_logits, labels, T)
    scale = T**2 if scale is None else scale
    return alpha * scale * (parts.tckd + beta * parts.nckd).mean() + (1 - alpha) * F.cross_entropy(student_logits,
                                                                                                   labels)


@_exercise("11.2", _dkd_without_T2, _dkd_alpha_on_the_labels, _dkd_summed_over_examples, _dkd_cross_entropy_at_T)
def _dkd_loss(answer):
    generator = _generator(24)
    labels = torch.randint(10, (6,), generator=generator)
    student, teacher = 2 * torch.randn(6, 10, generator=generator), 4 * torch.randn(6, 10, generator=generator)
    for T, alpha, beta in ((12.0, 1.0, 2.0), (4.0, 0.0, 8.0), (4.0, 0.5, 8.0), (1.0, 0.9, 1.0), (2.0, 0.25, 0.0)):
        found = _scalar(answer(student, teacher, labels, T, alpha, beta), answer.name)
        expected = decoupled_kd_loss(student.double(), teacher.double(), labels, T=T, alpha=alpha, tckd_weight=1.0,
                                     nckd_weight=beta).item()
        if math.isclose(found, expected, rel_tol=1e-4, abs_tol=1e-6):
            continue
        where = f"at T = {T:g}, alpha = {alpha:g}, beta = {beta:g}"
        soft = decoupled_kd_loss(student.double(), teacher.double(), labels, T=T, alpha=1.0, nckd_weight=beta).item()
        if alpha == 0:
            raise Wrong(f"{where} (labels only) yours is {found:.4g}, not the cross-entropy with the labels at T = 1: "
                        "the hard term takes no temperature, and alpha, on the teacher's term, leaves it alone here")
        if alpha == 1 and math.isclose(found * T**2, soft, rel_tol=1e-4):
            raise Wrong(f"{where} yours is 1/T^2 of kdlab's: the soft term is scaled by T^2, as in kd_loss, so that "
                        "its gradients do not shrink as T grows")
        if alpha == 1 and math.isclose(found, F.cross_entropy(student, labels).item(), rel_tol=1e-4):
            raise Wrong(f"{where} yours is the cross-entropy with the labels alone: in kdlab's convention alpha "
                        "weights the teacher's term, so alpha = 1 leaves only DKD's soft term")
        if alpha == 1 and math.isclose(found, soft * len(labels), rel_tol=1e-4):
            raise Wrong(f"{where} yours is {len(labels)} times kdlab's, the number of examples: average over the "
                        "batch")
        raise Wrong(f"{where} yours is {found:.4g}, kdlab's {expected:.4g}: take the two terms one at a time (alpha = "
                    "1, then alpha = 0), and mind where each is computed at T and where at T = 1")
    return f"{answer.name} is DKD as kdlab writes KD: T^2, alpha on the teacher, a mean over examples"


# --- 12 · how language models are distilled ------------------------------------------------------------

def _forward_token_kl(student_logits, teacher_logits, T):
    return kd_loss(student_logits, teacher_logits, torch.zeros(student_logits.shape[:-1], dtype=torch.long), T=T,
                   return_parts=True).kl


def _reverse_kl_per_sequence(student_logits, teacher_logits, T):
    log_q, log_p = F.log_softmax(student_logits / T, -1), F.log_softmax(teacher_logits / T, -1)
    return (log_q.exp() * (log_q - log_p)).sum((-2, -1)).mean()


@_exercise("12.1", _forward_token_kl, _reverse_kl_per_sequence)
def _reverse_token_kl(answer):
    from kdlab.losses import reverse_kd_loss

    generator = _generator(25)
    for length, T in ((8, 1.0), (24, 2.0)):
        student, teacher = torch.randn(4, length, 30, generator=generator), 3 * torch.randn(4, length, 30,
                                                                                            generator=generator)
        labels = torch.zeros(4, length, dtype=torch.long)
        found = _scalar(answer(student, teacher, T), answer.name)
        expected = reverse_kd_loss(student, teacher, labels, T=T, return_parts=True).kl.item()
        if math.isclose(found, expected, rel_tol=1e-4):
            continue
        forward = kd_loss(student, teacher, labels, T=T, return_parts=True).kl.item()
        if math.isclose(found, forward, rel_tol=1e-4):
            raise Wrong(f"at T = {T:g} yours is the forward KL(p_teacher || q_student): which distribution "
                        "weights the log-ratio when the KL is reversed?")
        if math.isclose(found, length * expected, rel_tol=1e-4):
            raise Wrong(f"at a context of {length} yours is {length} times kdlab's: it grows with the context "
                        "length. Every position is an example")
        raise Wrong(f"at T = {T:g} yours is {found:.4g}, the reverse KL per token is {expected:.4g}: soften both "
                    "at T, weight log q - log p by q, sum over the vocabulary, average over the tokens")
    return f"{answer.name} is KL(q_student || p_teacher) per token, the mode-seeking direction"


def _sample_nll_reference(logits, ids, start):
    log_probabilities = F.log_softmax(logits.double(), -1)
    chosen = log_probabilities.gather(-1, ids[:, 1:, None])[..., 0]  # logits[:, t] predicts ids[:, t + 1]
    return -chosen[:, start - 1:].mean()


def _sample_nll_misaligned(logits, ids, start):
    chosen = F.log_softmax(logits, -1).gather(-1, ids[:, :-1, None])[..., 0]
    return -chosen[:, start - 1:].mean()


def _sample_nll_with_the_prompt(logits, ids, start):
    return _sample_nll_reference(logits, ids, 1)


def _sample_nll_summed(logits, ids, start):
    return _sample_nll_reference(logits, ids, start) * (ids.shape[1] - start)


@_exercise("12.2", _sample_nll_misaligned, _sample_nll_with_the_prompt, _sample_nll_summed)
def _sample_nll(answer):
    generator = _generator(26)
    for start in (1, 5):
        ids = torch.randint(12, (3, 10), generator=generator)
        logits = 2 * torch.randn(3, 9, 12, generator=generator)
        found = _scalar(answer(logits, ids, start), answer.name)
        expected = _sample_nll_reference(logits, ids, start).item()
        if math.isclose(found, expected, rel_tol=1e-4):
            continue
        if math.isclose(found, _sample_nll_misaligned(logits, ids, start).item(), rel_tol=1e-4):
            raise Wrong("yours scores each character with the logits at its own position: the logits at position t "
                        "predict the character *after* it, ids[:, t + 1]")
        if start > 1 and math.isclose(found, _sample_nll_reference(logits, ids, 1).item(), rel_tol=1e-4):
            raise Wrong(f"with start = {start} yours counts the prompt too: score only the characters the model "
                        "wrote, ids[:, start:]")
        if math.isclose(found, expected * (ids.shape[1] - start), rel_tol=1e-4):
            raise Wrong("yours is summed over the written characters: average them, so that samples of any length "
                        "are scored per character")
        raise Wrong(f"with start = {start} yours is {found:.4g}, the mean negative log-likelihood per written "
                    f"character is {expected:.4g}")
    return f"{answer.name} scores only what was written, each character by the logits just before it"


def _mixed_kl_swapped(p, q, mix):
    from kdlab.language_sources import mixed_kl

    return mixed_kl(p, q, 1 - mix)


def _mixed_kl_naive(p, q, mix):
    return mix * (p * (p / q).log()).sum(-1) + (1 - mix) * (q * (q / p).log()).sum(-1)


@_exercise("12.3", _mixed_kl_swapped, _mixed_kl_naive)
def _mixed_kl(answer):
    from kdlab.language_sources import mixed_kl

    generator = _generator(27)
    p, q = torch.softmax(2 * torch.randn(5, 9, generator=generator), -1), torch.softmax(
        torch.randn(5, 9, generator=generator), -1)
    for mix in (1.0, 0.0, 0.3):
        found = answer.numbers(p, q, mix)
        _same_shape(found, p[:, 0].double(), answer.name)
        if torch.allclose(found, mixed_kl(p.double(), q.double(), mix), rtol=1e-4, atol=1e-6):
            continue
        if torch.allclose(found, mixed_kl(p.double(), q.double(), 1 - mix), rtol=1e-4, atol=1e-6):
            raise Wrong(f"at mix = {mix:g} yours weights the two directions the other way round: mix = 1 is the "
                        "forward KL(p || q), the one kd_loss uses")
        raise Wrong(f"at mix = {mix:g} yours is not mix * KL(p || q) + (1 - mix) * KL(q || p), one value per row")
    outside = torch.zeros(5, 9, dtype=torch.bool)
    outside[:, -3:] = True  # bins neither distribution reaches
    p, q = (distribution.masked_fill(outside, 0) for distribution in (p, q))
    p, q = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)
    found = answer.numbers(p, q, 0.5)
    if not torch.allclose(found, mixed_kl(p.double(), q.double(), 0.5), rtol=1e-4, atol=1e-6):
        raise Wrong("with bins where both distributions are 0 yours differs: such a bin adds 0 * log(0/0), which "
                    "counts as 0")
    return f"{answer.name} mixes the two directions, and a bin neither distribution reaches adds nothing"
