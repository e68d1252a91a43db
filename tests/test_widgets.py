"""The widgets, headless: set a control's .value, as a click would, and check what changes.

Expected numbers come from hand computations on the sample's tables, from kt.compute /
kt.scorecard called directly, and from scipy (percentiles).
"""

from __future__ import annotations

import warnings

import ipywidgets
import numpy as np
import pandas as pd
import pytest
from scipy.stats import percentileofscore

import kamtools as kt
from kamtools.exceptions import ParameterError
from kamtools.scorecard import read_targets
from kamtools.widgets import (
    SEGMENT,
    AccountExplorer,
    PortfolioMap,
    RoiWhatIf,
    ScorecardDesigner,
)

KPIS = [
    "revenue", "gross_margin_pct", "nps", "share_of_wallet", "engagement_breadth", "executive_sponsorship",
    "revenue_growth_rate", "net_revenue_retention", "training_completion_rate", "cost_to_serve",
    "cost_to_serve_growth",
]
LAST = pd.Period("2025Q4", freq="Q")


@pytest.fixture(scope="module")
def data():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kt.sample.load()


@pytest.fixture(scope="module")
def values(data):
    return kt.compute(data, KPIS, period="Q")


@pytest.fixture(scope="module")
def yearly(data):
    return kt.compute(data, ["revenue_growth_rate", "gross_margin_pct", "share_of_wallet", "cost_to_serve",
                             "executive_sponsorship", "engagement_breadth"], period="Y")


def _value(values, entity, kpi, period=LAST):
    v = values[(values["entity"] == entity) & (values["kpi"] == kpi) & (values["period"] == period)]["value"]
    return float(v.iloc[0]) if len(v) else np.nan


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


# --------------------------------------------------------------------------- AccountExplorer


@pytest.mark.parametrize("account", ["A0001", "A0004", "A0031"])
def test_explorer_revenue_is_the_hand_sum_of_the_quarters_invoices(data, values, account):
    ex = AccountExplorer(data, values=values, account="A0110")
    ex.account.value = account
    tx = data.transactions
    in_q = (tx["account_id"] == account) & (tx["date"].dt.to_period("Q") == LAST)
    hand = tx.loc[in_q, "revenue"].sum()  # credit notes are negative revenue, netted in
    row = ex.table.set_index("kpi").loc["revenue"]
    assert row["period"] == LAST
    assert row["value"] == pytest.approx(hand, rel=1e-12)
    assert f"{hand:,.0f}" in ex.table_html.value


@pytest.mark.parametrize("account", ["A0001", "A0004", "A0031"])
@pytest.mark.parametrize("kpi", ["revenue", "gross_margin_pct"])
def test_explorer_percentile_and_quartiles_against_scipy_and_numpy(data, values, account, kpi):
    ex = AccountExplorer(data, values=values, account=account, kpis=[kpi])
    industry = data.accounts.set_index("account_id")["industry"]
    peers = industry.index[industry == industry[account]]
    seg = values[(values["kpi"] == kpi) & (values["period"] == LAST) & values["entity"].isin(peers)]
    seg = seg["value"].dropna().to_numpy()
    row = ex.table.iloc[0]
    # scipy's "mean" kind: share below plus half the ties, as benchmark() documents
    assert row["percentile"] == pytest.approx(percentileofscore(seg, _value(values, account, kpi), kind="mean"))
    assert row["segment_median"] == pytest.approx(np.median(seg))
    assert row["segment_p25"] == pytest.approx(np.quantile(seg, 0.25))
    assert row["segment_p75"] == pytest.approx(np.quantile(seg, 0.75))
    assert row["segment_n"] == len(seg)
    assert row["segment"] == industry[account]


