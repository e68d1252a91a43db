"""CLV: the margin formula, sBG, BG/NBD, Gamma-Gamma and transaction summaries.

Published values come from the papers named next to them. The CDNOW data are
the files the ``lifetimes`` package ships (a test-only dependency): the CDNOW
sample transaction log and Fader, Hardie & Lee's summary of it.
"""

from __future__ import annotations

import warnings
from importlib.metadata import PackageNotFoundError, distribution

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, gammaln, hyp2f1

import kamtools as kt
from kamtools import clv
from kamtools.exceptions import DataWarning, ParameterError, SchemaError

# Fader & Hardie (2007), "How to project customer retention", J. Interactive Marketing 21(1), 76-90, Table 1:
# customers still active at the start of years 1..13 out of 1000 acquired.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]


def _lifetimes_file(name: str):
    try:
        path = distribution("lifetimes").locate_file(f"lifetimes/datasets/{name}")
    except PackageNotFoundError as err:  # a declared test dependency: fail, do not skip
        raise RuntimeError("The CLV tests read the CDNOW data shipped by the 'lifetimes' package; install the "
                           "test extra: pip install -e '.[test]'") from err
    return path


@pytest.fixture(scope="module")
def cdnow():
    """Fader, Hardie & Lee's (2005) CDNOW summary: 2,357 customers, 39-week calibration, time in weeks."""
    df = pd.read_csv(_lifetimes_file("cdnow_customers_summary_with_transactions.csv"))
    return df.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"})


@pytest.fixture(scope="module")
def cdnow_log():
    """The CDNOW sample's transaction log (customer, date, CDs, dollars)."""
    log = pd.read_csv(_lifetimes_file("CDNOW_sample.txt"), sep=r"\s+", header=None,
                      names=["master_id", "customer", "date", "cds", "spend"], dtype={"date": str})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    return log


@pytest.fixture(scope="module")
def bg_cdnow(cdnow):
    return clv.BetaGeoModel().fit(cdnow)


@pytest.fixture(scope="module")
def gg_cdnow(cdnow):
    return clv.GammaGammaModel().fit(cdnow)


# --------------------------------------------------------------------------- simple formula


@pytest.mark.parametrize(("timing", "first"), [("end", 1), ("start", 0)])
@pytest.mark.parametrize(("m", "r", "d"), [(100.0, 0.8, 0.1), (2500.0, 0.6, 0.08), (1.0, 0.95, 0.12)])
def test_simple_equals_the_sum_it_stands_for(timing, first, m, r, d):
    t = np.arange(first, 3000)
    by_hand = np.sum(m * r**t / (1 + d) ** t)  # margin t paid if still a customer, discounted t periods
    assert clv.simple(m, r, d, timing=timing) == pytest.approx(by_hand, rel=1e-10)


def test_simple_textbook_value_and_vectors():
    assert clv.simple(100, 0.8, 0.1) == pytest.approx(100 * 0.8 / 0.3)  # 266.67
    out = clv.simple(pd.Series([10.0, 20.0]), pd.Series([0.5, 0.75], index=["a", "b"]), 0.25)
    assert out.index.tolist() == ["a", "b"]
    assert out.tolist() == pytest.approx([10 * 0.5 / 0.75, 20 * 0.75 / 0.5])


def test_simple_interval_maps_the_wilson_interval_of_retention():
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(160, 200, alpha=0.05, method="wilson")  # statsmodels' Wilson interval
    out = clv.simple(100, 0.8, 0.1, retention_n=200)
    assert out.loc[0, "lower"] == pytest.approx(100 * lo / (1.1 - lo))
    assert out.loc[0, "upper"] == pytest.approx(100 * hi / (1.1 - hi))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"retention": 1.0}, r"retention=1.0 must be a share in \[0, 1\)"),
    ({"discount": -1.5}, "discount=-1.5 must be a rate per period above -1"),
    ({"timing": "middle"}, "timing='middle'; use 'end'"),
    ({"retention_n": 0}, r"retention_n=0 must be the number \(>= 1\)"),
])
def test_simple_rejects_bad_arguments(kwargs, match):
    args = {"margin": 100, "retention": 0.8, "discount": 0.1, **kwargs}
    with pytest.raises(ParameterError, match=match):
        clv.simple(args.pop("margin"), args.pop("retention"), args.pop("discount"), **args)


# --------------------------------------------------------------------------- shifted beta geometric


@pytest.mark.parametrize(("counts", "alpha", "beta"), [
    pytest.param(REGULAR, 0.704, 1.182, id="regular"),  # Fader & Hardie (2007), estimates printed in the text
    pytest.param(HIGH_END, 0.668, 3.806, id="high-end"),
])
def test_sbg_reproduces_fader_hardie_2007(counts, alpha, beta):
    sbg = clv.ShiftedBetaGeometric().fit(counts[:8])  # the paper fits years 1-7 (8 counts)
    assert round(sbg.params_["alpha"], 3) == alpha
    assert round(sbg.params_["beta"], 3) == beta


def test_sbg_log_likelihood_of_the_high_end_cohort():
    # Fader & Hardie (2007), appendix: the maximised log-likelihood of the high-end data, on shares, is -1.611
    sbg = clv.ShiftedBetaGeometric().fit(HIGH_END[:8])
    assert round(sbg.loglik_ / 1000, 3) == -1.611


