"""`msgan report` never hides a run, and its files are data: tested on run folders written by hand
(the files a finished run leaves: .hydra/config.yaml, .hydra/overrides.yaml, metrics.json)."""
import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import run_msgan
from datafiles import write_run
from msgan_cli.core.run_files import run_folders
from msgan_cli.errors import UserError
from msgan_cli.report import ReportOptions, build_report
from msgan_cli.report.columns import direction

MS = {"ms": {"enabled": True, "weight": 1.0}}


def table_rows(text: str, header: str = "| method | ") -> list[list[str]]:
    """The cells of the first table whose header starts with `header`: the main table by default."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 2   # past the header and |---|
    rows = []
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_a_sweep_over_another_option_gets_a_column_and_no_run_vanishes(tmp_path):
    """`-m reg=none model.width=16,32 seed=0`: a row per width (one row, the width-32 run dropped, is the defect)."""
    write_run(tmp_path / "0", ["reg=none", "model.width=16", "seed=0"], {"class_acc": 0.5})
    write_run(tmp_path / "1", ["reg=none", "model.width=32", "seed=0"], {"class_acc": 0.7})
    _, text = build_report(tmp_path)
    assert "| method | model.width | seeds | class_acc ↑ |" in text
    rows = table_rows(text)
    assert [row[:4] for row in rows] == [["none", "16", "1", "0.5 ± 0"], ["none", "32", "1", "**0.7 ± 0**"]]


def test_a_folder_of_links_to_runs_of_several_sweeps_reports_each_run_once(tmp_path):
    """A comparison assembled from two sweeps by linking their runs into one folder (scripts/study.py's
    ROOT/best); a link back up the tree neither loops nor counts a run twice."""
    write_run(tmp_path / "sweep_a" / "0", ["reg=none", "seed=0"], {"class_acc": 0.5})
    write_run(tmp_path / "sweep_b" / "3", ["reg=none", "seed=1"], {"class_acc": 0.7}, seed=1)
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    (chosen / "none_seed0").symlink_to(tmp_path / "sweep_a" / "0")
    (chosen / "none_seed1").symlink_to(tmp_path / "sweep_b" / "3")
    (chosen / "loop").symlink_to(chosen)
    _, text = build_report(chosen)
    assert table_rows(text)[0][:3] == ["none", "2", "0.6 ± 0.14 [-0.671, 1.87]"]   # t(0.975, 1 df) x 0.1
    assert run_folders(tmp_path) == [tmp_path / "sweep_a" / "0", tmp_path / "sweep_b" / "3"]   # not by the links


def test_runs_of_one_configuration_and_seed_are_said_and_averaged_per_seed(tmp_path):
    # reg=none under a swept ms weight: the weight does not apply, so these are one configuration
    for i, (weight, seed, value) in enumerate([(0.5, 0, 1.0), (2, 0, 3.0), (0.5, 1, 6.0), (2, 1, 6.0)]):
        write_run(tmp_path / str(i), ["reg=none", f"reg.ms.weight={weight}", f"seed={seed}"], {"ndb_jsd/ndb": value},
                  seed=seed, reg={"ms": {"enabled": False, "weight": weight}})
    _, text = build_report(tmp_path)
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    assert header.startswith("| method | seeds | runs | ndb_jsd/ndb ↓ |")   # no reg.ms.weight column
    assert table_rows(text)[0][:4] == ["none", "2", "4", "4 ± 2.8 [-21.4, 29.4]"]   # seeds' means 2 and 6; t(0.975, 1 df) = 12.71
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
    # modes (higher) and FID (lower): the best mean, the interval of the mean, better than none on both seeds
    assert rows[1][2] == "**3.1 ± 0.14 [1.83, 4.37]** ▲" and rows[1][3] == "**16 ± 1.4 [3.29, 28.7]** ▲"
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
    `0.001` are one learning rate: the resolved values decide; the progress bar and the thread count make no
    row of their own (a sweep run with hardware.threads=1 beside one with 2 is one experiment)."""
    for i, (lr, bar) in enumerate([("1e-3", "False"), ("0.001", "false")]):
        path = write_run(tmp_path / str(i), ["reg=none", f"model.lr={lr}", f"trainer.progress_bar={bar}", f"seed={i}",
                                             f"hardware.threads={i + 1}"], {"class_acc": 0.5 + i / 10}, seed=i)
        cfg = OmegaConf.load(path / ".hydra" / "config.yaml")
        cfg.model.lr, cfg.trainer, cfg.hardware = 0.001, {"progress_bar": bar == "True"}, {"threads": i + 1}
        OmegaConf.save(cfg, path / ".hydra" / "config.yaml")
    _, text = build_report(tmp_path)
    assert "| method | seeds | class_acc ↑ |" in text
    assert [row[:3] for row in table_rows(text)] == [["none", "2", "0.55 ± 0.071 [-0.0853, 1.19]"]]


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


