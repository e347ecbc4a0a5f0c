"""Benchmark of the rollup engine (issue 7): ratios measured in one run on this machine.

Starts its own Mosquitto-less stack (InfluxDB only is used), writes one simulated plant-year
(2025, the simulator's model `greenfoundry.sim.plant.PlantModel`, the signals the metrics read:
furnace energy, taps, stack dust, analyser status, air temperature) straight into InfluxDB with
the store's line protocol, and one month of the same plant under a second plant id, then prints:

1. the per-minute run (`Engine.run_once`, a minute of new readings each) on the plant holding
   12 months vs the one holding 1 month: the mean cost over a whole number of sweep turns (one
   run in `SWEEP_EVERY` also checks a slice of older history, so the mean carries the sweep's
   share exactly) and their ratio (aim ≤ 1.2), with the median and the sweep runs' own mean;
2. `metrics backfill` of the year (the real command, in a child process): raw readings
   processed per second against a bare InfluxQL read of the same range in the same chunks
   (aim ≥ 0.5 of it), and the peak RSS of the child and its reader process together (aim
   < 500 MB);
3. `metrics indicators --window 2025` + `score` for the year, wall time (aim < 2 s).

Usage: .venv/bin/python bench/metrics.py [--days 365]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.metrics import source
from greenfoundry.metrics.engine import CHUNK_H, NS_PER_H, SWEEP_EVERY, Engine
from greenfoundry.sim.plant import PlantModel
from greenfoundry.stack import LocalStack, apply_stack
from greenfoundry.store import quote_ident, series_key, value_line, where

SIGNALS = {
    "furnace_energy_kwh",
    "tap_iron_t",
    "tap_temp_c",
    "stack_conc_mg_m3",
    "stack_analyser_status",
    "ambient_temp_c",
}
START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _config(tmp: Path, stack_dir: Path, plant_id: str):
    raw = copy.deepcopy(yaml.safe_load(plant_file().read_text()))
    raw["plant"]["id"] = plant_id
    raw["signals"] = [s for s in raw["signals"] if s["signal"] in SIGNALS]
    raw["metrics"] = {"state_dir": f"state-{plant_id}", "history_days": 400}
    raw["mqtt"].pop("share_group", None)
    raw["mqtt"].pop("share_members", None)
    path = tmp / f"{plant_id}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    cfg = plant.load(path, resolve_secrets=False)
    return apply_stack(cfg, stack_dir), path


def _write(st, cfg, start: datetime, end: datetime, ids: list[str]) -> int:
    model = PlantModel(cfg, seed=7)
    keys: dict = {}
    batch: dict[str, list[str]] = {i: [] for i in ids}
    n = 0
    for e in model.events(start, end):
        if e.route is None or e.value is None:
            continue
        r = e.route
        ts = e.ts_ms * 1_000_000
        for pid in ids:
            k = keys.get((pid, r.key))
            if k is None:
                tags = {"plant": pid, "area": r.area, "device": r.device, **dict(r.tags)}
                k = keys[(pid, r.key)] = series_key(r.signal, tags)
            batch[pid].append(value_line(k, float(e.value), ts))
        n += 1
        if len(batch[ids[0]]) >= 50_000:
            for pid in ids:
                st.write_lines(batch[pid])
                batch[pid] = []
    for pid in ids:
        st.write_lines(batch[pid])
    return n


def _per_minute_runs(engines: dict, st, now0: datetime, runs: int) -> dict[str, list[float]]:
    """`runs` runs of each engine, each after one more minute of its plant's readings has been
    written; the plants take turns, run by run, so both meet the machine's load alike. One
    run before them is not timed: the first run with new readings warms what is cached."""
    costs: dict[str, list[float]] = {pid: [] for pid in engines}
    for i in range(runs + 1):
        t = now0 + timedelta(minutes=i)
        for pid, (engine, cfg) in engines.items():
            _write(st, cfg, t, t + timedelta(minutes=1), [pid])
            t0 = time.perf_counter()
            engine.run_once(now=(t + timedelta(minutes=1)).timestamp())
            if i:
                costs[pid].append(time.perf_counter() - t0)
    return costs


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used (Linux, /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` (kB) and of its descendants (Linux, /proc); 0 once gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:")), 0)
        kids = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += (task / "children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return rss + sum(_rss_kb(int(k)) for k in kids)


def _peak_tree_rss_mb(proc: subprocess.Popen, every_s: float = 0.1) -> float:
    """The highest RSS the process and its descendants held together while it ran: the
    backfill reads in a process of its own, and the largest process alone (``ru_maxrss``)
    would leave that process's memory out."""
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _rss_kb(proc.pid))
        time.sleep(every_s)
    return peak / 1024


