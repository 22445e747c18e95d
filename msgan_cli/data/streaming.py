"""Splits decoded from files one sample at a time, for datasets that do not fit in memory.

A `FileSplit` says how to produce one sample (`sample(index, seed)`: decode, resize, augment) as
uint8 tensors. Held in memory (the split decoded everything once at load) it serves batches like any
split. Streamed, training batches come from a torch DataLoader: worker processes decode and augment
off the training process, pinned memory on CUDA, the images converted to floats on the device.

What the in-memory sampler guarantees still holds: the DataLoader's batches are the `EpochSampler`'s
(this rank's share of each global batch, DDP-sharded), each sample augmented from its own seed, so
the pixels do not depend on the number of workers; and the state saved in a checkpoint is that of
the batches handed to the loop, not of those the workers read ahead, so a resume continues mid-epoch
with the very next batch.
"""
from __future__ import annotations

import copy
import os
from abc import abstractmethod

import torch
from torch.utils.data import DataLoader, Dataset

from msgan_cli.core.batch import Batch
from msgan_cli.data.base import BatchSource, EpochSampler, InMemorySource, Split, augmentation_seeds
from msgan_cli.errors import UserError


def resolve_workers(workers: int | str) -> int:
    """`auto`: one process per spare core, at most 8 (0 decodes in the training process)."""
    if workers == "auto":
        return max(0, min(8, (os.cpu_count() or 1) - 1))
    if not isinstance(workers, int) or workers < 0:
        raise UserError(f"dataset.workers must be auto or a number >= 0; got {workers!r}.")
    return workers


def resolve_in_memory(in_memory: bool | str, decoded_bytes: int, memory_limit_mb: int) -> bool:
    """`dataset.in_memory`: true, false, or auto (hold the decoded split when it fits in the limit)."""
    choice = {"auto": decoded_bytes <= memory_limit_mb * 2 ** 20, True: True, False: False}.get(in_memory)
    if choice is None:
        raise UserError(f"dataset.in_memory must be auto, true or false; got {in_memory!r}.")
    return choice


class FileSplit(Split):
    """A split whose samples are decoded from files (subclasses implement `sample`). Held in memory,
    `batch` gathers and crops sample by sample from host indices and seeds (`host_indexed`) out of
    the copy on the training device."""

    host_indexed = True

    def __init__(self, in_memory: bool, workers: int, device: torch.device | None = None):
        self.in_memory, self.workers = in_memory, workers
        self.device = device or torch.device("cpu")

    @abstractmethod
    def sample(self, index: int, seed: int | None) -> Batch:
        """Sample `index` as a one-row Batch of uint8 images on the CPU (or where the in-memory copy
        lives), augmented from `seed` (None: the evaluation view). An unreadable file is a UserError
        naming it."""

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        seeds = [None] * len(index) if augment is None else augment.tolist()
        samples = [self.sample(int(i), seed) for i, seed in zip(index.tolist(), seeds)]
        return Batch.join(samples).to(self.device).as_float()

    def source(self, sampler: EpochSampler, seed: int) -> BatchSource:
        if self.in_memory:
            return InMemorySource(self, sampler, seed)
        return StreamingSource(self, sampler, seed, self.workers)


class _Decode(Dataset):
    """The split as a map-style dataset of (index, seed) items, for DataLoader workers."""

    def __init__(self, split: FileSplit):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, item: tuple[int, int]) -> Batch | str:
        try:
            return self.split.sample(*item)
        except UserError as error:   # handed to the training process, which stops with this sentence
            return str(error)


def _collate(samples: list[Batch | str]) -> Batch | str:
    problems = [s for s in samples if isinstance(s, str)]
    return problems[0] if problems else Batch.join(samples)


class _Draws:
    """The batch sampler: (index, augmentation seed) of every sample of this rank's batches, from a
    copy of the sampler, endlessly."""

    def __init__(self, sampler: EpochSampler, seed: int):
        self.sampler, self.seed = copy.deepcopy(sampler), seed

    def __iter__(self):
        while True:
            index, draws = self.sampler.next_batch()
            yield list(zip(index.tolist(), augmentation_seeds(self.seed, draws).tolist()))


class StreamingSource(BatchSource):
    """Training batches decoded by DataLoader workers, `prefetch` batches ahead per worker. `split`: a
    FileSplit, or a split made of FileSplits that offers the same `sample(index, seed)` (UnpairedSplit)."""

    def __init__(self, split: FileSplit, sampler: EpochSampler, seed: int, workers: int, prefetch: int = 4):
        self.split, self.sampler, self.seed, self.workers, self.prefetch = split, sampler, seed, workers, prefetch
        self._batches = None

    def _start(self, device: torch.device):
        loader = DataLoader(_Decode(self.split), batch_sampler=_Draws(self.sampler, self.seed), collate_fn=_collate,
                            num_workers=self.workers, pin_memory=device.type == "cuda",
                            prefetch_factor=self.prefetch if self.workers else None)
        return iter(loader)

    def next(self, device: torch.device) -> Batch:
        if self._batches is None:
            self._batches = self._start(device)
        batch = next(self._batches)
        self.sampler.next_batch()   # the loop's own count of batches handed out (what a checkpoint saves)
        if isinstance(batch, str):
            raise UserError(batch)
        return batch.to(device, non_blocking=True).as_float()

    def state_dict(self) -> dict[str, int]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.load_state_dict(state)
        self._batches = None   # the workers restart from this state
