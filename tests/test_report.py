"""`msgan report` never hides a run, and its files are data: tested on run folders written by hand
(the files a finished run leaves: .hydra/config.yaml, .hydra/overrides.yaml, metrics.json)."""
import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from msgan_cli.report import build_report, direction


def write_run(path: Path, overrides: list[str], metrics: dict[str, float], seed: int = 0,
              reg: dict | None = None, model: str = "dcgan") -> Path:
    (path / ".hydra").mkdir(parents=True)
    cfg = {"seed": seed, "dataset": {"name": "digits"}, "model": {"name": model}, "reg": reg or {}}
    OmegaConf.save(OmegaConf.create(cfg), path / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), path / ".hydra" / "overrides.yaml")
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


MS = {"ms": {"enabled": True, "weight": 1.0}}


def table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| method")]


def test_a_sweep_over_another_option_gets_a_column_and_no_run_vanishes(tmp_path):
    """The probe's case: `-m reg=none model.width=16,32 seed=0` showed one row; the width-32 run vanished."""
    write_run(tmp_path / "0", ["reg=none", "model.width=16", "seed=0"], {"class_acc": 0.5})
    write_run(tmp_path / "1", ["reg=none", "model.width=32", "seed=0"], {"class_acc": 0.7})
    _, text = build_report(tmp_path)
    assert "| method | model.width | seeds | class_acc ↑ |" in text
    rows = table_rows(text)
    assert [row[:4] for row in rows] == [["none", "16", "1", "0.5 ± 0"], ["none", "32", "1", "**0.7 ± 0**"]]


def test_runs_of_one_configuration_and_seed_are_said_and_averaged_per_seed(tmp_path):
    # reg=none under a swept ms weight: the weight does not apply, so these are one configuration
    for i, (weight, seed, value) in enumerate([(0.5, 0, 1.0), (2, 0, 3.0), (0.5, 1, 6.0), (2, 1, 6.0)]):
        write_run(tmp_path / str(i), ["reg=none", f"reg.ms.weight={weight}", f"seed={seed}"], {"ndb_jsd/ndb": value},
                  seed=seed, reg={"ms": {"enabled": False, "weight": weight}})
    _, text = build_report(tmp_path)
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    assert header.startswith("| method | seeds | runs | ndb_jsd/ndb ↓ |")   # no reg.ms.weight column
    assert table_rows(text)[0][:4] == ["none", "2", "4", "4 ± 2.8"]      # seeds' means 2 and 6
    assert "seed 0 has 2 runs of the same configuration, averaged" in text


def test_the_csv_holds_numbers_and_the_table_marks_the_best_with_the_baseline_first(tmp_path):
    for seed, (fid, modes) in enumerate([(20.0, 1.0), (22.0, 1.2)]):
        write_run(tmp_path / f"none{seed}", ["reg=none", f"seed={seed}"], seed=seed,
                  metrics={"fid/classifier": fid, "modes_per_input/modes": modes, "mode_score/classifier_test_acc": 0.9,
                           "pairwise_div/classifier_test_acc": 0.9, "modes_per_input/ideal_modes": 4.0})
        write_run(tmp_path / f"ms{seed}", ["reg=ms", f"seed={seed}"], seed=seed, reg=MS,
                  metrics={"fid/classifier": fid - 5, "modes_per_input/modes": modes + 2, "mode_score/classifier_test_acc": 0.9,
                           "pairwise_div/classifier_test_acc": 0.9, "modes_per_input/ideal_modes": 4.0})
    _, text = build_report(tmp_path)
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    assert header.count("classifier_test_acc") == 1                       # the one classifier, shown once
    assert "modes_per_input/ideal_modes |" in header and "ideal_modes ↑" not in header   # context: no direction
    rows = table_rows(text)
    assert [row[0] for row in rows] == ["none", "ms(w=1)"]
    assert rows[1][2] == "**3.1 ± 0.14**" and rows[1][3] == "**16 ± 1.4**"   # modes (higher) and FID (lower)
    assert "**" not in "".join(rows[0][2:4])
    with open(tmp_path / "report.csv") as f:
        records = list(csv.DictReader(f))
    ms = next(r for r in records if r["method"] == "ms(w=1)")
    assert int(ms["n"]) == 2 and float(ms["fid/classifier:mean"]) == pytest.approx(16.0)
    assert float(ms["fid/classifier:std"]) == pytest.approx(2 ** 0.5)
    assert (tmp_path / "report.png").stat().st_size > 1000


