"""Vendi, RKE and density / coverage (metrics/kernel_entropy.py, metrics/coverage.py): known answers,
hand-computed values, the reference packages (vendi-score, prdc) on random features, and the metrics
as an evaluation computes them."""
import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from msgan_cli.metrics import density_coverage, rke_mode_count, vendi_score  # as a notebook imports them
from msgan_cli.metrics.kernel_entropy import effective_number, gaussian_kernel

ORDERS = [0.5, 1.0, 2.0, math.inf]


def random_features(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- Vendi: known answers ---------------------------------------------------------------------------

@pytest.mark.parametrize("q", ORDERS)
@pytest.mark.parametrize("d", [3, 40])   # fewer dimensions than samples (the dual form) and more
def test_vendi_of_identical_orthogonal_and_clustered_samples(q, d):
    """n identical samples are 1 sample, n orthogonal ones n, k equal clusters of identical samples k:
    in every order, since all three have equal nonzero eigenvalues."""
    basis = torch.eye(d, dtype=torch.float64) * 3.0   # the cosine kernel ignores length
    assert vendi_score(basis[0].repeat(12, 1), q=q) == pytest.approx(1.0, rel=1e-9)
    orthogonal = basis[:min(d, 12)]
    assert vendi_score(orthogonal, q=q) == pytest.approx(len(orthogonal), rel=1e-9)
    clusters = basis[:3].repeat_interleave(4, 0)   # 3 clusters of 4 identical samples, 12 in all
    assert vendi_score(clusters, q=q) == pytest.approx(3.0, rel=1e-9)


def test_vendi_with_a_gaussian_kernel_counts_far_apart_clusters():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]], dtype=torch.float64)
    points = centres.repeat_interleave(5, 0)   # 4 clusters of 5 identical points, K between them e^-50
    for q in ORDERS:
        assert vendi_score(points, q=q, kernel="gaussian", sigma=1.0) == pytest.approx(4.0, rel=1e-5)
    with pytest.raises(ValueError, match="sigma > 0"):
        vendi_score(points, kernel="gaussian")


def test_vendi_orders_and_their_definitions():
    """Uneven weights: Shannon, Renyi of order 2 and the largest weight, each by its formula."""
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    assert effective_number(p, 1.0) == pytest.approx(math.exp(1.5 * math.log(2)))   # exp(-sum p log p) = 2^1.5
    assert effective_number(p, 2.0) == pytest.approx(1 / 0.375)                      # 1 / sum p^2
    assert effective_number(p, math.inf) == pytest.approx(2.0)                        # 1 / max p
    assert effective_number(p, 0.0) == pytest.approx(3.0)                             # the support
    assert effective_number(torch.tensor([2.0, 1.0, 1.0, 1e-18]), 0.5) == pytest.approx(effective_number(p, 0.5))


@pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning")   # inside vendi-score
@pytest.mark.parametrize("q", ORDERS)
@pytest.mark.parametrize("n, d", [(300, 16), (40, 64)])   # the dual form, and the n x n one
def test_vendi_agrees_with_the_reference_package(q, n, d):
    from vendi_score import vendi
    features = random_features(n, d, seed=n) + 0.5   # not centred: eigenvalues of several sizes
    reference_q = "inf" if math.isinf(q) else q       # vendi-score's spelling of infinity
    unit = F.normalize(features, dim=1).numpy()
    reference = vendi.score_dual(unit, q=reference_q) if d < n else vendi.score_K(unit @ unit.T, q=reference_q)
    assert vendi_score(features, q=q) == pytest.approx(reference, rel=1e-5)
    kernel = gaussian_kernel(features, features, 4.0).numpy()
    assert vendi_score(features, q=q, kernel="gaussian", sigma=4.0) == pytest.approx(vendi.score_K(kernel, q=reference_q),
                                                                                      rel=1e-5)


# --- RKE ----------------------------------------------------------------------------------------------

def test_rke_of_three_points_by_hand():
    """Points 0, 1 and 3 on a line, sigma = 1: K_ij^2 = exp(-d_ij^2), so
    ||K||_F^2 = 3 + 2 (e^-1 + e^-4 + e^-9) and RKE = 9 / ||K||_F^2."""
    points = torch.tensor([[0.0], [1.0], [3.0]])
    expected = 9 / (3 + 2 * (math.exp(-1) + math.exp(-4) + math.exp(-9)))
    assert rke_mode_count(points, sigma=1.0) == pytest.approx(expected, rel=1e-12)
    assert rke_mode_count(points, sigma=1.0, chunk=1) == pytest.approx(expected, rel=1e-12)   # row by row


