"""Mode seeking's formula against hand-computed values (docs/methods.md#mode-seeking)."""
import pytest
import torch

from msgan_cli.regularizers import mode_seeking_loss, mode_seeking_ratio


def test_mean_reduction_matches_hand_computed_value():
    # Image gaps |f2 - f1|: sample 0 -> [1, 1, 1, 1], sample 1 -> [3, 3, 3, 3]: mean 2.
    fake1 = torch.zeros(2, 1, 2, 2)
    fake2 = torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), -3.0)])
    # Latent gaps |z2 - z1|: sample 0 -> [2, 2], sample 1 -> [6, 6]: mean 4.
    z1 = torch.zeros(2, 2)
    z2 = torch.tensor([[2.0, 2.0], [6.0, 6.0]])
    # ratio = 2 / 4 = 0.5; loss = 1 / (0.5 + 1e-5)
    assert mode_seeking_ratio(fake1, fake2, z1, z2).item() == pytest.approx(0.5)
    assert mode_seeking_loss(fake1, fake2, z1, z2).item() == pytest.approx(1 / 0.50001, rel=1e-7)


def test_per_sample_reduction_averages_per_sample_losses():
    fake1 = torch.zeros(2, 1, 2, 2)
    fake2 = torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), -3.0)])
    z1 = torch.zeros(2, 2)
    z2 = torch.tensor([[2.0, 2.0], [6.0, 6.0]])
    # Latent gaps: sample 0 -> 2, sample 1 -> 1. Per-sample ratios: 1/2 = 0.5 and 3/1 = 3.
    z2[1] = 1.0
    ratios = mode_seeking_ratio(fake1, fake2, z1, z2, reduction="per_sample")
    assert ratios.tolist() == pytest.approx([0.5, 3.0])
    expected = (1 / (0.5 + 1e-3) + 1 / (3.0 + 1e-3)) / 2
    assert mode_seeking_loss(fake1, fake2, z1, z2, eps=1e-3, reduction="per_sample").item() == pytest.approx(expected)
    # The code's reduction on the same input: (1 + 3) / 2 = 2 over (2 + 1) / 2 = 1.5.
    assert mode_seeking_ratio(fake1, fake2, z1, z2).item() == pytest.approx(2 / 1.5)


def test_gradient_pushes_outputs_apart():
    fake1 = torch.zeros(4, 3, requires_grad=True)
    fake2 = torch.full((4, 3), 0.1, requires_grad=True)
    z1, z2 = torch.zeros(4, 2), torch.ones(4, 2)
    mode_seeking_loss(fake1, fake2, z1, z2).backward()
    # Minimising the loss increases |fake2 - fake1|: gradient descent moves fake2 up and fake1 down.
    assert (fake2.grad < 0).all() and (fake1.grad > 0).all()


def test_unknown_reduction_is_rejected():
    with pytest.raises(ValueError):
        mode_seeking_ratio(torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1, 1), torch.ones(1, 1), "median")
