"""Instantaneous values: minute means, then time-weighted window means of the valid minutes.

Series are made by hand; expected means and coverages are worked out in the comments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenfoundry.metrics import windows as w
from greenfoundry.metrics.instantaneous import minute_means, time_weighted_means

UTC = "UTC"


def at(t: str, day: str = "2026-01-01") -> pd.Timestamp:
    return pd.Timestamp(f"{day} {t}", tz=UTC)


def test_minute_means():
    # 00:00:10 10 and 00:00:40 20 -> minute 00:00 mean 15 (2 readings); 00:01:30 30 -> 30.
    s = pd.Series(
        [10.0, 20.0, 30.0], index=pd.DatetimeIndex([at("00:00:10"), at("00:00:40"), at("00:01:30")])
    )
    m = minute_means(s)
    assert list(m.index) == [at("00:00"), at("00:01")]
    assert list(m["mean"]) == [15.0, 30.0]
    assert list(m["n"]) == [2, 1]


def test_each_valid_minute_weighs_one_minute_not_its_readings():
    # One hour: minutes 0–29 one reading of 100 kW each; minutes 30–44 six readings of 200 kW
    # each (a device sampling faster); minutes 45–59 nothing.
    # Time-weighted: (30 × 100 + 15 × 200) / 45 = 6000 / 45 = 133.33… kW over 45 valid minutes,
    # coverage 45/60 = 0.75. (A plain mean of the readings would give (30·100 + 90·200)/120 = 175.)
    t = [at("00:00") + pd.Timedelta(minutes=i) for i in range(30)]
    t += [
        at("00:30") + pd.Timedelta(minutes=i, seconds=10 * k) for i in range(15) for k in range(6)
    ]
    v = [100.0] * 30 + [200.0] * 90
    s = pd.Series(v, index=pd.DatetimeIndex(t))
    f = time_weighted_means(
        s, w.windows_covering("hour", at("00:00"), at("01:00"), UTC), name="furnace_power_kw"
    )
    row = f.iloc[0]
    assert row["value"] == pytest.approx(6000 / 45)
    assert (row["valid_minutes"], row["minutes"], row["n"]) == (45, 60, 120)
    assert row["coverage"] == 0.75
    assert row["status"] == "low_coverage"
    assert "15 of 60 minutes without a valid furnace_power_kw reading" in row["lacking"]


def test_coverage_of_a_23_hour_day_counts_its_1380_minutes():
    # Berlin, 29 March 2026: a reading every minute of the day gives 1380 valid minutes of 1380.
    day = w.window_containing(
        pd.Timestamp("2026-03-29 12:00", tz="Europe/Berlin"), "day", "Europe/Berlin"
    )
    t = pd.date_range(day.start, day.end, freq="min", inclusive="left")
    f = time_weighted_means(pd.Series(5.0, index=t), [day])
    assert (f["valid_minutes"].iloc[0], f["minutes"].iloc[0]) == (1380, 1380)
    assert f["coverage"].iloc[0] == 1.0


def test_hold_minutes_for_a_signal_reported_every_10_minutes():
    # Air temperature every 10 min in one hour: 6 readings. Without hold 6/60 minutes are
    # valid (0.1); with hold 9 each reading stands for its minute and the 9 after: 60/60.
    # Readings 10, 11, …, 15: the held mean is (10+11+…+15)/6 = 12.5 either way.
    t = pd.date_range(at("00:00"), periods=6, freq="10min")
    s = pd.Series(np.arange(10.0, 16.0), index=t)
    hour = w.windows_covering("hour", at("00:00"), at("01:00"), UTC)
    bare = time_weighted_means(s, hour, name="ambient_temp_c").iloc[0]
    held = time_weighted_means(s, hour, name="ambient_temp_c", hold_minutes=9).iloc[0]
    assert (bare["coverage"], held["coverage"]) == (0.1, 1.0)
    assert bare["value"] == pytest.approx(12.5) and held["value"] == pytest.approx(12.5)
    assert held["n"] == 6


def test_hold_never_reaches_past_its_minutes():
    # Readings at 00:00 and 00:30 with hold 9: minutes 00:00–00:09 and 00:30–00:39 valid: 20.
    s = pd.Series([1.0, 2.0], index=pd.DatetimeIndex([at("00:00"), at("00:30")]))
    hour = w.windows_covering("hour", at("00:00"), at("01:00"), UTC)
    f = time_weighted_means(s, hour, hold_minutes=9).iloc[0]
    assert f["valid_minutes"] == 20


def test_out_of_range_and_nan_readings_are_invalid():
    # ambient_temp_c is −70…65 °C in the glossary: 999 and NaN are dropped; 20 remains.
    s = pd.Series(
        [20.0, 999.0, np.nan], index=pd.DatetimeIndex([at("00:00"), at("00:01"), at("00:02")])
    )
    hour = w.windows_covering("hour", at("00:00"), at("01:00"), UTC)
    f = time_weighted_means(s, hour, name="ambient_temp_c").iloc[0]
    assert (f["value"], f["valid_minutes"]) == (20.0, 1)
    assert any("2 ambient_temp_c readings not valid" in x for x in f["lacking"])


def test_an_hour_without_readings_is_no_data():
    s = pd.Series([1.0], index=pd.DatetimeIndex([at("00:00")]))
    hours = w.windows_covering("hour", at("00:00"), at("02:00"), UTC)
    f = time_weighted_means(s, hours)
    assert list(f["status"]) == ["low_coverage", "no_data"]
    assert np.isnan(f["value"].iloc[1])


def test_wrong_field_type_is_bad_input():
    s = pd.Series(["1.0"], index=pd.DatetimeIndex([at("00:00")]))
    f = time_weighted_means(s, w.windows_covering("hour", at("00:00"), at("01:00"), UTC))
    assert f["status"].iloc[0] == "bad_input"
    with pytest.raises(ValueError, match="expected numbers"):
        minute_means(s)
