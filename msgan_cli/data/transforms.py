"""The reference codes' preprocessing of image pairs (pix2pix / BicycleGAN `resize_and_crop`):
resize to `load_size`, a random `crop_size` crop and a random horizontal flip, the same for the input
and its target. Training draws the crop and flip from one seed per sample (`augmentation_seeds`);
evaluation takes the centre crop, unflipped.

Shared by the in-memory path (images decoded once at `load_size`, cropped per batch) and the
streaming path (decoded, resized and cropped in a worker), so both give the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class Crop:
    top: int
    left: int
    size: int
    flip: bool


def crop_for(seed: int | None, load_size: int, crop_size: int, flip: bool) -> Crop:
    """The crop of one sample: random from `seed` (training), or centred and unflipped (seed None)."""
    margin = load_size - crop_size
    if seed is None:
        return Crop(margin // 2, margin // 2, crop_size, False)
    generator = torch.Generator().manual_seed(int(seed))
    top, left = torch.randint(0, margin + 1, (2,), generator=generator).tolist()
    flipped = flip and bool(torch.rand((), generator=generator) < 0.5)
    return Crop(top, left, crop_size, flipped)


def apply_crop(image: torch.Tensor, crop: Crop) -> torch.Tensor:
    """`image` (C, H, W) cropped (and flipped left-right)."""
    out = image[:, crop.top:crop.top + crop.size, crop.left:crop.left + crop.size]
    return out.flip(-1) if crop.flip else out


def pil_to_uint8(image: Image.Image, channels: int, size: int) -> torch.Tensor:
    """A PIL image as a uint8 tensor (channels, size, size): converted to RGB or grayscale, resized
    (bicubic, as the reference's default)."""
    image = image.convert("RGB" if channels == 3 else "L")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array[None].copy() if channels == 1 else array.transpose(2, 0, 1).copy())
