"""`vendi` and `rke`: how many different things a set of samples holds, as the exponential of an
entropy of its similarity matrix (docs/methods.md#vendi and #rke).

Both read a kernel matrix K of the samples' features (features.py: extractor features, pixels or 2D
points), n x n with K_ii = 1 and positive semi-definite. The eigenvalues of K / n are non-negative and
sum to 1; their effective number (the exponential of their Renyi entropy of order q) is 1 when every
sample is the same, n when all are orthogonal, and k for k equal groups of identical samples.
- `vendi` (Friedman & Dieng, TMLR 2023): order q (1, Shannon, the paper's), cosine kernel by default.
- `rke` (Jalali, Li & Farnia, NeurIPS 2023): order 2 of a Gaussian kernel of bandwidth sigma,
  n^2 / sum_ij K_ij^2 with no eigenvalue needed: the mode count, about k for k equal modes narrower
  than sigma and further apart than it. `rke` equals `vendi` with q = 2 and the same Gaussian kernel.
For conditional models both are reported over all outputs and within each condition (a class, or an
input with its `eval.per_input.samples` outputs), averaged over the conditions: within a condition
they say whether G varies its output at all, which is what mode seeking is for.
"""
from __future__ import annotations

import math
from functools import partial

import torch
from torch.nn import functional as F

from msgan_cli.core.registry import register_metric
from msgan_cli.errors import UserError
from msgan_cli.metrics.context import EvalContext
from msgan_cli.metrics.coverage import chunked_distances
from msgan_cli.metrics.features import (
    FEATURE_SPACES,
    condition_groups,
    evaluation_features,
    feature_space,
    features_protocol,
    features_unavailable,
    needs_samples,
)

KERNELS = ("cosine", "gaussian")
BANDWIDTH_SAMPLES = 1000   # real samples whose pairwise distances set sigma=auto (half a million pairs)


def effective_number(weights: torch.Tensor, q: float = 1.0) -> float:
    """exp(H_q) of the distribution `weights / weights.sum()`, H_q its Renyi entropy of order q >= 0:
    q = 1, exp(-sum p log p) (Shannon); q = inf, 1 / max p; otherwise (sum p^q)^(1 / (1 - q)).
    Weights below an eigensolver's rounding (max x count x machine epsilon, numpy's rank tolerance) are 0,
    so that q < 1 does not count rounding noise as diversity."""
    weights = weights.double()
    weights = weights[weights > weights.max() * len(weights) * torch.finfo(weights.dtype).eps]
    p = weights / weights.sum()
    if q == 1:
        return float(torch.exp(-(p * p.log()).sum()))
    if math.isinf(q):
        return float(1 / p.max())
    return float(p.pow(q).sum() ** (1 / (1 - q)))


