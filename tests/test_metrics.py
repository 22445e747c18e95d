"""Metrics against cases with a known answer."""
import json
import math

import numpy as np
import pytest
import torch

from msgan_cli.data.mixtures2d import mixture_centres, sample_mixture
from msgan_cli.metrics import (
    NDBBins,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    modes_2d,
    ndb_jsd,
    pairwise_distances,
)
from msgan_cli.metrics.modes import modes_per_input
from msgan_cli.report.statistics import mean_std


def test_modes_2d_counts_exactly_the_covered_modes():
    centres = mixture_centres("ring8")
    generator = torch.Generator().manual_seed(0)
    # A "generator" that covers exactly 3 of the 8 ring modes, tightly.
    points, _ = sample_mixture(centres[[0, 3, 5]], 0.01, 2500, generator)
    result = modes_2d(points, centres, std=0.01)
    assert result["modes"] == 3
    assert result["high_quality"] > 98
    # Three equally used modes out of eight: KL(p || uniform) = log(8 / 3).
    assert result["kl"] == pytest.approx(math.log(8 / 3), abs=0.02)


def test_modes_2d_on_the_true_distribution_and_on_noise():
    centres = mixture_centres("grid25")
    points, _ = sample_mixture(centres, 0.05, 2500, torch.Generator().manual_seed(1))
    perfect = modes_2d(points, centres, std=0.05)
    assert perfect["modes"] == 25 and perfect["high_quality"] > 97 and perfect["kl"] < 0.02
    far_away = modes_2d(torch.full((100, 2), 100.0), centres, std=0.05)
    assert far_away["modes"] == 0 and far_away["high_quality"] == 0


