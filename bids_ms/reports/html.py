"""Building blocks of the HTML reports: the page, sections, figures, tables and notes.

Pages are self-contained HTML5 (inline CSS, no web fonts, no scripts or styles from the
network) with figures as files beside them. A small inline script checks, once the page has
loaded, that every figure resolved: a figure whose file is missing is replaced by a visible
message, and ``<html data-figures-loaded=… data-figures-broken=… data-errors=…>`` records
the counts (the tests read them with headless Chromium).
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __url__, __version__

__all__ = [
    "Section",
    "figure",
    "table",
    "note",
    "not_run",
    "definition_list",
    "render_page",
    "escape",
]

escape = html.escape

_CSS = """
:root { --fg:#1d2329; --muted:#5d6770; --line:#d9dee3; --accent:#6c3483; --warn:#b03a2e; --ok:#1e8449; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--fg); background:#fff; }
header.top { background:#2c1d3f; color:#fff; padding:18px 32px; }
header.top h1 { margin:0; font-size:22px; font-weight:600; }
header.top p { margin:4px 0 0; color:#d7cde3; font-size:13px; }
nav.toc { position:sticky; top:0; z-index:5; background:#f6f3f9; border-bottom:1px solid var(--line);
          padding:6px 32px; font-size:13px; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:14px; white-space:nowrap; }
nav.toc a.missing { color:var(--muted); }
main { max-width:1180px; margin:0 auto; padding:8px 32px 48px; }
section { border-bottom:1px solid var(--line); padding:10px 0 22px; }
h2 { font-size:19px; margin:18px 0 6px; }
h3 { font-size:16px; margin:16px 0 6px; }
p.lead { color:var(--muted); margin-top:0; }
figure { margin:14px 0; }
figure img { max-width:100%; height:auto; border:1px solid #eee; }
figure img.broken { display:none; }
figcaption { color:var(--muted); font-size:13px; margin-top:4px; max-width:980px; }
.missing-figure { color:var(--warn); border:1px dashed var(--warn); padding:8px; font-size:13px; }
table.data { border-collapse:collapse; font-size:12.5px; margin:10px 0; }
table.data th, table.data td { border-bottom:1px solid var(--line); padding:3px 8px; text-align:right; }
table.data th { background:#f6f3f9; position:sticky; top:0; }
table.data td.text, table.data th.text { text-align:left; }
table.data td { white-space:nowrap; }
table.data td.text { white-space:normal; }
table.data tr.flag td { background:#fdf0ee; }
div.scroll { max-height:420px; overflow:auto; border:1px solid var(--line); display:inline-block; max-width:100%; }
div.note { background:#f4f6f7; border-left:4px solid #95a5a6; padding:8px 12px; margin:10px 0; font-size:14px; }
div.note.notrun { border-left-color:#b7950b; background:#fcf8e8; }
div.note.warn { border-left-color:var(--warn); background:#fdf0ee; }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:2px 16px; font-size:14px; margin:8px 0; }
dl.kv dt { color:var(--muted); }
dl.kv dd { margin:0; }
.grid2 { display:grid; grid-template-columns:repeat(auto-fit,minmax(420px,1fr)); gap:8px 24px; align-items:start; }
ol.refs li { margin-bottom:4px; font-size:13.5px; }
code { background:#f4f6f7; padding:0 3px; border-radius:3px; font-size:13px; }
footer { color:var(--muted); font-size:12px; padding:16px 32px; }
.badge { display:inline-block; padding:0 7px; border-radius:9px; font-size:12px; }
.badge.flag { background:#fadbd8; color:var(--warn); }
.badge.ok { background:#d5f5e3; color:var(--ok); }
"""

# Runs after every image has loaded or failed (the load event waits for images).
_CHECK_SCRIPT = """
(function () {
  var errors = 0;
  window.addEventListener('error', function () { errors += 1; }, true);
  window.addEventListener('load', function () {
    var imgs = document.querySelectorAll('img'), ok = 0, broken = 0;
    for (var i = 0; i < imgs.length; i++) {
      var img = imgs[i];
      if (img.complete && img.naturalWidth > 0) { ok += 1; continue; }
      broken += 1;
      img.classList.add('broken');
      var msg = document.createElement('div');
      msg.className = 'missing-figure';
      msg.textContent = 'Figure file not found: ' + img.getAttribute('src') +
        ' (rebuild the report with --reports-only).';
      img.parentNode.insertBefore(msg, img);
    }
    var root = document.documentElement;
    root.setAttribute('data-figures-loaded', String(ok));
    root.setAttribute('data-figures-broken', String(broken));
    root.setAttribute('data-errors', String(errors));
  });
})();
"""


@dataclass
class Section:
    """One section of a report: an anchor, a heading and its HTML body."""

    id: str
    title: str
    body: str
    ran: bool = True  # False: shown in the table of contents as not run
    blocks: list[str] = field(default_factory=list)

    def html(self) -> str:
        return f'<section id="{escape(self.id)}">\n<h2>{escape(self.title)}</h2>\n{self.body}\n</section>'


def figure(
    src: str | Path,
    caption: str,
    *,
    alt: str | None = None,
    base: Path | None = None,
    width: int | None = None,
) -> str:
    """A ``<figure>`` with an image (path relative to ``base`` when given) and its caption."""
    rel = os.path.relpath(src, base) if base is not None else str(src)
    rel = Path(rel).as_posix()
    style = f' style="width:{width}px"' if width else ""
    return (
        f'<figure><img src="{escape(rel)}" alt="{escape(alt or caption)}" loading="eager"{style}>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def note(text: str, *, kind: str = "") -> str:
    """A highlighted note (``kind``: '', 'notrun' or 'warn'); ``text`` is HTML."""
    return f'<div class="note {escape(kind)}">{text}</div>'


def not_run(stage: str, missing: Iterable[str], how: str = "") -> str:
    """The note shown in place of a stage whose outputs are absent."""
    files = ", ".join(f"<code>{escape(f)}</code>" for f in missing)
    return note(
        f"<strong>Not run:</strong> {escape(stage)} — no {files} in <code>group/</code>. {how}",
        kind="notrun",
    )


def _cell(value, fmt: str) -> tuple[str, bool]:
    """Formatted cell and whether it is text (left-aligned)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or value is pd.NA:
        return "n/a", False
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), True
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", False
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() and 1 <= abs(v) < 1e9:
            return f"{int(v):,}", False
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.2e}", False
        return format(v, fmt), False
    return escape(str(value)), True


def table(
    df: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    fmt: str = ".3g",
    max_rows: int | None = None,
    flag_column: str | None = None,
    links: dict[str, str] | None = None,
    link_column: str | None = None,
) -> str:
    """An HTML table of ``df`` (escaped), numbers formatted, scrolling when long.

    Parameters
    ----------
    columns : sequence of str, optional
        Columns to show (those present), in this order.
    max_rows : int, optional
        Show the first rows only, saying how many were left out.
    flag_column : str, optional
        Boolean column whose true rows are highlighted.
    links, link_column : optional
        Cell value → URL for the cells of ``link_column``.
    """
    cols = [c for c in (columns or df.columns) if c in df.columns]
    shown = df if max_rows is None else df.head(max_rows)
    head = "".join(f'<th class="text">{escape(str(c))}</th>' for c in cols)
    rows = []
    for _, row in shown.iterrows():
        cells = []
        for c in cols:
            text, is_text = _cell(row[c], fmt)
            if links and c == link_column and str(row[c]) in links:
                text = f'<a href="{escape(links[str(row[c])])}">{text}</a>'
            cells.append(f'<td class="text">{text}</td>' if is_text else f"<td>{text}</td>")
        cls = ' class="flag"' if flag_column and bool(row.get(flag_column)) else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    more = ""
    if max_rows is not None and len(df) > max_rows:
        more = f'<p class="lead">Showing {max_rows} of {len(df):,} rows; the full table is in the TSV file.</p>'
    return (
        f'<div class="scroll"><table class="data"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{more}"
    )


def definition_list(items: Iterable[tuple[str, object]]) -> str:
    """A two-column key/value list; values are escaped unless they are ``Markup``-like str subclasses."""
    parts = []
    for key, value in items:
        if value is None or value == "":
            continue
        shown = value if isinstance(value, _Html) else escape(str(value))
        parts.append(f"<dt>{escape(key)}</dt><dd>{shown}</dd>")
    return f'<dl class="kv">{"".join(parts)}</dl>'


class _Html(str):
    """A string that is already HTML (not escaped again by :func:`definition_list`)."""


def raw(text: str) -> _Html:
    """Mark ``text`` as HTML for :func:`definition_list`."""
    return _Html(text)


def render_page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole HTML page: header, table of contents, sections, footer."""
    toc = "\n".join(
        f'<a href="#{escape(s.id)}"{"" if s.ran else " class=missing"}>{escape(s.title)}</a>'
        for s in sections
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(s.html() for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="bids-ms {escape(__version__)}">
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<style>{_CSS}</style>
<script>{_CHECK_SCRIPT}</script>
</head>
<body>
<header class="top"><h1>{escape(title)}</h1><p>{subtitle}</p></header>
<nav class="toc">{toc}</nav>
<main>
{body}
</main>
<footer>Made by <a href="{escape(__url__)}">bids-ms</a> {escape(__version__)} on {stamp}
from the derivatives in this folder; rebuild it with <code>--reports-only</code>.</footer>
</body>
</html>
"""
