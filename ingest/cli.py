"""`greenfoundry ingest` and `greenfoundry status`."""

from __future__ import annotations

import math
import time

from greenfoundry import plant as plant_config
from greenfoundry.errors import InputError, UsageError

# What each command resolves of the config's secrets (`secret_keys`): its own role's only, so
# a container holds only the secrets of the component it runs (README.md, "Deployment").
# "mqtt" is the ingest's broker account (`mqtt.password`), "influx:<role>" that role's InfluxDB
# user, "channels" the alert channels a rule or the monthly report sends to.
INGEST_SECRETS = ("mqtt", "influx:ingest")
READER_SECRETS = ("influx:reader",)
# The CLI tools that run beside the metrics service (alerts list/ack, grade, report, park
# report): the metrics and reader users and the channels, never the ingest's secrets.
TOOL_SECRETS = ("influx:metrics", "influx:reader", "channels")


def secret_keys(cfg, secrets: tuple[str, ...]) -> tuple[str, ...]:
    """The config key paths (`greenfoundry.plant.ScopedEnv`) of `secrets`, for `cfg` read
    without secrets."""
    keys: list[str] = []
    for name in secrets:
        if name == "mqtt":
            keys.append("mqtt.password")
        elif name.startswith("influx:"):
            keys += plant_config.influx_secret_keys(cfg, name.split(":", 1)[1])
        elif name == "channels":
            keys += [f"alerts.channels.{c}" for c in dispatched_channels(cfg)]
        else:
            raise ValueError(f"unknown secret group {name!r}")
    return tuple(keys)


def dispatched_channels(cfg) -> tuple[str, ...]:
    """The alert channels the metrics service sends to: those of the enabled rules (the
    default rules take `alerts.default_channels`) and `report.channels`. A channel no one
    sends to keeps its secret unresolved."""
    names = {c for r in cfg.alerts.rules if r.enabled for c in r.channels}
    names.update(cfg.report.channels if cfg.report is not None else ())
    return tuple(sorted(names))


def load_config(args, *, secrets: tuple[str, ...] | None = None, mqtt_secret: bool = True):
    """The plant config of `--config`, pointed at `--stack DIR` when given. Without `--stack`,
    only the secrets of `secrets` are resolved (`secret_keys`; every key is still checked), so
    a secret another component uses may be unset here, and one this command needs stops it
    naming its key. Without `secrets`, `mqtt_secret` false resolves the tools' (`TOOL_SECRETS`:
    the callers that run beside the metrics service), and true every secret."""
    stack = getattr(args, "stack", None)
    if secrets is None and not mqtt_secret:
        secrets = TOOL_SECRETS
    only = None if secrets is None else (lambda unresolved: secret_keys(unresolved, secrets))
    cfg = plant_config.load(args.config, resolve_secrets=not stack, only=only)
    if stack:
        from greenfoundry.stack import apply_stack

        # The ingest's own broker account: it may subscribe, not publish (least privilege).
        # `status` and the metrics never connect to the broker; InfluxDB users go by role.
        cfg = apply_stack(cfg, stack, role="ingest")
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
        "SEEN. Reads only InfluxDB, as the reader: no other secret is needed.",
    )
    add_config_args(s)
    s.add_argument(
        "--hours",
        type=float,
        default=24.0,
        help="how far back to look for self-metrics (default 24)",
    )
    s.add_argument(
        "--check",
        action="store_true",
        help="a health check: print one line and exit 0 when every ingest instance of the "
        "plant (each declared one, else the one of mqtt.client_id) wrote self-metrics within "
        "three intervals, 1 saying why when one is stale or has none, or InfluxDB does not "
        "answer or refuses the reader",
    )
    s.set_defaults(func=_cmd_status)


