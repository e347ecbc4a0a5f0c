"""The gmqtt network path's connect, refusal, logging and error paths (greenfoundry/mqtt_gmqtt.py),
against real servers: one reconnect after a broker restart (gmqtt's own reconnect is ours to
make, not a second client's), a TLS broker that does not accept the client certificate, a
broker certificate checked against `mqtt.tls.server_name`, and a delivery that raises. The
MQTT 3.1.1-only broker is a unit test of the decision: no server here answers MQTT 3.1.1 only
(Mosquitto 2.0 always speaks MQTT v5 too).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import subprocess
import sys
import time

import gmqtt
import pytest
import yaml

from greenfoundry import mqtt
from greenfoundry.ingest.service import Ingest, forget_session
from greenfoundry.mqtt_gmqtt import GmqttNetwork, reconnect_means_refusal
from greenfoundry.stack import LocalStack, make_certificates
from tests.plant import Publisher, energy_stream, plant_config, wait_for
from tests.security.test_mqtt_tls import _config as tls_config

T0_MS = 1_795_700_000_000  # 2026-11-27T10:13:20Z, within the example's max_past_days
SERVICE_LOG = "greenfoundry.ingest.service"


def _gmqtt_raw(path, **tls) -> None:
    """The plant config file at `path` with `mqtt.client: gmqtt` and `mqtt.tls` changed."""
    raw = yaml.safe_load(path.read_text())
    raw["mqtt"]["client"] = "gmqtt"
    for key, value in tls.items():
        if value is None:
            raw["mqtt"]["tls"].pop(key, None)
        else:
            raw["mqtt"]["tls"][key] = value
    path.write_text(yaml.safe_dump(raw))


def _client(path, client: str) -> None:
    raw = yaml.safe_load(path.read_text())
    raw["mqtt"]["client"] = client
    path.write_text(yaml.safe_dump(raw))


def _run_ingest(path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, "-m", "greenfoundry", "ingest", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the ingest kept retrying: {(exc.stderr or b'')[-1500:]!r}")


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The ingest stopped non-zero with exactly one `error:` line, its last, and no traceback."""
    assert proc.returncode != 0, proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0], proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


# ---- 1: a broker restart makes one reconnect, not a fight for the client id ------------------


@pytest.mark.servers
def test_a_broker_restart_makes_one_reconnect_not_two_clients(
    tmp_path, own_stack, caplog, monkeypatch
):
    """gmqtt reconnects a client by itself after `reconnect_delay`; our `_Client.reconnect` makes
    that a no-op, because the network loop makes a new client per connection. Were the old
    client to reconnect too, the two would take the session over from each other, each a new
    "connected" line. gmqtt's delay is set to 0.5 s (its default is 6 s) so that such a second
    client would show within the window below; the window is 8 of those delays after the
    reconnect, the count expected in all is 2 (the first connection and the one reconnect)."""
    monkeypatch.setitem(gmqtt.mqtt.constants.DEFAULT_CONFIG, "reconnect_delay", 0.5)
    info = own_stack.info
    cfg = plant_config(tmp_path, info, "gmc-restart")
    path = cfg.path
    _client(path, "gmqtt")
    cfg = dataclasses.replace(cfg, mqtt=dataclasses.replace(cfg.mqtt, client="gmqtt"))
    caplog.set_level(logging.INFO)

    def connected() -> int:
        return sum(
            1
            for r in caplog.records
            if r.name == SERVICE_LOG and r.getMessage().startswith("connected to mqtt://")
        )

    svc = Ingest(cfg)
    svc.start()
    try:
        assert svc.wait_connected(10)
        assert type(svc.net).__name__ == "GmqttNetwork"
        own_stack.stop_mosquitto()
        wait_for(lambda: not svc._connected.is_set(), 30, "the loss")
        own_stack.start_mosquitto()
        wait_for(lambda: connected() == 2, 60, "the reconnect")
        # The settled window: a third connection would be the old client's (a failure).
        deadline = time.monotonic() + 8 * 0.5
        while time.monotonic() < deadline and connected() == 2:
            time.sleep(0.05)
        assert connected() == 2, [r.getMessage() for r in caplog.records if r.name == SERVICE_LOG]
        assert svc._connected.is_set()
    finally:
        svc.stop()


