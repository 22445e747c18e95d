"""msgan's StackGAN++ (`model=stackganpp`) against the official code (HelenMao/MSGAN e386c25, StackGAN++-Mode-Seeking,
built on hanzhanggit/StackGAN-v2), step for step.

`tests/parity/stackganpp/reference.pt` holds one training step of the reference's own loop
(`condGANTrainer.train()`, one epoch of a one-batch loader) on the CPU from a known state, at `birds_3stages.yml`'s
coefficients with 2 stages (64 and 128 px) and tiny widths: the initial weights of G and of both stage Ds, the batch
(real and mismatched "wrong" images, the sentence embeddings), the two latents per caption and the conditioning
augmentation's eps, and what the step computed (G's outputs, mu and logvar; both logits of every D call; every BCE
term, each D's loss, G's adversarial terms, KL, mode seeking and total; every gradient; the weights after each
optimiser step; D's BatchNorm buffers; the weight average `avg_param_G` after the step; and G's update again with
the colour consistency term on, `COLOR_LOSS=1`). `PROCEDURE.md` beside it says how it was recorded and what was
patched to run it. Here msgan's recipe is built from the real config at the recording's options, given the same
weights (through the name map below), the same batch, latents and eps (injected where msgan draws them:
`recipe.sample_latent` in `StepContext.generated`, `torch.randn_like` in `ConditioningAugmentation.forward`), and
compared with test_parity.py's tolerances (float32 rounding only; that module's docstring gives them and why).

The reference's step (trainer.py `condGANTrainer.train`, `train_Dnet`, `train_Gnet`), for B captions:
1. z = cat(noise, noise_2) (2B x Z_DIM), one G call on cat(text, text): CA's mu, logvar = split(GLU(fc(text))),
   c = mu + exp(logvar / 2) * eps; one image per stage, 2B each (fake1 = rows [0, B), fake2 = [B, 2B)).
2. For each stage's D, its own update: D(real, mu1), D(wrong, mu1), D(fake1, mu1), D(fake2, mu2) (fakes and mu
   detached; four calls, so four sets of BatchNorm statistics); BCE on the sigmoid of each logit: conditional real 1,
   wrong 0, fake1 0, fake2 0, unconditional (x UNCOND_LOSS 1) real 1, wrong 1, fake1 0, fake2 0;
   errD = real + wrong + (fake1 + fake2), real and wrong counted once; Adam step.
3. G's update through the updated Ds: per stage D(fake1, mu1), D(fake2, mu2) (two calls), BCE to 1 on both logits,
   summed over stages; KL = (KL(mu1, logvar1) + KL(mu2, logvar2)) x 2, each KL a mean over its B x EMBEDDING_DIM
   elements; mode seeking 1 / (mean|fake2 - fake1| / mean|z2 - z1| + 1e-5) on the last stage, z alone in the
   denominator; with COLOR_LOSS > 0, COLOR_LOSS x (MSE of the mean colours + 5 MSE of the colour covariances) of each
   stage against the stage below it, detached; Adam step (2e-4, betas (0.5, 0.999) for G and each D).
4. avg_param_G <- 0.999 avg_param_G + 0.001 G's weights.

msgan is compared in MSGAN's layout, `trainer.pair_batch=doubled` (B captions x 2 latents: 2B fakes). Its default,
`split`, takes the pair from the batch instead (B/2 captions x 2 latents: B fakes, each term counted once), a layout
the reference does not have, so not comparable number for number.

What matches, to float32 rounding: the networks (every tensor of every state dict maps, with its shape), G's outputs
(bitwise here), CA's mu and logvar, D's logits on the real and wrong images, mode seeking, the colour consistency
term's value, the optimisers. What differs, each in an xfail test with the numbers and undone by hand in
`test_stackganpp_differs_only_where_stated`, where every number of the reference's step then comes out:
1. D's real and wrong terms: msgan counts them once per latent group (x 2), the reference once;
2. the KL: msgan's is the mean over the 2B rows, counted once; the reference sums it over the two halves (x 2);
3. D judges the 2B fakes in one call (one set of BatchNorm statistics), the reference each half in its own call;
4. (with `model.lambda_color` > 0 only, 0 by default as in the reference) msgan's colour term also pulls the lower
   stage towards the higher one; the reference detaches the lower stage.
And one deliberate difference, documented in train/ema.py, not in docs/models/stackganpp.md's list: the weight
average's warm-up (decay 0.1 at step 0 against the reference's 0.999); with the reference's decay msgan's
`WeightAverage` gives the reference's average (`test_stackganpp_differs_only_where_stated`).
"""
from __future__ import annotations

import re

import pytest
import torch
from test_parity import OneBatch, assert_adam_step, assert_gradients, assert_loss, assert_near, recording, renamed, use_latents

