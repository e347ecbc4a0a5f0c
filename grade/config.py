"""`report:` of the plant config: the monthly grade snapshot and its report (grade/snapshot.py).

Every key is optional:

* ``dir``: where snapshots are kept, relative to the plant file's folder (default
  ``var/reports``); each plant's in ``<dir>/<plant>/``.
* ``lateness``: plant-local time of day on the 1st, ``HH:MM``, after which the month just ended
  is due (default ``06:00``): late readings of the month's last hours have time to arrive and
  the metrics to compose the month first.
* ``channels``: names of ``alerts.channels`` the snapshot is sent through (default none).
* ``pdf``: also print the HTML report to PDF with headless Chromium (default false).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = "var/reports"
DEFAULT_LATENESS = "06:00"
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)\Z")


@dataclass(frozen=True)
class ReportConfig:
    dir: Path  # absolute: the plant file's folder joined with `report.dir`
    lateness: dt.time  # plant-local time on the 1st after which last month's snapshot is due
    channels: tuple[str, ...]  # names of alerts.channels
    pdf: bool


def _channel_names(alerts) -> set[str] | None:
    """The names of the alerts section's channels, or None when it has none to check against
    (no `alerts:` yet, or an alerts config that does not list channels)."""
    channels = getattr(alerts, "channels", None)
    if channels is None:
        return None
    if isinstance(channels, dict):
        return {str(k) for k in channels}
    return {getattr(c, "name", c) for c in channels}


def parse_report(node, cfg, base, env: dict[str, str] | None) -> ReportConfig:
    """The `report:` section (an empty node when absent): every key checked here, at start."""
    folder = node.text("dir", DEFAULT_DIR)
    text = node.text("lateness", DEFAULT_LATENESS)
    m = _HHMM.match(text)
    if not m:
        node.refuse("lateness", text, 'a plant-local time of day "HH:MM", quoted, e.g. "06:00"')
    lateness = dt.time(int(m.group(1)), int(m.group(2)))
    channels = node.texts("channels")
    if len(set(channels)) != len(channels):
        node.refuse("channels", list(channels), "each channel name once")
    known = _channel_names(getattr(cfg, "alerts", None))
    for name in channels:
        if known is not None and name not in known:
            allowed = ", ".join(sorted(known)) or "none are configured"
            node.fail(
                f"{name!r} is not a channel of alerts.channels; expected one of: {allowed}",
                "channels",
            )
    pdf = node.boolean("pdf", False)
    node.done()
    path = Path(folder).expanduser()
    return ReportConfig(
        dir=path if path.is_absolute() else (Path(base) / path).resolve(),
        lateness=lateness,
        channels=channels,
        pdf=pdf,
    )