def paired_sweep(tmp_path: Path, gains: list[float], metric: str = "modes_per_input/modes") -> None:
    """reg=none and reg=ms over len(gains) seeds; ms's value on seed s is none's plus gains[s]."""
    for seed, gain in enumerate(gains):
        base = 1.0 + 0.37 * seed
        write_run(tmp_path / f"none{seed}", ["reg=none", f"seed={seed}"], {metric: base}, seed=seed)
        write_run(tmp_path / f"ms{seed}", ["reg=ms", f"seed={seed}"], {metric: base + gain}, seed=seed, reg=MS)


def test_a_method_better_on_every_one_of_6_seeds_is_marked_with_the_exact_p(tmp_path):
    paired_sweep(tmp_path, [0.5, 0.7, 0.4, 0.9, 0.6, 0.8])
    _, text = build_report(tmp_path)
    assert table_rows(text)[1][2].endswith("▲")                # the paired difference's interval excludes 0
    assert table_rows(text)[0][2].count("▲") == 0              # the baseline is compared with nothing
    paired = table_rows(text, "| method | pairs |")
    # P(better): 27 of the 36 (ms seed, none seed) pairs have ms above none
    assert paired == [["ms(w=1)", "6", "+0.65 [0.454, 0.846] p=0.0312 P(better)=0.75"]]
    assert "cannot reach" not in text
    with open(tmp_path / "report.csv") as f:
        ms = next(r for r in csv.DictReader(f) if r["method"] == "ms(w=1)")
    assert float(ms["modes_per_input/modes:p"]) == 2 / 64 and float(ms["modes_per_input/modes:diff"]) == pytest.approx(0.65)
    assert ms["baseline"] == "none" and ms["pairs"] == "6"


def test_identical_runs_are_not_marked_and_have_p_1(tmp_path):
    paired_sweep(tmp_path, [0.0] * 6)
    _, text = build_report(tmp_path)
    assert "▲" not in table_rows(text)[1][2] and "▼" not in table_rows(text)[1][2]
    assert table_rows(text, "| method | pairs |") == [["ms(w=1)", "6", "+0 [0, 0] p=1 P(better)=0.50"]]


def test_a_worse_method_is_marked_worse_on_a_lower_is_better_metric(tmp_path):
    paired_sweep(tmp_path, [2.0, 3.0, 2.5, 2.2, 2.9, 2.4], metric="fid/classifier")   # ms raises FID on every seed
    _, text = build_report(tmp_path)
    assert table_rows(text)[1][2].endswith("▼")
    assert table_rows(text, "| method | pairs |")[0][2] == "+2.5 [2.09, 2.91] p=0.0312 P(better)=0.00"   # every ms above


def test_with_5_seeds_the_report_says_the_test_cannot_reach_significance(tmp_path):
    paired_sweep(tmp_path, [0.5, 0.7, 0.4, 0.9, 0.6])
    _, text = build_report(tmp_path)
    assert "With 5 paired seeds the sign-flip test's smallest possible p is 2/2^5 = 0.0625: it cannot reach 0.05" in text


def test_the_csv_reads_in_pandas_with_every_statistic_numeric(tmp_path):
    pandas = pytest.importorskip("pandas")
    paired_sweep(tmp_path, [0.5, 0.7, 0.4, 0.9, 0.6])
    write_run(tmp_path / "single", ["reg=dsgan", "seed=0"], {"modes_per_input/modes": 2.0}, seed=0,
              reg={"dsgan": {"enabled": True, "weight": 1.0}})   # one seed: no interval, one pair
    build_report(tmp_path)
    frame = pandas.read_csv(tmp_path / "report.csv")
    statistic_columns = [c for c in frame.columns if ":" in c] + ["n", "runs", "pairs"]
    assert len(statistic_columns) == 9 + 3
    assert all(pandas.api.types.is_numeric_dtype(frame[c]) for c in statistic_columns), frame.dtypes
    assert frame.set_index("method").loc["dsgan(w=1)", "modes_per_input/modes:ci_low"] != frame.loc[0, "n"]  # NaN


