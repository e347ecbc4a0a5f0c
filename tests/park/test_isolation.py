"""A park of two plants on one broker and one InfluxDB, on the real Mosquitto 2.0.11 and
InfluxDB 1.6.7: each plant's ingest runs, both at once.

- Write isolation at the broker: each plant's device publishing into the other plant's topics
  is refused (PUBACK "not authorized") and nothing of it lands; each plant's readings are
  exactly its own (tests/security/test_broker_acl.py shows it for one ingest; here both
  plants' ingests run on the shared broker).
- Write isolation at the ingest: an ingest subscribed wider than its plant (`gf/v1/#`, the
  demo config's comment) receives the other plant's readings, refuses each as `unknown_plant`
  (ingest/payload.py: the topic's plant level must be the config's plant id, and the `plant`
  tag is the config's) and writes none of them; the other plant's own ingest writes each once.
- Read isolation on InfluxDB 1.x: `LocalStack.add_plant` gives each plant a database and a
  reader with READ on it only; plant A's reader reads A and is refused B (HTTP 403).

Expected counts are the numbers published.
"""

from __future__ import annotations

from contextlib import closing

import pytest

from greenfoundry.errors import StoreError
from greenfoundry.ingest.service import Ingest
from greenfoundry.stack import Account, plant_database
from greenfoundry.store import InfluxStore, RejectedWriteError, StoreSettings, quote_ident, where
from tests.plant import (
    ALL_TIME,
    Publisher,
    count,
    energy_stream,
    energy_values,
    plant_config,
    store,
    wait_for,
)

pytestmark = pytest.mark.servers

T0_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z, within the example's max_past_days
N = 150


def _ingest(tmp_path, stack, plant_id, **mqtt):
    folder = tmp_path / plant_id
    folder.mkdir()
    cfg = plant_config(folder, stack, plant_id, role="ingest")
    if mqtt:
        import dataclasses

        cfg = dataclasses.replace(cfg, mqtt=dataclasses.replace(cfg.mqtt, **mqtt))
    svc = Ingest(cfg)
    svc.start()
    assert svc.wait_connected(10)
    return cfg, svc


def _expected(stream):
    return [(ms * 1_000_000, v) for ms, v, _ in stream]


def test_each_plants_devices_publish_only_into_their_own_plant(tmp_path, stack):
    a_cfg, a_svc = _ingest(tmp_path, stack, "pk-iso-a")
    b_cfg, b_svc = _ingest(tmp_path, stack, "pk-iso-b")
    a_topic = a_cfg.topic_for(a_cfg.routes[("melt", "if1", "energy")])
    b_topic = b_cfg.topic_for(b_cfg.routes[("melt", "if1", "energy")])
    a_dev = Publisher(stack, "pk-iso-a-dev", plant="pk-iso-a")
    b_dev = Publisher(stack, "pk-iso-b-dev", plant="pk-iso-b")
    a_stream, b_stream = energy_stream(T0_MS, N), energy_stream(T0_MS, N, seq0=5000)
    forged = energy_stream(T0_MS + 500, N, seq0=10_000)  # other times and values
    st = store(stack)
    try:
        for i in range(N):
            a_dev.publish(a_topic, a_stream[i][2])
            b_dev.publish(b_topic, b_stream[i][2])
            a_dev.publish(b_topic, forged[i][2])  # A's credentials into B's topics
            b_dev.publish(a_topic, forged[i][2])  # and B's into A's
        a_dev.wait_all()
        b_dev.wait_all()
        # Each device: its own N acknowledged, its N into the other plant refused.
        assert (a_dev.refused, b_dev.refused) == (N, N)
        for pid in ("pk-iso-a", "pk-iso-b"):
            wait_for(lambda p=pid: count(st, "furnace_energy_kwh", p) >= N, 30, f"{N} of {pid}")
    finally:
        a_dev.close()
        b_dev.close()
        a_svc.stop()  # drained: nothing more can arrive
        b_svc.stop()
    assert energy_values(st, "pk-iso-a") == _expected(a_stream)
    assert energy_values(st, "pk-iso-b") == _expected(b_stream)
    assert (a_svc.counters.received, b_svc.counters.received) == (N, N)


