"""greenfoundry/stack.py for a park: `apply_stack` points a plant the stack knows
(`add_plant`) at its own database and reader, and device accounts made at once by several
callers, against the real Mosquitto and InfluxDB."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from contextlib import closing

import pytest
import yaml

from greenfoundry import mqtt
from greenfoundry import plant as plant_config
from greenfoundry.cli import main
from greenfoundry.errors import StackError, StoreError
from greenfoundry.stack import apply_stack, plant_database
from greenfoundry.store import InfluxStore, line, where
from tests.plant import ALL_TIME, EXAMPLE

pytestmark = pytest.mark.servers


def _config(tmp_path, plant_id: str, **influx) -> object:
    """The example plant under `plant_id`, its files in tmp_path, `influx` over its
    `influxdb:` keys."""
    raw = copy.deepcopy(EXAMPLE)
    raw["plant"]["id"] = plant_id
    raw["mqtt"]["client_id"] = f"gf-ingest-{plant_id}"
    raw["influxdb"].update(influx)
    raw["ingest"].update(spool_dir=f"spool-{plant_id}", deadletter_file=f"dead-{plant_id}.jsonl")
    path = tmp_path / f"{plant_id}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_plant_the_stack_knows_reads_and_writes_its_own_database(own_stack, tmp_path, capsys):
    known, other = "e10-split-a", "e10-split-b"
    reader = own_stack.add_plant(known)
    info = own_stack.info
    path = _config(tmp_path, known)
    cfg = apply_stack(plant_config.load(path, resolve_secrets=False), own_stack.dir)
    # By hand: add_plant's database is "greenfoundry-<plant>", its reader "gf-reader-<plant>".
    assert cfg.influxdb.database == "greenfoundry-e10-split-a" == plant_database(known)
    assert cfg.influxdb.users["reader"].username == "gf-reader-e10-split-a" == reader.username
    # The ingest and the metrics are the stack's users, which add_plant granted this database.
    assert cfg.influxdb.users["ingest"].username == info.influx_account("ingest").username
    assert cfg.influxdb.users["metrics"].username == info.influx_account("metrics").username
    # A plant the stack does not know: the shared database and the stack's reader.
    cfg_b = apply_stack(
        plant_config.load(_config(tmp_path, other), resolve_secrets=False), own_stack.dir
    )
    assert cfg_b.influxdb.database == info.influx_database == "greenfoundry"
    assert cfg_b.influxdb.users["reader"].username == info.influx_account("reader").username

    # Each role works there with its grant: the ingest writes, the metrics read and write, the
    # plant's reader reads, and nobody writes the plant's data into the shared database.
    now_ns = time.time_ns()
    tags = {"plant": known, "instance": cfg.mqtt.client_id}
    with closing(InfluxStore.from_config(cfg.influxdb, role="ingest")) as ingest:
        ingest.write_lines([line("gf_ingest", tags, {"received": 3, "written": 3}, now_ns)])
    with closing(InfluxStore.from_config(cfg.influxdb, role="metrics")) as metrics:
        metrics.write_lines([line("e10_probe", {"plant": known}, {"value": 1.5}, now_ns)])
    q = f"SELECT value FROM e10_probe {where({'plant': known}, **ALL_TIME)}"
    with closing(InfluxStore.from_config(cfg.influxdb, role="reader")) as plant_reader:
        assert plant_reader.query(q)["value"].tolist() == [1.5]
    with closing(InfluxStore.from_config(cfg_b.influxdb, role="reader")) as shared_reader:
        assert shared_reader.query(q).empty
    # The plant's reader reads its database only: not the shared one.
    on_shared = dataclasses.replace(cfg.influxdb, database=info.influx_database)
    with (
        closing(InfluxStore.from_config(on_shared, role="reader")) as plant_reader,
        pytest.raises(StoreError, match="HTTP 403"),
    ):
        plant_reader.query(q)

    # The commands under --stack take the same rule: `status --check` reads the plant's
    # database as its reader and finds the point written there.
    assert main(["status", "--check", "--config", str(path), "--stack", str(own_stack.dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and cfg.mqtt.client_id in out, out
    # The other plant has no such point in the shared database.
    assert main(["status", "--check", "--config", str(_config(tmp_path, other)),
                 "--stack", str(own_stack.dir)]) == 1  # fmt: skip
    assert "no self-metrics" in capsys.readouterr().out


def test_a_database_the_stack_does_not_have_for_the_plant_is_refused(own_stack, tmp_path):
    own_stack.add_plant("e10-split-c")
    # Its own database by name is honoured, as is the stack's shared one.
    for database in ("greenfoundry-e10-split-c", "greenfoundry"):
        path = _config(tmp_path, "e10-split-c", database=database)
        cfg = apply_stack(plant_config.load(path, resolve_secrets=False), own_stack.dir)
        assert cfg.influxdb.database == "greenfoundry-e10-split-c"
    # Another plant's database, or one the stack never made, names the key.
    for plant_id, database in (("e10-split-c", "greenfoundry-e10-split-d"),
                               ("e10-split-d", "greenfoundry-e10-split-d")):  # fmt: skip
        path = _config(tmp_path, plant_id, database=database)
        with pytest.raises(StackError, match=r"influxdb\.database: 'greenfoundry-e10-split-d'"):
            apply_stack(plant_config.load(path, resolve_secrets=False), own_stack.dir)


def test_device_accounts_made_at_once_by_several_callers(stack):
    """Six callers at once, two for each of three accounts, each its own admin connection to
    the plugin (as two simulators or a bench's processes starting together). Before the
    plugin's answers were matched by correlation data, a caller took another's answer and
    failed with a raw ValueError of zip."""
    plant_id = f"e10-conc-{time.time_ns() % 10**9}"
    names = [f"dev-{plant_id}-{n % 3}" for n in range(6)]
    errors: list[BaseException] = []
    accounts: dict[str, object] = {}
    start = threading.Barrier(len(names))

    def make(name: str) -> None:
        try:
            start.wait(10)
            accounts[name] = stack.device_account(plant_id, name)
        except BaseException as exc:  # every caller's failure is reported
            errors.append(exc)

    threads = [threading.Thread(target=make, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(accounts) == 3
    for name, account in accounts.items():
        # Each account works, bound to its own client id and to no other.
        assert _connects(stack, name, account.password, client_id=name)
        assert not _connects(stack, name, account.password, client_id=f"{name}-x")


def _connects(stack, username: str, password: str, *, client_id: str) -> bool:
    """True when the broker accepts this CONNECT (reason code 0)."""
    answered = threading.Event()
    result = {"ok": False}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["ok"] = not reason_code.is_failure
        answered.set()

    client = mqtt.make_client(client_id, username, password)
    client.on_connect = on_connect
    client.connect(stack.mqtt_host, stack.mqtt_port, keepalive=10, clean_start=True)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK in 10 s"
    finally:
        client.disconnect()
        client.loop_stop()
    return result["ok"]