def test_sbg_projection_equals_the_retention_recursion():
    sbg = clv.ShiftedBetaGeometric().fit(HIGH_END[:8])
    a, b = sbg.params_
    t = np.arange(1, 13)
    r = (b + t - 1) / (a + b + t - 1)  # Fader & Hardie (2007), eq. 8: retention rate in period t
    s = sbg.survival(periods=12)
    assert s["survival"].iloc[1:].to_numpy() == pytest.approx(np.cumprod(r), rel=1e-10)
    assert s["retention"].iloc[1:].to_numpy() == pytest.approx(r, rel=1e-10)
    assert np.isnan(s["retention"].iloc[0])
    # the shifted_beta_geometric_py package's README prints these projections for years 8-12 of this cohort
    assert s["survival"].iloc[8:13].round(3).tolist() == [0.460, 0.436, 0.414, 0.395, 0.378]
    # and the projections track the held-out years 8-12 of Table 1 closely (the paper's Figure 3)
    observed = np.array(HIGH_END[8:13]) / 1000
    assert np.max(np.abs(s["survival"].iloc[8:13].to_numpy() - observed)) < 0.02
    assert s["observed"].iloc[:8].tolist() == pytest.approx(np.array(HIGH_END[:8]) / 1000)


def _derl_by_sum(a, b, d, n, terms=20_000):
    """sum_{t > n} S(t) / S(n) / (1 + d)^(t - n - 1): payments after each further renewal, the first undiscounted."""
    t = np.arange(n + 1, n + 1 + terms)
    s = np.exp(betaln(a, b + t) - betaln(a, b + n))
    return float(np.sum(s * np.exp(-(t - n - 1) * np.log1p(d))))


@pytest.mark.parametrize("renewals", [0, 1, 4, 10])
@pytest.mark.parametrize("discount", [0.05, 0.1, 0.3])
def test_derl_equals_the_series_it_sums(renewals, discount):
    sbg = clv.ShiftedBetaGeometric().fit(REGULAR[:8])
    a, b = sbg.params_
    got = sbg.derl(discount, renewals=renewals)["derl"].item()
    assert got == pytest.approx(_derl_by_sum(a, b, discount, renewals), rel=1e-8)


def test_derl_matches_shifted_beta_geometric_py():
    # README of the shifted_beta_geometric_py package: high-end cohort, d = 10 %, after 7 renewals: 7.530
    sbg = clv.ShiftedBetaGeometric().fit(HIGH_END[:8])
    assert round(sbg.derl(0.10, renewals=7)["derl"].item(), 3) == 7.530


def test_clv_of_a_new_customer_is_margin_times_del():
    sbg = clv.ShiftedBetaGeometric().fit(REGULAR[:8])
    a, b = sbg.params_
    t = np.arange(0, 20_000)
    del_by_hand = np.sum(np.exp(betaln(a, b + t) - betaln(a, b) - t * np.log(1.1)))  # margin at each period's start
    out = sbg.clv(250.0, 0.1)
    assert out["del"].item() == pytest.approx(del_by_hand, rel=1e-8)
    assert out["clv"].item() == pytest.approx(250 * del_by_hand, rel=1e-8)


def test_sbg_counts_equal_per_customer_durations_grouped_or_not():
    counts = np.array(HIGH_END[:8])
    lost = -np.diff(counts)
    rows = pd.DataFrame({
        "duration": np.r_[np.repeat(np.arange(1, 8), lost), np.full(counts[-1], 7)],
        "event": np.r_[np.ones(lost.sum(), dtype=bool), np.zeros(counts[-1], dtype=bool)],
    })
    grouped = rows.groupby(["duration", "event"]).size().rename("n").reset_index()
    a = clv.ShiftedBetaGeometric().fit(counts)
    b = clv.ShiftedBetaGeometric().fit(rows, duration="duration", event="event")
    c = clv.ShiftedBetaGeometric().fit(grouped, duration="duration", event="event", weights="n")
    assert len(rows) == 1000 and b.n_unique_ == len(grouped)
    for m in (b, c):
        assert m.params_.to_numpy() == pytest.approx(a.params_.to_numpy(), rel=1e-6)
        assert m.summary["se"].to_numpy() == pytest.approx(a.summary["se"].to_numpy(), rel=1e-4)
        assert m.loglik_ == pytest.approx(a.loglik_, rel=1e-10)


def test_sbg_standard_errors_match_statsmodels_numerical_hessian():
    from statsmodels.tools.numdiff import approx_hess3

    counts = np.array(REGULAR[:8], dtype=float)
    lost, alive = -np.diff(counts), counts[-1]
    t = np.arange(1, 8)

    def loglik(p):  # Fader & Hardie (2007), eq. 6, written out
        a, b = p
        return np.sum(lost * (betaln(a + 1, b + t - 1) - betaln(a, b))) + alive * (betaln(a, b + 7) - betaln(a, b))

    sbg = clv.ShiftedBetaGeometric().fit(counts)
    cov = np.linalg.inv(-approx_hess3(sbg.params_.to_numpy(), loglik))
    assert sbg.summary["se"].to_numpy() == pytest.approx(np.sqrt(np.diag(cov)), rel=1e-4)
    assert sbg.cov_.to_numpy() == pytest.approx(cov, rel=1e-3)


