import pytest
import torch
import torch.nn.functional as F

from kdlab import kd_loss
from kdlab.conventions import CONVENTIONS, KDWeights, lint_kd_loss, reference_loss, to_kdlab


@pytest.fixture(scope="module")
def logits():
    generator = torch.Generator().manual_seed(3)
    student = 2 * torch.randn(32, 10, generator=generator, dtype=torch.float64)
    teacher = 4 * torch.randn(32, 10, generator=generator, dtype=torch.float64)
    return student, teacher, torch.randint(10, (32,), generator=generator)


@pytest.mark.parametrize("convention, weights, expected", [
    ("keras", {}, KDWeights(alpha=0.9, T=3.0)),
    ("torchdistill", {"alpha": 0.3}, KDWeights(alpha=0.7, T=4.0)),
    ("torchdistill", {"alpha": 0.5, "beta": 2.0, "temperature": 2.0}, KDWeights(alpha=0.8, T=2.0, scale=2.5)),
    ("pytorch-tutorial", {}, KDWeights(alpha=0.25, T=2.0)),
    ("repdistiller", {}, KDWeights(alpha=0.9, T=4.0)),
    ("repdistiller", {"gamma": 1.0, "alpha": 1.0}, KDWeights(alpha=0.5, T=4.0, scale=2.0)),
    ("huggingface", {"lambda_param": 0.2, "temperature": 8.0}, KDWeights(alpha=0.2, T=8.0)),
])
def test_each_convention_translates_to_kdlabs_weights(convention, weights, expected):
    translated = to_kdlab(convention, **weights)
    assert translated.alpha == pytest.approx(expected.alpha) and translated.T == expected.T
    assert translated.scale == pytest.approx(expected.scale)


@pytest.mark.parametrize("convention", list(CONVENTIONS))
@pytest.mark.parametrize("setting", [0, 1])
def test_each_convention_written_its_own_way_equals_kdlabs_loss_times_its_scale(logits, convention, setting):
    defaults, _ = CONVENTIONS[convention]
    weights = {} if setting == 0 else {name: (0.35 if name != "beta" else 0.8) if "temp" not in name and name not in
                                       ("T", "kd_T") else 6.0 for name in defaults}
    student, teacher, labels = logits
    kdlab = to_kdlab(convention, **weights)
    theirs = reference_loss(convention, student, teacher, labels, **weights)
    ours = kdlab.scale * kd_loss(student, teacher, labels, T=kdlab.T, alpha=kdlab.alpha)
    assert float(theirs) == pytest.approx(float(ours), rel=1e-6, abs=1e-6)


def test_unknown_conventions_and_weights_are_refused():
    with pytest.raises(ValueError, match="unknown convention 'sklearn'"):
        to_kdlab("sklearn")
    with pytest.raises(ValueError, match="keras takes alpha, temperature; got beta"):
        to_kdlab("keras", beta=0.3)
    with pytest.raises(ValueError, match="T must be"):
        to_kdlab("huggingface", temperature=1e6)


def correct(s, t, y, T, alpha):
    return kd_loss(s, t, y, T=T, alpha=alpha)


# The bugs as people write them, by hand, independently of kdlab's own list.
def alpha_on_cross_entropy(s, t, y, T, alpha):
    kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    return alpha * F.cross_entropy(s, y) + (1 - alpha) * T**2 * kl


def missing_T2(s, t, y, T, alpha):
    return alpha * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") + \
        (1 - alpha) * F.cross_entropy(s, y)


def mean_reduction(s, t, y, T, alpha):
    return alpha * T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="mean") + \
        (1 - alpha) * F.cross_entropy(s, y)


def probabilities_in(s, t, y, T, alpha):
    return alpha * T**2 * F.kl_div(F.softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") + \
        (1 - alpha) * F.cross_entropy(s, y)


def swapped(s, t, y, T, alpha):
    return alpha * T**2 * F.kl_div(F.log_softmax(t / T, 1), F.softmax(s / T, 1), reduction="batchmean") + \
        (1 - alpha) * F.cross_entropy(s, y)


@pytest.mark.parametrize("loss_function, finding", [
    (alpha_on_cross_entropy, "alpha weights the cross-entropy"),
    (missing_T2, "T^2 factor is missing"),
    (mean_reduction, "reduction='mean'"),
    (probabilities_in, "probabilities where it expects log-probabilities"),
    (swapped, "teacher and student are swapped"),
    (lambda s, t, y, T, alpha: 2 * correct(s, t, y, T, alpha), "matches neither"),
    (lambda s, t, y, T, alpha: 1 / 0, "raised ZeroDivisionError"),
])
def test_the_lint_names_each_known_bug(loss_function, finding):
    findings = lint_kd_loss(loss_function)
    assert len(findings) == 1 and finding in findings[0]


def test_the_lint_passes_kdlabs_loss():
    assert lint_kd_loss(correct) == []


def nan_at_low_temperature(s, t, y, T, alpha):
    return correct(s, t, y, T, alpha) if T > 3 else torch.tensor(float("nan"))


@pytest.mark.parametrize("loss_function, finding", [
    (lambda s, t, y, T, alpha: torch.tensor(float("nan")), "it returned nan on finite logits"),
    (lambda s, t, y, T, alpha: float("inf"), "it returned inf on finite logits"),
    (nan_at_low_temperature, "matches neither"),
    (lambda s, t, y, T, alpha: F.cross_entropy(s, y, reduction="none"),
     "it returned a tensor of shape (16,), not a single number: reduce over the batch"),
    (lambda s, t, y, T, alpha: None, "it returned NoneType, not a single number"),
])
def test_the_lint_never_passes_a_loss_that_is_not_one_finite_number(loss_function, finding):
    findings = lint_kd_loss(loss_function)
    assert len(findings) == 1 and finding in findings[0]


@pytest.mark.parametrize("convention, weights, shown", [
    ("keras", {"alpha": "0.1"}, "'0.1'"),
    ("keras", {"alpha": True}, "True"),
    ("repdistiller", {"kd_T": None}, "None"),
    ("huggingface", {"temperature": torch.tensor(5.0)}, r"tensor\(5\.\)"),
])
def test_weights_that_are_not_numbers_are_refused_by_name(convention, weights, shown):
    (name,) = weights
    with pytest.raises(TypeError, match=rf"^{convention}'s {name} must be a number, got {shown}$"):
        to_kdlab(convention, **weights)


def test_torchdistills_beta_may_be_left_to_its_default_none():
    assert to_kdlab("torchdistill", alpha=0.3, beta=None) == to_kdlab("torchdistill", alpha=0.3)
