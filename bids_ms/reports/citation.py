"""The methods paragraph ("boilerplate") with references, written from the outputs' sidecars.

Like abagen's ``reporting.py`` and fMRIPrep's ``logs/CITATION.md``, the text states what was
actually run: the versions, features, covariates, harmonisation, numbers of spins,
permutations and bootstraps, and seeds are read from the JSON sidecars of the derivatives,
never from defaults. Stages whose outputs are absent are left out of the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup

from .. import __version__

__all__ = [
    "REFERENCES",
    "Methods",
    "methods_text",
    "citation_markdown",
    "citation_bibtex",
    "reference_fields",
    "methods_html",
    "methods_markdown",
    "software_versions",
]

#: Every reference the methods text may cite, by key.
REFERENCES: dict[str, str] = {
    "martins2022": "Martins D, Dipasquale O, Veronese M, Turkheimer F, Loggia ML, McMahon S, Howard MA, "
    "Williams SCR. Transcriptional and cellular signatures of cortical morphometric remodelling in chronic "
    "pain. PAIN 2022;163:e759–e773. doi:10.1097/j.pain.0000000000002480",
    "seidlitz2018": "Seidlitz J, Váša F, Shinn M, Romero-Garcia R, Whitaker KJ, Vértes PE, et al. "
    "Morphometric similarity networks detect microscale cortical organization and predict inter-individual "
    "cognitive variation. Neuron 2018;97:231–247.e7. doi:10.1016/j.neuron.2017.11.039",
    "fischl2012": "Fischl B. FreeSurfer. NeuroImage 2012;62:774–781. doi:10.1016/j.neuroimage.2012.01.021",
    "desikan2006": "Desikan RS, Ségonne F, Fischl B, Quinn BT, Dickerson BC, Blacker D, et al. An automated "
    "labeling system for subdividing the human cerebral cortex on MRI scans into gyral based regions of "
    "interest. NeuroImage 2006;31:968–980. doi:10.1016/j.neuroimage.2006.01.021",
    "benjamini1995": "Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and powerful "
    "approach to multiple testing. J R Stat Soc B 1995;57:289–300. doi:10.1111/j.2517-6161.1995.tb02031.x",
    "fortin2018": "Fortin JP, Cullen N, Sheline YI, Taylor WD, Aselcioglu I, Cook PA, et al. Harmonization of "
    "cortical thickness measurements across scanners and sites. NeuroImage 2018;167:104–120. "
    "doi:10.1016/j.neuroimage.2017.11.024",
    "whitaker2016": "Whitaker KJ, Vértes PE, Romero-Garcia R, Váša F, Moutoussis M, Prabhu G, et al. "
    "Adolescence is associated with genomically patterned consolidation of the hubs of the human brain "
    "connectome. PNAS 2016;113:9105–9110. doi:10.1073/pnas.1601745113",
    "winkler2014": "Winkler AM, Ridgway GR, Webster MA, Smith SM, Nichols TE. Permutation inference for "
    "the general linear model. NeuroImage 2014;92:381–397. doi:10.1016/j.neuroimage.2014.01.060",
    "alexanderbloch2018": "Alexander-Bloch AF, Shou H, Liu S, Satterthwaite TD, Glahn DC, Shinohara RT, et al. "
    "On testing for spatial correspondence between maps of human brain structure and function. NeuroImage "
    "2018;178:540–551. doi:10.1016/j.neuroimage.2018.05.070",
    "vasa2018": "Váša F, Seidlitz J, Romero-Garcia R, Whitaker KJ, Rosenthal G, Vértes PE, et al. Adolescent "
    "tuning of association cortex in human structural brain networks. Cereb Cortex 2018;28:281–294. "
    "doi:10.1093/cercor/bhx249",
    "hawrylycz2012": "Hawrylycz MJ, Lein ES, Guillozet-Bongaarts AL, Shen EH, Ng L, Miller JA, et al. An "
    "anatomically comprehensive atlas of the adult human brain transcriptome. Nature 2012;489:391–399. "
    "doi:10.1038/nature11405",
    "markello2021": "Markello RD, Arnatkevičiūtė A, Poline JB, Fulcher BD, Fornito A, Misic B. Standardizing "
    "workflows in imaging transcriptomics with the abagen toolbox. eLife 2021;10:e72129. "
    "doi:10.7554/eLife.72129",
    "arnatkeviciute2019": "Arnatkevičiūtė A, Fulcher BD, Fornito A. A practical guide to linking brain-wide "
    "gene expression and neuroimaging data. NeuroImage 2019;189:353–367. "
    "doi:10.1016/j.neuroimage.2019.01.011",
    "seidlitz2020": "Seidlitz J, Nadig A, Liu S, Bethlehem RAI, Vértes PE, Morgan SE, et al. Transcriptomic "
    "and cellular decoding of regional brain vulnerability to neurogenetic disorders. Nat Commun "
    "2020;11:3358. doi:10.1038/s41467-020-17051-5",
    "habib2017": "Habib N, Avraham-Davidi I, Basu A, Burks T, Shekhar K, Hofree M, et al. Massively parallel "
    "single-nucleus RNA-seq with DroNc-seq. Nat Methods 2017;14:955–958. doi:10.1038/nmeth.4407",
    "lake2018": "Lake BB, Chen S, Sos BC, Fan J, Kaeser GE, Yung YC, et al. Integrative single-cell analysis "
    "of transcriptional and epigenetic states in the human adult brain. Nat Biotechnol 2018;36:70–80. "
    "doi:10.1038/nbt.4038",
    "darmanis2015": "Darmanis S, Sloan SA, Zhang Y, Enge M, Caneda C, Shuer LM, et al. A survey of human "
    "brain transcriptome diversity at the single cell level. PNAS 2015;112:7285–7290. "
    "doi:10.1073/pnas.1507125112",
    "zhang2016": "Zhang Y, Sloan SA, Clarke LE, Caneda C, Plaza CA, Blumenthal PD, et al. Purification and "
    "characterization of progenitor and mature human astrocytes reveals transcriptional and functional "
    "differences with mouse. Neuron 2016;89:37–53. doi:10.1016/j.neuron.2015.11.013",
    "li2018": "Li M, Santpere G, Imamura Kawasawa Y, Evgrafov OV, Gulden FO, Pochareddy S, et al. "
    "Integrative functional genomic analysis of human brain development and neuropsychiatric risks. "
    "Science 2018;362:eaat7615. doi:10.1126/science.aat7615",
    "fulcher2021": "Fulcher BD, Arnatkevičiūtė A, Fornito A. Overcoming false-positive gene-category "
    "enrichment in the analysis of spatially resolved transcriptomic brain atlas data. Nat Commun "
    "2021;12:2669. doi:10.1038/s41467-021-22862-1",
    "markello2021nulls": "Markello RD, Misic B. Comparing spatial null models for brain maps. NeuroImage "
    "2021;236:118052. doi:10.1016/j.neuroimage.2021.118052",
    "wei2022": "Wei Y, de Lange SC, Pijnenburg R, Scholtens LH, Ardesch DJ, Watanabe K, et al. Statistical "
    "testing in transcriptomic-neuroimaging studies: a how-to and evaluation of methods assessing spatial "
    "and gene specificity. Hum Brain Mapp 2022;43:885–901. doi:10.1002/hbm.25711",
    "szklarczyk2019": "Szklarczyk D, Gable AL, Lyon D, Junge A, Wyder S, Huerta-Cepas J, et al. STRING v11: "
    "protein–protein association networks with increased coverage. Nucleic Acids Res 2019;47:D607–D613. "
    "doi:10.1093/nar/gky1131",
    "iglewicz1993": "Iglewicz B, Hoaglin DC. How to detect and handle outliers. ASQC Quality Press, 1993.",
    "rosen2018": "Rosen AFG, Roalf DR, Ruparel K, Blake J, Seelaus K, Villa LP, et al. Quantitative assessment "
    "of structural image quality. NeuroImage 2018;169:407–418. doi:10.1016/j.neuroimage.2017.12.059",
}


@dataclass
class Methods:
    """The methods text as paragraphs with citation keys, and the references cited."""

    paragraphs: list[tuple[str, str]] = field(default_factory=list)  # (heading, text with [@key])
    cited: list[str] = field(default_factory=list)

    def cite(self, *keys: str) -> str:
        for key in keys:
            if key not in REFERENCES:
                raise KeyError(key)
            if key not in self.cited:
                self.cited.append(key)
        return "[" + ", ".join(f"@{k}" for k in keys) + "]"

    def numbered(self, text: str) -> str:
        """Replace ``[@a, @b]`` by ``[1, 2]`` in order of first citation."""

        def repl(match: re.Match) -> str:
            keys = [k.strip().lstrip("@") for k in match.group(1).split(",")]
            return "[" + ", ".join(str(self.cited.index(k) + 1) for k in keys) + "]"

        return re.sub(r"\[(@[^\]]+)\]", repl, text)


def _join(items: Sequence[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def software_versions(*, harmonize: str | None = None, abagen: bool = False) -> dict[str, str]:
    """The software versions every sidecar records (``SoftwareVersions``).

    bids-ms, Python, numpy, scipy and pandas; the ComBat implementation when ``harmonize`` is
    ``'combat'``; abagen when ``abagen`` is true (AHBA microarray processed in this run).
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"bids-ms": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pandas", *(("abagen",) if abagen else ())):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover - installed with bids-ms
            pass
    if harmonize == "combat":
        from ..harmonize import combat_software

        out.update(combat_software())
    return out


