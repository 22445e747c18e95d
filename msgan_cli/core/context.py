"""The shared step context: what one training step knows, computed once and shared by every phase,
the model's recipe and the regularisers.

The generated batch is made by one batched G call per step and reused by all phases (D sees it
detached, G with gradients), as in the MSGAN code. When a regulariser asks for k samples per
condition (mode seeking asks for 2), each condition (a class index, an input image, whatever the
recipe takes: `data/batch.py`) is repeated k times along the batch axis with independent latents,
so group j of the output is `images[j*n:(j+1)*n]`. D judges each group in its own call
(`Generated.judge`), as the MSGAN code calls D on each fake half: with BatchNorm in D, each group is
normalised by its own statistics.

Two layouts, `trainer.pair_batch`:
- `doubled` (the MSGAN code): every real condition gets k latents, so G and D see k x batch fakes
  and the adversarial losses count every group in full (`loss_scale = k`).
- `split`: G keeps the batch size of a run without pairs (batch/k conditions, k latents each), so a
  pair-based regulariser adds no forward pass at all (`loss_scale = 1`).

A model never scales its terms for the layout: it returns each term as the mean over the batches it
sees, and declares which of them average over the generated batch (`Recipe.generated_batch_terms`);
`count_generated_terms` multiplies those by `loss_scale`.
"""
from __future__ import annotations

import fnmatch
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

import torch

from msgan_cli.core.batch import Batch, Tree, in_groups, repeat_rows, take

PAIR_BATCH_LAYOUTS = ("doubled", "split")


