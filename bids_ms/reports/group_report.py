"""The group report, ``<out>/group/report.html``: the paper's figures for this dataset.

Built only from the derivatives already written (participant derivatives and
``<out>/group/``), so ``--reports-only`` rebuilds it without recomputing. Each stage whose
files are absent gets a "not run" note instead of its figures. Also writes the quality
table ``group/desc-qc_participants.tsv`` and the methods text ``logs/CITATION.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputDataError
from ..io.derivatives import atomic_write_text, load_participant_derivatives, write_tsv
from . import figures as F
from .citation import citation_bibtex, citation_markdown, methods_html, methods_text
from .html import (
    TABLE_MAX_ROWS,
    Markup,
    Section,
    definition_list,
    escape,
    figure,
    not_run,
    note,
    table,
    write_page,
)
from .qc import QC_COLUMNS, REGIONAL_OUTLIER_LIMIT, Z_THRESHOLD, participant_quality
from .results import GroupResults, read_json, read_table
from .surface import SURFACE_SOURCE, plot_regional_map

__all__ = ["build_group_report", "GROUP_SECTIONS"]

LOGGER = logging.getLogger("bids_ms")

#: Section ids of the group report, in order (the tests check them).
GROUP_SECTIONS = (
    "summary",
    "quality",
    "global-ms",
    "regional-maps",
    "lofo",
    "economo",
    "hubs",
    "reference-maps",
    "cross-cohort",
    "transcriptomics",
    "enrichment",
    "methods",
)


class _Context:
    """What every section builder needs: the folders, the results, the figures written."""

    def __init__(self, output_dir: Path) -> None:
        self.out = output_dir
        self.group_dir = output_dir / "group"
        self.fig_dir = self.group_dir / "figures"
        self.results = GroupResults(self.group_dir)
        self.figures: list[Path] = []
        self.participants = load_participant_derivatives(output_dir)
        self.qc: pd.DataFrame | None = None
        glob = self.results.json("casecontrol_global") or {}
        self.glob = glob

    def fig(self, name: str) -> Path:
        path = self.fig_dir / name
        self.figures.append(path)
        return path

    def img(self, path: Path, caption: str) -> str:
        return figure(path, caption, base=self.group_dir)


def _draw(ctx: _Context, what: str, make: Callable[[], Path], caption: str) -> Markup:
    """Draw one figure; a failure becomes a note in the report rather than no report."""
    try:
        path = make()
    except Exception as err:  # a figure must never cost the user the whole report
        LOGGER.warning(
            "report figure '%s' could not be drawn: %s",
            what,
            err,
            exc_info=LOGGER.isEnabledFor(logging.DEBUG),
        )
        return note(
            Markup("The figure “{}” could not be drawn: {}").format(what, str(err)), kind="warn"
        )
    return ctx.img(path, caption)


def _not_run_section(
    section_id: str, title: str, stage: str, files: list[str], how: str = ""
) -> Section:
    """The section of a stage whose outputs are absent: a "not run" note naming the files."""
    return Section(section_id, title, not_run(stage, files, how), ran=False)


def _build_section(build: Callable[[_Context], Section], ctx: _Context, section_id: str) -> Section:
    """Build one section; files it cannot use become a warning in the report, not a crash."""
    try:
        return build(ctx)
    except InputDataError:
        raise
    except (KeyError, ValueError, TypeError, IndexError) as err:
        LOGGER.warning(
            "report section '%s' could not be built: %r",
            section_id,
            err,
            exc_info=LOGGER.isEnabledFor(logging.DEBUG),
        )
        text = Markup(
            "This section could not be built from the files in <code>group/</code> "
            "({}: {}); were they written by another version of bids-ms? Rerun the group level."
        ).format(type(err).__name__, str(err))
        return Section(
            section_id,
            section_id.replace("-", " ").capitalize(),
            note(text, kind="warn"),
            ran=False,
        )


def _p(value) -> str:
    return F.format_p(value if value is None else float(value))


# --------------------------------------------------------------------------- sections


def _summary(ctx: _Context) -> Section:
    desc = read_json(ctx.out / "dataset_description.json") or {}
    parts = ctx.participants
    features = sorted({tuple(p.sidecar.get("Features") or p.morphometry.columns) for p in parts})
    sources = sorted({str(p.sidecar.get("Source")) for p in parts})
    fs_versions = sorted(
        {
            str(p.sidecar.get("FreeSurferVersion"))
            for p in parts
            if p.sidecar.get("FreeSurferVersion")
        }
    )
    g = ctx.glob
    items: list[tuple[str, object]] = [
        ("Derivatives", str(ctx.out)),
        (
            "Generated by",
            ", ".join(
                f"{x.get('Name')} {x.get('Version', '')}" for x in desc.get("GeneratedBy", [])
            ),
        ),
        (
            "Participants with MS derivatives",
            f"{len(parts)}"
            + (
                f" ({len({p.subject for p in parts})} subjects)"
                if any(p.session for p in parts)
                else ""
            ),
        ),
        ("Features", "; ".join(", ".join(f) for f in features) or None),
        ("FreeSurfer statistics from", ", ".join(sources) or None),
        ("FreeSurfer version", (", ".join(fs_versions) or "not recorded") if parts else None),
    ]
    if g:
        items += [
            (
                "Groups",
                f"{g.get('CaseLabel')} (case, n = {g.get('NCase')}) vs {g.get('ControlLabel')} "
                f"(control, n = {g.get('NControl')}), column “{g.get('GroupColumn')}”",
            ),
            ("Covariates", ", ".join(g.get("Covariates") or []) or "none"),
            ("Harmonisation", (g.get("Harmonization") or {}).get("Method", "none")),
            ("Spin permutations", g.get("NSpins")),
            ("Seed", g.get("Seed")),
            ("Excluded participants", g.get("NExcluded")),
        ]
    stages = [
        ("Case–control statistics (Fig. 2–3)", ctx.results.has("casecontrol_regional")),
        ("Leave-one-feature-out", ctx.results.has("lofo_correlations")),
        ("von Economo classes (Fig. 4)", ctx.results.has("economo_casecontrol")),
        ("Hub susceptibility (Fig. 5)", ctx.results.has("hubs_stats", "json")),
        (
            "Reference maps",
            ctx.results.table("reference_correlations") is not None
            and not ctx.results.table("reference_correlations").empty,
        ),
        ("Cross-cohort comparison", ctx.results.has("crosscohort_correlations")),
        ("Imaging transcriptomics (Fig. 6)", ctx.results.has("pls1_genes")),
        ("Enrichment (Fig. 7)", ctx.results.has("enrichment_celltypes")),
    ]
    status = Markup("").join(
        Markup("<li>{}: {}</li>").format(
            name,
            Markup('<span class="badge ok">done</span>')
            if done
            else Markup('<span class="badge flag">not run</span>'),
        )
        for name, done in stages
    )
    body = definition_list(items) + Markup("<h3>Stages</h3><ul>{}</ul>").format(status)
    response_map = ((ctx.results.json("pls1_stats") or {}).get("Settings") or {}).get(
        "response_map"
    )
    if response_map and not parts:
        body = (
            note(
                Markup(
                    "The group level ran on a map given with <code>--response-map {}</code>: only "
                    "the map-based stages (transcriptomics, enrichment) ran, without participant data."
                ).format(str(response_map)),
                kind="notrun",
            )
            + body
        )
    excluded = g.get("ExcludedParticipants") or []
    if excluded:
        body += Markup("<h3>Excluded participants</h3>") + table(
            pd.DataFrame(excluded), max_rows=TABLE_MAX_ROWS
        )
    return Section("summary", "Summary", body)


def _quality(ctx: _Context) -> Section:
    if not ctx.participants:
        return Section(
            "quality",
            "Quality control",
            note(
                "No participant derivatives in this folder "
                "(the group level ran on a response map only).",
                kind="notrun",
            ),
            ran=False,
        )
    qc = participant_quality(ctx.participants)
    ctx.qc = qc
    sidecar = {
        "Description": "Quality measures of every participant against the group, and flags for review "
        "(bids-ms report; flags do not exclude anyone).",
        "Threshold": f"|modified z| > {Z_THRESHOLD} (Iglewicz & Hoaglin 1993: 0.6745 (x - median) / MAD)",
        "RegionalOutlierLimit": REGIONAL_OUTLIER_LIMIT,
        "FeatureSummaries": "volume and area summed over the 68 regions; thickness and curvatures averaged",
        **{col: {"Description": desc} for col, desc in QC_COLUMNS.items()},
    }
    write_tsv(ctx.group_dir / "desc-qc_participants.tsv", qc, sidecar=sidecar)
    return Section("quality", "Quality control", _quality_body(ctx, qc))


def _quality_body(ctx: _Context, qc: pd.DataFrame) -> Markup:
    """The quality section of ``qc`` (``desc-qc_participants.tsv``): the plot, the flagged."""
    flagged = qc[qc["flagged"]]
    links = {}
    for pid in flagged["participant_id"]:
        subject = str(pid).split("_")[0]
        if (ctx.out / f"{subject}.html").is_file():
            links[str(pid)] = f"../{subject}.html"
    body = Markup(
        f'<p class="lead">Each participant compared with the {len(qc)} in this folder: global MS and each '
        f"feature's whole-cortex summary as a modified z-score (flag: |z| &gt; {Z_THRESHOLD}); regions with an "
        f"outlying feature or regional MS (flag: {REGIONAL_OUTLIER_LIMIT} or more of 68); FreeSurfer's Euler "
        "number where <code>recon-all.log</code> or <code>aseg.stats</code> is available (flag: z &lt; "
        f"−{Z_THRESHOLD}). Flags point at participants to look at; nobody is excluded. All values: "
        "<code>group/desc-qc_participants.tsv</code>.</p>"
    )
    body += _draw(
        ctx,
        "quality overview",
        lambda: F.plot_qc_overview(qc, ctx.fig("desc-qc_overview.svg")),
        "Robust z of each participant's global MS and feature summaries; flagged participants in red"
        + (
            f" (above {F.QC_DENSITY_ABOVE:,} participants, the others as a density of hexagons: "
            "darker is more participants)."
            if len(qc) > F.QC_DENSITY_ABOVE
            else "."
        ),
    )
    if flagged.empty:
        body += note(f"No participant flagged among {len(qc)}.")
    else:
        body += Markup(f"<h3>Flagged participants ({len(flagged)} of {len(qc)})</h3>")
        cols = [
            "participant_id",
            *(["session"] if qc["session"].notna().any() else []),
            "reasons",
            "z_global_ms",
            *[c for c in qc.columns if c.startswith("z_") and c not in ("z_global_ms",)],
            "n_outlying_regions",
            "euler_mean",
        ]
        body += table(
            flagged,
            columns=list(dict.fromkeys(cols)),
            fmt=".2f",
            links=links,
            link_column="participant_id",
            full_table="desc-qc_participants.tsv",
        )
    if qc["euler_mean"].notna().sum() == 0:
        body += note(
            Markup(
                "Euler numbers not available: the FreeSurfer statistics were imported from tables "
                "or the subject folders have no <code>scripts/recon-all.log</code> / "
                "<code>stats/aseg.stats</code>."
            )
        )
    return body


def _global(ctx: _Context) -> Section:
    res = ctx.results
    resid = res.table("residualised_regional")
    if resid is None or not ctx.glob:
        return _not_run_section(
            "global-ms",
            "Global MS (Fig. 2)",
            "case–control statistics",
            ["desc-residualised_regional.tsv", "desc-casecontrol_global.json"],
            "Run the group level.",
        )
    g = ctx.glob
    gcol = g.get("GroupColumn") if g.get("GroupColumn") in resid.columns else resid.columns[1]
    caption = (
        f"Left: distributions of residual regional MS (covariates {', '.join(g.get('Covariates') or [])} "
        "regressed out) over all regions and participants, per group. Right: residual global MS (mean over "
        f"regions) per group; the test is the covariate-adjusted OLS of global MS: t({g.get('df')}) = "
        f"{g.get('t', math.nan):.2f}, {_p(g.get('p'))}, Cohen's d = {g.get('cohen_d', math.nan):.2f} "
        "(Martins et al. 2022, Fig. 2)."
    )
    body = _draw(
        ctx,
        "global MS",
        lambda: F.plot_group_distributions(
            resid,
            ctx.fig("desc-globalms_distributions.svg"),
            group_column=gcol,
            case_label=str(g.get("CaseLabel")),
            control_label=str(g.get("ControlLabel")),
            global_stats=g,
        ),
        caption,
    )
    return Section("global-ms", "Global MS (Fig. 2)", body + _global_model_table(g))


def _global_model_table(g: dict) -> Markup:
    """The statsmodels summary of the global-MS model: every term with its 95 % CI, and the fit."""
    summary = g.get("ModelSummary")
    if not isinstance(summary, dict) or not summary.get("Terms"):
        return Markup("")
    rows = [{"term": term, **values} for term, values in summary["Terms"].items()]
    fit = Markup(
        "<p>{formula}: R² = {r2:.3f} (adjusted {r2a:.3f}), F({dfm}, {dfr}) = {f:.2f}, {p}; "
        "n = {n}; {method}. The group term is the case–control difference (cases minus "
        "controls) adjusted for the other terms.</p>"
    ).format(
        formula=str(summary.get("Formula", "")),
        r2=summary.get("RSquared", math.nan),
        r2a=summary.get("RSquaredAdjusted", math.nan),
        dfm=summary.get("DFModel"),
        dfr=summary.get("DFResidual"),
        f=summary.get("FStatistic", math.nan),
        p=_p(summary.get("FPValue")),
        n=summary.get("NObservations"),
        method=str(summary.get("Method", "")),
    )
    return (
        Markup('<h3 id="global-ms-model">The model of global MS</h3>')
        + fit
        + table(rows, columns=["term", "beta", "se", "t", "p", "ci_low", "ci_high"], max_rows=None)
    )


def _regional(ctx: _Context) -> Section:
    reg = ctx.results.table("casecontrol_regional")
    if reg is None:
        return _not_run_section(
            "regional-maps",
            "Regional case–control maps (Fig. 3)",
            "case–control statistics",
            ["desc-casecontrol_regional.tsv"],
            "Run the group level.",
        )
    d = reg.set_index("region")["cohen_d"]
    p = reg.set_index("region")["p"]
    n_unc = int((p < 0.05).sum())
    n_fdr = int((reg["p_fdr"] < 0.05).sum())
    bound = float(np.nanmax(np.abs(d))) if np.isfinite(d).any() else 1.0
    body = Markup(
        '<p class="lead">{} of 68 regions at p &lt; 0.05 uncorrected, {} at FDR &lt; 0.05. '
        "Surface: {}.</p>"
    ).format(n_unc, n_fdr, SURFACE_SOURCE)
    body += _draw(
        ctx,
        "Cohen's d map",
        lambda: plot_regional_map(
            d,
            ctx.fig("desc-cohend_map.png"),
            title="Case–control Cohen's d of regional MS (unthresholded)",
            label="Cohen's d (case − control)",
            vmin=-bound,
            vmax=bound,
        ),
        "Cohen's d of the case–control difference in regional MS, every region (Fig. 3, upper row). "
        "Red: higher MS in cases.",
    )
    body += _draw(
        ctx,
        "thresholded map",
        lambda: plot_regional_map(
            d.where(p < 0.05),
            ctx.fig("desc-cohend_p05_map.png"),
            title="Regions at p < 0.05 (uncorrected)",
            label="Cohen's d (case − control)",
            vmin=-bound,
            vmax=bound,
            missing_label="p ≥ 0.05",
        ),
        "The same map where p < 0.05 uncorrected (Fig. 3, lower row); grey regions did not reach it.",
    )
    top = reg.sort_values("p").head(15)
    body += Markup("<h3>Regions with the smallest p</h3>") + table(
        top, columns=["region", "beta", "t", "p", "p_fdr", "cohen_d", "n_case", "n_control"]
    )
    return Section("regional-maps", "Regional case–control maps (Fig. 3)", body)


def _lofo(ctx: _Context) -> Section:
    lofo = ctx.results.table("lofo_correlations")
    title = "Leave-one-feature-out"
    if lofo is None:
        return _not_run_section(
            "lofo", title, "leave-one-feature-out", ["desc-lofo_correlations.tsv"]
        )
    side = ctx.results.sidecar("lofo_correlations") or {}
    body = Markup(
        '<p class="lead">MS recomputed without each feature; the Spearman correlation of its case–control '
        "t-map with the t-map of all features, spin p.</p>"
    )
    if side.get("Note"):
        body += note(escape(str(side["Note"])))
    if lofo["rho"].notna().any():
        body += _draw(
            ctx,
            "leave-one-feature-out",
            lambda: F.plot_correlation_bars(
                lofo.assign(label="without " + lofo["feature_left_out"].astype(str)),
                ctx.fig("desc-lofo_correlations.svg"),
                label_column="label",
                title="t-map without one feature vs all features",
            ),
            "Spearman ρ between the t-map computed without each feature and the full t-map.",
        )
    body += table(lofo)
    return Section("lofo", title, body)


def _combined_cohort_tables(ctx: _Context, desc: str) -> dict[str, pd.DataFrame]:
    """This cohort's table and, with ``--combine``, the other cohorts' (when readable)."""
    out: dict[str, pd.DataFrame] = {}
    own = ctx.results.table(desc)
    side = ctx.results.sidecar("crosscohort_correlations") or {}
    cohorts = side.get("Cohorts") or {}
    own_name = (ctx.glob or {}).get("Cohort") or "this cohort"
    if own is not None:
        out[own_name] = own
    for name, folder in cohorts.items():
        if name in out:
            continue
        for cand in (
            Path(folder) / "group" / f"desc-{desc}.tsv",
            Path(folder) / f"desc-{desc}.tsv",
        ):
            if cand.resolve() == ctx.results.path(desc).resolve():
                break
            tab = read_table(cand)
            if tab is not None:
                out[name] = tab
                break
    return out


def _economo(ctx: _Context) -> Section:
    title = "von Economo classes (Fig. 4)"
    eco = ctx.results.table("economo_casecontrol")
    if eco is None:
        return _not_run_section(
            "economo", title, "von Economo classes", ["desc-economo_casecontrol.tsv"]
        )
    tables = _combined_cohort_tables(ctx, "economo_casecontrol")
    body = _draw(
        ctx,
        "von Economo tiles",
        lambda: F.plot_economo_tiles(tables, ctx.fig("desc-economo_tiles.svg")),
        "Cohen's d of the case–control difference in class-level MS for the seven von Economo classes "
        "(five Koskinas types, limbic, insular; Whitaker, Vértes et al. 2016); * p < 0.05 uncorrected, "
        "** FDR < 0.05 (Fig. 4)." + (" One row per cohort." if len(tables) > 1 else ""),
    )
    body += table(
        eco, columns=["class", "class_name", "n_regions", "beta", "t", "p", "p_fdr", "cohen_d"]
    )
    return Section("economo", title, body)


#: Why the spin p does not answer the hub-susceptibility question (two sentences).
HUBS_SPIN_EXPLANATION = (
    "The case–control t-map is computed from the same participants as the controls' template: "
    "a group whose participants have noisier feature profiles has all of its MS shrunk toward 0, "
    "so high-MS regions seem to “decrease” and low-MS regions to “increase” whatever the "
    "diagnosis, and the t-map correlates negatively with the template by construction. A spin null "
    "treats the t-map as a map independent of the template and declares this coupling significant, "
    "whereas shuffling the case/control labels and redoing the analysis keeps it in the null."
)


def _hubs_banner(stats_json: dict) -> Markup:
    p_perm = stats_json.get("p_perm")
    if p_perm is None or not np.isfinite(float(p_perm)) or float(p_perm) < 0.05:
        return Markup("")
    return note(
        Markup(
            "<strong>Not significant by label permutation</strong> ({}, {} permutations of the "
            "case/control labels): the correlation of the t-map with the controls' MS is within "
            "what shuffled labels give. The quadrants and the spin p below are not evidence of "
            "hub susceptibility."
        ).format(
            F.format_p(float(p_perm), name="p_perm"),
            f"{int(stats_json.get('n_label_perms') or 0):,}",
        ),
        kind="warn",
    )


def _hubs(ctx: _Context) -> Section:
    title = "Hub susceptibility (Fig. 5)"
    stats_json = ctx.results.json("hubs_stats")
    hubs = ctx.results.table("hubs_regional")
    if stats_json is None:
        return _not_run_section("hubs", title, "hub susceptibility", ["desc-hubs_stats.json"])
    body = _hubs_banner(stats_json)
    has_perm = stats_json.get("n_label_perms") is not None
    rho = stats_json.get("rho", math.nan)
    if has_perm:
        null = stats_json.get("null_rho") or {}
        diff = stats_json.get("differentiation") or {}
        items: list[tuple[str, object]] = [("Spearman ρ (t-map vs controls' MS)", f"{rho:.3f}")]
        if stats_json.get("n_label_perms"):
            items += [
                (
                    "Label-permutation p (the valid test)",
                    f"{F.format_p(stats_json.get('p_perm'), name='p_perm')} over "
                    f"{int(stats_json['n_label_perms']):,} permutations of the labels"
                    + (
                        f" within {(stats_json.get('LabelPermutation') or {}).get('Strata')}"
                        if (stats_json.get("LabelPermutation") or {}).get("Strata")
                        else ""
                    ),
                ),
                (
                    "Null ρ under label permutation",
                    f"mean {_fmt(null.get('mean'))}, SD {_fmt(null.get('sd'))}, 95 % interval "
                    f"[{_fmt(null.get('q025'))}, {_fmt(null.get('q975'))}]",
                ),
            ]
        else:
            items.append(("Label-permutation p", "not computed (--n-label-perms 0)"))
        items += [
            (
                "Spin p (the paper's test)",
                f"{F.format_p(stats_json.get('p_spin'), name='p_spin')} over "
                f"{stats_json.get('n_spins')} spins: the paper's test (spatial null); not valid "
                "for this question because the t-map depends on the control template"
                if stats_json.get("n_spins")
                else "not computed (--n-spins 0)",
            ),
            (
                "Differentiation index, case vs control",
                f"β = {_fmt(diff.get('beta'))}, t = {_fmt(diff.get('t'))}, "
                f"{F.format_p(diff.get('p'))}, Cohen's d = {_fmt(diff.get('cohen_d'))} "
                f"(n = {diff.get('n_case')} vs {diff.get('n_control')})",
            ),
            (
                "Partial ρ (t-map adjusted for the differentiation index)",
                f"{_fmt(stats_json.get('rho_partial'))}"
                + (
                    f", {F.format_p(stats_json.get('p_perm_partial'), name='p_perm')}"
                    if stats_json.get("n_label_perms")
                    else ""
                ),
            ),
        ]
        body += definition_list(items)
        body += Markup(
            '<p class="lead"><strong>Why the spin p is not valid here.</strong> '
            "{} The differentiation index is each participant's slope "
            "of regional MS on the controls' mean MS (below 1: a flatter, “dedifferentiated” profile); "
            "if it differs between groups, the partial ρ shows what remains of the correlation once it "
            "is accounted for.</p>"
        ).format(HUBS_SPIN_EXPLANATION)
    if hubs is not None:
        pval = (
            f"{F.format_p(stats_json.get('p_perm'), name='p_perm')} over "
            f"{stats_json.get('n_label_perms')} label permutations; "
            if stats_json.get("n_label_perms")
            else ""
        )
        body += _draw(
            ctx,
            "hub scatter",
            lambda: F.plot_hub_scatter(hubs, stats_json, ctx.fig("desc-hubs_scatter.svg")),
            "Each region's mean MS in controls against its case–control t; the four quadrants "
            "(dedifferentiation, hypercoupling, hyperdifferentiation, decoupling) with the percentage of "
            f"regions in each; Spearman ρ = {rho:.2f}, {pval}"
            f"{F.format_p(stats_json.get('p_spin'), name='p_spin')} over {stats_json.get('n_spins')} "
            "spins (Fig. 5; the paper's test).",
        )
    nulls = ctx.results.table("hubs_nulls")
    if nulls is not None and stats_json.get("n_label_perms"):
        body += _draw(
            ctx,
            "hub label-permutation nulls",
            lambda: F.plot_hub_nulls(nulls, stats_json, ctx.fig("desc-hubs_nulls.svg")),
            "Distributions over the label permutations (case/control labels shuffled, the model, "
            "t-map and controls' MS redone each time) of ρ, of the partial ρ and of each quadrant's "
            "percentage, with the observed values; dotted: −observed (the test is two-sided).",
        )
    quads = stats_json.get("quadrants") or {}
    counts = stats_json.get("quadrant_counts") or {}
    qstats = stats_json.get("quadrant_stats") or {}
    qt = pd.DataFrame(
        {
            "quadrant": list(quads),
            "regions": [counts.get(q) for q in quads],
            "percent": list(quads.values()),
        }
    )
    if qstats and stats_json.get("n_label_perms"):
        qt["null mean %"] = [(qstats.get(q) or {}).get("null_mean") for q in quads]
        qt["null 95 % interval"] = [
            f"{_fmt((qstats.get(q) or {}).get('null_q025'), '.1f')}–"
            f"{_fmt((qstats.get(q) or {}).get('null_q975'), '.1f')}"
            for q in quads
        ]
        qt["p_perm"] = [(qstats.get(q) or {}).get("p_perm") for q in quads]
        body += Markup(
            '<p class="lead">Percentage of regions in each quadrant, beside its distribution over '
            "the label permutations (mean and 95 % interval).</p>"
        )
    body += table(qt, fmt=".3g")
    return Section("hubs", title, body)


def _fmt(value, spec: str = ".3g") -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return format(v, spec) if np.isfinite(v) else "n/a"


def _reference(ctx: _Context) -> Section:
    title = "Reference maps"
    ref = ctx.results.table("reference_correlations")
    if ref is None:
        return _not_run_section(
            "reference-maps", title, "reference maps", ["desc-reference_correlations.tsv"]
        )
    if ref.empty:
        return Section(
            "reference-maps",
            title,
            note(
                Markup(
                    "No reference map was given (<code>--reference-map FILE</code>, e.g. an ENIGMA "
                    "summary-statistics CSV), so nothing was compared."
                ),
                kind="notrun",
            ),
            ran=False,
        )
    body = _draw(
        ctx,
        "reference maps",
        lambda: F.plot_correlation_bars(
            ref,
            ctx.fig("desc-reference_correlations.svg"),
            label_column="map",
            title="Case–control t-map vs reference maps",
        ),
        "Spearman ρ between the case–control t-map and each reference map (regions present in both), spin p.",
    )
    body += table(ref, columns=["map", "format", "n_regions", "rho", "p_spin", "n_spins", "file"])
    return Section("reference-maps", title, body)


def _crosscohort(ctx: _Context) -> Section:
    title = "Cohorts compared and combined"
    pairs = ctx.results.table("crosscohort_correlations")
    pca = ctx.results.json("crosscohort_pca")
    pc1 = ctx.results.table("crosscohort_pc1")
    controls = ctx.results.table("crosscohort_controlsms")
    if pairs is None and pca is None and controls is None:
        return _not_run_section(
            "cross-cohort",
            title,
            "cross-cohort analysis",
            ["desc-crosscohort_correlations.tsv", "desc-crosscohort_pca.json"],
            Markup(
                "It runs when other bids-ms outputs are given with <code>--combine DIR …</code>."
            ),
        )
    body = ""
    if pairs is not None:
        body += _draw(
            ctx,
            "cross-cohort correlations",
            lambda: F.plot_crosscohort_matrix(pairs, ctx.fig("desc-crosscohort_correlations.svg")),
            "Spearman correlations between the cohorts' case–control t-maps, spin p in each cell.",
        )
    if pca is not None:
        body += _draw(
            ctx,
            "cross-cohort PCA",
            lambda: F.plot_pca_scree(pca, ctx.fig("desc-crosscohort_pca.svg")),
            "Variance explained by each principal component of the cohorts' standardised t-maps, "
            "with eigenvalues.",
        )
        loadings = pca.get("loadings") or {}
        if loadings:
            body += table(
                pd.DataFrame({"cohort": list(loadings), "PC1 loading": list(loadings.values())})
            )
    if pc1 is not None:
        body += _draw(
            ctx,
            "PC1 map",
            lambda: plot_regional_map(
                pc1.set_index("region")["value"],
                ctx.fig("desc-crosscohort_pc1_map.png"),
                title="PC1 of the cohorts' t-maps",
                label="PC1 score",
            ),
            "PC1 scores: the case–control pattern shared by the cohorts (Fig. 6A, upper), the response of the "
            "transcriptomic stage.",
        )
    if controls is not None:
        body += _crosscohort_controls(ctx, controls)
    return Section("cross-cohort", title, body)


def _crosscohort_controls(ctx: _Context, pairs: pd.DataFrame) -> Markup:
    """The controls' mean MS maps of the cohorts side by side and their correlations (Fig. S1–S2)."""
    body = Markup(
        "<h3>Controls' MS across cohorts (Fig. S1–S2)</h3>"
        '<p class="lead">Is morphometric similarity a reproducible measure in healthy controls '
        "(Martins et al. 2022, section 3.1)? The controls' mean regional MS maps of two cohorts come "
        "from different participants, so here the spin null is the valid test.</p>"
    )
    maps = ctx.results.table("crosscohort_controlsmaps")
    if maps is not None:
        maps = maps.set_index("region")
        values = maps.to_numpy(dtype=float)
        lim = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
        panels = []
        for k, cohort in enumerate(maps.columns):
            panels.append(
                _draw(
                    ctx,
                    f"controls' MS of {cohort}",
                    lambda cohort=cohort, k=k: plot_regional_map(
                        maps[cohort],
                        ctx.fig(f"desc-crosscohort_controlsms{k}_map.png"),
                        title=f"{cohort}: controls' mean regional MS",
                        label="mean regional MS",
                        vmin=-lim,
                        vmax=lim,
                    ),
                    f"Mean regional MS of the controls of {cohort} (same colour scale "
                    "for every cohort).",
                )
            )
        body += Markup('<div class="grid2">{}</div>').format(Markup("").join(panels))
    body += _draw(
        ctx,
        "controls' MS correlations",
        lambda: F.plot_crosscohort_matrix(
            pairs,
            ctx.fig("desc-crosscohort_controlsms.svg"),
            label="Spearman ρ of controls' MS maps",
        ),
        "Spearman correlations between the cohorts' controls' mean regional MS maps, spin p in each "
        "cell (Fig. S2).",
    )
    body += table(pairs, columns=["cohort_a", "cohort_b", "rho", "p_spin", "n_spins"])
    return body


