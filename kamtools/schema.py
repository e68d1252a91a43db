"""The kamtools data model: the tables, their columns, and validation.

A data set is a handful of tables, as a CRM exports them. Only ``accounts`` and
``transactions`` are required. :data:`TABLES` describes every table and column
(type, unit, allowed values, ranges); the pandera schemas are built from it, and
so is the data dictionary in ``data/README.md``.

:func:`validate` turns raw tables (strings from a CSV, whatever a database
returns) into typed, checked tables, or raises one :class:`~kamtools.SchemaError`
that lists every problem found.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kamtools.exceptions import DataWarning, SchemaError

__all__ = ["Field", "Table", "TABLES", "validate", "pandera_schema", "normalise_header"]

#: pandas dtype of each kind of column, after validation.
DTYPES = {
    "id": "str",
    "text": "str",
    "category": "str",
    "date": "datetime64[ns]",
    "money": "float64",
    "number": "float64",
    "integer": "Int64",
    "bool": "boolean",
}


@dataclass(frozen=True)
class Field:
    """One column of a table.

    Parameters
    ----------
    name : str
        Column name, lower case.
    kind : str
        One of ``id``, ``text``, ``category``, ``date``, ``money``, ``number``,
        ``integer``, ``bool`` (see :data:`DTYPES`).
    description : str
        What the column means, for the data dictionary.
    required : bool
        The column must be present in the table.
    nullable : bool
        Missing values are allowed.
    unique : bool
        The column is the table's key: values are unique.
    allowed : tuple of str, optional
        The values a category may take.
    min, max : float, optional
        Inclusive range of a numeric column.
    unit : str
        Unit of measure, for the data dictionary.
    """

    name: str
    kind: str
    description: str
    required: bool = False
    nullable: bool = True
    unique: bool = False
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    unit: str = ""

    @property
    def dtype(self) -> str:
        return DTYPES[self.kind]


@dataclass(frozen=True)
class Table:
    """One table of the data model."""

    name: str
    description: str
    fields: tuple[Field, ...]
    required: bool = False
    date: str | None = None  # the column that places a row in time
    ordered: tuple[tuple[str, str], ...] = ()  # (earlier, later) date pairs
    references: tuple[tuple[str, str], ...] = field(default=())  # (column, table)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required_columns(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def key(self) -> str | None:
        return next((f.name for f in self.fields if f.unique), None)

    def __getitem__(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


def _f(name, kind, description, **kw) -> Field:
    return Field(name, kind, description, **kw)


_REQ = {"required": True, "nullable": False}

INTERACTION_KINDS = ("meeting", "call", "email", "business_review", "executive_meeting", "workshop")
CONTRACT_OUTCOMES = ("renewed", "renewed_after_rebid", "lapsed", "active")
ASSESSMENT_DIMENSIONS = (
    "plan_quality",
    "plan_execution",
    "collaboration",
    "solution_relevance",
    "needs_analysis",
    "skills",
    "feedback",
    "continuous_improvement",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "accounts",
            "One row per customer account, key or not.",
            (
                _f("account_id", "id", "Account identifier.", unique=True, **_REQ),
                _f("account_name", "text", "Account (company) name.", **_REQ),
                _f("industry", "text", "Industry segment."),
                _f("region", "text", "Sales region."),
                _f("is_key_account", "bool", "The account is managed as a key account.", **_REQ),
                _f("kam_start", "date", "Date the account entered the KAM programme; empty if never."),
                _f("manager_id", "id", "Account manager responsible (see managers)."),
                _f("wallet_size", "money", "Estimated annual spend of the account in our category.", min=0, unit="currency/year"),
                _f("potential_products", "integer", "Number of our products the account could use.", min=0, unit="products"),
                _f("preferred_supplier", "bool", "We are designated preferred supplier."),
            ),
            required=True,
            references=(("manager_id", "managers"),),
        ),
        Table(
            "managers",
            "One row per account manager.",
            (
                _f("manager_id", "id", "Manager identifier.", unique=True, **_REQ),
                _f("name", "text", "Manager's name.", **_REQ),
                _f("start_date", "date", "Date the manager started in the role; sets tenure for the 3R+1 weights.", **_REQ),
            ),
        ),
        Table(
            "transactions",
            "One row per invoice line. Credit notes are negative revenue.",
            (
                _f("account_id", "id", "Account invoiced.", **_REQ),
                _f("date", "date", "Invoice date.", **_REQ),
                _f("product", "text", "Product or product line."),
                _f("quantity", "number", "Units sold (negative on a credit note).", unit="units"),
                _f("revenue", "money", "Net invoiced revenue; negative for a credit note.", unit="currency", **_REQ),
                _f("cost", "money", "Cost of goods sold for the line.", unit="currency"),
            ),
            required=True,
            date="date",
            references=(("account_id", "accounts"),),
        ),
        Table(
            "contracts",
            "One row per contract or contract term.",
            (
                _f("contract_id", "id", "Contract identifier.", unique=True, **_REQ),
                _f("account_id", "id", "Account under contract.", **_REQ),
                _f("start", "date", "First day of the term.", **_REQ),
                _f("end", "date", "Last day of the term; empty if open-ended."),
                _f("value", "money", "Total contract value over the term.", min=0, unit="currency"),
                _f("outcome", "category", "What happened at the end of the term.", allowed=CONTRACT_OUTCOMES),
            ),
            date="start",
            ordered=(("start", "end"),),
            references=(("account_id", "accounts"),),
        ),
        Table(
            "interactions",
            "One row per touchpoint between us and the account.",
            (
                _f("account_id", "id", "Account met.", **_REQ),
                _f("date", "date", "Date of the interaction.", **_REQ),
                _f("kind", "category", "Kind of interaction.", allowed=INTERACTION_KINDS, **_REQ),
                _f("contact_id", "id", "Customer contact involved (see contacts)."),
                _f("manager_id", "id", "Our manager involved (see managers)."),
                _f("attended", "bool", "The planned interaction took place with the customer present."),
            ),
            date="date",
            references=(("account_id", "accounts"), ("contact_id", "contacts"), ("manager_id", "managers")),
        ),
        Table(
            "contacts",
            "One row per person we know at an account.",
            (
                _f("contact_id", "id", "Contact identifier.", unique=True, **_REQ),
                _f("account_id", "id", "Account the contact works for.", **_REQ),
                _f("role", "text", "Job role."),
                _f("is_decision_maker", "bool", "The contact takes or signs buying decisions."),
            ),
            references=(("account_id", "accounts"),),
        ),
        Table(
            "surveys",
            "One row per survey response.",
            (
                _f("account_id", "id", "Account that answered.", **_REQ),
                _f("date", "date", "Date of the response.", **_REQ),
                _f("nps", "integer", "Likelihood to recommend (0-10).", min=0, max=10, unit="points 0-10"),
                _f("csat", "integer", "Satisfaction (1-5).", min=1, max=5, unit="points 1-5"),
                _f("suppliers", "integer", "Number of suppliers the customer uses in our category, as it reports.", min=1, unit="suppliers"),
            ),
            date="date",
            references=(("account_id", "accounts"),),
        ),
        Table(
            "opportunities",
            "One row per sales opportunity.",
            (
                _f("opportunity_id", "id", "Opportunity identifier.", unique=True, **_REQ),
                _f("account_id", "id", "Account concerned.", **_REQ),
                _f("created", "date", "Date the opportunity was opened.", **_REQ),
                _f("closed", "date", "Date it was won or lost; empty while open."),
                _f("status", "category", "Current status.", allowed=("won", "lost", "open"), **_REQ),
                _f("amount", "money", "Expected or won value.", min=0, unit="currency"),
                _f("kind", "category", "Kind of business.", allowed=("new_business", "cross_sell", "upsell", "renewal")),
                _f("source", "text", "Where the lead came from (referral, inbound, outbound, partner, ...)."),
                _f("competitor", "text", "Main competitor met on the opportunity, if known."),
                _f("implemented", "date", "Date a won opportunity went live at the customer."),
            ),
            date="created",
            ordered=(("created", "closed"), ("closed", "implemented")),
            references=(("account_id", "accounts"),),
        ),
        Table(
            "tickets",
            "One row per service ticket raised by the account.",
            (
                _f("ticket_id", "id", "Ticket identifier.", unique=True, **_REQ),
                _f("account_id", "id", "Account that raised it.", **_REQ),
                _f("opened", "date", "Date and time opened.", **_REQ),
                _f("first_response", "date", "Date and time of our first response."),
                _f("resolved", "date", "Date and time resolved; empty while open."),
                _f("severity", "category", "Severity.", allowed=("low", "medium", "high", "critical")),
            ),
            date="opened",
            ordered=(("opened", "first_response"), ("opened", "resolved")),
            references=(("account_id", "accounts"),),
        ),
        Table(
            "costs",
            "One row per cost booked against an account.",
            (
                _f("account_id", "id", "Account the cost is booked to.", **_REQ),
                _f("date", "date", "Date (or month) of the cost.", **_REQ),
                _f("kind", "category", "kam_programme: KAM team time and programme spend; cost_to_serve: logistics, service, support.", allowed=("kam_programme", "cost_to_serve"), **_REQ),
                _f("amount", "money", "Cost amount.", min=0, unit="currency", **_REQ),
            ),
            date="date",
            references=(("account_id", "accounts"),),
        ),
        Table(
            "assessments",
            "Qualitative scores of an account (plan, collaboration, ...) or a manager (skills, feedback).",
            (
                _f("subject_id", "id", "account_id or manager_id assessed.", **_REQ),
                _f("date", "date", "Date of the assessment.", **_REQ),
                _f("dimension", "category", "What was assessed.", allowed=ASSESSMENT_DIMENSIONS, **_REQ),
                _f("score", "number", "Score on a 1-5 scale (5 best).", min=1, max=5, unit="points 1-5", **_REQ),
                _f("assessor", "category", "Who gave the score.", allowed=("supplier", "customer")),
            ),
            date="date",
            references=(("subject_id", "accounts|managers"),),
        ),
        Table(
            "learning",
            "One row per learning activity of an account manager.",
            (
                _f("manager_id", "id", "Manager concerned.", **_REQ),
                _f("date", "date", "Date of the activity.", **_REQ),
                _f("kind", "category", "Kind of activity.", allowed=("training", "certification", "coaching"), **_REQ),
                _f("hours", "number", "Hours spent.", min=0, unit="hours"),
                _f("completed", "bool", "The activity was completed (or the certificate obtained)."),
            ),
            date="date",
            references=(("manager_id", "managers"),),
        ),
    ]
}

REQUIRED_TABLES = [name for name, t in TABLES.items() if t.required]

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}

# What to do, by check. {table} and {column} are filled in.
_ADVICE = {
    "missing table": "Add a file or sheet named '{table}', or pass the table under that name.",
    "unknown table": "Rename it to one of the kamtools tables, or leave it out of the source.",
    "missing column": "Rename the column in the source, or map your header to ours: columns={{'{table}': {{'Your header': '{column}'}}}}.",
    "duplicate column": "Two headers become '{column}' once case and spaces are normalised; rename or drop one.",
    "empty table": "Export the table again; a file with no rows cannot be used.",
    "not a number": "Write plain numbers (1234.5: no currency signs, no thousands separators).",
    "not a whole number": "Use whole numbers in '{column}'.",
    "not true/false": "Use true/false, yes/no or 1/0 in '{column}'.",
    "unparseable date": "Write dates as YYYY-MM-DD, or pass date_format= (e.g. '%d/%m/%Y') to kamtools.load.",
    "timezone-aware date": "Convert to naive dates in one time zone first, e.g. s.dt.tz_convert('UTC').dt.tz_localize(None).",
    "missing value": "Fill in '{column}' on these rows, or remove the rows.",
    "duplicate key": "'{column}' identifies a row of '{table}': make each value unique.",
    "out of range": "Correct these values; see the allowed range in data/README.md.",
    "not allowed": "Use one of the allowed values (see data/README.md).",
    "unknown reference": "Add the missing rows to the referenced table, or correct the ids (watch for spaces and case).",
    "end before start": "Correct the dates: the later date must not precede the earlier one.",
}


def normalise_header(name: object) -> str:
    """Normalise a column header: strip surrounding white space, lower case.

    Examples
    --------
    >>> normalise_header("  Account_ID ")
    'account_id'
    """
    return str(name).strip().lower()


def pandera_schema(table: str, columns=None):
    """The pandera schema of one table, for use outside kamtools.

    Parameters
    ----------
    table : str
        A name in :data:`TABLES`.
    columns : iterable of str, optional
        Restrict the schema to these columns (the ones present). Default: all.

    Returns
    -------
    pandera.pandas.DataFrameSchema
        Checks dtypes, nulls, unique keys, ranges and allowed values. Extra
        columns are allowed.

    Examples
    --------
    >>> import kamtools as kt
    >>> schema = kt.schema.pandera_schema("surveys")
    >>> schema.columns["nps"].dtype
    DataType(Int64)
    """
    import pandera.pandas as pa

    spec = _table(table)
    keep = set(spec.columns if columns is None else columns)
    cols = {}
    for f in spec.fields:
        if f.name not in keep:
            continue
        checks = []
        if f.min is not None and f.max is not None:
            checks.append(pa.Check.in_range(f.min, f.max, error=f"out of range: between {f.min:g} and {f.max:g}"))
        elif f.min is not None:
            checks.append(pa.Check.ge(f.min, error=f"out of range: at least {f.min:g}"))
        if f.allowed is not None:
            checks.append(pa.Check.isin(list(f.allowed), error="not allowed: one of " + ", ".join(f.allowed)))
        cols[f.name] = pa.Column(f.dtype, checks, nullable=f.nullable, unique=f.unique, required=f.required)
    return pa.DataFrameSchema(cols, name=table, strict=False)


def _table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        close = difflib.get_close_matches(name, TABLES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise SchemaError(f"'{name}' is not a kamtools table.{hint} Tables: {', '.join(TABLES)}.") from None


# --------------------------------------------------------------------------- validation


class _Problems:
    """Collects failures while validating; one SchemaError at the end."""

    def __init__(self, sources: Mapping[str, str]):
        self.rows: list[dict] = []
        self.sources = sources

    def add(self, table, column, check, rows=(None,), values=(None,), detail=""):
        advice = _ADVICE[check].format(table=table, column=column)
        label = check + (f": {detail}" if detail else "")
        for r, v in zip(rows, values, strict=True):
            self.rows.append(
                {"table": table, "column": column, "check": label, "row": r, "value": v, "advice": advice}
            )

    def raise_if_any(self):
        if not self.rows:
            return
        fc = pd.DataFrame(self.rows, columns=SchemaError.COLUMNS)
        fc["value"] = fc["value"].astype(object)
        groups = fc.groupby(["table", "column", "check"], sort=False, dropna=False)
        lines = [f"The data breaks the kamtools data model in {groups.ngroups} place(s); nothing was loaded.", ""]
        for (table, column, check), g in groups:
            where = f"table '{table}'" + (f" ({self.sources[table]})" if table in self.sources else "")
            col = f", column '{column}'" if isinstance(column, str) else ""
            lines.append(f"- {where}{col}: {check}")
            rows = g["row"].dropna()
            if len(rows):
                shown = ", ".join(str(r) for r in rows.iloc[:5])
                more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
                vals = ", ".join(repr(_plain(v)) for v in g["value"].iloc[:5] if v is not None)
                vals = f" (values: {vals})" if vals else ""
                lines.append(f"    {_rows(len(rows))} {shown}{more}{vals}")
            elif g["value"].notna().any():
                lines.append(f"    found: {g['value'].iloc[0]}")
            lines.append(f"    What to do: {g['advice'].iloc[0]}")
        lines.append("")
        lines.append("All problems are in SchemaError.failure_cases (one row per offending value).")
        raise SchemaError("\n".join(lines), fc)


def _rows(n: int) -> str:
    return "row" if n == 1 else f"{n} rows:"


def _plain(v):
    if isinstance(v, pd.Timestamp):
        return str(v.date()) if v == v.normalize() else str(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _bad(mask: pd.Series, raw: pd.Series) -> tuple[list, list]:
    idx = mask[mask].index
    return list(idx), [_plain(v) for v in raw.loc[idx]]


def _is_blank(s: pd.Series) -> pd.Series:
    blank = s.isna()
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        blank |= s.astype("str").str.strip().eq("")
    return blank


def _coerce(s: pd.Series, f: Field, date_format: str | None) -> tuple[pd.Series, pd.Series, str | None]:
    """Cast one raw column to its kamtools dtype.

    Returns the cast column, a boolean mask of values that could not be cast,
    and the name of the failed check.
    """
    blank = _is_blank(s)
    if f.kind in ("id", "text", "category"):
        if pd.api.types.is_float_dtype(s) and (s.dropna() % 1 == 0).all():
            s = s.astype("Int64")  # ids read as floats (Excel, NaN-bearing columns): 12.0 -> "12"
        out = s.astype("str").where(~blank, None).astype("str")
        return out, pd.Series(False, index=s.index), None
    if f.kind == "date":
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return s.dt.tz_localize(None).astype(f.dtype), ~blank, "timezone-aware date"
        if pd.api.types.is_datetime64_any_dtype(s):
            return s.astype(f.dtype), pd.Series(False, index=s.index), None
        text = s.where(~blank, None)
        if text.dtype == object:  # Excel and SQL hand over datetime objects among strings
            text = text.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v)
        out = pd.to_datetime(text.astype("str"), errors="coerce", format=date_format or "ISO8601")
        if getattr(out.dt, "tz", None) is not None:
            return out.dt.tz_localize(None).astype(f.dtype), ~blank, "timezone-aware date"
        return out.astype(f.dtype), out.isna() & ~blank, "unparseable date"
    if f.kind in ("money", "number", "integer"):
        if pd.api.types.is_bool_dtype(s):
            return s.astype(f.dtype), ~blank, "not a number"
        num = pd.to_numeric(s.where(~blank, None), errors="coerce").astype("float64")
        bad = num.isna() & ~blank
        if f.kind == "integer":
            frac = num.notna() & (num % 1 != 0)
            if frac.any():
                return num.round().astype("Int64"), frac, "not a whole number"
            return num.astype("Int64"), bad, "not a number"
        return num, bad, "not a number"
    if f.kind == "bool":
        if pd.api.types.is_bool_dtype(s):
            return s.astype("boolean"), pd.Series(False, index=s.index), None
        text = s.astype("str").str.strip().str.lower()
        out = pd.Series(pd.NA, index=s.index, dtype="boolean")
        out[text.isin(_TRUE) & ~blank] = True
        out[text.isin(_FALSE) & ~blank] = False
        return out, out.isna() & ~blank, "not true/false"
    raise AssertionError(f"unknown kind {f.kind}")  # pragma: no cover - TABLES is ours


def header_names(headers, columns: Mapping[str, str] | None = None) -> list[str]:
    """Our name for each header: case and surrounding spaces ignored, then the user's ``columns`` mapping."""
    mapping = {normalise_header(k): normalise_header(v) for k, v in (columns or {}).items()}
    return [mapping.get(normalise_header(h), normalise_header(h)) for h in headers]


