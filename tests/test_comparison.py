import math
import statistics

import numpy as np
import pytest
import torch

from kdlab.comparison import mean_interval, mean_sd, paired_difference, t_critical


def test_t_critical_values_match_the_table_and_fall_to_the_normal_value():
    assert t_critical(1) == 12.706 and t_critical(4) == 2.776 and t_critical(30) == 2.042
    assert t_critical(35) == 2.021 and t_critical(1000) == 1.960
    assert all(t_critical(df) >= t_critical(df + 1) for df in range(1, 200))
    with pytest.raises(ValueError, match="at least 2 values"):
        t_critical(0)


def test_mean_interval_is_mean_plus_minus_t_times_standard_error():
    values = [0.91, 0.93, 0.90, 0.95, 0.92]
    interval = mean_interval(values)
    half_width = 2.776 * statistics.stdev(values) / math.sqrt(5)
    assert interval["mean"] == pytest.approx(0.922)
    assert interval["ci_low"] == pytest.approx(0.922 - half_width)
    assert interval["ci_high"] == pytest.approx(0.922 + half_width)
    assert interval["n"] == 5
    with pytest.raises(ValueError, match="at least 2 values"):
        mean_interval([0.9])


@pytest.mark.parametrize("control, treated, verdict", [
    ([0.90, 0.91, 0.92, 0.93, 0.94], [0.92, 0.925, 0.94, 0.945, 0.96], "helps"),
    ([0.92, 0.925, 0.94, 0.945, 0.96], [0.90, 0.91, 0.92, 0.93, 0.94], "hurts"),
    ([0.90, 0.91, 0.92, 0.93, 0.94], [0.91, 0.90, 0.93, 0.92, 0.945], "inconclusive"),
])
def test_the_verdict_follows_the_interval_of_the_paired_differences(control, treated, verdict):
    difference = paired_difference(control, treated)
    assert difference.verdict == verdict == difference["verdict"]
    assert difference["mean"] == pytest.approx(statistics.fmean(t - c for c, t in zip(control, treated)))
    assert verdict in difference.describe()


def test_pairing_removes_the_spread_shared_by_both_members_of_a_pair():
    control = [0.80, 0.85, 0.90, 0.95, 0.99]  # seeds differ a lot...
    treated = [value + 0.01 + 0.001 * (i % 2) for i, value in enumerate(control)]  # ...the gain hardly
    assert paired_difference(control, treated).verdict == "helps"
    assert mean_interval(control)["ci_high"] > mean_interval(treated)["ci_low"]  # unpaired intervals overlap


def test_a_paired_difference_needs_pairs():
    with pytest.raises(ValueError, match="as many treated as control"):
        paired_difference([0.9, 0.8], [0.9])


@pytest.mark.parametrize("control, treated, match", [
    ([0.9, 0.8, 0.7], [0.9, math.nan, 0.8], r"treated\[1\] is nan.*the run at position 1 probably diverged"),
    ([0.9, 0.8, math.inf], [0.9, 0.9, 0.8], r"control\[2\] is inf.*the run at position 2 probably diverged"),
])
def test_a_diverged_run_is_named_by_its_position(control, treated, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(control, treated)


@pytest.mark.parametrize("value, shown", [(None, "None"), ("0.9", "'0.9'"), (True, "True"), ([0.9], r"\[0\.9\]")])
def test_an_entry_that_is_not_a_number_is_named_by_its_position(value, shown):
    with pytest.raises(ValueError, match=rf"^treated\[1\] must be a real number, got {shown}$"):
        paired_difference([0.9, 0.8, 0.7], [0.9, value, 0.8])


@pytest.mark.parametrize("control, treated", [(None, [0.9, 0.8]), ([0.9, 0.8], 0.5), ("ab", [0.9, 0.8])])
def test_a_paired_difference_needs_two_sequences_of_numbers(control, treated):
    name, value = ("control", control) if not isinstance(control, list) else ("treated", treated)
    with pytest.raises(TypeError, match=rf"^{name} must be a sequence of numbers, got {type(value).__name__}$"):
        paired_difference(control, treated)


def test_numpy_and_tensor_values_give_the_same_difference_as_floats():
    control, treated = [0.90, 0.91, 0.92, 0.93, 0.94], [0.92, 0.925, 0.94, 0.945, 0.96]
    expected = paired_difference(control, treated)
    assert paired_difference(np.array(control), np.array(treated)) == expected
    assert paired_difference(torch.tensor(control, dtype=torch.float64), treated) == expected


@pytest.mark.parametrize("summary", [mean_sd, mean_interval])
def test_summaries_name_the_entry_that_is_not_finite(summary):
    with pytest.raises(ValueError, match=r"values\[1\] is nan.*probably diverged"):
        summary([0.9, math.nan, 0.8])


def test_mean_sd_needs_at_least_one_value():
    assert mean_sd([0.5]) == {"mean": 0.5, "sd": 0.0}
    with pytest.raises(ValueError, match=r"^a mean needs at least 1 value, got 0$"):
        mean_sd([])


@pytest.mark.parametrize("degrees_of_freedom", ["3", 2.5, True, None])
def test_t_critical_takes_a_whole_number_of_degrees_of_freedom(degrees_of_freedom):
    with pytest.raises(TypeError, match=rf"^degrees_of_freedom must be a whole number, got {degrees_of_freedom!r}$"):
        t_critical(degrees_of_freedom)
