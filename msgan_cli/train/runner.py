"""A run's training steps without the loop around them (no logging, checkpoints or evaluation): what
`scripts/bench.py` times and the host-synchronisation tests step through. The step is the loop's own
(`training_step`), built the way `msgan train` builds it.
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from msgan_cli.data import EpochSampler
from msgan_cli.train.divergence import DivergenceGuard
from msgan_cli.train.loop import (check_trainer_options, phase_parameters, phases_and_optimizers,
                                  samples_per_condition, training_step)
from msgan_cli.train.session import build_session
from msgan_cli.train.stats import collect


class StepRunner:
    """A built configuration whose training steps can be run one after another."""

    def __init__(self, cfg: DictConfig):
        self.session = build_session(cfg)
        recipe, trainer = self.session.recipe, cfg.trainer
        check_trainer_options(trainer, self.session.regularizers, self.session.info.world_size)
        self.phases, self.optimizers = phases_and_optimizers(self.session)
        self.parameters = phase_parameters(recipe, self.phases)
        self.pairs = samples_per_condition(self.session.regularizers)
        self.guard = DivergenceGuard([phase.name for phase in self.phases], self.session.device)   # as the loop
        sampler = EpochSampler(len(self.session.data.train), trainer.batch_size, cfg.seed)
        self.source = self.session.data.train.source(sampler, cfg.seed)
        self.step = 0

    def run(self, steps: int) -> None:
        """`steps` training steps, as the loop runs them between two log ticks (nothing read back)."""
        for _ in range(steps):
            training_step(self.session, self.phases, self.optimizers, self.parameters, self.source, self.pairs,
                          self.step, self.guard)
            self.step += 1

    def log_tick(self) -> dict[str, float]:
        """What the loop does at a log tick: read the reported values and the divergence record (the
        host synchronisation a step defers)."""
        self.guard.check()
        values = collect()
        return dict(zip(values, torch.stack(list(values.values())).tolist())) if values else {}

    def synchronize(self) -> None:
        if self.session.device.type == "cuda":
            torch.cuda.synchronize(self.session.device)
