"""Name -> implementation registries (datasets, models, regularisers, metrics), filled by decorators
in the modules of one package, which `import_submodules` imports so that adding a module is enough."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, Iterable, TypeVar

from msgan_cli.errors import UserError

T = TypeVar("T")


class Registry(dict, Generic[T]):
    def __init__(self, kind: str, config_key: str):
        super().__init__()
        self.kind, self.config_key = kind, config_key

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: file `obj` under `name` (a class also gets `obj.name = name`)."""
        def decorate(obj: T) -> T:
            if isinstance(obj, type):
                obj.name = name
            self[name] = obj
            return obj
        return decorate

    def lookup(self, name: str) -> T:
        """The implementation named `name`, or a UserError listing the available ones."""
        if name not in self:
            raise UserError(f"No {self.kind} named '{name}' ({self.config_key}). Available: {', '.join(sorted(self))}.")
        return self[name]


def import_submodules(package: str, path: Iterable[str], packages_only: bool = False, skip: tuple[str, ...] = ()) -> None:
    for module in pkgutil.iter_modules(path):
        if module.name not in skip and (module.ispkg or not packages_only):
            importlib.import_module(f"{package}.{module.name}")