_RESPONSES = {
    "t": "case–control t-map (left hemisphere)",
    "PC1": "PC1 of the cohorts' t-maps (left hemisphere)",
}


def response_label(response: object) -> str:
    """How the transcriptomic stage's ``Response`` is described to readers."""
    text = str(response or "")
    if text.startswith("--response-map"):
        return (
            "the map given with --response-map ("
            + text.removeprefix("--response-map").strip()
            + ")"
        )
    return _RESPONSES.get(text, text or "response map")


def _transcriptomics(ctx: _Context) -> Section:
    title = "Imaging transcriptomics (Fig. 6)"
    res = ctx.results
    genes = res.table("pls1_genes")
    stats_json = res.json("pls1_stats")
    if genes is None and stats_json is None:
        return _not_run_section(
            "transcriptomics",
            title,
            "transcriptomic stage",
            ["desc-pls1_genes.tsv", "desc-pls1_stats.json"],
            Markup(
                "It runs at the end of the group level unless <code>--skip-transcriptomics</code> "
                "is given."
            ),
        )
    stats_json = stats_json or {}
    settings = stats_json.get("Settings") or {}
    expr = stats_json.get("Expression") or {}
    items = [
        ("Response", response_label(stats_json.get("Response"))),
        ("Expression", expr.get("Source")),
        ("Genes", expr.get("NumberOfGenes", stats_json.get("n_genes"))),
        (
            "PLS1 variance explained",
            f"{100 * stats_json['var_explained']:.1f} %"
            if stats_json.get("var_explained") is not None
            else None,
        ),
        (
            "PLS1 scores vs response (spatial null)",
            f"r = {stats_json['r']:.2f}, {F.format_p(stats_json.get('p_spin'), name='p_spin')}"
            f" over {stats_json.get('n_spins')} spins"
            if stats_json.get("r") is not None
            else None,
        ),
        (
            "PLS1 permutation p"
            + (f" (p_perm: {stats_json['perm_null']} null)" if stats_json.get("perm_null") else ""),
            _p(stats_json.get("p_perm")) if "p_perm" in stats_json else None,
        ),
        (
            "PLS1 shuffle p (the paper's test)",
            F.format_p(stats_json.get("p_shuffle"), name="p_shuffle")
            if "p_shuffle" in stats_json
            else None,
        ),
        (
            "PLS1+ / PLS1− genes",
            f"{stats_json.get('n_pls1_plus')} / {stats_json.get('n_pls1_minus')} "
            f"(|Z| > {stats_json.get('z_threshold')})"
            if "n_pls1_plus" in stats_json
            else None,
        ),
        ("On spun maps (null)", _null_list_text(stats_json)),
        (
            "Permutations / bootstraps / spins",
            f"{settings.get('n_perm')} ({settings.get('perm_null')}) / "
            f"{stats_json.get('n_bootstraps', settings.get('n_boot'))} / {stats_json.get('n_spins', settings.get('n_spins'))}"
            if settings
            else None,
        ),
        ("Seed", stats_json.get("Seed")),
    ]
    body = _exploratory_banner(stats_json) + definition_list(items)
    if stats_json.get("Note"):
        body += note(escape(str(stats_json["Note"])))
    scores = res.table("pls1_scores")
    if scores is not None:
        sc = scores.set_index("region")
        body += Markup('<div class="grid2">')
        body += _draw(
            ctx,
            "PLS1 score map",
            lambda: plot_regional_map(
                sc["score"],
                ctx.fig("desc-pls1_scores_map.png"),
                title="PLS1 scores",
                label="PLS1 score",
                hemispheres=("lh",),
            ),
            "Regional PLS1 scores (left hemisphere, where AHBA samples are; Fig. 6A, lower).",
        )
        if "response" in sc:
            body += _draw(
                ctx,
                "response map",
                lambda: plot_regional_map(
                    sc["response"],
                    ctx.fig("desc-pls1_response_map.png"),
                    title="Response map",
                    label=str(stats_json.get("Response") or "response"),
                    hemispheres=("lh",),
                ),
                "The response map PLS explained (left hemisphere).",
            )
        body += Markup("</div>")
        body += _draw(
            ctx,
            "PLS1 scatter",
            lambda: F.plot_pls_scatter(
                scores,
                stats_json,
                ctx.fig("desc-pls1_scatter.svg"),
                response_label=f"response ({stats_json.get('Response', '')})",
            ),
            "PLS1 scores against the response across the 34 left-hemisphere regions (Fig. 6A, right).",
        )
    comps = res.table("pls_components")
    if comps is not None:
        body += _draw(
            ctx,
            "PLS components",
            lambda: F.plot_pls_components(comps, ctx.fig("desc-pls_components.svg")),
            "Variance of the response explained by each PLS component; * permutation p < 0.05 "
            + (
                {
                    "spin": "against spin permutations (spatial null)",
                    "shuffle": "against random shuffles of the regions (the paper's test)",
                }.get(str(stats_json.get("perm_null")), "")
            )
            + ".",
        )
    if genes is not None:
        thr = stats_json.get("z_threshold", settings.get("z_threshold", 3.0))
        body += _draw(
            ctx,
            "top genes",
            lambda: F.plot_top_genes(genes, ctx.fig("desc-pls1_topgenes.svg"), threshold=thr),
            f"The 10 genes with the highest and lowest bootstrap Z of their PLS1 weight (Fig. 6B); dotted: "
            f"the PLS1± threshold |Z| = {thr}.",
        )
        cols = ["rank", "gene", "weight", "z", "p", "p_fdr"]
        ordered = genes.sort_values("z", ascending=False)
        body += (
            Markup('<div class="grid2"><div><h3>Top PLS1+</h3>')
            + table(ordered.head(10), columns=cols)
            + Markup("</div>")
        )
        body += (
            Markup("<div><h3>Top PLS1−</h3>")
            + table(ordered.tail(10).iloc[::-1], columns=cols)
            + Markup("</div></div>")
        )
        body += Markup(
            '<p class="lead">Full lists: <code>desc-pls1_genes.tsv</code>, <code>desc-pls1plus_genes.txt</code>, '
            "<code>desc-pls1minus_genes.txt</code>.</p>"
        )
    return Section("transcriptomics", title, body)


