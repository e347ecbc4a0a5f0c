"""`alerts:` of the plant config: the rules and the channels (alerts/README.md).

Rules are data. `parse_alerts` validates the whole section once, at start, and names the key of
any problem (``alerts.rules[2].channels[0]``). The default rules are expanded from the plant's
own stacks (`Stack.limits_mg_m3`) and furnaces; a rule of `rules` with a default's id overrides
the keys it gives and keeps the others.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenfoundry.alerts.channels import TYPES
from greenfoundry.alerts.notification import SEVERITIES
from greenfoundry.errors import ConfigError
from greenfoundry.inputs import MISSING, Node, show

KINDS = ("stack", "furnace", "deadman")
RULE_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\Z")
RULE_ID_RULE = "lower-case letters, digits, '-' or '_' (at most 63 characters)"
_DURATION_RE = re.compile(r"(\d+)\s*([smhd])\Z")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_S = 30 * 86400
# The evaluation step on event time: a divisor of the minute, so every whole minute is a step
# and a step at 60 s is the minute cadence. 20 s keeps the worst reading-to-notification lag,
# step_s + settle_s + interval_s, at 40 s with the defaults (alerts/README.md, "Timing").
STEP_CHOICES_S = (10, 15, 20, 30, 60)
DEFAULT_STEP_S = 20
# The keys that say what a rule watches, per kind; "*" matches every item.
MATCH_KEYS = {"stack": ("stack", "pollutant"), "furnace": ("furnace",), "deadman": ("signal",)}
RULE_KEYS = (
    "id",
    "kind",
    "severity",
    "stack",
    "pollutant",
    "furnace",
    "signal",
    "above",
    "recover_below",
    "trend_to",
    "for",
    "clear_for",
    "repeat_interval",
    "channels",
    "enabled",
    "tier",
)


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str  # stack | furnace | deadman
    severity: str  # info | warning | alarm | critical
    match: dict[str, str]  # {"stack": "*", "pollutant": "so2"} | {"furnace": "*"} | {"signal": "*"}
    above: float  # condition: value >= above (stack: multiple of C; furnace: ÷ tier limit; s)
    recover_below: float  # FIRING clears once value < recover_below for clear_for_s
    trend_to: float | None  # also holds when the trend projects >= trend_to within the horizon
    for_s: int
    clear_for_s: int
    repeat_interval_s: int  # 0 = never
    channels: tuple[str, ...]
    enabled: bool = True
    # A furnace rule: the Table C.1 tier (1, 2 or 3) whose corrected limit the running shift's
    # kWh/t (kgce/t for a cupola) is divided by; None for the other kinds.
    tier: int | None = None


@dataclass(frozen=True)
class Target:
    """One rule applied to one item of the plant."""

    rule: Rule
    key: str  # "S1/so2", "IF1", "stack_conc_mg_m3:S1/so2"
    # {"stack": "S1", "pollutant": "so2"} | {"furnace": "IF1"} |
    # {"signal": "stack_conc_mg_m3", "stack": "S1", "pollutant": "so2"} (a deadman: the signal's
    # name and the tags that pick its series)
    item: dict[str, str]


@dataclass(frozen=True)
class AlertsConfig:
    state_dir: Path  # alerts.sqlite (alerts/state.py) and the dispatcher's outbox
    link: str | None  # a URL or a command to see more, in every notification
    interval_s: int  # the alert tick runs this often
    settle_s: int  # a step t is evaluated once now >= t + settle_s
    trend_horizon_s: int
    trend_window_s: int
    stale_after_s: int
    rules: tuple[Rule, ...]  # every rule, the defaults expanded and overridden, disabled ones too
    channels: dict[str, Any]  # name → Channel (built by alerts.channels.<type>.parse)
    step_s: int = DEFAULT_STEP_S  # the evaluation step on event time (STEP_CHOICES_S)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def targets(self, cfg) -> tuple[Target, ...]:
        """Every enabled rule × every item of the plant it matches, in the rules' order."""
        out = []
        for rule in self.rules:
            if rule.enabled:
                out.extend(Target(rule, key, item) for key, item in _items(rule, cfg, self.rules))
        return tuple(out)


