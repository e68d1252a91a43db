"""Portfolio measures, checked against numbers computed by hand on a tiny data set.

Five accounts, quarters 2024Q1 and 2024Q2 (as-of 2024-06-30). Key accounts: K1 (since 2023),
K2 (enters the programme 2024-04-01, so not key in Q1), K3 (no kam_start: key throughout).
Industries: Chemicals = K1, N1; Retail = K2, K3, N2. Managers: M1 = K1, K2; M2 = K3, N1, N2.

Period revenue by account:

    2024Q1  K1 1200 + 800 = 2000   K2 600   K3 500   N1 1000 + 900 = 1900   N2 400 + 100 = 500   total 5500
    2024Q2  K1 1500 - 800 = 700    K2 1000 + 400 = 1400   K3 250 - 300 = -50 (left out: not positive)
            N1 1100                N2 700 + 300 = 1000                                        total 4200
"""

from __future__ import annotations

import pandas as pd
import pytest

import kamtools as kt
from kamtools.kpi import KpiWarning, portfolio

AS_OF = "2024-06-30"
Q1, Q2 = "2024Q1", "2024Q2"


def _tables() -> dict[str, pd.DataFrame]:
    tx = [  # account, date, product, quantity, revenue
        ("K1", "2024-01-10", "P1", "10", 1200),
        ("K1", "2024-02-10", "P2", "4", 800),
        ("K2", "2024-01-20", "P1", "5", 600),
        ("K3", "2024-03-01", "P2", "2", 500),
        ("N1", "2024-02-01", "P1", "10", 1000),
        ("N1", "2024-03-15", "P2", "3", 900),
        ("N2", "2024-02-20", "P1", "5", 400),
        ("N2", "2024-03-20", "P3", "1", 100),
        ("K1", "2024-05-20", "P1", "12", 1500),
        ("K1", "2024-06-10", "P2", "-4", -800),
        ("K2", "2024-04-15", "P1", "10", 1000),
        ("K2", "2024-05-01", "P3", "2", 400),
        ("K3", "2024-04-05", "P2", "1", 250),
        ("K3", "2024-06-15", "P2", "-1", -300),
        ("N1", "2024-04-10", "P3", "10", 1100),
        ("N2", "2024-05-05", "P2", "2", 700),
        ("N2", "2024-06-01", "P1", "", 300),  # no quantity: no unit price
    ]
    interactions = [  # account, date, kind, attended
        ("K1", "2024-01-15", "meeting", "true"),
        ("K1", "2024-04-20", "meeting", "false"),  # did not take place
        ("K3", "2024-02-10", "call", ""),  # no attendance recorded: took place
        ("K2", "2024-02-01", "meeting", "true"),  # K2 not yet a key account
        ("K2", "2024-05-05", "business_review", "true"),
        ("N1", "2024-05-01", "meeting", "true"),  # not a key account
    ]
    return {
        "accounts": pd.DataFrame(
            {
                "account_id": ["K1", "K2", "K3", "N1", "N2"],
                "account_name": ["Kappa", "Kilo", "Koi", "Nova", "Nu"],
                "industry": ["Chemicals", "Retail", "Retail", "Chemicals", "Retail"],
                "is_key_account": ["true", "true", "true", "false", "false"],
                "kam_start": ["2023-01-01", "2024-04-01", "", "", ""],
                "manager_id": ["M1", "M1", "M2", "M2", "M2"],
            }
        ),
        "managers": pd.DataFrame(
            {"manager_id": ["M1", "M2"], "name": ["Ana", "Ben"], "start_date": ["2019-01-01", "2023-01-01"]}
        ),
        "transactions": pd.DataFrame(tx, columns=["account_id", "date", "product", "quantity", "revenue"]).astype(str),
        "interactions": pd.DataFrame(interactions, columns=["account_id", "date", "kind", "attended"]),
    }


def _load(tables):
    with pytest.warns(kt.DataWarning):  # credit notes; K3 has no kam_start
        return kt.load(tables, currency="EUR")


@pytest.fixture(scope="module")
def data():
    return _load(_tables())


def _values(data, kpi: str, by: str) -> dict:
    """{(entity, period): value} of one KPI, missing values left out."""
    v = kt.compute(data, [kpi], by=by, period="Q", as_of=AS_OF).dropna(subset=["value"])
    return {(e, str(p)): val for e, p, val in zip(v["entity"], v["period"], v["value"], strict=True)}


