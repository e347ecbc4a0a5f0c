"""Test helpers: a plant config pointed at the test stack, and waiting for a condition."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from greenfoundry import config
from greenfoundry.stack import StackInfo, apply_stack
from greenfoundry.store import InfluxStore, StoreSettings

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = yaml.safe_load((REPO / "config" / "plant.example.yaml").read_text())


def plant_config(tmp_path: Path, stack: StackInfo, plant_id: str, **ingest) -> config.PlantConfig:
    """The example plant under another id, its spool and dead letters in tmp_path, and the
    stack's endpoints and credentials."""
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
    return apply_stack(config.load(path, env=env), stack.dir)


def store(stack: StackInfo) -> InfluxStore:
    return InfluxStore(
        StoreSettings(
            url=stack.influx_url,
            database=stack.influx_database,
            username=stack.influx_username,
            password=stack.influx_password,
        )
    )


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition"):
    """Poll until `condition()` is true; fail with `what` after the timeout (a guard, not a
    pacing device: every caller waits for a state it can observe)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def count(st: InfluxStore, measurement: str, plant_id: str, field: str = "value") -> int:
    df = st.query(
        f"SELECT COUNT({field}) FROM {measurement} WHERE plant = '{plant_id}' "
        "AND time > 0 AND time < 4102444800000000000"
    )
    return 0 if df.empty else int(df.iloc[0][df.columns[-1]])
