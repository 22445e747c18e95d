"""The report's tables: per (dataset, model), the rows with mean ± std, n and the interval of the mean
per metric, and each method paired by seed with the table's baseline row (statistics.py), as Markdown
for reading and as CSV numbers for pandas."""
from __future__ import annotations

from dataclasses import dataclass, field

from msgan_cli.errors import UserError
from msgan_cli.report.columns import direction, header, ordered_metrics, table_columns
from msgan_cli.report.frontier import Plane, frontier_flags, frontier_lines
from msgan_cli.report.runs import Group
from msgan_cli.report.statistics import (
    IntervalOptions,
    PairedComparison,
    mean_interval,
    mean_std,
    paired_comparison,
    smallest_sign_flip_p,
)

SIGNIFICANCE = 0.05
CSV_STATISTICS = ("mean", "std", "ci_low", "ci_high", "diff", "diff_low", "diff_high", "p", "p_better")


@dataclass(frozen=True)
class ReportOptions:
    """`msgan report SWEEP_DIR [baseline=ROW] [interval=t|bootstrap] [confidence=0.95] ...` (conf/report.yaml)."""

    baseline: str = "none"
    intervals: IntervalOptions = field(default_factory=IntervalOptions)
    frontier: tuple[str, str] | None = None   # [quality, diversity] metric keys; None: those the metrics declare
    columns: tuple[str, ...] | None = None    # the Markdown tables' metrics, in this order; None: every one


def check_columns(columns: tuple[str, ...] | None, metrics: list[str]) -> None:
    """Refuse `columns=[...]` naming a metric no run of the sweep has (the report would leave it out unsaid)."""
    missing = [metric for metric in columns or () if metric not in metrics]
    if missing:
        raise UserError(f"columns: no run of this sweep has {missing[0]}; its metrics are {', '.join(metrics)}.")


def chosen_columns(columns: list[tuple[str, str]], chosen: tuple[str, ...] | None) -> list[tuple[str, str]]:
    """The (metric, header) columns `columns=[...]` names, in its order, each once; every column without it."""
    if chosen is None:
        return columns
    return [(metric, header(metric)) for metric in dict.fromkeys(chosen)]


def check_baseline(tables: dict[tuple[str, str], list[Group]], baseline: str) -> None:
    """Refuse a baseline that names no row, or several rows of one setting (a regulariser at several weights)."""
    if not any(g.is_named(baseline) for groups in tables.values() for g in groups):
        if baseline == "none":
            return   # the default: tables without a `none` row say so under themselves
        labels = sorted({g.label for groups in tables.values() for g in groups})
        raise UserError(f"baseline={baseline} names no row of this sweep; give one of: {', '.join(labels)}.")
    for (dataset, model), groups in tables.items():
        for settings in {g.settings for g in groups}:
            rows = [g.label for g in groups if g.is_named(baseline) and g.settings == settings]
            if len(rows) > 1:
                raise UserError(f"baseline={baseline} matches {len(rows)} rows of the {dataset} / {model} table "
                                f"({', '.join(rows)}): give one of them, e.g. baseline={rows[0]}.")


def baseline_of(group: Group, groups: list[Group], baseline: str) -> Group | None:
    """The row `group` is paired with: the baseline row of the same settings, else the table's only baseline
    row (a `none` row has no value for a swept option of another regulariser); None if neither exists."""
    candidates = [g for g in groups if g.is_named(baseline)]
    same_settings = [g for g in candidates if g.settings == group.settings]
    if same_settings:
        return same_settings[0]
    return candidates[0] if len(candidates) == 1 else None


def comparisons(groups: list[Group], metrics: list[str], options: ReportOptions) -> dict[tuple[int, str], PairedComparison]:
    """(row index, metric) -> the row paired with its baseline, for every metric with a better direction."""
    paired = {}
    for i, group in enumerate(groups):
        base = None if group.is_named(options.baseline) else baseline_of(group, groups, options.baseline)
        if base is None:
            continue
        for metric in metrics:
            way = direction(metric)
            if way is None or metric not in group.by_seed or metric not in base.by_seed:
                continue
            result = paired_comparison(group.by_seed[metric], base.by_seed[metric], way == "higher", options.intervals)
            if result is not None:
                paired[(i, metric)] = result
    return paired


