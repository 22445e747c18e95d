"""`dataset=unpaired_folder`: DRIT's and CycleGAN's unpaired format (Yosemite summer <-> winter,
cat2dog; docs/methods.md#data-formats): `trainA/ trainB/ testA/ testB/` folders of images, any number in each.

Preprocessing as DRIT's `dataset_unpair`: each image resized to `load_size` (256, bicubic), a random
`resolution` x `resolution` crop (216) and a random horizontal flip in training, the centre crop in
evaluation (`data/transforms.py`). Held in memory when the decoded training images fit in
`memory_limit_mb` (`in_memory: auto`), else streamed through DataLoader workers. Files that cannot be
opened are skipped with a warning naming them when a folder is scanned.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from PIL import Image

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Batch, Data
from msgan_cli.data.files import UNREADABLE_IMAGE, Skipped, dataset_root, scan_images, suffix_list
from msgan_cli.data.streaming import FileSplit, resolve_in_memory, resolve_workers
from msgan_cli.data.transforms import apply_crop, crop_for, pil_to_uint8
from msgan_cli.data.unpaired import UnpairedSplit
from msgan_cli.errors import UserError

log = logging.getLogger(__name__)


def decode(path: Path, channels: int, size: int) -> torch.Tensor:
    try:
        with Image.open(path) as image:
            return pil_to_uint8(image, channels, size)
    except UNREADABLE_IMAGE as error:
        raise UserError(f"{path} cannot be decoded ({error}): replace or remove it.") from None


class DomainImages(FileSplit):
    """One domain's image files; decoded once into memory (`cache`) or on every draw."""

    labels = None

    def __init__(self, paths: list[Path], channels: int, load_size: int, crop_size: int, flip: bool,
                 in_memory: bool, workers: int, cache: torch.Tensor | None = None, device: torch.device | None = None):
        super().__init__(in_memory, workers, device)
        self.paths, self.channels, self.load_size, self.crop_size, self.flip = paths, channels, load_size, crop_size, flip
        if in_memory and cache is None:
            cache = torch.stack([decode(p, channels, load_size) for p in paths])
        self.cache = cache

    def __len__(self) -> int:
        return len(self.paths)

    def sample(self, index: int, seed: int | None) -> Batch:
        image = self.cache[index] if self.cache is not None else decode(self.paths[index], self.channels, self.load_size)
        return Batch(apply_crop(image, crop_for(seed, self.load_size, self.crop_size, self.flip))[None])

    def to(self, device: torch.device) -> "DomainImages":
        cache = None if self.cache is None else self.cache.to(device)
        return DomainImages(self.paths, self.channels, self.load_size, self.crop_size, self.flip, self.in_memory,
                            self.workers, cache, device)


def scan(folder: Path, skip_unreadable: bool, skipped: Skipped) -> list[Path]:
    """The folder's images, sorted (`files.scan_images`: what cannot be read stops the run or, asked to,
    is skipped)."""
    if not folder.is_dir():
        raise UserError(f"{folder} is missing: dataset=unpaired_folder expects trainA/, trainB/, testA/ and testB/ "
                        f"folders of images under dataset.root (DRIT's and CycleGAN's format).")
    paths = [path for path, _ in scan_images(folder, skip_unreadable, skipped)]
    if not paths:
        raise UserError(f"No readable images ({suffix_list()}) in {folder}: each domain needs at least one.")
    return paths


@register_dataset("unpaired_folder")
def load_unpaired_folder(cfg) -> Data:
    root = dataset_root(cfg, "unpaired_folder", "folder with trainA/ trainB/ testA/ testB/")
    load_size = int(cfg.load_size or cfg.resolution)
    if load_size < cfg.resolution:
        raise UserError(f"dataset.load_size={load_size} is smaller than dataset.resolution={cfg.resolution}.")
    channels = int(cfg.channels)
    skipped = Skipped()
    skip_unreadable = bool(cfg.get("skip_unreadable", False))   # absent in the configs of runs made before it existed
    paths = {name: scan(root / name, skip_unreadable, skipped) for name in ("trainA", "trainB", "testA", "testB")}
    decoded_bytes = (len(paths["trainA"]) + len(paths["trainB"])) * channels * load_size ** 2
    in_memory = resolve_in_memory(cfg.in_memory, decoded_bytes, cfg.memory_limit_mb)
    workers = resolve_workers(cfg.workers)
    log.info("unpaired_folder: %d + %d training images (%s), %d + %d test images from %s",
             len(paths["trainA"]), len(paths["trainB"]), "in memory" if in_memory else f"streamed by {workers} workers",
             len(paths["testA"]), len(paths["testB"]), root)
    domain = lambda name, flip: DomainImages(paths[name], channels, load_size, int(cfg.resolution), flip,  # noqa: E731
                                             in_memory, workers)
    size = (channels, cfg.resolution, cfg.resolution)
    return Data(name="unpaired_folder", kind="image",
                train=UnpairedSplit(domain("trainA", bool(cfg.flip)), domain("trainB", bool(cfg.flip))),
                test=UnpairedSplit(domain("testA", False), domain("testB", False)), num_classes=0, label_kind=None,
                shape=size, inputs="image", input_shape=size, paired=False, skipped=skipped)
