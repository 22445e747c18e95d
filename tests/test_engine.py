"""The engine's shared pieces, for every model: conditions of any shape, several outputs, several
discriminators, the GAN loss flavours and the learning-rate schedule. A model with two outputs and two
discriminators is defined here, outside the project, and trains without touching any project file."""
import math

import pytest
import torch
from hydra.core.config_store import ConfigStore
from torch import nn

from conftest import compose, state_of, tensorboard_tags, train_run
from msgan_cli.core.batch import concat, repeat_rows, rows, take
from msgan_cli.core.context import StepContext
from msgan_cli.core.registry import register_model
from msgan_cli.models.adversarial import AdversarialRecipe
from msgan_cli.models.gan_loss import GANLoss
from msgan_cli.regularizers import mode_seeking_loss
from msgan_cli.train.session import build_session
from msgan_cli.train.spectrum import normalised_spectra
from msgan_cli.train.step import learning_rate_schedules

# --- conditions of any kind -------------------------------------------------------------------

def test_conditions_of_any_structure_are_taken_repeated_and_joined_by_rows():
    condition = {"image": torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2), "domain": torch.tensor([0, 1, 2, 3])}
    assert rows(condition) == 4 and rows(None) == 0
    first_two = take(condition, slice(0, 2))
    assert first_two["domain"].tolist() == [0, 1] and first_two["image"].shape == (2, 1, 2, 2)
    doubled = repeat_rows(first_two, 2)   # the layout of two latents per condition: rows 0, 1, 0, 1
    assert doubled["domain"].tolist() == [0, 1, 0, 1]
    assert torch.equal(doubled["image"][2], condition["image"][0])
    joined = concat([first_two, take(condition, torch.tensor([3]))])
    assert joined["domain"].tolist() == [0, 1, 3]
    assert repeat_rows(None, 3) is None and take(None, slice(0, 1)) is None


def test_pairs_repeat_image_conditions_for_each_latent():
    session = build_session(compose("model=pix2pix", "reg=ms", "model.width=4"))
    batch = session.data.train.batch(torch.arange(3))
    ctx = StepContext(session.recipe, batch, step=0, samples_per_condition=2)
    generated = ctx.generated()
    assert generated.condition.shape == (6, 1, 32, 32)
    assert torch.equal(generated.condition[:3], batch.inputs) and torch.equal(generated.condition[3:], batch.inputs)
    fake1, fake2, z1, z2 = ctx.pair()
    assert fake1.shape == (3, 3, 32, 32) and not torch.equal(z1, z2)


# --- GAN loss flavours ------------------------------------------------------------------------

REAL, FAKE = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -2.0])
softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731


@pytest.mark.parametrize("flavour,d_loss,g_loss", [
    ("bce", (softplus(-2) + softplus(1)) / 2 + (softplus(0.5) + softplus(-2)) / 2, (softplus(-0.5) + softplus(2)) / 2),
    ("lsgan", (1 + 4) / 2 + (0.25 + 4) / 2, (0.25 + 9) / 2),
    ("hinge", (0 + 2) / 2 + (1.5 + 0) / 2, 0.75),
    ("wgan-gp", -0.75 - 0.5, 0.75),
])
def test_gan_loss_flavours_known_values(flavour, d_loss, g_loss):
    loss = GANLoss(flavour)
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(d_loss)
    assert loss.generator(FAKE).item() == pytest.approx(g_loss)
    # Several discriminators: the terms are summed (BicycleGAN's GANLoss over its list of scales).
    assert loss.discriminator([REAL, REAL], [FAKE, FAKE]).item() == pytest.approx(2 * d_loss)


def test_wgan_gradient_penalty_of_a_linear_critic():
    """A linear critic has gradient w everywhere: the penalty is weight x (|w| - 1)^2 per critic."""
    w3, w1 = torch.tensor([2.0, 2.0, 1.0]), torch.tensor([0.6, 0.8, 0.0])     # norms 3 and 1
    real, fake = torch.randn(5, 3), torch.randn(5, 3)
    loss = GANLoss("wgan-gp", gradient_penalty=10.0)
    assert loss.penalty(lambda x: x @ w3, real, fake).item() == pytest.approx(10 * 4)
    assert loss.penalty(lambda x: [x @ w3, x @ w1], real, fake).item() == pytest.approx(10 * 4, abs=1e-5)
    assert GANLoss("lsgan").penalty(lambda x: x @ w3, real, fake) is None


