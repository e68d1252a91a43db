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

import getpass
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from kamtools import schema
from kamtools.exceptions import ParameterError, SourceError
from kamtools.schema import DTYPES, TABLES, Field, contracts_ended, normalise_header

__all__ = ["LAZY_ROWS", "ENGINES", "LazyTable"]

#: Transaction logs with more rows than this stay in DuckDB when ``engine`` is not given.
LAZY_ROWS = 5_000_000
#: The engines :func:`kamtools.load` and :func:`kamtools.compute` accept.
ENGINES = ("pandas", "duckdb")
#: DuckDB's memory budget (``SET memory_limit``); larger intermediate results spill to
#: :data:`TEMP_DIRECTORY`. Set it before loading, e.g. ``kt.lazy.MEMORY_LIMIT = "8GB"``.
MEMORY_LIMIT = "2GB"
#: DuckDB's progress bar for queries of more than two seconds: ``None`` shows it on a terminal only
#: (never inside a report's kernel, where it would end up in the report).
PROGRESS: bool | None = None
#: Where DuckDB spills; default a ``kamtools-duckdb`` folder in the system's temporary directory
#: (a read-only database's own folder may not be writable).
TEMP_DIRECTORY = None

_SQL_TYPES = {
    "id": "VARCHAR", "text": "VARCHAR", "category": "VARCHAR", "date": "TIMESTAMP", "money": "DOUBLE",
    "number": "DOUBLE", "integer": "BIGINT", "bool": "BOOLEAN",
}
_SHOWN = 5  # offending rows named per check
_FILE = "_kamtools_file"  # the column read_parquet adds with each row's file
#: Text dates with a time and an offset (2024-01-05 23:30:00-05:00): time zones are not part of the model.
_OFFSET = r"[ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
#: Answers of :meth:`LazyTable.query` kept for ``cache=True`` (each a few per cent of the lines' size).
CACHED = 4


