"""Boundary noise (metrics/noise.py): the energy mean of 1-minute Leqs, hourly Leqs valid with 45
minutes, day and night by GB 12348-2008 (06:00-22:00 / 22:00-06:00), Leq / E, and both variants
of Table 6's tiers, read from the standard's file.

Every expected value is computed by hand in the comment beside it, not taken from the code.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from greenfoundry.metrics import noise
from greenfoundry.metrics import windows as win

TZ = "Asia/Shanghai"


def _hour(start: str) -> list:
    t = pd.Timestamp(start, tz=TZ)
    return win.windows_covering("hour", t, t + pd.Timedelta(hours=1), TZ)


def _series(start, levels_by_minute: dict) -> pd.Series:
    """One reading at each minute's start (several at the minute's start + k seconds)."""
    t, v = [], []
    for minute, levels in levels_by_minute.items():
        for k, level in enumerate(levels if isinstance(levels, list) else [levels]):
            t.append(start + pd.Timedelta(minutes=minute, seconds=k))
            v.append(level)
    return pd.Series(v, index=pd.DatetimeIndex(t))


def test_a_minute_with_two_readings_takes_their_energy_mean():
    hours = _hour("2026-03-10T23:00")
    # Minute 0 reads 60 and 70 dB(A): its energy mean is (10^6 + 10^7) / 2 = 5.5e6 (67.40 dB);
    # 44 more minutes at 60. Hour: 10 lg((5.5e6 + 44 × 10^6) / 45) = 10 lg(1.1e6) = 60.414.
    s = _series(hours[0].start, {0: [60.0, 70.0], **{i: 60.0 for i in range(1, 45)}})
    r = noise.hourly_leq_dba(s, hours)
    assert r["value"][0] == pytest.approx(10 * math.log10(1.1e6))
    assert r["value"][0] == pytest.approx(60.4139, abs=1e-4)
    assert (r["valid_minutes"], r["n"], r["minutes_flagged"]) == ([45], [46], [0])


def test_day_and_night_periods_and_their_limits():
    assert [noise.period_of(h) for h in (5, 6, 21, 22, 0)] == [
        "night", "day", "day", "night", "night"
    ]  # fmt: skip
    assert noise.limit_e_dba("night", day_limit_dba=65, night_limit_dba=55) == 55.0
    # Leq 57.2 dB(A) at night against 55: 57.2 / 55 = 1.04 (over E); by day 57.2 / 65 = 0.88.
    assert noise.multiple_of_e(57.2, 55.0) == pytest.approx(1.04)
    assert noise.multiple_of_e(57.2, 65.0) == pytest.approx(0.88)


def test_hourly_leq_needs_45_minutes():
    hours = win.windows_covering(
        "hour", pd.Timestamp("2026-03-10T23:00", tz=TZ), pd.Timestamp("2026-03-11T01:00", tz=TZ), TZ
    )
    a, b = hours[0].start, hours[1].start
    # Hour 1: 45 minutes, 30 at 50 dB and 15 at 60 dB: 10 lg((30 × 10^5 + 15 × 10^6) / 45)
    # = 10 lg(4e5) = 56.021 dB. Hour 2: 44 minutes at 50 dB: not valid.
    pts = [(a + pd.Timedelta(minutes=i), 50.0 if i < 30 else 60.0) for i in range(45)]
    pts += [(b + pd.Timedelta(minutes=i), 50.0) for i in range(44)]
    s = pd.Series([v for _, v in pts], index=pd.DatetimeIndex([t for t, _ in pts]))
    r = noise.hourly_leq_dba(s, hours)
    assert r["value"][0] == pytest.approx(10 * math.log10(4e5))
    assert r["valid"] == [True, False] and r["valid_minutes"] == [45, 44]
    assert r["status"] == ["ok", "low_coverage"]
    assert math.isnan(r["value"][1])


def test_the_tiers_of_both_variants_are_the_standard_files():
    from greenfoundry.scoring.standard import load_standard

    row = load_standard().rows["emissions.noise.multiple_of_e"]
    by_when = {}
    for v in row.variants:
        by_when[v.when["residential_within_1200m"]] = tuple(float(t.value) for t in v.tiers)
    assert by_when[True] == noise.bands_for(True) == (0.6, 0.8, 1.0)
    assert by_when[False] == noise.bands_for(False) == (0.9, 0.95, 1.0)


def test_a_series_of_text_is_bad_input_for_every_hour_never_a_zero():
    hours = win.windows_covering(
        "hour", pd.Timestamp("2026-03-10T00:00", tz=TZ), pd.Timestamp("2026-03-10T02:00", tz=TZ), TZ
    )
    s = pd.Series(["loud"], index=pd.DatetimeIndex([hours[0].start]))
    r = noise.hourly_leq_dba(s, hours)
    assert r["status"] == ["bad_input", "bad_input"] and r["valid"] == [False, False]
    assert "expected numbers" in r["problem"] and all(math.isnan(v) for v in r["value"])
    # A level outside the glossary's 20-140 dB(A) is dropped and counted, not averaged in.
    s = pd.Series([55.0, 400.0], index=pd.DatetimeIndex([hours[0].start, hours[0].start
                                                         + pd.Timedelta(minutes=1)]))  # fmt: skip
    r = noise.hourly_leq_dba(s, hours, min_valid_minutes=1)
    assert (
        r["value"][0] == pytest.approx(55.0)
        and "1 noise_leq_dba readings not valid" in (r["lacking"][0][0])
    )


def test_a_dead_microphones_zeros_are_dropped_never_a_quieter_hour():
    hours = win.windows_covering(
        "hour", pd.Timestamp("2026-03-10T00:00", tz=TZ), pd.Timestamp("2026-03-10T01:00", tz=TZ), TZ
    )
    start = hours[0].start
    # 45 minutes at 60 dB(A), then the microphone fails and the monitor sends 0 for 15 minutes.
    # Averaged in, they would make the hour 10 lg((45 × 10^6 + 15 × 10^0) / 60) = 10 lg(7.5e5)
    # = 58.75 dB(A); no boundary is that quiet (below 20 dB(A), a class 1 meter's self-noise),
    # so they are dropped and counted: the hour is its 45 valid minutes, 60.0 dB(A).
    levels = [60.0] * 45 + [0.0] * 15
    s = pd.Series(
        levels, index=pd.DatetimeIndex([start + pd.Timedelta(minutes=i) for i in range(60)])
    )
    r = noise.hourly_leq_dba(s, hours)
    assert r["valid_minutes"] == [45] and r["value"][0] == pytest.approx(60.0)
    assert any("15 noise_leq_dba readings not valid" in x for x in r["lacking"][0])


def _status(start, changes) -> pd.Series:
    """The monitor's codes as ``rollups.status_codes`` gives them (HJ 212 letters)."""
    return pd.Series(
        [code for _, code in changes],
        index=pd.DatetimeIndex([start + pd.Timedelta(seconds=sec) for sec, _ in changes]),
        dtype=object,
    )


