"""One module per part of the study; each exposes ``build(metrics_dir, reports_dir)``."""
