"""Retention pillar: will the account stay, and how satisfied is it.

Three families of measures:

- whether accounts stay: ``churn_rate`` and ``retention_rate`` (from buying
  behaviour), ``contract_churn_rate``, ``contract_renewal_rate``,
  ``contract_length_change``, ``net_revenue_retention`` and
  ``gross_revenue_retention``;
- how the customer feels about us: ``nps``, ``csat``,
  ``preferred_supplier_share``, ``supplier_consolidation_rate``,
  ``competitive_win_rate``;
- early warnings and service: ``defection_risk`` (a transparent points rule,
  see :data:`DEFECTION_POINTS` and :func:`defection_signals`),
  ``issue_resolution_time`` and ``response_time``.

Rates are returned per account as a numerator and a denominator, so a group's
value is the rate of its pooled accounts (portfolio churn = accounts lost /
accounts at the start). What is known at ``as_of`` is all a KPI uses: a
contract that ends after it has no outcome yet, a ticket answered after it has
no response time yet.

Examples
--------
>>> import kamtools as kt
>>> kt.kpis(pillar="retention").loc["nps", "unit"]
'NPS points'
>>> sum(DEFECTION_POINTS.values())
100
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from kamtools.kpi._context import ACTIVE_WINDOW_DAYS, positive
from kamtools.kpi._registry import register
from kamtools.periods import months_between

__all__ = ["DEFECTION_POINTS", "NPS_MAX_AGE_DAYS", "RENEWAL_MATCH_DAYS", "defection_signals"]

_kpi = partial(register, _builtin=True, pillar="retention")

_DAY = pd.Timedelta(days=1)
_ENDED = ("renewed", "renewed_after_rebid", "lapsed")
_RENEWED = ("renewed", "renewed_after_rebid")
_SEVERE = ("high", "critical")

#: Points of the customer defection risk score, by warning signal (they add up to 100).
DEFECTION_POINTS = {
    "nps_detractor": 25,  # the latest NPS answer of the last 365 days is 0-6
    "revenue_falling": 20,  # revenue below the previous period's (which was positive)
    "no_attended_interaction": 20,  # no interaction with attended=True in the period
    "open_severe_ticket": 15,  # a high or critical ticket still open at the period end
    "no_executive_meeting": 20,  # no attended executive_meeting in this and the previous period
}

#: An NPS answer older than this at the period end no longer counts as a defection signal.
NPS_MAX_AGE_DAYS = 365

#: A renewed contract's successor starts within this many days of the day after its end.
RENEWAL_MATCH_DAYS = 92


# --------------------------------------------------------------------------- helpers


def _horizon(ctx) -> pd.Timestamp:
    """First instant after the as-of day (rows before it are known)."""
    return ctx.as_of + _DAY


def _complete(ctx, period: pd.Series) -> pd.Series:
    """The period has ended by the as-of date."""
    return ctx.period_end(period) <= ctx.as_of


def _blank_unfinished(frame: pd.DataFrame, final: pd.Series) -> pd.DataFrame:
    """Keep the rows of periods that are not final, but without a value."""
    return frame.assign(
        num=frame["num"].where(final.to_numpy()),
        den=frame["den"].where(final.to_numpy()),
    )


def _expand(ids: pd.Series, first: np.ndarray, last: np.ndarray, freq) -> pd.DataFrame:
    """One row per id and period from ``first`` to ``last`` (period ordinals, inclusive)."""
    n = (last - first + 1).clip(min=0)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    return pd.DataFrame(
        {
            "account_id": pd.Index(ids).repeat(n),
            "period": pd.PeriodIndex.from_ordinals(np.repeat(first, n) + offsets, freq=freq),
        }
    )


def _sum_before(events: pd.DataFrame, value: str, account: pd.Series, at: pd.Series) -> np.ndarray:
    """For each (account, at), the sum of ``events[value]`` of the account dated strictly before ``at``.

    Vectorised with cumulative sums and an as-of merge, so a window sum is
    ``_sum_before(.., hi) - _sum_before(.., lo)``.
    """
    ev = events.groupby(["account_id", "date"], observed=True, as_index=False, sort=True)[value].sum()
    ev["cum"] = ev.groupby("account_id", observed=True)[value].cumsum().astype("float64")
    ev = ev.assign(date=ev["date"].astype("datetime64[ns]")).sort_values("date", kind="stable")
    left = pd.DataFrame(
        {
            "account_id": account.reset_index(drop=True),
            "at": pd.Series(at).reset_index(drop=True).astype("datetime64[ns]"),
            "row": np.arange(len(at)),
        }
    ).sort_values("at", kind="stable")
    m = pd.merge_asof(
        left, ev[["account_id", "date", "cum"]], left_on="at", right_on="date", by="account_id",
        direction="backward", allow_exact_matches=False,
    )
    return m.set_index("row")["cum"].reindex(np.arange(len(at))).fillna(0.0).to_numpy()


def _windows(ctx, period: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Upper bound ``hi`` (exclusive) and the starts of the one- and two-period windows ending there.

    ``hi`` is the day after the period's last day, or after the as-of date for
    the period still running; the windows are a period long (two periods long),
    so for an ended period the one-period window is the calendar period itself.
    """
    last = ctx.period_end(period).clip(upper=ctx.as_of)
    hi = (last + _DAY).astype("datetime64[ns]")
    n = ctx.months_per_period
    lo1 = (hi - pd.DateOffset(months=n)).astype("datetime64[ns]")
    lo2 = (hi - pd.DateOffset(months=2 * n)).astype("datetime64[ns]")
    return hi, lo1, lo2


