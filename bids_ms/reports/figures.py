"""Figures of the bids-ms reports (matplotlib, Agg backend), one function per figure.

Every function takes tables as the derivatives hold them, draws one figure, writes it
atomically (SVG for plots, PNG for images) and returns the path. The figure numbers
refer to Martins et al. 2022, *PAIN* 163:e759.

The figures of the participant pages are in :mod:`.page_figures` (shared templates with
a small overlay per participant).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import matplotlib
import matplotlib.image

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from scipy import stats  # noqa: E402

from ..atlas import DK_REGIONS  # noqa: E402
from ..io.derivatives import atomic_write_bytes  # noqa: E402

__all__ = [
    "STYLE",
    "styled",
    "CASE_COLOUR",
    "CONTROL_COLOUR",
    "save_figure",
    "write_png",
    "draw_text",
    "plot_group_distributions",
    "plot_economo_tiles",
    "plot_hub_scatter",
    "plot_pls_scatter",
    "plot_top_genes",
    "plot_pls_components",
    "plot_enrichment_heatmap",
    "plot_correlation_bars",
    "plot_crosscohort_matrix",
    "plot_pca_scree",
    "plot_qc_overview",
    "qc_overview_figure",
    "QC_DENSITY_ABOVE",
    "format_p",
]

CASE_COLOUR = "#c0392b"
CONTROL_COLOUR = "#2471a3"
QUADRANT_COLOURS = {
    "dedifferentiation": "#e67e22",
    "hypercoupling": "#c0392b",
    "hyperdifferentiation": "#16a085",
    "decoupling": "#2471a3",
}

#: Above this many participants the plots stop drawing one dot per participant (at biobank
#: scale, 40,000 dots merge into a blot and make an SVG of megabytes): the quality overview
#: draws the unflagged ones as a density (matplotlib ``hexbin``) with the flagged ones as
#: dots on top, and Fig. 2's global MS keeps its violins and boxes.
QC_DENSITY_ABOVE = 2000

#: The look of every report figure, applied with :func:`styled` (global rcParams untouched).
STYLE = {
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",  # text stays text (searchable, sharp)
    "svg.hashsalt": "bids-ms",  # reproducible SVG ids
    "figure.dpi": 100,
}

_Fn = TypeVar("_Fn", bound=Callable)


def styled(func: _Fn) -> _Fn:
    """Run ``func`` with the report style (:data:`STYLE`) in a matplotlib ``rc_context``."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def save_figure(fig: plt.Figure, path: str | Path, *, dpi: int = 110, tight: bool = True) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix) and close it.

    ``tight=False`` keeps the figure's own layout (much faster for figures with many labels,
    such as those drawn for every participant).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fmt = path.suffix.lstrip(".").lower()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None} if fmt == "png" else None
    fig.savefig(
        buf,
        format=fmt,
        dpi=dpi,
        bbox_inches="tight" if tight else None,
        facecolor="white",
        metadata=metadata,
    )
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_png(image: np.ndarray, path: str | Path, *, dpi: float | None = None) -> Path:
    """Write ``image`` (uint8 RGB) to ``path`` as PNG, atomically (matplotlib's ``imsave``).

    Used for the surface maps of the group report (at most six per run; the participant
    pages lay small overlays on shared templates, see :mod:`.page_figures`). Measured with
    ``bench/bench_reports.py`` ("surface map PNG, matplotlib imsave"): 75–85 ms of CPU for
    a 2364 × 588 map on a loaded 2-core machine, where the hand-written "Up"-filter encoder
    used before took ~15 ms; about half a second per group report, so not worth own code.
    """
    buf = io.BytesIO()
    matplotlib.image.imsave(
        buf, np.ascontiguousarray(image), format="png", dpi=dpi or 100, metadata={"Software": None}
    )
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def format_p(p: float | None, *, name: str = "p") -> str:
    """``p = 0.012`` / ``p < 0.001`` / ``p = n/a``."""
    if p is None or not np.isfinite(p):
        return f"{name} = n/a"
    if p < 0.001:
        return f"{name} = {p:.1e}"
    return f"{name} = {p:.3f}"


