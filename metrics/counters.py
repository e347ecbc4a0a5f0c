"""Cumulative counters (``furnace_energy_kwh``, ``fuel_gas_m3``, ``fuel_coke_kg``, ``water_m3``):
consumption per window from meter totals.

Kind ``counter`` of the glossary: each reading is the meter's total at its timestamp. The
consumption of a window is the sum of the increments between consecutive readings, read as
follows (the rules an energy manager can check against the meter):

* **Increment.** Between readings ``p`` (earlier) and ``c`` the increment is ``c - H`` where
  ``H`` is the highest reading since the last reset (the high-water mark); it is 0 when ``c`` is
  not above ``H``. So a dip and its recovery count nothing twice: 100, 99.9, 100.1 gives 0.1.
* **Reset or replacement.** A drop to below ``reset_below_ratio`` × the previous reading
  (default 0.9, Home Assistant's rule for ``total_increasing`` sensors; or a drop larger than
  ``jitter_max``, when given) is a reset: the new meter counts from zero, so the increment is
  the new reading itself.
* **Rollover.** With ``rollover_modulus`` M configured, such a drop is a rollover instead when
  the wrapped increment ``c + M - H`` is at most ``(1 - reset_below_ratio)`` × M (the meter was
  in the top tenth of its register and is now in the bottom tenth, by default): the increment
  is ``c + M - H``. A larger drop is still a reset: a meter replaced half-way up its register
  did not wrap (read as a rollover it would count M − H it never measured). A reset while the
  old meter stood in the top tenth is read as a rollover: a known limit. Readings at or above M
  are not valid.
* **Jitter.** A smaller drop (above 0.9 × the previous reading) is backwards jitter: it is not
  consumption (increment 0) and the reading is flagged; the high-water mark stays.
* **Gap.** Two readings more than ``max_gap_s`` apart: the increment between them is real and
  is counted, but the time between them is not covered (coverage) and the windows it spans are
  flagged (``gap_s``, ``lacking``). It is never extrapolated nor spread (unlike Prometheus'
  ``increase()``, prometheus#3746).
* **Boundary.** An increment is the consumption over ``(p, c]``; it belongs, whole, to the
  window that holds its later reading ``c`` with ``start < c <= end``. So a meter read on the
  hour closes that hour, an increment across a boundary is never split, and for consecutive
  windows Σ consumption = the meter's difference between the last readings at or before the
  first window's start and the last window's end (resets, rollovers and jitter read as above).
  The sum over hours equals the day's, the days' the month's, exactly.

The first increment of a window needs the last reading at or before the window's start: the
caller (the engine) passes it with the window's readings, else that stretch is uncovered.

Coverage of a window = the share of its time that lies between two consecutive readings that
are not a gap apart. ``n`` = the increments counted in the window.

Public API: ``counter_increments``, ``counter_consumption``, ``DEFAULT_MAX_GAP_S``,
``DEFAULT_RESET_BELOW_RATIO``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from greenfoundry.metrics.events import refused_columns
from greenfoundry.metrics.measured import (
    DEFAULT_MIN_COVERAGE,
    NO_DATA,
    check_min_coverage,
    judge,
    window_bounds_ns,
    window_frame,
)
from greenfoundry.metrics.readings import Clean, clean_readings

# Home Assistant (sensor recorder, state class total_increasing): a drop to below 0.9 × the
# previous state is a new meter cycle; smaller dips are reported, not counted (domain.md §8).
DEFAULT_RESET_BELOW_RATIO = 0.9
# Meters publish every few seconds to a minute; 15 minutes without a total is a gap.
DEFAULT_MAX_GAP_S = 900.0

EXTRA_COLUMNS = (
    "resets",
    "rollovers",
    "jitter",
    "jitter_drop",
    "gaps",
    "gap_s",
    "gap_consumption",
    "flags",
)


def _ts(ns: int) -> str:
    return f"{pd.Timestamp(int(ns), unit='ns', tz='UTC'):%Y-%m-%dT%H:%M:%SZ}"


def _check_params(rollover_modulus, reset_below_ratio, jitter_max, max_gap_s) -> None:
    if rollover_modulus is not None and not rollover_modulus > 0:
        raise ValueError(f"rollover_modulus {rollover_modulus!r}: expected a positive number")
    if not 0 < reset_below_ratio <= 1:
        raise ValueError(f"reset_below_ratio {reset_below_ratio!r}: expected 0 < ratio <= 1")
    if jitter_max is not None and not jitter_max >= 0:
        raise ValueError(f"jitter_max {jitter_max!r}: expected a number >= 0")
    if not max_gap_s > 0:
        raise ValueError(f"max_gap_s {max_gap_s!r}: expected a positive number of seconds")


def _clean(readings, name, rollover_modulus) -> Clean:
    # A total is never negative; with a modulus it is below it.
    high = np.inf if rollover_modulus is None else np.nextafter(rollover_modulus, 0)
    return clean_readings(readings, name, valid_range=(0.0, high))


def _read(c: Clean, rollover_modulus, reset_below_ratio, jitter_max, max_gap_s) -> dict:
    """The per-reading arrays: increment (NaN for the first), break/jitter/gap flags."""
    t, v = c.times_ns, c.values
    n = len(v)
    prev, cur = v[:-1], v[1:]
    big = cur < reset_below_ratio * prev
    if jitter_max is not None:
        big |= (prev - cur) > jitter_max
    brk = np.zeros(n, bool)
    brk[1:] = (cur < prev) & big
    seg = np.cumsum(brk)
    high = pd.Series(v).groupby(seg).cummax().to_numpy() if n else v
    inc = np.full(n, np.nan)
    wrapped = np.zeros(n, bool)
    if n > 1:
        inc[1:] = high[1:] - high[:-1]
        at = np.flatnonzero(brk)
        inc[at] = v[at]
        if rollover_modulus is not None:
            wrap_inc = v[at] + rollover_modulus - high[at - 1]
            ok = wrap_inc <= (1 - reset_below_ratio) * rollover_modulus
            wrapped[at[ok]] = True
            inc[at[ok]] = wrap_inc[ok]
    jitter = np.zeros(n, bool)
    drop = np.zeros(n)
    if n > 1:
        below = cur < high[:-1]
        jitter[1:] = below & ~brk[1:]
        drop[1:] = np.where(jitter[1:], high[:-1] - cur, 0.0)
    dt = np.zeros(n, dtype=np.int64)
    dt[1:] = np.diff(t)
    gap = np.zeros(n, bool)
    gap[1:] = dt[1:] > max_gap_s * 1e9
    return {
        "t": t,
        "v": v,
        "inc": inc,
        "reset": brk & ~wrapped,
        "rollover": brk & wrapped,
        "jitter": jitter,
        "drop": drop,
        "gap": gap,
        "dt": dt,
    }


def counter_increments(
    readings: pd.Series,
    *,
    rollover_modulus: float | None = None,
    reset_below_ratio: float = DEFAULT_RESET_BELOW_RATIO,
    jitter_max: float | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    name: str = "counter",
) -> pd.DataFrame:
    """Each valid reading with the increment it ends and how it was read (the module's rules).

    Index: the reading's timestamp (UTC). Columns: ``total`` (the reading), ``increment`` (NaN
    for the first reading: nothing before it), ``kind`` ("first", "normal", "jitter", "reset",
    "rollover"), ``gap`` (the reading ends a gap), ``dt_s`` (seconds since the previous reading).
    Raises ``ValueError`` when the series is refused (see ``readings.clean_readings``).
    """
    _check_params(rollover_modulus, reset_below_ratio, jitter_max, max_gap_s)
    c = _clean(readings, name, rollover_modulus)
    if c.problem:
        raise ValueError(c.problem)
    r = _read(c, rollover_modulus, reset_below_ratio, jitter_max, max_gap_s)
    kind = np.full(len(r["v"]), "normal", dtype=object)
    kind[r["jitter"]] = "jitter"
    kind[r["reset"]] = "reset"
    kind[r["rollover"]] = "rollover"
    if len(kind):
        kind[0] = "first"
    return pd.DataFrame(
        {
            "total": r["v"],
            "increment": r["inc"],
            "kind": kind,
            "gap": r["gap"],
            "dt_s": r["dt"] / 1e9,
        },
        index=pd.DatetimeIndex(r["t"].astype("datetime64[ns]"), name="time").tz_localize("UTC"),
    )


def _covered_until(t, cumlen, covered, x):
    """Covered time (ns) from the first reading up to instant(s) ``x``: C(x) of the docstring."""
    n = len(t)
    k = np.searchsorted(t, x, "left")
    out = np.zeros(len(x))
    if n == 0:
        return out
    after = k >= n
    out[after] = cumlen[n - 1]
    mid = (k > 0) & ~after
    km = k[mid]
    out[mid] = cumlen[km - 1] + np.where(covered[km], x[mid] - t[km - 1], 0)
    return out


def counter_consumption(
    readings: pd.Series,
    windows: Sequence,
    *,
    rollover_modulus: float | None = None,
    reset_below_ratio: float = DEFAULT_RESET_BELOW_RATIO,
    jitter_max: float | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    name: str = "counter",
) -> pd.DataFrame:
    """Consumption per window from a cumulative counter, in the counter's own unit (kWh for
    ``furnace_energy_kwh``, m³ for ``water_m3`` …), by the rules of the module docstring.

    ``windows``: ``metrics.windows.Window`` objects (any kind; they may overlap). Returns one
    row per window, indexed by its start (UTC), with ``end``, ``label``, ``value`` (the
    consumption; NaN when no_data or bad_input), ``n`` (increments counted), ``coverage``,
    ``status``, ``lacking`` (sentences), and the flags ``resets``, ``rollovers``, ``jitter``
    (readings below the high-water mark), ``jitter_drop`` (the largest such dip), ``gaps``
    (gaps overlapping the window), ``gap_s`` (seconds of the window inside gaps),
    ``gap_consumption`` (consumption counted in this window across gaps) and ``flags``
    (sentences for resets, rollovers and jitter). A bad series gives every window bad_input.
    """
    return window_frame(
        windows,
        _consumption_columns(
            readings,
            windows,
            rollover_modulus=rollover_modulus,
            reset_below_ratio=reset_below_ratio,
            jitter_max=jitter_max,
            max_gap_s=max_gap_s,
            min_coverage=min_coverage,
            name=name,
        ),
    )


def _consumption_columns(
    readings: pd.Series,
    windows: Sequence,
    *,
    rollover_modulus: float | None = None,
    reset_below_ratio: float = DEFAULT_RESET_BELOW_RATIO,
    jitter_max: float | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    name: str = "counter",
) -> dict[str, Any]:
    """The columns of ``counter_consumption`` (``measured.window_frame`` makes its frame of
    them): the engine reads them without building the frame."""
    _check_params(rollover_modulus, reset_below_ratio, jitter_max, max_gap_s)
    min_coverage = check_min_coverage(min_coverage)
    extra_fill = {
        "resets": 0,
        "rollovers": 0,
        "jitter": 0,
        "jitter_drop": 0.0,
        "gaps": 0,
        "gap_s": 0.0,
        "gap_consumption": 0.0,
        "flags": (),
    }
    c = _clean(readings, name, rollover_modulus)
    if c.problem:
        return refused_columns(len(windows), c.problem, extra_fill)
    starts, ends = window_bounds_ns(windows)
    r = _read(c, rollover_modulus, reset_below_ratio, jitter_max, max_gap_s)
    t, inc, gap, dt = r["t"], r["inc"], r["gap"], r["dt"]
    n_read = len(t)

    def prefix(x) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(x)))

    known = ~np.isnan(inc)
    p_inc = prefix(np.where(known, inc, 0.0))
    p_known = prefix(known.astype(np.int64))
    p_reset = prefix(r["reset"].astype(np.int64))
    p_roll = prefix(r["rollover"].astype(np.int64))
    p_jit = prefix(r["jitter"].astype(np.int64))
    p_gapinc = prefix(np.where(gap & known, inc, 0.0))
    # Increments ending in (start, end].
    a = np.searchsorted(t, starts, "right")
    b = np.searchsorted(t, ends, "right")
    value = p_inc[b] - p_inc[a]
    n = p_known[b] - p_known[a]

    covered = ~gap
    covered[:1] = False  # nothing before the first reading
    cum_cov = np.cumsum(np.where(covered, dt, 0))
    cum_gap = np.cumsum(np.where(gap, dt, 0))
    cov_ns = _covered_until(t, cum_cov, covered, ends) - _covered_until(t, cum_cov, covered, starts)
    gap_ns = _covered_until(t, cum_gap, gap, ends) - _covered_until(t, cum_gap, gap, starts)
    coverage = np.clip(cov_ns / (ends - starts), 0.0, 1.0)
    # Gaps (p, c] overlapping [start, end): c > start and p < end.
    gap_end_t = t[gap]
    gap_start_t = t[np.flatnonzero(gap) - 1] if gap.any() else gap_end_t
    invalid = c.invalid_in(starts, ends)

    values, statuses, lacking, flags, drops, gaps = [], [], [], [], [], []
    # Gaps are disjoint and in time order: those overlapping a window are a contiguous run.
    g_lo = np.searchsorted(gap_end_t, starts, "right")
    g_hi = np.searchsorted(gap_start_t, ends, "left")
    for i in range(len(windows)):
        s, e = starts[i], ends[i]
        lack: list[str] = []
        g = np.arange(g_lo[i], max(g_lo[i], g_hi[i]))
        gaps.append(len(g))
        if n_read == 0:
            lack.append(f"no {name} readings")
        else:
            if t[0] > s and t[0] <= e:
                lack.append(
                    f"no {name} reading before {_ts(t[0])}: consumption from the window start "
                    "to it is unknown"
                )
            elif t[0] > e:
                lack.append(f"no {name} readings up to the window end")
            if s <= t[-1] < e:
                lack.append(
                    f"no {name} reading after {_ts(t[-1])}: consumption from it to the window "
                    "end is not known yet"
                )
            elif t[-1] < s:
                lack.append(f"no {name} readings since {_ts(t[-1])}")
        if len(g):
            hours = gap_ns[i] / 3.6e12
            spans = "; ".join(f"{_ts(gap_start_t[j])} to {_ts(gap_end_t[j])}" for j in g[:3])
            more = f" and {len(g) - 3} more" if len(g) > 3 else ""
            lack.append(
                f"{len(g)} gap(s) longer than {max_gap_s:g} s ({spans}{more}) cover "
                f"{hours:.2f} h of the window; consumption across a gap is counted at the "
                "reading that ends it, never spread"
            )
        if invalid[i]:
            lack.append(f"{invalid[i]} {name} readings in the window not valid (dropped)")
        st = judge(int(n[i]), float(coverage[i]), min_coverage)
        statuses.append(st)
        values.append(np.nan if st == NO_DATA else float(value[i]))
        lacking.append(tuple(lack))
        fl: list[str] = []
        k_reset = int(p_reset[b[i]] - p_reset[a[i]])
        k_roll = int(p_roll[b[i]] - p_roll[a[i]])
        k_jit = int(p_jit[b[i]] - p_jit[a[i]])
        drop = float(r["drop"][a[i] : b[i]].max()) if k_jit else 0.0
        drops.append(drop)
        if k_reset:
            fl.append(f"{k_reset} meter reset(s): the reading after each counts from zero")
        if k_roll:
            fl.append(f"{k_roll} rollover(s) at {rollover_modulus:g}")
        if k_jit:
            fl.append(
                f"{k_jit} reading(s) below the meter's previous high (largest dip {drop:g}): "
                "jitter, not consumption"
            )
        flags.append(tuple(fl))

    return {
        "value": values,
        "n": n.astype(np.int64),
        "coverage": coverage,
        "status": statuses,
        "lacking": lacking,
        "resets": (p_reset[b] - p_reset[a]).astype(np.int64),
        "rollovers": (p_roll[b] - p_roll[a]).astype(np.int64),
        "jitter": (p_jit[b] - p_jit[a]).astype(np.int64),
        "jitter_drop": drops,
        "gaps": np.array(gaps, dtype=np.int64),
        "gap_s": gap_ns / 1e9,
        "gap_consumption": p_gapinc[b] - p_gapinc[a],
        "flags": flags,
    }
