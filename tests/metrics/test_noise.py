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


def test_energy_mean_of_levels():
    # 60 and 70 dB: 10 lg((10^6 + 10^7) / 2) = 10 lg(5.5e6) = 67.404 dB.
    assert noise.energy_mean_dba([60.0, 70.0]) == pytest.approx(10 * math.log10(5.5e6))
    assert noise.energy_mean_dba([60.0, 70.0]) == pytest.approx(67.4036, abs=1e-4)
    assert noise.energy_mean_dba([55.0] * 7) == pytest.approx(55.0)


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
