"""Stack concentrations: valid hourly means (45 of 60 minutes, HJ 75 as quoted), analyser status,
oxygen correction, multiples of C and the Table 6 bands as printed (＜0.6C ＜0.8C ＜C, checked in
the Chinese text of T/CFA 0308011.5-2024).

Series are made by hand; each expected value is worked out in the comment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenfoundry.metrics import windows as w
from greenfoundry.metrics.emissions import (
    hourly_means_mg_m3,
    multiples_of_c,
    o2_corrected_mg_m3,
    window_multiples_of_c,
)

UTC = "UTC"


def at(t: str) -> pd.Timestamp:
    return pd.Timestamp(f"2026-01-01 {t}", tz=UTC)


def minutes(start: str, count: int, value: float) -> pd.Series:
    return pd.Series(value, index=pd.date_range(at(start), periods=count, freq="min"))


def hours(first: str, last: str) -> list[w.Window]:
    return w.windows_covering("hour", at(first), at(last), UTC)


def status(points: dict[str, str]) -> pd.Series:
    return pd.Series(list(points.values()), index=pd.DatetimeIndex([at(t) for t in points]))


def test_an_hour_needs_45_valid_minutes():
    # Hour 00: readings in minutes 0–43 (44 minutes) -> not valid. Hour 01: minutes 0–44 (45)
    # -> valid, mean 12 mg/m³.
    conc = pd.concat([minutes("00:00", 44, 12.0), minutes("01:00", 45, 12.0)])
    f = hourly_means_mg_m3(conc, hours("00:00", "02:00"))
    assert list(f["valid_minutes"]) == [44, 45]
    assert list(f["valid"]) == [False, True]
    assert np.isnan(f["value"].iloc[0]) and f["value"].iloc[1] == 12.0
    assert list(f["status"]) == ["low_coverage", "ok"]
    assert f["mean_of_valid_minutes"].iloc[0] == 12.0  # kept for diagnosis only
    assert "44 of 60 minutes valid; a valid hourly mean needs 45" in f["lacking"].iloc[0][0]
    assert list(f["minutes_no_reading"]) == [16, 15]


def test_the_45_minute_rule_is_configurable():
    f = hourly_means_mg_m3(
        minutes("00:00", 44, 12.0), hours("00:00", "01:00"), min_valid_minutes=40
    )
    assert bool(f["valid"].iloc[0])


def test_a_calibration_period_is_not_valid_data():
    # Readings every minute: 10 mg/m³, but 80 (span gas) while the analyser calibrates.
    # Status N from 00:00, C from 00:20, N again from 00:35: minutes 20–34 (15) are flagged,
    # 45 remain -> valid, and the mean is 10, untouched by the 80s.
    conc = minutes("00:00", 60, 10.0)
    conc[at("00:20") : at("00:34")] = 80.0
    f = hourly_means_mg_m3(
        conc, hours("00:00", "01:00"), status=status({"00:00": "N", "00:20": "C", "00:35": "N"})
    )
    row = f.iloc[0]
    assert (row["minutes_flagged"], row["valid_minutes"]) == (15, 45)
    assert bool(row["valid"]) and row["value"] == 10.0
    assert "15 minutes flagged by the analyser status (C calibration: 15)" in row["lacking"]


def test_a_status_change_inside_a_minute_flags_the_whole_minute():
    # C from 00:20:30 to 00:36:00: minutes 20–35 touched (16), 44 valid -> not valid.
    conc = minutes("00:00", 60, 10.0)
    st = status({"00:00": "N", "00:20:30": "C", "00:36": "N"})
    row = hourly_means_mg_m3(conc, hours("00:00", "01:00"), status=st).iloc[0]
    assert (row["minutes_flagged"], row["valid_minutes"], bool(row["valid"])) == (16, 44, False)


def test_maintenance_and_fault_and_unknown_codes_all_invalidate():
    conc = minutes("00:00", 60, 10.0)
    st = status(
        {"00:00": "M", "00:05": "N", "00:10": "D", "00:12": "N", "00:20": "X", "00:21": "N"}
    )
    row = hourly_means_mg_m3(conc, hours("00:00", "01:00"), status=st).iloc[0]
    # M: 5 minutes, D: 2, X: 1 -> 8 flagged, 52 valid.
    assert (row["minutes_flagged"], row["valid_minutes"]) == (8, 52)
    text = next(x for x in row["lacking"] if "flagged" in x)
    assert "M maintenance: 5" in text and "D fault: 2" in text and "X: 1" in text


def test_status_before_its_first_entry_is_normal():
    # The status series starts at 00:30 (C until the end): minutes 0–29 normal, 30–59 flagged.
    conc = minutes("00:00", 60, 10.0)
    row = hourly_means_mg_m3(conc, hours("00:00", "01:00"), status=status({"00:30": "C"})).iloc[0]
    assert (row["valid_minutes"], row["minutes_flagged"]) == (30, 30)


def test_o2_correction_formula():
    # C_ref = C × (21 − O2_ref) / (21 − O2): 18 mg/m³ at 12 % O2 to 8 %: 18 × 13 / 9 = 26.
    assert o2_corrected_mg_m3(18.0, 12.0, 8.0) == pytest.approx(26.0)
    # At the reference itself nothing changes; at 21 % there is no correction.
    assert o2_corrected_mg_m3(18.0, 8.0, 8.0) == pytest.approx(18.0)
    assert np.isnan(o2_corrected_mg_m3(18.0, 21.0, 8.0))
    with pytest.raises(ValueError, match="o2_ref_pct"):
        o2_corrected_mg_m3(18.0, 12.0, 21.0)


def test_hourly_mean_at_reference_oxygen():
    # Hour 00: 60 minutes of 18 mg/m³ at 12 % O2, reference 8 %: each minute 26, mean 26.
    # Hour 01: O2 only for 40 minutes: 20 minutes without a correction -> 40 valid, not valid.
    conc = minutes("00:00", 120, 18.0)
    o2 = pd.concat([minutes("00:00", 60, 12.0), minutes("01:00", 40, 12.0)])
    f = hourly_means_mg_m3(conc, hours("00:00", "02:00"), o2_pct=o2, o2_ref_pct=8.0)
    assert f["value"].iloc[0] == pytest.approx(26.0)
    assert (f["valid_minutes"].iloc[1], f["minutes_no_o2"].iloc[1]) == (40, 20)
    assert not bool(f["valid"].iloc[1])
    with pytest.raises(ValueError, match="both"):
        hourly_means_mg_m3(conc, hours("00:00", "01:00"), o2_ref_pct=8.0)


def test_bands_on_their_exact_boundaries():
    # C = 30 mg/m³. Six valid hours with means 17.9, 18, 24, 29.9, 30, 36 mg/m³: multiples
    # 0.5967, 0.6, 0.8, 0.9967, 1.0, 1.2. Table 6 prints ＜0.6C ＜0.8C ＜C, so:
    #   tier 1 (< 0.6):        17.9                 -> 1 of 6
    #   tier 2 (0.6 ≤ m < 0.8): 18 (exactly 0.6C)   -> 1 of 6
    #   tier 3 (0.8 ≤ m < 1):   24 (0.8C), 29.9     -> 2 of 6
    #   no tier (≥ 1):          30 (exactly C), 36  -> 2 of 6
    # The strict window value is the highest hour, 36 / 30 = 1.2 at 05:00; the mean rule
    # gives (17.9 + 18 + 24 + 29.9 + 30 + 36) / 6 / 30 = 155.8 / 180.
    means = [17.9, 18.0, 24.0, 29.9, 30.0, 36.0]
    conc = pd.concat([minutes(f"{h:02d}:00", 60, m) for h, m in enumerate(means)])
    hourly = hourly_means_mg_m3(conc, hours("00:00", "06:00"))
    mult = multiples_of_c(hourly, 30.0)
    assert list(mult.iloc[1:3]) == [0.6, 0.8] and mult.iloc[4] == 1.0
    day = w.windows_covering("day", at("00:00"), at("01:00"), UTC)
    row = window_multiples_of_c(hourly, 30.0, day).iloc[0]
    assert [row[f"share_tier_{k}"] for k in (1, 2, 3)] == [1 / 6, 1 / 6, 2 / 6]
    assert row["share_no_tier"] == 2 / 6
    assert row["value"] == pytest.approx(1.2)
    assert row["hour_of_max"] == at("05:00")
    # 6 valid hours of 24.
    assert (row["valid_hours"], row["hours"], row["status"]) == (6, 24, "low_coverage")
    assert row["coverage"] == pytest.approx(6 / 24)
    mean_rule = window_multiples_of_c(hourly, 30.0, day, rule="mean").iloc[0]
    assert mean_rule["value"] == pytest.approx(155.8 / 180)


def test_invalid_hours_do_not_enter_the_bands():
    # Hour 00 valid at 12 (0.4C); hour 01 only 30 minutes of 100 (not valid): one valid hour,
    # in tier 1, and the window's value is 0.4, not 100 / 30.
    conc = pd.concat([minutes("00:00", 60, 12.0), minutes("01:00", 30, 100.0)])
    hourly = hourly_means_mg_m3(conc, hours("00:00", "02:00"))
    two_hours = [w.Window("day", at("00:00"), at("02:00"), UTC, "two hours")]
    row = window_multiples_of_c(hourly, 30.0, two_hours).iloc[0]
    assert (row["value"], row["valid_hours"], row["share_tier_1"]) == (pytest.approx(0.4), 1, 1.0)
    assert "1 of 2 hours without a valid hourly mean" in row["lacking"]


def test_a_window_without_a_valid_hour_is_no_data():
    hourly = hourly_means_mg_m3(minutes("00:00", 10, 5.0), hours("00:00", "01:00"))
    row = window_multiples_of_c(hourly, 30.0, hours("00:00", "01:00")).iloc[0]
    assert row["status"] == "no_data" and np.isnan(row["value"]) and np.isnan(row["share_tier_1"])


def test_bad_inputs_give_a_status():
    hs = hours("00:00", "01:00")
    assert hourly_means_mg_m3("nope", hs)["status"].iloc[0] == "bad_input"
    bad_status = pd.Series(["N"], index=[0])
    got = hourly_means_mg_m3(minutes("00:00", 60, 1.0), hs, status=bad_status)
    assert got["status"].iloc[0] == "bad_input"
    assert "analyser status" in got["lacking"].iloc[0][0]
    assert window_multiples_of_c("nope", 30.0, hs)["status"].iloc[0] == "bad_input"
    with pytest.raises(ValueError, match="limit_mg_m3"):
        multiples_of_c(hourly_means_mg_m3(minutes("00:00", 60, 1.0), hs), 0)
