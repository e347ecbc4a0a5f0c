"""Samples per alert target, on event time, from the readings in InfluxDB (alerts/README.md).

The alert engine asks this module for one ``machine.Sample`` per target and step ``t`` of event
time (the multiples of ``alerts.step_s``; every whole minute is one). A sample stands for the
readings before ``t``. Every value is computed by the metrics' own pure functions or, inside a
minute, by their minute rules applied to the minute's part before ``t``:

* **Stack** (``S1/so2``): the rolling hourly mean at a whole minute ``t`` is the mean of the
  valid minute means of the 60 minutes ``[t - 60 min, t)``, by
  ``metrics.emissions.hourly_means_mg_m3`` applied to that sliding hour: minute validity, the
  analyser status (``metrics.rollups.status_codes``), the O₂ correction where
  ``metrics.o2_ref_pct`` asks for it, and ``metrics.min_valid_minutes``. At a step inside minute
  ``m`` it is the mean of the 59 whole minutes before ``m`` and the running part ``[m, t)``, by
  ``partial_rolling_means_mg_m3`` (the same minute rules; the part is one valid minute once it
  has a valid reading; alerts/README.md, "Timing", argues it). ``Sample.value`` is it
  divided by the limit C (``emissions.multiples_of_c``). With fewer valid minutes but a
  concentration reading in the last ``stale_after`` (the analyser is calibrating, say) there is
  no sample at ``t``: the rule's state simply waits. With no concentration reading for
  ``stale_after`` the sample's value is None (STALE). The trend is the least-squares slope of
  the rolling value over the steps of ``(t - trend_window, t]``, fitted when at least half of
  that window's steps have a rolling value; ``trend_value = value + slope × trend_horizon``.
* **Furnace** (``IF1``): the energy per tonne of the running plant-local shift
  (``metrics.shifts``; the shift holding the sample's last instant ``t - 1 ns``) from its start
  up to ``t``: ``metrics.rollups.c1_hours`` and ``c1_finish`` on the window ``[shift start,
  t)``, which apply the counter rules (an increment belongs to the window of its later
  reading), the tap sums, the tonnage-weighted tapping temperature and Table C.1's corrected
  limits (notes 1-4, ``scoring.table_c1``; note 4's site mean air temperature by
  ``metrics.table_c1.annual_mean_air_temp_c`` over the latest complete year at ``t``, the plant
  config's value when the readings do not cover it). ``c1_finish`` runs at the first step
  after each tap and the value is scaled with the consumption until the next (see
  ``_furnace``). ``Sample.value`` = kWh/t (kgce/t for a cupola) ÷ the corrected limit of the
  rule's tier (``Rule.tier``; ``TIER_OF_RULE`` for the default ids). No sample until the shift
  has a tap; value None when the energy meter has been silent for ``stale_after``.
* **Deadman** (``stack_conc_mg_m3:S1/so2``; the target's item names the signal and its
  device): the seconds from the signal's newest reading before ``t`` to ``t``. A signal with
  no reading in the whole look-back (31 days) counts from the start of the look-back: a lower
  bound, large enough to fire.

Reading is incremental (``SignalReader.read``): one bounded request per measurement per tick
for every target of the plant. The first read of a reader goes back far enough for the
rolling mean (60 minutes), the trend window and the running shift's start, and asks each
series' last reading before that (the analyser status in force, a counter's first increment,
a deadman's newest reading). Later reads re-read only from 60 minutes before the minutes to
evaluate (a reading that arrives late within that hour is still seen), keeping in memory what
older readings the running shift needs and the rolling values the trend needs.

Public API: ``SignalReader``, ``TIER_OF_RULE``, ``tier_index``, ``rolling_windows``,
``partial_rolling_means_mg_m3``, ``step_times``, ``least_squares_slope_per_s``,
``deadman_series``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from greenfoundry.alerts.machine import Sample
from greenfoundry.errors import ConfigError
from greenfoundry.metrics import emissions, rollups, source
from greenfoundry.metrics import windows as win
from greenfoundry.metrics.factors import load_factors
from greenfoundry.metrics.instantaneous import default_range
from greenfoundry.metrics.readings import clean_codes, clean_readings
from greenfoundry.metrics.table_c1 import AirTemp, FurnaceFacts, annual_mean_air_temp_c
from greenfoundry.store import quote_ident, where

log = logging.getLogger("greenfoundry.alerts")

NS = 1_000_000_000
NS_PER_MIN = 60 * NS
HOUR_NS = 60 * NS_PER_MIN
# How far back the first read looks for a series' last reading (the read_range default).
LOOKBACK_NS = 31 * 24 * HOUR_NS
AMBIENT = "ambient_temp_c"
# The furnace rules compare the running shift's kWh/t with the corrected limit of one Table
# C.1 tier: moving into tier 2 means passing the tier-1 limit, and so on.
TIER_OF_RULE = {"furnace-tier2": 1, "furnace-tier3": 2, "furnace-beyond": 3}
# Seconds per hour, for slopes shown per hour.
S_PER_H = 3600.0
# The analyser status codes that keep a minute valid (the metrics' default).
NORMAL = frozenset(emissions.NORMAL_STATUS_CODES)


def tier_index(rule) -> int:
    """The Table C.1 tier (1, 2, 3) whose corrected limit a furnace rule divides by: the rule's
    own ``tier`` when its config has one, else by its default id (``TIER_OF_RULE``)."""
    tier = getattr(rule, "tier", None) or rule.match.get("tier") or TIER_OF_RULE.get(rule.id)
    try:
        tier = int(tier)
    except (TypeError, ValueError):
        tier = 0
    if tier not in (1, 2, 3):
        raise ConfigError(
            f"alerts.rules[{rule.id}]: a furnace rule needs a Table C.1 tier (1, 2 or 3) whose "
            f"limit it divides by; the defaults are {TIER_OF_RULE}"
        )
    return tier


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def rolling_windows(minutes_ns: Sequence[int], tz: str) -> list[win.Window]:
    """The sliding hour ``[t - 60 min, t)`` of each whole minute ``t`` (UTC ns), as 60-minute
    windows for ``emissions.hourly_means_mg_m3`` (which takes any 60-minute windows)."""
    return [
        win.Window("hour", _ts(t - HOUR_NS), _ts(t), tz, f"rolling hour to {_ts(t).isoformat()}")
        for t in minutes_ns
    ]


def step_times(start_ns: int, end_ns: int, step_ns: int) -> np.ndarray:
    """The steps of event time (multiples of ``step_ns``, UTC ns) in ``(start_ns, end_ns]``."""
    first = start_ns - start_ns % step_ns + step_ns
    return np.arange(first, end_ns + 1, step_ns, dtype=np.int64)


def _slots(times_ns: np.ndarray, values: np.ndarray, starts_ns: np.ndarray, length_ns: int):
    """The readings of each slot ``[start, start + length)`` (``starts_ns`` sorted, at least
    ``length_ns`` apart): how many and their mean (NaN without one). The sum runs over the
    slot's readings in time order, as ``instantaneous.minutes_from`` sums a minute's."""
    k = len(starts_ns)
    i = np.searchsorted(starts_ns, times_ns, "right") - 1
    inside = i >= 0
    inside[inside] = times_ns[inside] < starts_ns[i[inside]] + length_ns
    n = np.bincount(i[inside], minlength=k).astype(np.int64)
    total = np.bincount(i[inside], weights=values[inside], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return n, np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _slot_validity(c, status, o2, o2_ref_pct, starts_ns: np.ndarray, length_ns: int):
    """Each slot's validity and mean (mg/m³, at the reference O₂ when corrected) by the
    minute rules of ``emissions.hourly_means_mg_m3`` applied to ``[start, start + length)``:
    a valid concentration reading in it, the analyser status normal throughout it (the code in
    force at its start and every change inside it), and with the O₂ correction a valid O₂
    reading in it. ``length_ns`` = 1 min is a whole minute; less is a minute's first part."""
    n, mean = _slots(c.times_ns, c.values, starts_ns, length_ns)
    has = n > 0
    flagged = np.zeros(len(starts_ns), bool)
    if status is not None and len(status[0]):
        ts, cs = status
        bad = np.array([code not in NORMAL for code in cs], bool)
        at = np.searchsorted(ts, starts_ns, "right") - 1
        known = at >= 0
        flagged[known] = bad[at[known]]
        bad_t = ts[bad]
        if len(bad_t):
            first_in = np.searchsorted(bad_t, starts_ns, "right")
            inside = first_in < len(bad_t)
            inside[inside] = bad_t[first_in[inside]] < starts_ns[inside] + length_ns
            flagged |= inside
    no_o2 = np.zeros(len(starts_ns), bool)
    if o2 is not None:
        _, o2_mean = _slots(o2.times_ns, o2.values, starts_ns, length_ns)
        corrected = emissions.o2_corrected_mg_m3(mean, o2_mean, float(o2_ref_pct))
        no_o2 = has & ~flagged & np.isnan(corrected)
        mean = corrected
    return has & ~flagged & ~no_o2, mean


