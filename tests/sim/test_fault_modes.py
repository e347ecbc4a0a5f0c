"""The fault modes added for the metrics: late data, meter resets and rollovers, analyser
calibration, a drifting stack and a hot furnace. Each changes exactly what it says; the
ground truth (`PlantModel.truth`) is what the metrics must find despite them."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta

import numpy as np
import pytest

from greenfoundry.errors import UsageError
from greenfoundry.sim.faults import ROLLOVER_MODULUS, Faults, late_intervals
from greenfoundry.sim.plant import DAY_MS, EPOCH_MS, PlantModel
from tests.sim.conftest import DAY0

END = DAY0 + timedelta(days=2)


def _events(cfg, **faults):
    model = PlantModel(cfg, seed=1, faults=Faults(**faults))
    return model, list(model.events(DAY0, END))


@pytest.fixture(scope="module")
def clean(cfg):
    return {(e.topic, e.ts_ms): e for e in PlantModel(cfg, seed=1).events(DAY0, END)}


def _day(ts_ms: int) -> int:
    return (ts_ms - EPOCH_MS) // DAY_MS


def test_late_readings_come_later_with_their_own_time_and_nothing_is_lost(cfg, clean):
    model, events = _events(cfg, late=True, late_per_device_day=3.0)
    assert {(e.topic, e.ts_ms) for e in events} == set(clean)  # nothing lost, nothing added
    late = [e for e in events if e.sent_ms is not None]
    assert late and all(e.fault == "late" for e in late)
    assert all(e.sent_ms > e.ts_ms for e in late)
    for e in late:  # exactly the readings inside a late stretch of their device
        t_s = (e.ts_ms - EPOCH_MS - _day(e.ts_ms) * DAY_MS) / 1000
        spans = late_intervals(model.faults, 1, "/".join(e.device_key), _day(e.ts_ms))
        assert any(a <= t_s < b for a, b in spans)
        assert e.value == clean[(e.topic, e.ts_ms)].value
    sent = [e.send_ms for e in events]
    assert sent == sorted(sent)  # the stream is in send order …
    assert [e.ts_ms for e in events] != sorted(e.ts_ms for e in events)  # … so out of time order


@pytest.mark.parametrize("mode", ["resets", "rollovers"])
def test_meter_faults_drop_the_reading_but_not_the_consumption(cfg, mode):
    """A reset reads from zero, a rollover wraps at its register (ROLLOVER_MODULUS): each
    increment between two readings of the faulty meter, read the way metrics.counters reads a
    drop (the new reading counts from zero, or + M for a rollover), equals the clean meter's
    increment to within the resolution of both readings (0.1 kWh, 0.01 m³)."""
    faults = {"resets": True, "resets_per_counter_week": 5.0} if mode == "resets" else {}
    if mode == "rollovers":
        faults = {"rollovers": True}
    # A week: with resets_per_counter_week 5 (capped at one a week) every counter resets once.
    end = DAY0 + timedelta(days=7)
    model = PlantModel(cfg, seed=1, faults=Faults(**faults))
    events = list(model.events(DAY0, end))
    clean = {(e.topic, e.ts_ms): e for e in PlantModel(cfg, seed=1).events(DAY0, end)}
    series = defaultdict(list)
    for e in events:
        if e.topic.endswith(("/energy", "/volume", "/reactive")):
            series[e.topic].append(e)
    drops = 0
    for evs in series.values():
        for a, b in itertools.pairwise(evs):
            true_inc = clean[(b.topic, b.ts_ms)].value - clean[(a.topic, a.ts_ms)].value
            if b.value < a.value:
                drops += 1
                m = ROLLOVER_MODULUS["m3" if b.topic.endswith("/volume") else "kWh"]
                inc = b.value if mode == "resets" else b.value + m - a.value
                assert b.fault == ("reset" if mode == "resets" else "rollover")
            else:
                inc = b.value - a.value
            # A reset inside an interval loses the consumption before it in that interval.
            tol = 0.2 + (abs(true_inc) if mode == "resets" and b.value < a.value else 0.0)
            assert abs(inc - true_inc) <= tol, (b.topic, a.value, b.value)
    assert drops > 0
    assert model.stats[mode[:-1]] > 0


def test_calibration_flags_15_minutes_a_day_per_stack(cfg, clean):
    model, events = _events(cfg, calibration=True)
    cfg_c = {s.id: s.limits_mg_m3 for s in cfg.stacks}
    flagged = defaultdict(set)
    for e in events:
        key = (e.topic, e.ts_ms)
        stack = e.route.device
        if e.route.signal.startswith("discharge_"):
            continue  # an outfall's analysers calibrate apart (tests/sim/test_table6_sim.py)
        if e.fault == "calibration":
            a, b = model.calibration(stack, _day(e.ts_ms))
            t_s = (e.ts_ms - EPOCH_MS - _day(e.ts_ms) * DAY_MS) / 1000
            assert a <= t_s < b and b - a == pytest.approx(900)
            if e.topic.endswith("/status"):
                assert e.value == 1
            else:  # the span gas: 0.9 × C of the pollutant
                assert e.value == pytest.approx(0.9 * cfg_c[stack][e.route.tags[0][1]], abs=0.01)
            flagged[(stack, _day(e.ts_ms))].add(e.ts_ms)
        else:
            assert e == clean[key]
            if e.topic.endswith("/status"):
                assert e.value == 0
    # Two stacks × two days, 15 one-minute samples each.
    assert len(flagged) == 4 and all(len(v) == 15 for v in flagged.values())


def test_a_stack_drifts_towards_08c_and_its_filter_is_changed(cfg):
    """Cycle of 28 days from the epoch: normal to day 14, then linear to a mean of 0.8 C (melt
    stack particulate, C = 30 mg/m³: 24 mg/m³) on day 28."""
    model = PlantModel(cfg, seed=1, faults=Faults(stack_drift=True))
    clean = PlantModel(cfg, seed=1)
    base = 28 * 30  # a cycle start (day 840 since the epoch)
    for day in (base + 3, base + 13):
        assert np.allclose(
            model.stack_hourly_mg_m3("melt-stack", "particulate", day),
            clean.stack_hourly_mg_m3("melt-stack", "particulate", day),
        )
    mid = model.stack_hourly_mg_m3("melt-stack", "particulate", base + 21).mean()
    last = model.stack_hourly_mg_m3("melt-stack", "particulate", base + 27).mean()
    assert 10.0 < mid < 20.0  # halfway: between normal (2–10) and 24 mg/m³
    # At day 27.5 the weight is 13.5/14, so the mean is about 0.77 C times the day's level
    # factor 0.85–1.15 (sim/plant.py): 0.65–0.89 C.
    assert 0.64 * 30 <= last <= 0.9 * 30
    assert model.stack_hourly_mg_m3("melt-stack", "particulate", base + 28).mean() < 10.0
    # The coating stack is untouched.
    assert np.allclose(
        model.stack_hourly_mg_m3("coat-stack", "particulate", base + 27),
        clean.stack_hourly_mg_m3("coat-stack", "particulate", base + 27),
    )
    with pytest.raises(UsageError, match="stack drift target"):
        PlantModel(cfg, faults=Faults(stack_drift=True, stack_drift_target="nosuch/so2"))


def test_a_hot_furnace_taps_hotter_and_uses_the_energy_that_takes(cfg, clean):
    """if1 runs 30 K hot: its taps are 30 K hotter (clipped at 1550 °C, domain.md §5), and 30 K
    more superheat at 0.40–0.45 kWh/(t·K) is 12–13.5 kWh/t more. Tap weights and times, if2 and
    the pipe batches do not change; the site meters include the extra energy."""
    model, events = _events(cfg, hot_furnace=True)
    base = PlantModel(cfg, seed=1)
    hot, ref = model.truth(DAY0, END), base.truth(DAY0, END)
    f_hot, f_ref = hot["furnaces"]["if1"], ref["furnaces"]["if1"]
    assert f_hot["iron_t"] == f_ref["iron_t"]
    assert 22.0 <= f_hot["tap_temp_c"] - f_ref["tap_temp_c"] <= 30.5  # clipping takes some
    assert 9.0 <= f_hot["kwh_per_t"] - f_ref["kwh_per_t"] <= 13.5
    assert hot["furnaces"]["if2"] == ref["furnaces"]["if2"]
    extra = f_hot["energy_kwh"] - f_ref["energy_kwh"]
    assert hot["site"]["site_energy_kwh"] - ref["site"]["site_energy_kwh"] == pytest.approx(extra)
    changed = {e.topic for e in events if e != clean[(e.topic, e.ts_ms)]}
    assert changed == {
        f"gf/v1/demo-dip/{t}"
        for t in ("melt/if1/energy", "melt/if1/power", "melt/if1/tap_temp",
                  "site/main-meter/energy", "site/main-meter/reactive")
    }  # fmt: skip
    assert all(e.fault == "hot_furnace" for e in events if e.topic in changed)


def test_truth_agrees_with_the_published_readings(cfg, clean):
    """Counter totals are exact integrals; a day's published counter difference is the truth
    over [first reading, last reading], so it is within one minute's consumption of it."""
    model = PlantModel(cfg, seed=1)
    t = model.truth(DAY0, DAY0 + timedelta(days=1))
    evs = [e for e in clean.values() if e.ts_ms < (DAY0 + timedelta(days=1)).timestamp() * 1000]
    energy = sorted((e.ts_ms, e.value) for e in evs if e.topic.endswith("main-meter/energy"))
    published = energy[-1][1] - energy[0][1]
    truth = t["counters"]["gf/v1/demo-dip/site/main-meter/energy"]
    assert 0 < truth - published < 2 * truth / 1440 + 0.2
    taps = sum(e.value for e in evs if e.topic.endswith("if1/tap_weight"))
    assert t["furnaces"]["if1"]["iron_t"] == pytest.approx(taps, abs=0.005 * 120)
    pf = t["site"]["power_factor"]
    assert 0.93 <= pf <= 0.97  # POWER_FACTOR drawn per day
    assert pf == pytest.approx(
        model.power_factor((int(DAY0.timestamp() * 1000) - EPOCH_MS) // DAY_MS)
    )
    good = sum(e.value for e in evs if e.topic.endswith("pipe_weight"))
    assert t["production"]["pipe_output_t"] == pytest.approx(good, abs=0.0005 * 48)
