"""The networks of DRIT as MSGAN's DRIT-Mode-Seeking uses them (HsinYingLee/DRIT `src/networks.py`,
identical in HelenMao/MSGAN; docs/methods.md#drit), at a base width `w` (the reference's 64) and any
resolution divisible by 4.

- `ContentEncoder`: per domain a 7x7 conv (w, LeakyReLU 0.01, no norm), two 3x3 stride-2 convs (2w, 4w;
  InstanceNorm, ReLU), 3 residual blocks; then one residual block shared by both domains and, in
  training, N(0, noise^2) noise added (the reference's GaussianNoiseLayer, noise 1). Content maps: 4w x H/4 x W/4.
- `AttributeEncoder`, per domain: the concat variant (`E_attr_concat`: a 4x4 stride-2 conv, then
  residual "BasicBlocks" with average pooling to 2w, 3w, 4w, LeakyReLU 0.2, global average pool, two
  linear heads giving mu and logvar of an nz-dimensional attribute) or the plain one (`E_attr`: 7x7
  and 4x4 stride-2 convs with ReLU, global pool, a 1x1 conv to z).
- `ConcatGenerator` (`G_concat`): one residual block shared by both domains' decoders, then per domain
  z tiled and concatenated before 3 residual blocks, before each of two stride-2 transposed convs
  (LayerNorm with a learned per-channel scale and shift, ReLU: the reference's ReLUINSConvTranspose2d) and before the last 1x1
  transposed conv and tanh. `MlpGenerator` (`G`, the non-concat variant): an MLP maps z to four
  4w-vectors that enter four residual blocks (`MisINSResBlock`: conv, IN, then 1x1 convs on
  [features, tiled vector]), then the same up path without z, nothing shared between domains.
- `MultiScaleDiscriminator` (`MultiScaleDis`): `scales` discriminators, each on the input average-
  pooled once more, each `layers` 4x4 stride-2 convs (w .. 8w, LeakyReLU 0.01) and a 1x1 conv to
  patch logits. No normalisation: the reference passes `norm` but a typo (`if 'norm' == 'Instance'`)
  means it never applies one, in the image and in the content discriminator alike; we follow the
  code as it runs. Fewer layers where a small input leaves no patch.
- `ContentDiscriminator` (`Dis_content`): the reference's three 7x7 stride-2 convs, a 4x4 and a 1x1 conv
  on its 54 x 54 content maps (216 px input) and any of at least 53 x 53; smaller maps take 4x4 stride-2
  convs down to a few pixels, a conv over what remains and the 1x1 conv instead.
Weights N(0, 0.02) for every conv, as the reference's `gaussian_weights_init`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def instance_norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    """A convolution after reflection padding (the reference pads by reflection throughout)."""
    return [nn.ReflectionPad2d(padding), nn.Conv2d(in_channels, out_channels, kernel, stride)]


def tiled(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return z[:, :, None, None].expand(-1, -1, *like.shape[-2:]).to(like.dtype)


class ResidualBlock(nn.Module):
    """INSResBlock: two 3x3 convs with InstanceNorm (ReLU between), added to the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(*conv(channels, channels, 3, 1, 1), instance_norm(channels), nn.ReLU(),
                                  *conv(channels, channels, 3, 1, 1), instance_norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ContentEncoder(nn.Module):
    def __init__(self, channels_a: int, channels_b: int, width: int, noise: float = 1.0):
        super().__init__()
        self.noise = noise

        def stem(channels: int) -> nn.Sequential:
            return nn.Sequential(*conv(channels, width, 7, 1, 3), nn.LeakyReLU(0.01),
                                 *conv(width, 2 * width, 3, 2, 1), instance_norm(2 * width), nn.ReLU(),
                                 *conv(2 * width, 4 * width, 3, 2, 1), instance_norm(4 * width), nn.ReLU(),
                                 *[ResidualBlock(4 * width) for _ in range(3)])

        self.domain_a, self.domain_b = stem(channels_a), stem(channels_b)
        self.shared = ResidualBlock(4 * width)

    def encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        content = self.shared((self.domain_a if domain == "A" else self.domain_b)(x))
        return content + self.noise * torch.randn_like(content) if self.training and self.noise else content


class BasicBlock(nn.Module):
    """E_attr_concat's residual block: two 3x3 convs and an average pool, beside a pooled 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.LeakyReLU(0.2), *conv(in_channels, in_channels, 3, 1, 1), nn.LeakyReLU(0.2),
                                  *conv(in_channels, out_channels, 3, 1, 1), nn.AvgPool2d(2))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class AttributeEncoder(nn.Module):
    """One domain's attribute encoder: (mu, logvar) for the concat variant, (z, None) for the plain one."""

    def __init__(self, channels: int, width: int, nz: int, concat: bool):
        super().__init__()
        self.concat = concat
        if concat:
            self.features = nn.Sequential(*conv(channels, width, 4, 2, 1), BasicBlock(width, 2 * width),
                                          BasicBlock(2 * width, 3 * width), BasicBlock(3 * width, 4 * width),
                                          nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.mu, self.logvar = nn.Linear(4 * width, nz), nn.Linear(4 * width, nz)
        else:
            self.features = nn.Sequential(*conv(channels, width, 7, 1, 3), nn.ReLU(),
                                          *conv(width, 2 * width, 4, 2, 1), nn.ReLU(),
                                          *conv(2 * width, 4 * width, 4, 2, 1), nn.ReLU(),
                                          *conv(4 * width, 4 * width, 4, 2, 1), nn.ReLU(),
                                          *conv(4 * width, 4 * width, 4, 2, 1), nn.ReLU(),
                                          nn.AdaptiveAvgPool2d(1), nn.Conv2d(4 * width, nz, 1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.features(x)
        return (self.mu(features), self.logvar(features)) if self.concat else (features, None)


class UpLayerNorm(nn.Module):
    """ReLUINSConvTranspose2d as the reference builds it: a stride-2 transposed conv, layer norm over
    (C, H, W) with a learned scale and shift per channel (the reference's LayerNorm(n_out), affine), ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 3, 2, 1, output_padding=1)
        self.weight = nn.Parameter(torch.ones(out_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        shape = x.shape[1:]
        return F.relu(F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved before the scale and shift existed were those of a scale of 1 and a shift of 0:
        # such a run still evaluates and samples as it trained (its optimiser state cannot resume).
        state_dict.setdefault(prefix + "weight", torch.ones_like(self.weight))
        state_dict.setdefault(prefix + "bias", torch.zeros_like(self.bias))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class ConcatDecoder(nn.Module):
    """One domain's half of G_concat, after the shared block: z concatenated before every stage."""

    def __init__(self, width: int, nz: int, channels: int):
        super().__init__()
        first = 4 * width + nz                  # 264 at the reference's width 64, nz 8
        second = (first + nz) // 2              # 136
        third = (second + nz) // 2              # 72
        self.blocks = nn.Sequential(*[ResidualBlock(first) for _ in range(3)])
        self.up1 = UpLayerNorm(first + nz, second)
        self.up2 = UpLayerNorm(second + nz, third)
        self.out = nn.ConvTranspose2d(third + nz, channels, 1)

    def forward(self, content: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = self.blocks(torch.cat([content, tiled(z, content)], 1))
        x = self.up1(torch.cat([x, tiled(z, x)], 1))
        x = self.up2(torch.cat([x, tiled(z, x)], 1))
        return torch.tanh(self.out(torch.cat([x, tiled(z, x)], 1)))


class FeatureTransformBlock(nn.Module):
    """MisINSResBlock: conv + IN, then 1x1 convs on [features, the tiled vector], twice, plus the input."""

    def __init__(self, channels: int, vector: int):
        super().__init__()
        self.conv1 = nn.Sequential(*conv(channels, channels, 3, 1, 1), instance_norm(channels))
        self.conv2 = nn.Sequential(*conv(channels, channels, 3, 1, 1), instance_norm(channels))
        mix = lambda: nn.Sequential(nn.Conv2d(channels + vector, channels + vector, 1), nn.ReLU(),  # noqa: E731
                                    nn.Conv2d(channels + vector, channels, 1), nn.ReLU())
        self.mix1, self.mix2 = mix(), mix()

    def forward(self, x: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        out = self.mix1(torch.cat([self.conv1(x), tiled(vector, x)], 1))
        return x + self.mix2(torch.cat([self.conv2(out), tiled(vector, out)], 1))


class MlpDecoder(nn.Module):
    """One domain's G of the non-concat variant: z -> an MLP -> four vectors for four feature-transform
    blocks on the content, then two up-sampling layers and a 1x1 transposed conv, tanh."""

    def __init__(self, width: int, nz: int, channels: int):
        super().__init__()
        c = 4 * width
        self.mlp = nn.Sequential(nn.Linear(nz, c), nn.ReLU(), nn.Linear(c, c), nn.ReLU(), nn.Linear(c, 4 * c))
        self.blocks = nn.ModuleList(FeatureTransformBlock(c, c) for _ in range(4))
        self.up = nn.Sequential(UpLayerNorm(c, c // 2), UpLayerNorm(c // 2, c // 4), nn.ConvTranspose2d(c // 4, channels, 1),
                                nn.Tanh())

    def forward(self, content: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = content
        for block, vector in zip(self.blocks, self.mlp(z.to(content.dtype)).chunk(4, 1)):
            x = block(x, vector)
        return self.up(x)


class Generators(nn.Module):
    """G_A and G_B: `generate(content, z, domain)` renders content in `domain` with attribute z."""

    def __init__(self, width: int, nz: int, channels_a: int, channels_b: int, concat: bool):
        super().__init__()
        self.concat = concat
        decoder = ConcatDecoder if concat else MlpDecoder
        self.shared = ResidualBlock(4 * width) if concat else nn.Identity()   # G_concat's dec_share
        self.domain_a, self.domain_b = decoder(width, nz, channels_a), decoder(width, nz, channels_b)

    def generate(self, content: torch.Tensor, z: torch.Tensor, domain: str) -> torch.Tensor:
        return (self.domain_a if domain == "A" else self.domain_b)(self.shared(content), z)


def discriminator_layers(resolution: int, layers: int) -> int:
    """Stride-2 layers that leave at least one patch on a `resolution` input (each halves it)."""
    return max(1, min(layers, int(math.log2(resolution))))


class MultiScaleDiscriminator(nn.Module):
    """Patch logits at every scale: a list of (N, 1, h, w), the input average-pooled between scales."""

    def __init__(self, channels: int, width: int, resolution: int, scales: int, layers: int):
        super().__init__()
        self.scales = nn.ModuleList()
        for scale in range(scales):
            count = discriminator_layers(resolution // 2 ** scale, layers)
            modules, c = [*conv(channels, width, 4, 2, 1), nn.LeakyReLU(0.01)], width
            for _ in range(count - 1):
                modules += [*conv(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.01)]
                c *= 2
            self.scales.append(nn.Sequential(*modules, nn.Conv2d(c, 1, 1)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        logits = []
        for index, network in enumerate(self.scales):
            if index:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            logits.append(network(x))
        return logits


class ContentDiscriminator(nn.Module):
    """Logits (per sample, per remaining position) of which domain a content map came from. On content maps
    of at least 53 x 53 (inputs of 212 px and more; the reference's 216 px gives 54) the reference's
    `Dis_content`: three 7x7 stride-2 convs (reflection padding 1), a 4x4 conv, a 1x1 conv to a logit,
    LeakyReLU 0.01 between; on smaller maps, where 7x7 convs leave nothing, 4x4 stride-2 convs down to 4 x 4,
    then a conv over what remains and the 1x1 conv."""

    REFERENCE_SIZE = 53   # the smallest map three 7x7 stride-2 convs with padding 1 leave at least 4 x 4 of

    def __init__(self, width: int, content_size: int):
        super().__init__()
        c, size, modules = 4 * width, content_size, []
        if content_size >= self.REFERENCE_SIZE:
            for _ in range(3):
                modules += [*conv(c, c, 7, 2, 1), nn.LeakyReLU(0.01)]
            last = 4
        else:
            while size > 4:
                modules += [*conv(c, c, 4, 2, 1), nn.LeakyReLU(0.01)]
                size //= 2
            last = size
        self.network = nn.Sequential(*modules, nn.Conv2d(c, c, last), nn.LeakyReLU(0.01), nn.Conv2d(c, 1, 1),
                                     nn.Flatten())

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        return self.network(content)


def init_gaussian(network: nn.Module) -> None:
    """N(0, 0.02) for the weights of every conv and transposed conv (`gaussian_weights_init`)."""
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
