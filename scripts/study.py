"""Does mode seeking find modes without losing quality? The study of MSGAN's claim on the benchmarks whose
modes are known (docs/study/index.md): every diversity regulariser at a log grid of weights, each at its
best weight against reg=none on 5 seeds, and learning curves, as resumable Hydra multiruns.

Usage: python scripts/study.py BENCHMARK [PHASE ...]     no PHASE: every phase, in the order below
       python scripts/study.py summary [BENCHMARK ...]  the table across benchmarks, from their reports
BENCHMARK: grid25 | digits | pix2pix | drit | stackganpp | stargan (BENCHMARKS below)
PHASE:
  baseline  reg=none, and the regularisers without a weight (sn, sr), on 5 seeds
  weights   each diversity regulariser at each weight of its grid (multiples of its default) on 3 seeds
  seeds     each at its best weight (`best_row`, on the grid's seeds) on the 2 seeds that make 5
  curves    none, ms and the best other method at a longer budget, evaluated along training, on one seed;
            where the benchmark says (long_seeds), none and ms on more seeds there: a comparison at that budget
  report    msgan report of every run (ROOT/runs: the weights on the frontier), of the 5-seed comparison
            (ROOT/best: links to its runs) and of the curves' runs, the learning curves, with FID where the
            benchmark has it (ROOT/curves/<sweep>.png), none beside the best method
            (ROOT/samples_none_vs_<method>_seed0.png), the hours the runs took and the benchmark's summary lines
Environment: ROOT, the folder to continue in (default multirun/study/BENCHMARK): a phase run again skips
what finished and resumes what was interrupted; JOBS (default 2) runs side by side, cores / JOBS torch
threads each (hydra/launcher=parallel).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

BASE_SEEDS = (0, 1, 2)          # the weight grid's seeds
MORE_SEEDS = (3, 4)             # with BASE_SEEDS, the 5 seeds of the comparison
CURVE_SEEDS = (0,)


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of the study: what selects it, its budget, and the two numbers the claim is about."""

    overrides: tuple[str, ...]           # the model, dataset and evaluation (a preset, or its parts)
    steps: int                           # the budget of every comparison run
    quality: str                         # metrics.json keys: the quality the claim must not lose ...
    diversity: str                       # ... and the diversity it gains
    weighted: tuple[str, ...]            # the diversity regularisers, each over its weight grid
    unweighted: tuple[str, ...]          # regularisers without a weight (one setting)
    curve_steps: int                     # the learning curves' budget ...
    eval_every: int                      # ... and how often they are evaluated
    grid: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)   # weights as multiples of each default
    grids: tuple[tuple[str, tuple[float, ...]], ...] = ()  # a regulariser's own multiples, where it has them
    more_planes: tuple[tuple[str, str], ...] = ()          # (quality, diversity) of other views, in the summary
    long_seeds: tuple[int, ...] = ()   # more seeds of none and ms at the curves' budget: with CURVE_SEEDS, a
                                       # comparison at that budget (where the curves say the answer changes)
    fid: str | None = None             # the FID key (lower is better), a third panel of the learning curves

    @property
    def late_from(self) -> int:
        """The step from which the long comparison's second reading averages the evaluations: the last third."""
        return self.curve_steps - self.curve_steps // 3

    @property
    def curve_keys(self) -> tuple[str, ...]:
        return (self.quality, self.diversity) + ((self.fid,) if self.fid else ())

    @property
    def planes(self) -> tuple[tuple[str, str], ...]:
        """(quality, diversity) pairs: the first chooses the best weight and method, each gets a summary line."""
        return ((self.quality, self.diversity), *self.more_planes)

    @property
    def frontier_option(self) -> list[str]:
        """`msgan report`'s frontier=[quality,diversity] where the report would not draw the benchmark's plane
        on its own: two keys of different metrics (digits' class_acc and NDB; a metric declares only the
        plane of its own keys), or a mean over views (StarGAN's `to_*`), which the report computes when asked."""
        from msgan_cli.report.frontier import Plane, declared_planes
        plane = Plane(self.quality, self.diversity)
        if "*" not in self.quality + self.diversity and plane in declared_planes([self.quality, self.diversity]):
            return []
        return [f"frontier=[{self.quality},{self.diversity}]"]


IMAGE_GRIDS = (("ms", (0.3, 1.0, 3.0)), ("dsgan", (0.3, 1.0, 3.0)),   # the image models: ms and one other swept,
               ("dpm", (1.0,)), ("ndiv", (1.0,)), ("divco", (1.0,)))     # the others at their default weight
