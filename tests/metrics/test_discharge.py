"""Wastewater at an outfall (metrics/discharge.py): valid samples by the analyser status, daily
means valid with 12 samples (HJ 356-2019 as quoted, not verified), multiples of D and the Table 6
bands as printed (＜0.6D ＜0.8 D ＜D, T/CFA 0308011.5-2024 Table 6).

Every expected value is computed by hand in the comment beside it, not taken from the code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenfoundry.metrics import discharge
from greenfoundry.metrics import windows as win

TZ = "Asia/Shanghai"


def _ts(t):
    return t.tz_convert("UTC") if isinstance(t, pd.Timestamp) else pd.Timestamp(t, tz="UTC")


def _series(points):
    idx = pd.DatetimeIndex([_ts(t) for t, _ in points])
    return pd.Series([v for _, v in points], index=idx, dtype=float)


def _codes(points):
    idx = pd.DatetimeIndex([pd.Timestamp(t, tz="UTC") for t, _ in points])
    return pd.Series([c for _, c in points], index=idx, dtype=object)


def test_a_sample_under_calibration_is_not_valid_and_the_status_is_a_state():
    conc = _series(
        [("2026-03-10T00:00", 100.0), ("2026-03-10T01:00", 900.0), ("2026-03-10T02:00", 200.0)]
    )
    # Calibration from 00:30 (code C) until normal again at 01:30: only the 01:00 sample is in it.
    status = _codes([("2026-03-10T00:30", "C"), ("2026-03-10T01:30", "N")])
    s = discharge.sample_validity(conc, status=status)
    assert s.values.tolist() == [100.0, 200.0]
    assert s.flagged_ns.tolist() == [pd.Timestamp("2026-03-10T01:00", tz="UTC").value]
    # Without a status every sample is valid.
    assert discharge.sample_validity(conc).values.tolist() == [100.0, 900.0, 200.0]


def test_hour_sums_and_a_day_with_12_vs_11_valid_samples():
    hours = win.windows_covering(
        "hour", pd.Timestamp("2026-03-10", tz=TZ), pd.Timestamp("2026-03-11", tz=TZ), TZ
    )
    start = hours[0].start
    # One sample an hour for 12 hours, 40 + i mg/L (i = 0..11), then nothing.
    conc = _series([(start + pd.Timedelta(hours=i), 40.0 + i) for i in range(12)])
    sums = discharge.hourly_sample_sums(discharge.sample_validity(conc), hours)
    assert sums["valid"].tolist() == [1] * 12 + [0] * 12
    total, n = float(sums["sum_mg_l"].sum()), int(sums["valid"].sum())
    # Σ (40 + i) for i = 0..11 = 12 × 40 + 66 = 546; mean 546 / 12 = 45.5 mg/L.
    assert (total, n) == (546.0, 12)
    assert discharge.daily_mean_mg_l(total, n, min_valid_samples=12) == pytest.approx(45.5)
    # The same day with 11 valid samples (the last one dropped) has no valid mean.
    assert discharge.daily_mean_mg_l(total - 51.0, 11, min_valid_samples=12) is None


def test_a_bad_series_is_refused_with_its_reason():
    s = discharge.sample_validity(
        pd.Series(["x"], index=pd.DatetimeIndex(["2026-01-01"], tz="UTC"))
    )
    assert s.problem and "expected numbers" in s.problem
    assert discharge.sample_validity(_series([("2026-01-01", -5.0)])).invalid_ns.size == 1


def test_the_window_takes_the_highest_day_and_counts_the_bands_as_printed():
    # Daily multiples of D: 0.3, 0.6 (exactly 0.6D is not "< 0.6D": tier 2), 0.79, 0.8 (tier 3),
    # 1.0 (≥ D: no tier). Max 1.0; mean (0.3 + 0.6 + 0.79 + 0.8 + 1.0) / 5 = 3.49 / 5 = 0.698.
    m = [0.3, 0.6, 0.79, 0.8, 1.0]
    r = discharge.window_multiple(m)
    assert r["value"] == 1.0 and r["argmax"] == 4 and r["valid"] == 5
    assert r["shares"] == (0.2, 0.4, 0.2, 0.2)
    assert discharge.window_multiple(m, rule="mean")["value"] == pytest.approx(0.698)
    none = discharge.window_multiple([])
    assert none["value"] is None and none["shares"] == (None, None, None, None)
    with pytest.raises(ValueError):
        discharge.window_multiple([np.nan])