class StepRecipe(Protocol):
    """What the step context itself asks of the model's recipe (models/base.py: Recipe, which the
    recipe, the regularisers and the loop reach through `StepContext.recipe`)."""

    primary_outputs: tuple[str, ...]
    generated_batch_terms: dict[str, tuple[str, ...]]

    def condition(self, batch: Batch) -> Tree: ...

    def phase_losses(self, phase: str, ctx: StepContext) -> dict[str, torch.Tensor]: ...

    def sample_latent(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def generate_outputs(self, z: torch.Tensor, condition: Tree, groups: int = 1) -> dict[str, torch.Tensor]: ...


@dataclass
class Generated:
    """G's outputs for one batch of latents: `outputs` by name (`Recipe.output_names`), the latents, the
    conditions (every condition repeated `groups` times along the rows) and the number of groups."""

    outputs: dict[str, torch.Tensor]
    z: torch.Tensor
    condition: Tree
    groups: int
    primary: str

    @property
    def images(self) -> torch.Tensor:
        """The recipe's first primary output (the one D judges in a single-output model)."""
        return self.outputs[self.primary]

    @property
    def per_group(self) -> int:
        """Conditions per group; they are the first `per_group` conditions of the data batch."""
        return len(self.z) // self.groups

    def judge(self, judge: Callable[[torch.Tensor, Tree], Tree], output: str | None = None, detach: bool = False,
              condition: Tree = None) -> Tree:
        """`judge(outputs, conditions)` (a discriminator's call) on this batch's `output` (default the
        primary one), one call per latent group as the MSGAN code calls D on each fake half, joined along
        the rows (core/batch.py: in_groups). `detach`: the outputs without their graph (D's own phase).
        `condition`: rows that go with the outputs instead of their conditions (e.g. a code made from them)."""
        images = self.outputs[output or self.primary]
        rows = self.condition if condition is None else condition
        return in_groups(judge, images.detach() if detach else images, rows, self.groups)

    def group(self, j: int, output: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (`output`, default the primary one) and latents of group j: every condition once,
        with its j-th latent."""
        n = self.per_group
        return self.outputs[output or self.primary][j * n:(j + 1) * n], self.z[j * n:(j + 1) * n]


@dataclass
class StepContext:
    recipe: StepRecipe
    batch: Batch
    step: int
    samples_per_condition: int = 1
    pair_batch: str = "doubled"
    autocast: AbstractContextManager = field(default_factory=nullcontext)
    rank: int = 0                        # DDP: this process's share of the global batch is share `rank`
    world_size: int = 1
    cache: dict[str, object] = field(default_factory=dict)   # for regularisers to share work within a step
    # What D is taught to call real; None: the data batch. A regulariser may set it in `begin_step`
    # (MDGAN's diffusion step teaches D that reconstructions G(E(x)) are the real side).
    real_for_discriminator: torch.Tensor | None = None
    _generated: Generated | None = None

    def __post_init__(self):
        self.condition: Tree = self.recipe.condition(self.batch)   # what G takes besides z; None: nothing

    @property
    def real(self) -> torch.Tensor:
        return self.batch.samples

    @property
    def discriminator_real(self) -> torch.Tensor:
        return self.real if self.real_for_discriminator is None else self.real_for_discriminator

    @property
    def loss_scale(self) -> int:
        """How many times a term averaged over the generated batch counts: once per latent group in the
        doubled layout (D's loss(real, fake1) + loss(real, fake2) in the MSGAN code), once in the split one."""
        return self.samples_per_condition if self.pair_batch == "doubled" else 1

    def model_terms(self, phase: str) -> dict[str, torch.Tensor]:
        """The model's own terms of `phase`'s objective as this step counts them (`count_generated_terms`)."""
        return self.count_generated_terms(self.recipe.phase_losses(phase, self),
                                          self.recipe.generated_batch_terms.get(phase, ()))

    def count_generated_terms(self, terms: dict[str, torch.Tensor], generated: Iterable[str]) -> dict[str, torch.Tensor]:
        """`terms` with those named by a pattern in `generated` (fnmatch: `adv`, `adv_*`) multiplied by
        `loss_scale`; the others (a reconstruction, a classification, a KL) as they are."""
        patterns = tuple(generated)
        if self.loss_scale == 1 or not patterns:
            return terms
        return {name: self.loss_scale * value if any(fnmatch.fnmatchcase(name, p) for p in patterns) else value
                for name, value in terms.items()}

    @property
    def aligned_rows(self) -> int:
        """How many leading rows of the data batch and of the generated batch share their conditions: the
        generated batch's first latent group (all of it without pairs). WGAN-GP interpolates such rows;
        Pix2Pix's L1 compares them with their ground truth."""
        return self.generated().per_group

    def generated(self) -> Generated:
        """The step's fake batch, made by one G call the first time any phase asks for it."""
        if self._generated is None:
            k = self.samples_per_condition
            n = len(self.batch) if self.pair_batch == "doubled" else len(self.batch) // k
            condition = repeat_rows(take(self.condition, slice(0, n)), k)   # k latents for each of n conditions
            # Every rank draws the latents of the whole global batch from the same stream and keeps its
            # own rows, so N processes use exactly the latents of one process with the global batch.
            z = self.recipe.sample_latent(k * n * self.world_size, self.real.device)
            z = z.view(k, self.world_size * n, z.shape[1])[:, self.rank * n:(self.rank + 1) * n].reshape(k * n, z.shape[1])
            with self.autocast:
                outputs = self.recipe.generate_outputs(z, condition, k)
            self._generated = Generated(outputs, z, condition, k, self.recipe.primary_outputs[0])
        return self._generated

    def refresh_generated(self) -> None:
        """G's outputs computed again for the same latents and conditions (after a phase changed G)."""
        if self._generated is not None:
            generated = self._generated
            with self.autocast:
                generated.outputs = self.recipe.generate_outputs(generated.z, generated.condition, generated.groups)

    def pair(self, output: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(fake1, fake2, z1, z2): two outputs (`output`, default the primary one) for the same
        conditions from two independent latents."""
        if self.samples_per_condition < 2:
            raise RuntimeError("pair() needs samples_per_condition >= 2; the regulariser must declare it")
        generated = self.generated()
        (fake1, z1), (fake2, z2) = generated.group(0, output), generated.group(1, output)
        return fake1, fake2, z1, z2
