"""`greenfoundry simulate`: publish a simulated plant over MQTT."""

from __future__ import annotations

import re
import signal
import threading

from greenfoundry.errors import UsageError
from greenfoundry.sim.faults import MODES

_SPAN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*$")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_span(text: str) -> float:
    """'90' or '90s', '15m', '6h', '2d' → seconds. UsageError for anything else."""
    m = _SPAN.match(text)
    if not m:
        raise UsageError(
            f"--duration {text!r} is not a duration; expected seconds or a number with s, m, h, d"
        )
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def register(subparsers) -> None:
    """Add this area's subcommands to the `greenfoundry` parser."""
    p = subparsers.add_parser(
        "simulate",
        help="publish a simulated ductile-iron pipe plant over MQTT",
        description="Publish the readings of a simulated centrifugal ductile-iron pipe plant "
        "(furnace power and energy, taps, stack concentrations, water meters, ambient "
        "temperature, pipe output) on the topics of the plant config, at QoS 1. Deterministic "
        "for a seed. Without --duration it runs in real time until Ctrl-C; it exits once the "
        "broker has acknowledged every message, and prints what it published.",
    )
    p.add_argument("--config", required=True, help="the plant config (YAML)")
    p.add_argument(
        "--stack",
        metavar="DIR",
        help="publish to the local stack in DIR (its stack.json) instead of the config's broker",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed of the plant (default 1)")
    p.add_argument(
        "--duration",
        metavar="SPAN",
        help="plant time to simulate live, e.g. 600, 15m, 6h, 2d (default: until Ctrl-C, "
        "or none after --backfill)",
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="N",
        help="N times faster than real time: replays --duration of plant time ending when the "
        "run ends, so no timestamp lies in the future (default 1)",
    )
    pace.add_argument(
        "--as-fast-as-possible",
        action="store_true",
        help="publish the --duration of plant time ending now without pacing",
    )
    p.add_argument(
        "--backfill",
        type=float,
        default=0.0,
        metavar="DAYS",
        help="first publish DAYS of history ending where the live part starts, as fast as "
        "possible, in one _batch message per device and hour",
    )
    p.add_argument(
        "--faults",
        default="",
        metavar="LIST",
        help=f"fault modes to switch on, comma-separated: {', '.join(MODES)} or all (default none)",
    )
    p.add_argument(
        "--fault-rate",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply the rate of every fault by X (default 1)",
    )
    p.add_argument(
        "--interval",
        type=int,
        default=60,
        metavar="SECONDS",
        help="sampling interval of meters and sensors; divides a day (default 60)",
    )
    p.add_argument(
        "--max-inflight",
        type=int,
        default=100,
        metavar="N",
        help="at most N messages awaiting their PUBACK (default 100)",
    )
    p.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args) -> int:
    from greenfoundry import plant as plant_config
    from greenfoundry.sim.faults import Faults
    from greenfoundry.sim.publisher import run

    duration_s = parse_span(args.duration) if args.duration else None
    faults = Faults.parse(args.faults, args.fault_rate)
    if args.max_inflight < 1:
        raise UsageError(f"--max-inflight {args.max_inflight} is not allowed; expected 1 or more")
    # With --stack the credentials come from its stack.json, not from the config's secrets.
    cfg = plant_config.load(args.config, resolve_secrets=not args.stack)
    if args.stack:
        from greenfoundry.stack import apply_stack

        cfg = apply_stack(cfg, args.stack, role="device")
    # Ctrl-C or SIGTERM ends the run cleanly: what was sent is still awaited and counted.
    stop = threading.Event()
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        stats = run(
            cfg,
            stop=stop,
            seed=args.seed,
            interval_s=args.interval,
            faults=faults,
            duration_s=duration_s,
            speed=args.speed,
            as_fast_as_possible=args.as_fast_as_possible,
            backfill_days=args.backfill,
            max_inflight=args.max_inflight,
        )
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    print(stats.summary())
    return 0
