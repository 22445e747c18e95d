"""msgan: config-driven experiments for conditional GANs and the regularisers that cure mode collapse."""

__version__ = "0.1.0"
