"""Retention: how long accounts stay, when they are lost, and what that costs.

The module follows one path from data to decisions:

- :func:`durations` turns a data set into one row per account (or contract)
  with a duration and an event flag, right-censoring made explicit;
  :func:`features` measures what is known about each account at a date
  (NPS, engagement, executive sponsorship, tickets, tenure, revenue trend);
  :func:`episodes` combines both into counting-process (start-stop) rows whose
  covariates are measured before each episode, for a Cox model without
  look-ahead bias.
- :func:`kaplan_meier` (statsmodels ``SurvfuncRight``, log-rank test with
  ``survdiff``) and :func:`cox` (statsmodels ``PHReg``) are the survival
  models; they return fitted :class:`KaplanMeier` and :class:`Cox` objects.
- :func:`churn_risk` fits a logistic model of loss within a horizon on
  features known at a date, with a time-split holdout (AUC, Brier score,
  calibration) and revenue at risk.
- :func:`cohorts`, :func:`revenue_retention` (NRR and GRR, through the KPI
  catalogue) and :func:`revenue_bridge` describe revenue retention.

Plots are methods (:meth:`KaplanMeier.plot`, :meth:`Cox.plot`,
:meth:`ChurnRisk.plot_calibration`) or functions (:func:`plot_cohorts`,
:func:`plot_bridge`); each returns a matplotlib Figure made without pyplot.
"""

from __future__ import annotations

import html
import itertools
import warnings

import numpy as np
import pandas as pd

from kamtools import periods as _periods
from kamtools.exceptions import DataWarning, ParameterError

__all__ = [
    "FEATURES",
    "RISK_FEATURES",
    "ChurnRisk",
    "Cox",
    "KaplanMeier",
    "auc",
    "churn_risk",
    "cohorts",
    "cox",
    "durations",
    "episodes",
    "features",
    "kaplan_meier",
    "plot_bridge",
    "plot_cohorts",
    "revenue_bridge",
    "revenue_retention",
]

_DAY = pd.Timedelta(days=1)
_MONTH_DAYS = 365.25 / 12

#: The columns :func:`features` returns besides ``account_id``, with their meaning.
FEATURES = {
    "is_key_account": "the account is a key account (accounts table)",
    "tenure_months": "months from the first purchase to as_of",
    "nps": "mean NPS answer (0-10) of the surveys in the window; missing without a survey",
    "n_surveys": "surveys with an NPS answer in the window",
    "interactions_per_month": "interactions other than executive meetings in the window, per month as a customer",
    "engagement": "log((interactions + 0.5) / months as a customer in the window): engagement on a log scale",
    "exec_meetings_per_month": "executive_meeting interactions in the window, per month as a customer",
    "exec_sponsor": "at least one executive_meeting in the window (executive sponsorship)",
    "tickets_per_month": "tickets opened in the window, per month as a customer",
    "revenue_12m": "revenue in the 365 days up to as_of (the annual revenue)",
    "revenue_trend": "log(revenue of the last 182 days / revenue of the 182 days before); missing unless the "
    "account was a customer for the whole year and both are positive",
    "days_since_purchase": "days from the last purchase to as_of",
}


# --------------------------------------------------------------------------- durations


def durations(
    data,
    *,
    unit: str = "account",
    churn: str = "inactivity",
    inactivity_days: int = 365,
    as_of=None,
    _cut: bool = True,
) -> pd.DataFrame:
    """Duration and event per account or per contract.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    unit : {"account", "contract"}
        One row per account, or per contract term.
    churn : {"inactivity", "contract"}
        When an account counts as lost (``unit="account"``):

        - ``"inactivity"``: its last purchase was more than
          ``inactivity_days`` before ``as_of``; it was lost on the day of that
          last purchase. An account that bought more recently is censored at
          ``as_of``.
        - ``"contract"``: its last contract term ended on or before ``as_of``
          with outcome ``lapsed``; it was lost on that end date. Otherwise it
          is censored at ``as_of``.

        For ``unit="contract"`` a term ends in the event when its outcome is
        ``lapsed``; renewed terms are censored at their end, active ones at
        ``as_of``.
    inactivity_days : int
        Days without a purchase after which an account counts as lost.
    as_of : date, optional
        The date the data are seen from. Default: the last transaction.

    Returns
    -------
    DataFrame
        ``account_id`` (and ``contract_id`` for contracts), ``start`` (first
        purchase, or the first contract's start with ``churn="contract"``;
        the term's start for contracts), ``end`` (the event date, or the
        censoring date), ``duration`` in days, ``event`` (True when lost),
        ``is_key_account``.

    Notes
    -----
    Accounts that were customers before the data begin enter at their first
    recorded purchase, so their durations are shorter than their true
    tenure (left truncation); a survival model with a constant hazard is not
    biased by it.

    With ``churn="inactivity"`` a loss becomes visible only
    ``inactivity_days`` after the last purchase, so follow-up ends at
    ``as_of - inactivity_days``: accounts still buying after that date are
    censored there (not at ``as_of``, which would overstate survival), and
    accounts whose first purchase is later are left out with a
    :class:`~kamtools.DataWarning`. :func:`episodes` and :func:`churn_risk`
    stop at the same date.

    Examples
    --------
    >>> import kamtools as kt
    >>> d = kt.retention.durations(kt.sample.load())
    >>> d.columns.tolist()
    ['account_id', 'start', 'end', 'duration', 'event', 'is_key_account']
    """
    from kamtools.io import load

    data = load(data)
    if unit not in ("account", "contract"):
        raise ParameterError(f"unit={unit!r}; use 'account' or 'contract'.")
    if churn not in ("inactivity", "contract"):
        raise ParameterError(f"churn={churn!r}; use 'inactivity' or 'contract'.")
    if inactivity_days <= 0:
        raise ParameterError(f"inactivity_days={inactivity_days!r} must be a positive number of days.")
    tx = data.transactions
    as_of = _periods.as_of_date(as_of, tx["date"].max())
    key = data.accounts.set_index("account_id")["is_key_account"].fillna(False).astype(bool)
    if unit == "contract" or churn == "contract":
        if data.contracts is None or "end" not in data.contracts.columns or "outcome" not in data.contracts.columns:
            raise ParameterError(
                "Contract-based durations need the contracts table with its end and outcome columns. "
                "Use churn='inactivity' to measure churn from transactions instead."
            )
        con = data.contracts[data.contracts["start"] <= as_of]
    if unit == "contract":
        ended = con["end"].notna() & (con["end"] <= as_of)
        event = ended & con["outcome"].eq("lapsed")
        end = con["end"].where(ended, as_of)
        out = pd.DataFrame({
            "contract_id": con["contract_id"], "account_id": con["account_id"], "start": con["start"],
            "end": end, "event": event.fillna(False).astype(bool),
        })
    elif churn == "inactivity":
        # A loss shows only inactivity_days after the last purchase, so follow-up ends at `horizon`:
        # losses are dated before it, and everyone else is known to be a customer up to it.
        # (episodes() and churn_risk() cut follow-up themselves and ask for the uncut rows.)
        horizon = as_of - pd.Timedelta(days=inactivity_days) if _cut else as_of
        seen = tx[tx["date"] <= as_of].groupby("account_id")["date"].agg(["min", "max"])
        event = seen["max"] < as_of - pd.Timedelta(days=inactivity_days)
        late = seen["min"] >= horizon
        if late.any():
            warnings.warn(
                f"durations: {int(late.sum())} account(s) first bought on or after {horizon:%Y-%m-%d} "
                f"(as_of - inactivity_days); they have no follow-up yet and are left out.",
                DataWarning, stacklevel=2,
            )
            seen, event = seen[~late], event[~late]
        out = pd.DataFrame({
            "account_id": seen.index, "start": seen["min"].to_numpy(),
            "end": seen["max"].where(event, horizon).to_numpy(), "event": event.to_numpy(),
        })
    else:
        last = con.sort_values(["account_id", "start"]).groupby("account_id").agg(
            start=("start", "min"), last_end=("end", "last"), outcome=("outcome", "last")
        )
        event = last["last_end"].notna() & (last["last_end"] <= as_of) & last["outcome"].eq("lapsed")
        out = pd.DataFrame({
            "account_id": last.index, "start": last["start"].to_numpy(),
            "end": last["last_end"].where(event, as_of).to_numpy(), "event": event.fillna(False).to_numpy(),
        })
    out["duration"] = (out["end"] - out["start"]).dt.days.astype("float64")
    out["is_key_account"] = out["account_id"].map(key).fillna(False).astype(bool)
    cols = (["contract_id"] if unit == "contract" else []) + ["account_id", "start", "end", "duration", "event",
                                                               "is_key_account"]
    return out[cols].reset_index(drop=True)


def _loss_lag(churn: str, inactivity_days: int) -> pd.Timedelta:
    """How long after a loss it becomes visible in the data."""
    return pd.Timedelta(days=inactivity_days) if churn == "inactivity" else pd.Timedelta(0)


def _timedelta(value, name: str) -> pd.Timedelta | None:
    if value is None:
        return None
    try:
        td = pd.Timedelta(value)
    except (ValueError, TypeError) as err:
        raise ParameterError(f"{name}={value!r} is not a duration; write it like '365D'.") from err
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise ParameterError(f"{name}={value!r} must be a positive duration, like '365D'.")
    return td


# --------------------------------------------------------------------------- features


