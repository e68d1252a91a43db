"""Retention pillar KPIs, checked against values computed by hand.

The data set below is small enough to follow on paper. Yearly periods, as of
2024-12-31 unless a test says otherwise. Revenue by account and year:

    account  industry    2021  2022  2023  2024   first / last invoice
    A1       Chemicals   1000  1500  1200  1500   2021-03-10 / 2024-11-20
    A2       Chemicals    600   300     0     0   2021-04-01 / 2022-06-15
    A3       Retail       400     0   400     0   2021-09-01 / 2023-03-15
    A4       Retail         0     0   600   300   2023-02-01 / 2024-10-01

Active grid (first to last invoice year; a purchase within 365 days of as_of
keeps the account active to 2024): A1 2021-24, A2 2021-22, A3 2021-23, A4 2023-24.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

import kamtools as kt
from kamtools.kpi import KpiWarning
from kamtools.kpi.retention import DEFECTION_POINTS, defection_signals

NAN = float("nan")
AS_OF = "2024-12-31"

KEYS = [
    "churn_rate", "retention_rate", "contract_churn_rate", "contract_renewal_rate", "contract_length_change",
    "net_revenue_retention", "gross_revenue_retention", "nps", "csat", "preferred_supplier_share",
    "supplier_consolidation_rate", "competitive_win_rate", "defection_risk", "issue_resolution_time",
    "response_time",
]


def _tables() -> dict[str, pd.DataFrame]:
    return {
        "accounts": pd.DataFrame(
            {
                "account_id": ["A1", "A2", "A3", "A4"],
                "account_name": ["Acme", "Borg", "Cato", "Dune"],
                "industry": ["Chemicals", "Chemicals", "Retail", "Retail"],
                "is_key_account": ["true", "false", "true", "false"],
                "kam_start": ["2021-01-01", "", "2021-01-01", ""],
                "manager_id": ["M1", "M2", "M1", "M2"],
                "preferred_supplier": ["true", "false", "true", ""],
            }
        ),
        "managers": pd.DataFrame(
            {"manager_id": ["M1", "M2"], "name": ["Ana", "Ben"], "start_date": ["2019-01-01", "2020-01-01"]}
        ),
        "transactions": pd.DataFrame(
            [
                ("A1", "2021-03-10", 1000), ("A1", "2022-02-15", 1000), ("A1", "2022-08-20", 500),
                ("A1", "2023-05-10", 1200), ("A1", "2024-03-01", 1000), ("A1", "2024-11-20", 500),
                ("A2", "2021-04-01", 600), ("A2", "2022-06-15", 300),
                ("A3", "2021-09-01", 400), ("A3", "2023-03-15", 400),
                ("A4", "2023-02-01", 600), ("A4", "2024-10-01", 300),
            ],
            columns=["account_id", "date", "revenue"],
        ),
        "contracts": pd.DataFrame(
            [
                ("K1", "A1", "2021-01-01", "2022-12-31", "renewed"),  # 24 months, renewed by K2
                ("K2", "A1", "2023-01-01", "2025-12-31", "renewed"),  # 36 months; ends after as_of: no outcome yet
                ("K8", "A1", "2022-11-15", "2023-11-14", "lapsed"),  # parallel contract; K2 keeps A1
                ("K3", "A2", "2021-07-01", "2022-06-30", "lapsed"),  # A2's only contract: lost in 2022
                ("K4", "A3", "2021-04-01", "2023-03-31", "renewed_after_rebid"),  # 24 months -> K5
                ("K5", "A3", "2023-04-01", "2024-03-31", "lapsed"),  # 12 months; A3 lost in 2024
                ("K6", "A4", "2023-03-01", "2023-12-31", "renewed"),  # 10 months -> K7
                ("K7", "A4", "2024-01-01", "2025-12-31", "active"),  # 24 months
            ],
            columns=["contract_id", "account_id", "start", "end", "outcome"],
        ),
        "interactions": pd.DataFrame(
            [
                ("A1", "2023-03-01", "meeting", "true"),
                ("A1", "2023-05-01", "executive_meeting", "true"),
                ("A1", "2023-09-15", "workshop", "true"),
                ("A1", "2024-02-01", "call", "false"),
                ("A3", "2023-06-01", "executive_meeting", "false"),
                ("A4", "2023-07-01", "executive_meeting", "true"),
                ("A4", "2024-04-01", "meeting", "true"),
            ],
            columns=["account_id", "date", "kind", "attended"],
        ),
        "surveys": pd.DataFrame(
            [
                ("A3", "2022-06-30", "3", "2", "5"),
                ("A1", "2023-02-01", "9", "4", "4"),
                ("A1", "2023-06-30", "5", "2", ""),
                ("A3", "2023-05-01", "", "3", "4"),
                ("A4", "2023-09-30", "8", "4", "3"),
                ("A4", "2023-12-15", "10", "5", "2"),
                ("A1", "2024-03-31", "9", "5", "3"),
                ("A4", "2024-06-30", "", "", "3"),
                ("A1", "2024-09-30", "10", "", "2"),
            ],
            columns=["account_id", "date", "nps", "csat", "suppliers"],
        ),
        "opportunities": pd.DataFrame(
            [
                ("O1", "A1", "2022-01-10", "2022-03-01", "won", "Rival"),
                ("O2", "A1", "2022-02-01", "2022-05-01", "lost", "Rival"),
                ("O3", "A2", "2022-03-01", "2022-04-01", "won", ""),  # no competitor named
                ("O4", "A3", "2023-01-01", "2023-02-01", "won", "Other"),
                ("O5", "A4", "2024-05-01", "", "open", "Rival"),  # not decided
                ("O6", "A4", "2024-01-01", "2024-03-01", "lost", "Rival"),
                ("O7", "A1", "2024-02-01", "2024-06-01", "won", "Rival"),
            ],
            columns=["opportunity_id", "account_id", "created", "closed", "status", "competitor"],
        ),
        "tickets": pd.DataFrame(
            [
                ("T1", "A1", "2023-11-01 09:00", "2023-11-01 15:00", "2024-01-15 09:00", "high"),
                ("T2", "A4", "2024-06-01 08:00", "2024-06-02 08:00", "", "critical"),
                ("T3", "A3", "2023-02-01 09:00", "", "", "low"),
                ("T4", "A1", "2024-12-01 10:00", "2024-12-01 12:00", "2024-12-03 10:00", "medium"),
                ("T5", "A3", "2023-03-01 00:00", "2023-03-01 04:00", "2023-03-11 00:00", "low"),
                ("T6", "A4", "2024-02-01 00:00", "2024-02-01 01:00", "2024-02-05 00:00", "low"),
                ("T7", "A1", "2024-12-30 09:00", "2025-01-02 09:00", "", "low"),  # answered after as_of
            ],
            columns=["ticket_id", "account_id", "opened", "first_response", "resolved", "severity"],
        ),
    }


@pytest.fixture(scope="module")
def data():
    return kt.load(_tables(), currency="EUR")


def values(data, kpi, by="account", **kw) -> dict[tuple[str, str], float]:
    kw.setdefault("as_of", AS_OF)
    res = kt.compute(data, kpi, by=by, period=kw.pop("period", "Y"), **kw)
    return {(e, str(p)): v for e, p, v in zip(res["entity"], res["period"], res["value"], strict=True)}


def check(got: dict, expected: dict):
    assert set(got) == set(expected), f"rows differ: got {sorted(got)}, expected {sorted(expected)}"
    for key, want in expected.items():
        if math.isnan(want):
            assert math.isnan(got[key]), f"{key}: expected no value, got {got[key]}"
        else:
            assert got[key] == pytest.approx(want), f"{key}: got {got[key]}, expected {want}"


# Each case: KPI, grouping, extra compute arguments, expected {(entity, period): value}.
CASES = [
    # churn: lost = last invoice in the year and none in the >= 365 days after it (on or before 2024-01-01).
    # Base = active in the year with a first invoice in an earlier year. 2024 is not final (NaN).
    pytest.param("churn_rate", "account", {}, {
        ("A1", "2022"): 0.0, ("A1", "2023"): 0.0, ("A1", "2024"): NAN,
        ("A2", "2022"): 1.0,  # last invoice 2022-06-15
        ("A3", "2022"): 0.0, ("A3", "2023"): 1.0,  # last invoice 2023-03-15
        ("A4", "2024"): NAN,  # first invoice 2023: in the base of 2024 only, which is not final
    }, id="churn-account"),
    pytest.param("churn_rate", "portfolio", {}, {
        ("portfolio", "2022"): 1 / 3,  # A2 lost of A1, A2, A3
        ("portfolio", "2023"): 1 / 2,  # A3 lost of A1, A3 (A4 new in 2023)
        ("portfolio", "2024"): NAN,  # 2024 ended 0 days before as_of, not 365
    }, id="churn-portfolio"),
    pytest.param("churn_rate", "industry", {}, {
        ("Chemicals", "2022"): 1 / 2,  # A2 of A1, A2
        ("Chemicals", "2023"): 0.0,  # A1 stays
        ("Chemicals", "2024"): NAN,
        ("Retail", "2022"): 0.0,  # A3 of A3
        ("Retail", "2023"): 1.0,  # A3 of A3
        ("Retail", "2024"): NAN,
    }, id="churn-industry"),
    pytest.param("churn_rate", "portfolio", {"as_of": "2024-12-30"}, {
        ("portfolio", "2022"): 1 / 3,  # as above
        ("portfolio", "2023"): 1 / 2,  # 2023-12-31 is 365 days before 2024-12-30: final
        ("portfolio", "2024"): NAN,
    }, id="churn-final-after-365-days"),
    pytest.param("churn_rate", "portfolio", {"as_of": "2024-12-29"}, {
        ("portfolio", "2022"): 1 / 3,  # as above
        ("portfolio", "2023"): NAN,  # 2023-12-31 is only 364 days before 2024-12-29: not final
        ("portfolio", "2024"): NAN,
    }, id="churn-not-final-yet"),
    pytest.param("retention_rate", "portfolio", {}, {
        ("portfolio", "2022"): 2 / 3,  # A1, A3 of A1, A2, A3
        ("portfolio", "2023"): 1 / 2,  # A1 of A1, A3
        ("portfolio", "2024"): NAN,
    }, id="retention-portfolio"),
    pytest.param("retention_rate", "industry", {}, {
        ("Chemicals", "2022"): 1 / 2, ("Chemicals", "2023"): 1.0, ("Chemicals", "2024"): NAN,  # A1 of A1, A2; A1 of A1
        ("Retail", "2022"): 1.0, ("Retail", "2023"): 0.0, ("Retail", "2024"): NAN,  # A3 of A3; none of A3
    }, id="retention-industry"),
    # contract churn: base = a contract covers 1 January; lost = last contract lapsed in the year.
    pytest.param("contract_churn_rate", "account", {}, {
        ("A1", "2021"): 0.0, ("A1", "2022"): 0.0, ("A1", "2023"): 0.0, ("A1", "2024"): 0.0,  # K8 lapsed, K2 runs on
        ("A2", "2022"): 1.0,  # K3 lapsed 2022-06-30
        ("A3", "2022"): 0.0, ("A3", "2023"): 0.0, ("A3", "2024"): 1.0,  # K5 lapsed 2024-03-31
        ("A4", "2024"): 0.0,  # K6 started 2023-03-01: not under contract on 2023-01-01
    }, id="contract-churn-account"),
    pytest.param("contract_churn_rate", "portfolio", {}, {
        ("portfolio", "2021"): 0.0,  # 0 of A1 (K1 starts 2021-01-01)
        ("portfolio", "2022"): 1 / 3,  # A2 of A1, A2, A3
        ("portfolio", "2023"): 0.0,  # 0 of A1, A3
        ("portfolio", "2024"): 1 / 3,  # A3 of A1, A3, A4
    }, id="contract-churn-portfolio"),
    pytest.param("contract_churn_rate", "industry", {"as_of": "2024-11-30"}, {
        ("Chemicals", "2021"): 0.0, ("Chemicals", "2022"): 1 / 2,  # A2 of A1, A2
        ("Chemicals", "2023"): 0.0, ("Chemicals", "2024"): NAN,  # 2024 has not ended
        ("Retail", "2022"): 0.0, ("Retail", "2023"): 0.0, ("Retail", "2024"): NAN,
    }, id="contract-churn-industry-running-year"),
    # renewal: renewed / (renewed + renewed_after_rebid + lapsed), year of the end; K2 ends after as_of.
    pytest.param("contract_renewal_rate", "account", {}, {
        ("A1", "2022"): 1.0,  # K1 renewed
        ("A1", "2023"): 0.0,  # K8 lapsed
        ("A2", "2022"): 0.0,  # K3 lapsed
        ("A3", "2023"): 0.0,  # K4 renewed after a rebid
        ("A3", "2024"): 0.0,  # K5 lapsed
        ("A4", "2023"): 1.0,  # K6 renewed
    }, id="renewal-account"),
    pytest.param("contract_renewal_rate", "portfolio", {}, {
        ("portfolio", "2022"): 1 / 2,  # K1 of K1, K3
        ("portfolio", "2023"): 1 / 3,  # K6 of K4, K6, K8
        ("portfolio", "2024"): 0.0,  # 0 of K5
    }, id="renewal-portfolio"),
    pytest.param("contract_renewal_rate", "industry", {}, {
        ("Chemicals", "2022"): 1 / 2, ("Chemicals", "2023"): 0.0,  # K1 of K1, K3; 0 of K8
        ("Retail", "2023"): 1 / 2, ("Retail", "2024"): 0.0,  # K6 of K4, K6; 0 of K5
    }, id="renewal-industry"),
    # length change: new term - old term, in the year the old term ended
    pytest.param("contract_length_change", "account", {}, {
        ("A1", "2022"): 12.0,  # K2 36 - K1 24 (K8 starts 47 days before K1 ends: K2, 0 days, is closer)
        ("A3", "2023"): -12.0,  # K5 12 - K4 24
        ("A4", "2023"): 14.0,  # K7 24 - K6 10
    }, id="length-change-account"),
    pytest.param("contract_length_change", "portfolio", {}, {
        ("portfolio", "2022"): 12.0,  # one renewal
        ("portfolio", "2023"): 1.0,  # (-12 + 14) / 2 renewals
    }, id="length-change-portfolio"),
    # NRR / GRR: accounts with revenue in the previous year; GRR caps each at last year's revenue.
    pytest.param("net_revenue_retention", "account", {}, {
        ("A1", "2022"): 1.5, ("A1", "2023"): 0.8, ("A1", "2024"): 1.25,  # 1500/1000, 1200/1500, 1500/1200
        ("A2", "2022"): 0.5, ("A2", "2023"): 0.0,  # 300/600, 0/300
        ("A3", "2022"): 0.0, ("A3", "2024"): 0.0,  # 0/400, 0/400
        ("A4", "2024"): 0.5,  # 300/600
    }, id="nrr-account"),
    pytest.param("net_revenue_retention", "portfolio", {}, {
        ("portfolio", "2022"): 0.9,  # (1500 + 300 + 0) / (1000 + 600 + 400)
        ("portfolio", "2023"): 2 / 3,  # (1200 + 0) / (1500 + 300); A3's and A4's 2023 revenue not counted
        ("portfolio", "2024"): 9 / 11,  # (1500 + 0 + 300) / (1200 + 400 + 600)
    }, id="nrr-portfolio"),
    pytest.param("net_revenue_retention", "industry", {"as_of": "2024-11-30"}, {
        ("Chemicals", "2022"): 1.125,  # (1500 + 300) / (1000 + 600)
        ("Chemicals", "2023"): 2 / 3,  # (1200 + 0) / (1500 + 300)
        ("Chemicals", "2024"): NAN,  # 2024 still running on 2024-11-30
        ("Retail", "2022"): 0.0,  # 0 / 400
        ("Retail", "2024"): NAN,
    }, id="nrr-industry-running-year"),
    pytest.param("gross_revenue_retention", "account", {}, {
        ("A1", "2022"): 1.0, ("A1", "2023"): 0.8, ("A1", "2024"): 1.0,  # min(1500,1000)/1000, 1200/1500, 1200/1200
        ("A2", "2022"): 0.5, ("A2", "2023"): 0.0,
        ("A3", "2022"): 0.0, ("A3", "2024"): 0.0,
        ("A4", "2024"): 0.5,
    }, id="grr-account"),
    pytest.param("gross_revenue_retention", "portfolio", {}, {
        ("portfolio", "2022"): 0.65,  # (1000 + 300 + 0) / 2000
        ("portfolio", "2023"): 2 / 3,  # (1200 + 0) / 1800
        ("portfolio", "2024"): 15 / 22,  # (1200 + 0 + 300) / 2200
    }, id="grr-portfolio"),
    pytest.param("gross_revenue_retention", "industry", {}, {
        ("Chemicals", "2022"): 0.8125,  # (1000 + 300) / 1600
        ("Chemicals", "2023"): 2 / 3,  # 1200 / 1800
        ("Chemicals", "2024"): 1.0,  # 1200 / 1200
        ("Retail", "2022"): 0.0,  # 0 / 400
        ("Retail", "2024"): 0.3,  # (0 + 300) / (400 + 600)
    }, id="grr-industry"),
    # NPS: 100 * (promoters - detractors) / answers
    pytest.param("nps", "account", {}, {
        ("A3", "2022"): -100.0,  # one answer, 3
        ("A1", "2023"): 0.0,  # 9 and 5: (1 - 1) / 2
        ("A4", "2023"): 50.0,  # 8 and 10: (1 - 0) / 2
        ("A1", "2024"): 100.0,  # 9 and 10
    }, id="nps-account"),
    pytest.param("nps", "portfolio", {}, {
        ("portfolio", "2022"): -100.0,
        ("portfolio", "2023"): 25.0,  # 9, 5, 8, 10 (A3's answer has no nps): (2 - 1) / 4
        ("portfolio", "2024"): 100.0,
    }, id="nps-portfolio"),
    pytest.param("nps", "industry", {}, {
        ("Retail", "2022"): -100.0, ("Retail", "2023"): 50.0,  # A3: 3; A4: 8, 10
        ("Chemicals", "2023"): 0.0, ("Chemicals", "2024"): 100.0,  # A1: 9, 5; 9, 10
    }, id="nps-industry"),
    pytest.param("csat", "account", {}, {
        ("A3", "2022"): 2.0, ("A3", "2023"): 3.0,
        ("A1", "2023"): 3.0,  # (4 + 2) / 2
        ("A4", "2023"): 4.5,  # (4 + 5) / 2
        ("A1", "2024"): 5.0,  # the 2024-09-30 answer has no csat
    }, id="csat-account"),
    pytest.param("csat", "industry", {}, {
        ("Retail", "2022"): 2.0,
        ("Retail", "2023"): 4.0,  # (3 + 4 + 5) / 3
        ("Chemicals", "2023"): 3.0, ("Chemicals", "2024"): 5.0,
    }, id="csat-industry"),
    pytest.param("csat", "portfolio", {}, {
        ("portfolio", "2022"): 2.0,
        ("portfolio", "2023"): 3.6,  # (4 + 2 + 3 + 4 + 5) / 5
        ("portfolio", "2024"): 5.0,
    }, id="csat-portfolio"),
    # preferred supplier: A1 yes, A2 no, A3 yes, A4 unknown (left out); over the active grid
    pytest.param("preferred_supplier_share", "portfolio", {}, {
        ("portfolio", "2021"): 2 / 3,  # A1, A3 of A1, A2, A3
        ("portfolio", "2022"): 2 / 3,
        ("portfolio", "2023"): 1.0,  # A1, A3 (A4 unknown)
        ("portfolio", "2024"): 1.0,  # A1 (A4 unknown)
    }, id="preferred-portfolio"),
    pytest.param("preferred_supplier_share", "industry", {}, {
        ("Chemicals", "2021"): 1 / 2, ("Chemicals", "2022"): 1 / 2,  # A1 of A1, A2
        ("Chemicals", "2023"): 1.0, ("Chemicals", "2024"): 1.0,  # A1
        ("Retail", "2021"): 1.0, ("Retail", "2022"): 1.0, ("Retail", "2023"): 1.0,  # A3; none known in 2024
    }, id="preferred-industry"),
    pytest.param("preferred_supplier_share", "account", {}, {
        **{("A1", y): 1.0 for y in ("2021", "2022", "2023", "2024")},
        ("A2", "2021"): 0.0, ("A2", "2022"): 0.0,
        ("A3", "2021"): 1.0, ("A3", "2022"): 1.0, ("A3", "2023"): 1.0,
    }, id="preferred-account"),
    # supplier consolidation: (count at the last report before the year - count at the last report in it) / earlier
    pytest.param("supplier_consolidation_rate", "account", {}, {
        ("A3", "2023"): 0.2,  # 5 -> 4: 1 / 5
        ("A1", "2024"): 0.5,  # 4 (2023-02-01) -> 2 (2024-09-30; the 3 of 2024-03-31 is not the last): 2 / 4
        ("A4", "2024"): -0.5,  # 2 (2023-12-15) -> 3: -1 / 2
    }, id="consolidation-account"),
    pytest.param("supplier_consolidation_rate", "portfolio", {}, {
        ("portfolio", "2023"): 0.2,  # only A3 has an earlier report
        ("portfolio", "2024"): 1 / 6,  # (2 - 1) / (4 + 2)
    }, id="consolidation-portfolio"),
    # win rate against competitors, year of closing; O3 (no competitor) and O5 (open) left out
    pytest.param("competitive_win_rate", "account", {}, {
        ("A1", "2022"): 0.5,  # O1 won, O2 lost
        ("A3", "2023"): 1.0,  # O4 won
        ("A1", "2024"): 1.0,  # O7 won
        ("A4", "2024"): 0.0,  # O6 lost
    }, id="win-rate-account"),
    pytest.param("competitive_win_rate", "portfolio", {}, {
        ("portfolio", "2022"): 0.5, ("portfolio", "2023"): 1.0,
        ("portfolio", "2024"): 0.5,  # O7 of O6, O7
    }, id="win-rate-portfolio"),
    pytest.param("competitive_win_rate", "industry", {}, {
        ("Chemicals", "2022"): 0.5, ("Chemicals", "2024"): 1.0,
        ("Retail", "2023"): 1.0, ("Retail", "2024"): 0.0,
    }, id="win-rate-industry"),
    # defection risk, 2023-2024: points 25 detractor, 20 falling revenue, 20 no attended interaction,
    # 15 open high/critical ticket, 20 no attended executive meeting in 2 years
    pytest.param("defection_risk", "account", {"start": "2023-01-01"}, {
        ("A1", "2023"): 60.0,  # NPS 5 on 2023-06-30 (25) + 1200 < 1500 (20) + T1 open on 31 Dec (15)
        ("A1", "2024"): 20.0,  # only a call not attended in 2024 (20)
        ("A3", "2023"): 40.0,  # no attended interaction (20) + exec meeting not attended (20); NPS 3 too old
        ("A4", "2023"): 0.0,
        ("A4", "2024"): 35.0,  # 300 < 600 (20) + T2 critical still open (15)
    }, id="defection-account"),
    pytest.param("defection_risk", "portfolio", {"start": "2023-01-01"}, {
        ("portfolio", "2023"): 100 / 3,  # (60 + 40 + 0) / 3 accounts
        ("portfolio", "2024"): 27.5,  # (20 + 35) / 2 accounts
    }, id="defection-portfolio"),
    pytest.param("defection_risk", "industry", {"start": "2023-01-01"}, {
        ("Chemicals", "2023"): 60.0, ("Chemicals", "2024"): 20.0,  # A1
        ("Retail", "2023"): 20.0,  # (40 + 0) / 2
        ("Retail", "2024"): 35.0,  # A4
    }, id="defection-industry"),
    # Running year on 2024-06-30: windows end there. Only A1 is active (A4's last invoice by then was
    # 2023-02-01). Revenue 2023-07-01..2024-06-30 = 1000 < 1700 of the year before (20); the workshop on
    # 2023-09-15 was attended (0), although nothing was attended in 2024 itself; NPS 9 (0); no open
    # severe ticket (T1 resolved 2024-01-15); executive meeting 2023-05-01 (0).
    pytest.param("defection_risk", "account", {"start": "2024-01-01", "as_of": "2024-06-30"}, {
        ("A1", "2024"): 20.0,
    }, id="defection-running-year"),
    # resolution time: days opened -> resolved, year of resolution
    pytest.param("issue_resolution_time", "account", {}, {
        ("A3", "2023"): 10.0,  # T5
        ("A1", "2024"): 38.5,  # T1 75 days (2023-11-01 09:00 -> 2024-01-15 09:00), T4 2 days
        ("A4", "2024"): 4.0,  # T6
    }, id="resolution-account"),
    pytest.param("issue_resolution_time", "portfolio", {}, {
        ("portfolio", "2023"): 10.0,
        ("portfolio", "2024"): 27.0,  # (75 + 2 + 4) / 3
    }, id="resolution-portfolio"),
    pytest.param("issue_resolution_time", "industry", {}, {
        ("Retail", "2023"): 10.0, ("Retail", "2024"): 4.0, ("Chemicals", "2024"): 38.5,
    }, id="resolution-industry"),
    # response time: hours opened -> first response, year opened; T3 unanswered, T7 answered after as_of
    pytest.param("response_time", "account", {}, {
        ("A1", "2023"): 6.0,  # T1
        ("A3", "2023"): 4.0,  # T5
        ("A1", "2024"): 2.0,  # T4
        ("A4", "2024"): 12.5,  # T2 24 h, T6 1 h
    }, id="response-account"),
    pytest.param("response_time", "portfolio", {}, {
        ("portfolio", "2023"): 5.0,  # (6 + 4) / 2
        ("portfolio", "2024"): 9.0,  # (24 + 2 + 1) / 3
    }, id="response-portfolio"),
    pytest.param("response_time", "industry", {}, {
        ("Chemicals", "2023"): 6.0, ("Chemicals", "2024"): 2.0,
        ("Retail", "2023"): 4.0, ("Retail", "2024"): 12.5,
    }, id="response-industry"),
]


@pytest.mark.parametrize(("kpi", "by", "kw", "expected"), CASES)
def test_values_by_hand(data, kpi, by, kw, expected):
    check(values(data, kpi, by, **kw), expected)


def test_every_kpi_has_a_case():
    assert {c.values[0] for c in CASES} == set(KEYS)


def test_defection_signals_say_which_warnings_fire(data):
    ctx = kt.kpi.Context(data, "Y", pd.Timestamp(AS_OF), pd.Timestamp("2023-01-01"))
    sig = defection_signals(ctx).set_index(["account_id", "period"])
    a1 = sig.loc[("A1", pd.Period("2023", "Y"))]
    fired = {k for k in DEFECTION_POINTS if a1[k]}
    assert fired == {"nps_detractor", "revenue_falling", "open_severe_ticket"}
    assert a1["score"] == 60  # 25 + 20 + 15
    a3 = sig.loc[("A3", pd.Period("2023", "Y"))]
    assert {k for k in DEFECTION_POINTS if a3[k]} == {"no_attended_interaction", "no_executive_meeting"}


def test_all_computable_on_full_data(data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", KpiWarning)
        res = kt.compute(data, KEYS, by="portfolio", period="Q", as_of=AS_OF)
    assert res["note"].isna().all()
    assert set(res["kpi"]) == set(KEYS)


def test_catalogue_entries():
    cat = kt.kpis(pillar="retention")
    assert set(KEYS) <= set(cat.index)
    units = {"currency", "count", "share", "days", "hours", "months", "score 1-5", "NPS points", "index"}
    assert set(cat.loc[KEYS, "unit"]) <= units
    assert cat.loc[KEYS, "builtin"].all()
    assert not cat.loc["response_time", "controllable"]
    assert "365" in cat.loc["churn_rate", "definition"]


def _drop_table(name):
    def edit(tables):
        del tables[name]
    return edit


def _drop_column(table, column):
    def edit(tables):
        tables[table] = tables[table].drop(columns=column)
    return edit


MISSING = [
    pytest.param(_drop_table("surveys"), ["nps", "csat", "supplier_consolidation_rate", "defection_risk"],
                 "not computable: needs table surveys", id="no-surveys"),
    pytest.param(_drop_table("contracts"), ["contract_churn_rate", "contract_renewal_rate", "contract_length_change"],
                 "not computable: needs table contracts", id="no-contracts"),
    pytest.param(_drop_table("tickets"), ["issue_resolution_time", "response_time", "defection_risk"],
                 "not computable: needs table tickets", id="no-tickets"),
    pytest.param(_drop_table("interactions"), ["defection_risk"],
                 "not computable: needs table interactions", id="no-interactions"),
    pytest.param(_drop_table("opportunities"), ["competitive_win_rate"],
                 "not computable: needs table opportunities", id="no-opportunities"),
    pytest.param(_drop_column("accounts", "preferred_supplier"), ["preferred_supplier_share"],
                 "not computable: needs column accounts.preferred_supplier", id="no-preferred-supplier"),
    pytest.param(_drop_column("contracts", "outcome"),
                 ["contract_churn_rate", "contract_renewal_rate", "contract_length_change"],
                 "not computable: needs column contracts.outcome", id="no-contract-outcome"),
    pytest.param(_drop_column("contracts", "end"),
                 ["contract_churn_rate", "contract_renewal_rate", "contract_length_change"],
                 "not computable: needs column contracts.end", id="no-contract-end"),
    pytest.param(_drop_column("surveys", "nps"), ["nps", "defection_risk"],
                 "not computable: needs column surveys.nps", id="no-nps"),
    pytest.param(_drop_column("surveys", "csat"), ["csat"],
                 "not computable: needs column surveys.csat", id="no-csat"),
    pytest.param(_drop_column("surveys", "suppliers"), ["supplier_consolidation_rate"],
                 "not computable: needs column surveys.suppliers", id="no-suppliers"),
    pytest.param(_drop_column("opportunities", "competitor"), ["competitive_win_rate"],
                 "not computable: needs column opportunities.competitor", id="no-competitor"),
    pytest.param(_drop_column("opportunities", "closed"), ["competitive_win_rate"],
                 "not computable: needs column opportunities.closed", id="no-closed"),
    pytest.param(_drop_column("tickets", "resolved"), ["issue_resolution_time", "defection_risk"],
                 "not computable: needs column tickets.resolved", id="no-resolved"),
    pytest.param(_drop_column("tickets", "first_response"), ["response_time"],
                 "not computable: needs column tickets.first_response", id="no-first-response"),
    pytest.param(_drop_column("tickets", "severity"), ["defection_risk"],
                 "not computable: needs column tickets.severity", id="no-severity"),
    pytest.param(_drop_column("interactions", "attended"), ["defection_risk"],
                 "not computable: needs column interactions.attended", id="no-attended"),
]


@pytest.mark.parametrize(("edit", "kpis", "note"), MISSING)
def test_not_computable(edit, kpis, note):
    tables = _tables()
    edit(tables)
    data = kt.load(tables, currency="EUR")
    with pytest.warns(KpiWarning, match="not computable"):
        res = kt.compute(data, kpis, by="portfolio", period="Y", as_of=AS_OF)
    assert set(res["kpi"]) == set(kpis)
    assert res["value"].isna().all()
    assert (res["note"] == note).all()
    # the other retention KPIs still compute from the same data
    others = [k for k in KEYS if k not in kpis]
    assert kt.compute(data, others, by="portfolio", period="Y", as_of=AS_OF)["note"].isna().all()
