"""Sample grids that make collapse visible at a glance: one row per condition, one column per latent.

The latents are fixed by a seed (not drawn from the training RNG, so sampling never changes what a
run does next), and the same column latent is used in every row. Rows that look alike across
columns mean the generator ignores its noise. For the 2D GAN: real points (grey) and generated
points (red) on one canvas.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torchvision.utils import make_grid

from msgan_cli.data import Data
from msgan_cli.models import Recipe


@contextmanager
def evaluation_mode(module: torch.nn.Module):
    """eval() and no_grad for the duration, then the previous train/eval mode (BatchNorm stats untouched)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def grid_conditions(recipe: Recipe, columns: int, max_rows: int = 10) -> tuple[torch.Tensor | None, int]:
    """Labels for a grid (row r is class r) and its number of rows."""
    if not recipe.conditional:
        return None, columns
    rows = min(recipe.num_classes, max_rows)
    return torch.arange(rows).repeat_interleave(columns), rows


def sample_grid(recipe: Recipe, data: Data, device: torch.device, columns: int = 8, seed: int = 0,
                num_points: int = 2500) -> torch.Tensor:
    """An RGB image (3, H, W) in [0, 1] for TensorBoard or a PNG."""
    generator = torch.Generator(device=device).manual_seed(seed)
    with evaluation_mode(recipe):
        if data.kind == "points":
            z = recipe.sample_latent(num_points, device, generator)
            fake = recipe.generate(z, None).float()
            real = data.test.batch(torch.arange(min(len(data.test), num_points), device=device))[0]
            return scatter_image(real, fake)
        labels, rows = grid_conditions(recipe, columns)
        if labels is None:
            z = recipe.sample_latent(rows * columns, device, generator)
        else:
            labels = labels.to(device)
            z = recipe.sample_latent(columns, device, generator).repeat(rows, 1)
        images = recipe.generate(z, labels).float()
    images = images * 0.5 + 0.5
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return make_grid(images.clamp(0, 1).cpu(), nrow=columns, padding=2, pad_value=1.0)


def scatter_image(real: torch.Tensor, fake: torch.Tensor, size: int = 320) -> torch.Tensor:
    """Real (grey) and generated (red) 2D points drawn on a white canvas framed around the real data."""
    real, fake = real.float().cpu(), fake.float().cpu()
    low, high = real.min(0).values, real.max(0).values
    margin = 0.25 * (high - low).max()
    low, span = low - margin, (high - low).max() + 2 * margin
    canvas = torch.ones(3, size, size)
    for points, colour in ((real, (0.6, 0.6, 0.6)), (fake, (0.85, 0.1, 0.1))):
        pixels = ((points - low) / span * (size - 1)).round().long()
        inside = ((pixels >= 0) & (pixels < size)).all(1)
        x, y = pixels[inside, 0], size - 1 - pixels[inside, 1]
        for channel, value in enumerate(colour):
            canvas[channel, y, x] = value
    return canvas
