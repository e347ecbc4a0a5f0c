"""Micro-benchmark of `PayloadParser.parse`, as a ratio to a plain `json.loads` of the same bytes.

Both are timed in the same run so the ratio holds across machines; the absolute µs are printed for
a feel of the budget (20,000 single-reading messages/s on 2 cores). Not a test: nothing is asserted.

    .venv/bin/python bench/payload.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.ingest import deadletter
from greenfoundry.ingest.payload import PayloadParser, Reject

ROOT = Path(__file__).resolve().parents[1]
NOW_NS = 1_795_392_000_000_000_000  # 2026-11-23T00:00:00Z

CASES = {
    "single, ts text + unit + seq": (
        "gf/v1/demo-dip/melt/if1/energy",
        b'{"ts": "2026-11-23T08:00:00.250+08:00", "value": 1234.5, "unit": "kWh", "seq": 118}',
    ),
    "single, ts_ms, no unit": (
        "gf/v1/demo-dip/melt/if1/power",
        b'{"ts_ms": 1795391999000, "value": 950.0, "seq": 9}',
    ),
    "single, converted (K)": (
        "gf/v1/demo-dip/melt/if1/tap_temp",
        b'{"ts_ms": 1795391999000, "value": 1700, "unit": "K"}',
    ),
    "reject, unknown topic": ("gf/v1/demo-dip/melt/if9/energy", b'{"ts_ms": 1, "value": 1}'),
    "batch of 100, per reading": (
        "gf/v1/demo-dip/melt/if1/_batch",
        json.dumps(
            {
                "readings": [
                    {"signal": "energy", "ts_ms": 1795391999000, "value": 1.5 + n, "seq": n}
                    for n in range(100)
                ]
            }
        ).encode(),
    ),
    "batch of 1000 with unit, per reading": (
        "gf/v1/demo-dip/melt/if1/_batch",
        json.dumps(
            {
                "readings": [
                    {
                        "signal": "energy",
                        "ts_ms": 1795391999000 + n,
                        "value": 1.5 + n,
                        "unit": "kWh",
                        "seq": n,
                    }
                    for n in range(1000)
                ]
            }
        ).encode(),
    ),
}


def per_call_us(fn, arg_sets, rounds: int = 5, number: int = 20_000) -> float:
    """Best of `rounds` runs of `number` calls, in µs per call (the minimum is the least noisy)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            fn(*arg_sets)
        best = min(best, time.perf_counter() - start)
    return best / number * 1e6


def main() -> None:
    env = {"GF_MQTT_PASSWORD": "bench", "GF_INFLUX_PASSWORD": "bench"}
    cfg = plant.load(plant_file(), env=env)
    parser = PayloadParser(cfg)
    print(f"python {sys.version.split()[0]}; best of 5 x 20,000 calls")
    print(f"{'case':32} {'json.loads µs':>14} {'parse µs':>10} {'ratio':>7} {'extra µs':>9}")
    for name, (topic, payload) in CASES.items():
        per = int(name.split()[2].rstrip(",")) if name.startswith("batch") else 1
        number = 20_000 // per
        base = per_call_us(json.loads, (payload,), number=number) / per
        ours = per_call_us(parser.parse, (topic, payload, NOW_NS), number=number) / per
        print(f"{name:32} {base:14.2f} {ours:10.2f} {ours / base:7.2f} {ours - base:9.2f}")
    topic, payload = CASES["single, ts text + unit + seq"]
    (reading,), _ = parser.parse(topic, payload, NOW_NS)
    line_us = per_call_us(reading.line, ())
    print(f"{'Reading.line()':32} {'':14} {line_us:10.2f}")
    reject = Reject("bad_value", "value is a string ('x'); expected a number", topic, payload, None)
    dead_us = per_call_us(deadletter.line, (reject, "demo-dip", NOW_NS))
    print(f"{'deadletter.line()':32} {'':14} {dead_us:10.2f}")


if __name__ == "__main__":
    main()
