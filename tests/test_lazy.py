"""Transaction logs left in DuckDB: lazy loading, validation in SQL, KPIs pushed down.

The reference is the pandas path on the same data: the KPI values of the
DuckDB engine must equal it (to the last digits of floating-point addition,
which DuckDB does in another order), with the same rows, periods and notes.
"""

from __future__ import annotations

import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest

import kamtools as kt
from kamtools import lazy as _lazy
from kamtools.exceptions import DataWarning, ParameterError, SchemaError
from kamtools.kpi import KpiWarning

SAMPLE_LINES = 22_793  # invoice lines of the bundled sample (data/README.md)


@pytest.fixture(scope="module")
def sample():
    return kt.sample.load()


def _write_lake(sample, folder):
    """The sample as a Parquet lake: one file per small table, transactions hive-partitioned by year."""
    folder.mkdir()
    for name, df in sample.tables.items():
        if name != "transactions":
            df.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "kamtools.json").write_text('{"currency": "EUR"}')
    con = duckdb.connect()
    tx = sample.transactions
    con.register("tx", tx)
    con.execute(f"COPY (SELECT *, year(date) AS year FROM tx) TO '{folder / 'transactions'}' "
                "(FORMAT parquet, PARTITION_BY (year))")
    con.close()
    return folder


@pytest.fixture(scope="module")
def lake(sample, tmp_path_factory):
    return _write_lake(sample, tmp_path_factory.mktemp("lake") / "lake")


@pytest.fixture(scope="module")
def lazy(lake):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return kt.load(lake, engine="duckdb")


@pytest.fixture(scope="module")
def duckdb_file(sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "crm.duckdb"
    sample.to_sql(path)
    return path


def assert_same_kpis(a: pd.DataFrame, b: pd.DataFrame):
    """Same entities, periods, KPIs and notes; values equal up to the order of floating-point additions."""
    assert len(a) == len(b)
    pd.testing.assert_frame_equal(a[["entity", "period", "kpi", "note"]], b[["entity", "period", "kpi", "note"]])
    for col in ("value", "num", "den"):
        x, y = a[col].to_numpy(float), b[col].to_numpy(float)
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=f"missing {col} differ")
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9, err_msg=col)


# --------------------------------------------------------------------------- loading


def test_lake_stays_in_duckdb(lazy, sample):
    assert lazy.engine == "duckdb"
    assert list(lazy.lazy) == ["transactions"]
    assert lazy.lazy["transactions"].label == "transactions/ (Parquet, 5 files)"  # one per year, 2021-2025
    s = lazy.summary()
    assert s.tables.loc["transactions", "rows"] == SAMPLE_LINES
    assert s.tables.loc["transactions", "columns"] == 6  # the partition column 'year' is layout, not data
    assert s.last_date == sample.summary().last_date
    assert lazy.currency == "EUR"


