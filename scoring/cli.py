"""Subcommands of this area; see greenfoundry.cli.

``greenfoundry standard show|check|limits`` reads the standard's data file and Table C.1;
``greenfoundry score`` scores a plant. Argument plumbing only: what is printed is built by
``scoring.report`` (text and dicts) and ``scoring.scorer.result_to_dict`` (the score's JSON). The
library raises GreenfoundryError subclasses; the top-level CLI prints them as one ``error: …``
line (exit 2 for "not covered").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from greenfoundry import glossary, inputs
from greenfoundry import plant as plant_config
from greenfoundry.errors import InputError
from greenfoundry.scoring import report, scorer
from greenfoundry.scoring.evidence import load_evidence
from greenfoundry.scoring.indicators import load_indicators
from greenfoundry.scoring.standard import DEFAULT_ID, load_standard
from greenfoundry.scoring.table_c1 import table_c1_limits

STANDARD_HELP = (
    f"standard id (a file shipped in scoring/standards/, default {DEFAULT_ID}) "
    "or the path of a standard YAML file"
)
# The evidence file a plant's folder holds beside its plant.yaml.
EVIDENCE_NAME = "evidence.yaml"


def _print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def register(subparsers) -> None:
    """Add `standard …` and `score` to the `greenfoundry` parser."""
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
            "Load and validate the standard file (a key given twice, unknown keys, comparators, "
            "tier order, point sums, dates), then print the points in force per group, the "
            "total (1000 for this standard), the row counts by kind and status, and every "
            "errata decision with its reason. Exit 0 when valid; an invalid file prints one "
            "error line naming the file and the key."
        ),
    )
    check.add_argument("--standard", default=None, metavar="ID|PATH", help=STANDARD_HELP)
    check.add_argument("--json", action="store_true", help="print JSON instead of text")
    check.set_defaults(func=cmd_check)

    kinds = "; ".join(f"{k}: {d}" for k, d in glossary.FURNACE_KIND_DESCRIPTIONS.items())
    limits = sub.add_parser(
        "limits",
        help="Table C.1 limits of energy per tonne of liquid iron for a furnace",
        description=(
            "Print the Table C.1 row for a furnace, its unit and comparator, the limits as "
            "printed and corrected by notes 1-4 (tapping temperature, capacity between rows, "
            "site mean air temperature), and, with --value, the tier (1, 2, 3 or none) and Li. "
            "Cupola rows are kgce/t, induction rows kWh/t. A furnace outside every row "
            "(cupola < 5 t/h, induction <= 5 t) is not covered: exit status 2 and one line why. "
            "The flags are the names of the plant config and the standard's context keys."
        ),
    )
    limits.add_argument(
        "--furnace-kind",
        required=True,
        choices=glossary.FURNACE_KINDS,
        help=f"melting furnace ({kinds})",
    )
    limits.add_argument(
        "--furnace-capacity",
        required=True,
        type=float,
        metavar="X",
        help="cupola melting capacity in t/h, or induction furnace capacity in t",
    )
    limits.add_argument("--product", required=True, choices=glossary.PRODUCTS, help="pipe product")
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

    _register_score(subparsers)


# --------------------------------------------------------------------------- standard


def cmd_show(args: argparse.Namespace) -> int:
    std = load_standard(args.standard)
    if args.row:
        if args.row not in std.rows:
            raise InputError(
                f"--row {args.row!r} is not allowed; expected a row id of {std.id} "
                "(`greenfoundry standard show` lists them)"
            )
        row = std.rows[args.row]
        if args.json:
            _print_json(report.row_dict(row))
        else:
            print("\n".join(report.row_lines(row, full=True)))
        return 0
    if args.json:
        _print_json(report.standard_dict(std))
    else:
        print(report.standard_text(std))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    std = load_standard(args.standard)
    if args.json:
        _print_json(report.check_dict(std))
    else:
        print(report.check_text(std))
    return 0


def check_limits_args(args: argparse.Namespace, std) -> None:
    """`standard limits` refuses what no furnace or site can have, as the scorer does
    (greenfoundry.glossary.PLAUSIBLE_BY_KEY and PLAUSIBLE_BY_UNIT)."""
    for flag, key in (
        ("--furnace-capacity", "furnace_capacity"),
        ("--tap-temp-c", "tap_temp_c"),
        ("--annual-mean-air-temp-c", "annual_mean_air_temp_c"),
    ):
        value = getattr(args, key)
        if value is not None:
            scorer.check_plausible(glossary.plausible_for_key(key, args.furnace_kind), value, flag)
    table = std.furnace_table
    if args.value is not None and table is not None and args.furnace_kind in table.furnaces:
        unit = table.furnaces[args.furnace_kind].unit
        row = std.rows.get(table.row_id)
        rng = row.plausible_range(unit) if row else glossary.PLAUSIBLE_BY_UNIT.get(unit)
        scorer.check_plausible(rng, args.value, "--value")


def cmd_limits(args: argparse.Namespace) -> int:
    std = load_standard(args.standard)
    check_limits_args(args, std)
    options = {"note4_cupola": args.note4_cupola} if args.note4_cupola else None
    res = table_c1_limits(
        args.furnace_kind,
        args.furnace_capacity,
        args.product,
        dn=args.dn,
        tap_temp_c=args.tap_temp_c,
        annual_mean_air_temp_c=args.annual_mean_air_temp_c,
        table=std.furnace_table,
        options=options,
        kwh_to_kgce=args.kwh_to_kgce,
    )
    if args.json:
        _print_json(report.limits_dict(res, std, args.value))
    else:
        print(report.limits_text(res, std, args.value))
    return 0


# --------------------------------------------------------------------------- score


def _register_score(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="score a plant against the standard: F, the grade and the gap to the next grade",
        description=(
            "Score every row of the standard for the plant of --config (its plant.yaml: the "
            "plant's facts every threshold depends on; its secrets are not needed), from "
            "measured indicator values (--indicators, YAML or JSON: value, window and coverage "
            "per row) and declared evidence (--evidence, by default the evidence.yaml beside "
            "the plant config: declared values with who declared them and until when). Prints "
            "per row the value, tier, Li, points and status (scored / not applicable / no data "
            "/ evidence expired / not covered / low coverage), points per first-level "
            "indicator, F = Σ fi × Li (clause 6.1), the grade of Table 9, and the gap analysis: "
            "the rows that reach the next grade with the least change, and the rows that cost "
            "points only because data is missing. A bad input stops with one line naming the "
            "file and the key."
        ),
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="the plant config, config/plants/<plant>/plant.yaml",
    )
    p.add_argument(
        "--evidence",
        default=None,
        metavar="FILE",
        help=f"declared evidence (default: {EVIDENCE_NAME} in the folder of --config)",
    )
    p.add_argument(
        "--indicators",
        required=True,
        metavar="FILE",
        help="measured indicator values over a window (YAML or JSON), e.g. "
        "config/plants/demo-dip/indicators.example.yaml; required, because which window is "
        "scored is the caller's choice",
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
    def refuse(expected: str):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected {expected}")

    return inputs.parse_date(text, refuse)


def evidence_path(config: str | Path, evidence: str | Path | None) -> Path:
    """--evidence, or the evidence.yaml beside the plant config."""
    if evidence is not None:
        return Path(evidence)
    path = Path(config).parent / EVIDENCE_NAME
    if not path.exists():
        raise InputError(
            f"{inputs.display(path)}: cannot read the evidence file: it does not exist (the "
            f"default is {EVIDENCE_NAME} beside --config); give --evidence FILE"
        )
    return path


def cmd_score(args) -> int:
    options = scorer.Options(
        as_of=args.as_of or dt.date.today(),
        min_coverage=args.min_coverage,
        li_mode=args.li_policy,
    )
    standard = load_standard(args.standard)
    plant = plant_config.load(args.config, resolve_secrets=False)
    evidence = load_evidence(evidence_path(args.config, args.evidence))
    indicators = load_indicators(args.indicators)
    result = scorer.score(standard, plant, indicators, evidence, options)
    if args.json:
        _print_json(scorer.result_to_dict(result))
    else:
        print(report.score_text(result))
    return 0
