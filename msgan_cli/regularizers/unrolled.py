"""`reg=unrolled`: the unrolled GAN (Metz, Poole, Pfau, Sohl-Dickstein; ICLR 2017). docs/methods.md#unrolled-gan.

G's adversarial loss is computed against D advanced `steps` optimiser steps beyond its current
weights, and G's gradient flows through those steps (how D would react to G's move), which stops G
from hopping between the modes D currently favours. As in the paper's code, the unrolled steps are
D's own Adam updates (its learning rate, betas and current moment estimates), on this step's real
and fake batches; D itself keeps its ordinary update. `first_order: true` drops the gradient through
the unrolled steps (G's loss is still taken against the advanced D): cheaper, and labelled as such.
Adds no loss term: it changes what the model's G loss is computed against.
Cost: `steps` extra D forward and backward passes per step, with double backward unless first_order.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from msgan_cli.core.registry import register_regularizer
from msgan_cli.core.stats import report
from msgan_cli.errors import UserError
from msgan_cli.regularizers.base import Regularizer, RegularizerOptions, option


def adam_update(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avg: list[torch.Tensor],
                exp_avg_sq: list[torch.Tensor], step: int | torch.Tensor, lr: float, betas: tuple[float, float],
                eps: float, weight_decay: float = 0.0) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """One Adam step written out, differentiable in params and grads (torch.optim.Adam's update).

    1. L2 weight decay enters the gradient: `g + wd * p`.
    2. Moments: `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`.
    3. Bias-corrected step: `p - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)`; v is clamped
       at a tiny positive value inside the square root so its derivative stays finite where v = 0.
    Returns (params, exp_avg, exp_avg_sq) after the step.
    """
    b1, b2 = betas
    new_params, new_m, new_v = [], [], []
    for p, g, m, v in zip(params, grads, exp_avg, exp_avg_sq):
        g = g + weight_decay * p if weight_decay else g
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = (v.clamp_min(1e-30) / (1 - b2 ** step)).sqrt() + eps
        new_params.append(p - lr / (1 - b1 ** step) * m / denom)
        new_m.append(m)
        new_v.append(v)
    return new_params, new_m, new_v


@contextmanager
def swapped_tensors(module: nn.Module, values: dict[str, torch.Tensor]) -> Iterator[None]:
    """Run `module` with some parameters or buffers replaced by other tensors (parameters: functions
    of other parameters; buffers: copies, so BatchNorm statistics of a trial forward are discarded)."""
    saved = []
    for name, value in values.items():
        owner_name, _, leaf = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        slots = owner._parameters if leaf in owner._parameters else owner._buffers
        saved.append((slots, leaf, slots[leaf]))
        slots[leaf] = value   # bypasses nn.Module's Parameter-only check on purpose
    try:
        yield
    finally:
        for slots, leaf, original in saved:
            slots[leaf] = original


def unroll_discriminator(recipe, ctx, optimizer: torch.optim.Adam, steps: int,
                         first_order: bool) -> dict[str, torch.Tensor]:
    """D's parameters after `steps` Adam steps on this step's D objective, as tensors that depend on
    G's parameters through the fake batch (unless first_order). D's own parameters and buffers are
    left untouched."""
    discriminator = getattr(recipe, recipe.discriminator_names[0])
    named = [(name, p) for name, p in discriminator.named_parameters() if p.requires_grad]
    names = [name for name, _ in named]
    state = [optimizer.state.get(p, {}) for _, p in named]
    exp_avg = [s.get("exp_avg", torch.zeros_like(p)) for s, (_, p) in zip(state, named)]
    exp_avg_sq = [s.get("exp_avg_sq", torch.zeros_like(p)) for s, (_, p) in zip(state, named)]
    # Adam's step count as the optimiser keeps it (a tensor, on the device with the fused kernel): reading
    # it back as a number would make the host wait for the GPU.
    done = state[0].get("step", 0) if state else 0
    group = optimizer.param_groups[0]
    fake = ctx.generated()
    fake_images = fake.images.detach() if first_order else fake.images
    # Trial forwards update copies of the buffers (BatchNorm statistics, power iterations), not D's.
    buffers = {name: b.clone() for name, b in discriminator.named_buffers()}
    current = [p.detach().requires_grad_() for _, p in named]   # no gradient into D's own weights
    # G's gradient goes through these trial steps' gradients, a second differentiation that graphs of
    # torch.compile cannot take (aot_autograd): under hardware.compile the trials run eagerly.
    stance = "default" if first_order else "force_eager"
    for t in range(1, steps + 1):
        with swapped_tensors(discriminator, dict(zip(names, current)) | buffers), torch.compiler.set_stance(stance):
            # D's objective as its phase counts it: the adversarial term once per latent group in the
            # MSGAN code's pair layout (core/context.py), since the trial steps must be D's own steps.
            loss = ctx.loss_scale * recipe.discriminator_loss(ctx.discriminator_real, ctx.condition, fake_images,
                                                             fake.condition, aligned_rows=ctx.aligned_rows,
                                                             groups=fake.groups)
            grads = torch.autograd.grad(loss, current, create_graph=not first_order, allow_unused=True)
        grads = [torch.zeros_like(c) if g is None else g for c, g in zip(current, grads)]
        current, exp_avg, exp_avg_sq = adam_update(current, grads, exp_avg, exp_avg_sq, done + t, group["lr"],
                                                   group["betas"], group["eps"], group["weight_decay"])
        if first_order:
            current = [c.detach().requires_grad_() for c in current]
    report("Diag/unrolled/discriminator_loss", loss.detach())
    return dict(zip(names, current))


@dataclass
class UnrolledOptions(RegularizerOptions):
    steps: int = option(5, minimum=1)   # k: unrolled D steps (the paper's 2D experiments: 5)
    first_order: bool = False           # true: no gradient through the unrolled steps (an approximation)


@register_regularizer("unrolled")
class Unrolled(Regularizer):
    phase = "G"
    needs_capabilities = {"discriminator_loss": "the model's discriminator objective (to unroll D)"}
    needs_single_discriminator = True
    smoke_overrides = ("reg.unrolled.steps=2",)   # each unrolled step is a D forward and double backward
    variants = {"first_order": ("reg.unrolled.first_order=true",)}
    Options = UnrolledOptions

    def configure_optimizers(self, recipe, optimizers) -> None:
        optimizer = optimizers.get("discriminator")
        if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1 \
                or optimizer.defaults.get("amsgrad") or optimizer.defaults.get("maximize"):
            raise UserError(f"reg=unrolled replays D's optimiser, which it supports for plain Adam with one "
                            f"parameter group; model {recipe.name}'s D optimiser is not that.")
        self.optimizer = optimizer

    def model_terms_context(self, phase, ctx):
        if phase != self.phase:
            return nullcontext()
        unrolled = unroll_discriminator(ctx.recipe, ctx, self.optimizer, self.options.steps, self.options.first_order)
        return swapped_tensors(getattr(ctx.recipe, ctx.recipe.discriminator_names[0]), unrolled)
