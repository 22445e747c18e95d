"""report.png: per (dataset, model), each headline metric as mean ± std over seeds with every seed's
value as a dot, against the regulariser weight where the sweep varied it."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from msgan_cli.report.columns import direction, ordered_metrics
from msgan_cli.report.runs import Group
from msgan_cli.report.statistics import mean_std


def plot_report(tables: dict[tuple[str, str], list[Group]], path: Path, per_table: int = 4) -> None:
    """One row of panels per (dataset, model), one panel per headline metric: the mean +- std over
    seeds, and each seed's value as a point beside it."""
    import matplotlib
    matplotlib.use("Agg")   # files only, no display
    import matplotlib.pyplot as plt

    rows = list(tables.items())
    figure, axes = plt.subplots(len(rows), per_table, figsize=(3.4 * per_table, 3.0 * len(rows)), squeeze=False)
    for row, ((dataset, model), groups) in enumerate(rows):
        metrics = [m for m in ordered_metrics({m for g in groups for m in g.values}) if direction(m) is not None]
        for column in range(per_table):
            axis = axes[row][column]
            if column >= len(metrics):
                axis.axis("off")
                continue
            metric = metrics[column]
            plot_metric(axis, groups, metric)
            better = {"lower": "lower is better", "higher": "higher is better"}[direction(metric)]
            axis.set_ylabel(f"{metric}\n({better})", fontsize=7)
            axis.set_title(f"{dataset} / {model}", fontsize=8)
            axis.tick_params(labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)



def plot_metric(axis, groups: list[Group], metric: str) -> None:
    """Against the weight for a regulariser swept over several weights (reg=none as a dashed line);
    otherwise one bar per row. Seeds are the small dots."""
    shown = [g for g in groups if g.values.get(metric)]
    families = defaultdict(list)
    for group in shown:
        if group.weight is not None:
            families[(group.family, group.settings)].append(group)
    swept = {key: members for key, members in families.items() if len(members) > 1}
    if swept:
        for members in swept.values():
            members = sorted(members, key=lambda g: g.weight)
            stats = [mean_std(g.values[metric]) for g in members]
            label = members[0].family_name
            line = axis.errorbar([g.weight for g in members], [m for m, _ in stats], yerr=[s for _, s in stats],
                                 marker="o", capsize=3, label=label)
            for group in members:
                axis.plot([group.weight] * len(group.values[metric]), group.values[metric], ".", alpha=0.5,
                          color=line[0].get_color())
        for baseline in (g for g in shown if g.family == "none"):
            axis.axhline(mean_std(baseline.values[metric])[0], linestyle="--", color="grey", label="none")
        axis.set_xlabel("regulariser weight", fontsize=7)
        axis.legend(fontsize=6)
        return
    stats = [mean_std(g.values[metric]) for g in shown]
    axis.bar(range(len(shown)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3, color="lightsteelblue")
    for i, group in enumerate(shown):
        axis.plot([i + 0.25] * len(group.values[metric]), group.values[metric], "k.", alpha=0.6)
    labels = [g.name for g in shown]
    axis.set_xticks(range(len(shown)), labels, rotation=45, ha="right", fontsize=6)

