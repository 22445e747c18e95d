"""`dataset=outline_fill_unpaired`: an unpaired two-domain benchmark whose modes are known by
construction in both directions (msgan's own; the default dataset of `model=drit`).

Both domains draw the same kind of shapes (scikit-learn's digits, upsampled), each image with its own
style: domain A shows the shape's outline in one of `modes_back` colours on white, domain B the shape
filled with one of `modes` colours (outline_fill's targets), both outlined `outline_width` pixels
thick. Content (the shape) is shared, the
attribute (the colour) is not, which is what DRIT disentangles. So an A image has exactly `modes`
correct translations into B (its shape in each fill) and a B image `modes_back` correct translations
into A (its outline in each colour), all known: `modes_per_input` counts them per direction.

Unlike outline_fill's (Pix2Pix has skip connections from input to output), two choices here are
made for DRIT's encoder-decoder, measured on its self-reconstruction alone (8 images, Adam): with
pure white backgrounds its tanh output saturates at +1 and the generator collapses to one constant
image (L1 stuck at 0.12, outputs identical for every input, also at lr 1e-3), so the images use the
middle `dynamic_range` (0.8) of 0..255; and with 1-pixel outlines it still reconstructs only the
background, so outlines are 3 pixels wide (L1 0.14 after 600 steps, falling, outputs following
their inputs).

The domains are unpaired: A's images and B's come from independent shuffles of the training shapes
with independent styles (`data/unpaired.py`). Generated in a second, held in memory. Labels (for the
evaluation classifier) are shape class x K + style, per domain.
"""
from __future__ import annotations

import torch
from torch.nn.functional import max_pool2d

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Batch, Data, Split, random_split
from msgan_cli.data.outline_fill import MASK_THRESHOLD, outline_of, palette, render_fill, source_shapes
from msgan_cli.data.unpaired import UnpairedSplit
from msgan_cli.errors import UserError

LOOKS = ("outline", "fill")


def render(look: str, masks: torch.Tensor, outlines: torch.Tensor, styles: torch.Tensor, modes: int,
           dynamic_range: float) -> torch.Tensor:
    """uint8 images (n, 3, H, W) of shapes in one domain's look, style `styles` of `modes`, their
    values squeezed into the middle `dynamic_range` of 0..255 about grey."""
    if look == "fill":
        images = render_fill(masks, outlines, styles, "colour", modes)
    else:
        colours = palette(modes).to(masks.device)[styles][:, :, None, None]   # the outline's colour
        white = torch.full_like(colours, 255).expand(-1, -1, *masks.shape[-2:])
        images = torch.where(outlines[:, None] < 128, colours.expand_as(white), white)
    return (127.5 + (images.float() - 127.5) * dynamic_range).round().to(torch.uint8)


def thick_outlines(masks: torch.Tensor, width: int) -> torch.Tensor:
    """uint8 outlines (0 on the ring, 255 elsewhere): the ring just outside each shape, grown to `width`
    pixels (odd) across."""
    ring = outline_of(masks)[:, None].float()
    grown = max_pool2d(ring, width, stride=1, padding=width // 2)[:, 0] > 0
    return torch.where(grown, 0, 255).to(torch.uint8)


class ShapeDomain(Split):
    """The shapes of one domain in its look and styles; `translation_targets` renders the same shapes
    in every style of the other domain (the correct translations, known by construction)."""

    def __init__(self, masks: torch.Tensor, outlines: torch.Tensor, styles: torch.Tensor, shape_labels: torch.Tensor,
                 look: str, modes: int, other_modes: int, dynamic_range: float):
        self.masks, self.outlines, self.styles, self.shape_labels = masks, outlines, styles, shape_labels
        self.look, self.modes, self.other_modes, self.dynamic_range = look, modes, other_modes, dynamic_range
        self.labels = shape_labels * modes + styles

    def __len__(self) -> int:
        return len(self.masks)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        images = render(self.look, self.masks[index], self.outlines[index], self.styles[index], self.modes,
                        self.dynamic_range)
        return Batch(images, self.labels[index]).as_float()

    def translation_targets(self, index: torch.Tensor) -> torch.Tensor:
        """(n, K, 3, H, W) in [-1, 1]: the shapes at `index` in each of the other domain's K styles."""
        n, k = len(index), self.other_modes
        other_look = LOOKS[1 - LOOKS.index(self.look)]
        styles = torch.arange(k, device=self.masks.device).repeat(n)
        targets = render(other_look, self.masks[index].repeat_interleave(k, 0),
                         self.outlines[index].repeat_interleave(k, 0), styles, k, self.dynamic_range).float() / 127.5 - 1.0
        return targets.view(n, k, *targets.shape[1:])

    def to(self, device: torch.device) -> "ShapeDomain":
        return ShapeDomain(self.masks.to(device), self.outlines.to(device), self.styles.to(device),
                           self.shape_labels.to(device), self.look, self.modes, self.other_modes, self.dynamic_range)


@register_dataset("outline_fill_unpaired")
def load_outline_fill_unpaired(cfg) -> Data:
    for key in ("modes", "modes_back"):
        if not 2 <= cfg[key] <= 16:
            raise UserError(f"dataset.{key} (the correct outputs per input, "
                            f"{'A->B' if key == 'modes' else 'B->A'}) must be 2..16; got {cfg[key]}.")
    if cfg.source != "digits":
        raise UserError(f"dataset.source must be digits (the embedded shapes); got '{cfg.source}'.")
    if not (isinstance(cfg.outline_width, int) and cfg.outline_width >= 1 and cfg.outline_width % 2):
        raise UserError(f"dataset.outline_width must be an odd number of pixels (1, 3, 5, ...); got {cfg.outline_width!r}.")
    if not 0.1 <= cfg.dynamic_range <= 1.0:
        raise UserError(f"dataset.dynamic_range (the share of 0..255 the images use) must be in 0.1..1; got {cfg.dynamic_range}.")
    images, shape_labels, shape_names = source_shapes(cfg)
    masks = images[:, 0].float() / 255 > MASK_THRESHOLD
    outlines = thick_outlines(masks, cfg.outline_width)
    dynamic_range = float(cfg.dynamic_range)
    generator = torch.Generator().manual_seed(cfg.mode_seed)

    def domains(rows: torch.Tensor) -> UnpairedSplit:
        """A and B over the same shapes, each in its own random order with its own random styles."""
        a_rows, b_rows = (rows[torch.randperm(len(rows), generator=generator)] for _ in range(2))
        a = ShapeDomain(masks[a_rows], outlines[a_rows], torch.randint(cfg.modes_back, (len(rows),), generator=generator),
                        shape_labels[a_rows], "outline", cfg.modes_back, cfg.modes, dynamic_range)
        b = ShapeDomain(masks[b_rows], outlines[b_rows], torch.randint(cfg.modes, (len(rows),), generator=generator),
                        shape_labels[b_rows], "fill", cfg.modes, cfg.modes_back, dynamic_range)
        return UnpairedSplit(a, b)

    train, test = random_split(len(images), cfg.test_fraction, cfg.split_seed)
    size = (3, cfg.resolution, cfg.resolution)
    return Data(name="outline_fill_unpaired", kind="image", train=domains(train), test=domains(test),
                num_classes=10 * cfg.modes, label_kind="class", shape=size,
                class_names=tuple(f"{s}/hue{k}" for s in shape_names for k in range(cfg.modes)),
                inputs="image", input_shape=size, paired=False,
                input_class_names=tuple(f"{s}/hue{k}" for s in shape_names for k in range(cfg.modes_back)))
