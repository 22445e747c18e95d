"""The model's recipe: how to drive its networks (DESIGN.md section 2, role 2).

A recipe owns its networks (plain nn.Modules), says what it offers (a latent input? a class
condition?), lists its training phases, generates outputs for given z and conditions, and computes
its own loss terms per phase. It knows nothing about regularisers: those ask the shared step context
for what they need. The training loop knows nothing about any particular recipe.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from msgan_cli.data import Data
from msgan_cli.errors import UserError

if TYPE_CHECKING:
    from msgan_cli.train.context import StepContext


WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)


def weight_matrix(weight: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """A layer's weight as a matrix out x (in * kernel), conv weights reshaped as in SR-GAN."""
    if isinstance(module, nn.ConvTranspose2d):   # stored (in, out, k, k): put the outputs first
        weight = weight.transpose(0, 1)
    return weight.reshape(weight.shape[0], -1)


@dataclass(frozen=True)
class Phase:
    """One optimisation phase of a training step: its name (used in `Loss/<phase>/<term>`), the
    optimiser it steps, and the networks whose gradients it produces."""

    name: str
    optimizer: str
    networks: tuple[str, ...]
    added_by: str | None = None   # the regulariser that added this phase (its own networks); None: the model's


class Recipe(nn.Module, ABC):
    """Base class of every model. Subclasses set `name`, build networks in `__init__`, and implement
    the methods below. `latent_dim == 0` means no latent input; `num_classes == 0` unconditional."""

    name: ClassVar[str]
    latent_dim: int = 0
    num_classes: int = 0
    discriminator_names: ClassVar[tuple[str, ...]] = ("discriminator",)   # for spectral methods

    def __init__(self, cfg, data: Data):
        super().__init__()
        self.cfg = cfg
        self.data_kind = data.kind
        self.sample_shape = data.shape

    # What the model offers, for regularisers to check at start-up.
    @property
    def has_latent(self) -> bool:
        return self.latent_dim > 0

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @abstractmethod
    def phases(self) -> list[Phase]:
        """The phases of one training step, in order (e.g. D then G)."""

    @abstractmethod
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per name that `Phase.optimizer` refers to."""

    def sample_latent(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latent codes from the prior, N(0, I); shape (n, 0) for a model without a latent."""
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    @abstractmethod
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """G's outputs for latents z and class labels (None when unconditional)."""

    @abstractmethod
    def phase_losses(self, phase: str, ctx: "StepContext") -> dict[str, torch.Tensor]:
        """The model's own loss terms for `phase`, already weighted; the loop adds regularisers."""

    def networks(self) -> dict[str, nn.Module]:
        return dict(self.named_children())

    # Optional capabilities, for regularisers that need more than generate() (MDGAN, PacGAN, Unrolled
    # GAN). A model that cannot offer one leaves it unimplemented; `offers()` tells, so a regulariser
    # can stop before training with a sentence instead of failing mid-step.
    def offers(self, capability: str) -> bool:
        """Whether this model implements the optional method `capability` (e.g. "build_encoder")."""
        return getattr(type(self), capability) is not getattr(Recipe, capability)

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None,
                     discriminator: nn.Module | None = None) -> torch.Tensor:
        """D's logits for samples x with their labels; `discriminator`: another network of the same
        architecture (e.g. MDGAN's manifold discriminator) instead of the model's own."""
        raise NotImplementedError

    def discriminator_loss(self, real: torch.Tensor, real_labels: torch.Tensor | None, fake: torch.Tensor,
                           fake_labels: torch.Tensor | None, discriminator: nn.Module | None = None) -> torch.Tensor:
        """D's objective for one real and one fake batch (what its D phase minimises, before loss_scale)."""
        raise NotImplementedError

    def build_discriminator(self, pack: int = 1) -> nn.Module:
        """A fresh, initialised discriminator of this model's architecture whose input holds `pack`
        samples concatenated along the channel (feature) axis, with `pack` conditions (PacGAN)."""
        raise NotImplementedError

    def build_encoder(self) -> nn.Module:
        """A fresh network mapping a batch of data to latent codes, `encoder(x) -> z` (MDGAN's E)."""
        raise NotImplementedError

    def discriminator_layers(self) -> list[tuple[str, nn.Module]]:
        """Every weight layer (conv, transposed conv, linear) of the discriminator(s), in order, as
        (qualified name, module): what spectral normalisation, SR-GAN and spectral monitoring act on."""
        return [(f"{net}.{name}", module) for net in self.discriminator_names
                for name, module in getattr(self, net).named_modules() if isinstance(module, WEIGHT_LAYERS)]


def resolve_num_classes(conditional: bool | str, data: Data, model_name: str) -> int:
    """How many classes the model conditions on: `model.conditional` is true, false or auto
    (auto = conditional exactly when the dataset's labels are classes)."""
    if conditional == "auto":
        return data.num_classes if data.label_kind == "class" else 0
    if conditional is True:
        if data.label_kind is None:
            raise UserError(
                f"model.conditional=true needs class labels, but dataset '{data.name}' has none: "
                f"set model.conditional=false (or auto), or pick a labelled dataset."
            )
        return data.num_classes
    if conditional is False:
        return 0
    raise UserError(f"model.conditional must be true, false or auto (model {model_name}); got {conditional!r}.")


def one_hot(labels: torch.Tensor | None, num_classes: int, like: torch.Tensor) -> torch.Tensor | None:
    """One-hot encoding in the dtype and device of `like`; None when the model is unconditional."""
    if num_classes == 0:
        return None
    if labels is None:
        raise ValueError("a conditional model needs labels")
    return nn.functional.one_hot(labels, num_classes).to(like.dtype)
