"""The rollup engine's local state: one SQLite file in ``metrics.state_dir``, and its lock.

What it keeps (all of it can be rebuilt from InfluxDB: delete the folder and the next start
reconciles the whole history):

* ``fingerprints``: COUNT and SUM of each input series per UTC hour, as the last computation
  used them. A run compares them with InfluxDB's to find late data (``metrics/README.md``).
* ``partials``: per rollup item (a furnace, a stack's pollutant) the exact partial sums of each
  computed hour and month, from which shifts, days, months, years and trailing 12 months are
  composed.
* ``dirty``: windows waiting to be (re)composed. A window is written here in the same
  transaction as the hours below it, so a process killed at any point finds its work again.
* ``computed``: the newest state of every window point written (for ``metrics status``).
* ``meta``: the sweep cursor, the config fingerprint the state was built with, caches.

The lock (``lock``, ``fcntl.flock``) is held by the process that computes (``metrics run``,
``metrics backfill``): a second one raises ``BusyError`` naming the holder's pid.
"""

from __future__ import annotations

import bisect
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from greenfoundry.errors import BusyError

SCHEMA = """
CREATE TABLE IF NOT EXISTS fingerprints (
    measurement TEXT NOT NULL, series TEXT NOT NULL, bucket INTEGER NOT NULL,
    count INTEGER NOT NULL, sum REAL,
    PRIMARY KEY (measurement, series, bucket)
);
CREATE TABLE IF NOT EXISTS partials (
    rollup TEXT NOT NULL, item TEXT NOT NULL, kind TEXT NOT NULL, start INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (rollup, item, kind, start)
);
CREATE TABLE IF NOT EXISTS dirty (
    kind TEXT NOT NULL, start INTEGER NOT NULL, PRIMARY KEY (kind, start)
);
CREATE TABLE IF NOT EXISTS computed (
    rollup TEXT NOT NULL, item TEXT NOT NULL, kind TEXT NOT NULL, start INTEGER NOT NULL,
    label TEXT NOT NULL, coverage REAL, status TEXT NOT NULL, at INTEGER NOT NULL, air TEXT,
    PRIMARY KEY (rollup, item, kind, start)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- A run reads the fingerprints of a time range of every series (and of a year of one
-- measurement, for note 4), and a window the partials of one kind over its time range for
-- every item: without these indexes they scan the whole history of the table, so a run's
-- cost would grow with the history kept.
CREATE INDEX IF NOT EXISTS fingerprints_by_bucket ON fingerprints (bucket);
CREATE INDEX IF NOT EXISTS fingerprints_by_measurement ON fingerprints (measurement, bucket);
CREATE INDEX IF NOT EXISTS partials_by_kind ON partials (rollup, kind, start);
"""