def vendi_from_similarity(similarity: torch.Tensor, q: float = 1.0) -> float:
    """The Vendi score of an n x n similarity matrix K (K_ii = 1, positive semi-definite): the effective
    number of order q of the eigenvalues of K / n."""
    return effective_number(torch.linalg.eigvalsh(similarity.double() / len(similarity)), q)


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(-||a_i - b_j||^2 / (2 sigma^2)) for every pair of rows."""
    return torch.exp(-torch.cdist(a, b).square() / (2 * sigma ** 2))


def vendi_score(features: torch.Tensor, q: float = 1.0, kernel: str = "cosine", sigma: float | None = None) -> float:
    """The Vendi score of n samples' features (n, d) (docs/methods.md#vendi).

    `cosine`: K = X X^T with X's rows scaled to unit length (a row of zeros has no direction and is
    left out). K / n shares its nonzero eigenvalues with the d x d matrix X^T X / n (the dual form),
    which is the one decomposed when d < n: 10,000 samples of 64 classifier features are a 64 x 64
    eigenproblem instead of a 10,000 x 10,000 one (O(d^3) work and no n x n matrix instead of O(n^3)).
    `gaussian`: K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2)), which has no such form: the n x n matrix
    is built and decomposed (8 n^2 bytes, 800 MB at 10,000 samples, and O(n^3) time).
    """
    x = features.double().flatten(1)
    if kernel == "cosine":
        x = F.normalize(x, dim=1)
        gram = x.T @ x if x.shape[1] < len(x) else x @ x.T
        return effective_number(torch.linalg.eigvalsh(gram / len(x)), q)
    if kernel == "gaussian":
        if sigma is None or not sigma > 0:
            raise ValueError(f"the gaussian kernel needs a bandwidth sigma > 0; got {sigma}")
        return vendi_from_similarity(gaussian_kernel(x, x, sigma), q)
    raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}")


def rke_mode_count(features: torch.Tensor, sigma: float, chunk: int = 256) -> float:
    """RKE mode count n^2 / ||K||_F^2 = 1 / ||K / n||_F^2 for the Gaussian kernel of bandwidth sigma
    (docs/methods.md#rke). K_ij^2 = exp(-||x_i - x_j||^2 / sigma^2) is summed `chunk` rows at a time:
    10,000 samples need blocks of 256 x 10,000 (20 MB), never the 10,000 x 10,000 matrix."""
    if not sigma > 0:
        raise ValueError(f"RKE needs a bandwidth sigma > 0; got {sigma}")
    x = features.double().flatten(1)
    squared_norm = sum(float(torch.exp(-distances.square() / sigma ** 2).sum()) for distances in chunked_distances(x, x, chunk))
    return len(x) ** 2 / squared_norm


def auto_bandwidth(real: torch.Tensor) -> float:
    """sigma=auto: half the median distance between the first BANDWIDTH_SAMPLES real samples (a subset fixed
    by eval.seed), so the bandwidth follows the feature space's scale and is the same for every run on
    one dataset and extractor. Two samples at the data's typical distance then have K^2 = e^-4 = 0.02:
    they count as different modes; samples in a cluster tighter than sigma count as one."""
    distances = torch.pdist(real[:BANDWIDTH_SAMPLES].double().flatten(1))
    median = float(distances.quantile(0.5)) if len(distances) else 0.0   # the middle pair's mean when even
    if median == 0:
        raise UserError("sigma=auto is half the median distance between real samples, and most of them are "
                        "identical: set eval.rke.sigma (and eval.vendi.sigma) to a number.")
    return median / 2


def bandwidth(option, real: torch.Tensor) -> tuple[float, str]:
    """The bandwidth of an `eval.<metric>.sigma` option and how it was set, for the protocol."""
    if str(option) == "auto":
        return auto_bandwidth(real), f"auto: half the median distance between {min(len(real), BANDWIDTH_SAMPLES)} real samples"
    return float(option), "eval option"


def invalid_sigma(option, key: str) -> str | None:
    if str(option) == "auto" or (isinstance(option, (int, float)) and not isinstance(option, bool) and option > 0):
        return None
    return f"eval.{key}.sigma must be auto or a number > 0; got {option!r}."


def vendi_order(option) -> float | None:
    """`eval.vendi.q` as a number (`inf` allowed), or None when it is not an order >= 0."""
    try:
        q = float(str(option))
    except ValueError:
        return None
    return q if q >= 0 and not isinstance(option, bool) else None   # NaN fails q >= 0


def invalid_vendi_options(options) -> str | None:
    vendi = options.vendi
    if str(vendi.kernel) not in KERNELS:
        return f"eval.vendi.kernel must be one of {', '.join(KERNELS)}; got '{vendi.kernel}'."
    if vendi_order(vendi.q) is None:
        return f"eval.vendi.q must be a number >= 0 or inf; got {vendi.q!r}."
    return invalid_sigma(vendi.sigma, "vendi") if str(vendi.kernel) == "gaussian" else None


def vendi_unavailable(options, data) -> str | None:
    if reason := features_unavailable(options, data):
        return reason
    if str(options.vendi.kernel) == "cosine" and data.kind == "points":
        return (f"the cosine of two 2D points ({data.name}) is the angle between them seen from the origin, not "
                f"their similarity: set eval.vendi.kernel=gaussian.")
    return None


def within_and_over_all(ctx: EvalContext, metric: str, score, settings: dict) -> dict[str, float]:
    """`score` of all outputs, the mean of `score` within each condition (features.condition_groups), and,
    where real and generated samples are drawn alike (not conditioned on inputs), of as many real
    samples (`_real`: what the data itself scores). The protocol entry records `settings`."""
    real, fake = evaluation_features(ctx)
    space = feature_space(ctx.options, ctx.data)
    results = {f"{metric}/{space}": score(fake)}
    conditions = "none (unconditional)"
    if groups := condition_groups(ctx):
        name, condition = groups
        values = [score(fake[condition == c]) for c in condition.unique()]
        results[f"{metric}/{space}_{name}"] = sum(values) / len(values)
        conditions = f"mean over {len(values)} conditions ({ctx.describe_conditions()})"
    if not ctx.recipe.conditions_come_from_data:
        results[f"{metric}/{space}_real"] = score(real)
    ctx.protocol[metric] = features_protocol(ctx) | settings | {"within_condition": conditions}
    return results


# Higher is better over all outputs and within a condition; the real data's `_real` has no better side.
HIGHER_OVER_ALL_AND_WITHIN = {**{space: "higher" for space in FEATURE_SPACES}, "*_per_class": "higher",
                              "*_per_input": "higher"}


@register_metric("vendi", unsupported=needs_samples, unavailable=vendi_unavailable, invalid_options=invalid_vendi_options,
                 min_samples=lambda options: (2 if str(options.vendi.kernel) == "gaussian" else 1, 1),   # sigma's median
                 better=HIGHER_OVER_ALL_AND_WITHIN,
                 headline=tuple(f"{space}{part}" for part in ("_per_class", "_per_input", "") for space in FEATURE_SPACES),
                 rank=52)
def vendi_metric(ctx: EvalContext) -> dict[str, float]:
    options = ctx.options.vendi
    kernel, q = str(options.kernel), vendi_order(options.q)
    settings = {"kernel": kernel, "q": q if math.isfinite(q) else "inf"}
    sigma = None
    if kernel == "gaussian":
        sigma, how = bandwidth(options.sigma, evaluation_features(ctx)[0])
        settings |= {"sigma": sigma, "sigma_set_by": how}
    return within_and_over_all(ctx, "vendi", partial(vendi_score, q=q, kernel=kernel, sigma=sigma), settings)


@register_metric("rke", unsupported=needs_samples, unavailable=features_unavailable,
                 invalid_options=lambda options: invalid_sigma(options.rke.sigma, "rke"),
                 min_samples=lambda options: (2, 1),   # two real samples: sigma=auto's median distance
                 better=HIGHER_OVER_ALL_AND_WITHIN, rank=53)
def rke_metric(ctx: EvalContext) -> dict[str, float]:
    sigma, how = bandwidth(ctx.options.rke.sigma, evaluation_features(ctx)[0])
    settings = {"kernel": "gaussian", "sigma": sigma, "sigma_set_by": how}
    return within_and_over_all(ctx, "rke", partial(rke_mode_count, sigma=sigma), settings)
