"""Ingest benchmark: sustained end-to-end rates against ceilings measured in the same run.

    .venv/bin/python bench/ingest.py [--messages 100000] [--batches 300] [--replay 300000]

Starts its own local stack (Mosquitto + InfluxDB, auth on) in a temporary directory. Every
message is published by a paho QoS 1 publisher that waits for each PUBACK and counts them (not
`mosquitto_pub -l`, which loses lines silently); its own rate is printed. Messages are queued for
a persistent session while nobody is connected, so each consumer runs at its own pace:

1. ceilings, broker → client: `mosquitto_sub` (the C client), a plain paho consumer and a
   plain gmqtt consumer (no parsing, no writing) drain N one-reading messages. Messages/s.
2. ceiling, Python → InfluxDB: N readings as line protocol POSTed in batches of 5000.
3. end to end, one `greenfoundry ingest` process (each message acknowledged only after the
   durable write): N one-reading messages, then batch messages of 100 and of 1000 readings,
   each with `mqtt.client: paho` and with `mqtt.client: gmqtt`, one after the other.
   Readings/s from when InfluxDB holds 10 % of them until it holds all (start-up excluded), and
   the process's peak RSS.
4. the spool path: InfluxDB stopped, the ingest drains N one-reading messages into its spool,
   with paho and with gmqtt. Readings/s, against the same client's direct rate of step 3.
5. two processes of declared instances (each its own part of the topic tree), and the replay of
   M spooled readings.

Each figure is printed with its date and how busy the machine was meanwhile: the load average
and the CPU share of processes that are not this benchmark's (other sessions, other tests).
Nothing here asserts a time: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from greenfoundry import mqtt
from greenfoundry import plant as plantcfg
from greenfoundry.config import plant_file
from greenfoundry.ingest.spool import Spool
from greenfoundry.stack import LocalStack, apply_stack, find_binary, store_for
from greenfoundry.store import InfluxStore, quote_ident, series_key, value_line, where

REPO = Path(__file__).resolve().parent.parent
T0_MS = 1_795_000_000_000
SIGNALS = ("energy", "power")  # batch elements alternate between two signals of one device


def payloads(n: int, offset: int = 0) -> list[bytes]:
    """n one-reading messages (a distinct timestamp each)."""
    return [
        json.dumps(
            {"ts_ms": T0_MS + offset + i, "value": 1000.0 + i * 0.25, "unit": "kWh", "seq": i}
        ).encode()
        for i in range(n)
    ]


def batch_payloads(messages: int, size: int) -> list[bytes]:
    """`messages` batch messages of `size` readings each (with seq, as a device sends them)."""
    out = []
    for m in range(messages):
        base = m * size
        out.append(
            json.dumps(
                {
                    "readings": [
                        {
                            "signal": "energy",
                            "ts_ms": T0_MS + base + i,
                            "value": 1000.0 + (base + i) * 0.25,
                            "unit": "kWh",
                            "seq": base + i,
                        }
                        for i in range(size)
                    ]
                }
            ).encode()
        )
    return out


class Busy:
    """How busy the machine was between `start()` and `stop()`: the 1-minute load average at
    the end, the whole machine's CPU use and the part of it by processes outside this
    benchmark's tree (its stack and ingest processes are inside), as % of all cores."""

    def __init__(self):
        self.me = os.getpid()

    @staticmethod
    def _total() -> tuple[int, int]:
        parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = parts[3] + parts[4]
        return sum(parts), sum(parts) - idle

    def _ours(self) -> int:
        children: dict[int, list[int]] = {}
        ticks: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            pid, ppid = int(d), int(fields[1])
            children.setdefault(ppid, []).append(pid)
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
        total, todo = 0, [self.me]
        while todo:
            pid = todo.pop()
            total += ticks.get(pid, 0)
            todo.extend(children.get(pid, ()))
        # Children that have ended and been waited for (the ingest processes of a step).
        t = os.times()
        return total + round((t.children_user + t.children_system) * os.sysconf("SC_CLK_TCK"))

    def start(self) -> Busy:
        self.t0, self.b0 = self._total()
        self.o0 = self._ours()
        return self

    def stop(self) -> str:
        t1, b1 = self._total()
        ours = self._ours() - self.o0
        span = max(1, t1 - self.t0)
        busy = 100 * (b1 - self.b0) / span
        others = max(0.0, 100 * ((b1 - self.b0) - ours) / span)
        return f"load {os.getloadavg()[0]:.2f}, machine {busy:.0f}% busy, others {others:.0f}%"