# --------------------------------------------------------------------------- staying or leaving


def _inactivity_churn(ctx) -> pd.DataFrame:
    """account_id, period, num (1 lost, 0 not), den (1); both NaN in periods not final yet."""
    tx = ctx.table("transactions")
    span = tx.groupby("account_id", observed=True).agg(first=("date", "min"), last=("last_date", "max")).reset_index()
    grid = ctx.active.merge(span, on="account_id", how="inner")
    grid = grid[grid["period"] > ctx.period(grid["first"])]  # a customer before the period began
    # decided: the last invoice day is at least ACTIVE_WINDOW_DAYS before as_of (days after it all seen)
    cutoff = ctx.as_of - pd.Timedelta(days=ACTIVE_WINDOW_DAYS)
    lost = ctx.period(grid["last"]).eq(grid["period"]) & (grid["last"].dt.normalize() <= cutoff)
    final = ctx.period_end(grid["period"]) <= cutoff
    out = grid[["account_id", "period"]].assign(num=lost.astype("float64"), den=1.0)
    return _blank_unfinished(out, final)


_CHURN_RULE = (
    "An account is lost in the period of its last invoice line (any line, credit notes included, as for "
    "the active-customer grid) when that line is at least "
    f"{ACTIVE_WINDOW_DAYS} days before as_of and nothing was bought since; an account that buys again after "
    "a long gap is not lost. The base is the accounts active in the period (first to last invoice) that were already "
    "customers before it began (first invoice in an earlier period), so a customer won and lost in the "
    "same period counts in neither. A period is final, and gets a value, only once its last day is at "
    f"least {ACTIVE_WINDOW_DAYS} days before as_of (a year-end as_of makes the year before final): until then an account that has not bought since cannot "
    "be told from one between orders, and a provisional rate would understate churn. Later periods are "
    "reported without a value; use contract_churn_rate or defection_risk for recent periods."
)


@_kpi(
    "churn_rate", name="Churn rate", category="retention", level="customer", timing="lagging", driver="relational",
    definition="Share of the accounts that were customers at the start of the period and stopped buying in it. "
    + _CHURN_RULE,
    formula="accounts lost in the period / accounts active in the period whose first invoice is in an earlier "
    f"period; lost = last invoice in the period and no invoice in the {ACTIVE_WINDOW_DAYS} days or more "
    f"after it; missing until the period ended at least {ACTIVE_WINDOW_DAYS} days before as_of",
    unit="share", direction="lower", tables=("transactions",), provider="customer", cadence="Y",
)
def churn_rate(ctx):
    return _inactivity_churn(ctx)