def partial_rolling_means_mg_m3(
    conc_mg_m3: pd.Series,
    steps_ns: np.ndarray,
    *,
    status: pd.Series | None = None,
    o2_pct: pd.Series | None = None,
    o2_ref_pct: float | None = None,
    min_valid_minutes: int = emissions.HOURLY_MIN_VALID_MINUTES,
    name: str = rollups.STACK_SIGNAL,
) -> tuple[np.ndarray, np.ndarray]:
    """The rolling hourly mean (mg/m³; NaN when not valid) and its valid minutes at each step
    ``t`` inside a minute (``steps_ns`` sorted, none a whole minute): the 59 whole minutes
    before ``floor_min(t)`` and the running minute's part ``[floor_min(t), t)``, 60 minutes
    in all, each valid or not by ``_slot_validity``; valid with at least
    ``min_valid_minutes`` valid minutes, the running part counting as one minute when it has
    a valid reading (alerts/README.md, "Timing", argues it). The readings are checked as
    ``emissions.hourly_means_mg_m3`` checks them; a refused series gives NaN throughout."""
    if not 1 <= min_valid_minutes <= 60:
        raise ValueError(f"min_valid_minutes {min_valid_minutes!r}: expected 1..60")
    if (o2_ref_pct is None) != (o2_pct is None):
        raise ValueError("oxygen correction needs both o2_pct readings and o2_ref_pct")
    steps = np.asarray(steps_ns, dtype=np.int64)
    k = len(steps)
    nan, zero = np.full(k, np.nan), np.zeros(k, dtype=np.int64)
    into = steps % NS_PER_MIN
    if k == 0:
        return nan, zero
    if np.any(into == 0):
        raise ValueError("partial rolling means are for steps inside a minute")
    c = clean_readings(conc_mg_m3, name, valid_range=default_range(name, None))
    if c.problem:
        return nan, zero
    codes = None
    if status is not None:
        ts, cs, problem = clean_codes(status, "analyser status")
        if problem:
            return nan, zero
        codes = (ts, cs)
    o2 = None
    if o2_pct is not None:
        o2 = clean_readings(o2_pct, "o2_pct", valid_range=(0.0, 100.0))
        if o2.problem:
            return nan, zero
    minute = steps - into
    # The whole minutes: one grid over every step's 59, from the first step's oldest.
    grid = np.arange(minute[0] - 59 * NS_PER_MIN, minute[-1], NS_PER_MIN, dtype=np.int64)
    w_valid, w_mean = _slot_validity(c, codes, o2, o2_ref_pct, grid, NS_PER_MIN)
    first = (minute - 59 * NS_PER_MIN - grid[0]) // NS_PER_MIN
    cols = first[:, None] + np.arange(59)[None, :]
    valid = np.empty((k, 60), bool)
    value = np.empty((k, 60), float)
    valid[:, :59], value[:, :59] = w_valid[cols], w_mean[cols]
    # The running minute's part, by how far into the minute the step is (slots of one
    # length may not overlap: the minutes of one offset are distinct).
    for offset in np.unique(into):
        sel = np.flatnonzero(into == offset)
        p_valid, p_mean = _slot_validity(c, codes, o2, o2_ref_pct, minute[sel], int(offset))
        valid[sel, 59], value[sel, 59] = p_valid, p_mean
    n_valid = valid.sum(axis=1)
    total = np.where(valid, value, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_valid >= min_valid_minutes, total / np.maximum(n_valid, 1), np.nan)
    return mean, n_valid.astype(np.int64)


