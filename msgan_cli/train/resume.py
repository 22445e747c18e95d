"""What a checkpoint holds and how a run resumes from it: the training state (weights, optimisers,
schedules, sampler, every rank's RNG, regularisers' and the loop's trackers' states, the config),
the check that a resume continues the same run, and the restore."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from msgan_cli.config import flat, without_retired
from msgan_cli.core import distributed
from msgan_cli.data.base import BatchSource
from msgan_cli.errors import UserError
from msgan_cli.train.session import Session

log = logging.getLogger(__name__)

# What may differ between a checkpoint's config and the run that resumes it: how long to train, what
# to log and evaluate, where it runs, and where the data lives. Anything else would mix two runs under
# one name, so it is refused (trainer.allow_config_change=true accepts it, and the run says so).
RESUMABLE_CHANGES = re.compile(r"^(trainer\.(max_steps|log_every|sample_every|checkpoint_every|eval_every|progress_bar|"
                               r"best_metric|best_mode|spectrum\..*|allow_config_change)|eval\..*|hardware\..*|"
                               r"dataset\.(root|in_memory|memory_limit_mb|workers))$")


def config_changes(saved: dict, current: dict) -> list[str]:
    """The keys whose value differs between a checkpoint's resolved config and this run's, except those
    a resume may change (RESUMABLE_CHANGES), as 'key: old -> new'."""
    before, after = flat(without_retired(saved)), flat(current)
    changed = sorted(key for key in before.keys() | after.keys()
                     if before.get(key, "<absent>") != after.get(key, "<absent>") and not RESUMABLE_CHANGES.match(key))
    return [f"{key}: {before.get(key, '<absent>')} -> {after.get(key, '<absent>')}" for key in changed]


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
    source.load_state_dict(state["sampler"])
    for regularizer in session.regularizers:
        regularizer.load_state_dict(state["regularizers"].get(regularizer.name, {}))
    rank_states = state["rng"]["ranks"]
    if len(rank_states) != session.info.world_size:
        raise UserError(f"Checkpoint {path} was written by {len(rank_states)} processes; resume it with "
                        f"{len(rank_states)} (this run has {session.info.world_size}).")
    set_rng_state(rank_states[session.info.rank])
    return int(state["step"])
