"""`greenfoundry report`: the monthly grade snapshot of one month, made on demand."""

from __future__ import annotations


def register(subparsers) -> None:
    from greenfoundry.ingest.cli import add_config_args

    p = subparsers.add_parser(
        "report",
        help="the monthly grade snapshot of a plant-local month: JSON and an HTML report",
        description="Score the plant-local month YYYY-MM and the 12 months ending with it from "
        "the stored rollups and the evidence beside the plant config (as of the month's last "
        "day), and store the snapshot: <report.dir>/<plant>/<plant>-<YYYY-MM>.json and .html "
        "(and .pdf), and the point gf_snapshot in InfluxDB. Made again when it exists: the same "
        "data gives the same files apart from the generation time. Nothing is sent; the "
        "metrics service sends the snapshots it makes when they fall due. Prints the paths.",
    )
    add_config_args(p)
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the plant-local month")
    p.add_argument(
        "--pdf",
        action="store_true",
        help="also print the report to PDF with headless Chromium (default: report.pdf)",
    )
    p.set_defaults(func=_cmd_report)


def _cmd_report(args) -> int:
    from greenfoundry.grade import snapshot
    from greenfoundry.ingest.cli import load_config

    cfg = load_config(args, mqtt_secret=False)
    snapshot.month_window(cfg, args.month)
    stored = snapshot.make(cfg, args.month, pdf=True if args.pdf else None)
    for path in (stored.json_path, stored.html_path, stored.pdf_path):
        if path is not None:
            print(path)
    return 0
