"""The rollup engine across the real InfluxDB: hand-made readings in, rollup points out.

Every expected number is computed by hand in the comments from the readings written here,
with Table C.1 (rows and notes 2 and 4 as printed: ductile induction < 200 / < 250 / < 300
kWh/t; note 2: 0.6 kWh/t per °C above the specified tapping temperature, 1500 °C for DN80–300
(if1) and 1450 °C for DN350–1000 (if2); note 4: 0.4 kWh/t per °C the site is colder than
25 °C, the demo plant's configured 16.2 °C giving +3.52) and Table 6 (tiers < 0.6C, < 0.8C, < C).
Floats are compared with a relative tolerance of 1e-9 (the sums are exact in decimal but not
in binary).
"""

from __future__ import annotations

import pytest

from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from tests.metrics.engine_helpers import all_points, every, metrics_config, ns, store, write

NOW = ns("2025-03-10T06:30") / 1e9
H0, H1, HM1 = ns("2025-03-10T02:00"), ns("2025-03-10T03:00"), ns("2025-03-10T01:00")
DAY = ns("2025-03-09T16:00")  # local 2025-03-10 00:00 +08:00
SHIFT = ns("2025-03-10T00:00")  # local 08:00 shift of 2025-03-10
MONTH = ns("2025-02-28T16:00")
YEAR = ns("2024-12-31T16:00")
approx = pytest.approx


def _readings(st, pid: str) -> None:
    # if1: a meter read every 5 min, +80 kWh each, from 01:55 to 04:00 (26 readings).
    write(
        st,
        pid,
        "furnace_energy_kwh",
        {"device": "if1"},
        every("2025-03-10T01:55", 130, 5, lambda i: 1000.0 + 80 * i),
    )
    write(
        st,
        pid,
        "tap_iron_t",
        {"device": "if1"},
        [("2025-03-10T02:20", 8.0), ("2025-03-10T02:50", 7.0)],
    )
    write(
        st,
        pid,
        "tap_temp_c",
        {"device": "if1"},
        [("2025-03-10T02:20", 1510.0), ("2025-03-10T02:50", 1480.0)],
    )
    # if2: a reset at 02:25 (40 after 5160) and a 25-minute gap before 03:00.
    write(
        st,
        pid,
        "furnace_energy_kwh",
        {"device": "if2"},
        [
            ("2025-03-10T01:55", 5000.0),
            ("2025-03-10T02:05", 5080.0),
            ("2025-03-10T02:15", 5160.0),
            ("2025-03-10T02:25", 40.0),
            ("2025-03-10T02:35", 120.0),
            ("2025-03-10T03:00", 200.0),
        ],
    )
    write(st, pid, "tap_iron_t", {"device": "if2"}, [("2025-03-10T02:30", 10.0)])
    write(st, pid, "tap_temp_c", {"device": "if2"}, [("2025-03-10T02:30", 1460.0)])
    # melt-stack dust: 45 minutes of 15 mg/m3 in H0 (valid), 44 minutes of 27 in H1 (not).
    dust = {"device": "melt-stack", "pollutant": "particulate"}
    write(st, pid, "stack_conc_mg_m3", dust, every("2025-03-10T02:00", 45, 1, 15.0))
    write(st, pid, "stack_conc_mg_m3", dust, every("2025-03-10T03:00", 44, 1, 27.0))
    # coat-stack dust: 60 minutes of 12 mg/m3, the analyser calibrating 02:10-02:25 (code 1).
    coat = {"device": "coat-stack", "pollutant": "particulate"}
    write(st, pid, "stack_conc_mg_m3", coat, every("2025-03-10T02:00", 60, 1, 12.0))
    write(
        st,
        pid,
        "stack_analyser_status",
        {"device": "coat-stack"},
        [("2025-03-10T02:10", 1.0), ("2025-03-10T02:25", 0.0)],
    )


@pytest.fixture
def plant(tmp_path, stack, request):
    pid = "m-" + request.node.name.replace("_", "-")[5:40].strip("-")
    cfg = metrics_config(tmp_path, stack, pid, history_days=2)
    st = store(stack)
    _readings(st, pid)
    engine = Engine(cfg, store=st)
    yield cfg, st, engine
    engine.close()