def features(data, *, as_of, window=None) -> pd.DataFrame:
    """What is known about each account at a date: the covariates of retention models.

    Only rows dated on or before ``as_of`` are used, so the features can be
    joined to what happens after ``as_of`` without look-ahead bias.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    as_of : date
        The day the features are measured at (inclusive).
    window : str, optional
        How far back surveys, interactions and tickets count, e.g. ``"365D"``.
        Default: the whole history up to ``as_of``. Rates are per month of
        the window in which the account was a customer (from its first
        purchase), at least one month.

    Returns
    -------
    DataFrame
        One row per account with a purchase on or before ``as_of``:
        ``account_id`` and the columns of :data:`FEATURES` (their meaning is
        there). A feature whose table is absent is missing for every account.

    Examples
    --------
    >>> import kamtools as kt
    >>> f = kt.retention.features(kt.sample.load(), as_of="2023-12-31", window="365D")
    >>> f.columns.tolist()[:5]
    ['account_id', 'is_key_account', 'tenure_months', 'nps', 'n_surveys']
    >>> len(f), bool(f["exec_sponsor"].any())
    (184, True)
    """
    from kamtools.io import load

    data = load(data)
    tx = data.transactions
    as_of = _periods.as_of_date(as_of, tx["date"].max())
    win = _timedelta(window, "window")
    upto = as_of + _DAY  # exclusive bound: rows dated before it are known
    tx = tx[tx["date"] < upto]
    span = tx.groupby("account_id", observed=True)["date"].agg(first="min", last="max")
    out = pd.DataFrame(index=span.index)
    out.index.name = "account_id"
    key = data.accounts.set_index("account_id")["is_key_account"].fillna(False).astype(bool)
    out["is_key_account"] = out.index.map(key).fillna(False).astype(bool)
    out["tenure_months"] = (as_of - span["first"]).dt.days / _MONTH_DAYS
    lo = span["first"] if win is None else span["first"].clip(lower=upto - win)
    months = ((upto - lo).dt.days / _MONTH_DAYS).clip(lower=1.0)

    def window_rows(table, date_col):
        if table is None:
            return None
        t = table[(table[date_col] < upto).fillna(False).to_numpy()]
        t = t[t["account_id"].isin(out.index).to_numpy()]
        start = t["account_id"].map(lo)
        return t[(t[date_col] >= start).fillna(False).to_numpy()]

    s = window_rows(data.surveys, "date")
    if s is not None and "nps" in s.columns:
        s = s[s["nps"].notna().to_numpy()]
        g = s.groupby("account_id", observed=True)["nps"]
        out["nps"] = g.mean().reindex(out.index).astype("float64")
        out["n_surveys"] = g.size().reindex(out.index).fillna(0).astype("int64")
    else:
        out["nps"], out["n_surveys"] = np.nan, 0
    it = window_rows(data.interactions, "date")
    if it is not None:
        is_exec = it["kind"].eq("executive_meeting").fillna(False).to_numpy() if "kind" in it.columns else False
        n_int = it[~is_exec].groupby("account_id", observed=True).size().reindex(out.index).fillna(0)
        n_exec = it[is_exec].groupby("account_id", observed=True).size().reindex(out.index).fillna(0)
        out["interactions_per_month"] = n_int / months
        out["engagement"] = np.log((n_int + 0.5) / months)
        out["exec_meetings_per_month"] = n_exec / months
        out["exec_sponsor"] = n_exec > 0
    else:
        out["interactions_per_month"] = out["engagement"] = out["exec_meetings_per_month"] = np.nan
        out["exec_sponsor"] = pd.array([pd.NA] * len(out), dtype="boolean")
    tk = window_rows(data.tickets, "opened")
    out["tickets_per_month"] = (
        np.nan if tk is None else tk.groupby("account_id", observed=True).size().reindex(out.index).fillna(0) / months
    )
    year, half = pd.Timedelta(days=365), pd.Timedelta(days=182)
    rev = tx[["account_id", "date", "revenue"]]

    def revenue(lo_, hi_):
        r = rev[(rev["date"] >= lo_) & (rev["date"] < hi_)].groupby("account_id", observed=True)["revenue"].sum()
        return r.reindex(out.index).fillna(0.0)

    out["revenue_12m"] = revenue(upto - year, upto)
    r1, r0 = revenue(upto - half, upto), revenue(upto - 2 * half, upto - half)
    full = (span["first"] < upto - 2 * half + 31 * _DAY) & (r0 > 0) & (r1 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["revenue_trend"] = np.log(r1 / r0).where(full)
    out["days_since_purchase"] = (as_of - span["last"]).dt.days.astype("int64")
    return out[list(FEATURES)].reset_index()


def episodes(
    data,
    *,
    freq: str = "Q",
    churn: str = "inactivity",
    inactivity_days: int = 365,
    as_of=None,
    min_history="180D",
    window=None,
) -> pd.DataFrame:
    """Counting-process (start-stop) rows with covariates measured before each episode.

    Each account's time since its start (as in :func:`durations`) is cut at
    calendar period starts. At each cut the account's :func:`features` are
    measured from the data up to the day before, and hold for the episode
    that follows; the last episode ends in the loss or is censored. Fit a Cox
    model on them with ``cox(ep, duration="duration", event="event",
    entry="entry", covariates=[...])``.

    This is how the covariates of a survival model avoid look-ahead bias:
    a covariate averaged over an account's whole life uses what happened
    after the times at which it is compared with other accounts, and accounts
    lost early have less information. Here every comparison at time *t* uses
    only what was known at the period start before *t*.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    freq : {"M", "Q", "Y"}
        How often the covariates are updated.
    churn, inactivity_days, as_of
        As in :func:`durations`. Follow-up ends at ``as_of -
        inactivity_days`` for ``churn="inactivity"`` (later losses are not
        visible yet), at ``as_of`` otherwise.
    min_history : str
        An account enters the risk set at the first period start at least
        this long after its start, so its features rest on some history
        (delayed entry; a loss before that is not counted).
    window : str, optional
        Passed to :func:`features`. Default: all history up to each cut.

    Returns
    -------
    DataFrame
        ``account_id``, ``at`` (the period start the features hold from),
        ``entry`` and ``duration`` (days since the account's start at the
        episode's start and end), ``event`` (True if the account is lost at
        the episode's end), then the columns of :data:`FEATURES`.

    Examples
    --------
    >>> import kamtools as kt
    >>> ep = kt.retention.episodes(kt.sample.load(), inactivity_days=90)
    >>> ep.columns.tolist()[:6]
    ['account_id', 'at', 'entry', 'duration', 'event', 'is_key_account']
    >>> bool((ep["entry"] < ep["duration"]).all()), int(ep["event"].sum())
    (True, 54)
    """
    from kamtools.io import load

    data = load(data)
    f = _periods.FREQS[_periods.check_freq(freq)]
    hist = _timedelta(min_history, "min_history")
    d = durations(data, churn=churn, inactivity_days=inactivity_days, as_of=as_of, _cut=False)
    as_of = _periods.as_of_date(as_of, data.transactions["date"].max())
    stop_at = as_of - _loss_lag(churn, inactivity_days)
    ev_end = d["end"].where(d["event"] & (d["end"] < stop_at), stop_at).clip(upper=stop_at)
    d = d.assign(event=d["event"] & (d["end"] < stop_at), end=ev_end)
    cuts = pd.period_range(d["start"].min() + hist, stop_at, freq=f).start_time.normalize()
    if len(cuts) == 0:
        raise ParameterError(
            f"No period start falls between the first account's start plus min_history={min_history!r} and "
            f"{stop_at:%Y-%m-%d}, the end of follow-up. Pass a later as_of, a shorter min_history or freq='M'."
        )
    rows = []
    for i, at in enumerate(cuts):
        nxt = cuts[i + 1] if i + 1 < len(cuts) else stop_at
        s = d[(d["start"] + hist <= at) & (d["end"] > at)]
        if s.empty or nxt <= at:
            continue
        end = s["end"].clip(upper=nxt)
        ep = pd.DataFrame({
            "account_id": s["account_id"].to_numpy(), "at": at,
            "entry": (at - s["start"]).dt.days.to_numpy(dtype="float64"),
            "duration": (end - s["start"]).dt.days.to_numpy(dtype="float64"),
            "event": (s["event"] & (s["end"] <= nxt)).to_numpy(),
        })
        fx = features(data, as_of=at - _DAY, window=window)
        rows.append(ep.merge(fx, on="account_id", how="left"))
    if not rows:
        raise ParameterError("No account is at risk at any period start; pass a later as_of or shorter min_history.")
    out = pd.concat(rows, ignore_index=True).sort_values(["account_id", "entry"], kind="stable")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- input checks


def _columns(df, names: dict) -> None:
    """Check that every named column exists; ``names`` maps argument name to column(s)."""
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"Pass a DataFrame as the first argument, not {type(df).__name__}.")
    for arg, cols in names.items():
        for c in [cols] if isinstance(cols, str) else cols:
            if c not in df.columns:
                raise ParameterError(
                    f"{arg}={c!r} is not a column of the DataFrame. Columns: {', '.join(map(str, df.columns))}."
                )


def _survival_frame(df, *, duration, event, entry=None, extra=(), who="kaplan_meier") -> pd.DataFrame:
    """Typed copy with the survival columns checked; rows with missing values dropped with a warning."""
    names = {"duration": duration, "event": event}
    if entry is not None:
        names["entry"] = entry
    _columns(df, names)
    cols = [duration, event] + ([entry] if entry is not None else []) + [c for c in extra if c is not None]
    cols = list(dict.fromkeys(cols))
    x = df[cols].copy()
    bad = x.isna().any(axis=1)
    if bad.all():
        raise ParameterError(f"{who}: every row has a missing value in {cols}; nothing to fit.")
    if bad.any():
        per = x.isna().sum()
        detail = ", ".join(f"{c}: {n}" for c, n in per.items() if n)
        warnings.warn(
            f"{who}: {int(bad.sum())} of {len(x)} rows left out for missing values ({detail}).",
            DataWarning, stacklevel=3,
        )
        x = x[~bad.to_numpy()]
    for c, arg in ((duration, "duration"), (entry, "entry")):
        if c is None:
            continue
        try:
            x[c] = pd.to_numeric(x[c]).astype("float64")
        except (ValueError, TypeError) as err:
            raise ParameterError(f"{arg}={c!r} must be numeric (e.g. days); it holds {x[c].dtype} values.") from err
        if not np.isfinite(x[c]).all():
            raise ParameterError(f"{arg}={c!r} holds infinite values; pass finite numbers.")
    ev = x[event]
    if pd.api.types.is_bool_dtype(ev):
        x[event] = ev.astype(bool)
    else:
        num = pd.to_numeric(ev, errors="coerce")
        if num.isna().any() or not num.isin([0, 1]).all():
            raise ParameterError(f"event={event!r} must be True/False or 0/1; found {sorted(pd.unique(ev))[:5]}.")
        x[event] = num.astype(bool)
    low = x[duration] <= 0 if entry is None else x[duration] <= x[entry]
    if low.any():
        rows = ", ".join(map(str, x.index[low.to_numpy()][:5]))
        what = "<= 0" if entry is None else f"<= {entry!r}"
        raise ParameterError(
            f"{who}: {int(low.sum())} row(s) have {duration!r} {what} (rows {rows}). A duration must be "
            "positive: durations() gives 0 for an account lost on the day of its first purchase; drop those rows "
            "or add half a day to every duration."
        )
    if entry is not None and (x[entry] < 0).any():
        raise ParameterError(f"entry={entry!r} has negative values; entry times are >= 0.")
    return x


