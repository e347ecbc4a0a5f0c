"""The dispatcher: every notification reaches every channel it names, durably, in order, and a
slow or dead channel never holds up the others (alerts/channels/README.md).

`Dispatcher.submit` writes the notification and one delivery per channel to an outbox (SQLite,
`state_dir/outbox.sqlite`, WAL) in one transaction and returns: once it has returned, the
notification survives a crash or a restart. Each channel has its own worker thread that takes
that channel's deliveries oldest first and calls `Channel.send`:

- sent: the delivery leaves the outbox;
- `ChannelError`: tried again after the next delay of the backoff schedule (the last delay
  repeated), until the channel's `RetryPolicy` gives up (a number of retries or an age, the first
  reached), then dropped with one ERROR line and counted in `failed`;
- `PermanentChannelError` (or any other exception, which is a channel's bug): dropped at once,
  with one ERROR line, counted in `failed`.

Delivery is at least once: a crash between a peer's answer and the outbox's delete sends that
notification again after the restart. A channel's deliveries are sent in the order submitted, so
while its oldest is retried the later ones wait (an alert's resolution never overtakes its
firing); the other channels go on.

Log lines never show a secret: a channel's errors name the channel, never its URL, and every
text logged passes through `mask_secrets` (a URL's query values and user info are masked).
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenfoundry.alerts.channels.base import Channel, ChannelError, PermanentChannelError
from greenfoundry.alerts.config import parse_duration
from greenfoundry.alerts.notification import Attachment, Notification
from greenfoundry.errors import BusyError

log = logging.getLogger("greenfoundry.alerts")

BACKOFF_S = (1, 2, 5, 15, 60)
# A ChannelError may carry `retry_after_s` (the peer's Retry-After); honoured up to this.
MAX_RETRY_AFTER_S = 3600.0


# --------------------------------------------------------------------------- retry policy


@dataclass(frozen=True)
class RetryPolicy:
    """How long a channel's failing delivery is tried again before it is dropped: at most
    `retries` retries after the first attempt, and none once the notification is older than
    `retry_for_s` (whichever comes first). Every delivery gets its first attempt."""

    retries: int = 100
    retry_for_s: float = 86400.0


DEFAULT_RETRY = RetryPolicy()


def duration_s(node, name: str, default: Any) -> Any:
    """A duration key, in the syntax of the rules' durations (`alerts.config.parse_duration`:
    "90s", "5m", "2h", "1d" or whole seconds)."""
    value = node.get(name, default)
    if value is default:
        return value
    seconds = parse_duration(value)
    if seconds is None:
        node.refuse(name, value, 'a duration such as "90s", "5m", "2h", "1d" or whole seconds')
    return float(seconds)


def parse_retry(node) -> RetryPolicy:
    """The keys every channel that can fail accepts: `retries` (a whole number, 0 = drop after
    the first failed attempt) and `retry_for` (a duration)."""
    return RetryPolicy(
        retries=node.number("retries", DEFAULT_RETRY.retries, low=0, high=10**6, integer=True),
        retry_for_s=duration_s(node, "retry_for", DEFAULT_RETRY.retry_for_s),
    )


# --------------------------------------------------------------------------- masking

# A URL's user info ("user:password@") and the value of every query parameter: webhook URLs of
# chat robots carry their key or token there (`?key=`, `?access_token=`, `&sign=`).
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_QUERY_RE = re.compile(r"([?&][^=&#\s]+=)[^&#\s]*")
# Key-like words followed by a value, outside URLs too ("token=abc", "password: abc").
_WORD_RE = re.compile(
    r"(?i)\b((?:access_)?token|secret|password|passwd|api[_-]?key|key|sign(?:ature)?)"
    r"(\s*[=:]\s*)([^\s&,;'\"]+)"
)


def mask_secrets(text: str) -> str:
    """`text` with URL user info, query values and `token=…`-like values replaced by `***`."""
    text = _USERINFO_RE.sub(r"\1***@", text)
    text = _QUERY_RE.sub(r"\1***", text)
    return _WORD_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


# --------------------------------------------------------------------------- JSON


def _plain(value: Any) -> Any:
    """`value` with what JSON cannot carry made plain: a non-finite float becomes None (JSON
    has no NaN; strict parsers refuse the token), a numpy or pandas scalar its Python value,
    a date its ISO text, anything else unknown its text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return _plain(value.item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def json_text(data: Any) -> str:
    """The JSON the channels send and the outbox keeps: UTF-8 text as it is (not \\u escapes),
    never a NaN token, never a TypeError for a value from numpy or pandas in `details`."""
    return json.dumps(_plain(data), ensure_ascii=False, allow_nan=False)


# --------------------------------------------------------------------------- the outbox


def encode(notification: Notification) -> str:
    """A notification as outbox text: every field, attachments' bytes in base64."""
    d = dataclasses.asdict(notification)
    d["attachments"] = [
        {
            "filename": a.filename,
            "content_type": a.content_type,
            "data_b64": base64.b64encode(a.data).decode("ascii"),
        }
        for a in notification.attachments
    ]
    return json_text(d)


def decode(text: str) -> Notification:
    d = json.loads(text)
    d["attachments"] = tuple(
        Attachment(a["filename"], a["content_type"], base64.b64decode(a["data_b64"]))
        for a in d["attachments"]
    )
    return Notification(**d)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL,             -- encode(notification)
    submitted_s REAL NOT NULL       -- clock() at submit: the age retry_for is measured from
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- submit order, never reused
    notification INTEGER NOT NULL REFERENCES notifications(id),
    channel TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,     -- failed attempts so far
    due_s REAL NOT NULL,                     -- clock() of the next attempt
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_by_channel ON deliveries (channel, seq);
"""


@dataclass
class _Counters:
    sent: int = 0
    failed: int = 0  # deliveries dropped: refused for good, a channel's bug, or retries used up
    attempts_failed: int = 0  # failed attempts, retried or not
    last_error: str | None = None


@dataclass(frozen=True)
class _Delivery:
    seq: int
    notification_id: int
    attempts: int
    due_s: float
    submitted_s: float
    body: str


class Dispatcher:
    """Delivers notifications to channels through a durable outbox, one worker thread per
    channel (see the module docstring).

    `backoff_s` is the wait after the 1st, 2nd, … failed attempt of a delivery, its last value
    repeated; a channel's `retry` attribute (a `RetryPolicy`, `DEFAULT_RETRY` when it has none)
    says when to give up. `clock` gives the time in seconds (default `time.time`); the outbox
    stores its due times on it, so they hold across a restart.

    One sending dispatcher per `state_dir` (a lock file; a second one raises `BusyError`).
    `deliver=False` makes a dispatcher that only writes the outbox, for a short-lived process
    (a CLI command) beside the running service, whose workers pick its notifications up
    within `poll_s`."""

    def __init__(
        self,
        channels: Mapping[str, Channel],
        state_dir: Path,
        *,
        backoff_s: Iterable[float] = BACKOFF_S,
        clock: Callable[[], float] | None = None,
        deliver: bool = True,
        poll_s: float = 2.0,
    ):
        self.channels = dict(channels)
        self.backoff_s = tuple(float(s) for s in backoff_s)
        if not self.backoff_s or min(self.backoff_s) < 0:
            raise ValueError(f"backoff_s must be delays of 0 s or more, got {self.backoff_s}")
        self.clock = clock or time.time
        self.poll_s = poll_s
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        if deliver:
            self._take_lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.state_dir / "outbox.sqlite",
            isolation_level=None,
            check_same_thread=False,
            timeout=30,
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a submit that returned is on disk even after a power cut, not only a crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        # One lock for the connection and every counter; each worker waits on it between
        # deliveries and is woken by a submit, a delivery's end or close().
        self._cond = threading.Condition()
        self._closing = False
        self._counters = {name: _Counters() for name in self.channels}
        self._threads: list[threading.Thread] = []
        if deliver:
            self._report_outbox()
            for name in self.channels:
                thread = threading.Thread(
                    target=self._work, args=(name,), name=f"gf-alerts-{name}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _take_lock(self) -> None:
        path = self.state_dir / "outbox.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BusyError(
                f"{path}: another dispatcher (of this process or another) is sending this "
                "outbox's notifications; share one per state_dir"
            ) from None
        self._lock_fd = fd

    def _report_outbox(self) -> None:
        """What the outbox holds at start: left from before a restart, sent now."""
        rows = self._db.execute(
            "SELECT channel, COUNT(*) FROM deliveries GROUP BY channel ORDER BY channel"
        ).fetchall()
        for channel, n in rows:
            if channel in self.channels:
                log.info("alerts outbox: %d notification(s) for channel %s to send", n, channel)
            else:
                # Kept, not dropped: the channel may be back in the config at the next start.
                log.warning(
                    "alerts outbox: %d notification(s) for channel %s wait, but no channel of "
                    "that name is configured",
                    n,
                    channel,
                )

    # -- the caller's side ------------------------------------------------------------------

    def submit(self, notification: Notification, channel_names: Iterable[str]) -> None:
        """Store `notification` for each named channel and return; the workers send it. An
        unknown channel name is a bug of the caller (the config validated every rule's
        channels at start): ValueError, and nothing is stored. sqlite3.Error if the outbox
        cannot be written (nothing is stored either)."""
        names = list(dict.fromkeys(channel_names))
        unknown = [n for n in names if n not in self.channels]
        if unknown:
            raise ValueError(
                f"unknown alert channel(s) {unknown}; configured: {sorted(self.channels)}"
            )
        if not names:
            return
        body = encode(notification)
        with self._cond:
            db = self._open_db()
            now = self.clock()
            db.execute("BEGIN IMMEDIATE")
            try:
                nid = db.execute(
                    "INSERT INTO notifications (body, submitted_s) VALUES (?, ?)", (body, now)
                ).lastrowid
                db.executemany(
                    "INSERT INTO deliveries (notification, channel, due_s) VALUES (?, ?, ?)",
                    [(nid, name, now) for name in names],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until no delivery to a configured channel is left (sent or dropped); False if
        some are left after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._db is None:
                    return False
                rows = self._db.execute("SELECT channel, COUNT(*) FROM deliveries GROUP BY channel")
                if not any(n for channel, n in rows if channel in self.channels):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, self.poll_s))

    def stats(self) -> dict[str, dict]:
        """Per channel: `sent` and `failed` (dropped) since this dispatcher started,
        `attempts_failed` (failed attempts, retried or not), `pending` (in the outbox now),
        `retrying` (of those, how many failed at least once and wait for their next attempt)
        and `last_error` (the last failure's reason, secrets masked, or None)."""
        with self._cond:
            rows = {}
            if self._db is not None:
                for channel, pending, retrying in self._db.execute(
                    "SELECT channel, COUNT(*), SUM(attempts > 0) FROM deliveries GROUP BY channel"
                ):
                    rows[channel] = (pending, retrying or 0)
            return {
                name: {
                    "sent": c.sent,
                    "failed": c.failed,
                    "attempts_failed": c.attempts_failed,
                    "pending": rows.get(name, (0, 0))[0],
                    "retrying": rows.get(name, (0, 0))[1],
                    "last_error": c.last_error,
                }
                for name, c in self._counters.items()
            }

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the workers (a send under way is waited for up to `timeout_s`, then left: its
        delivery stays in the outbox and is sent again after the next start), close the
        channels and the outbox. Twice is harmless."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for name, channel in self.channels.items():
            try:
                channel.close()
            except Exception as exc:  # a channel's close must not keep the others open
                log.warning("alert channel %s: close failed: %s", name, mask_secrets(str(exc)))
        with self._cond:
            if self._db is not None:
                self._db.close()
                self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the dispatcher is closed")
        return self._db

    # -- the workers ------------------------------------------------------------------------

    def _head(self, name: str) -> _Delivery | None:
        row = self._db.execute(
            "SELECT d.seq, d.notification, d.attempts, d.due_s, n.submitted_s, n.body "
            "FROM deliveries d JOIN notifications n ON n.id = d.notification "
            "WHERE d.channel = ? ORDER BY d.seq LIMIT 1",
            (name,),
        ).fetchone()
        return None if row is None else _Delivery(*row)

    def _next(self, name: str) -> _Delivery | None:
        """The channel's oldest delivery once it is due; None when closing."""
        with self._cond:
            while not self._closing:
                head = self._head(name)
                wait = self.poll_s if head is None else min(head.due_s - self.clock(), self.poll_s)
                if head is not None and wait <= 0:
                    return head
                self._cond.wait(wait)
            return None

    def _work(self, name: str) -> None:
        channel = self.channels[name]
        policy = getattr(channel, "retry", DEFAULT_RETRY)
        while True:
            delivery = self._next(name)
            if delivery is None:
                return
            try:
                notification = decode(delivery.body)
            except (ValueError, KeyError, TypeError) as exc:
                # Written by another version of this code; it cannot become readable.
                self._drop(name, delivery, f"unreadable in the outbox: {exc}", attempted=False)
                continue
            try:
                channel.send(notification)
            except PermanentChannelError as exc:
                self._drop(name, delivery, str(exc), notification)
            except ChannelError as exc:
                after = getattr(exc, "retry_after_s", None)
                self._failed(name, delivery, str(exc), notification, policy, after)
            except Exception as exc:  # a channel's bug: retrying the same code cannot help
                # The traceback is for the developer; masked, as its message may hold a URL.
                log.error(
                    "alert channel %s: send raised %s\n%s",
                    name,
                    type(exc).__name__,
                    mask_secrets(traceback.format_exc()),
                )
                self._drop(name, delivery, f"{type(exc).__name__}: {exc}", notification)
            else:
                self._sent(name, delivery, notification)

    def _sent(self, name: str, delivery: _Delivery, notification: Notification) -> None:
        with self._cond:
            if self._db is None:  # closed while this send ran: sent again after a restart
                return
            self._forget(delivery)
            self._counters[name].sent += 1
            self._cond.notify_all()
        if delivery.attempts:
            log.info(
                "alert channel %s: notification %s sent after %d failed attempt(s)",
                name,
                notification.id,
                delivery.attempts,
            )

    def _failed(
        self,
        name: str,
        delivery: _Delivery,
        reason: str,
        notification: Notification,
        policy: RetryPolicy,
        retry_after_s: float | None = None,
    ) -> None:
        now = self.clock()
        attempts = delivery.attempts + 1
        if attempts > policy.retries or now - delivery.submitted_s >= policy.retry_for_s:
            used = f"after {attempts} attempt(s) over {now - delivery.submitted_s:.0f} s"
            self._drop(name, delivery, f"{reason} ({used})", notification)
            return
        delay = self.backoff_s[min(attempts, len(self.backoff_s)) - 1]
        if retry_after_s is not None:
            # The peer said when to come back (HTTP Retry-After): not sooner, within reason.
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        reason = mask_secrets(reason)
        with self._cond:
            if self._db is None:
                return
            self._db.execute(
                "UPDATE deliveries SET attempts = ?, due_s = ?, last_error = ? WHERE seq = ?",
                (attempts, now + delay, reason, delivery.seq),
            )
            counters = self._counters[name]
            counters.attempts_failed += 1
            counters.last_error = reason
        # The first failure of a delivery is worth a WARNING; its further retries are not,
        # or a channel down for a day would write a line a minute.
        log.log(
            logging.WARNING if attempts == 1 else logging.DEBUG,
            "alert channel %s: notification %s not sent (attempt %d), next try in %g s: %s",
            name,
            notification.id,
            attempts,
            delay,
            reason,
        )

    def _drop(
        self,
        name: str,
        delivery: _Delivery,
        reason: str,
        notification: Notification | None = None,
        *,
        attempted: bool = True,
    ) -> None:
        reason = mask_secrets(reason)
        with self._cond:
            if self._db is None:
                return
            self._forget(delivery)
            counters = self._counters[name]
            counters.failed += 1
            counters.attempts_failed += int(attempted)
            counters.last_error = reason
            self._cond.notify_all()
        log.error(
            "alert channel %s: notification %s dropped: %s",
            name,
            notification.id if notification else f"#{delivery.notification_id}",
            reason,
        )

    def _forget(self, delivery: _Delivery) -> None:
        """Delete a delivery, and its notification once no delivery needs it (under the lock)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM deliveries WHERE seq = ?", (delivery.seq,))
            db.execute(
                "DELETE FROM notifications WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM deliveries WHERE notification = ?)",
                (delivery.notification_id, delivery.notification_id),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