def _cmd_ingest(args) -> int:
    from greenfoundry.ingest.service import forget_session, run_foreground

    if args.force and not args.forget_session:
        raise UsageError("--force is allowed only with --forget-session")
    cfg = load_config(args, secrets=INGEST_SECRETS)
    if args.forget_session:
        if args.instance:
            raise UsageError("give --forget-session or --instance, not both")
        forget_session(cfg, args.forget_session, force=args.force)
        print(f"forgot the session of {args.forget_session!r} at {cfg.mqtt.host}:{cfg.mqtt.port}")
        return 0
    return run_foreground(cfg, args.instance)


def _cmd_status(args) -> int:
    from greenfoundry.ingest.service import for_instance
    from greenfoundry.store import InfluxStore

    if not (math.isfinite(args.hours) and args.hours > 0):
        raise UsageError(f"--hours {args.hours:g} is not allowed; expected a number above 0")
    cfg = load_config(args, secrets=READER_SECRETS)
    store = InfluxStore.from_config(cfg.influxdb, role="reader")
    if args.check:
        healthy, why = _check(cfg, store, args.hours)
        print(f"{'ok' if healthy else 'unhealthy'}: {why}")
        return 0 if healthy else 1
    version = store.ping()
    print(f"influxdb   {cfg.influxdb.url}  {'version ' + version if version else 'NOT ANSWERING'}")
    if version:
        df = _self_metrics(cfg, store, args.hours)
        if df.empty:
            print(
                f"ingest     no self-metrics for plant {cfg.plant.id} in the last {args.hours:g} h"
            )
        stale_s = _stale_s(cfg)
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


def _self_metrics(cfg, store, hours: float):
    """The latest `gf_ingest` row of each instance of the plant in the last `hours`. (LAST(*)
    would give each field's last value but, with several selectors, InfluxQL reports the
    query's lower time bound as the time.)"""
    from greenfoundry.ingest.service import SELF_MEASUREMENT
    from greenfoundry.store import quote_ident, where

    recent = where({"plant": cfg.plant.id}, last_s=max(1, round(hours * 3600)))
    return store.query(
        f"SELECT * FROM {quote_ident(SELF_MEASUREMENT)} {recent} "
        f"GROUP BY {quote_ident('instance')} ORDER BY time DESC LIMIT 1"
    )


def _stale_s(cfg) -> float:
    """A live ingest writes a point every interval (and a last one when it stops): a latest
    point older than three intervals is stale."""
    return 3 * cfg.ingest.self_metrics_interval_s


def _check(cfg, store, hours: float, now_s: float | None = None) -> tuple[bool, str]:
    """`status --check`: (healthy, the one line saying why). The instances checked are the
    declared ones, or the one process that takes the whole plant, whose self-metrics carry
    its client id; another instance's old points (a renamed client id) do not count."""
    from greenfoundry.errors import StoreError

    version = store.ping()
    if not version:
        return False, f"influxdb at {cfg.influxdb.url} does not answer"
    try:
        df = _self_metrics(cfg, store, hours)
    except StoreError as exc:
        return False, f"influxdb at {cfg.influxdb.url} refused the query: {exc}"
    now_s = time.time() if now_s is None else now_s
    latest = {row["instance"]: now_s - row["time"].timestamp() for _, row in df.iterrows()}
    expected = cfg.mqtt.instance_names() or (cfg.mqtt.client_id,)
    stale_s = _stale_s(cfg)
    for name in expected:
        if name not in latest:
            return False, (
                f"ingest {name} of plant {cfg.plant.id}: no self-metrics in the last {hours:g} h"
            )
        if latest[name] > stale_s:
            return False, (
                f"ingest {name} of plant {cfg.plant.id}: STALE, its last self-metrics "
                f"{_ago(latest[name])} (more than {stale_s:g} s, three intervals)"
            )
    ages = ", ".join(f"{n} {latest[n]:.0f} s ago" for n in expected)
    return True, f"ingest of plant {cfg.plant.id} wrote self-metrics: {ages}"


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
