"""`metrics run` as a real process (SIGKILL mid-reconcile, a second process refused), bad input
across InfluxDB, and `metrics indicators` then `score` from the rollups."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from greenfoundry.errors import BusyError
from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from greenfoundry.metrics.state import Lock
from tests.metrics.engine_helpers import all_points, every, metrics_config, ns, store, write
from tests.metrics.test_engine import NOW, _readings
from tests.plant import wait_for

approx = pytest.approx
H0 = ns("2025-03-10T02:00")


def _history(st, pid: str, start_ns: int, days: int) -> None:
    """`days` of a plant: meters every 5 min, a tap every hour, stack dust every minute."""
    t = start_ns
    for dev, kwh in (("if1", 75.0), ("if2", 60.0)):
        n = days * 24 * 12
        write(
            st,
            pid,
            "furnace_energy_kwh",
            {"device": dev},
            [(t + i * 300 * 10**9, 1e5 + kwh * i) for i in range(n)],
        )
        taps = [(t + (h * 3600 + 1800) * 10**9, 9.0 + (h % 3)) for h in range(days * 24)]
        write(st, pid, "tap_iron_t", {"device": dev}, taps)
        write(
            st,
            pid,
            "tap_temp_c",
            {"device": dev},
            [(x, 1490.0 + (i % 7)) for i, (x, _) in enumerate(taps)],
        )
    dust = {"device": "melt-stack", "pollutant": "particulate"}
    write(
        st,
        pid,
        "stack_conc_mg_m3",
        dust,
        [(t + i * 60 * 10**9, 8.0 + (i % 50) / 10) for i in range(days * 1440)],
    )


def _config_file(tmp_path, stack, pid: str, **metrics) -> tuple:
    cfg = metrics_config(tmp_path, stack, pid, **metrics)
    raw = yaml.safe_load(cfg.path.read_text())
    raw.setdefault("metrics", {}).update({"state_dir": str(cfg.metrics.state_dir), **metrics})
    cfg.path.write_text(yaml.safe_dump(raw))
    return cfg, cfg.path


def _cli(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "greenfoundry", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _db(cfg):
    return sqlite3.connect(cfg.metrics.state_dir / "state.sqlite", timeout=30)


def _hours_done(cfg) -> int:
    try:
        with _db(cfg) as db:
            # Hours, not rows: each hour has a partial per furnace, stack pollutant and plant.
            return db.execute(
                "SELECT COUNT(DISTINCT start) FROM partials WHERE kind = 'hour'"
            ).fetchone()[0]
    except sqlite3.Error:
        return 0


def _settled(cfg) -> bool:
    try:
        with _db(cfg) as db:
            last = db.execute("SELECT value FROM meta WHERE key = 'last_run'").fetchone()
            dirty = db.execute("SELECT COUNT(*) FROM dirty").fetchone()[0]
    except sqlite3.Error:
        return False
    return last is not None and dirty == 0


def test_kill_mid_reconcile_then_restart_equals_a_clean_run(tmp_path, stack):
    st = store(stack)
    days = 60
    start = (time.time_ns() // (3600 * 10**9) - (days + 2) * 24) * 3600 * 10**9
    for pid in ("m-kill", "m-clean"):
        _history(st, pid, start, days)
    cfg, path = _config_file(tmp_path, stack, "m-kill", history_days=days + 5)
    args = ("metrics", "run", "--config", str(path), "--stack", str(stack.dir))
    proc = _cli(*args)
    try:
        # At least one chunk of hours committed, the reconcile not finished: kill it there.
        # The process is frozen (SIGSTOP) the moment the first chunk shows, so a fast machine
        # cannot finish the reconcile between the look and the kill; wait_for's backoff would
        # leave it up to a quarter second.
        deadline = time.monotonic() + 60
        while _hours_done(cfg) == 0:
            assert time.monotonic() < deadline, "timed out waiting for the first chunk of hours"
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.002)
        proc.send_signal(signal.SIGSTOP)
        assert not _settled(cfg)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        done_at_kill = _hours_done(cfg)
        assert 0 < done_at_kill < days * 24
        # A second process on the same plant is refused while one runs.
        proc = _cli(*args)
        wait_for(lambda: _settled(cfg), 120, "the restarted run to settle")
        second = _cli(*args)
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert err.strip().splitlines()[-1].startswith("error: another metrics process")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0  # SIGTERM stops cleanly
    finally:
        if proc.poll() is None:
            proc.kill()
    clean_cfg = metrics_config(tmp_path, stack, "m-clean", history_days=days + 5)
    engine = Engine(clean_cfg, store=st)
    engine.reconcile()
    engine.close()
    killed, clean = all_points(st, "m-kill"), all_points(st, "m-clean")
    assert len(clean) > days * 24 * 5  # every hour of 2 furnaces, the plant, 3 stack series …
    assert killed == clean  # point for point, field for field


def test_a_second_engine_process_is_refused(tmp_path, stack):
    cfg = metrics_config(tmp_path, stack, "m-lock")
    with Lock(cfg.metrics.state_dir), pytest.raises(BusyError, match=f"pid {os.getpid()}"):
        Lock(cfg.metrics.state_dir).acquire()


def test_bad_input_gives_a_status_never_a_crash(tmp_path, stack):
    st = store(stack)
    pid = "m-badinput"
    # A string `value` in tap_iron_t (a shard of 2031 nobody else writes to): a type InfluxDB
    # keeps per shard, which no metric can read as tonnes.
    write(
        st,
        pid,
        "furnace_energy_kwh",
        {"device": "if1"},
        every("2031-06-02T01:55", 70, 5, lambda i: 10.0 * i),
    )
    st.write_lines(
        [f'tap_iron_t,area=a,device=if1,plant={pid} value="heavy" {ns("2031-06-02T02:20")}']
    )
    cfg = metrics_config(tmp_path, stack, pid, history_days=2)
    engine = Engine(cfg, store=st)
    engine.reconcile(now=ns("2031-06-02T05:00") / 1e9)
    engine.close()
    p = all_points(st, pid)
    f1 = p[(schema.C1_FURNACE, "if1", "hour", ns("2031-06-02T02:00"))]
    assert f1["status"] == "bad_input" and "kwh_per_t" not in f1
    assert "expected numbers" in f1["lacking"]
    # if2 has no signal at all: no data, saying what is missing, never 0.
    f2 = p[(schema.C1_FURNACE, "if2", "hour", ns("2031-06-02T02:00"))]
    assert f2["status"] == "no_data" and "kwh_per_t" not in f2
    assert "no furnace energy" in f2["lacking"] and "no tap events" in f2["lacking"]
    pl = p[(schema.C1_PLANT, "hour", ns("2031-06-02T02:00"))]
    assert pl["status"] == "no_data" and "kwh_per_t" not in pl


def test_indicators_then_score_from_the_rollups(tmp_path, stack):
    st = store(stack)
    pid = "m-score"
    _readings(st, pid)
    cfg, path = _config_file(tmp_path, stack, pid, history_days=2)
    engine = Engine(cfg, store=st)
    engine.reconcile(now=NOW)
    engine.close()
    out = tmp_path / "indicators.yaml"
    proc = _cli(
        "metrics",
        "indicators",
        "--config",
        str(path),
        "--stack",
        str(stack.dir),
        "--window",
        "2025-03",
        "--out",
        str(out),
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc = yaml.safe_load(out.read_text())
    assert doc["window"] == {"start": "2025-03-01", "end": "2025-04-01"}
    c1 = doc["rows"]["energy.liquid_iron.energy_per_t"]
    # The month: if1 80 + 960 + 960 kWh, if2 360 kWh, taps 15 + 10 t: 2360 / 25 = 94.4 kWh/t.
    assert c1["value"] == approx(94.4) and c1["unit"] == "kWh/t"
    assert c1["context"] == {"dn": 80, "tap_temp_c": approx(1501.6)}
    air = doc["rows"]["emissions.air.multiple_of_c"]
    assert air["value"] == approx(0.5) and air["unit"] == "C"  # the worst valid hour, 15/30
    assert "low_coverage" in err  # a few hours of a month: said, not hidden
    evidence = cfg.path.parent / "evidence.yaml"
    evidence.write_text(_evidence_for(pid))
    proc = _cli(
        "score",
        "--config",
        str(path),
        "--indicators",
        str(out),
        "--evidence",
        str(evidence),
        "--min-coverage",
        "0",
        "--as-of",
        "2026-03-31",
        "--json",
    )
    res, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    rows = {r["row_id"]: r for r in json.loads(res)["rows"]}
    # 94.4 < 204.48 (tier 1) → Li 0.90 × 30 points; 0.5 < 0.6C (tier 1) → 0.90 × 120.
    assert rows["energy.liquid_iron.energy_per_t"]["tier"] == 1
    assert rows["energy.liquid_iron.energy_per_t"]["points"] == approx(27.0)
    assert rows["emissions.air.multiple_of_c"]["points"] == approx(108.0)


def _evidence_for(pid: str) -> str:
    from greenfoundry.config import plant_file

    raw = yaml.safe_load((plant_file().parent / "evidence.yaml").read_text())
    raw["plant"] = pid
    return yaml.safe_dump(raw, allow_unicode=True)
