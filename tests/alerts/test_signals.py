"""Samples from the readings (alerts/signals.py): the pure helpers, then the readings of a real
InfluxDB (the session's `stack`) written by hand. Every expected number is worked out in the
comments from the readings written; the example plant's melt-stack particulate has C = 30 mg/m³.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from greenfoundry.alerts.config import Rule
from greenfoundry.alerts.signals import (
    LOOKBACK_NS,
    SignalReader,
    deadman_series,
    least_squares_slope_per_s,
    rolling_windows,
    tier_index,
)
from greenfoundry.errors import ConfigError
from greenfoundry.store import line
from tests.metrics.engine_helpers import ns
from tests.plant import plant_config, store

S = 10**9
MIN = 60 * S
STACK = {"stack": "melt-stack", "pollutant": "particulate"}
CONC_TAGS = {"device": "melt-stack", "pollutant": "particulate"}


def rule(rule_id, kind, above=1.0, recover_below=0.9, match=None, tier=None) -> Rule:
    return Rule(
        rule_id,
        kind,
        "warning",
        match if match is not None else (dict(STACK) if kind == "stack" else {}),
        above,
        recover_below,
        None,
        0,
        0,
        0,
        ("log",),
        tier=tier,
    )


# ------------------------------------------------------------------ pure helpers


def test_least_squares_slope_by_hand():
    # x = 0, 60, 120 s; y = 1, 2, 4: mean x 60, mean y 7/3; Sxx = 2 × 60² = 7200;
    # Sxy = (-60)(1 - 7/3) + 60 (4 - 7/3) = 80 + 100 = 180; slope = 180 / 7200 = 0.025 per s.
    t = np.array([0, 60, 120], dtype=np.int64) * S
    assert least_squares_slope_per_s(t, np.array([1.0, 2.0, 4.0])) == pytest.approx(0.025)
    assert least_squares_slope_per_s(t[:1], np.array([1.0])) is None


def test_rolling_windows_are_the_hour_before_each_minute():
    (w,) = rolling_windows([ns("2026-03-02T02:00")], "Asia/Shanghai")
    assert (w.start.value, w.end.value) == (ns("2026-03-02T01:00"), ns("2026-03-02T02:00"))
    assert w.minutes == 60


def test_tier_of_a_furnace_rule():
    assert tier_index(rule("x", "furnace", tier=2)) == 2
    assert tier_index(rule("furnace-beyond", "furnace")) == 3
    with pytest.raises(ConfigError, match="tier"):
        tier_index(rule("my-furnace-rule", "furnace"))


def test_deadman_series_from_the_item():
    item = {"signal": "stack_conc_mg_m3", "stack": "S1", "pollutant": "so2"}
    assert deadman_series(item) == ("stack_conc_mg_m3", {"device": "S1", "pollutant": "so2"})
    assert deadman_series({"signal": "furnace_energy_kwh", "furnace": "if1"}) == (
        "furnace_energy_kwh",
        {"device": "if1"},
    )
    with pytest.raises(ConfigError):
        deadman_series({"signal": "stack_o2_pct"})


# ------------------------------------------------------------------ from InfluxDB


def reader_for(tmp_path, stack, plant_id, rules, **metrics):
    cfg = plant_config(tmp_path, stack, plant_id)
    if metrics:
        cfg = dataclasses.replace(cfg, metrics=dataclasses.replace(cfg.metrics, **metrics))
    # These tests state the minute step (alerts.step_s 60); tests/alerts/test_step.py the others.
    acfg = dataclasses.replace(cfg.alerts, rules=tuple(rules), step_s=60)
    cfg = dataclasses.replace(cfg, alerts=acfg)
    return SignalReader(cfg, store(stack), acfg, acfg.targets(cfg))


def write_minutes(st, plant_id, measurement, tags, start, minutes, value, second=30):
    """One reading at `second` s past each of `minutes` whole minutes from `start`; value(i)
    (None: no reading that minute) or a constant."""
    t0 = ns(start)
    lines = []
    for i in range(minutes):
        v = value(i) if callable(value) else value
        if v is not None:
            lines.append(
                line(
                    measurement,
                    {"plant": plant_id, "area": "a", **tags},
                    {"value": float(v)},
                    t0 + i * MIN + second * S,
                )
            )
    st.write_lines(lines)


def samples_at(reader, start, end):
    a, b = ns(start), ns(end)
    reader.read(reader.first_read_from(a), b + 1)
    return reader.samples(a, b)


def test_calibration_gives_no_sample_and_is_not_stale(tmp_path, stack):
    pid = "sg-calib"
    reader = reader_for(tmp_path, stack, pid, [rule("r", "stack")])
    st = store(stack)
    write_minutes(st, pid, "stack_conc_mg_m3", CONC_TAGS, "2026-03-05T00:00", 180, 20.0)
    # Analyser status: 0 (normal) at 00:00, 1 (calibration) at 01:00, 0 again at 01:20: the
    # minutes 01:00 … 01:19 are flagged (20 minutes).
    st.write_lines(
        [
            line(
                "stack_analyser_status",
                {"plant": pid, "area": "a", "device": "melt-stack"},
                {"value": code},
                ns(t),
            )
            for t, code in (
                ("2026-03-05T00:00", 0.0),
                ("2026-03-05T01:00", 1.0),
                ("2026-03-05T01:20", 0.0),
            )
        ]
    )
    got = samples_at(reader, "2026-03-05T01:00", "2026-03-05T02:30")["r|melt-stack/particulate"]
    at = {s.at_ns: s for s in got}
    # The hour [t - 60, t) holds 60 minutes less the flagged ones in it: at 01:15, 15 flagged
    # (01:00-01:14), 45 valid: a sample; from 01:16 to 02:04 fewer than 45 (40 at the least):
    # no sample; at 02:05 the hour [01:05, 02:05) has 15 flagged again: a sample. None STALE.
    minutes = [ns("2026-03-05T01:00") + i * MIN for i in range(1, 91)]
    want = [t for t in minutes if t <= ns("2026-03-05T01:15") or t >= ns("2026-03-05T02:05")]
    assert sorted(at) == want
    assert all(s.value == pytest.approx(20.0 / 30) for s in got)
    assert at[ns("2026-03-05T01:15")].shown["valid_minutes"] == 45


def test_o2_correction_of_the_hourly_mean(tmp_path, stack):
    pid = "sg-o2"
    reader = reader_for(tmp_path, stack, pid, [rule("r", "stack")], o2_ref_pct={"melt-stack": 11.0})
    st = store(stack)
    write_minutes(st, pid, "stack_conc_mg_m3", CONC_TAGS, "2026-03-05T00:00", 90, 10.0)
    write_minutes(st, pid, "stack_o2_pct", {"device": "melt-stack"}, "2026-03-05T00:00", 90, 16.0)
    got = samples_at(reader, "2026-03-05T01:00", "2026-03-05T01:10")["r|melt-stack/particulate"]
    # 10 mg/m³ measured at 16 % O2, referred to 11 %: 10 × (21 - 11) / (21 - 16) = 20 mg/m³,
    # i.e. 20 / 30 C, every minute.
    assert len(got) == 10
    assert all(s.value == pytest.approx(20.0 / 30) for s in got)
    assert got[0].shown["mg_m3"] == pytest.approx(20.0)


def test_reads_are_incremental_and_see_late_data_within_the_hour(tmp_path, stack):
    pid = "sg-incr"
    reader = reader_for(tmp_path, stack, pid, [rule("r", "stack")])
    st = store(stack)
    # 12 mg/m³ every minute from 00:00 to 02:00, except minute 01:30, which comes late.
    write_minutes(
        st, pid, "stack_conc_mg_m3", CONC_TAGS, "2026-03-06T00:00", 120,
        lambda i: None if i == 90 else 12.0,
    )  # fmt: skip
    first = samples_at(reader, "2026-03-06T01:20", "2026-03-06T01:40")["r|melt-stack/particulate"]
    assert len(first) == 20
    # One request per measurement (stack_conc_mg_m3, stack_analyser_status) for a read.
    assert reader.requests == 2
    # The reading of 01:30 arrives late, at 42 mg/m³. The next read goes back an hour before
    # the cursor (01:40), so the minutes still to evaluate see it: the hour [00:41, 01:41)
    # holds 59 minutes at 12 and one at 42: (59 × 12 + 42) / 60 = 12.5 mg/m³ = 12.5 / 30 C.
    st.write_lines(
        [
            line(
                "stack_conc_mg_m3",
                {"plant": pid, "area": "a", **CONC_TAGS},
                {"value": 42.0},
                ns("2026-03-06T01:30:30"),
            )
        ]
    )
    reader.trim(reader.keep_from(ns("2026-03-06T01:40")))
    reader.read(reader.keep_from(ns("2026-03-06T01:40")), ns("2026-03-06T01:45") + 1)
    assert reader.requests == 4
    got = reader.samples(ns("2026-03-06T01:40"), ns("2026-03-06T01:45"))
    (s,) = [x for x in got["r|melt-stack/particulate"] if x.at_ns == ns("2026-03-06T01:41")]
    assert s.value == pytest.approx(12.5 / 30)
    # A minute already evaluated keeps the value it had (the trend's history): 01:40's hour
    # [00:40, 01:40) had 59 readings at 12 mg/m³ then, 12 / 30 C.
    rolling = reader.rolling[("melt-stack", "particulate")]
    assert rolling[ns("2026-03-06T01:40")] == pytest.approx(12.0 / 30)


def test_furnace_no_sample_before_the_shift_has_a_tap(tmp_path, stack):
    pid = "sg-shift"
    reader = reader_for(
        tmp_path, stack, pid, [rule("t", "furnace", match={"furnace": "if1"}, tier=1)]
    )
    st = store(stack)
    # Energy 6 kWh a minute from 23:00 UTC; a tap of 5 t at 23:30 UTC (the shift that began
    # 16:00 Asia/Shanghai = 08:00 UTC) and one of 5 t at 00:40 UTC, in the shift of 08:00
    # local = 00:00 UTC. No tapping temperature: note 2 is not applied.
    write_minutes(
        st, pid, "furnace_energy_kwh", {"device": "if1"}, "2026-03-06T23:00", 120,
        lambda i: 6.0 * i, second=0,
    )  # fmt: skip
    for t in ("2026-03-06T23:30", "2026-03-07T00:40"):
        st.write_lines(
            [
                line(
                    "tap_iron_t",
                    {"plant": pid, "area": "a", "device": "if1"},
                    {"value": 5.0},
                    ns(t),
                )
            ]
        )
    got = samples_at(reader, "2026-03-06T23:50", "2026-03-07T00:50")["t|if1"]
    at = {s.at_ns: s for s in got}
    # The sample at 00:00 stands for the readings before it: the old shift, with its tap. From
    # 00:01 the new shift has no tap until 00:40, which counts from 00:41 ([start, t) holds it).
    assert sorted(at) == [
        *(ns("2026-03-06T23:50") + i * MIN for i in range(1, 11)),
        *(ns("2026-03-07T00:40") + i * MIN for i in range(1, 11)),
    ]
    # At 00:41: the increments ending in (00:00, 00:41] are 41 × 6 = 246 kWh, over 5 t: 49.2
    # kWh/t. Tier-1 limit of induction-ductile, 200 kWh/t, note 4 at 16.2 °C (the plant
    # config): + 0.4 × (25 - 16.2) = 203.52 kWh/t.
    s = at[ns("2026-03-07T00:41")]
    assert s.shown["value_per_t"] == pytest.approx(49.2)
    assert s.shown["limit_per_t"] == pytest.approx(203.52)
    assert s.value == pytest.approx(49.2 / 203.52)
    # At 00:50, nine minutes on with no tap between: 50 × 6 = 300 kWh / 5 t = 60 kWh/t.
    s = at[ns("2026-03-07T00:50")]
    assert s.shown["value_per_t"] == pytest.approx(60.0, rel=1e-12)
    assert s.value == pytest.approx(60.0 / 203.52, rel=1e-12)


def test_deadman_of_a_signal_never_seen(tmp_path, stack):
    pid = "sg-never"
    reader = reader_for(
        tmp_path,
        stack,
        pid,
        [rule("r", "stack"), rule("dm", "deadman", 900.0, 900.0, match={"signal": "*"})],
    )
    got = samples_at(reader, "2026-03-08T00:00", "2026-03-08T00:02")
    # No reading in the whole look-back: the stack is STALE (None) and the deadman counts
    # from the look-back's start, at least 31 days.
    assert [s.value for s in got["r|melt-stack/particulate"]] == [None, None]
    ages = [s.value for s in got["dm|stack_conc_mg_m3:melt-stack/particulate"]]
    assert len(ages) == 2 and min(ages) >= LOOKBACK_NS / S


def test_a_value_that_is_not_a_number_is_left_out_and_counted(tmp_path, stack):
    pid = "sg-bad"
    reader = reader_for(tmp_path, stack, pid, [rule("r", "stack")])
    st = store(stack)
    # A string `value` (a field-type conflict InfluxDB accepts in a shard of its own, here in
    # 2031, a time no other test writes to): three such readings, no number at all.
    st.write_lines(
        [
            line("stack_conc_mg_m3", {"plant": pid, "area": "a", **CONC_TAGS}, {"value": "n/a"}, t)
            for t in (ns("2031-01-06T00:00"), ns("2031-01-06T00:01"), ns("2031-01-06T00:02"))
        ]
    )
    got = samples_at(reader, "2031-01-06T00:00", "2031-01-06T00:05")["r|melt-stack/particulate"]
    assert reader.dropped == {"stack_conc_mg_m3": 3}
    # Nothing usable was ever read: STALE, not a crash.
    assert [s.value for s in got] == [None] * 5