def _short(region: str) -> str:
    hemi, name = region.split("_", 1)
    return f"{hemi[0].upper()} {name}"


# --------------------------------------------------------------------------- Fig. 2

#: Largest number of values a density curve (``scipy.stats.gaussian_kde``) is estimated from;
#: above it, a fixed random sample of this size. Residual regional MS of 40,000 participants
#: is 2.7 million values per group: the exact curve would cost about 10 s per group; the
#: sample's curve stays within ~2 % of the peak of the exact one (about the line's width;
#: ``tests/reports/test_reports.py::test_group_distributions_at_40000_participants``).
KDE_MAX_VALUES = 200_000


def _kde_sample(values: np.ndarray) -> np.ndarray:
    """``values`` itself up to :data:`KDE_MAX_VALUES`, else a reproducible random sample."""
    if values.size <= KDE_MAX_VALUES:
        return values
    return np.random.default_rng(0).choice(values, KDE_MAX_VALUES, replace=False)


@styled
def plot_group_distributions(
    residuals: pd.DataFrame,
    path: str | Path,
    *,
    group_column: str,
    case_label: str,
    control_label: str,
    global_stats: Mapping | None = None,
) -> Path:
    """Fig. 2: residual regional MS per group (densities) and global MS by group.

    Parameters
    ----------
    residuals : pandas.DataFrame
        ``desc-residualised_regional.tsv``: one row per participant, the group column, the
        68 regions and ``global_ms``.
    global_stats : mapping, optional
        ``desc-casecontrol_global.json`` (t, p, cohen_d, df) to annotate the test.
    """
    regions = [r for r in DK_REGIONS if r in residuals.columns]
    groups = residuals[group_column].astype(str)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1.6, 1]})
    values = residuals[regions].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (-1, 1)
    grid = np.linspace(lo, hi, 300)
    for label, colour in ((control_label, CONTROL_COLOUR), (case_label, CASE_COLOUR)):
        sel = values[(groups == str(label)).to_numpy()].ravel()
        sel = sel[np.isfinite(sel)]
        if sel.size > 2 and np.std(sel) > 0:
            dens = stats.gaussian_kde(_kde_sample(sel))(grid)
            ax1.plot(
                grid,
                dens,
                color=colour,
                lw=1.8,
                label=f"{label} (n = {int((groups == str(label)).sum())})",
            )
            ax1.fill_between(grid, dens, color=colour, alpha=0.15)
    ax1.set_xlabel("residual regional MS (covariates regressed out)")
    ax1.set_ylabel("density")
    ax1.set_title("Residual regional MS, all regions and participants")
    ax1.legend(frameon=False, fontsize=8)

    glob = residuals["global_ms"] if "global_ms" in residuals else residuals[regions].mean(axis=1)
    data, labels, colours = [], [], []
    for label, colour in ((control_label, CONTROL_COLOUR), (case_label, CASE_COLOUR)):
        sel = glob[(groups == str(label)).to_numpy()].to_numpy(dtype=float)
        data.append(sel[np.isfinite(sel)])
        labels.append(str(label))
        colours.append(colour)
    parts = ax2.violinplot(data, showextrema=False, widths=0.8)
    for body, colour in zip(parts["bodies"], colours, strict=True):
        body.set_facecolor(colour)
        body.set_alpha(0.25)
    ax2.boxplot(data, widths=0.18, showfliers=False, medianprops={"color": "black"})
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    if sum(d.size for d in data) <= QC_DENSITY_ABOVE:  # above, the violins show the density
        for i, (sel, colour) in enumerate(zip(data, colours, strict=True), start=1):
            ax2.scatter(
                i + rng.uniform(-0.12, 0.12, sel.size), sel, s=6, color=colour, alpha=0.6, lw=0
            )
    ax2.set_xticks([1, 2], labels)
    ax2.set_ylabel("residual global MS")
    title = "Global MS"
    if global_stats:
        title += (
            f"\nt({global_stats.get('df', '?')}) = {global_stats.get('t', np.nan):.2f}, "
            f"{format_p(global_stats.get('p'))}, d = {global_stats.get('cohen_d', np.nan):.2f}"
        )
    ax2.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- Fig. 4


