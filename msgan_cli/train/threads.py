"""How many CPU threads torch uses in a run: `hardware.threads`.

`auto` gives a run its share of the machine when a launcher runs several runs side by side on it
(`hydra/launcher=parallel` or `joblib`: the cores divided by the runs at once), because every run
taking every core makes OpenMP's spinning threads fight and each step many times slower. Under SLURM
the launcher's set-up exports OMP_NUM_THREADS (the booked CPUs), which torch honours by itself; alone,
torch's default (every core) is right. A number sets it outright.
"""
from __future__ import annotations

import os

import torch
from omegaconf import DictConfig

from msgan_cli.errors import UserError

JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def cores() -> int:
    """The cores this process may use (its CPU affinity: what SLURM or taskset granted)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


def launcher_share(launcher: DictConfig | None) -> int | None:
    """Cores per run when the launcher runs several at once on this machine; None otherwise."""
    if launcher is None or launcher.get("_target_") != JOBLIB_LAUNCHER:
        return None
    runs = int(launcher.n_jobs)
    if runs < 1:   # joblib's negative n_jobs: -1 one run per core, -2 all cores but one, ...
        runs = max(1, cores() + 1 + runs)
    return max(1, cores() // runs)


def set_threads(setting: int | str, launcher: DictConfig | None) -> None:
    """Apply `hardware.threads` (auto or a number >= 1) to torch in this process."""
    if setting == "auto":
        share = launcher_share(launcher)
        if share is not None:
            torch.set_num_threads(share)
        return
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise UserError(f"hardware.threads must be auto or a number >= 1; got {setting!r}.")
    torch.set_num_threads(setting)
