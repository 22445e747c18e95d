"""`model=stargan`: its networks at the reference's sizes, the target drawn as the reference, every term
of its two phases recomputed by hand, n_critic, the latent and the regularisers that use it or refuse,
evaluation per attribute edit against the known modes, resume, and its bad inputs."""
import pytest
import torch
from torch.nn import functional as F

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
from datafiles import write_celeba
from msgan_cli.core.context import StepContext
from msgan_cli.errors import UserError
from msgan_cli.models.stargan.networks import Discriminator, Generator, layers_for
from msgan_cli.train.session import build_session

SG = ["model=stargan", "model.width_g=4", "model.width_d=4", "model.residual_blocks=1", "dataset.resolution=16",
      "trainer.batch_size=8", "eval.metrics=[]"]
LATENT = [*SG, "model.nz=4"]


def test_reference_sizes_and_heads():
    """yunjey/stargan at 128 px: G of 8.43 M parameters (conv_dim 64, 6 blocks, 5 attributes), D of
    44.76 M with 6 stride-2 convs, a 2 x 2 patch map and 5 attribute logits."""
    generator, discriminator = Generator(3, 5, 0, 64, 6), Discriminator(3, 5, 64, 128, layers_for(128))
    assert sum(p.numel() for p in generator.parameters()) == 8_430_528
    assert sum(p.numel() for p in discriminator.parameters()) == 44_762_048
    with torch.no_grad():
        out = generator(torch.zeros(1, 3, 128, 128), torch.zeros(1, 5))
        src, cls = discriminator(out)
    assert out.shape == (1, 3, 128, 128) and src.shape == (1, 1, 2, 2) and cls.shape == (1, 5)
    assert layers_for(32) == 4
    # The latent is tiled beside the target: z changes the output; eval mode normalises as training does.
    latent = Generator(3, 2, 3, 8, 1)
    x, c, z = torch.randn(2, 3, 16, 16), torch.tensor([[1.0, 0], [0, 1]]), torch.randn(2, 3)
    with torch.no_grad():
        assert not torch.allclose(latent(x, c, z), latent(x, c, z + 1))
        assert torch.equal(latent.train()(x, c, z), latent.eval()(x, c, z))


def test_model_stargan_alone_is_the_published_model_and_a_regulariser_on_the_command_line_wins():
    """The run's default reg=ms cannot act without a latent: model=stargan brings reg none (a model's
    default, after reg in train.yaml's defaults list); reg=ms with model.nz=8 on the command line wins."""
    from msgan_cli.config import compose_config
    assert not compose_config("train", ["model=stargan"]).get("reg") and compose_config("train", []).reg.ms.enabled
    assert compose_config("train", ["model=stargan", "model.nz=8", "reg=ms"]).reg.ms.enabled
    assert set(compose_config("train", ["model=stargan", "model.nz=8", "reg=[ms,sr]"]).reg) == {"ms", "sr"}


def test_targets_are_the_batch_s_own_attributes_permuted():
    session = build_session(compose(*SG, "reg=none"))
    recipe, data = session.recipe, session.data
    batch = data.train.batch(torch.arange(8))
    torch.manual_seed(3)
    condition = recipe.condition(batch)
    source = data.extras["attributes"].of(batch.labels)
    torch.manual_seed(3)
    assert torch.equal(condition["target"], source[torch.randperm(8)])
    assert torch.equal(condition["source"], source) and torch.equal(condition["image"], batch.samples)


def test_both_phases_are_the_reference_s_terms():
    """Recomputed by hand: D = -D(x) + D(G(x, c')) + 10 GP, + BCE(cls(x), c) summed over attributes / n;
    G = -D(G(x, c')) + BCE(cls(G(x, c')), c') + 10 |G(G(x, c'), c) - x|."""
    session = build_session(compose(*LATENT, "reg=none"))
    recipe = session.recipe
    batch = session.data.train.batch(torch.arange(8))
    ctx = StepContext(recipe, batch, step=0)
    fake = ctx.generated()
    torch.manual_seed(0)
    d = recipe.discriminator_terms(ctx)
    src_real, cls_real = recipe.discriminator(batch.samples)
    src_fake, _ = recipe.discriminator(fake.images.detach())
    assert torch.isclose(d["adv"], -src_real.mean() + src_fake.mean())
    expected_cls = F.binary_cross_entropy_with_logits(cls_real, ctx.condition["source"], reduction="sum") / 8
    assert torch.isclose(d["cls"], expected_cls) and d["penalty"] > 0
    torch.manual_seed(1)
    g = recipe.generator_terms(ctx)
    src, cls = recipe.discriminator(fake.images)
    torch.manual_seed(1)   # the way back's latent: drawn anew (model.rec_latent=fresh, the default)
    back = recipe.generator(fake.images, ctx.condition["source"], recipe.sample_latent(8, fake.z.device))
    assert torch.isclose(g["adv"], -src.mean())
    assert torch.isclose(g["cls"], F.binary_cross_entropy_with_logits(cls, ctx.condition["target"], reduction="sum") / 8)
    assert torch.isclose(g["rec"], 10 * (back - batch.samples).abs().mean())