@styled
def plot_economo_tiles(tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """Fig. 4: von Economo class effects (Cohen's d) as tiles, one row per cohort; * p < 0.05.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Cohort name → ``desc-economo_casecontrol.tsv`` (class_name, cohen_d, p, p_fdr).
    """
    names = list(tables)
    classes = list(next(iter(tables.values()))["class_name"])
    d = np.full((len(names), len(classes)), np.nan)
    p = np.full_like(d, np.nan)
    q = np.full_like(d, np.nan)
    for i, name in enumerate(names):
        tab = tables[name].set_index("class_name")
        for j, cls in enumerate(classes):
            if cls in tab.index:
                d[i, j] = tab.at[cls, "cohen_d"]
                p[i, j] = tab.at[cls, "p"]
                q[i, j] = tab.at[cls, "p_fdr"] if "p_fdr" in tab else np.nan
    bound = float(np.nanmax(np.abs(d))) if np.isfinite(d).any() else 1.0
    bound = max(bound, 0.05)
    fig, ax = plt.subplots(figsize=(1.1 * len(classes) + 2.5, 0.55 * len(names) + 1.6))
    im = ax.imshow(d, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    for i in range(len(names)):
        for j in range(len(classes)):
            if not np.isfinite(d[i, j]):
                continue
            mark = "**" if q[i, j] < 0.05 else "*" if p[i, j] < 0.05 else ""
            colour = "white" if abs(d[i, j]) > 0.6 * bound else "black"
            ax.text(
                j, i, f"{d[i, j]:.2f}{mark}", ha="center", va="center", fontsize=8, color=colour
            )
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xticks(np.arange(-0.5, len(classes)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(names)), minor=True)
    ax.grid(which="minor", color="white", lw=2)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("Cohen's d (case − control)")
    ax.set_title("von Economo classes: * p < 0.05 uncorrected, ** FDR < 0.05", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- Fig. 5


@styled
def plot_hub_scatter(hubs: pd.DataFrame, stats_json: Mapping, path: str | Path) -> Path:
    """Fig. 5: controls' mean regional MS against the case–control t, four quadrants labelled.

    Parameters
    ----------
    hubs : pandas.DataFrame
        ``desc-hubs_regional.tsv`` (region, control_ms, t, quadrant).
    stats_json : mapping
        ``desc-hubs_stats.json`` (rho, p_perm, n_label_perms, p_spin, n_spins, quadrants
        in percent).
    """
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    x = hubs["control_ms"].to_numpy(dtype=float)
    y = hubs["t"].to_numpy(dtype=float)
    colours = [QUADRANT_COLOURS.get(str(q), "grey") for q in hubs.get("quadrant", [""] * len(x))]
    ax.axhline(0, color="#888", lw=0.8)
    ax.axvline(0, color="#888", lw=0.8)
    ax.scatter(x, y, c=colours, s=26, edgecolor="white", lw=0.5, zorder=3)
    if np.isfinite(x).sum() > 2:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.linspace(np.nanmin(x), np.nanmax(x), 10)
        ax.plot(xs, slope * xs + intercept, color="#333", lw=1, ls="--", zorder=2)
    pct = stats_json.get("quadrants", {}) or {}
    meaning = {
        "dedifferentiation": "low MS, increases",
        "hypercoupling": "high MS, increases",
        "hyperdifferentiation": "low MS, decreases",
        "decoupling": "high MS, decreases",
    }
    handles = [
        plt.Line2D(
            [],
            [],
            marker="o",
            ls="",
            color=colour,
            label=f"{name} ({meaning[name]})" + (f": {pct[name]:.1f} %" if name in pct else ""),
        )
        for name, colour in QUADRANT_COLOURS.items()
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=2,
        frameon=False,
        fontsize=8,
    )
    ax.set_xlabel("mean regional MS in controls")
    ax.set_ylabel("case–control t")
    rho = stats_json.get("rho")
    title = "Hub susceptibility"
    if rho is not None:
        title += f": Spearman ρ = {rho:.2f}"
        if stats_json.get("n_label_perms"):
            # the label-permutation p first: the valid test
            title += (
                f", {format_p(stats_json.get('p_perm'), name='p_perm')}"
                f" ({stats_json['n_label_perms']} label permutations)\n"
                f"{format_p(stats_json.get('p_spin'), name='p_spin')} (the paper's spin test)"
            )
        else:
            title += f", {format_p(stats_json.get('p_spin'), name='p_spin')}"
            if stats_json.get("n_spins"):
                title += f" ({stats_json['n_spins']} spins)"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


@styled
def plot_hub_nulls(nulls: pd.DataFrame, stats_json: Mapping, path: str | Path) -> Path:
    """Label-permutation nulls of hub susceptibility: rho, partial rho and the quadrants.

    Parameters
    ----------
    nulls : pandas.DataFrame
        ``desc-hubs_nulls.tsv``: one row per permutation, columns ``rho, rho_partial`` and
        one per quadrant (percent of regions).
    stats_json : mapping
        ``desc-hubs_stats.json`` (the observed values and p values).
    """
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.3), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    bins = np.linspace(-1, 1, 41)
    for ax, col, obs_key, p_key, title in (
        (axes[0], "rho", "rho", "p_perm", "ρ (t-map vs controls' MS)"),
        (
            axes[1],
            "rho_partial",
            "rho_partial",
            "p_perm_partial",
            "partial ρ (differentiation adjusted)",
        ),
    ):
        values = nulls[col].to_numpy(dtype=float)
        ax.hist(values[np.isfinite(values)], bins=bins, color="#b8a9c9", edgecolor="white")
        obs = stats_json.get(obs_key)
        if obs is not None and np.isfinite(obs):
            ax.axvline(obs, color="#6c3483", lw=2, label=f"observed {obs:.2f}")
            ax.axvline(-obs, color="#6c3483", lw=1, ls=":")
        ax.set_xlim(-1, 1)
        ax.set_xlabel(title)
        ax.set_title(format_p(stats_json.get(p_key), name="p_perm"), fontsize=10)
    axes[0].set_ylabel("label permutations")
    ax = axes[2]
    names = [q for q in QUADRANT_COLOURS if q in nulls.columns]
    observed = stats_json.get("quadrants") or {}
    parts = ax.violinplot(
        [nulls[q].to_numpy(dtype=float) for q in names], showextrema=False, widths=0.8
    )
    for body, name in zip(parts["bodies"], names, strict=True):
        body.set_facecolor(QUADRANT_COLOURS[name])
        body.set_alpha(0.35)
    ax.scatter(
        range(1, len(names) + 1),
        [observed.get(q, np.nan) for q in names],
        color=[QUADRANT_COLOURS[q] for q in names],
        edgecolor="black",
        zorder=3,
        s=40,
        label="observed",
    )
    ax.set_xticks(range(1, len(names) + 1), [q.replace("differentiation", "diff.") for q in names])
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel("% of regions")
    ax.set_title("quadrants vs their permutation null", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- Fig. 6


@styled
def plot_pls_scatter(
    scores: pd.DataFrame,
    stats_json: Mapping | None,
    path: str | Path,
    *,
    response_label: str = "response",
) -> Path:
    """Fig. 6: PLS1 regional scores against the response map, with r and its spin p."""
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    x = scores["score"].to_numpy(dtype=float)
    y = (
        scores["response"].to_numpy(dtype=float)
        if "response" in scores
        else np.full(x.shape, np.nan)
    )
    ax.scatter(x, y, s=26, color="#6c3483", edgecolor="white", lw=0.5, zorder=3)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() > 2:
        slope, intercept = np.polyfit(x[ok], y[ok], 1)
        xs = np.linspace(x[ok].min(), x[ok].max(), 10)
        ax.plot(xs, slope * xs + intercept, color="#333", lw=1, ls="--")
    ax.set_xlabel("PLS1 score")
    ax.set_ylabel(response_label)
    if stats_json and stats_json.get("r") is not None:
        ax.set_title(
            f"r = {stats_json['r']:.2f}, {format_p(stats_json.get('p_spin'), name='p_spin')}"
        )
    fig.tight_layout()
    return save_figure(fig, path)


@styled
def plot_top_genes(
    genes: pd.DataFrame, path: str | Path, *, n: int = 10, threshold: float | None = 3.0
) -> Path:
    """Fig. 6B: the ``n`` genes with the highest and the lowest PLS1 bootstrap Z."""
    tab = genes.dropna(subset=["z"]).sort_values("z", ascending=False)
    top = tab.head(n)
    bottom = tab.tail(n).iloc[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(8, 0.28 * n + 1.2), sharex=False)
    for ax, part, colour, title in (
        (axes[0], top, CASE_COLOUR, "PLS1+ (highest Z)"),
        (axes[1], bottom, CONTROL_COLOUR, "PLS1− (lowest Z)"),
    ):
        ax.barh(range(len(part)), part["z"], color=colour)
        ax.set_yticks(range(len(part)), part["gene"])
        ax.invert_yaxis()
        ax.set_xlabel("bootstrap Z of the PLS1 weight")
        ax.set_title(title)
        if threshold:
            ax.axvline(
                threshold if colour == CASE_COLOUR else -threshold, color="#888", lw=0.8, ls=":"
            )
    fig.tight_layout()
    return save_figure(fig, path)


@styled
def plot_pls_components(components: pd.DataFrame, path: str | Path) -> Path:
    """Variance of the response explained by each PLS component, * permutation p < 0.05."""
    fig, ax = plt.subplots(figsize=(6, 3))
    comp = components["component"].to_numpy()
    var = 100 * components["var_explained"].to_numpy(dtype=float)
    ax.bar(comp, var, color="#6c3483")
    col = "p_perm_component" if "p_perm_component" in components else "p_perm"
    if col in components:
        for c, v, p in zip(comp, var, components[col].to_numpy(dtype=float), strict=True):
            if np.isfinite(p) and p < 0.05:
                ax.text(c, v, "*", ha="center", va="bottom", fontsize=12)
    ax.set_xlabel("PLS component")
    ax.set_ylabel("variance explained (%)")
    ax.set_xticks(comp)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- Fig. 7


@styled
def plot_enrichment_heatmap(  # noqa: C901 - a branch per optional panel
    table: pd.DataFrame,
    path: str | Path,
    *,
    value: str = "odds_ratio",
    top: int | None = None,
    title: str = "",
    max_label: int = 60,
    p_column: str = "p",
    fdr_column: str = "p_fdr",
) -> Path:
    """Fig. 7: enrichment of PLS1+ and PLS1− in gene sets; * FDR < 0.05.

    Parameters
    ----------
    table : pandas.DataFrame
        ``desc-enrichment_<name>.tsv`` (gene_set, direction, odds_ratio, p, p_fdr).
    value : {'odds_ratio', 'neglog10_pfdr'}
        Colour: the odds ratio (cell types, as Fig. 7B) or −log10 FDR p (as Fig. 7A).
    top : int, optional
        Show only the union of the ``top`` sets with the smallest p in each direction.
    p_column, fdr_column : str
        The test shown: ``p``/``p_fdr`` (Fisher, the paper's) or ``p_spatial``/
        ``p_spatial_fdr`` (the spatial null, the default test): order, colour and stars.
    """
    tab = table.copy()
    tab["gene_set"] = tab["gene_set"].astype(str)
    if top is not None:
        keep: list[str] = []
        # stable: ties (e.g. spatial p at its floor 1/(1 + n_spins)) keep the caller's order
        for _, part in tab.sort_values(p_column, kind="stable").groupby("direction", sort=False):
            for gs in part["gene_set"].head(top):
                if gs not in keep:
                    keep.append(gs)
        tab = tab[tab["gene_set"].isin(keep)]
        order = keep
    else:
        order = list(dict.fromkeys(tab["gene_set"]))
    directions = [d for d in ("PLS1+", "PLS1-") if d in set(tab["direction"])]
    mat = np.full((len(order), len(directions)), np.nan)
    sig = np.zeros(mat.shape, dtype=bool)
    for _, row in tab.iterrows():
        i, j = order.index(row["gene_set"]), directions.index(row["direction"])
        if value == "odds_ratio":
            mat[i, j] = row["odds_ratio"]
        else:
            q = float(row[fdr_column])
            mat[i, j] = max(0.0, -np.log10(max(q, 1e-300))) if np.isfinite(q) else np.nan
        sig[i, j] = bool(np.isfinite(row[fdr_column]) and row[fdr_column] < 0.05)
    height = 0.32 * len(order) + 1.5
    longest = min(max_label, max((len(o) for o in order), default=10))
    fig, ax = plt.subplots(figsize=(3.4 + 0.07 * longest, height))
    if value == "odds_ratio":
        finite = mat[np.isfinite(mat)]
        hi = max(2.0, float(np.nanmax(finite)) if finite.size else 2.0)
        norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=hi)
        im = ax.imshow(mat, cmap="RdBu_r", norm=norm, aspect="auto")
        label = "odds ratio"
    else:
        im = ax.imshow(mat, cmap="Reds", vmin=0, aspect="auto")
        label = "−log10 p (FDR" + (", spatial null)" if fdr_column == "p_spatial_fdr" else ")")
    norm_used = im.norm
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            if np.isfinite(mat[i, j]):
                shade = float(norm_used(mat[i, j]))
                dark = shade > 0.8 or (value == "odds_ratio" and shade < 0.15)
                ax.text(
                    j,
                    i,
                    f"{mat[i, j]:.2f}" + ("*" if sig[i, j] else ""),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    names = [o if len(o) <= max_label else o[: max_label - 1] + "…" for o in order]
    ax.set_yticks(range(len(order)), names)
    ax.set_xticks(range(len(directions)), directions)
    ax.xaxis.tick_top()
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(im, ax=ax, fraction=0.08, pad=0.04)
    bar.set_label(label)
    if title:
        ax.set_title(title + "  (* FDR < 0.05)", fontsize=9, pad=18)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- maps compared


@styled
def plot_correlation_bars(
    table: pd.DataFrame,
    path: str | Path,
    *,
    label_column: str,
    title: str,
    xlabel: str = "Spearman ρ",
) -> Path:
    """Horizontal bars of Spearman ρ with their spin p (leave-one-feature-out, reference maps)."""
    tab = table.dropna(subset=["rho"])
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * max(len(tab), 1) + 1.3))
    ys = np.arange(len(tab))
    colours = [CASE_COLOUR if r > 0 else CONTROL_COLOUR for r in tab["rho"]]
    ax.barh(ys, tab["rho"], color=colours)
    for y, (_, row) in zip(ys, tab.iterrows(), strict=True):
        p = row.get("p_spin")
        text = f"ρ = {row['rho']:.2f}, {format_p(p, name='p_spin')}"
        ax.text(
            0.02 if row["rho"] < 0 else -0.02,
            y,
            text,
            va="center",
            ha="left" if row["rho"] < 0 else "right",
            fontsize=8,
        )
    ax.set_yticks(ys, [str(v) for v in tab[label_column]])
    ax.set_xlim(-1.05, 1.05)
    ax.axvline(0, color="#888", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


@styled
def plot_crosscohort_matrix(
    pairs: pd.DataFrame, path: str | Path, *, label: str = "Spearman ρ of t-maps"
) -> Path:
    """Cross-cohort Spearman correlations of the cohorts' maps (spin p in the cells).

    ``label`` names the maps on the colour bar (the case–control t-maps by default; the
    controls' mean MS maps for ``desc-crosscohort_controlsms.tsv``).
    """
    names = list(dict.fromkeys(list(pairs["cohort_a"]) + list(pairs["cohort_b"])))
    mat = np.eye(len(names))
    pmat = np.full(mat.shape, np.nan)
    for _, row in pairs.iterrows():
        i, j = names.index(row["cohort_a"]), names.index(row["cohort_b"])
        mat[i, j] = mat[j, i] = row["rho"]
        pmat[i, j] = pmat[j, i] = row.get("p_spin", np.nan)
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.2, 1.0 * len(names) + 1.4))
    im = ax.imshow(mat, cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            text = (
                f"{mat[i, j]:.2f}"
                if i == j
                else f"{mat[i, j]:.2f}\n{format_p(pmat[i, j], name='p')}"
            )
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if abs(mat[i, j]) > 0.6 else "black",
            )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    fig.colorbar(im, ax=ax, fraction=0.045).set_label(label)
    fig.tight_layout()
    return save_figure(fig, path)


