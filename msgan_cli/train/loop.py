"""The training loop. It walks the phases the model supplies and adds the regularisers due in each;
it knows nothing about any particular model or regulariser (DESIGN.md section 2).

Per step: draw this rank's share of the batch; make one shared step context; for each phase: zero
grads, accumulate the objective (model terms + regularisers, each reported as `Loss/<phase>/<term>`),
average gradients across ranks, step. Then logging, sample grids and checkpoints at their ticks;
at the end the final evaluation (`metrics.json`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import signal
import sys
import time
import warnings
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torchvision.utils import save_image
from tqdm import tqdm

from msgan_cli.config import check_options
from msgan_cli.data import EpochSampler
from msgan_cli.data.base import BatchSource
from msgan_cli.errors import UserError
from msgan_cli.evaluate import evaluate_run, resolve_metric_names
from msgan_cli.models import Phase, Recipe
from msgan_cli.regularizers import Regularizer
from msgan_cli.sampling import sample_grids
from msgan_cli.train import distributed
from msgan_cli.jsonfiles import read_json, remove_stale_temporaries, write_json
from msgan_cli.train.checkpoint import BestCheckpoint, load_checkpoint, save_checkpoint
from msgan_cli.train.context import PAIR_BATCH_LAYOUTS, StepContext
from msgan_cli.train.divergence import Diverged, DivergenceGuard
from msgan_cli.train.ema import WeightAverage, evaluated_weights, weight_average
from msgan_cli.train.placement import mark_last_attempt, placement, placement_hyperparameters, record_placement
from msgan_cli.train.resume import check_same_run, restore, training_state
from msgan_cli.train.runlock import run_directory_lock
from msgan_cli.train.session import Session, build_session
from msgan_cli.train.spectrum import SpectralMonitor
from msgan_cli.train import stats
from msgan_cli.train.stats import read_back, report
from msgan_cli.train.tensorboard import RunWriter

log = logging.getLogger(__name__)


class StopSignal:
    """Turns SIGTERM / SIGUSR1 (what SLURM sends before a preemption or the time limit) into a flag the
    loop checks after each step, so the run writes a checkpoint and exits instead of dying mid-step."""

    def __init__(self):
        self.received: int | None = None
        for sig in (signal.SIGTERM, getattr(signal, "SIGUSR1", None)):
            if sig is not None:
                try:
                    signal.signal(sig, self._handle)
                except ValueError:  # not the main thread (e.g. a test runner's worker): no handler
                    pass

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def any_rank(self) -> bool:
        flag = torch.tensor([int(self.received is not None)])
        if distributed.is_distributed():
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag)


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
    for regularizer in regularizers:
        if per_rank % regularizer.batch_multiple:
            raise UserError(f"reg={regularizer.name} needs a per-process batch that is a multiple of "
                            f"{regularizer.batch_multiple}; got {per_rank}: change trainer.batch_size.")
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
                terms = session.recipe.phase_losses(phase.name, ctx)
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
                    DivergenceGuard([phase.name for phase in phases], session.device))


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


def learning_rate_schedules(optimizers: dict[str, torch.optim.Optimizer], max_steps: int,
                            decay_from: float | None) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """The reference codes' schedule, one scheduler per optimiser, stepped once per training step: the
    learning rate constant until `decay_from * max_steps`, then linearly down to 0 at `max_steps`
    (BicycleGAN / DRIT: 'lambda' rule; StarGAN the same over its last 100,000 steps). None: constant."""
    if decay_from is None:
        return {}
    if not 0 <= decay_from < 1:
        raise UserError(f"trainer.lr_decay_from must be a fraction of max_steps in [0, 1), or null; got {decay_from}.")
    start = decay_from * max_steps

    def factor(step: int) -> float:
        return 1.0 if step <= start else max(0.0, (max_steps - step) / (max_steps - start))

    return {name: torch.optim.lr_scheduler.LambdaLR(optimizer, factor) for name, optimizer in optimizers.items()}


def train(cfg: DictConfig, run_dir: str | Path) -> dict[str, float] | None:
    """Train (or resume) the run in `run_dir`; returns the final metrics on rank 0, None elsewhere.
    The main process holds the run directory's lock throughout: a second process on it stops at once.
    A UserError that stops the run is recorded in its run_info.json (`stopped`: the message), under
    the lock, so never in the record of another process's run."""
    run_dir = Path(run_dir)
    info = distributed.init_process_group()
    with run_directory_lock(run_dir) if info.is_main else nullcontext():
        try:
            return train_locked(cfg, run_dir, info)
        except UserError as error:
            if info.is_main:
                mark_last_attempt(run_dir, stopped=str(error))
            raise


