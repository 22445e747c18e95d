"""`hydra/launcher=parallel`: a sweep's runs side by side on one machine, each with its share of the cores."""
import json

import pytest
import torch
from omegaconf import OmegaConf

from conftest import msgan, run_msgan, tiny
from msgan_cli import config
from msgan_cli.errors import UserError
from msgan_cli.train import threads

SWEEP = ["seed=0,1", *tiny("model=mlp", "dataset=grid25", "dataset.num_train=500"), "trainer.max_steps=6",
         "eval.metrics=[modes_2d,ndb_jsd]"]


def sweep_results(sweep) -> dict[str, tuple[dict, int]]:
    """Per run folder: its metrics and the torch threads it trained with."""
    return {run.name: (json.loads((run / "metrics.json").read_text()),
                       json.loads((run / "run_info.json").read_text())["attempts"][-1]["cpu_threads"])
            for run in sorted(sweep.iterdir()) if run.is_dir()}


@pytest.mark.slow
def test_parallel_sweep_matches_sequential_runs(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="the optional launcher: pip install -e '.[parallel]'")
    parallel = msgan("train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *SWEEP,
                     f"hydra.sweep.dir={tmp_path / 'parallel'}", timeout=600)
    assert parallel.returncode == 0, parallel.stderr
    # In turn, with the thread count each parallel run had: the same numbers, bit for bit.
    share = max(1, threads.cores() // 2)
    sequential = msgan("train", "-m", f"hardware.threads={share}", *SWEEP, f"hydra.sweep.dir={tmp_path / 'sequential'}",
                       timeout=600)
    assert sequential.returncode == 0, sequential.stderr
    side_by_side, in_turn = sweep_results(tmp_path / "parallel"), sweep_results(tmp_path / "sequential")
    assert sorted(side_by_side) == ["0", "1"]
    assert side_by_side == in_turn
    assert {used for _, used in side_by_side.values()} == {share}


def test_threads_share_the_cores_under_the_parallel_launcher(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 16)
    launcher = lambda n_jobs: OmegaConf.create({"_target_": threads.JOBLIB_LAUNCHER, "n_jobs": n_jobs})  # noqa: E731
    assert threads.launcher_share(launcher(4)) == 4
    assert threads.launcher_share(launcher(-1)) == 1            # joblib's -1: a run per core
    assert threads.launcher_share(launcher(-2)) == 1            # 15 runs at once
    assert threads.launcher_share(launcher(32)) == 1            # more runs than cores: one thread each
    assert threads.launcher_share(OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher."
                                                                "BasicLauncher"})) is None
    before = torch.get_num_threads()
    try:
        threads.set_threads("auto", launcher(8))
        assert torch.get_num_threads() == 2
        threads.set_threads(3, None)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("setting", [0, -2, "many", True])
def test_bad_thread_setting(setting):
    with pytest.raises(UserError, match="hardware.threads must be auto or a number >= 1"):
        threads.set_threads(setting, None)


@pytest.mark.parametrize("choice,extra", [("parallel", "parallel"), ("joblib", "parallel"), ("slurm", "slurm")])
def test_a_launcher_not_installed_names_its_extra(monkeypatch, choice, extra):
    monkeypatch.setattr(config.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=rf"hydra/launcher={choice} needs its Hydra plugin .*pip install -e '\.\[{extra}\]'"):
        config.check_launcher_installed(["-m", f"hydra/launcher={choice}", "seed=0,1"])
    config.check_launcher_installed(["-m", "hydra/launcher=basic", "seed=0,1"])   # Hydra's own: nothing to check


@pytest.mark.parametrize("choice,extra", [("parallel", "parallel"), ("slurm", "slurm")])
def test_a_plain_install_is_told_which_launcher_is_missing(monkeypatch, choice, extra):
    """With only `pip install -e .`, no Hydra plugin has created the `hydra_plugins` namespace, and
    importlib's find_spec raised ModuleNotFoundError for its submodule, a traceback instead of the
    sentence. Here the namespace is absent as on such an install (the import system refuses it)."""
    import importlib.abc
    import sys

    class NoHydraPlugins(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hydra_plugins" or name.startswith("hydra_plugins."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    for name in [n for n in sys.modules if n == "hydra_plugins" or n.startswith("hydra_plugins.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NoHydraPlugins(), *sys.meta_path])
    result = run_msgan("train", "-m", f"hydra/launcher={choice}", "seed=0,1")
    assert result.returncode == 2 and f"pip install -e '.[{extra}]'" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr



