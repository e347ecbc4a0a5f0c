"""The alert engine across a real InfluxDB (the session's `stack`): readings written by hand,
live ticks, restarts, replays, the gf_alert points and the notifications handed on.

Every expected time and value below is computed by hand in the comments, from the readings the
test writes and the rules it sets; none is taken from the code's output. The example plant's
melt-stack particulate has the limit C = 30 mg/m³; its furnace if1 is a 12 t coreless
induction furnace casting DN80-300 ductile pipe.
"""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

from greenfoundry.alerts.channels.jsonl import JsonlChannel
from greenfoundry.alerts.config import Rule
from greenfoundry.alerts.dispatch import Dispatcher
from greenfoundry.alerts.engine import MEASUREMENT, AlertEngine, close_all, run_due
from greenfoundry.alerts.machine import FIRING, OK, PENDING, STALE
from greenfoundry.alerts.state import AlertStore
from greenfoundry.store import line, where
from tests.metrics.engine_helpers import ns
from tests.plant import ALL_TIME, plant_config, store

S = 10**9
MIN = 60 * S
STACK = {"stack": "melt-stack", "pollutant": "particulate"}
CONC_TAGS = {"device": "melt-stack", "pollutant": "particulate"}


def rule(rule_id, kind, severity, above, recover_below, **kw) -> Rule:
    kw.setdefault("match", dict(STACK) if kind == "stack" else {})
    return Rule(
        id=rule_id,
        kind=kind,
        severity=severity,
        match=kw.pop("match"),
        above=above,
        recover_below=recover_below,
        trend_to=kw.pop("trend_to", None),
        for_s=kw.pop("for_s", 0),
        clear_for_s=kw.pop("clear_for_s", 0),
        repeat_interval_s=kw.pop("repeat_interval_s", 0),
        channels=("journal",),
        **kw,
    )


# The default stack rules' lines (alerts/config.py), without the trend (tested on its own).
WARNING = rule("stack-warning", "stack", "warning", 0.7, 0.65, for_s=300, clear_for_s=900)
ALARM = rule("stack-alarm", "stack", "alarm", 0.8, 0.75, for_s=300, clear_for_s=900)
CRITICAL = rule("stack-critical", "stack", "critical", 1.0, 0.95, clear_for_s=900)


def alerts_cfg(tmp_path, stack, plant_id, rules):
    cfg = plant_config(tmp_path, stack, plant_id)
    state_dir = tmp_path / f"alerts-{plant_id}"
    journal = JsonlChannel("journal", state_dir / "notifications.jsonl")
    # These tests state the minute step (alerts.step_s 60); tests/alerts/test_step.py the others.
    a = dataclasses.replace(
        cfg.alerts,
        rules=tuple(rules),
        state_dir=state_dir,
        channels={"journal": journal},
        step_s=60,
    )
    return dataclasses.replace(cfg, alerts=a)


def write_minutes(st, plant_id, measurement, tags, start, minutes, value, second=30):
    """One reading at `second` s past each of `minutes` whole minutes from `start`;
    value(i) or a constant."""
    t0 = ns(start)
    st.write_lines(
        [
            line(
                measurement,
                {"plant": plant_id, "area": "a", **tags},
                {"value": float(value(i) if callable(value) else value)},
                t0 + i * MIN + second * S,
            )
            for i in range(minutes)
        ]
    )


def history(transitions):
    return [(t.rule_id, t.from_state, t.to_state, t.at_ns, t.event) for t in transitions]


def points(st, plant_id):
    df = st.query(
        f"SELECT * FROM {MEASUREMENT} {where({'plant': plant_id}, **ALL_TIME)} GROUP BY *"
    )
    if df.empty:
        return []
    return sorted(
        (r["rule"], r["from_state"], r["state"], r["time"].value, r["event"] or None)
        for r in df.to_dict("records")
    )


def ticks(engine, start, end, step_min):
    """Live ticks at start, start + step, … up to end (10 s after whole minutes)."""
    out = []
    now = ns(start) + 10 * S
    while now <= ns(end) + 10 * S:
        out.extend(engine.tick(now).transitions)
        now += step_min * MIN
    return out


