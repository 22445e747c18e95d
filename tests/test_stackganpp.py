"""`model=stackganpp` (StackGAN++ as MSGAN used it): its networks at the reference's sizes, conditioning
augmentation and its two evaluation settings, every term in its phase, mode seeking on the last stage or
all, the regularisers that train on it or refuse, per-stage evaluation against known modes, resume, and
its bad inputs."""
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
from datafiles import write_cub
from msgan_cli.core.context import StepContext
from msgan_cli.errors import UserError
from msgan_cli.models.stackganpp import kl_to_prior
from msgan_cli.models.stackganpp.networks import ConditioningAugmentation, StageDiscriminator, TreeGenerator
from msgan_cli.train.session import build_session

SG = ["model=stackganpp", "model.width_g=8", "model.width_d=4", "model.ca_dim=8", "model.nz=8",
      "model.base_size=8", "dataset.resolution=16", "trainer.batch_size=8", "eval.metrics=[]"]


def test_reference_sizes_one_image_per_stage_and_a_discriminator_for_each():
    """birds_3stages: 64, 128, 256 px with ngf 64 channels at the first image, halving per stage; each
    D encodes to 8 ndf at 4 x 4 (via 16 ndf / 32 ndf for 128 / 256) and gives two logits per image."""
    generator = TreeGenerator(64, 100, 1024, 128, 3, 64, 2)
    assert generator.branches[0].fc[0].out_features == 2 * 1024 * 16     # fc to 16 ngf x 4 x 4, GLU halves it
    assert [head[0].in_channels for head in generator.heads] == [64, 32, 16]
    with torch.no_grad():
        images = generator.eval()(torch.zeros(1, 100), torch.zeros(1, 1024))
    assert [tuple(x.shape) for x in images] == [(1, 3, 64, 64), (1, 3, 128, 128), (1, 3, 256, 256)]
    for size, widest in ((16, 32), (32, 32), (64, 32), (128, 64), (256, 128)):   # ndf 4: 8 ndf = 32
        discriminator = StageDiscriminator(4, 8, size)
        convs = [m for m in discriminator.encoder if isinstance(m, torch.nn.Conv2d)]
        assert max(c.out_channels for c in convs) == widest and convs[-1].out_channels == 32
        conditional, unconditional = discriminator(torch.zeros(2, 3, size, size), torch.zeros(2, 8))
        assert conditional.shape == unconditional.shape == (2,)


def test_conditioning_augmentation_samples_around_mu_or_gives_it_where_fixed():
    torch.manual_seed(0)
    ca = ConditioningAugmentation(16, 4)
    text = torch.randn(3, 16)
    mu, logvar = ca.encode(text)
    fixed = torch.tensor([[1.0], [0.0], [1.0]])
    c1, c2 = ca(text, fixed), ca(text, fixed)
    assert torch.equal(c1[[0, 2]], mu[[0, 2]]) and torch.equal(c2[[0, 2]], mu[[0, 2]])
    assert not torch.equal(c1[1], c2[1])                                   # the sampled row differs per draw
    # KL(N(mu, sigma^2) || N(0, 1)) of one element: 0.5 (mu^2 + sigma^2 - 1 - log sigma^2).
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    expected = (0.5 * (1 + 1 - 1 - 0) + 0.5 * (0 + torch.e - 1 - 1)) / 2
    assert torch.isclose(kl_to_prior(mu, logvar), torch.tensor(expected))


def test_phases_log_every_term_and_write_a_grid_per_stage(tmp_path):
    train_run(tmp_path, *SG, "reg=ms", "model.lambda_color=1")
    scalars = tensorboard_tags(tmp_path)["scalars"]
    for stage in ("stage0", "stage1"):
        for term in (f"D/real_{stage}", f"D/wrong_{stage}", f"D/fake_{stage}", f"G/adv_{stage}"):
            assert f"Loss/{term}" in scalars, term
    assert {"Loss/G/kl", "Loss/G/ms", "Loss/G/colour_stage1"} <= scalars
    assert {"Samples/stage0", "Samples/stage1"} <= tensorboard_tags(tmp_path)["images"]
    from PIL import Image  # a row per caption: its real image, then 8 outputs, at the stage's size
    assert Image.open(tmp_path / "samples" / "final-stage0.png").size == (2 + 9 * 10, 2 + 8 * 10)
    assert Image.open(tmp_path / "samples" / "final-stage1.png").size == (2 + 9 * 18, 2 + 8 * 18)


