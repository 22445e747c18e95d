"""The recipe shared by GANs with one generator and one D phase (DCGAN, the 2D MLP GAN, Pix2Pix): a D
phase then a G phase, the loss flavour of `model.gan_loss`, Adam for G and for all discriminators.
Subclasses build the networks; DCGAN and the MLP GAN feed the one-hot class to both networks, Pix2Pix
overrides `generate` / `discriminate` and adds its own terms (`model_terms`)."""
from __future__ import annotations

import torch
from torch import nn

from msgan_cli.core.batch import Tree, in_groups, take
from msgan_cli.core.context import StepContext
from msgan_cli.core.phase import Phase
from msgan_cli.models.base import Recipe, adam, one_hot


class AdversarialRecipe(Recipe):
    generator: nn.Module
    discriminator: nn.Module

    def phases(self) -> list[Phase]:
        return [Phase("D", "discriminator", tuple(self.discriminator_names)), Phase("G", "generator", ("generator",))]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optim = self.cfg.optim
        make = lambda parameters, lr: adam(parameters, lr, optim.betas, optim.weight_decay)  # noqa: E731
        discriminators = [p for name in self.discriminator_names for p in getattr(self, name).parameters()]
        return {"generator": make(self.generator.parameters(), optim.lr_g),
                "discriminator": make(discriminators, optim.lr_d)}

    def generate(self, z: torch.Tensor, condition: Tree) -> torch.Tensor:
        return self.generator(z, one_hot(condition, self.num_classes, z))

    def discriminate(self, x, condition, discriminator=None):
        return (discriminator or self.discriminator)(x, one_hot(condition, self.num_classes, x))

    def discriminator_loss(self, real, real_condition, fake, fake_condition, discriminator=None,
                           aligned_rows=None, groups=1) -> torch.Tensor:
        judge = lambda x, condition: self.discriminate(x, condition, discriminator)  # noqa: E731
        loss = self.gan_loss.discriminator(judge(real, real_condition), in_groups(judge, fake, fake_condition, groups))
        rows = slice(0, aligned_rows or min(len(real), len(fake)))
        penalty = self.gan_loss.penalty(lambda x: self.discriminate(x, take(real_condition, rows), discriminator),
                                        real[rows], fake[rows])
        return loss if penalty is None else loss + penalty

    def model_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The model's own terms of G's objective besides the adversarial one (Pix2Pix's L1). Default: none."""
        return {}

    def phase_losses(self, phase: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        fake = ctx.generated()
        if phase == "D":
            return {"adv": self.discriminator_loss(ctx.discriminator_real, ctx.condition, fake.images.detach(),
                                                   fake.condition, aligned_rows=ctx.aligned_rows, groups=fake.groups)}
        if phase == "G":
            return {"adv": self.gan_loss.generator(fake.judge(self.discriminate)), **self.model_terms(ctx)}
        raise ValueError(f"unknown phase {phase}")
