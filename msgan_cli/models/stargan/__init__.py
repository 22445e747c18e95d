"""`model=stargan`: StarGAN (Choi et al., CVPR 2018) as yunjey/stargan trains it on CelebA (`solver.py`;
docs/methods.md#stargan): one generator translates an image into any target combination of attributes, one
discriminator tells real from fake patches and classifies the attributes of real images.

The data's images carry attribute vectors (`data/attributes.py`). Each step, as the reference, the
target attributes are the batch's own attribute vectors in a random order (`randperm`), so every
target is a combination that occurs in the data; the condition is {"image", "target", "source"} (the
source attributes for the reconstruction). With `model.nz` > 0 a latent z is tiled beside the
target (docs/methods.md#stargan: the setting in which the diversity regularisers apply): `reg=ms`, `dpm`,
`dsgan` then act on two outputs for the same (image, target). `model.nz=0` is StarGAN as published.

Phases, as the reference's train loop:
- "D", every step: the adversarial terms on the real images and on the step's fakes (WGAN-GP, the
  reference's, by default: -D(x) + D(G(x, c')) + 10 x gradient penalty on interpolates), and the
  attribute classification of the real images, BCE with logits summed over the attributes and
  averaged over the batch, x `model.lambda_cls` (1).
- "G", every `model.n_critic`-th step (5): the adversarial term of the fakes, their classification
  as the target attributes (x lambda_cls), and the reconstruction L1 |G(G(x, c', z), c, z') - x|
  (mean over pixels, x `model.lambda_rec`, 10). The reference has no latent, so z' is a choice,
  `model.rec_latent`: `fresh` (the default), a new draw, so that the way back cannot depend on the
  way there's z; or `same`, z' = z, which lets G change what the input fixes (the digit's shape on
  the benchmark) with z and undo it with the same z: with reg=ms it did (measured: docs/models/stargan.md#results).
The G phase trains on the same fakes as the step's D phase (made before D's update), which is the
reference's fresh forward pass of an unchanged G. With a mode-seeking pair (`trainer.pair_batch=
doubled`) each (image, target) appears twice among the fakes and the adversarial terms count both
(`generated_batch_terms`), the gradient penalty with them (one penalty per half, as
`models/adversarial.py` and DRIT count it). Adam (0.5, 0.999); the reference's learning rate is 1e-4 for both, the
benchmark's default 5e-4 (conf/model/stargan.yaml says why).

Learning rate: the paper decays it linearly to 0 over the second half of training (`lr_decay_from:
0.5`); the reference code's decay step (lr / num_iters_decay every 1,000 steps) leaves it at 99.9 %
of its start, effectively constant: `model.lr_decay_from=null` is the code's.

Evaluation views: StarGAN's test edits (`Attributes.edits`), each attribute set to each value in
turn; views are named by the edit (`fid/to_fill0/...`, `fid/to_not_Male/...`, metric_names.py).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from msgan_cli.core.context import StepContext
from msgan_cli.core.phase import Phase
from msgan_cli.core.registry import register_model
from msgan_cli.data import Data
from msgan_cli.data.attributes import Attributes, edited_view
from msgan_cli.errors import UserError
from msgan_cli.models.base import Direction, Recipe, adam
from msgan_cli.models.stargan.networks import Discriminator, Generator, layers_for


def attribute_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The reference's `classification_loss` on CelebA: BCE with logits summed over attributes and
    batch, divided by the batch size."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="sum") / len(logits)


@register_model("stargan")
class StarGAN(Recipe):
    condition_kind = "domain"
    generated_batch_terms = {"D": ("adv", "penalty"), "G": ("adv",)}
    views_side_by_side = True   # StarGAN's figure: a row per input, a column (block) per target domain

    def __init__(self, cfg, data: Data):
        super().__init__(cfg, data)
        attributes = data.extras.get("attributes")
        if not isinstance(attributes, Attributes):
            raise UserError(f"model=stargan translates images between attribute domains, but dataset '{data.name}' has "
                            f"no attributes: use dataset=shape_domains (the benchmark, its default) or dataset=celeba "
                            f"dataset.root=<img_align_celeba/ and list_attr_celeba.txt>.")
        if data.test is None or not len(data.test):
            raise UserError(f"model=stargan is evaluated on held-out images, but dataset '{data.name}' has no test split.")
        channels, height, width = data.shape
        if height != width or height < 16 or height & (height - 1):
            raise UserError(f"model=stargan needs square images of a power-of-two size >= 16 (G halves them twice, D "
                            f"log2(size) - 1 times); dataset '{data.name}' gives {height}x{width}: set dataset.resolution.")
        if cfg.nz < 0:
            raise UserError(f"model.nz must be >= 0 (0: StarGAN as published, without a latent); got {cfg.nz}.")
        if cfg.rec_latent not in ("fresh", "same"):
            raise UserError(f"model.rec_latent (the latent of the reconstruction's way back) must be fresh or same; "
                            f"got {cfg.rec_latent}.")
        if cfg.n_critic < 1:
            raise UserError(f"model.n_critic (D steps per G step, the reference's 5) must be at least 1; got {cfg.n_critic}.")
        self.attributes = attributes
        self.evaluation_directions(data)   # an edit whose view has no real images is said now, not after training
        self.latent_dim = int(cfg.nz)
        num_attributes = len(attributes.names)
        self.generator = Generator(channels, num_attributes, self.latent_dim, int(cfg.width_g), int(cfg.residual_blocks))
        self.discriminator = Discriminator(channels, num_attributes, int(cfg.width_d), height, layers_for(height))

    # --- what the engine asks ------------------------------------------------------------------------
    def source_attributes(self, batch) -> torch.Tensor:
        return self.attributes.of(batch.labels)

    def condition(self, batch):
        """Training: the batch's images, target attributes drawn as the reference (the batch's own,
        permuted), and their source attributes."""
        source = self.source_attributes(batch)
        order = torch.randperm(len(source)).to(source.device)
        return {"image": batch.samples, "target": source[order], "source": source}

    def condition_image(self, condition):
        return condition["image"]

    def evaluation_directions(self, data: Data, options=None) -> tuple[Direction, ...]:
        """One view per test edit: every test image translated with that edit (module docstring)."""
        condition = lambda batch: {"image": batch.samples, "target": batch.inputs["target"]}  # noqa: E731
        return tuple(Direction(f"to_{edit.name}", "image", edited_view(data, edit), condition)
                     for edit in self.attributes.edits())

    def phases(self) -> list[Phase]:
        return [Phase("D", "discriminator", ("discriminator",)),
                Phase("G", "generator", ("generator",), every=int(self.cfg.n_critic))]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optim = self.cfg.optim
        make = lambda network, lr: adam(network.parameters(), lr, optim.betas)  # noqa: E731
        return {"generator": make(self.generator, optim.lr_g), "discriminator": make(self.discriminator, optim.lr_d)}

    def generate(self, z: torch.Tensor, condition) -> torch.Tensor:
        return self.generator(condition["image"], condition["target"], z)

    def discriminate(self, x: torch.Tensor, condition=None, discriminator=None) -> torch.Tensor:
        """D's patch logits (the attribute head is the recipe's own business); D sees no condition."""
        return (discriminator or self.discriminator)(x)[0]

    def phase_losses(self, phase: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"D": self.discriminator_terms, "G": self.generator_terms}[phase](ctx)

    # --- the terms of each phase -----------------------------------------------------------------------
    def discriminator_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        fake, loss = ctx.generated(), self.gan_loss
        real_src, real_cls = self.discriminator(ctx.discriminator_real)
        fake_src, _ = fake.judge(lambda x, condition: self.discriminator(x), detach=True)
        terms = {"adv": loss.as_real(real_src) + loss.as_fake(fake_src),
                 "cls": self.cfg.lambda_cls * attribute_loss(real_cls, ctx.condition["source"])}
        rows = ctx.aligned_rows   # the first rows of the real batch and of the fakes share their images
        penalty = loss.penalty(self.discriminate, ctx.discriminator_real[:rows], fake.images[:rows])
        if penalty is not None:
            terms["penalty"] = penalty
        return terms

    def generator_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        fake, cfg = ctx.generated(), self.cfg
        condition = fake.condition
        src, cls = fake.judge(lambda x, condition: self.discriminator(x))
        back_z = fake.z if cfg.rec_latent == "same" else self.sample_latent(len(fake.z), fake.z.device)
        reconstruction = self.generator(fake.images, condition["source"], back_z)
        return {"adv": self.gan_loss.generator(src),
                "cls": cfg.lambda_cls * attribute_loss(cls, condition["target"]),
                "rec": cfg.lambda_rec * (reconstruction.float() - condition["image"].float()).abs().mean()}
