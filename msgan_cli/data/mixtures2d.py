"""The 2D Gaussian mixtures of VEEGAN / PacGAN / Unrolled GAN (docs/methods.md#mixtures-2d).

ring8: 8 Gaussians on a circle of radius 1, per-axis std 0.01.
grid25: 25 Gaussians at {-4, -2, 0, 2, 4}^2, per-axis std 0.05. Uniform mixture weights.
Labels are the component index ("mode"), kept for evaluation; the centres and std travel in
`Data.extras` for the modes-captured metric.
"""
import math

import torch

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Data, TensorSplit


def mixture_centres(name: str, radius: float = 1.0) -> torch.Tensor:
    if name == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([radius * angles.cos(), radius * angles.sin()], 1).float()
    if name == "grid25":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        return torch.cartesian_prod(axis, axis)
    raise ValueError(f"unknown mixture {name}")


def sample_mixture(centres: torch.Tensor, std: float, count: int, generator: torch.Generator):
    """`count` points from the uniform mixture, with the index of the component each came from."""
    labels = torch.randint(len(centres), (count,), generator=generator)
    points = centres[labels] + std * torch.randn(count, 2, generator=generator)
    return points, labels


def _load(cfg, name: str) -> Data:
    centres = mixture_centres(name, cfg.get("radius", 1.0))
    generator = torch.Generator().manual_seed(cfg.data_seed)
    train = TensorSplit(*sample_mixture(centres, cfg.std, cfg.num_train, generator))
    test = TensorSplit(*sample_mixture(centres, cfg.std, cfg.num_test, generator))
    return Data(name=name, kind="points", train=train, test=test, num_classes=len(centres),
                label_kind="mode", shape=(2,), extras={"centres": centres, "std": float(cfg.std)})


@register_dataset("ring8")
def load_ring8(cfg) -> Data:
    return _load(cfg, "ring8")


@register_dataset("grid25")
def load_grid25(cfg) -> Data:
    return _load(cfg, "grid25")