# ------------------------------------------------------------------ drift up and back down

# Level 15 mg/m³ (0.5 C) from 22:00 to 02:00, 31.5 mg/m³ (1.05 C) from T = 02:00 to
# T2 = 04:00, 15 again to 06:00, one reading per minute. k minutes after T the rolling hour
# [t - 60 min, t) holds 60 - k minutes at 15 and k at 31.5: its mean is 15 + 0.275 k mg/m³.
#   0.7 C = 21 mg/m³: k >= 21.8 → 02:22;  0.8 C = 24: k >= 32.7 → 02:33;  C = 30: k >= 54.5 → 02:55.
# With for 5 m: warning fires at 02:27, alarm at 02:38; critical (for 0) at once at 02:55.
# k minutes after T2 the mean is 31.5 - 0.275 k; each rule's run below its recovery line starts at
#   0.95 C = 28.5: k > 10.9 → 04:11;  0.75 C = 22.5: k > 32.7 → 04:33;  0.65 C = 19.5: k > 43.6 → 04:44
# and resolves clear_for = 15 min later: 04:26, 04:48, 04:59.
DRIFT = sorted(
    [
        ("stack-warning", OK, PENDING, ns("2026-03-02T02:22"), None),
        ("stack-warning", PENDING, FIRING, ns("2026-03-02T02:27"), "firing"),
        ("stack-alarm", OK, PENDING, ns("2026-03-02T02:33"), None),
        ("stack-alarm", PENDING, FIRING, ns("2026-03-02T02:38"), "firing"),
        ("stack-critical", OK, FIRING, ns("2026-03-02T02:55"), "firing"),
        ("stack-critical", FIRING, OK, ns("2026-03-02T04:26"), "resolved"),
        ("stack-alarm", FIRING, OK, ns("2026-03-02T04:48"), "resolved"),
        ("stack-warning", FIRING, OK, ns("2026-03-02T04:59"), "resolved"),
    ],
    key=lambda h: (h[3], h[0]),
)


def write_drift(st, plant_id):
    write_minutes(st, plant_id, "stack_conc_mg_m3", CONC_TAGS, "2026-03-01T22:00", 240, 15.0)
    write_minutes(st, plant_id, "stack_conc_mg_m3", CONC_TAGS, "2026-03-02T02:00", 120, 31.5)
    write_minutes(st, plant_id, "stack_conc_mg_m3", CONC_TAGS, "2026-03-02T04:00", 120, 15.0)


def by_time(hist):
    return sorted(hist, key=lambda h: (h[3], h[0]))


def test_drift_through_the_lines_and_back(tmp_path, stack):
    pid = "al-drift"
    cfg = alerts_cfg(tmp_path, stack, pid, [WARNING, ALARM, CRITICAL])
    st = store(stack)
    write_drift(st, pid)
    dispatcher = Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir, backoff_s=(0.1,))
    engine = AlertEngine(cfg, dispatcher=dispatcher)
    try:
        # The first tick of a new state starts 2 h before now: 23:00. It reads up to now,
        # 01:00:10, where the newest reading is 00:59:30: minute 01:00 (the hour before it) is
        # due only once a reading at or after 01:00 is in, so it ends at 00:59.
        first = engine.tick(ns("2026-03-02T01:00") + 10 * S)
        assert first.start_ns == ns("2026-03-01T23:00")
        assert first.end_ns == ns("2026-03-02T00:59")
        assert first.transitions == ()
        # Then every 7 minutes (so ticks fall on no round minute of the series) to 06:00.
        live = list(first.transitions) + ticks(engine, "2026-03-02T01:07", "2026-03-02T06:00", 7)
        assert by_time(history(live)) == DRIFT
        assert points(st, pid) == sorted(DRIFT)
        # One notification per event, with the alert's id, in the journal channel's file.
        assert dispatcher.flush(10)
        lines = (cfg.alerts.state_dir / "notifications.jsonl").read_text().splitlines()
        sent = sorted((n["rule"], n["event"], n["at_ns"], n["id"]) for n in map(json.loads, lines))
        want = sorted((t.rule_id, t.event, t.at_ns, t.alert_id) for t in live if t.event)
        assert sent == want and len(sent) == 6
        # A replay over the same readings gives the same transitions, alert ids included, and
        # writing its points again changes none of them (same series, time and fields).
        replayed = engine.replay(ns("2026-03-01T23:00"), ns("2026-03-02T06:00"), write=True)
        assert by_time(history(replayed)) == DRIFT
        assert sorted((t.rule_id, t.at_ns, t.alert_id) for t in replayed) == sorted(
            (t.rule_id, t.at_ns, t.alert_id) for t in live
        )
        assert points(st, pid) == sorted(DRIFT)
    finally:
        engine.close()
        dispatcher.close()


