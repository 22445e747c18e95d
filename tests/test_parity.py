"""msgan's DCGAN and Pix2Pix against the official MSGAN code (HelenMao/MSGAN, commit e386c25), step for step.

`tests/parity/<model>/reference.pt` holds one training step of the reference run on the CPU from a known state:
the initial weights of every network, the batch, the two latents per condition, and what the step computed
(G's outputs, D's outputs per call, every loss term of every phase, every gradient, the weights after each
optimiser step); `PROCEDURE.md` beside it says how it was recorded and what was patched to run it. Here msgan's
recipe is built from the real config at the recording's options, given the same weights (through the name
maps below), the same batch and latents, and stepped as the loop steps it (`Training.step`), and every number
is compared.

Tolerances: the same float32 operations (eps 1.2e-7) grouped or ordered differently (one mean over both fake halves
for two means added, another thread count, fused Adam) round differently, and nothing else may differ:
- a loss term: rel 1e-5, abs 1e-6 (measured: <= 2e-7 relative);
- a tensor of outputs: max |msgan - reference| <= 1e-5 x max |reference| (measured: <= 1.2e-6);
- gradients: max |msgan - reference| <= 1e-5 x the largest |gradient| of the network (measured: <= 1.2e-6 with
  1 or 2 threads). Not per tensor: a bias feeding a normalisation (BatchNorm in training mode, InstanceNorm)
  has an exact gradient of 0, and both codes give rounding noise there;
- weights after Adam's first step: each moves by lr * g / (|g| + eps), about lr * sign(g). Where the
  reference's |g| exceeds 1e-4 x the network's largest (ten times the gradient tolerance: the sign is
  certain) the two agree to rounding, |msgan - reference| <= 1e-6 |w| + 1e-3 lr; where the gradient is
  rounding noise its sign is the noise's, and each code moves the weight by at most lr: <= 2 lr.
Adam's first step does not depend on its betas (bias correction) and hardly on a weight decay of 1e-4 (it adds
1e-4 w to gradients far larger), so the optimisers' settings are compared as settings.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from conftest import compose
from datafiles import write_cifar
from msgan_cli.core import stats
from msgan_cli.core.batch import Batch
from msgan_cli.train.step import Training, build_training

PARITY = Path(__file__).parent / "parity"
LOSS_REL, LOSS_ABS = 1e-5, 1e-6
OUTPUT_TOL = GRAD_TOL = 1e-5
CERTAIN_SIGN = 1e-4


def recording(model: str) -> dict:
    return torch.load(PARITY / model / "reference.pt", weights_only=True)


# Name maps: the reference's state-dict names -> msgan's (recipe-level) names.
DCGAN_LAYERS = {
    "G": ("generator", {"deconv1": "net.0", "deconv1_bn": "net.1", "deconv2": "net.3", "deconv2_bn": "net.4",
                        "deconv3": "net.6", "deconv3_bn": "net.7", "deconv4": "net.9"}),
    "D": ("discriminator", {"conv1": "features.0", "conv2": "features.2", "conv2_bn": "features.3",
                            "conv3": "features.5", "conv3_bn": "features.6", "conv4": "head"}),
}


def dcgan_name(network: str, name: str) -> str:
    prefix, layers = DCGAN_LAYERS[network]
    layer, rest = name.split(".", 1)
    return f"{prefix}.{layers[layer]}.{rest}"


def pix2pix_name(network: str, name: str) -> str:
    """G_Unet_add_all: `model.[submodule.]*{down,up}.i.*` -> `generator.net.[inner.]*...`; D_NLayersMulti:
    `model0` the full-size scale, `model1` the half-size one, layer 11 the last conv (msgan's `head`)."""
    if network == "G":
        return "generator.net." + name.removeprefix("model.").replace("submodule", "inner")
    scale, layer, rest = re.fullmatch(r"model([01])\.(\d+)\.(.+)", name).groups()
    net = ("discriminator", "discriminator_low")[int(scale)]
    return f"{net}.{'head' if layer == '11' else 'features.' + layer}.{rest}"


def renamed(states: dict[str, dict], rename) -> dict[str, torch.Tensor]:
    return {rename(network, name): value for network, state in states.items() for name, value in state.items()}


def load_reference_weights(training: Training, ref: dict, rename) -> None:
    """The reference's initial weights (and BatchNorm buffers) into msgan's networks; strict, so every tensor
    of either side is mapped."""
    training.session.recipe.load_state_dict(renamed(ref["init"], rename), strict=True)


def use_latents(recipe, monkeypatch, z: torch.Tensor) -> None:
    """msgan draws the step's latents in `StepContext.generated()` through `recipe.sample_latent`; give it the
    reference's, `cat(z1, z2)` (group j of msgan's doubled batch is the j-th latent of every condition)."""
    def recorded(n, device, generator=None):
        assert n == len(z), f"msgan asked for {n} latents; the reference drew {len(z)}"
        return z.clone().to(device)
    monkeypatch.setattr(recipe, "sample_latent", recorded)


class OneBatch:
    """A batch source that hands out the reference's batch."""

    def __init__(self, batch: Batch):
        self.batch = batch

    def next(self, device):
        return self.batch.to(device)


def detached(output):
    """A copy of a network's output, cut from the graph: a tensor, or a tuple or list of them (D's two heads,
    G's stages)."""
    if isinstance(output, (list, tuple)):
        return type(output)(o.detach().clone() for o in output)
    return output.detach().clone()


def step_as_the_loop_does(training: Training, batch: Batch, monkeypatch, with_inputs: bool = False) -> dict[str, dict]:
    """One `Training.step` (the loop's) on `batch`; per phase, what its optimiser step saw: the reported terms,
    the gradients of its parameters, the outputs of each network's calls in the phase (with `with_inputs`, each
    call's first input beside its output), and the parameters and buffers (BatchNorm's running statistics) after
    the step."""
    recipe = training.session.recipe
    names = {id(p): name for name, p in recipe.named_parameters()}
    calls: dict[str, list] = {net: [] for net in ("generator", *recipe.discriminator_names)}

    def record(net):
        def hook(module, args, out):
            calls[net].append((detached(args[0]), detached(out)) if with_inputs else detached(out))
        return hook

    for net in calls:
        getattr(recipe, net).register_forward_hook(record(net))
    seen: dict[str, dict] = {}
    for phase in training.phases:
        optimizer = training.optimizers[phase.optimizer]

        def step(*args, _phase=phase.name, _optimizer=optimizer, _step=optimizer.step, **kwargs):
            parameters = [p for group in _optimizer.param_groups for p in group["params"]]
            seen[_phase] = {"terms": stats.collect(), "calls": {net: list(outs) for net, outs in calls.items()},
                            "grads": {names[id(p)]: p.grad.detach().clone() for p in parameters}}
            for outs in calls.values():
                outs.clear()
            result = _step(*args, **kwargs)
            seen[_phase]["after"] = {names[id(p)]: p.detach().clone() for p in parameters}
            seen[_phase]["buffers"] = {name: b.detach().clone() for name, b in recipe.named_buffers()}
            return result

        monkeypatch.setattr(optimizer, "step", step)
    training.source = OneBatch(batch)
    training.step(0)
    return seen


def assert_loss(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    actual, expected = float(actual.detach()), float(expected)
    assert actual == pytest.approx(expected, rel=LOSS_REL, abs=LOSS_ABS), f"{what}: msgan {actual:.7g}, reference {expected:.7g}"


def assert_near(actual: torch.Tensor, expected: torch.Tensor, what: str, scale: float | None = None,
                tol: float = OUTPUT_TOL) -> None:
    actual, expected = actual.detach().float(), expected.float()
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)}, reference {tuple(expected.shape)}"
    bound = tol * (float(expected.abs().max()) if scale is None else scale)
    error = float((actual - expected).abs().max())
    assert error <= bound, f"{what}: max |msgan - reference| = {error:.3g} > {bound:.3g}"


