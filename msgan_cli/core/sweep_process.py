"""A parallel sweep's process and the runs it starts in its worker processes (hydra/launcher=parallel,
joblib's loky workers), so that stopping the sweep stops its runs cleanly, each with a checkpoint.

Stopping a sweep means ending its process: Ctrl-C reaches it and every worker (one terminal's process
group), `kill <pid>` it alone. Left to itself, joblib would answer Ctrl-C by killing its workers at once,
losing each run's steps since its last checkpoint, and `kill <pid>` would leave them training unseen,
each holding its folder's lock, then starting the runs still queued. So the sweep's process ends at once
on either signal (`mark_sweep_process`), and each run it started watches it: a run in progress stops
after its step with a checkpoint when the process is gone (train/loop.py: StopSignal), and a run that
would start after that does not start (`sweep_ended`)."""
from __future__ import annotations

import os
import signal
import socket

SWEEP_PROCESS = "MSGAN_SWEEP_PROCESS"   # host:pid, in the environment the workers inherit


def mark_sweep_process() -> None:
    """In the process that launches a parallel sweep, before it starts any run: name it for its workers,
    and end it at once on SIGINT or SIGTERM (see the module's docstring). A run that trains in this
    process itself (n_jobs=1) puts its own handlers in place while it trains."""
    os.environ[SWEEP_PROCESS] = f"{socket.gethostname()}:{os.getpid()}"
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, end_at_once)


def end_at_once(signum, frame) -> None:
    """The sweep's process, on SIGINT or SIGTERM: end now, by SIGTERM's default action (no clean-up by joblib)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def launching_sweep() -> int | None:
    """The pid of the parallel sweep process this process runs for as its worker (started by it, on this
    host), whether or not it is still alive; None for a single run, a run inside the sweep's own process,
    or a run of a sweep by another launcher (the variable is only set for the parallel one)."""
    host, _, pid = os.environ.get(SWEEP_PROCESS, "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        return int(pid)
    return None


def sweep_ended(sweep: int | None) -> bool:
    """Whether the sweep process this worker runs for has ended: the worker has been adopted by another."""
    return sweep is not None and os.getppid() != sweep
