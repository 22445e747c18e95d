"""The diversity-quality frontier of a report table (docs/running.md#frontier): each row (method and
weight) a point, quality on x and diversity or coverage on y, and the rows no other row beats on both.

A regulariser that finds more modes by spreading samples off the data buys diversity with quality;
one table column at a time cannot show that trade, the plane can. Which two numbers make the plane is
declared by each metric at registration (`frontier=(quality part, diversity part)`, core/registry.py):
modes found against % high quality for the benchmarks with known modes, recall against precision
elsewhere; `msgan report SWEEP_DIR frontier=[x,y]` chooses any two metrics with a better direction, or
the mean over a metric's views (`modes_per_input/to_*/modes`: over StarGAN's edits).
The frontier is computed on the rows' means over seeds; the plot adds each mean's interval both ways
and each seed as a faint dot, so a reader sees whether a row's place on it is more than seed noise.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from msgan_cli.errors import UserError
from msgan_cli.metric_names import matches_key
from msgan_cli.report.columns import direction, registered
from msgan_cli.report.runs import Group, Run
from msgan_cli.report.statistics import IntervalOptions, mean_interval, mean_std

MAX_PANELS = 4   # frontiers plotted per table (a model with several views has a pair per view)


@dataclass(frozen=True)
class Plane:
    """Two metric keys of a table: `quality` on x, `diversity` on y."""

    quality: str
    diversity: str

    @property
    def name(self) -> str:
        return f"{self.quality}|{self.diversity}"

    def higher_is_better(self) -> tuple[bool, bool]:
        return direction(self.quality) == "higher", direction(self.diversity) == "higher"


def glob_capture(part: str, pattern: str) -> str | None:
    """What the `*` of `pattern` stands for in `part` ("" without a `*`), or None when it does not match."""
    if "*" not in pattern:
        return "" if part == pattern else None
    before, after = pattern.split("*")
    if part.startswith(before) and part.endswith(after) and len(part) >= len(before) + len(after):
        return part[len(before):len(part) - len(after)]
    return None


def declared_planes(metrics: list[str]) -> list[Plane]:
    """The planes the table's metrics declare, in the order of `metrics` (the report's column order): a
    quality key and the diversity key of the same metric, view and `*` text, when the table has both."""
    present, planes = set(metrics), []
    for key in metrics:
        metric, plain = registered(key)
        if metric is None or not metric.frontier:
            continue
        part = metric.part(plain)
        quality_pattern, diversity_pattern = metric.frontier
        star = glob_capture(part, quality_pattern)
        if star is None or not key.endswith(part):
            continue
        diversity = key[:len(key) - len(part)] + diversity_pattern.replace("*", star)
        if diversity in present and direction(key) and direction(diversity):
            planes.append(Plane(key, diversity))
    return planes


def chosen_planes(metrics: list[str], chosen: tuple[str, str] | None) -> list[Plane]:
    """The table's planes: the declared ones, or the one `frontier=[x,y]` names when the table has both keys."""
    if chosen is None:
        return declared_planes(metrics)
    return [Plane(*chosen)] if set(chosen) <= set(metrics) else []


def add_view_means(runs: list[Run], chosen: tuple[str, str] | None) -> list[str]:
    """For each key of `frontier=[x,y]` with a `*` in its view (`modes_per_input/to_*/modes`): every run's
    mean over the views it matches, added to the run's metrics under that key, so that it is a column of
    the table, paired like the others, and an axis of the plane. Returns a line per such key (per table,
    where tables differ in their views) naming the views averaged, for under the tables. Runs of one
    table that differ in the views are refused: their means would average different things."""
    notes = []
    for pattern in dict.fromkeys(key for key in chosen or () if "*" in key):
        views_of = {run.path: sorted(k for k in run.metrics if "*" not in k and matches_key(k, pattern)) for run in runs}
        per_table: dict[tuple[str, str], dict[tuple[str, ...], Path]] = defaultdict(dict)
        for run in runs:
            if views_of[run.path]:
                per_table[run.table].setdefault(tuple(views_of[run.path]), run.path)
        for table, matched in per_table.items():
            if len(matched) > 1:
                (first_views, first), (second_views, second) = sorted(matched.items())[:2]
                raise UserError(f"frontier: the runs of {table[0]} / {table[1]} differ in the views {pattern} matches "
                                f"({first} has {', '.join(first_views)}; {second} has {', '.join(second_views)}): "
                                f"name one view instead, or report the runs that share their views.")
        for run in runs:
            if views := views_of[run.path]:
                run.metrics[pattern] = sum(run.metrics[view] for view in views) / len(views)
        view_sets = {views for matched in per_table.values() for views in matched}
        for table, matched in per_table.items():
            where = f" ({table[0]} / {table[1]})" if len(view_sets) > 1 else ""
            notes.append(f"- {pattern}{where}: each run's mean over {', '.join(next(iter(matched)))}.")
            if not where:
                break
    return notes