def _num(value, default: str = "an unrecorded number of") -> str:
    return f"{int(value):,}" if isinstance(value, (int, float)) and value == value else default


def methods_text(
    *,
    participants: Mapping | None,
    group: Mapping | None,
    stages: Mapping[str, Mapping | None],
) -> Methods:
    """Write the methods paragraphs from what the outputs' sidecars record.

    Parameters
    ----------
    participants : mapping, optional
        Summary of the participant level: ``n``, ``features``, ``sources`` (set of
        'recon-all'/'subjects-dir'/'tables'), ``freesurfer_versions``, ``bids_ms_versions``.
    group : mapping, optional
        ``desc-casecontrol_global.json`` (covariates, harmonisation, seed, spins, labels, n).
    stages : mapping of str to mapping
        Other sidecars by stage name, each ``None`` when the stage did not run: ``lofo``,
        ``economo``, ``hubs`` (``desc-hubs_stats.json``), ``reference``, ``crosscohort``,
        ``crosscohort_controls`` (``desc-crosscohort_controlsms.json``), ``pls`` (``desc-pls1_stats.json``),
        ``pls_components`` (``desc-pls_components.json``), ``celltypes``
        (``desc-enrichment_celltypes.json``), ``genesets`` (mapping of library name to sidecar),
        ``ppi``, ``qc`` (threshold, limit).

    Returns
    -------
    Methods
    """
    m = Methods()
    if participants:
        m.paragraphs.append(("Morphometric similarity", _ms_text(participants, m)))
    if group:
        m.paragraphs.append(("Case–control statistics", _casecontrol_text(group, m)))
        extra = _further_group_texts(stages, m)
        if extra:
            m.paragraphs.append(("Further group analyses", " ".join(extra)))
    pls = stages.get("pls")
    if pls:
        text = _transcriptomics_text(pls, stages.get("pls_components") or {}, m)
        m.paragraphs.append(("Imaging transcriptomics", text))
    enrich = _enrichment_texts(stages, m)
    if enrich:
        m.paragraphs.append(("Enrichment", " ".join(enrich)))
    qc = stages.get("qc")
    if qc:
        m.paragraphs.append(("Quality control", _qc_text(qc, m)))
    return m


