"""Table 5, the water-reuse rates, Table A.1 and CO2 in the engine, across the real InfluxDB.

One plant-local day (2025-03-10, Asia/Shanghai: 2025-03-09T16:00Z to 2025-03-10T16:00Z) of
hand-made readings: every counter read every 10 minutes from the day's first instant to its
last (145 readings, 144 increments in the day, so the day is fully covered: an increment
belongs to the window of its later reading), and one production batch per hour at HH:30.
Every expected number is computed by hand in the comments from these readings, with the
factors of metrics/factors.yaml (GB/T 2589: electricity at its equivalent value 0.1229
kgce/kWh, natural gas 1.2143 kgce/m³, oxygen 0.4000 kgce/m³; CO2: grid 0.5306 kgCO2/kWh,
natural gas 2.162 kgCO2/m³) and the formulas stated in metrics/table5.py, water.py and
table_a1.py. Floats are compared with a relative tolerance of 1e-9 (sums of decimal
increments are not exact in binary).
"""

from __future__ import annotations

import json
import math

import pytest
import yaml

from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from greenfoundry.store import where
from tests.metrics.engine_helpers import every, ns, store, write
from tests.metrics.test_engine_runs import _cli, _config_file, _evidence_for
from tests.plant import ALL_TIME

NOW = ns("2025-03-11T06:30") / 1e9
DAY = ns("2025-03-09T16:00")  # local 2025-03-10 00:00 +08:00
H10 = ns("2025-03-10T02:00")  # local 10:00, a DN200 hour
MONTH = ns("2025-02-28T16:00")
approx = pytest.approx

# Counter increments per 10 minutes (144 in the day).
PER_10MIN = {
    ("site_energy_kwh", "main-meter", None): 500.0,
    ("site_reactive_kvarh", "main-meter", None): 200.0,
    ("fuel_gas_m3", "gas-in", None): 25.0,
    ("oxygen_m3", "oxygen-in", None): 50.0,
    ("water_m3", "cooling-loop", "cooling_circulating"): 485.0,
    ("water_m3", "cooling-makeup", "cooling_makeup"): 15.0,
    ("water_m3", "process-reuse", "process_reused"): 44.0,
    ("water_m3", "process-in", "process_intake"): 6.0,
    ("water_m3", "reclaimed-in", "reclaimed_intake"): 3.0,
    ("water_m3", "site-intake", "total_intake"): 50.0,
}
# One batch per hour at HH:30: local 00:30-11:30 DN200, 12:30-23:30 DN600.
BATCH = {
    200: {
        "pipe_cast_count": 50,
        "pipe_output_t": 6.0,
        "pipe_scrap_t": 0.4,
        "hydro_tested_count": 48,
        "hydro_passed_count": 47,
        "inspected_count": 48,
        "inspection_passed_count": 46,
    },
    600: {
        "pipe_cast_count": 10,
        "pipe_output_t": 6.0,
        "pipe_scrap_t": 0.5,
        "hydro_tested_count": 10,
        "hydro_passed_count": 10,
        "inspected_count": 9,
        "inspection_passed_count": 9,
    },
}


def _readings(st, pid: str) -> None:
    for (signal, device, role), inc in PER_10MIN.items():
        tags = {"device": device, **({"role": role} if role else {})}
        write(st, pid, signal, tags, every("2025-03-09T16:00", 1450, 10, lambda i, d=inc: i * d))
    for h in range(24):
        t = DAY + h * 3600 * 10**9 + 30 * 60 * 10**9
        dn = 200 if h < 12 else 600
        write(st, pid, "pipe_dn", {"device": "line1"}, [(t, float(dn))])
        for signal, v in BATCH[dn].items():
            write(st, pid, signal, {"device": "line1"}, [(t, float(v))])
        if h % 2 == 0:  # 12 taps of 13 t of liquid iron
            write(st, pid, "tap_iron_t", {"device": "if1"}, [(t, 13.0)])
            write(st, pid, "tap_temp_c", {"device": "if1"}, [(t, 1500.0)])


