"""`greenfoundry metrics run | backfill | status | indicators`: a thin CLI over the engine."""

from __future__ import annotations

import datetime as dt
import sys
import time

from greenfoundry.errors import UsageError

# The secrets each command resolves (greenfoundry.ingest.cli.secret_keys): the metrics
# user, and for `run` the alert channels it sends to; `status` reads the local state only.
RUN_SECRETS = ("influx:metrics", "channels")
METRICS_SECRETS = ("influx:metrics",)


def _load(args, secrets: tuple[str, ...] = METRICS_SECRETS):
    from greenfoundry.ingest.cli import load_config

    return load_config(args, secrets=secrets)


def register(subparsers) -> None:
    from greenfoundry.ingest.cli import add_config_args

    p = subparsers.add_parser(
        "metrics",
        help="rollups of the standard's indicators from the readings in InfluxDB",
        description="The rollup engine: hours, shifts, days, months, years and trailing 12 "
        "months of Table C.1, Table 6, Table 5 (energy per tonne of pipe, power factor, water "
        "reuse, sand and metal reuse), Table A.1 and CO2 per tonne from the raw readings, kept "
        "current and late-data aware (metrics/README.md).",
    )
    sub = p.add_subparsers(dest="metrics_command", metavar="COMMAND", required=True)

    r = sub.add_parser(
        "run",
        help="keep every rollup of the plant current (long-running)",
        description="Take the state folder's lock, reconcile the whole history once, then every "
        "metrics.interval_s seconds recompute what changed: the current hour, shift and day, "
        "and every hour whose readings changed (late data) with the windows above it. "
        "SIGTERM or Ctrl-C stops after the run in progress.",
    )
    add_config_args(r)
    r.set_defaults(func=_cmd_run)

    b = sub.add_parser(
        "backfill",
        help="recompute a range of hours and the windows above them",
        description="Recompute every hour of [--from, --to) (plant-local dates) from the "
        "readings, then the shifts, days, months, years and trailing 12 months above them. "
        "A progress bar on stderr; a summary at the end.",
    )
    add_config_args(b)
    b.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="DATE",
        help="YYYY-MM-DD, plant-local, included",
    )
    b.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="YYYY-MM-DD, plant-local, excluded"
    )
    b.set_defaults(func=_cmd_backfill)

    s = sub.add_parser(
        "status",
        help="per indicator: the newest window computed, its coverage, what is stale or dirty",
        description="Read the engine's state: per indicator (c1, air, and the plant's t5, a1 "
        "and co2 indicators) and window kind the newest window computed with its coverage "
        "and status, windows waiting to be composed, and whether "
        "the last run is older than three intervals (stale). Reads no secret.",
    )
    add_config_args(s)
    s.add_argument(
        "--check",
        action="store_true",
        help="a health check: print one line and exit 0 when the engine's last run is within "
        "three metrics.interval_s, 1 saying why when there is no run yet, the last one is "
        "stale, or the state cannot be read",
    )
    s.set_defaults(func=_cmd_status)

    i = sub.add_parser(
        "indicators",
        help="write the indicators file `greenfoundry score` reads, from the rollups",
        description="The rows the metrics compute (Table C.1: energy.liquid_iron.energy_per_t; "
        "Table 6: emissions.air.multiple_of_c; Table 5: energy.pipe.*, energy.power_factor.*, "
        "energy.water.*, energy.sand_waste.*; Table A.1: techeco.*; for a calendar year "
        "scale.output.annual_output) for one window, from the rollup points in InfluxDB, with "
        "coverage and context, as the indicators file of scoring/indicators.py.",
    )
    add_config_args(i)
    i.add_argument(
        "--window",
        required=True,
        help="YYYY (a calendar year), YYYY-MM (a month) or trailing-12m (the 12 complete "
        "months before the current one), plant-local",
    )
    i.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    i.set_defaults(func=_cmd_indicators)


def _cmd_run(args) -> int:
    from greenfoundry.metrics.service import run_foreground

    return run_foreground(_load(args, RUN_SECRETS))


def _date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not allowed; expected a date YYYY-MM-DD") from None


