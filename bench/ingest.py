"""Ingest benchmark: sustained end-to-end rate against two ceilings measured in the same run.

    .venv/bin/python bench/ingest.py [--messages 200000] [--replay 500000]

Starts its own local stack (Mosquitto + InfluxDB, auth on) in a temporary directory, then:

1. ceiling A, broker → Python: N one-reading messages are queued at QoS 1 for a persistent
   session while nobody is connected; a paho subscriber that only parses (the ingest's own
   PayloadParser, auto-acknowledged) connects and drains them. Readings/s.
2. ceiling B, Python → InfluxDB: the same N readings as line protocol, POSTed in batches of
   5000 (gzip) to the same InfluxDB. Readings/s.
3. end to end: N messages queued the same way for the ingest's session, then `greenfoundry
   ingest` (a separate process) drains them — each acknowledged only after the durable write.
   Readings/s from when InfluxDB holds 10 % of them until it holds all N (start-up excluded),
   and the process's peak RSS.
4. spool replay: M readings put in the ingest's spool, then an ingest started with InfluxDB
   up replays them. Readings/s.

Queuing before connecting measures each consumer at its own pace, not the publisher's. Figures
are printed, with the end-to-end rate as a ratio of the lower ceiling; nothing here asserts a
time, since these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
from greenfoundry.ingest.payload import PayloadParser
from greenfoundry.ingest.spool import Spool
from greenfoundry.stack import LocalStack, apply_stack, store_for
from greenfoundry.store import InfluxStore, quote_ident, series_key, value_line, where

REPO = Path(__file__).resolve().parent.parent
T0_MS = 1_795_000_000_000


def payloads(n: int, offset: int = 0) -> list[bytes]:
    return [
        json.dumps(
            {"ts_ms": T0_MS + offset + i, "value": 1000.0 + i * 0.25, "unit": "kWh", "seq": i}
        ).encode()
        for i in range(n)
    ]


def plant_config(
    tmp: Path, stack: LocalStack, plant_id: str, share_group: str | None = None
) -> plantcfg.PlantConfig:
    raw = yaml.safe_load(plant_file().read_text())
    raw["plant"]["id"] = plant_id
    raw["mqtt"]["client_id"] = f"gf-bench-{plant_id}"
    raw["mqtt"].pop("share_group", None)
    if share_group:
        raw["mqtt"]["share_group"] = share_group
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
            clean_start=True,
            properties=mqtt.connect_properties(session_expiry_s=3600),
        )
        sub.loop_start()
        done.wait(10)
        sub.disconnect()
        sub.loop_stop()


def publish_all(info, topic: str, bodies: list[bytes]) -> float:
    """Publish `bodies` to `topic` at QoS 1; return the rate (messages/s)."""
    pub = mqtt.make_client("gf-bench-publisher", info.mqtt_username, info.mqtt_password)
    # A bounded window: paho scans its whole outgoing queue on every PUBACK, so handing it
    # 200,000 messages at once would be quadratic.
    window = threading.Semaphore(1000)
    pub.max_inflight_messages_set(1000)
    pub.on_publish = lambda *a: window.release()
    pub.connect(info.mqtt_host, info.mqtt_port)
    pub.loop_start()
    start = time.perf_counter()
    for body in bodies:
        window.acquire()
        pub.publish(topic, body, qos=1)
    for _ in range(1000):
        window.acquire(timeout=600)
    rate = len(bodies) / (time.perf_counter() - start)
    pub.disconnect()
    pub.loop_stop()
    return rate


def ceiling_parse_only(info, cfg, topic: str, n: int) -> float:
    parser = PayloadParser(cfg)
    client_id = "gf-bench-parse-only"
    make_sessions(info, [(client_id, topic)])
    publish_all(info, topic, payloads(n))
    got = [0]
    done = threading.Event()
    first = [0.0]

    def on_message(client, userdata, msg):
        if not got[0]:
            first[0] = time.perf_counter()
        parser.parse(msg.topic, msg.payload, time.time_ns())
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
        properties=mqtt.connect_properties(session_expiry_s=3600, receive_maximum=20000),
    )
    c.loop_start()
    done.wait(600)
    elapsed = time.perf_counter() - start
    c.disconnect()
    c.loop_stop()
    return got[0] / elapsed


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


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def end_to_end(tmp: Path, stack: LocalStack, n: int, processes: int) -> tuple[float, float]:
    """`processes` ingest processes (with more than one, in a share group, each its own
    --instance) drain n queued messages. Returns readings/s and the largest peak RSS."""
    info = stack.info
    plant = f"bench-e2e{processes}"
    cfg = plant_config(tmp, stack, plant, share_group="bench" if processes > 1 else None)
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    names = [f"p{k}" for k in range(processes)] if processes > 1 else [None]
    prefix = "$share/bench/" if processes > 1 else ""
    make_sessions(
        info,
        [
            (cfg.mqtt.client_id + (f"-{nm}" if nm else ""), f"{prefix}gf/v1/{plant}/#")
            for nm in names
        ],
    )
    publish_all(info, topic, payloads(n))
    store = store_for(info)
    procs = [
        subprocess.Popen(
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
            + (["--instance", nm] if nm else [])
        )
        for nm in names
    ]
    # Sustained rate: from 10 % of the readings in InfluxDB to all of them, so the processes'
    # start-up (imports, connection) is not counted.
    start = time.perf_counter()
    try:
        t1 = c1 = None
        while (c := count(store, "furnace_energy_kwh", plant)) < n:
            if any(p.poll() is not None for p in procs):
                raise SystemExit("an ingest process exited early")
            if t1 is None and c >= n // 10:
                t1, c1 = time.perf_counter(), c
            time.sleep(0.05)
        if t1 is None:  # too few messages to see 10 %: fall back to the whole run
            t1, c1 = start, 0
        elapsed = time.perf_counter() - t1
        rss = max(peak_rss_mb(p.pid) for p in procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    return (n - c1) / elapsed, rss


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
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--replay", type=int, default=500_000)
    ap.add_argument(
        "--processes",
        type=int,
        default=2,
        help="also run this many ingest processes in one share group (default 2)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gf-bench-") as d:
        tmp = Path(d)
        os.chdir(tmp)
        stack = LocalStack(tmp / "stack")
        stack.up()
        try:
            info = stack.info
            cfg = plant_config(tmp, stack, "bench-parse")
            topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
            n = args.messages
            print(
                f"greenfoundry ingest benchmark: {n} one-reading messages, QoS 1, "
                f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
            )
            a = ceiling_parse_only(info, cfg, topic, n)
            print(f"ceiling A  broker -> paho, parse only      {a:10,.0f} readings/s")
            b = ceiling_bulk_post(info, n)
            print(f"ceiling B  bulk line-protocol POST         {b:10,.0f} readings/s")
            e2e, rss = end_to_end(tmp, stack, n, 1)
            low = min(a, b)
            print(
                f"end to end ingest (ack after durable write) {e2e:9,.0f} readings/s  "
                f"= {e2e / low:.2f} of the lower ceiling"
            )
            print(f"ingest peak RSS                            {rss:10.0f} MB")
            if args.processes > 1:
                e2e_p, rss_p = end_to_end(tmp, stack, n, args.processes)
                print(
                    f"end to end, {args.processes} ingest processes in a share group "
                    f"{e2e_p:7,.0f} readings/s  = {e2e_p / e2e:.2f} of one process"
                )
                print(f"  largest peak RSS of those processes     {rss_p:10.0f} MB")
            r = replay(tmp, stack, args.replay)
            print(f"spool replay ({args.replay} readings)          {r:10,.0f} readings/s")
            print(
                f"bench process peak RSS                     "
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:10.0f} MB"
            )
        finally:
            stack.down()


if __name__ == "__main__":
    main()
