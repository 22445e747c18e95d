"""The diversity penalty against hand-computed values (docs/methods.md#dpm)."""
import math

import pytest
import torch

from conftest import compose, tensorboard_tags, train_run
from msgan_cli.errors import UserError
from msgan_cli.regularizers.dpm import diversity_penalty, normalized_gram
from msgan_cli.train.session import build_session


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_normalized_gram_known_values():
    x = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    gram = normalized_gram(x, s=5.0)
    # cosines: x0.x1 = 0, x0.x2 = -1, self = 1
    expected = [[sigmoid(5), 0.5, sigmoid(-5)], [0.5, sigmoid(5), 0.5], [sigmoid(-5), 0.5, sigmoid(5)]]
    assert gram.tolist() == [pytest.approx(row, abs=1e-6) for row in expected]


def test_penalty_is_large_for_similar_features_from_dissimilar_latents():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])              # orthogonal latents: NGM off-diagonal 0.5
    collapsed = torch.tensor([[1.0, 1.0], [1.0, 1.0]])       # identical features: NGM all sigmoid(5)
    diverse = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s5 = sigmoid(5)
    # (1/4) * (2 * s5 / s5 + 2 * s5 / 0.5) and (1/4) * (2 * s5 / s5 + 2 * 0.5 / 0.5)
    assert diversity_penalty(collapsed, z, eps=0).item() == pytest.approx((2 + 4 * s5) / 4)
    assert diversity_penalty(diverse, z, eps=0).item() == pytest.approx(1.0)


@pytest.mark.parametrize("model,dataset,layer", [("dcgan", "digits", "null"), ("dcgan", "digits", "features.2"),
                                                 ("mlp", "ring8", "null")])
def test_dpm_trains_and_logs(tmp_path, model, dataset, layer):
    train_run(tmp_path, f"model={model}", f"dataset={dataset}", "reg=[dpm,ms]", f"reg.dpm.layer={layer}")
    assert {"Loss/G/dpm", "Diag/dpm/feature_similarity", "Diag/dpm/latent_similarity"} <= tensorboard_tags(tmp_path)["scalars"]


def test_unknown_feature_layer_lists_the_choices():
    with pytest.raises(UserError, match="features.0"):
        build_session(compose("reg=dpm", "reg.dpm.layer=nowhere"))
