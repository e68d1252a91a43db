"""Plots draw the numbers they are given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import kamtools as kt
from kamtools.exceptions import ParameterError


@pytest.fixture
def data():
    from conftest import _tiny

    return kt.load(_tiny(), currency="EUR")


def test_kpi_trend_draws_the_account_and_its_segment_band(data):
    v = kt.compute(data, ["revenue"], period="Q")
    fig = kt.plots.kpi_trend(v, entity="A3", kpi="revenue", data=data, segment="industry")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    # A3: 800 in Q1, nothing in Q2, 950 in Q3
    assert lines["A3"].get_ydata().tolist() == [800.0, 0.0, 950.0]
    # Retail peers A2 (300, 0, 0) and A3: medians (300 + 800) / 2, 0, (0 + 950) / 2
    assert lines["Retail: median"].get_ydata().tolist() == [550.0, 0.0, 475.0]
    assert ax.get_title() == "Revenue — A3"


def test_kpi_trend_unknown_account(data):
    v = kt.compute(data, ["revenue"], period="Q")
    with pytest.raises(ParameterError, match="kpi_trend: nothing for entity='A9'"):
        kt.plots.kpi_trend(v, entity="A9", kpi="revenue")


def test_scorecard_figures():
    from kamtools.kpi._registry import REGISTRY

    spec = dict(category="revenue", level="customer", driver="financial", definition="t", formula="t",
                unit="share", tables=("transactions",), provider="customer", cadence="Q", timing="lagging",
                direction="higher", replace=True)
    kt.kpi.register("t_a", pillar="relationships", name="A share", **spec)(None)
    kt.kpi.register("t_b", pillar="revenue", name="B share", **spec)(None)
    try:
        v = pd.DataFrame({"entity": "X", "period": pd.PeriodIndex(["2024Q4"] * 2, freq="Q"),
                          "kpi": ["t_a", "t_b"], "value": [0.5, 0.95]})
        card = kt.scorecard(v, targets={"t_a": 1.0, "t_b": 1.0}, weights={"relationships": 1, "revenue": 1})
        table = kt.plots.scorecard_table(card, entity="X")
        cells = table.axes[0].tables[0].get_celld()
        assert cells[1, 2].get_text().get_text() == "50.0%" and cells[1, 4].get_text().get_text() == "50"
        assert cells[2, 4].get_text().get_text() == "95"
        bars = kt.plots.pillar_scores(card, entity="X")
        heights = [p.get_width() for p in bars.axes[0].patches]
        assert heights == [50.0, 95.0]
        assert bars.axes[0].get_title() == "Pillar scores — X, 2024Q4: overall 72"  # (50 + 95) / 2 = 72.5
        assert np.allclose(card.overall["score"], 72.5)
    finally:
        REGISTRY.pop("t_a"), REGISTRY.pop("t_b")
