"""msgan's DRIT against the official MSGAN code (HelenMao/MSGAN, commit e386c25, `DRIT-Mode-Seeking`), step for step.

`tests/parity/drit/reference.pt` holds one d_iter cycle of the reference (train.py's loop body for iterations
0, 1, 2: `update_D_content` twice, then `update_D` and `update_EG`) run on the CPU from a known state: the initial
weights of every network, the three batches, every random draw (content noise, attribute samples, z_random and
z_random2), and what each update computed (D's outputs per call and scale, every loss term, every gradient,
weights after the optimiser steps); `PROCEDURE.md` beside it says how it was recorded and what was patched to run
it. Here msgan's recipe is built from the real config at the recording's options, given the same weights
(`drit_name` maps the names: every tensor of either side), batches and draws (`RecordedDraws`), stepped as the loop
steps it (`Training.step`, three steps), and every number is compared with the tolerances test_parity.py states and
justifies (float32 rounding only; Adam's later steps: `assert_adam_steps`). Measured with 1 and 2 threads: losses
<= 2.1e-7 relative, outputs <= 4.3e-7 of their largest, gradients <= 1.2e-6 of the network's largest, weights after
Adam <= 6.2e-6 lr beyond 1e-6 |w| where every step's gradient sign is certain (the LayerNorm scales, near 1, round to
6e-8 = 6e-4 lr, within 1e-6 |w|).

msgan states two deliberate differences (models/drit/__init__.py, docs/models/drit.md), checked as what they are:
- (a) rows: every row of msgan's batch drives every term; the reference encodes sample 0 of its batch of 2 (every
  term of every update) and uses sample 1 only as the real image of disA2 and disB2 in update_D
  (`real_A_random`, `real_B_random`; model.py `forward`, `forward_content`, `update_D`). msgan is fed sample 0 (a
  batch of 1); `test_drit_step_is_the_references` gives disA2 / disB2's real term sample 1 through msgan's own
  `adversarial_d`, and every number matches; `test_drit_differs_only_where_the_reference_uses_sample_1` leaves
  msgan as it is: disA2 / disB2's gradients differ, and no other number beyond rounding.
- (b) phase G recomputes its fakes after EG's update (`Phase.fresh_outputs`); the reference backpropagates through
  the graph of `forward()`, made before EG's update, whose saved weights that update changed in place (as PyTorch
  0.4 computed it: PROCEDURE.md, patch 6). The recording holds both that G-alone update (`G`) and the reference
  patched to recompute its random-attribute fakes after EG's update (`G_fresh`), bitwise the same before it: msgan
  equals `G_fresh` (`test_drit_step_is_the_references`), and `test_drit_phase_g_differs_only_by_the_fresh_forward`
  shows where it differs from `G`.

Differences fixed in msgan and now tested as equalities (the first, second and last found here, as strict xfails):
- the generator's up-sampling layers have the reference's learned per-channel LayerNorm scale and shift
  (`test_drit_layer_norm_is_the_references`);
- both outputs of a mode-seeking pair are rendered from one content code per condition, as the reference renders
  random and random2 (`test_drit_pair_shares_its_content_code`);
- disA2 / disB2 judge random and random2 one call each, as the reference's two backward_D calls
  (`Generated.judge`, for every model; `discriminator_checks` counts the calls);
- at the reference's 216 px the content discriminator is the reference's Dis_content
  (`test_drit_content_discriminator_at_216px`; the recording's 8 x 8 maps keep msgan's small stack, which patch 3
  builds in the reference).
Still different, by construction and not a number this recording can show: the reference renders the
encoded-attribute outputs and the random pair from one content code; msgan encodes the real images for its random
pair apart from the encoded path's contents (`generate_outputs`), with noise of its own (the same distribution for
each term). `RecordedDraws` hands both the reference's one draw.
Not compared: train.py also makes the last two iterations of every epoch full updates (`it >= len(train_loader) - 2`,
`it` counted from 0 in each epoch); msgan's d_iter counts steps over the run.
"""
from __future__ import annotations

import re

import pytest
import torch
from test_parity import CERTAIN_SIGN, GRAD_TOL, assert_adam_step, assert_gradients, assert_loss, assert_near, recording, renamed

import msgan_cli.models.drit as drit_module
import msgan_cli.train.step as step_module
from conftest import compose
from msgan_cli.core import stats
from msgan_cli.core.batch import Batch
from msgan_cli.core.context import StepContext
from msgan_cli.models.drit.networks import ContentDiscriminator, MultiScaleDiscriminator
from msgan_cli.train.step import Training, build_training

D_NETWORKS = {"disA": "discriminator_a", "disB": "discriminator_b", "disA2": "discriminator_a2", "disB2": "discriminator_b2"}
LAYER_NORMS = {"decA2": ("domain_a", "up1"), "decA3": ("domain_a", "up2"), "decB2": ("domain_b", "up1"),
               "decB3": ("domain_b", "up2")}


