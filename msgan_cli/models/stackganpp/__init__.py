"""`model=stackganpp`: StackGAN++ as MSGAN's StackGAN++-Mode-Seeking trains it (hanzhanggit/StackGAN-v2
`code/trainer.py` `condGANTrainer`, `birds_3stages`; docs/methods.md#stackganpp): text-to-image generation in
`model.stages` stages (1 to 3), each doubling the size of the one before.

The condition is a sentence embedding (`{"text": (n, D)}`); conditioning augmentation turns it into
the code c = mu + sigma * eps, with KL(N(mu, sigma^2) || N(0, I)) on G's objective (the mean over the
code's elements, x `model.lambda_kl`). G makes one image per stage ("stage0", "stage1", ...: 64,
128, 256 px in the reference), from one forward pass; the last stage is the primary output, so
`reg=ms` acts on it, its denominator the distance of the latents z alone (not of c), as the MSGAN
code; `reg.ms.outputs=all` sums the term over every stage.

Per step, as the reference: every stage's D, then G.
- "D": each stage's discriminator on the real image (resized to the stage's size, `resize_floats`),
  on a mismatched real image (the batch's "wrong" images: an image of another caption) and on the
  stage's fake, each with the CA mean mu of the caption (detached). Conditional logits: real 1,
  wrong 0, fake 0; unconditional logits (x `model.lambda_uncond`, the reference's 1): real 1, wrong 1
  (it is a real image), fake 0; the sum. Without the unconditional terms (lambda_uncond 0) the
  reference's real + (wrong + fake) / 2.
- "G": per stage, the conditional and unconditional logits of its fake pushed to real (mu with its
  gradient), summed over stages; the KL; and, when `model.lambda_color` > 0, the colour consistency of
  consecutive stages (their pixels' mean and covariance alike: MSE x lambda_color and x 5 lambda_color;
  the lower stage detached, as the reference), 0 for CUB in the reference.
Losses use `model.gan_loss` (bce, the reference's BCE on sigmoid outputs, here on logits). With a
mode-seeking pair (`trainer.pair_batch=doubled`, the code's layout) every condition appears twice
among the fakes: each group of fakes is judged in its own D call, and the fakes' terms and the KL count
once per group (`generated_batch_terms`), the real and wrong terms once, as the reference's
real + wrong + (fake1 + fake2) (tests/test_parity_stackganpp.py compares one step with it).
Adam (0.5, 0.999), 2e-4 for G and D, no weight decay, constant learning rate.

Evaluation views: every stage, its real images resized to the stage's size; in MSGAN's two settings
(`eval.text_code`): conditioned on descriptions (`sampled`: c drawn by CA, as in training; views
`stage0`, `stage1`, ...) and on fixed text codes (`mean`: c = mu; views `stage0_mean`, ...).

As the reference, evaluation and sample grids use an exponential average of G's weights (decay 0.999,
`trainer.ema`, set by `model=stackganpp`; with a warm-up for short runs, train/ema.py).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from msgan_cli.core.context import StepContext
from msgan_cli.core.phase import Phase
from msgan_cli.core.registry import register_model
from msgan_cli.data import Data
from msgan_cli.data.base import resize_floats
from msgan_cli.errors import UserError
from msgan_cli.models.base import Direction, Recipe, adam
from msgan_cli.models.stackganpp.networks import StageDiscriminator, TreeGenerator, init_weights

TEXT_CODES = ("sampled", "mean", "both")


def kl_to_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), averaged over every element (the reference's KL_loss)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()


def colour_moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the mean colour (n, 3) and the colour covariance over its pixels (n, 3, 3)."""
    pixels = images.float().flatten(2)                       # (n, 3, H*W)
    mean = pixels.mean(2)
    centred = pixels - mean[:, :, None]
    return mean, centred @ centred.transpose(1, 2) / pixels.shape[2]


