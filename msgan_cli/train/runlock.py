"""One training process per run directory: an exclusive lock on `<run>/.lock`, held for the run's life.

The lock is the kernel's (flock): it goes when the process does, however it dies, so a kill -9 or a
SLURM requeue never leaves a stale lock behind for the next attempt. The file records the holder's
pid and host for the message the second process prints.
"""
from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from msgan_cli.errors import UserError


def in_use_error(run_dir: Path, handle) -> UserError:
    handle.seek(0)
    using = handle.read().strip() or "another process"
    return UserError(f"{run_dir} is in use: {using}. Wait for it to finish (then run the same command "
                     f"again to resume or re-evaluate), or use another hydra.run.dir.")


@contextmanager
def run_directory_lock(run_dir: Path, holder: str) -> Iterator[None]:
    """Hold `<run_dir>/.lock` for the block; another process holding it is one sentence. `holder` says what
    this process does there (`msgan train`, `msgan eval`), for that sentence."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ".lock"
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise in_use_error(run_dir, handle) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} ({holder})\n")
        handle.flush()
        yield
    finally:
        handle.close()   # releases the lock


def check_not_in_use(run_dir: Path) -> None:
    """Refuse at once when another process holds `run_dir`'s lock: Hydra rewrites `<run_dir>/.hydra/` for
    every command before msgan runs, and a live run's files must not be rewritten by one that is refused.
    A run that takes the lock between this check and the command's own is still refused by the lock."""
    path = run_dir / ".lock"
    if not path.is_file():
        return
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise in_use_error(run_dir, handle) from None
