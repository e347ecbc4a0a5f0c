"""Pure parts of the ingest service (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.errors import UsageError
from greenfoundry.ingest import deadletter
from greenfoundry.ingest.payload import Reject
from greenfoundry.ingest.service import (
    Ingest,
    client_ids,
    for_instance,
    maximum_packet_size,
    receive_maximum,
)
from tests.ingest.helpers import with_instances, with_share_group

REPO = Path(__file__).resolve().parents[2]


def _example(**ingest):
    import yaml

    raw = yaml.safe_load(plant_file().read_text())
    raw["ingest"].update(ingest)
    return plant.parse(raw, base=plant_file().parent, env=None)


def test_the_receive_maximum_keeps_the_queue_within_its_budget():
    # 256 MiB / (4 × 128 KiB per message) = 512 messages, by hand.
    assert receive_maximum(_example()) == 512
    # 16 MiB / (4 × 64 MiB) is below one message: at least 16 keeps the ingest moving.
    assert receive_maximum(_example(queue_budget_mb=16, max_payload_bytes=64 * 2**20)) == 16
    # 65535 is MQTT's largest receive maximum: 4096 MiB / (4 × 1 KiB) = 1,048,576 is capped.
    assert receive_maximum(_example(queue_budget_mb=4096, max_payload_bytes=1024)) == 65535


def test_each_instance_has_its_own_topics_session_spool_and_dead_letters():
    cfg = with_instances(
        _example(), {"a": ["gf/v1/demo-dip/melt/#"], "b": ["gf/v1/demo-dip/env/#"]}
    )
    one, two = for_instance(cfg, "a"), for_instance(cfg, "b")
    assert (one.mqtt.client_id, two.mqtt.client_id) == (
        "gf-ingest-demo-dip-1-a",
        "gf-ingest-demo-dip-1-b",
    )
    assert (one.mqtt.subscribe, two.mqtt.subscribe) == (
        ("gf/v1/demo-dip/melt/#",),
        ("gf/v1/demo-dip/env/#",),
    )
    assert one.ingest.spool_dir == cfg.ingest.spool_dir / "a"
    assert one.ingest.deadletter_file.name == "deadletter-a.jsonl"
    assert two.ingest.deadletter_file.parent == cfg.ingest.deadletter_file.parent
    assert client_ids(cfg) == ["gf-ingest-demo-dip-1-a", "gf-ingest-demo-dip-1-b"]


def test_an_undeclared_instance_is_refused_at_start():
    cfg = with_instances(_example(), {"a": ["gf/v1/demo-dip/#"]})
    with pytest.raises(UsageError, match=r"--instance 'c' is not declared .*declared: a"):
        for_instance(cfg, "c")
    # With instances declared, a process must say which one it is.
    with pytest.raises(UsageError, match=r"mqtt.instances declares the ingest instances a"):
        for_instance(cfg, None)
    with pytest.raises(UsageError, match="give --instance NAME"):
        Ingest(cfg)
    # Without any declared, one process takes the plant: a name would be a new, orphan session.
    with pytest.raises(UsageError, match=r"--instance 'a' is not declared: .* has no"):
        for_instance(_example(), "a")
    shared = with_share_group(_example(), "ingest", ["n0", "n1"])
    assert for_instance(shared, "n1").mqtt.client_id == "gf-ingest-demo-dip-1-n1"
    with pytest.raises(UsageError, match=r"not declared in .*mqtt.share_members; declared: n0, n1"):
        for_instance(shared, "n2")


def test_the_announced_packet_size_follows_the_payload_limit():
    # max_payload_bytes plus the 16 KiB header allowance of the service, by hand.
    assert maximum_packet_size(_example(max_payload_bytes=65536)) == 65536 + 16384


@pytest.mark.parametrize("name", ["a\\b", "tab\there", "two\nlines"])
def test_an_instance_name_that_cannot_be_a_tag_is_refused_before_the_spool_is_taken(tmp_path, name):
    # The instance is the `instance` tag of the self-metrics: line protocol cannot carry these.
    cfg = _example(spool_dir=str(tmp_path / "spool"), deadletter_file=str(tmp_path / "d.jsonl"))
    with pytest.raises(UsageError, match="--instance"):
        Ingest(cfg, instance=name)
    assert not (tmp_path / "spool").exists()


def test_a_dead_letter_is_one_point_with_its_newlines_made_visible():
    # Expected line by hand: tags plant and reason sorted; string fields with `"` and `\`
    # escaped; a newline stored as the two characters `\n` (line protocol has none in a value),
    # whose backslash the string escape doubles; integer fields with `i` (17 bytes of payload).
    reject = Reject("bad_value", 'value is "x"', "gf/v1/p/a/d/s", b'{"value":\n "x\\\\"}', 2)
    assert deadletter.line(reject, "demo-dip", 7) == (
        "gf_deadletter,plant=demo-dip,reason=bad_value "
        'topic="gf/v1/p/a/d/s",detail="value is \\"x\\"",'
        'payload="{\\"value\\":\\\\n \\"x\\\\\\\\\\"}",payload_bytes=17i,index=2i 7'
    )