def test_a_run_knows_the_parallel_sweep_it_works_for_and_when_that_sweep_has_ended(monkeypatch):
    import os
    import signal
    import socket

    from msgan_cli.core import sweep_process
    monkeypatch.setattr(sweep_process.os, "getppid", lambda: 4242)
    monkeypatch.setenv(sweep_process.SWEEP_PROCESS, f"{socket.gethostname()}:4242")
    assert sweep_process.launching_sweep() == 4242 and not sweep_process.sweep_ended(4242)
    monkeypatch.setattr(sweep_process.os, "getppid", lambda: 1)   # the sweep's process is gone: adopted
    assert sweep_process.sweep_ended(4242)
    monkeypatch.setenv(sweep_process.SWEEP_PROCESS, "another-host:4242")
    assert sweep_process.launching_sweep() is None
    monkeypatch.setenv(sweep_process.SWEEP_PROCESS, f"{socket.gethostname()}:{os.getpid()}")   # n_jobs=1: in-process
    assert sweep_process.launching_sweep() is None and not sweep_process.sweep_ended(None)
    previous = {stop: signal.getsignal(stop) for stop in (signal.SIGINT, signal.SIGTERM)}
    try:
        sweep_process.mark_sweep_process()
        assert os.environ[sweep_process.SWEEP_PROCESS] == f"{socket.gethostname()}:{os.getpid()}"
        assert signal.getsignal(signal.SIGINT) is sweep_process.end_at_once   # not joblib's kill of its workers
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def test_a_run_whose_sweep_process_ends_under_it_stops_as_if_signalled(monkeypatch):
    from msgan_cli.train import loop
    parent = {"pid": 4242}
    monkeypatch.setattr(loop, "launching_sweep", lambda: 4242)
    monkeypatch.setattr("msgan_cli.core.sweep_process.os.getppid", lambda: parent["pid"])
    stop = loop.StopSignal()
    try:
        assert not stop.any_rank()
        parent["pid"] = 1   # the sweep's process was killed: this worker is adopted
        assert stop.any_rank() and stop.cause() == loop.SWEEP_ENDED
    finally:
        stop.restore()


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["kill", "ctrl-c"])
def test_stopping_a_parallel_sweep_stops_its_runs_with_their_checkpoints_and_starts_no_other(tmp_path, stop):
    """Four runs, two at a time. `kill <pid>` of the sweep's process, or Ctrl-C (SIGINT to the process group
    of a terminal): the two runs in progress stop after their step with a checkpoint and the reason
    recorded, and the two still queued do not start."""
    import os
    import signal
    import subprocess
    import sys
    import time
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="the optional launcher: pip install -e '.[parallel]'")
    never = "1000000"
    sweep = subprocess.Popen([sys.executable, "-m", "msgan_cli.cli", "train", "-m", "hydra/launcher=parallel",
                              "hydra.launcher.n_jobs=2", *(o for o in SWEEP if not o.startswith("seed=")), "seed=0,1,2,3",
                              f"trainer.max_steps={never}",
                              f"trainer.checkpoint_every={never}", f"trainer.sample_every={never}",
                              f"hydra.sweep.dir={tmp_path}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)   # its own process group, as a terminal gives a command
    workers = set()
    try:
        deadline = time.monotonic() + 180
        while len(list(tmp_path.glob("*/tb/events*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)   # a few steps into training
        workers = {int(line.split()[0]) for line in subprocess.run(["ps", "-o", "pid=", "-g", str(sweep.pid)],
                                                                    capture_output=True, text=True).stdout.splitlines()}
        if stop == "kill":
            sweep.send_signal(signal.SIGTERM)
        else:
            os.killpg(sweep.pid, signal.SIGINT)
        sweep.wait(timeout=60)

        def recorded() -> dict[str, dict | None]:
            return {info.parent.name: json.loads(info.read_text())["attempts"][-1].get("interrupted")
                    for info in tmp_path.glob("*/run_info.json")}
        while not all(recorded().values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(5)   # time for a queued run to start, were it going to
        interrupted = recorded()
        assert sorted(interrupted) == ["0", "1"], interrupted   # the queued runs 2 and 3 never trained
        expected = "the end of the sweep's process" if stop == "kill" else "SIGINT"
        assert all(record and record["signal"] == expected for record in interrupted.values()), interrupted
        for run in interrupted:
            assert torch.load(tmp_path / run / "checkpoints" / "last.pt", weights_only=False)["step"] > 0
    finally:
        for pid in workers - {sweep.pid}:   # were the stop to fail, nothing may go on training after the test
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
