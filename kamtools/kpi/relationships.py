"""Relationships pillar: how deep and wide the relationship with the account runs.

The KPIs read the interactions, contacts and assessments tables (and the
transactions, for the products an account buys). A few choices hold for the
whole module:

- An interaction *took place* unless ``attended`` is false: a call or an
  e-mail usually has no attendance recorded, and counts. A planned meeting the
  customer did not attend (``attended`` false) is not engagement, but it is
  still a touchpoint: ``touchpoints`` counts every logged interaction, as the
  effort the account team puts in.
- Counts (touchpoints, business reviews, contacts, decision makers) add up
  over a group: a segment's value is its total. Breadth and frequency measures
  are averages per active account (one ``den`` per active account-period), so
  segments of different sizes compare.
- Assessment scores (plan quality, needs analysis, internal collaboration,
  solution relevance) are the mean score 1-5 over the assessments of the
  account in the period, from both assessors (supplier and customer); a group
  pools the scores (``num`` the sum, ``den`` the count). Accounts not assessed
  in a period have no value.
- The contacts table has no dates, so ``contacts`` and ``decision_makers``
  are the contact base as exported: the same number in every period in which
  the account is active, whatever ``as_of`` says.

Examples
--------
>>> import pandas as pd
>>> import kamtools as kt
>>> data = kt.load({
...     "accounts": pd.DataFrame({"account_id": ["A1", "A2"], "account_name": ["Acme", "Bolt"],
...                               "is_key_account": [False, False]}),
...     "transactions": pd.DataFrame({"account_id": ["A1", "A2"], "date": ["2024-01-10", "2024-03-28"],
...                                   "revenue": [100.0, 50.0]}),
...     "interactions": pd.DataFrame({
...         "account_id": ["A1", "A1", "A1", "A2"],
...         "date": ["2024-01-15", "2024-02-01", "2024-03-01", "2024-02-20"],
...         "kind": ["meeting", "business_review", "call", "meeting"],
...         "attended": [True, False, None, True]}),
... })
>>> v = kt.compute(data, ["touchpoints", "business_reviews", "meeting_attendance_rate"], period="Q")
>>> kt.kpi.wide(v).reset_index()
  entity  period  touchpoints  business_reviews  meeting_attendance_rate
0     A1  2024Q1          3.0               0.0                      0.5
1     A2  2024Q1          1.0               0.0                      1.0

A1 logged three touchpoints; the business review did not take place, so one
of its two planned meetings was attended (the call has no attendance).
"""

from __future__ import annotations

from functools import partial

import pandas as pd

from kamtools.kpi._context import positive
from kamtools.kpi._registry import register

_kpi = partial(register, _builtin=True, pillar="relationships")

#: Interaction kinds that are planned meetings with the customer (attendance applies).
MEETING_KINDS = ("meeting", "business_review", "executive_meeting", "workshop")


def _on_contacts(ctx, contacts: pd.DataFrame) -> pd.DataFrame:
    """Contacts per account, repeated over the account's active periods."""
    n = contacts.groupby("account_id", observed=True).size().rename("num").astype("float64").reset_index()
    return ctx.active.merge(n, on="account_id", how="inner")


# -- account engagement -------------------------------------------------------------------


@_kpi(
    "engagement_frequency", name="Engagement frequency", category="engagement", level="interaction",
    timing="leading", driver="process",
    definition="How often we actually engage with the account: interactions of any kind that took place "
    "in the period (a planned meeting the customer missed does not count; calls and e-mails without "
    "attendance do).",
    formula="count of interactions with attended not false, per active account (a group averages over "
    "its active accounts, counting those without interactions as 0)",
    unit="count", direction="higher", tables=("interactions",), provider="interaction", cadence="M",
)
def engagement_frequency(ctx):
    ix = ctx.took_place(ctx.table("interactions"))
    return ctx.on_active(ctx.per_account(ix, how="count"))


@_kpi(
    "engagement_breadth", name="Engagement breadth", category="engagement", level="interaction",
    timing="leading", driver="process",
    definition="How many different people at the account we engage with: distinct customer contacts "
    "met in interactions that took place in the period.",
    formula="number of distinct interactions.contact_id over interactions with attended not false, per "
    "active account (a group averages over its active accounts)",
    unit="count", direction="higher", tables=("interactions",), columns=("interactions.contact_id",),
    provider="interaction", cadence="Q",
)
def engagement_breadth(ctx):
    ix = ctx.took_place(ctx.table("interactions"))
    return ctx.on_active(ctx.per_account(ix, "contact_id", how="nunique"))


@_kpi(
    "product_breadth", name="Product breadth", category="market_penetration", level="customer",
    timing="lagging", driver="relational",
    definition="How many of our products the account buys: distinct products with positive net revenue "
    "in the period (a product wholly credited back does not count).",
    formula="number of distinct transactions.product whose net revenue in the period is above 0, per "
    "active account (a group averages over its active accounts)",
    unit="count", direction="higher", tables=("transactions",), columns=("transactions.product",),
    provider="customer", cadence="Q",
)
def product_breadth(ctx):
    tx = ctx.table("transactions")
    net = tx.groupby(["account_id", "period", "product"], observed=True)["revenue"].sum().reset_index()
    return ctx.on_active(ctx.per_account(net[positive(net["revenue"])], how="count"))


# -- planning and reviews -----------------------------------------------------------------


@_kpi(
    "account_plan_quality", name="Account plan quality", category="operational_efficiency", level="supplier",
    timing="leading", driver="process",
    definition="How good the account plan is (depth of the relationship strategy, objectives, actions), as "
    "scored 1-5 in assessments by the supplier or the customer.",
    formula="mean of assessments.score with dimension plan_quality on the account, both assessors "
    "(a group pools the scores)",
    unit="score 1-5", direction="higher", tables=("assessments",), provider="supplier", cadence="Y",
)
def account_plan_quality(ctx):
    return ctx.scores("plan_quality")


