"""`reg=ms`: mode seeking (MSGAN; Mao et al., CVPR 2019, arXiv 1903.05628). docs/methods.md#mode-seeking.

Maximise how far two outputs for the same condition move apart relative to how far their latents
are apart. Cost: no extra network pass of its own; it needs two outputs per condition, which come
from the step's one batched G call (`trainer.pair_batch=doubled`, the code's layout, doubles that
batch; `split` keeps it).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from msgan_cli.core.registry import register_regularizer
from msgan_cli.core.stats import report
from msgan_cli.regularizers.base import PairOptions, PairRegularizer, option

REDUCTIONS = ("mean", "per_sample")


def mode_seeking_ratio(fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                       reduction: str = "mean") -> torch.Tensor:
    """Eq. 1's ratio d_I(G(c,z1), G(c,z2)) / d_z(z1, z2) with L1 distances.

    `mean`: one scalar, both means over every element of the batch (the official code).
    `per_sample`: one ratio per sample (a variant; shape (batch,)).
    """
    image_gap = (fake2.float() - fake1.float()).abs()
    latent_gap = (z2.float() - z1.float()).abs()
    if reduction == "mean":
        return image_gap.mean() / latent_gap.mean()
    if reduction == "per_sample":
        return image_gap.flatten(1).mean(1) / latent_gap.flatten(1).mean(1)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def mode_seeking_loss(fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                      eps: float = 1e-5, reduction: str = "mean") -> torch.Tensor:
    """The mode seeking term to minimise: `1 / (ratio + eps)` (unweighted; lambda_ms multiplies it).

    1. Eq. 1: the ratio of image distance to latent distance (`mode_seeking_ratio`).
    2. The official code turns the maximisation into a loss by inversion, not clamped:
       `loss = 1 / (ratio + eps)`; with `per_sample` the per-sample losses are averaged.
    """
    ratio = mode_seeking_ratio(fake1, fake2, z1, z2, reduction)
    return (1.0 / (ratio + eps)).mean()


@dataclass
class ModeSeekingOptions(PairOptions):
    eps: float = 1e-5          # the code's 1e-5
    reduction: str = option("mean", choices=REDUCTIONS)   # "mean" (code) or "per_sample"


@register_regularizer("ms")
class ModeSeeking(PairRegularizer):
    Options = ModeSeekingOptions

    def pair_loss(self, fake1, fake2, z1, z2) -> torch.Tensor:
        with torch.no_grad():
            report("Diag/ms/ratio", mode_seeking_ratio(fake1, fake2, z1, z2, self.options.reduction).mean())
        return mode_seeking_loss(fake1, fake2, z1, z2, self.options.eps, self.options.reduction)
