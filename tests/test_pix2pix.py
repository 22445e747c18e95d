"""`model=pix2pix` as MSGAN used it: the reference's networks, its training step, every shipped
regulariser trained on it or refused with a sentence, resume, sample grids and its bad inputs."""
import math
import signal

import pytest
import torch

from conftest import (
    SHIPPED_REGULARIZERS,
    TINY,
    applicable,
    compose,
    refusals,
    regularizer_params,
    run_msgan,
    selecting,
    skip_if_refused,
    state_of,
    tensorboard_tags,
    train_run,
)
from msgan_cli.core.context import StepContext
from msgan_cli.errors import UserError
from msgan_cli.models.pix2pix.networks import PatchDiscriminator, UNetGenerator, downsample, patch_layers
from msgan_cli.regularizers import REGULARIZERS
from msgan_cli.train import loop
from msgan_cli.train.session import build_session
from msgan_cli.train.step import phases_and_optimizers

PIX2PIX = ["model=pix2pix", "model.width=4", "trainer.batch_size=4"]


def test_networks_are_the_reference_unet_256_and_basic_256_multi():
    """Parameter counts and patch sizes of MSGAN's G_Unet_add_all (unet_256, nz 8, ngf 64) and
    D_NLayersMulti (basic_256_multi, num_Ds 2), as built by the reference code."""
    generator = UNetGenerator(3, 3, nz=8, width=64, resolution=256)
    assert sum(p.numel() for p in generator.parameters()) == 54_794_627
    full, low = PatchDiscriminator(6, 64, patch_layers(256, 3)), PatchDiscriminator(6, 32, patch_layers(128, 3))
    assert [sum(p.numel() for p in d.parameters()) for d in (full, low)] == [2_767_809, 695_777]
    pair = torch.zeros(1, 6, 256, 256)
    assert full(pair).shape == (1, 1, 30, 30) and low(downsample(pair)).shape == (1, 1, 14, 14)
    # z enters the down path of all 8 levels (never the up path).
    down_convs = [m for name, m in generator.named_modules() if name.endswith("down.0") or name.endswith("down.1")
                  if isinstance(m, torch.nn.Conv2d)]
    assert [c.in_channels for c in down_convs] == [3 + 8, 64 + 8, 128 + 8, 256 + 8, 512 + 8, 512 + 8, 512 + 8, 512 + 8]


