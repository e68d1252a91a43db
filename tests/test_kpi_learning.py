"""Learning & development KPIs (grain: manager), checked against hand computations."""

from __future__ import annotations

import pandas as pd
import pytest

import kamtools as kt
from kamtools.kpi import KpiWarning

NA = None


def _tables() -> dict[str, pd.DataFrame]:
    """Three managers over 2024Q1-2024Q2 (as_of = last invoice, 2024-06-20).

    M1 runs A1 and A3, M2 runs A2, M3 runs A4. M3 started on 2024-05-01, so M3
    is in the role in Q2 only. Industries: Chemicals = A1 (M1), A4 (M3);
    Retail = A2 (M2), A3 (M1).
    """
    learning = [  # manager, date, kind, hours, completed
        ("M1", "2024-01-10", "training", 8, True),
        ("M1", "2024-02-10", "training", 4, False),
        ("M1", "2024-03-01", "coaching", 2, NA),
        ("M1", "2024-05-01", "coaching", 1.5, NA),
        ("M1", "2024-05-20", "certification", 10, True),
        ("M1", "2024-06-10", "certification", 6, True),
        ("M2", "2024-02-01", "coaching", 3, NA),
        ("M2", "2024-02-15", "certification", 6, False),  # not obtained
        ("M2", "2024-03-10", "training", 5, True),
        ("M2", "2024-04-01", "training", 6, True),
        ("M2", "2024-06-01", "training", 2, NA),  # completion not recorded: not completed
    ]
    assessments = [  # subject, date, dimension, score, assessor
        ("M1", "2024-01-30", "skills", 3, "supplier"),
        ("M1", "2024-04-30", "skills", 4, "supplier"),
        ("M2", "2024-02-28", "skills", 2, "supplier"),
        ("M2", "2024-03-15", "skills", 3, "customer"),
        ("A1", "2024-02-01", "skills", 1, "customer"),  # an account, not a manager: ignored
        ("M1", "2024-02-15", "feedback", 4, "customer"),
        ("M1", "2024-03-15", "feedback", 5, "supplier"),
        ("M2", "2024-05-15", "feedback", 3, "customer"),
        ("M3", "2024-06-01", "feedback", 2, "customer"),
        ("M2", "2024-01-05", "continuous_improvement", 3, "supplier"),
        ("M1", "2024-04-10", "continuous_improvement", 4, "supplier"),
        ("M2", "2024-06-20", "continuous_improvement", 2, "supplier"),
        ("A1", "2024-02-01", "plan_quality", 4, "supplier"),  # relationships pillar: not read here
    ]
    return {
        "accounts": pd.DataFrame({
            "account_id": ["A1", "A2", "A3", "A4"],
            "account_name": ["Acme", "Bolt", "Cobalt", "Delta"],
            "industry": ["Chemicals", "Retail", "Retail", "Chemicals"],
            "is_key_account": [True, False, True, False],
            "kam_start": ["2023-01-01", None, "2023-06-01", None],
            "manager_id": ["M1", "M2", "M1", "M3"],
        }),
        "managers": pd.DataFrame({
            "manager_id": ["M1", "M2", "M3"], "name": ["Ana", "Ben", "Cleo"],
            "start_date": ["2020-01-01", "2023-06-01", "2024-05-01"],
        }),
        "transactions": pd.DataFrame({
            "account_id": ["A1", "A2", "A3", "A4", "A1"],
            "date": ["2024-01-10", "2024-01-20", "2024-03-01", "2024-04-15", "2024-06-20"],
            "revenue": [100.0, 80.0, 300.0, 500.0, 150.0],
        }),
        "learning": pd.DataFrame(learning, columns=["manager_id", "date", "kind", "hours", "completed"]),
        "assessments": pd.DataFrame(assessments, columns=["subject_id", "date", "dimension", "score", "assessor"]),
    }


