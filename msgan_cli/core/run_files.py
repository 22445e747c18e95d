"""The names of what a run directory holds, spelled in one place. Every command that writes or reads a
run (train, eval, sample, report, the sweep's summary) finds its files here (docs/running.md).

    <run>/.hydra/config.yaml      the resolved config (Hydra)      .hydra/overrides.yaml  the command's overrides
    <run>/checkpoints/last.pt     what a resume needs              checkpoints/best.pt    trainer.best_metric's best
    <run>/metrics.json            the final evaluation             eval_protocol.json     how it was measured
    <run>/run_info.json           one record per attempt           distributed.json       DDP replicas' agreement
    <run>/tb/                     TensorBoard events               samples/final*.png     the final grids
    <run>/train.log               the log (Hydra's job log)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from msgan_cli.errors import UserError

SWEEP_RECORD = "multirun.yaml"   # in a sweep's folder: what Hydra's sweeper was asked for


@dataclass(frozen=True)
class RunFiles:
    root: Path
    RUN_INFO = "run_info.json"   # also searched for by name: a run's record exists before its config may

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / ".hydra" / "config.yaml"

    def existing_config(self) -> Path:
        """The config, which makes a folder a run directory: its absence is the user's, said in a sentence."""
        if not self.config.exists():
            raise UserError(f"{self.root} is not a msgan run directory (no .hydra/config.yaml).")
        return self.config

    @property
    def overrides(self) -> Path:
        return self.root / ".hydra" / "overrides.yaml"

    @property
    def accepted_hydra(self) -> Path:
        """A copy of `.hydra/` as the last attempt that started training left it: Hydra rewrites `.hydra/`
        for every command run in the folder, a refused one too, and the refused command's copy is put
        back from here (train/loop.py)."""
        return self.root / ".hydra" / "accepted"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def protocol(self) -> Path:
        return self.root / "eval_protocol.json"

    @property
    def run_info(self) -> Path:
        return self.root / self.RUN_INFO

    @property
    def distributed(self) -> Path:
        return self.root / "distributed.json"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def train_log(self) -> Path:
        return self.root / "train.log"

    def final_grid(self, view: str = "grid") -> Path:
        """samples/final.png, or final-<view>.png for a model with one grid per view (final-AtoB.png)."""
        return self.samples / ("final.png" if view == "grid" else f"final-{view}.png")


def run_folders(sweep: Path) -> list[Path]:
    """The run directories under `sweep` (itself, or the runs of a sweep, at any depth), in name order.
    Symbolic links to folders are followed, so that a folder of links to runs of several sweeps reports
    as one; each real folder counts once (a link back up the tree does not loop), by its own path where
    the walk also reaches it without a link."""
    sweep_real = os.path.realpath(sweep)
    found: dict[str, Path] = {}
    visited = set()
    for folder, subfolders, _ in os.walk(sweep, followlinks=True):
        real = os.path.realpath(folder)
        if os.path.isfile(os.path.join(folder, ".hydra", "config.yaml")):
            unlinked = real == os.path.join(sweep_real, os.path.relpath(folder, sweep))
            if real not in found or unlinked:
                found[real] = Path(folder)
        if real in visited:
            subfolders.clear()
            continue
        visited.add(real)
    return sorted(found.values())
