"""Regularisers: one module each in this package, registered with `@register_regularizer("<name>")`
(core/registry.py), plus one YAML file `conf/reg/<name>.yaml`. Modules here are imported when the
package is, so adding a regulariser touches no other file.

The formulas are importable as pure functions, e.g. `from msgan_cli.regularizers import mode_seeking_loss`.
"""
from __future__ import annotations

import dataclasses
import logging

from omegaconf import DictConfig, OmegaConf

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


import_submodules(__name__, __path__)   # every regulariser module, those not named above included

__all__ = ["REGULARIZERS", "Regularizer", "RegularizerOptions", "WeightedOptions", "adam_update", "build_regularizers",
           "diversity_penalty", "dsgan_loss", "dsgan_ratio", "mode_regularizers", "mode_seeking_loss",
           "mode_seeking_ratio", "pack", "parse_options", "register_regularizer", "spectral_compensate",
           "unroll_discriminator"]
