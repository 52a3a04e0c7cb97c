"""The figures of the participant pages, as layers: a shared template and a small overlay.

Everything that is the same on every participant's page (axes, region labels, colour bars,
the group's 5–95 % bands, the shading of the cortical surface) is drawn once per output
folder, by matplotlib, into static files in ``<out>/figures/`` named with the SHA-256 of
their content. A participant's page shows each template as the CSS background of a box
and lays the participant's own layer over it, as an ``<img>``:

* the MS matrix: a 68 × 68 pixel PNG (one pixel per cell, coloured with the colour map's
  table as ``imshow`` colours it), scaled up by the browser without smoothing;
* the feature profile: the participant's dots and circles, a paletted PNG with
  transparency the size of the plot area (markers stamped from images of one marker drawn
  by matplotlib);
* regional MS on the surface: the views as a paletted PNG (one palette entry per region,
  the participant's colours); the shading and region borders are a shared grey layer
  multiplied over it (CSS ``mix-blend-mode: multiply``).

Drawing a page's figures this way costs about a millisecond, instead of the ~50 ms of
drawing and encoding three whole figures (``bench/bench_reports.py``). The overlays are
encoded by Pillow (matplotlib's own PNG writer), paletted images without row filters.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from PIL import Image  # noqa: E402

from ..atlas import DK_REGIONS, DK_STRUCTURES  # noqa: E402
from ..io.derivatives import atomic_write_bytes  # noqa: E402
from . import surface as S  # noqa: E402
from .figures import CASE_COLOUR, STYLE, _short  # noqa: E402

__all__ = ["Layer", "PageFigures", "draw_page_templates", "png_bytes"]

#: The feature profile's markers: the participant's values, and those with a large |robust z|.
_DOT = {"s": 9, "color": "#222"}
_CIRCLE = {"s": 28, "facecolor": "none", "edgecolor": CASE_COLOUR, "lw": 1.4}
#: Opacity levels of a marker's antialiased edge in the paletted overlay (plus "none").
_LEVELS = 15
#: The MS matrix's colour map (limits -1 and 1, as the template's colour bar).
_MATRIX_CMAP = matplotlib.colormaps["RdBu_r"]
#: The surface map's colour map and colour-bar label on the pages.
_SURFACE_CMAP = "viridis"


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as PNG bytes (Pillow's encoder, fastest deflate level)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _figure_png(fig: plt.Figure) -> bytes:
    """The figure's canvas as drawn (no tight box: the pixel layout is the one measured)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


class PaletteSwap:
    """PNGs of one fixed index image under different palettes, without re-encoding it.

    The image is encoded once, by Pillow; each palette then only replaces the ``PLTE``
    chunk (length, type, data, CRC-32, as the PNG specification lays chunks out). For the
    surface views of the pages (2332 × 392 pixels) Pillow takes 5–6 ms of CPU per
    participant and this ~0.02 ms; the page's whole surface overlay, file write included,
    ~1 ms (``bench/bench_reports.py``, "regional map" line).

    Parameters
    ----------
    index : ndarray of uint8, shape (height, width)
        Palette entry of each pixel; entry 0 is transparent.
    """

    def __init__(self, index: np.ndarray) -> None:
        image = Image.fromarray(np.ascontiguousarray(index, dtype=np.uint8), mode="L")
        image.putpalette([0, 0, 0] * (int(index.max()) + 1))
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1, compress_type=3, transparency=0)
        data = buf.getvalue()
        pos = 8
        while pos < len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            if data[pos + 4 : pos + 8] == b"PLTE":
                self._head, self._tail = data[:pos], data[pos + 12 + length :]
                break
            pos += 12 + length
        else:  # pragma: no cover - Pillow always writes PLTE for mode P
            raise RuntimeError("no PLTE chunk in Pillow's PNG")
        self.entries = int(index.max()) + 1

    def png(self, colours: np.ndarray) -> bytes:
        """The PNG with ``colours`` (entries × 3, uint8) as its palette."""
        table = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
        if len(table) < self.entries:
            raise ValueError(f"expected {self.entries} colours, got {len(table)}")
        body = b"PLTE" + table.tobytes()
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        return self._head + chunk + self._tail