def least_squares_slope_per_s(times_ns: np.ndarray, values: np.ndarray) -> float | None:
    """The ordinary least-squares slope of ``values`` over ``times_ns``, per second; None with
    fewer than two points or no spread in time."""
    if len(times_ns) < 2:
        return None
    x = (times_ns - times_ns[-1]).astype(float) / NS
    xm = x.mean()
    sxx = float(((x - xm) ** 2).sum())
    if sxx <= 0:
        return None
    return float(((x - xm) * (values - values.mean())).sum() / sxx)


def deadman_series(item: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A deadman target's item (``{"signal": "stack_conc_mg_m3", "stack": "S1", "pollutant":
    "so2"}``, ``{"signal": "furnace_energy_kwh", "furnace": "IF1"}``) as the measurement and
    the tags of its series (the device is the stack or the furnace, ingest/README.md)."""
    measurement = item.get("signal")
    device = item.get("stack") or item.get("furnace")
    if not measurement or not device:
        raise ConfigError(f"alerts: a deadman target needs a signal and its device, got {item!r}")
    tags = {"device": device}
    if item.get("pollutant"):
        tags["pollutant"] = item["pollutant"]
    return measurement, tags


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.array([], dtype=np.int64), np.array([], dtype=float)


@dataclass
class _Series:
    """One series' readings in memory, in time order (``times_ns`` int64 UTC, ``values``)."""

    times_ns: np.ndarray
    values: np.ndarray

    def as_pandas(self) -> pd.Series:
        return pd.Series(
            self.values, index=pd.DatetimeIndex(pd.to_datetime(self.times_ns, utc=True))
        )


