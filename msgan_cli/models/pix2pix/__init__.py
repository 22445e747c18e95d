"""`model=pix2pix`: Pix2Pix as MSGAN used it (HelenMao/MSGAN Pix2Pix-Mode-Seeking; docs/methods.md#pix2pix):
"BicycleGAN architecture + Pix2Pix training".

G(A, z) is the U-Net with z at every level; D sees the input and an output side by side, (A, B), at
two scales; LSGAN; G's objective adds L1 to the ground truth on the first of the two outputs only
(lambda_L1 = 10), D sees both fakes and counts the real pair twice (the step context's `doubled`
layout with pairs). As in the reference, G is updated before D in each step, D training on the fakes
of the same forward pass. `model.nz=0` is plain Pix2Pix without a latent (reg=ms then refuses).
"""
from __future__ import annotations

import torch

from msgan_cli.core.context import StepContext
from msgan_cli.core.phase import Phase
from msgan_cli.core.registry import register_model
from msgan_cli.data import Data
from msgan_cli.errors import UserError
from msgan_cli.models.adversarial import AdversarialRecipe
from msgan_cli.models.pix2pix.networks import PatchDiscriminator, UNetGenerator, downsample, init_xavier, patch_layers


@register_model("pix2pix")
class Pix2Pix(AdversarialRecipe):
    condition_kind = "image"

    def __init__(self, cfg, data: Data):
        super().__init__(cfg, data)
        if data.inputs != "image":
            raise UserError(f"model=pix2pix translates an input image into an output, but dataset '{data.name}' has no "
                            f"input images: use dataset=outline_fill (the benchmark, its default) or "
                            f"dataset=paired_folder dataset.root=<facades, maps, ...>.")
        if not data.paired:
            raise UserError(f"model=pix2pix learns from aligned pairs (its L1 to the ground truth), but dataset "
                            f"'{data.name}' holds two unpaired domains: use an unpaired model (model=drit), or "
                            f"paired data (dataset=outline_fill, dataset=paired_folder).")
        out_channels, height, width = data.shape
        in_channels = data.input_shape[0]
        if height != width or height < 8 or height & (height - 1):
            raise UserError(f"model=pix2pix needs square images of a power-of-two size >= 8 (the U-Net halves them "
                            f"log2(size) times); dataset '{data.name}' gives {height}x{width}: set dataset.resolution.")
        if cfg.nz < 0:
            raise UserError(f"model.nz must be >= 0 (0: plain Pix2Pix without a latent); got {cfg.nz}.")
        if cfg.discriminator.scales not in (1, 2):
            raise UserError(f"model.discriminator.scales must be 1 or 2 (the reference's num_Ds); "
                            f"got {cfg.discriminator.scales}.")
        self.latent_dim = cfg.nz
        self.generator = UNetGenerator(in_channels, out_channels, cfg.nz, cfg.width, height, bool(cfg.dropout))
        pair_channels = in_channels + out_channels
        layers = int(cfg.discriminator.layers)
        self.discriminator = PatchDiscriminator(pair_channels, cfg.width, patch_layers(height, layers))
        if cfg.discriminator.scales == 2:   # the second scale: half the input size and half the width
            self.discriminator_low = PatchDiscriminator(pair_channels, max(1, round(cfg.width / 2)),
                                                        patch_layers(height // 2, layers))
        self.discriminator_names = ("discriminator", "discriminator_low")[:cfg.discriminator.scales]
        for network in (self.generator, *(getattr(self, name) for name in self.discriminator_names)):
            init_xavier(network)

    def phases(self) -> list[Phase]:
        """G first, then D (the reference's order)."""
        return list(reversed(super().phases()))

    def generate(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.generator(condition, z)

    def discriminate(self, x: torch.Tensor, condition: torch.Tensor, discriminator=None) -> list[torch.Tensor]:
        """Patch logits of every scale for the pairs (input, x), the input first as in the reference;
        `discriminator`: one other network in the first scale's place, on the full-size pairs."""
        pair = torch.cat([condition.to(x.dtype), x], 1)
        if discriminator is not None:
            return [discriminator(pair)]
        logits = [self.discriminator(pair)]
        if len(self.discriminator_names) == 2:
            logits.append(self.discriminator_low(downsample(pair)))
        return logits

    def model_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """L1 to the ground truth on the first output of each input only (the reference's loss_G_L1)."""
        first, _ = ctx.generated().group(0)
        target = ctx.real[:ctx.aligned_rows]
        return {"l1": self.cfg.lambda_l1 * (first.float() - target.float()).abs().mean()}