def report_duplicate_headers(table: str, names: list[str], problems: _Problems) -> bool:
    """Report the columns that two headers map to; True when there is none."""
    dup = list(dict.fromkeys(n for i, n in enumerate(names) if n in names[:i]))
    for c in dup:
        problems.add(table, c, "duplicate column")
    return not dup


def report_missing_headers(table: str, names: list[str], problems: _Problems) -> bool:
    """Report the required columns missing, with the closest header; True when none is."""
    missing = [c for c in TABLES[table].required_columns if c not in names]
    for c in missing:
        close = difflib.get_close_matches(c, [str(x) for x in names], n=1, cutoff=0.6)
        detail = f"the table has {', '.join(map(str, names)) or 'no columns'}"
        if close:
            detail += f"; did you mean '{close[0]}'?"
        problems.add(table, c, "missing column", detail=detail)
    return not missing


def _prepare(table: str, df: pd.DataFrame, columns: Mapping[str, str] | None, problems: _Problems):
    """Normalise headers, apply the user's mapping, check required columns."""
    df = df.set_axis(header_names(df.columns, columns), axis=1)
    unique = report_duplicate_headers(table, list(df.columns), problems)
    if len(df) == 0:
        problems.add(table, None, "empty table")
    complete = report_missing_headers(table, list(df.columns), problems)
    return df, unique and complete and len(df) > 0