DIVERSITY_REGULARISERS = ("ms", "dsgan", "dpm", "ndiv", "divco")
BENCHMARKS = {
    # PacGAN's 2D grid of 25 Gaussians (docs/methods.md#mixtures-2d) at 3,000 of its 400,000 steps. DivCo's
    # default weight is the reference's, which already overwhelms the GAN loss here (0.5 of 25 modes: the
    # README's successors of mode seeking), and its step costs 5x: its grid stops at the default.
    "grid25": Benchmark(overrides=("experiment=grid25_pacgan",), steps=3000,
                        quality="modes_2d/high_quality", diversity="modes_2d/modes",
                        weighted=DIVERSITY_REGULARISERS, unweighted=("sn", "sr"), curve_steps=30000, eval_every=1500,
                        grids=(("divco", (0.1, 0.3, 1.0)),), long_seeds=(1, 2, 3, 4)),
    # MSGAN's categorical experiment on the embedded digits (10 classes as the known modes): quality is the
    # share of samples the project's classifier reads as their class, diversity the per-class NDB (bins of
    # a class's training images whose share in G's samples differs) and Vendi within a class.
    "digits": Benchmark(overrides=("experiment=digits_cdcgan_ms", "eval.metrics=[class_acc,ndb_jsd,vendi,fid]"),
                        steps=1500, quality="class_acc", diversity="ndb_jsd/per_class_mean_ndb",
                        weighted=DIVERSITY_REGULARISERS, unweighted=("sn", "sr"), curve_steps=6000, eval_every=500,
                        grids=(("divco", (0.1, 0.3, 1.0)),), long_seeds=(1, 2, 3, 4), fid="fid/classifier",
                        more_planes=(("class_acc", "vendi/classifier_per_class"),)),
    # The image models on their benchmarks with known modes, at each model's own CPU budget (its conf/model
    # file); ms and dsgan over 3 weights, the others at their defaults (IMAGE_GRIDS).
    "pix2pix": Benchmark(overrides=("model=pix2pix",), steps=10000, quality="modes_per_input/high_quality",
                         diversity="modes_per_input/modes", weighted=DIVERSITY_REGULARISERS, unweighted=("sn", "sr"),
                         curve_steps=30000, eval_every=2000, grids=IMAGE_GRIDS, fid="fid/classifier"),
    "drit": Benchmark(overrides=("model=drit",), steps=2700, quality="modes_per_input/AtoB/high_quality",
                      diversity="modes_per_input/AtoB/modes", weighted=("ms", "dsgan", "ndiv", "divco"),   # dpm refuses DRIT
                      unweighted=("sn", "sr"), curve_steps=8100, eval_every=900, grids=IMAGE_GRIDS,
                      fid="fid/AtoB/classifier",
                      more_planes=(("modes_per_input/BtoA/high_quality", "modes_per_input/BtoA/modes"),)),
    "stackganpp": Benchmark(overrides=("model=stackganpp",), steps=2000, quality="modes_per_input/stage1/high_quality",
                            diversity="modes_per_input/stage1/modes", weighted=DIVERSITY_REGULARISERS,
                            unweighted=("sn", "sr"), curve_steps=6000, eval_every=1000, grids=IMAGE_GRIDS,
                            fid="fid/stage1/classifier",
                            more_planes=(("modes_per_input/stage1_mean/high_quality",
                                          "modes_per_input/stage1_mean/modes"),)),
    # StarGAN with a latent: each number the mean over the 5 edits (the model page's table: docs/models/stargan.md)
    "stargan": Benchmark(overrides=("model=stargan", "model.nz=8"), steps=4000,
                         quality="modes_per_input/to_*/high_quality", diversity="modes_per_input/to_*/modes",
                         weighted=DIVERSITY_REGULARISERS, unweighted=("sn", "sr"), curve_steps=12000, eval_every=2000,
                         grids=IMAGE_GRIDS, fid="fid/to_*/classifier"),
}


def fail(message: str) -> SystemExit:
    return SystemExit(f"study.py: {message}")


