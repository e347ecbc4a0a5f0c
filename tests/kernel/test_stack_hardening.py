"""`stack up` against a port in use, and the modes of what the stack writes (real servers)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from greenfoundry.errors import StackError
from greenfoundry.stack import LocalStack

pytestmark = pytest.mark.servers


def _processes_under(directory: Path) -> list[int]:
    """Pids of every process whose command line names a file under `directory` (the stack's
    servers are started with their config file there)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def taken_port():
    """A port with a listening socket of ours on it, as another program's would be."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("which", ["influx", "mqtt"])
def test_up_names_the_port_in_use_and_leaves_nothing_running(tmp_path, taken_port, which):
    directory = tmp_path / "stack"
    ports = {"influx_port": taken_port} if which == "influx" else {"mqtt_port": taken_port}
    stack = LocalStack(directory, **ports)
    what = "InfluxDB HTTP" if which == "influx" else "MQTT"
    option = "--influx-port" if which == "influx" else "--mqtt-port"
    with pytest.raises(StackError) as refused:
        stack.up()
    assert str(refused.value) == (
        f"port {taken_port} ({what}) is already in use by another program; "
        f"choose another with {option}"
    )
    assert _processes_under(directory) == []


def test_a_server_that_fails_to_start_stops_the_one_started_before_it(
    tmp_path, taken_port, monkeypatch
):
    # The port is taken after the check (another program was quicker): influxd itself fails to
    # bind and exits, and the Mosquitto this `up` started must not be left running.
    directory = tmp_path / "stack"
    stack = LocalStack(directory, influx_port=taken_port)
    monkeypatch.setattr(stack, "_check_ports", lambda: None)
    with pytest.raises(StackError, match="influxd"):
        stack.up()
    assert _processes_under(directory) == []


def test_the_stacks_files_are_its_owners_only(own_stack):
    info = own_stack.info
    # Made by the stack or by the servers it starts: each file 0600 at most, each directory
    # 0700, so no other local user reads credentials, raw payloads or queued messages.
    seen_files = 0
    for root, dirs, files in os.walk(info.dir):
        for d in dirs:
            mode = stat.S_IMODE(os.stat(Path(root) / d).st_mode)
            assert mode & 0o077 == 0, f"{Path(root) / d} is {oct(mode)}"
        for f in files:
            mode = stat.S_IMODE(os.stat(Path(root) / f).st_mode)
            assert mode & 0o077 == 0, f"{Path(root) / f} is {oct(mode)}"
            seen_files += 1
    assert stat.S_IMODE(os.stat(info.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(info.dir / "stack.json").st_mode) == 0o600
    # The servers' own files are among them: InfluxDB's meta.db (0644 by itself) and the
    # plugin's account file.
    assert (info.dir / "influxdb" / "meta" / "meta.db").exists()
    assert (info.dir / "mosquitto" / "dynsec.json").exists()
    assert seen_files >= 6


def test_a_stack_made_before_the_alerts_account_gets_it_at_its_next_start(tmp_path):
    """An account file written by an older stack: no `alerts` role or account, and a plant's
    device role without the deny of its `_alerts`. The plugin owns the file once the broker
    ran, so the stack adds what is missing through the control topic at start."""
    import json
    import threading

    from greenfoundry import mqtt
    from greenfoundry.stack import dynsec_config

    stack = LocalStack(tmp_path / "stack")
    m = stack.state["mqtt"]
    old = dynsec_config({r: a for r, a in m["accounts"].items() if r != "alerts"}, "gf/v1")
    old["roles"] = [r for r in old["roles"] if r["rolename"] != "alerts"]
    allow = {"acltype": "publishClientSend", "topic": "gf/v1/p-old/#", "priority": 0}
    old["roles"].append({"rolename": "plant-p-old", "acls": [{**allow, "allow": True}]})
    (stack.dir / "mosquitto").mkdir(parents=True, mode=0o700)
    (stack.dir / "mosquitto" / "dynsec.json").write_text(json.dumps(old))
    stack._save_state()

    def publish(account, client_id, topic) -> int:
        codes, done = [], threading.Event()
        c = mqtt.make_client(client_id, account.username, account.password)
        c.on_publish = lambda *args: (codes.append(args[3].value), done.set())
        c.connect(info.mqtt_host, info.mqtt_port)
        c.loop_start()
        try:
            c.publish(topic, b"{}", qos=1)
            assert done.wait(10), "no PUBACK"
        finally:
            c.disconnect()
            c.loop_stop()
        return codes[0]

    info = stack.up()
    try:
        alerts = info.mqtt_account("alerts")
        assert publish(alerts, "old-alerts", "gf/v1/p-old/_alerts/r/t") < 0x80
        device = info.device_account("p-old", "old-dev")
        assert publish(device, "old-dev", "gf/v1/p-old/_alerts/r/t") == 0x87  # not authorised
        assert publish(device, "old-dev", "gf/v1/p-old/melt/if1/energy") < 0x80
    finally:
        stack.down()
