"""What every metric returns: its value with ``n``, ``coverage``, a status and what it lacked.

A metric never returns a bare 0 or NaN. Each value comes with

* ``n``: the readings (or events) it used;
* ``coverage``: 0..1, the share of the window with valid data, by the rule stated for its kind
  (counters: time between readings that is not a gap; instantaneous: valid minutes; events:
  whether any event was seen; stack hours: valid minutes, and valid hours above them);
* ``status``: one of ``STATUSES``;
* ``lacking``: plain sentences saying what was missing or doubtful ("no readings", "44 of 60
  minutes valid (needs 45)", "gap of 2.0 h …"). Empty when nothing was.

Status rules, the same for every kind:

* ``no_data``: nothing usable in the window (``n == 0`` and ``coverage == 0``); no value.
* ``bad_input``: the input itself was refused (not a Series, timestamps without a time zone,
  values that are not numbers); no value, and ``lacking`` says why.
* ``low_coverage``: a value exists but its coverage is below the caller's ``min_coverage``
  (or, for a stack hour, fewer valid minutes than the HJ 75 rule asks: then ``value`` is None).
* ``not_covered``: the standard sets no limit for this case (Table C.1 capacity outside its rows).
* ``ok``: otherwise.

Per-window results are DataFrames indexed by the window start (UTC, named ``start``) with at
least the columns ``COLUMNS``; a missing value is NaN in a frame (float64 column) and None in a
``Measured`` (``Measured.from_row`` turns one row into one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

OK = "ok"
LOW_COVERAGE = "low_coverage"
NO_DATA = "no_data"
BAD_INPUT = "bad_input"
NOT_COVERED = "not_covered"
STATUSES = (OK, LOW_COVERAGE, NO_DATA, BAD_INPUT, NOT_COVERED)

# The scorer does not score a measured value whose data covers less than 0.9 of its window
# (scoring.scorer.DEFAULT_MIN_COVERAGE); the metrics flag the same share by default.
DEFAULT_MIN_COVERAGE = 0.9

COLUMNS = ("end", "label", "value", "n", "coverage", "status", "lacking")


@dataclass(frozen=True)
class Measured:
    """One value with what it stood on. ``value`` is None when ``status`` is no_data or bad_input."""

    value: float | None
    n: int
    coverage: float
    status: str
    lacking: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: pd.Series | dict[str, Any]) -> Measured:
        value = row["value"]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            value = None
        return cls(
            None if value is None else float(value),
            int(row["n"]),
            float(row["coverage"]),
            str(row["status"]),
            tuple(row["lacking"]),
        )

    @property
    def usable(self) -> bool:
        """A value exists (ok or low coverage)."""
        return self.value is not None and self.status in (OK, LOW_COVERAGE)


def judge(n: int, coverage: float, min_coverage: float) -> str:
    """The status from n and coverage (the rules of this module's docstring)."""
    if n == 0 and coverage <= 0:
        return NO_DATA
    if coverage < min_coverage:
        return LOW_COVERAGE
    return OK


def check_min_coverage(min_coverage: float) -> float:
    if not 0 <= min_coverage <= 1:
        raise ValueError(f"min_coverage {min_coverage!r}: expected a share between 0 and 1")
    return float(min_coverage)


def window_frame(windows: Sequence, columns: dict[str, Any]) -> pd.DataFrame:
    """A per-window result: indexed by window start (UTC), with end and label first."""
    index = pd.DatetimeIndex([w.start for w in windows], name="start")
    if len(windows) == 0:
        index = pd.DatetimeIndex([], tz="UTC", name="start").as_unit("ns")
    data: dict[str, Any] = {
        "end": pd.DatetimeIndex([w.end for w in windows]) if windows else index.copy(),
        "label": [w.label for w in windows],
    }
    data.update(columns)
    frame = pd.DataFrame(data, index=index)
    if "lacking" in frame:
        frame["lacking"] = frame["lacking"].astype(object)
    return frame


def bad_input_frame(
    windows: Sequence, reason: str, extra: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Every window refused for one reason (a clear status, never a crash)."""
    k = len(windows)
    cols: dict[str, Any] = {
        "value": np.full(k, np.nan),
        "n": np.zeros(k, dtype=np.int64),
        "coverage": np.zeros(k),
        "status": [BAD_INPUT] * k,
        "lacking": [(reason,)] * k,
    }
    for name, fill in (extra or {}).items():
        cols[name] = [fill] * k
    return window_frame(windows, cols)


def window_bounds_ns(windows: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and ends as int64 ns since the epoch (UTC). Windows may overlap."""
    starts = np.fromiter((w.start.value for w in windows), dtype=np.int64, count=len(windows))
    ends = np.fromiter((w.end.value for w in windows), dtype=np.int64, count=len(windows))
    if np.any(ends <= starts):
        raise ValueError("every window must end after it starts")
    return starts, ends
