"""`greenfoundry ingest` and `greenfoundry status`."""

from __future__ import annotations

import math

from greenfoundry import plant as plant_config
from greenfoundry.errors import InputError, UsageError


def load_config(args):
    """The plant config of `--config`, pointed at `--stack DIR` when given."""
    stack = getattr(args, "stack", None)
    cfg = plant_config.load(args.config, resolve_secrets=not stack)
    if stack:
        from greenfoundry.stack import apply_stack

        cfg = apply_stack(cfg, stack)
    return cfg


def add_config_args(p) -> None:
    p.add_argument("--config", required=True, help="the plant config (YAML)")
    p.add_argument(
        "--stack",
        metavar="DIR",
        help="use the local stack in DIR (its stack.json) for MQTT and InfluxDB "
        "endpoints and credentials instead of the config's",
    )


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="run the MQTT → InfluxDB ingest in the foreground",
        description="Subscribe to the plant's topics (QoS 1, persistent session), write readings "
        "to InfluxDB (or the local spool while it is unreachable) and acknowledge "
        "each message only once it is durable. SIGTERM or Ctrl-C drains, flushes "
        "and exits 0.",
    )
    add_config_args(p)
    p.add_argument(
        "--instance",
        metavar="NAME",
        help="one of several ingest processes of this plant (with mqtt.share_group): appends "
        "NAME to the client id, the spool directory and the dead-letter file, so each process "
        "has its own session and spool",
    )
    p.set_defaults(func=_cmd_ingest)

    s = subparsers.add_parser(
        "status",
        help="show the ingest's self-metrics, spool and dead letters",
        description="Reads the latest `gf_ingest` self-metrics of each ingest instance of the "
        "plant from InfluxDB (last 24 h) and the local spool and dead-letter file.",
    )
    add_config_args(s)
    s.add_argument(
        "--hours",
        type=float,
        default=24.0,
        help="how far back to look for self-metrics (default 24)",
    )
    s.set_defaults(func=_cmd_status)


def _cmd_ingest(args) -> int:
    from greenfoundry.ingest.service import run_foreground

    return run_foreground(load_config(args), args.instance)


def _cmd_status(args) -> int:
    from greenfoundry.ingest.service import SELF_MEASUREMENT
    from greenfoundry.ingest.spool import Spool
    from greenfoundry.store import InfluxStore, quote_ident, where

    if not (math.isfinite(args.hours) and args.hours > 0):
        raise UsageError(f"--hours {args.hours:g} is not allowed; expected a number above 0")
    cfg = load_config(args)
    store = InfluxStore.from_config(cfg.influxdb)
    version = store.ping()
    print(f"influxdb   {cfg.influxdb.url}  {'version ' + version if version else 'NOT ANSWERING'}")
    if version:
        # The latest row of each instance. (LAST(*) would give each field's last value but,
        # with several selectors, InfluxQL reports the query's lower time bound as the time.)
        recent = where({"plant": cfg.plant.id}, last_s=max(1, round(args.hours * 3600)))
        df = store.query(
            f"SELECT * FROM {quote_ident(SELF_MEASUREMENT)} {recent} "
            f"GROUP BY {quote_ident('instance')} ORDER BY time DESC LIMIT 1"
        )
        if df.empty:
            print(
                f"ingest     no self-metrics for plant {cfg.plant.id} in the last {args.hours:g} h"
            )
        for _, row in df.iterrows():
            v = {
                k: row[k]
                for k in row.index
                if k not in ("measurement", "time", "instance", "plant")
            }
            print(f"ingest     {row['instance']}  as of {row['time']:%Y-%m-%d %H:%M:%S}Z")
            print(
                f"  received {v.get('received', 0):.0f}  written {v.get('written', 0):.0f}  "
                f"spooled {v.get('spooled', 0):.0f}  replayed {v.get('replayed', 0):.0f}  "
                f"rejected {v.get('rejected', 0):.0f}  sequence gaps "
                f"{v.get('seq_gaps', 0):.0f}  spool pending {v.get('spool_pending', 0):.0f}"
            )
            reasons = {
                k[len("rejected_") :]: n for k, n in v.items() if k.startswith("rejected_") and n
            }
            if reasons:
                print(
                    "  rejected by reason: "
                    + ", ".join(f"{k} {n:.0f}" for k, n in sorted(reasons.items()))
                )
    try:
        spool = Spool(cfg.ingest.spool_dir, readonly=True)
        print(
            f"spool      {cfg.ingest.spool_dir}: {spool.pending_readings} readings in "
            f"{len(spool)} batches waiting"
        )
    except OSError as exc:
        raise InputError(
            f"ingest.spool_dir: cannot read the spool {cfg.ingest.spool_dir}: {exc.strerror}"
        ) from None
    dead = cfg.ingest.deadletter_file
    try:  # one record per line; counted as bytes, so a damaged record is still one
        with dead.open("rb") as fh:
            count = sum(1 for _ in fh)
    except FileNotFoundError:
        count = 0
    except OSError as exc:
        raise InputError(
            f"ingest.deadletter_file: cannot read the dead letters {dead}: {exc.strerror}"
        ) from None
    print(f"deadletter {dead}: {count} records")
    return 0 if version else 1