def test_explorer_observers_redraw_table_and_plot(data, values):
    ex = AccountExplorer(data, values=values, account="A0001")
    seen = []
    ex.table_html.observe(lambda ch: seen.append("table"), names="value")
    ex.plot.observe(lambda ch: seen.append("plot"), names="value")
    before_png, before_table = ex.plot.value, ex.table.copy()
    ex.account.value = "A0004"
    assert seen == ["table", "plot"]
    assert ex.plot.value != before_png
    assert not ex.table["value"].equals(before_table["value"])
    assert "<b>A0004</b>" in ex.table_html.value and "(A0004)" in ex.status.value
    assert ex.table["value"].tolist() == pytest.approx(
        [_value(values, "A0004", k) for k in ex.table["kpi"]], nan_ok=True
    )


def test_explorer_period_range_sets_the_table_period_and_trims_the_trend(data, values):
    ex = AccountExplorer(data, values=values, account="A0001", kpis=["revenue"])
    ex.periods.value = ("2023Q2", "2024Q3")
    end = pd.Period("2024Q3", freq="Q")
    assert ex.table["period"].tolist() == [end]
    assert ex.table["value"].iloc[0] == pytest.approx(_value(values, "A0001", "revenue", end))
    assert ex.trend["period"].astype(str).tolist() == ["2023Q2", "2023Q3", "2023Q4", "2024Q1", "2024Q2", "2024Q3"]
    assert ex.trend["value"].tolist() == pytest.approx(
        [_value(values, "A0001", "revenue", p) for p in ex.trend["period"]]
    )


@pytest.mark.parametrize(
    "kpis,panels",
    [(("revenue",), 1), (("revenue", "nps", "share_of_wallet"), 3),
     (("revenue", "nps", "share_of_wallet", "gross_margin_pct"), 3)],
    ids=["one", "three", "four-plots-three"],
)
def test_explorer_kpi_choice_sets_table_rows_and_plot_panels(data, values, kpis, panels):
    ex = AccountExplorer(data, values=values, account="A0001", kpis=["gross_margin_pct", "nps"])
    ex.kpis.value = kpis
    assert ex.table["kpi"].tolist() == list(kpis)
    width, height = _png_size(ex.plot.value)
    # figure 8.5 x (2.4 per panel + 0.4) inches at 80 dpi
    assert (width, height) == (680, round((2.4 * panels + 0.4) * 80))
    assert ("1 more KPI(s) in the table, not plotted" in ex.status.value) == (len(kpis) > panels)


def test_explorer_without_kpis_says_so(data, values):
    ex = AccountExplorer(data, values=values, account="A0001")
    ex.kpis.value = ()
    assert ex.table.empty and ex.plot.value == b""
    assert "Choose at least one KPI" in ex.status.value


def test_explorer_compare_with_an_account(data, values):
    ex = AccountExplorer(data, values=values, account="A0001")
    ex.compare.value = "A0031"
    expected = [_value(values, "A0031", k) for k in ex.table["kpi"]]
    assert ex.table["compare"].tolist() == pytest.approx(expected, nan_ok=True)
    assert "compare: A0031" in ex.table_html.value
    trend = ex.trend[ex.trend["kpi"] == "revenue"]
    assert trend["compare"].tolist() == pytest.approx(
        [_value(values, "A0031", "revenue", p) for p in trend["period"]], nan_ok=True
    )


def test_explorer_compare_with_the_segment_median(data, values):
    ex = AccountExplorer(data, values=values, account="A0001", kpis=["revenue"])
    ex.compare.value = SEGMENT
    industry = data.accounts.set_index("account_id")["industry"]
    peers = industry.index[industry == industry["A0001"]]
    seg = values[(values["kpi"] == "revenue") & (values["period"] == LAST) & values["entity"].isin(peers)]
    assert ex.table["compare"].iloc[0] == pytest.approx(seg["value"].median())
    ex.compare.value = None
    assert ex.table["compare"].isna().all()