@pytest.fixture
def plant(tmp_path, stack, request):
    pid = "t5-" + request.node.name.replace("_", "-")[5:36].strip("-")
    cfg, path = _config_file(tmp_path, stack, pid, history_days=3)
    st = store(stack)
    _readings(st, pid)
    engine = Engine(cfg, store=st)
    engine.reconcile(now=NOW)
    engine.close()
    yield cfg, path, st


def all_points(st, plant_id: str) -> dict:
    """{(measurement, indicator, window kind, time ns): {field: value}} of the plant rollups."""
    out = {}
    for m in (schema.T5_PLANT, schema.A1_PLANT, schema.CO2_PLANT):
        df = st.query(f"SELECT * FROM {m} {where({'plant': plant_id}, **ALL_TIME)} GROUP BY *")
        for rec in [] if df.empty else df.to_dict("records"):
            key = (m, rec["indicator"], rec["window"], rec["time"].value)
            out[key] = {
                k: v
                for k, v in rec.items()
                if k not in ("time", "measurement", "plant", "indicator", "window")
                and v is not None
                and not (isinstance(v, float) and v != v)
            }
    return out


def _ind(points, measurement, name, kind="day", start=DAY) -> dict:
    return points[(measurement, name, kind, start)]


def test_a_days_table5_water_and_power_factor_by_hand(plant):
    cfg, _path, st = plant
    p = all_points(st, cfg.plant.id)
    e = _ind(p, schema.T5_PLANT, "energy_per_t_pipe")
    # 144 × 500 = 72 000 kWh × 0.1229 = 8848.8 kgce; 144 × 25 = 3600 m³ × 1.2143 = 4371.48;
    # 144 × 50 = 7200 m³ oxygen × 0.4 = 2880: 16 100.28 kgce over 24 × 6 = 144 t of good pipe.
    assert e["kgce_electricity"] == approx(8848.8) and e["kgce_natural_gas"] == approx(4371.48)
    assert e["kgce_oxygen"] == approx(2880.0) and e["pipe_t"] == approx(144.0)
    assert e["kgce_per_t"] == approx(16100.28 / 144)  # 111.807…
    assert e["status"] == "ok" and e["coverage"] == approx(1.0)
    assert "GB/T 2589" in e["factors"]
    pf = _ind(p, schema.T5_PLANT, "power_factor")
    # 72 000 kWh and 144 × 200 = 28 800 kvarh: 72 000 / √(72 000² + 28 800²) = 1 / √1.16.
    assert pf["power_factor"] == approx(1 / math.sqrt(1.16))  # 0.92848
    assert pf["active_kwh"] == approx(72000.0) and pf["reactive_kvarh"] == approx(28800.0)
    # Water, each meter's 144 increments: 485 / (485 + 15) = 97 %; 44 / (44 + 6) = 88 %;
    # reclaimed 3 of a total intake of 50 = 6 %.
    assert _ind(p, schema.T5_PLANT, "cooling_recirculation")["rate_pct"] == approx(97.0)
    assert _ind(p, schema.T5_PLANT, "process_wastewater_reuse")["rate_pct"] == approx(88.0)
    assert _ind(p, schema.T5_PLANT, "reclaimed_share")["rate_pct"] == approx(6.0)
    # Overall: (485 + 44) / (485 + 44 + 50) = 529 / 579.
    assert _ind(p, schema.T5_PLANT, "water_reuse")["rate_pct"] == approx(100 * 529 / 579)
    # An hour composes into the day: local 10:00 holds 6 increments of 500 kWh, one 6 t batch.
    h = _ind(p, schema.T5_PLANT, "energy_per_t_pipe", "hour", H10)
    assert h["kgce_per_t"] == approx((6 * 500 * 0.1229 + 6 * 25 * 1.2143 + 6 * 50 * 0.4) / 6)
    # The month holds only this day: the same sums, at 1 / 31 of the month's counter time.
    m = _ind(p, schema.T5_PLANT, "energy_per_t_pipe", "month", MONTH)
    assert m["kgce_per_t"] == approx(16100.28 / 144) and m["coverage"] == approx(1 / 31)
    assert m["status"] == "low_coverage"


