"""Fashion-MNIST (and MNIST: the identical IDX format) and Stacked Fashion-MNIST (docs/methods.md#stacked-mnist).

Reads the IDX files as distributed, gzipped or not:
`{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`. Debian's `dataset-fashion-mnist` puts them in
/usr/share/datasets/fashion-mnist; `dataset.root` points at any folder in the same format.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Batch, Data, Split, TensorSplit, resize_images
from msgan_cli.errors import UserError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file: two zero bytes, a dtype code, the number of dimensions, big-endian sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:   # gzip.BadGzipFile is an OSError; a cut-off gzip an EOFError
        raise UserError(f"{path} cannot be read ({error}): replace it with the original file.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (bad header).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: header says {shape}, found {data.size} values.")
    return data.reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.exists():
            return candidate
    raise UserError(
        f"Fashion-MNIST/MNIST file '{stem}[.gz]' not found in {root}. On Debian run "
        f"'apt-get install -y dataset-fashion-mnist' (files land in /usr/share/datasets/fashion-mnist), "
        f"or point dataset.root=... at a folder holding the IDX files."
    )


def read_idx_split(root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 1, 28, 28) and int64 labels of split 'train' or 't10k'."""
    root = Path(root).expanduser()
    images = read_idx(_find(root, f"{split}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{split}-labels-idx1-ubyte"))
    if len(images) != len(labels):
        raise UserError(f"{root}: {len(images)} {split} images but {len(labels)} labels.")
    return torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64))


@register_dataset("fashion_mnist")
def load_fashion_mnist(cfg) -> Data:
    splits = {}
    for split in ("train", "t10k"):
        images, labels = read_idx_split(cfg.root, split)
        splits[split] = TensorSplit(resize_images(images, cfg.resolution), labels)
    return Data(
        name="fashion_mnist", kind="image", train=splits["train"], test=splits["t10k"],
        num_classes=10, label_kind="class", shape=(1, cfg.resolution, cfg.resolution),
        class_names=tuple(cfg.class_names),
    )


class StackedSplit(Split):
    """Three grayscale images stacked as R, G, B; the label (mode) is 100*a + 10*b + c of their classes.

    Stores the base images once and an index of triples, instead of 128,000 RGB images.
    """

    def __init__(self, base: torch.Tensor, base_labels: torch.Tensor, triples: torch.Tensor):
        self.base, self.base_labels, self.triples = base, base_labels, triples
        self.labels = (base_labels[triples] * torch.tensor([100, 10, 1], device=triples.device)).sum(1)

    def __len__(self) -> int:
        return len(self.triples)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        picked = self.base[self.triples[index]]            # (B, 3, 1, H, W)
        return Batch(picked.flatten(1, 2), self.labels[index]).as_float()   # (B, 3, H, W)

    def to(self, device: torch.device) -> "StackedSplit":
        return StackedSplit(self.base.to(device), self.base_labels.to(device), self.triples.to(device))


@register_dataset("stacked_fashion_mnist")
def load_stacked_fashion_mnist(cfg) -> Data:
    generator = torch.Generator().manual_seed(cfg.triples_seed)
    splits = {}
    for split, count in (("train", cfg.num_train), ("t10k", cfg.num_test)):
        images, labels = read_idx_split(cfg.root, split)
        triples = torch.randint(len(images), (count, 3), generator=generator)
        splits[split] = StackedSplit(resize_images(images, cfg.resolution), labels, triples)
    return Data(
        name="stacked_fashion_mnist", kind="image", train=splits["train"], test=splits["t10k"],
        num_classes=1000, label_kind="mode", shape=(3, cfg.resolution, cfg.resolution),
    )
