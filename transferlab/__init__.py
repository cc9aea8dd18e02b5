"""transferlab: the deep-learning-for-images study as a reproducible DVC pipeline."""

__version__ = "0.1.0"
