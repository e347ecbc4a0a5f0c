"""The demo's live line shows what the metrics compute from InfluxDB, and a re-run on a database
that already holds its plant time starts fresh instead of replaying (which froze the values)."""

from __future__ import annotations

import time

import pandas as pd

from greenfoundry import demo
from greenfoundry.metrics import windows as win
from greenfoundry.metrics.service import MetricsService
from greenfoundry.sim.publisher import plan_run
from greenfoundry.store import where
from tests.metrics.engine_helpers import every, metrics_config, store, write
from tests.plant import ALL_TIME


def _recent_shift_readings(st, pid: str, tz: str):
    now = pd.Timestamp.now(tz="UTC")
    current = win.window_containing(now, "shift", tz, shifts=["00:00", "08:00", "16:00"])
    prev = win.window_containing(
        current.start - pd.Timedelta(1, "ns"), "shift", tz, shifts=["00:00", "08:00", "16:00"]
    )
    t0 = prev.start + pd.Timedelta(hours=1)
    iso = f"{t0:%Y-%m-%dT%H:%M}"
    # 14 meter readings 5 min apart, +80 kWh each: 13 increments = 1040 kWh in the shift.
    write(
        st,
        pid,
        "furnace_energy_kwh",
        {"device": "if1"},
        every(iso, 70, 5, lambda i: 500.0 + 80 * i),
    )
    taps = [(t0.value + 20 * 60 * 10**9, 8.0), (t0.value + 50 * 60 * 10**9, 7.0)]
    write(st, pid, "tap_iron_t", {"device": "if1"}, taps)
    write(st, pid, "tap_temp_c", {"device": "if1"}, [(taps[0][0], 1510.0), (taps[1][0], 1480.0)])
    dust = {"device": "melt-stack", "pollutant": "particulate"}
    write(st, pid, "stack_conc_mg_m3", dust, every(iso, 45, 1, 15.0))  # 45 valid minutes
    return prev


def test_the_live_line_shows_shift_kwh_per_t_limits_tier_and_the_worst_stack(tmp_path, stack):
    st = store(stack)
    pid = "demo-line"
    cfg = metrics_config(tmp_path, stack, pid, history_days=3)
    prev = _recent_shift_readings(st, pid, cfg.plant.timezone)
    service = MetricsService(cfg, store=st).start()
    try:
        line = demo._rollups(st, cfg, service)
    finally:
        service.stop()
    # 1040 kWh / 15 t = 69.3 kWh/t; limits 200 + 0.6 × (1496 − 1500) + 0.4 × (25 − 16.2) =
    # 201.12 (tier 1), +50, +100 (Table C.1, notes 2 and 4; 1496 = (8×1510 + 7×1480) / 15).
    label = prev.label[-5:]
    assert f"if1 shift {label} 69.3 kWh/t (<201.1/<251.1/<301.1) tier 1" in line
    assert "if2 shift" in line and "no_data" in line  # a furnace without readings says so
    assert "worst stack melt-stack/particulate 0.50C (hourly)" in line  # 15 / 30


def test_a_rerun_over_stored_plant_time_starts_on_a_fresh_database(tmp_path, own_stack, capsys):
    cfg = metrics_config(tmp_path, own_stack.info, "demo-dip")
    st = store(own_stack.info)
    plan = plan_run(time.time(), duration_s=3600, speed=60)
    start = plan.live[0]
    write(
        st,
        "demo-dip",
        "furnace_energy_kwh",
        {"device": "if1"},
        [(int(start.timestamp() * 1e9) + 10**9, 1.0)],
    )
    write(
        st, "other", "furnace_energy_kwh", {"device": "if1"}, [(int(start.timestamp() * 1e9), 1.0)]
    )
    (tmp_path / "metrics").mkdir()
    (tmp_path / "alerts").mkdir()
    demo._fresh_if_replayed(cfg, own_stack, plan, tmp_path / "metrics", tmp_path / "alerts")
    assert "fresh database" in capsys.readouterr().out
    left = st.query(
        f"SELECT COUNT(value) FROM furnace_energy_kwh {where({'plant': 'demo-dip'}, **ALL_TIME)}"
    )
    assert left.empty
    other = st.query(
        f"SELECT COUNT(value) FROM furnace_energy_kwh {where({'plant': 'other'}, **ALL_TIME)}"
    )
    assert int(other.iloc[0]["count"]) == 1  # another plant's series stay
    assert not (tmp_path / "metrics").exists()
    assert not (tmp_path / "alerts").exists()  # the alert state starts fresh with the data
    # Stored readings older than the planned run: nothing is dropped.
    write(
        st,
        "demo-dip",
        "furnace_energy_kwh",
        {"device": "if1"},
        [(int(start.timestamp() * 1e9) - 10**12, 1.0)],
    )
    demo._fresh_if_replayed(cfg, own_stack, plan, tmp_path / "metrics", tmp_path / "alerts")
    assert "fresh database" not in capsys.readouterr().out