def best_rows(groups: list[Group], metric: str) -> set[int]:
    """Indices of the rows with the best mean for a metric with a direction (none with fewer than 2 rows)."""
    means = {i: mean_std(g.values[metric])[0] for i, g in enumerate(groups) if g.values.get(metric)}
    way = direction(metric)
    if way is None or len(means) < 2:
        return set()
    best = (min if way == "lower" else max)(means.values())
    return {i for i, m in means.items() if m == best}


def number(value: float) -> str:
    return f"{value:.3g}"


def cell(values: list[float] | None, options: IntervalOptions, best: bool = False, mark: str = "") -> str:
    """`mean ± std [interval of the mean]`, bold for the column's best, then ▲/▼ where the difference from
    the baseline is beyond seed noise."""
    if not values:
        return ""
    mean, std = mean_std(values)
    text = f"{mean:.4g} ± {std:.2g}"
    interval = mean_interval(values, options)
    if interval is not None:
        text += f" [{number(interval[0])}, {number(interval[1])}]"
    return (f"**{text}**" if best else text) + (f" {mark}" if mark else "")


def marker(comparison: PairedComparison | None, metric: str) -> str:
    """▲: the paired difference's interval excludes 0 on the better side, ▼: on the worse side."""
    if comparison is None or not comparison.excludes_no_difference:
        return ""
    better = (comparison.difference > 0) == (direction(metric) == "higher")
    return "▲" if better else "▼"


