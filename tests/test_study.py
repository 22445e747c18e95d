"""scripts/study.py chooses each method's best weight by its stated rule, refuses to go on from an unfinished
grid, assembles the 5-seed comparison from the runs of two phases, and says the claim's verdict from the
paired intervals: tested on run folders written by hand (the files a finished run leaves)."""
import importlib.util
import sys
from pathlib import Path

import pytest

from datafiles import write_run

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "study.py"
spec = importlib.util.spec_from_file_location("study", SCRIPT)
study = importlib.util.module_from_spec(spec)
sys.modules["study"] = study   # dataclasses look their module up while the class is made
spec.loader.exec_module(study)

QUALITY, DIVERSITY = "modes_2d/high_quality", "modes_2d/modes"
BENCH = study.Benchmark(overrides=("experiment=grid25_pacgan",), steps=3000, quality=QUALITY, diversity=DIVERSITY,
                        weighted=("ms",), unweighted=(), curve_steps=6000, eval_every=1000, grid=(0.1, 1.0, 10.0))


def none_run(root: Path, seed: int, quality: float, diversity: float) -> None:
    write_run(root / "runs" / "none" / str(seed), ["reg=none", f"seed={seed}"],
              {QUALITY: quality, DIVERSITY: diversity}, seed=seed, model="mlp")


def ms_run(folder: Path, weight: float, seed: int, quality: float, diversity: float) -> None:
    write_run(folder / f"w{weight}_s{seed}", ["reg=ms", f"reg.ms.weight={weight}", f"seed={seed}"],
              {QUALITY: quality, DIVERSITY: diversity}, seed=seed, model="mlp",
              reg={"ms": {"enabled": True, "weight": weight}})


def grid(root: Path, values: dict[float, tuple[float, float]]) -> None:
    """reg=none at quality 50, 52, 54 on seeds 0-2 (mean 52, standard deviation 2: the floor is 50), and
    ms at each weight with {weight: (quality, diversity)} on every seed."""
    for seed, quality in zip(study.BASE_SEEDS, (50.0, 52.0, 54.0)):
        none_run(root, seed, quality, 10.0)
        for weight, (q, d) in values.items():
            ms_run(root / "runs" / "weights" / "ms", weight, seed, q, d)


def test_the_best_weight_is_the_most_diverse_whose_quality_is_within_none_s_spread(tmp_path):
    grid(tmp_path, {0.1: (51.0, 12.0), 1.0: (50.5, 15.0), 10.0: (20.0, 24.0)})   # 10: most modes, too costly
    assert study.Study("t", BENCH, tmp_path, 1).best_weights() == {"ms": 1.0}


def test_where_every_weight_costs_quality_the_least_costly_is_best(tmp_path):
    grid(tmp_path, {0.1: (45.0, 11.0), 1.0: (30.0, 15.0), 10.0: (20.0, 24.0)})
    assert study.Study("t", BENCH, tmp_path, 1).best_weights() == {"ms": 0.1}


def test_a_lower_is_better_quality_sets_its_floor_on_the_right_side():
    fid = study.Benchmark(overrides=(), steps=1, quality="fid/classifier", diversity=DIVERSITY, weighted=("ms",),
                          unweighted=(), curve_steps=1, eval_every=1)
    baseline = study.Row("none", None)
    for seed, value in enumerate((30.0, 32.0, 34.0)):    # mean 32, std 2: a FID up to 34 qualifies
        baseline.add({"fid/classifier": value, DIVERSITY: 10.0}, seed, Path(f"none/{seed}"))
    rows = []
    for weight, fid_value, modes in ((1.0, 33.5, 14.0), (3.0, 40.0, 20.0)):
        row = study.Row("ms", weight)
        for seed in range(3):
            row.add({"fid/classifier": fid_value, DIVERSITY: modes}, seed, Path(f"ms/{seed}"))
        rows.append(row)
    assert study.best_row(rows, baseline, fid).weight == 1.0


