"""One training step, and the assembly of what a step needs (`build_training` -> `Training`): the
session, the phases with their optimisers and parameters, the batch source and the divergence record.
The loop (loop.py), `StepRunner` (runner.py: benches and tests) and nothing else step a run.

Per step: draw this rank's share of the batch; make one shared step context (core/context.py); for
each due phase: zero grads, accumulate the objective (the model's terms as the step counts them,
then the regularisers', each reported as `Loss/<phase>/<term>`), average gradients across ranks, step.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from msgan_cli.core import distributed, stats
from msgan_cli.core.context import PAIR_BATCH_LAYOUTS, StepContext
from msgan_cli.core.phase import Phase
from msgan_cli.core.stats import report
from msgan_cli.data import EpochSampler
from msgan_cli.data.base import BatchSource
from msgan_cli.errors import UserError
from msgan_cli.models import Recipe
from msgan_cli.regularizers import Regularizer
from msgan_cli.train.divergence import DivergenceGuard
from msgan_cli.train.session import Session, build_session


def samples_per_condition(regularizers: list[Regularizer]) -> int:
    return max([r.samples_per_condition for r in regularizers], default=1)


def check_trainer_options(trainer: DictConfig, regularizers: list[Regularizer], world_size: int) -> None:
    if trainer.pair_batch not in PAIR_BATCH_LAYOUTS:
        raise UserError(f"trainer.pair_batch must be one of {', '.join(PAIR_BATCH_LAYOUTS)}; got '{trainer.pair_batch}'.")
    if not isinstance(trainer.batch_size, int) or trainer.batch_size < 1:   # 0 would train on empty batches: NaN
        raise UserError(f"trainer.batch_size must be a whole number >= 1; got {trainer.batch_size!r}.")
    per_rank = trainer.batch_size // world_size
    if trainer.batch_size % world_size:
        raise UserError(f"trainer.batch_size={trainer.batch_size} does not split over {world_size} processes.")
    pairs = samples_per_condition(regularizers)
    if trainer.pair_batch == "split" and per_rank % pairs:
        raise UserError(f"trainer.pair_batch=split needs a per-process batch divisible by {pairs}; got {per_rank}.")
    # D sees the fakes one pair member at a time: in the split layout a group is per_rank / pairs samples.
    seen_by_d = per_rank // pairs if trainer.pair_batch == "split" else per_rank
    for regularizer in regularizers:
        if per_rank % regularizer.batch_multiple or seen_by_d % regularizer.batch_multiple:
            group = f" (trainer.pair_batch=split: D sees {seen_by_d} fakes at a time)" if seen_by_d != per_rank else ""
            raise UserError(f"reg={regularizer.name} needs a per-process batch that is a multiple of "
                            f"{regularizer.batch_multiple}; got {per_rank}{group}: change trainer.batch_size.")
    for key in ("max_steps", "log_every", "sample_every", "checkpoint_every", "eval_every"):
        if trainer[key] < (0 if key in ("max_steps", "eval_every") else 1):
            raise UserError(f"trainer.{key} must be positive; got {trainer[key]}.")


def run_phase(phase: Phase, ctx: StepContext, session: Session, optimizer: torch.optim.Optimizer,
              parameters: list[torch.nn.Parameter], guard: DivergenceGuard | None = None) -> None:
    optimizer.zero_grad(set_to_none=True)
    if phase.fresh_outputs:
        ctx.refresh_generated()
    with ctx.autocast:
        terms = {}
        if phase.added_by is None:   # a phase of the model's (not one a regulariser added)
            with ExitStack() as contexts:
                for regularizer in session.regularizers:
                    contexts.enter_context(regularizer.model_terms_context(phase.name, ctx))
                terms = ctx.model_terms(phase.name)
        for regularizer in session.regularizers:
            added = regularizer.terms(phase.name, ctx)
            if set(added) & set(terms):
                raise RuntimeError(f"regulariser {regularizer.name}'s terms collide with {sorted(set(added) & set(terms))}")
            terms.update(added)
    total = sum(terms.values())
    for name, value in terms.items():
        report(f"Loss/{phase.name}/{name}", value)
    report(f"Loss/{phase.name}/total", total)
    if guard is not None:
        guard.observe(phase.name, total, ctx.step + 1)
    total.backward()
    distributed.average_gradients(parameters)
    if phase.clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(parameters, phase.clip_grad_norm)
    optimizer.step()
    for regularizer in session.regularizers:
        regularizer.after_phase(phase.name, session.recipe, ctx.step)


def training_step(session: Session, phases: list[Phase], optimizers, parameters, source: BatchSource, pairs: int,
                  step: int, guard: DivergenceGuard | None = None) -> None:
    """One step: this rank's share of the batch, one shared step context, every phase in order."""
    ctx = StepContext(session.recipe, source.next(session.device), step, pairs, session.cfg.trainer.pair_batch,
                      session.autocast(), session.info.rank, session.info.world_size)
    with ctx.autocast:
        for regularizer in session.regularizers:
            regularizer.begin_step(ctx)
    for phase in phases:
        if phase.due(step):
            run_phase(phase, ctx, session, optimizers[phase.optimizer], parameters[phase.name], guard)


