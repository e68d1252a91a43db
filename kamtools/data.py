"""KamData: one validated KAM data set, the object every analysis starts from."""

from __future__ import annotations

import hashlib
import html
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import pandas as pd

from kamtools import schema
from kamtools.exceptions import DataWarning, SchemaError

__all__ = ["KamData", "Summary"]


@dataclass(frozen=True)
class Summary:
    """What :meth:`KamData.summary` returns: a headline and a table per table."""

    accounts: int
    key_accounts: int
    currency: str | None
    first_date: pd.Timestamp | None
    last_date: pd.Timestamp | None
    tables: pd.DataFrame  # index: table; columns: rows, columns, first_date, last_date

    def __str__(self) -> str:
        span = (
            f"{self.first_date:%Y-%m-%d} to {self.last_date:%Y-%m-%d}"
            if self.first_date is not None
            else "no dated rows"
        )
        head = [
            f"accounts      {self.accounts:,} ({self.key_accounts:,} key accounts)",
            f"period        {span}",
            f"currency      {self.currency or '(not given)'}",
            "",
        ]
        table = self.tables.copy()
        for c in ("first_date", "last_date"):
            table[c] = table[c].dt.strftime("%Y-%m-%d").fillna("")
        return "\n".join(head) + table.to_string()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


class KamData:
    """A validated KAM data set: a handful of tables, as a CRM exports them.

    Build one with :func:`kamtools.load` (from files or a database),
    :func:`kamtools.sample.generate`, or directly from DataFrames. The tables
    are checked against the data model (:mod:`kamtools.schema`) on the way in.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Raw tables by name; ``accounts`` and ``transactions`` are required.
    currency : str, optional
        ISO code of the one currency money is in. If ``transactions`` has a
        ``currency`` column, it is read from there and must hold one value.
    columns : mapping, optional
        Per table, your column names mapped onto ours; see
        :func:`kamtools.schema.validate`.
    sources, date_format
        Passed to :func:`kamtools.schema.validate`.
    lazy : mapping of str to LazyTable, optional
        Tables left in DuckDB (a Parquet lake or a DuckDB file), checked in SQL;
        :func:`kamtools.load` makes these for large transaction logs. See
        :mod:`kamtools.lazy`.

    Attributes
    ----------
    accounts, managers, transactions, contracts, interactions, contacts, surveys, \
opportunities, tickets, costs, assessments, learning : DataFrame or None
        The tables; an optional table that was not given is ``None``. Treat them
        as read-only: copy before changing one.
    tables : mapping of str to DataFrame
        The tables that are present, in the model's order. A table left in
        DuckDB is read into memory when it is looked up here (or as an
        attribute), once, with a :class:`~kamtools.DataWarning`.
    engine : {"pandas", "duckdb"}
        ``"duckdb"`` when some table is left in DuckDB: :func:`kamtools.compute`
        then sums it there and hands pandas only the sums.
    currency : str or None

    Examples
    --------
    >>> import pandas as pd
    >>> import kamtools as kt
    >>> data = kt.KamData({
    ...     "accounts": pd.DataFrame({"account_id": ["A1", "A2"], "account_name": ["Acme", "Bolt"],
    ...                               "is_key_account": [True, False]}),
    ...     "transactions": pd.DataFrame({"account_id": ["A1", "A2"],
    ...                                   "date": ["2024-01-15", "2024-02-01"],
    ...                                   "revenue": [1000.0, 250.0]}),
    ... }, currency="EUR")
    >>> data
    KamData(2 accounts, 1 key, EUR, 2024-01-15 to 2024-02-01; accounts: 2 rows, transactions: 2 rows)
    >>> data.surveys is None
    True
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        currency: str | None = None,
        columns: Mapping[str, Mapping[str, str]] | None = None,
        sources: Mapping[str, str] | None = None,
        date_format: str | None = None,
        lazy: Mapping | None = None,
    ):
        lazy = dict(lazy or {})
        typed = schema.validate(tables, columns=columns, sources=sources, date_format=date_format, lazy=lazy)
        self._tables = typed
        self._lazy = lazy
        self._read: dict[str, pd.DataFrame] = {}
        tx = lazy.get("transactions")
        if tx is None:
            self.currency = _currency(typed["transactions"], currency)
        elif "currency" in tx.columns:
            self.currency = _currency(tx.query("SELECT DISTINCT currency FROM t"), currency)
        else:
            self.currency = currency

    # -- access ---------------------------------------------------------------------------
    @property
    def tables(self) -> Mapping[str, pd.DataFrame]:
        if not self._lazy:
            return MappingProxyType(self._tables)
        return _Tables(self)

    @property
    def engine(self) -> str:
        return "duckdb" if self._lazy else "pandas"

    @property
    def lazy(self) -> Mapping:
        """The tables left in DuckDB, as :class:`~kamtools.lazy.LazyTable` (empty for data in memory)."""
        return MappingProxyType(self._lazy)

    def _in_memory(self, name: str) -> pd.DataFrame:
        """A lazy table read into memory, once."""
        if name not in self._read:
            table = self._lazy[name]
            warnings.warn(
                f"{name}: reading {table.count():,} rows from {table.label} into memory. kt.compute does not "
                "need this (it sums them in DuckDB); the analyses that read every invoice line do.",
                DataWarning, stacklevel=4,
            )
            self._read[name] = table.to_pandas()
        return self._read[name]

    def __getattr__(self, name: str):
        if name in schema.TABLES:
            if name in self.__dict__.get("_lazy", {}):
                return self._in_memory(name)
            return self._tables.get(name)
        raise AttributeError(f"'KamData' has no attribute '{name}'. Tables: {', '.join(schema.TABLES)}.")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(schema.TABLES))

    def __eq__(self, other) -> bool:
        if not isinstance(other, KamData):
            return NotImplemented
        return self.fingerprint == other.fingerprint

    __hash__ = None  # mutable tables inside: not hashable

    # -- description ----------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """A SHA-256 of the content: tables, columns, dtypes, values and currency.

        Equal data give the same fingerprint whatever they were loaded from
        (CSV, Parquet, Excel, a database); any changed value changes it. Row
        order counts. It is computed afresh each time it is read.
        """
        h = hashlib.sha256()
        h.update(f"currency={self.currency}\n".encode())
        for name in _order(self):
            parts = self._lazy[name].batches() if name in self._lazy else [self._tables[name]]
            for i, df in enumerate(parts):  # a lazy table streams through in chunks: same digest
                if i == 0:
                    h.update(f"table={name}\n".encode())
                    for col in df.columns:
                        h.update(f"{col}:{df[col].dtype}\n".encode())
                h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
        return h.hexdigest()

    def summary(self) -> Summary:
        """Rows per table, the date range, accounts, key accounts and currency.

        Examples
        --------
        >>> import kamtools as kt
        >>> s = kt.sample.load().summary()
        >>> s.accounts, s.currency
        (200, 'EUR')
        """
        rows = []
        for name in _order(self):
            date = schema.TABLES[name].date
            if name in self._lazy:
                table = self._lazy[name]
                n, first, last = table.span(date)
                rows.append({"table": name, "rows": n, "columns": len(table.columns),
                             "first_date": first or pd.NaT, "last_date": last or pd.NaT})
                continue
            df = self._tables[name]
            dates = df[date].dropna() if date else pd.Series([], dtype="datetime64[ns]")
            rows.append(
                {
                    "table": name,
                    "rows": len(df),
                    "columns": df.shape[1],
                    "first_date": dates.min() if len(dates) else pd.NaT,
                    "last_date": dates.max() if len(dates) else pd.NaT,
                }
            )
        table = pd.DataFrame(rows).set_index("table")
        acc = self._tables["accounts"]
        first, last = table["first_date"].min(), table["last_date"].max()
        return Summary(
            accounts=len(acc),
            key_accounts=int(acc["is_key_account"].fillna(False).sum()),
            currency=self.currency,
            first_date=None if pd.isna(first) else first,
            last_date=None if pd.isna(last) else last,
            tables=table,
        )

    def __repr__(self) -> str:
        s = self.summary()
        span = f", {s.first_date:%Y-%m-%d} to {s.last_date:%Y-%m-%d}" if s.first_date is not None else ""
        sizes = ", ".join(f"{t}: {n:,} rows" for t, n in s.tables["rows"].items())
        return f"KamData({s.accounts:,} accounts, {s.key_accounts:,} key, {s.currency or 'no currency'}{span}; {sizes})"

    def _repr_html_(self) -> str:
        s = self.summary()
        return (
            f"<p><b>KamData</b>: {s.accounts:,} accounts ({s.key_accounts:,} key), "
            f"currency {html.escape(str(s.currency))}</p>" + s.tables.to_html()
        )

    # -- derived data sets ----------------------------------------------------------------
    def subset(self, account_ids: Iterable[str]) -> KamData:
        """The data of some accounts only: every table filtered to them.

        Managers are kept only where they manage a kept account or appear on a
        kept row; contacts, assessments and learning follow the same rule. Use
        it to make sure a report sees nothing of other accounts.

        Raises
        ------
        SchemaError
            If an id is not an account of this data set.
        """
        ids = pd.Index(pd.unique(pd.Series(list(account_ids), dtype="str")))
        unknown = ids.difference(self._tables["accounts"]["account_id"])
        if len(unknown):
            fc = pd.DataFrame(
                {"table": "accounts", "column": "account_id", "check": "unknown account",
                 "row": None, "value": list(unknown), "advice": "Use ids from data.accounts.account_id."}
            )
            raise SchemaError(
                f"subset: {len(unknown)} account id(s) not in accounts.account_id: "
                f"{', '.join(map(repr, unknown[:5]))}. Use ids from data.accounts.account_id.",
                fc,
            )
        out = {}
        for name, table in self._lazy.items():  # only the accounts' rows leave DuckDB
            out[name] = table.to_pandas("list_contains(?, account_id)", [list(ids)])
        for name, df in self._tables.items():
            if "account_id" in df.columns:
                out[name] = df[df["account_id"].isin(ids)]
        managers = pd.concat(
            [df["manager_id"] for df in out.values() if "manager_id" in df.columns], ignore_index=True
        ).dropna()
        for name in ("managers", "learning"):
            if name in self._tables:
                df = self._tables[name]
                out[name] = df[df["manager_id"].isin(managers)]
        if "assessments" in self._tables:
            df = self._tables["assessments"]
            out["assessments"] = df[df["subject_id"].isin(ids) | df["subject_id"].isin(managers)]
        return KamData._from_valid({n: df.reset_index(drop=True) for n, df in out.items()}, self.currency)

    @classmethod
    def _from_valid(cls, tables: Mapping[str, pd.DataFrame], currency: str | None) -> KamData:
        """Wrap tables that are already typed and valid (no second validation)."""
        obj = cls.__new__(cls)
        obj._tables = {n: tables[n] for n in schema.TABLES if n in tables}
        obj._lazy, obj._read = {}, {}
        obj.currency = currency
        return obj

    # -- writing (see kamtools.io) --------------------------------------------------------
    def to_folder(self, path, *, format: str = "csv", overwrite: bool = False):
        """Write one file per table into a folder. See :func:`kamtools.io.to_folder`."""
        from kamtools import io

        return io.to_folder(self, path, format=format, overwrite=overwrite)

    def to_excel(self, path, *, overwrite: bool = False):
        """Write a workbook with one sheet per table. See :func:`kamtools.io.to_excel`."""
        from kamtools import io

        return io.to_excel(self, path, overwrite=overwrite)

    def to_sql(self, url, *, overwrite: bool = False):
        """Write one database table per table. See :func:`kamtools.io.to_sql`."""
        from kamtools import io

        return io.to_sql(self, url, overwrite=overwrite)


def _order(data: KamData) -> list[str]:
    """The names of the tables present, in memory or not, in the model's order."""
    return [n for n in schema.TABLES if n in data._tables or n in data._lazy]


class _Tables(Mapping):
    """``KamData.tables`` when some table is left in DuckDB: looking one up reads it into memory."""

    def __init__(self, data: KamData):
        self._data = data

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name in self._data._lazy:
            return self._data._in_memory(name)
        return self._data._tables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_order(self._data))

    def __len__(self) -> int:
        return len(_order(self._data))

    def __contains__(self, name) -> bool:
        return name in self._data._tables or name in self._data._lazy


def _currency(transactions: pd.DataFrame, given: str | None) -> str | None:
    if "currency" not in transactions.columns:
        return given
    values = transactions["currency"].dropna().astype("str").str.strip().str.upper().unique()
    if len(values) > 1 or (given and len(values) == 1 and values[0] != given.upper()):
        found = sorted(set(values) | ({given.upper()} if given else set()))
        fc = pd.DataFrame(
            {"table": "transactions", "column": "currency", "check": "one currency", "row": None,
             "value": found, "advice": "Convert all money to one currency before loading."}
        )
        raise SchemaError(
            f"table 'transactions', column 'currency': money must be in one currency per data set, "
            f"found {', '.join(found)}. What to do: convert all amounts to one currency before loading.",
            fc,
        )
    return values[0] if len(values) else given
