"""Loading and writing: every source kind, round trips, atomic writes."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

import kamtools as kt
from kamtools.exceptions import SchemaError, SourceError

WRITERS = {
    "csv": lambda d, p: d.to_folder(p / "csv", format="csv"),
    "parquet": lambda d, p: d.to_folder(p / "pq", format="parquet"),
    "xlsx": lambda d, p: d.to_excel(p / "crm.xlsx"),
    "sqlite": lambda d, p: d.to_sql(p / "crm.sqlite"),
    "sqlite-url": lambda d, p: d.to_sql(f"sqlite:///{p / 'crm.db'}"),
    "duckdb": lambda d, p: d.to_sql(p / "crm.duckdb"),
    "duckdb-url": lambda d, p: d.to_sql(f"duckdb:///{p / 'other.duckdb'}"),
}


def assert_same(a: kt.KamData, b: kt.KamData):
    assert list(a.tables) == list(b.tables)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True, obj=name)
    assert a.currency == b.currency
    assert a.fingerprint == b.fingerprint


@pytest.fixture
def tiny_data(tiny):
    return kt.load(tiny, currency="EUR")


@pytest.mark.parametrize("kind", list(WRITERS))
def test_round_trip_tiny(tmp_path, tiny_data, kind):
    target = WRITERS[kind](tiny_data, tmp_path)
    assert_same(tiny_data, kt.load(target))


@pytest.mark.parametrize("kind", list(WRITERS))
def test_round_trip_sample(tmp_path, small_sample, kind):
    target = WRITERS[kind](small_sample, tmp_path)
    assert_same(small_sample, kt.load(target))


def test_fingerprint_changes_with_any_value(tiny_data, tiny):
    tiny["transactions"].loc[2, "revenue"] = "300.01"
    assert kt.load(tiny, currency="EUR").fingerprint != tiny_data.fingerprint
    assert kt.load(tiny, currency="USD").fingerprint != kt.load(tiny, currency="EUR").fingerprint


def test_summary(tiny_data):
    s = tiny_data.summary()
    assert (s.accounts, s.key_accounts, s.currency) == (3, 2, "EUR")
    assert s.first_date == pd.Timestamp("2022-01-01")  # the first contract start
    assert s.last_date == pd.Timestamp("2023-08-20")  # the last invoice
    assert s.tables.loc["transactions", "rows"] == 5
    assert s.tables.loc["transactions", "first_date"] == pd.Timestamp("2023-01-15")
    assert "accounts      3 (2 key accounts)" in str(s)


def test_subset_keeps_only_the_accounts_asked_for(tiny_data):
    sub = tiny_data.subset(["A3"])
    for name, df in sub.tables.items():
        if "account_id" in df.columns:
            assert set(df["account_id"]) == {"A3"}, name
    assert sub.managers["manager_id"].tolist() == ["M1"]
    assert sub.transactions["revenue"].sum() == 800 + 950
    with pytest.raises(SchemaError, match=r"subset: 1 account id\(s\) not in accounts.account_id: 'A7'"):
        tiny_data.subset(["A3", "A7"])


def test_writers_refuse_to_overwrite(tmp_path, tiny_data):
    tiny_data.to_folder(tmp_path / "out")
    with pytest.raises(SourceError, match=r"file\(s\) exist already in .*Pass overwrite=True"):
        tiny_data.to_folder(tmp_path / "out")
    tiny_data.to_folder(tmp_path / "out", overwrite=True)
    tiny_data.to_sql(tmp_path / "x.sqlite")
    with pytest.raises(SourceError, match="exists already"):
        tiny_data.to_sql(tmp_path / "x.sqlite")


def test_failed_write_leaves_no_file(tmp_path, tiny_data, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_excel", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        tiny_data.to_excel(tmp_path / "crm.xlsx")
    assert list(tmp_path.iterdir()) == []  # neither the workbook nor a temporary file


def test_sqlite_database_with_other_tables_and_upper_case_names(tmp_path, tiny):
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as con:
        tiny["accounts"].to_sql("ACCOUNTS", con, index=False)
        tiny["transactions"].to_sql("Transactions", con, index=False)
        pd.DataFrame({"x": [1]}).to_sql("audit_log", con, index=False)
    data = kt.load(path)
    assert list(data.tables) == ["accounts", "transactions"]
    assert data.transactions["revenue"].sum() == pytest.approx(4550.5)


def test_sql_errors_name_the_rows(tmp_path, tiny):
    tiny["transactions"].loc[3, "revenue"] = "lots"
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as con:
        for name, df in tiny.items():
            df.to_sql(name, con, index=False)
    with pytest.raises(SchemaError, match=r"table 'transactions' \(crm.db, table transactions\), column 'revenue': not a number\n    row 4"):
        kt.load(path)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nowhere/at/all", r"No such file or folder: 'nowhere/at/all'"),
        ("pyproject.toml", r"'pyproject.toml' is not a kind of source kamtools reads"),
        ("sqlite:///:memory:", r"sqlite:///:memory: has none of the kamtools tables"),
        ("nosuchdriver://host/db", r"Cannot read the database nosuchdriver://host/db"),
    ],
)
def test_bad_sources(source, message):
    with pytest.raises(SourceError, match=message):
        kt.load(source)


def test_folder_with_two_files_for_one_table(tmp_path, tiny_data):
    tiny_data.to_folder(tmp_path, format="csv")
    tiny_data.to_folder(tmp_path, format="parquet", overwrite=True)
    with pytest.raises(SchemaError, match=r"table 'accounts' \(.*\): more than one file for the table: accounts.csv, accounts.parquet"):
        kt.load(tmp_path)


def test_currency_conflict(tmp_path, tiny_data):
    tiny_data.to_folder(tmp_path)
    assert kt.load(tmp_path).currency == "EUR"
    with pytest.raises(SourceError, match=r"says its currency is EUR, but currency='USD' was passed"):
        kt.load(tmp_path, currency="USD")
