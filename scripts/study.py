"""Does mode seeking find modes without losing quality? The study of MSGAN's claim on the benchmarks whose
modes are known (docs/study/index.md): every diversity regulariser at a log grid of weights, each at its
best weight against reg=none on 5 seeds, and learning curves, as resumable Hydra multiruns.

Usage: python scripts/study.py BENCHMARK [PHASE ...]     no PHASE: every phase, in the order below
       python scripts/study.py summary [BENCHMARK ...]  the table across benchmarks, from their reports
BENCHMARK: grid25 (more in BENCHMARKS below)
PHASE:
  baseline  reg=none, and the regularisers without a weight (sn, sr), on 5 seeds
  weights   each diversity regulariser at each weight of its grid (multiples of its default) on 3 seeds
  seeds     each at its best weight (`best_weight`, from the `weights` runs) on the 2 seeds that make 5
  curves    none, ms and the best other method at a longer budget, evaluated along training, on one seed
  report    msgan report of every run (ROOT/runs: the weights on the frontier), of the 5-seed comparison
            (ROOT/best: links to its runs) and the learning curves (ROOT/curves.png)
Environment: ROOT, the folder to continue in (default multirun/study/BENCHMARK): a phase run again skips
what finished and resumes what was interrupted; JOBS (default 2) runs side by side, cores / JOBS torch
threads each (hydra/launcher=parallel).
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from dataclasses import dataclass
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


BENCHMARKS = {
    # PacGAN's 2D grid of 25 Gaussians (docs/methods.md#mixtures-2d) at 3,000 of its 400,000 steps. DivCo's
    # default weight is the reference's and already overwhelms the GAN loss here (docs/regularizers.md#divco),
    # and a step costs 5x: its grid stops at the default.
    "grid25": Benchmark(("experiment=grid25_pacgan",), 3000, "modes_2d/high_quality", "modes_2d/modes",
                        ("ms", "dsgan", "dpm", "ndiv", "divco"), ("sn", "sr"), 15000, 1000,
                        grids=(("divco", (0.1, 0.3, 1.0)),)),
}


@dataclass
class Study:
    name: str
    bench: Benchmark
    root: Path
    jobs: int

    # --- running ------------------------------------------------------------------------------------
    def sweep(self, folder: str, arguments: list[str], steps: int | None = None) -> None:
        """One Hydra multirun into ROOT/<folder> (run again: finished runs are skipped, others resume). A
        sweep whose runs partly stopped (exit 2) is reported, not fatal: `report` says why each is missing."""
        command = ["msgan", "train", "-m", *self.bench.overrides, *arguments,
                   f"trainer.max_steps={steps or self.bench.steps}", "trainer.progress_bar=false",
                   "hydra/launcher=parallel", f"hydra.launcher.n_jobs={self.jobs}",
                   f"hydra.sweep.dir={self.root / folder}"]
        print("+", " ".join(command), flush=True)
        status = subprocess.run(command).returncode
        if status not in (0, 2):
            raise SystemExit(f"study.py: {' '.join(command[:3])} ... stopped with exit {status}; run the phase "
                             f"again to resume it")

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
        for method in self.bench.weighted:
            grid = ",".join(f"{weight:g}" for weight in self.weights(method))
            self.sweep(f"runs/weights/{method}", [f"reg={method}", f"reg.{method}.weight={grid}",
                                                  f"seed={seed_list(BASE_SEEDS)}"])

    def more_seeds(self) -> None:
        chosen = self.best_weights()
        for method in self.bench.weighted:
            self.sweep(f"runs/seeds/{method}", [f"reg={method}", f"reg.{method}.weight={chosen[method]:g}",
                                                f"seed={seed_list(MORE_SEEDS)}"])

    def curves(self) -> None:
        chosen = self.best_weights()
        other = self.best_other_method(chosen)
        for method, extra in [("none", []), ("ms", [f"reg.ms.weight={chosen['ms']:g}"]),
                              (other, [f"reg.{other}.weight={chosen[other]:g}"])]:
            self.sweep(f"curves/{method}", [f"reg={method}", *extra, f"seed={seed_list(CURVE_SEEDS)}",
                                            f"trainer.eval_every={self.bench.eval_every}"], self.bench.curve_steps)

    # --- choosing -----------------------------------------------------------------------------------
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
                baseline.add(run.metrics)
            elif run.family in self.bench.weighted:
                rows.setdefault(run.family, {}).setdefault(run.weight, Row(run.family, run.weight)).add(run.metrics)
        return rows, baseline

    def best_weights(self) -> dict[str, float]:
        """Each weighted method's best weight on the grid (`best_row`); refuses while a grid is unfinished."""
        rows, baseline = self.grid_rows()
        expected = len(BASE_SEEDS)
        if len(baseline.quality(self.bench)) < expected:
            raise SystemExit(f"study.py: reg=none has {len(baseline.quality(self.bench))} of its {expected} "
                             f"seeds {BASE_SEEDS} finished under {self.root / 'runs'}; run the baseline phase first")
        chosen = {}
        for method in self.bench.weighted:
            grid = self.weights(method)
            finished = [rows.get(method, {}).get(w) for w in grid]
            if any(row is None or len(row.quality(self.bench)) < expected for row in finished):
                raise SystemExit(f"study.py: {method}'s weight grid {grid} is not finished on seeds {BASE_SEEDS} "
                                 f"under {self.root / 'runs/weights'}; run the weights phase first")
            chosen[method] = best_row(finished, baseline, self.bench).weight
        return chosen

    def best_other_method(self, chosen: dict[str, float]) -> str:
        """The method other than ms whose best weight is best by the same rule (`best_row`)."""
        rows, baseline = self.grid_rows()
        others = [rows[method][chosen[method]] for method in self.bench.weighted if method != "ms"]
        return best_row(others, baseline, self.bench).method