def test_a_calibration_of_16_minutes_leaves_44_valid_minutes_no_hourly_leq():
    hours = _hour("2026-03-10T23:00")
    start = hours[0].start
    # 50 dB(A) every minute but 20-35, which read the calibrator's 94 dB(A); the status is C
    # from 23:20:00 to 23:36:00: minutes 20..35 flagged (16), 60 - 16 = 44 valid < 45.
    s = _series(start, {i: 94.0 if 20 <= i <= 35 else 50.0 for i in range(60)})
    status = _status(start, [(20 * 60, "C"), (36 * 60, "N")])
    r = noise.hourly_leq_dba(s, hours, status=status)
    assert r["valid"] == [False] and r["status"] == ["low_coverage"]
    assert (r["valid_minutes"], r["minutes_flagged"], r["n"]) == ([44], [16], [44])
    assert math.isnan(r["value"][0])
    assert r["lacking"][0][:2] == (
        "44 of 60 minutes valid; a valid hourly Leq needs 45",
        "16 minutes flagged by the noise monitor status (C calibration: 16)",
    )
    # Without the status every minute counts, the tone too (a plant without the signal):
    # 10 lg((44 × 10^5 + 16 × 10^9.4) / 60) = 10 lg(6.6992e8) = 88.26 dB(A).
    r = noise.hourly_leq_dba(s, hours)
    assert r["valid_minutes"] == [60] and r["minutes_flagged"] == [0]
    assert r["value"][0] == pytest.approx(10 * math.log10((44e5 + 16 * 10**9.4) / 60))
    assert r["value"][0] == pytest.approx(88.26, abs=0.01)


def test_a_two_minute_calibration_is_left_out_and_the_hour_stays_valid():
    hours = _hour("2026-03-10T23:00")
    start = hours[0].start
    # Minutes 0-29 at 50 dB(A) and 30-59 at 60, but minutes 10 and 11 read the calibrator's
    # 94 dB(A). The status turns C at 23:10:30 and N at 23:12:30: minute 10 (C from inside it),
    # 11 and 12 (C at their start) are flagged, 3 minutes; 57 valid: 27 at 50, 30 at 60.
    # Leq = 10 lg((27 × 10^5 + 30 × 10^6) / 57) = 10 lg(573684.2) = 57.587 dB(A).
    levels = {i: (94.0 if i in (10, 11) else 50.0) if i < 30 else 60.0 for i in range(60)}
    s = _series(start, levels)
    status = _status(start, [(-3600, "N"), (10 * 60 + 30, "C"), (12 * 60 + 30, "N")])
    r = noise.hourly_leq_dba(s, hours, status=status)
    assert r["valid"] == [True] and r["status"] == ["ok"]
    assert (r["valid_minutes"], r["minutes_flagged"], r["n"]) == ([57], [3], [57])
    assert r["value"][0] == pytest.approx(10 * math.log10((27e5 + 30e6) / 57))
    assert r["value"][0] == pytest.approx(57.587, abs=1e-3)
    assert r["lacking"][0] == ("3 minutes flagged by the noise monitor status (C calibration: 3)",)
    # The same hour without a status: 60 minutes, 28 at 50, 30 at 60 and two at 94:
    # 10 lg((28 × 10^5 + 30 × 10^6 + 2 × 10^9.4) / 60) = 10 lg(8.4277e7) = 79.26 dB(A).
    r = noise.hourly_leq_dba(s, hours)
    assert r["value"][0] == pytest.approx(10 * math.log10((28e5 + 30e6 + 2 * 10**9.4) / 60))


def test_an_unknown_status_code_flags_and_a_status_without_times_is_bad_input():
    hours = _hour("2026-03-10T23:00")
    s = _series(hours[0].start, {i: 50.0 for i in range(60)})
    # A code that is not normal (here "1.5", no HJ 212 letter) flags every minute it is in
    # force: all 60, no valid minute.
    status = _status(hours[0].start, [(0, "1.5")])
    r = noise.hourly_leq_dba(s, hours, status=status)
    assert (r["status"], r["valid_minutes"], r["minutes_flagged"]) == (["no_data"], [0], [60])
    # A status series without timestamps is refused: every hour is bad input, never valid.
    r = noise.hourly_leq_dba(s, hours, status=pd.Series(["N"], index=[0]))
    assert r["status"] == ["bad_input"] and r["valid"] == [False] and r["problem"]
