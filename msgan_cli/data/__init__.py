"""Datasets: a registry of loaders, each reading a real on-disk format (docs/methods.md#data-formats).

A loader is a function `cfg -> Data` registered under the name `dataset.name` takes. Adding a dataset
(a new format) means one module in this package with a `@register_dataset("name")` function
(core/registry.py) and one YAML file in `conf/dataset/`; modules here are imported when the package
is. What a loader returns is in `base.py` (splits held in memory) and `streaming.py` (splits decoded
from files as training runs); the batches, and the conditions they carry, are in core/batch.py.
"""
from __future__ import annotations

from omegaconf import DictConfig

from msgan_cli.core.batch import Batch
from msgan_cli.core.registry import DATASETS, import_submodules, register_dataset
from msgan_cli.data.base import Data, EpochSampler, Split, TensorSplit


def load_dataset(cfg: DictConfig) -> Data:
    """Load the dataset `cfg.name` on the CPU; a missing file raises UserError naming the fix."""
    return DATASETS.lookup(cfg.name)(cfg)


import_submodules(__name__, __path__, skip=("base", "streaming", "transforms"))   # the loaders

__all__ = ["DATASETS", "Batch", "Data", "EpochSampler", "Split", "TensorSplit", "load_dataset", "register_dataset"]