def test_the_baseline_option_pairs_with_another_row_and_a_wrong_one_is_refused(tmp_path):
    paired_sweep(tmp_path, [0.5, 0.7, 0.4, 0.9, 0.6, 0.8])
    _, text = build_report(tmp_path, ReportOptions(baseline="ms"))
    assert [row[0] for row in table_rows(text)] == ["ms(w=1)", "none"]    # the baseline first
    assert table_rows(text, "| method | pairs |")[0][:2] == ["none", "6"] and table_rows(text)[1][2].endswith("▼")
    with pytest.raises(UserError, match=r"baseline=dpm names no row of this sweep; give one of: ms\(w=1\), none"):
        build_report(tmp_path, ReportOptions(baseline="dpm"))
    write_run(tmp_path / "ms_half", ["reg=ms", "reg.ms.weight=0.5", "seed=0"], {"modes_per_input/modes": 1.0},
              seed=0, reg={"ms": {"enabled": True, "weight": 0.5}})
    with pytest.raises(UserError, match=r"matches 2 rows .*give one of them, e.g. baseline=ms\(w=0.5\)"):
        build_report(tmp_path, ReportOptions(baseline="ms"))


def test_a_table_without_its_baseline_row_says_so(tmp_path):
    for seed in range(3):
        write_run(tmp_path / f"ms{seed}", ["reg=ms", f"seed={seed}"], {"class_acc": 0.5 + seed / 10}, seed=seed, reg=MS)
    _, text = build_report(tmp_path)
    assert "No none row in this table to pair the methods with: give baseline=<row> (e.g. baseline=ms(w=1))." in text


def test_a_row_sharing_no_seed_with_the_baseline_says_so(tmp_path):
    write_run(tmp_path / "none", ["reg=none", "seed=0"], {"class_acc": 0.5}, seed=0)
    write_run(tmp_path / "ms", ["reg=ms", "seed=1"], {"class_acc": 0.6}, seed=1, reg=MS)
    _, text = build_report(tmp_path)
    assert "- ms(w=1): not paired (no seed in common with none)." in text


def test_msgan_report_takes_its_options_and_refuses_a_wrong_one_in_one_sentence(tmp_path):
    paired_sweep(tmp_path, [0.5, 0.7, 0.4, 0.9, 0.6, 0.8])
    done = run_msgan("report", str(tmp_path), "interval=bootstrap", "confidence=0.9", "bootstrap_resamples=2000")
    assert done.returncode == 0, done.stderr
    assert "[90% interval of the mean, percentile bootstrap (2,000 resamples)]" in done.stdout
    refused = run_msgan("report", str(tmp_path), "interval=normal")
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0
    assert refused.stderr.strip() == "msgan report: interval method 'normal': use 't' or 'bootstrap'."
    unreadable = run_msgan("report", str(tmp_path), "frontier=[a")   # as msgan train words it, not Hydra's message
    assert unreadable.returncode == 2 and unreadable.stderr.startswith("msgan report: cannot read the option 'frontier=[a'")


# --- the diversity-quality frontier -----------------------------------------------------------------------


def test_the_frontier_keeps_the_rows_no_other_row_beats_on_both():
    from msgan_cli.report.frontier import dominating
    points = {0: (1.0, 5.0), 1: (2.0, 4.0), 2: (1.5, 3.0), 3: (3.0, 1.0), 4: (2.0, 4.0)}   # 4 ties 1: not beaten
    assert dominating(points, (True, True)) == {0: None, 1: None, 2: 1, 3: None, 4: None}
    # x lower-is-better (e.g. FID): now 0 beats 2 (lower x, higher y), and 3 is beaten by nobody still
    beaten = dominating(points, (False, True))
    assert [i for i, by in beaten.items() if by is None] == [0] and beaten[2] == 0


def test_each_view_gets_its_plane_and_a_glob_pairs_the_same_text():
    from msgan_cli.report.frontier import Plane, declared_planes, glob_capture
    keys = ["modes_per_input/AtoB/high_quality", "modes_per_input/AtoB/modes", "modes_per_input/BtoA/high_quality",
            "modes_per_input/BtoA/modes", "modes_2d/high_quality", "class_acc"]   # modes_2d lacks its modes
    assert declared_planes(keys) == [Plane("modes_per_input/AtoB/high_quality", "modes_per_input/AtoB/modes"),
                                     Plane("modes_per_input/BtoA/high_quality", "modes_per_input/BtoA/modes")]
    assert glob_capture("classifier_precision", "*_precision") == "classifier" and glob_capture("x", "*_precision") is None


