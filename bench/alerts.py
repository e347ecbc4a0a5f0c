"""Benchmark of the alert engine (issue 9): a 40-plant park, measured in one run on this machine.

Starts its own stack (InfluxDB only is used), makes 40 plant configs like the demo plant
(distinct ids, its two stacks with three pollutants and two furnaces, the default rules: 20
targets a plant, the stack warning with `for: 0` so a crossing notifies at its first tick), and
writes `--hours` (12) of minute readings for each straight into InfluxDB with the store's line
protocol: every stack pollutant at 0.4 C with a slow daily swing and one hour near 0.95 C within
the first 12 h (so the alerts fire and resolve), the furnaces' energy counters every minute and
a 5 t tap every hour. Then:

1. **catch-up**: each plant's engine, its cursor at the history's start, ticks once to its
   end (`AlertEngine.tick`: reads, evaluates, writes gf_alert points, commits, hands the
   notifications to its dispatcher): evaluations per second = targets × steps ÷ seconds;
2. **steady cadence**: one more minute of readings for the whole park, then one tick per plant,
   a few times: the park's wall time per minute (the budget is 60 s) and evaluations per second;
3. **lag**, in real time, on the first four plants: their raw readings every 10 s (a fourth
   plant's stack sends CEMS minute values instead: stamped with the minute's start, sent at its
   end), the engines ticking every `interval_s` at the phase that makes each case wait longest
   (0.2 s before a step's `settle_s` has passed). One reading lifts a stack's rolling hourly
   mean over 0.7 C: at second 5 of a minute on one plant, at second 21 (just after a step: the
   worst case) on another, at second 50 on a third, the minute value on the fourth, sent just
   after the tick that evaluated the step before its minute's end (its worst case); the lag is
   from the write to the warning's `Dispatcher.submit`. A step `t` is evaluated once a reading
   at or after it is in and `settle_s` has passed (alerts/engine.py), so the worst case is a
   reading just after a step: step_s + settle_s + interval_s (40 s with the defaults).

The configs are the demo plant's, so `alerts.step_s` is its default (20 s) throughout.

Usage: .venv/bin/python bench/alerts.py [--plants 40] [--hours 24] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

from greenfoundry import plant
from greenfoundry.alerts.dispatch import Dispatcher
from greenfoundry.alerts.engine import AlertEngine
from greenfoundry.config import plant_file
from greenfoundry.metrics import source
from greenfoundry.stack import LocalStack, apply_stack
from greenfoundry.store import line

S = 10**9
MIN = 60 * S
WARNING_LINE = 0.7


class TimedDispatcher:
    """The real dispatcher, with the wall time each notification reached it."""

    def __init__(self, inner: Dispatcher):
        self.inner = inner
        self.received: list[tuple[float, object]] = []

    def submit(self, notification, channel_names) -> None:
        self.inner.submit(notification, channel_names)
        self.received.append((time.time(), notification))

    def close(self) -> None:
        self.inner.close()


def _config(tmp: Path, stack_dir: Path, plant_id: str):
    raw = copy.deepcopy(yaml.safe_load(plant_file().read_text()))
    raw["plant"]["id"] = plant_id
    raw["mqtt"].pop("share_group", None)
    raw["mqtt"].pop("share_members", None)
    raw["metrics"] = {"state_dir": f"state-{plant_id}"}
    raw["alerts"] = {
        "state_dir": f"alerts-{plant_id}",
        "channels": {"journal": {"type": "jsonl", "path": f"alerts-{plant_id}/sent.jsonl"}},
        "default_channels": ["journal"],
        "rules": [{"id": "stack-warning", "for": 0}],
    }
    path = tmp / f"{plant_id}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return apply_stack(plant.load(path, resolve_secrets=False), stack_dir)


def _minute_lines(cfg, m: int, t_ns: int, second: int = 30) -> list[str]:
    """The readings of minute `m` of the day (its start `t_ns`): every stack pollutant
    `second` s past the minute, each furnace's counter on the minute, a tap at minute 30 of
    each hour."""
    pid = cfg.plant.id
    out = []
    p = int(pid.rsplit("-", 1)[-1])
    for s in cfg.stacks:
        for pol, c in s.limits_mg_m3.items():
            level = 0.4 + 0.1 * math.sin(2 * math.pi * m / 1440)
            if 300 + 7 * p <= m % 1440 < 360 + 7 * p:
                level = 0.95  # the plant's hour near C: warning, alarm, then back
            tags = {"plant": pid, "area": "env", "device": s.id, "pollutant": pol}
            out.append(line("stack_conc_mg_m3", tags, {"value": c * level}, t_ns + second * S))
        if m == 0:
            tags = {"plant": pid, "area": "env", "device": s.id}
            out.append(line("stack_analyser_status", tags, {"value": 0.0}, t_ns))
    for f in cfg.furnaces:
        tags = {"plant": pid, "area": "melt", "device": f.id}
        out.append(line("furnace_energy_kwh", tags, {"value": 8.0 * m}, t_ns))
        if m % 60 == 30:
            out.append(line("tap_iron_t", tags, {"value": 5.0}, t_ns))
            out.append(line("tap_temp_c", tags, {"value": 1500.0}, t_ns))
    return out


def _write(st, lines: list[str]) -> None:
    for i in range(0, len(lines), 50_000):
        st.write_lines(lines[i : i + 50_000])


# The lag cases: (what, second of the minute the crossing reading is written at, whether it is
# a CEMS minute value: stamped with the minute's start, HJ 212's DataTime, written at that
# second and the plant's only reading of that pollutant in the minute; else a raw reading
# stamped with the time it is written, between the plant's raw readings every 10 s).
LAG_CASES = (
    ("a raw reading at second 5 of its minute", 5, False),
    ("a raw reading at second 21, just after a step: the worst case", 21, False),
    ("a raw reading at second 50 of its minute", 50, False),
    ("a minute value stamped :00, sent just after its minute (0.2 s into the next)", 0, True),
)
# Raw readings come every RAW_EVERY_S seconds, at second 1, 11, 21, …: a step t is due once a
# reading at or after it is in (alerts/engine.py), which the next one after t shows.
RAW_EVERY_S = 10
# The engines tick every interval_s at the phase that makes every case wait longest: this many
# seconds before a step's settle_s has passed, so the tick that evaluates it comes a whole
# interval_s later.
TICK_EARLY_S = 0.2


def _raw_lines(cfg, t_ns: int, m_frac: float, minute_values: bool) -> list[str]:
    """One round of a lag plant's raw readings at ``t_ns`` (``m_frac`` minutes into the day):
    every stack pollutant at its background level (not for a plant of minute values) and each
    furnace's energy counter, so the plant's data shows every step as it passes."""
    pid = cfg.plant.id
    out = []
    if not minute_values:
        for s in cfg.stacks:
            for pol, c in s.limits_mg_m3.items():
                tags = {"plant": pid, "area": "env", "device": s.id, "pollutant": pol}
                out.append(line("stack_conc_mg_m3", tags, {"value": c * _level(m_frac)}, t_ns))
    for f in cfg.furnaces:
        tags = {"plant": pid, "area": "melt", "device": f.id}
        out.append(line("furnace_energy_kwh", tags, {"value": 8.0 * m_frac}, t_ns))
    return out


def _level(m: float) -> float:
    """The background level of every stack pollutant, as a multiple of C, m minutes in."""
    return 0.4 + 0.1 * math.sin(2 * math.pi * m / 1440)


def _spike_c(level: float, before: int) -> float:
    """The crossing reading (a multiple of C) that makes the running minute's mean 60 C with
    ``before`` background readings beside it in the step's part of the minute: the rolling
    hour is then about (59 × 0.4 + 60) / 60 ≈ 1.4 C, over every stack line whatever the
    background."""
    return 60.0 * (before + 1) - before * level


def _lag(engines, cfgs, st, day0_ns: int, last_m: int, timeout_s: float) -> dict:
    """Real time: every lag plant's raw readings every RAW_EVERY_S s (a plant of minute values:
    one per minute instead, stamped :00, written at :58); plant i gets its crossing reading as
    LAG_CASES[i] says. Returns plant id → lag in s (write → Dispatcher.submit)."""
    stack = cfgs[0].stacks[0]
    pol = next(iter(stack.limits_mg_m3))
    step_s = cfgs[0].alerts.step_s
    settle_s, interval_s = cfgs[0].alerts.settle_s, cfgs[0].alerts.interval_s
    written: dict[str, float] = {}
    cases = {cfg.plant.id: case for cfg, case in zip(cfgs, LAG_CASES, strict=False)}
    deadline = time.time() + timeout_s
    # Bring every plant up to the current minute.
    now_m = (time.time_ns() - day0_ns) // MIN
    lines = []
    for cfg in cfgs:
        for k in range(last_m + 1, now_m):
            lines += _minute_lines(cfg, k, day0_ns + k * MIN)
    _write(st, lines)
    for e in engines:
        e.tick()
    armed_m = None
    raw_slot = minute_slot = tick_slot = None
    while time.time() < deadline:
        now = time.time()
        now_ns = time.time_ns()
        cur = (now_ns - day0_ns) // MIN
        into = now % 60
        slot = int((now - 1) // RAW_EVERY_S)
        if slot != raw_slot:
            raw_slot = slot
            m_frac = (now_ns - day0_ns) / MIN
            lines = []
            for cfg in cfgs:
                lines += _raw_lines(cfg, now_ns, m_frac, cases[cfg.plant.id][2])
            _write(st, lines)
        if armed_m is None and into < 4:
            armed_m = cur  # the crossing readings go into this minute
        if into >= TICK_EARLY_S and minute_slot != cur:
            minute_slot = cur
            # The plants of minute values send the minute just ended, stamped with its start,
            # just after the tick that evaluated the step before the minute's end: the value
            # waits a whole step (their worst case).
            lines = []
            for cfg in cfgs:
                pid = cfg.plant.id
                if not cases[pid][2]:
                    continue
                for s in cfg.stacks:
                    for p, c in s.limits_mg_m3.items():
                        if armed_m == cur - 1 and (s.id, p) == (stack.id, pol):
                            # The crossing value: the minute's one value is its mean.
                            value = {"value": c * _spike_c(_level(cur - 1), 0)}
                            written[pid] = time.time()
                        else:
                            value = {"value": c * _level(cur - 1)}
                        tags = {"plant": pid, "area": "env", "device": s.id, "pollutant": p}
                        t_ns = day0_ns + (cur - 1) * MIN
                        lines.append(line("stack_conc_mg_m3", tags, value, t_ns))
            _write(st, lines)
        if armed_m == cur:
            for cfg in cfgs:
                pid = cfg.plant.id
                _, second, minute_value = cases[pid]
                if minute_value or pid in written or into < second:
                    continue
                tags = {"plant": pid, "area": "env", "device": stack.id, "pollutant": pol}
                c = stack.limits_mg_m3[pol]
                # The raw readings of the step's part of the minute beside it.
                t_ns = time.time_ns()
                step_end = (second // step_s + 1) * step_s
                before = len(range(1, min(step_end, 60), RAW_EVERY_S))
                value = c * _spike_c(_level(cur), before)
                st.write_lines([line("stack_conc_mg_m3", tags, {"value": value}, t_ns)])
                written[pid] = time.time()
        # Tick at the worst phase: TICK_EARLY_S before each step's settle_s has passed.
        phase = (now - settle_s + TICK_EARLY_S) // interval_s
        if phase != tick_slot:
            tick_slot = phase
            for e in engines:
                e.tick()
        got = {}
        for e, cfg in zip(engines, cfgs, strict=True):
            pid = cfg.plant.id
            for t, n in e.dispatcher.received:
                if (
                    pid in written
                    and n.rule == "stack-warning"
                    and n.event == "firing"
                    and n.details.get("stack") == stack.id
                    and t >= written[pid]
                ):
                    got[pid] = t - written[pid]
                    break
        if len(got) == len(cfgs):
            return got
        time.sleep(0.05)
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plants", type=int, default=40, help="plants of the park (default 40)")
    # 12 h keeps the default run under 5 minutes on 2 busy cores at step_s 20.
    ap.add_argument("--hours", type=int, default=12, help="hours of history (default 12)")
    ap.add_argument("--rounds", type=int, default=5, help="steady-cadence minutes (default 5)")
    ap.add_argument("--lag-timeout", type=float, default=200.0, help="s (default 200)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gf-bench-alerts-"))
    stack = LocalStack(tmp / "stack")
    stack.up()
    engines: list[AlertEngine] = []
    try:
        cfgs = [_config(tmp, stack.dir, f"park-{i:02d}") for i in range(1, args.plants + 1)]
        st = source.store_for_metrics(cfgs[0])
        minutes = args.hours * 60
        # The history ends 12 minutes before now: the steady rounds use simulated minutes in
        # that past, the lag the wall clock after them.
        end_ns = (time.time_ns() // MIN) * MIN - (args.rounds + 7) * MIN
        day0 = end_ns - minutes * MIN
        t0 = time.perf_counter()
        lines = []
        for cfg in cfgs:
            for m in range(minutes):
                lines += _minute_lines(cfg, m, day0 + m * MIN)
        # The first minute after the history: its counter reading closes the last minute.
        for cfg in cfgs:
            lines += [x for x in _minute_lines(cfg, minutes, end_ns) if "furnace_energy" in x]
        _write(st, lines)
        print(f"wrote {len(lines):,} readings for {args.plants} plants, {args.hours} h "
              f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip

        for cfg in cfgs:
            d = TimedDispatcher(Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir))
            e = AlertEngine(cfg, store=st, dispatcher=d)
            e.alert_store.commit([], day0)  # the cursor at the history's start: a catch-up
            engines.append(e)
        targets = sum(len(e.targets) for e in engines)

        # 1. catch-up of the history.
        t0 = time.perf_counter()
        results = [e.tick(end_ns + 10 * S) for e in engines]
        catch_s = time.perf_counter() - t0
        evaluated = sum(r.steps * len(e.targets) for r, e in zip(results, engines, strict=True))
        samples = sum(r.evaluations for r in results)
        transitions = sum(len(r.transitions) for r in results)
        notified = sum(r.notifications for r in results)

        # 2. steady cadence: a minute of readings for the park, then a tick per plant.
        rounds, per_tick, steady_evals = [], [], 0
        for i in range(args.rounds):
            m = minutes + i
            t_ns = day0 + m * MIN
            lines = []
            for cfg in cfgs:
                lines += _minute_lines(cfg, m, t_ns)
                lines += [x for x in _minute_lines(cfg, m + 1, t_ns + MIN) if "energy" in x]
            _write(st, lines)
            t0 = time.perf_counter()
            for e in engines:
                a = time.perf_counter()
                r = e.tick(t_ns + MIN + 10 * S)
                per_tick.append(time.perf_counter() - a)
                steady_evals += r.steps * len(e.targets)
            rounds.append(time.perf_counter() - t0)

        # 3. lag in real time, on the first plants.
        k = min(len(LAG_CASES), len(engines))
        lag = _lag(engines[:k], cfgs[:k], st, day0, minutes + args.rounds, args.lag_timeout)

        load = os.getloadavg()
        print(f"\n{datetime.now():%Y-%m-%d %H:%M}, load average {load[0]:.2f} {load[1]:.2f} "
              f"{load[2]:.2f}, {os.cpu_count()} CPUs")  # fmt: skip
        step_s = cfgs[0].alerts.step_s
        print(f"park: {args.plants} plants, {targets} targets ({targets // args.plants} a plant), "
              f"step_s {step_s}, settle_s {cfgs[0].alerts.settle_s}, "
              f"interval_s {cfgs[0].alerts.interval_s}")  # fmt: skip
        width = 84
        rows = [
            (f"catch-up of {args.hours} h: targets × steps / s", f"{evaluated / catch_s:,.0f}/s", ""),
            ("catch-up wall time (reads, evaluation, points, commits)", f"{catch_s:.1f} s", ""),
            ("  samples applied, transitions, notifications", f"{samples:,}, {transitions}, {notified}", ""),
            ("steady minute, the whole park (median of rounds)", f"{statistics.median(rounds):.2f} s", "< 60 s"),
            ("steady minute: targets × steps / s", f"{steady_evals / sum(rounds):,.0f}/s", ""),
            ("steady tick of one plant (median)", f"{statistics.median(per_tick) * 1000:.0f} ms", ""),
        ]  # fmt: skip
        for cfg, (what, _, _) in zip(cfgs, LAG_CASES, strict=False):
            pid = cfg.plant.id
            value = f"{lag[pid]:.1f} s" if pid in lag else "not seen"
            rows.append((f"lag, {what}", value, "< 60 s"))
        print(f"{'measure':<{width}} {'result':>22}  aim")
        for name, value, aim in rows:
            print(f"{name:<{width}} {value:>22}  {aim}")
    finally:
        for e in engines:
            e.dispatcher.close()
            e.close()
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
