"""Return on the KAM programme: does Key Account Management pay?

The module answers the executive question with a causal estimate: how much
extra gross margin the programme produced, what it cost, and the return with a
confidence interval. It works on an account x period panel built from a
:class:`~kamtools.KamData` (:func:`panel`), and its estimators also take any
DataFrame in that long shape.

======================  ======================================================
function                what it gives
======================  ======================================================
:func:`panel`           the account x period panel: outcomes, ``treated``,
                        ``post``, ``cohort``, ``event_time``, segment,
                        pre-entry level
:func:`before_after`    the naive comparison of key accounts before and after
                        entry
:func:`did`             difference-in-differences: the 2x2 regression, or
                        two-way fixed effects (statsmodels OLS, clustered by
                        unit)
:func:`staggered`       group-time effects for staggered entry, aggregated to
                        an overall effect, an event-time profile and cohort
                        effects
:func:`event_study`     leads and lags around entry, a joint pre-trend test,
                        a plot
:func:`match_controls`  non-key accounts that resemble the key accounts before
                        entry (nearest neighbour or propensity score), with
                        balance
:func:`programme_roi`   incremental margin, cost, ROI with interval, payback,
                        per-account ROI
:func:`what_if`         margin, CLV and ROI when retention, uplift or cost
                        change
:func:`plot_trends`     growth of the outcome by entry year, to eye the
                        pre-trends
======================  ======================================================

Results are objects with the estimate and its uncertainty as attributes, a
``summary`` DataFrame, a readable ``repr``/``_repr_html_`` and (for the
estimators) a ``plot()`` method that returns a matplotlib Figure.

Which estimator when
--------------------
- **Naive before/after** (:func:`before_after`) never answers the question: it
  credits the programme with everything that changed at the same time (growth,
  season, the economy). It is there to show why.
- **2x2 DiD** (:func:`did` without ``unit``/``time``): one entry date, two
  periods (or pre/post averages). Exact and transparent.
- **Two-way fixed effects** (:func:`did` with ``unit`` and ``time``): fine when
  every key account enters at the same date, or when the effect is the same
  for every cohort and constant over time. With staggered entry and effects
  that grow after entry or differ by cohort, its single coefficient weights
  the cohorts badly (already-treated accounts act as controls) and can be far
  off, even of the wrong sign (Goodman-Bacon 2021; de Chaisemartin and
  D'Haultfoeuille 2020). KAM entry is staggered and the effect ramps up, so
  use it as a benchmark only.
- **Staggered group-time DiD** (:func:`staggered`, the default inside
  :func:`programme_roi`): for each entry cohort *g* and period *t*, a clean 2x2
  comparison with accounts not yet in the programme at *t* or never in it
  (Callaway and Sant'Anna 2021), then averaged with explicit weights. Use it
  for staggered entry. Its ``trends`` option states what "parallel" means:
  ``"additive"`` (equal changes in money, the textbook assumption) or
  ``"proportional"`` (equal growth rates: the counterfactual of an account is
  its own pre-entry level times the controls' growth, the 2x2 of a Poisson
  model; Wooldridge 2023). Key accounts are the large ones, and large accounts
  gain and lose more money in the same season or boom, so proportional trends
  are the default for money outcomes; use additive ones for outcomes without a
  scale (scores, rates) or ones that can be negative on average.
- **Event study** (:func:`event_study`): to look at the dynamics and test the
  pre-trends. ``method="staggered"`` (default) is the group-time estimator,
  relative to a base before the leads; ``method="twfe"`` is the classic
  regression with lead and lag dummies (statsmodels), shown for comparison:
  with a ramping effect its leads and lags mix in other periods' effects
  (Sun and Abraham 2021).
- **Matched controls** (:func:`match_controls`): a sensitivity check of the
  comparison group. Pass the matched accounts to :func:`staggered` or
  :func:`programme_roi` as ``control_units``.

How the staggered estimate is built and what it estimates
---------------------------------------------------------
For cohort *g* (accounts entering in period *g*) the base is the mean outcome
over the ``base_periods`` periods before entry (fewer when the cohort's data
start later; 1 gives Callaway and Sant'Anna's base period *g - 1*). For each
period *t* outside that window, treated accounts are those of cohort *g*
observed at *t* and throughout the base; controls are accounts observed there
too, never in the programme, or (``control="notyet"``) not in it by period
``max(t, g)``. The counterfactual of treated account *i* at *t* is
``base_i * mean_C(y_t) / mean_C(base)`` (proportional) or
``base_i + mean_C(y_t) - mean_C(base)`` (additive); its effect is
``y_it`` minus that. Effects at *t >= g* are the ATT(g, t); effects before entry
outside the base window are placebos (they should be zero if the trends are
parallel). With ``anticipation=k`` the base window ends *k* periods before
entry, for programmes that act before their official start.

The overall effect is the mean of the account-period effects over every
treated post-entry account-period (ATT(g, t) weighted by the number of treated
accounts observed in the cell): the average extra margin per key
account-period, counted up to churn or the end of the data. Multiplied by the
number of those account-periods it is the incremental margin. This is the
quantity ``kamtools.sample`` calls ``truth.uplift_margin_per_month``.

Standard errors come from analytic influence functions, summed by account
(clustered by account, so serial correlation within an account is allowed).
Each estimate is a linear function of account-level terms: the controls' term
is the usual delta-method influence function of the cell means; the treated
accounts' term is the account's summed effect minus a leave-one-account-out
prediction of it (its counterfactual times the proportional effect of the
other accounts, or the other accounts' mean effect when trends are additive).
This keeps the variance valid when a cohort has a single account, and
conservative when effects differ between accounts (Borusyak, Jaravel and
Spiess 2024 use the same idea). Intervals use Student *t* quantiles with
(treated accounts - 1) degrees of freedom, a small-sample rule for few
clusters (Cameron and Miller 2015). The programme ROI is linear in the
overall effect (the cost is booked, not estimated), so its interval is the
effect's interval transformed: the delta method is exact here. The payback
interval comes from a multiplier bootstrap of the same influence functions.

Checked on ``kamtools.sample`` portfolios, whose true effects are known: over
100 portfolios of 80 accounts the 95% interval of the uplift (and so of the
ROI) covered the truth in 97 of them, with no bias beyond simulation noise;
over 60 portfolios of 200 accounts, in 57-58 of them for base windows of 1 to
24 periods, while plain two-way fixed effects overstated the uplift by 20% on
average. The tests in ``tests/test_roi.py`` rerun these checks.

References
----------
Callaway, B., and Sant'Anna, P. H. C. (2021). Difference-in-differences with
multiple time periods. Journal of Econometrics 225(2), 200-230.
Wooldridge, J. M. (2023). Simple approaches to nonlinear difference-in-
differences with panel data. The Econometrics Journal 26(3), C31-C66.
Borusyak, K., Jaravel, X., and Spiess, J. (2024). Revisiting event-study
designs: robust and efficient estimation. Review of Economic Studies 91(6).
Goodman-Bacon, A. (2021). Difference-in-differences with variation in
treatment timing. Journal of Econometrics 225(2), 254-277.
Sun, L., and Abraham, S. (2021). Estimating dynamic treatment effects in
event studies with heterogeneous treatment effects. Journal of Econometrics
225(2), 175-199.
Box, G. E. P. (1954). Some theorems on quadratic forms applied in the study
of analysis of variance problems, I. Annals of Mathematical Statistics 25(2),
290-302.
Cameron, A. C., and Miller, D. L. (2015). A practitioner's guide to
cluster-robust inference. Journal of Human Resources 50(2), 317-372.
Austin, P. C. (2009). Balance diagnostics for comparing the distribution of
baseline covariates between treatment groups in propensity-score matched
samples. Statistics in Medicine 28(25), 3083-3107.
"""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kamtools import periods as _periods
from kamtools.exceptions import DataWarning, ParameterError, SchemaError

__all__ = [
    "panel",
    "before_after",
    "did",
    "staggered",
    "event_study",
    "match_controls",
    "programme_roi",
    "what_if",
    "plot_trends",
    "DidResult",
    "StaggeredResult",
    "EventStudyResult",
    "MatchResult",
    "RoiResult",
]

_COV_TYPES = ("cluster", "nonrobust", "HC0", "HC1", "HC2", "HC3")
_TRENDS = ("proportional", "additive")
_CONTROLS = ("notyet", "never")
_PER_YEAR = {"M": 12, "Q": 4, "Y": 1}


# --------------------------------------------------------------------------- checks


def _check_frame(df, fn: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"{fn}: df must be a pandas DataFrame; got {type(df).__name__}.")


def _check_columns(df: pd.DataFrame, fn: str, **roles) -> None:
    for role, col in roles.items():
        if col is not None and col not in df.columns:
            shown = ", ".join(map(str, df.columns[:30]))
            raise ParameterError(f"{fn}: {role}={col!r} is not a column of df. Columns in df: {shown}.")


def _check_alpha(alpha, fn: str) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        a = math.nan
    if not 0 < a < 1:
        raise ParameterError(
            f"{fn}: alpha={alpha!r}; pass a level strictly between 0 and 1, e.g. 0.05 for 95% intervals."
        )
    return a


def _check_choice(value, allowed, name: str, fn: str) -> str:
    if value not in allowed:
        raise ParameterError(f"{fn}: {name}={value!r}; use one of {', '.join(map(repr, allowed))}.")
    return value


