"""A non-editable install (the wheel) carries conf/ and runs from any directory."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_the_configs_and_trains_from_anywhere(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("msgan-*.whl")
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    assert (target / "msgan_cli" / "conf" / "train.yaml").exists()
    assert (target / "msgan_cli" / "conf" / "reg" / "ms.yaml").exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The wheel's copy first on the path (ahead of any editable install); keep what the machine needs.
    python_path = os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": python_path, "MSGAN_CACHE": str(tmp_path / "cache")}
    where = subprocess.run([sys.executable, "-c", "import msgan_cli; print(msgan_cli.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True)
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr
    run = subprocess.run([sys.executable, "-m", "msgan_cli.cli", "train", *TINY, "hydra.run.dir=run"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (elsewhere / "run" / "metrics.json").exists()
