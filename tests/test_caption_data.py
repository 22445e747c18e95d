"""The text-to-image datasets: the caption benchmark's known modes, and CUB read in StackGAN++'s formats
(tiny files written here as the reference's are), streamed like in memory, with its bad inputs."""
import pickle

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datafiles import CUB_SPECIES, write_cub
from msgan_cli.data import EpochSampler, load_dataset
from msgan_cli.errors import UserError


def captions_cfg(**values):
    cfg = OmegaConf.load("conf/dataset/shape_captions.yaml")
    return OmegaConf.merge(cfg, values)


def cub_cfg(root, **values):
    return OmegaConf.merge(OmegaConf.load("conf/dataset/cub.yaml"), {"root": str(root), "resolution": 16, **values})


def test_each_caption_has_exactly_k_distinct_known_images_and_training_draws_them_evenly():
    data = load_dataset(captions_cfg())
    captions, k = 50, 4
    assert len(data.train) == len(data.test) == captions * k and data.num_classes == captions * k
    targets = data.test.mode_targets(torch.arange(captions))           # the first 50 evaluation rows
    assert targets.shape == (captions, k, 3, 32, 32)
    distinct = torch.cdist(targets.flatten(2), targets.flatten(2), p=1) / targets[0, 0].numel()
    off_diagonal = distinct[:, ~torch.eye(k, dtype=torch.bool)]
    # The K images of a caption differ clearly: by more than an output a tenth of the scale off one of them is
    # from it, so such an output counts as high quality (twice as near one as any other; flat tints were 0.17 apart).
    assert off_diagonal.min() > 0.3
    assert len(set(data.test.captions[:captions].tolist())) == captions   # each caption once among the first 50
    batch = data.train.batch(torch.arange(len(data.train)), torch.arange(len(data.train)))
    for row in range(0, len(data.train), 37):                          # every training image is one of its caption's K
        caption_targets = data.train.mode_targets(torch.tensor([row]))[0]
        assert (caption_targets - batch.samples[row]).abs().flatten(1).amax(1).min() < 1e-6
    assert torch.equal(torch.bincount(data.train.modes, minlength=k), torch.full((k,), captions))


def test_sentences_are_drawn_per_step_from_the_training_ones_and_evaluation_uses_the_held_out_ones():
    data = load_dataset(captions_cfg())
    index = torch.zeros(400, dtype=torch.long)                        # one row, drawn 400 times
    drawn = data.train.batch(index, torch.arange(400)).inputs["text"]
    distinct = torch.unique(drawn, dim=0)
    assert len(distinct) == 8                                          # 10 sentences, the last 2 held out
    again = data.train.batch(index[:5], torch.arange(5)).inputs["text"]
    assert torch.equal(again, drawn[:5])                               # the same seeds draw the same (resume)
    held_out = data.test.batch(torch.arange(50)).inputs["text"]
    caption = data.test.captions[0]
    assert not any(torch.equal(held_out[0], s) for s in data.train.sentences[caption])
    same_caption = data.train.sentences[caption]
    assert (held_out[0] - same_caption).norm(dim=1).max() < 0.5 * (held_out[0] - held_out[1]).norm()   # near its caption


def test_the_wrong_image_of_a_row_is_an_image_of_another_caption():
    data = load_dataset(captions_cfg())
    rows = torch.arange(len(data.train))
    batch = data.train.batch(rows, rows + 1000)
    targets = data.train.mode_targets(rows)
    own = (targets - batch.inputs["wrong"][:, None]).abs().flatten(2).amax(2).min(1).values
    assert own.min() > 0.1                                             # never one of the row's own K images


@pytest.mark.parametrize("override,message", [({"modes": 1}, "dataset.modes"), ({"test_sentences": 10}, "test_sentences"),
                                              ({"colours": 0}, "dataset.colours"), ({"source": "cifar"}, "dataset.source")])
def test_caption_benchmark_bad_options(override, message):
    with pytest.raises(UserError, match=message):
        load_dataset(captions_cfg(**override))


@pytest.mark.parametrize("as_list", [True, False])
def test_cub_reads_stackgan_s_files_and_crops_to_the_bird(tmp_path, as_list):
    write_cub(tmp_path, embeddings_as_list=as_list)
    data = load_dataset(cub_cfg(tmp_path, flip=False))
    assert (len(data.train), len(data.test), data.num_classes, data.input_shape) == (6, 3, 3, (16,))
    assert data.class_names == CUB_SPECIES and data.inputs == "text"
    batch = data.test.batch(torch.arange(3))
    # The crop is a square of 1.5 x the box about its centre: the bird's colour fills the middle of the
    # image and the grey background shows at its edges; image number n is 20 n red (test images: 7, 8, 9).
    middle = (batch.samples[:, :, 6:10, 6:10] + 1) * 127.5
    assert torch.allclose(middle[:, 0].mean((1, 2)), torch.tensor([140.0, 160.0, 180.0]), atol=6)
    assert torch.allclose(middle[:, 2].mean((1, 2)), torch.full((3,), 255.0), atol=6)
    corner = (batch.samples[:, :, 0, 0] + 1) * 127.5
    assert torch.allclose(corner, torch.full_like(corner, 128.0), atol=12)
    with open(tmp_path / "test" / "char-CNN-RNN-embeddings.pickle", "rb") as f:
        embeddings = np.asarray(pickle.load(f))
    for row in range(3):                                               # evaluation row i: caption i % 10
        assert torch.equal(batch.inputs["text"][row], torch.from_numpy(embeddings[row, row % 10]))