from conftest import compose
from msgan_cli.core import stats
from msgan_cli.core.batch import Batch
from msgan_cli.core.context import StepContext
from msgan_cli.data.base import resize_floats
from msgan_cli.models.stackganpp import colour_moments, kl_to_prior
from msgan_cli.train.ema import weight_average
from msgan_cli.train.step import Training, build_training

STAGES = ("D0", "D1")
HALVES = ("fake1", "fake2")
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


# The reference's state-dict names (of the modules inside DataParallel) -> msgan's (recipe-level) names.
G_LAYERS = [
    (r"ca_net\.", lambda m: "ca."),
    (r"h_net1\.fc\.", lambda m: "branches.0.fc."),                                            # INIT_STAGE_G
    (r"h_net1\.upsample(\d)\.", lambda m: f"branches.0.up.{int(m[1]) - 1}."),
    (r"h_net(\d)\.jointConv\.", lambda m: f"branches.{int(m[1]) - 1}.joint."),                # NEXT_STAGE_G
    (r"h_net(\d)\.residual\.(\d)\.block\.", lambda m: f"branches.{int(m[1]) - 1}.residual.{m[2]}.body."),
    (r"h_net(\d)\.upsample\.", lambda m: f"branches.{int(m[1]) - 1}.up."),
    (r"img_net(\d)\.img\.", lambda m: f"heads.{int(m[1]) - 1}."),                             # GET_IMAGE_G
]
# D_NET64 / D_NET128: encode_image_by_16times (layers 0-10), then D_NET128's downBlock and Block3x3_leakRelu.
D_ENCODER_OFFSETS = {"img_code_s16": 0, "img_code_s32": 11, "img_code_s32_1": 14}
D_HEADS = {"logits": "conditional_head", "uncond_logits": "unconditional_head"}


@pytest.fixture(autouse=True)
def one_thread():
    """One thread, as the reference was recorded: both codes' reductions then split alike, and they agree to 1e-6
    (outputs bitwise, D's logits 7.4e-7 of their largest, losses 1.2e-7, gradients 9.8e-7 of the network's largest).
    With more threads msgan's reductions split otherwise and the rounding grows: measured with 2 threads, D's logits
    5.2e-6 of a call's largest; with 4 or 8, G's outputs 4.3e-6 and D's logits 9.7e-6, at the tolerance's edge (a call
    has two logits, so its largest can be small)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def stackganpp_name(network: str, name: str) -> str:
    if network == "G":
        for pattern, replacement in G_LAYERS:
            match = re.match(pattern, name)
            if match:
                return "generator." + replacement(match) + name[match.end():]
        raise KeyError(name)
    module, rest = name.split(".", 1)
    prefix = f"discriminator_{int(network.removeprefix('D'))}"
    if module in D_HEADS:
        return f"{prefix}.{D_HEADS[module]}.{rest.removeprefix('0.')}"
    if module == "jointConv":
        return f"{prefix}.joint.{rest}"
    layer, rest = rest.split(".", 1)
    return f"{prefix}.encoder.{D_ENCODER_OFFSETS[module] + int(layer)}.{rest}"


def recipe_state(network: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return renamed({network: state}, stackganpp_name)


def parameters_of(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value for name, value in state.items() if not name.endswith(RUNNING_STATS)}


def buffers_of(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value for name, value in state.items() if name.endswith(RUNNING_STATS)}


def images(pixels: torch.Tensor) -> torch.Tensor:
    """The recorded uint8 pixels as the reference's dataset gives them (ToTensor, Normalize(0.5, 0.5))."""
    return (pixels.float() / 255 - 0.5) / 0.5


def overrides(options: dict, *extra: str) -> list[str]:
    return ["model=stackganpp", "reg=ms", "trainer.pair_batch=doubled", f"model.stages={options['branch_num']}",
            f"model.base_size={options['base_size']}", f"model.width_g={options['gf_dim']}",
            f"model.width_d={options['df_dim']}", f"model.ca_dim={options['embedding_dim']}", f"model.nz={options['z_dim']}",
            f"model.embedding_dim={options['text_dimension']}", f"dataset.embedding_dim={options['text_dimension']}",
            f"dataset.resolution={options['base_size'] * 2 ** (options['branch_num'] - 1)}",
            f"trainer.batch_size={options['batch_size']}", *extra]


def use_eps(monkeypatch, eps: torch.Tensor) -> dict[str, int]:
    """msgan draws CA's eps as `torch.randn_like(mu)` (ConditioningAugmentation.forward); give it the reference's,
    checked to be asked for mu's shape. Returns the count of draws."""
    draws = {"randn_like": 0}

    def recorded(like, *args, **kwargs):
        assert like.shape == eps.shape, f"msgan drew eps like {tuple(like.shape)}; the reference's is {tuple(eps.shape)}"
        draws["randn_like"] += 1
        return eps.clone().to(like.device)
    monkeypatch.setattr(torch, "randn_like", recorded)
    return draws


