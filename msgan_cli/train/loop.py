"""The training loop: one run of `msgan train` from its set-up to its final evaluation. It knows
nothing about any particular model or regulariser (docs/architecture.md#roles); a step is step.py's.

`train(cfg, run_dir)` holds the run directory's lock and runs a `TrainingRun` through its stages:
set-up (build everything, check every option), resume (from checkpoints/last.pt, or nothing to do
for a finished run), start (record where it runs, open TensorBoard), the steps with their ticks
(log, sample grids, spectrum, evaluation, checkpoint), and the end (the final checkpoint, metrics,
grids and records). A signal ends the steps with a checkpoint; a divergence ends them without one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import signal
import sys
import time
import warnings
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torchvision.utils import save_image
from tqdm import tqdm

from msgan_cli.config import check_options
from msgan_cli.core import distributed
from msgan_cli.core.checkpoints import load_checkpoint, save_checkpoint
from msgan_cli.core.jsonfiles import read_json, remove_stale_temporaries, write_json
from msgan_cli.core.run_files import RunFiles
from msgan_cli.core.stats import read_back
from msgan_cli.core.sweep_process import launching_sweep, sweep_ended
from msgan_cli.errors import UserError
from msgan_cli.evaluate import evaluate_run, resolve_metric_names
from msgan_cli.sampling import sample_grids
from msgan_cli.train.best import BestCheckpoint
from msgan_cli.train.divergence import Diverged
from msgan_cli.train.ema import evaluated_weights, weight_average
from msgan_cli.train.placement import mark_last_attempt, placement, placement_hyperparameters, record_placement, record_refusal
from msgan_cli.train.resume import check_same_run, restore, training_state
from msgan_cli.train.runlock import run_directory_lock
from msgan_cli.train.spectrum import SpectralMonitor
from msgan_cli.train.step import build_training, learning_rate_schedules
from msgan_cli.train.tensorboard import RunWriter

log = logging.getLogger(__name__)


SWEEP_ENDED = "the end of the sweep's process"   # what stopped a run whose sweep process was killed


class StopSignal:
    """Turns SIGTERM / SIGUSR1 (what SLURM sends before a preemption or the time limit) and SIGINT (Ctrl-C)
    into a flag the loop checks after each step, so the run writes a checkpoint and exits instead of
    dying mid-step. A second Ctrl-C stops at once, without the checkpoint (KeyboardInterrupt).
    A run in a worker of a parallel sweep also stops so when the sweep's process ends under it (`kill
    <its pid>` signals it alone): otherwise it would train on unseen, holding its folder's lock.
    `restore()` puts the process's previous handlers back when the run ends."""

    SIGNALS = tuple(sig for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGUSR1", None)) if sig is not None)

    def __init__(self):
        self.received: int | None = None
        self.sweep = launching_sweep()
        self.sweep_ended = False
        self.previous = {}
        for sig in self.SIGNALS:
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. a test runner's worker): no handler
                pass

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.received is not None:
            raise KeyboardInterrupt   # asked twice: the user wants out now
        if signum == signal.SIGINT:
            log.warning("Ctrl-C: stopping after this step with a checkpoint (press it again to stop at once, "
                        "losing the steps since the last checkpoint).")
        self.received = signum

    def any_rank(self) -> bool:
        if not self.sweep_ended and sweep_ended(self.sweep):
            log.warning("The sweep's process (pid %d) has ended: stopping after this step with a checkpoint.",
                        self.sweep)
            self.sweep_ended = True
        flag = torch.tensor([int(self.received is not None or self.sweep_ended)])
        if distributed.is_distributed():
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag)

    def cause(self) -> str:
        """What stopped the run, for its log and run_info.json: a signal's name, or the sweep's end."""
        if self.received is not None:
            return signal.Signals(self.received).name
        return SWEEP_ENDED if self.sweep_ended else signal.SIGTERM.name   # SIGTERM: another rank received it

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def train(cfg: DictConfig, run_dir: str | Path) -> dict[str, float] | None:
    """Train (or resume) the run in `run_dir`; returns the final metrics on rank 0, None elsewhere.
    The main process holds the run directory's lock throughout: a second process on it stops at once.
    A UserError that stops the run is recorded in its run_info.json (`stopped`: the message), under
    the lock, so never in the record of another process's run."""
    run_dir = Path(run_dir)
    if sweep_ended(sweep := launching_sweep()):   # a run still queued in a worker when its sweep was stopped
        log.warning("The sweep's process (pid %d) has ended: %s is not started; running the sweep again starts it.",
                    sweep, run_dir)
        raise SystemExit(128 + signal.SIGTERM)
    info = distributed.init_process_group()
    run = None
    with ExitStack() as held:
        if info.is_main:
            try:
                held.enter_context(run_directory_lock(run_dir, "msgan train"))
            except UserError:   # in use by another process, after Hydra rewrote .hydra/ for this command
                restore_accepted_hydra(RunFiles(run_dir))
                raise
        try:
            run = TrainingRun(cfg, run_dir, info)
            return run.run()
        except UserError as error:
            if not info.is_main:
                raise
            if run is not None and run.started:
                mark_last_attempt(run_dir, stopped=str(error))
            else:   # refused before training: the folder stays as this command found it
                restore_accepted_hydra(RunFiles(run_dir))
                record_refusal(run_dir, str(error))
            raise


def accept_hydra(files: RunFiles) -> None:
    """Keep a copy of `.hydra/` as the attempt that starts training wrote it (see RunFiles.accepted_hydra)."""
    if files.config.is_file():
        files.accepted_hydra.mkdir(exist_ok=True)
        for written in files.config.parent.glob("*.yaml"):
            shutil.copy2(written, files.accepted_hydra / written.name)


def restore_accepted_hydra(files: RunFiles) -> None:
    """Put back `.hydra/` as the last attempt that started training left it (Hydra has rewritten it for the
    refused command before any check could run); nothing when no attempt ever started."""
    if files.accepted_hydra.is_dir():
        for kept in files.accepted_hydra.glob("*.yaml"):
            shutil.copy2(kept, files.config.parent / kept.name)


class TrainingRun:
    """One attempt at a run directory. Its stages, in the order `run` calls them: `__init__` (set-up),
    `resume`, `start`, then `advance` and `ticks` once per step, then `finish`."""

    def __init__(self, cfg: DictConfig, run_dir: Path, info: distributed.ProcessInfo):
        """Set-up: everything built and every option checked before anything is written. A typo or a wrong
        type is one sentence here (not in build_session: the config of an older run, read back by eval
        and sample, may hold keys since renamed)."""
        check_options(cfg)
        self.cfg, self.info, self.files = cfg, info, RunFiles(run_dir)
        self.training = build_training(cfg, info)
        self.session = self.training.session
        trainer = cfg.trainer
        # A bad metric name fails now, not at the end.
        self.metric_names = resolve_metric_names(cfg.eval.metrics, self.session.recipe, self.session.data, cfg.eval)
        self.schedules = learning_rate_schedules(self.training.optimizers, trainer.max_steps, trainer.lr_decay_from,
                                                 trainer.lr_decay_every, self.training.steps_per_epoch)
        self.best = BestCheckpoint(self.files.best_checkpoint, trainer.best_metric, trainer.best_mode, self.metric_names)
        self.average = weight_average(self.session.recipe, trainer.ema)   # what evaluation and grids use
        # The loop's own stateful helpers, each checkpointed under its name.
        self.trackers = {"best": self.best}
        if trainer.spectrum.every:
            self.trackers["spectrum"] = SpectralMonitor(trainer.spectrum)
        if self.average is not None:
            self.trackers["ema"] = self.average
        self.step = 0
        self.checkpointed_step: int | None = None   # the step of the last checkpoint this attempt wrote or resumed
        self.started = False   # whether training began: before, a refusal leaves the folder as it was
        self.writer: RunWriter | None = None
        self.where: dict = {}

    def run(self) -> dict[str, float] | None:
        finished = self.resume()
        if finished is not None:
            return finished if self.info.is_main else None
        self.start()
        stop = StopSignal()
        progress = tqdm(total=self.cfg.trainer.max_steps, initial=self.step, desc="train", unit="step",
                        dynamic_ncols=True, disable=not (self.info.is_main and self.cfg.trainer.progress_bar))
        try:
            while self.step < self.cfg.trainer.max_steps and not stop.any_rank():
                self.advance()
                progress.update(1)
                self.ticks(progress)
            progress.close()
            self.save_checkpoint()
        except Diverged as error:   # nothing more is written: the last good checkpoint stays as it was
            progress.close()
            if self.info.is_main:
                mark_last_attempt(self.files.root, diverged={"step": error.step, "what": error.what},
                                  duration_s=self.attempt_seconds())
                self.writer.close()
            raise Diverged(error.step, error.what, self.checkpointed_step) from None
        except KeyboardInterrupt:   # Ctrl-C twice: out at once; the last checkpoint written stays
            progress.close()
            log.warning("Stopped at once by a second Ctrl-C at step %d; %s.", self.step,
                        "no checkpoint was written yet: the same command starts anew" if self.checkpointed_step is None
                        else f"the checkpoint of step {self.checkpointed_step} stays")
            if self.info.is_main:
                mark_last_attempt(self.files.root, interrupted={"signal": "SIGINT", "step": self.step,
                                                                "checkpoint_step": self.checkpointed_step},
                                  duration_s=self.attempt_seconds())
                self.writer.close()
            raise
        finally:
            stop.restore()
        if stop.any_rank():
            name = stop.cause()
            log.warning("Stopped by %s at step %d; checkpoint saved. Run the same command again to resume.", name, self.step)
            if self.info.is_main:
                mark_last_attempt(self.files.root, interrupted={"signal": name, "step": self.step},
                                  duration_s=self.attempt_seconds())
                self.writer.close()
            raise SystemExit(128 + (stop.received or signal.SIGTERM))
        return self.finish()

    # --- resume and start ----------------------------------------------------------------------------
    def resume(self) -> dict[str, float] | None:
        """Continue from the run directory's checkpoint, if it has one. A run already finished is left as
        it is (its events, checkpoint and metrics): its metrics are returned and nothing else happens."""
        checkpoint = self.files.checkpoint
        if self.info.is_main:
            for stale in remove_stale_temporaries(checkpoint.parent) + remove_stale_temporaries(self.files.root):
                log.info("Removed %s, left by a write that was killed", stale)
        if checkpoint.exists():
            state = load_checkpoint(checkpoint, self.session.device)
            check_same_run(state, self.cfg, checkpoint)
            self.step = restore(state, checkpoint, self.session, self.training.optimizers, self.schedules,
                                self.training.source, self.trackers)
            self.checkpointed_step = self.step
            log.info("Resuming %s from step %d", self.files.root, self.step)
        if self.step >= self.cfg.trainer.max_steps and (finished := read_json(self.files.metrics)):
            log.info("%s already finished at step %d: nothing to do. A larger trainer.max_steps trains it on; "
                     "msgan eval run=%s re-evaluates it.", self.files.root, self.step, self.files.root)
            return finished
        distributed.broadcast_state(self.session.recipe)
        return None

    def attempt_seconds(self) -> float:
        """Wall seconds since this attempt started: recorded however it ends (finished, stopped by a signal,
        diverged), so that the time a run took is the sum over its attempts."""
        return round(time.monotonic() - self.start_time, 1)

    def start(self) -> None:
        """Record where this attempt runs (run_info.json), open TensorBoard, log the start line."""
        self.where = placement(self.info.world_size, self.session.device, self.step)
        skipped = self.session.data.skipped
        if skipped:   # what the dataset's folders held that is not in the data this run trains on
            self.where["data_skipped"] = skipped.record()
        self.started, self.start_time = True, time.monotonic()
        if not self.info.is_main:
            return
        accept_hydra(self.files)
        self.writer = RunWriter(self.files.root, self.cfg, resume_step=self.step)
        record_placement(self.files.root, self.where)
        log.info("Start: msgan train %s | config %s | from step %d of %d | %s, %s, %d process(es) | code %s%s",
                 " ".join(sys.argv[1:]), config_digest(self.cfg), self.step, self.cfg.trainer.max_steps,
                 self.where["host"], self.where["device"], self.info.world_size, self.where["code"],
                 f" | data: {skipped.describe()}" if skipped else "")

    # --- the steps ------------------------------------------------------------------------------------
    def advance(self) -> None:
        """One training step, then what follows every step: the weight average and the schedules."""
        self.training.step(self.step)
        if self.average is not None:
            self.average.update(self.step)
        self.step += 1
        with warnings.catch_warnings():   # schedules follow the step; an optimiser whose phase runs every
            # d_iter-th step only (DRIT) has not stepped yet at the first steps, which torch warns of
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            for schedule in self.schedules.values():
                schedule.step()

    def ticks(self, progress: tqdm) -> None:
        """What is due after this step: log, sample grids, spectrum, evaluation, checkpoint."""
        step, trainer = self.step, self.cfg.trainer
        if step % trainer.log_every == 0 or step == trainer.max_steps:
            self.training.guard.check()
            log_scalars(step, self.writer, progress)
        if step % trainer.sample_every == 0 and self.writer is not None:
            log_sample_grids(self.writer, self.grids(), step)
        if self.monitor is not None and step % trainer.spectrum.every == 0:
            self.monitor.update(step, self.session.recipe, self.writer)
        if trainer.eval_every and step % trainer.eval_every == 0 and step < trainer.max_steps:
            self.training.guard.check()
            self.evaluate()
        if step % trainer.checkpoint_every == 0:
            self.save_checkpoint()

    @property
    def monitor(self) -> SpectralMonitor | None:
        """The spectral monitor, in the process that logs (the main one), when spectra are logged."""
        return self.trackers.get("spectrum") if self.writer is not None else None

    def evaluate(self) -> tuple[dict[str, float], dict]:
        """The metrics now (every rank generates its share of the samples), logged as `Metrics/<name>`;
        keeps checkpoints/best.pt (of the weights evaluated: the average with trainer.ema). Uses its own
        seeded generators: the training RNG is not touched."""
        with evaluated_weights(self.average):
            metrics, protocol = evaluate_run(self.session, self.metric_names, self.cfg.eval, self.step)
            self.best.update(self.step, metrics, self.session.recipe.state_dict(), write=self.info.is_main)
        if self.writer is not None:
            self.writer.scalars(self.step, {f"Metrics/{name}": value for name, value in metrics.items()})
        return metrics, protocol

    def grids(self) -> dict[str, torch.Tensor]:
        """The sample grids of the weights evaluated (the average with trainer.ema), from the run's seed."""
        with evaluated_weights(self.average):
            return sample_grids(self.session.recipe, self.session.data, self.session.device, seed=self.cfg.seed)

    def save_checkpoint(self) -> None:
        """Write last.pt, unless training has diverged (then Diverged is raised and the previous file stays)."""
        self.training.guard.check(self.session.recipe, self.step)
        distributed.broadcast_state(self.session.recipe)   # BatchNorm statistics: rank 0's, as DDP would keep them
        state = training_state(self.step, self.session, self.training.optimizers, self.schedules,
                               self.training.source, self.trackers)   # every rank: it gathers RNG states
        if self.info.is_main:
            save_checkpoint(state, self.files.checkpoint)
        self.checkpointed_step = self.step
        distributed.barrier()

    # --- the end --------------------------------------------------------------------------------------
    def finish(self) -> dict[str, float] | None:
        """The final evaluation, grids and records: metrics.json, eval_protocol.json, samples/final*.png,
        TensorBoard's hyper-parameters, the attempt's end in run_info.json."""
        step, trainer = self.step, self.cfg.trainer
        metrics, protocol = self.evaluate()   # every rank
        if self.best.step == step:   # the final weights are the best: last.pt must record it for a later resume
            self.save_checkpoint()
        if self.info.is_main:
            self.files.samples.mkdir(exist_ok=True)
            grids = self.grids()
            for name, grid in grids.items():   # final.png, or final-AtoB.png and final-BtoA.png
                save_image(grid, self.files.final_grid(name))
            # The final grids and spectrum reach TensorBoard whatever the run's length (a run shorter than
            # sample_every had no image at all), unless the last tick already logged them at this step.
            if step % trainer.sample_every:
                log_sample_grids(self.writer, grids, step)
            if self.monitor is not None and step % trainer.spectrum.every:
                self.monitor.update(step, self.session.recipe, self.writer)
            write_json(self.files.metrics, metrics)
            write_json(self.files.protocol, protocol)
            self.writer.hyperparameters(metrics, step, placement_hyperparameters(self.where))
            self.writer.close()
        if self.info.world_size > 1:
            gap = distributed.replica_max_difference(self.session.recipe)
            if self.info.is_main:
                write_json(self.files.distributed, {"world_size": self.info.world_size, "replica_max_abs_diff": gap})
        if self.info.is_main:
            duration = self.attempt_seconds()
            mark_last_attempt(self.files.root, finished_step=step, duration_s=duration)
            log.info("End: step %d, %s of training and evaluation in this attempt", step,
                     timedelta(seconds=round(duration)))
        distributed.barrier()
        return metrics if self.info.is_main else None


def config_digest(cfg: DictConfig) -> str:
    """A short fingerprint of the resolved config: two runs with the same digest ran the same settings."""
    text = json.dumps(OmegaConf.to_container(cfg, resolve=True), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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