def test_table_c1_and_stacks_by_hand(plant):
    cfg, st, engine = plant
    engine.reconcile(now=NOW)
    p = all_points(st, cfg.plant.id)
    f1 = p[(schema.C1_FURNACE, "if1", "hour", H0)]
    # if1 H0: increments of the readings in (02:00, 03:00]: 12 × 80 = 960 kWh; 8 + 7 = 15 t.
    assert f1["energy_kwh"] == approx(960.0) and f1["iron_t"] == approx(15.0)
    assert f1["kwh_per_t"] == approx(64.0)  # 960 / 15
    assert f1["tap_temp_c"] == approx(1496.0)  # (8 × 1510 + 7 × 1480) / 15
    # 200 + 0.6 × (1496 − 1500) + 0.4 × (25 − 16.2) = 201.12, and +50, +100.
    assert (
        f1["limit_tier1_kwh_per_t"],
        f1["limit_tier2_kwh_per_t"],
        f1["limit_tier3_kwh_per_t"],
    ) == (
        approx(201.12),
        approx(251.12),
        approx(301.12),
    )
    assert f1["tier"] == 1 and f1["status"] == "ok" and f1["coverage"] == approx(1.0)
    assert f1["air_temp_source"] == "config" and f1["air_temp_year"] == "2024"
    # The reading at 02:00 closes the hour before (start < t <= end): 80 kWh, 5 of 60 minutes.
    fm1 = p[(schema.C1_FURNACE, "if1", "hour", HM1)]
    assert fm1["energy_kwh"] == approx(80.0) and fm1["energy_coverage"] == approx(5 / 60)
    assert fm1["status"] == "no_data" and "no tap events" in fm1["lacking"]

    f2 = p[(schema.C1_FURNACE, "if2", "hour", H0)]
    # if2 H0: 80 + 80 + 40 (reset: the new meter from zero) + 80 + 80 (across the gap) = 360.
    assert f2["energy_kwh"] == approx(360.0) and f2["kwh_per_t"] == approx(36.0)
    assert f2["resets"] == 1 and f2["gaps"] == 1
    # Covered: 02:00-02:35 (the 02:35-03:00 gap of 25 min > 15 min is not) = 35 of 60 minutes.
    assert f2["coverage"] == approx(35 / 60) and f2["status"] == "low_coverage"
    # 200 + 0.6 × (1460 − 1450) + 3.52 = 209.52.
    assert f2["limit_tier1_kwh_per_t"] == approx(209.52) and f2["tier"] == 1

    pl = p[(schema.C1_PLANT, "hour", H0)]
    # D-c1-plant: (960 + 360) / (15 + 10) = 52.8 against (15 × 201.12 + 10 × 209.52) / 25.
    assert pl["kwh_per_t"] == approx(52.8)
    assert pl["limit_tier1_kwh_per_t"] == approx(204.48)
    assert pl["coverage"] == approx((15 * 1 + 10 * 35 / 60) / 25)
    assert pl["status"] == "low_coverage"
    # The scorer's one row (DN80, specified 1500 °C) gives 204.48 at 1500 + (15 × −4 + 10 × 10) / 25.
    assert pl["scorer_dn"] == 80 and pl["scorer_tap_temp_c"] == approx(1501.6)
    assert pl["tap_temp_c"] == approx(1481.6)  # (8 × 1510 + 7 × 1480 + 10 × 1460) / 25

    # Table 6: 45 valid minutes make a valid hour (HJ 75), 44 do not.
    m0 = p[(schema.AIR_STACK, "melt-stack", "particulate", "hour", H0)]
    assert m0["mean_mg_m3"] == approx(15.0) and m0["multiple_of_c"] == approx(0.5)  # 15 / 30
    assert m0["valid_minutes"] == 45 and m0["status"] == "ok"
    m1 = p[(schema.AIR_STACK, "melt-stack", "particulate", "hour", H1)]
    assert "multiple_of_c" not in m1 and m1["valid_minutes"] == 44
    assert m1["status"] == "low_coverage" and "44 of 60 minutes valid" in m1["lacking"]
    # Calibration 02:10-02:25: 15 minutes flagged, 45 valid of 12 mg/m3: 12 / 30 = 0.4.
    c0 = p[(schema.AIR_STACK, "coat-stack", "particulate", "hour", H0)]
    assert c0["minutes_flagged"] == 15 and c0["valid_minutes"] == 45
    assert c0["multiple_of_c"] == approx(0.4)
    n0 = p[(schema.AIR_STACK, "coat-stack", "nmhc", "hour", H0)]
    assert n0["status"] == "no_data" and "multiple_of_c" not in n0
    ap = p[(schema.AIR_PLANT, "hour", H0)]
    assert ap["multiple_of_c"] == approx(0.5) and ap["worst"] == "melt-stack/particulate"
    assert ap["coverage"] == 0.0 and ap["status"] == "low_coverage"  # nmhc had no valid hour

    # The local day (2025-03-10 +08:00) composed from its hours.
    d1 = p[(schema.C1_FURNACE, "if1", "day", DAY)]
    assert d1["energy_kwh"] == approx(80 + 960 + 960)  # 01:55 to 04:00: 25 increments of 80
    assert d1["kwh_per_t"] == approx(2000 / 15)
    assert d1["energy_coverage"] == approx(125 / 1440) and d1["label"] == "2025-03-10"
    dm = p[(schema.AIR_STACK, "melt-stack", "particulate", "day", DAY)]
    assert dm["multiple_of_c"] == approx(0.5) and dm["valid_hours"] == 1 and dm["hours"] == 24
    assert dm["share_tier1"] == 1.0
    for kind, start in (("shift", SHIFT), ("month", MONTH), ("year", YEAR)):
        w = p[(schema.C1_FURNACE, "if1", kind, start)]
        assert w["energy_kwh"] == approx(2000.0), kind


