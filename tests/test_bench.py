"""scripts/bench.py runs end to end and prints what the README's performance tables are made of."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_paired_folder

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
    """--data with a user's folder: decoding rates per worker count, then the model's appetite."""
    root = write_paired_folder(tmp_path / "pairs", {"train": 16, "test": 1})
    result = subprocess.run([sys.executable, str(BENCH), "--data", "dataset=paired_folder", f"dataset.root={root}",
                             "dataset.resolution=16", "model.width=4"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert re.search(r"\| 0 \| \d+ \| \d+ \|", result.stdout)           # decoded in the training process
    assert re.search(r"model=pix2pix step \(reg=ms\), one batch repeated", result.stdout)
    assert re.search(r"\| batch 8 \| \d+ \| [\d.]+ \|", result.stdout)
