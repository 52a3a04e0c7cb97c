"""Case–control linear models of MS, fitted for many regions at once.

Implements Martins et al. 2022, *PAIN*, §2.4 (and §2.5, §2.6 for other outcomes): for
every region, ordinary least squares ``ms ~ group + covariates`` (age, sex and total
intracranial volume by default), the group coefficient's t test, Benjamini–Hochberg FDR
over the regions, and Cohen's d.

The fit is vectorised over outcomes (one QR decomposition of the design, shared by every
region) and equals statsmodels' ``OLS`` fit of each region separately, with categorical
covariates dummy-coded as patsy's default treatment coding (first level as reference). It is
kept for speed: the regional models run for every map, cohort and left-out feature, and
``bench/bench_models.py`` times 68 regions at 1.0 ms against 5.8 ms for a statsmodels loop
(246 participants) and 6.9 ms against 76 ms (10,000), t equal to 5e-15. The one model of
global MS is fitted with statsmodels itself (:func:`global_model`), for its summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .errors import InputDataError

__all__ = [
    "COHEN_D_FORMULA",
    "OLSResult",
    "design_matrix",
    "fit_ols",
    "fdr_bh",
    "cohens_d_from_t",
    "case_control",
    "global_model",
    "residualise",
]

#: The effect size written next to every case–control statistic.
COHEN_D_FORMULA = (
    "d = t * sqrt(1/n_case + 1/n_control), where t is the covariate-adjusted t statistic of "
    "the group coefficient (the case-control difference adjusted for the covariates, in units "
    "of the pooled residual standard deviation; Nakagawa & Cuthill 2007, Biol Rev 82:591, "
    "as the ENIGMA consortium computes d). Positive d: higher MS in cases."
)


@dataclass
class OLSResult:
    """Coefficients of an OLS fit of many outcomes on one design.

    Attributes
    ----------
    terms : list of str
        Column names of the design (``Intercept`` first).
    beta, se, t, p : ndarray, shape (n_terms, n_outcomes)
    df : int
        Residual degrees of freedom, ``n - n_terms``.
    residuals : ndarray, shape (n_observations, n_outcomes)
    """

    terms: list[str]
    beta: np.ndarray
    se: np.ndarray
    t: np.ndarray
    p: np.ndarray
    df: int
    residuals: np.ndarray

    def term(self, name: str) -> dict[str, np.ndarray]:
        """``beta, se, t, p`` of one term, each of shape (n_outcomes,)."""
        k = self.terms.index(name)
        return {"beta": self.beta[k], "se": self.se[k], "t": self.t[k], "p": self.p[k]}


def design_matrix(
    covariates: pd.DataFrame,
    *,
    group: np.ndarray | pd.Series | None = None,
    categorical: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Design matrix ``Intercept [+ group] + covariates``.

    Parameters
    ----------
    covariates : pandas.DataFrame
        One column per covariate (may have no columns). Non-numeric columns, and the
        columns named in ``categorical``, are dummy-coded with the first level (sorted)
        as reference, as patsy/statsmodels formulas do; numeric columns enter as they are.
    group : array_like of bool, optional
        ``True`` for cases; enters as the column ``group`` (1 = case, 0 = control).
    categorical : sequence of str, optional
        Numeric columns to treat as categorical as well (e.g. a site code).

    Returns
    -------
    pandas.DataFrame
        Float columns ``Intercept``, ``group`` (if given), then the covariates'
        columns (dummies named ``<column>[T.<level>]``).

    Raises
    ------
    InputDataError
        Missing values in a covariate, naming the column.
    """
    categorical = set(categorical or ())
    n = len(covariates)
    cols: dict[str, np.ndarray] = {"Intercept": np.ones(n)}
    if group is not None:
        g = np.asarray(group, dtype=bool)
        if g.shape != (n,):
            raise ValueError(f"group has {g.size} values for {n} participants")
        cols["group"] = g.astype(float)
    for name in covariates.columns:
        col = covariates[name]
        if col.isna().any():
            raise InputDataError(f"covariate column {name!r} has missing values")
        if (
            name in categorical
            or not pd.api.types.is_numeric_dtype(col)
            or pd.api.types.is_bool_dtype(col)
        ):
            levels = sorted(pd.unique(col.astype(str)))
            values = col.astype(str).to_numpy()
            for level in levels[1:]:
                cols[f"{name}[T.{level}]"] = (values == level).astype(float)
        else:
            cols[name] = col.to_numpy(dtype=float)
    return pd.DataFrame(cols, index=covariates.index)


