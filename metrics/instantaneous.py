"""Instantaneous values (``furnace_power_kw``, ``stack_flow_m3_h``, ``ambient_temp_c`` …):
time-weighted means over the valid minutes.

Kind ``instantaneous`` of the glossary: a reading is a sampled value at its timestamp. The
rules:

* **Minute means.** A minute is ``[m, m + 1 min)`` in UTC (plant-local minutes are the same
  instants). Its mean is the arithmetic mean of the valid readings in it; with readings at a
  steady rate that is the time-weighted mean of the minute (a device sampling unevenly within a
  minute is not weighted by hold time: stated, not hidden).
* **Invalid minute.** A minute with no valid reading is invalid. A slowly varying signal reported
  less often than once a minute (a weather station every 10 min) can be given ``hold_minutes``:
  a minute mean also stands for up to that many following minutes without a reading
  (sample-and-hold for at most that long; the minutes beyond stay invalid). Default 0.
* **Window mean.** Each valid minute weighs one minute, so the mean of the valid minute means is
  the time-weighted mean at minute resolution. ``coverage`` = valid minutes / the window's
  nominal minutes (``Window.minutes``: 1380 for a 23-hour day). ``n`` = the readings used.

Public API: ``minute_means``, ``time_weighted_means``, ``window_means``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from greenfoundry import glossary
from greenfoundry.metrics.measured import (
    DEFAULT_MIN_COVERAGE,
    NO_DATA,
    bad_input_frame,
    check_min_coverage,
    judge,
    window_bounds_ns,
    window_frame,
)
from greenfoundry.metrics.readings import Clean, clean_readings

NS_PER_MIN = 60 * 10**9


@dataclass(frozen=True)
class Minutes:
    """Valid minutes, in time order: ``start_ns`` (int64 ns UTC), ``mean``, ``n`` (readings in
    the minute; 0 for a held minute)."""

    start_ns: np.ndarray
    mean: np.ndarray
    n: np.ndarray

    def select(self, keep: np.ndarray) -> Minutes:
        return Minutes(self.start_ns[keep], self.mean[keep], self.n[keep])


def default_range(name: str, valid_range: tuple[float, float] | None):
    if valid_range is not None:
        return valid_range
    sig = glossary.signal(name)
    return (sig.low, sig.high) if sig else None


def minutes_from(c: Clean, hold_minutes: int = 0) -> Minutes:
    """The minute means of cleaned readings (``readings.clean_readings``)."""
    if hold_minutes < 0:
        raise ValueError(f"hold_minutes {hold_minutes!r}: expected a whole number >= 0")
    if c.n == 0:
        e = np.array([], dtype=np.int64)
        return Minutes(e, np.array([], dtype=float), e)
    minute = c.times_ns - np.mod(c.times_ns, NS_PER_MIN)
    starts, inverse = np.unique(minute, return_inverse=True)
    n = np.bincount(inverse).astype(np.int64)
    mean = np.bincount(inverse, weights=c.values) / n
    if hold_minutes == 0:
        return Minutes(starts, mean, n)
    # Sample-and-hold: minute i stands for up to hold_minutes empty minutes after it.
    nxt = np.append(starts[1:], np.iinfo(np.int64).max)
    reach = np.minimum((nxt - starts) // NS_PER_MIN - 1, hold_minutes)
    total = int(reach.sum())
    if total == 0:
        return Minutes(starts, mean, n)
    src = np.repeat(np.arange(len(starts)), reach)
    offset = np.arange(total) - np.repeat(np.cumsum(reach) - reach, reach) + 1
    held = starts[src] + offset * NS_PER_MIN
    all_t = np.concatenate((starts, held))
    order = np.argsort(all_t, kind="stable")
    return Minutes(
        all_t[order],
        np.concatenate((mean, mean[src]))[order],
        np.concatenate((n, np.zeros(total, dtype=np.int64)))[order],
    )


def minute_means(
    readings: pd.Series,
    *,
    name: str = "value",
    valid_range: tuple[float, float] | None = None,
    hold_minutes: int = 0,
) -> pd.DataFrame:
    """The valid minutes of a series: index the minute start (UTC), columns ``mean`` and ``n``
    (readings in it; 0 for a held minute). Minutes without a valid reading are absent.
    ``valid_range`` defaults to the glossary's range of the signal ``name``. Raises
    ``ValueError`` for a refused series (``time_weighted_means`` gives a status instead)."""
    c = clean_readings(readings, name, valid_range=default_range(name, valid_range))
    if c.problem:
        raise ValueError(c.problem)
    m = minutes_from(c, hold_minutes)
    index = pd.DatetimeIndex(m.start_ns.astype("datetime64[ns]"), name="minute").tz_localize("UTC")
    return pd.DataFrame({"mean": m.mean, "n": m.n}, index=index)


def window_means(
    minutes: Minutes,
    windows: Sequence,
    *,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    name: str = "value",
    clean: Clean | None = None,
) -> pd.DataFrame:
    """Time-weighted means of valid minutes per window (the module's rules).

    Columns: ``value`` (mean; NaN without a valid minute), ``n`` (readings), ``coverage``
    (valid minutes / window minutes), ``status``, ``lacking``, ``valid_minutes``, ``minutes``.
    """
    min_coverage = check_min_coverage(min_coverage)
    starts, ends = window_bounds_ns(windows)
    lo = np.searchsorted(minutes.start_ns, starts, "left")
    hi = np.searchsorted(minutes.start_ns, ends, "left")
    p_sum = np.concatenate(([0.0], np.cumsum(minutes.mean)))
    p_n = np.concatenate(([0], np.cumsum(minutes.n)))
    valid = hi - lo
    total = (ends - starts) // NS_PER_MIN
    n = p_n[hi] - p_n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid > 0, (p_sum[hi] - p_sum[lo]) / np.maximum(valid, 1), np.nan)
    coverage = valid / total
    invalid = clean.invalid_in(starts, ends) if clean is not None else np.zeros(len(starts), int)
    values, statuses, lacking = [], [], []
    for i in range(len(windows)):
        lack = []
        if valid[i] == 0:
            lack.append(f"no valid {name} readings")
        elif valid[i] < total[i]:
            lack.append(
                f"{total[i] - valid[i]} of {total[i]} minutes without a valid {name} reading"
            )
        if invalid[i]:
            lack.append(f"{invalid[i]} {name} readings not valid (NaN or out of range), dropped")
        st = judge(int(valid[i]), float(coverage[i]), min_coverage)
        statuses.append(st)
        values.append(np.nan if st == NO_DATA else float(mean[i]))
        lacking.append(tuple(lack))
    return window_frame(
        windows,
        {
            "value": values,
            "n": n.astype(np.int64),
            "coverage": coverage,
            "status": statuses,
            "lacking": lacking,
            "valid_minutes": valid.astype(np.int64),
            "minutes": total.astype(np.int64),
        },
    )


def time_weighted_means(
    readings: pd.Series,
    windows: Sequence,
    *,
    name: str = "value",
    valid_range: tuple[float, float] | None = None,
    hold_minutes: int = 0,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> pd.DataFrame:
    """Minute means, then the mean of the valid minutes of each window (see ``window_means``
    for the columns). A refused series gives every window bad_input."""
    c = clean_readings(readings, name, valid_range=default_range(name, valid_range))
    if c.problem:
        return bad_input_frame(windows, c.problem, {"valid_minutes": 0, "minutes": 0})
    return window_means(
        minutes_from(c, hold_minutes), windows, min_coverage=min_coverage, name=name, clean=c
    )
