"""The networks of StackGAN++ as MSGAN's StackGAN++-Mode-Seeking uses them (hanzhanggit/StackGAN-v2
`code/model.py`, `birds_3stages`; docs/methods.md#stackganpp), at base widths `ngf` (GF_DIM) and `ndf` (DF_DIM),
with `stages` branches from a first image of `base_size` (64 in the reference) doubling per stage.

- `ConditioningAugmentation` (CA_NET): fc from the text embedding to 4 x `ca_dim`, GLU, split into
  mu and logvar; the code c = mu + exp(logvar / 2) * eps in training and by default at test (the
  reference's), or mu itself where a row is flagged (MSGAN's "fixed text codes" evaluation).
- `TreeGenerator` (G_NET): the first branch (INIT_STAGE_G) maps [c, z] by fc, BN, GLU to ngf * 2^u
  channels at 4 x 4 and upsamples u = log2(base_size / 4) times (nearest x2, conv 3x3, BN, GLU;
  channels halve each time) to ngf channels at base_size (u = 4: the reference's 16 ngf at 4 x 4); each
  later branch (NEXT_STAGE_G) joins its input with c tiled (conv 3x3, BN, GLU), runs `residual_blocks`
  residual blocks (R_NUM, 2) and upsamples once, halving the channels; every branch has its image
  head (conv 3x3 to RGB, tanh). One image per stage.
- `StageDiscriminator` (D_NET64 / 128 / 256): the image encoded by stride-2 4x4 convs (ndf, 2 ndf,
  4 ndf, 8 ndf: `encode_image_by_16times`; no BN on the first, BN and LeakyReLU 0.2 after the others)
  down to 4 x 4, with more stride-2 blocks for larger inputs (16 ndf at 128, 32 ndf at 256) brought
  back to 8 ndf by 3x3 blocks, as the reference's D_NET128 / D_NET256; an input smaller than 64 px
  takes fewer stride-2 convs and one 3x3 block to 8 ndf. Two heads, 4x4 convs of stride 4 to one
  logit: conditional (after a 3x3 block on [image code, the CA mean tiled]) and unconditional (on
  the image code). The reference ends both in a sigmoid and uses BCELoss; here they give logits and
  the loss applies the sigmoid (BCE with logits), the same objective, stabler numerically.
Weights: the reference's `weights_init` (StackGAN-v2 trainer.py): conv and linear weights
orthogonal with gain 1, linear biases 0 (conv biases keep PyTorch's default), BatchNorm weights
N(1, 0.02) and biases 0.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class GLU(nn.Module):
    """The first half of the channels gated by the sigmoid of the second (the reference's GLU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        return x[:, :half] * torch.sigmoid(x[:, half:])


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)


def gated_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Block3x3_relu: conv 3x3 to twice the channels, BN, GLU."""
    return nn.Sequential(conv3x3(in_channels, 2 * out_channels), nn.BatchNorm2d(2 * out_channels), GLU())


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """upBlock: nearest-neighbour x2, then a gated 3x3 block."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *gated_block(in_channels, out_channels))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(*gated_block(channels, channels), conv3x3(channels, channels), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def tile(code: torch.Tensor, size: int) -> torch.Tensor:
    return code[:, :, None, None].expand(-1, -1, size, size)