def test_discriminator_terms_are_the_reference_s_real_wrong_and_fake_terms():
    """Recomputed by hand from the stage Ds' logits: conditional real 1 / wrong 0 / fake 0, unconditional
    real 1 / wrong 1 / fake 0, with the CA mean of each caption; and without the unconditional terms the
    reference's real + (wrong + fake) / 2."""
    from torch.nn.functional import softplus
    for uncond in (1.0, 0.0):
        session = build_session(compose(*SG, "reg=none", f"model.lambda_uncond={uncond}"))
        recipe = session.recipe
        batch = session.data.train.batch(torch.arange(8), torch.arange(8))
        ctx = StepContext(recipe, batch, step=0)
        terms = recipe.discriminator_terms(ctx)
        fake = ctx.generated()
        mu = recipe.generator.ca.encode(batch.inputs["text"])[0]
        for i, size in enumerate((8, 16)):
            d = getattr(recipe, f"discriminator_{i}")
            resize = lambda x: torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=size < 16)  # noqa: E731
            (rc, ru), (wc, wu) = d(resize(batch.samples), mu), d(resize(batch.inputs["wrong"]), mu)
            fc, fu = d(fake.outputs[f"stage{i}"], mu)
            real, fake_, wrong = softplus(-rc).mean(), softplus(fc).mean(), softplus(wc).mean()
            half = 0.5 if uncond == 0 else 1.0
            assert torch.isclose(terms[f"real_stage{i}"], real + uncond * softplus(-ru).mean(), atol=1e-5)
            assert torch.isclose(terms[f"wrong_stage{i}"], half * (wrong + uncond * softplus(-wu).mean()), atol=1e-5)
            assert torch.isclose(terms[f"fake_stage{i}"], half * (fake_ + uncond * softplus(fu).mean()), atol=1e-5)


def test_mode_seeking_acts_on_the_last_stage_with_z_alone_or_on_every_stage():
    for outputs, stages in (("primary", ["stage1"]), ("all", ["stage0", "stage1"])):
        session = build_session(compose(*SG, "reg=ms", f"reg.ms.outputs={outputs}"))
        recipe, (ms,) = session.recipe, session.regularizers
        ctx = StepContext(recipe, session.data.train.batch(torch.arange(8)), step=0, samples_per_condition=2)
        expected = sum(ms.pair_loss(*ctx.pair(stage)) for stage in stages)
        assert torch.allclose(ms.loss(ctx), expected)
        _, _, z1, z2 = ctx.pair("stage1")
        assert z1.shape == (8, 8) and not torch.equal(z1, z2)   # the denominator's latents: z, not the text code


@pytest.mark.parametrize("reg", regularizer_params("none", "ms", with_none=True))
def test_regularisers_train_on_stackganpp(tmp_path, reg):
    """Every registered regulariser that applies trains on StackGAN++; one that refuses it is skipped with its sentence."""
    skip_if_refused(reg, *SG)
    train_run(tmp_path, *SG, *selecting(reg), "trainer.max_steps=3")
    assert state_of(tmp_path)["step"] == 3


def test_the_regularisers_stackganpp_takes_are_not_skipped_away():
    """The test above skips what StackGAN++ refuses; seven regularisers apply today (divco, dpm, dsgan, ms, ndiv, sn, sr)."""
    assert len(applicable(*SG)) >= 7, refusals(*SG)


@pytest.mark.parametrize("overrides,message", [
    (["reg=pacgan"], "reg=pacgan acts on a single discriminator; model stackganpp has 2"),
    (["reg=unrolled"], "reg=unrolled acts on a single discriminator"),
    (["reg=mdgan", "model.stages=1", "dataset.resolution=8"], "mdgan needs an encoder"),
    (["reg=pacgan", "model.stages=1", "dataset.resolution=8"], "pacgan needs"),
    (["reg=ms", "model.nz=0"], "reg=ms needs a latent input"),
])
def test_regularisers_that_cannot_act_on_it_refuse(overrides, message):
    with pytest.raises(UserError, match=message):
        build_session(compose(*SG, *overrides))