@pytest.fixture(scope="module")
def data():
    return kt.load(_tables(), currency="EUR")


def kpi_values(data, kpi, by="account"):
    """{(entity, period): value} of one KPI, quarterly."""
    v = kt.compute(data, [kpi], by=by, period="Q")
    return {(e, str(p)): x for e, p, x in zip(v["entity"], v["period"], v["value"], strict=True)}


Q1, Q2 = "2024Q1", "2024Q2"

# (kpi, by) -> {(entity, period): value}
EXPECTED = {
    # -- hours per manager, 0 without coaching; a group: mean per manager in the role
    ("coaching_hours", "manager"): {
        ("M1", Q1): 2.0, ("M1", Q2): 1.5,
        ("M2", Q1): 3.0, ("M2", Q2): 0.0,  # no coaching in Q2
        ("M3", Q2): 0.0,                    # not in the role before 2024-05-01
    },
    ("coaching_hours", "account"): {  # each account gets its manager's value
        ("A1", Q1): 2.0, ("A1", Q2): 1.5,  # M1
        ("A2", Q1): 3.0, ("A2", Q2): 0.0,  # M2
        ("A3", Q1): 2.0, ("A3", Q2): 1.5,  # M1
        ("A4", Q2): 0.0,                    # M3
    },
    ("coaching_hours", "portfolio"): {
        ("portfolio", Q1): 2.5,  # (M1 2 + M2 3) / 2 managers
        ("portfolio", Q2): 0.5,  # (M1 1.5 + M2 0 + M3 0) / 3 managers
    },
    ("coaching_hours", "industry"): {  # each manager once per industry
        ("Chemicals", Q1): 2.0, ("Chemicals", Q2): 0.75,  # M1 2 / 1; (M1 1.5 + M3 0) / 2
        ("Retail", Q1): 2.5, ("Retail", Q2): 0.75,        # (M2 3 + M1 2) / 2; (M2 0 + M1 1.5) / 2
    },
    # -- certifications obtained per manager
    ("certification_rate", "manager"): {
        ("M1", Q1): 0.0, ("M1", Q2): 2.0,  # 2024-05-20 and 2024-06-10
        ("M2", Q1): 0.0, ("M2", Q2): 0.0,  # the Q1 one was not obtained
        ("M3", Q2): 0.0,
    },
    ("certification_rate", "portfolio"): {
        ("portfolio", Q1): 0.0,    # 0 / 2 managers
        ("portfolio", Q2): 2 / 3,  # (2 + 0 + 0) / 3 managers
    },
    # -- completed / started trainings; a group pools them
    ("training_completion_rate", "manager"): {
        ("M1", Q1): 0.5,                    # 8 h done, 4 h not
        ("M2", Q1): 1.0, ("M2", Q2): 0.5,  # 1 of 1; 1 of 2 (completion not recorded)
    },
    ("training_completion_rate", "account"): {
        ("A1", Q1): 0.5, ("A3", Q1): 0.5,  # M1
        ("A2", Q1): 1.0, ("A2", Q2): 0.5,  # M2
    },
    ("training_completion_rate", "portfolio"): {
        ("portfolio", Q1): 2 / 3,  # (1 + 1) / (2 + 1)
        ("portfolio", Q2): 0.5,    # 1 / 2
    },
    # -- mean scores over both assessors; a group pools the scores
    ("skill_score", "manager"): {
        ("M1", Q1): 3.0, ("M1", Q2): 4.0,
        ("M2", Q1): 2.5,  # (2 + 3) / 2; the score on account A1 is not a manager's
    },
    ("skill_score", "portfolio"): {
        ("portfolio", Q1): 8 / 3,  # (3 + 2 + 3) / 3
        ("portfolio", Q2): 4.0,
    },
    ("feedback_score", "account"): {
        ("A1", Q1): 4.5, ("A3", Q1): 4.5,  # M1: (4 + 5) / 2
        ("A2", Q2): 3.0,                    # M2
        ("A4", Q2): 2.0,                    # M3
    },
    ("feedback_score", "industry"): {
        ("Chemicals", Q1): 4.5, ("Chemicals", Q2): 2.0,  # M1; M3
        ("Retail", Q1): 4.5, ("Retail", Q2): 3.0,        # M1; M2
    },
    ("feedback_score", "portfolio"): {
        ("portfolio", Q1): 4.5,  # (4 + 5) / 2
        ("portfolio", Q2): 2.5,  # (3 + 2) / 2
    },
    ("continuous_improvement", "manager"): {
        ("M1", Q2): 4.0,
        ("M2", Q1): 3.0, ("M2", Q2): 2.0,
    },
    ("continuous_improvement", "portfolio"): {
        ("portfolio", Q1): 3.0,
        ("portfolio", Q2): 3.0,  # (4 + 2) / 2
    },
}


