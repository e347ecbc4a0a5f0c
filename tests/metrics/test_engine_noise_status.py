"""A boundary noise monitor's status (`noise_monitor_status`) through the engine and the real
InfluxDB into the noise points: minutes flagged by calibration are not valid, and are counted
as the stack hours count theirs; a point without a status counts every minute (metrics/README).

Readings are written by hand; every expected number is worked out in the comments. The demo
plant's boundary: GB 12348 class 3, E = 55 dB(A) at night (22:00-06:00, Asia/Shanghai); an
hourly Leq needs 45 valid minutes (decision D-t6-noise-period). Floats are compared with a
relative tolerance of 1e-9.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from greenfoundry.store import where
from tests.metrics.engine_helpers import every, metrics_config, ns, store, write
from tests.plant import ALL_TIME

NOW = ns("2025-03-12T06:30") / 1e9
DAY = ns("2025-03-09T16:00")  # local 2025-03-10
H22 = ns("2025-03-10T14:00")  # local 22:00, night
H23 = ns("2025-03-10T15:00")  # local 23:00, night
approx = lambda x: pytest.approx(x, rel=1e-9)  # noqa: E731
TONE_DBA = 94.0  # an acoustic calibrator's tone


def _readings(st, pid: str) -> None:
    n, s = {"device": "boundary-n"}, {"device": "boundary-s"}
    # boundary-n, local 22:00: 50 dB(A) each minute but 22:20-22:35, the calibrator's tone; the
    # status is 1 (calibration) from 22:20:00 to 22:36:00.
    write(st, pid, "noise_leq_dba", n,
          every("2025-03-10T14:00", 60, 1, lambda i: TONE_DBA if 20 <= i <= 35 else 50.0))  # fmt: skip
    # local 23:00: 50 dB(A) for minutes 0-29, 60 for 30-59, but 23:10 and 23:11 read the tone;
    # the status is 1 from 23:10:30 to 23:12:30. boundary-s has the same 23:00 and no status.
    h23 = every("2025-03-10T15:00", 60, 1,
                lambda i: (TONE_DBA if i in (10, 11) else 50.0) if i < 30 else 60.0)  # fmt: skip
    write(st, pid, "noise_leq_dba", n, h23)
    write(st, pid, "noise_leq_dba", s, h23)
    write(st, pid, "noise_monitor_status", n,
          [("2025-03-10T13:00", 0.0), ("2025-03-10T14:20", 1.0), ("2025-03-10T14:36", 0.0),
           ("2025-03-10T15:10:30", 1.0), ("2025-03-10T15:12:30", 0.0)])  # fmt: skip


def _read(st, measurement, pid):
    df = st.query(f"SELECT * FROM {measurement} {where({'plant': pid}, **ALL_TIME)} GROUP BY *")
    out = {}
    for rec in df.to_dict("records"):
        out[(rec.get("point") or "plant", rec["window"], rec["time"].value)] = {
            k: v for k, v in rec.items() if v is not None and not (isinstance(v, float) and v != v)
        }
    return out


@pytest.fixture(scope="module")
def points(tmp_path_factory, stack):
    st = store(stack)
    pid = "m-noise-status"
    tmp = tmp_path_factory.mktemp("noise-status")
    cfg = dataclasses.replace(metrics_config(tmp, stack, pid, history_days=3), outfalls=())
    _readings(st, pid)
    engine = Engine(cfg, store=st)
    inputs, before = engine.inputs, engine.before
    engine.reconcile(now=NOW)
    engine.close()
    return _read(st, schema.NOISE_POINT, pid), inputs, before


def test_the_engine_reads_the_status_and_the_one_in_force_at_a_range_start(points):
    _read_points, inputs, before = points
    assert "noise_monitor_status" in inputs and "noise_monitor_status" in before


def test_a_16_minute_calibration_leaves_the_hour_without_a_leq(points):
    points = points[0]
    h = points[("boundary-n", "hour", H22)]
    # Minutes 20..35 flagged (16): 60 - 16 = 44 valid minutes < 45, no hourly Leq. Counted as
    # the tone (10 lg((44 × 10^5 + 16 × 10^9.4) / 60) = 88.26 dB(A), 1.60 E) it would have been.
    assert "multiple_of_e" not in h and "leq_dba" not in h
    assert (h["status"], h["valid_minutes"], h["valid_hours"]) == ("low_coverage", 44, 0)
    assert h["lacking"] == (
        "44 of 60 minutes valid; a valid hourly Leq needs 45; "
        "16 minutes flagged by the noise monitor status (C calibration: 16)"
    )


def test_a_two_minute_calibration_is_left_out_of_a_valid_hour(points):
    points = points[0]
    h = points[("boundary-n", "hour", H23)]
    # Minute 10 (status 1 from inside it), 11 and 12 (1 at their start) flagged: 57 valid, 27
    # at 50 and 30 at 60 dB(A): Leq = 10 lg((27 × 10^5 + 30 × 10^6) / 57) = 57.587 dB(A),
    # / 55 = 1.0470 E (night).
    leq = 10 * math.log10((27e5 + 30e6) / 57)
    assert h["leq_dba"] == approx(leq) and h["multiple_of_e"] == approx(leq / 55)
    assert (h["status"], h["valid_minutes"], h["n"]) == ("ok", 57, 57)
    assert h["lacking"] == "3 minutes flagged by the noise monitor status (C calibration: 3)"
    # boundary-s, the same readings without a status: all 60 minutes count, the tone too:
    # 10 lg((28 × 10^5 + 30 × 10^6 + 2 × 10^9.4) / 60) = 79.26 dB(A), 1.441 E.
    s = points[("boundary-s", "hour", H23)]
    leq_s = 10 * math.log10((28e5 + 30e6 + 2 * 10**9.4) / 60)
    assert s["multiple_of_e"] == approx(leq_s / 55) and s["valid_minutes"] == 60
    assert "flagged" not in s.get("lacking", "")


def test_the_day_counts_the_flagged_minutes_as_the_stack_hours_do(points):
    points = points[0]
    d = points[("boundary-n", "day", DAY)]
    # Local 2025-03-10: one valid hour (23:00), 16 + 3 = 19 flagged minutes.
    assert d["multiple_of_e"] == approx(10 * math.log10((27e5 + 30e6) / 57) / 55)
    assert (d["valid_hours"], d["hours"], d["hour_of_max_ns"]) == (1, 24, H23)
    assert "19 minutes flagged by the noise monitor status" in d["lacking"]
