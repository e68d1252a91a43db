"""Client-ready account reports: papermill templates, a batch runner, clean HTML.

Three layers, from the bottom up:

- **Figures and text** (:func:`executive_summary`, :func:`format_number` and
  friends): pure functions from numbers to the sentences and strings a client
  reads, in the number style of a locale.
- **The reports** (:func:`account_report`, :func:`portfolio_report`): what the
  notebook templates in ``templates/`` call. :func:`prepare` filters the data
  to one account *before* anything is rendered and reduces every comparison
  with other accounts to anonymous aggregates (segment quartiles and medians
  over at least :data:`MIN_PEERS` accounts), so a report for account A holds
  no name, id or figure of any other account. Each section is a method that
  returns something Jupyter displays (escaped HTML or an embedded chart).
- **The runner** (:func:`run`, ``kamtools report``): validates the parameters
  against the template's ``parameters`` cell, loads and validates the data
  once, prepares every report's inputs once, renders the notebooks with
  papermill in parallel worker processes (each report in its own working
  directory and its own fresh kernel of *this* Python), exports HTML without
  code, skips reports that are up to date, writes every file atomically, and
  records ``manifest.json`` and ``index.html``.

Examples
--------
>>> from kamtools import report
>>> report.executive_summary({"name": "Acme", "revenue_ttm": 1_250_000, "revenue_ttm_growth": 0.12},
...                          currency="EUR")[0][:78]
'Acme bought EUR 1,250,000 in the last twelve months, 12.0% more than in the tw'
>>> report.format_money(1234567.891, "EUR", locale="de")
'1.234.568 EUR'
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import hashlib
import html
import io
import json
import logging
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from kamtools import periods as _periods
from kamtools._version import __version__
from kamtools.exceptions import ClusterError, KamtoolsError, ParameterError

__all__ = [
    "TEMPLATES",
    "ACCOUNT_TEMPLATE",
    "PORTFOLIO_TEMPLATE",
    "DEFAULT_TARGETS",
    "FORMATS",
    "LOCALES",
    "MIN_PEERS",
    "RISK_HIGH",
    "REPORT_KPIS",
    "format_number",
    "format_money",
    "format_percent",
    "format_value",
    "executive_summary",
    "Html",
    "Chart",
    "AccountInputs",
    "PortfolioInputs",
    "prepare",
    "prepare_portfolio",
    "AccountReport",
    "PortfolioReport",
    "account_report",
    "portfolio_report",
    "template_parameters",
    "check_parameters",
    "parse_parameters",
    "run",
    "EXECUTORS",
    "DASK_CONNECT_TIMEOUT",
    "Batch",
    "chromium_path",
    "ACTIONS",
    "KERNEL_NAME",
    "trend_chart",
    "revenue_chart",
    "pillar_chart",
    "score_distribution_chart",
    "concentration_chart",
    "retention_chart",
]

# --------------------------------------------------------------------------- constants

def _templates() -> Path:
    """The report templates: inside the installed package (a wheel), else the repository's ``templates/``."""
    here = Path(__file__).resolve().parent
    shipped = here / "templates"
    return shipped if (shipped / "account_report.ipynb").is_file() else here.parent / "templates"


#: Where the report templates live (the repository's ``templates/`` folder; ``kamtools/templates`` in a wheel).
TEMPLATES = _templates()
ACCOUNT_TEMPLATE = TEMPLATES / "account_report.ipynb"
PORTFOLIO_TEMPLATE = TEMPLATES / "portfolio_report.ipynb"
HTML_TEMPLATES = TEMPLATES / "html"
#: The scorecard KPIs and their targets when no targets file is given (set for quarters).
DEFAULT_TARGETS = TEMPLATES / "targets.csv"

#: Output formats of :func:`run`.
FORMATS = ("html", "ipynb", "pdf")

#: Comparisons with other accounts are shown only as aggregates over at least this many accounts.
MIN_PEERS = 5

#: A defection-risk score at or above this counts the account's yearly revenue as at risk.
RISK_HIGH = 50

#: KPIs every account report uses besides the scorecard's. One missing from the
#: catalogue, or not computable from the data, is shown as "not available".
REPORT_KPIS = (
    "revenue",
    "gross_margin",
    "gross_margin_pct",
    "annual_revenue_per_account",
    "customer_lifetime_value",
    "defection_risk",
    "nps",
    "csat",
    "engagement_frequency",
    "executive_sponsorship",
    "meeting_attendance_rate",
)

#: How many periods the trend charts show, by period length.
TREND_PERIODS = {"M": 24, "Q": 8, "Y": 5}
_PER_YEAR = {"M": 12, "Q": 4, "Y": 1}

#: Number style by language: thousands separator, decimal mark, currency code after the number.
LOCALES = {
    "en": (",", ".", False),
    "de": (".", ",", True),
    "fr": ("\u202f", ",", True),
    "es": (".", ",", True),
    "it": (".", ",", True),
    "pt": (".", ",", True),
    "nl": (".", ",", False),
    "da": (".", ",", True),
    "sv": ("\u00a0", ",", True),
    "nb": ("\u00a0", ",", True),
    "fi": ("\u00a0", ",", True),
    "pl": ("\u00a0", ",", True),
}

_PILLARS = ("relationships", "revenue", "retention", "learning")
_RAG_FILL = {"red": "#f8d7da", "amber": "#fff3cd", "green": "#d1e7dd"}
_RAG_LINE = {"red": "#d9534f", "amber": "#f0ad4e", "green": "#5cb85c"}

#: What to do about a red or amber KPI (the scorecard's focus areas).
ACTIONS = {
    "engagement_frequency": "Raise the contact rhythm: agree a meeting plan with the account team for the next period.",
    "executive_sponsorship": "Arrange an executive meeting; name a sponsor on both sides.",
    "meeting_attendance_rate": "Confirm meetings ahead and agree agendas, so planned meetings take place.",
    "business_reviews": "Schedule a business review with the customer's decision makers.",
    "decision_makers": "Map the buying centre and meet the decision makers not yet known.",
    "revenue_growth_rate": "Review the account plan's growth levers: open opportunities, cross-sell and upsell.",
    "gross_margin_pct": "Review pricing, discounts and product mix with the account team.",
    "share_of_wallet": "Identify the spend still going to competitors and the products to win it with.",
    "nps": "Follow up with detractors; close the loop on their feedback within the period.",
    "csat": "Review recent service issues with the customer and agree fixes.",
    "defection_risk": "Treat the account as at risk: act on each warning signal listed under retention.",
    "net_revenue_retention": "Find where revenue contracted and agree a recovery plan.",
    "skill_score": "Agree a development plan with the account manager (training, coaching).",
    "training_completion_rate": "Plan the open training of the account manager.",
}

_SIGNALS = {
    "nps_detractor": "Latest NPS answer of the last twelve months is a detractor (0-6)",
    "revenue_falling": "Revenue below the previous period's",
    "no_attended_interaction": "No interaction took place in the period",
    "open_severe_ticket": "A high or critical ticket is still open",
    "no_executive_meeting": "No executive meeting in this and the previous period",
}

# --------------------------------------------------------------------------- numbers


def _locale(locale: str) -> str:
    key = str(locale).strip().replace("-", "_").split("_")[0].lower()
    if key not in LOCALES:
        raise ParameterError(
            f"number_locale={locale!r} is not a number style kamtools knows; use one of {', '.join(LOCALES)}."
        )
    return key


def _missing(x) -> bool:
    try:
        return x is None or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def format_number(x, *, decimals: int = 0, locale: str = "en", signed: bool = False, missing: str = "–") -> str:
    """A number with the thousands separator and decimal mark of ``locale``.

    Examples
    --------
    >>> format_number(1234567.891, decimals=2)
    '1,234,567.89'
    >>> format_number(-1234.5, decimals=1, locale="de")
    '-1.234,5'
    >>> format_number(3.0, signed=True)
    '+3'
    >>> format_number(float("nan"))
    '–'
    """
    if _missing(x):
        return missing
    thousands, point, _ = LOCALES[_locale(locale)]
    x = float(x)
    text = f"{abs(x):,.{int(decimals)}f}"
    if text.strip("0.,") == "":  # rounds to zero: no sign
        x = 0.0
    text = text.replace(",", "\x00").replace(".", point).replace("\x00", thousands)
    sign = "-" if x < 0 else ("+" if signed and x > 0 else "")
    return sign + text


def format_money(x, currency: str | None, *, locale: str = "en", decimals: int = 0, signed: bool = False,
                 missing: str = "–") -> str:
    """An amount with its ISO currency code, placed as ``locale`` writes it.

    Examples
    --------
    >>> format_money(1234567.4, "EUR")
    'EUR 1,234,567'
    >>> format_money(1234567.4, "EUR", locale="fr")
    '1\\u202f234\\u202f567 EUR'
    >>> format_money(99.5, None, decimals=2)
    '99.50'
    """
    if _missing(x):
        return missing
    number = format_number(x, decimals=decimals, locale=locale, signed=signed)
    if not currency:
        return number
    after = LOCALES[_locale(locale)][2]
    return f"{number} {currency}" if after else f"{currency} {number}"


def format_percent(x, *, decimals: int = 1, locale: str = "en", signed: bool = False, missing: str = "–") -> str:
    """A share (0.123) as a percentage ('12.3%'; '12,3 %' in most other locales).

    Examples
    --------
    >>> format_percent(0.1234)
    '12.3%'
    >>> format_percent(-0.05, locale="de", signed=True)
    '-5,0\\xa0%'
    """
    if _missing(x):
        return missing
    number = format_number(100 * float(x), decimals=decimals, locale=locale, signed=signed)
    return number + ("%" if _locale(locale) == "en" else "\u00a0%")


def format_value(x, unit: str, *, currency: str | None = None, locale: str = "en", missing: str = "–") -> str:
    """A KPI value in its catalogue unit: money, share, points, score, count or duration.

    Examples
    --------
    >>> format_value(0.4567, "share")
    '45.7%'
    >>> format_value(12345.6, "currency", currency="EUR")
    'EUR 12,346'
    >>> format_value(8.0, "count"), format_value(2.5, "count"), format_value(3.456, "score 1-5")
    ('8', '2.5', '3.46')
    """
    if _missing(x):
        return missing
    x = float(x)
    if unit == "currency":
        return format_money(x, currency, locale=locale)
    if unit == "share":
        return format_percent(x, locale=locale)
    if unit.startswith("score"):
        return format_number(x, decimals=2, locale=locale)
    if unit == "NPS points" or (unit == "index" and (abs(x) >= 10 or x.is_integer())):
        return format_number(x, decimals=0, locale=locale)
    if unit == "index":
        return format_number(x, decimals=3 if abs(x) < 1 else 1, locale=locale)
    if unit in ("days", "hours", "months"):
        return f"{format_number(x, decimals=1, locale=locale)} {unit}"
    decimals = 0 if float(x).is_integer() or abs(x) >= 100 else (1 if abs(x) >= 1 else 2)
    return format_number(x, decimals=decimals, locale=locale)


def _change(x, unit: str, *, currency=None, locale="en") -> str:
    """A change of a KPI value: percentage points for shares, else the unit's own format, signed."""
    if _missing(x):
        return "–"
    if unit == "share":
        return format_number(100 * x, decimals=1, locale=locale, signed=True) + " pts"
    if unit == "currency":
        return format_money(x, currency, locale=locale, signed=True)
    decimals = 2 if unit.startswith("score") else (0 if unit in ("NPS points", "index") else 1)
    return format_number(x, decimals=decimals, locale=locale, signed=True)


# --------------------------------------------------------------------------- the executive summary


def _pct_words(x, locale) -> str:
    return format_percent(abs(x), locale=locale)


def executive_summary(figures: Mapping, *, currency: str | None = None, locale: str = "en") -> list[str]:
    """Three to five sentences that sum an account up, written from its numbers.

    Each sentence is written only when the figures it needs are given (and not
    missing), so a data set without surveys simply gets no NPS remark.

    Parameters
    ----------
    figures : mapping
        Any of these keys (missing values: ``None`` or NaN):

        - ``name``: the account's name;
        - ``revenue_ttm``: revenue of the twelve months to the period end;
          ``revenue_ttm_growth``: its change on the twelve months before (a
          share: 0.12 is 12%); ``segment_revenue_ttm_growth``: the median of
          that change in the account's peer group, named by ``segment``;
        - ``gross_margin_pct`` and ``segment_gross_margin_pct``: gross margin
          as a share of revenue in the period, the account's and its peers' median;
        - ``score``, ``rag``, ``score_change``, ``previous_period``: the overall
          3R+1 score (0-100), its colour, and its change on the previous period;
          ``best_pillar``, ``worst_pillar``: (name, score) pairs;
        - ``churn_probability`` (of losing the account within a year, from
          a fitted churn-risk model) and ``segment_churn_probability`` (the
          peers' median); ``revenue_at_risk``: probability x yearly revenue
          with the model, else the yearly revenue when the rule-based score
          is :data:`RISK_HIGH` or more; ``defection_risk`` (the rule-based
          score, 0-100) and ``signals`` (the warnings that fire);
        - ``clv``, ``segment_clv``: simple customer lifetime value, own and peer median;
          ``uplift_pct``, ``roi``: margin uplift since KAM entry against the
          comparison accounts, and the return on the programme's cost;
        - ``last_purchase``: the date of the last purchase, given when the
          account bought nothing in the last twelve months (then it replaces
          the revenue sentence);
        - ``focus``: KPI names needing attention, most urgent first (the first
          three are named).
    currency : str, optional
        ISO code written with money.
    locale : str
        Number style, see :data:`LOCALES`.

    Returns
    -------
    list of str
        The sentences, in the order revenue, scorecard, retention risk, value,
        focus.

    Examples
    --------
    >>> executive_summary({"score": 78.4, "rag": "amber", "score_change": 5.2, "previous_period": "2025Q3"})
    ['The 3R+1 scorecard stands at 78 of 100 (amber), up 5 points on 2025Q3.']
    >>> executive_summary({"defection_risk": 0.0})
    ['No defection warning fires this period.']
    """
    f = {k: v for k, v in figures.items() if not (np.isscalar(v) and _missing(v)) and v is not None}
    def money(x):
        return format_money(x, currency, locale=locale)

    out = []
    name = f.get("name", "The account")

    # 1. revenue
    if "last_purchase" in f:
        out.append(f"{name} has bought nothing in the last twelve months; its last purchase was on "
                   f"{_date(f['last_purchase'])}.")
    elif "revenue_ttm" in f:
        s = f"{name} bought {money(f['revenue_ttm'])} in the last twelve months"
        g = f.get("revenue_ttm_growth")
        if g is not None:
            if abs(g) < 0.0005:
                s += ", as much as in the twelve months before"
            else:
                s += f", {_pct_words(g, locale)} {'more' if g > 0 else 'less'} than in the twelve months before"
            if "segment_revenue_ttm_growth" in f:
                peers = f"{f['segment']} accounts" if f.get("segment") else "comparable accounts"
                median = format_percent(f["segment_revenue_ttm_growth"], locale=locale)
                s += f", against a median of {median} for {peers}"
        if "gross_margin_pct" in f:
            s += f"; gross margin was {format_percent(f['gross_margin_pct'], locale=locale)} of revenue"
            if "segment_gross_margin_pct" in f:
                s += f" (median {format_percent(f['segment_gross_margin_pct'], locale=locale)})"
        out.append(s + ".")

    # 2. scorecard
    if "score" in f:
        s = f"The 3R+1 scorecard stands at {f['score']:.0f} of 100"
        if f.get("rag"):
            s += f" ({f['rag']})"
        ch = f.get("score_change")
        if ch is not None:
            when = f" on {f['previous_period']}" if f.get("previous_period") else " on the previous period"
            pts = f"{abs(ch):.0f} point{'' if round(abs(ch)) == 1 else 's'}"
            s += (", unchanged" + when) if round(ch) == 0 else f", {'up' if ch > 0 else 'down'} {pts}{when}"
        best, worst = f.get("best_pillar"), f.get("worst_pillar")
        if best and worst and best[0] != worst[0]:
            s += (f"; {best[0]} is the strongest pillar ({best[1]:.0f}) and {worst[0]} the weakest "
                  f"({worst[1]:.0f})")
        out.append(s + ".")

    # 3. retention risk
    if "churn_probability" in f:
        s = ("The churn-risk model puts the probability of losing the account within a year at "
             f"{format_percent(f['churn_probability'], locale=locale)}")
        if "segment_churn_probability" in f:
            s += f" (median {format_percent(f['segment_churn_probability'], locale=locale)})"
        if "revenue_at_risk" in f:
            s += f", {money(f['revenue_at_risk'])} of yearly revenue at risk"
        if "defection_risk" in f:
            signals = list(f.get("signals") or [])
            why = f" ({'; '.join(x[0].lower() + x[1:] for x in signals)})" if signals else ""
            s += f"; its defection-risk score is {f['defection_risk']:.0f} of 100{why}"
        out.append(s + ".")
    elif "defection_risk" in f:
        risk = f["defection_risk"]
        signals = list(f.get("signals") or [])
        why = f" ({'; '.join(s[0].lower() + s[1:] for s in signals)})" if signals else ""
        if risk >= RISK_HIGH:
            s = f"Retention needs attention: the defection-risk score is {risk:.0f} of 100{why}"
            if "revenue_at_risk" in f:
                s += f", which puts {money(f['revenue_at_risk'])} of yearly revenue at risk"
            out.append(s + ".")
        elif risk > 0:
            out.append(f"The defection-risk score is {risk:.0f} of 100{why}, below the {RISK_HIGH} at which "
                       "revenue counts as at risk.")
        else:
            out.append("No defection warning fires this period.")

    # 4. value: CLV and uplift
    parts = []
    if "clv" in f:
        s = f"its simple lifetime value is {money(f['clv'])}"
        if "segment_clv" in f:
            s += f" (median {money(f['segment_clv'])})"
        parts.append(s)
    if "uplift_pct" in f:
        s = (f"since joining the KAM programme its gross margin runs {_pct_words(f['uplift_pct'], locale)} "
             f"{'above' if f['uplift_pct'] >= 0 else 'below'} what comparable accounts suggest")
        if "roi" in f:
            s += f", a return of {format_percent(f['roi'], decimals=0, locale=locale)} on the programme's cost"
        parts.append(s)
    if parts:
        text = "; ".join(parts)
        out.append(text[0].upper() + text[1:] + ".")

    # 5. focus
    if "focus" in f:
        focus = list(f["focus"])
        if len(focus) > 3:
            focus = [*focus[:3], f"{len(focus) - 3} more KPI{'s' if len(focus) > 4 else ''} below target"]
        if focus:
            listed = focus[0] if len(focus) == 1 else ", ".join(focus[:-1]) + " and " + focus[-1]
            out.append(f"Focus next on {listed}.")
        else:
            out.append("Every scorecard KPI is on target.")
    return out