@pytest.mark.parametrize(("kpi", "by"), list(EXPECTED), ids=[f"{k}-by-{b}" for k, b in EXPECTED])
def test_kpi_values_by_hand(data, kpi, by):
    assert kpi_values(data, kpi, by) == pytest.approx(EXPECTED[(kpi, by)])


LEARNING_KPIS = sorted({k for k, _ in EXPECTED})


def test_catalogue_lists_the_pillar():
    cat = kt.kpis(pillar="learning")
    assert set(LEARNING_KPIS) <= set(cat.index)
    mine = cat.loc[LEARNING_KPIS]
    assert (mine["grain"] == "manager").all()
    assert (mine["level"] == "supplier").all()
    assert mine["builtin"].all()
    # coaching on offer is the organisation's to give; the rest is the manager's own doing
    assert mine.loc[mine["controllable"] == False].index.tolist() == ["coaching_hours"]  # noqa: E712


def test_without_managers_table_every_period_counts():
    tables = _tables()
    del tables["managers"], tables["assessments"]  # assessments of managers need the managers table
    data = kt.load(tables, currency="EUR")
    # no start dates: M3 counts (with 0 hours) in Q1 too
    assert kpi_values(data, "coaching_hours", "portfolio") == pytest.approx(
        {("portfolio", Q1): 5 / 3, ("portfolio", Q2): 0.5}  # (2 + 3 + 0) / 3; (1.5 + 0 + 0) / 3
    )


NOT_COMPUTABLE = [
    *[
        (("learning", None), k, "not computable: needs table learning")
        for k in ("coaching_hours", "certification_rate", "training_completion_rate")
    ],
    *[
        (("assessments", None), k, "not computable: needs table assessments")
        for k in ("skill_score", "feedback_score", "continuous_improvement")
    ],
    (("learning", "hours"), "coaching_hours", "not computable: needs column learning.hours"),
    (("learning", "completed"), "certification_rate", "not computable: needs column learning.completed"),
    (("learning", "completed"), "training_completion_rate", "not computable: needs column learning.completed"),
    (("accounts", "manager_id"), "coaching_hours", "not computable: needs column accounts.manager_id"),
    (("accounts", "manager_id"), "skill_score", "not computable: needs column accounts.manager_id"),
]


@pytest.mark.parametrize(
    ("drop", "kpi", "note"), NOT_COMPUTABLE,
    ids=[f"{k}-without-{'.'.join(filter(None, d))}" for d, k, _ in NOT_COMPUTABLE],
)
def test_not_computable(drop, kpi, note):
    table, column = drop
    tables = _tables()
    if column is None:
        del tables[table]
    else:
        tables[table] = tables[table].drop(columns=column)
    data = kt.load(tables, currency="EUR")
    with pytest.warns(KpiWarning, match=kpi):
        v = kt.compute(data, [kpi], period="Q")
    assert v["value"].isna().all()
    assert set(v["note"]) == {note}
    assert len(v) == 8  # the 4 accounts x 2 quarters