def test_modes_per_input_counts_exactly_the_modes_found():
    targets = torch.rand(3, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1   # 3 inputs, K = 4
    every_mode = targets[:, [0, 1, 2, 3, 0, 1, 2, 3]]             # a perfect generator: each mode twice
    perfect = modes_per_input(every_mode, targets)
    assert perfect["modes"] == 4 and perfect["modes_fraction"] == 1 and perfect["high_quality"] == 100
    assert perfect["kl"] == pytest.approx(0.0, abs=1e-6)
    collapsed = modes_per_input(targets[:, [2] * 8], targets)     # one mode per input (ignores its latent)
    assert collapsed["modes"] == 1 and collapsed["high_quality"] == 100
    assert collapsed["kl"] == pytest.approx(math.log(4))
    three = modes_per_input(targets[:, [0, 1, 3, 3]], targets)    # three modes, one twice: KL = log 4 - 1.5 log 2
    assert three["modes"] == 3 and three["kl"] == pytest.approx(math.log(4) - 1.5 * math.log(2))
    # Not high quality: blends of two modes, noise around a mode, and a result halfway to nothing.
    blend = ((targets[:, 0] + targets[:, 1]) / 2)[:, None].expand(-1, 8, -1, -1, -1)
    noisy = targets[:, :1] + 3 * torch.randn(3, 8, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    for outputs in (blend, noisy):
        result = modes_per_input(outputs, targets)
        assert result["modes"] == 0 and result["high_quality"] == 0
    slightly_off = targets[:, [0, 1]] + 0.02 * torch.randn(3, 2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    assert modes_per_input(slightly_off, targets)["modes"] == 2


def oracle_pix2pix(monkeypatch, collapsed: bool):
    """A pix2pix session whose generator draws the correct output of its input exactly: the mode picked
    by the latent (uniform over the K modes), or always the first one (a collapsed generator)."""
    from conftest import compose
    from msgan_cli.train.session import build_session
    session = build_session(compose("model=pix2pix", "model.width=4", "eval.per_input.inputs=30",
                                    "eval.modes_per_input.samples_per_input=20"))
    split = session.data.test
    outlines = split.outlines.float() / 127.5 - 1

    def generate(z, condition):
        index = (condition.flatten(1)[:, None] == outlines.flatten(1)[None]).all(2).float().argmax(1)
        spread = (torch.special.ndtr(z[:, 0]) * split.modes).long().clamp(max=split.modes - 1)
        mode = torch.zeros_like(index) if collapsed else spread
        return split.mode_targets(index)[torch.arange(len(z)), mode]

    monkeypatch.setattr(session.recipe, "generate", generate)
    return session


@pytest.mark.parametrize("collapsed", [False, True])
def test_modes_per_input_through_the_evaluation_path(monkeypatch, collapsed):
    """The metric as `msgan eval` computes it (held-out inputs, 20 latents each, grouped per input) on
    an exact generator: all K modes found (as many as the ideal draws find), or exactly 1."""
    from msgan_cli.evaluate import evaluate_run
    session = oracle_pix2pix(monkeypatch, collapsed)
    metrics, protocol = evaluate_run(session, ["modes_per_input"], session.cfg.eval, step=0)
    assert metrics["modes_per_input/high_quality"] == 100 and metrics["modes_per_input/num_modes_total"] == 4
    if collapsed:
        assert metrics["modes_per_input/modes"] == 1 and metrics["modes_per_input/kl"] == pytest.approx(math.log(4))
    else:
        assert metrics["modes_per_input/modes"] >= 3.8
        assert abs(metrics["modes_per_input/modes"] - metrics["modes_per_input/ideal_modes"]) < 0.2
    entry = protocol["per_metric"]["modes_per_input"]
    assert entry["inputs"] == 30 and entry["samples_per_input"] == 20
    assert entry["conditions"] == "image: the first 30 test inputs x 20 samples each" and entry["num_samples"] == 600


def test_pairwise_distance_known_values():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.stack([torch.ones(1, 2, 2), torch.full((1, 2, 2), -0.5)])
    assert pairwise_distances(a, b).tolist() == [1.0, 0.5]
    assert pairwise_distances(a, a).sum() == 0


def test_mean_std_uses_the_sample_standard_deviation():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(math.sqrt(5 / 3))
    assert mean_std([7.0]) == (7.0, 0.0)


# --- NDB / JSD (gans-n-gmms utils/ndb.py protocol) ---------------------------------------------

def test_two_proportion_z_test_hand_computed():
    from msgan_cli.metrics.ndb import two_proportion_z_test
    # p1 = 0.5 of 100, p2 = 0.3 of 100: pooled 0.4, se = sqrt(0.4 * 0.6 * 0.02) = 0.0693, z = 2.887,
    # two-tailed p = 0.0039 < 0.05; p2 = 0.45: z = 0.71, p = 0.48.
    different = two_proportion_z_test(np.array([0.5, 0.5, 0.0]), 100, np.array([0.3, 0.45, 0.0]), 100, 0.05)
    assert different.tolist() == [True, False, False]   # a bin empty on both sides does not differ


def test_jensen_shannon_known_values():
    from msgan_cli.metrics.ndb import jensen_shannon
    assert jensen_shannon(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(math.log(2))


def test_ndb_of_the_same_distribution_is_about_alpha_k():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(6000, 3))
    bins = NDBBins.fit(real, num_bins=40, seed=0)
    counts = [bins.evaluate(rng.normal(size=(3000, 3)))["ndb"] for _ in range(5)]
    assert np.mean(counts) <= 0.05 * 40 * 2.5           # about alpha * K = 2 expected
    assert bins.evaluate(rng.normal(size=(3000, 3)))["jsd"] < 0.01


def test_ndb_of_disjoint_distributions_is_k():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(2000, 4)), rng.normal(size=(1000, 4)) + 100.0
    result = ndb_jsd(real, fake, num_bins=20, whitening=True)
    assert result["ndb"] == 20 and result["ndb_ratio"] == 1.0
    assert result["jsd"] > 0.5


def test_ndb_of_a_collapsed_generator_is_large():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(3000, 3))
    collapsed = rng.normal(size=(1000, 3)) * 0.05       # every sample near one point
    assert ndb_jsd(real, collapsed, num_bins=20)["ndb"] > 15


# --- FID / KID / IS ------------------------------------------------------------------------------

def test_fid_known_answers():
    torch.manual_seed(0)
    features = torch.randn(3000, 8, dtype=torch.float64)
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([3.0, 0, 0, 4.0, 0, 0, 0, 0], dtype=torch.float64)
    assert frechet_distance(features, features + shift) == pytest.approx(25.0, rel=1e-6)   # |shift|^2


def test_kid_is_near_zero_for_the_same_distribution_and_not_otherwise():
    torch.manual_seed(0)
    a, b = torch.randn(1000, 6, dtype=torch.float64), torch.randn(1000, 6, dtype=torch.float64)
    same, _ = kernel_inception_distance(a, b, subset_size=500, subsets=20)
    shifted, _ = kernel_inception_distance(a, b + 2.0, subset_size=500, subsets=20)
    assert abs(same) < 0.01 and shifted > 1.0


def test_precision_and_recall_tell_quality_from_coverage():
    """Four clusters of real features: a generator of the same distribution scores both high; one
    collapsed on a cluster keeps its precision and covers a quarter (recall); one far away scores 0."""
    from msgan_cli.metrics.coverage import precision_recall
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=generator) * 10

    def draw(clusters):
        return centres[clusters] + torch.randn(len(clusters), 8, generator=generator)

    real = draw(torch.randint(4, (2000,), generator=generator))
    same = precision_recall(real, draw(torch.randint(4, (2000,), generator=generator)))
    collapsed = precision_recall(real, draw(torch.zeros(2000, dtype=torch.long)))
    far = precision_recall(real, torch.randn(2000, 8, generator=generator) * 10 + 100)
    assert min(same) > 0.8
    assert collapsed[0] > 0.8 and 0.15 < collapsed[1] < 0.3   # a quarter of the real data covered
    assert far == (0.0, 0.0)
    with pytest.raises(ValueError, match="more than 3 samples"):
        precision_recall(real[:3], real[:3])
    # A generator without a latent, evaluated 5 times per input, repeats each output: the copies are one sample of
    # its manifold (as copies each other's 3 nearest neighbours, every radius was 0 and the recall 0).
    fake = draw(torch.randint(4, (400,), generator=generator))
    assert precision_recall(real, fake.repeat_interleave(5, 0)) == pytest.approx(precision_recall(real, fake))
    assert precision_recall(real, fake)[1] > 0.5
    # One output for everything: those points alone, no crash.
    assert precision_recall(real, real[:1].repeat(50, 1)) == (1.0, pytest.approx(1 / 2000))


