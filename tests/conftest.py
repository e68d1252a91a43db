"""Shared fixtures: a tiny, hand-written data set as raw (string) tables."""

from __future__ import annotations

import pandas as pd
import pytest


def _tiny() -> dict[str, pd.DataFrame]:
    return {
        "accounts": pd.DataFrame(
            {
                "account_id": ["A1", "A2", "A3"],
                "account_name": ["Acme", "O'Brien & Sons", "Bolt"],
                "industry": ["Chemicals", "Retail", "Retail"],
                "is_key_account": ["true", "false", "true"],
                "kam_start": ["2023-04-01", "", "2023-07-01"],
                "manager_id": ["M1", "M2", "M1"],
                "wallet_size": ["100000", "50000", "80000"],
            }
        ),
        "managers": pd.DataFrame(
            {"manager_id": ["M1", "M2"], "name": ["Ana", "Ben"], "start_date": ["2019-01-01", "2023-01-01"]}
        ),
        "transactions": pd.DataFrame(
            {
                "account_id": ["A1", "A1", "A2", "A3", "A3"],
                "date": ["2023-01-15", "2023-05-02", "2023-02-10", "2023-03-01", "2023-08-20"],
                "product": ["P1", "P2", "P1", "P1", "P3"],
                "revenue": ["1000", "1500.5", "300", "800", "950"],
                "cost": ["600", "900", "200", "500", "400"],
            }
        ),
        "contracts": pd.DataFrame(
            {
                "contract_id": ["K1", "K2"],
                "account_id": ["A1", "A3"],
                "start": ["2022-01-01", "2022-06-01"],
                "end": ["2024-12-31", "2024-05-31"],
                "value": ["30000", "20000"],
                "outcome": ["active", "renewed"],
            }
        ),
        "surveys": pd.DataFrame(
            {"account_id": ["A1", "A3"], "date": ["2023-06-30", "2023-06-30"], "nps": ["9", "6"], "csat": ["5", "3"]}
        ),
    }


@pytest.fixture
def tiny() -> dict[str, pd.DataFrame]:
    """Raw tables as a CSV export gives them: every value a string."""
    return _tiny()


def write_folder(path, tables: dict[str, pd.DataFrame]):
    """Write raw tables as CSV files named after them; return the folder."""
    path.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(path / f"{name}.csv", index=False)
    return path


@pytest.fixture(scope="session")
def small_sample():
    """A small generated portfolio (fast to write in every format)."""
    from kamtools import sample

    return sample.generate(n_accounts=20, seed=3)


def dying_template(path: Path, marks: Path) -> Path:
    """A light report template: counts its runs per account in ``marks``; A0004's kernel kills its worker process
    (a Dask worker, a process of the local pool) on the first run, A0005's on every run; A0002 raises."""
    import nbformat

    from kamtools import report as kr

    params = "\n".join(f'{name}: str = ""' for name in kr.template_parameters().index)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import os, pathlib, signal\n"
            f"mark = pathlib.Path({str(marks)!r}) / (account_id + '.runs')\n"
            "runs = int(mark.read_text()) + 1 if mark.exists() else 1\n"
            "mark.write_text(str(runs))\n"
            "if (account_id == 'A0004' and runs == 1) or account_id == 'A0005':\n"
            "    os.kill(os.getppid(), signal.SIGKILL)  # the kernel's parent is the worker process\n"
            "    os._exit(1)\n"
            "print('rendered', account_id, 'on run', runs)"
        ),
        nbformat.v4.new_code_cell('if account_id == "A0002":\n    raise ValueError("boom for " + account_id)'),
    ]
    nbformat.write(nb, path)
    return path