def _cmd_backfill(args) -> int:
    import pandas as pd

    from greenfoundry.metrics.engine import Engine
    from greenfoundry.metrics.state import Lock, State

    start, end = _date(args.start, "--from"), _date(args.end, "--to")
    if end <= start:
        raise UsageError(f"--to {end} is not allowed; expected a date after --from ({start})")
    cfg = _load(args)
    tz = cfg.plant.timezone
    a = pd.Timestamp(start).tz_localize(tz).tz_convert("UTC").value
    b = pd.Timestamp(end).tz_localize(tz).tz_convert("UTC").value
    with Lock(cfg.metrics.state_dir):
        engine = Engine(cfg, state=State(cfg.metrics.state_dir))
        t0 = time.monotonic()
        bar = _Bar(engine, t0)
        result = engine.backfill(a, b, on_chunk=bar.show)
        bar.done()
        engine.close()
    secs = time.monotonic() - t0
    print(
        f"backfill {start} to {end}: {result['hours']} hours, {engine.progress.windows_done} "
        f"windows composed, {result['points']} points written, {result['readings']} readings "
        f"read in {secs:.1f} s ({result['readings'] / max(secs, 1e-9):,.0f} readings/s)"
    )
    return 0


class _Bar:
    """A one-line progress bar on stderr: readings/s, hours and windows done, time left."""

    def __init__(self, engine, t0: float):
        self.engine, self.t0, self.last = engine, t0, 0.0

    def show(self) -> None:
        now = time.monotonic()
        if now - self.last < 0.5:
            return
        self.last = now
        p = self.engine.progress
        secs = max(now - self.t0, 1e-9)
        share = p.hours_done / p.hours_total if p.hours_total else 1.0
        left = secs / share - secs if share > 0 else float("nan")
        filled = int(30 * min(share, 1.0))
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:6.1%}  {p.readings / secs:9,.0f} "
            f"readings/s  hours {p.hours_done}/{p.hours_total}  windows {p.windows_done}  "
            f"left {left:5.0f} s "
        )
        sys.stderr.flush()

    def done(self) -> None:
        self.last = 0.0
        self.show()
        sys.stderr.write("\n")


def _cmd_status(args) -> int:
    import pandas as pd

    from greenfoundry.metrics.state import State

    cfg = _load(args, ())
    if args.check:
        healthy, why = _check(cfg)
        print(f"{'ok' if healthy else 'unhealthy'}: {why}")
        return 0 if healthy else 1
    state = State(cfg.metrics.state_dir, readonly=True)
    last = state.get("last_run")
    now_ns = time.time_ns()
    print(f"metrics of plant {cfg.plant.id} (state {cfg.metrics.state_dir})")
    if last is None:
        print("  no run yet")
    else:
        age = (now_ns - last["at_ns"]) / 1e9
        stale = age > 3 * cfg.metrics.interval_s
        print(
            f"  last run {pd.Timestamp(last['at_ns'], tz='UTC'):%Y-%m-%d %H:%M:%S}Z ({age:.0f} s "
            f"ago{', STALE' if stale else ''}): {last['dirty_hours']} dirty hours, "
            f"{last['points']} points, {last['seconds']:.2f} s"
        )
    dirty = state.dirty_counts()
    print(
        "  dirty (waiting to be composed): "
        + (", ".join(f"{k} {v}" for k, v in dirty.items()) or "none")
    )
    for rollup, item, kind, _start, label, coverage, status, _at in state.newest_computed():
        cov = "" if coverage is None else f"{coverage:6.1%}"
        print(f"  {rollup:<4} {item:<28} {kind:<13} newest {label:<26} coverage {cov}  {status}")
    state.close()
    return 0


def _check(cfg, now_ns: int | None = None) -> tuple[bool, str]:
    """`status --check`: (healthy, the one line saying why). A run is due every interval_s;
    a last run older than three intervals means the service stopped or hangs (or its runs
    fail: a failed run is not recorded as the last run)."""
    import sqlite3

    from greenfoundry.metrics.state import State

    try:
        state = State(cfg.metrics.state_dir, readonly=True)
        try:
            last = state.get("last_run")
        finally:
            state.close()
    except sqlite3.Error as exc:
        return False, f"cannot read the state in {cfg.metrics.state_dir}: {exc}"
    if last is None:
        return False, f"metrics of plant {cfg.plant.id}: no run yet ({cfg.metrics.state_dir})"
    now_ns = time.time_ns() if now_ns is None else now_ns
    age_s = (now_ns - last["at_ns"]) / 1e9
    limit_s = 3 * cfg.metrics.interval_s
    if age_s > limit_s:
        return False, (
            f"metrics of plant {cfg.plant.id}: STALE, the last run {age_s:.0f} s ago (more "
            f"than {limit_s} s, three intervals)"
        )
    return True, f"metrics of plant {cfg.plant.id}: the last run {age_s:.0f} s ago"


def _cmd_indicators(args) -> int:
    from greenfoundry.metrics.indicators import indicators_file, write_indicators

    cfg = _load(args)
    doc, notes = indicators_file(cfg, args.window)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    write_indicators(doc, args.out)
    return 0
