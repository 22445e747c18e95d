"""Models: a registry of recipes (docs/architecture.md#roles). Each lives in `models/<name>/` (networks in
`networks.py`, the recipe in `__init__.py`) and registers itself with `@register_model("name")`
(core/registry.py); subpackages here are imported when this package is, so adding a model touches
no other file."""
from __future__ import annotations

from msgan_cli.core.registry import MODELS, import_submodules, register_model
from msgan_cli.data import Data
from msgan_cli.models.base import Direction, Recipe


def build_model(cfg, data: Data) -> Recipe:
    return MODELS.lookup(cfg.name)(cfg, data)


import_submodules(__name__, __path__, packages_only=True)   # every model's package

__all__ = ["MODELS", "Direction", "Recipe", "build_model", "register_model"]