def _ms_text(participants: Mapping, m: Methods) -> str:
    """Morphometric similarity: how the morphometry was obtained and MS computed."""
    feats = list(participants.get("features") or [])
    sources = set(participants.get("sources") or [])
    fs_versions = sorted(v for v in participants.get("freesurfer_versions") or [] if v)
    how = []
    if "recon-all" in sources:
        how.append("measured by FreeSurfer's recon-all")
    if "subjects-dir" in sources:
        how.append("read from existing FreeSurfer subject folders")
    if "tables" in sources:
        how.append("imported from FreeSurfer aparcstats2table/asegstats2table tables")
    fs_text = (
        f" (FreeSurfer {_join(fs_versions)})"
        if fs_versions
        else " (FreeSurfer version not recorded)"
    )
    return (
        f"Morphometric similarity (MS) networks were computed with bids-ms {__version__}, following "
        f"Martins et al. {m.cite('martins2022')}. The regional morphometry of "
        f"{_num(participants.get('n'))} participants was {_join(how) or 'measured by FreeSurfer'}"
        f"{fs_text} {m.cite('fischl2012')} in the 68 cortical regions of the Desikan–Killiany atlas "
        f"{m.cite('desikan2006')}. "
        f"For each participant, {len(feats)} morphometric features ({_join(feats)}) were z-scored across "
        "regions, and the MS of every pair of regions was the Pearson correlation of their feature vectors "
        f"{m.cite('seidlitz2018')}, giving a 68 × 68 MS matrix; regional MS was the mean MS of a region with "
        "the other 67, and global MS the mean of regional MS."
    )


