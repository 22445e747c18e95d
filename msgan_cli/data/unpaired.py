"""Unpaired two-domain data (DRIT's setting; docs/methods.md#drit): a batch holds images of domain A as
`inputs` and images of domain B as `samples`, drawn independently: row i of one says nothing about
row i of the other. `Data.paired` is False for them, so a model that needs aligned pairs (Pix2Pix's
L1 to the ground truth) refuses them.

`UnpairedSplit` joins two single-domain splits. An epoch runs over the larger domain (the
reference's `max(|A|, |B|)`); in training the partner image of the other domain is chosen from the
draw number (the sample's augmentation seed), so A meets another B in every epoch, the same ones on a
resume; in evaluation row i of each domain is its own sample i (cycling over the smaller).
`reversed()` swaps the domains: the B -> A view of the same data.
"""
from __future__ import annotations

import torch

from msgan_cli.data.base import Batch, BatchSource, EpochSampler, InMemorySource, Split
from msgan_cli.data.streaming import FileSplit, StreamingSource


def partner_rows(index: torch.Tensor, augment: torch.Tensor | None, size: int) -> torch.Tensor:
    """Rows of the domain of `size` images that go with rows `index` of the epoch's domain."""
    if augment is None:
        return index % size
    return torch.remainder(augment.to(index.device), size)


class UnpairedSplit(Split):
    """Domain A's split (`first`, the inputs) and domain B's (`second`, the samples), unpaired."""

    def __init__(self, first: Split, second: Split):
        self.first, self.second = first, second
        self.labels = second.labels   # B's: the domain models translate A into

    @property
    def host_indexed(self) -> bool:
        return self.first.host_indexed or self.second.host_indexed

    def __len__(self) -> int:
        return max(len(self.first), len(self.second))

    def rows(self, index: torch.Tensor, augment: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows of A, rows of B) for `index`: the larger domain takes `index`, the other its partners."""
        if len(self.first) >= len(self.second):
            return index % len(self.first), partner_rows(index, augment, len(self.second))
        return partner_rows(index, augment, len(self.first)), index % len(self.second)

    def batch(self, index: torch.Tensor, augment: torch.Tensor | None = None) -> Batch:
        rows_a, rows_b = self.rows(index, augment)
        a = self.first.batch(rows_a, augment)
        b = self.second.batch(rows_b, None if augment is None else augment + 1)   # B's crop is not A's
        return Batch(b.samples, b.labels, inputs=a.samples)

    def sample(self, index: int, seed: int | None) -> Batch:
        """One row, decoded from files (what streaming DataLoader workers call): as `batch` does it."""
        rows_a, rows_b = self.rows(torch.tensor([index]), None if seed is None else torch.tensor([seed]))
        a = self.first.sample(int(rows_a), seed)
        b = self.second.sample(int(rows_b), None if seed is None else seed + 1)
        return Batch(b.samples, b.labels, inputs=a.samples)

    def source(self, sampler: EpochSampler, seed: int) -> BatchSource:
        streamed = isinstance(self.first, FileSplit) and not self.first.in_memory
        return StreamingSource(self, sampler, seed, self.first.workers) if streamed else InMemorySource(self, sampler, seed)

    def domain(self, which: str) -> Split:
        """One domain's split alone ("A" or "B"): its images as samples."""
        return {"A": self.first, "B": self.second}[which]

    def mode_targets(self, index: torch.Tensor) -> torch.Tensor | None:
        """The correct outputs for the A images of evaluation rows `index`, when the A domain knows them
        (the benchmark's)."""
        if not hasattr(self.first, "translation_targets"):
            return None
        return self.first.translation_targets(self.rows(index, None)[0])

    def reversed(self) -> "UnpairedSplit":
        return UnpairedSplit(self.second, self.first)

    def to(self, device: torch.device) -> "UnpairedSplit":
        return UnpairedSplit(self.first.to(device), self.second.to(device))
