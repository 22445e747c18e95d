"""Tests compose the real config (conf/) and shrink it to seconds: tiny widths, a few steps."""
from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from msgan_cli.config import compose_config
from msgan_cli.train.loop import train

# Small enough that a training smoke test takes a second or two on 2 CPU cores.
TINY = [
    "hardware=cpu",
    "model.width=8",        # the image models' (tiny() drops it for the 2D GANs, which have none)
    "trainer.max_steps=4",
    "trainer.batch_size=16",
    "trainer.log_every=2",
    "trainer.sample_every=2",
    "trainer.checkpoint_every=2",
    "trainer.spectrum.every=2",
    "trainer.progress_bar=false",
    "eval.num_samples=64",
    "eval.classifier.steps=40",
    "eval.classifier.width=4",
    "eval.ndb.bins=8",
    "eval.ndb.per_class_bins=3",
    "eval.kid.subsets=10",
]


@pytest.fixture(autouse=True, scope="session")
def classifier_cache(tmp_path_factory):
    """Classifiers trained by the tests land in a temporary cache, never the user's."""
    os.environ["MSGAN_CACHE"] = str(tmp_path_factory.mktemp("msgan_cache"))


# Each model's tiny shape, as its own test file shrinks it (the GPU and host-synchronisation tests).
TINY_MODELS = {
    "dcgan": [],
    "mlp": ["model=mlp", "dataset=grid25", "dataset.num_train=500"],
    "pix2pix": ["model=pix2pix", "model.width=4", "trainer.batch_size=4"],
    "drit": ["model=drit", "model.width=4", "dataset.resolution=16", "trainer.batch_size=4"],
    "stackganpp": ["model=stackganpp", "model.width_g=8", "model.width_d=4", "model.ca_dim=8", "model.nz=8",
                   "model.base_size=8", "dataset.resolution=16", "trainer.batch_size=8"],
    "stargan": ["model=stargan", "model.width_g=4", "model.width_d=4", "model.residual_blocks=1", "model.nz=4",
                "dataset.resolution=16", "trainer.batch_size=8"],
}


def tiny(*overrides: str) -> list[str]:
    """TINY followed by `overrides`, with TINY's width only where the model chosen has a width (the 2D
    GANs have none): a key the chosen model does not have stops the run, as it should for a user."""
    without_width = [o for o in TINY if not o.startswith("model.width=")]
    try:
        has_width = "width" in compose_config("train", without_width + list(overrides)).model
    except Exception:   # overrides a test expects to fail: the real call reports them
        has_width = True
    return without_width + (["model.width=8"] if has_width else []) + list(overrides)


def compose(*overrides: str):
    return compose_config("train", tiny(*overrides))


def train_run(run_dir: Path, *overrides: str) -> dict:
    """Train a tiny run in-process (without Hydra's run-directory machinery) and return its metrics."""
    return train(compose(*overrides), run_dir)