def assert_gradients(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str) -> None:
    assert set(actual) == set(expected), f"{what}: parameters {sorted(set(actual) ^ set(expected))} unmatched"
    scale = max(float(g.abs().max()) for g in expected.values())
    for name, grad in expected.items():
        assert_near(actual[name], grad, f"{what} {name}", scale, GRAD_TOL)


def assert_adam_step(after: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                     grads: dict[str, torch.Tensor], lr: float, what: str) -> None:
    """The parameters after the optimiser's first step (the module docstring's rule); `expected` may hold
    buffers too, which are not compared here."""
    assert set(after) == set(grads), f"{what}: parameters {sorted(set(after) ^ set(grads))} unmatched"
    scale = max(float(g.abs().max()) for g in grads.values())
    for name, grad in grads.items():
        certain = grad.abs() > CERTAIN_SIGN * scale
        bound = torch.where(certain, 1e-6 * expected[name].abs() + 1e-3 * lr, 2 * lr + 1e-6 * expected[name].abs())
        error = (after[name] - expected[name]).abs()
        assert (error <= bound).all(), (f"{what} {name}: {int((error > bound).sum())} weights off, "
                                        f"max |msgan - reference| = {float(error.max()):.3g}")


def assert_optimisers(training: Training, ref: dict) -> None:
    for optimiser, network in (("generator", "G"), ("discriminator", "D")):
        group = training.optimizers[optimiser].param_groups[0]
        ours = {key: tuple(group[key]) if key == "betas" else group[key] for key in ref["optim"][network]}
        assert ours == ref["optim"][network], f"{optimiser}'s Adam: {ours}, reference {ref['optim'][network]}"


