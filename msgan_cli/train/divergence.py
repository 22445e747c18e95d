"""Stops a diverged run instead of letting it finish on NaN weights.

Each phase's objective is checked for NaN / inf as it is computed, on the device (a comparison and a
`where` on a scalar, no host sync), and the first step at which each phase went non-finite is kept.
The loop reads that record only at its log ticks, before every checkpoint and before the final
evaluation (one small all-reduce, so every rank stops together); a checkpoint is also refused when any
weight is non-finite (the last optimiser step may break the weights after a finite loss). So the last
good checkpoint is never overwritten, and no metrics are computed from NaN images.
"""
from __future__ import annotations

import torch

from msgan_cli.core import distributed
from msgan_cli.errors import UserError

NOT_SEEN = 2 ** 62   # "no non-finite value yet": larger than any step, so a MIN across ranks keeps real steps


class Diverged(UserError):
    """Training produced NaN or inf; `step` and `what` say where it was first seen; `checkpoint_step`, the
    run's last good checkpoint, if it has one (the loop knows; the guard does not)."""

    def __init__(self, step: int, what: str, checkpoint_step: int | None = None):
        self.step, self.what, self.checkpoint_step = step, what, checkpoint_step
        kept = ("its last good checkpoint (step {}) is kept".format(checkpoint_step) if checkpoint_step is not None
                else "it had written no checkpoint yet, so nothing of it is kept")
        resume = ("then resume this run from its checkpoint with trainer.allow_config_change=true, or start a new run "
                  "directory" if checkpoint_step is not None else "then run the command again")
        super().__init__(f"Training diverged: {what} became NaN or inf at step {step}. The run stopped; {kept}, and no "
                         f"metrics were written (run_info.json marks it diverged). Lower the learning rates "
                         f"(model.optim.lr_g / lr_d), or check the regulariser weights, {resume}.")


class DivergenceGuard:
    def __init__(self, phase_names: list[str], device: torch.device):
        self.phase_names = list(phase_names)
        self.first_step = torch.full((len(self.phase_names),), NOT_SEEN, dtype=torch.long, device=device)

    def observe(self, phase: str, objective: torch.Tensor, step: int) -> None:
        """Record `step` (1-based: the step being computed) for `phase` if its objective is not finite
        and no earlier step was recorded."""
        index = self.phase_names.index(phase)
        bad = ~torch.isfinite(objective.detach()).all()
        current = self.first_step[index]
        self.first_step[index] = torch.where(bad, current.clamp(max=step), current)

    def check(self, networks: torch.nn.Module | None = None, step: int = 0) -> None:
        """Raise Diverged (on every rank alike) when a phase's objective was non-finite, or, given
        `networks`, when any of their parameters or buffers is (reported at `step`)."""
        weights_seen = torch.full((1,), NOT_SEEN, dtype=torch.long, device=self.first_step.device)
        if networks is not None:
            tensors = [t for t in (*networks.parameters(), *networks.buffers()) if t.is_floating_point()]
            bad = torch.stack([~torch.isfinite(t).all() for t in tensors]).any()
            weights_seen = torch.where(bad, step, weights_seen)
        summary = torch.cat([self.first_step, weights_seen])
        if distributed.is_distributed():
            torch.distributed.all_reduce(summary, op=torch.distributed.ReduceOp.MIN)
        *losses, weights = summary.tolist()   # the one host sync
        seen = [(s, name) for s, name in zip(losses, self.phase_names) if s < NOT_SEEN]
        if seen:
            first, name = min(seen)
            raise Diverged(first, f"the {name} phase's loss")
        if weights < NOT_SEEN:
            raise Diverged(weights, "a weight of the model")