def test_the_way_back_can_reuse_the_fake_s_own_latent():
    session = build_session(compose(*LATENT, "reg=none", "model.rec_latent=same"))
    recipe = session.recipe
    batch = session.data.train.batch(torch.arange(8))
    ctx = StepContext(recipe, batch, step=0)
    fake = ctx.generated()
    back = recipe.generator(fake.images, ctx.condition["source"], fake.z)
    assert torch.isclose(recipe.generator_terms(ctx)["rec"], 10 * (back - batch.samples).abs().mean())


def test_with_a_pair_every_term_of_d_counts_both_halves_the_penalty_too():
    """trainer.pair_batch=doubled: as in models/adversarial.py, D's loss is loss(real, fake1) +
    loss(real, fake2), each with its gradient penalty; a lone penalty would halve its weight."""
    session = build_session(compose(*LATENT, "reg=ms"))
    recipe = session.recipe
    batch = session.data.train.batch(torch.arange(8))
    ctx = StepContext(recipe, batch, step=0, samples_per_condition=2)
    fake = ctx.generated()
    assert ctx.loss_scale == 2 and len(fake.images) == 16
    torch.manual_seed(0)
    d = ctx.model_terms("D")   # as the step counts them
    torch.manual_seed(0)
    one = recipe.gan_loss.penalty(recipe.discriminate, batch.samples, fake.images[:8])
    assert torch.isclose(d["penalty"], 2 * one)
    src_real, _ = recipe.discriminator(batch.samples)
    src_fake, _ = recipe.discriminator(fake.images.detach())
    assert torch.isclose(d["adv"], 2 * (-src_real.mean() + src_fake.mean()))


def test_g_trains_every_n_critic_steps_and_logs_its_terms(tmp_path):
    train_run(tmp_path, *SG, "reg=none", "model.n_critic=2", "trainer.max_steps=4", "trainer.log_every=1")
    scalars = tensorboard_tags(tmp_path)["scalars"]
    assert {"Loss/D/adv", "Loss/D/cls", "Loss/D/penalty", "Loss/G/adv", "Loss/G/cls", "Loss/G/rec"} <= scalars
    state = state_of(tmp_path)
    optimizers = state["optimizers"]
    assert optimizers["generator"]["state"][0]["step"] == 2 and optimizers["discriminator"]["state"][0]["step"] == 4


@pytest.mark.parametrize("reg", regularizer_params("ms"))
def test_regularisers_train_on_stargan_with_a_latent(tmp_path, reg):
    """Every registered regulariser that applies trains on StarGAN with a latent; one that refuses it is
    skipped with its sentence."""
    skip_if_refused(reg, *LATENT)
    train_run(tmp_path, *LATENT, *selecting(reg), "trainer.max_steps=5")
    assert state_of(tmp_path)["step"] == 5


def test_the_regularisers_stargan_takes_are_not_skipped_away():
    """The test above skips what StarGAN with a latent refuses; seven regularisers apply today (divco,
    dpm, dsgan, ms, ndiv, sn, sr)."""
    assert len(applicable(*LATENT)) >= 7, refusals(*LATENT)


@pytest.mark.parametrize("overrides,message", [
    (["reg=ms"], "reg=ms needs a latent input, but model stargan has none: set model.nz"),
    (["reg=dpm"], "reg=dpm needs a latent input"),
    (["model.nz=4", "reg=pacgan"], "reg=pacgan needs a discriminator it can rebuild for packed inputs"),
    (["model.nz=4", "reg=unrolled"], "reg=unrolled needs the model's discriminator objective"),
    (["model.nz=4", "reg=mdgan"], "mdgan needs an encoder"),
])
def test_regularisers_that_cannot_act_refuse(overrides, message):
    with pytest.raises(UserError, match=message):
        build_session(compose(*SG, *overrides))


