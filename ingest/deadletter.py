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


class DeadLetterFile:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        self._fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


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