def validate(
    tables: Mapping[str, pd.DataFrame],
    *,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    sources: Mapping[str, str] | None = None,
    date_format: str | None = None,
    lazy: Mapping | None = None,
) -> dict[str, pd.DataFrame]:
    """Check raw tables against the data model and return them typed.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Raw tables by name. Values may still be strings (as read from a CSV).
    columns : mapping, optional
        Per table, your column names mapped onto ours, e.g.
        ``{"transactions": {"Invoice Date": "date"}}``. Header case and
        surrounding white space are ignored on both sides.
    sources : mapping of str to str, optional
        Per table, the file it came from. For these tables the frame's index is
        taken as the file's row numbers, and error messages say "file rows".
    date_format : str, optional
        strftime format of text dates. Default: ISO 8601 (``2024-12-31``).
    lazy : mapping of str to LazyTable, optional
        Tables left in DuckDB (see :mod:`kamtools.lazy`): checked in SQL with
        the same checks, their problems listed with the others. They are not
        returned.

    Returns
    -------
    dict of str to DataFrame
        The tables in the model's order, columns cast to their dtypes (known
        columns first, then any extra columns unchanged), index reset.

    Raises
    ------
    SchemaError
        With every problem found: missing tables or columns, values of the wrong
        type, out of range or not allowed, duplicate keys, ids missing from the
        table they refer to, dates in the wrong order. ``failure_cases`` holds
        one row per offending value.

    Warns
    -----
    DataWarning
        Legal but suspicious data (credit notes, exact duplicate rows,
        transactions after the last contract ended, key accounts without a
        KAM start date, ...). The data is never changed.

    Examples
    --------
    >>> import pandas as pd
    >>> import kamtools as kt
    >>> accounts = pd.DataFrame({"account_id": ["A1"], "account_name": ["Acme"],
    ...                          "is_key_account": ["yes"]})
    >>> sales = pd.DataFrame({"Account_ID": ["A1"], "Invoice Date": ["2024-03-31"],
    ...                       "Net": ["1200.50"]})
    >>> out = kt.schema.validate({"accounts": accounts, "transactions": sales},
    ...     columns={"transactions": {"Invoice Date": "date", "Net": "revenue"}})
    >>> out["transactions"].dtypes.to_dict()
    {'account_id': <StringDtype(na_value=nan)>, 'date': dtype('<M8[ns]'), 'revenue': dtype('float64')}
    """
    import pandera.errors
    import pandera.pandas  # noqa: F401  (registers the pandas backend)

    sources = dict(sources or {})
    problems = _Problems(sources)
    columns = {normalise_header(k): v for k, v in (columns or {}).items()}
    for name in columns:
        if name not in TABLES:
            _table(name)  # raises with a suggestion
    unknown = [t for t in tables if t not in TABLES]
    for t in unknown:
        close = difflib.get_close_matches(t, TABLES, n=1)
        detail = f"did you mean '{close[0]}'?" if close else "tables are " + ", ".join(TABLES)
        problems.add(t, None, "unknown table", detail=detail)
    lazy = dict(lazy or {})
    for t in REQUIRED_TABLES:
        if t not in tables and t not in lazy:
            problems.add(t, None, "missing table", detail="accounts and transactions are required")

    typed: dict[str, pd.DataFrame] = {}
    for name in [t for t in TABLES if t in tables]:
        spec = TABLES[name]
        df, ok = _prepare(name, tables[name], columns.get(name), problems)
        if not ok:
            continue
        if name not in sources:
            df = df.reset_index(drop=True)
        clean = []
        out = {}
        for f in spec.fields:
            if f.name not in df.columns:
                continue
            out[f.name], bad, check = _coerce(df[f.name], f, date_format)
            if bad.any():
                problems.add(name, f.name, check, *_bad(bad, df[f.name]))
            else:
                clean.append(f.name)
        extra = [c for c in df.columns if c not in out]
        typed_df = pd.DataFrame(out, index=df.index).join(df[extra]) if extra else pd.DataFrame(out, index=df.index)
        try:
            pandera_schema(name, clean).validate(typed_df[clean], lazy=True)
        except pandera.errors.SchemaErrors as err:
            _add_pandera_failures(name, err.failure_cases, typed_df, problems)
        for early, late in spec.ordered:
            if early in clean and late in clean:
                wrong = typed_df[late] < typed_df[early]
                if wrong.any():
                    rows = list(wrong[wrong].index)
                    vals = [f"{_plain(a)} > {_plain(b)}" for a, b in typed_df.loc[wrong, [early, late]].itertuples(index=False)]
                    problems.add(name, late, "end before start", rows, vals, detail=f"'{late}' is before '{early}'")
        typed[name] = typed_df

    _check_references(typed, problems)
    for name, table in lazy.items():
        table.check(problems, typed, columns.get(name), date_format)
    problems.raise_if_any()
    typed = {name: df.reset_index(drop=True) for name, df in typed.items()}
    _warn_suspicious(typed)
    for table in lazy.values():
        table.warn_suspicious(_tell, typed)
    return typed