def fit_ols(y: np.ndarray, design: pd.DataFrame | np.ndarray) -> OLSResult:
    """Ordinary least squares of every column of ``y`` on one design.

    Parameters
    ----------
    y : ndarray, shape (n_observations,) or (n_observations, n_outcomes)
    design : DataFrame or ndarray, shape (n_observations, n_terms)

    Returns
    -------
    OLSResult
        Two-sided p values from Student's t with ``n - n_terms`` degrees of freedom,
        as statsmodels' ``OLS(y, X).fit()`` reports them.

    Raises
    ------
    InputDataError
        The design is rank-deficient (collinear covariates, or a covariate constant over
        the participants), or has no residual degrees of freedom.
    """
    if isinstance(design, pd.DataFrame):
        terms = [str(c) for c in design.columns]
        x = design.to_numpy(dtype=float)
    else:
        x = np.asarray(design, dtype=float)
        terms = [f"x{k}" for k in range(x.shape[1])]
    yy = np.asarray(y, dtype=float)
    squeeze = yy.ndim == 1
    if squeeze:
        yy = yy[:, None]
    n, k = x.shape
    if yy.shape[0] != n:
        raise ValueError(f"y has {yy.shape[0]} rows, design {n}")
    df = n - k
    q, r = np.linalg.qr(x)
    _check_design(x, r, terms)
    beta = np.linalg.solve(r, q.T @ yy)
    resid = yy - x @ beta
    sigma2 = np.einsum("ij,ij->j", resid, resid) / df
    r_inv = np.linalg.solve(r, np.eye(k))
    xtx_inv_diag = np.einsum("ij,ij->i", r_inv, r_inv)
    se = np.sqrt(np.outer(xtx_inv_diag, sigma2))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = beta / se
    p = 2.0 * stats.t.sf(np.abs(t), df)
    return OLSResult(terms=terms, beta=beta, se=se, t=t, p=p, df=df, residuals=resid)


def _check_design(x: np.ndarray, r: np.ndarray, terms: Sequence[str]) -> None:
    """Refuse a design that leaves no residual degrees of freedom or is rank-deficient
    (``r``: the R of ``x``'s QR decomposition)."""
    n, k = x.shape
    if n - k <= 0:
        raise InputDataError(
            f"{n} participants for {k} model terms ({', '.join(terms)}): too few to fit; "
            "use fewer covariates or more participants"
        )
    diag = np.abs(np.diagonal(r))
    if diag.min() <= 1e-10 * max(diag.max(), 1.0) or np.linalg.matrix_rank(x) < x.shape[1]:
        raise InputDataError(
            "the model terms are collinear or constant over the participants "
            f"({', '.join(terms)}); drop a covariate"
        )


def global_model(
    y: np.ndarray | pd.Series,
    *,
    is_case: np.ndarray | pd.Series,
    covariates: pd.DataFrame,
    categorical: Sequence[str] | None = None,
    outcome: str = "global_ms",
) -> dict:
    """The case–control model of one outcome (global MS), fitted with statsmodels.

    Where :func:`case_control` reports the group term of many outcomes (vectorised for
    speed), this fits the one model of global MS with ``statsmodels.OLS`` on the same design
    (:func:`design_matrix`) and keeps statsmodels' summary of every term and of the fit, for
    the report.

    Parameters
    ----------
    y : array_like, shape (n_participants,)
        The outcome, e.g. global MS (the mean of regional MS).
    is_case : array_like of bool, shape (n_participants,)
        ``True`` for cases, ``False`` for controls.
    covariates : pandas.DataFrame
        Covariates in columns, participants in rows (same order as ``y``).
    categorical : sequence of str, optional
        Numeric covariates to dummy-code (see :func:`design_matrix`).
    outcome : str
        The outcome's name, used in the formula.

    Returns
    -------
    dict
        ``beta, se, t, p, cohen_d, df, n_case, n_control`` of the group term (as
        :func:`case_control`'s row) and ``ModelSummary``: ``Method``, ``Formula``, ``Terms`` (for
        each design column: ``beta, se, t, p, ci_low, ci_high``, the 95 % confidence
        interval), ``RSquared``, ``RSquaredAdjusted``, ``FStatistic``, ``FPValue``,
        ``DFModel``, ``DFResidual``, ``LogLikelihood``, ``AIC``, ``BIC``, ``NObservations``.

    Raises
    ------
    InputDataError
        The design is rank-deficient or leaves no residual degrees of freedom.

    References
    ----------
    Martins et al. 2022, §2.4, §3.2 (global MS); Seabold & Perktold 2010 (statsmodels).
    """
    g = np.asarray(is_case, dtype=bool)
    design = design_matrix(covariates, group=g, categorical=categorical)
    terms = [str(c) for c in design.columns]
    x = design.to_numpy(dtype=float)
    _check_design(x, np.linalg.qr(x, mode="r"), terms)
    fit = sm.OLS(np.asarray(y, dtype=float), x).fit(method="qr")
    ci = fit.conf_int(alpha=0.05)
    table = {
        term: {
            "beta": float(fit.params[i]),
            "se": float(fit.bse[i]),
            "t": float(fit.tvalues[i]),
            "p": float(fit.pvalues[i]),
            "ci_low": float(ci[i, 0]),
            "ci_high": float(ci[i, 1]),
        }
        for i, term in enumerate(terms)
    }
    n_case, n_control = int(g.sum()), int((~g).sum())
    grp = table["group"]
    return {
        "beta": grp["beta"],
        "se": grp["se"],
        "t": grp["t"],
        "p": grp["p"],
        "cohen_d": float(cohens_d_from_t(grp["t"], n_case, n_control)),
        "df": int(fit.df_resid),
        "n_case": n_case,
        "n_control": n_control,
        "ModelSummary": {
            "Method": f"ordinary least squares (statsmodels {statsmodels.__version__} OLS)",
            "Formula": " + ".join([f"{outcome} ~ group", *list(covariates.columns)]),
            "Terms": table,
            "RSquared": float(fit.rsquared),
            "RSquaredAdjusted": float(fit.rsquared_adj),
            "FStatistic": float(fit.fvalue),
            "FPValue": float(fit.f_pvalue),
            "DFModel": int(fit.df_model),
            "DFResidual": int(fit.df_resid),
            "LogLikelihood": float(fit.llf),
            "AIC": float(fit.aic),
            "BIC": float(fit.bic),
            "NObservations": int(fit.nobs),
        },
    }


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p values (q values), NaN kept as NaN.

    ``statsmodels.stats.multitest.multipletests(p, method='fdr_bh')[1]`` over the finite
    values; NaN (untested rows) stay NaN and do not count towards the number of tests.

    References
    ----------
    Benjamini & Hochberg 1995, J R Stat Soc B 57:289; Martins et al. 2022, §2.4.
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


