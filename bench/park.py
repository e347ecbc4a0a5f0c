"""Benchmark of a 40-plant park through the whole pipeline on this machine (issue 10).

Starts its own stack (Mosquitto + InfluxDB, auth on) in a temporary directory, makes 40 plant
configs like the demo plant (distinct ids; the alerts as bench/alerts.py sets them: the stack
warning at `for: 0`, a jsonl journal) and runs every component as the deployment would, each
group of plants in its own process:

- publishers: `--pub-procs` processes, each a `greenfoundry.sim.publisher` run per plant in a
  thread (its own MQTT connection as the plant's device account), all `--speed` times faster
  than real time over the same plant-time span, started at one agreed instant;
- ingest: `--ingest-procs` processes, each one `Ingest` per plant (its own session and spool,
  as the plant's own `greenfoundry ingest` would have): several instances in one process,
  because a Python process per plant costs its interpreter and pandas (tens of MB) 40 times
  over on two cores, while one ingest is mostly waiting on InfluxDB's answers;
- metrics: `--metrics-procs` processes, each one `MetricsService` per plant (the rollups and
  the alerts; its state lock is per plant, so two services never take one plant).

Measured: readings published and written per second (each process reports its counts every
5 s), the lag from a probe reading to its hourly rollup point (`gf_air_stack`, window hour,
the probe's stack and pollutant: the first poll that shows the hour's `max_multiple_of_c` at
the probe, minus the wall time the probe was published) and to its `gf_alert` FIRING point (a
probe of 120 C lifts the rolling hourly mean over the 0.7 C warning line), one probe per plant
of `--probes` plants once the run is halfway; CPU seconds and peak RSS of every process
(`resource.getrusage` of each child, `/proc/<pid>` of Mosquitto and influxd).

The simulator's model warms up for several CPU seconds a plant before its first reading (13 s
on this machine, loaded), so 20 plants in one process publish their first reading a minute or
two after the agreed start and then send what is already due at once, catching up before the
run's end: the busiest 30 s show what the pipeline took at that burst, the last 60 s the
paced rate.

Plant time runs `--speed` times faster than the wall clock, so the rollups' clock runs ahead
as in the demo (they compute the hours up to the run's end) and the alerts run on plant time.
A step of the alerts (20 s of plant time) and a metrics run (every `--metrics-interval` wall
seconds) therefore come faster in wall time than on a real plant: the lags are wall seconds.

Usage: .venv/bin/python bench/park.py [--plants 40] [--speed 30] [--wall 240]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.stack import LocalStack, apply_stack, store_for
from greenfoundry.store import quote_string

S = 10**9
PROBE_C = 120.0  # a probe reading of 120 C: its minute's mean lifts the rolling hour over 0.7 C
REPORT_S = 5.0  # each child writes its counts this often


def _config(tmp: Path, plant_id: str, metrics_interval_s: int) -> Path:
    """The plant's config in a folder of its own, `tmp/<plant>/plant.yaml`, beside its own
    evidence: the grade reads the evidence.yaml beside a config and refuses one whose `plant:`
    is another plant's, so 40 configs in one folder sharing the demo's (`plant: demo-dip`)
    failed every plant's grade and snapshot."""
    folder = tmp / plant_id
    folder.mkdir()
    evidence = yaml.safe_load((plant_file().parent / "evidence.yaml").read_text())
    evidence["plant"] = plant_id
    (folder / "evidence.yaml").write_text(yaml.safe_dump(evidence, allow_unicode=True))
    raw = copy.deepcopy(yaml.safe_load(plant_file().read_text()))
    raw["plant"]["id"] = plant_id
    raw["mqtt"]["client_id"] = f"gf-ingest-{plant_id}"
    raw["mqtt"].pop("share_group", None)
    raw["mqtt"].pop("share_members", None)
    raw["ingest"].update(
        spool_dir=f"spool-{plant_id}", deadletter_file=f"dead-{plant_id}.jsonl", max_past_days=30
    )
    raw["metrics"] = {"state_dir": f"state-{plant_id}", "interval_s": metrics_interval_s}
    raw["alerts"] = {
        "state_dir": f"alerts-{plant_id}",
        "interval_s": 5,
        "channels": {"journal": {"type": "jsonl", "path": f"alerts-{plant_id}/sent.jsonl"}},
        "default_channels": ["journal"],
        "rules": [{"id": "stack-warning", "for": 0}],
    }
    raw["influxdb"]["timeout_s"] = 30  # a loaded two-core machine answers a scan slowly
    path = folder / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def _plan(args) -> tuple[float, float, float]:
    """(t0, end, duration_s): the wall instant every publisher starts, the wall and plant
    instant the run ends, the plant seconds it replays."""
    duration_s = args.wall * args.speed
    return args.t0, args.t0 + args.wall, duration_s