def train_locked(cfg: DictConfig, run_dir: Path, info: distributed.ProcessInfo) -> dict[str, float] | None:
    # A typo or a wrong type is one sentence before anything starts (here, not in build_session: the
    # config of an older run, read back by eval and sample, may hold keys since renamed).
    check_options(cfg)
    training = build_training(cfg, info)
    session, optimizers, source, guard = training.session, training.optimizers, training.source, training.guard
    recipe, data, trainer = session.recipe, session.data, cfg.trainer
    metric_names = resolve_metric_names(cfg.eval.metrics, recipe, data, cfg.eval)   # a bad name fails now, not at the end
    schedules = learning_rate_schedules(optimizers, trainer.max_steps, trainer.lr_decay_from)

    checkpoint_path = run_dir / "checkpoints" / "last.pt"
    if info.is_main:
        for stale in remove_stale_temporaries(checkpoint_path.parent) + remove_stale_temporaries(run_dir):
            log.info("Removed %s, left by a write that was killed", stale)
    best = BestCheckpoint(run_dir / "checkpoints" / "best.pt", trainer.best_metric, trainer.best_mode, metric_names)
    trackers = {"best": best}
    if trainer.spectrum.every:
        trackers["spectrum"] = SpectralMonitor(trainer.spectrum)
    average = weight_average(recipe, trainer.ema)   # what evaluation and grids use, when trainer.ema is set
    if average is not None:
        trackers["ema"] = average
    step = 0
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, session.device)
        check_same_run(state, cfg, checkpoint_path)
        step = restore(state, checkpoint_path, session, optimizers, schedules, source, trackers)
        log.info("Resuming %s from step %d", run_dir, step)
    if step >= trainer.max_steps and (finished := read_json(run_dir / "metrics.json")):
        # A finished run run again changes nothing (its events, checkpoint and metrics stay as they are).
        log.info("%s already finished at step %d: nothing to do. A larger trainer.max_steps trains it on; "
                 "msgan eval run=%s re-evaluates it.", run_dir, step, run_dir)
        return finished if info.is_main else None
    distributed.broadcast_state(recipe)

    where = placement(info.world_size, session.device, step)
    writer = RunWriter(run_dir, cfg, resume_step=step) if info.is_main else None
    if info.is_main:
        record_placement(run_dir, where)
        log.info("Start: msgan train %s | config %s | from step %d of %d | %s, %s, %d process(es) | code %s",
                 " ".join(sys.argv[1:]), config_digest(cfg), step, trainer.max_steps, where["host"], where["device"],
                 info.world_size, where["code"])
    started = time.monotonic()
    monitor = trackers.get("spectrum") if writer is not None else None   # it logs: the main process only
    stop = StopSignal()
    progress = tqdm(total=trainer.max_steps, initial=step, desc="train", unit="step", dynamic_ncols=True,
                    disable=not (info.is_main and trainer.progress_bar))
    try:
        while step < trainer.max_steps and not stop.any_rank():
            training.step(step)
            if average is not None:
                average.update(step)
            step += 1
            with warnings.catch_warnings():   # schedules follow the step; an optimiser whose phase runs every
                # d_iter-th step only (DRIT) has not stepped yet at the first steps, which torch warns of
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
                for schedule in schedules.values():
                    schedule.step()
            progress.update(1)
            if step % trainer.log_every == 0 or step == trainer.max_steps:
                guard.check()
                log_scalars(step, writer, progress)
            if step % trainer.sample_every == 0 and writer is not None:
                log_sample_grids(writer, current_grids(session, average), step)
            if monitor is not None and step % trainer.spectrum.every == 0:
                monitor.update(step, recipe, writer)
            if trainer.eval_every and step % trainer.eval_every == 0 and step < trainer.max_steps:
                guard.check()
                evaluate_during_training(step, session, metric_names, writer, best, average)
            if step % trainer.checkpoint_every == 0:
                save_run_checkpoint(checkpoint_path, step, session, optimizers, schedules, source, trackers, guard)
        progress.close()
        save_run_checkpoint(checkpoint_path, step, session, optimizers, schedules, source, trackers, guard)
    except Diverged as error:   # nothing more is written: the last good checkpoint stays as it was
        progress.close()
        if info.is_main:
            mark_last_attempt(run_dir, diverged={"step": error.step, "what": error.what})
            writer.close()
        raise
    if stop.any_rank():
        log.warning("Stopped by a signal at step %d; checkpoint saved. Run the same command again to resume.", step)
        if writer is not None:
            writer.close()
        raise SystemExit(128 + (stop.received or signal.SIGTERM))

    metrics, protocol = evaluate_during_training(step, session, metric_names, writer, best, average)   # every rank
    if best.step == step:   # the final weights are the best: last.pt must record it for a later resume
        save_run_checkpoint(checkpoint_path, step, session, optimizers, schedules, source, trackers, guard)
    if info.is_main:
        samples_dir = run_dir / "samples"
        samples_dir.mkdir(exist_ok=True)
        grids = current_grids(session, average)
        for name, grid in grids.items():   # final.png, or final-AtoB.png and final-BtoA.png
            save_image(grid, samples_dir / ("final.png" if name == "grid" else f"final-{name}.png"))
        # The final grids and spectrum reach TensorBoard whatever the run's length (a run shorter than
        # sample_every had no image at all), unless the last tick already logged them at this step.
        if step % trainer.sample_every:
            log_sample_grids(writer, grids, step)
        if monitor is not None and step % trainer.spectrum.every:
            monitor.update(step, recipe, writer)
        write_json(run_dir / "metrics.json", metrics)
        write_json(run_dir / "eval_protocol.json", protocol)
        writer.hyperparameters(metrics, step, placement_hyperparameters(where))
        writer.close()
    if info.world_size > 1:
        gap = distributed.replica_max_difference(recipe)
        if info.is_main:
            write_json(run_dir / "distributed.json", {"world_size": info.world_size, "replica_max_abs_diff": gap})
    if info.is_main:
        duration = time.monotonic() - started
        mark_last_attempt(run_dir, finished_step=step, duration_s=round(duration, 1))
        log.info("End: step %d, %s of training and evaluation in this attempt", step, timedelta(seconds=round(duration)))
    distributed.barrier()
    return metrics if info.is_main else None


