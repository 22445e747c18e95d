"""The networks of StarGAN (Choi et al., CVPR 2018; yunjey/stargan `model.py`; docs/methods.md#stargan), at base
width `width` (the reference's conv_dim 64), with an optional latent for the diversity regularisers.

- `Generator`: the input image with the target attributes (and, when `nz` > 0, the latent z) tiled
  as extra channels; conv 7x7 (width), two stride-2 4x4 convs doubling the channels, `residual_blocks`
  residual blocks (conv 3x3, IN, ReLU, conv 3x3, IN, plus the input), two stride-2 4x4 transposed
  convs halving them, conv 7x7 to the image, tanh. Convs without bias, instance norm with affine
  weights, ReLU, zero padding (the reference notes that reflection padding breaks the tiled label).
  The reference builds its instance norms with running statistics but never switches the networks
  to eval mode, so each image is always normalised by its own statistics; here the norms keep no
  running statistics, which is that same behaviour in train and eval mode alike.
- `Discriminator` (PatchGAN): `layers` stride-2 4x4 convs with bias (width, doubling), LeakyReLU 0.01,
  no normalisation; two bias-free heads on the last map: `src`, a 3x3 conv to one logit per patch,
  and `cls`, a conv as large as the map to one logit per attribute. The reference's 6 layers at 128
  px leave a 2 x 2 map; `layers_for(size)` keeps that ratio at any size (4 at 32 px).
Initial weights: PyTorch's defaults, as the reference's.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def layers_for(size: int) -> int:
    """D's stride-2 convs for `size` px, leaving a 2 x 2 map as the reference's 6 at 128 px."""
    return int(math.log2(size)) - 1


def tiled(vectors: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(n, d) vectors repeated over the height and width of `like` (n, C, H, W): (n, d, H, W)."""
    return vectors.to(like.dtype)[:, :, None, None].expand(-1, -1, *like.shape[2:])


def norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), norm(channels), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, 1, 1, bias=False), norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    def __init__(self, channels: int, num_attributes: int, nz: int, width: int, residual_blocks: int):
        super().__init__()
        layers = [nn.Conv2d(channels + num_attributes + nz, width, 7, 1, 3, bias=False), norm(width), nn.ReLU(inplace=True)]
        current = width
        for _ in range(2):   # down-sampling
            layers += [nn.Conv2d(current, current * 2, 4, 2, 1, bias=False), norm(current * 2), nn.ReLU(inplace=True)]
            current *= 2
        layers += [ResidualBlock(current) for _ in range(residual_blocks)]
        for _ in range(2):   # up-sampling
            layers += [nn.ConvTranspose2d(current, current // 2, 4, 2, 1, bias=False), norm(current // 2),
                       nn.ReLU(inplace=True)]
            current //= 2
        layers += [nn.Conv2d(current, channels, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, attributes: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        extra = [tiled(attributes, x)] + ([tiled(z, x)] if z is not None and z.shape[1] else [])
        return self.main(torch.cat([x, *extra], 1))


class Discriminator(nn.Module):
    def __init__(self, channels: int, num_attributes: int, width: int, size: int, layers: int):
        super().__init__()
        body, current, maps = [], channels, size
        for i in range(layers):
            out = width * 2 ** i
            body += [nn.Conv2d(current, out, 4, 2, 1), nn.LeakyReLU(0.01)]
            current, maps = out, maps // 2
        self.main = nn.Sequential(*body)
        self.src = nn.Conv2d(current, 1, 3, 1, 1, bias=False)
        self.cls = nn.Conv2d(current, num_attributes, maps, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(patch logits (n, 1, h, w), attribute logits (n, A))."""
        hidden = self.main(x)
        return self.src(hidden), self.cls(hidden).flatten(1)