class Lock:
    """An exclusive lock on the state folder (``fcntl.flock``; released when the process ends,
    however it ends)."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "lock"
        self._fd: int | None = None

    def acquire(self) -> Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BusyError(
                f"another metrics process (pid {holder}) is computing this plant's rollups "
                f"(lock {self.path}); stop it first, or use `greenfoundry metrics status`"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class State:
    """The SQLite state (see the module docstring). One engine uses it at a time (the
    service serialises its runs), from whichever thread runs it."""

    def __init__(self, state_dir: Path, *, readonly: bool = False):
        self.dir = Path(state_dir)
        self.path = self.dir / "state.sqlite"
        if readonly and not self.path.exists():
            self.db = sqlite3.connect(":memory:")  # nothing computed yet: an empty state
        else:
            if not readonly:
                self.dir.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
        if not readonly or not self.path.exists():
            self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # ---- meta -------------------------------------------------------------------------------

    def get(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, key: str, value) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def reset(self) -> None:
        """Forget everything computed (the rules changed): the next reconcile redoes it all."""
        for table in ("fingerprints", "partials", "dirty", "computed"):
            self.db.execute(f"DELETE FROM {table}")

    # ---- fingerprints -----------------------------------------------------------------------

    def fingerprints(self, start_ns: int, end_ns: int) -> dict:
        rows = self.db.execute(
            "SELECT measurement, series, bucket, count, sum FROM fingerprints "
            "WHERE bucket >= ? AND bucket < ?",
            (start_ns, end_ns),
        )
        return {(m, s, b): (c, v) for m, s, b, c, v in rows}

    def set_fingerprints(self, rows: Iterable[tuple[str, str, int, int, float | None]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO fingerprints (measurement, series, bucket, count, sum) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    # ---- partials ---------------------------------------------------------------------------

    def set_partials(self, rows: Iterable[tuple[str, str, str, int, dict]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO partials (rollup, item, kind, start, data) VALUES (?,?,?,?,?)",
            ((r, i, k, s, json.dumps(d, allow_nan=False)) for r, i, k, s, d in rows),
        )

    def partials(self, rollup: str, kind: str, start_ns: int, end_ns: int) -> dict[str, list]:
        """item → [partial dict, …] of the ``kind`` partials starting in ``[start, end)``, in
        time order (so sums are taken in one order: the same every time)."""
        out: dict[str, list] = {}
        rows = self.db.execute(
            "SELECT item, data FROM partials WHERE rollup = ? AND kind = ? AND start >= ? "
            "AND start < ? ORDER BY item, start",
            (rollup, kind, start_ns, end_ns),
        )
        for item, data in rows:
            out.setdefault(item, []).append(json.loads(data))
        return out

    def partials_by_start(
        self, rollup: str, kind: str, start_ns: int, end_ns: int
    ) -> dict[str, tuple[list[int], list[dict]]]:
        """item → (starts, partials) of the ``kind`` partials starting in ``[start, end)``, in
        time order: what ``partials`` gives for any range inside this one, read and decoded
        once (``slice_partials``)."""
        out: dict[str, tuple[list[int], list[dict]]] = {}
        rows = self.db.execute(
            "SELECT item, start, data FROM partials WHERE rollup = ? AND kind = ? AND start >= ? "
            "AND start < ? ORDER BY item, start",
            (rollup, kind, start_ns, end_ns),
        )
        for item, start, data in rows:
            starts, parts = out.setdefault(item, ([], []))
            starts.append(start)
            parts.append(json.loads(data))
        return out

    # ---- dirty windows ----------------------------------------------------------------------

    def mark_dirty(self, windows: Iterable[tuple[str, int]]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO dirty (kind, start) VALUES (?, ?)", windows)

    def dirty(self, kind: str) -> list[int]:
        return [
            s
            for (s,) in self.db.execute(
                "SELECT start FROM dirty WHERE kind = ? ORDER BY start", (kind,)
            )
        ]

    def clean(self, kind: str, starts: Iterable[int]) -> None:
        self.db.executemany(
            "DELETE FROM dirty WHERE kind = ? AND start = ?", ((kind, s) for s in starts)
        )

    def dirty_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT kind, COUNT(*) FROM dirty GROUP BY kind"))

    # ---- computed ---------------------------------------------------------------------------

    def set_computed(self, rows: Iterable[tuple]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO computed (rollup, item, kind, start, label, coverage, status, "
            "at, air) VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )

    def newest_computed(self) -> list[tuple]:
        """(rollup, item, kind, start, label, coverage, status, at) of the newest window of
        every (rollup, item, kind)."""
        return list(
            self.db.execute(
                "SELECT c.rollup, c.item, c.kind, c.start, c.label, c.coverage, c.status, c.at "
                "FROM computed c JOIN (SELECT rollup, item, kind, MAX(start) AS s FROM computed "
                "GROUP BY rollup, item, kind) m ON c.rollup = m.rollup AND c.item = m.item AND "
                "c.kind = m.kind AND c.start = m.s ORDER BY c.rollup, c.item, c.kind"
            )
        )

    def commit(self) -> None:
        self.db.commit()

    def rollback(self) -> None:
        """Discard what was put since the last commit (a chunk whose points were not written)."""
        self.db.rollback()


def slice_partials(
    loaded: dict[str, tuple[list[int], list[dict]]], start_ns: int, end_ns: int
) -> dict[str, list]:
    """``State.partials`` of ``[start, end)`` from what ``State.partials_by_start`` read over a
    range holding it: the same items (only those with a partial there), in the same order."""
    out: dict[str, list] = {}
    for item, (starts, parts) in loaded.items():
        i, j = bisect.bisect_left(starts, start_ns), bisect.bisect_left(starts, end_ns)
        if i < j:
            out[item] = parts[i:j]
    return out
