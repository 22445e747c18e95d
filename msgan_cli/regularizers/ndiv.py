"""`reg=ndiv`: Normalized Diversification (Liu, Zhang, Wangni, Shi, CVPR 2019, arXiv 1904.03608; code
B1ueber2y/NDiv). docs/methods.md#ndiv.

For a group of outputs of one condition and their latents: the pairwise distances of the latents and
of the outputs, each row divided by its sum; G is penalised wherever two outputs are less far apart,
relative to the others, than alpha times their latents are. Unlike mode seeking, which compares one
pair, it asks the whole group to keep the latents' relative geometry.

Groups: a conditional model gets `reg.ndiv.samples` outputs per condition from the step's one batched
G call (as mode seeking gets 2: `trainer.pair_batch` says how the batch is laid out); an unconditional
model's whole generated batch is one group, as in the reference's experiments (the 2D mixtures and
CIFAR-10 take the batch of 128 or 64 as the group). Cost: no network pass of its own; the S x S
distances of each group, and with `doubled` S times G's batch (a conditional model).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from msgan_cli.core.registry import register_regularizer
from msgan_cli.core.stats import report
from msgan_cli.regularizers.base import OUTPUT_CHOICES, Regularizer, WeightedOptions, option

NORMALISER_EPS = 1e-12   # the reference's, added to every row sum


def normalized_distances(x: torch.Tensor) -> torch.Tensor:
    """(groups, S, d) -> (groups, S, S): the L2 distance between every two rows of a group, each row of the
    matrix divided by its sum (detached, as the reference's normaliser, which it updates apart from G's step).
    The vector norm's gradient at a zero distance (the diagonal, or two equal outputs) is 0, not NaN."""
    distances = torch.linalg.vector_norm(x[:, :, None] - x[:, None], dim=-1)
    return distances / (distances.sum(-1, keepdim=True).detach() + NORMALISER_EPS)


def ndiv_violations(z: torch.Tensor, x: torch.Tensor, alpha: float = 0.8) -> torch.Tensor:
    """Steps 1-3 of `ndiv_loss`, per pair: ReLU(alpha * N_z - N_x), (groups, S, S); an entry is positive
    where two outputs are less far apart, relative to the others, than alpha times their latents."""
    groups, size = x.shape[:2]
    if size < 2:
        raise ValueError(f"Normalized Diversification needs at least 2 samples per group; got {size}")
    latent = normalized_distances(z.float().reshape(groups, size, -1))
    output = normalized_distances(x.float().reshape(groups, size, -1))
    return torch.relu(alpha * latent - output)


def mean_over_pairs(matrix: torch.Tensor) -> torch.Tensor:
    """The mean of (groups, S, S) entries over the ordered pairs i != j (the diagonal is 0), then over groups."""
    size = matrix.shape[1]
    return (matrix.sum((1, 2)) / (size * (size - 1))).mean()


def ndiv_loss(z: torch.Tensor, x: torch.Tensor, alpha: float = 0.8) -> torch.Tensor:
    """The Normalized Diversification loss of latents z (groups, S, dz) and outputs x (groups, S, ...).

    1. D_z, D_x: the L2 distance between every two samples of a group (outputs flattened).
    2. N_z, N_x: each row divided by its sum (`normalized_distances`).
    3. ReLU(alpha * N_z - N_x), summed over the S x S matrix (its diagonal is 0) and divided by S(S - 1):
       the mean over ordered pairs i != j.
    4. The mean over groups (the reference leaves it to its caller, which averages).
    """
    return mean_over_pairs(ndiv_violations(z, x, alpha))


@dataclass
class NDivOptions(WeightedOptions):
    weight: float = 1.0        # the CIFAR-10 configs' 1 (compare_gan consts.py 'wgangp_penalty||0.4_3_1')
    alpha: float = option(0.8, minimum=0.0)   # ndiv_pytorch.py's default; the 2D configs 0.5, CIFAR-10's 0.4-0.5
    samples: int = option(4, minimum=2)       # S, outputs per condition of a conditional model (no reference value)
    # Which of G's outputs: the model's primary ones (StackGAN++: the last stage) | all (the terms summed).
    outputs: str = option("primary", choices=OUTPUT_CHOICES)


@register_regularizer("ndiv")
class NormalizedDiversification(Regularizer):
    phase = "G"
    needs_latent = True
    Options = NDivOptions

    def __init__(self, options: NDivOptions, recipe):
        super().__init__(options, recipe)
        self.per_condition = recipe.conditional   # else: the whole batch is one group (one shared condition)

    @property
    def samples_per_condition(self) -> int:
        return self.options.samples if self.per_condition else 1

    def loss(self, ctx) -> torch.Tensor:
        generated = ctx.generated()
        names = ctx.recipe.primary_outputs if self.options.outputs == "primary" else ctx.recipe.output_names
        total = 0.0
        for name in names:
            if self.per_condition:   # (conditions, S, ...): the j-th latent group's outputs are sample j of each
                members = [generated.group(j, name) for j in range(generated.groups)]
                x = torch.stack([outputs for outputs, _ in members], dim=1)
                z = torch.stack([latents for _, latents in members], dim=1)
            else:
                x, z = generated.outputs[name][None], generated.z[None]
            violations = ndiv_violations(z, x, self.options.alpha)
            total = total + mean_over_pairs(violations)
            with torch.no_grad():   # the share of pairs the term pushes apart (0: the outputs keep the latents' geometry)
                report(f"Diag/ndiv/violated_pairs_{name}", mean_over_pairs((violations > 0).float()))
        return total