def test_rke_is_vendi_of_order_two_and_counts_modes():
    features = random_features(150, 5)
    assert rke_mode_count(features, 2.0, chunk=7) == pytest.approx(vendi_score(features, 2.0, "gaussian", 2.0), rel=1e-9)
    assert rke_mode_count(features[:1].repeat(30, 1), 1.0) == pytest.approx(1.0)
    # grid25 drawn exactly (2,500 points, std 0.05, neighbours 2 apart): with sigma 0.5 the 25 modes
    from msgan_cli.data.mixtures2d import mixture_centres, sample_mixture
    points, _ = sample_mixture(mixture_centres("grid25"), 0.05, 2500, torch.Generator().manual_seed(0))
    assert 24 < rke_mode_count(points, sigma=0.5) < 26.5
    assert 4.5 < rke_mode_count(points[points[:, 0] < -3], sigma=0.5) < 5.3   # its first column: 5 modes


# --- density and coverage -----------------------------------------------------------------------------

def test_density_and_coverage_of_a_constructed_case():
    """Real samples at 0, 1, ..., 9 on a line, k = 2: each ball's radius is 1 (2 at the ends, 0 and 9).
    Fakes at 0.5 (in the balls of 0 and 1), -1.5 (in that of 0) and 20 (in none):
    density = (2 + 1 + 0) / (2 x 3) = 0.5; coverage = 2 of 10 real balls hold a fake (0 and 1) = 0.2."""
    real = torch.stack([torch.arange(10.0), torch.zeros(10)], 1)
    fake = torch.tensor([[0.5, 0.0], [-1.5, 0.0], [20.0, 0.0]])
    assert density_coverage(real, fake, k=2) == pytest.approx((0.5, 0.2))
    # a real set with every sample twice is the same manifold (as precision_recall's)
    assert density_coverage(real.repeat(2, 1), fake, k=2) == pytest.approx((0.5, 0.2))
    # The real set itself: each sample lies in its own ball and its two neighbours' (one at the ends),
    # 2 and 7 also in the end balls of radius 2: (2 + 3 + 4 + 3 x 4 + 4 + 3 + 2) / (2 x 10) = 1.5.
    assert density_coverage(real, real, k=2) == (pytest.approx(1.5), 1.0)
    with pytest.raises(ValueError, match="more than 2 real samples"):
        density_coverage(real[:2], fake, k=2)


def test_density_and_coverage_agree_with_the_reference_package():
    import prdc
    real, fake = random_features(600, 10, seed=1), random_features(500, 10, seed=2) * 1.2 + 0.2
    reference = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    density, coverage = density_coverage(real, fake, k=5)
    assert density == pytest.approx(reference["density"], rel=1e-5)
    assert coverage == pytest.approx(reference["coverage"], rel=1e-5)


# --- as an evaluation computes them -------------------------------------------------------------------

def test_auto_includes_them_where_they_apply():
    from conftest import compose
    from msgan_cli.evaluate import resolve_metric_names
    from msgan_cli.train.session import build_session
    for overrides, expected, left_out in (([], {"vendi", "rke", "density_coverage"}, set()),
                                          (["model=mlp", "dataset=grid25", "dataset.num_train=500"],
                                           {"rke", "density_coverage"}, {"vendi"}),   # cosine of 2D points: an angle
                                          (["model=mlp", "dataset=grid25", "dataset.num_train=500",
                                            "eval.vendi.kernel=gaussian"], {"vendi", "rke", "density_coverage"}, set())):
        cfg = compose(*overrides)
        session = build_session(cfg)
        names = set(resolve_metric_names("auto", session.recipe, session.data, cfg.eval))
        assert expected <= names and not left_out & names, overrides


def test_a_tiny_run_reports_them_with_their_protocol(tmp_path):
    """The default run (class-conditional DCGAN on digits): over all outputs, within each class, and the
    real data's own value; the protocol records features, kernel, q, sigma and k."""
    from conftest import train_run
    metrics = train_run(tmp_path, "eval.metrics=[vendi,rke,density_coverage]", "eval.vendi.q=inf")
    # four steps of training: outputs far from the data (density and coverage 0), but every number is there
    for key in ("vendi/classifier", "vendi/classifier_per_class", "vendi/classifier_real", "rke/classifier",
                "rke/classifier_per_class", "rke/classifier_real"):
        assert 1 - 1e-9 <= metrics[key] <= 64, key   # Vendi: at most the rank, 16 features; RKE: 64 samples
    for key in ("vendi/classifier", "vendi/classifier_per_class", "vendi/classifier_real"):
        assert metrics[key] <= 16, key
    assert metrics["density_coverage/classifier_density"] >= 0 and 0 <= metrics["density_coverage/classifier_coverage"] <= 1
    protocol = json.loads((tmp_path / "eval_protocol.json").read_text())["per_metric"]
    assert protocol["vendi"]["features"] == "classifier" and protocol["vendi"]["kernel"] == "cosine"
    assert protocol["vendi"]["q"] == "inf" and "mean over 10 conditions" in protocol["vendi"]["within_condition"]
    assert protocol["rke"]["kernel"] == "gaussian" and protocol["rke"]["sigma"] > 0
    assert protocol["rke"]["sigma_set_by"].startswith("auto: half the median distance")
    assert protocol["density_coverage"]["k"] == 5 and "classifier_test_acc" in protocol["density_coverage"]