def check_frontier_choice(chosen: tuple[str, str] | None, metrics: set[str]) -> None:
    """Refuse `frontier=[x,y]` naming a metric no run has, or one without a better direction."""
    if chosen is None:
        return
    missing = [key for key in chosen if key not in metrics]
    if missing:
        declared = sorted({plane.name.replace("|", ",") for plane in declared_planes(sorted(metrics))})
        raise UserError(f"frontier: no run of this sweep has {missing[0]}; give two of its metrics, e.g. "
                        f"frontier=[{declared[0] if declared else ','.join(sorted(metrics)[:2])}].")
    for key in chosen:
        if direction(key) is None:
            raise UserError(f"frontier: {key} has no better direction (a count in the data, a classifier's own "
                            f"accuracy or a per-class value); give metrics marked ↑ or ↓ in the table.")


def row_means(groups: list[Group], plane: Plane) -> dict[int, tuple[float, float]]:
    """Row index -> (quality mean, diversity mean) over the row's seeds, for the rows that have both."""
    return {i: (mean_std(g.values[plane.quality])[0], mean_std(g.values[plane.diversity])[0])
            for i, g in enumerate(groups) if g.values.get(plane.quality) and g.values.get(plane.diversity)}


def dominating(points: dict[int, tuple[float, float]], higher: tuple[bool, bool]) -> dict[int, int | None]:
    """Row index -> a row that beats it on both numbers (at least as good on each, better on one), or None
    for the rows on the frontier (no other row does)."""
    signed = {i: (x if higher[0] else -x, y if higher[1] else -y) for i, (x, y) in points.items()}
    beaters = {i: [j for j, (xj, yj) in signed.items() if xj >= x and yj >= y and (xj > x or yj > y)]
               for i, (x, y) in signed.items()}
    # Beating is transitive, so every row below the frontier is beaten by a row on it: name that one.
    return {i: next((j for j in better if not beaters[j]), None) for i, better in beaters.items()}


def frontier_lines(groups: list[Group], metrics: list[str], chosen: tuple[str, str] | None) -> list[str]:
    """Under a table: per plane, the rows on the frontier and, for each row below it, one that beats it."""
    lines = []
    for plane in chosen_planes(metrics, chosen):
        points = row_means(groups, plane)
        if len(points) < 2:
            continue
        arrows = ["↑" if higher else "↓" for higher in plane.higher_is_better()]
        beaten_by = dominating(points, plane.higher_is_better())
        on = [groups[i].name for i, by in beaten_by.items() if by is None]
        below = [f"{groups[i].name} (beaten on both by {groups[by].name})"
                 for i, by in beaten_by.items() if by is not None]
        lines.append(f"- Frontier of {plane.quality} {arrows[0]} (quality) against {plane.diversity} {arrows[1]} "
                     f"(diversity), on the means: on the frontier: {', '.join(on)}"
                     + (f"; below it: {', '.join(below)}" if below else "") + ".")
    return lines + ([""] if lines else [])


def frontier_flags(groups: list[Group], planes: list[Plane], metrics: list[str],
                   chosen: tuple[str, str] | None) -> list[dict[str, int]]:
    """Per row, {plane name: 1 on the frontier, 0 below it} for the table's planes (for report.csv)."""
    flags = [{} for _ in groups]
    table_planes = {plane.name for plane in chosen_planes(metrics, chosen)}
    for plane in planes:
        if plane.name not in table_planes:
            continue
        points = row_means(groups, plane)
        if len(points) < 2:
            continue
        for i, by in dominating(points, plane.higher_is_better()).items():
            flags[i][plane.name] = int(by is None)
    return flags


