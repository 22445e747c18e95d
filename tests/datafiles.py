"""Tiny files in the real formats users bring (docs/methods.md#data-formats): what the loaders read, written
by the tests, and by `scripts/bench.py --data` at the real image sizes with photo-like content
(`textured`), for the decoders to chew on; and the files a finished run leaves, for the report (`write_run`)."""
from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from PIL import Image


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """An IDX file as Fashion-MNIST/MNIST ship them: zero bytes, dtype 0x08, ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_fashion(root: Path, n_train: int = 30, n_test: int = 20, compress: bool = True) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress)
        write_idx(root / f"{split}-labels-idx1-ubyte", np.arange(n) % 10, compress)
    return root


def write_cifar(root: Path, per_batch: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(root / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                         b"labels": [i % 10 for i in range(per_batch)]}, f)
    return root


def write_image_folder(root: Path, count: int = 24) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


# Real datasets ship photographs as JPEGs of about this quality. A `textured` image stands in for one
# where decoding speed is measured: regions of colour with grain, which JPEG cannot flatten as it does
# the tests' flat or white-noise images (faster, and slower, to decode than a photograph).
PHOTO_QUALITY = 90


def photo_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A uint8 (height, width, 3) image: coarse random colours upsampled (bicubic), plus grain."""
    coarse = rng.integers(0, 256, (max(1, height // 16), max(1, width // 16), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.int16)
    return np.clip(smooth + rng.integers(-12, 13, (height, width, 3)), 0, 255).astype(np.uint8)


def save_image(array: np.ndarray, stem: Path, textured: bool) -> None:
    """PNG for the tests (exact pixels), JPEG at PHOTO_QUALITY for a textured stand-in."""
    if textured:
        Image.fromarray(array).save(stem.with_suffix(".jpg"), quality=PHOTO_QUALITY)
    else:
        Image.fromarray(array).save(stem.with_suffix(".png"))


def write_paired_folder(root: Path, counts: dict[str, int] | None = None, height: int = 20,
                        textured: bool = False) -> Path:
    """pix2pix's paired format: <split>/<i>.png, the input A on the left and the target B on the right
    (width 2 x height). A is a random image (`textured`: photo-like, in JPEG) and B its channels
    reversed and negated, so a test can check which half went where."""
    rng = np.random.default_rng(0)
    for split, count in (counts or {"train": 6, "test": 3}).items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            a = photo_like(rng, height, height) if textured else rng.integers(0, 256, (height, height, 3), dtype=np.uint8)
            b = 255 - a[:, :, ::-1]
            save_image(np.concatenate([a, b], 1), root / split / str(i), textured)
    return root


def write_unpaired_folder(root: Path, counts: dict[str, int] | None = None, size: int = 20,
                          textured: bool = False) -> Path:
    """DRIT's / CycleGAN's unpaired format: trainA/ trainB/ testA/ testB/ of <i>.png. Domain A's images
    are dark (0..99), domain B's bright (156..255), so a test can tell which domain a batch row came
    from (`textured`: photo-like within those ranges, in JPEG)."""
    rng = np.random.default_rng(1)
    for folder, count in (counts or {"trainA": 5, "trainB": 7, "testA": 2, "testB": 3}).items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        low = 0 if folder.endswith("A") else 156
        for i in range(count):
            if textured:
                image = (low + photo_like(rng, size, size).astype(np.uint16) * 99 // 255).astype(np.uint8)
            else:
                image = rng.integers(low, low + 100, (size, size, 3), dtype=np.uint8)
            save_image(image, root / folder / str(i), textured)
    return root


CUB_SPECIES = ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross")


def write_cub(root: Path, counts: dict[str, int] | None = None, captions: int = 10, dim: int = 16,
              embeddings_as_list: bool = True, image_size: tuple[int, int] = (60, 80), textured: bool = False) -> Path:
    """StackGAN++'s CUB layout under root (its data/birds): CUB_200_2011/images/<species>/<name>.jpg with
    images.txt and bounding_boxes.txt, and per split filenames.pickle (the keys) and
    char-CNN-RNN-embeddings.pickle (per image a captions x dim float32 array; a list of them, as the
    released files hold, or one array), pickled with protocol 2 as the reference's files are. Each image
    is grey with its bird's bounding box filled in a colour that encodes the image's number (red =
    20 x number), so a test can tell which image a crop came from and that the crop is the box's.
    `image_size` (height, width; CUB's photographs are about 375 x 500) scales the images and their
    boxes; `textured`: photo-like images, boxes unfilled, at PHOTO_QUALITY."""
    rng, pixels = np.random.default_rng(0), np.random.default_rng(1)
    scale_y, scale_x = image_size[0] / 60, image_size[1] / 80
    cub = root / "CUB_200_2011"
    lines, boxes, number = [], [], 0
    for split, count in (counts or {"train": 6, "test": 3}).items():
        keys, embeddings = [], []
        for i in range(count):
            number += 1
            species = CUB_SPECIES[i % len(CUB_SPECIES)]
            key = f"{species}/{species.split('.')[1]}_{number:04d}"
            (cub / "images" / species).mkdir(parents=True, exist_ok=True)
            x, y, w, h = round((20 + i % 20) * scale_x), round(10 * scale_y), round(30 * scale_x), round(24 * scale_y)
            if textured:
                image = photo_like(pixels, *image_size)
            else:
                image = np.full((*image_size, 3), 128, dtype=np.uint8)
                image[y:y + h, x:x + w] = (min(255, 20 * number), 0, 255)
            Image.fromarray(image).save(cub / "images" / f"{key}.jpg", quality=PHOTO_QUALITY if textured else 100)
            lines.append(f"{number} {key}.jpg")
            boxes.append(f"{number} {x}.0 {y}.0 {w}.0 {h}.0")
            keys.append(key)
            embeddings.append(rng.normal(size=(captions, dim)).astype(np.float32))
        (root / split).mkdir(parents=True, exist_ok=True)
        with open(root / split / "filenames.pickle", "wb") as f:
            pickle.dump(keys, f, protocol=2)
        with open(root / split / "char-CNN-RNN-embeddings.pickle", "wb") as f:
            pickle.dump(embeddings if embeddings_as_list else np.stack(embeddings), f, protocol=2)
    (cub / "images.txt").write_text("\n".join(lines) + "\n")
    (cub / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    return root


CELEBA_ATTRIBUTES = ("5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Male", "Young")


def write_celeba(root: Path, count: int = 24, attributes: tuple[str, ...] = CELEBA_ATTRIBUTES,
                 textured: bool = False) -> Path:
    """CelebA's layout under root: img_align_celeba/<000001.jpg ...> (218 x 178 as the aligned faces)
    and list_attr_celeba.txt (the count, the attribute names, then per image its file and a value of 1
    or -1 per attribute, space-padded as the real file). Image i is grey with its number in the red
    channel of the central crop's top-left pixel block, so a test can tell which image it decoded; its
    attributes: one hair colour by turn (i % 4), Male where i is odd, Young where i % 3 == 0.
    `textured`: photo-like images at PHOTO_QUALITY, unmarked."""
    pixels = np.random.default_rng(2)
    images = root / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        name = f"{i + 1:06d}.jpg"
        if textured:
            image = photo_like(pixels, 218, 178)
        else:
            image = np.full((218, 178, 3), 128, dtype=np.uint8)
            image[20:60, 0:40] = (10 * i % 256, 0, 0)
        Image.fromarray(image).save(images / name, quality=PHOTO_QUALITY if textured else 100)
        values = {"Black_Hair": i % 4 == 0, "Blond_Hair": i % 4 == 1, "Brown_Hair": i % 4 == 2, "Gray_Hair": i % 4 == 3,
                  "Male": i % 2 == 1, "Young": i % 3 == 0}
        rows.append(name + " " + " ".join(f"{1 if values.get(a, False) else -1:>2}" for a in attributes))
    (root / "list_attr_celeba.txt").write_text("\n".join([str(count), " ".join(attributes), *rows]) + "\n")
    return root


def write_run(path: Path, overrides: list[str], metrics: dict[str, float], seed: int = 0,
              reg: dict | None = None, model: str = "dcgan") -> Path:
    """The files `msgan report` reads from a finished run: .hydra/config.yaml (its part that matters),
    .hydra/overrides.yaml and metrics.json."""
    (path / ".hydra").mkdir(parents=True)
    cfg = {"seed": seed, "dataset": {"name": "digits"}, "model": {"name": model}, "reg": reg or {}}
    OmegaConf.save(OmegaConf.create(cfg), path / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), path / ".hydra" / "overrides.yaml")
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path
