"""The generated report: Markdown + self-contained HTML built only from metrics JSON, one
section module per part of the study (``sections/``).

Stage: ``report``.
"""
