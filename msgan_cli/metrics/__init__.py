"""Metrics: a registry (docs/architecture.md#layers, docs/extending.md#metric; modelled on stylegan's metric_main).

A metric is a function `EvalContext -> {name: number}` registered with `@register_metric`
(core/registry.py), with a predicate saying whether it applies to a model and dataset (and why
not), what it needs at hand, which way each of its numbers is better, and which are its headline
numbers. Names are validated before a run starts. Modules in this package are imported when it is
imported, so adding a metric is adding a module. The formulas are importable for a notebook, e.g.
`from msgan_cli.metrics import ndb_jsd, frechet_distance, vendi_score`.
"""
from __future__ import annotations

from msgan_cli.core.registry import METRICS, Metric, import_submodules, register_metric
from msgan_cli.metrics.context import EvalContext
from msgan_cli.metrics.coverage import density_coverage, precision_recall
from msgan_cli.metrics.diversity import pairwise_distances
from msgan_cli.metrics.fidelity import frechet_distance, inception_score, kernel_inception_distance
from msgan_cli.metrics.kernel_entropy import rke_mode_count, vendi_score
from msgan_cli.metrics.modes import modes_2d
from msgan_cli.metrics.ndb import NDBBins, ndb_jsd

import_submodules(__name__, __path__)   # every metric module, those not named above included

__all__ = ["METRICS", "EvalContext", "Metric", "NDBBins", "density_coverage", "frechet_distance", "inception_score",
           "kernel_inception_distance", "modes_2d", "ndb_jsd", "pairwise_distances", "precision_recall", "register_metric",
           "rke_mode_count", "vendi_score"]