@dataclass
class Study:
    name: str
    bench: Benchmark
    root: Path
    jobs: int

    # --- running ------------------------------------------------------------------------------------
    def sweep(self, folder: str, arguments: list[str], steps: int | None = None) -> None:
        """One Hydra multirun into ROOT/<folder> (run again: finished runs are skipped, others resume). Exit 2
        is msgan's for a sweep some of whose runs stopped (the report says why each is missing), and also
        for a command refused before any run: told apart by Hydra's record of the sweep, written as it starts."""
        sweep_dir = self.root / folder
        command = ["msgan", "train", "-m", *self.bench.overrides, *arguments,
                   f"trainer.max_steps={steps or self.bench.steps}", "trainer.progress_bar=false",
                   "hydra/launcher=parallel", f"hydra.launcher.n_jobs={self.jobs}", f"hydra.sweep.dir={sweep_dir}"]
        print("+", " ".join(command), flush=True)
        record = sweep_dir / "multirun.yaml"
        before = record.stat().st_mtime if record.exists() else None
        status = run_command(command)
        if STOP.requested:
            raise fail("stopped; the runs in progress stop after their step with a checkpoint (each says so in "
                       "its train.log): the same command resumes the study where it stopped")
        started = record.exists() and record.stat().st_mtime != before
        if status == 0 or (status == 2 and started):
            return
        raise fail(f"the sweep into {sweep_dir} {'stopped' if started else 'was refused'} (exit {status}, its message "
                   f"above); run the phase again once that is mended, it resumes")

    def weights(self, method: str) -> list[float]:
        """The method's weight grid: multiples of its default weight (conf/reg/<method>.yaml)."""
        from msgan_cli.config import compose_config
        default = float(compose_config("train", [*self.bench.overrides, f"reg={method}"]).reg[method].weight)
        multiples = dict(self.bench.grids).get(method, self.bench.grid)
        return [float(f"{default * multiple:.6g}") for multiple in multiples]

    def baseline(self) -> None:
        seeds = seed_list(BASE_SEEDS + MORE_SEEDS)
        self.sweep("runs/none", ["reg=none", f"seed={seeds}"])
        for method in self.bench.unweighted:
            self.sweep(f"runs/fixed/{method}", [f"reg={method}", f"seed={seeds}"])

    def weight_grid(self) -> None:
        _, baseline = self.grid_rows()
        # A key the runs do not write, said now rather than after the whole grid (FID too: the curves plot it).
        check_metrics(baseline, self.bench, with_fid=True)
        for method in self.bench.weighted:
            grid = ",".join(f"{weight:g}" for weight in self.weights(method))
            self.sweep(f"runs/weights/{method}", [f"reg={method}", f"reg.{method}.weight={grid}",
                                                  f"seed={seed_list(BASE_SEEDS)}"])

    def more_seeds(self) -> None:
        # A folder per weight: were the choice to change (a grid edited), the new weight's runs start in
        # their own folder instead of meeting the old weight's finished ones.
        for method, weight in self.best_weights().items():
            self.sweep(f"runs/seeds/{method}/w{weight:g}", [f"reg={method}", f"reg.{method}.weight={weight:g}",
                                                            f"seed={seed_list(MORE_SEEDS)}"])

    def curves(self) -> None:
        """One multirun over reg=none,ms,<other>, each weight given for the run that uses it (an option of a
        regulariser a run does not select changes nothing in it), so that JOBS of them run side by side; its
        folder names the weights, so a changed choice starts afresh rather than meeting old runs."""
        chosen = self.best_weights()
        other = self.best_method(chosen, excluded=("ms",)).method
        weights = {method: chosen[method] for method in ("ms", other)}
        label = "_".join(f"{method}_w{weight:g}" for method, weight in weights.items())
        self.sweep(f"curves/none_{label}", [f"reg=none,{','.join(weights)}",
                                            *(f"reg.{method}.weight={weight:g}" for method, weight in weights.items()),
                                            f"seed={seed_list(CURVE_SEEDS)}", f"trainer.eval_every={self.bench.eval_every}"],
                   self.bench.curve_steps)
        if self.bench.long_seeds:   # seed-major, so that none and ms of one seed run side by side
            self.sweep(f"curves/none_ms_w{chosen['ms']:g}_seeds{'-'.join(map(str, self.bench.long_seeds))}",
                       [f"seed={seed_list(self.bench.long_seeds)}", "reg=none,ms", f"reg.ms.weight={chosen['ms']:g}",
                        f"trainer.eval_every={self.bench.eval_every}"], self.bench.curve_steps)

    def report(self) -> None:
        """What the benchmark's page shows: every run's report (the weight curves on the frontier), the
        5-seed comparison's, the learning curves, none beside the best method, and the summary line."""
        reported = [self.root / "runs", self.link_comparison()] + ([self.root / "curves"] if self.has_curves else [])
        for folder in reported:
            if subprocess.run(["msgan", "report", str(folder), *self.bench.frontier_option]).returncode != 0:
                raise fail(f"msgan report {folder} failed (its message above)")
        for sweep_dir in sorted(p for p in (self.root / "curves").glob("*") if p.is_dir()):   # a plot per sweep
            path, missing = plot_curves(sweep_dir, self.bench)
            print(f"Wrote {path}" + (f"; no run under {sweep_dir} logged {', '.join(missing)} along training "
                                     f"(its eval.metrics, or trainer.eval_every): that panel is empty" if missing else ""))
        print(f"Wrote {self.samples_side_by_side()}")
        for folder in ("runs", "curves"):
            runs, seconds, unmeasured = machine_time(self.root / folder)
            print(f"{folder}: {runs} runs, {seconds / 3600:.2f} hours of runs (each attempt's duration, run_info.json; "
                  f"{self.jobs} side by side)" + (f"; not counted: {unmeasured} attempts that recorded no duration "
                                                  f"(killed outright, or stopped before msgan recorded it)"
                                                  if unmeasured else ""))
        print(summary({self.name: self.root}))

    @property
    def has_curves(self) -> bool:
        return (self.root / "curves").is_dir()

    def samples_side_by_side(self, seed: int = 0) -> Path:
        """ROOT/samples_none_vs_<method>_seed<seed>.png: the final sample grids (every view's, one above the
        other) of reg=none (left) and of the best method at its best weight (right), both of one seed."""
        from PIL import Image

        chosen = self.best_weights()
        best = self.best_method(chosen)
        baseline, rows = comparison_rows(self.root / "best", self.bench)
        columns = []
        for row in (baseline, next((r for r in rows if r.method == best.method), None)):
            path = row.paths.get(seed) if row is not None else None
            pictures = sorted((path / "samples").glob("final*.png")) if path is not None else []
            if not pictures:
                raise fail(f"no final sample grid of {best.method if row is not baseline else 'none'} at seed {seed} "
                           f"under {self.root / 'best'}; run the seeds and report phases")
            grids = [Image.open(picture).convert("RGB") for picture in pictures]
            column = Image.new("RGB", (max(g.width for g in grids), sum(g.height for g in grids)), "white")
            top = 0
            for grid in grids:
                column.paste(grid, (0, top))
                top += grid.height
            columns.append(column)
        gap = 16
        picture = Image.new("RGB", (sum(c.width for c in columns) + gap, max(c.height for c in columns)), "white")
        picture.paste(columns[0], (0, 0))
        picture.paste(columns[1], (columns[0].width + gap, 0))
        path = self.root / f"samples_none_vs_{best.method}_seed{seed}.png"
        picture.save(path)
        return path

    def link_comparison(self) -> Path:
        """ROOT/best: links to the runs of the 5-seed comparison (none, the unweighted regularisers, each
        weighted one at its best weight on every seed), one folder that `msgan report` reads as one sweep.
        Runs that did not finish are not linked: `msgan report ROOT/runs` lists them with the reason."""
        from msgan_cli.report.runs import collect_runs
        chosen = self.best_weights()
        folder = self.root / "best"
        folder.mkdir(exist_ok=True)
        for link in folder.iterdir():
            if link.is_symlink():
                link.unlink()
        runs, _ = collect_runs(self.root / "runs")
        for run in runs:
            if run.family == "none" or run.family in self.bench.unweighted or chosen.get(run.family) == run.weight:
                link = folder / f"{run.method}_seed{run.seed}"
                if link.is_symlink():
                    raise fail(f"two runs of {run.method} at seed {run.seed}: {link.resolve()} and {run.path}; "
                               f"move one out of {self.root / 'runs'}")
                link.symlink_to(run.path.resolve())
        return folder

    # --- choosing (on the grid's seeds, BASE_SEEDS) ---------------------------------------------------
    def grid_rows(self) -> tuple[dict[str, dict[float, Row]], Row]:
        """The weight grid's rows on BASE_SEEDS, per method and weight, and reg=none's on the same seeds."""
        from msgan_cli.report.runs import collect_runs
        runs, _ = collect_runs(self.root / "runs")
        rows: dict[str, dict[float, Row]] = {}
        baseline = Row("none", None)
        for run in runs:
            if run.seed not in BASE_SEEDS:
                continue
            if run.family == "none":
                baseline.add(run.metrics, run.seed, run.path)
            elif run.family in self.bench.weighted:
                row = rows.setdefault(run.family, {}).setdefault(run.weight, Row(run.family, run.weight))
                row.add(run.metrics, run.seed, run.path)
        return rows, baseline

    def best_weights(self) -> dict[str, float]:
        """Each weighted method's best weight on the grid (`best_row`); refuses while a grid is unfinished."""
        rows, baseline = self.grid_rows()
        if baseline.seeds != list(BASE_SEEDS):
            raise fail(f"reg=none has seeds {baseline.seeds} of {list(BASE_SEEDS)} finished under {self.root / 'runs'}; "
                       f"run the baseline phase first")
        check_metrics(baseline, self.bench)
        chosen = {}
        for method in self.bench.weighted:
            grid = self.weights(method)
            finished = [rows.get(method, {}).get(w) for w in grid]
            if any(row is None or row.seeds != list(BASE_SEEDS) for row in finished):
                raise fail(f"{method}'s weight grid {grid} is not finished on seeds {list(BASE_SEEDS)} under "
                           f"{self.root / 'runs/weights'}; run the weights phase first")
            for row in finished:
                check_metrics(row, self.bench)
            chosen[method] = best_row(finished, baseline, self.bench).weight
        return chosen

    def best_method(self, chosen: dict[str, float], excluded: tuple[str, ...] = ()) -> Row:
        """The method whose best weight is best by the same rule (`best_row`), on the grid's seeds: the one
        the curves, the sample picture and the summary show beside ms."""
        rows, baseline = self.grid_rows()
        return best_row([rows[m][chosen[m]] for m in self.bench.weighted if m not in excluded], baseline, self.bench)


