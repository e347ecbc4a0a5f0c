"""``greenfoundry alerts list`` and ``greenfoundry alerts ack`` (alerts/README.md, "Commands").

`list` reads the transitions the alerts engine wrote to ``gf_alert`` as the reader role, in a
bounded time range, newest first. `ack` acknowledges a firing alert in the persisted state
(``alerts.sqlite``) and writes its ``acknowledged`` transition to ``gf_alert`` as the metrics
role, both or neither, then leaves its notification in the dispatcher's outbox for the running
service to send to the rule's channels. The library raises GreenfoundryError subclasses; the top-level CLI prints
them as one ``error: …`` line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time
import zoneinfo
from typing import Any

from greenfoundry.errors import UsageError
from greenfoundry.store import InfluxStore, quote_ident, quote_string, where

MEASUREMENT = "gf_alert"
NS = 1_000_000_000
DAY_NS = 86400 * NS
LIST_DAYS = 7  # `list` without --since: the last 7 days
FIRING_DAYS = 400  # `list --firing` without --since looks this far back for the newest transition
FIELDS = ("alert_id", "state", "from_state", "event", "severity", "kind", "value", "limit",
          "unit", "message", "since_ns", "acked_by")  # fmt: skip


def register(subparsers) -> None:
    from greenfoundry.ingest.cli import add_config_args
    from greenfoundry.scoring.cli import _date

    p = subparsers.add_parser(
        "alerts",
        help="the plant's alerts: list the transitions, acknowledge a firing alert",
        description="The alerts the metrics service evaluates (alerts/README.md).",
    )
    sub = p.add_subparsers(dest="alerts_command", metavar="COMMAND")
    p.set_defaults(func=lambda args: _usage(p))

    ls = sub.add_parser(
        "list",
        help="the alert transitions stored in InfluxDB, newest first",
        description=(
            "Print the alert transitions of the plant (gf_alert, written by the alerts engine) "
            "newest first, in plant-local time, as the reader role: by default those of the "
            f"last {LIST_DAYS} days. --firing prints instead the alerts firing now (each "
            "target's newest transition leaves it FIRING, or STALE over a firing alert), with "
            "who acknowledged them."
        ),
    )
    add_config_args(ls)
    ls.add_argument("--firing", action="store_true", help="only the alerts that fire now")
    ls.add_argument(
        "--since",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help=f"from the start of this plant-local day (default: {LIST_DAYS} days back; "
        f"with --firing, {FIRING_DAYS} days)",
    )
    ls.add_argument("--json", action="store_true", help="print the transitions as JSON")
    ls.set_defaults(func=cmd_list)

    ack = sub.add_parser(
        "ack",
        help="acknowledge a firing alert: its repeats stop until it resolves",
        description=(
            "Acknowledge the firing alert ID (as shown by `greenfoundry alerts list --firing` "
            "and in its notifications): its repeat notifications stop until it resolves; the "
            "next firing is a new alert. Writes the acknowledgement to the alert state "
            "(alerts.sqlite in alerts.state_dir) and an `acknowledged` transition with acked_by "
            "to InfluxDB as the metrics role, both or neither."
        ),
    )
    ack.add_argument("id", metavar="ID", help="the alert's id, e.g. stack-warning-1a2b3c4d5e")
    ack.add_argument("--by", required=True, metavar="NAME", help="who acknowledges")
    add_config_args(ack)
    ack.set_defaults(func=cmd_ack)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# --------------------------------------------------------------------------- list


def cmd_list(args: argparse.Namespace) -> int:
    from greenfoundry.ingest.cli import load_config

    cfg = load_config(args, mqtt_secret=False)
    tz = zoneinfo.ZoneInfo(cfg.plant.timezone)
    now_ns = time.time_ns()
    if args.since is not None:
        start = dt.datetime.combine(args.since, dt.time(), tz)
        start_ns = int(start.timestamp()) * NS
    else:
        start_ns = now_ns - (FIRING_DAYS if args.firing else LIST_DAYS) * DAY_NS
    # Transitions are stamped with event time, which never runs ahead of the readings; a day
    # of margin covers a plant clock that does.
    end_ns = now_ns + DAY_NS
    if start_ns >= end_ns:
        raise UsageError(f"--since {args.since}: a day in the future; expected today or before")
    store = InfluxStore.from_config(cfg.influxdb, role="reader")
    if args.firing:
        rows = read_firing(store, cfg.plant.id, start_ns, end_ns)
    else:
        rows = read_transitions(store, cfg.plant.id, start_ns, end_ns)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print(list_text(rows, tz, cfg.plant.timezone, start_ns, firing=args.firing))
    return 0


def read_transitions(store, plant_id: str, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """The plant's gf_alert points in [start_ns, end_ns), newest first, as plain dicts."""
    q = (
        f"SELECT * FROM {quote_ident(MEASUREMENT)} "
        f"{where({'plant': plant_id}, start_ns=start_ns, end_ns=end_ns)} ORDER BY time DESC"
    )
    return _rows(store.query(q))


