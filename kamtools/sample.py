"""A seeded synthetic KAM portfolio whose true effects are known.

:func:`generate` simulates every table of the data model for a portfolio of
accounts over a monthly grid: a gross-margin process with seasonality, growth
and noise; a KAM programme that key accounts enter at staggered dates and that
lifts their margin after a six-month ramp; churn from a proportional-hazards
model; and the surveys, interactions, contracts, opportunities, tickets, costs,
assessments and learning records around them. The returned
:class:`~kamtools.KamData` carries the ground truth in ``data.truth`` (a
:class:`Truth`), so every estimator in kamtools can be checked against it.

:func:`load` returns the bundled copy (``data/sample``: 200 accounts, 2021 to
2025, seed 7), the data set the notebooks and examples use.

How the data are made
---------------------
- **Margin.** Expected monthly gross margin of account *i* in month *t* is
  ``base_i * season(t) * trend(t)``: ``base_i`` scales with the account's
  wallet and share of wallet, the season peaks in Q4 and dips in August, the
  trend is 4 % a year. Realised margin multiplies it by account-specific AR(1)
  noise with mean 1, and is split over 1-5 invoice lines, each priced at its
  product's margin rate (20-50 %); about 1 % of lines are followed by a credit
  note (negative revenue and cost) that corrects an over-invoiced amount, so
  the net stays unbiased.
- **KAM effect.** From ``kam_start`` a key account's expected margin rises by
  ``uplift_pct_i * min((e + 1) / 6, 1)`` of its counterfactual, *e* months
  after entry. The full effect is larger for early entrants (20 %) than for
  late ones (10 %): effects differ by cohort and grow with time since entry,
  the case where a plain two-way fixed-effects regression is biased.
- **Churn.** Time to churn from the start of observation is exponential with
  monthly hazard ``h0 * exp(b_key*key + b_nps*(nps_latent - 7) +
  b_eng*engagement_z + b_exec*exec_sponsor)``. Key status is a baseline
  covariate over the whole window; key accounts are more often engaged and
  executive-sponsored, so their crude churn is lower still than the
  conditional hazard ratio says.
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from kamtools.data import KamData
from kamtools.exceptions import ParameterError, SourceError
from kamtools.schema import TABLES

__all__ = ["generate", "load", "Truth", "save_truth", "read_truth", "SAMPLE_DIR"]

#: Where the committed copy of the default sample lives (absent in an installed wheel).
SAMPLE_DIR = Path(__file__).parents[1] / "data" / "sample"

# --------------------------------------------------------------------------- parameters
# The true parameters of the simulation. Changing one changes the sample data:
# regenerate the committed copy with `make sample-data`.

_H0 = 0.0100  # monthly churn hazard of a non-key account with NPS 7, average engagement, no sponsor
_HR = {"key": 0.5, "nps": 0.85, "engagement": 0.75, "exec_sponsor": 0.6}
_UPLIFT_EARLY, _UPLIFT_LATE = 0.20, 0.10  # full KAM effect of the first and the last entrants
_RAMP_MONTHS = 6
_KAM_COST = 2000.0  # mean KAM programme cost per key account and month
_GROWTH = 0.04  # common margin growth per year
_WALLET_MEDIAN, _WALLET_SIGMA = 950_000.0, 0.7  # lognormal annual wallet
_SEASON = np.array([0.94, 0.96, 1.03, 1.00, 1.01, 1.03, 0.95, 0.80, 1.02, 1.06, 1.09, 1.11])
_SEASON = _SEASON / _SEASON.mean()
_ACQUIRED_SHARE = 0.25

_INDUSTRIES = (
    "Manufacturing", "Chemicals", "Automotive", "Food & Beverage",
    "Healthcare", "Energy & Utilities", "Retail", "Logistics",
)
_INDUSTRY_P = (0.22, 0.14, 0.13, 0.12, 0.1, 0.1, 0.1, 0.09)
_REGIONS = ("DACH", "Nordics", "Benelux", "UK & Ireland", "Southern Europe")
_REGION_P = (0.3, 0.15, 0.18, 0.2, 0.17)

# name, margin rate, list price per unit
_PRODUCTS = (
    ("Pumps", 0.28, 1200.0),
    ("Valves", 0.34, 300.0),
    ("Sensors", 0.45, 150.0),
    ("Control Systems", 0.38, 5000.0),
    ("Spare Parts", 0.50, 40.0),
    ("Field Service", 0.42, 800.0),
    ("Filters", 0.36, 60.0),
    ("Seals", 0.48, 20.0),
    ("Motors", 0.24, 2500.0),
    ("Compressors", 0.20, 9000.0),
    ("Software", 0.50, 3000.0),
    ("Training", 0.40, 600.0),
    ("Installation", 0.30, 2000.0),
    ("Monitoring", 0.46, 400.0),
)

_NAME_FIRST = (
    "Northwind", "Alder", "Bergmann", "Castell", "Dunmore", "Elbe", "Falk", "Granite", "Harbor", "Ironbridge",
    "Juniper", "Kestrel", "Linden", "Meridian", "Norland", "Oakridge", "Pinnacle", "Quarry", "Rhine", "Solway",
    "Tamar", "Ulster", "Vantage", "Westfield", "Yarrow", "Zenith", "Amstel", "Brightwater", "Coastal", "Delta",
    "Evergreen", "Fjord", "Glenmore", "Highland", "Isar", "Jura", "Kingsway", "Lakeside", "Moselle", "Nordic",
    "Orion", "Polar", "Redwood", "Silverline", "Thames", "Upland", "Vireo", "Weser", "Alpine", "Baltic",
    "Cobalt", "Danube", "Emerald", "Fairport", "Garonne", "Hanse", "Ivory", "Keystone", "Loire", "Marlow",
)
_NAME_SECOND = (
    "Steel", "Foods", "Chemicals", "Logistics", "Motors", "Pharma", "Energy", "Plastics", "Packaging", "Systems",
    "Paper", "Textiles", "Dairy", "Brewing", "Glass", "Metals", "Components", "Foundry", "Mills", "Labs",
    "Polymers", "Cables", "Engineering", "Freight", "Power", "Water", "Ceramics", "Robotics", "Biotech", "Timber",
    "Coatings", "Fibres", "Tools", "Electrics", "Hydraulics", "Bakeries", "Farms", "Medical", "Transport", "Retail",
)
_NAME_LEGAL = ("AG", "GmbH", "Ltd", "plc", "SA", "BV", "Group", "Holdings", "KG", "Industries")
# Outside the word-list space, so always unique; they exercise quoting and HTML escaping.
_NAME_SPECIAL = ("O'Brien & Sons", "D'Arcy & Partners", "Müller & Söhne KG", "Lee & O'Connor Ltd")

_FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Katrin", "Lars", "Maria",
    "Nils", "Olivia", "Paul", "Rosa", "Stefan", "Tara", "Umar", "Vera", "Willem", "Yasmin", "Zoe", "Marco",
    "Sofia", "Liam", "Elif", "Jan", "Chloe",
)
_LAST_NAMES = (
    "Schmidt", "Jensen", "Dubois", "Rossi", "Novak", "Kowalski", "Murphy", "Van Dijk", "Andersson", "Garcia",
    "Weber", "Moreau", "Fischer", "Lindqvist", "Costa", "Horvat", "Bauer", "Nielsen", "Silva", "O'Neill",
    "Peeters", "Berg", "Keller", "Laine", "Romano", "Walsh", "Meyer", "Varga", "Dupont", "Hofmann",
)

_DECISION_ROLES = ("Chief Executive Officer", "Chief Financial Officer", "Procurement Director", "Operations Director", "Plant Manager")
_OTHER_ROLES = ("Buyer", "Category Manager", "Quality Manager", "Maintenance Lead", "Engineer", "Project Manager", "Logistics Coordinator")
_COMPETITORS = ("Apex Industrial", "Brenner Group", "Castellan Systems", "Duvall & Rhee", "Everline")
_SEVERITIES = ("low", "medium", "high", "critical")

# Independent random streams, one a component: changing how one table is drawn
# does not change the others.
_STREAMS = (
    "managers", "accounts", "names", "churn", "margin", "lines", "contacts", "interactions", "surveys",
    "contracts", "opportunities", "tickets", "costs", "assessments", "learning",
)


# --------------------------------------------------------------------------- truth


@dataclass(frozen=True, eq=False)
class Truth:
    """The true effects built into a generated portfolio.

    Money is in ``currency``; "account-months" are the months in which an
    account is a customer (from its observation start to its churn date or
    the end of the window; a month cut by churn counts pro rata in the
    expected margins).

    Attributes
    ----------
    seed, n_accounts, start, end, currency
        The arguments of :func:`generate` (``start``/``end`` as ``YYYY-MM-DD``).
    uplift_margin_per_month : float
        Mean, over treated post-entry account-months, of the expected gross
        margin with KAM minus without. The average treatment effect on the
        treated, per account-month, in money.
    uplift_pct : float
        Full proportional effect (after the ramp), averaged over treated accounts.
    uplift_pct_by_cohort : mapping of int to float
        Full proportional effect by year of ``kam_start``.
    uplift_by_event_time : mapping of int to float
        Mean effect in money by months since entry (0 = the entry month).
    ramp_months : int
        Months over which the effect builds up linearly to its full size.
    treated_account_months : int
        Post-entry account-months of key accounts (up to churn or the end).
    incremental_margin : float
        Sum of the expected effect over those account-months.
    kam_cost_per_account_month : float
        Mean ``kam_programme`` cost per key account and month.
    programme_cost : float
        Total of the ``kam_programme`` rows in ``costs``.
    programme_roi : float
        ``(incremental_margin - programme_cost) / programme_cost``.
    churn_h0 : float
        Monthly churn hazard of the reference account: not key, latent NPS 7,
        engagement 0, no executive sponsor.
    churn_hr_key, churn_hr_nps, churn_hr_engagement, churn_hr_exec_sponsor : float
        Hazard ratios: key account vs not, per NPS point, per standard
        deviation of engagement, executive sponsor vs none.
    accounts : DataFrame
        One row per account: ``account_id``, ``nps_latent``, ``engagement_z``,
        ``exec_sponsor``, ``observation_start`` (acquisition, or the window
        start), ``churn_date`` (NaT if the account was still a customer at
        ``end``), ``churned`` and ``uplift_pct`` (its full KAM effect; 0 for
        accounts never in the programme).

    Examples
    --------
    >>> from kamtools import sample
    >>> truth = sample.generate(n_accounts=20, seed=1).truth
    >>> truth.churn_hr_key
    0.5
    >>> sample.Truth.from_dict(truth.to_dict()) == truth
    True
    """

    seed: int
    n_accounts: int
    start: str
    end: str
    currency: str
    uplift_margin_per_month: float
    uplift_pct: float
    uplift_pct_by_cohort: dict[int, float]
    uplift_by_event_time: dict[int, float]
    ramp_months: int
    treated_account_months: int
    incremental_margin: float
    kam_cost_per_account_month: float
    programme_cost: float
    programme_roi: float
    churn_h0: float
    churn_hr_key: float
    churn_hr_nps: float
    churn_hr_engagement: float
    churn_hr_exec_sponsor: float
    accounts: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict:
        """Plain JSON-ready values; ``accounts`` as a dict of column lists.

        Examples
        --------
        >>> import json
        >>> from kamtools import sample
        >>> d = sample.generate(n_accounts=20, seed=1).truth.to_dict()
        >>> sorted(d["accounts"])[:3]
        ['account_id', 'churn_date', 'churned']
        >>> len(json.dumps(d)) > 0
        True
        """
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "accounts":
                v = _frame_to_json(v)
            elif isinstance(v, dict):
                v = {str(k): float(x) for k, x in v.items()}
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Truth:
        """Rebuild a :class:`Truth` from :meth:`to_dict` output (or its JSON).

        Raises
        ------
        ParameterError
            If keys are missing or unknown.
        """
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in d]
        unknown = [k for k in d if k not in names]
        if missing or unknown:
            raise ParameterError(
                "Truth.from_dict: "
                + (f"missing keys {missing}" if missing else "")
                + ("; " if missing and unknown else "")
                + (f"unknown keys {unknown}" if unknown else "")
                + ". Pass the dict that Truth.to_dict() returns."
            )
        kw = dict(d)
        for k in ("uplift_pct_by_cohort", "uplift_by_event_time"):
            kw[k] = {int(a): float(b) for a, b in d[k].items()}
        for k in ("seed", "n_accounts", "ramp_months", "treated_account_months"):
            kw[k] = int(d[k])
        kw["accounts"] = _frame_from_json(d["accounts"])
        return cls(**kw)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Truth):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None

    def _lines(self) -> list[tuple[str, str]]:
        c = self.currency
        return [
            ("portfolio", f"{self.n_accounts:,} accounts, {self.start} to {self.end}, seed {self.seed}"),
            ("KAM uplift", f"{self.uplift_margin_per_month:,.2f} {c} gross margin per treated account-month "
                           f"({self.uplift_pct:.1%} at full effect, ramp {self.ramp_months} months)"),
            ("uplift by cohort", ", ".join(f"{k}: {v:.1%}" for k, v in self.uplift_pct_by_cohort.items())),
            ("treated", f"{self.treated_account_months:,} account-months, incremental margin "
                        f"{self.incremental_margin:,.2f} {c}"),
            ("programme cost", f"{self.programme_cost:,.2f} {c} ({self.kam_cost_per_account_month:,.0f} {c} "
                               "per key account-month)"),
            ("programme ROI", f"{self.programme_roi:.3f}"),
            ("churn", f"h0 {self.churn_h0:.4f}/month; hazard ratios: key {self.churn_hr_key:g}, "
                      f"NPS point {self.churn_hr_nps:g}, engagement SD {self.churn_hr_engagement:g}, "
                      f"exec sponsor {self.churn_hr_exec_sponsor:g}"),
            ("churned", f"{int(self.accounts['churned'].sum()):,} of {len(self.accounts):,} accounts"),
        ]

    def __repr__(self) -> str:
        width = max(len(k) for k, _ in self._lines())
        body = "\n".join(f"  {k:<{width}}  {v}" for k, v in self._lines())
        return f"Truth(\n{body}\n)"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._lines()
        )
        return f"<p><b>Truth</b>: the effects built into the sample</p><table>{rows}</table>"


def _frame_to_json(df: pd.DataFrame) -> dict:
    out = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[c] = [None if pd.isna(v) else f"{v:%Y-%m-%d}" for v in s]
        elif pd.api.types.is_bool_dtype(s):
            out[c] = [bool(v) for v in s]
        elif pd.api.types.is_float_dtype(s):
            out[c] = [float(v) for v in s]
        else:
            out[c] = [str(v) for v in s]
    return out


def _frame_from_json(d: dict) -> pd.DataFrame:
    df = pd.DataFrame({k: d[k] for k in d})
    for c in ("observation_start", "churn_date"):
        if c in df.columns:
            df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[ns]")
    for c in ("exec_sponsor", "churned"):
        if c in df.columns:
            df[c] = df[c].astype(bool)
    for c in ("nps_latent", "engagement_z", "uplift_pct"):
        if c in df.columns:
            df[c] = df[c].astype("float64")
    if "account_id" in df.columns:
        df["account_id"] = df["account_id"].astype("str")
    return df


def save_truth(truth: Truth, path, *, overwrite: bool = False) -> Path:
    """Write a :class:`Truth` as JSON (written to a temporary file, then renamed).

    Raises
    ------
    SourceError
        If the file exists and ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from kamtools import sample
    >>> truth = sample.generate(n_accounts=20, seed=1).truth
    >>> path = sample.save_truth(truth, pathlib.Path(tempfile.mkdtemp()) / "truth.json")
    >>> sample.read_truth(path) == truth
    True
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise SourceError(f"'{path}' exists already. Pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(truth.to_dict(), fh, indent=1, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def read_truth(path) -> Truth:
    """Read a :class:`Truth` written by :func:`save_truth`.

    Raises
    ------
    SourceError
        If the file is missing or is not a truth file.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return Truth.from_dict(d)
    except FileNotFoundError as err:
        raise SourceError(f"No truth file at '{path}'. Write one with kamtools.sample.save_truth().") from err
    except (json.JSONDecodeError, ParameterError, TypeError, ValueError, AttributeError) as err:
        raise SourceError(f"'{path}' is not a kamtools truth file: {err}") from err


# --------------------------------------------------------------------------- public API


def generate(
    n_accounts: int = 200,
    start="2021-01-01",
    end="2025-12-31",
    seed: int = 7,
    *,
    key_share: float = 0.2,
    currency: str = "EUR",
    lines: int = 1,
) -> KamData:
    """Simulate a KAM portfolio with known true effects.

    Parameters
    ----------
    n_accounts : int
        Number of accounts, at least 10. One manager per 8 accounts (at least 3).
    start, end : str or Timestamp
        First and last day of the data. The window must span at least 24
        months, so that key accounts have months before and after entering the
        programme (entries fall between 9 months after ``start`` and 12 months
        before ``end``).
    seed : int
        Seed of :func:`numpy.random.default_rng`. The same arguments give the
        same data (the same :attr:`KamData.fingerprint`).
    key_share : float
        Share of accounts that are key accounts, strictly between 0 and 1.
        They are chosen mostly among the large wallets.
    currency : str
        Three-letter currency code of the money columns.
    lines : int
        Invoice lines per order: each account-month's purchases are spread
        over this many times more lines (a distributor's log, where an order
        has many lines). The month's margin is split over them, so sums and
        the truth keep their expected values; ``lines=40`` on 20,000 accounts
        gives about 100 million lines (see ``benchmarks/bench_lake.py``).

    Returns
    -------
    KamData
        All twelve tables, validated, with the attribute ``truth`` (a
        :class:`Truth`).

    Raises
    ------
    ParameterError
        If an argument is out of range.

    Warns
    -----
    DataWarning
        About the credit notes (negative revenue) in ``transactions``; they are
        part of the simulation.

    Notes
    -----
    The module docstring describes the simulation. Everything is vectorised;
    5,000 accounts over five years take a few seconds.

    Examples
    --------
    >>> import warnings
    >>> from kamtools import sample
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     data = sample.generate(n_accounts=50, seed=1)
    >>> data.summary().key_accounts
    10
    >>> data.truth.churn_hr_key, data.truth.ramp_months
    (0.5, 6)
    >>> sorted(data.tables) == sorted(["accounts", "managers", "transactions", "contracts",
    ...     "interactions", "contacts", "surveys", "opportunities", "tickets", "costs",
    ...     "assessments", "learning"])
    True
    """
    args = _check_args(n_accounts, start, end, seed, key_share, currency)
    if isinstance(lines, bool) or not isinstance(lines, int | np.integer) or lines < 1:
        raise ParameterError(f"lines={lines!r}: pass a whole number of lines per order, 1 or more.")
    args["lines"] = int(lines)
    root = np.random.default_rng(args["seed"])
    rng = dict(zip(_STREAMS, root.spawn(len(_STREAMS)), strict=True))
    sim = _Sim(args, rng)
    tables = sim.tables()
    data = KamData(tables, currency=args["currency"])
    data.truth = sim.truth(data.costs)
    return data


def load() -> KamData:
    """The bundled sample portfolio: 200 accounts, 2021-2025, seed 7.

    Reads the committed CSV copy in ``data/sample`` (with its ``truth.json``)
    through :func:`kamtools.io.load`. Where that folder is absent (kamtools
    installed from a wheel), it is generated instead with
    ``generate()``'s defaults, which give the same data.

    Returns
    -------
    KamData
        With the attribute ``truth`` (a :class:`Truth`).

    Raises
    ------
    SourceError
        If ``data/sample`` exists but has no ``truth.json`` (regenerate it with
        ``make sample-data``).

    Examples
    --------
    >>> import warnings
    >>> from kamtools import sample
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     data = sample.load()
    >>> data.summary().accounts, data.currency, data.truth.seed
    (200, 'EUR', 7)
    """
    if not SAMPLE_DIR.is_dir():
        return generate()
    truth_file = SAMPLE_DIR / "truth.json"
    if not truth_file.exists():
        raise SourceError(
            f"'{SAMPLE_DIR}' holds no truth.json. Regenerate the sample with `make sample-data` "
            "(or `kamtools sample --out data/sample --force`)."
        )
    from kamtools import io

    data = io.load(SAMPLE_DIR)
    data.truth = read_truth(truth_file)
    return data


# --------------------------------------------------------------------------- arguments


def _check_args(n_accounts, start, end, seed, key_share, currency) -> dict:
    if isinstance(n_accounts, bool) or not isinstance(n_accounts, int | np.integer) or n_accounts < 10:
        raise ParameterError(f"n_accounts={n_accounts!r}: pass a whole number of accounts, at least 10.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"seed={seed!r}: pass a whole number, 0 or more.")
    try:
        share = float(key_share)
    except (TypeError, ValueError):
        share = math.nan
    if not 0 < share < 1:
        raise ParameterError(f"key_share={key_share!r}: pass a share strictly between 0 and 1, e.g. 0.2.")
    if not isinstance(currency, str) or len(currency.strip()) != 3 or not currency.strip().isalpha():
        raise ParameterError(f"currency={currency!r}: pass a three-letter ISO code such as 'EUR' or 'USD'.")
    dates = {}
    for name, value in (("start", start), ("end", end)):
        try:
            ts = pd.Timestamp(value)
        except (TypeError, ValueError) as err:
            raise ParameterError(f"{name}={value!r} is not a date; write it as YYYY-MM-DD.") from err
        if pd.isna(ts):
            raise ParameterError(f"{name}={value!r} is not a date; write it as YYYY-MM-DD.")
        if ts.tz is not None:
            ts = ts.tz_localize(None)
        dates[name] = ts.normalize()
    s, e = dates["start"], dates["end"]
    if e <= s:
        raise ParameterError(f"end={e:%Y-%m-%d} is not after start={s:%Y-%m-%d}; pass an end date after the start.")
    months = (e.year - s.year) * 12 + e.month - s.month + 1
    if months < 24:
        raise ParameterError(
            f"start={s:%Y-%m-%d} to end={e:%Y-%m-%d} spans {months} months; the sample needs at least 24 "
            "(9 months before the first KAM entry and 12 after the last)."
        )
    return {
        "n": int(n_accounts), "start": s, "end": e, "seed": int(seed),
        "key_share": share, "currency": currency.strip().upper(),
    }


# --------------------------------------------------------------------------- simulation

_EPOCH = np.datetime64("1970-01-01", "D")


def _day(ts) -> int:
    """Day number (days since 1970-01-01) of a Timestamp."""
    return int((np.datetime64(pd.Timestamp(ts).date(), "D") - _EPOCH).astype(np.int64))


def _dates(days, *, missing=None) -> np.ndarray:
    """Day numbers to datetime64[ns]; ``missing`` marks NaT."""
    out = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    if missing is not None:
        out = out.copy()
        out[np.asarray(missing)] = np.datetime64("NaT")
    return out


def _month_add(days, months) -> np.ndarray:
    """Day numbers of the first of the month ``months`` after each day's month."""
    m = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]") + np.asarray(months)
    return m.astype("datetime64[D]").astype(np.int64)


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    width = max(width, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _pick(u, probs) -> np.ndarray:
    """Category index for uniforms ``u`` (rows of ``probs`` per draw, or one row)."""
    cum = np.cumsum(np.asarray(probs, dtype=float), axis=-1)
    cum = cum / cum[..., -1:]
    if cum.ndim == 1:
        return np.searchsorted(cum, u, side="right").clip(max=cum.shape[-1] - 1)
    return (u[:, None] >= cum).sum(axis=1).clip(max=cum.shape[-1] - 1)


class _Sim:
    """Holds the simulated latent state; builds the tables and the truth."""

    def __init__(self, args: dict, rng: dict):
        self.args = args
        self.rng = rng
        self.n = args["n"]
        self.S, self.E = _day(args["start"]), _day(args["end"])
        first = np.datetime64(args["start"].date(), "M")
        last = np.datetime64(args["end"].date(), "M")
        months = np.arange(first, last + 1)
        self.T = len(months)
        self.ms = months.astype("datetime64[D]").astype(np.int64)  # first day of each month
        self.me = (months + 1).astype("datetime64[D]").astype(np.int64) - 1  # last day
        self.dim = self.me - self.ms + 1
        self.moy = months.astype(int) % 12  # 0 = January
        self.t_years = (self.ms - self.S) / 365.25
        self._managers()
        self._accounts()
        self._churn()
        self._panel()

    # -- latent state ----------------------------------------------------------------------
    def _managers(self):
        r = self.rng["managers"]
        m = max(3, round(self.n / 8))
        self.n_mgr = m
        self.manager_ids = _ids("M", m, 2)
        # tenure bands at `end`: >36 months, 18-36, <18; the first three managers cover all three
        band = r.choice(3, size=m, p=[0.5, 0.25, 0.25])
        band[:3] = r.permutation(3)
        E = self.E
        lo = np.select([band == 0, band == 1], [_month_add(self.S, -96), _month_add(E, -34)], _month_add(E, -16))
        hi = np.select([band == 0, band == 1], [_month_add(E, -38), _month_add(E, -20)], _month_add(E, -2))
        self.mgr_start = lo + np.floor(r.random(m) * (hi - lo)).astype(np.int64)
        names = r.choice(len(_FIRST_NAMES) * len(_LAST_NAMES), size=min(m, len(_FIRST_NAMES) * len(_LAST_NAMES)), replace=False)
        full = [f"{_FIRST_NAMES[k // len(_LAST_NAMES)]} {_LAST_NAMES[k % len(_LAST_NAMES)]}" for k in names]
        self.mgr_names = [full[i % len(full)] + ("" if i < len(full) else f" ({i // len(full) + 1})") for i in range(m)]
        self.mgr_skill = r.normal(0, 0.4, m)

    def _accounts(self):
        r = self.rng["accounts"]
        n, T = self.n, self.T
        self.ids = _ids("A", n, 4)
        self.wallet = np.round(np.exp(r.normal(np.log(_WALLET_MEDIAN), _WALLET_SIGMA, n)), -3).clip(min=20_000)
        self.size_z = (np.log(self.wallet) - np.log(_WALLET_MEDIAN)) / _WALLET_SIGMA
        self.n_key = max(1, min(n - 1, round(self.args["key_share"] * n)))
        score = 1.2 * self.size_z + r.gumbel(size=n)
        key_idx = np.argsort(-score, kind="stable")[: self.n_key]
        self.key = np.zeros(n, dtype=bool)
        self.key[key_idx] = True
        # KAM entry months: from 9 months after `start` to 12 months before `end`
        kam_lo = 9 if self.args["start"].day == 1 else 10
        kam_hi = T - 13
        # acquisition during the window, at a month start; key accounts early enough for a pre-period
        acquired = r.random(n) < _ACQUIRED_SHARE
        hi = np.where(self.key, kam_hi - 6, T - 7)
        self.acq_month = np.where(acquired, 1 + np.floor(r.random(n) * hi).astype(np.int64), 0)
        self.acquired = acquired
        self.obs_start = np.where(acquired, self.ms[self.acq_month], self.S)
        # KAM entry: month index in [max(kam_lo, acq + 6), kam_hi]
        lo = np.maximum(kam_lo, self.acq_month + 6)
        span = kam_hi - lo + 1
        self.kam_month = np.where(self.key, lo + np.floor(r.random(n) * span).astype(np.int64), -1)
        frac = (self.kam_month - kam_lo) / max(kam_hi - kam_lo, 1)
        self.uplift_pct = np.where(self.key, _UPLIFT_EARLY - (_UPLIFT_EARLY - _UPLIFT_LATE) * frac, 0.0)
        # relationship latents
        self.nps_latent = np.clip(r.normal(7.2, 1.5, n), 1.0, 10.0)
        self.eng = r.normal(0, 1, n) + 0.3 * self.key
        self.exec = r.random(n) < np.where(self.key, 0.5, 0.15)
        self.industry = r.choice(len(_INDUSTRIES), size=n, p=_INDUSTRY_P)
        self.region = r.choice(len(_REGIONS), size=n, p=_REGION_P)
        self.manager = r.integers(0, self.n_mgr, n)
        self.manager[: self.n_mgr] = np.arange(min(n, self.n_mgr))  # every manager has an account
        self.manager = r.permutation(self.manager)
        self.potential = r.integers(8, len(_PRODUCTS) + 1, n)
        self.preferred = r.random(n) < np.where(self.key, 0.55, 0.25) + 0.05 * np.clip(self.size_z, -1, 1)
        self.sow = r.beta(4, 6, n)  # our share of the wallet
        # product adoption: each account's catalogue order; it uses the first n_used
        self.perm = np.argsort(r.random((n, len(_PRODUCTS))), axis=1)
        self.base_used = np.minimum(self.potential, 2 + r.binomial(3, 0.5, n))
        self.rates = np.array([p[1] for p in _PRODUCTS])
        self.prices = np.array([p[2] for p in _PRODUCTS])
        self.rbar = self.rates[self.perm[np.arange(n)[:, None], np.arange(3)[None, :]]].mean(axis=1)
        # expected monthly gross margin at t = 0 (before season and trend)
        self.base = self.wallet / 12 * self.sow * self.rbar

    def _churn(self):
        r = self.rng["churn"]
        b = {k: math.log(v) for k, v in _HR.items()}
        lin = b["key"] * self.key + b["nps"] * (self.nps_latent - 7) + b["engagement"] * self.eng + b["exec_sponsor"] * self.exec
        self.hazard = _H0 * np.exp(lin)
        tau = r.exponential(1 / self.hazard)  # months
        days = np.maximum(1, np.ceil(tau * 365.25 / 12)).astype(np.int64)
        churn = self.obs_start + days
        self.churned = churn <= self.E
        self.churn_day = np.where(self.churned, churn, np.iinfo(np.int64).max)
        self.last_day = np.where(self.churned, churn - 1, self.E)

    def _panel(self):
        """Account x month: active days, expected margins, effects, realised margin."""
        r = self.rng["margin"]
        n, T = self.n, self.T
        lo = np.maximum(np.maximum(self.ms, self.S)[None, :], self.obs_start[:, None])
        hi = np.minimum(np.minimum(self.me, self.E)[None, :], self.last_day[:, None])
        self.days = np.maximum(hi - lo + 1, 0)
        self.lo = lo
        self.frac = self.days / self.dim[None, :]
        self.active = self.days > 0
        t = np.arange(T)
        self.e = np.where(self.key[:, None], t[None, :] - self.kam_month[:, None], -1)
        self.post = self.key[:, None] & (self.e >= 0) & self.active
        ramp = np.clip((self.e + 1) / _RAMP_MONTHS, 0, 1)
        trend = (1 + _GROWTH) ** self.t_years
        self.e0 = self.base[:, None] * _SEASON[self.moy][None, :] * trend[None, :] * self.frac
        self.lift = np.where(self.post, self.e0 * self.uplift_pct[:, None] * ramp, 0.0)
        # account-specific AR(1) noise in logs, mean 1
        rho, sd = 0.6, 0.18
        z = r.normal(0, 1, (n, T))
        a = np.empty((n, T))
        a[:, 0] = sd * z[:, 0]
        for k in range(1, T):
            a[:, k] = rho * a[:, k - 1] + math.sqrt(1 - rho**2) * sd * z[:, k]
        self.margin = (self.e0 + self.lift) * np.exp(a - sd**2 / 2)
        # products in use: slow adoption, faster after KAM entry
        used = self.base_used[:, None] + t[None, :] // 24 + np.where(self.e >= 0, (self.e + 3) // 9, 0)
        self.n_used = np.minimum(used, self.potential[:, None])

    # -- helpers ---------------------------------------------------------------------------
    def _events(self, r, rate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Poisson events per active account-month (rate per full month, pro rata).

        Returns account index, month index and day number of each event, in
        account-then-month order.
        """
        lam = np.where(self.active, rate * self.frac, 0.0)
        counts = r.poisson(lam)
        ai, ti = np.nonzero(counts)
        k = counts[ai, ti]
        ai, ti = np.repeat(ai, k), np.repeat(ti, k)
        day = self.lo[ai, ti] + np.floor(r.random(len(ai)) * self.days[ai, ti]).astype(np.int64)
        order = np.lexsort((day, ai))
        return ai[order], ti[order], day[order]

    # -- tables ----------------------------------------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        out = {
            "accounts": self._t_accounts(),
            "managers": self._t_managers(),
            "transactions": self._t_transactions(),
            "contracts": self._t_contracts(),
            "contacts": self._t_contacts(),
        }
        out["interactions"] = self._t_interactions()
        out["surveys"] = self._t_surveys()
        out["opportunities"] = self._t_opportunities()
        out["tickets"] = self._t_tickets()
        out["costs"] = self._t_costs()
        out["assessments"] = self._t_assessments()
        out["learning"] = self._t_learning()
        return {name: out[name] for name in TABLES if name in out}

    def _t_accounts(self) -> pd.DataFrame:
        r = self.rng["names"]
        n = self.n
        nf, ns, nl = len(_NAME_FIRST), len(_NAME_SECOND), len(_NAME_LEGAL)
        combos = nf * ns * nl
        k = np.concatenate([r.permutation(combos) for _ in range(-(-n // combos))])[:n]
        names = np.array(
            [f"{_NAME_FIRST[c // (ns * nl)]} {_NAME_SECOND[(c // nl) % ns]} {_NAME_LEGAL[c % nl]}" for c in k],
            dtype=object,
        )
        if n > combos:  # beyond the word lists: number the repeats
            rep = np.arange(n) // combos
            names = np.array([s if q == 0 else f"{s} {q + 1}" for s, q in zip(names, rep, strict=True)], dtype=object)
        special = r.choice(n, size=min(len(_NAME_SPECIAL), n), replace=False)
        names[special] = _NAME_SPECIAL[: len(special)]
        kam = _dates(np.where(self.key, self.ms[np.maximum(self.kam_month, 0)], 0), missing=~self.key)
        return pd.DataFrame(
            {
                "account_id": self.ids,
                "account_name": names,
                "industry": np.array(_INDUSTRIES, dtype=object)[self.industry],
                "region": np.array(_REGIONS, dtype=object)[self.region],
                "is_key_account": self.key,
                "kam_start": kam,
                "manager_id": self.manager_ids[self.manager],
                "wallet_size": self.wallet,
                "potential_products": self.potential.astype(np.int64),
                "preferred_supplier": self.preferred,
            }
        )

    def _t_managers(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"manager_id": self.manager_ids, "name": np.array(self.mgr_names, dtype=object), "start_date": _dates(self.mgr_start)}
        )

    def _t_transactions(self) -> pd.DataFrame:
        r = self.rng["lines"]
        ai, ti = np.nonzero(self.active)  # account-major order
        p = np.clip(0.4 + 0.15 * self.size_z, 0.1, 0.85)[ai]
        k = (1 + r.binomial(4, p)) * self.args.get("lines", 1)
        li = np.repeat(np.arange(len(ai)), k)
        a, t = ai[li], ti[li]
        g = r.gamma(2.0, 1.0, len(li))
        share = g / np.bincount(li, weights=g)[li]
        m = self.margin[a, t] * share
        prod = self.perm[a, np.floor(r.random(len(li)) * self.n_used[a, t]).astype(np.int64)]
        rate = self.rates[prod]
        revenue = m / rate
        sd = 0.03
        cost = revenue * (1 - rate) * np.exp(r.normal(0, sd, len(li)) - sd**2 / 2)
        day = self.lo[a, t] + np.floor(r.random(len(li)) * self.days[a, t]).astype(np.int64)
        price = self.prices[prod] * np.exp(r.normal(0, 0.1, len(li)))
        # credit notes: an over-invoiced line and its correction; the net is the line
        credit = r.random(len(li)) < 0.01
        f = np.where(credit, r.uniform(0.1, 0.5, len(li)), 0.0)
        qty = np.maximum(1, np.round(revenue * (1 + f) / price))
        cidx = np.nonzero(credit)[0]
        last = self.lo[a, t] + self.days[a, t] - 1
        cday = np.minimum(day[cidx] + r.integers(1, 15, len(cidx)), last[cidx])
        rows = pd.DataFrame(
            {
                "a": np.concatenate([a, a[cidx]]),
                "date": np.concatenate([day, cday]),
                "product": np.concatenate([prod, prod[cidx]]),
                "quantity": np.concatenate([qty, -np.maximum(1, np.round(qty[cidx] * f[cidx] / (1 + f[cidx])))]),
                "revenue": np.round(np.concatenate([revenue * (1 + f), -revenue[cidx] * f[cidx]]), 2),
                "cost": np.round(np.concatenate([cost * (1 + f), -cost[cidx] * f[cidx]]), 2),
            }
        )
        order = np.lexsort((np.arange(len(rows)), rows["date"].to_numpy(), rows["a"].to_numpy()))
        rows = rows.iloc[order]
        return pd.DataFrame(
            {
                "account_id": self.ids[rows["a"].to_numpy()],
                "date": _dates(rows["date"].to_numpy()),
                "product": np.array([p[0] for p in _PRODUCTS], dtype=object)[rows["product"].to_numpy()],
                "quantity": rows["quantity"].to_numpy(dtype=float),
                "revenue": rows["revenue"].to_numpy(),
                "cost": rows["cost"].to_numpy(),
            }
        )

    def _t_contracts(self) -> pd.DataFrame:
        r = self.rng["contracts"]
        n = self.n
        lengths = np.array([12, 24, 36])

        def term(size, key):
            return lengths[_pick(r.random(size), np.where(key[:, None], [0.15, 0.45, 0.4], [0.45, 0.4, 0.15]))]

        L = term(n, self.key)
        offset = np.floor(r.random(n) * L).astype(np.int64)
        start = np.where(self.acquired, self.obs_start, _month_add(self.S, -offset))
        rows = []
        alive = np.arange(n)
        k = 0
        while len(alive):
            end = _month_add(start, L) - 1
            lapsed = self.churned[alive] & (self.churn_day[alive] <= end)
            active = ~lapsed & (end >= self.E)
            p_rebid = 1 / (1 + np.exp(-(-1.6 - 0.5 * (self.nps_latent[alive] - 7))))
            rebid = r.random(len(alive)) < p_rebid
            outcome = np.where(lapsed, "lapsed", np.where(active, "active", np.where(rebid, "renewed_after_rebid", "renewed")))
            mid = (start + end) / 2
            trend = (1 + _GROWTH) ** ((mid - self.S) / 365.25)
            kam_day = np.where(self.key[alive], self.ms[np.maximum(self.kam_month[alive], 0)], np.iinfo(np.int64).max)
            lift = np.where(mid >= kam_day, 1 + self.uplift_pct[alive], 1.0)
            value = self.base[alive] / self.rbar[alive] * L * trend * lift * r.normal(1, 0.05, len(alive))
            rows.append(pd.DataFrame({"a": alive, "k": k, "start": start, "end": end, "value": np.round(value, -2), "outcome": outcome}))
            go = ~lapsed & ~active
            alive, start = alive[go], end[go] + 1
            L = term(len(alive), self.key[alive])
            k += 1
        df = pd.concat(rows, ignore_index=True).sort_values(["a", "k"], kind="stable")
        return pd.DataFrame(
            {
                "contract_id": _ids("K", len(df), 5),
                "account_id": self.ids[df["a"].to_numpy()],
                "start": _dates(df["start"].to_numpy()),
                "end": _dates(df["end"].to_numpy()),
                "value": df["value"].to_numpy(dtype=float),
                "outcome": df["outcome"].to_numpy(dtype=object),
            }
        )

    def _t_contacts(self) -> pd.DataFrame:
        r = self.rng["contacts"]
        n = self.n
        k = np.clip(2 + r.poisson(np.where(self.key, 5.0, 1.5)), 2, 12)
        self.contacts_n = k
        self.contacts_first = np.cumsum(k) - k
        a = np.repeat(np.arange(n), k)
        pos = np.arange(len(a)) - self.contacts_first[a]
        roles = np.array(_DECISION_ROLES + _OTHER_ROLES, dtype=object)
        # a different role for each contact of an account; the first is a decision
        # maker (the executive sponsor's counterpart)
        order = np.argsort(r.random((n, len(roles))), axis=1)
        first_dm = np.argmax(order < len(_DECISION_ROLES), axis=1)
        rows = np.arange(n)
        order[rows, 0], order[rows, first_dm] = order[rows, first_dm], order[rows, 0]
        idx = order[a, pos]
        dm = (pos == 0) | ((idx < len(_DECISION_ROLES)) & (r.random(len(a)) < 0.8))
        self.contact_ids = _ids("C", len(a), 6)
        return pd.DataFrame({"contact_id": self.contact_ids, "account_id": self.ids[a], "role": roles[idx], "is_decision_maker": dm})

    def _contact(self, r, a) -> np.ndarray:
        return self.contact_ids[self.contacts_first[a] + np.floor(r.random(len(a)) * self.contacts_n[a]).astype(np.int64)]

    def _t_interactions(self) -> pd.DataFrame:
        r = self.rng["interactions"]
        kinds = np.array(["meeting", "call", "email", "workshop"], dtype=object)
        rate = 0.8 * np.exp(0.35 * self.eng + 0.1 * self.size_z)[:, None] * np.where(self.post, 2.5, 1.0)
        a, t, day = self._events(r, rate)
        post = self.post[a, t]
        kind = kinds[_pick(r.random(len(a)), np.where(post[:, None], [0.3, 0.3, 0.3, 0.1], [0.22, 0.33, 0.41, 0.04]))]
        contact = self._contact(r, a)
        # business reviews: quarterly after KAM entry; executive meetings: mainly with a sponsor
        br = self.post & (self.e % 3 == 1) & (r.random(self.post.shape) < 0.85)
        p_exec = np.where(self.exec[:, None], np.where(self.post, 0.25, 0.08), 0.01)
        ex = self.active & (r.random(self.post.shape) < p_exec)
        extra = []
        for name, mask in (("business_review", br), ("executive_meeting", ex)):
            ea, et = np.nonzero(mask)
            eday = self.lo[ea, et] + np.floor(r.random(len(ea)) * self.days[ea, et]).astype(np.int64)
            ec = np.where(name == "executive_meeting", self.contact_ids[self.contacts_first[ea]], self._contact(r, ea))
            extra.append((ea, eday, np.full(len(ea), name, dtype=object), ec))
        a = np.concatenate([a] + [x[0] for x in extra])
        day = np.concatenate([day] + [x[1] for x in extra])
        kind = np.concatenate([kind] + [x[2] for x in extra])
        contact = np.concatenate([contact] + [x[3] for x in extra])
        miss = np.select([kind == "email", kind == "call"], [0.0, 0.03], 0.1)
        attended = r.random(len(a)) >= miss
        df = pd.DataFrame(
            {
                "account_id": self.ids[a],
                "date": _dates(day),
                "kind": kind,
                "contact_id": contact,
                "manager_id": self.manager_ids[self.manager[a]],
                "attended": attended,
            }
        )
        order = np.lexsort((np.arange(len(df)), day, a))
        return df.iloc[order].drop_duplicates().reset_index(drop=True)

    def _t_surveys(self) -> pd.DataFrame:
        r = self.rng["surveys"]
        rate = np.where(self.post, 4 / 12, np.where(self.key[:, None], 3 / 12, 2 / 12))
        a, t, day = self._events(r, rate)
        x = self.nps_latent[a] + 0.3 * np.clip(self.e[a, t], 0, 12) / 12 * self.key[a]
        nps = np.clip(np.round(x + r.normal(0, 1.1, len(a))), 0, 10).astype(np.int64)
        csat = np.clip(np.round(1 + 0.42 * x + r.normal(0, 0.6, len(a))), 1, 5).astype(np.int64)
        cols = {"account_id": self.ids[a], "date": _dates(day), "nps": nps, "csat": csat}
        if "suppliers" in TABLES["surveys"].columns:
            lam = np.where(self.preferred[a], 0.8, 2.0) * np.where(self.post[a, t], 0.7, 1.0)
            cols["suppliers"] = (1 + r.poisson(lam)).astype(np.int64)
        df = pd.DataFrame(cols)
        keep = ~df.duplicated(["account_id", "date"])
        return df[keep].reset_index(drop=True)

    def _t_opportunities(self) -> pd.DataFrame:
        r = self.rng["opportunities"]
        rate = (0.07 * np.exp(0.25 * self.size_z))[:, None] * np.where(self.post, 2.5, 1.0)
        a, t, day = self._events(r, rate)
        m = len(a)
        post = self.post[a, t]
        kind = np.array(["new_business", "cross_sell", "upsell", "renewal"], dtype=object)[
            _pick(r.random(m), np.where(post[:, None], [0.05, 0.4, 0.35, 0.2], [0.15, 0.3, 0.3, 0.25]))
        ]
        sources = np.array(["referral", "inbound", "outbound", "partner", "marketing"], dtype=object)
        source = sources[_pick(r.random(m), [0.15, 0.25, 0.3, 0.1, 0.2])]
        comp = np.array(_COMPETITORS, dtype=object)[r.integers(0, len(_COMPETITORS), m)]
        comp = np.where(r.random(m) < 0.4, None, comp)
        amount = np.maximum(500, np.round(self.wallet[a] * 0.05 * np.exp(r.normal(0, 0.8, m)), -2))
        logit = -0.5 + 0.9 * post + 0.15 * (self.nps_latent[a] - 7) + 0.2 * self.eng[a]
        won = r.random(m) < 1 / (1 + np.exp(-logit))
        close = day + 14 + np.round(r.gamma(2.0, 25.0, m)).astype(np.int64)
        last = self.last_day[a]
        churned = self.churned[a]
        is_open = (close > self.E) & ~churned
        cut = (close > last) & churned  # the account churned first: lost on its last day
        status = np.where(is_open, "open", np.where(cut | ~won, "lost", "won"))
        closed = np.where(cut, last, close)
        impl = closed + r.integers(14, 85, m)
        no_impl = (status != "won") | (impl > np.minimum(self.E, last))
        df = pd.DataFrame(
            {
                "opportunity_id": _ids("O", m, 5),
                "account_id": self.ids[a],
                "created": _dates(day),
                "closed": _dates(closed, missing=is_open),
                "status": status.astype(object),
                "amount": amount,
                "kind": kind,
                "source": source,
                "competitor": comp,
                "implemented": _dates(impl, missing=no_impl),
            }
        )
        return df

    def _t_tickets(self) -> pd.DataFrame:
        r = self.rng["tickets"]
        rate = (0.3 * np.exp(0.3 * self.size_z))[:, None] * np.ones(self.T)
        a, t, day = self._events(r, rate)
        m = len(a)
        sev = _pick(r.random(m), [0.45, 0.35, 0.15, 0.05])
        hours = np.array([8, 9, 9, 10, 10, 11, 13, 14, 14, 15, 16, 17])[r.integers(0, 12, m)]
        minute = np.int64(60) * 24 * day + 60 * hours + r.integers(0, 60, m)
        resp_h = np.array([20.0, 8.0, 3.0, 1.0])[sev]
        first = minute + np.maximum(5, np.round(r.exponential(resp_h * 60))).astype(np.int64)
        res_d = np.array([6.0, 3.0, 1.5, 0.5])[sev]
        resolved = first + np.round(r.exponential(res_d * 24 * 60)).astype(np.int64)
        horizon = (np.int64(self.E) + 1) * 24 * 60  # end of the last day
        ns = np.int64(60_000_000_000)
        return pd.DataFrame(
            {
                "ticket_id": _ids("T", m, 5),
                "account_id": self.ids[a],
                "opened": (minute * ns).astype("datetime64[ns]"),
                "first_response": np.where(first < horizon, first * ns, np.iinfo(np.int64).min).astype("datetime64[ns]"),
                "resolved": np.where(resolved < horizon, resolved * ns, np.iinfo(np.int64).min).astype("datetime64[ns]"),
                "severity": np.array(_SEVERITIES, dtype=object)[sev],
            }
        )

    def _t_costs(self) -> pd.DataFrame:
        r = self.rng["costs"]
        ai, ti = np.nonzero(self.active)
        revenue = (self.e0 + self.lift)[ai, ti] / self.rbar[ai]
        serve = np.round((150 * self.frac[ai, ti] + 0.04 * revenue) * np.exp(r.normal(0, 0.15, len(ai)) - 0.15**2 / 2), 2)
        ki, kt = np.nonzero(self.post)
        kam = np.round(_KAM_COST * r.normal(1, 0.05, len(ki)), 2)
        a = np.concatenate([ai, ki])
        day = np.concatenate([self.lo[ai, ti], self.lo[ki, kt]])
        kind = np.concatenate([np.full(len(ai), "cost_to_serve", dtype=object), np.full(len(ki), "kam_programme", dtype=object)])
        amount = np.concatenate([serve, kam])
        order = np.lexsort((np.arange(len(a)), kind, day, a))
        return pd.DataFrame(
            {"account_id": self.ids[a[order]], "date": _dates(day[order]), "kind": kind[order], "amount": amount[order]}
        )

    def _t_assessments(self) -> pd.DataFrame:
        r = self.rng["assessments"]
        # accounts: key accounts, every six months after entry (month 5, 11, ...), while a customer
        k = np.arange(self.T // 6 + 1)
        ai = np.repeat(np.nonzero(self.key)[0], len(k))
        kk = np.tile(k, self.n_key)
        month = self.kam_month[ai] + 5 + 6 * kk
        ok = month < self.T
        ai, kk, month = ai[ok], kk[ok], month[ok]
        day = self.ms[month] + 14
        ok = (day <= self.last_day[ai]) & (day <= self.E)
        ai, month, day = ai[ok], month[ok], day[ok]
        dims = [("plan_quality", "supplier", 0.0), ("plan_execution", "supplier", -0.2), ("collaboration", "supplier", 0.1),
                ("solution_relevance", "supplier", 0.1), ("needs_analysis", "supplier", -0.1),
                ("plan_execution", "customer", -0.3), ("collaboration", "customer", 0.0), ("solution_relevance", "customer", -0.1)]
        nd = len(dims)
        a = np.repeat(ai, nd)
        d = np.repeat(day, nd)
        e = np.repeat(month - self.kam_month[ai], nd)
        dim = np.tile(np.arange(nd), len(ai))
        offs = np.array([x[2] for x in dims])[dim]
        score = 3.0 + 0.35 * self.eng[a] + 0.08 * (self.nps_latent[a] - 7) + 0.5 * np.minimum(e / 24, 1) + offs + r.normal(0, 0.45, len(a))
        acc = pd.DataFrame(
            {
                "subject_id": self.ids[a],
                "date": d,
                "dimension": np.array([x[0] for x in dims], dtype=object)[dim],
                "score": np.clip(np.round(score, 1), 1, 5),
                "assessor": np.array([x[1] for x in dims], dtype=object)[dim],
            }
        )
        # managers: a year-end review each year (15 December) after three months in the role
        years = np.arange(pd.Timestamp(self.args["start"]).year, pd.Timestamp(self.args["end"]).year + 1)
        dec = np.array([_day(pd.Timestamp(y, 12, 15)) for y in years])
        mi = np.repeat(np.arange(self.n_mgr), len(dec))
        md = np.tile(dec, self.n_mgr)
        ok = (md >= self.S) & (md <= self.E) & (md >= _month_add(self.mgr_start[mi], 3))
        mi, md = mi[ok], md[ok]
        mdims = [("skills", "supplier"), ("feedback", "customer"), ("continuous_improvement", "supplier")]
        a = np.repeat(mi, 3)
        dd = np.repeat(md, 3)
        dim = np.tile(np.arange(3), len(mi))
        tenure = (dd - self.mgr_start[a]) / 365.25
        score = 2.9 + 0.15 * np.minimum(tenure, 8) + self.mgr_skill[a] + r.normal(0, 0.3, len(a))
        mgr = pd.DataFrame(
            {
                "subject_id": self.manager_ids[a],
                "date": dd,
                "dimension": np.array([x[0] for x in mdims], dtype=object)[dim],
                "score": np.clip(np.round(score, 1), 1, 5),
                "assessor": np.array([x[1] for x in mdims], dtype=object)[dim],
            }
        )
        df = pd.concat([acc, mgr], ignore_index=True).sort_values(["date", "subject_id"], kind="stable")
        return df.assign(date=_dates(df["date"].to_numpy())).reset_index(drop=True)

    def _t_learning(self) -> pd.DataFrame:
        r = self.rng["learning"]
        m, T = self.n_mgr, self.T
        lo = np.maximum(np.maximum(self.ms, self.S)[None, :], self.mgr_start[:, None])
        hi = np.minimum(self.me, self.E)[None, :] * np.ones((m, 1), dtype=np.int64)
        days = np.maximum(hi - lo + 1, 0)
        frac = days / self.dim[None, :]
        tenure_m = (self.ms[None, :] - self.mgr_start[:, None]) / 30.44
        rates = {
            "training": np.full((m, T), 0.25),
            "certification": np.full((m, T), 0.04),
            "coaching": np.where(tenure_m < 18, 0.6, 0.15),
        }
        parts = []
        for kind, rate in rates.items():
            c = r.poisson(rate * frac)
            mi, ti = np.nonzero(c)
            kk = c[mi, ti]
            mi, ti = np.repeat(mi, kk), np.repeat(ti, kk)
            day = lo[mi, ti] + np.floor(r.random(len(mi)) * days[mi, ti]).astype(np.int64)
            if kind == "training":
                hours = np.array([4.0, 8.0, 8.0, 16.0, 24.0])[r.integers(0, 5, len(mi))]
                done = r.random(len(mi)) < 0.95
            elif kind == "certification":
                hours = np.array([8.0, 16.0, 24.0, 40.0])[r.integers(0, 4, len(mi))]
                done = r.random(len(mi)) < 0.75
            else:
                hours = np.array([1.0, 1.0, 1.5, 2.0])[r.integers(0, 4, len(mi))]
                done = r.random(len(mi)) < 0.98
            parts.append(pd.DataFrame({"m": mi, "day": day, "kind": kind, "hours": hours, "completed": done}))
        df = pd.concat(parts, ignore_index=True).sort_values(["m", "day"], kind="stable")
        out = pd.DataFrame(
            {
                "manager_id": self.manager_ids[df["m"].to_numpy()],
                "date": _dates(df["day"].to_numpy()),
                "kind": df["kind"].to_numpy(dtype=object),
                "hours": df["hours"].to_numpy(),
                "completed": df["completed"].to_numpy(),
            }
        )
        return out.drop_duplicates().reset_index(drop=True)

    # -- truth -----------------------------------------------------------------------------
    def truth(self, costs: pd.DataFrame) -> Truth:
        post = self.post
        lift = self.lift[post]
        kam_year = self.ms[np.maximum(self.kam_month, 0)].astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970
        cohorts = pd.Series(self.uplift_pct[self.key]).groupby(kam_year[self.key]).mean()
        ev = pd.Series(self.lift[post]).groupby(self.e[post]).mean()
        programme_cost = float(costs.loc[costs["kind"] == "kam_programme", "amount"].sum())
        incremental = float(lift.sum())
        accounts = pd.DataFrame(
            {
                "account_id": pd.array(self.ids, dtype="str"),
                "nps_latent": np.round(self.nps_latent, 4),
                "engagement_z": np.round(self.eng, 4),
                "exec_sponsor": self.exec,
                "observation_start": _dates(self.obs_start),
                "churn_date": _dates(np.where(self.churned, self.churn_day, 0), missing=~self.churned),
                "churned": self.churned,
                "uplift_pct": np.round(self.uplift_pct, 6),
            }
        )
        return Truth(
            seed=self.args["seed"],
            n_accounts=self.n,
            start=f"{self.args['start']:%Y-%m-%d}",
            end=f"{self.args['end']:%Y-%m-%d}",
            currency=self.args["currency"],
            uplift_margin_per_month=float(lift.mean()) if len(lift) else 0.0,
            uplift_pct=float(self.uplift_pct[self.key].mean()),
            uplift_pct_by_cohort={int(k): float(v) for k, v in cohorts.items()},
            uplift_by_event_time={int(k): float(v) for k, v in ev.items()},
            ramp_months=_RAMP_MONTHS,
            treated_account_months=int(post.sum()),
            incremental_margin=incremental,
            kam_cost_per_account_month=_KAM_COST,
            programme_cost=programme_cost,
            programme_roi=(incremental - programme_cost) / programme_cost if programme_cost else math.nan,
            churn_h0=_H0,
            churn_hr_key=_HR["key"],
            churn_hr_nps=_HR["nps"],
            churn_hr_engagement=_HR["engagement"],
            churn_hr_exec_sponsor=_HR["exec_sponsor"],
            accounts=accounts,
        )