@pytest.mark.slow   # a model's own resume, bit for bit: the fast tier keeps test_checkpoint's
def test_stop_and_resume_equals_uninterrupted(tmp_path, monkeypatch):
    from test_pix2pix import assert_same_training, stopped_then_resumed
    common = [*LATENT, "reg=ms", "model.n_critic=2", "trainer.max_steps=6", "trainer.checkpoint_every=2"]
    train_run(tmp_path / "whole", *common)
    assert_same_training(state_of(tmp_path / "whole"), stopped_then_resumed(tmp_path / "resumed", 3, common, monkeypatch))


@pytest.mark.parametrize("override,message", [
    ("dataset=digits", "model=stargan translates images between attribute domains, but dataset 'digits' has no attributes"),
    ("dataset.resolution=24", "power-of-two size >= 16"), ("model.nz=-1", "model.nz must be >= 0"),
    ("model.n_critic=0", "model.n_critic .* at least 1"), ("model.rec_latent=other", "model.rec_latent .* fresh or same"),
])
def test_bad_options_are_one_sentence(override, message):
    with pytest.raises(UserError, match=message):
        build_session(compose(*SG, override))


def oracle_and_collapsed(session):
    """Stand-ins for `StarGAN.generate` that know the benchmark: inputs are recognised by their pixels
    among the test images, the oracle draws one of the input's K correct translations (which one from
    z), the collapsed one always the first."""
    test = session.data.test
    images = test.batch(torch.arange(len(test))).samples.flatten(1)

    def outputs(z, condition, pick):
        rows = torch.cdist(condition["image"].flatten(1), images).argmin(1)
        targets = test.translations(rows, condition["target"])
        return targets[torch.arange(len(rows)), pick(z, targets.shape[1])]

    oracle = lambda z, condition: outputs(z, condition, lambda z, k: (z[:, 0].abs() * 1e4).long() % k)  # noqa: E731
    collapsed = lambda z, condition: outputs(z, condition, lambda z, k: torch.zeros(len(z), dtype=torch.long))  # noqa: E731
    return oracle, collapsed


def test_every_edit_is_evaluated_against_the_known_modes_and_the_target_attributes(monkeypatch):
    from msgan_cli.evaluate import evaluate_run
    # A classifier trained long enough to tell the 24 classes apart (1 s): TINY's 40 steps leave it near chance,
    # and the stand-ins' outputs are real images, so with a good classifier their domain accuracy is exact.
    session = build_session(compose(*LATENT, "reg=none", "eval.per_input.inputs=10", "eval.modes_per_input.samples_per_input=24",
                                    "eval.classifier.steps=200", "eval.classifier.width=8"))
    oracle, collapsed = oracle_and_collapsed(session)
    scores = {}
    for name, stand_in in (("oracle", oracle), ("collapsed", collapsed)):
        monkeypatch.setattr(session.recipe, "generate", stand_in)
        scores[name], protocol = evaluate_run(session, ["modes_per_input", "domain_acc", "fid", "precision_recall"],
                                              session.cfg.eval, step=0)
    views = ["to_fill0", "to_fill1", "to_fill2", "to_stroke", "to_not_stroke"]
    assert protocol["directions"] == views
    for view in views:
        oracle_scores, collapsed_scores = scores["oracle"], scores["collapsed"]
        assert oracle_scores[f"modes_per_input/{view}/modes"] > 3.5
        assert oracle_scores[f"modes_per_input/{view}/high_quality"] == 100
        assert collapsed_scores[f"modes_per_input/{view}/modes"] == 1
        assert oracle_scores[f"domain_acc/{view}/classifier_attribute_acc"] == 1
        oracle_pr, collapsed_pr = (scored[f"precision_recall/{view}/classifier_recall"]
                                   for scored in (oracle_scores, collapsed_scores))
        assert oracle_scores[f"precision_recall/{view}/classifier_precision"] > 0.8 and oracle_pr > collapsed_pr + 0.2
        for scored in (oracle_scores, collapsed_scores):   # both draw the target domain; they differ in backgrounds only
            assert scored[f"domain_acc/{view}/edited"] == 1 and scored[f"domain_acc/{view}/all"] == 1
    # A G that ignores the target and returns its input is right exactly where the input already had the
    # target's attributes: the metric must say so, view by view, to the sample.
    monkeypatch.setattr(session.recipe, "generate", lambda z, condition: condition["image"])
    identity, _ = evaluate_run(session, ["domain_acc"], session.cfg.eval, step=0)
    attributes, inputs = session.data.extras["attributes"], session.data.test.batch(torch.arange(10))
    source = attributes.of(inputs.labels)
    for view, edit in zip(views, attributes.edits()):
        target = attributes.apply(source, edit)
        unchanged = float((source[:, edit.attribute] == edit.value).float().mean())
        assert identity[f"domain_acc/{view}/edited"] == pytest.approx(unchanged)
        assert identity[f"domain_acc/{view}/all"] == pytest.approx(float((source == target).all(1).float().mean()))
    assert min(identity[f"domain_acc/{view}/all"] for view in views) < 0.5


