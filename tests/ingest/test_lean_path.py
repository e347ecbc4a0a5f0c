"""The one-reading hot path's shortcuts keep the guarantees they stand in for (no servers)."""

from __future__ import annotations

import asyncio
import time

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.ingest.service import Ingest
from greenfoundry.mqtt_gmqtt import GmqttNetwork, Withheld


def _config(tmp_path):
    import yaml

    raw = yaml.safe_load(plant_file().read_text())
    raw["mqtt"].pop("share_group", None)
    raw["ingest"].update(
        spool_dir=str(tmp_path / "spool"), deadletter_file=str(tmp_path / "dead.jsonl")
    )
    return plant.parse(raw, base=plant_file().parent, env=None)


def test_a_test_clock_judges_the_time_window_but_the_batch_age_is_wall_time(tmp_path):
    cfg = _config(tmp_path)
    # A clock a day behind the wall: the reading (stamped one minute before that clock) is
    # judged by it, and the message's arrival, which the batch age counts from, is wall time.
    day_ns = 86_400 * 10**9
    behind = time.time_ns() - day_ns
    svc = Ingest(cfg, clock=lambda: behind)
    try:
        topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
        ts_ms = (behind - 60 * 10**9) // 1_000_000
        before = time.time_ns()
        assert svc._receive(topic, b'{"ts_ms": %d, "value": 12.5}' % ts_ms, 7, 1, False)
        after = time.time_ns()
        (msg,) = svc._queue
        assert before <= msg.arrived_ns <= after
        (reading,) = msg.readings
        assert reading.ts_ns == ts_ms * 1_000_000 and reading.value == 12.5
        assert len(msg.rejects) == 0 and msg.size == 1
        # A reading a day and a minute "ahead" of that clock is refused by it, not by the wall.
        ahead_ms = (behind + day_ns + 60 * 10**9) // 1_000_000
        assert svc._receive(topic, b'{"ts_ms": %d, "value": 1.0}' % ahead_ms, 8, 1, False)
        (reject,) = svc._queue[1].rejects
        assert reject.reason == "timestamp_future"
        assert svc.counters.messages == 2 and svc.counters.received == 2
    finally:
        svc.spool.close()
        svc.dead.close()


def test_one_batch_of_acknowledgements_asks_once_per_open_connection_and_counts_each_withheld():
    asked: list[int] = []

    def may_ack(connection: int) -> bool:
        asked.append(connection)
        return connection == 3  # connection 2 is gone, 3 is the live one

    net = GmqttNetwork(
        host="127.0.0.1",
        port=1,
        client_id="gf-test-lean",
        username=None,
        password=None,
        tls=None,
        keepalive_s=5,
        connect_properties={},
        subscriptions=[],
        deliver=lambda *a: True,
        may_ack=may_ack,
        on_connected=lambda s: None,
        on_subscribed=lambda r: None,
        on_lost=lambda: None,
        on_refused=lambda code: False,
    )
    loop = asyncio.new_event_loop()
    try:

        async def waiting(key: int) -> None:
            fut = loop.create_future()
            net._waiting[key] = (fut, asyncio.current_task())
            await fut

        tasks = [loop.create_task(waiting(k)) for k in range(1, 6)]
        loop.run_until_complete(asyncio.sleep(0))  # each task registers its future
        # Two of the gone connection, then three of the live one, in arrival order.
        net._resolve([(2, 1, 1), (2, 2, 1), (3, 3, 1), (3, 4, 1), (3, 5, 1)])
        loop.run_until_complete(asyncio.wait(tasks))
    finally:
        loop.close()
    # Each withheld message asked (and so counted) on its own; the live connection once.
    assert asked == [2, 2, 3]
    assert [type(t.exception()) for t in tasks[:2]] == [Withheld, Withheld]
    assert [t.exception() for t in tasks[2:]] == [None, None, None]
    assert net._last_woken is tasks[4] and net._waiting == {}
