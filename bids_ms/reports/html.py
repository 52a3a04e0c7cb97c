"""Building blocks of the HTML reports: the page, sections, figures, tables and notes.

Escaping by construction: every building block treats a plain :class:`str` as untrusted
text and escapes it; only :class:`markupsafe.Markup` passes through as HTML. Write trusted
fragments as ``Markup("<code>{}</code>").format(value)`` (``format`` escapes ``value``),
never as f-strings with values in them. The page itself is a Jinja2 template with
autoescape, as the nipreps reports are.

Pages are self-contained HTML5 (inline CSS, no web fonts, no scripts or styles from the
network) with figures as files beside them; a figure can be a shared template (a CSS
background) with the page's own layer over it (:func:`layered_figure`). A
Content-Security-Policy forbids inline script: the one script, which checks once the page
has loaded that every figure resolved, is a static file in a ``figures/`` folder (the
page's, or one shared by many pages), named with its SHA-256 hash. A figure
whose file is missing is replaced by a visible message, and ``<html data-figures-loaded=…
data-figures-broken=… data-errors=…>`` records the counts (the tests read them with
headless Chromium).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup
from markupsafe import escape as _escape

from .. import __url__, __version__

__all__ = [
    "Markup",
    "Section",
    "figure",
    "table",
    "note",
    "not_run",
    "definition_list",
    "layered_figure",
    "render_page",
    "write_page",
    "escape",
    "raw",
    "SCRIPT_NAME",
    "TABLE_MAX_ROWS",
]


def escape(text: object) -> Markup:
    """``text`` as HTML: escaped unless it is already :class:`~markupsafe.Markup`."""
    return _escape(text)


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
div.layers { position:relative; max-width:100%; background-size:100% 100%; background-repeat:no-repeat;
             border:1px solid #eee; }
figure div.layers img { position:absolute; max-width:none; border:0; margin:0; }
figure div.layers img.pixelated { image-rendering:pixelated; }
div.layers div.shade { position:absolute; background-size:100% 100%; mix-blend-mode:multiply;
                       pointer-events:none; }
div.layers i.line { position:absolute; background:#000; }
div.layers div.figtitle { position:absolute; left:0; right:0; transform:translateY(-50%);
                          text-align:center; font-size:15px; }
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
  // Tables with class "sortable": a click on a header sorts by that column (again: reversed);
  // numbers (thousands commas allowed) sort as numbers, n/a last.
  function key(td) {
    var t = td ? td.textContent.trim() : '';
    var n = Number(t.replace(/,/g, ''));
    return (t === '' || t === 'n/a') ? null : (isNaN(n) ? t.toLowerCase() : n);
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var dir = th.getAttribute('data-sorted') === 'asc' ? -1 : 1;
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null || y === null) { return (x === null) - (y === null); }
      if (typeof x !== typeof y) { return typeof x === 'number' ? -1 : 1; }
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute('data-sorted'); }
    th.setAttribute('data-sorted', dir === 1 ? 'asc' : 'desc');
    var frag = document.createDocumentFragment();
    for (var r = 0; r < rows.length; r++) { frag.appendChild(rows[r]); }
    body.appendChild(frag);
  }
  var tables = document.querySelectorAll('table.sortable');
  for (var t = 0; t < tables.length; t++) {
    (function (table) {
      var heads = table.tHead.rows[0].cells;
      for (var c = 0; c < heads.length; c++) {
        (function (col, th) {
          th.style.cursor = 'pointer';
          th.title = 'sort by this column';
          th.addEventListener('click', function () { sortBy(table, col, th); });
        })(c, heads[c]);
      }
    })(tables[t]);
  }
  // page.html#sort=<column>: opens sorted by that column (a link that keeps the order)
  var want = /sort=([^&]+)/.exec(window.location.hash);
  for (var u = 0; want && u < tables.length; u++) {
    var heads = tables[u].tHead.rows[0].cells;
    for (var h = 0; h < heads.length; h++) {
      if (heads[h].textContent.trim() === decodeURIComponent(want[1])) {
        sortBy(tables[u], h, heads[h]);
      }
    }
  }
})();
"""


