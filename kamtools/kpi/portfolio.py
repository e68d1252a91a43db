"""Portfolio measures: coverage of the key accounts, dependency on the largest, price premium.

These look at the key-account portfolio as a whole: how much of it the team
actually manages, how much of the revenue hangs on a few accounts, and whether
key accounts pay for the extra attention they get (the value-capture risk of
KAM: investing in an account without being able to charge a premium).

- An account is a *key account in a period* when ``accounts.is_key_account``
  is true and it entered the programme (``kam_start``) by the period's end;
  without a ``kam_start`` it counts from the start.
- An interaction *took place* unless ``attended`` is false, as in the
  relationships pillar: calls and e-mails seldom record attendance.
- The dependency measures (``top_account_revenue_share``,
  ``revenue_concentration``) describe a group of accounts, so they are
  computed per group (``grain="entity"``) on the period's revenue of the
  accounts with positive revenue. With ``by="account"`` a group of one
  account would always read 1; instead each account gets its own part of the
  whole portfolio: its share of the portfolio's revenue, and its
  contribution (squared share) to the portfolio's concentration index.

Examples
--------
>>> import pandas as pd
>>> import kamtools as kt
>>> data = kt.load({
...     "accounts": pd.DataFrame({"account_id": ["A1", "A2", "A3"], "account_name": ["Acme", "Bolt", "Cato"],
...                               "is_key_account": [False, False, False]}),
...     "transactions": pd.DataFrame({"account_id": ["A1", "A2", "A3"],
...                                   "date": ["2024-01-10", "2024-02-01", "2024-03-28"],
...                                   "revenue": [600.0, 300.0, 100.0]}),
... })
>>> v = kt.compute(data, ["top_account_revenue_share", "revenue_concentration"], by="portfolio", period="Q")
>>> kt.kpi.wide(v).round(2).reset_index()
      entity  period  top_account_revenue_share  revenue_concentration
0  portfolio  2024Q1                        0.6                   0.46

The top 20% of three accounts is one account, A1, with 600 of 1,000; the
index is 0.6^2 + 0.3^2 + 0.1^2.
"""

from __future__ import annotations

from functools import partial

import pandas as pd

from kamtools.kpi._registry import register
from kamtools.kpi._context import positive as _positive

_kpi = partial(register, _builtin=True)

#: The top accounts of a group are this percentage of its accounts, rounded up (at least one).
TOP_ACCOUNTS_PERCENT = 20


def _is_key(ctx, frame: pd.DataFrame) -> pd.Series:
    """For rows with ``account_id`` and ``period``: the account is a key account in that period."""
    acc = ctx.accounts
    start = acc["kam_start"] if "kam_start" in acc.columns else pd.Series(pd.NaT, index=acc.index)
    status = pd.DataFrame({"account_id": acc["account_id"], "_key": acc["is_key_account"].fillna(False),
                           "_start": start})
    m = frame[["account_id", "period"]].merge(status, on="account_id", how="left")
    entered = m["_start"].isna() | (m["_start"] <= ctx.period_end(m["period"]))
    return pd.Series((m["_key"].fillna(False).astype(bool) & entered).to_numpy(), index=frame.index)


def _by_account(entity: pd.Series) -> bool:
    """The entities are the accounts themselves (``by="account"``)."""
    return bool((entity.index.to_numpy() == entity.to_numpy()).all())


def _positive_revenue(ctx, entity: pd.Series) -> pd.DataFrame:
    """``entity, account_id, period, revenue`` for the accounts with positive revenue in a reported period."""
    tx = ctx.table("transactions")
    rev = tx.groupby(["account_id", "period"], observed=True)["revenue"].sum().reset_index()
    rev = rev[_positive(rev["revenue"]) & rev["period"].isin(ctx.periods)]
    return rev.merge(entity.dropna().reset_index(), on="account_id", how="inner")


def _portfolio_part(rev: pd.DataFrame, power: int) -> pd.DataFrame:
    """by="account": each account's (share of the portfolio's revenue) ** power, as num / den."""
    total = rev.groupby("period", observed=True)["revenue"].transform("sum")
    return rev.assign(entity=rev["account_id"], num=rev["revenue"] ** power, den=total**power)


# -- coverage -----------------------------------------------------------------------------


@_kpi(
    "account_coverage_ratio", name="Account coverage ratio", pillar="relationships", category="engagement",
    level="interaction", timing="leading", driver="process",
    definition="Share of the key accounts that are actively managed: those with at least one interaction "
    "that took place in the period (attended not false), among the key accounts that are active customers "
    "in the period. Non-key accounts have no value.",
    formula="key accounts with >= 1 interaction taking place / key accounts active in the period (account: "
    "1 or 0; a group pools its key accounts)",
    unit="share", direction="higher", tables=("interactions",), provider="interaction", cadence="Q",
)
def account_coverage_ratio(ctx):
    key = ctx.active[_is_key(ctx, ctx.active)]
    met = ctx.took_place(ctx.table("interactions"))[["account_id", "period"]].drop_duplicates().assign(num=1.0)
    out = key.merge(met, on=["account_id", "period"], how="left")
    return out.assign(num=out["num"].fillna(0.0), den=1.0)


