"""The kamtools command: sample and validate."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import write_folder

import kamtools as kt
from kamtools.cli import main

ROOT = Path(__file__).parents[1]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_sample_writes_a_loadable_portfolio_with_its_truth(tmp_path):
    out = tmp_path / "s"
    result = run("sample", "--out", out, "--accounts", 20, "--seed", 3)
    assert result.exit_code == 0, result.output
    assert "Wrote the sample portfolio (seed 3)" in result.output
    assert "accounts      20" in result.output
    data = kt.load(out)
    assert data == kt.sample.generate(n_accounts=20, seed=3)
    truth = json.loads((out / "truth.json").read_text())
    assert truth["seed"] == 3 and truth["n_accounts"] == 20


def test_sample_refuses_to_overwrite_without_force(tmp_path):
    assert run("sample", "--out", tmp_path, "--accounts", 10).exit_code == 0
    again = run("sample", "--out", tmp_path, "--accounts", 10)
    assert again.exit_code == 1
    assert "Pass overwrite=True" in again.output or "exist already" in again.output
    assert run("sample", "--out", tmp_path, "--accounts", 10, "--force").exit_code == 0


def test_sample_rejects_too_few_accounts(tmp_path):
    result = run("sample", "--out", tmp_path, "--accounts", 3)
    assert result.exit_code == 2
    assert "Invalid value for '--accounts'" in result.output


def test_validate_reports_the_committed_sample_as_clean():
    result = run("validate", ROOT / "data" / "sample")
    assert result.exit_code == 0, result.output
    assert f"{ROOT / 'data' / 'sample'}: valid" in result.output
    assert "accounts      200" in result.output
    assert f"fingerprint   {kt.sample.load().fingerprint[:16]}" in result.output


def test_validate_bad_data_exits_1_with_every_problem(tmp_path, tiny):
    tiny["transactions"].loc[0, "revenue"] = "n/a"
    tiny["surveys"].loc[1, "csat"] = "7"
    result = run("validate", write_folder(tmp_path, tiny))
    assert result.exit_code == 1
    assert "INVALID" in result.output
    assert "table 'transactions' (transactions.csv), column 'revenue': not a number\n    row 2 (values: 'n/a')" in result.output
    assert "table 'surveys' (surveys.csv), column 'csat': out of range: between 1 and 5" in result.output
    assert "Traceback" not in result.output


def test_validate_with_column_mapping(tmp_path, tiny):
    tiny["transactions"] = tiny["transactions"].rename(columns={"revenue": "Net Sales"})
    folder = write_folder(tmp_path, tiny)
    assert run("validate", folder).exit_code == 1
    ok = run("validate", folder, "--columns", '{"transactions": {"Net Sales": "revenue"}}')
    assert ok.exit_code == 0, ok.output
    bad = run("validate", folder, "--columns", "{not json")
    assert bad.exit_code == 2 and "not valid JSON" in bad.output


def test_validate_prints_warnings(tmp_path, tiny):
    tiny["transactions"].loc[0, "revenue"] = "-100"
    result = run("validate", write_folder(tmp_path, tiny))
    assert result.exit_code == 0
    assert "1 warning(s)" in result.output
    assert "negative revenue (credit notes) totalling -100.00" in result.output


def test_validate_missing_source():
    result = run("validate", "no/such/folder")
    assert result.exit_code == 1
    assert "No such file or folder: 'no/such/folder'" in result.output