def read_firing(store, plant_id: str, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """The alerts firing now: each (rule, target)'s newest transition in the range, kept when it
    leaves the target FIRING, or STALE over a firing alert (such a transition carries the alert's
    id); with `acked_by` from the alert's acknowledgement, newest first."""
    bounds = where({"plant": plant_id}, start_ns=start_ns, end_ns=end_ns)
    # An acknowledgement changes no state, and `alerts ack` stamps it with the wall clock while
    # the engine stamps its transitions with event time, which lags it: an acknowledgement can
    # be newer than the resolution that ended its alert. The state is the newest of the rest.
    newest = _rows(
        store.query(
            f"SELECT * FROM {quote_ident(MEASUREMENT)} {bounds} "
            f'AND "event" != {quote_string("acknowledged")} '
            'GROUP BY "rule", "target" ORDER BY time DESC LIMIT 1'
        )
    )
    acks = _rows(
        store.query(
            f'SELECT "alert_id", "acked_by" FROM {quote_ident(MEASUREMENT)} {bounds} '
            f'AND "event" = {quote_string("acknowledged")}'
        )
    )
    acked = {a["alert_id"]: a["acked_by"] for a in acks if a.get("acked_by")}
    out = []
    for row in newest:
        if row.get("state") in ("FIRING", "STALE") and row.get("alert_id"):
            row["acked_by"] = row.get("acked_by") or acked.get(row["alert_id"])
            out.append(row)
    return sorted(out, key=lambda r: r["time_ns"], reverse=True)


def _rows(df) -> list[dict[str, Any]]:
    if df is None or df.empty:
        return []
    out = []
    for rec in df.to_dict("records"):
        t = rec.pop("time")
        row: dict[str, Any] = {"time": t.isoformat().replace("+00:00", "Z"), "time_ns": t.value}
        for key in ("plant", "rule", "target", *FIELDS):
            value = rec.get(key)
            if isinstance(value, float) and math.isnan(value):
                value = None
            if key == "since_ns" and value is not None:
                value = int(value)
            row[key] = value
        out.append(row)
    return out


def list_text(rows, tz, tz_name: str, start_ns: int, *, firing: bool) -> str:
    """The rows as a table, plant-local time first, the subject line last."""
    since = dt.datetime.fromtimestamp(start_ns / NS, dt.UTC).astimezone(tz)
    if not rows:
        what = "no alert fires" if firing else "no alert transition"
        return f"{what} since {since:%Y-%m-%d %H:%M} ({tz_name})"
    head = ("time", "severity", "state", "event", "rule", "target", "alert", "message")
    if firing:
        head = (*head[:-1], "acked by", "message")
    table = [head]
    for r in rows:
        t = dt.datetime.fromtimestamp(r["time_ns"] / NS, dt.UTC).astimezone(tz)
        state = f"{r['from_state'] or '?'}→{r['state'] or '?'}"
        cells = [f"{t:%Y-%m-%d %H:%M}", r["severity"] or "", state, r["event"] or "",
                 r["rule"] or "", r["target"] or "", r["alert_id"] or ""]  # fmt: skip
        if firing:
            cells.append(r.get("acked_by") or "")
        cells.append(r["message"] or "")
        table.append(tuple(cells))
    widths = [max(len(row[i]) for row in table) for i in range(len(head) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in table
    ]
    return f"time in {tz_name}\n" + "\n".join(lines)


# --------------------------------------------------------------------------- ack


def cmd_ack(args: argparse.Namespace) -> int:
    from greenfoundry.alerts import messages
    from greenfoundry.alerts.dispatch import Dispatcher
    from greenfoundry.alerts.engine import transition_line
    from greenfoundry.alerts.state import AlertStore
    from greenfoundry.ingest.cli import load_config

    cfg = load_config(args, mqtt_secret=False)
    targets = {(t.rule.id, t.key): t for t in cfg.alerts.targets(cfg)}
    writer = InfluxStore.from_config(cfg.influxdb, role="metrics")
    made = []

    def write(transition, state) -> None:
        target = targets.get((transition.rule_id, transition.key))
        if target is None:
            raise UsageError(
                f"alert {transition.alert_id}: rule {transition.rule_id} of {transition.key} is "
                "no longer in this plant's alerts config, so nothing evaluates it any more; "
                "put the rule back to let it resolve (closing such alerts is not built yet)"
            )
        note = messages.notification(cfg, target, transition, None, state, cfg.alerts.link)
        writer.write_lines([transition_line(cfg.plant.id, target, transition, state, note.subject)])
        made.append((note, target.rule.channels))

    with AlertStore(cfg.alerts.state_dir) as store:
        tr = store.acknowledge(args.id, args.by, time.time_ns(), then=write)
    # The rule's channels say who acknowledged it. This process only writes the outbox (durable
    # once submit returns); the metrics service's dispatcher sends it, now or when it starts.
    note, channels = made[0]
    outbox = Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir, deliver=False)
    try:
        outbox.submit(note, channels)
    finally:
        outbox.close()
    tz = zoneinfo.ZoneInfo(cfg.plant.timezone)
    at = dt.datetime.fromtimestamp(tr.at_ns / NS, dt.UTC).astimezone(tz)
    print(
        f"acknowledged {tr.alert_id} ({tr.rule_id}, {tr.key}) by {args.by.strip()} at "
        f"{at:%Y-%m-%d %H:%M} ({cfg.plant.timezone}): no more repeats until it resolves; "
        f"the notice goes to {', '.join(channels)}"
    )
    return 0
