"""Events (``tap_iron_t``, ``tap_temp_c``, ``pipe_output_t``, ``pipe_output_count``): one value
per discrete event, summed or weighted per window, never interpolated.

Kind ``event`` of the glossary: a reading is one event at its timestamp, and belongs to the
window with ``start <= t < end``. Sums add the events of the window. The tonnage-weighted mean
tapping temperature (Table C.1 notes 1 and 2 take one temperature per window, each tap counting
by the iron it delivered) is Σ(T·m)/Σm over the taps that have both a weight and a temperature:

* a tap's temperature and weight are paired by timestamp: the same timestamp, or with
  ``pair_within_s`` > 0 the nearest temperature within that many seconds (one-to-one, the
  closest pair wins; one pass, so a weight that loses its nearest temperature is not paired
  again);
* a weight without a temperature still counts in the tonnes (``event_sums``) but not in the
  mean temperature; the share of tonnes without one lowers the mean's coverage;
* a temperature without a weight is not used (it has nothing to weigh it) and is counted;
* a window whose taps have no temperatures has no mean (no_data), never the specified one.

Coverage for a sum: events carry no record of the events that were missed, so coverage is 1
when the window holds at least one valid event and 0 when it holds none (status no_data: a
furnace that did not tap and a weighing system that did not report look the same here; the
engine tells them apart with the furnace's energy). For the weighted mean, coverage is the
share of the window's tonnes that carried a temperature.

Valid ranges default to the glossary's ``low``/``high`` of the named signal.

Public API: ``event_sums``, ``weighted_event_mean``, ``tonnage_weighted_tap_temp_c``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from greenfoundry import glossary
from greenfoundry.metrics.measured import (
    BAD_INPUT,
    DEFAULT_MIN_COVERAGE,
    NO_DATA,
    check_min_coverage,
    judge,
    window_bounds_ns,
    window_frame,
)
from greenfoundry.metrics.readings import clean_readings


def _range(name: str, valid_range: tuple[float, float] | None) -> tuple[float, float] | None:
    if valid_range is not None:
        return valid_range
    sig = glossary.signal(name)
    return (sig.low, sig.high) if sig else None


def _count_in(times: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    return np.searchsorted(times, ends, "left") - np.searchsorted(times, starts, "left")


def _sum_in(times, values, starts, ends) -> np.ndarray:
    p = np.concatenate(([0.0], np.cumsum(values)))
    return p[np.searchsorted(times, ends, "left")] - p[np.searchsorted(times, starts, "left")]


def event_sums(
    events: pd.Series,
    windows: Sequence,
    *,
    name: str = "events",
    valid_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """The sum of the events of each window, in the events' unit (t for ``tap_iron_t``).

    Returns one row per window (indexed by its start, UTC): ``value`` (the sum; NaN when no
    event), ``n`` (events summed), ``coverage`` (1 with an event, else 0), ``status``,
    ``lacking``. ``name`` picks the glossary's valid range (e.g. "tap_iron_t": 0–200 t) unless
    ``valid_range`` is given; events outside it are dropped and counted.
    """
    return window_frame(windows, _sums_columns(events, windows, name=name, valid_range=valid_range))


def _sums_columns(
    events: pd.Series,
    windows: Sequence,
    *,
    name: str = "events",
    valid_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The columns of ``event_sums`` (``measured.window_frame`` makes its frame of
    them): the engine reads them without building the frame."""
    c = clean_readings(events, name, valid_range=_range(name, valid_range))
    if c.problem:
        return refused_columns(len(windows), c.problem)
    starts, ends = window_bounds_ns(windows)
    n = _count_in(c.times_ns, starts, ends)
    total = _sum_in(c.times_ns, c.values, starts, ends)
    invalid = c.invalid_in(starts, ends)
    values, statuses, lacking = [], [], []
    for i in range(len(windows)):
        lack = []
        if n[i] == 0:
            lack.append(f"no {name} events in the window")
        if invalid[i]:
            lack.append(f"{invalid[i]} {name} events not valid (NaN or out of range), dropped")
        st = judge(int(n[i]), 1.0 if n[i] else 0.0, 1.0)
        statuses.append(st)
        values.append(np.nan if st == NO_DATA else float(total[i]))
        lacking.append(tuple(lack))
    return {
        "value": values,
        "n": n.astype(np.int64),
        "coverage": (n > 0).astype(float),
        "status": statuses,
        "lacking": lacking,
    }


