"""Publish the simulated plant over MQTT: paced live, faster than real time, or as a backfill.

`run(cfg, …)` drives a `PlantModel` and a `Publisher` and returns `RunStats`; `SimulatorThread`
runs it in the background until `stop()`. The `Publisher` is one MQTT v5 connection (paho-mqtt
2.x) that publishes at QoS 1 with a bounded window of messages awaiting their PUBACK, and
`wait_for_acks()` returns only when the broker has acknowledged every one of them.

Time. A run has an optional backfill followed by an optional live part. With speed N the live
part replays `duration` seconds of plant time ending when the run ends, so the plant clock
catches up with the wall clock at the end and no timestamp is ever ahead of it:

    live = [T0 + D/N - D, T0 + D/N)      backfill = [live.start - days, live.start)

with T0 the wall-clock time the run starts. N = 1 is real time ([T0, T0 + D), forever when D is
None); `as_fast_as_possible` is N = ∞ ([T0 - D, T0) without pacing). A reading due at a wall time
already past (after a slow backfill, say) is sent at once, so the run still ends on time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt

from greenfoundry.errors import BrokerError, UsageError
from greenfoundry.mqtt import connect_properties, make_client
from greenfoundry.plant import PlantConfig
from greenfoundry.sim.faults import Faults
from greenfoundry.sim.plant import Event, PlantModel, iter_batches
from greenfoundry.stack import simulator_client_id

log = logging.getLogger(__name__)


class PublishError(BrokerError):
    """The broker could not be reached, refused us, or did not acknowledge in time."""


@dataclass
class RunStats:
    """What a run published. `acked` counts PUBACKs; `refused` those with a failure reason."""

    messages: int = 0
    readings: int = 0
    bad_payloads: int = 0
    acked: int = 0
    refused: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    faults: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    peak_inflight: int = 0  # most messages that awaited their PUBACK at once

    def summary(self) -> str:
        span = ""
        if self.first_ts and self.last_ts:
            span = f", plant time {self.first_ts:%Y-%m-%d %H:%M:%S} … {self.last_ts:%Y-%m-%d %H:%M:%S} UTC"
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        return (
            f"published {self.messages} messages ({self.readings} readings, "
            f"{self.bad_payloads} bad payloads), {self.acked} acknowledged, {self.refused} refused"
            f"{span}, in {self.wall_s:.1f} s" + (f"; faults: {faults}" if faults else "")
        )


class Publisher:
    """One MQTT v5 connection publishing at QoS 1 with at most `max_inflight` unacknowledged."""

    def __init__(
        self,
        cfg: PlantConfig,
        *,
        client_id: str | None = None,
        max_inflight: int = 100,
        connect_timeout_s: float = 10.0,
    ):
        self.cfg = cfg
        # One fixed id per plant, the one its device account is bound to (a bound account
        # connects with that id only). Two simulators of one plant at once take the connection
        # from each other: give the second its own `client_id` and a device account bound to it.
        self.client_id = client_id or simulator_client_id(cfg.plant.id)
        self.max_inflight = max_inflight
        self.connect_timeout_s = connect_timeout_s
        self.published = 0
        self.acked = 0
        self.refused = 0
        self.peak_inflight = 0
        self._lock = threading.Condition()
        self._outstanding = 0
        self._connected = threading.Event()
        self._connect_rc: mqtt.ReasonCode | None = None
        password = cfg.mqtt.password.value if cfg.mqtt.password else None
        client = make_client(self.client_id, cfg.mqtt.username, password)
        # paho's own window equals ours, so nothing waits in paho's queue unsent.
        client.max_inflight_messages_set(max_inflight)
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client

    # paho callbacks run on its network thread.
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connect_rc = reason_code
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
        else:
            self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if reason_code.is_failure:
            log.warning("disconnected from the broker (%s); paho reconnects", reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            self._outstanding -= 1
            if reason_code.is_failure:
                self.refused += 1
            else:
                self.acked += 1
            self._lock.notify_all()

    def connect(self) -> Publisher:
        m = self.cfg.mqtt
        props = connect_properties(session_expiry_s=0)  # nothing to keep: we only publish
        try:
            self.client.connect(m.host, m.port, m.keepalive_s, clean_start=True, properties=props)
        except OSError as exc:
            raise PublishError(
                f"cannot reach the MQTT broker at {m.host}:{m.port}: {exc.strerror or exc}"
            ) from None
        self.client.loop_start()
        deadline = time.monotonic() + self.connect_timeout_s
        while not self._connected.wait(0.05):
            rc = self._connect_rc
            if (rc is not None and rc.is_failure) or time.monotonic() > deadline:
                self.client.loop_stop()
                self.client.disconnect()
                why = f"refused: {rc}" if rc is not None else "no answer"
                raise PublishError(f"MQTT broker {m.host}:{m.port} as user {m.username!r}: {why}")
        log.info("connected to mqtt://%s:%s as %s", m.host, m.port, self.client_id)
        return self

    def publish(self, topic: str, payload: bytes, stop: threading.Event | None = None) -> None:
        """Publish at QoS 1; blocks while `max_inflight` messages await their PUBACK (and
        raises PublishError if `stop` is set meanwhile: the broker may be gone for good)."""
        with self._lock:
            while self._outstanding >= self.max_inflight:
                if stop is not None and stop.is_set():
                    raise PublishError(
                        f"stopped while {self._outstanding} messages await their PUBACK"
                    )
                self._lock.wait(0.5)
            self._outstanding += 1
            self.peak_inflight = max(self.peak_inflight, self._outstanding)
        # While disconnected paho keeps the message and sends it on reconnection.
        info = self.client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            with self._lock:
                self._outstanding -= 1
            raise PublishError(f"cannot publish to {topic}: {mqtt.error_string(info.rc)}")
        self.published += 1

    def wait_for_acks(self, timeout_s: float = 60.0) -> None:
        """Return once every published message is acknowledged; PublishError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._outstanding > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PublishError(
                        f"{self._outstanding} of {self.published} messages still unacknowledged "
                        f"after {timeout_s:g} s"
                    )
                self._lock.wait(min(left, 1.0))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class Plan:
    """The plant-time ranges of a run and how its live part maps to the wall clock."""

    backfill: tuple[datetime, datetime] | None
    live: tuple[datetime, datetime | None] | None
    speed: float  # math.inf: as fast as possible

    def wall_time_of(self, ts_ms: int) -> float:
        """Wall-clock time (epoch s) a live reading stamped ts_ms is due."""
        if self.speed == 1.0:
            return ts_ms / 1000.0
        end = self.live[1].timestamp()
        return end - (end - ts_ms / 1000.0) / self.speed