def stackganpp(monkeypatch, colour: bool = False) -> tuple[dict, Training, Batch]:
    """msgan's recipe at the recording's options (with the colour run's COLOR_LOSS: `colour`), the reference's
    initial weights and latents, and its batch."""
    ref = recording("stackganpp")
    options = ref["options"]
    cfg = compose(*overrides(options, f"model.lambda_color={options['coeff_color_run'] if colour else options['coeff_color']}"))
    model = cfg.model
    assert model.gan_loss == "bce" and model.lambda_kl == options["coeff_kl"] and model.lambda_uncond == options["coeff_uncond"]
    assert model.residual_blocks == options["r_num"] and cfg.trainer.batch_size == options["batch_size"]
    assert cfg.reg.ms.weight == options["coeff_ms"] and cfg.reg.ms.eps == 1e-5 and cfg.reg.ms.reduction == "mean"
    assert cfg.reg.ms.outputs == "primary"   # the last stage, as the reference's lz
    training = build_training(cfg)
    recipe = training.session.recipe
    assert recipe.stage_sizes == (64, 128) and [phase.name for phase in training.phases] == ["D", "G"]
    recipe.load_state_dict(renamed(ref["init"], stackganpp_name), strict=True)   # every tensor, either side
    use_latents(recipe, monkeypatch, torch.cat([ref["z1"], ref["z2"]]))
    real, wrong = images(ref["pixels"]), images(ref["wrong_pixels"])
    return ref, training, Batch(real, None, {"text": ref["text"], "wrong": wrong})


def detached(output):
    return [o.detach().clone() for o in output] if isinstance(output, (list, tuple)) else output.detach().clone()


def step_as_the_loop_does(training: Training, batch: Batch, monkeypatch) -> dict[str, dict]:
    """test_parity.py's helper of that name for networks whose outputs are lists (G's stages, D's two logits): one
    `Training.step` (the loop's) on `batch`; per phase, what its optimiser step saw (the reported terms, the
    gradients of its parameters, each network's outputs per call) and the parameters after the step."""
    recipe = training.session.recipe
    names = {id(p): name for name, p in recipe.named_parameters()}
    calls: dict[str, list] = {net: [] for net in ("generator", *recipe.discriminator_names)}
    for net in calls:
        getattr(recipe, net).register_forward_hook(lambda m, args, out, net=net: calls[net].append(detached(out)))
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
            return result

        monkeypatch.setattr(optimizer, "step", step)
    training.source = OneBatch(batch)
    training.step(0)
    return seen


def reference_d_terms(ref: dict, stage: str) -> dict[str, torch.Tensor]:
    """The reference's errD_real, errD_wrong, errD_fake of one stage (unconditional terms included)."""
    t = ref["D"][stage]["terms"]
    return {"real": t["real"] + t["real_uncond"], "wrong": t["wrong"] + t["wrong_uncond"],
            "fake": t["fake1"] + t["fake2"] + t["fake1_uncond"] + t["fake2_uncond"]}


def reference_adv(ref: dict, stage: str) -> torch.Tensor:
    """The reference's errG of one stage: both halves' conditional and unconditional terms."""
    return sum(ref["G"]["terms"][stage].values())


def assert_logits(output, expected: dict, what: str) -> None:
    conditional, unconditional = output
    assert_near(conditional, expected["cond"], f"D's conditional logits on {what}")
    assert_near(unconditional, expected["uncond"], f"D's unconditional logits on {what}")


def assert_outputs(outputs, ref: dict) -> None:
    """G's outputs per stage against the recorded grid of pixels (`options['fake_strides']`)."""
    for i, (stride, output) in enumerate(zip(ref["options"]["fake_strides"], outputs, strict=True)):
        assert_near(output[..., ::stride, ::stride], ref["fake"][f"stage{i}"], f"G's outputs at stage {i}")