_SCRIPT_BYTES = _CHECK_SCRIPT.encode("utf-8")
#: The figure check, written beside each page as ``figures/<SCRIPT_NAME>``; the name holds
#: the SHA-256 of its content, so a page only ever loads the script it was written with.
SCRIPT_NAME = f"bids-ms-report.{hashlib.sha256(_SCRIPT_BYTES).hexdigest()[:16]}.js"
#: No inline script (nor inline event handlers), nothing from the network: only script
#: files beside the page and images. Inline styles stay allowed (the page's own CSS).
#: (No SRI ``integrity`` attribute: Chromium blocks it on file:// pages, where reports
#: are usually opened.)
CSP = (
    "default-src 'none'; "
    "script-src 'self'; "
    "img-src 'self' data:; "
    "style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; object-src 'none'; frame-src 'none'"
)


@dataclass
class Section:
    """One section of a report: an anchor, a heading and its body (``Markup``; str is escaped)."""

    id: str
    title: str
    body: str
    ran: bool = True  # False: shown in the table of contents as not run
    blocks: list[str] = field(default_factory=list)

    def html(self) -> Markup:
        return Markup('<section id="{}">\n<h2>{}</h2>\n{}\n</section>').format(
            self.id, self.title, escape(self.body)
        )


def figure(
    src: str | Path,
    caption: str,
    *,
    alt: str | None = None,
    base: Path | None = None,
    width: int | None = None,
) -> Markup:
    """A ``<figure>`` with an image (path relative to ``base`` when given) and its caption.

    ``caption`` is text (escaped) unless it is ``Markup``; ``alt`` defaults to the
    caption's text.
    """
    rel = os.path.relpath(src, base) if base is not None else str(src)
    rel = Path(rel).as_posix()
    caption = escape(caption)
    style = Markup(' style="width:{}px"').format(int(width)) if width else ""
    return Markup(
        '<figure><img src="{}" alt="{}" loading="eager"{}><figcaption>{}</figcaption></figure>'
    ).format(rel, alt if alt is not None else caption.striptags(), style, caption)


def _pct(value: float) -> str:
    return f"{100 * float(value):.4f}%"


def layered_figure(
    src: str | Path,
    caption: str,
    *,
    base: Path,
    template: str | Path,
    size: tuple[int, int],
    box: tuple[float, float, float, float],
    width: int | None = None,
    pixelated: bool = False,
    shade: str | Path | None = None,
    title: str = "",
    title_top: float | None = None,
    lines: Sequence[tuple[str, float]] = (),
) -> Markup:
    """A figure drawn as a shared ``template`` (CSS background) with ``src`` laid over it.

    Parameters
    ----------
    src : path
        The participant's layer (an ``<img>``, checked as every figure is).
    base : Path
        Folder of the page; ``src``, ``template`` and ``shade`` are linked relative to it.
    size : (int, int)
        The template's width and height in pixels (the box keeps its aspect ratio).
    box : (left, top, width, height)
        Where ``src`` lies, as fractions of the template.
    pixelated : bool
        Scale ``src`` up without smoothing (a heat map of one pixel per cell).
    shade : path, optional
        A grey layer over ``src``, multiplied with it (shading of a surface).
    title, title_top : optional
        A title written over the template, centred on the line ``title_top`` (fraction).
    lines : sequence of ('h' or 'v', fraction)
        Black lines across ``src`` (e.g. between hemispheres), at fractions of its box.
    """

    def rel(path) -> str:
        try:  # the usual case, and ~10 times cheaper than relpath
            return Path(path).relative_to(base).as_posix()
        except ValueError:
            return Path(os.path.relpath(path, base)).as_posix()

    left, top, w, h = box
    place = Markup("left:{};top:{};width:{};height:{}").format(
        _pct(left), _pct(top), _pct(w), _pct(h)
    )
    parts = [
        Markup('<img src="{}" alt="{}" loading="eager"{} style="{}">').format(
            rel(src),
            escape(caption).striptags(),
            Markup(' class="pixelated"') if pixelated else "",
            place,
        )
    ]
    if shade is not None:
        parts.append(
            Markup('<div class="shade" style="{};background-image:url(\'{}\')"></div>').format(
                place, rel(shade)
            )
        )
    for kind, at in lines:
        if kind == "h":
            style = Markup("left:{};top:{};width:{};height:1px").format(
                _pct(left), _pct(top + h * at), _pct(w)
            )
        else:
            style = Markup("left:{};top:{};width:1px;height:{}").format(
                _pct(left + w * at), _pct(top), _pct(h)
            )
        parts.append(Markup('<i class="line" style="{}"></i>').format(style))
    if title and title_top is not None:
        parts.append(
            Markup('<div class="figtitle" style="top:{}">{}</div>').format(_pct(title_top), title)
        )
    shown = int(width or size[0])
    return Markup(
        '<figure><div class="layers" style="width:{}px;aspect-ratio:{} / {};'
        "background-image:url('{}')\">{}</div><figcaption>{}</figcaption></figure>"
    ).format(
        shown, int(size[0]), int(size[1]), rel(template), Markup("").join(parts), escape(caption)
    )


