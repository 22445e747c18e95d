"""trainer.ema: the generator's weight average follows its warm-up decay by hand, is what evaluation, grids,
msgan eval and msgan sample use, travels in the checkpoint so that a resume continues it exactly, and bad
values are one sentence."""
import json
import math

import numpy as np
import pytest
import torch

from conftest import compose, run_msgan, state_of, tiny, train_run
from msgan_cli.errors import UserError
from msgan_cli.evaluate import evaluate_run
from msgan_cli.train.ema import WeightAverage
from msgan_cli.train.session import build_session, load_trained_session

EMA = ["reg=none", "trainer.ema=0.9", "eval.metrics=[pairwise_div,class_acc]"]


def test_the_average_follows_the_warm_up_decay():
    recipe = build_session(compose("reg=none")).recipe
    start = {name: p.clone() for name, p in recipe.generator.named_parameters()}
    average = WeightAverage(recipe, 0.9)
    assert average.decay_at(0) == pytest.approx(0.1) and average.decay_at(100) == 0.9   # min(0.9, (1 + s) / (10 + s))
    with torch.no_grad():
        for p in recipe.generator.parameters():
            p.fill_(1.0)
    average.update(0)             # 0.1 start + 0.9 x 1
    average.update(100)           # 0.9 (that) + 0.1 x 1
    for name, p in average.average["generator"].named_parameters():
        expected = 0.9 * (0.1 * start[name] + 0.9) + 0.1
        assert torch.allclose(p, expected), name
    assert not any(p.requires_grad for p in average.average["generator"].parameters())
    # Swapped in for the duration only.
    own = recipe.generator
    with average.swapped_in():
        assert recipe.generator is average.average["generator"]
    assert recipe.generator is own


def test_evaluation_grids_and_msgan_eval_use_the_average(tmp_path):
    trained = run_msgan("train", *tiny(*EMA), f"hydra.run.dir={tmp_path}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    metrics, state = json.loads((tmp_path / "metrics.json").read_text()), state_of(tmp_path)
    live = {k.removeprefix("generator."): v for k, v in state["model"].items() if k.startswith("generator.")}
    averaged = state["ema"]["generator"]
    assert any(not torch.equal(live[name], averaged[name]) for name in averaged)
    # What msgan eval and msgan sample load is the average ...
    session, _ = load_trained_session(tmp_path, "cpu")
    for name, tensor in session.recipe.generator.state_dict().items():
        assert torch.equal(tensor, averaged[name]), name
    # The run's final grid is the average's (save_image's rounding to 8 bits, as the PNG).
    from PIL import Image

    from msgan_cli.sampling import sample_grids
    grid = sample_grids(session.recipe, session.data, session.device, seed=session.cfg.seed)["grid"]
    png = torch.from_numpy(np.array(Image.open(tmp_path / "samples" / "final.png"))).permute(2, 0, 1)
    assert torch.equal(png, grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8))
    # ... and evaluating it again gives the run's own numbers, which G's live weights do not.
    again, _ = evaluate_run(session, ["pairwise_div", "class_acc"], session.cfg.eval, step=4)
    assert again == pytest.approx(metrics)
    session.recipe.generator.load_state_dict(live)
    with_live, _ = evaluate_run(session, ["pairwise_div", "class_acc"], session.cfg.eval, step=4)
    assert with_live != pytest.approx(metrics)


def test_stop_and_resume_continues_the_same_average(tmp_path, monkeypatch):
    from test_pix2pix import assert_same_training, stopped_then_resumed
    common = [*EMA, "trainer.max_steps=6", "trainer.checkpoint_every=2", "eval.metrics=[]"]
    train_run(tmp_path / "whole", *common)
    whole, resumed = state_of(tmp_path / "whole"), stopped_then_resumed(tmp_path / "resumed", 3, common, monkeypatch)
    assert_same_training(whole, resumed)
    for name, tensor in whole["ema"]["generator"].items():
        assert torch.equal(tensor, resumed["ema"]["generator"][name]), name


@pytest.mark.parametrize("value", ["1.5", "0", "abc"])
def test_a_bad_decay_is_one_sentence(tmp_path, value):
    with pytest.raises(UserError, match="trainer.ema .* must be between 0 and 1"):
        train_run(tmp_path, "reg=none", f"trainer.ema={value}")


def test_every_model_names_networks_it_has():
    for overrides in (["model=drit", "model.width=4", "dataset.resolution=16"], ["model=stackganpp"], ["model=stargan"]):
        recipe = build_session(compose(*overrides, "reg=none")).recipe
        assert math.prod(len(list(getattr(recipe, name).parameters())) for name in recipe.averaged_networks) > 0


def test_an_average_missing_from_the_checkpoint_starts_from_the_restored_weights():
    """A run resumed with trainer.ema newly set: its average must not start from the random weights the
    recipe was built with."""
    recipe = build_session(compose("reg=none")).recipe
    average = WeightAverage(recipe, 0.999)
    with torch.no_grad():   # what a restore does: new weights into the same network objects
        for p in recipe.generator.parameters():
            p.add_(1.0)
    average.load_state_dict({})
    for (name, kept), live in zip(average.average["generator"].named_parameters(), recipe.generator.parameters()):
        assert torch.equal(kept, live), name