@pytest.mark.parametrize("collapsed", [False, True])
def test_within_an_input_next_to_the_modes_found(monkeypatch, collapsed):
    """outline_fill with an exact generator: the collapsed one draws one output per input, so within each
    input Vendi and RKE are exactly 1 whatever the features; the diverse one more (as modes_per_input).
    Coverage sees the same collapse over all outputs: a quarter of the targets' modes leaves most real
    samples' balls empty."""
    from test_metrics import oracle_pix2pix

    from msgan_cli.evaluate import evaluate_run
    session = oracle_pix2pix(monkeypatch, collapsed)
    metrics, protocol = evaluate_run(session, ["vendi", "rke", "density_coverage", "modes_per_input"], session.cfg.eval,
                                     step=0)
    within = metrics["vendi/classifier_per_input"], metrics["rke/classifier_per_input"]
    if collapsed:
        assert within == (pytest.approx(1.0, abs=1e-9), pytest.approx(1.0, abs=1e-9))
        assert metrics["modes_per_input/modes"] == 1 and metrics["density_coverage/classifier_coverage"] < 0.4
    else:
        assert min(within) > 1.5 and metrics["modes_per_input/modes"] > 3
        assert metrics["density_coverage/classifier_coverage"] > 0.6
    assert "vendi/classifier_real" not in metrics   # the real targets are not drawn per input: no reference
    assert "the first 30 test inputs x 5 samples each" in protocol["per_metric"]["vendi"]["within_condition"]


def test_an_unlabelled_folder_is_compared_in_pixels(tmp_path):
    """No Inception weights and no labels to train the classifier on: the pixels, named so in the keys."""
    from conftest import compose
    from datafiles import write_image_folder
    from msgan_cli.evaluate import evaluate_run
    from msgan_cli.train.session import build_session
    (tmp_path / "images").mkdir()
    cfg = compose("dataset=image_folder", f"dataset.root={write_image_folder(tmp_path / 'images')}",
                  "dataset.resolution=32", "eval.num_samples=20")
    session = build_session(cfg)
    metrics, protocol = evaluate_run(session, ["vendi", "rke", "density_coverage"], cfg.eval, step=0)
    assert {"vendi/pixels", "vendi/pixels_real", "rke/pixels", "density_coverage/pixels_coverage"} <= set(metrics)
    assert 1 <= metrics["vendi/pixels"] <= 20 and protocol["per_metric"]["rke"]["features"] == "pixels"


def test_options_that_cannot_be_are_refused_by_name():
    from conftest import compose
    from msgan_cli.errors import UserError
    from msgan_cli.evaluate import resolve_metric_names
    from msgan_cli.train.session import build_session
    for option, message in (("eval.vendi.q=-1", "eval.vendi.q must be a number >= 0 or inf"),
                            ("eval.vendi.kernel=rbf", "eval.vendi.kernel must be one of cosine, gaussian"),
                            ("eval.rke.sigma=0", "eval.rke.sigma must be auto or a number > 0"),
                            ("eval.density_coverage.k=0", "eval.density_coverage.k must be a whole number")):
        cfg = compose(option)
        session = build_session(cfg)
        with pytest.raises(UserError, match=message):
            resolve_metric_names(["vendi", "rke", "density_coverage"], session.recipe, session.data, cfg.eval)
        with pytest.raises(UserError, match=message):   # not skipped by auto: the option was given to be applied
            resolve_metric_names("auto", session.recipe, session.data, cfg.eval)


def test_sigma_auto_is_half_the_median_distance_of_real_samples():
    from msgan_cli.metrics.kernel_entropy import auto_bandwidth
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])   # distances 1, 3, 7, 2, 6, 4: median 3.5
    assert auto_bandwidth(points) == pytest.approx(1.75)
    from msgan_cli.errors import UserError
    with pytest.raises(UserError, match="set eval.rke.sigma"):
        auto_bandwidth(torch.zeros(5, 3))
    assert np.isfinite(auto_bandwidth(random_features(2000, 4)))   # a subset of 1,000: no 2,000^2 / 2 distances
