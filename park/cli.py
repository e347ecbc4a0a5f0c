"""`greenfoundry park report`: the plants of a park side by side for one month."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "park",
        help="an industrial park: its plants side by side",
        description="Commands over the plants of a park file (config/parks/<park>/park.yaml).",
    )
    sub = p.add_subparsers(dest="park_command", metavar="ACTION", required=True)
    r = sub.add_parser(
        "report",
        help="the plants' monthly grade snapshots side by side in one HTML file",
        description="For each plant of the park, the snapshot of the plant-local month (the "
        "stored gf_snapshot point, else the JSON in its report.dir, else made now as "
        "`greenfoundry report` makes it), then one self-contained HTML file with Table C.1 "
        "per furnace kind against each plant's corrected limits, kgce/t of pipe, the worst "
        "multiple of C, water reuse, F and the level, side by side. Prints its path.",
    )
    r.add_argument("--park", required=True, metavar="FILE", help="the park file (YAML)")
    r.add_argument("--month", required=True, metavar="YYYY-MM", help="the plant-local month")
    r.add_argument(
        "--anonymise",
        action="store_true",
        help="plants as Plant A/B/C in the park's keyed order, no plant name or id in the file "
        "(default: the park file's anonymise)",
    )
    r.add_argument(
        "--stack",
        metavar="DIR",
        help="use the local stack in DIR (its stack.json) for InfluxDB endpoints and "
        "credentials instead of the plant configs'",
    )
    r.add_argument(
        "--out",
        metavar="FILE",
        help="where to write the HTML (default: var/reports/<park>-<month>[-anonymous].html "
        "beside the park file)",
    )
    r.set_defaults(func=_cmd_report)


def _cmd_report(args) -> int:
    from greenfoundry.park import config, report

    park = config.load(args.park)
    path = report.make(
        park,
        args.month,
        anonymise=True if args.anonymise else None,
        stack=args.stack,
        out=args.out,
    )
    print(path)
    return 0