def test_a_days_table_a1_and_co2_by_hand(plant):
    cfg, _path, st = plant
    p = all_points(st, cfg.plant.id)
    a1 = schema.A1_PLANT
    # Scrap 12 × 0.4 + 12 × 0.5 = 10.8 t against good pipe 144 t: 10.8 / 154.8.
    assert _ind(p, a1, "scrap_rate")["rate_pct"] == approx(100 * 10.8 / 154.8)  # 6.977 %
    # Good pipe 144 t of 12 × 13 = 156 t of liquid iron.
    assert _ind(p, a1, "process_yield")["rate_pct"] == approx(100 * 144 / 156)  # 92.31 %
    # Hydrostatic test: 12 × 47 + 12 × 10 = 684 passed of 12 × 48 + 12 × 10 = 696 tested;
    # DN80-300 564 of 576, DN350-1000 120 of 120.
    assert _ind(p, a1, "hydro_first_pass")["rate_pct"] == approx(100 * 684 / 696)
    dn200 = _ind(p, a1, "hydro_first_pass:DN80-300")
    assert dn200["rate_pct"] == approx(100 * 564 / 576) and dn200["tested"] == 576
    assert _ind(p, a1, "hydro_first_pass:DN350-1000")["rate_pct"] == approx(100.0)
    assert ("gf_a1_plant", "hydro_first_pass:DN>1000", "day", DAY) not in p  # no such pipe
    # Inspection: 12 × 46 + 12 × 9 = 660 of 12 × 48 + 12 × 9 = 684; DN80-300 552 of 576.
    assert _ind(p, a1, "pipe_first_pass")["rate_pct"] == approx(100 * 660 / 684)
    assert _ind(p, a1, "pipe_first_pass:DN80-300")["rate_pct"] == approx(100 * 552 / 576)
    # Online: min(696 hydro-tested, 684 inspected) of 12 × 50 + 12 × 10 = 720 cast.
    assert _ind(p, a1, "online_inspection_rate")["rate_pct"] == approx(100 * 684 / 720)
    assert _ind(p, a1, "output")["output_10kt"] == approx(144 / 1e4)
    # CO2: 72 000 × 0.5306 + 3600 × 2.162 = 38 203.2 + 7783.2 = 45 986.4 kg (oxygen has no
    # CO2 factor: its supplier's electricity), per 144 t of pipe and per 156 t of iron.
    cp = _ind(p, schema.CO2_PLANT, "co2_per_t_pipe")
    assert cp["kg_co2_per_t"] == approx(45986.4 / 144) and cp["kg_co2"] == approx(45986.4)
    assert "no CO2 factor for oxygen" in cp["lacking"]
    ci = _ind(p, schema.CO2_PLANT, "co2_per_t_liquid_iron")
    assert ci["kg_co2_per_t"] == approx(45986.4 / 156)


