"""Attribute-domain data (StarGAN's): the multi-domain benchmark's known translations, the evaluation
views of attribute edits, and CelebA's real format with its bad inputs."""
import pytest
import torch

from conftest import compose
from datafiles import write_celeba
from msgan_cli.data import load_dataset
from msgan_cli.data.attributes import Attributes, Edit, edited_view
from msgan_cli.errors import UserError


def benchmark(*overrides):
    return load_dataset(compose("model=stargan", *overrides).dataset)


def test_every_domain_leaves_exactly_k_known_backgrounds_and_training_draws_them_evenly():
    data = benchmark()
    attributes, k = data.extras["attributes"], data.extras["modes_per_input"]
    assert attributes.names == ("fill0", "fill1", "fill2", "stroke") and attributes.exclusive == (0, 1, 2)
    # Each training image is one of its translations into its own attributes (the one on its background).
    index = torch.arange(40)
    batch = data.train.batch(index)
    own = data.train.translations(index, attributes.of(batch.labels))
    assert own.shape == (40, k, 3, 32, 32)
    assert torch.equal(own[torch.arange(40), data.train.backgrounds[index]], batch.samples)
    flat = own.flatten(2)
    assert all(torch.unique(flat[i], dim=0).shape[0] == k for i in range(40))   # K distinct outputs per input
    # ... and far enough apart that an output within a tenth of the scale of one is nearer it than half-way to any
    # other (what modes_per_input calls high quality): mean absolute distances of at least 0.2 on [-1, 1].
    separation = (own[:, :, None] - own[:, None]).abs().flatten(3).mean(3) + 9 * torch.eye(k)
    assert separation.amin() > 0.2
    # Background m is lit from direction m (angle 2 pi m / K): brightest where that direction points.
    light = (own.mean(2)[:, :, 16, 31] - own.mean(2)[:, :, 16, 0])   # right edge minus left edge of row 16
    assert (light[:, 0] > 1).all() and (light[:, 2] < -1).all() and light[:, 1].abs().max() < 0.5
    # Attributes and backgrounds are drawn evenly and independently: every class (domain x background) occurs.
    counts = torch.bincount(data.train.labels, minlength=data.num_classes)
    assert counts.min() > 0.6 * counts.float().mean()
    # The stroke is the black ring round the shape, and only there.
    stroked = data.train.translations(index[:1], torch.tensor([[1.0, 0, 0, 1]]))[0, 0]
    plain = data.train.translations(index[:1], torch.tensor([[1.0, 0, 0, 0]]))[0, 0]
    differs = (stroked != plain).any(0)
    assert torch.equal(differs, data.train.rings[0]) and (stroked[:, differs] == -1).all()


def test_edits_set_one_attribute_and_clear_the_rest_of_an_exclusive_group():
    attributes = Attributes(("Black_Hair", "Blond_Hair", "Male"), torch.tensor([[1.0, 0, 1], [0, 1, 0]]), exclusive=(0, 1))
    assert [e.name for e in attributes.edits()] == ["Black_Hair", "Blond_Hair", "Male", "not_Male"]
    source = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    assert torch.equal(attributes.apply(source, Edit(1, 1, "Blond_Hair")), torch.tensor([[0.0, 1, 1], [0, 1, 0]]))
    assert torch.equal(attributes.apply(source, Edit(2, 0, "not_Male")), torch.tensor([[1.0, 0, 0], [0, 1, 0]]))


def test_a_view_compares_with_the_real_images_of_its_edit_and_knows_each_input_s_correct_outputs():
    data = benchmark()
    attributes = data.extras["attributes"]
    view = edited_view(data, Edit(3, 1, "stroke"))
    assert view.name == "shape_domains-stroke" and view.whole is data
    assert (attributes.of(view.train.labels)[:, 3] == 1).all()                               # real: stroked images only
    assert len(view.train) == int((attributes.of(data.train.labels)[:, 3] == 1).sum())
    rows = view.evaluation_split.batch(torch.arange(6))
    assert torch.equal(rows.samples, data.test.batch(torch.arange(6)).samples)               # the inputs: test images
    expected = attributes.of(data.test.labels[:6]).clone()
    expected[:, 3] = 1
    assert torch.equal(rows.inputs["target"], expected)
    targets = view.evaluation_split.mode_targets(torch.arange(6))
    assert torch.equal(targets, data.test.translations(torch.arange(6), expected))


