"""Which process launched a sweep, so that the runs it starts as its children (the parallel launcher's
workers) can tell when it ends under them: `kill <its pid>` signals it alone, and its workers would
otherwise train on unseen, each holding its run folder's lock (train/loop.py: StopSignal)."""
from __future__ import annotations

import os
import socket

SWEEP_PROCESS = "MSGAN_SWEEP_PROCESS"   # host:pid, in the environment the workers inherit


def mark_sweep_process() -> None:
    """Called in the process that launches a sweep, before it starts any run."""
    os.environ[SWEEP_PROCESS] = f"{socket.gethostname()}:{os.getpid()}"


def launching_sweep() -> int | None:
    """The pid of the sweep process that started this process as its child, or None: a single run, a
    sweep's run inside the sweep's own process (the basic launcher), a SLURM job (another host, or
    another parent on the same one)."""
    host, _, pid = os.environ.get(SWEEP_PROCESS, "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and os.getppid() == int(pid):
        return int(pid)
    return None
