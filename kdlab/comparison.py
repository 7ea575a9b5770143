"""Paired comparisons with honest error bars: is a difference larger than its noise?

A comparison in kdlab is paired: for each seed the two students share initial weights, batches
and transfer set, so the per-seed difference cancels most of the seed-to-seed spread. The
mean difference gets a 95 % t-interval (n - 1 degrees of freedom; scipy-free, from a small
table), and a verdict: "helps" when the interval lies on the better side of 0, "hurts" when on the
worse side, and "inconclusive" otherwise -- an honest answer, not a failure. Which side is better
is said, not assumed: for a loss or a KL (`higher_is_better=False`) a decrease helps.

An interval says what it covers. `paired_difference` covers seeds only: every seed is scored on the
same test images, so their own sampling noise (500 images: about 1 point of standard error on an
accuracy) is shared by all seeds and does not show in their spread. `paired_difference_over_examples`
adds it: to the seeds' variance it adds the variance of the per-example differences over the test
images (Welch-Satterthwaite degrees of freedom); a headline verdict uses it.
"""

from __future__ import annotations

import math
import numbers
import statistics
from collections.abc import Iterable

import numpy as np

__all__ = ["PairedDifference", "mean_interval", "mean_sd", "paired_difference", "paired_difference_over_examples",
           "t_critical"]

# Two-sided 95 % critical values of Student's t for 1..30 degrees of freedom.
_T_95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
# Beyond 30 degrees of freedom: the table's tail (40, 60, 120, infinity).
_T_95_TAIL = ((40, 2.021), (60, 2.000), (120, 1.980), (math.inf, 1.960))


def t_critical(degrees_of_freedom: int) -> float:
    """The two-sided 95 % critical value of t (rounded up to the nearest tabled value past 30)."""
    if isinstance(degrees_of_freedom, bool) or not isinstance(degrees_of_freedom, numbers.Integral):
        raise TypeError(f"degrees_of_freedom must be a whole number, got {degrees_of_freedom!r}")
    if degrees_of_freedom < 1:
        raise ValueError(f"an interval needs at least 2 values (1 degree of freedom), got {degrees_of_freedom + 1}")
    if degrees_of_freedom <= len(_T_95):
        return _T_95[degrees_of_freedom - 1]
    return next(value for limit, value in _T_95_TAIL if degrees_of_freedom <= limit)


