"""A run's training steps without the loop around them (no logging, checkpoints or evaluation): what
`scripts/bench.py` times and the host-synchronisation tests step through. The configuration is built
and stepped as `msgan train` builds and steps it (`step.build_training`, `Training.step`).
"""
from __future__ import annotations

from dataclasses import fields

import torch
from omegaconf import DictConfig

from msgan_cli.core.stats import read_back
from msgan_cli.train.step import Training, build_training


class StepRunner(Training):
    """A built configuration whose training steps can be run one after another."""

    def __init__(self, cfg: DictConfig):
        built = build_training(cfg)
        super().__init__(*(getattr(built, field.name) for field in fields(Training)))
        self.steps_done = 0

    def run(self, steps: int) -> None:
        """`steps` training steps, as the loop runs them between two log ticks (nothing read back)."""
        for _ in range(steps):
            self.step(self.steps_done)
            self.steps_done += 1

    def log_tick(self) -> dict[str, float]:
        """What the loop does at a log tick: read the reported values and the divergence record (the
        host synchronisation a step defers)."""
        self.guard.check()
        return read_back()

    def synchronize(self) -> None:
        if self.session.device.type == "cuda":
            torch.cuda.synchronize(self.session.device)