@pytest.mark.slow   # a model's own resume, bit for bit: the fast tier keeps test_checkpoint's
def test_stop_and_resume_equals_uninterrupted(tmp_path, monkeypatch):
    from test_pix2pix import assert_same_training, stopped_then_resumed
    common = [*SG, "reg=ms", "trainer.max_steps=6", "trainer.checkpoint_every=2"]
    train_run(tmp_path / "whole", *common)
    assert_same_training(state_of(tmp_path / "whole"), stopped_then_resumed(tmp_path / "resumed", 3, common, monkeypatch))


@pytest.mark.parametrize("override,message", [
    ("model.stages=4", "model.stages must be 1, 2 or 3"), ("model.base_size=12", "model.base_size .* power of two"),
    ("dataset.resolution=8", "makes 16 px images, but dataset 'shape_captions' gives 8x8: set dataset.resolution=16"),
    ("model.embedding_dim=512", "1024-dimensional sentence embeddings, but model.embedding_dim=512"),
    ("dataset=digits", "generates images from sentence embeddings"), ("model.nz=-1", "model.nz must be >= 0"),
    ("model.width_g=9", "model.width_g must be divisible by 2"),
])
def test_bad_options_are_one_sentence(override, message):
    with pytest.raises(UserError, match=message):
        build_session(compose(*SG, override))


def test_an_embedding_size_that_does_not_match_the_model_names_the_fix(tmp_path):
    write_cub(tmp_path, dim=16)
    with pytest.raises(UserError, match="dataset 'cub' has 16-dimensional sentence embeddings, but "
                                        "model.embedding_dim=1024: set model.embedding_dim=16"):
        build_session(compose(*SG, "dataset=cub", f"dataset.root={tmp_path}", "model.embedding_dim=1024"))
    session = build_session(compose(*SG, "dataset=cub", f"dataset.root={tmp_path}", "model.embedding_dim=16",
                                    "dataset.workers=0"))
    assert session.recipe.stage_sizes == (8, 16)


def oracle_and_collapsed(session):
    """Stand-ins for `StackGANpp.generate` that know the benchmark: the oracle draws each caption's
    images from its K known ones (which one from z), resized to every stage; the collapsed one always
    gives the first. Captions are recognised by their sentence embedding's nearest caption code."""
    split = session.data.test
    codes = split.sentences.mean(1)

    def outputs(z, condition, pick):
        captions = torch.cdist(condition["text"], codes).argmin(1)
        rows = torch.tensor([int((split.captions == c).nonzero()[0]) for c in captions])
        targets = split.mode_targets(rows)
        chosen = targets[torch.arange(len(rows)), pick(z, targets.shape[1])]
        return {f"stage{i}": torch.nn.functional.interpolate(chosen, size=(s, s), mode="bilinear", antialias=True)
                for i, s in enumerate(session.recipe.stage_sizes)}

    oracle = lambda z, condition: outputs(z, condition, lambda z, k: (z[:, 0].abs() * 1e4).long() % k)  # noqa: E731
    collapsed = lambda z, condition: outputs(z, condition, lambda z, k: torch.zeros(len(z), dtype=torch.long))  # noqa: E731
    return oracle, collapsed


def test_every_stage_and_both_text_code_settings_are_evaluated_against_the_known_modes(monkeypatch):
    from msgan_cli.evaluate import evaluate_run
    session = build_session(compose(*SG, "reg=none", "eval.per_input.inputs=10", "eval.modes_per_input.samples_per_input=24"))
    oracle, collapsed = oracle_and_collapsed(session)
    scores = {}
    for name, stand_in in (("oracle", oracle), ("collapsed", collapsed)):
        monkeypatch.setattr(session.recipe, "generate", stand_in)
        scores[name], protocol = evaluate_run(session, ["modes_per_input", "fid"], session.cfg.eval, step=0)
    views = ["stage0", "stage1", "stage0_mean", "stage1_mean"]
    assert protocol["directions"] == views
    for view in views:
        oracle = scores["oracle"]
        assert oracle[f"modes_per_input/{view}/modes"] > 3.5 and oracle[f"modes_per_input/{view}/high_quality"] == 100
        assert scores["collapsed"][f"modes_per_input/{view}/modes"] == 1
        assert scores["oracle"][f"fid/{view}/classifier"] < scores["collapsed"][f"fid/{view}/classifier"]
    assert "(stage1_mean, fixed text codes (CA mean)): the first 10 test inputs" in protocol["conditions"]["stage1_mean"]