# DCGAN: HelenMao/MSGAN DCGAN-Mode-Seeking (model.py CDCGAN), the CIFAR-10 experiment.

def dcgan(tmp_path, monkeypatch) -> tuple[dict, Training, Batch]:
    ref = recording("dcgan")
    options = ref["options"]
    cfg = compose("dataset=cifar10", f"dataset.root={write_cifar(tmp_path)}", "reg=ms", f"model.width={options['width']}",
                  f"model.nz={options['nz']}", f"model.resolution={options['img_size']}",
                  f"trainer.batch_size={options['batch_size']}")
    assert cfg.model.gan_loss == "bce" and cfg.trainer.pair_batch == "doubled"
    assert cfg.reg.ms.weight == 1.0 and cfg.reg.ms.eps == 1e-5 and cfg.reg.ms.reduction == "mean"
    training = build_training(cfg)
    recipe = training.session.recipe
    assert recipe.num_classes == options["class_num"] and recipe.sample_shape == (3, options["img_size"], options["img_size"])
    assert [phase.name for phase in training.phases] == ["D", "G"]
    load_reference_weights(training, ref, dcgan_name)
    use_latents(recipe, monkeypatch, torch.cat([ref["z1"], ref["z2"]]))
    return ref, training, Batch(ref["real"], ref["label"])


def test_dcgan_options_and_optimisers_are_the_references(tmp_path, monkeypatch):
    ref, training, _ = dcgan(tmp_path, monkeypatch)
    assert_optimisers(training, ref)


