"""`ndb_jsd`: the number of statistically different bins and the Jensen-Shannon divergence
(Richardson & Weiss, NeurIPS 2018), the protocol of gans-n-gmms `utils/ndb.py`, which MSGAN used
(docs/methods.md#ndb-jsd).

1. Bins: K-means with K clusters on the real samples, optionally whitened `(x - mean) / (std + 1e-6)`
   (per dimension, population std). Above 1,000 dimensions only a random d // 6 of them are used for
   clustering and assignment, as in the reference (here with a seeded choice). Each bin's centre is
   the mean of its real members; bins are ordered by size.
2. Each generated sample goes to the nearest centre (L2 over the used dimensions).
3. Per bin, a two-tailed two-proportion z-test with the pooled proportion; NDB = the bins whose
   p-value is below alpha (0.05). JSD = the Jensen-Shannon divergence (natural log) of the two
   bin-proportion vectors.
For class-conditional models it is computed over all samples and per class (bins fitted on that class's
real samples), as MSGAN reports it per class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm
from sklearn.cluster import KMeans

from msgan_cli.core.registry import register_metric
from msgan_cli.metrics.context import EvalContext

WHITENING_EPS = 1e-6   # the reference's ndb_eps


@dataclass
class NDBBins:
    """K-means bins of a real sample set, ready to score generated sets against."""

    centres: np.ndarray       # (K, d), in whitened coordinates
    proportions: np.ndarray   # (K,) share of real samples per bin, largest first
    num_reference: int
    mean: np.ndarray | float
    std: np.ndarray | float
    dims: np.ndarray          # the dimensions used for clustering and assignment

    @classmethod
    def fit(cls, real: np.ndarray, num_bins: int = 100, whitening: bool = False, max_dims: int | None = None,
            seed: int = 0) -> "NDBBins":
        real = np.asarray(real, dtype=np.float64)
        n, d = real.shape
        if n < num_bins:
            raise ValueError(f"NDB needs at least as many real samples as bins ({n} < {num_bins})")
        mean, std = (real.mean(0), real.std(0) + WHITENING_EPS) if whitening else (0.0, 1.0)
        white = (real - mean) / std
        if max_dims is None and d > 1000:
            max_dims = d // 6
        rng = np.random.default_rng(seed)
        dims = np.sort(rng.choice(d, min(d, max_dims), replace=False)) if max_dims else np.arange(d)
        labels = KMeans(n_clusters=num_bins, max_iter=100, n_init=10, random_state=seed).fit(white[:, dims]).labels_
        counts = np.bincount(labels, minlength=num_bins)
        order = np.argsort(-counts, kind="stable")
        centres = np.stack([white[labels == k].mean(0) for k in order])
        return cls(centres, counts[order] / n, n, mean, std, dims)

    def assign(self, samples: np.ndarray) -> np.ndarray:
        white = (np.asarray(samples, dtype=np.float64) - self.mean) / self.std
        distances = torch.cdist(torch.from_numpy(white[:, self.dims]), torch.from_numpy(self.centres[:, self.dims]))
        return distances.argmin(1).numpy()

    def evaluate(self, samples: np.ndarray, significance: float = 0.05) -> dict[str, float]:
        counts = np.bincount(self.assign(samples), minlength=len(self.centres))
        proportions = counts / len(samples)
        different = two_proportion_z_test(self.proportions, self.num_reference, proportions, len(samples), significance)
        ndb = int(different.sum())
        return {"ndb": float(ndb), "ndb_ratio": ndb / len(self.centres),
                "jsd": jensen_shannon(self.proportions, proportions)}


def two_proportion_z_test(p1: np.ndarray, n1: int, p2: np.ndarray, n2: int, significance: float = 0.05) -> np.ndarray:
    """Per bin: does proportion p1 (of n1 samples) differ from p2 (of n2) at the given level?
    Pooled standard error, two-tailed; a bin empty in both sets does not differ."""
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / se
    p_values = 2.0 * norm.cdf(-np.abs(z))
    return np.nan_to_num(p_values, nan=1.0) < significance


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """JSD(p, q) = (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2, natural log, 0 log 0 = 0."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        positive = a > 0
        return float(np.sum(a[positive] * np.log(a[positive] / m[positive])))

    return (kl(p) + kl(q)) / 2


def ndb_jsd(real, fake, num_bins: int = 100, whitening: bool = False, significance: float = 0.05,
            max_dims: int | None = None, seed: int = 0) -> dict[str, float]:
    """NDB, NDB / K and JSD of `fake` against bins fitted on `real` (arrays or tensors; images are flattened)."""
    bins = NDBBins.fit(as_rows(real), num_bins, whitening, max_dims, seed)
    return bins.evaluate(as_rows(fake), significance)


def as_rows(samples) -> np.ndarray:
    """(n, d) float64 rows from an array or a tensor of any sample shape."""
    if torch.is_tensor(samples):
        return samples.detach().cpu().flatten(1).double().numpy()
    return np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)


def needs_data_samples(recipe, data) -> str | None:
    return None if data.kind in ("image", "points") else f"it needs image or point samples ({data.name} has neither)"


@register_metric("ndb_jsd", unsupported=needs_data_samples,
                 better={"ndb": "lower", "ndb_ratio": "lower", "jsd": "lower", "per_class_mean_ndb": "lower",
                         "per_class_mean_jsd": "lower"},
                 headline=("ndb", "jsd", "per_class_mean_ndb", "per_class_mean_jsd"), rank=20)
def ndb_jsd_metric(ctx: EvalContext) -> dict[str, float]:
    """Overall, and per class for a conditional model (the mean over classes, and per class); the real
    side is the training split."""
    options = ctx.options.ndb
    settings = dict(whitening=bool(options.whitening), significance=float(options.significance),
                    max_dims=options.max_dims, seed=ctx.seed)
    # The reference clusters all training data; a cap keeps K-means affordable on large sets.
    real_batch = ctx.real(int(options.max_real))
    real, real_labels = real_batch.samples, real_batch.labels
    labels = ctx.class_labels(ctx.num_samples)
    fake = ctx.sample(ctx.num_samples, ctx.conditions(ctx.num_samples))
    bins = min(int(options.bins), len(real))   # never more bins than real samples (a tiny dataset)
    results = {f"ndb_jsd/{k}": v for k, v in ndb_jsd(real, fake, bins, **settings).items()}
    ctx.protocol["ndb_jsd"] = {"bins": bins, **settings, "real": f"train split, {len(real)} samples",
                               "fake": f"{len(fake)} samples", "reference": "gans-n-gmms utils/ndb.py"}
    if labels is not None and options.per_class:
        per_class, skipped = {}, []
        for c in range(ctx.recipe.num_classes):
            real_c = real[real_labels == c]
            if len(real_c) < 2:   # a class with (almost) no real samples cannot be binned
                skipped.append(c)
                continue
            per_class[c] = ndb_jsd(real_c, fake[labels == c], min(int(options.per_class_bins), len(real_c)), **settings)
        for c, values in per_class.items():
            results |= {f"ndb_jsd/class{c}_ndb": values["ndb"], f"ndb_jsd/class{c}_jsd": values["jsd"]}
        for key in ("ndb", "jsd"):
            results[f"ndb_jsd/per_class_mean_{key}"] = float(np.mean([values[key] for values in per_class.values()]))
        ctx.protocol["ndb_jsd"] |= {"per_class_bins": int(options.per_class_bins), "classes_without_real_samples": skipped}
    return results
