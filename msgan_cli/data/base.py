"""What every dataset hands the training engine: splits, batches, and a sharded, resumable sampler.

Two kinds of split (docs/methods.md#data-formats lists the formats):
- held in memory (`TensorSplit`, and every dataset that fits: the digits, Fashion-MNIST, the 2D
  mixtures, the translation benchmark): on the training device, a batch is one gather, no workers,
  no host-to-device copy per step (docs/performance.md#host-sync);
- decoded from files sample by sample (`data/streaming.py`): image folders too large to hold, read
  by DataLoader worker processes; `dataset.in_memory: auto` decides by size.
Both draw the same indices from `EpochSampler` and the same per-sample augmentation seeds, so a run
is the same whichever path it takes, and a resumed run continues with the batch it would have drawn.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from msgan_cli.core.batch import Batch
from msgan_cli.data.files import Skipped

__all__ = ["Batch", "BatchSource", "Data", "EpochSampler", "InMemorySource", "Split", "TensorSplit"]


class Split(ABC):
    """One split of a dataset. Batches hold float images in [-1, 1] or float point coordinates."""

    labels: torch.Tensor | None
    # True: `batch` reads its index and seeds as Python numbers (per-sample work, as the files' splits
    # do), so the training source hands them over on the host: a copy to the GPU and back would make
    # the host wait for the GPU at every step.
    host_indexed: bool = False

    @abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abstractmethod
    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        """The samples at `index`, on the split's device. `augment`: one seed per sample for the
        dataset's random augmentation (training); None: none (evaluation). Splits without
        augmentation ignore it."""

    @abstractmethod
    def to(self, device: torch.device) -> "Split":
        """A copy whose batches are on `device`."""

    def mode_targets(self, index: torch.Tensor) -> torch.Tensor | None:
        """For benchmarks whose modes are known by construction: the K correct outputs of each sample
        at `index`, shape (n, K, *sample shape), in the range of the samples. None for real data."""
        return None

    def source(self, sampler: "EpochSampler", seed: int) -> "BatchSource":
        """Where the training loop takes its batches from: by default straight from this split."""
        return InMemorySource(self, sampler, seed)


class TensorSplit(Split):
    """Samples stored as one tensor; uint8 images are turned into [-1, 1] floats per batch."""

    def __init__(self, values: torch.Tensor, labels: torch.Tensor | None):
        if labels is not None and len(labels) != len(values):
            raise ValueError(f"{len(values)} samples but {len(labels)} labels")
        self.values, self.labels = values, labels

    def __len__(self) -> int:
        return len(self.values)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        return Batch(self.values[index], None if self.labels is None else self.labels[index]).as_float()

    def to(self, device: torch.device) -> "TensorSplit":
        labels = None if self.labels is None else self.labels.to(device)
        return TensorSplit(self.values.to(device), labels)


@dataclass
class Data:
    """A loaded dataset.

    `label_kind` says what the labels are: "class" (a condition a class-conditional model can take,
    and what the evaluation classifier learns), "mode" (the mixture component or stacked-digit
    triple: for evaluation, not meant as a condition), or None (no labels at all).
    `inputs` says what each sample was made from, for translation models: "image" for paired data
    (each target image comes with its input image, `input_shape`), None otherwise. `paired` is False
    for two unpaired domains (`data/unpaired.py`): the inputs are then images of domain A and the
    samples images of domain B, drawn independently; `input_class_names` are then A's classes (where
    the domains have labels), and `reversed()` is the same data seen from B (B's images as inputs).
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
    inputs: Literal["image"] | None = None
    input_shape: tuple[int, ...] | None = None
    paired: bool = True
    input_class_names: tuple[str, ...] = ()
    # A view cut from other data (`attributes.edited_view`: one target attribute value's real images)
    # points to that data here: the evaluation classifier learns the whole data, not the view.
    whole: "Data | None" = None
    # What the loader's scan left out of the dataset's folders (the run's start line and run_info.json say it).
    skipped: Skipped = field(default_factory=Skipped)

    def to(self, device: torch.device) -> "Data":
        test = None if self.test is None else self.test.to(device)
        return replace(self, train=self.train.to(device), test=test)

    def reversed(self) -> "Data":
        """Unpaired data seen from the other domain: B's images are the inputs, A's the samples (what a
        model translating B -> A is evaluated on); its name says so (`<name>-BtoA`)."""
        if self.paired:
            raise ValueError(f"dataset {self.name} is paired: only two unpaired domains can swap")
        test = None if self.test is None else self.test.reversed()
        return replace(self, name=f"{self.name}-BtoA", train=self.train.reversed(), test=test,
                       num_classes=len(self.input_class_names), class_names=self.input_class_names,
                       input_class_names=self.class_names, shape=self.input_shape, input_shape=self.shape)

    def resized(self, size: int) -> "Data":
        """The same data with its images (samples, known modes) at size x size (`resize_floats`): what a
        multi-stage model's lower stages are measured against; its name says so (`<name>-<size>px`)."""
        if self.kind != "image":
            raise ValueError(f"dataset {self.name} holds points: only images resize")
        if self.shape[-1] == size:
            return self
        test = None if self.test is None else ResizedSplit(self.test, size)
        return replace(self, name=f"{self.name}-{size}px", train=ResizedSplit(self.train, size), test=test,
                       shape=(*self.shape[:-2], size, size))

    @property
    def evaluation_split(self) -> Split:
        """The held-out split when there is one (evaluation inputs come from it), else the training split."""
        return self.test if self.test is not None and len(self.test) else self.train


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

    @property
    def steps_per_epoch(self) -> int:
        """Full global batches in one pass over the data (the last partial batch is dropped)."""
        return self.num_samples // self.global_batch

    def next(self) -> torch.Tensor:
        """Indices (on the CPU) of this rank's part of the next global batch; drops the last partial batch."""
        return self.next_batch()[0]

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices, draws) of this rank's part of the next global batch. A draw number counts the
        samples drawn since the run began; augmentation seeds come from it (`augmentation_seeds`), so a
        sample is augmented the same way however many workers decode it and after a resume."""
        if self.position + self.global_batch > self.num_samples:
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        start = self.position
        batch = self._permutation()[start:start + self.global_batch]
        self.position += self.global_batch
        per_rank = self.global_batch // self.world_size
        mine = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        draws = self.epoch * self.num_samples + start + torch.arange(self.global_batch)
        return batch[mine], draws[mine]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self._order = int(state["epoch"]), int(state["position"]), None


def augmentation_seeds(seed: int, draws: torch.Tensor) -> torch.Tensor:
    """One seed per drawn sample, from the run's seed and the draw number (int64, no collisions below
    2^31 draws)."""
    return (seed + 1) * 2_147_483_647 + draws


def seeded_choice(seeds: torch.Tensor, n: int, salt: int = 0) -> torch.Tensor:
    """One index in 0..n-1 per seed (int64), well mixed (a SplitMix64 round), so that choices made from
    consecutive augmentation seeds, or from the same seed with another `salt`, are unrelated; the same
    seed always gives the same choice (a resumed run draws what it would have drawn)."""
    golden = wrap_int64(0x9E3779B97F4A7C15 * (salt + 1))   # a Python number: no copy to the seeds' device
    x = seeds.to(torch.int64) + golden
    x = (x ^ ((x >> 30) & 0x3FFFFFFFF)) * -4658895280553007687      # 0xBF58476D1CE4E5B9
    x = (x ^ ((x >> 27) & 0x1FFFFFFFFF)) * -7723592293110705685     # 0x94D049BB133111EB
    x = x ^ ((x >> 31) & 0x1FFFFFFFF)
    return torch.remainder(x, n)


def wrap_int64(value: int) -> int:
    """`value` modulo 2^64 as a signed int64, as an int64 product on the device would wrap."""
    return (value + 2 ** 63) % 2 ** 64 - 2 ** 63


class BatchSource(ABC):
    """What the training loop draws its batches from; its state (the sampler's) travels in checkpoints."""

    @abstractmethod
    def next(self, device: torch.device) -> Batch:
        """The next batch of this rank, on `device`, images as floats."""

    @abstractmethod
    def state_dict(self) -> dict[str, int]:
        """The state of the batches handed out so far (not of any read ahead)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after the batch the state was taken at."""


class InMemorySource(BatchSource):
    """Batches gathered from a split held on the device."""

    def __init__(self, split: Split, sampler: EpochSampler, seed: int):
        self.split, self.sampler, self.seed = split, sampler, seed

    def next(self, device: torch.device) -> Batch:
        index, draws = self.sampler.next_batch()
        seeds = augmentation_seeds(self.seed, draws)
        if self.split.host_indexed:
            return self.split.batch(index, seeds)
        # Asynchronous copies: a blocking one would make the host wait for the GPU at every step.
        return self.split.batch(index.to(device, non_blocking=True), seeds.to(device, non_blocking=True))

    def state_dict(self) -> dict[str, int]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.load_state_dict(state)


def resize_floats(images: torch.Tensor, size: int) -> torch.Tensor:
    """Float images (n, C, H, W) at size x size: bilinear, antialiased when shrinking. The one resize of
    a multi-stage model's real images to each stage's size, in training and in evaluation alike."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                           antialias=size < images.shape[-1])


class ResizedSplit(Split):
    """A split of images seen at another size (`Data.resized`): its samples and known modes resized;
    labels, inputs and conditions as they are."""

    def __init__(self, split: Split, size: int):
        self.split, self.size, self.labels = split, size, split.labels

    def __len__(self) -> int:
        return len(self.split)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        batch = self.split.batch(index, augment)
        return Batch(resize_floats(batch.samples, self.size), batch.labels, batch.inputs)

    def mode_targets(self, index: torch.Tensor) -> torch.Tensor | None:
        targets = self.split.mode_targets(index)
        if targets is None:
            return None
        return resize_floats(targets.flatten(0, 1), self.size).view(*targets.shape[:-2], self.size, self.size)

    def to(self, device: torch.device) -> "ResizedSplit":
        return ResizedSplit(self.split.to(device), self.size)


def resize_images(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 images (N, C, H, W) to size x size: bilinear, antialiased when shrinking."""
    if images.shape[-2:] == (size, size):
        return images
    pieces = []
    for start in range(0, len(images), chunk):
        x = resize_floats(images[start:start + chunk].float(), size)
        pieces.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(pieces)


def random_split(num_samples: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test indices of a fixed, seeded split (for datasets that ship without one)."""
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    num_test = int(round(num_samples * test_fraction))
    return order[num_test:], order[:num_test]
