"""`pairwise_div`: how different two outputs for the same condition are (two independent latents).

Near 0 means the generator ignores its noise (the collapse mode seeking targets). Measured in pixel
L1 and, for labelled image datasets, as the cosine distance between the classifier's features; both
work offline. `lpips_div` is the MSGAN paper's measure, LPIPS between the two outputs; it needs
ImageNet backbone weights, so `eval.metrics=auto` runs it only where they are present.
"""
from pathlib import Path

import torch

from msgan_cli.core.registry import register_metric
from msgan_cli.metrics.context import EvalContext


def pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of each pair (a[i], b[i]); shape (n,)."""
    return (a - b).abs().flatten(1).mean(1)


def needs_latent_images(recipe, data) -> str | None:
    if data.kind != "image":
        return "it measures image diversity"
    if not recipe.has_latent:
        return "the model has no latent input"
    return None


@register_metric("pairwise_div", unsupported=needs_latent_images,
                 better={"pixel_l1": "higher", "feature_cosine": "higher"}, headline=("pixel_l1",), rank=51)
def pairwise_div(ctx: EvalContext) -> dict[str, float]:
    conditions = ctx.conditions(ctx.num_samples)
    first, second = ctx.sample(ctx.num_samples, conditions), ctx.sample(ctx.num_samples, conditions)
    result = {"pairwise_div/pixel_l1": float(pairwise_distances(first, second).mean())}
    if ctx.data.label_kind == "class":
        classifier, test_accuracy = ctx.classifier()
        with torch.no_grad():
            f1, f2 = classifier.features(first), classifier.features(second)
        result["pairwise_div/feature_cosine"] = float((1 - torch.cosine_similarity(f1, f2, dim=1)).mean())
        result["pairwise_div/classifier_test_acc"] = test_accuracy
    return result


# LPIPS backbones: torchvision's ImageNet weights, which torchmetrics downloads on first use.
LPIPS_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth",
                        "squeeze": "squeezenet1_1-b8a52dc0.pth"}


def lpips_unavailable(options, data) -> str | None:
    net = str(options.lpips.net)
    if net not in LPIPS_BACKBONE_FILES:
        return f"eval.lpips.net must be one of {', '.join(LPIPS_BACKBONE_FILES)}; got '{net}'."
    path = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE_FILES[net]
    if not path.exists():
        return (f"LPIPS needs the {net} backbone weights ({LPIPS_BACKBONE_FILES[net]}), which cannot be downloaded "
                f"here: copy the file to {path.parent} (or set TORCH_HOME), or use pairwise_div, which works offline.")
    return None


def lpips_diversity(first: torch.Tensor, second: torch.Tensor, distance, chunk: int = 100) -> float:
    """Mean `distance(first[i], second[i])` over pairs of outputs for the same condition (MSGAN's LPIPS
    diversity); grayscale images are repeated to 3 channels, as LPIPS backbones expect."""
    if first.shape[1] == 1:
        first, second = first.repeat(1, 3, 1, 1), second.repeat(1, 3, 1, 1)
    with torch.no_grad():
        values = [distance(first[i:i + chunk].clamp(-1, 1), second[i:i + chunk].clamp(-1, 1)).flatten()
                  for i in range(0, len(first), chunk)]
    return float(torch.cat(values).mean())


@register_metric("lpips_div", unsupported=needs_latent_images, unavailable=lpips_unavailable, better={"": "higher"},
                 headline=("",), rank=50)
def lpips_div(ctx: EvalContext) -> dict[str, float]:
    from torchmetrics.functional.image.lpips import _LPIPS  # the per-pair network behind torchmetrics' LPIPS
    net = _LPIPS(pretrained=True, net=str(ctx.options.lpips.net)).to(ctx.device).eval()
    conditions = ctx.conditions(ctx.num_samples)
    first, second = ctx.sample(ctx.num_samples, conditions), ctx.sample(ctx.num_samples, conditions)
    ctx.protocol["lpips_div"] = {"net": str(ctx.options.lpips.net), "pairs": ctx.num_samples,
                                 "inputs": "[-1, 1], grayscale repeated to RGB, dataset resolution"}
    return {"lpips_div": lpips_diversity(first, second, net)}
