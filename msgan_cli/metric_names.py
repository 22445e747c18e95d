"""Metric keys of a model evaluated in several directions (DRIT: A -> B and B -> A).

The direction is a key's second segment: `fid/AtoB/classifier`, `modes_per_input/BtoA/modes`,
`lpips_div/AtoB`. The first segment stays the metric `eval.metrics` names (re-evaluating a metric
replaces both directions), and the rest is the key a model with one direction has, so `msgan report`
orders, marks and plots each direction's column as it does the undirected one. A direction is
`<Source>to<Target>` with capitalised domain names; metric keys are lower case, so none is mistaken
for one.
"""
from __future__ import annotations

import re

DIRECTED = re.compile(r"^(?P<metric>[^/]+)/(?P<direction>[A-Z][A-Za-z0-9]*to[A-Z][A-Za-z0-9]*)(?:/(?P<rest>.*))?$")


def with_direction(key: str, direction: str | None) -> str:
    """`key` of a metric measured in `direction` (None: the key as it is)."""
    if direction is None:
        return key
    metric, _, rest = key.partition("/")
    return f"{metric}/{direction}/{rest}" if rest else f"{metric}/{direction}"


def split_direction(key: str) -> tuple[str, str | None]:
    """(the key without its direction, the direction or None): `fid/AtoB/inception` ->
    (`fid/inception`, `AtoB`)."""
    match = DIRECTED.match(key)
    if match is None:
        return key, None
    rest = match["rest"]
    return (f"{match['metric']}/{rest}" if rest else match["metric"]), match["direction"]
