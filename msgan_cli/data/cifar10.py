"""CIFAR-10, python version: `cifar-10-batches-py/data_batch_1..5` and `test_batch`, pickled dicts
with `data` (N x 3072 uint8, channel-major) and `labels` (docs/methods.md#data-formats)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Data, TensorSplit, resize_images
from msgan_cli.data.pickles import NUMPY_ARRAYS, RestrictedUnpickler
from msgan_cli.errors import UserError


def _read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    if not path.exists():
        raise UserError(
            f"CIFAR-10 batch {path.name} not found in {path.parent}. Extract the 'CIFAR-10 python version' "
            f"archive (cifar-10-python.tar.gz) there, or point dataset.root=... at its cifar-10-batches-py folder."
        )
    with open(path, "rb") as f:
        try:
            batch = RestrictedUnpickler(f, NUMPY_ARRAYS, "a CIFAR-10 batch", encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise UserError(f"{path} is not a CIFAR-10 batch ({error}): replace it with the original file.") from None
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    return np.asarray(batch["data"], dtype=np.uint8), list(batch["labels"])


def _split(root: Path, names: list[str], resolution: int) -> TensorSplit:
    data, labels = zip(*(_read_batch(root / name) for name in names))
    images = torch.from_numpy(np.concatenate(data)).reshape(-1, 3, 32, 32)
    return TensorSplit(resize_images(images, resolution), torch.tensor(sum(labels, []), dtype=torch.long))


@register_dataset("cifar10")
def load_cifar10(cfg) -> Data:
    root = Path(cfg.root).expanduser()
    return Data(
        name="cifar10", kind="image",
        train=_split(root, [f"data_batch_{i}" for i in range(1, 6)], cfg.resolution),
        test=_split(root, ["test_batch"], cfg.resolution),
        num_classes=10, label_kind="class", shape=(3, cfg.resolution, cfg.resolution),
        class_names=tuple(cfg.class_names),
    )
