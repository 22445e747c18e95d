"""What every dataset hands the training engine: splits held in memory, and a sharded, resumable sampler.

All datasets here fit in memory (the largest, Stacked Fashion-MNIST, is 60,000 base images plus an
index of triples), so they live on the training device and a batch is one gather: no DataLoader
workers, no host-to-device copy per step (DESIGN.md section 6).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import torch


class Split(ABC):
    """One split of a dataset. Images come out as float in [-1, 1], points as float coordinates."""

    labels: torch.Tensor | None

    @abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abstractmethod
    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Samples and labels (None if unlabelled) at `index`, on the split's device."""

    @abstractmethod
    def to(self, device: torch.device) -> "Split":
        """A copy held on `device`."""


class TensorSplit(Split):
    """Samples stored as one tensor; uint8 images are turned into [-1, 1] floats per batch."""

    def __init__(self, values: torch.Tensor, labels: torch.Tensor | None):
        if labels is not None and len(labels) != len(values):
            raise ValueError(f"{len(values)} samples but {len(labels)} labels")
        self.values, self.labels = values, labels

    def __len__(self) -> int:
        return len(self.values)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.values[index]
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1.0
        return x, None if self.labels is None else self.labels[index]

    def to(self, device: torch.device) -> "TensorSplit":
        labels = None if self.labels is None else self.labels.to(device)
        return TensorSplit(self.values.to(device), labels)


@dataclass
class Data:
    """A loaded dataset.

    `label_kind` says what the labels are: "class" (a condition a conditional model can take),
    "mode" (the mixture component or stacked-digit triple: for evaluation, not meant as a
    condition), or None (no labels at all).
    """

    name: str
    kind: Literal["image", "points"]
    train: Split
    test: Split | None
    num_classes: int
    label_kind: Literal["class", "mode"] | None
    shape: tuple[int, ...]  # of one sample: (C, H, W) or (2,)
    class_names: tuple[str, ...] = ()
    # What a metric needs to know about the true distribution (e.g. mixture centres and std).
    extras: dict[str, object] = field(default_factory=dict)

    def to(self, device: torch.device) -> "Data":
        test = None if self.test is None else self.test.to(device)
        return Data(self.name, self.kind, self.train.to(device), test, self.num_classes,
                    self.label_kind, self.shape, self.class_names, self.extras)


class EpochSampler:
    """Yields the indices of this rank's share of each global batch, epoch after epoch.

    Every rank draws the same permutation (seeded by `seed` and the epoch) and takes its own slice
    of each global batch, so N processes see exactly the samples one process would see with the same
    global batch. The state is two integers, saved in checkpoints, so a resumed run continues with
    the very batch it would have drawn.
    """

    def __init__(self, num_samples: int, global_batch: int, seed: int, rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} does not split over {world_size} processes")
        if num_samples < global_batch:
            raise ValueError(f"batch size {global_batch} is larger than the dataset ({num_samples} samples)")
        self.num_samples, self.global_batch, self.seed = num_samples, global_batch, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0
        self._order: torch.Tensor | None = None

    def _permutation(self) -> torch.Tensor:
        if self._order is None:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._order = torch.randperm(self.num_samples, generator=generator)
        return self._order

    def next(self) -> torch.Tensor:
        """Indices (on the CPU) of this rank's part of the next global batch; drops the last partial batch."""
        if self.position + self.global_batch > self.num_samples:
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        batch = self._permutation()[self.position:self.position + self.global_batch]
        self.position += self.global_batch
        per_rank = self.global_batch // self.world_size
        return batch[self.rank * per_rank:(self.rank + 1) * per_rank]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self._order = int(state["epoch"]), int(state["position"]), None


def resize_images(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 images (N, C, H, W) to size x size: bilinear, antialiased when shrinking."""
    if images.shape[-2:] == (size, size):
        return images
    pieces = []
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].float()
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                            antialias=size < images.shape[-1])
        pieces.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(pieces)


def random_split(num_samples: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test indices of a fixed, seeded split (for datasets that ship without one)."""
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    num_test = int(round(num_samples * test_fraction))
    return order[num_test:], order[:num_test]