CASES = {
    "account_coverage_ratio": {
        # key accounts active: Q1 K1, K3; Q2 K1, K2, K3. Covered: K1 Q1 (meeting), K3 Q1 (call without
        # attendance), K2 Q2 (business review); K1's Q2 meeting did not take place; K3 has none in Q2
        "account": {("K1", Q1): 1, ("K3", Q1): 1, ("K1", Q2): 0, ("K2", Q2): 1, ("K3", Q2): 0},
        "portfolio": {("portfolio", Q1): 2 / 2, ("portfolio", Q2): 1 / 3},
        "industry": {("Chemicals", Q1): 1 / 1, ("Retail", Q1): 1 / 1, ("Chemicals", Q2): 0 / 1, ("Retail", Q2): 1 / 2},
        "manager": {("M1", Q1): 1 / 1, ("M2", Q1): 1 / 1, ("M1", Q2): 1 / 2, ("M2", Q2): 0 / 1},
    },
    "top_account_revenue_share": {
        # top 20% of n accounts = ceil(n / 5) accounts
        "portfolio": {("portfolio", Q1): 2000 / 5500,  # n = 5: K1
                      ("portfolio", Q2): 1400 / 4200},  # n = 4 (K3 negative): K2
        "industry": {("Chemicals", Q1): 2000 / (2000 + 1900), ("Retail", Q1): 600 / (600 + 500 + 500),
                     ("Chemicals", Q2): 1100 / (700 + 1100), ("Retail", Q2): 1400 / (1400 + 1000)},
        # by account: the account's share of the portfolio's revenue
        "account": {("K1", Q1): 2000 / 5500, ("K2", Q1): 600 / 5500, ("K3", Q1): 500 / 5500,
                    ("N1", Q1): 1900 / 5500, ("N2", Q1): 500 / 5500,
                    ("K1", Q2): 700 / 4200, ("K2", Q2): 1400 / 4200, ("N1", Q2): 1100 / 4200,
                    ("N2", Q2): 1000 / 4200},
    },
    "revenue_concentration": {
        "portfolio": {("portfolio", Q1): (2000**2 + 600**2 + 500**2 + 1900**2 + 500**2) / 5500**2,
                      ("portfolio", Q2): (700**2 + 1400**2 + 1100**2 + 1000**2) / 4200**2},
        "industry": {("Chemicals", Q1): (2000**2 + 1900**2) / 3900**2,
                     ("Retail", Q1): (600**2 + 500**2 + 500**2) / 1600**2,
                     ("Chemicals", Q2): (700**2 + 1100**2) / 1800**2,
                     ("Retail", Q2): (1400**2 + 1000**2) / 2400**2},
        # by account: squared share of the portfolio's revenue
        "account": {("K1", Q1): (2000 / 5500) ** 2, ("K2", Q1): (600 / 5500) ** 2, ("K3", Q1): (500 / 5500) ** 2,
                    ("N1", Q1): (1900 / 5500) ** 2, ("N2", Q1): (500 / 5500) ** 2,
                    ("K1", Q2): (700 / 4200) ** 2, ("K2", Q2): (1400 / 4200) ** 2, ("N1", Q2): (1100 / 4200) ** 2,
                    ("N2", Q2): (1000 / 4200) ** 2},
    },
    "key_account_price_premium": {
        # Q1 non-key unit prices: P1 (600 + 1000 + 400) / (5 + 10 + 5) = 100 (K2 not yet key); P2 900 / 3 = 300
        #   K1: P1 120 / 100 - 1 = 0.2 on 1200; P2 200 / 300 - 1 = -1/3 on 800 -> (240 - 266.67) / 2000
        #   K3: P2 250 / 300 - 1 = -1/6 on 500
        # Q2 non-key: P3 1100 / 10 = 110, P2 700 / 2 = 350; no P1 (N2's line has no quantity)
        #   K2: P3 200 / 110 - 1 = 9/11; K1 (P1 only; P2 credited) and K3 (net -50) have nothing to compare
        "account": {("K1", Q1): (1200 * 0.2 - 800 / 3) / 2000, ("K3", Q1): -1 / 6, ("K2", Q2): 9 / 11},
        "portfolio": {("portfolio", Q1): (1200 * 0.2 - 800 / 3 - 500 / 6) / (2000 + 500),  # -0.044
                      ("portfolio", Q2): 9 / 11},
        "industry": {("Chemicals", Q1): -1 / 75, ("Retail", Q1): -1 / 6, ("Retail", Q2): 9 / 11},
    },
}


