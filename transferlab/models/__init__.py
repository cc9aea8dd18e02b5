"""Backbones: the registry, weights, cut points, and the small VGG the pipeline pretrains."""
