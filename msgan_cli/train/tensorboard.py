"""TensorBoard output of a run under `<run>/tb`: scalars, sample grids, the config and hyper-parameters."""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from msgan_cli.config import method_label
from msgan_cli.core.run_files import RunFiles


def flatten_config(cfg: DictConfig) -> dict[str, float | int | str | bool]:
    """`{"model.width": 32, "reg.ms.weight": 1.0, ...}` with lists and None as strings (TensorBoard's types)."""
    flat: dict[str, float | int | str | bool] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = node if isinstance(node, (int, float, str, bool)) else str(node)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


class RunWriter:
    def __init__(self, run_dir: Path, cfg: DictConfig, resume_step: int = 0):
        # On resume from a checkpoint at step s, events an interrupted run logged after it (steps > s)
        # are dropped, so the curves continue from the checkpoint instead of doubling back; those of
        # step s itself were logged before the checkpoint was written, and stay.
        self.writer = SummaryWriter(str(RunFiles(run_dir).tensorboard), purge_step=resume_step + 1 if resume_step else None)
        self.cfg, self.run_dir = cfg, run_dir
        self.writer.add_text("config", "```\n" + OmegaConf.to_yaml(cfg, resolve=True) + "\n```", 0)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def histogram(self, tag: str, values: torch.Tensor, step: int) -> None:
        self.writer.add_histogram(tag, values, step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        self.writer.add_image(tag, image, step)

    def hyperparameters(self, metrics: dict[str, float], step: int, extra: dict | None = None) -> None:
        """The run's method (as `msgan report` names it), flattened config (and `extra`, e.g. where it
        ran) and its final metrics, for
        TensorBoard's HPARAMS tab, in their own event folder `tb/hparams`.

        No experiment summary is written: TensorBoard would take the first run's as the whole sweep's
        (so a `reg=none` run first hid every `reg.ms.*` column). Without one it builds the experiment
        from every run's session, with the union of their hyper-parameters, marks those that differ,
        and takes the metrics from the scalars of `tb/hparams` only (the final `Metrics/...`, not every
        loss curve)."""
        values = {"method": method_label(self.cfg)} | flatten_config(self.cfg) | (extra or {})
        _, start, end = hparams(values,
                                {f"Metrics/{name}": value for name, value in metrics.items()})
        with SummaryWriter(str(RunFiles(self.run_dir).tensorboard / "hparams")) as writer:
            writer.file_writer.add_summary(start)
            for name, value in metrics.items():
                writer.add_scalar(f"Metrics/{name}", value, step)
            writer.file_writer.add_summary(end)

    def close(self) -> None:
        self.writer.close()
