"""Computing KPIs by entity and period, all accounts at once."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from kamtools import periods as _periods
from kamtools.data import KamData
from kamtools.exceptions import KamtoolsError, ParameterError
from kamtools.kpi._context import GROUPED_COLUMNS, SUMMED_COLUMNS, Context, positive
from kamtools.kpi._registry import KPI, REGISTRY, get

#: The entity label of accounts whose grouping column is empty.
MISSING_GROUP = "(missing)"
RESULT_COLUMNS = ["entity", "period", "kpi", "value", "num", "den", "note"]


class KpiWarning(UserWarning):
    """Some KPIs could not be computed from this data (the result says which and why)."""


def _resolve(kpis) -> list[KPI]:
    if kpis is None:
        return list(REGISTRY.values())
    keys = [kpis] if isinstance(kpis, str) else list(kpis)
    return [get(k) for k in keys]


def _entity_map(accounts: pd.DataFrame, by: str) -> pd.Series:
    """account_id -> entity label."""
    ids = accounts["account_id"]
    if by == "account":
        values = ids
    elif by == "portfolio":
        values = pd.Series("portfolio", index=accounts.index, dtype="str")
    elif by == "manager":
        if "manager_id" not in accounts.columns:
            raise ParameterError("by='manager' needs the column accounts.manager_id, which this data lacks.")
        values = accounts["manager_id"]
    elif by in accounts.columns and by != "account_id":
        values = accounts[by]
    else:
        cols = [c for c in accounts.columns if c != "account_id"]
        raise ParameterError(
            f"by={by!r}: group by 'account', 'manager', 'portfolio' or a column of accounts ({', '.join(cols)})."
        )
    if by not in ("account", "portfolio"):
        values = values.astype("str").fillna(MISSING_GROUP)  # never drop accounts with no group
    return pd.Series(values.to_numpy(), index=pd.Index(ids, name="account_id"), name="entity")


def _has_values(data: KamData, table: str, column: str) -> bool:
    """The column exists and holds at least one value (asked of DuckDB for a table left there)."""
    if table in data.lazy:
        return data.lazy[table].has_values(column)
    df = data.tables[table]
    return column in df.columns and not df[column].isna().all()


def _missing_inputs(spec: KPI, data: KamData, engine: str, known: dict) -> str | None:
    tables = [t for t in spec.tables if t not in data.tables]
    if tables:
        return "not computable: needs table " + ", ".join(tables)
    needed = list(spec.columns)
    if spec.grain == "manager" and "accounts.manager_id" not in needed:
        needed.append("accounts.manager_id")  # managers are mapped to accounts through it
    for c in needed:
        if c not in known:
            known[c] = _has_values(data, *c.split(".", 1))
    cols = [c for c in needed if not known[c]]
    if cols:
        return "not computable: needs column " + ", ".join(cols)
    if engine == "duckdb" and "transactions" in spec.tables:
        summed = {"date", *GROUPED_COLUMNS, *SUMMED_COLUMNS}
        lines = [c for c in needed if c.startswith("transactions.") and c.split(".", 1)[1] not in summed]
        if spec.line_level or lines:
            why = f"column {', '.join(lines)} is not summed there" if lines else "the KPI looks at single invoice lines"
            return (f"not computable on the DuckDB engine: {why}; compute it with engine='pandas' (reads the lines "
                    "into memory), or register it with line_level=False if it only needs sums by account, product "
                    "and period")
    return None


def _check_frame(spec: KPI, frame, id_col: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame) or not {id_col, "period", "num"} <= set(frame.columns):
        got = list(frame.columns) if isinstance(frame, pd.DataFrame) else type(frame).__name__
        raise KamtoolsError(
            f"KPI '{spec.key}' returned {got}; a KPI function must return a DataFrame with the columns "
            f"'{id_col}', 'period', 'num' and optionally 'den'."
        )
    if "den" not in frame.columns:
        frame = frame.assign(den=np.nan)
    if "note" not in frame.columns:
        frame = frame.assign(note=None)
    return frame[[id_col, "period", "num", "den", "note"]]


def _by_entity(spec: KPI, ctx: Context, entity: pd.Series) -> pd.DataFrame:
    """Run one KPI and add it up by entity and period: entity, period, num, den."""
    if spec.grain == "entity":
        frame = _check_frame(spec, spec.func(ctx, entity), "entity")
        return frame[_in_range(frame["period"], ctx)].reset_index(drop=True)
    if spec.grain == "manager":
        frame = _check_frame(spec, spec.func(ctx), "manager_id")
        acc = ctx.accounts
        pairs = pd.DataFrame({"manager_id": acc["manager_id"].to_numpy(), "entity": entity.to_numpy()}).dropna()
        frame = frame.merge(pairs.drop_duplicates(), on="manager_id", how="inner")
    else:
        frame = _check_frame(spec, spec.func(ctx), "account_id")
        if spec.fill is not None:  # active periods with no rows count as `fill`; rows outside them are kept
            frame = ctx.active.merge(frame, on=["account_id", "period"], how="outer")
            frame["num"] = frame["num"].fillna(spec.fill)
        frame = frame.merge(entity.reset_index(), on="account_id", how="inner")
    frame = frame[_in_range(frame["period"], ctx)]
    has_den = frame["den"].notna().any()
    g = frame.groupby(["entity", "period"], observed=True, sort=True)
    out = g[["num", "den"]].sum(min_count=1)
    out["note"] = g["note"].first() if frame["note"].notna().any() else None
    out = out.reset_index()
    if not has_den:
        out["den"] = np.nan
    return out


def _in_range(period: pd.Series, ctx: Context) -> pd.Series:
    """The reported periods and the one before the first (growth KPIs compare with it)."""
    return (period >= ctx.periods[0] - 1) & (period <= ctx.periods[-1])


def _value(frame: pd.DataFrame) -> pd.Series:
    den = frame["den"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = frame["num"] / den.where(den != 0)
    return ratio.where(den.notna(), frame["num"])


def _derive(kind: str, base: pd.DataFrame) -> pd.DataFrame:
    """Growth (x_t / x_{t-1} - 1) or change (x_t - x_{t-1}) against the previous period."""
    prev = base[["entity", "period", "value"]].assign(period=base["period"] + 1).rename(columns={"value": "prev"})
    out = base[["entity", "period", "value"]].merge(prev, on=["entity", "period"], how="left")
    if kind == "growth":
        prev_ok = out["prev"].where(positive(out["prev"]))
        out["value"] = out["value"] / prev_ok - 1
    else:
        out["value"] = out["value"] - out["prev"]
    return out.rename(columns={"prev": "den"}).assign(num=np.nan)[["entity", "period", "num", "den", "value"]]


def compute(data, kpis=None, *, by: str = "account", period: str = "Q", as_of=None, start=None,
            engine: str | None = None) -> pd.DataFrame:
    """Compute KPIs for every entity and period, all accounts at once.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    kpis : str or list of str, optional
        KPI keys (see :func:`kamtools.kpis`). Default: the whole catalogue.
    by : str
        ``"account"``, ``"manager"``, ``"portfolio"``, or a column of the
        accounts table such as ``"industry"``. Groups add up numerators and
        denominators, so a group's rate is the rate of its pooled accounts.
    period : {"M", "Q", "Y"}
    as_of : date, optional
        Only rows dated up to it are used. Default: the last transaction.
    start : date, optional
        First period reported. Default: the first transaction.
    engine : {None, "pandas", "duckdb"}
        Where the transactions are summed. ``None``: the data's own engine
        (:attr:`KamData.engine`; :func:`kamtools.load` keeps a large Parquet or
        DuckDB log in DuckDB). ``"duckdb"`` pushes the sums by account,
        product and period down to DuckDB SQL, so only they reach pandas;
        ``"pandas"`` works on the invoice lines in memory. Both give the same
        values (to the last digits of floating-point addition). KPIs that look
        at single invoice lines (``line_level``) need ``"pandas"``. With
        ``"duckdb"``, a source that cannot stay in DuckDB (CSV, Excel, a SQL
        server, DataFrames) is read into memory and summed there by DuckDB.

    Returns
    -------
    DataFrame
        Tidy, one row per entity, period and KPI, with the columns

        - ``entity``: account id, manager id, segment or ``"portfolio"``;
        - ``period``: a pandas Period (``2024Q1``);
        - ``kpi``: the KPI key;
        - ``value``: the KPI value, in the unit the catalogue gives (shares
          are fractions: 0.25 is 25%); missing where the period has no data;
        - ``num``, ``den``: numerator and denominator behind the value (for
          growth KPIs, ``den`` is the previous period's value);
        - ``note``: why a KPI has no value, e.g. ``"not computable: needs
          table surveys"``, or that the last period is still running at
          ``as_of`` (``"partial period: data up to ..."``; growth KPIs are not
          computed for it); missing otherwise.

        ``attrs`` records ``by``, ``period``, ``as_of`` and ``start``.
        Accounts with an empty grouping column form the group ``"(missing)"``.

    Warns
    -----
    KpiWarning
        When some KPIs cannot be computed because the data lacks a table or
        column; their rows carry the reason in ``note``.

    Examples
    --------
    >>> import kamtools as kt
    >>> data = kt.sample.load()
    >>> q = kt.compute(data, ["revenue", "gross_margin"], by="portfolio", period="Y")
    >>> q.columns.tolist()
    ['entity', 'period', 'kpi', 'value', 'num', 'den', 'note']
    >>> q["period"].astype(str).unique().tolist()
    ['2021', '2022', '2023', '2024', '2025']
    """
    from kamtools.io import NotLazyError, load
    from kamtools.lazy import check_engine

    engine = check_engine(engine)
    try:
        data = load(data, engine=engine)
    except NotLazyError:  # CSV, Excel, SQL, DataFrames: in memory, then summed there by DuckDB all the same
        data = load(data)
    freq = _periods.check_freq(period)
    specs = _resolve(kpis)
    if "transactions" in data.lazy:
        _, first, last = data.lazy["transactions"].span("date")
    else:
        first, last = data.transactions["date"].min(), data.transactions["date"].max()
    as_of = _periods.as_of_date(as_of, last)
    start = _periods.as_of_date(start, first)
    ctx = Context(data, freq, as_of, start, engine=engine)
    known: dict[str, bool] = {}
    entity = _entity_map(data.accounts, by)
    ents = pd.Index(pd.unique(entity.dropna()))

    results: dict[str, pd.DataFrame] = {}
    notes: dict[str, str] = {}

    def run(spec: KPI) -> pd.DataFrame | None:
        if spec.key in results or spec.key in notes:
            return results.get(spec.key)
        if spec.derive is not None:
            base = run(get(spec.derive[1]))
            if base is None:
                notes[spec.key] = notes[spec.derive[1]]
                return None
            results[spec.key] = _derive(spec.derive[0], base)
            return results[spec.key]
        reason = _missing_inputs(spec, data, ctx.engine, known)
        if reason:
            notes[spec.key] = reason
            return None
        frame = _by_entity(spec, ctx, entity)
        if frame.empty:
            notes[spec.key] = f"no data: no rows to compute it from up to {ctx.as_of:%Y-%m-%d}"
            return None
        frame["value"] = _value(frame)
        results[spec.key] = frame
        return frame

    out = []
    for spec in specs:
        frame = run(spec)
        if frame is None:
            grid = pd.MultiIndex.from_product([ents, ctx.periods], names=["entity", "period"]).to_frame(index=False)
            frame = grid.assign(num=np.nan, den=np.nan, value=np.nan, note=notes[spec.key])
        out.append(frame.assign(kpi=spec.key))
    missing = {s.key: notes[s.key] for s in specs if notes.get(s.key, "").startswith("not computable")}
    if missing:
        warnings.warn(
            f"{len(missing)} KPI(s) not computable from this data: "
            + "; ".join(f"{k} ({v.removeprefix('not computable: ')})" for k, v in missing.items()),
            KpiWarning,
            stacklevel=2,
        )
    if not out:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    res = pd.concat(out, ignore_index=True)
    if "note" not in res.columns:
        res["note"] = None
    res = res[res["period"] >= ctx.periods[0]].reset_index(drop=True)
    last = ctx.periods[-1]
    if ctx.as_of < last.end_time.normalize():  # the last period is still running at as_of
        running = res["period"] == last
        derived_keys = [s.key for s in specs if s.derive is not None]
        compared = running & res["kpi"].isin(derived_keys) & res["value"].notna()
        res.loc[compared, "value"] = np.nan
        res.loc[compared, "note"] = f"period running at {as_of:%Y-%m-%d}: not compared with a full period"
        res.loc[running & res["note"].isna(), "note"] = f"partial period: data up to {as_of:%Y-%m-%d}"
    res["note"] = res["note"].astype("str")
    res["entity"] = res["entity"].astype("str")
    res["kpi"] = res["kpi"].astype("str")
    res = res[RESULT_COLUMNS]
    res.attrs.update(by=by, period=freq, as_of=as_of, start=start)
    return res


def wide(values: pd.DataFrame) -> pd.DataFrame:
    """Pivot a :func:`compute` result wide: one row per entity and period, one column per KPI.

    Examples
    --------
    >>> import kamtools as kt
    >>> w = kt.kpi.wide(kt.compute(kt.sample.load(), ["revenue", "gross_margin"], period="Y"))
    >>> w.columns.tolist()
    ['revenue', 'gross_margin']
    """
    order = list(pd.unique(values["kpi"]))
    w = values.pivot_table(index=["entity", "period"], columns="kpi", values="value", aggfunc="first", dropna=False)
    w = w.reindex(columns=order)
    w.columns.name = None
    return w


def benchmark(values: pd.DataFrame, data, *, segment: str = "industry") -> pd.DataFrame:
    """Place each account's KPI value within its segment, period by period.

    Parameters
    ----------
    values : DataFrame
        A :func:`compute` result with ``by="account"``.
    data : KamData
    segment : str
        A column of the accounts table (industry, region, ...).

    Returns
    -------
    DataFrame
        ``values`` with the columns ``segment``, ``percentile`` (0-100, the
        share of the segment's accounts with a lower value, ties counted
        half), ``segment_p25``, ``segment_median``, ``segment_p75`` and
        ``segment_n`` (accounts with a value). The direction of the KPI is
        not applied: a high percentile means a high value.
    """
    from kamtools.io import load

    data = load(data)
    acc = data.accounts
    if segment not in acc.columns:
        raise ParameterError(f"segment={segment!r} is not a column of accounts; use one of {', '.join(acc.columns)}.")
    seg = pd.Series(acc[segment].to_numpy(), index=acc["account_id"].to_numpy())
    out = values.assign(segment=values["entity"].map(seg))
    keys = ["kpi", "period", "segment"]
    g = out.groupby(keys, observed=True, dropna=False)["value"]
    out["percentile"] = (g.rank(method="average") - 0.5) / g.transform("count") * 100
    out["segment_p25"] = g.transform("quantile", 0.25)
    out["segment_median"] = g.transform("median")
    out["segment_p75"] = g.transform("quantile", 0.75)
    out["segment_n"] = g.transform("count")
    return out
