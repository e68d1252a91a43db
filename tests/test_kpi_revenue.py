"""Revenue pillar KPIs, checked against numbers computed by hand on a tiny data set.

The data set: four accounts, quarters 2024Q1 and 2024Q2 reported (start 2024-01-01,
as-of 2024-06-30), with 2022-2023 history for the trailing-twelve-month KPIs.

Period revenue / cost / gross margin by account:

    2024Q1  A1 1200 + 800 = 2000 / 1000 / 1000   A2 1000 + 900 = 1900 / 1300 / 600
            A3 600 / 400 / 200                    A4 400 / 300 / 100      portfolio 4900 / 1900
    2024Q2  A1 1500 - 800 = 700 / 600 / 100       A2 1100 / 800 / 300
            A3 1000 + 400 = 1400 / 900 / 500      A4 nothing              portfolio 3200 / 900

Trailing twelve months (revenue / margin), windows Apr23-Mar24 for Q1 and Jul23-Jun24 for Q2:

    Q1  A1 2000 + 1200 + 800 = 4000 / 1800        A2 300 + 500 + 1000 + 900 = 2700 / 900
        A3 600 / 200                               A4 400 / 100 (its March 2023 invoice is out)
    Q2  A1 1200 + 800 + 1500 - 800 = 2700 / 1100  A2 500 + 1000 + 900 + 1100 = 3500 / 1100
        A3 2000 / 700                              A4 400 / 100

Costs: cost_to_serve Q1 A1 500, A2 1000; Q2 A1 400, A2 100, A3 200, A4 50.
kam_programme Q1 A1 300; Q2 A1 300, A3 250.
Industries: Chemicals = A1, A4; Retail = A2, A3. Key accounts: A1, A3.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

import kamtools as kt
from kamtools.exceptions import ParameterError
from kamtools.kpi import KpiWarning
from kamtools.kpi.revenue import simple_clv

AS_OF = "2024-06-30"
START = "2024-01-01"
Q1, Q2 = "2024Q1", "2024Q2"


def _tables() -> dict[str, pd.DataFrame]:
    tx = [  # account, date, product, revenue, cost
        ("A1", "2022-09-10", "P1", 1000, 600),
        ("A1", "2023-05-15", "P1", 2000, 1200),
        ("A1", "2024-02-10", "P1", 1200, 700),
        ("A1", "2024-03-05", "P2", 800, 300),
        ("A1", "2024-05-20", "P1", 1500, 900),
        ("A1", "2024-06-10", "P2", -800, -300),  # P2 credited back in full
        ("A2", "2023-06-20", "P1", 300, 200),
        ("A2", "2023-08-01", "P1", 500, 300),
        ("A2", "2024-01-20", "P1", 1000, 700),
        ("A2", "2024-02-15", "P2", 900, 600),
        ("A2", "2024-04-10", "P3", 1100, 800),
        ("A3", "2024-01-05", "P1", 600, 400),
        ("A3", "2024-04-15", "P1", 1000, 800),
        ("A3", "2024-05-01", "P3", 400, 100),
        ("A4", "2023-03-10", "P2", 700, 500),
        ("A4", "2024-02-01", "P1", 400, 300),
    ]
    opp = [  # id, account, created, closed, status, amount, kind, source, implemented
        ("O1", "A1", "2023-12-01", "2024-02-15", "won", 5000, "cross_sell", "referral", "2024-04-01"),
        ("O2", "A1", "2024-01-10", "2024-03-10", "lost", 2000, "upsell", "outbound", ""),
        ("O3", "A1", "2024-02-01", "2024-05-01", "won", 3000, "upsell", "referral", "2024-06-15"),
        ("O4", "A2", "2024-01-15", "2024-02-04", "won", 1000, "new_business", "inbound", "2024-03-05"),
        ("O5", "A2", "2024-04-01", "", "open", 4000, "new_business", "referral", ""),
        ("O6", "A3", "2024-02-20", "2024-06-20", "won", 2500, "cross_sell", "partner", "2024-07-10"),
        ("O7", "A3", "2024-05-10", "2024-06-01", "lost", 1500, "upsell", " Referral", ""),
        ("O8", "A3", "2024-06-01", "2024-07-15", "won", 800, "new_business", "", ""),  # closed after as-of
    ]
    costs = [
        ("A1", "2024-01-31", "cost_to_serve", 500),
        ("A1", "2024-02-29", "kam_programme", 300),
        ("A1", "2024-04-30", "cost_to_serve", 400),
        ("A1", "2024-05-31", "kam_programme", 300),
        ("A2", "2024-03-31", "cost_to_serve", 1000),
        ("A2", "2024-06-30", "cost_to_serve", 100),
        ("A3", "2024-06-30", "cost_to_serve", 200),
        ("A3", "2024-06-30", "kam_programme", 250),
        ("A4", "2024-05-15", "cost_to_serve", 50),
    ]
    assessments = [
        ("A1", "2024-02-01", "plan_execution", 4, "supplier"),
        ("A1", "2024-03-01", "plan_execution", 3, "customer"),
        ("A1", "2024-05-01", "plan_quality", 2, "supplier"),  # another dimension
        ("A2", "2024-04-15", "plan_execution", 3, "customer"),
        ("A3", "2024-05-01", "plan_execution", 5, "supplier"),
        ("M1", "2024-02-01", "skills", 4, "supplier"),  # a manager
    ]
    return {
        "accounts": pd.DataFrame(
            {
                "account_id": ["A1", "A2", "A3", "A4"],
                "account_name": ["Acme", "Brill", "Corto", "Dyna"],
                "industry": ["Chemicals", "Retail", "Retail", "Chemicals"],
                "is_key_account": ["true", "false", "true", "false"],
                "kam_start": ["2023-01-01", "", "2024-04-01", ""],
                "manager_id": ["M1", "M2", "M1", "M2"],
                "wallet_size": ["40000", "20000", "10000", ""],
                "potential_products": ["4", "3", "3", ""],
            }
        ),
        "managers": pd.DataFrame(
            {"manager_id": ["M1", "M2"], "name": ["Ana", "Ben"], "start_date": ["2019-01-01", "2023-01-01"]}
        ),
        "transactions": pd.DataFrame(tx, columns=["account_id", "date", "product", "revenue", "cost"]).astype(str),
        "opportunities": pd.DataFrame(
            opp,
            columns=["opportunity_id", "account_id", "created", "closed", "status", "amount", "kind", "source",
                     "implemented"],
        ).astype(str),
        "costs": pd.DataFrame(costs, columns=["account_id", "date", "kind", "amount"]).astype(str),
        "assessments": pd.DataFrame(
            assessments, columns=["subject_id", "date", "dimension", "score", "assessor"]
        ).astype(str),
    }


@pytest.fixture(scope="module")
def data():
    with pytest.warns(kt.DataWarning, match="negative revenue"):  # A1's credit note
        return kt.load(_tables(), currency="EUR")


def _values(data, kpi: str, by: str, period: str = "Q", **kw) -> dict:
    """{(entity, period): value} of one KPI, missing values left out."""
    kw = {"as_of": AS_OF, "start": START, **kw}
    v = kt.compute(data, [kpi], by=by, period=period, **kw).dropna(subset=["value"])
    return {(e, str(p)): val for e, p, val in zip(v["entity"], v["period"], v["value"], strict=True)}


# Expected values: {kpi: {by: {(entity, period): value}}}. Missing entries are missing values.
CASES = {
    # -- revenue ---------------------------------------------------------------------
    "revenue": {
        "account": {("A1", Q1): 2000, ("A2", Q1): 1900, ("A3", Q1): 600, ("A4", Q1): 400,
                    ("A1", Q2): 700, ("A2", Q2): 1100, ("A3", Q2): 1400, ("A4", Q2): 0},  # A4 active, no sales
        "industry": {("Chemicals", Q1): 2400, ("Retail", Q1): 2500,  # 2000 + 400; 1900 + 600
                     ("Chemicals", Q2): 700, ("Retail", Q2): 2500},  # 700 + 0; 1100 + 1400
    },
    "revenue_per_account": {
        "account": {("A1", Q1): 2000, ("A2", Q1): 1900, ("A3", Q1): 600, ("A4", Q1): 400,
                    ("A1", Q2): 700, ("A2", Q2): 1100, ("A3", Q2): 1400, ("A4", Q2): 0},
        "portfolio": {("portfolio", Q1): 4900 / 4, ("portfolio", Q2): 3200 / 4},  # 4 active accounts
    },
    "revenue_growth_rate": {
        "account": {("A1", Q2): 700 / 2000 - 1, ("A2", Q2): 1100 / 1900 - 1, ("A3", Q2): 1400 / 600 - 1,
                    ("A4", Q2): 0 / 400 - 1},  # Q1 has no previous period in the report
        "portfolio": {("portfolio", Q2): 3200 / 4900 - 1},
    },
    "annual_revenue_per_account": {
        "account": {("A1", Q1): 4000, ("A2", Q1): 2700, ("A3", Q1): 600, ("A4", Q1): 400,
                    ("A1", Q2): 2700, ("A2", Q2): 3500, ("A3", Q2): 2000, ("A4", Q2): 400},
        "portfolio": {("portfolio", Q1): (4000 + 2700 + 600 + 400) / 4,  # 1925
                      ("portfolio", Q2): (2700 + 3500 + 2000 + 400) / 4},  # 2150
    },
    "share_of_wallet": {  # quarter revenue x 4 / wallet; A4 has no wallet size
        "account": {("A1", Q1): 2000 * 4 / 40000, ("A2", Q1): 1900 * 4 / 20000, ("A3", Q1): 600 * 4 / 10000,
                    ("A1", Q2): 700 * 4 / 40000, ("A2", Q2): 1100 * 4 / 20000, ("A3", Q2): 1400 * 4 / 10000},
        "portfolio": {("portfolio", Q1): (2000 + 1900 + 600) * 4 / 70000,  # 18,000 / 70,000
                      ("portfolio", Q2): (700 + 1100 + 1400) * 4 / 70000},  # 12,800 / 70,000
    },
    "account_market_share": {  # trailing-twelve-month revenue / wallet
        "account": {("A1", Q1): 4000 / 40000, ("A2", Q1): 2700 / 20000, ("A3", Q1): 600 / 10000,
                    ("A1", Q2): 2700 / 40000, ("A2", Q2): 3500 / 20000, ("A3", Q2): 2000 / 10000},
        "industry": {("Chemicals", Q1): 4000 / 40000, ("Retail", Q1): (2700 + 600) / 30000,
                     ("Chemicals", Q2): 2700 / 40000, ("Retail", Q2): (3500 + 2000) / 30000},
    },
    # -- profitability ---------------------------------------------------------------
    "gross_margin": {
        "account": {("A1", Q1): 1000, ("A2", Q1): 600, ("A3", Q1): 200, ("A4", Q1): 100,
                    ("A1", Q2): 100, ("A2", Q2): 300, ("A3", Q2): 500, ("A4", Q2): 0},
        "portfolio": {("portfolio", Q1): 1900, ("portfolio", Q2): 900},
    },
    "gross_margin_pct": {
        "account": {("A1", Q1): 1000 / 2000, ("A2", Q1): 600 / 1900, ("A3", Q1): 200 / 600, ("A4", Q1): 100 / 400,
                    ("A1", Q2): 100 / 700, ("A2", Q2): 300 / 1100, ("A3", Q2): 500 / 1400},  # A4: no revenue
        "portfolio": {("portfolio", Q1): 1900 / 4900, ("portfolio", Q2): 900 / 3200},
    },
    "profit_margin_expansion": {
        "account": {("A1", Q2): 100 / 700 - 1000 / 2000, ("A2", Q2): 300 / 1100 - 600 / 1900,
                    ("A3", Q2): 500 / 1400 - 200 / 600},
        "portfolio": {("portfolio", Q2): 900 / 3200 - 1900 / 4900},
    },
    "customer_lifetime_value": {  # trailing margin x 0.9 / (1 + 0.1 - 0.9) = margin x 4.5
        "account": {("A1", Q1): 1800 * 4.5, ("A2", Q1): 900 * 4.5, ("A3", Q1): 200 * 4.5, ("A4", Q1): 100 * 4.5,
                    ("A1", Q2): 1100 * 4.5, ("A2", Q2): 1100 * 4.5, ("A3", Q2): 700 * 4.5, ("A4", Q2): 100 * 4.5},
        "industry": {("Chemicals", Q1): (1800 + 100) * 4.5 / 2, ("Retail", Q1): (900 + 200) * 4.5 / 2,
                     ("Chemicals", Q2): (1100 + 100) * 4.5 / 2, ("Retail", Q2): (1100 + 700) * 4.5 / 2},
    },
    "cost_to_serve": {
        "account": {("A1", Q1): 500, ("A2", Q1): 1000, ("A3", Q1): 0, ("A4", Q1): 0,
                    ("A1", Q2): 400, ("A2", Q2): 100, ("A3", Q2): 200, ("A4", Q2): 50},
        "portfolio": {("portfolio", Q1): 1500, ("portfolio", Q2): 750},
    },
    "cost_to_serve_growth": {
        "account": {("A1", Q2): 400 / 500 - 1, ("A2", Q2): 100 / 1000 - 1},  # A3, A4: no cost in Q1
        "portfolio": {("portfolio", Q2): 750 / 1500 - 1},
    },
    "unprofitable_customers": {  # gross margin - cost to serve < 0
        "account": {("A1", Q1): 0, ("A2", Q1): 1, ("A3", Q1): 0, ("A4", Q1): 0,  # A2: 600 - 1000
                    ("A1", Q2): 1, ("A2", Q2): 0, ("A3", Q2): 0, ("A4", Q2): 1},  # A1: 100 - 400; A4: 0 - 50
        "industry": {("Chemicals", Q1): 0 / 2, ("Retail", Q1): 1 / 2,
                     ("Chemicals", Q2): 2 / 2, ("Retail", Q2): 0 / 2},
    },
    "net_profit_margin": {  # (margin - cost to serve - KAM cost) / revenue
        "account": {("A1", Q1): (1000 - 500 - 300) / 2000, ("A2", Q1): (600 - 1000) / 1900,
                    ("A3", Q1): 200 / 600, ("A4", Q1): 100 / 400,
                    ("A1", Q2): (100 - 400 - 300) / 700, ("A2", Q2): (300 - 100) / 1100,
                    ("A3", Q2): (500 - 200 - 250) / 1400},  # A4: a cost of 50, no revenue
        "portfolio": {("portfolio", Q1): (1900 - 1500 - 300) / 4900,
                      ("portfolio", Q2): (900 - 750 - 550) / 3200},  # A4's 50 counts
        "industry": {("Chemicals", Q1): (1100 - 500 - 300) / 2400, ("Retail", Q1): (800 - 1000) / 2500,
                     ("Chemicals", Q2): (100 - 400 - 50 - 300) / 700, ("Retail", Q2): (800 - 300 - 250) / 2500},
    },
    # -- product mix, penetration, saturation, expansion -----------------------------
    "product_mix_concentration": {
        "account": {("A1", Q1): 0.6**2 + 0.4**2,  # P1 1200, P2 800 of 2000
                    ("A2", Q1): (1000**2 + 900**2) / 1900**2, ("A3", Q1): 1.0, ("A4", Q1): 1.0,
                    ("A1", Q2): 1.0,  # P2 net -800 left out: P1 alone
                    ("A2", Q2): 1.0, ("A3", Q2): (1000**2 + 400**2) / 1400**2},
        # revenue-weighted: sum of (sum of product revenue^2 / account revenue) / sum of revenue
        "portfolio": {("portfolio", Q1): ((1200**2 + 800**2) / 2000 + (1000**2 + 900**2) / 1900 + 600 + 400) / 4900,
                      ("portfolio", Q2): (1500 + 1100 + (1000**2 + 400**2) / 1400) / (1500 + 1100 + 1400)},
    },
    "account_penetration_index": {  # products bought in 12 months / potential; A4 has no potential
        "account": {("A1", Q1): 2 / 4, ("A2", Q1): 2 / 3, ("A3", Q1): 1 / 3,
                    ("A1", Q2): 1 / 4,  # P2 credited back in full: only P1
                    ("A2", Q2): 3 / 3, ("A3", Q2): 2 / 3},
        "portfolio": {("portfolio", Q1): (2 + 2 + 1) / 10, ("portfolio", Q2): (1 + 3 + 2) / 10},
    },
    "account_saturation_index": {  # catalogue: Q1 {P1, P2}; Q2 {P1, P2 (A2), P3}
        "account": {("A1", Q1): 2 / 2, ("A2", Q1): 2 / 2, ("A3", Q1): 1 / 2, ("A4", Q1): 1 / 2,
                    ("A1", Q2): 1 / 3, ("A2", Q2): 3 / 3, ("A3", Q2): 2 / 3, ("A4", Q2): 1 / 3},
        "portfolio": {("portfolio", Q1): 6 / 8, ("portfolio", Q2): 7 / 12},
    },
    "account_expansion_rate": {
        # Q1 vs Apr22-Mar23: A1 4000 > 1000, A4 400 < 700; A2, A3 bought nothing then
        # Q2 vs Jul22-Jun23: A1 2700 < 3000, A2 3500 > 300, A4 400 < 700
        "account": {("A1", Q1): 1, ("A4", Q1): 0, ("A1", Q2): 0, ("A2", Q2): 1, ("A4", Q2): 0},
        "portfolio": {("portfolio", Q1): 1 / 2, ("portfolio", Q2): 1 / 3},
    },
    # -- plan execution and the pipeline ---------------------------------------------
    "account_plan_execution": {
        "account": {("A1", Q1): (4 + 3) / 2, ("A2", Q2): 3, ("A3", Q2): 5},
        "portfolio": {("portfolio", Q1): 3.5, ("portfolio", Q2): (3 + 5) / 2},
    },
    "cross_sell_revenue": {  # O1 won 2024-02-15; O6 won 2024-06-20
        "account": {("A1", Q1): 5000, ("A2", Q1): 0, ("A3", Q1): 0, ("A4", Q1): 0,
                    ("A1", Q2): 0, ("A2", Q2): 0, ("A3", Q2): 2500, ("A4", Q2): 0},
        "portfolio": {("portfolio", Q1): 5000, ("portfolio", Q2): 2500},
    },
    "upsell_rate": {  # O2 lost Q1; O3 won, O7 lost Q2
        "account": {("A1", Q1): 0 / 1, ("A1", Q2): 1 / 1, ("A3", Q2): 0 / 1},
        "portfolio": {("portfolio", Q1): 0 / 1, ("portfolio", Q2): 1 / 2},
    },
    "opportunity_conversion_rate": {  # Q1: O1 won, O2 lost, O4 won; Q2: O3 won, O6 won, O7 lost (O8 after as-of)
        "account": {("A1", Q1): 1 / 2, ("A2", Q1): 1 / 1, ("A1", Q2): 1 / 1, ("A3", Q2): 1 / 2},
        "portfolio": {("portfolio", Q1): 2 / 3, ("portfolio", Q2): 2 / 3},
        "industry": {("Chemicals", Q1): 1 / 2, ("Retail", Q1): 1 / 1, ("Chemicals", Q2): 1 / 1, ("Retail", Q2): 1 / 2},
    },
    "new_business_opportunities": {  # created: O4 Q1; O5, O8 Q2
        "account": {("A1", Q1): 0, ("A2", Q1): 1, ("A3", Q1): 0, ("A4", Q1): 0,
                    ("A1", Q2): 0, ("A2", Q2): 1, ("A3", Q2): 1, ("A4", Q2): 0},
        "industry": {("Chemicals", Q1): 0, ("Retail", Q1): 1, ("Chemicals", Q2): 0, ("Retail", Q2): 2},
    },
    "referrals": {  # O3 Q1; O5 and O7 (" Referral") Q2; O1 was created in 2023Q4
        "account": {("A1", Q1): 1, ("A2", Q1): 0, ("A3", Q1): 0, ("A4", Q1): 0,
                    ("A1", Q2): 0, ("A2", Q2): 1, ("A3", Q2): 1, ("A4", Q2): 0},
        "industry": {("Chemicals", Q1): 1, ("Retail", Q1): 0, ("Chemicals", Q2): 0, ("Retail", Q2): 2},
    },
    "lead_closure_rate": {
        # Q1 created: O2 60 days, O3 90 days, O4 20 days (in time), O6 121 days (late)
        # Q2 created: O5 open for 90 days at as-of (late); O7 (created 51 days before as-of, decided in 22)
        # and O8 (open 29 days) are younger than 90 days at as-of, so left out whether decided or not
        "account": {("A1", Q1): 2 / 2, ("A2", Q1): 1 / 1, ("A3", Q1): 0 / 1, ("A2", Q2): 0 / 1},
        "portfolio": {("portfolio", Q1): 3 / 4, ("portfolio", Q2): 0 / 1},
    },
    "time_to_close": {
        # O1 2023-12-01 -> 2024-02-15 = 31 + 31 + 14 = 76 days; O4 2024-01-15 -> 02-04 = 20;
        # O3 2024-02-01 -> 05-01 = 29 + 31 + 30 = 90; O6 2024-02-20 -> 06-20 = 29 + 31 + 30 + 31 = 121
        "account": {("A1", Q1): 76, ("A2", Q1): 20, ("A1", Q2): 90, ("A3", Q2): 121},
        "portfolio": {("portfolio", Q1): (76 + 20) / 2, ("portfolio", Q2): (90 + 121) / 2},
    },
    "time_to_implement": {
        # O4 02-04 -> 03-05 = 25 + 5 = 30 days; O1 02-15 -> 04-01 = 14 + 31 + 1 = 46; O3 05-01 -> 06-15 = 45;
        # O6 goes live 2024-07-10, after the as-of date
        "account": {("A2", Q1): 30, ("A1", Q2): (46 + 45) / 2},
        "portfolio": {("portfolio", Q1): 30, ("portfolio", Q2): (46 + 45) / 2},
    },
}


@pytest.mark.parametrize(
    ("kpi", "by"), [(k, b) for k, cases in CASES.items() for b in cases], ids=lambda x: str(x)
)
def test_kpi_values_by_hand(data, kpi, by):
    assert _values(data, kpi, by) == pytest.approx(CASES[kpi][by], rel=1e-12, abs=1e-12)


def test_every_revenue_kpi_is_checked():
    """Every revenue-pillar KPI but the portfolio measures (tests/test_kpi_portfolio.py) has a case."""
    portfolio = {k for k, s in kt.kpi.REGISTRY.items() if s.func is not None and s.func.__module__.endswith(".portfolio")}
    assert set(kt.kpis(pillar="revenue", builtin=True).index) - portfolio == set(CASES)


def test_trailing_window_is_the_twelve_months_to_the_period_end(data):
    """Monthly periods: A4's invoice of 2023-03-10 is in the window ending Feb 2024, out of March's."""
    got = _values(data, "annual_revenue_per_account", "account", period="M", start="2024-02-01")
    assert got[("A4", "2024-02")] == 700 + 400  # Mar 2023 .. Feb 2024
    assert got[("A4", "2024-03")] == 400  # Apr 2023 .. Mar 2024
    assert got[("A2", "2024-06")] == 500 + 1000 + 900 + 1100  # Jul 2023 .. Jun 2024: June 2023's 300 is out


def test_yearly_periods_annual_measures_equal_period_ones(data):
    """With one-year periods the trailing year is the period: market share = share of wallet."""
    sow = _values(data, "share_of_wallet", "account", period="Y", start="2024-01-01")
    ms = _values(data, "account_market_share", "account", period="Y", start="2024-01-01")
    assert sow == pytest.approx(ms)
    assert sow[("A1", "2024")] == pytest.approx((2000 + 700) / 40000)  # 2024 revenue of A1 / wallet


def test_opportunities_are_cut_at_the_as_of_date(data):
    """Events after the as-of date are not known yet: the opportunity is still open then."""
    got = _values(data, "opportunity_conversion_rate", "portfolio", as_of="2024-06-19")
    assert got[("portfolio", Q2)] == pytest.approx(1 / 2)  # O3 won, O7 lost; O6 closes the next day
    got = _values(data, "lead_closure_rate", "account", as_of="2024-05-31")
    # as of May 31, O7 (created May 10) is pending; O5 (open 60 days) too: A2 and A3 have nothing due in Q2
    assert ("A2", Q2) not in got and ("A3", Q2) not in got


@pytest.mark.parametrize(
    ("table", "column", "kpis", "note"),
    [
        ("opportunities", None,
         ["cross_sell_revenue", "upsell_rate", "opportunity_conversion_rate", "new_business_opportunities",
          "referrals", "lead_closure_rate", "time_to_close", "time_to_implement"],
         "not computable: needs table opportunities"),
        ("costs", None, ["cost_to_serve", "cost_to_serve_growth", "unprofitable_customers", "net_profit_margin"],
         "not computable: needs table costs"),
        ("assessments", None, ["account_plan_execution"], "not computable: needs table assessments"),
        ("transactions", "cost",
         ["gross_margin_pct", "profit_margin_expansion", "customer_lifetime_value"],
         "not computable: needs column transactions.cost"),
        ("transactions", "product",
         ["product_mix_concentration", "account_penetration_index", "account_saturation_index"],
         "not computable: needs column transactions.product"),
        ("accounts", "wallet_size", ["share_of_wallet", "account_market_share"],
         "not computable: needs column accounts.wallet_size"),
        ("accounts", "potential_products", ["account_penetration_index"],
         "not computable: needs column accounts.potential_products"),
        ("opportunities", "implemented", ["time_to_implement"],
         "not computable: needs column opportunities.implemented"),
        ("opportunities", "source", ["referrals"], "not computable: needs column opportunities.source"),
        ("opportunities", "kind", ["new_business_opportunities", "cross_sell_revenue", "upsell_rate"],
         "not computable: needs column opportunities.kind"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_not_computable_without_its_input(table, column, kpis, note):
    tables = _tables()
    if column is None:
        del tables[table]
    else:
        tables[table] = tables[table].drop(columns=column)
    with pytest.warns(kt.DataWarning):
        small = kt.load(tables, currency="EUR")
    with pytest.warns(KpiWarning, match=f"{len(kpis)} KPI\\(s\\) not computable"):
        v = kt.compute(small, kpis, as_of=AS_OF, start=START)
    assert v["value"].isna().all()
    assert set(v["note"]) == {note}
    assert len(v) == len(kpis) * 4 * 2  # every KPI, account and period has its row


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retention": 1.2}, r"retention=1.2: a yearly retention is a probability between 0 and 1"),
        ({"discount": -0.1}, r"discount=-0.1: a discount rate is 0 or more"),
        ({"retention": 1.0, "discount": 0.0}, r"infinite lifetime value"),
    ],
)
def test_simple_clv_refuses_bad_assumptions(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        simple_clv(100.0, **kwargs)


def test_simple_clv_is_the_discounted_retained_margin():
    # sum over t >= 1 of 100 x 0.9^t / 1.1^t = 100 x (0.9 / 1.1) / (1 - 0.9 / 1.1) = 450
    assert simple_clv(100.0) == pytest.approx(sum(100 * 0.9**t / 1.1**t for t in range(1, 2000)))
    assert simple_clv(100.0, retention=1.0, discount=0.25) == pytest.approx(400.0)  # 100 / 0.25
    assert math.isnan(simple_clv(float("nan")))


def test_gross_margin_pct_leaves_uncosted_lines_out():
    import warnings

    from kamtools.exceptions import DataWarning

    accounts = pd.DataFrame({"account_id": ["A"], "account_name": ["A"], "is_key_account": [True]})
    tx = pd.DataFrame({"account_id": ["A", "A"], "date": ["2024-01-10", "2024-02-10"],
                       "revenue": [100.0, 100.0], "cost": [60.0, None]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = kt.load({"accounts": accounts, "transactions": tx})
    v = kt.compute(data, ["gross_margin_pct"], period="Q", as_of="2024-03-31")
    assert v["value"].tolist() == [pytest.approx(0.4)]  # (100 - 60) / 100: the uncosted line is out of both sides