def test_every_flavour_trains_and_is_the_one_applied(tmp_path):
    """model.gan_loss reaches the objective: from the same seed and data (the same first batch and
    initial weights), each flavour's first D loss is its own, and the four runs end with four different
    generators. (Each flavour's formula is checked on known values above.)"""
    generators, first_d_loss = {}, {}
    for flavour in ("bce", "lsgan", "hinge", "wgan-gp"):
        run = tmp_path / flavour
        train_run(run, f"model.gan_loss={flavour}", "reg=none", "trainer.log_every=1", "eval.metrics=[]")
        generators[flavour] = state_of(run)["model"]
        first_d_loss[flavour] = loss_at_step(run, "Loss/D/adv", 1)
    assert len(set(first_d_loss.values())) == 4, first_d_loss
    assert first_d_loss["lsgan"] >= 0 and first_d_loss["hinge"] >= 0 and first_d_loss["bce"] >= 0
    names = [k for k in generators["bce"] if k.startswith("generator.") and generators["bce"][k].is_floating_point()]
    for a, b in [("bce", "lsgan"), ("bce", "hinge"), ("bce", "wgan-gp"), ("lsgan", "hinge"), ("lsgan", "wgan-gp"),
                 ("hinge", "wgan-gp")]:
        assert any(not torch.equal(generators[a][k], generators[b][k]) for k in names), (a, b)


def loss_at_step(run, tag: str, step: int) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return next(event.value for event in events.Scalars(tag) if event.step == step)


def test_unknown_flavour_is_refused(tmp_path):
    from msgan_cli.errors import UserError
    with pytest.raises(UserError, match="model.gan_loss must be one of bce, lsgan, hinge, wgan-gp"):
        train_run(tmp_path, "model.gan_loss=wasserstein")


# --- learning-rate schedule -------------------------------------------------------------------

def test_linear_decay_keeps_the_rate_then_reaches_zero_at_the_end():
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = learning_rate_schedules({"g": optimizer}, max_steps=10, decay_from=0.5)["g"]
    rates = []
    for _ in range(10):
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0])
    assert learning_rate_schedules({"g": optimizer}, 10, None) == {}


def test_the_reference_codes_decay_once_per_epoch_and_end_above_zero():
    """BicycleGAN's / MSGAN's Pix2Pix and DRIT's 'lambda' rule, 1 - max(0, e - n_const) / (n_decay + 1) at
    epoch e: at 10 epochs of 2 steps, half constant, the last epoch runs at 2 / 6 of the rate (Pix2Pix's
    200 epochs: 2/101), and the rate changes only between epochs."""
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = learning_rate_schedules({"g": optimizer}, max_steps=20, decay_from=0.5, every="epoch",
                                       steps_per_epoch=2)["g"]
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(19):
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    per_epoch = [1, 1, 1, 1, 1, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6]
    assert rates == pytest.approx([rate for rate in per_epoch for _ in range(2)])


def test_a_run_saved_before_the_decay_unit_existed_resumes_as_it_ran(tmp_path):
    """A run saved without trainer.lr_decay_every decayed every step: it is read so (config.ADDED_SINCE), so
    it resumes with the schedule it had, and a Pix2Pix run, whose default is now the reference's per-epoch
    rule, is refused rather than continued on another schedule."""
    from msgan_cli.config import config_changes, in_current_form
    from msgan_cli.errors import UserError
    saved = {"trainer": {"max_steps": 4, "lr_decay_from": 0.5}, "model": {"name": "pix2pix", "lr_decay_from": 0.5}}
    current = in_current_form(saved)
    assert current["trainer"]["lr_decay_every"] == current["model"]["lr_decay_every"] == "step"
    now = {"trainer": {"max_steps": 4, "lr_decay_from": 0.5, "lr_decay_every": "epoch"},
           "model": {"name": "pix2pix", "lr_decay_from": 0.5, "lr_decay_every": "epoch"}}
    assert config_changes(saved, now) == ["model.lr_decay_every: step -> epoch", "trainer.lr_decay_every: step -> epoch"]
    with pytest.raises(UserError, match="trainer.lr_decay_every must be step or epoch"):
        learning_rate_schedules({}, 10, 0.5, every="batch")


# --- a model with two outputs and two discriminators, defined here ------------------------------

class TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten())
        self.head = nn.Linear(4 * 8 * 8, 1)

    def forward(self, x):
        return self.head(self.features(x)).flatten()