def test_restart_in_pending_and_in_firing_changes_nothing(tmp_path, stack):
    pid = "al-restart"
    cfg = alerts_cfg(tmp_path, stack, pid, [WARNING, ALARM, CRITICAL])
    st = store(stack)
    write_drift(st, pid)
    dispatcher = Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir, backoff_s=(0.1,))
    live = []
    try:
        # Run 1's last tick, at 02:25:10, evaluates up to 02:24 (the warning PENDING since
        # 02:22); run 2's, at 03:00:10, up to 02:59 (all three FIRING); run 3 goes to the end.
        # Each is a new engine on the same state folder.
        for start, end in (
            ("2026-03-02T01:00", "2026-03-02T02:25"),
            ("2026-03-02T02:30", "2026-03-02T03:00"),
            ("2026-03-02T03:05", "2026-03-02T06:00"),
        ):
            engine = AlertEngine(cfg, dispatcher=dispatcher)
            live += ticks(engine, start, end, 5)
            states = {s.rule_id: s.state for s in engine.alert_store.load().values()}
            engine.close()
            if end.endswith("02:25"):
                assert states["stack-warning"] == PENDING
            if end.endswith("03:00"):
                assert set(states.values()) == {FIRING}
        assert by_time(history(live)) == DRIFT
        assert points(st, pid) == sorted(DRIFT)
        assert [t.event for t in live].count("firing") == 3  # no second firing
        assert dispatcher.flush(10)
        lines = (cfg.alerts.state_dir / "notifications.jsonl").read_text().splitlines()
        assert sorted(json.loads(n)["event"] for n in lines) == ["firing"] * 3 + ["resolved"] * 3
    finally:
        dispatcher.close()


def test_a_failed_hand_off_is_evaluated_again(tmp_path, stack):
    pid = "al-handoff"
    cfg = alerts_cfg(tmp_path, stack, pid, [CRITICAL])
    st = store(stack)
    write_drift(st, pid)
    # A dispatcher that is closed refuses every notification (RuntimeError).
    closed = Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir)
    closed.close()
    engine = AlertEngine(cfg, dispatcher=closed)
    working = None
    try:
        # Up to 02:29 nothing fires (the hourly mean is 15 + 0.275 × 29 = 23 mg/m³ < 30).
        assert engine.tick(ns("2026-03-02T02:30") + 10 * S).transitions == ()
        # Up to 02:59: critical fires at 02:55 (DRIFT), and the hand-off fails: nothing of
        # these minutes is committed.
        with pytest.raises(RuntimeError):
            engine.tick(ns("2026-03-02T03:00") + 10 * S)
        assert engine.alert_store.cursor_ns() == ns("2026-03-02T02:29")
        working = Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir)
        engine.dispatcher = working
        again = engine.tick(ns("2026-03-02T03:00") + 10 * S)
        assert history(again.transitions) == [
            ("stack-critical", OK, FIRING, ns("2026-03-02T02:55"), "firing")
        ]
        assert working.flush(10)
        lines = (cfg.alerts.state_dir / "notifications.jsonl").read_text().splitlines()
        assert [json.loads(n)["event"] for n in lines] == ["firing"]
        # The point written before the failure and again after it is one point.
        assert points(st, pid) == [("stack-critical", OK, FIRING, ns("2026-03-02T02:55"), "firing")]
    finally:
        engine.close()
        if working is not None:
            working.close()