def _casecontrol_text(group: Mapping, m: Methods) -> str:
    """Case–control statistics: the model, harmonisation, exclusions and the spins."""
    covs = list(group.get("Covariates") or [])
    cats = set(group.get("CategoricalCovariates") or [])
    cov_text = _join([f"{c} (categorical)" if c in cats else c for c in covs]) or "no covariates"
    harm = (group.get("Harmonization") or {}).get("Method", "none")
    harm_text = ""
    if harm == "combat":
        harm_text = (
            f" Regional MS was first harmonised across sites ({group.get('SiteColumn')}) with ComBat "
            f"{m.cite('fortin2018')}, protecting group and the biological covariates."
        )
    n_spins = group.get("NSpins") or 0
    text = (
        f"Case–control differences ({group.get('CaseLabel')}, n = {group.get('NCase')}; "
        f"{group.get('ControlLabel')}, n = {group.get('NControl')}) in regional and global MS were "
        f"estimated by ordinary least squares with {cov_text} as covariates.{harm_text} The group "
        "coefficient's t and two-sided p were reported for each region, with Benjamini–Hochberg false "
        f"discovery rate (FDR) correction over the 68 regions {m.cite('benjamini1995')}, and Cohen's d as "
        f"d = t·√(1/n_case + 1/n_control). "
    )
    if group.get("NExcluded"):
        text += f"{group['NExcluded']} participants were excluded (no derivatives or missing covariates). "
    if n_spins:
        text += (
            f"Spatial correspondence between maps was tested with {_num(n_spins)} spin permutations "
            f"{m.cite('alexanderbloch2018', 'vasa2018')} of the regions' centroids on the fsaverage sphere "
            "(the right hemisphere's rotation mirrored from the left's, regions reassigned one-to-one), "
            f"with random seed {group.get('Seed')}."
        )
    else:
        text += "Spin tests were switched off (0 spins)."
    return text + _software(group.get("SoftwareVersions"))


def _further_group_texts(stages: Mapping, m: Methods) -> list[str]:
    """LOFO, von Economo, hubs, reference maps, cross-cohort: one sentence each that ran."""
    extra = []
    if stages.get("lofo"):
        extra.append(
            "To check that no single feature drove the effects, MS was recomputed leaving out each "
            "feature in turn and the resulting t-maps correlated (Spearman) with the full t-map."
        )
    if stages.get("economo"):
        extra.append(
            "Regions were grouped into the seven cytoarchitectonic classes of von Economo and Koskinas "
            f"(five types plus limbic and insular cortex) as mapped to the Desikan–Killiany atlas by "
            f"Whitaker, Vértes et al. {m.cite('whitaker2016')}, and class-level MS was compared between "
            "groups with the same models."
        )
    if stages.get("hubs"):
        extra.append(_hubs_text(stages["hubs"], m))
    if stages.get("reference"):
        extra.append(
            "The case–control t-map was correlated (Spearman) with reference maps given by the user."
        )
    if stages.get("crosscohort"):
        extra.append(
            "The t-maps of the cohorts were compared pairwise (Spearman) and combined by principal "
            "component analysis of the standardised maps; PC1, signed to correlate positively with the "
            "mean map, summarised the shared pattern."
        )
    if stages.get("crosscohort_controls"):
        extra.append(
            "To check that MS is reproducible in healthy controls across cohorts (Martins et al. "
            f"{m.cite('martins2022')}, section 3.1), the controls' mean regional MS maps of every pair "
            "of cohorts were correlated (Spearman) and tested with spin permutations; two cohorts' "
            "control maps come from different participants, the case a spatial null is valid for."
        )
    return extra