def test_kid_std_is_measured_on_subsets_that_differ():
    """250 samples with the default subset size of 1,000: the subsets were the whole set each time and
    the std was 0; capped at half the samples, the std measures something."""
    torch.manual_seed(0)
    a, b = torch.randn(250, 6, dtype=torch.float64), torch.randn(250, 6, dtype=torch.float64) + 0.5
    _, std = kernel_inception_distance(a, b, subset_size=1000, subsets=20)
    assert std > 1e-4


def test_inception_score_known_answers():
    confident = torch.nn.functional.one_hot(torch.arange(1000) % 10, 10).double() * 50   # every class, sure
    assert inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-3)
    one_class = torch.zeros(1000, 10, dtype=torch.float64)
    one_class[:, 3] = 50
    assert inception_score(one_class, splits=10)[0] == pytest.approx(1.0, rel=1e-3)


def test_mode_score_known_answers():
    from msgan_cli.metrics.classification import mode_score
    uniform = torch.full((10,), 0.1)
    confident = torch.nn.functional.one_hot(torch.arange(1000) % 10, 10).float()
    assert mode_score(confident, uniform) == pytest.approx(10.0, rel=1e-4)   # exp(log 10 - 0)
    collapsed = torch.nn.functional.one_hot(torch.zeros(1000, dtype=torch.long), 10).float()
    assert mode_score(collapsed, uniform) == pytest.approx(1.0, rel=1e-4)    # exp(log 10 - log 10)


def test_stacked_modes_counts_triples():
    from msgan_cli.metrics.classification import stacked_modes
    predictions = torch.tensor([[1, 2, 3], [1, 2, 3], [0, 0, 9], [9, 9, 9]])
    result = stacked_modes(predictions)
    assert result["modes"] == 3 and result["num_modes_total"] == 1000
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    assert result["kl"] == pytest.approx(float((p * (p * 1000).log()).sum()))


def test_lpips_pairs_identical_outputs_give_zero():
    from torchmetrics.functional.image.lpips import _LPIPS

    from msgan_cli.metrics.diversity import lpips_diversity
    torch.manual_seed(0)
    net = _LPIPS(pretrained=True, net="alex", pnet_rand=True).eval()   # random backbone: offline
    images = torch.rand(6, 1, 32, 32) * 2 - 1
    assert lpips_diversity(images, images, net) == pytest.approx(0.0, abs=1e-6)
    assert lpips_diversity(images, images.flip(0), net) > 0


