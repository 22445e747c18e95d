"""Smoke steps for every model x dataset x regulariser meant to work, and a clear message for every
combination that is not (docs/running.md#errors)."""
import json
import math
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch

from conftest import (
    COMPOSITIONS,
    SHIPPED_REGULARIZERS,
    TINY_MODELS,
    applicable,
    compose,
    load_metrics,
    refusals,
    selecting,
    skip_if_refused,
    state_of,
    tensorboard_tags,
    tiny,
    train_run,
)
from datafiles import (
    write_celeba,
    write_cifar,
    write_cub,
    write_fashion,
    write_image_folder,
    write_paired_folder,
    write_unpaired_folder,
)
from msgan_cli.core.context import StepContext
from msgan_cli.errors import UserError
from msgan_cli.regularizers import REGULARIZERS
from msgan_cli.train.session import build_session


def dataset_overrides(name: str, tmp_path) -> list[str]:
    """Overrides that point a dataset at tiny files in its real format."""
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    if name in ("fashion_mnist", "stacked_fashion_mnist"):
        write_fashion(root, n_train=40, n_test=20)
        extra = ["dataset.num_train=64", "dataset.num_test=32"] if name.startswith("stacked") else []
        return [f"dataset={name}", f"dataset.root={root}", *extra]
    if name == "cifar10":
        return ["dataset=cifar10", f"dataset.root={write_cifar(root)}"]
    if name == "image_folder":
        return ["dataset=image_folder", f"dataset.root={write_image_folder(root)}", "dataset.resolution=32"]
    if name in ("ring8", "grid25"):
        return [f"dataset={name}", "dataset.num_train=500", "dataset.num_test=100"]
    if name == "paired_folder":   # pix2pix's format, streamed through a worker process
        return ["dataset=paired_folder", f"dataset.root={write_paired_folder(root, {'train': 20, 'val': 4}, height=36)}",
                "dataset.resolution=32", "dataset.in_memory=false", "dataset.workers=1"]
    if name == "unpaired_folder":
        return ["dataset=unpaired_folder", f"dataset.root={write_unpaired_folder(root)}", "dataset.resolution=16",
                "dataset.load_size=20", "dataset.workers=0"]
    if name == "cub":
        return ["dataset=cub", f"dataset.root={write_cub(root, dim=16)}", "model.embedding_dim=16", "dataset.workers=0",
                "dataset.resolution=32", "trainer.batch_size=4"]   # three stages from 8 px; 6 training images
    if name == "celeba":
        return ["dataset=celeba", f"dataset.root={write_celeba(root)}", "dataset.test_images=4", "dataset.workers=0"]
    return [f"dataset={name}"]


IMAGE_DATASETS = ["digits", "fashion_mnist", "stacked_fashion_mnist", "cifar10", "image_folder"]
# Every dataset in its real format, with the baseline and the paper's regulariser (mode seeking, the
# subject of MSGAN). Every registered regulariser on every model: test_every_regulariser_on_every_model
# below and each model's own test file, both from the registry.
COMBINATIONS = ([("dcgan", d, r) for d in IMAGE_DATASETS for r in ("none", "ms")]
                + [(m, d, r) for m in ("mlp", "mlp_unrolled") for d in ("ring8", "grid25") for r in ("none", "ms")]
                + [("pix2pix", d, r) for d in ("outline_fill", "paired_folder") for r in ("none", "ms")])


