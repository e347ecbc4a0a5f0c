"""paho-mqtt 2.x clients for greenfoundry: MQTT v5, credentials, and a readiness check."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import ssl
import struct
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

# A first topic level after the plant id that starts with "_" is the system's namespace, never a
# device's area (an area starts with a letter or a digit): the alerts' state lives under
# `<topic_root>/<plant>/_alerts/<rule>/<target>`. Devices may not publish there (their broker
# role denies it, greenfoundry.stack) and the ingest ignores every such topic.
SYSTEM_LEVEL_PREFIX = "_"
ALERTS_LEVEL = "_alerts"


def is_system_topic(topic: str, root_prefix: str) -> bool:
    """True for `<root>/<plant>/_…`: `root_prefix` is the topic root with its trailing "/"."""
    if not topic.startswith(root_prefix):
        return False
    slash = topic.find("/", len(root_prefix))
    return slash > len(root_prefix) and topic.startswith(SYSTEM_LEVEL_PREFIX, slash + 1)


def make_client(
    client_id: str,
    username: str | None,
    password: str | None,
    *,
    manual_ack: bool = False,
    tls=None,
    client_class: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """A paho MQTT v5 client. `tls` is a `greenfoundry.plant.MqttTls` (or None for plain TCP)."""
    client = client_class(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls_context(tls))
    return client


class _NamedContext(ssl.SSLContext):
    """An SSL context that checks the broker's certificate against `server_name` rather than
    the host connected to (paho passes its host as the server name; `wrap_socket` is the
    standard library's public seam for changing it, and `wrap_bio` the one asyncio uses, for
    gmqtt)."""

    server_name: str | None = None

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):
        return super().wrap_socket(
            sock, *args, server_hostname=self.server_name or server_hostname, **kwargs
        )

    def wrap_bio(self, incoming, outgoing, *args, server_hostname=None, **kwargs):
        return super().wrap_bio(
            incoming, outgoing, *args, server_hostname=self.server_name or server_hostname, **kwargs
        )


def tls_context(tls) -> ssl.SSLContext:
    """The client's TLS context: the broker's certificate verified (against `ca_file`, or the
    system's CAs) and its name checked; a client certificate when one is given."""
    context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.ca_file is not None:
        context.load_verify_locations(cafile=str(tls.ca_file))
    else:
        context.load_default_certs()
    if tls.cert_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    context.server_name = tls.server_name
    return context


def connect_properties(
    *,
    session_expiry_s: int = 0,
    receive_maximum: int | None = None,
    maximum_packet_size: int | None = None,
) -> Properties:
    """CONNECT properties. `maximum_packet_size` (MQTT v5, 3.1.2.11.4): the broker does not
    send us a larger packet; it drops it for this client instead."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    if maximum_packet_size is not None:
        props.MaximumPacketSize = maximum_packet_size
    return props


# CONNACK reason codes that will not change by trying again with the same settings (MQTT v5,
# 3.2.2.2); the others (server unavailable, busy, quota or rate exceeded) may pass.
PERMANENT_REFUSALS = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorised (a wrong user name or password, or an account not allowed to connect)",
    0x8A: "banned",
    0x8C: "bad authentication method",
    0x95: "packet too large",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
}


def refusal(reason_code) -> str | None:
    """What a failed CONNACK means, if trying again cannot help; None if it may."""
    return PERMANENT_REFUSALS.get(int(reason_code.value))


def can_connect(
    host: str, port: int, username: str | None, password: str | None, timeout_s: float = 2.0
) -> bool:
    """True when the broker accepts a CONNECT with these credentials (reason code 0)."""
    done = threading.Event()
    result = {"ok": False}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["ok"] = not reason_code.is_failure
        done.set()

    client = make_client("", username, password)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10, clean_start=True)
    except OSError:
        return False
    client.loop_start()
    try:
        done.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return result["ok"]


# A topic filter no client subscribes to: its UNSUBSCRIBE is a round trip to the broker.
SETTLE_FILTER = "$gf-settle/never-subscribed"
_PUBACK = struct.Struct("!BBH")  # fixed header 0x40, remaining length 2, packet identifier


class BatchAckClient(mqtt.Client):
    """A paho client that sends a batch of QoS 1 acknowledgements with one `send()`.

    paho's `ack()` queues one packet and its `loop_write()` writes one packet per system call:
    about 7.5 µs of the network thread's CPU per PUBACK here, against 0.2 µs in one write
    (ingest/README.md, "The network thread"). `ack_many(mids)` writes
    the PUBACKs itself on the client's public `socket()`, byte for byte what paho would write
    (MQTT v5 3.4.2.1: success, no properties, remaining length 2), only from the thread that
    drives paho's external loop. The order of acknowledgements is kept (MQTT v5 4.6): when paho
    has packets of its own queued, the batch goes through paho's queue behind them; while bytes
    of ours are unsent, `want_write()` says so and `loop_write()` writes them before paho's.
    Bytes left for a connection that is gone are dropped (their messages come again)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._gf_out = bytearray()  # PUBACK bytes not yet written
        self._gf_sock = None  # the socket they are for

    def _gf_socket(self):
        sock = self.socket()
        if sock is not self._gf_sock:  # a new connection: what was left is void
            self._gf_out.clear()
            self._gf_sock = sock
        return sock

    def _gf_flush(self, sock) -> bool:
        """Write what is left of our bytes; True when nothing is left."""
        out = self._gf_out
        while out:
            try:
                n = sock.send(out)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                return False
            except OSError:  # the connection is gone: paho sees it at its next read or write
                out.clear()
                return True
            del out[:n]
        return True

    def ack_many(self, mids) -> None:
        """Acknowledge QoS 1 messages by packet identifier, in this order."""
        sock = self._gf_socket()
        if sock is None or not mids:
            return
        if not self._gf_out and super().want_write():
            for mid in mids:
                self.ack(mid, 1)
            return
        for mid in mids:
            self._gf_out += _PUBACK.pack(0x40, 2, mid)
        self._gf_flush(sock)

    def want_write(self) -> bool:
        return bool(self._gf_out) or super().want_write()

    def loop_write(self):
        if self._gf_out:
            sock = self._gf_socket()
            if sock is not None and not self._gf_flush(sock):
                return mqtt.MQTT_ERR_SUCCESS  # paho's packets wait behind ours
        return super().loop_write()


class NetworkThread:
    """paho's network loop, run by a thread of ours through paho's documented external-loop
    API (`socket`, `want_write`, `loop_read`, `loop_write`, `loop_misc`, `reconnect` and the
    `on_socket_*_write` callbacks) instead of `loop_start()`. Two costs of paho's own loop go:

    - `loop_start()` wakes its thread with a socketpair write for every packet queued from
      another thread, so every PUBACK cost two system calls. Here no socketpair exists; another
      thread hands over a whole batch of acknowledgements with one pipe write (`ack_batch`),
      and this thread sends them in order, on the connection that carried the messages.
    - paho's loop does one `select` per packet; here packets are read in bursts.

    It waits with `selectors.DefaultSelector` (epoll on Linux), not `select()`, which cannot
    watch a descriptor of 1024 or more (FD_SETSIZE): in a process holding that many files the
    socket would never be read.

    `may_ack(connection)` says whether a message of that connection may be acknowledged now
    (packet identifiers mean something only on their own connection); a withheld one is
    counted in `acks_withheld` and delivered again by the broker. Reconnects with backoff until
    `halt()`; `stop()` sends the acknowledgements handed over, then DISCONNECT."""

    READ_BURST = 256
    # A connection counts as good once it has held this long after its CONNACK: only then does
    # the reconnect backoff start again from its shortest delay. A connection that the broker
    # refuses or closes at once (a refused CONNACK, a proxy that closes, two processes taking one
    # client id from each other) otherwise makes a reconnect loop without a pause.
    STABLE_S = 10.0

    def __init__(
        self,
        client: mqtt.Client,
        may_ack,
        *,
        on_connect_error=lambda exc: False,
        on_died=lambda exc: None,
        min_delay_s=1.0,
        max_delay_s=30.0,
    ):
        self.client = client
        self.may_ack = may_ack
        # Called with the exception when a connect attempt fails (no TCP or TLS connection);
        # True means give up (no more attempts), False try again after the backoff.
        self.on_connect_error = on_connect_error
        # Called with the exception when this thread dies of something unexpected (a bug, an
        # error paho does not handle): the process must stop, not run on without a network.
        self.on_died = on_died
        self._closed = False
        self.min_delay_s, self.max_delay_s = min_delay_s, max_delay_s
        self.acks_withheld = 0
        self._acks: collections.deque = collections.deque()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._r, selectors.EVENT_READ)
        self._watched = None  # the socket registered with the selector, and its events
        self._settle_mid: int | None = None  # the UNSUBSCRIBE of `_settle`, until answered
        self._watched_events = 0
        self._stop = threading.Event()
        self._halted = False
        self._messages = 0
        self._thread: threading.Thread | None = None
        # Not None: paho's _packet_queue() then neither writes in the caller's thread nor
        # looks for a socketpair; this thread writes whenever `want_write()`.
        client.on_socket_register_write = lambda *args: None
        client.on_socket_unregister_write = lambda *args: None

    def start(self, host: str, port: int, **connect_kwargs) -> None:
        on_message = self.client.on_message

        def counted(client, userdata, message):
            self._messages += 1  # tells a read burst that a whole packet came
            on_message(client, userdata, message)

        self.client.on_message = counted
        on_unsubscribe = self.client.on_unsubscribe

        def unsubscribed(client, userdata, mid, *args):
            if mid == self._settle_mid:  # our own round trip (`_settle`), nobody else's
                self._settle_mid = None
            elif on_unsubscribe is not None:
                on_unsubscribe(client, userdata, mid, *args)

        self.client.on_unsubscribe = unsubscribed
        self.client.connect_async(host, port, **connect_kwargs)
        self._thread = threading.Thread(target=self._run, name="gf-mqtt", daemon=True)
        self._thread.start()

    def ack_batch(self, items) -> None:
        """(connection, mid, qos) of messages, in arrival order: one wake-up for them all."""
        self._acks.extend(items)
        self._poke()

    def halt(self) -> None:
        """No more reconnects (called from a callback, in this thread)."""
        self._halted = True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Idempotent. The wake pipe is closed only once the thread is gone: its numbers are
        never written to or closed twice (another file may hold them by then)."""
        if self._closed:
            return
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return  # still in a connect: the thread closes the pipe when it ends
        self._close_pipe()

    def _close_pipe(self) -> None:
        if not self._closed:
            self._closed = True
            self._selector.close()
            os.close(self._r)
            os.close(self._w)

    def _poke(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(BlockingIOError):  # the pipe is full of wake-ups already
            os.write(self._w, b"x")

    def _send_acks(self) -> None:
        c = self.client
        many = getattr(c, "ack_many", None)
        mids: list[int] = []
        while self._acks:
            connection, mid, qos = self._acks.popleft()
            if not self.may_ack(connection):  # counts what it withholds
                continue
            if qos == 1 and many is not None:
                mids.append(mid)
                continue
            if mids:  # what came before goes first
                many(mids)
                mids = []
            c.ack(mid, qos)
        if mids:
            many(mids)

    def _wait(self, sock, *, read: bool, write: bool, timeout_s: float) -> tuple[bool, bool]:
        """Wait until `sock` is readable (`read`) or writable (`write`), or the wake pipe has a
        byte, at most `timeout_s`: (socket readable, pipe readable). A socket of a connection
        that is gone is dropped from the selector first, so its number may be reused."""
        events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        sel = self._selector
        if sock is not self._watched:
            if self._watched is not None:
                with contextlib.suppress(KeyError, ValueError):
                    sel.unregister(self._watched)
                self._watched = None
            if events:
                sel.register(sock, events)
                self._watched, self._watched_events = sock, events
        elif events != self._watched_events:
            if events:
                sel.modify(sock, events)
                self._watched_events = events
            else:
                sel.unregister(sock)
                self._watched = None
        sock_readable = pipe_readable = False
        for key, mask in sel.select(timeout_s):
            if key.fileobj is self._r:
                pipe_readable = True
            elif mask & selectors.EVENT_READ:
                sock_readable = True
        return sock_readable, pipe_readable

    def _settle(self, timeout_s: float = 2.0) -> None:
        """Wait until the broker has read everything sent so far: an UNSUBSCRIBE of a filter
        nobody uses, answered in order (MQTT v5 4.6). Mosquitto 2.0 closes a connection whose
        peer has gone before it has read the rest of its input: acknowledgements written just
        before DISCONNECT were lost so (measured: 3,000 of 5,000), and their messages delivered
        again at the next start. Messages that arrive meanwhile are not acknowledged."""
        c = self.client
        rc, mid = c.unsubscribe(SETTLE_FILTER)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            return
        self._settle_mid = mid
        deadline = time.monotonic() + timeout_s
        while self._settle_mid is not None and time.monotonic() < deadline:
            sock = c.socket()
            if sock is None:
                break
            if c.want_write():
                c.loop_write()
            try:
                readable, _ = self._wait(sock, read=True, write=c.want_write(), timeout_s=0.05)
            except (OSError, ValueError):
                break
            if readable:
                c.loop_read()
        self._settle_mid = None

    def _forget_socket(self) -> None:
        if self._watched is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self._watched)
            self._watched = None

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:
            log.exception("the MQTT network thread failed")
            self.on_died(exc)
        finally:
            if self._stop.is_set():
                self._close_pipe()

    def _loop(self) -> None:
        c = self.client
        delay = self.min_delay_s
        first = True
        connected_since: float | None = None
        while not self._stop.is_set():
            sock = c.socket()
            if sock is None:
                if self._halted:
                    self._acks.clear()
                    return
                if connected_since is not None and time.monotonic() - connected_since >= (
                    self.STABLE_S
                ):
                    delay = self.min_delay_s
                connected_since = None
                if not first:  # every attempt after the first waits, longer each time
                    log.debug("MQTT not connected; next try in %.0f s", delay)
                    if self._stop.wait(delay):
                        break
                    delay = min(delay * 2, self.max_delay_s)
                first = False
                try:
                    c.reconnect()
                except Exception as exc:  # OSError, ssl.SSLError; a bad host name's UnicodeError
                    if isinstance(exc, OSError) and self.on_connect_error(exc):
                        self._acks.clear()
                        return
                    log.debug("MQTT connect failed: %s", exc)
                continue
            if connected_since is None and c.is_connected():
                connected_since = time.monotonic()
            pending = sock.pending() if hasattr(sock, "pending") else 0  # TLS: already read
            try:
                sock_readable, pipe_readable = self._wait(
                    sock, read=True, write=c.want_write(), timeout_s=0 if pending else 1.0
                )
            except (OSError, ValueError):  # the socket was closed under us
                sock_readable = pipe_readable = False
                self._forget_socket()
            if sock_readable or pending:
                for _ in range(self.READ_BURST):  # loop_read() reads one packet a call
                    before = self._messages
                    if c.loop_read() != mqtt.MQTT_ERR_SUCCESS or c.socket() is None:
                        break
                    if self._messages == before:  # no whole message (another packet, or none)
                        break
            if pipe_readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._r, 65536)
            if c.socket() is not None:
                self._send_acks()
                if c.want_write():
                    c.loop_write()
                c.loop_misc()
        # Stopping: the acknowledgements handed over go out before DISCONNECT, and the broker
        # has read them before the connection closes.
        if c.socket() is not None:
            self._send_acks()
            self._settle()
            c.disconnect()
            deadline = time.monotonic() + 2.0
            while c.socket() is not None and c.want_write() and time.monotonic() < deadline:
                c.loop_write()
                if c.socket() is not None:
                    with contextlib.suppress(OSError, ValueError):
                        self._wait(c.socket(), read=False, write=True, timeout_s=0.05)
        self._forget_socket()
        self.acks_withheld += len(self._acks)
        self._acks.clear()
