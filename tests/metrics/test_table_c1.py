"""Table C.1 from data: energy per tonne per furnace and for the plant, and note 4's site mean
air temperature from ambient readings.

Expected limits are computed by hand from T/CFA 0308011.5-2024, Table C.1 (ductile induction
row ＜200 ＜250 ＜300 kWh/t; cupola 6～9 t/h row ＜120 ＜125 ＜135 kgce/t), note 2 (+0.6 kWh/t per
°C above the specified tapping temperature: ductile DN80–300 1500 °C, DN350–1000 1450 °C), note 1
(+0.6 kgce/t per °C above 1480 °C) and note 4 (−0.4 kWh/t per °C above 25 °C; induction rows only
by the standard file's default). The arithmetic is in each comment. Li is the floor policy of
clause 5.2.2 (0.90 / 0.75 / 0.60).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenfoundry.metrics import windows as w
from greenfoundry.metrics.counters import counter_consumption
from greenfoundry.metrics.events import event_sums, tonnage_weighted_tap_temp_c
from greenfoundry.metrics.measured import Measured
from greenfoundry.metrics.table_c1 import (
    FurnaceFacts,
    annual_mean_air_temp_c,
    furnace_energy_per_t,
    plant_energy_per_t,
)

SH = "Asia/Shanghai"
IF1 = FurnaceFacts("if1", "induction", 12, "ductile", 200)  # DN80–300: specified 1500 °C
IF2 = FurnaceFacts("if2", "induction", 12, "ductile", 500)  # DN350–1000: specified 1450 °C


def ok(value: float, n: int = 1) -> Measured:
    return Measured(value, n, 1.0, "ok")


def year_2025_every_10_min() -> pd.DatetimeIndex:
    # 2025 in Shanghai: 2024-12-31 16:00 UTC to 2025-12-31 16:00 UTC, 365 × 144 = 52560 readings.
    y = w.calendar_window("2025", SH)
    return pd.date_range(y.start, y.end, freq="10min", inclusive="left")


# ---------------------------------------------------------------------------- note 4


def test_a_full_year_of_ambient_readings():
    # T = 16 + 10·cos(2πk/N) at N = 52560 evenly spaced readings (every 10 min, each held for
    # its 10 minutes): the cosine sums to 0 over a whole period, so the mean is exactly 16 °C
    # (tolerance 1e-9 for the float sum of 525600 minutes).
    t = year_2025_every_10_min()
    k = np.arange(len(t))
    s = pd.Series(16 + 10 * np.cos(2 * np.pi * k / len(t)), index=t)
    got = annual_mean_air_temp_c(s, 2025, SH, config_value_c=16.2, hold_minutes=9)
    assert got.source == "readings"
    assert got.value_c == pytest.approx(16.0, abs=1e-9)
    assert (got.n, got.coverage, got.status) == (52560, 1.0, "ok")
    assert got.year == "2025" and len(got.month_coverage) == 12


def test_a_missing_month_falls_back_to_the_config_value():
    # The same year without July (local July 2025, 31 days): 334/365 = 91.5 % of the year is
    # still covered, above 90 %, but July has 0 %: the readings do not cover the year, and the
    # plant config's 16.2 °C is used, saying why.
    t = year_2025_every_10_min()
    k = np.arange(len(t))
    s = pd.Series(16 + 10 * np.cos(2 * np.pi * k / len(t)), index=t)
    july = w.calendar_window("2025-07", SH)
    s = s[(s.index < july.start) | (s.index >= july.end)]
    got = annual_mean_air_temp_c(s, 2025, SH, config_value_c=16.2, hold_minutes=9)
    assert (got.source, got.value_c, got.status) == ("config", 16.2, "ok")
    assert got.coverage == pytest.approx(334 / 365)
    assert any("2025-07" in x for x in got.lacking)
    # Without a config value there is nothing to use: low coverage, no value.
    none = annual_mean_air_temp_c(s, 2025, SH, hold_minutes=9)
    assert (none.value_c, none.source, none.status) == (None, None, "low_coverage")


def test_months_keep_their_weight_when_days_are_missing():
    # Month m (1..12) reads m °C all month; 5 days of March (10th–14th) are missing.
    # Mean of monthly means weighted by month length:
    #   (31·1 + 28·2 + 31·3 + 30·4 + 31·5 + 30·6 + 31·7 + 31·8 + 30·9 + 31·10 + 30·11 + 31·12)
    #   / 365 = 2382 / 365.
    # (A plain mean of the valid minutes would give (2382 − 5·3) / 360 = 2367 / 360.)
    # Coverage: 360/365 of the year (≥ 90 %), March 26/31 = 84 % (≥ 80 %): covered.
    t = year_2025_every_10_min()
    s = pd.Series(t.tz_convert(SH).month.astype(float), index=t)
    gap_a = pd.Timestamp("2025-03-10").tz_localize(SH)
    gap_b = pd.Timestamp("2025-03-15").tz_localize(SH)
    s = s[(s.index < gap_a) | (s.index >= gap_b)]
    got = annual_mean_air_temp_c(s, 2025, SH, config_value_c=99.0, hold_minutes=9)
    assert got.source == "readings"
    assert got.value_c == pytest.approx(2382 / 365, rel=1e-12)
    assert got.month_coverage[2] == pytest.approx(26 / 31)


def test_ambient_bad_input():
    s = pd.Series(["warm"], index=pd.DatetimeIndex(["2025-06-01"], tz="UTC"))
    got = annual_mean_air_temp_c(s, 2025, SH)
    assert (got.status, got.value_c) == ("bad_input", None)
    assert "ambient_temp_c: values are" in got.lacking[0]


# ---------------------------------------------------------------------------- one furnace


def test_one_furnace_for_a_shift_from_readings():
    # Shanghai shift 08:00–16:00 on 2 March 2026 (00:00–08:00 UTC).
    # Energy meter every 5 min from 08:00 (50000 kWh) +50 kWh a step to 16:00: the shift holds
    # the 96 increments ending in (08:00, 16:00]: 96 × 50 = 4800 kWh.
    # Taps of 20 t at 10:00, 12:00, 14:00 at 1500, 1510, 1520 °C: 60 t, weighted 1510 °C.
    # 4800 / 60 = 80 kWh/t. Limits: 200/250/300 + 0.6 × (1510 − 1500) = +6 (note 2)
    # + 0.4 × (25 − 16.2) = +3.52 (note 4) -> 209.52 / 259.52 / 309.52: tier 1, Li 0.90.
    shift = w.window_containing(
        pd.Timestamp("2026-03-02 09:00").tz_localize(SH),
        "shift",
        SH,
        shifts=["08:00", "16:00", "00:00"],
    )
    t = pd.date_range(shift.start, shift.end, freq="5min")
    energy = pd.Series(50000 + 50.0 * np.arange(len(t)), index=t)
    taps_t = pd.DatetimeIndex([shift.start + pd.Timedelta(hours=h) for h in (2, 4, 6)])
    iron = pd.Series([20.0, 20.0, 20.0], index=taps_t)
    temp = pd.Series([1500.0, 1510.0, 1520.0], index=taps_t)
    e = Measured.from_row(counter_consumption(energy, [shift], name="furnace_energy_kwh").iloc[0])
    m = Measured.from_row(event_sums(iron, [shift], name="tap_iron_t").iloc[0])
    tt = Measured.from_row(tonnage_weighted_tap_temp_c(temp, iron, [shift]).iloc[0])
    assert (e.value, m.value, tt.value) == (
        pytest.approx(4800),
        pytest.approx(60),
        pytest.approx(1510),
    )
    r = furnace_energy_per_t(IF1, iron_t=m, energy_kwh=e, tap_temp_c=tt, air_temp=16.2)
    assert r.value == pytest.approx(80.0)
    assert (r.unit, r.energy_unit) == ("kWh/t", "kWh")
    assert r.limits.limits == pytest.approx((209.52, 259.52, 309.52))
    assert (r.tier, r.li, r.status) == (1, 0.90, "ok")
    assert r.n == e.n + m.n == 96 + 3


def test_two_furnaces_and_the_plant_value():
    # Site air 15 °C: note 4 adds 0.4 × (25 − 15) = +4 to every induction limit.
    # if1 (DN 200, specified 1500 °C): 30 t at 1510 °C, +0.6 × 10 = +6 -> 210/260/310;
    #      6450 kWh / 30 t = 215 kWh/t: not < 210, < 260 -> tier 2, Li 0.75.
    # if2 (DN 500, specified 1450 °C): 10 t at 1470 °C, +0.6 × 20 = +12 -> 216/266/316;
    #      2000 kWh / 10 t = 200 kWh/t -> tier 1, Li 0.90.
    # Plant: (6450 + 2000) / (30 + 10) = 8450 / 40 = 211.25 kWh/t against the tonnage-weighted
    #      limits (30·210 + 10·216)/40 = 211.5, (30·260 + 10·266)/40 = 261.5, 311.5 -> tier 1.
    #      (= 200 + 4 + 0.6 × (1500 − 1487.5): note 2 on the weighted temperature 1500 °C
    #      against the weighted specified temperature (30·1500 + 10·1450)/40 = 1487.5 °C.)
    r1 = furnace_energy_per_t(
        IF1, iron_t=ok(30, 3), energy_kwh=ok(6450, 60), tap_temp_c=ok(1510, 3), air_temp=15.0
    )
    r2 = furnace_energy_per_t(
        IF2, iron_t=ok(10, 1), energy_kwh=ok(2000, 60), tap_temp_c=ok(1470, 1), air_temp=15.0
    )
    assert (r1.value, r1.limits.limits, r1.tier, r1.li) == (215.0, (210.0, 260.0, 310.0), 2, 0.75)
    assert (r2.value, r2.limits.limits, r2.tier, r2.li) == (200.0, (216.0, 266.0, 316.0), 1, 0.90)
    p = plant_energy_per_t([r1, r2])
    assert p.value == pytest.approx(211.25)
    assert p.limits == pytest.approx((211.5, 261.5, 311.5))
    assert (p.tier, p.li, p.status, p.unit) == (1, 0.90, "ok", "kWh/t")
    assert (p.energy, p.iron_t, p.n, p.coverage) == (8450, 40, 124, 1.0)
    assert p.included == ("if1", "if2") and p.decision == "D-c1-plant"


def test_a_furnace_without_energy_is_left_out_with_its_taps():
    # if2 has taps (10 t) but no energy data: the plant is if1 alone, 6450/30 = 215 against
    # 210/260/310 -> tier 2; coverage 30 of 40 t = 0.75 -> low coverage, and said.
    r1 = furnace_energy_per_t(
        IF1, iron_t=ok(30), energy_kwh=ok(6450), tap_temp_c=ok(1510), air_temp=15.0
    )
    r2 = furnace_energy_per_t(
        IF2, iron_t=ok(10), energy_kwh=None, tap_temp_c=ok(1470), air_temp=15.0
    )
    assert (r2.status, r2.value) == ("no_data", None)
    assert "no furnace energy (kWh)" in r2.lacking
    p = plant_energy_per_t([r1, r2])
    assert (p.value, p.tier, p.coverage, p.status) == (215.0, 2, 0.75, "low_coverage")
    assert "furnace if2: no energy data, left out with its taps" in p.lacking


def test_a_furnace_that_did_not_tap_still_has_its_limits():
    no_taps = Measured(None, 0, 0.0, "no_data", ("no tap_iron_t events in the window",))
    r = furnace_energy_per_t(
        IF1, iron_t=no_taps, energy_kwh=ok(500), tap_temp_c=None, air_temp=None
    )
    assert (r.status, r.value, r.tier) == ("no_data", None, None)
    assert "no tap events (tap_iron_t)" in r.lacking
    # No temperatures: notes 2 and 4 not applied, the printed row 200/250/300.
    assert r.limits.limits == (200.0, 250.0, 300.0)
    assert any("note 4 is not applied" in x for x in r.lacking)
    # Its energy still counts in the plant's Σ energy: (6450 + 500) / 30 = 231.67 vs 210/260.
    r1 = furnace_energy_per_t(
        IF1, iron_t=ok(30), energy_kwh=ok(6450), tap_temp_c=ok(1510), air_temp=15.0
    )
    p = plant_energy_per_t([r1, r])
    assert p.value == pytest.approx(6950 / 30)
    assert p.limits == pytest.approx((210.0, 260.0, 310.0))
    assert "furnace if1: energy without taps, counted in Σ energy" in p.lacking


def test_a_plant_with_no_tap_events_is_no_data():
    none = Measured(None, 0, 0.0, "no_data")
    r = furnace_energy_per_t(IF1, iron_t=none, energy_kwh=ok(500))
    p = plant_energy_per_t([r])
    assert (p.status, p.value) == ("no_data", None)
    assert "no tap events in any furnace with energy data" in p.lacking


def test_a_capacity_outside_the_table_is_not_covered():
    # Table C.1's induction row is > 5 t: a 5 t furnace has no limit.
    small = FurnaceFacts("if0", "induction", 5, "ductile", 200)
    r = furnace_energy_per_t(small, iron_t=ok(10), energy_kwh=ok(900))
    assert (r.status, r.value, r.limits) == ("not_covered", None, None)
    r1 = furnace_energy_per_t(
        IF1, iron_t=ok(30), energy_kwh=ok(6450), tap_temp_c=ok(1510), air_temp=15.0
    )
    p = plant_energy_per_t([r1, r])
    assert p.included == ("if1",) and "furnace if0: not covered by Table C.1, left out" in p.lacking


def test_a_cupola_in_kgce_per_tonne():
    # Cupola 7 t/h, gray pipe: the 6～9 t/h row, ＜120 ＜125 ＜135 kgce/t. Tapping at 1490 °C:
    # note 1 +0.6 × 10 = +6 -> 126/131/141; note 4 is not applied to cupola rows (default).
    # 3000 kgce / 24 t = 125 kgce/t < 126 -> tier 1.
    cupola = FurnaceFacts("cu1", "cupola", 7, "gray")
    r = furnace_energy_per_t(
        cupola, iron_t=ok(24), energy_kgce=ok(3000), tap_temp_c=ok(1490), air_temp=15.0
    )
    assert (r.unit, r.energy_unit, r.value) == ("kgce/t", "kgce", 125.0)
    assert r.limits.limits == pytest.approx((126.0, 131.0, 141.0))
    assert r.tier == 1


def test_a_cupola_and_an_induction_furnace_are_not_summed():
    cupola = FurnaceFacts("cu1", "cupola", 7, "gray")
    rc = furnace_energy_per_t(cupola, iron_t=ok(24), energy_kgce=ok(3000), tap_temp_c=ok(1490))
    ri = furnace_energy_per_t(IF1, iron_t=ok(30), energy_kwh=ok(6450), tap_temp_c=ok(1510))
    p = plant_energy_per_t([rc, ri])
    assert (p.status, p.value) == ("bad_input", None)
    assert "duplex" in p.lacking[0]


def test_low_coverage_energy_lowers_the_furnace_status():
    e = Measured(6450, 50, 0.8, "low_coverage", ("1 gap(s) …",))
    r = furnace_energy_per_t(IF1, iron_t=ok(30), energy_kwh=e, tap_temp_c=ok(1510), air_temp=15.0)
    assert (r.value, r.coverage, r.status) == (215.0, 0.8, "low_coverage")
    assert "energy: 1 gap(s) …" in r.lacking


def test_li_floors_can_be_given():
    r = furnace_energy_per_t(
        IF1, iron_t=ok(30), energy_kwh=ok(6450), tap_temp_c=ok(1510), air_temp=15.0,
        li_floors={1: 1.0, 2: 0.8, 3: 0.6, "below": 0.0},
    )  # fmt: skip
    assert (r.tier, r.li) == (2, 0.8)


def test_facts_from_the_plant_config():
    # The plant's product is the furnaces' product; the DN defaults to the range's lower end.
    from types import SimpleNamespace

    furnace = SimpleNamespace(id="if1", kind="induction", capacity=12, dn_min=80, dn_max=300)
    facts = FurnaceFacts.from_plant(furnace, "ductile")
    assert facts == FurnaceFacts("if1", "induction", 12.0, "ductile", 80)
