"""What a checkpoint holds and how a run resumes from it: the training state (weights, optimisers,
schedules, sampler, every rank's RNG, regularisers' and the loop's trackers' states, the config),
the check that a resume continues the same run, and the restore."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from msgan_cli.config import config_changes
from msgan_cli.core import distributed
from msgan_cli.data.base import BatchSource
from msgan_cli.errors import UserError
from msgan_cli.train.session import Session

log = logging.getLogger(__name__)

def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    # RNG states are CPU byte tensors whatever device the checkpoint was mapped to.
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def training_state(step: int, session: Session, optimizers, schedules, source: BatchSource, trackers: dict) -> dict:
    """Everything a resume needs; `trackers` are the loop's own stateful helpers (best checkpoint,
    spectral monitor, weight average), each saved under its name."""
    return {
        "step": step,
        "model": session.recipe.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "schedules": {name: schedule.state_dict() for name, schedule in schedules.items()},
        "sampler": source.state_dict(),
        "rng": {"ranks": distributed.gather_objects(rng_state())},   # each rank's own stream
        "regularizers": {r.name: r.state_dict() for r in session.regularizers},
        **{name: tracker.state_dict() for name, tracker in trackers.items()},
        "config": OmegaConf.to_container(session.cfg, resolve=True),
    }


def check_same_run(state: dict, cfg: DictConfig, path: Path) -> None:
    """A resume continues the run the checkpoint belongs to: a config that differs in more than what a
    resume may change (checkpoint.RESUMABLE_CHANGES) is refused, naming the keys."""
    changes = config_changes(state.get("config", {}), OmegaConf.to_container(cfg, resolve=True)) if "config" in state else []
    if not changes:
        return
    listed = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
    if cfg.trainer.allow_config_change:
        log.warning("Resuming %s with a changed configuration, as trainer.allow_config_change asks: %s", path, listed)
        return
    raise UserError(f"{path} belongs to a run with another configuration ({listed}). Resuming would mix two runs "
                    f"under one name: use a new hydra.run.dir, or add trainer.allow_config_change=true to continue "
                    f"this run with the new settings anyway.")


def restore(state: dict, path: Path, session: Session, optimizers, schedules, source: BatchSource, trackers: dict) -> int:
    """Puts a checkpoint's state back into the run's objects (check_same_run has passed); returns its step.
    A state that does not fit them is one sentence, not a traceback."""
    configured = {name: hyperparameters(optimizer) for name, optimizer in optimizers.items()}   # this run's config
    try:
        session.recipe.load_state_dict(state["model"])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, schedule in schedules.items():   # absent in checkpoints of constant-rate runs
            if name in state.get("schedules", {}):
                schedule.load_state_dict(state["schedules"][name])
        for name, tracker in trackers.items():   # after the model: the weight average may start from it
            tracker.load_state_dict(state.get(name, {}))   # absent in checkpoints older than the tracker
    except (KeyError, RuntimeError, ValueError) as error:
        raise UserError(f"Checkpoint {path} does not fit this run's model/optimisers ({str(error).splitlines()[0][:160]}). "
                        f"Resume with the config it was made with, or use a new run directory.") from None
    for name, optimizer in optimizers.items():
        apply_hyperparameters(optimizer, configured[name], schedules.get(name))
    for name, schedule in schedules.items():
        schedule_at(schedule, int(state["step"]), fresh=name not in state.get("schedules", {}))
    source.load_state_dict(state["sampler"])
    for regularizer in session.regularizers:
        regularizer.load_state_dict(state["regularizers"].get(regularizer.name, {}))
    rank_states = state["rng"]["ranks"]
    if len(rank_states) != session.info.world_size:
        raise UserError(f"Checkpoint {path} was written by {len(rank_states)} processes; resume it with "
                        f"{len(rank_states)} (this run has {session.info.world_size}).")
    set_rng_state(rank_states[session.info.rank])
    return int(state["step"])


def schedule_at(schedule, step: int, fresh: bool) -> None:
    """The rates of this run's schedule at the restored step, from the first resumed step on: a schedule the
    checkpoint did not have (a constant-rate run resumed with trainer.lr_decay_from) starts at `step`, not
    at 0, and a changed one (its decay options, trainer.max_steps) sets the rate now rather than one step
    late. Unchanged, the rates are the restored ones to the bit (the same product, base x factor(step))."""
    if fresh:
        schedule.last_epoch = step
    for group, base, factor in zip(schedule.optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas):
        group["lr"] = base * factor(schedule.last_epoch)
    schedule._last_lr = [group["lr"] for group in schedule.optimizer.param_groups]


# The options of an optimiser's parameter groups that the config sets (the rest is its state).
HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay")


def hyperparameters(optimizer: torch.optim.Optimizer) -> list[dict]:
    return [{key: group[key] for key in HYPERPARAMETERS if key in group} for group in optimizer.param_groups]


def apply_hyperparameters(optimizer: torch.optim.Optimizer, configured: list[dict], schedule=None) -> None:
    """After an optimiser's state is restored, its groups carry the checkpoint's hyper-parameters: put back
    this run's where they differ (a resume with trainer.allow_config_change=true and new learning rates
    or betas; unchanged values are left as restored, bit for bit). A learning rate under a schedule is
    its base rate: the schedule's base becomes the new rate, and the rate now the new base times the
    schedule's factor at the restored step."""
    for index, (group, wanted) in enumerate(zip(optimizer.param_groups, configured)):
        for key, value in wanted.items():
            if key == "lr":
                base = schedule.base_lrs[index] if schedule is not None else group["lr"]
                if value == base:
                    continue
                log.warning("Resuming with a new learning rate %g (was %g)", value, base)
                if schedule is None:
                    group["lr"] = value
                else:
                    schedule.base_lrs[index] = group["initial_lr"] = value
                    group["lr"] = value * schedule.lr_lambdas[index](schedule.last_epoch)
            elif group[key] != value:
                log.warning("Resuming with a new %s %s (was %s)", key, value, group[key])
                group[key] = value