def test_an_unfinished_grid_is_refused_in_one_sentence_naming_the_phase(tmp_path):
    grid(tmp_path, {0.1: (51.0, 12.0), 1.0: (50.5, 15.0)})   # 10 missing
    with pytest.raises(SystemExit, match=r"ms's weight grid \[0.1, 1.0, 10.0\] is not finished .* run the weights phase"):
        study.Study("t", BENCH, tmp_path, 1).best_weights()


@pytest.mark.parametrize("more_seeds,expected", [
    ({3: (52.0, 16.0), 4: (52.0, 15.0)}, "holds"),
    ({3: (46.0, 16.0), 4: (47.0, 15.0)}, None),   # 5 seeds: quality 50.5 50.5 50.5 46 47 against 50 52 54 50 51
])
def test_the_comparison_joins_both_phases_and_the_summary_says_the_verdict(tmp_path, monkeypatch, more_seeds, expected):
    grid(tmp_path, {0.1: (51.0, 12.0), 1.0: (50.5, 15.0), 10.0: (20.0, 24.0)})
    for seed, (quality, diversity) in more_seeds.items():
        none_run(tmp_path, seed, 50.0 + seed - 3, 10.0)
        ms_run(tmp_path / "runs" / "seeds" / "ms" / "w1", 1.0, seed, quality, diversity)
    linked = study.Study("t", BENCH, tmp_path, 1).link_comparison()
    assert sorted(link.name for link in linked.iterdir()) == sorted(
        [f"none_seed{s}" for s in range(5)] + [f"ms(w=1)_seed{s}" for s in range(5)])   # not w=0.1 or 10
    monkeypatch.setitem(study.BENCHMARKS, "t", BENCH)
    row = study.summary({"t": tmp_path}).splitlines()[-1]
    assert row.startswith("| t | 3,000 | ms(w=1) (best) | 5 of 5 | modes_2d/modes +5.2 [+4.64, +5.76] (p 0.062) |")
    quality_cell = row.split("|")[6].replace(QUALITY, "")
    if expected:
        assert row.endswith(f"| {expected} |")
    else:   # the quality cost: mean of (0.5, -1.5, -3.5, -4, -4) = -2.5, its interval below 0 (t, 4 df: -4.94, -0.0558)
        assert quality_cell.strip().startswith("-2.5 [-4.94, -0.0558] (p 0.12)")   # the sign-flip test of 5 pairs: at best 0.0625
        assert row.endswith("| diversity at a cost in quality |")


def test_a_benchmark_without_a_comparison_says_how_to_run_it(tmp_path, monkeypatch):
    monkeypatch.setitem(study.BENCHMARKS, "t", BENCH)
    assert "(no comparison reported yet: `python scripts/study.py t`)" in study.summary({"t": tmp_path})


def test_root_with_several_benchmarks_is_refused(monkeypatch):
    monkeypatch.setenv("ROOT", "/somewhere/grid25")
    with pytest.raises(SystemExit, match="ROOT names one benchmark's folder"):
        study.study_root("digits", several=True)


@pytest.mark.parametrize("diversity_bounds,quality_bounds,diversity_sign,expected", [
    ((1.0, 3.0), (-2.0, 1.0), 1.0, "holds"),
    ((1.0, 3.0), (-2.0, -0.5), 1.0, "diversity at a cost in quality"),
    ((-1.0, 3.0), (0.5, 1.0), 1.0, "not shown: no diversity gain"),
    ((-3.0, -1.0), (-2.0, 1.0), -1.0, "holds"),                          # fewer NDB bins: more diversity
    ((1.0, 3.0), (-2.0, 1.0), -1.0, "not shown: diversity lost"),        # more NDB bins: less
    ((-3.0, -1.0), (0.5, 1.0), 1.0, "not shown: diversity lost"),
])
def test_the_verdict_reads_each_interval_on_its_metric_s_better_side(diversity_bounds, quality_bounds, diversity_sign,
                                                                     expected):
    from msgan_cli.report.statistics import PairedComparison
    seeds = tuple(range(5))
    diversity = PairedComparison(seeds, sum(diversity_bounds) / 2, diversity_bounds, 0.06, None)
    quality = PairedComparison(seeds, sum(quality_bounds) / 2, quality_bounds, 0.06, None)
    assert study.verdict(diversity, quality, diversity_sign, 1.0) == expected
    assert study.verdict(PairedComparison(seeds[:4], 2.0, diversity_bounds, 0.1, None), quality, diversity_sign,
                         1.0) == "unfinished (4 of 5 seeds)"