def test_ticks_from_the_scheduler_s_worker_threads(tmp_path, stack):
    # The metrics service's scheduler calls run_due on whichever of its worker threads is
    # free: two ticks from two threads, each evaluating its minutes.
    pid = "al-threads"
    cfg = alerts_cfg(tmp_path, stack, pid, [CRITICAL])
    write_drift(store(stack), pid)
    engine = AlertEngine(cfg)
    results, errors = [], []

    def tick(now):
        try:
            results.append(engine.tick(now))
        except Exception as exc:  # reported below, with the thread's error
            errors.append(exc)

    try:
        for now in (ns("2026-03-02T02:30") + 10 * S, ns("2026-03-02T03:00") + 10 * S):
            t = threading.Thread(target=tick, args=(now,))
            t.start()
            t.join()
        assert errors == []
        assert [r.end_ns for r in results] == [ns("2026-03-02T02:29"), ns("2026-03-02T02:59")]
        assert history(results[1].transitions) == [
            ("stack-critical", OK, FIRING, ns("2026-03-02T02:55"), "firing")
        ]
    finally:
        engine.close()


def test_run_due_ticks_once_per_interval(tmp_path, stack):
    pid = "al-due"
    cfg = alerts_cfg(tmp_path, stack, pid, [CRITICAL])
    assert cfg.alerts.interval_s == 10
    write_drift(store(stack), pid)
    t0 = ns("2026-03-02T03:00") + 10 * S
    try:
        first = run_due(cfg, t0)
        assert history(first.transitions) == [
            ("stack-critical", OK, FIRING, ns("2026-03-02T02:55"), "firing")
        ]
        assert run_due(cfg, t0 + 9 * S) is None  # 9 s later: not due
        later = run_due(cfg, t0 + 60 * S)  # a minute later: 03:00 is due
        assert later is not None and later.end_ns == ns("2026-03-02T03:00")
    finally:
        close_all()
    # The dispatcher run_due made was closed with it: a new one can take the outbox's lock,
    # and the firing it was handed is in the outbox or already sent.
    with Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir) as d:
        assert d.flush(10)
    lines = (cfg.alerts.state_dir / "notifications.jsonl").read_text().splitlines()
    assert [json.loads(n)["event"] for n in lines] == ["firing"]


def test_an_acknowledgement_from_another_process_mutes_the_repeats(tmp_path, stack):
    pid = "al-ack"
    critical = dataclasses.replace(CRITICAL, repeat_interval_s=600)
    cfg = alerts_cfg(tmp_path, stack, pid, [critical])
    write_drift(store(stack), pid)
    engine = AlertEngine(cfg)
    try:
        # Fired at 02:55 (DRIFT); unacknowledged it repeats every 10 min of event time: 03:05.
        live = ticks(engine, "2026-03-02T03:00", "2026-03-02T03:10", 10)
        fired = next(t for t in live if t.event == "firing")
        assert [(t.event, t.at_ns) for t in live] == [
            ("firing", ns("2026-03-02T02:55")),
            ("repeat", ns("2026-03-02T03:05")),
        ]
        # `greenfoundry alerts ack` writes the acknowledgement through its own AlertStore.
        other = AlertStore(cfg.alerts.state_dir)
        other.acknowledge(fired.alert_id, "Li Wei", ns("2026-03-02T03:11"))
        other.close()
        # No repeat after it (03:15 … 04:25 would have been); the resolution at 04:26 stays.
        rest = ticks(engine, "2026-03-02T03:20", "2026-03-02T05:00", 20)
        assert [(t.event, t.at_ns) for t in rest] == [("resolved", ns("2026-03-02T04:26"))]
    finally:
        engine.close()


# ------------------------------------------------------------------ the trend warning