def test_sbg_several_cohorts_at_once_equal_separate_fits():
    both = clv.ShiftedBetaGeometric().fit(pd.DataFrame({
        "regular": REGULAR[:8], "high end": HIGH_END[:5] + [np.nan] * 3}))  # a younger cohort: 4 years seen
    reg = clv.ShiftedBetaGeometric().fit(REGULAR[:8])
    high = clv.ShiftedBetaGeometric().fit(HIGH_END[:5])
    assert both.params_.loc["regular"].to_numpy() == pytest.approx(reg.params_.to_numpy(), rel=1e-8)
    assert both.params_.loc["high end"].to_numpy() == pytest.approx(high.params_.to_numpy(), rel=1e-8)
    assert both.summary.index.names == ["cohort", "parameter"]
    assert both.loglik_ == pytest.approx(reg.loglik_ + high.loglik_)
    s = both.survival(periods=3)
    assert s.loc[s["cohort"] == "high end", "survival"].tolist() == pytest.approx(
        high.survival(periods=3)["survival"].tolist())
    d = both.derl(0.1, renewals=[0, 3])
    assert d.loc[d["cohort"] == "regular", "derl"].tolist() == pytest.approx(
        reg.derl(0.1, renewals=[0, 3])["derl"].tolist())


def test_sbg_by_column_on_durations_equals_separate_fits():
    sims = pd.concat([clv.simulate_sbg(3000, alpha=0.8, beta=2.0, periods=8, seed=1).assign(seg="a"),
                      clv.simulate_sbg(3000, alpha=1.5, beta=6.0, periods=8, seed=2).assign(seg="b")])
    both = clv.ShiftedBetaGeometric().fit(sims, duration="duration", event="event", by="seg")
    for seg in ("a", "b"):
        one = clv.ShiftedBetaGeometric().fit(sims[sims["seg"] == seg], duration="duration", event="event")
        assert both.params_.loc[seg].to_numpy() == pytest.approx(one.params_.to_numpy(), rel=1e-8)


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize(("alpha", "beta"), [(0.7, 1.2), (2.0, 8.0)])
def test_sbg_recovers_simulated_parameters(seed, alpha, beta):
    sim = clv.simulate_sbg(20_000, alpha=alpha, beta=beta, periods=10, seed=seed)
    sbg = clv.ShiftedBetaGeometric().fit(sim, duration="duration", event="event")
    est, se = sbg.params_.to_numpy(), sbg.summary["se"].to_numpy()
    assert np.all(np.abs(est - [alpha, beta]) < 3.5 * se), (est, se)
    assert np.all(np.abs(est / [alpha, beta] - 1) < 0.25)


def test_sbg_derl_interval_covers_the_truth_about_as_often_as_it_says():
    # 60 simulated cohorts; the 90 % interval of DERL should cover the true DERL in about 54 of them
    alpha, beta, d = 0.9, 2.5, 0.1
    truth = _derl_by_sum(alpha, beta, d, 2)
    hits = 0
    for seed in range(60):
        sim = clv.simulate_sbg(800, alpha=alpha, beta=beta, periods=6, seed=1000 + seed)
        sbg = clv.ShiftedBetaGeometric(level=0.9).fit(sim, duration="duration", event="event")
        out = sbg.derl(d, renewals=2, interval=True, n_draws=400, seed=seed)
        hits += out["derl_lower"].item() <= truth <= out["derl_upper"].item()
    assert 46 <= hits <= 60  # binomial(60, 0.9): 46..60 holds 99.8 %


def test_sbg_residual_value_is_margin_times_derl():
    sbg = clv.ShiftedBetaGeometric().fit(HIGH_END[:8])
    df = pd.DataFrame({"renewals": [0, 3, 3, 7], "m": [100.0, 50.0, 80.0, 10.0]}, index=list("wxyz"))
    out = sbg.residual_value(df, margin="m", discount=0.1, interval=True, n_draws=300)
    derl = sbg.derl(0.1, renewals=[0, 3, 7]).set_index("renewals")["derl"]
    assert out.index.tolist() == list("wxyz")
    assert out["residual_value"].tolist() == pytest.approx((derl.loc[df["renewals"]].to_numpy() * df["m"]).tolist())
    assert (out["lower"] <= out["residual_value"]).all() and (out["residual_value"] <= out["upper"]).all()
    also = sbg.residual_value(df, margin=df["m"] * 2, discount=0.1)
    assert also["residual_value"].tolist() == pytest.approx((2 * out["residual_value"]).tolist())


@pytest.mark.parametrize(("counts", "match"), [
    ([1000, 700, 750], "cannot increase, but period 2 has 750 after 700"),
    ([1.0, 0.8, 0.7], "look like shares; pass counts"),
    ([1000], "need the cohort size and at least one later count"),
    ([1000, 1000, 1000], "no customer was lost"),
    # a constant 20 % churn: no heterogeneity, alpha and beta run off to infinity
    ([1000, 800, 640, 512, 410, 328, 262], "alpha and beta grow without bound.*clv.simple"),
])
def test_sbg_bad_counts_raise_clear_errors(counts, match):
    with pytest.raises(ParameterError, match=match):
        clv.ShiftedBetaGeometric().fit(counts)


def test_sbg_bad_durations_raise_clear_errors():
    df = pd.DataFrame({"d": [1, 2, 0, 3], "e": [True, False, True, False]})
    with pytest.raises(SchemaError, match="1 row.*'d' are 0 for lost customers"):
        clv.ShiftedBetaGeometric().fit(df, duration="d", event="e")
    with pytest.raises(ParameterError, match=r"column 'dur' \(argument duration\) not in the data"):
        clv.ShiftedBetaGeometric().fit(df, duration="dur", event="e")
    with pytest.raises(ParameterError, match="not fitted yet"):
        clv.ShiftedBetaGeometric().survival()