#: How the methods text names the response maps the group level hands to the transcriptomic
#: stage (the ``Response`` of its sidecars; ``t`` and ``PC1`` from earlier versions).
_RESPONSE_NAMES = {
    "t": "the case–control t-map",
    "PC1": "PC1 of the cohorts' t-maps",
    "left-hemisphere case-control t-map": "the case–control t-map",
    "left-hemisphere PC1 of the cohorts' t-maps": "PC1 of the cohorts' t-maps",
}


def _expression_origin(pls: Mapping, m: Methods) -> str:
    """Where the expression matrix came from (§2.9), with its number of genes."""
    expr = pls.get("Expression") or {}
    n_genes = expr.get("NumberOfGenes", pls.get("n_genes"))
    if expr.get("ExpressionFile"):
        return (
            f"the expression matrix given by the user ({expr['ExpressionFile']}; "
            f"{_num(n_genes)} genes)"
        )
    if expr.get("AHBADir"):
        return (
            f"the Allen Human Brain Atlas microarray {m.cite('hawrylycz2012')} processed with abagen "
            f"{expr.get('AbagenVersion', '')} {m.cite('markello2021')} following Arnatkevičiūtė et al. "
            f"{m.cite('arnatkeviciute2019')} ({_num(n_genes)} genes)"
        )
    return (
        f"the Allen Human Brain Atlas {m.cite('hawrylycz2012')} as processed with abagen "
        f"{m.cite('markello2021')} following Arnatkevičiūtė et al. {m.cite('arnatkeviciute2019')} by "
        f"Martins et al. {m.cite('martins2022')} (the matrix shipped with bids-ms: probe reannotation, "
        "intensity-based filtering at 0.5, differential-stability probe selection, 2 mm tolerance "
        "with hemisphere and cortex constraints, scaled robust sigmoid normalisation, averaged over "
        f"the six donors; {_num(n_genes)} genes)"
    )


def _response_name(pls: Mapping) -> str:
    response = str(pls.get("Response") or "")
    if response.startswith("--response-map"):
        return "the map given by the user (" + response.removeprefix("--response-map").strip() + ")"
    return _RESPONSE_NAMES.get(response, response or "the response map")


def _pls_nulls_text(settings: Mapping, comps: Mapping, m: Methods) -> str:
    """The nulls of the components' variance explained: spins and/or shuffles (§2.10)."""
    perm_null = settings.get("perm_null", "shuffle")
    n_perm = comps.get("NumberOfNullResponses", settings.get("n_perm"))
    n_comp = settings.get("n_components", "?")
    n_spin_null = comps.get("NumberOfSpins")
    n_shuffle_null = comps.get("NumberOfShuffles")
    if n_spin_null is None and n_shuffle_null is None:  # outputs of an earlier version
        n_spin_null = n_perm if perm_null == "spin" else 0
        n_shuffle_null = n_perm if perm_null != "spin" else 0
    nulls = []
    if n_spin_null:
        nulls.append(
            f"{_num(n_spin_null)} spin permutations of the response, a spatial null that keeps "
            f"the map's spatial autocorrelation {m.cite('alexanderbloch2018', 'markello2021nulls')}"
            + (" (the p-value reported)" if perm_null == "spin" and n_shuffle_null else "")
        )
    if n_shuffle_null:
        nulls.append(
            f"{_num(n_shuffle_null)} random permutations of the response across regions, the "
            f"paper's test {m.cite('martins2022')}"
            + (" (the p-value reported)" if perm_null != "spin" and n_spin_null else "")
        )
    if not nulls:
        return f"The variance explained by components 1–{n_comp} was not tested (no permutations). "
    return (
        f"The variance explained by components 1–{n_comp} was tested against "
        + " and against ".join(nulls)
        + ", refitting PLS each time. "
    )


