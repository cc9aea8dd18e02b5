"""Datasets: the source registry, downloads, and the one prepared format.

Stage: ``prepare@<dataset>`` (the registry); every stage that reads images loads the prepared
format (``prepared.py``), and the whole-file params check validates registry entries here.
"""
