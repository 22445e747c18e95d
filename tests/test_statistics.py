"""The statistics over seeds (msgan_cli/report/statistics.py) on cases whose answer is known, and against
independent computations: scipy's t test and Mann-Whitney U, and the sign-flip test by enumeration."""
import itertools

import numpy as np
import pytest
from scipy import stats

from msgan_cli.report import statistics
from msgan_cli.report.statistics import (
    IntervalOptions,
    mean_interval,
    paired_comparison,
    probability_of_improvement,
    sign_flip_p,
    smallest_sign_flip_p,
)


def enumerated_sign_flip_p(d) -> float:
    """The test's definition, by brute force: every sign vector, |mean(e * d)| >= |mean(d)|."""
    observed = abs(np.mean(d))
    flips = [abs(np.mean(np.array(e) * d)) >= observed - 1e-12 for e in itertools.product([-1, 1], repeat=len(d))]
    return sum(flips) / len(flips)


def test_identical_runs_give_p_1_and_an_interval_around_0():
    values = {seed: 0.5 + seed / 10 for seed in range(6)}
    result = paired_comparison(values, dict(values), higher_is_better=True)
    assert result.p == 1.0 and result.difference == 0.0
    assert result.interval == (0.0, 0.0) and not result.excludes_no_difference
    assert result.p_better == pytest.approx(0.5)   # the same value set on both sides: every comparison as likely


def test_a_method_better_on_every_one_of_6_seeds_has_the_exact_p_2_over_64():
    baseline = {seed: 1.0 + 0.3 * seed for seed in range(6)}
    method = {seed: value + 0.1 + 0.05 * seed for seed, value in baseline.items()}
    result = paired_comparison(method, baseline, higher_is_better=True)
    assert result.p == 2 / 64 and result.seeds == tuple(range(6))
    assert result.excludes_no_difference and result.interval[0] > 0


def test_the_smallest_reachable_p_is_2_over_2_to_the_n():
    assert smallest_sign_flip_p(5) == 0.0625 and smallest_sign_flip_p(6) == 2 / 64 and smallest_sign_flip_p(1) == 1.0
    assert sign_flip_p([1.0] * 5) == smallest_sign_flip_p(5)   # 5 seeds cannot reach 0.05, whatever the data


@pytest.mark.parametrize("seed", range(5))
def test_the_sign_flip_p_is_its_definition_by_enumeration(seed):
    d = np.random.default_rng(seed).normal(0.3, 1.0, size=7)
    assert sign_flip_p(d) == pytest.approx(enumerated_sign_flip_p(d), abs=1e-12)


def test_beyond_the_exact_range_random_sign_vectors_estimate_the_same_p(monkeypatch):
    d = np.random.default_rng(7).normal(0.4, 1.0, size=10)
    exact = enumerated_sign_flip_p(d)
    monkeypatch.setattr(statistics, "EXACT_SIGN_FLIPS_UP_TO", 4)
    estimate = sign_flip_p(d, seed=0)
    assert estimate == sign_flip_p(d, seed=0)   # seeded: a report is the same every time
    standard_error = np.sqrt(exact * (1 - exact) / statistics.RANDOM_SIGN_FLIPS)
    assert abs(estimate - exact) < 4 * standard_error + 1e-5


def test_the_t_interval_is_scipys_one_sample_t_interval():
    values = np.random.default_rng(1).normal(3.0, 0.5, size=5)
    expected = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    assert mean_interval(values) == pytest.approx((expected.low, expected.high), rel=1e-12)
    expected_90 = stats.ttest_1samp(values, 0.0).confidence_interval(0.9)
    assert mean_interval(values, IntervalOptions(confidence=0.9)) == pytest.approx((expected_90.low, expected_90.high))


def test_the_bootstrap_interval_is_seeded_and_near_the_t_interval_on_many_seeds():
    values = np.random.default_rng(2).normal(0.0, 1.0, size=40)
    options = IntervalOptions(method="bootstrap", resamples=4000, seed=3)
    low, high = mean_interval(values, options)
    assert (low, high) == mean_interval(values, options)
    assert low < values.mean() < high
    t_low, t_high = mean_interval(values)
    assert (high - low) == pytest.approx(t_high - t_low, rel=0.2)   # both ~ 2 x 1.96 sd / sqrt(n) for n = 40


def test_one_seed_has_no_interval():
    assert mean_interval([0.3]) is None
    assert paired_comparison({0: 1.0}, {0: 0.5}, True).interval is None


def test_probability_of_improvement_is_mann_whitney_u_over_n_m_and_follows_the_direction():
    a, b = np.array([0.9, 0.7, 0.8, 0.75]), np.array([0.6, 0.8, 0.65, 0.7])
    u = stats.mannwhitneyu(a, b, alternative="greater").statistic
    assert probability_of_improvement(a, b, higher_is_better=True) == pytest.approx(u / 16)
    assert probability_of_improvement(a, b, higher_is_better=False) == pytest.approx(1 - u / 16)   # FID: lower wins
    assert probability_of_improvement([1.0, 2.0], [0.0, 0.5], True) == 1.0


def test_a_metric_without_a_better_side_has_no_probability_of_improvement():
    result = paired_comparison({0: 4.0, 1: 5.0}, {0: 3.0, 1: 3.0}, higher_is_better=None)
    assert result.p_better is None and result.difference == 1.5


def test_only_the_seeds_both_ran_are_paired():
    result = paired_comparison({0: 2.0, 1: 3.0, 4: 9.0}, {1: 1.0, 0: 1.0, 2: 0.0}, True)
    assert result.seeds == (0, 1) and result.difference == 1.5
    assert paired_comparison({0: 1.0}, {1: 1.0}, True) is None


@pytest.mark.parametrize("options", [dict(method="z"), dict(confidence=95), dict(resamples=10)])
def test_interval_options_out_of_range_are_refused_with_the_fix(options):
    with pytest.raises(ValueError, match="use|give"):
        IntervalOptions(**options)
