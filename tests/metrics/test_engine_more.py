"""The engine across the real InfluxDB for what was only unit-tested: a counter rollover with
`metrics.rollover_modulus`, a plant in a DST zone across the autumn transition, and a year of
`ambient_temp_c` readings giving the site's annual mean for Table C.1 note 4.

Every expected number is computed by hand in the comments from the readings written here, with
Table C.1 as printed (ductile induction tier 1 < 200 kWh/t; note 2: 0.6 kWh/t per °C above the
specified tapping temperature, 1500 °C for DN80–300, furnace if1; note 4: 0.4 kWh/t per °C the
site is colder than 25 °C). Floats are compared with a relative tolerance of 1e-9 (sums exact
in decimal, not in binary).
"""

from __future__ import annotations

import dataclasses

import pytest

from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from tests.metrics.engine_helpers import all_points, every, metrics_config, ns, store, write

pytestmark = pytest.mark.servers
approx = pytest.approx


def _run(cfg, st, start: str, end: str) -> dict:
    engine = Engine(cfg, store=st)
    try:
        engine.backfill(ns(start), ns(end))
    finally:
        engine.close()
    return all_points(st, cfg.plant.id)


def test_a_rollover_with_its_modulus_and_a_reset_without(tmp_path, stack):
    st = store(stack)
    pid = "m-rollover"
    # Both furnaces' meters read every 5 min from 01:55, +80 kWh each, wrapping at 10^6 kWh:
    # 999 700, 999 780 (02:00), 999 860, 999 940, then 20 (02:15), 100 … 740 (03:00).
    wrap = [
        (t, (999_700.0 + 80 * i) % 1_000_000)
        for i, (t, _) in enumerate(every("2030-05-06T01:55", 70, 5, 0))
    ]
    for dev in ("if1", "if2"):
        write(st, pid, "furnace_energy_kwh", {"device": dev}, wrap)
        write(st, pid, "tap_iron_t", {"device": dev}, [("2030-05-06T02:30", 8.0)])
        write(st, pid, "tap_temp_c", {"device": dev}, [("2030-05-06T02:30", 1500.0)])
    # if1's meter is then replaced half-way up its register: 820 … 1140 (03:25), 30 at 03:30
    # (a new meter, from zero), then +80 to 510 at 04:00.
    later = [(f"2030-05-06T03:{m:02d}", 740.0 + 80 * (m // 5)) for m in range(5, 30, 5)]
    later += [("2030-05-06T03:30", 30.0)]
    later += [(f"2030-05-06T03:{m:02d}", 30.0 + 80 * ((m - 30) // 5)) for m in range(35, 60, 5)]
    later += [("2030-05-06T04:00", 510.0)]
    write(st, pid, "furnace_energy_kwh", {"device": "if1"}, later)
    cfg = metrics_config(tmp_path, stack, pid, rollover_modulus={"if1": 1_000_000.0})
    p = _run(cfg, st, "2030-05-06T00:00", "2030-05-06T05:00")
    h2, h3 = ns("2030-05-06T02:00"), ns("2030-05-06T03:00")
    f1 = p[(schema.C1_FURNACE, "if1", "hour", h2)]
    # if1 with the modulus: 12 increments of 80 in (02:00, 03:00], the wrap read as
    # 20 + 10^6 − 999 940 = 80: 960 kWh, one rollover, no reset; 960 / 8 t = 120 kWh/t.
    assert f1["energy_kwh"] == approx(960.0) and f1["kwh_per_t"] == approx(120.0)
    assert f1["rollovers"] == 1 and f1["resets"] == 0
    # if2 without a modulus: the same drop is a reset, the new meter's 20 its increment:
    # 11 × 80 + 20 = 900 kWh.
    f2 = p[(schema.C1_FURNACE, "if2", "hour", h2)]
    assert f2["energy_kwh"] == approx(900.0) and f2["kwh_per_t"] == approx(112.5)
    assert f2["rollovers"] == 0 and f2["resets"] == 1
    # if1 03:00–04:00: 5 × 80, the replacement (wrapped it would be 30 + 10^6 − 1140 = 998 890,
    # more than a tenth of the register: a reset) counts its 30, then 6 × 80: 910 kWh.
    g1 = p[(schema.C1_FURNACE, "if1", "hour", h3)]
    assert g1["energy_kwh"] == approx(910.0)
    assert g1["resets"] == 1 and g1["rollovers"] == 0
    # The local day (2030-05-06 +08:00, from 2030-05-05T16:00Z) composes its hours:
    # 80 (the 02:00 reading closes 01:00–02:00) + 960 + 910.
    d1 = p[(schema.C1_FURNACE, "if1", "day", ns("2030-05-05T16:00"))]
    assert d1["energy_kwh"] == approx(1950.0)
    assert d1["rollovers"] == 1 and d1["resets"] == 1


def test_a_dst_plant_across_the_autumn_transition(tmp_path, stack):
    st = store(stack)
    pid = "m-dst-berlin"
    # Europe/Berlin: 2026-10-25 03:00 CEST becomes 02:00 CET (01:00Z). The local day runs from
    # 2026-10-24T22:00Z to 2026-10-25T23:00Z: 25 hours.
    write(
        st,
        pid,
        "furnace_energy_kwh",
        {"device": "if1"},
        every("2026-10-24T21:55", 25 * 60 + 10, 5, lambda i: 5000.0 + 10 * i),
    )
    taps = [(ns("2026-10-24T22:30") + h * 3600 * 10**9, 1.0) for h in range(25)]
    write(st, pid, "tap_iron_t", {"device": "if1"}, taps)
    write(st, pid, "tap_temp_c", {"device": "if1"}, [(t, 1500.0) for t, _ in taps])
    dust = {"device": "melt-stack", "pollutant": "particulate"}
    write(st, pid, "stack_conc_mg_m3", dust, every("2026-10-24T22:00", 25 * 60, 1, 15.0))
    cfg = metrics_config(tmp_path, stack, pid)
    cfg = dataclasses.replace(cfg, plant=dataclasses.replace(cfg.plant, timezone="Europe/Berlin"))
    p = _run(cfg, st, "2026-10-24T22:00", "2026-10-25T23:00")
    day = ns("2026-10-24T22:00")
    hours = {
        k[-1]: v
        for k, v in p.items()
        if k[:3] == (schema.C1_FURNACE, "if1", "hour") and day <= k[-1] < ns("2026-10-25T23:00")
    }
    # 25 hours, each 12 increments of 10 kWh and one 1 t tap: 120 kWh/t.
    assert len(hours) == 25
    assert all(
        h["energy_kwh"] == approx(120.0) and h["iron_t"] == approx(1.0) for h in hours.values()
    )
    # The hour 02:00 happens twice, labelled by its offset.
    assert hours[ns("2026-10-25T00:00")]["label"] == "2026-10-25T02:00+02:00"
    assert hours[ns("2026-10-25T01:00")]["label"] == "2026-10-25T02:00+01:00"
    d = p[(schema.C1_FURNACE, "if1", "day", day)]
    # The day: 25 × 12 × 10 = 3000 kWh, 25 t, 120 kWh/t, covered for all its 1500 minutes.
    assert d["label"] == "2026-10-25"
    assert d["energy_kwh"] == approx(3000.0) and d["iron_t"] == approx(25.0)
    assert d["kwh_per_t"] == approx(120.0) and d["taps"] == 25
    assert d["energy_coverage"] == approx(1.0) and d["status"] == "ok"
    # Shifts at 00:00, 08:00, 16:00 local: the night shift holds the repeated hour (9 hours,
    # 22:00Z–07:00Z), the others 8 each.
    for start, label, n_h in (
        ("2026-10-24T22:00", "2026-10-25 00:00", 9),
        ("2026-10-25T07:00", "2026-10-25 08:00", 8),
        ("2026-10-25T15:00", "2026-10-25 16:00", 8),
    ):
        s = p[(schema.C1_FURNACE, "if1", "shift", ns(start))]
        assert s["label"] == label
        assert s["energy_kwh"] == approx(120.0 * n_h) and s["iron_t"] == approx(float(n_h))
    # Table 6: every minute 15 mg/m3 of a 30 mg/m3 limit: 25 valid hours of 25 in the day, and
    # October 2026 has 31 × 24 + 1 = 745 hours.
    a = p[(schema.AIR_STACK, "melt-stack", "particulate", "day", day)]
    assert a["valid_hours"] == 25 and a["hours"] == 25 and a["multiple_of_c"] == approx(0.5)
    m = p[(schema.AIR_STACK, "melt-stack", "particulate", "month", ns("2026-09-30T22:00"))]
    assert m["label"] == "2026-10" and m["hours"] == 745 and m["valid_hours"] == 25


def _year_of_ambient(st, pid: str, start: str, days: int, value) -> None:
    """A reading every 10 minutes for `days` days from `start` (UTC text); value(local month)."""
    import pandas as pd

    t0 = pd.Timestamp(start, tz="UTC")
    n = days * 144
    times = pd.date_range(t0, periods=n, freq="10min")
    months = times.tz_convert("Asia/Shanghai").month
    pts = [(t.value, value(mo)) for t, mo in zip(times, months, strict=True)]
    for i in range(0, n, 20_000):
        write(st, pid, "ambient_temp_c", {"device": "weather"}, pts[i : i + 20_000])


def _furnace_hour(st, pid: str, day: str) -> None:
    # if1 02:00–03:00 UTC: 12 increments of 80 = 960 kWh, one 8 t tap at 1500 °C: 120 kWh/t.
    write(
        st,
        pid,
        "furnace_energy_kwh",
        {"device": "if1"},
        every(f"{day}T01:55", 70, 5, lambda i: 1000.0 + 80 * i),
    )
    write(st, pid, "tap_iron_t", {"device": "if1"}, [(f"{day}T02:30", 8.0)])
    write(st, pid, "tap_temp_c", {"device": "if1"}, [(f"{day}T02:30", 1500.0)])


def test_a_year_of_ambient_readings_gives_note_4_else_the_config_value(tmp_path, stack):
    st = store(stack)
    pid = "m-ambient"
    # Local 2029 (Asia/Shanghai, from 2028-12-31T16:00Z, 365 days) read every 10 minutes, each
    # reading holding for the 9 minutes after it (ambient_hold_minutes 9): every minute
    # covered. Each reading is its local month's number, so the year's time-weighted mean is
    # (31×1 + 28×2 + 31×3 + 30×4 + 31×5 + 30×6 + 31×7 + 31×8 + 30×9 + 31×10 + 30×11 + 31×12)
    # / 365 = 2382 / 365 = 6.526027… °C.
    _year_of_ambient(st, pid, "2028-12-31T16:00", 365, float)
    # Local 2030: only January to June (181 days), 20 °C: 181 / 365 = 49.6 % of the year.
    _year_of_ambient(st, pid, "2029-12-31T16:00", 181, lambda m: 20.0)
    _furnace_hour(st, pid, "2030-03-10")
    _furnace_hour(st, pid, "2031-03-10")
    cfg = metrics_config(tmp_path, stack, pid, ambient_hold_minutes=9, history_days=3000)
    assert cfg.plant.annual_mean_air_temp_c == 16.2  # the demo plant's configured value
    engine = Engine(cfg, store=st)
    try:
        engine.backfill(ns("2030-03-10T01:00"), ns("2030-03-10T04:00"))
        engine.backfill(ns("2031-03-10T01:00"), ns("2031-03-10T04:00"))
    finally:
        engine.close()
    p = all_points(st, pid)
    mean = 2382 / 365
    h = p[(schema.C1_FURNACE, "if1", "hour", ns("2030-03-10T02:00"))]
    # A 2030 window uses 2029, the latest complete year, from its readings.
    assert h["air_temp_source"] == "readings" and h["air_temp_year"] == "2029"
    assert h["annual_mean_air_temp_c"] == approx(mean, rel=1e-9)
    # Limits: 200 + 0.6 × (1500 − 1500) + 0.4 × (25 − 6.526027…) = 207.389589…, +50, +100.
    assert h["limit_tier1_kwh_per_t"] == approx(200 + 0.4 * (25 - mean), rel=1e-9)
    assert h["limit_tier3_kwh_per_t"] == approx(300 + 0.4 * (25 - mean), rel=1e-9)
    assert h["kwh_per_t"] == approx(120.0) and h["tier"] == 1
    # A 2031 window: 2030's readings cover half the year, so the configured 16.2 °C stands,
    # and the point says so: 200 + 0.4 × (25 − 16.2) = 203.52.
    g = p[(schema.C1_FURNACE, "if1", "hour", ns("2031-03-10T02:00"))]
    assert g["air_temp_source"] == "config" and g["air_temp_year"] == "2030"
    assert g["annual_mean_air_temp_c"] == approx(16.2)
    assert g["limit_tier1_kwh_per_t"] == approx(203.52)
