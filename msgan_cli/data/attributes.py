"""Attribute-labelled images (StarGAN's domains; docs/methods.md#stargan): every image has a vector of binary
attributes (CelebA's selected attributes; the benchmark's fill colour and stroke), and a translation
model changes an image's attributes into target ones.

Each class of such data stands for one combination of attributes (`Attributes.by_class`): the
evaluation classifier, which learns classes, so also tells the attributes of what a generator drew.
One group of attributes may be mutually exclusive (CelebA's hair colours): setting one clears the
others, as StarGAN's `create_labels`.

Evaluation views, one per *edit* (StarGAN's test translates every test image with each attribute
changed in turn): an edit sets one attribute to a value, 1 ("Blond_Hair") or, for an attribute
outside the exclusive group, 0 as well ("not_Male"), so that each view has one target domain on the
edited attribute and the real images to compare its outputs with are those that have that value.
`edited_view(data, edit)` is that view: its evaluation rows are the test images with their target
attributes (`inputs["target"]`), its training split the real training images with the edited value
(what FID, KID, NDB and precision/recall compare against), and, on a benchmark whose correct
translations are known (`Split.translations`), the K correct outputs of each row (`mode_targets`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from msgan_cli.data.base import Batch, Data, Split
from msgan_cli.errors import UserError


@dataclass(frozen=True)
class Edit:
    """Set attribute `attribute` (an index) to `value` (0 or 1); `name` goes into metric keys."""

    attribute: int
    value: int
    name: str


@dataclass(frozen=True)
class Attributes:
    """The attribute names, each class's attribute vector (num_classes, A) of 0 / 1 floats, and the
    indices of the one exclusive group (none: every attribute independent)."""

    names: tuple[str, ...]
    by_class: torch.Tensor
    exclusive: tuple[int, ...] = ()

    def of(self, labels: torch.Tensor) -> torch.Tensor:
        """The attribute vectors (n, A) of samples of classes `labels`."""
        return self.by_class.to(labels.device)[labels]

    def edits(self) -> tuple[Edit, ...]:
        """StarGAN's test edits, one target value per view: each attribute set to 1, and each attribute
        outside the exclusive group set to 0 too (a hair colour is not "unset": another one is set)."""
        edits = []
        for index, name in enumerate(self.names):
            edits.append(Edit(index, 1, name))
            if index not in self.exclusive:
                edits.append(Edit(index, 0, f"not_{name}"))
        return tuple(edits)

    def apply(self, attributes: torch.Tensor, edit: Edit) -> torch.Tensor:
        """`attributes` (n, A) with `edit` made (an exclusive attribute set to 1 clears its group)."""
        target = attributes.clone()
        if edit.value == 1 and edit.attribute in self.exclusive:
            target[:, list(self.exclusive)] = 0
        target[:, edit.attribute] = float(edit.value)
        return target


class SubsetSplit(Split):
    """The rows `rows` of another split (a view's real images of one attribute value)."""

    def __init__(self, base: Split, rows: torch.Tensor):
        self.base, self.rows = base, rows
        self.labels = None if base.labels is None else base.labels[rows.to(base.labels.device)]

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        return self.base.batch(self.rows.to(index.device)[index], augment)

    def to(self, device: torch.device) -> "SubsetSplit":
        return SubsetSplit(self.base.to(device), self.rows)


class EditedSplit(Split):
    """Another split's images as the inputs of one edit: a batch's samples are the input images and
    `inputs["target"]` their attributes after the edit; labels stay the inputs' classes."""

    def __init__(self, base: Split, attributes: Attributes, edit: Edit):
        self.base, self.attributes, self.edit = base, attributes, edit
        self.labels = base.labels

    def __len__(self) -> int:
        return len(self.base)

    def target_attributes(self, labels: torch.Tensor) -> torch.Tensor:
        return self.attributes.apply(self.attributes.of(labels), self.edit)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        batch = self.base.batch(index)
        return Batch(batch.samples, batch.labels, inputs={"target": self.target_attributes(batch.labels)})

    def mode_targets(self, index: torch.Tensor) -> torch.Tensor | None:
        translate = getattr(self.base, "translations", None)
        if translate is None:
            return None
        return translate(index, self.target_attributes(self.labels.to(index.device)[index]))

    def to(self, device: torch.device) -> "EditedSplit":
        return EditedSplit(self.base.to(device), self.attributes, self.edit)


def edited_view(data: Data, edit: Edit) -> Data:
    """The data as the view of `edit` sees it (module docstring): named `<data>-<edit>`; the classifier
    stays the whole data's (`Data.whole`), as one view's real images hold one value of an attribute."""
    attributes: Attributes = data.extras["attributes"]
    train_values = attributes.of(data.train.labels)[:, edit.attribute]
    rows = torch.nonzero(train_values == edit.value).flatten().cpu()
    if len(rows) == 0:   # FID, NDB, ... of this view would have no real images to compare with
        raise UserError(f"No training image of {data.name} has {edit.name}, so its outputs cannot be compared with "
                        f"real ones: leave {attributes.names[edit.attribute]} out of dataset.attributes.")
    real = SubsetSplit(data.train, rows)
    test = None if data.test is None else EditedSplit(data.test, attributes, edit)
    return replace(data, name=f"{data.name}-{edit.name}", train=real, test=test, paired=False, whole=data)
