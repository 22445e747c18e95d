"""Metrics against cases with a known answer."""
import math

import pytest
import torch

from msgan_cli.data.mixtures2d import mixture_centres, sample_mixture
from msgan_cli.metrics import modes_2d, pairwise_distances
from msgan_cli.report import mean_std


def test_modes_2d_counts_exactly_the_covered_modes():
    centres = mixture_centres("ring8")
    generator = torch.Generator().manual_seed(0)
    # A "generator" that covers exactly 3 of the 8 ring modes, tightly.
    points, _ = sample_mixture(centres[[0, 3, 5]], 0.01, 2500, generator)
    result = modes_2d(points, centres, std=0.01)
    assert result["modes"] == 3
    assert result["high_quality"] > 98
    # Three equally used modes out of eight: KL(p || uniform) = log(8 / 3).
    assert result["kl"] == pytest.approx(math.log(8 / 3), abs=0.02)


def test_modes_2d_on_the_true_distribution_and_on_noise():
    centres = mixture_centres("grid25")
    points, _ = sample_mixture(centres, 0.05, 2500, torch.Generator().manual_seed(1))
    perfect = modes_2d(points, centres, std=0.05)
    assert perfect["modes"] == 25 and perfect["high_quality"] > 97 and perfect["kl"] < 0.02
    far_away = modes_2d(torch.full((100, 2), 100.0), centres, std=0.05)
    assert far_away["modes"] == 0 and far_away["high_quality"] == 0


def test_pairwise_distance_known_values():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.stack([torch.ones(1, 2, 2), torch.full((1, 2, 2), -0.5)])
    assert pairwise_distances(a, b).tolist() == [1.0, 0.5]
    assert pairwise_distances(a, a).sum() == 0


def test_mean_std_uses_the_sample_standard_deviation():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(math.sqrt(5 / 3))
    assert mean_std([7.0]) == (7.0, 0.0)
