"""`greenfoundry demo`: a self-contained local run of the whole data path.

Starts a local Mosquitto + InfluxDB (`stack up`), the ingest, and the simulated plant publishing
faster than real time with a few bad payloads mixed in, then prints one line a second of what
flows: readings per second, what is written, spooled and rejected, and the latest values as
InfluxDB holds them. Ctrl-C (or `--duration`) stops everything in order: the simulator, the
ingest (drained), then the stack unless `--keep-stack`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from greenfoundry import plant as plant_config
from greenfoundry.config import plant_file
from greenfoundry.errors import BrokerError, StoreError

log = logging.getLogger(__name__)

DEFAULT_CONFIG = plant_file()
SHOWN = (  # (measurement, tags besides the plant, label, unit) of the live line
    ("furnace_power_kw", {"device": "if1"}, "if1", "kW"),
    ("tap_temp_c", {}, "tap", "°C"),
    ("stack_conc_mg_m3", {"pollutant": "particulate", "device": "melt-stack"}, "dust", "mg/m³"),
)
LATEST_WITHIN_S = 30 * 86400  # the live line shows values of the last 30 days


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
    from greenfoundry.store import InfluxStore

    base = Path(args.dir).resolve()
    # Options the simulator would refuse are refused now (UsageError), before anything starts.
    faults = Faults.parse(args.faults)
    plan_run(
        time.time(),
        duration_s=args.plant_hours * 3600,
        speed=args.speed,
        backfill_days=args.backfill_days,
    )
    cfg = plant_config.load(args.config, resolve_secrets=False)
    stack = LocalStack(base / "stack")
    print(f"starting Mosquitto and InfluxDB under {stack.dir} …", flush=True)
    stack.up()
    cfg = apply_stack(cfg, stack.dir)
    cfg = dataclasses.replace(
        cfg,
        ingest=dataclasses.replace(
            cfg.ingest,
            spool_dir=base / "spool",
            deadletter_file=base / "deadletter.jsonl",
            self_metrics_interval_s=min(cfg.ingest.self_metrics_interval_s, 5),
        ),
    )
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
    try:
        ingest.start()
        if not ingest.wait_connected(15):
            raise BrokerError("the ingest could not connect to the local Mosquitto")
        sim = SimulatorThread(
            cfg,
            seed=args.seed,
            speed=args.speed,
            faults=faults,
            backfill_days=args.backfill_days,
            duration_s=args.plant_hours * 3600,
        )
        sim.start()
        _watch(
            ingest, sim, InfluxStore.from_config(cfg.influxdb), cfg.plant.id, stop, args.duration
        )
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        print("\nstopping …", flush=True)
        if sim is not None:
            stats = sim.stop(60)
            if stats is not None:
                print(f"simulator: {stats.summary()}")
        ingest.stop()
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


def _watch(
    ingest, sim, store, plant_id: str, stop: threading.Event, duration: float | None
) -> None:
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
            f"{time.strftime('%H:%M:%S')}  {rate:7.0f} readings/s  written {c.written:>8} "
            f"spooled {c.spooled:>6} rejected {c.rejected:>4}  {_latest(store, plant_id)}",
            flush=True,
        )
        if duration is not None and now - started >= duration:
            return
        if not sim.is_alive():
            return


def _latest(store, plant_id: str) -> str:
    from greenfoundry.store import quote_ident, where

    parts = []
    for measurement, tags, label, unit in SHOWN:
        recent = where({"plant": plant_id, **tags}, last_s=LATEST_WITHIN_S)
        try:
            df = store.query(
                f"SELECT LAST({quote_ident('value')}) FROM {quote_ident(measurement)} {recent}"
            )
        except StoreError:
            return "(InfluxDB not answering)"
        if not df.empty:
            parts.append(f"{label} {df.iloc[0]['last']:.1f} {unit}")
    return "  ".join(parts)
