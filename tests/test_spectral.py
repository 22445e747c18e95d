"""Spectral normalisation and SR-GAN's spectral compensation (docs/methods.md#sr-gan)."""
import pytest
import torch

from conftest import SHIPPED_REGULARIZERS, compose, state_of, tensorboard_tags, train_run
from msgan_cli.errors import UserError
from msgan_cli.regularizers import REGULARIZERS, spectral_compensate
from msgan_cli.train.session import build_session


def random_weight(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def normalised_spectrum(weight):
    s = torch.linalg.svdvals(weight.reshape(weight.shape[0], -1).double())
    return s / s[0]


def test_i_equal_one_is_spectral_normalisation():
    weight = random_weight(8, 3, 3, 3)
    s_max = torch.linalg.svdvals(weight.reshape(8, -1))[0]
    assert torch.allclose(spectral_compensate(weight, i=1), weight / s_max, atol=1e-5)


def test_static_compensation_sets_the_top_half_to_one():
    weight = random_weight(6, 10)
    before = normalised_spectrum(weight)
    after = torch.linalg.svdvals(spectral_compensate(weight).double())   # i = floor(6 / 2) = 3
    assert after[:3].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert after[3:].tolist() == pytest.approx(before[3:].tolist())      # the rest stay s_k / s_1


def test_dynamic_compensation_uses_gamma():
    weight = random_weight(4, 4)
    gamma = torch.tensor([1.0, 0.9, 0.8, 0.7])
    after = torch.linalg.svdvals(spectral_compensate(weight, i=2, gamma=gamma).double())
    assert after[:2].tolist() == pytest.approx([1.0, 0.9])
    assert after[2:].tolist() == pytest.approx(normalised_spectrum(weight)[2:].tolist())


@pytest.mark.parametrize("model,dataset", [("dcgan", "digits"), ("mlp", "ring8")])
def test_sn_normalises_every_discriminator_layer(model, dataset):
    session = build_session(compose(f"model={model}", f"dataset={dataset}", "reg=sn"))
    layers = session.recipe.discriminator_layers()
    assert layers and all(hasattr(module, "parametrizations") for _, module in layers)
    session.recipe.train()
    for _ in range(30):   # power iterations converge during forward passes in training mode
        for _, module in layers:
            module.weight
    for name, module in layers:
        sigma = torch.linalg.svdvals(module.weight.detach().reshape(module.weight.shape[0], -1))[0]
        assert sigma.item() == pytest.approx(1.0, abs=0.05), name


@pytest.mark.parametrize("model,dataset", [("dcgan", "digits"), ("mlp", "grid25")])
def test_sr_projects_every_n_discriminator_steps(tmp_path, model, dataset):
    train_run(tmp_path, f"model={model}", f"dataset={dataset}", "reg=[ms,sr]", "reg.sr.every=2",
              "trainer.max_steps=5")
    state = state_of(tmp_path)
    assert state["regularizers"]["sr"] == {"d_steps": 5, "projections": 2, "gamma": {}}
    assert "Diag/sr/projections" in tensorboard_tags(tmp_path)["scalars"]


def test_sr_projection_makes_the_top_half_one():
    session = build_session(compose("reg=sr", "reg.sr.every=1"))
    (sr,) = session.regularizers
    sr.after_phase("D", session.recipe, step=0)
    for name, module in session.recipe.discriminator_layers()[:-1]:
        original = module.parametrizations.weight.original
        s = normalised_spectrum(original)
        i = max(int(0.5 * min(original.shape[0], original[0].numel())), 1)
        assert s[:i].tolist() == pytest.approx([1.0] * i, abs=1e-4), name
    head = session.recipe.discriminator_layers()[-1][1]
    assert normalised_spectrum(head.parametrizations.weight.original)[0] == 1.0   # a 1-row head: untouched


def test_dynamic_sr_keeps_running_max_and_resumes(tmp_path):
    common = ["reg=sr", "reg.sr.mode=dynamic", "reg.sr.every=1", "eval.metrics=[]"]
    train_run(tmp_path, *common, "trainer.max_steps=2")
    gamma = state_of(tmp_path)["regularizers"]["sr"]["gamma"]
    assert set(gamma) == {"discriminator.features.0", "discriminator.features.2", "discriminator.features.5"}
    train_run(tmp_path, *common, "trainer.max_steps=4")
    assert state_of(tmp_path)["regularizers"]["sr"]["projections"] == 4


def test_sr_with_sn_is_refused():
    with pytest.raises(UserError, match="drop reg=sn"):
        build_session(compose("reg=[sn,sr]"))


def test_eval_rebuilds_spectrally_normalised_runs(tmp_path):
    from omegaconf import OmegaConf

    from msgan_cli.train.session import load_trained_session
    cfg = compose("reg=sn")
    train_run(tmp_path, "reg=sn")
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")
    session, step = load_trained_session(tmp_path, "cpu")   # keys match the parametrised D
    assert step == 4


def test_every_run_logs_the_discriminator_spectrum(tmp_path):
    train_run(tmp_path, "reg=ms")
    tags = tensorboard_tags(tmp_path)
    layer = "discriminator.features.2"
    assert f"Spectrum/{layer}/share_above_0.2" in tags["scalars"] and "Spectrum/collapsed_layers" in tags["scalars"]
    assert f"Spectrum/{layer}/curves" in tags["images"]


class FakeWriter:
    def __init__(self):
        self.scalar_log = []

    def histogram(self, *args):
        pass

    def image(self, *args):
        pass

    def scalars(self, step, values):
        self.scalar_log.append(values)


def test_monitor_warns_when_the_spectrum_collapses(caplog):
    from omegaconf import OmegaConf

    from msgan_cli.train.spectrum import SpectralMonitor
    session = build_session(compose("model=mlp", "dataset=ring8", "dataset.num_train=200", "reg=none"))
    monitor, writer = SpectralMonitor(OmegaConf.create({"threshold": 0.2, "warn_drop": 0.5})), FakeWriter()
    assert monitor.update(0, session.recipe, writer) == []
    layer_name, layer = session.recipe.discriminator_layers()[1]
    with torch.no_grad():   # collapse one layer to rank one: all but one normalised singular value ~ 0
        u, s, vh = torch.linalg.svd(layer.weight, full_matrices=False)
        layer.weight.copy_(s[0] * torch.outer(u[:, 0], vh[0]) + 1e-4 * torch.randn_like(layer.weight))
    with caplog.at_level("WARNING"):
        assert monitor.update(1, session.recipe, writer) == [layer_name]
    assert "Spectral collapse?" in caplog.text and writer.scalar_log[-1]["Spectrum/collapsed_layers"] == 1.0
    caplog.clear()
    with caplog.at_level("WARNING"):   # still collapsed at the next check: counted, not warned again
        assert monitor.update(2, session.recipe, writer) == [layer_name]
    assert "Spectral collapse?" not in caplog.text and writer.scalar_log[-1]["Spectrum/collapsed_layers"] == 1.0


@pytest.mark.parametrize("reg", [name for name in SHIPPED_REGULARIZERS if REGULARIZERS[name].needs_discriminator_layers])
def test_regularisers_on_d_weights_refuse_a_model_without_them(reg, monkeypatch):
    session = build_session(compose("reg=none"))
    monkeypatch.setattr(session.recipe, "discriminator_layers", lambda: [])
    from msgan_cli.regularizers import parse_options
    regularizer = REGULARIZERS[reg](parse_options(reg, {"enabled": True}), session.recipe)
    with pytest.raises(UserError, match=f"reg={reg} acts on the discriminator's conv/linear layers"):
        regularizer.check(session.recipe)


def test_figures_draw_what_they_are_given():
    """The 2D scatter puts generated points where they are (red pixels on their side of the real
    data), and each spectrum check is a curve of its own colour."""
    from msgan_cli.figures import scatter_figure, spectrum_figure
    real = torch.randn(400, 2, generator=torch.Generator().manual_seed(0))

    def red_share_by_half(image):
        red = (image[0] > 0.7) & (image[1] < 0.3) & (image[2] < 0.3)
        half = image.shape[2] // 2
        return red[:, :half].sum().item(), red[:, half:].sum().item()

    left, right = (scatter_figure(real, real[:100] * 0.1 + torch.tensor([dx, 0.0])) for dx in (-1.5, 1.5))
    assert red_share_by_half(left)[0] > 10 * red_share_by_half(left)[1]
    assert red_share_by_half(right)[1] > 10 * red_share_by_half(right)[0]
    one, two = spectrum_figure([torch.linspace(1, 0, 10)], 0.2, "one"), spectrum_figure(
        [torch.linspace(1, 0, 10), torch.linspace(1, 0, 10) ** 3], 0.2, "two")
    assert one.shape[0] == 3 and 0 <= one.min() and one.max() <= 1
    bluest = lambda image: ((image[2] > 0.8) & (image[0] < 0.3)).sum().item()  # noqa: E731
    reddest = lambda image: ((image[0] > 0.8) & (image[2] < 0.3)).sum().item()  # noqa: E731
    assert bluest(two) > 0 and reddest(two) > 0 and reddest(one) == 0   # the newest check is red
