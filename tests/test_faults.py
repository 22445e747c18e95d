"""Faults lose nothing and say what happened: a diverged run stops with one sentence, keeps its last good
checkpoint, writes no metrics and is reported as diverged; a refused command leaves a run folder as it
found it; damaged or unwritable folders are one sentence; only finished runs are tabled."""
import dataclasses
import json
import math
import socket
from pathlib import Path

import pytest
import torch

from conftest import TINY, compose, msgan, run_msgan, state_of
from msgan_cli.core.jsonfiles import write_json
from msgan_cli.core.run_files import RunFiles
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
    assert attempt["duration_s"] > 0
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    _, text = build_report(tmp_path)
    assert f"{run}: diverged: {expected}" in text


def test_divergence_from_the_command_line_is_one_sentence(tmp_path):
    """Absurd learning rates. Before, the run exited 0 with NaN weights and NaN in
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
    with run_directory_lock(run, "msgan train"):   # a training process holds it
        second = msgan("train", *TINY, f"hydra.run.dir={run}")
    assert second.returncode == 2 and f"{run} is in use: pid {os.getpid()} on" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr and not (run / "checkpoints").exists()
    assert not (run / "run_info.json").exists()   # the holder's record is not the refused process's to mark
    # A sweep whose run finds its folder in use stops there, as a single run does (the run's stop
    # cannot be recorded in a folder another process holds, so the sweep could not report it).
    sweep = tmp_path / "sweep"
    with run_directory_lock(sweep / "0", "msgan train"):
        stopped = msgan("train", "-m", *TINY, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert stopped.returncode == 2 and f"{sweep / '0'} is in use" in stopped.stderr, stopped.stderr
    assert not (sweep / "0" / "run_info.json").exists() and not (sweep / "1").exists()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from msgan_cli.train.runlock import run_directory_lock as lock; "
                               f"ctx = lock(Path({str(run)!r}), 'msgan train'); ctx.__enter__(); "
                               "print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    after = msgan("train", *TINY, "trainer.max_steps=2", "eval.metrics=[]", f"hydra.run.dir={run}")
    assert after.returncode == 0, after.stderr[-2000:]


# --- a run folder other commands touch --------------------------------------------------------------------


def hydra_files(run) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted((run / ".hydra").glob("*.yaml"))}


def test_a_command_refused_on_a_live_run_leaves_its_hydra_files_alone(tmp_path):
    """Hydra rewrites .hydra/ for every command before msgan runs: a second `msgan train` on a folder in
    use must not leave its own options in the live run's record. A single run is refused before Hydra
    writes; a sweep's run (whose folder Hydra writes inside the sweep) puts back what training accepted."""
    from msgan_cli.train.runlock import run_directory_lock
    sweep = tmp_path / "sweep"
    assert run_msgan("train", "-m", *TINY, "trainer.max_steps=2", "seed=0", f"hydra.sweep.dir={sweep}").returncode == 0
    live = sweep / "0"
    accepted = hydra_files(live)
    kept = RunFiles(live).accepted_hydra
    kept.rename(tmp_path / "kept")   # as a live run still setting up, before it has accepted its .hydra/
    with run_directory_lock(live, "msgan train"):   # the run is training again, in another process
        single = run_msgan("train", *TINY, "trainer.max_steps=4", f"hydra.run.dir={live}")
        assert single.returncode == 2 and f"{live} is in use" in single.stderr, single.stderr
        assert hydra_files(live) == accepted
        (tmp_path / "kept").rename(kept)
        in_sweep = run_msgan("train", "-m", *TINY, "trainer.max_steps=4", "seed=0", f"hydra.sweep.dir={sweep}")
        assert in_sweep.returncode == 2 and f"{live} is in use" in in_sweep.stderr, in_sweep.stderr
        assert hydra_files(live) == accepted


