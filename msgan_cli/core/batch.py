"""What a training or evaluation batch carries, and the few operations the engine applies to
conditions of any kind.

A condition is whatever a generator takes besides its latent: class indices `(n,)`, an input image
`(n, C, H, W)`, a text embedding `(n, D)`, or several of these in a dict (an image and a target
domain). The engine never looks inside one: it only takes rows, repeats them and moves them, with
the functions below, which treat a tensor, a dict (or tuple) of tensors, or None alike. Rows are
always along the first axis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import torch

Tree = Union[torch.Tensor, dict, tuple, list, None]   # a tensor, or a dict / tuple / list of trees, or None


def map_tree(function: Callable[[torch.Tensor], torch.Tensor], tree: Tree) -> Tree:
    """`function` applied to every tensor of `tree`, keeping its structure."""
    if tree is None:
        return None
    if isinstance(tree, torch.Tensor):
        return function(tree)
    if isinstance(tree, dict):
        return {key: map_tree(function, value) for key, value in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(map_tree(function, value) for value in tree)
    raise TypeError(f"a condition must be a tensor, a dict/tuple/list of tensors, or None; got {type(tree).__name__}")


def leaves(tree: Tree) -> list[torch.Tensor]:
    """The tensors of `tree`, in a fixed order."""
    found: list[torch.Tensor] = []
    map_tree(lambda t: found.append(t) or t, tree)
    return found


def rows(tree: Tree) -> int:
    """The number of rows (samples) of `tree`; 0 for None."""
    tensors = leaves(tree)
    return len(tensors[0]) if tensors else 0


def take(tree: Tree, index: torch.Tensor | slice) -> Tree:
    """The rows `index` (an index tensor or a slice) of every tensor of `tree`."""
    if isinstance(index, torch.Tensor):
        return map_tree(lambda t: t[index.to(t.device)], tree)
    return map_tree(lambda t: t[index], tree)


def repeat_rows(tree: Tree, times: int) -> Tree:
    """`tree` stacked `times` times along the rows: rows [0, n) again at [n, 2n), ... (the layout of
    several latents for the same conditions, `Generated.group(j)`)."""
    return map_tree(lambda t: t.repeat(times, *[1] * (t.dim() - 1)), tree)


def to_device(tree: Tree, device: torch.device, non_blocking: bool = False) -> Tree:
    return map_tree(lambda t: t.to(device, non_blocking=non_blocking), tree)


def concat(trees: list[Tree]) -> Tree:
    """Trees of the same structure joined along the rows."""
    if trees[0] is None:
        return None
    if isinstance(trees[0], torch.Tensor):
        return torch.cat(trees)
    if isinstance(trees[0], dict):
        return {key: concat([tree[key] for tree in trees]) for key in trees[0]}
    return type(trees[0])(concat(list(parts)) for parts in zip(*trees))


def in_groups(judge: Callable[[torch.Tensor, Tree], Tree], x: torch.Tensor, condition: Tree, groups: int) -> Tree:
    """`judge(x, condition)` on each of `groups` equal, consecutive parts of the rows, joined along the rows:
    a generated batch's latent groups judged one call each, as the MSGAN code judges each fake half. With
    BatchNorm in the judge, each call normalises by its own group's statistics; without, the result is
    one call's, to float32 rounding."""
    if groups == 1:
        return judge(x, condition)
    n = len(x) // groups
    return concat([judge(x[j * n:(j + 1) * n], take(condition, slice(j * n, (j + 1) * n))) for j in range(groups)])


def as_float_images(tree: Tree) -> Tree:
    """uint8 images (0..255) become floats in [-1, 1]; other tensors are left as they are. Images
    travel as uint8 (a quarter of the bytes) and are converted where they are used."""
    return map_tree(lambda t: t.float() / 127.5 - 1.0 if t.dtype == torch.uint8 else t, tree)


@dataclass
class Batch:
    """Samples of a split, with what they come with.

    `samples`: what a discriminator learns as real (images `(n, C, H, W)` or points `(n, 2)`).
    `labels`: a class or mode index per sample (`Data.label_kind` says which), or None.
    `inputs`: for translation data, what each sample was made from (the input image of a paired set),
    or None. A recipe picks its condition from these (`Recipe.condition`).
    """

    samples: Tree
    labels: torch.Tensor | None = None
    inputs: Tree = None

    def __len__(self) -> int:
        return rows(self.samples)

    @staticmethod
    def join(batches: list["Batch"]) -> "Batch":
        """Batches joined along the rows."""
        return Batch(*(concat([getattr(b, part) for b in batches]) for part in ("samples", "labels", "inputs")))

    def take(self, index: torch.Tensor | slice) -> "Batch":
        return Batch(take(self.samples, index), take(self.labels, index), take(self.inputs, index))

    def to(self, device: torch.device, non_blocking: bool = False) -> "Batch":
        return Batch(*(to_device(part, device, non_blocking) for part in (self.samples, self.labels, self.inputs)))

    def pin_memory(self) -> "Batch":
        """Page-locked copies (what DataLoader's pin_memory calls), for asynchronous copies to a GPU."""
        return Batch(*(map_tree(lambda t: t.pin_memory(), part) for part in (self.samples, self.labels, self.inputs)))

    def as_float(self) -> "Batch":
        return Batch(as_float_images(self.samples), self.labels, as_float_images(self.inputs))
