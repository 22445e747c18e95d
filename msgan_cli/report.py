"""`msgan report SWEEP_DIR`: the tables of a sweep, one per (dataset, model), a row per method (the
`reg` choice and its weight), a column per metric as mean +- std over seeds, with the number of seeds.
Runs without metrics.json (diverged, failed or unfinished) are listed under the tables with what
run_info.json says of them, not silently dropped.
Written as Markdown (report.md), CSV (report.csv, every metric, one flat table) and a plot
(report.png: each headline metric against the regulariser weight where the sweep varied it, else one
bar per method), and printed. A last column says where the runs ran (host, SLURM job, GPU).
"""
from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from msgan_cli.errors import UserError
from msgan_cli.jsonfiles import read_json

# Shown first, and plotted (the metrics that tell collapse from diversity); others follow in name order.
HEADLINE = ("modes_2d/modes", "modes_2d/high_quality", "modes_2d/kl", "modes_per_input/modes",
            "modes_per_input/high_quality", "modes_per_input/kl", "stacked_modes/modes", "stacked_modes/kl",
            "ndb_jsd/ndb", "ndb_jsd/jsd", "ndb_jsd/per_class_mean_ndb", "ndb_jsd/per_class_mean_jsd",
            "fid/inception", "fid/classifier", "class_acc", "lpips_div", "pairwise_div/pixel_l1")
PER_CLASS = re.compile(r"/class\d+_")   # per-class columns: in the CSV only, the Markdown stays readable


@dataclass
class Group:
    """The runs of one (dataset, model, method): metric values over seeds."""

    family: str                  # the regularisers without weights, e.g. "ms" or "dpm+ms" or "none"
    weight: float | None         # the weight when one regulariser is selected
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    seeds: set = field(default_factory=set)
    places: set = field(default_factory=set)   # where its runs last ran: "host", or "host, SLURM job 12_3"


def selected_regularizers(cfg) -> list[tuple[str, float]]:
    return [(name, float(node.weight)) for name, node in sorted((cfg.get("reg") or {}).items())
            if node.get("enabled", False)]


def method_label(cfg) -> str:
    """`none`, or the selected regularisers with their weights, e.g. `ms(w=1)+sr(w=0.5)`."""
    return "+".join(f"{name}(w={weight:g})" for name, weight in selected_regularizers(cfg)) or "none"


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def collect_runs(sweep_dir: Path) -> tuple[dict[tuple[str, str, str], Group], list[Path]]:
    """{(dataset, model, method): Group} and the runs that have no metrics (see `run_status`)."""
    groups: dict[tuple[str, str, str], Group] = {}
    unfinished = []
    for config_path in sorted(sweep_dir.rglob(".hydra/config.yaml")):
        run_dir = config_path.parent.parent
        cfg = OmegaConf.load(config_path)
        metrics = read_json(run_dir / "metrics.json")
        if not metrics:   # absent (failed or unfinished) or damaged
            unfinished.append(run_dir)
            continue
        regs = selected_regularizers(cfg)
        key = (str(cfg.dataset.name), str(cfg.model.name), method_label(cfg))
        group = groups.setdefault(key, Group("+".join(n for n, _ in regs) or "none",
                                             regs[0][1] if len(regs) == 1 else None))
        if cfg.seed in group.seeds:
            continue   # the same config and seed again (e.g. a sweep axis that does not apply to this method)
        group.seeds.add(cfg.seed)
        if (place := last_placement(run_dir)) is not None:
            group.places.add(place)
        for name, value in metrics.items():
            group.values[name].append(float(value))
    return groups, unfinished


def run_status(run_dir: Path) -> str:
    """Why a run has no metrics: diverged (the loop stopped it, run_info.json says where), or failed
    or unfinished (still running, killed, or crashed)."""
    attempts = read_json(run_dir / "run_info.json").get("attempts") or [{}]
    diverged = attempts[-1].get("diverged")
    if diverged:
        return f"diverged: {diverged.get('what', 'a loss')} became NaN or inf at step {diverged.get('step', '?')}"
    return "failed or unfinished"


def last_placement(run_dir: Path) -> str | None:
    """Where the run's latest attempt ran, from run_info.json (train/placement.py)."""
    attempts = read_json(run_dir / "run_info.json").get("attempts")
    if not attempts:
        return None
    latest = attempts[-1]
    slurm = latest.get("slurm", {})
    job = (f"{slurm['array_job_id']}_{slurm['array_task_id']}" if "array_job_id" in slurm else slurm.get("job_id"))
    return latest["host"] + (f", SLURM job {job}" if job else "") + (f", {latest['gpu']}" if latest.get("gpu") else "")