def cohens_d_from_t(t: np.ndarray | float, n_case: int, n_control: int) -> np.ndarray | float:
    """Cohen's d from a group t statistic: ``d = t * sqrt(1/n_case + 1/n_control)``.

    See :data:`COHEN_D_FORMULA`.
    """
    return np.asarray(t, dtype=float) * np.sqrt(1.0 / n_case + 1.0 / n_control)


def case_control(
    y: pd.DataFrame | np.ndarray,
    *,
    is_case: np.ndarray | pd.Series,
    covariates: pd.DataFrame,
    categorical: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Case–control differences of many outcomes, ``y ~ group + covariates``.

    Parameters
    ----------
    y : DataFrame or ndarray, shape (n_participants, n_outcomes)
        E.g. regional MS (68 columns), one column of global MS, or class-level MS.
    is_case : array_like of bool, shape (n_participants,)
        ``True`` for cases, ``False`` for controls.
    covariates : pandas.DataFrame
        Covariates in columns, participants in rows (same order as ``y``).
    categorical : sequence of str, optional
        Numeric covariates to dummy-code (see :func:`design_matrix`).

    Returns
    -------
    pandas.DataFrame
        One row per outcome (index: ``y``'s columns), columns ``beta, se, t, p, p_fdr,
        cohen_d, df, n_case, n_control``. ``beta`` is the adjusted mean difference
        (cases minus controls), ``p_fdr`` Benjamini–Hochberg over the outcomes, ``cohen_d``
        as :data:`COHEN_D_FORMULA`.

    References
    ----------
    Martins et al. 2022, §2.4 (regional and global MS), §2.6 (von Economo classes).
    """
    g = np.asarray(is_case, dtype=bool)
    if isinstance(y, pd.DataFrame):
        names = list(y.columns)
        values = y.to_numpy(dtype=float)
    else:
        values = np.asarray(y, dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        names = list(range(values.shape[1]))
    n_case, n_control = int(g.sum()), int((~g).sum())
    design = design_matrix(covariates, group=g, categorical=categorical)
    fit = fit_ols(values, design)
    grp = fit.term("group")
    table = pd.DataFrame(
        {
            "beta": grp["beta"],
            "se": grp["se"],
            "t": grp["t"],
            "p": grp["p"],
            "p_fdr": fdr_bh(grp["p"]),
            "cohen_d": cohens_d_from_t(grp["t"], n_case, n_control),
            "df": fit.df,
            "n_case": n_case,
            "n_control": n_control,
        },
        index=pd.Index(names),
    )
    return table


def residualise(
    y: pd.DataFrame | np.ndarray,
    *,
    covariates: pd.DataFrame,
    categorical: Sequence[str] | None = None,
) -> np.ndarray:
    """Residuals of ``y ~ covariates`` (group not in the model), as in Fig. 2 of the paper.

    Returns
    -------
    ndarray, same shape as ``y``
        Residuals of each column (mean zero over participants).

    References
    ----------
    Martins et al. 2022, §3.2 and Fig. 2 ("after regressing out the effects of age,
    gender, and intracranial volume").
    """
    values = y.to_numpy(dtype=float) if isinstance(y, pd.DataFrame) else np.asarray(y, dtype=float)
    design = design_matrix(covariates, categorical=categorical)
    return fit_ols(values, design).residuals.reshape(values.shape)
