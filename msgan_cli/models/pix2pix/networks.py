"""The networks of MSGAN's Pix2Pix-Mode-Seeking: BicycleGAN's U-Net with the latent added at every
level (`G_Unet_add_all`, `unet_256`) and the two-scale PatchGAN (`D_NLayersMulti`, `basic_256_multi`).
docs/methods.md#pix2pix; the reference's layer-by-layer layout was read from HelenMao/MSGAN and BicycleGAN.

Generator, `levels` = log2(resolution) stride-2 levels (8 at 256 px, as `unet_256`):
- level i (0 = outermost) has min(width * 2^i, 8 * width) channels: 64, 128, 256, 512, 512, ... at
  width 64;
- each level's down path takes the level's input with z tiled beside it (so z enters 8 times at
  256 px, never on the way up): LeakyReLU(0.2) (not at the outermost level), a 4x4 stride-2 conv,
  InstanceNorm (not at the outermost and innermost levels);
- its up path: ReLU, a 4x4 stride-2 transposed conv, InstanceNorm (tanh instead at the outermost),
  optional dropout at the 8 * width levels other than the innermost; a level returns its up output
  concatenated with its input (without z): the skip connection.
Discriminator: `layers` 4x4 stride-2 convs (width, 2 width, 4 width; LeakyReLU 0.2, InstanceNorm after
all but the first), a 4x4 stride-1 conv to 8 * width (at most), then a 4x4 stride-1 conv to one logit
per patch. The second scale sees the input average-pooled by 2 and has half the width. InstanceNorm
has no affine parameters and no running statistics, as in the reference.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def instance_norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def unet_levels(resolution: int) -> int:
    levels = math.log2(resolution)
    if resolution < 8 or levels != int(levels):
        raise ValueError(f"the U-Net needs a power-of-two resolution >= 8, got {resolution}")
    return int(levels)


class UNetLevel(nn.Module):
    """One level of the U-Net: down, the inner levels, up, and the skip connection."""

    def __init__(self, in_channels: int, out_channels: int, inner_channels: int, nz: int,
                 inner: "UNetLevel | None", outermost: bool = False, dropout: bool = False):
        super().__init__()
        innermost = inner is None
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
        down.append(nn.Conv2d(in_channels + nz, inner_channels, 4, 2, 1))
        if not (outermost or innermost):
            down.append(instance_norm(inner_channels))
        up_in = inner_channels if innermost else 2 * inner_channels   # the inner level's skip doubles it
        up: list[nn.Module] = [nn.ReLU(), nn.ConvTranspose2d(up_in, out_channels, 4, 2, 1)]
        up += [nn.Tanh()] if outermost else [instance_norm(out_channels)]
        if dropout:
            up.append(nn.Dropout(0.5))
        self.down, self.inner, self.up = nn.Sequential(*down), inner, nn.Sequential(*up)
        self.nz, self.outermost = nz, outermost

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        tiled = z[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        h = self.down(torch.cat([x, tiled.to(x.dtype)], 1) if self.nz else x)
        if self.inner is not None:
            h = self.inner(h, z)
        h = self.up(h)
        return h if self.outermost else torch.cat([h, x], 1)


class UNetGenerator(nn.Module):
    """G(x, z): the input image and the latent (N, nz), possibly nz = 0 (plain Pix2Pix)."""

    def __init__(self, in_channels: int, out_channels: int, nz: int, width: int, resolution: int,
                 dropout: bool = False):
        super().__init__()
        levels = unet_levels(resolution)
        channels = [min(width * 2 ** i, 8 * width) for i in range(levels)]
        level = None
        for i in reversed(range(1, levels)):   # from the innermost level outwards
            deep = channels[i - 1] == 8 * width and level is not None   # an 8 * width level, not the innermost
            level = UNetLevel(channels[i - 1], channels[i - 1], channels[i], nz, level, dropout=dropout and deep)
        self.net = UNetLevel(in_channels, out_channels, channels[0], nz, level, outermost=True)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(x, z)


def patch_layers(resolution: int, layers: int) -> int:
    """Stride-2 layers a PatchGAN can have on a `resolution` input and still give at least one patch
    (the two stride-1 4x4 convs each take one pixel): the reference's 3 from 24 px up, fewer below."""
    return max(1, min(layers, int(math.log2(resolution / 3))))


class PatchDiscriminator(nn.Module):
    """One scale of the PatchGAN: logits (N, 1, h, w), one per patch."""

    def __init__(self, in_channels: int, width: int, layers: int):
        super().__init__()
        modules: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        channels = width
        for i in range(1, layers + 1):   # layers - 1 more stride-2 convs, then the stride-1 one
            wider = width * min(2 ** i, 8)
            modules += [nn.Conv2d(channels, wider, 4, 2 if i < layers else 1, 1), instance_norm(wider), nn.LeakyReLU(0.2)]
            channels = wider
        self.features = nn.Sequential(*modules)
        self.head = nn.Conv2d(channels, 1, 4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def downsample(x: torch.Tensor) -> torch.Tensor:
    """What the second scale sees: a 3x3 average, stride 2 (the reference's AvgPool2d, padding not counted)."""
    return nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


def init_xavier(module: nn.Module, gain: float = 0.02) -> None:
    """The reference's init ('xavier', gain 0.02): every conv and transposed conv weight Xavier-normal,
    biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
