"""Revenue pillar: what the account buys, earns, costs and could still buy.

The KPIs read the transactions (revenue, cost, product), the opportunities,
the costs booked to accounts, the plan-execution assessments and the
accounts' wallet size and product potential. Choices that hold for the whole
module:

- Money KPIs of the period (revenue, margin, cost to serve) add up over a
  group; rates are pooled, so a group's rate is the rate of its accounts taken
  together (``num`` and ``den`` add up), not the mean of the accounts' rates.
- *Trailing twelve months* (annual revenue per account, CLV, market share,
  penetration, saturation, expansion) means the invoice dates in
  ``(period end - 12 months, period end]``: the twelve calendar months ending
  with the period's last month. In a period still running at the as-of date
  the window holds what was invoiced up to then.
- A product counts as *bought* when its net revenue over the window is above
  0: a product wholly credited back does not count.
- Opportunities are dated by the event the KPI is about: created (new
  business, referrals, lead management), closed (conversion, upsell,
  cross-selling, time to close) or implemented (time to implement). An
  opportunity closed or implemented after the as-of date is still open then.

Examples
--------
>>> import pandas as pd
>>> import kamtools as kt
>>> data = kt.load({
...     "accounts": pd.DataFrame({"account_id": ["A1", "A2"], "account_name": ["Acme", "Bolt"],
...                               "is_key_account": [False, False], "wallet_size": [4000.0, 1000.0]}),
...     "transactions": pd.DataFrame({
...         "account_id": ["A1", "A1", "A2"], "date": ["2023-11-10", "2024-02-01", "2024-03-28"],
...         "revenue": [300.0, 100.0, 50.0], "cost": [200.0, 60.0, 40.0]}),
... })
>>> v = kt.compute(data, ["revenue", "annual_revenue_per_account", "share_of_wallet", "account_market_share"],
...                period="Q", start="2024-01-01")
>>> print(kt.kpi.wide(v).reset_index().to_string(index=False))
entity period  revenue  annual_revenue_per_account  share_of_wallet  account_market_share
    A1 2024Q1    100.0                       400.0              0.1                  0.10
    A2 2024Q1     50.0                        50.0              0.2                  0.05

A1's annual revenue takes in the 300 invoiced in November; its share of
wallet runs the quarter's 100 at four quarters a year against a wallet of
4,000.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from kamtools.exceptions import ParameterError
from kamtools.kpi._context import positive as _positive
from kamtools.kpi._registry import derived, register

_kpi = partial(register, _builtin=True, pillar="revenue")

#: Yearly retention and discount rate of the simple CLV KPI.
CLV_RETENTION = 0.9
CLV_DISCOUNT = 0.1
#: An opportunity decided (won or lost) within this many days of its creation counts as well managed.
LEAD_DAYS = 90
_DECIDED = ("won", "lost")


def simple_clv(annual_margin, *, retention: float = CLV_RETENTION, discount: float = CLV_DISCOUNT):
    """Customer lifetime value from a yearly margin, a yearly retention and a discount rate.

    The value today of the margins of the years ahead, each year's margin kept
    with probability ``retention`` per year and discounted at ``discount``:
    ``margin * r / (1 + d - r)``, the sum over ``t >= 1`` of
    ``margin * r**t / (1 + d)**t``. The current year's margin is not included.

    Parameters
    ----------
    annual_margin : float, array or Series
        Yearly gross margin of the account.
    retention : float
        Probability the account stays another year, in [0, 1].
    discount : float
        Yearly discount rate, 0 or more.

    Returns
    -------
    Same type as ``annual_margin``.

    Notes
    -----
    Retention is an assumption here, the same for every account. The
    model-based forms (shifted-beta-geometric for contracts, BG/NBD with
    Gamma-Gamma for repeat buying) estimate it from the data; they come with
    the retention issue (``kamtools.clv``).

    Examples
    --------
    >>> round(simple_clv(1000.0), 2)  # 1000 * 0.9 / (1 + 0.1 - 0.9)
    4500.0
    >>> round(simple_clv(1000.0, retention=0.8, discount=0.05), 2)  # 1000 * 0.8 / 0.25
    3200.0
    """
    if not 0 <= retention <= 1:
        raise ParameterError(f"retention={retention!r}: a yearly retention is a probability between 0 and 1.")
    if not discount >= 0:
        raise ParameterError(f"discount={discount!r}: a discount rate is 0 or more, e.g. 0.1 for 10% a year.")
    if retention >= 1 + discount:
        raise ParameterError("retention=1 with discount=0 gives an infinite lifetime value; use a discount above 0.")
    return annual_margin * retention / (1 + discount - retention)


# -- helpers ------------------------------------------------------------------------------


def _with_margin(ctx) -> pd.DataFrame:
    tx = ctx.table("transactions")
    return tx.assign(margin=tx["revenue"] - tx["cost"])


def _trailing_12m(ctx, frame: pd.DataFrame, value: str, *, keys=("account_id",), lag_months: int = 0) -> pd.DataFrame:
    """Sum of ``value`` over the 12 calendar months ending ``lag_months`` before each period's end.

    Returns ``*keys, period, num`` for the periods of ``ctx``, only where the
    window holds rows. Each monthly sum is spread over the period ends whose
    window contains its month (at most 12), then summed: no grid, no loop.
    """
    keys = list(keys)
    ends = ctx.periods.end_time
    target = ends.year.to_numpy() * 12 + ends.month.to_numpy() - 1 - lag_months  # ascending month numbers
    date = frame["date"]
    monthly = (
        frame[keys + [value]]
        .assign(_month=date.dt.year * 12 + date.dt.month - 1)
        .groupby(keys + ["_month"], observed=True, sort=False, as_index=False)[value]
        .sum()
    )
    month = monthly["_month"].to_numpy()
    first = np.searchsorted(target, month, side="left")  # first period end at or after the month
    n = np.searchsorted(target, month + 12, side="left") - first  # period ends within 11 months after it
    row = np.repeat(np.arange(len(monthly)), n)
    pos = np.repeat(first, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    spread = monthly.iloc[row].reset_index(drop=True).assign(period=ctx.periods[pos].array)
    out = spread.groupby(keys + ["period"], observed=True, sort=False, as_index=False)[value].sum()
    return out.rename(columns={value: "num"})


def _products_bought(ctx) -> pd.DataFrame:
    """``account_id, period, product`` of products with positive net revenue over the trailing 12 months."""
    t = _trailing_12m(ctx, ctx.table("transactions"), "revenue", keys=("account_id", "product"))
    return t.loc[_positive(t["num"]), ["account_id", "period", "product"]]


def _wallet_share(ctx, revenue: pd.DataFrame) -> pd.DataFrame:
    """Revenue (``num``) over wallet size (``den``) on the active accounts that have a wallet size."""
    acc = ctx.accounts
    wallet = acc.loc[acc["wallet_size"] > 0, ["account_id", "wallet_size"]]
    out = ctx.active.merge(wallet, on="account_id").merge(revenue, on=["account_id", "period"], how="left")
    return out.assign(num=out["num"].fillna(0.0), den=out["wallet_size"])


def _costs(ctx) -> pd.DataFrame:
    """``account_id, period, cost_to_serve, kam_programme``: costs booked per account and period."""
    c = ctx.table("costs")
    wide = c.groupby(["account_id", "period", "kind"], observed=True)["amount"].sum().unstack("kind", fill_value=0.0)
    wide = wide.reindex(columns=["cost_to_serve", "kam_programme"], fill_value=0.0)
    wide.columns.name = None
    return wide.reset_index()


def _created(ctx) -> pd.DataFrame:
    """Opportunities created up to the as-of date, in the period of creation."""
    return ctx.table("opportunities")


def _closed(ctx) -> pd.DataFrame:
    """Opportunities won or lost by the as-of date, in the period they closed."""
    opp = ctx.table("opportunities")
    opp = opp[opp["status"].isin(_DECIDED) & (opp["closed"] <= ctx.cutoff)]
    return opp.assign(period=ctx.period(opp["closed"]), won=(opp["status"] == "won").astype("float64"))


def _days(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier) / pd.Timedelta(days=1)


# -- revenue ------------------------------------------------------------------------------


@_kpi(
    "revenue", name="Revenue", category="revenue", level="customer", timing="lagging", driver="financial",
    definition="Net invoiced revenue of the account in the period, credit notes netted.",
    formula="sum of transactions.revenue (a group adds up its accounts)", unit="currency", direction="higher",
    tables=("transactions",), provider="customer", cadence="Q", fill=0.0,
)
def revenue(ctx):
    return ctx.per_account(ctx.table("transactions"), "revenue")


@_kpi(
    "revenue_per_account", name="Revenue per account", category="revenue", level="customer", timing="lagging",
    driver="financial",
    definition="Average revenue of an active account in the period; for one account, its revenue.",
    formula="sum of revenue / number of active accounts", unit="currency", direction="higher",
    tables=("transactions",), provider="customer", cadence="Q",
)
def revenue_per_account(ctx):
    return ctx.on_active(ctx.per_account(ctx.table("transactions"), "revenue"))


@_kpi(
    "annual_revenue_per_account", name="Annual revenue per account", category="revenue", level="customer",
    timing="lagging", driver="financial",
    definition="Revenue of the trailing twelve months at the period's end, per active account: the yearly "
    "size of the account, free of seasonality whatever the period length.",
    formula="sum of transactions.revenue dated in (period end - 12 months, period end], averaged over "
    "active accounts (an active account without revenue in the window counts as 0)",
    unit="currency", direction="higher", tables=("transactions",), provider="customer", cadence="Q",
)
def annual_revenue_per_account(ctx):
    return ctx.on_active(_trailing_12m(ctx, ctx.table("transactions"), "revenue"))


derived(
    "revenue_growth_rate", kind="growth", of="revenue", _builtin=True, pillar="revenue", name="Revenue growth rate",
    category="revenue", level="customer", timing="lagging", driver="financial",
    definition="Change of revenue against the previous period.",
    formula="revenue_t / revenue_(t-1) - 1 (missing when the previous period had no positive revenue)",
    unit="share", direction="higher", tables=("transactions",), provider="customer", cadence="Q",
)


@_kpi(
    "share_of_wallet", name="Share of wallet", category="market_penetration", level="customer", timing="lagging",
    driver="relational",
    definition="The share of the account's yearly spend in our category that we capture, at the period's run "
    "rate: the period's revenue annualised against accounts.wallet_size. It moves with the period; "
    "account_market_share is the same comparison on the trailing twelve months.",
    formula="revenue of the period x periods per year (4 for quarters, 12 for months) / wallet_size, over "
    "active accounts with a wallet size (a group: sum of annualised revenue / sum of wallet sizes)",
    unit="share", direction="higher", tables=("transactions",), columns=("accounts.wallet_size",),
    provider="supplier", cadence="Q",
)
def share_of_wallet(ctx):
    rev = ctx.per_account(ctx.table("transactions"), "revenue")
    return _wallet_share(ctx, rev.assign(num=rev["num"] * 12 / ctx.months_per_period))


@_kpi(
    "account_market_share", name="Market share within the account", category="market_penetration",
    level="customer", timing="lagging", driver="relational",
    definition="Our share of the account's total spend in the category: revenue of the trailing twelve months "
    "against accounts.wallet_size (a yearly spend, so a yearly revenue is the like-for-like comparison). "
    "Slow and seasonality-free, where share_of_wallet is the period's run rate.",
    formula="sum of transactions.revenue dated in (period end - 12 months, period end] / wallet_size, over "
    "active accounts with a wallet size (a group: sum of revenue / sum of wallet sizes)",
    unit="share", direction="higher", tables=("transactions",), columns=("accounts.wallet_size",),
    provider="supplier", cadence="Q",
)
def account_market_share(ctx):
    return _wallet_share(ctx, _trailing_12m(ctx, ctx.table("transactions"), "revenue"))


# -- profitability ------------------------------------------------------------------------


@_kpi(
    "gross_margin", name="Gross margin per account", category="profitability", level="customer",
    timing="lagging", driver="financial",
    definition="Revenue less the cost of goods sold, per account and period.",
    formula="sum of (transactions.revenue - transactions.cost) (a group adds up its accounts)",
    unit="currency", direction="higher",
    tables=("transactions",), columns=("transactions.cost",), provider="customer", cadence="Q", fill=0.0,
)
def gross_margin(ctx):
    return ctx.per_account(_with_margin(ctx), "margin")


@_kpi(
    "gross_margin_pct", name="Gross margin %", category="profitability", level="customer", timing="lagging",
    driver="financial",
    definition="Gross margin as a share of revenue in the period. Missing when the period has no revenue; "
    "read it with care where credit notes make revenue negative.",
    formula="sum of (revenue - cost) / sum of revenue (a group pools its accounts)",
    unit="share", direction="higher", tables=("transactions",), columns=("transactions.cost",),
    provider="customer", cadence="Q",
)
def gross_margin_pct(ctx):
    tx = _with_margin(ctx)
    tx = tx[tx["cost"].notna()]  # lines without a cost have no margin: keep them out of both sides
    g = tx.groupby(["account_id", "period"], observed=True, sort=False)
    return g.agg(num=("margin", "sum"), den=("revenue", "sum")).reset_index()


derived(
    "profit_margin_expansion", kind="change", of="gross_margin_pct", _builtin=True, pillar="revenue",
    name="Profit margin expansion", category="profitability", level="customer", timing="lagging",
    driver="financial",
    definition="Change of the gross margin % against the previous period, in points as a fraction "
    "(0.02 = two percentage points better).",
    formula="gross_margin_pct_t - gross_margin_pct_(t-1) (missing when either is missing)",
    unit="share", direction="higher", tables=("transactions",), columns=("transactions.cost",),
    provider="customer", cadence="Q",
)


@_kpi(
    "customer_lifetime_value", name="Customer lifetime value", category="profitability", level="customer",
    timing="lagging", driver="financial",
    definition="Value today of the account's future margins, simple form: its gross margin of the trailing "
    f"twelve months, kept each year with a retention of {CLV_RETENTION} and discounted at {CLV_DISCOUNT} a "
    "year (assumptions, the same for every account; see kamtools.kpi.revenue.simple_clv to use others). "
    "The model-based forms, which estimate retention from the data, come with the retention issue.",
    formula=f"annual gross margin x r / (1 + d - r), r = {CLV_RETENTION}, d = {CLV_DISCOUNT}; annual gross "
    "margin = sum of (revenue - cost) dated in (period end - 12 months, period end]; averaged over active "
    "accounts",
    unit="currency", direction="higher", tables=("transactions",), columns=("transactions.cost",),
    provider="customer", cadence="Y",
)
def customer_lifetime_value(ctx):
    annual = _trailing_12m(ctx, _with_margin(ctx), "margin")
    return ctx.on_active(annual.assign(num=simple_clv(annual["num"])))


@_kpi(
    "cost_to_serve", name="Cost to serve", category="operational_efficiency", level="supplier", timing="lagging",
    driver="process",
    definition="Logistics, service and support costs booked to the account in the period (costs of kind "
    "cost_to_serve; the KAM programme's own cost is not included).",
    formula="sum of costs.amount with kind cost_to_serve (a group adds up its accounts)",
    unit="currency", direction="lower", tables=("costs",), provider="supplier", cadence="Q", fill=0.0,
)
def cost_to_serve(ctx):
    return _costs(ctx)[["account_id", "period", "cost_to_serve"]].rename(columns={"cost_to_serve": "num"})


derived(
    "cost_to_serve_growth", kind="growth", of="cost_to_serve", _builtin=True, pillar="revenue",
    name="Cost-to-serve growth (a reduction is negative)", category="operational_efficiency", level="supplier",
    timing="lagging", driver="process",
    definition="Change of the cost to serve against the previous period. Lower is better: -0.1 is a 10% "
    "reduction.",
    formula="cost_to_serve_t / cost_to_serve_(t-1) - 1 (missing when the previous period had no cost)",
    unit="share", direction="lower", tables=("costs",), provider="supplier", cadence="Q",
)


@_kpi(
    "unprofitable_customers", name="Unprofitable customers", category="profitability", level="customer",
    timing="lagging", driver="financial",
    definition="Whether the account cost more to serve than it earned in the period (gross margin less cost to "
    "serve below 0); for a group, the share of its active accounts that did. The KAM programme's cost is "
    "left out: it is an investment in the account, not a cost of serving it.",
    formula="1 if sum of (revenue - cost) - sum of cost_to_serve costs < 0, else 0; averaged over active "
    "accounts",
    unit="share", direction="lower", tables=("transactions", "costs"), columns=("transactions.cost",),
    provider="supplier", cadence="Q",
)
def unprofitable_customers(ctx):
    gm = ctx.per_account(_with_margin(ctx), "margin").rename(columns={"num": "margin"})
    out = ctx.active.merge(gm, on=["account_id", "period"], how="left")
    out = out.merge(_costs(ctx), on=["account_id", "period"], how="left").fillna(
        {"margin": 0.0, "cost_to_serve": 0.0}
    )
    loss = -(out["margin"] - out["cost_to_serve"])
    return out.assign(num=_positive(loss).astype("float64"), den=1.0)


@_kpi(
    "net_profit_margin", name="Net profit margin", category="profitability", level="customer", timing="lagging",
    driver="financial",
    definition="What is left of revenue after the cost of goods, the cost to serve and the KAM programme's "
    "cost, as a share of revenue. Missing for an account with costs but no revenue in the period; a group "
    "still counts those costs.",
    formula="(sum of (revenue - cost) - cost_to_serve - kam_programme costs) / sum of revenue (a group pools "
    "its accounts)",
    unit="share", direction="higher", tables=("transactions", "costs"), columns=("transactions.cost",),
    provider="supplier", cadence="Q",
)
def net_profit_margin(ctx):
    tx = _with_margin(ctx)
    sales = tx.groupby(["account_id", "period"], observed=True).agg(margin=("margin", "sum"), den=("revenue", "sum"))
    out = sales.reset_index().merge(_costs(ctx), on=["account_id", "period"], how="outer")
    out = out.fillna({"margin": 0.0, "den": 0.0, "cost_to_serve": 0.0, "kam_programme": 0.0})
    return out.assign(num=out["margin"] - out["cost_to_serve"] - out["kam_programme"])


# -- product mix, penetration, saturation, expansion -------------------------------------


@_kpi(
    "product_mix_concentration", name="Product mix concentration", category="market_penetration",
    level="customer", timing="lagging", driver="financial",
    definition="How concentrated the account's revenue is on few products: the Herfindahl index of the "
    "products' shares of its revenue in the period, from 1/n (n products bought equally) to 1 (one "
    "product). Lower is a broader mix, less dependent on one product line. Products with no positive net "
    "revenue in the period are left out. A group averages its accounts' indices weighted by revenue.",
    formula="sum over products of (product revenue / account revenue)^2; group: sum of (index x revenue) / "
    "sum of revenue",
    unit="index", direction="lower", tables=("transactions",), columns=("transactions.product",),
    provider="customer", cadence="Q",
)
def product_mix_concentration(ctx):
    tx = ctx.table("transactions")
    p = tx.groupby(["account_id", "period", "product"], observed=True)["revenue"].sum().reset_index()
    p = p[_positive(p["revenue"])]
    g = p.assign(sq=p["revenue"] ** 2).groupby(["account_id", "period"], observed=True)
    out = g.agg(sq=("sq", "sum"), den=("revenue", "sum")).reset_index()
    return out.assign(num=out["sq"] / out["den"])  # index x revenue, so groups weight by revenue


@_kpi(
    "account_penetration_index", name="Account penetration index", category="market_penetration",
    level="customer", timing="lagging", driver="relational",
    definition="How many of the products the account could use it actually buys: distinct products bought "
    "in the trailing twelve months against accounts.potential_products (may exceed 1 if the potential is "
    "underestimated).",
    formula="number of distinct products with net revenue > 0 dated in (period end - 12 months, period end] "
    "/ potential_products, over active accounts with a potential (a group: sum / sum)",
    unit="share", direction="higher", tables=("transactions",),
    columns=("transactions.product", "accounts.potential_products"), provider="supplier", cadence="Q",
)
def account_penetration_index(ctx):
    n = _products_bought(ctx).groupby(["account_id", "period"], observed=True).size().rename("num").reset_index()
    acc = ctx.accounts
    potential = acc.loc[acc["potential_products"] > 0, ["account_id", "potential_products"]]
    out = ctx.active.merge(potential, on="account_id").merge(n, on=["account_id", "period"], how="left")
    return out.assign(num=out["num"].fillna(0).astype("float64"), den=out["potential_products"].astype("float64"))


@_kpi(
    "account_saturation_index", name="Account saturation index", category="market_penetration", level="customer",
    timing="lagging", driver="relational",
    definition="How much of our current offering the account takes: distinct products it bought in the "
    "trailing twelve months against the catalogue, the products any account bought in that window. Unlike "
    "penetration it needs no estimate of the account's potential, and unlike share of wallet it counts "
    "products, not money; the gap to 1 is the offering still to sell there.",
    formula="number of distinct products the account bought with net revenue > 0 in (period end - 12 months, "
    "period end] / number of distinct products bought by any account in that window; averaged over active "
    "accounts",
    unit="share", direction="higher", tables=("transactions",), columns=("transactions.product",),
    provider="customer", cadence="Q",
)
def account_saturation_index(ctx):
    bought = _products_bought(ctx)
    n = bought.groupby(["account_id", "period"], observed=True).size().rename("num").reset_index()
    catalogue = bought.groupby("period", observed=True)["product"].nunique().rename("den").reset_index()
    out = ctx.active.merge(catalogue, on="period").merge(n, on=["account_id", "period"], how="left")
    return out.assign(num=out["num"].fillna(0).astype("float64"), den=out["den"].astype("float64"))


@_kpi(
    "account_expansion_rate", name="Account expansion rate", category="market_penetration", level="customer",
    timing="lagging", driver="financial",
    definition="Whether the account's yearly revenue grew: revenue of the trailing twelve months above that of "
    "the twelve months a year earlier. For a group, the share of its accounts that bought a year earlier "
    "and grew since (an account lost since counts as not grown; a new account is not counted).",
    formula="1 if revenue in (end - 12 months, end] > revenue in (end - 24 months, end - 12 months], else 0, "
    "over accounts with positive revenue in the earlier window",
    unit="share", direction="higher", tables=("transactions",), provider="customer", cadence="Q",
)
def account_expansion_rate(ctx):
    tx = ctx.table("transactions")
    before = _trailing_12m(ctx, tx, "revenue", lag_months=12).rename(columns={"num": "before"})
    before = before[_positive(before["before"])]
    out = before.merge(_trailing_12m(ctx, tx, "revenue"), on=["account_id", "period"], how="left")
    grew = _positive(out["num"].fillna(0.0) - out["before"])
    return out.assign(num=grew.astype("float64"), den=1.0)


# -- plan execution and the sales pipeline ------------------------------------------------


@_kpi(
    "account_plan_execution", name="Account plan execution", category="operational_efficiency", level="supplier",
    timing="leading", driver="process",
    definition="How well the actions of the account plan are carried out, as scored 1-5 in assessments by the "
    "supplier or the customer. Accounts not assessed in the period have no value.",
    formula="mean of assessments.score with dimension plan_execution on the account, both assessors (a group "
    "pools the scores)",
    unit="score 1-5", direction="higher", tables=("assessments",), provider="supplier", cadence="Q",
)
def account_plan_execution(ctx):
    return ctx.scores("plan_execution")


@_kpi(
    "cross_sell_revenue", name="Cross-selling", category="revenue", level="customer", timing="lagging",
    driver="financial",
    definition="Value of the cross-sell opportunities (products new to the account) won in the period, "
    "dated by their close date.",
    formula="sum of opportunities.amount with kind cross_sell and status won, closed in the period (a group "
    "adds up its accounts)",
    unit="currency", direction="higher", tables=("opportunities",),
    columns=("opportunities.kind", "opportunities.closed", "opportunities.amount"), provider="supplier",
    cadence="Q", fill=0.0,
)
def cross_sell_revenue(ctx):
    opp = _closed(ctx)
    return ctx.per_account(opp[(opp["kind"] == "cross_sell") & (opp["status"] == "won")], "amount")


@_kpi(
    "upsell_rate", name="Upsell rate", category="revenue", level="customer", timing="lagging", driver="process",
    definition="Share of the upsell opportunities closed in the period that were won.",
    formula="upsell opportunities won / upsell opportunities won or lost, by close date (a group pools them)",
    unit="share", direction="higher", tables=("opportunities",),
    columns=("opportunities.kind", "opportunities.closed"), provider="supplier", cadence="Q",
)
def upsell_rate(ctx):
    opp = _closed(ctx)
    return ctx.per_account(opp[opp["kind"] == "upsell"], "won", how="mean")


@_kpi(
    "opportunity_conversion_rate", name="Opportunity conversion rate", category="revenue", level="customer",
    timing="lagging", driver="process",
    definition="Share of the opportunities closed in the period that were won (all kinds).",
    formula="opportunities won / opportunities won or lost, by close date (a group pools them)",
    unit="share", direction="higher", tables=("opportunities",), columns=("opportunities.closed",),
    provider="supplier", cadence="Q",
)
def opportunity_conversion_rate(ctx):
    return ctx.per_account(_closed(ctx), "won", how="mean")


@_kpi(
    "new_business_opportunities", name="New business opportunities", category="revenue", level="customer",
    timing="leading", driver="process",
    definition="New or reactivated revenue streams opened: opportunities of kind new_business created in the "
    "period.",
    formula="count of opportunities with kind new_business, by creation date (a group adds them up)",
    unit="count", direction="higher", tables=("opportunities",), columns=("opportunities.kind",),
    provider="supplier", cadence="Q", fill=0.0,
)
def new_business_opportunities(ctx):
    opp = _created(ctx)
    return ctx.per_account(opp[opp["kind"] == "new_business"], how="count")


@_kpi(
    "referrals", name="Number of referrals", category="revenue", level="customer", timing="leading",
    driver="relational",
    definition="Leads the customer passed on: opportunities created in the period whose source is referral "
    "(case and surrounding spaces ignored).",
    formula="count of opportunities with source 'referral', by creation date (a group adds them up)",
    unit="count", direction="higher", tables=("opportunities",), columns=("opportunities.source",),
    provider="customer", cadence="Q", fill=0.0,
)
def referrals(ctx):
    opp = _created(ctx)
    return ctx.per_account(opp[opp["source"].str.strip().str.lower() == "referral"], how="count")


@_kpi(
    "lead_closure_rate", name="Lead management", category="operational_efficiency", level="supplier",
    timing="leading", driver="process",
    definition=f"How well leads are worked: the share of the opportunities created in the period that were "
    f"decided (won or lost) within {LEAD_DAYS} days. An opportunity younger than {LEAD_DAYS} days "
    f"at the as-of date is left out, decided or not (its outcome is not due yet); one open for "
    f"{LEAD_DAYS} days or more counts as not decided in time.",
    formula=f"opportunities with closed - created <= {LEAD_DAYS} days / opportunities created in the period, "
    f"less those created within {LEAD_DAYS} days of the as-of date (a group pools them)",
    unit="share", direction="higher", tables=("opportunities",), columns=("opportunities.closed",),
    provider="supplier", cadence="Q",
)
def lead_closure_rate(ctx):
    opp = _created(ctx)
    known = opp["status"].isin(_DECIDED) & (opp["closed"] <= ctx.cutoff)
    in_time = known & (_days(opp["closed"], opp["created"]) <= LEAD_DAYS)
    # every opportunity younger than LEAD_DAYS at as_of is left out, decided or not: keeping the
    # decided ones only would favour the quick decisions and bias the rate upwards
    pending = _days(ctx.as_of, opp["created"]) < LEAD_DAYS
    return ctx.per_account(opp.assign(in_time=in_time.astype("float64"))[~pending], "in_time", how="mean")


@_kpi(
    "time_to_close", name="Time to close", category="operational_efficiency", level="supplier", timing="leading",
    driver="process",
    definition="How long won deals take: mean days from creation to close of the opportunities won in the "
    "period.",
    formula="mean of (closed - created) in days over opportunities won, by close date (a group pools them)",
    unit="days", direction="lower", tables=("opportunities",), columns=("opportunities.closed",),
    provider="supplier", cadence="Q",
)
def time_to_close(ctx):
    won = _closed(ctx)
    won = won[won["status"] == "won"]
    return ctx.per_account(won.assign(days=_days(won["closed"], won["created"])), "days", how="mean")


@_kpi(
    "time_to_implement", name="Time to implement", category="operational_efficiency", level="supplier",
    timing="leading", driver="process",
    definition="How fast won business goes live at the customer: mean days from close to implementation of the "
    "won opportunities implemented in the period.",
    formula="mean of (implemented - closed) in days over won opportunities, by implementation date (a group "
    "pools them)",
    unit="days", direction="lower", tables=("opportunities",),
    columns=("opportunities.closed", "opportunities.implemented"), provider="supplier", cadence="Q",
)
def time_to_implement(ctx):
    opp = ctx.table("opportunities")
    live = opp[(opp["status"] == "won") & (opp["implemented"] <= ctx.cutoff) & opp["closed"].notna()]
    live = live.assign(period=ctx.period(live["implemented"]), days=_days(live["implemented"], live["closed"]))
    return ctx.per_account(live, "days", how="mean")
