"""The adversarial loss flavours every recipe shares, selected by `model.gan_loss`.

- `bce`: the non-saturating GAN (Goodfellow et al. 2014): D minimises BCE(real, 1) + BCE(fake, 0) on
  logits, G minimises BCE(fake, 1). The DCGAN of MSGAN's CIFAR-10 code.
- `lsgan`: least squares (Mao et al. 2017): D minimises (D(x) - 1)^2 + D(G(z))^2, G (D(G(z)) - 1)^2.
  Pix2Pix / BicycleGAN / DRIT as MSGAN used them.
- `hinge`: D minimises relu(1 - D(x)) + relu(1 + D(G(z))), G -D(G(z)) (SN-GAN, SR-GAN).
- `wgan-gp`: WGAN with gradient penalty (Gulrajani et al. 2017): D minimises D(G(z)) - D(x) +
  weight * (||grad D(x_hat)||_2 - 1)^2 on random interpolates x_hat, G -D(G(z)). StarGAN.
Each term is a mean over its logits (PatchGAN maps included). A recipe with several discriminators
(Pix2Pix's two scales) passes a list of logits, one entry per discriminator, and the terms are summed
over them, as BicycleGAN's GANLoss sums its list of predictions.
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
from torch.nn.functional import relu, softplus

FLAVOURS = ("bce", "lsgan", "hinge", "wgan-gp")
Logits = Union[torch.Tensor, Sequence[torch.Tensor]]


def _each(logits: Logits) -> list[torch.Tensor]:
    return [logits] if isinstance(logits, torch.Tensor) else list(logits)


class GANLoss:
    """One flavour's D and G objectives; `penalty` adds WGAN-GP's gradient penalty (0 otherwise)."""

    def __init__(self, flavour: str, gradient_penalty: float = 10.0):
        if flavour not in FLAVOURS:
            raise ValueError(f"gan loss must be one of {FLAVOURS}, got {flavour!r}")
        self.flavour, self.gradient_penalty = flavour, gradient_penalty

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        """D's objective from its logits on real and on fake samples (summed over discriminators)."""
        return sum(self._discriminator(r.float(), f.float()) for r, f in zip(_each(real), _each(fake), strict=True))

    def _discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.as_real(real) + self.as_fake(fake)

    def as_real(self, logits: torch.Tensor) -> torch.Tensor:
        """D's term for logits it should call real, alone (StackGAN++ weighs its real, wrong-pair and
        fake terms one by one)."""
        logits = logits.float()
        if self.flavour == "bce":
            return softplus(-logits).mean()                          # BCE(real, 1)
        if self.flavour == "lsgan":
            return (logits - 1).pow(2).mean()
        if self.flavour == "hinge":
            return relu(1 - logits).mean()
        return -logits.mean()                                        # wgan-gp (its penalty: `penalty`)

    def as_fake(self, logits: torch.Tensor) -> torch.Tensor:
        """D's term for logits it should call fake, alone."""
        logits = logits.float()
        if self.flavour == "bce":
            return softplus(logits).mean()                           # BCE(fake, 0)
        if self.flavour == "lsgan":
            return logits.pow(2).mean()
        if self.flavour == "hinge":
            return relu(1 + logits).mean()
        return logits.mean()

    def generator(self, fake: Logits) -> torch.Tensor:
        """G's adversarial objective from D's logits on its samples (summed over discriminators)."""
        return sum(self._generator(f.float()) for f in _each(fake))

    def _generator(self, fake: torch.Tensor) -> torch.Tensor:
        if self.flavour == "bce":
            return softplus(-fake).mean()                            # non-saturating: BCE(fake, 1)
        if self.flavour == "lsgan":
            return (fake - 1).pow(2).mean()
        return -fake.mean()                                          # hinge and wgan-gp

    def penalty(self, critic: Callable[[torch.Tensor], Logits], real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """WGAN-GP's `weight * E[(||grad critic(x_hat)||_2 - 1)^2]`, x_hat = a x_real + (1 - a) x_fake with
        a ~ U(0, 1) per sample; rows of `real` and `fake` must share their conditions (the critic
        closes over them). None for the other flavours."""
        if self.flavour != "wgan-gp" or self.gradient_penalty == 0:
            return None
        mixing = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
        interpolates = (mixing * real.detach() + (1 - mixing) * fake.detach()).requires_grad_(True)
        penalty = 0.0
        # The penalty is differentiated twice, which graphs of torch.compile cannot be (aot_autograd):
        # under hardware.compile the critic runs eagerly here, and compiled everywhere else.
        with torch.compiler.set_stance("force_eager"):
            for logits in _each(critic(interpolates)):   # one penalty per discriminator
                gradients, = torch.autograd.grad(logits.float().sum(), interpolates, create_graph=True)
                penalty = penalty + (gradients.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
        return self.gradient_penalty * penalty
