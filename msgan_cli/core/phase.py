"""The phase contract: a training step is a sequence of phases, each minimising one objective with
one optimiser over some networks. A model lists its phases (`Recipe.phases`); a regulariser may add
one or join a network to one (`Regularizer.phases`); the loop only walks them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    """One optimisation phase of a training step: its name (used in `Loss/<phase>/<term>`), the
    optimiser it steps, and the networks whose gradients it produces.

    `every`: the phase runs in steps s with (s + 1) % every == 0 only (DRIT's d_iter: its content
    discriminator trains every step, the rest every third). `fresh_outputs`: the step's generated
    batch is computed again, for the same latents and conditions, before this phase, because an
    earlier phase of the step changed G (DRIT updates G twice per step; backpropagating through the
    outputs of the G before its update would be wrong, and PyTorch refuses it). `clip_grad_norm`: the
    phase's gradients are clipped to this norm before its optimiser steps (DRIT's content D: 5)."""

    name: str
    optimizer: str
    networks: tuple[str, ...]
    added_by: str | None = None   # the regulariser that added this phase (its own networks); None: the model's
    every: int = 1
    fresh_outputs: bool = False
    clip_grad_norm: float | None = None

    def due(self, step: int) -> bool:
        return (step + 1) % self.every == 0
