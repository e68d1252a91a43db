"""Interactive exploration in JupyterLab: ipywidgets over kamtools' functions.

Four widgets, each a thin layer over functions of the package:

- :class:`AccountExplorer` — one account's KPIs against its segment
  (:func:`kamtools.compute`, :func:`kamtools.kpi.benchmark`,
  :func:`kamtools.plots.kpi_trend`);
- :class:`ScorecardDesigner` — choose KPIs, targets and pillar weights and
  watch red/amber/green change (:func:`kamtools.scorecard`,
  :func:`kamtools.check_kpi_set`, :func:`kamtools.plots.pillar_scores`), then
  export the targets as a CSV file that :func:`kamtools.scorecard.read_targets`
  reads;
- :class:`PortfolioMap` — the key-account selection matrix, account
  attractiveness against the supplier's position; picking an account opens it
  in an :class:`AccountExplorer`;
- :class:`RoiWhatIf` — margin, CLV and ROI when retention, uplift or
  programme cost change (:func:`kamtools.roi.programme_roi`,
  :func:`kamtools.roi.what_if`).

Every widget is an ``ipywidgets.VBox`` (a ``DOMWidget``), so JupyterLab shows it
as the value of a cell. Its controls are public attributes (``.account``,
``.kpis``, ``.periods``, ...): set their ``.value`` from code and the widget
updates as if the analyst had clicked. The last computed DataFrame is kept on
``.table``; the KPI values a widget works on are on ``.values``.

A widget computes :func:`kamtools.compute` once, when it is made (or takes a
result you computed already, ``values=``), and an update only filters and
draws, so it stays responsive: on the 200-account sample an update takes well
under half a second (``benchmarks/bench_widgets.py`` measures it).

Examples
--------
>>> import warnings
>>> import kamtools as kt
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore")
...     data = kt.sample.load()
>>> values = kt.compute(data, ["revenue", "gross_margin_pct"], period="Y")
>>> explorer = kt.widgets.AccountExplorer(data, values=values, account="A0001")
>>> explorer.account.value = "A0004"          # what picking an account does
>>> explorer.table[["kpi", "value", "percentile"]].round(3)
                kpi      value  percentile
0           revenue  525517.55      42.308
1  gross_margin_pct       0.37      50.000
"""

from __future__ import annotations

import difflib
import html
import io
import warnings
from collections.abc import Mapping
from contextlib import contextmanager

import ipywidgets as widgets
import numpy as np
import pandas as pd

from kamtools.exceptions import KamtoolsError, ParameterError

__all__ = ["AccountExplorer", "PortfolioMap", "RoiWhatIf", "ScorecardDesigner"]

#: At most this many KPIs are drawn in the explorer's trend plot (the table shows all).
MAX_PLOTS = 3
#: The value of the explorer's "compare with" picker that overlays the segment median.
SEGMENT = "segment"
#: Quadrants of the portfolio map: (attractiveness high?, position strong?) -> name.
QUADRANTS = {
    (True, True): "strategic",
    (True, False): "develop",
    (False, True): "maintain",
    (False, False): "opportunistic",
}
_QUADRANT_ORDER = ["strategic", "develop", "maintain", "opportunistic"]
_RAG_FILLS = {"red": "#f8d7da", "amber": "#fff3cd", "green": "#d1e7dd"}
_DPI = 80
_EXPLORER_KPIS = ("revenue", "gross_margin_pct", "share_of_wallet")
_PILLAR_ORDER = ("revenue", "relationships", "retention", "learning")


# --------------------------------------------------------------------------- shared helpers


def _load_values(data, values, *, period, as_of):
    """The data set and the compute result a widget works on, plus KpiWarning messages."""
    from kamtools.io import load
    from kamtools.kpi import KpiWarning, compute

    data = load(data)
    notes: list[str] = []
    if values is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = compute(data, by="account", period=period, as_of=as_of)
        for w in caught:
            if issubclass(w.category, KpiWarning):
                notes.append(str(w.message))
            else:  # not ours to swallow
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return data, values, notes
    if not isinstance(values, pd.DataFrame):
        raise ParameterError(f"values must be a kt.compute(...) result (a DataFrame), not {type(values).__name__}.")
    missing = [c for c in ("entity", "period", "kpi", "value") if c not in values.columns]
    if missing:
        raise ParameterError(
            f"values lacks the column(s) {', '.join(missing)}; pass a kt.compute(data, by='account') result."
        )
    if values.empty:
        raise ParameterError("values is empty; pass a kt.compute(data, by='account') result with rows.")
    if not isinstance(values["period"].dtype, pd.PeriodDtype):
        raise ParameterError("values['period'] must hold pandas Periods, as kt.compute returns them.")
    ids = set(data.accounts["account_id"])
    strangers = pd.unique(values.loc[~values["entity"].isin(ids), "entity"])
    if len(strangers):
        shown = ", ".join(map(repr, strangers[:3]))
        raise ParameterError(
            f"values holds {len(strangers)} entit(ies) that are not account ids of data ({shown}); "
            "the widgets need KPIs by account: pass kt.compute(data, by='account')."
        )
    return data, values, notes