@register_model("stackganpp")
class StackGANpp(Recipe):
    condition_kind = "text"
    # The fakes' terms and the KL (a mean over the fakes' codes) count once per latent group; the real and
    # wrong pairs once, as the reference adds real + wrong + (fake1 + fake2) (tests/test_parity_stackganpp.py).
    generated_batch_terms = {"D": ("fake_*",), "G": ("adv_*", "kl")}

    def __init__(self, cfg, data: Data):
        super().__init__(cfg, data)
        if data.inputs != "text":
            raise UserError(f"model=stackganpp generates images from sentence embeddings, but dataset '{data.name}' has "
                            f"none: use dataset=shape_captions (the benchmark, its default) or dataset=cub "
                            f"dataset.root=<birds/>.")
        if cfg.stages not in (1, 2, 3):
            raise UserError(f"model.stages must be 1, 2 or 3 (StackGAN++'s branches: 64, 128, 256 px in the reference); "
                            f"got {cfg.stages}.")
        base, stages = int(cfg.base_size), int(cfg.stages)
        if base < 8 or base & (base - 1):
            raise UserError(f"model.base_size (the first stage's size) must be a power of two, at least 8; got {base}.")
        _, height, width = data.shape
        self.stage_sizes = tuple(base * 2 ** i for i in range(stages))
        if height != width or height < self.stage_sizes[-1]:
            raise UserError(f"model=stackganpp with model.stages={stages} from model.base_size={base} makes "
                            f"{self.stage_sizes[-1]} px images, but dataset '{data.name}' gives {height}x{width}: set "
                            f"dataset.resolution={self.stage_sizes[-1]} (real images are resized down to each stage, never up).")
        if int(data.input_shape[0]) != int(cfg.embedding_dim):
            raise UserError(f"dataset '{data.name}' has {data.input_shape[0]}-dimensional sentence embeddings, but "
                            f"model.embedding_dim={cfg.embedding_dim}: set model.embedding_dim={data.input_shape[0]}.")
        if cfg.nz < 0:
            raise UserError(f"model.nz must be >= 0 (the reference's 100; 0: CA's noise only); got {cfg.nz}.")
        if int(cfg.width_g) % 2 ** (stages - 1):
            raise UserError(f"model.width_g must be divisible by {2 ** (stages - 1)} (it halves at each of the "
                            f"{stages - 1} later stages); got {cfg.width_g}.")
        self.latent_dim = int(cfg.nz)
        self.output_names = tuple(f"stage{i}" for i in range(stages))
        self.primary_outputs = (self.output_names[-1],)
        self.discriminator_names = tuple(f"discriminator_{i}" for i in range(stages))
        self.generator = TreeGenerator(int(cfg.width_g), self.latent_dim, int(cfg.embedding_dim), int(cfg.ca_dim), stages,
                                       base, int(cfg.residual_blocks))
        for name, size in zip(self.discriminator_names, self.stage_sizes):
            setattr(self, name, StageDiscriminator(int(cfg.width_d), int(cfg.ca_dim), size))
        for network in self.networks().values():
            init_weights(network)

    # --- what the engine asks ------------------------------------------------------------------------
    @property
    def primary_discriminator(self) -> str:
        return self.discriminator_names[-1]   # the last stage's, which judges the primary output

    def condition(self, batch):
        return {"text": batch.inputs["text"]}

    def evaluation_directions(self, data: Data, options=None) -> tuple[Direction, ...]:
        """Every stage (its real images at its size), in the settings `eval.text_code` asks for
        (sampled without options: what training-time sample grids show)."""
        text_code = "sampled" if options is None else options.get("text_code", "sampled")
        if text_code not in TEXT_CODES:
            raise UserError(f"eval.text_code must be sampled (conditioned on descriptions: CA drawn), mean (fixed "
                            f"text codes: CA mean) or both (MSGAN's two settings); got {text_code!r}.")
        settings = ("sampled", "mean") if text_code == "both" else (text_code,)
        views = []
        for setting in settings:
            for output, size in zip(self.output_names, self.stage_sizes):
                name = output if setting == "sampled" else f"{output}_mean"
                views.append(Direction(name, output, data.resized(size), self.text_condition(setting),
                                       setting="descriptions (CA sampled)" if setting == "sampled" else
                                       "fixed text codes (CA mean)"))
        return tuple(views)

    @staticmethod
    def text_condition(setting: str):
        """A view's condition for a batch: its sentences, and for fixed text codes a per-row flag."""
        if setting == "sampled":
            return lambda batch: {"text": batch.inputs["text"]}
        return lambda batch: {"text": batch.inputs["text"], "fixed_code": torch.ones_like(batch.inputs["text"][:, :1])}

    def phases(self) -> list[Phase]:
        return [Phase("D", "discriminator", self.discriminator_names), Phase("G", "generator", ("generator",))]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optim = self.cfg.optim
        discriminators = [p for name in self.discriminator_names for p in getattr(self, name).parameters()]
        make = lambda parameters, lr: adam(parameters, lr, optim.betas)  # noqa: E731
        return {"generator": make(self.generator.parameters(), optim.lr_g),
                "discriminator": make(discriminators, optim.lr_d)}

    def generate(self, z: torch.Tensor, condition) -> dict[str, torch.Tensor]:
        images = self.generator(z, condition["text"], condition.get("fixed_code"))
        return dict(zip(self.output_names, images))

    def discriminate(self, x: torch.Tensor, condition):
        """The logits (conditional, unconditional) of the stage whose size x has, with the CA mean."""
        stage = self.stage_sizes.index(x.shape[-1])
        mu, _ = self.generator.ca.encode(condition["text"])
        return list(getattr(self, self.discriminator_names[stage])(x, mu))

    def phase_losses(self, phase: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        if phase == "D":
            return self.discriminator_terms(ctx)
        if phase == "G":
            return self.generator_terms(ctx)
        raise ValueError(f"unknown phase {phase}")

    # --- the terms of each phase -----------------------------------------------------------------------
    def discriminator_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        fake, loss, uncond = ctx.generated(), self.gan_loss, float(self.cfg.lambda_uncond)
        with torch.no_grad():
            mu_real = self.generator.ca.encode(ctx.condition["text"])[0]
            mu_fake = self.generator.ca.encode(fake.condition["text"])[0]
        terms = {}
        for name, output, size in zip(self.discriminator_names, self.output_names, self.stage_sizes):
            discriminator = getattr(self, name)
            real, wrong = resize_floats(ctx.discriminator_real, size), resize_floats(ctx.batch.inputs["wrong"], size)
            (real_c, real_u), (wrong_c, wrong_u) = discriminator(real, mu_real), discriminator(wrong, mu_real)
            fake_c, fake_u = fake.judge(discriminator, output, detach=True, condition=mu_fake)
            real_term = loss.as_real(real_c) + uncond * loss.as_real(real_u)
            wrong_term = loss.as_fake(wrong_c) + uncond * loss.as_real(wrong_u)
            fake_term = loss.as_fake(fake_c) + uncond * loss.as_fake(fake_u)
            half = 1.0 if uncond > 0 else 0.5   # the reference's real + (wrong + fake) / 2 without the uncond terms
            terms |= {f"real_{output}": real_term, f"wrong_{output}": half * wrong_term, f"fake_{output}": half * fake_term}
            rows = ctx.aligned_rows
            penalty = loss.penalty(lambda x: discriminator(x, mu_real[:rows]), real[:rows], fake.outputs[output][:rows])
            if penalty is not None:
                terms[f"penalty_{output}"] = penalty
        return terms

    def generator_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        fake, cfg, uncond = ctx.generated(), self.cfg, float(self.cfg.lambda_uncond)
        mu, logvar = self.generator.ca.encode(fake.condition["text"])
        terms = {}
        for name, output in zip(self.discriminator_names, self.output_names):
            conditional, unconditional = fake.judge(getattr(self, name), output, condition=mu)
            terms[f"adv_{output}"] = self.gan_loss.generator(conditional) + uncond * self.gan_loss.generator(unconditional)
        terms["kl"] = cfg.lambda_kl * kl_to_prior(mu, logvar)
        if cfg.lambda_color > 0:
            for lower, higher in zip(self.output_names, self.output_names[1:]):
                # The lower stage is the target, without its gradient (the reference detaches it).
                mean_low, cov_low = colour_moments(fake.outputs[lower].detach())
                mean_high, cov_high = colour_moments(fake.outputs[higher])
                terms[f"colour_{higher}"] = cfg.lambda_color * (F.mse_loss(mean_high, mean_low)
                                                                + 5 * F.mse_loss(cov_high, cov_low))
        return terms