def _pls1_text(pls: Mapping, settings: Mapping, m: Methods) -> str:
    """PLS1: the bootstrap and the lists, their spatial null, and PLS1's spin test."""
    n_boot = pls.get("n_bootstraps", settings.get("n_boot"))
    n_spins = pls.get("n_spins", settings.get("n_spins"))
    z_thr = pls.get("z_threshold", settings.get("z_threshold"))
    if n_boot:
        text = (
            "The weights of PLS1 (signed to correlate positively with the response) were divided by their "
            f"standard errors over {_num(n_boot)} bootstrap resamples of the regions (each sign-aligned "
            "to the original weights); their two-sided normal p-values were corrected with the "
            f"Benjamini–Hochberg FDR {m.cite('benjamini1995')}, and genes with "
            f"Z > {z_thr} (PLS1+) or Z < −{z_thr} (PLS1−) were retained. "
        )
    else:
        text = "The PLS1 weights were not bootstrapped (no bootstrap resamples). "
    null_sizes = pls.get("null_list_size") or {}
    if n_boot and null_sizes.get("n_null_maps"):
        text += (
            f"{_num(null_sizes['n_null_maps'])} spun response maps went through the same bootstrap "
            "resamples and threshold, and the median of their list sizes over the observed list size "
            f"estimated the share of each list expected from spatial autocorrelation alone {m.cite('fulcher2021')}. "
        )
    if n_spins:
        p_spin = pls.get("p_spin")
        exploratory = isinstance(p_spin, (int, float)) and p_spin >= 0.05
        text += (
            "The correlation of PLS1 scores with the response (whose square is PLS1's variance "
            f"explained) was tested with {_num(n_spins)} spin permutations, refitting PLS1 to every spun map"
            + (
                f"; with p_spin = {float(p_spin):.3g} ≥ 0.05, the gene lists and enrichment results "
                "are exploratory"
                if exploratory
                else ""
            )
            + ". "
        )
    return text


def _transcriptomics_text(pls: Mapping, comps: Mapping, m: Methods) -> str:
    """Imaging transcriptomics (§2.9–2.10, §3.6), from ``desc-pls1_stats.json`` and
    ``desc-pls_components.json``."""
    settings = pls.get("Settings") or {}
    origin = _expression_origin(pls, m)
    text = (
        f"Gene expression in the 34 left-hemisphere regions, from {origin}, was related to "
        f"{_response_name(pls)} (left hemisphere) by partial least squares regression "
        f"{m.cite('whitaker2016')}, genes and response z-scored. "
    )
    text += _pls_nulls_text(settings, comps, m)
    text += _pls1_text(pls, settings, m)
    return text + f"Random seed {pls.get('Seed')}." + _software(pls.get("SoftwareVersions"))


def _enrichment_texts(stages: Mapping, m: Methods) -> list[str]:
    """Enrichment (§2.11–2.13): the libraries, the spatial null and Fisher tests, STRING."""
    enrich = []
    libs = stages.get("genesets") or {}
    sidecars = [stages.get("celltypes") or {}, *libs.values()]
    n_spatial = max((int(sc.get("NumberOfSpins") or 0) for sc in sidecars), default=0)
    spatial = n_spatial > 0 and any(sc.get("SpatialNull") for sc in sidecars)
    if stages.get("celltypes"):
        enrich.append(
            "Enrichment of PLS1+ and PLS1− was tested in the seven cell-type gene sets of Seidlitz et al. "
            f"{m.cite('seidlitz2020')}, pooled from five single-cell studies "
            f"{m.cite('habib2017', 'lake2018', 'darmanis2015', 'zhang2016', 'li2018')}"
            + (f" and in the gene-set libraries {_join(sorted(libs))}" if libs else "")
            + "."
        )
    elif libs:
        enrich.append(f"Enrichment was tested in the gene-set libraries {_join(sorted(libs))}.")
    if enrich and spatial:
        enrich.append(
            "Each gene set was tested against a spatial null by the ensemble approach of Fulcher et al. "
            f"{m.cite('fulcher2021')}: its score, the mean Spearman correlation of its genes with the response "
            f"map, was compared with the same score over {_num(n_spatial)} spun maps {m.cite('alexanderbloch2018')} "
            "(one-sided: upper tail for PLS1+, lower tail for PLS1−), with Benjamini–Hochberg FDR over the sets of "
            f"each library; such nulls keep the spatial autocorrelation of the map {m.cite('markello2021nulls', 'wei2022')}. "
            "Beside it, the paper's test: one-sided Fisher's exact tests of the PLS1+ and PLS1− lists (conditional "
            "maximum-likelihood odds ratio, as R's GeneOverlap) against the genes of the expression matrix as "
            "background, with FDR correction over sets within each direction; this test ignores spatial "
            "autocorrelation and gene–gene co-expression and gives false positives on null maps."
        )
    elif enrich:
        enrich.append(
            "The tests were one-sided Fisher's exact tests (conditional maximum-likelihood odds ratio, as R's "
            "GeneOverlap) against the genes of the expression matrix as background, with FDR correction over "
            "sets within each direction (no spatial null was run)."
        )
    ppi = stages.get("ppi")
    if ppi and ppi.get("StringLinks"):
        enrich.append(
            f"Protein interaction networks of PLS1+ and PLS1− were built from STRING {m.cite('szklarczyk2019')} "
            "at combined score ≥ 0.4 without text mining."
        )
    return enrich


