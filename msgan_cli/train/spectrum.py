"""Spectral monitoring, for every run: SR-GAN's early-warning signal of mode collapse (docs/methods.md#spectral-monitoring).

Every `trainer.spectrum.every` steps, the normalised singular values (`s / s_1`) of each D layer are
logged as a histogram, as a figure of value against index with one curve per check (older blue,
newer red, as in the SR-GAN paper's figures; figures.py), and as one scalar per layer: the share of
normalised singular values above `threshold`. When that share falls below `(1 - warn_drop)` times the
best seen in this run, the log warns (once, until the layer recovers): in SN-GANs most singular values
drop at once when the GAN collapses.
"""
from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig

from msgan_cli.figures import spectrum_figure
from msgan_cli.models.base import Recipe, weight_matrix

log = logging.getLogger(__name__)


@torch.no_grad()
def normalised_spectra(recipe: Recipe) -> dict[str, torch.Tensor]:
    """`{layer: s / s_1}` (on the CPU) of every D weight layer with more than one singular value."""
    spectra = {}
    for name, module in recipe.discriminator_layers():
        matrix = weight_matrix(module.weight.detach().float(), module)   # the weight D uses (after SN)
        if min(matrix.shape) > 1:
            s = torch.linalg.svdvals(matrix).cpu()
            spectra[name] = s / s[0]
    return spectra


class SpectralMonitor:
    def __init__(self, options: DictConfig, history: int = 12):
        self.threshold, self.warn_drop, self.history = float(options.threshold), float(options.warn_drop), history
        self.curves: dict[str, list[torch.Tensor]] = {}
        self.best_share: dict[str, float] = {}
        self.warned: set[str] = set()   # layers collapsed at the last check (warned once)

    def update(self, step: int, recipe: Recipe, writer) -> list[str]:
        """Log the spectra; return the layers whose share collapsed (also warned in the log)."""
        collapsed, scalars = [], {}
        for name, spectrum in normalised_spectra(recipe).items():
            share = float((spectrum > self.threshold).float().mean())
            scalars[f"Spectrum/{name}/share_above_{self.threshold:g}"] = share
            writer.histogram(f"Spectrum/{name}", spectrum, step)
            self.curves[name] = (self.curves.get(name, []) + [spectrum])[-self.history:]
            figure = spectrum_figure(self.curves[name], self.threshold, f"{name}, step {step}")
            writer.image(f"Spectrum/{name}/curves", figure, step)
            best = max(self.best_share.get(name, share), share)
            self.best_share[name] = best
            if share >= (1.0 - self.warn_drop) * best:
                self.warned.discard(name)
                continue
            collapsed.append(name)
            if name not in self.warned:   # once per collapse, not at every check while it lasts
                self.warned.add(name)
                log.warning("Spectral collapse? At step %d, %.0f%% of D layer %s's normalised singular values are "
                            "above %g, down from %.0f%%. SN-GANs show this when they mode-collapse; see reg=sr.",
                            step, 100 * share, name, self.threshold, 100 * best)
        scalars["Spectrum/collapsed_layers"] = float(len(collapsed))
        writer.scalars(step, scalars)
        return collapsed

    # Checkpointed, so that a resumed run warns against the best share it had seen and keeps drawing
    # the same curves, as the uninterrupted run would.
    def state_dict(self) -> dict:
        return {"best_share": dict(self.best_share), "curves": {name: list(c) for name, c in self.curves.items()},
                "warned": sorted(self.warned)}

    def load_state_dict(self, state: dict) -> None:
        self.best_share = dict(state.get("best_share", {}))
        self.curves = {name: list(c) for name, c in state.get("curves", {}).items()}
        self.warned = set(state.get("warned", []))
