"""Metric keys of a model evaluated in several views: directions (DRIT: A -> B and B -> A), stages
(StackGAN++: stage0, stage1, ..., and `_mean` for its fixed-text-code setting) or attribute edits
(StarGAN: `to_Blond_Hair`, `to_not_Male`, every test image translated with that edit).

The view is a key's second segment: `fid/AtoB/classifier`, `modes_per_input/BtoA/modes`,
`lpips_div/AtoB`, `fid/stage2/classifier`, `fid/stage2_mean/classifier`. The first segment stays the
metric `eval.metrics` names (re-evaluating a metric replaces every view), and the rest is the key a
model with one view has, so `msgan report` orders, marks and plots each view's column as it does
the plain one. A direction is `<Source>to<Target>` with capitalised domain names, a stage `stage<N>`
(optionally `_mean`), an edit `to_<attribute>` or `to_not_<attribute>`; no metric's own sub-keys
take these forms, so none is mistaken for a view. A view of these forms with a `*` (`to_*`, `stage*`,
`*to*`) is a pattern: the views it matches (`matches_key`), whose mean `msgan report` and the study read.
"""
from __future__ import annotations

import fnmatch
import re

DIRECTED = re.compile(r"^(?P<metric>[^/]+)/"
                      r"(?P<direction>[A-Z*][A-Za-z0-9*]*to[A-Z*][A-Za-z0-9*]*|stage[0-9*]+(?:_mean)?|to_[A-Za-z0-9_*]+)"
                      r"(?:/(?P<rest>.*))?$")


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


def matches_key(key: str, pattern: str) -> bool:
    """Whether metrics.json `key` is `pattern`, or one of the views a pattern with a `*` in its view stands
    for: the same metric and the same key after the view (`modes_per_input/to_*/modes` matches
    `modes_per_input/to_fill0/modes`, and neither `modes_per_input/to_fill0/kl` nor another metric's key)."""
    if "*" not in pattern:
        return key == pattern
    (plain, view), (pattern_plain, pattern_view) = split_direction(key), split_direction(pattern)
    return view is not None and pattern_view is not None and plain == pattern_plain and \
        fnmatch.fnmatchcase(view, pattern_view)
