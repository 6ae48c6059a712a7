"""Images: conditional DCGAN, loaders, embedders, sanity checks, export and the reference classifier."""

from imagina.image.data import load_digits, load_image_folder, load_images, load_mnist, load_npz
from imagina.image.embed import (
    EfficientNetLiteEmbedder,
    TorchvisionEmbedder,
    default_image_embedder,
    image_embedder,
)
from imagina.image.evaluate import ImageEvalTask, ReferenceCNN
from imagina.image.modality import MODALITY, ImageModality
from imagina.image.model import ConditionalDCGAN, DCGANConfig

__all__ = [
    "MODALITY", "ConditionalDCGAN", "DCGANConfig", "EfficientNetLiteEmbedder", "ImageEvalTask", "ImageModality", "ReferenceCNN",
    "TorchvisionEmbedder", "default_image_embedder", "image_embedder", "load_digits", "load_image_folder", "load_images",
    "load_mnist", "load_npz",
]