@register_model("two_outputs_test")
class TwoOutputs(AdversarialRecipe):
    """G gives a coarse and a final 8x8 image; one D judges each (a StackGAN-like shape)."""

    output_names = ("coarse", "image")
    primary_outputs = ("image",)
    discriminator_names = ("discriminator", "discriminator_coarse")

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        self.latent_dim = cfg.nz
        self.generator = nn.Sequential(nn.Linear(cfg.nz, 2 * 64), nn.Tanh())
        self.discriminator, self.discriminator_coarse = TinyD(), TinyD()

    def generate(self, z, condition):
        coarse, image = self.generator(z).view(len(z), 2, 1, 8, 8).unbind(1)
        return {"coarse": coarse, "image": image}

    def discriminate(self, x, condition, discriminator=None):
        return (discriminator or self.discriminator)(x)

    def phase_losses(self, phase, ctx):
        fake = ctx.generated()
        pairs = [(self.discriminator, fake.outputs["image"]), (self.discriminator_coarse, fake.outputs["coarse"])]
        if phase == "D":
            return {"adv": sum(self.gan_loss.discriminator(d(ctx.real), d(x.detach())) for d, x in pairs)}
        return {"adv": sum(self.gan_loss.generator(d(x)) for d, x in pairs)}


ConfigStore.instance().store(group="model", name="two_outputs_test", package="model", node={
    "name": "two_outputs_test", "nz": 4, "batch_size": 16, "gan_loss": "bce", "lr_decay_from": None,
    "optim": {"lr_g": 1e-3, "lr_d": 1e-3, "betas": [0.5, 0.999], "weight_decay": 0.0}})
TWO_OUTPUTS = ["model=two_outputs_test", "dataset.resolution=8", "eval.metrics=[]"]


@pytest.mark.parametrize("outputs", ["primary", "all"])
def test_pair_regularisers_act_on_the_primary_output_or_on_all(outputs):
    session = build_session(compose(*TWO_OUTPUTS, "reg=ms", f"reg.ms.outputs={outputs}"))
    ctx = StepContext(session.recipe, session.data.train.batch(torch.arange(6)), step=0, samples_per_condition=2)
    expected = mode_seeking_loss(*ctx.pair("image"))
    if outputs == "all":
        expected = expected + mode_seeking_loss(*ctx.pair("coarse"))
    assert session.regularizers[0].loss(ctx).item() == pytest.approx(expected.item())


def test_spectral_methods_act_on_every_discriminator(tmp_path):
    session = build_session(compose(*TWO_OUTPUTS, "reg=sr"))
    layers = [name for name, _ in session.recipe.discriminator_layers()]
    assert {name.split(".")[0] for name in layers} == {"discriminator", "discriminator_coarse"}
    assert all(hasattr(module, "parametrizations") for _, module in session.recipe.discriminator_layers())
    assert set(normalised_spectra(session.recipe)) == {"discriminator.features.0", "discriminator_coarse.features.0"}

    train_run(tmp_path, *TWO_OUTPUTS, "reg=[ms,sr]", "reg.sr.every=1", "reg.ms.outputs=all")
    scalars = tensorboard_tags(tmp_path)["scalars"]
    assert {"Loss/G/ms", "Diag/sr/projections"} <= scalars
    assert {f"Spectrum/{net}.features.0/share_above_0.2" for net in ("discriminator", "discriminator_coarse")} <= scalars
    # SR projected each D's hidden layer (its top half of normalised singular values is 1), not its head.
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["model"]
    for net in ("discriminator", "discriminator_coarse"):
        weight = state[f"{net}.features.0.parametrizations.weight.original"].reshape(4, -1).double()
        s = torch.linalg.svdvals(weight)
        assert torch.allclose(s[:2] / s[0], torch.ones(2, dtype=torch.float64), atol=1e-5), net


def test_values_a_stopped_run_reported_are_not_logged_by_the_next_run_in_the_process():
    """A run that stops between two log ticks (a divergence, a refused option) leaves its last reported
    values in the process-wide collector; a later run in the same process (a notebook, the tests) logged
    them as its own: NaN losses of the diverged run in its first log tick."""
    from msgan_cli.core import stats
    from msgan_cli.train.runner import StepRunner
    stats.report("Loss/G/left_by_an_earlier_run", float("nan"))
    runner = StepRunner(compose("reg=none", "eval.metrics=[]"))
    runner.run(1)
    logged = runner.log_tick()
    assert "Loss/G/left_by_an_earlier_run" not in logged and all(math.isfinite(v) for v in logged.values())