def test_explorer_segment_column_changes_the_peers(data, values):
    ex = AccountExplorer(data, values=values, account="A0001", kpis=["revenue"])
    ex.segment.value = "region"
    region = data.accounts.set_index("account_id")["region"]
    peers = region.index[region == region["A0001"]]
    seg = values[(values["kpi"] == "revenue") & (values["period"] == LAST) & values["entity"].isin(peers)]
    assert ex.table["segment"].iloc[0] == region["A0001"]
    assert ex.table["segment_n"].iloc[0] == seg["value"].notna().sum()


def test_explorer_search_filters_the_accounts(data, values):
    ex = AccountExplorer(data, values=values, account="A0001")
    ex.search.value = "pinnacle"
    names = data.accounts.set_index("account_id")["account_name"]
    hits = sorted(i for i, n in names.items() if "pinnacle" in n.lower())
    assert sorted(v for _, v in ex.account.options) == hits
    assert ex.account.value == hits[0]  # the shown account was filtered out: the first match is shown
    assert ex.table["value"].iloc[0] == pytest.approx(_value(values, hits[0], ex.table["kpi"].iloc[0]), nan_ok=True)
    ex.search.value = "no such account"
    assert "No account matches" in ex.status.value
    assert sorted(v for _, v in ex.account.options) == hits
    ex.select("A0001")  # select() clears the filter
    assert ex.search.value == "" and ex.account.value == "A0001" and len(ex.account.options) == 200