def test_contract_renewals_on_the_sample():
    data = kt.sample.load()
    c = clv.contract_renewals(data)
    a1 = c.set_index("account_id").loc["A0001"]
    # A0001's contracts: renewed_after_rebid, renewed, renewed_after_rebid, active (data/sample/contracts.csv)
    assert (a1["terms"], a1["renewals"], bool(a1["churned"]), a1["duration"]) == (4, 3, False, 3)
    con = data.contracts.sort_values(["account_id", "start"])
    as_of = data.transactions["date"].max()
    last = con[con["start"] <= as_of].groupby("account_id").last()
    lost = (last["outcome"] == "lapsed") & (last["end"] <= as_of)
    assert c.set_index("account_id")["churned"].sort_index().tolist() == lost.sort_index().tolist()
    assert (c["duration"] == np.where(c["churned"], c["renewals"] + 1, c["renewals"])).all()
    assert c["is_key_account"].sum() == data.accounts["is_key_account"].sum()


def test_sbg_on_the_sample_key_accounts_and_its_plot():
    from matplotlib.figure import Figure

    c = clv.contract_renewals(kt.sample.load())
    key = c[c["is_key_account"]]
    sbg = clv.ShiftedBetaGeometric().fit(key, duration="duration", event="churned")
    assert sbg.n_ == len(key) == 40
    assert isinstance(sbg.plot(periods=6), Figure)
    assert "alpha=" in repr(sbg) and "<strong>Shifted-beta-geometric model</strong>" in sbg._repr_html_()
    assert "Log-likelihood" in sbg.model_summary().as_text()


# --------------------------------------------------------------------------- BG/NBD


def test_bgnbd_reproduces_fader_hardie_lee_2005(bg_cdnow):
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2):
    # CDNOW sample, 2,357 customers, 39-week calibration: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4
    assert bg_cdnow.params_.round(3).tolist() == [0.243, 4.414, 0.793, 2.426]
    assert round(bg_cdnow.loglik_, 1) == -9582.4
    assert bg_cdnow.n_ == 2357


def test_bgnbd_predictions_match_fader_hardie_spreadsheet(bg_cdnow):
    # Fader & Hardie's Excel implementation of the BG/NBD on CDNOW (brucehardie.com/notes/004), values as used in
    # the lifetimes test suite: E[X(t)] for a new customer, and E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226.
    t = [0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00]
    sheet = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]
    got = bg_cdnow.expected_purchases(t)["expected_purchases"].to_numpy()
    # five agree to the printed 4 decimals; at t = 78 the sheet's Solver optimum differs in the 4th digit
    assert got == pytest.approx(sheet, abs=5e-4)
    assert np.round(got[:5], 4).tolist() == pytest.approx(sheet[:5])
    one = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    assert round(bg_cdnow.predict_purchases(one, t=39)["expected_purchases"].item(), 3) == 1.226


def test_bgnbd_formulas_agree_with_the_untransformed_hypergeometric(bg_cdnow, cdnow):
    # kamtools evaluates the 2F1 terms after Euler's transformation; the paper's eq. 9 and 10 as printed:
    r, al, a, b = bg_cdnow.params_
    t = np.array([1.0, 10.0, 52.0, 78.0])
    z = t / (al + t)
    eq9 = (a + b - 1) / (a - 1) * (1 - (al / (al + t)) ** r * hyp2f1(r, b, a + b - 1, z))
    assert bg_cdnow.expected_purchases(t)["expected_purchases"].to_numpy() == pytest.approx(eq9, rel=1e-9)
    s = cdnow.iloc[:300]
    x, tx, T = s["frequency"].to_numpy(), s["recency"].to_numpy(), s["T"].to_numpy()
    tt = 39.0
    zz = tt / (al + T + tt)
    odds = np.where(x > 0, a / (b + x - 1 + (x == 0)) * ((al + T) / (al + tx)) ** (r + x), 0.0)
    eq10 = ((a + b + x - 1) / (a - 1) * (1 - ((al + T) / (al + T + tt)) ** (r + x)
                                         * hyp2f1(r + x, b + x, a + b + x - 1, zz)) / (1 + odds))
    assert bg_cdnow.predict_purchases(s, t=tt)["expected_purchases"].to_numpy() == pytest.approx(eq10, rel=1e-8)
    # eq. 13: P(alive)
    assert bg_cdnow.probability_alive(s)["probability_alive"].to_numpy() == pytest.approx(1 / (1 + odds))
    assert (bg_cdnow.probability_alive(s[s["frequency"] == 0])["probability_alive"] == 1).all()


def test_bgnbd_large_frequencies_stay_finite_and_sensible(bg_cdnow):
    # B2B customers buy far more often than CDNOW's; the transformed formula must not overflow
    df = pd.DataFrame({"frequency": [150, 150], "recency": [38.0, 20.0], "T": [38.86, 38.86]})
    e = bg_cdnow.predict_purchases(df, t=10)["expected_purchases"].to_numpy()
    p = bg_cdnow.probability_alive(df)["probability_alive"].to_numpy()
    assert np.all(np.isfinite(e)) and e[0] > e[1] >= 0
    assert p[0] > 0.9 and p[1] < 1e-6  # a heavy buyer silent for 19 weeks is almost surely gone


def test_bgnbd_grouped_data_fit_equals_ungrouped(cdnow, bg_cdnow):
    grouped = cdnow.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
    g = clv.BetaGeoModel().fit(grouped, weights="n")
    assert len(grouped) < len(cdnow)
    assert g.params_.to_numpy() == pytest.approx(bg_cdnow.params_.to_numpy(), rel=1e-6)
    assert g.summary["se"].to_numpy() == pytest.approx(bg_cdnow.summary["se"].to_numpy(), rel=1e-4)
    assert g.loglik_ == pytest.approx(bg_cdnow.loglik_, rel=1e-10)
    assert g.n_ == 2357