@pytest.mark.parametrize("model,dataset,reg", COMBINATIONS)
def test_smoke(tmp_path, model, dataset, reg):
    run = tmp_path / "run"
    overrides = [f"model={model}", f"reg={reg}", *dataset_overrides(dataset, tmp_path)]
    metrics = train_run(run, *overrides)
    assert metrics and all(math.isfinite(v) for v in metrics.values())
    assert load_metrics(run) == metrics
    state = state_of(run)   # loads with weights_only=True
    assert state["step"] == 4 and set(state["optimizers"]) == {"generator", "discriminator"}
    # Trained, not only run: both networks' parameters (not BatchNorm's statistics, which move at any
    # learning rate) left the initial weights the run's seed gives.
    initial = dict(build_session(compose(*overrides)).recipe.named_parameters())
    moved = {name.split(".")[0] for name, tensor in initial.items() if not torch.equal(tensor, state["model"][name])}
    assert {"generator", "discriminator"} <= moved, moved
    tags = tensorboard_tags(run)
    assert {"Loss/D/adv", "Loss/D/total", "Loss/G/adv", "Loss/G/total"} <= tags["scalars"]
    assert "Samples/grid" in tags["images"]
    if reg == "ms":
        assert {"Loss/G/ms", "Diag/ms/ratio"} <= tags["scalars"]
    expected_metric = {"ring8": "modes_2d/modes", "grid25": "modes_2d/modes", "image_folder": "pairwise_div/pixel_l1",
                       "stacked_fashion_mnist": "pairwise_div/pixel_l1", "outline_fill": "modes_per_input/modes",
                       "paired_folder": "pairwise_div/pixel_l1"}.get(dataset, "class_acc")
    assert expected_metric in metrics
    assert (run / "samples" / "final.png").stat().st_size > 0


def test_tensorboard_has_hyperparameters_and_config(tmp_path):
    train_run(tmp_path, "reg=ms", "reg.ms.weight=2")
    tags = tensorboard_tags(tmp_path)
    assert tags["hparams"], "no hparams summary written"
    assert any(tag.startswith("config") for tag in tags["tensors"])
    assert "Metrics/class_acc" in tags["scalars"]


