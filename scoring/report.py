"""What the scoring commands print, built by the library: the score's text report, and the
standard's tables (`standard show`, `check`, `limits`) as text and as JSON-ready dicts.

The CLI only parses arguments and prints these; the monthly report will reuse `score_text`.
The score's JSON is `scorer.result_to_dict` (docs/score-json-schema.md).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from fractions import Fraction
from typing import Any

from greenfoundry.scoring import scorer
from greenfoundry.scoring.standard import Row, Standard
from greenfoundry.scoring.table_c1 import C1Limits, tier_for

STATUS_LABELS = {
    scorer.STATUS_SCORED: "scored",
    scorer.STATUS_NOT_APPLICABLE: "not applicable",
    scorer.STATUS_NO_DATA: "no data",
    scorer.STATUS_EVIDENCE_EXPIRED: "evidence expired",
    scorer.STATUS_NOT_COVERED: "not covered",
    scorer.STATUS_LOW_COVERAGE: "low coverage",
}


# --------------------------------------------------------------------------- the score


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _pts(x: Fraction | None) -> str:
    return "—" if x is None else f"{float(x):.2f}"


def _value(value, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:g} {unit}" if unit not in ("level", "yes/no", "1") else f"{value:g}"
    return str(value)


def _target(tier) -> str:
    if tier.cmp == "at_least":
        return f"at least {tier.value}"
    if isinstance(tier.value, bool):
        return "yes" if tier.value else "no"
    words = {"<": "below", "≤": "at most", ">": "above", "≥": "at least", "=": "exactly"}
    return f"{words.get(tier.cmp, tier.cmp)} {float(tier.value):g}"


def _from(tier: int | None) -> str:
    return f"tier {tier}" if tier else "below tier 3"


def _tier_text(r: scorer.RowScore) -> str:
    if r.status == scorer.STATUS_SCORED:
        return f"tier {r.tier}" if r.tier else "below"
    if r.would_be_tier:
        return f"(tier {r.would_be_tier})"
    return "—"


def plant_line(result: scorer.ScoreResult) -> str:
    """One line on the plant as scored: product, DN ranges, furnaces, residential area."""
    cfg = result.plant
    ctx = [cfg.plant.product]
    if cfg.dn_ranges:
        ctx.append(" and ".join(f"DN{low}–{high}" for low, high in cfg.dn_ranges))
    if cfg.furnaces:
        ctx.append(
            ", ".join(f"{f.id} {f.kind} {f.capacity:g} {f.capacity_unit}" for f in cfg.furnaces)
        )
    ctx.append(
        "residential area within 1200 m"
        if cfg.plant.residential_within_1200m
        else "no residential area within 1200 m"
    )
    return f"Plant {cfg.plant.id}: {', '.join(ctx)}"


def score_text(result: scorer.ScoreResult) -> str:
    """The score as a table grouped by first-level indicator (Chinese and English names), then
    F, the grade of Table 9 and the gap analysis."""
    s = result.standard
    opts = result.options
    lines = [f"{s.id}  {s.title_zh}", f"{s.title_en}", "", plant_line(result)]
    floors = s.li_policy.floors
    policy = (
        f"floor of the tier met: tier 1/2/3 → {floors[1]:.2f}/{floors[2]:.2f}/{floors[3]:.2f}, "
        f"below tier 3 → {s.li_policy.below:g} ({s.li_policy.source})"
    )
    if opts.li_mode == "interpolate":
        policy = (
            "interpolated inside a tier between its threshold and the next (tier 1 up to 1.00 at "
            f"the best value where the data defines one); floors {floors[1]:.2f}/{floors[2]:.2f}/"
            f"{floors[3]:.2f} ({s.li_policy.source})"
        )
    lines.append(f"As of {opts.as_of.isoformat()}; minimum data coverage {opts.min_coverage:.0%}")
    lines.append(f"Li policy: {policy}")
    lines.append("")
    by_group: dict[str, list[scorer.RowScore]] = {}
    for r in result.rows:
        by_group.setdefault(r.group_id, []).append(r)
    for group, points, maximum in result.group_points():
        head = f"{group.no} {group.name_zh} · {group.name_en}"
        lines.append(f"{_ljust(head, 94)} {_pts(points):>7} / {float(maximum):g}")
        for r in by_group.get(group.id, []):
            li = "—" if r.li is None else f"{float(r.li):.2f}"
            lines.append(
                f"  {_ljust(r.row_id, 46)} {_ljust(_value(r.value, r.unit), 26)} "
                f"{_tier_text(r):<9} Li {li:<5} {_pts(r.points):>6} / {_pts(r.points_max):<6} "
                f"{STATUS_LABELS[r.status]}"
            )
            lines.append(f"      {r.name_zh} · {r.name_en}")
            if r.status != scorer.STATUS_SCORED:
                lines.append(f"      why: {r.reason}")
            lines.extend(_correction_lines(r))
            lines.extend(f"      warning: {w}" for w in r.warnings)
        lines.append("")
    grade = result.grade
    grade_text = (
        f"level {grade.level} {grade.name_zh} ({grade.name_en})"
        if grade
        else "not rated (F < 600, Table 9)"
    )
    lines.append(f"F = Σ fi × Li = {_pts(result.f)} / {s.total_points} → {grade_text}")
    if result.warnings:
        lines.append(f"Warnings ({len(result.warnings)}): values scored as given, check them")
        lines.extend(f"  {message}" for _row, message in result.warnings)
    if result.assumptions:
        lines.append("Assumed, because a temperature was not given (decision D-c1-no-temp):")
        lines.extend(f"  {a.row_id}: {a.message}" for a in result.assumptions)
    lines.extend(_gap_lines(result))
    return "\n".join(lines)


def _correction_lines(r: scorer.RowScore) -> list[str]:
    """A Table C.1 row's notes as applied, with their amounts, its corrected limits and what a
    missing temperature was assumed to be."""
    if not r.corrections:
        return []
    lines = [f"      {r.notes[0]}"] if r.notes else []
    lines.extend(f"      {c.explanation}" for c in r.corrections)
    if r.tiers:
        lims = " / ".join(f"{t.cmp} {float(t.value):g}" for t in r.tiers)
        lines.append(f"      limits (tier 1 / 2 / 3) after the notes: {lims} {r.unit}")
    lines.extend(f"      assumed: {a.message}" for a in r.assumptions)
    return lines


def _gap_lines(result: scorer.ScoreResult) -> list[str]:
    gap = result.gap
    lines = [""]
    if gap.next_grade is None:
        lines.append("Gap: already at the top grade of Table 9.")
    else:
        g = gap.next_grade
        lines.append(
            f"Gap to level {g.level} {g.name_zh} ({g.name_en}, F ≥ {g.min_f:g}): "
            f"{_pts(gap.deficit)} points"
        )
        if gap.note:
            lines.append(f"  {gap.note}")
        if gap.plan is None:
            lines.append(f"  {gap.reason}")
        else:
            added = sum((m.points_added for m in gap.plan), Fraction(0))
            lines.append(
                f"  Least change: {len(gap.plan)} row(s) adding {_pts(added)} points (fewest rows, "
                "then smallest relative change of value, then most points)"
                + ("" if gap.exact else " — search budget reached, not proven optimal")
            )
            for m in gap.plan:
                unit = result.row(m.row_id).unit
                now = _value(m.value, unit)
                cond = f" and {', '.join(m.conditions)}" if m.conditions else ""
                lines.append(
                    f"  {_ljust(m.row_id, 46)} now {_ljust(now, 26)} must be "
                    f"{_target(m.target)}{cond} ({_from(m.from_tier)} → tier {m.to_tier}) "
                    f"+{_pts(m.points_added)}"
                )
    if gap.missing_data:
        held = sum((r.points_max for r in gap.missing_data), Fraction(0))
        lines.append(
            f"Rows that score nothing only because data is missing ({_pts(held)} points held):"
        )
        for r in gap.missing_data:
            lines.append(
                f"  {_ljust(r.row_id, 46)} {STATUS_LABELS[r.status]:<17} up to "
                f"{_pts(r.points_max)} points: {r.reason}"
            )
    else:
        lines.append("No row is missing data.")
    return lines


# --------------------------------------------------------------------------- standard show


def row_dict(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "name_zh": row.name_zh,
        "name_en": row.name_en,
        "points": row.points,
        "points_printed": row.points_printed,
        "unit": row.unit,
        "kind": row.kind,
        "value_type": row.value_type,
        "source": row.source,
        "status": row.status,
        "decisions": list(row.decisions),
        "context": list(row.context),
        "conditions": [{"key": c.key, "printed": c.printed} for c in row.conditions],
        "scale": row.scale.name if row.scale else None,
        "limits_from": row.limits_from,
        "items": list(row.items),
        "note": row.note,
        "variants": [
            {
                "id": v.id,
                "label": v.label,
                "when": v.when,
                "tiers": [
                    {
                        "tier": t.tier,
                        "cmp": t.cmp,
                        "value": t.value,
                        "printed": t.printed,
                        "decision": t.decision,
                    }
                    for t in v.tiers
                ],
            }
            for v in row.variants
        ],
    }


def _fmt_points(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.4g}"


def row_lines(row: Row, full: bool) -> list[str]:
    """A row as printed by `standard show` (`full`: with its comparators, items and notes)."""
    pts = _fmt_points(row.points)
    if row.points != row.points_printed:
        pts += f" (printed {_fmt_points(row.points_printed)})"
    out = [
        f"    {row.id}  {pts} pts  [{row.kind}, {row.value_type}, {row.unit}]  {row.name_zh} / "
        f"{row.name_en}"
    ]
    if row.limits_from:
        out.append(f"      tiers: Table {row.limits_from} (see `greenfoundry standard limits`)")
        table = row.standard.furnace_table if full and row.standard else None
        for c1 in table.rows if table else ():
            unit = table.furnaces[c1.furnace_kind].unit
            cells = " / ".join(t.printed for t in c1.tiers)
            out.append(f"      [{c1.id}] {c1.label}: {cells} {unit}")
    for v in row.variants:
        cells = " / ".join(t.printed for t in v.tiers)
        label = "" if v.id == "all" else f"{v.label}: "
        out.append(f"      {label}{cells}")
    if row.decisions:
        out.append(f"      decisions: {', '.join(row.decisions)}")
    if full:
        out.append(f"      source: {row.source}; status: {row.status}")
        if row.context:
            out.append(f"      context: {', '.join(row.context)}")
        for c in row.conditions:
            out.append(f"      condition: {c.key} ({c.printed})")
        for v in row.variants:
            for t in v.tiers:
                out.append(
                    f"      [{v.id}] tier {t.tier}: evaluated {t.describe()}  printed {t.printed!r}"
                    + (f"  ({t.decision})" if t.decision else "")
                )
        for item in row.items:
            out.append(f"      - {item}")
        if row.note:
            out.append(f"      note: {row.note}")
    return out


def standard_dict(std: Standard) -> dict[str, Any]:
    return {
        "id": std.id,
        "title_zh": std.title_zh,
        "title_en": std.title_en,
        "total_points": std.total_points,
        "groups": [
            {
                "id": g.id,
                "name_zh": g.name_zh,
                "name_en": g.name_en,
                "points": g.points,
                "indicators": [
                    {
                        "id": i.id,
                        "name_zh": i.name_zh,
                        "name_en": i.name_en,
                        "points": i.points,
                        "points_printed": i.points_printed,
                        "rows": [row_dict(r) for r in i.rows],
                    }
                    for i in g.indicators
                ],
            }
            for g in std.groups
        ],
    }


def standard_text(std: Standard) -> str:
    """Every group, indicator and row with its points, kind, unit and tiers as printed."""
    lines = [f"{std.id}: {std.title_zh}", f"{std.title_en}; {std.total_points} points"]
    for g in std.groups:
        lines.append(f"{g.no}. {g.id}  {g.points} pts  {g.name_zh} / {g.name_en}")
        for i in g.indicators:
            printed = ""
            if any(v != i.points for v in i.points_printed.values()):
                printed = (
                    " (printed: " + ", ".join(f"{k} {v}" for k, v in i.points_printed.items()) + ")"
                )
            lines.append(f"  {i.id}  {i.points} pts{printed}  {i.name_zh} / {i.name_en}")
            for r in i.rows:
                lines.extend(row_lines(r, full=False))
    return "\n".join(lines)


# --------------------------------------------------------------------------- standard check


def check_dict(std: Standard) -> dict[str, Any]:
    return {
        "id": std.id,
        "path": str(std.path),
        "revised_on": std.revised_on.isoformat() if std.revised_on else None,
        "valid": True,
        "total_points": std.total_points,
        "points_in_force": float(std.points_in_force()),
        "first_level": len(std.groups),
        "second_level": len(std.indicators),
        "rows": len(std.rows),
        "rows_by_kind": dict(Counter(r.kind for r in std.rows.values())),
        "rows_by_status": dict(Counter(r.status for r in std.rows.values())),
        "groups": [
            {
                "id": g.id,
                "points": g.points,
                "rows_sum": float(sum(r.points_exact for i in g.indicators for r in i.rows)),
            }
            for g in std.groups
        ],
        "li_policy": {"floors": std.li_policy.floors, "below": std.li_policy.below},
        "grades": [{"level": g.level, "min_f": g.min_f, "name_zh": g.name_zh} for g in std.grades],
        "errata": [
            {
                "id": d.id,
                "about": d.about,
                "decision": d.decision,
                "reason": d.reason,
                "affects": list(d.affects),
            }
            for d in std.errata
        ],
    }


def check_text(std: Standard) -> str:
    """The file's totals, row counts, Li policy, grades and every errata decision."""
    data = check_dict(std)
    revised = f", revised {data['revised_on']}" if data["revised_on"] else ""
    lines = [
        f"{std.id}: valid ({std.path}{revised})",
        f"{data['first_level']} first-level, {data['second_level']} second-level indicators, "
        f"{data['rows']} rows ("
        + ", ".join(f"{n} {k}" for k, n in sorted(data["rows_by_kind"].items()))
        + "; "
        + ", ".join(f"{n} {k}" for k, n in sorted(data["rows_by_status"].items()))
        + ")",
    ]
    for g in data["groups"]:
        lines.append(f"  {g['id']:<10} {g['points']:>5g} pts  (rows in force: {g['rows_sum']:g})")
    lines.append(
        f"  {'total':<10} {data['points_in_force']:>5g} pts  (standard: {std.total_points})"
    )
    floors = std.li_policy.floors
    lines.append(
        f"Li policy: tier floors {floors[1]:g} / {floors[2]:g} / {floors[3]:g}, below "
        f"{std.li_policy.below:g} ({std.li_policy.source})"
    )
    lines.append(
        "grades: " + "; ".join(f"level {g.level} F >= {g.min_f:g} {g.name_zh}" for g in std.grades)
    )
    lines.append(f"errata and readings ({len(std.errata)}):")
    for d in std.errata:
        lines.append(f"  {d.id}: {d.about}")
        lines.append(f"      decision: {d.decision}")
        lines.append(f"      reason: {d.reason}")
        if d.affects:
            lines.append(f"      affects: {', '.join(d.affects)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- standard limits


def limits_dict(res: C1Limits, std: Standard, value: float | None = None) -> dict[str, Any]:
    """Table C.1 limits in the glossary's names (`furnace_kind`, `furnace_capacity`, …)."""
    table = std.furnace_table
    data = {
        "table": res.table,
        "row": res.row_id,
        "label": res.label,
        "furnace_kind": res.furnace_kind,
        "furnace_capacity": res.furnace_capacity,
        "furnace_capacity_unit": res.furnace_capacity_unit,
        "product": res.product,
        "dn": res.dn,
        "unit": res.unit,
        "comparators": list(res.comparators),
        "printed": list(res.printed),
        "base_limits": list(res.base_limits),
        "limits": list(res.limits),
        "limits_kgce": list(res.limits_kgce) if res.limits_kgce else None,
        "reference_tap_temp_c": res.reference_tap_temp_c,
        "tap_temp_c": res.tap_temp_c,
        "annual_mean_air_temp_c": res.annual_mean_air_temp_c,
        "corrections": [
            {"note": c.note, "applied": c.applied, "delta": c.delta, "explanation": c.explanation}
            for c in res.corrections
        ],
        "options": res.options,
        "kwh_to_kgce": res.kwh_to_kgce,
        "kwh_to_kgce_source": table.kwh_to_kgce_source,
        "decisions": list(table.decision_ids),
    }
    if value is not None:
        tier = tier_for(res, value)
        data["value"] = value
        data["tier"] = tier
        data["li"] = std.li_policy.li_floor(tier)
        data["li_policy"] = "floor of the tier (clause 5.2.2; li_policy in the standard file)"
    return data


def limits_text(res: C1Limits, std: Standard, value: float | None = None) -> str:
    """The Table C.1 row, unit and comparator, corrections, corrected limits, and the tier."""
    table = std.furnace_table
    cmp = res.comparators[0] if len(set(res.comparators)) == 1 else "/".join(res.comparators)
    lines = [
        f"Table {res.table} row {res.row_id}: {res.label}",
        f"furnace_kind {res.furnace_kind}, furnace_capacity {res.furnace_capacity:g} "
        f"{res.furnace_capacity_unit}, product {res.product}"
        + (f", DN {res.dn}" if res.dn is not None else ""),
        f"unit: {res.unit} liquid iron; comparator: {cmp} (printed {' / '.join(res.printed)})",
    ]
    lines.extend(f"  {c.explanation}" for c in res.corrections)
    lims = " / ".join(
        f"{cmp_} {lim:g}" for cmp_, lim in zip(res.comparators, res.limits, strict=True)
    )
    lines.append(f"limits (tier 1 / 2 / 3): {lims} {res.unit}")
    if res.limits_kgce:
        lines.append(
            "  = "
            + " / ".join(f"{v:.4g}" for v in res.limits_kgce)
            + f" kgce/t at {res.kwh_to_kgce:g} kgce/kWh ({table.kwh_to_kgce_source})"
        )
    lines.append(
        f"options: note4_cupola={res.options['note4_cupola']}; kwh_to_kgce={res.kwh_to_kgce:g} "
        f"kgce/kWh; decisions: {', '.join(table.decision_ids)}"
    )
    if value is not None:
        tier = tier_for(res, value)
        lines.append(
            f"value {value:g} {res.unit}: tier {tier if tier else 'none'}, "
            f"Li {std.li_policy.li_floor(tier):g} (tier floor, clause 5.2.2)"
        )
    return "\n".join(lines)