# ---- 2: a broker that speaks MQTT 3.1.1 only -------------------------------------------------


def _network(**callbacks) -> GmqttNetwork:
    """A GmqttNetwork that never starts (no broker): only its client is used."""
    args = dict(
        host="127.0.0.1",
        port=1,
        client_id="gmc-unit",
        username=None,
        password=None,
        tls=None,
        keepalive_s=5,
        connect_properties={},
        subscriptions=[],
        deliver=lambda *a: True,
        may_ack=lambda c: True,
        on_connected=lambda sp: None,
        on_subscribed=lambda r: None,
        on_lost=lambda: None,
        on_refused=lambda code: True,
    )
    args.update(callbacks)
    return GmqttNetwork(**args)


def test_a_reconnect_asked_before_any_connack_is_a_refusal_of_the_protocol_version():
    """gmqtt answers an MQTT 3.1.1 broker's CONNACK return code 1 by downgrading and calling
    `reconnect()`, without a CONNACK event: connect() never returns. Only then (no good CONNACK,
    no refused one, the connection not lost) is a reconnect a refusal; after a loss, or after
    a CONNACK, it is the ordinary case. Truth table by hand: only (False, False, False)."""
    for connack in (False, True):
        for lost in (False, True):
            for connected in (False, True):
                expected = not connack and not lost and not connected
                got = reconnect_means_refusal(connack=connack, lost=lost, connected=connected)
                assert got is expected, (connack, lost, connected)
    # The code reported is MQTT v5's for it, which the ingest counts as permanent: at the first
    # connect it stops with one line, as on paho (which reads 0x84 off the wire).
    assert mqtt.PERMANENT_REFUSALS[0x84] == "unsupported protocol version"

    net = _network()
    loop = asyncio.new_event_loop()
    try:
        net._loop = loop
        # A fresh client: no CONNACK, not lost; gmqtt's downgrade calls reconnect(delay=True).
        lost = asyncio.Event()
        client = net._new_client(lost)
        loop.run_until_complete(client.reconnect(delay=True))
        assert client.gf_refused.done() and client.gf_refused.result() == 0x84
        # A client whose connection was lost: gmqtt's reconnect after the loss is no refusal.
        lost2 = asyncio.Event()
        client2 = net._new_client(lost2)
        lost2.set()
        loop.run_until_complete(client2.reconnect(delay=True))
        assert not client2.gf_refused.done()
    finally:
        loop.close()


# ---- 3 and 5: TLS ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory):
    stack = LocalStack(tmp_path_factory.mktemp("gmc-tls") / "stack", tls=True)
    stack.up()
    yield stack
    stack.down()


@pytest.mark.servers
@pytest.mark.parametrize(
    ("client", "certificate"),
    # No certificate is the same decision on paho (its connection closed before CONNACK); it is
    # run on gmqtt only, to keep the suite's time.
    [("paho", "foreign"), ("gmqtt", "foreign"), ("gmqtt", "none")],
)
def test_a_client_certificate_the_broker_does_not_accept_stops_with_one_line(
    tmp_path, tls_stack, client, certificate
):
    """The TLS listener requires a client certificate signed by its CA (`require_certificate
    true`). Without one, or with one of another CA, Mosquitto closes each TLS connection before
    any CONNACK. At the first connect that is no transient failure: one `error:` line naming
    the keys, a non-zero exit, and none of gmqtt's tracebacks."""
    info = tls_stack.info
    plant_id = f"gmc-cert-{client}-{certificate}"
    path, _ = tls_config(tmp_path, info, plant_id, info.tls_dir / "ca.crt")
    if certificate == "none":
        _gmqtt_raw(path, cert_file=None, key_file=None)
    else:
        other = tmp_path / "other-ca"
        make_certificates(other)
        _gmqtt_raw(path, cert_file=str(other / "client.crt"), key_file=str(other / "client.key"))
    _client(path, client)
    line = _one_error_line(_run_ingest(path))
    assert "closed the TLS connection before answering" in line, line
    assert line.endswith("(mqtt.tls.cert_file, mqtt.tls.key_file)"), line
    assert ("none was given" in line) == (certificate == "none"), line


