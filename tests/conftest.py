"""Tests compose the real config (conf/) and shrink it to seconds: tiny widths, a few steps."""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from msgan_cli.config import compose_config
from msgan_cli.regularizers import REGULARIZERS, refusal
from msgan_cli.train.loop import train
from msgan_cli.train.session import build_session

# Small enough that a training smoke test takes a second or two on 2 CPU cores.
TINY = [
    "hardware=cpu",
    "model.width=8",        # the image models' (tiny() drops it for the 2D GANs, which have none)
    "trainer.max_steps=4",
    "trainer.batch_size=16",
    "trainer.log_every=2",
    "trainer.sample_every=2",
    "trainer.checkpoint_every=2",
    "trainer.spectrum.every=2",
    "trainer.progress_bar=false",
    "eval.num_samples=64",
    "eval.classifier.steps=40",
    "eval.classifier.width=4",
    "eval.ndb.bins=8",
    "eval.ndb.per_class_bins=3",
    "eval.kid.subsets=10",
]


@pytest.fixture(autouse=True, scope="session")
def classifier_cache(tmp_path_factory):
    """Classifiers trained by the tests land in a temporary cache, never the user's."""
    os.environ["MSGAN_CACHE"] = str(tmp_path_factory.mktemp("msgan_cache"))


# Each model's tiny shape, as its own test file shrinks it (the GPU and host-synchronisation tests).
TINY_MODELS = {
    "dcgan": [],
    "mlp": ["model=mlp", "dataset=grid25", "dataset.num_train=500"],
    "pix2pix": ["model=pix2pix", "model.width=4", "trainer.batch_size=4"],
    "drit": ["model=drit", "model.width=4", "dataset.resolution=16", "trainer.batch_size=4"],
    "stackganpp": ["model=stackganpp", "model.width_g=8", "model.width_d=4", "model.ca_dim=8", "model.nz=8",
                   "model.base_size=8", "dataset.resolution=16", "trainer.batch_size=8"],
    "stargan": ["model=stargan", "model.width_g=4", "model.width_d=4", "model.residual_blocks=1", "model.nz=4",
                "dataset.resolution=16", "trainer.batch_size=8"],
}


def tiny(*overrides: str) -> list[str]:
    """TINY followed by `overrides`, with TINY's width only where the model chosen has a width (the 2D
    GANs have none): a key the chosen model does not have stops the run, as it should for a user."""
    without_width = [o for o in TINY if not o.startswith("model.width=")]
    try:
        has_width = "width" in compose_config("train", without_width + list(overrides)).model
    except Exception:   # overrides a test expects to fail: the real call reports them
        has_width = True
    return without_width + (["model.width=8"] if has_width else []) + list(overrides)


def compose(*overrides: str):
    return compose_config("train", tiny(*overrides))


def train_run(run_dir: Path, *overrides: str) -> dict:
    """Train a tiny run in-process (without Hydra's run-directory machinery) and return its metrics."""
    return train(compose(*overrides), run_dir)


# --- the regularisers, from the registry (docs/extending.md#regularizer) ------------------------------
# The tests below cover every regulariser the package registers without naming it: a new one (a module,
# a YAML file and its own test file) is trained on every model it applies to, composed with the others
# and checked for host synchronisation. Whatever those tests need to know about one it states on its
# class (`smoke_overrides`, `variants`, `changes_network`, `conflicts`, `adds_term()`).

# Registered by the package's modules, not by a test module (tests/test_plugin.py registers its own).
SHIPPED_REGULARIZERS = sorted(name for name, regularizer in REGULARIZERS.items()
                              if regularizer.__module__.startswith("msgan_cli.regularizers."))


def regularizer_params(*fast: str, with_none: bool = False) -> list:
    """Every shipped regulariser (and `none`) as a test parameter: those in `fast` in the fast tier, the
    rest in the slow one (`pytest -m slow`, which CI runs too), so that a model's file checks a
    representative in minutes and every regulariser on every model in CI."""
    names = (["none"] if with_none else []) + SHIPPED_REGULARIZERS
    return [name if name in fast else pytest.param(name, marks=pytest.mark.slow) for name in names]


def selecting(*names: str) -> list[str]:
    """The overrides that select regularisers `names` (none: `reg=none`) for a tiny run of a few steps:
    `reg=<name>` or `reg=[a,b]`, with each one's `smoke_overrides` (sr projecting every 2nd D step)."""
    names = tuple(name for name in names if name != "none")
    selected = f"reg={names[0]}" if len(names) == 1 else f"reg=[{','.join(names)}]" if names else "reg=none"
    return [selected, *(o for name in names for o in REGULARIZERS[name].smoke_overrides)]


