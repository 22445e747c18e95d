"""Datasets: a registry of loaders, each reading a real on-disk format (METHODS.md section 7).

A loader is a function `cfg -> Data` registered under the name `dataset.name` takes. Adding a dataset
(a new format) means one module in this package with a `@register_dataset("name")` function and one
YAML file in `conf/dataset/`; modules here are imported automatically. What a loader returns is in
`base.py` (splits held in memory) and `streaming.py` (splits decoded from files as training runs);
the batches, and the conditions they carry, are in `batch.py`.
"""
from __future__ import annotations

from typing import Callable

from omegaconf import DictConfig

from msgan_cli.data.base import Batch, Data, EpochSampler, Split, TensorSplit
from msgan_cli.registry import Registry, import_submodules

DATASETS: Registry[Callable[[DictConfig], Data]] = Registry("dataset", "dataset.name")
register_dataset = DATASETS.register


def load_dataset(cfg: DictConfig) -> Data:
    """Load the dataset `cfg.name` on the CPU; a missing file raises UserError naming the fix."""
    return DATASETS.lookup(cfg.name)(cfg)


import_submodules(__name__, __path__, skip=("base", "batch", "streaming", "transforms"))

__all__ = ["DATASETS", "Batch", "Data", "EpochSampler", "Split", "TensorSplit", "load_dataset", "register_dataset"]
