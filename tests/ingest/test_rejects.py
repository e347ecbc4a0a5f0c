"""The golden corpus of bad payloads (ingest/testdata/bad_payloads.yaml), published over the real
broker between good readings: each bad one is rejected with the corpus's reason, counted and
dead-lettered (file and measurement) with its raw payload; every good reading lands."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.ingest.service import Ingest
from greenfoundry.stack import apply_stack
from greenfoundry.store import where
from tests.plant import ALL_TIME, Publisher, count, store, wait_for

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "ingest" / "testdata"
OVERLAY = yaml.safe_load((TESTDATA / "config.yaml").read_text(encoding="utf-8"))
BAD = yaml.safe_load((TESTDATA / "bad_payloads.yaml").read_text(encoding="utf-8"))["cases"]
NOW_NS = 1_795_392_000 * 1_000_000_000  # the corpus's clock, 2026-11-23T00:00:00Z
SUBSCRIBE = ["gf/v1/#"]  # wide, so that messages naming another plant reach us and are refused


def _payload(case: dict) -> bytes:
    data = (
        base64.b64decode(case["payload_b64"])
        if "payload_b64" in case
        else case["payload"].encode("utf-8")
    )
    if "pad_to" in case:
        data += b" " * (case["pad_to"] - len(data))
    return data


def _reachable(case: dict) -> bool:
    """A case this test can publish: on the corpus clock, at a topic MQTT can carry and our
    filters match (a topic outside every filter never reaches any ingest)."""
    topic = case["topic"]
    return (
        "now" not in case
        and topic
        and "+" not in topic
        and "#" not in topic
        and "\x00" not in topic
        and any(paho.topic_matches_sub(f, topic) for f in SUBSCRIBE)
    )


def test_bad_payload_corpus_is_rejected_counted_and_dead_lettered(tmp_path, stack):
    raw = yaml.safe_load(plant_file().read_text(encoding="utf-8"))
    raw["ingest"].update(
        OVERLAY["ingest"],
        spool_dir="spool",
        deadletter_file="dead.jsonl",
        self_metrics_interval_s=0.2,
    )
    raw["signals"].extend(OVERLAY["extra_signals"])
    raw["mqtt"].update(client_id="gf-ingest-rejects", subscribe=SUBSCRIBE)
    raw["mqtt"].pop("share_group", None)
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    cfg = apply_stack(
        plant.load(path, env={"GF_MQTT_PASSWORD": "x", "GF_INFLUX_PASSWORD": "x"}), stack.dir
    )
    cases = [c for c in BAD if _reachable(c)]
    assert len(cases) >= 30, "the corpus must keep at least 30 bad payloads reachable by MQTT"
    assert cfg.plant.id == "demo-dip"  # the corpus's topics name this plant

    svc = Ingest(cfg, clock=lambda: NOW_NS)
    svc.start()
    pub = Publisher(stack, "rejects-pub")
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "power")])
    good = []
    try:
        assert svc.wait_connected(10)
        for n, case in enumerate(cases):
            # A good reading before each bad one, and one after the last.
            ts_ms = NOW_NS // 1_000_000 - 100_000 + n
            good.append((ts_ms * 1_000_000, 900.0 + n))
            pub.publish(topic, json.dumps({"ts_ms": ts_ms, "value": 900.0 + n}))
            pub.publish(case["topic"], _payload(case))
        good.append((NOW_NS - 1_000_000, 42.0))
        pub.publish(topic, json.dumps({"ts_ms": NOW_NS // 1_000_000 - 1, "value": 42.0}))
        pub.wait_all()
        wait_for(
            lambda: svc.counters.rejected == len(cases),
            30,
            f"{len(cases)} rejects ({svc.counters.rejected} so far)",
        )
        st = store(stack)
        wait_for(
            lambda: count(st, "furnace_power_kw", "demo-dip") == len(good),
            30,
            lambda: (
                f"{len(good)} good readings, InfluxDB has "
                f"{count(st, 'furnace_power_kw', 'demo-dip')}; {svc.counters.snapshot()}"
            ),
        )
    finally:
        pub.close()
        svc.stop()

    df = st.query(f"SELECT value FROM furnace_power_kw {where({'plant': 'demo-dip'}, **ALL_TIME)}")
    assert [(t.value, v) for t, v in zip(df["time"], df["value"], strict=True)] == good

    # The dead-letter file: one record per case, in order, with the reason and the raw bytes.
    records = [
        json.loads(line)
        for line in cfg.ingest.deadletter_file.read_text(encoding="utf-8").splitlines()
    ]
    assert [(r["topic"], r["reason"]) for r in records] == [
        (c["topic"], c["reason"]) for c in cases
    ]
    for case, record in zip(cases, records, strict=True):
        raw_bytes = (
            base64.b64decode(record["payload_b64"])
            if "payload_b64" in record
            else record["payload"].encode("utf-8")
        )
        assert raw_bytes == _payload(case), case["id"]

    # The counters by reason, in memory and in the self-metrics; and the measurement.
    expected = Counter(c["reason"] for c in cases)
    assert {k: v for k, v in svc.counters.rejected_by_reason.items() if v} == dict(expected)
    dl = st.query(
        f"SELECT COUNT(detail) FROM gf_deadletter {where({'plant': 'demo-dip'}, last_s=3600)} "
        "GROUP BY reason"
    )
    assert dict(zip(dl["reason"], dl["count"].astype(int), strict=True)) == dict(expected)
    metrics = st.query(f"SELECT LAST(*) FROM gf_ingest {where({'plant': 'demo-dip'}, last_s=3600)}")
    for reason, n in expected.items():
        assert int(metrics.iloc[0][f"last_rejected_{reason}"]) == n, reason