def _null_list_text(stats_json: dict) -> str | None:
    """PLS1± list sizes on spun maps and the empirical false share, for the report."""
    null = stats_json.get("null_list_size") or {}
    if not null.get("n_null_maps") or null.get("plus_median") is None:
        return None

    def share(value) -> str:
        return "n/a" if value is None else f"{100 * float(value):.0f} %"

    return (
        f"median (95th percentile) list sizes over {null['n_null_maps']} spun maps with the same "
        f"bootstrap and threshold: PLS1+ {null['plus_median']:g} ({null['plus_q95']:g}), "
        f"PLS1− {null['minus_median']:g} ({null['minus_q95']:g}); expected false share of the "
        f"observed lists: PLS1+ {share(stats_json.get('empirical_fdr_plus'))}, "
        f"PLS1− {share(stats_json.get('empirical_fdr_minus'))}"
    )


def _exploratory_banner(stats_json: dict) -> Markup:
    """The warning at the top of the transcriptomics section when PLS1 fails its spatial null."""
    if "r" not in stats_json:
        return Markup("")
    p_spin = stats_json.get("p_spin")
    if isinstance(p_spin, (int, float)) and math.isfinite(p_spin) and p_spin < 0.05:
        return Markup("")
    why = (
        f"PLS1 does not pass its spatial null ({F.format_p(p_spin, name='p_spin')} ≥ 0.05)"
        if isinstance(p_spin, (int, float)) and math.isfinite(p_spin)
        else "PLS1 was not tested against a spatial null (no spin permutations)"
    )
    return note(
        Markup(
            "<strong>Exploratory.</strong> {}: the association between gene expression and the "
            "response map is not distinguishable from what the map's spatial autocorrelation alone "
            "produces. The gene lists and the enrichment results below are exploratory."
        ).format(why),
        kind="warn",
    )