def test_a_refused_resume_leaves_the_run_folder_as_it_found_it(tmp_path):
    """Hydra rewrites .hydra/ for every command run in a folder, before any check: after a refused
    `reg=ms` -> `reg=none`, msgan report listed the ms run as `none` with the refused budget, and after a
    refused width change msgan eval and sample crashed on a size mismatch."""
    run = tmp_path / "run"
    assert run_msgan("train", *TINY, "trainer.max_steps=2", f"hydra.run.dir={run}").returncode == 0
    accepted = hydra_files(run)
    for change in (["reg=none", "trainer.max_steps=4"], ["model.width=16"]):
        refused = run_msgan("train", *TINY, *change, f"hydra.run.dir={run}")
        assert refused.returncode == 2 and "belongs to a run with another configuration" in refused.stderr
        assert hydra_files(run) == accepted
    _, text = build_report(run)
    assert "| ms(w=1) | 1 |" in text and "Runs not in the tables" not in text
    assert f"| {socket.gethostname()} |" in text   # where it ran: the attempt that trained, not the refusals
    evaluated = run_msgan("eval", f"run={run}", "metrics=[class_acc]", "num_samples=40")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    attempts = json.loads((run / "run_info.json").read_text())["attempts"]
    assert attempts[0]["finished_step"] == 2 and "stopped" not in attempts[0]   # the run's own record intact
    assert [("refused" in a, "another configuration" in a.get("stopped", "")) for a in attempts[1:]] == [(True, True)] * 2


def test_eval_and_sample_go_by_the_checkpoint_when_hydra_says_otherwise(tmp_path):
    """A folder whose .hydra/ a command rewrote before it was kept (earlier versions did): the checkpoint's
    own config builds the model, and the log names the keys that differ, instead of a size-mismatch
    traceback."""
    run = tmp_path / "run"
    assert run_msgan("train", *TINY, "trainer.max_steps=2", "eval.metrics=[]", f"hydra.run.dir={run}").returncode == 0
    config = (run / ".hydra" / "config.yaml").read_text()
    (run / ".hydra" / "config.yaml").write_text(config.replace("width: 8", "width: 16"))
    evaluated = run_msgan("eval", f"run={run}", "metrics=[class_acc]", "num_samples=40")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "model.width: 8 -> 16" in evaluated.stdout + evaluated.stderr
    assert run_msgan("sample", f"run={run}", "n=2", f"out={tmp_path / 'grids'}").returncode == 0


def test_eval_beside_a_live_training_run_is_refused_and_a_report_tables_only_finished_runs(tmp_path):
    """msgan eval wrote metrics.json from a training run's intermediate checkpoint, without its lock, and
    msgan report then tabled a run killed at step 80 of 400 as finished."""
    from msgan_cli.train.runlock import run_directory_lock
    run = tmp_path / "sweep" / "0"
    assert run_msgan("train", *TINY, "trainer.max_steps=2", f"hydra.run.dir={run}").returncode == 0
    metrics = (run / "metrics.json").read_text()
    with run_directory_lock(run, "msgan train"):
        refused = run_msgan("eval", f"run={run}", "metrics=[class_acc]")
    assert refused.returncode == 2 and "is in use" in refused.stderr and "(msgan train)" in refused.stderr
    assert (run / "metrics.json").read_text() == metrics
    protocol = json.loads((run / "eval_protocol.json").read_text())
    write_json(run / "eval_protocol.json", {**protocol, "checkpoint_step": 1})   # metrics of step 1 of its 2
    _, text = build_report(tmp_path / "sweep")
    assert "### " not in text and f"{run}: unfinished: its metrics are of step 1 of its 2" in text


def test_damaged_run_files_are_one_sentence_and_one_line_of_the_report(tmp_path):
    """A .hydra/config.yaml cut short or holding binary bytes: eval and sample tracebacks (18 to 32 lines),
    and msgan report died without a report."""
    import shutil
    good = tmp_path / "sweep" / "0"
    assert run_msgan("train", *TINY, "trainer.max_steps=2", f"hydra.run.dir={good}").returncode == 0
    for name, damage in (("1", b"\x00\x9f\x92\x96 binary"), ("2", b"seed: 0\nmodel: {name: dcg")):
        damaged = tmp_path / "sweep" / name
        shutil.copytree(good, damaged)
        (damaged / ".hydra" / "config.yaml").write_bytes(damage)
        for command in (["eval", f"run={damaged}"], ["sample", f"run={damaged}", "n=2"]):
            result = run_msgan(*command)
            assert result.returncode == 2 and "cannot be read" in result.stderr, result.stderr[-2000:]
            assert "Traceback" not in result.stderr
    _, text = build_report(tmp_path / "sweep")
    assert "| ms(w=1) | 1 |" in text and "Runs not in the tables: 2" in text
    assert f"{tmp_path / 'sweep' / '1'}: its .hydra/ files cannot be read" in text


