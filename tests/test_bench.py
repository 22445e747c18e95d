"""scripts/bench.py runs end to end and prints what the README's performance tables are made of."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from datafiles import write_paired_folder
from msgan_cli.config import compose_config
from msgan_cli.data import load_dataset

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


@pytest.mark.slow
def test_bench_prints_step_times_and_the_engine_overhead():
    result = subprocess.run([sys.executable, str(BENCH), "--only", "2D GAN", "--steps", "2", "--repeats", "1"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {line.split(" | ")[0].lstrip("| "): line for line in result.stdout.splitlines() if line.startswith("| ")}
    assert re.match(r"\| none \| [\d.]+ \| 1\.00 \| \d+ \|", rows["none"])
    assert "bare step (no engine)" in rows and "refused" not in rows["ms (pair_batch=doubled)"]
    assert re.search(r"engine overhead: msgan's reg=none step / the bare step = [\d.]+ \(goal: at most 1\.25\)",
                     result.stdout)


@pytest.mark.slow
def test_data_bench_reads_a_folder_given_on_the_command_line(tmp_path):
    """--data with a user's folder: decoders compared, decoding rates per worker count, then the
    model's appetite and the workers that keep up with it (the user's options win over the paper's)."""
    root = write_paired_folder(tmp_path / "pairs", {"train": 16, "test": 1})
    result = subprocess.run([sys.executable, str(BENCH), "--data", "--steps", "1", "dataset=paired_folder",
                             f"dataset.root={root}", "dataset.resolution=16", "dataset.load_size=20", "model.width=4",
                             "trainer.batch_size=4"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert re.search(r"decoding alone, 17 files, one thread: PIL [\d.]+ ms / image, torchvision.io [\d.]+ ms / image; "
                     r"the same pixels: yes", result.stdout)
    assert re.search(r"\| 0 \| \d+ \| \d+ \|", result.stdout)           # decoded in the training process
    assert re.search(r"model=pix2pix \(reg=ms, batch 4\) on one batch repeated: \d+ ms / step, [\d.]+ images / s "
                     r"consumed: \d+ worker\(s\) at \d+ images / s each keep up", result.stdout)


@pytest.mark.slow
def test_data_bench_refuses_missing_data_in_one_sentence(tmp_path):
    result = subprocess.run([sys.executable, str(BENCH), "--data", "dataset=cub", f"dataset.root={tmp_path}"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and result.stderr.startswith("bench.py: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize("dataset", ["paired_folder", "unpaired_folder", "cub", "celeba"])
def test_the_synthetic_folders_are_read_as_the_papers_set_them(tmp_path, dataset):
    """What `--data` alone measures: files in each dataset's real format and size, which its loader
    reads with the paper's options into training images of the paper's size."""
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    _, reading = bench.write_synthetic(dataset, tmp_path, count=4)
    cfg = compose_config("train", [*bench.PAPER_DATA[dataset], f"dataset={dataset}", f"dataset.root={tmp_path}",
                                   "dataset.in_memory=false", "dataset.workers=0", *reading])
    data = load_dataset(cfg.dataset)
    assert len(data.train) == 4
    size = {"paired_folder": 256, "unpaired_folder": 216, "cub": 256, "celeba": 128}[dataset]
    images = data.train.batch(torch.arange(2), torch.arange(2)).samples
    assert images.shape[-2:] == (size, size) and images.std() > 0.1   # photo-like, not flat
