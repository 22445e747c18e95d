"""DSGAN's diversity term against hand-computed values (docs/methods.md#dsgan)."""
import pytest
import torch

from conftest import tensorboard_tags, train_run
from msgan_cli.regularizers.dsgan import dsgan_loss, dsgan_ratio


def test_per_sample_ratio_and_clip():
    fake1 = torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), 4.0)])
    fake2 = torch.zeros(2, 1, 2, 2)
    z1, z2 = torch.zeros(2, 2), torch.tensor([[2.0, 2.0], [1.0, 1.0]])
    # Per-sample ratios: 1 / 2 = 0.5 and 4 / 1 = 4.
    assert dsgan_ratio(fake1, fake2, z1, z2).tolist() == pytest.approx([0.5, 4.0])
    assert dsgan_loss(fake1, fake2, z1, z2).item() == pytest.approx(-(0.5 + 4.0) / 2)
    # Clipped at tau = 1: min(0.5, 1) and min(4, 1).
    assert dsgan_loss(fake1, fake2, z1, z2, tau=1.0).item() == pytest.approx(-(0.5 + 1.0) / 2)


def test_second_output_is_detached():
    fake1 = torch.zeros(3, 4, requires_grad=True)
    fake2 = torch.ones(3, 4, requires_grad=True)
    dsgan_loss(fake1, fake2, torch.zeros(3, 2), torch.ones(3, 2)).backward()
    assert fake2.grad is None                 # only G(x, z1) is pushed away from G(x, z2)
    assert (fake1.grad > 0).all()             # fake1 lies below fake2: descent moves it further down


def test_dsgan_trains_and_logs(tmp_path):
    train_run(tmp_path, "reg=dsgan", "reg.dsgan.tau=2.0")
    assert {"Loss/G/dsgan", "Diag/dsgan/ratio"} <= tensorboard_tags(tmp_path)["scalars"]
