"""Datasets: the source registry, downloads, and the one prepared format."""
