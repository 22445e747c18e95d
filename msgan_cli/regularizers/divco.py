"""`reg=divco`: DivCo, contrastive diversity (Liu, Ge, Choi, Wang, Li, CVPR 2021, arXiv 2103.07893; code
ruiliu-ai/DivCo). docs/methods.md#divco.

For each condition, the step's output is a query; G also makes a positive, from a latent within
`radius` of the query's, and `negatives` from latents drawn from the prior outside that radius. The
outputs' features enter an InfoNCE loss: the query's features must be more similar to the
positive's than to any negative's, so that nearby latents give similar outputs and distant ones
different outputs. The features are the primary discriminator's last hidden layer (as DivCo's DCGAN
variant reads D), or a model's own (`Recipe.output_features`: DRIT's attribute codes, as DivCo-DRIT).

Cost: one more batched G call of `negatives + 1` outputs per condition, and one D forward of
`negatives + 2` outputs per condition for their features (the reference makes and judges the same
count, 12 per condition by default). The extra outputs enter no adversarial loss, as in the reference,
where D's and G's GAN losses see the queries only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.functional import normalize

from msgan_cli.core.batch import repeat_rows, take
from msgan_cli.core.registry import register_regularizer
from msgan_cli.core.stats import report
from msgan_cli.errors import UserError
from msgan_cli.regularizers.base import Regularizer, WeightedOptions, check_discriminator_layer, option

REDUCTIONS = ("sum", "mean")


def contrastive_latents(query: torch.Tensor, offsets: torch.Tensor, draws: torch.Tensor,
                        radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The positive and the negatives' latents for queries (n, dz), as the reference draws them.

    1. Positive: the query plus `radius` times `offsets` (n, dz), uniform in [-1, 1): a point of the cube
       of half-width radius around the query.
    2. Negatives: `draws` (K, n, dz) from the prior; a coordinate that falls within `radius` of the
       query's is moved out to the cube's face on its side. The reference draws again until no
       coordinate of the whole batch is that near, a loop on a value the device computed (a host sync
       every step); the move keeps each negative outside the cube without one, and touches a coordinate
       with probability about 0.8 * radius (prior N(0, 1)).
    """
    positive = query + radius * offsets
    gap = draws - query
    side = torch.where(gap < 0, -1.0, 1.0)
    negatives = torch.where(gap.abs() < radius, query + radius * side, draws)
    return positive, negatives


def divco_loss(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, tau: float = 1.0,
               normalize_features: bool = False, reduction: str = "sum") -> torch.Tensor:
    """The contrastive loss of features of queries (n, ...), their positives (n, ...) and negatives
    (K, n, ...), one row per condition.

    1. Each feature flattened; with `normalize_features`, scaled to unit length (cosine similarity; the
       reference's `--featnorm`, off by default: a plain dot product).
    2. Logits per condition: [q . p, q . n_1, ..., q . n_K] / tau.
    3. The cross-entropy with the positive as the target, -log softmax(logits)[0] (InfoNCE).
    4. Summed over conditions, as the reference (or averaged: `reduction="mean"`).
    """
    q, p, n = query.float().flatten(1), positive.float().flatten(1), negatives.float().flatten(2)
    if normalize_features:
        q, p, n = normalize(q, dim=-1), normalize(p, dim=-1), normalize(n, dim=-1)
    logits = torch.cat([(q * p).sum(-1, keepdim=True), (q[None] * n).sum(-1).T], dim=1) / tau
    losses = torch.logsumexp(logits, dim=1) - logits[:, 0]
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.mean()
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


@dataclass
class DivCoOptions(WeightedOptions):
    weight: float = 1.0          # lambda_contra: DivCo-DRIT's and the DCGAN variant's 1.0 (BicycleGAN's 0.3)
    tau: float = option(1.0, above=0.0)         # the temperature, 1 in every variant
    negatives: int = option(10, minimum=1)      # K, num_negative in every variant
    radius: float = option(0.01, above=0.0)     # DRIT's and BicycleGAN's 0.01 (nz 8); the DCGAN variant's 0.001 (nz 100)
    normalize: bool = False      # featnorm: off in every variant (a plain dot product)
    reduction: str = option("sum", choices=REDUCTIONS)   # sum over conditions (the reference) | mean
    layer: str | None = None     # a D module whose output gives the features; null: the last hidden layer


@register_regularizer("divco")
class DivCo(Regularizer):
    phase = "G"
    needs_latent = True
    conflicts = {"pacgan": "DivCo compares D's features of single outputs; a packing D has one per pack"}
    Options = DivCoOptions

    def check(self, recipe) -> None:
        super().check(recipe)
        if recipe.offers("output_features"):   # the model's own features (DRIT's attribute codes)
            if self.options.layer is not None:
                raise UserError(f"reg.divco.layer: model {recipe.name} gives DivCo its own features of its outputs, "
                                f"not a discriminator's; leave reg.divco.layer null.")
            return
        if not recipe.offers("discriminate") or not recipe.discriminator_layers():
            raise UserError(f"reg=divco needs features of G's outputs, from a discriminator that takes their "
                            f"conditions, which model {recipe.name} does not offer: pick another model or drop reg=divco.")
        check_discriminator_layer(recipe, self.name, self.options.layer)

    def features(self, recipe, output: str, images: torch.Tensor, condition) -> torch.Tensor:
        if recipe.offers("output_features"):
            return recipe.output_features(output, images, condition)
        return recipe.discriminator_features(images, condition, self.options.layer)

    def loss(self, ctx) -> torch.Tensor:
        recipe, generated, options = ctx.recipe, ctx.generated(), self.options
        n, k = generated.per_group, options.negatives
        z = generated.z[:n]                                    # the queries: the step's first latent group
        condition = take(generated.condition, slice(0, n))
        # Every rank draws the whole global batch's latents from one stream and keeps its rows (as the
        # step's own latents), so N processes draw what one process with the global batch draws.
        rows = slice(ctx.rank * n, (ctx.rank + 1) * n)
        offsets = (2 * torch.rand(ctx.world_size * n, z.shape[1], device=z.device) - 1)[rows]
        draws = recipe.sample_latent(k * n * ctx.world_size, z.device).view(k, ctx.world_size * n, -1)[:, rows]
        positive, negatives = contrastive_latents(z, offsets, draws, options.radius)
        with ctx.autocast:
            extra = recipe.generate_outputs(torch.cat([positive, negatives.reshape(k * n, -1)]),
                                            repeat_rows(condition, k + 1), groups=k + 1)
        total = 0.0
        for name in recipe.primary_outputs:   # DRIT: both directions; a model with one output: that one
            with ctx.autocast:
                images = torch.cat([generated.group(0, name)[0], extra[name]])
                features = self.features(recipe, name, images, repeat_rows(condition, k + 2))
            features = features.reshape(k + 2, n, *features.shape[1:])
            with torch.no_grad():
                flat = normalize(features.float().flatten(2), dim=-1)
                report(f"Diag/divco/positive_cosine_{name}", (flat[0] * flat[1]).sum(-1).mean())
                report(f"Diag/divco/negative_cosine_{name}", (flat[0][None] * flat[2:]).sum(-1).mean())
            total = total + divco_loss(features[0], features[1], features[2:], options.tau, options.normalize,
                                       options.reduction)
        return total