def config_digest(cfg: DictConfig) -> str:
    """A short fingerprint of the resolved config: two runs with the same digest ran the same settings."""
    text = json.dumps(OmegaConf.to_container(cfg, resolve=True), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def evaluate_during_training(step: int, session: Session, metric_names: list[str], writer: RunWriter | None,
                             best: BestCheckpoint, average: WeightAverage | None) -> tuple[dict[str, float], dict]:
    """The metrics now (every rank generates its share of the samples), logged as `Metrics/<name>`;
    keeps checkpoints/best.pt (of the weights evaluated: the average with trainer.ema). Uses its own seeded
    generators: the training RNG is not touched."""
    with evaluated_weights(average):
        metrics, protocol = evaluate_run(session, metric_names, session.cfg.eval, step)
        best.update(step, metrics, session.recipe.state_dict(), write=session.info.is_main)
    if writer is not None:
        writer.scalars(step, {f"Metrics/{name}": value for name, value in metrics.items()})
    return metrics, protocol


def current_grids(session: Session, average: WeightAverage | None) -> dict[str, torch.Tensor]:
    """The sample grids of the weights evaluated (the average with trainer.ema), from the run's seed."""
    with evaluated_weights(average):
        return sample_grids(session.recipe, session.data, session.device, seed=session.cfg.seed)


def log_sample_grids(writer: RunWriter, grids: dict[str, torch.Tensor], step: int) -> None:
    """`Samples/grid`, or one image per translation direction (`Samples/AtoB`, `Samples/BtoA`)."""
    for name, grid in grids.items():
        writer.image(f"Samples/{name}", grid, step)


def log_scalars(step: int, writer: RunWriter | None, progress: tqdm) -> None:
    """Average what was reported since the last tick over steps and ranks; the step's only host sync."""
    scalars = read_back(distributed.all_reduce_mean)   # every rank has reported the same names
    if not scalars:
        return
    if writer is not None:
        writer.scalars(step, scalars)
        log.info("step %d: %s", step, ", ".join(f"{n.removeprefix('Loss/')}={v:.4g}" for n, v in scalars.items()
                                                  if n.startswith("Loss/")))
    progress.set_postfix({n.removeprefix("Loss/").replace("/total", ""): f"{v:.3f}"
                          for n, v in scalars.items() if n.endswith("/total")})


def save_run_checkpoint(path: Path, step: int, session: Session, optimizers, schedules, source: BatchSource,
                        trackers: dict, guard: DivergenceGuard) -> None:
    """Write last.pt, unless training has diverged (then Diverged is raised and the previous file stays)."""
    guard.check(session.recipe, step)
    distributed.broadcast_state(session.recipe)   # BatchNorm statistics: rank 0's, as DDP would keep them
    state = training_state(step, session, optimizers, schedules, source, trackers)   # every rank: it gathers RNG states
    if session.info.is_main:
        save_checkpoint(state, path)
    distributed.barrier()
