"""`dataset=outline_fill`: a translation benchmark whose modes are known by construction (msgan's own;
the default dataset of `model=pix2pix`).

Input: the outline of a shape (a scikit-learn digit, upsampled, or a Fashion-MNIST item), black on
white. Target: the same outline with the shape and its background drawn in one of K fills (`family:
colour`, K hues; `stripes`, K stripe orientations), the fill drawn uniformly at random for each
training pair. So the
true distribution of outputs for an input has exactly K modes, and every one of them is known: a
generator that ignores its latent (Pix2Pix's known failure) gives one mode per input, a diverse one K,
and `modes_per_input` counts them exactly by comparing outputs with the K correct images
(`mode_targets`). Generated in a second or two, held in memory.

Labels are classes for the evaluation classifier (FID / KID features): shape class x K + fill.
"""
from __future__ import annotations

import colorsys
import math

import torch
from torch.nn.functional import max_pool2d

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Batch, Data, Split, random_split, resize_images
from msgan_cli.data.idx import read_idx_split
from msgan_cli.errors import UserError

FAMILIES = ("colour", "stripes")
SOURCES = ("digits", "fashion_mnist")
MASK_THRESHOLD = 0.4   # intensity (0..1) above which a pixel belongs to the shape


def hues(k: int, saturation: float, value: float, dtype=torch.float32) -> torch.Tensor:
    """K colours (float 0..255, (K, 3)) with hues evenly spaced round the wheel."""
    return torch.tensor([[255 * c for c in colorsys.hsv_to_rgb(i / k, saturation, value)]
                         for i in range(k)], dtype=dtype)


def palette(k: int) -> torch.Tensor:
    """K well separated colours (uint8, (K, 3)): saturated hues (rounded in float64, as Python's round)."""
    return hues(k, 0.85, 0.95, dtype=torch.float64).round().to(torch.uint8)


def stripes(k: int, size: int, period: int = 4) -> torch.Tensor:
    """K stripe patterns (bool, (K, size, size)): stripes of one period at K orientations."""
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    angles = torch.arange(k, dtype=torch.float32) * (math.pi / k)
    phase = x[None] * angles.cos()[:, None, None] + y[None] * angles.sin()[:, None, None]
    return torch.remainder(phase, period) < period / 2


