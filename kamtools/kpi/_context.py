"""What a KPI function gets: the data cut at the as-of date, bucketed into periods."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from kamtools import periods as _periods
from kamtools.data import KamData
from kamtools.exceptions import ParameterError
from kamtools.schema import TABLES

#: An account still buying within this many days of the as-of date is active up to it.
ACTIVE_WINDOW_DAYS = 365
#: The DuckDB engine sums the transactions by these columns (and period) ...
GROUPED_COLUMNS = ("account_id", "product")
#: ... adding these up (see :meth:`Context.table`); KPIs needing any other column need the lines.
SUMMED_COLUMNS = ("quantity", "revenue", "cost")


def positive(x):
    """``x > 0`` (a Series or an array), ignoring the float noise of sums that net to zero (6 decimals).

    A product credited back in full nets to 0.0 or to 2.8e-17 depending on the
    order of the additions; either way it is not bought. Every test of a sum
    against zero in the catalogue goes through here, so that both engines
    (and any order of the lines) agree.
    """
    return np.round(x, 6) > 0


class Context:
    """The data a KPI function computes from.

    Parameters
    ----------
    data : KamData
    freq : {"M", "Q", "Y"}
    as_of : Timestamp
        Rows dated after it are not seen: a KPI only knows what was known then.
    start : Timestamp
        First day of the first period reported. Earlier rows stay visible,
        for KPIs that look back (growth, tenure, churn).
    engine : {"pandas", "duckdb"}, optional
        Where the transactions are summed; default the data's own
        (:attr:`KamData.engine`). See :meth:`table`.
    """

    def __init__(self, data: KamData, freq: str, as_of: pd.Timestamp, start: pd.Timestamp,
                 engine: str | None = None):
        self.data = data
        self.freq = _periods.check_freq(freq)
        self.as_of = as_of
        self.start = start
        self.engine = engine or data.engine
        self.periods = _periods.period_range(start, as_of, self.freq)
        if len(self.periods) == 0:
            raise ParameterError(f"start={start:%Y-%m-%d} is after as_of={as_of:%Y-%m-%d}: there is no period to compute.")

    @property
    def cutoff(self) -> pd.Timestamp:
        """The last instant of the as-of day: anything later is not known yet."""
        return self.as_of + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)

    @property
    def months_per_period(self) -> int:
        return _periods.MONTHS[self.freq]

    @property
    def accounts(self) -> pd.DataFrame:
        return self.data.accounts

    def period(self, dates: pd.Series) -> pd.Series:
        """The period of each date."""
        return _periods.to_period(dates, self.freq)

    def period_end(self, period: pd.Series) -> pd.Series:
        """The last day of each period (midnight)."""
        return period.dt.end_time.dt.normalize()

    def table(self, name: str) -> pd.DataFrame | None:
        """A table cut at the as-of date, with a ``period`` column; ``None`` if absent.

        Tables without a date (accounts, managers, contacts) come whole, without
        ``period``. Rows are cut on the table's date column only (contracts on
        ``start``, opportunities on ``created``, tickets on ``opened``): a later
        end, close or resolution date, and an outcome recorded after ``as_of``,
        stay visible, so KPIs that use them must compare them with ``ctx.as_of``.

        ``transactions`` has two more columns, ``lines`` (invoice lines in the
        row) and ``last_date`` (the last of their dates; ``date`` is the
        first). With the pandas engine a row is one invoice line (``lines`` 1,
        ``last_date`` equal to ``date``). With the DuckDB engine a row sums the
        lines of one account, product and period (quantity, revenue, cost;
        lines with and without a cost or a quantity apart), split at the
        windows that end on the as-of date: sums, counts, first and last dates
        by account x period are the same either way, and only these sums
        reach pandas. A KPI that looks at single lines must say so
        (``line_level=True``, the default for KPIs you register).
        """
        if name == "transactions":
            return self._transactions.copy(deep=False)
        if name not in self.data.tables:
            return None
        df = self.data.tables[name]
        date = TABLES[name].date
        if date is None:
            return df
        df = df[df[date] <= self.cutoff]
        return df.assign(period=self.period(df[date]))

    @cached_property
    def _transactions(self) -> pd.DataFrame:
        if self.engine == "duckdb":
            tx = self._summed_transactions()
        else:
            tx = self.data.transactions
            tx = tx[tx["date"] <= self.cutoff]
            tx = tx.assign(lines=1, last_date=tx["date"])
        return tx.assign(period=self.period(tx["date"]))

    def window_cuts(self) -> list[pd.Timestamp]:
        """Days within a period where a window of a KPI begins: those of the windows ending on ``as_of``.

        The windows of one and two period lengths that end on the as-of day
        (a running period's defection-risk windows) begin mid-month; every
        other window begins on a period's first day.
        """
        hi = self.as_of + pd.Timedelta(days=1)
        return sorted({hi - pd.DateOffset(months=k * self.months_per_period) for k in (1, 2)})

    def _summed_transactions(self) -> pd.DataFrame:
        """The transactions summed in DuckDB by account, product and period (see :meth:`table`)."""
        from kamtools.lazy import LazyTable

        table = self.data.lazy.get("transactions") or LazyTable.frame("transactions", self.data.transactions)
        have = set(table.columns)
        unit = {"M": "month", "Q": "quarter", "Y": "year"}[self.freq]
        keys = [c for c in GROUPED_COLUMNS if c in have]
        cuts = " + ".join(f"(date >= TIMESTAMP '{c:%Y-%m-%d}')::INT" for c in self.window_cuts())
        sums = [c for c in SUMMED_COLUMNS if c in have]
        apart = [f"{c} IS NULL" for c in sums if c != "revenue"]  # lines with and without a value apart
        cols = ", ".join([*keys, "min(date) AS date", "max(date) AS last_date", *(f"sum({c}) AS {c}" for c in sums),
                          "count(*) AS lines"])
        groups = ", ".join([*keys, f"date_trunc('{unit}', date)", cuts, *apart])
        sql = f"SELECT {cols} FROM t WHERE date < ? GROUP BY {groups} ORDER BY {', '.join(keys)}, date"
        tx = table.query(sql, [self.as_of + pd.Timedelta(days=1)], cache=True)
        return tx.astype({"lines": "int64", "last_date": "datetime64[ns]"})

    @cached_property
    def active(self) -> pd.DataFrame:
        """Account-periods in which the account is a customer: ``account_id, period``.

        From the period of its first invoice to the period of its last one; an
        account that bought less than :data:`ACTIVE_WINDOW_DAYS` before the as-of date
        is active up to the as-of period.
        """
        tx = self.table("transactions")
        span = tx.groupby("account_id", observed=True).agg(min=("date", "min"), max=("last_date", "max"))
        recent = span["max"] > self.as_of - pd.Timedelta(days=ACTIVE_WINDOW_DAYS)
        last = span["max"].where(~recent, self.as_of)
        # from the period before the first reported one, which growth KPIs compare with
        first = pd.PeriodIndex(self.period(span["min"])).asi8.clip(min=self.periods[0].ordinal - 1)
        last = pd.PeriodIndex(self.period(last)).asi8.clip(max=self.periods[-1].ordinal)
        n = (last - first + 1).clip(min=0)
        offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        ordinals = np.repeat(first, n) + offsets
        return pd.DataFrame(
            {
                "account_id": span.index.repeat(n),
                "period": pd.PeriodIndex.from_ordinals(ordinals, freq=self.periods.freq),
            }
        )

    def per_account(self, df: pd.DataFrame, value: str | None = None, *, how: str = "sum") -> pd.DataFrame:
        """Aggregate rows by ``account_id`` and ``period`` into ``num`` (and ``den``).

        ``how``: ``"sum"`` of ``value``, ``"count"`` of rows, ``"nunique"`` of
        ``value``, ``"max"`` of ``value``, or ``"mean"`` (``num`` the sum,
        ``den`` the count, so groups average correctly).
        """
        g = df.groupby(["account_id", "period"], observed=True, sort=False)
        if how == "count":
            out = g.size().rename("num").astype("float64").reset_index()
        elif how == "mean":
            out = g[value].agg(num="sum", den="count").reset_index()
        elif how in ("sum", "nunique", "max"):
            out = g[value].agg(how).rename("num").astype("float64").reset_index()
        else:
            raise ParameterError(f"per_account: how={how!r}; use sum, count, nunique, max or mean.")
        return out

    def took_place(self, interactions: pd.DataFrame) -> pd.DataFrame:
        """The interactions that took place: ``attended`` true or not recorded.

        One rule for the whole catalogue: a planned meeting the customer missed
        did not take place; a call or e-mail without attendance recorded did.
        """
        if "attended" not in interactions.columns:
            return interactions
        return interactions[interactions["attended"].fillna(True).astype("bool")]

    def scores(self, dimension: str, *, of: str = "account") -> pd.DataFrame:
        """Mean assessment score per account (or manager) and period.

        Returns ``account_id`` (or ``manager_id``), ``period``, ``num`` (sum of
        the scores of ``dimension``) and ``den`` (their count), both assessors,
        so groups pool the scores.
        """
        a = self.table("assessments")
        is_account = a["subject_id"].isin(self.accounts["account_id"])
        a = a[(a["dimension"] == dimension) & (is_account if of == "account" else ~is_account)]
        a = a.rename(columns={"subject_id": f"{of}_id"})
        return a.groupby([f"{of}_id", "period"], observed=True)["score"].agg(num="sum", den="count").reset_index()

    def on_active(self, frame: pd.DataFrame | None = None, *, fill: float = 0.0) -> pd.DataFrame:
        """Spread per-account values over the active grid, one ``den`` per account-period.

        Missing ``num`` becomes ``fill``. Grouped, the value is then the mean
        per active account, e.g. revenue per account. Rows of ``frame``
        outside the grid are kept (an account with costs before its first
        invoice counts in that period).
        """
        grid = self.active.assign(den=1.0)
        if frame is None:
            return grid.assign(num=fill)
        # rows outside the active grid (e.g. costs before the first invoice) are kept, as one account each
        out = grid.merge(frame[["account_id", "period", "num"]], on=["account_id", "period"], how="outer")
        return out.assign(num=out["num"].fillna(fill), den=1.0)