def _check_account(account_id, ids, what="account") -> str:
    if account_id in ids:
        return account_id
    same = [str(i) for i in ids if str(i).strip().lower() == str(account_id).strip().lower()]
    close = same or difflib.get_close_matches(str(account_id), [str(i) for i in ids], n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ParameterError(
        f"{what}={account_id!r} is not an account of this data set.{hint} See data.accounts.account_id."
    )


def _check_kpis(kpis, available, what="kpis") -> list[str]:
    keys = [kpis] if isinstance(kpis, str) else list(kpis)
    bad = [k for k in keys if k not in available]
    if bad:
        close = difflib.get_close_matches(bad[0], list(available), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ParameterError(
            f"{what}: {', '.join(map(repr, bad))} not in the computed values.{hint} "
            "Compute them first (kt.compute), or pick from kt.kpis()."
        )
    return keys


def _fmt(x, unit: str = "") -> str:
    """A KPI value for a table cell, in its unit."""
    if x is None or pd.isna(x):
        return "–"
    if unit == "share":
        return f"{x:.1%}"
    if unit == "currency":
        return f"{x:,.0f}"
    return f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _html_table(header, rows, *, cls="", fills=None) -> str:
    """A small HTML table; cells are escaped; ``fills`` gives a background per row."""
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        bg = f" style='background:{fills[i]}'" if fills and fills[i] else ""
        cells = "".join(f"<td style='padding:2px 8px'>{html.escape(str(c))}</td>" for c in row)
        body.append(f"<tr{bg}>{cells}</tr>")
    return f"<table class='{cls}' style='border-collapse:collapse'><tr>{head}</tr>{''.join(body)}</table>"


def _error(message: str) -> str:
    return f"<span style='color:#b02a37'>{html.escape(message)}</span>"


def _account_label(row) -> str:
    star = " ★" if row.get("is_key_account") is True else ""
    return f"{row['account_name']} ({row['account_id']}){star}"


def _kpi_specs(keys):
    from kamtools.kpi import get

    return {k: get(k) for k in keys}


class _Base(widgets.VBox):
    """Shared machinery: quiet updates while several controls change, errors shown in the widget."""

    _muted = 0

    @contextmanager
    def _quiet(self):
        self._muted += 1
        try:
            yield
        finally:
            self._muted -= 1

    def _changed(self, change=None):
        if not self._muted:
            self.update()

    def _watch(self, *controls, name="value"):
        for c in controls:
            c.observe(self._changed, names=name)

    def update(self):
        """Recompute and redraw from the controls' current values."""
        try:
            self._update()
        except KamtoolsError as err:  # a foreseeable problem: say it in the widget
            self.status.value = _error(str(err))


# --------------------------------------------------------------------------- account explorer


class AccountExplorer(_Base):
    """One account's KPIs against its segment, as a table and a trend plot that update live.

    Pick an account (type in the search box to narrow the list), a period
    range and KPIs. The table shows, for the last period of the range, each
    KPI's value, its percentile within the segment (0-100; a high percentile
    means a high value, whatever the KPI's direction) and the segment's
    quartiles; the plot draws each KPI over the range. The "compare with"
    picker overlays a second account, or the segment median with the
    segment's middle half.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    values : DataFrame, optional
        A :func:`kamtools.compute` result by account, to share one
        computation between widgets. Default: computed here, once.
    period : {"M", "Q", "Y"}
        Period length, when ``values`` is computed here.
    as_of : date, optional
        Passed to :func:`kamtools.compute` when ``values`` is computed here.
    account : str, optional
        Account id to show first. Default: the first key account.
    kpis : list of str, optional
        KPIs to show first. Default: revenue, gross margin % and share of
        wallet, where computed.
    compare : str, optional
        ``"segment"`` or an account id.
    segment : str
        Column of the accounts table that defines peers (``industry``,
        ``region``, ...).

    Attributes
    ----------
    search, account, compare, segment, periods, kpis : ipywidgets
        The controls; set ``.value`` to drive the widget from code.
        ``periods.value`` is a pair of period labels, e.g. ``("2024Q1", "2025Q4")``.
    table : DataFrame
        One row per chosen KPI at the last period of the range: ``kpi``,
        ``name``, ``unit``, ``period``, ``value``, ``percentile``,
        ``segment``, ``segment_p25``, ``segment_median``, ``segment_p75``,
        ``segment_n`` (accounts of the segment with a value) and ``compare``
        (the compared account's value, or the segment median).
    trend : DataFrame
        The same columns plus ``entity``, for every period of the range.
    values : DataFrame
        The KPI values of all accounts the widget works on.

    Notes
    -----
    Percentiles and quartiles come from :func:`kamtools.kpi.benchmark`,
    computed for all accounts once per segment column and cached.

    Examples
    --------
    >>> import warnings
    >>> import kamtools as kt
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     data = kt.sample.load()
    >>> values = kt.compute(data, ["revenue", "nps"], period="Y")
    >>> ex = kt.widgets.AccountExplorer(data, values=values, account="A0001", kpis=["revenue", "nps"],
    ...                                 compare="segment")
    >>> ex
    AccountExplorer(account='A0001', compare='segment', kpis=['revenue', 'nps'], periods=2021 to 2025, \
segment='industry')
    >>> ex.periods.value = ("2023", "2024")
    >>> ex.table[["kpi", "value", "percentile", "compare"]].round(1)
           kpi      value  percentile   compare
    0  revenue  2191265.1        89.6  452233.8
    1      nps     -100.0        17.5     -16.7
    """

    def __init__(
        self,
        data,
        *,
        values=None,
        period: str = "Q",
        as_of=None,
        account: str | None = None,
        kpis=None,
        compare: str | None = None,
        segment: str = "industry",
    ):
        self.data, self.values, self._notes = _load_values(data, values, period=period, as_of=as_of)
        acc = self.data.accounts
        self._accounts = acc.set_index("account_id", drop=False)
        self._by_kpi = {k: f.reset_index(drop=True) for k, f in self.values.groupby("kpi", sort=False)}
        self._specs = _kpi_specs(self._by_kpi)
        self._bench: dict[str, dict[str, pd.DataFrame]] = {}
        labels = [str(p) for p in sorted(self.values["period"].unique())]
        self._freq = self.values["period"].dt.freq
        ids = list(acc["account_id"])
        if account is None:
            key = acc["is_key_account"].fillna(False).astype(bool)
            account = acc.loc[key, "account_id"].iloc[0] if key.any() else ids[0]
        account = _check_account(account, set(ids))
        if kpis is None:
            kpis = [k for k in _EXPLORER_KPIS if k in self._by_kpi] or list(self._by_kpi)[:3]
        kpis = _check_kpis(kpis, self._by_kpi)
        if compare is not None and compare != SEGMENT:
            compare = _check_account(compare, set(ids), "compare")
        seg_cols = self._segment_columns(acc)
        if segment not in seg_cols:
            raise ParameterError(
                f"segment={segment!r}: use a column of accounts that groups accounts: "
                f"{', '.join(seg_cols) or '(none)'}."
            )

        self._options = [(_account_label(r), r["account_id"]) for r in acc.to_dict("records")]
        self.search = widgets.Text(placeholder="search accounts by id or name", description="Search",
                                   layout=widgets.Layout(width="280px"))
        self.account = widgets.Dropdown(options=self._options, value=account, description="Account",
                                        layout=widgets.Layout(width="360px"))
        self.compare = widgets.Dropdown(
            options=[("(none)", None), ("segment median", SEGMENT), *self._options], description="Compare",
            layout=widgets.Layout(width="360px"),
        )
        self.compare.index = 0 if compare is None else None  # value None alone would show no selection
        if compare is not None:
            self.compare.value = compare
        self.segment = widgets.Dropdown(options=seg_cols, value=segment, description="Segment",
                                        layout=widgets.Layout(width="280px"))
        self.periods = widgets.SelectionRangeSlider(
            options=labels, index=(0, len(labels) - 1), description="Periods", continuous_update=False,
            layout=widgets.Layout(width="640px"),
        )
        self.kpis = widgets.SelectMultiple(
            options=[(f"{s.name} ({s.pillar})", k) for k, s in sorted(
                self._specs.items(), key=lambda ks: _PILLAR_ORDER.index(ks[1].pillar))], value=tuple(kpis),
            description="KPIs", rows=8, layout=widgets.Layout(width="420px"),
        )
        self.status = widgets.HTML()
        self.table_html = widgets.HTML()
        self.plot = widgets.Image(format="png", layout=widgets.Layout(max_width="820px"))
        for w, cls in [(self.account, "kamtools-account"), (self.compare, "kamtools-compare"),
                       (self.table_html, "kamtools-table"), (self.plot, "kamtools-plot"),
                       (self.status, "kamtools-status"), (self.search, "kamtools-search")]:
            w.add_class(cls)
        self.table = pd.DataFrame()
        self.trend = pd.DataFrame()
        super().__init__(children=[
            widgets.HBox([self.search, self.account, self.compare]),
            widgets.HBox([self.segment, self.periods]),
            widgets.HBox([self.kpis, self.status]),
            self.table_html,
            self.plot,
        ])
        self.add_class("kamtools-explorer")
        self.search.observe(self._on_search, names="value")
        self._watch(self.account, self.compare, self.segment, self.periods, self.kpis)
        self.update()

    @staticmethod
    def _segment_columns(acc: pd.DataFrame) -> list[str]:
        out = []
        for c in acc.columns:
            if c in ("account_id", "account_name"):
                continue
            s = acc[c]
            if (pd.api.types.is_string_dtype(s) or pd.api.types.is_bool_dtype(s)) and 2 <= s.nunique() <= 50:
                out.append(c)
        return out

    # -- public -------------------------------------------------------------------------------
    def select(self, account_id: str) -> None:
        """Show an account: what picking it in the list does (the search filter is cleared)."""
        account_id = _check_account(account_id, set(self._accounts.index))
        if self.search.value:
            with self._quiet():
                self.search.value = ""
                self.account.options = self._options
        if self.account.value == account_id:
            self.update()
        else:
            self.account.value = account_id

    def __repr__(self) -> str:
        lo, hi = self.periods.value
        return (
            f"AccountExplorer(account={self.account.value!r}, compare={self.compare.value!r}, "
            f"kpis={list(self.kpis.value)!r}, periods={lo} to {hi}, segment={self.segment.value!r})"
        )

    # -- updates ------------------------------------------------------------------------------
    def _on_search(self, change):
        needle = str(change["new"]).strip().lower()
        keep = [o for o in self._options if needle in o[0].lower()] if needle else self._options
        if not keep:
            self.status.value = _error(f"No account matches {change['new']!r}.")
            return
        current = self.account.value
        with self._quiet():
            self.account.options = keep
            if current in {v for _, v in keep}:
                self.account.value = current
        if self.account.value != current:
            self.update()

    def _segment_frame(self, kpi: str, seg_col: str, seg_value) -> pd.DataFrame:
        """kt.kpi.benchmark rows of one KPI for the accounts of one segment.

        The benchmark of all KPIs is computed once per segment column, then cached.
        """
        from kamtools.kpi import benchmark

        if seg_col not in self._bench:
            b = benchmark(self.values, self.data, segment=seg_col)
            self._bench[seg_col] = {k: f.reset_index(drop=True) for k, f in b.groupby("kpi", sort=False)}
        b = self._bench[seg_col][kpi]
        return b[b["segment"].isna()] if pd.isna(seg_value) else b[(b["segment"] == seg_value).fillna(False)]

    def _update(self):
        a = self.account.value
        kpis = list(self.kpis.value)
        seg_col = self.segment.value
        seg_value = self._accounts.at[a, seg_col]
        lo, hi = (pd.Period(p, freq=self._freq) for p in self.periods.value)
        compare = self.compare.value
        info = self._accounts.loc[a]
        head = f"<b>{html.escape(_account_label(info))}</b><br>{html.escape(seg_col)}: {html.escape(str(seg_value))}"
        if not kpis:
            self.table, self.trend = pd.DataFrame(), pd.DataFrame()
            self.table_html.value = ""
            self.plot.value = b""
            self.status.value = head + "<br>" + _error("Choose at least one KPI.")
            return

        parts = []
        for k in kpis:
            b = self._segment_frame(k, seg_col, seg_value)
            own = b[(b["entity"] == a) & (b["period"] >= lo) & (b["period"] <= hi)]
            if compare == SEGMENT:
                cmp = own["segment_median"]
            elif compare is not None:
                f = self._by_kpi[k]
                other = f[f["entity"] == compare].set_index("period")["value"]
                cmp = own["period"].map(other)
            else:
                cmp = pd.Series(np.nan, index=own.index)
            parts.append(own.assign(compare=cmp.astype("float64")))
        cols = ["entity", "period", "kpi", "value", "segment", "percentile", "segment_p25",
                "segment_median", "segment_p75", "segment_n", "compare"]
        trend = pd.concat(parts, ignore_index=True)[cols]
        self.trend = trend
        last = trend[trend["period"] == hi].set_index("kpi")
        table = pd.DataFrame({"kpi": kpis})
        table["name"] = [self._specs[k].name for k in kpis]
        table["unit"] = [self._specs[k].unit for k in kpis]
        table["period"] = pd.Series([hi] * len(kpis), dtype=self.values["period"].dtype)
        for c in cols[3:]:
            table[c] = table["kpi"].map(last[c]) if len(last) else np.nan
        table["segment"] = table["segment"].astype("object").fillna(seg_value)
        self.table = table

        notes = [f"{len(kpis) - MAX_PLOTS} more KPI(s) in the table, not plotted."] if len(kpis) > MAX_PLOTS else []
        self.status.value = head + "".join(f"<br><i>{html.escape(n)}</i>" for n in notes + self._notes[:1])
        self._render_table(a, hi, seg_col, seg_value, compare)
        self._render_plot(a, kpis, lo, hi, seg_col, seg_value, compare)

    def _render_table(self, a, hi, seg_col, seg_value, compare):
        t = self.table
        cmp_name = {None: "", SEGMENT: "segment median"}.get(compare, str(compare))
        header = ["KPI", "value", "percentile", "segment p25", "median", "p75", "n"]
        if compare is not None:
            header.append(f"compare: {cmp_name}")
        rows = []
        for r in t.itertuples(index=False):
            row = [r.name, _fmt(r.value, r.unit), "–" if pd.isna(r.percentile) else f"{r.percentile:.0f}",
                   _fmt(r.segment_p25, r.unit), _fmt(r.segment_median, r.unit), _fmt(r.segment_p75, r.unit),
                   "–" if pd.isna(r.segment_n) else f"{int(r.segment_n)}"]
            if compare is not None:
                row.append(_fmt(r.compare, r.unit))
            rows.append(row)
        caption = (f"<div class='kamtools-caption'><b>{html.escape(str(a))}</b> · {html.escape(str(hi))} · "
                   f"against {html.escape(seg_col)} = {html.escape(str(seg_value))}</div>")
        self.table_html.value = caption + _html_table(header, rows, cls="kamtools-values")

    def _render_plot(self, a, kpis, lo, hi, seg_col, seg_value, compare):
        from matplotlib.figure import Figure

        from kamtools.plots import kpi_trend

        shown = kpis[:MAX_PLOTS]
        height = 2.4 * len(shown) + 0.4
        fig = Figure(figsize=(8.5, height))
        axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
        for ax, k in zip(axes, shown, strict=True):
            if compare == SEGMENT:
                b = self._segment_frame(k, seg_col, seg_value)
                v = b.loc[(b["period"] >= lo) & (b["period"] <= hi), list(self.values.columns)]
            else:
                f = self._by_kpi[k]
                v = f[(f["entity"] == a) & (f["period"] >= lo) & (f["period"] <= hi)]
            try:
                kpi_trend(v, entity=a, kpi=k, data=self.data if compare == SEGMENT else None,
                          segment=seg_col if compare == SEGMENT else None, ax=ax)
            except ParameterError:
                ax.set_title(f"{self._specs[k].name}: no values for {a} in {lo} to {hi}", y=1.0)
                continue
            ax.set_title(ax.get_title(), y=1.0)  # a fixed title position spares matplotlib a costly layout pass
            if compare not in (None, SEGMENT):
                f = self._by_kpi[k]
                o = f[(f["entity"] == compare) & (f["period"] >= lo) & (f["period"] <= hi)].sort_values("period")
                ax.plot(o["period"].dt.to_timestamp(how="end"), o["value"], color="#c55a11", marker="s",
                        linewidth=1.5, linestyle="-", label=str(compare))
                ax.legend(loc="best", frameon=False, fontsize="small")
        fig.subplots_adjust(left=0.12, right=0.97, top=1 - 0.35 / height, bottom=0.45 / height, hspace=0.5)
        self.plot.value = _png(fig)


# --------------------------------------------------------------------------- scorecard designer

#: A sound default KPI set: all four 3R+1 pillars, leading and lagging, the vital few.
DEFAULT_SCORECARD_KPIS = (
    "engagement_breadth", "executive_sponsorship", "revenue_growth_rate", "gross_margin_pct",
    "net_revenue_retention", "nps", "training_completion_rate",
)
_R_PILLARS = ("relationships", "revenue", "retention")


def _nice_step(span: float) -> float:
    raw = span / 200 if span > 0 else 0.01
    mag = 10 ** np.floor(np.log10(raw))
    return float(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))


def _readout(unit: str, step: float) -> str:
    if unit == "share":
        return ".1%" if step >= 0.001 else ".2%"
    if step >= 1:
        return ",.0f"
    return f".{max(0, int(-np.floor(np.log10(step))))}f"


class ScorecardDesigner(_Base):
    """Design a 3R+1 scorecard: KPIs, targets and weights, with red/amber/green live.

    Choose KPIs (the :func:`kamtools.check_kpi_set` warnings show at once),
    move each KPI's target and its weight within its pillar, set the pillar
    weights (by default they follow the account manager's tenure, the 3R+1
    preset; switch to "fixed" to set them with the sliders) and the
    red/amber/green thresholds, and watch the scores of the accounts change.
    Export the targets as a CSV file (columns ``kpi``, ``target``,
    ``floor``, ``weight``) that :func:`kamtools.scorecard.read_targets` and
    ``kt.scorecard(values, targets=path)`` read.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    values : DataFrame, optional
        A :func:`kamtools.compute` result by account. Default: computed here.
    period : {"M", "Q", "Y"}
    as_of : date, optional
        Passed to :func:`kamtools.compute` when ``values`` is computed here.
    kpis : list of str, optional
        The KPIs to start with. Default: those of ``targets``, else a sound
        set over the four pillars (``DEFAULT_SCORECARD_KPIS``).
    targets : mapping, DataFrame or CSV path, optional
        Targets to start from (see :func:`kamtools.scorecard.read_targets`).
        A KPI without one starts with its target at the 75th percentile of
        its values over the accounts scored and all periods (25th where lower
        is better; the mean where that percentile is the smallest or largest
        value, as with 0/1 measures), and its floor at the 10th percentile
        (90th), or where that is not worse than the target, at
        :func:`kamtools.scorecard`'s default.
    weights : "tenure" or mapping
        Pillar weights to start from.
    thresholds : mapping, optional
        Red/amber/green score thresholds, ``{"green": 90, "amber": 70}`` by default.
    rule : {"score", "any_red"}
    key_accounts : bool
        Score key accounts only (default) or all accounts.
    manager : bool
        Check the KPI set as a manager's scorecard (flags measures outside the
        manager's control).

    Attributes
    ----------
    kpis, period, weights_mode, pillar_sliders, target_sliders, floor_sliders, weight_sliders, thresholds, rule, \
account, key_accounts
        The controls (``target_sliders``, ``floor_sliders`` and
        ``weight_sliders`` map each KPI to its slider; ``pillar_sliders`` each
        R pillar; ``thresholds`` is the (amber, green) range).
    targets : DataFrame
        The design: kpi, target, floor, weight.
    card : Scorecard or None
        The scorecard of the chosen period (and the one before, for the trend).
    table : DataFrame
        One row per account for the chosen period, worst first: entity,
        account_name, score, rag, trend, band, and one column per pillar score.
    problems : list of str
        The warnings of :func:`kamtools.check_kpi_set` for the chosen KPIs,
        shown in the ``checks`` box beside them.

    Examples
    --------
    >>> import warnings
    >>> import kamtools as kt
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     data = kt.sample.load()
    >>> values = kt.compute(data, ["revenue_growth_rate", "nps"], period="Y")
    >>> d = kt.widgets.ScorecardDesigner(data, values=values, targets={"revenue_growth_rate": 0.05, "nps": 40})
    >>> d.problems[0]
    'No KPI for the pillar(s) relationships, learning: a 3R+1 scorecard covers all four.'
    >>> d.target_sliders["nps"].value = 20
    >>> d.targets
                       kpi  target  floor  weight
    0  revenue_growth_rate    0.05    0.0     1.0
    1                  nps   20.00    0.0     1.0
    >>> d.table["rag"].value_counts().to_dict()
    {'red': 28, 'green': 5}
    """

    def __init__(
        self,
        data,
        *,
        values=None,
        period: str = "Q",
        as_of=None,
        kpis=None,
        targets=None,
        weights="tenure",
        thresholds=None,
        rule: str = "score",
        key_accounts: bool = True,
        manager: bool = False,
    ):
        from kamtools.scorecard import DEFAULT_BANDS, read_targets

        self.data, self.values, self._notes = _load_values(data, values, period=period, as_of=as_of)
        self.manager = bool(manager)
        acc = self.data.accounts
        self._accounts = acc.set_index("account_id", drop=False)
        self._by_kpi = {k: f.reset_index(drop=True) for k, f in self.values.groupby("kpi", sort=False)}
        self._specs = _kpi_specs(self._by_kpi)
        self._freq = self.values["period"].dt.freq
        labels = [str(p) for p in sorted(self.values["period"].unique())]

        given = pd.DataFrame(columns=["kpi", "target", "floor", "weight"])
        if targets is not None:
            given = read_targets(targets)
            if "entity" in given.columns:
                own = given["entity"].notna()
                if own.any():
                    warnings.warn(
                        f"ScorecardDesigner: {int(own.sum())} per-account target row(s) left out; the designer "
                        "edits the general targets only.", UserWarning, stacklevel=2,
                    )
                given = given[~own]
            _check_kpis(given["kpi"], self._by_kpi, "targets")
        self._given = given.set_index("kpi")
        if kpis is None:
            kpis = list(given["kpi"]) or [k for k in DEFAULT_SCORECARD_KPIS if k in self._by_kpi]
        kpis = _check_kpis(kpis, self._by_kpi)
        if rule not in ("score", "any_red"):
            raise ParameterError(f"rule={rule!r}; use 'score' or 'any_red'.")
        bands = dict(DEFAULT_BANDS if thresholds is None else thresholds)
        if not {"green", "amber"} <= set(bands) or not 0 <= bands["amber"] <= bands["green"] <= 100:
            raise ParameterError(
                "thresholds must give 0 <= 'amber' <= 'green' <= 100, e.g. {'green': 90, 'amber': 70}."
            )
        has_tenure = self.data.managers is not None and "manager_id" in acc.columns
        if isinstance(weights, str) and weights == "tenure":
            if not has_tenure:
                raise ParameterError(
                    "weights='tenure' needs the managers table and accounts.manager_id; "
                    "pass weights={'relationships': 40, 'revenue': 30, 'retention': 30}."
                )
            mode, fixed = "tenure", {"relationships": 40, "revenue": 30, "retention": 30}
        elif isinstance(weights, Mapping) and set(weights) <= set(_R_PILLARS):
            mode, fixed = "fixed", {p: float(weights.get(p, 0)) for p in _R_PILLARS}
        else:
            raise ParameterError("weights must be 'tenure' or a mapping of relationships/revenue/retention to weights.")

        # the accounts scored
        key = acc["is_key_account"].fillna(False).astype(bool)
        self._key_ids = set(acc.loc[key, "account_id"])
        self._all_ids = set(acc["account_id"])

        self.kpis = widgets.SelectMultiple(
            options=sorted(((f"{s.pillar} · {s.name}", k) for k, s in self._specs.items())),
            value=tuple(kpis), description="KPIs", rows=10, layout=widgets.Layout(width="440px"),
        )
        self.period = widgets.Dropdown(options=labels, value=labels[-1], description="Period",
                                       layout=widgets.Layout(width="200px"))
        self.key_accounts = widgets.Checkbox(value=bool(key_accounts) and bool(self._key_ids),
                                             description="key accounts only", indent=False)
        self.rule = widgets.ToggleButtons(options=[("overall from score", "score"), ("red if any KPI red", "any_red")],
                                          value=rule, style={"button_width": "140px"})
        self.weights_mode = widgets.ToggleButtons(
            options=[("by tenure (3R+1)", "tenure"), ("fixed", "fixed")], value=mode,
            style={"button_width": "130px"}, disabled=not has_tenure,
        )
        self.pillar_sliders = {
            p: widgets.FloatSlider(value=fixed[p], min=0, max=100, step=5, description=p, continuous_update=False,
                                   readout_format=".0f", style={"description_width": "100px"})
            for p in _R_PILLARS
        }
        self.thresholds = widgets.FloatRangeSlider(value=(bands["amber"], bands["green"]), min=0, max=100, step=1,
                                              description="amber, green", continuous_update=False,
                                              readout_format=".0f", style={"description_width": "100px"})
        self.problems: list[str] = []
        self.checks = widgets.HTML(layout=widgets.Layout(width="420px"))
        self.target_sliders: dict[str, widgets.FloatSlider] = {}
        self.floor_sliders: dict[str, widgets.FloatSlider] = {}
        self.weight_sliders: dict[str, widgets.FloatSlider] = {}
        self.targets_box = widgets.VBox()
        self.summary = widgets.HTML()
        self.status = widgets.HTML()
        self.account = widgets.Dropdown(description="Account", layout=widgets.Layout(width="360px"))
        self.plot = widgets.Image(format="png", layout=widgets.Layout(max_width="560px"))
        self.path = widgets.Text(value="targets.csv", description="Export to", layout=widgets.Layout(width="360px"))
        self.export_button = widgets.Button(description="Export targets", icon="download")
        self.export_status = widgets.HTML()
        for w, cls in [(self.summary, "kamtools-summary"), (self.checks, "kamtools-warnings"),
                       (self.plot, "kamtools-plot"), (self.status, "kamtools-status")]:
            w.add_class(cls)
        self.card = None
        self.table = pd.DataFrame()
        self._targets: dict[str, dict] = {}
        super().__init__(children=[
            widgets.HBox([self.kpis, self.checks]),
            widgets.HBox([self.period, self.key_accounts, self.rule]),
            widgets.HTML("<b>Targets</b>: a KPI scores 100 at its target, 0 at its floor, linear between; "
                         "its weight counts within its pillar"),
            self.targets_box,
            widgets.HTML("<b>Pillar weights</b> of the overall score"),
            widgets.HBox([self.weights_mode, self.thresholds]),
            widgets.HBox(list(self.pillar_sliders.values())),
            self.status,
            self.summary,
            widgets.HBox([widgets.VBox([self.account, self.plot])]),
            widgets.HBox([self.path, self.export_button, self.export_status]),
        ])
        self.add_class("kamtools-designer")
        with self._quiet():
            self._sync_accounts()
            self._build_target_rows()
        self.kpis.observe(self._on_kpis, names="value")
        self.key_accounts.observe(self._on_scope, names="value")
        self._watch(self.period, self.rule, self.weights_mode, self.thresholds, *self.pillar_sliders.values())
        self.account.observe(self._on_account, names="value")
        self.export_button.on_click(self._on_export)
        self.update()

    # -- public -------------------------------------------------------------------------------
    @property
    def targets(self) -> pd.DataFrame:
        """The targets of the chosen KPIs: kpi, target, floor, weight (the export's columns)."""
        rows = [{"kpi": k, **self._targets[k]} for k in self.kpis.value]
        return pd.DataFrame(rows, columns=["kpi", "target", "floor", "weight"]).astype(
            {"target": "float64", "floor": "float64", "weight": "float64"}
        )

    @property
    def design(self) -> dict:
        """Keyword arguments of :func:`kamtools.scorecard` for this design:
        ``kt.scorecard(values, data=data, **designer.design)``."""
        amber, green = self.thresholds.value
        weights = ("tenure" if self.weights_mode.value == "tenure"
                   else {p: s.value for p, s in self.pillar_sliders.items()})
        return {"targets": self.targets, "weights": weights, "thresholds": {"green": green, "amber": amber},
                "rule": self.rule.value}

    def export(self, path, *, overwrite: bool = False):
        """Write the targets as CSV (kpi, target, floor, weight); returns the path.

        The pillar weights, bands and rule are not part of a targets file: pass
        them to :func:`kamtools.scorecard` (see :attr:`design`).
        """
        from pathlib import Path

        path = Path(path)
        if path.exists() and not overwrite:
            raise ParameterError(f"export: {str(path)!r} exists; pass overwrite=True or choose another path.")
        if not self.kpis.value:
            raise ParameterError("export: no KPIs chosen; choose KPIs first.")
        if path.parent and not path.parent.exists():
            raise ParameterError(f"export: the folder {str(path.parent)!r} does not exist.")
        self.targets.to_csv(path, index=False)
        return path

    def __repr__(self) -> str:
        mode = self.weights_mode.value
        return (f"ScorecardDesigner(kpis={list(self.kpis.value)!r}, period={self.period.value}, weights={mode!r}, "
                f"accounts={'key' if self.key_accounts.value else 'all'})")

    # -- controls -----------------------------------------------------------------------------
    def _scope_ids(self):
        return self._key_ids if self.key_accounts.value else self._all_ids

    def _range(self, k: str, *points: float) -> tuple[float, float, float]:
        """Slider range of a KPI: its 2nd to 98th percentile over all accounts and periods, and a step."""
        v = self._by_kpi[k]["value"].dropna()
        lo, hi = (float(v.quantile(0.02)), float(v.quantile(0.98))) if len(v) else (0.0, 1.0)
        pts = [p for p in points if pd.notna(p)]
        lo, hi = min(lo, *pts), max(hi, *pts)
        lo = min(lo, 0.0) if lo >= 0 else lo  # measures that cannot go negative start at 0
        if hi <= lo:
            hi = lo + max(abs(lo), 1.0)
        step = _nice_step(hi - lo)
        return float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step), step

    def _default_target(self, k: str) -> dict:
        """The target, floor and weight a KPI starts with (see the class docstring)."""
        higher = self._specs[k].direction == "higher"
        if k in self._given.index:
            g = self._given.loc[k]
            target, floor, weight = float(g["target"]), float(g["floor"]), float(g["weight"])
        else:
            f = self._by_kpi[k]
            v = f.loc[f["entity"].isin(self._scope_ids()), "value"].dropna()
            if v.empty:
                v = f["value"].dropna()
            target, floor, weight = 1.0, np.nan, 1.0
            if len(v):
                target = float(v.quantile(0.75 if higher else 0.25))
                if target in (v.min(), v.max()):  # lumpy values (0/1, NPS of few answers): the mean
                    target = float(v.mean())
                f10 = float(v.quantile(0.10 if higher else 0.90))
                floor = f10 if (f10 < target if higher else f10 > target) else np.nan
        if np.isnan(floor):
            if target > 0:  # kt.scorecard's default floor: 0, or twice the target where lower is better
                floor = 0.0 if higher else 2 * target
            else:  # no default exists: the far end of the slider
                lo, hi, step = self._range(k, target)
                floor = min(lo, target - step) if higher else max(hi, target + step)
        return {"target": target, "floor": floor, "weight": weight}

    def _slider(self, k: str, field: str, lo: float, hi: float, step: float) -> widgets.FloatSlider:
        s = widgets.FloatSlider(value=self._targets[k][field], min=lo, max=hi, step=step, description=field,
                                continuous_update=False, readout_format=_readout(self._specs[k].unit, step),
                                style={"description_width": "40px"}, layout=widgets.Layout(width="300px"))
        s.observe(self._on_target(k, field), names="value")
        return s

    def _build_target_rows(self):
        rows = []
        for k in self.kpis.value:
            if k not in self._targets:
                self._targets[k] = self._default_target(k)
            if k not in self.target_sliders:
                lo, hi, step = self._range(k, self._targets[k]["target"], self._targets[k]["floor"])
                self.target_sliders[k] = self._slider(k, "target", lo, hi, step)
                self.floor_sliders[k] = self._slider(k, "floor", lo, hi, step)
                w = widgets.FloatSlider(value=self._targets[k]["weight"], min=0, max=5, step=0.5, description="weight",
                                        continuous_update=False, readout_format=".1f",
                                        style={"description_width": "45px"}, layout=widgets.Layout(width="220px"))
                w.observe(self._on_target(k, "weight"), names="value")
                self.weight_sliders[k] = w
            spec = self._specs[k]
            label = widgets.HTML(
                f"{html.escape(spec.name)}<br><small>{spec.pillar}, {spec.direction} is better</small>",
                layout=widgets.Layout(width="230px"),
            )
            rows.append(widgets.HBox([label, self.target_sliders[k], self.floor_sliders[k], self.weight_sliders[k]]))
        self.targets_box.children = rows

    def _on_target(self, k, field):
        def handler(change):
            self._targets[k][field] = float(change["new"])
            self._changed()
        return handler

    def _on_kpis(self, change):
        with self._quiet():
            self._build_target_rows()
        self._changed()

    def _on_scope(self, change):
        with self._quiet():
            self._sync_accounts()
        self._changed()

    def _sync_accounts(self):
        ids = self._scope_ids()
        acc = self._accounts[self._accounts["account_id"].isin(ids)]
        options = [(_account_label(r), r["account_id"]) for r in acc.to_dict("records")]
        current = self.account.value
        self.account.options = options
        self.account.value = current if current in ids else (options[0][1] if options else None)

    def _on_account(self, change):
        if not self._muted:
            self._render_plot()

    def _on_export(self, _button):
        try:
            path = self.export(self.path.value, overwrite=True)
        except KamtoolsError as err:
            self.export_status.value = _error(str(err))
        else:
            self.export_status.value = f"wrote {html.escape(str(path))} ({len(self.kpis.value)} KPIs)"

    # -- updates ------------------------------------------------------------------------------
    def _update(self):
        from kamtools.scorecard import KpiSetWarning, check_kpi_set, scorecard

        kpis = list(self.kpis.value)
        for p in self.pillar_sliders.values():
            p.disabled = self.weights_mode.value == "tenure"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KpiSetWarning)
            self.problems = check_kpi_set(kpis, manager=self.manager) if kpis else ["Choose KPIs."]
        self.checks.value = (
            "<b>KPI set</b><ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in self.problems) + "</ul>"
            if self.problems else "<b>KPI set</b>: sound (all pillars, leading and lagging, the vital few)."
        )
        if not kpis:
            self.card, self.table = None, pd.DataFrame()
            self.summary.value, self.plot.value = "", b""
            self.status.value = _error("Choose at least one KPI.")
            return
        period = pd.Period(self.period.value, freq=self._freq)
        ids = self._scope_ids()
        parts = [f[f["entity"].isin(ids) & f["period"].isin([period - 1, period])]
                 for k, f in self._by_kpi.items() if k in kpis]
        v = pd.concat(parts, ignore_index=True)
        self.card = scorecard(v, data=self.data, by="account", **self.design)
        o = self.card.overall
        o = o[o["period"] == period]
        p = self.card.pillars
        wide = p[p["period"] == period].pivot_table(index="entity", columns="pillar", values="score")
        table = o.merge(wide, left_on="entity", right_index=True, how="left")
        table.insert(1, "account_name", table["entity"].map(self._accounts["account_name"]))
        pillar_cols = [c for c in ("relationships", "revenue", "retention", "learning") if c in table.columns]
        keep = ["entity", "account_name", "period", "score", "rag", "trend", "band", *pillar_cols]
        self.table = table[keep].sort_values(["score", "entity"], na_position="last").reset_index(drop=True)
        self.status.value = "".join(f"<i>{html.escape(n)}</i>" for n in self._notes[:1])
        self._render_summary(period, pillar_cols)
        self._render_plot()

    def _render_summary(self, period, pillar_cols):
        t = self.table
        counts = t["rag"].value_counts()
        unscored = int(t["score"].isna().sum())
        mix = " · ".join(
            f"<span style='background:{_RAG_FILLS[c]};padding:0 6px'>{int(counts.get(c, 0))} {c}</span>"
            for c in ("green", "amber", "red")
        )
        scope = "key accounts" if self.key_accounts.value else "accounts"
        absent = len(self._scope_ids()) - len(t)
        left = [f"{unscored} without a score"] if unscored else []
        left += [f"{absent} without values in {period} (not active)"] if absent else []
        head = (f"<b>{html.escape(str(period))}</b>: {len(t) - unscored} {scope} scored: {mix}"
                + (f" ({'; '.join(left)})" if left else ""))
        means = ", ".join(f"{c} {t[c].mean():.0f}" for c in pillar_cols if t[c].notna().any())
        worst = t[t["score"].notna()].head(10)
        rows = [[r.entity, r.account_name, f"{r.score:.0f}", r.rag,
                 "" if pd.isna(r.trend) else f"{r.trend:+.0f}",
                 *("–" if pd.isna(getattr(r, c)) else f"{getattr(r, c):.0f}" for c in pillar_cols)]
                for r in worst.itertuples(index=False)]
        table = _html_table(["account", "name", "score", "RAG", "trend", *pillar_cols], rows, cls="kamtools-scores",
                            fills=[_RAG_FILLS.get(r.rag) for r in worst.itertuples(index=False)])
        self.summary.value = (f"{head}<br>mean pillar scores: {means or '–'}<br>"
                              f"<small>lowest scores first (all of them in <code>.table</code>):</small>{table}")

    def _render_plot(self):
        from matplotlib.figure import Figure

        from kamtools.plots import pillar_scores

        a = self.account.value
        if self.card is None or a is None:
            self.plot.value = b""
            return
        fig = Figure(figsize=(6.5, 2.8))
        ax = fig.add_subplot()
        try:
            pillar_scores(self.card, entity=a, period=self.period.value, ax=ax)
        except (ParameterError, IndexError):
            ax.set_axis_off()
            ax.set_title(f"{a}: no score in {self.period.value}")
        fig.subplots_adjust(left=0.3, right=0.96, top=0.86, bottom=0.2)
        self.plot.value = _png(fig)


