"""A regulariser defined here, outside the project, trains without touching any project file:
one class, one config node (here in Hydra's ConfigStore instead of a YAML file)."""
from dataclasses import dataclass

import torch
from hydra.core.config_store import ConfigStore

from conftest import compose, tensorboard_tags, train_run
from msgan_cli.core.stats import report
from msgan_cli.regularizers import Regularizer, RegularizerOptions, WeightedOptions, register_regularizer
from msgan_cli.train.session import build_session


@dataclass
class PullOptions(WeightedOptions):
    target: float = 0.0


@register_regularizer("pull_to_target")
class PullToTarget(Regularizer):
    """Pulls every generated pixel towards `target` (a test regulariser with an obvious effect)."""

    phase = "G"
    Options = PullOptions
    calls = 0

    def loss(self, ctx):
        type(self).calls += 1
        images = ctx.generated().images
        report("Diag/pull_to_target/mean", images.mean())
        return (images - self.options.target).pow(2).mean()


ConfigStore.instance().store(group="reg", name="pull_to_target", package="reg.pull_to_target",
                             node={"enabled": True, "weight": 1.0, "target": 0.0})


def mean_generated_pixel(run_dir, *overrides) -> float:
    """The mean pixel of 64 samples (fixed latents) from the run's final generator, with BatchNorm on
    batch statistics as in training (12 steps barely move its running statistics)."""
    session = build_session(compose(*overrides))
    session.recipe.load_state_dict(torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"])
    z = session.recipe.sample_latent(64, session.device, torch.Generator().manual_seed(0))
    with torch.no_grad():
        return session.recipe.generate(z, torch.arange(64) % 10).mean().item()


def test_regulariser_defined_in_a_test_module_trains_and_acts(tmp_path):
    common = ["trainer.max_steps=12", "model.optim.lr_g=5e-3", "eval.metrics=[pairwise_div]"]
    PullToTarget.calls = 0
    plugin = ["reg=[ms,pull_to_target]", "reg.pull_to_target.weight=20", "reg.pull_to_target.target=-1.0", *common]
    train_run(tmp_path / "plugin", *plugin)
    assert PullToTarget.calls == 12                      # once per step, in the G phase
    tags = tensorboard_tags(tmp_path / "plugin")
    assert {"Loss/G/pull_to_target", "Diag/pull_to_target/mean", "Loss/G/ms"} <= tags["scalars"]

    train_run(tmp_path / "baseline", "reg=ms", *common)
    # Same seed, same data: only the regulariser differs, and it pulled the outputs towards -1.
    pulled = mean_generated_pixel(tmp_path / "plugin", *plugin)
    baseline = mean_generated_pixel(tmp_path / "baseline", "reg=ms", *common)
    assert pulled < baseline - 0.1


def test_a_term_whose_options_have_no_weight_is_refused_where_it_is_defined():
    """terms() adds weight * loss(): a loss() with options without a weight would never be added, and the
    regulariser would train as if absent. The class definition says so instead."""
    import pytest

    @dataclass
    class Unweighted(RegularizerOptions):
        target: float = 0.0

    with pytest.raises(TypeError, match="implements loss\\(\\) but its Options \\(Unweighted\\) have no weight"):
        class Forgotten(Regularizer):
            Options = Unweighted

            def loss(self, ctx):
                return ctx.generated().images.mean()