def _checked_values(values, name: str) -> list:
    """The values as given (so the arithmetic is unchanged), or an error naming the entry that is not a finite
    number: a diverged run's NaN would otherwise end the summary with "'float' object has no attribute
    'numerator'", after all the training."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    values = list(values)
    for position, value in enumerate(values):
        try:
            number = None if isinstance(value, (bool, str, bytes)) else float(value)
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise ValueError(f"{name}[{position}] must be a real number, got {value!r}")
        if not math.isfinite(number):
            raise ValueError(f"{name}[{position}] is {number}, not a finite number: the run at position {position} "
                             "probably diverged; rerun that seed or leave it out")
    return values


def mean_sd(values) -> dict:
    """Mean and sample standard deviation (0 for a single value): a spread, where no interval is wanted."""
    values = [float(value) for value in _checked_values(values, "values")]
    if not values:
        raise ValueError("a mean needs at least 1 value, got 0")
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def mean_interval(values) -> dict:
    """{"mean", "sd", "ci_low", "ci_high", "n"}: a mean with its 95 % t-interval (n >= 2)."""
    values = [float(value) for value in _checked_values(values, "values")]
    if len(values) < 2:
        raise ValueError(f"an interval needs at least 2 values, got {len(values)}; run more seeds")
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half_width = t_critical(len(values) - 1) * sd / math.sqrt(len(values))
    return {"mean": mean, "sd": sd, "ci_low": mean - half_width, "ci_high": mean + half_width, "n": len(values)}


class PairedDifference(dict):
    """mean_interval of `treated - control` per pair, its verdict and what its interval `covers`; a dict, so it
    goes into JSON as is."""

    @property
    def verdict(self) -> str:
        return self["verdict"]

    def describe(self, unit_scale: float = 100.0, unit: str = "points", decimals: int = 2) -> str:
        """One line for people: '+1.20 points (95 % CI +0.40 to +2.00, 5 seeds): helps'."""
        if self["verdict"] == "identical":
            return f"identical on all {self['n']} seeds"
        low, mean, high = (f"{unit_scale * self[key]:+.{decimals}f}" for key in ("ci_low", "mean", "ci_high"))
        if self["ci_low"] == self["ci_high"]:
            return f"{mean} {unit} on all {self['n']} seeds (no spread, so no interval): {self['verdict']}"
        images = f" and {self['examples']} {self['covers'].removeprefix('seeds and ')}" if "examples" in self else ""
        return f"{mean} {unit} (95 % CI {low} to {high}, {self['n']} seeds{images}): {self['verdict']}"


def _verdict(summary: dict, higher_is_better: bool) -> str:
    """'identical' for no difference on any seed; else which side of 0 the interval lies on, if it does."""
    if summary["ci_low"] == summary["ci_high"] == 0:
        return "identical"
    above, below = summary["ci_low"] > 0, summary["ci_high"] < 0
    better, worse = (above, below) if higher_is_better else (below, above)
    return "helps" if better else "hurts" if worse else "inconclusive"


def paired_difference(control, treated, *, higher_is_better: bool = True) -> PairedDifference:
    """The paired difference treated - control, pair by pair, with a 95 % interval over the pairs (the seeds)
    and a verdict; higher_is_better=False for a loss or a KL, where a decrease helps.

    A value that is not finite (a diverged run) raises a ValueError naming its position: a verdict
    over the other pairs would hide that one seed failed."""
    control, treated = _checked_values(control, "control"), _checked_values(treated, "treated")
    if len(control) != len(treated):
        raise ValueError(f"a paired comparison needs as many treated as control values, "
                         f"got {len(treated)} and {len(control)}")
    differences = [float(t - c) for c, t in zip(control, treated)]  # in their own precision, as before
    summary = mean_interval(differences)
    if all(math.isclose(difference, differences[0], rel_tol=1e-9, abs_tol=1e-12) for difference in differences):
        mean = 0.0 if math.isclose(differences[0], 0, abs_tol=1e-12) else summary["mean"]  # rounding, not spread
        summary |= {"mean": mean, "sd": 0.0, "ci_low": mean, "ci_high": mean}
    return PairedDifference(summary, verdict=_verdict(summary, higher_is_better), covers="seeds")


def paired_difference_over_examples(control, treated, *, higher_is_better: bool = True,
                                    scored_on: str = "test images") -> PairedDifference:
    """paired_difference from per-example scores, with an interval over the seeds *and* the finite test set.

    `control` and `treated` are (seeds, examples) arrays: 1/0 for a right/wrong prediction (or a per-example
    loss), a seed's score being its row's mean. Variance of the mean difference = var(per-seed differences) /
    seeds + var(per-example differences, averaged over the seeds) / examples; t with Welch-Satterthwaite
    degrees of freedom, rounded down. `scored_on` names the images, as `covers` and describe() say them."""
    control, treated = (np.asarray(values, dtype=np.float64) for values in (control, treated))
    if control.ndim != 2 or control.shape != treated.shape:
        raise ValueError("control and treated must be (seeds, examples) arrays of one shape, got "
                         f"{control.shape} and {treated.shape}")
    seeds, examples = control.shape
    if seeds < 2 or examples < 2:
        raise ValueError(f"an interval needs at least 2 seeds and 2 examples, got {seeds} and {examples}")
    if not (np.isfinite(control).all() and np.isfinite(treated).all()):
        raise ValueError("a per-example score is NaN or infinite: a run probably diverged; rerun that seed")
    differences = treated - control
    per_seed, per_example = differences.mean(axis=1), differences.mean(axis=0)
    seed_variance, example_variance = per_seed.var(ddof=1) / seeds, per_example.var(ddof=1) / examples
    total = seed_variance + example_variance
    degrees = seeds - 1 if total == 0 else max(1, int(
        total**2 / (seed_variance**2 / (seeds - 1) + example_variance**2 / (examples - 1))))
    mean, half_width = float(per_seed.mean()), t_critical(degrees) * math.sqrt(total)
    summary = {"mean": mean, "sd": float(per_seed.std(ddof=1)), "ci_low": mean - half_width,
               "ci_high": mean + half_width, "n": seeds, "examples": examples,
               "se_seeds": math.sqrt(seed_variance), "se_examples": math.sqrt(example_variance),
               "degrees_of_freedom": degrees}
    return PairedDifference(summary, verdict=_verdict(summary, higher_is_better), covers=f"seeds and {scored_on}")
