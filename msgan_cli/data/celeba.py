"""`dataset=celeba`: CelebA's aligned faces with their attributes, as StarGAN reads them (yunjey/stargan
`data_loader.py` `CelebA`; docs/methods.md#data-formats and #stargan).

`dataset.root` holds `img_align_celeba/*.jpg` and `list_attr_celeba.txt`: the image count on the first
line, the 40 attribute names on the second, then per image its file name and 40 values of 1 or -1.
`dataset.attributes` selects the attributes a model translates between (StarGAN's five by default);
those among `dataset.exclusive` (the hair colours) are one exclusive group (`data/attributes.py`).

As the reference: the rows are shuffled with Python's `random` seeded 1234 and the first
`dataset.test_images` held out for testing (1,999: the reference's loop sends row i to the test set
while `(i+1) < 2000`, so its 2,000th row is its first training image, and so is ours); training images
are flipped left-right at random (from the sample's augmentation seed); every image is centre-cropped
to `dataset.crop` (178) and resized to `dataset.resolution` (bilinear, antialiased, as torchvision's
Resize on PIL images).

Classes are the combinations of the selected attributes that occur in the file (what the evaluation
classifier learns, `Attributes.by_class`). Streamed through DataLoader workers unless the decoded
images fit in `memory_limit_mb` (`in_memory: auto`).
"""
from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.attributes import Attributes
from msgan_cli.data.base import Batch, Data
from msgan_cli.data.files import UNREADABLE_IMAGE, dataset_root, path_or
from msgan_cli.data.streaming import FileSplit, resolve_in_memory, resolve_workers
from msgan_cli.data.transforms import apply_crop, crop_for
from msgan_cli.errors import UserError

log = logging.getLogger(__name__)


def read_attribute_file(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(attribute names, file names, values (N, A) of +1 / -1) of a `list_attr_celeba.txt`."""
    if not path.is_file():
        raise UserError(f"{path} is missing: dataset=celeba reads CelebA's list_attr_celeba.txt (set dataset.attr_file, "
                        f"or put it in dataset.root).")
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise UserError(f"{path} has {len(lines)} lines; CelebA's starts with the image count and the attribute names.")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise UserError(f"{path} line 1 must be the number of images; got {lines[0]!r}.") from None
    names = lines[1].split()
    files, values = [], []
    for number, line in enumerate(lines[2:], 3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1 or any(v not in ("1", "-1") for v in parts[1:]):
            raise UserError(f"{path} line {number} is malformed: expected a file name and {len(names)} values of 1 or "
                            f"-1; got {line[:120]!r}.")
        files.append(parts[0])
        values.append([int(v) for v in parts[1:]])
    if len(files) != count:
        raise UserError(f"{path} says {count} images on its first line but lists {len(files)}: the file is truncated or "
                        f"does not belong to these images.")
    return names, files, np.asarray(values, dtype=np.int8).reshape(len(files), len(names))


def decode(path: Path, crop: int, size: int) -> torch.Tensor:
    """uint8 (3, size, size): centre-cropped to crop x crop, resized. An image smaller than the crop is
    padded with black, as torchvision's CenterCrop pads it in the reference."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            left, top = (image.width - crop) // 2, (image.height - crop) // 2
            image = image.crop((left, top, left + crop, top + crop)).resize((size, size), Image.BILINEAR)
    except UNREADABLE_IMAGE as error:
        raise UserError(f"{path} cannot be decoded ({error}): replace it or remove its row from the attribute file.") from None
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy())