def test_the_fixed_text_code_setting_reaches_the_generator():
    """In the `_mean` views the code is CA's mean: the same z gives the same image on every call; in the
    sampled views CA draws the code, so it does not."""
    session = build_session(compose(*SG, "reg=none"))
    recipe = session.recipe.eval()
    views = {view.name: view for view in recipe.evaluation_directions(session.data, session.cfg.eval)}
    batch = views["stage1"].data.evaluation_split.batch(torch.arange(4))
    z = torch.randn(4, 8)
    with torch.no_grad():
        sampled = [views["stage1"].generate(recipe, z, views["stage1"].condition(batch)) for _ in range(2)]
        fixed = [views["stage1_mean"].generate(recipe, z, views["stage1_mean"].condition(batch)) for _ in range(2)]
    assert torch.equal(fixed[0], fixed[1]) and not torch.equal(sampled[0], sampled[1])


def test_evaluating_one_setting_again_keeps_the_other_s_numbers():
    from msgan_cli.evaluate import merge_evaluation
    previous = {"fid/stage1/classifier": 5.0, "fid/stage1_mean/classifier": 6.0, "ndb/stage1/ndb": 3.0}
    previous_protocol = {"metrics": ["fid", "ndb"], "directions": ["stage1", "stage1_mean"],
                         "conditions": {"stage1": "s", "stage1_mean": "m"},
                         "per_metric": {"fid": {"stage1": {"a": 1}, "stage1_mean": {"a": 2}}, "ndb": {"stage1": {}}}}
    protocol = {"metrics": ["fid"], "directions": ["stage1_mean"], "conditions": {"stage1_mean": "m2"},
                "per_metric": {"fid": {"stage1_mean": {"a": 3}}}}
    merged, merged_protocol = merge_evaluation(previous, previous_protocol, {"fid/stage1_mean/classifier": 7.0}, protocol)
    assert merged == {"fid/stage1/classifier": 5.0, "fid/stage1_mean/classifier": 7.0, "ndb/stage1/ndb": 3.0}
    assert merged_protocol["per_metric"]["fid"] == {"stage1": {"a": 1}, "stage1_mean": {"a": 3}}
    assert merged_protocol["directions"] == ["stage1", "stage1_mean"] and merged_protocol["conditions"]["stage1_mean"] == "m2"


def test_report_keeps_the_stages_apart():
    from msgan_cli.metric_names import split_direction
    from msgan_cli.report.columns import direction
    assert split_direction("fid/stage2_mean/classifier") == ("fid/classifier", "stage2_mean")
    assert split_direction("lpips_div/stage0") == ("lpips_div", "stage0")
    assert direction("modes_per_input/stage1/modes") == "higher" and direction("fid/stage1_mean/classifier") == "lower"


def test_msgan_sample_writes_each_stage_or_the_one_asked_for(tmp_path):
    from PIL import Image
    run = tmp_path / "run"
    trained = run_msgan("train", *tiny(*SG, "reg=ms"), f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    every = run_msgan("sample", f"run={run}", "n=3", "inputs=2")
    assert every.returncode == 0, every.stderr[-2000:]
    for stage, size in (("stage0", 8), ("stage1", 16)):   # 2 rows: the caption's real image, 3 outputs
        assert Image.open(run / "samples" / f"sample-step4-inputs-{stage}.png").size == (2 + 4 * (size + 2), 2 + 2 * (size + 2))
    one = run_msgan("sample", f"run={run}", "n=3", "inputs=2", "direction=stage1", "format=npz", f"out={tmp_path / 'npz'}")
    assert one.returncode == 0 and [p.name for p in (tmp_path / "npz").iterdir()] == ["sample-step4-inputs-stage1.npz"]
    wrong = run_msgan("sample", f"run={run}", "direction=stage7")
    assert wrong.returncode == 2 and "has the views stage0 and stage1" in wrong.stderr and "Traceback" not in wrong.stderr
