"""Tests of kamtools.roi: DiD forms against statsmodels, the staggered estimator against hand
computations and the sample's known truth, matching, ROI arithmetic, the what-if, bad input."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import kamtools as kt
from kamtools import roi
from kamtools.exceptions import DataWarning, ParameterError, SchemaError

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sample():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return kt.sample.load()


@pytest.fixture(scope="module")
def sample_panel(sample):
    return roi.panel(sample)


_GENERATED: dict = {}


def generated(seed: int, n_accounts: int = 200):
    """A generated portfolio and its panel, cached across tests."""
    key = (seed, n_accounts)
    if key not in _GENERATED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            data = kt.sample.generate(n_accounts=n_accounts, seed=seed)
            _GENERATED[key] = (data, roi.panel(data))
    return _GENERATED[key]


def two_by_two() -> pd.DataFrame:
    """Twelve observations written out: 3 treated and 3 control, before and after."""
    return pd.DataFrame(
        {
            "y": [10.0, 12.0, 11.0, 15.0, 18.0, 16.0, 9.0, 10.0, 11.0, 10.0, 12.0, 11.0],
            "treated": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
            "post": [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1],
            "unit": ["a", "b", "c", "a", "b", "c", "d", "e", "f", "d", "e", "f"],
            "x": [1.0, 2.0, 0.5, 1.5, 2.5, 1.0, 0.0, 1.0, 2.0, 0.5, 1.5, 2.5],
        }
    )


def small_panel(seed: int = 0, n_units: int = 8, n_periods: int = 6) -> pd.DataFrame:
    """Random balanced panel: units 0-2 enter at period 3, 3-4 at period 4, the rest never."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(n_periods), n_units)
    cohort = np.select([u < 3, u < 5], [3, 4], -1)
    d = ((cohort >= 0) & (t >= cohort)).astype(float)
    y = 50 + 3 * u + 2 * t + 4 * d + rng.normal(0, 1, len(u))
    return pd.DataFrame(
        {
            "unit": u,
            "period": t,
            "y": y,
            "d": d,
            "cohort": pd.array(np.where(cohort >= 0, cohort, None), dtype="Int64"),
            "treated": (cohort >= 0).astype(int),
            "z": rng.normal(size=len(u)),
        }
    )


# --------------------------------------------------------------------------- did: the 2x2 form


def test_2x2_equals_hand_written_ols_and_cell_means():
    import statsmodels.api as sm

    df = two_by_two()
    res = roi.did(df, outcome="y", treated="treated", post="post", cov_type="nonrobust")
    # cell means: treated pre (10+12+11)/3 = 11, post (15+18+16)/3 = 16.3333;
    #             control pre (9+10+11)/3 = 10, post (10+12+11)/3 = 11
    assert res.effect == pytest.approx((49 / 3 - 11) - (11 - 10))  # = 4.3333
    X = np.column_stack([np.ones(12), df["treated"], df["post"], df["treated"] * df["post"]])
    ols = sm.OLS(df["y"].to_numpy(), X).fit()  # statsmodels OLS on the same frame
    assert res.effect == pytest.approx(ols.params[3], rel=1e-12)
    assert res.se == pytest.approx(ols.bse[3], rel=1e-12)
    assert res.pvalue == pytest.approx(ols.pvalues[3], rel=1e-10)
    assert res.n == 12 and res.form == "2x2"
    cells = res.cells.set_index(["treated", "post"])["mean"]
    assert cells[(True, True)] == pytest.approx(49 / 3)
    assert cells[(False, False)] == pytest.approx(10.0)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"])
def test_2x2_cov_types_equal_statsmodels(cov_type):
    import statsmodels.api as sm

    df = two_by_two()
    res = roi.did(df, outcome="y", treated="treated", post="post", unit="unit", covariates=["x"], cov_type=cov_type)
    X = np.column_stack([np.ones(12), df["treated"], df["post"], df["treated"] * df["post"], df["x"]])
    model = sm.OLS(df["y"].to_numpy(), X)
    if cov_type == "cluster":
        ref = model.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(df["unit"])[0]}, use_t=True)
    elif cov_type == "nonrobust":
        ref = model.fit()
    else:
        ref = model.fit(cov_type=cov_type)
    assert res.se == pytest.approx(ref.bse[3], rel=1e-10)
    assert res.ci[0] == pytest.approx(ref.conf_int()[3, 0], rel=1e-10)
    assert res.cov_type == cov_type


