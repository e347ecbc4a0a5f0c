"""`greenfoundry demo`: a self-contained local run of the whole data path.

Starts a local Mosquitto + InfluxDB (`stack up`), the ingest, the rollup engine (`metrics`, in a
thread of this process, reading and writing through the store) and the simulated plant
publishing faster than real time with a few bad payloads mixed in, then prints one line a second:
readings per second, what is written, spooled and rejected, and what the metrics compute from
InfluxDB: per furnace the energy per tonne of the running shift against its corrected Table C.1
limits and tier, the worst stack's latest valid hourly multiple of C, the rolling F and level
(`grade`), and the alerts firing now. The metrics service runs the alerts too: the simulated
melting stack drifts towards 0.8 C in one episode of the run (unless `--no-excursion`), so a
warning fires and, when the bags are changed, resolves; both show in the log and in
`alerts.jsonl`. Ctrl-C (or `--duration`) stops everything in order: the simulator, the ingest
(drained), the metrics, then the stack unless `--keep-stack`. At the end the demo writes the
monthly grade snapshot of the simulated month (`grade.snapshot`) and prints the report's path.

A second run on the same `--dir` would replay plant time the database already holds (the
simulator always ends its run at the wall clock), so the live values would stand still until it
caught up: when the stored readings reach into the planned run, the plant's series are dropped
and the metrics state is cleared first (a fresh database), and the demo says so.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

from greenfoundry import plant as plant_config
from greenfoundry.config import plant_file
from greenfoundry.errors import BrokerError, StoreError

log = logging.getLogger(__name__)

DEFAULT_CONFIG = plant_file()
LATEST_WITHIN_S = 30 * 86400  # the live line shows values of the last 30 days
METRICS_INTERVAL_S = 5  # the demo's plant runs 60× faster: the metrics recompute every 5 s


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run a local stack, the simulated plant and the ingest, and watch it flow",
        description="Self-contained local demo: starts Mosquitto and InfluxDB under --dir, the "
        "ingest, and a simulated ductile-iron pipe plant publishing --speed times "
        "faster than real time (with a few bad payloads the ingest must reject), and "
        "prints a live line every second. Ctrl-C stops it.",
    )
    p.add_argument(
        "--dir",
        default="var/demo",
        help="directory for the stack's data, the spool and dead letters (default var/demo)",
    )
    p.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        help="plant config (default: the demo plant, config/plants/demo-dip/plant.yaml)",
    )
    p.add_argument(
        "--speed", type=float, default=60.0, help="plant seconds per wall second (default 60)"
    )
    p.add_argument(
        "--plant-hours",
        type=float,
        default=24.0,
        help="hours of plant time to simulate, ending now (default 24: at speed 60, 24 minutes "
        "of wall time)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many wall seconds (default: until Ctrl-C)",
    )
    p.add_argument(
        "--backfill-days",
        type=float,
        default=0.0,
        help="first publish this many days of history as fast as possible",
    )
    p.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    p.add_argument(
        "--faults",
        default="bad_payloads,spikes",
        help="simulator fault modes (default bad_payloads,spikes)",
    )
    p.add_argument(
        "--no-excursion",
        action="store_true",
        help="leave out the stack excursion that shows an alert firing and resolving",
    )
    p.add_argument(
        "--keep-stack", action="store_true", help="leave Mosquitto and InfluxDB running at the end"
    )
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    import dataclasses
    import signal

    from greenfoundry.ingest.service import Ingest
    from greenfoundry.sim.faults import Faults
    from greenfoundry.sim.publisher import SimulatorThread, plan_run
    from greenfoundry.stack import LocalStack, apply_stack

    base = Path(args.dir).resolve()
    # Options the simulator would refuse are refused now (UsageError), before anything starts.
    faults = Faults.parse(args.faults)
    plan = plan_run(
        time.time(),
        duration_s=args.plant_hours * 3600,
        speed=args.speed,
        backfill_days=args.backfill_days,
    )
    cfg = plant_config.load(args.config, resolve_secrets=False)
    if not args.no_excursion:
        faults = _with_excursion(faults, plan, args.plant_hours)
    stack = LocalStack(base / "stack")
    print(f"starting Mosquitto and InfluxDB under {stack.dir} …", flush=True)
    stack.up()
    # Each component with its own account (least privilege): the ingest's here, a device's for
    # the simulator below, the metrics' and a reader's for what the live line reads.
    cfg = apply_stack(cfg, stack.dir, role="ingest")
    cfg = dataclasses.replace(
        cfg,
        ingest=dataclasses.replace(
            cfg.ingest,
            spool_dir=base / "spool",
            deadletter_file=base / "deadletter.jsonl",
            self_metrics_interval_s=min(cfg.ingest.self_metrics_interval_s, 5),
        ),
    )
    _fresh_if_replayed(cfg, stack, plan, base / "metrics", base / "alerts")
    cfg = dataclasses.replace(
        cfg,
        metrics=dataclasses.replace(
            cfg.metrics,
            state_dir=base / "metrics",
            interval_s=min(cfg.metrics.interval_s, METRICS_INTERVAL_S),
        ),
    )
    cfg = _demo_alerts_and_reports(cfg, base)
    info = stack.info
    print(
        f"mqtt://{info.mqtt_host}:{info.mqtt_port}  {info.influx_url}/{info.influx_database}"
        f"  (credentials in {stack.state_file})",
        flush=True,
    )

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ingest = Ingest(cfg, instance="demo")
    sim = None
    metrics = None
    try:
        ingest.start()
        if not ingest.wait_connected(15):
            raise BrokerError("the ingest could not connect to the local Mosquitto")
        start = (plan.backfill or plan.live)[0].timestamp()
        end = plan.live[1] if plan.live and plan.live[1] else None
        plant_time = _PlantTime(start, end.timestamp() + 60 if end else time.time() + 60)
        sim = SimulatorThread(
            apply_stack(cfg, stack.dir, role="device"),
            on_message=plant_time.on_message,
            seed=args.seed,
            speed=args.speed,
            faults=faults,
            backfill_days=args.backfill_days,
            duration_s=args.plant_hours * 3600,
        )
        sim.start()
        metrics = _start_metrics(cfg, args.plant_hours * 3600 / args.speed, plant_time)
        _watch(ingest, sim, metrics, cfg, stop, args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        print("\nstopping …", flush=True)
        if sim is not None:
            stats = sim.stop(60)
            if stats is not None:
                # Plain counts of what was published and acknowledged in this run.
                print(
                    f"simulator: published {stats.messages} messages ({stats.readings} readings, "
                    f"{stats.bad_payloads} bad payloads), {stats.acked} acknowledged, "
                    f"{stats.refused} refused"
                )
        ingest.stop()
        if metrics is not None:
            metrics.stop()
            print(
                f"metrics: {metrics.runs} runs, rollups in {cfg.influxdb.database} (gf_c1_*, gf_air_*)"
            )
            _alerts_summary(cfg)
            _monthly_report(cfg, plan)
        c = ingest.counters
        print(
            f"ingest: received {c.received}, written {c.written}, spooled {c.spooled}, "
            f"replayed {c.replayed}, rejected {c.rejected}, dead letters in "
            f"{cfg.ingest.deadletter_file}"
        )
        if not args.keep_stack:
            stack.down()
            print("stack stopped (data kept under", stack.dir, ")")
    return 0


def _with_excursion(faults, plan, plant_hours: float):
    """The melting stack's dust drifts from an hour into the live run towards 0.76 C, and drops
    back at its peak (bags changed): the rolling hourly mean crosses the 0.7 C warning line (or
    its trend says it will reach 0.8 C) and, after the drop, clears. 0.76 C rather than the 0.8
    of the 28-day fault, so the demo shows a warning more often than an alarm."""
    import dataclasses

    from greenfoundry.sim.plant import EPOCH

    if plan.live is None or plan.live[1] is None:
        return faults
    start = plan.live[0].timestamp() - EPOCH.timestamp() + 3600.0  # the faults' time base
    peak = start + max(1.5, min(8.0, 0.5 * plant_hours)) * 3600.0
    return dataclasses.replace(
        faults, stack_drift=True, stack_drift_multiple=0.76, stack_drift_episode_s=(start, peak)
    )


class _PlantTime:
    """The simulator's plant time: the newest reading time it has published (epoch s). The
    alerts evaluate on it, so their deadman counts plant minutes, not wall seconds, and a
    simulator that starts late or falls behind never looks like a silent plant."""

    def __init__(self, start_s: float, end_s: float):
        self.newest_s = start_s
        self.end_s = end_s  # the run's last plant instant: a later `ts` is a bad payload's

    def on_message(self, topic: str, payload: bytes) -> None:
        import json
        from datetime import datetime

        try:
            ts = json.loads(payload).get("ts")
            t = datetime.fromisoformat(ts).timestamp() if isinstance(ts, str) else None
        except (ValueError, AttributeError, TypeError):
            return  # a bad payload of the fault mode, or a batch: not a clock
        if t is not None and self.newest_s < t <= self.end_s:
            self.newest_s = t

    def __call__(self) -> float:
        return self.newest_s


def _demo_alerts_and_reports(cfg, base: Path):
    """The alerts' state, their journal and the reports under the demo's folder; the alerts
    tick every second (the plant runs faster than real time), and start at the live run's
    start rather than two hours before it (where this fresh database has nothing, which would
    fire every deadman at once)."""
    import dataclasses

    from greenfoundry.alerts.channels.jsonl import JsonlChannel

    if cfg.alerts is not None:
        channels = dict(cfg.alerts.channels)
        for name, ch in channels.items():
            if isinstance(ch, JsonlChannel):
                channels[name] = JsonlChannel(name, base / "alerts" / "alerts.jsonl")
        cfg = dataclasses.replace(
            cfg,
            alerts=dataclasses.replace(
                cfg.alerts, state_dir=base / "alerts", channels=channels, interval_s=1
            ),
        )
    if cfg.report is not None:
        cfg = dataclasses.replace(cfg, report=dataclasses.replace(cfg.report, dir=base / "reports"))
    return cfg


def _alerts_summary(cfg) -> None:
    """What the alerts did in this run: the journal's notifications, one line each."""
    import json

    journal = cfg.alerts.state_dir / "alerts.jsonl" if cfg.alerts is not None else None
    if journal is None or not journal.exists():
        print("alerts: no notification in this run")
        return
    rows = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines() if x]
    # The deadmen of a run that stops are counted, not listed: the stack and furnace alerts are
    # what the run shows.
    shown = [r for r in rows if r["details"].get("kind") != "deadman"]
    print(
        f"alerts: {len(rows)} notifications in {journal} ({len(rows) - len(shown)} of them deadmen)"
    )
    for r in shown[-12:]:
        print(f"  {r['event']:>8}  {r['subject']}")


