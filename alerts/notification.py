"""What a channel is given to send: one notification, already in a person's words.

The alert engine (alerts/engine.py) and the monthly snapshot (grade/snapshot.py) make these;
the channels (alerts/channels/*) only format and deliver them. A channel never computes a
threshold or a text of its own beyond laying these fields out in its peer's format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# What happened, from the channel's point of view.
EVENTS = (
    "firing",  # an alert started firing (PENDING held for `for`)
    "repeat",  # still firing, unacknowledged, `repeat_interval` after the last notification
    "resolved",  # back under the recovery threshold for `clear_for`
    "stale",  # the rule's data stopped (the deadman); never resolves a firing alert
    "acknowledged",  # someone acknowledged it (`greenfoundry alerts ack`)
    "snapshot",  # the monthly grade snapshot, with its report attached
)
SEVERITIES = ("info", "warning", "alarm", "critical")


@dataclass(frozen=True)
class Attachment:
    filename: str  # e.g. "demo-dip-2026-10.html"
    content_type: str  # e.g. "text/html; charset=utf-8"
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Notification:
    id: str  # the alert's id (stable across restarts and repeats), or the snapshot's id
    plant: str  # plant id
    plant_name: str
    event: str  # EVENTS
    severity: str  # SEVERITIES
    rule: str  # the rule's id ("snapshot" for a snapshot)
    subject: str  # one line: what crossed what, e.g. "Warning: stack S1 SO2 at 0.72 C ..."
    text: str  # the full message in plain text, several lines, a person's words
    markdown: str  # the same for the group robots (WeCom, DingTalk markdown)
    at_ns: int  # event time of what is notified, UTC ns
    since_ns: int | None = None  # when the condition began
    value: float | None = None
    limit: float | None = None  # the threshold crossed, in `unit`
    unit: str = ""
    trend: str | None = None  # e.g. "+0.04 C/h, 0.8 C in about 2 h"
    link: str | None = None  # a URL or a command to see more
    details: dict[str, Any] = field(default_factory=dict)  # stack, pollutant, furnace, ...
    attachments: tuple[Attachment, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (attachments by name and size only)."""
        d = dataclasses.asdict(self)
        d["attachments"] = [
            {"filename": a.filename, "content_type": a.content_type, "bytes": len(a.data)}
            for a in self.attachments
        ]
        return d
