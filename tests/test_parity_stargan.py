"""msgan's StarGAN (`model=stargan model.nz=0`) against the official code (yunjey/stargan, commit 94dd002),
step for step.

`tests/parity/stargan/reference.pt` holds one training iteration of the reference's `Solver.train` on CelebA,
run on the CPU from a known state with `n_critic=1`, so that D's update and then G's update run once: the
initial weights of G and D, the tiny CelebA folder it read (16 PNG images and the attribute file), the batch
its loader gave (images and their 5 attributes), the target labels (`rand_idx`, `label_trg`), the gradient
penalty's `alpha` and interpolates, and what the iteration computed (G's outputs, both of D's heads per D
call, every loss term of both updates, every gradient, the weights after each optimiser step);
`PROCEDURE.md` beside it says how it was recorded (nothing of the reference was patched). Here msgan's recipe
is built from the real config at the recording's options on the same files, given the same weights (through
the name map below), the same batch, permutation and alpha (injected where msgan draws them:
`torch.randperm` in `StarGAN.condition`, `torch.rand` in `GANLoss.penalty`), stepped as the loop steps it
(`Training.step`), and every number is compared with test_parity.py's tolerances (float32 rounding only;
that module's docstring gives them and why). Measured with 1 (2) threads: loss terms <= 1.7e-7 (3.3e-7)
relative, outputs <= 2.8e-7 of their largest value, gradients <= 8.1e-7 (1.4e-6) of the network's largest,
weights after Adam <= 4e-5 lr apart where the gradient's sign is certain. The 320 weights of G's first conv
below that (the attribute channels: a constant channel's contribution is removed by the instance norm but
at the zero-padded border, and Black_Hair is 0 in every row, so 294 of them have a gradient of exactly 0)
move by up to 1.7 lr apart, within the rule's 2 lr.

The recording's lambdas (cls 2, rec 5, gp 3) and learning rates (G 1e-4, D 2e-4) differ from each other and
from 1, so that a weight applied to the wrong term, or a learning rate given to the wrong network, shows;
`test_defaults_are_the_references` checks that msgan's defaults are the reference's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_parity import (
    assert_adam_step,
    assert_gradients,
    assert_loss,
    assert_near,
    assert_optimisers,
    recording,
    step_as_the_loop_does,
)

from conftest import compose
from msgan_cli.core.batch import Batch
from msgan_cli.data import load_dataset
from msgan_cli.models.stargan.networks import layers_for
from msgan_cli.train.step import Training, build_training, learning_rate_schedules

TEST_IMAGES = 8   # msgan's held-out rows of the 16: its training split must hold every edited value (recipe check)
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


# Name map: the reference's state-dict names -> msgan's (recipe-level) names. G's layers are numbered as the
# reference numbers them (`main.i`, a residual block's `main.i.main.j`); D's heads are `conv1` (real / fake
# patches) and `conv2` (attributes), msgan's `src` and `cls`.
D_HEADS = {"conv1": "src", "conv2": "cls"}


def stargan_name(network: str, name: str) -> str:
    if network == "G":
        return f"generator.{name}"
    layer, rest = name.split(".", 1)
    return f"discriminator.{D_HEADS.get(layer, layer)}.{rest}"


def msgan_state(network: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A reference state dict under msgan's names, without the running statistics of G's instance norms: the
    reference builds them with `track_running_stats=True` but never switches G to eval mode (solver.py has no
    `.eval()`, in training or in its test), so every image is normalised by its own statistics and the running
    ones are written, never read; msgan's norms keep none (networks.py)."""
    return {stargan_name(network, name): value for name, value in state.items() if not name.endswith(RUNNING_STATS)}


def load_reference_weights(training: Training, ref: dict) -> None:
    """The reference's initial weights into msgan's networks; strict, so every tensor of msgan's is mapped, and
    every tensor of the reference's but the running statistics (which belong to msgan's instance norms, one
    set each)."""
    recipe = training.session.recipe
    dropped = {name.rsplit(".", 1)[0] for name in ref["init"]["G"] if name.endswith(RUNNING_STATS)}
    norms = {name for name, module in recipe.generator.named_modules() if isinstance(module, torch.nn.InstanceNorm2d)}
    assert dropped == norms, f"running statistics of {sorted(dropped ^ norms)} are not instance norms of msgan's G"
    assert not any(name.endswith(RUNNING_STATS) for name in ref["init"]["D"])
    recipe.load_state_dict({**msgan_state("G", ref["init"]["G"]), **msgan_state("D", ref["init"]["D"])}, strict=True)