_SPATIAL_COLUMNS = {
    "p_spatial": "p spatial",
    "p_spatial_fdr": "FDR spatial",
    "p": "p Fisher (paper)",
    "p_fdr": "FDR Fisher (paper)",
}


def _enrichment_table(
    tab: pd.DataFrame, *, max_rows: int | None = TABLE_MAX_ROWS, full_table: str | None = None
) -> Markup:
    """Rows sorted by the spatial-null p (then Fisher's), both tests shown and labelled."""
    has_spatial = "p_spatial" in tab.columns and tab["p_spatial"].notna().any()
    order = ["p_spatial", "p"] if has_spatial else ["p"]
    shown = tab.sort_values(order, na_position="last").rename(columns=_SPATIAL_COLUMNS)
    cols = ["gene_set", "direction", "overlap", "set_size", "odds_ratio"]
    cols += [_SPATIAL_COLUMNS[c] for c in ("p_spatial", "p_spatial_fdr")] if has_spatial else []
    cols += [_SPATIAL_COLUMNS[c] for c in ("p", "p_fdr")]
    return table(shown, columns=cols, max_rows=max_rows, full_table=full_table)


def _enrichment(ctx: _Context) -> Section:
    title = "Enrichment (Fig. 7)"
    res = ctx.results
    cells = res.table("enrichment_celltypes")
    libs = res.enrichment_libraries()
    if cells is None and not libs:
        return _not_run_section(
            "enrichment",
            title,
            "enrichment",
            ["desc-enrichment_celltypes.tsv"],
            "It runs after PLS in the group level.",
        )
    body = ""

    def spatial(tab: pd.DataFrame | None) -> bool:
        return tab is not None and "p_spatial" in tab.columns and tab["p_spatial"].notna().any()

    any_spatial = spatial(cells) or any(spatial(res.table(f"enrichment_{lib}")) for lib in libs)
    if any_spatial:
        body += Markup(
            '<p class="lead">Each gene set is tested first against a spatial null (the ensemble '
            "approach of Fulcher et al. 2021): the mean Spearman correlation of its genes with the "
            "response map against the same score on spun maps; PLS1+ rows test the upper tail, "
            "PLS1− rows the lower tail, FDR within each library. Tables and figures are sorted and "
            "coloured by it. The Fisher tests of the PLS1± lists (p Fisher, the paper's test) are "
            "shown beside it; they ignore spatial autocorrelation and co-expression between genes, "
            "and pass on null maps far more often than 5 %.</p>"
        )
    else:
        body += note(
            Markup(
                "No spatial-null p in these tables (<code>--enrichment-null none</code>, "
                "<code>--n-spins 0</code> or outputs of an earlier version): only the paper's "
                "Fisher tests are shown, which give false positives on spatially autocorrelated maps."
            )
        )
    if cells is not None:
        body += Markup("<h3>Cell types</h3>")
        if cells.empty:
            body += note(
                escape(
                    str(
                        (res.sidecar("enrichment_celltypes") or {}).get("Note") or "Nothing tested."
                    )
                )
            )
        else:
            if spatial(cells):
                body += _draw(
                    ctx,
                    "cell-type enrichment (spatial null)",
                    lambda: F.plot_enrichment_heatmap(
                        cells,
                        ctx.fig("desc-enrichment_celltypes_spatial.svg"),
                        value="neglog10_pfdr",
                        p_column="p_spatial",
                        fdr_column="p_spatial_fdr",
                        title="Cell types (Seidlitz et al. 2020), spatial null",
                    ),
                    "−log10 FDR-adjusted spatial-null p of each cell type: its genes' mean "
                    "correlation with the map against spun maps (upper tail for PLS1+, lower tail "
                    "for PLS1−); * FDR < 0.05.",
                )
            body += _draw(
                ctx,
                "cell-type enrichment",
                lambda: F.plot_enrichment_heatmap(
                    cells,
                    ctx.fig("desc-enrichment_celltypes.svg"),
                    value="odds_ratio",
                    title="Cell types (Seidlitz et al. 2020), Fisher (the paper's test)",
                ),
                "Odds ratio of the overlap of PLS1+ and PLS1− with the genes of each cell type (one-sided Fisher "
                "test, background: the expression matrix's genes; the paper's test, Fig. 7B); * Fisher FDR < "
                "0.05.",
            )
            body += _enrichment_table(cells, full_table="desc-enrichment_celltypes.tsv")
        rank = res.table("rankenrichment_celltypes")
        if rank is not None and not rank.empty:
            body += Markup(
                "<h4>Rank-based test (median rank in the PLS1 ranking vs random sets)</h4>"
            ) + table(rank)
    for lib in libs:
        tab = res.table(f"enrichment_{lib}")
        side = res.sidecar(f"enrichment_{lib}") or {}
        body += Markup("<h3>Gene sets: {}</h3>").format(lib)
        if side.get("GeneSets"):
            body += Markup('<p class="lead">{}</p>').format(str(side["GeneSets"]))
        if tab is None or tab.empty:
            body += note(escape(str(side.get("Note") or "Nothing tested.")))
            continue
        use_spatial = spatial(tab)
        p_col, fdr_col = ("p_spatial", "p_spatial_fdr") if use_spatial else ("p", "p_fdr")
        test = "spatial-null" if use_spatial else "Fisher (the paper's test)"
        n_sig = int((tab[fdr_col] < 0.05).sum())
        top = 10 if tab["gene_set"].nunique() > 12 else None
        body += _draw(
            ctx,
            f"{lib} enrichment",
            lambda tab=tab, lib=lib, top=top, p_col=p_col, fdr_col=fdr_col: (
                F.plot_enrichment_heatmap(
                    tab.sort_values([p_col, "p"], kind="stable"),
                    ctx.fig(f"desc-enrichment_{_safe(lib)}.svg"),
                    value="neglog10_pfdr",
                    top=top,
                    title=f"{lib}" + (f": top {top} sets per direction by p" if top else ""),
                    p_column=p_col,
                    fdr_column=fdr_col,
                )
            ),
            f"−log10 FDR-adjusted {test} p of the enrichment of PLS1+ and PLS1− in the {lib} "
            f"sets ({tab['gene_set'].nunique():,} sets; {n_sig} tests at FDR < 0.05); * FDR < 0.05 "
            "(Fig. 7A)"
            + (
                f"; Fisher (the paper's test): {int((tab['p_fdr'] < 0.05).sum())} at FDR < 0.05."
                if use_spatial
                else "."
            ),
        )
        body += _enrichment_table(tab, max_rows=20, full_table=f"desc-enrichment_{lib}.tsv")
    ppi = res.table("ppi_network")
    if ppi is not None:
        body += Markup("<h3>Protein interaction networks (STRING)</h3>") + table(ppi)
    return Section("enrichment", title, body)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-" else "" for ch in name) or "geneset"