def report(what: str, value: str, busy: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    print(f"{stamp}  {what:<52} {value:>22}   ({busy})", flush=True)


def plant_config(tmp: Path, stack: LocalStack, plant_id: str, **mqtt_keys) -> plantcfg.PlantConfig:
    raw = yaml.safe_load(plant_file().read_text())
    raw["plant"]["id"] = plant_id
    raw["mqtt"]["client_id"] = f"gf-bench-{plant_id}"
    raw["mqtt"].pop("share_group", None)
    raw["mqtt"].update(mqtt_keys)
    if "instances" in mqtt_keys:
        raw["mqtt"].pop("subscribe", None)
    raw["ingest"].update(
        spool_dir=f"spool-{plant_id}", deadletter_file=f"dead-{plant_id}.jsonl", max_past_days=3650
    )
    path = tmp / f"{plant_id}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return apply_stack(plantcfg.load(path, resolve_secrets=False), stack.dir)


def make_sessions(info, sessions: list[tuple[str, str]]) -> None:
    """Create persistent sessions (client id, topic filter), each subscribed, then disconnect,
    so the broker queues what is published next for them."""
    for client_id, topic_filter in sessions:
        sub = mqtt.make_client(client_id, info.mqtt_username, info.mqtt_password)
        done = threading.Event()
        sub.on_subscribe = lambda *a, done=done: done.set()
        sub.on_connect = lambda c, *a, f=topic_filter: c.subscribe(f, qos=1)
        sub.connect(
            info.mqtt_host,
            info.mqtt_port,
            clean_start=False,  # Mosquitto 2.0 persists only sessions made without clean start
            properties=mqtt.connect_properties(session_expiry_s=3600),
        )
        sub.loop_start()
        if not done.wait(10):
            raise SystemExit(f"no SUBACK for {client_id}")
        sub.disconnect()
        sub.loop_stop()


def publish_all(info, topic_bodies: list[tuple[str, bytes]]) -> float:
    """Publish at QoS 1, wait for every PUBACK and check they all came with success; return
    the publisher's rate (messages/s)."""
    pub = mqtt.make_client("gf-bench-publisher", info.mqtt_username, info.mqtt_password)
    # A bounded window: paho scans its whole outgoing queue on every PUBACK, so handing it
    # 200,000 messages at once would be quadratic.
    window = threading.Semaphore(1000)
    acked, failed = [0], [0]

    def on_publish(client, userdata, mid, reason_code, properties):
        acked[0] += 1
        if reason_code.is_failure:
            failed[0] += 1
        window.release()

    pub.max_inflight_messages_set(1000)
    pub.on_publish = on_publish
    pub.connect(info.mqtt_host, info.mqtt_port)
    pub.loop_start()
    start = time.perf_counter()
    for topic, body in topic_bodies:
        window.acquire()
        pub.publish(topic, body, qos=1)
    for _ in range(1000):
        window.acquire(timeout=600)
    rate = len(topic_bodies) / (time.perf_counter() - start)
    pub.disconnect()
    pub.loop_stop()
    if acked[0] != len(topic_bodies) or failed[0]:
        raise SystemExit(
            f"publisher: {acked[0]} of {len(topic_bodies)} acknowledged, {failed[0]} refused"
        )
    return rate


def ceiling_paho(info, topic: str, n: int) -> tuple[float, float]:
    """A plain paho consumer (loop_start, automatic PUBACK, no parsing): messages/s, and the
    publisher's rate."""
    client_id = "gf-bench-paho"
    make_sessions(info, [(client_id, topic)])
    pub_rate = publish_all(info, [(topic, b) for b in payloads(n)])
    got = [0]
    done = threading.Event()

    def on_message(client, userdata, msg):
        got[0] += 1
        if got[0] == n:
            done.set()

    c = mqtt.make_client(client_id, info.mqtt_username, info.mqtt_password)
    c.on_message = on_message
    start = time.perf_counter()
    c.connect(
        info.mqtt_host,
        info.mqtt_port,
        clean_start=False,
        properties=mqtt.connect_properties(session_expiry_s=3600, receive_maximum=1024),
    )
    c.loop_start()
    done.wait(600)
    elapsed = time.perf_counter() - start
    c.disconnect()
    c.loop_stop()
    return got[0] / elapsed, pub_rate


def ceiling_gmqtt(info, topic: str, n: int) -> float:
    """A plain gmqtt consumer (its own asyncio loop, PUBACK when the async on_message returns,
    no parsing): messages/s. The same client and acknowledgement mode as `mqtt.client: gmqtt`."""
    import asyncio

    import gmqtt

    client_id = "gf-bench-gmqtt"
    make_sessions(info, [(client_id, topic)])
    publish_all(info, [(topic, b) for b in payloads(n)])

    async def drain() -> float:
        got = [0]
        done = asyncio.Event()

        async def on_message(client, topic, payload, qos, properties):
            got[0] += 1
            if got[0] == n:
                done.set()
            return 0

        c = gmqtt.Client(
            client_id,
            clean_session=False,
            optimistic_acknowledgement=False,
            session_expiry_interval=3600,
            receive_maximum=1024,
        )
        c.set_auth_credentials(info.mqtt_username, info.mqtt_password)
        c.on_message = on_message
        start = time.perf_counter()
        await c.connect(info.mqtt_host, info.mqtt_port)
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - start
        await c.disconnect()
        return got[0] / elapsed

    return asyncio.run(drain())


def ceiling_mosquitto_sub(info, topic: str, n: int) -> float | None:
    """`mosquitto_sub` (the C client) draining n queued messages, connect included."""
    try:
        binary = shutil.which("mosquitto_sub") or find_binary("mosquitto_sub", install=False)
    except Exception:
        return None
    client_id = "gf-bench-c"
    make_sessions(info, [(client_id, topic)])
    publish_all(info, [(topic, b) for b in payloads(n)])
    start = time.perf_counter()
    done = subprocess.run(
        [
            binary,
            "-h",
            info.mqtt_host,
            "-p",
            str(info.mqtt_port),
            "-u",
            info.mqtt_username,
            "-P",
            info.mqtt_password,
            "-i",
            client_id,
            "-c",
            "-q",
            "1",
            "-V",
            "mqttv5",
            "-x",
            "3600",
            "-t",
            topic,
            "-C",
            str(n),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=600,
    )
    if done.returncode != 0:
        return None
    return n / (time.perf_counter() - start)


def ceiling_bulk_post(info, n: int) -> float:
    store = store_for(info)
    key = series_key("bench_post", {"plant": "bench", "area": "a", "device": "d"})
    lines = [value_line(key, 1000.0 + i * 0.25, (T0_MS + i) * 1_000_000) for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, 5000):
        store.write_lines(lines[i : i + 5000])
    return n / (time.perf_counter() - start)


def count(store: InfluxStore, measurement: str, plant: str) -> int:
    df = store.query(
        f"SELECT COUNT(value) FROM {quote_ident(measurement)} "
        f"{where({'plant': plant}, start_ns=0, end_ns=4_102_444_800 * 10**9)}"
    )
    return 0 if df.empty else int(df.iloc[0]["count"])


def cpu_s(pid: int) -> float:
    """The CPU time (user + system) a process has used, in seconds (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ingest_process(cfg, stack, instance: str | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenfoundry",
            "--log-level",
            "WARNING",
            "ingest",
            "--config",
            str(cfg.path),
            "--stack",
            str(stack.dir),
        ]
        + (["--instance", instance] if instance else [])
    )


def end_to_end(
    tmp: Path,
    stack: LocalStack,
    plant: str,
    bodies: list[bytes],
    readings: int,
    processes=1,
    batch=False,
    client="paho",
) -> tuple[float, float, float, float]:
    """The ingest (`mqtt.client: client`) drains `bodies` (holding `readings` readings) queued
    for its session(s). With two processes, each is a declared instance taking one device of
    the plant. Returns readings/s, the largest peak RSS, the publisher's rate and the
    processes' CPU µs per reading."""
    info = stack.info
    if processes == 1:
        cfg = plant_config(tmp, stack, plant, client=client)
        topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
        if batch:
            topic = topic.rsplit("/", 1)[0] + "/_batch"
        names, topics = [None], [topic]
        filters = [f"gf/v1/{plant}/#"]
    else:
        devices = [f"if{k + 1}" for k in range(processes)]
        cfg = plant_config(
            tmp, stack, plant, instances={d: [f"gf/v1/{plant}/melt/{d}/#"] for d in devices}
        )
        names = devices
        topics = [cfg.topic_for(cfg.routes[("melt", d, "energy")]) for d in devices]
        filters = [f"gf/v1/{plant}/melt/{d}/#" for d in devices]
    ids = [cfg.mqtt.client_id + (f"-{nm}" if nm else "") for nm in names]
    make_sessions(info, list(zip(ids, filters, strict=True)))
    pub_rate = publish_all(info, [(topics[i % len(topics)], b) for i, b in enumerate(bodies)])
    store = store_for(info)
    procs = [ingest_process(cfg, stack, nm) for nm in names]
    # Sustained rate: from 10 % of the readings in InfluxDB to all of them, so the processes'
    # start-up (imports, connection) is not counted.
    start = time.perf_counter()
    try:
        t1 = c1 = None
        while (c := count(store, "furnace_energy_kwh", plant)) < readings:
            if any(p.poll() is not None for p in procs):
                raise SystemExit("an ingest process exited early")
            if t1 is None and c >= readings // 10:
                t1, c1 = time.perf_counter(), c
                cpu1 = sum(cpu_s(p.pid) for p in procs)
            time.sleep(0.05)
        if t1 is None:  # too few messages to see 10 %: fall back to the whole run
            t1, c1, cpu1 = start, 0, 0.0
        elapsed = time.perf_counter() - t1
        cpu = sum(cpu_s(p.pid) for p in procs) - cpu1
        rss = max(peak_rss_mb(p.pid) for p in procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    # The processes' CPU per reading over the same span: less sensitive to the machine's load
    # than the rate (another session's work takes the cores, not this process's CPU time).
    return (readings - c1) / elapsed, rss, pub_rate, cpu * 1e6 / (readings - c1)


def spool_path(tmp: Path, stack: LocalStack, n: int, client: str = "paho") -> float:
    """InfluxDB stopped: the ingest (`mqtt.client: client`) drains n queued one-reading
    messages into its spool. Readings/s from 10 % to all of them spooled."""
    info = stack.info
    plant = "bench-spool" if client == "paho" else f"bench-spool-{client}"
    cfg = plant_config(tmp, stack, plant, client=client)
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    make_sessions(info, [(cfg.mqtt.client_id, f"gf/v1/{plant}/#")])
    publish_all(info, [(topic, b) for b in payloads(n)])
    stack.stop_influxdb()
    proc = ingest_process(cfg, stack)
    try:
        t1 = c1 = None
        start = time.perf_counter()
        while (c := Spool(cfg.ingest.spool_dir, readonly=True).pending_readings) < n:
            if proc.poll() is not None:
                raise SystemExit("the ingest exited early")
            if t1 is None and c >= n // 10:
                t1, c1 = time.perf_counter(), c
            if time.perf_counter() - start > 600:
                raise SystemExit(f"only {c} of {n} spooled in 600 s")
            time.sleep(0.05)
        if t1 is None:
            t1, c1 = start, 0
        rate = (n - c1) / (time.perf_counter() - t1)
    finally:
        proc.terminate()
        proc.wait(60)
        stack.start_influxdb()
    return rate


def replay(tmp: Path, stack: LocalStack, m: int) -> float:
    from greenfoundry.ingest.service import Ingest

    cfg = plant_config(tmp, stack, "bench-replay")
    spool = Spool(cfg.ingest.spool_dir)
    key = series_key(
        "furnace_energy_kwh", {"plant": "bench-replay", "area": "melt", "device": "if1"}
    )
    for i in range(0, m, 5000):
        spool.append(
            [value_line(key, 1.0 + j, (T0_MS + j) * 1_000_000) for j in range(i, min(m, i + 5000))],
            min(5000, m - i),
        )
    spool.close()  # the ingest takes the spool over
    svc = Ingest(cfg)
    start = time.perf_counter()
    svc.start()
    while len(svc.spool):
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    svc.stop()
    return svc.counters.replayed / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000, help="one-reading messages")
    ap.add_argument(
        "--batches", type=int, default=300, help="batch messages of each size (100, 1000)"
    )
    ap.add_argument("--replay", type=int, default=300_000)
    ap.add_argument("--processes", type=int, default=2, help="declared instances (default 2)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gf-bench-") as d:
        tmp = Path(d)
        os.chdir(tmp)
        stack = LocalStack(tmp / "stack")
        stack.up()
        try:
            info = stack.info
            cfg = plant_config(tmp, stack, "bench-ceiling")
            topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
            n = args.messages
            print(
                f"greenfoundry ingest benchmark: {n:,} one-reading messages and "
                f"{args.batches} batch messages of 100 and of 1000 readings, QoS 1; "
                f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
            )
            busy = Busy().start()
            c = ceiling_mosquitto_sub(info, topic, n)
            report(
                "ceiling: mosquitto_sub (C), messages/s", f"{c:,.0f}" if c else "n/a", busy.stop()
            )
            busy = Busy().start()
            a, pub_rate = ceiling_paho(info, topic, n)
            report("ceiling: plain paho consumer, messages/s", f"{a:,.0f}", busy.stop())
            report("  its publisher (paho, every PUBACK counted), msg/s", f"{pub_rate:,.0f}", "")
            busy = Busy().start()
            g = ceiling_gmqtt(info, topic, n)
            report("ceiling: plain gmqtt consumer, messages/s", f"{g:,.0f}", busy.stop())
            busy = Busy().start()
            b = ceiling_bulk_post(info, n)
            report("ceiling: bulk line-protocol POST, readings/s", f"{b:,.0f}", busy.stop())
            busy = Busy().start()
            e2e, rss, pub, cpu_paho = end_to_end(tmp, stack, "bench-e2e", payloads(n), n)
            report(
                "end to end, 1-reading messages, readings/s",
                f"{e2e:,.0f} = {e2e / min(a, b):.2f} ceil",
                busy.stop(),
            )
            report("  ingest peak RSS, MB", f"{rss:.0f}", f"publisher {pub:,.0f} msg/s")
            report("  ingest CPU per reading, µs", f"{cpu_paho:.1f}", "")
            busy = Busy().start()
            e2e_g, rss_g, pub, cpu_g = end_to_end(
                tmp, stack, "bench-e2e-g", payloads(n), n, client="gmqtt"
            )
            report(
                "end to end, 1-reading messages, gmqtt, readings/s",
                f"{e2e_g:,.0f} = {e2e_g / min(g, b):.2f} ceil",
                busy.stop(),
            )
            report(
                "  ingest peak RSS, MB",
                f"{rss_g:.0f}",
                f"{e2e_g / e2e:.2f} paho ingest; publisher {pub:,.0f} msg/s",
            )
            report("  ingest CPU per reading, µs", f"{cpu_g:.1f}", f"{cpu_g / cpu_paho:.2f} paho's")
            for size in (100, 1000):
                bodies = batch_payloads(args.batches, size)
                for client in ("paho", "gmqtt"):
                    busy = Busy().start()
                    rate, rss_b, pub, cpu_b = end_to_end(
                        tmp,
                        stack,
                        f"bench-b{size}-{client}",
                        bodies,
                        args.batches * size,
                        batch=True,
                        client=client,
                    )
                    report(
                        f"end to end, {size}-reading batches, {client}, readings/s",
                        f"{rate:,.0f}",
                        busy.stop(),
                    )
                    report(
                        f"  ingest peak RSS, MB ({len(bodies[0]):,} B a message)",
                        f"{rss_b:.0f}",
                        f"publisher {pub:,.0f} msg/s; CPU {cpu_b:.2f} µs a reading",
                    )
            busy = Busy().start()
            sp = spool_path(tmp, stack, n)
            report(
                "spool path (InfluxDB down), 1-reading msgs, rd/s",
                f"{sp:,.0f} = {sp / e2e:.2f} direct",
                busy.stop(),
            )
            busy = Busy().start()
            sp_g = spool_path(tmp, stack, n, client="gmqtt")
            report(
                "spool path (InfluxDB down), gmqtt, 1-reading, rd/s",
                f"{sp_g:,.0f} = {sp_g / e2e_g:.2f} direct",
                busy.stop(),
            )
            if args.processes > 1:
                busy = Busy().start()
                e2e_p, _, _, _ = end_to_end(
                    tmp, stack, "bench-inst", payloads(n), n, processes=args.processes
                )
                report(
                    f"end to end, {args.processes} declared instances, readings/s",
                    f"{e2e_p:,.0f} = {e2e_p / e2e:.2f} one",
                    busy.stop(),
                )
            busy = Busy().start()
            r = replay(tmp, stack, args.replay)
            report(f"spool replay ({args.replay:,} readings), readings/s", f"{r:,.0f}", busy.stop())
            report(
                "bench process peak RSS, MB",
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}",
                "",
            )
        finally:
            stack.down()


if __name__ == "__main__":
    main()
