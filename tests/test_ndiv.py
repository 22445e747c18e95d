"""Normalized Diversification (reg=ndiv) against hand-computed values, and as a plug-in
(docs/methods.md#ndiv)."""
import pytest
import torch

from conftest import TINY_MODELS, compose, tensorboard_tags, train_run
from msgan_cli.regularizers import ndiv
from msgan_cli.regularizers.ndiv import ndiv_loss, normalized_distances

Z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
X = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])


def test_the_worked_example():
    # D_z rows: [0, 1, 2] / 3, [1, 0, sqrt 5] / (1 + sqrt 5), [2, sqrt 5, 0] / (2 + sqrt 5); D_x likewise with
    # the second and third samples' roles swapped. ReLU(0.8 N_z - N_x) is positive at three entries:
    # (1,3): 0.8 * 2/3 - 1/3 = 0.2; (2,3): 0.8 * sqrt5/(1+sqrt5) - sqrt5/(2+sqrt5) = 0.02492;
    # (3,1): 0.8 * 2/(2+sqrt5) - 1/(1+sqrt5) = 0.06869. Their sum over S(S-1) = 6 pairs:
    s5 = 5 ** 0.5
    expected = (0.8 * 2 / 3 - 1 / 3 + 0.8 * s5 / (1 + s5) - s5 / (2 + s5) + 0.8 * 2 / (2 + s5) - 1 / (1 + s5)) / 6
    assert expected == pytest.approx(0.048936, abs=1e-6)
    assert ndiv_loss(Z[None], X[None], alpha=0.8).item() == pytest.approx(expected, rel=1e-6)
    assert ndiv_loss(Z[None], X[None], alpha=0.5).item() == 0.0   # every output pair keeps half its latents' share


def test_rows_are_shares_the_scale_does_not_matter_and_groups_are_averaged():
    rows = normalized_distances(X[None])
    assert rows.sum(-1)[0].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert ndiv_loss(3 * Z[None], 10 * X[None]).item() == pytest.approx(ndiv_loss(Z[None], X[None]).item(), rel=1e-6)
    same = torch.zeros(1, 3, 2)   # a collapsed group: every output the same, N_x = 0
    collapsed = ndiv_loss(Z[None], same).item()
    assert collapsed == pytest.approx(0.8 * 3 / 6, rel=1e-6)   # alpha x the 3 rows of N_z (each sums to 1) / 6 pairs
    assert ndiv_loss(torch.stack([Z, Z]), torch.stack([X, same[0]])).item() == pytest.approx(
        (ndiv_loss(Z[None], X[None]).item() + collapsed) / 2, rel=1e-6)


def test_the_normaliser_is_held_fixed_and_only_the_distances_carry_the_gradient():
    x = X.clone().requires_grad_(True)
    ndiv_loss(Z[None], x[None]).backward()
    # The active entries' gradient, by hand with the row sums held constant: entry (i, j) adds
    # -(x_i - x_j) / (|x_i - x_j| * rowsum_i * 6) to x_i and the opposite to x_j.
    expected = torch.zeros(3, 2)
    sums = torch.cdist(X, X).sum(1)
    for i, j in ((0, 2), (1, 2), (2, 0)):
        direction = (X[i] - X[j]) / (X[i] - X[j]).norm()
        expected[i] -= direction / (sums[i] * 6)
        expected[j] += direction / (sums[i] * 6)
    assert torch.allclose(x.grad, expected, atol=1e-6)


def test_a_conditional_model_gets_groups_of_samples_per_condition_an_unconditional_one_its_batch(tmp_path, monkeypatch):
    seen = []
    original = ndiv.ndiv_violations

    def recording(z, x, alpha):
        seen.append((tuple(z.shape), tuple(x.shape)))
        return original(z, x, alpha)
    monkeypatch.setattr(ndiv, "ndiv_violations", recording)
    train_run(tmp_path / "dcgan", "reg=ndiv", "trainer.max_steps=1", "eval.metrics=[]")   # digits, class-conditional
    assert seen[0] == ((16, 4, 100), (16, 4, 1, 32, 32))   # doubled: 16 conditions x 4 latents
    seen.clear()
    train_run(tmp_path / "split", "reg=ndiv", "trainer.pair_batch=split", "trainer.max_steps=1", "eval.metrics=[]")
    assert seen[0][0][:2] == (4, 4)                         # split: 16 / 4 conditions x 4 latents
    seen.clear()
    train_run(tmp_path / "mlp", *TINY_MODELS["mlp"], "reg=ndiv", "trainer.max_steps=1", "eval.metrics=[]")
    assert seen[0] == ((1, 16, 2), (1, 16, 2))              # unconditional: the batch is one group


def test_ndiv_trains_logs_and_composes(tmp_path):
    train_run(tmp_path / "alone", "reg=ndiv", "eval.metrics=[]")
    assert {"Loss/G/ndiv", "Diag/ndiv/violated_pairs_image"} <= tensorboard_tags(tmp_path / "alone")["scalars"]
    train_run(tmp_path / "with_sr", "reg=[ndiv,sr]", "reg.sr.every=2", "eval.metrics=[]")


def test_options_out_of_range_are_refused():
    from msgan_cli.errors import UserError
    from msgan_cli.train.session import build_session
    with pytest.raises(UserError, match="reg.ndiv.samples must be at least 2"):
        build_session(compose("reg=ndiv", "reg.ndiv.samples=1"))
