"""No host synchronisation inside a training step: logged values stay on the device until a log tick.

On the CPU (every CI run): msgan's own code calls nothing that reads a value back or sizes an output
from the data (`host_sync.no_host_syncs`), for every model and every regulariser that applies to it.
On a GPU (where one is lent): the whole step, torch's internals included, under CUDA's sync debug
mode, except for the regularisers that declare why they cannot avoid it (`Regularizer.host_sync`).
"""
import math
import re

import pytest
import torch

from conftest import SHIPPED_REGULARIZERS, TINY_MODELS, compose
from host_sync import HostSync, no_host_syncs
from msgan_cli.errors import UserError
from msgan_cli.regularizers import REGULARIZERS, settings
from msgan_cli.train.runner import StepRunner

# Every registered regulariser as a user picks it, in each pair layout where it asks for pairs, and each of
# its variants that runs other code (regularizers.settings), with what a few tiny steps need for it to act
# (`smoke_overrides`: sr projects every 2nd D step): a new one is checked without editing this file.
REGULARIZER_SETTINGS = {"none": ["reg=none"]} | {label: overrides for name in SHIPPED_REGULARIZERS
                                                 for label, overrides in settings(name, smoke=True).items()}
# DRIT's full update runs every 3rd step and StarGAN's G every 5th: 6 steps see every phase of every model.
STEPS = 6


def runner_or_skip(*overrides: str) -> StepRunner:
    try:
        return StepRunner(compose(*overrides))
    except UserError as refusal:
        if not re.search(r"\bmodel \w+", str(refusal)):   # not a refusal naming the model: a wrong setting here
            raise
        pytest.skip(f"refused: {refusal}")   # a regulariser that does not apply to the model (tested where it refuses)


def regularizer_names(setting: str) -> list[str]:
    return [o.removeprefix("reg=") for o in REGULARIZER_SETTINGS[setting] if o.startswith("reg=")]


@pytest.mark.parametrize("setting", sorted(REGULARIZER_SETTINGS))
@pytest.mark.parametrize("model", sorted(TINY_MODELS))
def test_no_host_sync_in_msgan_code(model, setting):
    runner = runner_or_skip(*TINY_MODELS[model], *REGULARIZER_SETTINGS[setting])
    runner.run(1)   # first-step set-up (lazy buffers) is not what the loop repeats
    with no_host_syncs():
        runner.run(STEPS)
    logged = runner.log_tick()
    assert logged and all(math.isfinite(v) for v in logged.values())


def test_the_detector_catches_a_host_sync():
    """The check itself: a log tick reads the step's values back (by design, outside the step), and
    the detector says where."""
    runner = StepRunner(compose("reg=ms"))
    runner.run(1)
    with pytest.raises(HostSync, match=r"tolist at msgan_cli/train/divergence.py:\d+"), no_host_syncs():
        runner.log_tick()


@pytest.mark.gpu
@pytest.mark.parametrize("setting", sorted(REGULARIZER_SETTINGS))
@pytest.mark.parametrize("model", sorted(TINY_MODELS))
def test_no_host_sync_on_gpu(model, setting):
    declared = [REGULARIZERS[name].host_sync for name in regularizer_names(setting)
                if name in REGULARIZERS and REGULARIZERS[name].host_sync]
    if declared:
        pytest.skip(f"declared: {declared[0]}")
    steps_without_a_cuda_sync(runner_or_skip(*TINY_MODELS[model], *REGULARIZER_SETTINGS[setting], "hardware=gpu"))


def steps_without_a_cuda_sync(runner: StepRunner) -> None:
    """STEPS steps under CUDA's sync debug mode (an error at the first synchronisation), after a
    warm-up, then a log tick whose values are finite."""
    runner.run(2)   # warm-up: allocator, cuDNN's choice of kernels
    runner.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        runner.run(STEPS)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    logged = runner.log_tick()
    assert logged and all(math.isfinite(v) for v in logged.values())


@pytest.mark.gpu
@pytest.mark.parametrize("in_memory", [True, False])
def test_no_host_sync_on_gpu_with_folder_data(tmp_path, in_memory):
    """Image files, held on the GPU (gathered and cropped per sample from host indices) or streamed
    by a worker (pinned, copied asynchronously)."""
    from datafiles import write_paired_folder
    root = write_paired_folder(tmp_path, {"train": 20, "val": 4}, height=36)
    runner = runner_or_skip(*TINY_MODELS["pix2pix"], "reg=ms", "dataset=paired_folder", f"dataset.root={root}",
                            "dataset.resolution=32", f"dataset.in_memory={str(in_memory).lower()}", "dataset.workers=1",
                            "hardware=gpu")
    steps_without_a_cuda_sync(runner)
