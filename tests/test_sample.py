"""kamtools.sample: the synthetic portfolio agrees with its own ground truth."""

from __future__ import annotations

import doctest
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import kamtools
from kamtools import sample
from kamtools.exceptions import DataWarning, KamtoolsError, ParameterError, SourceError

SEEDS = [1, 2, 3, 4, 5]


def _generate(**kw):
    """generate() with its DataWarnings (credit notes) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return sample.generate(**kw)


@pytest.fixture(scope="module")
def default():
    """The default portfolio: 200 accounts, 2021-2025, seed 7."""
    return _generate()


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def seeded(request):
    return _generate(seed=request.param)


# --------------------------------------------------------------------------- basics


def test_same_seed_gives_the_same_data():
    a, b = _generate(n_accounts=40, seed=3), _generate(n_accounts=40, seed=3)
    assert a.fingerprint == b.fingerprint
    assert a.truth == b.truth


def test_another_seed_gives_other_data():
    a, b = _generate(n_accounts=40, seed=3), _generate(n_accounts=40, seed=4)
    assert a.fingerprint != b.fingerprint
    assert a.truth.uplift_margin_per_month != b.truth.uplift_margin_per_month


def test_every_table_is_present_and_not_empty(default):
    assert list(default.tables) == list(kamtools.schema.TABLES)
    assert {name: len(df) > 0 for name, df in default.tables.items()} == dict.fromkeys(kamtools.schema.TABLES, True)
    # every column of the data model is filled in
    for name, df in default.tables.items():
        assert df.columns.tolist() == kamtools.schema.TABLES[name].columns, name


def test_validates_with_no_warning_but_the_credit_notes():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = sample.generate(seed=11)  # KamData(...) inside: a SchemaError would raise here
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1
    assert "credit notes" in messages[0]
    tx = data.transactions
    assert 0.003 < (tx["revenue"] < 0).mean() < 0.03  # about 1 % of lines are credit notes
    assert ((tx["revenue"] < 0) == (tx["cost"] < 0)).all()


def test_default_counts(default):
    s = default.summary()
    assert (s.accounts, s.key_accounts, s.currency) == (200, 40, "EUR")
    assert len(default.managers) == 25  # one manager per 8 accounts
    assert default.truth.n_accounts == 200 and default.truth.seed == 7


def test_small_portfolio_works():
    data = _generate(n_accounts=20, seed=2, key_share=0.25, currency="usd")
    assert len(data.accounts) == 20
    assert int(data.accounts["is_key_account"].sum()) == 5
    assert len(data.managers) == 3  # at least three managers
    assert data.currency == "USD"
    assert len(data.truth.accounts) == 20


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_accounts": 5}, r"n_accounts=5: pass a whole number of accounts, at least 10"),
        ({"n_accounts": 20.5}, r"n_accounts=20.5"),
        ({"start": "2024-01-01", "end": "2024-01-01"}, r"end=2024-01-01 is not after start=2024-01-01"),
        ({"start": "2025-01-01", "end": "2021-01-01"}, r"end=2021-01-01 is not after start=2025-01-01"),
        ({"start": "2024-01-01", "end": "2024-12-31"}, r"spans 12 months; the sample needs at least 24"),
        ({"start": "the first of May"}, r"start='the first of May' is not a date"),
        ({"key_share": 0}, r"key_share=0: pass a share strictly between 0 and 1"),
        ({"key_share": 1.0}, r"key_share=1.0: pass a share strictly between 0 and 1"),
        ({"key_share": -0.2}, r"key_share=-0.2"),
        ({"key_share": "a fifth"}, r"key_share='a fifth'"),
        ({"seed": -1}, r"seed=-1: pass a whole number, 0 or more"),
        ({"currency": "EURO"}, r"currency='EURO': pass a three-letter ISO code"),
    ],
)
def test_bad_arguments_raise_a_clear_error(kwargs, match):
    with pytest.raises(ParameterError, match=match) as info:
        sample.generate(**kwargs)
    assert isinstance(info.value, KamtoolsError) and isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- structure


def test_account_names_are_unique_and_include_quotes_and_ampersands(default):
    names = default.accounts["account_name"]
    assert names.is_unique
    assert names.str.contains("'").any() and names.str.contains("&").any()
    assert "O'Brien & Sons" in set(names)


def test_managers_cover_every_tenure_band(seeded):
    end = pd.Timestamp(seeded.truth.end)
    months = (end - seeded.managers["start_date"]).dt.days / (365.25 / 12)
    bands = pd.cut(months, [0, 18, 36, np.inf], labels=["<18", "18-36", ">36"])
    assert set(bands) == {"<18", "18-36", ">36"}
    assert seeded.managers["start_date"].min() >= pd.Timestamp(seeded.truth.start) - pd.DateOffset(years=8)


def test_key_accounts_enter_kam_at_staggered_month_starts(seeded):
    acc = seeded.accounts
    key = acc["is_key_account"].astype(bool)
    ks = acc.loc[key, "kam_start"]
    start, end = pd.Timestamp(seeded.truth.start), pd.Timestamp(seeded.truth.end)
    assert ks.notna().all() and acc.loc[~key, "kam_start"].isna().all()
    assert (ks.dt.day == 1).all()
    assert ks.min() >= start + pd.DateOffset(months=9)
    assert ks.max() <= end - pd.DateOffset(months=12)
    assert ks.nunique() >= 10  # staggered entry, not one date
    # selection on observables: key accounts are the large wallets
    assert acc.loc[key, "wallet_size"].median() > 1.5 * acc.loc[~key, "wallet_size"].median()


def test_every_treated_account_has_months_before_and_after_entry(default):
    tx = default.transactions
    ks = default.accounts.set_index("account_id")["kam_start"].dropna()
    first = tx.groupby("account_id")["date"].min().reindex(ks.index)
    assert (first < ks).all()


def test_contracts_chain_and_cover_every_transaction(seeded):
    con = seeded.contracts.sort_values(["account_id", "start"])
    tx = seeded.transactions
    truth = seeded.truth.accounts.set_index("account_id")
    # terms follow each other without gaps
    nxt = con.groupby("account_id")["start"].shift(-1)
    gap = (nxt - con["end"]).dropna()
    assert (gap == pd.Timedelta(days=1)).all()
    # acquired accounts start with their first contract; the others were under contract at `start`
    first = con.groupby("account_id")["start"].min()
    obs = truth["observation_start"].reindex(first.index)
    start = pd.Timestamp(seeded.truth.start)
    assert ((first == obs) | ((obs == start) & (first <= start))).all()
    # each invoice line falls inside a contract term of its account
    lines = tx[["account_id", "date"]].sort_values("date").reset_index()
    terms = con[["account_id", "start", "end"]].sort_values("start")
    m = pd.merge_asof(lines, terms, left_on="date", right_on="start", by="account_id")
    assert m["end"].notna().all() and (m["date"] <= m["end"]).all()
    # the last term is lapsed for churned accounts, active for the others
    last = con.groupby("account_id").tail(1).set_index("account_id")["outcome"]
    churned = truth["churned"].reindex(last.index)
    assert (last[churned] == "lapsed").all() and (last[~churned] == "active").all()
    assert con["outcome"].eq("active").sum() == (~truth["churned"]).sum()


def test_contacts_and_interactions(default):
    n = default.contacts.groupby("account_id").size()
    assert n.between(2, 12).all()
    key = default.accounts.set_index("account_id")["is_key_account"].astype(bool)
    assert n[key[key].index].mean() > n[key[~key].index].mean()
    assert default.contacts.groupby("account_id")["is_decision_maker"].any().all()
    it = default.interactions.merge(default.accounts[["account_id", "kam_start", "manager_id"]], on="account_id")
    assert set(it["kind"]) == set(kamtools.schema.INTERACTION_KINDS)
    br = it[it["kind"] == "business_review"]
    assert (br["date"] >= br["kam_start"]).all()  # only key accounts, only in the programme
    assert (it["manager_id_x"] == it["manager_id_y"]).all()
    contact_account = default.contacts.set_index("contact_id")["account_id"]
    assert (it["contact_id"].map(contact_account) == it["account_id"]).all()
    exec_ = it[it["kind"] == "executive_meeting"]["account_id"].map(
        default.truth.accounts.set_index("account_id")["exec_sponsor"]
    )
    assert exec_.mean() > 0.7  # executive meetings happen mainly where there is a sponsor
    assert 0.8 < it["attended"].mean() < 1.0


def test_opportunities_win_more_after_kam_entry(default):
    opp = default.opportunities.merge(default.accounts[["account_id", "kam_start"]], on="account_id")
    closed = opp[opp["status"] != "open"]
    in_kam = closed["created"] >= closed["kam_start"]
    win = closed["status"].eq("won")
    assert win[in_kam].mean() > win[~in_kam].mean() + 0.05
    assert opp.loc[opp["status"] == "open", "closed"].isna().all()
    assert opp.loc[opp["status"] != "won", "implemented"].isna().all()
    assert set(opp["kind"]) == {"new_business", "cross_sell", "upsell", "renewal"}


def test_tickets_have_times_and_some_are_open(default):
    t = default.tickets
    assert (t["opened"] != t["opened"].dt.normalize()).mean() > 0.9  # times of day
    assert (t["first_response"].dropna() > t["opened"][t["first_response"].notna()]).all()
    assert t["resolved"].isna().any() and t["resolved"].notna().mean() > 0.9
    assert set(t["severity"]) == {"low", "medium", "high", "critical"}


def test_assessments_and_learning(default):
    a = default.assessments
    accounts = a[a["subject_id"].str.startswith("A")]
    key = default.accounts.loc[default.accounts["is_key_account"].astype(bool), "account_id"]
    assert accounts["subject_id"].isin(key).all()
    assert set(a["assessor"]) == {"supplier", "customer"}
    assert set(a["dimension"]) == set(kamtools.schema.ASSESSMENT_DIMENSIONS)
    assert a["score"].between(1, 5).all()
    # account scores rise with the latent engagement
    eng = default.truth.accounts.set_index("account_id")["engagement_z"]
    mean_score = accounts.groupby("subject_id")["score"].mean()
    assert np.corrcoef(mean_score, eng[mean_score.index])[0, 1] > 0.3
    learn = default.learning.merge(default.managers, on="manager_id")
    assert (learn["date"] >= learn["start_date"]).all()
    assert set(learn["kind"]) == {"training", "certification", "coaching"}


# --------------------------------------------------------------------------- truth


def test_no_activity_after_churn_or_before_the_account_started(seeded):
    truth = seeded.truth.accounts.set_index("account_id")
    for table, col in [("transactions", "date"), ("surveys", "date"), ("interactions", "date"),
                       ("tickets", "opened"), ("opportunities", "created"), ("costs", "date")]:
        df = seeded.tables[table]
        churn = df["account_id"].map(truth["churn_date"])
        assert not (df[col] >= churn).any(), table
        assert (df[col] >= df["account_id"].map(truth["observation_start"])).all(), table
    churned = truth.index[truth["churned"]]
    last = seeded.transactions.groupby("account_id")["date"].max()
    assert (last[churned] < truth.loc[churned, "churn_date"]).all()


def test_kam_costs_run_from_kam_start_to_churn(seeded):
    kam = seeded.costs[seeded.costs["kind"] == "kam_programme"]
    acc = seeded.accounts.set_index("account_id")
    assert acc.loc[kam["account_id"].unique(), "is_key_account"].all()
    assert (kam["date"] >= kam["account_id"].map(acc["kam_start"])).all()
    assert kam["date"].eq(kam["date"].dt.to_period("M").dt.start_time).all()  # monthly, at month starts
    assert len(kam) == seeded.truth.treated_account_months
    assert kam["amount"].mean() == pytest.approx(seeded.truth.kam_cost_per_account_month, rel=0.02)
    assert (seeded.costs["amount"] >= 0).all()


def test_programme_cost_and_roi_agree_with_the_tables(seeded):
    t = seeded.truth
    kam = seeded.costs.loc[seeded.costs["kind"] == "kam_programme", "amount"]
    assert t.programme_cost == pytest.approx(kam.sum(), abs=0.01)
    assert t.programme_roi == pytest.approx((t.incremental_margin - t.programme_cost) / t.programme_cost)
    assert t.incremental_margin == pytest.approx(t.uplift_margin_per_month * t.treated_account_months)
    assert 0.3 < t.programme_roi < 3.5  # clearly positive, not absurd


def test_default_truth_values(default):
    t = default.truth
    # the parameters of the simulation, as documented
    assert (t.churn_hr_key, t.churn_hr_nps, t.churn_hr_engagement, t.churn_hr_exec_sponsor) == (0.5, 0.85, 0.75, 0.6)
    assert t.kam_cost_per_account_month == 2000.0 and t.ramp_months == 6
    assert 0.5 < t.programme_roi < 3
    # effects differ by cohort: early entrants gain more
    cohorts = list(t.uplift_pct_by_cohort.values())
    assert cohorts == sorted(cohorts, reverse=True) and cohorts[0] > cohorts[-1] + 0.05
    # the effect ramps up over six months
    ev = t.uplift_by_event_time
    assert ev[0] < ev[2] < ev[5]
    assert ev[0] / ev[6] == pytest.approx(1 / 6, rel=0.35)


def test_non_key_accounts_churn_about_ten_percent_a_year():
    data = _generate(n_accounts=1000, seed=21)
    rates = _churn_rates(data)
    assert 0.08 < 1 - math.exp(-12 * rates[False]) < 0.14


def _churn_rates(data) -> pd.Series:
    """Churn events per account-month at risk, key (True) vs non-key (False)."""
    a = data.truth.accounts.merge(data.accounts[["account_id", "is_key_account"]], on="account_id")
    stop = a["churn_date"].fillna(pd.Timestamp(data.truth.end) + pd.Timedelta(days=1))
    months = (stop - a["observation_start"]).dt.days / (365.25 / 12)
    g = a.assign(months=months).groupby("is_key_account")[["churned", "months"]].sum()
    return g["churned"] / g["months"]


def test_key_accounts_churn_less_in_the_realised_data(seeded):
    rates = _churn_rates(seeded)
    crude_hr = rates[True] / rates[False]
    # The crude ratio is below the conditional HR of 0.5 because key accounts are also
    # more engaged and more often sponsored (0.5 * 0.76 ~ 0.39 expected); with about
    # 8 key-account churns per portfolio it is noisy, hence the wide band. A reversed
    # effect (HR 2) would give about 1.5.
    assert seeded.truth.churn_hr_key / 2.5 < crude_hr < min(1.0, seeded.truth.churn_hr_key * 2.5)


def test_poisson_regression_recovers_the_hazard_ratios():
    import statsmodels.api as sm

    data = _generate(n_accounts=3000, seed=3)
    t = data.truth
    a = t.accounts.merge(data.accounts[["account_id", "is_key_account"]], on="account_id")
    stop = a["churn_date"].fillna(pd.Timestamp(t.end) + pd.Timedelta(days=1))
    months = (stop - a["observation_start"]).dt.days / (365.25 / 12)
    X = pd.DataFrame(
        {
            "const": 1.0,
            "key": a["is_key_account"].astype(float),
            "nps": a["nps_latent"] - 7,
            "engagement": a["engagement_z"],
            "exec_sponsor": a["exec_sponsor"].astype(float),
        }
    )
    # exponential survival = Poisson on exposure (statsmodels GLM, log offset)
    fit = sm.GLM(a["churned"].astype(float), X, family=sm.families.Poisson(), offset=np.log(months)).fit()
    true = np.log([t.churn_h0, t.churn_hr_key, t.churn_hr_nps, t.churn_hr_engagement, t.churn_hr_exec_sponsor])
    z = (fit.params.to_numpy() - true) / fit.bse.to_numpy()
    assert np.abs(z).max() < 3.5, dict(zip(X.columns, z.round(2), strict=True))
    assert np.exp(fit.params["key"]) == pytest.approx(0.5, abs=0.15)


def _crude_did(data) -> float:
    """Proportional difference-in-differences of monthly margin, in money per treated account-month.

    For each treated account: (post/pre mean margin) / (the same ratio for the mean
    never-treated account over the same months) gives the proportional lift; times
    its post-entry mean margin, the lift in money. Churn months (partial) are left out.
    """
    tx = data.transactions
    m = (
        tx.assign(month=tx["date"].dt.to_period("M"), margin=tx["revenue"] - tx["cost"])
        .groupby(["account_id", "month"])["margin"].sum().reset_index()
    )
    churn = data.truth.accounts.set_index("account_id")["churn_date"].dt.to_period("M")
    m = m[m["month"] != m["account_id"].map(churn)]
    acc = data.accounts.set_index("account_id")
    key = m["account_id"].map(acc["is_key_account"]).astype(bool)
    control = m[~key].groupby("month")["margin"].mean()
    tr = m[key].assign(
        post=lambda d: d["month"] >= d["account_id"].map(acc["kam_start"].dt.to_period("M")),
        control=lambda d: d["month"].map(control),
    )
    g = tr.groupby(["account_id", "post"]).agg(y=("margin", "mean"), c=("control", "mean"), n=("margin", "size"))
    g = g.unstack("post").dropna()
    ratio = (g["y"][True] / g["y"][False]) / (g["c"][True] / g["c"][False])
    effect = g["y"][True] * (1 - 1 / ratio)
    return float((effect * g["n"][True]).sum() / g["n"][True].sum())


def test_crude_difference_in_differences_finds_the_uplift(seeded):
    est = _crude_did(seeded)
    truth = seeded.truth.uplift_margin_per_month
    assert est > 0
    assert 0.6 * truth < est < 1.5 * truth  # seeds 1-10 give 0.81-1.21 x the truth


def test_nps_is_on_its_scale_and_follows_the_latent_score(default):
    s = default.surveys
    assert s["nps"].between(0, 10).all() and s["csat"].between(1, 5).all()
    latent = default.truth.accounts.set_index("account_id")["nps_latent"]
    mean = s.groupby("account_id")["nps"].mean()
    assert np.corrcoef(mean, latent[mean.index])[0, 1] > 0.6
    assert np.corrcoef(s["nps"], s["csat"])[0, 1] > 0.3
    # about two responses a year per account, more from key accounts
    t = default.truth.accounts.set_index("account_id")
    years = (t["churn_date"].fillna(pd.Timestamp(default.truth.end)) - t["observation_start"]).dt.days / 365.25
    per_year = s.groupby("account_id").size().reindex(t.index, fill_value=0) / years
    key = default.accounts.set_index("account_id")["is_key_account"].astype(bool)
    assert 1.5 < per_year[~key].mean() < 2.5
    assert per_year[key].mean() > per_year[~key].mean() + 0.5


def test_truth_accounts_match_the_data(default):
    t = default.truth.accounts
    assert t["account_id"].tolist() == default.accounts["account_id"].tolist()
    assert list(t.columns) == [
        "account_id", "nps_latent", "engagement_z", "exec_sponsor",
        "observation_start", "churn_date", "churned", "uplift_pct",
    ]
    assert (t["churned"] == t["churn_date"].notna()).all()
    key = default.accounts["is_key_account"].astype(bool).to_numpy()
    assert (t.loc[key, "uplift_pct"] > 0).all() and (t.loc[~key, "uplift_pct"] == 0).all()
    assert t["uplift_pct"][key].mean() == pytest.approx(default.truth.uplift_pct)


# --------------------------------------------------------------------------- truth object and files


def test_truth_round_trips_through_json(default, tmp_path):
    t = default.truth
    again = sample.Truth.from_dict(json.loads(json.dumps(t.to_dict())))
    assert again == t
    assert again.uplift_by_event_time[0] == t.uplift_by_event_time[0]
    pd.testing.assert_frame_equal(again.accounts, t.accounts)
    path = sample.save_truth(t, tmp_path / "truth.json")
    assert sample.read_truth(path) == t
    with pytest.raises(SourceError, match="exists already"):
        sample.save_truth(t, path)
    sample.save_truth(t, path, overwrite=True)


def test_truth_from_a_bad_dict_or_file(default, tmp_path):
    d = default.truth.to_dict()
    del d["programme_roi"]
    with pytest.raises(ParameterError, match=r"missing keys \['programme_roi'\]"):
        sample.Truth.from_dict(d)
    (tmp_path / "truth.json").write_text("{not json")
    with pytest.raises(SourceError, match="is not a kamtools truth file"):
        sample.read_truth(tmp_path / "truth.json")
    with pytest.raises(SourceError, match="No truth file"):
        sample.read_truth(tmp_path / "missing.json")


def test_truth_displays_its_numbers(default):
    t = default.truth
    text = repr(t)
    assert f"{t.uplift_margin_per_month:,.2f} EUR" in text
    assert f"{t.programme_roi:.3f}" in text and "key 0.5" in text
    assert "<table>" in t._repr_html_()


def test_csv_copy_is_small(default, tmp_path):
    out = default.to_folder(tmp_path / "sample")
    sample.save_truth(default.truth, out / "truth.json")
    size = sum(f.stat().st_size for f in out.iterdir())
    assert size < 5_000_000  # hard limit for the committed copy (currently about 2.5 MB)
    dates = pd.read_csv(out / "transactions.csv", dtype="str")["date"]
    assert dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()  # plain dates, no times
    money = pd.read_csv(out / "transactions.csv", dtype="str")["revenue"]
    assert (money.str.split(".").str[1].str.len().fillna(0) <= 2).all()  # cents


def test_load_reads_the_committed_copy(default, tmp_path, monkeypatch):
    folder = default.to_folder(tmp_path / "sample")
    sample.save_truth(default.truth, folder / "truth.json")
    monkeypatch.setattr(sample, "SAMPLE_DIR", folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = sample.load()
    assert data.fingerprint == default.fingerprint  # CSV round trip loses nothing
    assert data.truth == default.truth


def test_load_without_the_folder_generates_the_default(default, tmp_path, monkeypatch):
    monkeypatch.setattr(sample, "SAMPLE_DIR", tmp_path / "absent")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = sample.load()
    assert data.fingerprint == default.fingerprint
    assert data.truth == default.truth


def test_load_with_a_folder_but_no_truth_says_what_to_do(tmp_path, monkeypatch):
    (tmp_path / "sample").mkdir()
    monkeypatch.setattr(sample, "SAMPLE_DIR", tmp_path / "sample")
    with pytest.raises(SourceError, match="make sample-data"):
        sample.load()


def test_docstring_examples_run():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        result = doctest.testmod(sample, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0
