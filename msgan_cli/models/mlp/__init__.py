"""`model=mlp` (PacGAN setup) and `model=mlp_unrolled` (Unrolled GAN setup): the 2D GAN of
METHODS.md 6.1. Unconditional by default: the mixtures' labels are modes for evaluation."""
from msgan_cli.data import Data
from msgan_cli.errors import UserError
from msgan_cli.models import register_model
from msgan_cli.models.adversarial import AdversarialRecipe
from msgan_cli.models.base import one_hot, resolve_num_classes
from msgan_cli.models.mlp.networks import ACTIVATIONS, MLPDiscriminator, MLPGenerator


@register_model("mlp")
class MLPGAN(AdversarialRecipe):
    def __init__(self, cfg, data: Data):
        super().__init__(cfg, data)
        if data.kind != "points":
            raise UserError(f"model=mlp is the 2D GAN; dataset '{data.name}' holds images: use model=dcgan.")
        for net in (cfg.generator, cfg.discriminator):
            if net.activation not in ACTIVATIONS:
                raise UserError(f"Unknown activation '{net.activation}'; available: {', '.join(ACTIVATIONS)}.")
        if cfg.nz < 1:
            raise UserError("model.nz must be at least 1 for the 2D GAN (it has no other input).")
        self.num_classes = resolve_num_classes(cfg.conditional, data, "mlp")
        self.latent_dim = cfg.nz
        g, d = cfg.generator, cfg.discriminator
        self.generator = MLPGenerator(cfg.nz, self.num_classes, data.shape[0], g.hidden, g.layers,
                                      g.activation, g.batchnorm)
        self.discriminator = MLPDiscriminator(data.shape[0], self.num_classes, d.hidden, d.layers,
                                              d.activation, d.maxout_pieces)

    def generate(self, z, labels):
        return self.generator(z, one_hot(labels, self.num_classes, z))

    def discriminate(self, x, labels):
        return self.discriminator(x, one_hot(labels, self.num_classes, x))
