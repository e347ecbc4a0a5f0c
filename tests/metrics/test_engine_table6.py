"""Table 6 water (multiple of D) and noise (multiple of E) through the engine and the real
InfluxDB into rollup points, and `metrics indicators` giving the rows.

Readings are written by hand; every expected number is worked out in the comments (limits: the
demo plant's outfall-1 COD D = 500 mg/L; GB 12348 class 3, E = 65 dB(A) by day 06:00-22:00 and
55 at night; Table 6 tiers < 0.6D / < 0.8D / < D, noise < 0.9E / < 0.95E / < E without a
residential area within 1200 m, < 0.6E / < 0.8E / < E with one). Rules: a daily mean needs 12
valid samples, an hourly Leq 45 minutes (decisions D-t6-water-valid, D-t6-noise-period). Floats
are compared with a relative tolerance of 1e-9.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from greenfoundry.metrics.indicators import NOISE_ROW, WATER_ROW, indicators_file
from greenfoundry.store import where
from tests.metrics.engine_helpers import every, metrics_config, ns, store, write
from tests.plant import ALL_TIME

NOW = ns("2025-03-12T06:30") / 1e9
DAY_A = ns("2025-03-09T16:00")  # local 2025-03-10 00:00 +08:00
DAY_B = ns("2025-03-10T16:00")  # local 2025-03-11
MONTH = ns("2025-02-28T16:00")  # local 2025-03
H21 = ns("2025-03-10T13:00")  # local 21:00, day
H22 = ns("2025-03-10T14:00")  # local 22:00, night
H23 = ns("2025-03-10T15:00")  # local 23:00, night
approx = lambda x: pytest.approx(x, rel=1e-9)  # noqa: E731


def _readings(st, pid: str) -> None:
    cod = {"device": "outfall-1", "pollutant": "cod"}
    # Day A: one sample an hour from local 00:30, 200 mg/L eleven times then 350: 12 valid.
    write(st, pid, "discharge_conc_mg_l", cod,
          every("2025-03-09T16:30", 12 * 60, 60, lambda i: 350.0 if i == 11 else 200.0))  # fmt: skip
    # A 13th sample at local 12:30 while the analyser calibrates (code 1 from 12:15 to 13:00):
    # its 450 mg/L (the standard solution) is not valid data.
    write(st, pid, "discharge_conc_mg_l", cod, [("2025-03-10T04:30", 450.0)])
    write(st, pid, "discharge_analyser_status", {"device": "outfall-1"},
          [("2025-03-10T04:15", 1.0), ("2025-03-10T05:00", 0.0)])  # fmt: skip
    # Day B: 11 valid samples of 400 mg/L: one short of a valid daily mean.
    write(st, pid, "discharge_conc_mg_l", cod, every("2025-03-10T16:30", 11 * 60, 60, 400.0))
    # Noise at boundary-n: local 21:00 (day) 60 minutes at 57.2 dB(A); 22:00 (night) 45 minutes
    # at 57.2; 23:00 44 minutes at 50 (not a valid hour).
    n = {"device": "boundary-n"}
    write(st, pid, "noise_leq_dba", n, every("2025-03-10T13:00", 60, 1, 57.2))
    write(st, pid, "noise_leq_dba", n, every("2025-03-10T14:00", 45, 1, 57.2))
    write(st, pid, "noise_leq_dba", n, every("2025-03-10T15:00", 44, 1, 50.0))
    # boundary-s: local 21:00, 30 minutes at 50 and 30 at 60 dB(A).
    write(st, pid, "noise_leq_dba", {"device": "boundary-s"},
          every("2025-03-10T13:00", 60, 1, lambda i: 50.0 if i < 30 else 60.0))  # fmt: skip


def _config(tmp_path, stack, pid, *, residential=False):
    cfg = metrics_config(tmp_path, stack, pid, history_days=3)
    # Only COD has readings here: the outfall keeps its COD limit alone, so the plant's
    # coverage is COD's (the lowest of the outfall's pollutants otherwise).
    (o,) = cfg.outfalls
    o = dataclasses.replace(o, limits_mg_l={"cod": o.limits_mg_l["cod"]})
    p = dataclasses.replace(cfg.plant, residential_within_1200m=residential)
    return dataclasses.replace(cfg, outfalls=(o,), plant=p)


def _points(st, measurement, pid):
    df = st.query(f"SELECT * FROM {measurement} {where({'plant': pid}, **ALL_TIME)} GROUP BY *")
    out = {}
    for rec in df.to_dict("records"):
        item = rec.get("outfall") or rec.get("point") or "plant"
        out[(item, rec["window"], rec["time"].value)] = {
            k: v for k, v in rec.items() if v is not None and not (isinstance(v, float) and v != v)
        }
    return out


@pytest.fixture(scope="module")
def plants(tmp_path_factory, stack):
    st = store(stack)
    out = {}
    for residential in (False, True):
        tmp = tmp_path_factory.mktemp(f"t6-{residential}")
        pid = f"m-table6-{'res' if residential else 'nores'}"
        cfg = _config(tmp, stack, pid, residential=residential)
        _readings(st, pid)
        engine = Engine(cfg, store=st)
        engine.reconcile(now=NOW)
        engine.close()
        out[residential] = (cfg, pid)
    return st, out


def test_water_daily_means_by_the_validity_rule(plants):
    st, by = plants
    _cfg, pid = by[False]
    w = _points(st, schema.WATER_OUTFALL, pid)
    a = w[("outfall-1", "day", DAY_A)]
    # Day A: (11 × 200 + 350) / 12 = 2550 / 12 = 212.5 mg/L; / 500 = 0.425 D, tier 1 (< 0.6D).
    assert a["multiple_of_d"] == approx(0.425) and a["mean_mg_l"] == approx(212.5)
    assert (a["samples"], a["samples_flagged"], a["valid_days"], a["status"]) == (12, 1, 1, "ok")
    assert a["share_tier1"] == 1.0 and a["coverage"] == 1.0
    b = w[("outfall-1", "day", DAY_B)]
    # Day B: 11 valid samples < 12: no daily mean, no multiple; the samples' mean is 400.
    assert "multiple_of_d" not in b and b["status"] == "no_data" and b["samples"] == 11
    assert "fewer than 12 valid samples" in b["lacking"]
    m = w[("outfall-1", "month", MONTH)]
    # March 2025: one valid day of 31, the highest (and only) 0.425; coverage 1 / 31.
    assert m["multiple_of_d"] == approx(0.425) and m["coverage"] == approx(1 / 31)
    assert (m["valid_days"], m["days"], m["status"]) == (1, 31, "low_coverage")
    # The calibrating hour (local 12:00) has no valid sample; local 00:00 has its 200 mg/L.
    assert w[("outfall-1", "hour", ns("2025-03-10T04:00"))]["samples_flagged"] == 1
    assert w[("outfall-1", "hour", DAY_A)]["mean_mg_l"] == 200.0
    plant = _points(st, schema.WATER_PLANT, pid)[("plant", "month", MONTH)]
    assert plant["multiple_of_d"] == approx(0.425) and plant["worst"] == "outfall-1/cod"


def test_noise_day_and_night_limits_and_both_variants(plants):
    st, by = plants
    _cfg, pid = by[False]
    n = _points(st, schema.NOISE_POINT, pid)
    day_h, night_h = n[("boundary-n", "hour", H21)], n[("boundary-n", "hour", H22)]
    # 21:00 is day: 57.2 / 65 = 0.88 E, tier 1 without residents (< 0.9E).
    assert day_h["multiple_of_e"] == approx(57.2 / 65) and day_h["period"] == "day"
    assert day_h["limit_dba"] == 65.0 and day_h["share_tier1"] == 1.0
    # 22:00 is night: 45 minutes at 57.2 against 55: 1.04 E, over its limit (no tier).
    assert night_h["multiple_of_e"] == approx(57.2 / 55) and night_h["period"] == "night"
    assert night_h["share_no_tier"] == 1.0 and night_h["valid_minutes"] == 45
    # 23:00: 44 minutes, not a valid hour.
    h23 = n[("boundary-n", "hour", H23)]
    assert "multiple_of_e" not in h23 and h23["status"] == "low_coverage"
    # boundary-s at 21:00: 10 lg((30 × 10^5 + 30 × 10^6) / 60) = 10 lg(5.5e5) dB(A), / 65.
    s21 = n[("boundary-s", "hour", H21)]
    assert s21["multiple_of_e"] == approx(10 * math.log10(5.5e5) / 65)
    # Local day 2025-03-10: boundary-n's valid hours 21:00 and 22:00; the highest 1.04 (night),
    # 0.88 by day; one in tier 1, one over E: shares 0.5 and 0.5; coverage 2 / 24.
    d = n[("boundary-n", "day", DAY_A)]
    assert d["multiple_of_e"] == approx(57.2 / 55) and d["max_day_multiple_of_e"] == approx(0.88)
    assert (d["share_tier1"], d["share_no_tier"], d["valid_hours"]) == (0.5, 0.5, 2)
    assert d["coverage"] == approx(2 / 24) and d["hour_of_max_ns"] == H22
    plant = _points(st, schema.NOISE_PLANT, pid)[("plant", "day", DAY_A)]
    # The worst point is boundary-n; the coverage the lowest, boundary-s's 1 / 24.
    assert plant["worst"] == "boundary-n" and plant["coverage"] == approx(1 / 24)
    # With a residential area within 1200 m the tiers are < 0.6E / < 0.8E / < E: the same
    # 0.88 E day hour is in tier 3 (0.8 ≤ 0.88 < 1), the night hour still over E.
    _cfg, pid_r = by[True]
    r = _points(st, schema.NOISE_POINT, pid_r)
    assert r[("boundary-n", "hour", H21)]["share_tier3"] == 1.0
    assert r[("boundary-n", "day", DAY_A)]["share_no_tier"] == 0.5


def test_metrics_indicators_gives_the_water_and_noise_rows(plants):
    st, by = plants
    for residential, (cfg, _pid) in by.items():
        doc, notes = indicators_file(cfg, "2025-03", store=st)
        water, noise = doc["rows"][WATER_ROW], doc["rows"][NOISE_ROW]
        # March: water 0.425 D over 1 valid day of 31; noise 1.04 E, the lowest coverage
        # boundary-s's 1 valid hour of 744 (31 days × 24 h, no DST in Asia/Shanghai).
        assert water == {"value": 0.425, "unit": "D", "coverage": round(1 / 31, 6)}
        assert noise["value"] == round(57.2 / 55, 6) and noise["unit"] == "E"
        assert noise["coverage"] == round(1 / 744, 6)
        assert noise["context"] == {"residential_within_1200m": residential}
        assert any(n.startswith(f"{WATER_ROW}: low_coverage") for n in notes)


def test_a_plant_without_these_signals_keeps_the_rows_declared(tmp_path, stack):
    # No outfall, no boundary noise: no water or noise rollups at all, and `metrics
    # indicators` leaves both rows out with a note (never a value of 0).
    pid = "m-table6-none"
    cfg = dataclasses.replace(
        metrics_config(tmp_path, stack, pid, history_days=3), outfalls=(), boundary_noise=None
    )
    st = store(stack)
    engine = Engine(cfg, store=st)
    assert engine.water_items == [] and engine.noise_points == []
    assert "discharge_conc_mg_l" not in engine.inputs and "noise_leq_dba" not in engine.inputs
    engine.close()
    doc, notes = indicators_file(cfg, "2025-03", store=st)
    assert WATER_ROW not in doc["rows"] and NOISE_ROW not in doc["rows"]
    assert any(n.startswith(f"{WATER_ROW}: the plant config maps no outfall") for n in notes)
    assert any(n.startswith(f"{NOISE_ROW}: the plant config maps no boundary noise") for n in notes)


def test_metrics_status_shows_the_water_and_noise_windows(plants):
    # `metrics status` prints the state's newest computed window per rollup, item and kind.
    from greenfoundry.metrics.state import State

    _st, by = plants
    cfg, _pid = by[False]
    state = State(cfg.metrics.state_dir, readonly=True)
    rows = {(r[0], r[1], r[2]): r for r in state.newest_computed()}
    state.close()
    # (rollup, item, kind, start, label, coverage, status, computed at)
    assert rows[("water", "outfall-1/cod", "month")][4:7] == ("2025-03", approx(1 / 31),
                                                              "low_coverage")  # fmt: skip
    # The newest day is day B, 11 samples: no daily mean.
    assert rows[("water", "plant", "day")][4:7] == ("2025-03-11", 0.0, "no_data")
    # Noise: the newest day (2025-03-11) has no reading; the month 2 valid hours of 744.
    assert rows[("noise", "boundary-n", "day")][4:7] == ("2025-03-11", 0.0, "no_data")
    assert rows[("noise", "boundary-n", "month")][4:7] == ("2025-03", approx(2 / 744),
                                                           "low_coverage")  # fmt: skip


def test_a_late_sample_makes_its_day_valid_and_a_replay_changes_nothing(tmp_path, stack):
    # Day A with 11 samples of 200 mg/L: no daily mean. The 12th (350 at local 11:30) arrives
    # late: the day's mean is (11 × 200 + 350) / 12 = 212.5, 0.425 D, and the month's with it;
    # writing the same readings again changes no point.
    pid = "m-table6-late"
    cfg = _config(tmp_path, stack, pid)
    st = store(stack)
    cod = {"device": "outfall-1", "pollutant": "cod"}
    write(st, pid, "discharge_conc_mg_l", cod, every("2025-03-09T16:30", 11 * 60, 60, 200.0))
    engine = Engine(cfg, store=st)
    engine.reconcile(now=NOW)
    before = _points(st, schema.WATER_OUTFALL, pid)
    assert "multiple_of_d" not in before[("outfall-1", "day", DAY_A)]
    late = [("2025-03-10T03:30", 350.0)]
    write(st, pid, "discharge_conc_mg_l", cod, late)
    engine.reconcile(now=NOW)
    after = _points(st, schema.WATER_OUTFALL, pid)
    assert after[("outfall-1", "day", DAY_A)]["multiple_of_d"] == approx(0.425)
    assert after[("outfall-1", "month", MONTH)]["multiple_of_d"] == approx(0.425)
    changed = {k for k in after if after[k] != before.get(k)}
    # The late sample's hour (local 11:00), its shift (08:00), day, month, year and the
    # trailing 12 months holding March 2025: nothing else.
    assert {k[1] for k in changed} == {"hour", "shift", "day", "month", "year", "trailing_12m"}
    assert [k[2] for k in changed if k[1] == "hour"] == [ns("2025-03-10T03:00")]
    assert sorted(k[2] for k in changed if k[1] in ("day", "month")) == sorted([DAY_A, MONTH])
    write(st, pid, "discharge_conc_mg_l", cod, late)  # a replay
    engine.reconcile(now=NOW)
    assert _points(st, schema.WATER_OUTFALL, pid) == after
    engine.close()
