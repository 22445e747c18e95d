"""Regularisers: one module each in this package, registered with `@register_regularizer("<name>")`
(core/registry.py), plus one YAML file `conf/reg/<name>.yaml`. Modules here are imported when the
package is, so adding a regulariser touches no other file.

The formulas are importable as pure functions, e.g. `from msgan_cli.regularizers import mode_seeking_loss`.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging

from omegaconf import DictConfig, OmegaConf

from msgan_cli.config import group_file_options
from msgan_cli.core.context import PAIR_BATCH_LAYOUTS
from msgan_cli.core.registry import REGULARIZERS, import_submodules, register_regularizer
from msgan_cli.errors import UserError
from msgan_cli.models.base import Recipe
from msgan_cli.regularizers.base import Regularizer, RegularizerOptions, WeightedOptions
from msgan_cli.regularizers.dpm import diversity_penalty
from msgan_cli.regularizers.dsgan import dsgan_loss, dsgan_ratio
from msgan_cli.regularizers.mdgan import mode_regularizers
from msgan_cli.regularizers.mode_seeking import mode_seeking_loss, mode_seeking_ratio
from msgan_cli.regularizers.pacgan import pack
from msgan_cli.regularizers.sr import spectral_compensate
from msgan_cli.regularizers.unrolled import adam_update, unroll_discriminator

log = logging.getLogger(__name__)


def parse_options(name: str, node: DictConfig | dict) -> RegularizerOptions:
    """The options of regulariser `name` from its config node; an unknown key is a UserError."""
    options_cls = REGULARIZERS[name].Options
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    known = {f.name for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"reg.{name} has no option {', '.join(unknown)}; its options are: {', '.join(sorted(known))}.")
    return options_cls(**values)


def build_regularizers(reg_cfg: DictConfig | None, recipe: Recipe) -> list[Regularizer]:
    """The selected regularisers, each checked against the model before any training happens.

    A regulariser is selected when its node has `enabled: true` (what `reg=<name>` loads). A node
    without it holds options set for a sweep where another `reg` was chosen (e.g. `reg=none,ms
    reg.ms.weight=1,2`): those are validated, then ignored.
    """
    selected = []
    for name, node in (reg_cfg or {}).items():
        if name not in REGULARIZERS:
            raise UserError(f"No regulariser named '{name}' (reg.{name}). Available: {', '.join(sorted(REGULARIZERS))}.")
        options = parse_options(name, node)
        if not options.enabled:
            log.info("reg.%s options given but reg=%s is not selected: ignored", name, name)
            continue
        regularizer = REGULARIZERS[name](options, recipe)
        regularizer.check(recipe)
        selected.append(regularizer)
    names = {r.name for r in selected}
    for regularizer in selected:
        for other, reason in regularizer.conflicts.items():
            if other in names:
                raise UserError(f"reg={regularizer.name} and reg={other} cannot be combined: {reason}")
    # Network replacements first, so re-parametrisations (sn, sr) act on the final networks.
    for regularizer in sorted(selected, key=lambda r: not r.replaces_networks):
        regularizer.setup(recipe)
    return selected


def refusal(name: str, recipe: Recipe, node: DictConfig | dict | None = None) -> str | None:
    """Why regulariser `name` cannot act on `recipe` (its `check`, which `msgan train` runs before
    training), or None: it applies. `node`: its options; by default those `reg=<name>` selects
    (conf/reg/<name>.yaml). What scripts/regularizers.py lists and the tests skip a model by."""
    options = parse_options(name, group_file_options("reg", name) if node is None else node)
    try:
        REGULARIZERS[name](options, recipe).check(recipe)
    except UserError as error:
        return str(error)
    return None


def settings(name: str, smoke: bool = False) -> dict[str, list[str]]:
    """Every setting of regulariser `name` that runs code of its own, label -> overrides: `reg=<name>`
    (once per pair layout, `trainer.pair_batch`, where it may ask for several samples per condition),
    then each of its `variants`; with `smoke`, each with its `smoke_overrides` (a tiny run of a few
    steps). What tests/test_host_sync.py checks and scripts/bench.py times."""
    cls = REGULARIZERS[name]
    plain = [f"reg={name}", *(cls.smoke_overrides if smoke else ())]
    asked = inspect.getattr_static(cls, "samples_per_condition")   # a property: it depends on the options
    if isinstance(asked, property) or asked > 1:
        found = {f"{name} (pair_batch={layout})": [*plain, f"trainer.pair_batch={layout}"] for layout in PAIR_BATCH_LAYOUTS}
    else:
        found = {name: plain}
    return found | {f"{name} ({label})": [*plain, *overrides] for label, overrides in cls.variants.items()}


import_submodules(__name__, __path__)   # every regulariser module, those not named above included

__all__ = ["REGULARIZERS", "Regularizer", "RegularizerOptions", "WeightedOptions", "adam_update", "build_regularizers",
           "diversity_penalty", "dsgan_loss", "dsgan_ratio", "mode_regularizers", "mode_seeking_loss",
           "mode_seeking_ratio", "pack", "parse_options", "refusal", "register_regularizer", "settings",
           "spectral_compensate", "unroll_discriminator"]