def _settle(stack, *, idle_share: float = 0.05, window_s: float = 2.0, limit_s: float = 180):
    """Wait until InfluxDB has finished the compactions the bulk write started (its CPU use
    below ``idle_share`` over ``window_s``): the backfill and the bare read are then measured
    on the same quiet database, not the first during its compactions. Seconds waited."""
    pid = stack.state.get("pids", {}).get("influxd")
    t0 = time.monotonic()
    if not pid:
        return 0.0
    while time.monotonic() - t0 < limit_s:
        c0 = _cpu_s(pid)
        time.sleep(window_s)
        if _cpu_s(pid) - c0 < idle_share * window_s:
            break
    return time.monotonic() - t0


def _bare_read(st, plant_id: str, measurements, a: int, b: int) -> tuple[int, float]:
    n, t0 = 0, time.perf_counter()
    for c in range(a, b, CHUNK_H * NS_PER_H):
        e = min(b, c + CHUNK_H * NS_PER_H)
        for m in measurements:
            df = st.query(
                f'SELECT "value" FROM {quote_ident(m)} '
                f"{where({'plant': plant_id}, start_ns=c, end_ns=e)} GROUP BY *"
            )
            n += len(df)
    return n, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365, help="days of the plant-year (default 365)")
    ap.add_argument(
        "--runs",
        type=int,
        default=3 * SWEEP_EVERY,
        help=f"per-minute runs per plant, a multiple of {SWEEP_EVERY} (default {3 * SWEEP_EVERY})",
    )
    args = ap.parse_args()
    if args.runs < SWEEP_EVERY or args.runs % SWEEP_EVERY:
        ap.error(f"--runs: a multiple of {SWEEP_EVERY}, so the mean holds the sweep's share")
    tmp = Path(tempfile.mkdtemp(prefix="gf-bench-metrics-"))
    stack = LocalStack(tmp / "stack")
    stack.up()
    try:
        year_cfg, year_path = _config(tmp, stack.dir, "bench-year")
        month_cfg, _ = _config(tmp, stack.dir, "bench-month")
        st = source.store_for_metrics(year_cfg)
        end = START + timedelta(days=args.days)
        t0 = time.perf_counter()
        n = _write(st, year_cfg, START, end - timedelta(days=31), ["bench-year"])
        n += _write(st, year_cfg, end - timedelta(days=31), end, ["bench-year", "bench-month"])
        print(f"wrote {n:,} readings of the plant-year ({time.perf_counter() - t0:.0f} s)")
        print(f"InfluxDB settled after its compactions in {_settle(stack):.0f} s")

        # 2. backfill of the year by the real command, in a child process. The CPU seconds of
        # the command and of InfluxDB are printed too: on a shared machine the wall times
        # carry the other sessions' load, the CPU seconds much less.
        influxd = stack.state.get("pids", {}).get("influxd")
        db_cpu0 = _cpu_s(influxd) if influxd else 0.0
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "greenfoundry", "metrics", "backfill",
                "--config", str(year_path), "--stack", str(stack.dir),
                "--from", f"{START:%Y-%m-%d}", "--to", f"{end:%Y-%m-%d}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        tree_rss_mb = _peak_tree_rss_mb(proc)
        out, err = proc.communicate()
        child = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        backfill_s = time.perf_counter() - t0
        db_cpu1 = _cpu_s(influxd) if influxd else 0.0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
        if child.returncode:
            print(child.stderr)
            return 1
        summary = child.stdout.strip().splitlines()[-1]
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        readings = int(summary.split(" readings read")[0].rsplit(" ", 1)[-1].replace(",", ""))
        engine = Engine(year_cfg, store=st)
        a, b = int(START.timestamp() * 1e9), int(end.timestamp() * 1e9)
        own0 = resource.getrusage(resource.RUSAGE_SELF)
        bare_n, bare_s = _bare_read(st, "bench-year", engine.inputs, a, b)
        own1 = resource.getrusage(resource.RUSAGE_SELF)
        db_cpu2 = _cpu_s(influxd) if influxd else 0.0
        bare_cpu = own1.ru_utime - own0.ru_utime + own1.ru_stime - own0.ru_stime
        engine.close()
        rate, bare_rate = readings / backfill_s, bare_n / bare_s

        # 1. the per-minute run, 12 months vs 1 month of history (both reconciled first).
        engines, sweeps = {}, {}
        for cfg in (year_cfg, month_cfg):
            eng = Engine(cfg, store=st)
            eng.reconcile(now=end.timestamp())
            # The sweep walks back from the lookback: runs without new readings carry the
            # cursor five slices (35 days) back, past the 1-month plant's history, so its
            # slices then hold no readings and the 12-month plant's all do, as in the long
            # run (4 slices of 57 hold data on the 1-month plant).
            for _ in range(5 * SWEEP_EVERY):
                eng.run_once(now=end.timestamp())
            # The timed runs that check a sweep slice: those on the sweep's turn (the untimed
            # first run of _per_minute_runs takes one turn).
            turn = eng.state.get("sweep_turn", 0) + 1
            sweeps[cfg.plant.id] = [i for i in range(args.runs) if (turn + i) % SWEEP_EVERY == 0]
            engines[cfg.plant.id] = (eng, cfg)
        _settle(stack)
        costs = _per_minute_runs(engines, st, end, args.runs)
        for eng, _cfg in engines.values():
            eng.close()
        mean_y = statistics.fmean(costs["bench-year"])
        mean_m = statistics.fmean(costs["bench-month"])
        med_y = statistics.median(costs["bench-year"])
        med_m = statistics.median(costs["bench-month"])
        sweep_y = statistics.fmean(costs["bench-year"][i] for i in sweeps["bench-year"])
        sweep_m = statistics.fmean(costs["bench-month"][i] for i in sweeps["bench-month"])

        # 3. indicators + score for the year.
        out = tmp / "indicators.yaml"
        evidence = tmp / "evidence.yaml"
        ev = yaml.safe_load((plant_file().parent / "evidence.yaml").read_text())
        evidence.write_text(yaml.safe_dump({**ev, "plant": "bench-year"}, allow_unicode=True))
        t0 = time.perf_counter()
        for cmd in (
            ["metrics", "indicators", "--config", str(year_path), "--stack", str(stack.dir),
             "--window", f"{START:%Y}", "--out", str(out)],
            ["score", "--config", str(year_path), "--indicators", str(out),
             "--evidence", str(evidence), "--as-of", "2026-03-31"],
        ):  # fmt: skip
            r = subprocess.run(
                [sys.executable, "-m", "greenfoundry", *cmd], capture_output=True, text=True
            )
            if r.returncode not in (0,):
                print(r.stderr)
        score_s = time.perf_counter() - t0

        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"\n{datetime.now():%Y-%m-%d %H:%M}, load average {' '.join(load)}")
        print(f"{'measure':<58} {'result':>16}  aim")
        rows = [
            ("per-minute run, 12 months of history (mean)", f"{mean_y * 1000:.0f} ms", ""),
            ("per-minute run, 1 month of history (mean)", f"{mean_m * 1000:.0f} ms", ""),
            ("cost ratio 12 months / 1 month (means)", f"{mean_y / mean_m:.2f}", "≤ 1.2"),
            ("  medians, 12 months / 1 month", f"{med_y * 1000:.0f} / {med_m * 1000:.0f} ms", ""),
            (
                f"  runs with a sweep slice (1 in {SWEEP_EVERY}), 12 months / 1 month",
                f"{sweep_y * 1000:.0f} / {sweep_m * 1000:.0f} ms",
                "",
            ),
            ("backfill of the plant-year (metrics backfill)", f"{rate:,.0f} readings/s", ""),
            ("bare InfluxQL read of the same range", f"{bare_rate:,.0f} readings/s", ""),
            ("backfill / bare read", f"{rate / bare_rate:.2f}", "≥ 0.5"),
            ("backfill wall time", f"{backfill_s:.0f} s", ""),
            (
                "  CPU: backfill command / InfluxDB meanwhile",
                f"{child_cpu:.0f} / {db_cpu1 - db_cpu0:.0f} s",
                "",
            ),
            (
                "  bare read: wall / CPU of the reader / InfluxDB",
                f"{bare_s:.0f} / {bare_cpu:.0f} / {db_cpu2 - db_cpu1:.0f} s",
                "",
            ),
            ("backfill peak RSS, its processes together", f"{tree_rss_mb:.0f} MB", "< 500 MB"),
            ("  the largest of them alone (ru_maxrss)", f"{rss_mb:.0f} MB", ""),
            ("metrics indicators + score, one plant-year", f"{score_s:.2f} s", "< 2 s"),
        ]
        for name, value, aim in rows:
            print(f"{name:<58} {value:>16}  {aim}")
        print(f"\n{summary}")
    finally:
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
