"""`reg=sn`: spectral normalisation of every discriminator layer (SN-GAN; Miyato et al., ICLR 2018),
the baseline of SR-GAN (docs/methods.md#sn-gan).

Each conv / linear weight of D is divided by an estimate of its largest singular value (one power
iteration per forward pass, PyTorch's parametrisation). Adds no loss term. Cost: one matrix-vector
power iteration per D layer per forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.nn.utils.parametrize import is_parametrized

from msgan_cli.core.registry import register_regularizer
from msgan_cli.models.base import Recipe
from msgan_cli.regularizers.base import Regularizer, RegularizerOptions


def apply_spectral_norm(recipe: Recipe, power_iterations: int = 1) -> None:
    """Spectrally normalise every weight layer of the recipe's discriminator(s)."""
    for _, module in recipe.discriminator_layers():
        if not is_parametrized(module, "weight"):
            # A transposed conv keeps its output channels in dim 1.
            dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
            spectral_norm(module, n_power_iterations=power_iterations, dim=dim)


@dataclass
class SNOptions(RegularizerOptions):
    power_iterations: int = 1   # per forward pass, as in SN-GAN


@register_regularizer("sn")
class SpectralNormalization(Regularizer):
    phase = "D"
    needs_discriminator_layers = True
    changes_network = "*.parametrizations.weight.original"   # reports nothing: its weights show it
    Options = SNOptions

    def setup(self, recipe) -> None:
        apply_spectral_norm(recipe, self.options.power_iterations)
