"""`greenfoundry stack up --park FILE` and `stack env --park ID` against a real Mosquitto and
InfluxDB 1.6.7: the park's plants get their own databases and readers, the park a reader that
reads those databases and nothing else, re-runs change nothing, a plant that left the park
loses the grant, and a plant config naming the shared database is refused before anything is
made.

The stack is this module's own (started by the command under test, about a second here), not
the session's: the command writes stack.json from a LocalStack of its own, which the session's
LocalStack object would overwrite at its next change, and the grants checked here are then
this stack's alone."""

from __future__ import annotations

import copy
import json
import logging
import os
import stat
import types
from contextlib import closing

import pytest
import yaml

from greenfoundry.cli import main
from greenfoundry.errors import StackError, StoreError
from greenfoundry.stack import (
    PARK_ENV_PASSWORD,
    PARK_ENV_URL,
    PARK_ENV_USER,
    LocalStack,
    load_stack_info,
    store_for,
)
from greenfoundry.store import InfluxStore, StoreSettings, line, quote_ident
from tests.plant import EXAMPLE

pytestmark = pytest.mark.servers

PARK = "e10pr-park"
IN_PARK = ("e10pr-a", "e10pr-b")
OUTSIDE = "e10pr-out"  # a plant of the stack (`--plant`) that is not in the park
# By hand: the stack's shared database, and `greenfoundry-<plant>` for a plant's own
# (README, "Least privilege").
SHARED = "greenfoundry"
DB = {pid: f"greenfoundry-{pid}" for pid in (*IN_PARK, OUTSIDE, "e10pr-c", "e10pr-d")}
# A probe value per database, written as the admin, to tell which database a read reached.
PROBE = {SHARED: 10.0, DB["e10pr-a"]: 1.0, DB["e10pr-b"]: 2.0, DB[OUTSIDE]: 3.0, DB["e10pr-c"]: 4.0}
PROBE_Q = "SELECT value FROM e10pr_probe WHERE time >= 0"


def _plant(tmp, plant_id: str, database: str | None) -> str:
    """The example plant under `plant_id`, naming `database` (None: the key left out)."""
    raw = copy.deepcopy(EXAMPLE)
    raw["plant"]["id"] = plant_id
    raw["mqtt"]["client_id"] = f"gf-ingest-{plant_id}"
    if database is None:
        raw["influxdb"].pop("database")
    else:
        raw["influxdb"]["database"] = database
    path = tmp / f"{plant_id}-{database}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _park(tmp, park_id: str, plants: list[str], name: str = "park.yaml", **keys) -> str:
    doc = {"version": 1, "id": park_id, "name": f"Park {park_id}", "plants": plants, **keys}
    path = tmp / f"{park_id}-{name}"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _read(info, account, database: str) -> list[float]:
    settings = StoreSettings(
        url=info.influx_url,
        database=database,
        username=account.username,
        password=account.password,
    )
    with closing(InfluxStore(settings)) as store:
        return [
            row[1]
            for r in store.query_raw(PROBE_Q)
            for s in r.get("series", [])
            for row in s["values"]
        ]


def _grants(info, username: str) -> set[tuple[str, str]]:
    with closing(store_for(info)) as admin:
        res = admin.query_raw(f"SHOW GRANTS FOR {quote_ident(username)}", database="")
    # InfluxDB 1.x lists a revoked grant as NO PRIVILEGES: it allows nothing.
    return {
        tuple(v)
        for r in res
        for s in r.get("series", [])
        for v in s["values"]
        if v[1] != "NO PRIVILEGES"
    }


def _users(info) -> set[str]:
    with closing(store_for(info)) as admin:
        res = admin.query_raw("SHOW USERS", database="")
    return {v[0] for r in res for s in r.get("series", []) for v in s["values"]}


def _databases(info) -> set[str]:
    with closing(store_for(info)) as admin:
        res = admin.query_raw("SHOW DATABASES", database="")
    return {v[0] for r in res for s in r.get("series", []) for v in s["values"]}


