"""The `jsonl` channel: each notification appended to a file as one JSON line
(alerts/channels/jsonl/README.md).

A line is `Notification.to_dict()` (attachments by name and size only), UTF-8 with non-ASCII
characters as they are, and is on disk (fsync'd) before `send` returns, so a notification the
dispatcher counts as sent survives a power cut. The file is created with mode 0640 and its
directory with 0750; a file that ends in a torn line (a crash mid-write) gets a line break
before the next line, so that only the torn line is lost and every later one parses.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from greenfoundry.alerts.channels.base import ChannelError
from greenfoundry.alerts.dispatch import DEFAULT_RETRY, RetryPolicy, json_text, parse_retry
from greenfoundry.alerts.notification import Notification

TYPE = "jsonl"
DEFAULT_PATH = "var/alerts/notifications.jsonl"
FILE_MODE = 0o640
DIR_MODE = 0o750


def encode(notification: Notification) -> bytes:
    """One line, with its line break."""
    return (json_text(notification.to_dict()) + "\n").encode("utf-8")


class JsonlChannel:
    """Appends notifications to `path`. One instance may be called from several threads."""

    type = TYPE

    def __init__(self, name: str, path: Path, retry: RetryPolicy = DEFAULT_RETRY):
        self.name = name
        self.path = Path(path)
        self.retry = retry
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        data = encode(notification)
        with self._lock:
            try:
                self._append(data)
            except OSError as exc:
                # A full disk or a missing mount may come back: retried by the dispatcher.
                raise ChannelError(
                    f"channel {self.name}: cannot append to {self.path}: {exc.strerror or exc}"
                ) from None

    def _append(self, data: bytes) -> None:
        directory = self.path.parent
        if not directory.is_dir():
            directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                # The umask may have taken bits off the mode os.open was given.
                os.fchmod(fd, FILE_MODE)
            elif os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if size == 0:
            # A new file's directory entry is durable only once the directory is synced.
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"JsonlChannel({self.name!r}, {str(self.path)!r})"


def parse(node, cfg, env: dict[str, str] | None, name: str) -> JsonlChannel:
    """`alerts.channels.<name>` of type jsonl: `path` (relative to the plant file; default
    var/alerts/notifications.jsonl), `retries`, `retry_for`."""
    node.choice("type", (TYPE,), TYPE)
    raw = node.text("path", DEFAULT_PATH)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(cfg.path).parent / path
    if path.is_dir():
        node.refuse("path", raw, "a file, not a directory")
    channel = JsonlChannel(name, path, parse_retry(node))
    node.done()
    return channel