def markdown_table(table: tuple[str, str], groups: list[Group], keys: list[str], options: ReportOptions) -> list[str]:
    metrics = ordered_metrics({m for g in groups for m in g.values})
    columns = chosen_columns(table_columns(metrics), options.columns)
    paired = comparisons(groups, [m for m, _ in columns], options)
    repeated = any(g.duplicates() for g in groups)
    headings = ["method", *keys, "seeds", *(["runs"] if repeated else []), *(h for _, h in columns), "ran on"]
    lines = [f"### {table[0]} / {table[1]}", "", "| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    best = {metric: best_rows(groups, metric) for metric, _ in columns}
    for i, group in enumerate(groups):
        runs = sum(len(r) for r in group.runs.values())
        cells = [cell(group.values.get(m), options.intervals, i in best[m], marker(paired.get((i, m)), m))
                 for m, _ in columns]
        row = [group.label, *(value for _, value in group.settings), str(len(group.seeds)),
               *([str(runs)] if repeated else []), *cells, "; ".join(sorted(group.places))]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    confidence = f"{options.intervals.confidence:.0%}"
    lines += [f"Mean ± std over seeds [{confidence} interval of the mean, {options.intervals.name}]"
              + ("; bold: the best mean of a column (↓ lower is better, ↑ higher)" if any(best.values()) else "")
              + (f"; ▲/▼: better/worse than {options.baseline}, the {confidence} interval of the paired difference "
                 f"excluding 0 (below)" if paired else "") + ".", ""]
    lines += paired_table(groups, keys, [(m, h) for m, h in columns if direction(m)], paired, options)
    lines += frontier_lines(groups, metrics, options.frontier)
    lines += row_notes(groups)
    return lines


def paired_table(groups: list[Group], keys: list[str], columns: list[tuple[str, str]],
                 paired: dict[tuple[int, str], PairedComparison], options: ReportOptions) -> list[str]:
    """Each method against the baseline row on the seeds both ran, and what the test can and cannot say."""
    baseline = options.baseline
    compared = [i for i, g in enumerate(groups) if any((i, m) in paired for m, _ in columns)]
    lines = []
    if compared:
        confidence = f"{options.intervals.confidence:.0%}"
        lines += [f"Paired with {baseline} by seed: the mean difference (method - {baseline}) [{confidence} interval, "
                  f"{options.intervals.name}], p of the sign-flip test (two-sided), P(better): how often a run of the "
                  f"method beats a run of {baseline} (every seed against every seed; 0.5: no difference).", "",
                  "| method | " + "".join(f"{k} | " for k in keys) + "pairs | " + " | ".join(h for _, h in columns) + " |",
                  "|" + "---|" * (2 + len(keys) + len(columns))]
        for i in compared:
            group = groups[i]
            pairs = max(len(paired[(i, m)].seeds) for m, _ in columns if (i, m) in paired)
            row = [group.label, *(value for _, value in group.settings), str(pairs),
                   *(comparison_text(paired.get((i, m))) for m, _ in columns)]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        few = sorted({len(c.seeds) for c in paired.values() if smallest_sign_flip_p(len(c.seeds)) > SIGNIFICANCE})
        for n in few:
            lines.append(f"- With {n} paired seeds the sign-flip test's smallest possible p is 2/2^{n} = "
                         f"{smallest_sign_flip_p(n):.3g}: it cannot reach {SIGNIFICANCE}, whatever the data; "
                         f"6 seeds or more can.")
    unpaired = [g for i, g in enumerate(groups) if i not in compared and not g.is_named(baseline)]
    if not any(g.is_named(baseline) for g in groups):
        lines.append(f"- No {baseline} row in this table to pair the methods with: give baseline=<row> "
                     f"(e.g. baseline={groups[0].label}).")
    else:
        for group in unpaired:
            base = baseline_of(group, groups, baseline)
            why = (f"no {baseline} row with its settings" if base is None else
                   f"no seed in common with {base.name}" if not set(group.seeds) & set(base.seeds) else
                   "no metric with a better direction shown here that both have")   # columns=[...] chose others
            lines.append(f"- {group.name}: not paired ({why}).")
    return lines + ([""] if lines and lines[-1] else [])


def comparison_text(comparison: PairedComparison | None) -> str:
    if comparison is None:
        return ""
    text = f"{comparison.difference:+.3g}"
    if comparison.interval is not None:
        text += f" [{number(comparison.interval[0])}, {number(comparison.interval[1])}]"
    text += f" p={comparison.p:.3g}"
    if comparison.p_better is not None:
        text += f" P(better)={comparison.p_better:.2f}"
    return text


def row_notes(groups: list[Group]) -> list[str]:
    """Seeds run more than once (averaged), and rows whose runs' configs differ though their options agree."""
    lines = []
    for group in groups:
        for seed, paths in group.duplicates().items():
            lines.append(f"- {group.name}: seed {seed} has {len(paths)} runs of the same configuration, "
                         f"averaged: {', '.join(map(str, paths))}")
    for group in groups:
        differences = group.config_differences()
        if differences:
            listed = "; ".join(f"{key}: {' / '.join(values)}" for key, values in differences.items())
            lines.append(f"- Warning: the runs of {group.name} were given the same options but their configs "
                         f"differ ({listed}), e.g. runs of two code versions: the row averages them; report their "
                         f"folders apart if that is not what you meant.")
    return lines + ([""] if lines else [])


def csv_rows(table: tuple[str, str], groups: list[Group], all_keys: list[str], metrics: list[str],
             planes: list[Plane], options: ReportOptions) -> list[list]:
    """Numbers, not text: per metric CSV_STATISTICS (blank where a statistic does not apply: one seed has
    no interval, the baseline row no difference), the seed count as n, the pairs with the baseline, and
    per plane of the report 1 (on the frontier) or 0 (below it), blank where the table has no such plane."""
    paired = comparisons(groups, metrics, options)
    table_metrics = ordered_metrics({m for g in groups for m in g.values})
    flags = frontier_flags(groups, planes, table_metrics, options.frontier)
    rows = []
    for i, group in enumerate(groups):
        settings = dict(group.settings)
        base = None if group.is_named(options.baseline) else baseline_of(group, groups, options.baseline)
        pairs = max((len(c.seeds) for (row, _), c in paired.items() if row == i), default="")
        row = [*table, group.label, *(settings.get(k, "") for k in all_keys), len(group.seeds),
               sum(len(r) for r in group.runs.values()), base.name if base and pairs else "", pairs]
        for metric in metrics:
            values = group.values.get(metric)
            if not values:
                row += [""] * len(CSV_STATISTICS)
                continue
            interval = mean_interval(values, options.intervals) or ("", "")
            comparison = paired.get((i, metric))
            difference = ([comparison.difference, *(comparison.interval or ("", "")), comparison.p,
                           "" if comparison.p_better is None else comparison.p_better] if comparison else [""] * 5)
            row += [*mean_std(values), *interval, *difference]
        row += [flags[i].get(plane.name, "") for plane in planes]
        rows.append(row + ["; ".join(sorted(group.places))])
    return rows


def csv_header(all_keys: list[str], metrics: list[str], planes: list[Plane]) -> list[str]:
    return ["dataset", "model", "method", *all_keys, "n", "runs", "baseline", "pairs",
            *(f"{m}:{stat}" for m in metrics for stat in CSV_STATISTICS),
            *(f"frontier:{plane.name}" for plane in planes), "ran on"]
