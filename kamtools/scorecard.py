"""Scorecards: KPI values against targets, red/amber/green, 3R+1 pillar scores.

Each KPI is normalised against its target to a 0-100 score that respects its
direction; scores are banded red/amber/green; pillars average their KPIs; the
overall score weights the three R pillars (relationships, revenue, retention)
by the account manager's tenure, as the 3R+1 framework suggests, with learning
& development shown beside them.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kamtools import periods as _periods
from kamtools.exceptions import ParameterError

__all__ = ["scorecard", "Scorecard", "tenure_weights", "check_kpi_set", "KpiSetWarning", "read_targets"]

R_PILLARS = ("relationships", "revenue", "retention")
#: 3R+1 weights by the manager's tenure in months: (upper bound inclusive, weights).
TENURE_BANDS = (
    ("under 18 months", {"relationships": 60, "revenue": 20, "retention": 20}),
    ("18 to 36 months", {"relationships": 40, "revenue": 30, "retention": 30}),
    ("over 36 months", {"relationships": 30, "revenue": 40, "retention": 30}),
)
DEFAULT_BANDS = {"green": 90.0, "amber": 70.0}
RAG = ("red", "amber", "green")


class KpiSetWarning(UserWarning):
    """A chosen KPI set breaks what makes a good KAM KPI programme."""


def tenure_band(months) -> pd.Series:
    """The 3R+1 tenure band of each tenure in whole months.

    Under 18 months is the first band; 18 up to and including 36 the second;
    over 36 the third.

    Examples
    --------
    >>> tenure_band(pd.Series([17, 18, 36, 37])).tolist()
    ['under 18 months', '18 to 36 months', '18 to 36 months', 'over 36 months']
    """
    m = pd.Series(months, dtype="float64")
    labels = np.select([m < 18, m <= 36, m > 36], [b[0] for b in TENURE_BANDS], default="")
    return pd.Series(labels, index=m.index, dtype="str").where(m.notna())


def tenure_weights(months) -> pd.DataFrame:
    """3R+1 pillar weights (percent) for tenures in whole months.

    Examples
    --------
    >>> tenure_weights([12, 18, 36, 48])
       tenure_months             band  relationships  revenue  retention
    0             12  under 18 months             60       20         20
    1             18  18 to 36 months             40       30         30
    2             36  18 to 36 months             40       30         30
    3             48   over 36 months             30       40         30
    """
    band = tenure_band(pd.Series(months))
    table = pd.DataFrame({b: w for b, w in TENURE_BANDS}).T
    out = pd.DataFrame({"tenure_months": pd.Series(months).astype("Int64"), "band": band})
    return out.join(table, on="band").astype({p: "Int64" for p in R_PILLARS})


# --------------------------------------------------------------------------- targets


def read_targets(targets) -> pd.DataFrame:
    """Targets as a frame with columns kpi, target, floor, weight and optionally entity.

    Parameters
    ----------
    targets : mapping, DataFrame, or path to a CSV file
        ``{"nps": 40, "revenue_growth_rate": 0.05}``, or a table with the
        columns ``kpi`` and ``target`` and optionally ``entity`` (a target for
        one account or manager), ``floor`` (the value that scores 0) and
        ``weight`` (the KPI's weight within its pillar, default 1). A row for
        one entity overrides the general row of its KPI field by field: what it
        leaves empty comes from the general row.
    """
    if isinstance(targets, Mapping):
        t = pd.DataFrame({"kpi": list(targets), "target": list(targets.values())})
    elif isinstance(targets, pd.DataFrame):
        t = targets.copy()
    else:
        from pathlib import Path

        path = Path(targets)
        if not path.exists():
            raise ParameterError(f"targets={str(targets)!r}: no such file. Pass a dict, a DataFrame or a CSV path.")
        t = pd.read_csv(path)
    t.columns = [str(c).strip().lower() for c in t.columns]
    missing = {"kpi", "target"} - set(t.columns)
    if missing:
        raise ParameterError(f"targets need the columns kpi and target; missing {', '.join(sorted(missing))}.")
    for col, default in (("floor", np.nan), ("weight", 1.0)):
        if col not in t.columns:
            t[col] = default
    t["target"] = pd.to_numeric(t["target"], errors="coerce")
    bad = t[t["target"].isna()]
    if len(bad):
        raise ParameterError(f"targets: no numeric target for {', '.join(map(str, bad['kpi']))}.")
    t["weight"] = pd.to_numeric(t["weight"], errors="coerce").fillna(1.0)
    if (t["weight"] < 0).any():
        raise ParameterError("targets: weights must not be negative.")
    t["floor"] = pd.to_numeric(t["floor"], errors="coerce")
    return t


def _floors(kpi, target, floor, direction) -> pd.Series:
    """The floors, defaulted where missing, checked to lie on the far side of the target."""
    higher = direction == "higher"
    need = floor.isna() & (target <= 0)  # defaults: 0, or twice the target where lower is better
    if need.any():
        names = ", ".join(sorted(set(kpi[need])))
        raise ParameterError(
            f"targets: give a floor (the value that scores 0) for {names}: with a target of 0 or below there is "
            "no sensible default. Add a 'floor' column to the targets."
        )
    floor = floor.where(floor.notna(), np.where(higher, 0.0, 2 * target))
    wrong = np.where(higher, floor >= target, floor <= target)
    if wrong.any():
        names = ", ".join(sorted(set(kpi[wrong])))
        raise ParameterError(
            f"targets: the floor must be worse than the target (below it where higher is better, above it "
            f"where lower is better); check {names}."
        )
    return floor


def _normalise(value, target, floor, direction) -> pd.Series:
    """Score 0-100: 0 at the floor (or worse), 100 at the target (or better), linear between."""
    higher = direction == "higher"
    span = np.where(higher, target - floor, floor - target)
    got = np.where(higher, value - floor, floor - value)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 100 * np.clip(got / span, 0, 1)
    return pd.Series(score, index=value.index).where(value.notna())


def rag(score, bands: Mapping[str, float] = DEFAULT_BANDS) -> pd.Series:
    """Red, amber or green for each score: green at or above ``bands['green']``,
    amber at or above ``bands['amber']``, red below.

    Examples
    --------
    >>> rag(pd.Series([69.99, 70, 89.99, 90])).tolist()
    ['red', 'amber', 'amber', 'green']
    """
    s = pd.Series(score, dtype="float64")
    out = np.select([s >= bands["green"], s >= bands["amber"], s.notna()], ["green", "amber", "red"], default="")
    return pd.Series(out, index=s.index, dtype="str").where(s.notna())


# --------------------------------------------------------------------------- the scorecard


@dataclass
class Scorecard:
    """What :func:`scorecard` returns.

    Attributes
    ----------
    kpis : DataFrame
        entity, period, kpi, pillar, value, target, floor, score (0-100), rag.
    pillars : DataFrame
        entity, period, pillar, score, rag, weight (percent of the overall
        score; 0 for learning, which is shown beside), kpis (count).
    overall : DataFrame
        entity, period, score, rag, trend (score change against the previous
        period), tenure_months, band (the tenure band used for the weights).
    """

    kpis: pd.DataFrame
    pillars: pd.DataFrame
    overall: pd.DataFrame
    bands: Mapping[str, float]

    def latest(self) -> pd.DataFrame:
        """The overall score of the last period, one row per entity, worst first."""
        last = self.overall["period"].max()
        return self.overall[self.overall["period"] == last].sort_values("score").reset_index(drop=True)

    def __repr__(self) -> str:
        n = self.overall["entity"].nunique()
        periods = self.overall["period"]
        span = f"{periods.min()} to {periods.max()}" if len(periods) else "no periods"
        counts = self.latest()["rag"].value_counts()
        mix = ", ".join(f"{counts.get(c, 0)} {c}" for c in reversed(RAG))
        return f"Scorecard({n} entities, {self.kpis['kpi'].nunique()} KPIs, {span}; last period: {mix})"

    def _repr_html_(self) -> str:
        colours = {"red": "#f8d7da", "amber": "#fff3cd", "green": "#d1e7dd"}
        latest = self.latest()
        rows = "".join(
            f"<tr><td>{html.escape(str(r.entity))}</td><td>{r.score:.0f}</td>"
            f"<td style='background:{colours.get(r.rag, '')}'>{html.escape(str(r.rag))}</td>"
            f"<td>{'' if pd.isna(r.trend) else f'{r.trend:+.0f}'}</td></tr>"
            for r in latest.itertuples()
        )
        return (
            f"<p>{html.escape(repr(self))}</p><table><tr><th>entity</th><th>score</th><th>RAG</th>"
            f"<th>trend</th></tr>{rows}</table>"
        )


def _tenure(values: pd.DataFrame, data, by: str) -> pd.DataFrame:
    """Tenure in whole months at each period's end, per entity and period."""
    if data is None:
        raise ParameterError("weights='tenure' needs data= (the managers' start dates). Pass data, or weights={...}.")
    from kamtools.io import load

    data = load(data)
    if data.managers is None or "manager_id" not in data.accounts.columns:
        raise ParameterError(
            "weights='tenure' needs the managers table and accounts.manager_id. "
            "Pass weights={'relationships': 40, 'revenue': 30, 'retention': 30} instead."
        )
    start = data.managers.set_index("manager_id")["start_date"]
    if by == "manager":
        ent_start = start
    elif by == "account":
        ent_start = data.accounts.set_index("account_id")["manager_id"].map(start)
    else:
        raise ParameterError("weights='tenure' works for scorecards by account or by manager; pass weights={...}.")
    grid = values[["entity", "period"]].drop_duplicates()
    ends = grid["period"].dt.end_time.dt.normalize()
    starts = grid["entity"].map(ent_start)
    if starts.isna().all():
        raise ParameterError(
            f"weights='tenure': none of the entities is an {by} with a manager start date. Pass by= to say what "
            "the entities are ('account' or 'manager'), or weights={...}."
        )
    return grid.assign(tenure_months=_periods.months_between(starts, ends).to_numpy())


def scorecard(
    values: pd.DataFrame,
    *,
    targets,
    data=None,
    weights="tenure",
    thresholds: Mapping[str, float] = DEFAULT_BANDS,
    rule: str = "score",
    by: str | None = None,
) -> Scorecard:
    """Score KPI values against targets, with red/amber/green and 3R+1 pillar weights.

    Parameters
    ----------
    values : DataFrame
        A :func:`kamtools.compute` result (``by="account"`` or ``"manager"``).
        KPIs without a target are left out.
    targets : mapping, DataFrame or CSV path
        See :func:`read_targets`. A KPI's score is 100 at its target or
        beyond, 0 at its floor (default: 0 where higher is better, twice the
        target where lower is better), linear in between.
    data : KamData, optional
        Needed for ``weights="tenure"`` (managers' start dates).
    weights : "tenure", "equal" or mapping
        Pillar weights of the overall score. ``"tenure"`` follows the 3R+1
        bands of the entity's manager tenure at each period's end: under 18
        months 60/20/20 (relationships/revenue/retention), 18 to 36 months
        40/30/30, over 36 months 30/40/30. Learning & development is scored and
        shown beside, not weighted in. A mapping gives fixed weights,
        e.g. ``{"relationships": 50, "revenue": 30, "retention": 20}``.
    thresholds : mapping
        Score thresholds: green at or above ``thresholds["green"]`` (90),
        amber at or above ``thresholds["amber"]`` (70), red below.
    rule : {"score", "any_red"}
        How the overall colour is set: from the overall score, or red as soon
        as any KPI is red (else from the score).
    by : {"account", "manager"}, optional
        What the entities of ``values`` are (for the tenure weights). Default:
        what :func:`kamtools.compute` recorded in ``values.attrs``, else
        ``"account"``.

    Returns
    -------
    Scorecard

    Examples
    --------
    >>> import kamtools as kt
    >>> data = kt.sample.load()
    >>> values = kt.compute(data, ["revenue_growth_rate", "nps"], period="Y")
    >>> card = kt.scorecard(values, targets={"revenue_growth_rate": 0.05, "nps": 40}, data=data)
    >>> card.overall.columns.tolist()
    ['entity', 'period', 'score', 'rag', 'trend', 'tenure_months', 'band']
    """
    from kamtools.kpi import get

    if rule not in ("score", "any_red"):
        raise ParameterError(f"rule={rule!r}; use 'score' or 'any_red'.")
    bands = thresholds
    if not {"green", "amber"} <= set(bands) or bands["amber"] > bands["green"]:
        raise ParameterError("thresholds must give 'amber' <= 'green', e.g. {'green': 90, 'amber': 70}.")
    by = by or values.attrs.get("by", "account")
    t = read_targets(targets)
    unknown = [k for k in t["kpi"] if k not in set(values["kpi"])]
    if unknown:
        raise ParameterError(
            f"targets name KPIs that are not in the values: {', '.join(unknown)}. "
            "Compute them first, or drop their targets."
        )
    specs = {k: get(k) for k in t["kpi"].unique()}
    v = values[values["kpi"].isin(specs)][["entity", "period", "kpi", "value"]]
    general = t[t["entity"].isna()] if "entity" in t.columns else t
    v = v.merge(general[["kpi", "target", "floor", "weight"]], on="kpi", how="left")
    if "entity" in t.columns:  # per-entity targets override the general ones
        own = t[t["entity"].notna()].rename(columns=lambda c: c if c in ("kpi", "entity") else f"{c}_own")
        v = v.merge(own, on=["kpi", "entity"], how="left")
        for c in ("target", "floor", "weight"):
            v[c] = v[f"{c}_own"].where(v[f"{c}_own"].notna(), v[c])
        v = v.drop(columns=[f"{c}_own" for c in ("target", "floor", "weight")])
    v["pillar"] = v["kpi"].map({k: s.pillar for k, s in specs.items()})
    direction = v["kpi"].map({k: s.direction for k, s in specs.items()})
    v["floor"] = _floors(v["kpi"], v["target"], v["floor"], direction)
    v["score"] = _normalise(v["value"], v["target"], v["floor"], direction)
    v["rag"] = rag(v["score"], bands)

    # pillars: weighted mean of KPI scores
    scored = v[v["score"].notna()].assign(ws=lambda d: d["score"] * d["weight"])
    p = scored.groupby(["entity", "period", "pillar"], observed=True).agg(
        ws=("ws", "sum"), w=("weight", "sum"), kpis=("kpi", "count")
    ).reset_index()
    p["score"] = p["ws"] / p["w"].where(p["w"] > 0)
    p = p.drop(columns=["ws", "w"])

    # pillar weights
    grid = v[["entity", "period"]].drop_duplicates()
    if isinstance(weights, str) and weights == "tenure":
        tw = _tenure(grid, data, by)
        w = tenure_weights(tw["tenure_months"]).drop(columns="tenure_months")
        wt = pd.concat([tw.reset_index(drop=True), w.reset_index(drop=True)], axis=1)
    else:
        if isinstance(weights, str) and weights == "equal":
            fixed = dict.fromkeys(R_PILLARS, 1.0)
        elif isinstance(weights, Mapping):
            bad = set(weights) - set(R_PILLARS)
            if bad:
                raise ParameterError(f"weights: unknown pillar(s) {', '.join(sorted(bad))}; use {', '.join(R_PILLARS)}.")
            fixed = {k: float(weights.get(k, 0.0)) for k in R_PILLARS}
        else:
            raise ParameterError("weights must be 'tenure', 'equal' or a mapping of pillar to weight.")
        total = sum(fixed.values())
        if total <= 0 or min(fixed.values()) < 0:
            raise ParameterError("weights must not be negative nor all zero.")
        fixed = {k: 100 * w / total for k, w in fixed.items()}  # percent, as the tenure weights
        wt = grid.assign(tenure_months=pd.NA, band="fixed", **fixed)
    long_w = wt.melt(id_vars=["entity", "period", "tenure_months", "band"], value_vars=list(R_PILLARS),
                     var_name="pillar", value_name="weight")
    p = p.merge(long_w[["entity", "period", "pillar", "weight"]], on=["entity", "period", "pillar"], how="left")
    p["weight"] = p["weight"].astype("float64").fillna(0.0)  # learning: shown beside, weight 0
    p["rag"] = rag(p["score"], bands)

    # overall: weights renormalised over the R pillars that have a score
    r = p[p["pillar"].isin(R_PILLARS) & p["score"].notna()]
    o = r.assign(ws=r["score"] * r["weight"]).groupby(["entity", "period"], observed=True).agg(
        ws=("ws", "sum"), w=("weight", "sum")
    ).reset_index()
    o["score"] = o["ws"] / o["w"].where(o["w"] > 0)
    o = grid.merge(o[["entity", "period", "score"]], on=["entity", "period"], how="left")
    o["rag"] = rag(o["score"], bands)
    if rule == "any_red":
        red = v[v["rag"] == "red"][["entity", "period"]].drop_duplicates().assign(_red=True)
        o = o.merge(red, on=["entity", "period"], how="left")
        o.loc[o["_red"].fillna(False).astype(bool), "rag"] = "red"
        o = o.drop(columns="_red")
    prev = o[["entity", "period", "score"]].assign(period=o["period"] + 1).rename(columns={"score": "prev"})
    o = o.merge(prev, on=["entity", "period"], how="left")
    o["trend"] = o["score"] - o["prev"]
    o = o.drop(columns="prev").merge(wt[["entity", "period", "tenure_months", "band"]], on=["entity", "period"], how="left")
    o = o.sort_values(["entity", "period"]).reset_index(drop=True)

    kcols = ["entity", "period", "kpi", "pillar", "value", "target", "floor", "score", "rag"]
    pcols = ["entity", "period", "pillar", "score", "rag", "weight", "kpis"]
    return Scorecard(
        kpis=v[kcols].sort_values(["entity", "period", "kpi"]).reset_index(drop=True),
        pillars=p[pcols].sort_values(["entity", "period", "pillar"]).reset_index(drop=True),
        overall=o[["entity", "period", "score", "rag", "trend", "tenure_months", "band"]],
        bands=dict(bands),
    )


# --------------------------------------------------------------------------- KPI set checks


def check_kpi_set(kpis, *, manager: bool = False, max_kpis: int = 10) -> list[str]:
    """Warn where a KPI set breaks what makes a good KAM KPI programme.

    A good set is small (the vital few), covers every 3R+1 pillar, balances
    leading (activity) and lagging (result) measures, and, on a manager's
    scorecard, holds only what the manager can control.

    Parameters
    ----------
    kpis : list of str
        KPI keys.
    manager : bool
        The set is for an account manager's own scorecard: flag measures
        outside the manager's control.
    max_kpis : int
        More KPIs than this dilute focus (default 10).

    Returns
    -------
    list of str
        One message per problem (also issued as :class:`KpiSetWarning`);
        empty when the set is sound.

    Examples
    --------
    >>> import kamtools as kt
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     kt.check_kpi_set(["revenue", "nps"])
    ['No KPI for the pillar(s) relationships, learning: a 3R+1 scorecard covers all four.', 'Only lagging measures (results): add leading measures (activities) that drive them.']
    """
    from kamtools.kpi import get

    keys = [kpis] if isinstance(kpis, str) else list(kpis)
    specs = [get(k) for k in keys]
    out = []
    if len(specs) > max_kpis:
        out.append(f"{len(specs)} KPIs: more than {max_kpis} dilutes focus; keep the vital few.")
    missing = [p for p in ("relationships", "revenue", "retention", "learning") if p not in {s.pillar for s in specs}]
    if missing:
        out.append(f"No KPI for the pillar(s) {', '.join(missing)}: a 3R+1 scorecard covers all four.")
    if specs and all(s.timing == "lagging" for s in specs):
        out.append("Only lagging measures (results): add leading measures (activities) that drive them.")
    if manager:
        outside = [s.key for s in specs if not s.controllable]
        if outside:
            out.append(
                f"Outside the manager's control: {', '.join(outside)}. Judge managers on what they can influence."
            )
    for msg in out:
        warnings.warn(msg, KpiSetWarning, stacklevel=2)
    return out


# --------------------------------------------------------------------------- does the score predict?


@dataclass
class Backtest:
    """What :func:`backtest` returns.

    Attributes
    ----------
    auc : float
        Probability that an account lost within the horizon had a lower score
        than one that stayed (0.5: no better than chance).
    auc_ci : tuple of float
        Cluster-bootstrap percentile interval (accounts resampled).
    lift : DataFrame
        By score band: n, events, rate, rate_low, rate_high (Wilson interval),
        lift (rate / overall rate).
    weights : dict or None
        Pillar weights (percent) fitted by logistic regression, where the
        scorecard has pillar scores.
    model : statsmodels results or None
        The fitted Logit (standard errors clustered by account).
    n, events : int
        Account-periods evaluated, and how many of them ended in a loss.
    """

    auc: float
    auc_ci: tuple[float, float]
    lift: pd.DataFrame
    weights: dict | None
    model: object
    n: int
    events: int
    horizon: str

    def __repr__(self) -> str:
        lo, hi = self.auc_ci
        w = "" if self.weights is None else ", fitted weights " + ", ".join(f"{k} {v:.0f}" for k, v in self.weights.items())
        return (f"Backtest(AUC {self.auc:.3f} [{lo:.3f}, {hi:.3f}], {self.events} losses in {self.n} "
                f"account-periods, horizon {self.horizon}{w})")

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(repr(self))}</p>" + self.lift.to_html(float_format=lambda x: f"{x:.3f}")


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    """AUC of a low score predicting y=1 (Mann-Whitney, ties counted half)."""
    from scipy.stats import rankdata

    n1 = y.sum()
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return np.nan
    ranks = rankdata(-score)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _wilson(k, n, alpha):
    from scipy.stats import norm

    z = norm.ppf(1 - alpha / 2)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def backtest(
    card: Scorecard,
    data,
    *,
    horizon: str = "365D",
    churn: str = "inactivity",
    inactivity_days: int = 365,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Backtest:
    """How well does the overall score rank accounts that are later lost?

    Each account-period of the scorecard is an observation: the overall score
    at the period's end, and whether the account was lost within ``horizon``
    after it (see :func:`kamtools.retention.durations` for ``churn``). Only
    periods whose whole horizon is observed count; accounts already lost are
    left out.

    Parameters
    ----------
    card : Scorecard
        A scorecard by account.
    data : KamData
    horizon : str
        A pandas Timedelta string, e.g. ``"365D"``.
    churn, inactivity_days
        How a loss is defined.
    n_boot : int
        Bootstrap draws for the AUC interval (accounts are resampled, since
        periods of one account are not independent).
    alpha : float
        1 - confidence level.
    seed : int

    Returns
    -------
    Backtest
        AUC with its interval, lift by RAG band with Wilson intervals, and
        pillar weights fitted by logistic regression as an alternative to hand
        weights.

    Notes
    -----
    The fitted weights are the negated Logit coefficients of the pillar scores
    (per score point), clipped at zero and scaled to 100; they are estimated
    in-sample, so judge them on a later period before adopting them.
    """
    from kamtools.io import load
    from kamtools.retention import durations

    data = load(data)
    try:
        h = pd.Timedelta(horizon)
    except ValueError as err:
        raise ParameterError(f"horizon={horizon!r} is not a duration; write e.g. '365D'.") from err
    d = durations(data, churn=churn, inactivity_days=inactivity_days).set_index("account_id")
    last_known = data.transactions["date"].max() - (pd.Timedelta(days=inactivity_days) if churn == "inactivity" else pd.Timedelta(0))
    o = card.overall[card.overall["score"].notna()].copy()
    o["t"] = o["period"].dt.end_time.dt.normalize()
    o["start"] = o["entity"].map(d["start"])
    o["lost"] = o["entity"].map(d["end"].where(d["event"]))
    o = o[(o["start"] <= o["t"]) & (o["lost"].isna() | (o["lost"] > o["t"])) & (o["t"] + h <= last_known)]
    if o.empty:
        raise ParameterError(
            f"No scored account-period has its whole horizon ({horizon}) observed. Use a shorter horizon or "
            "score earlier periods."
        )
    o["y"] = (o["lost"].notna() & (o["lost"] <= o["t"] + h)).astype(int)
    y, score = o["y"].to_numpy(), o["score"].to_numpy()
    auc = _auc(score, y)
    rng = np.random.default_rng(seed)
    groups = o.groupby("entity").indices
    ids = list(groups)
    boots = []
    for _ in range(n_boot):
        take = np.concatenate([groups[ids[i]] for i in rng.integers(0, len(ids), len(ids))])
        boots.append(_auc(score[take], y[take]))
    lo, hi = np.nanpercentile(boots, [100 * alpha / 2, 100 * (1 - alpha / 2)])

    lift = o.groupby("rag", observed=True)["y"].agg(n="count", events="sum").reindex(list(RAG)).dropna()
    lift["rate"] = lift["events"] / lift["n"]
    lift["rate_low"], lift["rate_high"] = _wilson(lift["events"], lift["n"], alpha)
    lift["lift"] = lift["rate"] / y.mean()
    lift.index.name = "band"

    weights, model = None, None
    wide = card.pillars[card.pillars["pillar"].isin(R_PILLARS)].pivot_table(
        index=["entity", "period"], columns="pillar", values="score"
    )
    cols = [c for c in R_PILLARS if c in wide.columns]
    obs = o.set_index(["entity", "period"])[["y"]].join(wide[cols], how="inner").dropna()
    if cols and obs["y"].nunique() == 2 and len(obs) > 10 * (len(cols) + 1):
        import statsmodels.api as sm

        groups_codes = pd.factorize(obs.index.get_level_values("entity"))[0]
        model = sm.Logit(obs["y"], sm.add_constant(obs[cols])).fit(
            disp=0, cov_type="cluster", cov_kwds={"groups": groups_codes}
        )
        raw = (-model.params[cols]).clip(lower=0)
        if raw.sum() > 0:
            weights = (100 * raw / raw.sum()).round(1).to_dict()
    return Backtest(
        auc=auc, auc_ci=(float(lo), float(hi)), lift=lift, weights=weights, model=model,
        n=len(o), events=int(y.sum()), horizon=horizon,
    )


scorecard.backtest = backtest
scorecard.check_kpi_set = check_kpi_set
scorecard.tenure_weights = tenure_weights