@dataclass
class Row:
    """A method at one weight: its metrics per seed (one run each)."""

    method: str
    weight: float | None
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    paths: dict[int, Path] = field(default_factory=dict)

    def add(self, metrics: dict[str, float], seed: int, path: Path) -> None:
        if seed in self.metrics:   # msgan report would average them; a choice must not rest on a stray copy
            raise fail(f"two runs of {self.method} at seed {seed}: {self.paths[seed]} and {path}; move one away")
        self.metrics[seed], self.paths[seed] = metrics, path

    @property
    def seeds(self) -> list[int]:
        return sorted(self.metrics)

    def by_seed(self, key: str) -> dict[int, float]:
        """{seed: value} of a metrics.json key; a key with a `*` (StarGAN's `modes_per_input/to_*/modes`) is
        the mean over the keys it matches, every view alike."""
        from msgan_cli.metric_names import matches_key
        values = {}
        for seed, metrics in self.metrics.items():
            matching = [value for name, value in metrics.items() if matches_key(name, key)]
            if matching:
                values[seed] = sum(matching) / len(matching)
        return values

    def mean(self, key: str) -> float:
        values = list(self.by_seed(key).values())
        return sum(values) / len(values)


def check_metrics(row: Row, bench: Benchmark, with_fid: bool = False) -> None:
    """Every run of the row has each key of every plane (and with `with_fid`, the FID key), or one sentence
    naming what it has instead."""
    keys = {key for plane in bench.planes for key in plane} | ({bench.fid} if with_fid and bench.fid else set())
    for key in sorted(keys):
        if missing := [seed for seed in row.seeds if seed not in row.by_seed(key)]:
            run = row.paths[missing[0]]
            found = ", ".join(sorted(row.metrics[missing[0]])[:12])
            raise fail(f"{run}'s metrics.json has no {key} (it has {found}, ...): a benchmark's quality, "
                       f"diversity and FID must be keys its eval.metrics write (or drop its FID key)")