def test_cub_training_draws_a_caption_and_a_wrong_bird_of_another_species_per_step(tmp_path):
    write_cub(tmp_path, {"train": 9, "test": 3})
    data = load_dataset(cub_cfg(tmp_path))
    split = data.train
    rows = torch.arange(9).repeat(30)
    batch = split.batch(rows, torch.arange(len(rows)))
    red_of = lambda images: ((images[:, 0, 6:10, 6:10] + 1) * 127.5).mean((1, 2))   # noqa: E731
    numbers = torch.round(red_of(batch.inputs["wrong"]) / 20).long()   # which image each wrong one is (1..9)
    species = (numbers - 1) % len(CUB_SPECIES)
    assert torch.all(species != split.labels[rows])                    # always another species
    assert len(torch.unique(numbers)) == 9                             # and every image is drawn as some row's wrong one
    captions = [{int((split.embeddings[r] == t).all(1).nonzero()) for r_, t in zip(rows, batch.inputs["text"]) if r_ == r}
                for r in range(3)]
    assert all(len(drawn) >= 8 for drawn in captions)                  # ~all 10 captions per image over 30 draws


@pytest.mark.parametrize("workers", [0, 2])
def test_cub_streamed_equals_in_memory_and_resumes(tmp_path, workers):
    write_cub(tmp_path, {"train": 10, "test": 2})
    held = load_dataset(cub_cfg(tmp_path, in_memory=True, workers=workers))
    streamed = load_dataset(cub_cfg(tmp_path, in_memory="auto", memory_limit_mb=0, workers=workers))
    assert held.train.in_memory and not streamed.train.in_memory
    sources = [data.train.source(EpochSampler(10, 4, seed=3), seed=5) for data in (held, streamed)]
    for _ in range(4):
        a, b = (source.next(torch.device("cpu")) for source in sources)
        assert torch.equal(a.samples, b.samples) and torch.equal(a.inputs["text"], b.inputs["text"])
        assert torch.equal(a.inputs["wrong"], b.inputs["wrong"])
    state = sources[1].state_dict()
    expected = sources[0].next(torch.device("cpu"))
    resumed = streamed.train.source(EpochSampler(10, 4, seed=3), seed=5)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.next(torch.device("cpu")).inputs["text"], expected.inputs["text"])


class RunsCode:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /dev/null",))


def test_cub_bad_input_is_one_sentence(tmp_path):
    write_cub(tmp_path)
    (tmp_path / "train" / "char-CNN-RNN-embeddings.pickle").unlink()
    with pytest.raises(UserError, match="train/char-CNN-RNN-embeddings.pickle is missing: dataset=cub reads"):
        load_dataset(cub_cfg(tmp_path))
    with open(tmp_path / "train" / "char-CNN-RNN-embeddings.pickle", "wb") as f:
        pickle.dump(np.zeros((6, 16), dtype=np.float32), f, protocol=2)     # no captions axis
    with pytest.raises(UserError, match=r"holds an array of shape \(6, 16\); StackGAN\+\+'s is \(images, captions"):
        load_dataset(cub_cfg(tmp_path))
    with open(tmp_path / "train" / "char-CNN-RNN-embeddings.pickle", "wb") as f:
        pickle.dump(np.zeros((5, 10, 16), dtype=np.float32), f, protocol=2)   # one image short
    with pytest.raises(UserError, match=r"one entry per key of filenames.pickle \(6\)"):
        load_dataset(cub_cfg(tmp_path))
    with open(tmp_path / "train" / "char-CNN-RNN-embeddings.pickle", "wb") as f:
        pickle.dump(RunsCode(), f, protocol=2)
    with pytest.raises(UserError, match="cannot be read as StackGAN.* asks to load posix.system"):
        load_dataset(cub_cfg(tmp_path))
    write_cub(tmp_path)
    (tmp_path / "CUB_200_2011" / "bounding_boxes.txt").write_text("1 2.0 3.0\n")
    with pytest.raises(UserError, match="bounding_boxes.txt line 1 has 3 fields, expected 5"):
        load_dataset(cub_cfg(tmp_path))
    with pytest.raises(UserError, match="dataset=cub needs dataset.root="):
        load_dataset(OmegaConf.merge(OmegaConf.load("conf/dataset/cub.yaml"), {"resolution": 16}))


def test_the_resize_to_304_is_torchvisions():
    """StackGAN-v2 resizes with torchvision's Resize(304), which truncates the longer side; msgan rounded it,
    so a third of CUB's images came out one pixel longer than the reference's (before its crop)."""
    import numpy as np
    from PIL import Image
    from torchvision import transforms

    from msgan_cli.data.cub import resize_shorter_side
    rng = np.random.default_rng(0)
    # 500 x 371 -> 409.7 x 304 and 371 x 500 -> 304 x 409.7: rounding gives 410, torchvision 409
    for width, height in ((500, 371), (371, 500), (500, 375), (300, 301)):
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        ours, reference = resize_shorter_side(image, 304), transforms.Resize(304)(image)
        assert ours.size == reference.size and np.array_equal(np.asarray(ours), np.asarray(reference)), (width, height)
    assert transforms.Resize(304)(Image.new("RGB", (500, 371))).size == (409, 304)
