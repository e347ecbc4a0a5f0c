"""Fault modes of the simulated plant: transport, sensor, meter, analyser and process faults.

Every mode is off by default. When on, a fault is a pure function of the seed, the device or topic
and the day (or week), like the plant itself, so a run with faults is as reproducible as one
without and a time range can be simulated in pieces with the same result.

- ``gaps``: a device falls silent for a while (its gateway drops off the network). The readings
  it would have sent are lost, but its sequence numbers keep counting, so the ingest sees a
  sequence gap when it comes back.
- ``drift``: an instantaneous sensor (or a tap thermocouple) reads high by an offset that grows
  linearly for one to four days, then drops back to zero at recalibration. Counters never drift.
- ``spikes``: single outliers on instantaneous signals and tap temperatures (an EMI hit, a loose
  contact): one reading many times too high, the next one normal again.
- ``bad_payloads``: extra messages, sent between the good ones, that the ingest must reject, each
  with the rejection reason it must give (`ingest/README.md`, Rejections).
- ``late``: a device's gateway buffers its readings for a while (10–120 min) and sends them when
  it comes back, after the newer readings of other devices: readings arrive late and out of
  order, with their own timestamps (``Event.sent_ms`` > ``ts_ms``). Nothing is lost.
- ``resets``: a counter is replaced or reset (about one in two counters a week): from that
  instant it reads from zero. Consumption is unchanged; the reading drops.
- ``rollovers``: counters have a register that wraps at ``ROLLOVER_MODULUS`` of their canonical
  unit (a 6-digit kWh register, a 5-digit m³ register): they read total mod M.
- ``calibration``: each stack analyser calibrates for ``calibration_minutes`` (15) once a day at
  a drawn time: its status reads 1 and its concentrations read the span gas (0.9 × C), which
  are not valid data. Each outfall's analysers calibrate for two hours a day; each boundary
  noise monitor that publishes ``noise_monitor_status`` is checked with its acoustic
  calibrator for two minutes a day: its status reads 1 and its 1-minute Leqs read the
  calibrator's tone (94 dB(A)). A monitor without a status topic is not calibrated in the
  simulation (the metrics could not tell its tone from the plant's noise).
- ``stack_drift``: a stack's filter wears: one stack and pollutant (``stack_drift_target``, by
  default the config's first stack and its first pollutant) rises, in a 28-day cycle, from its
  normal level on day 14 linearly to a mean of ``stack_drift_multiple`` (0.8) × C on day 28,
  when the bags are changed and it drops back. ``stack_drift_episode_s`` replaces the cycle by
  one episode (start, peak), as the demo does.
- ``hot_furnace``: a furnace (``hot_furnace_id``, by default the first) taps ``hot_furnace_k``
  (30 K) hotter than it should, within 1450–1550 °C, and its superheating takes the energy that
  needs (the same cycle times, a higher heating power). This is the plant's truth, not a sensor
  error: the ground truth follows it.

Every event a fault changed carries its name in ``Event.fault`` (one name; a process fault wins
over a meter fault, a meter fault over a sensor fault, and every other over ``late``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from greenfoundry.errors import UsageError

MODES = (
    "gaps",
    "drift",
    "spikes",
    "bad_payloads",
    "late",
    "resets",
    "rollovers",
    "calibration",
    "stack_drift",
    "hot_furnace",
)
# Registers that wrap, by canonical unit: a 6-digit kWh/kvarh register, a 5-digit m³ register,
# a 7-digit kg register.
ROLLOVER_MODULUS = {"kWh": 1e6, "kvarh": 1e6, "m3": 1e5, "kg": 1e7}
STACK_DRIFT_CYCLE_DAYS = 28
STACK_DRIFT_START_DAY = 14  # of the cycle: the filter wears from here to the cycle's end
# What the analyser status codes mean (glossary `stack_analyser_status`).
ANALYSER_STATUS = {0: "normal", 1: "calibration", 2: "maintenance", 3: "fault"}
OUTFALL_CALIBRATION_S = 2 * 3600.0  # an outfall analyser's daily calibration (fault calibration)
# A boundary noise monitor's daily check with a class 1 acoustic calibrator (IEC 60942): a 1 kHz
# tone of 94 dB at the microphone (A-weighting is 0 dB at 1 kHz) for two minutes.
NOISE_CALIBRATION_S = 120.0
NOISE_CALIBRATOR_DBA = 94.0

# Rejection reasons the bad payloads exercise (ingest/README.md). `unknown_plant` is left out by
# default: an ingest that subscribes to its own plant only never receives such a message, so it
# could not count it. `bad_topic` and `oversized` are left out for the same kind of reason (a
# subscription filter or the broker's size limit may stop them first).
BAD_KINDS = (
    "malformed_json",
    "bad_shape",
    "unknown_topic",
    "missing_timestamp",
    "bad_timestamp",
    "timestamp_future",
    "missing_value",
    "bad_value",
    "non_finite",
    "unknown_unit",
    "implausible",
    "bad_seq",
    "unknown_key",
)
ALL_BAD_KINDS = (*BAD_KINDS, "unknown_plant")


@dataclass(frozen=True)
class Faults:
    """Which fault modes are on, and how often they strike (`rate` multiplies every rate)."""

    gaps: bool = False
    drift: bool = False
    spikes: bool = False
    bad_payloads: bool = False
    rate: float = 1.0
    gaps_per_device_day: float = 2.0
    gap_minutes: tuple[float, float] = (5.0, 60.0)
    drift_probability_per_sensor_week: float = 0.5
    drift_days: tuple[float, float] = (1.0, 4.0)
    spike_probability: float = 0.002  # per reading of an eligible signal
    bad_payloads_per_hour: float = 6.0  # for the whole plant
    bad_kinds: tuple[str, ...] = field(default=BAD_KINDS)
    late: bool = False
    resets: bool = False
    rollovers: bool = False
    calibration: bool = False
    stack_drift: bool = False
    hot_furnace: bool = False
    late_per_device_day: float = 1.0
    late_minutes: tuple[float, float] = (10.0, 120.0)
    resets_per_counter_week: float = 0.5
    calibration_minutes: float = 15.0
    stack_drift_target: str | None = None  # "stack/pollutant"; None: the first of the config
    stack_drift_multiple: float = 0.8
    # One drift episode instead of the 28-day cycle: (start, peak) in s since the simulator's
    # epoch (sim.plant.EPOCH, the time base of every fault). The demo uses it to show a warning
    # fire and resolve within its few plant hours.
    stack_drift_episode_s: tuple[float, float] | None = None
    hot_furnace_id: str | None = None  # None: the config's first furnace
    hot_furnace_k: float = 30.0

    @classmethod
    def parse(cls, text: str | None, rate: float = 1.0) -> Faults:
        """`"gaps,drift,late,…"` (any subset of MODES, or `all`) → Faults. UsageError for an
        unknown mode or a rate that is not above 0."""
        names = [x.strip() for x in (text or "").split(",") if x.strip()]
        if names == ["all"]:
            names = list(MODES)
        unknown = [x for x in names if x not in MODES]
        if unknown:
            raise UsageError(
                f"unknown fault mode {unknown[0]!r}; expected a comma-separated list of "
                f"{', '.join(MODES)} (or all)"
            )
        if not rate > 0:
            raise UsageError(f"fault rate {rate!r} is not allowed; expected a number above 0")
        return cls(**{x: True for x in names}, rate=rate)

    @property
    def any(self) -> bool:
        return any(getattr(self, x) for x in MODES)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(x for x in MODES if getattr(self, x))


def key_int(key: str | int) -> int:
    """A stable non-negative integer for a key (Python's own hash() is salted per process)."""
    return key if isinstance(key, int) else zlib.crc32(key.encode("utf-8"))


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """The random generator of one (seed, key…) cell: the same cell always draws the same numbers."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(key_int(k) for k in keys)])


def gap_intervals(faults: Faults, seed: int, device: str, day: int) -> list[tuple[float, float]]:
    """Silent intervals of a device on a day, as (start_s, end_s) from the day's start (UTC)."""
    if not faults.gaps:
        return []
    rng = rng_for(seed, "fault-gaps", device, day)
    n = rng.poisson(faults.gaps_per_device_day * faults.rate)
    starts = rng.uniform(0.0, 86400.0, n)
    lengths = rng.uniform(*faults.gap_minutes, n) * 60.0
    return sorted(
        (float(s), float(min(s + d, 86400.0))) for s, d in zip(starts, lengths, strict=True)
    )


def gap_mask(intervals: list[tuple[float, float]], t_s: np.ndarray) -> np.ndarray:
    """True where a reading at t_s (seconds from the day's start) falls in a gap."""
    mask = np.zeros(t_s.shape, dtype=bool)
    for start, end in intervals:
        mask |= (t_s >= start) & (t_s < end)
    return mask


def drift_fraction(faults: Faults, seed: int, topic: str, t_s: np.ndarray) -> np.ndarray:
    """How far a sensor's drift has grown at times t_s (seconds since the epoch), 0 … 1.

    One episode at most per sensor and week (weeks counted from the epoch): it starts at a random
    moment of the week, grows linearly to 1 over one to four days and ends at recalibration (at
    the latest at the week's end), when the offset drops back to 0.
    """
    out = np.zeros(t_s.shape, dtype=float)
    if not faults.drift or t_s.size == 0:
        return out
    week_s = 7 * 86400.0
    weeks = np.floor(t_s / week_s).astype(np.int64)
    p = min(1.0, faults.drift_probability_per_sensor_week * faults.rate)
    for week in np.unique(weeks):
        rng = rng_for(seed, "fault-drift", topic, int(week))
        if rng.random() >= p:
            continue
        start = week * week_s + rng.uniform(0.0, week_s - 86400.0)
        length = rng.uniform(*faults.drift_days) * 86400.0
        end = min(start + length, (week + 1) * week_s)
        sel = (weeks == week) & (t_s >= start) & (t_s < end)
        out[sel] = (t_s[sel] - start) / length
    return out


def spike_mask(faults: Faults, seed: int, topic: str, day: int, n: int) -> np.ndarray:
    """Which of a signal's n readings of a day are spikes, and their factors (0 = no spike)."""
    if not faults.spikes or n == 0:
        return np.zeros(n)
    rng = rng_for(seed, "fault-spikes", topic, day)
    hit = rng.random(n) < min(1.0, faults.spike_probability * faults.rate)
    hit[1:] &= ~hit[:-1]  # single outliers: never two in a row
    return np.where(hit, rng.uniform(4.0, 10.0, n), 0.0)


def bad_payload_plan(faults: Faults, seed: int, day: int) -> list[tuple[float, str, float]]:
    """The bad payloads of a day: (time_s from the day's start, kind, a uniform draw for the
    target), sorted by time."""
    if not faults.bad_payloads or not faults.bad_kinds:
        return []
    rng = rng_for(seed, "fault-bad", day)
    n = rng.poisson(faults.bad_payloads_per_hour * faults.rate * 24.0)
    times = rng.uniform(0.0, 86400.0, n)
    kinds = rng.integers(0, len(faults.bad_kinds), n)
    targets = rng.random(n)
    return sorted(
        (float(t), faults.bad_kinds[int(k)], float(u))
        for t, k, u in zip(times, kinds, targets, strict=True)
    )


def late_intervals(faults: Faults, seed: int, device: str, day: int) -> list[tuple[float, float]]:
    """Intervals of a day (s from its start, UTC) whose readings a device sends late: all of
    them at the interval's end, oldest first. Each ends at least a minute before the day does,
    so a day's messages are all sent within it."""
    if not faults.late:
        return []
    rng = rng_for(seed, "fault-late", device, day)
    n = rng.poisson(faults.late_per_device_day * faults.rate)
    lengths = rng.uniform(*faults.late_minutes, n) * 60.0
    starts = rng.uniform(0.0, 1.0, n) * (86400.0 - 60.0 - lengths)
    return sorted((float(a), float(a + d)) for a, d in zip(starts, lengths, strict=True))


def reset_times(faults: Faults, seed: int, topic: str, until_s: float) -> np.ndarray:
    """The instants (s since the epoch) a counter was reset before until_s: at most one a week,
    with probability resets_per_counter_week × rate, at a drawn moment of the week."""
    if not faults.resets or until_s <= 0:
        return np.array([])
    week_s = 7 * 86400.0
    p = min(1.0, faults.resets_per_counter_week * faults.rate)
    out = []
    for week in range(int(until_s // week_s) + 1):
        rng = rng_for(seed, "fault-reset", topic, week)
        if rng.random() < p:
            t = week * week_s + rng.uniform(0.0, week_s)
            if t < until_s:
                out.append(t)
    return np.array(out)


def _daily_interval(
    faults: Faults, seed: int, kind: str, device: str, day: int, length_s: float
) -> tuple[float, float] | None:
    """A calibration of ``length_s`` once a day at a time drawn per device and day (s from the
    day's start), or None without the fault ``calibration``."""
    if not faults.calibration:
        return None
    start = float(rng_for(seed, kind, device, day).uniform(0.0, 86400.0 - length_s))
    return start, start + length_s


def calibration_interval(
    faults: Faults, seed: int, stack: str, day: int
) -> tuple[float, float] | None:
    """The calibration of a stack's analysers on a day (s from the day's start), or None."""
    return _daily_interval(
        faults, seed, "fault-calibration", stack, day, faults.calibration_minutes * 60.0
    )


def outfall_calibration_interval(
    faults: Faults, seed: int, outfall: str, day: int
) -> tuple[float, float] | None:
    """The calibration of an outfall's online analysers on a day (s from the day's start), or
    None: two hours once a day (a COD analyser's calibration takes about two of its hourly
    cycles), with ``calibration`` on."""
    return _daily_interval(
        faults, seed, "fault-outfall-calibration", outfall, day, OUTFALL_CALIBRATION_S
    )


def noise_calibration_interval(
    faults: Faults, seed: int, point: str, day: int
) -> tuple[float, float] | None:
    """The acoustic calibration of a boundary noise monitor on a day (s from the day's start),
    or None: ``NOISE_CALIBRATION_S`` once a day at a drawn time, with ``calibration`` on."""
    return _daily_interval(faults, seed, "fault-noise-calibration", point, day, NOISE_CALIBRATION_S)


def stack_drift_weight(faults: Faults, abs_s: np.ndarray) -> np.ndarray:
    """How far the drifting stack has gone towards its target at abs_s (s since the epoch), 0…1:
    0 until day 14 of each 28-day cycle, then linear to 1 at the cycle's end."""
    if not faults.stack_drift:
        return np.zeros(np.shape(abs_s))
    if faults.stack_drift_episode_s is not None:
        # One episode: from its start linearly to the target at its peak, when the bags are
        # changed and it drops back.
        start, peak = faults.stack_drift_episode_s
        abs_s = np.asarray(abs_s, dtype=float)
        w = np.clip((abs_s - start) / (peak - start), 0.0, 1.0)
        return np.where(abs_s < peak, w, 0.0)
    cycle = STACK_DRIFT_CYCLE_DAYS * 86400.0
    start = STACK_DRIFT_START_DAY * 86400.0
    into = np.mod(abs_s, cycle)
    return np.clip((into - start) / (cycle - start), 0.0, 1.0)
