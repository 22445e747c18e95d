"""`dataset=shape_domains`: a multi-domain translation benchmark whose modes are known by construction
(msgan's own; the default dataset of `model=stargan`, docs/methods.md#stargan in spirit).

An image is a shape (a scikit-learn digit, upsampled) with three properties. Two are attributes, as
CelebA's hair colour and sex are: the colour the shape is filled with (one of `colours` hues, mutually
exclusive attributes `fill0`, `fill1`, ... like StarGAN's hair colours) and whether the shape has a
black outline (`stroke`, binary like `Male`). The third is left open by every domain: the background,
grey lit from one of K = `modes` directions (light on one side, falling linearly to dark grey on the
other), drawn uniformly and independently of the attributes. So translating a shape into a target
domain (target fill and stroke) has exactly K correct outputs, the shape in the target's fill and
stroke on each of the K backgrounds (`translations`), all known: StarGAN without a latent can produce
one of them per (input, target domain), a generator with a latent up to K, and `modes_per_input`
counts them per target domain (`data/attributes.py`: one evaluation view per edit).

Why lighting and not K flat tints (what this benchmark first drew): StarGAN's generator normalises
every layer per image (instance norm), which removes an image's mean colour, so a flat background
tint barely survives the network. Measured with model=stargan at 4,000 steps: on light tints the
outputs' backgrounds were blends of the tints and no output was high quality (nearer one correct
image than half-way to the next: 0 %, 0 modes, for every edit), while on lit backgrounds, a spatial
pattern that instance norm keeps, 90 to 98 % of outputs were high quality, each keeping its input's
background (about 1 mode of 4, as StarGAN without a latent should). Two of the K backgrounds differ by
a mean absolute 0.25 to 0.38 (on the [-1, 1] scale) over the whole image, the shape included.

Every digit of the training split appears `copies` times, each copy with its own random fill, stroke
and background; the held-out digits once each. Labels (classes, for the evaluation classifier) are
domain x K + background, the domain being fill x 2 + stroke; `extras["attributes"]` maps each class to
its attribute vector. Generated in a second, held in memory.
"""
from __future__ import annotations

import torch

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.attributes import Attributes
from msgan_cli.data.base import Batch, Data, Split, random_split
from msgan_cli.data.outline_fill import MASK_THRESHOLD, hues, lit_backgrounds, outline_of, source_shapes
from msgan_cli.errors import UserError


class ShapeDomainSplit(Split):
    """Shapes (masks, their outline rings) and per sample a fill, a stroke flag and a background;
    images are drawn on demand."""

    def __init__(self, masks: torch.Tensor, rings: torch.Tensor, fills: torch.Tensor, strokes: torch.Tensor,
                 backgrounds: torch.Tensor, fill_colours: torch.Tensor, background_images: torch.Tensor):
        self.masks, self.rings, self.fills, self.strokes, self.backgrounds = masks, rings, fills, strokes, backgrounds
        self.fill_colours, self.background_images = fill_colours, background_images
        modes = len(background_images)
        self.labels = (fills * 2 + strokes) * modes + backgrounds

    def __len__(self) -> int:
        return len(self.masks)

    def render(self, index: torch.Tensor, fills: torch.Tensor, strokes: torch.Tensor,
               backgrounds: torch.Tensor) -> torch.Tensor:
        """uint8 images (n, 3, R, R): shapes `index` in `fills`, outlined where `strokes`, on `backgrounds`."""
        fill = self.fill_colours[fills][:, :, None, None]
        image = torch.where(self.masks[index][:, None], fill, self.background_images[backgrounds])
        ring = self.rings[index][:, None] & strokes.bool()[:, None, None, None]
        return torch.where(ring, torch.zeros_like(image), image).round().to(torch.uint8)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        images = self.render(index, self.fills[index], self.strokes[index], self.backgrounds[index])
        return Batch(images, self.labels[index]).as_float()

    def translations(self, index: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(n, K, 3, R, R) in [-1, 1]: shapes `index` with the attributes `targets` (n, A: the fills
        one-hot, then stroke) on every background."""
        # The metrics ask with indices and targets on the CPU; the shapes may live on the GPU.
        index, targets = index.to(self.masks.device), targets.to(self.masks.device)
        n, k = len(index), len(self.background_images)
        fills, strokes = targets[:, :-1].argmax(1), targets[:, -1].round().long()
        repeat = lambda t: t.repeat_interleave(k)  # noqa: E731
        backgrounds = torch.arange(k, device=index.device).repeat(n)
        images = self.render(repeat(index), repeat(fills), repeat(strokes), backgrounds).float() / 127.5 - 1.0
        return images.view(n, k, *images.shape[1:])

    def to(self, device: torch.device) -> "ShapeDomainSplit":
        return ShapeDomainSplit(*(t.to(device) for t in (self.masks, self.rings, self.fills, self.strokes,
                                                          self.backgrounds, self.fill_colours, self.background_images)))


def attribute_table(colours: int, modes: int) -> torch.Tensor:
    """Each class's attributes (classes, colours + 1): class = (fill x 2 + stroke) x K + background."""
    classes = torch.arange(colours * 2 * modes)
    domain = classes // modes
    fills = torch.nn.functional.one_hot(domain // 2, colours).float()
    return torch.cat([fills, (domain % 2).float()[:, None]], 1)


@register_dataset("shape_domains")
def load_shape_domains(cfg) -> Data:
    if not 2 <= cfg.modes <= 16:
        raise UserError(f"dataset.modes (K, the backgrounds a domain leaves open) must be 2..16; got {cfg.modes}.")
    if not 2 <= cfg.colours <= 8:
        raise UserError(f"dataset.colours (the fill colours, StarGAN's exclusive attributes) must be 2..8; got {cfg.colours}.")
    if cfg.source != "digits":
        raise UserError(f"dataset.source must be digits (the embedded shapes); got '{cfg.source}'.")
    if cfg.copies < 1:
        raise UserError(f"dataset.copies (training images per digit, each with its own attributes) must be at least 1; "
                        f"got {cfg.copies}.")
    if not 0 < cfg.test_fraction < 1:
        raise UserError(f"dataset.test_fraction must be between 0 and 1; got {cfg.test_fraction}.")
    images, _, _ = source_shapes(cfg)
    masks = images[:, 0].float() / 255 > MASK_THRESHOLD
    rings = outline_of(masks)
    colours, k = int(cfg.colours), int(cfg.modes)
    fill_colours = hues(colours, 0.9, 0.7)
    background_images = lit_backgrounds(k, int(cfg.resolution))
    train, test = random_split(len(images), cfg.test_fraction, cfg.split_seed)
    generator = torch.Generator().manual_seed(int(cfg.mode_seed))

    def split(rows: torch.Tensor) -> ShapeDomainSplit:
        n = len(rows)
        draws = [torch.randint(high, (n,), generator=generator) for high in (colours, 2, k)]
        return ShapeDomainSplit(masks[rows], rings[rows], *draws, fill_colours, background_images)

    attributes = Attributes((*(f"fill{c}" for c in range(colours)), "stroke"), attribute_table(colours, k),
                            exclusive=tuple(range(colours)))
    class_names = tuple(f"fill{c}/{'stroke' if s else 'plain'}/bg{m}" for c in range(colours) for s in (0, 1)
                        for m in range(k))
    return Data(name="shape_domains", kind="image", train=split(train.repeat(int(cfg.copies))), test=split(test),
                num_classes=len(class_names), label_kind="class", shape=(3, cfg.resolution, cfg.resolution),
                class_names=class_names, extras={"modes_per_input": k, "attributes": attributes})