def test_bgnbd_standard_errors_match_statsmodels_numerical_hessian(cdnow, bg_cdnow):
    from statsmodels.tools.numdiff import approx_hess3

    x, tx, T = (cdnow[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))

    def loglik(p):  # Fader, Hardie & Lee (2005), eq. 6, written out
        r, al, a, b = p
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(al)
        l2 = np.exp(betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(al + T))
        l3 = np.where(x > 0, np.exp(betaln(a + 1, np.maximum(b + x - 1, 1e-9)) - betaln(a, b)
                                    - (r + x) * np.log(al + tx)), 0.0)
        return np.sum(a1 + np.log(l2 + l3))

    cov = np.linalg.inv(-approx_hess3(bg_cdnow.params_.to_numpy(), loglik))
    assert bg_cdnow.summary["se"].to_numpy() == pytest.approx(np.sqrt(np.diag(cov)), rel=2e-3)


def test_bgnbd_from_the_raw_cdnow_log_gives_the_published_estimates(cdnow_log):
    # the whole pipeline: transaction log -> summary in days -> fit; alpha in days is 7 x the weekly 4.414
    s = clv.summarise_transactions(cdnow_log, customer="customer", date="date", value="spend", freq="D",
                                   calibration_end="1997-09-30", observation_end="1998-06-30")
    bg = clv.BetaGeoModel().fit(s)
    assert bg.params_[["r", "a", "b"]].round(3).tolist() == [0.243, 0.793, 2.426]
    assert round(bg.params_["alpha"] / 7, 3) == 4.414


@pytest.mark.parametrize("seed", [21, 22, 23])
@pytest.mark.parametrize("params", [
    {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.4},
    {"r": 2.0, "alpha": 10.0, "a": 1.5, "b": 6.0},
])
def test_bgnbd_recovers_simulated_parameters(seed, params):
    sim = clv.simulate_bgnbd(30_000, **params, T=np.random.default_rng(seed).uniform(26, 78, 30_000), seed=seed)
    bg = clv.BetaGeoModel().fit(sim)
    est, se = bg.params_.to_numpy(), bg.summary["se"].to_numpy()
    truth = np.array(list(params.values()))
    assert np.all(np.abs(est - truth) < 3.5 * se), (est, se)


@pytest.mark.slow
def test_bgnbd_interval_of_expected_purchases_covers_the_truth():
    # 40 simulated populations: the 90 % interval of E[X(52)] should cover the true value in about 36
    truth_p = np.array([[0.5], [5.0], [0.8], [2.5]])
    from kamtools.clv import _bgnbd_expected

    truth = _bgnbd_expected(truth_p, [52.0])[0, 0]
    hits = 0
    for seed in range(40):
        sim = clv.simulate_bgnbd(1500, r=0.5, alpha=5.0, a=0.8, b=2.5, T=39, seed=500 + seed)
        bg = clv.BetaGeoModel(level=0.9).fit(sim)
        out = bg.expected_purchases(52, interval=True, n_draws=400, seed=seed)
        hits += out["lower"].item() <= truth <= out["upper"].item()
    assert 31 <= hits <= 40  # binomial(40, 0.9): 31..40 holds 99.5 %


def test_bgnbd_sampled_parameters_have_the_estimated_spread(bg_cdnow):
    draws = bg_cdnow.sample_params(20_000, seed=1)
    assert np.log(draws).mean().to_numpy() == pytest.approx(np.log(bg_cdnow.params_.to_numpy()), abs=0.01)
    se_log = np.sqrt(np.diag(bg_cdnow._est.cov_log))
    assert np.log(draws).std().to_numpy() == pytest.approx(se_log, rel=0.03)


def test_bgnbd_bad_summaries_raise_clear_errors():
    ok = pd.DataFrame({"frequency": [0, 2, 1], "recency": [0.0, 5.0, 3.0], "T": [10.0, 10.0, 10.0]})
    with pytest.raises(SchemaError, match="1 row.*'recency' are larger than T"):
        clv.BetaGeoModel().fit(ok.assign(recency=[0.0, 12.0, 3.0]))
    with pytest.raises(SchemaError, match="'frequency' are not whole numbers"):
        clv.BetaGeoModel().fit(ok.assign(frequency=[0, 2.5, 1]))
    with pytest.raises(SchemaError, match="'recency' are not 0 for customers without repeat purchases"):
        clv.BetaGeoModel().fit(ok.assign(recency=[1.0, 5.0, 3.0]))
    with pytest.raises(ParameterError, match=r"column 'freq' \(argument frequency\) not in the data"):
        clv.BetaGeoModel().fit(ok, frequency="freq")
    with pytest.raises(ParameterError, match="no customer made a repeat purchase"):
        clv.BetaGeoModel().fit(ok.assign(frequency=0, recency=0.0))


def test_bgnbd_non_convergence_is_an_error_with_advice():
    # everyone buys in every period: no Poisson heterogeneity, r and alpha run off to infinity
    rng = np.random.default_rng(3)
    T = rng.integers(10, 40, 500).astype(float)
    df = pd.DataFrame({"frequency": T.astype(int), "recency": T, "T": T})
    with pytest.raises(ParameterError, match="r and alpha grow without bound.*bought in every period.*finer time"):
        clv.BetaGeoModel().fit(df)


# --------------------------------------------------------------------------- Gamma-Gamma


