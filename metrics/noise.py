"""Boundary noise (``noise_leq_dba``): hourly equivalent levels, their day or night limit E, their
multiples of E, and the tiers of T/CFA 0308011.5-2024, Table 6, row 环境噪声排放指标
(合规性指标E值的倍数): with a residential area within 1200 m ``＜0.6 E  ＜0.8 E  ＜E``, without
``＜0.9 E  ＜0.95 E  ＜E``.

Table 6 note 3: E meets GB 12348 or a stricter industry, local or group standard (the plant
config's ``boundary_noise``: the GB 12348 class of the boundary and its day and night limits).
The rules, each a decision of the standard's file (``D-t6-noise-period``,
``D-t6-noise-multiple``, ``D-t6-noise-window``):

1. **Readings.** Each reading is the A-weighted equivalent level Leq of one 1-minute measuring
   interval at a boundary point (GB 12348-2008, 5.4.2: for steady noise, the 1-minute Leq),
   labelled by the interval's start. A minute with several readings takes their energy mean.
   A minute is not valid when the monitor's status (``noise_monitor_status``, the stack
   analysers' codes, read as ``emissions`` reads them) says anything but normal at any instant
   of it: a monitor checked with an acoustic calibrator (a 94 dB(A) tone at its microphone for
   a minute or two), in maintenance or at fault reads no boundary noise. A status series is a
   state, each code in force from its timestamp until the next one; before its first code the
   monitor is taken as normal, and a plant without the signal counts every minute with a
   reading (as before the signal existed: a calibration tone is then scored as noise).
2. **Day and night.** GB 12348-2008 evaluates each point on its own, day and night apart (6.1:
   各个测点的测量结果应单独评价, 同一测点每天的测量结果按昼间、夜间进行评价), with the limits
   of its Table 1 by period; the day is 06:00-22:00 and the night 22:00-06:00 plant-local
   unless the local government sets other hours (``boundary_noise.day_start`` /
   ``night_start``). An hour belongs to the period holding its start (the periods start on
   whole hours).
3. **Hourly Leq** = the energy mean of the hour's valid minutes, ``10 lg(mean(10^(L/10)))``,
   valid with at least ``min_valid_minutes`` of them (default 45). GB 12348 measures non-steady
   noise over a representative period (5.4.3); an hour is the period we take, which judges a
   plant hour by hour, stricter than one Leq over the 16-hour day. The 45-minute rule is ours
   (the share HJ 75 sets for stack hours), not GB 12348's.
4. **Multiple of E** of a valid hour = Leq / E, both in dB(A), the ratio of the two numbers
   (decision D-t6-noise-multiple): Table 6 prints its tiers as multiples of E, and E is a
   level in dB(A). An energy ratio ``10^((Leq − E)/10)`` would put the tiers 0.46 dB (0.9E)
   and 0.22 dB (0.95E) below E, inside a sound level meter's tolerance, which no expert
   would grade on.
5. **Window value** (``discharge.window_multiple``): the highest valid hourly multiple over
   day and night hours (strict default; ``metrics.table6_rule`` "mean" takes their mean), and
   the share of valid hours in each band of the plant's variant.

Not covered: the night maxima of frequent and occasional noise (GB 12348-2008, 4.1: Lmax at
most 10 and 15 dB(A) above the night limit; they need Lmax readings), the background
correction (5.7; it needs background measurements), and indoor limits for structure-borne
noise.

Public API: ``period_of``, ``limit_e_dba``, ``hourly_leq_dba``,
``multiple_of_e``, ``bands_for``, ``HOURLY_MIN_VALID_MINUTES``, ``NOISE_BANDS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from greenfoundry.metrics.emissions import NORMAL_STATUS_CODES, _status_minutes, _word
from greenfoundry.metrics.instantaneous import NS_PER_MIN, default_range
from greenfoundry.metrics.measured import LOW_COVERAGE, NO_DATA, OK, window_bounds_ns
from greenfoundry.metrics.readings import clean_readings

SIGNAL = "noise_leq_dba"
HOURLY_MIN_VALID_MINUTES = 45
# Table 6 as printed, by whether a residential area lies within 1200 m (the standard file's
# emissions.noise.multiple_of_e variants; tests/metrics/test_noise.py reads them from there).
NOISE_BANDS = {True: (0.6, 0.8, 1.0), False: (0.9, 0.95, 1.0)}
PERIODS = ("day", "night")


def period_of(local_hour: int, *, day_start_h: int = 6, night_start_h: int = 22) -> str:
    """ "day" or "night" for a plant-local hour of the clock (GB 12348-2008, terms and
    definitions: day 06:00-22:00, night 22:00-06:00 by default; clause number not verified). Works for a night that does not wrap midnight
    as well (day_start after night_start)."""
    if not all(0 <= h <= 23 for h in (local_hour, day_start_h, night_start_h)):
        raise ValueError("hours of the clock are 0..23")
    if day_start_h == night_start_h:
        raise ValueError("day and night start at the same hour")
    if day_start_h < night_start_h:
        return "day" if day_start_h <= local_hour < night_start_h else "night"
    return "night" if night_start_h <= local_hour < day_start_h else "day"


def limit_e_dba(period: str, *, day_limit_dba: float, night_limit_dba: float) -> float:
    """The limit E of the period (GB 12348-2008 Table 1 by class, or stricter: note 3)."""
    if period not in PERIODS:
        raise ValueError(f"period {period!r}: expected day or night")
    return float(day_limit_dba if period == "day" else night_limit_dba)


def multiple_of_e(leq_dba, limit_dba: float):
    """Rule 4 (decision D-t6-noise-multiple): Leq / E, both in dB(A). Scalars or arrays."""
    if not (isinstance(limit_dba, int | float) and limit_dba > 0):
        raise ValueError(f"limit_dba {limit_dba!r}: expected a positive limit E in dB(A)")
    out = np.asarray(leq_dba, dtype=float) / float(limit_dba)
    return float(out) if out.ndim == 0 else out


def bands_for(residential_within_1200m: bool) -> tuple[float, float, float]:
    """Table 6's noise tiers (multiples of E) for the plant's variant."""
    return NOISE_BANDS[bool(residential_within_1200m)]


def hourly_leq_dba(
    leq_dba: pd.Series,
    hours: Sequence,
    *,
    status: pd.Series | None = None,
    normal_codes: Iterable[str] = NORMAL_STATUS_CODES,
    min_valid_minutes: int = HOURLY_MIN_VALID_MINUTES,
    name: str = SIGNAL,
) -> dict[str, list]:
    """Rules 1 and 3, per hour window (60 minutes each): ``value`` (the hourly Leq, dB(A); NaN
    when not valid), ``valid``, ``valid_minutes``, ``minutes_flagged`` (by the monitor status,
    with a reading or not), ``n`` (readings in the valid minutes), ``status`` (ok,
    low_coverage with some minutes, no_data), ``lacking``; ``problem`` when the series or the
    status was refused (every hour then has no value). ``status``: the monitor's codes (as
    ``rollups.status_codes`` gives them: HJ 212 letters), in force from their timestamps; None
    or empty: every minute with a reading is valid."""
    if not 1 <= min_valid_minutes <= 60:
        raise ValueError(f"min_valid_minutes {min_valid_minutes!r}: expected 1..60")
    starts, ends = window_bounds_ns(hours)
    if np.any(ends - starts != 60 * NS_PER_MIN):
        raise ValueError("hourly levels need hour windows of 60 minutes")
    k = len(hours)
    c = clean_readings(leq_dba, name, valid_range=default_range(name, None))
    problem = c.problem
    minute = c.times_ns - np.mod(c.times_ns, NS_PER_MIN) if not problem else None
    m_start, inverse = np.unique(minute, return_inverse=True) if not problem else (None, None)
    n_flag, flag_codes = np.zeros(k, np.int64), [()] * k
    if not problem and status is not None and len(status):
        normal = set(normal_codes)
        # Every minute of the hours (for the count of flagged minutes, as the stack hours count
        # them) and the minutes with a reading (which of them the status takes out).
        grid = (starts[:, None] + np.arange(60)[None, :] * NS_PER_MIN).ravel()
        flagged, codes, problem = _status_minutes(status, grid, normal)
        if not problem:
            n_flag = flagged.reshape(k, 60).sum(axis=1).astype(np.int64)
            flag_codes = [tuple(row[f]) for row, f in zip(codes.reshape(k, 60),
                                                          flagged.reshape(k, 60), strict=True)]  # fmt: skip
            m_flagged, _codes, _ = _status_minutes(status, m_start, normal)
            inverse = np.where(m_flagged[inverse], -1, inverse)
    if problem:
        return {
            "value": [np.nan] * k, "valid": [False] * k, "valid_minutes": [0] * k,
            "minutes_flagged": [0] * k, "n": [0] * k, "status": ["bad_input"] * k,
            "lacking": [(problem,)] * k, "problem": problem,
        }  # fmt: skip
    # Each valid minute's reading count and mean energy (a flagged minute's readings dropped).
    kept = inverse >= 0
    m_n = np.bincount(inverse[kept], minlength=len(m_start)).astype(np.int64)
    m_energy = np.bincount(
        inverse[kept], weights=np.power(10.0, c.values[kept] / 10.0), minlength=len(m_start)
    )
    has = m_n > 0
    m_start, m_n, m_energy = m_start[has], m_n[has], m_energy[has] / m_n[has]
    lo = np.searchsorted(m_start, starts, "left")
    hi = np.searchsorted(m_start, ends, "left")
    invalid = c.invalid_in(starts, ends)
    out: dict[str, list] = {k_: [] for k_ in ("value", "valid", "valid_minutes",
                                              "minutes_flagged", "n", "status", "lacking")}  # fmt: skip
    for i in range(k):
        minutes = int(hi[i] - lo[i])
        ok = minutes >= min_valid_minutes
        lack = []
        if not ok and n_flag[i]:
            lack.append(
                f"{minutes} of 60 minutes valid; a valid hourly Leq needs {min_valid_minutes}"
            )
        elif not ok:
            lack.append(
                f"{minutes} of 60 minutes with a {name} reading; a valid hourly Leq needs "
                f"{min_valid_minutes}"
            )
        if n_flag[i]:
            cs = Counter(flag_codes[i])
            parts = ", ".join(f"{_word(str(code))}: {cnt}" for code, cnt in cs.most_common())
            lack.append(f"{n_flag[i]} minutes flagged by the noise monitor status ({parts})")
        if invalid[i]:
            lack.append(f"{invalid[i]} {name} readings not valid (NaN or out of range), dropped")
        value = np.nan
        if minutes:
            value = float(10.0 * np.log10(m_energy[lo[i] : hi[i]].mean()))
        out["value"].append(value if ok else np.nan)
        out["valid"].append(bool(ok))
        out["valid_minutes"].append(minutes)
        out["minutes_flagged"].append(int(n_flag[i]))
        out["n"].append(int(m_n[lo[i] : hi[i]].sum()))
        out["status"].append(OK if ok else (NO_DATA if minutes == 0 else LOW_COVERAGE))
        out["lacking"].append(tuple(lack))
    out["problem"] = None
    return out
