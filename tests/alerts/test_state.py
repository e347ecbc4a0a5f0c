"""The persisted alert state (alerts/state.py): a real SQLite file in a temporary folder, opened
by separate store objects as the engine and the `alerts ack` command open it."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from greenfoundry.alerts import machine as m
from greenfoundry.alerts.state import AlertStore
from greenfoundry.errors import BusyError, UsageError

T0 = 1_790_000_040 * m.NS
MIN = 60 * m.NS


def firing(key="S1/so2", rule_id="stack-alarm", at=T0) -> m.AlertState:
    return m.AlertState(
        key=key,
        rule_id=rule_id,
        state=m.FIRING,
        since_ns=at,
        pending_since_ns=at - 5 * MIN,
        firing_since_ns=at,
        alert_id=m.alert_id("state-test", rule_id, key, at),
        last_at_ns=at,
        last_value=0.83,
        last_notified_ns=at,
    )


def test_an_empty_store(tmp_path):
    with AlertStore(tmp_path / "new" / "dir") as store:
        assert store.load() == {} and store.cursor_ns() is None
    assert (tmp_path / "new" / "dir" / "alerts.sqlite").is_file()


def test_states_and_the_cursor_round_trip_through_a_new_store_object(tmp_path):
    a = firing()
    b = m.AlertState(key="IF1", rule_id="furnace-tier2", state=m.PENDING, last_at_ns=T0)
    with AlertStore(tmp_path) as store:
        store.commit([a, b], cursor_ns=T0)
    with AlertStore(tmp_path) as store:
        assert store.load() == {"stack-alarm|S1/so2": a, "furnace-tier2|IF1": b}
        assert store.cursor_ns() == T0
        # A later commit replaces a state, keeps the others, moves the cursor; None keeps it.
        b2 = dataclasses.replace(b, state=m.OK, last_at_ns=T0 + MIN)
        store.commit([b2], cursor_ns=T0 + MIN)
        store.commit([], cursor_ns=None)
    with AlertStore(tmp_path) as store:
        assert store.load() == {"stack-alarm|S1/so2": a, "furnace-tier2|IF1": b2}
        assert store.cursor_ns() == T0 + MIN


def test_the_file_is_in_wal_mode(tmp_path):
    AlertStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "alerts.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_a_commit_is_one_transaction(tmp_path):
    """A state that cannot be stored (a value JSON cannot hold) fails the commit, and nothing of
    it, not the states before it nor the cursor, is written."""
    good = firing()
    bad = dataclasses.replace(firing(key="S1/nox"), last_value=object())
    with AlertStore(tmp_path) as store:
        store.commit([], cursor_ns=T0)
        with pytest.raises(TypeError):
            store.commit([good, bad], cursor_ns=T0 + MIN)
        assert store.load() == {} and store.cursor_ns() == T0


def test_acknowledge_from_another_store_object(tmp_path):
    """The CLI acknowledges in its own process; the engine's next commit of its (unacknowledged)
    state keeps the ack, and apply_acks brings it into the engine's states."""
    a = firing()
    engine = AlertStore(tmp_path)
    engine.commit([a], cursor_ns=T0)
    states = engine.load()

    with AlertStore(tmp_path) as cli:
        t = cli.acknowledge(a.alert_id, "  Zhang San ", T0 + 90 * m.NS)
    assert t == m.Transition(
        "S1/so2", "stack-alarm", a.alert_id, "FIRING", "FIRING", T0 + 90 * m.NS, 0.83,
        "acknowledged", T0 - 5 * MIN,
    )  # fmt: skip

    # The engine has not reloaded: it commits its old view one minute later.
    later = dataclasses.replace(states[a.store_key], last_at_ns=T0 + MIN)
    engine.commit([later], cursor_ns=T0 + MIN)
    engine.close()
    with AlertStore(tmp_path) as store:
        loaded = store.load()[a.store_key]
        assert (loaded.acked_by, loaded.acked_at_ns, loaded.last_at_ns) == (
            "Zhang San",
            T0 + 90 * m.NS,
            T0 + MIN,
        )
        applied = store.apply_acks({a.store_key: later})
        assert applied[a.store_key].acked_by == "Zhang San"
        assert store.acks() == {a.alert_id: ("Zhang San", T0 + 90 * m.NS)}


def test_an_acknowledgement_ends_with_its_alert(tmp_path):
    a = firing()
    with AlertStore(tmp_path) as store:
        store.commit([a], cursor_ns=T0)
        store.acknowledge(a.alert_id, "x", T0 + 1)
        resolved = m.AlertState(key=a.key, rule_id=a.rule_id, state=m.OK, last_at_ns=T0 + MIN)
        store.commit([resolved], cursor_ns=T0 + MIN)
        assert store.acks() == {}
        # The same target firing again is a new alert, not acknowledged.
        again = firing(at=T0 + 10 * MIN)
        store.commit([again], cursor_ns=T0 + 10 * MIN)
        assert store.load()[a.store_key].acked_by is None


def test_acknowledge_refuses_an_unknown_a_resolved_or_an_acknowledged_alert(tmp_path):
    a = firing()
    with AlertStore(tmp_path) as store:
        store.commit([a, m.AlertState(key="IF1", rule_id="furnace-tier2")], cursor_ns=T0)
        with pytest.raises(UsageError, match="no firing alert has the id 'nope'"):
            store.acknowledge("nope", "x", T0)
        with pytest.raises(UsageError, match="--by"):
            store.acknowledge(a.alert_id, " ", T0)
        store.acknowledge(a.alert_id, "x", T0)
        with pytest.raises(UsageError, match="already acknowledged by x"):
            store.acknowledge(a.alert_id, "y", T0)
        store.commit([m.AlertState(key=a.key, rule_id=a.rule_id)], cursor_ns=T0 + MIN)
        with pytest.raises(UsageError, match="no firing alert has the id"):
            store.acknowledge(a.alert_id, "y", T0)


def test_a_locked_file_is_a_busy_error_not_a_hang(tmp_path):
    store = AlertStore(tmp_path)
    store.db.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(tmp_path / "alerts.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(BusyError, match="locked by another process"):
            store.commit([firing()], cursor_ns=T0)
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.commit([firing()], cursor_ns=T0)
    store.close()


def test_a_file_of_another_schema_is_refused(tmp_path):
    AlertStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "alerts.sqlite")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(UsageError, match="schema 99"):
        AlertStore(tmp_path)
