"""``greenfoundry grade``: the stored rolling grade of one plant-local day (grade/README.md).

Argument plumbing and the text of the report only: the grade is computed by ``grade.compute``,
stored and read by ``grade.rolling``. The library raises GreenfoundryError subclasses; the
top-level CLI prints them as one ``error: …`` line.
"""

from __future__ import annotations

import argparse
import json
import time
import unicodedata

import pandas as pd

from greenfoundry.errors import InputError
from greenfoundry.scoring.report import STATUS_LABELS
from greenfoundry.scoring.scorer import MISSING_DATA_STATUSES, STATUS_SCORED
from greenfoundry.store import InfluxStore


def register(subparsers) -> None:
    from greenfoundry.ingest.cli import add_config_args
    from greenfoundry.scoring.cli import _date

    p = subparsers.add_parser(
        "grade",
        help="the stored rolling grade of a day: F, the level, the rows missing data, the gap",
        description=(
            "Print the grade of one plant-local day as stored in InfluxDB by the metrics "
            "service (its rolling grade: the trailing 12 complete months before the day's month "
            "and the declared evidence valid that day, scored against the standard): F, the "
            "level of Table 9, the points per first-level indicator and per row, the rows that "
            "are no data, low coverage or expired with what is missing, the evidence expiring "
            "within 60 days with the points it holds, and the gap plan to the next level. "
            "Reads as the reader role; a day with nothing stored is refused unless --compute "
            "is given."
        ),
    )
    add_config_args(p)
    p.add_argument(
        "--as-of",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the plant-local day (default: today in the plant's time zone)",
    )
    p.add_argument(
        "--compute",
        action="store_true",
        help="compute the day's grade now from the rollups and evidence.yaml and store it (as "
        "the metrics role) before printing it",
    )
    p.add_argument("--json", action="store_true", help="print the stored grade as JSON")
    p.set_defaults(func=cmd_grade)


def cmd_grade(args: argparse.Namespace) -> int:
    from greenfoundry.grade import compute, rolling
    from greenfoundry.ingest.cli import load_config

    cfg = load_config(args, mqtt_secret=False)
    as_of = (
        args.as_of
        or pd.Timestamp(time.time(), unit="s", tz="UTC").tz_convert(cfg.plant.timezone).date()
    )
    if args.compute:
        writer = InfluxStore.from_config(cfg.influxdb, role="metrics")
        rolling.write_grade(writer, cfg, compute.compute(cfg, as_of, store=writer))
    stored = rolling.read_grade(InfluxStore.from_config(cfg.influxdb, role="reader"), cfg, as_of)
    if stored is None:
        raise InputError(
            f"no grade of plant {cfg.plant.id} is stored for {as_of}: run `greenfoundry metrics "
            "run` (it grades every day), or add --compute to compute it now"
        )
    if args.json:
        print(json.dumps(stored.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(grade_text(stored))
    return 0


# --------------------------------------------------------------------------- the text


def _ljust(text: str, width: int) -> str:
    """Pad to ``width`` columns, a Chinese character taking two (as the score's report does)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - used)


def _pts(x) -> str:
    return "—" if x is None else f"{float(x):.2f}"


def _value(r: dict) -> str:
    """A row's value with its unit, as the score's report prints it."""
    value = r.get("value", r.get("value_text"))
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        unit = r.get("unit", "")
        return f"{value:g}" + ("" if unit in ("", "1", "level", "yes/no") else f" {unit}")
    return str(value)


def _tier(r: dict) -> str:
    if r["status"] == STATUS_SCORED:
        return f"tier {r['tier']}" if r.get("tier") else "below"
    if r.get("would_be_tier"):
        return f"(tier {r['would_be_tier']})"
    return "—"


def _target(t: dict | None) -> str:
    if not t:
        return "—"
    words = {"<": "below", "≤": "at most", ">": "above", "≥": "at least", "=": "exactly"}
    value = t["value"]
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{words.get(t['cmp'], t['cmp'])} {value:g}"
    return f"at least {value}"


def grade_text(stored) -> str:
    """The stored grade in the style of `greenfoundry score`'s text report."""
    g = stored.grade
    computed = pd.Timestamp(int(g["computed_at_ns"]), unit="ns", tz="UTC")
    lines = [
        f"Grade of plant {stored.plant} for {stored.as_of} (plant-local), standard "
        f"{g.get('standard')}",
        f"Scored window: {g['window_start']} to {g['window_end']} (end excluded): the trailing "
        "12 complete months before the day's month; evidence as of the day",
        f"Computed {computed:%Y-%m-%d %H:%M:%S}Z; Li policy {g.get('li_policy')}; minimum data "
        f"coverage {float(g.get('min_coverage', 0)):.0%}",
        "",
    ]
    rows_by_group: dict[str, list[dict]] = {}
    for r in stored.rows:
        rows_by_group.setdefault(r.get("group", ""), []).append(r)
    for ind in stored.indicators:
        head = f"{ind.get('no', '')} {ind.get('name_zh', '')} · {ind.get('name_en', '')}"
        lines.append(f"{_ljust(head, 94)} {_pts(ind['points']):>7} / {float(ind['max_points']):g}")
        for r in rows_by_group.get(ind["indicator"], []):
            li = "—" if r.get("li") is None else f"{r['li']:.2f}"
            lines.append(
                f"  {r['row']:<46} {_value(r):<26} {_tier(r):<9} Li {li:<5} "
                f"{_pts(r['points']):>6} / {_pts(r['max_points']):<6} "
                f"{STATUS_LABELS.get(r['status'], r['status'])}"
            )
        lines.append("")
    level = g.get("level")
    level_text = f"level {level} {g['level_name']}" if level is not None else g["level_name"]
    lines.append(f"F = Σ fi × Li = {_pts(g['f'])} / 1000 → {level_text}")
    counts = ", ".join(f"{g.get(f'rows_{s}', 0)} {label}" for s, label in STATUS_LABELS.items())
    lines.append(f"Rows: {counts}")
    lines.append("")
    missing = [r for r in stored.rows if r["status"] in MISSING_DATA_STATUSES]
    if missing:
        held = sum(float(r["max_points"]) for r in missing)
        lines.append(f"Rows that score nothing only because data is missing ({held:.2f} points):")
        for r in missing:
            lines.append(
                f"  {r['row']:<46} {STATUS_LABELS[r['status']]:<17} up to "
                f"{_pts(r['max_points'])} points: {r.get('missing') or r.get('reason', '')}"
            )
    else:
        lines.append("No row is missing data.")
    expiring = g.get("expiring", [])
    if expiring:
        lines.append(f"Evidence expiring within 60 days ({len(expiring)}):")
        for e in expiring:
            lines.append(
                f"  {e['row']:<46} valid until {e['valid_until']} ({e['days_left']} day(s) "
                f"left): holds {e['points']:.2f} points"
            )
    else:
        lines.append("No evidence expires within 60 days.")
    units = {r["row"]: r.get("unit", "") for r in stored.rows}
    lines.extend(_gap_lines(g.get("gap_plan") or {}, units))
    notes = g.get("notes", [])
    if notes:
        lines.append("What the metrics said about the indicators:")
        lines.extend(f"  {n}" for n in notes)
    return "\n".join(lines)


def _gap_lines(gap: dict, units: dict[str, str]) -> list[str]:
    lines = [""]
    nxt = gap.get("next_grade")
    if nxt is None:
        return [*lines, "Gap: already at the top grade of Table 9."]
    lines.append(
        f"Gap to level {nxt['level']} {nxt['name_zh']} ({nxt['name_en']}, F ≥ {nxt['min_f']:g}): "
        f"{_pts(gap.get('deficit'))} points"
    )
    if gap.get("note"):
        lines.append(f"  {gap['note']}")
    plan = gap.get("plan")
    if plan is None:
        lines.append(f"  {gap.get('reason', '')}")
        return lines
    lines.append(
        f"  Least change: {len(plan)} row(s) adding {_pts(gap.get('plan_points_added'))} points "
        "(fewest rows, then smallest relative change of value, then most points)"
        + ("" if gap.get("exact", True) else " — search budget reached, not proven optimal")
    )
    for m in plan:
        to = f"tier {m['to_tier']}"
        frm = f"tier {m['from_tier']}" if m.get("from_tier") else "below tier 3"
        cond = f" and {', '.join(m['conditions'])}" if m.get("conditions") else ""
        now = _value({"value": m["value"], "unit": units.get(m["row_id"], "")})
        lines.append(
            f"  {m['row_id']:<46} now {_ljust(now, 26)} must be {_target(m.get('target'))}{cond} "
            f"({frm} → {to}) +{_pts(m['points_added'])}"
        )
    return lines
