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
"""
from __future__ import annotations

import torch

from msgan_cli.core.registry import register_metric
from msgan_cli.metrics.context import EvalContext
from msgan_cli.metrics.fidelity import extracted, extractor_unavailable, needs_images, protocol, resolve_extractor


def knn_radii(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Each sample's distance to its k-th nearest neighbour among the others."""
    radii = []
    for start in range(0, len(features), chunk):
        distances = torch.cdist(features[start:start + chunk], features)
        radii.append(distances.kthvalue(k + 1, dim=1).values)   # the 1st is the sample itself (0)
    return torch.cat(radii)


def inside_manifold(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """For each query, whether it lies within some support sample's ball."""
    inside = []
    for start in range(0, len(queries), chunk):
        distances = torch.cdist(queries[start:start + chunk], support)
        inside.append((distances <= radii[None]).any(1))
    return torch.cat(inside)


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
                 better={"*_precision": "higher", "*_recall": "higher"})
def precision_recall_metric(ctx: EvalContext) -> dict[str, float]:
    real, fake = extracted(ctx)["features"]
    k = int(ctx.options.precision_recall.k)
    precision, recall = precision_recall(real, fake, k)
    ctx.protocol["precision_recall"] = protocol(ctx) | {"k": k}
    name = resolve_extractor(ctx.options.extractor)
    return {f"precision_recall/{name}_precision": precision, f"precision_recall/{name}_recall": recall}
