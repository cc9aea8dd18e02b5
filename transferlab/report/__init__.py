"""The generated report: Markdown + self-contained HTML built only from metrics JSON."""
