"""Evaluation: which metrics a run computes (`resolve_metric_names`), computing them for a built
session (`evaluate_run`: during and at the end of training, and for `msgan eval run=DIR`), and
merging a re-evaluation into a run's earlier files (`merge_evaluation`)."""
from __future__ import annotations

import logging
import math

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from msgan_cli.data import Data
from msgan_cli.errors import UserError
from msgan_cli.metric_names import split_direction, with_direction
from msgan_cli.metrics import METRICS
from msgan_cli.metrics.context import EvalContext, sample_counts
from msgan_cli.models import Recipe

log = logging.getLogger(__name__)


# The evaluation options that count something, and the seeds: each a whole number of at least this much.
COUNTS = {"num_samples": 1, "per_input.inputs": 1, "per_input.samples": 1, "modes_per_input.samples_per_input": 1,
          "kid.subsets": 1, "kid.subset_size": 2, "is_splits": 1, "precision_recall.k": 1, "density_coverage.k": 1,
          "ndb.bins": 2, "ndb.per_class_bins": 2, "classifier.steps": 1, "classifier.batch_size": 1, "seed": 0,
          "classifier.seed": 0}


def check_evaluation_options(options: DictConfig) -> None:
    """Every count and seed among the evaluation options is a whole number in range, checked before any work:
    else `num_samples=0` would train a whole run and then crash in its evaluation, `msgan eval seed=abc` end
    in a traceback."""
    for key, least in COUNTS.items():
        value = OmegaConf.select(options, key, default=None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise UserError(f"eval.{key} must be a whole number of at least {least}; got {value!r}.")


def resolve_metric_names(requested, recipe: Recipe, data: Data, options: DictConfig) -> list[str]:
    """`auto` means every metric that applies and whose needs (weights, labels, enough samples) are met, in
    every direction the model is evaluated in; a named metric must exist, apply and be computable, or
    UserError. Checked before a run trains, so that its evaluation cannot fail at the end."""
    check_evaluation_options(options)
    for metric in METRICS.values():
        if problem := metric.invalid_options(options):
            raise UserError(problem)
    views = [direction.data for direction in recipe.evaluation_directions(data, options)]

    def first(check) -> str | None:
        return next((reason for view in views if (reason := check(view)) is not None), None)

    def too_few(metric, view) -> str | None:
        (real, generated), (least_real, least_generated) = sample_counts(recipe, view, options), metric.min_samples(options)
        if real >= least_real and generated >= least_generated:
            return None
        return (f"it needs at least {least_real} real and {least_generated} generated samples, and {view.name} gives "
                f"{real} and {generated} (eval.num_samples, eval.per_input.*, the data's size)")

    if requested in (None, "auto") or (isinstance(requested, (list, ListConfig)) and list(requested) == ["auto"]):
        names = []
        for name, metric in sorted(METRICS.items()):
            if first(lambda view: metric.unsupported(recipe, view)) is not None:
                continue
            if (missing := first(lambda view: metric.unavailable(options, view) or too_few(metric, view))) is not None:
                log.info("eval.metrics=auto skips %s: %s", name, missing)
                continue
            names.append(name)
        return names
    names = [requested] if isinstance(requested, str) else list(requested)
    for name in names:
        metric = METRICS.lookup(name)
        if reason := first(lambda view: metric.unsupported(recipe, view)):
            raise UserError(f"Metric {name} does not apply to model {recipe.name} on {data.name}: {reason}.")
        if (missing := first(lambda view: metric.unavailable(options, view) or too_few(metric, view))) is not None:
            raise UserError(f"Metric {name} cannot run here: {missing}")
    return names


def evaluate_run(session, metric_names: list[str], options: DictConfig,
                 step: int | None = None) -> tuple[dict[str, float], dict]:
    """Flat `{name: number}` of every metric, computed with a fixed seed (the same on every call), and
    the protocol: how each number was measured (sample counts, bins, extractor and its accuracy, seed).
    A model evaluated in several directions has each metric once per direction, named by it
    (`fid/AtoB/...`, metric_names.py), and its protocol entries per direction."""
    results: dict[str, float] = {}
    contexts = {}
    # Some library metrics draw from the global RNG (KID's subsets): fork it, so evaluating during
    # training leaves the training run's random stream exactly as it was.
    cuda = [session.device] if session.device.type == "cuda" else []
    for direction in session.recipe.evaluation_directions(session.data, options):
        ctx = EvalContext(session.recipe, direction, session.device, options, session.cfg.dataset,
                          seed=int(options.seed))
        contexts[direction.name] = ctx
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(int(options.seed))
            for name in metric_names:
                values = {with_direction(key, direction.name): value for key, value in METRICS[name].compute(ctx).items()}
                log.info("%s: %s", name, ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
                results.update(values)
    # metrics.json holds numbers only: a value that is not finite is left out, named in the log and
    # in the protocol, so that no table averages it in.
    not_finite = sorted(key for key, value in results.items() if not math.isfinite(value))
    if not_finite:
        log.warning("Left out of the metrics, not finite: %s", ", ".join(not_finite))
        results = {key: value for key, value in results.items() if key not in not_finite}
    # Each metric's entry is self-contained (step, sample count, seed), so entries from several
    # evaluations can sit in one file (see merge_evaluation); with directions, one entry per direction.
    def entries(describe):
        if None in contexts:
            return describe(contexts[None])
        return {way: describe(ctx) for way, ctx in contexts.items()}

    def evaluation(ctx: EvalContext) -> dict:
        return {"checkpoint_step": step, "num_samples": ctx.num_samples, "seed": int(options.seed),
                "conditions": ctx.describe_conditions()}

    protocol = {**evaluation(next(iter(contexts.values()))), "metrics": metric_names, "not_finite": not_finite,
                "per_metric": {name: entries(lambda ctx: {**evaluation(ctx), **ctx.protocol.get(name, {})})
                               for name in metric_names}}
    if None not in contexts:
        protocol |= {"directions": list(contexts), "conditions": entries(EvalContext.describe_conditions)}
    classifiers = {way: ctx.cache["classifier"][1] for way, ctx in contexts.items() if "classifier" in ctx.cache}
    if classifiers:
        settings = OmegaConf.to_container(options.classifier, resolve=True)
        protocol["classifier"] = ({"test_accuracy": classifiers[None], **settings} if None in classifiers else
                                  {way: {"test_accuracy": accuracy, **settings} for way, accuracy in classifiers.items()})
    return results, protocol


def merge_evaluation(previous: dict[str, float], previous_protocol: dict, metrics: dict[str, float],
                     protocol: dict) -> tuple[dict[str, float], dict]:
    """A run's metrics.json / eval_protocol.json after re-evaluating some metrics in some views: their
    values in those views (every key `name` or `name/<view>/...`) and protocol entries replace the old
    ones; other metrics, and the same metrics in views not evaluated this time (StackGAN++'s
    `eval.text_code=mean` after `sampled`), keep theirs."""
    new_views = set(protocol.get("directions", [None]))

    def replaced(key: str) -> bool:
        return key.split("/", 1)[0] in protocol["metrics"] and split_direction(key)[1] in new_views

    kept = {key: value for key, value in previous.items() if not replaced(key)}
    kept_names = {key.split("/", 1)[0] for key in kept}
    per_metric = {name: entry for name, entry in previous_protocol.get("per_metric", {}).items() if name in kept_names}
    for name, entry in protocol["per_metric"].items():   # per view where both evaluations have views
        old = per_metric.get(name)
        views_both = "directions" in protocol and "directions" in previous_protocol and isinstance(old, dict)
        per_metric[name] = {**{v: e for v, e in old.items() if v not in new_views}, **entry} if views_both else entry
    merged_protocol = {**protocol, "metrics": sorted(kept_names | set(protocol["metrics"])), "per_metric": per_metric}
    if "directions" in protocol and "directions" in previous_protocol:
        old_views = [v for v in previous_protocol["directions"] if v not in new_views]
        merged_protocol["directions"] = old_views + list(protocol["directions"])
        merged_protocol["conditions"] = {**{v: previous_protocol["conditions"][v] for v in old_views},
                                         **protocol["conditions"]}
        if "classifier" in previous_protocol and "classifier" in protocol:
            merged_protocol["classifier"] = {**{v: previous_protocol["classifier"][v] for v in old_views
                                                if v in previous_protocol["classifier"]}, **protocol["classifier"]}
    if "classifier" in previous_protocol and "classifier" not in protocol:
        merged_protocol["classifier"] = previous_protocol["classifier"]
    return kept | metrics, merged_protocol
