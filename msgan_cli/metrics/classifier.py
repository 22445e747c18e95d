"""A small classifier the project trains on a dataset's real training images, for metrics that need
to recognise what a generator drew (class accuracy now; features, stacked modes and the MODE score
build on it). Trained on first use, cached with its test accuracy, reused afterwards.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from msgan_cli.core.checkpoints import load_checkpoint, save_checkpoint
from msgan_cli.data import Data

log = logging.getLogger(__name__)

ARCHITECTURE_VERSION = 1   # bump when SmallClassifier or its training changes: invalidates caches


class SmallClassifier(nn.Module):
    """Three conv blocks (width, 2 x width, 4 x width channels) and a linear head; `features` is the
    pooled 4 x width representation."""

    def __init__(self, channels: int, num_classes: int, width: int = 16):
        super().__init__()
        block = lambda c_in, c_out: [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]  # noqa: E731
        self.body = nn.Sequential(*block(channels, width), nn.MaxPool2d(2), *block(width, 2 * width), nn.MaxPool2d(2),
                                  *block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _random_shift(x: torch.Tensor, generator: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Augmentation: translate the batch by up to `pixels` (background -1), so the classifier does not
    depend on exact centring, which generated digits do not always have."""
    padded = nn.functional.pad(x, [pixels] * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * pixels + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]


@torch.no_grad()
def accuracy(model: nn.Module, data_split, device: torch.device, chunk: int = 1000) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(data_split), chunk):
        batch = data_split.batch(torch.arange(start, min(start + chunk, len(data_split)), device=device))
        correct += int((model(batch.samples).argmax(1) == batch.labels).sum())
    return correct / len(data_split)


def train_classifier(data: Data, options: DictConfig, device: torch.device) -> tuple[SmallClassifier, float]:
    generator = torch.Generator().manual_seed(int(options.seed))
    torch_state = torch.get_rng_state()
    torch.manual_seed(int(options.seed))         # initial weights; the caller's RNG is restored below
    model = SmallClassifier(data.shape[0], data.num_classes, int(options.width)).to(device)
    torch.set_rng_state(torch_state)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(options.lr))
    model.train()
    for _ in range(int(options.steps)):
        index = torch.randint(len(data.train), (int(options.batch_size),), generator=generator).to(device)
        batch = data.train.batch(index)
        loss = nn.functional.cross_entropy(model(_random_shift(batch.samples, generator)), batch.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model, accuracy(model, data.test, device)


def data_fingerprint(data: Data, device: torch.device, images: int = 32) -> str:
    """What the classifier learns from, in a few bytes: the splits' sizes, the classes, and a few test
    images (evenly spaced, to 8 bits) with their labels. The dataset's config alone does not say when
    its images change: an embedded benchmark rendered differently by a newer version, or files replaced
    on disk, keep the same config, and a classifier trained on the old images would then score the new
    ones (its cached test accuracy with it) without a word."""
    index = torch.linspace(0, len(data.test) - 1, min(images, len(data.test)), device=device).round().long()
    batch = data.test.batch(index)
    pixels = ((batch.samples.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    digest = hashlib.sha1(json.dumps([len(data.train), len(data.test), data.num_classes]).encode())
    digest.update(pixels.cpu().numpy().tobytes())
    digest.update(batch.labels.cpu().numpy().tobytes())
    return digest.hexdigest()


def cache_path(data: Data, dataset_cfg: DictConfig, options: DictConfig, device: torch.device) -> Path:
    """One file per dataset configuration, data and training recipe."""
    key = json.dumps({"dataset": OmegaConf.to_container(dataset_cfg, resolve=True),
                      "data": data_fingerprint(data, device),
                      "train": {k: v for k, v in OmegaConf.to_container(options, resolve=True).items() if k != "cache_dir"},
                      "version": ARCHITECTURE_VERSION}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    root = Path(os.path.expanduser(str(options.cache_dir)))
    return root / "classifiers" / f"{data.name}-{digest}.pt"


def load_or_train_classifier(data: Data, dataset_cfg: DictConfig, options: DictConfig,
                             device: torch.device) -> tuple[SmallClassifier, float]:
    """The cached classifier for this dataset, trained first if there is none. Returns (model, test accuracy)."""
    path = cache_path(data, dataset_cfg, options, device)
    if path.exists():
        state = load_checkpoint(path, device)
        model = SmallClassifier(data.shape[0], data.num_classes, int(options.width)).to(device)
        model.load_state_dict(state["model"])
        model.eval()
        return model, float(state["test_accuracy"])
    log.info("Training the %s classifier for evaluation (once; cached in %s)", data.name, path)
    model, test_accuracy = train_classifier(data, options, device)
    save_checkpoint({"model": model.state_dict(), "test_accuracy": test_accuracy}, path)
    log.info("%s classifier test accuracy: %.4f", data.name, test_accuracy)
    model.eval()
    return model, test_accuracy


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """Predicted class of each image."""
    model.eval()
    return torch.cat([model(images[i:i + chunk]).argmax(1) for i in range(0, len(images), chunk)])