def test_eval_and_sample_say_first_when_they_cannot_write(tmp_path, monkeypatch):
    """eval and sample on a read-only run folder computed everything, then crashed on the write (27 and 17
    lines). The folder is made unwritable by the file system's answer, as a read-only mount gives it
    (root writes into a mode-555 folder, so the test cannot use permissions)."""
    import errno
    import tempfile
    run = tmp_path / "run"
    assert run_msgan("train", *TINY, "trainer.max_steps=2", "eval.metrics=[]", f"hydra.run.dir={run}").returncode == 0
    real = tempfile.TemporaryFile

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).is_relative_to(run):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr("msgan_cli.train.session.build_session", None)   # nothing may be computed first
    for command, fix in ((["eval", f"run={run}"], "copy the run to a writable place"),
                         (["sample", f"run={run}"], "give out=DIR")):
        result = run_msgan(*command)
        assert result.returncode == 2 and "cannot be written to (Read-only file system)" in result.stderr
        assert fix in result.stderr and "Traceback" not in result.stderr


def interrupt_after(step_index: int, monkeypatch, times: int = 1) -> None:
    """Ctrl-C (a real SIGINT to this process), `times` times, right after the training step of this index."""
    import signal
    original = step.training_step

    def training_step(session, phases, optimizers, parameters, source, pairs, index, guard=None):
        original(session, phases, optimizers, parameters, source, pairs, index, guard)
        if index == step_index:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(step, "training_step", training_step)


def test_ctrl_c_checkpoints_and_stops_like_sigterm_and_twice_stops_at_once(tmp_path, monkeypatch):
    """Ctrl-C killed a run with a 54-line KeyboardInterrupt traceback and no checkpoint: everything since the
    last checkpoint was lost, and train.log and run_info.json said nothing."""
    run = tmp_path / "run"
    never = ["trainer.max_steps=40", "trainer.checkpoint_every=1000", "trainer.sample_every=1000"]
    interrupt_after(2, monkeypatch)
    once = run_msgan("train", *TINY, *never, f"hydra.run.dir={run}")
    assert once.returncode == 130 and "Traceback" not in once.stdout + once.stderr, once.stderr[-2000:]
    assert state_of(run)["step"] == 3                          # the step it was in, then the checkpoint
    assert "Stopped by SIGINT at step 3; checkpoint saved" in (run / "train.log").read_text()
    attempt = json.loads((run / "run_info.json").read_text())["attempts"][-1]
    assert attempt["interrupted"] == {"signal": "SIGINT", "step": 3}
    assert attempt["duration_s"] > 0                           # the time it ran counts toward the run's
    _, text = build_report(run)
    assert "interrupted by SIGINT at step 3" in text

    interrupt_after(4, monkeypatch, times=2)                   # twice, before the loop could stop
    twice = run_msgan("train", *TINY, *never, f"hydra.run.dir={run}")
    assert twice.returncode == 130 and "Traceback" not in twice.stdout + twice.stderr, twice.stderr[-2000:]
    assert "interrupted; the run's last checkpoint, if it had written one, stays" in twice.stderr
    assert state_of(run)["step"] == 3                          # stopped at once: no checkpoint written
    attempt = json.loads((run / "run_info.json").read_text())["attempts"][-1]
    assert attempt["interrupted"] == {"signal": "SIGINT", "step": 4, "checkpoint_step": 3}
    assert attempt["duration_s"] > 0

    fresh = tmp_path / "fresh"                                 # twice before any checkpoint: nothing to resume
    interrupt_after(1, monkeypatch, times=2)
    assert run_msgan("train", *TINY, *never, f"hydra.run.dir={fresh}").returncode == 130
    assert "no checkpoint was written yet: the same command starts anew" in (fresh / "train.log").read_text()
    _, text = build_report(fresh)
    assert "interrupted by SIGINT at step 1 before its first checkpoint; the same command starts it anew" in text


def test_a_divergence_before_the_first_checkpoint_does_not_promise_one(tmp_path, monkeypatch):
    run = tmp_path / "run"
    cfg = compose("trainer.max_steps=12", "trainer.checkpoint_every=100", "trainer.log_every=2")
    poison_after(0, monkeypatch)
    with pytest.raises(Diverged) as stopped:
        loop.train(cfg, run)
    assert "it had written no checkpoint yet, so nothing of it is kept" in str(stopped.value)
    assert "last good checkpoint" not in str(stopped.value) and not (run / "checkpoints" / "last.pt").exists()