def _methods(ctx: _Context) -> tuple[Section, str]:
    res = ctx.results
    parts = ctx.participants
    participants = None
    if parts:
        participants = {
            "n": len(parts),
            "features": list(parts[0].sidecar.get("Features") or parts[0].morphometry.columns),
            "sources": {p.sidecar.get("Source") for p in parts},
            "freesurfer_versions": {p.sidecar.get("FreeSurferVersion") for p in parts},
        }
    libs = {lib: res.sidecar(f"enrichment_{lib}") or {} for lib in res.enrichment_libraries()}
    ref = res.table("reference_correlations")
    stages = {
        "lofo": res.sidecar("lofo_correlations")
        if res.table("lofo_correlations") is not None
        and res.table("lofo_correlations")["rho"].notna().any()
        else None,
        "economo": res.sidecar("economo_casecontrol"),
        "hubs": res.json("hubs_stats"),
        "reference": res.sidecar("reference_correlations")
        if ref is not None and not ref.empty
        else None,
        "crosscohort": res.json("crosscohort_pca"),
        "crosscohort_controls": res.sidecar("crosscohort_controlsms"),
        "pls": res.json("pls1_stats"),
        "pls_components": res.sidecar("pls_components"),
        "celltypes": res.sidecar("enrichment_celltypes"),
        "genesets": libs,
        "ppi": res.sidecar("ppi_network"),
        "qc": {"threshold": Z_THRESHOLD, "limit": REGIONAL_OUTLIER_LIMIT} if parts else None,
    }
    methods = methods_text(participants=participants, group=ctx.glob or None, stages=stages)
    body = Markup(
        '<p class="lead">Written from the settings recorded in the outputs’ sidecars; also in '
        "<code>logs/CITATION.md</code>. You may paste it into your methods section.</p>"
    )
    body += methods_html(methods)
    return (
        Section("methods", "Methods and references", body),
        citation_markdown(methods),
        citation_bibtex(methods),
    )