def _add_pandera_failures(table, fc: pd.DataFrame, df: pd.DataFrame, problems: _Problems):
    """Translate pandera's failure cases into ours, keeping the row labels."""
    for (column, check), g in fc.groupby(["column", "check"], sort=False, dropna=False):
        rows = list(g["index"])
        values = [_plain(v) for v in g["failure_case"]]
        check = str(check)
        if check == "field_uniqueness":
            problems.add(table, column, "duplicate key", rows, values)
        elif check == "not_nullable":
            problems.add(table, column, "missing value", rows, [None] * len(rows))
        elif check.startswith("out of range") or check.startswith("not allowed"):
            kind, detail = check.split(": ", 1)
            problems.add(table, column, kind, rows, values, detail=detail)
        else:  # dtype or another pandera check: keep pandera's wording
            problems.rows.extend(
                {"table": table, "column": column, "check": check, "row": r, "value": v,
                 "advice": "Correct these values."}
                for r, v in zip(rows, values, strict=True)
            )


def _check_references(typed: dict[str, pd.DataFrame], problems: _Problems):
    for name, df in typed.items():
        for column, target in TABLES[name].references:
            if column not in df.columns:
                continue
            targets = [t for t in target.split("|") if t in typed]
            if not targets:
                continue  # the referenced table is optional and absent
            known = pd.concat([typed[t][TABLES[t].key] for t in targets])
            s = df[column]
            orphan = s.notna() & ~s.isin(known)
            if orphan.any():
                problems.add(
                    name, column, "unknown reference", *_bad(orphan, s),
                    detail=f"not in {' or '.join(f'{t}.{TABLES[t].key}' for t in targets)}",
                )