def test_levels_follow_the_resolution():
    for resolution, levels in ((32, 5), (64, 6), (256, 8)):
        generator = UNetGenerator(1, 3, nz=2, width=4, resolution=resolution)
        convs = [m for m in generator.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == levels
        assert generator(torch.zeros(2, 1, resolution, resolution), torch.zeros(2, 2)).shape == (2, 3, resolution, resolution)


def test_the_training_step_is_the_references():
    """G first, then D; D: LSGAN on both fakes + the real pair counted twice, summed over both scales;
    G: LSGAN on both fakes + 10 x L1 on the first fake only (+ mode seeking)."""
    session = build_session(compose(*PIX2PIX, "reg=ms"))
    recipe = session.recipe
    phases, _ = phases_and_optimizers(session)
    assert [p.name for p in phases] == ["G", "D"]
    assert set(next(p for p in phases if p.name == "D").networks) == {"discriminator", "discriminator_low"}
    batch = session.data.train.batch(torch.arange(4))
    ctx = StepContext(recipe, batch, step=0, samples_per_condition=2)
    fake = ctx.generated()
    (fake1, _), (fake2, _) = fake.group(0), fake.group(1)
    A, B = batch.inputs, batch.samples

    def scales(x):
        pair = torch.cat([A, x], 1)
        return [recipe.discriminator(pair), recipe.discriminator_low(downsample(pair))]

    lsgan = lambda logits, target: sum((logit - target).pow(2).mean() for logit in logits)  # noqa: E731
    d_expected = lsgan(scales(fake1), 0) + lsgan(scales(fake2), 0) + 2 * lsgan(scales(B), 1)
    g_expected = lsgan(scales(fake1), 1) + lsgan(scales(fake2), 1)
    d_terms, g_terms = ctx.model_terms("D"), ctx.model_terms("G")   # as the step counts them (pairs doubled)
    assert d_terms["adv"].item() == pytest.approx(d_expected.item(), rel=1e-5)
    assert g_terms["adv"].item() == pytest.approx(g_expected.item(), rel=1e-5)
    assert g_terms["l1"].item() == pytest.approx(10 * (fake1 - B).abs().mean().item(), rel=1e-5)


FULL = [*PIX2PIX, "eval.per_input.inputs=8", "eval.per_input.samples=4", "eval.modes_per_input.samples_per_input=12"]


@pytest.mark.parametrize("reg", regularizer_params("none", "ms", with_none=True))
def test_every_regulariser_trains_on_pix2pix_or_refuses(tmp_path, reg):
    """Every registered regulariser that applies trains and is evaluated on Pix2Pix (with the others:
    test_training.py's compositions); one that refuses it is skipped with its sentence."""
    skip_if_refused(reg, *PIX2PIX)
    metrics = train_run(tmp_path, *FULL, *selecting(reg))
    assert all(math.isfinite(v) for v in metrics.values())
    assert {"modes_per_input/modes", "modes_per_input/high_quality", "pairwise_div/pixel_l1", "fid/classifier",
            "ndb_jsd/ndb"} <= set(metrics)
    assert metrics["modes_per_input/ideal_modes"] > 3   # 12 exact draws per input find 3.87 of the 4 modes on average
    scalars = tensorboard_tags(tmp_path)["scalars"]
    assert {"Loss/G/adv", "Loss/G/l1", "Loss/D/adv"} <= scalars
    for name in SHIPPED_REGULARIZERS:   # a term of its own where it adds one, and only when selected
        regularizer = REGULARIZERS[name]
        if regularizer.adds_term():
            assert any(t.startswith(f"Loss/{regularizer.phase}/{name}") for t in scalars) == (name == reg), name
    # both scales' layers, named per network (also when sn or sr re-parametrise them)
    assert any(t.startswith("Spectrum/discriminator.") for t in scalars)
    assert any(t.startswith("Spectrum/discriminator_low.") for t in scalars)


def test_the_regularisers_pix2pix_takes_are_not_skipped_away():
    """The test above skips what Pix2Pix refuses; seven regularisers apply today (divco, dpm, dsgan, ms, ndiv, sn, sr)."""
    assert len(applicable(*PIX2PIX)) >= 7, refusals(*PIX2PIX)


@pytest.mark.parametrize("reg,message", [
    ("mdgan", "reg=mdgan needs an encoder slot"),
    ("pacgan", "reg=pacgan acts on a single discriminator; model pix2pix has 2"),
    ("unrolled", "reg=unrolled acts on a single discriminator; model pix2pix has 2"),
])
def test_regularisers_that_cannot_act_on_pix2pix_say_so(tmp_path, reg, message):
    with pytest.raises(UserError, match=message):
        train_run(tmp_path / "run", *PIX2PIX, f"reg={reg}")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_without_a_latent_it_is_plain_pix2pix(tmp_path):
    with pytest.raises(UserError, match="reg=ms needs a latent input, but model pix2pix has none: set model.nz"):
        train_run(tmp_path / "ms", *PIX2PIX, "model.nz=0", "reg=ms")
    metrics = train_run(tmp_path / "plain", *FULL, "model.nz=0", "reg=none")
    assert "pairwise_div/pixel_l1" not in metrics          # no latent: no two outputs for one input to compare
    assert metrics["modes_per_input/modes"] <= 1.0         # one output per input: at most one mode each


@pytest.mark.parametrize("overrides,message", [
    (["model=dcgan"], "model=dcgan generates from a class (or nothing), but dataset 'outline_fill' pairs each target "
                      "with an input image: use a model conditioned on it (model=pix2pix or drit for images"),
    (["model=pix2pix", "dataset=digits"], "model=pix2pix translates an input image into an output, but dataset "
                                          "'digits' has no input images"),
    (["model=pix2pix", "dataset.resolution=24"], "power-of-two size"),
    (["model=pix2pix", "model.discriminator.scales=3"], "model.discriminator.scales must be 1 or 2"),
    (["model=pix2pix", "trainer.lr_decay_from=1.5"], "trainer.lr_decay_from must be a fraction"),
])
def test_incompatible_choices_stop_before_training(tmp_path, overrides, message):
    dataset = [] if "dataset=digits" in overrides else ["dataset=outline_fill"]
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train_run(tmp_path / "run", *dataset, *overrides)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_class_conditional_dcgan_may_still_model_the_benchmark_targets_if_asked(tmp_path):
    """model.conditional=true on the benchmark: a DCGAN conditioned on the targets' classes (shape x fill),
    measured by the classifier of those classes."""
    session = build_session(compose("dataset=outline_fill", "model.conditional=true"))
    assert session.recipe.condition_kind == "class" and session.recipe.num_classes == session.data.num_classes > 1
    metrics = train_run(tmp_path, "dataset=outline_fill", "model.conditional=true", "eval.metrics=[class_acc]")
    assert 0.0 <= metrics["class_acc"] <= 1.0 and "class_acc/classifier_test_acc" in metrics


class StopAfter:
    """Stands in for the loop's StopSignal: 'a SIGTERM arrives' after `steps` steps."""

    def __init__(self, steps: int):
        self.checks, self.steps, self.received = 0, steps, None

    def any_rank(self) -> bool:
        self.checks += 1
        if self.checks > self.steps:
            self.received = signal.SIGTERM
        return self.received is not None

    def cause(self) -> str:
        return signal.Signals(self.received).name

    def restore(self) -> None:
        pass


def stopped_then_resumed(run_dir, stop_at: int, overrides: list[str], monkeypatch) -> dict:
    """Train until a stop signal at `stop_at`, then run the same command again to the end."""
    with monkeypatch.context() as patch:
        patch.setattr(loop, "StopSignal", lambda: StopAfter(stop_at))
        with pytest.raises(SystemExit):
            train_run(run_dir, *overrides)
    assert state_of(run_dir)["step"] == stop_at
    train_run(run_dir, *overrides)
    return state_of(run_dir)


def assert_same_training(whole: dict, resumed: dict) -> None:
    assert whole["step"] == resumed["step"]
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    for name in whole["optimizers"]:
        assert whole["optimizers"][name]["param_groups"][0]["lr"] == resumed["optimizers"][name]["param_groups"][0]["lr"]


@pytest.mark.slow   # a model's own resume, bit for bit: the fast tier keeps test_checkpoint's
def test_stop_and_resume_equals_uninterrupted_with_the_lr_decay(tmp_path, monkeypatch):
    common = [*PIX2PIX, "reg=ms", "trainer.max_steps=8", "trainer.lr_decay_from=0.25", "trainer.lr_decay_every=step",
              "eval.metrics=[]"]   # per step: 8 steps are a fraction of the benchmark's epoch
    train_run(tmp_path / "whole", *common)
    whole = state_of(tmp_path / "whole")
    assert whole["optimizers"]["generator"]["param_groups"][0]["lr"] == 0.0   # decayed to 0 at the last step
    assert_same_training(whole, stopped_then_resumed(tmp_path / "resumed", 5, common, monkeypatch))


def test_sample_grid_and_msgan_sample_show_input_truth_and_outputs(tmp_path):
    run = tmp_path / "run"
    result = run_msgan("train", *TINY, *FULL, "reg=ms", "eval.metrics=[]", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-2000:]
    from PIL import Image
    # 8 rows (held-out inputs) of 2 + 8 cells of 32 px with 2 px padding
    assert Image.open(run / "samples" / "final.png").size == (2 + 10 * 34, 2 + 8 * 34)
    sampled = run_msgan("sample", f"run={run}", "n=5", "inputs=3")
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    path = run / "samples" / "sample-step4-inputs.png"
    assert Image.open(path).size == (2 + 7 * 34, 2 + 3 * 34)
    one = run_msgan("sample", f"run={run}", "condition=2")
    assert one.returncode == 0 and Image.open(run / "samples" / "sample-step4-input2.png").size == (2 + 10 * 34, 36)
    npz = run_msgan("sample", f"run={run}", "n=4", "inputs=3", "format=npz")
    assert npz.returncode == 0, npz.stderr[-2000:]
    import numpy as np
    arrays = np.load(run / "samples" / "sample-step4-inputs.npz")
    assert arrays["images"].shape == (12, 32, 32, 3) and arrays["inputs"].shape == (12, 32, 32, 1)
    assert arrays["input_index"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    images = run_msgan("sample", f"run={run}", "n=4", "inputs=3", "format=images")
    files = sorted((run / "samples" / "sample-step4-inputs").glob("*.png"))
    assert images.returncode == 0 and len(files) == 12 and files[4].name == "00004-input1.png", images.stderr[-2000:]
    assert np.abs(np.asarray(Image.open(files[5])).astype(int) - arrays["images"][5]).max() <= 1
    wrong = run_msgan("sample", f"run={run}", "condition=100000")
    assert wrong.returncode == 2 and "index of a held-out input" in wrong.stderr and "Traceback" not in wrong.stderr
