"""Table C.1 note 4 from a year's ``ambient_temp_c`` readings (metrics/engine.py,
``_ambient``): the engine keeps the year's readings by month and reads again only the months
whose hours' fingerprints changed, because every per-minute run of the running year read that
whole year again (525,600 readings by its end, 2.2-2.5 s a run against 0.1 s). A late reading
found by the sweep in a month kept must still change the value."""

from __future__ import annotations

import pandas as pd
import pytest

from greenfoundry.metrics import schema, source
from greenfoundry.metrics.engine import SWEEP_EVERY, Engine
from tests.metrics.engine_helpers import all_points, metrics_config, ns, store, write

PID = "m-ambient-kept"
# Local 2037 (Asia/Shanghai, UTC+8) starts at 2036-12-31T16:00Z, local 2038 at 2037-12-31T16:00Z.
JAN_1 = ns("2037-12-31T16:00")  # local 2038-01-01 00:00
NOW = ns("2038-01-02T04:30") / 1e9  # local 12:30 on 2 January 2038


def _ambient(st, start: str, hours: int, value: float) -> None:
    times = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=hours, freq="1h")
    pts = [(t.value, value) for t in times]
    for i in range(0, len(pts), 5000):
        write(st, PID, "ambient_temp_c", {"device": "weather"}, pts[i : i + 5000])


def _dust(st, start_ns: int, minutes: int) -> None:
    pts = [(start_ns + i * 60 * 10**9, 12.0) for i in range(minutes)]
    write(st, PID, "stack_conc_mg_m3", {"device": "melt-stack", "pollutant": "particulate"}, pts)


def _means_of_2037(st) -> list[float]:
    """The note-4 value of every plant point that takes it from 2037 (at least one)."""
    found = [
        v["annual_mean_air_temp_c"]
        for k, v in all_points(st, PID).items()
        if k[0] == schema.C1_PLANT and v.get("air_temp_year") == "2037"
    ]
    assert found
    return found


def test_kept_months_are_read_again_only_when_their_hours_change(tmp_path, stack, monkeypatch):
    st = store(stack)
    # Local 2037 read every hour at 10 °C, each reading holding for its hour (hold 59 min):
    # every minute covered, so 2037's mean is 10 °C from the readings.
    _ambient(st, "2036-12-31T16:00", 365 * 24, 10.0)
    _dust(st, JAN_1, 36 * 60)  # local 1 January 00:00 to 2 January 12:00
    cfg = metrics_config(
        tmp_path, stack, PID, ambient_hold_minutes=59, history_days=366, sweep_h=24 * 366
    )
    engine = Engine(cfg, store=st)
    reads = []
    real_read = source.read_range

    def counted(store_, plant_id, measurements, a, b, **kw):
        if tuple(measurements) == ("ambient_temp_c",):
            reads.append(pd.Timestamp(a, tz="UTC").tz_convert("Asia/Shanghai").strftime("%Y-%m"))
        return real_read(store_, plant_id, measurements, a, b, **kw)

    monkeypatch.setattr(source, "read_range", counted)
    try:
        engine.reconcile(now=NOW)
        assert all(v == pytest.approx(10.0) for v in _means_of_2037(st))

        # Late data: local 31 December 2037 read 34 °C (24 readings). By hand: December's mean
        # is (30 × 10 + 34) / 31 = 10 + 24/31 °C, the year's, weighted by its months' minutes,
        # 10 + (24/31) × 31/365 = 10 + 24/365 °C. A dust minute in the running hour makes
        # windows dirty; the windows marked by the changed value are composed by the run after.
        _ambient(st, "2037-12-30T16:00", 24, 34.0)
        _dust(st, ns("2038-01-02T04:10"), 1)
        reads.clear()
        for _ in range(2):
            engine.run_once(now=NOW)
        assert all(v == pytest.approx(10 + 24 / 365, rel=1e-12) for v in _means_of_2037(st))
        # The year was read and kept at start (a month per request). The 48 h lookback finds
        # the hours from 05:00 UTC on; the first run is the sweep's turn, which finds the
        # earlier ones: each time December alone is read again.
        assert reads == ["2037-12", "2037-12"]

        # Late data half a year back, out of the lookback: local 15 June 2037 read 58 °C, so
        # June's mean rises by 48 × 24 / (30 × 24) = 48/30 °C and the year's by 48/365 °C:
        # 10 + 72/365 °C. Only the sweep finds it: one run in SWEEP_EVERY, each slice here the
        # whole history (sweep_h and history_days of 366 days). A dust minute before each run
        # keeps windows dirty.
        _ambient(st, "2037-06-14T16:00", 24, 58.0)
        reads.clear()
        for i in range(SWEEP_EVERY + 2):
            _dust(st, ns("2038-01-02T04:11") + i * 60 * 10**9, 1)
            engine.run_once(now=NOW)
    finally:
        engine.close()
    assert all(v == pytest.approx(10 + 72 / 365, rel=1e-12) for v in _means_of_2037(st))
    # The other eleven months were kept: June alone was read again.
    assert reads == ["2037-06"]
