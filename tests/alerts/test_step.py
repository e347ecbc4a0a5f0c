"""Evaluation on a step of ``alerts.step_s`` inside the minute (alerts/signals.py, engine.py).

The config key; the rolling hourly mean at sub-minute steps (59 whole minutes and the running
minute's part), the deadman and the furnace's running shift, from readings written by hand to
the session's real InfluxDB; a replay equal to live ticks at step 20; and a reading at second 5
that fires at the step after it instead of after its minute. Every expected value is worked
out by hand in the comments; the example plant's stacks have particulate C = 30 mg/m³.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import yaml

from greenfoundry import plant
from greenfoundry.alerts.config import Rule
from greenfoundry.alerts.engine import AlertEngine
from greenfoundry.alerts.machine import FIRING
from greenfoundry.alerts.signals import (
    SignalReader,
    partial_rolling_means_mg_m3,
    rolling_windows,
)
from greenfoundry.errors import ConfigError
from greenfoundry.metrics import emissions
from greenfoundry.store import line
from tests.metrics.engine_helpers import ns
from tests.plant import EXAMPLE, plant_config, store

S = 10**9
MIN = 60 * S
MELT = {"device": "melt-stack", "pollutant": "particulate"}
COAT = {"device": "coat-stack", "pollutant": "particulate"}


def rule(rule_id, kind, above=1.0, recover_below=0.9, *, match=None, tier=None, **kw) -> Rule:
    if match is None:
        match = {"stack": "melt-stack", "pollutant": "particulate"} if kind == "stack" else {}
    return Rule(
        rule_id,
        kind,
        kw.pop("severity", "warning"),
        match,
        above,
        recover_below,
        None,
        kw.pop("for_s", 0),
        kw.pop("clear_for_s", 0),
        0,
        ("log",),
        tier=tier,
    )


def config(tmp_path, stack, pid, rules, step_s=20):
    cfg = plant_config(tmp_path, stack, pid)
    acfg = dataclasses.replace(
        cfg.alerts, rules=tuple(rules), step_s=step_s, state_dir=tmp_path / f"alerts-{pid}"
    )
    return dataclasses.replace(cfg, alerts=acfg)


def write(st, pid, measurement, tags, points):
    """Readings (time as ISO text or ns, value) of one series."""
    st.write_lines(
        [
            line(
                measurement,
                {"plant": pid, "area": "a", **tags},
                {"value": float(v)},
                t if isinstance(t, int) else ns(t),
            )
            for t, v in points
        ]
    )


def every(start, count, every_s, value):
    """`count` readings `every_s` seconds apart from `start` (ISO), value(i) or a constant."""
    t0 = ns(start)
    return [(t0 + i * every_s * S, value(i) if callable(value) else value) for i in range(count)]


def samples(cfg, stack, start, end):
    reader = SignalReader(cfg, store(stack), cfg.alerts, cfg.alerts.targets(cfg))
    a, b = ns(start), ns(end)
    reader.read(reader.first_read_from(a), b + 1)
    return {k: {s.at_ns: s for s in v} for k, v in reader.samples(a, b).items()}


def at(t: str, second: int = 0) -> int:
    return ns(t) + second * S


# ------------------------------------------------------------------ the config key


def test_step_s_default_and_refused_values(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "st-cfg")
    # The demo plant states the default; 20 + 10 + 10 < 60 s (alerts/README.md, "Timing").
    assert cfg.alerts.step_s == 20
    assert EXAMPLE["alerts"]["step_s"] == 20
    # Without the key: 20 s, with settle_s and interval_s at their defaults (10 s each) too.
    raw = {**EXAMPLE, "alerts": {"default_channels": ["log"]}}
    path = tmp_path / "default.yaml"
    path.write_text(yaml.safe_dump(raw))
    a = plant.load(path, resolve_secrets=False).alerts
    assert (a.step_s, a.settle_s, a.interval_s) == (20, 10, 10)
    for bad in (25, 0, "20", 120):
        raw = {**EXAMPLE, "alerts": {**EXAMPLE["alerts"], "step_s": bad}}
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError, match=r"alerts\.step_s.*10, 15, 20, 30, 60"):
            plant.load(path, resolve_secrets=False)


# ------------------------------------------------------------------ samples inside the minute


def test_rolling_mean_at_sub_minute_steps_by_hand(tmp_path, stack):
    pid = "st-rolling"
    cfg = config(tmp_path, stack, pid, [rule("r", "stack"), rule("d", "deadman", 900, 900)])
    st = store(stack)
    # 60 whole minutes 00:00-00:59 at 15 mg/m³ (second 30), then in minute 01:00 readings of
    # 30 at :05, 60 at :25, 90 at :45.
    write(st, pid, "stack_conc_mg_m3", MELT, every("2026-04-01T00:00:30", 60, 60, 15.0))
    write(
        st,
        pid,
        "stack_conc_mg_m3",
        MELT,
        [(at("2026-04-01T01:00", second), v) for second, v in ((5, 30), (25, 60), (45, 90))],
    )
    got = samples(cfg, stack, "2026-04-01T00:59:40", "2026-04-01T01:01:00")
    r, d = got["r|melt-stack/particulate"], got["d|stack_conc_mg_m3:melt-stack/particulate"]
    # Steps of 20 s: 01:00:00, :20, :40, 01:01:00.
    assert sorted(r) == [at("2026-04-01T01:00", s) for s in (0, 20, 40, 60)]
    # 01:00:00, a whole minute: the 60 minutes before it, 15 → 0.5 C.
    assert r[at("2026-04-01T01:00")].value == pytest.approx(0.5)
    assert r[at("2026-04-01T01:00")].shown["valid_minutes"] == 60
    # 01:00:20: 59 whole minutes 00:01-00:59 at 15 and the part [01:00:00, 01:00:20) with the
    # reading 30: (59 × 15 + 30) / 60 = 915 / 60 = 15.25 mg/m³ = 0.508333… C, 60 valid.
    s = r[at("2026-04-01T01:00", 20)]
    assert s.value == pytest.approx(15.25 / 30)
    assert s.shown["mg_m3"] == pytest.approx(15.25)
    assert s.shown["valid_minutes"] == 60
    # 01:00:40: the part holds 30 and 60, mean 45: (885 + 45) / 60 = 15.5 mg/m³.
    assert r[at("2026-04-01T01:00", 40)].value == pytest.approx(15.5 / 30)
    # 01:01:00: minute 01:00 whole, mean (30 + 60 + 90) / 3 = 60: (885 + 60) / 60 = 15.75.
    assert r[at("2026-04-01T01:01")].value == pytest.approx(15.75 / 30)
    # The deadman: seconds from the newest reading before the step. 01:00:00 → 00:59:30:
    # 30 s; 01:00:20 → 01:00:05: 15 s; 01:00:40 → 01:00:25: 15 s; 01:01:00 → 01:00:45: 15 s.
    assert [d[t].value for t in sorted(d)] == [30.0, 15.0, 15.0, 15.0]


def test_the_running_minute_counts_once_it_has_a_valid_reading(tmp_path, stack):
    pid = "st-valid"
    cfg = config(tmp_path, stack, pid, [rule("r", "stack")])
    st = store(stack)
    # Melt-stack: 15 mg/m³ at second 30 of 00:00-00:59, then 45 at 01:00:30. Its analyser
    # status: normal (0) at 00:00, calibration (1) at 00:45, normal at 01:00: minutes
    # 00:45-00:59 are flagged, 00:00-00:44 (45 minutes) valid.
    write(st, pid, "stack_conc_mg_m3", MELT, every("2026-04-02T00:00:30", 60, 60, 15.0))
    write(st, pid, "stack_conc_mg_m3", MELT, [(at("2026-04-02T01:00", 30), 45.0)])
    status = [("2026-04-02T00:00", 0), ("2026-04-02T00:45", 1), ("2026-04-02T01:00", 0)]
    write(st, pid, "stack_analyser_status", {"device": "melt-stack"}, status)
    r = samples(cfg, stack, "2026-04-02T00:59:40", "2026-04-02T01:01:00")[
        "r|melt-stack/particulate"
    ]
    # 01:00:00: [00:00, 01:00) has 45 valid minutes: 15 → 0.5 C.
    assert r[at("2026-04-02T01:00")].value == pytest.approx(0.5)
    # 01:00:20: 00:01-00:44 are 44 valid whole minutes and the running part [01:00:00,
    # 01:00:20) has no reading yet: 44 < 45, no sample (not STALE: the newest reading, at
    # 00:59:30, is 50 s old).
    assert at("2026-04-02T01:00", 20) not in r
    # 01:00:40: the part has 45 at :30, a valid minute: 45 valid, (44 × 15 + 45) / 45 =
    # 705 / 45 mg/m³; 01:01:00 has minute 01:00 whole with the same one reading: the same.
    for t in (at("2026-04-02T01:00", 40), at("2026-04-02T01:01")):
        assert r[t].value == pytest.approx(705 / 45 / 30)
        assert r[t].shown["valid_minutes"] == 45


def test_status_and_readings_count_only_before_the_step(tmp_path, stack):
    pid = "st-before"
    rules = [rule("r", "stack", match={"stack": "coat-stack", "pollutant": "particulate"})]
    cfg = config(tmp_path, stack, pid, rules)
    st = store(stack)
    # Coat-stack: 15 mg/m³ at seconds 10 and 40 of 00:00-00:59; in minute 01:00, 30 at :10 and
    # 60 at :40. Status normal from 00:00, calibration (1) from 01:00:35.
    for second in (10, 40):
        write(st, pid, "stack_conc_mg_m3", COAT, every(f"2026-04-03T00:00:{second}", 60, 60, 15))
    write(st, pid, "stack_conc_mg_m3", COAT, [(at("2026-04-03T01:00", 10), 30.0)])
    write(st, pid, "stack_conc_mg_m3", COAT, [(at("2026-04-03T01:00", 40), 60.0)])
    status = [("2026-04-03T00:00", 0), ("2026-04-03T01:00:35", 1)]
    write(st, pid, "stack_analyser_status", {"device": "coat-stack"}, status)
    r = samples(cfg, stack, "2026-04-03T01:00", "2026-04-03T01:01:20")["r|coat-stack/particulate"]
    # 01:00:20: the part [01:00:00, 01:00:20) holds 30, no status change in it: valid,
    # (59 × 15 + 30) / 60 = 15.25 mg/m³.
    assert r[at("2026-04-03T01:00", 20)].value == pytest.approx(15.25 / 30)
    # 01:00:40: the calibration from :35 lies in [01:00:00, 01:00:40): the part is flagged (the
    # reading at :40 itself is not before the step): 59 valid minutes at 15.
    s = r[at("2026-04-03T01:00", 40)]
    assert s.value == pytest.approx(0.5) and s.shown["valid_minutes"] == 59
    # 01:01:00: minute 01:00 whole is flagged: 00:01-00:59, 59 minutes at 15. 01:01:20: the
    # calibration is in force at 01:01: the part is flagged too, 00:02-00:59, 58 minutes.
    assert r[at("2026-04-03T01:01")].value == pytest.approx(0.5)
    assert r[at("2026-04-03T01:01", 20)].shown["valid_minutes"] == 58


def test_trend_is_fitted_over_the_steps_of_its_window(tmp_path, stack):
    pid = "st-trend"
    cfg = config(tmp_path, stack, pid, [rule("r", "stack")])
    cfg = dataclasses.replace(cfg, alerts=dataclasses.replace(cfg.alerts, trend_window_s=900))
    st = store(stack)
    # 15 mg/m³ at second 30 of every minute from 00:00. The first rolling value is at
    # 00:44:40 (44 whole minutes 00:00-00:43 and the part [00:44:00, 00:44:40) with its
    # reading: 45 valid); at 00:44:20 the part is empty, 44: none.
    write(st, pid, "stack_conc_mg_m3", MELT, every("2026-04-07T00:00:30", 60, 60, 15.0))
    r = samples(cfg, stack, "2026-04-07T00:44", "2026-04-07T00:52:20")["r|melt-stack/particulate"]
    assert min(r) == at("2026-04-07T00:44", 40)
    # A 15-minute window holds 45 steps of 20 s; the fit needs half of them, 23: the steps
    # 00:44:40 … 00:52:00 are 23, so 00:51:40 (22) has no trend and 00:52:00 has one; the
    # rolling mean is 0.5 C throughout, a slope of 0, so the projection is the value.
    assert r[at("2026-04-07T00:51", 40)].trend_value is None
    for t in (at("2026-04-07T00:52"), at("2026-04-07T00:52", 20)):
        assert r[t].shown["slope_per_h"] == 0.0
        assert r[t].trend_value == r[t].value == pytest.approx(0.5)


def test_partial_means_agree_with_the_metrics_hourly_means_at_a_minute_end():
    # With no reading in a minute's last second, the running part at 59 s holds the whole
    # minute, so the sample at m + 59 s is the metrics' hourly mean of [m - 59 min, m + 1 min):
    # the same minute rules (range, status flags inside a minute, O₂ correction), checked
    # against emissions.hourly_means_mg_m3 itself over three hours of uneven readings.
    t0 = ns("2026-04-04T00:00")
    rng = np.random.default_rng(7)
    secs = np.sort(rng.choice(np.arange(0, 3 * 3600), size=4000, replace=False))
    secs = secs[secs % 60 != 59]
    conc = pd.Series(rng.uniform(-5, 60, len(secs)), index=pd.to_datetime(t0 + secs * S, utc=True))
    o2_secs = secs[::2]
    o2 = pd.Series(
        rng.uniform(8, 22, len(o2_secs)), index=pd.to_datetime(t0 + o2_secs * S, utc=True)
    )
    status = pd.Series(
        ["N", "C", "N", "M", "N"],
        index=pd.to_datetime(t0 + np.array([0, 3700, 5530, 7301, 7390]) * S, utc=True),
        dtype=object,
    )
    minutes = t0 + np.arange(60, 180) * MIN
    got, n = partial_rolling_means_mg_m3(
        conc, minutes - S, status=status, o2_pct=o2, o2_ref_pct=11.0, min_valid_minutes=40
    )
    want = emissions.hourly_means_mg_m3(
        conc,
        rolling_windows(minutes, "UTC"),
        status=status,
        o2_pct=o2,
        o2_ref_pct=11.0,
        min_valid_minutes=40,
    )
    assert np.array_equal(n, want["valid_minutes"].to_numpy())
    np.testing.assert_allclose(got, want["value"].to_numpy(float), rtol=1e-12, equal_nan=True)
    assert np.isnan(got).any() and not np.isnan(got).all()


def test_furnace_running_shift_up_to_a_sub_minute_step(tmp_path, stack):
    pid = "st-furnace"
    cfg = config(tmp_path, stack, pid, [rule("t", "furnace", match={"furnace": "if1"}, tier=1)])
    st = store(stack)
    # Energy 1 kWh every 10 s (6 kWh a minute) from 23:00 UTC; one tap of 5 t at 00:40:30 UTC,
    # in the shift that began 08:00 Asia/Shanghai = 00:00 UTC. No tapping temperature.
    energy = every("2026-03-08T23:00", 6 * 110, 10, lambda i: float(i))
    write(st, pid, "furnace_energy_kwh", {"device": "if1"}, energy)
    write(st, pid, "tap_iron_t", {"device": "if1"}, [(at("2026-03-09T00:40", 30), 5.0)])
    f = samples(cfg, stack, "2026-03-09T00:40", "2026-03-09T00:41:20")["t|if1"]
    # 00:40:20: the tap at :30 is not before the step: the shift has no tap, no sample.
    assert sorted(f) == [at("2026-03-09T00:40", s) for s in (40, 60, 80)]
    # 00:40:40: the increments of the readings in [00:00:00, 00:40:40), 00:00:00 … 00:40:30,
    # 244 of 1 kWh (each ends at its reading): 244 kWh / 5 t = 48.8 kWh/t. The tier-1 limit of
    # induction-ductile, 200 kWh/t, with note 4 at 16.2 °C: + 0.4 × (25 - 16.2) = 203.52.
    s = f[at("2026-03-09T00:40", 40)]
    assert s.shown["value_per_t"] == pytest.approx(48.8)
    assert s.value == pytest.approx(48.8 / 203.52)
    # 00:41:00: 246 readings, 49.2 kWh/t; 00:41:20: 248, 49.6 kWh/t.
    assert f[at("2026-03-09T00:41")].shown["value_per_t"] == pytest.approx(49.2)
    assert f[at("2026-03-09T00:41", 20)].shown["value_per_t"] == pytest.approx(49.6)


# ------------------------------------------------------------------ the engine at step 20


def test_a_reading_at_second_5_fires_at_the_next_step(tmp_path, stack):
    pid = "st-fast"
    warning = rule("w", "stack", 0.7, 0.65, clear_for_s=3600)
    cfg = config(tmp_path, stack, pid, [warning])
    st = store(stack)
    # 0.5 C (15 mg/m³) at second 30 of 00:00-00:59; 400 mg/m³ at 01:00:05; 15 at 01:00:25.
    write(st, pid, "stack_conc_mg_m3", MELT, every("2026-04-05T00:00:30", 60, 60, 15.0))
    write(st, pid, "stack_conc_mg_m3", MELT, [(at("2026-04-05T01:00", 5), 400.0)])
    write(st, pid, "stack_conc_mg_m3", MELT, [(at("2026-04-05T01:00", 25), 15.0)])
    engine = AlertEngine(cfg, store=st)
    try:
        # 01:00:29: the step 01:00:20 is due only at 01:00:30 (settle_s 10): nothing fires.
        first = engine.tick(at("2026-04-05T01:00", 29))
        assert first.end_ns == at("2026-04-05T01:00")
        assert not [t for t in first.transitions if t.to_state == FIRING]
        # 01:00:30: the step 01:00:20 (a reading at 01:00:25 is in) holds 59 minutes at 15 and
        # the part with 400: (885 + 400) / 60 = 21.416… mg/m³ = 0.7139 C ≥ 0.7: firing, 25 s
        # after the reading, 30 s before its minute ends.
        r = engine.tick(at("2026-04-05T01:00", 30))
        assert r.end_ns == at("2026-04-05T01:00", 20) and r.steps == 1
        (fired,) = r.transitions
        assert (fired.to_state, fired.event, fired.at_ns) == (FIRING, "firing", r.end_ns)
        assert fired.value == pytest.approx(1285 / 60 / 30)
    finally:
        engine.close()
    # At step 60 the same readings fire only with the minute: at 01:01:00, whose hour holds
    # minute 01:00's mean (400 + 15) / 2 = 207.5: (885 + 207.5) / 60 = 18.21 mg/m³, 0.607 C,
    # under the line: at the minute cadence this reading never fires at all.
    cfg60 = dataclasses.replace(
        cfg, alerts=dataclasses.replace(cfg.alerts, step_s=60, state_dir=tmp_path / "a60")
    )
    engine = AlertEngine(cfg60, store=st)
    try:
        r = engine.tick(at("2026-04-05T01:01", 10))
        assert not [t for t in r.transitions if t.to_state == FIRING]
    finally:
        engine.close()


def test_replay_equals_live_ticks_at_step_20(tmp_path, stack):
    pid = "st-replay"
    rules = [
        rule("w", "stack", 0.7, 0.65, clear_for_s=60),
        rule("c", "stack", 1.0, 0.95, for_s=40, severity="critical"),
    ]
    cfg = config(tmp_path, stack, pid, rules)
    st = store(stack)
    # 15 mg/m³ at second 30 of 00:00-00:59, then readings every 10 s (second 5, 15, …) to
    # 01:20 at 15, but 2000 at 01:00:05 and 6000 at 01:03:25.
    write(st, pid, "stack_conc_mg_m3", MELT, every("2026-04-06T00:00:30", 60, 60, 15.0))
    spikes = {0: 2000.0, 20: 6000.0}
    write(st, pid, "stack_conc_mg_m3", MELT, every("2026-04-06T01:00:05", 120, 10,
                                                   lambda i: spikes.get(i, 15.0)))  # fmt: skip
    engine = AlertEngine(cfg, store=st)
    try:
        live = []
        now = at("2026-04-06T00:59")
        while now <= at("2026-04-06T01:21"):
            live.extend(engine.tick(now).transitions)
            now += 13 * S  # on no step's phase
        start = at("2026-04-06T00:59") - 2 * 3600 * S
        replayed = engine.replay(start, engine.alert_store.cursor_ns())
    finally:
        engine.close()

    def key(t):
        return (t.at_ns, t.rule_id, t.from_state, t.to_state, t.event, t.alert_id, t.value)

    assert [key(t) for t in replayed] == [key(t) for t in live]
    fired = [(t.rule_id, t.at_ns, t.value) for t in live if t.event == "firing"]
    # 01:00:20: the part [01:00:00, 01:00:20) holds 2000 and 15, mean 1007.5: (59 × 15 +
    # 1007.5) / 60 = 31.54 mg/m³ = 1.051 C: the warning fires, the critical (for 40 s) is
    # pending; 01:00:40: the part's mean (2000 + 3 × 15) / 4 = 511.25, (885 + 511.25) / 60 =
    # 23.27 mg/m³ = 0.776 C: the critical is back to OK. 01:03:40: minute 01:00's mean is
    # (2000 + 5 × 15) / 6 = 345.83; 56 minutes at 15, 01:00, 01:01 and 01:02 at 15 make
    # 1215.83, the part [01:03:00, 01:03:40) (6000 + 3 × 15) / 4 = 1511.25: 45.45 mg/m³, 1.515 C,
    # pending; 01:04:00 (minute 01:03's mean 1012.5): 2228.33 / 60 = 37.14 mg/m³, 1.238 C;
    # 01:04:20: 55 × 15 + 345.83 + 30 + 1012.5 and the part's 15: the same 37.14 mg/m³, held
    # 40 s: the critical fires, inside the minute.
    assert [(r, t) for r, t, _ in fired] == [
        ("w", at("2026-04-06T01:00", 20)),
        ("c", at("2026-04-06T01:04", 20)),
    ]
    assert fired[0][2] == pytest.approx((885 + 1007.5) / 60 / 30)
    assert fired[1][2] == pytest.approx((825 + 2075 / 6 + 30 + 1012.5 + 15) / 60 / 30)
    pending = [(t.rule_id, t.at_ns, t.to_state) for t in live if t.from_state == "PENDING"]
    assert pending == [
        ("c", at("2026-04-06T01:00", 40), "OK"),
        ("c", at("2026-04-06T01:04", 20), "FIRING"),
    ]
