"""The recipe shared by single-generator, single-discriminator GANs (DCGAN, the 2D MLP GAN):
a D phase then a G phase, non-saturating BCE, Adam. Subclasses only build the two networks."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits

from msgan_cli.models.base import Phase, Recipe

if TYPE_CHECKING:
    from msgan_cli.train.context import StepContext


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """BCE on logits against a constant target (the sigmoid + BCELoss of the papers' code, stabler)."""
    return binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))


class AdversarialRecipe(Recipe):
    generator: nn.Module
    discriminator: nn.Module

    def phases(self) -> list[Phase]:
        return [Phase("D", "discriminator", ("discriminator",)), Phase("G", "generator", ("generator",))]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optim = self.cfg.optim
        make = lambda net, lr: torch.optim.Adam(  # noqa: E731
            net.parameters(), lr=lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
        return {"generator": make(self.generator, optim.lr_g),
                "discriminator": make(self.discriminator, optim.lr_d)}

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator(z, labels)

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.discriminator(x, labels)

    def phase_losses(self, phase: str, ctx: "StepContext") -> dict[str, torch.Tensor]:
        fake = ctx.generated()
        # With pairs (ctx.loss_scale = 2 in the MSGAN code's layout) both halves count in full:
        # D's loss is BCE(real, fake1) + BCE(real, fake2) and G's sums both halves (METHODS.md 1).
        if phase == "D":
            real_term = bce(self.discriminate(ctx.real, ctx.labels), 1.0)
            fake_term = bce(self.discriminate(fake.images.detach(), fake.labels), 0.0)
            return {"adv": ctx.loss_scale * (real_term + fake_term)}
        if phase == "G":
            return {"adv": ctx.loss_scale * bce(self.discriminate(fake.images, fake.labels), 1.0)}
        raise ValueError(f"unknown phase {phase}")
