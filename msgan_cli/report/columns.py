"""The columns of a report table: which metrics.json keys are metrics, in which order, with which
better direction (as each metric declared when it was registered: core/registry.py)."""
from __future__ import annotations

import re

from msgan_cli.metric_names import split_direction
from msgan_cli.metrics import METRICS, Metric  # importing it registers every metric

PER_CLASS = re.compile(r"/class\d+_")   # per-class columns: in the CSV only, the Markdown stays readable


def registered(key: str) -> tuple[Metric | None, str]:
    """The registered metric a metrics.json key belongs to (None: not a metric of this version of msgan),
    and the key without its view (`fid/AtoB/inception` -> `fid/inception`)."""
    plain = split_direction(key)[0]
    return METRICS.get(plain.split("/", 1)[0]), plain


def headline_position(key: str) -> tuple[int, int] | None:
    """Where a headline number's column goes (its metric's rank, then its place in the metric's headline),
    or None for a number that is not a headline (core/registry.py: Metric.headline)."""
    metric, plain = registered(key)
    if metric is None or metric.part(plain) not in metric.headline:
        return None
    return metric.rank, metric.headline.index(metric.part(plain))


def ordered_metrics(names: set[str]) -> list[str]:
    """Headline metrics first, as their metrics rank them, then the others by name; a metric measured in
    several views (`fid/AtoB/...`) sits where its undirected key would, its views in turn."""
    def order(name: str) -> tuple:
        plain, way = split_direction(name)
        position = headline_position(name)
        return (0, *position, "", way or "") if position is not None else (1, 0, 0, plain, way or "")
    return sorted(names, key=order)


SHARED_CONTEXT = "classifier_test_acc"   # the one classifier's accuracy, recorded beside each metric using it


def direction(metric: str) -> str | None:
    """Whether lower or higher is better, as the metric declared it when it was registered (whichever
    view it was measured in), or None: a count in the data, a classifier's own accuracy, a per-class value."""
    registered_metric, plain = registered(metric)
    return None if registered_metric is None else registered_metric.better_direction(plain)


def table_columns(metrics: list[str]) -> list[tuple[str, str]]:
    """(metric, header) for the Markdown table: no per-class columns, the classifier's accuracy once (per
    translation direction: each direction's target domain has its own classifier)."""
    columns, shared_seen = [], set()
    for metric in metrics:
        if PER_CLASS.search(metric):
            continue
        if metric.endswith(SHARED_CONTEXT):
            way = split_direction(metric)[1]
            if way not in shared_seen:
                columns.append((metric, SHARED_CONTEXT if way is None else f"{SHARED_CONTEXT} {way}"))
            shared_seen.add(way)
            continue
        columns.append((metric, header(metric)))
    return columns


def header(metric: str) -> str:
    """A metric's column header: its key and its better direction's arrow."""
    return metric + {"lower": " ↓", "higher": " ↑"}.get(direction(metric), "")
