"""`msgan report SWEEP_DIR [key=value ...]`: the tables of a sweep, one per (dataset, model).

A row per method (the `reg` choice and its weights) and per value of every other override that
differs between the runs (read from each run's `.hydra/overrides.yaml`, one column per key), the
baseline first; a column per metric as mean ± std over seeds with the interval of the mean, its
better direction in the header and the best row in bold; under it, each method paired by seed with
the baseline (the difference, its interval, the sign-flip test's p, the probability of beating it).
No finished run is dropped: runs of the same configuration and seed are averaged per seed and listed;
runs left out of the tables are listed with the reason: no metrics.json (diverged, stopped, failed or
unfinished, as run_info.json says), metrics of a step before the run's budget, a config that cannot be
read; and the runs multirun.yaml asks for that never started are listed too.

Written as Markdown (report.md), CSV (report.csv: numbers only, tables.CSV_STATISTICS per metric)
and a plot (report.png: each headline metric against the regulariser weight where the sweep varied
it, else one bar per row, every seed's value as a dot), and printed. A last column says where the
runs ran (host, SLURM job, GPU).

runs.py finds the runs and forms the rows, columns.py orders the metrics, statistics.py holds the
statistics over seeds, tables.py writes the tables, plots.py the plot.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from msgan_cli.errors import UserError
from msgan_cli.report.columns import ordered_metrics
from msgan_cli.report.frontier import add_view_means, check_frontier_choice, chosen_planes, plot_frontiers
from msgan_cli.report.plots import plot_report
from msgan_cli.report.runs import collect_runs, group_runs, runs_never_started, varying_keys
from msgan_cli.report.tables import ReportOptions, check_baseline, check_columns, csv_header, csv_rows, markdown_table

__all__ = ["FRONTIER_PLOT", "ReportOptions", "build_report"]

FRONTIER_PLOT = "report_frontier.png"


def build_report(sweep_dir: Path, options: ReportOptions = ReportOptions()) -> tuple[Path, str]:
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a directory: give the folder of a multirun (or of one run).")
    runs, left_out = collect_runs(sweep_dir)
    never_started = runs_never_started(sweep_dir)
    if not runs and not left_out:
        raise UserError(f"No msgan runs (.hydra/config.yaml) found under {sweep_dir}.")
    view_means = add_view_means(runs, options.frontier)
    by_table = defaultdict(list)
    for run in runs:
        by_table[run.table].append(run)
    tables = {}   # (dataset, model) -> (varying keys, rows)
    for table, table_runs in sorted(by_table.items()):
        keys = varying_keys(table_runs)
        tables[table] = (keys, group_runs(table_runs, keys, options.baseline))
    check_baseline({table: groups for table, (_, groups) in tables.items()}, options.baseline)
    all_metrics = ordered_metrics({m for run in runs for m in run.metrics})
    check_frontier_choice(options.frontier, set(all_metrics))
    check_columns(options.columns, all_metrics)

    lines, rows = [], []
    all_keys = sorted({key for keys, _ in tables.values() for key in keys})
    metrics_of = {table: ordered_metrics({m for g in groups for m in g.values}) for table, (_, groups) in tables.items()}
    planes = list(dict.fromkeys(plane for metrics in metrics_of.values() for plane in chosen_planes(metrics, options.frontier)))
    for table, (keys, groups) in tables.items():
        lines += markdown_table(table, groups, keys, options)
        rows += csv_rows(table, groups, all_keys, all_metrics, planes, options)
    lines += view_means + ([""] if view_means else [])
    if left_out:
        lines += [f"Runs not in the tables: {len(left_out)}"]
        lines += [f"- {path}: {reason}" for path, reason in left_out]
    if never_started:
        lines += [f"Runs of the sweep (multirun.yaml) that never started, no folder: {len(never_started)}"]
        lines += [f"- {run}" for run in never_started]
    text = "\n".join(lines) + "\n"
    markdown_path = sweep_dir / "report.md"
    markdown_path.write_text(text)
    with open(markdown_path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header(all_keys, all_metrics, planes))
        writer.writerows(rows)
    if runs:
        plot_report({table: groups for table, (_, groups) in tables.items()}, markdown_path.with_suffix(".png"))
    frontier_path = sweep_dir / FRONTIER_PLOT
    frontier_path.unlink(missing_ok=True)   # a plot of an earlier report of this folder would describe other runs
    plot_frontiers({table: (groups, metrics_of[table]) for table, (_, groups) in tables.items()},
                   options.frontier, options.intervals, frontier_path)
    return markdown_path, text
