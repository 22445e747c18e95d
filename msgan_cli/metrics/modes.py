"""Modes counted exactly, where the true modes are known by construction:
- `modes_2d`: modes captured, share of high-quality samples, and KL of the mode histogram against
  uniform, for the 2D mixtures (docs/methods.md#mixtures-2d; the VEEGAN / PacGAN protocol, 2,500 samples).
- `modes_per_input`: the same per input, for translation benchmarks whose K correct outputs per
  input are known (`dataset=outline_fill`): how many of an input's modes its outputs find.
No learned classifier in either."""
import torch

from msgan_cli.core.batch import take
from msgan_cli.core.registry import register_metric
from msgan_cli.metrics.context import EvalContext


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


@register_metric("modes_2d", unsupported=needs_mixture, better={"modes": "higher", "high_quality": "higher", "kl": "lower"},
                 headline=("modes", "high_quality", "kl"), rank=10, frontier=("high_quality", "modes"))
def modes_2d_metric(ctx: EvalContext) -> dict[str, float]:
    samples = ctx.sample(ctx.num_samples, ctx.conditions(ctx.num_samples))
    values = modes_2d(samples, ctx.data.extras["centres"], ctx.data.extras["std"])
    return {f"modes_2d/{k}": v for k, v in values.items()}


def modes_per_input(outputs: torch.Tensor, targets: torch.Tensor, quality: float = 0.5) -> dict[str, float]:
    """Modes found per input on a benchmark whose K correct outputs per input are known.

    `outputs`: (N, M, ...) M generated outputs for each of N inputs; `targets`: (N, K, ...) the K
    correct outputs of each input.
    1. The distance of every output to every correct output of its input: mean absolute difference.
    2. Each output belongs to its nearest correct output (its mode).
    3. High quality (HQ): at least 1 / `quality` times closer to that mode than to any other correct
       output of the input (quality 0.5: twice as close). Scale-free: an output halfway between two
       modes (a blend), far from all of them (noise), or equally near all (an unfilled shape) is not HQ.
    4. A mode of an input is found when at least one HQ output of that input belongs to it.
    5. KL(p || uniform) per input, p = the share of the input's outputs in each mode (0 log 0 = 0), as
       in `modes_2d` over all outputs; averaged over inputs.
    """
    n, _, k = outputs.shape[0], outputs.shape[1], targets.shape[1]
    found, high_quality, kl = [], [], []
    for out, correct in zip(outputs.flatten(2).float(), targets.flatten(2).float()):
        distance = torch.cdist(out, correct, p=1) / out.shape[1]                        # (M, K)
        two_nearest, order = distance.topk(2, dim=1, largest=False)
        nearest = order[:, 0]
        good = two_nearest[:, 0] < quality * two_nearest[:, 1]
        found.append(torch.unique(nearest[good]).numel())
        high_quality.append(good.float().mean())
        p = torch.bincount(nearest, minlength=k).float() / len(nearest)
        kl.append(float((p[p > 0] * (p[p > 0] * k).log()).sum()))
    modes = sum(found) / n
    return {"modes": modes, "modes_fraction": modes / k, "high_quality": float(torch.stack(high_quality).mean() * 100),
            "kl": sum(kl) / n, "num_modes_total": float(k)}


def needs_known_modes(recipe, data) -> str | None:
    split = data.evaluation_split
    if not recipe.conditions_come_from_data or split.mode_targets(torch.zeros(1, dtype=torch.long)) is None:
        return (f"it needs a translation benchmark whose modes are known by construction ({data.name} is not; "
                "e.g. dataset=outline_fill)")
    return None


@register_metric("modes_per_input", unsupported=needs_known_modes,
                 better={"modes": "higher", "modes_fraction": "higher", "high_quality": "higher", "kl": "lower"},
                 headline=("modes", "high_quality", "kl"), rank=11, frontier=("high_quality", "modes"))
def modes_per_input_metric(ctx: EvalContext) -> dict[str, float]:
    """On the evaluation inputs, `eval.modes_per_input.samples_per_input` outputs each (more than the
    per-input protocol's 5, so that a diverse generator can show all K modes); and, as the ceiling, the
    same count for outputs drawn from the true distribution (each a correct output, uniformly)."""
    options = ctx.options.modes_per_input
    inputs, _ = ctx.evaluation_inputs()
    per_input, count = int(options.samples_per_input), len(inputs)
    index = torch.arange(count, device=ctx.device).repeat_interleave(per_input)
    outputs = ctx.sample(len(index), take(ctx.direction.condition(inputs), index))
    targets = ctx.data.evaluation_split.mode_targets(torch.arange(count, device=ctx.device))
    values = modes_per_input(outputs.view(count, per_input, *outputs.shape[1:]), targets, float(options.quality))
    drawn = torch.randint(targets.shape[1], (count, per_input), generator=torch.Generator().manual_seed(ctx.seed))
    ideal = modes_per_input(targets[torch.arange(count)[:, None], drawn.to(targets.device)], targets, float(options.quality))
    ctx.protocol["modes_per_input"] = {"inputs": count, "samples_per_input": per_input, "quality": float(options.quality),
                                       "num_samples": len(index), "conditions": ctx.describe_conditions(per_input),
                                       "distance": "mean absolute difference to each correct output"}
    return {**{f"modes_per_input/{k}": v for k, v in values.items()},
            "modes_per_input/ideal_modes": ideal["modes"], "modes_per_input/ideal_kl": ideal["kl"]}
