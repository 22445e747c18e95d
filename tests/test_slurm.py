"""Sweeps on a real SLURM cluster (scripts/slurm_cluster.sh start): a sweep becomes one job array with a
run directory per job, and a job requeued mid-training resumes and ends with the weights of an
uninterrupted run. Skipped when no cluster answers."""
import json
import shutil
import subprocess
import sys
import time

import pytest
import torch

from conftest import msgan, state_of

FAST = ["model.width=8", "trainer.batch_size=16", "eval.num_samples=64", "eval.classifier.steps=20",
        "eval.classifier.width=4", "eval.ndb.bins=8", "eval.ndb.per_class_bins=3", "trainer.progress_bar=false",
        "hardware=cpu"]
ON_SLURM = ["hydra/launcher=slurm", "hydra.launcher.mem_gb=1", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.timeout_min=20"]


def cluster_reason() -> str | None:
    if shutil.which("sinfo") is None:
        return "no SLURM client here (scripts/slurm_cluster.sh start sets up a local cluster)"
    states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    if states.returncode != 0 or not {"idle", "mixed", "allocated"} & set(states.stdout.split()):
        return "no SLURM cluster answers (scripts/slurm_cluster.sh start sets up a local one)"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.slurm, pytest.mark.skipif(cluster_reason() is not None, reason=str(cluster_reason()))]


def test_a_sweep_is_one_job_array_with_a_run_directory_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = msgan("train", "-m", *ON_SLURM, "reg=none,ms", "seed=0", "trainer.max_steps=4", *FAST,
                   f"hydra.sweep.dir={sweep}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    infos = [json.loads((sweep / str(n) / "run_info.json").read_text())["attempts"][-1] for n in (0, 1)]
    array_jobs = {info["slurm"]["array_job_id"] for info in infos}
    assert len(array_jobs) == 1 and sorted(info["slurm"]["array_task_id"] for info in infos) == ["0", "1"]
    report = msgan("report", str(sweep))
    assert report.returncode == 0 and "| ms(w=1) | 1 |" in report.stdout and "| none | 1 |" in report.stdout
    assert f"SLURM job {array_jobs.pop()}_" in report.stdout      # where each method's runs ran


def squeue_state(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.split()
    return out[0] if out else "GONE"


def test_a_requeued_job_resumes_and_loses_nothing(tmp_path):
    sweep = tmp_path / "sweep"
    overrides = ["reg=ms", "trainer.max_steps=400", "trainer.checkpoint_every=100000", "eval.metrics=[class_acc]",
                 *FAST]
    sweep_process = subprocess.Popen([sys.executable, "-m", "msgan_cli.cli", "train", "-m", *ON_SLURM, *overrides,
                                      "seed=0", f"hydra.sweep.dir={sweep}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = sweep / "0"
    deadline = time.time() + 300
    while not (run / "run_info.json").exists():          # training has started
        assert time.time() < deadline and sweep_process.poll() is None, "the job never started"
        time.sleep(0.5)
    time.sleep(2)                                         # some steps in, far from the end
    job = json.loads((run / "run_info.json").read_text())["attempts"][0]["slurm"]["job_id"]
    subprocess.run(["scontrol", "requeue", job], check=True)
    # SLURM delays a requeued job's start (about 2 minutes); let it start as soon as it is pending again.
    while squeue_state(job) != "PENDING":
        assert time.time() < deadline, "the requeued job never went back to pending"
        time.sleep(0.5)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    _, stderr = sweep_process.communicate(timeout=600)
    assert sweep_process.returncode == 0, stderr[-3000:]

    attempts = json.loads((run / "run_info.json").read_text())["attempts"]
    assert len(attempts) == 2 and 0 < attempts[1]["from_step"] < 400, attempts   # resumed from the signal's checkpoint
    uninterrupted = tmp_path / "uninterrupted"       # the same command without SLURM, never stopped
    one_thread = {"OMP_NUM_THREADS": "1"}           # as the SLURM job (cpus_per_task=1): the same float sums
    assert msgan("train", *overrides, "seed=0", f"hydra.run.dir={uninterrupted}", env_extra=one_thread).returncode == 0
    requeued, whole = state_of(run), state_of(uninterrupted)
    assert requeued["step"] == whole["step"] == 400
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, requeued["model"][name]), name


def test_a_ddp_job_inside_slurm_writes_one_run(tmp_path):
    sweep = tmp_path / "sweep"
    result = msgan("train", "-m", *ON_SLURM, "hydra.launcher.tasks_per_node=2", "hardware=ddp", "reg=ms", "seed=0",
                   "trainer.max_steps=4", *[o for o in FAST if o != "hardware=cpu"], "hardware.device=cpu",
                   f"hydra.sweep.dir={sweep}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = sweep / "0"
    assert json.loads((run / "distributed.json").read_text()) == {"world_size": 2, "replica_max_abs_diff": 0.0}
    assert json.loads((run / "run_info.json").read_text())["attempts"][0]["world_size"] == 2
    assert len(list((run / "tb").glob("events*"))) == 1   # rank 0 writes