def _qc_text(qc: Mapping, m: Methods) -> str:
    return (
        f"Participants were flagged for review when global MS or a feature's summary had a modified z-score "
        f"|z| > {qc.get('threshold', 3.5)} {m.cite('iglewicz1993')}, when at least {qc.get('limit', 7)} regions "
        "had an outlying feature or regional MS, or when FreeSurfer's Euler number, where available, was an "
        f"outlier {m.cite('rosen2018')}. Flags did not exclude anyone."
    )


def _hubs_text(hubs: Mapping, m: Methods) -> str:
    """The hub-susceptibility methods: the tests actually run."""
    text = (
        "Hub susceptibility was the Spearman correlation (ρ) between the controls' mean regional MS and "
        "the case–control t-map, and regions were assigned to four quadrants (dedifferentiation, "
        f"hypercoupling, hyperdifferentiation, decoupling) {m.cite('seidlitz2018', 'martins2022')}."
    )
    n_perm = hubs.get("n_label_perms")
    perm = hubs.get("LabelPermutation") or {}
    if n_perm:
        within = f" within {perm['Strata']}" if perm.get("Strata") else ""
        text += (
            f" Because the t-map and the controls' template come from the same participants, ρ was tested "
            f"with {_num(n_perm)} permutations of the case/control labels{within} {m.cite('winkler2014')}: "
            "for each permutation the covariate model, the t-map and the controls' mean regional MS were "
            "recomputed, and p was two-sided, (1 + #{|ρ_null| ≥ |ρ|}) / (1 + N). Each quadrant's "
            "percentage was compared with its permutation distribution."
        )
        if perm.get("ComBat"):
            text += (
                " ComBat was refitted under every permutation, with the permuted group protected."
            )
    elif n_perm == 0:
        text += " The label-permutation test was switched off (0 permutations)."
    if "differentiation" in hubs:
        text += (
            " Each participant's differentiation index was the slope of their regional MS regressed on "
            "the controls' mean regional MS (for a control, the mean without that participant), compared "
            "between groups with the same covariates; the partial ρ was ρ with the t-map adjusted for "
            "this index" + (", tested with the same permutations." if n_perm else ".")
        )
    if hubs.get("n_spins"):
        text += (
            " The spin p of ρ, the paper's test, was also reported; it is not valid for this question "
            "because the t-map depends on the control template."
        )
    return text


def _software(versions: Mapping | None) -> str:
    if not versions:
        return ""
    return " Software: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."


def citation_markdown(methods: Methods, *, title: str = "Citing bids-ms") -> str:
    """``logs/CITATION.md``: the methods paragraphs and the numbered references."""
    return methods_markdown(methods, title=title, bibtex="CITATION.bib")


def methods_markdown(methods: Methods, *, title: str, bibtex: str | None = None) -> str:
    """The methods paragraphs under ``title``, then the numbered references, as Markdown.

    Parameters
    ----------
    methods : Methods
        From :func:`methods_text`.
    title : str
        The first heading.
    bibtex : str, optional
        Name of the BibTeX file written beside this one, pointed to under the references.
    """
    lines = [
        f"# {title}",
        "",
        f"This text was written by bids-ms {__version__} from the settings recorded in the outputs' "
        "JSON sidecars. You may paste it into your methods section (CC0: no rights reserved).",
        "",
    ]
    for heading, text in methods.paragraphs:
        lines += [f"## {heading}", "", methods.numbered(text), ""]
    lines += ["## References", ""]
    lines += [f"{i}. {REFERENCES[key]}" for i, key in enumerate(methods.cited, start=1)]
    if bibtex:
        lines += ["", f"The same references for reference managers: `{bibtex}`, beside this file."]
    return "\n".join(lines) + "\n"