def test_2x2_cluster_without_unit_is_hc1():
    import statsmodels.api as sm

    df = two_by_two()
    res = roi.did(df, outcome="y", treated="treated", post="post")
    X = np.column_stack([np.ones(12), df["treated"], df["post"], df["treated"] * df["post"]])
    assert res.cov_type == "HC1"
    assert res.se == pytest.approx(sm.OLS(df["y"].to_numpy(), X).fit(cov_type="HC1").bse[3], rel=1e-12)


# --------------------------------------------------------------------------- did: two-way fixed effects


def _dummy_regression(df, cov_type):
    import statsmodels.formula.api as smf

    model = smf.ols("y ~ d + C(unit) + C(period)", data=df)
    if cov_type == "cluster":
        return model.fit(cov_type="cluster", cov_kwds={"groups": df["unit"].to_numpy()}, use_t=True)
    if cov_type == "nonrobust":
        return model.fit()
    return model.fit(cov_type=cov_type)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1"])
def test_twfe_equals_dummy_variable_regression(cov_type):
    df = small_panel()
    df["post"] = df["d"]
    res = roi.did(df, outcome="y", treated="treated", post="post", unit="unit", time="period", cov_type=cov_type)
    ref = _dummy_regression(df, cov_type)  # statsmodels OLS with unit and period dummies
    assert res.effect == pytest.approx(ref.params["d"], rel=1e-10)
    assert res.se == pytest.approx(ref.bse["d"], rel=1e-10)
    assert res.form == "twfe" and res.n_units == 8


def test_twfe_cluster_se_omits_absorbed_unit_effects():
    df = small_panel(seed=1)
    df["post"] = df["d"]
    res = roi.did(df, outcome="y", treated="treated", post="post", unit="unit", time="period")
    ref = _dummy_regression(df, "cluster")
    n = len(df)
    k_dummy = 1 + 7 + 5 + 1  # const, 7 unit and 5 period dummies, d
    k_within = 5 + 1  # 5 period dummies, d
    # statsmodels' CRV1 factor is G/(G-1) (N-1)/(N-K): the absorbed unit effects are not in K here (xtreg's rule)
    assert res.se == pytest.approx(ref.bse["d"] * math.sqrt((n - k_dummy) / (n - k_within)), rel=1e-10)
    assert res.effect == pytest.approx(ref.params["d"], rel=1e-10)


def test_twfe_rejects_hc3():
    df = small_panel()
    with pytest.raises(ParameterError, match="cov_type='HC3' needs the leverage"):
        roi.did(df, outcome="y", treated="treated", post="d", unit="unit", time="period", cov_type="HC3")


def test_before_after_is_difference_of_means():
    df = two_by_two()
    res = roi.before_after(df, outcome="y", treated="treated", post="post", unit="unit")
    assert res.effect == pytest.approx(49 / 3 - 11)  # treated after 16.333 minus before 11
    assert res.n == 6 and res.form == "before-after"


# --------------------------------------------------------------------------- staggered: hand computations


def one_cohort() -> pd.DataFrame:
    """Two periods; units t1, t2 enter at period 1; c1-c3 never do."""
    return pd.DataFrame(
        {
            "unit": ["t1", "t1", "t2", "t2", "c1", "c1", "c2", "c2", "c3", "c3"],
            "period": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
            "y": [100.0, 130.0, 50.0, 62.0, 40.0, 44.0, 60.0, 63.0, 20.0, 23.0],
            "cohort": pd.array([1, 1, 1, 1, None, None, None, None, None, None], dtype="Int64"),
        }
    )


def test_staggered_additive_one_cohort_is_the_2x2():
    res = roi.staggered(
        one_cohort(), outcome="y", unit="unit", time="period", cohort="cohort", trends="additive", base_periods=1
    )
    # treated change (30 + 12)/2 = 21; control change (4 + 3 + 3)/3 = 3.3333
    assert res.effect == pytest.approx(21 - 10 / 3)
    ols = roi.did(
        one_cohort().assign(treated=lambda d: d["cohort"].notna().astype(int)),
        outcome="y",
        treated="treated",
        post="period",
        cov_type="nonrobust",
    )
    assert res.effect == pytest.approx(ols.effect, rel=1e-12)  # statsmodels OLS 2x2
    # standard error by hand (module notes): treated residuals (tau_i - mean)/(n_T - 1), control (d_j - mean)/n_C,
    # summed squares times G/(G-1) with G = 5 units
    tau = np.array([30.0, 12.0]) - 10 / 3
    dc = np.array([4.0, 3.0, 3.0])
    v = ((tau - tau.mean()) ** 2).sum() / (2 - 1) ** 2 + ((dc - dc.mean()) ** 2).sum() / 3**2
    assert res.se == pytest.approx(math.sqrt(v * 5 / 4), rel=1e-12)
    assert res.n == 2 and res.n_treated == 2