# --------------------------------------------------------------------------- displayable pieces


class Html:
    """HTML that Jupyter displays as it is: build it only from escaped text.

    Examples
    --------
    >>> Html("<p>" + html.escape("<b>") + "</p>")._repr_html_()
    '<p>&lt;b&gt;</p>'
    """

    def __init__(self, markup: str, text: str | None = None):
        self.markup = markup
        self.text = text

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return self.text if self.text is not None else re.sub(r"<[^>]+>", " ", self.markup).strip()

    def __str__(self) -> str:
        return self.markup


class Chart:
    """A matplotlib Figure rendered once to PNG, shown as an embedded image.

    Jupyter shows a bare ``Figure`` only when the inline backend is active;
    this object carries its PNG with it, so the report (and its HTML) always
    has the picture, as a ``data:`` URI.
    """

    def __init__(self, fig, *, caption: str = "", alt: str = "", dpi: int = 110):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
        self.png = buf.getvalue()
        self.caption = caption
        self.alt = alt or caption
        self.figure = fig

    def _repr_html_(self) -> str:
        b64 = base64.b64encode(self.png).decode("ascii")
        cap = f"<figcaption>{html.escape(self.caption)}</figcaption>" if self.caption else ""
        return (f'<figure class="kt-chart"><img src="data:image/png;base64,{b64}" '
                f'alt="{html.escape(self.alt)}">{cap}</figure>')

    def __repr__(self) -> str:
        return f"<Chart: {self.alt or 'figure'}>"


def _e(x) -> str:
    """Escape any value for HTML text or attributes."""
    return html.escape("" if x is None else str(x), quote=True)


def _rag_badge(rag) -> str:
    if not isinstance(rag, str) or rag not in _RAG_FILL:
        return '<span class="rag rag-na">n/a</span>'
    return f'<span class="rag rag-{rag}" style="background:{_RAG_FILL[rag]}">{rag}</span>'