# -- dependency on the largest accounts ---------------------------------------------------


@_kpi(
    "top_account_revenue_share", name="Key-account dependency: top 20% revenue share", pillar="revenue",
    category="revenue", level="supplier", timing="lagging", driver="financial",
    definition=f"How much of a group's revenue hangs on its largest accounts: the share of the period's revenue "
    f"from the top {TOP_ACCOUNTS_PERCENT}% of its accounts by revenue (rounded up, at least one), among the "
    "accounts with positive revenue. A percentage rather than a fixed top 10 keeps groups of different sizes "
    "comparable. With by='account', the account's own share of the whole portfolio's revenue.",
    formula=f"revenue of the top ceil({TOP_ACCOUNTS_PERCENT}% x n) accounts / revenue of the n accounts with "
    "positive revenue, within the group and period; by account: account revenue / portfolio revenue",
    unit="share", direction="lower", tables=("transactions",), provider="supplier", cadence="Y",
    grain="entity", controllable=False,
)
def top_account_revenue_share(ctx, entity):
    rev = _positive_revenue(ctx, entity)
    if _by_account(entity):
        return _portfolio_part(rev, 1)
    rev = rev.sort_values(["entity", "period", "revenue", "account_id"], ascending=[True, True, False, True])
    g = rev.groupby(["entity", "period"], observed=True, sort=False)
    n = g["revenue"].transform("size")
    top = g.cumcount() < -(-n * TOP_ACCOUNTS_PERCENT // 100)  # rank below ceil(n x percent)
    rev = rev.assign(top=rev["revenue"].where(top, 0.0))
    out = rev.groupby(["entity", "period"], observed=True).agg(num=("top", "sum"), den=("revenue", "sum"))
    return out.reset_index()


@_kpi(
    "revenue_concentration", name="Key-account dependency: revenue concentration (HHI)", pillar="revenue",
    category="revenue", level="supplier", timing="lagging", driver="financial",
    definition="How concentrated a group's revenue is on few accounts: the Herfindahl-Hirschman index of the "
    "accounts' shares of the group's revenue in the period, on a 0-1 scale (1/n for n equal accounts, 1 for "
    "one account; multiply by 10,000 for the antitrust scale). Accounts with positive revenue only. With "
    "by='account', the account's squared share of the whole portfolio's revenue: its contribution to the "
    "portfolio's index.",
    formula="sum over the group's accounts of (account revenue / group revenue)^2; by account: (account "
    "revenue / portfolio revenue)^2",
    unit="index", direction="lower", tables=("transactions",), provider="supplier", cadence="Y",
    grain="entity", controllable=False,
)
def revenue_concentration(ctx, entity):
    rev = _positive_revenue(ctx, entity)
    if _by_account(entity):
        return _portfolio_part(rev, 2)
    g = rev.assign(sq=rev["revenue"] ** 2).groupby(["entity", "period"], observed=True)
    out = g.agg(num=("sq", "sum"), total=("revenue", "sum")).reset_index()
    return out.assign(den=out["total"] ** 2)


# -- value capture ------------------------------------------------------------------------


@_kpi(
    "key_account_price_premium", name="Key-account price premium", pillar="revenue", category="profitability",
    level="supplier", timing="lagging", driver="financial",
    definition="Whether key accounts pay for the attention they get (the value-capture risk of KAM): how much "
    "more (or, if negative, less) a key account pays per unit than non-key accounts for the same product in "
    "the period, averaged over its products with revenue weights. The reference is the unit price of all "
    "non-key accounts of the portfolio; products without non-key sales in the period, and credit-only or "
    "quantity-less lines, are left out. Only key accounts get a value; a group averages its key accounts "
    "weighted by revenue.",
    formula="per key account and product: (revenue / quantity) / (non-key revenue / non-key quantity) - 1; "
    "then sum of (premium x revenue) / sum of revenue over products (and accounts, in a group)",
    unit="share", direction="higher", tables=("transactions",),
    columns=("transactions.product", "transactions.quantity"), provider="supplier", cadence="Q",
)
def key_account_price_premium(ctx):
    tx = ctx.table("transactions").dropna(subset=["product", "quantity"])
    p = tx.groupby(["account_id", "period", "product"], observed=True, as_index=False)[["revenue", "quantity"]].sum()
    p = p[_positive(p["revenue"]) & _positive(p["quantity"])]
    key = _is_key(ctx, p)
    ref = p[~key].groupby(["period", "product"], observed=True)[["revenue", "quantity"]].sum()
    ref = (ref["revenue"] / ref["quantity"]).rename("ref_price").reset_index()
    k = p[key].merge(ref, on=["period", "product"], how="inner")
    premium = k["revenue"] / k["quantity"] / k["ref_price"] - 1
    k = k.assign(num=k["revenue"] * premium, den=k["revenue"])
    return k.groupby(["account_id", "period"], observed=True, as_index=False)[["num", "den"]].sum()
