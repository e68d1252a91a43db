"""kamtools: measure Key Account Management in Jupyter.

The public API is small and imported lazily, so ``import kamtools`` stays fast:
statsmodels, matplotlib, ipywidgets and papermill load only when a function
that needs them is called.

>>> import kamtools as kt
>>> data = kt.sample.load()          # the bundled sample portfolio
>>> data.summary().key_accounts
40
"""

from __future__ import annotations

import importlib

from kamtools._version import __version__
from kamtools.exceptions import DataWarning, KamtoolsError, ParameterError, SchemaError, SourceError

# ``kt.scorecard`` is the function (with ``kt.scorecard.backtest`` on it). It is bound
# eagerly so that the submodule of the same name can never shadow it; the module is light.
from kamtools.scorecard import scorecard

# name -> (module, attribute or None for the module itself)
_LAZY = {
    "KamData": ("kamtools.data", "KamData"),
    "load": ("kamtools.io", "load"),
    "io": ("kamtools.io", None),
    "lazy": ("kamtools.lazy", None),
    "schema": ("kamtools.schema", None),
    "sample": ("kamtools.sample", None),
    "periods": ("kamtools.periods", None),
    "kpi": ("kamtools.kpi", None),
    "kpis": ("kamtools.kpi", "kpis"),
    "compute": ("kamtools.kpi", "compute"),
    "check_kpi_set": ("kamtools.scorecard", "check_kpi_set"),
    "plots": ("kamtools.plots", None),
    "retention": ("kamtools.retention", None),
    "roi": ("kamtools.roi", None),
    "clv": ("kamtools.clv", None),
    "report": ("kamtools.report", None),
    "widgets": ("kamtools.widgets", None),
}

__all__ = [
    "__version__",
    "KamtoolsError",
    "SchemaError",
    "SourceError",
    "ParameterError",
    "DataWarning",
    "scorecard",
    *_LAZY,
]


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'kamtools' has no attribute '{name}'") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
