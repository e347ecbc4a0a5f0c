"""The `log` channel: one line per notification in the process's log (alerts/channels/log/README.md).

The line goes to the logger `greenfoundry.alerts` at a level that follows the severity of what
is notified (warning → WARNING, alarm → ERROR, critical → CRITICAL, info → INFO). News that
something got better (resolved, acknowledged) and snapshots are logged at INFO whatever the
rule's severity: a log watcher that pages on CRITICAL must not page because an alert cleared.
"""

from __future__ import annotations

import logging

from greenfoundry.alerts.notification import Notification

TYPE = "log"
LOGGER = "greenfoundry.alerts"
LEVELS = {
    "info": logging.INFO,
    "warning": logging.WARNING,
    "alarm": logging.ERROR,
    "critical": logging.CRITICAL,
}
# Events that report an improvement or a report, not a problem: INFO whatever the severity.
CALM_EVENTS = ("resolved", "acknowledged", "snapshot")


def level(notification: Notification) -> int:
    """The logging level of a notification's line."""
    if notification.event in CALM_EVENTS:
        return logging.INFO
    return LEVELS.get(notification.severity, logging.WARNING)


def line(notification: Notification) -> str:
    """The line: event, severity, plant, alert id, then the subject (one line: a subject with a
    line break is joined, so that one notification stays one log line)."""
    subject = " ".join(notification.subject.split())
    return (
        f"alert {notification.event} {notification.severity} plant={notification.plant} "
        f"id={notification.id}: {subject}"
    )


class LogChannel:
    """Writes each notification as one log line; it cannot fail (logging never raises)."""

    type = TYPE

    def __init__(self, name: str, logger: logging.Logger | None = None):
        self.name = name
        self.logger = logger or logging.getLogger(LOGGER)

    def send(self, notification: Notification) -> None:
        self.logger.log(
            level(notification),
            "%s",
            line(notification),
            extra={"alert_id": notification.id, "alert_event": notification.event},
        )

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"LogChannel({self.name!r})"


def parse(node, cfg, env: dict[str, str] | None, name: str) -> LogChannel:
    """`alerts.channels.<name>` of type log: no key but `type`."""
    node.choice("type", (TYPE,), TYPE)
    node.done()
    return LogChannel(name)
