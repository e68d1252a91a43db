"""The KPI catalogue: every KAM measure as a spec plus a function.

>>> import kamtools as kt
>>> kt.kpis(pillar="revenue").loc["revenue", "name"]
'Revenue'

``kt.compute(data, kpis, by=..., period=...)`` computes them, all accounts at
once; :func:`register` adds your own. The built-ins live in one module per
3R+1 pillar (``relationships``, ``revenue``, ``retention``, ``learning``) and
``portfolio`` for measures of the account portfolio as a whole.
"""

from kamtools.kpi import learning, portfolio, relationships, retention, revenue  # noqa: F401  (registers the built-ins)
from kamtools.kpi._compute import KpiWarning, benchmark, compute, wide
from kamtools.kpi._context import Context
from kamtools.kpi._registry import CATEGORIES, KPI, PILLARS, REGISTRY, get, kpis, register

__all__ = [
    "KPI", "Context", "KpiWarning", "PILLARS", "CATEGORIES", "REGISTRY",
    "benchmark", "compute", "get", "kpis", "register", "wide",
]