def per_network(state: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
    prefix = f"discriminator_{int(stage.removeprefix('D'))}."
    return {name: value for name, value in state.items() if name.startswith(prefix)}


def test_stackganpp_options_and_optimisers_are_the_references(monkeypatch):
    """The recording's options are msgan's config (checked in `stackganpp`); its coefficients are msgan's defaults
    (birds_3stages.yml: KL 2, UNCOND_LOSS 1, MS_LOSS 1, COLOR_LOSS 0, R_NUM 2); the optimisers are the reference's:
    Adam, 2e-4, betas (0.5, 0.999), eps 1e-8, no weight decay, for G and for each D (msgan keeps one Adam over both
    Ds: Adam's update is per parameter, so one optimiser over both is two optimisers, one each)."""
    ref, training, _ = stackganpp(monkeypatch)
    options, defaults = ref["options"], compose("model=stackganpp").model
    assert (defaults.lambda_kl, defaults.lambda_uncond, defaults.lambda_color, defaults.residual_blocks) == (
        options["coeff_kl"], options["coeff_uncond"], options["coeff_color"], options["r_num"])
    assert compose("model=stackganpp", "reg=ms").reg.ms.weight == options["coeff_ms"]
    for optimiser, networks in (("generator", ("G",)), ("discriminator", STAGES)):
        group = training.optimizers[optimiser].param_groups[0]
        assert len(training.optimizers[optimiser].param_groups) == 1
        ours = {key: tuple(group[key]) if key == "betas" else group[key] for key in ref["optim"]["G"]}
        for network in networks:
            assert ours == ref["optim"][network], f"{optimiser}'s Adam: {ours}, reference {ref['optim'][network]}"


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "three differences, each in its own xfail test below with its numbers: msgan counts D's real and wrong terms "
    "once per latent group (x 2), the reference once; msgan's KL is half the reference's (the mean over both "
    "groups, the reference's sum of the two groups' means); msgan judges the 2B fakes in one D call, the reference "
    "each half in its own (other BatchNorm statistics). At this recording D's objective is 18.20422 in msgan against "
    "12.17954 (6.040407 + 6.139132) in the reference, G's 10.04888 against 10.66380, the gradients 87 % (D) and "
    "64 % (G) apart (relative L2)."))
def test_stackganpp_step_is_the_references(monkeypatch):
    """msgan's whole StackGAN++ step (Training.step: every stage's D, then G) computes what the reference's step
    computes (module docstring). D's BatchNorm running statistics are left out: they count D's calls (four per stage
    in the reference's D update, three in msgan's) and only a D in eval mode, which neither code runs, reads them."""
    ref, training, batch = stackganpp(monkeypatch)
    draws = use_eps(monkeypatch, ref["eps"])
    seen = step_as_the_loop_does(training, batch, monkeypatch)
    assert draws == {"randn_like": 1}, "one CA draw, as the reference's one G call"
    d, g = seen["D"], seen["G"]
    (outputs,) = d["calls"]["generator"]
    assert_outputs(outputs, ref)
    for i, stage in enumerate(STAGES):
        expected = reference_d_terms(ref, stage)
        for term in ("real", "wrong", "fake"):
            assert_loss(d["terms"][f"Loss/D/{term}_stage{i}"], expected[term], f"D{i}'s {term} term")
    assert_loss(d["terms"]["Loss/D/total"], sum(ref["D"][s]["loss"] for s in STAGES), "D's objective")
    for stage in STAGES:
        grads = recipe_state(stage, ref["D"][stage]["grads"])
        assert_gradients(per_network(d["grads"], stage), grads, f"{stage}'s gradient")
        assert_adam_step(per_network(d["after"], stage), recipe_state(stage, ref["D"][stage]["after"]), grads,
                         ref["optim"][stage]["lr"], f"{stage} after its step")
    for i, stage in enumerate(STAGES):
        assert_loss(g["terms"][f"Loss/G/adv_stage{i}"], reference_adv(ref, stage), f"G's adversarial term at stage {i}")
    assert_loss(g["terms"]["Loss/G/kl"], ref["G"]["loss_kl"], "G's KL term")
    assert_loss(g["terms"]["Loss/G/ms"], ref["G"]["loss_lz"], "G's mode seeking term")
    assert_loss(g["terms"]["Loss/G/total"], ref["G"]["loss"], "G's objective")
    g_grads = recipe_state("G", ref["G"]["grads"])
    assert_gradients(g["grads"], g_grads, "G's gradient")
    assert_adam_step(g["after"], recipe_state("G", ref["G"]["after"]), g_grads, ref["optim"]["G"]["lr"], "G after its step")


def test_stackganpp_step_matches_where_no_difference_is_stated(monkeypatch):
    """Where no difference is stated, msgan's own step (Training.step) computes the reference's numbers: G's outputs,
    D's logits on the real and on the wrong images (their own D calls in both codes), and mode seeking on the last
    stage with z alone in the denominator."""
    ref, training, batch = stackganpp(monkeypatch)
    use_eps(monkeypatch, ref["eps"])
    seen = step_as_the_loop_does(training, batch, monkeypatch)
    d, g = seen["D"], seen["G"]
    (outputs,) = d["calls"]["generator"]
    assert_outputs(outputs, ref)
    for i, stage in enumerate(STAGES):
        real, wrong, _ = d["calls"][f"discriminator_{i}"]
        assert_logits(real, ref["D"][stage]["logits"]["real"], f"the real images at stage {i}")
        assert_logits(wrong, ref["D"][stage]["logits"]["wrong"], f"the wrong images at stage {i}")
    assert_loss(g["terms"]["Loss/G/ms"], ref["G"]["loss_lz"], "G's mode seeking term")


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "msgan counts D's real and wrong terms once per latent group (generated_batch_terms D: real_*, wrong_*: x 2 with "
    "trainer.pair_batch=doubled); the reference's errD = errD_real + errD_wrong + (fake1 + fake2) counts them once "
    "(MSGAN doubled only the fakes of StackGAN-v2's errD). D's logits on them are the reference's; the terms are 2x: "
    "stage 0 real 2.559747 against 1.279874, wrong 4.452132 against 2.226066; stage 1 real 2.592788 against "
    "1.296394, wrong 2.781030 against 1.390515."))
