"""`checkpoints/best.pt`: the weights at the best value so far of one metric (`trainer.best_metric`)."""
from __future__ import annotations

from pathlib import Path

from msgan_cli.core.checkpoints import save_checkpoint
from msgan_cli.errors import UserError


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
