"""The one interface every channel has."""

from __future__ import annotations

from typing import Protocol

from greenfoundry.alerts.notification import Notification
from greenfoundry.errors import GreenfoundryError


class ChannelError(GreenfoundryError):
    """A send failed in a way a retry may fix (peer down, timeout, 5xx, 429)."""


class PermanentChannelError(ChannelError):
    """A send the peer refused for good (bad credentials, 4xx, a malformed address): not retried."""


class Channel(Protocol):
    name: str  # its key under alerts.channels
    type: str  # one of channels.TYPES

    def send(self, notification: Notification) -> None:
        """Deliver or raise ChannelError / PermanentChannelError. Must time out on its own
        (never block for ever); the dispatcher retries with backoff."""

    def close(self) -> None: ...
