"""Pure parts of the ingest service (no servers)."""

from __future__ import annotations

from pathlib import Path

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.ingest.service import for_instance, receive_maximum

REPO = Path(__file__).resolve().parents[2]


def _example(**ingest):
    import yaml

    raw = yaml.safe_load(plant_file().read_text())
    raw["ingest"].update(ingest)
    return plant.parse(raw, base=plant_file().parent, env=None)


def test_the_receive_maximum_keeps_the_queue_within_its_budget():
    # 256 MiB / (4 × 64 KiB per message) = 1024 messages, by hand.
    assert receive_maximum(_example()) == 1024
    # 16 MiB / (4 × 64 MiB) is below one message: at least 16 keeps the ingest moving.
    assert receive_maximum(_example(queue_budget_mb=16, max_payload_bytes=64 * 2**20)) == 16
    # 65535 is MQTT's largest receive maximum: 4096 MiB / (4 × 1 KiB) = 1,048,576 is capped.
    assert receive_maximum(_example(queue_budget_mb=4096, max_payload_bytes=1024)) == 65535


def test_each_instance_has_its_own_session_spool_and_dead_letters():
    cfg = _example()
    one, two = for_instance(cfg, "a"), for_instance(cfg, "b")
    assert (one.mqtt.client_id, two.mqtt.client_id) == (
        "gf-ingest-demo-dip-1-a",
        "gf-ingest-demo-dip-1-b",
    )
    assert one.ingest.spool_dir == cfg.ingest.spool_dir / "a"
    assert one.ingest.deadletter_file.name == "deadletter-a.jsonl"
    assert two.ingest.deadletter_file.parent == cfg.ingest.deadletter_file.parent
