"""`reg=dpm`: the diversity penalty module (DPM; Pei, Xu, Xiang, Meng, arXiv 2108.02353). docs/methods.md#dpm.

Penalises the generator when two dissimilar latents give images whose discriminator features are
similar, comparing normalised Gram matrices of features and of latents. The paper's exact formula
could not be verified; the default is a public third-party reading of it (docs/methods.md#dpm), labelled
as such, with the feature layer, `s` and the weight as options.
Cost: one extra D forward and backward on the fake batch (to read the chosen layer's features). With
several discriminators the features are those of the one that judges the primary output
(`Recipe.primary_discriminator`: Pix2Pix's first scale, StackGAN++'s last stage); all run forward.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.functional import normalize

from msgan_cli.core.registry import register_regularizer
from msgan_cli.core.stats import report
from msgan_cli.regularizers.base import Regularizer, WeightedOptions, check_discriminator_layer


def normalized_gram(x: torch.Tensor, s: float = 5.0) -> torch.Tensor:
    """`NGM_s(X)[i, j] = sigmoid(s * <x_i, x_j> / (||x_i|| ||x_j||))` over the flattened rows of x."""
    unit = normalize(x.flatten(1).float(), dim=1)
    return torch.sigmoid(s * unit @ unit.T)


def diversity_penalty(features: torch.Tensor, z: torch.Tensor, s: float = 5.0, eps: float = 1e-8) -> torch.Tensor:
    """`DP = (1 / m^2) sum_ij NGM_s(F)[i, j] / (NGM_s(Z)[i, j] + eps)` (the third-party reading).

    1. Pairwise similarity of the m samples' D features, squashed by a sigmoid of slope s.
    2. The same for their latents.
    3. The mean ratio: large when features are similar although the latents are not.
    """
    return (normalized_gram(features, s) / (normalized_gram(z, s) + eps)).mean()


@dataclass
class DPMOptions(WeightedOptions):
    weight: float = 10.0       # lambda_dp of the third-party reading
    s: float = 5.0             # slope of the sigmoid in the normalised Gram matrix
    eps: float = 1.0e-8
    layer: str | None = None   # a D module name (its output); null: the last hidden layer (the head's input)


@register_regularizer("dpm")
class DiversityPenalty(Regularizer):
    phase = "G"
    needs_latent = True
    needs_discriminator_layers = True
    needs_capabilities = {"discriminate": "D's features of G's outputs, with their conditions"}
    Options = DPMOptions

    def check(self, recipe) -> None:
        super().check(recipe)
        check_discriminator_layer(recipe, self.name, self.options.layer)

    def loss(self, ctx) -> torch.Tensor:
        fake = ctx.generated()
        features = ctx.recipe.discriminator_features(fake.images, fake.condition, self.options.layer)
        # A packing D (reg=pacgan) has one feature row per pack of m samples: compare each pack's
        # features with its m latents concatenated.
        z = fake.z.reshape(len(features), -1)
        with torch.no_grad():
            report("Diag/dpm/feature_similarity", normalized_gram(features, self.options.s).mean())
            report("Diag/dpm/latent_similarity", normalized_gram(z, self.options.s).mean())
        return diversity_penalty(features, z, self.options.s, self.options.eps)
