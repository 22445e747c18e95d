"""An exponential moving average of the generator's weights (`trainer.ema`: its decay; null: off), the
weights StackGAN++'s reference evaluates and saves (decay 0.999; BigGAN and StyleGAN do the same).
Training steps the generator itself; evaluation, sample grids, `msgan eval` and `msgan sample` use the
average, and the checkpoint holds it, so a resumed run continues the same average.

The networks averaged are the recipe's `averaged_networks` (what turns a latent and a condition into
outputs: "generator" for most models; DRIT's encoders and generators). Warm-up: the decay at step s
is min(decay, (1 + s) / (10 + s)), so that the average forgets the random initial weights within a
short run (with 0.999 from the first step, 13.5 % of a 2,000-step run's average would still be the
initial G: 0.999 ** 2000); the reference's 600 epochs make that moot. Buffers (BatchNorm's running
statistics) are copied from the generator, not averaged. The average moves after every training step,
also the steps in which only D trains: for a model whose G trains every n-th step (StarGAN's
`n_critic`, DRIT's `d_iter`), the decay per G update is decay ** n.
"""
from __future__ import annotations

import copy
import logging
from contextlib import contextmanager, nullcontext

import torch

from msgan_cli.errors import UserError
from msgan_cli.models import Recipe

log = logging.getLogger(__name__)


class WeightAverage:
    """The averaged copies of `recipe`'s `averaged_networks`, updated after each training step."""

    def __init__(self, recipe: Recipe, decay: float):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay < 1:
            raise UserError(f"trainer.ema (the decay of the generator's weight average) must be between 0 and 1, e.g. "
                            f"0.999, or null for none; got {decay}.")
        missing = [name for name in recipe.averaged_networks if not isinstance(getattr(recipe, name, None), torch.nn.Module)]
        if missing:
            raise UserError(f"trainer.ema averages the networks {', '.join(recipe.averaged_networks)}, but model "
                            f"{recipe.name} has no {', '.join(missing)}: set trainer.ema=null.")
        self.decay, self.recipe = float(decay), recipe
        self.average = {name: copy.deepcopy(getattr(recipe, name)).requires_grad_(False) for name in recipe.averaged_networks}

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the weights after training step `step` (0-based)."""
        weight = 1 - self.decay_at(step)
        for name, average in self.average.items():
            live = getattr(self.recipe, name)
            for kept, current in zip(average.parameters(), live.parameters()):
                kept.lerp_(current, weight)
            for kept, current in zip(average.buffers(), live.buffers()):
                kept.copy_(current)

    @contextmanager
    def swapped_in(self):
        """The recipe with the averaged networks in place of its own, for the duration."""
        own = {name: getattr(self.recipe, name) for name in self.average}
        for name, average in self.average.items():
            setattr(self.recipe, name, average)
        try:
            yield
        finally:
            for name, network in own.items():
                setattr(self.recipe, name, network)

    def state_dict(self) -> dict:
        return {name: average.state_dict() for name, average in self.average.items()}

    def load_state_dict(self, state: dict) -> None:
        """The checkpoint's average; a network it has none of (a run resumed with trainer.ema newly set)
        starts from the restored network's weights, not from the random ones it was built with."""
        for name, average in self.average.items():
            if name in state:
                average.load_state_dict(state[name])
            else:
                log.info("The checkpoint holds no average of %s: it starts from the restored weights", name)
                average.load_state_dict(getattr(self.recipe, name).state_dict())


def weight_average(recipe: Recipe, decay: float | None) -> WeightAverage | None:
    """The run's average, or None when `trainer.ema` is off."""
    return None if decay is None else WeightAverage(recipe, decay)


def evaluated_weights(average: WeightAverage | None):
    """The weights evaluation and sample grids use: the average when there is one (swapped into its
    recipe for the duration)."""
    return nullcontext() if average is None else average.swapped_in()


def load_averaged_weights(recipe: Recipe, state: dict) -> None:
    """A finished run's networks set to its average (`msgan eval`, `msgan sample`): what it was evaluated with."""
    for name, weights in state.items():
        getattr(recipe, name).load_state_dict(weights)
