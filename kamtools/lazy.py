"""Tables kept in DuckDB: a Parquet lake or a DuckDB file, read lazily.

A transaction log of hundreds of millions of invoice lines does not fit in a
pandas DataFrame. :func:`kamtools.load` therefore leaves a large
``transactions`` table where it is, as a :class:`LazyTable`: DuckDB checks it
against the data model in SQL, and :func:`kamtools.compute` asks it for sums by
account, product and period, so only the aggregate reaches pandas. The other
tables (accounts, surveys, ...) are small and are read into memory as usual.

Which engine a source gets is decided by its size (:data:`LAZY_ROWS`) unless
``engine=`` says otherwise.

Examples
--------
>>> import kamtools as kt, tempfile, warnings
>>> lake = kt.sample.load().to_folder(tempfile.mkdtemp(), format="parquet")
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore")            # the sample's credit notes
...     data = kt.load(lake, engine="duckdb")
>>> data.engine, data.lazy["transactions"]
('duckdb', LazyTable('transactions', transactions.parquet (Parquet, 1 file)))
>>> year = kt.compute(data, ["revenue"], by="portfolio", period="Y")
>>> year["value"].round(0).tolist()              # the same sums as on the lines in memory
[94896438.0, 95478466.0, 97667995.0, 106412489.0, 98503590.0]
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd

from kamtools.exceptions import SourceError
from kamtools.schema import DTYPES, TABLES, Field, normalise_header

__all__ = ["LAZY_ROWS", "ENGINES", "LazyTable"]

#: Transaction logs with more rows than this stay in DuckDB when ``engine`` is not given.
LAZY_ROWS = 5_000_000
#: The engines :func:`kamtools.load` and :func:`kamtools.compute` accept.
ENGINES = ("pandas", "duckdb")
#: DuckDB's memory budget (``SET memory_limit``); larger intermediate results spill to
#: :data:`TEMP_DIRECTORY`. Set it before loading, e.g. ``kt.lazy.MEMORY_LIMIT = "8GB"``.
MEMORY_LIMIT = "2GB"
#: Where DuckDB spills; default a ``kamtools-duckdb`` folder in the system's temporary directory
#: (a read-only database's own folder may not be writable).
TEMP_DIRECTORY = None

_SQL_TYPES = {
    "id": "VARCHAR", "text": "VARCHAR", "category": "VARCHAR", "date": "TIMESTAMP", "money": "DOUBLE",
    "number": "DOUBLE", "integer": "BIGINT", "bool": "BOOLEAN",
}
_SHOWN = 5  # offending rows named per check
#: Answers of :meth:`LazyTable.query` kept for ``cache=True`` (each a few per cent of the lines' size).
CACHED = 4


def check_engine(engine: str | None) -> str | None:
    """``None`` (the source decides), ``"pandas"`` or ``"duckdb"``; anything else is a clear error."""
    if engine is None:
        return None
    key = str(engine).strip().lower()
    if key not in ENGINES:
        from kamtools.exceptions import ParameterError

        raise ParameterError(f"engine={engine!r}: use 'pandas' (in memory), 'duckdb' (pushed down) or None "
                             "(the source decides by its size).")
    return key


def _q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _lit(value) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


class LazyTable:
    """One kamtools table left in DuckDB, typed and checked in SQL.

    Build one with :meth:`parquet`, :meth:`duckdb` or :meth:`frame`;
    :func:`kamtools.load` does it for you.

    Parameters
    ----------
    name : str
        The kamtools table, e.g. ``"transactions"``.
    source : str
        A DuckDB table expression (``read_parquet([...])``, a table name).
    label : str
        How messages name the source, e.g. ``"transactions/ (Parquet, 12 files)"``.
    database : path, optional
        A DuckDB file to open read-only; default an in-memory database.
    row_label : str
        SQL giving each row's place in the source, for error messages.
    frame : DataFrame, optional
        A pandas frame the source refers to (registered as ``_frame``).
    """

    def __init__(self, name: str, source: str, label: str, *, database=None, row_label: str = "rowid + 1",
                 frame: pd.DataFrame | None = None):
        self.name = name
        self.source = source
        self.label = label
        self.database = None if database is None else str(database)
        self.row_label = row_label
        self._frame = frame
        self._local = threading.local()
        self._mapping: dict[str, str] | None = None  # our column -> source column
        self._cache: dict = {}  # (sql, params) -> frame, the newest last
        self._kinds: dict[str, str] = {}  # source column -> DuckDB type
        self.date_format: str | None = None

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def parquet(cls, name: str, path) -> LazyTable:
        """A Parquet file, or a folder of them, searched recursively.

        Hive partition folders such as ``year=2024/`` or ``year=2024/month=3/``
        are storage layout: their keys do not become columns of the table.
        """
        path = Path(path)
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in (".parquet", ".pq")
                                                    and not p.name.startswith((".", "_")))
        if not files:
            raise SourceError(f"'{path}' holds no Parquet files; the table '{name}' needs at least one.")
        # hive partitions (year=2024/) are storage layout, not data: they are read to prune files only
        parts = {p.name.split("=", 1)[0] for f in files for p in f.relative_to(path).parents if "=" in p.name} \
            if path.is_dir() else set()
        hive = bool(parts)
        listing = "[" + ", ".join(_lit(f) for f in files) + "]"
        base = path if path.is_dir() else path.parent
        source = (f"read_parquet({listing}, filename=true, file_row_number=true, hive_partitioning={str(hive).lower()}"
                  + (", union_by_name=true" if len(files) > 1 else "") + ")")
        label = f"{path.name}{'/' if path.is_dir() else ''} (Parquet, {len(files)} file{'s' if len(files) > 1 else ''})"
        prefix = len(str(base)) + 1
        t = cls(name, source, label, row_label=f"substr(filename, {prefix + 1}) || ', record ' || (file_row_number + 1)")
        t._hidden = {"filename", "file_row_number", *parts}
        t.files = files
        return t

    @classmethod
    def duckdb(cls, name: str, database, table: str) -> LazyTable:
        """A table of a DuckDB database file (opened read-only)."""
        return cls(name, _q(table), f"{Path(database).name}, table {table}", database=database,
                   row_label="'record ' || (rowid + 1)")

    @classmethod
    def frame(cls, name: str, df: pd.DataFrame) -> LazyTable:
        """A pandas DataFrame queried in place by DuckDB (``engine="duckdb"`` on in-memory data)."""
        return cls(name, "_frame", f"{name} (in memory)", row_label="'row ' || (rowid + 1)", frame=df)

    _hidden: set = set()
    files: list = []

    def raw(self) -> pd.DataFrame:
        """The table as stored, untyped, for validation in pandas (records numbered from 1)."""
        if self.files:
            parts = [pd.read_parquet(f) for f in self.files]
            df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        elif self._frame is not None:
            df = self._frame
        else:
            df = self.sql(f"SELECT * FROM {self.source}").df()
        return df.set_axis(pd.RangeIndex(1, len(df) + 1))

    def __getstate__(self):  # a connection does not travel: the next query opens one (worker processes)
        state = self.__dict__.copy()
        del state["_local"]
        state["_cache"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    # -- running SQL ---------------------------------------------------------------------------
    def connect(self):
        """A DuckDB connection for this thread (the database file read-only)."""
        con = getattr(self._local, "con", None)
        if con is None:
            import duckdb

            try:
                con = duckdb.connect(self.database or ":memory:", read_only=self.database is not None)
            except duckdb.Error as err:
                raise SourceError(f"Cannot open the DuckDB database {self.label}: {err}") from err
            import tempfile

            spill = TEMP_DIRECTORY or str(Path(tempfile.gettempdir()) / "kamtools-duckdb")
            con.execute(f"SET memory_limit = {_lit(MEMORY_LIMIT)}")
            con.execute(f"SET temp_directory = {_lit(spill)}")
            con.execute("SET preserve_insertion_order = true")
            if self._frame is not None:
                con.register("_frame", self._frame)
            self._local.con = con
        return con

    def sql(self, query: str, params=None):
        """Run ``query`` and return the DuckDB result; a DuckDB error names the source."""
        import duckdb

        try:
            return self.connect().execute(query, params or [])
        except duckdb.Error as err:
            raise SourceError(f"DuckDB could not read {self.label}: {type(err).__name__}: {err}") from err

    def raw_columns(self) -> dict[str, str]:
        """The source's columns and DuckDB types, as stored."""
        if not self._kinds:
            rows = self.sql(f"DESCRIBE SELECT * FROM {self.source}").fetchall()
            self._kinds = {r[0]: r[1] for r in rows if r[0] not in self._hidden}
        return self._kinds

    # -- the typed view ------------------------------------------------------------------------
    def bind(self, columns=None, date_format: str | None = None) -> dict[str, str]:
        """Map the source's headers onto ours (case, spaces and ``columns=`` as for files).

        Returns our column -> source column, known columns first, then extra ones.
        """
        mapping = {normalise_header(k): normalise_header(v) for k, v in (columns or {}).items()}
        out: dict[str, str] = {}
        for raw in self.raw_columns():
            ours = mapping.get(normalise_header(raw), normalise_header(raw))
            out.setdefault(ours, raw)
        spec = TABLES[self.name]
        known = [c for c in spec.columns if c in out]
        self._mapping = {c: out[c] for c in known} | {c: s for c, s in out.items() if c not in spec.columns}
        self.date_format = date_format
        self._cache = {}
        return self._mapping

    @property
    def columns(self) -> list[str]:
        """Our names of the table's columns, known ones in the model's order first."""
        if self._mapping is None:
            self.bind()
        return list(self._mapping)

    def _blank(self, raw: str) -> str:
        """The column with blank text as NULL (as a CSV's empty cells)."""
        col = _q(raw)
        return f"(CASE WHEN trim({col}) = '' THEN NULL ELSE {col} END)" if self.raw_columns()[raw] == "VARCHAR" else col

    def typed(self, column: str) -> str:
        """SQL of one column cast to its kamtools type (values that cannot be cast become NULL)."""
        raw = self._mapping[column]
        spec = TABLES[self.name]
        if column not in spec.columns:
            return _q(raw)
        f = spec[column]
        value, stored = self._blank(raw), self.raw_columns()[raw]
        if f.kind == "date" and stored == "VARCHAR" and self.date_format:
            return f"try_strptime({value}, {_lit(self.date_format)})"
        if f.kind == "date" and stored.startswith("TIMESTAMP WITH"):
            return "NULL::TIMESTAMP"  # refused by validation: time zones are not part of the model
        if f.kind in ("id", "text", "category") and stored in ("DOUBLE", "FLOAT"):
            value = f"CASE WHEN {value} = round({value}) THEN CAST({value} AS BIGINT)::VARCHAR ELSE {value}::VARCHAR END"
            return value
        return f"TRY_CAST({value} AS {_SQL_TYPES[f.kind]})"

    def view(self) -> str:
        """A SQL subquery of the table with our column names and types."""
        if self._mapping is None:
            self.bind()
        cols = ", ".join(f"{self.typed(c)} AS {_q(c)}" for c in self._mapping)
        return f"(SELECT {cols} FROM {self.source})"

    # -- reading ---------------------------------------------------------------------------------
    def query(self, sql: str, params=None, *, cache: bool = False) -> pd.DataFrame:
        """Run ``sql``, in which ``t`` is the typed table, and return a DataFrame with kamtools dtypes.

        With ``cache``, the last :data:`CACHED` answers are kept and handed out
        again for the same query (the files are not re-read): widgets and
        reports ask for the same sums many times. Treat the frame as read-only.
        """
        key = (sql, repr(params))
        if cache and key in self._cache:
            self._cache[key] = self._cache.pop(key)  # the most recently used last
            return self._cache[key]
        out = _pandas(self.sql(f"WITH t AS {self.view()} {sql}", params).df(), self.name)
        if cache:
            self._cache[key] = out
            while len(self._cache) > CACHED:
                self._cache.pop(next(iter(self._cache)))
        return out

    def count(self) -> int:
        """Number of rows (from the Parquet footers or the table's statistics: quick)."""
        return int(self.sql(f"SELECT count(*) FROM {self.source}").fetchall()[0][0])

    def to_pandas(self, where: str = "", params=None) -> pd.DataFrame:
        """The table in memory (optionally only the rows of ``where``), typed like a validated table."""
        return self.query(f"SELECT * FROM t {('WHERE ' + where) if where else ''}", params)

    def batches(self, rows: int = 1_000_000):
        """The whole table as typed DataFrames of about ``rows`` rows each, in source order."""
        cur = self.connect().cursor()  # its own connection: other queries may run meanwhile
        if self._frame is not None:
            cur.register("_frame", self._frame)
        res = cur.execute(f"SELECT * FROM {self.view()}")
        while True:
            chunk = res.fetch_df_chunk(max(1, rows // 2048))  # DuckDB hands out vectors of 2,048 rows
            if not len(chunk):
                return
            yield _pandas(chunk, self.name)

    def __repr__(self) -> str:
        return f"LazyTable({self.name!r}, {self.label})"

    # -- validation in SQL -----------------------------------------------------------------------
    def check(self, problems, typed: dict[str, pd.DataFrame], columns=None, date_format=None) -> bool:
        """Check the table against the data model in SQL, adding what is wrong to ``problems``.

        The same checks as for a table in memory: required columns, values
        that are not of the column's type, missing values, allowed values and
        ranges, and ids missing from the table they refer to. Each check names
        how many rows fail and the first ones, by file and record.
        """
        self.bind(columns, date_format)
        spec = TABLES[self.name]
        ok = True
        missing = [c for c in spec.required_columns if c not in self._mapping]
        for c in missing:
            import difflib

            close = difflib.get_close_matches(c, self.columns, n=1, cutoff=0.6)
            detail = f"the table has {', '.join(self.columns) or 'no columns'}"
            problems.add(self.name, c, "missing column", detail=detail + (f"; did you mean '{close[0]}'?" if close else ""))
            ok = False
        if not ok:
            return False
        if self.count() == 0:
            problems.add(self.name, None, "empty table")
            return False
        checks = []  # (field, check, SQL condition, SQL of the value shown, detail)
        for f in spec.fields:
            if f.name not in self._mapping:
                continue
            raw = self._mapping[f.name]
            stored, cast = self.raw_columns()[raw], self.typed(f.name)
            if stored.startswith("TIMESTAMP WITH") and f.kind == "date":
                checks.append((f, "timezone-aware date", f"{_q(raw)} IS NOT NULL", _q(raw), ""))
                continue
            if not _native(f.kind, stored):
                checks.append((f, _CAST_CHECK[f.kind], f"{self._blank(raw)} IS NOT NULL AND {cast} IS NULL", _q(raw), ""))
            checks += [(f, check, cond, cast, detail) for check, cond, detail in _value_checks(f, cast, self._blank(raw))]
        con = self.connect()
        for column, target in spec.references:
            if column in self._mapping and target in typed:
                key = typed[target][TABLES[target].key].astype("object").to_numpy()
                con.register(f"_known_{target}", pd.DataFrame({"k": key}))
                cast = self.typed(column)
                checks.append((spec[column], "unknown reference", f"{cast} IS NOT NULL AND {cast} NOT IN "
                               f"(SELECT k FROM _known_{target})", cast, f"not in {target}.{TABLES[target].key}"))
        if checks:  # one scan counts every check; the first offending rows only where some fail
            counts = self.sql("SELECT " + ", ".join(f"count(*) FILTER (WHERE {c[2]})" for c in checks)
                              + f" FROM {self.source}").fetchall()[0]
            for (f, check, cond, shown, detail), n in zip(checks, counts, strict=True):
                if n:
                    rows = self.sql(f"SELECT {self.row_label}, {shown}::VARCHAR FROM {self.source} WHERE {cond} "
                                    f"LIMIT {_SHOWN}").fetchall()
                    more = f"{n:,} rows in all" if n > len(rows) else ""
                    problems.add(self.name, f.name, check, [r[0] for r in rows], [r[1] for r in rows],
                                 detail="; ".join(x for x in (detail, more) if x))
                    ok = False
        for column, target in spec.references:
            if column in self._mapping and target in typed:
                con.unregister(f"_known_{target}")
        return ok

    def warn_suspicious(self, warn):
        """Call ``warn(message)`` for legal but suspicious rows, as for a table in memory."""
        if self.name != "transactions":
            return
        neg, total = self.query("SELECT count(*) AS n, sum(revenue) AS s FROM t WHERE revenue < 0").iloc[0]
        if neg:
            warn(f"transactions: {int(neg)} row(s) have negative revenue (credit notes) totalling {total:,.2f}; "
                 "they are netted into revenue.")
        if "cost" in self._mapping:
            n, rev, allrows = self.query(
                "SELECT count(*) FILTER (WHERE cost IS NULL) AS n, sum(revenue) FILTER (WHERE cost IS NULL) AS s, "
                "count(*) AS a FROM t").iloc[0]
            if n and n < allrows:
                warn(f"transactions: {int(n)} row(s) have no cost (revenue {rev:,.2f}); margin KPIs leave them out.")

    # -- description -----------------------------------------------------------------------------
    def span(self, column: str) -> tuple[int, pd.Timestamp | None, pd.Timestamp | None]:
        """Rows, and the first and last value of a date column."""
        n, lo, hi = self.query(f"SELECT count(*) AS n, min({_q(column)}) AS lo, max({_q(column)}) AS hi FROM t").iloc[0]
        return int(n), (None if pd.isna(lo) else pd.Timestamp(lo)), (None if pd.isna(hi) else pd.Timestamp(hi))


def _native(kind: str, stored: str) -> bool:
    """The stored DuckDB type holds the kind's values already: no value can fail the cast."""
    stored = stored.upper()
    if kind == "date":
        return stored in ("DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")
    if kind in ("money", "number"):
        return stored in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT") or stored.startswith("DECIMAL")
    if kind in ("id", "text", "category"):
        return stored == "VARCHAR" or stored.endswith("INT") or stored == "INTEGER"
    return False


_CAST_CHECK = {"id": "not text", "text": "not text", "category": "not text", "date": "unparseable date",
               "money": "not a number", "number": "not a number", "integer": "not a whole number",
               "bool": "not true/false"}


def _value_checks(f: Field, cast: str, value: str):
    """(check, SQL condition, detail) for missing values, allowed values and ranges.

    A value that is there but cannot be cast is reported once, by the cast check.
    """
    if not f.nullable:
        yield "missing value", f"{value} IS NULL", ""
    if f.allowed:
        allowed = ", ".join(_lit(a) for a in f.allowed)
        yield "not allowed", f"{cast} IS NOT NULL AND {cast} NOT IN ({allowed})", f"allowed: {', '.join(f.allowed)}"
    if f.min is not None or f.max is not None:
        lo = f"{cast} < {f.min}" if f.min is not None else "false"
        hi = f"{cast} > {f.max}" if f.max is not None else "false"
        rng = (f"between {f.min:g} and {f.max:g}" if f.min is not None and f.max is not None
               else f">= {f.min:g}" if f.min is not None else f"<= {f.max:g}")
        yield "out of range", f"({lo} OR {hi})", rng


def _pandas(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Give columns read from DuckDB the dtypes validated tables have."""
    spec = TABLES[table]
    out = {}
    for c in df.columns:
        s = df[c]
        if c in spec.columns:
            dtype = DTYPES[spec[c].kind]
            if dtype == "str":
                s = s.astype("str").where(s.notna(), None).astype("str")
            elif dtype == "Int64":
                s = s.astype("Int64")
            else:
                s = s.astype(dtype)
        elif pd.api.types.is_datetime64_any_dtype(s):
            s = s.astype("datetime64[ns]")
        elif s.dtype == object:
            s = s.astype("str").where(s.notna(), None).astype("str")
        elif pd.api.types.is_integer_dtype(s) and not isinstance(s.dtype, np.dtype):
            s = s.astype("float64")
        out[c] = s
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)))
