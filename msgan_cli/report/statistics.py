"""Statistics over seeds: whether a difference between two methods is more than seed noise
(docs/methods.md#seed-statistics).

A method's value is one number per seed (a run, or the mean of a seed's repeated runs). What a
report says of it:

- `mean_interval`: the mean over seeds and its confidence interval, Student's t (the default: with
  3-10 seeds a bootstrap of the mean has few distinct resamples and comes out too narrow) or a
  seeded percentile bootstrap;
- `paired_comparison` of a method against a baseline on the seeds both ran: the per-seed
  difference's mean and interval, the exact sign-flip permutation test's two-sided p, and the
  probability that the method beats the baseline (Agarwal et al., NeurIPS 2021).

Pure numpy and scipy, importable in a notebook:

    from msgan_cli.report.statistics import paired_comparison
    paired_comparison({0: 3.1, 1: 2.9, 2: 3.4}, {0: 1.2, 1: 1.0, 2: 1.1}, higher_is_better=True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

EXACT_SIGN_FLIPS_UP_TO = 16        # 2^16 sign vectors; more pairs are tested with random sign vectors
RANDOM_SIGN_FLIPS = 100_000


@dataclass(frozen=True)
class IntervalOptions:
    """How intervals are computed: `method` "t" (Student's t) or "bootstrap" (percentile, `resamples`
    resamples drawn from a generator seeded with `seed`, so a report is the same every time)."""

    method: str = "t"
    confidence: float = 0.95
    resamples: int = 10_000
    seed: int = 0

    def __post_init__(self):
        if self.method not in ("t", "bootstrap"):
            raise ValueError(f"interval method {self.method!r}: use 't' or 'bootstrap'")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence {self.confidence}: give a level between 0 and 1, e.g. 0.95")
        if self.resamples < 100:
            raise ValueError(f"{self.resamples} bootstrap resamples: use at least 100 (10,000 is usual)")

    @property
    def name(self) -> str:
        return "Student's t" if self.method == "t" else f"percentile bootstrap ({self.resamples:,} resamples)"


def mean_std(values) -> tuple[float, float]:
    """The mean and the sample standard deviation (n - 1; 0 for one value)."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def mean_interval(values, options: IntervalOptions = IntervalOptions()) -> tuple[float, float] | None:
    """The confidence interval of the mean of `values` (one per seed); None for fewer than 2 values,
    whose spread is unknown."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return None
    mean = float(values.mean())
    if np.all(values == values[0]):   # no spread: every method agrees on a zero-width interval
        return mean, mean
    if options.method == "t":
        half = stats.t.ppf(0.5 + options.confidence / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
        return mean - half, mean + half
    result = stats.bootstrap((values,), np.mean, confidence_level=options.confidence, n_resamples=options.resamples,
                             method="percentile", random_state=np.random.default_rng(options.seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def sign_flip_p(differences, seed: int = 0) -> float:
    """The two-sided p-value of the sign-flip permutation test of "the mean paired difference is 0":
    the share of sign vectors e with |sum(e * d)| >= |sum(d)|. Under no difference each pair's sign is
    a coin flip, so every one of the 2^n vectors is equally likely. Exact (all 2^n) up to
    EXACT_SIGN_FLIPS_UP_TO pairs; beyond, RANDOM_SIGN_FLIPS vectors drawn with `seed`, counted as
    (1 + hits) / (1 + draws) so that the estimate is never 0."""
    d = np.asarray(differences, dtype=float)
    if len(d) == 0:
        return 1.0
    observed = abs(d.sum())
    tolerance = 1e-12 * np.abs(d).sum()   # a flip that gives the same sum up to rounding counts as reaching it
    if len(d) <= EXACT_SIGN_FLIPS_UP_TO:
        bits = (np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1
        sums = (1 - 2 * bits) @ d
        return float(np.mean(np.abs(sums) >= observed - tolerance))
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(RANDOM_SIGN_FLIPS, len(d)))
    hits = int(np.sum(np.abs(signs @ d) >= observed - tolerance))
    return (1 + hits) / (1 + RANDOM_SIGN_FLIPS)


def smallest_sign_flip_p(pairs: int) -> float:
    """The smallest two-sided p the sign-flip test can give with `pairs` pairs: 2 / 2^n (every pair
    in the same direction). 5 pairs give 0.0625, so 6 are needed to reach 0.05."""
    return min(1.0, 2.0 / 2 ** pairs)


def probability_of_improvement(method, baseline, higher_is_better: bool) -> float:
    """P(a seed's value of the method beats a seed's value of the baseline), each drawn at random, ties
    counted half: the Mann-Whitney U statistic over n x m, as rliable reports it."""
    a, b = np.asarray(method, dtype=float)[:, None], np.asarray(baseline, dtype=float)[None, :]
    wins = (a > b) if higher_is_better else (a < b)
    return float(np.mean(wins + 0.5 * (a == b)))


@dataclass(frozen=True)
class PairedComparison:
    """A method against a baseline over the seeds both ran (`seeds`): the mean per-seed difference
    (method - baseline, in the metric's own units) and its interval, the sign-flip test's p, and the
    probability that the method is better on a random seed (None where the metric has no better side)."""

    seeds: tuple[int, ...]
    difference: float
    interval: tuple[float, float] | None
    p: float
    p_better: float | None

    @property
    def excludes_no_difference(self) -> bool:
        """The difference's interval lies wholly on one side of 0."""
        return self.interval is not None and (self.interval[0] > 0 or self.interval[1] < 0)


def paired_comparison(method: dict[int, float], baseline: dict[int, float], higher_is_better: bool | None,
                      options: IntervalOptions = IntervalOptions()) -> PairedComparison | None:
    """`method` against `baseline`, each {seed: value}, paired by seed; None when they share no seed."""
    seeds = tuple(sorted(set(method) & set(baseline)))
    if not seeds:
        return None
    a = np.array([method[s] for s in seeds], dtype=float)
    b = np.array([baseline[s] for s in seeds], dtype=float)
    d = a - b
    better = None if higher_is_better is None else probability_of_improvement(a, b, higher_is_better)
    return PairedComparison(seeds, float(d.mean()), mean_interval(d, options), sign_flip_p(d, options.seed), better)