@_kpi(
    "retention_rate", name="Retention rate", category="retention", level="customer", timing="lagging",
    driver="relational",
    definition="Share of the accounts that were customers at the start of the period and were still buying "
    "after it: the complement of churn_rate over the same base. " + _CHURN_RULE,
    formula="(accounts at the start - accounts lost in the period) / accounts at the start = 1 - churn_rate, "
    "same base, same rule for lost accounts and final periods",
    unit="share", direction="higher", tables=("transactions",), provider="customer", cadence="Y",
)
def retention_rate(ctx):
    out = _inactivity_churn(ctx)
    return out.assign(num=out["den"] - out["num"])


@_kpi(
    "contract_churn_rate", name="Contract churn rate", category="retention", level="customer", timing="lagging",
    driver="relational",
    definition="Share of the accounts under contract at the start of the period whose last contract lapsed in "
    "the period. An account is lost on the end date of a contract with outcome 'lapsed' when none of its "
    "contracts (started by as_of) runs past that date: a parallel contract still in force, one open-ended or "
    "ending after as_of, or a later contract that wins the account back keeps it. The base is the accounts "
    "with a contract covering the first day of the period (start <= first day <= end). A contract ending "
    "after as_of has no outcome yet. The period still running at as_of has no value (lapses to come).",
    formula="accounts whose last contract lapsed in the period / accounts with a contract in force on the "
    "period's first day; missing for a period not ended by as_of",
    unit="share", direction="lower", tables=("contracts",), columns=("contracts.end", "contracts.outcome"),
    provider="supplier", cadence="Q",
)
def contract_churn_rate(ctx):
    c = ctx.table("contracts")
    horizon = _horizon(ctx)
    freq = ctx.periods.freq
    # accounts in force at the start of each period: start <= first day of the period <= end
    p0 = ctx.period(c["start"])
    first = pd.PeriodIndex(p0).asi8 + (c["start"] > p0.dt.start_time).to_numpy()
    running = c["end"].isna() | (c["end"] >= horizon)
    last = pd.PeriodIndex(ctx.period(c["end"].where(~running, ctx.as_of))).asi8
    first = first.clip(min=ctx.periods[0].ordinal)
    last = last.clip(max=ctx.periods[-1].ordinal)
    base = _expand(c["account_id"], first, last, freq).drop_duplicates(ignore_index=True)
    # lost: a lapsed contract ends on the account's last known end, and nothing runs past it
    ended_at = c["end"].where(~running)
    last_end = ended_at.groupby(c["account_id"]).max()
    still = running.groupby(c["account_id"]).any()
    lapsed = c[c["outcome"].eq("lapsed").fillna(False).to_numpy() & ~running.to_numpy()]
    keep = lapsed["end"].eq(lapsed["account_id"].map(last_end)) & ~lapsed["account_id"].map(still).astype(bool)
    lost = lapsed[keep.to_numpy()]
    lost = pd.DataFrame({"account_id": lost["account_id"], "period": ctx.period(lost["end"]), "num": 1.0})
    lost = lost.drop_duplicates(["account_id", "period"])
    out = base.merge(lost, on=["account_id", "period"], how="left").assign(den=1.0)
    out["num"] = out["num"].fillna(0.0)
    return _blank_unfinished(out, _complete(ctx, out["period"]))


def _ended_contracts(ctx) -> pd.DataFrame:
    """Contracts whose term ended by as_of with a final outcome, placed in the period of their end."""
    c = ctx.table("contracts")
    ok = c["end"].notna() & (c["end"] < _horizon(ctx)) & c["outcome"].isin(_ENDED).fillna(False)
    c = c[ok.to_numpy()]
    return c.assign(period=ctx.period(c["end"]))


@_kpi(
    "contract_renewal_rate", name="Contract renewal rate", category="retention", level="customer",
    timing="lagging", driver="relational",
    definition="Share of the contracts whose term ended in the period that were renewed without a rebid. "
    "Terms ending after as_of are not counted (their outcome is not known yet), nor terms still marked "
    "'active' or without an outcome.",
    formula="contracts with outcome 'renewed' / contracts ending in the period with outcome 'renewed', "
    "'renewed_after_rebid' or 'lapsed' (period of contracts.end)",
    unit="share", direction="higher", tables=("contracts",), columns=("contracts.end", "contracts.outcome"),
    provider="supplier", cadence="Q",
)
def contract_renewal_rate(ctx):
    c = _ended_contracts(ctx)
    return ctx.per_account(c.assign(renewed=c["outcome"].eq("renewed").astype("float64")), "renewed", how="mean")