def test_d_counts_the_real_and_wrong_terms_once(monkeypatch):
    ref, training, batch = stackganpp(monkeypatch)
    use_eps(monkeypatch, ref["eps"])
    d = step_as_the_loop_does(training, batch, monkeypatch)["D"]
    for i, stage in enumerate(STAGES):
        real, wrong, _ = d["calls"][f"discriminator_{i}"]
        assert_logits(real, ref["D"][stage]["logits"]["real"], f"the real images at stage {i}")
        assert_logits(wrong, ref["D"][stage]["logits"]["wrong"], f"the wrong images at stage {i}")
        expected = reference_d_terms(ref, stage)
        assert_loss(d["terms"][f"Loss/D/real_stage{i}"], expected["real"], f"D{i}'s real term")
        assert_loss(d["terms"][f"Loss/D/wrong_stage{i}"], expected["wrong"], f"D{i}'s wrong term")


def test_real_wrong_and_kl_terms_are_the_references_counted_as_the_reference_counts_them(monkeypatch):
    """The two counting differences undone: msgan's D real and wrong terms counted once (its reported terms / 2, the
    latent groups `loss_scale` counts them for) and its KL summed over the two latent groups (x 2) are the
    reference's errD_real, errD_wrong and kl_loss."""
    ref, training, batch = stackganpp(monkeypatch)
    use_eps(monkeypatch, ref["eps"])
    seen = step_as_the_loop_does(training, batch, monkeypatch)
    groups = training.pairs
    assert groups == 2
    for i, stage in enumerate(STAGES):
        expected = reference_d_terms(ref, stage)
        assert_loss(seen["D"]["terms"][f"Loss/D/real_stage{i}"] / groups, expected["real"], f"D{i}'s real term, once")
        assert_loss(seen["D"]["terms"][f"Loss/D/wrong_stage{i}"] / groups, expected["wrong"], f"D{i}'s wrong term, once")
    assert_loss(groups * seen["G"]["terms"]["Loss/G/kl"], ref["G"]["loss_kl"], "G's KL term, per latent group")


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "msgan's KL is lambda_kl x the mean over all 2B rows of CA's codes, counted once ('kl' is not in "
    "generated_batch_terms); the reference's is (KL(mu1, logvar1) + KL(mu2, logvar2)) x 2, one mean per latent "
    "group, summed: twice msgan's. At this recording msgan's KL term is 0.3384359 against 0.6768717; CA's mu and "
    "logvar are the reference's."))
def test_kl_counts_each_latent_group(monkeypatch):
    ref, training, batch = stackganpp(monkeypatch)
    use_eps(monkeypatch, ref["eps"])
    recipe = training.session.recipe
    mu, logvar = recipe.generator.ca.encode(torch.cat([ref["text"], ref["text"]]))
    assert_near(mu, ref["mu"], "CA's mu")
    assert_near(logvar, ref["logvar"], "CA's logvar")
    g = step_as_the_loop_does(training, batch, monkeypatch)["G"]
    assert_loss(g["terms"]["Loss/G/kl"], ref["G"]["loss_kl"], "G's KL term")


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "msgan judges the 2B fakes in one D call per stage (in D's update and in G's), the reference each half in its "
    "own call (D(fake1, mu1), D(fake2, mu2)), so D's BatchNorm normalises the fakes with other batch statistics: D's "
    "logits on the fakes are up to 0.19 (stage 0) and 0.92 (stage 1) apart. At this recording D's fake term is "
    "2.488940 in msgan against 2.534467 at stage 0 and 3.329578 against 3.452223 at stage 1; G's adversarial term "
    "3.777438 against 3.860813 at stage 0 and 2.547661 against 2.740766 at stage 1. "
    "test_stackganpp_differs_only_where_stated calls D per half, and every number matches."))
