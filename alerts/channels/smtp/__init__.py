"""The e-mail channel: one multipart message per notification, over SMTP (README.md beside this).

The message is multipart/alternative (plain text and a simple HTML rendering of the same words),
UTF-8 throughout, with an RFC 2047 encoded subject so Chinese survives every hop; a notification's
attachments (the monthly snapshot's HTML report) ride along as MIME parts, which turns the
message into multipart/mixed. A temporary refusal (4xx, a refused or dropped connection, a
timeout) raises `ChannelError`, which the dispatcher retries; a permanent one (5xx: bad
credentials, an unknown recipient) raises `PermanentChannelError`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import ipaddress
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.alerts.dispatch import DEFAULT_RETRY, RetryPolicy, parse_retry
from greenfoundry.alerts.notification import Notification
from greenfoundry.plant import Secret, _secret

log = logging.getLogger(__name__)

TYPE = "smtp"
SECURITIES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
KEYS = (
    "type", "host", "port", "security", "username", "password_env", "password_file", "ca_file",
    "from", "to", "timeout_s", "subject_prefix", "retries", "retry_for",
)  # fmt: skip


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (a plain-text SMTP session stays on it)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _address(node, key: str, value) -> str:
    """One e-mail address, bare or with a display name ("Shift lead <lead@example.com>")."""
    if not isinstance(value, str) or "@" not in parseaddr(value)[1]:
        node.refuse(key, value, "an e-mail address such as ops@example.com")
    return value.strip()


def parse(node, cfg, env: dict[str, str] | None, name: str) -> SmtpChannel:
    """`alerts.channels.<name>` of type smtp (keys in README.md). With `env` None the password is
    checked but not resolved, and such a channel refuses to send."""
    node.choice("type", (TYPE,), TYPE)
    if node.has("password"):
        node.fail(
            "secrets are not read from the YAML; give password_env (an environment variable "
            "name) or password_file (a path)",
            "password",
        )
    host = node.text("host")
    security = node.choice("security", SECURITIES, "starttls")
    if security == "none" and not is_loopback(host):
        # Without TLS the password and every alert would cross the network in clear text.
        node.fail(
            f"'none' is allowed only to localhost, not to {host!r}: credentials and messages "
            "would cross the network in clear text; use starttls or tls",
            "security",
        )
    port = node.number("port", DEFAULT_PORTS[security], low=1, high=65535, integer=True)
    username = node.text("username", None)
    has_password = node.has("password_env") or node.has("password_file")
    password = _secret(node, "password", env)
    if has_password and username is None:
        node.fail("a password needs a username", "username")
    if username is not None and not has_password:
        node.fail("a username needs password_env or password_file", "username")
    ca_file = node.text("ca_file", None)
    if ca_file is not None and security == "none":
        node.fail("a CA file means nothing without TLS (security: none)", "ca_file")
    if ca_file is not None and not Path(ca_file).expanduser().is_file():
        node.refuse("ca_file", ca_file, "a readable file of PEM certificates")
    sender = _address(node, "from", node.get("from"))
    recipients = node.list("to", required=True)
    if not recipients:
        node.refuse("to", recipients, "a list of at least one e-mail address")
    to = tuple(_address(node, f"to[{i}]", r) for i, r in enumerate(recipients))
    timeout_s = node.number("timeout_s", 30, above=0, high=600, unit="s")
    prefix = node.get("subject_prefix", "[greenfoundry]")
    if not isinstance(prefix, str):
        node.refuse("subject_prefix", prefix, "a text (may be empty)")
    retry = parse_retry(node)
    node.done()
    return SmtpChannel(
        name,
        host=host,
        port=port,
        security=security,
        username=username,
        password=password,
        password_expected=has_password,
        ca_file=Path(ca_file).expanduser() if ca_file else None,
        sender=sender,
        to=to,
        timeout_s=float(timeout_s),
        subject_prefix=prefix.strip(),
        retry=retry,
    )


class SmtpChannel:
    """Sends each notification as one e-mail to every address of `to`."""

    type = TYPE

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        security: str,
        sender: str,
        to: tuple[str, ...],
        username: str | None = None,
        password: Secret | None = None,
        password_expected: bool | None = None,
        ca_file: Path | None = None,
        timeout_s: float = 30.0,
        subject_prefix: str = "[greenfoundry]",
        retry: RetryPolicy = DEFAULT_RETRY,
        clock: Callable[[], float] = time.time,
    ):
        if security not in SECURITIES:
            raise ValueError(f"security must be one of {SECURITIES}, not {security!r}")
        self.name, self.host, self.port, self.security = name, host, port, security
        self.sender, self.to, self.username = sender, tuple(to), username
        # The envelope takes bare addresses; the To header keeps the display names.
        self._envelope_from = parseaddr(sender)[1]
        self._rcpts = tuple(parseaddr(r)[1] for r in self.to)
        self._password = password
        self._password_expected = (
            password is not None if password_expected is None else password_expected
        )
        self.ca_file, self.timeout_s, self.subject_prefix = ca_file, timeout_s, subject_prefix
        self.retry = retry  # how long the dispatcher retries a ChannelError
        self._clock = clock
        # Recipients still owed a message after a send some recipients refused with a 4xx,
        # by Message-ID: the retry goes to them only, so the others do not get it twice.
        self._owed: dict[str, tuple[str, ...]] = {}
        self.sent = 0

    def __repr__(self) -> str:
        return (
            f"SmtpChannel(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"security={self.security!r}, to={len(self.to)} address(es))"
        )

    # -- the message --------------------------------------------------------------------------

    def message_id(self, n: Notification) -> str:
        """The same notification (id, event, event time) always gets the same Message-ID, so a
        retry after a timeout that in fact delivered is recognisable as a duplicate."""
        digest = hashlib.sha256(f"{n.plant}|{n.id}|{n.event}|{n.at_ns}".encode()).hexdigest()
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or "greenfoundry.invalid"
        return f"<gf.{digest[:32]}@{domain}>"

    def build(self, n: Notification) -> EmailMessage:
        """The e-mail for `n`: plain text + HTML alternatives, then the attachments."""
        msg = EmailMessage()  # the default policy: RFC 2047 for non-ASCII headers, utf-8 bodies
        # A header is one line: a line break in a subject would end the header (and the
        # email package refuses one), so the subject's whitespace is folded to spaces.
        subject = " ".join(f"{self.subject_prefix} {n.subject}".split())
        msg["Subject"] = subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = format_datetime(dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc))
        msg["Message-ID"] = self.message_id(n)
        # RFC 3834: mail robots and vacation responders must not answer an automatic message.
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Greenfoundry-Event"] = " ".join(f"{n.plant} {n.event} {n.severity} {n.rule}".split())
        msg["X-Greenfoundry-Id"] = " ".join(n.id.split())
        msg.set_content(_plain(n), charset="utf-8")
        msg.add_alternative(_html(n, subject), subtype="html", charset="utf-8")
        for a in n.attachments:
            maintype, _, subtype = a.content_type.split(";", 1)[0].strip().partition("/")
            if not maintype or not subtype:
                maintype, subtype = "application", "octet-stream"
            msg.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.filename)
        return msg

    # -- sending ------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        # The server's certificate is always verified, against ca_file or the system's CAs.
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            client = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_s, context=self._context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        try:
            client.ehlo()
            if self.security == "starttls":
                # starttls() raises SMTPNotSupportedError when the server does not offer it:
                # the session is never downgraded to clear text.
                client.starttls(context=self._context())
                client.ehlo()
            if self.username is not None:
                client.login(self.username, self._password.value)
        except BaseException:
            client.close()
            raise
        return client

    def send(self, notification: Notification) -> None:
        if self._password_expected and self._password is None:
            raise PermanentChannelError(
                f"smtp channel {self.name}: the password was not resolved (the config was "
                "loaded without secrets)"
            )
        msg = self.build(notification)
        mid = msg["Message-ID"]
        to = self._owed.get(mid, self._rcpts)
        where = f"smtp channel {self.name} ({self.host}:{self.port})"
        try:
            client = self._connect()
            try:
                refused = client.send_message(msg, from_addr=self._envelope_from, to_addrs=list(to))
            finally:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients  # every recipient refused: _refused raises below
        except smtplib.SMTPNotSupportedError:
            raise PermanentChannelError(
                f"{where}: the server does not offer STARTTLS; security is starttls, so the "
                "message is not sent in clear text (use tls if the port expects TLS at once)"
            ) from None
        except smtplib.SMTPResponseException as exc:
            text = _decode(exc.smtp_error)
            what = _what(exc)
            if 400 <= exc.smtp_code < 500:
                raise ChannelError(f"{where}: {what}: {exc.smtp_code} {text}") from None
            raise PermanentChannelError(f"{where}: {what}: {exc.smtp_code} {text}") from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentChannelError(
                f"{where}: the server's certificate does not verify ({exc.verify_message}); "
                "give ca_file if it is signed by a private CA"
            ) from None
        except TimeoutError:
            raise ChannelError(f"{where}: no answer within {self.timeout_s:g} s") from None
        except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib's reading of a reply
                raise ChannelError(f"{where}: no answer within {self.timeout_s:g} s") from None
            raise ChannelError(f"{where}: connection lost or refused: {exc}") from None
        except smtplib.SMTPException as exc:
            # What is left (no common AUTH mechanism, a server that speaks no SMTP): a retry
            # would meet the same answer.
            raise PermanentChannelError(f"{where}: {exc}") from None
        except OSError as exc:  # name resolution, unreachable network, TLS handshake
            raise ChannelError(f"{where}: {exc.strerror or exc}") from None
        if refused:
            self._refused(mid, to, refused, where)
        self._owed.pop(mid, None)
        self.sent += 1

    def _refused(self, mid: str, to, refused: dict, where: str) -> None:
        """Some or all recipients were refused: owe the message to those refused for now (4xx),
        and raise unless everyone still owed it was refused for good (then log it)."""
        later = tuple(r for r in to if r in refused and 400 <= refused[r][0] < 500)
        said = "; ".join(f"{r}: {c} {_decode(m)}" for r, (c, m) in refused.items())
        never = [r for r in to if r in refused and refused[r][0] >= 500]
        delivered = len(to) - len(refused)
        if never and (later or delivered):
            # Nobody retries these: say so now, whatever becomes of the others.
            log.warning("%s: recipients refused for good: %s", where, ", ".join(never))
        if later:
            self._owed[mid] = later
            raise ChannelError(f"{where}: recipients refused for now ({said})")
        self._owed.pop(mid, None)
        if delivered == 0:
            raise PermanentChannelError(f"{where}: every recipient refused ({said})")

    def close(self) -> None:
        """Nothing is held open between notifications: each send has its own session."""


def _decode(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _what(exc: smtplib.SMTPResponseException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "login refused"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return "sender refused"
    if isinstance(exc, smtplib.SMTPDataError):
        return "message refused"
    if isinstance(exc, smtplib.SMTPHeloError):
        return "greeting refused"
    return "refused"


def _facts(n: Notification) -> list[tuple[str, str]]:
    """The facts a reader scans for, beside the words: value, limit, trend, since, link."""
    unit = f" {n.unit}" if n.unit else ""
    rows = []
    if n.value is not None:
        rows.append(("Value", f"{n.value:g}{unit}"))
    if n.limit is not None:
        rows.append(("Limit", f"{n.limit:g}{unit}"))
    if n.trend:
        rows.append(("Trend", n.trend))
    if n.since_ns is not None:
        since = dt.datetime.fromtimestamp(n.since_ns / 1e9, dt.timezone.utc)
        rows.append(("Since", since.strftime("%Y-%m-%d %H:%M UTC")))
    return rows


def _plain(n: Notification) -> str:
    text = n.text.rstrip()
    if n.link and n.link not in text:
        text += f"\n\nMore: {n.link}"
    return text + "\n"


def _html(n: Notification, subject: str) -> str:
    """A simple page: the subject as a heading, the text as paragraphs, a table of the facts
    and the link (an anchor for a URL, code for a command)."""
    paragraphs = "".join(
        "<p>" + "<br>".join(html.escape(line) for line in block.splitlines()) + "</p>"
        for block in n.text.strip().split("\n\n")
        if block.strip()
    )
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in _facts(n)
    )
    link = ""
    if n.link:
        if n.link.startswith(("http://", "https://")):
            link = f"<p><a href='{html.escape(n.link, quote=True)}'>{html.escape(n.link)}</a></p>"
        else:
            link = f"<p>More: <code>{html.escape(n.link)}</code></p>"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(subject)}</title></head>"
        "<body style='font-family:sans-serif'>"
        f"<h2>{html.escape(n.subject)}</h2>{paragraphs}"
        + (f"<table>{rows}</table>" if rows else "")
        + link
        + "</body></html>\n"
    )
