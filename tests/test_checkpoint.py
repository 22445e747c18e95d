"""Checkpoints: atomic, loadable with weights_only=True, and a resumed run ends exactly where an
uninterrupted one does."""
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from conftest import TINY, msgan, regularizer_params, run_msgan, selecting, state_of, tiny, train_run
from msgan_cli.core import checkpoints as checkpoint_module
from msgan_cli.core.checkpoints import load_checkpoint, save_checkpoint
from msgan_cli.errors import UserError


@pytest.mark.parametrize("model,dataset,reg", [("dcgan", "digits", ["reg=ms"]), ("mlp", "ring8", ["reg=ms"]),
                                               ("mlp", "ring8", ["reg=[mdgan,pacgan]", "reg.mdgan.two_step=true"]),
                                               ("dcgan", "digits", ["reg=unrolled", "reg.unrolled.steps=2"])])
def test_stop_and_resume_equals_uninterrupted(tmp_path, model, dataset, reg):
    assert_resume_equals_uninterrupted(tmp_path, f"model={model}", f"dataset={dataset}", *reg)


@pytest.mark.parametrize("reg", regularizer_params("divco"))
def test_every_regulariser_resumes_bit_for_bit(tmp_path, reg):
    """Every registered regulariser (its smoke options), on the 2D GAN, stopped and resumed, ends where an
    uninterrupted run does: its state and random draws (DivCo's negatives) are checkpointed. A new
    regulariser joins this test without an edit (the fast tier runs one; CI's slow tier every one)."""
    assert_resume_equals_uninterrupted(tmp_path, "model=mlp", "dataset=ring8", *selecting(reg))


def assert_resume_equals_uninterrupted(tmp_path: Path, *overrides: str) -> None:
    """8 steps in one go against 5, stopped, then resumed to 8 in the same directory: the same weights, Adam
    state and spectral history."""
    common = [*overrides, "trainer.checkpoint_every=3", "eval.metrics=[]"]
    train_run(tmp_path / "whole", *common, "trainer.max_steps=8")
    train_run(tmp_path / "split", *common, "trainer.max_steps=5")     # stops at 5 (after a final eval)
    assert state_of(tmp_path / "split")["step"] == 5
    train_run(tmp_path / "split", *common, "trainer.max_steps=8")     # same directory: resumes at 5
    whole, split = state_of(tmp_path / "whole"), state_of(tmp_path / "split")
    assert split["step"] == whole["step"] == 8
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, split["model"][name]), name
    assert torch.equal(whole["optimizers"]["generator"]["state"][0]["exp_avg"],
                       split["optimizers"]["generator"]["state"][0]["exp_avg"])
    # The spectral monitor (every 2 steps in TINY) carries on from where it stopped.
    assert whole["spectrum"]["best_share"] == split["spectrum"]["best_share"] != {}
    for name, curves in whole["spectrum"]["curves"].items():
        assert len(curves) == len(split["spectrum"]["curves"][name]) == 4, name
        assert all(torch.equal(a, b) for a, b in zip(curves, split["spectrum"]["curves"][name])), name


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1, "weights": torch.ones(3)}, path)

    def dies_half_way(descriptor):
        raise KeyboardInterrupt   # e.g. the process is stopped while the new file is flushed to disk

    monkeypatch.setattr(checkpoint_module.os, "fsync", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2, "weights": torch.zeros(3)}, path)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]   # no half-written temporary left behind


def _save_repeatedly(path: str, value: int) -> None:
    for _ in range(30):
        save_checkpoint({"value": torch.full((2000,), value)}, Path(path))