def plan_run(
    now_s: float,
    *,
    duration_s: float | None,
    speed: float = 1.0,
    as_fast_as_possible: bool = False,
    backfill_days: float = 0.0,
) -> Plan:
    """The ranges of a run started at wall time now_s (see the module docstring). UsageError for
    a speed, duration or backfill that does not fit."""
    if as_fast_as_possible:
        speed = math.inf
    if not speed >= 1.0:
        raise UsageError(f"speed {speed!r} is not allowed; expected 1 or more")
    if duration_s is not None and not duration_s > 0:
        raise UsageError(f"duration {duration_s!r} s is not allowed; expected more than 0")
    if backfill_days < 0:
        raise UsageError(f"backfill {backfill_days!r} days is not allowed; expected 0 or more")
    if duration_s is None and speed != 1.0:
        raise UsageError(
            "a run faster than real time needs a duration: it replays that much plant time "
            "ending now"
        )
    now = _at(now_s)
    live = None
    live_start = now
    run_live = duration_s is not None or not backfill_days
    if run_live:
        if duration_s is None:
            live = (now, None)
        else:
            d = timedelta(seconds=duration_s)
            end = now + (d / speed if speed != math.inf else timedelta(0))
            live_start = end - d
            live = (live_start, end)
    backfill = None
    if backfill_days:
        backfill = (live_start - timedelta(days=backfill_days), live_start)
    return Plan(backfill, live, speed if run_live else math.inf)


