"""The regulariser plug-in (docs/architecture.md#roles: the third role).

A regulariser is two things: a pure function of tensors that is the paper's formula (tested against
hand-computed values), and a small plug-in class around it that says which phase it acts in, what it
needs from the model and the step context, and turns the context into the function's inputs.
"""
from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import ClassVar

import torch

from msgan_cli.core.context import StepContext
from msgan_cli.core.phase import Phase
from msgan_cli.errors import UserError
from msgan_cli.models.base import Recipe


def option(default, *, choices: tuple | None = None, minimum: float | None = None, above: float | None = None,
           maximum: float | None = None):
    """A field of an Options dataclass with its allowed values, checked before training by the plug-in
    base: `choices`, an inclusive `minimum` / `maximum`, or a strict lower bound `above`. None is
    always allowed for a field whose default is None (an option that is off)."""
    limits = {"choices": choices, "minimum": minimum, "above": above, "maximum": maximum}
    return dataclasses.field(default=default, metadata={k: v for k, v in limits.items() if v is not None})


def option_error(name: str, field: dataclasses.Field, value) -> str | None:
    """Why `value` is not allowed for the option, or None."""
    limits = field.metadata
    if value is None and field.default is None:
        return None
    if "choices" in limits and value not in limits["choices"]:
        return f"must be one of {', '.join(map(str, limits['choices']))}"
    if "minimum" in limits and value < limits["minimum"]:
        return f"must be at least {limits['minimum']}"
    if "above" in limits and value <= limits["above"]:
        return f"must be above {limits['above']}"
    if "maximum" in limits and value > limits["maximum"]:
        return f"must be at most {limits['maximum']}"
    return None


@dataclass
class RegularizerOptions:
    """Options every regulariser has. Subclass it (a dataclass) to add the regulariser's own; subclass
    `WeightedOptions` for one that adds a term to an objective."""

    enabled: bool = False   # set to true by selecting it (reg=<name>); see conf/reg/*.yaml


@dataclass
class WeightedOptions(RegularizerOptions):
    """Options of a regulariser that adds a term: its weight."""

    weight: float = 1.0     # the paper's lambda: the term enters the objective as weight * loss


