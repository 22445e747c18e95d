"""`dataset=cub`: CUB-200-2011 with char-CNN-RNN caption embeddings, as StackGAN++ reads it
(hanzhanggit/StackGAN-v2 `code/datasets.py` `TextDataset`; docs/methods.md#data-formats and #stackganpp).

`dataset.root` is StackGAN's `data/birds` folder:
    train/filenames.pickle                 the image keys, e.g. '002.Laysan_Albatross/Laysan_Albatross_0002_1027'
    train/char-CNN-RNN-embeddings.pickle   per image its caption embeddings: (N, 10, 1024)
    test/...                               the same for the test images
    CUB_200_2011/images/<key>.jpg, CUB_200_2011/images.txt, CUB_200_2011/bounding_boxes.txt
(`dataset.images_root` if CUB_200_2011 sits elsewhere). A key's species folder is its class (what the
reference's class_info.pickle holds, which is not needed here).

Pickles are read with a restricted unpickler that only rebuilds lists, strings, numbers and numpy
arrays (`data/pickles.py`): a pickle can run code when loaded, and these files come from the internet.
Python 2 pickles (the reference's) load with latin-1 strings, as the reference's Python 3 forks do.

Preprocessing as `get_imgs`: each image cropped to a square of 1.5 x the larger side of its bounding
box about the box's centre (clipped at the borders), then its smaller side resized to `load_size` (304
= 256 x 76 / 64) and, in training, a random `resolution` crop and a random horizontal flip; evaluation
takes the centre crop. Unlike the reference, the long side is first centre-cropped to `load_size` (so
that every decoded image has one size and can be held in memory); the random crop then moves within
that square. The stage sizes below the last come from the model (`resize_floats`), as the reference
scales the crop to each stage's size.

Per draw (from the sample's augmentation seed, so a resumed run draws the same): one of the image's
caption embeddings (the reference's `embedding_ix`), and a "wrong" image, a random image of another
class (the reference draws one and redraws once if the class matches; here always another class).
Evaluation row i uses caption i % 10. Streamed through DataLoader workers unless the decoded images
fit in `memory_limit_mb` (`in_memory: auto`).
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Batch, Data, seeded_choice
from msgan_cli.data.files import UNREADABLE_IMAGE, dataset_root, path_or
from msgan_cli.data.pickles import NUMPY_ARRAYS, RestrictedUnpickler
from msgan_cli.data.streaming import FileSplit, resolve_in_memory, resolve_workers
from msgan_cli.data.transforms import apply_crop, crop_for
from msgan_cli.errors import UserError

log = logging.getLogger(__name__)

# Python 3's protocol 2 writes bytes through _codecs.encode (no code of the file's own runs).
CUB_PICKLE_GLOBALS = NUMPY_ARRAYS | {("_codecs", "encode"), ("numpy.core.multiarray", "scalar"),
                                     ("numpy._core.multiarray", "scalar")}


def safe_unpickle(path: Path):
    """The object in a pickle of lists, strings, numbers and numpy arrays (Python 2 or 3), or a
    UserError naming the file."""
    if not path.is_file():
        raise UserError(f"{path} is missing: dataset=cub reads StackGAN++'s files (birds/train/ and birds/test/ with "
                        f"filenames.pickle and char-CNN-RNN-embeddings.pickle) under dataset.root.")
    try:
        with open(path, "rb") as file:
            return RestrictedUnpickler(file, CUB_PICKLE_GLOBALS, "a StackGAN++ file", encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise UserError(f"{path} cannot be read as StackGAN++ writes it ({error}).") from None


def read_table(path: Path, columns: int, cast) -> dict[int, list]:
    """A CUB text table: `<image id> <values...>` per line, as {id: values}."""
    if not path.is_file():
        raise UserError(f"{path} is missing: dataset=cub needs CUB-200-2011's images.txt and bounding_boxes.txt "
                        f"(under dataset.images_root, by default <root>/CUB_200_2011).")
    table = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != columns + 1:
            raise UserError(f"{path} line {number} has {len(parts)} fields, expected {columns + 1}: {line!r}.")
        try:
            table[int(parts[0])] = [cast(p) for p in parts[1:]]
        except ValueError:
            raise UserError(f"{path} line {number} is malformed: {line!r}.") from None
    return table


def bounding_boxes(images_root: Path) -> dict[str, tuple[float, float, float, float]]:
    """{image key (its path under images/ without .jpg): (x, y, width, height)}."""
    names = read_table(images_root / "images.txt", 1, str)
    boxes = read_table(images_root / "bounding_boxes.txt", 4, float)
    return {names[i][0].rsplit(".", 1)[0]: tuple(boxes[i]) for i in names if i in boxes}


def bird_crop(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """The reference's crop: a square of side 1.5 x max(w, h) about the box's centre, clipped."""
    x, y, w, h = box
    r = int(max(w, h) * 0.75)
    centre_x, centre_y = int((2 * x + w) / 2), int((2 * y + h) / 2)
    return image.crop((max(0, centre_x - r), max(0, centre_y - r),
                       min(image.width, centre_x + r), min(image.height, centre_y + r)))


def resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    """torchvision's Resize(size) on a PIL image, as the reference calls it: the smaller side to `size`, the
    longer to int(size * long / short), truncated (rounding made a third of CUB's images a pixel longer)."""
    short = min(image.size)
    return image.resize((int(size * image.width / short), int(size * image.height / short)), Image.BILINEAR)


def decode(path: Path, box, load_size: int) -> torch.Tensor:
    """uint8 (3, load_size, load_size): cropped to the bird, smaller side resized, long side centre-cropped."""
    try:
        with Image.open(path) as image:
            image = bird_crop(image.convert("RGB"), box)
    except UNREADABLE_IMAGE as error:
        raise UserError(f"{path} cannot be decoded ({error}): replace it (dataset=cub needs every listed image).") from None
    image = resize_shorter_side(image, load_size)
    left, top = (image.width - load_size) // 2, (image.height - load_size) // 2
    array = np.asarray(image.crop((left, top, left + load_size, top + load_size)), dtype=np.uint8)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


class BirdImages(FileSplit):
    """One split's images, caption embeddings (N, S, D) and classes; decoded into memory (`cache`) or per draw."""

    def __init__(self, paths: list[Path], boxes: list, embeddings: torch.Tensor, labels: torch.Tensor, load_size: int,
                 crop_size: int, flip: bool, in_memory: bool, workers: int, cache: torch.Tensor | None = None,
                 device: torch.device | None = None):
        super().__init__(in_memory, workers, device)
        self.paths, self.boxes, self.embeddings, self.labels = paths, boxes, embeddings, labels
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        # Other-class draws in O(1): images sorted by class; those of other classes are all but one run.
        self.by_class = torch.argsort(labels.cpu(), stable=True)
        counts = torch.bincount(labels.cpu())
        self.class_start, self.class_count = torch.cumsum(counts, 0) - counts, counts
        if in_memory and cache is None:
            cache = torch.stack([decode(p, b, load_size) for p, b in zip(paths, boxes)])
        self.cache = cache

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int, seed: int | None) -> torch.Tensor:
        image = self.cache[index] if self.cache is not None else decode(self.paths[index], self.boxes[index], self.load_size)
        return apply_crop(image, crop_for(seed, self.load_size, self.crop_size, self.flip))

    def other_class_image(self, index: int, seed: int | None) -> int:
        label = int(self.labels[index])
        start, count = int(self.class_start[label]), int(self.class_count[label])
        others = len(self) - count
        if others == 0:
            return index   # one class only: no mismatched image exists (the wrong term then sees a match)
        j = int(seeded_choice(torch.tensor([index if seed is None else seed]), others, salt=2))
        return int(self.by_class[j if j < start else j + count])

    def sample(self, index: int, seed: int | None) -> Batch:
        captions = self.embeddings.shape[1]
        caption = index % captions if seed is None else int(seeded_choice(torch.tensor([seed]), captions, salt=1))
        wrong = self.other_class_image(index, seed)
        inputs = {"text": self.embeddings[index, caption][None].float(),
                  "wrong": self.image(wrong, None if seed is None else seed + 1)[None]}
        return Batch(self.image(index, seed)[None], self.labels[index:index + 1], inputs=inputs)

    def to(self, device: torch.device) -> "BirdImages":
        cache = None if self.cache is None else self.cache.to(device)
        return BirdImages(self.paths, self.boxes, self.embeddings.to(device), self.labels.to(device), self.load_size,
                          self.crop_size, self.flip, self.in_memory, self.workers, cache, device)