def test_dcgan_step_is_the_references(tmp_path, monkeypatch):
    """msgan's whole DCGAN step (Training.step) computes what the reference's update_D then update_G compute, D
    called on each fake half as the reference calls it (D phase: D(real), D(fake1), D(fake2); G phase: D(fake1),
    D(fake2)); msgan used to judge both halves in one D call, so that D's BatchNorm saw other statistics, and no
    longer does. D's BatchNorm running statistics are left out: they count D's calls (the reference judges the real
    batch twice, msgan once) and only a D in eval mode, which msgan never runs, reads them
    (test_dcgan_d_running_statistics_are_the_references_for_its_calls compares them)."""
    ref, training, batch = dcgan(tmp_path, monkeypatch)
    seen = step_as_the_loop_does(training, batch, monkeypatch)
    d, g = seen["D"], seen["G"]
    gan = training.session.recipe.gan_loss
    assert_near(d["calls"]["generator"][0], ref["fake"], "G's outputs")
    # D's update: its logits are the reference's bitwise here (the same calls on the same weights).
    real, fake1, fake2 = d["calls"]["discriminator"]
    logits = {"real_1": real, "real_2": real, "fake1": fake1, "fake2": fake2}   # the reference judges real twice
    for call, expected in ref["D"]["logits"].items():
        assert_near(logits[call], expected, f"D's logits on {call}")
        term = gan.as_real(logits[call]) if call.startswith("real") else gan.as_fake(logits[call])
        assert_loss(term, ref["D"]["terms"][call], f"D's term {call}")
    assert_loss(d["terms"]["Loss/D/adv"], ref["D"]["loss"], "D's loss")
    assert_loss(d["terms"]["Loss/D/total"], ref["D"]["loss"], "D's objective")
    assert_gradients(d["grads"], renamed({"D": ref["D"]["grads"]}, dcgan_name), "D's gradient")
    assert_adam_step(d["after"], renamed({"D": ref["D"]["after"]}, dcgan_name),
                     renamed({"D": ref["D"]["grads"]}, dcgan_name), ref["optim"]["D"]["lr"], "D after its step")
    fake1, fake2 = g["calls"]["discriminator"]
    for call, logits in (("fake1", fake1), ("fake2", fake2)):
        assert_near(logits, ref["G"]["logits"][call], f"D's logits on {call} in G's update")
        assert_loss(gan.generator(logits), ref["G"]["terms"][f"gan_{call}"], f"G's term gan_{call}")
    assert_loss(g["terms"]["Loss/G/adv"], ref["G"]["loss_gan"], "G's adversarial term")
    assert_loss(g["terms"]["Loss/G/ms"], ref["G"]["loss_lz"], "G's mode seeking term")
    assert_loss(g["terms"]["Loss/G/total"], ref["G"]["loss"], "G's objective")
    assert_gradients(g["grads"], renamed({"G": ref["G"]["grads"]}, dcgan_name), "G's gradient")
    g_after = renamed({"G": ref["G"]["after"]}, dcgan_name)
    assert_adam_step(g["after"], g_after, renamed({"G": ref["G"]["grads"]}, dcgan_name), ref["optim"]["G"]["lr"],
                     "G after its step")
    state = training.session.recipe.state_dict()
    for name in (n for n in g_after if "running" in n or "num_batches" in n):   # G's BatchNorm: one G call each
        assert_near(state[name], g_after[name], name)


def test_dcgan_d_running_statistics_are_the_references_for_its_calls(tmp_path, monkeypatch):
    """D's BatchNorm running statistics, which test_dcgan_step_is_the_references leaves out, are the reference's
    when msgan's D is called as the reference calls it, on the reference's fakes: D(fake1), D(real), D(fake2),
    D(real) from the initial weights (update_D), then D(fake1), D(fake2) from the reference's D after its step
    (update_G)."""
    ref, training, _ = dcgan(tmp_path, monkeypatch)
    recipe = training.session.recipe
    fake1, fake2 = ref["fake"].chunk(2)
    d_after = renamed({"D": ref["D"]["after"]}, dcgan_name)
    with torch.no_grad():
        for x in (fake1, ref["real"], fake2, ref["real"]):
            recipe.discriminate(x, ref["label"])
        state = recipe.state_dict()
        for name in (n for n in d_after if "running" in n or "num_batches" in n):
            assert_near(state[name], d_after[name], f"{name} after D's update")
        recipe.load_state_dict({**state, **d_after}, strict=True)
        for x in (fake1, fake2):
            recipe.discriminate(x, ref["label"])
    state = recipe.state_dict()
    for name, expected in renamed({"D": ref["G"]["D_buffers_after"]}, dcgan_name).items():
        assert_near(state[name], expected, f"{name} after G's update")


# Pix2Pix: HelenMao/MSGAN Pix2Pix-Mode-Seeking (models/pix2pix_model.py Pix2PixModel), BicycleGAN's networks.