def test_indicators_emit_the_rows_and_score_scores_them(plant, tmp_path, stack):
    cfg, path, _st = plant
    out = tmp_path / "indicators.yaml"
    proc = _cli(
        *("metrics", "indicators", "--config", str(path), "--stack", str(stack.dir)),
        *("--window", "2025-03", "--out", str(out)),
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    rows = yaml.safe_load(out.read_text())["rows"]
    assert rows["energy.pipe.kgce_per_t"]["value"] == approx(16100.28 / 144, rel=1e-6)
    assert rows["energy.pipe.kgce_per_t"]["unit"] == "kgce/t"
    assert rows["energy.power_factor.power_factor"]["value"] == approx(0.928477, abs=1e-6)
    assert rows["energy.water.cooling_recirculation"]["value"] == approx(97.0)
    assert rows["energy.water.process_wastewater_reuse"]["value"] == approx(88.0)
    assert rows["energy.water.reclaimed_share"]["value"] == approx(6.0)
    assert rows["techeco.scrap.scrap_rate"]["value"] == approx(100 * 10.8 / 154.8, rel=1e-6)
    # Ductile: the first-pass rows take the DN range with the most pipes tested (D-a1-dn):
    # DN80-300, 576 of 696 hydro-tested.
    hydro = rows["techeco.quality.hydro_first_pass"]
    assert hydro["value"] == approx(100 * 564 / 576, rel=1e-6) and hydro["context"] == {"dn": 80}
    assert "D-a1-dn" in err and "DN350-1000 100.00 %" in err
    # No signal for the coating wastewater row: left out, never a 0.
    assert "energy.water.coating_wastewater_reuse" not in rows

    evidence = cfg.path.parent / "evidence.yaml"
    evidence.write_text(_evidence_for(cfg.plant.id))
    # One day of a 31-day month: the counters cover 1 / 31 of it, so --min-coverage 0.03.
    proc = _cli(
        *("score", "--config", str(path), "--indicators", str(out), "--evidence", str(evidence)),
        *("--min-coverage", "0.03", "--as-of", "2026-03-31", "--json"),
    )
    res, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    scored = {r["row_id"]: r for r in json.loads(res)["rows"]}
    # Tiers by hand from Table 5 and Table A.1 (ductile), Li at the tier's floor 0.90 / 0.75 / 0.60:
    expected = {
        "energy.pipe.kgce_per_t": (2, 0.75 * 60),  # 111.8: > 100, ≤ 120
        "energy.power_factor.power_factor": (2, 0.75 * 20),  # 0.928: 0.94～0.92
        "energy.water.cooling_recirculation": (2, 0.75 * 5),  # 97: ≥ 95, < 98
        "energy.water.process_wastewater_reuse": (2, 0.75 * 5),  # 88: ≥ 85, < 90
        "energy.water.reclaimed_share": (3, 0.60 * 5),  # 6: ≥ 5, < 7
        "techeco.scrap.scrap_rate": (2, 0.75 * 30),  # 6.98: > 6, ≤ 8
        "techeco.yield.process_yield": (1, 0.90 * 20),  # 92.31: ≥ 92
        "techeco.quality.hydro_first_pass": (1, 0.90 * 10),  # DN80-300 97.92: ≥ 97
        "techeco.quality.pipe_first_pass": (1, 0.90 * 10),  # DN80-300 95.83: ≥ 95
        "techeco.quality.online_inspection_rate": (3, 0.60 * 10),  # 95: ≥ 94, < 96
    }
    for row, (tier, points) in expected.items():
        assert scored[row]["tier"] == tier, row
        assert scored[row]["points"] == approx(points), row


def test_late_plant_data_changes_its_windows_and_a_replay_nothing(plant):
    cfg, _path, st = plant
    before = all_points(st, cfg.plant.id)
    engine = Engine(cfg, store=st)
    try:
        # A late 6 t batch of DN200 pipe in local hour 10:00 (02:45Z), nothing else with it.
        write(st, cfg.plant.id, "pipe_output_t", {"device": "line1"}, [("2025-03-10T02:45", 6.0)])
        engine.run_once(now=NOW)
        after = all_points(st, cfg.plant.id)
        # The day's energy is now over 150 t: 16 100.28 / 150; the hour's over 12 t.
        assert _ind(after, schema.T5_PLANT, "energy_per_t_pipe")["kgce_per_t"] == approx(
            16100.28 / 150
        )
        h = _ind(after, schema.T5_PLANT, "energy_per_t_pipe", "hour", H10)
        assert h["pipe_t"] == approx(12.0)
        # Scrap 10.8 t against 150 t; the energy of no other hour changed.
        assert _ind(after, schema.A1_PLANT, "scrap_rate")["rate_pct"] == approx(1080 / 160.8)
        changed = {k for k in after if after[k] != before[k]}
        assert {k[3] for k in changed if k[2] == "hour"} == {H10}
        assert {k[2] for k in changed} >= {"hour", "shift", "day", "month", "year"}
        # The same readings again: nothing is dirty and every point stays as it is.
        _readings(st, cfg.plant.id)
        write(st, cfg.plant.id, "pipe_output_t", {"device": "line1"}, [("2025-03-10T02:45", 6.0)])
        assert engine.run_once(now=NOW)["dirty_hours"] == 0
        assert all_points(st, cfg.plant.id) == after
    finally:
        engine.close()


def test_metrics_status_lists_the_plant_indicators(plant, stack):
    _cfg, path, _st = plant
    proc = _cli("metrics", "status", "--config", str(path), "--stack", str(stack.dir))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    # The newest day of each is the current one (2025-03-11 local at NOW), which has no
    # readings: said as no_data at 0 % coverage, not as a value. A DN range's first-pass rate
    # exists only for a window with pipes of that range tested: its newest day is 2025-03-10.
    for rollup, name, newest, cov, status in (
        ("t5", "energy_per_t_pipe", "2025-03-11", "0.0%", "no_data"),
        ("t5", "power_factor", "2025-03-11", "0.0%", "no_data"),
        ("t5", "cooling_recirculation", "2025-03-11", "0.0%", "no_data"),
        ("a1", "scrap_rate", "2025-03-11", "0.0%", "no_data"),
        ("a1", "hydro_first_pass:DN80-300", "2025-03-10", "100.0%", "ok"),
        ("co2", "co2_per_t_pipe", "2025-03-11", "0.0%", "no_data"),
    ):
        day = [x for x in lines if x.split()[:3] == [rollup, name, "day"]]
        assert day and f"newest {newest}" in day[0] and cov in day[0], (name, out)
        assert day[0].rstrip().endswith(status), day[0]
        month = next(x for x in lines if x.split()[:3] == [rollup, name, "month"])
        assert "newest 2025-03 " in month, month
    # The month holds the one day of readings: counters cover 1 / 31 of it (3.2 %, low
    # coverage), events count fully where there are any.
    energy = next(x for x in lines if x.split()[:3] == ["t5", "energy_per_t_pipe", "month"])
    assert "3.2%" in energy and energy.rstrip().endswith("low_coverage")
    scrap = next(x for x in lines if x.split()[:3] == ["a1", "scrap_rate", "month"])
    assert "100.0%" in scrap and scrap.rstrip().endswith(" ok")


def test_three_years_of_output_make_the_annual_output_row(tmp_path, stack):
    from greenfoundry.metrics.indicators import indicators_file

    st = store(stack)
    pid = "t5-three-years"
    cfg, _path = _config_file(tmp_path, stack, pid, history_days=3)
    # One day with good pipe in each of 2023, 2024, 2025 (local mid-June): 4 batches of
    # 50 000 t, 3 of 40 000 t … as 1000 t events, the glossary's largest pipe_output_t.
    days = {"2023-06-15": 200, "2024-06-15": 240, "2025-06-15": 298}  # batches of 1000 t
    engine = Engine(cfg, store=st)
    try:
        for day, batches in days.items():
            t0 = ns(f"{day}T00:00")
            write(
                st, pid, "pipe_output_t", {"device": "line1"},
                [(t0 + i * 60 * 10**9, 1000.0) for i in range(batches)],
            )  # fmt: skip
            engine.backfill(t0, t0 + 24 * 3600 * 10**9)
    finally:
        engine.close()
    doc, notes = indicators_file(cfg, "2025", store=st)
    row = doc["rows"]["scale.output.annual_output"]
    # (20 + 24 + 29.8) / 3 = 24.6 (10⁴ t a year): 200, 240, 298 batches of 1000 t.
    assert row["value"] == approx(24.6) and row["unit"] == "万吨/年"
    assert row["window"] == {"start": "2023-01-01", "end": "2026-01-01"}
    # 2024 alone has no 2022: left out, with why.
    doc, notes = indicators_file(cfg, "2024", store=st)
    assert "scale.output.annual_output" not in doc["rows"]
    assert any("three years" in n for n in notes)


def test_a_refused_pipe_series_is_bad_input_not_a_value(tmp_path, stack):
    st = store(stack)
    pid = "t5-bad-input"
    cfg, _path = _config_file(tmp_path, stack, pid, history_days=3)
    # A string `value` in pipe_output_t, in a shard of 2033 nobody else writes (InfluxDB keeps
    # a field's type per shard), beside a good site meter.
    t0 = ns("2033-05-01T00:00")
    st.write_lines(
        [f'pipe_output_t,plant={pid},area=a,device=line1 value="six" {t0 + 30 * 60 * 10**9}']
    )
    write(st, pid, "site_energy_kwh", {"device": "main-meter"},
          [(t0 + i * 600 * 10**9, 100.0 * i) for i in range(7)])  # fmt: skip
    engine = Engine(cfg, store=st)
    try:
        engine.backfill(t0, t0 + 3600 * 10**9)
    finally:
        engine.close()
    p = all_points(st, pid)
    e = _ind(p, schema.T5_PLANT, "energy_per_t_pipe", "hour", t0)
    assert e["status"] == "bad_input" and "kgce_per_t" not in e
    assert "pipe_output_t" in e["lacking"]
    # The reactive meter the config maps sent nothing: no power factor, and why.
    pf = _ind(p, schema.T5_PLANT, "power_factor", "hour", t0)
    assert pf["status"] == "no_data" and "no reactive energy" in pf["lacking"]
    # The gas meter sent nothing either: the site's energy would be too low, so no CO2 value
    # (the refused pipe series is said first).
    co2 = _ind(p, schema.CO2_PLANT, "co2_per_t_pipe", "hour", t0)
    assert "kg_co2_per_t" not in co2 and "no natural_gas data" in co2["lacking"]


def test_oxygen_made_on_site_is_left_out_of_table5_and_co2_and_said(tmp_path, stack):
    # The same day, from a plant whose oxygen comes from its own air separation unit (its
    # electricity is on the site meter): Table 5 counts 8848.8 + 4371.48 = 13 220.28 kgce over
    # 144 t (the 2880 kgce of oxygen left out), and says why.
    pid = "t5-o2-on-site"
    from greenfoundry.plant import load

    cfg, path = _config_file(tmp_path, stack, pid, history_days=3, made_on_site=["oxygen"])
    env = {"GF_MQTT_PASSWORD": "x", "GF_INFLUX_PASSWORD": "x"}
    assert load(path, env=env).metrics.made_on_site == ("oxygen",)  # the file's key, parsed
    st = store(stack)
    _readings(st, pid)
    engine = Engine(cfg, store=st)
    engine.reconcile(now=NOW)
    engine.close()
    p = all_points(st, pid)
    e = _ind(p, schema.T5_PLANT, "energy_per_t_pipe")
    assert e["kgce_per_t"] == approx(13220.28 / 144) and "kgce_oxygen" not in e
    assert "oxygen is made on site" in e["lacking"]
    cp = _ind(p, schema.CO2_PLANT, "co2_per_t_pipe")
    assert "oxygen is made on site" in cp["lacking"]


def test_made_on_site_names_only_a_metered_utility(tmp_path, stack):
    from greenfoundry.errors import ConfigError
    from greenfoundry.plant import load

    _cfg, path = _config_file(tmp_path, stack, "t5-o2-bad", history_days=3)
    raw = yaml.safe_load(path.read_text())
    for bad in (["electricity"], "oxygen", ["oxygen", "oxygen"]):
        raw["metrics"]["made_on_site"] = bad
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError, match=r"metrics\.made_on_site"):
            load(path, env={"GF_MQTT_PASSWORD": "x", "GF_INFLUX_PASSWORD": "x"})