def test_an_ingest_never_writes_a_reading_of_another_plant(tmp_path, stack):
    # A's ingest listens to every plant's topics; B's to its own (the default).
    _, a_svc = _ingest(tmp_path, stack, "pk-iso-c", subscribe=(f"{stack.topic_root}/#",))
    b_cfg, b_svc = _ingest(tmp_path, stack, "pk-iso-d")
    b_topic = b_cfg.topic_for(b_cfg.routes[("melt", "if1", "energy")])
    b_dev = Publisher(stack, "pk-iso-d-dev", plant="pk-iso-d")
    b_stream = energy_stream(T0_MS, N)
    st = store(stack)
    try:
        for _, _, payload in b_stream:
            b_dev.publish(b_topic, payload)
        b_dev.wait_all()
        assert b_dev.refused == 0
        wait_for(lambda: count(st, "furnace_energy_kwh", "pk-iso-d") >= N, 30, f"{N} of B")
        wait_for(
            lambda: a_svc.counters.rejected_by_reason["unknown_plant"] >= N,
            30,
            lambda: (
                f"A's {N} refusals, {a_svc.counters.rejected_by_reason['unknown_plant']} so far"
            ),
        )
    finally:
        b_dev.close()
        a_svc.stop()
        b_svc.stop()
    # A saw every one of B's readings and refused each as another plant's: none written as A.
    assert a_svc.counters.rejected_by_reason["unknown_plant"] == N
    assert a_svc.counters.written == 0 and a_svc.counters.spooled == 0
    assert count(st, "furnace_energy_kwh", "pk-iso-c") == 0
    # B's own ingest wrote each once, under B.
    assert energy_values(st, "pk-iso-d") == _expected(b_stream)
    assert b_svc.counters.written == N


def _as(stack, account: Account, database: str) -> InfluxStore:
    return InfluxStore(
        StoreSettings(
            url=stack.influx_url,
            database=database,
            username=account.username,
            password=account.password,
        )
    )


def _grants(admin: InfluxStore, username: str) -> set[tuple[str, str]]:
    results = admin.query_raw(f"SHOW GRANTS FOR {quote_ident(username)}", database="")
    return {tuple(v) for r in results for s in r.get("series", []) for v in s["values"]}


def test_a_plants_reader_reads_only_its_plants_database(own_stack):
    stack = own_stack.info
    reader_a = own_stack.add_plant("pk-iso-e")
    reader_b = own_stack.add_plant("pk-iso-f")
    db_a, db_b = plant_database("pk-iso-e"), plant_database("pk-iso-f")
    ts = T0_MS * 1_000_000
    # Each plant's data written by the stack's ingest user, which add_plant let write there.
    ingest = stack.influx_account("ingest")
    for db, pid, value in ((db_a, "pk-iso-e", 1.5), (db_b, "pk-iso-f", 2.5)):
        with closing(_as(stack, ingest, db)) as w:
            w.write_lines([f"park_probe,plant={pid} value={value} {ts}"])
    q = f"SELECT value FROM park_probe {where({}, **ALL_TIME)}"
    with (
        closing(_as(stack, reader_a, db_a)) as a_on_a,
        closing(_as(stack, reader_a, db_b)) as a_on_b,
    ):
        assert a_on_a.query(q)["value"].tolist() == [1.5]
        # The 403 and its wording are InfluxDB 1.6.7's own.
        with pytest.raises(StoreError, match=r"HTTP 403.*not authorized.*requires READ"):
            a_on_b.query(q)
        with pytest.raises(RejectedWriteError) as refused:  # a reader writes nowhere
            a_on_a.write_lines([f"park_probe,plant=pk-iso-e value=9 {ts + 1}"])
        assert refused.value.status == 403
    with closing(_as(stack, reader_b, db_b)) as b_on_b:
        assert b_on_b.query(q)["value"].tolist() == [2.5]
    # Neither plant's reader reads the shared database.
    with (
        closing(_as(stack, reader_a, stack.influx_database)) as a_on_shared,
        pytest.raises(StoreError, match="HTTP 403"),
    ):
        a_on_shared.query(q)
    with closing(store(stack)) as admin:
        assert _grants(admin, reader_a.username) == {(db_a, "READ")}
        assert _grants(admin, reader_b.username) == {(db_b, "READ")}
        # The stack's own reader is not given the plants' databases.
        assert _grants(admin, stack.influx_account("reader").username) == {
            (stack.influx_database, "READ")
        }
        # Idempotent: the same account again, still only its one grant.
        assert own_stack.add_plant("pk-iso-e") == reader_a
        assert _grants(admin, reader_a.username) == {(db_a, "READ")}