# --------------------------------------------------------------------------- the items


def stack_items(cfg) -> list[tuple[str, dict[str, str]]]:
    """(key, item) for every stack and pollutant with a limit C, in the plant file's order."""
    return [
        (f"{s.id}/{p}", {"stack": s.id, "pollutant": p}) for s in cfg.stacks for p in s.limits_mg_m3
    ]


def furnace_items(cfg) -> list[tuple[str, dict[str, str]]]:
    return [(f.id, {"furnace": f.id}) for f in cfg.furnaces]


def signal_items(cfg, rules) -> list[tuple[str, dict[str, str]]]:
    """(key, item) of every signal the enabled stack and furnace rules read: a stack's
    concentration of the pollutant (and its O2 when the permit corrects to a reference O2), a
    furnace's energy counter (coke for a cupola). Tap weights are events, hours apart, and have
    no deadman: a shift without taps gives no furnace value, which the furnace rules show."""
    signals: dict[str, dict[str, str]] = {}
    o2 = cfg.metrics.o2_ref_pct if cfg.metrics is not None else {}
    for rule in rules:
        if not rule.enabled or rule.kind == "deadman":
            continue
        for _, item in _items(rule, cfg, rules):
            if rule.kind == "stack":
                stack, pollutant = item["stack"], item["pollutant"]
                signals[f"stack_conc_mg_m3:{stack}/{pollutant}"] = {
                    "signal": "stack_conc_mg_m3",
                    "stack": stack,
                    "pollutant": pollutant,
                }
                if stack in o2:
                    signals[f"stack_o2_pct:{stack}"] = {"signal": "stack_o2_pct", "stack": stack}
            else:
                furnace = next(f for f in cfg.furnaces if f.id == item["furnace"])
                name = "fuel_coke_kg" if furnace.kind == "cupola" else "furnace_energy_kwh"
                signals[f"{name}:{furnace.id}"] = {"signal": name, "furnace": furnace.id}
    return list(signals.items())


def _items(rule: Rule, cfg, rules) -> list[tuple[str, dict[str, str]]]:
    """The items `rule` matches; a deadman's are the signals the other `rules` read."""
    if rule.kind == "stack":
        items = stack_items(cfg)
    elif rule.kind == "furnace":
        items = furnace_items(cfg)
    else:
        return [
            (key, item)
            for key, item in signal_items(cfg, rules)
            if rule.match.get("signal", "*") in ("*", key)
        ]
    return [
        (key, item)
        for key, item in items
        if all(want == "*" or item[k] == want for k, want in rule.match.items())
    ]


# --------------------------------------------------------------------------- durations


