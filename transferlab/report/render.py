"""Render report sections to Markdown and to one self-contained HTML file."""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from transferlab.report.model import Figure, Section, Table, Text


def _fmt(value) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def _integer_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns holding only whole numbers (ints that pandas widened for a missing cell) as ints.

    A table built from rows that lack some columns (extraction dims of mixed backbones) gets
    NaN there, and pandas stores the column's ints as floats: they would print as ``3,136.0``.
    """
    frame = frame.copy()
    for col in frame.columns:
        values = frame[col]
        if pd.api.types.is_float_dtype(values) and values.notna().any():
            present = values.dropna()
            if (present == present.round()).all() and present.abs().max() < 2**53:
                frame[col] = values.astype("Int64")
    return frame


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    rows = _integer_columns(frame).astype(object).itertuples(index=False)
    return [[_fmt(int(v) if isinstance(v, np.integer) else v) for v in row] for row in rows]


def table_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table; highlighted rows in bold."""
    header = [str(c) for c in table.frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for i, row in enumerate(_cells(table.frame)):
        if i in table.highlight:
            row = [f"**{c}**" if c else c for c in row]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    text = "\n".join(lines)
    return f"{text}\n\n_{table.caption}_" if table.caption else text


def to_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Text):
                out.append(block.markdown)
            elif isinstance(block, Table):
                out.append(table_markdown(block))
            elif isinstance(block, Figure):
                out.append(f"![{block.caption}]({block.path})")
                if block.caption:
                    out.append(f"\n_{block.caption}_")
            out.append("")
    return "\n".join(out)


def _inline_markdown(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"\*([^*]+)\*", r"<i>\1</i>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', text)


def _text_html(markdown: str) -> str:
    paragraphs = [p for p in markdown.split("\n\n") if p.strip()]
    parts = []
    for para in paragraphs:
        lines = para.splitlines()
        if all(line.lstrip().startswith(("- ", "* ")) for line in lines):
            items = "".join(f"<li>{_inline_markdown(line.lstrip()[2:])}</li>" for line in lines)
            parts.append(f"<ul>{items}</ul>")
        else:
            parts.append(f"<p>{_inline_markdown(' '.join(lines))}</p>")
    return "\n".join(parts)


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.frame.columns)
    rows = []
    for i, row in enumerate(_cells(table.frame)):
        cls = ' class="best"' if i in table.highlight else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figure_html(fig: Figure, reports_dir: Path) -> str:
    path = reports_dir / fig.path
    if not path.is_file():
        return f"<p><i>missing figure {html.escape(fig.path)}</i></p>"
    data = base64.b64encode(path.read_bytes()).decode()
    caption = f"<figcaption>{html.escape(fig.caption)}</figcaption>" if fig.caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(fig.caption)}">{caption}</figure>'


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} tr.best td{font-weight:bold;background:#eef7ee}
caption{caption-side:bottom;font-style:italic;padding-top:4px;text-align:left}
figure{margin:1em 0} img{max-width:100%} code{background:#f5f5f5;padding:0 3px}
"""


def to_html(title: str, sections: list[Section], reports_dir: Path) -> str:
    """One HTML file with figures embedded as data URIs (opens anywhere, no folder needed)."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    toc = "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections))
    body.append(f"<ul>{toc}</ul>")
    for i, section in enumerate(sections):
        body.append(f'<h2 id="s{i}">{html.escape(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Text):
                body.append(_text_html(block.markdown))
            elif isinstance(block, Table):
                body.append(_table_html(block))
            elif isinstance(block, Figure):
                body.append(_figure_html(block, reports_dir))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