def test_two_runs_of_one_method_and_seed_are_refused_naming_both(tmp_path):
    grid(tmp_path, {0.1: (51.0, 12.0), 1.0: (50.5, 15.0), 10.0: (20.0, 24.0)})
    ms_run(tmp_path / "runs" / "stray", 1.0, 0, 90.0, 25.0)
    with pytest.raises(SystemExit, match=r"two runs of ms at seed 0: .*stray.* and .*weights"):
        study.Study("t", BENCH, tmp_path, 1).best_weights()


def test_a_quality_the_runs_do_not_have_is_one_sentence_naming_the_key(tmp_path):
    grid(tmp_path, {0.1: (51.0, 12.0), 1.0: (50.5, 15.0), 10.0: (20.0, 24.0)})
    wrong = study.Benchmark(**{**BENCH.__dict__, "quality": "modes_2d/hq"})
    with pytest.raises(SystemExit, match=r"metrics.json has no modes_2d/hq \(it has modes_2d/high_quality"):
        study.Study("t", wrong, tmp_path, 1).best_weights()


def test_a_key_the_baseline_runs_do_not_write_is_refused_before_the_weight_grid_runs(tmp_path, monkeypatch):
    for seed in study.BASE_SEEDS:
        none_run(tmp_path, seed, 50.0, 10.0)
    monkeypatch.setattr(study, "run_command", lambda command: pytest.fail("a sweep started"))
    wrong = study.Benchmark(**{**BENCH.__dict__, "fid": "fid/clasifier"})
    with pytest.raises(SystemExit, match=r"metrics.json has no fid/clasifier \(it has modes_2d/high_quality"):
        study.Study("t", wrong, tmp_path, 1).weight_grid()


def test_the_phases_run_the_sweeps_the_docs_name_and_a_refused_one_stops(tmp_path, monkeypatch):
    commands = []

    def run(command):
        commands.append(command)
        sweep_dir = Path(next(c for c in command if c.startswith("hydra.sweep.dir=")).partition("=")[2])
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / "multirun.yaml").write_text(str(len(commands)))   # Hydra's record: the sweep started
        return 2                                                       # some runs stopped: not fatal

    monkeypatch.setattr(study, "run_command", run)
    chosen = study.Study("t", BENCH, tmp_path, 2)
    chosen.baseline()
    chosen.weight_grid()
    swept = [[c for c in command if c.startswith(("reg", "seed=", "hydra.sweep.dir"))] for command in commands]
    assert swept == [["reg=none", "seed=0,1,2,3,4", f"hydra.sweep.dir={tmp_path}/runs/none"],
                     ["reg=ms", "reg.ms.weight=0.1,1,10", "seed=0,1,2", f"hydra.sweep.dir={tmp_path}/runs/weights/ms"]]
    assert all("hydra/launcher=parallel" in c and "hydra.launcher.n_jobs=2" in c and "trainer.max_steps=3000" in c
               for c in commands)
    monkeypatch.setattr(study, "run_command", lambda command: 2)
    with pytest.raises(SystemExit, match=r"the sweep into .*runs/none was refused \(exit 2"):
        chosen.baseline()   # exit 2 and no new record: refused before any run


def test_a_key_with_a_star_is_the_mean_over_the_views_it_matches():
    row = study.Row("ms", 1.0)
    row.add({"modes_per_input/to_fill0/modes": 1.0, "modes_per_input/to_stroke/modes": 2.0,
             "modes_per_input/to_fill0/kl": 9.0, "modes_per_input/ideal_modes": 4.0}, 0, Path("run"))
    assert row.by_seed("modes_per_input/to_*/modes") == {0: 1.5}
    assert study.better_sign("modes_per_input/to_*/modes") == 1.0 and study.better_sign("fid/to_*/classifier") == -1.0


