"""Every loader reads its real on-disk format (tiny files written here) and fails clearly without data."""
import pickle

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from msgan_cli.data import EpochSampler, load_dataset
from msgan_cli.data.idx import read_idx
from msgan_cli.errors import UserError

from conftest import write_fashion, write_idx


def cfg(**values):
    return OmegaConf.create(values)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x-idx3-ubyte", array, compress)
    path = tmp_path / ("x-idx3-ubyte.gz" if compress else "x-idx3-ubyte")
    assert (read_idx(path) == array).all()


def test_fashion_mnist_loader(tmp_path):
    write_fashion(tmp_path)
    data = load_dataset(cfg(name="fashion_mnist", root=str(tmp_path), resolution=32, class_names=list("abcdefghij")))
    assert len(data.train) == 30 and len(data.test) == 20 and data.shape == (1, 32, 32)
    batch = data.train.batch(torch.arange(10))
    x, y = batch.samples, batch.labels
    assert x.shape == (10, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert y.tolist() == list(range(10)) and data.label_kind == "class"


def test_stacked_fashion_mnist_modes(tmp_path):
    write_fashion(tmp_path)
    data = load_dataset(cfg(name="stacked_fashion_mnist", root=str(tmp_path), resolution=32,
                            num_train=50, num_test=10, triples_seed=0))
    batch = data.train.batch(torch.arange(50))
    x, mode = batch.samples, batch.labels
    assert x.shape == (50, 3, 32, 32) and data.num_classes == 1000 and data.label_kind == "mode"
    # Each channel is one base image; its class (index % 10 in write_fashion) gives one digit of the mode.
    triples = data.train.triples[:50]
    assert mode.tolist() == (100 * (triples[:, 0] % 10) + 10 * (triples[:, 1] % 10) + triples[:, 2] % 10).tolist()
    base = data.train.base[triples[0, 1]].float() / 127.5 - 1
    assert torch.allclose(x[0, 1], base[0])


def test_cifar10_loader(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [1, 2, 3, 4]}, f)
    data = load_dataset(cfg(name="cifar10", root=str(tmp_path), resolution=32, class_names=list("abcdefghij")))
    assert len(data.train) == 20 and len(data.test) == 4 and data.shape == (3, 32, 32)
    with open(tmp_path / "test_batch", "rb") as f:
        raw = pickle.load(f)[b"data"][0]
    batch = data.test.batch(torch.tensor([0]))
    x, y = batch.samples, batch.labels
    # Channel-major: the first 1024 values are the red plane, row by row.
    assert torch.allclose(x[0, 0].flatten(), torch.from_numpy(raw[:1024]).float() / 127.5 - 1)
    assert y.tolist() == [1]


def test_digits_loader():
    data = load_dataset(cfg(name="digits", resolution=32, test_fraction=0.2, split_seed=0))
    assert len(data.train) + len(data.test) == 1797 and data.shape == (1, 32, 32) and data.num_classes == 10


@pytest.mark.parametrize("name,modes,spread", [("ring8", 8, 1.0), ("grid25", 25, 4.0)])
def test_mixtures(name, modes, spread):
    data = load_dataset(cfg(name=name, std=0.01, radius=1.0, num_train=5000, num_test=100, data_seed=0))
    batch = data.train.batch(torch.arange(5000))
    points, labels = batch.samples, batch.labels
    centres = data.extras["centres"]
    assert len(centres) == modes and centres.abs().max() == pytest.approx(spread)
    assert torch.bincount(labels, minlength=modes).min() > 5000 / modes / 2
    assert (points - centres[labels]).std().item() == pytest.approx(0.01, rel=0.1)


def test_image_folder_loader(tmp_path):
    for i in range(5):
        Image.fromarray(np.full((40, 30, 3), i * 40, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    data = load_dataset(cfg(name="image_folder", root=str(tmp_path), resolution=16, channels=3,
                            test_fraction=0.2, split_seed=0))
    assert len(data.train) == 4 and data.shape == (3, 16, 16) and data.label_kind is None


@pytest.mark.parametrize("name,extra,message", [
    ("fashion_mnist", {"resolution": 32, "class_names": []}, "apt-get install -y dataset-fashion-mnist"),
    ("cifar10", {"resolution": 32, "class_names": []}, "dataset.root"),
    ("image_folder", {"resolution": 32, "channels": 3, "test_fraction": 0.1, "split_seed": 0}, "No images"),
])
def test_missing_data_says_where_and_how(tmp_path, name, extra, message):
    with pytest.raises(UserError) as error:
        load_dataset(cfg(name=name, root=str(tmp_path), **extra))
    assert message in str(error.value)
    if name != "image_folder":
        assert str(tmp_path) in str(error.value)


def test_sampler_shards_the_global_batch_and_resumes():
    single = EpochSampler(100, 8, seed=3)
    ranks = [EpochSampler(100, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for _ in range(30):   # crosses several epochs
        assert torch.equal(single.next(), torch.cat([s.next() for s in ranks]))
    resumed = EpochSampler(100, 8, seed=3)
    resumed.load_state_dict(single.state_dict())
    assert all(torch.equal(single.next(), resumed.next()) for _ in range(20))


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not __import__("os").path.isdir(FASHION), reason="apt-get install -y dataset-fashion-mnist")
def test_real_fashion_mnist_files():
    data = load_dataset(cfg(name="fashion_mnist", root=FASHION, resolution=32, class_names=list("abcdefghij")))
    assert len(data.train) == 60000 and len(data.test) == 10000
    assert torch.bincount(data.train.labels).tolist() == [6000] * 10