@pytest.mark.servers
@pytest.mark.parametrize("client", ["paho", "gmqtt"])
def test_the_broker_certificate_is_checked_against_server_name(tmp_path, tls_stack, client):
    """The server certificate covers 127.0.0.1 and localhost; the ingest connects to
    127.0.0.1. With `server_name: wrong.example` the check must use that name (on gmqtt through
    `_NamedContext.wrap_bio`, asyncio's seam), so it fails: one line, a non-zero exit."""
    info = tls_stack.info
    path, _ = tls_config(tmp_path, info, f"gmc-name-{client}", info.tls_dir / "ca.crt")
    _gmqtt_raw(path, server_name="wrong.example")
    _client(path, client)
    line = _one_error_line(_run_ingest(path))
    assert "certificate verify failed" in line, line
    assert "wrong.example" in line, line


# ---- 4: a delivery that raises --------------------------------------------------------------


@pytest.mark.servers
def test_a_delivery_that_raises_closes_the_connection_and_the_message_comes_again(
    tmp_path, stack, caplog
):
    """The ingest's delivery is designed not to raise. If it did, the message would hold a
    receive-maximum slot with no PUBACK and no reconnect. Here the delivery (a test double of
    our callback, on a real broker) raises for the first copy: the connection is closed, the
    network reconnects, the broker delivers the message again, it is acknowledged; one error
    line, without the payload."""
    cfg = plant_config(tmp_path, stack, "gmc-raise")
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    payload = energy_stream(T0_MS, 1)[0][2]
    caplog.set_level(logging.INFO)
    state = {"generation": 0, "open": False, "subscribed": 0}
    copies: list[bytes] = []
    box: dict = {}

    def on_connected(session_present):
        state["generation"] += 1
        state["open"] = True

    def on_lost():
        state["open"] = False

    def deliver(t, p, mid, qos, retain):
        if t != topic:
            return False
        copies.append(bytes(p))
        if len(copies) == 1:
            raise RuntimeError("a bug in the ingest's delivery")
        box["net"].ack_batch([(state["generation"], mid, qos)])
        return True

    m = cfg.mqtt
    net = GmqttNetwork(
        host=m.host,
        port=m.port,
        client_id=m.client_id,
        username=m.username,
        password=m.password.value if m.password else None,
        tls=None,
        keepalive_s=10,
        connect_properties={"session_expiry_interval": 600, "receive_maximum": 8},
        subscriptions=[(f, 1, 1) for f in m.subscribe],
        deliver=deliver,
        may_ack=lambda c: state["open"] and c == state["generation"],
        on_connected=on_connected,
        on_subscribed=lambda r: state.update(subscribed=state["subscribed"] + 1),
        on_lost=on_lost,
        on_refused=lambda code: True,
        min_delay_s=0.1,
    )
    box["net"] = net
    net.start()
    pub = Publisher(stack, "gmc-raise-dev", plant="gmc-raise")
    try:
        wait_for(lambda: state["generation"] == 1, 10, "the first connection")
        wait_for(lambda: state["subscribed"] == 1, 10, "the subscription")
        pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: len(copies) == 2, 30, "the message again, on a new connection")
        assert state["generation"] == 2
        wait_for(lambda: not net._waiting, 10, "the acknowledgement")
    finally:
        pub.close()
        net.stop()
        forget_session(cfg, m.client_id, force=True)
    assert copies == [payload.encode(), payload.encode()]
    errors = [r for r in caplog.records if r.name == "greenfoundry.mqtt_gmqtt"]
    assert [r.levelname for r in errors] == ["ERROR"], [r.getMessage() for r in errors]
    assert "RuntimeError" in errors[0].getMessage() and topic in errors[0].getMessage()
    assert payload not in caplog.text
