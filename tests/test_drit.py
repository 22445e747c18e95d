"""`model=drit` (DRIT as MSGAN used it): its networks, its phase schedule (content D every step, the rest
every d_iter-th), every term in its phase, mode seeking in both directions, the regularisers that
train on it or refuse, resume, and its bad inputs."""
import pytest
import torch

from conftest import (
    applicable,
    compose,
    refusals,
    regularizer_params,
    run_msgan,
    selecting,
    skip_if_refused,
    state_of,
    tensorboard_tags,
    tiny,
    train_run,
)
from msgan_cli.core.context import StepContext
from msgan_cli.errors import UserError
from msgan_cli.models.drit.networks import (
    AttributeEncoder,
    ContentDiscriminator,
    ContentEncoder,
    Generators,
    MultiScaleDiscriminator,
)
from msgan_cli.train.session import build_session

# Grids and spectral figures at the end only: DRIT's 37 D layers make each spectral check 3 s of figures.
DRIT = ["model=drit", "model.width=4", "dataset.resolution=16", "trainer.batch_size=4", "eval.metrics=[]",
        "trainer.sample_every=1000", "trainer.spectrum.every=1000"]


@pytest.mark.parametrize("concat", [True, False])
def test_networks_map_images_to_contents_attributes_and_back(concat):
    content, attributes = ContentEncoder(3, 1, 8), AttributeEncoder(3, 8, 8, concat)
    generators = Generators(8, 8, 3, 1, concat)
    a, b = torch.zeros(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    c_a, c_b = content.encode(a, "A"), content.encode(b, "B")
    assert c_a.shape == c_b.shape == (2, 32, 8, 8)          # 4 w channels at a quarter of the size
    mu, logvar = attributes(a)
    assert mu.shape == (2, 8) and (logvar is None) != concat
    assert generators.generate(c_a, mu, "B").shape == (2, 1, 32, 32) and generators.generate(c_b, mu, "A").shape == (2, 3, 32, 32)
    # The content encoder's last block is one module for both domains; each domain has its own stem.
    assert content.shared is not None and content.domain_a is not content.domain_b
    logits = MultiScaleDiscriminator(3, 8, 32, scales=3, layers=4)(a)
    assert [tuple(x.shape[-2:]) for x in logits] == [(2, 2), (1, 1), (1, 1)]   # fewer layers on small scales
    assert ContentDiscriminator(8, 54)(torch.zeros(2, 32, 54, 54)).shape == (2, 1)


def test_content_noise_is_added_in_training_only_and_at_its_std():
    """GaussianNoiseLayer: N(0, noise^2) on the content codes in training (the reference's std 1), none
    in evaluation or at noise 0."""
    x = torch.randn(64, 3, 16, 16)
    for noise in (0.0, 1.0, 0.25):
        torch.manual_seed(0)
        encoder = ContentEncoder(3, 3, 4, noise)
        with torch.no_grad():
            encoder.eval()
            clean = encoder.encode(x, "A")
            encoder.train()
            added = encoder.encode(x, "A") - clean
        assert abs(float(added.std()) - noise) < 0.02 * max(noise, 1.0)


def test_reference_widths_of_g_concat():
    """G_concat at the reference's width 64 and nz 8: 256 -> 264 (3 blocks) -> 272 -> 136 -> 144 -> 72 -> 80 -> 3."""
    decoder = Generators(64, 8, 3, 3, concat=True).domain_a
    assert decoder.blocks[0].body[1].in_channels == 264
    assert (decoder.up1.up.in_channels, decoder.up1.up.out_channels) == (272, 136)
    assert (decoder.up2.up.in_channels, decoder.up2.up.out_channels) == (144, 72)
    assert decoder.out.in_channels == 80


def test_phases_run_on_the_reference_schedule_and_log_every_term(tmp_path):
    """6 steps at d_iter 3: the content D steps 6 times, the image Ds 2, the generators 4 (EG and G each
    twice), the attribute encoders 2 (only EG steps them, as the reference's update_EG)."""
    train_run(tmp_path, *DRIT, "reg=ms", "trainer.max_steps=6", "trainer.log_every=1")
    optimizers = state_of(tmp_path)["optimizers"]
    steps = {name: {int(s["step"]) for s in optimizer["state"].values()} for name, optimizer in optimizers.items()}
    assert steps["content_discriminator"] == {6} and steps["discriminator"] == {2}
    assert steps["generator"] == {4, 2}     # {E_c, G}: EG + G; {E_a}: EG only
    scalars = tensorboard_tags(tmp_path)["scalars"]
    for term in ("D_content/adv", "D/adv_encoded", "D/adv_random", "EG/adv_content", "EG/adv_encoded", "EG/kl",
                 "EG/content_l2", "EG/cross_cycle", "EG/self_rec", "G/adv_random", "G/latent_regression", "G/ms"):
        assert f"Loss/{term}" in scalars, term
    # One grid per direction, a row per held-out input: the input, 8 outputs, then a real image of the
    # other domain and the input translated with its attribute (no "ground truth" column: the image of
    # the other domain beside an input in a batch is not its translation).
    assert {"Samples/AtoB", "Samples/BtoA"} <= set(tensorboard_tags(tmp_path)["images"])
    from PIL import Image
    for name in ("final-AtoB.png", "final-BtoA.png"):
        assert Image.open(tmp_path / "samples" / name).size == (2 + 11 * 18, 2 + 8 * 18)


def test_mode_seeking_acts_in_both_directions():
    session = build_session(compose(*DRIT, "reg=ms"))
    recipe, (ms,) = session.recipe, session.regularizers
    ctx = StepContext(recipe, session.data.train.batch(torch.arange(4)), step=0, samples_per_condition=2)
    both = ms.loss(ctx)
    each = [ms.pair_loss(*ctx.pair(output)) for output in ("AtoB", "BtoA")]
    assert torch.allclose(both, each[0] + each[1]) and each[0] != each[1]
    generated = ctx.generated()   # the two latents of a pair are shared by both directions, as the reference's z_random
    assert torch.equal(generated.group(0, "AtoB")[1], generated.group(0, "BtoA")[1])


@pytest.mark.parametrize("reg", regularizer_params("none", "ms", with_none=True))
def test_regularisers_train_on_drit(tmp_path, reg):
    """Every registered regulariser that applies trains on DRIT; one that refuses it is skipped with its sentence."""
    skip_if_refused(reg, *DRIT)
    train_run(tmp_path, *DRIT, *selecting(reg), "trainer.max_steps=3")
    assert state_of(tmp_path)["step"] == 3


def test_the_regularisers_drit_takes_are_not_skipped_away():
    """The test above skips what DRIT refuses; six regularisers apply today (divco, dsgan, ms, ndiv, sn, sr)."""
    assert len(applicable(*DRIT)) >= 6, refusals(*DRIT)


@pytest.mark.parametrize("reg,message", [("pacgan", "reg=pacgan acts on a single discriminator; model drit has 5"),
                                         ("unrolled", "reg=unrolled acts on a single discriminator"),
                                         ("mdgan", "mdgan needs"), ("dpm", "dpm needs")])
def test_regularisers_that_need_one_discriminator_or_an_encoder_refuse(reg, message):
    with pytest.raises(UserError, match=message):
        build_session(compose(*DRIT, f"reg={reg}"))


@pytest.mark.slow   # a model's own resume, bit for bit: the fast tier keeps test_checkpoint's
def test_stop_and_resume_equals_uninterrupted(tmp_path, monkeypatch):
    """Stopped in the middle of a d_iter cycle (after the content D's steps, before a full update), with
    the learning-rate decay on: the resumed run ends with the uninterrupted run's weights."""
    from test_pix2pix import assert_same_training, stopped_then_resumed
    common = [*DRIT, "reg=ms", "trainer.max_steps=7", "trainer.lr_decay_from=0.25", "trainer.checkpoint_every=2"]
    train_run(tmp_path / "whole", *common)
    assert_same_training(state_of(tmp_path / "whole"), stopped_then_resumed(tmp_path / "resumed", 4, common, monkeypatch))


@pytest.mark.parametrize("override,message", [
    ("model.concat=maybe", "model.concat must be true"), ("model.nz=0", "model.nz \\(the attribute size\\)"),
    ("model.d_iter=0", "model.d_iter must be at least 1"), ("dataset=digits", "translates between two image domains"),
    ("dataset.resolution=18", "multiple of 4"), ("model.content_noise=-1", "model.content_noise .* must be 0 or more"),
])
def test_bad_options_are_one_sentence(override, message):
    with pytest.raises(UserError, match=message):
        build_session(compose(*DRIT, override))


def test_the_content_discriminator_s_gradients_are_clipped_to_norm_5(tmp_path, monkeypatch):
    """Phase.clip_grad_norm: every content-D step (and no other phase) clips its gradients, to 5."""
    calls, clip = [], torch.nn.utils.clip_grad_norm_

    def recording_clip(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        calls.append((len(parameters), max_norm))
        return clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    train_run(tmp_path, *DRIT, "reg=none", "trainer.max_steps=3")
    content_d = len(list(build_session(compose(*DRIT, "reg=none")).recipe.content_discriminator.parameters()))
    assert calls == [(content_d, 5.0)] * 3


def oracle_and_identity(session):
    """Two stand-in generators for `DRIT.generate`, knowing the benchmark: the oracle translates each
    evaluation input into one of its correct outputs (which one from z), the identity returns its input
    unchanged (an image of the source domain). Inputs are recognised by exact equality with the rows
    of the evaluation split of the direction whose source they belong to."""
    views = {direction.name[0]: direction.data.evaluation_split
             for direction in session.recipe.evaluation_directions(session.data)}

    def rows_of(images, source):
        split = views[source]
        known = split.batch(torch.arange(len(split))).inputs.flatten(1)
        return torch.cdist(images.flatten(1), known).argmin(1), split

    def oracle(z, condition):
        outputs = {}
        for source, target in (("A", "B"), ("B", "A")):
            if source in condition:
                rows, split = rows_of(condition[source], source)
                targets = split.mode_targets(rows)
                mode = (z[:, 0].abs() * 1e4).long() % targets.shape[1]
                outputs[f"{source}to{target}"] = targets[torch.arange(len(rows)), mode]
        return outputs

    def identity(z, condition):
        return {f"{source}to{target}": condition[source] for source, target in (("A", "B"), ("B", "A")) if source in condition}

    return oracle, identity


def test_each_direction_is_evaluated_on_its_own_inputs_targets_and_modes(monkeypatch):
    """A -> B against B's images and A's 4 known translations, B -> A against A's images and B's 3: an
    oracle finds every mode in both directions at full quality, the identity (the input returned as is,
    an image of the wrong domain) none, and FID prefers the oracle in each direction. A direction fed the
    other's inputs, real images or modes would fail each of these."""
    from msgan_cli.evaluate import evaluate_run, resolve_metric_names
    session = build_session(compose(*DRIT, "reg=none", "eval.per_input.inputs=12", "eval.modes_per_input.samples_per_input=24"))
    assert {"modes_per_input", "fid"} <= set(resolve_metric_names("auto", session.recipe, session.data, session.cfg.eval))
    oracle, identity = oracle_and_identity(session)
    scores = {}
    for name, stand_in in (("oracle", oracle), ("identity", identity)):
        monkeypatch.setattr(session.recipe, "generate", stand_in)
        scores[name], protocol = evaluate_run(session, ["modes_per_input", "fid"], session.cfg.eval, step=0)
    good, bad = scores["oracle"], scores["identity"]
    assert not [key for key in good if "/AtoB" not in key and "/BtoA" not in key]   # every key names its direction
    for way, k in (("AtoB", 4), ("BtoA", 3)):
        assert good[f"modes_per_input/{way}/num_modes_total"] == k
        assert good[f"modes_per_input/{way}/high_quality"] == 100.0
        assert abs(good[f"modes_per_input/{way}/modes"] - good[f"modes_per_input/{way}/ideal_modes"]) < 0.25
        assert bad[f"modes_per_input/{way}/modes"] == 0 and bad[f"modes_per_input/{way}/high_quality"] == 0
        assert good[f"fid/{way}/classifier"] < bad[f"fid/{way}/classifier"]
    assert protocol["directions"] == ["AtoB", "BtoA"]
    assert "(BtoA): the first 12 test inputs x 24 samples" in protocol["per_metric"]["modes_per_input"]["BtoA"]["conditions"]
    assert set(protocol["classifier"]) == {"AtoB", "BtoA"}   # each target domain's own classifier


def test_report_keeps_the_directions_apart():
    from msgan_cli.report.columns import direction, ordered_metrics, table_columns
    names = {"fid/BtoA/classifier", "fid/AtoB/classifier", "modes_per_input/BtoA/modes", "modes_per_input/AtoB/modes",
             "pairwise_div/AtoB/pixel_l1", "mode_score/BtoA", "mode_score/AtoB/classifier_test_acc",
             "mode_score/BtoA/classifier_test_acc"}
    ordered = ordered_metrics(names)
    assert ordered[:4] == ["modes_per_input/AtoB/modes", "modes_per_input/BtoA/modes", "fid/AtoB/classifier",
                           "fid/BtoA/classifier"]
    assert [direction(m) for m in ordered[:4]] == ["higher", "higher", "lower", "lower"]
    assert direction("pairwise_div/AtoB/pixel_l1") == "higher" and direction("mode_score/BtoA") == "higher"
    headers = [header for _, header in table_columns(ordered)]
    assert headers.count("classifier_test_acc AtoB") == 1 and headers.count("classifier_test_acc BtoA") == 1


def test_msgan_sample_writes_each_direction_or_the_one_asked_for(tmp_path):
    from PIL import Image
    run = tmp_path / "run"
    trained = run_msgan("train", *tiny(*DRIT, "reg=ms"), f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    both = run_msgan("sample", f"run={run}", "n=3", "inputs=2")
    assert both.returncode == 0, both.stderr[-2000:]
    for way in ("AtoB", "BtoA"):   # 2 rows: input, 3 outputs, the other domain's image, the transfer
        assert Image.open(run / "samples" / f"sample-step4-inputs-{way}.png").size == (2 + 6 * 18, 2 + 2 * 18)
    one = run_msgan("sample", f"run={run}", "n=3", "inputs=2", "direction=BtoA", "format=npz", f"out={tmp_path / 'npz'}")
    assert one.returncode == 0 and [p.name for p in (tmp_path / "npz").iterdir()] == ["sample-step4-inputs-BtoA.npz"]
    wrong = run_msgan("sample", f"run={run}", "direction=CtoD")
    assert wrong.returncode == 2 and "has the views AtoB and BtoA" in wrong.stderr and "Traceback" not in wrong.stderr