def best_row(rows: list[Row], baseline: Row, bench: Benchmark) -> Row:
    """The study's rule for "best" (docs/study/index.md#best-weight): among the rows whose mean quality is
    no worse than reg=none's by more than none's own spread over the same seeds (its standard deviation:
    a cost within seed noise counts as none), the one with the best mean diversity; if none qualifies, the
    row with the best mean quality (the least costly setting). Directions as each metric declares them."""
    from msgan_cli.report.statistics import mean_std
    base_mean, base_std = mean_std(list(baseline.by_seed(bench.quality).values()))
    floor = better_sign(bench.quality) * base_mean - base_std

    def score(row: Row, key: str) -> float:
        return better_sign(key) * row.mean(key)

    qualifying = [row for row in rows if score(row, bench.quality) >= floor]
    if qualifying:
        return max(qualifying, key=lambda row: (score(row, bench.diversity), score(row, bench.quality)))
    return max(rows, key=lambda row: score(row, bench.quality))


def learning_curves(run_dir: Path, keys) -> dict[str, list[tuple[int, float]]]:
    """Per key, (step, value) of a metric evaluated along training: TensorBoard's Metrics/<key>, logged at
    every trainer.eval_every and at the end (a step evaluated twice, before and after a resume: its last
    value); a `*` key is the mean over its views, as Row.by_seed. The run's log is read once for all keys."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from msgan_cli.core.run_files import RunFiles
    from msgan_cli.metric_names import matches_key
    # A resumed run's writer marks the step it resumed from, and TensorBoard drops what the killed attempt
    # logged after it, warning of a "TensorFlow restart" each time: expected here, and not worth a line.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    if not RunFiles(run_dir).tensorboard.is_dir():   # a run that logged nothing along training
        return {key: [] for key in keys}
    events = EventAccumulator(str(RunFiles(run_dir).tensorboard), size_guidance={"scalars": 0})
    events.Reload()
    tags = [tag for tag in events.Tags()["scalars"] if tag.startswith("Metrics/")]
    curves = {}
    for key in keys:
        per_view = [{event.step: event.value for event in events.Scalars(tag)}
                    for tag in tags if matches_key(tag[len("Metrics/"):], key)]
        steps = sorted(set.intersection(*(set(points) for points in per_view))) if per_view else []
        curves[key] = [(step, sum(points[step] for points in per_view) / len(per_view)) for step in steps]
    return curves


def late_means(run_dir: Path, bench: Benchmark, from_step: int) -> dict[str, float]:
    """Each plane's and the FID's key: its mean over the run's evaluations along training from `from_step`
    on. One evaluation swings by a bin or a mode where the curves have flattened, the mean of several less
    (the summary gives both readings of the long comparison)."""
    means = {}
    keys = {key for plane in bench.planes for key in plane} | set(bench.curve_keys)
    for key, points in learning_curves(run_dir, keys).items():
        if values := [value for step, value in points if step >= from_step]:
            means[key] = sum(values) / len(values)
    return means


def plot_curves(folder: Path, bench: Benchmark) -> tuple[Path, list[str]]:
    """Quality, diversity and FID (where the benchmark has it) against the training step, a line per run under
    `folder`, written as <folder>.png; and the keys no run logged (their panels say so, and so must the caller)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from msgan_cli.config import load_saved_config, method_label
    from msgan_cli.core.run_files import RunFiles, run_folders
    keys = bench.curve_keys
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4))
    # A colour per method and a marker per seed: several seeds of two methods read as two bands.
    colours, markers = {}, {}
    for run_dir in run_folders(folder):
        cfg = load_saved_config(RunFiles(run_dir).config)
        method = method_label(cfg)
        colour = colours.setdefault(method, f"C{len(colours) % 10}")
        marker = markers.setdefault(cfg.seed, "o^sDvP*X<>"[len(markers) % 10])
        curves = learning_curves(run_dir, keys)
        for ax, key in zip(axes, keys):
            if points := curves[key]:
                ax.plot(*zip(*points), color=colour, marker=marker, markersize=4, linewidth=1,
                        label=f"{method} seed {cfg.seed}")
    missing = []
    for ax, key in zip(axes, keys):
        ax.set_xlabel("training step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        if not ax.lines:
            missing.append(key)
            ax.text(0.5, 0.5, "not logged along training by these runs", ha="center", transform=ax.transAxes)
    if drawn := [ax for ax in axes if ax.lines]:   # one legend: every panel has the same lines
        drawn[0].legend(fontsize="small")
    path = folder.parent / f"{folder.name}.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path, missing


def machine_time(folder: Path) -> tuple[int, float, int]:
    """The runs under `folder`, the seconds they trained and evaluated, summed over every attempt that
    ran (run_info.json's durations: a resumed run counts each part), and how many attempts that started
    have no duration to add (killed outright, e.g. by SIGKILL, or stopped by a version of msgan that did
    not record a stopped attempt's): the sum leaves those out, and the report line says how many."""
    from msgan_cli.core.jsonfiles import read_json
    from msgan_cli.core.run_files import RunFiles, run_folders
    runs = run_folders(folder) if folder.is_dir() else []
    started = [attempt for run in runs for attempt in read_json(RunFiles(run).run_info).get("attempts") or []
               if "started" in attempt or "duration_s" in attempt]
    seconds = sum(float(attempt.get("duration_s") or 0) for attempt in started)
    return len(runs), seconds, sum("duration_s" not in attempt for attempt in started)


def better_sign(key: str) -> float:
    """+1 where higher is better, -1 where lower is, as the metric declared it when it was registered (a `*`
    view, `to_*`, has its views' direction)."""
    from msgan_cli.report.columns import direction
    way = direction(key)
    if way is None:
        raise fail(f"{key} has no declared better direction; choose a quality and a diversity that have one "
                   f"(msgan report marks them with an arrow)")
    return -1.0 if way == "lower" else 1.0


COMPARISON_SEEDS = len(BASE_SEEDS + MORE_SEEDS)


def summary(roots: dict[str, Path]) -> str:
    """The table across benchmarks (docs/study/index.md#summary): per benchmark (its ROOT), mode seeking and
    the best method (`Study.best_method`, chosen on the grid's seeds), each against reg=none paired by seed
    on the 5-seed comparison: the change in diversity and in quality, each with its 95 % t interval and
    sign-flip p, and the verdict (`verdict`), a line per plane."""
    lines = ["| benchmark | steps | method | pairs | diversity: change from none [95 % CI] (p) | "
             "quality: change from none [95 % CI] (p) | verdict |", "|---|---|---|---|---|---|---|"]
    for name, root in roots.items():
        bench = BENCHMARKS[name]
        baseline, rows = comparison_rows(root / "best", bench)
        if baseline is None:
            lines.append(f"| {name} | | (no comparison reported yet: `python scripts/study.py {name}`) | | | | |")
            continue
        study = Study(name, bench, root, 1)
        best = study.best_method(study.best_weights())
        for row in [r for r in rows if r.method == "ms"] + [r for r in rows if r.method == best.method != "ms"]:
            label = f"{row.method}(w={row.weight:g}){' (best)' if row.method == best.method else ''}"
            lines += summary_lines(name, f"{bench.steps:,}", label, row, baseline, bench)
        long_baseline, long_rows = comparison_rows(root / "curves", bench)
        long_ms = next((row for row in long_rows if row.method == "ms" and len(row.seeds) > 1), None)
        if bench.long_seeds and long_baseline is not None and long_ms is not None:   # the curves' budget, 5 seeds
            lines += summary_lines(name, f"{bench.curve_steps:,}", f"ms(w={long_ms.weight:g})", long_ms, long_baseline, bench)
            late_baseline, late_rows = comparison_rows(root / "curves", bench, late_from=bench.late_from)
            late_ms = next(row for row in late_rows if row.method == "ms" and len(row.seeds) > 1)
            steps = f"{bench.late_from:,}-{bench.curve_steps:,} (mean)"
            if any(not metrics for row in (late_ms, late_baseline) for metrics in row.metrics.values()):
                lines.append(f"| {name} | {steps} | (a run of the curves logged no evaluation from step "
                             f"{bench.late_from:,} on: trainer.eval_every) | | | | |")
            else:
                lines += summary_lines(name, steps, f"ms(w={late_ms.weight:g})", late_ms, late_baseline, bench)
    return "\n".join(lines)


def summary_lines(name: str, steps: str, label: str, row: Row, baseline: Row, bench: Benchmark) -> list[str]:
    """A method's lines of the summary, one per plane: each change from none, paired by seed, and the verdict."""
    from msgan_cli.report.statistics import paired_comparison
    check_metrics(row, bench)
    lines = []
    for quality, diversity in bench.planes:
        comparisons = [paired_comparison(row.by_seed(key), baseline.by_seed(key), better_sign(key) > 0)
                       for key in (diversity, quality)]
        cells = [f"{key} {c.difference:+.3g} [{c.interval[0]:+.3g}, {c.interval[1]:+.3g}] (p {c.p:.2g})"
                 if c.interval else f"{key} {c.difference:+.3g} (one pair)"
                 for key, c in zip((diversity, quality), comparisons)]
        pairs = min(len(c.seeds) for c in comparisons)
        lines.append(f"| {name} | {steps} | {label} | {pairs} of {COMPARISON_SEEDS} | {cells[0]} | {cells[1]} | "
                     f"{verdict(*comparisons, better_sign(diversity), better_sign(quality))} |")
    return lines


def comparison_rows(folder: Path, bench: Benchmark, late_from: int | None = None) -> tuple[Row | None, list[Row]]:
    """The 5-seed comparison's rows (ROOT/best, or the long one's: ROOT/curves): reg=none's (None before the
    report phase made the folder), and each weighted method's at its best weight. With `late_from`, each
    run's numbers are the means of its evaluations along training from that step on (`late_means`)."""
    from msgan_cli.report.runs import collect_runs
    runs, _ = collect_runs(folder) if folder.is_dir() else ([], [])
    rows: dict[str, Row] = {}
    for run in runs:
        metrics = run.metrics if late_from is None else late_means(run.path, bench, late_from)
        rows.setdefault(run.family, Row(run.family, run.weight)).add(metrics, run.seed, run.path)
    return rows.get("none"), [row for family, row in rows.items() if family in bench.weighted]


def verdict(diversity, quality, diversity_sign: float, quality_sign: float) -> str:
    """From the paired comparisons with none (docs/study/index.md#verdict): holds, more diversity (its
    interval wholly on the better side of 0) and no quality lost (the quality change's interval not wholly
    on the worse side); diversity at a cost in quality; not shown: no diversity gain (the diversity
    change's interval reaches 0), or diversity lost (it lies wholly on the worse side). Fewer than 5
    pairs: unfinished."""
    if min(len(diversity.seeds), len(quality.seeds)) < COMPARISON_SEEDS:
        return f"unfinished ({min(len(diversity.seeds), len(quality.seeds))} of {COMPARISON_SEEDS} seeds)"
    sides = []
    for comparison, sign in ((diversity, diversity_sign), (quality, quality_sign)):
        low, high = sorted(sign * bound for bound in comparison.interval)
        sides.append("better" if low > 0 else "worse" if high < 0 else "either")
    if sides[0] != "better":
        return "not shown: diversity lost" if sides[0] == "worse" else "not shown: no diversity gain"
    return "holds" if sides[1] != "worse" else "diversity at a cost in quality"


def study_root(name: str, several: bool = False) -> Path:
    """The benchmark's folder: $ROOT, else multirun/study/<name>. $ROOT names one benchmark's folder."""
    if os.environ.get("ROOT") and several:
        raise fail("ROOT names one benchmark's folder: give one benchmark with it (python scripts/study.py "
                   "summary grid25), or leave it unset to read multirun/study/<benchmark> for each")
    return Path(os.environ.get("ROOT") or f"multirun/study/{name}").resolve()


def seed_list(seeds: tuple[int, ...]) -> str:
    return ",".join(map(str, seeds))


def main() -> None:
    from msgan_cli.config import check_launcher_installed
    from msgan_cli.errors import UserError
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("benchmark", choices=[*sorted(BENCHMARKS), "summary"])
    parser.add_argument("phases", nargs="*", metavar="PHASE", help="phases, or after summary: benchmarks")
    args = parser.parse_args()
    if args.benchmark == "summary":
        if unknown := [name for name in args.phases if name not in BENCHMARKS]:
            parser.error(f"no benchmark {', '.join(unknown)}; the benchmarks: {', '.join(BENCHMARKS)}")
        names = args.phases or list(BENCHMARKS)
        print(summary({name: study_root(name, several=len(names) > 1) for name in names}))
        return
    jobs = os.environ.get("JOBS", "2")
    if not jobs.isdigit() or int(jobs) < 1:
        parser.error(f"JOBS={jobs}: give the number of runs side by side, e.g. JOBS=2")
    try:
        check_launcher_installed(["hydra/launcher=parallel"])
    except UserError as error:
        raise fail(str(error)) from None
    study = Study(args.benchmark, BENCHMARKS[args.benchmark], study_root(args.benchmark), int(jobs))
    phases = {"baseline": study.baseline, "weights": study.weight_grid, "seeds": study.more_seeds,
              "curves": study.curves, "report": study.report}
    if unknown := [phase for phase in args.phases if phase not in phases]:
        parser.error(f"no phase {', '.join(unknown)}; the phases: {', '.join(phases)}")
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, STOP.request)
    for phase in args.phases or list(phases):
        phases[phase]()


class Stop:
    """Ctrl-C or `kill <pid>` of this script: the sweep in progress is told to stop (SIGTERM to its process,
    which ends at once; its runs stop after their step with a checkpoint, msgan_cli/core/sweep_process.py,
    or, with JOBS=1, the run in it does), and the script waits for that process to end before saying so.
    Without a sweep in progress (a report), the script stops at once."""

    def __init__(self):
        self.requested = False
        self.child: subprocess.Popen | None = None

    def request(self, signum, frame) -> None:
        self.requested = True
        if self.child is None:
            raise fail("stopped (no sweep was running); the same command resumes the study where it stopped")
        self.child.send_signal(signal.SIGTERM)


STOP = Stop()


def run_command(command: list[str]) -> int:
    """Run `command` (a sweep) to its end and return its exit status; see `Stop` for a stop meanwhile."""
    with subprocess.Popen(command) as child:
        STOP.child = child
        try:
            return child.wait()
        finally:
            STOP.child = None


if __name__ == "__main__":
    main()
