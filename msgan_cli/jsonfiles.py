"""The run directory's small JSON files (metrics.json, eval_protocol.json, run_info.json, ...): written
atomically, read without failing on a damaged file. No torch here, so `msgan report` stays light."""
from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


def temporary_beside(path: Path) -> Path:
    """A temporary name in `path`'s folder, unique to this write: processes that write the same file at
    once (jobs of a sweep training the shared classifier) each rename a complete file of their own."""
    return path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_json(path: Path, values: dict) -> None:
    """Write a small JSON file atomically (same rename trick as checkpoints). Strict JSON: a NaN or inf
    raises ValueError before anything is written (bare NaN tokens are not JSON; other tools reject them)."""
    text = json.dumps(values, indent=2, sort_keys=True, allow_nan=False) + "\n"
    temporary = temporary_beside(path)
    temporary.write_text(text)
    os.replace(temporary, path)


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
