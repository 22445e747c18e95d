"""Every loader reads its real on-disk format (tiny files written here) and fails clearly without data."""
import pickle

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from datafiles import write_fashion, write_idx
from msgan_cli.data import EpochSampler, load_dataset
from msgan_cli.data.idx import read_idx
from msgan_cli.errors import UserError


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
    ("image_folder", {"resolution": 32, "channels": 3, "test_fraction": 0.1, "split_seed": 0}, "No readable images"),
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


# --- paired folders (pix2pix's format) and the streaming path ----------------------------------

def paired_cfg(root, **values):
    defaults = dict(name="paired_folder", root=str(root), direction="AtoB", resolution=20, load_size=None, flip=True,
                    input_channels=3, output_channels=3, test_split="test", in_memory="auto", memory_limit_mb=2048,
                    workers=0, skip_unreadable=False)
    return cfg(**(defaults | values))


def halves(path, direction="AtoB"):
    pair = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 127.5 - 1
    a, b = pair[:, :, :pair.shape[2] // 2], pair[:, :, pair.shape[2] // 2:]
    return (a, b) if direction == "AtoB" else (b, a)


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_paired_folder_gives_the_input_half_and_the_target_half(tmp_path, direction):
    from datafiles import write_paired_folder
    write_paired_folder(tmp_path)
    data = load_dataset(paired_cfg(tmp_path, direction=direction))
    assert len(data.train) == 6 and len(data.test) == 3 and data.inputs == "image"
    assert data.shape == (3, 20, 20) and data.input_shape == (3, 20, 20) and data.label_kind is None
    batch = data.test.batch(torch.arange(3))            # evaluation: no crop, no flip
    for i in range(3):
        source, target = halves(tmp_path / "test" / f"{i}.png", direction)
        assert torch.allclose(batch.inputs[i], source) and torch.allclose(batch.samples[i], target)


def test_paired_training_crops_and_flips_both_halves_alike(tmp_path):
    """B is A with its channels reversed and negated, pixel by pixel: a crop or flip that differed between
    the halves would break that."""
    from datafiles import write_paired_folder
    from msgan_cli.data.base import augmentation_seeds
    write_paired_folder(tmp_path)
    data = load_dataset(paired_cfg(tmp_path, resolution=16, load_size=20))
    index = torch.zeros(12, dtype=torch.long)            # one file, twelve draws
    batch = data.train.batch(index, augmentation_seeds(0, torch.arange(12)))
    assert batch.samples.shape == (12, 3, 16, 16)
    assert torch.allclose(batch.samples, -batch.inputs.flip(1), atol=1e-6)
    distinct = {tuple(view.flatten()[:20].tolist()) for view in batch.inputs}
    assert len(distinct) > 6                              # different crops / flips per draw
    again = data.train.batch(index, augmentation_seeds(0, torch.arange(12)))
    assert torch.equal(again.inputs, batch.inputs)        # a draw's augmentation depends on its seed only


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_in_memory_batches_and_resume_mid_epoch(tmp_path, workers):
    from datafiles import write_paired_folder
    write_paired_folder(tmp_path, {"train": 10, "test": 2})
    options = dict(resolution=16, load_size=20, workers=workers)
    held = load_dataset(paired_cfg(tmp_path, in_memory=True, **options))
    streamed = load_dataset(paired_cfg(tmp_path, in_memory="auto", memory_limit_mb=0, **options))
    assert held.train.in_memory and not streamed.train.in_memory
    sources = [data.train.source(EpochSampler(10, 4, seed=3), seed=5) for data in (held, streamed)]
    device = torch.device("cpu")
    for _ in range(6):                                    # crosses epochs (10 samples, batches of 4)
        a, b = (source.next(device) for source in sources)
        assert torch.equal(a.samples, b.samples) and torch.equal(a.inputs, b.inputs)
    state = sources[1].state_dict()                      # what a checkpoint holds: batches handed out
    expected = [sources[0].next(device) for _ in range(3)]
    resumed = streamed.train.source(EpochSampler(10, 4, seed=3), seed=5)
    resumed.load_state_dict(state)
    for batch in expected:
        assert torch.equal(resumed.next(device).samples, batch.samples)


def test_a_split_that_gathers_on_the_host_gets_host_indices_and_others_device_ones(tmp_path):
    """A held folder split crops sample by sample from Python numbers: its indices and seeds stay on
    the host (on a GPU, a copy there and back would stall every step); a tensor split's go to the
    device. The "meta" device stands in for a GPU."""
    from datafiles import write_paired_folder
    from msgan_cli.data.base import InMemorySource, TensorSplit
    write_paired_folder(tmp_path, {"train": 8, "test": 2})
    folder = load_dataset(paired_cfg(tmp_path, in_memory=True, resolution=16, load_size=20)).train
    seen = {}

    def recording(split, name):
        def batch(index, augment=None):
            seen[name] = (index.device.type, augment.device.type)
        split.batch = batch
        return split

    tensors = TensorSplit(torch.zeros(8, 2), None)
    for name, split in {"folder": folder, "tensors": tensors}.items():
        InMemorySource(recording(split, name), EpochSampler(8, 4, seed=0), seed=1).next(torch.device("meta"))
    assert seen == {"folder": ("cpu", "cpu"), "tensors": ("meta", "meta")}


def test_paired_folder_bad_input_is_one_sentence(tmp_path, caplog):
    from datafiles import write_paired_folder
    with pytest.raises(UserError, match="has no train/ folder"):
        load_dataset(paired_cfg(tmp_path))
    (tmp_path / "train").mkdir()
    with pytest.raises(UserError, match="No readable images"):
        load_dataset(paired_cfg(tmp_path))
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(tmp_path / "train" / "wide.png")
    with pytest.raises(UserError, match="wide.png is 30x20: dataset=paired_folder expects the input and the target side by side"):
        load_dataset(paired_cfg(tmp_path))
    (tmp_path / "train" / "wide.png").unlink()
    write_paired_folder(tmp_path)
    (tmp_path / "train" / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(UserError, match=r"broken.png cannot be read as an image .* dataset.skip_unreadable=true"):
        load_dataset(paired_cfg(tmp_path))
    data = load_dataset(paired_cfg(tmp_path, skip_unreadable=True))
    assert len(data.train) == 6 and "broken.png" in caplog.text   # skipped when asked, with a warning naming it
    assert data.skipped.unreadable == [str(tmp_path / "train" / "broken.png")]
    with pytest.raises(UserError, match="dataset.direction must be AtoB or BtoA"):
        load_dataset(paired_cfg(tmp_path, direction="sideways"))


def test_an_image_that_fails_to_decode_mid_run_stops_with_its_name(tmp_path):
    from datafiles import write_paired_folder
    write_paired_folder(tmp_path, {"train": 4, "test": 1})
    path = tmp_path / "train" / "2.png"
    path.write_bytes(path.read_bytes()[:200])             # the header reads, the pixels do not
    data = load_dataset(paired_cfg(tmp_path, in_memory=False, workers=1))
    source = data.train.source(EpochSampler(4, 4, seed=0), seed=0)
    with pytest.raises(UserError, match="2.png cannot be decoded"):
        source.next(torch.device("cpu"))
    # Asked to skip unreadable files, the scan decodes each whole: the cut-short file is skipped and counted.
    data = load_dataset(paired_cfg(tmp_path, in_memory=False, workers=1, skip_unreadable=True))
    assert len(data.train) == 3 and data.skipped.unreadable == [str(path)]


# --- the translation benchmark with known modes ------------------------------------------------

def outline_fill_cfg(**values):
    defaults = dict(name="outline_fill", source="digits", root="", modes=4, family="colour", resolution=32,
                    pairs_per_input=1, test_fraction=0.2, split_seed=0, mode_seed=0)
    return cfg(**(defaults | values))


@pytest.mark.parametrize("family", ["colour", "stripes"])
def test_outline_fill_targets_are_one_of_exactly_k_known_outputs(family):
    data = load_dataset(outline_fill_cfg(family=family, pairs_per_input=2))
    assert data.inputs == "image" and data.input_shape == (1, 32, 32) and data.shape == (3, 32, 32)
    assert len(data.train) == 2 * 1438 and len(data.test) == 359
    index = torch.arange(200)
    batch, modes = data.train.batch(index), data.train.mode_targets(index)
    assert modes.shape == (200, 4, 3, 32, 32)
    fills = data.train.fills[index]
    assert torch.equal(batch.samples, modes[torch.arange(200), fills])        # the target is its fill's mode
    gaps = (modes[:, :, None] - modes[:, None]).abs().flatten(3).mean(3)       # the K modes differ pairwise
    assert (gaps + torch.eye(4) > 0).all()
    assert batch.labels.tolist() == (data.train.shape_labels[index] * 4 + fills).tolist()
    assert torch.bincount(data.train.fills, minlength=4).min() > len(data.train) / 4 * 0.8   # uniform draws
    # The input is the outline only: it is the same whatever the fill, and black only outside the shape.
    outline = batch.inputs[:, 0] < 0
    assert not (outline & data.train.masks[index]).any() and outline.any()


def test_outline_fill_bad_options():
    for values, message in ((dict(modes=1), "dataset.modes"), (dict(family="dots"), "dataset.family"),
                            (dict(source="mnist"), "dataset.source")):
        with pytest.raises(UserError, match=message):
            load_dataset(outline_fill_cfg(**values))


# --- unpaired two-domain data (DRIT's setting) --------------------------------------------------

def outline_fill_unpaired_cfg(**values):
    defaults = dict(name="outline_fill_unpaired", source="digits", modes=4, modes_back=3, outline_width=3,
                    dynamic_range=0.8, resolution=32, test_fraction=0.2, split_seed=0, mode_seed=0)
    return cfg(**(defaults | values))


def test_outline_fill_unpaired_has_k_known_translations_each_way_and_unpaired_domains():
    data = load_dataset(outline_fill_unpaired_cfg())
    assert not data.paired and data.inputs == "image" and data.shape == data.input_shape == (3, 32, 32)
    a, b = data.train.domain("A"), data.train.domain("B")
    assert len(a) == len(b) == len(data.train) == 1438
    index = torch.arange(300)
    batch = data.train.batch(index)                       # evaluation rows: row i of each domain
    assert torch.equal(batch.inputs, a.batch(index).samples) and torch.equal(batch.samples, b.batch(index).samples)
    # Unpaired: the two domains show different shapes in the same row (independent shuffles).
    assert (a.masks[index] == b.masks[index]).flatten(1).all(1).float().mean() < 0.1
    # Each image is one of its own domain's K looks of its shape, and the K translations of A's shapes
    # into B are B's K looks of the same shape (and back: 3 outline colours).
    for domain, other, k in ((a, b, 4), (b, a, 3)):
        targets = domain.translation_targets(index)
        assert targets.shape == (300, k, 3, 32, 32)
        gaps = (targets[:, :, None] - targets[:, None]).abs().flatten(3).mean(3)
        assert (gaps + torch.eye(k) > 0).all()                               # the K modes differ pairwise
        looks = torch.stack([other.__class__(domain.masks, domain.outlines, torch.full_like(domain.styles, j),
                                             domain.shape_labels, other.look, other.modes, domain.modes,
                                             domain.dynamic_range).batch(index).samples for j in range(k)], 1)
        assert torch.equal(targets, looks)
    assert torch.equal(data.train.mode_targets(index), a.translation_targets(index))
    assert torch.equal(data.train.reversed().mode_targets(index), b.translation_targets(index))
    # No pixel at tanh's asymptotes: the images use the middle 80 % of 0..255 (DRIT's G saturated on white).
    values = torch.cat([batch.inputs, batch.samples])
    assert values.min() >= -0.81 and values.max() <= 0.81 and values.max() > 0.79
    # Training pairs each A image with the B partner its draw picks: drawn at another moment (another
    # position in the epoch's order), it meets another B.
    first, later = data.train.batch(index, torch.arange(300)), data.train.batch(index, torch.arange(300) + 7)
    assert torch.equal(first.inputs, later.inputs) and not torch.equal(first.samples, later.samples)


def test_outline_fill_unpaired_bad_options():
    for values, message in ((dict(modes=1), "dataset.modes"), (dict(modes_back=20), "dataset.modes_back"),
                            (dict(source="mnist"), "dataset.source"), (dict(outline_width=2), "dataset.outline_width"),
                            (dict(dynamic_range=1.5), "dataset.dynamic_range")):
        with pytest.raises(UserError, match=message):
            load_dataset(outline_fill_unpaired_cfg(**values))


def unpaired_cfg(root, **values):
    defaults = dict(name="unpaired_folder", root=None if root is None else str(root), resolution=16, load_size=20, flip=True,
                    channels=3, in_memory="auto", memory_limit_mb=2048, workers=0, skip_unreadable=False)
    return cfg(**(defaults | values))


@pytest.mark.parametrize("workers", [0, 2])
def test_unpaired_folder_gives_domain_a_as_inputs_and_streams_like_memory(tmp_path, workers):
    from datafiles import write_unpaired_folder
    write_unpaired_folder(tmp_path)
    held = load_dataset(unpaired_cfg(tmp_path, in_memory=True, workers=workers))
    streamed = load_dataset(unpaired_cfg(tmp_path, memory_limit_mb=0, workers=workers))
    assert not held.paired and held.train.first.in_memory and not streamed.train.first.in_memory
    assert len(held.train) == 7 and len(held.test) == 3    # an epoch runs over the larger domain
    batch = held.test.batch(torch.arange(3))
    assert batch.inputs.shape == batch.samples.shape == (3, 3, 16, 16)
    assert batch.inputs.max() < -0.2 and batch.samples.min() > 0.2     # A dark, B bright: the right folders
    sources = [data.train.source(EpochSampler(7, 2, seed=3), seed=5) for data in (held, streamed)]
    device = torch.device("cpu")
    for _ in range(5):                                    # crosses epochs
        x, y = (source.next(device) for source in sources)
        assert torch.equal(x.samples, y.samples) and torch.equal(x.inputs, y.inputs)
    state = sources[1].state_dict()
    expected = [sources[0].next(device) for _ in range(2)]
    resumed = streamed.train.source(EpochSampler(7, 2, seed=3), seed=5)
    resumed.load_state_dict(state)
    for batch in expected:
        assert torch.equal(resumed.next(device).inputs, batch.inputs)


def test_unpaired_folder_bad_input_is_one_sentence(tmp_path):
    from datafiles import write_unpaired_folder
    with pytest.raises(UserError, match="needs dataset.root"):
        load_dataset(unpaired_cfg(None))
    write_unpaired_folder(tmp_path, {"trainA": 2, "testA": 1, "testB": 1})
    with pytest.raises(UserError, match="trainB is missing: dataset=unpaired_folder expects trainA/, trainB/"):
        load_dataset(unpaired_cfg(tmp_path))
    (tmp_path / "trainB").mkdir()
    (tmp_path / "trainB" / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match="notes.png cannot be read as an image"):
        load_dataset(unpaired_cfg(tmp_path))
    with pytest.raises(UserError, match="No readable images .* in .*trainB: each domain needs at least one"):
        load_dataset(unpaired_cfg(tmp_path, skip_unreadable=True))


def test_pix2pix_refuses_unpaired_domains():
    from conftest import compose
    from msgan_cli.train.session import build_session
    with pytest.raises(UserError, match="model=pix2pix learns from aligned pairs"):
        build_session(compose("model=pix2pix", "dataset=outline_fill_unpaired", "reg=none"))


def image_folder_cfg(root, skip_unreadable: bool = False) -> OmegaConf:
    return cfg(name="image_folder", root=str(root), resolution=16, channels=3, test_fraction=0.2, split_seed=0,
               skip_unreadable=skip_unreadable)


def test_image_folder_stops_at_a_file_that_is_not_an_image_and_skips_it_only_when_asked(tmp_path, caplog):
    """Before: PIL.UnidentifiedImageError from an unguarded open, a traceback; then a skip with a warning,
    which silently changed the data a result is measured on."""
    from datafiles import write_image_folder
    write_image_folder(tmp_path, count=6)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match=r"notes.png cannot be read as an image"):
        load_dataset(image_folder_cfg(tmp_path))
    with caplog.at_level("WARNING"):
        data = load_dataset(image_folder_cfg(tmp_path, skip_unreadable=True))
    assert len(data.train) + len(data.test) == 6
    assert f"Skipping {tmp_path / 'notes.png'}: not a readable image" in caplog.text
    only_junk = tmp_path / "junk"
    only_junk.mkdir()
    (only_junk / "a.jpg").write_bytes(b"\x00" * 10)
    with pytest.raises(UserError, match=r"No readable images .* \(1 unreadable images skipped\)"):
        load_dataset(image_folder_cfg(only_junk, skip_unreadable=True))


def test_an_idx_file_named_gz_that_is_not_gzip_is_one_sentence(tmp_path):
    """Before: gzip.BadGzipFile, a traceback."""
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 3, 3)), compress=False)
    (tmp_path / "train-images-idx3-ubyte").rename(tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz cannot be read .*replace it with the original file"):
        read_idx(tmp_path / "train-images-idx3-ubyte.gz")


class RunsCode:
    """What a malicious pickle does: names a function to call on load."""

    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar10_batches_are_unpickled_without_running_code(tmp_path):
    from datafiles import write_cifar
    write_cifar(tmp_path)
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump({b"data": RunsCode(), b"labels": [0]}, f)
    with pytest.raises(UserError, match="data_batch_3 is not a CIFAR-10 batch .*asks to load posix.system"):
        load_dataset(cfg(name="cifar10", root=str(tmp_path), resolution=32, class_names=list("abcdefghij")))


def test_an_unreadable_image_stops_the_run_and_what_was_skipped_is_counted(tmp_path):
    """dataset=unpaired_folder trained on past a file it could not open (a warning) and past `notes.txt` in
    trainA/ (no word at all). A truncated JPEG now stops the run before training with one sentence naming
    it, unless dataset.skip_unreadable=true; what was left out is in the run's start line and
    run_info.json."""
    import io
    import json

    from conftest import TINY_MODELS, run_msgan, tiny
    from datafiles import write_unpaired_folder
    root = write_unpaired_folder(tmp_path / "data")
    (root / "trainA" / "notes.txt").write_text("where the images came from")
    jpeg = io.BytesIO()
    Image.fromarray(np.full((20, 20, 3), 128, dtype=np.uint8)).save(jpeg, format="JPEG")
    (root / "trainB" / "cut.jpg").write_bytes(jpeg.getvalue()[:60])   # cut short: a header, no image
    options = [*tiny(*TINY_MODELS["drit"], "dataset=unpaired_folder", f"dataset.root={root}", "dataset.workers=0",
                     "trainer.max_steps=1", "eval.metrics=[]")]
    stopped = run_msgan("train", *options, f"hydra.run.dir={tmp_path / 'stopped'}")
    assert stopped.returncode == 2 and "cut.jpg cannot be read as an image" in stopped.stderr, stopped.stderr[-2000:]
    assert not (tmp_path / "stopped" / "checkpoints").exists()
    run = tmp_path / "skipping"
    done = run_msgan("train", *options, "dataset.skip_unreadable=true", f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| data: 1 unreadable images skipped; 1 files that are not images (.txt) ignored" in (run / "train.log").read_text()
    record = json.loads((run / "run_info.json").read_text())["attempts"][-1]["data_skipped"]
    assert record["unreadable"] == 1 and record["not_images"] == 1 and record["unreadable_files"][0].endswith("cut.jpg")