@dataclass
class Row:
    """A method at one weight: its metrics per seed (one run each)."""

    method: str
    weight: float | None
    metrics: list[dict[str, float]] = None

    def add(self, metrics: dict[str, float]) -> None:
        self.metrics = (self.metrics or []) + [metrics]

    def values(self, key: str) -> list[float]:
        return [m[key] for m in self.metrics or [] if key in m]

    def quality(self, bench: Benchmark) -> list[float]:
        return self.values(bench.quality)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def std(values: list[float]) -> float:
    centre = mean(values)
    return (sum((v - centre) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5


def best_row(rows: list[Row], baseline: Row, bench: Benchmark) -> Row:
    """The study's rule for "best" (docs/study/index.md#best-weight): among the rows whose mean quality is
    no worse than reg=none's by more than none's own spread over the same seeds (its standard deviation:
    a cost within seed noise counts as none), the one with the best mean diversity; if none qualifies, the
    row with the best mean quality (the least costly setting). Directions as each metric declares them."""
    from msgan_cli.report.columns import direction
    sign = {key: (-1.0 if direction(key) == "lower" else 1.0) for key in (bench.quality, bench.diversity)}
    base_quality = baseline.quality(bench)
    floor = sign[bench.quality] * mean(base_quality) - std(base_quality)
    def score(row: Row, key: str) -> float:
        return sign[key] * mean(row.values(key))
    qualifying = [row for row in rows if score(row, bench.quality) >= floor]
    if qualifying:
        return max(qualifying, key=lambda row: (score(row, bench.diversity), score(row, bench.quality)))
    return max(rows, key=lambda row: score(row, bench.quality))


def seed_list(seeds: tuple[int, ...]) -> str:
    return ",".join(map(str, seeds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("phases", nargs="*", metavar="PHASE")
    args = parser.parse_args()
    root = Path(os.environ.get("ROOT") or f"multirun/study/{args.benchmark}").resolve()
    study = Study(args.benchmark, BENCHMARKS[args.benchmark], root, int(os.environ.get("JOBS", "2")))
    phases = {"baseline": study.baseline, "weights": study.weight_grid, "seeds": study.more_seeds,
              "curves": study.curves}
    if unknown := [phase for phase in args.phases if phase not in phases]:
        parser.error(f"no phase {', '.join(unknown)}; the phases: {', '.join(phases)}")
    for phase in args.phases or list(phases):
        phases[phase]()


if __name__ == "__main__":
    main()
