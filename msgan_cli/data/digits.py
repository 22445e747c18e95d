"""The UCI handwritten digits that ship inside scikit-learn: 1,797 real 8x8 images, 10 classes.

The embedded default: no download, trains in minutes on a CPU. Upsampled (bilinear) to
`resolution` so the image models see a DCGAN-sized input; split with a fixed seed because the
data ships without a test split.
"""
import torch

from msgan_cli.core.registry import register_dataset
from msgan_cli.data.base import Data, TensorSplit, random_split, resize_images


@register_dataset("digits")
def load_digits(cfg) -> Data:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # Pixel values are 0..16 in the UCI data.
    images = (torch.from_numpy(bunch.images).float() * (255.0 / 16.0)).round().to(torch.uint8)[:, None]
    images = resize_images(images, cfg.resolution)
    labels = torch.from_numpy(bunch.target).long()
    train, test = random_split(len(images), cfg.test_fraction, cfg.split_seed)
    return Data(
        name="digits", kind="image",
        train=TensorSplit(images[train], labels[train]), test=TensorSplit(images[test], labels[test]),
        num_classes=10, label_kind="class", shape=tuple(images.shape[1:]),
        class_names=tuple(str(d) for d in range(10)),
    )