def plot_frontiers(tables: dict[tuple[str, str], tuple[list[Group], list[str]]], chosen: tuple[str, str] | None,
                   intervals: IntervalOptions, path: Path) -> bool:
    """report_frontier.png: a row of panels per table with a plane, one panel per plane (MAX_PANELS at
    most). False when no table has a plane with two rows (no file is written)."""
    panels = []
    for (dataset, model), (groups, metrics) in tables.items():
        planes = [p for p in chosen_planes(metrics, chosen) if len(row_means(groups, p)) >= 2][:MAX_PANELS]
        if planes:
            panels.append((f"{dataset} / {model}", groups, planes))
    if not panels:
        return False
    import matplotlib
    matplotlib.use("Agg")   # files only, no display
    import matplotlib.pyplot as plt

    columns = max(len(planes) for _, _, planes in panels)
    figure, axes = plt.subplots(len(panels), columns, figsize=(4.6 * columns, 4.0 * len(panels)), squeeze=False)
    for row, (title, groups, planes) in enumerate(panels):
        for column in range(columns):
            if column < len(planes):
                plot_plane(axes[row][column], groups, planes[column], intervals)
                axes[row][column].set_title(title, fontsize=8)
            else:
                axes[row][column].axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)
    return True


def plot_plane(axis, groups: list[Group], plane: Plane, intervals: IntervalOptions) -> None:
    """Each row's means with their intervals both ways and its seeds as faint dots, a regulariser's
    weights joined in weight order, and the frontier as a dashed line through the rows on it. The axes
    span the means and the seeds: an interval wider than that (a row of 3 seeds that disagree) runs off
    the edge rather than squeezing every other row into a corner."""
    points = row_means(groups, plane)
    colours = {}
    families = defaultdict(list)
    spans: list[list[float]] = [[], []]   # what the axes must show: every mean and every seed, x and y
    for i, (x, y) in points.items():
        group = groups[i]
        family = (group.family, group.settings)
        first = family not in colours
        colour = colours.setdefault(family, f"C{len(colours) % 10}")
        families[family].append(i)
        by_seed_x, by_seed_y = group.by_seed[plane.quality], group.by_seed[plane.diversity]
        seeds = sorted(set(by_seed_x) & set(by_seed_y))
        axis.plot([by_seed_x[s] for s in seeds], [by_seed_y[s] for s in seeds], ".", color=colour, alpha=0.25)
        spans[0] += [x, *(by_seed_x[s] for s in seeds)]
        spans[1] += [y, *(by_seed_y[s] for s in seeds)]
        x_interval = mean_interval(group.values[plane.quality], intervals) or (x, x)
        y_interval = mean_interval(group.values[plane.diversity], intervals) or (y, y)
        legend = group.family_name if first else None
        axis.errorbar([x], [y], xerr=[[x - x_interval[0]], [x_interval[1] - x]],
                      yerr=[[y - y_interval[0]], [y_interval[1] - y]], marker="o", color=colour, capsize=2, label=legend)
        if group.weight is not None:   # the family is in the legend; each point says its weight
            axis.annotate(f"w={group.weight:g}", (x, y), fontsize=6, xytext=(4, 4), textcoords="offset points")
    for members in families.values():
        weighted = sorted((i for i in members if groups[i].weight is not None), key=lambda i: groups[i].weight)
        if len(weighted) > 1:   # one regulariser at several weights: its curve through them
            axis.plot([points[i][0] for i in weighted], [points[i][1] for i in weighted], "-",
                      color=colours[(groups[weighted[0]].family, groups[weighted[0]].settings)], alpha=0.6)
    on = sorted((i for i, by in dominating(points, plane.higher_is_better()).items() if by is None),
                key=lambda i: points[i][0])
    axis.plot([points[i][0] for i in on], [points[i][1] for i in on], "k--", linewidth=1, label="frontier")
    for set_limits, values in zip((axis.set_xlim, axis.set_ylim), spans):
        low, high = min(values), max(values)
        margin = 0.08 * (high - low) or 0.5
        set_limits(low - margin, high + margin)
    higher_x, higher_y = plane.higher_is_better()
    axis.set_xlabel(f"{plane.quality} ({'higher' if higher_x else 'lower'} is better)", fontsize=7)
    axis.set_ylabel(f"{plane.diversity} ({'higher' if higher_y else 'lower'} is better)", fontsize=7)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=6)