def plant_now(t0: float, wall: float, speed: float, now: float | None = None) -> float:
    """The plant time (epoch s) at wall time `now`: the publisher's plan inverted."""
    end = t0 + wall
    return end - (end - (time.time() if now is None else now)) * speed


def _usage() -> dict:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": r.ru_utime + r.ru_stime, "rss_mb": r.ru_maxrss / 1024}


class _Reporter:
    """A child's counts, written to its result file every REPORT_S s and at its end."""

    def __init__(self, path: Path, counts):
        self.path, self.counts = path, counts
        self.samples: list[tuple[float, int]] = []

    def write(self, **extra) -> None:
        self.samples.append((time.time(), self.counts()))
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"samples": self.samples, **_usage(), **extra}))
        tmp.replace(self.path)


def _child(args) -> int:
    """One component process for the plants of `--configs`, until SIGTERM (or the run's end)."""
    import logging

    # A tick skipped because the one before still runs is what a loaded machine does: counted
    # in the figures, not logged 40 times a tick.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    paths = args.configs.split(",")
    stack_dir = Path(args.stack)
    out = Path(args.out)
    if args.role == "publisher":
        from greenfoundry.sim.publisher import SimulatorThread

        cfgs = [_device_config(Path(p), stack_dir) for p in paths]
        t0, _, duration_s = _plan(args)
        time.sleep(max(0.0, t0 - time.time()))
        sims = [
            SimulatorThread(c, speed=args.speed, duration_s=duration_s, seed=i + 1)
            for i, c in enumerate(cfgs)
        ]
        readings = [0] * len(sims)
        for i, s in enumerate(sims):
            # Counted as each message is published (one reading a message in a live run).
            s.kwargs["on_message"] = lambda *_a, i=i: readings.__setitem__(i, readings[i] + 1)
            s.start()
        rep = _Reporter(out, lambda: sum(readings))
        while any(s.is_alive() for s in sims) and not done.wait(REPORT_S):
            rep.write()
        stats = [s.stop(120) for s in sims]
        errors = [str(s.error) for s in sims if s.error]
        late = [max(0.0, time.time() - (t0 + args.wall))]
        rep.write(
            acked=sum(x.acked for x in stats if x),
            refused=sum(x.refused for x in stats if x),
            errors=errors,
            ended_late_s=late[0],
        )
        return 0
    if args.role == "ingest":
        from greenfoundry.ingest.service import Ingest

        cfgs = [
            apply_stack(plant.load(Path(p), resolve_secrets=False), stack_dir, role="ingest")
            for p in paths
        ]
        services = [Ingest(c) for c in cfgs]
        for s in services:
            s.start()
        rep = _Reporter(out, lambda: sum(s.counters.written for s in services))
        while not done.wait(REPORT_S):
            rep.write()
        for s in services:
            s.stop()
        c = [s.counters for s in services]
        rep.write(
            received=sum(x.received for x in c),
            rejected=sum(x.rejected for x in c),
            spooled=sum(x.spooled for x in c),
        )
        return 0
    from greenfoundry.alerts.state import AlertStore
    from greenfoundry.metrics.service import MetricsService

    cfgs = [apply_stack(plant.load(Path(p), resolve_secrets=False), stack_dir) for p in paths]
    t0, end, _ = _plan(args)
    start_ns = int(plant_now(t0, args.wall, args.speed, t0) * 1e9) // (60 * S) * (60 * S)
    services = []
    for c in cfgs:
        # A fresh alert state starts where the plant's data starts, as in the demo, so the
        # empty hours before it are not a silent plant.
        st = AlertStore(c.alerts.state_dir)
        try:
            if st.cursor_ns() is None:
                st.commit((), start_ns)
        finally:
            st.close()
        services.append(
            MetricsService(
                c,
                clock=lambda: time.time() + args.wall,  # the demo's lead: hours up to the end
                alerts_clock=lambda: min(plant_now(t0, args.wall, args.speed), end),
            )
        )
    # One plant after the other: 40 start-up reconciles at once (each a scan of the plant's
    # history) kept InfluxDB busy past its timeout and a service whose reconcile fails never
    # schedules its rollups. They start before t0, on the empty history.
    rep = _Reporter(out, lambda: sum(s.runs for s in services))
    started = []
    for s in services:
        for attempt in range(5):
            try:
                s.start()
                started.append(s)
                break
            except Exception as exc:  # counted and printed: a plant whose service never ran
                print(f"metrics start of {s.cfg.plant.id} failed ({exc}); again", flush=True)
                time.sleep(1.0 + attempt)
    rep.write(started=len(started))
    while not done.wait(REPORT_S):
        rep.write()
    # How far each plant's alerts trail the plant clock when the run ends: a backlog the
    # machine did not catch up with.
    behind = []
    for s in started:
        cursor = s.alerts.alert_store.cursor_ns()
        if cursor is not None:
            behind.append(min(plant_now(t0, args.wall, args.speed), end) - cursor / S)
    for s in services:
        s.stop()
    rep.write(
        alerts_behind_s=sorted(behind),
        started=len(started),
        alert_ticks=sum(s.alert_ticks for s in services),
        errors={k: sum(s.errors[k] for s in services) for k in services[0].errors},
    )
    return 0


