"""Learning & development (+1) pillar: how the account managers grow. Grain: manager.

Every KPI here is measured on the account manager (``grain="manager"``): an
account, or a segment, gets the values of the managers who run its accounts,
each manager once per group. The inputs are the learning table and the
assessments whose subject is a manager. Choices that hold for the module:

- Coaching hours and certifications are per manager and period, with
  ``den = 1`` per manager: a group shows the average per manager. A manager of
  an account counts from the period holding ``managers.start_date`` (from the
  first period when the managers table is absent); periods without activity
  count as 0.
- The industry certification rate is the number of certifications obtained
  (``kind`` certification, ``completed`` true) per manager and period, not a
  share of certified managers.
- The training completion rate is the share of the trainings dated in the
  period that are completed; ``completed`` missing counts as not (yet)
  completed.
- Scores (skills, feedback, continuous improvement) are the mean score 1-5
  over the manager's assessments of that dimension in the period, from both
  assessors; a group pools the scores. The continuous improvement rate is the
  assessed ``continuous_improvement`` dimension, not a change computed from the
  skills score (register a ``derived(..., kind="change", of="skill_score")`` KPI for
  that).

Examples
--------
>>> import pandas as pd
>>> import kamtools as kt
>>> data = kt.load({
...     "accounts": pd.DataFrame({"account_id": ["A1", "A2"], "account_name": ["Acme", "Bolt"],
...                               "is_key_account": [False, False], "manager_id": ["M1", "M2"]}),
...     "managers": pd.DataFrame({"manager_id": ["M1", "M2"], "name": ["Ana", "Ben"],
...                               "start_date": ["2020-01-01", "2020-01-01"]}),
...     "transactions": pd.DataFrame({"account_id": ["A1", "A2"], "date": ["2024-01-10", "2024-03-28"],
...                                   "revenue": [100.0, 50.0]}),
...     "learning": pd.DataFrame({
...         "manager_id": ["M1", "M1", "M1", "M2"],
...         "date": ["2024-01-15", "2024-02-01", "2024-03-01", "2024-02-20"],
...         "kind": ["training", "training", "coaching", "training"],
...         "hours": [8.0, 4.0, 1.5, 6.0], "completed": [True, False, None, True]}),
... })
>>> v = kt.compute(data, ["coaching_hours", "training_completion_rate"], by="portfolio", period="Q")
>>> v[["entity", "kpi", "num", "den", "value"]]
      entity                       kpi  num  den     value
0  portfolio            coaching_hours  1.5  2.0  0.750000
1  portfolio  training_completion_rate  2.0  3.0  0.666667

M1 had 1.5 hours of coaching and M2 none: 0.75 hours per manager; of the
three trainings, two were completed.
"""

from __future__ import annotations

from functools import partial

import pandas as pd

from kamtools.kpi._registry import register

_kpi = partial(register, _builtin=True, pillar="learning", grain="manager", level="supplier")

_KEYS = ["manager_id", "period"]


def _manager_grid(ctx) -> pd.DataFrame:
    """The managers of accounts, one row per period in the role: ``manager_id, period``."""
    ids = pd.unique(ctx.accounts["manager_id"].dropna())
    grid = pd.MultiIndex.from_product([ids, ctx.periods], names=_KEYS).to_frame(index=False)
    managers = ctx.table("managers")
    if managers is not None:
        start = grid["manager_id"].map(managers.set_index("manager_id")["start_date"])
        grid = grid[start.isna() | (ctx.period_end(grid["period"]) >= start.dt.normalize())]
    return grid


def _per_manager(ctx, rows: pd.DataFrame, value: str | None = None) -> pd.DataFrame:
    """Sum of ``value`` (or count of rows) per manager and period, 0 where none, ``den = 1``."""
    g = rows.groupby(_KEYS, observed=True)
    num = (g.size() if value is None else g[value].sum()).rename("num").astype("float64").reset_index()
    out = _manager_grid(ctx).merge(num, on=_KEYS, how="outer")
    return out.assign(num=out["num"].fillna(0.0), den=1.0)


