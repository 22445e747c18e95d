"""`reg=mdgan`: the mode-regularised GAN and MDGAN (Che, Li, Jacob, Bengio, Li; ICLR 2017,
arXiv 1612.02136). docs/methods.md#mdgan.

An encoder E maps data to the latent space, and G must reconstruct the data from it, so every real
mode has latents that reach it.
- Regularised GAN (default): G and E minimise `lambda1 * d(x, G(E(x))) - lambda2 * log D(G(E(x)))`
  (the geometric and the mode regulariser), G on top of its adversarial loss; D is unchanged.
- MDGAN (`two_step: true`): the manifold step trains a second discriminator D1 to tell x from
  G(E(x)) while G and E minimise `lambda1 * d(x, G(E(x))) - lambda2 * log D1(G(E(x)))` (the paper's
  form has lambda1 = 1 and lambda2 = its lambda); the diffusion step teaches the model's own D that
  the reconstructions G(E(x)) are the real side, against G(z).
The paper's text could not be checked: signs and defaults follow two public re-implementations
(non-saturating `-log D`; lambda1 = 0.2, lambda2 = 0.4), and d is the squared L2 distance averaged
over elements (their reduce_mean). E has D's architecture with a latent-sized output.
Cost: one more G forward and backward on the real batch, E's forward and backward, one D forward
(two_step: D1's forward and backward as well).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from msgan_cli.core.phase import Phase
from msgan_cli.core.registry import register_regularizer
from msgan_cli.core.stats import report
from msgan_cli.models.gan_loss import GANLoss
from msgan_cli.regularizers.base import Regularizer, WeightedOptions

MANIFOLD_PHASE = "D_manifold"


def mode_regularizers(real: torch.Tensor, reconstruction: torch.Tensor, logits: torch.Tensor,
                      generator_loss: Callable[[torch.Tensor], torch.Tensor] = GANLoss("bce").generator,
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """MDGAN's two regularisers, unweighted: `(d(x, G(E(x))), -log D(G(E(x))))`.

    1. Geometric regulariser: d = squared L2 between data and reconstruction, mean over elements.
    2. Mode regulariser: the non-saturating `-log D` of the reconstruction; `-log sigmoid(l) = softplus(-l)`
       on D's logits l. With another loss flavour (`model.gan_loss`), G's adversarial objective of that
       flavour on the reconstruction takes its place (`generator_loss`).
    """
    geometric = (real.float() - reconstruction.float()).pow(2).mean()
    return geometric, generator_loss(logits)


@dataclass
class MDGANOptions(WeightedOptions):
    lambda_geometric: float = 0.2   # lambda1, on d(x, G(E(x)))
    lambda_mode: float = 0.4        # lambda2, on -log D(G(E(x)))
    two_step: bool = False          # MDGAN's manifold + diffusion steps with two discriminators


@register_regularizer("mdgan")
class ModeRegularization(Regularizer):
    phase = "G"
    needs_latent = True
    variants = {"two_step": ("reg.mdgan.two_step=true",)}   # MDGAN's manifold and diffusion steps
    Options = MDGANOptions

    @property
    def needs_capabilities(self) -> dict[str, str]:
        needs = {"build_encoder": "an encoder slot (data to latent)", "discriminate": "a discriminator"}
        if self.options.two_step:
            needs |= {"build_discriminator": "a second discriminator of the model's architecture (two_step)",
                      "discriminator_loss": "the model's discriminator objective (two_step)"}
        return needs

    def setup(self, recipe) -> None:
        device = next(recipe.parameters()).device
        recipe.add_module("encoder", recipe.build_encoder().to(device))
        if self.options.two_step:
            recipe.add_module("manifold_discriminator", recipe.build_discriminator().to(device))

    def configure_optimizers(self, recipe, optimizers) -> None:
        # E minimises the same terms as G: it joins G's optimiser (G's learning rate and betas).
        optimizers["generator"].add_param_group({"params": list(recipe.encoder.parameters())})
        if self.options.two_step:   # D1 with the settings of the model's D
            model_d = optimizers["discriminator"]
            optimizers["manifold_discriminator"] = type(model_d)(
                recipe.manifold_discriminator.parameters(), **model_d.defaults)

    def phases(self, phases: list[Phase]) -> list[Phase]:
        with_encoder = [Phase(p.name, p.optimizer, p.networks + ("encoder",), p.added_by) if p.name == self.phase else p
                        for p in phases]
        if not self.options.two_step:
            return with_encoder
        manifold = Phase(MANIFOLD_PHASE, "manifold_discriminator", ("manifold_discriminator",), added_by=self.name)
        return [manifold] + with_encoder

    def begin_step(self, ctx) -> None:
        """G(E(x)) once per step: D1 and D see it detached, G and E with gradients."""
        if self.options.weight == 0 and not self.options.two_step:
            return
        reconstruction = ctx.recipe.generate(ctx.recipe.encoder(ctx.real), ctx.condition)
        ctx.cache["mdgan/reconstruction"] = reconstruction
        if self.options.two_step:   # diffusion step: G(E(x)) is what D calls real
            ctx.real_for_discriminator = reconstruction.detach()

    def terms(self, phase, ctx) -> dict[str, torch.Tensor]:
        recipe = ctx.recipe
        manifold_d = recipe.manifold_discriminator if self.options.two_step else None
        if phase == MANIFOLD_PHASE:   # D1: x is real, G(E(x)) is fake
            return {"mdgan/manifold_adv": recipe.discriminator_loss(
                ctx.real, ctx.condition, ctx.cache["mdgan/reconstruction"].detach(), ctx.condition, manifold_d)}
        if phase != self.phase or self.options.weight == 0:
            return {}
        reconstruction = ctx.cache["mdgan/reconstruction"]
        logits = recipe.discriminate(reconstruction, ctx.condition, manifold_d)
        geometric, mode = mode_regularizers(ctx.real, reconstruction, logits, recipe.gan_loss.generator)
        report("Diag/mdgan/reconstruction", geometric.detach())
        return {"mdgan/geometric": self.options.weight * self.options.lambda_geometric * geometric,
                "mdgan/mode": self.options.weight * self.options.lambda_mode * mode}
