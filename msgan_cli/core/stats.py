"""`report(name, value)`, callable from anywhere during a step (the recipe, a regulariser, the loop).

Values are kept as detached tensors and turned into numbers only at log ticks, so reporting never
forces a device sync inside the step (docs/performance.md#host-sync).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

import torch

_values: dict[str, list[torch.Tensor]] = defaultdict(list)


def report(name: str, value: torch.Tensor | float) -> None:
    """Record a scalar (a tensor is averaged) under a TensorBoard tag such as `Diag/ms/ratio`."""
    if isinstance(value, torch.Tensor):
        _values[name].append(value.detach().float().mean())
    else:
        _values[name].append(torch.tensor(float(value)))


def clear() -> None:
    """Forget everything reported and not yet collected: a run that stopped between two log ticks (a
    divergence, a refused option) leaves its last values here, and the next run in the same process
    (a notebook, the tests) must not log them as its own."""
    _values.clear()


def collect() -> dict[str, torch.Tensor]:
    """The mean of everything reported since the last call, per name (as 0-dim tensors); then clears."""
    means = {name: torch.stack([v.to(values[0].device) for v in values]).mean()
             for name, values in _values.items()}
    _values.clear()
    return means


def read_back(reduce: Callable[[torch.Tensor], torch.Tensor] = lambda means: means) -> dict[str, float]:
    """`collect()` as numbers, in name order, read back in one transfer (a log tick's one host sync);
    `reduce` acts on the stacked means first (e.g. the mean across DDP ranks)."""
    means = collect()
    names = sorted(means)
    if not names:
        return {}
    return dict(zip(names, reduce(torch.stack([means[name] for name in names])).tolist()))