def test_staggered_proportional_one_cohort_equals_poisson_2x2():
    import statsmodels.api as sm

    df = one_cohort()
    res = roi.staggered(df, outcome="y", unit="unit", time="period", cohort="cohort", base_periods=1)
    # by hand: controls grow 130/120; treated counterfactual at period 1 = 75 * 130/120; observed 96
    assert res.effect == pytest.approx(96 - 75 * 130 / 120)
    # statsmodels Poisson GLM 2x2 (Wooldridge 2023): counterfactual mean exp(b0 + b_treated + b_post)
    tr = df["cohort"].notna().astype(float).to_numpy()
    po = df["period"].to_numpy(dtype=float)
    X = np.column_stack([np.ones(10), tr, po, tr * po])
    glm = sm.GLM(df["y"].to_numpy(), X, family=sm.families.Poisson()).fit()
    counterfactual = np.exp(glm.params[0] + glm.params[1] + glm.params[2])
    assert res.effect == pytest.approx(96 - counterfactual, rel=1e-8)


def staggered_frame() -> pd.DataFrame:
    """Four periods; a1, a2 enter at 2, b1 at 3, n1, n2 never."""
    y = {
        "a1": [10, 11, 15, 16],
        "a2": [20, 21, 26, 28],
        "b1": [30, 31, 33, 38],
        "n1": [12, 13, 14, 15],
        "n2": [8, 8, 9, 10],
    }
    cohort = {"a1": 2, "a2": 2, "b1": 3, "n1": None, "n2": None}
    rows = [(u, t, float(v), cohort[u]) for u, vals in y.items() for t, v in enumerate(vals)]
    df = pd.DataFrame(rows, columns=["unit", "period", "y", "cohort"])
    df["cohort"] = pd.array(df["cohort"], dtype="Int64")
    return df


def test_staggered_group_time_cells_by_hand():
    res = roi.staggered(
        staggered_frame(), outcome="y", unit="unit", time="period", cohort="cohort", trends="additive", base_periods=1
    )
    cells = res.att_gt.set_index(["cohort", "period"])["att"]
    # ATT(2,2), base 1: treated (15-11 + 26-21)/2 = 4.5; controls not yet treated at 2: b1, n1, n2:
    # (33-31 + 14-13 + 9-8)/3 = 4/3
    assert cells[(2, 2)] == pytest.approx(4.5 - 4 / 3)
    # ATT(2,3): treated (16-11 + 28-21)/2 = 6; controls n1, n2 (b1 treated at 3): (15-13 + 10-8)/2 = 2
    assert cells[(2, 3)] == pytest.approx(6 - 2)
    # ATT(3,3), base 2: b1 38-33 = 5; controls n1, n2: (15-14 + 10-9)/2 = 1
    assert cells[(3, 3)] == pytest.approx(5 - 1)
    # placebo ATT(2,0), base 1: treated (10-11 + 20-21)/2 = -1; controls not treated by 2: b1, n1, n2 -> -2/3
    assert cells[(2, 0)] == pytest.approx(-1 + 2 / 3)
    # overall: mean over the 5 treated post-entry unit-periods, weights 2, 2, 1
    assert res.effect == pytest.approx((2 * (4.5 - 4 / 3) + 2 * 4 + 1 * 4) / 5)
    assert res.n == 5
    et = res.event_time.set_index("event_time")
    assert et.loc[0, "estimate"] == pytest.approx((2 * (4.5 - 4 / 3) + 4) / 3)
    assert et.loc[1, "n"] == 2


def test_staggered_never_controls_and_control_units():
    df = staggered_frame()
    never = roi.staggered(
        df, outcome="y", unit="unit", time="period", cohort="cohort", trends="additive", base_periods=1, control="never"
    )
    cells = never.att_gt.set_index(["cohort", "period"])["att"]
    assert cells[(2, 2)] == pytest.approx(4.5 - 1.0)  # controls n1, n2: (1 + 1)/2
    only_n1 = roi.staggered(
        df,
        outcome="y",
        unit="unit",
        time="period",
        cohort="cohort",
        trends="additive",
        base_periods=1,
        control="never",
        control_units=["n1"],
    )
    assert only_n1.att_gt.set_index(["cohort", "period"])["att"][(2, 3)] == pytest.approx(6 - 2)  # n1: 15-13


