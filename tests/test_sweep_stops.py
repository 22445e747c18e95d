"""A run of a sweep that stops with a user error (here a refused option) does not stop the sweep:
the runs after it and, with the parallel launcher, the run beside it train to the end; the sweep then
exits 2 naming the stopped run, and `msgan report` says why it has no metrics."""
import json
import shutil

import pytest

from conftest import msgan, tiny
from msgan_cli.report import build_report

# Run #0 is refused before training (a batch size of 0), run #1 trains.
SWEEP = [*tiny("model=mlp", "dataset=grid25", "dataset.num_train=500"), "trainer.batch_size=0,16",
         "trainer.max_steps=4", "eval.metrics=[modes_2d]"]
REFUSAL = "trainer.batch_size must be a whole number >= 1; got 0."


def check_sweep(result, sweep) -> None:
    assert result.returncode == 2, result.stderr
    assert f"msgan train: run #0 stopped: {REFUSAL}" in result.stderr            # as it happens
    assert f"1 of the sweep's 2 runs stopped; the others ran to the end:\n  {sweep / '0'}: {REFUSAL}" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((sweep / "1" / "metrics.json").read_text())["modes_2d/modes"] >= 0
    assert not (sweep / "0" / "metrics.json").exists()
    _, text = build_report(sweep)
    assert f"{sweep / '0'}: stopped: {REFUSAL}" in text and "Runs not in the tables: 1" in text


@pytest.mark.slow
def test_a_stopped_run_does_not_stop_a_sequential_sweep(tmp_path):
    result = msgan("train", "-m", *SWEEP, f"hydra.sweep.dir={tmp_path}")
    check_sweep(result, tmp_path)
    # A run whose folder is gone (never started: killed or cancelled first) is named from multirun.yaml.
    shutil.rmtree(tmp_path / "1")
    _, text = build_report(tmp_path)
    assert "Runs of the sweep (multirun.yaml) that never started, no folder: 1\n- #1: trainer.batch_size=16" in text


@pytest.mark.slow
def test_a_stopped_run_does_not_end_the_run_beside_it(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="the optional launcher: pip install -e '.[parallel]'")
    result = msgan("train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *SWEEP,
                   f"hydra.sweep.dir={tmp_path}")
    check_sweep(result, tmp_path)


def test_a_stop_from_an_earlier_sweep_in_the_same_folder_is_not_reported_again(tmp_path):
    from msgan_cli.commands import stopped_runs
    from msgan_cli.train.placement import mark_last_attempt
    (tmp_path / "0").mkdir()
    mark_last_attempt(tmp_path / "0", stopped="an old refusal")
    assert stopped_runs(tmp_path, since=0.0) == [(tmp_path / "0", "an old refusal")]
    later = (tmp_path / "0" / "run_info.json").stat().st_mtime + 3600
    assert stopped_runs(tmp_path, since=later) == []
