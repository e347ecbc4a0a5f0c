"""The alerts' notifications in a person's words (alerts/README.md, "Messages").

`notification` turns one transition of one target into a `Notification`: a subject line that
says what crossed what and since when, a plain text with the value, the limit, the trend, the
plant-local time, the command (or configured link) to see more and the command to acknowledge,
and the same in Markdown for the group robots (WeCom, DingTalk). It reads the sample's `shown`
facts as alerts/signals.py fills them:

* stack: ``mg_m3``, ``limit_mg_m3``, ``multiple_of_c``, ``valid_minutes``, ``slope_per_h`` (C per
  hour), ``trend_horizon_h``;
* furnace: ``value_per_t``, ``unit_per_t`` (kWh/t or kgce/t), ``limit_per_t`` (the corrected
  limit of the rule's tier), ``tier_limit``, ``iron_t``, ``shift``, ``shift_start_ns``;
* deadman and a sample without data: ``seconds_since_reading``.

Every one is optional: without them (an acknowledgement made by the CLI has no sample) the text
says less, never something false. Times are the plant's local time (`plant.timezone`).
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from pathlib import Path
from typing import Any

from greenfoundry.alerts.machine import NS, AlertState, Sample, Transition
from greenfoundry.alerts.notification import Notification

SEVERITY_WORDS = {"info": "Info", "warning": "Warning", "alarm": "Alarm", "critical": "Critical"}
# The pollutants as a person writes them, with the usual Chinese name beside them (as Chinese
# permits and monitoring reports write them; not checked against a standard's table).
POLLUTANT_NAMES = {
    "particulate": ("particulate matter", "颗粒物"),
    "so2": ("SO₂", "二氧化硫"),
    "nox": ("NOx", "氮氧化物"),
    "nmhc": ("NMHC", "非甲烷总烃"),
    "benzene": ("benzene", "苯"),
    "voc": ("VOCs", "挥发性有机物"),
    "co": ("CO", "一氧化碳"),
    "fluoride": ("fluoride", "氟化物"),
    "lead": ("lead", "铅及其化合物"),
}
SIGNAL_WORDS = {
    "stack_conc_mg_m3": "concentration",
    "stack_o2_pct": "flue-gas O₂",
    "furnace_energy_kwh": "energy meter",
    "fuel_coke_kg": "coke charge counter",
}


def notification(
    cfg,
    target,
    transition: Transition,
    sample: Sample | None,
    state: AlertState,
    link: str | None,
) -> Notification:
    """The notification of `transition` (of `target`, whose state is now `state`): subject,
    text and markdown in a person's words; `link` is the configured one, else the list
    command of this plant's config."""
    rule = target.rule
    tz = zoneinfo.ZoneInfo(cfg.plant.timezone)
    shown: dict[str, Any] = dict(sample.shown) if sample is not None else {}
    value = transition.value if transition.value is not None else state.last_value
    config = _config_path(cfg)
    link = link or f"greenfoundry alerts list --config {config}"
    words = _Words(cfg, target, transition, state, shown, value, tz)
    words.trend_value = sample.trend_value if sample is not None else None
    if rule.kind == "stack":
        facts = words.stack()
    elif rule.kind == "furnace":
        facts = words.furnace()
    else:
        facts = words.deadman()

    lines = [("Plant", f"{cfg.plant.name or cfg.plant.id} ({cfg.plant.id})")]
    lines += facts["lines"]
    if transition.since_ns is not None:
        lines.append(("Since", words.when(transition.since_ns)))
    lines.append(("At", words.when(transition.at_ns)))
    if facts.get("trend"):
        lines.append(("Trend", facts["trend"]))
    lines.append(("Rule", words.rule_line()))
    if transition.alert_id:
        lines.append(("Alert", transition.alert_id))
    ack = None
    if transition.alert_id and transition.event in ("firing", "repeat", "stale"):
        ack = f"greenfoundry alerts ack {transition.alert_id} --by NAME --config {config}"
        lines.append(("Acknowledge", ack))
    lines.append(("More", link))

    subject = facts["subject"]
    text = subject + "\n\n" + "\n".join(f"{k}: {v}" for k, v in lines) + "\n"
    markdown = _markdown(facts, lines, link, ack)
    return Notification(
        id=transition.alert_id or f"{rule.id}:{target.key}",
        plant=cfg.plant.id,
        plant_name=cfg.plant.name or cfg.plant.id,
        event=transition.event or "",
        severity=rule.severity,
        rule=rule.id,
        subject=subject,
        text=text,
        markdown=markdown,
        at_ns=transition.at_ns,
        since_ns=transition.since_ns,
        value=facts.get("value"),
        limit=facts.get("limit"),
        unit=facts.get("unit", ""),
        trend=facts.get("trend"),
        link=link,
        details={
            "kind": rule.kind,
            "target": target.key,
            **target.item,
            "from_state": transition.from_state,
            "to_state": transition.to_state,
            **({"acked_by": state.acked_by} if state.acked_by else {}),
            **({"ack_command": ack} if ack else {}),
            **{k: v for k, v in shown.items() if _plain(v)},
        },
    )


