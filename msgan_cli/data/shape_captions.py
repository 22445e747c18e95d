"""`dataset=shape_captions`: a text-to-image benchmark whose modes are known by construction (msgan's
own; the default dataset of `model=stackganpp`, docs/methods.md#stackganpp in spirit).

A caption names two attributes of an image: its shape (one of the 10 digits, drawn from one fixed
scikit-learn digit each, upsampled) and the colour the shape is filled with (`colours` hues). It leaves
a third open, the background (grey lit from one of `modes` directions, `outline_fill.lit_backgrounds`):
so exactly K = `modes` images match each caption, all known, and `modes_per_input` counts how many of
them a generator finds for a caption. (The first version drew K light tints, which differ by a mean
absolute 0.17 over the image: StackGAN++'s outputs at the CPU budget carry a pixel speckle larger than
that, so none was ever high quality, nearer one correct image than half-way to the next, and modes
found were 0 for every method. Lit backgrounds differ by 0.35, as `dataset=shape_domains`'s.)

A caption is given, as CUB's are, as sentence embeddings: the caption's code is a fixed random
projection of its attributes (a Gaussian vector per shape plus one per colour, `embedding_dim` wide,
1,024 as char-CNN-RNN's), and each of its `sentences` embeddings is that code plus its own small noise
(`sentence_noise`), as a bird's 10 captions embed near each other. Training draws one of a caption's
training sentences per sample and step (from the sample's augmentation seed, so a resumed run draws
the same), as StackGAN++ draws one of 10 per image; the last `test_sentences` of each caption are
held out and condition the evaluation.

Training rows are every (caption, background) pair, each image once per epoch, so the K images of a
caption are equally likely. Evaluation rows are the same pairs background-major: the first
`shapes x colours` evaluation inputs are each caption once (MSGAN's 50 test inputs with the default
10 x 5). Each row also carries a mismatched real image (the "wrong" image of StackGAN++'s
discriminator loss: a random image of another caption, as its dataset draws one of another class).
Labels (for the evaluation classifier) are caption x K + background. Generated in a second, held in memory.
"""
from __future__ import annotations

import torch

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Batch, Data, Split, seeded_choice
from msgan_cli.data.outline_fill import MASK_THRESHOLD, hues, lit_backgrounds, source_shapes
from msgan_cli.errors import UserError

SHAPES = 10   # the digit classes


def prototype_masks(cfg) -> torch.Tensor:
    """One mask per digit class (bool, (10, R, R)): the class's digit nearest to the class mean."""
    images, labels, _ = source_shapes(cfg)
    images = images[:, 0].float()
    masks = []
    for digit in range(SHAPES):
        members = images[labels == digit]
        nearest = (members - members.mean(0)).flatten(1).abs().sum(1).argmin()
        masks.append(members[nearest] / 255 > MASK_THRESHOLD)
    return torch.stack(masks)


