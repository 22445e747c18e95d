"""Where a run ran: host, SLURM job (and array task), world size, device. Each start or resume of a
run appends one record to `<run>/run_info.json`, so a requeued SLURM job shows every attempt; the
latest also goes to TensorBoard's hyper-parameters (`run.host`, `run.slurm_job_id`, ...)."""
from __future__ import annotations

import os
import socket
import subprocess
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from msgan_cli.core.jsonfiles import read_json, write_json
from msgan_cli.core.run_files import RunFiles

SLURM_VARIABLES = {"job_id": "SLURM_JOB_ID", "array_job_id": "SLURM_ARRAY_JOB_ID",
                   "array_task_id": "SLURM_ARRAY_TASK_ID", "partition": "SLURM_JOB_PARTITION",
                   "nodelist": "SLURM_JOB_NODELIST", "restart_count": "SLURM_RESTART_COUNT"}


def code_version() -> str:
    """The git commit of the code that runs (with '+changes' when the checkout has uncommitted edits),
    or the installed package's version when it is not a git checkout."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return f"git {commit.stdout.strip()}" + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):   # no git on this machine
        pass
    try:
        return f"msgan {version('msgan')}"
    except PackageNotFoundError:
        return "unknown"


def placement(world_size: int, device: torch.device, step: int) -> dict:
    """This process's view of where the run is: what a report needs to tell runs apart."""
    record = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "from_step": step,
              "host": socket.gethostname(), "world_size": world_size, "device": str(device),
              "cpu_threads": torch.get_num_threads(),
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
              "torch": torch.__version__, "code": code_version()}
    slurm = {key: os.environ[var] for key, var in SLURM_VARIABLES.items() if var in os.environ}
    if slurm:
        record["slurm"] = slurm
    return record


def record_placement(run_dir: Path, record: dict) -> None:
    """Append this attempt to run_info.json (written atomically)."""
    path = RunFiles(run_dir).run_info
    attempts = read_json(path).get("attempts", [])
    write_json(path, {"attempts": attempts + [record]})


def record_refusal(run_dir: Path, message: str) -> None:
    """An attempt refused before it started (an option, a resume with another config): its own record,
    after the attempts that ran, so theirs stay as they were (last_attempt passes over it)."""
    record_placement(run_dir, {"refused": datetime.now(timezone.utc).isoformat(timespec="seconds"), "stopped": message})


def mark_last_attempt(run_dir: Path, **facts) -> None:
    """Add facts to this attempt's record in run_info.json (e.g. `diverged={"step": 37, ...}`)."""
    path = RunFiles(run_dir).run_info
    attempts = read_json(path).get("attempts") or [{}]
    attempts[-1] = {**attempts[-1], **facts}
    write_json(path, {"attempts": attempts})


def placement_hyperparameters(record: dict) -> dict[str, str | int]:
    """The record flattened for TensorBoard's HPARAMS tab (`run.host`, `run.slurm_job_id`, ...; of what the
    data's scan left out, the counts: `run.data_skipped_unreadable`)."""
    flat = {f"run.{key}": value for key, value in record.items()
            if key not in ("slurm", "data_skipped") and value is not None}
    flat |= {f"run.slurm_{key}": value for key, value in record.get("slurm", {}).items()}
    flat |= {f"run.data_skipped_{key}": value for key, value in record.get("data_skipped", {}).items()
             if isinstance(value, int)}
    return flat
