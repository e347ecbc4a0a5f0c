"""Test helpers: a plant config pointed at the test stack, and waiting for a condition."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.stack import StackInfo, apply_stack, store_for
from greenfoundry.store import InfluxStore, quote_ident, where

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = yaml.safe_load(plant_file().read_text())
# Every test reading: from the epoch to 2100-01-01T00:00:00Z (4102444800 s), for `where`.
ALL_TIME = {"start_ns": 0, "end_ns": 4_102_444_800 * 10**9}


def default_role() -> str:
    """The MQTT role of a test's plant config: the simulator's tests publish as a device of the
    plant; every other test runs an ingest with it. (pytest names the running test in
    PYTEST_CURRENT_TEST.)"""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return "device" if current.startswith("tests/sim/") else "ingest"


def plant_config(
    tmp_path: Path, stack: StackInfo, plant_id: str, *, role: str | None = None, **ingest
) -> plant.PlantConfig:
    """The example plant under another id, its spool and dead letters in tmp_path, and the
    stack's endpoints with the credentials of `role` (default: `default_role()`)."""
    raw = copy.deepcopy(EXAMPLE)
    raw["plant"]["id"] = plant_id
    raw["mqtt"]["client_id"] = f"gf-ingest-{plant_id}"
    raw["mqtt"].pop("share_group", None)
    raw["ingest"].update(
        {
            "spool_dir": "spool",
            "deadletter_file": "deadletter.jsonl",
            "self_metrics_interval_s": 0.5,
            **ingest,
        }
    )
    path = tmp_path / f"{plant_id}.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {"GF_MQTT_PASSWORD": "unused", "GF_INFLUX_PASSWORD": "unused"}
    return apply_stack(plant.load(path, env=env), stack.dir, role=role or default_role())


def store(stack: StackInfo, role: str = "admin") -> InfluxStore:
    """The test's own view of InfluxDB: the admin by default (tests read what the components
    wrote, and some create retention policies)."""
    return store_for(stack, role=role)


def wait_for(
    condition: Callable[[], bool],
    timeout_s: float = 30.0,
    what: str | Callable[[], str] = "condition",
):
    """Poll until `condition()` is true; fail with `what` after the timeout (a guard, not a
    pacing device: every caller waits for a state it can observe)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s} s waiting for {what() if callable(what) else what}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def count(st: InfluxStore, measurement: str, plant_id: str, field: str = "value") -> int:
    df = st.query(
        f"SELECT COUNT({quote_ident(field)}) FROM {quote_ident(measurement)} "
        f"{where({'plant': plant_id}, **ALL_TIME)}"
    )
    return 0 if df.empty else int(df.iloc[0][df.columns[-1]])


class Publisher:
    """A paho QoS 1 publisher with a persistent session, so messages it has not yet had
    acknowledged survive a broker restart (paho resends them when the session resumes).

    With `plant` it is a device of that plant: its own account, bound to `client_id`, that may
    publish under the plant's topics only. Without, it uses the stack's operator account, for
    tests that must put on the wire what no device may (the ingest's refusals of a topic of
    another plant, which the broker's ACL now stops first)."""

    def __init__(self, stack: StackInfo, client_id: str, *, plant: str | None = None):
        from greenfoundry import mqtt

        if plant is None:
            username, password = stack.mqtt_username, stack.mqtt_password
        else:
            account = stack.device_account(plant, client_id)
            username, password = account.username, account.password
        self.client = mqtt.make_client(client_id, username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self.client.connect(
            stack.mqtt_host,
            stack.mqtt_port,
            clean_start=False,
            properties=mqtt.connect_properties(session_expiry_s=3600),
        )
        self.published = 0
        self.acked = 0
        self.refused = 0  # PUBACKs with a failure reason code (e.g. "not authorized")
        self.ack_times: list[float] = []  # time.monotonic() of each PUBACK, in order
        self.client.on_publish = self._on_publish
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.acked += 1
        self.ack_times.append(time.monotonic())
        if reason_code.is_failure:
            self.refused += 1

    def publish(self, topic: str, payload: str | bytes) -> None:
        # While the broker is away paho answers "not connected" but keeps a QoS 1 message
        # queued and sends it when the session resumes; the PUBACK count is the truth.
        self.client.publish(topic, payload, qos=1)
        self.published += 1

    def wait_all(self, timeout_s: float = 60.0) -> None:
        wait_for(
            lambda: self.acked >= self.published,
            timeout_s,
            f"PUBACKs for {self.published} messages ({self.acked} so far)",
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def energy_stream(t0_ms: int, n: int, seq0: int = 0) -> list[tuple[int, float, str]]:
    """n furnace-energy readings one second apart: (ts_ms, value, payload)."""
    import json

    out = []
    for i in range(n):
        ts, value = t0_ms + i * 1000, 5000.0 + (seq0 + i) * 0.125
        out.append(
            (ts, value, json.dumps({"ts_ms": ts, "value": value, "unit": "kWh", "seq": seq0 + i}))
        )
    return out


def energy_values(st: InfluxStore, plant_id: str) -> list[tuple[int, float]]:
    df = st.query(f"SELECT value FROM furnace_energy_kwh {where({'plant': plant_id}, **ALL_TIME)}")
    if df.empty:
        return []
    return [(t.value, v) for t, v in zip(df["time"], df["value"], strict=True)]
