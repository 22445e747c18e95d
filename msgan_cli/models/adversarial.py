"""The recipe shared by single-generator, single-discriminator GANs (DCGAN, the 2D MLP GAN):
a D phase then a G phase, non-saturating BCE, Adam, the one-hot label fed to both networks.
Subclasses build the networks (`build_discriminator`, `build_encoder` and the generator)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits

from msgan_cli.models.base import Phase, Recipe, one_hot

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
        return self.generator(z, one_hot(labels, self.num_classes, z))

    def discriminate(self, x, labels, discriminator=None) -> torch.Tensor:
        return (discriminator or self.discriminator)(x, one_hot(labels, self.num_classes, x))

    def discriminator_loss(self, real, real_labels, fake, fake_labels, discriminator=None) -> torch.Tensor:
        return (bce(self.discriminate(real, real_labels, discriminator), 1.0)
                + bce(self.discriminate(fake, fake_labels, discriminator), 0.0))

    def phase_losses(self, phase: str, ctx: "StepContext") -> dict[str, torch.Tensor]:
        fake = ctx.generated()
        # With pairs (ctx.loss_scale = 2 in the MSGAN code's layout) both halves count in full:
        # D's loss is BCE(real, fake1) + BCE(real, fake2) and G's sums both halves (METHODS.md 1).
        if phase == "D":
            return {"adv": ctx.loss_scale * self.discriminator_loss(
                ctx.discriminator_real, ctx.labels, fake.images.detach(), fake.labels)}
        if phase == "G":
            return {"adv": ctx.loss_scale * bce(self.discriminate(fake.images, fake.labels), 1.0)}
        raise ValueError(f"unknown phase {phase}")