def _target_store_key(target) -> str:
    return f"{target.rule.id}|{target.key}"


class SignalReader:
    """The readings of one plant's alert targets, read incrementally, and their samples.

    ``targets``: ``AlertsConfig.targets(cfg)``. ``read(from_ns, to_ns)`` brings the readings of
    ``[from_ns, to_ns)`` in (one bounded request per measurement); ``samples(start_ns,
    end_ns)`` gives every target's samples at the steps of ``(start_ns, end_ns]``, which
    must lie inside what was read. ``newest_ns`` is the newest reading of any input seen."""

    def __init__(self, cfg, store, acfg, targets: Iterable):
        self.cfg = cfg
        self.store = store
        self.acfg = acfg
        self.m = cfg.metrics
        self.tz = cfg.plant.timezone
        self.plant_id = cfg.plant.id
        self.targets = tuple(targets)
        self.shifts = {name: start for name, start in self.m.shifts}
        self.stacks = {s.id: s for s in cfg.stacks}
        self.furnaces = {f.id: f for f in cfg.furnaces}
        self.facts = {f.id: FurnaceFacts.from_plant(f, cfg.plant.product) for f in cfg.furnaces}
        self.coke = load_factors(self.m.factors).kgce("coke").value
        self.stack_items: set[tuple[str, str]] = set()
        self.furnace_items: set[str] = set()
        self.deadmen: dict[str, tuple[str, dict[str, str]]] = {}
        for t in self.targets:
            kind = t.rule.kind
            if kind == "stack":
                self.stack_items.add((t.item["stack"], t.item["pollutant"]))
            elif kind == "furnace":
                self.furnace_items.add(t.item["furnace"])
                tier_index(t.rule)  # a furnace rule without a tier fails here, at start
            elif kind == "deadman":
                self.deadmen[t.key] = deadman_series(t.item)
        ms: set[str] = set()
        if self.stack_items:
            ms |= {rollups.STACK_SIGNAL, rollups.STATUS_SIGNAL}
            if any(self.m.o2_ref_pct.get(s) for s, _ in self.stack_items):
                ms.add(rollups.O2_SIGNAL)
        for fid in self.furnace_items:
            ms |= {rollups.ENERGY_SIGNAL[self.furnaces[fid].kind], "tap_iron_t", "tap_temp_c"}
        ms |= {m for m, _ in self.deadmen.values()}
        self.measurements = tuple(sorted(ms))
        self.buffer: dict[str, dict[source.SeriesKey, _Series]] = {}
        self.read_from_ns: int | None = None  # the start of what the buffer holds
        self.read_to_ns: int | None = None  # … and its end
        self.lookback_from_ns: int | None = None  # a series' "last before" was looked for here
        self.newest_by_series: dict[source.SeriesKey, int] = {}
        # Rolling values already computed (multiple of C per minute), for the trend.
        self.rolling: dict[tuple[str, str], dict[int, float]] = {}
        self._air: dict[str, AirTemp] = {}
        self._air_by_span: dict[tuple[int, int], AirTemp] = {}
        self.step_ns = int(getattr(acfg, "step_s", 60)) * NS
        self.requests = 0  # InfluxDB requests made (the benchmark and the tests count them)
        # Readings dropped because their value is not a number, by measurement (re-read
        # readings count again: a count of what was seen, for the log and the tests).
        self.dropped: dict[str, int] = {}

    # ---- reading -------------------------------------------------------------------------

    def first_read_from(self, start_ns: int) -> int:
        """Where a reader's first read must begin for samples after ``start_ns``: the rolling
        hour and the trend window before it, and the start of the shift running at it."""
        a = start_ns - self.acfg.trend_window_s * NS - HOUR_NS
        if self.furnace_items:
            shift = win.window_containing(_ts(start_ns - 1), "shift", self.tz, shifts=self.shifts)
            a = min(a, shift.start.value)
        return a

    def read(self, from_ns: int, to_ns: int) -> None:
        """Bring the readings of ``[from_ns, to_ns)`` into memory: those before the buffer's
        end are read again (late data), older ones already held are kept."""
        if to_ns <= from_ns or not self.measurements:
            return
        first = self.read_to_ns is None
        if first:
            self.lookback_from_ns = from_ns - LOOKBACK_NS
        else:
            from_ns = max(min(from_ns, self.read_to_ns), self.read_from_ns)
        w = where({"plant": self.plant_id}, start_ns=from_ns, end_ns=to_ns)
        w0 = (
            where({"plant": self.plant_id}, start_ns=self.lookback_from_ns, end_ns=from_ns)
            if first
            else None
        )
        for m in self.measurements:
            # One request per measurement: its range and, on the first read, the last reading
            # of each of its series before the range.
            q = f'SELECT "value" FROM {quote_ident(m)} {w} GROUP BY *'
            if first:
                q += f';SELECT LAST("value") AS value FROM {quote_ident(m)} {w0} GROUP BY *'
            results = self.store.query_raw(q)
            self.requests += 1
            fresh = _parse(m, results[0] if results else {}, self.dropped)
            before = _parse(m, results[1] if first and len(results) > 1 else {}, self.dropped)
            held = self.buffer.setdefault(m, {})
            for key in set(held) | set(fresh) | set(before):
                parts_t, parts_v = [], []
                if key in before:
                    parts_t.append(before[key].times_ns)
                    parts_v.append(before[key].values)
                if key in held:
                    keep = held[key].times_ns < from_ns
                    parts_t.append(held[key].times_ns[keep])
                    parts_v.append(held[key].values[keep])
                if key in fresh:
                    parts_t.append(fresh[key].times_ns)
                    parts_v.append(fresh[key].values)
                t = np.concatenate(parts_t) if parts_t else _empty()[0]
                v = np.concatenate(parts_v) if parts_v else _empty()[1]
                held[key] = _Series(t, v)
                if len(t):
                    self.newest_by_series[key] = max(
                        int(t[-1]), self.newest_by_series.get(key, int(t[-1]))
                    )
        self.read_from_ns = from_ns if first else self.read_from_ns
        self.read_to_ns = to_ns if first else max(self.read_to_ns, to_ns)

    @property
    def newest_ns(self) -> int | None:
        """The newest reading of any of the plant's alert inputs seen so far."""
        return max(self.newest_by_series.values(), default=None)

    def trim(self, keep_from_ns: int) -> None:
        """Forget readings before ``keep_from_ns`` (each series keeps its last one before it:
        the status in force, a counter's previous total, a deadman's newest reading)."""
        if self.read_from_ns is None or keep_from_ns <= self.read_from_ns:
            return
        for series in self.buffer.values():
            for key, s in series.items():
                cut = int(np.searchsorted(s.times_ns, keep_from_ns, "left"))
                if cut > 1:
                    series[key] = _Series(s.times_ns[cut - 1 :], s.values[cut - 1 :])
        self.read_from_ns = keep_from_ns

    def keep_from(self, cursor_ns: int) -> int:
        """What the next ``samples`` after ``cursor_ns`` needs held: its rolling hour and the
        running shift's start."""
        a = cursor_ns - HOUR_NS
        if self.furnace_items:
            shift = win.window_containing(_ts(cursor_ns), "shift", self.tz, shifts=self.shifts)
            a = min(a, shift.start.value)
        return a

    def _series(self, measurement: str, **tags: str) -> _Series:
        found = (
            [
                s
                for (m, t), s in self.buffer.get(measurement, {}).items()
                if m == measurement and all(dict(t).get(k) == v for k, v in tags.items())
            ]
            if measurement in self.buffer
            else []
        )
        if not found:
            return _Series(*_empty())
        if len(found) == 1:
            return found[0]
        t = np.concatenate([s.times_ns for s in found])
        v = np.concatenate([s.values for s in found])
        order = np.argsort(t, kind="stable")
        return _Series(t[order], v[order])

    # ---- samples ---------------------------------------------------------------------------

    def samples(self, start_ns: int, end_ns: int) -> dict[str, list[Sample]]:
        """Every target's samples at the steps ``t`` (multiples of ``alerts.step_s``) with
        ``start_ns < t <= end_ns``, by the target's store key ("rule_id|target"), in time
        order."""
        steps = step_times(start_ns, end_ns, self.step_ns)
        out: dict[str, list[Sample]] = {_target_store_key(t): [] for t in self.targets}
        if len(steps) == 0:
            return out
        stack = {item: self._stack(item, steps) for item in sorted(self.stack_items)}
        furnace = {fid: self._furnace(fid, steps) for fid in sorted(self.furnace_items)}
        for t in self.targets:
            key = _target_store_key(t)
            kind = t.rule.kind
            if kind == "stack":
                out[key] = stack[(t.item["stack"], t.item["pollutant"])]
            elif kind == "furnace":
                fid = t.item["furnace"]
                out[key] = _furnace_samples(
                    fid, furnace[fid], tier_index(t.rule), self.acfg.stale_after_s
                )
            elif kind == "deadman":
                m, tags = self.deadmen[t.key]
                out[key] = self._deadman(m, tags, steps)
        return out

    def _age_s(self, s: _Series, steps: np.ndarray) -> np.ndarray:
        """Seconds from the newest reading before each step to it (lower bound from the
        look-back's start when there is none)."""
        i = np.searchsorted(s.times_ns, steps, "left") - 1
        floor = self.lookback_from_ns if self.lookback_from_ns is not None else steps[0]
        newest = np.where(i >= 0, s.times_ns[np.maximum(i, 0)] if len(s.times_ns) else 0, floor)
        return (steps - newest) / NS

    def _deadman(self, m: str, tags: dict, steps: np.ndarray) -> list[Sample]:
        s = self._series(m, **tags)
        age = self._age_s(s, steps)
        return [
            Sample(int(t), float(a), None, {"seconds_since_reading": float(a), "signal": m})
            for t, a in zip(steps, age, strict=True)
        ]

    def _stack(self, item: tuple[str, str], steps: np.ndarray) -> list[Sample]:
        sid, pol = item
        stack = self.stacks[sid]
        limit = float(stack.limits_mg_m3[pol])
        conc = self._series(rollups.STACK_SIGNAL, device=sid, pollutant=pol)
        cache = self.rolling.setdefault(item, {})
        window_ns = self.acfg.trend_window_s * NS
        # Rolling values for the new steps and, on a fresh reader, the trend window before.
        need = step_times(steps[0] - window_ns, steps[-1], self.step_ns)
        need = need[[int(t) not in cache for t in need]] if cache else need
        need = need[need - HOUR_NS >= (self.read_from_ns or need[0] - HOUR_NS)]
        valid_minutes: dict[int, int] = {}
        if len(need):
            o2_ref = self.m.o2_ref_pct.get(sid)
            status = rollups.status_codes(
                self._series(rollups.STATUS_SIGNAL, device=sid).as_pandas()
            )
            o2 = (
                self._series(rollups.O2_SIGNAL, device=sid).as_pandas()
                if o2_ref is not None
                else None
            )
            whole = need[need % NS_PER_MIN == 0]
            if len(whole):
                # A whole minute: the 60 minutes before it, by the metrics' hourly means.
                hourly = emissions.hourly_means_mg_m3(
                    conc.as_pandas(),
                    rolling_windows(whole, self.tz),
                    status=status,
                    o2_pct=o2,
                    o2_ref_pct=o2_ref,
                    min_valid_minutes=self.m.min_valid_minutes,
                )
                mult = emissions.multiples_of_c(hourly, limit).to_numpy(float)
                for t, v, n in zip(whole, mult, hourly["valid_minutes"], strict=True):
                    cache[int(t)] = float(v)
                    valid_minutes[int(t)] = int(n)
            inside = need[need % NS_PER_MIN != 0]
            if len(inside):
                mg, n_valid = partial_rolling_means_mg_m3(
                    conc.as_pandas(),
                    inside,
                    status=status,
                    o2_pct=o2,
                    o2_ref_pct=o2_ref,
                    min_valid_minutes=self.m.min_valid_minutes,
                )
                for t, v, n in zip(inside, mg / limit, n_valid, strict=True):
                    cache[int(t)] = float(v)
                    valid_minutes[int(t)] = int(n)
        age = self._age_s(conc, steps)
        stale_s = self.acfg.stale_after_s
        out = []
        times = np.array(sorted(cache), dtype=np.int64)
        values = np.array([cache[int(t)] for t in times], dtype=float)
        for t, a in zip(steps, age, strict=True):
            t = int(t)
            if a >= stale_s:
                out.append(Sample(t, None, None, {"seconds_since_reading": float(a)}))
                continue
            v = cache.get(t, float("nan"))
            if np.isnan(v):
                continue  # readings present, too few valid minutes (calibration …): no sample
            lo_i = int(np.searchsorted(times, t - window_ns, "right"))
            hi_i = int(np.searchsorted(times, t, "right"))
            wt, wv = times[lo_i:hi_i], values[lo_i:hi_i]
            ok = ~np.isnan(wv)
            slope = None
            if ok.sum() * 2 >= window_ns // self.step_ns:
                slope = least_squares_slope_per_s(wt[ok], wv[ok])
            trend = None if slope is None else v + slope * self.acfg.trend_horizon_s
            n = valid_minutes.get(t)
            shown = {
                "stack": sid,
                "pollutant": pol,
                "mg_m3": v * limit,
                "limit_mg_m3": limit,
                "multiple_of_c": v,
                "valid_minutes": n,
                "slope_per_h": None if slope is None else slope * S_PER_H,
                "trend_horizon_h": self.acfg.trend_horizon_s / S_PER_H,
                "unit": "C",
            }
            out.append(Sample(t, v, trend, shown))
        # The trend needs only the last trend window of rolling values.
        for t in [t for t in cache if t <= steps[-1] - window_ns]:
            del cache[t]
        return out

    def air_temp(self, t_ns: int) -> AirTemp:
        """Table C.1 note 4 at ``t_ns``: the site mean air temperature of the latest calendar
        year complete then, from its ``ambient_temp_c`` readings (read once, by month), else
        the plant config's value (``table_c1.annual_mean_air_temp_c`` decides)."""
        for (a, b), at in self._air_by_span.items():
            if a <= t_ns < b:
                return at
        year = win.latest_complete("year", _ts(t_ns), self.tz)
        # The value holds while t lies in the year after it.
        this_year = win.window_containing(year.end, "year", self.tz)
        if year.label not in self._air:
            parts = []
            for month in win.windows_covering("month", year.start, year.end, self.tz):
                r = source.read_range(
                    self.store, self.plant_id, (AMBIENT,), month.start.value, month.end.value
                )
                self.requests += 1
                parts.extend(r.series.values())
            ambient = (
                pd.concat(parts).sort_index()
                if parts
                else pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
            )
            self._air[year.label] = annual_mean_air_temp_c(
                ambient,
                year,
                self.tz,
                config_value_c=self.cfg.plant.annual_mean_air_temp_c,
                hold_minutes=self.m.ambient_hold_minutes,
                min_coverage=self.m.min_coverage,
            )
        self._air_by_span[(this_year.start.value, this_year.end.value)] = self._air[year.label]
        return self._air[year.label]

    def _furnace(self, fid: str, steps: np.ndarray) -> list:
        """For each step: (step, its window, FurnaceC1 or None, seconds since the energy
        meter's newest reading)."""
        furnace = self.furnaces[fid]
        sig = rollups.ENERGY_SIGNAL[furnace.kind]
        age = self._age_s(self._series(sig, device=fid), steps)
        shifts = win.windows_covering(
            "shift", _ts(steps[0] - 1), _ts(steps[-1]), self.tz, shifts=self.shifts
        )
        ends = np.array([w.end.value for w in shifts], dtype=np.int64)
        windows = []
        for t in steps:
            sh = shifts[int(np.searchsorted(ends, t - 1, "right"))]
            windows.append(win.Window("shift", sh.start, _ts(t), self.tz, sh.label))
        readings = source.Readings(
            {
                source.series_key(m, {"device": fid}): self._series(m, device=fid).as_pandas()
                for m in (sig, "tap_iron_t", "tap_temp_c")
            },
            0,
        )
        parts = rollups.c1_hours(
            readings,
            windows,
            furnace,
            rollover=self.m.rollover_modulus.get(fid),
            min_coverage=self.m.min_coverage,
        )
        out = []
        ref = None  # (tap key, FurnaceC1, partial) of the running stretch between taps
        for t, a, w, p in zip(steps, age, windows, parts, strict=True):
            r = None
            if p["taps"] and a < self.acfg.stale_after_s:
                air = self.air_temp(int(t))
                # Table C.1's corrected limits change only with the taps (the tapping
                # temperature) and the year (note 4). Between two taps only the energy moves,
                # and c1_finish's energy per tonne is proportional to the counter's consumption
                # (kWh as read, coke kg × its kgce factor): it is finished once per stretch
                # and scaled within it, which keeps a day's catch-up to a few hundred calls of
                # table_c1_limits instead of one a minute.
                key = (w.start.value, p["taps"], p["iron_t"], p["tw"], p["tw_t"], air.year)
                exact = bool(p["e_bad"] or p["t_bad"]) or p["e_n"] == 0 or p["e"] <= 0
                if ref is not None and ref[0] == key and not exact and ref[1].value is not None:
                    r0, scale = ref[1], p["e"] / ref[2]["e"]
                    r = dataclasses.replace(r0, value=r0.value * scale, energy=r0.energy * scale)
                else:
                    r = rollups.c1_finish(
                        w,
                        p,
                        furnace,
                        self.facts[fid],
                        air=air,
                        product=self.cfg.plant.product,
                        coke_kgce_per_kg=self.coke,
                        min_coverage=self.m.min_coverage,
                        # Li (clause 5.2.2) is no part of an alert: no floors, so the
                        # standard's policy is not loaded at every call.
                        li_floors={},
                    )
                    if not exact:
                        ref = (key, r, p)
            out.append((int(t), w, r, float(a)))
        return out


