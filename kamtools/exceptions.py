"""The exceptions and warnings kamtools raises.

Every error kamtools raises on purpose derives from :class:`KamtoolsError`, and
also from the built-in exception a caller would expect (a schema problem is a
``ValueError``, a missing file a ``FileNotFoundError``), so both
``except kamtools.KamtoolsError`` and ``except ValueError`` work.
"""

from __future__ import annotations

import pandas as pd

__all__ = [
    "KamtoolsError",
    "SchemaError",
    "SourceError",
    "ParameterError",
    "ClusterError",
    "DataWarning",
]


class KamtoolsError(Exception):
    """Base class of every error kamtools raises on purpose."""


class SourceError(KamtoolsError, ValueError):
    """A data source cannot be read: unknown kind, unreadable file, bad URL."""


class ParameterError(KamtoolsError, ValueError):
    """An argument has a value kamtools cannot use: the message says which values work."""


class ClusterError(KamtoolsError, ConnectionError):
    """A compute cluster cannot be used: scheduler unreachable, no workers, workers without kamtools."""


class SchemaError(KamtoolsError, ValueError):
    """The data breaks the kamtools data model.

    The message names each table, column and check that failed, the first
    offending rows, and what to do. All the problems found are collected
    before raising, so one run of validation shows every one of them.

    Attributes
    ----------
    failure_cases : pandas.DataFrame
        One row per offending value, with the columns ``table``, ``column``,
        ``check``, ``row`` (the row number in the source file, where the data
        came from a file, else the 0-based row position), ``value`` and
        ``advice``.
    """

    COLUMNS = ["table", "column", "check", "row", "value", "advice"]

    def __init__(self, message: str, failure_cases: pd.DataFrame | None = None):
        super().__init__(message)
        if failure_cases is None:
            failure_cases = pd.DataFrame(columns=self.COLUMNS)
        self.failure_cases = failure_cases


class DataWarning(UserWarning):
    """The data is legal but suspicious: credit notes, duplicates, and the like.

    kamtools never changes data because of a warning; it only tells, with counts.
    """
