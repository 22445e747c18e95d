"""`hardware=ddp` under torchrun: 2 CPU processes (gloo), sharded data, one run directory written by
rank 0 only, and replicas that stay identical."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import TINY, state_of, tiny


def torchrun(*args, cwd):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "msgan_cli.cli", "train", *tiny("hardware=ddp", "hardware.device=cpu", *args)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_process_training_keeps_replicas_identical(tmp_path):
    result = torchrun("reg=ms", "trainer.max_steps=6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 1, runs           # both ranks wrote into one run directory
    run = runs[0]
    report = json.loads((run / "distributed.json").read_text())
    assert report == {"world_size": 2, "replica_max_abs_diff": 0.0}
    assert (run / "metrics.json").exists() and (run / "checkpoints" / "last.pt").exists()
    events = [list(folder.glob("events*")) for folder in (run / "tb", run / "tb" / "hparams")]
    assert [len(files) for files in events] == [1, 1]   # rank 0's only

    # The final metrics were computed with each rank generating half the samples, then gathered: they
    # equal a one-process evaluation of the same checkpoint.
    two_processes = json.loads((run / "metrics.json").read_text())
    single = subprocess.run([sys.executable, "-m", "msgan_cli.cli", "eval", f"run={run}", "device=cpu"],
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    one_process = json.loads((run / "metrics.json").read_text())
    assert set(one_process) == set(two_processes) and "ndb_jsd/ndb" in one_process
    for name, value in two_processes.items():
        assert value == pytest.approx(one_process[name], rel=1e-4, abs=1e-5), name


@pytest.mark.slow
def test_resume_under_ddp_needs_the_same_world_size(tmp_path):
    run = tmp_path / "run"
    assert torchrun("trainer.max_steps=2", f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    result = subprocess.run([sys.executable, "-m", "msgan_cli.cli", "train", *TINY, "hardware=cpu",
                             f"hydra.run.dir={run}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "written by 2 processes" in result.stderr


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_the_same_global_batch(tmp_path):
    """Sharded data, the global batch's latents split by rank, gradients averaged: 2 processes give one
    process's weights, for a model without BatchNorm (its batch statistics are per process) and a loss
    that is a mean over samples (reg.ms.reduction=per_sample; the code's batch-level ratio is not)."""
    common = ["model=mlp_unrolled", "dataset=ring8", "dataset.num_train=500", "reg=ms", "reg.ms.reduction=per_sample",
              "trainer.max_steps=6",
              "eval.metrics=[]"]
    assert torchrun(*common, f"hydra.run.dir={tmp_path / 'two'}", cwd=tmp_path).returncode == 0
    single = subprocess.run([sys.executable, "-m", "msgan_cli.cli", "train", *tiny("hardware=cpu", *common),
                             f"hydra.run.dir={tmp_path / 'one'}"], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    two, one = state_of(tmp_path / "two"), state_of(tmp_path / "one")
    for name, tensor in one["model"].items():
        torch.testing.assert_close(two["model"][name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def loss_curves(run_dir) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"] if tag.startswith("Loss/")}


@pytest.mark.slow
def test_pix2pix_on_streamed_pairs_trains_under_ddp_like_one_process(tmp_path):
    """Image conditions and a split streamed from files, sharded over 2 processes, train as one process
    with the same global batch (InstanceNorm keeps no batch statistics; LSGAN and L1 are means over
    samples; the random flips come from per-draw seeds): the same losses at every log tick, the same
    outputs. Weights are not compared one by one: the reference's conv biases before InstanceNorm get
    exactly zero gradients, which Adam turns into rounding-noise steps that differ between the runs and
    change no output."""
    from datafiles import write_paired_folder
    from msgan_cli.train.session import load_trained_session
    root = write_paired_folder(tmp_path / "data", {"train": 12, "val": 2}, height=16)
    common = ["model=pix2pix", "model.width=4", "dataset=paired_folder", f"dataset.root={root}", "dataset.resolution=16",
              "dataset.in_memory=false", "dataset.workers=1", "reg=none", "trainer.batch_size=4",
              "trainer.max_steps=5", "trainer.log_every=1", "eval.metrics=[]"]
    two = torchrun(*common, f"hydra.run.dir={tmp_path / 'two'}", cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "msgan_cli.cli", "train", *tiny("hardware=cpu", *common),
                             f"hydra.run.dir={tmp_path / 'one'}"], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    assert state_of(tmp_path / "two")["sampler"] == state_of(tmp_path / "one")["sampler"] == {"epoch": 1, "position": 8}
    curves = [loss_curves(tmp_path / run) for run in ("two", "one")]
    assert set(curves[0]) == set(curves[1]) >= {"Loss/G/adv", "Loss/G/l1", "Loss/D/adv"}
    for tag, values in curves[1].items():
        assert len(values) == 5 and values == pytest.approx(curves[0][tag], rel=1e-4), tag
    outputs = []
    for run in ("two", "one"):
        session, _ = load_trained_session(tmp_path / run, "cpu")
        inputs = session.data.train.batch(torch.arange(4)).inputs
        with torch.no_grad():
            outputs.append(session.recipe.generate(torch.zeros(4, session.recipe.latent_dim), inputs))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-4)