def _on_a_terminal() -> bool:
    import sys

    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def check_engine(engine: str | None) -> str | None:
    """``None`` (the source decides), ``"pandas"`` or ``"duckdb"``; anything else is a clear error."""
    if engine is None:
        return None
    key = str(engine).strip().lower()
    if key not in ENGINES:
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
        self._names: list[str] = []  # our name of each source header, in order (duplicates included)
        self._whole: dict[str, bool] = {}  # id columns stored as floats: every value whole?
        self._cache: dict = {}  # (sql, params) -> frame, the newest last
        self._kinds: dict[str, str] = {}  # source column -> DuckDB type
        self.date_format: str | None = None

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def parquet(cls, name: str, path) -> LazyTable:
        """A Parquet file, or a folder of them, searched recursively.

        Hive partition folders such as ``year=2024/`` or ``year=2024/month=3/``
        are storage layout and their keys do not become columns, unless a key
        is a column of the table that the files lack (``product=P1/``): then
        it is read from the folder names.
        """
        path = Path(path).resolve()
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in (".parquet", ".pq")
                                                    and not p.name.startswith((".", "_")))
        if not files:
            raise SourceError(f"'{path}' holds no Parquet files; the table '{name}' needs at least one.")
        listing = "[" + ", ".join(_lit(f) for f in files) + "]"
        union = ", union_by_name=true" if len(files) > 1 else ""
        t = cls(name, "", "")
        stored = [r[0] for r in t.sql(f"DESCRIBE SELECT * FROM read_parquet({listing}, hive_partitioning=false{union})")]
        keys = {p.name.split("=", 1)[0] for f in files for p in f.relative_to(path).parents if "=" in p.name} \
            if path.is_dir() else set()
        ours = {normalise_header(c) for c in stored}
        from_path = {k for k in keys if normalise_header(k) in TABLES[name].columns and normalise_header(k) not in ours}
        numbered = "file_row_number" not in stored  # the option's column cannot be renamed
        t.source = (f"read_parquet({listing}, filename={_lit(_FILE)}, file_row_number={str(numbered).lower()}, "
                    f"hive_partitioning={str(bool(from_path)).lower()}{union})")
        t.label = f"{path.name}{'/' if path.is_dir() else ''} (Parquet, {len(files)} file{'s' if len(files) > 1 else ''})"
        base = len(str(path if path.is_dir() else path.parent)) + 2  # 1-based, after the separator
        t.row_label = (f"substr({_q(_FILE)}, {base})"
                       + (" || ', record ' || (file_row_number + 1)" if numbered else ""))
        # keys neither in the files nor read from the path (year=2024) are layout: hidden when hive is on
        t._hidden = {_FILE, *(["file_row_number"] if numbered else []),
                     *(k for k in keys - from_path if normalise_header(k) not in ours)}
        t.files, t.path_keys = files, sorted(from_path)
        return t

    @classmethod
    def duckdb(cls, name: str, database, table: str) -> LazyTable:
        """A table of a DuckDB database file (opened read-only)."""
        return cls(name, _q(table), f"{Path(database).name}, table {table}", database=database,
                   row_label="'record ' || (rowid + 1)")

    @classmethod
    def frame(cls, name: str, df: pd.DataFrame) -> LazyTable:
        """A validated pandas DataFrame queried in place by DuckDB (``engine="duckdb"`` on data in memory).

        Only the model's columns are handed over: an extra column of a type
        DuckDB does not know (a pandas Period, say) cannot get in the way.
        """
        df = df[[c for c in df.columns if c in TABLES[name].columns]]
        return cls(name, "_frame", f"{name} (in memory)", row_label="'row ' || (rowid + 1)", frame=df)

    _hidden: set = set()
    files: list = []
    path_keys: list = []

    def raw(self) -> pd.DataFrame:
        """The table as stored, untyped, for validation in pandas (records numbered from 1)."""
        if self.files:
            parts = []
            for f in self.files:
                part = pd.read_parquet(f)
                folders = {d.name.split("=", 1)[0]: d.name.split("=", 1)[1] for d in f.parents if "=" in d.name}
                parts.append(part.assign(**{k: folders.get(k) for k in self.path_keys}))
            df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        elif self._frame is not None:
            df = self._frame
        else:
            df = self.sql(f"SELECT * FROM {self.source}", fetch="df")
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
        """The DuckDB connection of this thread's session (a database file is opened read-only)."""
        con = getattr(self._local, "con", None)
        if con is None:
            import tempfile

            import duckdb

            try:
                con = duckdb.connect(self.database or ":memory:", read_only=self.database is not None)
            except duckdb.Error as err:
                raise SourceError(f"Cannot open the DuckDB database {self.label}: {err}") from err
            spill = TEMP_DIRECTORY or str(Path(tempfile.gettempdir()) / f"kamtools-duckdb-{getpass.getuser()}")
            con.execute(f"SET memory_limit = {_lit(MEMORY_LIMIT)}")
            con.execute(f"SET temp_directory = {_lit(spill)}")
            con.execute("SET preserve_insertion_order = true")
            progress = PROGRESS if PROGRESS is not None else _on_a_terminal()
            con.execute(f"SET enable_progress_bar = {str(bool(progress)).lower()}")
            if self._frame is not None:
                con.register("_frame", self._frame)
            self._local.con = con
        return con

    @contextmanager
    def session(self):
        """Keep one connection open for the queries inside; the outermost session closes it.

        Between sessions no connection stays open, so a DuckDB file is not
        kept locked while the data set is in use (a nightly export can
        replace it; load it again to see the new data).
        """
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield self.connect()
        finally:
            self._local.depth -= 1
            if self._local.depth == 0 and getattr(self._local, "con", None) is not None:
                self._local.con.close()
                self._local.con = None

    def sql(self, query: str, params=None, *, fetch: str = "all"):
        """Run ``query`` and fetch its answer: ``"all"`` rows as tuples, or a ``"df"``.

        A DuckDB error becomes a :class:`~kamtools.SourceError` naming the source.
        """
        import duckdb

        with self.session() as con:
            try:
                res = con.execute(query, params or [])
                return res.df() if fetch == "df" else res.fetchall()
            except duckdb.Error as err:
                raise SourceError(f"DuckDB could not read {self.label}: {type(err).__name__}: {err}") from err

    def raw_columns(self) -> dict[str, str]:
        """The source's columns and DuckDB types, as stored."""
        if not self._kinds:
            rows = self.sql(f"DESCRIBE SELECT * FROM {self.source}")
            self._kinds = {r[0]: r[1] for r in rows if r[0] not in self._hidden}
        return self._kinds

    # -- the typed view ------------------------------------------------------------------------
    def bind(self, columns=None, date_format: str | None = None) -> dict[str, str]:
        """Map the source's headers onto ours (case, spaces and ``columns=`` as for files).

        Returns our column -> source column, known columns first, then extra ones.
        """
        self._names = schema.header_names(self.raw_columns(), columns)
        out: dict[str, str] = {}
        for ours, raw in zip(self._names, self.raw_columns(), strict=True):
            out.setdefault(ours, raw)  # a duplicate is reported by check()
        spec = TABLES[self.name]
        known = [c for c in spec.columns if c in out]
        self._mapping = {c: out[c] for c in known} | {c: s for c, s in out.items() if c not in spec.columns}
        self.date_format = date_format
        self._cache = {}
        floats = [c for c in known if spec[c].kind in ("id", "text", "category")
                  and self.raw_columns()[out[c]] in ("DOUBLE", "FLOAT")]
        if floats:  # as pandas does: a float column of whole numbers holds ids 12, not 12.0
            q = ", ".join(f"coalesce(bool_and({_q(out[c])} = round({_q(out[c])})) FILTER (WHERE NOT isnan({_q(out[c])})), "
                          "true)" for c in floats)
            self._whole = dict(zip(floats, self.sql(f"SELECT {q} FROM {self.source}")[0], strict=True))
        return self._mapping

    @property
    def columns(self) -> list[str]:
        """Our names of the table's columns, known ones in the model's order first."""
        if self._mapping is None:
            self.bind()
        return list(self._mapping)

    def _blank(self, raw: str) -> str:
        """The column with blank text and NaN as NULL (as pandas reads them: missing)."""
        col, stored = _q(raw), self.raw_columns()[raw]
        if stored == "VARCHAR":
            return f"(CASE WHEN trim({col}) = '' THEN NULL ELSE {col} END)"
        if stored in ("DOUBLE", "FLOAT"):
            return f"(CASE WHEN isnan({col}) THEN NULL ELSE {col} END)"
        return col

    def _zoned(self, column: str) -> str | None:
        """SQL that is true for a date with a time zone (refused: the model's dates are naive), if it can be."""
        raw = self._mapping[column]
        stored = self.raw_columns()[raw]
        if "TZ" in stored or "TIME ZONE" in stored:
            return f"{_q(raw)} IS NOT NULL"
        if stored == "VARCHAR" and not self.date_format:
            return f"regexp_matches(trim({_q(raw)}), {_lit(_OFFSET)})"
        return None

    def typed(self, column: str) -> str:
        """SQL of one column cast to its kamtools type (values that cannot be cast become NULL)."""
        raw = self._mapping[column]
        spec = TABLES[self.name]
        if column not in spec.columns:
            return _q(raw)
        f = spec[column]
        value, stored = self._blank(raw), self.raw_columns()[raw]
        if f.kind == "date":
            if self._zoned(column) and stored != "VARCHAR":
                return "NULL::TIMESTAMP"
            if stored == "VARCHAR":
                if self.date_format:
                    return f"try_strptime({value}, {_lit(self.date_format)})"
                parsed = f"coalesce(TRY_CAST({value} AS TIMESTAMP), try_strptime({value}, '%Y%m%d'))"
                return f"(CASE WHEN {self._zoned(column)} THEN NULL ELSE {parsed} END)"
            if stored == "TIMESTAMP_NS":
                return value  # nanoseconds kept, as pandas keeps them
            return f"TRY_CAST({value} AS TIMESTAMP)"
        if f.kind in ("money", "number", "integer") and stored == "BOOLEAN":
            return f"NULL::{_SQL_TYPES[f.kind]}"  # refused: true is not an amount
        if f.kind in ("money", "number") and stored == "VARCHAR":
            num = f"TRY_CAST({value} AS DOUBLE)"
            return f"(CASE WHEN isnan({num}) THEN NULL ELSE {num} END)"  # the text 'NaN' is not a number
        if f.kind in ("id", "text", "category") and stored in ("DOUBLE", "FLOAT"):
            if self._whole.get(column, False):
                return f"CAST(TRY_CAST({value} AS BIGINT) AS VARCHAR)"
            return f"CAST({value} AS VARCHAR)"
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
        out = _pandas(self.sql(f"WITH t AS {self.view()} {sql}", params, fetch="df"), self.name)
        if cache:
            self._cache[key] = out
            while len(self._cache) > CACHED:
                self._cache.pop(next(iter(self._cache)))
        return out

    def count(self) -> int:
        """Number of rows (from the Parquet footers or the table's statistics: quick)."""
        return int(self.sql(f"SELECT count(*) FROM {self.source}")[0][0])

    def to_pandas(self, where: str = "", params=None) -> pd.DataFrame:
        """The table in memory (optionally only the rows of ``where``), typed like a validated table."""
        return self.query(f"SELECT * FROM t {('WHERE ' + where) if where else ''}", params)

    def batches(self, rows: int = 1_000_000):
        """The whole table as typed DataFrames of about ``rows`` rows each, in source order."""
        view = self.view()
        with self.session() as con:
            cur = con.cursor()  # its own connection: other queries may run meanwhile
            if self._frame is not None:
                cur.register("_frame", self._frame)
            try:
                res = cur.execute(f"SELECT * FROM {view}")
                while True:
                    chunk = res.fetch_df_chunk(max(1, rows // 2048))  # DuckDB hands out vectors of 2,048 rows
                    if not len(chunk):
                        return
                    yield _pandas(chunk, self.name)
            finally:
                cur.close()

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
        with self.session():  # one connection: the ids referred to are registered in it
            return self._check(problems, typed, columns, date_format)

    def _check(self, problems, typed, columns, date_format) -> bool:
        self.bind(columns, date_format)
        spec = TABLES[self.name]
        unique = schema.report_duplicate_headers(self.name, self._names, problems)
        if not (schema.report_missing_headers(self.name, self.columns, problems) and unique):
            return False
        ok = True
        if self.count() == 0:
            problems.add(self.name, None, "empty table")
            return False
        checks = []  # (field, check, SQL condition, SQL of the value shown, detail)
        for f in spec.fields:
            if f.name not in self._mapping:
                continue
            raw = self._mapping[f.name]
            stored, cast = self.raw_columns()[raw], self.typed(f.name)
            zoned = self._zoned(f.name) if f.kind == "date" else None
            if zoned:
                checks.append((f, "timezone-aware date", zoned, _q(raw), ""))
            if not _native(f.kind, stored):
                failed = f"{self._blank(raw)} IS NOT NULL AND {cast} IS NULL" + (f" AND NOT ({zoned})" if zoned else "")
                checks.append((f, _CAST_CHECK[f.kind], failed, _q(raw), ""))
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
                              + f" FROM {self.source}")[0]
            for (f, check, cond, shown, detail), n in zip(checks, counts, strict=True):
                if n:
                    rows = self.sql(f"SELECT {self.row_label}, {shown}::VARCHAR FROM {self.source} WHERE {cond} "
                                    f"LIMIT {_SHOWN}")
                    more = f"{n:,} rows in all" if n > len(rows) else ""
                    problems.add(self.name, f.name, check, [r[0] for r in rows], [r[1] for r in rows],
                                 detail="; ".join(x for x in (detail, more) if x))
                    ok = False
        for column, target in spec.references:
            if column in self._mapping and target in typed:
                con.unregister(f"_known_{target}")
        return ok

    def warn_suspicious(self, tell, typed: dict[str, pd.DataFrame] | None = None):
        """Count the legal but suspicious rows in SQL and ``tell(kind, **counts)`` of them.

        The kinds and their wording are :func:`kamtools.schema.validate`'s:
        exact duplicate lines, credit notes, lines without a cost, and lines
        dated after the account's last contract ended (``typed`` holds the
        tables in memory, contracts among them).
        """
        if self.name != "transactions":
            return
        with self.session() as con:
            neg, total, uncosted, uncosted_rev, rows = self.query(
                "SELECT count(*) FILTER (WHERE revenue < 0), sum(revenue) FILTER (WHERE revenue < 0), "
                + ("count(*) FILTER (WHERE cost IS NULL), sum(revenue) FILTER (WHERE cost IS NULL), "
                   if "cost" in self._mapping else "0, 0, ") + "count(*) FROM t").iloc[0]
            dup = self._duplicated()
            if dup:
                tell("duplicates", table=self.name, n=dup)
            if neg:
                tell("credit_notes", n=int(neg), total=total)
            if uncosted and uncosted < rows:
                tell("uncosted", n=int(uncosted), revenue=uncosted_rev)
            ended = contracts_ended((typed or {}).get("contracts"))
            if ended is not None and len(ended):
                con.register("_ended", ended.assign(account_id=ended["account_id"].astype("object")))
                n, accounts = self.query("SELECT count(*), count(DISTINCT t.account_id) FROM t JOIN _ended e "
                                         "ON t.account_id = e.account_id WHERE t.date > e.last_end").iloc[0]
                con.unregister("_ended")
                if n:
                    tell("after_contract", n=int(n), accounts=int(accounts))

    def _duplicated(self) -> int:
        """Rows that repeat another row exactly (as stored: the typed view would triple the time).

        Distinct hashes first (7 s for 100 million lines); only where some
        repeat are those rows compared in full.
        """
        cols = ", ".join(_q(self._mapping[c]) for c in self.columns)
        n, = self.sql(f"SELECT count(*) - count(DISTINCT hash({cols})) FROM {self.source}")[0]
        if not n:
            return 0
        return int(self.sql(
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {self.source} WHERE hash({cols}) IN "
            f"(SELECT hash({cols}) FROM {self.source} GROUP BY 1 HAVING count(*) > 1) GROUP BY {cols} "
            "HAVING count(*) > 1)")[0][0])

    def has_values(self, column: str) -> bool:
        """The column exists and holds at least one value."""
        if column not in self.columns:
            return False
        return bool(self.query(f"SELECT count({_q(column)}) AS n FROM t")["n"].iloc[0])

    # -- description -----------------------------------------------------------------------------
    def span(self, column: str) -> tuple[int, pd.Timestamp | None, pd.Timestamp | None]:
        """Rows, and the first and last value of a date column."""
        n, lo, hi = self.query(f"SELECT count(*) AS n, min({_q(column)}) AS lo, max({_q(column)}) AS hi FROM t").iloc[0]
        return int(n), (None if pd.isna(lo) else pd.Timestamp(lo)), (None if pd.isna(hi) else pd.Timestamp(hi))


def _native(kind: str, stored: str) -> bool:
    """The stored DuckDB type holds the kind's values already: no value can fail the cast."""
    stored = stored.upper()
    if kind == "date":
        return stored in ("DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")  # zoned: checked apart
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
        dtype = DTYPES[spec[c].kind] if c in spec.columns else ("str" if s.dtype == object else None)
        if dtype == "str":  # DuckDB hands text with missing values over as objects
            s = s.astype("str").where(s.notna(), None).astype("str")
        elif dtype is not None:
            s = s.astype(dtype)
        elif pd.api.types.is_integer_dtype(s) and not isinstance(s.dtype, np.dtype):
            s = s.astype("float64")
        out[c] = s
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)))
