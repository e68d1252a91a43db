"""The KPI registry: one spec per KPI, registered with a decorator."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import pandas as pd

from kamtools.exceptions import ParameterError

PILLARS = ("relationships", "revenue", "retention", "learning")
CATEGORIES = (
    "revenue",
    "profitability",
    "customer_satisfaction",
    "engagement",
    "operational_efficiency",
    "market_penetration",
    "retention",
)
LEVELS = ("supplier", "customer", "interaction")
TIMINGS = ("leading", "lagging")
DRIVERS = ("financial", "relational", "process")
DIRECTIONS = ("higher", "lower")
GRAINS = ("account", "manager", "entity")
CADENCES = ("M", "Q", "Y")
DERIVES = ("growth", "change")


@dataclass(frozen=True)
class KPI:
    """What a KPI is and how to compute it.

    The fields answer the four questions a KAM performance framework asks of
    every measure: WHAT it means (``definition``), HOW it is computed
    (``formula``, ``unit``, ``direction``), WHO provides the input
    (``tables``, ``provider``) and WHEN it is reviewed (``cadence``). They
    also place it in the 3R+1 ``pillar``, one of seven ``category`` values, a
    ``level`` (supplier, customer or the interaction between them), as
    ``leading`` (an activity) or ``lagging`` (a result), and as results-driven
    (``financial``, ``relational``) or ``process``-driven.

    ``func(ctx)`` returns a frame with columns ``account_id`` (or
    ``manager_id`` for ``grain="manager"``, or ``entity`` for
    ``grain="entity"``), ``period``, ``num`` and optionally ``den``. Groups
    add up ``num`` and ``den``; the value is ``num / den`` (or ``num``).
    With ``fill=0`` the account-periods where an account is active but the
    function returned nothing count as zero. An optional ``note`` column says
    why a value is missing (e.g. "not final until 2025-12-31"); a group keeps
    the first note of its rows.
    """

    key: str
    name: str
    pillar: str
    category: str
    level: str
    timing: str
    driver: str
    definition: str
    formula: str
    unit: str
    direction: str
    tables: tuple[str, ...]
    provider: str
    cadence: str
    func: Callable | None = field(default=None, repr=False, compare=False)
    columns: tuple[str, ...] = ()  # optional columns needed, as "table.column"
    grain: str = "account"
    fill: float | None = None
    derive: tuple[str, str] | None = None  # ("growth" | "change", base KPI key)
    controllable: bool = True  # within the account manager's control
    line_level: bool = False  # looks at single invoice lines, not only sums by account, product and period
    builtin: bool = False

    def __post_init__(self):
        for name, allowed in [
            ("pillar", PILLARS), ("category", CATEGORIES), ("level", LEVELS), ("timing", TIMINGS),
            ("driver", DRIVERS), ("direction", DIRECTIONS), ("grain", GRAINS), ("cadence", CADENCES),
            ("provider", LEVELS),
        ]:
            value = getattr(self, name)
            if value not in allowed:
                raise ParameterError(f"KPI '{self.key}': {name}={value!r} is not one of {', '.join(allowed)}.")
        if self.derive is not None and self.derive[0] not in DERIVES:
            raise ParameterError(f"KPI '{self.key}': derive must be ('growth' or 'change', base key).")
        for attr in ("key", "name", "definition", "formula", "unit"):
            if not str(getattr(self, attr)).strip():
                raise ParameterError(f"KPI '{self.key}': {attr} must not be empty.")


REGISTRY: dict[str, KPI] = {}


def register(key: str, *, replace: bool = False, _builtin: bool = False, **spec) -> Callable:
    """Register a KPI: a decorator over the function that computes it.

    Parameters
    ----------
    key : str
        Unique key, in snake_case.
    replace : bool
        Allow replacing a KPI of the same key.
    **spec
        The other :class:`KPI` fields: ``name``, ``pillar``, ``category``,
        ``level``, ``timing``, ``driver``, ``definition``, ``formula``,
        ``unit``, ``direction``, ``tables``, ``provider``, ``cadence``, and
        optionally ``columns``, ``grain``, ``fill``, ``derive``,
        ``controllable`` and ``line_level``.

        ``line_level`` (default True for your KPIs) says the function looks at
        single invoice lines (a line of 10,000 or more, say) rather than only
        at sums, counts, first and last dates by account, product and period.
        The DuckDB engine hands KPIs those sums only (see
        :meth:`Context.table`), so it leaves a line-level KPI out with a note;
        pass ``line_level=False`` when the sums are all it needs.

    Examples
    --------
    A KPI of your own behaves like the built-ins:

    >>> import kamtools as kt
    >>> @kt.kpi.register(
    ...     "big_orders", name="Big orders", pillar="revenue", category="revenue",
    ...     level="customer", timing="lagging", driver="financial",
    ...     definition="Invoice lines of 10,000 or more.", formula="count of lines with revenue >= 10,000",
    ...     unit="count", direction="higher", tables=("transactions",), provider="customer",
    ...     cadence="Q", fill=0, replace=True)
    ... def big_orders(ctx):
    ...     tx = ctx.table("transactions")
    ...     return ctx.per_account(tx[tx["revenue"] >= 10_000], how="count")
    >>> "big_orders" in kt.kpis().index
    True
    """
    if key in REGISTRY and not replace:
        raise ParameterError(f"A KPI '{key}' is registered already; pass replace=True to replace it.")

    def decorate(func):
        spec.setdefault("tables", ())
        spec["tables"] = tuple(spec["tables"])
        spec["columns"] = tuple(spec.get("columns", ()))
        spec.setdefault("line_level", not _builtin and spec.get("derive") is None)
        REGISTRY[key] = KPI(key=key, func=func, builtin=_builtin, **spec)
        return func

    return decorate


def get(key: str) -> KPI:
    """The spec of one KPI, or a clear error with the closest keys."""
    try:
        return REGISTRY[key]
    except KeyError:
        close = difflib.get_close_matches(key, REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ParameterError(f"No KPI '{key}'.{hint} kt.kpis() lists them all.") from None


def derived(key: str, *, kind: str, of: str, **spec) -> KPI:
    """Register a KPI computed from another one against the previous period.

    ``kind="growth"`` gives ``x_t / x_(t-1) - 1``; ``kind="change"`` gives
    ``x_t - x_(t-1)``, where ``x`` is KPI ``of`` at the same entity.
    """
    register(key, derive=(kind, of), **spec)(None)
    return REGISTRY[key]


_CATALOGUE_COLUMNS = [
    f.name for f in fields(KPI) if f.name not in ("key", "func", "derive", "fill")
]


def kpis(**filters) -> pd.DataFrame:
    """The KPI catalogue as a DataFrame, one row per KPI, indexed by key.

    Parameters
    ----------
    **filters
        Keep KPIs whose field equals the value (or is in the list), e.g.
        ``pillar="retention"``, ``timing="leading"``,
        ``category=["revenue", "profitability"]``.

    Returns
    -------
    DataFrame
        Columns: name, pillar, category, level, timing, driver, definition,
        formula, unit, direction, tables, provider, cadence, columns, grain,
        controllable, line_level, builtin.

    Examples
    --------
    >>> import kamtools as kt
    >>> cat = kt.kpis(pillar="retention", timing="lagging")
    >>> bool((cat["pillar"] == "retention").all())
    True
    """
    rows = [{"key": k, **{c: v for c, v in asdict(s).items() if c in _CATALOGUE_COLUMNS}} for k, s in REGISTRY.items()]
    cat = pd.DataFrame(rows, columns=["key", *_CATALOGUE_COLUMNS]).set_index("key")
    for name, want in filters.items():
        if name not in cat.columns:
            raise ParameterError(f"kpis(): cannot filter on {name!r}; filter on one of {', '.join(cat.columns)}.")
        want = [want] if isinstance(want, str | bool) else list(want)
        cat = cat[cat[name].isin(want)]
    return cat