@pytest.mark.slow
def test_processes_writing_the_same_file_at_once_all_succeed(tmp_path):
    """Jobs of a sweep that train the same cached classifier save it to one path at the same time."""
    import multiprocessing
    path = tmp_path / "shared.pt"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_save_repeatedly, args=(str(path), value)) for value in (1, 2, 3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [writer.exitcode for writer in writers] == [0, 0, 0]
    assert torch.load(path, weights_only=True)["value"][0].item() in (1, 2, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["shared.pt"]


def test_checkpoint_holds_everything_a_resume_needs(tmp_path):
    train_run(tmp_path, "reg=ms")
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert {"step", "model", "optimizers", "sampler", "rng", "regularizers", "best", "spectrum", "config"} <= set(state)
    assert state["config"]["reg"]["ms"]["weight"] == 1.0 and state["sampler"]["position"] > 0


def test_corrupt_checkpoint_is_reported_and_kept(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    garbage = b"\x00not a checkpoint" * 10
    (run / "checkpoints" / "last.pt").write_bytes(garbage)
    with pytest.raises(UserError, match="cannot be read"):
        load_checkpoint(run / "checkpoints" / "last.pt")
    result = run_msgan("train", *TINY, f"hydra.run.dir={run}")
    assert result.returncode == 2, result.stderr
    assert "cannot be read" in result.stderr and "Traceback" not in result.stderr
    assert (run / "checkpoints" / "last.pt").read_bytes() == garbage   # nothing lost


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    never = "100000"   # no periodic checkpoint and no natural end: only the signal can produce one
    process = subprocess.Popen(
        [sys.executable, "-m", "msgan_cli.cli", "train", *TINY, f"trainer.max_steps={never}",
         f"trainer.checkpoint_every={never}", f"trainer.sample_every={never}", f"hydra.run.dir={run}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any((run / "tb").glob("events*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)   # a few steps into training
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    stopped_at = state_of(run)["step"]
    assert 0 < stopped_at < int(never)
    assert not (run / "metrics.json").exists()       # stopped, not finished
    resumed = msgan("train", *TINY, f"trainer.max_steps={stopped_at + 2}", f"hydra.run.dir={run}")
    assert resumed.returncode == 0, resumed.stderr
    assert state_of(run)["step"] == stopped_at + 2 and (run / "metrics.json").exists()


def test_every_start_and_resume_records_where_it_ran(tmp_path, monkeypatch):
    import json
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    train_run(tmp_path, "trainer.max_steps=2", "eval.metrics=[]")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    train_run(tmp_path, "trainer.max_steps=4", "eval.metrics=[]")          # resumed, as a requeued job would be
    attempts = json.loads((tmp_path / "run_info.json").read_text())["attempts"]
    assert [a["from_step"] for a in attempts] == [0, 2]
    assert attempts[0]["slurm"] == {"job_id": "4242", "array_task_id": "3"} and attempts[1]["slurm"]["restart_count"] == "1"
    assert attempts[1]["world_size"] == 1 and attempts[1]["device"] == "cpu" and attempts[1]["host"]


@contextmanager
def file_size_limit(limit: int):
    """Writes past `limit` bytes fail with the OS's EFBIG, as writes to a full disk fail with ENOSPC: a real
    write error from the kernel, to this process only (RLIMIT_FSIZE; SIGXFSZ ignored so that the write
    fails instead of the process dying)."""
    import resource
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, previous_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)


def test_a_full_disk_is_one_sentence_and_keeps_the_previous_checkpoint(tmp_path):
    """torch's own writer, on a full disk, failed mid-archive with `RuntimeError: unexpected pos` chained to
    the OSError, a 60-line traceback printed twice, and run_info.json did not say why the run stopped."""
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)
    with file_size_limit(50_000), pytest.raises(UserError, match=r"could not be written \(File too large\); the "
                                                                 r"previous one is intact"):
        save_checkpoint({"step": 2, "weights": torch.zeros(100_000)}, path)
    assert torch.load(path, weights_only=True)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]

    run = tmp_path / "run"
    options = [*TINY, "trainer.max_steps=8", "trainer.sample_every=1000", "eval.metrics=[]", f"hydra.run.dir={run}"]
    assert run_msgan("train", *options[:-2], "trainer.max_steps=2", options[-1]).returncode == 0
    with file_size_limit(400_000):   # the run's logs fit; a checkpoint (about 0.7 MB) does not
        full = run_msgan("train", *options)
    assert full.returncode == 2 and "could not be written (File too large)" in full.stderr, full.stderr[-2000:]
    assert "Traceback" not in full.stdout + full.stderr and full.stderr.count("could not be written") == 1
    assert state_of(run)["step"] == 2
    assert "could not be written" in json.loads((run / "run_info.json").read_text())["attempts"][-1]["stopped"]


def test_a_failed_json_write_leaves_no_temporary(tmp_path, monkeypatch):
    from msgan_cli.core import jsonfiles
    jsonfiles.write_json(tmp_path / "metrics.json", {"a": 1})
    monkeypatch.setattr(jsonfiles.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        jsonfiles.write_json(tmp_path / "metrics.json", {"a": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("damage,expected", [
    (lambda good: b"", "the file is empty"),
    (lambda good: b"\x00not a checkpoint" * 10, "it is not a PyTorch checkpoint (a zip archive), 170 bytes"),
    (lambda good: good[:len(good) // 2], "a PyTorch checkpoint cut short or damaged at its end"),
    (lambda good: good[:2000] + bytes(300) + good[2300:], "is damaged"),   # an entry's bytes overwritten
])
def test_a_corrupt_checkpoint_is_described_in_our_words(tmp_path, damage, expected):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1, "weights": torch.arange(5000.0)}, path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(UserError) as error:
        load_checkpoint(path)
    assert expected in str(error.value) and "weights_only" not in str(error.value), str(error.value)


def test_temporaries_of_killed_writers_are_removed_when_a_run_starts(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    (tmp_path / "checkpoints").mkdir()
    stale = tmp_path / "checkpoints" / f"last.pt.{dead_pid}.0123abcd.tmp"
    live = tmp_path / "checkpoints" / f"last.pt.{os.getpid()}.4567cdef.tmp"   # a writer still running here
    stale.write_bytes(b"x" * 1000)
    live.write_bytes(b"x")
    train_run(tmp_path, "trainer.max_steps=2", "eval.metrics=[]")
    assert not stale.exists() and live.exists()


def test_resuming_with_another_configuration_is_refused_naming_the_keys(tmp_path):
    """A finished reg=ms run re-run with reg=none trainer.max_steps=... resumed and
    trained on without mode seeking, its .hydra/ then claiming a reg=none run."""
    train_run(tmp_path, "reg=ms", "trainer.max_steps=2", "eval.metrics=[]")
    with pytest.raises(UserError, match=r"belongs to a run with another configuration \(reg\.ms\.enabled: True -> "):
        train_run(tmp_path, "reg=none", "trainer.max_steps=4", "eval.metrics=[]")
    with pytest.raises(UserError, match=r"model\.width: 8 -> 16"):
        train_run(tmp_path, "reg=ms", "model.width=16", "trainer.max_steps=4", "eval.metrics=[]")
    assert state_of(tmp_path)["step"] == 2   # nothing was trained by the refused attempts
    # What a resume may change: the budget, logging, evaluation, the hardware.
    train_run(tmp_path, "reg=ms", "trainer.max_steps=3", "trainer.log_every=1", "eval.metrics=[pairwise_div]",
              "hardware.amp=true")
    assert state_of(tmp_path)["step"] == 3
    train_run(tmp_path, "reg=none", "trainer.max_steps=4", "eval.metrics=[]", "trainer.allow_config_change=true")
    assert state_of(tmp_path)["step"] == 4   # asked for explicitly


def test_a_changed_learning_rate_accepted_on_resume_is_the_one_applied(tmp_path):
    """trainer.allow_config_change=true with new learning rates and betas: the optimisers restored from the
    checkpoint used to keep the old ones (lr 0 asked for, every weight still moved), while the saved
    config said 0. The divergence message advises exactly this change. With a schedule too: its base
    rates become the new ones, and the rate at the resumed step is the new base times the schedule."""
    common = ["reg=ms", "eval.metrics=[]", "trainer.checkpoint_every=2"]
    train_run(tmp_path, *common, "trainer.max_steps=2")
    before = state_of(tmp_path)
    train_run(tmp_path, *common, "trainer.max_steps=4", "trainer.allow_config_change=true", "model.optim.lr_g=0",
              "model.optim.lr_d=0", "model.optim.betas=[0.9,0.99]")
    after = state_of(tmp_path)
    parameters = [name for name, tensor in before["model"].items() if tensor.is_floating_point()
                  and "running_" not in name and "num_batches" not in name]   # BatchNorm statistics move at any rate
    assert all(torch.equal(before["model"][name], after["model"][name]) for name in parameters)
    for optimizer in after["optimizers"].values():
        assert all(group["lr"] == 0 and tuple(group["betas"]) == (0.9, 0.99) for group in optimizer["param_groups"])
    assert after["config"]["model"]["optim"]["lr_g"] == 0

    scheduled = tmp_path / "scheduled"
    decay = ["trainer.lr_decay_from=0.5", "trainer.max_steps=8"]
    train_run(scheduled, *common, *decay, "trainer.max_steps=4")
    train_run(scheduled, *common, *decay, "trainer.allow_config_change=true", "model.optim.lr_g=1e-3")
    groups = state_of(scheduled)["optimizers"]["generator"]["param_groups"]
    assert groups[0]["initial_lr"] == 1e-3 and groups[0]["lr"] == pytest.approx(0.0)   # 1e-3 x (8 - 8) / 4
    schedule = state_of(scheduled)["schedules"]["generator"]
    assert schedule["base_lrs"] == [1e-3]


def test_a_schedule_changed_on_resume_counts_from_the_resumed_step(tmp_path):
    """A constant-rate run resumed with trainer.lr_decay_from (allowed by trainer.allow_config_change): the
    new schedule started counting at 0 on the resumed step, so it decayed 4 steps late without a word and
    ended at half the rate instead of 0."""
    common = ["reg=none", "eval.metrics=[]", "trainer.checkpoint_every=2", "model.optim.lr_g=1e-3"]
    train_run(tmp_path, *common, "trainer.max_steps=4", "trainer.lr_decay_from=null")
    train_run(tmp_path, *common, "trainer.max_steps=8", "trainer.lr_decay_from=0", "trainer.allow_config_change=true")
    state = state_of(tmp_path)
    assert state["schedules"]["generator"]["last_epoch"] == 8
    assert state["optimizers"]["generator"]["param_groups"][0]["lr"] == 0.0   # 1e-3 x (8 - 8) / 8
    # A run that had the schedule throughout ends where the resumed one does.
    whole = tmp_path / "whole"
    train_run(whole, *common, "trainer.max_steps=8", "trainer.lr_decay_from=0")
    assert state_of(whole)["schedules"]["generator"]["last_epoch"] == 8


def test_a_run_saved_with_keys_since_retired_resumes_evaluates_and_reports(tmp_path):
    """Earlier versions wrote a weight for the regularisers that add no term and an activation for the 2D
    GAN's maxout D, which no code read. Runs that hold them still resume (no 'another configuration'),
    evaluate (no 'reg.sn has no option weight') and sit in the same report row as today's runs."""
    from omegaconf import OmegaConf

    from conftest import compose
    from msgan_cli.report import build_report
    from msgan_cli.train.session import load_trained_session
    overrides = ["model=mlp", "dataset=ring8", "dataset.num_train=500", "reg=sn", "trainer.max_steps=2",
                 "eval.metrics=[modes_2d]"]
    old, new = tmp_path / "sweep" / "0", tmp_path / "sweep" / "1"
    train_run(old, *overrides)
    train_run(new, *overrides, "seed=1")
    state = state_of(old)
    state["config"]["reg"]["sn"]["weight"] = 1.0
    state["config"]["model"]["discriminator"]["activation"] = "relu"
    save_checkpoint({key: value for key, value in state.items() if key != "format"}, old / "checkpoints" / "last.pt")
    for run, retired in ((old, True), (new, False)):
        cfg = OmegaConf.to_container(compose(*overrides, *(["seed=1"] if run == new else [])), resolve=True)
        if retired:
            cfg["reg"]["sn"]["weight"] = 1.0
            cfg["model"]["discriminator"]["activation"] = "relu"
        (run / ".hydra").mkdir()
        OmegaConf.save(OmegaConf.create(cfg), run / ".hydra" / "config.yaml")
    train_run(old, *[o.replace("max_steps=2", "max_steps=3") for o in overrides])   # resumed, not refused
    assert state_of(old)["step"] == 3
    load_trained_session(old, "cpu")
    _, text = build_report(tmp_path / "sweep")
    assert "| sn | 2 |" in text and "Warning" not in text   # one row of two seeds, no 'configs differ'
    with pytest.raises(UserError, match="reg.sn has no option weight"):   # today's sn has none to set
        train_run(tmp_path / "weighted", *overrides, "+reg.sn.weight=2")


# A kill -9 while the temporary file of checkpoint number `kill_at` (counting from 1 in this process) is being
# written: half the archive's bytes are on disk, the process dies without any handler running.
KILL_DURING_WRITE = """
import builtins, os, signal, sys
from msgan_cli import cli
from msgan_cli.core import checkpoints
writes = [0]
class HalfWritten:   # the checkpoint's temporary file, killed with half the archive written at the chosen write
    def __init__(self, file):
        self.file = file
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.file.__exit__(*exc)
    def __getattr__(self, name):
        return getattr(self.file, name)
    def write(self, data):
        writes[0] += 1
        if writes[0] == {kill_at}:
            self.file.write(bytes(data)[:len(data) // 2]); self.file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.file.write(data)
checkpoints.open = lambda *args, **kwargs: HalfWritten(builtins.open(*args, **kwargs))
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_ends_with_the_uninterrupted_weights(tmp_path):
    """SIGKILL (no handler, no final checkpoint) at random moments of training and in the middle of
    checkpoint writes, then the same command again until it finishes: the weights and optimiser state
    are those of a run never interrupted, and no temporary file is left behind."""
    import random
    rng = random.Random(20261203)   # the moments are random but the same on every run of the test
    common = ["train", *tiny("model=mlp", "dataset=ring8", "dataset.num_train=512", "model.generator.hidden=16",
                              "model.discriminator.hidden=8", "reg=ms", "trainer.max_steps=300",
                              "trainer.checkpoint_every=7", "trainer.sample_every=100000", "trainer.log_every=50",
                              "trainer.spectrum.every=100", "eval.metrics=[]")]
    uninterrupted = msgan(*common, f"hydra.run.dir={tmp_path / 'whole'}")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]

    run = tmp_path / "killed"
    command = [sys.executable, "-m", "msgan_cli.cli", *common, f"hydra.run.dir={run}"]
    kills = []
    for kill_at in (rng.randint(2, 4), rng.randint(2, 6)):   # during a checkpoint write
        died = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE.format(kill_at=kill_at), *command[3:]],
                              capture_output=True, text=True, timeout=300)
        assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
        assert list((run / "checkpoints").glob("last.pt.*.tmp")), "the kill left no half-written temporary"
        kills.append(f"write {kill_at}")
    for _ in range(3):   # at a random moment of training
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not any((run / "tb").glob("events*")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        process.kill()
        process.wait(timeout=60)
        kills.append(f"training, step {state_of(run)['step']}" if (run / "checkpoints" / "last.pt").exists() else "training")
    resumed = msgan(*common, f"hydra.run.dir={run}")
    assert resumed.returncode == 0, (kills, resumed.stderr[-2000:])

    whole, killed = state_of(tmp_path / "whole"), state_of(run)
    assert killed["step"] == whole["step"] == 300, kills
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, killed["model"][name]), (name, kills)
    for network, optimizer in whole["optimizers"].items():
        for key, state in optimizer["state"].items():
            assert torch.equal(state["exp_avg_sq"], killed["optimizers"][network]["state"][key]["exp_avg_sq"]), network
    assert not list((run / "checkpoints").glob("*.tmp")), "stale temporaries of killed writers were not removed"
