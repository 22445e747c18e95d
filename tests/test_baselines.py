"""MDGAN, PacGAN and the Unrolled GAN: their math against known values, their plumbing (an encoder
that trains, a packed D, D's optimiser replayed) and their messages."""
import copy

import pytest
import torch

from conftest import compose, tensorboard_tags, train_run
from msgan_cli.core.context import Generated, StepContext
from msgan_cli.data import Batch
from msgan_cli.errors import UserError
from msgan_cli.models.base import Recipe
from msgan_cli.models.mlp import MLPGAN
from msgan_cli.regularizers import adam_update, mode_regularizers, pack, unroll_discriminator
from msgan_cli.regularizers.unrolled import swapped_tensors
from msgan_cli.train.session import build_session
from msgan_cli.train.step import phases_and_optimizers

MLP = ["model=mlp", "dataset=grid25", "model.generator.hidden=16", "model.discriminator.hidden=8"]
SMOOTH_MLP = ["model=mlp_unrolled", "dataset=grid25", "model.nz=3", "model.generator.hidden=6",
              "model.discriminator.hidden=5", "trainer.batch_size=8"]


# --- MDGAN -------------------------------------------------------------------------------------

def test_mode_regularizers_known_values():
    real, reconstruction = torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2)
    geometric, mode = mode_regularizers(real, reconstruction, torch.tensor([0.0, 2.0]))
    assert geometric.item() == pytest.approx((1 + 4) / 2)                       # mean squared error
    expected_mode = (torch.log(torch.tensor(2.0)) + torch.log1p(torch.exp(torch.tensor(-2.0)))) / 2
    assert mode.item() == pytest.approx(expected_mode.item())                   # mean of -log sigmoid(l)


@pytest.mark.parametrize("two_step", [False, True])
def test_mdgan_trains_its_encoder(tmp_path, two_step):
    overrides = [*MLP, "reg=mdgan", f"reg.mdgan.two_step={str(two_step).lower()}", "trainer.max_steps=6"]
    session = build_session(compose(*overrides))
    phases, optimizers = phases_and_optimizers(session)
    assert [p.name for p in phases] == (["D_manifold", "D", "G"] if two_step else ["D", "G"])
    assert "encoder" in next(p for p in phases if p.name == "G").networks
    assert len(optimizers["generator"].param_groups) == 2        # G's own, then E's
    initial_encoder = copy.deepcopy(session.recipe.encoder.state_dict())

    train_run(tmp_path, *overrides)
    trained = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["model"]
    changed = [k for k, v in initial_encoder.items() if not torch.equal(v, trained[f"encoder.{k}"])]
    assert changed, "the encoder's weights never moved"
    assert ("manifold_discriminator.head.weight" in trained) == two_step
    scalars = tensorboard_tags(tmp_path)["scalars"]
    assert {"Loss/G/mdgan/geometric", "Loss/G/mdgan/mode", "Diag/mdgan/reconstruction"} <= scalars
    assert ("Loss/D_manifold/mdgan/manifold_adv" in scalars) == two_step


def test_mdgan_two_step_teaches_d_that_reconstructions_are_real():
    session = build_session(compose(*MLP, "reg=mdgan", "reg.mdgan.two_step=true"))
    batch = session.data.train.batch(torch.arange(8))
    real = batch.samples
    ctx = StepContext(session.recipe, batch, step=0)
    session.regularizers[0].begin_step(ctx)
    reconstruction = ctx.cache["mdgan/reconstruction"]
    assert torch.equal(ctx.discriminator_real, reconstruction.detach())
    assert not torch.equal(ctx.discriminator_real, real)


def test_a_model_without_an_encoder_slot_is_told_so(monkeypatch):
    monkeypatch.setattr(MLPGAN, "build_encoder", Recipe.build_encoder)   # as if the model had none
    with pytest.raises(UserError, match="reg=mdgan needs an encoder slot.*does not offer"):
        build_session(compose(*MLP, "reg=mdgan"))


# --- PacGAN ------------------------------------------------------------------------------------