def test_trend_warns_before_the_line_on_a_steady_rise(tmp_path, stack):
    pid = "al-trend"
    warn = rule("stack-warning", "stack", "warning", 0.7, 0.65, trend_to=0.8)
    cfg = alerts_cfg(tmp_path, stack, pid, [warn])
    assert (cfg.alerts.trend_window_s, cfg.alerts.trend_horizon_s) == (3 * 3600, 6 * 3600)
    st = store(stack)
    # 18 + 0.01 m mg/m³ in minute m from S = 00:00. The rolling hour at S + k min holds minutes
    # k - 60 … k - 1: its mean is 18 + 0.01 (k - 30.5) mg/m³, a line of 0.01 mg/m³ a minute =
    # 0.6 mg/m³/h = 0.02 C/h. From k = 240 the whole 3 h trend window (k - 180, k] lies on it,
    # so the least-squares slope is 0.02 C/h and the 6 h projection is value + 0.12 C:
    #   trend >= 0.8 C  ⇔  value >= 0.68 C = 20.4 mg/m³  ⇔  k >= 270.5 → fires at 04:31;
    #   the value itself reaches 0.7 C = 21 mg/m³ only at k >= 330.5, an hour later.
    # (Before k = 240 the window holds the first, partial hours, which lie above the line and
    # flatten the fit; the value is below 0.68 C there, so nothing fires earlier.)
    write_minutes(
        st, pid, "stack_conc_mg_m3", CONC_TAGS, "2026-03-03T00:00", 300, lambda m: 18 + 0.01 * m
    )
    engine = AlertEngine(cfg)
    try:
        # The newest reading is at 04:31:30, so 04:31 is the last minute due at 04:32:10.
        result = engine.tick(ns("2026-03-03T04:32") + 10 * S)
        assert history(result.transitions) == [
            ("stack-warning", OK, FIRING, ns("2026-03-03T04:31"), "firing")
        ]
        (fired,) = result.transitions
        # value = (18 + 0.01 × 240.5) / 30 = 20.405 / 30 (float sums of 60 minutes: 1e-9).
        assert fired.value == pytest.approx(20.405 / 30, abs=1e-9)
        assert fired.value < 0.7
    finally:
        engine.close()


# ------------------------------------------------------------------ a gap: STALE and the deadman


def test_gap_makes_stale_and_the_deadman_fires_without_resolving(tmp_path, stack):
    pid = "al-gap"
    deadman = rule(
        "deadman", "deadman", "warning", 900.0, 900.0, clear_for_s=300, match={"signal": "*"}
    )
    cfg = alerts_cfg(tmp_path, stack, pid, [CRITICAL, deadman])
    keys = sorted(f"{t.rule.id}|{t.key}" for t in cfg.alerts.targets(cfg))
    assert keys == [
        "deadman|stack_conc_mg_m3:melt-stack/particulate",
        "stack-critical|melt-stack/particulate",
    ]
    st = store(stack)
    # 31.5 mg/m³ (1.05 C) in minutes 0-119 after S = 00:00, nothing in minutes 120-149 (the
    # gap), again from minute 150 (R = 02:30) to 239; readings at 30 s past the minute.
    write_minutes(st, pid, "stack_conc_mg_m3", CONC_TAGS, "2026-03-04T00:00", 120, 31.5)
    write_minutes(st, pid, "stack_conc_mg_m3", CONC_TAGS, "2026-03-04T02:30", 90, 31.5)
    # Critical: the first valid rolling hour has 45 minutes, at 00:45: 1.05 C, fires at once.
    # The newest reading before the gap is 01:59:30; 15 min (stale_after) later, from 02:15
    # (age 930 s; 02:14 is 870 s) the value is None: STALE, with the "stale" event as the alert
    # was FIRING, and the deadman (seconds since the newest reading >= 900) fires at 02:15.
    # From 02:31 the newest reading is 30 s old: the deadman's run below 900 s starts and it
    # resolves 5 min later, 02:36. The rolling hour has 45 valid minutes again only at 03:15
    # (minutes 150-194): STALE → FIRING there, the same alert, never resolved in between.
    want = by_time(
        [
            ("stack-critical", OK, FIRING, ns("2026-03-04T00:45"), "firing"),
            ("stack-critical", FIRING, STALE, ns("2026-03-04T02:15"), "stale"),
            ("deadman", OK, FIRING, ns("2026-03-04T02:15"), "firing"),
            ("deadman", FIRING, OK, ns("2026-03-04T02:36"), "resolved"),
            ("stack-critical", STALE, FIRING, ns("2026-03-04T03:15"), None),
        ]
    )
    engine = AlertEngine(cfg)
    try:
        live = ticks(engine, "2026-03-04T02:00", "2026-03-04T04:00", 10)
        assert by_time(history(live)) == want
        ids = {t.alert_id for t in live if t.rule_id == "stack-critical"}
        assert len(ids) == 1  # one alert, STALE under it and back
        assert points(st, pid) == sorted(want)
        assert (
            by_time(history(engine.replay(ns("2026-03-04T00:00"), ns("2026-03-04T04:00")))) == want
        )
    finally:
        engine.close()