def test_a_plane_the_metrics_do_not_declare_gets_its_frontier_drawn_by_the_report(tmp_path):
    from msgan_cli.commands import report_command
    assert BENCH.frontier_option == [] and study.BENCHMARKS["pix2pix"].frontier_option == []   # declared planes
    assert study.BENCHMARKS["stargan"].frontier_option == [   # the mean over the edits: the report computes it
        "frontier=[modes_per_input/to_*/high_quality,modes_per_input/to_*/modes]"]
    digits = study.BENCHMARKS["digits"]
    assert digits.frontier_option == ["frontier=[class_acc,ndb_jsd/per_class_mean_ndb]"]
    for seed, (accuracy, ndb) in enumerate(((0.84, 4.0), (0.85, 4.5))):
        write_run(tmp_path / "none" / str(seed), ["reg=none", f"seed={seed}"],
                  {digits.quality: accuracy, digits.diversity: ndb}, seed=seed, model="mlp")
        write_run(tmp_path / "ms" / str(seed), ["reg=ms", f"seed={seed}"],
                  {digits.quality: accuracy - 0.01, digits.diversity: ndb - 1.0}, seed=seed, model="mlp",
                  reg={"ms": {"enabled": True, "weight": 1.0}})
    report_command([str(tmp_path), *digits.frontier_option])
    assert (tmp_path / "report_frontier.png").is_file()


def test_the_sample_picture_puts_none_beside_the_best_method_at_the_same_seed(tmp_path):
    from PIL import Image
    grid(tmp_path, {0.1: (51.0, 12.0), 1.0: (50.5, 15.0), 10.0: (20.0, 24.0)})
    for seed in study.MORE_SEEDS:
        none_run(tmp_path, seed, 50.0, 10.0)
        ms_run(tmp_path / "runs" / "seeds" / "ms", 1.0, seed, 52.0, 15.0)
    colours = {"none": (255, 0, 0), "ms": (0, 0, 255)}
    for folder, colour in ((tmp_path / "runs" / "none" / "0", colours["none"]),
                           (tmp_path / "runs" / "weights" / "ms" / "w1.0_s0", colours["ms"]),
                           (tmp_path / "runs" / "weights" / "ms" / "w0.1_s0", (0, 255, 0))):   # not the best weight
        (folder / "samples").mkdir()
        Image.new("RGB", (40, 30), colour).save(folder / "samples" / "final.png")
    chosen = study.Study("t", BENCH, tmp_path, 1)
    chosen.link_comparison()
    picture = Image.open(chosen.samples_side_by_side())
    assert picture.size == (40 + 16 + 40, 30)
    assert picture.getpixel((5, 5)) == colours["none"] and picture.getpixel((60, 5)) == colours["ms"]


def test_a_learning_curve_reads_the_metrics_logged_along_training_the_last_value_of_a_step(tmp_path):
    import PIL.Image
    from torch.utils.tensorboard import SummaryWriter
    run = write_run(tmp_path / "curves" / "ms" / "0", ["reg=ms", "seed=0"], {}, model="mlp",
                    reg={"ms": {"enabled": True, "weight": 1.0}})
    writer = SummaryWriter(run / "tb")
    for step, modes in ((1000, 5.0), (2000, 9.0), (2000, 11.0), (3000, 14.0)):   # step 2000 again after a resume
        writer.add_scalar(f"Metrics/{DIVERSITY}", modes, step)
    writer.close()
    curves = study.learning_curves(run, [DIVERSITY, QUALITY])
    assert curves[DIVERSITY] == [(1000, 5.0), (2000, 11.0), (3000, 14.0)]
    assert curves[QUALITY] == []
    assert study.plot_curves(tmp_path / "curves", BENCH) == (tmp_path / "curves.png", [QUALITY])   # said, not blank
    with PIL.Image.open(tmp_path / "curves.png") as plot:
        assert plot.size == (1000, 400)                            # quality and diversity
    with_fid = study.Benchmark(**{**BENCH.__dict__, "fid": "fid/classifier"})
    assert study.plot_curves(tmp_path / "curves", with_fid)[1] == [QUALITY, "fid/classifier"]
    with PIL.Image.open(tmp_path / "curves.png") as plot:
        assert plot.size == (1500, 400)                            # and FID beside them


