"""`domain_acc`: whether translations have the attributes they were asked for (StarGAN's classification
check, docs/methods.md#stargan), in a view of one attribute edit (`data/attributes.py`).

The project's classifier, trained on the real images of every domain (`Data.whole`), labels each
output; its class stands for an attribute combination (`Attributes.by_class`). Reported per view:
- `all`: the share of outputs whose predicted attributes equal the target's, every attribute (an
  edit must change the edited attribute and keep the others);
- `edited`: the share whose edited attribute has the target value;
- `classifier_attribute_acc`: the same `all` check on the real test images with their own attributes,
  the ceiling of the other two; `classifier_test_acc`, its class accuracy (on a benchmark whose
  classes also hold an open property, the background, stricter than the attributes).
"""
from __future__ import annotations

import torch

from msgan_cli.core.registry import register_metric
from msgan_cli.data.attributes import EditedSplit
from msgan_cli.metrics.classifier import predict
from msgan_cli.metrics.context import EvalContext


def needs_attribute_edits(recipe, data) -> str | None:
    if not isinstance(data.evaluation_split, EditedSplit):
        return f"it needs a view of attribute edits (a model translating between attribute domains, e.g. model=stargan; " \
               f"this run's views of {data.name} are not attribute edits)"
    return None


@torch.no_grad()
def real_attribute_accuracy(ctx: EvalContext, attributes, chunk: int = 500) -> float:
    """The share of the whole data's test images whose predicted attributes are their own."""
    test, classifier = (ctx.data.whole or ctx.data).test, ctx.classifier()[0]
    correct = 0
    for start in range(0, len(test), chunk):
        batch = test.batch(torch.arange(start, min(start + chunk, len(test)), device=ctx.device))
        predicted = attributes.of(predict(classifier, batch.samples))
        correct += int((predicted == attributes.of(batch.labels)).all(1).sum())
    return correct / len(test)


@register_metric("domain_acc", unsupported=needs_attribute_edits, better={"all": "higher", "edited": "higher"})
def domain_acc(ctx: EvalContext) -> dict[str, float]:
    split: EditedSplit = ctx.data.evaluation_split
    attributes, edit = split.attributes, split.edit
    inputs, _ = ctx.evaluation_inputs()
    n = ctx.num_samples
    outputs = ctx.sample(n, ctx.conditions(n))
    classifier, test_accuracy = ctx.classifier()
    predicted = attributes.of(predict(classifier, outputs))
    target = split.target_attributes(inputs.labels)[ctx.input_of_sample(n)]
    ctx.protocol["domain_acc"] = {"num_samples": n, "conditions": ctx.describe_conditions(),
                                  "edit": f"{attributes.names[edit.attribute]} = {edit.value}"}
    return {"domain_acc/all": float((predicted == target).all(1).float().mean()),
            "domain_acc/edited": float((predicted[:, edit.attribute] == edit.value).float().mean()),
            "domain_acc/classifier_attribute_acc": real_attribute_accuracy(ctx, attributes),
            "domain_acc/classifier_test_acc": test_accuracy}