@pytest.fixture(scope="module")
def park(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("park-reader")
    stack_dir = tmp / "stack"
    files = [_plant(tmp, pid, DB[pid]) for pid in IN_PARK]
    # The report's anonymisation key is not the stack's: its variable may be unset here.
    assert "GF_E10PR_UNSET_KEY" not in os.environ
    park_file = _park(tmp, PARK, files, anonymise_key_env="GF_E10PR_UNSET_KEY")
    argv = ["stack", "up", "--dir", str(stack_dir), "--plant", OUTSIDE, "--park", park_file]
    try:
        yield types.SimpleNamespace(dir=stack_dir, tmp=tmp, file=park_file, files=files, argv=argv)
    finally:
        if (stack_dir / "stack.json").exists():
            LocalStack(stack_dir).down()


@pytest.fixture(scope="module")
def made(park):
    """The first `stack up --park`: what it printed and logged, and the stack it made."""
    capture = _Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        import io
        from contextlib import redirect_stderr, redirect_stdout

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = main(park.argv)
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    assert rc == 0, err.getvalue()
    info = load_stack_info(park.dir)
    # The outside plant's probe, and each other database's, written as the admin.
    c_file = _plant(park.tmp, "e10pr-c", DB["e10pr-c"])
    assert main(["stack", "up", "--dir", str(park.dir), "--plant", "e10pr-c"]) == 0
    for database, value in PROBE.items():
        with closing(store_for(info, database=database)) as admin:
            admin.write_lines([line("e10pr_probe", {"plant": "probe"}, {"value": value}, 1)])
    return types.SimpleNamespace(
        out=out.getvalue(), err=err.getvalue(), log="\n".join(capture.lines), c_file=c_file
    )


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_stack_up_park_makes_the_accounts_and_says_where_the_credentials_are(park, made):
    info = load_stack_info(park.dir)
    reader = info.park_account(PARK)
    # By hand: the park reader's name is gf-park-reader-<park>, a plant's gf-reader-<plant>.
    assert reader.username == "gf-park-reader-e10pr-park"
    for pid in (*IN_PARK, OUTSIDE):
        assert info.influx_plants[pid]["database"] == DB[pid]
        assert info.influx_plants[pid]["username"] == f"gf-reader-{pid}"
    assert {reader.username, "gf-reader-e10pr-a", "gf-reader-e10pr-b"} <= _users(info)
    assert {DB["e10pr-a"], DB["e10pr-b"]} <= _databases(info)
    assert _grants(info, reader.username) == {(DB["e10pr-a"], "READ"), (DB["e10pr-b"], "READ")}
    # The credentials are kept as the other accounts are: stack.json, mode 0600.
    state = park.dir / "stack.json"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert json.loads(state.read_text())["influxdb"]["parks"][PARK]["username"] == reader.username
    # The command says where they are and what Grafana needs, never the password itself.
    assert "READ on greenfoundry-e10pr-a, greenfoundry-e10pr-b and nothing else" in made.out
    assert f"in {state} (influxdb.parks.{PARK})" in made.out
    for name in (
        "GF_PARK_INFLUX_URL",
        "GF_PARK_INFLUX_READER_USER",
        "GF_PARK_INFLUX_READER_PASSWORD",
    ):
        assert name in made.out
    assert f"greenfoundry stack env --dir {park.dir} --park {PARK}" in made.out
    for text in (made.out, made.err, made.log):
        assert reader.password not in text
        for pid in IN_PARK:
            assert info.influx_plants[pid]["password"] not in text


def test_the_park_reader_reads_the_park_plants_and_nothing_else(park, made):
    info = load_stack_info(park.dir)
    reader = info.park_account(PARK)
    # The probes written above: 1.0 into plant a's database, 2.0 into plant b's.
    assert _read(info, reader, DB["e10pr-a"]) == [1.0]
    assert _read(info, reader, DB["e10pr-b"]) == [2.0]
    for database in (SHARED, DB[OUTSIDE]):
        with pytest.raises(StoreError, match="HTTP 403"):
            _read(info, reader, database)
    # A park plant's own reader still reads its plant only.
    own = info.influx_plants["e10pr-a"]
    plant_reader = types.SimpleNamespace(username=own["username"], password=own["password"])
    assert _read(info, plant_reader, DB["e10pr-a"]) == [1.0]
    with pytest.raises(StoreError, match="HTTP 403"):
        _read(info, plant_reader, DB["e10pr-b"])


def test_stack_env_prints_what_grafana_needs_on_request(park, made, capsys):
    info = load_stack_info(park.dir)
    assert main(["stack", "env", "--dir", str(park.dir), "--park", PARK]) == 0
    lines = capsys.readouterr().out.splitlines()
    env = dict(item.split("=", 1) for item in lines)
    reader = info.park_account(PARK)
    assert env == {
        "GF_PARK_INFLUX_URL": info.influx_url,
        "GF_PARK_INFLUX_READER_USER": reader.username,
        "GF_PARK_INFLUX_READER_PASSWORD": reader.password,
    }
    # What Grafana does with them: the data source's user and password read plant a.
    account = types.SimpleNamespace(
        username=env["GF_PARK_INFLUX_READER_USER"], password=env["GF_PARK_INFLUX_READER_PASSWORD"]
    )
    assert _read(info, account, DB["e10pr-a"]) == [1.0]
    # The names are the park dashboard's data sources' (dashboards/park.py).
    from greenfoundry.dashboards import park as park_dashboard

    assert (PARK_ENV_URL, PARK_ENV_USER, PARK_ENV_PASSWORD) == (
        park_dashboard.ENV_URL,
        park_dashboard.ENV_USER,
        park_dashboard.ENV_PASSWORD,
    )
    assert main(["stack", "env", "--dir", str(park.dir), "--park", "no-such-park"]) == 1
    captured = capsys.readouterr()
    assert "has no reader of park 'no-such-park'" in captured.err
    assert captured.out == ""


def test_a_rerun_changes_nothing(park, made, capsys):
    before = load_stack_info(park.dir)
    reader = before.park_account(PARK)
    assert main(park.argv) == 0
    out = capsys.readouterr().out
    after = load_stack_info(park.dir)
    assert after.park_account(PARK) == reader  # the same account, its password kept
    assert after.influx_plants == before.influx_plants
    assert _grants(after, reader.username) == {(DB["e10pr-a"], "READ"), (DB["e10pr-b"], "READ")}
    assert "revoked" not in out
    assert _read(after, reader, DB["e10pr-b"]) == [2.0]


def test_a_plant_that_left_the_park_loses_the_grant(park, made, capsys):
    three = [*park.files, made.c_file]
    with_c = _park(park.tmp, "e10pr-leave", three, "three.yaml")
    assert main(["stack", "up", "--dir", str(park.dir), "--park", with_c]) == 0
    info = load_stack_info(park.dir)
    reader = info.park_account("e10pr-leave")
    assert _read(info, reader, DB["e10pr-c"]) == [4.0]
    capsys.readouterr()
    without_c = _park(park.tmp, "e10pr-leave", park.files, "two.yaml")
    assert main(["stack", "up", "--dir", str(park.dir), "--park", without_c]) == 0
    assert "park e10pr-leave: READ on greenfoundry-e10pr-c revoked" in capsys.readouterr().out
    info = load_stack_info(park.dir)
    assert info.park_account("e10pr-leave") == reader
    assert _grants(info, reader.username) == {(DB["e10pr-a"], "READ"), (DB["e10pr-b"], "READ")}
    with pytest.raises(StoreError, match="HTTP 403"):
        _read(info, reader, DB["e10pr-c"])
    # The plant keeps its own database and its own reader.
    own = info.influx_plants["e10pr-c"]
    plant_reader = types.SimpleNamespace(username=own["username"], password=own["password"])
    assert _read(info, plant_reader, DB["e10pr-c"]) == [4.0]


@pytest.mark.parametrize(
    ("database", "says"),
    [
        ("greenfoundry", "is the local stack's shared database"),
        (None, "is the local stack's shared database (also the default when the key is left out)"),
        (
            "foundry_d",
            "is not a database the local stack makes for plant 'e10pr-shared'; expected "
            "'greenfoundry-e10pr-shared'",
        ),
    ],
)
def test_a_park_plant_on_the_shared_database_is_refused_and_nothing_is_made(
    park, made, capsys, database, says
):
    # The valid plant comes first in the file: it must not get its database either.
    good = _plant(park.tmp, "e10pr-d", DB["e10pr-d"])
    bad = _plant(park.tmp, "e10pr-shared", database)
    park_file = _park(park.tmp, "e10pr-refused", [good, bad])
    assert main(["stack", "up", "--dir", str(park.dir), "--park", park_file]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: influxdb.database: " in err
    assert says in err
    info = load_stack_info(park.dir)
    assert "e10pr-refused" not in info.influx_parks
    assert "e10pr-d" not in info.influx_plants
    assert "gf-park-reader-e10pr-refused" not in _users(info)
    assert DB["e10pr-d"] not in _databases(info)


def test_add_park_reader_refuses_the_shared_database_and_a_database_of_no_plant(park, made):
    stack = LocalStack(park.dir)
    with pytest.raises(StackError, match="'greenfoundry' is the stack's shared database"):
        stack.add_park_reader(PARK, [DB["e10pr-a"], SHARED])
    with pytest.raises(StackError, match="'elsewhere' is not the database of a plant"):
        stack.add_park_reader(PARK, ["elsewhere"])
    info = load_stack_info(park.dir)
    reader = info.park_account(PARK)
    assert _grants(info, reader.username) == {(DB["e10pr-a"], "READ"), (DB["e10pr-b"], "READ")}


def test_a_refused_park_file_starts_no_server(tmp_path, capsys):
    # The park file is checked before a server starts: no stack is left behind half made.
    good = _plant(tmp_path, "e10pr-d", DB["e10pr-d"])
    bad = _plant(tmp_path, "e10pr-shared", SHARED)
    park_file = _park(tmp_path, "e10pr-refused", [good, bad])
    stack_dir = tmp_path / "stack"
    try:
        assert main(["stack", "up", "--dir", str(stack_dir), "--park", park_file]) == 1
        assert f"{bad}: influxdb.database: 'greenfoundry'" in capsys.readouterr().err
        assert not (stack_dir / "stack.json").exists()
    finally:  # a regression that started the servers leaves none running
        if (stack_dir / "stack.json").exists():
            LocalStack(stack_dir).down()