# --------------------------------------------------------------------------- entry point


def build_group_report(output_dir: Path) -> Path:
    """Write ``<out>/group/report.html``, its figures and ``<out>/logs/CITATION.md`` (+ ``.bib``).

    Reads only derivatives already written (participant derivatives and ``<out>/group/``);
    sections whose files are absent say which stage did not run.

    Parameters
    ----------
    output_dir : Path
        The bids-ms output folder.

    Returns
    -------
    Path
        The report.

    Raises
    ------
    InputDataError
        ``output_dir`` holds neither participant derivatives nor group outputs.
    """
    out = Path(output_dir)
    ctx = _Context(out)
    if not ctx.participants and not ctx.group_dir.is_dir():
        raise InputDataError(
            f"{out}: no bids-ms participant derivatives and no group/ folder to report on; "
            "run the participant level (and the group level) first"
        )
    ctx.group_dir.mkdir(parents=True, exist_ok=True)
    LOGGER.info("writing the group report in %s", ctx.group_dir)
    builders = [
        _summary,
        _quality,
        _global,
        _regional,
        _lofo,
        _economo,
        _hubs,
        _reference,
        _crosscohort,
        _transcriptomics,
        _enrichment,
    ]
    sections = [
        _build_section(build, ctx, section_id)
        for build, section_id in zip(builders, GROUP_SECTIONS, strict=False)
    ]
    methods_section, citation, bibtex = _methods(ctx)
    sections.append(methods_section)
    # Figures of an earlier build that this build did not draw (a stage since removed).
    if ctx.fig_dir.is_dir():
        keep = {p.name for p in ctx.figures}
        for old in ctx.fig_dir.iterdir():
            if old.is_file() and old.name.startswith("desc-") and old.name not in keep:
                old.unlink()
    g = ctx.glob
    subtitle = escape(f"{out.resolve().name}: ")
    if g:
        subtitle += escape(
            f"{g.get('CaseLabel')} (n = {g.get('NCase')}) vs {g.get('ControlLabel')} "
            f"(n = {g.get('NControl')}), morphometric similarity, Martins et al. 2022"
        )
    else:
        subtitle += escape(f"{len(ctx.participants)} participants, morphometric similarity")
    report = write_page(
        ctx.group_dir / "report.html",
        "bids-ms group report",
        subtitle,
        sections,
        assets=ctx.fig_dir,
    )
    atomic_write_text(out / "logs" / "CITATION.md", citation)
    atomic_write_text(out / "logs" / "CITATION.bib", bibtex)
    LOGGER.info("group report: %s (%d figures)", report, len(ctx.figures))
    return report
