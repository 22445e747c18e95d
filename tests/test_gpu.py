"""The same runs on a GPU, without code changes (skipped where no CUDA device is visible)."""
import math

import pytest
import torch

from conftest import TINY_MODELS, compose, state_of, train_run
from msgan_cli.train.session import build_session

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("overrides", [
    ["hardware=gpu"],
    ["hardware=gpu", "hardware.amp=true"],
    ["hardware=gpu", "hardware.amp=true", "hardware.channels_last=true"],
    ["hardware=auto", "model=mlp", "dataset=grid25", "dataset.num_train=500"],
])
def test_training_on_gpu(tmp_path, overrides):
    metrics = train_run(tmp_path, "reg=ms", *overrides)
    assert all(math.isfinite(v) for v in metrics.values())
    # A GPU checkpoint loads on a machine without one.
    state = torch.load(tmp_path / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 4


def test_gpu_checkpoint_resumes_on_gpu(tmp_path):
    common = ["hardware=gpu", "reg=ms", "eval.metrics=[]"]
    train_run(tmp_path, *common, "trainer.max_steps=3")
    train_run(tmp_path, *common, "trainer.max_steps=6")
    assert state_of(tmp_path)["step"] == 6


def test_session_uses_the_gpu():
    session = build_session(compose("hardware=gpu"))
    assert session.device.type == "cuda"
    assert next(session.recipe.parameters()).is_cuda and session.data.train.values.is_cuda


IMAGE_MODELS = {name: TINY_MODELS[name] for name in ("pix2pix", "drit", "stackganpp", "stargan")}


@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize("model", sorted(IMAGE_MODELS))
def test_image_models_train_on_gpu(tmp_path, model, amp):
    """Every image-conditioned model, with mode seeking, a few steps on CUDA and evaluated there."""
    metrics = train_run(tmp_path, *IMAGE_MODELS[model], "reg=ms", "hardware=gpu", f"hardware.amp={str(amp).lower()}",
                        "eval.per_input.inputs=4", "eval.metrics=[modes_per_input,pairwise_div]")
    assert metrics and all(math.isfinite(v) for v in metrics.values())
    assert state_of(tmp_path)["step"] == 4
