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
    assert "hive" not in repr(lazy.lazy["transactions"])
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
    monkeypatch.setattr(table, "sql", lambda q, p=None: (asked.append(q), run(q, p))[1])
    summing = lambda: sum("date_trunc" in q for q in asked)  # noqa: E731
    first = kt.compute(data, ["revenue", "gross_margin"], period="Q")
    assert summing() == 1
    again = kt.compute(data, ["revenue", "product_breadth"], period="Q")  # same period and as_of: from the cache
    assert summing() == 1
    pd.testing.assert_frame_equal(first[first["kpi"] == "revenue"].reset_index(drop=True),
                                  again[again["kpi"] == "revenue"].reset_index(drop=True))
    kt.compute(data, ["revenue"], period="Y")  # another period length: summed anew
    assert summing() == 2
