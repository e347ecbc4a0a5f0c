"""A run whose points are not written rolls its state back (metrics/engine.py, ``_Writes``); the
note-4 value it found (Table C.1 note 4, the site's mean air temperature of a year) must not
outlive that rollback in the engine's memory, or the windows that used the old value are never
marked dirty again while the service runs on (it keeps its engine after a failed run)."""

from __future__ import annotations

import pandas as pd
import pytest

from greenfoundry.errors import StoreError
from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from greenfoundry.store import RetryableWriteError
from tests.metrics.engine_helpers import all_points, metrics_config, ns, store, write

PID = "m-rollback-air"
# Local 2033 (Asia/Shanghai, UTC+8) starts at 2032-12-31T16:00Z; local 2034 at 2033-12-31T16:00Z.
YEAR_2033 = "2032-12-31T16:00"
JAN_1 = ns("2033-12-31T16:00")  # local 2034-01-01 00:00
NOW = ns("2034-01-01T04:30") / 1e9  # local 12:30 on 1 January 2034
H = 3600 * 10**9


def _ambient(st, start: str, hours: int, value: float) -> None:
    times = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=hours, freq="1h")
    pts = [(t.value, value) for t in times]
    for i in range(0, len(pts), 5000):
        write(st, PID, "ambient_temp_c", {"device": "weather"}, pts[i : i + 5000])


def _dust(st, start_ns: int, minutes: int) -> None:
    pts = [(start_ns + i * 60 * 10**9, 12.0) for i in range(minutes)]
    write(st, PID, "stack_conc_mg_m3", {"device": "melt-stack", "pollutant": "particulate"}, pts)


def test_a_rolled_back_run_forgets_the_note_4_value_it_found(tmp_path, stack, monkeypatch):
    st = store(stack)
    # Local 2033 read every hour at 10 °C, each reading holding for its hour (hold 59 min):
    # every minute covered, so 2033's mean is 10 °C from the readings.
    _ambient(st, YEAR_2033, 365 * 24, 10.0)
    # Stack dust in the first hours of local 1 January 2034: windows ending in 2034 take
    # note 4 from 2033.
    _dust(st, JAN_1, 12 * 60)
    cfg = metrics_config(tmp_path, stack, PID, ambient_hold_minutes=59, history_days=400)
    engine = Engine(cfg, store=st)
    try:
        engine.reconcile(now=NOW)
        before = all_points(st, PID)
        first = before[(schema.C1_PLANT, "hour", JAN_1)]
        assert first["annual_mean_air_temp_c"] == pytest.approx(10.0)
        assert first["air_temp_source"] == "readings"

        # Late data: local 31 December 2033 (24 readings, inside the 48 h lookback) read
        # 34 °C, and a new dust minute in the current hour makes a window dirty. By hand: the
        # December mean is (30 × 10 + 34) / 31 = 10 + 24/31 °C, so the year's, weighted by its
        # months' minutes, is 10 + (24/31) × 31/365 = 10 + 24/365 = 10.065753… °C.
        _ambient(st, "2033-12-30T16:00", 24, 34.0)
        _dust(st, ns("2034-01-01T04:10"), 1)
        real = st.write_lines

        def refuse_composed(lines, **kw):
            # InfluxDB goes away after the dirty hour's points: the composed windows' (a day
            # among them) are refused, and that work is rolled back.
            if any("window=day " in ln or "window=day," in ln for ln in lines):
                raise RetryableWriteError("InfluxDB at test unreachable: ConnectionRefused")
            return real(lines, **kw)

        monkeypatch.setattr(st, "write_lines", refuse_composed)
        with pytest.raises(StoreError):
            engine.run_once(now=NOW)
        monkeypatch.setattr(st, "write_lines", real)
        # The same engine runs on, as the service's does after a failed run. The windows a
        # changed note-4 value marks dirty while composing are composed by the run after.
        engine.run_once(now=NOW)
        engine.run_once(now=NOW)
    finally:
        engine.close()
    got = all_points(st, PID)
    # The first hour of 1 January was computed at start with 10 °C and had no new reading: only
    # the changed note-4 value makes it dirty, and it must carry the new value.
    mean = 10 + 24 / 365
    h = got[(schema.C1_PLANT, "hour", JAN_1)]
    assert h["annual_mean_air_temp_c"] == pytest.approx(mean, rel=1e-12)
    assert got[(schema.C1_PLANT, "day", JAN_1)]["annual_mean_air_temp_c"] == pytest.approx(
        mean, rel=1e-12
    )
    # Every window ending in 2034 now says the new value, as a fresh engine's would.
    stale = [
        k
        for k, v in got.items()
        if k[0] == schema.C1_PLANT and v.get("air_temp_year") == "2033"
        and v["annual_mean_air_temp_c"] != pytest.approx(mean, rel=1e-12)
    ]  # fmt: skip
    assert not stale
