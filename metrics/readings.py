"""Checking a series of readings before any metric reads it.

A series is a ``pd.Series`` of numbers indexed by tz-aware timestamps (UTC in storage; any zone
is converted). What is refused as a whole (``problem`` set, the metric's status ``bad_input``):
not a Series, an index that is not a DatetimeIndex, timestamps without a time zone, values that
are not numbers (a string or bool field, e.g. an InfluxDB field-type conflict). What is dropped
reading by reading and counted: NaN and infinite values, values outside ``valid_range`` (e.g. a
signal's ``low``/``high`` in the glossary). Readings with the same timestamp keep the last one
given (InfluxDB keeps one point per series and timestamp the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Clean:
    """Readings that passed: ``times_ns`` (int64 ns UTC, strictly increasing) and ``values``."""

    times_ns: np.ndarray
    values: np.ndarray
    given: int
    invalid: int  # NaN, infinite or out of range, dropped
    duplicates: int  # same timestamp as a later reading, dropped
    problem: str | None = None  # the whole series was refused, and why
    invalid_ns: np.ndarray | None = None  # timestamps of the invalid readings, sorted

    def invalid_in(self, starts_ns: np.ndarray, ends_ns: np.ndarray) -> np.ndarray:
        """How many invalid readings fall in each window [start, end)."""
        bad = self.invalid_ns if self.invalid_ns is not None else np.array([], dtype=np.int64)
        return np.searchsorted(bad, ends_ns, "left") - np.searchsorted(bad, starts_ns, "left")

    @property
    def n(self) -> int:
        return len(self.times_ns)

    def notes(self, name: str) -> list[str]:
        out = []
        if self.invalid:
            out.append(f"{self.invalid} {name} readings not valid (NaN, infinite or out of range)")
        if self.duplicates:
            out.append(f"{self.duplicates} {name} readings with a repeated timestamp (last kept)")
        return out


def _refuse(problem: str, given: int = 0) -> Clean:
    empty = np.array([], dtype=np.int64)
    return Clean(empty, np.array([], dtype=float), given, 0, 0, problem)


def times_ns(index: pd.Index) -> np.ndarray:
    """A tz-aware DatetimeIndex as int64 ns since the epoch, UTC."""
    return index.tz_convert("UTC").as_unit("ns").asi8


def index_problem(series: object, name: str) -> str | None:
    if not isinstance(series, pd.Series):
        return f"{name}: expected a pandas Series indexed by time, got {type(series).__name__}"
    if not isinstance(series.index, pd.DatetimeIndex):
        return f"{name}: the index is {type(series.index).__name__}, expected timestamps (DatetimeIndex)"
    if series.index.tz is None:
        return f"{name}: timestamps have no time zone; give them in UTC"
    return None


def clean_readings(
    series: object, name: str, *, valid_range: tuple[float, float] | None = None
) -> Clean:
    """The valid readings of ``series``, sorted by time, or the reason it was refused."""
    problem = index_problem(series, name)
    if problem:
        return _refuse(problem)
    assert isinstance(series, pd.Series)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return _refuse(f"{name}: values are {dtype}, expected numbers", len(series))
    t = times_ns(series.index)
    v = series.to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(v)
    if valid_range is not None:
        lo, hi = valid_range
        ok &= (v >= lo) & (v <= hi)
    invalid = int((~ok).sum())
    invalid_ns = np.sort(t[~ok])
    t, v = t[ok], v[ok]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    last = np.ones(len(t), bool)
    last[:-1] = t[:-1] != t[1:]
    duplicates = int((~last).sum())
    return Clean(t[last], v[last], len(series), invalid, duplicates, None, invalid_ns)


def clean_codes(series: object, name: str) -> tuple[np.ndarray, np.ndarray, str | None]:
    """A status series (codes of any type, e.g. "N", "C", "M", "D"): times (ns, sorted, last kept
    on a repeated timestamp), codes as strings, or the reason it was refused. A missing code
    (None/NaN) is kept as the empty string, which is not a normal code."""
    problem = index_problem(series, name)
    if problem:
        return np.array([], dtype=np.int64), np.array([], dtype=object), problem
    assert isinstance(series, pd.Series)
    t = times_ns(series.index)
    codes = np.array(["" if pd.isna(c) else str(c) for c in series.to_numpy()], dtype=object)
    order = np.argsort(t, kind="stable")
    t, codes = t[order], codes[order]
    last = np.ones(len(t), bool)
    last[:-1] = t[:-1] != t[1:]
    return t[last], codes[last], None
