"""Metrics judged by the project's classifier, each reported with the classifier's own test accuracy
(their ceiling):
- `class_acc`: the share of class-conditional samples labelled as the class they were asked for.
- `mode_score`: the MODE score of Che et al. (docs/methods.md#mode-score) against the data's label distribution.
- `stacked_modes`: modes out of 1,000 on Stacked (Fashion-)MNIST and the KL against uniform
  (docs/methods.md#stacked-mnist); a classifier trained on the single channels labels each channel.
"""
import torch

from msgan_cli.core.registry import register_metric
from msgan_cli.data import Data
from msgan_cli.data.base import TensorSplit
from msgan_cli.metrics.classifier import load_or_train_classifier, predict
from msgan_cli.metrics.context import EvalContext


def needs_class_labelled_images(recipe, data) -> str | None:
    if data.kind != "image" or data.label_kind != "class":
        return f"it needs an image dataset with class labels ({data.name} is not)"
    return None


def needs_class_conditional_images(recipe, data) -> str | None:
    if reason := needs_class_labelled_images(recipe, data):
        return reason
    if recipe.condition_kind != "class":
        return f"it needs a class-conditional model (this run's condition: {recipe.condition_kind or 'none'})"
    return None


@register_metric("class_acc", unsupported=needs_class_conditional_images, better={"": "higher"}, headline=("",), rank=40)
def class_acc(ctx: EvalContext) -> dict[str, float]:
    classifier, test_accuracy = ctx.classifier()
    labels = ctx.class_labels(ctx.num_samples)
    predictions = predict(classifier, ctx.sample(ctx.num_samples, labels))
    return {"class_acc": float((predictions == labels).float().mean()),
            "class_acc/classifier_test_acc": test_accuracy}


def mode_score(probabilities: torch.Tensor, label_distribution: torch.Tensor, eps: float = 1e-12) -> float:
    """`exp(E_x[KL(p(y|x) || p*(y))] - KL(p(y) || p*(y)))` (Che et al. 2017).

    1. p(y|x): the classifier's softmax on each generated sample (rows of `probabilities`).
    2. p(y): their mean, the generated label marginal; p*(y): the data's label distribution.
    3. High when each sample is confidently one class and the classes are used as often as in the data.
    """
    p = probabilities.double().clamp_min(eps)
    target = label_distribution.double().clamp_min(eps)
    conditional_kl = (p * (p.log() - target.log())).sum(1).mean()
    marginal = p.mean(0)
    marginal_kl = (marginal * (marginal.log() - target.log())).sum()
    return float(torch.exp(conditional_kl - marginal_kl))


@register_metric("mode_score", unsupported=needs_class_labelled_images, better={"": "higher"})
def mode_score_metric(ctx: EvalContext) -> dict[str, float]:
    classifier, test_accuracy = ctx.classifier()
    samples = ctx.sample(ctx.num_samples, ctx.conditions(ctx.num_samples))
    with torch.no_grad():
        probabilities = torch.cat([classifier(samples[i:i + 500]).softmax(1) for i in range(0, len(samples), 500)])
    train_labels = ctx.data.train.labels   # the labels only: no need to build every training image
    label_distribution = torch.bincount(train_labels.cpu(), minlength=ctx.data.num_classes).float() / len(train_labels)
    return {"mode_score": mode_score(probabilities.cpu(), label_distribution.cpu()),
            "mode_score/classifier_test_acc": test_accuracy}


def stacked_modes(channel_predictions: torch.Tensor, num_channel_classes: int = 10) -> dict[str, float]:
    """Modes covered and KL(p_gen || uniform) from per-channel class predictions of shape (n, 3).

    1. A sample's mode is its triple of channel classes: 100 a + 10 b + c (1,000 modes).
    2. Modes = distinct triples among the samples.
    3. KL of the triples' histogram against uniform over all 1,000 (0 log 0 = 0).
    """
    total = num_channel_classes ** channel_predictions.shape[1]
    weights = num_channel_classes ** torch.arange(channel_predictions.shape[1] - 1, -1, -1, device=channel_predictions.device)
    modes = (channel_predictions * weights).sum(1)
    p = torch.bincount(modes, minlength=total).double() / len(modes)
    kl = float((p[p > 0] * (p[p > 0] * total).log()).sum())
    return {"modes": float(torch.unique(modes).numel()), "kl": kl, "num_modes_total": float(total)}


def is_stacked(data: Data) -> bool:
    """Whether the dataset's images are channels stacked from a labelled base set (Stacked MNIST)."""
    return hasattr(data.train, "base_labels")   # what channel_data reads


def needs_stacked(recipe, data) -> str | None:
    return None if is_stacked(data) else f"it needs a stacked dataset ({data.name} is not)"


def channel_data(data: Data) -> Data:
    """The single-channel images a stacked dataset is made of, with their classes."""
    train, test = data.train, data.test
    return Data(f"{data.name}-channels", "image", TensorSplit(train.base, train.base_labels),
                TensorSplit(test.base, test.base_labels), int(train.base_labels.max()) + 1, "class",
                (1, *data.shape[1:]))


@register_metric("stacked_modes", unsupported=needs_stacked, better={"modes": "higher", "kl": "lower"},
                 headline=("modes", "kl"), rank=12)
def stacked_modes_metric(ctx: EvalContext) -> dict[str, float]:
    """Modes and KL of the generator's samples, and the same for as many real training images: with a
    classifier that errs, the real data's numbers are what a perfect generator would score."""
    channels = channel_data(ctx.data)
    classifier, test_accuracy = load_or_train_classifier(channels, ctx.dataset_cfg, ctx.options.classifier, ctx.device)

    def modes_of(images: torch.Tensor) -> dict[str, float]:
        return stacked_modes(torch.stack([predict(classifier, images[:, i:i + 1]) for i in range(images.shape[1])], 1),
                             channels.num_classes)

    real_images = ctx.real(ctx.num_samples).samples
    real = modes_of(real_images)
    values = modes_of(ctx.sample(ctx.num_samples))
    ctx.protocol["stacked_modes"] = {"samples": ctx.num_samples, "real_samples": len(real_images),
                                     "channel_classifier_test_acc": test_accuracy}
    return {**{f"stacked_modes/{k}": v for k, v in values.items()},
            "stacked_modes/real_data_modes": real["modes"], "stacked_modes/real_data_kl": real["kl"],
            "stacked_modes/classifier_test_acc": test_accuracy}
