"""The `webhook` channel: each notification as a JSON POST to an HTTP(S) endpoint
(alerts/channels/webhook/README.md).

The body is `Notification.to_dict()` with `"version": 1`; a 2xx answer is sent. A 429, a 5xx, a
refused or reset connection and a timeout are `ChannelError` (retried by the dispatcher, a
429's or 503's `Retry-After` respected); any other answer (a 4xx, a redirect, which is not
followed: it would turn the POST into a GET) is a `PermanentChannelError`.

The URL often is the secret (a chat robot's key in its query or path), so it comes from
`url_env` / `url_file`, and a literal `url` may not carry user info or a key-like query
parameter. No message names the URL: errors name the channel.
"""

from __future__ import annotations

import email.utils
import http.client
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.alerts.dispatch import (
    DEFAULT_RETRY,
    RetryPolicy,
    json_text,
    mask_secrets,
    parse_retry,
)
from greenfoundry.alerts.notification import Notification
from greenfoundry.plant import Secret, _secret

TYPE = "webhook"
VERSION = 1  # of the body's layout: a receiver can tell a change apart
USER_AGENT = "greenfoundry-alerts/1"
MAX_ANSWER_BYTES = 64 * 1024  # read (and ignored) of a 2xx answer: the connection ends cleanly
SHOWN_ANSWER_CHARS = 200  # of an error answer, in the error's message
# A header's name (RFC 9110 token); `<name>_env` / `<name>_file` give its value from a secret.
HEADER_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# Headers whose value is a credential: never a literal in the YAML.
SECRET_HEADER_RE = re.compile(r"(?i)(authorization|token|key|secret|signature|password|cookie)")
# Set by the channel itself.
OWN_HEADERS = ("content-type", "content-length", "host")
# Query parameters of a literal `url` that look like a credential.
SECRET_QUERY_RE = re.compile(r"(?i)(key|token|secret|sign|signature|password|auth|code)")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx


def body(notification: Notification) -> bytes:
    """What is POSTed: the notification's fields and the layout's version, UTF-8 JSON."""
    data = {"version": VERSION, **notification.to_dict()}
    return json_text(data).encode("utf-8")


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """A `Retry-After` header's delay in seconds (RFC 9110 10.2.3: seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_s)


class WebhookChannel:
    """POSTs notifications to `url`. `url` None: its secret was not resolved (a config read
    with env None), and every send is refused."""

    type = TYPE

    def __init__(
        self,
        name: str,
        url: str | None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        ca_file: Path | None = None,
    ):
        self.name = name
        self._url = url
        self._headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.retry = retry
        self.ca_file = ca_file
        # HTTPS: the peer's certificate verified and its name checked, against `ca_file` (a
        # plant's own CA) or the system's CAs.
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._opener = urllib.request.build_opener(
            _NoRedirect, urllib.request.HTTPSHandler(context=context)
        )

    def __repr__(self) -> str:  # never the URL or a header's value
        return f"WebhookChannel({self.name!r}, timeout_s={self.timeout_s})"

    def send(self, notification: Notification) -> None:
        if self._url is None:
            raise PermanentChannelError(
                f"channel {self.name}: its URL was not resolved (the config was read without "
                "secrets)"
            )
        request = urllib.request.Request(
            self._url,
            data=body(notification),
            method="POST",
            headers={
                **self._headers,
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as answer:
                answer.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc) from None
        except urllib.error.URLError as exc:
            raise ChannelError(
                f"channel {self.name}: cannot reach the webhook: {exc.reason}"
            ) from None
        except TimeoutError:
            raise ChannelError(
                f"channel {self.name}: no answer from the webhook within {self.timeout_s:g} s"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ChannelError(
                f"channel {self.name}: the webhook's connection failed: {type(exc).__name__}: {exc}"
            ) from None

    def _refusal(self, exc: urllib.error.HTTPError) -> ChannelError:
        try:
            text = exc.read(SHOWN_ANSWER_CHARS * 4).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            text = ""
        finally:
            exc.close()
        shown = mask_secrets(" ".join(text.split())[:SHOWN_ANSWER_CHARS])
        message = f"channel {self.name}: the webhook answered HTTP {exc.code}" + (
            f": {shown}" if shown else ""
        )
        if exc.code == 429 or exc.code >= 500:
            error = ChannelError(message)
            error.retry_after_s = retry_after_s(exc.headers.get("Retry-After"), time.time())
            return error
        if 300 <= exc.code < 400:
            message += " (a redirect is not followed: give the final URL)"
        return PermanentChannelError(message)

    def close(self) -> None:
        return None


# --------------------------------------------------------------------------- config


def _check_url(node, key: str, url: str, *, literal: bool) -> None:
    """An absolute http(s) URL. A literal one is shown in the message; one from a secret is
    not (it is the secret)."""
    parts = urllib.parse.urlsplit(url)
    what = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        what = "an absolute http:// or https:// URL"
    elif literal and (parts.username or parts.password):
        what = "a URL without user info (give it with url_env or url_file)"
    elif literal and any(
        SECRET_QUERY_RE.search(k) for k, _ in urllib.parse.parse_qsl(parts.query, True)
    ):
        what = "a URL without a key or token in its query (give it with url_env or url_file)"
    if what is None:
        return
    if literal:
        node.refuse(key, mask_secrets(url), what)
    node.fail(f"the URL it gives is not allowed; expected {what}", key)


def _url(node, env: dict[str, str] | None) -> str | None:
    literal = node.text("url", None)
    given = [k for k in ("url", "url_env", "url_file") if node.has(k)]
    if len(given) != 1:
        node.fail(
            "give one of url_env, url_file or url (a URL without a secret)"
            + (f", not {' and '.join(given)}" if given else ""),
            given[1] if len(given) > 1 else "url_env",
        )
    if literal is not None:
        _check_url(node, "url", literal, literal=True)
        return literal
    secret: Secret | None = _secret(node, "url", env)
    if secret is None:
        return None
    _check_url(node, given[0], secret.value, literal=False)
    return secret.value


def _headers(node, env: dict[str, str] | None) -> dict[str, str]:
    h = node.child("headers", required=False)
    out: dict[str, str] = {}
    for key in list(h.data):
        if not isinstance(key, str):
            h.refuse(None, key, "header names")
        header = re.sub(r"_(env|file)\Z", "", key)
        if not HEADER_RE.match(header) or header.lower() in OWN_HEADERS:
            h.fail(
                "not allowed; expected an HTTP header name (Content-Type, Content-Length and "
                "Host are the channel's own)",
                key,
            )
        if header.lower() in (k.lower() for k in out):
            h.fail("given twice (as a value and from a secret)", key)
        if header == key:
            if SECRET_HEADER_RE.search(header):
                h.fail(
                    f"secrets are not read from the YAML; give {header}_env (an environment "
                    f"variable name) or {header}_file (a path)",
                    key,
                )
            out[header] = h.text(key)
            continue
        secret = _secret(h, header, env)
        if secret is not None:
            out[header] = secret.value
    h.done()
    return out


def _ca_file(node, cfg) -> Path | None:
    raw = node.text("ca_file", None)
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(cfg.path).parent / path
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        node.fail(f"cannot read CA certificates from {path}: {exc}", "ca_file")
    return path


def parse(node, cfg, env: dict[str, str] | None, name: str) -> WebhookChannel:
    """`alerts.channels.<name>` of type webhook: `url_env` / `url_file` / `url`, `headers`,
    `timeout_s`, `ca_file`, `retries`, `retry_for` (README.md)."""
    node.choice("type", (TYPE,), TYPE)
    channel = WebhookChannel(
        name,
        _url(node, env),
        _headers(node, env),
        node.number("timeout_s", 10.0, low=0.1, high=120, unit="s"),
        parse_retry(node),
        _ca_file(node, cfg),
    )
    node.done()
    return channel