def _numeric(s: pd.Series, col: str, fn: str) -> np.ndarray:
    """A column as float64 (missing -> NaN), or a clear error when it is not numbers."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    v = pd.to_numeric(s, errors="coerce")
    bad = v.isna() & s.notna()
    if bad.any():
        examples = ", ".join(map(repr, pd.unique(s[bad])[:3]))
        raise ParameterError(f"{fn}: column {col!r} must hold numbers; found {examples}. Convert it first.")
    return v.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def _indicator(s: pd.Series, role: str, col: str, fn: str) -> np.ndarray:
    """A true/false or 1/0 column as 0.0/1.0 (missing -> NaN)."""
    v = _numeric(s, col, fn)
    bad = ~np.isnan(v) & (v != 0) & (v != 1)
    if bad.any():
        examples = ", ".join(map(repr, pd.unique(s[bad])[:3]))
        raise ParameterError(f"{fn}: {role}={col!r} must be true/false or 1/0; found {examples}.")
    return v


def _check_constant(y: np.ndarray, col: str, fn: str) -> None:
    finite = y[np.isfinite(y)]
    if len(finite) and np.ptp(finite) == 0:
        raise ParameterError(
            f"{fn}: the outcome {col!r} is constant (every row is {finite[0]:g}): there is no variation to "
            "explain. Check that the column holds the measure you meant (e.g. gross margin, not a flag), or pick "
            "another outcome."
        )


def _drop_missing(d: pd.DataFrame, cols, fn: str) -> pd.DataFrame:
    miss = d[list(cols)].isna().any(axis=1)
    if miss.any():
        warnings.warn(
            f"{fn}: {int(miss.sum()):,} of {len(d):,} rows have a missing value in {', '.join(map(repr, cols))} "
            "and are left out.",
            DataWarning,
            stacklevel=3,
        )
        d = d.loc[~miss]
    return d


def _fmt(x: float, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


# --------------------------------------------------------------------------- results


class _Result:
    """Shared display: a title, a few headline lines and the ``summary`` table."""

    _title = "Result"

    def _lines(self) -> list[str]:  # pragma: no cover - overridden
        return []

    def __repr__(self) -> str:
        body = "\n".join(f"  {line}" for line in self._lines())
        return f"{self._title}(\n{body}\n)"

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self._lines())
        table = self.summary.to_html(float_format=lambda v: f"{v:,.4g}", na_rep="")
        return f"<p><b>{html.escape(self._title)}</b></p><ul>{items}</ul>{table}"


def _ci_text(est, ci, alpha) -> str:
    return f"{100 * (1 - alpha):g}% CI {_fmt(ci[0])} to {_fmt(ci[1])}"


@dataclass(frozen=True, eq=False, repr=False)
class DidResult(_Result):
    """A difference-in-differences (or before/after) estimate.

    Attributes
    ----------
    effect : float
        The estimated effect: the coefficient of ``treated:post`` (2x2), of the
        treatment indicator (two-way fixed effects) or of ``post`` among the
        treated (before/after).
    se : float
        Its standard error, of the kind ``cov_type`` names.
    ci : tuple of float
        ``(lower, upper)`` confidence interval at level ``1 - alpha``.
    pvalue : float
        Two-sided p-value of effect = 0.
    n : int
        Rows (observations) used.
    n_units : int or None
        Units (clusters) when ``unit`` was given.
    form : {"2x2", "twfe", "before-after"}
    outcome, cov_type : str
    alpha : float
    model : statsmodels RegressionResults
        The fitted regression; ``model.summary()`` shows every coefficient.
    cells : DataFrame or None
        2x2 form: mean outcome and rows of each group x period cell
        (columns ``treated``, ``post``, ``mean``, ``n``).
    """

    effect: float
    se: float
    ci: tuple
    pvalue: float
    n: int
    n_units: int | None
    form: str
    outcome: str
    cov_type: str
    alpha: float
    term: str
    model: object = field(repr=False)
    cells: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def _title(self):
        return {
            "2x2": "DidResult: 2x2 difference-in-differences",
            "twfe": "DidResult: two-way fixed effects",
            "before-after": "DidResult: before/after (treated only)",
        }[self.form]

    @property
    def summary(self) -> pd.DataFrame:
        """One row (the effect's term): estimate, se, ci_lower, ci_upper, pvalue, n."""
        return pd.DataFrame(
            {
                "estimate": [self.effect],
                "se": [self.se],
                "ci_lower": [self.ci[0]],
                "ci_upper": [self.ci[1]],
                "pvalue": [self.pvalue],
                "n": [self.n],
            },
            index=pd.Index([self.term], name="term"),
        )

    def _lines(self):
        units = f", {self.n_units:,} units" if self.n_units is not None else ""
        return [
            f"outcome  {self.outcome}",
            f"effect   {_fmt(self.effect)} (se {_fmt(self.se)}, {_ci_text(self.effect, self.ci, self.alpha)}, "
            f"p {self.pvalue:.3g})",
            f"n        {self.n:,} rows{units}; standard errors {self.cov_type}",
        ]


# --------------------------------------------------------------------------- regression helpers


def _design_rank_check(X: np.ndarray, names: list[str], groups: dict[str, list[int]], fn: str, context: str) -> None:
    """Raise a clear error when the design matrix is rank deficient, naming the covariates involved."""
    if X.shape[0] <= X.shape[1]:
        raise ParameterError(
            f"{fn}: {X.shape[0]:,} rows for {X.shape[1]:,} coefficients{context}: too few rows to estimate the "
            "model. Use more data or fewer covariates."
        )
    scale = np.sqrt((X**2).sum(axis=0))
    zero = scale <= 1e-12 * max(1.0, float(scale.max()))
    Xs = X[:, ~zero] / scale[~zero]
    gram = Xs.T @ Xs  # rank from the small cross-product matrix: columns have unit length

    def rank(cols) -> int:
        if not cols.any():
            return 0
        ev = np.linalg.eigvalsh(gram[np.ix_(cols, cols)])
        return int((ev > 1e-10 * max(float(ev.max()), 1.0)).sum())

    all_cols = np.ones(Xs.shape[1], dtype=bool)
    full_def = int(zero.sum()) + Xs.shape[1] - rank(all_cols)
    if not full_def:
        return
    culprits = []
    pos = np.cumsum(~zero) - 1  # column index within Xs
    for cov, idx in groups.items():
        keep = np.ones(X.shape[1], dtype=bool)
        keep[idx] = False
        cols = np.zeros(Xs.shape[1], dtype=bool)
        cols[pos[keep & ~zero]] = True
        def_k = int((zero & keep).sum()) + int(cols.sum()) - rank(cols)
        if def_k < full_def:
            culprits.append(cov)
    if culprits:
        absorbed = [c for c in culprits if all(zero[i] for i in groups[c])]
        extra = (
            f" {', '.join(map(repr, absorbed))} does not vary within units, so the unit fixed effects absorb it."
            if absorbed
            else ""
        )
        many = len(culprits) > 1
        raise ParameterError(
            f"{fn}: the covariate{'s' if many else ''} {', '.join(map(repr, culprits))} {'are' if many else 'is'} "
            f"collinear (with each other or with the treatment, period or unit terms){context}, so the effects "
            f"cannot be told apart.{extra} Drop {'one of them' if many else 'it'}, or combine covariates into one."
        )
    raise ParameterError(
        f"{fn}: the regressors are collinear{context}: the treatment indicator cannot be told apart from the "
        "period or unit terms. This happens when every treated unit enters at the same time as the only "
        "comparison, or when there are no untreated rows in some periods. Check the treated/post columns."
    )


def _fit_ols(y, X, names, *, cov_type, groups, df_resid=None):
    from statsmodels.regression.linear_model import OLS

    # hasconst stated, so statsmodels need not search the design for a constant (costly on long panels)
    model = OLS(y, pd.DataFrame(X, columns=names), hasconst=names[0] == "const")
    if df_resid is not None:
        model.df_resid = df_resid
    # QR instead of the default pseudo-inverse: the design is checked for full rank before
    if cov_type == "cluster":
        return model.fit(method="qr", cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    if cov_type == "nonrobust":
        return model.fit(method="qr")
    return model.fit(method="qr", cov_type=cov_type)


def _demean(M: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Subtract group means (within transformation) column by column."""
    counts = np.bincount(codes, minlength=n_groups).astype("float64")
    out = np.empty_like(M, dtype="float64")
    for j in range(M.shape[1]):
        means = np.bincount(codes, weights=M[:, j], minlength=n_groups) / counts
        out[:, j] = M[:, j] - means[codes]
    return out


def _covariate_matrix(d: pd.DataFrame, covariates, fn: str):
    """Numeric covariates as they are; text/categorical ones as 0/1 dummies (first level dropped)."""
    cols, names, groups = [], [], {}
    for c in covariates:
        s = d[c]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            groups[c] = [len(names)]
            cols.append(_numeric(s, c, fn))
            names.append(str(c))
        else:
            levels = sorted(pd.unique(s.astype("str")))
            idx = []
            for lev in levels[1:]:
                idx.append(len(names))
                cols.append((s.astype("str") == lev).to_numpy(dtype="float64"))
                names.append(f"{c}[{lev}]")
            groups[c] = idx
    X = np.column_stack(cols) if cols else np.empty((len(d), 0))
    return X, names, groups


def _twfe(
    y, D, Dnames, C, Cnames, Cgroups, unit_codes, n_units, time_codes, n_times, *, cov_type, fn, extra_groups=None
):
    """Two-way fixed effects by the Frisch-Waugh-Lovell route.

    Unit effects are absorbed by within-unit demeaning; period effects enter as
    dummies (first period dropped), demeaned too. The coefficients equal the
    dummy-variable regression's. ``df_resid`` counts the absorbed unit effects,
    so nonrobust and HC0/HC1 standard errors equal that regression's; the
    cluster correction counts only the columns fitted here (unit effects are
    nested in the clusters), as Stata's ``xtreg, fe vce(cluster)`` does.
    """
    T = (time_codes[:, None] == np.arange(1, n_times)[None, :]).astype("float64")
    Tnames = [f"period[{k}]" for k in range(1, n_times)]
    X = np.column_stack([D, C, T]) if C.shape[1] else np.column_stack([D, T])
    names = list(Dnames) + list(Cnames) + Tnames
    Xd = _demean(X, unit_codes, n_units)
    yd = _demean(y[:, None], unit_codes, n_units)[:, 0]
    groups = {k: [len(Dnames) + i for i in v] for k, v in Cgroups.items()}
    if extra_groups:
        groups.update(extra_groups)
    _design_rank_check(Xd, names, groups, fn, " once unit and period effects are taken out")
    df_resid = len(y) - Xd.shape[1] - n_units
    if df_resid <= 0:
        raise ParameterError(f"{fn}: too few rows for unit and period effects ({len(y):,} rows, {n_units:,} units).")
    return _fit_ols(yd, Xd, names, cov_type=cov_type, groups=unit_codes, df_resid=df_resid)


def _did_inputs(df, fn, outcome, treated, post, unit, time, covariates, cov_type, alpha):
    _check_frame(df, fn)
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    _check_columns(df, fn, outcome=outcome, treated=treated, post=post, unit=unit, time=time)
    for c in covariates:
        _check_columns(df, fn, covariate=c)
    _check_choice(cov_type, _COV_TYPES, "cov_type", fn)
    alpha = _check_alpha(alpha, fn)
    used = [c for c in dict.fromkeys([outcome, treated, post, unit, time, *covariates]) if c is not None]
    d = _drop_missing(df[used], used, fn)
    if d.empty:
        raise ParameterError(f"{fn}: no rows left once rows with missing values are left out.")
    return d, covariates, alpha


def did(
    df, *, outcome, treated, post, unit=None, time=None, covariates=(), cov_type="cluster", alpha=0.05
) -> DidResult:
    """Difference-in-differences on any long DataFrame.

    Two forms:

    - without ``unit``/``time``: the canonical 2x2 regression
      ``outcome ~ treated + post + treated:post (+ covariates)``;
    - with both: two-way fixed effects,
      ``outcome ~ treated*post + unit effects + period effects (+ covariates)``,
      the treatment indicator being ``treated & post``.

    Parameters
    ----------
    df : DataFrame
        One row per unit and period (or per observation in the 2x2 form).
    outcome : str
        Numeric column to explain.
    treated, post : str
        True/false (or 1/0) columns: the unit is in the treated group; the row
        is after the treatment started (for the two-way form: after *this
        unit's* entry, so ``treated & post`` is "in the programme now").
    unit, time : str, optional
        Unit and period columns. ``unit`` alone keeps the 2x2 form and
        clusters by it.
    covariates : sequence of str
        Extra regressors. Text columns enter as dummies.
    cov_type : {"cluster", "nonrobust", "HC0", "HC1", "HC2", "HC3"}
        Standard errors. ``"cluster"`` clusters by ``unit``; in the 2x2 form
        without ``unit`` there is nothing to cluster by and HC1 is used (the
        result's ``cov_type`` says so). The two-way form takes ``"cluster"``,
        ``"nonrobust"``, ``"HC0"`` and ``"HC1"``.
    alpha : float
        1 - confidence level of ``ci``.

    Returns
    -------
    DidResult

    Raises
    ------
    ParameterError
        Missing columns; no treated or no untreated rows; no rows before
        entry; a constant outcome; collinear covariates; an unknown
        ``cov_type``.

    Warns
    -----
    DataWarning
        Rows with missing values in the columns used, which are left out.

    Notes
    -----
    The 2x2 coefficient equals the difference of the four cell means,
    ``(y_T,post - y_T,pre) - (y_C,post - y_C,pre)`` (tested, with a
    hand-written statsmodels OLS). The two-way form absorbs unit effects by
    demeaning (Frisch-Waugh-Lovell): its coefficient, nonrobust and HC0/HC1
    standard errors equal statsmodels' dummy-variable regression; its cluster
    standard errors omit the absorbed unit effects from the small-sample factor,
    as Stata's ``xtreg, fe`` does (tested against the dummy regression). With
    staggered entry, prefer :func:`staggered` (see the module notes).

    Examples
    --------
    >>> import pandas as pd
    >>> import kamtools as kt
    >>> df = pd.DataFrame({"y": [10, 12, 11, 13, 10, 11, 12, 13],
    ...                    "treated": [1, 1, 1, 1, 0, 0, 0, 0],
    ...                    "post": [0, 1, 0, 1, 0, 1, 0, 1]})
    >>> res = kt.roi.did(df, outcome="y", treated="treated", post="post", cov_type="nonrobust")
    >>> round(res.effect, 6)  # (12.5 - 10.5) - (12 - 11)
    1.0
    """
    fn = "did"
    d, covariates, alpha = _did_inputs(df, fn, outcome, treated, post, unit, time, covariates, cov_type, alpha)
    if time is not None and unit is None:
        raise ParameterError(f"{fn}: time={time!r} without unit: the two-way form needs both unit= and time=.")
    y = _numeric(d[outcome], outcome, fn)
    tr = _indicator(d[treated], "treated", treated, fn)
    po = _indicator(d[post], "post", post, fn)
    _check_constant(y, outcome, fn)
    if not (tr == 1).any():
        raise ParameterError(
            f"{fn}: no treated rows: column {treated!r} is never true. Mark the treated group (for KAM data: "
            "key accounts with a kam_start), or check the column."
        )
    if not (tr == 0).any():
        raise ParameterError(
            f"{fn}: no untreated rows: column {treated!r} is true everywhere, so there is no comparison group. "
            "Add accounts outside the programme (non-key accounts) to the data."
        )
    if not ((tr == 1) & (po == 0)).any():
        raise ParameterError(
            f"{fn}: no pre-entry periods: no treated row has {post!r} false, so there is no 'before' to compare "
            "with. Load data from before the treatment started."
        )
    if not ((tr == 1) & (po == 1)).any():
        raise ParameterError(f"{fn}: no post-entry rows: no treated row has {post!r} true. Check the post column.")
    C, Cnames, Cgroups = _covariate_matrix(d, covariates, fn)
    used_cov = cov_type
    n_units = None
    if unit is not None:
        unit_codes, uniq = pd.factorize(d[unit], sort=True)
        n_units = len(uniq)
    if time is None:
        if not ((tr == 0) & (po == 1)).any() or not ((tr == 0) & (po == 0)).any():
            raise ParameterError(
                f"{fn}: the untreated group needs rows both before and after ({post!r} false and true) for the "
                "2x2 comparison."
            )
        term = f"{treated}:{post}"
        X = np.column_stack([np.ones(len(y)), tr, po, tr * po, C])
        names = ["const", str(treated), str(post), term, *Cnames]
        groups = {k: [4 + i for i in v] for k, v in Cgroups.items()}
        _design_rank_check(X, names, groups, fn, "")
        if cov_type == "cluster" and unit is None:
            used_cov = "HC1"
        res = _fit_ols(y, X, names, cov_type=used_cov, groups=unit_codes if unit is not None else None)
        cells = (
            pd.DataFrame({"treated": tr.astype(bool), "post": po.astype(bool), "y": y})
            .groupby(["treated", "post"])["y"]
            .agg(mean="mean", n="size")
            .reset_index()
        )
        form = "2x2"
    else:
        if cov_type in ("HC2", "HC3"):
            raise ParameterError(
                f"{fn}: cov_type={cov_type!r} needs the leverage of the full dummy regression; with unit and time "
                "effects use 'cluster' (default), 'HC1', 'HC0' or 'nonrobust'."
            )
        time_codes, tuniq = pd.factorize(d[time], sort=True)
        term = f"{treated}:{post}"
        D = (tr * po)[:, None]
        res = _twfe(
            y, D, [term], C, Cnames, Cgroups, unit_codes, n_units, time_codes, len(tuniq), cov_type=cov_type, fn=fn
        )
        cells = None
        form = "twfe"
    return _did_result(res, term, form, outcome, used_cov, alpha, n_units, cells)


def _did_result(res, term, form, outcome, cov_type, alpha, n_units, cells) -> DidResult:
    ci = res.conf_int(alpha=alpha).loc[term]
    return DidResult(
        effect=float(res.params[term]),
        se=float(res.bse[term]),
        ci=(float(ci.iloc[0]), float(ci.iloc[1])),
        pvalue=float(res.pvalues[term]),
        n=int(res.nobs),
        n_units=n_units,
        form=form,
        outcome=str(outcome),
        cov_type=cov_type,
        alpha=alpha,
        term=term,
        model=res,
        cells=cells,
    )


def before_after(df, *, outcome, treated, post, unit=None, cov_type="cluster", alpha=0.05) -> DidResult:
    """The naive comparison: treated units after entry against the same units before.

    The regression ``outcome ~ post`` on the treated rows only. Its effect is
    the mean after minus the mean before; it credits the programme with every
    other change over the same time (growth, season, prices), which is why it
    misleads. Shown for contrast with :func:`did` and :func:`staggered`.

    Parameters
    ----------
    df, outcome, treated, post, unit, cov_type, alpha
        As in :func:`did` (``cov_type="cluster"`` clusters by ``unit``; HC1
        without it).

    Returns
    -------
    DidResult
        With ``form="before-after"``.

    Notes
    -----
    The effect equals the treated units' mean after entry minus their mean
    before (tested by hand).

    Examples
    --------
    >>> import pandas as pd
    >>> import kamtools as kt
    >>> df = pd.DataFrame({"y": [10.0, 12.0, 11.0, 14.0], "treated": [1, 1, 1, 1], "post": [0, 1, 0, 1]})
    >>> round(kt.roi.before_after(df, outcome="y", treated="treated", post="post", cov_type="nonrobust").effect, 6)
    2.5
    """
    fn = "before_after"
    d, _, alpha = _did_inputs(df, fn, outcome, treated, post, unit, None, (), cov_type, alpha)
    tr = _indicator(d[treated], "treated", treated, fn)
    if not (tr == 1).any():
        raise ParameterError(f"{fn}: no treated rows: column {treated!r} is never true.")
    d = d.loc[tr == 1]
    y = _numeric(d[outcome], outcome, fn)
    po = _indicator(d[post], "post", post, fn)
    _check_constant(y, outcome, fn)
    if not (po == 0).any():
        raise ParameterError(f"{fn}: no pre-entry periods: no treated row has {post!r} false.")
    if not (po == 1).any():
        raise ParameterError(f"{fn}: no post-entry rows: no treated row has {post!r} true.")
    used_cov = "HC1" if cov_type == "cluster" and unit is None else cov_type
    n_units = None
    groups = None
    if unit is not None:
        groups, uniq = pd.factorize(d[unit], sort=True)
        n_units = len(uniq)
    X = np.column_stack([np.ones(len(y)), po])
    res = _fit_ols(y, X, ["const", str(post)], cov_type=used_cov, groups=groups)
    return _did_result(res, str(post), "before-after", outcome, used_cov, alpha, n_units, None)


# --------------------------------------------------------------------------- staggered DiD


class _Timeline:
    """Maps a time column (pandas Periods or integers) to 0-based period indices and back."""

    def __init__(self, s: pd.Series, role: str, col: str, fn: str):
        self.fn = fn
        if isinstance(s.dtype, pd.PeriodDtype):
            self.kind = "period"
            self.freq = s.dtype.freq
            if s.isna().any():
                raise ParameterError(
                    f"{fn}: {role}={col!r} has {int(s.isna().sum()):,} missing periods; fill or drop them."
                )
            ords = pd.PeriodIndex(s).asi8
        elif pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s):
            self.kind = "int"
            self.freq = None
            if s.isna().any():
                raise ParameterError(
                    f"{fn}: {role}={col!r} has {int(s.isna().sum()):,} missing values; fill or drop them."
                )
            ords = s.to_numpy(dtype="int64")
        else:
            raise ParameterError(
                f"{fn}: {role}={col!r} must hold pandas Periods (e.g. dates.dt.to_period('M')) or whole numbers "
                f"(period indices); it has dtype {s.dtype}."
            )
        self.first = int(ords.min())
        self.n = int(ords.max()) - self.first + 1
        if self.n > 100_000:
            raise ParameterError(
                f"{fn}: {role}={col!r} spans {self.n:,} periods; pass period indices, not dates as numbers."
            )
        self.index = ords - self.first

    def codes(self, s: pd.Series, role: str, col: str) -> np.ndarray:
        """Period indices of another column (cohorts); missing -> NaN. Dates become periods of the time frequency."""
        fn = self.fn
        if self.kind == "period":
            if pd.api.types.is_datetime64_any_dtype(s):
                s = s.dt.to_period(self.freq)
            if not isinstance(s.dtype, pd.PeriodDtype) or s.dtype != pd.PeriodDtype(self.freq):
                raise ParameterError(
                    f"{fn}: {role}={col!r} must hold periods of the same frequency as time (or dates); it has dtype "
                    f"{s.dtype}."
                )
            miss = s.isna().to_numpy()
            ords = pd.PeriodIndex(s).asi8.astype("float64")
        else:
            v = pd.to_numeric(s, errors="coerce")
            if (v.isna() & s.notna()).any():
                raise ParameterError(f"{fn}: {role}={col!r} must hold period numbers like time; found non-numbers.")
            miss = v.isna().to_numpy()
            ords = v.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        out = ords - self.first
        out[miss] = np.nan
        return out

    def label(self, idx) -> pd.Index:
        idx = np.asarray(idx, dtype="int64") + self.first
        if self.kind == "period":
            return pd.PeriodIndex.from_ordinals(idx, freq=self.freq)
        return pd.Index(idx)


def _t_crit(alpha: float, df) -> np.ndarray:
    from scipy import stats

    return stats.t.ppf(1 - alpha / 2, np.maximum(np.asarray(df, dtype="float64"), 1))


def _loo_residual(D: np.ndarray, C: np.ndarray, N: np.ndarray, trends: str) -> np.ndarray:
    """Each unit's summed effect minus a leave-this-unit-out prediction of it (columns: aggregates)."""
    S_D, S_C, S_N = D.sum(0), C.sum(0), N.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if trends == "proportional":
            rate = (S_D[None, :] - D) / (S_C[None, :] - C)
            pred = np.where(np.isfinite(rate), rate, 0.0) * C
        else:
            mean = (S_D[None, :] - D) / (S_N[None, :] - N)
            pred = np.where(np.isfinite(mean), mean, 0.0) * N
    return np.where(N > 0, D - pred, 0.0)


def _aggregate(D, C, N, phiC, trends, alpha):
    """Estimates, standard errors, intervals and influence functions of aggregates (columns)."""
    tot = N.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = D.sum(0) / tot
        phi = (_loo_residual(D, C, N, trends) + phiC) / tot[None, :]
    phi = np.where(tot[None, :] > 0, phi, 0.0)
    n_units = (phi != 0).sum(0)
    factor = np.where(n_units > 1, n_units / np.maximum(n_units - 1, 1), 1.0)
    se = np.sqrt((phi**2).sum(0) * factor)
    n_treated = (N > 0).sum(0)
    crit = _t_crit(alpha, n_treated - 1)
    return est, se, crit, phi * np.sqrt(factor)[None, :], n_treated


def _core(Y, G, ctrl_ok, *, control, trends, base_periods, anticipation=0):
    """Group-time effects on an n x T outcome matrix (NaN = not observed).

    G: cohort index per unit (inf = never treated in the window). Returns
    per-unit-period effects and counterfactuals, cell records and the
    controls' influence functions, accumulated by event time, by cohort and
    overall (weighted by treated counts, not yet divided).
    """
    n, T = Y.shape
    obs = ~np.isnan(Y)
    Yz = np.where(obs, Y, 0.0)
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(Yz, axis=1)], axis=1)
    ccnt = np.concatenate([np.zeros((n, 1)), np.cumsum(obs, axis=1)], axis=1)
    tau = np.full((n, T), np.nan)
    cf = np.full((n, T), np.nan)
    off = T - 1
    phiC_e = np.zeros((n, 2 * T - 1))
    cohorts = np.unique(G[np.isfinite(G)]).astype(int)
    phiC_g = np.zeros((n, len(cohorts)))
    phiC_all = np.zeros(n)
    cells = []
    gaps = 0
    no_control = 0
    never = np.isinf(G)
    for k, g in enumerate(cohorts):
        members = np.nonzero(G == g)[0]
        b = g - anticipation  # the base window ends just before period b
        if b < 1:  # the base would start before the data (anticipation reaches back past them)
            gaps += int(obs[members, g:].any(axis=1).sum())
            continue
        before = obs[members, :b][:, ::-1]
        run = np.cumprod(before, axis=1).sum(axis=1)  # consecutive observed periods right before b
        usable = run > 0
        gaps += int((~usable & obs[members, g:].any(axis=1)).sum())  # seen after entry, not just before it
        if not usable.any():
            continue
        w = int(min(base_periods, run[usable].min()))
        wsum = csum[:, b] - csum[:, b - w]
        Y0 = np.where(ccnt[:, b] - ccnt[:, b - w] == w, wsum / w, np.nan)
        is_tr = G == g
        ts = np.r_[0 : b - w, b:T]
        if len(ts) == 0:
            continue
        Y1 = Y[:, ts]
        ok = obs[:, ts] & ~np.isnan(Y0)[:, None]
        trm = is_tr[:, None] & ok
        thresh = np.maximum(ts, g)
        ctrl = (G[:, None] > thresh[None, :]) & ok & ctrl_ok[:, None]
        if control == "never":
            ctrl &= never[:, None]
        nT = trm.sum(0)
        nC = ctrl.sum(0)
        post = ts >= g
        no_control += int(nT[(nC == 0) & post].sum())
        valid = (nT > 0) & (nC > 0)
        if not valid.any():
            continue
        ts, Y1, trm, ctrl, nT, nC, post = (
            ts[valid],
            Y1[:, valid],
            trm[:, valid],
            ctrl[:, valid],
            nT[valid],
            nC[valid],
            post[valid],
        )
        Y1z = np.where(ok[:, valid], Y1, 0.0)
        Y0z = np.where(np.isnan(Y0), 0.0, Y0)
        mT1 = (Y1z * trm).sum(0) / nT
        mT0 = (Y0z[:, None] * trm).sum(0) / nT
        mC1 = (Y1z * ctrl).sum(0) / nC
        mC0 = (Y0z[:, None] * ctrl).sum(0) / nC
        if trends == "proportional":
            if (mC0 <= 0).any():
                raise ParameterError(
                    "staggered: trends='proportional' needs a positive mean outcome among the controls, but it is 0 "
                    "or negative in the base of some cohorts. Use trends='additive' for outcomes that can be "
                    "negative on average."
                )
            R = mC1 / mC0
            cfm = Y0z[:, None] * R[None, :]
            fc = (
                -(mT0 / mC0)[None, :]
                * ((Y1z - mC1[None, :]) - R[None, :] * (Y0z[:, None] - mC0[None, :]))
                / nC[None, :]
            )
        else:
            delta = mC1 - mC0
            cfm = Y0z[:, None] + delta[None, :]
            fc = -((Y1z - Y0z[:, None]) - delta[None, :]) / nC[None, :]
        fc = np.where(ctrl, fc, 0.0) * nT[None, :]
        rows = np.nonzero(is_tr)[0]
        sub = trm[rows]
        tau[np.ix_(rows, ts)] = np.where(sub, (Y1z - cfm)[rows], np.nan)
        cf[np.ix_(rows, ts)] = np.where(sub, cfm[rows], np.nan)
        phiC_e[:, ts - g + off] += fc
        phiC_g[:, k] = fc[:, post].sum(1)
        phiC_all += fc[:, post].sum(1)
        att = mT1 - (cfm * trm).sum(0) / nT
        for j in range(len(ts)):
            cells.append((g, int(ts[j]), int(ts[j] - g), float(att[j]), int(nT[j]), int(nC[j]), w))
    return dict(
        tau=tau,
        cf=cf,
        cells=cells,
        phiC_e=phiC_e,
        phiC_g=phiC_g,
        phiC_all=phiC_all,
        cohorts=cohorts,
        gaps=gaps,
        no_control=no_control,
    )


@dataclass(frozen=True, eq=False, repr=False)
class StaggeredResult(_Result):
    """Group-time difference-in-differences for staggered entry.

    Attributes
    ----------
    effect, se, ci, pvalue : float, float, tuple, float
        The overall effect: the mean effect per treated post-entry
        unit-period (see the module notes), with its standard error, interval
        and two-sided p-value (Student t, treated units - 1 df).
    n : int
        Treated post-entry unit-periods the effect averages over.
    n_treated, n_control : int
        Treated units with an estimate; units used as controls somewhere.
    outcome, control, trends : str
    base_periods, anticipation : int
    alpha : float
    att_gt : DataFrame
        One row per cohort and period: ``cohort``, ``period``,
        ``event_time``, ``att`` (the cell's mean effect), ``n_treated``,
        ``n_control``, ``base_periods`` (the cohort's base window). Periods
        before entry (outside the base window) are placebos.
    event_time : DataFrame
        The event-time profile: ``event_time``, ``estimate``, ``se``,
        ``ci_lower``, ``ci_upper``, ``n`` (treated unit-periods), ``n_units``.
    by_cohort : DataFrame
        Post-entry effect by cohort, same columns with ``cohort`` first.
    unit_effects : DataFrame
        One row per treated unit: ``unit``, ``cohort``, ``periods``
        (post-entry periods with an estimate), ``observed`` (sum of the
        outcome), ``counterfactual`` (sum of the estimated outcome without
        treatment), ``effect`` (their difference).
    pretrend : DataFrame
        :meth:`pretrend_test` over the six placebo periods nearest entry.
    """

    effect: float
    se: float
    ci: tuple
    pvalue: float
    n: int
    n_treated: int
    n_control: int
    outcome: str
    control: str
    trends: str
    base_periods: int
    anticipation: int
    alpha: float
    att_gt: pd.DataFrame = field(repr=False)
    event_time: pd.DataFrame = field(repr=False)
    by_cohort: pd.DataFrame = field(repr=False)
    unit_effects: pd.DataFrame = field(repr=False)
    _phi_event: np.ndarray = field(repr=False, default=None)
    _event_index: np.ndarray = field(repr=False, default=None)

    _title = "StaggeredResult: group-time difference-in-differences"

    def pretrend_test(self, leads: int = 6) -> pd.DataFrame:
        """Joint Wald test that the placebo (pre-entry) estimates are all zero.

        Parameters
        ----------
        leads : int
            How many placebo event times to test: the ones nearest entry
            (just before the base window). Far leads rest on few units and
            make the joint covariance unstable.

        Returns
        -------
        DataFrame
            One row: ``statistic``, ``df``, ``pvalue`` and the tested
            ``periods``.

        Notes
        -----
        The statistic is the sum of the leads' squared t-statistics. Given
        their correlation matrix *R* (from the same influence functions as
        the standard errors) it is referred to a scaled chi-squared with the
        same mean and variance (Box 1954): scale ``tr(R^2)/k``, ``df =
        k^2/tr(R^2)`` for *k* leads, read as an F with (treated units - 1)
        denominator degrees of freedom for small samples. Inverting a
        covariance estimated from a few large accounts, as the classic Wald
        test does, is unstable and rejected far too often in simulations.
        """
        from scipy import stats

        et = self.event_time
        ok = ((et["event_time"] < 0) & (et["se"] > 0)).to_numpy()
        cand = np.nonzero(ok)[0][::-1][: max(int(leads), 0)][::-1]
        if len(cand):
            P = self._phi_event[:, cand]
            V = P.T @ P
            sd = np.sqrt(np.diag(V))
            z = et["estimate"].to_numpy()[cand] / sd
            Rm = V / np.outer(sd, sd)
            k = len(cand)
            tr2 = float(np.trace(Rm @ Rm))
            stat = float(z @ z)
            scale, dfree = tr2 / k, k * k / tr2
            df2 = max(int(et["n_units"].to_numpy()[cand].max()) - 1, 1)
            pv = float(stats.f.sf(stat / scale / dfree, dfree, df2))
        else:
            stat, dfree, pv = math.nan, 0.0, math.nan
        return pd.DataFrame(
            {
                "statistic": [stat],
                "df": [dfree],
                "pvalue": [pv],
                "periods": [", ".join(map(str, et["event_time"].to_numpy()[cand]))],
            },
            index=pd.Index(["scaled F"], name="test"),
        )

    @property
    def pretrend(self) -> pd.DataFrame:
        return self.pretrend_test()

    @property
    def summary(self) -> pd.DataFrame:
        """The overall effect: estimate, se, ci_lower, ci_upper, pvalue, n, n_treated."""
        return pd.DataFrame(
            {
                "estimate": [self.effect],
                "se": [self.se],
                "ci_lower": [self.ci[0]],
                "ci_upper": [self.ci[1]],
                "pvalue": [self.pvalue],
                "n": [self.n],
                "n_treated": [self.n_treated],
            },
            index=pd.Index(["ATT per treated period"], name="term"),
        )

    def _lines(self):
        pt = self.pretrend.iloc[0]
        pre = (
            f"pre-trend test (event times {pt['periods']}): statistic {pt['statistic']:.2f}, p {pt['pvalue']:.3g}"
            if pt["df"] > 0
            else "pre-trend test: no placebo periods"
        )
        return [
            f"outcome  {self.outcome}; trends {self.trends}; controls {self.control}; base {self.base_periods} "
            f"period(s) before entry"
            + (f" less {self.anticipation} anticipation period(s)" if self.anticipation else ""),
            f"effect   {_fmt(self.effect)} per treated period (se {_fmt(self.se)}, "
            f"{_ci_text(self.effect, self.ci, self.alpha)}, p {self.pvalue:.3g})",
            f"n        {self.n:,} treated periods of {self.n_treated:,} treated units; {self.n_control:,} control units",
            pre,
        ]

    def plot(self, *, truth=None, ax=None, leads=None, lags=None):
        """The event-time profile with its intervals.

        Parameters
        ----------
        truth : mapping or Series, optional
            Event time -> true effect, drawn for comparison (e.g.
            ``data.truth.uplift_by_event_time`` on the sample).
        ax : matplotlib Axes, optional
        leads, lags : int, optional
            Show event times from ``-leads`` to ``lags`` only.

        Returns
        -------
        matplotlib.figure.Figure
        """
        return _plot_event_profile(
            self.event_time,
            title=f"Effect on {self.outcome} by periods since entry",
            truth=truth,
            ax=ax,
            leads=leads,
            lags=lags,
            alpha=self.alpha,
        )


def _plot_event_profile(table, *, title, truth, ax, leads, lags, alpha, reference=None):
    fig, ax = _axes(ax, (7, 4))
    t = table
    if leads is not None:
        t = t[t["event_time"] >= -leads]
    if lags is not None:
        t = t[t["event_time"] <= lags]
    pre = t["event_time"] < 0
    for mask, colour, label in ((pre, "#7f7f7f", "before entry (placebo)"), (~pre, "#1f77b4", "after entry")):
        s = t[mask]
        if len(s):
            ax.errorbar(
                s["event_time"],
                s["estimate"],
                yerr=[s["estimate"] - s["ci_lower"], s["ci_upper"] - s["estimate"]],
                fmt="o",
                ms=3.5,
                capsize=2,
                color=colour,
                label=label,
            )
    if reference is not None:
        ax.plot([reference], [0.0], marker="D", ms=4, color="black", linestyle="none", label="reference period")
    if truth is not None:
        tr = pd.Series(truth, dtype="float64").sort_index()
        lo, hi = t["event_time"].min(), t["event_time"].max()
        tr = tr[(tr.index >= lo) & (tr.index <= hi)]
        ax.plot(tr.index, tr.to_numpy(), color="#d62728", lw=1.5, label="true effect")
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(-0.5, color="black", lw=0.8, ls="--")
    ax.set_xlabel("periods since KAM entry")
    ax.set_ylabel(f"effect ({100 * (1 - alpha):g}% interval)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    return fig


def _axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _staggered_prepare(df, fn, outcome, unit, time, cohort):
    """Checks and the wide outcome matrix: (Y, G, units, timeline)."""
    _check_frame(df, fn)
    _check_columns(df, fn, outcome=outcome, unit=unit, time=time, cohort=cohort)
    d = df[list(dict.fromkeys([unit, time, cohort, outcome]))]
    if d[unit].isna().any():
        raise ParameterError(
            f"{fn}: unit={unit!r} has {int(d[unit].isna().sum()):,} missing values; fill or drop them."
        )
    tl = _Timeline(d[time], "time", time, fn)
    y = _numeric(d[outcome], outcome, fn)
    _check_constant(y, outcome, fn)
    if np.isnan(y).all():
        raise ParameterError(f"{fn}: the outcome {outcome!r} is missing in every row.")
    dup = d.duplicated([unit, time])
    if dup.any():
        first = d.loc[dup].iloc[0]
        raise ParameterError(
            f"{fn}: {int(dup.sum()):,} rows repeat a ({unit}, {time}) pair, e.g. ({first[unit]!r}, {first[time]}). "
            "Aggregate to one row per unit and period first (kt.roi.panel does)."
        )
    ucodes, units = pd.factorize(d[unit], sort=True)
    gcodes = tl.codes(d[cohort], "cohort", cohort)
    per_unit = pd.DataFrame({"u": ucodes, "g": gcodes}).groupby("u")["g"]
    if (per_unit.nunique(dropna=False) > 1).any():
        bad = units[(per_unit.nunique(dropna=False) > 1).to_numpy()][:5]
        raise ParameterError(
            f"{fn}: cohort={cohort!r} must be the same in every row of a unit (its entry period); it varies for "
            f"{', '.join(map(repr, bad))}."
        )
    G = per_unit.first().to_numpy(dtype="float64")
    G = np.where(np.isnan(G), np.inf, G)
    G = np.where(G > tl.n - 1, np.inf, G)  # entering after the data end: untreated within the window
    miss = np.isnan(y)
    if miss.any():
        warnings.warn(
            f"{fn}: {int(miss.sum()):,} rows with a missing outcome {outcome!r} are left out.",
            DataWarning,
            stacklevel=3,
        )
    Y = np.full((len(units), tl.n), np.nan)
    Y[ucodes[~miss], tl.index[~miss]] = y[~miss]
    treated = np.isfinite(G)
    if not treated.any():
        raise ParameterError(
            f"{fn}: no treated units: cohort={cohort!r} holds no entry period within the data. For KAM data, mark "
            "key accounts with is_key_account and kam_start."
        )
    early = treated & (G <= 0)
    if early.any():
        names = ", ".join(f"{units[i]!r} ({tl.label([int(G[i])])[0]})" for i in np.nonzero(early)[0][:5])
        raise ParameterError(
            f"{fn}: {int(early.sum()):,} unit(s) enter at or before the data start ({tl.label([0])[0]}): {names}. "
            "There is no period before entry to compare with. Try 1) loading data from before their entry, or "
            "2) leaving them out (kt.roi.panel(..., exclude=[...]))."
        )
    first_obs = np.where(obs_any := (~np.isnan(Y)).any(1), np.argmax(~np.isnan(Y), axis=1), tl.n)
    nopre = treated & obs_any & (first_obs >= G)
    if nopre.any():
        names = ", ".join(map(repr, units[np.nonzero(nopre)[0][:5]]))
        raise ParameterError(
            f"{fn}: no pre-entry periods for {int(nopre.sum()):,} treated unit(s): {names}. Their first observed "
            "period is at or after their entry, so there is no 'before' to compare with. Leave them out "
            "(kt.roi.panel(..., exclude=[...])) or load earlier data."
        )
    return Y, G, units, tl


def staggered(
    df,
    *,
    outcome,
    unit,
    time,
    cohort,
    control="notyet",
    trends="proportional",
    base_periods=12,
    anticipation=0,
    control_units=None,
    alpha=0.05,
) -> StaggeredResult:
    """Difference-in-differences for staggered entry: group-time effects, aggregated.

    Parameters
    ----------
    df : DataFrame
        Long panel, one row per unit and period (e.g. :func:`panel`).
    outcome : str
        Numeric outcome column. Rows where it is missing count as not observed.
    unit : str
        Unit column (clusters).
    time : str
        Period column: pandas Periods or whole numbers, consecutive.
    cohort : str
        Each unit's entry period (same kind as ``time``, or dates); missing for
        units never treated. Units entering after the last period count as
        never treated within the data.
    control : {"notyet", "never"}
        Comparison units: not yet treated *and* never treated (default), or
        never treated only.
    trends : {"proportional", "additive"}
        What parallel trends means: equal growth rates (default; suits money
        outcomes of accounts of very different size) or equal changes.
    base_periods : int
        Periods before entry averaged as the base (fewer where a cohort's data
        start later). 1 is the period before entry; longer bases are less noisy.
    anticipation : int
        Periods before entry in which the programme may already act (account
        planning before the official start): the base window ends that many
        periods before entry, and those periods are estimated as placebos,
        not counted in the overall effect (Callaway and Sant'Anna's
        ``anticipation``).
    control_units : sequence, optional
        Restrict the never-treated controls to these units (e.g. the
        ``controls`` of :func:`match_controls`). Not-yet-treated units remain
        controls when ``control="notyet"``.
    alpha : float
        1 - confidence level.

    Returns
    -------
    StaggeredResult

    Raises
    ------
    ParameterError
        Missing columns; no treated or no untreated units; entries at or before
        the data start; treated units without pre-entry periods; a constant
        outcome; proportional trends with a control mean that is not positive.

    Warns
    -----
    DataWarning
        Missing outcomes; treated units not observed in the period before
        entry (left out); treated periods without any control (not estimated).

    Notes
    -----
    The module notes describe the estimator, the weights (the overall effect
    is the mean effect per treated post-entry unit-period) and the standard
    errors (analytic influence functions clustered by unit, t intervals).
    Checked against hand computations of the 2x2 cells and, for one cohort and
    two periods, against statsmodels' OLS (additive) and Poisson GLM
    (proportional) 2x2 regressions; on ``kamtools.sample`` data it recovers
    ``truth.uplift_margin_per_month`` (tests over several seeds, and a
    coverage simulation over 100 portfolios).

    Examples
    --------
    >>> import kamtools as kt
    >>> data = kt.sample.load()
    >>> p = kt.roi.panel(data)
    >>> res = kt.roi.staggered(p, outcome="gross_margin", unit="account_id", time="period", cohort="cohort")
    >>> res.n == data.truth.treated_account_months
    True
    >>> bool(res.ci[0] < data.truth.uplift_margin_per_month < res.ci[1])
    True
    """
    fn = "staggered"
    _check_choice(control, _CONTROLS, "control", fn)
    _check_choice(trends, _TRENDS, "trends", fn)
    if isinstance(base_periods, bool) or not isinstance(base_periods, int | np.integer) or base_periods < 1:
        raise ParameterError(f"{fn}: base_periods={base_periods!r}; pass a whole number of periods, 1 or more.")
    if isinstance(anticipation, bool) or not isinstance(anticipation, int | np.integer) or anticipation < 0:
        raise ParameterError(f"{fn}: anticipation={anticipation!r}; pass a whole number of periods, 0 or more.")
    alpha = _check_alpha(alpha, fn)
    Y, G, units, tl = _staggered_prepare(df, fn, outcome, unit, time, cohort)
    never = np.isinf(G)
    ctrl_ok = np.ones(len(units), dtype=bool)
    if control_units is not None:
        allowed = pd.Index(pd.unique(pd.Series(list(control_units))))
        unknown = allowed.difference(units)
        if len(unknown):
            raise ParameterError(
                f"{fn}: {len(unknown):,} control_units are not units of df: {', '.join(map(repr, unknown[:5]))}."
            )
        ctrl_ok = ~never | units.isin(allowed)
    if control == "never" and not (never & ctrl_ok).any():
        raise ParameterError(
            f"{fn}: no untreated units: every unit enters the programme, so control='never' has no comparison. "
            "Use control='notyet' (accounts that enter later), or add accounts outside the programme."
        )
    core = _core(
        Y, G, ctrl_ok, control=control, trends=trends, base_periods=int(base_periods), anticipation=int(anticipation)
    )
    if not core["cells"]:
        raise ParameterError(
            f"{fn}: no untreated units to compare with: no period has both treated units and units outside the "
            "programme (never or not yet treated) observed. Add accounts outside the programme to the data."
        )
    if core["gaps"]:
        warnings.warn(
            f"{fn}: {core['gaps']:,} treated unit(s) have no {outcome!r} in the period just before their base "
            "window ends (the period before entry, or before the anticipation periods) and are left out of the "
            "estimate.",
            DataWarning,
            stacklevel=2,
        )
    if core["no_control"]:
        warnings.warn(
            f"{fn}: {core['no_control']:,} treated post-entry unit-periods have no control unit observed (every "
            "other unit is treated by then); they are not estimated and not in the totals.",
            DataWarning,
            stacklevel=2,
        )
    return _staggered_result(
        core,
        Y,
        G,
        units,
        tl,
        outcome=outcome,
        control=control,
        trends=trends,
        base_periods=int(base_periods),
        anticipation=int(anticipation),
        alpha=alpha,
    )


def _staggered_result(
    core, Y, G, units, tl, *, outcome, control, trends, base_periods, anticipation, alpha
) -> StaggeredResult:
    from scipy import stats

    tau, cf = core["tau"], core["cf"]
    n, T = tau.shape
    off = T - 1
    has = ~np.isnan(tau)
    tt = np.arange(T)[None, :]
    post = has & (tt >= G[:, None])
    # overall
    D = np.where(post, tau, 0.0).sum(1)[:, None]
    C = np.where(post, cf, 0.0).sum(1)[:, None]
    N = post.sum(1).astype("float64")[:, None]
    est, se, crit, _, n_tr = _aggregate(D, C, N, core["phiC_all"][:, None], trends, alpha)
    effect, se0 = float(est[0]), float(se[0])
    ci = (effect - crit[0] * se0, effect + crit[0] * se0)
    pval = float(2 * stats.t.sf(abs(effect / se0), max(int(n_tr[0]) - 1, 1))) if se0 > 0 else math.nan
    # event time
    ii, tj = np.nonzero(has)
    ee = tj - G[ii].astype(int) + off
    E = 2 * T - 1
    DE = np.zeros((n, E))
    CE = np.zeros((n, E))
    NE = np.zeros((n, E))
    DE[ii, ee] = tau[ii, tj]
    CE[ii, ee] = cf[ii, tj]
    NE[ii, ee] = 1.0
    keep = NE.sum(0) > 0
    estE, seE, critE, phiE, ntrE = _aggregate(
        DE[:, keep], CE[:, keep], NE[:, keep], core["phiC_e"][:, keep], trends, alpha
    )
    e_idx = np.nonzero(keep)[0] - off
    event = pd.DataFrame(
        {
            "event_time": e_idx.astype("int64"),
            "estimate": estE,
            "se": seE,
            "ci_lower": estE - critE * seE,
            "ci_upper": estE + critE * seE,
            "n": NE[:, keep].sum(0).astype("int64"),
            "n_units": ntrE.astype("int64"),
        }
    )
    # cohorts
    cohorts = core["cohorts"]
    Gi = np.searchsorted(cohorts, np.where(np.isfinite(G), G, -1).astype(int))
    member = np.isfinite(G)[:, None] & (Gi[:, None] == np.arange(len(cohorts))[None, :])
    DG, CG, NG = D * member, C * member, N * member
    estG, seG, critG, _, ntrG = _aggregate(DG, CG, NG, core["phiC_g"], trends, alpha)
    okg = NG.sum(0) > 0
    by_cohort = pd.DataFrame(
        {
            "cohort": tl.label(cohorts[okg]),
            "estimate": estG[okg],
            "se": seG[okg],
            "ci_lower": (estG - critG * seG)[okg],
            "ci_upper": (estG + critG * seG)[okg],
            "n": NG.sum(0)[okg].astype("int64"),
            "n_units": ntrG[okg].astype("int64"),
        }
    )
    # cells
    cells = pd.DataFrame(
        core["cells"], columns=["g", "t", "event_time", "att", "n_treated", "n_control", "base_periods"]
    )
    att_gt = pd.DataFrame(
        {
            "cohort": tl.label(cells["g"]),
            "period": tl.label(cells["t"]),
            "event_time": cells["event_time"],
            "att": cells["att"],
            "n_treated": cells["n_treated"],
            "n_control": cells["n_control"],
            "base_periods": cells["base_periods"],
        }
    )
    # units
    tr_units = np.nonzero(N[:, 0] > 0)[0]
    unit_effects = pd.DataFrame(
        {
            "unit": units[tr_units],
            "cohort": tl.label(G[tr_units].astype(int)),
            "periods": N[tr_units, 0].astype("int64"),
            "observed": np.where(post, np.nan_to_num(Y), 0.0).sum(1)[tr_units],
            "counterfactual": C[tr_units, 0],
            "effect": D[tr_units, 0],
        }
    )
    n_control = int(((core["phiC_all"] != 0) | (core["phiC_e"] != 0).any(1)).sum())
    return StaggeredResult(
        effect=effect,
        se=se0,
        ci=ci,
        pvalue=pval,
        n=int(N.sum()),
        n_treated=int(n_tr[0]),
        n_control=n_control,
        outcome=str(outcome),
        control=control,
        trends=trends,
        base_periods=base_periods,
        anticipation=anticipation,
        alpha=alpha,
        att_gt=att_gt,
        event_time=event,
        by_cohort=by_cohort,
        unit_effects=unit_effects,
        _phi_event=phiE,
        _event_index=e_idx,
    )


# --------------------------------------------------------------------------- the panel


def panel(
    data,
    *,
    outcome="gross_margin",
    freq="M",
    kpis=(),
    segment="industry",
    start=None,
    end=None,
    pre_periods=12,
    exclude=(),
) -> pd.DataFrame:
    """The account x period panel the ROI estimators work on.

    An account is in the panel from the period of its first invoice to the
    period of its last one (within ``start``/``end``): a customer then. Periods
    in between without invoices have revenue and gross margin 0. After its last
    invoice an account is lost and has no rows (not zeros).

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    outcome : str
        A KPI key from the catalogue (:func:`kamtools.kpis`); its column is
        added beside ``revenue`` and ``gross_margin`` and used for
        ``pre_level``.
    freq : {"M", "Q", "Y"}
        Period length.
    kpis : sequence of str
        More KPI columns to add.
    segment : str or None
        Column of ``accounts`` copied as ``segment`` (industry by default).
    start, end : date, optional
        First and last day of the data used. Default: the first and the last
        transaction.
    pre_periods : int
        Periods before entry averaged into ``pre_level``.
    exclude : sequence of str
        Account ids to leave out, e.g. accounts that entered the programme
        before the data start.

    Returns
    -------
    DataFrame
        Sorted by account and period, with the columns

        - ``account_id``, ``period`` (pandas Period);
        - ``revenue``, ``gross_margin`` (missing where the data have no cost
          column), the ``outcome`` and the ``kpis`` (values of
          :func:`kamtools.compute`);
        - ``treated``: the account entered the KAM programme by ``end``
          (a key account with ``kam_start``);
        - ``post``: the period is at or after its entry period;
        - ``cohort``: the entry period (missing if never treated);
        - ``event_time``: periods since entry (0 = entry period; missing if
          never treated);
        - ``segment``;
        - ``pre_level``: mean ``outcome`` over the ``pre_periods`` periods
          before entry; for accounts never treated, before the median entry
          period of the treated.

    Raises
    ------
    SchemaError
        A key account entered the programme before the data start, or has no
        period before its entry (the message lists them; leave them out with
        ``exclude`` or load earlier data).
    ParameterError
        Unknown KPI, ``segment`` column or excluded id.

    Warns
    -----
    DataWarning
        Key accounts without ``kam_start`` and non-key accounts with one (their
        status is unclear: left out), and accounts without transactions.

    Notes
    -----
    The KPI values come from :func:`kamtools.compute` by account and period.
    On the sample, revenue and gross margin add up to the transactions'
    totals and the post-entry rows to ``truth.treated_account_months``
    (tested).

    Examples
    --------
    >>> import kamtools as kt
    >>> p = kt.roi.panel(kt.sample.load())
    >>> p.columns.tolist()
    ['account_id', 'period', 'revenue', 'gross_margin', 'treated', 'post', 'cohort', 'event_time', 'segment', 'pre_level']
    >>> int(p["post"].sum())  # treated account-months
    934
    """
    from kamtools.io import load
    from kamtools.kpi import compute, get

    fn = "panel"
    data = load(data)
    freq = _periods.check_freq(freq)
    if isinstance(pre_periods, bool) or not isinstance(pre_periods, int | np.integer) or pre_periods < 1:
        raise ParameterError(f"{fn}: pre_periods={pre_periods!r}; pass a whole number of periods, 1 or more.")
    keys = list(dict.fromkeys(["revenue", "gross_margin", outcome, *([kpis] if isinstance(kpis, str) else kpis)]))
    for k in keys:
        get(k)
    acc = data.accounts
    if segment is not None and segment not in acc.columns:
        raise ParameterError(
            f"{fn}: segment={segment!r} is not a column of accounts; use one of {', '.join(acc.columns)}."
        )
    exclude = pd.Index(pd.unique(pd.Series([exclude] if isinstance(exclude, str) else list(exclude), dtype="str")))
    unknown = exclude.difference(acc["account_id"])
    if len(unknown):
        raise ParameterError(f"{fn}: exclude has ids that are not accounts: {', '.join(map(repr, unknown[:5]))}.")
    acc = acc[~acc["account_id"].isin(exclude)]
    key = acc["is_key_account"].fillna(False).astype(bool)
    kam = acc["kam_start"] if "kam_start" in acc.columns else pd.Series(pd.NaT, index=acc.index, dtype="datetime64[ns]")
    unclear = (key & kam.isna()) | (~key & kam.notna())
    if unclear.any():
        ids = acc.loc[unclear, "account_id"]
        warnings.warn(
            f"{fn}: {int(unclear.sum()):,} account(s) are left out because their programme status is unclear "
            f"(key account without kam_start, or kam_start on a non-key account): {', '.join(ids[:5])}. Fix "
            "is_key_account/kam_start to include them.",
            DataWarning,
            stacklevel=2,
        )
        acc = acc[~unclear]
        key, kam = key[~unclear], kam[~unclear]
    tx = data.transactions
    tx = tx[tx["account_id"].isin(acc["account_id"])]
    if tx.empty:
        raise SchemaError(f"{fn}: no transactions for the accounts kept; the panel needs transactions.")
    first_day = _periods.as_of_date(start, tx["date"].min())
    last_day = _periods.as_of_date(end, tx["date"].max())
    tx = tx[(tx["date"] >= first_day) & (tx["date"] < last_day + pd.Timedelta(days=1))]
    if tx.empty:
        raise ParameterError(f"{fn}: no transactions between start={first_day:%Y-%m-%d} and end={last_day:%Y-%m-%d}.")
    prd = _periods.to_period(tx["date"], freq)
    span = prd.groupby(tx["account_id"].to_numpy()).agg(["min", "max"])
    no_tx = ~acc["account_id"].isin(span.index)
    if no_tx.any():
        warnings.warn(
            f"{fn}: {int(no_tx.sum()):,} account(s) have no transactions in the window and have no rows: "
            f"{', '.join(acc.loc[no_tx, 'account_id'][:5])}.",
            DataWarning,
            stacklevel=2,
        )
    lo = pd.PeriodIndex(span["min"]).asi8
    hi = pd.PeriodIndex(span["max"]).asi8
    n = hi - lo + 1
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    grid = pd.DataFrame(
        {
            "account_id": pd.array(np.repeat(span.index.to_numpy(), n), dtype="str"),
            "period": pd.PeriodIndex.from_ordinals(np.repeat(lo, n) + offsets, freq=freq),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported below for the outcome; other KPIs carry their note
        values = compute(
            data.subset(acc["account_id"]) if len(acc) < len(data.accounts) else data,
            keys,
            by="account",
            period=freq,
            as_of=last_day,
            start=first_day,
        )
    notes = values.loc[values["note"].notna() & values["note"].str.startswith("not computable"), ["kpi", "note"]]
    if outcome in set(notes["kpi"]):
        reason = notes.loc[notes["kpi"] == outcome, "note"].iloc[0]
        raise ParameterError(f"{fn}: the outcome {outcome!r} cannot be computed from this data ({reason}).")
    wide = values.pivot_table(index=["entity", "period"], columns="kpi", values="value", aggfunc="first", dropna=False)
    wide = wide.reset_index().rename(columns={"entity": "account_id"})
    wide["account_id"] = wide["account_id"].astype("str")
    out = grid.merge(wide, on=["account_id", "period"], how="left")
    for k in keys:
        if k not in out.columns:
            out[k] = np.nan
    for k in ("revenue", "gross_margin"):
        if k not in set(notes["kpi"]):
            out[k] = out[k].fillna(0.0)
    # treatment
    info = pd.DataFrame(
        {
            "account_id": acc["account_id"].astype("str").to_numpy(),
            "cohort": pd.PeriodIndex(kam.dt.to_period(freq)),
            "segment": acc[segment].to_numpy() if segment is not None else None,
        }
    )
    first_period = pd.Period(first_day, freq=freq)
    last_period = pd.Period(last_day, freq=freq)
    late = info["cohort"].notna() & (info["cohort"] > last_period)
    info.loc[late, "cohort"] = pd.NaT
    info = info[info["account_id"].isin(span.index)]
    early = info["cohort"].notna() & (info["cohort"] < first_period)
    if early.any():
        bad = info[early]
        _raise_entry(
            bad,
            "KAM entry before the data starts",
            first_day,
            f"{len(bad):,} key account(s) entered the KAM programme before the data start "
            f"({first_day:%Y-%m-%d}), so there is nothing before entry to compare with",
        )
    out = out.merge(info, on="account_id", how="left")
    first_seen = out.groupby("account_id")["period"].transform("min")
    nopre = out["cohort"].notna() & (first_seen >= out["cohort"])
    if nopre.any():
        bad = info[info["account_id"].isin(out.loc[nopre, "account_id"])]
        _raise_entry(
            bad,
            "no pre-entry periods",
            first_day,
            f"no pre-entry periods for {len(bad):,} key account(s): their first invoice in the data falls "
            "in or after the period they entered KAM",
        )
    out["treated"] = out["cohort"].notna()
    et = pd.PeriodIndex(out["period"]).asi8 - pd.PeriodIndex(out["cohort"]).asi8
    out["event_time"] = pd.array(np.where(out["treated"], et, 0), dtype="Int64")
    out.loc[~out["treated"], "event_time"] = pd.NA
    out["post"] = out["treated"] & (out["event_time"].fillna(-1) >= 0).astype(bool)
    out["pre_level"] = _pre_level(out, outcome, pre_periods)
    cols = ["account_id", "period", *keys, "treated", "post", "cohort", "event_time", "segment", "pre_level"]
    return out[cols].sort_values(["account_id", "period"], kind="stable").reset_index(drop=True)


def _raise_entry(bad: pd.DataFrame, check: str, first_day, what: str):
    ids = bad["account_id"].tolist()
    fc = pd.DataFrame(
        {
            "table": "accounts",
            "column": "kam_start",
            "check": check,
            "row": None,
            "value": [f"{a}: {c}" for a, c in zip(ids, bad["cohort"].astype("str"), strict=True)],
            "advice": "leave the account out (exclude=) or load data from before its entry",
        }
    )
    shown = ", ".join(f"{a} ({c})" for a, c in zip(ids[:5], bad["cohort"].astype("str")[:5], strict=True))
    raise SchemaError(
        f"panel: {what}: {shown}{' ...' if len(ids) > 5 else ''}. Try 1) loading transactions from before their "
        f"entry, or 2) leaving them out: kt.roi.panel(data, exclude={ids[:5]!r}).",
        fc,
    )


def _pre_level(out: pd.DataFrame, outcome: str, pre_periods: int) -> np.ndarray:
    per = pd.PeriodIndex(out["period"]).asi8
    coh = pd.PeriodIndex(out["cohort"]).asi8
    treated = out["treated"].to_numpy()
    if treated.any():
        ref = np.where(treated, coh, int(np.median(pd.PeriodIndex(out.loc[treated, "cohort"]).asi8)))
    else:
        ref = np.full(len(out), per.max() + 1)
    inwin = (per < ref) & (per >= ref - pre_periods)
    vals = pd.Series(np.where(inwin, out[outcome].to_numpy(dtype="float64", na_value=np.nan), np.nan))
    return vals.groupby(out["account_id"].to_numpy()).transform("mean").to_numpy()


# --------------------------------------------------------------------------- event study


@dataclass(frozen=True, eq=False, repr=False)
class EventStudyResult(_Result):
    """Leads and lags of the effect around entry, with a pre-trend test.

    Attributes
    ----------
    coefficients : DataFrame
        ``event_time``, ``estimate``, ``se``, ``ci_lower``, ``ci_upper``,
        ``n`` (treated unit-periods behind the estimate). The reference
        (``reference``) is not a row.
    pretrend : DataFrame
        One row: ``statistic``, ``df``, ``pvalue`` of the joint test that all
        lead coefficients are zero, the tested ``periods`` and ``test`` (its
        kind).
    reference : str
        What the coefficients are relative to.
    method : {"staggered", "twfe"}
    outcome : str
    leads, lags : int
    alpha : float
    model : statsmodels results or StaggeredResult
        The regression (``twfe``) or the group-time fit (``staggered``).
    """

    coefficients: pd.DataFrame
    pretrend: pd.DataFrame
    method: str
    outcome: str
    leads: int
    lags: int
    alpha: float
    reference: str
    model: object = field(repr=False)

    @property
    def _title(self):
        return (
            f"EventStudyResult: {'group-time (staggered)' if self.method == 'staggered' else 'two-way fixed effects'}"
        )

    @property
    def summary(self) -> pd.DataFrame:
        """The coefficients, indexed by event time."""
        return self.coefficients.set_index("event_time")

    def _lines(self):
        pt = self.pretrend.iloc[0]
        post = self.coefficients[self.coefficients["event_time"] >= 0]
        return [
            f"outcome  {self.outcome}; event times -{self.leads} to {self.lags}; reference: {self.reference}",
            f"pre-trend test ({pt['test']}): statistic {pt['statistic']:.2f} on {pt['df']:.3g} df, p {pt['pvalue']:.3g}",
            f"mean effect at event times 0 to {self.lags}: {_fmt(float(post['estimate'].mean()) if len(post) else math.nan)}",
        ]

    def plot(self, *, truth=None, ax=None):
        """Coefficients with their intervals; the reference period as a diamond at 0.

        Parameters
        ----------
        truth : mapping or Series, optional
            Event time -> true effect, drawn as a line.
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        title = (
            f"Event study of {self.outcome} ({'group-time' if self.method == 'staggered' else 'TWFE'}), "
            f"pre-trend p = {self.pretrend['pvalue'].iloc[0]:.2f}\nreference: {self.reference}"
        )
        return _plot_event_profile(
            self.coefficients,
            title=title,
            truth=truth,
            ax=ax,
            leads=None,
            lags=None,
            alpha=self.alpha,
            reference=-1 if self.method == "twfe" else None,
        )


def event_study(
    df,
    *,
    outcome,
    unit,
    time,
    cohort,
    method="staggered",
    leads=6,
    lags=12,
    control="notyet",
    trends="proportional",
    base_periods=12,
    cov_type="cluster",
    alpha=0.05,
) -> EventStudyResult:
    """Effects by periods since entry, leads included, and a test of parallel pre-trends.

    Parameters
    ----------
    df, outcome, unit, time, cohort
        As in :func:`staggered`.
    method : {"staggered", "twfe"}
        ``"staggered"``: the group-time estimator of :func:`staggered`,
        averaged by event time; the reference is the mean of the
        ``base_periods`` periods before the first lead (``anticipation=leads``),
        so every lead from ``-leads`` to -1 is a placebo estimate.
        ``"twfe"``: the regression of the outcome on lead and lag dummies with
        unit and period effects (statsmodels OLS), event time -1 the
        reference, end points binned (event times before ``-leads`` count as
        ``-leads``, after ``lags`` as ``lags``).
    leads, lags : int
        Event times shown: ``-leads`` to ``lags``.
    control, trends, base_periods
        For ``method="staggered"``, as in :func:`staggered`. A longer base
        is less noisy; ``base_periods=1`` compares with the single period
        ``-leads - 1``.
    cov_type : str
        For ``method="twfe"``, as in :func:`did` (clustered by unit by default).
    alpha : float

    Returns
    -------
    EventStudyResult

    Notes
    -----
    The pre-trend test of ``"staggered"`` is :meth:`StaggeredResult.pretrend_test`
    over the leads. Over 40 simulated ``kamtools.sample`` portfolios of 200
    accounts, where the trends are parallel, it rejected at the 5% level in
    2.5-10% of them for 3 to 12 leads (base of 1 or 12 periods). A few very
    large accounts can still make a noisy pre-period look like a trend: look
    at ``model.unit_effects`` to see which accounts drive it. ``"twfe"`` uses
    statsmodels' F-test of the lead coefficients. With effects that grow
    after entry, TWFE leads and lags are contaminated by other periods'
    effects (Sun and Abraham 2021); use them for comparison.

    Examples
    --------
    >>> import kamtools as kt
    >>> p = kt.roi.panel(kt.sample.load())
    >>> es = kt.roi.event_study(p, outcome="gross_margin", unit="account_id", time="period", cohort="cohort")
    >>> es.coefficients["event_time"].agg(["min", "max"]).tolist()
    [-6, 12]
    >>> es.reference
    'mean of event times -18 to -7 (fewer where data start later)'
    >>> es.pretrend.columns.tolist()
    ['statistic', 'df', 'pvalue', 'periods', 'test']
    """
    fn = "event_study"
    _check_choice(method, ("staggered", "twfe"), "method", fn)
    for name, v in (("leads", leads), ("lags", lags)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ParameterError(f"{fn}: {name}={v!r}; pass a whole number of periods, 0 or more.")
    if leads < 2:
        raise ParameterError(f"{fn}: leads={leads!r}; pass 2 or more, so that the pre-trend test has leads to test.")
    if isinstance(base_periods, bool) or not isinstance(base_periods, int | np.integer) or base_periods < 1:
        raise ParameterError(f"{fn}: base_periods={base_periods!r}; pass a whole number of periods, 1 or more.")
    alpha = _check_alpha(alpha, fn)
    if method == "staggered":
        res = staggered(
            df,
            outcome=outcome,
            unit=unit,
            time=time,
            cohort=cohort,
            control=control,
            trends=trends,
            base_periods=base_periods,
            anticipation=leads,
            alpha=alpha,
        )
        et = res.event_time
        sel = (et["event_time"] >= -leads) & (et["event_time"] <= lags)
        coef = et.loc[sel, ["event_time", "estimate", "se", "ci_lower", "ci_upper", "n"]].reset_index(drop=True)
        n_pre = int(((et["event_time"] < 0) & (et["event_time"] >= -leads) & (et["se"] > 0)).sum())
        pt = res.pretrend_test(n_pre).assign(test="sum of squared t, scaled F")
        ref = (
            f"mean of event times {-leads - base_periods} to {-leads - 1}"
            if base_periods > 1
            else f"event time {-leads - 1}"
        )
        return EventStudyResult(
            coefficients=coef,
            pretrend=pt,
            method=method,
            outcome=str(outcome),
            leads=int(leads),
            lags=int(lags),
            alpha=alpha,
            reference=ref + " (fewer where data start later)",
            model=res,
        )
    _check_choice(cov_type, ("cluster", "nonrobust", "HC0", "HC1"), "cov_type", fn)
    Y, G, units, tl = _staggered_prepare(df, fn, outcome, unit, time, cohort)
    ui, ti = np.nonzero(~np.isnan(Y))
    y = Y[ui, ti]
    rel = np.where(np.isfinite(G[ui]), ti - np.where(np.isfinite(G), G, 0)[ui], np.nan)
    rel_b = np.clip(rel, -leads, lags)
    events = [e for e in range(-leads, lags + 1) if e != -1]
    Dm = np.column_stack([(rel_b == e).astype("float64") for e in events])
    names = [f"event[{e}]" for e in events]
    if not np.isinf(G).any():
        warnings.warn(
            f"{fn}: no never-treated units; the TWFE event study then rests on the binned end points.",
            DataWarning,
            stacklevel=2,
        )
    n_units = len(units)
    ucodes = ui
    tcodes, tuniq = pd.factorize(ti, sort=True)
    res = _twfe(
        y, Dm, names, np.empty((len(y), 0)), [], {}, ucodes, n_units, tcodes, len(tuniq), cov_type=cov_type, fn=fn
    )
    ci = res.conf_int(alpha=alpha).loc[names]
    counts = pd.Series(rel_b[np.isfinite(rel_b)]).value_counts()
    coef = pd.DataFrame(
        {
            "event_time": np.array(events, dtype="int64"),
            "estimate": res.params[names].to_numpy(),
            "se": res.bse[names].to_numpy(),
            "ci_lower": ci.iloc[:, 0].to_numpy(),
            "ci_upper": ci.iloc[:, 1].to_numpy(),
            "n": [int(counts.get(float(e), 0)) for e in events],
        }
    )
    lead_names = [f"event[{e}]" for e in range(-leads, -1)]
    R = np.zeros((len(lead_names), len(res.params)))
    for r, nm in enumerate(lead_names):
        R[r, list(res.params.index).index(nm)] = 1.0
    wt = res.wald_test(R, use_f=True, scalar=True)
    pt = pd.DataFrame(
        {
            "statistic": [float(wt.statistic)],
            "df": [float(wt.df_num)],
            "pvalue": [float(wt.pvalue)],
            "periods": [", ".join(str(e) for e in range(-leads, -1))],
            "test": ["F"],
        },
        index=pd.Index(["F"], name="test_kind"),
    )
    return EventStudyResult(
        coefficients=coef,
        pretrend=pt,
        method=method,
        outcome=str(outcome),
        leads=int(leads),
        lags=int(lags),
        alpha=alpha,
        reference="event time -1",
        model=res,
    )


# --------------------------------------------------------------------------- comparison accounts

_FEATURES = ("pre_revenue", "pre_margin", "margin_trend", "segment")


@dataclass(frozen=True, eq=False, repr=False)
class MatchResult(_Result):
    """Matched comparison accounts and the balance they achieve.

    Attributes
    ----------
    pairs : DataFrame
        One row per treated unit and matched control: ``unit``, ``cohort``,
        ``control``, ``distance`` (standardised distance for nearest
        neighbours, difference of the logit propensity score otherwise).
    controls : list
        The distinct matched controls, sorted: pass them to
        :func:`staggered` or :func:`programme_roi` as ``control_units``.
    unmatched : list
        Treated units without a match (no candidate in their segment, outside
        the caliper, or features missing).
    balance : DataFrame
        One row per covariate: ``mean_treated``, ``mean_control_before``,
        ``mean_control_after``, ``smd_before``, ``smd_after`` (standardised
        mean differences, the denominator from before matching; |SMD| < 0.1
        is the usual mark of balance, Austin 2009).
    method : str
    model : statsmodels results or None
        The propensity-score Logit (``method="propensity"``).
    """

    pairs: pd.DataFrame
    controls: list
    unmatched: list
    balance: pd.DataFrame
    method: str
    model: object = field(repr=False, default=None)

    _title = "MatchResult: matched comparison accounts"

    @property
    def summary(self) -> pd.DataFrame:
        """The balance table."""
        return self.balance

    def _lines(self):
        b = self.balance
        return [
            f"method   {self.method}; {self.pairs['unit'].nunique():,} treated units matched to "
            f"{len(self.controls):,} distinct controls; {len(self.unmatched):,} unmatched",
            f"balance  max |SMD| {b['smd_before'].abs().max():.2f} before, {b['smd_after'].abs().max():.2f} after",
        ]

    def plot(self, *, ax=None):
        """Love plot: |standardised mean difference| of each covariate before and after matching.

        Returns
        -------
        matplotlib.figure.Figure
        """
        fig, ax = _axes(ax, (6, 0.45 * len(self.balance) + 1.5))
        b = self.balance.iloc[::-1]
        y = np.arange(len(b))
        ax.scatter(
            b["smd_before"].abs(), y, marker="o", facecolors="none", edgecolors="#7f7f7f", label="all candidates"
        )
        ax.scatter(b["smd_after"].abs(), y, marker="o", color="#1f77b4", label="matched")
        ax.axvline(0.1, color="black", lw=0.8, ls="--")
        ax.set_yticks(y, b.index)
        ax.set_xlabel("|standardised mean difference|")
        ax.set_title(f"Balance before and after matching ({self.method})")
        ax.legend(loc="lower right", fontsize="small", frameon=False)
        return fig


def _window_features(Yrev, Ymar, g, window):
    """Per unit, over the ``window`` periods before ``g``: log mean revenue, log mean margin, relative slope."""
    lo = max(g - window, 0)
    R = Yrev[:, lo:g]
    M = Ymar[:, lo:g]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rev = np.log(np.maximum(np.nanmean(R, axis=1), 1.0))
        mmean = np.nanmean(M, axis=1)
        mar = np.log(np.maximum(mmean, 1.0))
        t = np.arange(g - lo, dtype="float64")[None, :]
        ok = ~np.isnan(M)
        cnt = ok.sum(1)
        tm = np.where(ok, t, 0.0)
        mz = np.where(ok, M, 0.0)
        st, sy, stt, sty = tm.sum(1), mz.sum(1), (tm * tm).sum(1), (tm * mz).sum(1)
        slope = (cnt * sty - st * sy) / (cnt * stt - st * st)
        trend = np.where((cnt >= 3) & (mmean > 0), slope / mmean, np.nan)
    return {"pre_revenue": rev, "pre_margin": mar, "margin_trend": trend}


def match_controls(
    panel,
    *,
    method="nearest",
    on=("pre_revenue", "margin_trend", "segment"),
    n_neighbors=1,
    caliper=None,
    replace=False,
    window=12,
    outcome="gross_margin",
    revenue="revenue",
    unit="account_id",
    time="period",
    cohort="cohort",
    segment="segment",
) -> MatchResult:
    """Non-key accounts that resemble the key accounts before entry.

    Each key account is compared with the candidates (accounts never in the
    programme, customers in the period before its entry) over the same
    calendar window: the ``window`` periods before its entry.

    Parameters
    ----------
    panel : DataFrame
        A :func:`panel` (or a frame with its columns, named by the arguments).
    method : {"nearest", "propensity"}
        ``"nearest"``: nearest neighbours on the numeric features,
        standardised, within the same segment (exact match on it).
        ``"propensity"``: nearest neighbours on the logit of a propensity
        score (statsmodels Logit of key-account status on the features,
        segment as dummies), within the same entry cohort.
    on : sequence of str
        Features: ``"pre_revenue"`` (log of mean revenue over the window),
        ``"pre_margin"`` (log of mean outcome), ``"margin_trend"`` (slope of
        the outcome over the window relative to its mean: growth per period),
        ``"segment"``.
    n_neighbors : int
        Controls per key account.
    caliper : float, optional
        Largest distance accepted, in standard deviations of the distance
        measure's inputs (standardised features, or the logit score).
    replace : bool
        Whether a control may serve several key accounts.
    window : int
        Pre-entry periods the features are measured over.
    outcome, revenue, unit, time, cohort, segment : str
        Column names in ``panel``.

    Returns
    -------
    MatchResult

    Raises
    ------
    ParameterError
        Unknown features or columns; no treated or no candidate units;
        collinear features (propensity); a propensity model that separates
        the groups perfectly.

    Warns
    -----
    DataWarning
        Key accounts left unmatched, with their count.

    Notes
    -----
    Matching is greedy, largest key accounts (by pre-period revenue) first,
    so that the hardest to match get the closest candidates. Balance is
    measured on the stacked cohort windows (each candidate measured in each
    key account's window); checked by hand on a small panel in the tests.

    Examples
    --------
    >>> import kamtools as kt
    >>> p = kt.roi.panel(kt.sample.load())
    >>> m = kt.roi.match_controls(p)
    >>> len(m.controls) == len(m.pairs)  # one control each, without replacement
    True
    >>> bool(m.balance["smd_after"].abs().max() < m.balance["smd_before"].abs().max())
    True
    """
    fn = "match_controls"
    _check_frame(panel, fn)
    _check_choice(method, ("nearest", "propensity"), "method", fn)
    on = [on] if isinstance(on, str) else list(on)
    bad = [f for f in on if f not in _FEATURES]
    if bad or not on:
        raise ParameterError(f"{fn}: on={on!r}; choose features from {', '.join(map(repr, _FEATURES))}.")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int | np.integer) or n_neighbors < 1:
        raise ParameterError(f"{fn}: n_neighbors={n_neighbors!r}; pass a whole number, 1 or more.")
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ParameterError(f"{fn}: window={window!r}; pass a whole number of periods, 1 or more.")
    if caliper is not None and not (isinstance(caliper, int | float) and caliper > 0):
        raise ParameterError(f"{fn}: caliper={caliper!r}; pass a positive number of standard deviations, or None.")
    _check_columns(
        panel,
        fn,
        outcome=outcome,
        revenue=revenue,
        unit=unit,
        time=time,
        cohort=cohort,
        segment=segment if "segment" in on else None,
    )
    numeric = [f for f in on if f != "segment"]
    if method == "nearest" and not numeric:
        raise ParameterError(f"{fn}: method='nearest' needs a numeric feature besides 'segment' in on=.")
    Ym, G, units, tl = _staggered_prepare(panel, fn, outcome, unit, time, cohort)
    Yr, _, _, _ = _staggered_prepare(panel, fn, revenue, unit, time, cohort)
    seg = None
    if "segment" in on:
        seg = (
            panel.groupby(unit, sort=True)[segment].first().reindex(units).astype("str").fillna("(missing)").to_numpy()
        )
    never = np.isinf(G)
    if not never.any():
        raise ParameterError(
            f"{fn}: no untreated units: every unit enters the programme, so there is nothing to "
            "match with. Add accounts outside the programme."
        )
    obs = ~np.isnan(Ym)
    rows = []
    for g in np.unique(G[np.isfinite(G)]).astype(int):
        feats = _window_features(Yr, Ym, g, window)
        at_entry = obs[:, g - 1] & (obs[:, g] if g < obs.shape[1] else True)
        tr = np.nonzero((G == g) & obs[:, g:].any(axis=1))[0]  # in the programme in the data (not lost before)
        ca = np.nonzero(never & at_entry)[0]
        for idx, is_t in ((tr, True), (ca, False)):
            block = pd.DataFrame({"u": idx, "g": g, "treated": is_t, **{f: feats[f][idx] for f in numeric}})
            if seg is not None:
                block["segment"] = seg[idx]
            rows.append(block)
    st = pd.concat(rows, ignore_index=True)
    incomplete = st[numeric].isna().any(axis=1)
    lost_t = st.loc[incomplete & st["treated"], "u"].unique()
    st = st[~incomplete].reset_index(drop=True)
    if not st["treated"].any():
        raise ParameterError(f"{fn}: no treated unit has the features over its pre-entry window; use a longer window.")
    # the design of features (numeric standardised; segment dummies for the propensity model)
    X = st[numeric].to_numpy(dtype="float64")
    sd = X.std(axis=0)
    sd[sd == 0] = 1.0
    Z = (X - X.mean(axis=0)) / sd
    model = None
    if method == "propensity":
        from statsmodels.discrete.discrete_model import Logit

        D, Dnames, Dgroups = (
            _covariate_matrix(st, ["segment"], fn) if seg is not None else (np.empty((len(st), 0)), [], {})
        )
        design = np.column_stack([np.ones(len(st)), Z, D])
        names = ["const", *numeric, *Dnames]
        groups = {f: [1 + i] for i, f in enumerate(numeric)}
        groups.update({k: [1 + len(numeric) + i for i in v] for k, v in Dgroups.items()})
        _design_rank_check(design, names, groups, fn, " in the propensity model")
        from statsmodels.tools.sm_exceptions import (
            ConvergenceWarning,
            PerfectSeparationError,
            PerfectSeparationWarning,
        )

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", PerfectSeparationWarning)
                warnings.simplefilter("error", ConvergenceWarning)
                model = Logit(st["treated"].to_numpy(dtype="float64"), pd.DataFrame(design, columns=names)).fit(disp=0)
        except (PerfectSeparationWarning, PerfectSeparationError, ConvergenceWarning, np.linalg.LinAlgError) as err:
            raise ParameterError(
                f"{fn}: the propensity model cannot be fitted ({type(err).__name__}: {err}). The features separate "
                "key and other accounts (almost) perfectly, so there is no overlap to match on. Try 1) "
                "method='nearest', 2) fewer features, 3) comparing with accounts of similar size only."
            ) from err
        score = model.fittedvalues.to_numpy()
        dist_scale = float(np.std(score)) or 1.0
        feat = (score / dist_scale)[:, None]
        strata = st["g"].astype("str")
    else:
        feat = Z
        strata = st["g"].astype("str") + ("|" + st["segment"] if seg is not None else "")
    pairs = []
    used = set()
    unmatched = [units[u] for u in lost_t]
    order = st[st["treated"]].assign(rev=st.get("pre_revenue", 0.0)).sort_values(["rev", "u"], ascending=[False, True])
    cand_by = {k: v.index.to_numpy() for k, v in st[~st["treated"]].groupby(strata[~st["treated"]])}
    for i, r in order.iterrows():
        pool = cand_by.get(strata[i], np.array([], dtype=int))
        if not replace and len(pool):
            pool = pool[~np.isin(st.loc[pool, "u"].to_numpy(), list(used))]
        if len(pool):
            d = np.sqrt(((feat[pool] - feat[i]) ** 2).sum(axis=1))
            if caliper is not None:
                pool, d = pool[d <= caliper], d[d <= caliper]
            best = np.argsort(d, kind="stable")[:n_neighbors]
        else:
            best = []
        if len(best) == 0:
            unmatched.append(units[int(r["u"])])
            continue
        for b in best:
            cu = int(st.loc[pool[b], "u"])
            used.add(cu)
            pairs.append((int(r["u"]), int(r["g"]), cu, float(d[b]), int(pool[b])))
    if unmatched:
        warnings.warn(
            f"{fn}: {len(unmatched):,} treated unit(s) have no match: {', '.join(map(str, unmatched[:5]))}.",
            DataWarning,
            stacklevel=2,
        )
    if not pairs:
        raise ParameterError(f"{fn}: no treated unit could be matched; widen the caliper or use fewer features.")
    pr = pd.DataFrame(pairs, columns=["u", "g", "c", "distance", "row"])
    out_pairs = pd.DataFrame(
        {"unit": units[pr["u"]], "cohort": tl.label(pr["g"]), "control": units[pr["c"]], "distance": pr["distance"]}
    )
    balance = _balance(st, numeric, seg is not None, pr)
    return MatchResult(
        pairs=out_pairs,
        controls=sorted(pd.unique(out_pairs["control"]).tolist()),
        unmatched=sorted(map(str, unmatched)),
        balance=balance,
        method=method,
        model=model,
    )


def _balance(st: pd.DataFrame, numeric, with_segment: bool, pr: pd.DataFrame) -> pd.DataFrame:
    cols = {f: st[f].to_numpy(dtype="float64") for f in numeric}
    if with_segment:
        for lev in sorted(st["segment"].unique()):
            cols[f"segment = {lev}"] = (st["segment"] == lev).to_numpy(dtype="float64")
    t_rows = st.index[st["treated"]].to_numpy()
    matched_t = st.index[st["treated"] & st["u"].isin(pr["u"])].to_numpy()
    c_rows = st.index[~st["treated"]].to_numpy()
    m_rows = pr["row"].to_numpy()
    out = []
    for name, v in cols.items():
        vt, vc = v[t_rows], v[c_rows]
        den = math.sqrt((vt.var(ddof=1) + vc.var(ddof=1)) / 2) if len(vt) > 1 and len(vc) > 1 else math.nan
        mt, mc, ma = vt.mean(), vc.mean(), v[m_rows].mean()
        mt_after = v[matched_t].mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append((name, mt, mc, ma, (mt - mc) / den if den else 0.0, (mt_after - ma) / den if den else 0.0))
    return pd.DataFrame(
        out,
        columns=["covariate", "mean_treated", "mean_control_before", "mean_control_after", "smd_before", "smd_after"],
    ).set_index("covariate")


# --------------------------------------------------------------------------- ROI of the programme


@dataclass(frozen=True, eq=False, repr=False)
class RoiResult(_Result):
    """Return on the KAM programme, with its uncertainty.

    Attributes
    ----------
    uplift : StaggeredResult
        The causal estimate behind everything: extra outcome per treated
        post-entry account-period.
    treated_periods : int
        Treated post-entry account-periods the uplift is summed over.
    incremental_margin, incremental_se : float
        ``uplift.effect * treated_periods`` and its standard error.
    incremental_ci : tuple of float
    programme_cost : float
        Sum of the ``costs`` rows of kind ``cost_kind`` of the accounts in
        the programme, dated within the panel's periods.
    roi, roi_se : float
        ``(incremental_margin - programme_cost) / programme_cost`` and its
        standard error.
    roi_ci : tuple of float
    payback : float
        Periods from entry until an average key account's cumulative
        incremental margin covers its cumulative programme cost for good (it
        stays covered over the rest of the event-time profile, which runs as
        long as at least a quarter of the key accounts are observed); ``inf``
        when not within the data.
    payback_ci : tuple of float
        Percentile interval from a multiplier bootstrap of the event-time
        profile (``inf``: not within the data).
    per_account : DataFrame
        One row per key account with an estimate: ``account_id``, ``cohort``,
        ``periods``, ``observed`` (its outcome after entry), ``counterfactual``
        (estimated without the programme), ``incremental``, ``cost``, ``roi``.
        Single accounts are noisy: read them as a ranking, not as facts.
    payback_table : DataFrame
        By event time: ``event_time``, ``effect`` and ``cost`` per account,
        their cumulative sums ``cum_effect``, ``cum_cost``, ``cum_net`` and
        the bootstrap band of ``cum_net`` (``cum_net_lower``, ``cum_net_upper``).
    outcome, cost_kind, freq : str
    alpha : float
    panel : DataFrame
        The :func:`panel` it was computed from (used by :func:`what_if`).
    """

    uplift: StaggeredResult
    treated_periods: int
    incremental_margin: float
    incremental_se: float
    incremental_ci: tuple
    programme_cost: float
    roi: float
    roi_se: float
    roi_ci: tuple
    payback: float
    payback_ci: tuple
    per_account: pd.DataFrame = field(repr=False)
    payback_table: pd.DataFrame = field(repr=False)
    outcome: str = "gross_margin"
    cost_kind: str = "kam_programme"
    freq: str = "M"
    alpha: float = 0.05
    panel: pd.DataFrame = field(repr=False, default=None)

    _title = "RoiResult: return on the KAM programme"

    @property
    def summary(self) -> pd.DataFrame:
        """Uplift, treated periods, incremental margin, cost, ROI and payback: estimate, se, ci_lower, ci_upper."""
        u = self.uplift
        rows = [
            ("uplift per treated period", u.effect, u.se, *u.ci),
            ("treated periods", float(self.treated_periods), 0.0, math.nan, math.nan),
            ("incremental margin", self.incremental_margin, self.incremental_se, *self.incremental_ci),
            ("programme cost", self.programme_cost, 0.0, math.nan, math.nan),
            ("ROI", self.roi, self.roi_se, *self.roi_ci),
            ("payback (periods)", self.payback, math.nan, *self.payback_ci),
        ]
        return pd.DataFrame(rows, columns=["measure", "estimate", "se", "ci_lower", "ci_upper"]).set_index("measure")

    def _lines(self):
        lvl = f"{100 * (1 - self.alpha):g}%"
        pb = "not within the data" if not math.isfinite(self.payback) else f"{self.payback:g} periods"
        pb_ci = ", ".join("beyond the data" if not math.isfinite(x) else f"{x:g}" for x in self.payback_ci)
        return [
            f"uplift   {_fmt(self.uplift.effect)} {self.outcome} per treated period ({lvl} CI {_fmt(self.uplift.ci[0])} "
            f"to {_fmt(self.uplift.ci[1])}), over {self.treated_periods:,} treated periods",
            f"incremental {_fmt(self.incremental_margin)} ({lvl} CI {_fmt(self.incremental_ci[0])} to "
            f"{_fmt(self.incremental_ci[1])}); programme cost {_fmt(self.programme_cost)}",
            f"ROI      {self.roi:.2f} ({lvl} CI {self.roi_ci[0]:.2f} to {self.roi_ci[1]:.2f})",
            f"payback  {pb} after entry ({lvl} interval {pb_ci})",
        ]

    def plot(self, *, kind="payback", ax=None):
        """The payback curve, or the per-account ROI.

        Parameters
        ----------
        kind : {"payback", "accounts"}
            ``"payback"``: cumulative incremental margin and cumulative
            programme cost of an average key account by periods since entry,
            with the bootstrap band of their difference. ``"accounts"``:
            incremental margin against cost per key account.
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        _check_choice(kind, ("payback", "accounts"), "kind", "RoiResult.plot")
        if kind == "payback":
            fig, ax = _axes(ax, (7, 4))
            t = self.payback_table
            ax.plot(t["event_time"], t["cum_effect"], color="#1f77b4", label="cumulative incremental margin")
            ax.fill_between(
                t["event_time"],
                t["cum_net_lower"] + t["cum_cost"],
                t["cum_net_upper"] + t["cum_cost"],
                color="#1f77b4",
                alpha=0.2,
                lw=0,
                label=f"{100 * (1 - self.alpha):g}% band",
            )
            ax.plot(t["event_time"], t["cum_cost"], color="#d62728", ls="--", label="cumulative programme cost")
            if math.isfinite(self.payback):
                ax.axvline(self.payback - 1, color="black", lw=0.8, ls=":")
            ax.set_xlabel("periods since KAM entry")
            ax.set_ylabel("per key account")
            ax.set_title(f"Payback of the KAM programme (ROI {self.roi:.2f})")
            ax.legend(loc="upper left", fontsize="small", frameon=False)
            return fig
        pa = self.per_account.sort_values("incremental")
        fig, ax = _axes(ax, (7, 0.18 * len(pa) + 1.5))
        y = np.arange(len(pa))
        ax.barh(
            y,
            pa["incremental"],
            color=np.where(pa["incremental"] >= pa["cost"], "#5cb85c", "#d9534f"),
            label="incremental margin",
        )
        ax.scatter(pa["cost"], y, color="black", marker="|", s=60, label="programme cost", zorder=3)
        ax.set_yticks(y, pa["account_id"], fontsize="x-small")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel(self.outcome)
        ax.set_title("Per key account: incremental margin against programme cost")
        ax.legend(loc="lower right", fontsize="small", frameon=False)
        return fig


def programme_roi(
    data,
    *,
    outcome="gross_margin",
    freq="M",
    control="notyet",
    trends="proportional",
    base_periods=12,
    control_units=None,
    cost_kind="kam_programme",
    start=None,
    end=None,
    exclude=(),
    alpha=0.05,
    n_boot=1999,
    seed=0,
) -> RoiResult:
    """ROI of the KAM programme: incremental margin against programme cost, with intervals.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
        Needs ``transactions`` (with ``cost`` for gross margin), ``accounts``
        (``is_key_account``, ``kam_start``) and ``costs``.
    outcome : str
        KPI the uplift is measured in (gross margin by default).
    freq : {"M", "Q", "Y"}
    control, trends, base_periods, control_units
        As in :func:`staggered`.
    cost_kind : str
        The ``costs.kind`` of programme costs.
    start, end, exclude
        As in :func:`panel`.
    alpha : float
        1 - confidence level.
    n_boot : int
        Multiplier-bootstrap draws for the payback interval.
    seed : int
        Seed of those draws.

    Returns
    -------
    RoiResult

    Raises
    ------
    ParameterError
        No ``costs`` table or no rows of ``cost_kind``; and everything
        :func:`panel` and :func:`staggered` raise (no treated or no untreated
        accounts, entries before the data start, no pre-entry periods, a
        constant outcome).

    Warns
    -----
    DataWarning
        Programme cost rows left out (accounts not in the panel's programme,
        or dates outside its periods), with their count and amount.

    Notes
    -----
    Incremental margin is the uplift summed over treated post-entry
    account-periods, counted up to churn or the end of the data. ROI is
    linear in it, so its interval is the uplift's interval transformed (the
    delta method, exact here); the cost is booked, not estimated. Per-account
    incremental margins add up to the total. On ``kamtools.sample`` data the
    interval covers ``truth.programme_roi`` for the seeds in the tests.

    Examples
    --------
    >>> import kamtools as kt
    >>> data = kt.sample.load()
    >>> r = kt.roi.programme_roi(data)
    >>> round(r.programme_cost, 2) == round(data.truth.programme_cost, 2)
    True
    >>> bool(r.roi_ci[0] < data.truth.programme_roi < r.roi_ci[1])
    True
    """
    from kamtools.io import load

    fn = "programme_roi"
    data = load(data)
    alpha = _check_alpha(alpha, fn)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise ParameterError(f"{fn}: n_boot={n_boot!r}; pass a whole number of draws, 0 or more.")
    costs = data.costs
    if costs is None or "kind" not in costs.columns or "amount" not in costs.columns:
        raise ParameterError(
            f"{fn}: the ROI needs the costs table with kind and amount columns (programme cost rows of kind "
            f"{cost_kind!r}). Add it to the data."
        )
    c = costs[costs["kind"] == cost_kind]
    if c.empty:
        kinds = ", ".join(map(repr, pd.unique(costs["kind"].dropna())[:10]))
        raise ParameterError(f"{fn}: no costs rows of kind {cost_kind!r} (kinds present: {kinds}). Pass cost_kind=.")
    p = panel(data, outcome=outcome, freq=freq, start=start, end=end, exclude=exclude)
    est = staggered(
        p,
        outcome=outcome,
        unit="account_id",
        time="period",
        cohort="cohort",
        control=control,
        trends=trends,
        base_periods=base_periods,
        control_units=control_units,
        alpha=alpha,
    )
    # programme cost: rows of accounts in the programme, within the panel's periods
    cp = pd.DataFrame(
        {
            "account_id": c["account_id"].astype("str").to_numpy(),
            "period": _periods.to_period(c["date"], freq).to_numpy(),
            "amount": c["amount"].to_numpy(dtype="float64"),
        }
    )
    treated_ids = pd.Index(pd.unique(p.loc[p["treated"], "account_id"]))
    lo, hi = p["period"].min(), p["period"].max()
    keep = cp["account_id"].isin(treated_ids) & (cp["period"] >= lo) & (cp["period"] <= hi)
    if (~keep).any():
        warnings.warn(
            f"{fn}: {int((~keep).sum()):,} {cost_kind} cost row(s) totalling {cp.loc[~keep, 'amount'].sum():,.2f} are "
            f"left out of the programme cost: their accounts are not in the programme within the data, or they are "
            f"dated outside {lo} to {hi}.",
            DataWarning,
            stacklevel=2,
        )
    cp = cp[keep]
    cost = float(cp["amount"].sum())
    if not cost > 0:
        raise ParameterError(f"{fn}: the programme cost is {cost:,.2f}; an ROI needs a positive cost.")
    N = est.n
    inc = est.effect * N
    inc_se = est.se * N
    inc_ci = (est.ci[0] * N, est.ci[1] * N)
    roi = (inc - cost) / cost
    roi_ci = ((inc_ci[0] - cost) / cost, (inc_ci[1] - cost) / cost)
    # per account
    ue = est.unit_effects.rename(columns={"unit": "account_id", "effect": "incremental"})
    acc_cost = cp.groupby("account_id")["amount"].sum()
    ue["cost"] = ue["account_id"].map(acc_cost).fillna(0.0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ue["roi"] = np.where(ue["cost"] > 0, (ue["incremental"] - ue["cost"]) / ue["cost"], np.nan)
    per_account = ue[["account_id", "cohort", "periods", "observed", "counterfactual", "incremental", "cost", "roi"]]
    # payback
    table, payback, payback_ci = _payback(est, p, cp, alpha=alpha, n_boot=int(n_boot), seed=seed)
    return RoiResult(
        uplift=est,
        treated_periods=int(N),
        incremental_margin=float(inc),
        incremental_se=float(inc_se),
        incremental_ci=inc_ci,
        programme_cost=cost,
        roi=float(roi),
        roi_se=float(inc_se / cost),
        roi_ci=roi_ci,
        payback=payback,
        payback_ci=payback_ci,
        per_account=per_account.reset_index(drop=True),
        payback_table=table,
        outcome=str(outcome),
        cost_kind=cost_kind,
        freq=_periods.check_freq(freq),
        alpha=alpha,
        panel=p,
    )


def _first_payback(cum: np.ndarray) -> np.ndarray:
    """Periods until the cumulative net reaches 0 for good (event time + 1); inf if it ends below 0. Rows: draws."""
    below = cum < 0
    # last period below zero; payback is the period after it
    last_below = below.shape[-1] - 1 - np.argmax(below[..., ::-1], axis=-1)
    out = np.where(below.any(axis=-1), last_below + 2, 1).astype("float64")
    return np.where(below[..., -1], np.inf, out)


def _payback(est: StaggeredResult, p: pd.DataFrame, cp: pd.DataFrame, *, alpha, n_boot, seed):
    et = est.event_time
    post = et[(et["event_time"] >= 0) & (et["n_units"] >= max(2, 0.25 * et["n_units"].max()))]
    # contiguous event times from 0
    e = post["event_time"].to_numpy()
    k = int(np.argmax(np.diff(np.r_[e, e[-1] + 2]) != 1)) + 1 if len(e) and e[0] == 0 else 0
    post = post.iloc[:k]
    e = post["event_time"].to_numpy()
    units = set(est.unit_effects["unit"])
    pt = p[p["post"] & p["account_id"].isin(units)]
    present = pt.groupby("event_time")["account_id"].size()
    cost_by = (
        cp[cp["account_id"].isin(units)]
        .merge(p[["account_id", "period", "event_time"]], on=["account_id", "period"])
        .groupby("event_time")["amount"]
        .sum()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        cost_e = (cost_by.reindex(e).fillna(0.0) / present.reindex(e)).fillna(0.0).to_numpy(dtype="float64")
    eff = post["estimate"].to_numpy()
    net = eff - cost_e
    cum = np.cumsum(net)
    payback = float(_first_payback(cum[None, :])[0]) if len(e) else math.inf
    cols = [int(np.nonzero(est._event_index == x)[0][0]) for x in e]
    if n_boot and len(e):
        rng = np.random.default_rng(seed)
        Phi = est._phi_event[:, cols]
        xi = rng.standard_normal((n_boot, Phi.shape[0]))
        draws = np.cumsum(net[None, :] + xi @ Phi, axis=1)
        pb = _first_payback(draws)
        ci = (float(np.quantile(pb, alpha / 2, method="lower")), float(np.quantile(pb, 1 - alpha / 2, method="higher")))
        band = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
    else:
        ci = (math.nan, math.nan)
        band = np.full((2, len(e)), np.nan)
    table = pd.DataFrame(
        {
            "event_time": e.astype("int64"),
            "effect": eff,
            "cost": cost_e,
            "cum_effect": np.cumsum(eff),
            "cum_cost": np.cumsum(cost_e),
            "cum_net": cum,
            "cum_net_lower": band[0],
            "cum_net_upper": band[1],
        }
    )
    return table, payback, ci


def what_if(
    roi: RoiResult, *, retention_gain=0.0, uplift=None, programme_cost=None, discount=0.10, horizon_years=5
) -> pd.DataFrame:
    """What margin, CLV and ROI become when retention, uplift or cost change.

    Retention is the lever: a few points of yearly retention compound over an
    account's lifetime, so CLV moves far more than the retention rate does.

    Parameters
    ----------
    roi : RoiResult
        The baseline (:func:`programme_roi`): its panel gives the key
        accounts' yearly retention and margin, its estimate the uplift.
    retention_gain : float or sequence of float
        Added to the yearly retention, in points as a fraction (0.05 = five
        points: 85% to 90%). One row per value.
    uplift : float, optional
        Uplift per treated period to assume instead of the estimate.
    programme_cost : float, optional
        Programme cost to assume instead of the booked one.
    discount : float
        Yearly discount rate of CLV and of the horizon margin.
    horizon_years : int
        Years of the horizon margin.

    Returns
    -------
    DataFrame
        One row per ``retention_gain``: ``retention_gain``,
        ``annual_retention`` (baseline + gain, at most 0.99),
        ``clv_per_account`` (:func:`kamtools.kpi.revenue.simple_clv` of the
        yearly margin per key account), ``clv_change`` (relative to the
        baseline retention), ``margin_horizon`` (expected discounted margin of
        today's key accounts over the next ``horizon_years``),
        ``margin_horizon_change``, ``uplift_per_period``,
        ``incremental_margin``, ``programme_cost``, ``roi``.

    Notes
    -----
    Baseline yearly retention: the share of key accounts that are customers
    in a period and still are one year later, over every period with a year
    after it in the data. Yearly margin per key account: the mean outcome per
    key account-period over the last year, times the periods in a year.
    Checked against a hand computation on the sample in the tests.

    Examples
    --------
    >>> import kamtools as kt
    >>> r = kt.roi.programme_roi(kt.sample.load(), n_boot=0)
    >>> w = kt.roi.what_if(r, retention_gain=[0.0, 0.05])
    >>> bool(w["clv_change"].iloc[1] > 5 * 0.05)  # CLV moves more than five times the retention points
    True
    """
    from kamtools.kpi.revenue import simple_clv

    fn = "what_if"
    if not isinstance(roi, RoiResult):
        raise ParameterError(f"{fn}: pass the result of kt.roi.programme_roi(); got {type(roi).__name__}.")
    gains = np.atleast_1d(np.asarray(retention_gain, dtype="float64"))
    if not np.isfinite(gains).all():
        raise ParameterError(f"{fn}: retention_gain={retention_gain!r}; pass numbers such as 0.05 (five points).")
    if not discount >= 0:
        raise ParameterError(f"{fn}: discount={discount!r}; a discount rate is 0 or more, e.g. 0.1.")
    if isinstance(horizon_years, bool) or not isinstance(horizon_years, int | np.integer) or horizon_years < 1:
        raise ParameterError(f"{fn}: horizon_years={horizon_years!r}; pass a whole number of years, 1 or more.")
    p = roi.panel
    per_year = _PER_YEAR[roi.freq]
    key = p[p["treated"]]
    codes = pd.PeriodIndex(key["period"]).asi8
    first, last = codes.min(), codes.max()
    ids, ucode = np.unique(key["account_id"].to_numpy(), return_inverse=True)
    present = np.zeros((len(ids), last - first + 1), dtype=bool)
    present[ucode, codes - first] = True
    if present.shape[1] <= per_year:
        raise ParameterError(
            f"{fn}: the data span {present.shape[1]} periods; yearly retention needs more than a year."
        )
    now, later = present[:, :-per_year], present[:, per_year:]
    base_r = float((now & later).sum() / now.sum())
    recent = key[codes > last - per_year]
    margin = float(recent[roi.outcome].mean() * per_year)
    n_now = int(present[:, -1].sum())
    up = roi.uplift.effect if uplift is None else float(uplift)
    cost = roi.programme_cost if programme_cost is None else float(programme_cost)
    if not cost > 0:
        raise ParameterError(f"{fn}: programme_cost={programme_cost!r}; pass a positive cost.")
    inc = up * roi.treated_periods

    def clv(r):
        return float(simple_clv(margin, retention=r, discount=discount))

    def horizon(r):
        q = r / (1 + discount)
        return n_now * margin * sum(q**k for k in range(1, horizon_years + 1))

    r0 = min(base_r, 0.99)
    rows = []
    for g in gains:
        r = float(np.clip(base_r + g, 0.0, 0.99))
        rows.append(
            {
                "retention_gain": float(g),
                "annual_retention": r,
                "clv_per_account": clv(r),
                "clv_change": clv(r) / clv(r0) - 1 if clv(r0) else math.nan,
                "margin_horizon": horizon(r),
                "margin_horizon_change": horizon(r) / horizon(r0) - 1 if horizon(r0) else math.nan,
                "uplift_per_period": up,
                "incremental_margin": inc,
                "programme_cost": cost,
                "roi": (inc - cost) / cost,
            }
        )
    return pd.DataFrame(rows)


def plot_trends(panel, *, outcome="gross_margin", unit="account_id", time="period", cohort="cohort", ax=None):
    """Growth of the outcome over time, by entry year, indexed to the pre-programme mean.

    Each line is a group of accounts: those never in the programme, and the
    key accounts by year of entry. A line is a chain index: from one period
    to the next it grows as the group's total outcome over the accounts
    present in both periods does, so accounts arriving or leaving do not
    make it jump. It is scaled so that its mean over the periods before the
    first entry is 100, and drawn on a log scale: parallel lines before entry
    mean parallel growth rates (proportional trends); a line bending up after
    its entry year is the programme's effect. Dots mark each group's first
    entry.

    Parameters
    ----------
    panel : DataFrame
        A :func:`panel` (or a frame with its columns).
    outcome, unit, time, cohort : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import kamtools as kt
    >>> fig = kt.roi.plot_trends(kt.roi.panel(kt.sample.load()))
    >>> type(fig).__name__
    'Figure'
    """
    fn = "plot_trends"
    _check_frame(panel, fn)
    _check_columns(panel, fn, outcome=outcome, unit=unit, time=time, cohort=cohort)
    d = panel[[unit, time, cohort, outcome]]
    coh = d[cohort]
    if not isinstance(coh.dtype, pd.PeriodDtype):
        raise ParameterError(f"{fn}: cohort={cohort!r} must hold periods (as kt.roi.panel gives).")
    group = np.where(coh.isna(), "not in programme", "entered " + coh.dt.year.astype("Int64").astype("str"))
    d = d.assign(group=group)
    first_entry = coh.min()
    if pd.isna(first_entry):
        raise ParameterError(f"{fn}: no treated accounts in the panel: nothing to compare.")
    wide = d.pivot_table(index=unit, columns=time, values=outcome, aggfunc="sum")
    grp = d.groupby(unit)["group"].first().reindex(wide.index)
    Y = wide.to_numpy(dtype="float64")
    both = ~np.isnan(Y[:, 1:]) & ~np.isnan(Y[:, :-1])
    chains = {}
    for g in pd.unique(grp):
        m = (grp == g).to_numpy()[:, None] & both
        with np.errstate(divide="ignore", invalid="ignore"):
            growth = np.where(m, Y[:, 1:], 0).sum(0) / np.where(m, Y[:, :-1], 0).sum(0)
        chains[g] = np.r_[1.0, np.cumprod(np.where(np.isfinite(growth) & (growth > 0), growth, 1.0))]
    mean = pd.DataFrame(chains, index=wide.columns)
    base = mean[mean.index < first_entry].mean()
    idx = 100 * mean / base
    idx = idx[sorted(idx.columns, key=lambda c: (c == "not in programme", c))]
    fig, ax = _axes(ax, (8, 4.5))
    x = mean.index.to_timestamp()
    for g in idx.columns:
        style = {"color": "black", "lw": 2} if g == "not in programme" else {"lw": 1.3}
        line = ax.plot(x, idx[g].to_numpy(), label=g, **style)[0]
        if g != "not in programme":
            fe = coh[group == g].min()
            ax.plot([fe.to_timestamp()], [idx.loc[fe, g]], "o", color=line.get_color())
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    lo, hi = np.nanmin(idx.to_numpy()), np.nanmax(idx.to_numpy())
    ax.set_yticks(
        [v for v in (50, 60, 70, 80, 90, 100, 110, 125, 150, 175, 200, 250, 300, 400) if lo * 0.9 <= v <= hi * 1.1]
    )
    ax.set_ylabel(f"{outcome}, chain index (pre-programme mean = 100)")
    ax.set_title(f"Growth of {outcome} by year of KAM entry")
    ax.legend(fontsize="small", frameon=False, ncol=2)
    return fig