def note(text: str, *, kind: str = "") -> Markup:
    """A highlighted note (``kind``: '', 'notrun' or 'warn'); ``text`` is escaped unless ``Markup``."""
    return Markup('<div class="note {}">{}</div>').format(kind, text)


def not_run(stage: str, missing: Iterable[str], how: str = "") -> Markup:
    """The note shown in place of a stage whose outputs are absent (``how``: text or ``Markup``)."""
    files = Markup(", ").join(Markup("<code>{}</code>").format(f) for f in missing)
    return note(
        Markup("<strong>Not run:</strong> {} — no {} in <code>group/</code>. {}").format(
            stage, files, how
        ),
        kind="notrun",
    )


def _cell(value, fmt: str) -> tuple[Markup, bool]:
    """Formatted cell and whether it is text (left-aligned)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or value is pd.NA:
        return Markup("n/a"), False
    if isinstance(value, (bool, np.bool_)):
        return Markup("yes" if value else "no"), True
    if isinstance(value, (int, np.integer)):
        return escape(f"{int(value):,}"), False
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() and 1 <= abs(v) < 1e9:
            return escape(f"{int(v):,}"), False
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return escape(f"{v:.2e}"), False
        return escape(format(v, fmt)), False
    return escape(str(value)), True


#: Rows an HTML table shows at most (the first ones); the page says how many of how many,
#: and where the whole table is. Tables of 40,000 participants would make pages of tens of
#: megabytes that browsers open slowly.
TABLE_MAX_ROWS = 200


def table(
    df: pd.DataFrame | Sequence[Mapping],
    *,
    columns: Sequence[str] | None = None,
    fmt: str = ".3g",
    max_rows: int | None = TABLE_MAX_ROWS,
    flag_column: str | None = None,
    links: dict[str, str] | None = None,
    link_column: str | None = None,
    full_table: str | None = None,
) -> Markup:
    """An HTML table of ``df`` (headers and cells escaped), numbers formatted, scrolling when long.

    Parameters
    ----------
    df : pandas.DataFrame or sequence of mappings
        The rows (mappings: column → value, e.g. a few rows taken out of a table).
    columns : sequence of str, optional
        Columns to show (those present), in this order.
    max_rows : int or None
        Show the first rows only (default :data:`TABLE_MAX_ROWS`), saying how many of how
        many; None shows every row.
    full_table : str, optional
        Link (relative to the page) to the file holding the whole table, given with the
        count when rows are left out.
    flag_column : str, optional
        Boolean column whose true rows are highlighted.
    links, link_column : optional
        Cell value → URL for the cells of ``link_column``.
    """
    if isinstance(df, pd.DataFrame):
        cols = [c for c in (columns or df.columns) if c in df.columns]
        shown = df if max_rows is None else df.head(max_rows)
        records = (row for _, row in shown.iterrows())
    else:  # rows as mappings: no DataFrame to build for a row or two
        present = {c for row in df for c in row}
        cols = [c for c in (columns or (list(df[0]) if len(df) else [])) if c in present]
        records = iter(df if max_rows is None else df[:max_rows])
    head = Markup("").join(Markup('<th class="text">{}</th>').format(str(c)) for c in cols)
    rows = []
    for row in records:
        cells = []
        for c in cols:
            text, is_text = _cell(row.get(c), fmt)
            if links and c == link_column and str(row[c]) in links:
                text = Markup('<a href="{}">{}</a>').format(links[str(row[c])], text)
            cell = '<td class="text">{}</td>' if is_text else "<td>{}</td>"
            cells.append(Markup(cell).format(text))
        cls = Markup(' class="flag"') if flag_column and bool(row.get(flag_column)) else ""
        rows.append(Markup("<tr{}>{}</tr>").format(cls, Markup("").join(cells)))
    more = ""
    if max_rows is not None and len(df) > max_rows:
        where = (
            Markup('<a href="{}">{}</a>').format(full_table, full_table.rsplit("/", 1)[-1])
            if full_table
            else Markup("the TSV file")
        )
        more = Markup('<p class="lead">Showing {} of {} rows; the full table is in {}.</p>').format(
            f"{max_rows:,}", f"{len(df):,}", where
        )
    return Markup(
        '<div class="scroll"><table class="data"><thead><tr>{}</tr></thead>'
        "<tbody>{}</tbody></table></div>{}"
    ).format(head, Markup("").join(rows), more)


def definition_list(items: Iterable[tuple[str, object]]) -> Markup:
    """A two-column key/value list; keys and values are escaped unless they are ``Markup``."""
    parts = []
    for key, value in items:
        if value is None or value == "":
            continue
        shown = value if isinstance(value, Markup) else str(value)
        parts.append(Markup("<dt>{}</dt><dd>{}</dd>").format(key, shown))
    return Markup('<dl class="kv">{}</dl>').format(Markup("").join(parts))


def raw(text: str) -> Markup:
    """Mark ``text``, written by bids-ms itself (no user values in it), as HTML."""
    return Markup(text)


_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="bids-ms {{ version }}">
<title>{{ title }}</title>
<link rel="icon" href="data:,">
<style>{{ css }}</style>
<script src="{{ script_src }}" defer></script>
</head>
<body>
<header class="top"><h1>{{ title }}</h1><p>{{ subtitle }}</p></header>
<nav class="toc">{% for s in sections %}
<a href="#{{ s.id }}"{% if not s.ran %} class="missing"{% endif %}>{{ s.title }}</a>{% endfor %}
</nav>
<main>
{% for s in sections %}{{ s.html() }}
{% endfor %}</main>
<footer>Made by <a href="{{ url }}">bids-ms</a> {{ version }} on {{ stamp }}
from the derivatives in this folder; rebuild it with <code>--reports-only</code>.</footer>
</body>
</html>
"""
)


