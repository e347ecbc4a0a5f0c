"""The ingest's network path on gmqtt (`mqtt.client: gmqtt`), behind the same seam as
`greenfoundry.mqtt.NetworkThread`: `start`, `ack_batch`, `halt`, `stop`, `acks_withheld`.

Why a second client: paho's receive path could not reach 20,000 one-reading QoS 1 messages/s in one
process here (a plain paho consumer measured 19.3k/s), and gmqtt, an asyncio MQTT v5 client, can
send a PUBACK only when our processing is done (`optimistic_acknowledgement=False`).

How a message is acknowledged only once durable, in order, on the connection that carried it:

- gmqtt runs `on_message` (a coroutine) as one task per QoS 1 message, and sends the PUBACK when
  the task returns; if the task raises, no PUBACK goes out (gmqtt's done-callback takes the
  task's result, which raises) and the broker delivers the message again. Returning a failure
  reason code would complete the QoS 1 flow, so a withheld message raises `Withheld`.
- Each task hands its message to the ingest (which queues it for the writer thread) and awaits a
  future of its own. The writer hands a durable batch back with `ack_batch` (one thread-safe
  wake-up for the batch); this thread then resolves the batch's futures in arrival order. Each
  task started in arrival order and awaits once, so the tasks end, and their PUBACKs go out, in
  that same order (MQTT v5 4.6).
- Every connection is a new gmqtt `Client`. gmqtt writes a PUBACK on its client's current
  connection; with one client per connection a PUBACK of an old connection can only reach that
  old (closed) connection, never a new one, where the same packet identifier may name another
  message. On top of that the ingest's `may_ack(connection)` (the connection generation) is asked
  for every message before its future is resolved: a message of a connection that is gone is
  withheld (counted in `acks_withheld`) even when the session was resumed, so that its
  redelivered copy is the one acknowledged, once.
- Reconnecting is ours, not gmqtt's: the subclass below overrides `Client.reconnect`, the public
  coroutine gmqtt calls for each automatic reconnect, with one that does not reconnect; this
  thread then makes a new client after a backoff that grows until a connection has held
  `STABLE_S`. That is the only gmqtt method we override; nothing private of gmqtt is touched.
  A `reconnect()` asked before any CONNACK and before the connection was lost is gmqtt's answer
  to an MQTT 3.1.1 broker (return code 1: it downgrades and waits for a CONNACK that never
  completes `connect()`); we report it as refusal 0x84, as paho does.

Not covered on this path: the warning about a broker whose own Maximum Packet Size is below
`ingest.max_payload_bytes`. gmqtt hands `on_connect` the CONNACK's properties merged with ours
(ours win), so the broker's value cannot be read through its public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time

import gmqtt

from greenfoundry import mqtt

log = logging.getLogger(__name__)
_current_task = asyncio.current_task
# gmqtt logs every connection, subscription and close at INFO; the ingest logs its own lines for
# those. Its warnings (a lost heartbeat, a malformed packet) still show.
logging.getLogger("gmqtt").setLevel(logging.WARNING)

# The settle round trip before DISCONNECT, as on the paho path (see NetworkThread._settle).
SETTLE_TIMEOUT_S = 2.0
# At stop, the longest wait for the acknowledging tasks to end (their PUBACKs written).
DRAIN_TIMEOUT_S = 2.0
# The refusal reported for a broker that answers our MQTT v5 CONNECT with the MQTT 3.1.1 return
# code 1 ("unacceptable protocol version"): MQTT v5's own code for it, as paho reports it.
UNSUPPORTED_PROTOCOL_VERSION = 0x84

# gmqtt's protocol logger writes a five-line traceback ("[EXC: CONN LOST]") at every connection
# that ends with an error: every ordinary loss, and every TLS connection the broker closes before
# its CONNACK (a client certificate it does not accept). The ingest logs one line of its own for
# each of those, so only this logger's errors show.
logging.getLogger("gmqtt.mqtt.protocol").setLevel(logging.ERROR)


def _not_a_connack_line(record: logging.LogRecord) -> bool:
    """gmqtt's handler logs a refused CONNACK (and that it will not reconnect after it) on top
    of the ingest's own line for the refusal; its other warnings (a malformed packet) stay."""
    msg = str(record.msg)
    return not (msg.startswith("[MqttPackageHandler] CONNACK") or "CONNACK refusal" in msg)


logging.getLogger("gmqtt.mqtt.handler").addFilter(_not_a_connack_line)


class Withheld(Exception):
    """Raised by a message's task so that gmqtt sends no PUBACK for it: its connection is gone,
    or the ingest is stopping. The broker delivers the message again."""