def _table(header: Sequence[str] | None, rows: Iterable[Sequence], *, num: Sequence[int] = (), raw: Sequence[int] = (),
           caption: str = "") -> str:
    """An HTML table; every cell is escaped except the columns in ``raw`` (built by this module)."""
    cols = "".join(f'<th{" class=num" if i in num else ""}>{_e(h)}</th>' for i, h in enumerate(header or ()))
    body = []
    for row in rows:
        cells = "".join(
            f'<td{" class=num" if i in num else ""}>{c if i in raw else _e(c)}</td>' for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    head = f"<thead><tr>{cols}</tr></thead>" if header else ""
    return f'<table class="kt-table">{cap}{head}<tbody>{"".join(body)}</tbody></table>'


def _figures_html(items: Iterable[tuple[str, str, str]]) -> str:
    cards = "".join(
        f'<div class="kt-figure"><div class="label">{_e(label)}</div><div class="value">{_e(value)}</div>'
        f'<div class="sub">{_e(sub)}</div></div>'
        for label, value, sub in items
    )
    return f'<div class="kt-figures">{cards}</div>'


def _na(reason: str) -> str:
    return f'<span class="kt-na">not available: {_e(reason)}</span>'


# --------------------------------------------------------------------------- inputs, prepared once


@dataclass
class AccountInputs:
    """Everything one account report may see, and nothing else.

    Built by :func:`prepare`. ``data`` holds only this account's rows (see
    :meth:`KamData.subset`); ``peers`` holds anonymous aggregates only.

    Attributes
    ----------
    account_id : str
    data : KamData
        The account's data alone.
    values : DataFrame
        Its KPI values, a :func:`kamtools.compute` result (``entity`` is the account).
    peers : DataFrame
        ``kpi, period, group, p25, median, p75, n, percentile``: the quartiles of
        each KPI among the accounts of its segment (``group``; the whole
        portfolio, ``"all accounts"``, when the segment has fewer than
        ``MIN_PEERS`` values), and the account's percentile among them.
    comparison : dict
        The anonymous comparison behind the KAM uplift: ``growth`` (median
        change of monthly gross margin of the comparison accounts over the
        account's own windows), ``n``, ``group``; or ``reason`` when there is none.
    unavailable : dict
        KPI key -> why it cannot be shown.
    targets : DataFrame
        The scorecard targets (see :func:`kamtools.scorecard.read_targets`).
    period_end : Timestamp
    freq : str
    data_start, data_as_of : Timestamp
        First transaction, and the last date with data up to ``period_end``, in the whole data set.
    fingerprint : str
        Of the whole data set.
    source : str
        Where the data came from (for the footer).
    targets_label : str
    notes : list of str
    model_uplift : dict or None
        This account's row of :func:`kamtools.roi.programme_roi`'s
        ``per_account`` (the model is fitted on all accounts; only the row
        is kept). Its churn probability is in ``values`` (KPI
        ``churn_probability``, from :func:`kamtools.retention.churn_risk`).
    churn_auc : float or None
    """

    account_id: str
    data: object
    values: pd.DataFrame
    peers: pd.DataFrame
    comparison: dict
    unavailable: dict
    targets: pd.DataFrame
    period_end: pd.Timestamp
    freq: str
    data_start: pd.Timestamp
    data_as_of: pd.Timestamp
    fingerprint: str
    source: str
    targets_label: str
    segment: str | None
    notes: list = field(default_factory=list)
    model_uplift: dict | None = None  # this account's row of kamtools.roi.programme_roi(...).per_account
    churn_auc: float | None = None  # holdout AUC of the churn-risk model (a property of the model, not of accounts)


@dataclass
class PortfolioInputs:
    """What the portfolio report sees: the whole data set and its KPI values (an internal report)."""

    data: object
    values: pd.DataFrame
    comparisons: dict
    unavailable: dict
    targets: pd.DataFrame
    period_end: pd.Timestamp
    freq: str
    data_start: pd.Timestamp
    data_as_of: pd.Timestamp
    fingerprint: str
    source: str
    targets_label: str
    notes: list = field(default_factory=list)
    models: dict = field(default_factory=dict)


def _source_label(data) -> str:
    if isinstance(data, str | os.PathLike):
        text = str(data)
        if "://" in text:
            from kamtools.io import _safe_url

            return _safe_url(text)
        return text
    return f"in-memory data set ({type(data).__name__})"


def _load(data, currency):
    """A KamData from a source; ``"sample"`` is the bundled sample portfolio."""
    from kamtools.io import load

    if isinstance(data, str) and data.strip().lower() == "sample":
        from kamtools import sample

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sample.load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legal-but-odd data notes: `kamtools validate` shows them
        return load(data, currency=currency or None)


def _period_end(period_end) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(period_end)
    except (ValueError, TypeError) as err:
        raise ParameterError(f"period_end={period_end!r} is not a date; write it as YYYY-MM-DD.") from err
    if pd.isna(ts):
        raise ParameterError("period_end is missing; write it as YYYY-MM-DD.")
    return ts.normalize()


def _read_targets(targets):
    from kamtools.scorecard import read_targets

    if targets is None or (isinstance(targets, str) and not targets.strip()):
        return read_targets(DEFAULT_TARGETS), "kamtools default targets (quarterly)"
    label = str(targets) if isinstance(targets, str | os.PathLike) else "given targets"
    return read_targets(targets), label


@dataclass
class _Batch:
    """The whole data set's KPI values and anonymous aggregates, computed once per batch."""

    data: object
    values: pd.DataFrame
    peers: pd.DataFrame  # anonymous: kpi, period, group, p25, median, p75, n
    percentiles: pd.DataFrame  # entity, kpi, period, group, percentile
    segment_of: pd.Series
    unavailable: dict
    targets: pd.DataFrame
    targets_label: str
    period_end: pd.Timestamp
    freq: str
    start: pd.Timestamp
    as_of: pd.Timestamp
    fingerprint: str
    source: str
    margins: pd.DataFrame | None  # monthly gross margin, account x month (for the uplift comparison)
    notes: list
    models: dict = field(default_factory=dict)  # model-based estimates of kamtools.retention / kamtools.roi
    details: list = field(default_factory=list)  # why a model failed, verbatim: for the portfolio report only


def _models(data, end: pd.Timestamp, notes: list, details: list) -> dict:
    """The model-based estimates, fitted once on the whole data set: churn risk and the programme's ROI.

    Each is optional: when its module is missing or cannot fit these data,
    the reports fall back to the rule-based score and the simple comparison.
    ``notes`` (for account reports) get a plain sentence; ``details`` (for the
    portfolio report) the error itself, which may name other accounts.
    """
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from kamtools import retention

            risk = retention.churn_risk(data, as_of=end)
            out["churn"] = risk.predictions_[["account_id", "probability", "annual_revenue", "revenue_at_risk"]]
            h = getattr(risk, "holdout_", None)
            out["churn_auc"] = float(h["auc"].iloc[0]) if h is not None and len(h) else np.nan
        except (ImportError, AttributeError, KamtoolsError, KeyError, TypeError, ValueError) as err:
            notes.append("The churn-risk model could not be fitted on these data; the rule-based score is shown.")
            details.append(f"Churn-risk model: {type(err).__name__}: {err}")
        try:
            from kamtools import roi

            r = roi.programme_roi(data, end=end)
            out["roi_accounts"] = r.per_account[["account_id", "periods", "observed", "counterfactual",
                                                 "incremental", "cost", "roi"]].copy()
            out["roi"] = {"roi": r.roi, "roi_ci": tuple(map(float, r.roi_ci)),
                          "incremental": r.incremental_margin, "incremental_ci": tuple(map(float, r.incremental_ci)),
                          "cost": r.programme_cost, "payback": float(r.payback),
                          "payback_ci": tuple(map(float, r.payback_ci)), "alpha": float(r.alpha),
                          "freq": getattr(r, "freq", "M"), "accounts": len(r.per_account)}
        except (ImportError, AttributeError, KamtoolsError, KeyError, TypeError, ValueError) as err:
            notes.append("The programme's ROI could not be estimated on these data; the simple comparison is shown.")
            details.append(f"Programme ROI: {type(err).__name__}: {err}")
    return out


def _batch(data, *, period_end, period, targets, segment, source, min_peers=MIN_PEERS,
           use_models: bool = True) -> _Batch:
    from kamtools.kpi import REGISTRY, compute

    freq = _periods.check_freq(period)
    end = _period_end(period_end)
    t, t_label = _read_targets(targets)
    tx = data.transactions
    start = tx["date"].min()
    if end < start:
        raise ParameterError(
            f"period_end={end:%Y-%m-%d} is before the data's first transaction ({start:%Y-%m-%d}); "
            "pick a period end inside the data."
        )
    notes = []
    last = tx["date"].max()
    as_of = min(end, last.normalize())
    if last < end:
        notes.append(f"The data run to {last:%Y-%m-%d}, before the period end {end:%Y-%m-%d}.")
    wanted = list(dict.fromkeys([*t["kpi"].astype(str), *REPORT_KPIS]))
    unavailable = {k: "not in the KPI catalogue" for k in wanted if k not in REGISTRY}
    keys = [k for k in wanted if k in REGISTRY]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = compute(data, keys, by="account", period=freq, as_of=end, start=start)
    for k in keys:  # not computable at all from this data
        notes_k = values.loc[(values["kpi"] == k) & values["value"].isna(), "note"]
        if values.loc[values["kpi"] == k, "value"].isna().all():
            first = notes_k.dropna()
            first = first[first.ne("None") & first.ne("nan")]
            unavailable[k] = first.iloc[0] if len(first) else "no value in this data"
    values = _with_ttm_growth(values, freq)
    details = []
    models = _models(data, end, notes, details) if use_models else {}
    if "churn" in models:  # as KPI-like rows, so that peers and percentiles come with them
        c = models["churn"]
        rows = [pd.DataFrame({"entity": c["account_id"].astype("str"), "period": end.to_period(freq), "kpi": kpi,
                              "value": c[col].astype("float64"), "num": np.nan, "den": np.nan, "note": "None"})
                for kpi, col in (("churn_probability", "probability"), ("revenue_at_risk", "revenue_at_risk"))]
        values = pd.concat([values, *rows], ignore_index=True)

    acc = data.accounts
    if segment in acc.columns:
        segment_of = pd.Series(acc[segment].astype("str").to_numpy(), index=acc["account_id"].to_numpy())
        segment_of = segment_of.where(acc[segment].notna().to_numpy())
    else:
        segment_of = pd.Series(np.nan, index=acc["account_id"].to_numpy(), dtype="object")
        notes.append(f"The accounts table has no column {segment!r}: accounts are compared with the whole portfolio.")
    peers, percentiles = _peer_stats(values, segment_of, min_peers=min_peers)
    return _Batch(
        data=data, values=values, peers=peers, percentiles=percentiles, segment_of=segment_of,
        unavailable=unavailable, targets=t, targets_label=t_label, period_end=end, freq=freq, start=start,
        as_of=as_of, fingerprint=data.fingerprint, source=source, margins=_monthly_margins(data, end), notes=notes,
        models=models, details=details,
    )


def _with_ttm_growth(values: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Add ``revenue_ttm_growth``: trailing-twelve-month revenue against a year earlier (free of seasonality)."""
    ttm = values[values["kpi"] == "annual_revenue_per_account"]
    if ttm.empty:
        return values
    lag = _PER_YEAR[freq]
    prev = ttm[["entity", "period", "value"]].assign(period=ttm["period"] + lag).rename(columns={"value": "prev"})
    g = ttm[["entity", "period", "value"]].merge(prev, on=["entity", "period"], how="left")
    g["num"] = g["value"]
    g["den"] = g["prev"]
    g["value"] = g["value"] / g["prev"].where(g["prev"] > 0) - 1
    g = g.assign(kpi="revenue_ttm_growth", note=None)[values.columns]
    g["note"] = g["note"].astype("str")
    return pd.concat([values, g], ignore_index=True)


def _peer_stats(values: pd.DataFrame, segment_of: pd.Series, *, min_peers: int):
    """Quartiles by KPI, period and segment (and for the whole portfolio): anonymous, at least ``min_peers`` values."""
    v = values[values["value"].notna()][["entity", "kpi", "period", "value"]]
    v = v.assign(group=v["entity"].map(segment_of))

    def stats(frame, keys):
        g = frame.groupby(keys, observed=True, dropna=True)["value"]
        out = g.quantile([0.25, 0.5, 0.75]).unstack()
        out.columns = ["p25", "median", "p75"]
        out["n"] = g.count()
        return out.reset_index()

    seg = stats(v[v["group"].notna()], ["kpi", "period", "group"])
    allp = stats(v, ["kpi", "period"]).assign(group="all accounts")
    peers = pd.concat([seg, allp], ignore_index=True)
    peers = peers[peers["n"] >= min_peers].reset_index(drop=True)
    # percentile: share of the group with a lower value (ties half), computed where the group is big enough
    pct = []
    for col, frame in (("group", v[v["group"].notna()]), (None, v.assign(group="all accounts"))):
        keys = ["kpi", "period", "group"]
        g = frame.groupby(keys, observed=True)["value"]
        r = (g.rank(method="average") - 0.5) / g.transform("count") * 100
        pct.append(frame[["entity", *keys]].assign(percentile=r.to_numpy(), n=g.transform("count").to_numpy()))
    pct = pd.concat(pct, ignore_index=True)
    pct = pct[pct["n"] >= min_peers].drop(columns="n")
    return peers, pct


def _own_peers(b: _Batch, account_id: str) -> pd.DataFrame:
    """The peer rows for one account: its segment where big enough, else the whole portfolio."""
    seg = b.segment_of.get(account_id)
    cols = ["kpi", "period", "group", "p25", "median", "p75", "n"]
    allp = b.peers[b.peers["group"] == "all accounts"][cols]
    if isinstance(seg, str):
        own = b.peers[b.peers["group"] == seg][cols]
        fallback = allp.merge(own[["kpi", "period"]], on=["kpi", "period"], how="left", indicator=True)
        fallback = fallback[fallback["_merge"] == "left_only"].drop(columns="_merge")
        rows = pd.concat([own, fallback], ignore_index=True)
    else:
        rows = allp
    pc = b.percentiles[b.percentiles["entity"] == account_id][["kpi", "period", "group", "percentile"]]
    return rows.merge(pc, on=["kpi", "period", "group"], how="left").reset_index(drop=True)


def _monthly_margins(data, end) -> pd.DataFrame | None:
    tx = data.transactions
    if "cost" not in tx.columns:
        return None
    tx = tx[tx["date"] <= end]
    m = tx.assign(month=tx["date"].dt.to_period("M"), margin=tx["revenue"] - tx["cost"])
    return m.groupby(["account_id", "month"], observed=True)["margin"].sum().unstack(fill_value=0.0)


def _windows(kam_start: pd.Timestamp, end: pd.Timestamp):
    """Months before (12) and after KAM entry, up to the period end."""
    entry = kam_start.to_period("M")
    last = end.to_period("M")
    pre = pd.period_range(entry - 12, entry - 1, freq="M")
    post = pd.period_range(entry, last, freq="M") if last >= entry else pd.PeriodIndex([], freq="M")
    return pre, post


def _comparison(b: _Batch, account_id: str) -> dict:
    """The anonymous comparison for one key account's uplift: median margin change of comparable non-key accounts."""
    acc = b.data.accounts.set_index("account_id")
    if b.margins is None:
        return {"reason": "transactions have no cost column, so there is no gross margin"}
    row = acc.loc[account_id]
    kam_start = row.get("kam_start") if "kam_start" in acc.columns else None
    if not bool(row.get("is_key_account")) or _missing(kam_start):
        return {"reason": "the account has no KAM start date"}
    kam_start = pd.Timestamp(kam_start)
    pre, post = _windows(kam_start, b.period_end)
    if len(post) == 0:
        return {"reason": f"the account enters the KAM programme after the period end ({kam_start:%Y-%m-%d})"}
    if pre[0] < b.start.to_period("M"):
        return {"reason": f"less than twelve months of data before KAM entry ({kam_start:%Y-%m-%d})"}
    m = b.margins.reindex(columns=pd.period_range(pre[0], post[-1], freq="M"), fill_value=0.0)
    others = acc.index[~acc["is_key_account"].fillna(False).astype(bool).to_numpy()]
    seg = b.segment_of.get(account_id)
    for label, pool in (
        (f"{seg} accounts outside the KAM programme", others[b.segment_of.reindex(others).eq(seg).to_numpy()]
         if isinstance(seg, str) else others[:0]),
        ("accounts outside the KAM programme", others),
    ):
        mm = m.reindex(pool).dropna(how="all")
        before = mm[list(pre)].mean(axis=1)
        after = mm[list(post)].mean(axis=1)
        ok = before > 0
        if ok.sum() >= MIN_PEERS:
            growth = float((after[ok] / before[ok] - 1).median())
            return {"growth": growth, "n": int(ok.sum()), "group": label, "pre": (str(pre[0]), str(pre[-1])),
                    "post": (str(post[0]), str(post[-1]))}
    return {"reason": f"fewer than {MIN_PEERS} comparable accounts outside the programme"}


def prepare(data, account_ids, *, period_end, period: str = "Q", targets=None, segment: str = "industry",
            currency: str | None = None, _batch_result: _Batch | None = None) -> dict[str, AccountInputs]:
    """The inputs of account reports: each account's own data, values and anonymous comparisons.

    KPI values are computed once for all accounts; peer comparisons are
    reduced to quartiles and medians over at least :data:`MIN_PEERS` accounts
    before they are handed over, and each account's data is cut to its own
    rows with :meth:`KamData.subset`.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    account_ids : str or list of str
    period_end : date
        Last day of the reporting period; KPIs use the data up to it.
    period : {"M", "Q", "Y"}
    targets : mapping, DataFrame or CSV path, optional
        Scorecard targets; default :data:`DEFAULT_TARGETS`.
    segment : str
        The accounts column that defines an account's peers.
    currency : str, optional
        Passed to :func:`kamtools.load` when ``data`` is a source.

    Returns
    -------
    dict of account id to AccountInputs

    Raises
    ------
    ParameterError
        When an account id is not in the data.

    Examples
    --------
    >>> import kamtools as kt
    >>> inputs = kt.report.prepare(kt.sample.load(), ["A0001"], period_end="2025-12-31")
    >>> sorted(inputs["A0001"].data.accounts["account_id"])
    ['A0001']
    >>> bool((inputs["A0001"].peers["n"] >= kt.report.MIN_PEERS).all())
    True
    """
    source = _source_label(data)
    data = _load(data, currency)
    ids = [account_ids] if isinstance(account_ids, str) else list(account_ids)
    known = set(data.accounts["account_id"])
    unknown = [a for a in ids if a not in known]
    if unknown:
        raise ParameterError(
            f"account id(s) not in the data: {', '.join(map(repr, unknown[:5]))}. "
            "Use ids from the accounts table (data.accounts.account_id)."
        )
    b = _batch_result or _batch(data, period_end=period_end, period=period, targets=targets, segment=segment,
                                source=source)
    out = {}
    for a in ids:
        own = b.values[b.values["entity"] == a].reset_index(drop=True)
        seg = b.segment_of.get(a)
        out[a] = AccountInputs(
            account_id=a, data=b.data.subset([a]), values=own, peers=_own_peers(b, a), comparison=_comparison(b, a),
            unavailable=dict(b.unavailable), targets=b.targets, period_end=b.period_end, freq=b.freq,
            data_start=b.start, data_as_of=b.as_of, fingerprint=b.fingerprint, source=b.source,
            targets_label=b.targets_label, segment=seg if isinstance(seg, str) else None, notes=list(b.notes),
            model_uplift=_own_row(b.models.get("roi_accounts"), a), churn_auc=b.models.get("churn_auc"),
        )
    return out


def _own_row(frame: pd.DataFrame | None, account_id: str) -> dict | None:
    if frame is None:
        return None
    row = frame[frame["account_id"] == account_id]
    return None if row.empty else {k: (v.item() if hasattr(v, "item") else v) for k, v in row.iloc[0].items()}


def prepare_portfolio(data, *, period_end, period: str = "Q", targets=None, segment: str = "industry",
                      currency: str | None = None, _batch_result: _Batch | None = None) -> PortfolioInputs:
    """The inputs of the portfolio report (all accounts: it is the supplier's own view)."""
    source = _source_label(data)
    data = _load(data, currency)
    b = _batch_result or _batch(data, period_end=period_end, period=period, targets=targets, segment=segment,
                                source=source)
    keys = data.accounts.loc[data.accounts["is_key_account"].fillna(False).astype(bool), "account_id"]
    return PortfolioInputs(
        data=b.data, values=b.values, comparisons={a: _comparison(b, a) for a in keys}, unavailable=dict(b.unavailable),
        targets=b.targets, period_end=b.period_end, freq=b.freq, data_start=b.start, data_as_of=b.as_of,
        fingerprint=b.fingerprint, source=b.source, targets_label=b.targets_label, notes=[*b.notes, *b.details],
        models={k: v for k, v in b.models.items() if k != "churn"},
    )


def _read_prepared(path):
    with open(path, "rb") as fh:
        return pickle.load(fh)  # written by this runner into its own private temporary folder


# --------------------------------------------------------------------------- charts


def _fig(figsize=(7.2, 3.2)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)  # margins set by hand: a constrained layout costs a third more per chart
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _margins(fig, *, left=0.1, right=0.98, top=0.88, bottom=0.16, legend=None):
    """Fixed margins; ``legend=(handles, labels)`` puts a legend in a row under the axes."""
    if legend is not None:
        fig.legend(*legend, loc="lower center", bbox_to_anchor=(0.5, 0.0), frameon=False, fontsize="small", ncols=3)
        bottom = max(bottom, 0.23)
    fig.subplots_adjust(left=left, right=right, top=top, bottom=bottom)


def _axis_formatter(unit, currency, locale):
    from matplotlib.ticker import FuncFormatter

    if unit == "share":
        return FuncFormatter(lambda y, _: format_percent(y, decimals=0, locale=locale))
    if unit == "currency":
        return FuncFormatter(lambda y, _: format_number(y, locale=locale))
    return FuncFormatter(lambda y, _: format_number(y, decimals=0 if abs(y) >= 10 or y == int(y) else 1,
                                                    locale=locale))


def trend_chart(own: pd.DataFrame, band: pd.DataFrame | None = None, *, title: str, unit: str,
                currency: str | None = None, locale: str = "en", band_label: str = "peers"):
    """One KPI over time for the account (``period, value``) against its peers' quartiles.

    ``band`` has ``period, p25, median, p75`` (anonymous aggregates only).
    Returns a matplotlib Figure.
    """
    fig, ax = _fig()
    own = own.sort_values("period").reset_index(drop=True)
    x = np.arange(len(own))
    if band is not None and len(band):
        b = own[["period"]].merge(band, on="period", how="left")
        ax.fill_between(x, b["p25"].astype(float), b["p75"].astype(float), color="#cfd8e3",
                        label=f"{band_label}: middle half")
        ax.plot(x, b["median"].astype(float), color="#6c7a89", linestyle="--", linewidth=1,
                label=f"{band_label}: median")
    ax.plot(x, own["value"].astype(float), color="#1f4e79", marker="o", linewidth=2, label="this account")
    ax.set_xticks(x, own["period"].astype(str).tolist(), fontsize=8)
    ax.set_title(title, loc="left", fontsize=11)
    ax.yaxis.set_major_formatter(_axis_formatter(unit, currency, locale))
    if unit == "currency" and currency:
        ax.set_ylabel(currency)
    _margins(fig, left=0.15 if unit == "currency" else 0.09, legend=ax.get_legend_handles_labels())
    return fig


def revenue_chart(own: pd.DataFrame, band: pd.DataFrame | None = None, *, currency: str | None = None,
                  locale: str = "en"):
    """Revenue per period (bars) and gross margin % (line, right axis) with the peers' median margin.

    ``own`` is wide: ``period, revenue, gross_margin_pct``. Returns a Figure.
    """
    fig, ax = _fig((7.2, 3.4))
    own = own.sort_values("period")
    labels = own["period"].astype(str).tolist()
    x = np.arange(len(own))
    ax.bar(x, own["revenue"], color="#9db7d5", label="revenue")
    ax.set_xticks(x, labels, fontsize=8)
    ax.yaxis.set_major_formatter(_axis_formatter("currency", currency, locale))
    ax.set_ylabel(f"revenue ({currency})" if currency else "revenue")
    ax2 = ax.twinx()
    ax2.spines[["top"]].set_visible(False)
    ax2.plot(x, own["gross_margin_pct"], color="#1f4e79", marker="o", linewidth=2, label="gross margin %")
    if band is not None and len(band):
        b = own[["period"]].merge(band, on="period", how="left")
        ax2.plot(x, b["median"], color="#6c7a89", linestyle="--", linewidth=1, label="peers: median margin %")
    ax2.yaxis.set_major_formatter(_axis_formatter("share", currency, locale))
    ax2.set_ylim(bottom=min(0, float(np.nanmin(own["gross_margin_pct"].to_numpy(dtype=float), initial=0))))
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    _margins(fig, left=0.15, right=0.9, legend=(h1 + h2, l1 + l2))
    ax.set_title("Revenue and gross margin", loc="left", fontsize=11)
    return fig


def pillar_chart(pillars: pd.DataFrame, *, overall: float | None = None, title: str = "Pillar scores"):
    """The 3R+1 pillar scores (``pillar, score, rag, weight``) as bars coloured by RAG. Returns a Figure."""
    p = pillars.set_index("pillar").reindex([x for x in _PILLARS if x in set(pillars["pillar"])])
    fig, ax = _fig((6.4, 2.6))
    labels = [f"{name} ({w:.0f}%)" if w > 0 else f"{name} (beside)" for name, w in p["weight"].items()]
    ax.barh(labels, p["score"].fillna(0), color=[_RAG_LINE.get(c, "#bbbbbb") for c in p["rag"]])
    for y, s in enumerate(p["score"]):
        ax.text(2 if pd.isna(s) else min(s + 1, 93), y, "n/a" if pd.isna(s) else f"{s:.0f}", va="center")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("score (0-100)")
    ax.set_title(title + ("" if overall is None or pd.isna(overall) else f": overall {overall:.0f}"), loc="left",
                 fontsize=11)
    _margins(fig, left=0.27, right=0.96, top=0.87, bottom=0.18)
    return fig


def score_distribution_chart(scores: pd.Series, *, title: str = "Overall scores of the key accounts"):
    """Histogram of overall scores over the red / amber / green bands. Returns a Figure."""
    from kamtools.scorecard import DEFAULT_BANDS

    fig, ax = _fig((7.2, 2.8))
    ax.axvspan(0, DEFAULT_BANDS["amber"], color=_RAG_FILL["red"])
    ax.axvspan(DEFAULT_BANDS["amber"], DEFAULT_BANDS["green"], color=_RAG_FILL["amber"])
    ax.axvspan(DEFAULT_BANDS["green"], 100, color=_RAG_FILL["green"])
    ax.hist(scores.dropna(), bins=np.arange(0, 105, 5), color="#1f4e79", edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_xlabel("overall 3R+1 score")
    ax.set_ylabel("accounts")
    ax.set_title(title, loc="left", fontsize=11)
    _margins(fig, left=0.08, bottom=0.18)
    return fig


def concentration_chart(revenue: pd.Series, key: pd.Series, *, locale: str = "en"):
    """Cumulative share of revenue against share of accounts, largest first, key accounts marked."""
    fig, ax = _fig((6.4, 3.4))
    r = revenue[revenue > 0].sort_values(ascending=False)
    share = r.cumsum() / r.sum()
    x = np.arange(1, len(r) + 1) / len(r)
    ax.plot(np.r_[0, x], np.r_[0, share.to_numpy()], color="#1f4e79", linewidth=2, label="cumulative revenue")
    k = key.reindex(r.index).fillna(False).astype(bool).to_numpy()
    ax.scatter(x[k], share.to_numpy()[k], s=12, color="#d9534f", zorder=3, label="key account")
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1, label="equal shares")
    ax.xaxis.set_major_formatter(_axis_formatter("share", None, locale))
    ax.yaxis.set_major_formatter(_axis_formatter("share", None, locale))
    ax.set_xlabel("share of accounts (largest first)")
    ax.set_ylabel("share of revenue")
    ax.legend(loc="lower right", frameon=False, fontsize="small")
    ax.set_title("Revenue concentration, last twelve months", loc="left", fontsize=11)
    _margins(fig, left=0.14, bottom=0.15)
    return fig


def retention_chart(curves: pd.DataFrame, *, locale: str = "en"):
    """Share of accounts still active by months since their first purchase (``group, month, share``)."""
    fig, ax = _fig((7.2, 3.2))
    colours = {"key accounts": "#1f4e79", "other accounts": "#f0ad4e"}
    for g, c in curves.groupby("group", sort=False):
        ax.step(c["month"], c["share"], where="post", linewidth=2, color=colours.get(g), label=g)
        if "lower" in c.columns and c["lower"].notna().any():
            ax.fill_between(c["month"], c["lower"], c["upper"], step="post", color=colours.get(g), alpha=0.15,
                            linewidth=0)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(_axis_formatter("share", None, locale))
    ax.set_xlabel("months since first purchase")
    ax.set_ylabel("still active")
    ax.legend(loc="lower left", frameon=False, fontsize="small")
    ax.set_title("Retention: key accounts against the others", loc="left", fontsize=11)
    _margins(fig, left=0.11, bottom=0.16)
    return fig


# --------------------------------------------------------------------------- the account report


def _date(x) -> str:
    t = pd.Timestamp(x)
    return f"{t.day} {t:%B %Y}"


def _period_label(p: pd.Period) -> str:
    if p.freqstr.startswith("Q"):
        a, b = p.start_time, p.end_time
        return f"{p} ({a.day} {a:%B} to {b.day} {b:%B %Y})"
    if p.freqstr.startswith("M"):
        return f"{p.start_time:%B %Y}"
    return str(p)


def _spec(key):
    from kamtools.kpi import REGISTRY

    return REGISTRY.get(key)


class AccountReport:
    """One account's report: every section as something Jupyter displays.

    Built by :func:`account_report` from :class:`AccountInputs`; the
    template calls one method per section. Attributes hold the numbers behind
    the sections (``figures``, ``card``, ``values``) for use in your own cells.

    Attributes
    ----------
    account : dict
        id, name, industry, region, is_key, kam_start, manager, manager_start, tenure_months, band.
    period : pandas.Period
        The reporting period (the one holding ``period_end``).
    card : Scorecard or None
    figures : dict
        The numbers behind the executive summary (see :func:`executive_summary`).
    """

    def __init__(self, inputs: AccountInputs, *, locale: str = "en", parameters: Mapping | None = None):
        self.inputs = inputs
        self.locale = _locale(locale)
        self.currency = inputs.data.currency
        self.parameters = dict(parameters or {})
        self.notes = list(inputs.notes)
        self.freq = inputs.freq
        self.period = inputs.period_end.to_period(inputs.freq)
        if inputs.period_end < self.period.end_time.normalize():
            self.notes.append(f"{self.period} is reported to date: it ends after {inputs.period_end:%Y-%m-%d}.")
        self.periods = pd.period_range(end=self.period, periods=TREND_PERIODS[self.freq], freq=self.period.freq)
        v = inputs.values
        self.values = v
        self.wide = v.pivot_table(index="period", columns="kpi", values="value", aggfunc="first", dropna=False)
        self.account = self._account()
        self.card = self._scorecard()
        self.figures = self._figures()

    # -- numbers -------------------------------------------------------------------------
    def value(self, kpi: str, period=None):
        """The account's value of a KPI in a period (default: the reporting period); NaN when none."""
        period = self.period if period is None else period
        if kpi not in self.wide.columns or period not in self.wide.index:
            return np.nan
        return self.wide.at[period, kpi]

    def peer(self, kpi: str, what: str = "median", period=None):
        """An anonymous peer aggregate (p25, median, p75, n, percentile, group) of a KPI in a period."""
        period = self.period if period is None else period
        p = self.inputs.peers
        row = p[(p["kpi"] == kpi) & (p["period"] == period)]
        return row[what].iloc[0] if len(row) else (None if what == "group" else np.nan)

    def _account(self) -> dict:
        d = self.inputs.data
        row = d.accounts.iloc[0]
        info = {
            "id": self.inputs.account_id,
            "name": row.get("account_name"),
            "industry": row.get("industry"),
            "region": row.get("region"),
            "is_key": bool(row.get("is_key_account")) if not _missing(row.get("is_key_account")) else False,
            "kam_start": row.get("kam_start"),
            "manager": None, "manager_start": None, "tenure_months": None, "band": None,
        }
        mid = row.get("manager_id")
        if d.managers is not None and not _missing(mid):
            m = d.managers[d.managers["manager_id"] == mid]
            if len(m):
                from kamtools.scorecard import tenure_band

                info["manager"] = m["name"].iloc[0]
                info["manager_start"] = m["start_date"].iloc[0]
                months = _periods.months_between(pd.Timestamp(info["manager_start"]), self.inputs.period_end)
                info["tenure_months"] = int(months)
                info["band"] = tenure_band(pd.Series([months])).iloc[0]
        return info

    def _scorecard(self):
        from kamtools.scorecard import scorecard

        t = self.inputs.targets
        t = t[t["kpi"].isin(set(self.values["kpi"])) & ~t["kpi"].isin(self.inputs.unavailable)]
        if t.empty:
            self.notes.append("No scorecard KPI could be computed from this data.")
            return None
        vals = self.values[self.values["kpi"].isin(set(t["kpi"]))]
        weights = "tenure" if self.account["tenure_months"] is not None else "equal"
        if weights == "equal":
            self.notes.append("The account has no manager start date: the three R pillars are weighted equally.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return scorecard(vals, targets=t, data=self.inputs.data, weights=weights)

    def _card_rows(self, table: str, period=None) -> pd.DataFrame:
        if self.card is None:
            return pd.DataFrame()
        frame = getattr(self.card, table)
        period = self.period if period is None else period
        return frame[frame["period"] == period]

    def _signals(self) -> list[str] | None:
        if "defection_risk" in self.inputs.unavailable or _spec("defection_risk") is None:
            return None
        from kamtools.kpi import Context
        from kamtools.kpi.retention import defection_signals

        d = self.inputs.data
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ctx = Context(d, self.freq, self.inputs.period_end, self.inputs.data_start)
                s = defection_signals(ctx)
        except (KamtoolsError, KeyError, TypeError, AttributeError) as err:
            self.notes.append(f"Defection signals could not be listed: {err}")
            return None
        row = s[s["period"] == self.period]
        if row.empty:
            return []
        row = row.iloc[0]
        return [_SIGNALS.get(k, k) for k in _SIGNALS if k in row.index and bool(row[k])]

    def _uplift(self) -> dict:
        c = self.inputs.comparison
        if "reason" in c:
            return {"reason": c["reason"]}
        tx = self.inputs.data.transactions
        if "cost" not in tx.columns:
            return {"reason": "transactions have no cost column"}
        kam_start = pd.Timestamp(self.account["kam_start"])
        pre, post = _windows(kam_start, self.inputs.period_end)
        t = tx[tx["date"] <= self.inputs.period_end]
        m = (t.assign(month=t["date"].dt.to_period("M"), margin=t["revenue"] - t["cost"])
             .groupby("month")["margin"].sum())
        m = m.reindex(pd.period_range(pre[0], post[-1], freq="M"), fill_value=0.0)
        before, after = float(m[list(pre)].mean()), float(m[list(post)].mean())
        if before <= 0:
            return {"reason": "no positive gross margin in the twelve months before KAM entry"}
        expected = before * (1 + c["growth"])
        per_month = after - expected
        out = {
            "before": before, "after": after, "expected": expected, "per_month": per_month,
            "uplift_pct": after / expected - 1 if expected > 0 else np.nan, "months": len(post),
            "incremental": per_month * len(post), "comparison_growth": c["growth"], "comparison_n": c["n"],
            "group": c["group"], "cost": np.nan, "roi": np.nan,
        }
        costs = self.inputs.data.costs
        if costs is not None:
            k = costs[(costs["kind"] == "kam_programme") & (costs["date"].dt.to_period("M") >= post[0])
                      & (costs["date"] <= self.inputs.period_end)]
            out["cost"] = float(k["amount"].sum())
            if out["cost"] > 0:
                out["roi"] = (out["incremental"] - out["cost"]) / out["cost"]
        return out

    def _model_uplift(self) -> dict | None:
        """This account's row of the difference-in-differences estimate, when there is one."""
        m = getattr(self.inputs, "model_uplift", None)
        if not m:
            return None
        cf = m.get("counterfactual", np.nan)
        return {**m, "uplift_pct": m["observed"] / cf - 1 if not _missing(cf) and cf > 0 else np.nan}

    def _figures(self) -> dict:
        f = {"name": self.account["name"], "segment": self.peer("revenue_ttm_growth", "group")}
        f["revenue_ttm"] = self.value("annual_revenue_per_account")
        f["revenue_ttm_growth"] = self.value("revenue_ttm_growth")
        f["segment_revenue_ttm_growth"] = self.peer("revenue_ttm_growth")
        if f["segment"] == "all accounts":
            f["segment"] = None
        f["gross_margin_pct"] = self.value("gross_margin_pct")
        f["segment_gross_margin_pct"] = self.peer("gross_margin_pct")
        o = self._card_rows("overall")
        if len(o):
            o = o.iloc[0]
            f.update(score=o["score"], rag=o["rag"] if isinstance(o["rag"], str) else None, score_change=o["trend"],
                     previous_period=str(self.period - 1))
            p = self._card_rows("pillars")
            p = p[p["pillar"].isin(("relationships", "revenue", "retention")) & p["score"].notna()]
            if len(p) >= 2:
                best, worst = p.loc[p["score"].idxmax()], p.loc[p["score"].idxmin()]
                f["best_pillar"] = (best["pillar"], best["score"])
                f["worst_pillar"] = (worst["pillar"], worst["score"])
        self.signals = self._signals()
        risk = self.value("defection_risk")
        if not _missing(risk):
            f["defection_risk"] = risk
            f["signals"] = self.signals or []
            ttm = f["revenue_ttm"]
            f["revenue_at_risk"] = (ttm if risk >= RISK_HIGH else 0.0) if not _missing(ttm) else np.nan
        if not _missing(self.value("churn_probability")):  # the fitted model, where there is one
            f["churn_probability"] = self.value("churn_probability")
            f["segment_churn_probability"] = self.peer("churn_probability")
            f["revenue_at_risk"] = self.value("revenue_at_risk")
        f["clv"] = self.value("customer_lifetime_value")
        f["segment_clv"] = self.peer("customer_lifetime_value")
        self.uplift = self._uplift() if self.account["is_key"] else {"reason": "not a key account"}
        self.model_uplift = self._model_uplift() if self.account["is_key"] else None
        best = self.model_uplift or (self.uplift if "reason" not in self.uplift else None)
        if best is not None:
            f["uplift_pct"] = best["uplift_pct"]
            f["roi"] = best["roi"]
        f["focus"] = [name for name, *_ in self._focus_rows()] if "score" in f and not _missing(f["score"]) else None
        tx = self.inputs.data.transactions
        seen = tx.loc[tx["date"] <= self.inputs.period_end, "date"]
        if len(seen) and seen.max() <= self.inputs.period_end - pd.DateOffset(years=1):
            f["last_purchase"] = seen.max()
        return f

    def _focus_rows(self):
        k = self._card_rows("kpis")
        k = k[k["rag"].isin(("red", "amber"))].copy()
        k["order"] = k["rag"].map({"red": 0, "amber": 1})
        rows = []
        for r in k.sort_values(["order", "score"]).itertuples():
            spec = _spec(r.kpi)
            name = spec.name if spec else r.kpi
            unit = spec.unit if spec else ""
            action = ACTIONS.get(r.kpi) or (spec.definition.split(". ")[0] + "." if spec else "")
            rows.append((name, r.rag, format_value(r.value, unit, currency=self.currency, locale=self.locale),
                         format_value(r.target, unit, currency=self.currency, locale=self.locale), action))
        return rows

    # -- sections --------------------------------------------------------------------------
    def header(self) -> Html:
        """Account, period, manager and tenure, data as-of."""
        a = self.account
        kam = a["kam_start"]
        key = ("key account since " + _date(kam)) if a["is_key"] and not _missing(kam) else (
            "key account" if a["is_key"] else "not a key account")
        manager = "not recorded"
        if a["manager"] is not None:
            manager = f"{a['manager']} ({a['tenure_months']} months in the role: {a['band']})"
        rows = [
            ("Account", f"{a['name']} ({a['id']})"),
            ("Segment", " · ".join(str(x) for x in (a["industry"], a["region"]) if not _missing(x)) or "–"),
            ("Status", key),
            ("Account manager", manager),
            ("Period", _period_label(self.period)),
            ("Data as of", _date(self.inputs.data_as_of)),
            ("Currency", self.currency or "not given"),
        ]
        dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
        return Html(
            f'<header class="kt-header"><p class="kt-eyebrow">Key account report · {_e(self.period)}</p>'
            f"<h1>{_e(a['name'])}</h1><dl>{dl}</dl></header>",
            text=f"{a['name']} ({a['id']}), {self.period}",
        )

    def summary(self) -> Html:
        """The executive summary: 3 to 5 sentences from the numbers."""
        sentences = executive_summary(self.figures, currency=self.currency, locale=self.locale)
        body = "".join(f"<p>{_e(s)}</p>" for s in sentences)
        return Html(f'<div class="kt-summary">{body}</div>', text="\n".join(sentences))

    def key_figures(self) -> Html:
        """A row of headline numbers."""
        f, loc, cur = self.figures, self.locale, self.currency
        items = [
            ("Revenue, last 12 months", format_money(f.get("revenue_ttm"), cur, locale=loc),
             "change " + format_percent(f.get("revenue_ttm_growth"), locale=loc, signed=True)),
            (f"Revenue {self.period}", format_money(self.value("revenue"), cur, locale=loc),
             "gross margin " + format_percent(self.value("gross_margin_pct"), locale=loc)),
            ("3R+1 score", format_number(f.get("score"), locale=loc), f.get("rag") or "not available"),
            ("Defection risk", format_number(f.get("defection_risk"), locale=loc), "of 100"),
            ("Simple CLV", format_money(f.get("clv"), cur, locale=loc), "margin of the years ahead"),
        ]
        return Html(_figures_html(items))

    def scorecard_table(self) -> Html:
        """The 3R+1 scorecard: each KPI's value, target, score, RAG, trend and peer median."""
        t = self.inputs.targets
        k_now = self._card_rows("kpis").set_index("kpi") if self.card is not None else pd.DataFrame()
        rows = []
        for key in t["kpi"].astype(str).drop_duplicates():
            spec = _spec(key)
            pillar = spec.pillar if spec else "–"
            name = spec.name if spec else key
            if key in self.inputs.unavailable or spec is None or key not in k_now.index:
                reason = self.inputs.unavailable.get(key, "not in the KPI catalogue" if spec is None else "no value")
                rows.append((pillar, name, _na(reason), "", "", _rag_badge(None), "", "", ""))
                continue
            r = k_now.loc[key]
            unit = spec.unit
            def fmt(x, unit=unit):
                return format_value(x, unit, currency=self.currency, locale=self.locale)

            if _missing(r["value"]):
                note = self.values.loc[(self.values["kpi"] == key) & (self.values["period"] == self.period), "note"]
                known = len(note) and note.iloc[0] not in ("None", "nan")
                note = note.iloc[0] if known else f"no value in {self.period}"
                rows.append((pillar, name, _na(note), _e(fmt(r["target"])), "", _rag_badge(None), "", "", ""))
                continue
            prev = self.value(key, self.period - 1)
            delta = r["value"] - prev if not _missing(prev) else np.nan
            if _missing(delta) or delta == 0:
                trend_html = f'<span class="trend">{_e("■ " + ("–" if _missing(delta) else "no change"))}</span>'
            else:
                up = delta > 0
                good = up == (spec.direction == "higher")
                cls = f"trend {'up' if up else 'down'}-{'good' if good else 'bad'}"
                trend_html = (f'<span class="{cls}">{"▲" if up else "▼"} '
                              f'{_e(_change(delta, unit, currency=self.currency, locale=self.locale))}</span>')
            med = self.peer(key)
            pct = self.peer(key, "percentile")
            rows.append((
                pillar, name, _e(fmt(r["value"])), _e(fmt(r["target"])),
                _e(format_number(r["score"], locale=self.locale)), _rag_badge(r["rag"]), trend_html,
                _e(fmt(med)), _e("–" if _missing(pct) else f"{pct:.0f}"),
            ))
        order = {p: i for i, p in enumerate(_PILLARS)}
        rows.sort(key=lambda r: order.get(r[0], 9))
        rows = [(r[0] if i == 0 or rows[i - 1][0] != r[0] else "", *r[1:]) for i, r in enumerate(rows)]
        table = _table(
            ["Pillar", "KPI", "Value", "Target", "Score", "RAG", f"Trend on {self.period - 1}", "Peer median",
             "Percentile"],
            rows, num=(2, 3, 4, 7, 8), raw=(2, 3, 4, 5, 6, 7, 8),
            caption=f"{self.period}; targets: {self.inputs.targets_label}",
        )
        o = self._card_rows("overall")
        head = ""
        if len(o):
            o = o.iloc[0]
            change = format_number(o["trend"], locale=self.locale, signed=True)
            trend = "" if _missing(o["trend"]) else f", {change} on {self.period - 1}"
            weights = self._card_rows("pillars")
            w = ", ".join(f"{p} {x:.0f}%" for p, x in weights.set_index("pillar")["weight"].items() if x > 0)
            if isinstance(o["band"], str) and o["band"] != "fixed":
                band = f" (weights for a manager {o['band']}: {w})"
            else:
                band = f" (weights: {w})" if w else ""
            head = (f"<p>Overall score <strong>{_e(format_number(o['score'], locale=self.locale))}</strong> "
                    f"{_rag_badge(o['rag'])}{_e(trend)}{_e(band)}. Learning &amp; development is scored beside the "
                    "three R pillars, not weighted in.</p>")
        return Html(head + table)

    def pillar_chart(self):
        """The pillar scores as bars coloured by RAG."""
        p = self._card_rows("pillars")
        if p.empty:
            return Html(_na("no scorecard for this period"))
        o = self._card_rows("overall")
        overall = o["score"].iloc[0] if len(o) else None
        return Chart(pillar_chart(p, overall=overall, title=f"Pillar scores, {self.period}"),
                     alt="3R+1 pillar scores")

    def _band(self, kpi):
        p = self.inputs.peers
        b = p[(p["kpi"] == kpi) & p["period"].isin(self.periods)]
        # one group per chart: the account's segment where it has values, else the portfolio
        if b.empty:
            return None, None
        group = b["group"].value_counts().index[0]
        return b[b["group"] == group], group

    def revenue_trend(self):
        """Revenue and gross margin % by period, with the peers' median margin."""
        need = {"revenue", "gross_margin_pct"}
        if need & set(self.inputs.unavailable):
            missing = sorted(need & set(self.inputs.unavailable))
            return Html(_na("; ".join(f"{k}: {self.inputs.unavailable[k]}" for k in missing)))
        w = self.wide.reindex(self.periods)[["revenue", "gross_margin_pct"]].reset_index(names="period")
        band, group = self._band("gross_margin_pct")
        return Chart(revenue_chart(w, band, currency=self.currency, locale=self.locale),
                     alt="Revenue and gross margin by period",
                     caption=f"Dashed: median gross margin % of {group or 'peers'}.")

    def revenue_table(self) -> Html:
        """Revenue, gross margin and margin % of the last periods."""
        rows = []
        for p in self.periods[-min(len(self.periods), 5):]:
            rows.append((str(p), format_money(self.value("revenue", p), self.currency, locale=self.locale),
                         format_money(self.value("gross_margin", p), self.currency, locale=self.locale),
                         format_percent(self.value("gross_margin_pct", p), locale=self.locale),
                         format_percent(self.value("revenue_growth_rate", p), locale=self.locale, signed=True)
                         if "revenue_growth_rate" in self.wide.columns else "–"))
        return Html(_table(["Period", "Revenue", "Gross margin", "Gross margin %", "Change on previous period"], rows,
                           num=(1, 2, 3, 4)))

    def kpi_trend(self, kpi: str, *, title: str | None = None):
        """One KPI over the last periods against the peers' middle half."""
        spec = _spec(kpi)
        if spec is None or kpi in self.inputs.unavailable:
            reason = self.inputs.unavailable.get(kpi, "not in the KPI catalogue")
            return Html(f"<p>{_e(title or kpi)}: {_na(reason)}</p>")
        own = self.wide.reindex(self.periods)[[kpi]].rename(columns={kpi: "value"}).reset_index(names="period")
        if own["value"].isna().all():
            return Html(f"<p>{_e(spec.name)}: {_na('no value in the periods shown')}</p>")
        band, group = self._band(kpi)
        return Chart(trend_chart(own, band, title=title or spec.name, unit=spec.unit, currency=self.currency,
                                 locale=self.locale, band_label=group or "peers"),
                     alt=f"{spec.name} by period")

    def retention(self) -> Html:
        """Retention risk and revenue at risk, from the rule-based defection-risk KPI."""
        if "defection_risk" in self.inputs.unavailable:
            return Html(f"<p>{_na(self.inputs.unavailable['defection_risk'])}</p>")
        f, loc = self.figures, self.locale
        risk = f.get("defection_risk")
        if _missing(risk):
            return Html(f"<p>{_na(f'no defection-risk score for {self.period} (the account is not active)')}</p>")
        level = "high" if risk >= RISK_HIGH else ("medium" if risk >= RISK_HIGH / 2 else "low")
        items = []
        model = "churn_probability" in f
        if model:
            items += [
                ("Probability of loss within a year", format_percent(f["churn_probability"], locale=loc),
                 f"peer median {format_percent(f.get('segment_churn_probability'), locale=loc)}"),
                ("Revenue at risk", format_money(f.get("revenue_at_risk"), self.currency, locale=loc),
                 "probability × revenue of the last 12 months"),
            ]
        items += [
            ("Defection-risk score", f"{format_number(risk, locale=loc)} of 100", f"{level} risk"),
            ("Peer median score", format_number(self.peer("defection_risk"), locale=loc),
             f"percentile {format_number(self.peer('defection_risk', 'percentile'), locale=loc)}"),
        ]
        if not model:
            items.append(("Revenue at risk", format_money(f.get("revenue_at_risk"), self.currency, locale=loc),
                          f"yearly revenue, counted when the score is {RISK_HIGH} or more"))
        from kamtools.kpi.retention import DEFECTION_POINTS

        sig = self.signals
        if sig is None:
            table = f"<p>{_na('the warning signals need surveys, interactions and tickets')}</p>"
        else:
            rows = [(_SIGNALS.get(k, k), DEFECTION_POINTS.get(k, ""), "yes" if _SIGNALS.get(k, k) in sig else "no")
                    for k in _SIGNALS]
            table = _table(["Warning signal", "Points", f"Fires in {self.period}"], rows, num=(1,))
        if model:
            auc = self.inputs.churn_auc
            fit = "" if _missing(auc) else f" (holdout AUC {format_number(auc, decimals=2, locale=loc)})"
            method = ("Method: the probability is the logistic churn-risk model of kamtools.retention.churn_risk"
                      f"{fit}, fitted on the features known at the period end of all accounts; an account is lost "
                      "after 365 days without a purchase. Revenue at risk is that probability times the revenue of "
                      "the last twelve months. The defection-risk score is the KPI catalogue's count of warning "
                      "signals, shown to say why.")
            if not _missing(auc) and auc < 0.6:
                method += (" On its holdout the model ranks accounts little better than chance (AUC below 0.6): "
                           "read the probability with care, and the warning signals first.")
        else:
            method = ("Method: the rule-based defection-risk score of the KPI catalogue (a count of warning signals, "
                      "not a probability). Revenue at risk is the revenue of the last twelve months when the score "
                      f"is {RISK_HIGH} or more.")
        return Html(_figures_html(items) + table + f"<p class='kt-note'>{_e(method)}</p>")

    def clv(self) -> Html:
        """Customer lifetime value (simple form) with its assumptions and their sensitivity."""
        if "customer_lifetime_value" in self.inputs.unavailable:
            return Html(f"<p>{_na(self.inputs.unavailable['customer_lifetime_value'])}</p>")
        from kamtools.kpi.revenue import CLV_DISCOUNT, CLV_RETENTION, simple_clv

        cur, loc = self.currency, self.locale
        clv = self.value("customer_lifetime_value")
        annual = clv * (1 + CLV_DISCOUNT - CLV_RETENTION) / CLV_RETENTION if not _missing(clv) else np.nan
        items = [
            ("Simple CLV", format_money(clv, cur, locale=loc), f"{self.period}"),
            ("Peer median", format_money(self.peer("customer_lifetime_value"), cur, locale=loc),
             f"percentile {format_number(self.peer('customer_lifetime_value', 'percentile'), locale=loc)}"),
            ("Gross margin, last 12 months", format_money(annual, cur, locale=loc), "the yearly margin it builds on"),
        ]
        rows = [(format_percent(r, decimals=0, locale=loc),
                 format_money(simple_clv(annual, retention=r, discount=CLV_DISCOUNT), cur, locale=loc))
                for r in (0.80, 0.85, 0.90, 0.95)]
        table = _table(["Yearly retention", "CLV"], rows, num=(1,),
                       caption="What retention is worth (discount rate "
                       f"{format_percent(CLV_DISCOUNT, decimals=0, locale=loc)} a year)")
        note = ("<p class='kt-note'>Method: the catalogue's simple CLV, yearly gross margin × r / (1 + d − r), with "
                f"r = {CLV_RETENTION} and d = {CLV_DISCOUNT} assumed for every account.</p>")
        return Html(_figures_html(items) + table + note)

    def uplift_roi(self) -> Html:
        """The KAM uplift and ROI of this account: the difference-in-differences estimate where there is one,
        and the simple observed comparison with accounts outside the programme."""
        m, cur, loc = self.model_uplift, self.currency, self.locale
        model = ""
        if m is not None:
            items = [
                ("Gross margin since KAM entry", format_money(m["observed"], cur, locale=loc),
                 f"{m['periods']} months"),
                ("Expected without KAM", format_money(m["counterfactual"], cur, locale=loc), "estimated"),
                ("Incremental gross margin", format_money(m["incremental"], cur, locale=loc, signed=True),
                 format_percent(m["uplift_pct"], locale=loc, signed=True)),
                ("ROI", format_percent(m["roi"], decimals=0, locale=loc),
                 f"on a KAM cost of {format_money(m['cost'], cur, locale=loc)}"),
            ]
            model = _figures_html(items) + (
                "<p class='kt-note'>Method: kamtools.roi.programme_roi, a staggered difference-in-differences "
                "(accounts not yet or never in the programme as controls, fitted on all accounts); the expected "
                "margin is this account's estimated counterfactual. A single account's estimate is noisy: read it "
                "as a ranking, not as a fact. ROI = (incremental margin − KAM cost) / KAM cost.</p>")
        u = self.uplift
        if "reason" in u:
            return Html(model or f"<p>{_na(u['reason'])}</p>")
        simple = self._simple_uplift_html(u)
        if model:
            return Html(model + "<h3>Cross-check: observed against comparable accounts</h3>" + simple)
        return Html(simple)

    def _simple_uplift_html(self, u) -> str:
        cur, loc = self.currency, self.locale
        items = [
            ("Margin per month before KAM", format_money(u["before"], cur, locale=loc), "12 months before entry"),
            ("Margin per month since", format_money(u["after"], cur, locale=loc), f"{u['months']} months"),
            ("Expected without KAM", format_money(u["expected"], cur, locale=loc),
             f"comparison accounts: {format_percent(u['comparison_growth'], locale=loc, signed=True)}"),
            ("Uplift", format_percent(u["uplift_pct"], locale=loc, signed=True),
             format_money(u["per_month"], cur, locale=loc, signed=True) + " a month"),
        ]
        rows = [
            ("Incremental gross margin since KAM entry", format_money(u["incremental"], cur, locale=loc, signed=True)),
            ("KAM programme cost in the same months", format_money(u["cost"], cur, locale=loc)),
            ("ROI = (incremental margin − cost) / cost", format_percent(u["roi"], decimals=0, locale=loc)),
        ]
        note = (f"<p class='kt-note'>Method: the account's average monthly gross margin since KAM entry against the "
                f"twelve months before, compared with the median change of {_e(u['group'])} over the same months "
                f"({u['comparison_n']} accounts; an anonymous median). A simple observed comparison, not a causal "
                "estimate.</p>")
        return _figures_html(items) + _table(None, rows, num=(1,)) + note

    def engagement_table(self) -> Html:
        """Engagement and customer voice over the last periods."""
        keys = ["engagement_frequency", "executive_sponsorship", "meeting_attendance_rate", "nps", "csat"]
        keys = [k for k in keys if _spec(k) is not None and k not in self.inputs.unavailable]
        if not keys:
            return Html(f"<p>{_na('no engagement or survey data')}</p>")
        ps = self.periods[-min(len(self.periods), 4):]
        rows = [(_spec(k).name, *[format_value(self.value(k, p), _spec(k).unit, locale=self.locale) for p in ps],
                 format_value(self.peer(k), _spec(k).unit, locale=self.locale)) for k in keys]
        return Html(_table(["KPI", *map(str, ps), f"Peer median {self.period}"], rows,
                           num=tuple(range(1, len(ps) + 2))))

    def focus(self) -> Html:
        """Recommended focus areas: the scorecard's reds, then ambers, weakest first."""
        if self.card is None or _missing(self.figures.get("score")):
            return Html(f"<p>{_na(f'no scorecard for {self.period}: no KPI of the three R pillars has a value')}</p>")
        rows = self._focus_rows()
        if not rows:
            return Html("<p>Every scorecard KPI is on target this period: keep the account plan's rhythm.</p>")
        items = "".join(
            f"<li>{_rag_badge(rag)} <strong>{_e(name)}</strong>: {_e(value)} against a target of {_e(target)}. "
            f"{_e(action)}</li>"
            for name, rag, value, target, action in rows
        )
        return Html(f"<ol>{items}</ol>")

    def footer(self) -> Html:
        """Parameters, data fingerprint and notes."""
        params = self.parameters or {}
        rows = [(k, "" if v is None else str(v)) for k, v in params.items() if k != "prepared"]
        notes = "".join(f"<li>{_e(n)}</li>" for n in self.notes)
        return Html(
            '<footer class="kt-footer"><h3>About this report</h3>'
            + _table(["Parameter", "Value"], rows)
            + f"<p>Data source: {_e(self.inputs.source)}. Data fingerprint (SHA-256): "
            f"<code>{_e(self.inputs.fingerprint)}</code>.</p>"
            f"<p>Rendered by kamtools {_e(__version__)}. Comparisons with other accounts are medians and quartiles "
            f"over at least {MIN_PEERS} accounts; no other account is named.</p>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</footer>"
        )


def account_report(data="sample", account_id: str = "", *, period_end, period: str = "Q", currency: str | None = None,
                   targets=None, locale: str = "en", prepared: str | None = None, segment: str = "industry"
                   ) -> AccountReport:
    """The report of one account, as the template ``account_report.ipynb`` shows it.

    Parameters
    ----------
    data : KamData, source, or "sample"
        The whole data set (comparisons need it); ignored when ``prepared`` is given.
    account_id : str
        Empty: the first key account of the data.
    period_end, period, targets, segment
        See :func:`prepare`.
    currency : str, optional
        ISO code, when the source does not say.
    locale : str
        Number style, see :data:`LOCALES`.
    prepared : str, optional
        Path of the inputs :func:`run` prepared for this report (a pickle it
        wrote itself); then ``data`` is not read.

    Returns
    -------
    AccountReport

    Examples
    --------
    >>> import kamtools as kt
    >>> rep = kt.report.account_report(kt.sample.load(), "A0001", period_end="2025-12-31")
    >>> rep.account["name"], str(rep.period)
    ('Westfield Power SA', '2025Q4')
    """
    params = {"data": _source_label(data), "account_id": account_id, "period_end": str(period_end),
              "period_length": period, "currency": currency or "", "targets": "" if targets is None else str(targets),
              "number_locale": locale}
    currency = currency or None
    if prepared:
        inputs = _read_prepared(prepared)
        if not isinstance(inputs, AccountInputs):
            raise ParameterError(f"prepared={prepared!r} does not hold an account report's inputs.")
        if account_id and inputs.account_id != account_id:
            raise ParameterError(f"prepared inputs are for account {inputs.account_id!r}, not {account_id!r}.")
    else:
        loaded = _load(data, currency)
        if not account_id:
            keys = loaded.accounts.loc[loaded.accounts["is_key_account"].fillna(False).astype(bool), "account_id"]
            if keys.empty:
                raise ParameterError("account_id is empty and the data has no key account; pass an account id.")
            account_id = keys.iloc[0]
        inputs = prepare(loaded, [account_id], period_end=period_end, period=period, targets=targets or None,
                         segment=segment)[account_id]
        inputs.source = params["data"]
    params["account_id"] = inputs.account_id
    return AccountReport(inputs, locale=locale, parameters=params)


# --------------------------------------------------------------------------- the portfolio report


class PortfolioReport:
    """The report over all key accounts: scorecard overview, concentration, programme ROI, retention."""

    def __init__(self, inputs: PortfolioInputs, *, locale: str = "en", parameters: Mapping | None = None):
        self.inputs = inputs
        self.locale = _locale(locale)
        self.currency = inputs.data.currency
        self.parameters = dict(parameters or {})
        self.notes = list(inputs.notes)
        self.freq = inputs.freq
        self.period = inputs.period_end.to_period(inputs.freq)
        acc = inputs.data.accounts
        self.accounts = acc.set_index("account_id")
        self.key_ids = acc.loc[acc["is_key_account"].fillna(False).astype(bool), "account_id"].tolist()
        self.card = self._scorecard()

    def _scorecard(self):
        from kamtools.scorecard import scorecard

        t = self.inputs.targets
        v = self.inputs.values
        t = t[t["kpi"].isin(set(v["kpi"])) & ~t["kpi"].isin(self.inputs.unavailable)]
        if t.empty or not self.key_ids:
            return None
        vals = v[v["kpi"].isin(set(t["kpi"])) & v["entity"].isin(self.key_ids)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return scorecard(vals, targets=t, data=self.inputs.data)
            except ParameterError:
                return scorecard(vals, targets=t, data=self.inputs.data, weights="equal")

    def header(self) -> Html:
        """Portfolio, period, counts, data as-of."""
        acc = self.inputs.data.accounts
        rows = [
            ("Period", _period_label(self.period)),
            ("Accounts", f"{len(acc):,} ({len(self.key_ids):,} key accounts)"),
            ("Data as of", _date(self.inputs.data_as_of)),
            ("Currency", self.currency or "not given"),
        ]
        dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
        return Html(f'<header class="kt-header"><p class="kt-eyebrow">Portfolio report · {_e(self.period)}</p>'
                    f"<h1>Key account portfolio</h1><dl>{dl}</dl></header>")

    def overview(self) -> Html:
        """The scorecard of every key account in the period, worst first."""
        if self.card is None:
            return Html(f"<p>{_na('no scorecard KPI could be computed')}</p>")
        o = self.card.overall[self.card.overall["period"] == self.period].set_index("entity")
        p = self.card.pillars[self.card.pillars["period"] == self.period].pivot(index="entity", columns="pillar",
                                                                                 values="score")
        counts = o["rag"].value_counts()
        head = _figures_html([(c, str(int(counts.get(c, 0))), "key accounts") for c in ("green", "amber", "red")])
        rows = []
        for a in o.sort_values("score").index:
            r = o.loc[a]
            name = self.accounts.at[a, "account_name"] if a in self.accounts.index else a
            rows.append((_e(name), _e(a), _e(format_number(r["score"], locale=self.locale)), _rag_badge(r["rag"]),
                         _e(format_number(r["trend"], locale=self.locale, signed=True)),
                         *[_e(format_number(p.at[a, c], locale=self.locale)) if a in p.index and c in p.columns else "–"
                           for c in _PILLARS]))
        table = _table(["Account", "Id", "Score", "RAG", "Trend", *[c.capitalize() for c in _PILLARS]], rows,
                       num=(2, 4, 5, 6, 7, 8), raw=tuple(range(9)), caption=f"{self.period}, worst first")
        note = ""
        if o["score"].isna().any():
            note = ("<p class='kt-note'>n/a: no KPI of the three R pillars has a value in the period, typically "
                    "because the account no longer buys. Learning is the account manager's score.</p>")
        return Html(head + table + note)

    def score_chart(self):
        """Distribution of the overall scores."""
        if self.card is None:
            return Html(f"<p>{_na('no scorecard')}</p>")
        o = self.card.overall[self.card.overall["period"] == self.period]
        return Chart(score_distribution_chart(o["score"], title=f"Overall scores of the key accounts, {self.period}"),
                     alt="Distribution of overall scores")

    def _ttm(self) -> pd.Series:
        v = self.inputs.values
        ttm = v[(v["kpi"] == "annual_revenue_per_account") & (v["period"] == self.period)]
        return ttm.set_index("entity")["value"].dropna()

    def concentration(self) -> Html:
        """How much revenue hangs on few accounts, and on the key accounts."""
        from kamtools.kpi import REGISTRY, compute

        ttm = self._ttm()
        if ttm.empty:
            return Html(f"<p>{_na('no revenue of the last twelve months')}</p>")
        loc, cur = self.locale, self.currency
        total = ttm[ttm > 0].sum()
        key = self.accounts["is_key_account"].fillna(False).astype(bool)
        key_share = ttm[ttm.index.isin(self.key_ids) & (ttm > 0)].sum() / total if total > 0 else np.nan
        top = ttm.sort_values(ascending=False)
        share = (lambda x: x / total) if total > 0 else (lambda x: np.nan)
        items = [("Revenue, last 12 months", format_money(total, cur, locale=loc), "all accounts"),
                 ("Key accounts' share", format_percent(key_share, locale=loc), f"{len(self.key_ids)} key accounts"),
                 ("Largest account's share", format_percent(share(top.iloc[0]), locale=loc), ""),
                 ("Top 10 accounts' share", format_percent(share(top.iloc[:10].clip(lower=0).sum()), locale=loc), "")]
        extra = ""
        keys = [k for k in ("top_account_revenue_share", "revenue_concentration") if k in REGISTRY]
        if keys:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pv = compute(self.inputs.data, keys, by="portfolio", period=self.freq, as_of=self.inputs.period_end,
                             start=self.inputs.data_start)
            pv = pv[pv["period"].isin(pd.period_range(end=self.period, periods=TREND_PERIODS[self.freq],
                                                      freq=self.period.freq))]
            w = pv.pivot_table(index="period", columns="kpi", values="value", aggfunc="first")
            rows = [(str(p), *[format_value(w.at[p, k], REGISTRY[k].unit, locale=loc) for k in keys]) for p in w.index]
            short = {"top_account_revenue_share": "Revenue share of the top 20% of accounts",
                     "revenue_concentration": "Concentration (HHI, 0-1)"}
            extra = _table(["Period", *[short.get(k, REGISTRY[k].name) for k in keys]], rows,
                           num=tuple(range(1, len(keys) + 1)),
                           caption="Dependency by period (HHI: 1/n for n equal accounts, 1 for one account)")
        rows = []
        cum = 0.0
        for a, r in top.iloc[:10].items():
            cum += max(r, 0)
            rows.append((self.accounts.at[a, "account_name"], a, "yes" if key.get(a, False) else "no",
                         format_money(r, cur, locale=loc), format_percent(r / total, locale=loc),
                         format_percent(cum / total, locale=loc)))
        table = _table(["Account", "Id", "Key", "Revenue, 12 months", "Share", "Cumulative"], rows, num=(3, 4, 5),
                       caption="The ten largest accounts")
        return Html(_figures_html(items) + extra + table)

    def concentration_chart(self):
        ttm = self._ttm()
        if ttm.empty:
            return Html(f"<p>{_na('no revenue of the last twelve months')}</p>")
        key = self.accounts["is_key_account"].fillna(False).astype(bool)
        return Chart(concentration_chart(ttm, key, locale=self.locale), alt="Revenue concentration curve")

    def uplift_estimates(self) -> pd.DataFrame:
        """Per key account: observed margin uplift since KAM entry against comparison accounts, cost and ROI.

        Returns
        -------
        DataFrame
            ``account_id, uplift_pct, per_month, months, incremental, cost, roi,
            reason`` (why there is no estimate, else empty), one row per key account.
        """
        if getattr(self, "_uplift", None) is not None:
            return self._uplift
        rows = []
        d = self.inputs.data
        for a in self.key_ids:
            c = self.inputs.comparisons.get(a, {"reason": "no comparison"})
            u = dict(c) if "reason" in c else None
            if u is None:
                sub = AccountReport.__new__(AccountReport)  # the account report's computation, on its rows only
                sub.inputs = AccountInputs(
                    account_id=a, data=d.subset([a]), values=self.inputs.values.iloc[:0], peers=pd.DataFrame(),
                    comparison=c, unavailable={}, targets=self.inputs.targets, period_end=self.inputs.period_end,
                    freq=self.freq, data_start=self.inputs.data_start, data_as_of=self.inputs.data_as_of,
                    fingerprint=self.inputs.fingerprint, source=self.inputs.source, targets_label="", segment=None,
                )
                sub.account = {"kam_start": self.accounts.at[a, "kam_start"]}
                u = sub._uplift()
            rows.append({"account_id": a, **{k: u.get(k, np.nan) for k in
                                             ("uplift_pct", "per_month", "months", "incremental", "cost", "roi")},
                         "reason": u.get("reason", "")})
        self._uplift = pd.DataFrame(rows, columns=["account_id", "uplift_pct", "per_month", "months", "incremental",
                                                   "cost", "roi", "reason"])
        return self._uplift

    def programme(self) -> dict:
        """The programme's totals over the key accounts with an estimate: incremental margin, cost, ROI."""
        u = self.uplift_estimates()
        u = u[u["reason"] == ""]
        inc, cost = float(u["incremental"].sum()), float(u["cost"].fillna(0).sum())
        return {"accounts": len(u), "incremental": inc, "cost": cost,
                "roi": (inc - cost) / cost if cost > 0 else np.nan}

    def programme_roi(self) -> Html:
        """The programme's return: the difference-in-differences estimate with its interval where there is one,
        and the simple observed comparison per key account."""
        m = self.inputs.models.get("roi")
        simple = self._simple_programme_roi()
        if not m:
            return simple
        cur, loc = self.currency, self.locale
        level = f"{100 * (1 - m['alpha']):.0f}%"

        def interval(ci, fmt):
            return f"{level} interval {fmt(ci[0])} to {fmt(ci[1])}"

        def money(x):
            return format_money(x, cur, locale=loc)

        def pct(x):
            return format_percent(x, decimals=0, locale=loc)

        def payback(x):
            if not np.isfinite(x):
                return "not within the data"
            return f"{format_number(x, locale=loc)} month{'' if round(x) == 1 else 's'}"

        items = [
            ("Programme ROI", pct(m["roi"]), interval(m["roi_ci"], pct)),
            ("Incremental gross margin", format_money(m["incremental"], cur, locale=loc, signed=True),
             interval(m["incremental_ci"], money)),
            ("Programme cost", money(m["cost"]), f"{m['accounts']} key accounts"),
            ("Payback", payback(m["payback"]), interval(m["payback_ci"], payback)),
        ]
        rows = []
        for r in self.inputs.models["roi_accounts"].sort_values("roi").itertuples():
            name = self.accounts.at[r.account_id, "account_name"] if r.account_id in self.accounts.index else ""
            rows.append((name, r.account_id, money(r.observed), money(r.counterfactual),
                         format_money(r.incremental, cur, locale=loc, signed=True), money(r.cost), pct(r.roi)))
        table = _table(["Account", "Id", "Margin since entry", "Expected without KAM", "Incremental", "KAM cost",
                        "ROI"], rows, num=(2, 3, 4, 5, 6), caption="Per key account, lowest ROI first")
        p = self.programme()
        note = ("<p class='kt-note'>Method: kamtools.roi.programme_roi, a staggered difference-in-differences of "
                "monthly gross margin (accounts not yet or never in the programme as controls), incremental margin "
                "summed over the key accounts' months since entry, ROI = (incremental margin − programme cost) / "
                "programme cost with its interval. Single accounts are noisy: read them as a ranking. Cross-check, "
                f"the simple observed comparison with accounts outside the programme: ROI {_e(pct(p['roi']))} over "
                f"{p['accounts']} key accounts (below).</p>")
        return Html(_figures_html(items) + table + note + "<h3>Cross-check: observed against comparable accounts</h3>"
                    + simple.markup)

    def _simple_programme_roi(self) -> Html:
        cur, loc = self.currency, self.locale
        rows = []
        for r in self.uplift_estimates().itertuples():
            name = self.accounts.at[r.account_id, "account_name"]
            if r.reason:
                rows.append((name, r.account_id, "–", "–", "–", "–", r.reason))
            else:
                rows.append((name, r.account_id, format_percent(r.uplift_pct, locale=loc, signed=True),
                             format_money(r.incremental, cur, locale=loc, signed=True),
                             format_money(r.cost, cur, locale=loc), format_percent(r.roi, decimals=0, locale=loc), ""))
        p = self.programme()
        items = [("Incremental gross margin", format_money(p["incremental"], cur, locale=loc, signed=True),
                  f"{p['accounts']} key accounts with a comparison"),
                 ("Programme cost, same accounts and months", format_money(p["cost"], cur, locale=loc), ""),
                 ("Programme ROI", format_percent(p["roi"], decimals=0, locale=loc), "(incremental − cost) / cost")]
        table = _table(["Account", "Id", "Uplift", "Incremental margin", "KAM cost", "ROI", "Not estimated because"],
                       rows, num=(2, 3, 4, 5))
        note = ("<p class='kt-note'>Method: for each key account, its average monthly gross margin since KAM entry "
                "against the twelve months before, compared with the median change of the accounts of its segment "
                "outside the programme over the same months. An observed comparison, not a causal estimate; "
                "kamtools.roi's difference-in-differences with a confidence interval replaces it when available.</p>")
        return Html(_figures_html(items) + table + note)

    def retention_curves(self) -> pd.DataFrame:
        """Share of accounts still buying by months since their first purchase, key vs other accounts.

        Kaplan-Meier curves from :func:`kamtools.retention.kaplan_meier` when
        it is there (``method`` says which was used); else the empirical
        share: at month m, among the accounts whose first purchase is at
        least m months before the period end (so each could be seen for m
        months), the share not lost by then. Lost: no purchase for 365 days
        (:func:`kamtools.retention.durations`).

        Returns
        -------
        DataFrame
            ``group`` ("key accounts", "other accounts"), ``month``, ``share``,
            ``lower``, ``upper`` (95% band; Kaplan-Meier only), ``accounts``
            (at risk, or observed for that long).
        """
        if getattr(self, "_curves", None) is not None:
            return self._curves
        from kamtools import retention as ret

        d = ret.durations(self.inputs.data, as_of=self.inputs.period_end)
        labels = {True: "key accounts", False: "other accounts"}
        self.retention_method, self.logrank_p = "empirical", None
        km_fn = getattr(ret, "kaplan_meier", None)
        if km_fn is not None:
            try:
                km = km_fn(d[d["duration"] > 0], duration="duration", event="event", group="is_key_account")
                t = km.table_
                self._curves = pd.DataFrame({
                    "group": t["group"].map(labels), "month": t["time"].to_numpy() / 30.4375,
                    "share": t["survival"].to_numpy(), "lower": t["lower"].to_numpy(), "upper": t["upper"].to_numpy(),
                    "accounts": t["at_risk"].to_numpy(),
                }).sort_values(["group", "month"], kind="stable").reset_index(drop=True)
                self.retention_method = "Kaplan-Meier"
                lr = getattr(km, "logrank_", None)
                self.logrank_p = None if lr is None else float(lr["p"].iloc[0])
                return self._curves
            except (KamtoolsError, KeyError, AttributeError, ValueError, TypeError) as err:
                self.notes.append(f"Kaplan-Meier curves could not be drawn ({err}); the empirical share is shown.")
        months_seen = (self.inputs.period_end - d["start"]).dt.days / 30.4375
        lived = d["duration"] / 30.4375
        out = []
        horizon = int(np.floor(months_seen.max())) if len(d) else 0
        for flag, label in labels.items():
            mask = d["is_key_account"] == flag
            for m in range(horizon + 1):
                eligible = mask & (months_seen >= m)
                if eligible.sum() < MIN_PEERS:
                    break
                alive = ~(d["event"] & (lived < m))
                out.append({"group": label, "month": float(m), "share": float(alive[eligible].mean()),
                            "lower": np.nan, "upper": np.nan, "accounts": int(eligible.sum())})
        self._curves = pd.DataFrame(out, columns=["group", "month", "share", "lower", "upper", "accounts"])
        return self._curves

    def retention(self) -> Html:
        """Retention at 12, 24, 36 and 48 months, key accounts against the others."""
        c = self.retention_curves()
        if c.empty:
            return Html(f"<p>{_na('too few accounts')}</p>")
        rows = []
        for g, frame in c.groupby("group", sort=False):
            cells = []
            for m in (12, 24, 36, 48):
                seen = frame[frame["month"] <= m]
                observed = frame["month"].max() >= m  # no extrapolation beyond the curve
                cells.append(format_percent(seen["share"].iloc[-1], locale=self.locale) if observed else "–")
            rows.append((g, *cells))
        if self.retention_method == "Kaplan-Meier":
            test = "" if self.logrank_p is None else (
                f" Log-rank test of key against other accounts: p = {self.logrank_p:.3f}.")
            method = ("Method: Kaplan-Meier estimates (kamtools.retention.kaplan_meier) of the share of accounts still "
                      "buying m months after their first purchase; an account is lost after 365 days without a "
                      f"purchase, and accounts still buying are censored at the period end.{test}")
        else:
            method = ("Method: the empirical share of accounts still buying m months after their first purchase, among "
                      "the accounts observed for at least m months (an account is lost after 365 days without a "
                      "purchase).")
        method += " Accounts that were customers before the data begin enter at their first recorded purchase."
        return Html(_table(["", "12 months", "24 months", "36 months", "48 months"], rows, num=(1, 2, 3, 4))
                    + f"<p class='kt-note'>{_e(method)}</p>")

    def retention_chart(self):
        c = self.retention_curves()
        if c.empty:
            return Html(f"<p>{_na('too few accounts')}</p>")
        return Chart(retention_chart(c, locale=self.locale), alt="Retention curves, key and other accounts",
                     caption=f"{self.retention_method} estimate; shaded: 95% band." if c["lower"].notna().any() else
                     f"{self.retention_method} estimate.")

    def footer(self) -> Html:
        rows = [(k, "" if v is None else str(v)) for k, v in self.parameters.items() if k != "prepared"]
        notes = "".join(f"<li>{_e(n)}</li>" for n in self.notes)
        return Html(
            '<footer class="kt-footer"><h3>About this report</h3>' + _table(["Parameter", "Value"], rows)
            + f"<p>Data source: {_e(self.inputs.source)}. Data fingerprint (SHA-256): "
            f"<code>{_e(self.inputs.fingerprint)}</code>.</p><p>Rendered by kamtools {_e(__version__)}. "
            "This report names every key account: it is for the supplier's own use, not for a client.</p>"
            + (f"<ul>{notes}</ul>" if notes else "") + "</footer>"
        )


def portfolio_report(data="sample", *, period_end, period: str = "Q", currency: str | None = None, targets=None,
                     locale: str = "en", prepared: str | None = None, segment: str = "industry") -> PortfolioReport:
    """The portfolio report, as the template ``portfolio_report.ipynb`` shows it.

    Examples
    --------
    >>> import kamtools as kt
    >>> rep = kt.report.portfolio_report(kt.sample.load(), period_end="2025-12-31")
    >>> len(rep.key_ids)
    40
    """
    params = {"data": _source_label(data), "period_end": str(period_end), "period_length": period,
              "currency": currency or "", "targets": "" if targets is None else str(targets), "number_locale": locale}
    if prepared:
        inputs = _read_prepared(prepared)
        if not isinstance(inputs, PortfolioInputs):
            raise ParameterError(f"prepared={prepared!r} does not hold the portfolio report's inputs.")
    else:
        inputs = prepare_portfolio(_load(data, currency or None), period_end=period_end, period=period,
                                   targets=targets or None, segment=segment)
        inputs.source = params["data"]
    return PortfolioReport(inputs, locale=locale, parameters=params)


# =========================================================================== the runner

KERNEL_NAME = "kamtools-python"
_PY_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def template_parameters(template=None) -> pd.DataFrame:
    """The parameters of a template's ``parameters`` cell: name, type, default, help.

    Uses papermill's inspection; the type is the annotation (``name: str = ...``),
    else the type of the default value.

    Examples
    --------
    >>> import kamtools as kt
    >>> kt.report.template_parameters().index.tolist()[:3]
    ['data', 'account_id', 'period_end']
    """
    import ast

    from papermill import inspect_notebook

    path = Path(template) if template is not None else ACCOUNT_TEMPLATE
    if not path.exists():
        raise ParameterError(f"template={str(path)!r}: no such notebook. The templates are in {TEMPLATES}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = inspect_notebook(str(path))
    if not params:
        raise ParameterError(f"{path.name} has no cell tagged 'parameters'; papermill needs one.")
    rows = []
    for name, p in params.items():
        kind = p["inferred_type_name"]
        try:
            default = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError):
            default = p["default"]
        if kind in ("None", "", None):
            kind = type(default).__name__ if default is not None else "any"
        rows.append({"name": name, "type": kind, "default": default, "help": p["help"]})
    return pd.DataFrame(rows).set_index("name")


def check_parameters(parameters: Mapping, *, template=None) -> dict:
    """Check parameters against a template's ``parameters`` cell, before anything runs.

    Raises
    ------
    ParameterError
        For a name the template does not have (with the closest names and all
        valid ones) or a value of the wrong type (ints pass for floats).

    Examples
    --------
    >>> import kamtools as kt
    >>> kt.report.check_parameters({"acount_id": "A0001"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kamtools.exceptions.ParameterError: Unknown parameter 'acount_id' ... Did you mean 'account_id'? ...
    """
    spec = template_parameters(template)
    name = Path(template).name if template is not None else ACCOUNT_TEMPLATE.name
    valid = ", ".join(spec.index)
    for key, value in parameters.items():
        if key not in spec.index:
            close = difflib.get_close_matches(key, spec.index, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParameterError(f"Unknown parameter {key!r} for {name}.{hint} Valid parameters: {valid}.")
        kind = spec.at[key, "type"]
        want = _PY_TYPES.get(kind)
        if want is None:
            continue
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ParameterError(
                f"Parameter {key!r} of {name} must be {kind} (default {spec.at[key, 'default']!r}); got "
                f"{type(value).__name__} {value!r}."
            )
    return dict(parameters)


def _coerce(text: str, kind: str):
    """A command-line string as the template's type."""
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(text)
    return text


def parse_parameters(pairs: Iterable[str], *, template=None) -> dict:
    """``NAME=VALUE`` strings (from the command line) as typed template parameters."""
    spec = template_parameters(template)
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"-p {pair!r}: write parameters as NAME=VALUE.")
        key, text = pair.split("=", 1)
        key = key.strip()
        kind = spec.at[key, "type"] if key in spec.index else "str"
        try:
            out[key] = _coerce(text, kind)
        except ValueError as err:
            raise ParameterError(f"Parameter {key!r} must be {kind}; got {text!r}.") from err
    return out


# --------------------------------------------------------------------------- files


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that it appears complete at its final path or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_RESERVED = {"index", "manifest", "portfolio"}


def _stem(account_id: str) -> str:
    """A safe file name for an account's report; ids that are not plain get a hash suffix."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", account_id) and account_id.lower() not in _RESERVED:
        return account_id
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", account_id).strip("._-")[:40] or "account"
    return f"{slug}-{hashlib.sha1(account_id.encode()).hexdigest()[:8]}"


def _renderer_hash(templates: Iterable[Path]) -> str:
    """Hash of what shapes a report: the notebook templates, the HTML template, this module and the version.

    Changes elsewhere in kamtools (a KPI's definition, say) are not seen: bump
    the version or pass ``force=True`` to re-render after them.
    """
    h = hashlib.sha256()
    files = [*templates, *sorted(HTML_TEMPLATES.rglob("*")), Path(__file__)]
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    h.update(__version__.encode())
    return h.hexdigest()


def _file_hash(path) -> str | None:
    if path is None or (isinstance(path, str) and not path):
        return None
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


# --------------------------------------------------------------------------- PDF


def chromium_path() -> str | None:
    """A Chromium/Chrome executable for PDF export: $KAMTOOLS_CHROMIUM, else one on PATH."""
    env = os.environ.get("KAMTOOLS_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


_PDF_HELP = (
    "PDF export needs 1) the Playwright package (pip install playwright, or pip install 'nbconvert[webpdf]') and "
    "2) a Chromium browser: apt-get install chromium (Debian/Ubuntu), or set KAMTOOLS_CHROMIUM to the path of a "
    "Chrome/Chromium executable. Or leave pdf out of --format: the HTML prints to PDF from any browser."
)


def _check_pdf() -> str:
    import importlib.util

    browser = chromium_path()
    if importlib.util.find_spec("playwright") is None or browser is None:
        missing = []
        if importlib.util.find_spec("playwright") is None:
            missing.append("the Playwright package is not installed")
        if browser is None:
            missing.append("no Chromium was found")
        raise ParameterError(f"Cannot write PDF: {' and '.join(missing)}. {_PDF_HELP}")
    return browser


def _html_to_pdf(page_html: str, browser: str, workdir: Path) -> bytes:
    """Print HTML to PDF with a system Chromium (Playwright launched with ``executable_path``).

    nbconvert's webpdf exporter cannot be pointed at a system browser, so this
    small launcher does what it does with the browser given.
    """
    from playwright.sync_api import sync_playwright

    page_file = workdir / "report.html"
    page_file.write_text(page_html, encoding="utf-8")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browser, args=["--no-sandbox"], handle_sigint=False,
                               handle_sigterm=False, handle_sighup=False)
        try:
            page = b.new_page()
            page.emulate_media(media="print")
            page.goto(page_file.as_uri(), wait_until="load")
            return page.pdf(print_background=True, format="A4", prefer_css_page_size=True)
        finally:
            b.close()


# --------------------------------------------------------------------------- the worker

_W: dict = {}  # per-process state of a worker: templates, exporter, kernel manager class


def _kernel_manager_class():
    """A kernel manager whose kernel is always this Python (sys.executable), whatever kernelspecs exist."""
    if "km" in _W:
        return _W["km"]
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec

    class KamtoolsKernelManager(AsyncKernelManager):
        @property
        def kernel_spec(self):
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    display_name=f"Python {sys.version_info.major}.{sys.version_info.minor} (kamtools)",
                    language="python", name=KERNEL_NAME, metadata={"debugger": False},
                    env={"PYDEVD_DISABLE_FILE_VALIDATION": "1"},
                )
            return self._kernel_spec

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            # the kernel's own stdout/stderr go to a log in the report's working directory
            log = open(Path(kw.get("cwd") or ".") / "kernel.log", "ab")  # noqa: SIM115, ASYNC230 (tiny, local)
            try:
                kw["stdout"] = kw["stderr"] = log
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                log.close()

    _W["km"] = KamtoolsKernelManager
    return KamtoolsKernelManager


def _exporter():
    if "html" in _W:
        return _W["html"]
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    c = Config()
    c.TemplateExporter.exclude_input = True
    c.TemplateExporter.exclude_input_prompt = True
    c.TemplateExporter.exclude_output_prompt = True
    _W["html"] = HTMLExporter(config=c, template_name="kamtools", extra_template_basedirs=[str(HTML_TEMPLATES)])
    return _W["html"]


def _template_node(path: str):
    import nbformat

    cache = _W.setdefault("templates", {})
    if path not in cache:
        cache[path] = nbformat.read(path, as_version=4)
    return cache[path]


def _noop():
    """A first task that makes the pool start a worker (and run its initializer) right away."""


def _start_pool(workers: int):
    """A pool of spawned worker processes, started now (each loads papermill and nbconvert once)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(os.getpid(),))
    with _main_not_reimported():  # each submit starts a worker while none is idle yet
        for _ in range(workers):
            pool.submit(_noop)
    return pool


class _main_not_reimported:
    """Keep spawned workers from re-running the caller's script.

    A spawned process imports the parent's ``__main__`` module again, so a
    script that calls :func:`run` without an ``if __name__ == "__main__":``
    guard would run again in every worker. The workers need nothing from it
    (their code is in this module), so while they start, ``__main__`` shows
    neither a file nor a spec to re-import.
    """

    def __enter__(self):
        self.main = sys.modules.get("__main__")
        self.saved = {k: getattr(self.main, k) for k in ("__file__", "__spec__") if hasattr(self.main, k)}
        for k in self.saved:
            setattr(self.main, k, None)
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            setattr(self.main, k, v)


def _exit_with_parent(parent: int, every: float = 1.0):
    """End this worker when the process that started it is gone (killed runs leave no orphans)."""
    import threading

    def watch():
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="kamtools-parent-watch", daemon=True).start()


def _worker_init(parent: int | None = None):
    """Load the heavy modules once per worker process."""
    import logging

    if parent is not None:
        _exit_with_parent(parent)

    import nbformat  # noqa: F401
    import papermill  # noqa: F401

    logging.getLogger("papermill").setLevel(logging.ERROR)
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    _exporter()
    _kernel_manager_class()


def _cell_error(err) -> dict:
    """The error of a failed notebook, with the failing cell."""
    out = {"type": getattr(err, "ename", type(err).__name__), "message": str(getattr(err, "evalue", err))}
    if hasattr(err, "cell_index"):
        src = (getattr(err, "source", "") or "").strip()
        out["cell"] = {"index": err.cell_index, "execution_count": getattr(err, "exec_count", None),
                       "source": src[:500]}
    return out


def _render(job: dict) -> dict:
    """Render one report in a fresh working directory and a fresh kernel; return its files as bytes."""
    import copy

    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    if "html" not in _W:
        _worker_init()
    t0 = time.perf_counter()
    if job.get("started"):  # the local pool learns from it which reports were running if a worker dies
        (Path(job["started"]) / _marker(job["report"])).touch()
    workdir = Path(tempfile.mkdtemp(prefix="job-", dir=job["tmp"]))
    result = {"report": job["report"], "status": "ok", "outputs": {}, "error": None}
    try:
        if job.get("notebook") is not None:  # shipped with the task: the template may not exist where this runs
            nb = nbformat.reads(job["notebook"], as_version=4)
        else:
            nb = copy.deepcopy(_template_node(job["template"]))
        params = dict(job["parameters"])
        if job.get("prepared"):
            params["prepared"] = job["prepared"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nb = pm.execute_notebook(
                    nb, None, parameters=params, kernel_name=KERNEL_NAME, language="python",
                    kernel_manager_class=_kernel_manager_class(), progress_bar=False, log_output=False,
                    cwd=str(workdir), start_timeout=120, execution_timeout=job["timeout"],
                    shutdown_kernel="immediate",  # every output is in by then: no need to wait
                )
        except PapermillExecutionError as err:
            result.update(status="failed", error=_cell_error(err))
            return result
        except Exception as err:  # noqa: BLE001 - kernel died, timed out, could not start: isolate it
            result.update(status="failed", error=_cell_error(err))
            log = workdir / "kernel.log"
            if log.exists():
                result["error"]["kernel_log"] = log.read_text(errors="replace")[-2000:]
            return result
        nb.metadata.setdefault("kamtools", {})["title"] = job["title"]
        pmeta = nb.metadata.get("papermill", {})
        pmeta["input_path"] = job["template"]  # papermill records the notebook itself when given a node
        pmeta["output_path"] = None
        pmeta.get("parameters", {}).pop("prepared", None)
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (kamtools)", "language": "python"}
        formats = job["formats"]
        if "ipynb" in formats:
            result["outputs"]["ipynb"] = nbformat.writes(nb).encode("utf-8")
        if "html" in formats or "pdf" in formats:
            page, _ = _exporter().from_notebook_node(nb)
            if "html" in formats:
                result["outputs"]["html"] = page.encode("utf-8")
            if "pdf" in formats:
                try:
                    # a cluster worker finds its own Chromium; a local one was found before anything ran
                    result["outputs"]["pdf"] = _html_to_pdf(page, job["chromium"] or _check_pdf(), workdir)
                except Exception as err:  # noqa: BLE001 - the HTML is good: report the PDF failure
                    why = str(err) if isinstance(err, ParameterError) else f"PDF export failed: {err}. {_PDF_HELP}"
                    result.update(status="failed", error={"type": type(err).__name__, "message": why})
        return result
    finally:
        result["seconds"] = round(time.perf_counter() - t0, 3)
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- executors: where the renders run

#: Where :func:`run` renders: ``"local"``, worker processes of this machine, or ``"dask"``, the workers of a Dask
#: distributed cluster.
EXECUTORS = ("local", "dask")

#: Seconds :func:`run` waits for a Dask scheduler to answer, and then for it to have a worker.
DASK_CONNECT_TIMEOUT = 20.0

_DASK_INSTALL = 'pip install "kamtools[dask]"'
_log = logging.getLogger(__name__)


def _failed(report: str, error: dict) -> dict:
    """A render result for a report that produced nothing (the shape :func:`_render` returns)."""
    return {"report": report, "status": "failed", "seconds": 0.0, "outputs": {}, "error": error}


def _died_twice(report: str, workers: Sequence[str] | None = None) -> dict:
    """The result of a report whose worker died twice: a Dask worker (their addresses) or a local process (None)."""
    if workers is None:
        what = "the worker process rendering this report died twice, the second time rendering it alone"
        causes = ("Likely causes: 1) out of memory (render fewer reports at once, e.g. -j 1), 2) the process was "
                  "killed from outside, 3) a crash in the report's kernel.")
    else:
        what = f"the Dask worker rendering this report died twice ({', then '.join(workers) or 'address unknown'})"
        causes = ("Look in those workers' logs: 1) out of memory (raise the workers' memory limit), 2) stopped by "
                  "the cluster (pre-emption, walltime), 3) a crash in the report's kernel.")
    return _failed(report, {"type": "WorkerDied", "message": f"{what}; the report was retried once and not again. "
                                                             f"{causes}"})


class _InProcess:
    """Renders one report after the other from this process (``jobs=1``)."""

    def render(self, payloads):
        for p in payloads:
            yield _render(p)

    def close(self):
        pass


def _marker(report: str) -> str:
    return hashlib.sha1(report.encode()).hexdigest()


class _LocalPool:
    """Spawned worker processes of this machine (``jobs > 1``), started at once.

    A worker process that dies (killed, out of memory) breaks the whole
    pool, and every report still in it with it. The pool is then started
    again: the reports that had started when it broke are suspects, and each
    is rendered once more alone, in a pool of one worker, so that a second
    death is its own and the report is recorded as failed ("died twice");
    the reports that had not started yet go on as before. A dying worker
    costs its report one retry, never the batch.
    """

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = _start_pool(workers)

    def _restart(self, workers: int):
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = _start_pool(workers)

    def render(self, payloads):
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        if not payloads:
            return
        started = Path(tempfile.mkdtemp(prefix="started-", dir=payloads[0]["tmp"]))
        todo = [{**p, "started": str(started)} for p in payloads]
        while todo:
            futures = {self.pool.submit(_render, p): p for p in todo}
            done, broken = set(), False
            try:
                for fut in as_completed(futures):
                    p = futures[fut]
                    try:
                        res = fut.result()
                    except BrokenProcessPool:  # a worker died: this report and every other one still in the pool
                        broken = True
                        continue
                    except Exception as err:  # noqa: BLE001 - e.g. the inputs could not be sent to the worker
                        res = _failed(p["report"], {"type": type(err).__name__, "message": f"worker failed: {err}"})
                    done.add(p["report"])
                    yield res
            finally:
                for fut in futures:
                    fut.cancel()
            if not broken:
                return
            left = [p for p in todo if p["report"] not in done]
            suspects = [p for p in left if (started / _marker(p["report"])).exists()]
            _log.warning("a worker process died; rendering %d report(s) that were running once more, alone: %s",
                         len(suspects), ", ".join(p["report"] for p in suspects))
            for p in suspects:
                self._restart(1)
                try:
                    yield self.pool.submit(_render, p).result()
                except BrokenProcessPool:
                    yield _died_twice(p["report"])
            self._restart(self.workers)
            todo = [p for p in left if p not in suspects]

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


def _probe_workers(client) -> dict:
    """``{worker address: {"kamtools": version or None, "error": str or None, "python": version}}``."""

    def probe():  # a local function: sent by value, so it runs where kamtools cannot be imported too
        import sys

        try:
            from kamtools._version import __version__ as version
        except Exception as err:  # noqa: BLE001 - any reason counts; report it
            return {"kamtools": None, "error": f"{type(err).__name__}: {err}", "python": sys.version.split()[0]}
        return {"kamtools": version, "error": None, "python": sys.version.split()[0]}

    found = client.run(probe, on_error="return")
    return {w: r if isinstance(r, dict) else {"kamtools": None, "error": f"{type(r).__name__}: {r}", "python": "?"}
            for w, r in found.items()}


class _DaskCluster:
    """The workers of a Dask distributed cluster; this process still writes every file.

    Each task carries all its report needs — the prepared inputs as pickled
    bytes and the template notebook — and the worker writes them into its own
    local directory, so the cluster needs no file system shared with this
    machine and never reads the data source. The worker returns the report's
    files as bytes; :func:`run` writes them.

    A report whose worker dies is rendered once more, never a third time,
    whatever the scheduler's ``distributed.scheduler.allowed-failures``: every
    task records its start under the scheduler's metadata (one list of
    worker addresses per report and run), and a third start returns "died
    twice" at once instead of rendering. When the scheduler gives up first
    (``KilledWorker``: allowed-failures 0 or 1), this side resubmits the
    report under a new key once, or records it as failed when it has
    already started twice.
    """

    def __init__(self, scheduler, *, timeout: float | None = None):
        timeout = DASK_CONNECT_TIMEOUT if timeout is None else timeout
        try:
            import distributed
        except ImportError as err:
            raise ParameterError(
                f"executor='dask' needs the distributed package, which is not installed here. Run: {_DASK_INSTALL} "
                "(the same on the cluster's workers), or leave executor out to render on this machine."
            ) from err
        self.own = not isinstance(scheduler, distributed.Client)
        if self.own:
            try:
                self.client = distributed.Client(str(scheduler), timeout=timeout, set_as_default=False)
            except Exception as err:  # noqa: BLE001 - OSError on a timeout, ValueError on a malformed address
                raise ClusterError(
                    f"Cannot reach the Dask scheduler at {str(scheduler)!r} within {timeout:g} s ({err}). Check "
                    "1) the address, as the scheduler prints it (tcp://HOST:8786, or tls://...), 2) that the "
                    "scheduler is running, 3) that this machine can reach that port (firewall, VPN, a port-forward "
                    "to a Kubernetes cluster)."
                ) from err
        else:
            self.client = scheduler
        self.address = self.client.scheduler.address
        self.token = f"{os.getpid()}-{time.time_ns()}"
        self.jobs: dict = {}
        self.resubmitted: set = set()
        try:
            self._check_workers(timeout)
        except BaseException:
            self.close()
            raise

    def _check_workers(self, timeout: float):
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError) as err:
            raise ClusterError(
                f"The Dask scheduler at {self.address} has no worker (waited {timeout:g} s). Start some, each in an "
                f"environment with {_DASK_INSTALL}=={__version__}: dask worker {self.address} --nthreads 1"
            ) from err
        found = _probe_workers(self.client)
        broken = {w: r["error"] for w, r in found.items() if r["error"]}
        if broken:
            listed = "; ".join(f"{w}: {e}" for w, e in sorted(broken.items()))
            raise ClusterError(
                f"{len(broken)} of the {len(found)} Dask workers at {self.address} cannot import kamtools ({listed}). "
                f"Install it in the workers' Python environment, the same version as here: "
                f'pip install "kamtools[dask]=={__version__}"; then restart the workers.'
            )
        other = {w: r["kamtools"] for w, r in found.items() if r["kamtools"] != __version__}
        if other:
            listed = ", ".join(f"{w} has {v}" for w, v in sorted(other.items()))
            warnings.warn(
                f"kamtools here is {__version__}, but on the Dask workers {listed}. Reports may differ or fail to "
                f'read their inputs; install the same version everywhere (pip install "kamtools[dask]=={__version__}").',
                UserWarning, stacklevel=4,
            )

    def _ship(self, p: dict) -> dict:
        """The payload as a task: inputs and template as content, not as paths on this machine."""
        job = {k: v for k, v in p.items() if k not in ("prepared", "tmp", "chromium")}
        job["prepared_bytes"] = Path(p["prepared"]).read_bytes() if p.get("prepared") else None
        job["notebook"] = Path(p["template"]).read_text(encoding="utf-8")
        job["chromium"] = None  # each worker finds its own
        job["starts"] = ["kamtools-report", self.token, p["report"]]  # where the scheduler keeps its starts
        return job

    def _submit(self, job: dict):
        key = f"kamtools-report-{_stem(job['report'])}-{os.urandom(6).hex()}"
        fut = self.client.submit(_render_on_worker, job, key=key, pure=False, retries=0)
        self.jobs[fut.key] = (job, fut)
        return fut

    def _starts(self, job: dict) -> list:
        return list(self.client.get_metadata(job["starts"], default=None) or [])

    def _outcome(self, fut, job: dict):
        """The render result of a finished task, or None when it was resubmitted."""
        from distributed import KilledWorker

        if fut.status == "finished":
            return fut.result()
        if fut.status == "error":
            err = fut.exception()
        else:  # cancelled: the scheduler or the connection to it lost the task
            return _failed(job["report"], {
                "type": "CancelledError",
                "message": f"the Dask scheduler at {self.address} lost the task ({fut.status}); render it again."})
        if isinstance(err, KilledWorker):  # the scheduler's own retries ran out before ours
            workers = self._starts(job)
            if job["report"] in self.resubmitted or len(workers) >= 2:
                return _died_twice(job["report"], workers)
            self.resubmitted.add(job["report"])
            _log.warning("%s: the Dask worker rendering it died; rendering it once more", job["report"])
            return None
        if isinstance(err, ImportError) and "kamtools" in str(err):
            return _failed(job["report"], {
                "type": type(err).__name__,
                "message": f"a Dask worker cannot import kamtools ({err}); install it there: "
                           f'pip install "kamtools[dask]=={__version__}".'})
        return _failed(job["report"], {"type": type(err).__name__, "message": f"the Dask task failed: {err}"})

    def render(self, payloads):
        from distributed import as_completed

        pending = as_completed([self._submit(self._ship(p)) for p in payloads], loop=self.client.loop)
        try:
            for fut in pending:
                job, _ = self.jobs.pop(fut.key)
                res = self._outcome(fut, job)
                fut.release()  # the result is here: the scheduler must not recompute it if its worker dies
                if res is None:
                    pending.add(self._submit(job))
                else:
                    yield res
        finally:
            left = [f for _, f in self.jobs.values()]  # stopped early (an interrupt, an error writing a file)
            self.jobs.clear()
            if left:
                self.client.cancel(left)
            try:
                self.client.set_metadata(["kamtools-report", self.token], None)
            except Exception:  # noqa: BLE001 - tidying the scheduler's metadata is best effort
                pass

    def close(self):
        if self.own:
            self.client.close()


def _render_on_worker(job: dict) -> dict:
    """A Dask task: render one report on a worker from the content the task carries.

    Records its start with the scheduler first (see :class:`_DaskCluster`); a
    third start of the same report means its worker died twice, and the
    report is not rendered again.
    """
    from distributed import get_client, get_worker

    worker = get_worker()
    client = get_client()
    starts = [*(client.get_metadata(job["starts"], default=None) or []), worker.address]
    client.set_metadata(job["starts"], starts)
    if len(starts) > 2:
        return _died_twice(job["report"], starts[:-1])
    if len(starts) == 2:  # in this worker's log, where a cluster's admin looks
        _log.warning("kamtools report %s: rendering it again; the worker %s died while rendering it",
                     job["report"], starts[0])
    tmp = Path(tempfile.mkdtemp(prefix="kamtools-report-", dir=worker.local_directory))
    try:
        local = {k: v for k, v in job.items() if k not in ("prepared_bytes", "starts")}
        local["tmp"] = str(tmp)
        if job.get("prepared_bytes") is not None:
            local["prepared"] = str(tmp / "prepared.pkl")
            Path(local["prepared"]).write_bytes(job["prepared_bytes"])
        return _render(local)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- progress


class _Lines:
    """Progress without a terminal: one plain line per finished report."""

    def __init__(self, total, file):
        self.total, self.done, self.file = total, 0, file

    def update(self, entry):
        self.done += 1
        extra = f": {entry['error']['message']}" if entry.get("error") else ""
        print(f"[{self.done}/{self.total}] {entry['report']} {entry['status']} ({entry['seconds']:.1f} s){extra}",
              file=self.file, flush=True)

    def close(self):
        pass


class _Bar:
    def __init__(self, total, file):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="report", desc="reports", file=file, dynamic_ncols=True, leave=True)

    def update(self, entry):
        self.bar.set_postfix_str(f"{entry['report']}: {entry['status']}", refresh=False)
        self.bar.update(1)

    def close(self):
        self.bar.close()


class _Quiet:
    def update(self, entry):
        pass

    def close(self):
        pass


def _progress(total: int, progress) -> object:
    if not progress or total == 0:
        return _Quiet()
    file = sys.stderr
    is_tty = hasattr(file, "isatty") and file.isatty()
    return _Bar(total, file) if is_tty else _Lines(total, file)


# --------------------------------------------------------------------------- manifest and index


@dataclass
class Batch:
    """What :func:`run` returns: the manifest of a batch of reports.

    Attributes
    ----------
    out : Path
    reports : DataFrame
        One row per report of this run: ``report, kind, account_id, account_name,
        status`` (ok, skipped: up to date, failed), ``seconds``, ``html``,
        ``ipynb``, ``pdf`` (paths or empty), ``error``.
    manifest, index : Path
    """

    out: Path
    reports: pd.DataFrame
    manifest: Path
    index: Path

    @property
    def failed(self) -> int:
        return int((self.reports["status"] == "failed").sum())

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def __repr__(self) -> str:
        counts = self.reports["status"].value_counts()
        mix = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "skipped", "failed"))
        return f"Batch({len(self.reports)} reports: {mix}; {self.index})"

    def _repr_html_(self) -> str:
        return f"<p>{_e(repr(self))}</p>" + self.reports.to_html(index=False, escape=True)