def _warn(message: str):
    warnings.warn(message + " The data was not changed.", DataWarning, stacklevel=4)


def contracts_ended(contracts: pd.DataFrame | None) -> pd.DataFrame | None:
    """``account_id, last_end`` of the accounts whose contracts have all ended (none open-ended or active).

    ``None`` without a contracts table with end dates.
    """
    if contracts is None or "end" not in contracts.columns:
        return None
    status = contracts.groupby("account_id").agg(last_end=("end", "max"), open=("end", lambda s: s.isna().any()))
    if "outcome" in contracts.columns:
        status["open"] |= contracts.assign(a=contracts["outcome"].eq("active")).groupby("account_id")["a"].any()
    return status.loc[~status["open"], ["last_end"]].reset_index()


#: The warnings about legal but suspicious rows, the same whether pandas or DuckDB counted them.
_SUSPICIOUS = {
    "duplicates": "{table}: {n} row(s) are exact duplicates of another row; if they are double exports, remove them.",
    "credit_notes": "transactions: {n} row(s) have negative revenue (credit notes) totalling {total:,.2f}; they are "
                    "netted into revenue.",
    "uncosted": "transactions: {n} row(s) have no cost (revenue {revenue:,.2f}); margin KPIs leave them out.",
    "after_contract": "transactions: {n} row(s) for {accounts} account(s) are dated after the account's last "
                      "contract ended.",
}


