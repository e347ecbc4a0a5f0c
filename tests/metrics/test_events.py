"""Events: sums per window and the tonnage-weighted tapping temperature, never interpolated.

Taps are made by hand; the expected sums and weighted means are worked out in the comments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenfoundry.metrics import windows as w
from greenfoundry.metrics.events import event_sums, tonnage_weighted_tap_temp_c

UTC = "UTC"


def at(t: str) -> pd.Timestamp:
    return pd.Timestamp(f"2026-01-01 {t}", tz=UTC)


def events(points: dict[str, float]) -> pd.Series:
    return pd.Series(
        list(points.values()), index=pd.DatetimeIndex([at(t) for t in points]), dtype=float
    )


HOURS = w.windows_covering("hour", at("08:00"), at("11:00"), UTC)


def test_tap_tonnes_per_hour():
    # Hour 08: 12.0 + 11.5 = 23.5 t (2 taps); the tap at 09:00 starts hour 09 ([start, end)):
    # 12.5 t; hour 10 has no tap: no_data, not a silent 0.
    taps = events({"08:10": 12.0, "08:50": 11.5, "09:00": 12.5})
    f = event_sums(taps, HOURS, name="tap_iron_t")
    assert f["value"].iloc[0] == pytest.approx(23.5)
    assert f["value"].iloc[1] == pytest.approx(12.5)
    assert np.isnan(f["value"].iloc[2])
    assert list(f["n"]) == [2, 1, 0]
    assert list(f["coverage"]) == [1.0, 1.0, 0.0]
    assert list(f["status"]) == ["ok", "ok", "no_data"]
    assert f["lacking"].iloc[2] == ("no tap_iron_t events in the window",)


def test_taps_outside_the_glossary_range_are_dropped_and_counted():
    # tap_iron_t is 0–200 t in the glossary: 250 and −1 are not taps. 12 t remains.
    taps = events({"08:10": 12.0, "08:20": 250.0, "08:30": -1.0})
    f = event_sums(taps, HOURS[:1], name="tap_iron_t")
    assert f["value"].iloc[0] == pytest.approx(12.0)
    assert "2 tap_iron_t events not valid" in f["lacking"].iloc[0][0]


def test_tonnage_weighted_temperature_with_unpaired_taps():
    # Weights: 08:10 12 t, 08:30 8 t, 08:50 10 t (no temperature).
    # Temperatures: 08:10 1500 °C, 08:30 1450 °C, 08:40 1470 °C (no weight: not used).
    # Mean = (12 × 1500 + 8 × 1450) / (12 + 8) = (18000 + 11600) / 20 = 1480 °C.
    # Coverage = 20 t with a temperature / 30 t tapped = 2/3 -> low coverage (< 0.9).
    iron = events({"08:10": 12.0, "08:30": 8.0, "08:50": 10.0})
    temp = events({"08:10": 1500.0, "08:30": 1450.0, "08:40": 1470.0})
    f = tonnage_weighted_tap_temp_c(temp, iron, HOURS[:1])
    row = f.iloc[0]
    assert row["value"] == pytest.approx(1480.0)
    assert row["n"] == 2
    assert row["coverage"] == pytest.approx(20 / 30)
    assert (row["weight_total"], row["weight_paired"]) == (pytest.approx(30.0), pytest.approx(20.0))
    assert (row["weights_without_value"], row["values_without_weight"]) == (1, 1)
    assert row["status"] == "low_coverage"


def test_pairing_within_a_tolerance_is_one_to_one():
    # Weights at 08:10:00 (10 t) and 08:10:40 (20 t); one temperature at 08:10:30 (1490 °C).
    # Exact pairing: nothing pairs -> no mean. Within 60 s: both weights are within reach, the
    # nearer (08:10:40, 10 s away) takes it: mean 1490 °C over 20 of 30 t.
    iron = events({"08:10:00": 10.0, "08:10:40": 20.0})
    temp = events({"08:10:30": 1490.0})
    exact = tonnage_weighted_tap_temp_c(temp, iron, HOURS[:1]).iloc[0]
    assert exact["status"] == "no_data" and np.isnan(exact["value"])
    assert "none of the 2 tap_iron_t events has a tap_temp_c" in exact["lacking"]
    near = tonnage_weighted_tap_temp_c(temp, iron, HOURS[:1], pair_within_s=60).iloc[0]
    assert near["value"] == pytest.approx(1490.0)
    assert near["weight_paired"] == pytest.approx(20.0)
    assert near["coverage"] == pytest.approx(20 / 30)


def test_temperature_window_is_picked_by_the_weight():
    # Weight at 08:59:50, its temperature at 09:00:10 (paired within 60 s): the pair belongs to
    # hour 08, the weight's.
    iron = events({"08:59:50": 10.0})
    temp = events({"09:00:10": 1500.0})
    f = tonnage_weighted_tap_temp_c(temp, iron, HOURS[:2], pair_within_s=60)
    assert f["value"].iloc[0] == pytest.approx(1500.0)
    assert f["status"].iloc[1] == "no_data"


def test_bad_temperature_series_is_bad_input():
    iron = events({"08:10": 12.0})
    temp = pd.Series(["hot"], index=pd.DatetimeIndex([at("08:10")]))
    f = tonnage_weighted_tap_temp_c(temp, iron, HOURS[:1])
    assert f["status"].iloc[0] == "bad_input"
    assert "tap_temp_c: values are" in f["lacking"].iloc[0][0]
