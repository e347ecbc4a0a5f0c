"""Fault modes of the simulated plant: gaps, drift, spikes and bad payloads.

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
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from greenfoundry.errors import UsageError

MODES = ("gaps", "drift", "spikes", "bad_payloads")

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

    @classmethod
    def parse(cls, text: str | None, rate: float = 1.0) -> Faults:
        """`"gaps,drift,spikes,bad_payloads"` (any subset, or `all`) → Faults. UsageError for an
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
        return self.gaps or self.drift or self.spikes or self.bad_payloads

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
