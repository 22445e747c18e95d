"""`modes_2d`: modes captured, share of high-quality samples, and KL of the mode histogram against
uniform, for the 2D mixtures (METHODS.md 6.1; the VEEGAN / PacGAN protocol, 2,500 samples)."""
import torch

from msgan_cli.metrics import EvalContext, register_metric


def modes_2d(samples: torch.Tensor, centres: torch.Tensor, std: float, threshold: float = 3.0) -> dict[str, float]:
    """1. Each sample's distance to its nearest centre, in units of the per-axis std.
    2. High quality (HQ): that distance is below `threshold` (3 standard deviations).
    3. A mode is captured when at least one HQ sample falls nearest to it.
    4. KL(p || uniform), p = the share of all samples nearest to each mode (0 log 0 = 0).
    """
    distances = torch.cdist(samples.float(), centres.to(samples.device).float()) / std
    nearest_distance, nearest = distances.min(1)
    high_quality = nearest_distance < threshold
    captured = torch.unique(nearest[high_quality]).numel()
    p = torch.bincount(nearest, minlength=len(centres)).float() / len(samples)
    kl = float((p[p > 0] * (p[p > 0] * len(centres)).log()).sum())
    return {"modes": float(captured), "high_quality": float(high_quality.float().mean() * 100),
            "kl": kl, "num_modes_total": float(len(centres))}


def needs_mixture(recipe, data) -> str | None:
    return None if "centres" in data.extras else f"it needs a 2D mixture dataset ({data.name} is not)"


@register_metric("modes_2d", unsupported=needs_mixture)
def modes_2d_metric(ctx: EvalContext) -> dict[str, float]:
    samples = ctx.sample(ctx.num_samples, ctx.labels(ctx.num_samples))
    values = modes_2d(samples, ctx.data.extras["centres"], ctx.data.extras["std"])
    return {f"modes_2d/{k}": v for k, v in values.items()}