def test_the_source_decides_and_engine_overrides(lake, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        assert kt.load(lake).engine == "pandas"  # 22,793 lines: small, into memory
        monkeypatch.setattr(_lazy, "LAZY_ROWS", 20_000)
        monkeypatch.setattr("kamtools.io.LAZY_ROWS", 20_000)
        assert kt.load(lake).engine == "duckdb"  # above the threshold: stays in DuckDB
        assert kt.load(lake, engine="pandas").engine == "pandas"


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_parquet_folder_equals_the_sample_on_either_engine(sample, tmp_path, engine):
    folder = sample.to_folder(tmp_path / "flat", format="parquet")  # transactions.parquet, in the sample's order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = kt.load(folder, engine=engine)
    assert data.engine == engine
    assert data.fingerprint == sample.fingerprint  # a lazy table streams through the hash in chunks


def test_duckdb_file_stays_in_duckdb(duckdb_file, sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = kt.load(duckdb_file, engine="duckdb")
    assert data.engine == "duckdb"
    assert data.fingerprint == sample.fingerprint


@pytest.mark.parametrize("source", ["csv", "mapping"])
def test_duckdb_engine_needs_parquet_or_duckdb(tmp_path, tiny, source):
    from conftest import write_folder

    src = write_folder(tmp_path / "csv", tiny) if source == "csv" else tiny
    with pytest.raises(ParameterError, match="engine='duckdb' keeps transactions in Parquet files or a DuckDB"):
        kt.load(src, engine="duckdb")


def test_unknown_engine():
    with pytest.raises(ParameterError, match="engine='spark': use 'pandas'"):
        kt.load("data/sample", engine="spark")


def test_reading_a_lazy_table_into_memory_warns_and_equals(lazy, sample):
    with pytest.warns(DataWarning, match=f"transactions: reading {SAMPLE_LINES:,} rows from transactions/"):
        tx = lazy.transactions
    order = ["account_id", "date", "product", "revenue", "quantity"]  # the lake is laid out by year
    pd.testing.assert_frame_equal(tx.sort_values(order, ignore_index=True),
                                  sample.transactions.sort_values(order, ignore_index=True))


def test_subset_reads_only_the_accounts_rows(lazy, sample):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # no full read
        part = lazy.subset(["A0001", "A0007"])
    want = sample.subset(["A0001", "A0007"])
    assert part.engine == "pandas"
    assert list(part.tables) == list(want.tables)
    for name in want.tables:
        a, b = part.tables[name], want.tables[name]
        if name == "transactions":  # the lake is laid out by year
            order = ["account_id", "date", "product", "revenue", "quantity"]
            a, b = a.sort_values(order, ignore_index=True), b.sort_values(order, ignore_index=True)
        pd.testing.assert_frame_equal(a, b)
    assert set(part.transactions["account_id"]) == {"A0001", "A0007"}


# --------------------------------------------------------------------------- validation in SQL


def _bad_lake(sample, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    sample.accounts.to_parquet(folder / "accounts.parquet", index=False)
    tx = sample.transactions.head(1000).copy()
    tx["date"] = tx["date"].dt.strftime("%Y-%m-%d")
    tx.loc[[3, 40], "date"] = ["2024-13-45", "yesterday"]  # records 4 and 41 of the file
    tx.loc[7, "revenue"] = np.nan
    tx.loc[[10, 11, 12, 13, 14, 15, 16], "account_id"] = "X999"
    (folder / "transactions").mkdir()
    tx.to_parquet(folder / "transactions" / "part-0.parquet", index=False)
    return folder


def test_validation_in_sql_names_file_record_and_values(sample, tmp_path):
    with pytest.raises(SchemaError) as err:
        kt.load(_bad_lake(sample, tmp_path), engine="duckdb")
    msg = str(err.value)
    assert "table 'transactions' (transactions/ (Parquet, 1 file)), column 'date': unparseable date" in msg
    assert "part-0.parquet, record 4, part-0.parquet, record 41 (values: '2024-13-45', 'yesterday')" in msg
    assert "column 'revenue': missing value" in msg and "part-0.parquet, record 8" in msg
    assert "column 'account_id': unknown reference: not in accounts.account_id; 7 rows in all" in msg
    fc = err.value.failure_cases
    assert fc.groupby("check")["row"].count().to_dict() == {
        "missing value": 1, "unknown reference: not in accounts.account_id; 7 rows in all": 5,
        "unparseable date": 2}


def test_lazy_lake_without_required_column(sample, tmp_path):
    folder = tmp_path / "nocol"
    folder.mkdir()
    sample.accounts.to_parquet(folder / "accounts.parquet", index=False)
    sample.transactions.drop(columns="revenue").to_parquet(folder / "transactions.parquet", index=False)
    with pytest.raises(SchemaError, match=r"column 'revenue': missing column: the table has account_id, date"):
        kt.load(folder, engine="duckdb")


def test_lazy_validation_warns_like_pandas(lake, sample):
    neg = sample.transactions["revenue"] < 0
    n, total = int(neg.sum()), sample.transactions.loc[neg, "revenue"].sum()
    with pytest.warns(DataWarning, match=rf"transactions: {n} row\(s\) have negative revenue \(credit notes\) "
                      rf"totalling {total:,.2f}"):
        kt.load(lake, engine="duckdb")


# --------------------------------------------------------------------------- KPIs pushed down

CASES = [
    pytest.param("Q", None, "account", id="quarter-by-account"),
    pytest.param("M", "2025-05-20", "account", id="month-as-of-mid-month"),
    pytest.param("Y", None, "industry", id="year-by-industry"),
    pytest.param("Q", "2024-11-13", "portfolio", id="quarter-as-of-mid-quarter"),
]


@pytest.mark.parametrize(("period", "as_of", "by"), CASES)
def test_compute_on_duckdb_equals_pandas(sample, lazy, period, as_of, by):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KpiWarning)
        expected = kt.compute(sample, period=period, as_of=as_of, by=by)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataWarning)  # the invoice lines are never read into pandas
            got = kt.compute(lazy, period=period, as_of=as_of, by=by)
    assert expected["kpi"].nunique() == len(kt.kpis())
    assert_same_kpis(expected, got)


def test_duckdb_file_compute_equals_pandas(sample, duckdb_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = kt.load(duckdb_file, engine="duckdb")
    kpis = ["revenue", "gross_margin_pct", "churn_rate", "defection_risk", "key_account_price_premium"]
    assert_same_kpis(kt.compute(sample, kpis, period="Q", as_of="2025-08-17"),
                     kt.compute(data, kpis, period="Q", as_of="2025-08-17"))


def test_engine_duckdb_on_data_in_memory(sample):
    kpis = ["revenue", "product_breadth", "account_expansion_rate", "retention_rate"]
    assert_same_kpis(kt.compute(sample, kpis, period="Y"), kt.compute(sample, kpis, period="Y", engine="duckdb"))


def test_portfolio_revenue_is_the_sum_of_the_invoice_lines(sample, lazy):
    got = kt.compute(lazy, ["revenue"], by="portfolio", period="Y")
    tx = sample.transactions
    for year in (2021, 2025):  # by hand: the lines of the year
        want = tx.loc[tx["date"].dt.year == year, "revenue"].sum()
        value = got.loc[got["period"] == pd.Period(str(year), "Y"), "value"].item()
        assert value == pytest.approx(want, rel=1e-12)


def test_only_sums_reach_pandas(sample, lazy):
    as_of = pd.Timestamp("2025-08-17")
    ctx = kt.kpi.Context(lazy, "Q", as_of, pd.Timestamp("2021-01-01"))
    summed = ctx.table("transactions")
    lines = sample.transactions[sample.transactions["date"] <= as_of]
    assert summed["lines"].sum() == len(lines)
    assert len(summed) < len(lines) / 2  # at least twice fewer rows than lines on the sample
    assert summed["revenue"].sum() == pytest.approx(lines["revenue"].sum(), rel=1e-12)
    assert summed["quantity"].sum() == pytest.approx(lines["quantity"].sum(), rel=1e-12)
    # first and last dates per account are those of the lines
    span = summed.groupby("account_id").agg(first=("date", "min"), last=("last_date", "max"))
    want = lines.groupby("account_id")["date"].agg(first="min", last="max")
    pd.testing.assert_frame_equal(span, want, check_names=False)
    # one row per account, product and quarter, split only at the windows ending on as_of
    cuts = ctx.window_cuts()
    assert cuts == [pd.Timestamp("2025-02-18"), pd.Timestamp("2025-05-18")]
    seg = sum((summed["date"] >= c).astype(int) for c in cuts)
    assert not summed.assign(seg=seg, q=summed["period"], nocost=summed["cost"].isna()).duplicated(
        ["account_id", "product", "q", "seg", "nocost"]).any()


def test_line_level_kpi_is_left_out_on_duckdb_with_a_note(sample, lazy):
    spec = dict(name="Big lines", pillar="revenue", category="revenue", level="customer", timing="lagging",
                driver="financial", definition="Invoice lines of 10,000 or more.", formula="count of lines",
                unit="count", direction="higher", tables=("transactions",), provider="customer", cadence="Q",
                fill=0, replace=True)

    def big(ctx):
        tx = ctx.table("transactions")
        return ctx.per_account(tx[tx["revenue"] >= 10_000], how="count")

    def lines(ctx):
        return ctx.per_account(ctx.table("transactions"), "lines")

    try:
        kt.kpi.register("big_lines_test", **spec)(big)
        kt.kpi.register("lines_test", **{**spec, "name": "Lines"}, line_level=False)(lines)
        with pytest.warns(KpiWarning, match="big_lines_test .*on the DuckDB engine: the KPI looks at single"):
            got = kt.compute(lazy, ["big_lines_test", "lines_test"], period="Y")
        big_rows = got[got["kpi"] == "big_lines_test"]
        assert big_rows["value"].isna().all()
        assert big_rows["note"].str.contains("compute it with engine='pandas'").all()
        # the sum of `lines` counts invoice lines the same way on both engines
        want = kt.compute(sample, ["lines_test"], period="Y")
        assert_same_kpis(want, got[got["kpi"] == "lines_test"].reset_index(drop=True))
        a0001 = sample.transactions["account_id"] == "A0001"
        in_2023 = sample.transactions["date"].dt.year == 2023
        row = got[(got["kpi"] == "lines_test") & (got["entity"] == "A0001") & (got["period"] == pd.Period("2023"))]
        assert row["value"].item() == (a0001 & in_2023).sum()
        # and the line-level KPI works with the pandas engine
        assert kt.compute(sample, ["big_lines_test"], period="Y")["value"].notna().any()
    finally:
        kt.kpi.REGISTRY.pop("big_lines_test", None)
        kt.kpi.REGISTRY.pop("lines_test", None)


def test_catalogue_marks_no_builtin_kpi_line_level():
    cat = kt.kpis()
    assert not cat.loc[cat["builtin"], "line_level"].any()


# --------------------------------------------------------------------------- the command line


def test_cli_validate_keeps_a_lake_in_duckdb(lake, sample):
    from click.testing import CliRunner

    from kamtools.cli import main

    result = CliRunner().invoke(main, ["validate", str(lake), "--engine", "duckdb"])
    assert result.exit_code == 0, result.output
    assert "engine        duckdb (transactions/ (Parquet, 5 files) stays in DuckDB)" in result.output
    assert f"transactions   {SAMPLE_LINES}        6  2021-01-01  2025-12-31" in result.output


def test_cli_validate_names_the_bad_records_of_a_lake(sample, tmp_path):
    from click.testing import CliRunner

    from kamtools.cli import main

    result = CliRunner().invoke(main, ["validate", str(_bad_lake(sample, tmp_path)), "--engine", "duckdb"])
    assert result.exit_code == 1
    assert "column 'date': unparseable date" in result.output
    assert "part-0.parquet, record 4" in result.output


def test_any_table_may_be_a_folder_of_parquet_files(sample, tmp_path):
    folder = sample.to_folder(tmp_path / "lake", format="parquet")
    parts = folder / "interactions"
    parts.mkdir()
    ix = sample.interactions
    ix.iloc[:5000].to_parquet(parts / "part-0.parquet", index=False)
    ix.iloc[5000:].to_parquet(parts / "part-1.parquet", index=False)
    (folder / "interactions.parquet").unlink()
    (folder / "archive").mkdir()  # a folder not named after a table is not ours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = kt.load(folder, engine="duckdb")
    pd.testing.assert_frame_equal(data.interactions, ix)
    assert list(data.lazy) == ["transactions"]


def test_duckdb_url_stays_in_duckdb(duckdb_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        assert kt.load(f"duckdb:///{duckdb_file}", engine="duckdb").engine == "duckdb"


def test_lazy_data_pickles_without_its_connection(lazy, sample):
    import pickle

    again = pickle.loads(pickle.dumps(lazy))  # e.g. to a worker process
    assert again.engine == "duckdb"
    assert_same_kpis(kt.compute(sample, ["revenue"], period="Y"), kt.compute(again, ["revenue"], period="Y"))


def test_missing_costs_quantities_and_products_sum_alike(tmp_path):
    """Lines without a cost, a quantity or a product are kept apart in the sums, as the lines are in pandas."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = kt.sample.generate(n_accounts=60, seed=3)
        tx = data.transactions.copy()
        rng = np.random.default_rng(0)
        for col, share in (("cost", 0.1), ("quantity", 0.1), ("product", 0.05)):
            tx.loc[rng.random(len(tx)) < share, col] = None
        holed = kt.KamData({**data.tables, "transactions": tx}, currency="EUR")
        holed.to_folder(tmp_path / "lake", format="parquet")
        lazy = kt.load(tmp_path / "lake", engine="duckdb")
        expected = kt.compute(holed, period="Q", as_of="2025-06-11")
        got = kt.compute(lazy, period="Q", as_of="2025-06-11")
    assert tx["cost"].isna().sum() > 100 and tx["product"].isna().sum() > 50
    assert_same_kpis(expected, got)
    # margins leave the uncosted lines out of both sides
    gm = got[(got["kpi"] == "gross_margin_pct") & got["value"].notna()]
    costed = tx[tx["cost"].notna()]
    one = gm.iloc[0]
    lines = costed[(costed["account_id"] == one["entity"]) & (costed["date"].dt.to_period("Q") == one["period"])]
    assert one["value"] == pytest.approx((lines["revenue"] - lines["cost"]).sum() / lines["revenue"].sum(), rel=1e-12)


def test_the_same_sums_are_not_asked_of_duckdb_twice(lake, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = kt.load(lake, engine="duckdb")
    table = data.lazy["transactions"]
    asked = []
    run = table.sql
    monkeypatch.setattr(table, "sql", lambda q, p=None, **kw: (asked.append(q), run(q, p, **kw))[1])
    summing = lambda: sum("date_trunc" in q for q in asked)  # noqa: E731
    first = kt.compute(data, ["revenue", "gross_margin"], period="Q")
    assert summing() == 1
    again = kt.compute(data, ["revenue", "product_breadth"], period="Q")  # same period and as_of: from the cache
    assert summing() == 1
    pd.testing.assert_frame_equal(first[first["kpi"] == "revenue"].reset_index(drop=True),
                                  again[again["kpi"] == "revenue"].reset_index(drop=True))
    kt.compute(data, ["revenue"], period="Y")  # another period length: summed anew
    assert summing() == 2


# --------------------------------------------------------------------------- what a second read found
# Small hand-made logs on which the engines once disagreed, or the SQL checks let through what pandas refuses.

ACC = pd.DataFrame({"account_id": ["A1", "A2"], "account_name": ["Acme", "Bolt"], "is_key_account": [True, False]})


def _lake(tmp_path, tx: pd.DataFrame, *, name="lake", partition_by=None) -> "Path":
    folder = tmp_path / name
    folder.mkdir()
    ACC.to_parquet(folder / "accounts.parquet", index=False)
    if partition_by:
        con = duckdb.connect()
        con.register("tx", tx)
        con.execute(f"COPY tx TO '{folder / 'transactions'}' (FORMAT parquet, PARTITION_BY ({partition_by}))")
        con.close()
    else:
        tx.to_parquet(folder / "transactions.parquet", index=False)
    return folder


def _both(folder, kpis, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (kt.compute(kt.load(folder, engine="pandas"), kpis, **kw),
                kt.compute(kt.load(folder, engine="duckdb"), kpis, **kw))


def _schema_error(folder, engine) -> str:
    with pytest.raises(SchemaError) as err:
        kt.load(folder, engine=engine)
    return str(err.value)


def test_nan_in_a_parquet_double_is_missing_on_both_engines(tmp_path):
    tx = pd.DataFrame({"account_id": ["A1", "A1"], "date": pd.to_datetime(["2024-01-05", "2024-01-20"]),
                       "product": ["P1", "P1"], "revenue": [100.0, 50.0], "cost": [60.0, np.nan]})
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = _lake(tmp_path, tx)
    table = pa.Table.from_pandas(tx, preserve_index=False)  # a NaN, not a null, as Spark or polars write it
    table = table.set_column(4, "cost", pa.array([60.0, float("nan")], from_pandas=False))
    pq.write_table(table, folder / "transactions.parquet")
    pandas_way, duckdb_way = _both(folder, ["revenue", "gross_margin", "gross_margin_pct"], period="Q")
    assert_same_kpis(pandas_way, duckdb_way)
    got = duckdb_way.set_index("kpi")["value"]
    assert got["gross_margin"] == 40.0 and got["gross_margin_pct"] == 0.4  # the costed line only: (100 - 60) / 100


def test_a_product_credited_back_in_full_is_not_bought(tmp_path):
    # 0.1 + 0.2 - 0.3 is 0.0 or 2.8e-17 depending on the order of the additions: never a product bought
    tx = pd.DataFrame({"account_id": "A1", "date": pd.to_datetime(["2023-01-15", "2023-02-20", "2023-03-03",
                                                                    "2023-03-31"]),
                       "product": ["P1", "P2", "P2", "P2"], "revenue": [100.0, 0.1, 0.2, -0.3],
                       "cost": [60.0, 0.05, np.nan, -0.1]})
    pandas_way, duckdb_way = _both(_lake(tmp_path, tx), ["product_breadth"], period="Q")
    assert pandas_way["value"].tolist() == duckdb_way["value"].tolist() == [1.0]


def test_equal_revenue_is_not_falling(tmp_path):
    # January 5.19; February 0.28 + 2.28 + 2.63, also 5.19 (or 5.1899999999999995, by the order of addition)
    tx = pd.DataFrame({"account_id": "A1", "date": pd.to_datetime(["2024-01-10", "2024-02-02", "2024-02-04",
                                                                    "2024-02-06"]),
                       "revenue": [5.19, 0.28, 2.28, 2.63], "cost": [1.0, 0.1, None, 0.1]})
    data = kt.KamData({"accounts": ACC, "transactions": tx,
                       "surveys": pd.DataFrame({"account_id": ["A1"], "date": ["2024-01-15"], "nps": [9]}),
                       "interactions": pd.DataFrame({"account_id": ["A1", "A1"], "date": ["2024-01-20", "2024-02-20"],
                                                     "kind": ["executive_meeting"] * 2, "attended": [True, True]}),
                       "tickets": pd.DataFrame({"ticket_id": ["T1"], "account_id": ["A1"], "opened": ["2024-01-03"],
                                                "resolved": ["2024-01-04"], "severity": ["low"]})}, currency="EUR")
    for engine in ("pandas", "duckdb"):
        got = kt.compute(data, ["defection_risk"], period="M", as_of="2024-02-29", engine=engine)
        feb = got.loc[(got["entity"] == "A1") & (got["period"] == pd.Period("2024-02")), "value"].item()
        assert feb == 0.0, engine  # no warning sign applies: same revenue, met, NPS 9, no open ticket


def test_two_headers_for_one_column_are_refused(tmp_path):
    tx = pd.DataFrame({"account_id": ["A1"], "date": pd.to_datetime(["2024-01-05"]), "Revenue": [3.0],
                       " revenue": [100.0]})
    for engine in ("pandas", "duckdb"):
        assert "column 'revenue': duplicate column" in _schema_error(_lake(tmp_path, tx, name=engine), engine)


@pytest.mark.parametrize("dates", [
    pytest.param(pd.to_datetime(["2024-01-05 10:00"]).tz_localize("Europe/Berlin").as_unit("ns"), id="timestamptz-ns"),
    pytest.param(pd.to_datetime(["2024-01-05 10:00"]).tz_localize("UTC").as_unit("us"), id="timestamptz-us"),
    pytest.param(["2024-01-05 23:30:00-05:00"], id="text-with-offset"),
])
def test_dates_with_a_time_zone_are_refused(tmp_path, dates):
    tx = pd.DataFrame({"account_id": ["A1"], "date": dates, "revenue": [3.0]})
    for engine in ("pandas", "duckdb"):
        assert "column 'date': timezone-aware date" in _schema_error(_lake(tmp_path, tx, name=engine), engine)


def test_text_dates_and_numbers_are_read_as_pandas_reads_them(tmp_path):
    tx = pd.DataFrame({"account_id": [1.0, 2.0], "date": ["20240105", "2024-02-05"], "revenue": ["3.5", "NaN"]})
    acc = ACC.assign(account_id=["1", "2"])
    folder = _lake(tmp_path, tx)
    acc.to_parquet(folder / "accounts.parquet", index=False)
    for engine in ("pandas", "duckdb"):
        msg = _schema_error(folder, engine)  # ids 1.0 and 2.0 are accounts "1" and "2"; 20240105 is a date
        assert "column 'revenue': not a number" in msg and "'NaN'" in msg
        assert "account_id" not in msg and "column 'date'" not in msg
    tx = pd.DataFrame({"account_id": ["A1"], "date": ["2024-01-05"], "revenue": [True]})
    for engine in ("pandas", "duckdb"):
        assert "column 'revenue': not a number" in _schema_error(_lake(tmp_path, tx, name=f"b{engine}"), engine)


def test_a_column_named_filename_is_data(tmp_path):
    tx = pd.DataFrame({"account_id": ["A1"], "date": pd.to_datetime(["2024-01-05"]), "revenue": [3.0],
                       "filename": ["inv-1.pdf"], "file_row_number": [7]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = kt.load(_lake(tmp_path, tx), engine="duckdb")
    assert data.summary().tables.loc["transactions", "columns"] == 5
    assert data.transactions["filename"].tolist() == ["inv-1.pdf"]


@pytest.mark.parametrize("keep", [True, False], ids=["key-also-in-files", "key-only-in-the-path"])
def test_hive_partitions_on_a_column_of_the_model(tmp_path, keep):
    tx = pd.DataFrame({"account_id": ["A1", "A1", "A2"], "date": pd.to_datetime(["2024-01-05", "2024-02-05",
                                                                                  "2024-03-05"]),
                       "product": ["P", "Q", "P"], "revenue": [1.0, 2.0, 4.0]})
    folder = _lake(tmp_path, tx, partition_by="product")
    if keep:  # rewrite each file with the product inside too
        for f in (folder / "transactions").rglob("*.parquet"):
            pd.read_parquet(f).assign(product=f.parent.name.split("=")[1]).to_parquet(f, index=False)
    pandas_way, duckdb_way = _both(folder, ["revenue", "product_breadth"], period="Y", by="portfolio")
    assert_same_kpis(pandas_way, duckdb_way)
    assert duckdb_way.set_index("kpi")["value"].to_dict() == {"revenue": 7.0, "product_breadth": 1.5}


def test_load_warnings_are_the_same_on_both_engines(sample, tmp_path):
    ended = kt.schema.contracts_ended(sample.contracts).iloc[0]
    late = sample.transactions[sample.transactions["account_id"] == ended["account_id"]].iloc[[0]]
    late = late.assign(date=ended["last_end"] + pd.Timedelta(days=30))  # bought after its last contract ended
    tx = pd.concat([sample.transactions, sample.transactions.iloc[[5]], late], ignore_index=True)  # + a double export
    folder = kt.KamData({**sample.tables, "transactions": tx}, currency="EUR").to_folder(tmp_path / "f",
                                                                                         format="parquet")
    said = {}
    for engine in ("pandas", "duckdb"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            kt.load(folder, engine=engine)
        said[engine] = sorted(str(w.message) for w in caught if w.category is DataWarning and "reading" not in
                              str(w.message))
    assert said["pandas"] == said["duckdb"]
    assert any("1 row(s) are exact duplicates" in m for m in said["duckdb"])
    assert any("1 row(s) for 1 account(s) are dated after the account's last contract ended" in m
               for m in said["duckdb"])


def test_a_duckdb_file_is_not_kept_locked(duckdb_file, sample, tmp_path):
    import shutil

    path = tmp_path / "crm.duckdb"
    shutil.copy(duckdb_file, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = kt.load(path, engine="duckdb")
        kt.compute(data, ["revenue"], period="Y")
        con = duckdb.connect(str(path))  # a writer, e.g. tonight's export, while the data set is in use
        con.execute("CREATE TABLE tonight AS SELECT 1 AS x")
        con.close()
        assert data.summary().tables.loc["transactions", "rows"] == SAMPLE_LINES  # and it reads on


def test_error_rows_name_the_file_when_the_lake_is_the_current_folder(sample, tmp_path, monkeypatch):
    tx = pd.DataFrame({"account_id": ["A1", "A1"], "date": ["2024-01-05", "x"], "revenue": [1.0, 2.0]})
    monkeypatch.chdir(_lake(tmp_path, tx))
    assert "row transactions.parquet, record 2 (values: 'x')" in _schema_error(".", "duckdb")


def test_a_duckdb_file_without_transactions_says_the_table_is_missing(sample, tmp_path):
    con = duckdb.connect(str(tmp_path / "crm.duckdb"))
    con.register("a", sample.accounts)
    con.execute("CREATE TABLE accounts AS SELECT * FROM a")
    con.close()
    assert "table 'transactions': missing table" in _schema_error(tmp_path / "crm.duckdb", "duckdb")


def test_compute_duckdb_on_dataframes_with_odd_extra_columns(sample):
    tables = {"accounts": ACC, "transactions": pd.DataFrame({
        "account_id": ["A1", "A2"], "date": ["2024-01-05", "2024-02-05"], "revenue": ["3", "4"],
        "month": pd.PeriodIndex(["2024-01", "2024-02"], freq="M")})}  # a type DuckDB does not know
    got = kt.compute(tables, ["revenue"], by="portfolio", period="Y", engine="duckdb")
    assert got["value"].tolist() == [7.0]
