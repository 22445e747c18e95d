"""`fid`, `kid`, `is`: torchmetrics' implementations on features from a configurable extractor
(docs/methods.md#fid-kid-is), so they work offline.

`eval.extractor.name`:
- `inception`: torchmetrics' Inception-v3 (torch-fidelity's FID weights), from `eval.extractor.weights`
  (a local file) or torch's hub cache; these machines cannot download it, and a missing file says so.
- `classifier`: the project's classifier trained on the dataset (its pooled features for FID/KID, its
  logits for IS). Numbers on this scale are comparable between runs of this project only.
- `auto`: inception when its weights are present, else classifier.
The extractor's name is part of every result key (`fid/classifier`, `fid/inception`), so numbers from
different extractors never share a column. Features are computed once per evaluation and fed to
torchmetrics through an identity extractor; the real side is the training split. Under DDP every
rank already holds all samples (see EvalContext.generate), so torchmetrics' own cross-rank sync is off.
"""
from __future__ import annotations

import hashlib
import warnings
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from msgan_cli.core.registry import register_metric
from msgan_cli.errors import UserError
from msgan_cli.metrics.context import EvalContext

INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"   # torch-fidelity's FID Inception file


class Precomputed(nn.Module):
    """An identity 'extractor', so torchmetrics consumes features computed once elsewhere."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two feature sets (n, d): `|mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`."""
    metric = FrechetInceptionDistance(feature=Precomputed(real.shape[1]), sync_on_compute=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


@contextmanager
def features_already_in_memory():
    """KID and IS warn, when built, that they buffer every feature; ours are precomputed and in memory
    already, so the warning would tell the user nothing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")
        yield


def kid_subset_size(requested: int, samples: int) -> int:
    """The subset size KID uses: the requested one, capped at half the samples. A subset as large as
    the sample set is the whole set every time, and the std over subsets would be a meaningless 0."""
    return max(2, min(requested, samples // 2))


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, subset_size: int = 1000,
                              subsets: int = 100, seed: int = 0) -> tuple[float, float]:
    """KID (unbiased MMD^2, cubic polynomial kernel) over random subsets: (mean, std); the subset
    size is `kid_subset_size(subset_size, samples)`, the subsets drawn from `seed` alone (torchmetrics
    draws them from the global RNG: whatever ran before would change them)."""
    size = kid_subset_size(subset_size, min(len(real), len(fake)))
    with features_already_in_memory():
        metric = KernelInceptionDistance(feature=Precomputed(real.shape[1]), subset_size=size, subsets=subsets,
                                         sync_on_compute=False)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))) per split of the samples: (mean, std)."""
    with features_already_in_memory():
        metric = InceptionScore(feature=Precomputed(logits.shape[1]), splits=splits, sync_on_compute=False)
    metric.update(logits)
    mean, std = metric.compute()
    return float(mean), float(std)


def inception_weights(options) -> Path | None:
    """The local Inception weights file, or None when there is none."""
    if options.weights:
        return Path(str(options.weights)).expanduser()
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS
    return cached if cached.exists() else None


def resolve_extractor(options) -> str:
    """`classifier` or `inception`, with a message when inception cannot be used."""
    name = str(options.name)
    if name == "auto":
        return "inception" if inception_weights(options) is not None else "classifier"
    if name == "classifier":
        return name
    if name != "inception":
        raise UserError(f"eval.extractor.name must be auto, inception or classifier; got '{name}'.")
    weights = inception_weights(options)
    if weights is None or not weights.is_file():
        raise UserError(
            f"eval.extractor.name=inception needs the FID Inception weights ({INCEPTION_WEIGHTS}), which cannot be "
            f"downloaded here: set eval.extractor.weights=PATH to a local copy (or put it in "
            f"{Path(torch.hub.get_dir()) / 'checkpoints'}), or use eval.extractor.name=classifier.")
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        raise UserError("eval.extractor.name=inception needs torch-fidelity: pip install torch-fidelity "
                        "(or use eval.extractor.name=classifier).") from None
    return name


def load_inception_weights(path: Path) -> dict[str, torch.Tensor]:
    """The Inception file's tensors, read with `weights_only=True`: a file whose unpickling would run code
    is refused here. torch-fidelity reads the file with `weights_only=False`, so it never gets the file,
    only these tensors (InceptionExtractor). A file under the standard name must be the standard file:
    the name carries the first 8 hex digits of its SHA-256, as torch hub names its files."""
    if path.name == INCEPTION_WEIGHTS:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        expected = INCEPTION_WEIGHTS.rsplit("-", 1)[1].removesuffix(".pth")
        if not digest.startswith(expected):
            raise UserError(f"{path} is named as torch-fidelity's FID Inception weights, but its SHA-256 starts "
                            f"{digest[:8]}, not {expected}: a damaged or different file. Fetch the file again, or "
                            f"give another name to weights that are not the standard ones.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:   # pickled code, or not a state dict at all
        raise UserError(f"{path} cannot be read as Inception weights with weights_only=True ({type(error).__name__}): "
                        f"msgan loads no file that holds anything but tensors. Use torch-fidelity's "
                        f"{INCEPTION_WEIGHTS}.") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise UserError(f"{path} holds no state dict of tensors: it is not Inception weights.")
    return state


class InceptionExtractor(nn.Module):
    """torch-fidelity's FID Inception on images in [-1, 1]: (2048 pool features, 1008 IS logits)."""

    def __init__(self, weights: Path, antialias: bool):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3
        state = load_inception_weights(weights)
        # torch-fidelity calls torch.load(path, weights_only=False) on the path it is given: it is handed the
        # tensors already read safely instead, so no unpickling of the user's file happens in there.
        with mock.patch.object(torch, "load", lambda *args, **kwargs: state):
            self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                          feature_extractor_weights_path=str(weights), antialias=antialias)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        features = self.net(((images * 0.5 + 0.5).clamp(0, 1) * 255).to(torch.uint8)).double()
        # torch-fidelity's 'logits_unbiased' (what IS reads) are the pool features times fc's weight, no
        # bias: derived here rather than by a second pass through the network.
        return features, features.mm(self.net.fc.weight.T.double())


class ClassifierExtractor(nn.Module):
    """The project's classifier: (pooled features, logits)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.classifier.features(images)
        return features.double(), self.classifier.head(features).double()


def evaluation_images(ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, fake) images: the real ones a seeded subset of the training split."""
    return ctx.real(ctx.num_samples).samples, ctx.sample(ctx.num_samples, ctx.conditions(ctx.num_samples))


def extracted(ctx: EvalContext) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"features": (real, fake), "logits": (real, fake)} from one pass of the configured extractor over
    one draw of images per evaluation, shared by fid, kid and is."""
    if "fidelity/extracted" not in ctx.cache:
        if resolve_extractor(ctx.options.extractor) == "classifier":
            network = ClassifierExtractor(ctx.classifier()[0])
        else:   # built once (Inception loads its weights)
            network = InceptionExtractor(inception_weights(ctx.options.extractor),
                                         bool(ctx.options.extractor.antialias)).to(ctx.device)
        outputs = []
        with torch.no_grad():
            for images in evaluation_images(ctx):
                chunks = [network(images[i:i + 250]) for i in range(0, len(images), 250)]
                outputs.append([torch.cat([chunk[k] for chunk in chunks]).cpu() for k in (0, 1)])
        (real_features, real_logits), (fake_features, fake_logits) = outputs
        ctx.cache["fidelity/extracted"] = {"features": (real_features, fake_features), "logits": (real_logits, fake_logits)}
    return ctx.cache["fidelity/extracted"]


def protocol(ctx: EvalContext) -> dict:
    extractor = resolve_extractor(ctx.options.extractor)
    entry = {"extractor": extractor, "real": f"train split, {min(ctx.num_samples, len(ctx.data.train))} samples",
             "fake": f"{ctx.num_samples} samples"}
    if extractor == "inception":
        entry |= {"weights": str(inception_weights(ctx.options.extractor)), "antialias": bool(ctx.options.extractor.antialias)}
    else:
        entry["classifier_test_acc"] = ctx.classifier()[1]
    return entry


def extractor_unavailable(options, data) -> str | None:
    """The configured extractor cannot be had: Inception without its weights, or the project's
    classifier on a dataset without class labels to train it on."""
    try:
        extractor = resolve_extractor(options.extractor)
    except UserError as error:
        return str(error)
    if extractor == "classifier" and data.label_kind != "class":
        return (f"its feature extractor would be the project's classifier, which needs class labels ({data.name} has "
                f"none): supply the FID Inception weights with eval.extractor.weights=PATH ({INCEPTION_WEIGHTS}).")
    return None


def needs_images(recipe, data) -> str | None:
    return None if data.kind == "image" else f"it needs an image dataset ({data.name} is not)"


@register_metric("fid", unsupported=needs_images, unavailable=extractor_unavailable, better={"*": "lower"},
                 min_samples=lambda options: (2, 2),   # a covariance of each set
                 headline=("inception", "classifier"), rank=30)
def fid(ctx: EvalContext) -> dict[str, float]:
    real, fake = extracted(ctx)["features"]
    ctx.protocol["fid"] = protocol(ctx)
    return {f"fid/{resolve_extractor(ctx.options.extractor)}": frechet_distance(real, fake)}


@register_metric("kid", unsupported=needs_images, unavailable=extractor_unavailable, better={"*_mean": "lower"},
                 min_samples=lambda options: (4, 4))   # subsets of at least 2 (kid_subset_size) that can differ
def kid(ctx: EvalContext) -> dict[str, float]:
    real, fake = extracted(ctx)["features"]
    mean, std = kernel_inception_distance(real, fake, int(ctx.options.kid.subset_size), int(ctx.options.kid.subsets),
                                          ctx.seed)
    used = kid_subset_size(int(ctx.options.kid.subset_size), min(len(real), len(fake)))
    ctx.protocol["kid"] = protocol(ctx) | dict(ctx.options.kid) | {"subset_size_used": used}
    name = resolve_extractor(ctx.options.extractor)
    return {f"kid/{name}_mean": mean, f"kid/{name}_std": std}


@register_metric("is", unsupported=needs_images, unavailable=extractor_unavailable, better={"*_mean": "higher"},
                 min_samples=lambda options: (0, int(options.is_splits)))   # a sample in every split
def inception_score_metric(ctx: EvalContext) -> dict[str, float]:
    _, fake_logits = extracted(ctx)["logits"]
    mean, std = inception_score(fake_logits, int(ctx.options.is_splits))
    ctx.protocol["is"] = protocol(ctx) | {"splits": int(ctx.options.is_splits)}
    name = resolve_extractor(ctx.options.extractor)
    return {f"is/{name}_mean": mean, f"is/{name}_std": std}