class _Words:
    """The pieces of one message; each kind composes its own subject from them."""

    def __init__(self, cfg, target, tr: Transition, state, shown, value, tz):
        self.cfg, self.target, self.rule, self.tr = cfg, target, target.rule, tr
        self.state, self.shown, self.value, self.tz = state, shown, value, tz
        self.sev = SEVERITY_WORDS[self.rule.severity]
        self.trend_value: float | None = None

    # -- time --------------------------------------------------------------------------------

    def local(self, ns: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ns / NS, dt.UTC).astimezone(self.tz)

    def hhmm(self, ns: int) -> str:
        """The local time of day, with the date when it is not the day of the transition."""
        t, at = self.local(ns), self.local(self.tr.at_ns)
        return t.strftime("%H:%M") if t.date() == at.date() else t.strftime("%Y-%m-%d %H:%M")

    def when(self, ns: int) -> str:
        """ "2026-12-01 09:14 (Asia/Shanghai, UTC+08:00)"."""
        t = self.local(ns)
        off = t.strftime("%z")
        return f"{t:%Y-%m-%d %H:%M} ({self.cfg.plant.timezone}, UTC{off[:3]}:{off[3:]})"

    def head(self, what: str) -> str:
        """ "Warning — stack S1, SO₂", with what happened in front where it is not a firing (a
        transition without an event still has a subject: the `message` of its gf_alert point)."""
        tr, sev = self.tr, self.sev.lower()
        prefix = {
            "resolved": "Resolved",
            "repeat": "Still firing",
            "acknowledged": f"Acknowledged by {self.state.acked_by}",
            "stale": "No data",
        }.get(tr.event or "")
        if prefix is None and tr.event is None:
            if tr.to_state == "STALE":
                prefix = "No data"
            elif tr.from_state == "STALE":
                prefix = {"FIRING": "Data back, still firing", "PENDING": "Data back, pending"}.get(
                    tr.to_state, "Data back"
                )
            elif tr.to_state == "PENDING":
                prefix = "Pending"
            elif tr.to_state == "OK":
                prefix = "Back under the line"
        return f"{prefix}: {sev} — {what}" if prefix else f"{self.sev} — {what}"

    def back_ok(self) -> bool:
        """An end without a firing (PENDING → OK, or STALE → OK over a non-firing state)."""
        return self.tr.to_state == "OK" and self.tr.event != "resolved"

    def rule_line(self) -> str:
        """ "stack-warning (warning): fires at ≥ 0.7 C (or a trend reaching 0.8 C within 6 h)
        held 5 min; clears under 0.65 C held 15 min; repeats every 4 h until acknowledged"."""
        r = self.rule
        held = f"held {duration(r.for_s)}" if r.for_s else "at once"
        if r.kind == "deadman":
            fires = f"fires after {duration(r.above)} without a reading, {held}"
            clears = f"clears once readings have come for {duration(r.clear_for_s)}"
        else:
            unit = " C" if r.kind == "stack" else " × the limit"
            trend = ""
            if r.trend_to is not None:
                trend = f" (or a trend reaching {r.trend_to:g}{unit} within "
                trend += f"{duration(self.horizon_s())})"
            fires = f"fires at ≥ {r.above:g}{unit}{trend} {held}"
            clears = f"clears under {r.recover_below:g}{unit} held {duration(r.clear_for_s)}"
        text = f"{r.id} ({r.severity}): {fires}; {clears}"
        if r.repeat_interval_s:
            text += f"; repeats every {duration(r.repeat_interval_s)} until acknowledged"
        return text

    def since(self) -> str:
        return f" since {self.hhmm(self.tr.since_ns)}" if self.tr.since_ns is not None else ""

    def age(self) -> float | None:
        age = self.shown.get("seconds_since_reading")
        return float(age) if isinstance(age, int | float) else None

    # -- the kinds ---------------------------------------------------------------------------

    def stack(self) -> dict[str, Any]:
        item, r, v = self.target.item, self.rule, self.value
        sid, pol = item["stack"], item["pollutant"]
        name, name_zh = POLLUTANT_NAMES.get(pol, (pol, None))
        limit = self.shown.get("limit_mg_m3")
        if limit is None:
            stack = next((s for s in self.cfg.stacks if s.id == sid), None)
            limit = stack.limits_mg_m3.get(pol) if stack is not None else None
        what = f"stack {sid}, {name}"
        line = f"the {r.above:g} C {r.severity} line"
        if r.above == 1.0:
            line = f"the limit C ({limit:g} mg/m³)" if limit else "the limit C"
        mean = "hourly mean"
        if v is not None:
            mg = self.shown.get("mg_m3", v * limit if limit else None)
            of = f" ({mg:.1f} of {limit:g} mg/m³)" if mg is not None and limit else ""
            mean = f"hourly mean {v:.2f} C{of}"
        event = self.tr.event
        if event == "resolved":
            subject = (
                f"{self.head(what)}: {mean}, under {r.recover_below:g} C for "
                f"{duration(r.clear_for_s)}; the alert had held{self.since()}"
            )
        elif event == "stale":
            age = self.age()
            gap = f" for {duration(age)}" if age is not None else ""
            subject = (
                f"{self.head(what)}: no hourly mean{gap}; the alert at {line}{self.since()} "
                "stays firing until data shows it back under the line"
            )
        elif self.tr.to_state == "STALE":
            age = self.age()
            subject = f"{self.head(what)}: no hourly mean" + (
                f" for {duration(age)}" if age is not None else ""
            )
        elif self.back_ok():
            subject = f"{self.head(what)}: {mean}, under {line}"
        elif (
            v is not None
            and v < r.above
            and r.trend_to is not None
            and self.trend_value is not None
            and self.trend_value >= r.trend_to
        ):
            subject = (
                f"{self.head(what)}: {mean}, on course for {r.trend_to:g} C within "
                f"{duration(self.horizon_s())}{self.since()}"
            )
        elif v is not None and v < r.above:
            # Firing, and between the lines: hysteresis keeps it firing until it clears.
            subject = (
                f"{self.head(what)}: {mean}; the alert at {line}{self.since()} clears once "
                f"under {r.recover_below:g} C for {duration(r.clear_for_s)}"
            )
        elif v is None:
            subject = f"{self.head(what)}: above {line}{self.since()}"
        else:
            subject = f"{self.head(what)}: {mean}, above {line}{self.since()}"
        lines = [
            (
                "What",
                f"the rolling hourly mean of {name}"
                + (f" ({name_zh})" if name_zh else "")
                + f" at stack {sid}, as a multiple of its limit C"
                + (f" = {limit:g} mg/m³" if limit else ""),
            )
        ]
        if v is not None:
            valid = self.shown.get("valid_minutes")
            of = f" = {v * limit:.1f} mg/m³" if limit else ""
            lines.append(
                ("Value", f"{v:.2f} C{of}" + (f" ({valid} valid minutes)" if valid else ""))
            )
        lines.append(
            ("Limit", f"{r.above:g} C" + (f" = {r.above * limit:.1f} mg/m³" if limit else ""))
        )
        return {
            "subject": subject,
            "headline": what,
            "lines": lines,
            "trend": self.stack_trend(),
            "value": v,
            "limit": r.above,
            "unit": "C",
        }

    def horizon_s(self) -> float:
        h = self.shown.get("trend_horizon_h")
        if isinstance(h, int | float):
            return float(h) * 3600
        alerts = getattr(self.cfg, "alerts", None)
        return float(alerts.trend_horizon_s) if alerts is not None else 6 * 3600.0

    def stack_trend(self) -> str | None:
        """ "rising 0.03 C/h; reaches 0.8 C in about 2 h 40 min", from the fitted slope."""
        slope, v = self.shown.get("slope_per_h"), self.value
        if not isinstance(slope, int | float) or v is None or not math.isfinite(slope):
            return None
        if abs(slope) < 0.005:
            return "steady (under 0.005 C/h)"
        word = "rising" if slope > 0 else "falling"
        text = f"{word} {_slope(abs(slope))} C/h"
        target = self.rule.trend_to if self.rule.trend_to is not None else None
        if target is None:
            target = next((x for x in (self.rule.above, 1.0) if x > v), None)
        if slope > 0 and target is not None and v < target:
            text += f"; reaches {target:g} C in about {duration((target - v) / slope * 3600)}"
        return text

    def furnace(self) -> dict[str, Any]:
        fid, r, v, s = self.target.item["furnace"], self.rule, self.value, self.shown
        tier = getattr(r, "tier", None) or s.get("tier_limit")
        unit = s.get("unit_per_t") or "kWh/t"
        per_t, limit = s.get("value_per_t"), s.get("limit_per_t")
        what = f"furnace {fid}"
        into = {1: "into tier 2", 2: "into tier 3", 3: "beyond tier 3"}.get(tier, "")
        limit_words = f"the Table C.1 tier-{tier} limit" + (
            f" of {_per_t(limit)} {unit}" if limit else ""
        )
        if per_t is not None:
            now = f"the running shift at {_per_t(per_t)} {unit}"
        elif v is not None:
            now = f"the running shift at {v:.2f} × its tier-{tier} limit"
        else:
            now = "the running shift"
        event = self.tr.event
        if event == "resolved":
            subject = (
                f"{self.head(what)}: {now}, back under {r.recover_below:g} × {limit_words} "
                f"for {duration(r.clear_for_s)}"
            )
        elif self.tr.to_state == "STALE":
            age = self.age()
            gap = f" for {duration(age)}" if age is not None else ""
            subject = f"{self.head(what)}: no energy reading{gap}"
            if event == "stale":
                subject += f"; the alert past {limit_words}{self.since()} stays firing"
        elif self.back_ok():
            subject = f"{self.head(what)}: {now}, under {limit_words}"
        elif v is not None and v < r.above:
            subject = (
                f"{self.head(what)}: {now}; the alert past {limit_words}{self.since()} clears "
                f"once under {r.recover_below:g} × the limit for {duration(r.clear_for_s)}"
            )
        else:
            subject = f"{self.head(what)}: {now}, past {limit_words}{self.since()}"
            subject += f" ({into})" if into else ""
        lines = []
        shift, start = s.get("shift"), s.get("shift_start_ns")
        if isinstance(start, int):
            lines.append(("Shift", f"the running shift, from {self.hhmm(start)}"))
        elif shift:
            lines.append(("Shift", f"the running shift ({shift})"))
        if per_t is not None:
            iron = s.get("iron_t")
            tapped = f", {iron:.1f} t tapped" if isinstance(iron, int | float) else ""
            lines.append(("Value", f"{_per_t(per_t)} {unit}{tapped}"))
        if v is not None:
            lines.append(("Of the limit", f"{v:.3f} × the tier-{tier} limit"))
        if limit is not None:
            lines.append(("Limit", f"{_per_t(limit)} {unit} (Table C.1 tier {tier}, corrected)"))
        return {
            "subject": subject,
            "headline": what,
            "lines": lines,
            "value": per_t if per_t is not None else v,
            "limit": limit if per_t is not None else r.above,
            "unit": unit if per_t is not None else "× the limit",
        }

    def deadman(self) -> dict[str, Any]:
        item, r = self.target.item, self.rule
        what = describe_signal(self.target.key, item)
        age = self.age()
        if age is None and self.value is not None:
            age = self.value
        event = self.tr.event
        if event == "resolved" or self.back_ok():
            silent = ""
            if self.tr.since_ns is not None:
                silent = f" (silent from about {self.hhmm(self.tr.since_ns - int(r.above * NS))})"
            subject = f"{self.head(what)}: readings are back{silent}"
        else:
            gap = f" for {duration(age)}" if age is not None else ""
            last = ""
            if age is not None:
                last = f", the last one at {self.hhmm(self.tr.at_ns - int(age * NS))}"
            subject = f"{self.head(what)}: no reading{gap}{last}"
        lines = [("Signal", f"{self.target.key}: {what}")]
        if age is not None:
            lines.append(("Silent", duration(age)))
        lines.append(("Limit", f"{duration(r.above)} without a reading"))
        return {
            "subject": subject,
            "headline": what,
            "lines": lines,
            "value": age,
            "limit": r.above,
            "unit": "s",
        }