def parse_duration(value: Any) -> int | None:
    """Seconds of "90s", "5m", "2h", "1d" or a whole number of seconds; None when not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if m:
            return int(m.group(1)) * _UNIT_S[m.group(2)]
    return None


def _duration(node: Node, name: str, default: Any = MISSING) -> Any:
    value = node.get(name, default)
    if value is default and default is not MISSING:
        return value
    seconds = parse_duration(value)
    if seconds is None or seconds > MAX_DURATION_S:
        node.refuse(
            name, value, 'a duration: "90s", "5m", "2h", "1d" or whole seconds, at most 30 days'
        )
    return seconds


# --------------------------------------------------------------------------- the defaults


def default_rules(stale_after_s: int, channels: tuple[str, ...]) -> tuple[Rule, ...]:
    """The default rules (alerts/README.md): stack hourly means at 0.7 C (or trending to 0.8 C),
    0.8 C and C; a furnace's running shift moving past its Table C.1 tier-1, tier-2 and tier-3
    limits; a deadman on every signal these read."""
    stack = {"stack": "*", "pollutant": "*"}
    furnace = {"furnace": "*"}
    return (
        Rule("stack-warning", "stack", "warning", stack, 0.7, 0.65, 0.8, 300, 900, 4 * 3600, channels),
        Rule("stack-alarm", "stack", "alarm", stack, 0.8, 0.75, None, 300, 900, 2 * 3600, channels),
        # At C the permit is exceeded: it fires at once.
        Rule("stack-critical", "stack", "critical", stack, 1.0, 0.95, None, 0, 900, 3600, channels),
        # The running shift's kWh/t moves a lot in its first tonnes: 15 minutes above the line
        # before it fires, 30 below before it clears.
        Rule("furnace-tier2", "furnace", "warning", furnace, 1.0, 0.98, None, 900, 1800, 8 * 3600,
             channels, tier=1),
        Rule("furnace-tier3", "furnace", "alarm", furnace, 1.0, 0.98, None, 900, 1800, 8 * 3600,
             channels, tier=2),
        Rule("furnace-beyond", "furnace", "critical", furnace, 1.0, 0.98, None, 900, 1800,
             4 * 3600, channels, tier=3),
        # The value is the seconds since the signal's newest reading: at stale_after it fires at
        # once; it clears once readings have come for five minutes.
        Rule(
            "deadman", "deadman", "warning", {"signal": "*"}, float(stale_after_s),
            float(stale_after_s), None, 0, 300, 4 * 3600, channels,
        ),
    )  # fmt: skip


# --------------------------------------------------------------------------- parsing


def parse_alerts(node: Node, cfg, base: Path, env: dict[str, str] | None) -> AlertsConfig:
    """Validate `alerts:` (every key optional; an absent section gives the defaults with one
    `log` channel). `cfg` is the plant config built so far (stacks, furnaces, metrics)."""
    a = node
    a.expect(
        optional=(
            "state_dir",
            "link",
            "interval_s",
            "settle_s",
            "step_s",
            "trend_horizon_h",
            "trend_window_h",
            "stale_after_min",
            "defaults",
            "default_channels",
            "channels",
            "rules",
        )
    )
    state_dir = (base / a.text("state_dir", "var/alerts")).resolve()
    link = a.text("link", None)
    interval_s = a.number("interval_s", 10, low=1, high=3600, integer=True, unit="s")
    settle_s = a.number("settle_s", 10, low=0, high=3600, integer=True, unit="s")
    step_s = a.choice("step_s", STEP_CHOICES_S, DEFAULT_STEP_S)
    horizon_h = a.number("trend_horizon_h", 6, above=0, high=168, unit="h")
    window_h = a.number("trend_window_h", 3, low=0.25, high=48, unit="h")
    stale_after_min = a.number("stale_after_min", 15, low=1, high=1440, unit="min")
    stale_after_s = round(stale_after_min * 60)
    with_defaults = a.boolean("defaults", True)

    channels = _channels(a, cfg, env)
    if with_defaults and not a.has("default_channels") and "log" not in channels:
        a.fail("missing; name the channels of the default rules", "default_channels")
    default_channels = _channel_names(a, "default_channels", channels, ["log"])
    if with_defaults and not default_channels:
        # As for any enabled rule: a rule notifies someone (disable one with enabled: false).
        a.fail("an empty list is not allowed; the default rules need a channel", "default_channels")

    rules: dict[str, Rule] = {}
    if with_defaults:
        rules = {r.id: r for r in default_rules(stale_after_s, default_channels)}
    given: set[str] = set()
    for where, item in a.items("rules"):
        r = a.node(item, where)
        rule_id = r.text("id", pattern=RULE_ID_RE, expected=RULE_ID_RULE)
        if rule_id in given:
            r.fail(f"{rule_id!r} is used twice; expected each rule id once", "id")
        given.add(rule_id)
        rules[rule_id] = _rule(r, rule_id, rules.get(rule_id), cfg, channels)

    alerts = AlertsConfig(
        state_dir=state_dir,
        link=link,
        interval_s=interval_s,
        settle_s=settle_s,
        trend_horizon_s=round(horizon_h * 3600),
        trend_window_s=round(window_h * 3600),
        stale_after_s=stale_after_s,
        rules=tuple(rules.values()),
        channels=channels,
        step_s=step_s,
    )
    _check_signals(a, alerts, cfg)
    a.done()
    return alerts


def _channels(a: Node, cfg, env: dict[str, str] | None) -> dict[str, Any]:
    """`alerts.channels`: name → channel, each built by its type's module. Without the key, one
    channel `log` of type log (a plant without an alerts section still sees its alerts in the
    service's log)."""
    raw = a.get("channels", None)
    if raw is None:
        raw = {"log": {"type": "log"}}
        where = a.key("channels")
        c = a.node(raw, where)
    else:
        c = a.child("channels")
    out: dict[str, Any] = {}
    for name in list(c.data):
        if not isinstance(name, str) or not RULE_ID_RE.match(name):
            c.fail(f"not a channel name; expected {RULE_ID_RULE}", str(name))
        ch = c.child(name)
        kind = ch.choice("type", TYPES)
        try:
            module = importlib.import_module(f"greenfoundry.alerts.channels.{kind}")
        except ModuleNotFoundError:
            ch.fail(f"the {kind} channel is not available in this build", "type")
        if not hasattr(module, "parse"):
            ch.fail(f"the {kind} channel is not available in this build", "type")
        out[name] = module.parse(ch, cfg, env, name)
    c.seen.update(c.data)
    c.done()
    return out


def _channel_names(node: Node, name: str, channels: dict[str, Any], default: Any) -> tuple:
    value = node.get(name, None)
    if value is None:
        value = default
    elif not isinstance(value, list):
        node.refuse(name, value, "a list of channel names")
    for i, ch in enumerate(value):
        if not isinstance(ch, str) or ch not in channels:
            known = ", ".join(channels) or "none configured"
            node.fail(
                f"{show(ch)} is not a channel of alerts.channels; expected one of {known}",
                at=f"{node.key(name)}[{i}]",
            )
    if len(set(value)) != len(value):
        node.refuse(name, value, "each channel once")
    return tuple(value)


def _rule(r: Node, rule_id: str, base: Rule | None, cfg, channels: dict[str, Any]) -> Rule:
    """One rule of `alerts.rules`: a new one, or the override of a default with its id."""
    for key in r.data:
        if key not in RULE_KEYS:
            r.fail(f"unknown key; allowed here: {', '.join(RULE_KEYS)}", str(key))
    # An override cannot change what a default watches; a new rule says it.
    kind = r.choice("kind", KINDS) if base is None else r.choice("kind", (base.kind,), base.kind)
    for key in r.data:
        if key in {k for ks in MATCH_KEYS.values() for k in ks} - set(MATCH_KEYS[kind]):
            r.fail(f"not a key of a {kind} rule; its items are chosen by "
                   f"{', '.join(MATCH_KEYS[kind])}", str(key))  # fmt: skip
    if kind != "stack" and "trend_to" in r.data:
        r.fail("a trend line is for stack rules only", "trend_to")
    if kind != "furnace" and "tier" in r.data:
        r.fail("the Table C.1 tier is for furnace rules only", "tier")

    def keep(attr: str) -> Any:
        """An override keeps the default's value of a key it does not give; a new rule must
        give the key."""
        return getattr(base, attr) if base is not None else MISSING

    match = _match(r, kind, base, cfg)
    severity = r.choice("severity", SEVERITIES, keep("severity"))
    unit = {"stack": "× C", "furnace": "× the tier limit", "deadman": "s"}[kind]
    if kind == "deadman":
        above = _duration(r, "above", keep("above"))
        recover_below = _duration(r, "recover_below", above if base is None else base.recover_below)
        above, recover_below = float(above), float(recover_below)
        if above <= 0:
            # An age of 0 s or more always holds: such a deadman would fire at once, for ever.
            r.refuse("above", r.data.get("above"), "a duration above 0 s")
    else:
        above = float(r.number("above", keep("above"), above=0, high=100, unit=unit))
        recover_below = float(r.number("recover_below", keep("recover_below"), low=0, unit=unit))
    if recover_below > above:
        r.refuse(
            "recover_below",
            recover_below,
            f"a value at or below above ({above:g}): FIRING clears once the value falls under it",
        )
    if r.data.get("trend_to") is False:  # an override turns the default's trend line off
        r.seen.add("trend_to")
        trend_to = None
    else:
        trend_to = r.number(
            "trend_to", base.trend_to if base else None, above=0, high=100, unit=unit
        )
    if trend_to is not None and trend_to < above:
        r.refuse("trend_to", trend_to, f"a value at or above above ({above:g})")
    rule = Rule(
        id=rule_id,
        kind=kind,
        severity=severity,
        match=match,
        above=above,
        recover_below=recover_below,
        trend_to=None if trend_to is None else float(trend_to),
        for_s=_duration(r, "for", base.for_s if base else 0),
        clear_for_s=_duration(r, "clear_for", base.clear_for_s if base else 0),
        repeat_interval_s=_duration(r, "repeat_interval", base.repeat_interval_s if base else 0),
        channels=_channel_names(r, "channels", channels, list(base.channels) if base else []),
        enabled=r.boolean("enabled", base.enabled if base else True),
        tier=r.choice("tier", (1, 2, 3), keep("tier")) if kind == "furnace" else None,
    )
    if not rule.channels and rule.enabled:
        r.fail("missing; an enabled rule needs at least one channel", "channels")
    r.done()
    return rule


def _match(r: Node, kind: str, base: Rule | None, cfg) -> dict[str, str]:
    """The rule's items: each match key a known id of the plant, or "*"."""
    match = dict(base.match) if base is not None else {k: "*" for k in MATCH_KEYS[kind]}
    stacks = {s.id: s for s in cfg.stacks}
    for key in MATCH_KEYS[kind]:
        value = r.text(key, match[key])
        if key == "stack":
            allowed = set(stacks)
        elif key == "pollutant":
            chosen = match.get("stack")
            pool = [stacks[chosen]] if chosen in stacks else list(stacks.values())
            allowed = {p for s in pool for p in s.limits_mg_m3}
        elif key == "furnace":
            allowed = {f.id for f in cfg.furnaces}
        else:
            allowed = None  # deadman signals: checked once every rule is known (_check_signals)
        if value != "*" and allowed is not None and value not in allowed:
            expected = ", ".join(sorted(allowed)) or "none in this plant"
            what = "a pollutant with a limit C of the stack" if key == "pollutant" else f"a {key}"
            r.refuse(key, value, f'{what} of this plant ({expected}) or "*"')
        match[key] = value
    return match


def _check_signals(a: Node, alerts: AlertsConfig, cfg) -> None:
    """A deadman rule naming one signal must name one the other rules read."""
    keys = {key for key, _ in signal_items(cfg, alerts.rules)}
    for i, item in enumerate(a.data.get("rules") or []):
        signal = item.get("signal") if isinstance(item, dict) else None
        if signal not in (None, "*") and signal not in keys:
            expected = ", ".join(sorted(keys)) or "none: no stack or furnace rule is enabled"
            raise ConfigError(
                f"{a.file + ': ' if a.file else ''}{a.key('rules')}[{i}].signal: {show(signal)} "
                f'is not allowed; expected a signal the rules read ({expected}) or "*"'
            )
