"""`greenfoundry score`: score a plant against the standard; a thin CLI over scoring.scorer.

Text output is a table grouped by first-level indicator (Chinese and English names), then F, the
grade of Table 9 and the gap analysis. `--json` prints the result in the schema documented in
docs/score-json-schema.md. Every bad input stops with one `error: …` line naming the row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import unicodedata
from fractions import Fraction

from greenfoundry.scoring import scorer
from greenfoundry.scoring.evidence import load_evidence
from greenfoundry.scoring.indicators import load_indicators
from greenfoundry.scoring.standard import DEFAULT_ID, load_standard

STATUS_LABELS = {
    scorer.STATUS_SCORED: "scored",
    scorer.STATUS_NOT_APPLICABLE: "not applicable",
    scorer.STATUS_NO_DATA: "no data",
    scorer.STATUS_EVIDENCE_EXPIRED: "evidence expired",
    scorer.STATUS_NOT_COVERED: "not covered",
    scorer.STATUS_LOW_COVERAGE: "low coverage",
}


def register(subparsers) -> None:
    """Add `score` to the `greenfoundry` parser."""
    p = subparsers.add_parser(
        "score",
        help="score a plant against the standard: F, the grade and the gap to the next grade",
        description=(
            "Score every row of the standard from measured indicator values (--indicators, YAML "
            "or JSON: value, window and coverage per row) and declared evidence (--evidence: the "
            "plant context and declared values with who declared them and until when). Prints "
            "per row the value, tier, Li, points and status (scored / not applicable / no data / "
            "evidence expired / not covered / low coverage), points per first-level indicator, "
            "F = Σ fi × Li (clause 6.1), the grade of Table 9, and the gap analysis: the rows "
            "that reach the next grade with the least change, and the rows that cost points only "
            "because data is missing. A bad input stops with one line naming the row."
        ),
    )
    p.add_argument(
        "--indicators", required=True, metavar="FILE", help="indicator values (YAML or JSON)"
    )
    p.add_argument(
        "--evidence",
        required=True,
        metavar="FILE",
        help="declared evidence, e.g. config/plants/<plant>/evidence.yaml",
    )
    p.add_argument(
        "--as-of",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="evaluation date: evidence valid until an earlier day is expired (default: today)",
    )
    p.add_argument(
        "--li-policy",
        choices=scorer.LI_MODES,
        default="floor",
        help="Li inside a tier: the tier's floor 0.90/0.75/0.60 (default), or interpolate "
        "linearly where the data defines the next value (see docs/score-json-schema.md)",
    )
    p.add_argument(
        "--min-coverage",
        type=float,
        default=scorer.DEFAULT_MIN_COVERAGE,
        metavar="SHARE",
        help="a measured value whose data covers less than this share of its window is 'low "
        f"coverage' and does not score (default {scorer.DEFAULT_MIN_COVERAGE})",
    )
    p.add_argument(
        "--standard",
        default=None,
        metavar="ID|PATH",
        help=f"standard id or YAML path (default {DEFAULT_ID})",
    )
    p.add_argument("--json", action="store_true", help="print JSON (docs/score-json-schema.md)")
    p.set_defaults(func=cmd_score)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def cmd_score(args) -> int:
    options = scorer.Options(
        as_of=args.as_of or dt.date.today(),
        min_coverage=args.min_coverage,
        li_mode=args.li_policy,
    )
    standard = load_standard(args.standard)
    indicators = load_indicators(args.indicators)
    evidence = load_evidence(args.evidence)
    result = scorer.score(standard, indicators, evidence, options)
    if args.json:
        print(json.dumps(scorer.result_to_dict(result), ensure_ascii=False, indent=2))
    else:
        print(format_report(result))
    return 0


# --------------------------------------------------------------------------- text report


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


def format_report(result: scorer.ScoreResult) -> str:
    s = result.standard
    plant = result.plant
    opts = result.options
    lines = [f"{s.id}  {s.title_zh}", f"{s.title_en}", ""]
    ctx = [plant.product]
    if plant.dn_min is not None:
        ctx.append(f"DN{plant.dn_min}–{plant.dn_max}")
    if plant.furnace:
        ctx.append(f"{plant.furnace.kind} {plant.furnace.capacity:g} {plant.furnace.capacity_unit}")
    ctx.append(
        "residential area within 1200 m"
        if plant.residential_within_1200m
        else "no residential area within 1200 m"
    )
    lines.append(f"Plant {plant.id}: {', '.join(ctx)}")
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
        lines.append("")
    grade = result.grade
    grade_text = (
        f"level {grade.level} {grade.name_zh} ({grade.name_en})"
        if grade
        else "not rated (F < 600, Table 9)"
    )
    lines.append(f"F = Σ fi × Li = {_pts(result.f)} / {s.total_points} → {grade_text}")
    lines.extend(_format_gap(result))
    return "\n".join(lines)


def _format_gap(result: scorer.ScoreResult) -> list[str]:
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
        if gap.plan is None:
            lines.append(f"  {gap.reason}")
        else:
            added = sum((m.points_added for m in gap.plan), Fraction(0))
            lines.append(
                f"  Least change: {len(gap.plan)} row(s) adding {_pts(added)} points (fewest rows, "
                "then smallest relative change of value, then most points)"
                + ("" if gap.exact else " — search budget reached, not proven optimal")
            )
            if gap.note:
                lines.append(f"  {gap.note}")
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