def test_d_judges_each_fake_half_in_its_own_call(monkeypatch):
    ref, training, batch = stackganpp(monkeypatch)
    use_eps(monkeypatch, ref["eps"])
    seen = step_as_the_loop_does(training, batch, monkeypatch)
    n = len(ref["text"])
    for phase, index in (("D", 2), ("G", 0)):
        for i, stage in enumerate(STAGES):
            fakes = seen[phase]["calls"][f"discriminator_{i}"][index]
            expected = (ref["D"][stage]["logits"] if phase == "D" else ref["G"]["logits"][stage])
            for half, rows in zip(HALVES, (slice(0, n), slice(n, 2 * n))):
                assert_logits([logits[rows] for logits in fakes], expected[half], f"{half} at stage {i} in {phase}'s update")
    for i, stage in enumerate(STAGES):
        assert_loss(seen["D"]["terms"][f"Loss/D/fake_stage{i}"], reference_d_terms(ref, stage)["fake"], f"D{i}'s fake term")
        assert_loss(seen["G"]["terms"][f"Loss/G/adv_stage{i}"], reference_adv(ref, stage), f"G's adversarial term at {i}")


# --- the reference's step with msgan's pieces ---------------------------------------------------------------------

def colour_detached(recipe, outputs: list[torch.Tensor], weight: float) -> dict[str, torch.Tensor]:
    """The reference's colour consistency: each stage's colour moments against the lower stage's, detached."""
    terms = {}
    for i in range(1, len(outputs)):
        (mean_high, cov_high), (mean_low, cov_low) = colour_moments(outputs[i]), colour_moments(outputs[i - 1].detach())
        terms[f"colour_stage{i}"] = weight * (torch.nn.functional.mse_loss(mean_high, mean_low)
                                              + 5 * torch.nn.functional.mse_loss(cov_high, cov_low))
    return terms


def reference_step_by_hand(training: Training, batch: Batch, colour: str | None = None) -> dict:
    """The reference's step (module docstring) with msgan's networks, GAN loss (`recipe.gan_loss`), KL
    (`kl_to_prior`), mode seeking term (the `ms` regulariser), step context (its one G call on the doubled batch) and
    optimisers, with msgan's differences undone: D's real and wrong terms counted once, the KL summed over the two
    latent groups, D called once per fake half. `colour`: None (off), "detached" (the reference's) or "msgan" (the
    recipe's own colour term, `model.lambda_color` > 0). Returns what it computed, by the reference's names."""
    session, recipe = training.session, training.session.recipe
    gan, uncond = recipe.gan_loss, float(recipe.cfg.lambda_uncond)
    ctx = StepContext(recipe, batch, 0, training.pairs, session.cfg.trainer.pair_batch)
    fake = ctx.generated()
    n = fake.per_group
    halves = {"fake1": slice(0, n), "fake2": slice(n, 2 * n)}
    record = {"outputs": [fake.outputs[o].detach() for o in recipe.output_names], "D": {}, "G": {"logits": {}, "terms": {}}}

    # Each stage's D update: four calls, real and wrong with mu of the captions, each fake half with its own mu.
    with torch.no_grad():
        mu_real = recipe.generator.ca.encode(ctx.condition["text"])[0]
        mu_fake = recipe.generator.ca.encode(fake.condition["text"])[0]
    d_optimizer = training.optimizers["discriminator"]
    d_optimizer.zero_grad(set_to_none=True)
    d_total = 0
    for i, (stage, output) in enumerate(zip(STAGES, recipe.output_names)):
        discriminator, size = getattr(recipe, recipe.discriminator_names[i]), recipe.stage_sizes[i]
        real, wrong = resize_floats(batch.samples, size), resize_floats(batch.inputs["wrong"], size)
        logits = {"real": discriminator(real, mu_real), "wrong": discriminator(wrong, mu_real)}
        for half, rows in halves.items():
            logits[half] = discriminator(fake.outputs[output][rows].detach(), mu_fake[rows])
        terms = {"real": gan.as_real(logits["real"][0]), "wrong": gan.as_fake(logits["wrong"][0]),
                 "fake1": gan.as_fake(logits["fake1"][0]), "fake2": gan.as_fake(logits["fake2"][0]),
                 "real_uncond": gan.as_real(logits["real"][1]), "wrong_uncond": gan.as_real(logits["wrong"][1]),
                 "fake1_uncond": gan.as_fake(logits["fake1"][1]), "fake2_uncond": gan.as_fake(logits["fake2"][1])}
        loss = (terms["real"] + uncond * terms["real_uncond"]) + (terms["wrong"] + uncond * terms["wrong_uncond"]) \
            + (terms["fake1"] + terms["fake2"] + uncond * (terms["fake1_uncond"] + terms["fake2_uncond"]))
        record["D"][stage] = {"logits": {k: [x.detach() for x in v] for k, v in logits.items()},
                              "terms": {k: v.detach() for k, v in terms.items()}, "loss": loss.detach()}
        d_total = d_total + loss
    d_total.backward()
    names = {id(p): name for name, p in recipe.named_parameters()}
    record["D"]["grads"] = {names[id(p)]: p.grad.clone() for g in d_optimizer.param_groups for p in g["params"]}
    d_optimizer.step()
    record["D"]["after"] = {k: v.clone() for k, v in recipe.state_dict().items() if k.startswith("discriminator_")}

    # G's update through the updated Ds: two calls per stage, mu with its gradient.
    g_optimizer = training.optimizers["generator"]
    g_optimizer.zero_grad(set_to_none=True)
    mu, logvar = recipe.generator.ca.encode(fake.condition["text"])
    adversarial = 0
    for i, (stage, output) in enumerate(zip(STAGES, recipe.output_names)):
        discriminator = getattr(recipe, recipe.discriminator_names[i])
        logits = {half: discriminator(fake.outputs[output][rows], mu[rows]) for half, rows in halves.items()}
        terms = {"fake1": gan.generator(logits["fake1"][0]), "fake2": gan.generator(logits["fake2"][0]),
                 "fake1_uncond": gan.generator(logits["fake1"][1]), "fake2_uncond": gan.generator(logits["fake2"][1])}
        record["G"]["logits"][stage] = {k: [x.detach() for x in v] for k, v in logits.items()}
        record["G"]["terms"][stage] = {k: v.detach() for k, v in terms.items()}
        adversarial = adversarial + terms["fake1"] + terms["fake2"] + uncond * (terms["fake1_uncond"] + terms["fake2_uncond"])
    kl = recipe.cfg.lambda_kl * sum(kl_to_prior(mu[rows], logvar[rows]) for rows in halves.values())
    mode_seeking = next(r for r in session.regularizers if r.name == "ms").terms("G", ctx)["ms"]
    g_loss = adversarial + kl + mode_seeking
    if colour == "detached":
        colours = colour_detached(recipe, [fake.outputs[o] for o in recipe.output_names], float(recipe.cfg.lambda_color))
    elif colour == "msgan":
        colours = {k: v for k, v in recipe.generator_terms(ctx).items() if k.startswith("colour_")}
    else:
        colours = {}
    g_loss = g_loss + sum(colours.values())
    record["G"].update(loss_kl=kl.detach(), loss_lz=mode_seeking.detach(), loss=g_loss.detach(),
                       colour={k: v.detach() for k, v in colours.items()})
    g_loss.backward()
    record["G"]["grads"] = {names[id(p)]: p.grad.clone() for g in g_optimizer.param_groups for p in g["params"]}
    g_optimizer.step()
    state = recipe.state_dict()
    record["G"]["after"] = {k: v.clone() for k, v in state.items() if k.startswith("generator.")}
    record["G"]["D_buffers_after"] = {k: v.clone() for k, v in buffers_of(state).items() if k.startswith("discriminator_")}
    return record