class ShapeCaptionSplit(Split):
    """Rows of (caption, background); images are drawn on demand, sentences and wrong images chosen
    per draw. `sentences`: the embeddings this split draws from, (captions, S, D)."""

    def __init__(self, masks: torch.Tensor, fills: torch.Tensor, backgrounds: torch.Tensor, sentences: torch.Tensor,
                 captions: torch.Tensor, modes: torch.Tensor, colours: int):
        self.masks, self.fills, self.backgrounds, self.sentences = masks, fills, backgrounds, sentences
        self.captions, self.modes, self.colours = captions, modes, colours
        self.labels = captions * len(backgrounds) + modes

    def __len__(self) -> int:
        return len(self.captions)

    def render(self, captions: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
        """uint8 images (n, 3, R, R): caption's shape in its fill colour on background `modes`."""
        shape = self.masks[captions // self.colours][:, None]
        fill = self.fills[captions % self.colours][:, :, None, None]
        return torch.where(shape, fill, self.backgrounds[modes]).round().to(torch.uint8)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        captions, modes = self.captions[index], self.modes[index]
        num_captions, per_caption = self.sentences.shape[:2]
        if augment is None:   # evaluation: row r's sentence is fixed, the held-out ones in turn
            sentence = index % per_caption
            wrong = (captions + 1) % num_captions
            wrong_mode = modes
        else:
            augment = augment.to(index.device)
            sentence = seeded_choice(augment, per_caption, salt=1)
            wrong = (captions + 1 + seeded_choice(augment, num_captions - 1, salt=2)) % num_captions   # another caption
            wrong_mode = seeded_choice(augment, len(self.backgrounds), salt=3)
        text = self.sentences[captions, sentence]
        inputs = {"text": text, "wrong": self.render(wrong, wrong_mode)}
        return Batch(self.render(captions, modes), self.labels[index], inputs=inputs).as_float()

    def mode_targets(self, index: torch.Tensor) -> torch.Tensor:
        """(n, K, 3, R, R) in [-1, 1]: the caption of each row on every background."""
        k = len(self.backgrounds)
        captions = self.captions[index].repeat_interleave(k)
        modes = torch.arange(k, device=captions.device).repeat(len(index))
        targets = self.render(captions, modes).float() / 127.5 - 1.0
        return targets.view(len(index), k, *targets.shape[1:])

    def to(self, device: torch.device) -> "ShapeCaptionSplit":
        return ShapeCaptionSplit(self.masks.to(device), self.fills.to(device), self.backgrounds.to(device),
                                 self.sentences.to(device), self.captions.to(device), self.modes.to(device), self.colours)


@register_dataset("shape_captions")
def load_shape_captions(cfg) -> Data:
    if not 2 <= cfg.modes <= 16:
        raise UserError(f"dataset.modes (K, the backgrounds a caption leaves open) must be 2..16; got {cfg.modes}.")
    if not 1 <= cfg.colours <= 16:
        raise UserError(f"dataset.colours (the fill colours captions name) must be 1..16; got {cfg.colours}.")
    if cfg.source != "digits":
        raise UserError(f"dataset.source must be digits (the embedded shapes); got '{cfg.source}'.")
    if not 1 <= cfg.test_sentences < cfg.sentences:
        raise UserError(f"dataset.test_sentences must be at least 1 and fewer than dataset.sentences "
                        f"({cfg.sentences}): each caption needs training sentences too; got {cfg.test_sentences}.")
    if cfg.embedding_dim < 2:
        raise UserError(f"dataset.embedding_dim must be at least 2; got {cfg.embedding_dim}.")
    masks = prototype_masks(cfg)
    colours, k, dim = int(cfg.colours), int(cfg.modes), int(cfg.embedding_dim)
    fills = hues(colours, 0.9, 0.7)
    backgrounds = lit_backgrounds(k, int(cfg.resolution))
    num_captions = SHAPES * colours
    generator = torch.Generator().manual_seed(int(cfg.mode_seed))
    shape_codes, colour_codes = torch.randn(SHAPES, dim, generator=generator), torch.randn(colours, dim, generator=generator)
    captions = torch.arange(num_captions)
    codes = (shape_codes[captions // colours] + colour_codes[captions % colours]) / 2 ** 0.5
    sentences = codes[:, None] + cfg.sentence_noise * torch.randn(num_captions, cfg.sentences, dim, generator=generator)
    held_out = int(cfg.test_sentences)
    pairs = torch.arange(num_captions * k)
    train_captions, train_modes = pairs // k, pairs % k                  # caption-major: each image once
    test_captions, test_modes = pairs % num_captions, pairs // num_captions   # background-major: captions first
    split = lambda rows_captions, rows_modes, which: ShapeCaptionSplit(  # noqa: E731
        masks, fills, backgrounds, which, rows_captions, rows_modes, colours)
    size = int(cfg.resolution)
    colour_names = [f"fill{c}" for c in range(colours)]
    return Data(name="shape_captions", kind="image",
                train=split(train_captions, train_modes, sentences[:, :-held_out]),
                test=split(test_captions, test_modes, sentences[:, -held_out:]),
                num_classes=num_captions * k, label_kind="class", shape=(3, size, size),
                class_names=tuple(f"{s}/{c}/bg{m}" for s in range(SHAPES) for c in colour_names for m in range(k)),
                extras={"modes_per_input": k}, inputs="text", input_shape=(dim,))
