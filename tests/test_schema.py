"""Validation: every kind of bad input gives one clear SchemaError."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from conftest import write_folder

import kamtools as kt
from kamtools.exceptions import DataWarning, SchemaError


def load_folder(tmp_path, tables, **kw):
    return kt.load(write_folder(tmp_path / "data", tables), **kw)


def failures(err: pytest.ExceptionInfo) -> pd.DataFrame:
    return err.value.failure_cases


def test_tiny_data_loads_typed(tmp_path, tiny):
    data = load_folder(tmp_path, tiny, currency="EUR")
    tx = data.transactions
    assert tx["revenue"].dtype == "float64"
    assert tx["date"].dtype == "datetime64[ns]"
    assert tx["revenue"].sum() == pytest.approx(1000 + 1500.5 + 300 + 800 + 950)
    assert data.accounts["is_key_account"].tolist() == [True, False, True]
    assert data.accounts["kam_start"].isna().tolist() == [False, True, False]
    assert data.surveys["nps"].dtype == "Int64"
    assert data.currency == "EUR"
    assert data.tickets is None


def test_missing_table(tmp_path, tiny):
    del tiny["transactions"]
    with pytest.raises(SchemaError, match=r"table 'transactions': missing table") as err:
        load_folder(tmp_path, tiny)
    assert "What to do: Add a file or sheet named 'transactions'" in str(err.value)
    assert failures(err)[["table", "check"]].values.tolist() == [
        ["transactions", "missing table: accounts and transactions are required"]
    ]


def test_missing_column_suggests_the_close_header(tmp_path, tiny):
    tiny["transactions"] = tiny["transactions"].rename(columns={"revenue": "revenu"})
    with pytest.raises(SchemaError, match=r"table 'transactions' \(transactions.csv\), column 'revenue': missing column") as err:
        load_folder(tmp_path, tiny)
    assert "did you mean 'revenu'?" in str(err.value)
    assert "columns={'transactions': {'Your header': 'revenue'}}" in str(err.value)


def test_column_mapping_and_header_normalisation(tmp_path, tiny):
    tiny["transactions"] = tiny["transactions"].rename(
        columns={"revenue": "Net", "date": " Invoice Date ", "account_id": "ACCOUNT_ID"}
    )
    data = load_folder(tmp_path, tiny, columns={"transactions": {"invoice date": "date", "NET": "revenue"}})
    assert data.transactions.columns[:3].tolist() == ["account_id", "date", "product"]
    assert data.transactions["revenue"].tolist() == [1000.0, 1500.5, 300.0, 800.0, 950.0]


def test_wrong_type_names_file_rows_and_values(tmp_path, tiny):
    tiny["transactions"].loc[1, "revenue"] = "1.500,50"  # European formatting: file row 3
    tiny["transactions"].loc[3, "revenue"] = "EUR 800"  # file row 5
    with pytest.raises(SchemaError, match=r"column 'revenue': not a number\n    2 rows: 3, 5 \(values: '1.500,50', 'EUR 800'\)") as err:
        load_folder(tmp_path, tiny)
    fc = failures(err)
    assert fc[["table", "column", "row"]].values.tolist() == [["transactions", "revenue", 3], ["transactions", "revenue", 5]]


def test_value_out_of_range(tmp_path, tiny):
    tiny["surveys"].loc[1, "nps"] = "11"
    tiny["surveys"].loc[0, "csat"] = "0"
    with pytest.raises(SchemaError, match=r"column 'nps': out of range: between 0 and 10\n    row 3 \(values: 11\)") as err:
        load_folder(tmp_path, tiny)
    assert set(failures(err)["column"]) == {"nps", "csat"}
    assert "column 'csat': out of range: between 1 and 5" in str(err.value)


def test_category_not_allowed(tmp_path, tiny):
    tiny["contracts"].loc[0, "outcome"] = "Renewed"
    with pytest.raises(SchemaError, match=r"column 'outcome': not allowed: one of renewed, renewed_after_rebid, lapsed, active"):
        load_folder(tmp_path, tiny)


def test_duplicate_key(tmp_path, tiny):
    tiny["accounts"].loc[2, "account_id"] = "A1"
    with pytest.raises(SchemaError, match=r"table 'accounts' \(accounts.csv\), column 'account_id': duplicate key\n    2 rows: 2, 4") as err:
        load_folder(tmp_path, tiny)
    fc = failures(err)
    assert fc.loc[fc["check"] == "duplicate key", "value"].tolist() == ["A1", "A1"]
    # A3 is gone from accounts, so its transactions are reported as orphans too
    assert fc.loc[fc["check"].str.startswith("unknown reference"), "value"].tolist() == ["A3", "A3", "A3", "A3"]


def test_orphan_account_id(tmp_path, tiny):
    tiny["transactions"].loc[4, "account_id"] = "A9"
    tiny["surveys"].loc[0, "account_id"] = "a1"  # case matters: ids are exact
    with pytest.raises(SchemaError, match=r"column 'account_id': unknown reference: not in accounts.account_id\n    row 6 \(values: 'A9'\)") as err:
        load_folder(tmp_path, tiny)
    assert set(map(tuple, failures(err)[["table", "row", "value"]].values.tolist())) == {("transactions", 6, "A9"), ("surveys", 2, "a1")}


def test_orphan_manager_only_checked_when_managers_given(tmp_path, tiny):
    tiny["accounts"].loc[0, "manager_id"] = "M7"
    with pytest.raises(SchemaError, match=r"column 'manager_id': unknown reference: not in managers.manager_id"):
        load_folder(tmp_path, tiny)
    del tiny["managers"]
    assert load_folder(tmp_path / "b", tiny).accounts.loc[0, "manager_id"] == "M7"


def test_unparseable_date(tmp_path, tiny):
    tiny["transactions"].loc[2, "date"] = "31/02/2023"
    with pytest.raises(SchemaError, match=r"column 'date': unparseable date\n    row 4 \(values: '31/02/2023'\)") as err:
        load_folder(tmp_path, tiny)
    assert "date_format=" in str(err.value)


def test_date_format_argument(tmp_path, tiny):
    tiny["transactions"]["date"] = ["15/01/2023", "02/05/2023", "10/02/2023", "01/03/2023", "20/08/2023"]
    for name in ("accounts", "managers", "contracts", "surveys"):
        for col in tiny[name].columns:
            if col in ("kam_start", "start_date", "start", "end", "date"):
                tiny[name][col] = pd.to_datetime(tiny[name][col]).dt.strftime("%d/%m/%Y").fillna("")
    data = load_folder(tmp_path, tiny, date_format="%d/%m/%Y")
    assert data.transactions["date"].iloc[1] == pd.Timestamp("2023-05-02")


def test_end_before_start(tmp_path, tiny):
    tiny["contracts"].loc[1, "end"] = "2022-05-31"
    with pytest.raises(SchemaError, match=r"table 'contracts' \(contracts.csv\), column 'end': end before start: 'end' is before 'start'\n    row 3 \(values: '2022-06-01 > 2022-05-31'\)"):
        load_folder(tmp_path, tiny)


def test_missing_value_in_required_column(tmp_path, tiny):
    tiny["transactions"].loc[0, "date"] = ""
    with pytest.raises(SchemaError, match=r"column 'date': missing value\n    row 2"):
        load_folder(tmp_path, tiny)


def test_bad_boolean(tmp_path, tiny):
    tiny["accounts"].loc[1, "is_key_account"] = "maybe"
    with pytest.raises(SchemaError, match=r"column 'is_key_account': not true/false\n    row 3 \(values: 'maybe'\)"):
        load_folder(tmp_path, tiny)


def test_every_problem_is_reported_at_once(tmp_path, tiny):
    tiny["transactions"].loc[0, "revenue"] = "x"
    tiny["surveys"].loc[0, "nps"] = "12"
    tiny["contracts"].loc[0, "start"] = "someday"
    with pytest.raises(SchemaError, match="in 3 place") as err:
        load_folder(tmp_path, tiny)
    assert sorted(failures(err)["table"]) == ["contracts", "surveys", "transactions"]


def test_empty_file(tmp_path, tiny):
    folder = write_folder(tmp_path / "data", tiny)
    (folder / "transactions.csv").write_text("")
    with pytest.raises(SchemaError, match=r"table 'transactions' \(transactions.csv\): the file is empty"):
        kt.load(folder)


def test_header_only_required_table(tmp_path, tiny):
    tiny["transactions"] = tiny["transactions"].iloc[0:0]
    with pytest.raises(SchemaError, match=r"table 'transactions' \(transactions.csv\): empty table"):
        load_folder(tmp_path, tiny)


def test_non_utf8_csv(tmp_path, tiny):
    folder = write_folder(tmp_path / "data", tiny)
    text = (folder / "accounts.csv").read_text().replace("Bolt", "Müller GmbH")
    (folder / "accounts.csv").write_bytes(text.encode("latin-1"))
    with pytest.raises(SchemaError, match=r"table 'accounts' \(accounts.csv\): the file is not valid utf-8 \(byte 0xfc\) at file row 4") as err:
        kt.load(folder)
    assert "encoding='cp1252'" in str(err.value)
    # and the advice works
    assert kt.load(folder, encoding="latin-1").accounts["account_name"].iloc[2] == "Müller GmbH"


def test_workbook_with_unknown_sheets(tmp_path, tiny):
    path = tmp_path / "crm.xlsx"
    with pd.ExcelWriter(path) as xw:
        for name, df in tiny.items():
            df.to_excel(xw, sheet_name=name, index=False)
        tiny["contracts"].to_excel(xw, sheet_name="Contrats", index=False)
        pd.DataFrame({"note": ["exported by hand"]}).to_excel(xw, sheet_name="Notes", index=False)
    with pytest.raises(SchemaError, match=r"table 'contrats' \(crm.xlsx, sheet 'Contrats'\): unknown table: did you mean 'contracts'\?") as err:
        kt.load(path)
    assert sorted(failures(err)["table"]) == ["contrats", "notes"]
    assert kt.load(path, ignore_unknown=True).contracts.shape == (2, 6)


def test_errors_are_value_errors_with_no_pandas_traceback(tmp_path, tiny):
    tiny["transactions"].loc[0, "revenue"] = "x"
    with pytest.raises(ValueError) as err:
        load_folder(tmp_path, tiny)
    assert isinstance(err.value, kt.KamtoolsError)
    assert err.value.__cause__ is None  # our message, not a chained pandas/pandera traceback


def test_mixed_currencies(tmp_path, tiny):
    tiny["transactions"]["currency"] = ["EUR", "EUR", "USD", "EUR", "EUR"]
    with pytest.raises(SchemaError, match=r"column 'currency': money must be in one currency per data set, found EUR, USD"):
        load_folder(tmp_path, tiny)
    tiny["transactions"]["currency"] = "eur"
    assert load_folder(tmp_path / "b", tiny).currency == "EUR"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t["transactions"].__setitem__("revenue", ["1000", "-150", "300", "800", "950"]),
         r"transactions: 1 row\(s\) have negative revenue \(credit notes\) totalling -150.00"),
        (lambda t: t.__setitem__("transactions", pd.concat([t["transactions"], t["transactions"].iloc[[0]]])),
         r"transactions: 1 row\(s\) are exact duplicates"),
        (lambda t: t["contracts"].__setitem__("outcome", ["lapsed", "renewed"]),
         r"transactions: 1 row\(s\) for 1 account\(s\) are dated after the account's last contract ended"),
        (lambda t: t["accounts"].__setitem__("kam_start", ["2023-04-01", "", ""]),
         r"accounts: 1 key account\(s\) have no kam_start"),
        (lambda t: t["transactions"].__setitem__("cost", ["600", "", "200", "500", "400"]),
         r"transactions: 1 row\(s\) have no cost \(revenue 1,500.50\); margin KPIs leave them out"),
    ],
    ids=["credit-notes", "duplicates", "after-contract", "key-without-start", "uncosted"],
)
def test_suspicious_data_warns_and_changes_nothing(tmp_path, tiny, change, expected):
    if expected.startswith("transactions: 1 row\\(s\\) for"):
        tiny["contracts"].loc[1, "end"] = "2023-07-31"  # A3 bought on 2023-08-20, after its only contract
    change(tiny)
    n_rows = len(tiny["transactions"])
    with pytest.warns(DataWarning, match=expected):
        data = load_folder(tmp_path, tiny)
    assert len(data.transactions) == n_rows


def test_clean_tiny_data_gives_no_warning(tmp_path, tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_folder(tmp_path, tiny)


def test_pandera_schema_is_usable_on_its_own():
    schema = kt.schema.pandera_schema("surveys")
    good = pd.DataFrame({"account_id": ["A1"], "date": pd.to_datetime(["2024-01-01"]).astype("datetime64[ns]"),
                         "nps": pd.array([7], dtype="Int64"), "csat": pd.array([4], dtype="Int64")})
    assert schema.validate(good).shape == (1, 4)
    import pandera.errors

    with pytest.raises(pandera.errors.SchemaError, match="between 0 and 10"):
        schema.validate(good.assign(nps=pd.array([12], dtype="Int64")))


def test_unknown_table_in_columns_argument(tiny):
    with pytest.raises(SchemaError, match=r"'transaction' is not a kamtools table. Did you mean 'transactions'\?"):
        kt.load(tiny, columns={"transaction": {"Net": "revenue"}})


def test_input_frames_are_not_mutated(tiny):
    before = {k: v.copy() for k, v in tiny.items()}
    kt.load(tiny)
    for name, df in tiny.items():
        pd.testing.assert_frame_equal(df, before[name])
