"""Any folder of images, unlabelled: centre-cropped to a square and resized. For a user's own data
and for unconditional runs; a conditional model on it stops with a message (it has no labels)."""
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from msgan_cli.data import register_dataset
from msgan_cli.data.base import Data, TensorSplit, random_split
from msgan_cli.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def _load_image(path: Path, resolution: int, channels: int) -> np.ndarray:
    image = Image.open(path).convert("RGB" if channels == 3 else "L")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((resolution, resolution), Image.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


@register_dataset("image_folder")
def load_image_folder(cfg) -> Data:
    if cfg.root is None or not Path(cfg.root).expanduser().is_dir():
        raise UserError(f"dataset=image_folder needs dataset.root=<folder of images>; got {cfg.root!r}.")
    paths = sorted(p for p in Path(cfg.root).expanduser().rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise UserError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {cfg.root}.")
    images = torch.from_numpy(np.stack([_load_image(p, cfg.resolution, cfg.channels) for p in paths]))
    train, test = random_split(len(images), cfg.test_fraction, cfg.split_seed)
    return Data(name="image_folder", kind="image", train=TensorSplit(images[train], None),
                test=TensorSplit(images[test], None) if len(test) else None,
                num_classes=0, label_kind=None, shape=tuple(images.shape[1:]))
