"""Fully connected G and D for the 2D mixtures (docs/methods.md#mlp-gan), in both published setups.

PacGAN setup: G 4 x 400 ReLU + BatchNorm, D 3 maxout layers (200 units, 5 pieces).
Unrolled GAN setup: G and D 2 x 128 tanh.
"""
import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": lambda: nn.LeakyReLU(0.2)}


class Maxout(nn.Module):
    """A linear layer to units * pieces outputs, then the max over each unit's pieces."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, self.units, self.pieces).amax(-1)


def hidden_stack(in_features: int, hidden: int, layers: int, activation: str | None,
                 batchnorm: bool = False, maxout_pieces: int = 1) -> nn.Sequential:
    """`layers` hidden layers of `hidden` units: linear (+ BatchNorm) + `activation`, or maxout units
    (`maxout_pieces` > 1), which are their own non-linearity (`activation` unused)."""
    modules: list[nn.Module] = []
    for i in range(layers):
        width_in = in_features if i == 0 else hidden
        if maxout_pieces > 1:
            modules.append(Maxout(width_in, hidden, maxout_pieces))
            continue
        modules.append(nn.Linear(width_in, hidden))
        if batchnorm:
            modules.append(nn.BatchNorm1d(hidden))
        modules.append(ACTIVATIONS[activation]())
    return nn.Sequential(*modules)


class MLPGenerator(nn.Module):
    def __init__(self, nz: int, num_classes: int, out_features: int, hidden: int, layers: int,
                 activation: str, batchnorm: bool):
        super().__init__()
        self.body = hidden_stack(nz + num_classes, hidden, layers, activation, batchnorm)
        self.out = nn.Linear(hidden, out_features)

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        x = z if condition is None else torch.cat([z, condition], 1)
        return self.out(self.body(x))


class MLPDiscriminator(nn.Module):
    """D, or with `outputs = nz` and no condition MDGAN's encoder."""

    def __init__(self, in_features: int, num_classes: int, hidden: int, layers: int, activation: str | None,
                 maxout_pieces: int, outputs: int = 1):
        super().__init__()
        self.features = hidden_stack(in_features + num_classes, hidden, layers, activation,
                                     maxout_pieces=maxout_pieces)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) logits, or (N, outputs) when built with several outputs."""
        if condition is not None:
            x = torch.cat([x, condition], 1)
        out = self.head(self.features(x))
        return out.flatten() if out.shape[1] == 1 else out