def _entry_row(e: dict, out: Path) -> dict:
    outs = e.get("outputs") or {}
    return {
        "report": e["report"], "kind": e["kind"], "account_id": e.get("account_id"),
        "account_name": e.get("account_name"), "status": e["status"], "seconds": e.get("seconds", 0.0),
        **{f: str(out / outs[f]) if f in outs else "" for f in FORMATS},
        "error": (e.get("error") or {}).get("message", ""),
    }


def _manifest_json(out: Path, entries: dict, meta: dict) -> bytes:
    ordered = sorted(entries.values(), key=lambda e: (e["kind"] != "portfolio", e["report"]))
    counts = {s: sum(1 for e in ordered if e["status"] == s) for s in ("ok", "skipped", "failed")}
    doc = {**meta, "summary": counts, "reports": ordered}
    return (json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


_STATUS_STYLE = {"ok": "rag-green", "skipped": "rag-na", "failed": "rag-red"}


def _index_html(entries: dict, meta: dict) -> bytes:
    ordered = sorted(entries.values(), key=lambda e: (e["kind"] != "portfolio", e["status"] != "failed", e["report"]))
    rows = []
    for e in ordered:
        outs = e.get("outputs") or {}
        links = " ".join(f'<a href="{_e(quote(outs[f]))}">{f}</a>' for f in FORMATS if f in outs)
        title = e.get("account_name") or ("Portfolio report" if e["kind"] == "portfolio" else e["report"])
        main = f'<a href="{_e(quote(outs["html"]))}">{_e(title)}</a>' if "html" in outs else _e(title)
        err = e.get("error") or {}
        msg = _e(err.get("message", ""))
        if err.get("cell"):
            msg += f" <span class='kt-note'>(cell {_e(err['cell']['index'])})</span>"
        label = "up to date" if e["status"] == "skipped" else e["status"]
        rows.append(
            f"<tr><td>{main}</td><td>{_e(e.get('account_id') or '')}</td>"
            f"<td><span class='rag {_STATUS_STYLE.get(e['status'], '')}'>{_e(label)}</span></td>"
            f"<td class=num>{e.get('seconds', 0):.1f}</td><td>{links}</td><td>{msg}</td></tr>"
        )
    counts = {s: sum(1 for e in ordered if e["status"] == s) for s in ("ok", "skipped", "failed")}
    css = (HTML_TEMPLATES / "kamtools" / "index.html.j2").read_text(encoding="utf-8")
    style = css[css.index("<style>"): css.index("</style>") + len("</style>")] if "<style>" in css else ""
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>kamtools reports</title>"
        f"{style}</head><body><main class='report'><p class='kt-eyebrow'>kamtools {_e(__version__)}</p>"
        f"<h1>Reports</h1><p>Period end {_e(meta.get('period_end'))} · data fingerprint "
        f"<code>{_e(str(meta.get('data_fingerprint', ''))[:16])}</code> · {counts['ok']} rendered, "
        f"{counts['skipped']} up to date, {counts['failed']} failed.</p>"
        "<table class='kt-table'><thead><tr><th>Report</th><th>Account id</th><th>Status</th>"
        "<th class=num>Seconds</th><th>Files</th><th>Error</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></main></body></html>\n"
    )
    return page.encode("utf-8")