def test_pack_concatenates_consecutive_samples_along_channels():
    x = torch.arange(8.0).reshape(4, 2)
    assert torch.equal(pack(x, 2), torch.tensor([[0.0, 1, 2, 3], [4, 5, 6, 7]]))
    images = torch.randn(6, 3, 4, 4)
    packed = pack(images, 3)
    assert packed.shape == (2, 9, 4, 4) and torch.equal(packed[1, 3:6], images[4])
    with pytest.raises(ValueError):
        pack(x, 3)


@pytest.mark.parametrize("model,dataset,first_layer", [("dcgan", "digits", "network.features.0"),
                                                        ("mlp", "ring8", "network.features.0.linear")])
def test_packed_discriminator_judges_m_samples_at_once(model, dataset, first_layer):
    session = build_session(compose(f"model={model}", f"dataset={dataset}", "reg=pacgan", "reg.pacgan.pack=3"))
    recipe = session.recipe
    plain = build_session(compose(f"model={model}", f"dataset={dataset}", "reg=none")).recipe
    layer = recipe.discriminator.get_submodule(first_layer)
    plain_layer = plain.discriminator.get_submodule(first_layer.removeprefix("network."))
    assert layer.weight.shape[1] == 3 * plain_layer.weight.shape[1]    # m times the input (and conditions)
    batch = session.data.train.batch(torch.arange(6))
    x, labels = batch.samples, batch.labels if recipe.conditional else None
    recipe.eval()
    logits = recipe.discriminate(x, labels)
    assert logits.shape == (2,)                                         # one logit per pack
    x2 = x.clone()
    x2[4] = x2[4] + 1.0                                                 # change one member of the second pack
    changed = recipe.discriminate(x2, labels)
    assert changed[0] == logits[0] and changed[1] != logits[1]


def test_pacgan_needs_a_batch_it_can_pack(tmp_path):
    with pytest.raises(UserError, match="multiple of 3"):
        train_run(tmp_path, "reg=pacgan", "reg.pacgan.pack=3", "trainer.batch_size=16")
    with pytest.raises(UserError, match="pack must be at least 2"):
        build_session(compose("reg=pacgan", "reg.pacgan.pack=1"))
    # With mode seeking's pairs split, D sees half the batch at a time: 6 packs by 2, its halves of 3 do not.
    with pytest.raises(UserError, match=r"multiple of 2; got 6 \(trainer.pair_batch=split: D sees 3 fakes at a time\)"):
        train_run(tmp_path / "split", "reg=[ms,pacgan]", "trainer.pair_batch=split", "trainer.batch_size=6")


def test_spectral_norm_acts_on_the_packed_discriminator():
    recipe = build_session(compose("reg=[sn,pacgan]")).recipe   # sn listed first: pacgan still sets up first
    names = [name for name, _ in recipe.discriminator_layers()]
    assert names and all(name.startswith("discriminator.network.") for name in names)
    assert all(hasattr(module, "parametrizations") for _, module in recipe.discriminator_layers())


# --- Unrolled GAN ------------------------------------------------------------------------------