def weight_sweep(tmp_path: Path) -> None:
    """none and ms at three weights, 3 seeds: more weight finds more modes at less quality, and w=2 loses
    to w=1 on both (the row under the frontier)."""
    rows = {"none": (None, 95.0, 1.2), 0.5: (0.5, 80.0, 2.0), 1: (1.0, 60.0, 2.8), 2: (2.0, 50.0, 2.5)}
    for name, (weight, quality, modes) in rows.items():
        for seed in range(3):
            reg = None if weight is None else {"ms": {"enabled": True, "weight": weight}}
            write_run(tmp_path / f"{name}-{seed}", ["reg=none"] if weight is None else ["reg=ms", f"reg.ms.weight={weight}"],
                      {"modes_per_input/high_quality": quality + seed, "modes_per_input/modes": modes + 0.1 * seed},
                      seed=seed, reg=reg)


def test_a_weight_sweep_names_its_frontier_flags_it_in_the_csv_and_plots_it(tmp_path):
    pandas = pytest.importorskip("pandas")
    weight_sweep(tmp_path)
    _, text = build_report(tmp_path)
    assert ("- Frontier of modes_per_input/high_quality ↑ (quality) against modes_per_input/modes ↑ (diversity), on "
            "the means: on the frontier: none, ms(w=0.5), ms(w=1); below it: ms(w=2) (beaten on both by ms(w=1)).") in text
    frame = pandas.read_csv(tmp_path / "report.csv").set_index("method")
    flags = frame["frontier:modes_per_input/high_quality|modes_per_input/modes"]
    assert flags.to_dict() == {"none": 1, "ms(w=0.5)": 1, "ms(w=1)": 1, "ms(w=2)": 0}
    assert (tmp_path / "report_frontier.png").stat().st_size > 10_000


def test_the_frontier_option_chooses_the_plane_and_a_wrong_one_is_refused(tmp_path):
    weight_sweep(tmp_path)
    done = run_msgan("report", str(tmp_path), "report.frontier=[modes_per_input/high_quality,modes_per_input/modes]")
    assert done.returncode == 0 and "report_frontier.png" in done.stdout, done.stderr
    refused = run_msgan("report", str(tmp_path), "frontier=[fid/classifier,modes_per_input/modes]")
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "msgan report: frontier: no run of this sweep has fid/classifier; give two of its metrics, e.g. "
        "frontier=[modes_per_input/high_quality,modes_per_input/modes].")


def edit_runs(tmp_path: Path, edits: dict[str, tuple[str, ...]]) -> None:
    """none and ms(w=1), 2 seeds, each run with the StarGAN-like views `edits` gives its method: ms finds
    2 more modes in every view at 10 points less quality."""
    for method, views in edits.items():
        for seed in range(2):
            lift = 1.0 if method == "ms" else 0.0
            metrics = {f"modes_per_input/{view}/{part}": value for i, view in enumerate(views)
                       for part, value in (("modes", 3.0 + i + 2 * lift + seed), ("high_quality", 80.0 + i - 10 * lift))}
            write_run(tmp_path / f"{method}-{seed}", [f"reg={method}"], metrics, seed=seed, model="stargan",
                      reg=MS if method == "ms" else None)


def test_a_frontier_over_views_is_the_mean_of_each_run_s_views_tabled_paired_and_plotted(tmp_path):
    edit_runs(tmp_path, {"none": ("to_a", "to_b"), "ms": ("to_a", "to_b")})
    _, text = build_report(tmp_path, ReportOptions(frontier=("modes_per_input/to_*/high_quality",
                                                             "modes_per_input/to_*/modes")))
    header = next(line for line in text.splitlines() if line.startswith("| method | seeds"))
    assert "modes_per_input/to_*/modes ↑" in header and "modes_per_input/to_*/high_quality ↑" in header
    none_row = next(line for line in text.splitlines() if line.startswith("| none | 2"))
    assert "| 4 ± 0.71" in none_row   # none's modes: (3 + 4) / 2 at seed 0, (4 + 5) / 2 at seed 1
    assert "- modes_per_input/to_*/modes: each run's mean over modes_per_input/to_a/modes, modes_per_input/to_b/modes." in text
    assert "on the frontier: none, ms(w=1)" in text   # more modes, less quality: neither beats the other
    assert (tmp_path / "report_frontier.png").is_file()


def test_a_frontier_over_views_the_runs_do_not_share_is_refused_naming_two_runs(tmp_path):
    edit_runs(tmp_path, {"none": ("to_a", "to_b"), "ms": ("to_a",)})
    with pytest.raises(UserError, match=r"^frontier: the runs of digits / stargan differ in the views "
                                        r"modes_per_input/to_\*/high_quality matches \(.*ms-0 has "
                                        r"modes_per_input/to_a/high_quality; .*none-0 has "
                                        r"modes_per_input/to_a/high_quality, modes_per_input/to_b/high_quality\): "
                                        r"name one view"):
        build_report(tmp_path, ReportOptions(frontier=("modes_per_input/to_*/high_quality", "modes_per_input/to_*/modes")))


