"""Config composition shared by the CLI, the commands and the tests.

`conf/` ships inside the package as `msgan_cli.conf` (see setup.py), so an installed msgan finds its
configs from any directory.
"""
from __future__ import annotations

import re
from importlib import resources

from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from msgan_cli.errors import UserError

CONFIG_MODULE = "msgan_cli.conf"
_REG_OPTION = re.compile(r"^reg\.[A-Za-z_][\w]*\.")


def normalize_overrides(overrides: list[str]) -> list[str]:
    """`reg.<name>.<key>=v` becomes `++reg.<name>.<key>=v`, so a sweep such as
    `reg=none,ms reg.ms.weight=0.5,1` also composes for the jobs where ms is not selected
    (the regulariser builder validates and then ignores those options)."""
    return ["++" + o if _REG_OPTION.match(o) else o for o in overrides]


def available_options(group: str) -> list[str]:
    """Names of the YAML files of a config group, plus configs registered in Hydra's ConfigStore."""
    names = {p.name[:-5] for p in resources.files(CONFIG_MODULE).joinpath(group).iterdir() if p.name.endswith(".yaml")}
    stored = ConfigStore.instance().repo.get(group, {})
    names |= {name[:-5] if name.endswith(".yaml") else name for name in stored}
    return sorted(names)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    if hasattr(value, "list"):            # a sweep: its choices
        return _strings(list(value.list))
    return []


def check_reg_choices(overrides: list[str]) -> None:
    """Hydra names the available options for an unknown single choice (`model=foo`) but not inside a
    list (`reg=[ms,foo]`); this check does, for every `reg=` override, sweeps included."""
    available = set(available_options("reg"))
    parser = OverridesParser.create()
    for text in overrides:
        if not text.lstrip("+~").startswith("reg="):
            continue
        try:
            override = parser.parse_overrides([text])[0]
        except Exception:   # a syntax error: Hydra reports it with its own message
            continue
        unknown = sorted(set(_strings(override._value)) - available)
        if unknown:
            raise UserError(f"No regulariser config named {', '.join(unknown)} (in {text}). "
                            f"Available for reg=: {', '.join(sorted(available))}.")


def compose_config(name: str, overrides: list[str] | None = None) -> DictConfig:
    """The composed config `name` (e.g. "train") with overrides, as `msgan` would see it (no Hydra run dir)."""
    overrides = normalize_overrides(list(overrides or []))
    check_reg_choices(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose(config_name=name, overrides=overrides)
