import math
import statistics

import numpy as np
import pytest
import torch

from kdlab.comparison import (
    mean_interval,
    mean_sd,
    paired_difference,
    paired_difference_over_examples,
    t_critical,
)


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


def test_for_a_loss_a_decrease_helps():
    before, after = [0.50, 0.52, 0.55, 0.51, 0.53], [0.40, 0.43, 0.44, 0.42, 0.41]
    assert paired_difference(before, after).verdict == "hurts"  # lower numbers, read as accuracy
    assert paired_difference(before, after, higher_is_better=False).verdict == "helps"
    assert paired_difference(after, before, higher_is_better=False).verdict == "hurts"


def test_identical_values_on_every_seed_are_said_to_be_identical_not_a_zero_width_interval():
    same = paired_difference([0.9, 0.8, 0.7], [0.9, 0.8, 0.7])
    assert same.verdict == "identical" and same.describe() == "identical on all 3 seeds"
    shifted = paired_difference([0.9, 0.8, 0.7], [0.92, 0.82, 0.72])
    assert "on all 3 seeds (no spread, so no interval)" in shifted.describe() and "CI" not in shifted.describe()
    assert paired_difference([0.9, 0.8], [0.91, 0.83])["covers"] == "seeds"


def test_the_interval_over_examples_adds_the_test_sets_variance_to_the_seeds():
    rng = np.random.default_rng(0)
    control = (rng.random((5, 400)) < 0.90).astype(float)
    treated = (rng.random((5, 400)) < 0.92).astype(float)
    both = paired_difference_over_examples(control, treated)
    seeds_only = paired_difference(control.mean(axis=1), treated.mean(axis=1))
    differences = treated - control
    variance = differences.mean(axis=1).var(ddof=1) / 5 + differences.mean(axis=0).var(ddof=1) / 400
    assert both["mean"] == pytest.approx(seeds_only["mean"])
    assert both["ci_high"] - both["mean"] == pytest.approx(t_critical(both["degrees_of_freedom"]) * variance ** 0.5)
    assert both["ci_high"] - both["ci_low"] > seeds_only["ci_high"] - seeds_only["ci_low"]
    assert both["covers"] == "seeds and test images" and "5 seeds and 400 test images" in both.describe()
    on_validation = paired_difference_over_examples(control, treated, scored_on="validation images")
    assert on_validation["covers"] == "seeds and validation images"
    assert "5 seeds and 400 validation images" in on_validation.describe()


def test_over_seeds_and_images_the_interval_covers_the_true_gain_95_percent_of_the_time():
    """Simulated students whose gain differs from image to image: a test set of 300 images is one draw of
    them, which the seeds' spread cannot see; the interval over both covers the population's gain."""
    rng = np.random.default_rng(1)
    true_gain, trials, covered_both, covered_seeds = 0.02, 400, 0, 0
    for _ in range(trials):
        per_image = true_gain + rng.normal(0, 0.3, size=300)      # this test set's images
        per_seed = rng.normal(0, 0.01, size=(6, 1))                 # what training seeds change
        treated = per_image + per_seed + rng.normal(0, 0.1, size=(6, 300))
        both = paired_difference_over_examples(np.zeros_like(treated), treated)
        seeds_only = paired_difference(np.zeros(6), treated.mean(axis=1))
        covered_both += both["ci_low"] <= true_gain <= both["ci_high"]
        covered_seeds += seeds_only["ci_low"] <= true_gain <= seeds_only["ci_high"]
    assert 0.92 <= covered_both / trials <= 0.985
    assert covered_seeds / trials < 0.8


def test_the_interval_over_examples_refuses_what_it_cannot_summarise():
    with pytest.raises(ValueError, match="same shape|one shape"):
        paired_difference_over_examples(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="at least 2 seeds"):
        paired_difference_over_examples(np.zeros((1, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="diverged"):
        paired_difference_over_examples(np.zeros((2, 2)), np.array([[0, 1], [np.nan, 1]]))
    assert paired_difference_over_examples(np.ones((3, 4)), np.ones((3, 4))).describe() == "identical on all 3 seeds"