def test_machine_time_sums_every_attempt_of_every_run_and_counts_those_without_a_duration(tmp_path):
    import json
    for name, attempts in (("0", [{"started": "t", "duration_s": 30.0}, {"started": "t", "duration_s": 12.5}]),
                           ("1", [{"started": "t"}, {"started": "t", "duration_s": 40.0}])):   # 1: killed once
        run = write_run(tmp_path / name, ["reg=none"], {QUALITY: 1.0})
        attempts.append({"refused": "t", "stopped": "in use"})   # refused before it started: nothing to count
        (run / "run_info.json").write_text(json.dumps({"attempts": attempts}))
    assert study.machine_time(tmp_path) == (2, 82.5, 1)
    assert study.machine_time(tmp_path / "absent") == (0, 0.0, 0)


def test_the_seeds_and_curves_phases_run_the_chosen_weights_in_folders_named_by_them(tmp_path, monkeypatch):
    two = study.Benchmark(**{**BENCH.__dict__, "weighted": ("ms", "dsgan"), "grids": (("dsgan", (1.0,)),)})
    grid(tmp_path, {0.1: (51.0, 12.0), 1.0: (50.5, 15.0), 10.0: (20.0, 24.0)})
    for seed in study.BASE_SEEDS:
        write_run(tmp_path / "runs" / "weights" / "dsgan" / str(seed), ["reg=dsgan", f"seed={seed}"],
                  {QUALITY: 52.0, DIVERSITY: 11.0}, seed=seed, model="mlp", reg={"dsgan": {"enabled": True, "weight": 8.0}})
    commands = []

    def run(command):
        commands.append([c for c in command if c.startswith(("reg", "seed=", "hydra.sweep.dir", "trainer.eval_every",
                                                             "trainer.max_steps"))])
        sweep_dir = Path(commands[-1][-1].partition("=")[2])
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / "multirun.yaml").write_text("started")
        return 0

    monkeypatch.setattr(study, "run_command", run)
    chosen = study.Study("t", study.Benchmark(**{**two.__dict__, "long_seeds": (1, 2)}), tmp_path, 2)
    chosen.more_seeds()
    chosen.curves()
    assert commands[-1] == ["seed=1,2", "reg=none,ms", "reg.ms.weight=1", "trainer.eval_every=1000", "trainer.max_steps=6000",
                            f"hydra.sweep.dir={tmp_path}/curves/none_ms_w1_seeds1-2"]   # seed-major: none, ms side by side
    assert commands[:-1] == [
        ["reg=ms", "reg.ms.weight=1", "seed=3,4", "trainer.max_steps=3000", f"hydra.sweep.dir={tmp_path}/runs/seeds/ms/w1"],
        ["reg=dsgan", "reg.dsgan.weight=8", "seed=3,4", "trainer.max_steps=3000",
         f"hydra.sweep.dir={tmp_path}/runs/seeds/dsgan/w8"],
        ["reg=none,ms,dsgan", "reg.ms.weight=1", "reg.dsgan.weight=8", "seed=0", "trainer.eval_every=1000",
         "trainer.max_steps=6000", f"hydra.sweep.dir={tmp_path}/curves/none_ms_w1_dsgan_w8"]]