def _tell(kind: str, **counts):
    """Warn about suspicious rows (see :data:`_SUSPICIOUS`); lazy tables count them in SQL and call this too."""
    _warn(_SUSPICIOUS[kind].format(**counts))


def _warn_suspicious(typed: dict[str, pd.DataFrame]):
    for name, df in typed.items():
        n = int(df.duplicated().sum())
        if n:
            _tell("duplicates", table=name, n=n)
    tx = typed.get("transactions")
    if tx is not None:
        neg = tx["revenue"] < 0
        if neg.any():
            _tell("credit_notes", n=int(neg.sum()), total=tx.loc[neg, "revenue"].sum())
        if "cost" in tx.columns:
            uncosted = tx["cost"].isna()
            if uncosted.any() and not uncosted.all():
                _tell("uncosted", n=int(uncosted.sum()), revenue=tx.loc[uncosted, "revenue"].sum())
    acc = typed.get("accounts")
    if acc is not None and "kam_start" in acc.columns:
        key = acc["is_key_account"].fillna(False).astype(bool)
        n = int((key & acc["kam_start"].isna()).sum())
        if n:
            _warn(f"accounts: {n} key account(s) have no kam_start; ROI measurement cannot place their entry into KAM.")
        n = int((~key & acc["kam_start"].notna()).sum())
        if n:
            _warn(f"accounts: {n} account(s) have a kam_start but are not key accounts (left the programme?).")
    ended = contracts_ended(typed.get("contracts"))
    if tx is not None and ended is not None:
        after = tx["date"] > tx["account_id"].map(ended.set_index("account_id")["last_end"])
        if after.any():
            _tell("after_contract", n=int(after.sum()), accounts=tx.loc[after, "account_id"].nunique())