@_kpi(
    "contract_length_change", name="Contract length change", category="retention", level="customer",
    timing="lagging", driver="relational",
    definition="Average change of the term of a renewed contract against the term it replaced, in months, "
    "in the period the old term ended. A renewal ('renewed' or 'renewed_after_rebid', ended by as_of) is "
    "matched to the account's contract that starts later than it and closest to the day after its end, "
    f"within {RENEWAL_MATCH_DAYS} days either side; renewals without such a successor, or with an "
    "open-ended one, are left out. A term is the whole calendar months from its start to the day after "
    "its end (2022-01-01 to 2024-12-31 is 36).",
    formula="mean over renewals of (term of the new contract - term of the renewed contract), months; "
    "groups average over their renewals",
    unit="months", direction="higher", tables=("contracts",), columns=("contracts.end", "contracts.outcome"),
    provider="supplier", cadence="Y",
)
def contract_length_change(ctx):
    c = ctx.table("contracts")
    old = _ended_contracts(ctx)
    old = old[old["outcome"].isin(_RENEWED).to_numpy()]
    pairs = old[["contract_id", "account_id", "start", "end", "period"]].merge(
        c[["contract_id", "account_id", "start", "end"]], on="account_id", suffixes=("", "_new")
    )
    gap = (pairs["start_new"] - (pairs["end"] + _DAY)).abs()
    pairs = pairs[(pairs["start_new"] > pairs["start"]) & (gap <= pd.Timedelta(days=RENEWAL_MATCH_DAYS))]
    pairs = (
        pairs.assign(gap=gap)
        .sort_values(["contract_id", "gap", "start_new", "contract_id_new"], kind="stable")
        .drop_duplicates("contract_id")
    )
    pairs = pairs[pairs["end_new"].notna()]
    term_old = months_between(pairs["start"], pairs["end"] + _DAY).astype("float64")
    term_new = months_between(pairs["start_new"], pairs["end_new"] + _DAY).astype("float64")
    return ctx.per_account(pairs.assign(change=term_new - term_old), "change", how="mean")


def _revenue_retention(ctx, *, capped: bool) -> pd.DataFrame:
    rev = ctx.per_account(ctx.table("transactions"), "revenue")
    prev = rev.assign(period=rev["period"] + 1).rename(columns={"num": "den"})
    prev = prev[positive(prev["den"])]
    out = prev.merge(rev, on=["account_id", "period"], how="left")
    out["num"] = out["num"].fillna(0.0)
    if capped:
        out["num"] = out["num"].clip(upper=out["den"])
    return _blank_unfinished(out[["account_id", "period", "num", "den"]], _complete(ctx, out["period"]))


_NRR_NOTE = (
    "Customers of the previous period are the accounts with positive revenue in it; revenue is net of credit "
    "notes (a net credit counts negative). The period still running at as_of has no value (its revenue is "
    "incomplete)."
)


@_kpi(
    "net_revenue_retention", name="Net revenue retention (NRR)", category="retention", level="customer",
    timing="lagging", driver="financial",
    definition="Revenue in the period from the accounts that were customers in the previous period, against "
    "their revenue in the previous period: expansion, contraction and churn, without new accounts. "
    + _NRR_NOTE,
    formula="sum over accounts with revenue_(t-1) > 0 of revenue_t / sum of their revenue_(t-1); "
    "per account num = revenue_t, den = revenue_(t-1)",
    unit="share", direction="higher", tables=("transactions",), provider="customer", cadence="Q",
)
def net_revenue_retention(ctx):
    return _revenue_retention(ctx, capped=False)


@_kpi(
    "gross_revenue_retention", name="Gross revenue retention (GRR)", category="retention", level="customer",
    timing="lagging", driver="financial",
    definition="As net_revenue_retention, but each account's revenue is capped at its previous-period level, "
    "so growth cannot hide losses: only contraction and churn show (at most 1). " + _NRR_NOTE,
    formula="sum over accounts with revenue_(t-1) > 0 of min(revenue_t, revenue_(t-1)) / sum of their "
    "revenue_(t-1); per account num = min(revenue_t, revenue_(t-1)), den = revenue_(t-1)",
    unit="share", direction="higher", tables=("transactions",), provider="customer", cadence="Q",
)
def gross_revenue_retention(ctx):
    return _revenue_retention(ctx, capped=True)