@_kpi(
    "business_reviews", name="Business reviews completed", category="engagement", level="interaction",
    timing="leading", driver="process",
    definition="Joint business reviews held with the account in the period.",
    formula="count of interactions of kind business_review with attended not false (a group adds them up)",
    unit="count", direction="higher", tables=("interactions",), provider="interaction", cadence="Q", fill=0.0,
)
def business_reviews(ctx):
    ix = ctx.took_place(ctx.table("interactions"))
    return ctx.per_account(ix[ix["kind"] == "business_review"], how="count")


@_kpi(
    "needs_analysis", name="Customer needs analysis", category="engagement", level="interaction",
    timing="leading", driver="process",
    definition="How well we understand the customer's needs, as scored 1-5 in assessments by the supplier "
    "or the customer.",
    formula="mean of assessments.score with dimension needs_analysis on the account, both assessors "
    "(a group pools the scores)",
    unit="score 1-5", direction="higher", tables=("assessments",), provider="interaction", cadence="Y",
)
def needs_analysis(ctx):
    return ctx.scores("needs_analysis")


@_kpi(
    "executive_sponsorship", name="Executive sponsorship", category="engagement", level="interaction",
    timing="leading", driver="relational",
    definition="Access to the customer's leadership: whether the account had at least one executive "
    "meeting that took place in the period. For a group, the share of its active accounts that had one.",
    formula="1 if the account has an interaction of kind executive_meeting with attended not false in the "
    "period, else 0; averaged over active accounts",
    unit="share", direction="higher", tables=("interactions",), provider="interaction", cadence="Q",
)
def executive_sponsorship(ctx):
    ix = ctx.took_place(ctx.table("interactions"))
    met = ctx.per_account(ix[ix["kind"] == "executive_meeting"], how="count")
    return ctx.on_active(met.assign(num=1.0))


@_kpi(
    "internal_collaboration", name="Internal collaboration", category="operational_efficiency",
    level="supplier", timing="leading", driver="process",
    definition="How well the internal teams (sales, service, supply, finance) work together for the account, "
    "as scored 1-5 in assessments.",
    formula="mean of assessments.score with dimension collaboration on the account, both assessors "
    "(a group pools the scores)",
    unit="score 1-5", direction="higher", tables=("assessments",), provider="supplier", cadence="Q",
)
def internal_collaboration(ctx):
    return ctx.scores("collaboration")


# -- the contact network ------------------------------------------------------------------


@_kpi(
    "contacts", name="Number of contacts", category="engagement", level="interaction", timing="lagging",
    driver="relational",
    definition="People we know at the account, as listed in the contacts table. The table has no dates, so "
    "the count is the contact base as exported, the same in every period the account is active.",
    formula="count of contacts rows of the account, on each active period (a group adds them up)",
    unit="count", direction="higher", tables=("contacts",), provider="supplier", cadence="Q", fill=0.0,
)
def contacts(ctx):
    return _on_contacts(ctx, ctx.table("contacts"))


@_kpi(
    "decision_makers", name="Decision makers known", category="engagement", level="interaction",
    timing="lagging", driver="relational",
    definition="Contacts at the account who take or sign buying decisions. Like contacts, the count as "
    "exported, the same in every period the account is active.",
    formula="count of contacts of the account with is_decision_maker true (missing counts as not), on "
    "each active period (a group adds them up)",
    unit="count", direction="higher", tables=("contacts",), columns=("contacts.is_decision_maker",),
    provider="supplier", cadence="Q", fill=0.0,
)
def decision_makers(ctx):
    c = ctx.table("contacts")
    return _on_contacts(ctx, c[c["is_decision_maker"].fillna(False).astype("bool")])


# -- proposals and touchpoints ------------------------------------------------------------


@_kpi(
    "solution_relevance", name="Solution proposal relevance", category="customer_satisfaction",
    level="interaction", timing="leading", driver="process",
    definition="How well the solutions we propose fit the customer's needs, as scored 1-5 in assessments "
    "by the supplier or the customer.",
    formula="mean of assessments.score with dimension solution_relevance on the account, both assessors "
    "(a group pools the scores)",
    unit="score 1-5", direction="higher", tables=("assessments",), provider="interaction", cadence="Q",
)
def solution_relevance(ctx):
    return ctx.scores("solution_relevance")


@_kpi(
    "touchpoints", name="Number of touchpoints", category="engagement", level="supplier", timing="leading",
    driver="process",
    definition="Every logged interaction with the account in the period, of any kind and whether or not the "
    "customer attended: the contact effort of the account team.",
    formula="count of interactions rows (a group adds them up)",
    unit="count", direction="higher", tables=("interactions",), provider="interaction", cadence="M", fill=0.0,
)
def touchpoints(ctx):
    return ctx.per_account(ctx.table("interactions"), how="count")


@_kpi(
    "meeting_attendance_rate", name="Meeting attendance rate", category="engagement", level="interaction",
    timing="leading", driver="process",
    definition="Share of planned meetings (meetings, business reviews, executive meetings, workshops) that "
    "took place with the customer present. Meetings without recorded attendance are left out.",
    formula="meetings with attended true / meetings with attended recorded (a group pools them)",
    unit="share", direction="higher", tables=("interactions",), columns=("interactions.attended",),
    provider="interaction", cadence="M",
)
def meeting_attendance_rate(ctx):
    ix = ctx.table("interactions")
    planned = ix[ix["kind"].isin(MEETING_KINDS) & ix["attended"].notna()]
    return ctx.per_account(planned.assign(attended=planned["attended"].astype("float64")), "attended", how="mean")
