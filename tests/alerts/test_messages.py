"""The notifications' words (alerts/messages.py). Every expected text is written by hand from
the numbers of the test: limits, values and times are chosen so the arithmetic is easy to check
(it is done in the comments)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from greenfoundry import inputs, plant
from greenfoundry.alerts import machine as m
from greenfoundry.alerts.messages import duration, notification

REPO = Path(__file__).resolve().parents[2]
DEMO, _ = inputs.read(REPO / "config/plants/demo-dip/plant.yaml", "the demo plant")
CONFIG = REPO / "config/plants/demo-dip/plant.yaml"


def utc_ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()) * m.NS


# 01:36 UTC is 09:36 in Asia/Shanghai (UTC+8, no daylight saving).
AT = utc_ns("2026-12-01T01:36:00")
SINCE = utc_ns("2026-12-01T01:14:00")  # 09:14 local
ID = "stack-warning-0123456789"


@pytest.fixture(scope="module")
def cfg():
    """The demo plant with one stack s1 whose SO₂ limit is 50 mg/m³."""
    raw = copy.deepcopy(DEMO)
    raw["stacks"] = [{"id": "s1", "source": "melting", "pollutants": {"so2": {"limit_mg_m3": 50}}}]
    raw["alerts"]["rules"] = [r for r in raw["alerts"]["rules"] if r["id"] == "stack-warning"]
    raw["alerts"]["rules"][0]["for"] = "5m"
    return plant.parse(raw, base=CONFIG.parent, env=None, path=CONFIG)


def target(cfg, rule_id, key):
    return next(t for t in cfg.alerts.targets(cfg) if t.rule.id == rule_id and t.key == key)


def stack_sample(value, slope=None, **more):
    shown = {"mg_m3": value * 50, "limit_mg_m3": 50.0, "multiple_of_c": value,
             "valid_minutes": 47, "slope_per_h": slope, "trend_horizon_h": 6.0, **more}  # fmt: skip
    trend = None if slope is None else value + slope * 6
    return m.Sample(AT, value, trend, shown)


def note(cfg, rule_id, key, event, from_state, to_state, value, sample, link=None, **state):
    t = target(cfg, rule_id, key)
    tr = m.Transition(key, rule_id, ID, from_state, to_state, AT, value, event, SINCE)
    st = m.AlertState(key, rule_id, to_state, alert_id=ID, pending_since_ns=SINCE, **state)
    return notification(cfg, t, tr, sample, st, link)


def test_a_stack_warning_in_a_persons_words(cfg):
    # 0.72 C of a 50 mg/m³ limit is 36.0 mg/m³; the warning line 0.7 C is 35.0 mg/m³.
    # Trend: (0.8 − 0.72) / 0.03 C/h = 2.667 h = 2 h 40 min.
    n = note(cfg, "stack-warning", "s1/so2", "firing", "PENDING", "FIRING", 0.72,
             stack_sample(0.72, slope=0.03))  # fmt: skip
    assert n.subject == (
        "Warning — stack s1, SO₂: hourly mean 0.72 C (36.0 of 50 mg/m³), above the 0.7 C "
        "warning line since 09:14"
    )
    config = str(CONFIG.resolve())
    assert n.text == (
        f"{n.subject}\n"
        "\n"
        "Plant: Demo ductile-iron pipe plant (demo-dip)\n"
        "What: the rolling hourly mean of SO₂ (二氧化硫) at stack s1, as a multiple of its "
        "limit C = 50 mg/m³\n"
        "Value: 0.72 C = 36.0 mg/m³ (47 valid minutes)\n"
        "Limit: 0.7 C = 35.0 mg/m³\n"
        "Since: 2026-12-01 09:14 (Asia/Shanghai, UTC+08:00)\n"
        "At: 2026-12-01 09:36 (Asia/Shanghai, UTC+08:00)\n"
        "Trend: rising 0.03 C/h; reaches 0.8 C in about 2 h 40 min\n"
        "Rule: stack-warning (warning): fires at ≥ 0.7 C (or a trend reaching 0.8 C within "
        "6 h) held 5 min; clears under 0.65 C held 15 min; repeats every 2 h until "
        "acknowledged\n"
        f"Alert: {ID}\n"
        f"Acknowledge: greenfoundry alerts ack {ID} --by NAME --config {config}\n"
        f"More: greenfoundry alerts list --config {config}\n"
    )
    assert (n.id, n.plant, n.event, n.severity, n.rule) == (
        ID, "demo-dip", "firing", "warning", "stack-warning",
    )  # fmt: skip
    assert (n.value, n.limit, n.unit, n.at_ns, n.since_ns) == (0.72, 0.7, "C", AT, SINCE)
    assert n.trend == "rising 0.03 C/h; reaches 0.8 C in about 2 h 40 min"
    assert n.details["stack"] == "s1" and n.details["pollutant"] == "so2"
    assert n.details["ack_command"] == f"greenfoundry alerts ack {ID} --by NAME --config {config}"


def test_the_markdown_for_the_robots(cfg):
    n = note(cfg, "stack-warning", "s1/so2", "firing", "PENDING", "FIRING", 0.72,
             stack_sample(0.72), link="https://grafana.example/d/alerts")  # fmt: skip
    lines = n.markdown.splitlines()
    assert lines[0] == f"**{n.subject}**" and lines[1] == ""
    assert "> **Value:** 0.72 C = 36.0 mg/m³ (47 valid minutes)" in lines
    assert (
        "> **More:** [https://grafana.example/d/alerts](https://grafana.example/d/alerts)" in lines
    )
    assert any(
        x.startswith(f"> **Acknowledge:** `greenfoundry alerts ack {ID} --by NAME") for x in lines
    )
    assert n.link == "https://grafana.example/d/alerts"
    assert n.text.endswith("More: https://grafana.example/d/alerts\n")


def test_a_warning_by_the_trend_alone(cfg):
    # 0.62 C rising 0.04 C/h: in 6 h 0.62 + 0.24 = 0.86 ≥ 0.8 → the trend holds; it reaches 0.8
    # in (0.8 − 0.62) / 0.04 = 4.5 h.
    n = note(cfg, "stack-warning", "s1/so2", "firing", "PENDING", "FIRING", 0.62,
             stack_sample(0.62, slope=0.04))  # fmt: skip
    assert n.subject == (
        "Warning — stack s1, SO₂: hourly mean 0.62 C (31.0 of 50 mg/m³), on course for 0.8 C "
        "within 6 h since 09:14"
    )
    assert n.trend == "rising 0.04 C/h; reaches 0.8 C in about 4 h 30 min"


def test_a_firing_alert_between_its_lines_says_when_it_clears(cfg):
    n = note(cfg, "stack-warning", "s1/so2", "repeat", "FIRING", "FIRING", 0.68,
             stack_sample(0.68, slope=-0.02))  # fmt: skip
    assert n.subject == (
        "Still firing: warning — stack s1, SO₂: hourly mean 0.68 C (34.0 of 50 mg/m³); the "
        "alert at the 0.7 C warning line since 09:14 clears once under 0.65 C for 15 min"
    )
    assert n.trend == "falling 0.02 C/h"


def test_resolved_stale_and_acknowledged(cfg):
    resolved = note(cfg, "stack-warning", "s1/so2", "resolved", "FIRING", "OK", 0.6,
                    stack_sample(0.6))  # fmt: skip
    assert resolved.subject == (
        "Resolved: warning — stack s1, SO₂: hourly mean 0.60 C (30.0 of 50 mg/m³), under "
        "0.65 C for 15 min; the alert had held since 09:14"
    )
    assert "Acknowledge" not in resolved.text and resolved.event == "resolved"
    stale = note(cfg, "stack-warning", "s1/so2", "stale", "FIRING", "STALE", None,
                 m.Sample(AT, None, None, {"seconds_since_reading": 960.0}))  # fmt: skip
    assert stale.subject == (
        "No data: warning — stack s1, SO₂: no hourly mean for 16 min; the alert at the 0.7 C "
        "warning line since 09:14 stays firing until data shows it back under the line"
    )
    # An ack made by the CLI has no sample: the limit comes from the plant config.
    acked = note(cfg, "stack-warning", "s1/so2", "acknowledged", "FIRING", "FIRING", 0.74,
                 None, acked_by="Li Wei")  # fmt: skip
    assert acked.subject == (
        "Acknowledged by Li Wei: warning — stack s1, SO₂: hourly mean 0.74 C (37.0 of 50 "
        "mg/m³), above the 0.7 C warning line since 09:14"
    )
    assert acked.details["acked_by"] == "Li Wei"


def test_transitions_without_an_event_have_a_subject_too(cfg):
    pending = note(cfg, "stack-warning", "s1/so2", None, "OK", "PENDING", 0.71,
                   stack_sample(0.71))  # fmt: skip
    assert pending.subject.startswith("Pending: warning — stack s1, SO₂: hourly mean 0.71 C")
    assert pending.event == ""
    back = note(cfg, "stack-warning", "s1/so2", None, "PENDING", "OK", 0.5, stack_sample(0.5))
    assert back.subject == (
        "Back under the line: warning — stack s1, SO₂: hourly mean 0.50 C (25.0 of 50 mg/m³), "
        "under the 0.7 C warning line"
    )


def test_the_critical_line_is_the_limit_and_an_older_since_shows_its_date(cfg):
    t = target(cfg, "stack-critical", "s1/so2")
    since = utc_ns("2026-11-30T15:50:00")  # 23:50 local on 30 November
    tr = m.Transition("s1/so2", "stack-critical", ID, "OK", "FIRING", AT, 1.04, "firing", since)
    st = m.AlertState("s1/so2", "stack-critical", m.FIRING, alert_id=ID)
    n = notification(cfg, t, tr, stack_sample(1.04), st, None)
    # 1.04 × 50 = 52.0 mg/m³.
    assert n.subject == (
        "Critical — stack s1, SO₂: hourly mean 1.04 C (52.0 of 50 mg/m³), above the limit C "
        "(50 mg/m³) since 2026-11-30 23:50"
    )


def test_a_furnace_moving_into_tier_2(cfg):
    t = target(cfg, "furnace-tier2", "if1")
    shift_start = utc_ns("2026-12-01T00:00:00")  # the 08:00 local shift
    shown = {"value_per_t": 612.0, "unit_per_t": "kWh/t", "limit_per_t": 600.0,
             "iron_t": 18.4, "shift_start_ns": shift_start}  # fmt: skip
    # 612 / 600 = 1.02.
    tr = m.Transition("if1", "furnace-tier2", "f-1", "PENDING", "FIRING", AT, 1.02, "firing", SINCE)
    st = m.AlertState("if1", "furnace-tier2", m.FIRING, alert_id="f-1")
    n = notification(cfg, t, tr, m.Sample(AT, 1.02, None, shown), st, None)
    assert n.subject == (
        "Warning — furnace if1: the running shift at 612 kWh/t, past the Table C.1 tier-1 "
        "limit of 600 kWh/t since 09:14 (into tier 2)"
    )
    assert "Shift: the running shift, from 08:00\n" in n.text
    assert "Value: 612 kWh/t, 18.4 t tapped\n" in n.text
    assert "Of the limit: 1.020 × the tier-1 limit\n" in n.text
    assert (n.value, n.limit, n.unit) == (612.0, 600.0, "kWh/t")


def test_a_deadman(cfg):
    t = target(cfg, "deadman", "furnace_energy_kwh:if1")
    # 1020 s = 17 min before 09:36 is 09:19.
    tr = m.Transition(t.key, "deadman", "d-1", "OK", "FIRING", AT, 1020.0, "firing", AT)
    st = m.AlertState(t.key, "deadman", m.FIRING, alert_id="d-1")
    n = notification(cfg, t, tr, m.Sample(AT, 1020.0, None, {"seconds_since_reading": 1020.0}),
                     st, None)  # fmt: skip
    assert n.subject == (
        "Warning — furnace if1 energy meter: no reading for 17 min, the last one at 09:19"
    )
    assert "Limit: 15 min without a reading\n" in n.text
    assert (n.value, n.limit, n.unit) == (1020.0, 900.0, "s")
    # Resolved: it fired at 15 min of silence, so the silence began about 15 min before SINCE
    # (09:14 − 15 min = 08:59).
    tr = dataclasses.replace(tr, event="resolved", from_state="FIRING", to_state="OK",
                             since_ns=SINCE, value=20.0)  # fmt: skip
    n = notification(cfg, t, tr, m.Sample(AT, 20.0, None, {"seconds_since_reading": 20.0}),
                     st, None)  # fmt: skip
    assert n.subject == (
        "Resolved: warning — furnace if1 energy meter: readings are back (silent from about 08:59)"
    )


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0 s"), (45, "45 s"), (60, "1 min"), (1020, "17 min"), (3599, "1 h"), (59.4, "59 s"), (59.6, "1 min"),
        (3600, "1 h"), (9600, "2 h 40 min"), (9720, "2 h 40 min"), (9750, "2 h 45 min"),
        (86399, "1 d"), (86400, "1 d"), (97200, "1 d 3 h"), (-5, "0 s"),
    ],
)  # fmt: skip
def test_durations_in_words(seconds, text):
    # 9720 s = 162 min → nearest 5 min is 160 → 2 h 40 min; 9750 s = 162.5 min → 165.
    assert duration(seconds) == text