def _furnace_samples(fid: str, rows: list, tier: int, stale_after_s: int) -> list[Sample]:
    """A furnace rule's samples: the running shift's energy per tonne ÷ its tier's limit."""
    out = []
    for t, w, r, age_s in rows:
        if age_s >= stale_after_s:
            out.append(Sample(t, None, None, {"furnace": fid, "seconds_since_reading": age_s}))
            continue
        if r is None or r.value is None or r.limits is None:
            continue  # no tap yet in the running shift (or no energy): no sample
        limit = float(r.limits.limits[tier - 1])
        shown = {
            "furnace": fid,
            "value_per_t": r.value,
            "unit_per_t": r.unit,
            "limit_per_t": limit,
            "tier_limit": tier,
            "energy": r.energy,
            "energy_unit": r.energy_unit,
            "iron_t": r.iron_t,
            "tap_temp_c": r.tap_temp_c,
            "annual_mean_air_temp_c": r.annual_mean_air_temp_c,
            "shift": w.label,
            "shift_start_ns": w.start.value,
            "status": r.status,
            "unit": "of the limit",
        }
        out.append(Sample(t, r.value / limit, None, shown))
    return out


def _parse(
    measurement: str, result: dict, dropped: dict[str, int] | None = None
) -> dict[source.SeriesKey, _Series]:
    """One statement's answer (``InfluxStore.query_raw``) as series of numeric readings; a
    reading whose value is not a number (a string or boolean field) is dropped and counted in
    ``dropped`` by measurement (the metrics give its windows bad_input)."""
    out: dict[source.SeriesKey, _Series] = {}
    for series in result.get("series", []):
        key = source.series_key(
            measurement, {k: v for k, v in (series.get("tags") or {}).items() if v}
        )
        cols = series["columns"]
        vi = cols.index("value")
        values = series.get("values", [])
        rows = [
            (int(r[0]), float(r[vi]))
            for r in values
            if isinstance(r[vi], int | float) and not isinstance(r[vi], bool)
        ]
        if dropped is not None and len(rows) < len(values):
            dropped[measurement] = dropped.get(measurement, 0) + len(values) - len(rows)
        t = np.array([r[0] for r in rows], dtype=np.int64)
        v = np.array([r[1] for r in rows], dtype=float)
        if key in out:
            t = np.concatenate([out[key].times_ns, t])
            v = np.concatenate([out[key].values, v])
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
        out[key] = _Series(t, v)
    return out


__all__ = [
    "TIER_OF_RULE",
    "SignalReader",
    "deadman_series",
    "least_squares_slope_per_s",
    "partial_rolling_means_mg_m3",
    "rolling_windows",
    "step_times",
    "tier_index",
]