def test_staggered_base_window_and_anticipation():
    df = staggered_frame()
    res = roi.staggered(df, outcome="y", unit="unit", time="period", cohort="cohort", trends="additive", base_periods=2)
    cells = res.att_gt.set_index(["cohort", "period"])
    # cohort 2, base mean of periods 0-1: a1 10.5, a2 20.5; at period 2 treated change (4.5 + 5.5)/2 = 5;
    # controls b1 (33 - 30.5), n1 (14 - 12.5), n2 (9 - 8) -> 5/3
    assert cells.loc[(2, 2), "att"] == pytest.approx(5 - 5 / 3)
    assert cells.loc[(2, 2), "base_periods"] == 2
    ant = roi.staggered(
        df, outcome="y", unit="unit", time="period", cohort="cohort", trends="additive", base_periods=1, anticipation=1
    )
    cells = ant.att_gt.set_index(["cohort", "period"])["att"]
    # cohort 2, base period 0; period 1 is an anticipation placebo: treated +1, controls not treated by 2:
    # b1 +1, n1 +1, n2 0 -> 1 - 2/3
    assert cells[(2, 1)] == pytest.approx(1 - 2 / 3)
    assert ant.n == 5  # placebos are not in the overall effect


def test_staggered_results_display():
    res = roi.staggered(
        staggered_frame(), outcome="y", unit="unit", time="period", cohort="cohort", trends="additive", base_periods=1
    )
    assert f"{res.effect:,.2f}" in repr(res)
    assert "<table" in res._repr_html_()
    assert res.summary.loc["ATT per treated period", "n"] == 5
    fig = res.plot()
    assert type(fig).__name__ == "Figure"
    assert "y" in fig.axes[0].get_title()


# --------------------------------------------------------------------------- the panel


def test_panel_columns_and_counts(sample, sample_panel):
    p = sample_panel
    assert p.columns.tolist() == [
        "account_id",
        "period",
        "revenue",
        "gross_margin",
        "treated",
        "post",
        "cohort",
        "event_time",
        "segment",
        "pre_level",
    ]
    assert int(p["post"].sum()) == sample.truth.treated_account_months  # 934
    tx = sample.transactions
    assert p["revenue"].sum() == pytest.approx(tx["revenue"].sum(), rel=1e-12)
    assert p["gross_margin"].sum() == pytest.approx((tx["revenue"] - tx["cost"]).sum(), rel=1e-12)
    a = p[p["account_id"] == "A0001"]
    kam = sample.accounts.set_index("account_id").loc["A0001", "kam_start"].to_period("M")
    assert (a["event_time"].astype(int) == (a["period"] - kam).map(lambda o: o.n)).all()
    assert a["pre_level"].iloc[0] == pytest.approx(
        a.loc[(a["event_time"] < 0) & (a["event_time"] >= -12), "gross_margin"].mean()
    )


def test_panel_quarterly_and_extra_kpi(sample):
    p = roi.panel(sample, freq="Q", outcome="revenue", kpis=["gross_margin_pct"])
    assert str(p["period"].dtype) == "period[Q-DEC]"
    assert "gross_margin_pct" in p.columns
    assert p["revenue"].sum() == pytest.approx(sample.transactions["revenue"].sum(), rel=1e-12)


# --------------------------------------------------------------------------- recovering the truth


@pytest.mark.parametrize("seed", [7, 1, 2, 3, 4])
def test_staggered_interval_covers_the_true_uplift(seed):
    data, p = generated(seed)
    res = roi.staggered(p, outcome="gross_margin", unit="account_id", time="period", cohort="cohort")
    assert res.n == data.truth.treated_account_months
    assert res.ci[0] < data.truth.uplift_margin_per_month < res.ci[1]


@pytest.mark.parametrize("seed", [7, 1, 2, 3, 4])
def test_programme_roi_interval_covers_the_true_roi(seed):
    data, _ = generated(seed)
    r = roi.programme_roi(data, n_boot=200)
    assert r.programme_cost == pytest.approx(data.truth.programme_cost, rel=1e-12)
    assert r.roi_ci[0] < data.truth.programme_roi < r.roi_ci[1]
    assert r.incremental_ci[0] < data.truth.incremental_margin < r.incremental_ci[1]


@pytest.mark.slow
def test_coverage_over_100_small_portfolios():
    """Over 100 generated portfolios of 80 accounts (seeds 0-99): interval coverage of uplift and ROI, bias,
    and the size of the event-study pre-trend test (trends are parallel in the simulation). About a minute."""
    cover_u, cover_r, err, pretrend_p = [], [], [], []
    for seed in range(100):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            data = kt.sample.generate(n_accounts=80, seed=seed)
            r = roi.programme_roi(data, n_boot=0)
            es = roi.event_study(r.panel, outcome="gross_margin", unit="account_id", time="period", cohort="cohort")
        t = data.truth
        cover_u.append(r.uplift.ci[0] < t.uplift_margin_per_month < r.uplift.ci[1])
        cover_r.append(r.roi_ci[0] < t.programme_roi < r.roi_ci[1])
        err.append(r.uplift.effect - t.uplift_margin_per_month)
        pretrend_p.append(es.pretrend["pvalue"].iloc[0])
    assert 0.90 <= np.mean(cover_u) <= 0.99  # 0.97 when written
    assert 0.90 <= np.mean(cover_r) <= 0.99
    err = np.array(err)
    assert abs(err.mean()) < 3 * err.std(ddof=1) / math.sqrt(len(err))  # no bias beyond simulation noise
    assert np.mean(np.array(pretrend_p) < 0.05) <= 0.12  # nominal 5%; 0.07 when written