def _monthly_report(cfg, plan) -> None:
    """The monthly grade snapshot of the plant-local month the simulated run ends in."""
    from greenfoundry.grade import snapshot
    from greenfoundry.metrics.source import store_for_metrics

    if cfg.report is None:
        return
    end = (plan.live or plan.backfill)[1] or (plan.live or plan.backfill)[0]
    import pandas as pd

    month = f"{pd.Timestamp(end).tz_convert(cfg.plant.timezone):%Y-%m}"
    store = store_for_metrics(cfg)
    try:
        stored = snapshot.make(cfg, month, store=store)
    except Exception as exc:  # the demo's last step: say why, never hide the summary above
        print(f"monthly report for {month}: not made: {exc}")
        return
    finally:
        store.close()
    print(f"monthly report for {month}: {stored.html_path}")


def _fresh_if_replayed(cfg, stack, plan, metrics_dir: Path, alerts_dir: Path) -> None:
    """Drop the plant's stored series (and the metrics state) when they reach into the plant
    time this run will publish: replayed older time would leave the live values standing."""
    from greenfoundry.stack import store_for
    from greenfoundry.store import quote_string, where

    ranges = [r for r in (plan.backfill, plan.live) if r is not None]
    start_ns = int(min(r[0] for r in ranges).timestamp() * 1e9)
    admin = store_for(stack.info)
    try:
        df = admin.query(
            f'SELECT LAST("value") FROM "furnace_energy_kwh" '
            f"{where({'plant': cfg.plant.id}, last_s=400 * 86400)}"
        )
        if df.empty or int(df["time"].iloc[0].value) < start_ns:
            return
        print(
            f"the stored readings of {cfg.plant.id} reach into this run's plant time: starting on "
            "a fresh database (the plant's series dropped, the metrics state cleared)",
            flush=True,
        )
        admin.query_raw(f'DROP SERIES FROM /.*/ WHERE "plant" = {quote_string(cfg.plant.id)}')
    finally:
        admin.close()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    shutil.rmtree(alerts_dir, ignore_errors=True)