def test_stackganpp_differs_only_where_stated(monkeypatch):
    """With msgan's own networks, GAN loss, KL, mode seeking term, step context and optimisers, and the three
    differences of the xfail tests undone (`reference_step_by_hand`), every number of the reference's step comes
    out: G's outputs, D's logits of every call, every BCE term, each D's loss, every gradient, the weights and
    BatchNorm buffers after each step, and the weight average with the reference's decay."""
    ref, training, batch = stackganpp(monkeypatch)
    draws = use_eps(monkeypatch, ref["eps"])
    recipe = training.session.recipe
    average = weight_average(recipe, training.session.cfg.trainer.ema)   # as the loop makes it, before the first step
    record = reference_step_by_hand(training, batch)
    assert draws == {"randn_like": 1}
    assert_outputs(record["outputs"], ref)

    for stage in STAGES:
        ours, theirs = record["D"][stage], ref["D"][stage]
        for call, expected in theirs["logits"].items():
            assert_logits(ours["logits"][call], expected, f"{call} in {stage}'s update")
        for term, expected in theirs["terms"].items():
            assert_loss(ours["terms"][term], expected, f"{stage}'s term {term}")
        assert_loss(ours["loss"], theirs["loss"], f"{stage}'s loss")
        grads = recipe_state(stage, theirs["grads"])
        assert_gradients(per_network(record["D"]["grads"], stage), grads, f"{stage}'s gradient")
        after = recipe_state(stage, theirs["after"])
        assert_adam_step(parameters_of(per_network(record["D"]["after"], stage)), after, grads, ref["optim"][stage]["lr"],
                         f"{stage} after its step")
        for name, expected in buffers_of(after).items():   # the running statistics of the four D calls
            assert_near(record["D"]["after"][name].float(), expected.float(), name)

    for stage in STAGES:
        for call, expected in ref["G"]["logits"][stage].items():
            assert_logits(record["G"]["logits"][stage][call], expected, f"{call} in G's update ({stage})")
        for term, expected in ref["G"]["terms"][stage].items():
            assert_loss(record["G"]["terms"][stage][term], expected, f"G's term {term} ({stage})")
    assert_loss(record["G"]["loss_kl"], ref["G"]["loss_kl"], "G's KL term")
    assert_loss(record["G"]["loss_lz"], ref["G"]["loss_lz"], "G's mode seeking term")
    assert_loss(record["G"]["loss"], ref["G"]["loss"], "G's objective")
    g_grads = recipe_state("G", ref["G"]["grads"])
    assert_gradients(record["G"]["grads"], g_grads, "G's gradient")
    g_after = recipe_state("G", ref["G"]["after"])
    assert_adam_step(parameters_of(record["G"]["after"]), g_after, g_grads, ref["optim"]["G"]["lr"], "G after its step")
    for name, expected in buffers_of(g_after).items():   # G's BatchNorm: its one call
        assert_near(record["G"]["after"][name].float(), expected.float(), name)
    lr_d = ref["optim"]["D0"]["lr"]
    for name, expected in renamed(ref["G"]["D_buffers_after"], stackganpp_name).items():
        # D's running means carry the biases of D's BatchNorm'd convs, whose gradient is rounding noise and whose
        # step may go either way (up to 2 lr apart: test_parity.py's docstring)
        if "running_mean" in name:
            assert float((record["G"]["D_buffers_after"][name] - expected).abs().max()) <= 2 * lr_d, name
        else:
            assert_near(record["G"]["D_buffers_after"][name].float(), expected.float(), name)

    # The weight average after the step: the reference's 0.999 avg + 0.001 G. msgan's WeightAverage with that decay
    # gives it; msgan's own decay at step 0 is its deliberate warm-up, min(0.999, 1 / 10) (train/ema.py).
    assert average.decay_at(0) == pytest.approx(0.1) and average.decay == 0.999
    monkeypatch.setattr(average, "decay_at", lambda step: 0.999)
    average.update(0)
    expected = recipe_state("G", ref["avg"])
    ours = dict(average.average["generator"].named_parameters())
    assert set(expected) == {f"generator.{name}" for name in ours}
    for name, value in ours.items():
        assert_near(value, expected[f"generator.{name}"], f"the weight average's {name}")


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "with model.lambda_color > 0 (0 by default, as the reference's birds), msgan's colour consistency term takes the "
    "lower stage's colour moments with their gradient, so it also pulls the lower stage towards the higher one; the "
    "reference's compute_mean_covariance(self.fake_imgs[-2].detach()) does not, so that its colour term gives the "
    "stage-0 head no gradient at all. The term's value is the reference's (0.05691 + 5 x 0.009320 = 0.1036646 at "
    "COLOR_LOSS 1 here); G's gradient (with every other difference undone) is 0.56 % apart (relative L2), the stage-0 "
    "head's and the first branch's last BatchNorm's by 11 %; "
    "test_colour_term_is_the_references_with_the_lower_stage_detached shows that this is all."))