def test_twfe_is_biased_across_portfolios():
    """The plain TWFE coefficient overstates the uplift over several portfolios; the staggered one does not."""
    errs_twfe, errs_stag = [], []
    for seed in (1, 2, 3, 4, 5):
        data, p = generated(seed)
        t = data.truth.uplift_margin_per_month
        errs_twfe.append(
            roi.did(p, outcome="gross_margin", treated="treated", post="post", unit="account_id", time="period").effect
            / t
            - 1
        )
        errs_stag.append(
            roi.staggered(p, outcome="gross_margin", unit="account_id", time="period", cohort="cohort").effect / t - 1
        )
    assert np.mean(errs_twfe) > 0.15  # +22% on average over these five seeds
    assert abs(np.mean(errs_stag)) < 0.12


# --------------------------------------------------------------------------- event study


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_event_study_profile_covers_truth(seed):
    data, p = generated(seed)
    es = roi.event_study(p, outcome="gross_margin", unit="account_id", time="period", cohort="cohort")
    truth = pd.Series(data.truth.uplift_by_event_time)
    post = es.coefficients[es.coefficients["event_time"] >= 0].set_index("event_time")
    covered = (post["ci_lower"] < truth.reindex(post.index)) & (truth.reindex(post.index) < post["ci_upper"])
    assert covered.mean() >= 0.8


@pytest.mark.parametrize("base_periods", [1, 12])
def test_event_study_detects_an_injected_pretrend(base_periods):
    _, p = generated(2)
    args = dict(outcome="gross_margin", unit="account_id", time="period", cohort="cohort", base_periods=base_periods)
    clean = roi.event_study(p, **args)
    assert clean.pretrend["pvalue"].iloc[0] > 0.05  # parallel trends in the simulation (p 0.30 with base 12)
    # key accounts' margins rise 50% in the six months before entry: the leads must show it (a 20% rise,
    # the size of the programme's own effect, gives p 0.09-0.13 here: one event time is noisy)
    bump = p["treated"] & p["event_time"].between(-6, -1).fillna(False).astype(bool)
    bumped = p.assign(gross_margin=p["gross_margin"].where(~bump, p["gross_margin"] * 1.5))
    es = roi.event_study(bumped, **args)
    assert es.pretrend["pvalue"].iloc[0] < 0.01


def test_event_study_twfe_equals_dummy_regression():
    import statsmodels.formula.api as smf

    df = small_panel(seed=2, n_units=10, n_periods=8)
    es = roi.event_study(df, outcome="y", unit="unit", time="period", cohort="cohort", method="twfe", leads=2, lags=2)
    rel = np.where(df["cohort"].isna(), np.nan, df["period"] - df["cohort"].astype("float64"))
    rel = np.clip(rel, -2, 2)
    frame = df.assign(**{f"e{k}": (rel == e).astype(float) for k, e in enumerate([-2, 0, 1, 2])})
    ref = smf.ols("y ~ e0 + e1 + e2 + e3 + C(unit) + C(period)", data=frame).fit()  # dummies by hand
    est = es.coefficients.set_index("event_time")["estimate"]
    assert est[-2] == pytest.approx(ref.params["e0"], rel=1e-8)
    assert est[2] == pytest.approx(ref.params["e3"], rel=1e-8)
    assert es.pretrend["df"].iloc[0] == 1


def test_pretrend_test_by_hand():
    data, p = generated(1)
    res = roi.staggered(p, outcome="gross_margin", unit="account_id", time="period", cohort="cohort", base_periods=1)
    from scipy import stats

    pt = res.pretrend_test(1)
    et = res.event_time.set_index("event_time")
    z = et.loc[-2, "estimate"] / et.loc[-2, "se"]
    # one lead: the statistic is its squared t, read as F(1, n_units - 1)
    assert pt["statistic"].iloc[0] == pytest.approx(z**2, rel=1e-10)
    assert pt["pvalue"].iloc[0] == pytest.approx(stats.f.sf(z**2, 1, et.loc[-2, "n_units"] - 1), rel=1e-10)


# --------------------------------------------------------------------------- matching