@functools.cache
def refusals(*overrides: str) -> dict[str, str | None]:
    """Each shipped regulariser -> why it refuses the model that `overrides` choose (its check, run as
    `msgan train` runs it before training), or None: it applies."""
    recipe = build_session(compose(*overrides, "reg=none")).recipe
    return {name: refusal(name, recipe) for name in SHIPPED_REGULARIZERS}


def applicable(*overrides: str) -> list[str]:
    """The shipped regularisers that apply to the model `overrides` choose."""
    return [name for name, why in refusals(*overrides).items() if why is None]


def skip_if_refused(reg: str, *overrides: str) -> None:
    """Skip, with its reason, a regulariser that refuses the model `overrides` choose, once its refusal is
    the sentence a user gets: it names the regulariser and the model. (Each model's test file checks the
    wording of its refusals; `applicable` with a floor checks that not everything is skipped.)"""
    why = None if reg == "none" else refusals(*overrides)[reg]
    if why is not None:
        assert f"reg={reg}" in why and re.search(r"\bmodel \w+", why), why
        pytest.skip(f"refused: {why}")


def conflict(a: str, b: str) -> bool:
    return b in REGULARIZERS[a].conflicts or a in REGULARIZERS[b].conflicts


def compositions(names: list[str]) -> list[tuple[str, ...]]:
    """Groups of `names` that place every one beside as many others as the declared conflicts allow, in
    few runs: each group takes first those not yet placed, then every other, each where it conflicts
    with none already in the group."""
    groups, unplaced = [], list(names)
    while unplaced:
        group: list[str] = []
        for name in unplaced + [name for name in names if name not in unplaced]:
            if not any(conflict(name, other) for other in group):
                group.append(name)
        groups.append(tuple(sorted(group)))
        unplaced = [name for name in unplaced if name not in group]
    return groups


COMPOSITIONS = compositions(SHIPPED_REGULARIZERS)


def msgan(*args: str, cwd: Path | None = None, env_extra: dict | None = None, timeout: int = 300):
    """Run the real `msgan` console entry point in a subprocess (the slow tier: what only a fresh
    process shows, such as the entry point itself, signals or torchrun)."""
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "msgan_cli.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_msgan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`msgan *args` in this process, as `msgan` would run it (cli.main, Hydra included), with its exit
    status and what it printed: the same code path as the console command without the 2-3 s of a fresh
    Python and torch. What a command changes in the process (torch's thread count, signal handlers,
    sys.argv, the working directory, root logging handlers) is put back afterwards."""
    import contextlib
    import io
    import logging
    import signal

    from msgan_cli import cli, commands

    stdout, stderr = io.StringIO(), io.StringIO()
    saved = (torch.get_num_threads(), sys.argv[:], os.getcwd(), logging.getLogger().handlers[:],
             {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)})
    commands.TRAINING_CRASHED = False
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = cli.main(list(args))
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        threads, sys.argv[:], cwd_before, handlers, handlers_by_signal = saved
        torch.set_num_threads(threads)
        os.chdir(cwd_before)
        root = logging.getLogger()
        for handler in root.handlers[:]:
            if handler not in handlers:   # Hydra's file and console handlers of the run
                root.removeHandler(handler)
                handler.close()
        for sig, handler in handlers_by_signal.items():
            signal.signal(sig, handler)
    return subprocess.CompletedProcess(["msgan", *args], code, stdout.getvalue(), stderr.getvalue())


def tensorboard_tags(run_dir: Path) -> dict[str, set[str]]:
    """Scalar and image tags written under <run>/tb, and whether hparams were written."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    hparams_events = EventAccumulator(str(run_dir / "tb" / "hparams"))   # the HPARAMS tab's own folder
    hparams_events.Reload()
    try:
        hparams = set(hparams_events.PluginTagToContent("hparams"))
    except KeyError:
        hparams = set()
    return {"scalars": set(tags["scalars"]), "images": set(tags["images"]), "hparams": hparams,
            "tensors": set(tags["tensors"])}


def load_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def state_of(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def pytest_collection_modifyitems(config, items):
    """GPU tests skip themselves, with the reason, where no CUDA device is visible."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