def _learning(ctx, kind: str) -> pd.DataFrame:
    le = ctx.table("learning")
    return le[le["kind"] == kind]


@_kpi(
    "coaching_hours", name="Coaching/mentoring hours", category="operational_efficiency", timing="leading",
    driver="process",
    definition="Time the account manager spends in one-to-one coaching or mentoring in the period. The "
    "coaching on offer is set by the organisation, so the manager controls it only in part.",
    formula="sum of learning.hours with kind coaching, per manager (a group averages over its managers, "
    "counting those without coaching as 0)",
    unit="hours", direction="higher", tables=("learning",), columns=("learning.hours", "accounts.manager_id"),
    provider="supplier", cadence="Q", controllable=False,
)
def coaching_hours(ctx):
    return _per_manager(ctx, _learning(ctx, "coaching"), "hours")


@_kpi(
    "continuous_improvement", name="Continuous improvement rate", category="operational_efficiency",
    timing="lagging", driver="process",
    definition="How the account manager's way of working progresses over time, as scored 1-5 in "
    "assessments of the dimension continuous_improvement.",
    formula="mean of assessments.score with dimension continuous_improvement on the manager, both "
    "assessors (a group pools the scores)",
    unit="score 1-5", direction="higher", tables=("assessments",), columns=("accounts.manager_id",),
    provider="supplier", cadence="Y",
)
def continuous_improvement(ctx):
    return ctx.scores("continuous_improvement", of="manager")


@_kpi(
    "feedback_score", name="Feedback score", category="operational_efficiency", timing="lagging",
    driver="process",
    definition="Qualitative feedback on the account manager's performance from customers and colleagues, "
    "scored 1-5.",
    formula="mean of assessments.score with dimension feedback on the manager, both assessors "
    "(a group pools the scores)",
    unit="score 1-5", direction="higher", tables=("assessments",), columns=("accounts.manager_id",),
    provider="interaction", cadence="Q",
)
def feedback_score(ctx):
    return ctx.scores("feedback", of="manager")


@_kpi(
    "certification_rate", name="Industry certification rate", category="operational_efficiency",
    timing="lagging", driver="process",
    definition="Certifications the account manager obtained in the period.",
    formula="count of learning rows with kind certification and completed true, per manager (a group "
    "averages over its managers, counting those without as 0)",
    unit="count", direction="higher", tables=("learning",), columns=("learning.completed", "accounts.manager_id"),
    provider="supplier", cadence="Y",
)
def certification_rate(ctx):
    certs = _learning(ctx, "certification")
    return _per_manager(ctx, certs[certs["completed"].fillna(False).astype("bool")])


@_kpi(
    "skill_score", name="Skill assessment score", category="operational_efficiency", timing="lagging",
    driver="process",
    definition="The account manager's competencies as evaluated in skill assessments, scored 1-5.",
    formula="mean of assessments.score with dimension skills on the manager, both assessors "
    "(a group pools the scores)",
    unit="score 1-5", direction="higher", tables=("assessments",), columns=("accounts.manager_id",),
    provider="supplier", cadence="Y",
)
def skill_score(ctx):
    return ctx.scores("skills", of="manager")


@_kpi(
    "training_completion_rate", name="Training completion rate", category="operational_efficiency",
    timing="leading", driver="process",
    definition="Share of the trainings the account manager started in the period that are completed "
    "(a training without a completion flag counts as not completed).",
    formula="trainings with completed true / trainings, from learning rows of kind training dated in the "
    "period (a group pools them)",
    unit="share", direction="higher", tables=("learning",), columns=("learning.completed", "accounts.manager_id"),
    provider="supplier", cadence="Q",
)
def training_completion_rate(ctx):
    tr = _learning(ctx, "training")
    done = tr.assign(done=tr["completed"].fillna(False).astype("float64"))
    return done.groupby(_KEYS, observed=True)["done"].agg(num="sum", den="count").reset_index()
