"""The KPI framework: registry, catalogue, compute by entity and period."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import kamtools as kt
from kamtools.exceptions import KamtoolsError, ParameterError
from kamtools.kpi import KpiWarning
from kamtools.kpi._registry import CATEGORIES, PILLARS, REGISTRY

# Every KPI the source documents name (issue 3), mapped to the catalogue key(s) that cover it.
# The test fails if one of them is missing from the catalogue.
REQUIRED = {
    # relationships
    "account engagement": ["engagement_frequency", "engagement_breadth", "product_breadth"],
    "account plan quality": ["account_plan_quality"],
    "business reviews completed": ["business_reviews"],
    "customer needs analysis": ["needs_analysis"],
    "executive sponsorship": ["executive_sponsorship"],
    "internal collaboration": ["internal_collaboration"],
    "number of contacts": ["contacts", "decision_makers"],
    "solution proposal relevance": ["solution_relevance"],
    "number of touchpoints": ["touchpoints"],
    "meeting attendance rate": ["meeting_attendance_rate"],
    # revenue
    "account plan execution": ["account_plan_execution"],
    "cross-selling": ["cross_sell_revenue"],
    "customer lifetime value (simple form)": ["customer_lifetime_value"],
    "profit margin expansion": ["profit_margin_expansion", "gross_margin_pct"],
    "lead management": ["lead_closure_rate"],
    "new business opportunities": ["new_business_opportunities"],
    "number of referrals": ["referrals"],
    "opportunity conversion rate": ["opportunity_conversion_rate"],
    "product mix": ["product_mix_concentration"],
    "cost to serve and its reduction": ["cost_to_serve", "cost_to_serve_growth"],
    "revenue per account": ["revenue_per_account", "annual_revenue_per_account"],
    "revenue growth rate": ["revenue_growth_rate"],
    "share of wallet": ["share_of_wallet"],
    "time to close": ["time_to_close"],
    "time to implement": ["time_to_implement"],
    "unprofitable customers": ["unprofitable_customers"],
    "upsell rate": ["upsell_rate"],
    "gross margin per account": ["gross_margin"],
    "net profit margin": ["net_profit_margin"],
    "account penetration index": ["account_penetration_index"],
    "account saturation index": ["account_saturation_index"],
    "account expansion rate": ["account_expansion_rate"],
    "market share within the account's spend": ["account_market_share"],
    # retention
    "churn rate": ["churn_rate", "contract_churn_rate"],
    "competitor activity monitoring": ["competitive_win_rate"],
    "contract renewal rate (without rebid)": ["contract_renewal_rate"],
    "customer defection risk (rule-based)": ["defection_risk"],
    "designation as preferred supplier": ["preferred_supplier_share"],
    "contract length change": ["contract_length_change"],
    "issue resolution time": ["issue_resolution_time"],
    "average response time": ["response_time"],
    "NPS": ["nps"],
    "CSAT": ["csat"],
    "retention rate": ["retention_rate"],
    "supplier consolidation": ["supplier_consolidation_rate"],
    "net and gross revenue retention": ["net_revenue_retention", "gross_revenue_retention"],
    # learning & development
    "coaching/mentoring hours": ["coaching_hours"],
    "continuous improvement rate": ["continuous_improvement"],
    "feedback scores": ["feedback_score"],
    "industry certification rate": ["certification_rate"],
    "skill assessment scores": ["skill_score"],
    "training completion rate": ["training_completion_rate"],
    # portfolio
    "account coverage ratio": ["account_coverage_ratio"],
    "key-account dependency (top share and concentration index)": ["top_account_revenue_share", "revenue_concentration"],
    "price premium of key over other accounts": ["key_account_price_premium"],
}


def test_the_catalogue_covers_every_pillar():
    cat = kt.kpis()
    assert set(cat["pillar"]) == set(PILLARS)
    assert set(cat["category"]) == set(CATEGORIES), "all seven categories are used"
    assert set(cat["timing"]) == {"leading", "lagging"}


def tiny_data():
    from conftest import _tiny

    return kt.load(_tiny(), currency="EUR")


def test_catalogue_has_complete_metadata():
    cat = kt.kpis()
    assert len(cat) == len(REGISTRY) > 0
    text = ["name", "definition", "formula", "unit"]
    assert (cat[text].apply(lambda s: s.str.strip().str.len() > 0)).all().all()
    assert cat["pillar"].isin(PILLARS).all()
    assert cat["category"].isin(CATEGORIES).all()
    assert cat["level"].isin(["supplier", "customer", "interaction"]).all()
    assert cat["timing"].isin(["leading", "lagging"]).all()
    assert cat["driver"].isin(["financial", "relational", "process"]).all()
    assert cat["direction"].isin(["higher", "lower"]).all()
    assert cat["cadence"].isin(["M", "Q", "Y"]).all()
    assert cat["tables"].map(len).gt(0).all(), "every KPI names the tables it needs (WHO)"
    assert cat["builtin"].all()


@pytest.mark.parametrize("name", list(REQUIRED))
def test_every_documented_kpi_is_in_the_catalogue(name):
    cat = kt.kpis()
    missing = [k for k in REQUIRED[name] if k not in cat.index]
    assert not missing, f"{name}: missing {missing}"


def test_catalogue_filters():
    assert set(kt.kpis(pillar="revenue")["pillar"]) == {"revenue"}
    both = kt.kpis(category=["revenue", "profitability"])
    assert set(both["category"]) <= {"revenue", "profitability"}
    with pytest.raises(ParameterError, match="cannot filter on 'colour'"):
        kt.kpis(colour="red")


def test_compute_by_account_and_portfolio_by_hand():
    data = tiny_data()
    v = kt.compute(data, ["revenue", "revenue_per_account"], period="Q")
    a1 = v[(v["entity"] == "A1") & (v["kpi"] == "revenue")]
    a1 = a1.set_index(a1["period"].astype(str))["value"]
    # A1 bought 1000 on 2023-01-15 and 1500.5 on 2023-05-02; nothing in Q3 (still active: counts 0)
    assert a1.to_dict() == {"2023Q1": 1000.0, "2023Q2": 1500.5, "2023Q3": 0.0}
    p = kt.compute(data, ["revenue_per_account"], by="portfolio", period="Q")
    # Q1: (1000 + 300 + 800) / 3 active accounts
    assert p["value"].tolist() == pytest.approx([2100 / 3, 1500.5 / 3, 950 / 3])
    assert p["den"].tolist() == [3.0, 3.0, 3.0]


def test_compute_by_segment_pools_accounts():
    v = kt.compute(tiny_data(), ["revenue"], by="industry", period="Y")
    # Retail = A2 (300) + A3 (800 + 950); Chemicals = A1 (1000 + 1500.5)
    assert dict(zip(v["entity"], v["value"], strict=True)) == {"Chemicals": 2500.5, "Retail": 2050.0}


def test_growth_compares_with_the_previous_period():
    v = kt.compute(tiny_data(), ["revenue_growth_rate"], period="Q", as_of="2023-09-30")
    a1 = v[v["entity"] == "A1"]["value"].tolist()
    # Q2 / Q1 - 1 = 1500.5 / 1000 - 1; Q3: 0 / 1500.5 - 1 = -1; Q1 has no previous period
    assert np.isnan(a1[0]) and a1[1:] == pytest.approx([0.5005, -1.0])


def test_growth_of_the_first_reported_period_uses_the_period_before():
    v = kt.compute(tiny_data(), ["revenue_growth_rate"], period="Q", start="2023-04-01", as_of="2023-09-30")
    a1 = v[v["entity"] == "A1"]
    assert a1["period"].astype(str).tolist() == ["2023Q2", "2023Q3"]
    assert a1["value"].tolist() == pytest.approx([0.5005, -1.0])  # 2023Q1 is read, not reported


def test_a_running_period_is_marked_and_not_compared():
    # as_of 2023-08-20 (the last invoice) is inside Q3: Q3 holds only part of its data
    v = kt.compute(tiny_data(), ["revenue", "revenue_growth_rate"], period="Q")
    q3 = v[(v["entity"] == "A1") & (v["period"].astype(str) == "2023Q3")].set_index("kpi")
    assert q3.loc["revenue", "value"] == 0.0
    assert q3.loc["revenue", "note"] == "partial period: data up to 2023-08-20"
    assert np.isnan(q3.loc["revenue_growth_rate", "value"])
    assert q3.loc["revenue_growth_rate", "note"] == "period running at 2023-08-20: not compared with a full period"
    assert v[v["period"].astype(str) == "2023Q2"]["note"].isna().all()


def test_accounts_without_a_group_are_kept():
    tables = dict(tiny_data().tables)
    tables["accounts"] = tables["accounts"].assign(industry=["Chemicals", None, "Retail"])
    v = kt.compute(kt.load(tables), ["revenue"], by="industry", period="Y", as_of="2023-12-31")
    # A2 (300) has no industry
    assert dict(zip(v["entity"], v["value"], strict=True)) == {"(missing)": 300.0, "Chemicals": 2500.5, "Retail": 1750.0}


def test_rows_outside_the_active_span_are_not_dropped():
    tables = dict(tiny_data().tables)
    # A2's only invoice is 2023-02-10; a cost_to_serve booked in 2022Q4 lies before its active span
    tables["costs"] = pd.DataFrame({"account_id": ["A2", "A2"], "date": pd.to_datetime(["2022-11-15", "2023-02-01"]),
                                    "kind": ["cost_to_serve", "cost_to_serve"], "amount": [50.0, 70.0]})
    v = kt.compute(kt.load(tables), ["cost_to_serve"], by="portfolio", period="Q", start="2022-10-01",
                   as_of="2023-09-30")
    assert v.set_index(v["period"].astype(str))["value"].to_dict() == {
        "2022Q4": 50.0, "2023Q1": 70.0, "2023Q2": 0.0, "2023Q3": 0.0}


def test_as_of_hides_later_rows():
    v = kt.compute(tiny_data(), ["revenue"], by="portfolio", period="Q", as_of="2023-05-01")
    # the 1500.5 invoice of 2023-05-02 is after as_of; Q2 holds nothing yet
    assert v["period"].astype(str).tolist() == ["2023Q1", "2023Q2"]
    assert v["value"].tolist() == [2100.0, 0.0]


def test_not_computable_says_why():
    tables = {k: v for k, v in tiny_data().tables.items() if k != "surveys"}
    data = kt.load(tables, currency="EUR")
    with pytest.warns(KpiWarning, match=r"1 KPI\(s\) not computable from this data: nps \(needs table surveys\)"):
        v = kt.compute(data, ["revenue", "nps"], period="Y", as_of="2023-12-31")
    nps = v[v["kpi"] == "nps"]
    assert nps["value"].isna().all()
    assert set(nps["note"]) == {"not computable: needs table surveys"}
    assert len(nps) == 3  # one row per account and period
    assert v[v["kpi"] == "revenue"]["note"].isna().all()


def test_not_computable_for_a_missing_column():
    tables = dict(tiny_data().tables)
    tables["transactions"] = tables["transactions"].drop(columns="cost")
    with pytest.warns(KpiWarning, match=r"gross_margin \(needs column transactions.cost\)"):
        v = kt.compute(kt.load(tables), ["gross_margin"], period="Y")
    assert v["value"].isna().all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period": "W"}, r"period='W' is not a period length kamtools knows; use 'M', 'Q' or 'Y'"),
        ({"by": "colour"}, r"by='colour': group by 'account', 'manager', 'portfolio' or a column of accounts"),
        ({"kpis": ["revenu"]}, r"No KPI 'revenu'. Did you mean 'revenue'"),
        ({"as_of": "yesterday-ish"}, r"as_of='yesterday-ish' is not a date"),
        ({"start": "2030-01-01"}, r"start=2030-01-01 is after as_of=2023-08-20"),
    ],
)
def test_bad_arguments(kwargs, message):
    kwargs.setdefault("kpis", ["revenue"])
    with pytest.raises(ParameterError, match=message):
        kt.compute(tiny_data(), **kwargs)


def test_user_kpi_behaves_like_a_builtin():
    @kt.kpi.register(
        "big_lines", name="Big invoice lines", pillar="revenue", category="revenue", level="customer",
        timing="lagging", driver="financial", definition="Invoice lines of 900 or more.",
        formula="count of lines with revenue >= 900", unit="count", direction="higher",
        tables=("transactions",), provider="customer", cadence="Q", fill=0.0, replace=True,
    )
    def big_lines(ctx):
        tx = ctx.table("transactions")
        return ctx.per_account(tx[tx["revenue"] >= 900], how="count")

    try:
        assert kt.kpis().loc["big_lines", "builtin"] == False  # noqa: E712
        v = kt.compute(tiny_data(), ["big_lines"], by="portfolio", period="Y")
        assert v["value"].tolist() == [3.0]  # 1000, 1500.5 and 950
        with pytest.raises(ParameterError, match="A KPI 'big_lines' is registered already"):
            kt.kpi.register("big_lines", **{k: v for k, v in kt.kpis().loc["big_lines"].items()
                                             if k in ("name",)})(big_lines)
    finally:
        REGISTRY.pop("big_lines", None)


def test_a_broken_user_kpi_gets_a_clear_error():
    @kt.kpi.register(
        "broken", name="Broken", pillar="revenue", category="revenue", level="customer", timing="lagging",
        driver="financial", definition="x", formula="x", unit="count", direction="higher",
        tables=("transactions",), provider="customer", cadence="Q", replace=True,
    )
    def broken(ctx):
        return pd.Series([1.0])

    try:
        with pytest.raises(KamtoolsError, match="KPI 'broken' returned Series; a KPI function must return a DataFrame"):
            kt.compute(tiny_data(), ["broken"])
    finally:
        REGISTRY.pop("broken", None)


def test_bad_spec_is_refused():
    with pytest.raises(ParameterError, match=r"KPI 'x': pillar='money' is not one of relationships, revenue"):
        kt.kpi.register(
            "x", name="X", pillar="money", category="revenue", level="customer", timing="lagging",
            driver="financial", definition="x", formula="x", unit="count", direction="higher",
            tables=("transactions",), provider="customer", cadence="Q",
        )(lambda ctx: None)
    assert "x" not in REGISTRY


def test_wide_and_benchmark():
    data = tiny_data()
    v = kt.compute(data, ["revenue"], period="Y")
    w = kt.kpi.wide(v)
    assert w.loc[("A3", pd.Period("2023", "Y")), "revenue"] == 1750.0
    b = kt.kpi.benchmark(v, data, segment="industry")
    retail = b[b["segment"] == "Retail"].set_index("entity")
    # Retail: A2 300, A3 1750 -> mid-rank percentiles 25 and 75; median (300 + 1750) / 2
    assert retail.loc["A2", "percentile"] == 25.0 and retail.loc["A3", "percentile"] == 75.0
    assert retail.loc["A2", "segment_median"] == 1025.0
    assert retail.loc["A2", "segment_n"] == 2
    assert b.set_index("entity").loc["A1", "percentile"] == 50.0  # alone in Chemicals


def test_compute_does_not_loop_over_accounts(monkeypatch):
    """A KPI function is called once per compute, whatever the number of accounts."""
    calls = []
    spec = REGISTRY["revenue"]
    original = spec.func
    object.__setattr__(spec, "func", lambda ctx: calls.append(1) or original(ctx))
    try:
        kt.compute(tiny_data(), ["revenue", "revenue_growth_rate"], period="M")
    finally:
        object.__setattr__(spec, "func", original)
    assert calls == [1]


def test_no_warning_when_everything_is_computable():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kt.compute(tiny_data(), ["revenue", "gross_margin"])


def test_kpi_with_no_rows_says_no_data():
    # the tiny data has surveys only in 2023Q2; as of 2023-03-31 there are none yet
    v = kt.compute(tiny_data(), ["nps"], period="Q", as_of="2023-03-31")
    assert v["value"].isna().all()
    assert set(v["note"]) == {"no data: no rows to compute it from up to 2023-03-31"}
    assert sorted(v["entity"]) == ["A1", "A2", "A3"]


def test_a_kpi_can_say_why_a_value_is_missing():
    @kt.kpi.register(
        "noted", name="Noted", pillar="revenue", category="revenue", level="customer", timing="lagging",
        driver="financial", definition="x", formula="x", unit="count", direction="higher",
        tables=("transactions",), provider="customer", cadence="Q", replace=True,
    )
    def noted(ctx):
        grid = ctx.active.assign(num=np.nan)
        return grid.assign(note=np.where(grid["period"] == ctx.periods[-1], "not final yet", None))

    try:
        v = kt.compute(tiny_data(), ["noted"], by="portfolio", period="Q")
        assert v["note"].tolist()[-1] == "not final yet"
        assert v["note"].isna().tolist()[:-1] == [True, True]
    finally:
        REGISTRY.pop("noted", None)
