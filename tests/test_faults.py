"""Faults lose nothing: a diverged run stops with one sentence, keeps its last good checkpoint, writes no
metrics, and is reported as diverged."""
import dataclasses
import json
import math

import pytest
import torch

from conftest import TINY, compose, msgan, run_msgan, state_of
from msgan_cli.core.jsonfiles import write_json
from msgan_cli.report import build_report
from msgan_cli.train import loop, step
from msgan_cli.train.divergence import Diverged


def poison_after(step_index: int, monkeypatch) -> None:
    """Make the run diverge: after the training step with this (0-based) index, one generator weight is NaN."""
    original = step.training_step

    def training_step(session, phases, optimizers, parameters, source, pairs, step, guard=None):
        original(session, phases, optimizers, parameters, source, pairs, step, guard)
        if step == step_index:
            with torch.no_grad():
                next(session.recipe.generator.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(step, "training_step", training_step)


@pytest.mark.parametrize("checkpoint_every,expected", [
    (4, "the D phase's loss became NaN or inf at step 7"),   # seen in the losses at the tick of step 8
    (2, "a weight of the model became NaN or inf at step 6"),  # seen in the weights before the step-6 checkpoint
])
def test_a_diverged_run_stops_and_keeps_its_last_good_checkpoint(tmp_path, monkeypatch, checkpoint_every, expected):
    run = tmp_path / "run"
    cfg = compose("trainer.max_steps=12", f"trainer.checkpoint_every={checkpoint_every}", "trainer.log_every=2")
    poison_after(5, monkeypatch)
    with pytest.raises(Diverged, match=expected):
        loop.train(cfg, run)
    state = state_of(run)
    assert state["step"] == 4   # the last checkpoint before the NaN, not overwritten
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert not (run / "metrics.json").exists()
    attempt = json.loads((run / "run_info.json").read_text())["attempts"][-1]
    assert attempt["diverged"]["step"] == int(expected.rsplit(" ", 1)[1])
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    _, text = build_report(tmp_path)
    assert f"{run}: diverged: {expected}" in text


def test_divergence_from_the_command_line_is_one_sentence(tmp_path):
    """The probe's case: absurd learning rates. Before, the run exited 0 with NaN weights and NaN in
    metrics.json."""
    run = tmp_path / "run"
    result = run_msgan("train", *TINY, "trainer.max_steps=8", "model.optim.lr_g=1e38", "model.optim.lr_d=1e38",
                       f"hydra.run.dir={run}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Training diverged" in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert not (run / "metrics.json").exists() and "Run finished" not in result.stdout
    if (run / "checkpoints" / "last.pt").exists():   # only a checkpoint taken before the NaN
        assert all(torch.isfinite(t).all() for t in state_of(run)["model"].values() if t.is_floating_point())


def test_json_files_are_strict(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "metrics.json", {"fid": math.nan})
    assert not list(tmp_path.iterdir())   # nothing written, no temporary left


def test_a_metric_that_is_not_finite_is_left_out_and_named(monkeypatch):
    from msgan_cli.evaluate import evaluate_run
    from msgan_cli.metrics import METRICS
    from msgan_cli.train.session import build_session
    session = build_session(compose())
    not_a_number = dataclasses.replace(METRICS["class_acc"], compute=lambda ctx: {"class_acc": math.nan})
    monkeypatch.setitem(METRICS, "class_acc", not_a_number)
    metrics, protocol = evaluate_run(session, ["class_acc"], session.cfg.eval, step=0)
    assert metrics == {} and protocol["not_finite"] == ["class_acc"]


def test_hardware_ddp_in_a_single_process_warns_that_it_trains_alone(tmp_path, caplog):
    from msgan_cli.train.session import build_session
    with caplog.at_level("WARNING"):
        build_session(compose("hardware=ddp", "hardware.device=cpu"))
    assert "this is a single process: it trains alone" in caplog.text and "torchrun" in caplog.text


@pytest.mark.slow
def test_a_second_process_on_a_run_directory_stops_and_a_killed_one_leaves_no_lock(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from msgan_cli.train.runlock import run_directory_lock
    run = tmp_path / "run"
    with run_directory_lock(run):   # a training process holds it
        second = msgan("train", *TINY, f"hydra.run.dir={run}")
    assert second.returncode == 2 and f"{run} is in use: pid {os.getpid()} on" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr and not (run / "checkpoints").exists()
    assert not (run / "run_info.json").exists()   # the holder's record is not the refused process's to mark
    # A sweep whose run finds its folder in use stops there, as a single run does (the run's stop
    # cannot be recorded in a folder another process holds, so the sweep could not report it).
    sweep = tmp_path / "sweep"
    with run_directory_lock(sweep / "0"):
        stopped = msgan("train", "-m", *TINY, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert stopped.returncode == 2 and f"{sweep / '0'} is in use" in stopped.stderr, stopped.stderr
    assert not (sweep / "0" / "run_info.json").exists() and not (sweep / "1").exists()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from msgan_cli.train.runlock import run_directory_lock as lock; "
                               f"ctx = lock(Path({str(run)!r})); ctx.__enter__(); print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    after = msgan("train", *TINY, "trainer.max_steps=2", "eval.metrics=[]", f"hydra.run.dir={run}")
    assert after.returncode == 0, after.stderr[-2000:]
