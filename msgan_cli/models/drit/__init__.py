"""`model=drit`: DRIT as MSGAN's DRIT-Mode-Seeking trains it (HsinYingLee/DRIT `src/model.py`,
identical in HelenMao/MSGAN with mode seeking on; docs/methods.md#drit): unpaired translation between
domains A and B through a content code shared by both and an attribute code of each domain.

A batch holds images of A (the data's inputs) and of B (its samples), unpaired; the condition is both.
`generate(z, condition)` translates each A image into B and each B image into A with the random
attribute z (the same z both ways, as the reference's z_random): outputs "AtoB" and "BtoA", both
primary, so `reg=ms` acts in both directions and sums the two terms, as the reference does.

Phases per step, as the reference's train loop with `d_iter` (3): the content discriminator every
step; every `d_iter`-th step also
- "D": disA / disB on real images against fakes made with *encoded* attributes (A's attribute on B's
  content, and the mirror), disA2 / disB2 against fakes made with *random* attributes (every latent
  of the step: both of a mode-seeking pair);
- "EG" (both encoders and both generators): content adversarial (the content D's output pushed to
  0.5), GAN on the encoded-attribute fakes, KL of the attributes x 0.01 (concat variant; else an L2
  penalty), L2 of the contents x 0.01, cross-cycle reconstruction (translate, encode the
  translations, translate back) and self reconstruction, L1 x 10 each;
- "G" (content encoder and generators, not the attribute encoders: the reference's
  `backward_G_alone`): GAN on the random-attribute fakes, recomputed after EG's update
  (`Phase.fresh_outputs`; the reference backpropagates through the outputs of the G before its own
  update, which PyTorch >= 1.5 refuses, DRIT issue #62), latent regression |E_a(G(c, z)) - z| x 10
  (through E_a, whose weights this phase leaves alone), and the regularisers' terms (mode seeking).
Adversarial losses use `model.gan_loss` (bce, the reference's); the content D's is always BCE (its
target of 0.5 for the encoders is a BCE construct). Adam (0.5, 0.999), weight decay 1e-4, the content
D at lr / 2.5 with its gradients clipped to norm 5; lr is the reference's 1e-4 x 10 and the batch 8 by
default, for the CPU budget (conf/model/drit.yaml says why). The content codes get N(0, 1) noise in
training (`model.content_noise`), their L2 weight is `model.lambda_content`, the attributes' KL
`model.lambda_kl` (both 0.01, the reference's).

Unlike the reference, every row of the batch drives every term (it encodes sample 0 of a batch of 2
and uses sample 1 only as disA2's real image): a batch of n here is n translations per step.

Also unlike the reference, by construction: a full update encodes the real images' content twice, in
`generate` (the step's shared G call, for the random-attribute pair) and in `contents` (the encoded
path, the content D, the content losses), where the reference's `forward()` encodes once for all of
them. One more content-encoder pass per full update; with `content_noise` > 0 the pair's code has its
own noise draw (each term's expectation unchanged); with 0 the two codes are the same
(docs/parity.md#differences).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from msgan_cli.core.batch import repeat_rows
from msgan_cli.core.context import Generated, StepContext
from msgan_cli.core.phase import Phase
from msgan_cli.core.registry import register_model
from msgan_cli.data import Data
from msgan_cli.errors import UserError
from msgan_cli.models.base import Direction, Recipe, adam
from msgan_cli.models.drit.networks import (
    AttributeEncoder,
    ContentDiscriminator,
    ContentEncoder,
    Generators,
    MultiScaleDiscriminator,
    init_gaussian,
)

IMAGE_DISCRIMINATORS = ("discriminator_a", "discriminator_b", "discriminator_a2", "discriminator_b2")


def attribute(mu: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor:
    """The concat variant's attribute sampled with the reparametrisation trick; the plain one's as is."""
    return mu if logvar is None else mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


@register_model("drit")
class DRIT(Recipe):
    condition_kind = "two_domains"
    generated_batch_terms = {"D": ("adv_random",), "G": ("adv_random",)}   # the random-attribute outputs
    output_names = ("AtoB", "BtoA")
    primary_outputs = ("AtoB", "BtoA")
    discriminator_names = (*IMAGE_DISCRIMINATORS, "content_discriminator")
    averaged_networks = ("content_encoder", "attribute_encoder_a", "attribute_encoder_b", "generators")   # trainer.ema
    encodes_each_condition_once = True

    def __init__(self, cfg, data: Data):
        super().__init__(cfg, data)
        if data.inputs != "image":
            raise UserError(f"model=drit translates between two image domains, but dataset '{data.name}' has one: use "
                            f"dataset=outline_fill_unpaired (the benchmark, its default) or dataset=unpaired_folder "
                            f"dataset.root=<trainA/ trainB/ testA/ testB/>.")
        if cfg.concat not in (True, False):
            raise UserError(f"model.concat must be true (DRIT's default: z concatenated at every stage, attribute "
                            f"with a KL) or false (the MLP-modulated G, cat2dog's setting); got {cfg.concat!r}.")
        if cfg.nz < 1:
            raise UserError(f"model.nz (the attribute size) must be at least 1: DRIT translates through a random "
                            f"attribute; got {cfg.nz}.")
        if not cfg.content_noise >= 0:
            raise UserError(f"model.content_noise (the std of the noise added to content codes in training; the "
                            f"reference's 1) must be 0 or more; got {cfg.content_noise}.")
        if cfg.d_iter < 1:
            raise UserError(f"model.d_iter must be at least 1 (the reference's 3); got {cfg.d_iter}.")
        channels_b, height, width = data.shape
        channels_a = data.input_shape[0]
        if height != width or height % 4 or height < 16:
            raise UserError(f"model=drit needs square images whose size is a multiple of 4, at least 16 (content "
                            f"maps are a quarter of it); dataset '{data.name}' gives {height}x{width}: set dataset.resolution.")
        self.latent_dim, self.concat = int(cfg.nz), bool(cfg.concat)
        w = int(cfg.width)
        self.content_encoder = ContentEncoder(channels_a, channels_b, w, float(cfg.content_noise))
        self.attribute_encoder_a = AttributeEncoder(channels_a, w, self.latent_dim, self.concat)
        self.attribute_encoder_b = AttributeEncoder(channels_b, w, self.latent_dim, self.concat)
        self.generators = Generators(w, self.latent_dim, channels_a, channels_b, self.concat)
        scales, layers = int(cfg.discriminator.scales), int(cfg.discriminator.layers)
        for name in IMAGE_DISCRIMINATORS:
            channels = channels_a if name.startswith("discriminator_a") else channels_b
            setattr(self, name, MultiScaleDiscriminator(channels, w, height, scales, layers))
        self.content_discriminator = ContentDiscriminator(w, height // 4)
        for network in self.networks().values():
            init_gaussian(network)

    # --- what the engine asks ------------------------------------------------------------------------
    def condition(self, batch):
        return {"A": batch.inputs, "B": batch.samples}

    def condition_image(self, condition):
        """What sample grids show as the input: A's image (A -> B is the primary direction), B's in a
        B -> A grid, whose condition holds B alone."""
        return condition["A"] if "A" in condition else condition["B"]

    def evaluation_directions(self, data: Data, options=None) -> tuple[Direction, ...]:
        """A -> B on the data as it is, B -> A on its reverse (B's images as the inputs, A's as the
        targets); each direction's condition holds its source domain only, so only its output is made."""
        return (Direction("AtoB", "AtoB", data, lambda batch: {"A": batch.inputs}),
                Direction("BtoA", "BtoA", data.reversed(), lambda batch: {"B": batch.inputs}))

    def phases(self) -> list[Phase]:
        every = int(self.cfg.d_iter)
        encoders_and_generators = ("content_encoder", "attribute_encoder_a", "attribute_encoder_b", "generators")
        return [Phase("D_content", "content_discriminator", ("content_discriminator",), clip_grad_norm=5.0),
                Phase("D", "discriminator", IMAGE_DISCRIMINATORS, every=every),
                Phase("EG", "generator", encoders_and_generators, every=every),
                Phase("G", "generator", ("content_encoder", "generators"), every=every, fresh_outputs=True)]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optim = self.cfg.optim
        make = lambda modules, lr: adam(  # noqa: E731
            [p for m in modules for p in m.parameters()], lr, optim.betas, optim.weight_decay)
        return {"content_discriminator": make([self.content_discriminator], optim.lr_content),
                "discriminator": make([getattr(self, name) for name in IMAGE_DISCRIMINATORS], optim.lr_d),
                "generator": make([self.content_encoder, self.attribute_encoder_a, self.attribute_encoder_b,
                                   self.generators], optim.lr_g)}

    def generate(self, z: torch.Tensor, condition, groups: int = 1) -> dict[str, torch.Tensor]:
        """The translations of the domains `condition` holds (both in training; one in a direction's
        evaluation): A's images into B ("AtoB"), B's into A ("BtoA"), with the random attribute z. With
        `groups` (the condition's rows that many copies of the same conditions), each condition's content is
        encoded once: the content encoder adds noise in training, and the reference renders both outputs of
        a mode-seeking pair (random and random2) from one content code."""
        outputs = {}
        for source, target in (("A", "B"), ("B", "A")):
            if source in condition:
                images = condition[source]
                content = self.content_encoder.encode(images[:len(images) // groups], source)
                outputs[f"{source}to{target}"] = self.generators.generate(repeat_rows(content, groups), z, target)
        return outputs

    def generate_with_reference(self, condition, reference: torch.Tensor, output: str) -> torch.Tensor:
        """DRIT's attribute transfer: the source's content with the attribute encoded from a real image
        of the target domain (its mean: the reference samples around it, a grid wants it fixed)."""
        source, target = output.split("to")
        encode_attribute = self.attribute_encoder_b if target == "B" else self.attribute_encoder_a
        content = self.content_encoder.encode(condition[source], source)
        return self.generators.generate(content, encode_attribute(reference)[0], target)

    def output_features(self, output: str, images: torch.Tensor, condition) -> torch.Tensor:
        """The attribute code's mean of translations into the target domain, by that domain's attribute
        encoder (what DivCo-DRIT compares, its `concat=1` setting); its image discriminators judge one
        domain each and take no conditions, so no `discriminate` stands for them."""
        encoder = self.attribute_encoder_b if output.endswith("B") else self.attribute_encoder_a
        return encoder(images)[0]

    def phase_losses(self, phase: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"D_content": self.content_discriminator_terms, "D": self.discriminator_terms,
                "EG": self.encoder_generator_terms, "G": self.random_attribute_terms}[phase](ctx)

    # --- the terms of each phase -----------------------------------------------------------------------
    def encoded(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The encoded-attribute path of the step (the reference's `forward`), computed once: contents,
        attributes, the cross translations, the self reconstructions and the cross-cycle ones."""
        if "drit_encoded" not in ctx.cache:
            a, b = ctx.condition["A"], ctx.condition["B"]
            c_a, c_b = self.contents(ctx)
            (mu_a, logvar_a), (mu_b, logvar_b) = self.attribute_encoder_a(a), self.attribute_encoder_b(b)
            z_a, z_b = attribute(mu_a, logvar_a), attribute(mu_b, logvar_b)
            fake_a, fake_b = self.generators.generate(c_b, z_a, "A"), self.generators.generate(c_a, z_b, "B")
            # Translate back: the content of the fake A is B's, of the fake B A's; the attributes are
            # encoded again from the fakes (each in its own domain).
            c_back_b, c_back_a = self.content_encoder.encode(fake_a, "A"), self.content_encoder.encode(fake_b, "B")
            z_back_a, z_back_b = attribute(*self.attribute_encoder_a(fake_a)), attribute(*self.attribute_encoder_b(fake_b))
            ctx.cache["drit_encoded"] = dict(
                c_a=c_a, c_b=c_b, mu_a=mu_a, logvar_a=logvar_a, mu_b=mu_b, logvar_b=logvar_b, fake_a=fake_a, fake_b=fake_b,
                self_a=self.generators.generate(c_a, z_a, "A"), self_b=self.generators.generate(c_b, z_b, "B"),
                cycle_a=self.generators.generate(c_back_a, z_back_a, "A"),
                cycle_b=self.generators.generate(c_back_b, z_back_b, "B"))
        return ctx.cache["drit_encoded"]

    def judged(self, name: str, generated: Generated, output: str, detach: bool = False):
        """D `name`'s logits on the generated batch's `output`, one call per latent group, as the reference
        calls it for random and random2."""
        discriminator = getattr(self, name)
        return generated.judge(lambda x, condition: discriminator(x), output, detach)

    def adversarial_d(self, name: str, real: torch.Tensor, fake: torch.Tensor | Generated,
                      output: str | None = None) -> torch.Tensor:
        """D `name`'s objective on real images against fakes: a tensor (the encoded path), or the step's
        generated batch's `output` (`judged`)."""
        discriminator = getattr(self, name)
        fake_logits = self.judged(name, fake, output, detach=True) if output else discriminator(fake)
        fake_images = fake.outputs[output].detach() if output else fake
        loss = self.gan_loss.discriminator(discriminator(real), fake_logits)
        rows = min(len(real), len(fake_images))
        penalty = self.gan_loss.penalty(discriminator, real[:rows], fake_images[:rows])
        return loss if penalty is None else loss + penalty

    def contents(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's content codes of A and B, computed once: with their graph in a step whose encoders
        train (the full update, which reuses them), without one in a step that trains the content D only."""
        if "drit_contents" not in ctx.cache:
            full_update = self.phases()[-1].due(ctx.step)
            with torch.enable_grad() if full_update else torch.no_grad():
                ctx.cache["drit_contents"] = (self.content_encoder.encode(ctx.condition["A"], "A"),
                                              self.content_encoder.encode(ctx.condition["B"], "B"))
        return ctx.cache["drit_contents"]

    def content_discriminator_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The content D tells A's contents (label 0) from B's (label 1)."""
        c_a, c_b = (c.detach() for c in self.contents(ctx))
        return {"adv": bce(self.content_discriminator(c_a), 0.0) + bce(self.content_discriminator(c_b), 1.0)}

    def discriminator_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        encoded, random = self.encoded(ctx), ctx.generated()
        real_a, real_b = ctx.condition["A"], ctx.condition["B"]
        return {"adv_encoded": self.adversarial_d("discriminator_a", real_a, encoded["fake_a"].detach())
                + self.adversarial_d("discriminator_b", real_b, encoded["fake_b"].detach()),
                "adv_random": self.adversarial_d("discriminator_a2", real_a, random, "BtoA")
                + self.adversarial_d("discriminator_b2", real_b, random, "AtoB")}

    def encoder_generator_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        e, cfg = self.encoded(ctx), self.cfg
        a, b = ctx.condition["A"], ctx.condition["B"]
        if self.concat:   # KL(N(mu, var) || N(0, I)), summed over the attribute, averaged over the batch
            kl = sum((-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
                     for mu, logvar in ((e["mu_a"], e["logvar_a"]), (e["mu_b"], e["logvar_b"])))
        else:
            kl = e["mu_a"].pow(2).mean() + e["mu_b"].pow(2).mean()
        l1 = lambda x, y: (x.float() - y.float()).abs().mean()  # noqa: E731
        return {"adv_content": bce(self.content_discriminator(e["c_a"]), 0.5) + bce(self.content_discriminator(e["c_b"]), 0.5),
                "adv_encoded": self.gan_loss.generator(self.discriminator_a(e["fake_a"]))
                + self.gan_loss.generator(self.discriminator_b(e["fake_b"])),
                "kl": cfg.lambda_kl * kl,
                "content_l2": cfg.lambda_content * (e["c_a"].pow(2).mean() + e["c_b"].pow(2).mean()),
                "cross_cycle": cfg.lambda_rec * (l1(e["cycle_a"], a) + l1(e["cycle_b"], b)),
                "self_rec": cfg.lambda_rec * (l1(e["self_a"], a) + l1(e["self_b"], b))}

    def random_attribute_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        random = ctx.generated()
        to_a, z = random.group(0, "BtoA")
        to_b, _ = random.group(0, "AtoB")
        regressed_a = self.frozen(self.attribute_encoder_a, to_a)[0]   # the mean, as the reference
        regressed_b = self.frozen(self.attribute_encoder_b, to_b)[0]
        return {"adv_random": self.gan_loss.generator(self.judged("discriminator_a2", random, "BtoA"))
                + self.gan_loss.generator(self.judged("discriminator_b2", random, "AtoB")),
                "latent_regression": self.cfg.lambda_latent * ((regressed_a - z).abs().mean() + (regressed_b - z).abs().mean())}

    @staticmethod
    def frozen(network: nn.Module, x: torch.Tensor):
        """`network(x)` with gradients to x but none to the network's weights (the reference's G-alone
        update does not step the attribute encoders)."""
        detached = {name: p.detach() for name, p in network.named_parameters()}
        return functional_call(network, detached, (x,))