def test_stacked_modes_on_a_stacked_run(tmp_path):
    from test_training import dataset_overrides

    from conftest import train_run
    metrics = train_run(tmp_path, "model.nz=8", *dataset_overrides("stacked_fashion_mnist", tmp_path),
                        "eval.metrics=[stacked_modes,ndb_jsd]")
    assert 1 <= metrics["stacked_modes/modes"] <= 64 and metrics["stacked_modes/num_modes_total"] == 1000
    assert 0 <= metrics["stacked_modes/classifier_test_acc"] <= 1
    # the reference: as many real images (64 here, of 64 training triples) scored by the same classifier
    assert 1 <= metrics["stacked_modes/real_data_modes"] <= 64 and metrics["stacked_modes/real_data_kl"] > 0
    assert "ndb_jsd/ndb" in metrics and "ndb_jsd/per_class_mean_ndb" not in metrics   # unconditional


def random_inception_weights(path, monkeypatch):
    """A weights file in the format of torch-fidelity's FID Inception, randomly initialised: the real
    one cannot be downloaded here, but loading and running it takes the same code path."""
    from torch_fidelity import feature_extractor_inceptionv3 as inception
    torch.manual_seed(0)
    with monkeypatch.context() as patch:
        patch.setattr(inception, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        network = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(network.state_dict(), path)
    return path


@pytest.mark.slow
def test_inception_extractor_scores_an_unlabelled_image_folder(tmp_path, monkeypatch):
    from conftest import compose, train_run
    from datafiles import write_image_folder
    from msgan_cli.errors import UserError
    from msgan_cli.evaluate import resolve_metric_names
    from msgan_cli.metrics.fidelity import InceptionExtractor
    from msgan_cli.train.session import build_session
    (tmp_path / "images").mkdir()
    folder = ["dataset=image_folder", f"dataset.root={write_image_folder(tmp_path / 'images')}", "dataset.resolution=32"]

    # Without the weights the only extractor would be a classifier, and these images have no classes.
    cfg = compose(*folder)
    session = build_session(cfg)
    recipe, data = session.recipe, session.data
    assert "fid" not in resolve_metric_names("auto", recipe, data, cfg.eval)
    with pytest.raises(UserError, match="eval.extractor.weights=PATH"):
        resolve_metric_names(["fid"], recipe, data, cfg.eval)

    weights = random_inception_weights(tmp_path / "random-inception.pth", monkeypatch)   # not the standard file
    # The IS logits msgan derives from the pool features are torch-fidelity's own 'logits_unbiased'.
    from torchmetrics.image.fid import NoTrainInceptionV3
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    _, logits = InceptionExtractor(weights, antialias=True)(images)
    reference = NoTrainInceptionV3(name="inception-v3-compat", features_list=["logits_unbiased"],
                                   feature_extractor_weights_path=str(weights))(((images + 1) * 127.5).to(torch.uint8))
    torch.testing.assert_close(logits, reference.double(), rtol=1e-4, atol=1e-4)

    with_weights = [*folder, f"eval.extractor.weights={weights}", "eval.num_samples=8", "eval.is_splits=2"]
    assert {"fid", "kid", "is"} <= set(resolve_metric_names("auto", recipe, data, compose(*with_weights).eval))
    run = tmp_path / "run"
    metrics = train_run(run, *with_weights, "eval.metrics=[fid,kid,is]")
    # IS = exp(mean KL) >= 1; with the random weights' near-uniform logits it rounds to 1 - 1e-16
    assert metrics["fid/inception"] > 0 and metrics["is/inception_mean"] >= 1 - 1e-9
    protocol = json.loads((run / "eval_protocol.json").read_text())["per_metric"]["fid"]
    assert protocol["extractor"] == "inception" and protocol["weights"] == str(weights)


def test_a_cached_classifier_belongs_to_the_images_it_learnt_from_not_only_to_their_config():
    """An embedded benchmark rendered differently by a newer version keeps its config: the cache key
    must change with the images, or metrics would read new outputs with a classifier of old images."""
    from dataclasses import replace

    from msgan_cli.config import compose_config
    from msgan_cli.data import load_dataset
    from msgan_cli.data.base import TensorSplit
    from msgan_cli.metrics.classifier import cache_path
    cfg = compose_config("train", ["dataset=digits"])
    data, cpu = load_dataset(cfg.dataset), torch.device("cpu")
    path = cache_path(data, cfg.dataset, cfg.eval.classifier, cpu)
    assert cache_path(load_dataset(cfg.dataset), cfg.dataset, cfg.eval.classifier, cpu) == path   # reproducible
    redrawn = replace(data, test=TensorSplit((data.test.values * 0.5).clamp(-1, 1), data.test.labels))
    assert cache_path(redrawn, cfg.dataset, cfg.eval.classifier, cpu) != path
    relabelled = replace(data, test=TensorSplit(data.test.values, data.test.labels.roll(1)))
    assert cache_path(relabelled, cfg.dataset, cfg.eval.classifier, cpu) != path


# --- what evaluation needs, checked before a run trains --------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-5", "abc"])
def test_a_sample_count_that_cannot_be_is_refused_before_training_and_by_eval(tmp_path, value):
    """eval.num_samples=0 trained the whole run, then crashed in its evaluation (71 lines); msgan eval
    num_samples=0, -5, abc gave 19- to 28-line tracebacks."""
    from conftest import TINY, run_msgan
    run = tmp_path / "run"
    refused = run_msgan("train", *TINY, f"eval.num_samples={value}", f"hydra.run.dir={run}")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert ("eval.num_samples must be a whole number" in refused.stderr) and not (run / "checkpoints").exists()
    assert run_msgan("train", *TINY, "trainer.max_steps=2", "eval.metrics=[class_acc]",
                     f"hydra.run.dir={run}").returncode == 0
    evaluated = run_msgan("eval", f"run={run}", f"num_samples={value}")
    assert evaluated.returncode == 2 and "eval.num_samples must be a whole number of at least 1; got " in evaluated.stderr
    assert "Traceback" not in evaluated.stderr


def test_a_metric_that_needs_more_samples_than_the_run_gives_is_left_out_or_refused_before_training(tmp_path):
    """StarGAN on a CelebA folder with 4 test images: eval.metrics=auto ran precision/recall on fewer samples
    than it needs (more than k of each) and the run crashed at its end, without metrics. Now auto leaves out what cannot run,
    saying why, and a metric named that cannot run is refused before training."""
    from test_stargan import LATENT

    from conftest import load_metrics, run_msgan, tiny
    from datafiles import write_celeba
    write_celeba(tmp_path / "celeba")
    few = [*LATENT, "reg=ms", "dataset=celeba", f"dataset.root={tmp_path / 'celeba'}", "dataset.test_images=4",
           "dataset.workers=0", "trainer.batch_size=4", "eval.per_input.samples=1", "eval.precision_recall.k=5"]
    run = tmp_path / "auto"
    done = run_msgan("train", *tiny(*few, "eval.metrics=auto"), f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "eval.metrics=auto skips precision_recall: it needs at least 6 real and 6 generated samples" in \
        (run / "train.log").read_text()
    metrics = load_metrics(run)
    assert "domain_acc/to_Male/all" in metrics and not any(key.startswith("precision_recall") for key in metrics)
    named = run_msgan("train", *tiny(*few, "eval.metrics=[precision_recall]"), f"hydra.run.dir={tmp_path / 'named'}")
    assert named.returncode == 2 and "Metric precision_recall cannot run here: it needs at least 6 real" in named.stderr
    assert not (tmp_path / "named" / "checkpoints").exists()


def test_weights_whose_unpickling_runs_code_are_refused_before_any_loader_sees_them(tmp_path):
    """eval.extractor.weights=<file> went to torch-fidelity, which loads it with weights_only=False: a crafted
    .pth ran code. A file whose unpickling would create a file is refused in one sentence, and the file
    is not created; a file under the standard name that is not the standard file is refused too."""
    import pathlib

    from msgan_cli.errors import UserError
    from msgan_cli.metrics.fidelity import INCEPTION_WEIGHTS, InceptionExtractor
    marker = tmp_path / "the file this pickle creates"

    class Payload:
        def __reduce__(self):
            return pathlib.Path.touch, (pathlib.Path(str(marker)),)

    crafted = tmp_path / "inception.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "payload": Payload()}, crafted)
    with pytest.raises(UserError, match="cannot be read as Inception weights with weights_only=True"):
        InceptionExtractor(crafted, antialias=True)
    assert not marker.exists()
    impostor = tmp_path / INCEPTION_WEIGHTS
    torch.save({"fc.weight": torch.zeros(2)}, impostor)
    with pytest.raises(UserError, match="its SHA-256 starts .* not 6726825d"):
        InceptionExtractor(impostor, antialias=True)
