"""Checkpoints: written atomically, read with `torch.load(..., weights_only=True)`.

A checkpoint holds everything a resume needs (networks, optimisers, step, data position, RNG states,
regulariser state) and the resolved config, as plain tensors, numbers, strings, lists and dicts.
"""
from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import torch

from msgan_cli.config import flat
from msgan_cli.errors import UserError
from msgan_cli.jsonfiles import temporary_beside

CHECKPOINT_FORMAT = 1


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename over `path`.

    A rename within one folder is atomic, so a kill at any moment leaves either the previous
    checkpoint or the new one, never a half-written file under the real name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path)
    try:
        with open(temporary, "wb") as f:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)   # the previous file stays; no stray half-written copy either
        if isinstance(error, OSError):     # disk full, quota, read-only: the user can fix it
            raise UserError(f"The checkpoint {path} could not be written ({error.strerror or error}); the previous "
                            f"one is intact. Free space there (or choose another hydra.run.dir), then run the "
                            f"same command again to resume.") from None
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint; an unreadable one is a UserError that says how to proceed (nothing is deleted).
    The archive's checksums are verified first: torch.load would read damaged tensor bytes silently."""
    problem = archive_problem(path)
    if problem is None:
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception:  # any failure to unpickle means the file is not a usable checkpoint
            problem = "it holds objects other than tensors, numbers and strings, so msgan did not write it"
    if problem is not None:
        raise UserError(f"Checkpoint {path} cannot be read: {problem}. Move it away to start this run afresh "
                        f"(nothing was deleted).")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a msgan checkpoint of format {CHECKPOINT_FORMAT}: move it away to start afresh.")
    return state


def archive_problem(path: Path) -> str | None:
    """What is wrong with a checkpoint file as an archive, in our words (torch's own messages are about
    its internals), or None when it is whole and every entry's checksum matches."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty"
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            starts_as_zip = f.read(4) == b"PK\x03\x04"
        if starts_as_zip:   # the archive's directory, at its end, is missing or broken
            return f"it is a PyTorch checkpoint cut short or damaged at its end ({size:,} bytes)"
        return f"it is not a PyTorch checkpoint (a zip archive), {size:,} bytes of something else"
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"the archive is damaged ({error})"
    return None if damaged is None else f"its entry {damaged} is damaged (checksum mismatch)"


# What may differ between a checkpoint's config and the run that resumes it: how long to train, what
# to log and evaluate, where it runs, and where the data lives. Anything else would mix two runs under
# one name, so it is refused (trainer.allow_config_change=true accepts it, and the run says so).
RESUMABLE_CHANGES = re.compile(r"^(trainer\.(max_steps|log_every|sample_every|checkpoint_every|eval_every|progress_bar|"
                               r"best_metric|best_mode|spectrum\..*|allow_config_change)|eval\..*|hardware\..*|"
                               r"dataset\.(root|in_memory|memory_limit_mb|workers))$")


def config_changes(saved: dict, current: dict) -> list[str]:
    """The keys whose value differs between a checkpoint's resolved config and this run's, except those
    a resume may change (RESUMABLE_CHANGES), as 'key: old -> new'."""
    before, after = flat(saved), flat(current)
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


class BestCheckpoint:
    """Keeps `checkpoints/best.pt`, the model at the best value so far of one metric (`trainer.best_metric`,
    e.g. `fid/classifier` with `best_mode: min`). Its record (value, step) travels in last.pt, so a
    resumed run compares against the best it had already seen."""

    MODES = ("min", "max")

    def __init__(self, path: Path, metric: str | None, mode: str, metric_names: list[str]):
        if mode not in self.MODES:
            raise UserError(f"trainer.best_mode must be min or max; got '{mode}'.")
        if metric is not None and metric.split("/")[0] not in metric_names:
            raise UserError(f"trainer.best_metric={metric} is not produced by this run's metrics "
                            f"({', '.join(metric_names) or 'none'}): add its metric to eval.metrics or change it.")
        self.path, self.metric, self.mode = path, metric, mode
        self.value: float | None = None
        self.step: int | None = None

    def update(self, step: int, metrics: dict[str, float], model_state: dict, write: bool) -> bool:
        """Record `metrics` of `step`; write best.pt (on the writing rank) when the metric improved."""
        if self.metric is None:
            return False
        if self.metric not in metrics:
            raise UserError(f"trainer.best_metric={self.metric} is not among the metrics computed "
                            f"({', '.join(sorted(metrics))}).")
        value = metrics[self.metric]
        better = self.value is None or (value < self.value if self.mode == "min" else value > self.value)
        if better:
            self.value, self.step = value, step
            if write:
                save_checkpoint({"step": step, "model": model_state, "metric": self.metric, "value": value}, self.path)
        return better

    def state_dict(self) -> dict:
        return {"value": self.value, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.step = state.get("value"), state.get("step")