# ------------------------------------------------------------------ a furnace's running shift


def test_furnace_shift_crossing_its_corrected_tier1_limit_fires(tmp_path, stack):
    pid = "al-furnace"
    tier2 = rule(
        "furnace-tier2", "furnace", "warning", 1.0, 0.98, for_s=900, clear_for_s=1800,
        match={"furnace": "if1"}, tier=1,
    )  # fmt: skip
    cfg = alerts_cfg(tmp_path, stack, pid, [tier2])
    st = store(stack)
    # Shifts 00:00/08:00/16:00 Asia/Shanghai: the 08:00 shift of 2026-03-02 starts at 00:00 UTC.
    # Energy counter every whole minute from 23:50 UTC, 6 kWh a minute; one tap of 5 t at
    # 1520 °C at 00:30 UTC. At 00:00 + k min the shift's energy is 6 k kWh (the increments
    # ending in (00:00, t]) and, after the tap, its tonnes 5 t: 1.2 k kWh/t.
    write_minutes(
        st, pid, "furnace_energy_kwh", {"device": "if1"}, "2026-03-01T23:50", 220,
        lambda i: 6.0 * i, second=0,
    )  # fmt: skip
    tap = ns("2026-03-02T00:30")
    st.write_lines(
        [
            line("tap_iron_t", {"plant": pid, "area": "a", "device": "if1"}, {"value": 5.0}, tap),
            line(
                "tap_temp_c", {"plant": pid, "area": "a", "device": "if1"}, {"value": 1520.0}, tap
            ),
        ]
    )
    # Table C.1, row induction-ductile (coreless induction > 5 t, ductile pipe): tier 1 < 200
    # kWh/t. Note 2: DN80-300 is specified at 1500 °C; 1520 °C is 20 °C more, + 0.6 × 20 = +12.
    # Note 4: the site's mean air temperature 16.2 °C (the plant config; no ambient readings)
    # is 8.8 °C below 25 °C, + 0.4 × 8.8 = +3.52. Corrected tier-1 limit: 215.52 kWh/t.
    # 1.2 k >= 215.52 ⇔ k >= 179.6 → PENDING at 03:00 (216 kWh/t), FIRING 15 min later, 03:15
    # (1.2 × 195 = 234 kWh/t).
    limit = 200 + 0.6 * 20 + 0.4 * (25 - 16.2)
    engine = AlertEngine(cfg)
    try:
        result = engine.tick(ns("2026-03-02T03:20") + 10 * S)
        assert history(result.transitions) == [
            ("furnace-tier2", OK, PENDING, ns("2026-03-02T03:00"), None),
            ("furnace-tier2", PENDING, FIRING, ns("2026-03-02T03:15"), "firing"),
        ]
        pending, fired = result.transitions
        assert pending.value == pytest.approx(216 / limit, rel=1e-12)
        assert fired.value == pytest.approx(234 / limit, rel=1e-12)
        # The minute before: 1.2 × 179 = 214.8 kWh/t, below the limit (no earlier transition).
        assert 214.8 / limit < 1.0
    finally:
        engine.close()