def dictionary() -> str:
    """The data dictionary as Markdown: every table and column, with type and unit.

    ``data/README.md`` holds this text (a test keeps the two in step).

    Examples
    --------
    >>> print(dictionary().splitlines()[0])
    ## accounts (required)
    """
    kinds = {
        "id": "text (identifier)", "text": "text", "category": "text (one of a list)", "date": "date",
        "money": "number (money)", "number": "number", "integer": "whole number", "bool": "true/false",
    }
    out = []
    for t in TABLES.values():
        out.append(f"## {t.name} ({'required' if t.required else 'optional'})")
        out.append("")
        out.append(t.description)
        out.append("")
        out.append("| column | type | unit | required | meaning |")
        out.append("| --- | --- | --- | --- | --- |")
        for f in t.fields:
            meaning = f.description
            if f.allowed:
                meaning += " Allowed: " + ", ".join(f"`{a}`" for a in f.allowed) + "."
            if f.min is not None or f.max is not None:
                lo = "" if f.min is None else f"{f.min:g}"
                hi = "" if f.max is None else f"{f.max:g}"
                meaning += f" Range: {lo} to {hi}." if hi else f" At least {lo}."
            if f.unique:
                meaning += " Unique key."
            out.append(f"| `{f.name}` | {kinds[f.kind]} | {f.unit} | {'yes' if f.required else ''} | {meaning} |")
        refs = [f"`{c}` must exist in {' or '.join(tt.split('|'))}" for c, tt in t.references]
        order = [f"`{b}` is not before `{a}`" for a, b in t.ordered]
        if refs or order:
            out.append("")
            out.append("Checks across rows and tables: " + "; ".join(refs + order) + ".")
        out.append("")
    return "\n".join(out)