def matching_panel() -> pd.DataFrame:
    """Two key accounts entering at period 4 and four candidates; revenue levels make the matches obvious."""
    level = {"k1": 1000.0, "k2": 100.0, "c1": 110.0, "c2": 950.0, "c3": 500.0, "c4": 105.0}
    rows = []
    for u, lv in level.items():
        for t in range(8):
            rows.append(
                (
                    u,
                    t,
                    lv * (1 + 0.01 * t),
                    0.4 * lv * (1 + 0.01 * t),
                    4 if u.startswith("k") else None,
                    "A" if u in ("k1", "c2", "c3") else "B",
                )
            )
    df = pd.DataFrame(rows, columns=["account_id", "period", "revenue", "gross_margin", "cohort", "segment"])
    df["cohort"] = pd.array(df["cohort"], dtype="Int64")
    return df


def test_match_controls_picks_the_obvious_neighbours():
    m = roi.match_controls(matching_panel(), on=("pre_revenue", "segment"))
    pairs = dict(zip(m.pairs["unit"], m.pairs["control"], strict=True))
    assert pairs == {"k1": "c2", "k2": "c4"}  # k2 (100) is closest to c4 (105) within segment B
    # SMD of log pre-revenue before matching, by hand: treated log(1000*1.025), log(100*1.025) vs the candidates
    s = lambda x: np.log(np.array(x) * np.mean([1 + 0.01 * t for t in range(4)]))  # noqa: E731
    vt, vc = s([1000, 100]), s([110, 950, 500, 105])
    smd = (vt.mean() - vc.mean()) / math.sqrt((vt.var(ddof=1) + vc.var(ddof=1)) / 2)
    assert m.balance.loc["pre_revenue", "smd_before"] == pytest.approx(smd, rel=1e-10)
    after = (vt.mean() - s([950, 105]).mean()) / math.sqrt((vt.var(ddof=1) + vc.var(ddof=1)) / 2)
    assert m.balance.loc["pre_revenue", "smd_after"] == pytest.approx(after, rel=1e-10)


