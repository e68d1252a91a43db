"""Notebooks are committed clean: no outputs, no execution counts, no saved widget state.

Every ``.ipynb`` under ``notebooks/`` and ``templates/`` is checked. To clean one:
``jupyter nbconvert --clear-output --inplace NOTEBOOK`` (and, if JupyterLab saved widget
state, uncheck Settings > Save Widget State Automatically and save again).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FOLDERS = ("notebooks", "templates")


def notebooks() -> list[Path]:
    return sorted(
        p for folder in FOLDERS for p in (ROOT / folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
    )


def problems(nb: dict) -> list[str]:
    """What makes a notebook not clean, one message per cell or field."""
    out = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            out.append(f"cell {i}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            out.append(f"cell {i}: execution_count {cell['execution_count']}")
    if "widgets" in nb.get("metadata", {}):
        out.append("metadata.widgets: saved widget state")
    return out


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = problems(nb)
    assert found == [], (
        f"{path.relative_to(ROOT)} is not clean: {'; '.join(found)}. "
        f"Run: jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)}"
    )


def test_the_notebooks_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in notebooks()}
    assert "notebooks/01_kpi_explorer.ipynb" in names


def _code(**kw):
    return {"cell_type": "code", "source": "1 + 1", "metadata": {}, "outputs": [], "execution_count": None, **kw}


@pytest.mark.parametrize(
    "nb,expected",
    [
        ({"cells": [_code(), {"cell_type": "markdown", "source": "x", "metadata": {}}], "metadata": {}}, []),
        ({"cells": [_code(execution_count=3)], "metadata": {}}, ["cell 0: execution_count 3"]),
        (
            {"cells": [_code(), _code(outputs=[{"output_type": "stream", "name": "stdout", "text": "2\n"}])],
             "metadata": {}},
            ["cell 1: 1 output(s)"],
        ),
        ({"cells": [], "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {}}}},
         ["metadata.widgets: saved widget state"]),
    ],
    ids=["clean", "execution-count", "outputs", "widget-state"],
)
def test_problems_names_what_is_not_clean(nb, expected):
    assert problems(nb) == expected