@pytest.mark.parametrize(
    ("kpi", "by"), [(k, b) for k, cases in CASES.items() for b in cases], ids=lambda x: str(x)
)
def test_kpi_values_by_hand(data, kpi, by):
    assert _values(data, kpi, by) == pytest.approx(CASES[kpi][by], rel=1e-12, abs=1e-12)


def test_every_portfolio_kpi_is_checked():
    keys = {k for k, s in kt.kpi.REGISTRY.items() if s.func is not None and s.func.__module__ == portfolio.__name__}
    assert keys == set(CASES)


def test_dependency_measures_are_not_controllable():
    cat = kt.kpis()
    assert not cat.loc[["top_account_revenue_share", "revenue_concentration"], "controllable"].any()
    assert (cat.loc[["top_account_revenue_share", "revenue_concentration"], "grain"] == "entity").all()


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        # top 50% of n = ceil(n / 2): 5 accounts -> 3, 4 -> 2, 3 -> 2, 2 -> 1
        ("portfolio", {("portfolio", Q1): (2000 + 1900 + 600) / 5500, ("portfolio", Q2): (1400 + 1100) / 4200}),
        ("industry", {("Chemicals", Q1): 2000 / 3900, ("Retail", Q1): (600 + 500) / 1600,  # K3 and N2 tie at 500
                      ("Chemicals", Q2): 1100 / 1800, ("Retail", Q2): 1400 / 2400}),
    ],
)
def test_top_share_rounds_the_number_of_top_accounts_up(data, monkeypatch, by, expected):
    monkeypatch.setattr(portfolio, "TOP_ACCOUNTS_PERCENT", 50)
    assert _values(data, "top_account_revenue_share", by) == pytest.approx(expected)


def test_entity_measures_report_only_the_requested_periods(data):
    v = kt.compute(data, ["revenue_concentration"], by="portfolio", period="M", as_of=AS_OF, start="2024-03-01")
    assert v["period"].astype(str).tolist() == ["2024-03", "2024-04", "2024-05", "2024-06"]


def test_coverage_without_kam_start_counts_key_accounts_from_the_start():
    tables = _tables()
    tables["accounts"] = tables["accounts"].drop(columns="kam_start")
    got = _values(_load(tables), "account_coverage_ratio", "portfolio")
    # K2 is now key in Q1 too, and its Q1 meeting took place: Q1 K1, K2, K3 all covered
    assert got == pytest.approx({("portfolio", Q1): 3 / 3, ("portfolio", Q2): 1 / 3})


def test_coverage_without_attendance_counts_every_interaction():
    tables = _tables()
    tables["interactions"] = tables["interactions"].drop(columns="attended")
    got = _values(_load(tables), "account_coverage_ratio", "portfolio")
    assert got == pytest.approx({("portfolio", Q1): 2 / 2, ("portfolio", Q2): 2 / 3})  # K1's Q2 meeting counts


@pytest.mark.parametrize(
    ("table", "column", "kpi", "note"),
    [
        ("interactions", None, "account_coverage_ratio", "not computable: needs table interactions"),
        ("transactions", "quantity", "key_account_price_premium", "not computable: needs column transactions.quantity"),
        ("transactions", "product", "key_account_price_premium", "not computable: needs column transactions.product"),
    ],
    ids=["no-interactions", "no-quantity", "no-product"],
)
def test_not_computable_without_its_input(table, column, kpi, note):
    tables = _tables()
    if column is None:
        del tables[table]
    else:
        tables[table] = tables[table].drop(columns=column)
    with pytest.warns(KpiWarning, match=f"{kpi} \\({note.removeprefix('not computable: ')}\\)"):
        v = kt.compute(_load(tables), [kpi], as_of=AS_OF)
    assert v["value"].isna().all()
    assert set(v["note"]) == {note}
    assert len(v) == 5 * 2  # one row per account and period
