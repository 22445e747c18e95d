"""`reg=sr`: spectral regularisation (SR-GAN; Liu et al., ICCV 2019, arXiv 1908.10999). docs/methods.md#sr-gan.

When an SN-GAN collapses, most normalised singular values of D's weights drop at once ("spectral
collapse"). SR compensates: the top `i` normalised singular values of each weight are set to 1
(static) or to their running maximum over training (dynamic). As in the official code this is a
projection, not a re-parametrisation: spectral normalisation stays in the forward pass, and every
`every` D steps, after the D update, each D weight is replaced by its compensated version. The last
layer (D's head) is left alone, as the code leaves its final linear layer. Adds no loss term.
Cost: one full SVD per D layer every `every` D steps. On a GPU each SVD synchronises with the host
(the solver's convergence is checked there): a projection step waits for the GPU, the others do not.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from msgan_cli.core.registry import register_regularizer
from msgan_cli.core.stats import report
from msgan_cli.models.base import weight_matrix
from msgan_cli.regularizers.base import Regularizer, RegularizerOptions, option
from msgan_cli.regularizers.sn import apply_spectral_norm

MODES = ("static", "dynamic")


def normalised_svd(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`U, s / s_1, V^T` of the weight as a matrix (rows = dim 0), in float64 for an exact recomposition."""
    u, s, vh = torch.linalg.svd(weight.reshape(weight.shape[0], -1).double(), full_matrices=False)
    return u, s / s[0], vh


def spectral_compensate(weight: torch.Tensor, i: int | None = None, gamma: torch.Tensor | None = None,
                        svd: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The compensated, normalised weight `W_SR` (same shape as `weight`, spectral norm 1).

    1. SVD of the weight matrix: `W = U diag(s) V^T`, s descending (`svd`: one already computed
       with `normalised_svd`, so a caller that needed the spectrum first does not decompose twice).
    2. Normalise: `s / s_1`. With nothing else this is spectral normalisation (`i = 1`).
    3. Static compensation (Eq. of Delta_W): the top `i` normalised singular values become 1, the
       rest stay `s_k / s_1`; `i` defaults to floor(rank / 2) as in the paper.
    4. Dynamic compensation: the top `i` become `gamma_j` (the running max of `s_j / s_1`) instead of 1.
    """
    u, normalised, vh = svd if svd is not None else normalised_svd(weight)
    i = max(len(normalised) // 2, 1) if i is None else i
    compensated = normalised.clone()
    compensated[:i] = 1.0 if gamma is None else gamma[:i].to(compensated)
    return (u @ torch.diag(compensated) @ vh).to(weight.dtype).reshape(weight.shape)


@dataclass
class SROptions(RegularizerOptions):
    every: int = option(5, minimum=1)                 # D steps between projections (the official code: 5)
    mode: str = option("static", choices=MODES)       # static | dynamic (the paper's ImageNet code)
    fraction: float = option(0.5, above=0, maximum=1)  # i = floor(fraction * rank): the paper's r / 2
    power_iterations: int = 1


@register_regularizer("sr")
class SpectralRegularization(Regularizer):
    phase = "D"
    needs_discriminator_layers = True
    conflicts = {"sn": "sr already applies spectral normalisation in D's forward pass; drop reg=sn."}
    host_sync = "torch.linalg.svd checks the solver's convergence on the host, every `every` D steps"
    smoke_overrides = ("reg.sr.every=2",)   # the default, every 5th D step, projects nothing in 4 steps
    variants = {"mode=dynamic": ("reg.sr.mode=dynamic",)}   # the running max of the spectrum
    Options = SROptions

    def __init__(self, options, recipe):
        super().__init__(options, recipe)
        self.d_steps, self.projections = 0, 0
        self.gamma: dict[str, torch.Tensor] = {}   # dynamic mode: running max of s_j / s_1 per layer

    def setup(self, recipe) -> None:
        apply_spectral_norm(recipe, self.options.power_iterations)

    @torch.no_grad()
    def after_phase(self, phase: str, recipe, step: int) -> None:
        if phase != self.phase:
            return
        self.d_steps += 1
        if self.d_steps % self.options.every:
            return
        for network in recipe.discriminator_names:
            for name, module in recipe.discriminator_layers(network)[:-1]:   # each D's head is left alone
                self.project(name, module)
        self.projections += 1
        report("Diag/sr/projections", self.projections)

    def project(self, name: str, module: nn.Module) -> None:
        original = module.parametrizations.weight.original   # the weight before spectral normalisation
        transposed = isinstance(module, nn.ConvTranspose2d)
        matrix = weight_matrix(original, module)
        i = max(int(self.options.fraction * min(matrix.shape)), 1)
        svd = normalised_svd(matrix)   # one decomposition serves the running max and the projection
        gamma = None
        if self.options.mode == "dynamic":   # kept on the weight's device: no host round trip
            current = svd[1]
            gamma = torch.maximum(self.gamma.get(name, current).to(current), current)
            self.gamma[name] = gamma
        compensated = spectral_compensate(matrix, i, gamma, svd)
        if transposed:
            compensated = compensated.reshape(original.transpose(0, 1).shape).transpose(0, 1)
        original.copy_(compensated.reshape(original.shape))

    def state_dict(self) -> dict:
        return {"d_steps": self.d_steps, "projections": self.projections, "gamma": dict(self.gamma)}

    def load_state_dict(self, state: dict) -> None:
        self.d_steps = int(state.get("d_steps", 0))
        self.projections = int(state.get("projections", 0))
        self.gamma = dict(state.get("gamma", {}))
