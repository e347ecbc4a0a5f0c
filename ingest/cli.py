"""`greenfoundry ingest` and `greenfoundry status`."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from greenfoundry import inputs
from greenfoundry import plant as plant_config
from greenfoundry.errors import ConfigError, InputError, UsageError


def load_config(args, *, mqtt_secret: bool = True, influx_roles: tuple[str, ...] | None = None):
    """The plant config of `--config`, pointed at `--stack DIR` when given. With `mqtt_secret`
    false the MQTT password is not resolved (nor asked for): `status` reads only InfluxDB.
    With `influx_roles` (and no `--stack`), no secret is resolved but those InfluxDB roles'
    (every key is still checked): `status` reads as the reader, and a missing ingest or channel
    secret must not stop it."""
    stack = getattr(args, "stack", None)
    if stack or mqtt_secret:
        cfg = plant_config.load(args.config, resolve_secrets=not stack)
    elif influx_roles is not None:
        cfg = _with_influx_secrets(Path(args.config), influx_roles)
    else:
        path = Path(args.config)
        raw, _ = inputs.read(path, "the plant config", ConfigError)
        mqtt_raw = raw.get("mqtt") if isinstance(raw, dict) else None
        if isinstance(mqtt_raw, dict):
            # Without its password keys: nothing asks for the MQTT password, the rest is checked.
            raw = {
                **raw,
                "mqtt": {k: v for k, v in mqtt_raw.items() if not k.startswith("password_")},
            }
        cfg = plant_config.parse(raw, base=path.parent, env=dict(os.environ), path=path)
    if stack:
        from greenfoundry.stack import apply_stack

        # The ingest's own broker account: it may subscribe, not publish (least privilege).
        # `status` and the metrics never connect to the broker; InfluxDB users go by role.
        cfg = apply_stack(cfg, stack, role="ingest")
    return cfg


def _with_influx_secrets(path: Path, roles: tuple[str, ...]):
    """The plant config of `path` with only `roles`' InfluxDB secrets resolved: each role's own
    user (`influxdb.users.<role>`), or the shared `influxdb.password`/`token` a role without
    one falls back to."""
    import dataclasses

    from greenfoundry.plant import InfluxUser, _ConfigNode, _secret

    raw, _ = inputs.read(path, "the plant config", ConfigError)
    cfg = plant_config.parse(raw, base=path.parent, env=None, path=path)
    env = dict(os.environ)
    node = _ConfigNode(raw["influxdb"], "influxdb", file=inputs.display(path), error=ConfigError)
    influx = cfg.influxdb
    users = dict(influx.users)
    for role in roles:
        if role in users:
            own = node.child("users").child(role)
            users[role] = InfluxUser(
                users[role].username, _secret(own, "password", env), _secret(own, "token", env)
            )
        else:
            influx = dataclasses.replace(
                influx, password=_secret(node, "password", env), token=_secret(node, "token", env)
            )
    return dataclasses.replace(cfg, influxdb=dataclasses.replace(influx, users=users))


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
        help="one of the ingest processes declared in mqtt.instances (or share_members): it "
        "subscribes to that instance's topics and appends NAME to the client id, the spool "
        "directory and the dead-letter file, so each process has its own session and spool; "
        "an undeclared NAME is refused",
    )
    p.add_argument(
        "--forget-session",
        metavar="CLIENT_ID",
        help="remove the broker's session of CLIENT_ID (connect with it, clean start, session "
        "expiry 0, disconnect) and exit: what it had queued is gone. For an old instance or "
        "share-group member; refused for an id that is not this plant's ingest's without "
        "--force. Do not use it on a running ingest's id",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --forget-session: remove the session of any client id",
    )
    p.set_defaults(func=_cmd_ingest)

    s = subparsers.add_parser(
        "status",
        help="show the ingest's self-metrics, spool and dead letters",
        description="Reads the latest `gf_ingest` self-metrics of each ingest instance of the "
        "plant from InfluxDB (last 24 h), the broker's dropped-message count they report, and "
        "the local spool and dead-letter file. An instance whose latest point is older than "
        "three self-metrics intervals is marked STALE, a declared instance without one NOT "
        "SEEN. Reads only InfluxDB: the MQTT password is not needed.",
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
    from greenfoundry.ingest.service import forget_session, run_foreground

    if args.force and not args.forget_session:
        raise UsageError("--force is allowed only with --forget-session")
    cfg = load_config(args)
    if args.forget_session:
        if args.instance:
            raise UsageError("give --forget-session or --instance, not both")
        forget_session(cfg, args.forget_session, force=args.force)
        print(f"forgot the session of {args.forget_session!r} at {cfg.mqtt.host}:{cfg.mqtt.port}")
        return 0
    return run_foreground(cfg, args.instance)


def _cmd_status(args) -> int:
    from greenfoundry.ingest.service import SELF_MEASUREMENT, for_instance
    from greenfoundry.store import InfluxStore, quote_ident, where

    if not (math.isfinite(args.hours) and args.hours > 0):
        raise UsageError(f"--hours {args.hours:g} is not allowed; expected a number above 0")
    cfg = load_config(args, mqtt_secret=False, influx_roles=("reader",))
    store = InfluxStore.from_config(cfg.influxdb, role="reader")
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
        # A live ingest writes a point every interval (and a last one when it stops).
        stale_s = 3 * cfg.ingest.self_metrics_interval_s
        now_s = time.time()
        seen = set()
        for _, row in df.iterrows():
            # A field the point lacks (an older ingest's) reads as null: not shown as a number.
            v = {
                k: row[k]
                for k in row.index
                if k not in ("measurement", "time", "instance", "plant")
                and row[k] is not None
                and row[k] == row[k]
            }
            seen.add(row["instance"])
            age_s = now_s - row["time"].timestamp()
            state = f"  STALE: nothing since {_ago(age_s)}" if age_s > stale_s else ""
            print(f"ingest     {row['instance']}  as of {row['time']:%Y-%m-%d %H:%M:%S}Z{state}")
            print(
                f"  received {v.get('received', 0):.0f}  written {v.get('written', 0):.0f}  "
                f"spooled {v.get('spooled', 0):.0f}  replayed {v.get('replayed', 0):.0f}  "
                f"rejected {v.get('rejected', 0):.0f}  sequence gaps "
                f"{v.get('seq_gaps', 0):.0f}  spool pending {v.get('spool_pending', 0):.0f}"
            )
            dropped = v.get("broker_dropped")
            if dropped is not None:
                print(
                    f"  broker dropped {dropped:.0f} messages since it started"
                    + ("  (MESSAGES LOST: size the broker's queue limits)" if dropped else "")
                )
            reasons = {
                k[len("rejected_") :]: n for k, n in v.items() if k.startswith("rejected_") and n
            }
            if reasons:
                print(
                    "  rejected by reason: "
                    + ", ".join(f"{k} {n:.0f}" for k, n in sorted(reasons.items()))
                )
        for name in cfg.mqtt.instance_names():
            if name not in seen:
                print(
                    f"ingest     {name}  NOT SEEN: declared in mqtt."
                    f"{'instances' if cfg.mqtt.instances else 'share_members'}, no self-metrics "
                    f"in the last {args.hours:g} h"
                )
    # Each declared instance keeps its own spool and dead letters.
    names = cfg.mqtt.instance_names()
    for local in [for_instance(cfg, n) for n in names] if names else [cfg]:
        _print_local(local)
    return 0 if version else 1


def _print_local(cfg) -> None:
    from greenfoundry.ingest.spool import Spool

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


def _ago(seconds: float) -> str:
    """`3 h 12 min ago`, `2 d 4 h ago`, `40 s ago`."""
    s = int(seconds)
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    if s < 2 * 86400:
        return f"{s // 3600} h {s % 3600 // 60} min ago"
    return f"{s // 86400} d {s % 86400 // 3600} h ago"
