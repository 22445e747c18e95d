"""Everything a run needs, built and checked before the first step: device, data, model, regularisers;
and a finished run's session with its trained weights (`load_trained_session`).

Shared by `msgan train`, `msgan eval` and `msgan sample`, so all three build a run the same way.
"""
from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.utils.parametrize import is_parametrized

from msgan_cli.config import compose_config, config_changes, in_current_form, load_saved_config
from msgan_cli.core.checkpoints import load_checkpoint
from msgan_cli.core.distributed import ProcessInfo, process_info
from msgan_cli.core.run_files import RunFiles
from msgan_cli.data import Data, load_dataset
from msgan_cli.errors import UserError
from msgan_cli.models import Recipe, build_model
from msgan_cli.regularizers import Regularizer, build_regularizers
from msgan_cli.train.ema import load_averaged_weights

log = logging.getLogger(__name__)


@dataclass
class Session:
    cfg: DictConfig
    info: ProcessInfo
    device: torch.device
    data: Data
    recipe: Recipe
    regularizers: list[Regularizer]

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast on CUDA when `hardware.amp` is on; otherwise full precision."""
        if self.cfg.hardware.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()


def select_device(hardware: DictConfig, info: ProcessInfo) -> torch.device:
    if info.world_size > 1 and not hardware.distributed:
        raise UserError(f"Launched as {info.world_size} processes but hardware={hardware.name}: add hardware=ddp.")
    if hardware.distributed and info.world_size == 1:
        log.warning("hardware=%s, but this is a single process: it trains alone. Launch it with torchrun "
                    "--nproc_per_node=N (or srun --ntasks=N) to train data-parallel.", hardware.name)
    if hardware.device == "cpu":
        return torch.device("cpu")
    if hardware.device == "cuda" or (hardware.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError(f"hardware={hardware.name} asks for a GPU but no CUDA device is visible: "
                            f"use hardware=auto or hardware=cpu.")
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    if hardware.device != "auto":
        raise UserError(f"hardware.device must be auto, cpu or cuda; got '{hardware.device}'.")
    return torch.device("cpu")


def build_session(cfg: DictConfig, info: ProcessInfo | None = None) -> Session:
    info = info or process_info()
    device = select_device(cfg.hardware, info)
    data = load_dataset(cfg.dataset).to(device)
    torch.manual_seed(cfg.seed)   # the same initial weights on every rank
    recipe = build_model(cfg.model, data).to(device)
    if cfg.hardware.channels_last and data.kind == "image":
        recipe = recipe.to(memory_format=torch.channels_last)
    regularizers = build_regularizers(cfg.get("reg"), recipe)   # may re-parametrise the model (sn, sr)
    if cfg.hardware.compile:
        compile_networks(recipe, cfg.hardware.compile_mode)
    return Session(cfg, info, device, data, recipe, regularizers)


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_networks(recipe: Recipe, mode: str) -> None:
    """torch.compile every network of the recipe in place (`nn.Module.compile`), after the regularisers
    have re-parametrised them: the modules, their parameter names and so the checkpoints stay those of
    the eager run. Compilation happens at each network's first call."""
    if mode not in COMPILE_MODES:
        raise UserError(f"hardware.compile_mode must be one of {', '.join(COMPILE_MODES)}; got '{mode}'.")
    for name, network in recipe.named_children():
        if any(is_parametrized(module) for module in network.modules()):
            # Spectral normalisation (reg=sn, reg=sr) updates its power-iteration vectors in place in
            # every forward; compiled, a D called on real and on fake batches before one backward
            # failed autograd's version check (the 2D GAN, CPU). Such a network stays eager.
            log.info("hardware.compile: %s is spectrally normalised and stays eager", name)
            continue
        network.compile(mode=mode)


def load_run_config(run_dir: Path) -> DictConfig:
    """The run's resolved config; evaluation and hardware options it predates get today's defaults."""
    path = RunFiles(run_dir).existing_config()
    try:
        cfg = load_saved_config(path)
    except Exception as error:   # cut short, binary, not YAML: the file's fault, said in a sentence
        raise UserError(f"{path} cannot be read ({type(error).__name__}: {str(error).strip().splitlines()[0][:120]}); "
                        f"the run's checkpoint still holds its config: restore the file from a copy.") from None
    defaults = compose_config("train", [])
    cfg.eval = OmegaConf.merge(defaults.eval, cfg.eval)
    cfg.hardware = OmegaConf.merge(defaults.hardware, cfg.hardware)
    return cfg


def load_trained_session(run_dir: Path, device: str | None = None):
    """The run's session with the weights of its last checkpoint (CPU unless a device is given). The
    session is built from the config the checkpoint was trained with: where `.hydra/config.yaml` says
    otherwise (a folder whose `.hydra/` a later command rewrote), the log says which keys differ."""
    cfg = load_run_config(run_dir)
    checkpoint = RunFiles(run_dir).checkpoint
    if not checkpoint.exists():
        raise UserError(f"{run_dir} has no checkpoints/last.pt yet: train it first (or wait for its first checkpoint).")
    state = load_checkpoint(checkpoint, "cpu")
    if "config" in state and (changes := config_changes(state["config"], OmegaConf.to_container(cfg, resolve=True))):
        log.warning("%s differs from the config its checkpoint was trained with (%s): the checkpoint's is used.",
                    RunFiles(run_dir).config, "; ".join(changes[:6]))
        trained = OmegaConf.create(in_current_form(state["config"]))
        trained.eval, trained.hardware = cfg.eval, cfg.hardware   # what evaluates it, and where: as asked now
        cfg = trained
    if device is not None:
        cfg.hardware.device, cfg.hardware.distributed = device, False
    cfg.hardware.compile = False   # a compiled run's networks are the eager ones; compiling would only delay
    session = build_session(cfg, ProcessInfo(0, 1, 0))
    session.recipe.load_state_dict(state["model"])
    if state.get("ema"):   # trainer.ema: the run was evaluated with its weight average, and so is it here
        load_averaged_weights(session.recipe, state["ema"])
    return session, int(state["step"])
