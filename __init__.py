"""imagina: imagination-driven data augmentation for small labeled datasets."""

__version__ = "0.1.0"
