"""`msgan report SWEEP_DIR`: one table of a sweep, a row per (dataset, model, method), a column per
metric as mean +- std over seeds, with the number of seeds. Runs without metrics.json (failed or
unfinished) are listed under the table, not silently dropped. Written as Markdown and CSV."""
from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import json

from omegaconf import OmegaConf

from msgan_cli.errors import UserError


def method_label(cfg) -> str:
    """`none`, or the selected regularisers with their weights, e.g. `ms(w=1)+sr(w=0.5)`."""
    selected = [f"{name}(w={node.weight:g})" for name, node in sorted((cfg.get("reg") or {}).items())
                if node.get("enabled", False)]
    return "+".join(selected) or "none"


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def collect_runs(sweep_dir: Path) -> tuple[dict, list[Path]]:
    """{(dataset, model, method): {metric: [values over seeds]}} and the runs that have no metrics."""
    groups: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    seeds: dict[tuple[str, str, str], set] = defaultdict(set)
    unfinished = []
    for config_path in sorted(sweep_dir.rglob(".hydra/config.yaml")):
        run_dir = config_path.parent.parent
        cfg = OmegaConf.load(config_path)
        metrics_path = run_dir / "metrics.json"
        if not metrics_path.exists():
            unfinished.append(run_dir)
            continue
        key = (str(cfg.dataset.name), str(cfg.model.name), method_label(cfg))
        if cfg.seed in seeds[key]:
            continue   # the same config and seed again (e.g. a sweep axis that does not apply to this method)
        seeds[key].add(cfg.seed)
        for name, value in json.loads(metrics_path.read_text()).items():
            groups[key][name].append(float(value))
    return groups, unfinished


def build_report(sweep_dir: Path) -> tuple[Path, str]:
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a directory: give the folder of a multirun (or of one run).")
    groups, unfinished = collect_runs(sweep_dir)
    if not groups and not unfinished:
        raise UserError(f"No msgan runs (.hydra/config.yaml) found under {sweep_dir}.")
    metrics = sorted({name for values in groups.values() for name in values})
    header = ["dataset", "model", "method", "seeds"] + metrics
    rows = []
    for (dataset, model, method), values in sorted(groups.items()):
        seeds = max(len(v) for v in values.values())
        cells = []
        for name in metrics:
            if name in values:
                mean, std = mean_std(values[name])
                cells.append(f"{mean:.4g} ± {std:.2g}")
            else:
                cells.append("")
        rows.append([dataset, model, method, str(seeds)] + cells)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if unfinished:
        lines += ["", f"Runs without metrics.json (failed or unfinished): {len(unfinished)}"]
        lines += [f"- {path}" for path in unfinished]
    text = "\n".join(lines) + "\n"
    markdown_path = sweep_dir / "report.md"
    markdown_path.write_text(text)
    with open(markdown_path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return markdown_path, text
