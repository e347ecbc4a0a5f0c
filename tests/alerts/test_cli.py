"""`greenfoundry alerts list` and `greenfoundry alerts ack` against the session's real InfluxDB
(the `stack` fixture), each test with its own plant id. The gf_alert points are written by hand
in the schema of the session (tags plant, rule, target; one point per transition), so what
`list` prints is checked against points whose every value the test chose."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import time

from greenfoundry.alerts import machine as m
from greenfoundry.alerts.dispatch import Dispatcher
from greenfoundry.alerts.state import AlertStore
from greenfoundry.cli import main
from greenfoundry.store import line, where
from tests.plant import plant_config, store

NS = 1_000_000_000
MIN = 60 * NS


def point(plant_id, rule, target, at_ns, state, from_state, event="", alert_id="", **more):
    fields = {"alert_id": alert_id, "state": state, "from_state": from_state, "event": event,
              "severity": "warning", "kind": "stack", "limit": 0.7, "unit": "C",
              "message": f"{rule} {target} {state}", **more}  # fmt: skip
    return line("gf_alert", {"plant": plant_id, "rule": rule, "target": target}, fields, at_ns)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def setup(tmp_path, stack, plant_id):
    cfg = plant_config(tmp_path, stack, plant_id)
    return cfg, str(cfg.path)


def test_list_newest_first_and_only_this_plant(tmp_path, stack, capsys):
    cfg, path = setup(tmp_path, stack, "alerts-cli-list")
    now = time.time_ns() // MIN * MIN
    t1, t2, t3 = now - 30 * MIN, now - 20 * MIN, now - 10 * MIN
    aid = "stack-warning-aaaaaaaaaa"
    admin = store(stack)
    admin.write_lines([
        point(cfg.plant.id, "stack-warning", "melt-stack/particulate", t1, "PENDING", "OK",
              value=0.71, since_ns=t1),
        point(cfg.plant.id, "stack-warning", "melt-stack/particulate", t2, "FIRING", "PENDING",
              "firing", aid, value=0.74, since_ns=t1),
        point(cfg.plant.id, "deadman", "furnace_energy_kwh:if1", t3, "FIRING", "OK", "firing",
              "deadman-bbbbbbbbbb", value=960.0, since_ns=t3),
        # Another plant's point, and one of this plant 9 days ago (outside the default 7 days).
        point("alerts-cli-other", "stack-warning", "melt-stack/particulate", t3, "FIRING", "OK"),
        point(cfg.plant.id, "stack-alarm", "melt-stack/particulate", now - 9 * 86400 * NS,
              "FIRING", "PENDING", "firing", "stack-alarm-cccccccccc"),
    ])  # fmt: skip

    code, out, err = run(capsys, "alerts", "list", "--config", path, "--stack", str(stack.dir),
                         "--json")  # fmt: skip
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [(r["time_ns"], r["rule"], r["state"]) for r in rows] == [
        (t3, "deadman", "FIRING"),
        (t2, "stack-warning", "FIRING"),
        (t1, "stack-warning", "PENDING"),
    ]
    assert rows[1]["alert_id"] == aid and rows[1]["since_ns"] == t1
    assert rows[1]["value"] == 0.74 and rows[1]["event"] == "firing"
    assert rows[2]["alert_id"] == "" and rows[2]["plant"] == cfg.plant.id

    # The text: plant-local times (Asia/Shanghai, UTC+8), one line per transition, newest first.
    code, out, _ = run(capsys, "alerts", "list", "--config", path, "--stack", str(stack.dir))
    lines = out.splitlines()
    assert code == 0 and lines[0] == "time in Asia/Shanghai"
    assert lines[1].split()[:3] == ["time", "severity", "state"]
    local = time.strftime("%Y-%m-%d %H:%M", time.gmtime((t3 + 8 * 3600 * NS) // NS))
    assert (
        lines[2].startswith(local) and "OK→FIRING" in lines[2] and "deadman-bbbbbbbbbb" in lines[2]
    )
    assert lines[2].endswith("deadman furnace_energy_kwh:if1 FIRING")
    assert len(lines) == 5

    # --since reaches the older point (the plant-local day 10 days back).
    day = time.strftime("%Y-%m-%d", time.gmtime((now - 10 * 86400 * NS) // NS + 8 * 3600))
    code, out, _ = run(capsys, "alerts", "list", "--config", path, "--stack", str(stack.dir),
                       "--since", day, "--json")  # fmt: skip
    assert [r["rule"] for r in json.loads(out)][-1] == "stack-alarm"


def test_list_firing_shows_what_fires_now_with_its_acknowledgement(tmp_path, stack, capsys):
    cfg, path = setup(tmp_path, stack, "alerts-cli-firing")
    now = time.time_ns() // MIN * MIN
    p, st = cfg.plant.id, "melt-stack/particulate"
    admin = store(stack)
    admin.write_lines([
        # Resolved: not firing.
        point(p, "stack-alarm", st, now - 50 * MIN, "FIRING", "PENDING", "firing", "a-1"),
        point(p, "stack-alarm", st, now - 40 * MIN, "OK", "FIRING", "resolved", "a-1"),
        # Firing, acknowledged, then STALE over the firing alert: still firing, acked.
        point(p, "stack-warning", st, now - 30 * MIN, "FIRING", "PENDING", "firing", "w-1"),
        point(p, "stack-warning", st, now - 25 * MIN, "FIRING", "FIRING", "acknowledged", "w-1",
              acked_by="Li Wei"),
        point(p, "stack-warning", st, now - 20 * MIN, "STALE", "FIRING", "stale", "w-1"),
        # STALE over a pending state: no alert id, not firing.
        point(p, "stack-critical", st, now - 15 * MIN, "STALE", "PENDING"),
        # Firing, not acknowledged, the newest.
        point(p, "deadman", "furnace_energy_kwh:if1", now - 10 * MIN, "FIRING", "OK", "firing",
              "d-1"),
    ])  # fmt: skip
    code, out, err = run(capsys, "alerts", "list", "--firing", "--config", path, "--stack",
                         str(stack.dir), "--json")  # fmt: skip
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [(r["alert_id"], r["state"], r["acked_by"]) for r in rows] == [
        ("d-1", "FIRING", None),
        ("w-1", "STALE", "Li Wei"),
    ]
    code, out, _ = run(capsys, "alerts", "list", "--firing", "--config", path, "--stack",
                       str(stack.dir))  # fmt: skip
    assert "acked by" in out.splitlines()[1] and "Li Wei" in out.splitlines()[3]


def test_list_with_nothing_stored_says_so(tmp_path, stack, capsys):
    _, path = setup(tmp_path, stack, "alerts-cli-empty")
    code, out, _ = run(capsys, "alerts", "list", "--config", path, "--stack", str(stack.dir))
    assert code == 0 and out.startswith("no alert transition since ")
    code, out, _ = run(capsys, "alerts", "list", "--firing", "--config", path, "--stack",
                       str(stack.dir))  # fmt: skip
    assert code == 0 and out.startswith("no alert fires since ")
    code, _, err = run(capsys, "alerts", "list", "--config", path, "--stack", str(stack.dir),
                       "--since", "2999-01-01")  # fmt: skip
    assert code == 2 and err.startswith("error: --since 2999-01-01: a day in the future")


def firing_state(cfg, at_ns):
    key, rule = "melt-stack/particulate", "stack-warning"
    return m.AlertState(
        key=key, rule_id=rule, state=m.FIRING, since_ns=at_ns, pending_since_ns=at_ns - 5 * MIN,
        firing_since_ns=at_ns, alert_id=m.alert_id(cfg.plant.id, rule, key, at_ns),
        last_at_ns=at_ns, last_value=0.74, last_notified_ns=at_ns,
    )  # fmt: skip


def test_ack_marks_the_state_and_writes_the_transition(tmp_path, stack, capsys):
    cfg, path = setup(tmp_path, stack, "alerts-cli-ack")
    at = time.time_ns() // MIN * MIN - 10 * MIN
    state = firing_state(cfg, at)
    with AlertStore(cfg.alerts.state_dir) as s:
        s.commit([state], cursor_ns=at)

    before = time.time_ns()
    code, out, err = run(capsys, "alerts", "ack", state.alert_id, "--by", "Li Wei", "--config",
                         path, "--stack", str(stack.dir))  # fmt: skip
    after = time.time_ns()
    assert (code, err) == (0, "")
    assert out.startswith(f"acknowledged {state.alert_id} (stack-warning, melt-stack/particulate)")
    with AlertStore(cfg.alerts.state_dir) as s:
        acked = s.load()[state.store_key]
    assert acked.acked_by == "Li Wei" and before <= acked.acked_at_ns <= after

    df = store(stack).query(
        "SELECT * FROM gf_alert "
        + where({"plant": cfg.plant.id}, start_ns=at - 3600 * NS, end_ns=after + NS)
    )
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["rule"], row["target"], row["alert_id"]) == (
        "stack-warning", "melt-stack/particulate", state.alert_id,
    )  # fmt: skip
    assert (row["state"], row["from_state"], row["event"], row["acked_by"]) == (
        "FIRING", "FIRING", "acknowledged", "Li Wei",
    )  # fmt: skip
    assert row["time"].value == acked.acked_at_ns
    assert row["message"].startswith("Acknowledged by Li Wei: warning — stack melt-stack")

    # The notice waits in the outbox for the service's dispatcher, which sends it to the rule's
    # channels (the demo's stack-warning: log and the jsonl journal).
    service = Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir)
    try:
        assert service.flush(10.0)
    finally:
        service.close()
    journal = (tmp_path / "var/alerts/notifications.jsonl").read_text().splitlines()
    (sent,) = [json.loads(x) for x in journal]
    assert (sent["id"], sent["event"], sent["subject"]) == (
        state.alert_id, "acknowledged", row["message"],
    )  # fmt: skip

    # Twice: refused, exit 2, nothing more written.
    code, _, err = run(capsys, "alerts", "ack", state.alert_id, "--by", "Wang", "--config", path,
                       "--stack", str(stack.dir))  # fmt: skip
    assert code == 2 and err == f"error: alert {state.alert_id} is already acknowledged by Li Wei\n"
    code, _, err = run(capsys, "alerts", "ack", "nope-1", "--by", "Wang", "--config", path,
                       "--stack", str(stack.dir))  # fmt: skip
    assert code == 2 and err.startswith("error: no firing alert has the id 'nope-1'")
    again = store(stack).query(
        "SELECT * FROM gf_alert "
        + where({"plant": cfg.plant.id}, start_ns=at - 3600 * NS, end_ns=time.time_ns() + NS)
    )
    assert len(again) == 1


def test_ack_is_not_recorded_when_influxdb_refuses_the_point(tmp_path, stack, capsys):
    """The metrics user's password is wrong in this copy of the stack's file: InfluxDB refuses
    the write (401), and the acknowledgement is rolled back with it."""
    cfg, path = setup(tmp_path, stack, "alerts-cli-ack-refused")
    at = time.time_ns() // MIN * MIN - 10 * MIN
    state = firing_state(cfg, at)
    with AlertStore(cfg.alerts.state_dir) as s:
        s.commit([state], cursor_ns=at)
    bad = tmp_path / "bad-stack"
    bad.mkdir()
    info = json.loads((stack.dir / "stack.json").read_text())
    info["influxdb"]["users"]["metrics"]["password"] = "not-the-password"
    (bad / "stack.json").write_text(json.dumps(info))

    code, _, err = run(capsys, "alerts", "ack", state.alert_id, "--by", "Li Wei", "--config",
                       path, "--stack", str(bad))  # fmt: skip
    assert code == 1 and err.startswith("error: InfluxDB refused the write (HTTP 401)")
    with AlertStore(cfg.alerts.state_dir) as s:
        assert s.load()[state.store_key].acked_by is None and s.acks() == {}
    db = sqlite3.connect(cfg.alerts.state_dir / "alerts.sqlite")
    assert db.execute("SELECT count(*) FROM acks").fetchone()[0] == 0
    db.close()
    shutil.rmtree(bad)


def test_alerts_without_a_subcommand_prints_its_help(capsys):
    code, out, _ = run(capsys, "alerts")
    assert code == 2 and "list" in out and "ack" in out


def test_ack_of_an_alert_whose_rule_left_the_config_is_refused(tmp_path, stack, capsys):
    cfg, path = setup(tmp_path, stack, "alerts-cli-ack-gone")
    at = time.time_ns() // MIN * MIN - 10 * MIN
    gone = dataclasses.replace(firing_state(cfg, at), rule_id="retired-rule", alert_id="r-1")
    with AlertStore(cfg.alerts.state_dir) as s:
        s.commit([gone], cursor_ns=at)
    code, _, err = run(capsys, "alerts", "ack", "r-1", "--by", "Li Wei", "--config", path,
                       "--stack", str(stack.dir))  # fmt: skip
    assert code == 2 and "rule retired-rule of melt-stack/particulate is no longer" in err
    with AlertStore(cfg.alerts.state_dir) as s:
        assert s.load()[gone.store_key].acked_by is None


def test_list_firing_ignores_an_acknowledgement_stamped_after_the_resolution(
    tmp_path, stack, capsys
):
    # `alerts ack` stamps its point with the wall clock, the engine its transitions with event
    # time, which lags the clock (by a step and a tick live, by hours in a catch-up). An alert
    # acknowledged at 10:00:05 that the engine resolves at event time 10:00:00 has the
    # acknowledgement as its newest point: it is resolved, not firing.
    cfg, path = setup(tmp_path, stack, "alerts-cli-ack-after-resolve")
    now = time.time_ns() // MIN * MIN
    p, st = cfg.plant.id, "melt-stack/particulate"
    store(stack).write_lines([
        point(p, "stack-warning", st, now - 30 * MIN, "FIRING", "PENDING", "firing", "w-2"),
        point(p, "stack-warning", st, now - 10 * MIN, "OK", "FIRING", "resolved", "w-2"),
        point(p, "stack-warning", st, now - 5 * MIN, "FIRING", "FIRING", "acknowledged", "w-2",
              acked_by="Li Wei"),
        # Acknowledged and still firing: shown, with who acknowledged it.
        point(p, "stack-alarm", st, now - 20 * MIN, "FIRING", "PENDING", "firing", "a-2"),
        point(p, "stack-alarm", st, now - 4 * MIN, "FIRING", "FIRING", "acknowledged", "a-2",
              acked_by="Zhang San"),
    ])  # fmt: skip
    code, out, err = run(capsys, "alerts", "list", "--firing", "--config", path, "--stack",
                         str(stack.dir), "--json")  # fmt: skip
    assert (code, err) == (0, "")
    assert [(r["alert_id"], r["state"], r["acked_by"]) for r in json.loads(out)] == [
        ("a-2", "FIRING", "Zhang San")
    ]
