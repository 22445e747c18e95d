"""Models: a registry of recipes (DESIGN.md section 2). Each lives in `models/<name>/` (networks in
`networks.py`, the recipe in `__init__.py`) and registers itself with `@register_model("name")`;
subpackages here are imported automatically, so adding a model touches no other file."""
from __future__ import annotations

from msgan_cli.data import Data
from msgan_cli.models.base import Direction, Phase, Recipe
from msgan_cli.registry import Registry, import_submodules

MODELS: Registry[type[Recipe]] = Registry("model", "model.name")
register_model = MODELS.register


def build_model(cfg, data: Data) -> Recipe:
    return MODELS.lookup(cfg.name)(cfg, data)


import_submodules(__name__, __path__, packages_only=True)

__all__ = ["MODELS", "Direction", "Phase", "Recipe", "build_model", "register_model"]