def test_pix2pix_step_is_the_references(monkeypatch):
    """msgan's whole Pix2Pix step (Training.step: G's phase, then D's) computes what the reference's
    optimize_parameters computes: forward (one G call on the doubled batch), update_G (D on each fake half, L1
    on the first, mode seeking), update_D (D on each fake half and on the real pair, counted twice); msgan calls
    each scale of D once per fake half, as the reference does (it used to call it once on both halves)."""
    ref = recording("pix2pix")
    options = ref["options"]
    cfg = compose("model=pix2pix", "reg=ms", f"model.width={options['ngf']}", f"model.nz={options['nz']}",
                  f"dataset.resolution={options['fineSize']}", f"trainer.batch_size={options['batch_size']}")
    assert options["ngf"] == options["ndf"] and options["num_Ds"] == cfg.model.discriminator.scales == 2
    assert cfg.model.discriminator.layers == 3 and cfg.model.dropout == options["use_dropout"]
    assert cfg.model.gan_loss == options["gan_mode"] and cfg.model.lambda_l1 == options["lambda_L1"]
    assert options["lambda_GAN"] == 1.0   # the adversarial terms unweighted, as msgan's; the reference's lz: weight 1
    assert cfg.reg.ms.weight == 1.0 and cfg.reg.ms.eps == 1e-5 and cfg.reg.ms.reduction == "mean"
    training = build_training(cfg)
    recipe = training.session.recipe
    assert recipe.sample_shape == (options["output_nc"], options["fineSize"], options["fineSize"])
    assert training.session.data.input_shape == (options["input_nc"], options["fineSize"], options["fineSize"])
    assert [phase.name for phase in training.phases] == ["G", "D"]
    assert_optimisers(training, ref)
    load_reference_weights(training, ref, pix2pix_name)
    use_latents(recipe, monkeypatch, torch.cat([ref["z1"], ref["z2"]]))
    seen = step_as_the_loop_does(training, Batch(ref["B"], None, ref["A"]), monkeypatch)
    g, d = seen["G"], seen["D"]
    gan = recipe.gan_loss
    scales = {"full": "discriminator", "low": "discriminator_low"}

    assert_near(g["calls"]["generator"][0], ref["fake"], "G's outputs")
    # G's update: each scale called once per fake half, in both codes.
    for scale, net in scales.items():
        for half, logits in zip(("fake1", "fake2"), g["calls"][net], strict=True):
            assert_near(logits, ref["G"]["logits"][half][scale], f"D's {scale} logits on {half} in G's update")
            assert_loss(gan.generator(logits), ref["G"]["terms"][f"gan_{half}"][scale], f"G's {half} {scale} term")
    assert_loss(g["terms"]["Loss/G/adv"], ref["G"]["loss_gan"], "G's adversarial term")
    assert_loss(g["terms"]["Loss/G/l1"], ref["G"]["loss_l1"], "G's L1 term")
    assert_loss(g["terms"]["Loss/G/ms"], ref["G"]["loss_lz"], "G's mode seeking term")
    assert_loss(g["terms"]["Loss/G/total"], ref["G"]["loss"], "G's objective")
    g_grads = renamed({"G": ref["G"]["grads"]}, pix2pix_name)
    assert_gradients(g["grads"], g_grads, "G's gradient")
    assert_adam_step(g["after"], renamed({"G": ref["G"]["after"]}, pix2pix_name), g_grads, ref["optim"]["G"]["lr"],
                     "G after its step")

    # D's update, on the fakes of the same G call (made before G's step).
    for scale, net in scales.items():
        real, *fakes = d["calls"][net]
        assert_near(real, ref["D"]["logits"]["real"][scale], f"D's {scale} logits on the real pair")
        for term in ("real_1", "real_2"):
            assert_loss(gan.as_real(real), ref["D"]["terms"][term][scale], f"D's {term} {scale} term")
        for half, logits in zip(("fake1", "fake2"), fakes, strict=True):
            assert_near(logits, ref["D"]["logits"][half][scale], f"D's {scale} logits on {half}")
            assert_loss(gan.as_fake(logits), ref["D"]["terms"][half][scale], f"D's {half} {scale} term")
    assert_loss(d["terms"]["Loss/D/adv"], ref["D"]["loss"], "D's loss")
    assert_loss(d["terms"]["Loss/D/total"], ref["D"]["loss"], "D's objective")
    d_grads = renamed({"D": ref["D"]["grads"]}, pix2pix_name)
    assert_gradients(d["grads"], d_grads, "D's gradient")
    assert_adam_step(d["after"], renamed({"D": ref["D"]["after"]}, pix2pix_name), d_grads, ref["optim"]["D"]["lr"],
                     "D after its step")
