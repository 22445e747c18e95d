"""`reg=dsgan`: the diversity-sensitive term of DSGAN (Yang et al., ICLR 2019), the concurrent
method MSGAN compares with. docs/methods.md#dsgan.

Like mode seeking it uses two outputs for the same condition; unlike it, the ratio is per sample,
the second output is detached (as in the official code), the ratio can be clipped at `tau`, and the
term enters G's loss as `- lambda * L_z` (a maximisation, no inversion). Cost: as mode seeking.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from msgan_cli.core.registry import register_regularizer
from msgan_cli.core.stats import report
from msgan_cli.regularizers.base import PairOptions, PairRegularizer, option


def dsgan_ratio(fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                tau: float | None = None) -> torch.Tensor:
    """Per-sample `min(||G(x,z1) - G(x,z2)||_1 / ||z1 - z2||_1, tau)`; shape (batch,).

    1. Per-sample L1 distances, as means over each sample's elements (the sums would only rescale
       the ratio by a constant, which matters for `tau`: set it on this mean scale).
    2. The second output is detached, as in the official code: only G(x, z1) is pushed away.
    3. Clipped at `tau` when given (off by default, as in the code).
    """
    image_distance = (fake1.float() - fake2.detach().float()).abs().flatten(1).mean(1)
    latent_distance = (z1.float() - z2.float()).abs().flatten(1).mean(1)
    ratio = image_distance / latent_distance
    return ratio if tau is None else ratio.clamp(max=tau)


def dsgan_loss(fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
               tau: float | None = None) -> torch.Tensor:
    """The term to minimise: `- E[ min(ratio, tau) ]` (lambda multiplies it)."""
    return -dsgan_ratio(fake1, fake2, z1, z2, tau).mean()


@dataclass
class DSGANOptions(PairOptions):
    weight: float = 8.0          # the code's lambda for image-to-image tasks (5 for inpainting)
    tau: float | None = option(None, above=0)   # clip of the ratio; off (null) by default, as in the code


@register_regularizer("dsgan")
class DiversitySensitive(PairRegularizer):
    Options = DSGANOptions

    def pair_loss(self, fake1, fake2, z1, z2) -> torch.Tensor:
        loss = dsgan_loss(fake1, fake2, z1, z2, self.options.tau)
        report("Diag/dsgan/ratio", -loss.detach())
        return loss