class _Client(gmqtt.Client):
    """A gmqtt client that never reconnects by itself: this module makes a new client per
    connection, with its own backoff. gmqtt calls `reconnect()` (public) after a lost connection
    and after a refused CONNACK; here it does not reconnect, it only tells `gf_on_reconnect`."""

    gf_on_reconnect = None  # set by GmqttNetwork._new_client

    async def reconnect(self, delay=False):
        # A coroutine: gmqtt schedules it, so this runs after the callback that asked for it
        # (after `on_disconnect` for a lost connection).
        if self.gf_on_reconnect is not None:
            self.gf_on_reconnect()
        return None


def reconnect_means_refusal(*, connack: bool, lost: bool, connected: bool) -> bool:
    """gmqtt asked to reconnect although the connection had no CONNACK (`connack`: a good one
    came; `connected`: gmqtt's `is_connected`, true after a refused one too) and is not lost:
    that is gmqtt's answer to return code 1 of an MQTT 3.1.1 broker, which it handles by
    downgrading and reconnecting, never completing `connect()`. For us it is a refusal."""
    return not connack and not lost and not connected


class GmqttNetwork:
    """gmqtt's asyncio loop, run by a thread of ours.

    `deliver(topic, payload, mid, qos, retain)` is called in this thread for every message and
    returns True when the message was queued for the writer (it will come back through
    `ack_batch`); `mid` is a key of ours (gmqtt does not hand the packet identifier over).
    The connection callbacks are called in this thread too: `on_connected(session_present)`,
    `on_subscribed(results)` with (topic filter, refused, reason text) per filter,
    `on_lost()` once per connection that had a CONNACK, and `on_refused(code)` for a refused
    CONNACK, which returns True when the ingest gives up. `on_closed_early(reason)` is called
    for a TLS connection that ended before its CONNACK and returns True when the ingest gives
    up. `on_connect_error(exc)` and `on_died(exc)` are as for NetworkThread."""

    STABLE_S = 10.0

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: str,
        username: str | None,
        password: str | None,
        tls,
        keepalive_s: int,
        connect_properties: dict,
        subscriptions: list[tuple[str, int, int]],
        deliver,
        may_ack,
        on_connected,
        on_subscribed,
        on_lost,
        on_refused,
        on_connect_error=lambda exc: False,
        on_closed_early=lambda reason: False,
        on_died=lambda exc: None,
        min_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
    ):
        self.host, self.port = host, port
        self.client_id = client_id
        self.username, self.password = username, password
        self.ssl = mqtt.tls_context(tls) if tls is not None else False
        self.keepalive_s = keepalive_s
        self.connect_properties = dict(connect_properties)
        # (topic filter, QoS, retain handling) in the order the SUBACK answers them.
        self.subscriptions = subscriptions
        self._deliver = deliver
        self.may_ack = may_ack
        self.on_connected = on_connected
        self.on_subscribed = on_subscribed
        self.on_lost = on_lost
        self.on_refused = on_refused
        self.on_connect_error = on_connect_error
        self.on_closed_early = on_closed_early
        self.on_died = on_died
        self.min_delay_s, self.max_delay_s = min_delay_s, max_delay_s
        self.acks_withheld = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # made at start
        self._lock = threading.Lock()  # the loop's life, against call_soon_threadsafe after close
        self._loop_open = False
        self._stop_requested = False
        self._halted = False
        self._stop_event: asyncio.Event | None = None
        self._client: _Client | None = None
        # key → the future a message's task awaits, and that task; in arrival order.
        self._waiting: dict[int, tuple[asyncio.Future, asyncio.Task]] = {}
        # The task whose future was settled last: tasks wake in the order their futures are
        # settled, so once it has ended, every PUBACK settled before it has been written.
        self._last_woken: asyncio.Task | None = None
        self._next_key = 0
        self._settle_mid: int | None = None
        self._settled: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # ---- the seam ---------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._create_future = self._loop.create_future
        self._loop_open = True
        self._thread = threading.Thread(target=self._run, name="gf-mqtt", daemon=True)
        self._thread.start()

    def ack_batch(self, items) -> None:
        """(connection, key, qos) of messages, in arrival order: one wake-up for them all."""
        items = list(items)
        with self._lock:
            if self._loop_open:
                self._loop.call_soon_threadsafe(self._resolve, items)
                return
        self.acks_withheld += len(items)  # the network thread has ended: never sent

    def halt(self) -> None:
        """No more connect attempts."""
        self._halted = True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Idempotent: send the acknowledgements handed over, settle, DISCONNECT, end."""
        self._stop_requested = True
        with self._lock:
            if self._loop_open and self._stop_event is not None:
                self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None:
            self._thread.join(timeout_s)

    # ---- this thread ------------------------------------------------------------------------

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._loop_exception)
        try:
            loop.run_until_complete(self._main())
        except Exception as exc:
            log.exception("the MQTT network thread failed")
            self.on_died(exc)
        finally:
            with self._lock:
                self._loop_open = False
            with contextlib.suppress(Exception):
                for task in asyncio.all_tasks(loop):
                    task.cancel()
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def _loop_exception(self, loop, context) -> None:
        """A `Withheld` raised out of gmqtt's PUBACK callback is the design, not an error."""
        exc = context.get("exception")
        if isinstance(exc, Withheld | asyncio.CancelledError):
            return
        loop.default_exception_handler(context)

    def _resolve(self, items) -> None:
        waiting = self._waiting
        # The connection state changes only in this thread, so within this call a connection
        # that may be acknowledged stays so: asked once per batch, not once per message. A
        # refusal is asked again for every message, because `may_ack` counts each one withheld.
        open_connection = None
        last = None
        for connection, key, _qos in items:
            ok = connection == open_connection or self.may_ack(connection)
            if ok:
                open_connection = connection
            entry = waiting.pop(key, None)
            if entry is None:
                continue
            fut, task = entry
            if not fut.done():
                if ok:
                    fut.set_result(None)
                else:
                    fut.set_exception(Withheld())
                last = task
        if last is not None:
            self._last_woken = last

    def deliver(self, topic, payload, mid, qos, retain) -> bool:
        """The ingest's `deliver`, guarded. It is designed not to raise; if it ever did, the
        message's task would fail with no PUBACK and keep its receive-maximum slot and its
        `_waiting` entry for as long as the connection lives, and after `receive_maximum` such
        messages the ingest would stall. So the error is logged once per connection (the topic
        and the exception's type, never the payload), the message is withheld and the
        connection closed: the network loop reconnects and the broker delivers it again."""
        try:
            return self._deliver(topic, payload, mid, qos, retain)
        except Withheld:
            raise
        except Exception as exc:
            self._waiting.pop(mid, None)
            client = self._client
            if client is not None and not getattr(client, "gf_dropping", False):
                client.gf_dropping = True
                log.error(
                    "the ingest failed to take a message on %s (%s); closing the MQTT connection "
                    "so that the broker delivers it again",
                    topic,
                    type(exc).__name__,
                )
                client.gf_drop_task = asyncio.ensure_future(self._drop(client))
            raise Withheld from None

    async def _drop(self, client: _Client) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), SETTLE_TIMEOUT_S)
        client.gf_lost.set()  # the loop reconnects even if no DISCONNECT could be written

    async def _on_message(self, client, topic, payload, qos, properties):
        if client is not self._client:  # a client already left (cannot normally happen)
            raise Withheld
        if isinstance(topic, bytes):  # gmqtt hands a topic that is not UTF-8 over as bytes
            topic = topic.decode("utf-8", errors="replace")
        retain = bool(properties.get("retain"))
        if not qos:
            self.deliver(topic, payload, 0, 0, retain)
            return 0
        self._next_key = key = self._next_key + 1
        fut = self._create_future()
        self._waiting[key] = (fut, _current_task())
        if not self.deliver(topic, payload, key, qos, retain):
            del self._waiting[key]
            raise Withheld
        await fut
        return 0

    def _new_client(self, lost: asyncio.Event) -> _Client:
        client = _Client(
            self.client_id,
            clean_session=False,
            optimistic_acknowledgement=False,
            **self.connect_properties,
        )
        if self.username is not None:
            client.set_auth_credentials(self.username, self.password)
        state = {"connected": False, "lost": False}
        client.gf_lost = lost
        client.gf_refused = self._loop.create_future()

        def on_reconnect():
            if client.gf_refused.done() or not reconnect_means_refusal(
                connack=state["connected"], lost=lost.is_set(), connected=client.is_connected
            ):
                return
            client.gf_refused.set_result(UNSUPPORTED_PROTOCOL_VERSION)

        client.gf_on_reconnect = on_reconnect

        def on_connect(c, flags, rc, properties):
            state["connected"] = True
            self.on_connected(bool(flags))
            c.subscribe(
                [
                    gmqtt.Subscription(f, qos=q, retain_handling_options=rh)
                    for f, q, rh in self.subscriptions
                ]
            )

        def on_subscribe(c, mid, granted, properties):
            results = []
            for (topic, _q, _rh), code in zip(self.subscriptions, granted, strict=False):
                refused = code >= 0x80
                results.append((topic, refused, f"reason code {code:#x}"))
            self.on_subscribed(results)

        def on_unsubscribe(c, mid, granted):
            if mid == self._settle_mid and self._settled is not None:
                self._settled.set()

        def on_disconnect(c, packet, exc=None):
            lost.set()
            if state["connected"] and not state["lost"]:
                state["lost"] = True
                self.on_lost()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_unsubscribe = on_unsubscribe
        client.on_disconnect = on_disconnect
        client.on_message = self._on_message
        return client

    async def _close(self, client: _Client, lost: asyncio.Event) -> None:
        """DISCONNECT and close, unless the connection is gone already (then there is nothing
        to close, and a DISCONNECT would only be written to a closed transport)."""
        if lost.is_set():
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), SETTLE_TIMEOUT_S)

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        if self._stop_requested:
            return
        stop_wait = asyncio.ensure_future(self._stop_event.wait())
        delay = self.min_delay_s
        first = True
        try:
            while not self._stop_event.is_set() and not self._halted:
                if not first:  # every attempt after the first waits, longer each time
                    log.debug("MQTT not connected; next try in %.0f s", delay)
                    await asyncio.wait({stop_wait}, timeout=delay)
                    if self._stop_event.is_set():
                        break
                    delay = min(delay * 2, self.max_delay_s)
                first = False
                lost = asyncio.Event()
                client = self._new_client(lost)
                self._client = client
                outcome = await self._connect(client, lost, stop_wait)
                if outcome == "give up":
                    await self._close(client, lost)
                    return
                if outcome != "connected":
                    await self._close(client, lost)
                    continue
                connected_since = time.monotonic()
                lost_wait = asyncio.ensure_future(lost.wait())
                await asyncio.wait({lost_wait, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                lost_wait.cancel()
                if self._stop_event.is_set() and not lost.is_set():
                    await self._stop_connected(client, lost)
                    return
                if time.monotonic() - connected_since >= self.STABLE_S:
                    delay = self.min_delay_s
                await self._close(client, lost)
        finally:
            stop_wait.cancel()
            self._withhold_all()

    async def _connect(self, client: _Client, lost: asyncio.Event, stop_wait) -> str:
        """One connect attempt: "connected", "retry" or "give up"."""
        attempt = asyncio.ensure_future(
            client.connect(
                self.host,
                self.port,
                ssl=self.ssl,
                keepalive=self.keepalive_s,
                version=gmqtt.constants.MQTTv50,
                raise_exc=True,
            )
        )
        lost_wait = asyncio.ensure_future(lost.wait())
        refused = client.gf_refused
        # A broker that accepts TCP and never answers CONNACK: the keep-alive bounds the wait.
        done, _ = await asyncio.wait(
            {attempt, lost_wait, stop_wait, refused},
            timeout=self.keepalive_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        lost_wait.cancel()
        if attempt not in done:
            attempt.cancel()
            with contextlib.suppress(BaseException):
                await attempt
            if refused.done():  # an MQTT 3.1.1 broker: gmqtt's connect() would never return
                return "give up" if self.on_refused(refused.result()) else "retry"
            if lost.is_set() and self._closed_early("connection closed before CONNACK"):
                return "give up"
            return "retry"
        exc = attempt.exception()
        if exc is None:
            if lost.is_set():
                if self._closed_early("connection closed before CONNACK"):
                    return "give up"
                return "retry"
            return "connected"
        if isinstance(exc, gmqtt.MQTTConnectError):
            code = exc.args[0] if exc.args else 0x80
            if self.on_refused(code):
                return "give up"
            return "retry"
        if isinstance(exc, OSError):
            if self.on_connect_error(exc):
                return "give up"
            early = isinstance(exc, ssl.SSLError | ConnectionResetError | BrokenPipeError)
            if early and self._closed_early(f"{type(exc).__name__}: {exc}"):
                return "give up"
            log.debug("MQTT connect failed: %s", exc)
            return "retry"
        log.debug("MQTT connect failed: %s: %s", type(exc).__name__, exc)
        return "retry"

    def _closed_early(self, reason: str) -> bool:
        """A TLS connection that ended before its CONNACK (the broker did not accept our client
        certificate, or wanted one): the ingest decides whether to give up."""
        return bool(self.ssl) and self.on_closed_early(reason)

    async def _stop_connected(self, client: _Client, lost: asyncio.Event) -> None:
        """Stopping on a live connection: every acknowledgement handed over goes out (the
        writer has ended, so `_resolve` has run for all of them), then the settle round trip,
        then DISCONNECT. Messages that were never handed over are withheld."""
        self._withhold_all()
        last = self._last_woken
        if last is not None and not last.done():
            # asyncio.wait's own callback on the task runs after gmqtt's, which writes the PUBACK.
            await asyncio.wait({last}, timeout=DRAIN_TIMEOUT_S)
        self._settled = asyncio.Event()
        with contextlib.suppress(Exception):
            self._settle_mid = client.unsubscribe(mqtt.SETTLE_FILTER)
            await asyncio.wait_for(self._settled.wait(), SETTLE_TIMEOUT_S)
        await self._close(client, lost)

    def _withhold_all(self) -> None:
        for fut, task in self._waiting.values():
            if not fut.done():
                fut.set_exception(Withheld())
                self._last_woken = task
        self._waiting.clear()
