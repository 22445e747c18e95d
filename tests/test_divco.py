"""DivCo (reg=divco) against hand-computed values, and as a plug-in (docs/methods.md#divco)."""
import math

import pytest
import torch

from conftest import compose, tensorboard_tags, train_run
from msgan_cli.regularizers.divco import contrastive_latents, divco_loss


def test_the_worked_example():
    query, positive = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.8, 0.6]])
    negatives = torch.tensor([[[0.0, 1.0]], [[-1.0, 0.0]]])   # (K=2, n=1, d=2)
    # Logits [0.8, 0, -1] / tau; the loss log(e^0.8 + e^0 + e^-1) - 0.8 = 0.4791.
    expected = math.log(math.exp(0.8) + 1 + math.exp(-1)) - 0.8
    assert expected == pytest.approx(0.4791, abs=1e-4)
    assert divco_loss(query, positive, negatives).item() == pytest.approx(expected, rel=1e-6)
    # tau = 0.5 doubles every logit.
    assert divco_loss(query, positive, negatives, tau=0.5).item() == pytest.approx(
        math.log(math.exp(1.6) + 1 + math.exp(-2)) - 1.6, rel=1e-6)


def test_features_are_dot_products_unless_normalised_and_conditions_are_summed():
    query, positive = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.8, 0.6]])
    negatives = torch.tensor([[[0.0, 1.0]], [[-1.0, 0.0]]])
    # A query of length 2 doubles the raw logits; normalised, it is the worked example again.
    assert divco_loss(query, positive, negatives).item() == pytest.approx(
        math.log(math.exp(1.6) + 1 + math.exp(-2)) - 1.6, rel=1e-6)
    assert divco_loss(query, positive, negatives, normalize_features=True).item() == pytest.approx(0.47910, abs=1e-5)
    two = divco_loss(torch.cat([query, query]), torch.cat([positive, positive]), torch.cat([negatives, negatives], 1))
    assert two.item() == pytest.approx(2 * divco_loss(query, positive, negatives).item(), rel=1e-6)
    mean = divco_loss(torch.cat([query, query]), torch.cat([positive, positive]), torch.cat([negatives, negatives], 1),
                      reduction="mean")
    assert mean.item() == pytest.approx(divco_loss(query, positive, negatives).item(), rel=1e-6)


def test_the_positive_lies_within_the_radius_and_every_negative_outside_it():
    query = torch.zeros(3, 4)
    offsets = torch.tensor([[1.0, -1.0, 0.5, 0.0]] * 3)
    draws = torch.tensor([[[0.005, -0.002, 1.0, -2.0]] * 3])   # two coordinates inside the radius 0.01
    positive, negatives = contrastive_latents(query, offsets, draws, radius=0.01)
    assert positive[0].tolist() == pytest.approx([0.01, -0.01, 0.005, 0.0])
    assert negatives[0, 0].tolist() == pytest.approx([0.01, -0.01, 1.0, -2.0])   # moved out to the cube's faces
    assert (negatives - query).abs().min() >= 0.01


def test_divco_trains_logs_and_composes(tmp_path):
    train_run(tmp_path / "alone", "reg=divco", "reg.divco.negatives=3", "eval.metrics=[]")
    assert {"Loss/G/divco", "Diag/divco/positive_cosine_image", "Diag/divco/negative_cosine_image"} <= tensorboard_tags(
        tmp_path / "alone")["scalars"]
    train_run(tmp_path / "with_ms", "reg=[divco,ms]", "reg.divco.negatives=2", "eval.metrics=[]")


def test_a_packing_discriminator_and_a_bad_option_are_refused():
    from msgan_cli.errors import UserError
    from msgan_cli.train.session import build_session
    with pytest.raises(UserError, match="pacgan"):
        build_session(compose("reg=[divco,pacgan]"))
    with pytest.raises(UserError, match="reg.divco.tau must be above 0"):
        build_session(compose("reg=divco", "reg.divco.tau=0"))