def ordered_metrics(names: set[str]) -> list[str]:
    return [m for m in HEADLINE if m in names] + sorted(names - set(HEADLINE))


def cell(values: list[float] | None) -> str:
    if not values:
        return ""
    mean, std = mean_std(values)
    return f"{mean:.4g} ± {std:.2g}"


def build_report(sweep_dir: Path) -> tuple[Path, str]:
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a directory: give the folder of a multirun (or of one run).")
    groups, unfinished = collect_runs(sweep_dir)
    if not groups and not unfinished:
        raise UserError(f"No msgan runs (.hydra/config.yaml) found under {sweep_dir}.")
    tables = defaultdict(dict)   # (dataset, model) -> {method: Group}
    for (dataset, model, method), group in sorted(groups.items()):
        tables[(dataset, model)][method] = group

    lines, csv_rows = [], []
    all_metrics = ordered_metrics({m for g in groups.values() for m in g.values})
    for (dataset, model), methods in tables.items():
        metrics = ordered_metrics({m for g in methods.values() for m in g.values})
        shown = [m for m in metrics if not PER_CLASS.search(m)]
        lines += [f"### {dataset} / {model}", "", "| method | seeds | " + " | ".join(shown) + " | ran on |",
                  "|" + "---|" * (len(shown) + 3)]
        for method, group in methods.items():
            places = "; ".join(sorted(group.places))
            lines.append(f"| {method} | {len(group.seeds)} | " + " | ".join(cell(group.values.get(m)) for m in shown)
                         + f" | {places} |")
            csv_rows.append([dataset, model, method, len(group.seeds)] + [cell(group.values.get(m)) for m in all_metrics]
                            + [places])
        lines.append("")
    if unfinished:
        lines += [f"Runs without metrics.json: {len(unfinished)}"]
        lines += [f"- {path}: {run_status(path)}" for path in unfinished]
    text = "\n".join(lines) + "\n"
    markdown_path = sweep_dir / "report.md"
    markdown_path.write_text(text)
    with open(markdown_path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "model", "method", "seeds"] + all_metrics + ["ran on"])
        writer.writerows(csv_rows)
    if groups:
        plot_report(tables, markdown_path.with_suffix(".png"))
    return markdown_path, text


def plot_report(tables: dict, path: Path, per_table: int = 4) -> None:
    """One row of panels per (dataset, model), one panel per headline metric (mean +- std over seeds)."""
    import matplotlib
    matplotlib.use("Agg")   # files only, no display
    import matplotlib.pyplot as plt

    rows = list(tables.items())
    figure, axes = plt.subplots(len(rows), per_table, figsize=(4 * per_table, 3.2 * len(rows)), squeeze=False)
    for row, ((dataset, model), methods) in enumerate(rows):
        metrics = [m for m in ordered_metrics({m for g in methods.values() for m in g.values})
                   if not PER_CLASS.search(m) and not m.endswith(("num_modes_total", "classifier_test_acc", "_std"))]
        for column in range(per_table):
            axis = axes[row][column]
            if column >= len(metrics):
                axis.axis("off")
                continue
            plot_metric(axis, methods, metrics[column])
            axis.set_title(f"{dataset} / {model}: {metrics[column]}", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_metric(axis, methods: dict[str, Group], metric: str) -> None:
    """Against the weight for a regulariser swept over several weights (reg=none as a dashed line);
    otherwise one bar per method."""
    families = defaultdict(list)
    for group in methods.values():
        if metric in group.values and group.weight is not None:
            families[group.family].append(group)
    swept = {family: groups for family, groups in families.items() if len(groups) > 1}
    if swept:
        for family, groups in swept.items():
            groups = sorted(groups, key=lambda g: g.weight)
            stats = [mean_std(g.values[metric]) for g in groups]
            axis.errorbar([g.weight for g in groups], [m for m, _ in stats], yerr=[s for _, s in stats],
                          marker="o", capsize=3, label=family)
        if "none" in methods and metric in methods["none"].values:
            axis.axhline(mean_std(methods["none"].values[metric])[0], linestyle="--", color="grey", label="none")
        axis.set_xlabel("weight")
        axis.legend(fontsize=7)
        return
    names = [name for name, group in methods.items() if metric in group.values]
    stats = [mean_std(methods[name].values[metric]) for name in names]
    axis.bar(range(len(names)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3)
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