def _device_config(path: Path, stack_dir: Path):
    """The plant's config as its simulator's device account. Several processes may make
    theirs at once: the stack matches each caller's answers from the broker's control topic
    by their correlation data (greenfoundry.stack._dynsec_call)."""
    return apply_stack(plant.load(path, resolve_secrets=False), stack_dir, role="device")


def _proc_usage(pid: int) -> tuple[float, float]:
    """CPU seconds and peak RSS (MB) of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = 0.0
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            rss = int(row.split()[1]) / 1024
    return cpu, rss


def _groups(items: list, n: int) -> list[list]:
    n = max(1, min(n, len(items)))
    return [items[i::n] for i in range(n)]


def _probe(cfg, stack_dir: Path, route_key, t0: float, args) -> tuple[float, int]:
    """Publish one probe reading of PROBE_C on the plant's stack at the plant's current time,
    as another device of the plant; return (wall time of its PUBACK, its timestamp in ns)."""
    from greenfoundry.plant import Secret
    from greenfoundry.sim.publisher import Publisher

    info = LocalStack(stack_dir).info
    acc = info.device_account(cfg.plant.id, f"gf-probe-{cfg.plant.id}")
    mqtt_cfg = dataclasses.replace(
        cfg.mqtt, username=acc.username, password=Secret("bench", acc.password)
    )
    route = cfg.routes[route_key]
    stack = next(s for s in cfg.stacks if s.id == route.device)
    c = stack.limits_mg_m3[dict(route.tags)["pollutant"]]
    ts = plant_now(t0, args.wall, args.speed)
    tz = ZoneInfo(cfg.plant.timezone)
    body = {
        "ts": datetime.fromtimestamp(ts, tz=tz).isoformat(timespec="milliseconds"),
        "value": PROBE_C * c,
        "unit": "mg/m3",
    }
    pub = Publisher(dataclasses.replace(cfg, mqtt=mqtt_cfg), client_id=acc.username).connect()
    try:
        sent = time.time()
        pub.publish(cfg.topic_for(route), json.dumps(body).encode())
        pub.wait_for_acks(30)
    finally:
        pub.close()
    return sent, int(ts * 1000) * 1_000_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plants", type=int, default=40, help="plants of the park (default 40)")
    ap.add_argument("--speed", type=float, default=30.0, help="plant s per wall s (default 30)")
    ap.add_argument("--wall", type=float, default=240.0, help="wall s of the live run (240)")
    ap.add_argument("--pub-procs", type=int, default=2, help="publisher processes (default 2)")
    ap.add_argument("--ingest-procs", type=int, default=2, help="ingest processes (default 2)")
    ap.add_argument("--metrics-procs", type=int, default=2, help="metrics processes (default 2)")
    ap.add_argument("--metrics-interval", type=int, default=10, help="metrics.interval_s (10)")
    ap.add_argument("--probes", type=int, default=4, help="plants that get a probe (default 4)")
    ap.add_argument("--role", choices=("publisher", "ingest", "metrics"), help=argparse.SUPPRESS)
    ap.add_argument("--configs", help=argparse.SUPPRESS)
    ap.add_argument("--stack", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role:
        return _child(args)

    tmp = Path(tempfile.mkdtemp(prefix="gf-bench-park-"))
    os.chdir(tmp)  # nothing the run writes lands in the caller's folder
    stack = LocalStack(tmp / "stack")
    stack.up()
    procs: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        ids = [f"park-{i:02d}" for i in range(1, args.plants + 1)]
        paths = [_config(tmp, p, args.metrics_interval) for p in ids]
        cfgs = [apply_stack(plant.load(p, resolve_secrets=False), stack.dir) for p in paths]
        for c in cfgs:  # every device account made before the clock starts
            stack.info.device_account(c.plant.id, f"gf-sim-{c.plant.id}")
        t0 = time.time() + 45.0  # the children start, connect and reconcile before this
        base = [sys.executable, __file__, "--stack", str(stack.dir), "--t0", repr(t0)]
        base += ["--speed", repr(args.speed), "--wall", repr(args.wall)]
        # The ingest first, so its sessions exist before the first reading.
        for role, n in (
            ("ingest", args.ingest_procs),
            ("metrics", args.metrics_procs),
            ("publisher", args.pub_procs),
        ):
            for k, group in enumerate(_groups([str(p) for p in paths], n)):
                out = tmp / f"{role}-{k}.json"
                cmd = [*base, "--role", role, "--configs", ",".join(group), "--out", str(out)]
                procs.append((f"{role} {k + 1} ({len(group)} plants)", subprocess.Popen(cmd), out))
        servers = {n: stack.state["pids"][n] for n in ("mosquitto", "influxd")}
        server0 = {n: _proc_usage(pid)[0] for n, pid in servers.items()}
        route_key = ("env", "melt-stack", "dust")
        if route_key not in cfgs[0].routes:
            route_key = next(k for k, r in cfgs[0].routes.items() if r.signal == "stack_conc_mg_m3")
        store = store_for(stack.info)
        probes: dict[str, tuple[float, int]] = {}
        hour_lag: dict[str, float] = {}
        alert_lag: dict[str, float] = {}
        probe_at = t0 + args.wall / 2
        end = t0 + args.wall
        print(
            f"park of {args.plants} plants, speed {args.speed:g}, {args.wall:g} s live from "
            f"{datetime.fromtimestamp(t0, timezone.utc):%H:%M:%S}Z; processes: "
            + ", ".join(n for n, _, _ in procs),
            flush=True,
        )
        while time.time() < end + 90:
            if any(p.poll() is not None for n, p, _ in procs if not n.startswith("publisher")):
                raise SystemExit("a component process ended early")
            if time.time() >= probe_at and not probes:
                for c in cfgs[: args.probes]:
                    probes[c.plant.id] = _probe(c, stack.dir, route_key, t0, args)
            for pid, (sent, ts_ns) in probes.items():
                if pid not in hour_lag:
                    hour_ns = _hour_start_ns(ts_ns, cfgs[0].plant.timezone)
                    df = store.query(
                        "SELECT max_multiple_of_c FROM gf_air_stack WHERE "
                        f"plant = {quote_string(pid)} AND stack = "
                        f"{quote_string(route_key[1])} AND window = 'hour' "
                        f"AND time >= {hour_ns} AND time < {hour_ns + 3600 * S}"
                    )
                    if not df.empty and df["max_multiple_of_c"].max() >= 1.0:
                        hour_lag[pid] = time.time() - sent
                if pid not in alert_lag:
                    df = store.query(
                        "SELECT state FROM gf_alert WHERE "
                        f"plant = {quote_string(pid)} AND rule = 'stack-warning' "
                        f"AND time >= {ts_ns - 120 * S} AND time < {ts_ns + 7200 * S}"
                    )
                    if not df.empty and (df["state"] == "FIRING").any():
                        alert_lag[pid] = time.time() - sent
            if probes and len(hour_lag) == len(alert_lag) == len(probes) and time.time() > end:
                break
            time.sleep(0.5)
        for pid, (_, ts_ns) in probes.items():
            df = store.query(
                "SELECT MAX(value) FROM stack_conc_mg_m3 WHERE "
                f"plant = {quote_string(pid)} AND device = {quote_string(route_key[1])} "
                f"AND time >= {ts_ns - 60 * S} AND time <= {ts_ns + 60 * S}"
            )
            got = None if df.empty else float(df.iloc[0]["max"])
            df = store.query(
                f"SELECT state, rule, target FROM gf_alert WHERE plant = {quote_string(pid)} "
                f"AND time >= {ts_ns - 86400 * S} AND time < {ts_ns + 86400 * S}"
            )
            firing = (
                0
                if df.empty
                else int(((df["rule"] == "stack-warning") & (df["state"] == "FIRING")).sum())
            )
            print(
                f"{pid}: the probe's minute max {got} mg/m3 in InfluxDB; stack-warning FIRING points {firing}"
            )
        load = os.getloadavg()
        server_use = {n: _proc_usage(pid) for n, pid in servers.items()}
        for _, p, _ in procs:
            p.send_signal(signal.SIGTERM)
        for _, p, _ in procs:
            p.wait(180)
        results = {n: json.loads(out.read_text()) for n, _, out in procs if out.exists()}
        _print(args, t0, load, results, server_use, server0, probes, hour_lag, alert_lag)
    finally:
        for _, p, _ in procs:
            if p.poll() is None:
                p.kill()
        stack.down()
    return 0


def _hour_start_ns(ts_ns: int, tz_name: str) -> int:
    """The start of the plant-local hour holding `ts_ns` (whole-hour offsets: UTC's too)."""
    t = datetime.fromtimestamp(ts_ns / S, tz=ZoneInfo(tz_name))
    return int(t.replace(minute=0, second=0, microsecond=0).timestamp()) * S


def _rates(results: dict, role: str, t0: float, end: float) -> tuple[float, float, float, int]:
    """Readings/s of a role's processes: over the live run (t0 … end), the highest 30-s rate
    in it (the publishers start late, each plant's model warming up, then send what is due at
    once: what the pipeline took at its busiest), the rate of its last 60 s (paced again), and
    the total count."""
    samples = sorted(
        (t, n, name)
        for name, r in results.items()
        if name.startswith(role)
        for t, n in r["samples"]
    )
    last: dict[str, int] = {}
    series: list[tuple[float, int]] = []
    for t, n, name in samples:
        last[name] = n
        series.append((t, sum(last.values())))
    if not series:
        return 0.0, 0.0, 0.0, 0
    inside = [(t, n) for t, n in series if t0 <= t <= end + REPORT_S]
    total = series[-1][1]
    if len(inside) < 2:
        return 0.0, 0.0, 0.0, total

    def rate(a: float, b: float) -> float:
        """The rate between the first samples at or after a and b."""
        x = next(((t, n) for t, n in inside if t >= a), inside[-1])
        y = next(((t, n) for t, n in inside if t >= b), inside[-1])
        return (y[1] - x[1]) / (y[0] - x[0]) if y[0] > x[0] else 0.0

    whole = rate(t0, end)
    peak = max((rate(t, t + 30) for t, _ in inside if t <= end - 30), default=whole)
    return whole, peak, rate(end - 60, end), total


def _print(args, t0, load, results, server_use, server0, probes, hour_lag, alert_lag) -> None:
    end = t0 + args.wall
    print(
        f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M}Z, load average {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs; {args.plants} plants at speed "
        f"{args.speed:g} for {args.wall:g} s"
    )
    pub, pub_peak, pub_last, pub_n = _rates(results, "publisher", t0, end)
    wr, wr_peak, wr_last, wr_n = _rates(results, "ingest", t0, end)
    first = min(
        (t for n, r in results.items() if n.startswith("publisher") for t, k in r["samples"] if k),
        default=float("nan"),
    )
    pubs = [r for n, r in results.items() if n.startswith("publisher")]
    late = max((r.get("ended_late_s", 0.0) for r in pubs), default=float("nan"))
    errors = [e for r in pubs for e in r.get("errors", [])]
    rows = [
        ("first reading published, s after the agreed start", f"{first - t0:.0f} s"),
        (
            "readings/s published: whole run; busiest 30 s; last 60 s",
            f"{pub:,.0f}; {pub_peak:,.0f}; {pub_last:,.0f}",
        ),
        (
            "readings/s written: whole run; busiest 30 s; last 60 s",
            f"{wr:,.0f}; {wr_peak:,.0f}; {wr_last:,.0f}",
        ),
        ("readings published, written", f"{pub_n:,}, {wr_n:,}"),
        ("publishers ended after the planned end by", f"{late:.1f} s"),
    ]
    if errors:
        rows.append(("publisher errors", "; ".join(errors)[:60]))
    for pid, _ in probes.items():
        h = f"{hour_lag[pid]:.1f} s" if pid in hour_lag else "not seen"
        a = f"{alert_lag[pid]:.1f} s" if pid in alert_lag else "not seen"
        rows.append((f"lag {pid}: probe → hourly gf_air_stack; → gf_alert FIRING", f"{h}; {a}"))
    for name, r in results.items():
        extra = ""
        if "errors" in r and isinstance(r["errors"], dict):
            failed = {k: v for k, v in r["errors"].items() if v}
            behind = r.get("alerts_behind_s") or [0.0]
            extra = (
                f" ({r.get('started')} started, {r.get('alert_ticks')} alert ticks, alerts behind"
                f" the plant clock at the end: median {statistics.median(behind):.0f} s, most"
                f" {max(behind):.0f} s of plant time; errors {failed})"
            )
        rows.append((f"{name}: CPU s, peak RSS MB{extra}", f"{r['cpu_s']:.0f}, {r['rss_mb']:.0f}"))
    for name, (cpu, rss) in server_use.items():
        rows.append(
            (f"{name}: CPU s in the run, peak RSS MB", f"{cpu - server0[name]:.0f}, {rss:.0f}")
        )
    for what, value in rows:
        print(f"{what:<78} {value:>24}")
    if hour_lag:
        print(f"median lags: hourly point {statistics.median(hour_lag.values()):.1f} s", end="")
    if alert_lag:
        print(f", alert {statistics.median(alert_lag.values()):.1f} s", end="")
    print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
