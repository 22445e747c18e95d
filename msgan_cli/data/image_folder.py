"""Any folder of images, unlabelled: centre-cropped to a square and resized. For a user's own data
and for unconditional runs; a conditional model on it stops with a message (it has no labels).
A file with an image's extension that cannot be read stops the run with a sentence naming it, unless
`dataset.skip_unreadable=true` (then it is skipped and counted); files of other kinds are counted."""
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Data, TensorSplit, random_split
from msgan_cli.data.files import Skipped, scan_images, suffix_list
from msgan_cli.errors import UserError

log = logging.getLogger(__name__)


def _load_image(path: Path, resolution: int, channels: int) -> np.ndarray:
    with Image.open(path) as opened:
        image = opened.convert("RGB" if channels == 3 else "L")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((resolution, resolution), Image.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


@register_dataset("image_folder")
def load_image_folder(cfg) -> Data:
    if cfg.root is None or not Path(cfg.root).expanduser().is_dir():
        raise UserError(f"dataset=image_folder needs dataset.root=<folder of images>; got {cfg.root!r}.")
    skipped = Skipped()
    loaded = [image for _, image in scan_images(Path(cfg.root).expanduser(), bool(cfg.get("skip_unreadable", False)), skipped,
                                                lambda path: _load_image(path, cfg.resolution, cfg.channels))]
    if not loaded:
        raise UserError(f"No readable images ({suffix_list()}) found under {cfg.root}"
                        + (f" ({skipped.describe()})." if skipped else "."))
    images = torch.from_numpy(np.stack(loaded))
    train, test = random_split(len(images), cfg.test_fraction, cfg.split_seed)
    return Data(name="image_folder", kind="image", train=TensorSplit(images[train], None),
                test=TensorSplit(images[test], None) if len(test) else None,
                num_classes=0, label_kind=None, shape=tuple(images.shape[1:]), skipped=skipped)