def test_adam_update_matches_torch_adam():
    torch.manual_seed(0)
    params = [torch.randn(3, 2), torch.randn(4)]
    reference = [p.clone().requires_grad_() for p in params]
    optimizer = torch.optim.Adam(reference, lr=0.01, betas=(0.5, 0.9), eps=1e-8, weight_decay=0.1)
    current, m, v = params, [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    for step in range(1, 4):
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(reference, grads):
            p.grad = g.clone()
        optimizer.step()
        current, m, v = adam_update(current, grads, m, v, step, 0.01, (0.5, 0.9), 1e-8, 0.1)
    for mine, theirs in zip(current, reference):
        torch.testing.assert_close(mine, theirs.detach(), rtol=1e-6, atol=1e-7)


def unrolled_setup(steps: int, *extra: str):
    session = build_session(compose(*SMOOTH_MLP, "reg=unrolled", f"reg.unrolled.steps={steps}", *extra))
    recipe = session.recipe.double()
    _, optimizers = phases_and_optimizers(session)
    real = session.data.train.batch(torch.arange(8)).samples.double()
    z = recipe.sample_latent(8, real.device, torch.Generator().manual_seed(1)).double()
    return session, recipe, optimizers, real, z


def context_for(recipe, real, z) -> StepContext:
    ctx = StepContext(recipe, Batch(real), step=0)
    ctx._generated = Generated({"image": recipe.generate(z, None)}, z, None, 1, "image")
    return ctx


@pytest.mark.parametrize("first_order", [True, False])
def test_unrolled_parameters_equal_k_real_optimizer_steps(first_order):
    session, recipe, optimizers, real, z = unrolled_setup(3)
    ctx = context_for(recipe, real, z)
    before = copy.deepcopy(recipe.discriminator.state_dict())
    unrolled = unroll_discriminator(recipe, ctx, optimizers["discriminator"], 3, first_order)
    assert all(torch.equal(v, recipe.discriminator.state_dict()[k]) for k, v in before.items())   # D untouched

    twin = copy.deepcopy(recipe)   # k ordinary D steps on the same batches
    optimizer = torch.optim.Adam(twin.discriminator.parameters(), **optimizers["discriminator"].defaults)
    fake = ctx.generated().images.detach()
    for _ in range(3):
        optimizer.zero_grad()
        twin.discriminator_loss(real, None, fake, None).backward()
        optimizer.step()
    for name, parameter in twin.discriminator.named_parameters():
        torch.testing.assert_close(unrolled[name].detach(), parameter.detach(), rtol=1e-5, atol=1e-6)


def g_loss_gradient(recipe, optimizer, real, z, direction, first_order: bool) -> float:
    """d/dt of G's unrolled loss along `direction` in G's parameters, by autograd."""
    regularizer_ctx = context_for(recipe, real, z)
    unrolled = unroll_discriminator(recipe, regularizer_ctx, optimizer, 2, first_order)
    with swapped_tensors(recipe.discriminator, unrolled):
        loss = recipe.phase_losses("G", regularizer_ctx)["adv"]
    params = list(recipe.generator.parameters())
    grads = torch.autograd.grad(loss, params)
    return sum((g * d).sum() for g, d in zip(grads, direction)).item()


def g_loss_value(recipe, optimizer, real, z) -> float:
    ctx = context_for(recipe, real, z)
    unrolled = unroll_discriminator(recipe, ctx, optimizer, 2, True)   # values do not depend on the mode
    with swapped_tensors(recipe.discriminator, unrolled):
        return recipe.phase_losses("G", ctx)["adv"].item()


def test_gradient_flows_through_the_unrolled_steps():
    """Full unrolling gives G the total derivative of its loss through D's k updates (checked by finite
    differences); first_order misses the part through D's updates."""
    _, recipe, optimizers, real, z = unrolled_setup(2, "model.optim.lr_d=0.05")   # D moves visibly
    optimizer = optimizers["discriminator"]
    torch.manual_seed(3)
    direction = [torch.randn_like(p) for p in recipe.generator.parameters()]
    full = g_loss_gradient(recipe, optimizer, real, z, direction, first_order=False)
    first = g_loss_gradient(recipe, optimizer, real, z, direction, first_order=True)
    h = 1e-3
    values = []
    for sign in (1, -1):
        with torch.no_grad():
            for p, d in zip(recipe.generator.parameters(), direction):
                p.add_(sign * h * d)
        values.append(g_loss_value(recipe, optimizer, real, z))
        with torch.no_grad():
            for p, d in zip(recipe.generator.parameters(), direction):
                p.sub_(sign * h * d)
    numeric = (values[0] - values[1]) / (2 * h)
    assert full == pytest.approx(numeric, rel=2e-2, abs=1e-5)
    assert abs(first - numeric) > 10 * abs(full - numeric)


@pytest.mark.parametrize("model,dataset", [("dcgan", "digits"), ("mlp", "grid25")])
def test_unrolled_trains_and_reports(tmp_path, model, dataset):
    train_run(tmp_path, f"model={model}", f"dataset={dataset}", "reg=unrolled", "reg.unrolled.steps=2")
    assert "Diag/unrolled/discriminator_loss" in tensorboard_tags(tmp_path)["scalars"]


def test_unrolled_refuses_a_discriminator_optimiser_it_cannot_replay():
    with pytest.raises(UserError, match="plain Adam"):
        session = build_session(compose("reg=unrolled"))
        session.recipe.configure_optimizers = lambda: {
            "generator": torch.optim.SGD(session.recipe.generator.parameters(), lr=0.1),
            "discriminator": torch.optim.SGD(session.recipe.discriminator.parameters(), lr=0.1)}
        phases_and_optimizers(session)