@pytest.mark.parametrize("override,message", [
    ("dataset.modes=1", "dataset.modes .* must be 2..16"), ("dataset.colours=1", "dataset.colours .* must be 2..8"),
    ("dataset.copies=0", "dataset.copies .* at least 1"), ("dataset.test_fraction=0", "between 0 and 1"),
])
def test_benchmark_bad_options(override, message):
    with pytest.raises(UserError, match=message):
        benchmark(override)


def celeba(root, *overrides):
    return load_dataset(compose("model=stargan", "dataset=celeba", f"dataset.root={root}", "dataset.resolution=16",
                                "dataset.test_images=4", "dataset.workers=0", *overrides).dataset)


@pytest.mark.parametrize("in_memory", [True, False])
def test_celeba_reads_the_attribute_file_and_splits_as_stargan(tmp_path, in_memory):
    import random
    write_celeba(tmp_path)
    data = celeba(tmp_path, f"dataset.in_memory={str(in_memory).lower()}")
    attributes = data.extras["attributes"]
    assert attributes.names == ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
    assert attributes.exclusive == (0, 1, 2)                 # Gray_Hair is exclusive too but not selected
    order = list(range(24))
    random.seed(1234)
    random.shuffle(order)                                    # the reference's shuffle of the rows
    assert [p.name for p in data.test.paths] == [f"{i + 1:06d}.jpg" for i in order[:4]]
    assert len(data.train) == 20
    for split, rows in ((data.train, order[4:]), (data.test, order[:4])):
        for j, i in enumerate(rows):
            got = attributes.of(split.labels[j:j + 1])[0]
            want = torch.tensor([i % 4 == 0, i % 4 == 1, i % 4 == 2, i % 2 == 1, i % 3 == 0]).float()
            assert torch.equal(got, want), (i, got)
    # Centre crop 178 of the 218 x 178 image, resized: the red block (rows 20-60) is at the crop's top.
    image = data.test.batch(torch.tensor([0])).samples[0]
    red = round((image[0, 0, 0].item() + 1) * 127.5)
    assert abs(red - 10 * order[0] % 256) <= 3 and image.shape == (3, 16, 16)
    # Training flips from the augmentation seed: the same seed, the same pixels; some seed flips.
    first = data.train.batch(torch.tensor([0] * 8), torch.arange(8)).samples
    again = data.train.batch(torch.tensor([0] * 8), torch.arange(8)).samples
    assert torch.equal(first, again) and not all(torch.equal(first[0], f) for f in first)


@pytest.mark.parametrize("change,message", [
    ("attributes", "dataset.attributes \\['Bald'\\] not in the attribute file's header; it has: 5_o_Clock_Shadow"),
    ("count", "says 25 images on its first line but lists 24"),
    ("row", "line 5 is malformed: expected a file name and 7 values of 1 or -1"),
    ("missing_image", "1 of the 24 rows of the attribute file name images that are not in"),
    ("no_file", "list_attr_celeba.txt is missing"),
])
def test_celeba_bad_input_is_one_sentence(tmp_path, change, message):
    write_celeba(tmp_path)
    path = tmp_path / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    overrides = []
    if change == "attributes":
        overrides = ["dataset.attributes=[Bald]"]
    elif change == "count":
        path.write_text("\n".join(["25", *lines[1:]]))
    elif change == "row":
        lines[4] = lines[4].replace(" 1", " 0", 1) if " 1" in lines[4] else lines[4] + " 1"
        path.write_text("\n".join(lines))
    elif change == "missing_image":
        (tmp_path / "img_align_celeba" / "000003.jpg").unlink()
    else:
        path.unlink()
    with pytest.raises(UserError, match=message):
        celeba(tmp_path, *overrides)


def test_an_attribute_no_training_image_has_stops_before_training(tmp_path):
    """5_o_Clock_Shadow is -1 in every row of the test folder: its edit's outputs would have no real
    images to be compared with, which FID and NDB would only find out after training."""
    from msgan_cli.train.session import build_session
    write_celeba(tmp_path)
    with pytest.raises(UserError, match="No training image of celeba has 5_o_Clock_Shadow, .* leave 5_o_Clock_Shadow out"):
        build_session(compose("model=stargan", "dataset=celeba", f"dataset.root={tmp_path}", "dataset.resolution=16",
                              "dataset.test_images=4", "dataset.workers=0", "dataset.attributes=[Male,5_o_Clock_Shadow]"))
