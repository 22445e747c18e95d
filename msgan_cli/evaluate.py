"""Evaluation: the metrics of a session (end of training) or of a finished run (`msgan eval run=DIR`)."""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from msgan_cli.data import Data
from msgan_cli.errors import UserError
from msgan_cli.metrics import METRICS, EvalContext
from msgan_cli.models import Recipe
from msgan_cli.train.checkpoint import load_checkpoint
from msgan_cli.train.distributed import ProcessInfo
from msgan_cli.train.session import build_session

log = logging.getLogger(__name__)


def resolve_metric_names(requested, recipe: Recipe, data: Data) -> list[str]:
    """`auto` means every metric that applies; a named metric must exist and apply, or UserError."""
    if requested in (None, "auto") or (isinstance(requested, (list, ListConfig)) and list(requested) == ["auto"]):
        return [name for name, metric in sorted(METRICS.items()) if metric.unsupported(recipe, data) is None]
    names = [requested] if isinstance(requested, str) else list(requested)
    for name in names:
        reason = METRICS.lookup(name).unsupported(recipe, data)
        if reason:
            raise UserError(f"Metric {name} does not apply to model {recipe.name} on {data.name}: {reason}.")
    return names


def evaluate_run(session, metric_names: list[str], options: DictConfig) -> dict[str, float]:
    """Flat `{name: number}` of every metric, computed with a fixed seed (the same on every call)."""
    ctx = EvalContext(session.recipe, session.data, session.device, options, session.cfg.dataset,
                      seed=int(options.seed))
    results: dict[str, float] = {}
    for name in metric_names:
        values = METRICS[name].compute(ctx)
        log.info("%s: %s", name, ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
        results.update(values)
    return results


def load_run_config(run_dir: Path) -> DictConfig:
    path = run_dir / ".hydra" / "config.yaml"
    if not path.exists():
        raise UserError(f"{run_dir} is not a msgan run directory (no .hydra/config.yaml).")
    return OmegaConf.load(path)


def load_trained_session(run_dir: Path, device: str | None = None):
    """The run's session with the weights of its last checkpoint (CPU unless a device is given)."""
    cfg = load_run_config(run_dir)
    if device is not None:
        cfg.hardware.device, cfg.hardware.distributed = device, False
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if not checkpoint.exists():
        raise UserError(f"{run_dir} has no checkpoints/last.pt yet: train it first (or wait for its first checkpoint).")
    session = build_session(cfg, ProcessInfo(0, 1, 0))
    state = load_checkpoint(checkpoint, session.device)
    session.recipe.load_state_dict(state["model"])
    return session, int(state["step"])
