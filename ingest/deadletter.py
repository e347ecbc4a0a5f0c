"""The dead-letter record: every rejected reading, with its reason and its raw payload.

Two sinks, written before the message is acknowledged:
- a JSON-lines file (one object per rejected reading, flushed and fsync'd per batch), the record
  an engineer greps and replays from;
- the `gf_deadletter` measurement in InfluxDB (tags plant, reason; fields topic, detail, index,
  payload), for dashboards and `greenfoundry status`. It goes through the same durable path as
  readings (InfluxDB or the spool).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from greenfoundry import store

MEASUREMENT = "gf_deadletter"
FILE_PAYLOAD_MAX = 256 * 1024  # bytes of raw payload kept in the file record
FIELD_PAYLOAD_MAX = 16 * 1024  # bytes kept in InfluxDB (1.x caps a string field at 64 KiB)


def file_record(reject, received_ns: int) -> dict:
    raw = reject.raw[:FILE_PAYLOAD_MAX]
    record = {
        "received": datetime.fromtimestamp(received_ns / 1e9, UTC).isoformat(),
        "received_ns": received_ns,
        "reason": reject.reason,
        "detail": reject.detail,
        "topic": reject.topic,
        "index": reject.index,
        "payload_bytes": len(reject.raw),
    }
    try:
        record["payload"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["payload_b64"] = base64.b64encode(raw).decode()
    if len(reject.raw) > FILE_PAYLOAD_MAX:
        record["payload_truncated"] = True
    return record


def retained_key(topic: str, payload: bytes) -> str:
    """What identifies a retained message: its topic and its payload, hashed."""
    h = hashlib.sha256(topic.encode("utf-8", errors="surrogateescape"))
    h.update(b"\0")
    h.update(payload)
    return h.hexdigest()


class DeadLetterFile:
    """The JSON-lines file, readable by its owner only (raw payloads), and beside it
    `<name>.retained`: the keys of retained messages whose rejects are recorded, so that the
    broker sending them again (at every new subscription) does not record them again."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = _open_private(self.path)
        self.retained_path = self.path.with_name(self.path.name + ".retained")
        try:
            with self.retained_path.open(encoding="utf-8") as fh:
                self.retained = {k.strip() for k in fh if k.strip()}
        except FileNotFoundError:
            self.retained = set()
        except OSError:
            self._fh.close()
            raise
        try:
            self._retained_fh = _open_private(self.retained_path)
        except OSError:
            self._fh.close()
            raise

    def append(self, records: list[dict]) -> None:
        """Make `records` durable."""
        if records:
            self._fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def mark_retained(self, retained_keys: list[str]) -> None:
        """Make the keys of retained messages durable: their dead letters are recorded. Called
        only once both sinks are durable (this file and the `gf_deadletter` points), since a
        marked message is never recorded again."""
        new = [k for k in retained_keys if k not in self.retained]
        if new:
            self._retained_fh.write("".join(k + "\n" for k in new))
            self._retained_fh.flush()
            os.fsync(self._retained_fh.fileno())
            self.retained.update(new)

    def close(self) -> None:
        self._fh.close()
        self._retained_fh.close()


def _open_private(path: Path):
    """`path` for appending, created 0600 and made 0600 if it was not."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return open(fd, "a", encoding="utf-8")  # held open for the run


def _visible(text: str) -> str:
    """A text as the point stores it. Line protocol has no newline in a field value, so a newline
    or a carriage return is stored as the two characters `\\n` or `\\r`: the point stays one line
    (the spool and the write path split on newlines). The file record keeps the exact text."""
    if "\n" in text or "\r" in text:
        return text.replace("\n", "\\n").replace("\r", "\\r")
    return text


def line(reject, plant: str, ts_ns: int) -> str:
    """One `gf_deadletter` point. `ts_ns` must be unique per point (the caller's clock + n)."""
    payload = reject.raw[:FIELD_PAYLOAD_MAX].decode("utf-8", errors="backslashreplace")
    fields = {
        "topic": _visible(reject.topic),
        "detail": _visible(reject.detail),
        "payload": _visible(payload),
        "payload_bytes": len(reject.raw),
    }
    if reject.index is not None:
        fields["index"] = reject.index
    return store.line(MEASUREMENT, {"plant": plant, "reason": reject.reason}, fields, ts_ns)