@styled
def plot_pca_scree(pca: Mapping, path: str | Path) -> Path:
    """Cross-cohort PCA: explained variance and eigenvalues (the eigenvalue 1 line)."""
    ratio = 100 * np.asarray(pca.get("explained_variance_ratio", []), dtype=float)
    eig = np.asarray(pca.get("eigenvalues", []), dtype=float)
    comps = np.arange(1, ratio.size + 1)
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    ax.bar(comps, ratio, color="#6c3483")
    ax.set_xticks(comps, [f"PC{c}" for c in comps])
    ax.set_ylabel("variance explained (%)")
    for c, r, e in zip(comps, ratio, eig, strict=False):
        ax.text(c, r, f"λ = {e:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_title("PCA of the cohorts' standardised t-maps")
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- participants


@functools.lru_cache(maxsize=16)
def _pillow_font(path: str, size: float):
    from PIL import ImageFont

    return ImageFont.truetype(path, size=size)


def draw_text(fig: plt.Figure, artist: matplotlib.text.Text, text: str) -> None:
    """Draw ``text`` on ``fig``'s canvas where the (empty) ``artist`` stands, fast.

    Same font file, size, colour and alignment as matplotlib, rendered by Pillow's FreeType
    (~1 ms instead of ~10 ms for a title); text with mathtext (``$``) is left to matplotlib.
    For titles drawn on a template canvas (after ``restore_region``), one per figure.
    """
    if not text:
        return
    if "$" in text or artist.get_rotation() != 0:
        artist.set_text(text)
        fig.draw_artist(artist)
        artist.set_text("")
        return
    from matplotlib.font_manager import findfont
    from PIL import Image, ImageDraw

    font = _pillow_font(findfont(artist.get_fontproperties()), artist.get_fontsize() * fig.dpi / 72)
    anchor = {"center": "m", "left": "l", "right": "r"}[artist.get_horizontalalignment()] + "s"
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    # Vertical alignment as matplotlib lays a line out: its box reaches at least as high
    # and as low as "lp" does, above and below the baseline.
    _, lp_top, _, lp_bottom = font.getbbox("lp", anchor="ls")
    ascent, descent = -min(top, lp_top), max(bottom, lp_bottom)
    pixels = np.asarray(fig.canvas.buffer_rgba())
    x, y = artist.get_transform().transform(artist.get_position())
    y = pixels.shape[0] - y  # rows down
    baseline = {
        "top": y + ascent,
        "center": y + (ascent - descent) / 2,
        "bottom": y - descent,
        "baseline": y,
    }.get(artist.get_verticalalignment(), y)
    mask = Image.new("L", (right - left, bottom - top))
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font, anchor=anchor)
    alpha = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    row, col = int(round(baseline)) + top, int(round(x)) + left
    # Clip to the canvas, as matplotlib does.
    r0, c0 = max(row, 0), max(col, 0)
    r1 = min(row + alpha.shape[0], pixels.shape[0])
    c1 = min(col + alpha.shape[1], pixels.shape[1])
    if r0 >= r1 or c0 >= c1:
        return
    alpha = alpha[r0 - row : r1 - row, c0 - col : c1 - col]
    region = pixels[r0:r1, c0:c1, :3]
    colour = np.asarray(matplotlib.colors.to_rgb(artist.get_color()), dtype=np.float32) * 255
    region[...] = region + (colour - region) * alpha + 0.5