# --------------------------------------------------------------------------- how the customer sees us


@_kpi(
    "nps", name="Net Promoter Score (NPS)", category="customer_satisfaction", level="customer", timing="lagging",
    driver="relational",
    definition="Promoters (9-10) minus detractors (0-6) as a share of the NPS answers given in the period, "
    "in points from -100 to 100. Groups pool the answers, so an account that answers more often weighs more.",
    formula="100 * (answers 9-10 - answers 0-6) / answers (surveys.nps not empty)",
    unit="NPS points", direction="higher", tables=("surveys",), columns=("surveys.nps",),
    provider="customer", cadence="Q",
)
def nps(ctx):
    s = ctx.table("surveys")
    s = s[s["nps"].notna().to_numpy()]
    score = s["nps"].astype("float64")
    net = 100.0 * ((score >= 9).astype("float64") - (score <= 6).astype("float64"))
    return ctx.per_account(s.assign(net=net), "net", how="mean")


@_kpi(
    "csat", name="Customer satisfaction (CSAT)", category="customer_satisfaction", level="customer",
    timing="lagging", driver="relational",
    definition="Mean satisfaction score (1-5) of the answers given in the period; groups pool the answers.",
    formula="sum of surveys.csat / number of answers with a csat score",
    unit="score 1-5", direction="higher", tables=("surveys",), columns=("surveys.csat",),
    provider="customer", cadence="Q",
)
def csat(ctx):
    s = ctx.table("surveys")
    s = s[s["csat"].notna().to_numpy()]
    return ctx.per_account(s.assign(csat=s["csat"].astype("float64")), "csat", how="mean")


@_kpi(
    "preferred_supplier_share", name="Designation as preferred supplier", category="retention", level="customer",
    timing="lagging", driver="relational",
    definition="Share of the active accounts that designate us as preferred supplier. The data holds the "
    "designation as it is today (accounts.preferred_supplier, no history), so every period shows the same "
    "status for an account; periods differ only by which accounts are active. Accounts whose status is "
    "unknown are left out.",
    formula="active accounts with preferred_supplier true / active accounts with preferred_supplier known",
    unit="share", direction="higher", tables=("accounts",), columns=("accounts.preferred_supplier",),
    provider="customer", cadence="Y",
)
def preferred_supplier_share(ctx):
    acc = ctx.accounts[["account_id", "preferred_supplier"]]
    acc = acc[acc["preferred_supplier"].notna().to_numpy()]
    out = ctx.active.merge(acc, on="account_id", how="inner")
    return out.assign(num=out["preferred_supplier"].astype("float64"), den=1.0)[["account_id", "period", "num", "den"]]


@_kpi(
    "supplier_consolidation_rate", name="Supplier consolidation rate", category="retention", level="customer",
    timing="lagging", driver="relational",
    definition="How far the customer cut the number of suppliers it uses in our category, as it reports in "
    "surveys: the account's last report in the period against its last report before the period (however "
    "old), as a share of the earlier count. 4 -> 3 suppliers is 0.25; an increase is negative. Accounts "
    "without an earlier report are left out; groups pool the supplier counts.",
    formula="(suppliers at the last earlier report - suppliers at the last report in the period) / suppliers "
    "at the last earlier report; per account num = the fall, den = the earlier count",
    unit="share", direction="higher", tables=("surveys",), columns=("surveys.suppliers",),
    provider="customer", cadence="Y",
)
def supplier_consolidation_rate(ctx):
    s = ctx.table("surveys")
    s = s[s["suppliers"].notna().to_numpy()].sort_values(["account_id", "date"], kind="stable")
    last = s.drop_duplicates(["account_id", "period"], keep="last")
    now = last["suppliers"].astype("float64")
    before = now.groupby(last["account_id"].to_numpy()).shift(1)
    out = pd.DataFrame({"account_id": last["account_id"], "period": last["period"], "num": before - now, "den": before})
    return out[out["den"].notna().to_numpy()]


