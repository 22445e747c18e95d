"""`model=dcgan`: the (conditional) DCGAN of the MSGAN CIFAR-10 experiment (docs/methods.md#dcgan)."""
from msgan_cli.core.registry import register_model
from msgan_cli.data import Data
from msgan_cli.errors import UserError
from msgan_cli.models.adversarial import AdversarialRecipe
from msgan_cli.models.base import resolve_num_classes
from msgan_cli.models.dcgan.networks import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights


@register_model("dcgan")
class DCGAN(AdversarialRecipe):
    """One-hot label into G (concatenated to z) and D (constant maps beside the image); BCE; Adam.
    Unconditional when the dataset has no class labels (or model.conditional=false)."""

    def __init__(self, cfg, data: Data):
        super().__init__(cfg, data)
        if data.kind != "image":
            raise UserError(f"model=dcgan needs an image dataset; '{data.name}' holds 2D points: use model=mlp.")
        channels, height, width = data.shape
        if height != width or height != cfg.resolution:
            raise UserError(
                f"model.resolution={cfg.resolution} but dataset '{data.name}' gives {height}x{width} images: "
                f"set dataset.resolution={cfg.resolution} or model.resolution={height}.")
        self.num_classes = resolve_num_classes(cfg.conditional, data, "dcgan")
        self.condition_kind = "class" if self.num_classes else None
        self.latent_dim = cfg.nz
        if self.latent_dim == 0 and not self.conditional:
            raise UserError("model.nz=0 leaves an unconditional DCGAN with no input at all: set model.nz > 0.")
        self.generator = DCGANGenerator(cfg.nz, self.num_classes, channels, cfg.width, cfg.resolution)
        init_dcgan_weights(self.generator)
        self.discriminator = self.build_discriminator()

    def build_discriminator(self, pack: int = 1) -> DCGANDiscriminator:
        channels = self.sample_shape[0]
        net = DCGANDiscriminator(self.num_classes * pack, channels * pack, self.cfg.width, self.cfg.resolution)
        init_dcgan_weights(net)
        return net

    def build_encoder(self) -> DCGANDiscriminator:
        net = DCGANDiscriminator(0, self.sample_shape[0], self.cfg.width, self.cfg.resolution, outputs=self.latent_dim)
        init_dcgan_weights(net)
        return net