def test_report_keeps_the_edits_apart():
    from msgan_cli.metric_names import split_direction
    from msgan_cli.report.columns import direction
    assert split_direction("fid/to_not_Male/classifier") == ("fid/classifier", "to_not_Male")
    assert split_direction("domain_acc/to_Blond_Hair/all") == ("domain_acc/all", "to_Blond_Hair")
    assert direction("domain_acc/to_fill0/edited") == "higher" and direction("domain_acc/to_fill0/classifier_test_acc") is None


def test_celeba_trains_and_msgan_sample_writes_a_grid_per_edit(tmp_path):
    from PIL import Image
    write_celeba(tmp_path / "celeba")
    run = tmp_path / "run"
    trained = run_msgan("train", *tiny(*LATENT, "reg=ms", "dataset=celeba", f"dataset.root={tmp_path / 'celeba'}",
                                   "dataset.test_images=4", "dataset.workers=0", "trainer.batch_size=4"),
                    f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    done = run_msgan("sample", f"run={run}", "n=3", "inputs=2")
    assert done.returncode == 0, done.stderr[-2000:]
    # One grid: 2 rows, the input then 3 outputs for each of the 7 edits (Black/Blond/Brown_Hair, Male,
    # not_Male, Young, not_Young); direction= keeps one edit's block.
    assert Image.open(run / "samples" / "sample-step4-inputs.png").size == (2 + (1 + 7 * 3) * 18, 2 + 2 * 18)
    done = run_msgan("sample", f"run={run}", "n=2", "inputs=2", "direction=to_not_Male")
    assert done.returncode == 0, done.stderr[-2000:]
    assert Image.open(run / "samples" / "sample-step4-inputs-to_not_Male.png").size == (2 + 3 * 18, 2 + 2 * 18)


def test_msgan_sample_without_a_latent_writes_one_output_per_input_and_edit_in_every_format(tmp_path):
    import numpy as np
    run = tmp_path / "run"
    trained = run_msgan("train", *tiny(*SG), f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    done = run_msgan("sample", f"run={run}", "format=npz", "inputs=2")
    assert done.returncode == 0, done.stderr[-2000:]
    written = sorted((run / "samples").glob("sample-*.npz"))
    assert [path.stem.rsplit("-", 1)[1] for path in written] == sorted(["to_fill0", "to_fill1", "to_fill2", "to_stroke",
                                                                        "to_not_stroke"])
    for path in written:
        with np.load(path) as arrays:
            assert arrays["images"].shape[0] == 2 and arrays["input_index"].tolist() == [0, 1]


@pytest.mark.parametrize("overrides,latents", [(LATENT, 3), (SG, 1)])
def test_the_grid_is_a_row_per_input_and_a_block_of_latents_per_target_domain(monkeypatch, overrides, latents):
    """Each cell is checked against the known correct outputs of its input and target domain, so a grid
    that mixed up rows, domains or latents fails; without a latent each domain gets one column."""
    from msgan_cli.sampling import displayable, sample_grids
    session = build_session(compose(*overrides, "reg=none"))
    oracle, _ = oracle_and_collapsed(session)
    monkeypatch.setattr(session.recipe, "generate", oracle if latents > 1 else (lambda z, c: oracle(torch.zeros(len(z), 1), c)))
    grid = sample_grids(session.recipe, session.data, torch.device("cpu"), inputs=4)["grid"]
    test, attributes = session.data.test, session.data.extras["attributes"]
    edits = attributes.edits()
    assert grid.shape == (3, 2 + 4 * 18, 2 + (1 + len(edits) * latents) * 18)
    cell = lambda row, column: grid[:, 2 + 18 * row:18 * (row + 1), 2 + 18 * column:18 * (column + 1)]  # noqa: E731
    for row in range(4):
        source = test.batch(torch.tensor([row]))
        assert torch.equal(cell(row, 0), displayable(source.samples)[0])
        for block, edit in enumerate(edits):
            correct = displayable(test.translations(torch.tensor([row]), attributes.apply(attributes.of(source.labels), edit))[0])
            for latent in range(latents):
                assert (correct - cell(row, 1 + block * latents + latent)).abs().flatten(1).amax(1).min() < 1e-6
