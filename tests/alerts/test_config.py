"""`alerts:` of the plant config (alerts/config.py), parsed through the real plant parser from
the demo plant's file, each test changing one thing. The demo plant has two stacks
(melt-stack: particulate; coat-stack: particulate, nmhc) and two induction furnaces (if1, if2)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

from greenfoundry import inputs, plant
from greenfoundry.alerts.config import parse_duration
from greenfoundry.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEMO, _ = inputs.read(REPO / "config/plants/demo-dip/plant.yaml", "the demo plant")


def load(tmp_path, alerts=None, drop_alerts=False, **top):
    raw = copy.deepcopy(DEMO)
    if drop_alerts:
        raw.pop("alerts", None)
    elif alerts is not None:
        raw["alerts"] = alerts
    raw.update(top)
    return plant.parse(raw, base=tmp_path, env=None, path=tmp_path / "plant.yaml")


def refused(tmp_path, alerts, match):
    with pytest.raises(ConfigError, match=match) as exc:
        load(tmp_path, alerts)
    return str(exc.value)


def minimal(**alerts):
    return {"channels": {"log": {"type": "log"}}, **alerts}


def rule_of(cfg, rule_id):
    return cfg.alerts.rule(rule_id)


def test_the_demo_block_parses_as_documented(tmp_path):
    cfg = load(tmp_path)
    a = cfg.alerts
    assert a.state_dir == (tmp_path / "var/alerts").resolve()
    assert (a.interval_s, a.settle_s) == (10, 10)
    # 6 h, 3 h and 15 min in seconds, by hand.
    assert (a.trend_horizon_s, a.trend_window_s, a.stale_after_s) == (21600, 10800, 900)
    assert sorted(a.channels) == ["journal", "log"]
    assert a.channels["log"].type == "log" and a.channels["journal"].type == "jsonl"
    warning = rule_of(cfg, "stack-warning")
    # The demo's override: for 10m, repeat 2h; the rest is the default's.
    assert (warning.for_s, warning.repeat_interval_s) == (600, 7200)
    assert (warning.above, warning.recover_below, warning.trend_to) == (0.7, 0.65, 0.8)
    assert warning.clear_for_s == 900 and warning.channels == ("log", "journal")
    early = rule_of(cfg, "early-notice")
    assert early.match == {"stack": "*", "pollutant": "*"} and early.severity == "info"
    assert (early.above, early.recover_below) == (0.5, 0.45)
    assert (early.for_s, early.clear_for_s, early.channels) == (900, 1800, ("journal",))
    assert early.repeat_interval_s == 0


def test_without_an_alerts_section_the_defaults_run_on_a_log_channel(tmp_path):
    cfg = load(tmp_path, drop_alerts=True)
    a = cfg.alerts
    assert list(a.channels) == ["log"]
    assert [r.id for r in a.rules] == [
        "stack-warning",
        "stack-alarm",
        "stack-critical",
        "furnace-tier2",
        "furnace-tier3",
        "furnace-beyond",
        "deadman",
    ]
    assert all(r.channels == ("log",) for r in a.rules)
    by_id = {r.id: r for r in a.rules}
    # The numbers: warning 0.7 C or trending to 0.8 C, alarm 0.8 C, critical C.
    assert (by_id["stack-warning"].above, by_id["stack-warning"].trend_to) == (0.7, 0.8)
    assert by_id["stack-alarm"].above == 0.8 and by_id["stack-critical"].above == 1.0
    assert [by_id[i].tier for i in ("furnace-tier2", "furnace-tier3", "furnace-beyond")] == [
        1,
        2,
        3,
    ]
    assert by_id["deadman"].above == 900.0  # stale_after_min 15 × 60


def test_the_defaults_expand_from_the_plants_stacks_and_furnaces(tmp_path):
    cfg = load(tmp_path, drop_alerts=True)
    keys = [(t.rule.id, t.key) for t in cfg.alerts.targets(cfg)]
    stacks = ["melt-stack/particulate", "coat-stack/particulate", "coat-stack/nmhc"]
    expected = [(r, k) for r in ("stack-warning", "stack-alarm", "stack-critical") for k in stacks]
    expected += [(r, f) for r in ("furnace-tier2", "furnace-tier3", "furnace-beyond")
                 for f in ("if1", "if2")]  # fmt: skip
    expected += [("deadman", f"stack_conc_mg_m3:{k}") for k in stacks]
    expected += [("deadman", "furnace_energy_kwh:if1"), ("deadman", "furnace_energy_kwh:if2")]
    assert keys == expected
    target = cfg.alerts.targets(cfg)[2]
    assert target.item == {"stack": "coat-stack", "pollutant": "nmhc"}
    dead = cfg.alerts.targets(cfg)[-1]
    assert dead.item == {"signal": "furnace_energy_kwh", "furnace": "if2"}


def test_a_stack_corrected_to_reference_o2_has_a_deadman_on_its_o2(tmp_path):
    raw_metrics = {**DEMO["metrics"], "o2_ref_pct": {"melt-stack": 18}}
    cfg = load(tmp_path, minimal(), metrics=raw_metrics)
    keys = [t.key for t in cfg.alerts.targets(cfg) if t.rule.id == "deadman"]
    assert "stack_o2_pct:melt-stack" in keys and "stack_o2_pct:coat-stack" not in keys


def test_a_cupola_has_a_deadman_on_its_coke():
    # A gray-pipe plant with a cupola: the deadman reads its coke counter, not an energy meter.
    raw = copy.deepcopy(DEMO)
    raw["plant"].update({"product": "gray", "iron_source": "blast_furnace_or_cupola"})
    raw["furnaces"] = [{"id": "cu1", "kind": "cupola", "capacity": {"value": 10, "unit": "t/h"}}]
    raw["alerts"] = minimal()
    cfg = plant.parse(raw, base=Path("/tmp"), env=None)
    assert "fuel_coke_kg:cu1" in [t.key for t in cfg.alerts.targets(cfg)]


def test_defaults_false_leaves_only_the_plants_rules(tmp_path):
    rule = {"id": "nmhc", "kind": "stack", "severity": "alarm", "pollutant": "nmhc",
            "above": 0.9, "recover_below": 0.8, "channels": ["log"]}  # fmt: skip
    cfg = load(tmp_path, minimal(defaults=False, rules=[rule]))
    assert [r.id for r in cfg.alerts.rules] == ["nmhc"]
    (target,) = cfg.alerts.targets(cfg)
    assert target.key == "coat-stack/nmhc"
    r = cfg.alerts.rules[0]
    # A new rule's durations default to 0 (at once), and it never repeats.
    assert (r.for_s, r.clear_for_s, r.repeat_interval_s, r.trend_to) == (0, 0, 0, None)


def test_an_override_can_disable_a_default_or_drop_its_trend_line(tmp_path):
    rules = [{"id": "deadman", "enabled": False}, {"id": "stack-warning", "trend_to": False}]
    cfg = load(tmp_path, minimal(rules=rules))
    assert rule_of(cfg, "deadman").enabled is False
    assert rule_of(cfg, "stack-warning").trend_to is None
    assert not [t for t in cfg.alerts.targets(cfg) if t.rule.id == "deadman"]


def test_a_deadman_rule_for_one_signal(tmp_path):
    rule = {"id": "dust-dead", "kind": "deadman", "severity": "alarm",
            "signal": "stack_conc_mg_m3:melt-stack/particulate", "above": "5m",
            "channels": ["log"]}  # fmt: skip
    cfg = load(tmp_path, minimal(rules=[rule]))
    r = rule_of(cfg, "dust-dead")
    assert (r.above, r.recover_below) == (300.0, 300.0)
    assert [t.key for t in cfg.alerts.targets(cfg) if t.rule.id == "dust-dead"] == [
        "stack_conc_mg_m3:melt-stack/particulate"
    ]


def test_the_default_channels_and_a_rules_channels(tmp_path):
    alerts = minimal(rules=[{"id": "stack-alarm", "channels": ["log"]}])
    alerts["channels"]["book"] = {"type": "jsonl", "path": "book.jsonl"}
    alerts["default_channels"] = ["book"]
    cfg = load(tmp_path, alerts)
    assert rule_of(cfg, "stack-warning").channels == ("book",)
    assert rule_of(cfg, "stack-alarm").channels == ("log",)


@pytest.mark.parametrize(
    "text, seconds",
    [("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), (0, 0), (45, 45), (" 3m", 180)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5", "5 min", "1.5h", "-5m", -1, 1.5, True, "h", None, "5M"])
def test_not_durations(text):
    assert parse_duration(text) is None


# Each refusal names the key; `plant.yaml: ` starts every message (the file is named).
REFUSALS = [
    ({"colour": "red"}, r"plant.yaml: alerts.colour: unknown key; allowed here: channels, "),
    ({"interval_s": 0}, r"alerts.interval_s: 0 is not allowed; expected between 1 and 3600 s"),
    ({"settle_s": "10s"}, r"alerts.settle_s: '10s' is not allowed; expected a whole number"),
    ({"stale_after_min": 0}, r"alerts.stale_after_min: 0 is not allowed"),
    ({"trend_horizon_h": 0}, r"alerts.trend_horizon_h: 0 is not allowed; expected a number above"),
    ({"defaults": "yes"}, r"alerts.defaults: 'yes' is not allowed; expected true or false"),
    ({"channels": {"log": {"type": "fax"}}}, r"alerts.channels.log.type: 'fax' is not allowed"),
    ({"channels": {"Log": {"type": "log"}}}, r"alerts.channels.Log: not a channel name"),
    ({"channels": {"log": "log"}}, r"alerts.channels.log: 'log' is not allowed; expected a map"),
    ({"channels": {"log": {"type": "log", "level": 3}}}, r"alerts.channels.log.level: unknown"),
    (
        {"channels": {"j": {"type": "jsonl"}}},
        r"alerts.default_channels: missing; name the channels of the default rules",
    ),
    (
        {"default_channels": ["log", "pager"]},
        r"alerts.default_channels\[1\]: 'pager' is not a channel of alerts.channels; "
        r"expected one of log",
    ),
    ({"default_channels": []}, r"alerts.default_channels: an empty list is not allowed"),
    ({"default_channels": "log"}, r"alerts.default_channels: 'log' is not allowed; expected a l"),
    ({"default_channels": ["log", "log"]}, r"alerts.default_channels: .* each channel once"),
    ({"rules": {"id": "x"}}, r"alerts.rules: .* expected a list"),
    ({"rules": ["x"]}, r"alerts.rules\[0\]: 'x' is not allowed; expected a mapping"),
]


@pytest.mark.parametrize("alerts, match", REFUSALS)
def test_a_bad_section_is_refused_naming_the_key(tmp_path, alerts, match):
    alerts = {**minimal(), **alerts}
    refused(tmp_path, alerts, match)


def new(**kw):
    rule = {"id": "mine", "kind": "stack", "severity": "warning", "above": 0.6,
            "recover_below": 0.5, "channels": ["log"]}  # fmt: skip
    rule.update(kw)
    return {k: v for k, v in rule.items() if v is not None}


RULE_REFUSALS = [
    # The third rule is the bad one: its position is in the key path.
    (new(channels=["log", "pager"]), r"alerts.rules\[2\].channels\[1\]: 'pager' is not a chan"),
    (new(channels=[]), r"alerts.rules\[2\].channels: missing; an enabled rule needs"),
    (new(stack="stack-9"), r"alerts.rules\[2\].stack: 'stack-9' is not allowed; expected a stack "
     r"of this plant \(coat-stack, melt-stack\) or \"\*\""),
    (new(stack="melt-stack", pollutant="nmhc"), r"alerts.rules\[2\].pollutant: 'nmhc' is not "
     r"allowed; expected a pollutant with a limit C of the stack of this plant \(particulate\)"),
    (new(pollutant="so2"), r"alerts.rules\[2\].pollutant: 'so2' .* \(nmhc, particulate\)"),
    (new(kind="furnace", furnace="if9", tier=1), r"alerts.rules\[2\].furnace: 'if9' is not "
     r"allowed; expected a furnace of this plant \(if1, if2\)"),
    (new(kind="furnace"), r"alerts.rules\[2\].tier: missing"),
    (new(kind="furnace", tier=4), r"alerts.rules\[2\].tier: 4 is not allowed; expected one of 1"),
    (new(furnace="if1"), r"alerts.rules\[2\].furnace: not a key of a stack rule"),
    (new(kind="furnace", tier=1, trend_to=1.2), r"alerts.rules\[2\].trend_to: a trend line is "),
    (new(tier=1), r"alerts.rules\[2\].tier: the Table C.1 tier is for furnace rules only"),
    (new(kind="deadman", signal="stack_conc_mg_m3:melt-stack/so2", above="15m",
         recover_below=None),
     r"alerts.rules\[2\].signal: 'stack_conc_mg_m3:melt-stack/so2' is not allowed; expected a "
     r"signal the rules read \(furnace_energy_kwh:if1, "),
    (new(kind="deadman", signal="*", above=0, recover_below=None),
     r"alerts.rules\[2\].above: 0 is not allowed; expected a duration above 0 s"),
    (new(recover_below=0.7), r"alerts.rules\[2\].recover_below: 0.7 is not allowed; expected a "
     r"value at or below above \(0.6\)"),
    (new(trend_to=0.5), r"alerts.rules\[2\].trend_to: 0.5 is not allowed; expected a value at or"),
    (new(above=-1), r"alerts.rules\[2\].above: -1 is not allowed; expected a number above 0"),
    (new(above=None), r"alerts.rules\[2\].above: missing"),
    (new(recover_below=None), r"alerts.rules\[2\].recover_below: missing"),
    (new(severity="panic"), r"alerts.rules\[2\].severity: 'panic' is not allowed; expected one "
     r"of info, warning, alarm, critical"),
    (new(kind="gauge"), r"alerts.rules\[2\].kind: 'gauge' is not allowed"),
    (new(id="Mine"), r"alerts.rules\[2\].id: 'Mine' is not allowed; expected lower-case"),
    (new(id="stack-critical", kind="furnace"), r"alerts.rules\[2\].kind: 'furnace' is not allowed; "
     r"expected stack"),
    (new(id="ok-1"), r"alerts.rules\[2\].id: 'ok-1' is used twice"),
    (new(colour="red"), r"alerts.rules\[2\].colour: unknown key; allowed here: id, kind"),
    (new(**{"for": "5 minutes"}), r"alerts.rules\[2\].for: '5 minutes' is not allowed; expected "
     r"a duration: \"90s\", \"5m\", \"2h\", \"1d\" or whole seconds"),
    (new(clear_for=-60), r"alerts.rules\[2\].clear_for: -60 is not allowed; expected a duration"),
    (new(repeat_interval="31d"), r"alerts.rules\[2\].repeat_interval: '31d' .* at most 30 days"),
    (new(enabled="no"), r"alerts.rules\[2\].enabled: 'no' is not allowed; expected true or false"),
]  # fmt: skip


@pytest.mark.parametrize("rule, match", RULE_REFUSALS)
def test_a_bad_rule_is_refused_naming_the_key(tmp_path, rule, match):
    first = {"id": "ok-1", "kind": "stack", "severity": "info", "above": 0.5,
             "recover_below": 0.4, "channels": ["log"]}  # fmt: skip
    second = {"id": "stack-alarm", "for": "1m"}
    refused(tmp_path, minimal(rules=[first, second, rule]), match)


def test_an_override_of_a_default_given_twice_is_refused(tmp_path):
    rules = [{"id": "stack-alarm", "for": "1m"}, {"id": "stack-alarm", "for": "2m"}]
    refused(tmp_path, minimal(rules=rules), r"alerts.rules\[1\].id: 'stack-alarm' is used twice")


def test_a_channel_type_without_its_module_is_refused_naming_the_key(tmp_path, monkeypatch):
    # A type of the contract whose folder is not in this build (None in sys.modules makes its
    # import fail as a missing module does) is refused at start with the key, rather than
    # failing at the first notification.
    monkeypatch.setitem(sys.modules, "greenfoundry.alerts.channels.dingtalk", None)
    refused(
        tmp_path,
        minimal(channels={"log": {"type": "log"}, "d": {"type": "dingtalk"}}),
        r"alerts.channels.d.type: the dingtalk channel is not available in this build",
    )