def test_explorer_is_a_domwidget_with_a_jupyter_repr(data, values):
    ex = AccountExplorer(data, values=values, account="A0004", kpis=["revenue"], compare="A0001")
    assert isinstance(ex, ipywidgets.VBox) and isinstance(ex, ipywidgets.DOMWidget)
    bundle = ex._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == ex.model_id
    assert bundle["text/plain"].startswith("AccountExplorer(account='A0004', compare='A0001', kpis=['revenue']")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"account": "A9999"}, r"account='A9999' is not an account of this data set"),
        ({"account": "a0001 "}, r"Did you mean 'A0001'\?"),
        ({"compare": "nobody"}, r"compare='nobody' is not an account"),
        ({"kpis": ["revenu"]}, r"'revenu' not in the computed values\. Did you mean 'revenue'"),
        ({"segment": "wallet_size"}, r"segment='wallet_size': use a column of accounts that groups accounts"),
    ],
)
def test_explorer_bad_arguments(data, values, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        AccountExplorer(data, values=values, **kwargs)


def test_widgets_need_values_by_account(data):
    by_industry = kt.compute(data, ["revenue"], by="industry", period="Y")
    with pytest.raises(ParameterError, match=r"entit\(ies\) that are not account ids.*by='account'"):
        AccountExplorer(data, values=by_industry)
    with pytest.raises(ParameterError, match=r"values lacks the column\(s\) kpi"):
        PortfolioMap(data, values=by_industry.drop(columns="kpi"))


def test_explorer_computes_values_once_when_not_given(data):
    ex = AccountExplorer(data, period="Y", kpis=["revenue"])
    assert ex.values["kpi"].nunique() == len(kt.kpis())
    assert ex.account.value == "A0001"  # the first key account
    assert ex.table["value"].iloc[0] == pytest.approx(
        _value(kt.compute(data, ["revenue"], period="Y"), "A0001", "revenue", pd.Period("2025", freq="Y"))
    )


# --------------------------------------------------------------------------- ScorecardDesigner


def _card(values, data, targets, **kw):
    period = pd.Period("2025Q4", freq="Q")
    key = set(data.accounts.loc[data.accounts["is_key_account"], "account_id"])
    v = values[values["entity"].isin(key) & values["period"].isin([period - 1, period])]
    return kt.scorecard(v, targets=targets, data=data, **kw)


def test_designer_default_set_is_sound_and_a_lopsided_set_warns(data, values):
    d = ScorecardDesigner(data, values=values)
    assert d.problems == []
    assert "sound" in d.checks.value
    d.kpis.value = ("revenue", "nps")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = kt.check_kpi_set(["revenue", "nps"])
    assert d.problems == expected and len(expected) == 2
    assert "No KPI for the pillar(s) relationships, learning" in d.checks.value
    assert set(d.target_sliders) >= {"revenue", "nps"}
    assert [row.children[1] for row in d.targets_box.children] == [d.target_sliders["revenue"],
                                                                    d.target_sliders["nps"]]


def test_designer_scores_equal_kt_scorecard_with_the_same_targets(data, values):
    targets = {"revenue_growth_rate": 0.05, "nps": 30, "engagement_breadth": 3}
    d = ScorecardDesigner(data, values=values, targets=targets)
    d.target_sliders["nps"].value = 10
    targets["nps"] = 10
    card = _card(values, data, targets)
    expected = card.overall[card.overall["period"] == LAST].set_index("entity")["score"]
    got = d.table.set_index("entity")["score"]
    assert got.sort_index().tolist() == pytest.approx(expected.sort_index().tolist(), nan_ok=True)
    assert len(got) == len(expected) > 20


@pytest.mark.parametrize("account", ["A0001", "A0020", "A0036"])
def test_designer_kpi_score_is_the_hand_normalised_value(data, values, account):
    d = ScorecardDesigner(data, values=values, kpis=["engagement_breadth", "revenue_growth_rate"])
    d.target_sliders["engagement_breadth"].value = 4.0
    d.floor_sliders["engagement_breadth"].value = 1.0
    row = d.card.kpis.set_index(["entity", "period", "kpi"]).loc[(account, LAST, "engagement_breadth")]
    value = _value(values, account, "engagement_breadth")
    assert row["score"] == pytest.approx(100 * min(max((value - 1.0) / (4.0 - 1.0), 0), 1))


def test_designer_fixed_pillar_weights_give_the_hand_weighted_mean(data, values):
    d = ScorecardDesigner(data, values=values)
    d.weights_mode.value = "fixed"
    for p, w in {"relationships": 50, "revenue": 30, "retention": 20}.items():
        d.pillar_sliders[p].value = w
    assert all(not s.disabled for s in d.pillar_sliders.values())
    t = d.table.dropna(subset=["relationships", "revenue", "retention"]).iloc[0]
    hand = (50 * t["relationships"] + 30 * t["revenue"] + 20 * t["retention"]) / 100
    assert t["score"] == pytest.approx(hand)
    d.weights_mode.value = "tenure"
    assert all(s.disabled for s in d.pillar_sliders.values())
    assert set(d.table["band"].dropna()) <= {"under 18 months", "18 to 36 months", "over 36 months"}


@pytest.mark.parametrize("amber,green", [(50.0, 80.0), (70.0, 90.0)])
def test_designer_thresholds_band_the_scores(data, values, amber, green):
    d = ScorecardDesigner(data, values=values)
    d.thresholds.value = (amber, green)
    scored = d.table.dropna(subset=["score"])
    hand = np.select([scored["score"] >= green, scored["score"] >= amber], ["green", "amber"], "red")
    assert scored["rag"].tolist() == hand.tolist()
    counts = scored["rag"].value_counts()
    assert f"{int(counts.get('red', 0))} red" in d.summary.value


def test_designer_export_round_trips_through_read_targets_and_scorecard(data, values, tmp_path):
    d = ScorecardDesigner(data, values=values)
    d.target_sliders["nps"].value = 25
    d.weight_sliders["gross_margin_pct"].value = 2
    path = d.export(tmp_path / "targets.csv")
    assert path.read_text().splitlines()[0] == "kpi,target,floor,weight"
    read = read_targets(path)
    assert read["kpi"].tolist() == list(d.kpis.value)
    assert read.set_index("kpi").loc["nps", "target"] == 25
    assert read.set_index("kpi").loc["gross_margin_pct", "weight"] == 2
    card = _card(values, data, path)
    expected = card.overall[card.overall["period"] == LAST].set_index("entity")["score"].sort_index()
    assert d.table.set_index("entity")["score"].sort_index().tolist() == pytest.approx(expected.tolist(), nan_ok=True)
    with pytest.raises(ParameterError, match=r"exists; pass overwrite=True"):
        d.export(path)
    d.target_sliders["nps"].value = 35
    d.export(path, overwrite=True)
    assert read_targets(path).set_index("kpi").loc["nps", "target"] == 35


def test_designer_export_button_writes_the_file(data, values, tmp_path):
    d = ScorecardDesigner(data, values=values, kpis=["nps", "revenue_growth_rate"])
    d.path.value = str(tmp_path / "mine.csv")
    d.export_button.click()
    assert (tmp_path / "mine.csv").exists()
    assert "wrote" in d.export_status.value
    d.path.value = str(tmp_path / "no" / "folder.csv")
    d.export_button.click()
    assert "does not exist" in d.export_status.value


def test_designer_starts_from_a_targets_file_and_warns_about_per_account_rows(data, values, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("kpi,target,floor,weight,entity\nnps,20,-40,2,\nrevenue_growth_rate,0.04,-0.1,1,\nnps,50,,1,A0001\n")
    with pytest.warns(UserWarning, match=r"1 per-account target row\(s\) left out"):
        d = ScorecardDesigner(data, values=values, targets=f)
    assert list(d.kpis.value) == ["nps", "revenue_growth_rate"]
    assert (d.target_sliders["nps"].value, d.floor_sliders["nps"].value, d.weight_sliders["nps"].value) == (20, -40, 2)
    assert d.targets.to_dict("list") == {"kpi": ["nps", "revenue_growth_rate"], "target": [20.0, 0.04],
                                         "floor": [-40.0, -0.1], "weight": [2.0, 1.0]}


def test_designer_gives_a_floor_where_the_target_is_not_positive(data, values):
    # cost_to_serve_growth: lower is better; its 25th percentile (the default target) is below zero,
    # where kt.scorecard has no default floor
    d = ScorecardDesigner(data, values=values, kpis=["cost_to_serve_growth", "nps"])
    t = d.targets.set_index("kpi").loc["cost_to_serve_growth"]
    key = data.accounts.loc[data.accounts["is_key_account"], "account_id"]
    v = values[(values["kpi"] == "cost_to_serve_growth") & values["entity"].isin(key)]["value"].dropna()
    assert t["target"] == pytest.approx(v.quantile(0.25)) and t["target"] < 0
    assert t["floor"] > t["target"]
    assert d.card is not None and "Error" not in d.status.value
    d.floor_sliders["cost_to_serve_growth"].value = d.target_sliders["cost_to_serve_growth"].value - 0.05
    assert "the floor must be worse than the target" in d.status.value


def test_designer_key_accounts_toggle_changes_the_accounts_scored(data, values):
    d = ScorecardDesigner(data, values=values)
    key = set(data.accounts.loc[data.accounts["is_key_account"], "account_id"])
    assert set(d.table["entity"]) <= key
    d.key_accounts.value = False
    assert len(set(d.table["entity"]) - key) > 50
    assert len(d.account.options) == 200


def test_designer_period_and_account_redraw(data, values):
    d = ScorecardDesigner(data, values=values)
    before = d.plot.value
    d.account.value = "A0020"
    assert d.plot.value != before
    d.period.value = "2024Q4"
    assert set(d.table["period"].astype(str)) == {"2024Q4"}


def test_designer_design_feeds_kt_scorecard(data, values):
    d = ScorecardDesigner(data, values=values, weights={"relationships": 2, "revenue": 1, "retention": 1})
    assert d.weights_mode.value == "fixed"
    card = _card(values, data, **d.design)
    o = card.overall[card.overall["period"] == LAST].set_index("entity")["score"].sort_index()
    assert d.table.set_index("entity")["score"].sort_index().tolist() == pytest.approx(o.tolist(), nan_ok=True)
    assert repr(d).startswith("ScorecardDesigner(kpis=['engagement_breadth'")


def test_designer_tenure_weights_need_managers(tiny):
    small = kt.KamData({k: v for k, v in tiny.items() if k != "managers"})
    with pytest.raises(ParameterError, match=r"weights='tenure' needs the managers table"):
        ScorecardDesigner(small, period="Y", kpis=["revenue"])


# --------------------------------------------------------------------------- PortfolioMap


def test_map_axes_are_scipy_percentiles_among_the_accounts_on_the_map(data, yearly):
    m = PortfolioMap(data, values=yearly, attractiveness=["wallet_size"], position=["share_of_wallet"])
    t = m.table.set_index("account_id")
    wallets = t["wallet_size"].to_numpy()
    sow = t["share_of_wallet"].to_numpy()
    for acc in ["A0001", "A0004", "A0110"]:
        assert t.loc[acc, "attractiveness"] == pytest.approx(percentileofscore(wallets, t.loc[acc, "wallet_size"],
                                                                               kind="mean"))
        assert t.loc[acc, "position"] == pytest.approx(percentileofscore(sow, t.loc[acc, "share_of_wallet"],
                                                                         kind="mean"))
    # on the map: accounts with a share of wallet in 2025; the others are counted, not dropped silently
    y = yearly[(yearly["kpi"] == "share_of_wallet") & (yearly["period"] == pd.Period("2025", freq="Y"))]
    assert len(t) == y["value"].notna().sum()
    assert f"{200 - len(t)} account(s) without values for 2025" in m.status.value


def test_map_reverses_measures_where_lower_is_better(data, yearly):
    m = PortfolioMap(data, values=yearly, attractiveness=["wallet_size"], position=["cost_to_serve"])
    t = m.table.set_index("account_id")
    cts = t["cost_to_serve"].to_numpy()
    assert t.loc["A0001", "position"] == pytest.approx(
        100 - percentileofscore(cts, t.loc["A0001", "cost_to_serve"], kind="mean")
    )


def test_map_axis_is_the_mean_percentile_of_its_measures(data, yearly):
    m = PortfolioMap(data, values=yearly, key_accounts=True)
    t = m.table.set_index("account_id")
    pct = {c: (t[c].rank() - 0.5) / t[c].count() * 100 for c in ("wallet_size", "revenue_growth_rate",
                                                                   "gross_margin_pct")}
    hand = pd.DataFrame(pct).mean(axis=1)
    assert t["attractiveness"].tolist() == pytest.approx(hand.tolist())
    assert t["is_key_account"].all()


def test_map_quadrants_follow_the_scores(data, yearly):
    m = PortfolioMap(data, values=yearly)
    t = m.table
    high, strong = t["attractiveness"] >= 50, t["position"] >= 50
    hand = np.select([high & strong, high & ~strong, ~high & strong], ["strategic", "develop", "maintain"],
                     "opportunistic")
    assert t["quadrant"].tolist() == hand.tolist()
    assert [v for _, v in m.accounts.options] == t["account_id"].tolist()
    assert all(label.startswith(q) for (label, _), q in zip(m.accounts.options, t["quadrant"], strict=True))


def test_map_picking_an_account_opens_it_in_the_explorer(data, yearly):
    m = PortfolioMap(data, values=yearly)
    assert m.explorer is None
    before = m.plot.value
    m.accounts.value = "A0004"  # a click in the list
    assert m.selected == "A0004" and m.plot.value != before
    ex = m.explorer
    assert isinstance(ex, AccountExplorer) and ex in m.children
    assert ex.account.value == "A0004"
    assert ex.table.set_index("kpi").loc["share_of_wallet", "value"] == pytest.approx(
        _value(yearly, "A0004", "share_of_wallet", pd.Period("2025", freq="Y"))
    )
    m.select("A0110")
    assert m.explorer is ex and ex.account.value == "A0110" and m.accounts.value == "A0110"


def test_map_uses_a_given_explorer(data, values, yearly):
    ex = AccountExplorer(data, values=values, account="A0001")
    m = PortfolioMap(data, values=yearly, explorer=ex)
    ex.search.value = "kestrel"
    m.select("A0004")
    assert ex.account.value == "A0004" and ex.search.value == ""
    assert ex not in m.children


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"attractiveness": ["walet_size"]},
         r"attractiveness: 'walet_size' not in the computed values\. Did you mean 'wallet_size'"),
        ({"position": ["nps"]}, r"position: 'nps' not in the computed values"),
        ({"explorer": "A0001"}, r"explorer must be an AccountExplorer, not str"),
    ],
)
def test_map_bad_arguments(data, yearly, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        PortfolioMap(data, values=yearly, **kwargs)


def test_map_select_unknown_account(data, yearly):
    m = PortfolioMap(data, values=yearly)
    with pytest.raises(ParameterError, match=r"account='A9' is not an account"):
        m.select("A9")


def test_map_without_measures_says_so(data, yearly):
    m = PortfolioMap(data, values=yearly)
    m.position.value = ()
    assert m.table.empty and "Choose at least one measure for each axis" in m.status.value
    assert repr(m).startswith("PortfolioMap(period=2025, attractiveness=['wallet_size'")


# --------------------------------------------------------------------------- RoiWhatIf


@pytest.fixture(scope="module")
def roi(data):
    return kt.roi.programme_roi(data, n_boot=0)


@pytest.mark.parametrize(
    "points,uplift,cost,basis",
    [
        (0.0, None, None, "period"),  # the sliders at the estimates: scenario = baseline
        (3.0, 3000.0, 1500.0, "period"),
        (-5.0, 7000.0, 2500.0, "period"),
        (12.0, 0.0, 1_000_000.0, "total"),  # retention capped at 99% by what_if
    ],
)
def test_roiwhatif_table_is_what_if_called_directly(data, roi, points, uplift, cost, basis):
    w = RoiWhatIf(data, roi=roi)
    w.cost_basis.value = basis
    w.retention.value = points
    if uplift is not None:
        w.uplift.value = uplift
    if cost is not None:
        w.cost.value = cost
    total = roi.programme_cost if cost is None else cost * roi.treated_periods if basis == "period" else cost
    direct = kt.roi.what_if(roi, retention_gain=points / 100, uplift=roi.uplift.effect if uplift is None else uplift,
                            programme_cost=total)
    t = w.table.set_index("case")
    assert list(t.index) == ["baseline", "scenario"]
    pd.testing.assert_frame_equal(t.loc[["scenario"]].reset_index(drop=True), direct, rtol=1e-12)
    pd.testing.assert_frame_equal(t.loc[["baseline"]].reset_index(drop=True), kt.roi.what_if(roi))
    # the scenario's ROI by hand: (uplift x treated periods - cost) / cost
    up = roi.uplift.effect if uplift is None else uplift
    assert t.at["scenario", "roi"] == pytest.approx((up * roi.treated_periods - total) / total, rel=1e-12)
    assert f"{t.at['scenario', 'roi']:.2f}" in w.status.value


def test_roiwhatif_baseline_row_is_the_programme_roi_estimate(data, roi):
    w = RoiWhatIf(data, roi=roi, retention_points=4.0, uplift=2000.0, programme_cost=0.5 * roi.programme_cost)
    base = w.table.set_index("case").loc["baseline"]
    assert base["incremental_margin"] == roi.incremental_margin
    assert base["programme_cost"] == roi.programme_cost
    assert base["roi"] == roi.roi
    assert base["uplift_per_period"] == roi.uplift.effect
    assert base["retention_gain"] == 0.0
    # the constructor's starting values reach the scenario
    scen = w.table.set_index("case").loc["scenario"]
    assert scen["retention_gain"] == pytest.approx(0.04)
    assert scen["uplift_per_period"] == 2000.0
    assert scen["programme_cost"] == pytest.approx(0.5 * roi.programme_cost, rel=1e-12)


def test_roiwhatif_computes_programme_roi_when_not_given(data, roi):
    w = RoiWhatIf(data)
    assert w.roi.roi == pytest.approx(roi.roi, rel=1e-12)
    assert w.table.set_index("case").at["baseline", "roi"] == pytest.approx(roi.roi, rel=1e-12)
    assert w.uplift.value == pytest.approx(roi.uplift.effect, rel=1e-12)


def test_roiwhatif_cost_basis_keeps_the_total(data, roi):
    w = RoiWhatIf(data, roi=roi)
    assert w.cost.value == pytest.approx(roi.programme_cost / roi.treated_periods, rel=1e-12)
    w.cost.value = 1000.0
    w.cost_basis.value = "total"
    assert w.cost.value == pytest.approx(1000.0 * roi.treated_periods, rel=1e-12)
    assert w.cost.min <= w.cost.value <= w.cost.max and w.cost.max >= 3 * roi.programme_cost
    assert w.table["programme_cost"].iloc[1] == pytest.approx(1000.0 * roi.treated_periods, rel=1e-12)
    w.cost_basis.value = "period"
    assert w.cost.value == pytest.approx(1000.0, rel=1e-12)


def test_roiwhatif_observers_redraw_table_and_plot(data, roi):
    w = RoiWhatIf(data, roi=roi)
    png, html_before = w.plot.value, w.table_html.value
    assert _png_size(png) == (720, 224)  # 9 x 2.8 inches at 80 dpi
    w.retention.value = 2.0
    clv = w.table["clv_per_account"].iloc[1]
    assert clv > w.table["clv_per_account"].iloc[0]
    assert w.plot.value != png and w.table_html.value != html_before
    assert f"{clv:,.0f}" in w.table_html.value


def test_roiwhatif_is_a_domwidget_with_a_jupyter_repr(data, roi):
    w = RoiWhatIf(data, roi=roi)
    assert isinstance(w, ipywidgets.VBox) and isinstance(w, ipywidgets.DOMWidget)
    bundle = w._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    assert bundle["text/plain"] == (
        f"RoiWhatIf(retention=+0 points, uplift={roi.uplift.effect:,.0f} per key-account month, "
        f"programme_cost={roi.programme_cost:,.0f}, roi={roi.roi:.2f})"
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"roi": "1.3"}, r"roi must be a kt.roi.programme_roi\(...\) result, not str"),
        ({"cost_basis": "monthly"}, r"cost_basis='monthly'; use 'period' .* or 'total'"),
        ({"retention_points": 40}, r"retention_points=40.0; pass percentage points between -10 and 15"),
        ({"retention_points": "a lot"}, r"retention_points='a lot'; pass a finite number"),
        ({"uplift": -1e9}, r"uplift=-1000000000.0; the slider runs from"),
        ({"programme_cost": 0}, r"programme_cost=0; pass a total above 0"),
        ({"discount": -0.1}, r"discount=-0.1; a discount rate is 0 or more"),
    ],
)
def test_roiwhatif_bad_arguments(data, roi, kwargs, match):
    kwargs = {"roi": roi, **kwargs}
    with pytest.raises(ParameterError, match=match):
        RoiWhatIf(data, **kwargs)


def test_roiwhatif_roi_of_other_data(roi):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = kt.sample.generate(n_accounts=20, seed=3)
    with pytest.raises(ParameterError, match=r"roi was computed on other data: \d+ of its accounts"):
        RoiWhatIf(other, roi=roi)