def _gg_loglik(p, q, g, x, m):  # Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", eq. 3
    return np.sum(gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(g) + (p * x - 1) * np.log(m)
                  + p * x * np.log(x) - (p * x + q) * np.log(g + m * x))


def test_gamma_gamma_reproduces_fader_hardie(gg_cdnow, cdnow):
    from scipy.optimize import minimize

    # Fader & Hardie (2013) / Fader, Hardie & Lee (2005, "RFM and CLV"), 946 CDNOW customers with repeat
    # purchases: p = 6.25, q = 3.74, gamma = 15.44
    assert gg_cdnow.n_ == 946
    assert round(gg_cdnow.params_["p"], 2) == 6.25
    assert round(gg_cdnow.params_["q"], 2) == 3.74
    # gamma: 15.448 here vs the printed 15.44. The likelihood is nearly flat along gamma: at gamma = 15.44 the
    # best (p, q) lose less than 1e-4 of log-likelihood, so the printed value (Excel's Solver) is the same optimum.
    assert abs(gg_cdnow.params_["gamma"] - 15.44) < 0.01
    rep = cdnow[cdnow["frequency"] > 0]
    x, m = rep["frequency"].to_numpy(float), rep["monetary_value"].to_numpy(float)
    prof = minimize(lambda u: -_gg_loglik(np.exp(u[0]), np.exp(u[1]), 15.44, x, m), np.log([6.25, 3.74]),
                    method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-10})
    assert 0 <= gg_cdnow.loglik_ - (-prof.fun) < 1e-4
    assert gg_cdnow.loglik_ == pytest.approx(_gg_loglik(*gg_cdnow.params_, x, m), rel=1e-12)


def test_gamma_gamma_expected_spend_is_the_weighted_average(gg_cdnow, cdnow):
    p, q, g = gg_cdnow.params_
    s = cdnow.iloc[:50]
    x, m = s["frequency"].to_numpy(float), s["monetary_value"].to_numpy(float)
    pop = p * g / (q - 1)
    w = p * x / (p * x + q - 1)  # weight on the customer's own mean (Fader, Hardie & Lee 2005, eq. 4)
    by_hand = np.where(x > 0, (1 - w) * pop + w * m, pop)
    assert gg_cdnow.expected_spend(s)["expected_spend"].to_numpy() == pytest.approx(by_hand, rel=1e-10)
    assert gg_cdnow.mean_spend_ == pytest.approx(pop)


def test_gamma_gamma_grouped_fit_equals_ungrouped(cdnow, gg_cdnow):
    grouped = cdnow.groupby(["frequency", "monetary_value"]).size().rename("n").reset_index()
    g = clv.GammaGammaModel().fit(grouped, weights="n")
    assert g.params_.to_numpy() == pytest.approx(gg_cdnow.params_.to_numpy(), rel=1e-6)
    assert g.loglik_ == pytest.approx(gg_cdnow.loglik_, rel=1e-10)


@pytest.mark.parametrize("seed", [31, 32, 33])
@pytest.mark.parametrize("params", [{"p": 6.0, "q": 4.0, "gamma": 15.0}, {"p": 1.5, "q": 3.0, "gamma": 2000.0}])
def test_gamma_gamma_recovers_simulated_parameters(seed, params):
    freq = pd.Series(np.random.default_rng(seed).poisson(3.0, 20_000))
    mv = clv.simulate_gamma_gamma(freq, **params, seed=seed)
    gg = clv.GammaGammaModel().fit(pd.DataFrame({"frequency": freq, "monetary_value": mv}))
    est, se = gg.params_.to_numpy(), gg.summary["se"].to_numpy()
    assert np.all(np.abs(est - np.array(list(params.values()))) < 3.5 * se), (est, se)


def test_gamma_gamma_warns_about_non_positive_spend():
    freq = pd.Series(np.random.default_rng(1).poisson(3.0, 2000) + 1)
    df = pd.DataFrame({"frequency": freq, "monetary_value": clv.simulate_gamma_gamma(freq, p=5, q=4, gamma=20,
                                                                                       seed=1)})
    df.loc[[3, 7], "monetary_value"] = [-5.0, 0.0]
    with pytest.warns(DataWarning, match="2 customer.*mean spend <= 0.*left out"):
        gg = clv.GammaGammaModel().fit(df)
    assert gg.n_ == 1998 and gg.n_excluded_ == 2


def test_clv_equals_the_discounted_sum_by_hand(bg_cdnow, gg_cdnow, cdnow):
    s = cdnow.iloc[:40]
    out = gg_cdnow.customer_lifetime_value(bg_cdnow, s, horizon=10.0, period=4.0, discount=0.02, margin=0.3,
                                           interval=False)
    steps = [4.0, 8.0, 10.0]  # the last step is cut at the horizon
    cum = np.column_stack([bg_cdnow.predict_purchases(s, t=t)["expected_purchases"] for t in steps])
    inc = np.diff(np.column_stack([np.zeros(len(s)), cum]), axis=1)
    spend = gg_cdnow.expected_spend(s)["expected_spend"].to_numpy()
    by_hand = (inc / 1.02 ** np.arange(1, 4)).sum(axis=1) * spend * 0.3
    assert out["clv"].to_numpy() == pytest.approx(by_hand, rel=1e-10)
    assert out["expected_purchases"].to_numpy() == pytest.approx(cum[:, -1])