def read_split(root: Path, split: str) -> tuple[list[str], np.ndarray]:
    """(image keys, embeddings (N, S, D)) of `split`, checked against each other."""
    folder = root / split
    keys = safe_unpickle(folder / "filenames.pickle")
    if not isinstance(keys, (list, tuple)) or not all(isinstance(k, (str, bytes)) for k in keys) or not keys:
        raise UserError(f"{folder / 'filenames.pickle'} must hold a non-empty list of image keys (strings).")
    keys = [k.decode() if isinstance(k, bytes) else k for k in keys]
    raw = safe_unpickle(folder / "char-CNN-RNN-embeddings.pickle")
    try:
        embeddings = np.asarray(raw, dtype=np.float32)
    except (ValueError, TypeError):
        raise UserError(f"{folder / 'char-CNN-RNN-embeddings.pickle'} must hold one (captions x dimension) array of "
                        f"floats per image, all of one shape.") from None
    if embeddings.ndim != 3 or len(embeddings) != len(keys):
        raise UserError(f"{folder / 'char-CNN-RNN-embeddings.pickle'} holds an array of shape {embeddings.shape}; "
                        f"StackGAN++'s is (images, captions per image, dimension) with one entry per key of "
                        f"filenames.pickle ({len(keys)}).")
    return keys, embeddings