# --------------------------------------------------------------------------- portfolio map

_ATTRACTIVENESS = ("wallet_size", "revenue_growth_rate", "gross_margin_pct")
_POSITION = ("share_of_wallet", "executive_sponsorship", "engagement_breadth")


class PortfolioMap(_Base):
    """The key-account selection matrix: account attractiveness against the supplier's position.

    One point per account. Each axis is the mean percentile (0-100, within
    the accounts shown, in the chosen period) of the measures chosen for it;
    a measure where lower is better counts reversed. The defaults measure
    attractiveness by wallet size, revenue growth and gross margin %, and the
    supplier's position by share of wallet, executive sponsorship and
    engagement breadth. The quadrants, split at 50:

    - ``strategic``: attractive, strong position — invest;
    - ``develop``: attractive, weak position — build the relationship;
    - ``maintain``: less attractive, strong position — serve efficiently;
    - ``opportunistic``: less attractive, weak position — manage at low cost.

    Picking an account in the list (or :meth:`select`) rings it on the map and
    opens it in an :class:`AccountExplorer` below.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    values : DataFrame, optional
        A :func:`kamtools.compute` result by account. Default: computed here.
    period : {"M", "Q", "Y"}
        Default ``"Y"``: growth and margin over a year are steadier.
    as_of : date, optional
    attractiveness, position : list of str, optional
        KPI keys or numeric columns of the accounts table (``wallet_size``).
    key_accounts : bool
        Show key accounts only (default: all accounts, to find candidates).
    explorer : AccountExplorer, optional
        Open picked accounts in this explorer instead of a new one.

    Attributes
    ----------
    period, attractiveness, position, key_accounts, accounts : ipywidgets
        The controls; ``accounts`` lists the accounts by quadrant.
    table : DataFrame
        One row per account on the map: account_id, account_name,
        is_key_account, one column per measure (its value), attractiveness,
        position, quadrant.
    selected : str or None
        The account picked last.
    explorer : AccountExplorer or None
        Made when the first account is picked, unless one was given.

    Notes
    -----
    Percentiles are computed as in :func:`kamtools.kpi.benchmark` (share of
    the accounts with a lower value, ties counted half), checked in the tests
    against ``scipy.stats.percentileofscore(kind="mean")``.

    Examples
    --------
    >>> import warnings
    >>> import kamtools as kt
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     data = kt.sample.load()
    >>> values = kt.compute(data, ["share_of_wallet", "revenue_growth_rate"], period="Y")
    >>> m = kt.widgets.PortfolioMap(data, values=values, attractiveness=["wallet_size", "revenue_growth_rate"],
    ...                             position=["share_of_wallet"], key_accounts=True)
    >>> m.table["quadrant"].value_counts().sort_index().to_dict()
    {'develop': 8, 'maintain': 9, 'opportunistic': 8, 'strategic': 8}
    >>> m.select("A0001")
    >>> m.explorer.account.value
    'A0001'
    """

    def __init__(
        self,
        data,
        *,
        values=None,
        period: str = "Y",
        as_of=None,
        attractiveness=None,
        position=None,
        key_accounts: bool = False,
        explorer: AccountExplorer | None = None,
    ):
        self.data, self.values, self._notes = _load_values(data, values, period=period, as_of=as_of)
        acc = self.data.accounts
        self._accounts = acc.set_index("account_id", drop=False)
        self._by_kpi = {k: f.reset_index(drop=True) for k, f in self.values.groupby("kpi", sort=False)}
        self._specs = _kpi_specs(self._by_kpi)
        self._freq = self.values["period"].dt.freq
        labels = [str(p) for p in sorted(self.values["period"].unique())]
        columns = [c for c in acc.columns
                   if pd.api.types.is_numeric_dtype(acc[c]) and not pd.api.types.is_bool_dtype(acc[c])]
        measures = {c: f"{c.replace('_', ' ')} (accounts)" for c in columns}
        measures.update({k: s.name for k, s in self._specs.items()})
        self._measures = measures
        if attractiveness is None:
            attractiveness = [m for m in _ATTRACTIVENESS if m in measures]
        if position is None:
            position = [m for m in _POSITION if m in measures]
        attractiveness = _check_kpis(attractiveness, measures, "attractiveness")
        position = _check_kpis(position, measures, "position")
        if explorer is not None and not isinstance(explorer, AccountExplorer):
            raise ParameterError(f"explorer must be an AccountExplorer, not {type(explorer).__name__}.")

        options = [(label, key) for key, label in measures.items()]
        self.period = widgets.Dropdown(options=labels, value=labels[-1], description="Period",
                                       layout=widgets.Layout(width="200px"))
        self.key_accounts = widgets.Checkbox(value=bool(key_accounts), description="key accounts only", indent=False)
        self.attractiveness = widgets.SelectMultiple(options=options, value=tuple(attractiveness), rows=6,
                                                     description="Attractiveness",
                                                     style={"description_width": "100px"},
                                                     layout=widgets.Layout(width="420px"))
        self.position = widgets.SelectMultiple(options=options, value=tuple(position), rows=6,
                                               description="Our position", style={"description_width": "100px"},
                                               layout=widgets.Layout(width="420px"))
        self.accounts = widgets.Select(options=[], rows=16, description="Open",
                                       layout=widgets.Layout(width="380px"))
        self.plot = widgets.Image(format="png", layout=widgets.Layout(max_width="620px"))
        self.status = widgets.HTML()
        for w, cls in [(self.accounts, "kamtools-map-accounts"), (self.plot, "kamtools-plot"),
                       (self.status, "kamtools-status")]:
            w.add_class(cls)
        self.table = pd.DataFrame()
        self.selected: str | None = None
        self.explorer = explorer
        super().__init__(children=[
            widgets.HBox([self.attractiveness, self.position]),
            widgets.HBox([self.period, self.key_accounts]),
            self.status,
            widgets.HBox([self.plot, self.accounts]),
        ])
        self.add_class("kamtools-map")
        self._watch(self.period, self.key_accounts, self.attractiveness, self.position)
        self.accounts.observe(self._on_pick, names="value")
        self.update()

    # -- public -------------------------------------------------------------------------------
    def select(self, account_id: str) -> None:
        """Pick an account: ring it on the map and open it in the explorer.

        This is what clicking an account in the list does.
        """
        account_id = _check_account(account_id, set(self._accounts.index))
        self.selected = account_id
        if account_id in set(self.table.get("account_id", ())):
            with self._quiet():
                self.accounts.value = account_id
        self._render_plot()
        if self.explorer is None:
            kpis = [m for m in (*self.attractiveness.value, *self.position.value) if m in self._by_kpi][:MAX_PLOTS]
            self.explorer = AccountExplorer(self.data, values=self.values, account=account_id, kpis=kpis or None)
            self.children = (*self.children, self.explorer)
        else:
            self.explorer.select(account_id)

    def __repr__(self) -> str:
        return (f"PortfolioMap(period={self.period.value}, attractiveness={list(self.attractiveness.value)!r}, "
                f"position={list(self.position.value)!r}, accounts={len(self.table)}, selected={self.selected!r})")

    # -- updates ------------------------------------------------------------------------------
    def _on_pick(self, change):
        if not self._muted and change["new"] is not None:
            self.select(change["new"])

    def _measure(self, key: str, period, ids) -> pd.Series:
        """Raw values of one measure by account id, for the accounts ``ids``."""
        if key in self._by_kpi:
            f = self._by_kpi[key]
            f = f[(f["period"] == period) & f["entity"].isin(ids)]
            return pd.Series(f["value"].to_numpy(dtype="float64"), index=f["entity"].to_numpy()).reindex(ids)
        return self._accounts[key].reindex(ids).astype("float64")

    @staticmethod
    def _percentile(s: pd.Series) -> pd.Series:
        """As kt.kpi.benchmark: share of accounts with a lower value, ties counted half, 0-100."""
        return (s.rank(method="average") - 0.5) / s.count() * 100

    def _score(self, raw: pd.DataFrame) -> pd.Series:
        """Mean percentile of the measures; a measure where lower is better counts reversed."""
        pct = pd.DataFrame({
            k: (100 - self._percentile(raw[k])) if k in self._specs and self._specs[k].direction == "lower"
            else self._percentile(raw[k])
            for k in raw.columns
        })
        return pct.mean(axis=1, skipna=True)

    def _update(self):
        att, pos = list(self.attractiveness.value), list(self.position.value)
        if not att or not pos:
            self.table = pd.DataFrame()
            self.plot.value = b""
            self.status.value = _error("Choose at least one measure for each axis.")
            return
        period = pd.Period(self.period.value, freq=self._freq)
        acc = self._accounts
        if self.key_accounts.value:
            acc = acc[acc["is_key_account"].fillna(False).astype(bool)]
        ids = pd.Index(acc["account_id"])
        raw = pd.DataFrame({k: self._measure(k, period, ids) for k in dict.fromkeys(att + pos)})
        # on the map: accounts with a value on both axes; percentiles are taken among them
        on = raw[att].notna().any(axis=1) & raw[pos].notna().any(axis=1)
        raw = raw[on]
        off = int((~on).sum())
        t = acc.loc[raw.index, ["account_id", "account_name", "is_key_account"]].reset_index(drop=True)
        t = pd.concat([t, raw.reset_index(drop=True)], axis=1)
        t["attractiveness"] = self._score(raw[att]).to_numpy()
        t["position"] = self._score(raw[pos]).to_numpy()
        t["quadrant"] = [QUADRANTS[(a >= 50, p >= 50)] for a, p in zip(t["attractiveness"], t["position"], strict=True)]
        t["quadrant"] = pd.Categorical(t["quadrant"], categories=_QUADRANT_ORDER)
        t = t.sort_values(["quadrant", "attractiveness"], ascending=[True, False]).reset_index(drop=True)
        t["quadrant"] = t["quadrant"].astype("str")
        self.table = t
        counts = t["quadrant"].value_counts()
        note = f"; {off} account(s) without values for {period} on both axes are left off the map" if off else ""
        self.status.value = (
            f"{period}: {len(t)} accounts — " + ", ".join(f"{int(counts.get(q, 0))} {q}" for q in _QUADRANT_ORDER)
            + html.escape(note)
        )
        options = [(f"{q}: {n} ({i})", i) for q, n, i in zip(t["quadrant"], t["account_name"], t["account_id"],
                                                               strict=True)]
        with self._quiet():
            self.accounts.options = options
            self.accounts.value = self.selected if self.selected in set(t["account_id"]) else None
        self._render_plot()

    def _render_plot(self):
        from matplotlib.figure import Figure

        t = self.table
        fig = Figure(figsize=(7, 5.6))
        ax = fig.add_subplot()
        if len(t):
            key = t["is_key_account"].fillna(False).astype(bool).to_numpy()
            ax.scatter(t.loc[~key, "position"], t.loc[~key, "attractiveness"], s=22, facecolors="none",
                       edgecolors="#8c8c8c", label="other accounts")
            ax.scatter(t.loc[key, "position"], t.loc[key, "attractiveness"], s=30, color="#1f4e79",
                       label="key accounts")
            if self.selected in set(t["account_id"]):
                r = t[t["account_id"] == self.selected].iloc[0]
                ax.scatter([r["position"]], [r["attractiveness"]], s=220, facecolors="none", edgecolors="#c55a11",
                           linewidths=2)
                ax.annotate(f"{r['account_name']} ({r['account_id']})", (r["position"], r["attractiveness"]),
                            xytext=(8, 8), textcoords="offset points", color="#c55a11", fontsize=9)
        ax.axhline(50, color="#bbbbbb", linewidth=1)
        ax.axvline(50, color="#bbbbbb", linewidth=1)
        for (high, strong), name in QUADRANTS.items():
            ax.text(97 if strong else 3, 97 if high else 3, name, ha="right" if strong else "left",
                    va="top" if high else "bottom", color="#6c7a89", fontsize=10, style="italic")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_xlabel("our position (mean percentile: " + ", ".join(self.position.value) + ")", fontsize=8)
        ax.set_ylabel("account attractiveness (mean percentile)", fontsize=8)
        ax.set_title(f"Key-account selection matrix, {self.period.value}")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.06), ncol=2, frameon=False, fontsize="small")
        ax.spines[["top", "right"]].set_visible(False)
        fig.subplots_adjust(left=0.1, right=0.97, top=0.86, bottom=0.1)
        self.plot.value = _png(fig)