def write_reference_files(root: Path, ref: dict) -> Path:
    """The tiny CelebA the reference read: `img_align_celeba/00000i.png` (PNG, so that every decoder gives the
    same pixels) and `list_attr_celeba.txt` in CelebA's format."""
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    for i, pixels in enumerate(ref["files"]["pixels"]):
        Image.fromarray(pixels.numpy()).save(images / f"{i + 1:06d}.png")
    (root / "list_attr_celeba.txt").write_text(ref["files"]["attr_file"])
    return root


def overrides(root: Path, options: dict) -> list[str]:
    """msgan's options for the recording's (main.py's names on the right)."""
    return ["model=stargan", "model.nz=0", "dataset=celeba", f"dataset.root={root}", "dataset.workers=0",
            f"dataset.test_images={TEST_IMAGES}",
            f"dataset.resolution={options['image_size']}", f"dataset.crop={options['celeba_crop_size']}",
            f"model.width_g={options['g_conv_dim']}", f"model.width_d={options['d_conv_dim']}",
            f"model.residual_blocks={options['g_repeat_num']}", f"model.lambda_cls={options['lambda_cls']}",
            f"model.lambda_rec={options['lambda_rec']}", f"model.gradient_penalty={options['lambda_gp']}",
            f"model.n_critic={options['n_critic']}", f"model.optim.lr_g={options['g_lr']}",
            f"model.optim.lr_d={options['d_lr']}", f"trainer.batch_size={options['batch_size']}"]


def reference_batch(training: Training, ref: dict) -> Batch:
    """The reference's batch as msgan's: its images, and for labels the class (combination of attributes) of
    each image's attribute vector `label_org`."""
    by_class = training.session.recipe.attributes.by_class
    labels = torch.tensor([int((by_class == row).all(1).nonzero()) for row in ref["label_org"]])
    return Batch(ref["x_real"], labels)


def use_reference_draws(monkeypatch, ref: dict) -> dict[str, int]:
    """msgan's one draw of the target order (`torch.randperm` in `StarGAN.condition`) and of the penalty's
    mixing weights (`torch.rand` in `GANLoss.penalty`) return the reference's `rand_idx` and `alpha`; the counts
    of the draws are returned for the test to check that nothing else drew."""
    draws = {"randperm": 0, "rand": 0}

    def randperm(n, *args, **kwargs):
        assert n == len(ref["rand_idx"]) and not args, f"msgan drew randperm({n}, {args}); the reference randperm(4)"
        draws["randperm"] += 1
        return ref["rand_idx"].clone().to(kwargs.get("device"))

    def rand(*size, **kwargs):
        assert tuple(size) == tuple(ref["alpha"].shape), f"msgan drew rand{size}; the reference rand{tuple(ref['alpha'].shape)}"
        draws["rand"] += 1
        return ref["alpha"].clone().to(kwargs.get("device"), kwargs.get("dtype") or torch.float32)

    monkeypatch.setattr(torch, "randperm", randperm)
    monkeypatch.setattr(torch, "rand", rand)
    return draws


def stargan(tmp_path) -> tuple[dict, Training, Batch]:
    ref = recording("stargan")
    options = ref["options"]
    assert options["dataset"] == "CelebA" and options["c_dim"] == 5 and options["n_critic"] == 1
    cfg = compose(*overrides(write_reference_files(tmp_path / "celeba", ref), options))
    assert list(cfg.dataset.attributes) == options["selected_attrs"]
    assert cfg.model.gan_loss == "wgan-gp" and list(cfg.model.optim.betas) == [options["beta1"], options["beta2"]]
    assert layers_for(options["image_size"]) == options["d_repeat_num"]   # D's layers at this size: the reference's
    training = build_training(cfg)
    recipe = training.session.recipe
    assert recipe.latent_dim == 0 and recipe.sample_shape == (3, options["image_size"], options["image_size"])
    assert [phase.name for phase in training.phases] == ["D", "G"] and training.pairs == 1
    assert_optimisers(training, ref)
    load_reference_weights(training, ref)
    return ref, training, reference_batch(training, ref)