def test_colour_term_leaves_the_lower_stage_as_it_is(monkeypatch):
    ref, training, batch = stackganpp(monkeypatch, colour=True)
    use_eps(monkeypatch, ref["eps"])
    record = reference_step_by_hand(training, batch, colour="msgan")
    colour_reference_g_update(record, ref)


def test_colour_term_is_the_references_with_the_lower_stage_detached(monkeypatch):
    """G's update of the recording's second run (COLOR_LOSS 1, the same state, batch, latents, eps and D update),
    with the colour term computed as the reference computes it (the lower stage detached) and the other differences
    undone (`reference_step_by_hand`): every number matches."""
    ref, training, batch = stackganpp(monkeypatch, colour=True)
    use_eps(monkeypatch, ref["eps"])
    record = reference_step_by_hand(training, batch, colour="detached")
    colour_reference_g_update(record, ref)


def colour_reference_g_update(record: dict, ref: dict) -> None:
    run, weight = ref["G_colour"], ref["options"]["coeff_color_run"]
    expected = weight * (run["colour_mse"]["mean"] + 5 * run["colour_mse"]["covariance"])
    assert_loss(record["G"]["colour"]["colour_stage1"], expected, "G's colour consistency term")
    for stage in STAGES:
        for term, value in run["terms"][stage].items():
            assert_loss(record["G"]["terms"][stage][term], value, f"G's term {term} ({stage}) with the colour term")
    assert_loss(record["G"]["loss"], run["loss"], "G's objective with the colour term")
    assert_gradients(record["G"]["grads"], recipe_state("G", run["grads"]), "G's gradient with the colour term")