def _pair(wt: np.ndarray, tt: np.ndarray, tol_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into wt, into tt) of the paired events; both time arrays sorted and unique."""
    if len(wt) == 0 or len(tt) == 0:
        empty = np.array([], dtype=np.int64)
        return empty, empty
    if tol_ns == 0:
        j = np.searchsorted(tt, wt)
        j_ok = j < len(tt)
        hit = np.zeros(len(wt), bool)
        hit[j_ok] = tt[j[j_ok]] == wt[j_ok]
        return np.flatnonzero(hit), j[hit]
    left = pd.DataFrame({"t": wt, "i": np.arange(len(wt))})
    right = pd.DataFrame({"t": tt, "tr": tt, "j": np.arange(len(tt))})
    m = pd.merge_asof(left, right, on="t", direction="nearest", tolerance=tol_ns)
    m = m.dropna(subset=["j"])
    m["d"] = (m["t"] - m["tr"]).abs()
    m = m.sort_values(["j", "d", "i"]).drop_duplicates("j", keep="first").sort_values("i")
    return m["i"].to_numpy(np.int64), m["j"].to_numpy(np.int64)


def weighted_event_mean(
    values: pd.Series,
    weights: pd.Series,
    windows: Sequence,
    *,
    pair_within_s: float = 0.0,
    value_name: str = "value",
    weight_name: str = "weight",
    value_range: tuple[float, float] | None = None,
    weight_range: tuple[float, float] | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> pd.DataFrame:
    """Σ(value·weight)/Σweight per window over the events with both (paired as the module
    says), the window picked by the weight's timestamp.

    Columns: ``value`` (the weighted mean; NaN without a pair), ``n`` (pairs used),
    ``coverage`` (paired weight / all weight of the window), ``status``, ``lacking``,
    ``weight_total``, ``weight_paired``, ``weights_without_value``, ``values_without_weight``.
    """
    return window_frame(
        windows,
        _weighted_mean_columns(
            values,
            weights,
            windows,
            pair_within_s=pair_within_s,
            value_name=value_name,
            weight_name=weight_name,
            value_range=value_range,
            weight_range=weight_range,
            min_coverage=min_coverage,
        ),
    )


def _weighted_mean_columns(
    values: pd.Series,
    weights: pd.Series,
    windows: Sequence,
    *,
    pair_within_s: float = 0.0,
    value_name: str = "value",
    weight_name: str = "weight",
    value_range: tuple[float, float] | None = None,
    weight_range: tuple[float, float] | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> dict[str, Any]:
    """The columns of ``weighted_event_mean`` (``measured.window_frame`` makes its frame of
    them): the engine reads them without building the frame."""
    min_coverage = check_min_coverage(min_coverage)
    if pair_within_s < 0:
        raise ValueError(f"pair_within_s {pair_within_s!r}: expected seconds >= 0")
    extra = {
        "weight_total": 0.0,
        "weight_paired": 0.0,
        "weights_without_value": 0,
        "values_without_weight": 0,
    }
    cv = clean_readings(values, value_name, valid_range=_range(value_name, value_range))
    cw = clean_readings(weights, weight_name, valid_range=_range(weight_name, weight_range))
    problem = cv.problem or cw.problem
    if problem:
        return refused_columns(len(windows), problem, extra)
    starts, ends = window_bounds_ns(windows)
    wi, vj = _pair(cw.times_ns, cv.times_ns, round(pair_within_s * 1e9))
    pt, pw, pv = cw.times_ns[wi], cw.values[wi], cv.values[vj]
    n = _count_in(pt, starts, ends)
    w_paired = _sum_in(pt, pw, starts, ends)
    wv = _sum_in(pt, pw * pv, starts, ends)
    w_total = _sum_in(cw.times_ns, cw.values, starts, ends)
    n_w = _count_in(cw.times_ns, starts, ends)
    lone_v = np.ones(len(cv.times_ns), bool)
    lone_v[vj] = False
    n_lone_v = _count_in(cv.times_ns[lone_v], starts, ends)
    n_lone_w = n_w - n
    bad = cv.invalid_in(starts, ends) + cw.invalid_in(starts, ends)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(w_paired > 0, wv / np.where(w_paired > 0, w_paired, 1), np.nan)
        coverage = np.where(w_total > 0, w_paired / np.where(w_total > 0, w_total, 1), 0.0)
    out_v, statuses, lacking = [], [], []
    for i in range(len(windows)):
        lack = []
        if n_w[i] == 0:
            lack.append(f"no {weight_name} events in the window")
        elif n[i] == 0:
            lack.append(f"none of the {n_w[i]} {weight_name} events has a {value_name}")
        elif n_lone_w[i]:
            lack.append(
                f"{n_lone_w[i]} {weight_name} events ({w_total[i] - w_paired[i]:g}) have no "
                f"{value_name}: they count in the sum, not in the mean"
            )
        if w_total[i] == 0 and n_w[i] > 0:
            lack.append(f"the {weight_name} events of the window weigh nothing")
        if n_lone_v[i]:
            lack.append(f"{n_lone_v[i]} {value_name} events have no {weight_name}: not used")
        if bad[i]:
            lack.append(f"{bad[i]} events not valid (NaN or out of range), dropped")
        ok_mean = n[i] > 0 and w_paired[i] > 0
        st = judge(
            int(n[i]) if ok_mean else 0, float(coverage[i]) if ok_mean else 0.0, min_coverage
        )
        statuses.append(st)
        out_v.append(float(mean[i]) if st != NO_DATA else np.nan)
        lacking.append(tuple(lack))
    return {
        "value": out_v,
        "n": n.astype(np.int64),
        "coverage": coverage,
        "status": statuses,
        "lacking": lacking,
        "weight_total": w_total,
        "weight_paired": w_paired,
        "weights_without_value": n_lone_w.astype(np.int64),
        "values_without_weight": n_lone_v.astype(np.int64),
    }


def tonnage_weighted_tap_temp_c(
    tap_temp_c: pd.Series,
    tap_iron_t: pd.Series,
    windows: Sequence,
    *,
    pair_within_s: float = 0.0,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> pd.DataFrame:
    """The tonnage-weighted mean tapping temperature (°C) of one furnace per window, Σ(T·m)/Σm
    (T/CFA 0308011.5-2024, Table C.1 notes 1 and 2; the glossary's ``tap_temp_c`` over a
    window). Columns as ``weighted_event_mean``, with ``weight_total`` and ``weight_paired`` in
    tonnes. Valid ranges: the glossary's (tap_temp_c 1000–1800 °C, tap_iron_t 0–200 t)."""
    return weighted_event_mean(
        tap_temp_c,
        tap_iron_t,
        windows,
        pair_within_s=pair_within_s,
        value_name="tap_temp_c",
        weight_name="tap_iron_t",
        min_coverage=min_coverage,
    )


def refused_columns(k: int, reason: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns of ``measured.bad_input_frame`` for ``k`` windows refused for one reason
    (its frame is ``window_frame`` of these): for the functions that give their columns."""
    cols: dict[str, Any] = {
        "value": np.full(k, np.nan),
        "n": np.zeros(k, dtype=np.int64),
        "coverage": np.zeros(k),
        "status": [BAD_INPUT] * k,
        "lacking": [(reason,)] * k,
    }
    for name, fill in (extra or {}).items():
        cols[name] = [fill] * k
    return cols
