"""The simulator's Table 6 water and noise signals (sim/plant.py): an outfall sampled once an
hour by online analysers whose daily calibration (two hours) reads the standard solution with
status 1, and 1-minute Leqs at the boundary points, below the day or night limit E of GB 12348
class 3 (65 / 55 dB(A)) of the demo plant, louder by day than by night."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from greenfoundry.sim.faults import Faults, outfall_calibration_interval
from greenfoundry.sim.plant import EPOCH_MS, PlantModel

DAY = datetime(2026, 3, 10, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def day_events(cfg):
    model = PlantModel(cfg, seed=3, faults=Faults(calibration=True))
    evs = [e for e in model.events(DAY, DAY + timedelta(days=1))
           if e.route.signal in ("discharge_conc_mg_l", "discharge_analyser_status",
                                 "noise_leq_dba")]  # fmt: skip
    return model, evs


def test_the_outfall_is_sampled_hourly_and_its_calibration_is_flagged(cfg, day_events):
    model, evs = day_events
    by_topic = defaultdict(list)
    for e in evs:
        by_topic[e.route.signal, dict(e.route.tags).get("pollutant")].append(e)
    limits = cfg.outfalls[0].limits_mg_l
    for pol, limit in limits.items():
        samples = by_topic["discharge_conc_mg_l", pol]
        assert len(samples) == 24  # one an hour
        normal = [e.value for e in samples if e.fault != "outfall_calibration"]
        # The treated water lies well under D (0.25-0.55 D drawn, a daily swing of 15 %).
        assert 0 < max(normal) < limit
    day = (int(DAY.timestamp() * 1000) - EPOCH_MS) // 86_400_000
    a, b = outfall_calibration_interval(model.faults, model.seed, cfg.outfalls[0].id, day)
    assert b - a == 7200.0
    status = by_topic["discharge_analyser_status", None]
    t0 = DAY.timestamp()
    for e in status:
        inside = a <= e.ts_ms / 1000 - t0 < b
        assert e.value == (1 if inside else 0)
        assert (e.fault == "outfall_calibration") == inside
    # Two of the 24 hourly samples fall in two hours of calibration, and read 0.9 × D.
    assert sum(e.value == 1 for e in status) == 2
    cod = [e for e in by_topic["discharge_conc_mg_l", "cod"] if e.fault == "outfall_calibration"]
    assert [e.value for e in cod] == [pytest.approx(0.9 * limits["cod"])] * 2


def test_boundary_noise_is_a_minute_leq_below_the_day_and_night_limits(cfg, day_events):
    _, evs = day_events
    points = defaultdict(list)
    for e in evs:
        if e.route.signal == "noise_leq_dba":
            points[e.route.device].append((e.ts_ms, e.value))
    assert len(points) == 2 and all(len(v) == 1440 for v in points.values())
    for series in points.values():
        t = np.array([x for x, _ in series])
        v = np.array([x for _, x in series])
        local_h = (t // 3_600_000 + 8) % 24  # Asia/Shanghai, UTC+8 without DST
        day = (local_h >= 6) & (local_h < 22)
        # Levels are drawn 3-8 dB(A) under 65 by day and 2-7 under 55 at night.
        assert 57 - 1 < v[day].mean() < 62 + 1 and 48 - 1 < v[~day].mean() < 53 + 1
        assert v[day].mean() - v[~day].mean() > 3


def test_a_noise_monitor_with_a_status_is_calibrated_two_minutes_a_day(cfg):
    # boundary-n publishes its status (env/boundary-n/status), boundary-s does not. With the
    # fault `calibration`, boundary-n's monitor is checked once a day for 120 s with its
    # acoustic calibrator: the two 1-minute Leqs in those 120 s (one a minute, 60 s apart) read
    # the tone, 94.0 dB(A), and the status readings with them read 1; boundary-s is never
    # calibrated (without a status its tone could not be told from the plant's noise).
    from greenfoundry.plant import SignalRoute
    from greenfoundry.sim.faults import noise_calibration_interval

    status = SignalRoute("env", "boundary-n", "status", "noise_monitor_status", "code", ())
    with_status = dataclasses.replace(cfg, routes={**cfg.routes, status.key: status})
    model = PlantModel(with_status, seed=3, faults=Faults(calibration=True))
    evs = [e for e in model.events(DAY, DAY + timedelta(days=1))
           if e.route.signal in ("noise_leq_dba", "noise_monitor_status")]  # fmt: skip
    day = (int(DAY.timestamp() * 1000) - EPOCH_MS) // 86_400_000
    a, b = noise_calibration_interval(model.faults, model.seed, "boundary-n", day)
    assert b - a == 120.0
    t0 = DAY.timestamp()
    n_status = [e for e in evs if e.route.signal == "noise_monitor_status"]
    n_leq = [e for e in evs if e.route.signal == "noise_leq_dba" and e.route.device == "boundary-n"]
    s_leq = [e for e in evs if e.route.signal == "noise_leq_dba" and e.route.device == "boundary-s"]
    assert len(n_status) == len(n_leq) == len(s_leq) == 1440
    inside = [e for e in n_status if a <= e.ts_ms / 1000 - t0 < b]
    assert len(inside) == 2 and all(e.value == 1 and e.fault == "noise_calibration" for e in inside)
    assert sum(e.value == 1 for e in n_status) == 2
    tone = [e for e in n_leq if e.fault == "noise_calibration"]
    assert [e.value for e in tone] == [94.0, 94.0]
    assert {e.ts_ms for e in tone} == {e.ts_ms for e in inside}
    # Elsewhere the Leqs stay at the plant's level (at most 65 − 3 + 4σ = 68 dB(A) by day).
    assert max(e.value for e in n_leq if e.fault != "noise_calibration") < 70
    assert max(e.value for e in s_leq) < 70 and not any(e.fault for e in s_leq)
