"""Scorecards: normalisation, red/amber/green, tenure weights, KPI-set checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import kamtools as kt
from kamtools.exceptions import ParameterError
from kamtools.kpi._registry import REGISTRY
from kamtools.scorecard import KpiSetWarning, rag, tenure_weights

SPEC = dict(category="revenue", level="customer", driver="financial", definition="test", formula="test",
            unit="count", tables=("transactions",), provider="customer", cadence="Q")
TEST_KPIS = {
    # key: (pillar, direction, timing)
    "t_rel": ("relationships", "higher", "leading"),
    "t_rev": ("revenue", "higher", "lagging"),
    "t_ret": ("retention", "lower", "lagging"),
    "t_learn": ("learning", "higher", "leading"),
}


@pytest.fixture(autouse=True)
def test_kpis():
    for key, (pillar, direction, timing) in TEST_KPIS.items():
        kt.kpi.register(key, pillar=pillar, direction=direction, timing=timing, name=key, replace=True, **SPEC)(None)
    yield
    for key in TEST_KPIS:
        REGISTRY.pop(key, None)


def values(rows):
    """rows: (entity, period, kpi, value)."""
    df = pd.DataFrame(rows, columns=["entity", "period", "kpi", "value"])
    df["period"] = pd.PeriodIndex(df["period"], freq="Q")
    return df


def data_with_managers(start_dates: dict[str, str]):
    accounts = pd.DataFrame({
        "account_id": list(start_dates), "account_name": list(start_dates), "is_key_account": True,
        "manager_id": [f"M{i}" for i in range(len(start_dates))],
    })
    managers = pd.DataFrame({
        "manager_id": [f"M{i}" for i in range(len(start_dates))], "name": "x",
        "start_date": list(start_dates.values()),
    })
    tx = pd.DataFrame({"account_id": list(start_dates), "date": "2024-01-01", "revenue": 1.0})
    return kt.load({"accounts": accounts, "managers": managers, "transactions": tx})


TARGETS = {"t_rel": 10, "t_rev": 100, "t_ret": 5, "t_learn": 4}


def test_scores_by_hand():
    v = values([
        ("A", "2024Q4", "t_rel", 8),     # 8 / 10 -> 80
        ("A", "2024Q4", "t_rev", 150),   # beyond target -> 100
        ("A", "2024Q4", "t_ret", 7.5),   # lower is better: floor 2*5 = 10; (10 - 7.5) / (10 - 5) -> 50
        ("A", "2024Q4", "t_learn", 1),   # 1 / 4 -> 25
    ])
    card = kt.scorecard(v, targets=TARGETS, weights={"relationships": 50, "revenue": 30, "retention": 20})
    k = card.kpis.set_index("kpi")
    assert k["score"].to_dict() == {"t_learn": 25.0, "t_rel": 80.0, "t_ret": 50.0, "t_rev": 100.0}
    assert k["rag"].to_dict() == {"t_learn": "red", "t_rel": "amber", "t_ret": "red", "t_rev": "green"}
    # overall = (50*80 + 30*100 + 20*50) / 100; learning is beside, not in it
    assert card.overall["score"].tolist() == [pytest.approx(80.0)]
    assert card.overall["rag"].tolist() == ["amber"]
    p = card.pillars.set_index("pillar")
    assert p.loc["learning", "weight"] == 0.0 and p.loc["learning", "score"] == 25.0


def test_explicit_floor_and_per_entity_target():
    v = values([("A", "2024Q4", "t_rev", 60), ("B", "2024Q4", "t_rev", 60)])
    targets = pd.DataFrame({
        "kpi": ["t_rev", "t_rev"], "target": [100, 80], "floor": [50, np.nan], "entity": [None, "B"],
    })
    card = kt.scorecard(v, targets=targets, weights="equal")
    s = card.kpis.set_index("entity")["score"]
    assert s["A"] == pytest.approx(20.0)  # (60 - 50) / (100 - 50)
    # B's own target 80; its row gives no floor, so the general floor 50 holds: (60 - 50) / (80 - 50)
    assert s["B"] == pytest.approx(100 / 3)


@pytest.mark.parametrize(
    ("score", "expected"),
    [(69.999, "red"), (70.0, "amber"), (89.999, "amber"), (90.0, "green"), (100.0, "green"), (0.0, "red")],
)
def test_rag_band_edges(score, expected):
    assert rag(pd.Series([score])).tolist() == [expected]


def test_custom_bands():
    assert rag(pd.Series([60.0, 80.0]), {"green": 80, "amber": 60}).tolist() == ["amber", "green"]
    with pytest.raises(ParameterError, match="thresholds must give 'amber' <= 'green'"):
        kt.scorecard(values([("A", "2024Q4", "t_rev", 1)]), targets={"t_rev": 1}, weights="equal",
                     thresholds={"green": 50, "amber": 60})


@pytest.mark.parametrize(
    ("start", "months", "weights"),
    [
        # period 2024Q4 ends 2024-12-31
        ("2023-07-01", 17, (60, 20, 20)),   # 17 whole months: first band
        ("2023-06-30", 18, (40, 30, 30)),   # exactly 18 months: second band
        ("2021-12-31", 36, (40, 30, 30)),   # exactly 36 months: still second band
        ("2021-11-30", 37, (30, 40, 30)),   # 37 months: third band
    ],
)
def test_tenure_weights_at_band_boundaries(start, months, weights):
    data = data_with_managers({"A": start})
    v = values([("A", "2024Q4", "t_rel", 10), ("A", "2024Q4", "t_rev", 50), ("A", "2024Q4", "t_ret", 10)])
    card = kt.scorecard(v, targets={"t_rel": 10, "t_rev": 100, "t_ret": 5}, data=data)
    o = card.overall.iloc[0]
    assert o["tenure_months"] == months
    # scores: relationships 100, revenue 50, retention 0 (at the floor 10)
    w_rel, w_rev, w_ret = weights
    assert o["score"] == pytest.approx((w_rel * 100 + w_rev * 50 + w_ret * 0) / 100)
    assert card.pillars.set_index("pillar")["weight"].to_dict() == {
        "relationships": w_rel, "retention": w_ret, "revenue": w_rev,
    }


def test_fixed_weights_are_shown_as_percent():
    v = values([("A", "2024Q4", "t_rel", 10), ("A", "2024Q4", "t_rev", 50)])
    card = kt.scorecard(v, targets={"t_rel": 10, "t_rev": 100}, weights={"relationships": 3, "revenue": 1})
    assert card.pillars.set_index("pillar")["weight"].to_dict() == {"relationships": 75.0, "revenue": 25.0}
    assert card.overall["score"].iloc[0] == pytest.approx(0.75 * 100 + 0.25 * 50)


@pytest.mark.parametrize(
    ("kpi", "target", "floor", "value", "score"),
    [
        ("t_ret", -0.05, -0.01, -0.20, 100.0),   # lower is better, a 20% cut beats the 5% target
        ("t_ret", -0.05, -0.01, -0.03, 50.0),    # (-0.01 - -0.03) / (-0.01 - -0.05)
        ("t_ret", 0.0, 0.10, 0.02, 80.0),        # churn target 0, floor 10%: (0.10 - 0.02) / 0.10
        ("t_rev", 30.0, -100.0, -60.0, 100 * 40 / 130),  # an NPS-like KPI with floor -100
    ],
)
def test_targets_at_or_below_zero_need_and_use_a_floor(kpi, target, floor, value, score):
    v = values([("A", "2024Q4", kpi, value)])
    t = pd.DataFrame({"kpi": [kpi], "target": [target], "floor": [floor]})
    assert kt.scorecard(v, targets=t, weights="equal").kpis["score"].iloc[0] == pytest.approx(score)


def test_floor_errors():
    v = values([("A", "2024Q4", "t_ret", 0.02)])
    with pytest.raises(ParameterError, match=r"give a floor \(the value that scores 0\) for t_ret"):
        kt.scorecard(v, targets={"t_ret": 0.0}, weights="equal")
    with pytest.raises(ParameterError, match="the floor must be worse than the target.*check t_ret"):
        kt.scorecard(v, targets=pd.DataFrame({"kpi": ["t_ret"], "target": [0.05], "floor": [0.01]}), weights="equal")


def test_scorecard_of_manager_values_uses_manager_tenure():
    data = data_with_managers({"A": "2023-06-30"})  # manager M0
    v = values([("M0", "2024Q4", "t_rel", 10), ("M0", "2024Q4", "t_rev", 50)])
    v.attrs["by"] = "manager"  # as kt.compute(..., by="manager") records
    card = kt.scorecard(v, targets={"t_rel": 10, "t_rev": 100}, data=data)
    assert card.overall["tenure_months"].tolist() == [18]
    with pytest.raises(ParameterError, match="none of the entities is an account with a manager start date"):
        kt.scorecard(v, targets={"t_rel": 10, "t_rev": 100}, data=data, by="account")


def test_tenure_weights_table():
    t = tenure_weights([0, 17, 18, 36, 37])
    assert t[["relationships", "revenue", "retention"]].values.tolist() == [
        [60, 20, 20], [60, 20, 20], [40, 30, 30], [40, 30, 30], [30, 40, 30],
    ]


def test_missing_pillar_renormalises_weights():
    v = values([("A", "2024Q4", "t_rel", 5), ("A", "2024Q4", "t_rev", 100)])  # no retention KPI
    card = kt.scorecard(v, targets={"t_rel": 10, "t_rev": 100}, weights={"relationships": 60, "revenue": 20, "retention": 20})
    assert card.overall["score"].iloc[0] == pytest.approx((60 * 50 + 20 * 100) / 80)


def test_any_red_rule_and_trend():
    v = values([
        ("A", "2024Q3", "t_rel", 10), ("A", "2024Q3", "t_rev", 100),
        ("A", "2024Q4", "t_rel", 10), ("A", "2024Q4", "t_rev", 60),
    ])
    card = kt.scorecard(v, targets={"t_rel": 10, "t_rev": 100}, weights="equal")
    assert card.overall["score"].tolist() == [100.0, 80.0]
    assert card.overall["rag"].tolist() == ["green", "amber"]
    assert np.isnan(card.overall["trend"].iloc[0]) and card.overall["trend"].iloc[1] == -20.0
    strict = kt.scorecard(v, targets={"t_rel": 10, "t_rev": 100}, weights="equal", rule="any_red")
    assert strict.overall["rag"].tolist() == ["green", "red"]  # t_rev at 60 is red


def test_scorecard_argument_errors():
    v = values([("A", "2024Q4", "t_rev", 1)])
    with pytest.raises(ParameterError, match="targets name KPIs that are not in the values: t_rel"):
        kt.scorecard(v, targets={"t_rel": 1}, weights="equal")
    with pytest.raises(ParameterError, match="weights='tenure' needs data="):
        kt.scorecard(v, targets={"t_rev": 1})
    with pytest.raises(ParameterError, match="weights: unknown pillar"):
        kt.scorecard(v, targets={"t_rev": 1}, weights={"money": 1})
    with pytest.raises(ParameterError, match="targets need the columns kpi and target"):
        kt.scorecard(v, targets=pd.DataFrame({"kpi": ["t_rev"]}), weights="equal")


def test_targets_from_csv(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text("KPI,Target,Weight\nt_rev,200,1\n")
    card = kt.scorecard(values([("A", "2024Q4", "t_rev", 50)]), targets=path, weights="equal")
    assert card.kpis["score"].tolist() == [25.0]


def test_check_kpi_set():
    with pytest.warns(KpiSetWarning):
        found = kt.check_kpi_set(["t_rev", "t_ret"])
    assert found == [
        "No KPI for the pillar(s) relationships, learning: a 3R+1 scorecard covers all four.",
        "Only lagging measures (results): add leading measures (activities) that drive them.",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kt.check_kpi_set(list(TEST_KPIS)) == []
    with pytest.warns(KpiSetWarning, match="11 KPIs: more than 10 dilutes focus"):
        kt.check_kpi_set(list(TEST_KPIS) + ["t_rev"] * 7)


def test_check_kpi_set_manager_control():
    spec = dict(SPEC, pillar="revenue", direction="higher", timing="leading", name="market", controllable=False)
    kt.kpi.register("t_market", replace=True, **spec)(None)
    try:
        with pytest.warns(KpiSetWarning, match="Outside the manager's control: t_market"):
            kt.check_kpi_set([*TEST_KPIS, "t_market"], manager=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            kt.check_kpi_set([*TEST_KPIS, "t_market"])  # fine on an account scorecard
    finally:
        REGISTRY.pop("t_market", None)


def test_auc_against_mann_whitney():
    from scipy.stats import mannwhitneyu

    from kamtools.scorecard import _auc

    score = np.array([10, 20, 20, 30, 40, 50, 60, 70.0])
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0])
    # pairs (lost, stayed) where the lost account scored lower: 10 < all 4, 20 < 3 of 4 and ties 1 (half),
    # 30 < 3, 60 < 1 -> (4 + 3.5 + 3 + 1) / 16
    assert _auc(score, y) == pytest.approx(11.5 / 16)
    u = mannwhitneyu(score[y == 0], score[y == 1]).statistic  # stayed above lost
    assert _auc(score, y) == pytest.approx(u / 16)


@pytest.mark.parametrize("seed", [None, 2, 4], ids=["bundled-sample", "seed-2", "seed-4"])
def test_backtest_finds_the_true_churn_signal(seed):
    """In the sample, low NPS, low engagement and no executive sponsor raise the churn hazard
    (sample.truth); a scorecard of those KPIs must rank later churners lower. Checked on the bundled
    sample (200 accounts) and on two larger generated portfolios (800 accounts)."""
    data = kt.sample.load() if seed is None else kt.sample.generate(n_accounts=800, seed=seed)
    assert data.truth.churn_hr_nps < 1 and data.truth.churn_hr_engagement < 1
    ks = ["engagement_frequency", "executive_sponsorship", "nps"]
    v = kt.compute(data, ks, period="Y")
    targets = pd.DataFrame({"kpi": ks, "target": [24, 1, 50], "floor": [0, 0, -100]})
    card = kt.scorecard(v, targets=targets, data=data)
    bt = kt.scorecard.backtest(card, data, n_boot=300, horizon="365D")
    assert bt.auc > 0.55
    assert bt.auc_ci[0] > 0.5, bt
    assert bt.auc_ci[0] < bt.auc < bt.auc_ci[1]
    # red accounts are lost more often than green ones
    assert bt.lift.loc["red", "rate"] > bt.lift.loc["green", "rate"]
    assert bt.lift["n"].sum() == bt.n and bt.lift["events"].sum() == bt.events
    assert set(bt.weights) == {"relationships", "retention"} and sum(bt.weights.values()) == pytest.approx(100)


def test_backtest_needs_an_observed_horizon():
    data = kt.sample.generate(n_accounts=30, seed=1)
    v = kt.compute(data, ["revenue"], period="Y")
    card = kt.scorecard(v, targets={"revenue": 1e6}, weights="equal")
    with pytest.raises(ParameterError, match=r"No scored account-period has its whole horizon \(3650D\) observed"):
        kt.scorecard.backtest(card, data, horizon="3650D")