@dataclass
class Training:
    """A configuration built to train, as `msgan train` builds it (the loop; `runner.StepRunner` for
    the benchmarks and tests): its session, phases and optimisers, batch source and divergence record."""

    session: Session
    phases: list[Phase]
    optimizers: dict[str, torch.optim.Optimizer]
    parameters: dict[str, list[torch.nn.Parameter]]   # per phase: those whose gradients it produces
    pairs: int                                         # samples per condition (samples_per_condition)
    source: BatchSource
    guard: DivergenceGuard
    steps_per_epoch: int                               # full global batches in one pass over the training split

    def step(self, step: int) -> None:
        training_step(self.session, self.phases, self.optimizers, self.parameters, self.source, self.pairs, step,
                      self.guard)


def build_training(cfg: DictConfig, info: distributed.ProcessInfo | None = None) -> Training:
    stats.clear()   # nothing reported by an earlier run of this process is this run's
    session = build_session(cfg, info)
    info = session.info
    check_trainer_options(cfg.trainer, session.regularizers, info.world_size)
    phases, optimizers = phases_and_optimizers(session)
    try:
        sampler = EpochSampler(len(session.data.train), cfg.trainer.batch_size, cfg.seed, info.rank, info.world_size)
    except ValueError as error:
        raise UserError(f"{error}: lower trainer.batch_size.") from None
    return Training(session, phases, optimizers, phase_parameters(session.recipe, phases),
                    samples_per_condition(session.regularizers), session.data.train.source(sampler, cfg.seed),
                    DivergenceGuard([phase.name for phase in phases], session.device), sampler.steps_per_epoch)


def phases_and_optimizers(session: Session) -> tuple[list[Phase], dict[str, torch.optim.Optimizer]]:
    """The model's phases and optimisers, with what the regularisers add (MDGAN's encoder and
    manifold discriminator)."""
    phases = session.recipe.phases()
    optimizers = session.recipe.configure_optimizers()
    for regularizer in session.regularizers:
        phases = regularizer.phases(phases)
        regularizer.configure_optimizers(session.recipe, optimizers)
    return phases, optimizers


def phase_parameters(recipe: Recipe, phases: list[Phase]) -> dict[str, list[torch.nn.Parameter]]:
    """The parameters whose gradients each phase produces (averaged across ranks)."""
    return {p.name: [q for net in p.networks for q in getattr(recipe, net).parameters()] for p in phases}


DECAY_UNITS = ("step", "epoch")


def learning_rate_schedules(optimizers: dict[str, torch.optim.Optimizer], max_steps: int, decay_from: float | None,
                            every: str = "step", steps_per_epoch: int = 1) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """One scheduler per optimiser, stepped once per training step: the learning rate constant for the
    first `decay_from` of the run, then decaying linearly. None: constant.

    `every="step"`: a new rate every step, reaching 0 at `max_steps` (the paper's StarGAN schedule).
    `every="epoch"`: the reference codes' 'lambda' rule (BicycleGAN's and MSGAN's Pix2Pix, DRIT), a new
    rate once per epoch of `steps_per_epoch` steps: at epoch e (from 0) of n, with n_const = decay_from
    x n constant ones, the rate is lr x (1 - max(0, e - n_const) / (n - n_const + 1)), so the last epoch
    runs at 2 / (n - n_const + 1) of it (Pix2Pix's 200 epochs: 2/101), not at 0."""
    if decay_from is None:
        return {}
    if not 0 <= decay_from < 1:
        raise UserError(f"trainer.lr_decay_from must be a fraction of max_steps in [0, 1), or null; got {decay_from}.")
    if every not in DECAY_UNITS:
        raise UserError(f"trainer.lr_decay_every must be step or epoch; got {every!r}.")
    if every == "epoch":
        epochs = max_steps / steps_per_epoch
        constant, decaying = decay_from * epochs, epochs - decay_from * epochs

        def factor(step: int) -> float:
            return 1.0 - max(0.0, step // steps_per_epoch - constant) / (decaying + 1)
    else:
        start = decay_from * max_steps

        def factor(step: int) -> float:
            return 1.0 if step <= start else max(0.0, (max_steps - step) / (max_steps - start))

    return {name: torch.optim.lr_scheduler.LambdaLR(optimizer, factor) for name, optimizer in optimizers.items()}