def qc_overview_figure(qc: pd.DataFrame, *, threshold: float = 3.5) -> plt.Figure:
    """The figure of :func:`plot_qc_overview`, not saved (its artists can be inspected)."""
    cols = [c for c in qc.columns if c.startswith("z_") and qc[c].notna().any()]
    fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 2.5, 3.4))
    rng = np.random.default_rng(0)  # jitter only
    flagged = (
        qc["flagged"].to_numpy(dtype=bool) if "flagged" in qc else np.zeros(len(qc), dtype=bool)
    )
    dense = len(qc) > QC_DENSITY_ABOVE
    bulk_x, bulk_z = [], []
    for i, col in enumerate(cols):
        z = qc[col].to_numpy(dtype=float)
        jitter = i + rng.uniform(-0.25, 0.25, z.size)
        if dense:
            keep = ~flagged & np.isfinite(z)
            bulk_x.append(jitter[keep])
            bulk_z.append(z[keep])
        else:
            ax.scatter(jitter[~flagged], z[~flagged], s=7, color="#555", alpha=0.6, lw=0)
        on_top = {"zorder": 3} if dense else {}  # over the density
        ax.scatter(jitter[flagged], z[flagged], s=12, color=CASE_COLOUR, lw=0, **on_top)
    if dense and bulk_x:
        x, z = np.concatenate(bulk_x), np.concatenate(bulk_z)
        ax.hexbin(
            x,
            z,
            gridsize=(max(8, 12 * len(cols)), 30),
            extent=(-0.5, len(cols) - 0.5, float(z.min()), float(z.max())) if z.size else None,
            bins="log",
            mincnt=1,
            cmap="Greys",
            linewidths=0,
            zorder=2,
        )
    ax.axhline(threshold, color=CASE_COLOUR, lw=0.8, ls=":")
    ax.axhline(-threshold, color=CASE_COLOUR, lw=0.8, ls=":")
    ax.set_xticks(
        range(len(cols)), [c[2:].replace("_", " ") for c in cols], rotation=20, ha="right"
    )
    if dense:
        ax.set_xlim(-0.5, len(cols) - 0.5)
    ax.set_ylabel("robust z vs the group")
    ax.set_title(f"Participants' summary measures (flag: |z| > {threshold:g}); red = flagged")
    fig.tight_layout()
    return fig


@styled
def plot_qc_overview(qc: pd.DataFrame, path: str | Path, *, threshold: float = 3.5) -> Path:
    """Robust z of every participant's summary measures; flagged participants in red.

    Up to :data:`QC_DENSITY_ABOVE` participants each is a dot (jittered strip plot); above,
    the unflagged ones are a density of hexagons (log count) and the flagged ones dots on top.
    """
    return save_figure(qc_overview_figure(qc, threshold=threshold), path)