def test_clv_interval_brackets_the_estimate_and_is_reproducible(bg_cdnow, gg_cdnow, cdnow):
    s = cdnow.iloc[:200]
    a = gg_cdnow.customer_lifetime_value(bg_cdnow, s, horizon=52, period=13, discount=0.03, n_draws=300, seed=4)
    b = gg_cdnow.customer_lifetime_value(bg_cdnow, s, horizon=52, period=13, discount=0.03, n_draws=300, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert (a["lower"] <= a["clv"] * 1.0000001).all() and (a["clv"] <= a["upper"] * 1.0000001).all()
    assert (a["upper"] > a["lower"]).all()


# --------------------------------------------------------------------------- transaction summaries


def test_summary_of_the_cdnow_log_equals_the_published_table(cdnow_log, cdnow):
    before = cdnow_log.copy()
    s = clv.summarise_transactions(cdnow_log, customer="customer", date="date", value="spend", freq="D",
                                   calibration_end="1997-09-30", observation_end="1998-06-30")
    pd.testing.assert_frame_equal(cdnow_log, before)  # the caller's frame is untouched
    assert s["customer"].tolist() == cdnow["ID"].tolist()
    # Fader, Hardie & Lee's summary: x, t_x and T in weeks (days / 7, 2 decimals), zbar the mean repeat spend
    assert s["frequency"].tolist() == cdnow["frequency"].tolist()
    assert np.max(np.abs(s["recency"] / 7 - cdnow["recency"])) <= 0.005
    assert np.max(np.abs(s["T"] / 7 - cdnow["T"])) <= 0.005
    assert np.max(np.abs(s["monetary_value"] - cdnow["monetary_value"])) <= 0.005 + 1e-9
    assert s["duration_holdout"].unique().tolist() == [273.0]  # 1997-09-30 to 1998-06-30


def test_summary_by_hand_with_weekly_periods_and_a_holdout():
    log = pd.DataFrame({
        "c": ["a", "a", "a", "a", "a", "b", "b", "c", "d"],
        "when": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-10", "2024-01-24", "2024-02-06",
                                "2024-01-15", "2024-02-01", "2024-02-05", "2024-03-05"]),
        "v": [10.0, 5.0, 20.0, 30.0, 7.0, 8.0, 9.0, 4.0, 1.0],
    })
    with pytest.warns(DataWarning) as rec:
        s = clv.summarise_transactions(log, customer="c", date="when", value="v", freq="W",
                                       calibration_end="2024-01-28", observation_end="2024-02-29")
    msgs = [str(w.message) for w in rec]
    assert any("1 transaction(s) after observation_end 2024-02-29" in m for m in msgs)
    assert any("1 customer(s) first bought in the holdout period" in m for m in msgs)
    # weeks Mon-Sun: 2024-01-01 is a Monday, so a buys in weeks 0 (15), 1 (20), 3 (30); calibration ends in week 3
    # (Sun 2024-01-28); the observation end (Thu 2024-02-29) is in week 8.
    a, b = s.set_index("c").loc["a"], s.set_index("c").loc["b"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (2, 3.0, 3.0, 25.0)
    assert (a["frequency_holdout"], a["monetary_value_holdout"], a["duration_holdout"]) == (1, 7.0, 5.0)
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0, 0.0, 1.0, 0.0)
    assert (b["frequency_holdout"], b["monetary_value_holdout"]) == (1, 9.0)
    assert s["c"].tolist() == ["a", "b"]


def test_summary_without_value_or_holdout_and_monthly():
    log = pd.DataFrame({"id": [1, 1, 2], "d": ["2024-01-31", "2024-03-01", "2024-02-15"]})
    s = clv.summarise_transactions(log, customer="id", date="d", freq="M", observation_end="2024-06-30")
    assert s.columns.tolist() == ["id", "frequency", "recency", "T"]
    assert s[["frequency", "recency", "T"]].to_numpy().tolist() == [[1, 2.0, 5.0], [0, 0.0, 4.0]]


@pytest.mark.parametrize(("kwargs", "err", "match"), [
    ({"customer": "who"}, ParameterError, r"column 'who' \(argument customer\) not in the data"),
    ({"freq": "fortnight"}, ParameterError, "freq='fortnight'; use 'D'"),
    ({"calibration_end": "2024-12-31"}, ParameterError, "calibration_end='2024-12-31' must be before"),
    ({"observation_end": "soon"}, ParameterError, "observation_end='soon' is not a date"),
])
def test_summary_bad_arguments(kwargs, err, match):
    log = pd.DataFrame({"c": ["a", "b"], "d": pd.to_datetime(["2024-01-01", "2024-02-01"]), "v": [1.0, 2.0]})
    args = {"customer": "c", "date": "d", "value": "v", **kwargs}
    with pytest.raises(err, match=match):
        clv.summarise_transactions(log, **args)


def test_summary_rejects_missing_dates():
    log = pd.DataFrame({"c": ["a", "b"], "d": pd.to_datetime(["2024-01-01", None])})
    with pytest.raises(SchemaError, match="1 row.*'d' are missing dates"):
        clv.summarise_transactions(log, customer="c", date="d")


def test_holdout_metrics_by_hand():
    s = pd.DataFrame({"f": [0, 2, 5, 1], "h": [0, 1, 4, 3], "p": [0.5, 1.5, 3.0, 1.0],
                      "T": [10.0, 10.0, 10.0, 5.0], "dur": [10.0] * 4})
    m = clv.holdout_metrics(s, predicted="p", frequency="f", frequency_holdout="h", duration_holdout="dur")["value"]
    err = np.array([0.5, 0.5, -1.0, -2.0])
    assert m["actual_total"] == 8 and m["predicted_total"] == 6
    assert m["total_error_pct"] == pytest.approx(-25.0)
    assert m["mae"] == pytest.approx(np.abs(err).mean())
    assert m["rmse"] == pytest.approx(np.sqrt((err**2).mean()))
    assert m["correlation"] == pytest.approx(np.corrcoef([0, 1, 4, 3], [0.5, 1.5, 3.0, 1.0])[0, 1])
    # naive: each customer's calibration rate over the holdout: 0, 2, 5, 2 -> errors 0, 1, 1, 1
    assert m["mae_naive"] == pytest.approx(0.75)


