"""`pairwise_div`: how different two outputs for the same condition are (two independent latents).

Near 0 means the generator ignores its noise (the collapse mode seeking targets). Measured in pixel
L1 and, for labelled image datasets, as the cosine distance between the classifier's features; both
work offline (LPIPS, the MSGAN paper's measure, needs downloaded backbones).
"""
import torch

from msgan_cli.metrics import EvalContext, register_metric


def pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of each pair (a[i], b[i]); shape (n,)."""
    return (a - b).abs().flatten(1).mean(1)


def needs_latent_images(recipe, data) -> str | None:
    if data.kind != "image":
        return "it measures image diversity"
    if not recipe.has_latent:
        return "the model has no latent input"
    return None


@register_metric("pairwise_div", unsupported=needs_latent_images)
def pairwise_div(ctx: EvalContext) -> dict[str, float]:
    labels = ctx.labels(ctx.num_samples)
    first, second = ctx.sample(ctx.num_samples, labels), ctx.sample(ctx.num_samples, labels)
    result = {"pairwise_div/pixel_l1": float(pairwise_distances(first, second).mean())}
    if ctx.data.label_kind == "class":
        classifier, test_accuracy = ctx.classifier()
        with torch.no_grad():
            f1, f2 = classifier.features(first), classifier.features(second)
        result["pairwise_div/feature_cosine"] = float((1 - torch.cosine_similarity(f1, f2, dim=1)).mean())
        result["pairwise_div/classifier_test_acc"] = test_accuracy
    return result