# The reference's state-dict names -> msgan's (recipe-level) names; None: a tensor msgan does not have (none now:
# `mapped` reports any). The generator is the recording's G_concat (concat 1); the MLP variant G is not mapped.
def drit_name(network: str, name: str) -> str | None:
    layer, param = name.rsplit(".", 1)
    if network in D_NETWORKS:   # MultiScaleDis: Diss.<scale>.<k>.model.1 (LeakyReLUConv2d k), Diss.<scale>.4 the last conv
        scale, k = re.fullmatch(r"Diss\.(\d+)\.(\d+)(?:\.model\.1)?", layer).groups()
        return f"{D_NETWORKS[network]}.scales.{scale}.{3 * int(k) + 1 if '.model.' in layer else 3 * int(k)}.{param}"
    if network == "disContent":   # the recording's Dis_content (PROCEDURE.md, patch 3): 4x4 stride-2 conv, 4x4 conv, 1x1 conv
        index = {"model.0.model.1": 1, "model.1.model.1": 3, "model.2": 5}[layer]
        return f"content_discriminator.network.{index}.{param}"
    if network == "enc_c":   # E_content: convA / convB (LeakyReLUConv2d, 2 ReLUINSConv2d, 3 INSResBlock), conv_share
        if match := re.fullmatch(r"conv_share\.0\.model\.([15])", layer):
            return f"content_encoder.shared.body.{match[1]}.{param}"
        domain, k, index = re.fullmatch(r"conv([AB])\.(\d)\.model\.(\d)", layer).groups()
        stem = f"content_encoder.domain_{domain.lower()}"
        return f"{stem}.{(1, 4, 8)[int(k)]}.{param}" if int(k) < 3 else f"{stem}.{8 + int(k)}.body.{index}.{param}"
    if network == "enc_a":   # E_attr_concat: conv_A (conv, 3 BasicBlocks), fc_A (mu), fcVar_A (logvar); the same for B
        kind, domain, block, inner = re.fullmatch(r"(conv|fc|fcVar)_([AB])\.(\d)\.?(.*)", layer).groups()
        stem = f"attribute_encoder_{domain.lower()}"
        if kind != "conv":
            return f"{stem}.{'mu' if kind == 'fc' else 'logvar'}.{param}"
        inner = {"": "", "conv.2": ".body.2", "conv.4.1": ".body.5", "shortcut.1": ".shortcut.1"}[inner]
        return f"{stem}.features.{block}{inner}.{param}"
    if network == "gen":   # G_concat: dec_share, decA1 (3 INSResBlock), decA2 / decA3 (ConvTranspose + LayerNorm), decA4
        if match := re.fullmatch(r"dec_share\.0\.model\.([15])", layer):
            return f"generators.shared.body.{match[1]}.{param}"
        if match := re.fullmatch(r"dec([AB])1\.(\d)\.model\.([15])", layer):
            return f"generators.domain_{match[1].lower()}.blocks.{match[2]}.body.{match[3]}.{param}"
        if match := re.fullmatch(r"(dec[AB][23])\.0\.model\.([01])", layer):   # model.0 the ConvTranspose2d,
            domain, up = LAYER_NORMS[match[1]]                                  # model.1 the affine LayerNorm(n_out)
            return f"generators.{domain}.{up}.up.{param}" if match[2] == "0" else f"generators.{domain}.{up}.{param}"
        domain, = re.fullmatch(r"dec([AB])4\.0", layer).groups()
        return f"generators.domain_{domain.lower()}.out.{param}"
    raise KeyError(network)