def assert_heads(output: tuple[torch.Tensor, torch.Tensor], expected: dict, what: str) -> None:
    src, cls = output
    assert_near(src, expected["src"], f"D's patch logits on {what}")
    assert_near(cls, expected["cls"], f"D's attribute logits on {what}")


def test_stargan_step_is_the_references(tmp_path, monkeypatch):
    """msgan's whole StarGAN step (Training.step: D's phase, then G's) computes what one iteration of the
    reference's Solver.train computes with n_critic 1: the target labels (the batch's own, permuted), D's update
    (D(x) and D(G(x, c')) with both heads, the WGAN-GP penalty on alpha x + (1 - alpha) G(x, c'), the attribute
    classification of the real images), then G's update through the updated D (adversarial term, classification
    of the fakes as the targets, reconstruction |G(G(x, c'), c) - x|)."""
    ref, training, batch = stargan(tmp_path)
    options, recipe = ref["options"], training.session.recipe
    gan = recipe.gan_loss
    draws = use_reference_draws(monkeypatch, ref)
    seen = step_as_the_loop_does(training, batch, monkeypatch, with_inputs=True)
    assert draws == {"randperm": 1, "rand": 1}, f"msgan drew {draws}: once each, as the reference"
    d, g = seen["D"], seen["G"]

    # D's update: one G call (the fakes), D on the real images, on the fakes, on the interpolates.
    (x, fake), = d["calls"]["generator"]
    assert torch.equal(x, ref["x_real"])
    assert_near(fake, ref["D"]["x_fake"], "G's outputs G(x, c')")
    (on_real, real), (on_fake, fake_out), (on_hat, hat) = d["calls"]["discriminator"]
    assert torch.equal(on_real, ref["x_real"]) and torch.equal(on_fake, fake)
    assert_near(on_hat, ref["D"]["x_hat"], "the penalty's interpolates")
    for what, output in (("real", real), ("fake", fake_out), ("x_hat", hat)):
        assert_heads(output, ref["D"]["calls"][what], what)
    assert_loss(gan.as_real(real[0]), ref["D"]["loss_real"], "D's term on the real images")
    assert_loss(gan.as_fake(fake_out[0]), ref["D"]["loss_fake"], "D's term on the fakes")
    assert_loss(d["terms"]["Loss/D/adv"], ref["D"]["loss_real"] + ref["D"]["loss_fake"], "D's adversarial terms")
    assert_loss(d["terms"]["Loss/D/cls"], options["lambda_cls"] * ref["D"]["loss_cls"], "D's classification term")
    assert_loss(d["terms"]["Loss/D/penalty"], options["lambda_gp"] * ref["D"]["loss_gp"], "D's gradient penalty")
    assert_loss(d["terms"]["Loss/D/total"], ref["D"]["loss"], "D's objective")
    d_grads = msgan_state("D", ref["D"]["grads"])
    assert_gradients(d["grads"], d_grads, "D's gradient")
    assert_adam_step(d["after"], msgan_state("D", ref["D"]["after"]), d_grads, options["d_lr"], "D after its step")

    # G's update: the same fakes (the reference calls G(x, c') again with G unchanged: the same tensor, checked
    # when recording), D's updated heads on them, one G call for the way back.
    (on_fake, fake_out), = g["calls"]["discriminator"]
    assert torch.equal(on_fake, fake)
    assert_heads(fake_out, ref["G"]["calls"]["fake"], "the fakes in G's update")
    (back_in, reconstruction), = g["calls"]["generator"]
    assert torch.equal(back_in, fake)
    assert_near(reconstruction, ref["G"]["x_reconst"], "the reconstructions G(G(x, c'), c)")
    assert_loss(g["terms"]["Loss/G/adv"], ref["G"]["loss_fake"], "G's adversarial term")
    assert_loss(g["terms"]["Loss/G/cls"], options["lambda_cls"] * ref["G"]["loss_cls"], "G's classification term")
    assert_loss(g["terms"]["Loss/G/rec"], options["lambda_rec"] * ref["G"]["loss_rec"], "G's reconstruction term")
    assert_loss(g["terms"]["Loss/G/total"], ref["G"]["loss"], "G's objective")
    g_grads = msgan_state("G", ref["G"]["grads"])
    assert_gradients(g["grads"], g_grads, "G's gradient")
    assert_adam_step(g["after"], msgan_state("G", ref["G"]["after"]), g_grads, options["g_lr"], "G after its step")