@pytest.mark.parametrize("logged", [True, False])
def test_the_summary_adds_the_long_comparison_where_the_benchmark_runs_one(tmp_path, monkeypatch, logged):
    long = study.Benchmark(**{**BENCH.__dict__, "long_seeds": (1, 2, 3, 4)})
    grid(tmp_path, {0.1: (51.0, 12.0), 1.0: (50.5, 15.0), 10.0: (20.0, 24.0)})
    for seed in study.MORE_SEEDS:
        none_run(tmp_path, seed, 50.0, 10.0)
        ms_run(tmp_path / "runs" / "seeds" / "ms" / "w1", 1.0, seed, 52.0, 15.0)
    study.Study("t", long, tmp_path, 1).link_comparison()
    from torch.utils.tensorboard import SummaryWriter
    for seed in range(5):   # at the curves' budget: ms keeps more modes, none overtakes it in quality
        write_run(tmp_path / "curves" / "long" / f"none{seed}", ["reg=none", f"seed={seed}"],
                  {QUALITY: 70.0 + seed, DIVERSITY: 19.0}, seed=seed, model="mlp")
        ms_run(tmp_path / "curves" / "long", 3.0, seed, 55.0 + seed / 2, 24.0)
        # Along training (eval every 2,000 of 6,000 steps): the last third's evaluations, 4,000 and 6,000,
        # average to 2 more modes for ms (21 and 23 against 19 and 21) and a level quality.
        for run, modes in ((f"none{seed}", (15.0, 19.0, 21.0)), (f"w3.0_s{seed}", (15.0, 21.0, 23.0))) if logged else ():
            writer = SummaryWriter(tmp_path / "curves" / "long" / run / "tb")
            for step, value in zip((2000, 4000, 6000), modes):
                writer.add_scalar(f"Metrics/{DIVERSITY}", value, step)
                writer.add_scalar(f"Metrics/{QUALITY}", 60.0 + seed + step / 1000, step)
            writer.close()
    monkeypatch.setitem(study.BENCHMARKS, "t", long)
    lines = study.summary({"t": tmp_path}).splitlines()
    if logged:
        assert lines[-1].startswith("| t | 4,000-6,000 (mean) | ms(w=3) | 5 of 5 | modes_2d/modes +2 ")
        assert "| modes_2d/high_quality +0 " in lines[-1] and lines[-1].endswith("| holds |")
    else:   # no evaluation along training to average: said, not a wrong number nor a crash
        assert lines[-1] == ("| t | 4,000-6,000 (mean) | (a run of the curves logged no evaluation from step 4,000 on: "
                             "trainer.eval_every) | | | | |")
    assert lines[-2].startswith("| t | 6,000 | ms(w=3) | 5 of 5 | modes_2d/modes +5 ")
    assert lines[-2].endswith("| diversity at a cost in quality |")
    assert lines[-3].startswith("| t | 3,000 | ms(w=1) (best) | 5 of 5 |")


def test_a_study_stopped_by_a_signal_stops_its_sweep_waits_for_it_and_says_how_to_resume(tmp_path, monkeypatch):
    import signal
    import threading
    monkeypatch.setattr(study, "STOP", study.Stop())
    with pytest.raises(SystemExit, match=r"^study.py: stopped \(no sweep was running\)"):
        study.STOP.request(signal.SIGTERM, None)
    monkeypatch.setattr(study, "STOP", study.Stop())
    sweep = [sys.executable, "-c", "import signal, sys, time\n"          # a sweep that stops when told to
             "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))\ntime.sleep(60)"]
    threading.Timer(1.0, study.STOP.request, (signal.SIGTERM, None)).start()   # kill <pid> of the script, meanwhile
    assert study.run_command(sweep) == 143 and study.STOP.requested           # passed on, and waited for

    def stopped_meanwhile(command):
        study.STOP.requested = True
        return 143
    monkeypatch.setattr(study, "run_command", stopped_meanwhile)
    with pytest.raises(SystemExit, match=r"^study.py: stopped; the runs in progress stop after their step with a "
                                         r"checkpoint \(each says so in its train.log\): the same command resumes "
                                         r"the study where it stopped$"):
        study.Study("t", BENCH, tmp_path, 1).sweep("runs/none", ["reg=none"])