@register_dataset("cub")
def load_cub(cfg) -> Data:
    root = dataset_root(cfg, "cub", "StackGAN's birds/ folder: train/, test/, CUB_200_2011/")
    images_root = path_or(cfg.images_root, root / "CUB_200_2011")
    load_size = int(cfg.load_size or round(cfg.resolution * 76 / 64))
    if load_size < cfg.resolution:
        raise UserError(f"dataset.load_size={load_size} is smaller than dataset.resolution={cfg.resolution}.")
    boxes = bounding_boxes(images_root)
    splits = {name: read_split(root, name) for name in ("train", "test")}
    dims = {name: split[1].shape[2] for name, split in splits.items()}
    if dims["train"] != dims["test"]:
        raise UserError(f"dataset=cub: the train embeddings have {dims['train']} dimensions, the test ones {dims['test']}.")
    species = sorted({key.split("/")[0] for keys, _ in splits.values() for key in keys})   # '002.Laysan_Albatross'
    decoded_bytes = len(splits["train"][0]) * 3 * load_size ** 2
    in_memory = resolve_in_memory(cfg.in_memory, decoded_bytes, cfg.memory_limit_mb)
    workers = resolve_workers(cfg.workers)

    def split(name: str, train: bool) -> BirdImages:
        keys, embeddings = splits[name]
        missing = [key for key in keys if key not in boxes]
        if missing:
            raise UserError(f"{len(missing)} images of {name}/filenames.pickle have no bounding box in "
                            f"{images_root / 'bounding_boxes.txt'} (e.g. {missing[0]}).")
        labels = torch.tensor([species.index(key.split("/")[0]) for key in keys])
        return BirdImages([images_root / "images" / f"{key}.jpg" for key in keys], [boxes[key] for key in keys],
                          torch.from_numpy(embeddings), labels, load_size, int(cfg.resolution), train and bool(cfg.flip),
                          in_memory, workers)

    train, test = split("train", True), split("test", False)
    log.info("cub: %d training and %d test images, %d captions each (%s), from %s", len(train), len(test),
             train.embeddings.shape[1], "in memory" if in_memory else f"streamed by {workers} workers", root)
    return Data(name="cub", kind="image", train=train, test=test, num_classes=len(species), label_kind="class",
                shape=(3, cfg.resolution, cfg.resolution), class_names=tuple(species),
                inputs="text", input_shape=(dims["train"],))
