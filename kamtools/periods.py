"""Period arithmetic: month, quarter and year buckets, as-of dates, tenure.

Periods are pandas ``Period`` values (``2024Q1``), so they sort, print and
subtract naturally. Every function takes the period length as ``"M"``, ``"Q"``
or ``"Y"``.
"""

from __future__ import annotations

import pandas as pd

from kamtools.exceptions import ParameterError

__all__ = ["FREQS", "MONTHS", "check_freq", "to_period", "period_range", "as_of_date", "months_between"]

#: The period lengths kamtools understands, with their pandas Period frequency.
FREQS = {"M": "M", "Q": "Q", "Y": "Y"}
#: Months in one period of each length.
MONTHS = {"M": 1, "Q": 3, "Y": 12}
_ALIASES = {"MONTH": "M", "MONTHLY": "M", "QUARTER": "Q", "QUARTERLY": "Q", "YEAR": "Y", "YEARLY": "Y", "A": "Y"}


def check_freq(freq: str) -> str:
    """Return the canonical period length, or raise a clear error.

    Examples
    --------
    >>> check_freq("quarter")
    'Q'
    """
    key = str(freq).strip().upper()
    key = _ALIASES.get(key, key)
    if key not in FREQS:
        raise ParameterError(f"period={freq!r} is not a period length kamtools knows; use 'M', 'Q' or 'Y'.")
    return key


def to_period(dates: pd.Series, freq: str) -> pd.Series:
    """The period each date falls in.

    Examples
    --------
    >>> to_period(pd.Series(pd.to_datetime(["2024-02-29", "2024-04-01"])), "Q").astype(str).tolist()
    ['2024Q1', '2024Q2']
    """
    return dates.dt.to_period(FREQS[check_freq(freq)])


def period_range(first, last, freq: str) -> pd.PeriodIndex:
    """Every period from the one holding ``first`` to the one holding ``last``."""
    f = FREQS[check_freq(freq)]
    return pd.period_range(pd.Timestamp(first).to_period(f), pd.Timestamp(last).to_period(f), freq=f)


def as_of_date(as_of, default) -> pd.Timestamp:
    """Parse an as-of date; ``None`` gives ``default`` (e.g. the last date in the data)."""
    if as_of is None:
        return pd.Timestamp(default).normalize()
    try:
        return pd.Timestamp(as_of).normalize()
    except (ValueError, TypeError) as err:
        raise ParameterError(f"as_of={as_of!r} is not a date; write it as 'YYYY-MM-DD'.") from err


def months_between(start, end):
    """Whole calendar months from ``start`` to ``end`` (a tenure).

    A month counts once its day of the month is reached again: from 15 January
    to 14 July is 5 months, to 15 July 6. Works on scalars and Series; a missing
    date gives a missing result.

    Examples
    --------
    >>> months_between(pd.Timestamp("2023-01-01"), pd.Timestamp("2024-07-01"))
    18
    >>> months_between(pd.Timestamp("2023-01-15"), pd.Timestamp("2023-07-14"))
    5
    """
    s, e = pd.to_datetime(start), pd.to_datetime(end)
    if isinstance(s, pd.Timestamp) and isinstance(e, pd.Timestamp):
        return (e.year - s.year) * 12 + e.month - s.month - int(e.day < s.day)
    s, e = _series(s), _series(e)
    months = (e.dt.year - s.dt.year) * 12 + e.dt.month - s.dt.month - (e.dt.day < s.dt.day).astype(int)
    return months.astype("Int64")


def _series(x):
    return x if isinstance(x, pd.Series) else pd.Series(x)