def run(
    cfg: PlantConfig,
    *,
    seed: int = 1,
    interval_s: int = 60,
    faults: Faults | None = None,
    duration_s: float | None = None,
    speed: float = 1.0,
    as_fast_as_possible: bool = False,
    backfill_days: float = 0.0,
    stop: threading.Event | None = None,
    client_id: str | None = None,
    max_inflight: int = 100,
    ack_timeout_s: float = 120.0,
    clock: Callable[[], float] = time.time,
    on_message: Callable[[str, bytes], None] | None = None,
) -> RunStats:
    """Simulate the plant of `cfg` and publish it; return once every message is acknowledged.

    `stop` ends the run early (the messages already sent are still awaited). `on_message` is
    called with each (topic, payload) as it is published (tests, progress displays).
    """
    stop = stop or threading.Event()
    plan = plan_run(
        clock(),
        duration_s=duration_s,
        speed=speed,
        as_fast_as_possible=as_fast_as_possible,
        backfill_days=backfill_days,
    )
    if plan.backfill and backfill_days > cfg.ingest.max_past_days:
        raise UsageError(
            f"backfill of {backfill_days:g} days: the ingest rejects readings older than "
            f"ingest.max_past_days = {cfg.ingest.max_past_days:g}"
        )
    model = PlantModel(cfg, seed, interval_s=interval_s, faults=faults)
    for topic, why in model.unsimulated:
        log.warning("not simulated: %s (%s)", topic, why)
    stats = RunStats()
    started = time.monotonic()
    publisher = Publisher(cfg, client_id=client_id, max_inflight=max_inflight).connect()
    try:

        def send(topic: str, payload: bytes, events: list[Event]) -> None:
            publisher.publish(topic, payload, stop)
            stats.messages += 1
            for ev in events:
                if ev.raw is not None:
                    stats.bad_payloads += 1
                else:
                    stats.readings += 1
            first, last = events[0].timestamp, events[-1].timestamp
            stats.first_ts = min(stats.first_ts or first, first)
            stats.last_ts = max(stats.last_ts or last, last)
            if on_message:
                on_message(topic, payload)

        if plan.backfill:
            log.info("backfill %s … %s", *plan.backfill)
            for topic, payload, events in iter_batches(cfg, model.events(*plan.backfill)):
                if stop.is_set():
                    break
                send(topic, payload, events)
        if plan.live and not stop.is_set():
            log.info("live from %s (speed %s)", plan.live[0], plan.speed)
            for ev in model.events(*plan.live):
                if plan.speed != math.inf:
                    delay = plan.wall_time_of(ev.send_ms) - clock()
                    if delay > 0 and stop.wait(delay):
                        break
                if stop.is_set():
                    break
                send(ev.topic, ev.encode(), [ev])
        publisher.wait_for_acks(ack_timeout_s)
    finally:
        publisher.close()
        stats.acked, stats.refused = publisher.acked, publisher.refused
        stats.peak_inflight = publisher.peak_inflight
        stats.faults = {k: v for k, v in model.stats.items() if k != "readings"}
        stats.wall_s = time.monotonic() - started
    return stats


class SimulatorThread(threading.Thread):
    """`run()` in a background thread: `start()`, then `stop()` (or let `duration_s` end it),
    `join()`; `stats` holds the result and `error` the exception, if any."""

    def __init__(self, cfg: PlantConfig, **kwargs):
        super().__init__(name="gf-sim", daemon=True)
        self.cfg = cfg
        self.kwargs = kwargs
        self._stop_event = kwargs.pop("stop", None) or threading.Event()
        self.stats: RunStats | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.stats = run(self.cfg, stop=self._stop_event, **self.kwargs)
        except BaseException as exc:  # handed to the caller through .error
            self.error = exc
            log.error("simulator stopped: %s", exc)

    def stop(self, timeout_s: float | None = None) -> RunStats | None:
        """Ask the run to end, wait for it (and its PUBACKs), return its stats."""
        self._stop_event.set()
        self.join(timeout_s)
        return self.stats


def _at(t_s: float) -> datetime:
    return datetime.fromtimestamp(round(t_s, 3), tz=timezone.utc)