@pytest.mark.parametrize("metric,expected", [
    ("fid/inception", "lower"), ("kid/classifier_mean", "lower"), ("kid/classifier_std", None),
    ("modes_2d/modes", "higher"), ("modes_2d/kl", "lower"), ("modes_per_input/ideal_kl", None),
    ("stacked_modes/real_data_modes", None), ("ndb_jsd/per_class_mean_jsd", "lower"), ("ndb_jsd/class3_ndb", None),
    ("pairwise_div/pixel_l1", "higher"), ("pairwise_div/classifier_test_acc", None), ("is/classifier_mean", "higher"),
])
def test_each_metric_knows_which_way_is_better(metric, expected):
    assert direction(metric) == expected


def test_one_setting_written_two_ways_is_one_row_and_display_options_are_no_column(tmp_path):
    """A multirun records `trainer.progress_bar=False`, the same job resumed by hand `=false`; `1e-3` and
    `0.001` are one learning rate: the resolved values decide, and the progress bar changes no number."""
    for i, (lr, bar) in enumerate([("1e-3", "False"), ("0.001", "false")]):
        path = write_run(tmp_path / str(i), ["reg=none", f"model.lr={lr}", f"trainer.progress_bar={bar}", f"seed={i}"],
                         {"class_acc": 0.5 + i / 10}, seed=i)
        cfg = OmegaConf.load(path / ".hydra" / "config.yaml")
        cfg.model.lr, cfg.trainer = 0.001, {"progress_bar": bar == "True"}
        OmegaConf.save(cfg, path / ".hydra" / "config.yaml")
    _, text = build_report(tmp_path)
    assert "| method | seeds | class_acc ↑ |" in text
    assert [row[:3] for row in table_rows(text)] == [["none", "2", "0.55 ± 0.071"]]


def test_runs_given_the_same_options_whose_configs_differ_are_averaged_with_a_warning(tmp_path):
    """Runs of two code versions: the same command line, a default that changed (a key new in one)."""
    for seed in (0, 1):
        path = write_run(tmp_path / str(seed), ["reg=none", f"seed={seed}"], {"class_acc": 0.5}, seed=seed)
        if seed:
            cfg = OmegaConf.load(path / ".hydra" / "config.yaml")
            cfg.model.rec_latent = "fresh"
            OmegaConf.save(cfg, path / ".hydra" / "config.yaml")
    _, text = build_report(tmp_path)
    assert [row[:2] for row in table_rows(text)] == [["none", "2"]]
    assert "Warning: the runs of none were given the same options but their configs differ " \
           "(model.rec_latent: (absent) / fresh)" in text


def test_options_of_an_unused_regulariser_and_the_seed_raise_no_warning(tmp_path):
    for i, weight in enumerate((0.5, 2)):
        write_run(tmp_path / str(i), ["reg=none", f"reg.ms.weight={weight}", f"seed={i}"], {"class_acc": 0.5},
                  seed=i, reg={"ms": {"enabled": False, "weight": weight}})
    _, text = build_report(tmp_path)
    assert "Warning" not in text


def test_runs_a_sweep_asked_for_that_never_started_are_listed(tmp_path):
    """multirun.yaml as Hydra writes it: the runs are the product of the swept values, in launch order."""
    hydra = {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": None},
             "sweep": {"dir": str(tmp_path), "subdir": "${hydra.job.num}"},
             "overrides": {"task": ["reg=none,ms", "seed=0,1", "trainer.max_steps=10"]}}
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), tmp_path / "multirun.yaml")
    for number, (reg, seed) in enumerate([("none", 0), ("none", 1), ("ms", 0)]):   # #3 (ms, seed 1) never ran
        write_run(tmp_path / str(number), [f"reg={reg}", f"seed={seed}"], {"class_acc": 0.5}, seed=seed,
                  reg=MS if reg == "ms" else None)
    _, text = build_report(tmp_path)
    assert "never started, no folder: 1\n- #3: reg=ms seed=1" in text
    hydra["sweep"]["subdir"] = "${hydra.job.override_dirname}"   # folders not by number: cannot be told
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), tmp_path / "multirun.yaml")
    assert "never started" not in build_report(tmp_path)[1]


def test_rows_of_a_numeric_sweep_are_in_numeric_order(tmp_path):
    """`model.width=8,16,32` gave the rows 16, 32, 8."""
    for i, width in enumerate(["16", "32", "8"]):
        write_run(tmp_path / str(i), ["reg=none", f"model.width={width}"], {"class_acc": 0.5})
    _, text = build_report(tmp_path)
    assert [row[1] for row in table_rows(text)] == ["8", "16", "32"]