def test_late_data_changes_exactly_its_windows_and_a_replay_nothing(plant):
    cfg, st, engine = plant
    engine.reconcile(now=NOW)
    before = all_points(st, cfg.plant.id)
    # A tap of if1 in H1 arrives late: 5 t at 1500 °C.
    write(st, cfg.plant.id, "tap_iron_t", {"device": "if1"}, [("2025-03-10T03:30", 5.0)])
    write(st, cfg.plant.id, "tap_temp_c", {"device": "if1"}, [("2025-03-10T03:30", 1500.0)])
    engine.run_once(now=NOW)
    after = all_points(st, cfg.plant.id)
    assert after.keys() == before.keys()
    changed = {k for k in after if after[k] != before[k]}
    trailing = {k[-1] for k in after if k[0] == schema.C1_PLANT and k[1] == "trailing_12m"}
    trailing = {t for t in trailing if t <= MONTH}  # the twelve that hold March 2025
    assert len(trailing) == 12
    windows = {("hour", H1), ("shift", SHIFT), ("day", DAY), ("month", MONTH), ("year", YEAR)}
    windows |= {("trailing_12m", t) for t in trailing}
    expected = {(schema.C1_FURNACE, "if1", k, t) for k, t in windows}
    expected |= {(schema.C1_PLANT, k, t) for k, t in windows}
    assert changed == expected
    # H1 now: 960 kWh / 5 t = 192 kWh/t, at 1500 °C: limits 200 + 3.52 = 203.52, tier 1.
    h1 = after[(schema.C1_FURNACE, "if1", "hour", H1)]
    assert h1["kwh_per_t"] == approx(192.0) and h1["limit_tier1_kwh_per_t"] == approx(203.52)
    assert h1["tier"] == 1 and h1["status"] == "ok"

    # A replay of the same readings changes nothing, and recomputes nothing.
    _readings(st, cfg.plant.id)
    result = engine.run_once(now=NOW)
    assert result["dirty_hours"] == 0
    assert all_points(st, cfg.plant.id) == after
    # A forced recompute (backfill) writes exactly the same points.
    engine.backfill(ns("2025-03-09T16:00"), ns("2025-03-10T16:00"))
    assert all_points(st, cfg.plant.id) == after