def _read_manifest(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {e["report"]: e for e in doc.get("reports", []) if isinstance(e, dict) and "report" in e}
    except (json.JSONDecodeError, OSError, TypeError, KeyError):
        return {}


# --------------------------------------------------------------------------- run


def _check_executor(executor, scheduler, jobs) -> bool:
    """Whether the reports go to a Dask cluster; the arguments must say so consistently."""
    name = "local" if executor is None else str(executor).strip().lower()
    if name not in EXECUTORS:
        raise ParameterError(f"executor={executor!r}: use one of {', '.join(map(repr, EXECUTORS))}.")
    if name == "dask" and (scheduler is None or (isinstance(scheduler, str) and not scheduler.strip())):
        raise ParameterError(
            "executor='dask' needs the address of the cluster's scheduler: pass scheduler='tcp://HOST:8786' "
            "(--scheduler on the command line), as the scheduler prints it."
        )
    if name != "dask" and scheduler is not None:
        raise ParameterError(
            f"scheduler={scheduler!r} is for a Dask cluster: pass executor='dask' too (--executor dask), or leave "
            "the scheduler out to render on this machine."
        )
    if name == "dask" and jobs is not None:
        raise ParameterError(
            f"jobs={jobs!r} counts worker processes of this machine; with executor='dask' the cluster's worker "
            "threads decide how many reports render at once. Leave jobs out (no -j)."
        )
    return name == "dask"


def run(
    data,
    accounts: str | Iterable[str] | None = None,
    *,
    period_end,
    out,
    all_key_accounts: bool = False,
    portfolio: bool = False,
    period: str = "Q",
    currency: str | None = None,
    targets=None,
    number_locale: str = "en",
    formats: str | Sequence[str] = ("html",),
    jobs: int | None = None,
    force: bool = False,
    parameters: Mapping | None = None,
    template=None,
    portfolio_template=None,
    timeout: int = 600,
    progress: bool = True,
    executor: str | None = None,
    scheduler=None,
) -> Batch:
    """Render account reports (and the portfolio report) in parallel: HTML without code, a manifest, an index.

    Parameters
    ----------
    data : KamData, source or "sample"
        Loaded and validated once, in this process.
    accounts : str or list of str, optional
        Account ids to report on.
    period_end : date
        Last day of the reporting period.
    out : path
        Folder of the reports, ``manifest.json`` and ``index.html``.
    all_key_accounts : bool
        Add every key account of the data.
    portfolio : bool
        Also render the portfolio report (``portfolio.html``).
    period : {"M", "Q", "Y"}
    currency : str, optional
    targets : CSV path, optional
        Scorecard targets; default :data:`DEFAULT_TARGETS`.
    number_locale : str
        Number style, see :data:`LOCALES`.
    formats : "html", "ipynb", "pdf" or a list (or a comma-separated string)
        ``pdf`` needs Playwright and a system Chromium (see :func:`chromium_path`).
    jobs : int, optional
        Worker processes of this machine; default: all cores. With 1, reports
        render from this process (each still in its own kernel and working
        directory). Not with ``executor="dask"``: there the cluster's worker
        threads set how many reports render at once.
    force : bool
        Render reports that are up to date too.
    parameters : mapping, optional
        More template parameters (for templates of your own), checked against
        the template.
    template, portfolio_template : path, optional
        Notebooks to use instead of ``templates/account_report.ipynb`` and
        ``templates/portfolio_report.ipynb``.
    timeout : int
        Seconds a cell may run.
    progress : bool
        A progress bar on a terminal; one line per report otherwise.
    executor : {"local", "dask"}, optional
        Where the reports render. ``"local"`` (the default): worker processes
        of this machine. ``"dask"``: the workers of a Dask distributed cluster
        at ``scheduler`` (needs ``pip install "kamtools[dask]"`` here and on
        the workers, the same kamtools version). The data, the targets and
        the template are read here only: each task carries its report's
        prepared inputs and the notebook, and returns the files, which are
        written here, so no shared file system is needed.
    scheduler : str or distributed.Client, optional
        With ``executor="dask"`` only: the scheduler's address
        (``tcp://HOST:8786``), or a connected ``distributed.Client``.

    Returns
    -------
    Batch
        ``.reports`` has one row per report; ``.failed`` counts the failures.
        A failed report does not stop the others: its error (with the failing
        cell) is in the manifest and the index.

    Raises
    ------
    ParameterError
        Bad arguments or template parameters (before anything runs), or
        ``executor="dask"`` without the distributed package.
    SchemaError
        The data breaks the data model.
    ClusterError
        The Dask scheduler does not answer within :data:`DASK_CONNECT_TIMEOUT`
        seconds, has no worker, or has workers that cannot import kamtools
        (before the data is loaded).

    Notes
    -----
    A report is skipped, unless ``force``, when its manifest entry has the
    same key — a hash of its parameters, the data's fingerprint, the targets
    file, the templates, this module and kamtools' version — and its files
    exist. One batch at a time per folder: two runs writing into the same
    ``out`` would race on the manifest. Every file
    is written to a temporary name and renamed, so a killed run leaves
    complete files or none. A report whose render fails loses the files of
    its earlier render, so no stale report is mistaken for a current one.
    A report whose worker dies (out of memory, killed, pre-empted) is
    rendered once more and, if that worker dies too, recorded as failed
    (``WorkerDied``); the batch goes on. Locally a dying process breaks the
    whole pool, so the reports it was running are rendered again one at a
    time; on a Dask cluster this holds whatever the scheduler's
    ``allowed-failures``. Workers with another kamtools version than this one
    get a warning.

    Examples
    --------
    >>> import kamtools as kt, tempfile
    >>> batch = kt.report.run("sample", ["A0001"], period_end="2025-12-31", out=tempfile.mkdtemp(),
    ...                       jobs=1, progress=False)  # doctest: +SKIP
    >>> batch.reports[["report", "status"]].values.tolist()  # doctest: +SKIP
    [['A0001', 'ok']]
    """
    # ---- arguments, checked before anything runs
    freq = _periods.check_freq(period)
    end = _period_end(period_end)
    locale = _locale(number_locale)
    if isinstance(formats, str):
        formats = [f.strip().lower() for f in formats.split(",") if f.strip()]
    formats = tuple(dict.fromkeys(str(f).lower() for f in formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ParameterError(f"formats={list(formats)!r}: use one or more of {', '.join(FORMATS)}.")
    dask = _check_executor(executor, scheduler, jobs)
    chromium = _check_pdf() if "pdf" in formats and not dask else None  # a cluster's workers find their own
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"jobs={jobs!r}: pass a whole number of worker processes, 1 or more.")
    ids = [accounts] if isinstance(accounts, str) else list(accounts or [])
    if targets is not None and not Path(targets).is_file():
        raise ParameterError(f"targets={str(targets)!r}: no such file. Pass a CSV with the columns kpi and target.")
    account_tpl = Path(template) if template is not None else ACCOUNT_TEMPLATE
    portfolio_tpl = Path(portfolio_template) if portfolio_template is not None else PORTFOLIO_TEMPLATE
    source = _source_label(data)
    data_param = source
    if isinstance(data, str | os.PathLike) and "://" not in str(data) and str(data).strip().lower() != "sample":
        data_param = str(Path(data).resolve())  # kernels run in their own directories
    common = {"data": data_param, "period_end": f"{end:%Y-%m-%d}", "period_length": freq, "currency": currency or "",
              "targets": str(Path(targets).resolve()) if targets is not None else "", "number_locale": locale}
    extra = dict(parameters or {})
    check_parameters({**common, "account_id": "", "prepared": "", **extra}, template=account_tpl)
    if portfolio:
        check_parameters({**common, "prepared": "", **{k: v for k, v in extra.items() if k != "account_id"}},
                         template=portfolio_tpl)

    # ---- workers: start them before loading the data when a render is certain, so their imports overlap;
    # a cluster is checked now, so that a wrong address fails before the data is loaded
    runner = None
    planned = len(ids) + int(portfolio) if not all_key_accounts else jobs
    if dask:
        runner = _DaskCluster(scheduler)
    elif min(jobs, planned) > 1 and (force or not (Path(out) / "manifest.json").exists()):
        runner = _LocalPool(min(jobs, planned))
    try:
        # ---- the data, once
        loaded = _load(data, currency)
        acc = loaded.accounts
        if all_key_accounts:
            ids += acc.loc[acc["is_key_account"].fillna(False).astype(bool), "account_id"].tolist()
        ids = list(dict.fromkeys(ids))
        if not ids and not portfolio:
            raise ParameterError("No report to render: name accounts, or pass all_key_accounts=True or portfolio=True.")
        names = acc.set_index("account_id")["account_name"]
        fingerprint = loaded.fingerprint
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".*.tmp"):  # left by a run that was killed while writing (never a final file)
            stale.unlink(missing_ok=True)
        manifest_path, index_path = out / "manifest.json", out / "index.html"
        renderer = _renderer_hash([account_tpl, portfolio_tpl])
        targets_hash = _file_hash(targets) or _file_hash(DEFAULT_TARGETS)
        meta = {"kamtools_version": __version__, "data_source": source, "data_fingerprint": fingerprint,
                "period_end": f"{end:%Y-%m-%d}", "period_length": freq, "formats": list(formats)}

        # ---- jobs and what is up to date
        previous = _read_manifest(manifest_path)
        entries = dict(previous)
        todo, results = [], []
        stems = {}
        for a in ids:
            stem = _stem(a)
            stems[stem] = stems.get(stem, 0) + 1
            if stems[stem] > 1:  # two ids with the same file name (e.g. case only on some systems)
                stem = f"{stem}-{hashlib.sha1(a.encode()).hexdigest()[:8]}"
            todo.append({"report": a, "kind": "account", "account_id": a, "stem": stem, "template": account_tpl,
                         "parameters": {**common, "account_id": a, **extra}})
        if portfolio:
            todo.append({"report": "portfolio", "kind": "portfolio", "account_id": None, "stem": "portfolio",
                         "template": portfolio_tpl,
                         "parameters": {**common, **{k: v for k, v in extra.items() if k != "account_id"}}})
        for j in todo:
            j["account_name"] = None if j["account_id"] is None else (
                str(names.get(j["account_id"])) if j["account_id"] in names.index else None)
            key_doc = {"parameters": j["parameters"], "data": fingerprint, "renderer": renderer,
                       "targets": targets_hash, "template": j["template"].name}
            j["key"] = hashlib.sha256(json.dumps(key_doc, sort_keys=True, default=str).encode()).hexdigest()
            j["title"] = (f"{j['account_name']} — account report {end.to_period(freq)}" if j["kind"] == "account"
                          else f"Key account portfolio — {end.to_period(freq)}")

        def entry(j, status, seconds, outputs, error):
            return {"report": j["report"], "kind": j["kind"], "account_id": j["account_id"],
                    "account_name": j["account_name"], "status": status, "seconds": seconds,
                    "parameters": j["parameters"], "data_fingerprint": fingerprint, "key": j["key"],
                    "outputs": outputs, "error": error}

        run_jobs = []
        for j in todo:
            prev = previous.get(j["report"])
            outs = (prev or {}).get("outputs") or {}
            fresh = (prev is not None and prev.get("key") == j["key"] and prev.get("status") in ("ok", "skipped")
                     and all(f in outs and (out / outs[f]).is_file() for f in formats))
            if j["kind"] == "account" and j["account_id"] not in names.index:
                e = entry(j, "failed", 0.0, {}, {
                    "type": "ParameterError",
                    "message": f"account id {j['account_id']!r} is not in the data; use ids from the accounts table."})
                results.append(e)
            elif fresh and not force:
                results.append(entry(j, "skipped", 0.0, outs, None))
            else:
                run_jobs.append(j)

        bar = _progress(len(todo), progress)
        for e in results:
            entries[e["report"]] = e
            bar.update(e)

        tmp = Path(tempfile.mkdtemp(prefix="kamtools-report-"))
        workers = min(jobs, len(run_jobs))
        try:
            if runner is None and workers > 1:
                # start the workers now: their imports overlap with preparing the inputs below
                runner = _LocalPool(workers)
            if run_jobs:
                # ---- prepare every report's inputs once: account rows only, anonymous aggregates
                b = _batch(loaded, period_end=end, period=freq, targets=targets, segment="industry", source=data_param)
                acc_ids = [j["account_id"] for j in run_jobs if j["kind"] == "account"]
                inputs = prepare(loaded, acc_ids, period_end=end, period=freq, _batch_result=b) if acc_ids else {}
                for j in run_jobs:
                    obj = inputs[j["account_id"]] if j["kind"] == "account" else prepare_portfolio(
                        loaded, period_end=end, period=freq, _batch_result=b)
                    path = tmp / f"{j['stem']}.pkl"
                    with open(path, "wb") as fh:
                        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
                    j["prepared"] = str(path)
                payload = [{"report": j["report"], "template": str(j["template"]), "parameters": j["parameters"],
                            "prepared": j["prepared"], "formats": formats, "timeout": timeout, "tmp": str(tmp),
                            "title": j["title"], "chromium": chromium}
                           for j in sorted(run_jobs, key=lambda j: j["kind"] != "portfolio")]  # the longest first
                by_report = {j["report"]: j for j in run_jobs}

                def finish(res):
                    j = by_report[res["report"]]
                    outputs = {}
                    for f in FORMATS:  # a failed render drops its stale files; a good one replaces them
                        old = ((entries.get(j["report"]) or {}).get("outputs") or {}).get(f)
                        if res["status"] == "failed" and old:
                            (out / old).unlink(missing_ok=True)
                    for f, blob in res["outputs"].items():
                        name = f"{j['stem']}.{f}"
                        _write_atomic(out / name, blob)
                        outputs[f] = name
                    if res["status"] == "failed":
                        outputs = {}
                    e = entry(j, res["status"], res["seconds"], outputs, res["error"])
                    entries[j["report"]] = e
                    results.append(e)
                    _write_atomic(manifest_path, _manifest_json(out, entries, meta))
                    bar.update(e)

                renders = runner if dask or (runner is not None and workers > 1) else _InProcess()
                with contextlib.closing(renders.render(payload)) as finished:
                    for res in finished:
                        finish(res)
            _write_atomic(manifest_path, _manifest_json(out, entries, meta))
            _write_atomic(index_path, _index_html(entries, meta))
        finally:
            bar.close()
            shutil.rmtree(tmp, ignore_errors=True)

    finally:
        if runner is not None:
            runner.close()

    order = {j["report"]: i for i, j in enumerate(todo)}
    rows = [_entry_row(e, out) for e in sorted(results, key=lambda e: order.get(e["report"], 0))]
    frame = pd.DataFrame(rows, columns=["report", "kind", "account_id", "account_name", "status", "seconds",
                                        *FORMATS, "error"])
    return Batch(out=out, reports=frame, manifest=manifest_path, index=index_path)