def lit_backgrounds(k: int, size: int, light: float = 255.0, dark: float = 60.0) -> torch.Tensor:
    """K grey backgrounds (float 0..255, (K, 3, size, size)), each lit from one of K directions: light on
    the side the direction points to, falling linearly to `dark` on the opposite side."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    angles = torch.arange(k, dtype=torch.float32) * (2 * math.pi / k)
    along = x[None] * angles.cos()[:, None, None] + y[None] * angles.sin()[:, None, None]      # (K, H, W)
    along = (along - along.amin((1, 2), keepdim=True)) / (along.amax((1, 2), keepdim=True) - along.amin((1, 2), keepdim=True))
    return (dark + (light - dark) * along)[:, None].expand(k, 3, size, size).clone()


def render_fill(masks: torch.Tensor, outlines: torch.Tensor, fills: torch.Tensor, family: str, modes: int) -> torch.Tensor:
    """uint8 targets (n, 3, H, W): the outline black, the shape and the background in fill `fills`.

    The fill colours the whole image (the shape in the fill's colour, the background in a light tint
    of it), as modes of real translation tasks differ everywhere (the colours of a facade), not on
    a small part of the image only."""
    n, size = len(masks), masks.shape[-1]
    colours = palette(modes).to(masks.device).float()
    if family == "colour":
        inside, background = colours[fills], 0.7 * 255 + 0.3 * colours[fills]
        inside, background = (c[:, :, None, None].expand(n, 3, size, size) for c in (inside, background))
    else:   # stripes at the fill's orientation: the first colour on dark grey, white on its light tint
        pattern = stripes(modes, size).to(masks.device)[fills][:, None]
        inside = torch.where(pattern, colours[0][None, :, None, None], torch.full((1, 3, 1, 1), 64.0, device=masks.device))
        background = torch.where(pattern, torch.full((1, 3, 1, 1), 255.0, device=masks.device),
                                 0.7 * 255 + 0.3 * colours[0][None, :, None, None])
    target = torch.where(masks[:, None], inside, background).round().to(torch.uint8)
    return torch.where(outlines[:, None] < 128, torch.zeros_like(target), target)


class OutlineFillSplit(Split):
    """Shapes (masks), their outlines, and one fill index per sample; targets are drawn on demand."""

    def __init__(self, masks: torch.Tensor, outlines: torch.Tensor, fills: torch.Tensor, shape_labels: torch.Tensor,
                 family: str, modes: int):
        self.masks, self.outlines, self.fills, self.shape_labels = masks, outlines, fills, shape_labels
        self.family, self.modes = family, modes
        self.labels = shape_labels * modes + fills

    def __len__(self) -> int:
        return len(self.masks)

    def render(self, masks: torch.Tensor, outlines: torch.Tensor, fills: torch.Tensor) -> torch.Tensor:
        return render_fill(masks, outlines, fills, self.family, self.modes)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        targets = self.render(self.masks[index], self.outlines[index, 0], self.fills[index])
        return Batch(targets, self.labels[index], inputs=self.outlines[index]).as_float()

    def mode_targets(self, index: torch.Tensor) -> torch.Tensor:
        n, k = len(index), self.modes
        masks = self.masks[index].repeat_interleave(k, 0)
        outlines = self.outlines[index, 0].repeat_interleave(k, 0)
        fills = torch.arange(k, device=masks.device).repeat(n)
        targets = self.render(masks, outlines, fills).float() / 127.5 - 1.0
        return targets.view(n, k, *targets.shape[1:])

    def to(self, device: torch.device) -> "OutlineFillSplit":
        return OutlineFillSplit(self.masks.to(device), self.outlines.to(device), self.fills.to(device),
                                self.shape_labels.to(device), self.family, self.modes)


def source_shapes(cfg) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """uint8 grayscale images (N, 1, R, R) of the source shapes, their classes, and the class names."""
    if cfg.source == "digits":
        from sklearn.datasets import load_digits
        bunch = load_digits()
        images = (torch.from_numpy(bunch.images).float() * (255.0 / 16.0)).round().to(torch.uint8)[:, None]
        return resize_images(images, cfg.resolution), torch.from_numpy(bunch.target).long(), tuple(map(str, range(10)))
    images, labels = read_idx_split(cfg.root, "train")
    return resize_images(images, cfg.resolution), labels, tuple(f"fashion{i}" for i in range(10))


def outline_of(masks: torch.Tensor) -> torch.Tensor:
    """The ring of pixels just outside each shape (bool, like `masks`, (N, H, W))."""
    grown = max_pool2d(masks[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
    return grown & ~masks


@register_dataset("outline_fill")
def load_outline_fill(cfg) -> Data:
    if cfg.family not in FAMILIES:
        raise UserError(f"dataset.family must be one of {', '.join(FAMILIES)}; got '{cfg.family}'.")
    if cfg.source not in SOURCES:
        raise UserError(f"dataset.source must be one of {', '.join(SOURCES)}; got '{cfg.source}'.")
    if not 2 <= cfg.modes <= 16:
        raise UserError(f"dataset.modes (K, the correct outputs per input) must be 2..16; got {cfg.modes}.")
    if cfg.pairs_per_input < 1:
        raise UserError(f"dataset.pairs_per_input must be at least 1; got {cfg.pairs_per_input}.")
    images, shape_labels, shape_names = source_shapes(cfg)
    masks = images[:, 0].float() / 255 > MASK_THRESHOLD
    outlines = torch.where(outline_of(masks), 0, 255).to(torch.uint8)[:, None]   # black ring on white
    train, test = random_split(len(images), cfg.test_fraction, cfg.split_seed)
    train = train.repeat(cfg.pairs_per_input)   # each training input in several pairs, each with its own fill
    generator = torch.Generator().manual_seed(cfg.mode_seed)
    splits = [OutlineFillSplit(masks[i], outlines[i], torch.randint(cfg.modes, (len(i),), generator=generator),
                               shape_labels[i], cfg.family, cfg.modes) for i in (train, test)]
    fill_names = [f"hue{k}" if cfg.family == "colour" else f"stripes{k}" for k in range(cfg.modes)]
    return Data(name="outline_fill", kind="image", train=splits[0], test=splits[1], num_classes=10 * cfg.modes,
                label_kind="class", shape=(3, cfg.resolution, cfg.resolution),
                class_names=tuple(f"{s}/{f}" for s in shape_names for f in fill_names),
                extras={"modes_per_input": cfg.modes}, inputs="image", input_shape=(1, cfg.resolution, cfg.resolution))
