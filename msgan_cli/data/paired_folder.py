"""`dataset=paired_folder`: the pix2pix / BicycleGAN paired format (facades, maps, edges2shoes;
docs/methods.md#data-formats): `train/`, `val/`, `test/` folders of images that hold the input A and the target B side
by side (width twice the height). `dataset.direction: AtoB | BtoA` says which half is the input.

Preprocessing as the reference's `resize_and_crop`: each half resized to `load_size` (bicubic), a
random `resolution` x `resolution` crop and a random horizontal flip, the same for both halves
(`data/transforms.py`); evaluation takes the centre crop. `in_memory: auto` holds the decoded split in
memory when it fits in `memory_limit_mb`, else streams it through DataLoader workers.

Files that cannot be opened are skipped with a warning naming them when the folder is scanned; a
file that opens but fails to decode later stops the run with a sentence naming it.
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
from msgan_cli.errors import UserError

log = logging.getLogger(__name__)

DIRECTIONS = ("AtoB", "BtoA")


def decode_pair(path: Path, direction: str, channels: tuple[int, int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) uint8 tensors at `size` x `size` from one side-by-side file."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except UNREADABLE_IMAGE as error:
        raise UserError(f"{path} cannot be decoded ({error}): replace or remove it.") from None
    half = image.width // 2
    a, b = image.crop((0, 0, half, image.height)), image.crop((half, 0, 2 * half, image.height))
    source, target = (a, b) if direction == "AtoB" else (b, a)
    return pil_to_uint8(source, channels[0], size), pil_to_uint8(target, channels[1], size)


class PairedImages(FileSplit):
    """Side-by-side image files; decoded once into memory (`cache`) or on every draw."""

    labels = None

    def __init__(self, paths: list[Path], direction: str, channels: tuple[int, int], load_size: int,
                 crop_size: int, flip: bool, in_memory: bool, workers: int,
                 cache: tuple[torch.Tensor, torch.Tensor] | None = None, device: torch.device | None = None):
        super().__init__(in_memory, workers, device)
        self.paths, self.direction, self.channels = paths, direction, channels
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        if in_memory and cache is None:   # decode everything once
            pairs = [decode_pair(p, direction, channels, load_size) for p in paths]
            cache = (torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs]))
        self.cache = cache

    def __len__(self) -> int:
        return len(self.paths)

    def sample(self, index: int, seed: int | None) -> Batch:
        if self.cache is not None:
            source, target = self.cache[0][index], self.cache[1][index]
        else:
            source, target = decode_pair(self.paths[index], self.direction, self.channels, self.load_size)
        crop = crop_for(seed, self.load_size, self.crop_size, self.flip)
        return Batch(apply_crop(target, crop)[None], inputs=apply_crop(source, crop)[None])

    def to(self, device: torch.device) -> "PairedImages":
        cache = None if self.cache is None else tuple(t.to(device) for t in self.cache)
        return PairedImages(self.paths, self.direction, self.channels, self.load_size, self.crop_size, self.flip,
                            self.in_memory, self.workers, cache, device)


def scan(folder: Path, skip_unreadable: bool, skipped: Skipped) -> list[Path]:
    """The folder's side-by-side images, sorted (`files.scan_images`: what cannot be read stops the run
    or, asked to, is skipped); an image that is not twice as wide as high stops the run (it is not this
    format)."""
    def size(path: Path) -> tuple[int, int]:
        with Image.open(path) as image:
            return image.size

    paths = []
    for path, (width, height) in scan_images(folder, skip_unreadable, skipped, size):
        if width != 2 * height:
            raise UserError(f"{path} is {width}x{height}: dataset=paired_folder expects the input and the target side "
                            f"by side, twice as wide as high (pix2pix's format). Is dataset.root the right folder?")
        paths.append(path)
    if not paths:
        raise UserError(f"No readable images ({suffix_list()}) in {folder}"
                        + (f" ({skipped.describe()})." if skipped else "."))
    return paths


@register_dataset("paired_folder")
def load_paired_folder(cfg) -> Data:
    root = dataset_root(cfg, "paired_folder", "folder with train/ and test/ (or val/)")
    if cfg.direction not in DIRECTIONS:
        raise UserError(f"dataset.direction must be AtoB or BtoA; got '{cfg.direction}'.")
    if not (root / "train").is_dir():
        raise UserError(f"{root} has no train/ folder: dataset=paired_folder expects train/ and test/ (or val/) "
                        f"folders of side-by-side images, as pix2pix's facades and maps ship.")
    load_size = int(cfg.load_size or cfg.resolution)   # null: no crop (MSGAN: loadSize = fineSize)
    if load_size < cfg.resolution:
        raise UserError(f"dataset.load_size={load_size} is smaller than dataset.resolution={cfg.resolution}.")
    channels = (int(cfg.input_channels), int(cfg.output_channels))
    skipped = Skipped()
    train_paths = scan(root / "train", bool(cfg.get("skip_unreadable", False)), skipped)
    test_folder = next((root / name for name in (cfg.test_split, "test", "val") if (root / name).is_dir()), None)
    test_paths = scan(test_folder, bool(cfg.get("skip_unreadable", False)), skipped) if test_folder is not None else []
    decoded_bytes = len(train_paths) * sum(channels) * load_size ** 2
    in_memory = resolve_in_memory(cfg.in_memory, decoded_bytes, cfg.memory_limit_mb)
    workers = resolve_workers(cfg.workers)
    log.info("paired_folder: %d training pairs (%s), %d test pairs from %s", len(train_paths),
             "in memory" if in_memory else f"streamed by {workers} workers", len(test_paths), test_folder)
    split = lambda paths, flip: PairedImages(paths, cfg.direction, channels, load_size, int(cfg.resolution),  # noqa: E731
                                              flip, in_memory, workers)
    return Data(name="paired_folder", kind="image", train=split(train_paths, bool(cfg.flip)),
                test=split(test_paths, False) if test_paths else None, num_classes=0, label_kind=None,
                shape=(channels[1], cfg.resolution, cfg.resolution), inputs="image",
                input_shape=(channels[0], cfg.resolution, cfg.resolution), skipped=skipped)