def test_target_labels_are_the_batchs_own_permuted(tmp_path, monkeypatch):
    """msgan's condition for the recorded batch, with the reference's permutation: the target attributes are
    the reference's `label_trg = label_org[rand_idx]`, the source ones its `label_org` (the reconstruction's
    target and D's classification labels), the image the batch's."""
    ref, training, batch = stargan(tmp_path)
    draws = use_reference_draws(monkeypatch, ref)
    condition = training.session.recipe.condition(batch)
    assert draws["randperm"] == 1
    assert torch.equal(condition["target"], ref["label_trg"]) and torch.equal(condition["source"], ref["label_org"])
    assert torch.equal(condition["image"], ref["x_real"])


def test_celeba_reads_the_batch_the_reference_read(tmp_path):
    """msgan's `dataset=celeba` on the files the reference read gives its batch: the reference's loader (no
    flip: the recording's loader mode, PROCEDURE.md) yields the shuffled rows in order, the fixed batch then
    `x_real`, rows 4 to 7; msgan's held-out split is the same shuffled rows, so its rows 4 to 7 are those
    images, centre-cropped, resized and scaled to [-1, 1] alike (float rounding of (x / 255 - 0.5) / 0.5
    against x / 127.5 - 1), with the same attributes."""
    ref = recording("stargan")
    data = load_dataset(compose(*overrides(write_reference_files(tmp_path / "celeba", ref), ref["options"])).dataset)
    batch = data.test.batch(torch.arange(4, 8))
    assert_near(batch.samples, ref["x_real"], "msgan's decoded images")
    assert torch.equal(data.extras["attributes"].of(batch.labels), ref["label_org"])


def test_defaults_are_the_references():
    """msgan's StarGAN defaults against main.py's (recorded as `defaults`): the loss weights, n_critic, Adam's
    betas, G's residual blocks, the batch size, CelebA's attributes, crop and size, and D's layers at that size.
    The widths (16, the reference's 64) and learning rates (5e-4, its 1e-4) are the CPU benchmark's and stated
    in docs/models/stargan.md ("Differences from the reference"); its CelebA command sets the reference's."""
    defaults = recording("stargan")["defaults"]
    cfg = compose("model=stargan", "dataset=celeba", "dataset.root=unused")
    model, dataset = cfg.model, cfg.dataset
    assert model.nz == 0 and model.gan_loss == "wgan-gp"
    assert (model.lambda_cls, model.lambda_rec, model.gradient_penalty) == \
        (defaults["lambda_cls"], defaults["lambda_rec"], defaults["lambda_gp"])
    assert model.n_critic == defaults["n_critic"] and list(model.optim.betas) == [defaults["beta1"], defaults["beta2"]]
    assert model.residual_blocks == defaults["g_repeat_num"] and model.batch_size == defaults["batch_size"]
    assert list(dataset.attributes) == defaults["selected_attrs"] and len(dataset.attributes) == defaults["c_dim"]
    assert dataset.crop == defaults["celeba_crop_size"] and dataset.resolution == defaults["image_size"]
    assert layers_for(dataset.resolution) == defaults["d_repeat_num"]
    assert (model.width_g, model.width_d, defaults["g_conv_dim"], defaults["d_conv_dim"]) == (16, 16, 64, 64)
    assert (model.optim.lr_g, model.optim.lr_d, defaults["g_lr"], defaults["d_lr"]) == (5e-4, 5e-4, 1e-4, 1e-4)