@dataclass(frozen=True)
class Layer:
    """Where a participant's overlay lies on a template, and the template itself.

    ``size`` is the template's (width, height) in pixels; ``box`` the overlay's (left, top,
    width, height) as fractions of it; ``template`` (and ``shade``, a layer multiplied over
    the overlay) are file names in the shared folder.
    """

    template: str
    size: tuple[int, int]
    box: tuple[float, float, float, float]
    shade: str | None = None
    title_top: float | None = None  # where the title's centre line lies (fraction)
    lines: tuple[tuple[str, float], ...] = ()  # ('h' | 'v', fraction of the box)


def _save_shared(folder: Path, stem: str, data: bytes) -> str:
    name = f"{stem}.{hashlib.sha256(data).hexdigest()[:16]}.png"
    path = Path(folder) / name
    if not (path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data):
        atomic_write_bytes(path, data)
    return name


def _marker_stamp(
    style: Mapping, *, dpi: float, size: int = 21
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scatter marker as matplotlib draws it: the pixels it covers and their opacity.

    Returns
    -------
    rows, cols : ndarray of int
        Each covered pixel relative to the marker's position (rows down).
    levels : ndarray of uint8
        Its opacity, 1 to :data:`_LEVELS` (opaque).
    """
    fig = plt.figure(figsize=(size / dpi, size / dpi), dpi=dpi)
    fig.patch.set_alpha(0.0)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    centre = size // 2
    ax.set_xlim(-centre, size - centre)  # the marker at (0, 0) is drawn at pixel corner
    ax.set_ylim(-centre, size - centre)  # (centre, centre) of the canvas
    ax.scatter([0], [0], **style)
    fig.canvas.draw()
    alpha = np.asarray(fig.canvas.buffer_rgba())[..., 3].astype(float)
    plt.close(fig)
    rows, cols = np.nonzero(alpha)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    levels = np.round(alpha[r0:r1, c0:c1] / 255 * _LEVELS).astype(np.uint8)
    rows, cols = np.nonzero(levels)
    return (
        rows + int(r0 - (size - centre)),
        cols + int(c0 - centre),
        levels[rows, cols],
    )


#: The 68 regions in canonical order, as the derivatives' tables are indexed.
_ORDER = pd.Index(DK_REGIONS)


def _in_order(table: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``table``'s ``columns`` (NaN where absent) for the 68 regions in canonical order."""
    if table.index.equals(_ORDER) and all(c in table.columns for c in columns):
        return table[columns].to_numpy(dtype=float)
    return table.reindex(index=_ORDER, columns=columns).to_numpy(dtype=float)


def _palette(colours: np.ndarray) -> list[int]:
    return np.asarray(colours, dtype=np.uint8).reshape(-1).tolist()


#: The profile overlay's palette: 0 transparent, then the dot's colour and the circle's,
#: each at :data:`_LEVELS` opacities (the antialiased edges of the markers).
_PROFILE_PALETTE = _palette(
    np.round(
        np.vstack(
            [
                [255, 255, 255],
                np.tile(np.array(matplotlib.colors.to_rgb(_DOT["color"])) * 255, (_LEVELS, 1)),
                np.tile(np.array(matplotlib.colors.to_rgb(CASE_COLOUR)) * 255, (_LEVELS, 1)),
            ]
        )
    )
)
_PROFILE_ALPHA = bytes([0] + [round(255 * k / _LEVELS) for k in range(1, _LEVELS + 1)] * 2)


@dataclass
class PageFigures:
    """The layout of the shared templates, and the drawing of each participant's overlays.

    Made by :func:`draw_page_templates` (in the process that writes the templates); plain
    data, so that worker processes receive it as it is.
    """

    folder: Path
    measures: list[str]
    threshold: float
    matrix: Layer
    profile: Layer
    surface: Layer
    profile_axes: list[dict]
    profile_origin: tuple[int, int]  # (row, col) of the overlay's first pixel
    profile_shape: tuple[int, int]
    dot: tuple
    circle: tuple
    surface_png: PaletteSwap  # the views: palette entry of each pixel (0: none)
    ms_norm: tuple[float, float]

    # ---- per participant
    def ms_matrix(self, matrix: pd.DataFrame, path: str | Path) -> Path:
        """The 68 × 68 MS matrix, one pixel per cell, coloured as ``imshow`` colours it."""
        if not (matrix.index.equals(_ORDER) and matrix.columns.equals(_ORDER)):
            matrix = matrix.reindex(index=_ORDER, columns=_ORDER)
        values = matrix.to_numpy(dtype=float)
        rgba = _MATRIX_CMAP(np.clip((values + 1) / 2, 0, 1), bytes=True)  # Normalize(-1, 1)
        rgb = np.where(np.isfinite(values)[..., None], rgba[..., :3], 255).astype(np.uint8)
        atomic_write_bytes(path, png_bytes(Image.fromarray(rgb, mode="RGB")))
        return Path(path)

    def feature_profile(
        self, values: pd.DataFrame, path: str | Path, *, robust_z: pd.DataFrame | None = None
    ) -> Path:
        """The participant's dots (and circles where |robust z| > threshold) over the bands.

        Parameters
        ----------
        values : pandas.DataFrame
            68 regions × the measures of the template.
        robust_z : pandas.DataFrame, optional
            The participant's robust z per region and measure; |z| > threshold is circled.
        """
        index = np.zeros(self.profile_shape, dtype=np.uint8)
        own_all = _in_order(values, self.measures)
        z_all = None if robust_z is None else _in_order(robust_z, self.measures)
        for k, axis in enumerate(self.profile_axes):
            own = own_all[:, k]
            shown = np.isfinite(own)
            x = axis["x"]
            y = axis["a"] * own + axis["b"]
            self._stamp(index, x[shown], y[shown], self.dot, axis["box"], offset=0)
            if z_all is not None:
                out = shown & (np.abs(np.nan_to_num(z_all[:, k])) > self.threshold)
                self._stamp(index, x[out], y[out], self.circle, axis["box"], offset=_LEVELS)
        image = Image.fromarray(index, mode="L")
        image.putpalette(_PROFILE_PALETTE)
        buf = io.BytesIO()
        image.save(
            buf, format="PNG", compress_level=1, compress_type=3, transparency=_PROFILE_ALPHA
        )
        atomic_write_bytes(path, buf.getvalue())
        return Path(path)

    def _stamp(self, index, x, y, stamp, box, *, offset: int) -> None:
        """Stamp a marker at each pixel position (x right, y down, in template pixels).

        Like matplotlib's Agg renderer, positions are rounded to whole pixels and markers
        are clipped to their axes ``box`` (top, bottom, left, right). Where markers meet,
        the more opaque pixel wins (the profile's markers are one region apart).
        """
        if not len(x):
            return
        d_row, d_col, level = stamp
        r_org, c_org = self.profile_origin
        rows = np.floor(y + 0.5).astype(np.intp)[:, None] + d_row  # (markers, stamp pixels)
        cols = np.floor(x + 0.5).astype(np.intp)[:, None] + d_col
        top, bottom, left, right = box
        inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
        rows, cols = rows[inside] - r_org, cols[inside] - c_org
        level = np.broadcast_to(level, inside.shape)[inside]
        current = index[rows, cols]
        current_level = np.where(current > _LEVELS, current - _LEVELS, current)
        wins = level >= current_level
        index[rows[wins], cols[wins]] = level[wins] + offset

    def regional_map(self, regional: pd.Series, path: str | Path) -> Path:
        """Regional MS: the views, each region in the participant's colour (paletted PNG)."""
        values = regional.reindex(list(DK_REGIONS)).to_numpy(dtype=float)
        colours = np.empty((len(DK_REGIONS) + 2, 3))
        colours[0] = 1.0  # outside the brain: transparent
        finite = np.isfinite(values)
        cmap = plt.get_cmap(_SURFACE_CMAP)
        shown = colours[1:-1]
        shown[finite] = cmap(Normalize(*self.ms_norm)(values[finite]))[:, :3]
        shown[~finite] = (0.9, 0.9, 0.9)
        colours[-1] = S._MEDIAL_COLOUR
        atomic_write_bytes(path, self.surface_png.png(np.round(colours * 255)))
        return Path(path)


def _matrix_template(folder: Path) -> Layer:
    fig = plt.figure(figsize=(7.6, 7.0), dpi=130)
    ax = fig.add_axes((0.19, 0.17, 0.64, 0.69))
    cax = fig.add_axes((0.85, 0.17, 0.025, 0.69))
    n = len(DK_REGIONS)
    im = ax.imshow(np.full((n, n), np.nan), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [_short(r) for r in DK_REGIONS]
    ax.set_xticks(range(n), labels, rotation=90, fontsize=4.5)
    ax.set_yticks(range(n), labels, fontsize=4.5)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.colorbar(im, cax=cax).set_label("MS (Pearson r of z-scored features)")
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    (left, bottom), (right, top) = ax.transData.transform([(-0.5, n - 0.5), (n - 0.5, -0.5)])
    box = (left / width, 1 - top / height, (right - left) / width, (top - bottom) / height)
    half = len(DK_STRUCTURES) / n
    name = _save_shared(folder, "bids-ms-page-msmatrix", _figure_png(fig))
    return Layer(name, (width, height), box, title_top=0.07, lines=(("h", half), ("v", half)))


def _profile_template(folder: Path, group: Mapping[str, np.ndarray], threshold: float):
    measures = list(group)
    height_in = 1.45 * len(measures) + 1.6
    fig, axes = plt.subplots(len(measures), 1, figsize=(10, height_in), sharex=True, dpi=110)
    fig.subplots_adjust(
        left=0.075, right=0.99, top=1 - 0.4 / height_in, bottom=1.15 / height_in, hspace=0.12
    )
    axes = np.atleast_1d(axes)
    x = np.arange(len(DK_REGIONS))
    for ax, measure in zip(axes, measures, strict=True):
        grp = np.asarray(group[measure], dtype=float)
        lo, med, hi = np.nanpercentile(grp, [5, 50, 95], axis=0)
        ax.fill_between(x, lo, hi, color="#ccc", step="mid")
        ax.plot(x, med, color="#777", lw=0.8, drawstyle="steps-mid")
        vmin, vmax = float(np.nanmin(grp)), float(np.nanmax(grp))
        pad = 0.05 * (vmax - vmin or 1.0)
        ax.set_ylim(vmin - pad, vmax + pad)  # every participant's values fit
        ax.axvline(len(DK_STRUCTURES) - 0.5, color="black", lw=0.6)
        ax.set_ylabel(measure, fontsize=8)
        ax.tick_params(labelsize=7)
    handles = [
        plt.Rectangle((0, 0), 1, 1, color="#ccc", label="all participants 5–95 %"),
        plt.Line2D([], [], color="#777", lw=0.8, label="median"),
        plt.Line2D([], [], marker="o", ls="", ms=4, color="#222", label="this participant"),
        plt.Line2D(
            [],
            [],
            marker="o",
            ls="",
            ms=6,
            mfc="none",
            mec=CASE_COLOUR,
            mew=1.4,
            label=f"|robust z| > {threshold:g}",
        ),
    ]
    axes[0].legend(
        handles=handles,
        ncol=4,
        fontsize=7,
        frameon=False,
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
    )
    axes[-1].set_xticks(x, [_short(r) for r in DK_REGIONS], rotation=90, fontsize=5.5)
    axes[-1].set_xlim(-0.8, len(DK_REGIONS) - 0.2)
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    info = []
    for ax in axes:
        # Data → pixels (rows down) is affine on linear axes: two points give it.
        (x0, y0), (x1, y1) = ax.transData.transform([(0.0, 0.0), (1.0, 1.0)])
        b = ax.bbox
        info.append(
            {
                "x": x0 + (x1 - x0) * x.astype(float),
                "a": -(y1 - y0),
                "b": height - y0,
                "box": tuple(int(round(v)) for v in (height - b.y1, height - b.y0, b.x0, b.x1)),
            }
        )
    top = min(i["box"][0] for i in info)
    bottom = max(i["box"][1] for i in info)
    left = min(i["box"][2] for i in info)
    right = max(i["box"][3] for i in info)
    box = (left / width, top / height, (right - left) / width, (bottom - top) / height)
    dot, circle = _marker_stamp(_DOT, dpi=fig.dpi), _marker_stamp(_CIRCLE, dpi=fig.dpi)
    name = _save_shared(folder, "bids-ms-page-profile", _figure_png(fig))
    layer = Layer(name, (width, height), box)
    return layer, info, (top, left), (bottom - top, right - left), dot, circle


def _surface_template(folder: Path, ms_range: tuple[float, float]):
    views = S.VIEWS
    colormap = plt.get_cmap(_SURFACE_CMAP)
    template = S._map_template(
        views,
        colormap,
        Normalize(*ms_range),
        titled=True,
        label="regional MS",
        missing_colour=(0.9, 0.9, 0.9),
        missing_label=None,
    )
    fig = template["fig"]
    width, height = fig.canvas.get_width_height()
    shapes = [S.render_view(v)[0].shape for v in views]
    origins = template["origins"]
    top = min(r for r, _ in origins)
    bottom = max(r + s[0] for (r, _), s in zip(origins, shapes, strict=True))
    left = min(c for _, c in origins)
    right = max(c + s[1] for (_, c), s in zip(origins, shapes, strict=True))
    index = np.zeros((bottom - top, right - left), dtype=np.uint8)
    shade = np.full(index.shape, 255, dtype=np.uint8)
    n = len(DK_REGIONS)
    for view, (row, col), shape in zip(views, origins, shapes, strict=True):
        labels, _ = S.render_view(view)
        key, levels = S._view_layers(view)
        # palette entries: 0 outside, 1..68 the regions, 69 the medial wall
        entry = np.where(labels >= 0, labels + 1, np.where(labels == S._MEDIAL, n + 1, 0))
        rows = slice(row - top, row - top + shape[0])
        cols = slice(col - left, col - left + shape[1])
        index[rows, cols] = entry
        factor = levels[key % len(levels)]  # shading × darker borders; 1 outside
        shade[rows, cols] = np.round(factor * 255).astype(np.uint8)
    box = (left / width, top / height, (right - left) / width, (bottom - top) / height)
    shade_name = _save_shared(
        folder, "bids-ms-page-surface-shade", png_bytes(Image.fromarray(shade))
    )
    return index, box, (width, height), shade_name, fig


def draw_page_templates(
    group: Mapping[str, np.ndarray],
    folder: str | Path,
    *,
    threshold: float,
    ms_range: tuple[float, float],
) -> PageFigures:
    """Draw the templates of the participant pages into ``folder`` (once per output folder).

    Parameters
    ----------
    group : mapping of str to ndarray
        Measure (features and ``ms``) → (participants, 68) values of all participants.
    folder : path-like
        The shared folder (``<out>/figures``); files are named by their content's hash, so
        pages written with other group data keep their own templates.
    threshold : float
        |robust z| above which a participant's value is circled in the profile.
    ms_range : (float, float)
        The colour limits of regional MS on the surface (the same on every page).

    Returns
    -------
    PageFigures
    """
    folder = Path(folder)
    with matplotlib.rc_context(STYLE):
        matrix = _matrix_template(folder)
        profile, info, origin, shape, dot, circle = _profile_template(folder, group, threshold)
        index, box, size, shade_name, fig = _surface_template(folder, ms_range)
        surface_name = _save_shared(folder, "bids-ms-page-surface", _figure_png(fig))
    title_top = (10 + 0.5 * 22 / 72 * 100) / size[1]  # the title's middle (22 pt, 100 dpi)
    return PageFigures(
        folder=folder,
        measures=list(group),
        threshold=threshold,
        matrix=matrix,
        profile=profile,
        surface=Layer(surface_name, size, box, shade=shade_name, title_top=title_top),
        profile_axes=info,
        profile_origin=origin,
        profile_shape=shape,
        dot=dot,
        circle=circle,
        surface_png=PaletteSwap(index),
        ms_norm=(float(ms_range[0]), float(ms_range[1])),
    )