@_kpi(
    "competitive_win_rate", name="Win rate against competitors", category="market_penetration", level="supplier",
    timing="lagging", driver="process",
    definition="Competitor activity monitoring: the share of the opportunities decided in the period with a "
    "named competitor (opportunities.competitor not empty) that we won - how well we answer competitive "
    "threats at the account. Opportunities without a named competitor, still open, or closed after as_of "
    "are not counted.",
    formula="opportunities won / opportunities won or lost, among those with a competitor, by period of "
    "opportunities.closed",
    unit="share", direction="higher", tables=("opportunities",),
    columns=("opportunities.competitor", "opportunities.closed"), provider="supplier", cadence="Q",
)
def competitive_win_rate(ctx):
    o = ctx.table("opportunities")
    named = o["competitor"].notna() & o["competitor"].astype("str").str.strip().ne("")
    decided = o["status"].isin(("won", "lost")) & o["closed"].notna() & (o["closed"] < _horizon(ctx))
    o = o[(named & decided).to_numpy()]
    o = o.assign(period=ctx.period(o["closed"]), won=o["status"].eq("won").astype("float64"))
    return ctx.per_account(o, "won", how="mean")


# --------------------------------------------------------------------------- early warning and service


def defection_signals(ctx) -> pd.DataFrame:
    """The warning signals behind ``defection_risk``, per active account and period.

    Each signal is judged at the end of the period (at ``as_of`` for the
    period still running) from what is known then, over windows one period
    long (two for the executive meeting) that end there: for an ended period
    the window is the calendar period; for the running one it is the last
    period-length up to ``as_of``, so a half-finished quarter is not judged
    on half a quarter of revenue and meetings.

    Parameters
    ----------
    ctx : kamtools.kpi.Context

    Returns
    -------
    DataFrame
        ``account_id``, ``period``, one boolean column per key of
        :data:`DEFECTION_POINTS` (True: the warning applies) and ``score``,
        the sum of the points of the warnings that apply (0-100).
    """
    grid = ctx.active[["account_id", "period"]].reset_index(drop=True)
    acc = grid["account_id"]
    hi, lo1, lo2 = _windows(ctx, grid["period"])

    # latest NPS answer before the end, if at most NPS_MAX_AGE_DAYS old
    s = ctx.table("surveys")
    s = s[s["nps"].notna().to_numpy()]
    s = pd.DataFrame({"account_id": s["account_id"], "date": s["date"].astype("datetime64[ns]"),
                      "nps": s["nps"].astype("float64")}).sort_values("date", kind="stable")
    left = pd.DataFrame({"account_id": acc, "hi": hi, "row": np.arange(len(grid))}).sort_values("hi", kind="stable")
    latest = pd.merge_asof(
        left, s, left_on="hi", right_on="date", by="account_id", direction="backward",
        allow_exact_matches=False, tolerance=pd.Timedelta(days=NPS_MAX_AGE_DAYS),
    ).set_index("row")["nps"].reindex(np.arange(len(grid)))

    tx = ctx.table("transactions")
    rev_now = _sum_before(tx, "revenue", acc, hi) - _sum_before(tx, "revenue", acc, lo1)
    rev_before = _sum_before(tx, "revenue", acc, lo1) - _sum_before(tx, "revenue", acc, lo2)

    it = ctx.table("interactions")
    # the catalogue's one rule (Context.took_place): attendance not recorded counts as taken place
    attended = it["attended"].fillna(True).astype(bool) if "attended" in it.columns else pd.Series(True, index=it.index)
    it = it.assign(n=attended.astype("float64"),
                   x=(attended & it["kind"].eq("executive_meeting").fillna(False)).astype("float64"))
    met = _sum_before(it, "n", acc, hi) - _sum_before(it, "n", acc, lo1)
    exec_met = _sum_before(it, "x", acc, hi) - _sum_before(it, "x", acc, lo2)

    tk = ctx.table("tickets")
    tk = tk[tk["severity"].isin(_SEVERE).fillna(False).to_numpy()]
    opened = tk.assign(date=tk["opened"], n=1.0)
    closed = tk[tk["resolved"].notna().to_numpy()]
    closed = closed.assign(date=closed["resolved"], n=1.0)
    still_open = _sum_before(opened, "n", acc, hi) - _sum_before(closed, "n", acc, hi)

    out = grid.assign(
        nps_detractor=(latest <= 6).to_numpy(),
        revenue_falling=positive(rev_before) & positive(rev_before - rev_now),  # equal is not falling
        no_attended_interaction=met == 0,
        open_severe_ticket=still_open > 0,
        no_executive_meeting=exec_met == 0,
    )
    out["score"] = sum(out[k].astype("float64") * p for k, p in DEFECTION_POINTS.items())
    return out


