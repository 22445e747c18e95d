"""Models: a registry of recipes (DESIGN.md section 2). Each lives in `models/<name>/` (networks in
`networks.py`, the recipe in `__init__.py`) and registers itself with `@register_model("name")`;
subpackages here are imported automatically, so adding a model touches no other file."""
from __future__ import annotations

import importlib
import pkgutil

from msgan_cli.data import Data
from msgan_cli.errors import UserError
from msgan_cli.models.base import Phase, Recipe

MODELS: dict[str, type[Recipe]] = {}


def register_model(name: str):
    def decorate(cls: type[Recipe]) -> type[Recipe]:
        cls.name = name
        MODELS[name] = cls
        return cls
    return decorate


def build_model(cfg, data: Data) -> Recipe:
    if cfg.name not in MODELS:
        raise UserError(f"No model named '{cfg.name}'. Available: {', '.join(sorted(MODELS))}.")
    return MODELS[cfg.name](cfg, data)


for _module in pkgutil.iter_modules(__path__):
    if _module.ispkg:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MODELS", "Phase", "Recipe", "build_model", "register_model"]
