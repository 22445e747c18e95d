"""`precision_recall`: improved precision and recall (Kynkaanniemi et al., NeurIPS 2019), on the same
extractor features as FID. It separates the two things FID mixes: precision, the share of generated
samples that fall inside the real data's manifold (quality); recall, the share of real samples that
fall inside the generated manifold (coverage). A collapsed generator keeps its precision and loses
its recall, which is mode collapse measured directly.

Each manifold is the union of balls around its samples, each ball's radius the distance to the
sample's k-th nearest neighbour in its own set (k = 3 in the paper). The paper uses 50,000 samples
and VGG-16 features; here the counts and extractor are those of fid (eval_protocol.json says which).
Exact duplicates are one sample of the manifold: a generator without a latent (StarGAN as published,
Pix2Pix with nz 0), evaluated with several outputs per input, repeats each output, and the copies
would be each other's nearest neighbours, every radius 0 and its recall 0 whatever it covered. A
set with no more than k distinct samples is those points alone (radius 0).

`density_coverage` (Naeem et al., ICML 2020; docs/methods.md#density-coverage) mends the two ways
precision and recall fail: balls around the real samples only (k = 5), so an outlier among the
generated samples no longer inflates a manifold. Density counts how many real balls each generated
sample lies in (about 1 for a generator distributed like the data, above 1 where it crowds around
real samples); coverage is the share of real balls holding a generated sample, the collapse measure.
On the features of features.py: the extractor's (as precision_recall), the pixels of an unlabelled
image set, or the points of a 2D mixture.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from msgan_cli.core.registry import register_metric
from msgan_cli.metrics.context import EvalContext
from msgan_cli.metrics.features import (
    FEATURE_SPACES,
    evaluation_features,
    feature_space,
    features_protocol,
    features_unavailable,
    needs_samples,
)
from msgan_cli.metrics.fidelity import extracted, extractor_unavailable, needs_images, protocol, resolve_extractor


def chunked_distances(queries: torch.Tensor, support: torch.Tensor, chunk: int = 1024) -> Iterator[torch.Tensor]:
    """The distances of `queries` to every `support` sample, `chunk` queries at a time (rows of a
    (chunk, len(support)) block), so that 10,000 x 10,000 samples never need the whole matrix."""
    for start in range(0, len(queries), chunk):
        yield torch.cdist(queries[start:start + chunk], support)


def kth_nearest_distance(queries: torch.Tensor, support: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Each query's distance to its k-th nearest `support` sample (k = 1: the nearest)."""
    return torch.cat([distances.kthvalue(k, dim=1).values for distances in chunked_distances(queries, support, chunk)])


def knn_radii(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Each sample's distance to its k-th nearest neighbour among the others."""
    return kth_nearest_distance(features, features, k + 1, chunk)   # the 1st is the sample itself (0)


def balls_containing(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """For each query, how many support samples' balls (`radii`) it lies in."""
    return torch.cat([(distances <= radii[None]).sum(1) for distances in chunked_distances(queries, support, chunk)])


def inside_manifold(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """For each query, whether it lies within some support sample's ball."""
    return balls_containing(queries, support, radii, chunk) > 0


def manifold(features: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A set's distinct samples and the radii of their balls (module docstring)."""
    support = torch.unique(features, dim=0)
    if len(support) <= k:
        return support, torch.zeros(len(support), dtype=support.dtype, device=support.device)
    return support, knn_radii(support, k)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of `fake` against `real`, features (n, d): the share of each set's samples
    (duplicates counted as often as they occur) inside the other's manifold."""
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples of each")
    real, fake = real.double(), fake.double()
    precision = inside_manifold(fake, *manifold(real, k)).double().mean()
    recall = inside_manifold(real, *manifold(fake, k)).double().mean()
    return float(precision), float(recall)


@register_metric("precision_recall", unsupported=needs_images, unavailable=extractor_unavailable,
                 min_samples=lambda options: (int(options.precision_recall.k) + 1,) * 2,   # a k-th neighbour
                 better={"*_precision": "higher", "*_recall": "higher"}, frontier=("*_precision", "*_recall"))
def precision_recall_metric(ctx: EvalContext) -> dict[str, float]:
    real, fake = extracted(ctx)["features"]
    k = int(ctx.options.precision_recall.k)
    precision, recall = precision_recall(real, fake, k)
    ctx.protocol["precision_recall"] = protocol(ctx) | {"k": k}
    name = resolve_extractor(ctx.options.extractor)
    return {f"precision_recall/{name}_precision": precision, f"precision_recall/{name}_recall": recall}


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """(density, coverage) of `fake` against `real`, features (n, d).

    1. A ball around each distinct real sample reaching its k-th nearest real neighbour (`manifold`).
    2. Density = (1 / (k M)) sum over the M fakes of the number of real balls each lies in.
    3. Coverage = the share of real balls whose centre has a fake within its radius.
    """
    if len(real) <= k or len(fake) == 0:
        raise ValueError(f"density/coverage with k={k} needs more than {k} real samples and one generated")
    real, fake = real.double(), fake.double()
    support, radii = manifold(real, k)
    density = balls_containing(fake, support, radii).double().sum() / (k * len(fake))
    coverage = (kth_nearest_distance(support, fake, 1) <= radii).double().mean()
    return float(density), float(coverage)


@register_metric("density_coverage", unsupported=needs_samples, unavailable=features_unavailable,
                 min_samples=lambda options: (int(options.density_coverage.k) + 1, 1),   # a k-th real neighbour
                 better={"*_density": "higher", "*_coverage": "higher"},
                 headline=tuple(f"{space}_coverage" for space in FEATURE_SPACES), rank=31,
                 frontier=("*_density", "*_coverage"))
def density_coverage_metric(ctx: EvalContext) -> dict[str, float]:
    real, fake = evaluation_features(ctx)
    k = int(ctx.options.density_coverage.k)
    density, coverage = density_coverage(real, fake, k)
    ctx.protocol["density_coverage"] = features_protocol(ctx) | {"k": k}
    space = feature_space(ctx.options, ctx.data)
    return {f"density_coverage/{space}_density": density, f"density_coverage/{space}_coverage": coverage}
