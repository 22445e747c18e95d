"""The shared step context: what one training step knows, computed once and shared by every phase,
the model's recipe and the regularisers.

The generated batch is made by one batched G call per step and reused by all phases (D sees it
detached, G with gradients), as in the MSGAN code. When a regulariser asks for k samples per
condition (mode seeking asks for 2), each condition (a class index, an input image, whatever the
recipe takes: `data/batch.py`) is repeated k times along the batch axis with independent latents,
so group j of the output is `images[j*n:(j+1)*n]`.

Two layouts, `trainer.pair_batch`:
- `doubled` (the MSGAN code): every real condition gets k latents, so G and D see k x batch fakes
  and the adversarial losses count every group in full (`loss_scale = k`).
- `split`: G keeps the batch size of a run without pairs (batch/k conditions, k latents each), so a
  pair-based regulariser adds no forward pass at all (`loss_scale = 1`).
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch

from msgan_cli.data.batch import Batch, Tree, repeat_rows, take
from msgan_cli.models.base import Recipe

PAIR_BATCH_LAYOUTS = ("doubled", "split")


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

    def group(self, j: int, output: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (`output`, default the primary one) and latents of group j: every condition once,
        with its j-th latent."""
        n = self.per_group
        return self.outputs[output or self.primary][j * n:(j + 1) * n], self.z[j * n:(j + 1) * n]


@dataclass
class StepContext:
    recipe: Recipe
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
        return self.samples_per_condition if self.pair_batch == "doubled" else 1

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
                outputs = self.recipe.generate_outputs(z, condition)
            self._generated = Generated(outputs, z, condition, k, self.recipe.primary_outputs[0])
        return self._generated

    def refresh_generated(self) -> None:
        """G's outputs computed again for the same latents and conditions (after a phase changed G)."""
        if self._generated is not None:
            generated = self._generated
            with self.autocast:
                generated.outputs = self.recipe.generate_outputs(generated.z, generated.condition)

    def pair(self, output: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(fake1, fake2, z1, z2): two outputs (`output`, default the primary one) for the same
        conditions from two independent latents."""
        if self.samples_per_condition < 2:
            raise RuntimeError("pair() needs samples_per_condition >= 2; the regulariser must declare it")
        generated = self.generated()
        (fake1, z1), (fake2, z2) = generated.group(0, output), generated.group(1, output)
        return fake1, fake2, z1, z2