@pytest.mark.parametrize("overrides,message", [
    (["model=dcgan", "dataset=ring8"], "needs an image dataset"),
    (["model=mlp", "dataset=digits"], "holds images"),
    (["reg=ms", "model.nz=0"], "ms needs a latent input"),
    (["reg.ms.reduction=median"], "reg.ms.reduction must be one of mean, per_sample; got 'median'"),
    (["reg=dsgan", "reg.dsgan.tau=-1"], "reg.dsgan.tau must be above 0"),
    (["reg=sr", "reg.sr.fraction=1.5"], "reg.sr.fraction must be at most 1"),
    (["reg=sr", "reg.sr.mode=wild"], "reg.sr.mode must be one of static, dynamic"),
    (["reg=unrolled", "reg.unrolled.steps=0"], "reg.unrolled.steps must be at least 1"),
    (["reg=[sn,sr]"], "cannot be combined"),
    (["reg.ms.wieght=2"], "reg.ms has no option wieght"),
    (["trainer.pair_batch=split", "trainer.batch_size=15"], "divisible by 2"),
    (["trainer.pair_batch=sideways"], "trainer.pair_batch must be one of"),
    (["trainer.batch_size=0"], "trainer.batch_size must be a whole number >= 1; got 0"),
    (["eval.metrics=[modes_2d]"], "does not apply"),
    (["eval.metrics=[fid_typo]"], "No metric named 'fid_typo'"),
    (["trainer.batch_size=4096"], "lower trainer.batch_size"),
    (["model.resolution=64"], "set dataset.resolution=64"),
    (["model.conditional=maybe"], "model.conditional must be"),
    (["model=mlp", "dataset=ring8", "model.discriminator.maxout_pieces=1"],   # a D without maxout needs an activation
     "model.discriminator.activation must be one of relu, tanh, leaky_relu"),
])
def test_incompatible_choices_stop_before_training(tmp_path, overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")):
        train_run(tmp_path / "run", *overrides)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_conditional_run_on_unlabelled_data_says_what_to_change(tmp_path):
    with pytest.raises(UserError, match="model.conditional=false"):
        train_run(tmp_path / "run", "model.conditional=true", *dataset_overrides("image_folder", tmp_path))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is visible")
def test_gpu_requested_without_gpu(tmp_path):
    with pytest.raises(UserError, match="no CUDA device"):
        train_run(tmp_path / "run", "hardware=gpu")


@pytest.mark.parametrize("layout,fake_batch", [("doubled", 32), ("split", 16)])
def test_pairs_share_conditions_in_one_generator_call(layout, fake_batch):
    session = build_session(compose("reg=ms"))
    ctx = StepContext(session.recipe, session.data.train.batch(torch.arange(16)), step=0, samples_per_condition=2,
                      pair_batch=layout)
    generated = ctx.generated()
    assert generated.images.shape[0] == fake_batch
    fake1, fake2, z1, z2 = ctx.pair()
    first, second = generated.condition.chunk(2)
    assert torch.equal(first, second)                       # the same conditions in both halves
    assert not torch.equal(z1, z2) and not torch.allclose(fake1, fake2)
    assert ctx.generated() is generated                     # one G call per step, shared by all phases
    assert ctx.loss_scale == (2 if layout == "doubled" else 1)


def regulariser_acted(name: str, run: Path) -> bool:
    """What shows in a finished run that regulariser `name` acted: its term in an objective
    (`Loss/<phase>/<name>...`) or its diagnostics (`Diag/<name>/...`, sr: its projections) in
    TensorBoard, or, for one that reports neither, the change it made to the networks, as its
    `changes_network` glob names it (sn: spectrally normalised layers; pacgan: a D that takes packs)."""
    scalars = tensorboard_tags(run)["scalars"]
    if any(tag.startswith(f"Diag/{name}/") or tag.split("/")[2:3] == [name] for tag in scalars):
        return True
    pattern = REGULARIZERS[name].changes_network
    return pattern is not None and any(fnmatch(key, pattern) for key in state_of(run)["model"])


MODELS_WITH_DATA = [("dcgan", "digits"), ("mlp", "ring8"), ("mlp_unrolled", "grid25")]


@pytest.mark.parametrize("model,dataset", MODELS_WITH_DATA)
@pytest.mark.parametrize("reg", SHIPPED_REGULARIZERS)
def test_every_regulariser_on_every_model(tmp_path, model, dataset, reg):
    """Every registered regulariser trains on each of these models, or refuses it with a sentence (its
    check: skipped with the reason); each model's own test file does the same for the other models."""
    chosen = [f"model={model}", *dataset_overrides(dataset, tmp_path)]
    skip_if_refused(reg, *chosen)
    metrics = train_run(tmp_path, *chosen, *selecting(reg))
    assert all(math.isfinite(v) for v in metrics.values())
    regularizer = REGULARIZERS[reg]
    scalars = tensorboard_tags(tmp_path)["scalars"]
    assert any(tag.startswith(f"Loss/{regularizer.phase}/{reg}") for tag in scalars) == regularizer.adds_term()
    assert regulariser_acted(reg, tmp_path)
    if regularizer.changes_network:   # what shows that it acted is absent without it
        plain = build_session(compose(*chosen, "reg=none")).recipe.state_dict()
        assert not any(fnmatch(key, regularizer.changes_network) for key in plain)


# The fewest registered regularisers each model takes today: the derived tests skip what a model refuses,
# and must not be able to skip them all (a broken check, or a tiny shape that no regulariser accepts).
FLOOR = {"dcgan": 8, "mlp": 8, "mlp_unrolled": 8, "pix2pix": 5, "drit": 4, "stackganpp": 5, "stargan": 5}


def test_the_regularisers_each_model_takes_are_not_skipped_away(tmp_path):
    models = {**TINY_MODELS, **{model: [f"model={model}", *dataset_overrides(dataset, tmp_path)]
                                for model, dataset in MODELS_WITH_DATA}}
    assert set(FLOOR) == set(models)
    for model, overrides in models.items():
        assert len(applicable(*overrides)) >= FLOOR[model], (model, refusals(*overrides))
    # and every registered regulariser applies to some model
    assert set(SHIPPED_REGULARIZERS) <= {name for overrides in models.values() for name in applicable(*overrides)}


# The default model, which every registered regulariser applies to today, in the fast tier; the others in the
# slow tier (.ci/run runs both).
@pytest.mark.parametrize("model,regs", [
    pytest.param(model, regs, id=f"{model}-{','.join(regs)}", marks=() if model == "dcgan" else pytest.mark.slow)
    for model in sorted(TINY_MODELS) for regs in COMPOSITIONS])
def test_regularisers_compose(tmp_path, model, regs):
    """Every regulariser of a composition that applies to the model acts in the run, not only the first
    or the last. The compositions put each registered regulariser beside all the others its declared
    conflicts allow (conftest.compositions); six steps see every phase of every model."""
    names = [name for name in regs if name in applicable(*TINY_MODELS[model])]
    assert len(names) >= 2, (model, regs, refusals(*TINY_MODELS[model]))
    train_run(tmp_path, *TINY_MODELS[model], *selecting(*names), "eval.metrics=[]", "trainer.max_steps=6",
              "trainer.sample_every=1000", "trainer.spectrum.every=1000")   # one grid and spectrum, at the end
    for name in names:
        assert regulariser_acted(name, tmp_path), name


@pytest.mark.parametrize("declaring,other", [(a, b) for a in SHIPPED_REGULARIZERS for b in REGULARIZERS[a].conflicts])
def test_regularisers_that_conflict_stop_before_training(tmp_path, declaring, other):
    with pytest.raises(UserError, match=f"reg={declaring} and reg={other} cannot be combined: "):
        train_run(tmp_path / "run", *selecting(declaring, other))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_metrics_during_training_and_the_best_checkpoint(tmp_path):
    common = ["model=mlp", *dataset_overrides("ring8", tmp_path), "trainer.max_steps=6", "eval.metrics=[modes_2d]",
              "trainer.checkpoint_every=3"]
    train_run(tmp_path / "plain", *common)
    metrics = train_run(tmp_path / "evaluated", *common, "trainer.eval_every=2", "trainer.best_metric=modes_2d/kl")
    tags = tensorboard_tags(tmp_path / "evaluated")["scalars"]
    assert "Metrics/modes_2d/modes" in tags
    best = torch.load(tmp_path / "evaluated" / "checkpoints" / "best.pt", weights_only=True)
    assert best["metric"] == "modes_2d/kl" and best["step"] in (2, 4, 6)
    assert best["value"] <= metrics["modes_2d/kl"]
    assert state_of(tmp_path / "evaluated")["best"]["value"] == best["value"]
    # Evaluating during training leaves training itself untouched.
    plain, evaluated = state_of(tmp_path / "plain")["model"], state_of(tmp_path / "evaluated")["model"]
    assert all(torch.equal(plain[k], evaluated[k]) for k in plain)


def test_best_metric_must_come_from_a_chosen_metric(tmp_path):
    with pytest.raises(UserError, match="best_metric=fid/classifier is not produced"):
        train_run(tmp_path, "eval.metrics=[class_acc]", "trainer.best_metric=fid/classifier")


PRESETS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", PRESETS)
def test_every_preset_trains_and_evaluates(tmp_path, experiment):
    """Each preset trains (shrunk) and evaluates, and every setting it states is the one the run used,
    except those this test shrinks."""
    from omegaconf import OmegaConf

    from msgan_cli.config import flat
    preset = compose(f"experiment={experiment}")
    dataset, model = preset.dataset.name, preset.model.name
    expected = {"ring8": "modes_2d/modes", "grid25": "modes_2d/modes", "stacked_fashion_mnist": "stacked_modes/modes",
                "digits": "ndb_jsd/per_class_mean_jsd", "fashion_mnist": "fid/classifier", "cifar10": "fid/classifier",
                "outline_fill": "modes_per_input/modes", "paired_folder": "pairwise_div/pixel_l1",
                "unpaired_folder": "pairwise_div/AtoB/pixel_l1", "cub": "pairwise_div/stage2/pixel_l1",
                "celeba": "domain_acc/to_Male/all"}[dataset]
    # The paper-sized networks and images, shrunk as each model's own tests shrink them; one metric (each
    # preset's other metrics are tested where they are defined).
    small = [o for o in TINY_MODELS.get(model, []) if not o.startswith(("model=", "dataset="))]
    shrunk = [*small, *dataset_overrides(dataset, tmp_path), "trainer.eval_every=0", "trainer.best_metric=null",
              "trainer.max_steps=2", f"eval.metrics=[{expected.split('/')[0]}]"]
    metrics = train_run(tmp_path, f"experiment={experiment}", *shrunk)
    assert expected in metrics and all(math.isfinite(v) for v in metrics.values())
    preset = OmegaConf.load(Path(__file__).parents[1] / "conf" / "experiment" / f"{experiment}.yaml")
    stated = flat(OmegaConf.to_container(preset, resolve=False))
    used = flat(state_of(tmp_path)["config"])
    overridden = {o.split("=")[0].lstrip("+") for o in (*tiny(), *shrunk)}
    for key, value in stated.items():
        if key != "defaults" and key not in overridden and not str(value).startswith("${"):
            assert used[key] == value, (key, value, used[key])


def test_a_run_shorter_than_its_image_ticks_still_logs_its_final_grid_and_spectrum(tmp_path):
    train_run(tmp_path, "trainer.max_steps=3", "trainer.sample_every=1000", "trainer.spectrum.every=1000",
              "eval.metrics=[]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    events.Reload()
    assert [image.step for image in events.Images("Samples/grid")] == [3]
    assert any(tag.startswith("Spectrum/") and tag.endswith("/curves") for tag in events.Tags()["images"])


def scalar_steps(run_dir, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def test_running_a_finished_run_again_loses_nothing_and_training_on_keeps_every_step(tmp_path):
    train_run(tmp_path, "trainer.max_steps=4", "eval.metrics=[class_acc]")
    metrics, written = (tmp_path / "metrics.json").read_text(), (tmp_path / "metrics.json").stat().st_mtime_ns
    assert scalar_steps(tmp_path, "Loss/D/total") == [2, 4]
    again = train_run(tmp_path, "trainer.max_steps=4", "eval.metrics=[class_acc]")   # the same command again
    assert again == json.loads(metrics) and (tmp_path / "metrics.json").stat().st_mtime_ns == written
    assert scalar_steps(tmp_path, "Loss/D/total") == [2, 4]      # before: the step-4 events were purged
    assert scalar_steps(tmp_path, "Metrics/class_acc") == [4]
    train_run(tmp_path, "trainer.max_steps=6", "eval.metrics=[class_acc]")            # trained on from step 4
    assert scalar_steps(tmp_path, "Loss/D/total") == [2, 4, 6]


def sweep_experiment_as_tensorboard_builds_it(sweep):
    """The HPARAMS tab's experiment, computed by TensorBoard's hparams plugin code from the event files."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context
    events = plugin_event_multiplexer.EventMultiplexer()
    events.AddRunsFromDirectory(str(sweep))
    events.Reload()
    plugin = backend_context.Context(base_plugin.TBContext(
        logdir=str(sweep), multiplexer=events, data_provider=data_provider.MultiplexerDataProvider(events, str(sweep))))
    request = context.RequestContext()
    content = plugin.hparams_metadata(request, "")
    return plugin.experiment_from_metadata(request, "", True, content, plugin.hparams_from_data_provider(request, "", 0))


def test_a_sweep_in_tensorboard_lists_every_run_with_what_differs(tmp_path):
    """Before: each run wrote its own experiment summary and TensorBoard took the first one's columns."""
    for i, (reg, seed) in enumerate([("none", 0), ("ms", 0), ("ms", 1)]):
        train_run(tmp_path / str(i), f"reg={reg}", f"seed={seed}", "trainer.max_steps=2", "eval.metrics=[class_acc]")
    experiment = sweep_experiment_as_tensorboard_builds_it(tmp_path)
    differs = {info.name: info.differs for info in experiment.hparam_infos}
    assert differs["method"] and differs["seed"] and not differs["model.name"]
    assert "reg.ms.weight" in differs                      # present although the first run has no ms
    assert {m.name.tag for m in experiment.metric_infos} == {"Metrics/class_acc", "Metrics/class_acc/classifier_test_acc"}