def render_page(
    title: str,
    subtitle: str,
    sections: Sequence[Section],
    *,
    script_src: str = "figures/" + SCRIPT_NAME,
) -> str:
    """The whole HTML page: header, table of contents, sections, footer.

    ``title`` and ``subtitle`` are escaped unless ``Markup``; ``script_src`` is where the
    figure check is, relative to the page (see :func:`write_page`).
    """
    return _PAGE.render(
        csp=CSP,
        version=__version__,
        title=title,
        subtitle=subtitle,
        css=Markup(_CSS),
        script_src=script_src,
        sections=sections,
        url=__url__,
        stamp=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_page(
    path: Path, title: str, subtitle: str, sections: Sequence[Section], *, assets: Path
) -> Path:
    """Write the page to ``path`` and its figure check to ``assets/<SCRIPT_NAME>``, atomically.

    The script is written first, so a page on disk always finds it.
    """
    from ..io.derivatives import atomic_write_bytes, atomic_write_text

    script = Path(assets) / SCRIPT_NAME
    if not script.is_file() or script.read_bytes() != _SCRIPT_BYTES:
        atomic_write_bytes(script, _SCRIPT_BYTES)
    src = Path(os.path.relpath(script, Path(path).parent)).as_posix()
    atomic_write_text(path, render_page(title, subtitle, sections, script_src=src))
    return Path(path)