@pytest.mark.parametrize("method", ["nearest", "propensity"])
def test_match_controls_improves_balance_on_the_sample(sample_panel, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        m = roi.match_controls(sample_panel, method=method)
    b = m.balance
    assert abs(b.loc["pre_revenue", "smd_after"]) < abs(b.loc["pre_revenue", "smd_before"]) / 1.8
    assert len(m.controls) == len(m.pairs)  # without replacement
    assert set(m.controls).isdisjoint(sample_panel.loc[sample_panel["treated"], "account_id"])
    if method == "propensity":
        assert m.model is not None and "pre_revenue" in m.model.params.index


def test_match_controls_replace_and_caliper():
    m = roi.match_controls(matching_panel(), on=("pre_revenue",), replace=True, n_neighbors=2)
    assert len(m.pairs) == 4
    with pytest.warns(DataWarning, match="1 treated unit"):
        tight = roi.match_controls(matching_panel(), on=("pre_revenue", "segment"), caliper=0.048)
    # SD of the six log pre-revenues is 1.0281: c2 is log(1000/950)/1.0281 = 0.0499 SD from k1 (outside),
    # c4 is log(105/100)/1.0281 = 0.0475 SD from k2 (inside)
    assert tight.unmatched == ["k1"]
    assert tight.pairs["control"].tolist() == ["c4"]


# --------------------------------------------------------------------------- ROI


def test_programme_roi_arithmetic(sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        r = roi.programme_roi(sample, n_boot=500, seed=1)
    u = r.uplift
    assert r.treated_periods == sample.truth.treated_account_months
    assert r.incremental_margin == pytest.approx(u.effect * r.treated_periods, rel=1e-12)
    assert r.roi == pytest.approx((r.incremental_margin - r.programme_cost) / r.programme_cost, rel=1e-12)
    assert r.roi_se == pytest.approx(u.se * r.treated_periods / r.programme_cost, rel=1e-12)
    assert r.roi_ci[0] == pytest.approx((u.ci[0] * r.treated_periods - r.programme_cost) / r.programme_cost)
    assert r.per_account["incremental"].sum() == pytest.approx(r.incremental_margin, rel=1e-10)
    kam = sample.costs[sample.costs["kind"] == "kam_programme"]
    assert r.per_account["cost"].sum() == pytest.approx(
        kam[kam["account_id"].isin(r.per_account["account_id"])]["amount"].sum(), rel=1e-12
    )
    t = r.payback_table
    assert t["cum_net"].to_numpy() == pytest.approx(np.cumsum(t["effect"] - t["cost"]))
    assert r.payback_ci[0] <= r.payback <= r.payback_ci[1]
    assert "ROI" in repr(r) and "<table" in r._repr_html_()
    assert r.summary.loc["ROI", "estimate"] == pytest.approx(r.roi)


def test_first_payback_by_hand():
    cum = np.array([[-1.0, -2.0, 1.0, 3.0], [1.0, -1.0, 2.0, 3.0], [-1.0, -1.0, -1.0, -2.0], [1.0, 2.0, 3.0, 4.0]])
    # last period below 0 is index 1, 1, 3 (ends below: never), none -> paid back after 3, 3, inf, 1 periods
    assert roi._first_payback(cum).tolist() == [3.0, 3.0, math.inf, 1.0]


def test_what_if_by_hand(sample):
    from kamtools.kpi.revenue import simple_clv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        r = roi.programme_roi(sample, n_boot=0)
    w = roi.what_if(
        r, retention_gain=[0.0, 0.02], uplift=1000.0, programme_cost=500_000.0, discount=0.1, horizon_years=3
    )
    # yearly retention of key accounts, by a merge: present at t and at t + 12 months
    key = r.panel.loc[r.panel["treated"], ["account_id", "period"]]
    later = key.assign(period=key["period"] - 12)
    last = key["period"].max()
    base = key[key["period"] <= last - 12]
    kept = base.merge(later, on=["account_id", "period"]).shape[0]
    ret = kept / len(base)
    recent = r.panel[r.panel["treated"] & (r.panel["period"] > last - 12)]
    margin = recent["gross_margin"].mean() * 12
    assert w.loc[0, "annual_retention"] == pytest.approx(ret, rel=1e-12)
    assert w.loc[1, "annual_retention"] == pytest.approx(ret + 0.02, rel=1e-12)
    assert w.loc[1, "clv_per_account"] == pytest.approx(simple_clv(margin, retention=ret + 0.02, discount=0.1))
    n_now = key[key["period"] == last].shape[0]
    q = (ret + 0.02) / 1.1
    assert w.loc[1, "margin_horizon"] == pytest.approx(n_now * margin * (q + q**2 + q**3), rel=1e-10)
    assert w.loc[1, "roi"] == pytest.approx((1000.0 * r.treated_periods - 500_000.0) / 500_000.0)
    assert w.loc[0, "clv_change"] == 0.0


# --------------------------------------------------------------------------- bad input


def _tiny_data(tiny, **changes):
    tables = {k: v.copy() for k, v in tiny.items()}
    acc = tables["accounts"]
    for col, values in changes.items():
        acc[col] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return kt.KamData(tables, currency="EUR")


def test_no_treated_accounts():
    df = two_by_two().assign(treated=0)
    with pytest.raises(ParameterError, match="no treated rows"):
        roi.did(df, outcome="y", treated="treated", post="post")
    with pytest.raises(ParameterError, match="no treated units"):
        roi.staggered(staggered_frame().assign(cohort=pd.NA), outcome="y", unit="unit", time="period", cohort="cohort")


def test_no_treated_accounts_in_kam_data(tiny):
    data = _tiny_data(tiny, is_key_account=["false", "false", "false"], kam_start=["", "", ""])
    with pytest.raises(ParameterError, match="no treated units"):
        roi.staggered(roi.panel(data), outcome="gross_margin", unit="account_id", time="period", cohort="cohort")
    with pytest.raises(ParameterError, match="the ROI needs the costs table"):
        roi.programme_roi(data)


def test_no_untreated_accounts():
    with pytest.raises(ParameterError, match="no untreated rows"):
        roi.did(two_by_two().assign(treated=1), outcome="y", treated="treated", post="post")
    all_at_2 = staggered_frame().assign(cohort=pd.array([2] * 20, dtype="Int64"))
    with pytest.raises(ParameterError, match="no untreated units"):
        roi.staggered(all_at_2, outcome="y", unit="unit", time="period", cohort="cohort")
    staggered_only = staggered_frame()
    staggered_only = staggered_only[staggered_only["cohort"].notna()]
    with pytest.raises(ParameterError, match="no untreated units: every unit enters"):
        roi.staggered(staggered_only, outcome="y", unit="unit", time="period", cohort="cohort", control="never")


def test_no_pre_entry_periods(tiny):
    with pytest.raises(ParameterError, match="no pre-entry periods"):
        roi.did(
            two_by_two().assign(post=lambda d: d["post"] | d["treated"]), outcome="y", treated="treated", post="post"
        )
    late = staggered_frame()
    late = late[~((late["unit"] == "b1") & (late["period"] < 3))]  # b1 seen only from its entry on
    with pytest.raises(ParameterError, match="no pre-entry periods for 1 treated unit"):
        roi.staggered(late, outcome="y", unit="unit", time="period", cohort="cohort")
    # A3's first invoice (2023-03-01) comes after it entered KAM (2023-02-01); the data start 2023-01-15
    data = _tiny_data(tiny, kam_start=["2023-04-01", "", "2023-02-01"])
    with pytest.raises(SchemaError, match="no pre-entry periods for 1 key account") as err:
        roi.panel(data)
    assert "exclude=['A3']" in str(err.value)
    assert err.value.failure_cases["check"].tolist() == ["no pre-entry periods"]


def test_kam_entry_before_the_data_starts(tiny):
    data = _tiny_data(tiny, kam_start=["2022-06-01", "", "2023-07-01"])
    with pytest.raises(SchemaError, match="entered the KAM programme before the data start"):
        roi.panel(data)
    early = staggered_frame().assign(cohort=lambda d: d["cohort"].where(d["unit"] != "b1", 0))
    with pytest.raises(ParameterError, match="enter at or before the data start"):
        roi.staggered(early, outcome="y", unit="unit", time="period", cohort="cohort")


def test_constant_outcome():
    with pytest.raises(ParameterError, match="the outcome 'y' is constant"):
        roi.did(two_by_two().assign(y=5.0), outcome="y", treated="treated", post="post")
    with pytest.raises(ParameterError, match="the outcome 'y' is constant"):
        roi.staggered(staggered_frame().assign(y=1.0), outcome="y", unit="unit", time="period", cohort="cohort")


def test_collinear_covariates():
    df = two_by_two().assign(x2=lambda d: 2 * d["x"] + 1)
    with pytest.raises(ParameterError, match=r"covariates 'x', 'x2' are collinear"):
        roi.did(df, outcome="y", treated="treated", post="post", covariates=["x", "x2"])
    panel = small_panel().assign(size=lambda d: d["unit"] * 10.0, post=lambda d: d["d"])
    with pytest.raises(ParameterError, match="'size' does not vary within units"):
        roi.did(panel, outcome="y", treated="treated", post="post", unit="unit", time="period", covariates=["size"])


def test_bad_arguments():
    df = two_by_two()
    with pytest.raises(ParameterError, match="outcome='sales' is not a column of df"):
        roi.did(df, outcome="sales", treated="treated", post="post")
    with pytest.raises(ParameterError, match="cov_type='HC9'"):
        roi.did(df, outcome="y", treated="treated", post="post", cov_type="HC9")
    with pytest.raises(ParameterError, match="treated='x' must be true/false or 1/0"):
        roi.did(df, outcome="y", treated="x", post="post")
    with pytest.raises(ParameterError, match="trends='log'"):
        roi.staggered(staggered_frame(), outcome="y", unit="unit", time="period", cohort="cohort", trends="log")
    with pytest.raises(ParameterError, match="alpha=1.5"):
        roi.staggered(staggered_frame(), outcome="y", unit="unit", time="period", cohort="cohort", alpha=1.5)
    with pytest.raises(ParameterError, match="time='period' must hold pandas Periods"):
        roi.staggered(
            staggered_frame().assign(period=lambda d: d["period"] * 1.5),
            outcome="y",
            unit="unit",
            time="period",
            cohort="cohort",
        )
    with pytest.raises(ParameterError, match="needs a positive mean outcome"):
        roi.staggered(
            staggered_frame().assign(y=lambda d: d["y"] - 100), outcome="y", unit="unit", time="period", cohort="cohort"
        )


def test_missing_outcome_rows_are_counted():
    df = two_by_two()
    df.loc[0, "y"] = np.nan
    with pytest.warns(DataWarning, match="1 of 12 rows have a missing value"):
        res = roi.did(df, outcome="y", treated="treated", post="post")
    assert res.n == 11


def test_caller_frame_is_not_changed():
    df = small_panel()
    before = df.copy()
    roi.staggered(df, outcome="y", unit="unit", time="period", cohort="cohort")
    roi.did(df.assign(post=df["d"]), outcome="y", treated="treated", post="post", unit="unit", time="period")
    pd.testing.assert_frame_equal(df, before)


def test_import_is_light():
    code = (
        "import sys, kamtools.roi; print(sorted(m for m in ('statsmodels', 'matplotlib', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_propensity_model_that_separates_the_groups():
    # key accounts are all ten times larger than the candidates: a logit cannot fit that
    with pytest.raises(ParameterError, match="features separate key and other accounts"):
        roi.match_controls(
            matching_panel().assign(
                revenue=lambda d: d["revenue"] * np.where(d["account_id"].str.startswith("k"), 100.0, 1.0)
            ),
            method="propensity",
            on=("pre_revenue",),
        )
