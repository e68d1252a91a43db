"""Relationships pillar KPIs, checked against hand computations on a tiny data set."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import kamtools as kt
from kamtools.exceptions import DataWarning
from kamtools.kpi import KpiWarning

NA = None


def _tables() -> dict[str, pd.DataFrame]:
    """Four accounts over 2024Q1-2024Q2 (as_of = last invoice, 2024-06-20).

    Active account-periods: A1, A2, A3 in Q1 and Q2 (A3 last bought in Q1, within
    a year of as_of, so it stays active); A4 only in Q2 (first invoice 2024-04-15).
    Industries: Chemicals = A1, A4; Retail = A2, A3.
    """
    tx = [
        ("A1", "2024-01-10", "P1", 100), ("A1", "2024-02-05", "P2", 200), ("A1", "2024-05-03", "P1", 150),
        ("A2", "2024-01-20", "P1", 80), ("A2", "2024-02-11", "P3", 40), ("A2", "2024-03-02", "P3", -40),
        ("A2", "2024-04-18", "P2", 60),
        ("A3", "2024-03-01", "P1", 300), ("A3", "2024-03-01", "P2", 100), ("A3", "2024-03-01", "P3", 50),
        ("A4", "2024-04-15", "P2", 500), ("A4", "2024-06-20", "P3", 100),
    ]
    ix = [  # account, date, kind, contact, manager, attended
        ("A1", "2024-01-15", "meeting", "C1", "M1", True),              # 1
        ("A1", "2024-02-10", "call", "C2", "M1", NA),                   # 2
        ("A1", "2024-03-05", "business_review", "C1", "M1", True),      # 3
        ("A1", "2024-03-20", "executive_meeting", "C3", "M1", False),   # 4 no-show
        ("A1", "2024-05-10", "executive_meeting", "C3", "M1", True),    # 5
        ("A1", "2024-06-01", "email", "C2", "M1", NA),                  # 6
        ("A2", "2024-02-01", "meeting", "C4", "M2", False),             # 7 no-show
        ("A2", "2024-02-15", "meeting", "C4", "M2", True),              # 8
        ("A2", "2024-03-25", "executive_meeting", "C4", "M2", True),    # 9
        ("A2", "2024-04-10", "workshop", "C4", "M2", True),             # 10
        ("A2", "2024-05-20", "business_review", "C4", "M2", False),     # 11 no-show
        ("A3", "2024-01-25", "call", "C5", "M1", NA),                   # 12
        ("A3", "2024-03-10", "workshop", "C6", "M1", True),             # 13
        ("A3", "2024-05-05", "meeting", "C5", "M1", NA),                # 14 attendance not recorded
        ("A3", "2024-06-10", "business_review", "C6", "M1", True),      # 15
        ("A4", "2024-06-15", "call", NA, "M3", NA),                     # 16 no contact recorded
    ]
    assessments = [  # subject, date, dimension, score, assessor
        ("A1", "2024-02-01", "plan_quality", 4, "supplier"),
        ("A1", "2024-02-01", "plan_quality", 2, "customer"),
        ("A3", "2024-03-15", "plan_quality", 2, "supplier"),
        ("A2", "2024-05-01", "plan_quality", 5, "supplier"),
        ("M1", "2024-02-10", "plan_quality", 1, "supplier"),  # a manager, not an account: ignored
        ("A1", "2024-04-20", "needs_analysis", 4, "customer"),
        ("A2", "2024-06-01", "needs_analysis", 2, "customer"),
        ("A2", "2024-06-02", "needs_analysis", 3, "supplier"),
        ("A1", "2024-01-30", "collaboration", 5, "supplier"),
        ("A3", "2024-02-28", "collaboration", 2, "supplier"),
        ("A3", "2024-05-30", "collaboration", 4, "supplier"),
        ("A2", "2024-03-01", "solution_relevance", 2, "customer"),
        ("A3", "2024-03-20", "solution_relevance", 5, "customer"),
        ("A3", "2024-03-21", "solution_relevance", 3, "supplier"),
        ("M1", "2024-03-01", "skills", 3, "supplier"),  # learning pillar: not read here
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
        "transactions": pd.DataFrame(tx, columns=["account_id", "date", "product", "revenue"]),
        "interactions": pd.DataFrame(
            ix, columns=["account_id", "date", "kind", "contact_id", "manager_id", "attended"]
        ),
        "contacts": pd.DataFrame({
            "contact_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
            "account_id": ["A1", "A1", "A1", "A2", "A3", "A3"],
            "role": ["CEO", "Buyer", "CFO", "Owner", "Buyer", "Engineer"],
            "is_decision_maker": [True, False, True, True, NA, False],
        }),
        "assessments": pd.DataFrame(assessments, columns=["subject_id", "date", "dimension", "score", "assessor"]),
    }


def _load(tables):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # A2's credit note of -40 is intended
        return kt.load(tables, currency="EUR")


@pytest.fixture(scope="module")
def data():
    return _load(_tables())


def kpi_values(data, kpi, by="account"):
    """{(entity, period): value} of one KPI, quarterly."""
    v = kt.compute(data, [kpi], by=by, period="Q")
    return {(e, str(p)): x for e, p, x in zip(v["entity"], v["period"], v["value"], strict=True)}


Q1, Q2 = "2024Q1", "2024Q2"

# (kpi, by) -> {(entity, period): value}. Interaction numbers refer to the comments in _tables().
EXPECTED = {
    # -- every logged interaction, no-shows included; a group adds them up
    ("touchpoints", "account"): {
        ("A1", Q1): 4, ("A1", Q2): 2,  # #1-#4; #5, #6
        ("A2", Q1): 3, ("A2", Q2): 2,  # #7-#9; #10, #11
        ("A3", Q1): 2, ("A3", Q2): 2,  # #12, #13; #14, #15
        ("A4", Q2): 1,                  # #16 (A4 is not active in Q1)
    },
    ("touchpoints", "industry"): {
        ("Chemicals", Q1): 4, ("Chemicals", Q2): 3,  # A1 4; A1 2 + A4 1
        ("Retail", Q1): 5, ("Retail", Q2): 4,        # A2 3 + A3 2; A2 2 + A3 2
    },
    # -- interactions that took place (attended not false), mean per active account
    ("engagement_frequency", "account"): {
        ("A1", Q1): 3, ("A1", Q2): 2,  # #1, #2, #3 (#4 no-show); #5, #6
        ("A2", Q1): 2, ("A2", Q2): 1,  # #8, #9; #10
        ("A3", Q1): 2, ("A3", Q2): 2,  # #12, #13; #14, #15
        ("A4", Q2): 1,                  # #16
    },
    ("engagement_frequency", "portfolio"): {
        ("portfolio", Q1): 7 / 3,  # (3 + 2 + 2) / 3 active accounts
        ("portfolio", Q2): 1.5,    # (2 + 1 + 2 + 1) / 4 active accounts
    },
    # -- distinct contacts met in interactions that took place, mean per active account
    ("engagement_breadth", "account"): {
        ("A1", Q1): 2, ("A1", Q2): 2,  # C1, C2 (C3's meeting was a no-show); C3, C2
        ("A2", Q1): 1, ("A2", Q2): 1,  # C4; C4
        ("A3", Q1): 2, ("A3", Q2): 2,  # C5, C6; C5, C6
        ("A4", Q2): 0,                  # #16 has no contact
    },
    ("engagement_breadth", "portfolio"): {
        ("portfolio", Q1): 5 / 3,  # (2 + 1 + 2) / 3
        ("portfolio", Q2): 1.25,   # (2 + 1 + 2 + 0) / 4
    },
    # -- distinct products with positive net revenue, mean per active account
    ("product_breadth", "account"): {
        ("A1", Q1): 2, ("A1", Q2): 1,  # P1, P2; P1
        ("A2", Q1): 1, ("A2", Q2): 1,  # P1 (P3: 40 - 40 = 0 net); P2
        ("A3", Q1): 3, ("A3", Q2): 0,  # P1, P2, P3; nothing bought, still active
        ("A4", Q2): 2,                  # P2, P3
    },
    ("product_breadth", "industry"): {
        ("Chemicals", Q1): 2, ("Chemicals", Q2): 1.5,  # A1 2 / 1; (A1 1 + A4 2) / 2
        ("Retail", Q1): 2, ("Retail", Q2): 0.5,        # (A2 1 + A3 3) / 2; (A2 1 + A3 0) / 2
    },
    # -- business reviews that took place, summed
    ("business_reviews", "account"): {
        ("A1", Q1): 1, ("A1", Q2): 0,  # #3
        ("A2", Q1): 0, ("A2", Q2): 0,  # #11 was a no-show
        ("A3", Q1): 0, ("A3", Q2): 1,  # #15
        ("A4", Q2): 0,
    },
    ("business_reviews", "industry"): {
        ("Chemicals", Q1): 1, ("Chemicals", Q2): 0,  # A1 #3
        ("Retail", Q1): 0, ("Retail", Q2): 1,        # A3 #15
    },
    # -- 1 if an executive meeting took place; a group: share of active accounts
    ("executive_sponsorship", "account"): {
        ("A1", Q1): 0, ("A1", Q2): 1,  # #4 was a no-show; #5
        ("A2", Q1): 1, ("A2", Q2): 0,  # #9
        ("A3", Q1): 0, ("A3", Q2): 0,
        ("A4", Q2): 0,
    },
    ("executive_sponsorship", "industry"): {
        ("Chemicals", Q1): 0, ("Chemicals", Q2): 0.5,  # A1 0 / 1; (A1 1 + A4 0) / 2
        ("Retail", Q1): 0.5, ("Retail", Q2): 0,        # (A2 1 + A3 0) / 2; 0 / 2
    },
    # -- attended / planned meetings with attendance recorded; a group pools them
    ("meeting_attendance_rate", "account"): {
        ("A1", Q1): 2 / 3, ("A1", Q2): 1.0,  # #1, #3 of #1, #3, #4; #5 of #5 (calls, e-mails left out)
        ("A2", Q1): 2 / 3, ("A2", Q2): 0.5,  # #8, #9 of #7-#9; #10 of #10, #11
        ("A3", Q1): 1.0, ("A3", Q2): 1.0,    # #13 of #13; #15 of #15 (#14 not recorded)
    },                                        # A4 had no meeting: no value
    ("meeting_attendance_rate", "portfolio"): {
        ("portfolio", Q1): 5 / 7,  # (2 + 2 + 1) / (3 + 3 + 1)
        ("portfolio", Q2): 3 / 4,  # (1 + 1 + 1) / (1 + 2 + 1)
    },
    # -- contacts as exported, on every active period; summed
    ("contacts", "account"): {
        ("A1", Q1): 3, ("A1", Q2): 3,  # C1, C2, C3
        ("A2", Q1): 1, ("A2", Q2): 1,  # C4
        ("A3", Q1): 2, ("A3", Q2): 2,  # C5, C6
        ("A4", Q2): 0,                  # none known
    },
    ("contacts", "industry"): {
        ("Chemicals", Q1): 3, ("Chemicals", Q2): 3,  # A1 3; A1 3 + A4 0
        ("Retail", Q1): 3, ("Retail", Q2): 3,        # A2 1 + A3 2
    },
    ("decision_makers", "account"): {
        ("A1", Q1): 2, ("A1", Q2): 2,  # C1, C3
        ("A2", Q1): 1, ("A2", Q2): 1,  # C4
        ("A3", Q1): 0, ("A3", Q2): 0,  # C5 unknown (counts as not), C6 false
        ("A4", Q2): 0,
    },
    ("decision_makers", "portfolio"): {
        ("portfolio", Q1): 3, ("portfolio", Q2): 3,  # 2 + 1 + 0 (+ 0)
    },
    # -- assessment means over both assessors; a group pools the scores
    ("account_plan_quality", "account"): {
        ("A1", Q1): 3.0,  # (4 supplier + 2 customer) / 2
        ("A3", Q1): 2.0,
        ("A2", Q2): 5.0,  # the score on manager M1 is not an account's
    },
    ("account_plan_quality", "portfolio"): {
        ("portfolio", Q1): 8 / 3,  # (4 + 2 + 2) / 3
        ("portfolio", Q2): 5.0,
    },
    ("needs_analysis", "account"): {
        ("A1", Q2): 4.0,
        ("A2", Q2): 2.5,  # (2 + 3) / 2
    },
    ("needs_analysis", "portfolio"): {
        ("portfolio", Q2): 3.0,  # (4 + 2 + 3) / 3
    },
    ("internal_collaboration", "account"): {
        ("A1", Q1): 5.0,
        ("A3", Q1): 2.0, ("A3", Q2): 4.0,
    },
    ("internal_collaboration", "industry"): {
        ("Chemicals", Q1): 5.0,
        ("Retail", Q1): 2.0, ("Retail", Q2): 4.0,
    },
    ("internal_collaboration", "portfolio"): {
        ("portfolio", Q1): 3.5,  # (5 + 2) / 2
        ("portfolio", Q2): 4.0,
    },
    ("solution_relevance", "account"): {
        ("A2", Q1): 2.0,
        ("A3", Q1): 4.0,  # (5 customer + 3 supplier) / 2
    },
    ("solution_relevance", "industry"): {
        ("Retail", Q1): 10 / 3,  # (2 + 5 + 3) / 3: pooled scores, not the mean of 2 and 4
    },
}


@pytest.mark.parametrize(("kpi", "by"), list(EXPECTED), ids=[f"{k}-by-{b}" for k, b in EXPECTED])
def test_kpi_values_by_hand(data, kpi, by):
    assert kpi_values(data, kpi, by) == pytest.approx(EXPECTED[(kpi, by)])


RELATIONSHIP_KPIS = sorted({k for k, _ in EXPECTED})


def test_catalogue_lists_the_pillar():
    cat = kt.kpis(pillar="relationships")
    assert set(RELATIONSHIP_KPIS) <= set(cat.index)
    mine = cat.loc[RELATIONSHIP_KPIS]
    assert mine["builtin"].all()
    assert (mine.loc[["executive_sponsorship", "meeting_attendance_rate"], "unit"] == "share").all()
    scores = ["account_plan_quality", "needs_analysis", "internal_collaboration", "solution_relevance"]
    assert (mine.loc[scores, "unit"] == "score 1-5").all()


def test_as_of_hides_later_interactions(data):
    v = kt.compute(data, ["touchpoints"], by="portfolio", period="Q", as_of="2024-03-10")
    # up to 2024-03-10: #1, #2, #3 (A1), #7, #8 (A2), #12, #13 (A3)
    assert v["value"].tolist() == [7.0]


def test_without_attendance_every_interaction_took_place():
    tables = _tables()
    tables["interactions"] = tables["interactions"].drop(columns="attended")
    data = _load(tables)
    # nothing is known to be a no-show: engagement frequency equals touchpoints
    assert kpi_values(data, "engagement_frequency") == kpi_values(data, "touchpoints")
    # A1 Q1: #1 #2 #3 #4 -> C1, C2, C3
    assert kpi_values(data, "engagement_breadth")[("A1", Q1)] == 3
    # A1 Q1: #4 now counts as an executive meeting held
    assert kpi_values(data, "executive_sponsorship")[("A1", Q1)] == 1


INTERACTION_KPIS = [
    "engagement_frequency", "engagement_breadth", "business_reviews", "executive_sponsorship",
    "touchpoints", "meeting_attendance_rate",
]


NOT_COMPUTABLE = [
    *[(("interactions", None), k, "not computable: needs table interactions") for k in INTERACTION_KPIS],
    *[(("contacts", None), k, "not computable: needs table contacts") for k in ("contacts", "decision_makers")],
    *[
        (("assessments", None), k, "not computable: needs table assessments")
        for k in ("account_plan_quality", "needs_analysis", "internal_collaboration", "solution_relevance")
    ],
    (("interactions", "contact_id"), "engagement_breadth", "not computable: needs column interactions.contact_id"),
    (("interactions", "attended"), "meeting_attendance_rate", "not computable: needs column interactions.attended"),
    (("contacts", "is_decision_maker"), "decision_makers", "not computable: needs column contacts.is_decision_maker"),
    (("transactions", "product"), "product_breadth", "not computable: needs column transactions.product"),
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
    data = _load(tables)
    with pytest.warns(KpiWarning, match=kpi):
        v = kt.compute(data, [kpi], period="Q")
    assert v["value"].isna().all()
    assert set(v["note"]) == {note}
    assert len(v) == 8  # the 4 accounts x 2 quarters