class FaceImages(FileSplit):
    """One split's image paths and classes; decoded into memory (`cache`) or per draw, flipped per seed."""

    def __init__(self, paths: list[Path], labels: torch.Tensor, crop: int, size: int, flip: bool, in_memory: bool,
                 workers: int, cache: torch.Tensor | None = None, device: torch.device | None = None):
        super().__init__(in_memory, workers, device)
        self.paths, self.labels, self.crop, self.size, self.flip = paths, labels, crop, size, flip
        if in_memory and cache is None:
            cache = torch.stack([decode(p, crop, size) for p in paths])
        self.cache = cache

    def __len__(self) -> int:
        return len(self.paths)

    def sample(self, index: int, seed: int | None) -> Batch:
        image = self.cache[index] if self.cache is not None else decode(self.paths[index], self.crop, self.size)
        image = apply_crop(image, crop_for(seed, self.size, self.size, self.flip))   # a flip only
        return Batch(image[None], self.labels[index:index + 1])

    def to(self, device: torch.device) -> "FaceImages":
        cache = None if self.cache is None else self.cache.to(device)
        return FaceImages(self.paths, self.labels.to(device), self.crop, self.size, self.flip, self.in_memory,
                          self.workers, cache, device)


@register_dataset("celeba")
def load_celeba(cfg) -> Data:
    root = dataset_root(cfg, "celeba", "a folder with img_align_celeba/ and list_attr_celeba.txt")
    images = path_or(cfg.images, root / "img_align_celeba")
    names, files, values = read_attribute_file(path_or(cfg.attr_file, root / "list_attr_celeba.txt"))
    selected = list(cfg.attributes)
    unknown = [a for a in selected if a not in names]
    if unknown or not selected:
        raise UserError(f"dataset.attributes {unknown or selected} not in the attribute file's header; it has: "
                        f"{', '.join(names)}.")
    if not images.is_dir():
        raise UserError(f"{images} is missing: dataset=celeba reads the aligned images from img_align_celeba/ "
                        f"(or dataset.images).")
    present = {p.name for p in images.iterdir()}
    missing = [f for f in files if f not in present]
    if missing:
        raise UserError(f"{len(missing)} of the {len(files)} rows of the attribute file name images that are not in "
                        f"{images} (e.g. {missing[0]}): the attribute file does not match the images.")
    if not 0 < cfg.test_images < len(files):
        raise UserError(f"dataset.test_images must be between 1 and {len(files) - 1} (the images less one); "
                        f"got {cfg.test_images}.")
    if cfg.crop < cfg.resolution:
        raise UserError(f"dataset.crop={cfg.crop} is smaller than dataset.resolution={cfg.resolution}.")
    chosen = (values[:, [names.index(a) for a in selected]] == 1).astype(np.float32)
    order = list(range(len(files)))
    random.Random(int(cfg.shuffle_seed)).shuffle(order)   # the reference: random.seed(1234); random.shuffle(lines)
    combinations, labels = np.unique(chosen, axis=0, return_inverse=True)
    labels = torch.from_numpy(labels.reshape(-1).astype(np.int64))
    exclusive = tuple(i for i, a in enumerate(selected) if a in set(cfg.exclusive))
    attributes = Attributes(tuple(selected), torch.from_numpy(combinations), exclusive)
    size, crop = int(cfg.resolution), int(cfg.crop)
    held_out = int(cfg.test_images)
    in_memory = resolve_in_memory(cfg.in_memory, (len(files) - held_out) * 3 * size ** 2, cfg.memory_limit_mb)
    workers = resolve_workers(cfg.workers)

    def split(rows: list[int], train: bool) -> FaceImages:
        return FaceImages([images / files[i] for i in rows], labels[rows], crop, size, train and bool(cfg.flip),
                          in_memory, workers)

    train, test = split(order[held_out:], True), split(order[:held_out], False)
    class_names = tuple("+".join(a for a, v in zip(selected, row) if v) or "none" for row in combinations)
    log.info("celeba: %d training and %d test images, attributes %s (%d combinations), %s", len(train), len(test),
             ", ".join(selected), len(class_names), "in memory" if in_memory else f"streamed by {workers} workers")
    return Data(name="celeba", kind="image", train=train, test=test, num_classes=len(class_names), label_kind="class",
                shape=(3, size, size), class_names=class_names, extras={"attributes": attributes})
