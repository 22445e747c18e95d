"""The run directory's small JSON files (metrics.json, eval_protocol.json, run_info.json, ...): written
atomically, read without failing on a damaged file. No torch here, so `msgan report` stays light."""
from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

from msgan_cli.core.run_files import RunFiles

log = logging.getLogger(__name__)


def temporary_beside(path: Path) -> Path:
    """A temporary name in `path`'s folder, unique to this write: processes that write the same file at
    once (jobs of a sweep training the shared classifier) each rename a complete file of their own."""
    return path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries (`temporary_beside`) in `folder` whose writing process is gone: a kill
    during a write leaves one of full size, and a requeued job would otherwise pile them up. A
    temporary of a process still alive on this machine is left alone."""
    removed = []
    for temporary in folder.glob("*.*.*.tmp") if folder.is_dir() else []:
        pid = temporary.name.split(".")[-3]
        if pid.isdigit() and not process_alive(int(pid)):
            temporary.unlink(missing_ok=True)
            removed.append(temporary)
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, someone else's
        return True
    return True


def write_json(path: Path, values: dict) -> None:
    """Write a small JSON file atomically (same rename trick as checkpoints). Strict JSON: a NaN or inf
    raises ValueError before anything is written (bare NaN tokens are not JSON; other tools reject them)."""
    text = json.dumps(values, indent=2, sort_keys=True, allow_nan=False) + "\n"
    temporary = temporary_beside(path)
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)   # the previous file stays, and no partial temporary
        raise


def read_json(path: Path) -> dict:
    """A small JSON file's object; {} when it is absent or unreadable (said in the log)."""
    if not path.exists():
        return {}
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        log.warning("Ignoring unreadable %s (%s)", path, error)
        return {}
    return values if isinstance(values, dict) else {}


def last_record(run_dir: Path) -> dict:
    """The latest record in the run's run_info.json (train/placement.py writes them: an attempt that
    trained, where it ran and why it stopped or diverged, or a command refused before training, with
    `refused` and `stopped`); {} when there is none. What the run's last command came to."""
    return (read_json(RunFiles(run_dir).run_info).get("attempts") or [{}])[-1]


def last_attempt(run_dir: Path) -> dict:
    """The latest attempt that trained (as last_record, passing over refused commands, which changed
    nothing in the run): where the run's checkpoint and metrics come from; {} when there is none."""
    attempts = read_json(RunFiles(run_dir).run_info).get("attempts") or []
    started = [attempt for attempt in attempts if "refused" not in attempt]
    return started[-1] if started else {}