def test_a_stopped_engine_ends_a_long_catch_up_after_the_chunk_in_progress(tmp_path, stack):
    # A service back after 13 hours catches up in chunks of 6 h (CHUNK_MIN). Its shutdown sets
    # the engine's stop: the tick ends after the first chunk, committed, and the next start
    # goes on from there. 15 mg/m³ (0.5 C) throughout: nothing fires.
    pid = "al-stop"
    cfg = alerts_cfg(tmp_path, stack, pid, [CRITICAL])
    write_minutes(
        store(stack), pid, "stack_conc_mg_m3", CONC_TAGS, "2026-03-01T00:00", 14 * 60, 15.0
    )
    start = ns("2026-03-01T01:00")
    with AlertStore(cfg.alerts.state_dir) as st:
        st.commit([], start)
    now = ns("2026-03-01T14:00") + 10 * S
    engine = AlertEngine(cfg)
    try:
        engine.stop = threading.Event()
        engine.stop.set()
        r = engine.tick(now)
        # The chunk reads to 07:00; its newest reading, 06:59:30, makes 06:59 its last step.
        assert (r.start_ns, r.end_ns) == (start, ns("2026-03-01T06:59"))
        assert "stopped" in r.reason
        with AlertStore(cfg.alerts.state_dir) as st:
            assert st.cursor_ns() == ns("2026-03-01T06:59")
        engine.stop.clear()
        # The last reading is at 13:59:30: the step 13:59 is the last one due.
        assert engine.tick(now).end_ns == ns("2026-03-01T13:59")
    finally:
        engine.close()


def test_a_catch_up_sends_only_the_newest_repeat_of_a_firing_alert(tmp_path, stack):
    # The service was down from 02:00 to 04:20 while the critical alert fired (DRIFT: at 02:55,
    # resolving at 04:26). Repeating every 10 min of event time, it repeats at 03:05, 03:15, …,
    # 04:15: eight repeats, all written to gf_alert. Sent at 04:20:10 are the firing and the
    # 04:15 repeat only: each earlier repeat's next one was due by then (at + 10 min + the
    # 10 s settle <= now), so it would tell nobody anything the next does not.
    pid = "al-repeat-catch-up"
    critical = dataclasses.replace(CRITICAL, repeat_interval_s=600)
    cfg = alerts_cfg(tmp_path, stack, pid, [critical])
    st = store(stack)
    write_drift(st, pid)
    with AlertStore(cfg.alerts.state_dir) as s:
        s.commit([], ns("2026-03-02T02:00"))
    journal = cfg.alerts.channels["journal"]
    dispatcher = Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir)
    engine = AlertEngine(cfg, dispatcher=dispatcher)
    try:
        r = engine.tick(ns("2026-03-02T04:20") + 10 * S)
        repeats = [ns(f"2026-03-02T{h:02d}:{m:02d}") for h, m in
                   [(3, 5), (3, 15), (3, 25), (3, 35), (3, 45), (3, 55), (4, 5), (4, 15)]]  # fmt: skip
        assert [(t.event, t.at_ns) for t in r.transitions] == [
            ("firing", ns("2026-03-02T02:55")),
            *[("repeat", at) for at in repeats],
        ]
        assert r.points == 9 and r.notifications == 2
        assert dispatcher.flush(10)
        sent = [json.loads(x) for x in journal.path.read_text(encoding="utf-8").splitlines()]
        assert [(n["event"], n["at_ns"]) for n in sent] == [
            ("firing", ns("2026-03-02T02:55")),
            ("repeat", ns("2026-03-02T04:15")),
        ]
        # Live, a repeat is sent as it falls due: 04:25, at the first tick with a reading after
        # it (04:25:30), 04:26:10.
        r = engine.tick(ns("2026-03-02T04:26") + 10 * S)
        assert [(t.event, t.at_ns) for t in r.transitions] == [("repeat", ns("2026-03-02T04:25"))]
        assert r.notifications == 1
    finally:
        engine.close()
        dispatcher.close()
