"""`model=mlp` (PacGAN setup) and `model=mlp_unrolled` (Unrolled GAN setup): the 2D GAN of
docs/methods.md#mlp-gan. Unconditional by default: the mixtures' labels are modes for evaluation."""
from msgan_cli.core.registry import register_model
from msgan_cli.data import Data
from msgan_cli.errors import UserError
from msgan_cli.models.adversarial import AdversarialRecipe
from msgan_cli.models.base import resolve_num_classes
from msgan_cli.models.mlp.networks import ACTIVATIONS, MLPDiscriminator, MLPGenerator


@register_model("mlp")
class MLPGAN(AdversarialRecipe):
    def __init__(self, cfg, data: Data):
        super().__init__(cfg, data)
        if data.kind != "points":
            raise UserError(f"model=mlp is the 2D GAN; dataset '{data.name}' holds images: use model=dcgan.")
        maxout = cfg.discriminator.maxout_pieces > 1   # a maxout D has no other activation
        for name, net in (("generator", cfg.generator), ("discriminator", cfg.discriminator)):
            if not (name == "discriminator" and maxout) and net.get("activation") not in ACTIVATIONS:
                raise UserError(f"model.{name}.activation must be one of {', '.join(ACTIVATIONS)} (a D without maxout, "
                                f"maxout_pieces: 1, needs one); got {net.get('activation')!r}.")
        if cfg.nz < 1:
            raise UserError("model.nz must be at least 1 for the 2D GAN (it has no other input).")
        self.num_classes = resolve_num_classes(cfg.conditional, data, "mlp")
        self.condition_kind = "class" if self.num_classes else None
        self.latent_dim = cfg.nz
        g = cfg.generator
        self.generator = MLPGenerator(cfg.nz, self.num_classes, data.shape[0], g.hidden, g.layers,
                                      g.activation, g.batchnorm)
        self.discriminator = self.build_discriminator()

    def build_discriminator(self, pack: int = 1) -> MLPDiscriminator:
        d = self.cfg.discriminator
        return MLPDiscriminator(self.sample_shape[0] * pack, self.num_classes * pack, d.hidden, d.layers,
                                d.get("activation"), d.maxout_pieces)

    def build_encoder(self) -> MLPDiscriminator:
        """E has D's architecture (PacGAN: maxout) with nz outputs and no condition."""
        d = self.cfg.discriminator
        return MLPDiscriminator(self.sample_shape[0], 0, d.hidden, d.layers, d.get("activation"), d.maxout_pieces,
                                outputs=self.latent_dim)
