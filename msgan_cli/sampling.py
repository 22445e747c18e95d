"""Sample grids that make collapse visible at a glance: one row per condition, one column per latent.

The latents are fixed by a seed (not drawn from the training RNG, so sampling never changes what a
run does next), and the same column latent is used in every row. Rows that look alike across
columns mean the generator ignores its noise. A row is a class for class-conditional models; for
models conditioned on data (pix2pix) it is a held-out input: the input and its ground truth first,
then the outputs. A model translating both ways between unpaired domains (DRIT) has one grid per
direction, each row an input, its outputs, then a real image of the other domain and the input
translated with that image's attribute (attribute transfer). A model translating each input into
several target domains (StarGAN) has one grid: a row per input, the input, then a block of columns per
target domain (one per latent). For the 2D GAN: real points (grey) and generated points (red) on one
canvas.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torchvision.utils import make_grid

from msgan_cli.core.batch import take
from msgan_cli.data import Batch, Data
from msgan_cli.figures import scatter_figure
from msgan_cli.models import Direction, Recipe


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


def sample_grids(recipe: Recipe, data: Data, device: torch.device, columns: int = 8, seed: int = 0,
                 num_points: int = 2500, inputs: int = 8) -> dict[str, torch.Tensor]:
    """RGB images (3, H, W) in [0, 1] for TensorBoard or PNGs: {"grid": image}, or for a model
    evaluated in several directions one per direction, {"AtoB": ..., "BtoA": ...}."""
    generator = torch.Generator(device=device).manual_seed(seed)
    with evaluation_mode(recipe):
        if data.kind == "points":
            z = recipe.sample_latent(num_points, device, generator)
            fake = recipe.generate_primary(z, None).float()
            real = data.test.batch(torch.arange(min(len(data.test), num_points), device=device)).samples
            return {"grid": scatter_figure(real, fake)}
        if recipe.conditions_come_from_data:
            directions = recipe.evaluation_directions(data)
            if recipe.views_side_by_side:
                z = recipe.sample_latent(latents_per_view(recipe), device, generator)
                rows = torch.arange(min(inputs, len(directions[0].data.evaluation_split)), device=device)
                return {"grid": views_grid(recipe, directions, rows, z)}
            z = recipe.sample_latent(columns, device, generator)
            grids = {}
            for direction in directions:
                split = direction.data.evaluation_split
                rows = split.batch(torch.arange(min(inputs, len(split)), device=device))
                grids[direction.name or "grid"] = input_grid(recipe, direction, rows, z)
            return grids
        labels, rows = grid_conditions(recipe, columns)
        if labels is None:
            z = recipe.sample_latent(rows * columns, device, generator)
        else:
            labels = labels.to(device)
            z = recipe.sample_latent(columns, device, generator).repeat(rows, 1)
        images = recipe.generate_primary(z, labels).float()
    return {"grid": make_grid(displayable(images).cpu(), nrow=columns, padding=2, pad_value=1.0)}


def latents_per_view(recipe: Recipe, asked: int | None = None) -> int:
    """Columns per view of a side-by-side grid: `asked` (or 3) latents, or 1 for a model without a
    latent, whose outputs for one input and view are all the same."""
    return (asked or 3) if recipe.has_latent else 1


def displayable(images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Images in [-1, 1] as RGB in [0, 1] (grayscale repeated), resized to `size` when given."""
    images = (images.float() * 0.5 + 0.5).clamp(0, 1)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if size is not None and tuple(images.shape[-2:]) != tuple(size):
        images = torch.nn.functional.interpolate(images, size=size, mode="nearest")
    return images


def input_grid(recipe: Recipe, direction: Direction, rows: Batch, z: torch.Tensor) -> torch.Tensor:
    """One row per held-out sample of the direction's data: its input (when the condition is an
    image), its ground truth (when the data is paired), then G's outputs for the latents `z` (one
    column each, the same latents in every row). On unpaired data the sample's target is an image of
    the other domain, not the input's truth: a model that can take an attribute from it
    (`generate_with_reference`) shows it and then the input translated with its attribute."""
    n, columns = len(rows), len(z)
    condition = direction.condition(rows)
    reference, transferred = None, None
    with evaluation_mode(recipe):
        outputs = direction.generate(recipe, z.repeat(n, 1), take(condition, torch.arange(n).repeat_interleave(columns)))
        if not direction.data.paired and recipe.offers("generate_with_reference"):
            reference = rows.samples
            transferred = recipe.generate_with_reference(condition, reference, direction.output)
    size = tuple(outputs.shape[-2:])
    truth = rows.samples if direction.data.paired else None
    before = [displayable(image, size)[:, None] for image in (recipe.condition_image(condition), truth) if image is not None]
    after = [displayable(image, size)[:, None] for image in (reference, transferred) if image is not None]
    cells = torch.cat([*before, displayable(outputs).view(n, columns, 3, *size), *after], 1)
    return make_grid(cells.flatten(0, 1).cpu(), nrow=cells.shape[1], padding=2, pad_value=1.0)


def views_grid(recipe: Recipe, directions: tuple[Direction, ...], index: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """One row per held-out input `index` of views that all translate the same inputs (StarGAN's target
    domains): the input, then for each view in turn its outputs for the latents `z` (a block of
    len(z) columns per view, the same latents in every block and row)."""
    n, columns = len(index), len(z)
    blocks, source = [], None
    with evaluation_mode(recipe):
        for direction in directions:
            condition = direction.condition(direction.data.evaluation_split.batch(index))
            if source is None:
                source = displayable(recipe.condition_image(condition))
            repeated = take(condition, torch.arange(n, device=index.device).repeat_interleave(columns))
            outputs = direction.generate(recipe, z.repeat(n, 1), repeated)
            blocks.append(displayable(outputs, tuple(source.shape[-2:])).view(n, columns, *source.shape[1:]))
    cells = torch.cat([source[:, None], *blocks], 1)
    return make_grid(cells.flatten(0, 1).cpu(), nrow=cells.shape[1], padding=2, pad_value=1.0)
