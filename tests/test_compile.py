"""`hardware.compile=true`: torch.compile of the networks trains like the eager run, and its
checkpoints load without compile."""
import pytest

from conftest import TINY_MODELS, compose, state_of, train_run
from msgan_cli.errors import UserError
from msgan_cli.train.runner import StepRunner

pytestmark = pytest.mark.slow   # compiling takes about a minute on 2 CPU cores (then inductor's cache serves it)

# Same initial weights, batches and latents: a compiled step differs from the eager one by the
# rounding of its fused kernels only, which a few steps of Adam do not grow past this.
TOLERANCE = 1e-4


# The default run; the two objectives differentiated twice, which compiled graphs cannot be (their
# double-backward parts run eagerly): the unrolled GAN's look-ahead and WGAN-GP's penalty (StarGAN's);
# DPM, which reads D's features through a hook (that D call runs eagerly); and a spectrally normalised
# D, which stays eager (its in-place power iteration broke autograd compiled). Each crashed before.
SETTINGS = {"dcgan, ms": ["reg=ms"],
            "2D GAN, unrolled": [*TINY_MODELS["mlp"], "reg=unrolled", "reg.unrolled.steps=2"],
            "stargan, wgan-gp": TINY_MODELS["stargan"],
            "dcgan, dpm": ["reg=dpm"],
            "2D GAN, sn": [*TINY_MODELS["mlp"], "reg=sn"]}


def losses_over_steps(overrides: list[str], compiled: bool, steps: int = 3) -> list[dict[str, float]]:
    runner = StepRunner(compose(*overrides, f"hardware.compile={str(compiled).lower()}"))
    logged = []
    for _ in range(steps):
        runner.run(1)
        logged.append(runner.log_tick())
    return logged


@pytest.mark.parametrize("setting", SETTINGS)
def test_compiled_run_trains_like_the_eager_one(setting):
    eager, compiled = (losses_over_steps(SETTINGS[setting], compiled) for compiled in (False, True))
    assert [sorted(step) for step in eager] == [sorted(step) for step in compiled]
    for eager_step, compiled_step in zip(eager, compiled):
        for name, value in eager_step.items():
            assert compiled_step[name] == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), name


def test_compiled_checkpoint_resumes_eager(tmp_path):
    train_run(tmp_path, "hardware.compile=true", "trainer.max_steps=2", "eval.metrics=[]")
    names = set(state_of(tmp_path)["model"])
    assert names and not any("_orig_mod" in name for name in names)   # the eager module's names
    train_run(tmp_path, "hardware.compile=false", "trainer.max_steps=4", "eval.metrics=[]")
    assert state_of(tmp_path)["step"] == 4


def test_unknown_compile_mode():
    with pytest.raises(UserError, match="hardware.compile_mode must be one of default"):
        StepRunner(compose("hardware.compile=true", "hardware.compile_mode=fastest"))
