"""The model's recipe: how to drive its networks (docs/architecture.md#roles: the second role).

A recipe owns its networks (plain nn.Modules), says what it offers (a latent input? what condition:
a class, an input image? which outputs, which discriminators?), lists its training phases, generates
outputs for given z and conditions, and computes its own loss terms per phase. It knows nothing
about regularisers: those ask the shared step context for what they need. The training loop knows
nothing about any particular recipe.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from msgan_cli.core.batch import Tree
from msgan_cli.core.context import StepContext
from msgan_cli.core.phase import Phase
from msgan_cli.data import Batch, Data
from msgan_cli.errors import UserError
from msgan_cli.models.gan_loss import FLAVOURS, GANLoss

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)


def adam(parameters, lr: float, betas, weight_decay: float = 0.0) -> torch.optim.Adam:
    """torch's Adam with its fused kernel (every parameter in one pass) where the parameters' device has
    one: the same update as the per-tensor loop within rounding, and on 2 CPU cores 3.5x faster for
    DCGAN's parameters (1.1 against 3.8 ms); on CUDA one launch instead of several per tensor."""
    parameters = list(parameters)
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in parameters)
    return torch.optim.Adam(parameters, lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=fused)


def weight_matrix(weight: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """A layer's weight as a matrix out x (in * kernel), conv weights reshaped as in SR-GAN."""
    if isinstance(module, nn.ConvTranspose2d):   # stored (in, out, k, k): put the outputs first
        weight = weight.transpose(0, 1)
    return weight.reshape(weight.shape[0], -1)


@dataclass(frozen=True)
class Direction:
    """One view a model is evaluated in: a translation direction (DRIT's A -> B, B -> A) or a stage
    (StackGAN++'s), with the data as that view sees it: the inputs of
    `data` are the direction's source images, its samples the target domain's (the real images FID
    compares with, the modes known by construction). `name` goes into metric keys (`fid/AtoB/...`);
    None for a model with one direction, whose keys stay as they are. `output`: the output of
    `generate` this direction evaluates. `condition`: G's condition for a batch of `data` (what this
    direction's output needs, nothing more)."""

    name: str | None
    output: str
    data: Data
    condition: Callable[[Batch], Tree]
    setting: str | None = None   # how the outputs are conditioned, for the protocol (StackGAN++'s text codes)

    def generate(self, recipe: "Recipe", z: torch.Tensor, condition: Tree) -> torch.Tensor:
        """The recipe's output of this direction for latents z and `condition` (one of this direction's)."""
        return recipe.generate_outputs(z, condition)[self.output]


CONDITION_KINDS = (None, "class", "image", "two_domains", "text", "domain")   # domain: an image and target attributes


class Recipe(nn.Module, ABC):
    """Base class of every model. Subclasses set `name`, build networks in `__init__`, and implement
    the methods below. `latent_dim == 0` means no latent input. `condition_kind` says what G is
    conditioned on besides z: None (nothing), "class" (`num_classes` class indices, made up for
    evaluation), "image" (an input image that comes with each sample: translation)."""

    name: ClassVar[str]
    latent_dim: int = 0
    num_classes: int = 0
    condition_kind: str | None = None
    discriminator_names: ClassVar[tuple[str, ...]] = ("discriminator",)   # for spectral methods
    output_names: ClassVar[tuple[str, ...]] = ("image",)       # what `generate` returns, in order
    primary_outputs: ClassVar[tuple[str, ...]] = ("image",)    # what regularisers act on by default
    # Sample grids of a model with several views: one grid per view (DRIT's directions, StackGAN++'s stages),
    # or, where every view translates the same inputs (StarGAN's target domains), one grid with the views
    # side by side: a row per input, a block of columns per view (`sampling.views_grid`).
    views_side_by_side: ClassVar[bool] = False
    # The networks that turn a latent and a condition into outputs: what `trainer.ema` averages (train/ema.py).
    averaged_networks: ClassVar[tuple[str, ...]] = ("generator",)
    # Per phase, the terms that average over the step's generated batch (fnmatch patterns of their names).
    # With several latents per condition in the MSGAN code's layout, the step context counts each of them
    # once per latent group (core/context.py: count_generated_terms); the recipe computes every term
    # once, unscaled, whatever the layout.
    generated_batch_terms: ClassVar[dict[str, tuple[str, ...]]] = {"D": ("adv",), "G": ("adv",)}
    # Whether `generate` takes `groups=k` (its condition's rows k copies of the same conditions) to encode each
    # condition once: a recipe whose encoding draws noise (DRIT's content codes), whose reference renders both
    # outputs of a mode-seeking pair from one code.
    encodes_each_condition_once: ClassVar[bool] = False

    def __init__(self, cfg, data: Data):
        super().__init__()
        self.cfg = cfg
        self.data_kind = data.kind
        self.sample_shape = data.shape
        flavour = cfg.get("gan_loss", "bce")   # runs made before the option existed used bce
        if flavour not in FLAVOURS:
            raise UserError(f"model.gan_loss must be one of {', '.join(FLAVOURS)}; got {flavour!r}.")
        self.gan_loss = GANLoss(flavour, float(cfg.get("gradient_penalty", 10.0)))

    # What the model offers, for regularisers to check at start-up.
    @property
    def has_latent(self) -> bool:
        return self.latent_dim > 0

    @property
    def conditional(self) -> bool:
        return self.condition_kind is not None

    @property
    def conditions_come_from_data(self) -> bool:
        """Whether each condition belongs to a data sample (an input image), rather than being made up
        (class indices); evaluation then uses the held-out inputs (`EvalContext.conditions`)."""
        return self.condition_kind not in (None, "class")

    def condition(self, batch: Batch) -> Tree:
        """What G is conditioned on for the samples of `batch`: their class labels, their input images,
        or None. A recipe whose condition is made differently (a random target domain) overrides it."""
        if self.condition_kind is None:
            return None
        return batch.labels if self.condition_kind == "class" else batch.inputs

    def condition_image(self, condition: Tree) -> torch.Tensor | None:
        """A condition as images (n, C, H, W) in [-1, 1] for sample grids, or None when it is not
        one (a class index is shown by the grid's row instead)."""
        return condition if self.condition_kind == "image" else None

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
    def generate(self, z: torch.Tensor, condition: Tree) -> torch.Tensor | dict[str, torch.Tensor]:
        """G's outputs for latents z and conditions (None when unconditional): a tensor, or for a
        recipe with several outputs a dict keyed by `output_names`."""

    def generate_outputs(self, z: torch.Tensor, condition: Tree, groups: int = 1) -> dict[str, torch.Tensor]:
        """`generate` as {output name: tensor}, whether the recipe has one output or several. `groups`: the
        condition's rows are that many copies of the same conditions, one latent each (the step's pairs); a
        recipe that `encodes_each_condition_once` is told so."""
        grouped = groups > 1 and self.encodes_each_condition_once
        result = self.generate(z, condition, groups=groups) if grouped else self.generate(z, condition)
        return result if isinstance(result, dict) else {self.output_names[0]: result}

    def generate_primary(self, z: torch.Tensor, condition: Tree) -> torch.Tensor:
        """The first primary output (what evaluation and sample grids show)."""
        return self.generate_outputs(z, condition)[self.primary_outputs[0]]

    def evaluation_directions(self, data: Data, options=None) -> tuple[Direction, ...]:
        """The views evaluation measures and sample grids show, each with its view of `data`: by
        default one, the first primary output. A model translating both ways (DRIT) returns both, a
        multi-stage one (StackGAN++) every stage. `options`: the evaluation options (`eval`), for a
        model whose views depend on them; None for sample grids."""
        return (Direction(None, self.primary_outputs[0], data, self.condition),)

    @abstractmethod
    def phase_losses(self, phase: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The model's own loss terms for `phase`, weighted by the model's lambdas and each the mean over the
        batches it sees (`generated_batch_terms` says which the pair layout counts again); the loop adds
        the regularisers' terms."""

    @property
    def primary_discriminator(self) -> str:
        """The discriminator that judges the first primary output (what DPM reads features from)."""
        return self.discriminator_names[0]

    def networks(self) -> dict[str, nn.Module]:
        return dict(self.named_children())

    # Optional capabilities, for regularisers that need more than generate() (MDGAN, PacGAN, Unrolled
    # GAN). A model that cannot offer one leaves it unimplemented; `offers()` tells, so a regulariser
    # can stop before training with a sentence instead of failing mid-step.
    def offers(self, capability: str) -> bool:
        """Whether this model implements the optional method `capability` (e.g. "build_encoder")."""
        return getattr(type(self), capability) is not getattr(Recipe, capability)

    def discriminate(self, x: torch.Tensor, condition: Tree,
                     discriminator: nn.Module | None = None) -> torch.Tensor | list[torch.Tensor]:
        """D's logits for samples x with their conditions, or a list with one entry per discriminator
        (several scales); `discriminator`: another network of the same architecture (e.g. MDGAN's
        manifold discriminator) instead of the model's own."""
        raise NotImplementedError

    def discriminator_loss(self, real: torch.Tensor, real_condition: Tree, fake: torch.Tensor, fake_condition: Tree,
                           discriminator: nn.Module | None = None, aligned_rows: int | None = None,
                           groups: int = 1) -> torch.Tensor:
        """D's objective for one real and one fake batch (what its D phase minimises, unscaled).
        `aligned_rows`: how many leading rows of real and fake share their conditions (WGAN-GP
        interpolates those); None: all rows of the shorter one. `groups`: the fake batch's latent groups,
        judged one D call each (core/batch.py: in_groups)."""
        raise NotImplementedError

    def build_discriminator(self, pack: int = 1) -> nn.Module:
        """A fresh, initialised discriminator of this model's architecture whose input holds `pack`
        samples concatenated along the channel (feature) axis, with `pack` conditions (PacGAN)."""
        raise NotImplementedError

    def generate_with_reference(self, condition: Tree, reference: torch.Tensor, output: str) -> torch.Tensor:
        """Output `output` for `condition` with the attribute taken from real images `reference` of the
        target domain instead of a random one (DRIT's attribute transfer; sample grids show it)."""
        raise NotImplementedError

    def discriminator_features(self, images: torch.Tensor, condition: Tree, layer: str | None = None) -> torch.Tensor:
        """The primary discriminator's features of `images` with their conditions: the output of its module
        `layer`, or with None the input of its (last) head, its last hidden representation. With gradients,
        so that a term on them reaches G through D; with several discriminators all run forward."""
        captured: list[torch.Tensor] = []
        if layer is None:
            head = self.discriminator_layers(self.primary_discriminator)[-1][1]
            handle = head.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0]))
        else:
            module = getattr(self, self.primary_discriminator).get_submodule(layer)
            handle = module.register_forward_hook(lambda module, inputs, output: captured.append(output))
        try:
            # Eagerly under hardware.compile: a compiled D would reuse a graph traced without this hook.
            with torch.compiler.set_stance("force_eager"):
                self.discriminate(images, condition)
        finally:
            handle.remove()
        return captured[0]

    def output_features(self, output: str, images: torch.Tensor, condition: Tree) -> torch.Tensor:
        """Features of generated images of `output` with their conditions, for a regulariser that compares
        outputs by what they show (DivCo), with gradients: a model whose discriminators are not called
        through `discriminate` returns its own (DRIT: its attribute encoder's code). Optional."""
        raise NotImplementedError

    def build_encoder(self) -> nn.Module:
        """A fresh network mapping a batch of data to latent codes, `encoder(x) -> z` (MDGAN's E)."""
        raise NotImplementedError

    def discriminator_layers(self, network: str | None = None) -> list[tuple[str, nn.Module]]:
        """Every weight layer (conv, transposed conv, linear) of the discriminators (or of the one
        named `network`), in order, as (qualified name, module): what spectral normalisation, SR-GAN
        and spectral monitoring act on. Each discriminator's last layer is its head."""
        return [(f"{net}.{name}", module) for net in ([network] if network else self.discriminator_names)
                for name, module in getattr(self, net).named_modules() if isinstance(module, WEIGHT_LAYERS)]


def resolve_num_classes(conditional: bool | str, data: Data, model_name: str) -> int:
    """How many classes the model conditions on: `model.conditional` is true, false or auto
    (auto = conditional exactly when the dataset's labels are classes; on translation data, where
    the intent is unclear, auto stops and asks)."""
    if conditional == "auto":
        if data.inputs is not None:
            raise UserError(
                f"model={model_name} generates from a class (or nothing), but dataset '{data.name}' pairs each "
                f"target with an input {data.inputs}: use a model conditioned on it (model=pix2pix or drit for "
                f"images, model=stackganpp for text), or set model.conditional=false to model the targets alone.")
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
