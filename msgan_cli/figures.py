"""Figures with axes, ticks and a legend (matplotlib, drawn off-screen) as image tensors, for
TensorBoard and PNG files: the spectral curves and the 2D scatter of real and generated points."""
from __future__ import annotations

import numpy as np
import torch


def pyplot():
    import matplotlib
    matplotlib.use("Agg")   # files and tensors only, no display
    import matplotlib.pyplot as plt
    return plt


def figure_image(figure) -> torch.Tensor:
    """The rendered figure as a float RGB tensor (3, H, W) in [0, 1]; the figure is closed."""
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())
    pyplot().close(figure)
    return torch.from_numpy(rgba[:, :, :3].astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def spectrum_figure(curves: list[torch.Tensor], threshold: float, title: str) -> torch.Tensor:
    """Normalised singular values against their index, one curve per check, older blue to newer red
    (as in the SR-GAN paper's figures), with the threshold the monitor counts above."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(4.0, 2.8), dpi=80)
    for age, curve in enumerate(curves):
        late = age / max(len(curves) - 1, 1)
        label = {0: "oldest check", len(curves) - 1: "newest check"}.get(age) if len(curves) > 1 else "this check"
        indices = np.arange(1, len(curve) + 1)
        axis.plot(indices, curve.numpy(), color=(late, 0.1, 1.0 - late), linewidth=1, label=label)
    axis.axhline(threshold, color="grey", linestyle="--", linewidth=0.8, label=f"threshold {threshold:g}")
    axis.set(xlabel="singular value index (sorted)", ylabel="s / s_1", ylim=(0, 1.05), title=title)
    axis.title.set_fontsize(8)
    axis.legend(fontsize=6)
    figure.tight_layout()
    return figure_image(figure)


def scatter_figure(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Real (grey) and generated (red) 2D points, framed around the real data, equal axes."""
    plt = pyplot()
    real, fake = real.float().cpu().numpy(), fake.float().cpu().numpy()
    low, high = real.min(0), real.max(0)
    margin = 0.25 * (high - low).max()
    figure, axis = plt.subplots(figsize=(4.0, 4.0), dpi=80)
    axis.scatter(real[:, 0], real[:, 1], s=3, color="0.6", label="real")
    axis.scatter(fake[:, 0], fake[:, 1], s=3, color=(0.85, 0.1, 0.1), label="generated")
    axis.set(xlim=(low[0] - margin, high[0] + margin), ylim=(low[1] - margin, high[1] + margin), aspect="equal")
    axis.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    return figure_image(figure)