def _z(alpha: float) -> float:
    from scipy.stats import norm

    if not 0 < alpha < 1:
        raise ParameterError(f"alpha={alpha!r} must be between 0 and 1, e.g. 0.05 for 95% intervals.")
    return float(norm.ppf(1 - alpha / 2))


def _html(title: str, body: str, table: pd.DataFrame) -> str:
    return (f"<p><b>{html.escape(title)}</b>: {html.escape(body)}</p>"
            + table.to_html(float_format=lambda v: f"{v:.4g}"))


# --------------------------------------------------------------------------- Kaplan-Meier


class KaplanMeier:
    """Kaplan-Meier survival curves, with a log-rank test between groups.

    Parameters
    ----------
    alpha : float
        1 - confidence level of the bands and of the median's interval.
    transform : {"log-log", "log", "linear"}
        Scale on which the pointwise band is symmetric: ``"log-log"``
        (Kalbfleisch-Prentice, as lifelines), ``"log"`` (R's default), or
        ``"linear"`` (plain Greenwood, clipped to [0, 1]).

    Attributes
    ----------
    table_ : DataFrame
        The survival table, tidy: ``group`` (only with groups), ``time`` (0
        and every observed time), ``at_risk`` (durations >= time),
        ``events``, ``censored``, ``survival``, ``se`` (Greenwood),
        ``lower``, ``upper``.
    median_ : DataFrame
        Per group (index ``group``, or ``"all"``): ``n``, ``events``,
        ``median`` (first time the survival falls below 0.5; missing if it
        never does), ``median_lower``, ``median_upper`` (statsmodels'
        ``quantile_ci`` on the complementary log-log scale; missing or
        infinite where the data do not bound it).
    logrank_ : DataFrame or None
        With groups: one row with ``statistic`` (chi-square), ``df`` and
        ``p``.
    summary : DataFrame
        ``median_`` (the per-group summary).

    Notes
    -----
    Survival and its Greenwood standard error come from statsmodels
    ``SurvfuncRight``; the log-rank test from statsmodels ``survdiff``; the
    table's counts and bands are computed here. Checked against a hand
    computation of the product-limit estimator and Greenwood's formula
    (tests/test_retention.py).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 2, 3, 4, 5], "lost": [1, 1, 0, 1, 0, 1]})
    >>> km = KaplanMeier().fit(df, duration="t", event="lost")
    >>> km.table_[["time", "at_risk", "events", "survival"]].round(4)
       time  at_risk  events  survival
    0   0.0        6       0    1.0000
    1   1.0        6       1    0.8333
    2   2.0        5       1    0.6667
    3   3.0        3       1    0.4444
    4   4.0        2       0    0.4444
    5   5.0        1       1    0.0000
    >>> float(km.median_.loc["all", "median"])
    3.0
    """

    def __init__(self, *, alpha: float = 0.05, transform: str = "log-log"):
        if transform not in ("log-log", "log", "linear"):
            raise ParameterError(f"transform={transform!r}; use 'log-log', 'log' or 'linear'.")
        _z(alpha)
        self.alpha = alpha
        self.transform = transform

    def fit(self, df: pd.DataFrame, *, duration: str, event: str, group: str | None = None) -> KaplanMeier:
        """Estimate the curves; ``df`` has one row per subject. Returns ``self``."""
        from statsmodels.duration.survfunc import SurvfuncRight, survdiff

        if group is not None:
            _columns(df, {"group": group})
        x = _survival_frame(df, duration=duration, event=event, extra=(group,))
        if not x[event].any():
            raise ParameterError(
                f"kaplan_meier: no events in {event!r} (all {len(x)} rows censored); the survival stays at 1. "
                "Check the event column, or use a later as_of."
            )
        z = _z(self.alpha)
        self.duration, self.event, self.group = duration, event, group
        keys = ["all"] if group is None else sorted(pd.unique(x[group]), key=str)
        tables, medians = [], []
        for k in keys:
            part = x if group is None else x[x[group] == k]
            t, e = part[duration].to_numpy(), part[event].to_numpy()
            counts = (pd.DataFrame({"time": t, "events": e.astype(int), "censored": (~e).astype(int)})
                      .groupby("time").sum().reset_index())
            counts["at_risk"] = len(t) - np.concatenate([[0], np.cumsum((counts["events"] + counts["censored"])
                                                                       .to_numpy())[:-1]])
            tab = pd.concat([pd.DataFrame({"time": [0.0], "events": [0], "censored": [0], "at_risk": [len(t)]}),
                             counts], ignore_index=True)
            if e.any():
                sf = SurvfuncRight(t, e.astype(float))
                at = pd.Series(sf.surv_prob, index=sf.surv_times)
                se = pd.Series(sf.surv_prob_se, index=sf.surv_times)
                tab["survival"] = at.reindex(tab["time"]).ffill().fillna(1.0).to_numpy()
                tab["se"] = se.reindex(tab["time"]).ffill().fillna(0.0).to_numpy()
                med = sf.quantile(0.5)
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    lo, hi = sf.quantile_ci(0.5, alpha=self.alpha, method="cloglog")
            else:
                tab["survival"], tab["se"] = 1.0, 0.0
                med, lo, hi = np.nan, np.nan, np.nan
            tab["lower"], tab["upper"] = self._band(tab["survival"].to_numpy(), tab["se"].to_numpy(), z)
            if group is not None:
                tab.insert(0, "group", k)
            tables.append(tab)
            medians.append({"group": k, "n": len(t), "events": int(e.sum()), "median": med,
                            "median_lower": lo, "median_upper": hi})
        cols = (["group"] if group is not None else []) + ["time", "at_risk", "events", "censored", "survival",
                                                           "se", "lower", "upper"]
        table = pd.concat(tables, ignore_index=True)[cols]
        for c in ("at_risk", "events", "censored"):
            table[c] = table[c].astype("int64")
        self.table_ = table
        self.median_ = pd.DataFrame(medians).set_index("group").astype(
            {"median": "float64", "median_lower": "float64", "median_upper": "float64"})
        self.logrank_ = None
        if group is not None:
            if len(keys) < 2:
                raise ParameterError(f"group={group!r} has a single value ({keys[0]!r}); a log-rank test needs two "
                                     "or more groups. Leave group=None.")
            codes = pd.Categorical(x[group].astype(str)).codes
            stat, p = survdiff(x[duration].to_numpy(), x[event].to_numpy().astype(float), codes)
            self.logrank_ = pd.DataFrame({"statistic": [float(stat)], "df": [len(keys) - 1], "p": [float(p)]})
        return self

    def _band(self, s, se, z):
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.transform == "linear":
                lo, hi = s - z * se, s + z * se
            elif self.transform == "log":
                w = np.exp(z * se / s)
                lo, hi = s / w, s * w
            else:
                ls = np.log(s)
                w = z * se / (s * np.abs(ls))
                lo, hi = s ** np.exp(w), s ** np.exp(-w)
        undefined = (se == 0) | (s <= 0) | (s >= 1)
        lo = np.where(undefined, s, lo)
        hi = np.where(undefined, s, hi)
        return np.clip(lo, 0, 1), np.clip(hi, 0, 1)

    @property
    def summary(self) -> pd.DataFrame:
        return self.median_

    def at_risk(self, times) -> pd.DataFrame:
        """Subjects still at risk (duration >= t) at each time, per group: the numbers under the plot.

        Returns
        -------
        DataFrame
            Index: the groups (``"all"`` without groups); columns: the times.
        """
        self._check_fitted()
        t = self.table_
        keys = ["all"] if self.group is None else list(self.median_.index)
        rows = {}
        for k in keys:
            part = t if self.group is None else t[t["group"] == k]
            part = part[part["time"] > 0]
            n0 = int(self.median_.loc[k, "n"])
            leave = (part["events"] + part["censored"]).to_numpy()
            times_k = part["time"].to_numpy()
            rows[k] = [n0 - int(leave[times_k < u].sum()) for u in times]
        return pd.DataFrame(rows, index=list(times)).T

    def _check_fitted(self):
        if not hasattr(self, "table_"):
            raise ParameterError("This KaplanMeier is not fitted yet; call .fit(df, duration=..., event=...) first.")

    def plot(self, *, times=None, xlabel: str = "days", ax=None):
        """Survival curves with their bands, and the numbers at risk under the plot.

        Parameters
        ----------
        times : list of float, optional
            Where the numbers at risk are given. Default: six even steps.
        xlabel : str

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        self._check_fitted()
        keys = ["all"] if self.group is None else list(self.median_.index)
        tmax = float(self.table_["time"].max())
        if times is None:
            times = list(np.linspace(0, tmax, 6).round(0))
        fig = Figure(figsize=(7, 4.2 + 0.25 * len(keys)), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[4, 0.6 + 0.3 * len(keys)])
        colours = ["#1f4e79", "#c0504d", "#4f8f3a", "#8064a2", "#f79646", "#4bacc6"]
        for i, k in enumerate(keys):
            part = self.table_ if self.group is None else self.table_[self.table_["group"] == k]
            c = colours[i % len(colours)]
            label = "all" if self.group is None else f"{self.group}={k}"
            top.step(part["time"], part["survival"], where="post", color=c, label=label)
            top.fill_between(part["time"], part["lower"], part["upper"], step="post", color=c, alpha=0.15,
                             linewidth=0)
            cens = part[part["censored"] > 0]
            top.plot(cens["time"], cens["survival"], "|", color=c, markersize=6)
        top.set_ylim(0, 1.02)
        top.set_ylabel("share still a customer")
        title = "Kaplan-Meier survival"
        if self.logrank_ is not None:
            title += f" (log-rank p = {self.logrank_['p'].iloc[0]:.3g})"
        top.set_title(title)
        top.legend(frameon=False, loc="lower left", fontsize="small")
        top.spines[["top", "right"]].set_visible(False)
        counts = self.at_risk(times)
        for i, k in enumerate(keys):
            for t, n in zip(times, counts.loc[k], strict=True):
                bottom.text(t, -i, f"{n}", ha="center", va="center", fontsize="small",
                            color=colours[i % len(colours)])
        bottom.set_ylim(-len(keys) + 0.5, 0.5)
        bottom.set_yticks(-np.arange(len(keys)), [str(k) for k in keys], fontsize="small")
        bottom.set_xlabel(xlabel)
        bottom.set_title("at risk", fontsize="small", loc="left")
        bottom.tick_params(axis="y", length=0)
        bottom.spines[["top", "right", "left"]].set_visible(False)
        bottom.set_xticks(times)
        return fig

    def __repr__(self) -> str:
        if not hasattr(self, "table_"):
            return f"KaplanMeier(alpha={self.alpha}, transform={self.transform!r}) — not fitted"
        m = self.median_
        parts = [f"{k}: n={r.n}, events={r.events}, median={r.median:g}" for k, r in m.iterrows()]
        lr = "" if self.logrank_ is None else (
            f"; log-rank chi2={self.logrank_['statistic'].iloc[0]:.3f} on {self.logrank_['df'].iloc[0]} df, "
            f"p={self.logrank_['p'].iloc[0]:.4g}")
        return "KaplanMeier(" + "; ".join(parts) + lr + ")"

    def _repr_html_(self) -> str:
        if not hasattr(self, "table_"):
            return f"<p>{html.escape(repr(self))}</p>"
        lr = "" if self.logrank_ is None else (
            f"log-rank chi2 = {self.logrank_['statistic'].iloc[0]:.3f}, p = {self.logrank_['p'].iloc[0]:.4g}")
        return _html("Kaplan-Meier", lr or f"{int(self.median_['n'].sum())} subjects", self.median_)


def kaplan_meier(df: pd.DataFrame, *, duration: str, event: str, group: str | None = None,
                 alpha: float = 0.05, transform: str = "log-log") -> KaplanMeier:
    """Kaplan-Meier survival table, median and (with groups) a log-rank test.

    ``KaplanMeier(alpha=..., transform=...).fit(df, duration=..., event=..., group=...)``;
    see :class:`KaplanMeier` for the attributes.

    Parameters
    ----------
    df : DataFrame
        One row per subject, e.g. :func:`durations` output.
    duration, event : str
        Columns: positive durations; True/1 when the subject was lost.
    group : str, optional
        Column splitting the subjects; adds a log-rank test.
    alpha, transform
        See :class:`KaplanMeier`.

    Returns
    -------
    KaplanMeier

    Raises
    ------
    ParameterError
        For a missing column, durations <= 0, an event column that is not
        True/False, or no event at all.

    Examples
    --------
    >>> import kamtools as kt
    >>> d = kt.retention.durations(kt.sample.load(), inactivity_days=90)
    >>> km = kt.retention.kaplan_meier(d, duration="duration", event="event", group="is_key_account")
    >>> km.table_.columns.tolist()
    ['group', 'time', 'at_risk', 'events', 'censored', 'survival', 'se', 'lower', 'upper']
    >>> bool(km.logrank_["p"].iloc[0] < 0.05)
    True
    """
    return KaplanMeier(alpha=alpha, transform=transform).fit(df, duration=duration, event=event, group=group)


# --------------------------------------------------------------------------- Cox


def _design(x: pd.DataFrame, covariates: list[str], who: str) -> np.ndarray:
    """Float design matrix; clear errors for text, constant and collinear columns."""
    cols = []
    for c in covariates:
        s = x[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            cols.append(s.astype("float64").to_numpy())
        else:
            raise ParameterError(
                f"{who}: covariate {c!r} holds {s.dtype} values, not numbers. Try 1) a 0/1 column per level: "
                f"pd.get_dummies(df, columns=[{c!r}], drop_first=True, dtype=float), then name those columns; "
                "2) dropping it from covariates."
            )
    X = np.column_stack(cols) if cols else np.empty((len(x), 0))
    if not np.isfinite(X).all():
        bad = [c for c, col in zip(covariates, X.T, strict=True) if not np.isfinite(col).all()]
        raise ParameterError(f"{who}: covariate(s) {bad} hold infinite values; replace them with finite numbers.")
    for c, col in zip(covariates, X.T, strict=True):
        if np.ptp(col) == 0:
            raise ParameterError(
                f"{who}: covariate {c!r} is constant (every row is {col[0]:g}), so its effect cannot be estimated. "
                "Try 1) dropping it from covariates; 2) if it varies in the full data, check the filter that "
                "left only one value."
            )
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    for j in range(1, Xs.shape[1]):
        if np.linalg.matrix_rank(Xs[:, : j + 1], tol=1e-8 * len(Xs)) <= j:
            coef, *_ = np.linalg.lstsq(Xs[:, :j], Xs[:, j], rcond=None)
            others = [covariates[i] for i in np.flatnonzero(np.abs(coef) > 1e-6)]
            raise ParameterError(
                f"{who}: covariate {covariates[j]!r} is collinear with {others}: it is a linear combination of "
                "them, so their effects cannot be told apart. Try 1) dropping one of them; 2) for dummy columns, "
                "leaving out one level (drop_first=True)."
            )
    return X


def _concordance(time, event, risk, entry=None, strata=None) -> tuple[float, int]:
    """Harrell's C: share of comparable pairs in which the higher risk is lost first.

    A pair is comparable when one subject is lost at a time at which the other
    is still at risk and not lost at that same time (a subject censored at the
    time of a loss counts as surviving it, as in R's survival package); ties
    in risk count one half. With entry times only subjects at risk at the
    loss time are compared; with strata only within a stratum.
    """
    n = len(time)
    entry = np.zeros(n) if entry is None else entry
    strata = np.zeros(n) if strata is None else strata
    num, den = 0.0, 0
    for i in np.flatnonzero(event):
        t = time[i]
        ok = (entry < t) & ((time > t) | ((time == t) & ~event)) & (strata == strata[i])
        ok[i] = False
        r = risk[ok]
        den += len(r)
        num += (risk[i] > r).sum() + 0.5 * (risk[i] == r).sum()
    return (num / den if den else np.nan), den


class Cox:
    """Cox proportional-hazards regression (statsmodels ``PHReg``).

    Parameters
    ----------
    ties : {"efron", "breslow"}
        How tied loss times are handled.
    alpha : float
        1 - confidence level of the hazard-ratio intervals.
    ph_transform : {"rank", "km", "identity", "log"}
        Function of time that the Schoenfeld residuals are correlated with in
        the proportional-hazards check.

    Attributes
    ----------
    params_ : Series
        Log hazard ratios by covariate.
    summary : DataFrame
        Index ``covariate``; ``coef``, ``se``, ``hazard_ratio``, ``lower``,
        ``upper`` (interval of the hazard ratio), ``z``, ``p``.
    concordance_ : float
        Harrell's C of the linear predictor (0.5: no better than chance).
    ph_test_ : DataFrame
        Index ``covariate``; ``rho`` (correlation of the Schoenfeld residuals
        with the transformed time, over the losses), ``statistic`` (chi-square,
        1 df: (m - 2) rho^2 / (1 - rho^2) from the t test of a correlation
        over m losses), ``p``. A small p means the covariate's effect changes
        with time: stratify on it, or split follow-up time.
    n_, events_ : int
        Rows and losses used.
    loglik_ : float
    model_ : statsmodels PHRegResults

    Notes
    -----
    Estimates and standard errors are statsmodels ``PHReg``'s. Concordance is
    computed here (Harrell's C, tied risks count one half; with entry times,
    pairs are formed within risk sets) and checked against a hand count on a
    tiny data set. The proportional-hazards check correlates the Schoenfeld
    residuals (``PHRegResults.schoenfeld_residuals``) with the rank of the
    loss times, the per-covariate idea behind R's ``cox.zph`` with unscaled
    residuals.

    Examples
    --------
    >>> import kamtools as kt
    >>> d = kt.retention.durations(kt.sample.load(), inactivity_days=90)
    >>> m = kt.retention.Cox().fit(d, duration="duration", event="event", covariates=["is_key_account"])
    >>> m.summary.columns.tolist()
    ['coef', 'se', 'hazard_ratio', 'lower', 'upper', 'z', 'p']
    >>> bool(m.summary.loc["is_key_account", "hazard_ratio"] < 1)
    True
    """

    def __init__(self, *, ties: str = "efron", alpha: float = 0.05, ph_transform: str = "rank"):
        if ties not in ("efron", "breslow"):
            raise ParameterError(f"ties={ties!r}; use 'efron' or 'breslow'.")
        if ph_transform not in ("rank", "km", "identity", "log"):
            raise ParameterError(f"ph_transform={ph_transform!r}; use 'rank', 'km', 'identity' or 'log'.")
        _z(alpha)
        self.ties, self.alpha, self.ph_transform = ties, alpha, ph_transform

    def fit(self, df: pd.DataFrame, *, duration: str, event: str, covariates, entry: str | None = None,
            strata: str | None = None) -> Cox:
        """Fit the model. ``entry`` gives delayed-entry (start-stop) data; returns ``self``."""
        from statsmodels.duration.hazard_regression import PHReg

        covariates = [covariates] if isinstance(covariates, str) else list(covariates)
        if not covariates:
            raise ParameterError("cox: pass at least one covariate, e.g. covariates=['is_key_account'].")
        _columns(df, {"covariates": covariates, **({"strata": strata} if strata else {})})
        x = _survival_frame(df, duration=duration, event=event, entry=entry, extra=(*covariates, strata), who="cox")
        ev = x[event].to_numpy()
        if not ev.any():
            raise ParameterError(f"cox: no events in {event!r} (all {len(x)} rows censored); there is nothing to "
                                 "explain. Check the event column, or use a later as_of.")
        X = _design(x, covariates, "cox")
        for c, col in zip(covariates, X.T, strict=True):
            levels = np.unique(col)
            if len(levels) == 2:
                for v in levels:
                    if not ev[col == v].any():
                        raise ParameterError(
                            f"cox: no events among the {int((col == v).sum())} rows with {c}={v:g}, so its hazard "
                            "ratio is 0 or infinite (monotone likelihood). Try 1) dropping it from covariates; "
                            "2) pooling rare levels; 3) more follow-up (a later as_of)."
                        )
        t = x[duration].to_numpy()
        st = None if strata is None else pd.factorize(x[strata])[0]
        ent = None if entry is None else x[entry].to_numpy()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = PHReg(t, X, status=ev.astype(float), entry=ent, strata=st, ties=self.ties)
                res = model.fit()
        except (np.linalg.LinAlgError, ValueError) as err:
            raise ParameterError(
                f"cox: the fit failed ({err}). Try 1) fewer covariates; 2) rescaling large covariates; "
                "3) checking for covariates that separate lost from kept accounts."
            ) from err
        bse = np.asarray(res.bse)
        conv = getattr(res, "mle_retvals", {}) or {}
        if not np.isfinite(bse).all() or np.any(np.abs(res.params) > 20) or conv.get("converged") is False:
            raise ParameterError(
                "cox: the fit did not converge to finite estimates"
                + (f" ({'; '.join(str(w.message) for w in caught)})" if caught else "")
                + ". Try 1) dropping covariates that (nearly) separate lost from kept accounts; 2) rescaling "
                "covariates to similar ranges; 3) more events (a longer follow-up)."
            )
        z = _z(self.alpha)
        params = pd.Series(np.asarray(res.params), index=covariates, name="coef")
        se = pd.Series(bse, index=covariates)
        summary = pd.DataFrame({
            "coef": params, "se": se, "hazard_ratio": np.exp(params),
            "lower": np.exp(params - z * se), "upper": np.exp(params + z * se),
            "z": params / se, "p": np.asarray(res.pvalues),
        })
        summary.index.name = "covariate"
        self.duration, self.event, self.entry, self.strata, self.covariates = duration, event, entry, strata, covariates
        self.params_ = params
        self.summary = summary
        self.model_ = res
        self.n_, self.events_ = len(x), int(ev.sum())
        self.loglik_ = float(res.llf)
        self.concordance_, self.comparable_pairs_ = _concordance(t, ev, X @ params.to_numpy(), ent, st)
        self.ph_test_ = self._ph_test(res, t, ev, covariates)
        return self

    def _ph_test(self, res, t, ev, covariates) -> pd.DataFrame:
        from scipy.stats import chi2, rankdata

        sch = np.asarray(res.schoenfeld_residuals)
        keep = ev & np.isfinite(sch).all(axis=1)
        r, te = sch[keep], t[keep]
        if self.ph_transform == "rank":
            g = rankdata(te)
        elif self.ph_transform == "log":
            g = np.log(te)
        elif self.ph_transform == "identity":
            g = te
        else:
            from statsmodels.duration.survfunc import SurvfuncRight

            sf = SurvfuncRight(t, ev.astype(float))
            g = 1 - pd.Series(sf.surv_prob, index=sf.surv_times).reindex(te).to_numpy()
        m = len(g)
        rows = []
        for j, c in enumerate(covariates):
            if m < 3 or np.ptp(g) == 0 or np.ptp(r[:, j]) == 0:
                rows.append((c, np.nan, np.nan, np.nan))
                continue
            rho = float(np.corrcoef(r[:, j], g)[0, 1])
            stat = (m - 2) * rho**2 / max(1 - rho**2, 1e-12)
            rows.append((c, rho, stat, float(chi2.sf(stat, 1))))
        return pd.DataFrame(rows, columns=["covariate", "rho", "statistic", "p"]).set_index("covariate")

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise ParameterError("This Cox model is not fitted yet; call .fit(df, duration=..., event=..., "
                                 "covariates=[...]) first.")

    def plot(self, ax=None):
        """Hazard ratios with their intervals on a log scale (a forest plot).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        self._check_fitted()
        s = self.summary.iloc[::-1]
        if ax is None:
            fig = Figure(figsize=(6, 1 + 0.45 * len(s)), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        y = np.arange(len(s))
        ax.errorbar(s["hazard_ratio"], y, xerr=[s["hazard_ratio"] - s["lower"], s["upper"] - s["hazard_ratio"]],
                    fmt="o", color="#1f4e79", capsize=3)
        ax.axvline(1, color="#999999", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yticks(y, s.index)
        ax.set_xlabel(f"hazard ratio ({1 - self.alpha:.0%} interval)")
        ax.set_title(f"Cox model: {self.events_} losses, concordance {self.concordance_:.3f}")
        ax.spines[["top", "right"]].set_visible(False)
        return fig

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"Cox(ties={self.ties!r}, alpha={self.alpha}) — not fitted"
        hr = ", ".join(f"{c} HR {r.hazard_ratio:.3f} [{r.lower:.3f}, {r.upper:.3f}]" for c, r in self.summary.iterrows())
        return f"Cox({self.n_} rows, {self.events_} events, concordance {self.concordance_:.3f}; {hr})"

    def _repr_html_(self) -> str:
        if not hasattr(self, "params_"):
            return f"<p>{html.escape(repr(self))}</p>"
        table = self.summary.join(self.ph_test_[["p"]].rename(columns={"p": "ph_p"}))
        body = (f"{self.n_} rows, {self.events_} events, ties {self.ties}, concordance {self.concordance_:.3f}; "
                "ph_p: proportional-hazards check")
        return _html("Cox regression", body, table)


def cox(df: pd.DataFrame, *, duration: str, event: str, covariates, ties: str = "efron", strata: str | None = None,
        entry: str | None = None, alpha: float = 0.05) -> Cox:
    """Cox regression: hazard ratios with intervals, concordance and a proportional-hazards check.

    ``Cox(ties=..., alpha=...).fit(df, duration=..., event=..., covariates=..., entry=..., strata=...)``;
    see :class:`Cox` for the attributes.

    Parameters
    ----------
    df : DataFrame
        One row per subject (:func:`durations` joined with :func:`features`)
        or per episode (:func:`episodes`, with ``entry="entry"``).
    duration, event : str
        Columns: positive durations (episode end times with ``entry``);
        True/1 when lost.
    covariates : list of str
        Numeric or boolean columns.
    ties : {"efron", "breslow"}
    strata : str, optional
        Column whose levels get their own baseline hazard.
    entry : str, optional
        Column of entry times (delayed entry, time-varying covariates).
    alpha : float

    Returns
    -------
    Cox

    Raises
    ------
    ParameterError
        With advice, for missing, text, constant or collinear covariates, a
        binary covariate with no loss in one level, no events, durations <= 0
        (or <= entry), or a fit that does not converge.

    Examples
    --------
    >>> import kamtools as kt
    >>> ep = kt.retention.episodes(kt.sample.load(), inactivity_days=90)
    >>> m = kt.retention.cox(ep, duration="duration", event="event", entry="entry",
    ...                      covariates=["is_key_account", "nps", "engagement", "exec_sponsor"])
    >>> m.ph_test_.columns.tolist()
    ['rho', 'statistic', 'p']
    """
    return Cox(ties=ties, alpha=alpha).fit(df, duration=duration, event=event, covariates=covariates, entry=entry,
                                           strata=strata)


# --------------------------------------------------------------------------- churn risk


def auc(y, score, *, alpha: float = 0.05) -> tuple[float, float, float]:
    """Area under the ROC curve of ``score`` ranking ``y == 1`` above ``y == 0``, with DeLong's interval.

    Parameters
    ----------
    y : array of 0/1 or bool
    score : array of float
        Higher means more likely 1 (e.g. a probability of loss).
    alpha : float

    Returns
    -------
    (auc, lower, upper)
        The AUC (Mann-Whitney: ties count one half) and its interval from
        DeLong's variance, clipped to [0, 1].

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])[0]
    0.75
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype="float64")
    if y.shape != s.shape:
        raise ParameterError(f"auc: y has {y.size} values and score {s.size}; pass one score per outcome.")
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        raise ParameterError("auc: needs both outcomes (some 1 and some 0); found only one.")
    cmp = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    a = float(cmp.mean())
    v10, v01 = cmp.mean(axis=1), cmp.mean(axis=0)
    var = (v10.var(ddof=1) / len(pos) if len(pos) > 1 else 0.0) + (v01.var(ddof=1) / len(neg) if len(neg) > 1 else 0.0)
    half = _z(alpha) * np.sqrt(var)
    return a, float(max(a - half, 0.0)), float(min(a + half, 1.0))


def _wilson(k, n, alpha):
    z = _z(alpha)
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


#: Default features of :func:`churn_risk` (see :data:`FEATURES`).
RISK_FEATURES = ("is_key_account", "nps", "engagement", "exec_sponsor", "tickets_per_month", "tenure_months",
                 "revenue_trend")


class ChurnRisk:
    """Probability that an account is lost within a horizon, from what is known today (logistic model).

    Parameters
    ----------
    horizon : str
        The horizon, e.g. ``"365D"``.
    churn, inactivity_days
        How a loss is defined (:func:`durations`). With ``"inactivity"`` a
        loss shows only ``inactivity_days`` after it happens, so outcomes are
        complete only up to ``as_of - inactivity_days``.
    features : list of str, optional
        Columns of :func:`features` used as predictors; default
        :data:`RISK_FEATURES`.
    window : str, optional
        Passed to :func:`features` (default: all history).
    step : {"M", "Q", "Y"}
        Spacing of the origins stacked for training.
    min_history : str
        An account is used at an origin only once it has been a customer this
        long.
    n_bins : int
        Bins (by predicted probability, equal counts) of the calibration table.
    alpha : float

    Attributes
    ----------
    predictions_ : DataFrame
        One row per account still a customer at ``as_of``, sorted by revenue
        at risk: ``account_id``, ``probability`` (of loss within the horizon),
        ``annual_revenue`` (revenue of the last 365 days), ``revenue_at_risk``
        (probability x annual revenue), then the features.
    summary : DataFrame
        Index ``feature``; ``coef``, ``se`` (clustered by account),
        ``odds_ratio``, ``lower``, ``upper``, ``z``, ``p``.
    holdout_ : DataFrame
        One row: ``fit_from``, ``fit_to`` (first and last training origin),
        ``evaluated_at``, ``n``, ``events``, ``auc``, ``auc_lower``,
        ``auc_upper`` (DeLong), ``brier``, ``brier_base_rate`` (Brier score of
        predicting the training loss rate for everyone) and ``brier_skill``
        (1 - brier / brier_base_rate).
    calibration_ : DataFrame
        On the holdout: ``bin``, ``n``, ``events``, ``predicted`` (mean
        probability), ``observed`` (loss rate), ``lower``, ``upper`` (Wilson).
    revenue_at_risk_ : float
        Sum of ``predictions_.revenue_at_risk``.
    model_ : statsmodels LogitResults
        The final model.

    Notes
    -----
    **Training data.** At each origin *t* (every ``step`` back from the
    latest origin whose horizon is fully observed, ``as_of - lag - horizon``,
    where ``lag`` is ``inactivity_days`` for inactivity churn and 0 for
    contract churn), every account that is a customer at *t* and has
    ``min_history`` of history gives one row: its features at *t* and whether
    it is lost in (*t*, *t* + horizon]. Origins are stacked; standard errors
    are clustered by account. Only data dated up to ``as_of`` are used.

    **Holdout (time split).** The holdout model is fitted on the origins
    whose horizon ends before the latest origin, and evaluated at that latest
    origin: a later date than anything it was trained on. The final model is
    then refitted on all origins and scores the accounts at ``as_of``.

    **Missing values.** A missing feature (e.g. no survey, hence no NPS) is
    filled with its training mean, and an indicator column ``<feature>_missing``
    is added when the training data have missing values for it.

    Checked on the sample, whose true churners are known: see
    tests/test_retention.py.
    """

    def __init__(self, *, horizon: str = "365D", churn: str = "inactivity", inactivity_days: int = 365,
                 features=None, window=None, step: str = "Q", min_history="180D", n_bins: int = 5,
                 alpha: float = 0.05):
        self.horizon = horizon
        self._h = _timedelta(horizon, "horizon")
        if churn not in ("inactivity", "contract"):
            raise ParameterError(f"churn={churn!r}; use 'inactivity' or 'contract'.")
        self.churn, self.inactivity_days = churn, inactivity_days
        feats = list(RISK_FEATURES if features is None else ([features] if isinstance(features, str) else features))
        unknown = [f for f in feats if f not in FEATURES]
        if unknown or not feats:
            raise ParameterError(f"features={features!r}: unknown {unknown}; choose from {', '.join(FEATURES)}.")
        self.features = feats
        self.window = window
        self.step = _periods.check_freq(step)
        self.min_history = min_history
        self._hist = _timedelta(min_history, "min_history")
        if not isinstance(n_bins, int | np.integer) or n_bins < 2:
            raise ParameterError(f"n_bins={n_bins!r}: pass a whole number, 2 or more.")
        self.n_bins = int(n_bins)
        _z(alpha)
        self.alpha = alpha

    # -- data ------------------------------------------------------------------------------
    def _rows(self, data, d, at) -> pd.DataFrame:
        """Accounts that are customers at ``at`` with enough history; features and outcome."""
        s = d[(d["start"] + self._hist <= at) & (~d["event"] | (d["end"] > at))]
        y = s["event"] & (s["end"] <= at + self._h)
        f = features(data, as_of=at, window=self.window)
        out = pd.DataFrame({"account_id": s["account_id"].to_numpy(), "origin": at, "y": y.to_numpy().astype(int)})
        return out.merge(f, on="account_id", how="left")

    def _matrix(self, rows: pd.DataFrame, fill=None):
        """Design matrix: missing values filled with training means, plus missing-value indicators.

        ``fill`` (from the training rows) holds the features used, their means
        and which get an indicator; features missing for every training row
        are left out with a warning.
        """
        if fill is None:
            X = rows[self.features].astype("float64")
            empty = [c for c in self.features if X[c].isna().all()]
            if len(empty) == len(self.features):
                raise ParameterError(
                    f"churn_risk: every feature ({', '.join(empty)}) is missing for every account; are their tables "
                    "absent? Pass features= that the data can give."
                )
            if empty:
                warnings.warn(
                    f"churn_risk: feature(s) {empty} are missing for all {len(X)} training rows (absent table, or "
                    "too little history at the training dates) and are left out of this fit.",
                    DataWarning, stacklevel=4,
                )
            used = [c for c in self.features if c not in empty]
            missing = [c for c in used if X[c].isna().any()]
            fill = (used, X[used].mean(), missing)
        used, means, missing = fill
        X = rows[used].astype("float64")
        out = X.fillna(means)
        for c in missing:
            out[f"{c}_missing"] = X[c].isna().astype("float64")
        return out, fill

    def _fit_logit(self, rows: pd.DataFrame):
        import statsmodels.api as sm

        X, fill = self._matrix(rows)
        y = rows["y"].to_numpy()
        if y.sum() == 0 or y.sum() == len(y):
            raise ParameterError(
                f"churn_risk: the training rows have {'no losses' if y.sum() == 0 else 'only losses'} within "
                f"{self.horizon}; a model needs both. Try 1) a longer horizon; 2) a later as_of; 3) a shorter "
                "inactivity_days, so losses show sooner."
            )
        const = [c for c in X.columns if X[c].nunique() < 2]
        if const:
            raise ParameterError(f"churn_risk: feature(s) {const} are constant in the training rows; leave them out "
                                 "with features=[...].")
        _design(X, list(X.columns), "churn_risk")
        groups = pd.factorize(rows["account_id"])[0]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sm.Logit(y, sm.add_constant(X, has_constant="add")).fit(
                    disp=0, maxiter=200, cov_type="cluster", cov_kwds={"groups": groups})
        except (np.linalg.LinAlgError, ValueError) as err:
            raise ParameterError(
                f"churn_risk: the logistic fit failed ({err}). Try 1) fewer features; 2) a longer horizon or more "
                "history, for more losses to learn from."
            ) from err
        if not res.mle_retvals.get("converged", True) or not np.isfinite(np.asarray(res.bse)).all():
            raise ParameterError(
                "churn_risk: the logistic fit did not converge (a feature may separate lost from kept accounts). "
                "Try 1) dropping features such as days_since_purchase that give the outcome away; 2) a longer "
                "horizon or more history."
            )
        return res, fill

    def _predict(self, res, fill, rows):
        import statsmodels.api as sm

        X, _ = self._matrix(rows, fill)
        return np.asarray(res.predict(sm.add_constant(X, has_constant="add")))

    # -- fit -------------------------------------------------------------------------------
    def fit(self, data, *, as_of) -> ChurnRisk:
        """Fit on the data known at ``as_of`` and score the accounts that are customers then."""
        from kamtools.io import load

        data = load(data)
        as_of = _periods.as_of_date(as_of, data.transactions["date"].max())
        d = durations(data, churn=self.churn, inactivity_days=self.inactivity_days, as_of=as_of, _cut=False)
        first = data.transactions["date"].min()
        lag = _loss_lag(self.churn, self.inactivity_days)
        latest = (as_of - lag - self._h).normalize()
        months = {"M": 1, "Q": 3, "Y": 12}[self.step]
        origins = []
        t = latest
        while t >= first + self._hist:
            origins.append(t)
            t = (t - pd.DateOffset(months=months)).normalize()
        origins = origins[::-1]
        if len(origins) < 2:
            raise ParameterError(
                f"churn_risk: as_of={as_of:%Y-%m-%d} leaves {len(origins)} training origin(s): outcomes are complete "
                f"up to {as_of - lag:%Y-%m-%d} and each needs horizon={self.horizon} after it and "
                f"min_history={self.min_history} before it. Try 1) a later as_of; 2) a shorter horizon; 3) a "
                "shorter inactivity_days (losses show sooner); 4) a shorter min_history."
            )
        rows = {t: self._rows(data, d, t) for t in origins}
        # holdout: train on origins whose horizon ends by the latest origin, evaluate at the latest
        train_o = [t for t in origins if t + self._h <= latest]
        self.holdout_ = self.calibration_ = None
        if train_o:
            tr = pd.concat([rows[t] for t in train_o], ignore_index=True)
            ev = rows[latest]
            try:
                res_h, fill_h = self._fit_logit(tr)
            except ParameterError as err:
                warnings.warn(f"churn_risk: no holdout evaluation: {err}", DataWarning, stacklevel=2)
                res_h = None
            if res_h is not None and 0 < ev["y"].sum() < len(ev):
                p = self._predict(res_h, fill_h, ev)
                y = ev["y"].to_numpy()
                a, lo, hi = auc(y, p, alpha=self.alpha)
                brier = float(np.mean((p - y) ** 2))
                base = float(np.mean((tr["y"].mean() - y) ** 2))
                self.holdout_ = pd.DataFrame([{
                    "fit_from": train_o[0], "fit_to": train_o[-1], "evaluated_at": latest, "n": len(y),
                    "events": int(y.sum()), "auc": a, "auc_lower": lo, "auc_upper": hi, "brier": brier,
                    "brier_base_rate": base, "brier_skill": 1 - brier / base if base > 0 else np.nan,
                }])
                self.calibration_ = self._calibration(y, p)
            elif res_h is not None:
                warnings.warn(
                    f"churn_risk: no holdout evaluation: the {len(ev)} accounts at {latest:%Y-%m-%d} are "
                    f"{'all lost' if ev['y'].sum() else 'none lost'} within {self.horizon}, so AUC and calibration "
                    "are undefined.", DataWarning, stacklevel=2)
        else:
            warnings.warn(
                f"churn_risk: no holdout evaluation: no origin's horizon ends by {latest:%Y-%m-%d}; pass a later "
                "as_of or a shorter horizon.", DataWarning, stacklevel=2)
        allrows = pd.concat(list(rows.values()), ignore_index=True)
        res, fill = self._fit_logit(allrows)
        now = d[~d["event"]]
        f = features(data, as_of=as_of, window=self.window)
        f = f[f["account_id"].isin(now["account_id"])].reset_index(drop=True)
        prob = self._predict(res, fill, f)
        pred = pd.DataFrame({"account_id": f["account_id"], "probability": prob,
                             "annual_revenue": f["revenue_12m"].clip(lower=0)})
        pred["revenue_at_risk"] = pred["probability"] * pred["annual_revenue"]
        pred = pd.concat([pred, f.drop(columns=["account_id"])], axis=1)
        self.predictions_ = pred.sort_values("revenue_at_risk", ascending=False, kind="stable").reset_index(drop=True)
        self.revenue_at_risk_ = float(pred["revenue_at_risk"].sum())
        z = _z(self.alpha)
        params, se = res.params, res.bse
        self.summary = pd.DataFrame({
            "coef": params, "se": se, "odds_ratio": np.exp(params), "lower": np.exp(params - z * se),
            "upper": np.exp(params + z * se), "z": params / se, "p": res.pvalues,
        })
        self.summary.index.name = "feature"
        self.model_ = res
        self.as_of_, self.origins_ = as_of, origins
        self.n_, self.events_ = len(allrows), int(allrows["y"].sum())
        return self

    def _calibration(self, y, p) -> pd.DataFrame:
        q = min(self.n_bins, len(np.unique(p)))
        bins = pd.qcut(pd.Series(p).rank(method="first"), q, labels=False)
        t = pd.DataFrame({"bin": bins.to_numpy() + 1, "y": y, "p": p}).groupby("bin").agg(
            n=("y", "size"), events=("y", "sum"), predicted=("p", "mean"), observed=("y", "mean"))
        t["lower"], t["upper"] = _wilson(t["events"], t["n"], self.alpha)
        return t.reset_index()

    # -- output ----------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "predictions_"):
            raise ParameterError("This ChurnRisk is not fitted yet; call .fit(data, as_of=...) first.")

    def plot_calibration(self, ax=None):
        """Predicted against observed loss rates on the holdout, with Wilson intervals.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        self._check_fitted()
        if self.calibration_ is None:
            raise ParameterError("No holdout evaluation was possible, so there is no calibration to plot; pass a "
                                 "later as_of or a shorter horizon.")
        c = self.calibration_
        if ax is None:
            fig = Figure(figsize=(5, 4.5), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        top = float(max(c["upper"].max(), c["predicted"].max())) * 1.05
        ax.plot([0, top], [0, top], color="#999999", linestyle="--", linewidth=1, label="perfect calibration")
        ax.errorbar(c["predicted"], c["observed"], yerr=[c["observed"] - c["lower"], c["upper"] - c["observed"]],
                    fmt="o", color="#1f4e79", capsize=3, label="holdout bins")
        for r in c.itertuples():
            ax.annotate(f"n={r.n}", (r.predicted, r.observed), textcoords="offset points", xytext=(5, -10),
                        fontsize="x-small")
        h = self.holdout_.iloc[0]
        ax.set_title(f"Calibration at {h['evaluated_at']:%Y-%m-%d}: AUC {h['auc']:.2f}, Brier {h['brier']:.3f}")
        ax.set_xlabel(f"predicted probability of loss within {self.horizon}")
        ax.set_ylabel("observed loss rate")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.legend(frameon=False, loc="upper left", fontsize="small")
        ax.spines[["top", "right"]].set_visible(False)
        return fig

    def __repr__(self) -> str:
        if not hasattr(self, "predictions_"):
            return f"ChurnRisk(horizon={self.horizon!r}, churn={self.churn!r}) — not fitted"
        ho = ""
        if self.holdout_ is not None:
            h = self.holdout_.iloc[0]
            ho = f"; holdout AUC {h['auc']:.3f} [{h['auc_lower']:.3f}, {h['auc_upper']:.3f}], Brier {h['brier']:.4f}"
        return (f"ChurnRisk(as_of {self.as_of_:%Y-%m-%d}, horizon {self.horizon}: {len(self.predictions_)} accounts "
                f"scored, revenue at risk {self.revenue_at_risk_:,.0f}{ho})")

    def _repr_html_(self) -> str:
        if not hasattr(self, "predictions_"):
            return f"<p>{html.escape(repr(self))}</p>"
        return _html("Churn risk", repr(self), self.summary)


def churn_risk(data, *, as_of, horizon: str = "365D", churn: str = "inactivity", inactivity_days: int = 365,
               features=None, window=None, step: str = "Q", min_history="180D", n_bins: int = 5,
               alpha: float = 0.05) -> ChurnRisk:
    """Per-account probability of loss within ``horizon``, calibration, holdout AUC and Brier, revenue at risk.

    ``ChurnRisk(horizon=..., ...).fit(data, as_of=...)``; see :class:`ChurnRisk`
    for the parameters, attributes and method.

    Returns
    -------
    ChurnRisk

    Raises
    ------
    ParameterError
        When ``as_of`` leaves too little history for training, the training
        rows have no loss, or the fit does not converge (with advice).

    Examples
    --------
    >>> import kamtools as kt
    >>> risk = kt.retention.churn_risk(kt.sample.load(), as_of="2024-12-31", inactivity_days=90)
    >>> risk.predictions_.columns.tolist()[:4]
    ['account_id', 'probability', 'annual_revenue', 'revenue_at_risk']
    >>> risk.holdout_[["n", "events"]].iloc[0].tolist()
    [134, 10]
    """
    return ChurnRisk(horizon=horizon, churn=churn, inactivity_days=inactivity_days, features=features,
                     window=window, step=step, min_history=min_history, n_bins=n_bins,
                     alpha=alpha).fit(data, as_of=as_of)


# --------------------------------------------------------------------------- cohorts and revenue retention


def _period_revenue(data, freq: str, as_of):
    """Net revenue per account and period, for rows dated up to ``as_of``; and ``as_of``."""
    tx = data.transactions
    as_of = _periods.as_of_date(as_of, tx["date"].max())
    tx = tx[tx["date"] <= as_of]
    if tx.empty:
        raise ParameterError(f"No transaction is dated on or before as_of={as_of:%Y-%m-%d}; pass a later as_of.")
    rev = (tx.assign(period=_periods.to_period(tx["date"], freq))
           .groupby(["account_id", "period"], observed=True, as_index=False)["revenue"].sum())
    return rev, as_of


def cohorts(data, *, period: str = "Q", as_of=None) -> pd.DataFrame:
    """Accounts and revenue by start cohort and periods since start.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    period : {"M", "Q", "Y"}
        Length of the cohort and age buckets.
    as_of : date, optional
        Only transactions dated up to it count. Default: the last transaction.

    Returns
    -------
    DataFrame
        One row per cohort and age, tidy:

        - ``cohort``: the period of the account's first purchase;
        - ``age``: periods since the cohort period (0 = the cohort period);
        - ``period``: the calendar period (cohort + age);
        - ``cohort_size``: accounts in the cohort;
        - ``accounts``: those with positive net revenue in the period;
        - ``account_retention``: accounts / cohort_size;
        - ``revenue``: the cohort's net revenue in the period;
        - ``revenue_retention``: revenue / the cohort's revenue at age 0;
        - ``complete``: the period has ended by ``as_of`` (the last period
          may be partial).

    Notes
    -----
    Accounts that were customers before the data begin all fall in the first
    cohort (left truncation), so read the first cohort as "existing customers".
    The age-0 period is usually partial (an account starts part-way through
    it), so revenue retention at age 1 can exceed 1 without expansion.

    Examples
    --------
    >>> import kamtools as kt
    >>> c = kt.retention.cohorts(kt.sample.load(), period="Y")
    >>> c[c["cohort"].astype(str) == "2021"][["age", "accounts", "account_retention"]].round(3)
       age  accounts  account_retention
    0    0       163              1.000
    1    1       143              0.877
    2    2       127              0.779
    3    3       117              0.718
    4    4       102              0.626
    """
    from kamtools.io import load

    data = load(data)
    freq = _periods.check_freq(period)
    rev, as_of = _period_revenue(data, freq, as_of)
    first = data.transactions[data.transactions["date"] <= as_of].groupby("account_id", observed=True)["date"].min()
    cohort = _periods.to_period(first, freq)
    rev["cohort"] = rev["account_id"].map(cohort)
    rev["age"] = (rev["period"] - rev["cohort"]).map(lambda off: off.n).astype("int64")
    active = rev[rev["revenue"] > 0]
    size = cohort.value_counts().rename("cohort_size")
    last = pd.Timestamp(as_of).to_period(_periods.FREQS[freq])
    grid = []
    for c, n in size.sort_index().items():
        ages = np.arange((last - c).n + 1)
        grid.append(pd.DataFrame({"cohort": c, "age": ages, "cohort_size": n}))
    out = pd.concat(grid, ignore_index=True)
    out["period"] = out["cohort"] + out["age"]
    acc = active.groupby(["cohort", "age"]).size().rename("accounts")
    money = rev.groupby(["cohort", "age"])["revenue"].sum()
    out = out.join(acc, on=["cohort", "age"]).join(money, on=["cohort", "age"])
    out["accounts"] = out["accounts"].fillna(0).astype("int64")
    out["revenue"] = out["revenue"].fillna(0.0)
    out["account_retention"] = out["accounts"] / out["cohort_size"]
    base = out[out["age"] == 0].set_index("cohort")["revenue"]
    out["revenue_retention"] = out["revenue"] / out["cohort"].map(base).where(lambda b: b > 0)
    out["complete"] = out["period"].dt.end_time.dt.normalize() <= as_of
    cols = ["cohort", "age", "period", "cohort_size", "accounts", "account_retention", "revenue",
            "revenue_retention", "complete"]
    return out[cols].sort_values(["cohort", "age"]).reset_index(drop=True)


def plot_cohorts(table: pd.DataFrame, *, value: str = "account_retention", ax=None):
    """Heatmap of a :func:`cohorts` table: cohorts down, periods since start across.

    Parameters
    ----------
    table : DataFrame
        :func:`cohorts` output.
    value : {"account_retention", "revenue_retention", "accounts", "revenue"}

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if not isinstance(table, pd.DataFrame) or not {"cohort", "age", value} <= set(table.columns):
        raise ParameterError(f"plot_cohorts: pass the table cohorts() returns and value= one of its columns "
                             f"(account_retention, revenue_retention, accounts, revenue); got value={value!r}.")
    wide = table.pivot(index="cohort", columns="age", values=value).astype("float64")
    if ax is None:
        fig = Figure(figsize=(min(1 + 0.55 * wide.shape[1], 16), min(1.2 + 0.35 * wide.shape[0], 14)),
                     layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    share = value.endswith("retention")
    im = ax.imshow(wide.to_numpy(), aspect="auto", cmap="Blues", vmin=0 if share else None,
                   vmax=max(1.0, float(np.nanmax(wide.to_numpy()))) if share else None)
    if wide.size <= 400:
        for (i, j), v in np.ndenumerate(wide.to_numpy()):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0%}" if share else f"{v:,.0f}", ha="center", va="center", fontsize="x-small",
                        color="white" if im.norm(v) > 0.6 else "black")
    ax.set_xticks(range(wide.shape[1]), wide.columns)
    ax.set_yticks(range(wide.shape[0]), [str(c) for c in wide.index])
    ax.set_xlabel("periods since start")
    ax.set_ylabel("start cohort")
    ax.set_title(value.replace("_", " "))
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def revenue_retention(data, *, period: str = "Y", by: str = "portfolio", as_of=None) -> pd.DataFrame:
    """Net and gross revenue retention (NRR, GRR) per period, from the KPI catalogue.

    A thin reshaping of ``kt.compute(data, ["net_revenue_retention",
    "gross_revenue_retention"], by=by, period=period)``: the definitions are
    the catalogue's (``kt.kpis().loc["net_revenue_retention"]``).

    Returns
    -------
    DataFrame
        ``entity``, ``period``, ``nrr``, ``grr``, ``revenue_previous`` (the
        previous-period revenue of the previous period's customers),
        ``revenue_retained`` (their revenue now; NRR's numerator),
        ``revenue_retained_capped`` (capped at the previous level; GRR's
        numerator). Periods not complete at ``as_of`` have no value.

    Examples
    --------
    >>> import kamtools as kt
    >>> r = kt.retention.revenue_retention(kt.sample.load(), period="Y")
    >>> r[["period", "nrr", "grr"]].astype({"period": str}).round(3)
      period    nrr    grr
    0   2022  0.980  0.897
    1   2023  0.993  0.871
    2   2024  1.049  0.909
    3   2025  0.912  0.817
    """
    from kamtools.kpi import compute

    v = compute(data, ["net_revenue_retention", "gross_revenue_retention"], by=by, period=period, as_of=as_of)
    wide = v.pivot_table(index=["entity", "period"], columns="kpi", values=["value", "num", "den"], dropna=False)
    out = pd.DataFrame({
        "nrr": wide[("value", "net_revenue_retention")],
        "grr": wide[("value", "gross_revenue_retention")],
        "revenue_previous": wide[("den", "net_revenue_retention")],
        "revenue_retained": wide[("num", "net_revenue_retention")],
        "revenue_retained_capped": wide[("num", "gross_revenue_retention")],
    })
    return out.reset_index()


_BRIDGE_PARTS = ("new", "expansion", "contraction", "churn", "other")


def revenue_bridge(data, *, period: str = "Y", as_of=None) -> pd.DataFrame:
    """Revenue bridge from one period to the next: new, expansion, contraction, churn.

    For each account, *R0* is its net revenue in the previous period and *R1*
    in this one (credit notes count negative); a *customer* of a period is an
    account with positive net revenue in it. Each account's change
    *R1 - R0* goes to exactly one part:

    - ``new``: not a customer before, a customer now (including returning
      accounts): R1 - R0 (which is R1 when R0 = 0);
    - ``expansion``: a customer in both, R1 > R0: R1 - R0 (positive);
    - ``contraction``: a customer in both, R1 < R0: R1 - R0 (negative);
    - ``churn``: a customer before, not now: R1 - R0 (negative; -R0 when R1 =
      0);
    - ``other``: a customer in neither (e.g. a credit note after the account
      left): R1 - R0, usually 0.

    So ``revenue_start + new + expansion + contraction + churn + other ==
    revenue_end`` exactly, and on the accounts that were customers before,
    ``nrr = (start_customers + expansion + contraction + churn) /
    start_customers`` and ``grr = (start_customers + contraction + churn) /
    start_customers``, where ``start_customers`` is their previous-period
    revenue: the same NRR and GRR as the KPI catalogue. With ``period="Y"``
    this is the annual revenue (ARR-style) bridge.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    period : {"M", "Q", "Y"}
    as_of : date, optional
        Only transactions dated up to it count. Default: the last transaction.

    Returns
    -------
    DataFrame
        One row per period from the second one on: ``period``,
        ``revenue_start`` (all accounts' revenue of the previous period),
        ``new``, ``expansion``, ``contraction``, ``churn``, ``other``,
        ``revenue_end``, ``new_accounts``, ``churned_accounts``, ``nrr``,
        ``grr`` and ``complete`` (the period has ended by ``as_of``; a partial
        last period shows a drop that is not churn).

    Examples
    --------
    >>> import kamtools as kt
    >>> b = kt.retention.revenue_bridge(kt.sample.load(), period="Y")
    >>> b[["period", "new_accounts", "churned_accounts", "nrr"]].astype({"period": str}).round(3)
      period  new_accounts  churned_accounts    nrr
    0   2022            12                20  0.980
    1   2023             9                17  0.993
    2   2024            13                10  1.049
    3   2025             3                17  0.912
    """
    from kamtools.io import load

    data = load(data)
    freq = _periods.check_freq(period)
    rev, as_of = _period_revenue(data, freq, as_of)
    periods = pd.period_range(rev["period"].min(), rev["period"].max(), freq=_periods.FREQS[freq])
    if len(periods) < 2:
        raise ParameterError(f"revenue_bridge: the data span one period ({periods[0]}); a bridge needs two. "
                             "Use a shorter period, e.g. period='Q'.")
    wide = rev.pivot_table(index="account_id", columns="period", values="revenue", aggfunc="sum", fill_value=0.0)
    wide = wide.reindex(columns=periods, fill_value=0.0)
    rows = []
    for prev, cur in itertools.pairwise(periods):
        r0, r1 = wide[prev].to_numpy(), wide[cur].to_numpy()
        was, now = r0 > 0, r1 > 0
        ch = r1 - r0
        part = {
            "new": ch[~was & now].sum(), "expansion": ch[was & now & (ch > 0)].sum(),
            "contraction": ch[was & now & (ch < 0)].sum(), "churn": ch[was & ~now].sum(),
            "other": ch[~was & ~now].sum(),
        }
        base = r0[was].sum()
        rows.append({
            "period": cur, "revenue_start": r0.sum(), **part, "revenue_end": r1.sum(),
            "new_accounts": int((~was & now).sum()), "churned_accounts": int((was & ~now).sum()),
            "nrr": (base + part["expansion"] + part["contraction"] + part["churn"]) / base if base > 0 else np.nan,
            "grr": (base + part["contraction"] + part["churn"]) / base if base > 0 else np.nan,
            "complete": cur.end_time.normalize() <= as_of,
        })
    return pd.DataFrame(rows)


def plot_bridge(bridge: pd.DataFrame, *, period=None, ax=None):
    """Waterfall of one period of a :func:`revenue_bridge`: start, the parts, end.

    Parameters
    ----------
    bridge : DataFrame
        :func:`revenue_bridge` output.
    period : str or Period, optional
        Default: the last complete period.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if not isinstance(bridge, pd.DataFrame) or not {"period", *_BRIDGE_PARTS} <= set(bridge.columns):
        raise ParameterError("plot_bridge: pass the table revenue_bridge() returns.")
    if period is None:
        done = bridge[bridge["complete"]]
        row = (done if len(done) else bridge).iloc[-1]
    else:
        pick = bridge[bridge["period"].astype(str) == str(period)]
        if pick.empty:
            raise ParameterError(f"plot_bridge: period={period!r} is not in the bridge; periods: "
                                 f"{', '.join(bridge['period'].astype(str))}.")
        row = pick.iloc[0]
    if ax is None:
        fig = Figure(figsize=(7, 3.8), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    labels = ["start", *_BRIDGE_PARTS, "end"]
    level = float(row["revenue_start"])
    bottoms, heights, colours = [0.0], [level], ["#8497b0"]
    for p in _BRIDGE_PARTS:
        v = float(row[p])
        bottoms.append(level if v >= 0 else level + v)
        heights.append(abs(v))
        colours.append("#5cb85c" if v >= 0 else "#d9534f")
        level += v
    bottoms.append(0.0)
    heights.append(float(row["revenue_end"]))
    colours.append("#1f4e79")
    ax.bar(labels, heights, bottom=bottoms, color=colours)
    for i, p in enumerate(["revenue_start", *_BRIDGE_PARTS, "revenue_end"]):
        ax.text(i, bottoms[i] + heights[i], f"{float(row[p]):,.0f}", ha="center", va="bottom", fontsize="x-small")
    ax.set_title(f"Revenue bridge {row['period']}: NRR {row['nrr']:.1%}, GRR {row['grr']:.1%}")
    ax.set_ylabel("revenue")
    ax.spines[["top", "right"]].set_visible(False)
    return fig