def test_n_critic_schedule_and_phase_order_are_the_references(tmp_path):
    """The reference's loop run for 12 iterations at n_critic 3 (recorded as `schedule`: each optimiser step in
    order, with its iteration): D's update every iteration, G's after it when (i + 1) % n_critic == 0. msgan's
    phases at that n_critic are due in the same steps and order, and at the default, 5, by the same rule."""
    ref = recording("stargan")
    schedule = ref["schedule"]
    n_critic = schedule["options"]["n_critic"]
    assert n_critic != ref["defaults"]["n_critic"] and n_critic > 1
    root = write_reference_files(tmp_path / "celeba", ref)
    phases = build_training(compose(*overrides(root, ref["options"]), f"model.n_critic={n_critic}")).phases
    ours = [(i, phase.name) for i in range(schedule["options"]["num_iters"]) for phase in phases if phase.due(i)]
    assert ours == [(i, phase) for i, phase, _ in schedule["trace"]]
    default = ref["defaults"]["n_critic"]
    phases = build_training(compose(*overrides(root, ref["options"]), f"model.n_critic={default}")).phases
    for i in range(4 * default):
        assert [phase.name for phase in phases if phase.due(i)] == (["D", "G"] if (i + 1) % default == 0 else ["D"]), i


def reference_learning_rate(i: int, lr: float, options: dict) -> float:
    """The learning rate of the reference's iteration i (0-based), as solver.py decays it at the end of an
    iteration: `lr -= lr0 / num_iters_decay` after each one with (i + 1) % lr_update_step == 0 and
    (i + 1) > num_iters - num_iters_decay."""
    num_iters, decay, every = options["num_iters"], options["num_iters_decay"], options["lr_update_step"]
    decays = sum(1 for j in range(every, i + 1, every) if j > num_iters - decay)
    return lr - decays * lr / decay


def test_learning_rate_schedule_the_codes_is_null_the_default_the_papers(tmp_path):
    """The learning rate over the reference's iterations. `reference_learning_rate` reads solver.py's decay; it
    gives every learning rate of the recorded 12-iteration run (`schedule`). At the reference's defaults (200,000
    iterations, num_iters_decay 100,000, lr_update_step 1,000) the code subtracts lr0 / 100,000 once per 1,000
    iterations of the second half, 99 times before its last iteration: the learning rate ends at 0.99901 lr0
    where the paper's decays to 0. `model.lr_decay_from=null` (constant) is within 0.1 % of the code's at every
    iteration; msgan's default for StarGAN, 0.5, is the paper's schedule, linear to 0 over the second half:
    0.5 lr0 at iteration 150,000, where the code's is 0.9995 lr0."""
    ref = recording("stargan")
    schedule = ref["schedule"]
    for i, phase, lr in schedule["trace"]:
        lr0 = schedule["options"]["d_lr" if phase == "D" else "g_lr"]
        assert reference_learning_rate(i, lr0, schedule["options"]) == pytest.approx(lr, rel=1e-12), (i, phase)
    defaults, lr0 = ref["defaults"], ref["defaults"]["g_lr"]
    num_iters = defaults["num_iters"]
    steps = np.unique(np.r_[0:num_iters:997, num_iters // 2 - 1:num_iters // 2 + 2000, 150_000, num_iters - 1001:num_iters])
    reference = np.array([reference_learning_rate(int(i), lr0, defaults) for i in steps])
    assert reference.min() == reference[-1] == pytest.approx(0.99901 * lr0, rel=1e-9)
    assert float(reference[steps == 150_000][0]) == pytest.approx(0.9995 * lr0, rel=1e-9)

    assert compose("model=stargan").model.lr_decay_from == 0.5
    optimizers = build_training(compose(*overrides(write_reference_files(tmp_path / "celeba", ref),
                                                   ref["options"]))).optimizers
    assert learning_rate_schedules(optimizers, num_iters, None) == {}              # null: constant lr0
    assert np.abs(lr0 - reference).max() == pytest.approx(0.00099 * lr0, rel=1e-9)
    paper = learning_rate_schedules(optimizers, num_iters, 0.5)["generator"].lr_lambdas[0]
    ours = np.array([lr0 * paper(int(i)) for i in steps])
    assert np.all(ours[steps <= num_iters // 2] == lr0)
    assert float(ours[steps == 150_000][0]) == pytest.approx(0.5 * lr0)
    assert ours[-1] == pytest.approx(lr0 / 100_000)
