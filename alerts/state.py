"""The alerts' persisted state: `state_dir/alerts.sqlite` (alerts/README.md, "Persistence").

One row per target (its `AlertState` as JSON), the event-time cursor the engine has evaluated
up to, and the acknowledgements. The engine commits every target's state and the cursor in one
transaction per tick, so a restart finds either the tick before or the tick after, never half of
one: it loads the states, goes on from the cursor, and the machine ignores samples at or before
each state's `last_at_ns`. A firing alert is neither lost nor fired again.

`greenfoundry alerts ack` runs in another process than the engine: it writes the
acknowledgement here (a row of `acks` and the acknowledged state). The engine's next commit keeps
an acknowledgement it did not know of (`commit` merges `acks` into the states it writes), and
`apply_acks` brings one into the engine's own states, so the repeats stop at its next tick.
SQLite in WAL mode lets the CLI read while the engine writes; writers wait up to 10 s.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from greenfoundry.alerts import machine
from greenfoundry.alerts.machine import AlertState, Transition
from greenfoundry.errors import BusyError, UsageError

SCHEMA_VERSION = 1
_FIELDS = {f.name for f in dataclasses.fields(AlertState)}


class AlertStore:
    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "alerts.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: each transaction is opened explicitly (BEGIN IMMEDIATE), so a commit
        # is one transaction whatever the sqlite3 module's defaults. Any thread may use the
        # connection: the metrics service ticks the alert engine on a pool of worker threads,
        # and the engine's lock serialises every use of its store (sqlite3 refuses a thread
        # other than the connection's maker by default).
        self.db = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            self.db.close()
            raise UsageError(
                f"{self.path}: alert state of schema {version}, this version reads "
                f"{SCHEMA_VERSION}; move the file away to start from a clean state"
            )
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS states (
                store_key TEXT PRIMARY KEY, alert_id TEXT, data TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS states_alert_id ON states (alert_id);
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER);
            CREATE TABLE IF NOT EXISTS acks (
                alert_id TEXT PRIMARY KEY, acked_by TEXT NOT NULL, acked_at_ns INTEGER NOT NULL);
            """
        )
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- reading -----------------------------------------------------------------------------

    def load(self) -> dict[str, AlertState]:
        """Every target's state, by "rule_id|target", acknowledgements included."""
        rows = self.db.execute("SELECT store_key, data FROM states").fetchall()
        states = {key: _state(data) for key, data in rows}
        return self.apply_acks(states)

    def cursor_ns(self) -> int | None:
        """The event time the engine has evaluated up to (None before its first commit)."""
        row = self.db.execute("SELECT value FROM meta WHERE name = 'cursor_ns'").fetchone()
        return None if row is None else row[0]

    def acks(self) -> dict[str, tuple[str, int]]:
        """alert id → (by, at_ns) of every acknowledgement of an alert still in the states."""
        rows = self.db.execute("SELECT alert_id, acked_by, acked_at_ns FROM acks").fetchall()
        return {aid: (by, at) for aid, by, at in rows}

    def apply_acks(self, states: dict[str, AlertState]) -> dict[str, AlertState]:
        """`states` with the acknowledgements of this file applied (a copy; the engine calls
        this each tick so an ack of the CLI mutes the repeats at once)."""
        acks = self.acks()
        out = {}
        for key, s in states.items():
            if s.alert_id in acks and s.acked_by is None:
                by, at = acks[s.alert_id]
                s = dataclasses.replace(s, acked_by=by, acked_at_ns=at)
            out[key] = s
        return out

    # -- writing -----------------------------------------------------------------------------

    def commit(self, states: Iterable[AlertState], cursor_ns: int | None) -> None:
        """Write these states and the cursor in one transaction (cursor None: left as it is).
        States not given keep their rows."""
        with self._transaction():
            acks = self.acks()
            for s in states:
                if s.alert_id in acks and s.acked_by is None:
                    by, at = acks[s.alert_id]
                    s = dataclasses.replace(s, acked_by=by, acked_at_ns=at)
                self.db.execute(
                    "INSERT INTO states (store_key, alert_id, data) VALUES (?, ?, ?) "
                    "ON CONFLICT (store_key) DO UPDATE SET alert_id = excluded.alert_id, "
                    "data = excluded.data",
                    (s.store_key, s.alert_id, json.dumps(dataclasses.asdict(s), sort_keys=True)),
                )
            if cursor_ns is not None:
                self.db.execute(
                    "INSERT INTO meta (name, value) VALUES ('cursor_ns', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (int(cursor_ns),),
                )
            # An acknowledgement ends with its alert.
            self.db.execute(
                "DELETE FROM acks WHERE alert_id NOT IN "
                "(SELECT alert_id FROM states WHERE alert_id IS NOT NULL)"
            )

    def acknowledge(
        self,
        alert_id: str,
        by: str,
        at_ns: int,
        *,
        then: Callable[[Transition, AlertState], None] | None = None,
    ) -> Transition:
        """Mark the firing alert `alert_id` acknowledged by `by` at `at_ns` (UTC ns). Raises
        UsageError when no target has that alert firing, or it is acknowledged already.

        `then(transition, acknowledged_state)` runs inside the transaction, before it commits
        (the CLI writes the gf_alert point there): when it raises, nothing is acknowledged, so
        the state and InfluxDB never disagree about an acknowledgement."""
        if not by.strip():
            raise UsageError("--by: give the name of who acknowledges")
        with self._transaction():
            rows = self.db.execute(
                "SELECT data FROM states WHERE alert_id = ?", (alert_id,)
            ).fetchall()
            if not rows:
                raise UsageError(
                    f"no firing alert has the id {alert_id!r}; see `greenfoundry alerts list "
                    "--firing` for the ids (a resolved alert cannot be acknowledged)"
                )
            state = self.apply_acks({"": _state(rows[0][0])})[""]
            try:
                new, transition = machine.acknowledge(state, by.strip(), at_ns)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            self.db.execute(
                "INSERT OR REPLACE INTO acks (alert_id, acked_by, acked_at_ns) VALUES (?, ?, ?)",
                (alert_id, new.acked_by, at_ns),
            )
            self.db.execute(
                "UPDATE states SET data = ? WHERE store_key = ?",
                (json.dumps(dataclasses.asdict(new), sort_keys=True), new.store_key),
            )
            if then is not None:
                then(transition, new)
        return transition

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self):
        return _Transaction(self.db, self.path)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error; a lock held too long is BusyError."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self.db, self.path = db, path

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise BusyError(
                f"{self.path}: the alert state is locked by another process: {exc}"
            ) from None

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")


def _state(data: str) -> AlertState:
    raw = json.loads(data)
    return AlertState(**{k: v for k, v in raw.items() if k in _FIELDS})
