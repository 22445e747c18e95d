"""scripts/bench.py runs end to end and prints what the README's performance tables are made of."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
