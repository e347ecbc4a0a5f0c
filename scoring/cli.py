"""Subcommands of this area; see greenfoundry.cli.

``greenfoundry standard show|check|limits`` (this module) reads the standard's data file and
Table C.1; ``greenfoundry score`` lives in score_cli. The library raises GreenfoundryError
subclasses; the top-level CLI prints them as one ``error: …`` line (exit 2 for "not covered").
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from greenfoundry.scoring import score_cli
from greenfoundry.scoring.standard import DEFAULT_ID, Row, Standard, load_standard
from greenfoundry.scoring.table_c1 import C1Limits, table_c1_limits, tier_for

STANDARD_HELP = (
    f"standard id (a file shipped in scoring/standards/, default {DEFAULT_ID}) "
    "or the path of a standard YAML file"
)


def register(subparsers) -> None:
    """Add `standard …` (this module) and `score` (score_cli) to the `greenfoundry` parser."""
    p = subparsers.add_parser(
        "standard",
        help="the green-factory standard as data: rows, totals, errata, Table C.1 limits",
        description=(
            "Inspect the standard the plant is scored against (T/CFA 0308011.5-2024 by default): "
            "its indicators and rows (show), its point totals and errata decisions (check), and "
            "the Table C.1 limits for a furnace (limits)."
        ),
    )
    sub = p.add_subparsers(dest="standard_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    show = sub.add_parser(
        "show",
        help="list the indicators and rows with their tiers",
        description=(
            "Print every first-level group, second-level indicator and third-level row with its "
            "points in force, unit, kind (measured/declared), tiers per context exactly as "
            "printed and the decisions that read it. --row shows one row in full, with its "
            "checklist items."
        ),
    )
    show.add_argument("--standard", default=None, metavar="ID|PATH", help=STANDARD_HELP)
    show.add_argument("--row", metavar="ROW_ID", help="show one row (e.g. energy.pipe.kgce_per_t)")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=cmd_show)

    check = sub.add_parser(
        "check",
        help="validate the file; print totals and the errata decisions",
        description=(
            "Load and validate the standard file (unknown keys, comparators, tier order, point "
            "sums), then print the points in force per group, the total (1000 for this "
            "standard), the row counts by kind and status, and every errata decision with its "
            "reason. Exit 0 when valid; an invalid file prints one error line naming the row."
        ),
    )
    check.add_argument("--standard", default=None, metavar="ID|PATH", help=STANDARD_HELP)
    check.add_argument("--json", action="store_true", help="print JSON instead of text")
    check.set_defaults(func=cmd_check)

    limits = sub.add_parser(
        "limits",
        help="Table C.1 limits of energy per tonne of liquid iron for a furnace",
        description=(
            "Print the Table C.1 row for a furnace, its unit and comparator, the limits as "
            "printed and corrected by notes 1-4 (tapping temperature, capacity between rows, "
            "site mean air temperature), and, with --value, the tier (1, 2, 3 or none) and Li. "
            "Cupola rows are kgce/t, induction rows kWh/t. A furnace outside every row "
            "(cupola < 5 t/h, induction <= 5 t) is not covered: exit status 2 and one line why."
        ),
    )
    limits.add_argument(
        "--furnace", required=True, choices=["cupola", "induction"], help="melting furnace"
    )
    limits.add_argument(
        "--capacity",
        required=True,
        type=float,
        metavar="X",
        help="cupola melting capacity in t/h, or induction furnace capacity in t",
    )
    limits.add_argument(
        "--product", required=True, choices=["gray", "ductile"], help="pipe product"
    )
    limits.add_argument(
        "--dn",
        type=int,
        metavar="N",
        help="pipe DN; needed for ductile pipe from an induction furnace with --tap-temp-c "
        "(the specified tapping temperature depends on the DN range)",
    )
    limits.add_argument(
        "--tap-temp-c",
        type=float,
        metavar="T",
        help="tonnage-weighted mean tapping temperature in °C (notes 1 and 2); "
        "omitted: the specified temperature is assumed",
    )
    limits.add_argument(
        "--annual-mean-air-temp-c",
        type=float,
        metavar="A",
        help="site mean air temperature of the latest calendar year in °C (note 4); "
        "omitted: 25 °C is assumed",
    )
    limits.add_argument(
        "--value",
        type=float,
        metavar="V",
        help="measured energy per tonne of liquid iron, in the row's unit; prints its tier and Li",
    )
    limits.add_argument(
        "--note4-cupola",
        choices=["skip", "convert"],
        help="whether note 4 (stated in kWh/t) applies to cupola rows (kgce/t): skip, or convert "
        "at the kWh->kgce factor (default: the standard file's option, skip)",
    )
    limits.add_argument(
        "--kwh-to-kgce",
        type=float,
        metavar="F",
        help="kgce per kWh for electricity (default from the standard file: 0.1229, GB/T 2589 "
        "equivalent value)",
    )
    limits.add_argument("--standard", default=None, metavar="ID|PATH", help=STANDARD_HELP)
    limits.add_argument("--json", action="store_true", help="print JSON instead of text")
    limits.set_defaults(func=cmd_limits)

    score_cli.register(subparsers)


# --------------------------------------------------------------------------- show


def _row_dict(row: Row) -> dict:
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


def _row_lines(row: Row, full: bool) -> list[str]:
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
            unit = table.furnaces[c1.furnace]["unit"]
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


def cmd_show(args: argparse.Namespace) -> int:
    std = load_standard(args.standard)
    if args.row:
        if args.row not in std.rows:
            from greenfoundry.errors import ConfigError

            raise ConfigError(f"no row {args.row!r} in {std.id} (see `greenfoundry standard show`)")
        row = std.rows[args.row]
        if args.json:
            print(json.dumps(_row_dict(row), ensure_ascii=False, indent=2))
        else:
            print("\n".join(_row_lines(row, full=True)))
        return 0
    if args.json:
        data = {
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
                            "rows": [_row_dict(r) for r in i.rows],
                        }
                        for i in g.indicators
                    ],
                }
                for g in std.groups
            ],
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(f"{std.id}: {std.title_zh}")
    print(f"{std.title_en}; {std.total_points} points")
    for g in std.groups:
        print(f"{g.no}. {g.id}  {g.points} pts  {g.name_zh} / {g.name_en}")
        for i in g.indicators:
            printed = ""
            if any(v != i.points for v in i.points_printed.values()):
                printed = (
                    " (printed: " + ", ".join(f"{k} {v}" for k, v in i.points_printed.items()) + ")"
                )
            print(f"  {i.id}  {i.points} pts{printed}  {i.name_zh} / {i.name_en}")
            for r in i.rows:
                print("\n".join(_row_lines(r, full=False)))
    return 0


# --------------------------------------------------------------------------- check


def _check_data(std: Standard) -> dict:
    return {
        "id": std.id,
        "path": str(std.path),
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


def cmd_check(args: argparse.Namespace) -> int:
    std = load_standard(args.standard)
    data = _check_data(std)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(f"{std.id}: valid ({std.path})")
    print(
        f"{data['first_level']} first-level, {data['second_level']} second-level indicators, "
        f"{data['rows']} rows ("
        + ", ".join(f"{n} {k}" for k, n in sorted(data["rows_by_kind"].items()))
        + "; "
        + ", ".join(f"{n} {k}" for k, n in sorted(data["rows_by_status"].items()))
        + ")"
    )
    for g in data["groups"]:
        print(f"  {g['id']:<10} {g['points']:>5g} pts  (rows in force: {g['rows_sum']:g})")
    print(f"  {'total':<10} {data['points_in_force']:>5g} pts  (standard: {std.total_points})")
    floors = std.li_policy.floors
    print(
        f"Li policy: tier floors {floors[1]:g} / {floors[2]:g} / {floors[3]:g}, below "
        f"{std.li_policy.below:g} ({std.li_policy.source})"
    )
    print(
        "grades: " + "; ".join(f"level {g.level} F >= {g.min_f:g} {g.name_zh}" for g in std.grades)
    )
    print(f"errata and readings ({len(std.errata)}):")
    for d in std.errata:
        print(f"  {d.id}: {d.about}")
        print(f"      decision: {d.decision}")
        print(f"      reason: {d.reason}")
        if d.affects:
            print(f"      affects: {', '.join(d.affects)}")
    return 0


# --------------------------------------------------------------------------- limits


def _limits_data(res: C1Limits, std: Standard, value: float | None) -> dict:
    table = std.furnace_table
    data = {
        "table": res.table,
        "row": res.row_id,
        "label": res.label,
        "furnace": res.furnace,
        "capacity": res.capacity,
        "capacity_unit": res.capacity_unit,
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


def cmd_limits(args: argparse.Namespace) -> int:
    std = load_standard(args.standard)
    options = {"note4_cupola": args.note4_cupola} if args.note4_cupola else None
    res = table_c1_limits(
        args.furnace,
        args.capacity,
        args.product,
        dn=args.dn,
        tap_temp_c=args.tap_temp_c,
        annual_mean_air_temp_c=args.annual_mean_air_temp_c,
        table=std.furnace_table,
        options=options,
        kwh_to_kgce=args.kwh_to_kgce,
    )
    data = _limits_data(res, std, args.value)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    cmp = res.comparators[0] if len(set(res.comparators)) == 1 else "/".join(res.comparators)
    print(f"Table {res.table} row {res.row_id}: {res.label}")
    print(
        f"furnace {res.furnace}, capacity {res.capacity:g} {res.capacity_unit}, product "
        f"{res.product}" + (f", DN {res.dn}" if res.dn is not None else "")
    )
    print(f"unit: {res.unit} liquid iron; comparator: {cmp} (printed {' / '.join(res.printed)})")
    for c in res.corrections:
        print(f"  {c.explanation}")
    lims = " / ".join(
        f"{cmp_} {lim:g}" for cmp_, lim in zip(res.comparators, res.limits, strict=True)
    )
    print(f"limits (tier 1 / 2 / 3): {lims} {res.unit}")
    if res.limits_kgce:
        print(
            "  = "
            + " / ".join(f"{v:.4g}" for v in res.limits_kgce)
            + f" kgce/t at {res.kwh_to_kgce:g} kgce/kWh ({std.furnace_table.kwh_to_kgce_source})"
        )
    print(
        f"options: note4_cupola={res.options['note4_cupola']}; kwh_to_kgce={res.kwh_to_kgce:g} "
        f"kgce/kWh; decisions: {', '.join(std.furnace_table.decision_ids)}"
    )
    if args.value is not None:
        tier = data["tier"]
        print(
            f"value {args.value:g} {res.unit}: tier {tier if tier else 'none'}, "
            f"Li {data['li']:g} (tier floor, clause 5.2.2)"
        )
    return 0
