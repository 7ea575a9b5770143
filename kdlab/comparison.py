"""Paired comparisons with honest error bars: is a difference larger than its noise?

A comparison in kdlab is paired: for each seed the two students share initial weights, batches
and transfer set, so the per-seed difference cancels most of the seed-to-seed spread. The
mean difference gets a 95 % t-interval (n - 1 degrees of freedom; scipy-free, from a small
table), and a verdict: "helps" when the interval lies above 0, "hurts" when below, and
"inconclusive" otherwise -- an honest answer, not a failure.
"""

from __future__ import annotations

import math
import numbers
import statistics
from collections.abc import Iterable

__all__ = ["PairedDifference", "mean_interval", "mean_sd", "paired_difference", "t_critical"]

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
    """mean_interval of `treated - control` per pair, plus its verdict; a dict, so it goes into JSON as is."""

    @property
    def verdict(self) -> str:
        return self["verdict"]

    def describe(self, unit_scale: float = 100.0, unit: str = "points", decimals: int = 2) -> str:
        """One line for people: '+1.20 points (95 % CI +0.40 to +2.00, 5 seeds): helps'."""
        low, mean, high = (f"{unit_scale * self[key]:+.{decimals}f}" for key in ("ci_low", "mean", "ci_high"))
        return f"{mean} {unit} (95 % CI {low} to {high}, {self['n']} seeds): {self['verdict']}"


def paired_difference(control, treated) -> PairedDifference:
    """The paired difference treated - control, pair by pair, with a 95 % interval and a verdict.

    A value that is not finite (a diverged run) raises a ValueError naming its position: a verdict
    over the other pairs would hide that one seed failed."""
    control, treated = _checked_values(control, "control"), _checked_values(treated, "treated")
    if len(control) != len(treated):
        raise ValueError(f"a paired comparison needs as many treated as control values, "
                         f"got {len(treated)} and {len(control)}")
    summary = mean_interval(t - c for c, t in zip(control, treated))
    verdict = "helps" if summary["ci_low"] > 0 else "hurts" if summary["ci_high"] < 0 else "inconclusive"
    return PairedDifference(summary, verdict=verdict)
