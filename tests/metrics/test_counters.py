"""Cumulative counters: consumption per window from meter totals.

Each series is made by hand; the expected consumption is worked out in the comment from the
module's rules (increment over the high-water mark, a drop below 0.9 × the previous reading is a
reset, a modulus makes it a rollover, an increment belongs to the window with start < t <= end).
Floating sums are compared with pytest.approx (rel 1e-12): the totals are exact decimals whose
binary sums may differ in the last bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenfoundry.metrics import windows as w
from greenfoundry.metrics.counters import counter_consumption, counter_increments

UTC = "UTC"


def series(points: dict[str, float]) -> pd.Series:
    return pd.Series(
        list(points.values()),
        index=pd.DatetimeIndex([pd.Timestamp(f"2026-01-01 {t}", tz=UTC) for t in points]),
        dtype=float,
    )


def hours(first: str, last: str) -> list[w.Window]:
    return w.windows_covering(
        "hour",
        pd.Timestamp(f"2026-01-01 {first}", tz=UTC),
        pd.Timestamp(f"2026-01-01 {last}", tz=UTC),
        UTC,
    )


def approx(x):
    return pytest.approx(x, rel=1e-12)


def test_increment_across_an_hour_boundary_goes_whole_to_the_later_reading():
    # 08:00 1000, 08:40 1008, 09:20 1016, 10:00 1020 (readings 40 min apart; max gap 1 h).
    # Hour 08 holds (08:00, 09:00]: the reading at 08:40, increment 1008 − 1000 = 8.
    # Hour 09 holds (09:00, 10:00]: 09:20 (1016 − 1008 = 8, though it began at 08:40) and
    # 10:00 (1020 − 1016 = 4): 12. Σ = 20 = 1020 − 1000, the meter's difference.
    r = series({"08:00": 1000, "08:40": 1008, "09:20": 1016, "10:00": 1020})
    f = counter_consumption(r, hours("08:00", "10:00"), max_gap_s=3600)
    assert list(f["value"]) == [approx(8), approx(12)]
    assert list(f["n"]) == [1, 2]
    assert list(f["coverage"]) == [1.0, 1.0]
    assert list(f["status"]) == ["ok", "ok"]
    assert f["value"].sum() == approx(1020 - 1000)


def test_a_reading_on_the_hour_closes_that_hour():
    # 08:00 0, 08:30 5, 09:00 10, 09:30 12. Hour 08 = (08:00, 09:00] -> 5 + 5 = 10.
    # Hour 09 = 09:30's 2; nothing is known after 09:30: coverage 30/60 = 0.5.
    r = series({"08:00": 0, "08:30": 5, "09:00": 10, "09:30": 12})
    f = counter_consumption(r, hours("08:00", "10:00"), max_gap_s=1800)
    assert list(f["value"]) == [approx(10), approx(2)]
    assert list(f["coverage"]) == [1.0, 0.5]
    assert f["status"].iloc[1] == "low_coverage"
    assert any("no counter reading after" in s for s in f["lacking"].iloc[1])


def test_reset_counts_the_new_meter_from_zero():
    # 00:00 500, 00:10 510, 00:20 3 (3 < 0.9 × 510: a reset), 00:30 8.
    # 510 − 500 = 10, then the new meter's 3, then 8 − 3 = 5: 18.
    r = series({"00:00": 500, "00:10": 510, "00:20": 3, "00:30": 8})
    inc = counter_increments(r)
    assert list(inc["kind"]) == ["first", "normal", "reset", "normal"]
    assert list(inc["increment"].iloc[1:]) == [10, 3, 5]
    f = counter_consumption(r, hours("00:00", "01:00"))
    assert f["value"].iloc[0] == approx(18)
    assert f["resets"].iloc[0] == 1
    assert any("reset" in s for s in f["flags"].iloc[0])


def test_rollover_with_a_known_modulus():
    # A 4-digit register (modulus 10000): 9990, 9998, then 5, 12.
    # (9998 − 9990) + (10000 − 9998 + 5) + (12 − 5) = 8 + 7 + 7 = 22.
    r = series({"00:00": 9990, "00:10": 9998, "00:20": 5, "00:30": 12})
    f = counter_consumption(r, hours("00:00", "01:00"), rollover_modulus=10000)
    assert f["value"].iloc[0] == approx(22)
    assert (f["rollovers"].iloc[0], f["resets"].iloc[0]) == (1, 0)
    # Without the modulus the same drop is a reset: 8 + 5 + 7 = 20.
    g = counter_consumption(r, hours("00:00", "01:00"))
    assert g["value"].iloc[0] == approx(20)
    assert (g["rollovers"].iloc[0], g["resets"].iloc[0]) == (0, 1)


def test_a_reading_at_or_above_the_modulus_is_not_valid():
    r = series({"00:00": 9990, "00:10": 10000, "00:20": 9995})
    f = counter_consumption(r, hours("00:00", "01:00"), rollover_modulus=10000)
    # 10000 is dropped; 9995 − 9990 = 5.
    assert f["value"].iloc[0] == approx(5)
    assert any("not valid" in s for s in f["lacking"].iloc[0])


def test_backwards_jitter_is_not_consumption():
    # 100.0, 100.5, 100.4 (a dip of 0.1, above 0.9 × 100.5: jitter), 101.0.
    # Increments over the high-water mark: 0.5, 0, 101.0 − 100.5 = 0.5: 1.0 = 101.0 − 100.0.
    # (Clipping negative differences instead would count 0.5 + 0 + 0.6 = 1.1.)
    r = series({"00:00": 100.0, "00:10": 100.5, "00:20": 100.4, "00:30": 101.0})
    f = counter_consumption(r, hours("00:00", "01:00"))
    assert f["value"].iloc[0] == approx(1.0)
    assert f["jitter"].iloc[0] == 1
    assert f["jitter_drop"].iloc[0] == approx(100.5 - 100.4)
    assert f["resets"].iloc[0] == 0


def test_jitter_max_makes_a_large_absolute_dip_a_reset():
    # Same series, jitter_max 0.05: the 0.1 dip is now a reset, the new meter counts 100.4
    # from zero: 0.5 + 100.4 + 0.6 = 101.5.
    r = series({"00:00": 100.0, "00:10": 100.5, "00:20": 100.4, "00:30": 101.0})
    f = counter_consumption(r, hours("00:00", "01:00"), jitter_max=0.05)
    assert f["value"].iloc[0] == approx(101.5)
    assert f["resets"].iloc[0] == 1


def test_the_reset_threshold_is_below_0_9_of_the_previous_reading():
    # 100 -> 90 is exactly 0.9 × 100: not below, so jitter (0). 100 -> 89.9 is a reset (89.9).
    at = counter_increments(series({"00:00": 100, "00:10": 90}))
    below = counter_increments(series({"00:00": 100, "00:10": 89.9}))
    assert (at["kind"].iloc[1], at["increment"].iloc[1]) == ("jitter", 0.0)
    assert (below["kind"].iloc[1], below["increment"].iloc[1]) == ("reset", 89.9)


def test_consumption_across_a_gap_is_counted_never_spread():
    # Readings every 10 min from 00:00 (94) to 01:00 (100), then nothing until 04:00 (130),
    # then 04:10 (131). Max gap 900 s.
    #   hour 00: (00:00, 01:00] six increments of 1 = 6, fully covered;
    #   hours 01 and 02: inside the gap, no increment: no_data, 3600 s of gap each;
    #   hour 03: the 30 across the gap (130 − 100), counted at 04:00, which ends hour 03;
    #            coverage 0 (all gap);
    #   hour 04: 131 − 130 = 1, covered 10 of 60 minutes.
    pts = {f"00:{m:02d}": 94 + m // 10 for m in range(0, 60, 10)}
    pts.update({"01:00": 100, "04:00": 130, "04:10": 131})
    f = counter_consumption(series(pts), hours("00:00", "05:00"))
    assert list(f["status"]) == ["ok", "no_data", "no_data", "low_coverage", "low_coverage"]
    assert f["value"].iloc[0] == approx(6)
    assert np.isnan(f["value"].iloc[1]) and np.isnan(f["value"].iloc[2])
    assert f["value"].iloc[3] == approx(30)
    assert f["value"].iloc[4] == approx(1)
    assert list(f["gap_s"]) == [0.0, 3600.0, 3600.0, 3600.0, 0.0]
    assert list(f["gaps"]) == [0, 1, 1, 1, 0]
    assert f["gap_consumption"].iloc[3] == approx(30)
    assert list(f["coverage"]) == [1.0, 0.0, 0.0, 0.0, pytest.approx(10 / 60)]
    assert all(any("gap" in s for s in f["lacking"].iloc[i]) for i in (1, 2, 3))
    # The day's total is the meter's difference, 131 − 94 = 37, no extrapolation.
    day = w.windows_covering(
        "day", pd.Timestamp("2026-01-01", tz=UTC), pd.Timestamp("2026-01-01 01:00", tz=UTC), UTC
    )
    d = counter_consumption(series(pts), day)
    assert d["value"].iloc[0] == approx(131 - 94)


def test_hours_sum_to_the_day_with_a_reset_and_jitter():
    # Every 10 minutes for a day. Meter A: 1000 + 2 a step from 00:00 to 11:50 (72 readings,
    # last 1142), except that 06:00 reads 0.05 below 05:50 (1069.95: jitter). Meter B replaces
    # it at 12:00: 0 + 2 a step to 23:50 (72 readings, last 142).
    # Hand: A counts 1142 − 1000 = 142 (the dip costs nothing: 06:10's 1074 counts from the
    # high-water mark 1070), B counts 142 from zero: 284 for the day, and the same summed
    # over its 24 hours.
    t = pd.date_range("2026-01-01", "2026-01-01 23:50", freq="10min", tz=UTC)
    v = np.arange(len(t)) * 2.0 + 1000.0
    swap = t >= pd.Timestamp("2026-01-01 12:00", tz=UTC)
    v[swap] = np.arange(swap.sum()) * 2.0
    v[t == pd.Timestamp("2026-01-01 06:00", tz=UTC)] = 1069.95
    r = pd.Series(v, index=t)
    hs = w.windows_covering("hour", t[0], t[-1], UTC)
    day = w.windows_covering("day", t[0], t[-1], UTC)
    f = counter_consumption(r, hs)
    d = counter_consumption(r, day)
    assert d["value"].iloc[0] == approx(284)
    assert f["value"].fillna(0).sum() == approx(284)
    assert (d["resets"].iloc[0], d["jitter"].iloc[0]) == (1, 1)


def test_no_reading_before_the_window_start_is_said():
    r = series({"00:30": 10, "00:40": 11})
    f = counter_consumption(r, hours("00:00", "01:00"))
    # Only 00:30 -> 00:40 is known: 1, coverage 10/60.
    assert f["value"].iloc[0] == approx(1)
    assert f["coverage"].iloc[0] == pytest.approx(10 / 60)
    assert any("no counter reading before" in s for s in f["lacking"].iloc[0])


@pytest.mark.parametrize(
    ("readings", "needle"),
    [
        ("not a series", "expected a pandas Series"),
        (
            pd.Series(
                ["1", "2"], index=pd.DatetimeIndex(["2026-01-01", "2026-01-01 00:10"], tz=UTC)
            ),
            "expected numbers",
        ),
        (
            pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2026-01-01", "2026-01-01 00:10"])),
            "no time zone",
        ),
        (
            pd.Series(
                [True, False], index=pd.DatetimeIndex(["2026-01-01", "2026-01-01 00:10"], tz=UTC)
            ),
            "expected numbers",
        ),
        (pd.Series([1.0, 2.0], index=[0, 1]), "expected timestamps"),
    ],
)
def test_bad_input_is_a_status_not_a_crash(readings, needle):
    f = counter_consumption(readings, hours("00:00", "02:00"))
    assert list(f["status"]) == ["bad_input", "bad_input"]
    assert f["value"].isna().all()
    assert needle in f["lacking"].iloc[0][0]


def test_empty_series_is_no_data():
    empty = pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz=UTC))
    f = counter_consumption(empty, hours("00:00", "01:00"), name="furnace_energy_kwh")
    assert f["status"].iloc[0] == "no_data"
    assert f["lacking"].iloc[0] == ("no furnace_energy_kwh readings",)


def test_nan_and_negative_totals_are_dropped_and_counted():
    # 10, NaN, −3, 14: the valid readings are 10 and 14, consumption 4.
    r = series({"00:00": 10, "00:10": np.nan, "00:15": -3, "00:20": 14})
    f = counter_consumption(r, hours("00:00", "01:00"))
    assert f["value"].iloc[0] == approx(4)
    assert any("2 counter readings in the window not valid" in s for s in f["lacking"].iloc[0])
