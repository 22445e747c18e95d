"""Conditional DCGAN networks as in the MSGAN CIFAR-10 experiment (docs/methods.md#dcgan).

Generator: z (nz) and the one-hot label concatenated as a 1x1 map, a 4x4 transposed conv to
width * 2^(L-1) channels, then stride-2 transposed convs halving the channels up to the output
(BatchNorm + ReLU between, tanh at the end). Discriminator: the label broadcast to constant maps and
concatenated to the image, stride-2 convs doubling the channels (LeakyReLU 0.2, BatchNorm after all
but the first), a 4x4 conv to one logit. At 32x32 with width 128 this is the paper's code exactly.
The same network with `outputs = nz` and no condition serves as MDGAN's encoder.
"""
import math

import torch
from torch import nn


def _num_upsamplings(resolution: int) -> int:
    levels = math.log2(resolution) - 2
    if resolution < 8 or levels != int(levels):
        raise ValueError(f"DCGAN resolution must be a power of two >= 8, got {resolution}")
    return int(levels)


class DCGANGenerator(nn.Module):
    def __init__(self, nz: int, num_classes: int, channels: int, width: int, resolution: int):
        super().__init__()
        levels = _num_upsamplings(resolution)
        widths = [width * 2 ** i for i in reversed(range(levels))]   # e.g. [4w, 2w, w] at 32x32
        layers = [nn.ConvTranspose2d(nz + num_classes, widths[0], 4, 1, 0), nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        x = z if condition is None else torch.cat([z, condition], 1)
        return self.net(x[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, num_classes: int, channels: int, width: int, resolution: int, outputs: int = 1):
        super().__init__()
        levels = _num_upsamplings(resolution)
        widths = [width * 2 ** i for i in range(levels)]              # e.g. [w, 2w, 4w] at 32x32
        layers = [nn.Conv2d(channels + num_classes, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(widths[-1], outputs, 4, 1, 0)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) logits, or (N, outputs) when built with several outputs."""
        if condition is not None:
            maps = condition[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, maps], 1)
        out = self.head(self.features(x)).flatten(1)
        return out.flatten() if out.shape[1] == 1 else out


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) for every conv weight, as the MSGAN code does (BatchNorm keeps its defaults)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