def mapped(states: dict[str, dict]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The reference's tensors under msgan's names, and the reference names msgan has no tensor for."""
    names = {(network, name): drit_name(network, name) for network, state in states.items() for name in state}
    return (renamed({n: {k: v for k, v in s.items() if names[n, k]} for n, s in states.items()},
                    lambda network, name: names[network, name]),
            sorted(f"{network}.{name}" for (network, name), ours in names.items() if ours is None))


def layer_norm_names() -> list[str]:
    """msgan's names of the generator's LayerNorm scales and shifts (the reference's decX2 / decX3 .0.model.1)."""
    return sorted(f"generators.{domain}.{up}.{p}" for domain, up in LAYER_NORMS.values() for p in ("weight", "bias"))


def images(pixels: torch.Tensor) -> torch.Tensor:
    """dataset_unpair's ToTensor + Normalize(0.5, 0.5) of the recorded uint8 pixels."""
    return (pixels.float() / 255 - 0.5) / 0.5


# --- building msgan at the recording's options -----------------------------------------------------------------

def drit_training(ref: dict) -> Training:
    options = ref["options"]
    lr, lr_content = ref["optim"]["gen_opt"]["lr"], ref["optim"]["disContent_opt"]["lr"]
    cfg = compose("model=drit", "reg=ms", f"model.width={options['width']}", f"model.nz={options['nz']}",
                  f"model.concat={bool(options['concat'])}", f"model.d_iter={options['d_iter']}",
                  f"model.discriminator.scales={options['dis_scale']}", f"model.discriminator.layers={options['dis_n_layer']}",
                  f"dataset.resolution={options['image_size']}", "trainer.batch_size=1",
                  f"model.optim.lr_g={lr}", f"model.optim.lr_d={lr}", f"model.optim.lr_content={lr_content}")
    assert cfg.model.gan_loss == "bce" and cfg.trainer.pair_batch == "doubled" and cfg.model.content_noise == 1.0
    assert cfg.model.lambda_rec == cfg.model.lambda_latent == 10.0 and cfg.model.lambda_kl == cfg.model.lambda_content == 0.01
    assert cfg.reg.ms.weight == 1.0 and cfg.reg.ms.eps == 1e-5 and cfg.reg.ms.reduction == "mean"
    training = build_training(cfg)
    recipe = training.session.recipe
    size = options["image_size"]
    assert recipe.sample_shape == (options["input_dim_b"], size, size)
    assert training.session.data.input_shape == (options["input_dim_a"], size, size)
    weights, unmapped = mapped(ref["init"])
    assert not unmapped, unmapped
    own = recipe.state_dict()
    for name in layer_norm_names():   # the LayerNorm scales and shifts: msgan's own initial values (1, 0) are the reference's
        assert torch.equal(own[name], weights[name]), name
    recipe.load_state_dict(weights, strict=True)   # every tensor of either side
    return training


class RecordedDraws:
    """The reference's random draws, handed to msgan where it draws: the content noise of `ContentEncoder.encode`
    (per call, by what it encodes: the step's real image of a domain, or a fake), the attribute samples of
    `drit.attribute` (in order: A, B, then the cross-cycle's A, B), and the latents of `sample_latent`.

    Where msgan draws noise the reference does not, it gets the reference's draw of what it stands for: msgan's
    random-attribute outputs encode the real images again (`generate_outputs`: once per condition, the code shared
    by both rows of the pair, as the reference's), apart from the encoded path's contents; the reference renders
    the encoded-attribute, the random and the random2 outputs from one content code, so that draw is handed to
    both. Phase G's refresh gets the noise the reference's fresh forward drew (`G_fresh`). Every draw is handed
    over in the shape msgan asks for it (`drawn` asserts it): one row per image the reference encoded."""

    def __init__(self, ref: dict, monkeypatch, recipe):
        steps, full = ref["steps"], ref["steps"][-1]
        self.noise = {("real", "A"): [s["draws"]["noise_a"] for s in steps[:-1]] + [full["draws"]["noise_a"]] * 2
                      + [full["G_fresh"]["draws"]["noise_a"]],
                      ("real", "B"): [s["draws"]["noise_b"] for s in steps[:-1]] + [full["draws"]["noise_b"]] * 2
                      + [full["G_fresh"]["draws"]["noise_b"]],
                      ("fake", "A"): [full["draws"]["noise_fake_a"]], ("fake", "B"): [full["draws"]["noise_fake_b"]]}
        self.eps = [full["draws"][k] for k in ("eps_a", "eps_b", "eps_recon_a", "eps_recon_b")]
        self.latents = [torch.cat([full["draws"]["z_random"], full["draws"]["z_random2"]])]
        self.real: dict[str, torch.Tensor] = {}
        self.monkeypatch = monkeypatch
        encode, attribute = recipe.content_encoder.encode, drit_module.attribute
        monkeypatch.setattr(recipe.content_encoder, "encode", lambda x, domain: self.encode(encode, x, domain))
        monkeypatch.setattr(drit_module, "attribute", lambda mu, logvar: self.drawn(attribute, self.eps.pop(0), mu, logvar))
        monkeypatch.setattr(recipe, "sample_latent", self.sample_latent)

    def drawn(self, function, draw: torch.Tensor, *args):
        """`function(*args)` with its one `torch.randn_like` giving `draw`."""
        calls = []

        def randn_like(like):
            assert like.shape == draw.shape and not calls, f"msgan draws {tuple(like.shape)}; the reference {tuple(draw.shape)}"
            calls.append(like)
            return draw.clone()
        with self.monkeypatch.context() as m:
            m.setattr(torch, "randn_like", randn_like)
            result = function(*args)
        assert calls, "msgan drew no noise here"
        return result

    def encode(self, original, x: torch.Tensor, domain: str) -> torch.Tensor:
        kind = "real" if torch.equal(x, self.real[domain].expand_as(x)) else "fake"
        return self.drawn(original, self.noise[kind, domain].pop(0), x, domain)

    def sample_latent(self, n, device, generator=None):
        z = self.latents.pop(0)
        assert n == len(z), f"msgan asked for {n} latents; the reference drew {len(z)}"
        return z.clone().to(device)

    def assert_used(self) -> None:
        assert not self.eps and not self.latents and not any(self.noise.values()), "draws the reference made that msgan did not"


class Steps:
    """A batch source handing out the reference's batches, one per step: sample 0 of each (what the reference
    encodes; (a) in the module docstring)."""

    def __init__(self, ref: dict, draws: RecordedDraws):
        self.batches = [(images(b["A"])[:1], images(b["B"])[:1]) for b in ref["batches"]]
        self.draws = draws

    def next(self, device):
        a, b = self.batches.pop(0)
        self.draws.real = {"A": a, "B": b}
        return Batch(b, None, a).to(device)


def run_cycle(ref: dict, monkeypatch, *, reference_rows: bool = True) -> dict:
    """msgan's three steps (`Training.step` 0, 1, 2) on the recording; per (step, phase), what its optimiser step saw
    (reported terms, gradients, parameters after it), each discriminator's outputs in the phase (one entry per
    call), and G's outputs (`generate_outputs`, per call). `reference_rows`: disA2 / disB2's real term on sample 1,
    as the reference's (else msgan's own rows, sample 0)."""
    training = drit_training(ref)
    recipe = training.session.recipe
    draws = RecordedDraws(ref, monkeypatch, recipe)
    training.source = Steps(ref, draws)
    names = {id(p): name for name, p in recipe.named_parameters()}
    seen: dict = {"encoded": [], "generated": []}
    current: list = [None]
    calls: dict[str, list] = {net: [] for net in recipe.discriminator_names}
    for net in calls:
        getattr(recipe, net).register_forward_hook(
            lambda m, i, out, net=net: calls[net].append([t.detach().clone() for t in out] if isinstance(out, list)
                                                         else out.detach().clone()))
    if reference_rows:   # disA2 / disB2's real term on the reference's real_A_random / real_B_random: sample 1
        second = {"A": images(ref["batches"][-1]["A"])[1:2], "B": images(ref["batches"][-1]["B"])[1:2]}
        adversarial_d = recipe.adversarial_d

        def on_sample_1(name, real, fake, output=None):
            if name in ("discriminator_a2", "discriminator_b2"):
                domain = "A" if name == "discriminator_a2" else "B"
                assert torch.equal(real, draws.real[domain]), "msgan's own real rows"
                real = second[domain]
            return adversarial_d(name, real, fake, output)
        monkeypatch.setattr(recipe, "adversarial_d", on_sample_1)
    encoded, generate_outputs = recipe.encoded, recipe.generate_outputs
    monkeypatch.setattr(recipe, "encoded", lambda ctx: seen["encoded"].append(encoded(ctx)) or seen["encoded"][-1])
    monkeypatch.setattr(recipe, "generate_outputs", lambda z, c, groups=1: seen["generated"].append(
        generate_outputs(z, c, groups)) or seen["generated"][-1])
    run_phase = step_module.run_phase

    def tagged(phase, ctx, *args, **kwargs):
        current[0] = (ctx.step, phase.name)
        return run_phase(phase, ctx, *args, **kwargs)
    monkeypatch.setattr(step_module, "run_phase", tagged)
    for optimizer in training.optimizers.values():
        def step(*args, _optimizer=optimizer, _step=optimizer.step, **kwargs):
            parameters = [p for group in _optimizer.param_groups for p in group["params"]]
            seen[current[0]] = {"terms": stats.collect(), "calls": {net: list(outs) for net, outs in calls.items()},
                                "grads": {names[id(p)]: p.grad.detach().clone() for p in parameters if p.grad is not None}}
            for outs in calls.values():
                outs.clear()
            result = _step(*args, **kwargs)
            seen[current[0]]["after"] = {names[id(p)]: p.detach().clone() for p in parameters}
            return result
        monkeypatch.setattr(optimizer, "step", step)
    for step_index in range(len(ref["steps"])):
        training.step(step_index)
    draws.assert_used()
    return seen


# --- comparisons ------------------------------------------------------------------------------------------------

def assert_adam_steps(after: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                      grads: list[dict[str, torch.Tensor]], lr: float, what: str) -> None:
    """The parameters after k Adam steps from the same start, with the gradients of each step (`grads`): test_parity's
    rule for one step, over k. Each step moves a weight by at most about lr (|m_hat / sqrt(v_hat)| <= 1 for the
    first steps with betas (0.5, 0.999)); where every step's gradient has a certain sign (|g| > 1e-4 x the
    network's largest) the two codes agree to rounding, 1e-6 |w| + k 1e-3 lr; elsewhere each step may go either
    way: <= 2 k lr."""
    if len(grads) == 1:
        return assert_adam_step(after, expected, grads[0], lr, what)
    assert set(after) == set(grads[-1]), f"{what}: parameters {sorted(set(after) ^ set(grads[-1]))} unmatched"
    k = len(grads)
    certain = {name: torch.ones_like(expected[name], dtype=torch.bool) for name in after}
    for step_grads in grads:
        scale = max(float(g.abs().max()) for g in step_grads.values())
        for name in after:
            certain[name] &= step_grads[name].abs() > CERTAIN_SIGN * scale
    for name in after:
        bound = torch.where(certain[name], 1e-6 * expected[name].abs() + k * 1e-3 * lr, 2 * k * lr + 1e-6 * expected[name].abs())
        error = (after[name] - expected[name]).abs()
        assert (error <= bound).all(), (f"{what} {name}: {int((error > bound).sum())} weights off, "
                                        f"max |msgan - reference| = {float(error.max()):.3g}")


def grads_of(seen_phase: dict, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {n: g for n, g in seen_phase["grads"].items() if n.startswith(prefixes)}


def assert_terms(terms: dict[str, torch.Tensor], expected: dict[str, float], phase: str) -> None:
    for name, value in expected.items():
        assert_loss(terms[f"Loss/{phase}/{name}"], value, f"{phase}'s {name}")


def content_checks(seen: dict, ref: dict) -> None:
    """The content discriminator's update in every step of the cycle (update_D_content, and in update_D)."""
    lr = ref["optim"]["disContent_opt"]["lr"]
    history = []
    for step, recorded in enumerate(ref["steps"]):
        ours, expected = seen[step, "D_content"], recorded["content"]
        logits = ours["calls"]["content_discriminator"]
        assert_near(logits[0].flatten(), expected["logits"]["a"], f"step {step}: content D's logit on A's content")
        assert_near(logits[1].flatten(), expected["logits"]["b"], f"step {step}: content D's logit on B's content")
        assert_terms(ours["terms"], {"adv": expected["loss"], "total": expected["loss"]}, "D_content")
        assert_loss(expected["terms"]["true"] + expected["terms"]["fake"], expected["loss"], "the reference's own sum")
        assert float(expected["grad_norm"]) < 5, "the clipping (norm 5) is not active at this recording"
        grads, unmapped = mapped({"disContent": expected["grads"]})
        assert not unmapped
        assert_gradients(ours["grads"], grads, f"step {step}: content D's gradient")
        history.append(grads)
        assert_adam_steps(ours["after"], mapped({"disContent": expected["after"]})[0], history, lr,
                          f"step {step}: content D after its step")


def discriminator_checks(d: dict, ref: dict, *, reference_rows: bool = True) -> None:
    """Phase D against update_D's four image discriminators: disA / disB on the encoded-attribute fakes (one call
    each on fake and real), disA2 / disB2 on both random-attribute fakes, one call each, as the reference's
    (`Generated.judge`; the reference: one backward_D per fake, each with its own call on real; msgan: one call on
    real for both, counted twice by the pair layout)."""
    recorded = ref["steps"][-1]["D"]
    for ref_net, net in D_NETWORKS.items():
        *fakes, real = d["calls"][net]   # D on the fake (one call per latent group), then on real
        logits = recorded[ref_net]["logits"]
        halves = ("fake",) if ref_net in ("disA", "disB") else ("fake1", "fake2")
        assert len(fakes) == len(halves), f"{net}: {len(fakes)} calls on fakes, the reference's {len(halves)}"
        for scale in range(ref["options"]["dis_scale"]):
            for fake, half in zip(fakes, halves):
                assert_near(fake[scale], logits[half][scale], f"{net}'s logits on {half}, scale {scale}")
            if ref_net in ("disA", "disB") or reference_rows:
                for name in ("real",) if ref_net in ("disA", "disB") else ("real1", "real2"):
                    assert_near(real[scale], logits[name][scale], f"{net}'s logits on {name}, scale {scale}")
    encoded = sum(float(recorded[n]["loss"]) for n in ("disA", "disB"))
    assert_terms(d["terms"], {"adv_encoded": encoded}, "D")
    grads, unmapped = mapped({n: recorded[n]["grads"] for n in ("disA", "disB")})
    assert not unmapped
    assert_gradients(grads_of(d, ("discriminator_a.", "discriminator_b.")), grads, "disA / disB's gradient")
    if reference_rows:
        random = sum(float(x) for n in ("disA2", "disB2") for x in recorded[n]["loss"])
        assert_terms(d["terms"], {"adv_random": random, "total": encoded + random}, "D")
        grads, _ = mapped({n: recorded[n]["grads"] for n in ("disA2", "disB2")})
        assert_gradients(grads_of(d, ("discriminator_a2.", "discriminator_b2.")), grads, "disA2 / disB2's gradient")


EG_TERMS = {"adv_content": ("gan_loss_acontent", "gan_loss_bcontent"), "adv_encoded": ("gan_loss_a", "gan_loss_b"),
            "kl": ("kl_loss_za_a", "kl_loss_za_b"), "content_l2": ("kl_loss_zc_a", "kl_loss_zc_b"),
            "cross_cycle": ("l1_recon_A_loss", "l1_recon_B_loss"), "self_rec": ("l1_recon_AA_loss", "l1_recon_BB_loss")}
G_TERMS = {"adv_random": ("gan2_loss_a", "gan2_loss_b"), "latent_regression": ("l1_recon_z_loss_a", "l1_recon_z_loss_b"),
           "ms": ("lz_AB", "lz_BA")}
ENCODERS_AND_GENERATORS = ("content_encoder.", "attribute_encoder_a.", "attribute_encoder_b.", "generators.")


def summed(terms: dict[str, float], names: dict[str, tuple[str, ...]]) -> dict[str, float]:
    return {ours: sum(terms[n] for n in theirs) for ours, theirs in names.items()}


def encoder_generator_checks(seen: dict, ref: dict) -> None:
    """Phase EG against backward_EG and its three optimiser steps (enc_c, enc_a, gen)."""
    full, eg = ref["steps"][-1], seen[len(ref["steps"]) - 1, "EG"]
    outputs, ours = full["outputs"], seen["encoded"][0]
    for theirs, mine in (("z_content_a", "c_a"), ("z_content_b", "c_b"), ("mu_a", "mu_a"), ("logvar_a", "logvar_a"),
                         ("mu_b", "mu_b"), ("logvar_b", "logvar_b"), ("fake_A_encoded", "fake_a"), ("fake_B_encoded", "fake_b")):
        assert_near(ours[mine], outputs[theirs], f"the encoded path's {mine} ({theirs})")
    assert_terms(eg["terms"], {**summed(full["EG"]["terms"], EG_TERMS), "total": float(full["EG"]["loss"])}, "EG")
    grads, unmapped = mapped(full["EG"]["grads"])
    assert not unmapped
    assert_gradients(grads_of(eg, ENCODERS_AND_GENERATORS), grads, "EG's gradient")
    # The weights after EG's step the recording keeps: the attribute encoders', and the generators' LayerNorm
    # scales and shifts (enc_c's and gen's other weights: through their gradients and their weights after G's step).
    for network, what in (("enc_a", "the attribute encoders"), ("gen", "the generators' LayerNorm scales and shifts")):
        after = mapped({network: full["EG"]["after"][network]})[0]
        assert_adam_step({n: eg["after"][n] for n in after}, after, {n: grads[n] for n in after},
                         ref["optim"][f"{network}_opt"]["lr"], f"{what} after EG's step")


def generator_checks(seen: dict, ref: dict, recorded: dict, *, terms: tuple[str, ...] = tuple(G_TERMS),
                     gradients: bool = True) -> None:
    """Phase G against the G-alone update `recorded` (G_fresh: recomputed after EG's update, as msgan)."""
    full, g = ref["steps"][-1], seen[len(ref["steps"]) - 1, "G"]
    expected = summed(recorded["terms"], G_TERMS)
    assert_terms(g["terms"], {name: expected[name] for name in terms}, "G")
    if set(terms) == set(G_TERMS):
        assert_terms(g["terms"], {"total": float(recorded["loss"])}, "G")
    fresh, = seen["generated"][1:]
    for output, names in (("BtoA", ("fake_A_random", "fake_A_random2")), ("AtoB", ("fake_B_random", "fake_B_random2"))):
        for row, name in enumerate(names):
            assert_near(fresh[output][row:row + 1], recorded["outputs"][name], f"phase G's {output} row {row} ({name})")
    if not gradients:
        return
    grads, unmapped = mapped(recorded["grads"])
    assert not unmapped
    assert_gradients(grads_of(g, ENCODERS_AND_GENERATORS), grads, "G's gradient")
    eg_grads = mapped(full["EG"]["grads"])[0]
    after = mapped(recorded["after"])[0]
    assert_adam_steps({n: g["after"][n] for n in grads}, after, [{n: eg_grads[n] for n in grads}, grads],
                      ref["optim"]["gen_opt"]["lr"], "the content encoder and generators after G's step")


# --- the tests ----------------------------------------------------------------------------------------------------

def test_drit_options_and_optimisers_are_the_references():
    """Adam (0.5, 0.999), weight decay 1e-4: msgan's "generator" optimiser is the reference's enc_c_opt, enc_a_opt
    and gen_opt, "discriminator" its disA_opt .. disB2_opt, "content_discriminator" its disContent_opt (lr / 2.5);
    the phases train the networks the reference's updates step, the content D's gradients clipped to norm 5, the
    rest every d_iter-th step, as train.py's `(it + 1) % d_iter` within an epoch. (train.py also makes the last two
    iterations of every epoch full updates, `it >= len(train_loader) - 2`, and counts `it` from 0 in each epoch;
    msgan counts steps over the run: not compared here.)"""
    ref = recording("drit")
    training = drit_training(ref)
    groups = {"generator": ("enc_c_opt", "enc_a_opt", "gen_opt"),
              "discriminator": ("disA_opt", "disB_opt", "disA2_opt", "disB2_opt"),
              "content_discriminator": ("disContent_opt",)}
    for ours, theirs in groups.items():
        group = training.optimizers[ours].param_groups[0]
        for name in theirs:
            expected = ref["optim"][name]
            got = {key: tuple(group[key]) if key == "betas" else group[key] for key in expected}
            assert got == expected, f"{ours}'s Adam: {got}, the reference's {name}: {expected}"
    phases = {p.name: p for p in training.phases}
    assert list(phases) == ["D_content", "D", "EG", "G"]
    assert phases["D_content"].networks == ("content_discriminator",) and phases["D_content"].clip_grad_norm == 5.0
    assert phases["D"].networks == tuple(D_NETWORKS.values())
    assert phases["EG"].networks == ("content_encoder", "attribute_encoder_a", "attribute_encoder_b", "generators")
    assert phases["G"].networks == ("content_encoder", "generators") and phases["G"].fresh_outputs
    d_iter = ref["options"]["d_iter"]
    for it in range(4 * d_iter):   # train.py: update_D_content unless (it + 1) % d_iter == 0, then update_D, update_EG
        full = (it + 1) % d_iter == 0
        assert [p.name for p in training.phases if p.due(it)] == (["D_content", "D", "EG", "G"] if full else ["D_content"])


def test_drit_step_is_the_references(monkeypatch):
    """msgan's three steps (Training.step) compute what the reference's d_iter cycle computes: the content D's
    update in every step, then update_D (phase D: the image Ds; phase D_content's update in the same step), and
    update_EG (phase EG; phase G against the reference's G-alone update recomputed after EG's update, `G_fresh`:
    (b)). With disA2 / disB2's real term on sample 1 as the reference's ((a)); msgan otherwise as it is."""
    ref = recording("drit")
    seen = run_cycle(ref, monkeypatch)
    full = ref["steps"][-1]
    # The step's outputs, made once in phase D: the random-attribute pair for both directions.
    generated, = seen["generated"][:1]
    for output, names in (("BtoA", ("fake_A_random", "fake_A_random2")), ("AtoB", ("fake_B_random", "fake_B_random2"))):
        for row, name in enumerate(names):
            assert_near(generated[output][row:row + 1], full["outputs"][name], f"{output} row {row} ({name})")
    content_checks(seen, ref)
    discriminator_checks(seen[len(ref["steps"]) - 1, "D"], ref)
    encoder_generator_checks(seen, ref)
    generator_checks(seen, ref, full["G_fresh"])


def test_drit_differs_only_where_the_reference_uses_sample_1(monkeypatch):
    """(a): msgan as it is, on sample 0 (the rows the reference encodes), differs from the reference exactly where the
    reference reads sample 1: the real image of disA2 / disB2 in update_D. Their gradients are 1.8e-3 of the largest
    apart (tolerance 1e-5); their loss only 7e-7 (relative), since at the initial weights a discriminator gives
    nearly the same logits for any image. Every other number is the reference's: the content D in all three
    steps, disA / disB, all of EG, and all of phase G, whose adversarial term goes through disA2 / disB2 after
    their step: Adam's first step moves each weight by about lr * sign(g), and the two gradients' signs agree
    wherever they are not rounding noise."""
    ref = recording("drit")
    seen = run_cycle(ref, monkeypatch, reference_rows=False)
    last, full = len(ref["steps"]) - 1, ref["steps"][-1]
    content_checks(seen, ref)
    discriminator_checks(seen[last, "D"], ref, reference_rows=False)
    encoder_generator_checks(seen, ref)
    generator_checks(seen, ref, full["G_fresh"])
    d = seen[last, "D"]
    grads, _ = mapped({n: full["D"][n]["grads"] for n in ("disA2", "disB2")})
    scale = max(float(g.abs().max()) for g in grads.values())
    error = max(float((d["grads"][n] - g).abs().max()) for n, g in grads.items())
    assert error > 100 * GRAD_TOL * scale, f"disA2 / disB2's gradients: max |msgan - reference| {error:.3g}, max |g| {scale:.3g}"
    random = sum(float(x) for n in ("disA2", "disB2") for x in full["D"][n]["loss"])
    assert float(d["terms"]["Loss/D/adv_random"]) != random


def test_drit_phase_g_differs_only_by_the_fresh_forward():
    """(b): the recording's two reference runs are one run up to the G-alone update (the driver asserts they are
    bitwise equal there; the file keeps that part once, and test_drit_step_is_the_references matches msgan to it).
    Through the pre-update graph (`G`, as the reference runs) and after recomputing its fakes (`G_fresh`, as msgan)
    the update's terms and gradients differ; msgan is `G_fresh` to rounding, so its difference from `G` is this one.
    The adversarial terms hardly move (disA2 / disB2 are the same; 1e-7 and 3e-7 relative); the latent regression
    (1.6e-4, 2.5e-4), mode seeking (1.4e-2, 2.3e-3) and the gradients do (the content encoder's: as far apart as
    they are large; the generators': 3 %). The fresh forward uses EG's updated weights and draws new content noise;
    with forward()'s noise instead, the content encoder's gradient is still 0.70 (relative L2) from `G`
    (PROCEDURE.md, side checks)."""
    ref = recording("drit")
    full = ref["steps"][-1]
    as_run, fresh = full["G"]["terms"], full["G_fresh"]["terms"]
    for name in ("gan2_loss_a", "gan2_loss_b"):
        assert as_run[name] == pytest.approx(fresh[name], rel=1e-6), name
    for name in ("l1_recon_z_loss_a", "l1_recon_z_loss_b", "lz_AB", "lz_BA"):
        assert as_run[name] != pytest.approx(fresh[name], rel=1e-4), name
    for network, least in (("enc_c", 0.5), ("gen", 0.01)):   # relative L2 of the difference
        a, f = full["G"]["grads"][network], full["G_fresh"]["grads"][network]
        difference = sum(float((a[k] - f[k]).pow(2).sum()) for k in a) ** 0.5 / sum(float(f[k].pow(2).sum()) for k in f) ** 0.5
        assert difference > least, f"{network}: G and G_fresh gradients {difference:.3g} apart"
    assert set(full["G"]["grads"]) == set(full["G_fresh"]["grads"]) == {"enc_c", "gen"}


def test_drit_layer_norm_is_the_references(monkeypatch):
    """The generator's up-sampling layers (the reference's ReLUINSConvTranspose2d: decA2, decA3, decB2, decB3) normalise
    with a learned per-channel scale and shift, the reference's affine LayerNorm(n_out) (`UpLayerNorm.weight`,
    `.bias`; found missing by this file and added): msgan's start at the reference's 1 and 0 (`drit_training`), get
    the reference's gradients in EG and in G, and after EG's step are the reference's, which have moved from 1 and 0
    by about lr; phase G, whose fresh forward goes through them, is the reference's `G_fresh` (without them its
    outputs were 3.6e-5, its mode seeking term 3.1e-5 relative and its gradients 1.4e-4 of the largest apart)."""
    ref = recording("drit")
    full = ref["steps"][-1]
    names = layer_norm_names()
    moved = mapped({"gen": full["EG"]["after"]["gen"]})[0]
    assert sorted(moved) == names
    lr = ref["optim"]["gen_opt"]["lr"]
    for name in names:   # the reference's after EG's step: 1 +- lr, 0 +- lr, not 1 and 0 any more
        start = 1.0 if name.endswith("weight") else 0.0
        assert 0.5 * lr < float((moved[name] - start).abs().max()) < 2 * lr, name
    seen = run_cycle(ref, monkeypatch)
    last = len(ref["steps"]) - 1
    eg_grads, g_grads = mapped(full["EG"]["grads"])[0], mapped(full["G_fresh"]["grads"])[0]
    for phase, grads in (("EG", eg_grads), ("G", g_grads)):   # the generators' largest gradient sets the scale
        scale = max(float(g.abs().max()) for n, g in grads.items() if n.startswith("generators."))
        for name in names:
            assert name in seen[last, phase]["grads"], f"{phase}: msgan has no gradient for {name}"
            assert_near(seen[last, phase]["grads"][name], grads[name], f"{phase}'s gradient of {name}", scale, GRAD_TOL)
    assert_adam_step({n: seen[last, "EG"]["after"][n] for n in names}, moved, {n: eg_grads[n] for n in names}, lr,
                     "the LayerNorm scales and shifts after EG's step")
    after_g = mapped({"gen": full["G_fresh"]["after"]["gen"]})[0]
    assert_adam_steps({n: seen[last, "G"]["after"][n] for n in names}, after_g,
                      [{n: eg_grads[n] for n in names}, {n: g_grads[n] for n in names}], lr,
                      "the LayerNorm scales and shifts after G's step")
    generator_checks(seen, ref, full["G_fresh"])


def test_drit_pair_shares_its_content_code(monkeypatch):
    """Both outputs of a mode-seeking pair are rendered from one content code per condition, as the reference renders
    fake_B_random and fake_B_random2 from one z_content_a (one GaussianNoiseLayer draw; model.py forward:
    input_content_forB = cat(z_content_a, z_content_b, z_content_a, z_content_a)), so they differ by z alone: with
    the same latent for both rows the two outputs are one image, in both directions, and the content encoder
    draws noise once per condition, not once per row (`DRIT.generate_outputs`; found and fixed: msgan encoded every
    row of its doubled batch with its own noise, and the pair was 0.0094 (A->B) and 0.0108 (B->A) apart in mean
    |diff|)."""
    ref = recording("drit")
    training = drit_training(ref)
    recipe = training.session.recipe
    batches = ref["batches"][-1]
    batch = Batch(images(batches["B"])[:1], None, images(batches["A"])[:1])
    z = ref["steps"][-1]["draws"]["z_random"]
    monkeypatch.setattr(recipe, "sample_latent", lambda n, device, generator=None: z.repeat(n, 1))
    encoded = []
    encode = recipe.content_encoder.encode
    monkeypatch.setattr(recipe.content_encoder, "encode", lambda x, domain: encoded.append((domain, len(x))) or encode(x, domain))
    torch.manual_seed(0)
    ctx = StepContext(recipe, batch, len(ref["steps"]) - 1, training.pairs, "doubled")
    with torch.no_grad():
        for output in ("AtoB", "BtoA"):
            fake1, fake2, z1, z2 = ctx.pair(output)
            assert torch.equal(z1, z2)
            assert torch.equal(fake1, fake2), f"{output}: the pair at z1 == z2 is {float((fake1 - fake2).abs().mean()):.3g} apart"
    assert sorted(encoded) == [("A", 1), ("B", 1)], f"content codes drawn (domain, rows): {encoded}"


def test_drit_content_discriminator_at_216px():
    """At the reference's own size (216 px images, 54 x 54 content maps, width 64) msgan's content discriminator is
    the reference's Dis_content as it is (unpatched: the recording's `shapes_216`): three 7x7 stride-2 convs
    (reflection padding 1), a 4x4 conv and a 1x1 conv, the same parameters in the same order, one logit per sample
    (the reference's `out.view(-1)`). (Found and fixed: msgan took 4x4 stride-2 convs at every size; the recording's
    8 x 8 maps keep them, as its patch 3 builds them in the reference.)"""
    expected = recording("drit")["shapes_216"]["Dis_content"]
    network = ContentDiscriminator(64, 54)
    ours = network.state_dict()
    index = {"model.0.model.1": 1, "model.1.model.1": 4, "model.2.model.1": 7, "model.3.model.1": 9, "model.4": 11}
    names = {name: "network.{}.{}".format(index[name.rsplit(".", 1)[0]], name.rsplit(".", 1)[1]) for name in expected}
    assert list(ours) == list(names.values())
    assert {names[n]: tuple(v) for n, v in expected.items()} == {n: tuple(v.shape) for n, v in ours.items()}
    for layer in (1, 4, 7):
        conv, pad = network.network[layer], network.network[layer - 1]
        assert (conv.stride, pad.padding) == ((2, 2), (1, 1, 1, 1)), layer
    with torch.no_grad():
        assert network(torch.zeros(2, 256, 54, 54)).shape == (2, 1)


def test_drit_image_discriminator_at_216px():
    """At the reference's 216 px the image discriminators are the reference's MultiScaleDis (3 scales, 4 layers each,
    width 64) as they are: msgan's fewer layers for small inputs only start below 16 px a scale."""
    expected = recording("drit")["shapes_216"]["MultiScaleDis"]
    ours = MultiScaleDiscriminator(3, 64, 216, 3, 4).state_dict()
    names = {name: drit_name("disA", name) for name in expected}
    assert {names[n]: tuple(v) for n, v in expected.items()} == {f"discriminator_a.{n}": tuple(v.shape) for n, v in ours.items()}
