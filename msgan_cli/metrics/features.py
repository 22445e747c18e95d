"""The features that the sample-set metrics (`vendi`, `rke`, `density_coverage`) compare, and which
condition each generated sample was drawn for.

- Images: the configured extractor's features (`eval.extractor`, fidelity.py), from the same one pass
  that fid, kid, is and precision_recall read.
- Images whose extractor is `auto` and has nothing to work with (no Inception weights, and no class
  labels to train the project's classifier on: an unlabelled folder): the pixels, flattened.
- 2D points (the mixtures): the points themselves.
The space's name (`classifier`, `inception`, `pixels`, `points`) is part of every key, so numbers
measured in different spaces never share a column. An extractor named explicitly that cannot run
here makes these metrics unavailable, as it does fid.
"""
from __future__ import annotations

import torch

from msgan_cli.metrics.context import EvalContext
from msgan_cli.metrics.fidelity import evaluation_images, extracted, extractor_unavailable, protocol, resolve_extractor

EXTRACTORS = ("inception", "classifier")
FEATURE_SPACES = (*EXTRACTORS, "pixels", "points")


def needs_samples(recipe, data) -> str | None:
    return None if data.kind in ("image", "points") else f"it needs image or point samples ({data.name} has neither)"


def feature_space(options, data) -> str:
    """The name of the space the samples are compared in (module docstring)."""
    if data.kind == "points":
        return "points"
    if extractor_unavailable(options, data) is None:
        return resolve_extractor(options.extractor)
    return "pixels"   # only reached with extractor auto: `features_unavailable` refuses the rest


def features_unavailable(options, data) -> str | None:
    """Why no features can be had: an extractor named explicitly (not `auto`) that cannot run here."""
    if data.kind == "points" or str(options.extractor.name) == "auto":
        return None
    return extractor_unavailable(options, data)


def evaluation_features(ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, fake) features, float64 rows on the CPU: one draw of samples per evaluation, shared by
    every metric that reads them (the extractor's features are fidelity's own cache)."""
    if feature_space(ctx.options, ctx.data) in EXTRACTORS:
        return extracted(ctx)["features"]
    if "features/samples" not in ctx.cache:
        ctx.cache["features/samples"] = tuple(samples.flatten(1).double().cpu() for samples in evaluation_images(ctx))
    return ctx.cache["features/samples"]


def features_protocol(ctx: EvalContext) -> dict:
    """How the features were made, for eval_protocol.json (the extractor's entry where there is one)."""
    space = feature_space(ctx.options, ctx.data)
    if space in EXTRACTORS:
        return {"features": space, **protocol(ctx)}
    real, fake = evaluation_features(ctx)
    return {"features": space, "real": f"train split, {len(real)} samples", "fake": f"{len(fake)} samples"}


def condition_groups(ctx: EvalContext) -> tuple[str, torch.Tensor] | None:
    """Which condition each generated sample of `evaluation_features` was drawn for: ("per_class", the
    class asked for) for class-conditional models, ("per_input", the evaluation input) for models
    conditioned on data (`eval.per_input.samples` outputs for each input), None for unconditional ones."""
    n = ctx.num_samples
    if not ctx.recipe.conditional:
        return None
    if ctx.recipe.condition_kind == "class":
        return "per_class", ctx.class_labels(n).cpu()
    return "per_input", ctx.input_of_sample(n).cpu()