def test_holdout_predictions_from_the_model_and_the_plot(cdnow_log):
    from matplotlib.figure import Figure

    s = clv.summarise_transactions(cdnow_log, customer="customer", date="date", freq="W",
                                   calibration_end="1997-09-30", observation_end="1998-06-30")
    bg = clv.BetaGeoModel().fit(s)
    tab = clv.calibration_holdout_table(s, bg, max_frequency=5)
    pred = bg.predict_purchases(s, t=s["duration_holdout"].iloc[0])["expected_purchases"]
    by_hand = pred.groupby(np.minimum(s["frequency"], 5)).mean()
    assert tab["predicted"].to_numpy() == pytest.approx(by_hand.to_numpy())
    assert tab["frequency"].tolist() == ["0", "1", "2", "3", "4", ">= 5"]
    assert tab["customers"].sum() == 2357
    m = clv.holdout_metrics(s, bg)["value"]
    assert m["predicted_total"] == pytest.approx(pred.sum())
    assert m["actual_total"] == s["frequency_holdout"].sum()
    assert abs(m["total_error_pct"]) < 10  # the BG/NBD tracks CDNOW's holdout well (Fader, Hardie & Lee 2005)
    fig = clv.plot_calibration_holdout(s, bg)
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 2
    with pytest.raises(ParameterError, match="pass either model= .* or predicted="):
        clv.holdout_metrics(s)


def test_models_fit_on_the_sample_transactions():
    data = kt.sample.load()
    tx = data.transactions.assign(margin=lambda d: d["revenue"] - d["cost"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        s = clv.summarise_transactions(tx, customer="account_id", date="date", value="margin", freq="W",
                                       calibration_end="2024-12-31")
    bg = clv.BetaGeoModel().fit(s)
    gg = clv.GammaGammaModel().fit(s)
    m = clv.holdout_metrics(s, bg)["value"]
    assert m["mae"] < m["mae_naive"]  # the model beats carrying each account's calibration rate forward
    v = gg.customer_lifetime_value(bg, s, horizon=52, period=52 / 12, discount=0.01, n_draws=200)
    assert (v["clv"] > 0).all() and (v["lower"] <= v["clv"]).all()


def test_sbg_parameter_draws_per_cohort_and_text_events():
    both = clv.ShiftedBetaGeometric().fit(pd.DataFrame({"regular": REGULAR[:8], "high end": HIGH_END[:8]}))
    draws = both.sample_params(4000, seed=3)
    assert draws.columns.tolist() == ["cohort", "alpha", "beta"] and len(draws) == 8000
    med = draws.groupby("cohort")[["alpha", "beta"]].median()
    assert med.loc["regular"].to_numpy() == pytest.approx(both.params_.loc["regular"].to_numpy(), rel=0.02)
    df = pd.DataFrame({"d": [1, 2, 3], "e": ["True", "False", "False"]})
    with pytest.raises(SchemaError, match="column 'e' holds .* values; it must be True/False"):
        clv.ShiftedBetaGeometric().fit(df, duration="d", event="e")


def test_calibration_table_in_frequency_bins_and_the_clv_plot():
    from matplotlib.figure import Figure

    s = pd.DataFrame({"frequency": [0, 0, 1, 2, 5, 8, 9, 30], "frequency_holdout": [0, 1, 1, 2, 4, 6, 9, 20],
                      "p": [0.2, 0.2, 1.0, 1.5, 4.0, 7.0, 8.0, 25.0]})
    tab = clv.calibration_holdout_table(s, predicted="p", bins=4)
    # quartiles of frequency: {0, 0}, {1, 2}, {5, 8}, {9, 30}
    assert tab["frequency"].tolist() == ["0", "1-2", "5-8", "9-30"]
    assert tab["customers"].tolist() == [2, 2, 2, 2]
    assert tab["actual"].tolist() == pytest.approx([0.5, 1.5, 5.0, 14.5])
    assert tab["predicted"].tolist() == pytest.approx([0.2, 1.25, 5.5, 16.5])
    v = pd.DataFrame({"name": list("abc"), "clv": [3.0, 1.0, 2.0], "lower": [2.0, 0.5, 1.0], "upper": [4, 2, 3]})
    fig = clv.plot_clv(v, label="name", top=2)
    assert isinstance(fig, Figure)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["c", "a"]  # largest at the top


def test_gamma_gamma_with_q_not_above_one_refuses_the_population_mean(gg_cdnow, cdnow):
    import copy

    gg = copy.deepcopy(gg_cdnow)
    gg.params_ = gg.params_.copy()
    gg.params_["q"] = 0.9  # as a fit on very heavy-tailed spends could give: p*gamma/(q-1) < 0
    s = cdnow.iloc[:50]
    assert (s["frequency"] == 0).any()
    with pytest.raises(ParameterError, match=r"the fitted q = 0.9 is not above 1.*Try 1\)"):
        gg.expected_spend(s)
    buyers = s[s["frequency"] > 0]  # their own purchases still define an expected spend
    assert np.isfinite(gg.expected_spend(buyers)["expected_spend"]).all()