# --------------------------------------------------------------------------- ROI what-if

_COST_BASES = {"period": "per key-account {unit}", "total": "total"}
_PERIOD_WORD = {"M": "month", "Q": "quarter", "Y": "year"}
#: Range of the retention slider, in percentage points of yearly retention.
RETENTION_POINTS = (-10.0, 15.0)
_WHATIF_ROWS = (
    ("uplift_per_period", "uplift per key-account {unit}", ",.0f"),
    ("incremental_margin", "incremental margin", ",.0f"),
    ("programme_cost", "programme cost", ",.0f"),
    ("roi", "ROI", ".2f"),
    ("annual_retention", "yearly retention of key accounts", ".1%"),
    ("clv_per_account", "CLV per key account", ",.0f"),
    ("margin_horizon", "margin of today's key accounts, next {years} years", ",.0f"),
)


def _number(x, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        v = np.nan
    if not np.isfinite(v):
        raise ParameterError(f"{name}={x!r}; pass a finite number.")
    return v


class RoiWhatIf(_Base):
    """What margin, CLV and ROI become when retention, uplift or programme cost change.

    Starts from the estimates of :func:`kamtools.roi.programme_roi` (computed
    once, here, unless you pass ``roi=``) and offers three sliders: yearly
    retention of key accounts (percentage points added), the uplift per
    key-account period (starting at the estimate) and the programme cost
    (per key-account period or in total, starting at the booked cost). Each
    move calls :func:`kamtools.roi.what_if` and shows baseline against
    scenario as a table and a bar chart.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    roi : RoiResult, optional
        A :func:`kamtools.roi.programme_roi` result of ``data``, to reuse one
        computation. Default: computed here with ``outcome``, ``freq`` and
        ``alpha`` (and ``n_boot=0``: the widget does not show the payback
        interval).
    outcome, freq, alpha
        Passed to :func:`kamtools.roi.programme_roi` when ``roi`` is computed
        here.
    retention_points : float
        Retention improvement to show first, in percentage points of yearly
        retention (2 = two points, 85% to 87%), within ``RETENTION_POINTS``.
    uplift : float, optional
        Uplift per key-account period to show first. Default: the estimate.
    programme_cost : float, optional
        Total programme cost to show first. Default: the booked cost.
    cost_basis : {"period", "total"}
        The cost slider's unit: per key-account period (the total divided by
        ``roi.treated_periods``) or the total.
    discount : float
        Yearly discount rate of CLV and of the horizon margin.
    horizon_years : int
        Years of the horizon margin.

    Attributes
    ----------
    retention, uplift, cost, cost_basis : ipywidgets
        The controls; set ``.value`` to drive the widget from code.
        ``retention.value`` is in percentage points, ``uplift.value`` per
        key-account period, ``cost.value`` in the unit ``cost_basis.value``
        names.
    table : DataFrame
        Two rows, ``case`` = ``"baseline"`` (the estimates: no retention
        change, the estimated uplift, the booked cost) and ``"scenario"``
        (the sliders), then the columns of :func:`kamtools.roi.what_if`:
        ``retention_gain`` (a fraction), ``annual_retention``,
        ``clv_per_account``, ``clv_change``, ``margin_horizon``,
        ``margin_horizon_change``, ``uplift_per_period``,
        ``incremental_margin``, ``programme_cost``, ``roi``.
    roi : RoiResult
        The estimates the widget starts from.

    Notes
    -----
    Every number is :func:`kamtools.roi.what_if`'s; the tests check ``.table``
    against it called directly, and the baseline row against the
    :func:`kamtools.roi.programme_roi` estimates. An update takes about a
    tenth of a second on the 200-account sample, most of it drawing.

    Examples
    --------
    >>> import warnings
    >>> import kamtools as kt
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     data = kt.sample.load()
    ...     roi = kt.roi.programme_roi(data, n_boot=0)
    >>> w = kt.widgets.RoiWhatIf(data, roi=roi)
    >>> w.retention.value = 2.0          # two points of yearly retention
    >>> w.uplift.value = 4000.0          # a more cautious uplift per key-account month
    >>> w.table[["case", "annual_retention", "incremental_margin", "roi"]].round(3)
           case  annual_retention  incremental_margin    roi
    0  baseline             0.947         4329703.151  1.315
    1  scenario             0.967         3736000.000  0.998
    """

    def __init__(
        self,
        data,
        *,
        roi=None,
        outcome: str = "gross_margin",
        freq: str = "M",
        alpha: float = 0.05,
        retention_points: float = 0.0,
        uplift: float | None = None,
        programme_cost: float | None = None,
        cost_basis: str = "period",
        discount: float = 0.10,
        horizon_years: int = 5,
    ):
        from kamtools.io import load
        from kamtools.roi import RoiResult, programme_roi, what_if

        self.data = load(data)
        if roi is None:
            roi = programme_roi(self.data, outcome=outcome, freq=freq, alpha=alpha, n_boot=0)
        elif not isinstance(roi, RoiResult):
            raise ParameterError(f"roi must be a kt.roi.programme_roi(...) result, not {type(roi).__name__}.")
        else:
            strangers = set(roi.panel["account_id"]) - set(self.data.accounts["account_id"])
            if strangers:
                shown = ", ".join(map(repr, sorted(strangers)[:3]))
                raise ParameterError(
                    f"roi was computed on other data: {len(strangers)} of its accounts ({shown}) are not in data. "
                    "Pass the roi of this data set, or leave roi out to compute it here."
                )
        if cost_basis not in _COST_BASES:
            raise ParameterError(f"cost_basis={cost_basis!r}; use 'period' (per key-account period) or 'total'.")
        lo_pts, hi_pts = RETENTION_POINTS
        retention_points = _number(retention_points, "retention_points")
        if not lo_pts <= retention_points <= hi_pts:
            raise ParameterError(
                f"retention_points={retention_points!r}; pass percentage points between {lo_pts:g} and {hi_pts:g} "
                "(2 = two points more yearly retention)."
            )
        self.roi = roi
        self._what_if = what_if
        self._n = roi.treated_periods
        self._unit = _PERIOD_WORD.get(roi.freq, "period")
        self._discount, self._years = discount, horizon_years
        # the baseline: what_if at the estimates (it also checks discount and horizon_years)
        self._baseline = what_if(roi, discount=discount, horizon_years=horizon_years)

        est, (ci_lo, ci_hi) = roi.uplift.effect, roi.uplift.ci
        u_min, u_max = min(0.0, ci_lo), max(ci_hi, 2 * est)
        u_step = _nice_step(u_max - u_min)
        u_min, u_max = np.floor(u_min / u_step) * u_step, np.ceil(u_max / u_step) * u_step
        uplift = est if uplift is None else _number(uplift, "uplift")
        if not u_min <= uplift <= u_max:
            raise ParameterError(
                f"uplift={uplift!r}; the slider runs from {u_min:,.0f} to {u_max:,.0f} per key-account {self._unit} "
                f"(the estimate is {est:,.0f})."
            )
        total = roi.programme_cost if programme_cost is None else _number(programme_cost, "programme_cost")
        if not 0 < total <= 3 * roi.programme_cost:
            raise ParameterError(
                f"programme_cost={programme_cost!r}; pass a total above 0 and at most three times the booked cost "
                f"({3 * roi.programme_cost:,.0f})."
            )

        style = {"description_width": "190px"}
        wide = widgets.Layout(width="620px")
        self.retention = widgets.FloatSlider(
            value=retention_points, min=lo_pts, max=hi_pts, step=0.5, description="Retention (+ points/year)",
            readout_format="+.1f", continuous_update=False, style=style, layout=wide,
        )
        self.uplift = widgets.FloatSlider(
            value=uplift, min=u_min, max=u_max, step=u_step, description=f"Uplift per key-account {self._unit}",
            readout_format=",.0f", continuous_update=False, style=style, layout=wide,
        )
        self.cost_basis = widgets.ToggleButtons(
            options=[(f"per key-account {self._unit}", "period"), ("total", "total")], value=cost_basis,
            description="Cost", style={"description_width": "40px", "button_width": "150px"},
        )
        self.cost = widgets.FloatSlider(description="Programme cost", readout_format=",.0f",
                                        continuous_update=False, style=style, layout=wide)
        self._set_cost_range(cost_basis, total)
        self.status = widgets.HTML()
        self.table_html = widgets.HTML()
        self.plot = widgets.Image(format="png", layout=widgets.Layout(max_width="760px"))
        for w, cls in [(self.table_html, "kamtools-table"), (self.plot, "kamtools-plot"),
                       (self.status, "kamtools-status")]:
            w.add_class(cls)
        self.table = pd.DataFrame()
        super().__init__(children=[
            self.retention,
            self.uplift,
            widgets.HBox([self.cost, self.cost_basis]),
            self.status,
            self.table_html,
            self.plot,
        ])
        self.add_class("kamtools-roi-whatif")
        self._watch(self.retention, self.uplift, self.cost)
        self.cost_basis.observe(self._on_basis, names="value")
        self.update()

    # -- public -------------------------------------------------------------------------------
    @property
    def programme_cost(self) -> float:
        """The total programme cost the cost slider stands for."""
        return self.cost.value * self._n if self.cost_basis.value == "period" else self.cost.value

    def __repr__(self) -> str:
        return (f"RoiWhatIf(retention={self.retention.value:+g} points, uplift={self.uplift.value:,.0f} per "
                f"key-account {self._unit}, programme_cost={self.programme_cost:,.0f}, roi={self._roi_text()})")

    # -- updates ------------------------------------------------------------------------------
    def _roi_text(self) -> str:
        t = self.table
        return f"{t['roi'].iloc[-1]:.2f}" if len(t) else "–"

    def _set_cost_range(self, basis: str, total: float) -> None:
        """Unit, range and value of the cost slider for a basis, keeping the total."""
        booked = self.roi.programme_cost / (self._n if basis == "period" else 1)
        hi = 3 * booked
        step = _nice_step(hi)
        with self._quiet(), self.cost.hold_trait_notifications():  # min, max, value checked together
            self.cost.max = np.ceil(hi / step) * step
            self.cost.min = step
            self.cost.step = step
            self.cost.value = total / self._n if basis == "period" else total

    def _on_basis(self, change):
        total = self.cost.value * self._n if change["old"] == "period" else self.cost.value
        self._set_cost_range(change["new"], total)
        self.update()

    def _update(self):
        scenario = self._what_if(
            self.roi, retention_gain=self.retention.value / 100, uplift=self.uplift.value,
            programme_cost=self.programme_cost, discount=self._discount, horizon_years=self._years,
        )
        t = pd.concat([self._baseline, scenario], ignore_index=True)
        t.insert(0, "case", ["baseline", "scenario"])
        self.table = t
        r = self.roi
        lvl = f"{100 * (1 - r.alpha):g}% CI"
        self.status.value = (
            f"<b>Baseline</b> (kt.roi.programme_roi): uplift {r.uplift.effect:,.0f} per key-account {self._unit} "
            f"({lvl} {r.uplift.ci[0]:,.0f} to {r.uplift.ci[1]:,.0f}) over {self._n:,} key-account {self._unit}s; "
            f"ROI {r.roi:.2f} ({lvl} {r.roi_ci[0]:.2f} to {r.roi_ci[1]:.2f}). "
            f"<b>Scenario</b>: ROI {scenario['roi'].iloc[0]:.2f}, CLV per key account "
            f"{scenario['clv_change'].iloc[0]:+.1%}."
        )
        if scenario["annual_retention"].iloc[0] >= 0.99 > self._baseline["annual_retention"].iloc[0] + 1e-12:
            self.status.value += " <i>Yearly retention is capped at 99% (kt.roi.what_if).</i>"
        self._render_table()
        self._render_plot()

    def _render_table(self):
        base, scen = (self.table.iloc[i] for i in (0, 1))
        rows = []
        for col, label, fmt in _WHATIF_ROWS:
            b, s = float(base[col]), float(scen[col])
            change = f"{s / b - 1:+.1%}" if b and col != "roi" else f"{s - b:+.2f}" if col == "roi" else "–"
            rows.append([label.format(unit=self._unit, years=self._years), format(b, fmt), format(s, fmt), change])
        self.table_html.value = _html_table(["", "baseline", "scenario", "change"], rows, cls="kamtools-whatif")

    def _render_plot(self):
        from matplotlib.figure import Figure

        t = self.table
        panels = [("incremental_margin", "incremental margin"), ("clv_per_account", "CLV per key account"),
                  ("roi", "ROI")]
        fig = Figure(figsize=(9, 2.8))
        axes = fig.subplots(1, 3)
        for ax, (col, title) in zip(axes, panels, strict=True):
            v = t[col].to_numpy(dtype="float64")
            ax.bar([0, 1], v, color=["#9aa5b1", "#1f4e79"], width=0.6)
            ax.set_xticks([0, 1], ["baseline", "scenario"])
            ax.axhline(0, color="#555555", linewidth=0.8)
            ax.set_title(title, fontsize=10, y=1.0)
            for x, y in enumerate(v):
                ax.annotate(f"{y:.2f}" if col == "roi" else f"{y:,.0f}", (x, y), ha="center",
                            va="bottom" if y >= 0 else "top", fontsize=8)
            ax.margins(y=0.15)
            ax.set_yticks([])  # the bars carry their values; no y ticks keeps a redraw cheap
            ax.tick_params(labelsize=8, length=0)
            ax.spines[["top", "right", "left"]].set_visible(False)
        fig.subplots_adjust(left=0.02, right=0.98, top=0.88, bottom=0.12, wspace=0.15)
        self.plot.value = _png(fig)
