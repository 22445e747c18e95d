"""`reg=pacgan`: packing (PacGAN; Lin, Khetan, Fanti, Oh, NeurIPS 2018). docs/methods.md#pacgan.

D judges `m` samples at once, all real or all fake, concatenated along the channel (feature) axis:
a collapsed generator is easy to spot when D sees several of its outputs side by side. As in the
paper, D keeps its architecture except the first layer, which takes m times the input (and, for a
conditional model, the m samples' conditions). Adds no loss term.
Cost: almost none; D's first layer is m times wider and D sees 1/m as many inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from msgan_cli.core.registry import register_regularizer
from msgan_cli.regularizers.base import Regularizer, RegularizerOptions, option


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """(n, c, ...) -> (n / m, m * c, ...): consecutive groups of m samples become one D input."""
    if len(x) % m:
        raise ValueError(f"a batch of {len(x)} cannot be packed by {m}")
    return x.reshape(len(x) // m, m * x.shape[1], *x.shape[2:])


class PackedDiscriminator(nn.Module):
    """Wraps a discriminator built for `m`-fold inputs: packs samples (and conditions), one logit per pack."""

    def __init__(self, network: nn.Module, m: int):
        super().__init__()
        self.network, self.m = network, m

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        return self.network(pack(x, self.m), None if condition is None else pack(condition, self.m))


@dataclass
class PacGANOptions(RegularizerOptions):
    pack: int = option(2, minimum=2)   # m, the samples D sees at once (the paper: 2, 3, 4)


@register_regularizer("pacgan")
class Packing(Regularizer):
    phase = "D"
    replaces_networks = True
    needs_single_discriminator = True   # sn / sr must normalise the packed D, not the one it replaces
    needs_capabilities = {"build_discriminator": "a discriminator it can rebuild for packed inputs",
                          "discriminate": "a discriminator"}
    changes_network = "*.network.*"   # reports nothing: the packing D's wrapped network shows it
    Options = PacGANOptions

    @property
    def batch_multiple(self) -> int:
        return self.options.pack

    def setup(self, recipe) -> None:
        device = next(recipe.parameters()).device
        network = recipe.build_discriminator(pack=self.options.pack).to(device)
        setattr(recipe, recipe.discriminator_names[0], PackedDiscriminator(network, self.options.pack))