#: "Authors. Title. Journal Year;Volume:Pages. doi:DOI", the form of every journal article in
#: :data:`REFERENCES` (pages may hold a dot, e.g. 231–247.e7).
_ARTICLE_RE = re.compile(
    r"^(?P<author>.+?)\. (?P<title>.+?)\. (?P<journal>[^.;]+?) (?P<year>\d{4});"
    r"(?P<volume>[^:]+):(?P<pages>\S+?)\. doi:(?P<doi>\S+)$"
)
#: "Authors. Title. Publisher, Year." (books).
_BOOK_RE = re.compile(
    r"^(?P<author>.+?)\. (?P<title>.+?)\. (?P<publisher>[^.]+), (?P<year>\d{4})\.$"
)


def _bib_authors(authors: str) -> str:
    """``Martins D, Dipasquale O, et al`` → ``Martins, D. and Dipasquale, O. and others``."""
    names = []
    for name in (a.strip() for a in authors.split(",")):
        if name in ("et al", "et al."):
            names.append("others")
            continue
        family, _, initials = name.rpartition(" ")
        if not family or not initials.isupper():
            family, initials = name, ""
        names.append(f"{family}, {'. '.join(initials)}." if initials else family)
    return " and ".join(names)


def reference_fields(key: str) -> tuple[str, dict[str, str]]:
    """BibTeX entry type and fields of :data:`REFERENCES` ``[key]``, parsed from its text.

    Journal articles and books are split into their fields; anything else becomes a
    ``@misc`` whose ``note`` is the whole reference, so no citation is ever lost.
    """
    text = REFERENCES[key]
    match = _ARTICLE_RE.match(text)
    if match:
        fields = match.groupdict()
        fields["author"] = _bib_authors(fields["author"])
        fields["pages"] = fields["pages"].replace("–", "--")
        return "article", fields
    match = _BOOK_RE.match(text)
    if match:
        fields = match.groupdict()
        fields["author"] = _bib_authors(fields["author"])
        return "book", fields
    return "misc", {"note": text}


def _bib_value(value: str) -> str:
    return "{" + value.replace("{", "\\{").replace("}", "\\}") + "}"


def citation_bibtex(methods: Methods) -> str:
    """``logs/CITATION.bib``: bids-ms itself and every reference the methods text cites.

    The keys are those of :data:`REFERENCES` (``martins2022``, ``seidlitz2018``, ...), in
    the order of ``logs/CITATION.md``'s numbered list, after ``bidsms``.
    """
    from .. import __url__

    entries = [
        "@software{bidsms,\n"
        "  author = {{bids-ms developers}},\n"
        "  title = {bids-ms: morphometric similarity networks and their transcriptomic "
        "correlates as a BIDS-App},\n"
        f"  version = {{{__version__}}},\n"
        f"  url = {{{__url__}}},\n"
        "  note = {Implements Martins et al. 2022, PAIN 163:e759--e773}\n"
        "}"
    ]
    for key in methods.cited:
        kind, fields = reference_fields(key)
        body = ",\n".join(f"  {name} = {_bib_value(value)}" for name, value in fields.items())
        entries.append(f"@{kind}{{{key},\n{body}\n}}")
    header = (
        f"% Written by bids-ms {__version__} beside CITATION.md: the references of its methods "
        "text, keyed as there.\n"
    )
    return header + "\n\n".join(entries) + "\n"


def methods_html(methods: Methods) -> Markup:
    """The methods paragraphs and the references as HTML (escaped)."""
    parts = [
        Markup("<h3>{}</h3>\n<p>{}</p>").format(heading, methods.numbered(text))
        for heading, text in methods.paragraphs
    ]
    refs = Markup("\n").join(
        Markup("<li>{}</li>").format(_linked(REFERENCES[key])) for key in methods.cited
    )
    parts.append(Markup('<h3>References</h3>\n<ol class="refs">\n{}\n</ol>').format(refs))
    return Markup("\n").join(parts)


def _linked(reference: str) -> Markup:
    pieces = re.split(r"doi:(\S+)", reference)
    out = Markup("")
    for i, piece in enumerate(pieces):
        if i % 2:
            out += Markup('doi:<a href="https://doi.org/{0}">{0}</a>').format(piece)
        else:
            out += piece
    return out
