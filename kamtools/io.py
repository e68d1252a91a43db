"""Reading and writing KAM data sets: folders of files, workbooks, databases.

:func:`load` is the way in. It reads every table it finds, hands them to
:class:`~kamtools.KamData` (which validates them) and says exactly which file,
table, column and rows are wrong when something is. The ``to_*`` functions are
the way out; every file they write appears at its final path complete or not at
all (written to a temporary file first, then renamed).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from kamtools.data import KamData
from kamtools.exceptions import ParameterError, SchemaError, SourceError
from kamtools.lazy import LAZY_ROWS, LazyTable, check_engine
from kamtools.schema import TABLES, normalise_header

__all__ = ["load", "to_folder", "to_excel", "to_sql"]

FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel", ".xlsm": "excel"}
DB_SUFFIXES = {".duckdb": "duckdb", ".ddb": "duckdb", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".db": None}
META_NAME = "_kamtools"  # file kamtools.json, sheet / table _kamtools: data-set metadata (currency)
EXCEL_MAX_ROWS = 1_048_575
#: Tables that may stay in DuckDB when large (see :mod:`kamtools.lazy`).
LAZY_TABLES = ("transactions",)


def load(
    source,
    *,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    currency: str | None = None,
    date_format: str | None = None,
    encoding: str = "utf-8",
    ignore_unknown: bool = False,
    engine: str | None = None,
) -> KamData:
    """Load and validate a KAM data set.

    Parameters
    ----------
    source : path, URL, mapping of DataFrames, or KamData
        Where the tables are:

        - a folder of ``.csv``, ``.parquet`` or ``.xlsx`` files named after the
          tables (``accounts.csv``, ``transactions.parquet``, ...); the
          tables may also be sub-folders of Parquet files
          (``transactions/year=2024/part-0.parquet``, hive partitions or not);
        - one ``.xlsx`` workbook with a sheet per table;
        - a DuckDB or SQLite database file, or a SQLAlchemy URL
          (``postgresql://user@host/db``; ``duckdb:///file.duckdb`` and
          ``sqlite:///file.db`` also work), with tables named after ours;
        - a mapping ``{"accounts": df, "transactions": df, ...}``.
    columns : mapping, optional
        Per table, your headers mapped onto ours:
        ``columns={"transactions": {"Invoice Date": "date", "Net": "revenue"}}``.
        Header case and surrounding white space do not matter.
    currency : str, optional
        ISO code of the data set's currency. Read from the source's metadata or
        a ``currency`` column of transactions when those exist.
    date_format : str, optional
        strftime format of text dates, e.g. ``"%d/%m/%Y"``. Default ISO 8601.
    encoding : str
        Text encoding of CSV files. A UTF-8 byte-order mark is accepted.
    ignore_unknown : bool
        Skip files or sheets whose name is not a kamtools table instead of
        reporting them as an error (database tables with other names are
        always skipped).
    engine : {None, "pandas", "duckdb"}
        Where the transactions are kept. ``None`` lets the source decide: a
        Parquet or DuckDB transaction log of more than :data:`~kamtools.lazy.LAZY_ROWS`
        rows stays in DuckDB (checked there, summed there by
        :func:`kamtools.compute`); anything smaller, and every CSV, Excel or
        SQL source, is read into memory. ``"duckdb"`` keeps a Parquet or
        DuckDB log in DuckDB whatever its size; ``"pandas"`` reads it into memory.

    Returns
    -------
    KamData

    Raises
    ------
    SourceError
        The source does not exist or is of an unknown kind.
    SchemaError
        The data breaks the data model; the message lists every problem, with
        the file and its row numbers (as a spreadsheet shows them: the header
        is row 1), and ``failure_cases`` holds them as a DataFrame.

    Examples
    --------
    >>> import kamtools as kt
    >>> data = kt.load("data/sample")
    >>> data.summary().accounts
    200
    >>> data.transactions.columns.tolist()
    ['account_id', 'date', 'product', 'quantity', 'revenue', 'cost']
    """
    engine = check_engine(engine)
    if isinstance(source, KamData):
        return source
    if isinstance(source, Mapping):
        if engine == "duckdb":
            raise NotLazyError(_NOT_LAZY.format(what="a mapping of DataFrames"))
        return KamData(source, currency=currency, columns=columns, date_format=date_format)
    tables, sources, meta = _read(source, encoding=encoding, ignore_unknown=ignore_unknown)
    given = meta.get("currency")
    if currency and given and currency.upper() != str(given).upper():
        raise SourceError(
            f"{source}: the data set says its currency is {given}, but currency={currency!r} was passed. "
            "Convert the money first, or drop the currency argument."
        )
    lazy = {n: t for n, t in tables.items() if isinstance(t, LazyTable)}
    if engine == "duckdb" and not lazy and "transactions" in tables:  # without any, validation says it is missing
        raise NotLazyError(_NOT_LAZY.format(what=f"the transactions of {sources.get('transactions', source)}"))
    for name, table in list(lazy.items()):
        if engine == "pandas" or (engine is None and table.count() <= LAZY_ROWS):
            tables[name] = table.raw()  # small enough: into memory, validated like any file
            del lazy[name]
    tables = {n: t for n, t in tables.items() if n not in lazy}
    return KamData(tables, currency=currency or given, columns=columns, sources=sources, date_format=date_format,
                   lazy=lazy)


class NotLazyError(ParameterError):
    """``engine="duckdb"`` for a source whose transactions cannot stay in DuckDB (CSV, Excel, SQL, DataFrames)."""


_NOT_LAZY = (
    "engine='duckdb' keeps transactions in Parquet files or a DuckDB database where they are; {what} "
    "cannot stay there. Write them as Parquet first, e.g. kt.load(...).to_folder(path, format='parquet'), "
    "or leave engine=None."
)


# --------------------------------------------------------------------------- reading


def _read(source, *, encoding, ignore_unknown):
    """Return raw tables, their source labels, and metadata."""
    text = str(source)
    if "://" in text:
        return _read_url(text)
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(
            f"No such file or folder: '{path}'. Pass a folder of CSV/Parquet/Excel files, an .xlsx "
            "workbook, a .duckdb/.sqlite file, or a database URL."
        )
    if path.is_dir():
        return _read_folder(path, encoding=encoding, ignore_unknown=ignore_unknown)
    suffix = path.suffix.lower()
    if FILE_FORMATS.get(suffix) == "excel":
        return _read_workbook(path, ignore_unknown=ignore_unknown)
    kind = _database_kind(path)
    if kind == "duckdb":
        return _read_duckdb(path)
    if kind == "sqlite":
        return _read_sqlalchemy(f"sqlite:///{path}", label=path.name)
    raise SourceError(
        f"'{path}' is not a kind of source kamtools reads. Pass a folder of CSV/Parquet/Excel files, "
        "an .xlsx workbook, a DuckDB or SQLite file, or a database URL."
    )


def _database_kind(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"SQLite format 3"):
        return "sqlite"
    if head[8:12] == b"DUCK":
        return "duckdb"
    return None


def _problem(table, check, advice, *, source=None, column=None, row=None, value=None):
    fc = pd.DataFrame(
        [{"table": table, "column": column, "check": check, "row": row, "value": value, "advice": advice}],
        columns=SchemaError.COLUMNS,
    )
    where = f"table '{table}'" + (f" ({source})" if source else "") + (f", column '{column}'" if column else "")
    at = f" at file row {row}" if row is not None else ""
    return SchemaError(f"{where}: {check}{at}.\n    What to do: {advice}", fc)


def _read_folder(path: Path, *, encoding, ignore_unknown):
    found: dict[str, list[Path]] = {}
    for f in sorted(path.iterdir()):
        if f.is_dir():  # a folder of Parquet files named after a table; other folders are not ours
            if normalise_header(f.name) in TABLES:
                found.setdefault(normalise_header(f.name), []).append(f)
            continue
        fmt = FILE_FORMATS.get(f.suffix.lower())
        if fmt is None or f.name.startswith((".", "~$")):
            continue
        found.setdefault(normalise_header(f.stem), []).append(f)
    for name, files in found.items():
        if len(files) > 1:
            raise _problem(
                name, "more than one file for the table: " + ", ".join(f.name for f in files),
                "Keep one file per table in the folder.", source=str(path),
            )
    tables, sources = {}, {}
    for name, (f,) in found.items():
        if ignore_unknown and name not in TABLES:
            continue
        fmt = "parquet" if f.is_dir() else FILE_FORMATS[f.suffix.lower()]
        if fmt == "parquet" and (name in LAZY_TABLES or f.is_dir()):
            table = LazyTable.parquet(name, f)  # transactions may stay in DuckDB; other tables are read now
            tables[name], sources[name] = (table, table.label) if name in LAZY_TABLES else (table.raw(), table.label)
            continue
        if fmt == "csv":
            df = _read_csv(f, name, encoding)
        elif fmt == "parquet":
            df = pd.read_parquet(f)
            df.index = pd.RangeIndex(1, len(df) + 1)
        else:
            df = _read_excel_sheet(f, 0, name)
        tables[name], sources[name] = df, f.name
    meta_file = path / "kamtools.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    if not tables:
        raise SourceError(
            f"The folder '{path}' holds no CSV, Parquet or Excel files. It needs at least "
            "accounts.csv and transactions.csv (or .parquet / .xlsx)."
        )
    return tables, sources, meta


def _read_csv(f: Path, table: str, encoding: str) -> pd.DataFrame:
    raw = f.read_bytes()
    if not raw.strip():
        raise _problem(table, "the file is empty", "Export the table again, with a header row.", source=f.name)
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise _problem(
            table, f"the file is not valid {encoding} (byte {raw[err.start]:#04x})",
            "Save the file as UTF-8, or pass its encoding, e.g. kamtools.load(..., encoding='cp1252').",
            source=f.name, row=line, value=repr(raw[max(0, err.start - 10): err.start + 10]),
        ) from err
    import io as _io

    try:
        df = pd.read_csv(_io.StringIO(text), dtype="str", keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as err:
        raise _problem(
            table, f"the file is not a well-formed CSV ({err})",
            "Check the delimiter (kamtools reads commas) and the quoting of text with commas.",
            source=f.name,
        ) from err
    df.index = pd.RangeIndex(2, len(df) + 2)  # spreadsheet row numbers: the header is row 1
    return df


def _read_excel_sheet(f: Path, sheet, table: str) -> pd.DataFrame:
    try:
        df = pd.read_excel(f, sheet_name=sheet, dtype=object)
    except ValueError as err:  # an empty sheet has no header
        raise _problem(table, f"the sheet is empty ({err})", "Add a header row and data.", source=f.name) from err
    df.index = pd.RangeIndex(2, len(df) + 2)
    return df


def _read_workbook(path: Path, *, ignore_unknown):
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True)
        sheets = list(wb.sheetnames)
        wb.close()
    except Exception as err:  # openpyxl raises several kinds for a broken file
        raise SourceError(f"'{path}' cannot be read as an Excel workbook: {err}") from err
    tables, sources, meta = {}, {}, {}
    for sheet in sheets:
        name = normalise_header(sheet)
        if name == META_NAME:
            m = pd.read_excel(path, sheet_name=sheet, dtype="str")
            meta = dict(zip(m["key"], m["value"], strict=True))
            continue
        if ignore_unknown and name not in TABLES:
            continue
        if name in tables:
            raise _problem(name, "two sheets give the same table", "Keep one sheet per table.", source=path.name)
        tables[name] = _read_excel_sheet(path, sheet, name)
        sources[name] = f"{path.name}, sheet '{sheet}'"
    return tables, sources, meta


def _read_url(url: str):
    if url.startswith("duckdb://"):
        return _read_duckdb(Path(url.removeprefix("duckdb:///").removeprefix("duckdb://")))
    return _read_sqlalchemy(url, label=_safe_url(url))


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparseable URL is reported when it is used
        return url
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


def _read_sqlalchemy(url: str, *, label: str):
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            chosen = _pick_tables(names)
            tables = {t: pd.read_sql_query(sa.text(f'SELECT * FROM "{n}"'), conn) for t, n in chosen.items()}
            meta = {}
            if META_NAME in names:
                m = pd.read_sql_query(sa.text(f'SELECT * FROM "{META_NAME}"'), conn)
                meta = dict(zip(m["key"], m["value"], strict=True))
    except sa.exc.SQLAlchemyError as err:
        raise SourceError(f"Cannot read the database {label}: {err.__class__.__name__}: {err}") from err
    finally:
        if "engine" in locals():
            engine.dispose()
    return _number_records(tables, label), {t: f"{label}, table {t}" for t in tables}, meta


def _read_duckdb(path: Path):
    import duckdb

    if not path.exists():
        raise SourceError(f"No such DuckDB file: '{path}'.")
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        chosen = _pick_tables(names)
        tables = {t: con.execute(f'SELECT * FROM "{n}"').df() for t, n in chosen.items() if t not in LAZY_TABLES}
        meta = {}
        if META_NAME in names:
            meta = dict(con.execute(f'SELECT key, value FROM "{META_NAME}"').fetchall())
    finally:
        con.close()
    tables = _number_records(tables, path.name) if tables else tables
    lazy = {t: LazyTable.duckdb(t, path, n) for t, n in chosen.items() if t in LAZY_TABLES}
    if not tables and not lazy:
        _number_records({}, path.name)  # raises: none of our tables
    return {**tables, **lazy}, {t: f"{path.name}, table {t}" for t in [*tables, *lazy]}, meta


def _pick_tables(names) -> dict[str, str]:
    """Our table name -> the database's table name (case-insensitive match)."""
    return {normalise_header(n): n for n in names if normalise_header(n) in TABLES}


def _number_records(tables, label):
    if not tables:
        raise SourceError(
            f"{label} has none of the kamtools tables ({', '.join(TABLES)}); "
            "it needs at least accounts and transactions."
        )
    for df in tables.values():
        df.index = pd.RangeIndex(1, len(df) + 1)  # 1-based record numbers
    return tables


# --------------------------------------------------------------------------- writing


@contextmanager
def _atomic(path: Path, *, overwrite: bool):
    """Yield a temporary path beside ``path``; rename it into place on success."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise SourceError(f"'{path}' exists already. Pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _meta(data: KamData) -> dict[str, str]:
    return {"currency": data.currency} if data.currency else {}


def _for_text(df: pd.DataFrame) -> pd.DataFrame:
    """Dates at midnight are written as plain dates (2024-03-31)."""
    out = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s) and (s.dropna() == s.dropna().dt.normalize()).all():
            s = s.dt.strftime("%Y-%m-%d")
        out[c] = s
    return pd.DataFrame(out)


def to_folder(data: KamData, path, *, format: str = "csv", overwrite: bool = False) -> Path:
    """Write a data set as one file per table, plus ``kamtools.json`` (currency).

    Parameters
    ----------
    data : KamData
    path : path
        The folder; created if missing.
    format : {"csv", "parquet"}
    overwrite : bool
        Replace files that exist. Without it, an existing file is an error and
        nothing is written.

    Returns
    -------
    pathlib.Path
        The folder.

    Examples
    --------
    >>> import kamtools as kt, tempfile
    >>> out = kt.sample.load().to_folder(tempfile.mkdtemp(), format="parquet")
    >>> kt.load(out) == kt.sample.load()
    True
    """
    if format not in ("csv", "parquet"):
        raise SourceError(f"format={format!r} is not supported; use 'csv' or 'parquet'.")
    path = Path(path)
    targets = {name: path / f"{name}.{format}" for name in data.tables}
    if not overwrite:
        clash = [t for t in [*targets.values(), path / "kamtools.json"] if t.exists()]
        if clash:
            raise SourceError(
                f"{len(clash)} file(s) exist already in '{path}' ({', '.join(t.name for t in clash[:4])}). "
                "Pass overwrite=True to replace them, or choose an empty folder."
            )
    for name, df in data.tables.items():
        with _atomic(targets[name], overwrite=True) as tmp:
            if format == "csv":
                _for_text(df).to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False)
    with _atomic(path / "kamtools.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(_meta(data), indent=2) + "\n")
    return path


def to_excel(data: KamData, path, *, overwrite: bool = False) -> Path:
    """Write a data set as one ``.xlsx`` workbook with a sheet per table.

    A sheet ``_kamtools`` holds the metadata (currency). Excel holds at most
    1,048,575 data rows a sheet; a larger table is an error, not a cut.
    """
    path = Path(path)
    big = {n: len(df) for n, df in data.tables.items() if len(df) > EXCEL_MAX_ROWS}
    if big:
        raise SourceError(
            f"Excel sheets hold at most {EXCEL_MAX_ROWS:,} rows; too large: "
            + ", ".join(f"{n} ({k:,} rows)" for n, k in big.items())
            + ". Use to_folder(format='parquet') or to_sql instead."
        )
    with _atomic(path, overwrite=overwrite) as tmp:
        xw = pd.ExcelWriter(tmp, engine="openpyxl")  # not a with-block: on error, do not save a partial book
        for name, df in data.tables.items():
            df.to_excel(xw, sheet_name=name, index=False)
        pd.DataFrame(list(_meta(data).items()), columns=["key", "value"]).to_excel(
            xw, sheet_name=META_NAME, index=False
        )
        xw.close()
    return path


def to_sql(data: KamData, url, *, overwrite: bool = False) -> str:
    """Write a data set into a database, one table per table.

    Parameters
    ----------
    data : KamData
    url : str or path
        A SQLAlchemy URL (``sqlite:///file.db``, ``postgresql://...``), a
        ``duckdb:///file.duckdb`` URL, or a path ending in ``.duckdb`` or
        ``.sqlite``/``.sqlite3``/``.db``.
    overwrite : bool
        Replace tables of the same names. Without it, an existing table is an
        error and nothing is written.

    Notes
    -----
    Database files are written to a temporary file and renamed into place, so
    a failed write leaves no half-written file. For a database server the
    tables are written in one transaction, where the database supports it.
    """
    text = str(url)
    if "://" not in text:
        kind = DB_SUFFIXES.get(Path(text).suffix.lower(), "sqlite")
        text = f"{kind or 'sqlite'}:///{text}"
    if text.startswith("duckdb://"):
        path = Path(text.removeprefix("duckdb:///").removeprefix("duckdb://"))
        with _atomic(path, overwrite=overwrite) as tmp:
            _write_duckdb(data, tmp)
        return text
    if text.startswith("sqlite:///") and text != "sqlite:///:memory:":
        path = Path(text.removeprefix("sqlite:///"))
        with _atomic(path, overwrite=overwrite) as tmp:
            _write_sqlalchemy(data, f"sqlite:///{tmp}", overwrite=True)
        return text
    _write_sqlalchemy(data, text, overwrite=overwrite)
    return text


def _write_duckdb(data: KamData, tmp: Path):
    import duckdb

    tmp.unlink()  # duckdb creates the file itself
    con = duckdb.connect(str(tmp))
    try:
        for name, df in [*data.tables.items(), (META_NAME, pd.DataFrame(list(_meta(data).items()), columns=["key", "value"]))]:
            con.register("_frame", df)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _frame')
            con.unregister("_frame")
    finally:
        con.close()


def _write_sqlalchemy(data: KamData, url: str, *, overwrite: bool):
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            existing = set(sa.inspect(conn).get_table_names())
            clash = sorted(existing & {*data.tables, META_NAME})
            if clash and not overwrite:
                raise SourceError(
                    f"The database {_safe_url(url)} has tables of these names already: {', '.join(clash)}. "
                    "Pass overwrite=True to replace them."
                )
            for name, df in data.tables.items():
                df.to_sql(name, conn, index=False, if_exists="replace")
            pd.DataFrame(list(_meta(data).items()), columns=["key", "value"]).to_sql(
                META_NAME, conn, index=False, if_exists="replace"
            )
    finally:
        engine.dispose()