def msgan(*args: str, cwd: Path | None = None, env_extra: dict | None = None, timeout: int = 300):
    """Run the real `msgan` console entry point in a subprocess."""
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "msgan_cli.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def tensorboard_tags(run_dir: Path) -> dict[str, set[str]]:
    """Scalar and image tags written under <run>/tb, and whether hparams were written."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    hparams_events = EventAccumulator(str(run_dir / "tb" / "hparams"))   # the HPARAMS tab's own folder
    hparams_events.Reload()
    try:
        hparams = set(hparams_events.PluginTagToContent("hparams"))
    except KeyError:
        hparams = set()
    return {"scalars": set(tags["scalars"]), "images": set(tags["images"]), "hparams": hparams,
            "tensors": set(tags["tensors"])}


def load_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def state_of(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


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


def write_paired_folder(root: Path, counts: dict[str, int] | None = None, height: int = 20) -> Path:
    """pix2pix's paired format: <split>/<i>.png, the input A on the left and the target B on the right
    (width 2 x height). A is a random image and B its channels reversed and negated, so a test can check
    which half went where."""
    rng = np.random.default_rng(0)
    for split, count in (counts or {"train": 6, "test": 3}).items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            a = rng.integers(0, 256, (height, height, 3), dtype=np.uint8)
            b = 255 - a[:, :, ::-1]
            Image.fromarray(np.concatenate([a, b], 1)).save(root / split / f"{i}.png")
    return root


def write_unpaired_folder(root: Path, counts: dict[str, int] | None = None, size: int = 20) -> Path:
    """DRIT's / CycleGAN's unpaired format: trainA/ trainB/ testA/ testB/ of <i>.png. Domain A's images
    are dark (0..99), domain B's bright (156..255), so a test can tell which domain a batch row came from."""
    rng = np.random.default_rng(1)
    for folder, count in (counts or {"trainA": 5, "trainB": 7, "testA": 2, "testB": 3}).items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        low = 0 if folder.endswith("A") else 156
        for i in range(count):
            image = rng.integers(low, low + 100, (size, size, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / folder / f"{i}.png")
    return root


def pytest_collection_modifyitems(config, items):
    """GPU tests skip themselves, with the reason, where no CUDA device is visible."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


CUB_SPECIES = ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross")


def write_cub(root: Path, counts: dict[str, int] | None = None, captions: int = 10, dim: int = 16,
              embeddings_as_list: bool = True) -> Path:
    """StackGAN++'s CUB layout under root (its data/birds): CUB_200_2011/images/<species>/<name>.jpg with
    images.txt and bounding_boxes.txt, and per split filenames.pickle (the keys) and
    char-CNN-RNN-embeddings.pickle (per image a captions x dim float32 array; a list of them, as the
    released files hold, or one array), pickled with protocol 2 as the reference's files are. Each image
    is grey with its bird's bounding box filled in a colour that encodes the image's number (red =
    20 x number), so a test can tell which image a crop came from and that the crop is the box's."""
    rng = np.random.default_rng(0)
    cub = root / "CUB_200_2011"
    lines, boxes, number = [], [], 0
    for split, count in (counts or {"train": 6, "test": 3}).items():
        keys, embeddings = [], []
        for i in range(count):
            number += 1
            species = CUB_SPECIES[i % len(CUB_SPECIES)]
            key = f"{species}/{species.split('.')[1]}_{number:04d}"
            (cub / "images" / species).mkdir(parents=True, exist_ok=True)
            image = np.full((60, 80, 3), 128, dtype=np.uint8)
            x, y, w, h = 20 + i, 10, 30, 24
            image[y:y + h, x:x + w] = (min(255, 20 * number), 0, 255)
            Image.fromarray(image).save(cub / "images" / f"{key}.jpg", quality=100)
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


def write_celeba(root: Path, count: int = 24, attributes: tuple[str, ...] = CELEBA_ATTRIBUTES) -> Path:
    """CelebA's layout under root: img_align_celeba/<000001.jpg ...> (218 x 178 as the aligned faces)
    and list_attr_celeba.txt (the count, the attribute names, then per image its file and a value of 1
    or -1 per attribute, space-padded as the real file). Image i is grey with its number in the red
    channel of the central crop's top-left pixel block, so a test can tell which image it decoded; its
    attributes: one hair colour by turn (i % 4), Male where i is odd, Young where i % 3 == 0."""
    images = root / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        name = f"{i + 1:06d}.jpg"
        image = np.full((218, 178, 3), 128, dtype=np.uint8)
        image[20:60, 0:40] = (10 * i % 256, 0, 0)
        Image.fromarray(image).save(images / name, quality=100)
        values = {"Black_Hair": i % 4 == 0, "Blond_Hair": i % 4 == 1, "Brown_Hair": i % 4 == 2, "Gray_Hair": i % 4 == 3,
                  "Male": i % 2 == 1, "Young": i % 3 == 0}
        rows.append(name + " " + " ".join(f"{1 if values.get(a, False) else -1:>2}" for a in attributes))
    (root / "list_attr_celeba.txt").write_text("\n".join([str(count), " ".join(attributes), *rows]) + "\n")
    return root
