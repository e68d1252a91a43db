"""Retention: how long accounts stay, and when they are lost.

:func:`durations` turns a data set into one row per account (or contract) with
a duration and an event flag, right-censoring made explicit. Survival models,
churn risk and cohort tables build on it.
"""

from __future__ import annotations

import pandas as pd

from kamtools import periods as _periods
from kamtools.exceptions import ParameterError

__all__ = ["durations"]


def durations(
    data,
    *,
    unit: str = "account",
    churn: str = "inactivity",
    inactivity_days: int = 365,
    as_of=None,
) -> pd.DataFrame:
    """Duration and event per account or per contract.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
    unit : {"account", "contract"}
        One row per account, or per contract term.
    churn : {"inactivity", "contract"}
        When an account counts as lost (``unit="account"``):

        - ``"inactivity"``: its last purchase was more than
          ``inactivity_days`` before ``as_of``; it was lost on the day of that
          last purchase. An account that bought more recently is censored at
          ``as_of``.
        - ``"contract"``: its last contract term ended on or before ``as_of``
          with outcome ``lapsed``; it was lost on that end date. Otherwise it
          is censored at ``as_of``.

        For ``unit="contract"`` a term ends in the event when its outcome is
        ``lapsed``; renewed terms are censored at their end, active ones at
        ``as_of``.
    inactivity_days : int
        Days without a purchase after which an account counts as lost.
    as_of : date, optional
        The date the data are seen from. Default: the last transaction.

    Returns
    -------
    DataFrame
        ``account_id`` (and ``contract_id`` for contracts), ``start`` (first
        purchase, or the first contract's start with ``churn="contract"``;
        the term's start for contracts), ``end`` (the event date, or the
        censoring date), ``duration`` in days, ``event`` (True when lost),
        ``is_key_account``.

    Notes
    -----
    Accounts that were customers before the data begin enter at their first
    recorded purchase, so their durations are shorter than their true
    tenure (left truncation); a survival model with a constant hazard is not
    biased by it.

    Examples
    --------
    >>> import kamtools as kt
    >>> d = kt.retention.durations(kt.sample.load())
    >>> d.columns.tolist()
    ['account_id', 'start', 'end', 'duration', 'event', 'is_key_account']
    """
    from kamtools.io import load

    data = load(data)
    if unit not in ("account", "contract"):
        raise ParameterError(f"unit={unit!r}; use 'account' or 'contract'.")
    if churn not in ("inactivity", "contract"):
        raise ParameterError(f"churn={churn!r}; use 'inactivity' or 'contract'.")
    if inactivity_days <= 0:
        raise ParameterError(f"inactivity_days={inactivity_days!r} must be a positive number of days.")
    tx = data.transactions
    as_of = _periods.as_of_date(as_of, tx["date"].max())
    key = data.accounts.set_index("account_id")["is_key_account"].fillna(False).astype(bool)
    if unit == "contract" or churn == "contract":
        if data.contracts is None or "end" not in data.contracts.columns or "outcome" not in data.contracts.columns:
            raise ParameterError(
                "Contract-based durations need the contracts table with its end and outcome columns. "
                "Use churn='inactivity' to measure churn from transactions instead."
            )
        con = data.contracts[data.contracts["start"] <= as_of]
    if unit == "contract":
        ended = con["end"].notna() & (con["end"] <= as_of)
        event = ended & con["outcome"].eq("lapsed")
        end = con["end"].where(ended, as_of)
        out = pd.DataFrame({
            "contract_id": con["contract_id"], "account_id": con["account_id"], "start": con["start"],
            "end": end, "event": event.fillna(False).astype(bool),
        })
    elif churn == "inactivity":
        seen = tx[tx["date"] <= as_of].groupby("account_id")["date"].agg(["min", "max"])
        event = seen["max"] < as_of - pd.Timedelta(days=inactivity_days)
        out = pd.DataFrame({
            "account_id": seen.index, "start": seen["min"].to_numpy(),
            "end": seen["max"].where(event, as_of).to_numpy(), "event": event.to_numpy(),
        })
    else:
        last = con.sort_values(["account_id", "start"]).groupby("account_id").agg(
            start=("start", "min"), last_end=("end", "last"), outcome=("outcome", "last")
        )
        event = last["last_end"].notna() & (last["last_end"] <= as_of) & last["outcome"].eq("lapsed")
        out = pd.DataFrame({
            "account_id": last.index, "start": last["start"].to_numpy(),
            "end": last["last_end"].where(event, as_of).to_numpy(), "event": event.fillna(False).to_numpy(),
        })
    out["duration"] = (out["end"] - out["start"]).dt.days.astype("float64")
    out["is_key_account"] = out["account_id"].map(key).fillna(False).astype(bool)
    cols = (["contract_id"] if unit == "contract" else []) + ["account_id", "start", "end", "duration", "event",
                                                               "is_key_account"]
    return out[cols].reset_index(drop=True)