def test_the_columns_option_narrows_the_markdown_tables_in_its_order_and_the_csv_keeps_every_metric(tmp_path):
    from msgan_cli.commands import report_command
    weight_sweep(tmp_path)
    def headers(*options: str) -> list[str]:
        report_command([str(tmp_path), *options])
        return [line for line in (tmp_path / "report.md").read_text().splitlines() if line.startswith("| method |")]
    assert headers() == ["| method | seeds | modes_per_input/modes ↑ | modes_per_input/high_quality ↑ | ran on |",
                         "| method | pairs | modes_per_input/modes ↑ | modes_per_input/high_quality ↑ |"]
    assert headers("columns=[modes_per_input/high_quality,modes_per_input/modes]") == [
        "| method | seeds | modes_per_input/high_quality ↑ | modes_per_input/modes ↑ | ran on |",
        "| method | pairs | modes_per_input/high_quality ↑ | modes_per_input/modes ↑ |"]
    assert headers("columns=[modes_per_input/modes]") == ["| method | seeds | modes_per_input/modes ↑ | ran on |",
                                                          "| method | pairs | modes_per_input/modes ↑ |"]
    assert "modes_per_input/high_quality:mean" in (tmp_path / "report.csv").read_text().splitlines()[0]
    write_run(tmp_path / "extra", ["reg=ms", "reg.ms.weight=1.0"], {"modes_per_input/modes": 2.0, "class_acc": 0.5},
              seed=0, reg={"ms": {"enabled": True, "weight": 1.0}})
    report_command([str(tmp_path), "columns=[class_acc]"])   # none has no class_acc: nothing to pair on
    assert "- ms(w=1): not paired (no metric with a better direction shown here that both have)." in \
        (tmp_path / "report.md").read_text()
    (tmp_path / "extra" / ".hydra" / "config.yaml").unlink()
    with pytest.raises(UserError, match=r"^columns: no run of this sweep has fid/classifier; its metrics are "
                                        r"modes_per_input/modes, modes_per_input/high_quality\.$"):
        report_command([str(tmp_path), "columns=[fid/classifier]"])


def test_a_table_without_a_plane_draws_no_frontier_and_an_old_plot_is_removed(tmp_path):
    write_run(tmp_path / "0", ["reg=none"], {"class_acc": 0.5})
    write_run(tmp_path / "1", ["reg=ms"], {"class_acc": 0.6}, reg=MS)
    (tmp_path / "report_frontier.png").write_bytes(b"a plot of other runs")
    _, text = build_report(tmp_path)
    assert "Frontier" not in text and not (tmp_path / "report_frontier.png").exists()


def test_a_view_pattern_matches_views_of_its_own_metric_and_key_only():
    from msgan_cli.metric_names import matches_key
    assert matches_key("modes_per_input/to_fill0/modes", "modes_per_input/to_*/modes")
    assert not matches_key("modes_per_input/to_fill0/kl", "modes_per_input/to_*/modes")          # another key
    assert not matches_key("mode_score/AtoB/classifier_test_acc", "mode_score/*")                # no crossing '/'
    assert matches_key("fid/AtoB/classifier", "fid/*to*/classifier") and matches_key("fid/stage1/classifier",
                                                                                      "fid/stage*/classifier")
    assert matches_key("class_acc", "class_acc") and not matches_key("class_acc", "class_acc/x")
    assert direction("modes_per_input/to_*/modes") == "higher" and direction("fid/to_*/classifier") == "lower"


def test_tables_whose_runs_differ_in_their_views_each_get_their_own_mean_and_line(tmp_path):
    edit_runs(tmp_path, {"none": ("to_a", "to_b"), "ms": ("to_a", "to_b")})
    for seed in range(2):   # another model's table, with one edit only
        write_run(tmp_path / f"other-{seed}", ["reg=none"], {"modes_per_input/to_c/modes": 2.0,
                  "modes_per_input/to_c/high_quality": 50.0}, seed=seed, model="other")
    _, text = build_report(tmp_path, ReportOptions(frontier=("modes_per_input/to_*/high_quality",
                                                             "modes_per_input/to_*/modes")))
    assert "- modes_per_input/to_*/modes (digits / other): each run's mean over modes_per_input/to_c/modes." in text
    assert ("- modes_per_input/to_*/modes (digits / stargan): each run's mean over modes_per_input/to_a/modes, "
            "modes_per_input/to_b/modes.") in text