@_kpi(
    "defection_risk", name="Customer defection risk", category="retention", level="customer", timing="leading",
    driver="relational",
    definition="A rule-based warning score from 0 (no warning) to 100 per active account and period, from "
    "signals known at the period end (at as_of for the period still running): the latest NPS answer of "
    f"the last {NPS_MAX_AGE_DAYS} days is a detractor (0-6): {DEFECTION_POINTS['nps_detractor']} points; "
    "revenue in the period below the previous period's, which was positive: "
    f"{DEFECTION_POINTS['revenue_falling']}; no interaction with attended=true in the period: "
    f"{DEFECTION_POINTS['no_attended_interaction']}; a high or critical ticket still open at the period end: "
    f"{DEFECTION_POINTS['open_severe_ticket']}; no attended executive_meeting in this and the previous "
    f"period: {DEFECTION_POINTS['no_executive_meeting']}. Periods are windows ending at the period end, so "
    "the running period is judged on the last period-length up to as_of. Groups average the scores of "
    "their accounts. A warning count, not a probability of churn (that takes a fitted model); "
    "kamtools.kpi.retention.defection_signals shows which warnings fire.",
    formula="sum of the points of the warnings that apply (25 NPS detractor + 20 falling revenue + 20 no "
    "attended interaction + 15 open high/critical ticket + 20 no executive meeting in 2 periods); "
    "per account num = score, den = 1",
    unit="index", direction="lower", tables=("transactions", "surveys", "interactions", "tickets"),
    columns=("surveys.nps", "interactions.attended", "tickets.severity", "tickets.resolved"),
    provider="customer", cadence="M",
)
def defection_risk(ctx):
    out = defection_signals(ctx)
    return out.assign(num=out["score"], den=1.0)[["account_id", "period", "num", "den"]]


@_kpi(
    "issue_resolution_time", name="Issue resolution time", category="operational_efficiency", level="supplier",
    timing="leading", driver="process",
    definition="Mean time from opening to resolution of the service tickets resolved in the period, in days "
    "(fractions of a day from the time stamps). Tickets resolved after as_of are still open and not "
    "counted. Groups pool the tickets. Service teams, not the account manager, set most of it.",
    formula="sum of (tickets.resolved - tickets.opened) in days / tickets resolved in the period",
    unit="days", direction="lower", tables=("tickets",), columns=("tickets.resolved",),
    provider="supplier", cadence="M", controllable=False,
)
def issue_resolution_time(ctx):
    tk = ctx.table("tickets")
    tk = tk[(tk["resolved"].notna() & (tk["resolved"] < _horizon(ctx))).to_numpy()]
    tk = tk.assign(period=ctx.period(tk["resolved"]), days=(tk["resolved"] - tk["opened"]) / _DAY)
    return ctx.per_account(tk, "days", how="mean")


@_kpi(
    "response_time", name="Average response time", category="operational_efficiency", level="supplier",
    timing="leading", driver="process",
    definition="Mean time from opening a service ticket to our first response, in hours, over the tickets "
    "opened in the period that were answered by as_of (tickets not answered yet are left out, so a backlog "
    "shows only once it is answered). Groups pool the tickets. Service teams, not the account manager, set "
    "most of it.",
    formula="sum of (tickets.first_response - tickets.opened) in hours / tickets opened in the period and "
    "answered by as_of",
    unit="hours", direction="lower", tables=("tickets",), columns=("tickets.first_response",),
    provider="supplier", cadence="M", controllable=False,
)
def response_time(ctx):
    tk = ctx.table("tickets")
    tk = tk[(tk["first_response"].notna() & (tk["first_response"] < _horizon(ctx))).to_numpy()]
    tk = tk.assign(hours=(tk["first_response"] - tk["opened"]) / pd.Timedelta(hours=1))
    return ctx.per_account(tk, "hours", how="mean")