def _start_metrics(cfg, lead_s: float, alerts_clock=None):
    """The rollup engine (with the alerts and the grade) in a thread of the demo. Its clock
    runs ``lead_s`` ahead of the wall clock, so the hours of the plant time the simulator is
    still replaying are in its range; the alerts run on the plant's own time."""
    from greenfoundry.metrics.service import MetricsService

    if alerts_clock is not None and cfg.alerts is not None:
        from greenfoundry.alerts.state import AlertStore

        # A fresh alert state starts evaluating where the live run starts (see
        # _demo_alerts_and_reports).
        state = AlertStore(cfg.alerts.state_dir)
        try:
            if state.cursor_ns() is None:
                state.commit((), int(alerts_clock() * 1e9) // 60_000_000_000 * 60_000_000_000)
        finally:
            state.close()
    service = MetricsService(cfg, clock=lambda: time.time() + lead_s, alerts_clock=alerts_clock)

    def start() -> None:
        try:
            service.start()
        except Exception:  # held in service.error, which the live line shows
            service.stopped.set()  # and the alerts stop with it

    threading.Thread(target=start, name="gf-metrics", daemon=True).start()
    return service


def _watch(ingest, sim, metrics, cfg, stop: threading.Event, duration: float | None) -> None:
    from greenfoundry.store import InfluxStore

    store = InfluxStore.from_config(cfg.influxdb, role="reader")
    started = time.monotonic()
    last_received, last_t = 0, started
    while not stop.wait(1.0):
        if isinstance(sim.error, BrokerError):
            raise BrokerError(f"the simulator stopped: {sim.error}") from None
        if sim.error is not None:
            raise sim.error  # a bug: shown with its traceback
        now = time.monotonic()
        c = ingest.counters
        rate = (c.received - last_received) / (now - last_t)
        last_received, last_t = c.received, now
        print(
            f"{time.strftime('%H:%M:%S')}  {rate:6.0f} readings/s  written {c.written:>8} "
            f"spooled {c.spooled:>5} rejected {c.rejected:>4}  {_rollups(store, cfg, metrics)}",
            flush=True,
        )
        if duration is not None and now - started >= duration:
            return
        if not sim.is_alive():
            return


def _newest(store, measurement: str, tags: dict, group: str | tuple[str, ...] = "") -> list[dict]:
    """The newest point of a series (one per value of the ``group`` tags), as dicts."""
    from greenfoundry.store import quote_ident, where

    groups = (group,) if isinstance(group, str) else tuple(group)
    by = f" GROUP BY {', '.join(quote_ident(g) for g in groups if g)}" if any(groups) else ""
    df = store.query(
        f"SELECT * FROM {quote_ident(measurement)} {where(tags, last_s=LATEST_WITHIN_S)}"
        f"{by} ORDER BY time DESC LIMIT 1"
    )
    return [] if df.empty else df.to_dict("records")


def _rollups(store, cfg, metrics) -> str:
    """Per furnace: kWh/t of the running shift (its newest shift rollup) against its corrected
    limits and tier; the worst stack's newest valid hourly multiple of C."""
    from greenfoundry.metrics import schema

    if metrics.error is not None:
        return f"(metrics: {metrics.error})"
    if not metrics.ready.is_set():
        return "(metrics: reconciling the stored history …)"
    parts = []
    try:
        shifts = _newest(
            store, schema.C1_FURNACE, {"plant": cfg.plant.id, "window": "shift"}, "furnace"
        )
        for r in sorted(shifts, key=lambda r: r["furnace"]):
            unit = "kwh_per_t" if "kwh_per_t" in r else "kgce_per_t"
            value = r.get(unit)
            if value is None or value != value:
                parts.append(f"{r['furnace']} shift {r['label'][-5:]}: {r['status']}")
                continue
            lim = [r.get(f"limit_tier{k}_{unit}") for k in (1, 2, 3)]
            tier = r.get("tier")
            shown = "no tier" if tier is None or tier != tier else f"tier {int(tier)}"
            parts.append(
                f"{r['furnace']} shift {r['label'][-5:]} {value:.1f} {'kWh/t' if unit == 'kwh_per_t' else 'kgce/t'} "
                f"(<{lim[0]:.1f}/<{lim[1]:.1f}/<{lim[2]:.1f}) {shown}"
            )
        hours = store.query(
            f"SELECT multiple_of_c, worst FROM {schema.AIR_PLANT} "
            f"{_where_hour(cfg.plant.id)} ORDER BY time DESC LIMIT 3"
        )
        valid = hours.dropna(subset=["multiple_of_c"]) if not hours.empty else hours
        if not valid.empty:
            r = valid.iloc[0]
            parts.append(f"worst stack {r['worst']} {r['multiple_of_c']:.2f}C (hourly)")
        parts.extend(_grade_and_alerts(store, cfg))
    except StoreError:
        return "(InfluxDB not answering)"
    return "  ".join(parts) or "(no rollups yet)"


def _grade_and_alerts(store, cfg) -> list[str]:
    """The newest rolling grade (F and level) and the alerts firing now, from InfluxDB."""
    from greenfoundry.alerts.engine import MEASUREMENT as ALERTS
    from greenfoundry.grade.rolling import GRADE

    out = []
    g = _newest(store, GRADE, {"plant": cfg.plant.id})
    if g and g[0].get("f") is not None:
        level = g[0].get("level")
        shown = "not rated" if level is None or level != level else f"level {int(level)}"
        out.append(f"F {float(g[0]['f']):.1f} {shown}")
    last = _newest(store, ALERTS, {"plant": cfg.plant.id}, ("rule", "target"))
    firing = sorted(
        f"{r['rule']} {r['target']}"
        for r in last
        if r.get("state") == "FIRING" and r.get("kind") != "deadman"
    )
    if firing:
        out.append("FIRING: " + ", ".join(firing))
    return out


def _where_hour(plant_id: str) -> str:
    from greenfoundry.store import where

    return where({"plant": plant_id, "window": "hour"}, last_s=LATEST_WITHIN_S)
