"""Datasets: a registry of loaders, each reading a real on-disk format (METHODS.md section 7).

A loader is a function `cfg -> Data` registered under the name `dataset.name` takes. Adding a dataset
means one module in this package with a `@register_dataset("name")` function and one YAML file in
`conf/dataset/`; modules here are imported automatically.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from omegaconf import DictConfig

from msgan_cli.data.base import Data, EpochSampler, Split, TensorSplit
from msgan_cli.errors import UserError

DATASETS: dict[str, Callable[[DictConfig], Data]] = {}


def register_dataset(name: str):
    def decorate(loader: Callable[[DictConfig], Data]) -> Callable[[DictConfig], Data]:
        DATASETS[name] = loader
        return loader
    return decorate


def load_dataset(cfg: DictConfig) -> Data:
    """Load the dataset `cfg.name` on the CPU; a missing file raises UserError naming the fix."""
    if cfg.name not in DATASETS:
        raise UserError(f"No dataset named '{cfg.name}'. Available: {', '.join(sorted(DATASETS))}.")
    return DATASETS[cfg.name](cfg)


for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["DATASETS", "Data", "EpochSampler", "Split", "TensorSplit", "load_dataset", "register_dataset"]
