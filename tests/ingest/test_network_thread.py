"""The ingest's MQTT network thread against a peer that accepts TCP and closes at once (what a
proxy in front of a dead broker, or a broker that refuses us, looks like): reconnects back off,
and stopping twice touches no other file. Found by review: before the fix the thread reconnected
about a hundred times a second, and a second stop() wrote into whatever file had reused the
wake pipe's descriptor."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from greenfoundry.mqtt import NetworkThread, make_client
from tests.plant import Publisher, wait_for


class ClosingPeer:
    """A TCP server on a free loopback port that accepts and closes every connection, and notes
    when each came."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[float] = []
        self._stop = threading.Event()
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(time.monotonic())
            conn.close()

    def close(self):
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


def test_a_peer_that_closes_at_once_is_retried_with_a_growing_pause():
    peer = ClosingPeer()
    net = NetworkThread(make_client("gf-test-backoff", None, None), lambda c: True, min_delay_s=0.2)
    try:
        net.start("127.0.0.1", peer.port, keepalive=10, clean_start=False)
        wait_for(lambda: len(peer.accepted) >= 4, 20, "four connection attempts")
    finally:
        net.stop(5)
        peer.close()
    gaps = [b - a for a, b in zip(peer.accepted, peer.accepted[1:], strict=False)]
    # The pause doubles from min_delay_s: 0.2, 0.4, 0.8 s (less a little for timer slack).
    assert gaps[0] >= 0.18 and gaps[1] >= 0.36 and gaps[2] >= 0.72, gaps


def test_stopping_twice_touches_no_other_file(tmp_path):
    net = NetworkThread(make_client("gf-test-stop", None, None), lambda c: True)
    net.stop()
    # The descriptors the wake pipe had are free now; a file opened next may get one of them.
    path = tmp_path / "other"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        net.stop()
        os.fstat(fd)  # still open: the second stop closed nothing
    finally:
        os.close(fd)
    assert path.read_bytes() == b""  # and wrote nothing into it


def test_the_thread_reads_its_socket_when_its_descriptors_are_above_1023(stack, tmp_path):
    """select() cannot watch a descriptor of 1024 or more (FD_SETSIZE): with it the thread
    raised ValueError at every turn and never read the CONNACK. Filled up to 1100 open files
    first, so the wake pipe and the socket both get numbers above 1023, the thread still
    connects, subscribes and receives every message published."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        if hard != resource.RLIM_INFINITY and hard < 1200:
            pytest.skip(f"the hard limit of open files is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    fillers = []
    received: list[bytes] = []
    subscribed = threading.Event()
    topic = "gf/v1/net-fd1024/melt/if1/energy"
    client = make_client("gf-test-fd1024", stack.mqtt_username, stack.mqtt_password)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = lambda c, u, msg: received.append(msg.payload)
    # The publisher first, below 1024: paho's own loop_start() uses select() too.
    pub = Publisher(stack, "gf-test-fd1024-pub")
    net = None
    try:
        while not fillers or fillers[-1] < 1100:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        net = NetworkThread(client, lambda c: True)
        net.start(stack.mqtt_host, stack.mqtt_port, keepalive=10, clean_start=True)
        wait_for(subscribed.is_set, 10, "the SUBACK (the CONNACK read first)")
        assert client.socket().fileno() >= 1024 and net._r >= 1024
        for i in range(50):
            pub.publish(topic, str(i))
        pub.wait_all()
        wait_for(lambda: len(received) == 50, 10, lambda: f"50 messages, {len(received)} so far")
    finally:
        pub.close()
        if net is not None:
            net.stop(5)
        for fd in fillers:
            os.close(fd)
        if soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert received == [str(i).encode() for i in range(50)]


@pytest.mark.parametrize("batched", [True, False], ids=["BatchAckClient", "paho-ack"])
def test_a_batch_of_acknowledgements_before_stop_acknowledges_every_message(stack, batched):
    """BatchAckClient writes a batch's PUBACKs itself (paho's `ack()` one packet a write). 5000 queued messages are received, then
    acknowledged in one batch of 20,000 bytes through a send buffer shrunk to the kernel's
    minimum, so the bytes go out in several partial writes with paho's own packets waiting
    behind them, and the thread stops right after. Had a byte been lost or misplaced, the
    broker would have closed the connection (a malformed packet) and delivered the messages
    again: the resumed session gets only the message published after it. Before the stop
    waited for the broker to read them (`NetworkThread._settle`), 3,000 or more of the 5,000
    came again, with paho's own `ack()` as with the batch."""
    import socket as socket_module

    import paho.mqtt.client as paho

    from greenfoundry.mqtt import BatchAckClient, connect_properties

    client_class = BatchAckClient if batched else paho.Client
    client_id = f"gf-test-ack-{'batch' if batched else 'paho'}"
    topic, n = f"gf/v1/net-{client_id}/melt/if1/energy", 5000
    expiry = connect_properties(session_expiry_s=600, receive_maximum=65535)
    received: list[int] = []
    connects: list[int] = []
    subscribed = threading.Event()

    def on_connect(c, u, flags, rc, props):
        connects.append(rc.value)
        c.socket().setsockopt(socket_module.SOL_SOCKET, socket_module.SO_SNDBUF, 1)
        c.subscribe(topic, qos=1)

    def consumer() -> BatchAckClient:
        c = make_client(
            client_id,
            stack.mqtt_username,
            stack.mqtt_password,
            manual_ack=True,
            client_class=client_class,
        )
        c.on_connect = on_connect
        c.on_subscribe = lambda *args: subscribed.set()
        c.on_message = lambda c, u, msg: received.append(msg.mid)
        return c

    net = NetworkThread(consumer(), lambda c: True)
    net.start(stack.mqtt_host, stack.mqtt_port, keepalive=30, clean_start=True, properties=expiry)
    pub = Publisher(stack, f"{client_id}-pub")
    try:
        wait_for(subscribed.is_set, 10, "the SUBACK")
        for i in range(n):
            pub.publish(topic, str(i))
        pub.wait_all()
        wait_for(lambda: len(received) == n, 30, lambda: f"{n} messages, {len(received)} so far")
        net.ack_batch([(0, mid, 1) for mid in received])
        net.stop(10)
        assert connects == [0]  # one connection throughout: the broker never closed it
        # The same session again: nothing is delivered again before the next message.
        received.clear()
        subscribed.clear()
        net = NetworkThread(consumer(), lambda c: True)
        net.start(
            stack.mqtt_host, stack.mqtt_port, keepalive=30, clean_start=False, properties=expiry
        )
        wait_for(subscribed.is_set, 10, "the SUBACK again")
        pub.publish(topic, "after")
        pub.wait_all()
        wait_for(lambda: received, 10, "the message published after")
    finally:
        pub.close()
        net.stop(10)
    assert len(received) == 1
