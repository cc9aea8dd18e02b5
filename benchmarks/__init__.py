"""Benchmarks: measured, side-by-side figures with their targets (``python -m benchmarks``)."""