class Regularizer:
    """Subclass, set the class attributes, implement `loss`, and register with
    `@register_regularizer("<name>")` in a module of `msgan_cli/regularizers/`."""

    name: ClassVar[str]
    phase: ClassVar[str] = "G"                  # the recipe phase whose objective it joins
    samples_per_condition: ClassVar[int] = 1    # 2: asks the step for pairs (same condition, two z)
    needs_latent: ClassVar[bool] = False
    needs_discriminator_layers: ClassVar[bool] = False   # acts on D's conv/linear weights (sn, sr, dpm)
    needs_capabilities: ClassVar[dict[str, str]] = {}   # optional Recipe method -> what it is for (messages)
    needs_single_discriminator: ClassVar[bool] = False   # acts on "the" D (PacGAN packs it, Unrolled GAN unrolls it)
    conflicts: ClassVar[dict[str, str]] = {}    # other regulariser -> why they cannot be combined
    replaces_networks: ClassVar[bool] = False   # setup swaps a network (PacGAN's D): runs before the others'
    # Why its step makes the host wait for the GPU (say it in the docstring too), or None: it does not
    # (tests/test_host_sync.py checks every regulariser's step under CUDA's sync debug mode, except these).
    host_sync: ClassVar[str | None] = None
    # What the tests and scripts/bench.py read, so that they cover a new regulariser without being edited
    # (docs/extending.md#regularizer-coverage):
    # Overrides a tiny run of a few steps needs for it to act there, or to stay cheap (sr: project every 2nd
    # D step, not every 5th; unrolled: 2 unrolled steps): the smoke, composition and host-sync tests add them.
    smoke_overrides: ClassVar[tuple[str, ...]] = ()
    # Other settings of it that run code of their own, label -> overrides (mdgan: two_step): the host-sync
    # test checks each, scripts/bench.py times each. One that asks for several samples per condition is also
    # run in both pair layouts (trainer.pair_batch) without listing them here (regularizers.settings).
    variants: ClassVar[dict[str, tuple[str, ...]]] = {}
    # For one that adds no term and reports no `Diag/<name>/...`: a glob of a key of the trained model's
    # state that exists only once it has changed the networks (sn: its parametrised weights), which is how
    # the tests see that it acted.
    changes_network: ClassVar[str | None] = None
    # WeightedOptions (or a subclass) for a regulariser that adds a term; RegularizerOptions (or a subclass)
    # for one that acts on the networks or on what a loss is taken against (sn, sr, pacgan, unrolled).
    Options: ClassVar[type[RegularizerOptions]] = WeightedOptions

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A term without a weight would never be added (terms() adds weight * loss): say so when the
        # plug-in is defined rather than train without it.
        if cls.loss is not Regularizer.loss and not cls.adds_term():
            raise TypeError(f"{cls.__name__} implements loss() but its Options ({cls.Options.__name__}) have no "
                            f"weight: derive them from WeightedOptions.")

    def __init__(self, options: RegularizerOptions, recipe: Recipe):
        self.options = options

    @classmethod
    def adds_term(cls) -> bool:
        """Whether it adds a weighted term to an objective (`Loss/<phase>/<name>`): its options have a weight."""
        return issubclass(cls.Options, WeightedOptions)

    @property
    def batch_multiple(self) -> int:
        """The per-process batch must be a multiple of this (PacGAN packs m samples). Default: 1."""
        return 1

    def check(self, recipe: Recipe) -> None:
        """Stop before training, with a sentence naming the fix, if an option is out of range or the
        model lacks what this needs."""
        for field in dataclasses.fields(self.options):
            value = getattr(self.options, field.name)
            if (problem := option_error(field.name, field, value)) is not None:
                raise UserError(f"reg.{self.name}.{field.name} {problem}; got {value!r}.")
        if self.needs_single_discriminator and len(recipe.discriminator_names) != 1:
            raise UserError(f"reg={self.name} acts on a single discriminator; model {recipe.name} has "
                            f"{len(recipe.discriminator_names)}.")
        if self.needs_latent and not recipe.has_latent:
            raise UserError(
                f"reg={self.name} needs a latent input, but model {recipe.name} has none: "
                f"set model.nz to a positive size or drop reg={self.name}.")
        if self.needs_discriminator_layers and not recipe.discriminator_layers():
            raise UserError(f"reg={self.name} acts on the discriminator's conv/linear layers; "
                            f"model {recipe.name} has none.")
        for capability, purpose in self.needs_capabilities.items():
            if not recipe.offers(capability):
                raise UserError(f"reg={self.name} needs {purpose}, which model {recipe.name} does not offer "
                                f"(Recipe.{capability}): pick another model or drop reg={self.name}.")
        phases = [phase.name for phase in recipe.phases()]
        if self.phase not in phases:
            raise UserError(f"reg={self.name} acts in phase {self.phase}, which model {recipe.name} "
                            f"does not have (its phases: {', '.join(phases)}).")

    def setup(self, recipe: Recipe) -> None:
        """Change the model before its optimisers exist (e.g. re-parametrise D's weights). Default: nothing.
        Runs for `msgan eval` and `msgan sample` too, so a checkpoint's keys always match."""

    def configure_optimizers(self, recipe: Recipe, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """After the model's optimisers exist: add optimisers (or parameter groups) for networks
        `setup` added, or keep a reference to one (Unrolled GAN reads D's). Default: nothing."""

    def phases(self, phases: list[Phase]) -> list[Phase]:
        """The step's phases with this regulariser's changes: a phase of its own (`added_by` set to its
        name) or a network it added joining a phase. Default: unchanged."""
        return phases

    def begin_step(self, ctx: StepContext) -> None:
        """Once per step, before the first phase (e.g. a forward pass shared by several phases)."""

    def model_terms_context(self, phase: str, ctx: StepContext) -> AbstractContextManager:
        """A context the model's own terms of `phase` are computed in (Unrolled GAN: G's loss against
        D advanced k steps). Default: none."""
        return nullcontext()

    def terms(self, phase: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The weighted terms this regulariser adds to `phase`'s objective, logged as
        `Loss/<phase>/<key>`. Default: `{name: weight * loss(ctx)}` in `self.phase`. Override it only
        to act in several phases or with several terms (MDGAN)."""
        if phase != self.phase or not self.adds_term() or self.options.weight == 0:
            return {}
        term = self.loss(ctx)
        return {} if term is None else {self.name: self.options.weight * term}

    def loss(self, ctx: StepContext) -> torch.Tensor | None:
        """The unweighted term for this step, or None: nothing this step. A regulariser that adds no term
        at all (it acts through `setup`, `after_phase` or `model_terms_context`) has options without a
        weight. Report diagnostics with `core.stats.report("Diag/<name>/...")`."""
        return None

    def after_phase(self, phase: str, recipe: Recipe, step: int) -> None:
        """Called after each phase's optimiser step (e.g. to project D's weights). Default: nothing."""

    def state_dict(self) -> dict:
        """State that must survive a resume (running statistics, counters). Default: none."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def check_discriminator_layer(recipe: Recipe, name: str, layer: str | None) -> None:
    """Refuse a `reg.<name>.layer` that is not a module of the primary discriminator, listing those that are."""
    if layer is None:
        return
    discriminator = getattr(recipe, recipe.primary_discriminator)
    names = [module for module, _ in discriminator.named_modules() if module]
    if layer not in names:
        raise UserError(f"reg.{name}.layer='{layer}' is not a module of the discriminator; "
                        f"choose one of: {', '.join(names)} (or null for the last hidden layer).")


OUTPUT_CHOICES = ("primary", "all")


@dataclass
class PairOptions(WeightedOptions):
    """Options of a regulariser on pairs of outputs."""

    # Which of G's outputs it acts on: the recipe's primary ones (e.g. StackGAN++'s last stage, as the
    # MSGAN code does), or all of them (every stage), the terms summed.
    outputs: str = option("primary", choices=OUTPUT_CHOICES)


class PairRegularizer(Regularizer):
    """A term on two outputs for the same condition from two independent latents (mode seeking,
    DSGAN). The pair comes from the step's one batched G call; implement `pair_loss`."""

    phase = "G"
    samples_per_condition = 2
    needs_latent = True
    Options = PairOptions

    def pair_loss(self, fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """The unweighted term for one output's pair."""
        raise NotImplementedError

    def loss(self, ctx: StepContext) -> torch.Tensor:
        recipe = ctx.recipe
        names = recipe.primary_outputs if self.options.outputs == "primary" else recipe.output_names
        return sum(self.pair_loss(*ctx.pair(name)) for name in names)
