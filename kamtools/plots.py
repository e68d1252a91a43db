"""Matplotlib figures, one function per chart; each returns the Figure.

The figures are made without pyplot (``matplotlib.figure.Figure``), so no
global state builds up when a report draws hundreds of them; Jupyter shows a
returned Figure as usual.
"""

from __future__ import annotations

import pandas as pd

from kamtools.exceptions import ParameterError

__all__ = ["kpi_trend", "scorecard_table", "pillar_scores"]

RAG_COLOURS = {"red": "#d9534f", "amber": "#f0ad4e", "green": "#5cb85c"}
RAG_FILLS = {"red": "#f8d7da", "amber": "#fff3cd", "green": "#d1e7dd"}


def _figure(figsize):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _one(frame: pd.DataFrame, what: str, **eq) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for col, val in eq.items():
        mask &= frame[col] == val
    out = frame[mask]
    if out.empty:
        shown = ", ".join(f"{k}={v!r}" for k, v in eq.items())
        raise ParameterError(f"{what}: nothing for {shown}.")
    return out


def kpi_trend(values: pd.DataFrame, *, entity: str, kpi: str, data=None, segment: str | None = "industry", ax=None):
    """One KPI over time for one account, against its segment's middle half.

    Parameters
    ----------
    values : DataFrame
        A :func:`kamtools.compute` result by account.
    entity : str
        The account to draw.
    kpi : str
        The KPI key.
    data : KamData, optional
        Needed for the segment band.
    segment : str or None
        Accounts column defining peers; the band spans their 25th to 75th
        percentile and the dashed line is their median. ``None``: no band.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from kamtools.kpi import benchmark, get

    spec = get(kpi)
    v = values[values["kpi"] == kpi]
    own = _one(v, "kpi_trend", entity=entity).sort_values("period")
    fig, ax = (ax.figure, ax) if ax is not None else _figure((7, 3.5))
    x = own["period"].dt.to_timestamp(how="end")
    if segment is not None and data is not None:
        b = benchmark(v, data, segment=segment)
        seg = own.merge(b[b["entity"] == entity][["period", "segment"]], on="period")["segment"].iloc[0]
        band = (
            b[b["segment"] == seg][["period", "segment_p25", "segment_median", "segment_p75"]]
            .drop_duplicates("period")
            .sort_values("period")
        )
        bx = band["period"].dt.to_timestamp(how="end")
        ax.fill_between(bx, band["segment_p25"], band["segment_p75"], color="#cfd8e3", label=f"{seg}: middle half")
        ax.plot(bx, band["segment_median"], color="#6c7a89", linestyle="--", linewidth=1, label=f"{seg}: median")
    ax.plot(x, own["value"], color="#1f4e79", marker="o", linewidth=2, label=str(entity))
    ax.set_title(f"{spec.name} — {entity}")
    ax.set_ylabel(spec.unit)
    if spec.unit == "share":
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(loc="best", frameon=False, fontsize="small")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _latest(frame: pd.DataFrame, entity, period):
    f = _one(frame, "scorecard", entity=entity)
    period = f["period"].max() if period is None else pd.Period(period, freq=f["period"].dt.freq)
    return _one(f, "scorecard", period=period), period


def scorecard_table(card, *, entity: str, period=None, ax=None):
    """The scorecard of one entity as a table: KPI, value, target, score, coloured by RAG.

    Parameters
    ----------
    card : Scorecard
    entity : str
    period : str or Period, optional
        Default: the last period.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from kamtools.kpi import get

    k, period = _latest(card.kpis, entity, period)
    k = k.sort_values(["pillar", "kpi"])
    rows = [
        [p, get(kpi).name, _fmt(v, get(kpi).unit), _fmt(t, get(kpi).unit), "" if pd.isna(s) else f"{s:.0f}"]
        for p, kpi, v, t, s in k[["pillar", "kpi", "value", "target", "score"]].itertuples(index=False)
    ]
    fig, ax = (ax.figure, ax) if ax is not None else _figure((8, 0.4 * len(rows) + 1))
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=["pillar", "KPI", "value", "target", "score"], loc="upper center",
                     cellLoc="left", colLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    for i, colour in enumerate(k["rag"], start=1):
        for j in range(5):
            table[i, j].set_facecolor(RAG_FILLS.get(colour, "white"))
    ax.set_title(f"Scorecard — {entity}, {period}")
    return fig


def pillar_scores(card, *, entity: str, period=None, ax=None):
    """The 3R+1 pillar scores of one entity as bars coloured by RAG, weights in the labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    p, period = _latest(card.pillars, entity, period)
    order = ["relationships", "revenue", "retention", "learning"]
    p = p.set_index("pillar").reindex([x for x in order if x in set(p["pillar"])])
    fig, ax = (ax.figure, ax) if ax is not None else _figure((6, 2.8))
    labels = [f"{name} ({w:.0f}%)" if w > 0 else f"{name} (beside)" for name, w in p["weight"].items()]
    ax.barh(labels, p["score"], color=[RAG_COLOURS.get(c, "#999999") for c in p["rag"]])
    for y, s in enumerate(p["score"]):
        if pd.notna(s):
            ax.text(min(s + 1, 95), y, f"{s:.0f}", va="center")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("score (0-100)")
    overall = _one(card.overall, "pillar_scores", entity=entity, period=period)["score"].iloc[0]
    ax.set_title(f"Pillar scores — {entity}, {period}: overall {overall:.0f}")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _fmt(x, unit: str) -> str:
    if pd.isna(x):
        return "–"
    if unit == "share":
        return f"{x:.1%}"
    if unit == "currency":
        return f"{x:,.0f}"
    return f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"
