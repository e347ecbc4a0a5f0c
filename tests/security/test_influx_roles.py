"""InfluxDB least privilege on the real 1.6.7: what each role's user of the local stack may do.

The stack makes an admin (set-up only) and one user per role with one grant on the plant's
database: ingest WRITE, metrics ALL (it reads readings and writes rollups), reader READ; a park
plant's database (`LocalStack.add_plant`) gives the ingest and metrics users the same grant
there, and a reader of its own. Each
component gets its store through `InfluxStore.from_config(cfg.influxdb, role=...)`. The
expected refusals are InfluxDB's own (HTTP 403 and its "not authorized" text, as 1.6.7 words
them); before the stack had roles every component used the admin, and every call succeeded.
"""

from __future__ import annotations

from contextlib import closing

import pytest

from greenfoundry.errors import StoreError
from greenfoundry.stack import INFLUX_DATABASE
from greenfoundry.store import InfluxStore, RejectedWriteError, quote_ident, where
from tests.plant import ALL_TIME, plant_config, store

pytestmark = pytest.mark.servers

TS_NS = 1_795_392_000_000_000_000  # 2026-11-23T00:00:00Z


def _line(plant_id: str, value: float) -> str:
    return f"sec_role_probe,plant={plant_id} value={value} {TS_NS}"


def _select(plant_id: str) -> str:
    return f"SELECT value FROM sec_role_probe {where({'plant': plant_id}, **ALL_TIME)}"


def _grants(store: InfluxStore, username: str) -> set[tuple[str, str]]:
    results = store.query_raw(f"SHOW GRANTS FOR {quote_ident(username)}", database="")
    return {tuple(v) for r in results for s in r.get("series", []) for v in s["values"]}


def _plant_databases(admin: InfluxStore) -> set[str]:
    """The databases `LocalStack.add_plant` made for park plants on this session's stack
    (other tests add them): the shared roles hold their grant on those too."""
    results = admin.query_raw("SHOW DATABASES", database="")
    names = {v[0] for r in results for s in r.get("series", []) for v in s["values"]}
    return {n for n in names if n.startswith(f"{INFLUX_DATABASE}-")}


def test_each_role_has_exactly_its_grant(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "sec-roles", role="ingest")
    db = cfg.influxdb.database
    with closing(store(stack)) as admin:
        dbs = {db} | _plant_databases(admin)
        # Each shared role holds one kind of grant, on the shared database and on each park
        # plant's database, and on nothing else.
        for role, privilege in (("ingest", "WRITE"), ("metrics", "ALL PRIVILEGES")):
            username = cfg.influxdb.users[role].username
            assert _grants(admin, username) == {(d, privilege) for d in dbs}, role
        # The stack's reader reads the shared database only; a park plant has its own reader.
        assert _grants(admin, cfg.influxdb.users["reader"].username) == {(db, "READ")}
        users = {
            tuple(v)
            for r in admin.query_raw("SHOW USERS", database="")
            for s in r["series"]
            for v in s["values"]
        }
        # Only the set-up account is an InfluxDB admin.
        assert {u for u, is_admin in users if is_admin} == {stack.influx_username}


def test_the_ingest_writes_but_cannot_read(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "sec-ingest", role="ingest")
    with closing(InfluxStore.from_config(cfg.influxdb, role="ingest")) as ingest:
        assert ingest.settings.username == stack.influx_account("ingest").username
        ingest.write_lines([_line("sec-ingest", 1.5)])
        with pytest.raises(StoreError, match=r"HTTP 403.*not authorized.*requires READ"):
            ingest.query(_select("sec-ingest"))
        with pytest.raises(StoreError, match="requires admin privilege"):
            ingest.query_raw("DROP MEASUREMENT sec_role_probe")
    with closing(InfluxStore.from_config(cfg.influxdb, role="metrics")) as metrics:
        assert metrics.query(_select("sec-ingest"))["value"].tolist() == [1.5]


def test_the_reader_reads_but_cannot_write(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "sec-reader", role="ingest")
    with closing(InfluxStore.from_config(cfg.influxdb, role="ingest")) as ingest:
        ingest.write_lines([_line("sec-reader", 2.5)])
    with closing(InfluxStore.from_config(cfg.influxdb, role="reader")) as reader:
        assert reader.query(_select("sec-reader"))["value"].tolist() == [2.5]
        with pytest.raises(RejectedWriteError) as refused:
            reader.write_lines([_line("sec-reader", 3.5)])
        assert refused.value.status == 403 and "not authorized to write" in str(refused.value)
        with pytest.raises(StoreError, match="requires WRITE"):
            reader.query_raw(
                f"DELETE FROM sec_role_probe {where({'plant': 'sec-reader'}, **ALL_TIME)}"
            )
        assert reader.query(_select("sec-reader"))["value"].tolist() == [2.5]


def test_the_metrics_user_reads_and_writes(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "sec-metrics", role="ingest")
    with closing(InfluxStore.from_config(cfg.influxdb, role="metrics")) as metrics:
        metrics.write_lines([_line("sec-metrics", 4.5)])
        assert metrics.query(_select("sec-metrics"))["value"].tolist() == [4.5]
        with pytest.raises(StoreError, match="requires admin privilege"):
            metrics.query_raw("CREATE DATABASE sec_other", database="")


def test_no_role_user_can_reach_another_database(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "sec-otherdb", role="ingest")
    for role in ("ingest", "metrics", "reader"):
        with (
            closing(InfluxStore.from_config(cfg.influxdb, role=role)) as s,
            pytest.raises(StoreError, match="not authorized"),
        ):
            s.query_raw("SELECT * FROM _internal..sec_role_probe", database="_internal")
