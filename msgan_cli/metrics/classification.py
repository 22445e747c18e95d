"""`class_acc`: the share of class-conditional samples that the dataset's classifier labels as the
class they were asked for. Reported with the classifier's own test accuracy, its ceiling."""
from msgan_cli.metrics import EvalContext, register_metric
from msgan_cli.metrics.classifier import predict


def needs_class_conditional_images(recipe, data) -> str | None:
    if data.kind != "image" or data.label_kind != "class":
        return f"it needs an image dataset with class labels ({data.name} is not)"
    if not recipe.conditional:
        return "it needs a class-conditional model (this run is unconditional)"
    return None


@register_metric("class_acc", unsupported=needs_class_conditional_images)
def class_acc(ctx: EvalContext) -> dict[str, float]:
    classifier, test_accuracy = ctx.classifier()
    labels = ctx.labels(ctx.num_samples)
    predictions = predict(classifier, ctx.sample(ctx.num_samples, labels))
    return {"class_acc": float((predictions == labels).float().mean()),
            "class_acc/classifier_test_acc": test_accuracy}