def describe_signal(key: str, item: dict[str, str]) -> str:
    """ "stack S1 SO₂ concentration", "furnace if1 energy meter", … for a deadman's key."""
    signal = item.get("signal") or key.split(":", 1)[0]
    word = SIGNAL_WORDS.get(signal, signal)
    if "stack" in item:
        pol = item.get("pollutant")
        name = POLLUTANT_NAMES.get(pol, (pol, None))[0] if pol else None
        return f"stack {item['stack']}" + (f" {name}" if name else "") + f" {word}"
    if "furnace" in item:
        return f"furnace {item['furnace']} {word}"
    return key


def duration(seconds: float) -> str:
    """A duration as a person says it: "45 s", "17 min", "2 h 40 min" (to 5 min from an hour
    on), "1 d 3 h" (to the hour from a day on). Halves round up."""
    s = max(0.0, float(seconds))
    if s < 59.5:
        return f"{_half_up(s)} s"
    if _half_up(s / 60) < 60:
        return f"{_half_up(s / 60)} min"
    if s < 86400:
        h, m = divmod(_half_up(s / 300) * 5, 60)
        if h == 24:
            return "1 d"
        return f"{h} h" + (f" {m} min" if m else "")
    d, h = divmod(_half_up(s / 3600), 24)
    return f"{d} d" + (f" {h} h" if h else "")


def _half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _slope(x: float) -> str:
    return f"{x:.3f}" if x < 0.01 else f"{x:.2f}"


def _per_t(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}"


def _plain(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _config_path(cfg) -> str:
    path = Path(cfg.path)
    return str(path.resolve()) if path.exists() else str(path)


def _markdown(facts: dict, lines: list[tuple[str, str]], link: str, ack: str | None) -> str:
    """The same message for the group robots: a bold subject, one quoted line per fact, the
    commands in code spans (WeCom's and DingTalk's markdown both render these)."""
    out = [f"**{facts['subject']}**", ""]
    for key, value in lines:
        if key == "More":
            value = f"[{link}]({link})" if link.startswith(("http://", "https://")) else f"`{link}`"
        elif key == "Acknowledge" and ack:
            value = f"`{ack}`"
        out.append(f"> **{key}:** {value}")
    return "\n".join(out) + "\n"