class ConditioningAugmentation(nn.Module):
    def __init__(self, embedding_dim: int, ca_dim: int):
        super().__init__()
        self.ca_dim = ca_dim
        self.fc = nn.Linear(embedding_dim, 4 * ca_dim)
        self.gate = GLU()

    def encode(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the text code."""
        x = self.gate(self.fc(text))
        return x[:, :self.ca_dim], x[:, self.ca_dim:]

    def forward(self, text: torch.Tensor, fixed: torch.Tensor | None = None) -> torch.Tensor:
        """The code c for each row; `fixed` (n, 1): 1 where c is the mean itself (fixed text codes)."""
        mu, logvar = self.encode(text)
        noise = torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return mu + (noise if fixed is None else noise * (1 - fixed.to(mu.dtype)))


class FirstStage(nn.Module):
    """INIT_STAGE_G: [c, z] -> ngf channels at base_size."""

    def __init__(self, ngf: int, in_dim: int, base_size: int):
        super().__init__()
        ups = int(math.log2(base_size // 4))
        self.channels = ngf * 2 ** ups
        self.fc = nn.Sequential(nn.Linear(in_dim, 2 * self.channels * 16, bias=False),
                                nn.BatchNorm1d(2 * self.channels * 16), GLU())
        self.up = nn.Sequential(*[up_block(ngf * 2 ** (ups - i), ngf * 2 ** (ups - i - 1)) for i in range(ups)])

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(code).view(len(code), self.channels, 4, 4))


class NextStage(nn.Module):
    """NEXT_STAGE_G: features of the previous stage and c tiled -> half the channels at twice the size."""

    def __init__(self, ngf: int, ca_dim: int, residual_blocks: int):
        super().__init__()
        self.joint = gated_block(ngf + ca_dim, ngf)
        self.residual = nn.Sequential(*[ResidualBlock(ngf) for _ in range(residual_blocks)])
        self.up = up_block(ngf, ngf // 2)

    def forward(self, features: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        joined = torch.cat([tile(c, features.shape[-1]).to(features.dtype), features], 1)
        return self.up(self.residual(self.joint(joined)))


def image_head(channels: int) -> nn.Sequential:
    return nn.Sequential(conv3x3(channels, 3), nn.Tanh())


class TreeGenerator(nn.Module):
    def __init__(self, ngf: int, nz: int, embedding_dim: int, ca_dim: int, stages: int, base_size: int,
                 residual_blocks: int):
        super().__init__()
        if ngf // 2 ** (stages - 1) < 1:
            raise ValueError(f"ngf {ngf} halves {stages - 1} times: too narrow")
        self.ca = ConditioningAugmentation(embedding_dim, ca_dim)
        self.branches = nn.ModuleList([FirstStage(ngf, ca_dim + nz, base_size)]
                                      + [NextStage(ngf // 2 ** i, ca_dim, residual_blocks) for i in range(stages - 1)])
        self.heads = nn.ModuleList([image_head(ngf // 2 ** i) for i in range(stages)])

    def forward(self, z: torch.Tensor, text: torch.Tensor, fixed: torch.Tensor | None = None) -> list[torch.Tensor]:
        """One image per stage for latents z and text embeddings (the CA code drawn once for all stages;
        `fixed`: rows whose code is the CA mean)."""
        c = self.ca(text, fixed)
        features = self.branches[0](torch.cat([c, z.to(c.dtype)], 1))
        images = [self.heads[0](features)]
        for branch, head in zip(self.branches[1:], self.heads[1:]):
            features = branch(features, c)
            images.append(head(features))
        return images


def leaky_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    """Block3x3_leakRelu: conv 3x3, BN, LeakyReLU 0.2."""
    return [conv3x3(in_channels, out_channels), nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2)]


def down_block(in_channels: int, out_channels: int, norm: bool = True) -> list[nn.Module]:
    """A 4x4 stride-2 conv (BN unless it is the first), LeakyReLU 0.2."""
    return [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False),
            *([nn.BatchNorm2d(out_channels)] if norm else []), nn.LeakyReLU(0.2)]


class StageDiscriminator(nn.Module):
    def __init__(self, ndf: int, ca_dim: int, size: int):
        super().__init__()
        downs = int(math.log2(size // 4))   # stride-2 convs down to 4 x 4
        layers, channels = [], 3
        for i in range(downs):
            layers += down_block(channels, ndf * 2 ** i, norm=i > 0)
            channels = ndf * 2 ** i
        for i in range(downs - 4):                      # D_NET128 / 256: back to 8 ndf by 3x3 blocks
            layers += leaky_block(channels, channels // 2)
            channels //= 2
        if channels != 8 * ndf:                         # under 64 px: fewer convs, one 3x3 block to 8 ndf
            layers += leaky_block(channels, 8 * ndf)
        self.encoder = nn.Sequential(*layers)
        self.joint = nn.Sequential(*leaky_block(8 * ndf + ca_dim, 8 * ndf))
        self.conditional_head = nn.Conv2d(8 * ndf, 1, 4, 4)
        self.unconditional_head = nn.Conv2d(8 * ndf, 1, 4, 4)   # last: the head whose input DPM reads

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(conditional logits, unconditional logits), one per sample, for images x and CA means c."""
        code = self.encoder(x)
        joined = self.joint(torch.cat([tile(c, 4).to(code.dtype), code], 1))
        return self.conditional_head(joined).flatten(), self.unconditional_head(code).flatten()


def init_weights(module: nn.Module) -> None:
    """The reference's weights_init: conv and linear orthogonal, BN weight N(1, 0.02) and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.orthogonal_(m.weight)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
