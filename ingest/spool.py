"""The local on-disk spool: where readings wait, durably and in order, while InfluxDB is away.

Each batch is one file of line protocol, written to a temporary name, fsync'd, renamed to the next
sequence number and made durable with an fsync of the directory, so a batch is either wholly in
the spool or not there at all, whatever crash happens in between. A message is acknowledged to
the broker only once its batch is in InfluxDB or here.

Replay reads the oldest files first, a bounded number of lines at a time, so memory stays bounded
however long the outage; a file is deleted only after InfluxDB has accepted it. A file name
carries its sequence number, its line count and how many of those lines are readings (the rest
are dead letters and self-metrics): `00000000000000000042-5000-4998.lp`.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections import deque
from pathlib import Path

from greenfoundry.errors import BusyError


class SpoolBusyError(BusyError):
    """Another process holds this spool."""


class Spool:
    """The spool in `directory`. One process owns it (an exclusive lock on `.lock`, held for the
    life of the object); `readonly=True` only counts what is there, for `greenfoundry status`."""

    def __init__(self, directory: str | os.PathLike, *, readonly: bool = False):
        self.dir = Path(directory)
        self._lock_fd = None
        if not readonly:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.dir, 0o700)  # readings of the plant: the owner's only
            self._lock_fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                raise SpoolBusyError(
                    f"the spool {self.dir} is in use by another ingest process; give each "
                    "process its own spool (greenfoundry ingest --instance NAME)"
                ) from None
            stale = list(self.dir.glob("*.tmp"))
            for path in stale:  # a batch whose write never completed: never acknowledged
                path.unlink()
            if stale:
                _fsync_dir(self.dir)
        files = sorted(p for p in self.dir.glob("*.lp") if _NAME.match(p.name))
        self._files: deque[tuple[Path, int, int]] = deque((p, *_counts(p)) for p in files)
        self._next = (_seq(files[-1]) + 1) if files else 0
        self.pending_lines = sum(n for _, n, _ in self._files)
        self.pending_readings = sum(r for _, _, r in self._files)

    def __len__(self) -> int:
        return len(self._files)

    def append(self, lines: list[str], readings: int) -> None:
        """Make `lines` (of which `readings` are readings) durable as the newest batch.
        Raises OSError if the disk fails."""
        if not lines:
            return
        body = ("\n".join(lines) + "\n").encode()
        name = f"{self._next:020d}-{len(lines)}-{readings}.lp"
        tmp = self.dir / (name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            # A full disk: a partial batch file would only take the space the next try needs.
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        final = self.dir / name
        os.replace(tmp, final)
        _fsync_dir(self.dir)
        self._next += 1
        self._files.append((final, len(lines), readings))
        self.pending_lines += len(lines)
        self.pending_readings += readings

    def peek(self, max_lines: int) -> tuple[list[Path], bytes, int]:
        """The oldest batches, whole, up to `max_lines` lines (at least one batch):
        their paths, their line protocol, and how many readings it holds."""
        paths, parts, total, readings = [], [], 0, 0
        for path, n, r in self._files:
            if paths and total + n > max_lines:
                break
            paths.append(path)
            parts.append(path.read_bytes())
            total += n
            readings += r
        return paths, b"".join(parts), readings

    def drop(self, paths: list[Path]) -> None:
        """Forget the oldest batches, once InfluxDB has them."""
        for path in paths:
            head, n, r = self._files[0]
            if head != path:
                # A bug, not a user's condition: only this object changes the queue, and its one
                # owner drops what it peeked, oldest first. So no domain error; and raised, not
                # asserted, so that `python -O` cannot turn it into deleting the wrong batch.
                raise RuntimeError(f"spool: dropping {path.name} out of order (oldest {head.name})")
            path.unlink(missing_ok=True)
            self._files.popleft()
            self.pending_lines -= n
            self.pending_readings -= r
        if paths:
            _fsync_dir(self.dir)

    def close(self) -> None:
        """Release the spool for another process."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


_NAME = re.compile(r"\d{20}-\d+-\d+\.lp\Z")


def _seq(path: Path) -> int:
    return int(path.name.split("-", 1)[0])


def _counts(path: Path) -> tuple[int, int]:
    """(lines, readings) from the name (`_NAME` has checked its form)."""
    parts = path.stem.split("-")
    return int(parts[1]), int(parts[2])


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
