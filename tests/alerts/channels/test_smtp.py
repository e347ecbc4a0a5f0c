"""The e-mail channel against a real SMTP server (aiosmtpd's Controller on a free port): what
arrives parses back into the words, the subject and the attachment's bytes; the server's
refusals become retryable or permanent errors as RFC 5321 means them (4xx transient, 5xx
permanent); STARTTLS and implicit TLS run against a certificate made by openssl."""

from __future__ import annotations

import copy
import email
import email.policy
import email.utils
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from greenfoundry import plant
from greenfoundry.alerts.channels import smtp
from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.alerts.dispatch import DEFAULT_RETRY, Dispatcher, RetryPolicy
from greenfoundry.alerts.notification import Attachment, Notification
from greenfoundry.errors import ConfigError
from greenfoundry.inputs import Node
from greenfoundry.stack import free_port, make_certificates
from tests.plant import EXAMPLE

SUBJECT = "告警：烟囱 S1 二氧化硫小时均值 0.72 C，已超过 0.7 C"
TEXT = (
    "烟囱 S1 的二氧化硫小时均值为 36 mg/m³，限值 C 为 50 mg/m³（0.72 C）。\n"
    "自 2026-11-30 08:00 UTC 起超过预警线 0.7 C。\n\n"
    "Trend: +0.04 C/h, 0.8 C in about 2 h."
)
# Bytes that are not ASCII and not text of the message, so a re-encoding would show.
REPORT = "<html><body><h1>月度快照 2026-11</h1><p>F = 87.5</p></body></html>\n".encode()


def notification(**changes) -> Notification:
    base = dict(
        id="mail-test-stack-warning-s1-so2-1796025600",
        plant="mail-test",
        plant_name="示范管厂",
        event="firing",
        severity="warning",
        rule="stack-warning",
        subject=SUBJECT,
        text=TEXT,
        markdown="**" + SUBJECT + "**",
        at_ns=1_796_025_600 * 10**9,
        since_ns=1_796_025_600 * 10**9,
        value=36.0,
        limit=50.0,
        unit="mg/m³",
        trend="+0.04 C/h, 0.8 C in about 2 h",
        link="greenfoundry alerts list --firing",
        details={"stack": "S1", "pollutant": "so2"},
        attachments=(Attachment("mail-test-2026-11.html", "text/html; charset=utf-8", REPORT),),
    )
    base.update(changes)
    return Notification(**base)


class Inbox:
    """An aiosmtpd handler that keeps what it accepts and answers as told at RCPT and DATA."""

    def __init__(self):
        self.envelopes = []
        self.rcpt_answers: dict[str, str] = {}  # address -> SMTP reply, e.g. "451 4.2.1 busy"
        self.data_answer: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.rcpt_answers.get(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_answer:
            return self.data_answer
        self.envelopes.append(envelope)
        return "250 OK queued"

    def parsed(self, i: int = -1) -> email.message.EmailMessage:
        return email.message_from_bytes(self.envelopes[i].content, policy=email.policy.default)


def authenticator(user: str, password: str):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: aiosmtpd answers itself, 235 or "535 5.7.8 ... credentials invalid".
        return AuthResult(success=ok, handled=False)

    return check


@pytest.fixture
def server():
    """Start an aiosmtpd Controller on a free port with an Inbox; `server(**kwargs)` passes
    kwargs to the Controller (authenticator, tls_context, ssl_context, ...)."""
    started = []

    def start(**kwargs):
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kwargs)
        controller.start()
        started.append(controller)
        return inbox, controller.port

    yield start
    for controller in started:
        controller.stop()


def parse(raw: dict, env: dict | None = None, name: str = "mail"):
    return smtp.parse(Node(raw, f"alerts.channels.{name}", error=ConfigError), None, env, name)


def plain(port: int, **extra) -> smtp.SmtpChannel:
    raw = {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "灰铁管厂告警 <alerts@plant.example>",
        "to": ["Shift lead <lead@plant.example>", "ehs@plant.example"],
        "timeout_s": 5,
        "subject_prefix": "[gf]",
        **extra,
    }
    return parse(raw, env={"GF_SMTP_PASSWORD": "s3cret"})


# ------------------------------------------------------------------------------ delivery


def test_the_message_parses_back_with_its_words_subject_and_attachment(server):
    inbox, port = server()
    channel = plain(port)
    channel.send(notification())
    assert len(inbox.envelopes) == 1
    envelope = inbox.envelopes[0]
    # The envelope takes the bare addresses, the header keeps the display names.
    assert envelope.mail_from == "alerts@plant.example"
    assert envelope.rcpt_tos == ["lead@plant.example", "ehs@plant.example"]
    raw = envelope.content.decode("ascii")  # 7-bit clean on the wire: every part is encoded
    assert "Subject: [gf] =?utf-8?b?" in raw  # RFC 2047 encoded words
    msg = inbox.parsed()
    # The prefix, a space and the notification's subject, written out by hand here.
    assert msg["Subject"] == "[gf] " + SUBJECT
    assert msg["To"] == "Shift lead <lead@plant.example>, ehs@plant.example"
    assert email.utils.parseaddr(msg["From"])[0] == "灰铁管厂告警"
    assert email.utils.parsedate_to_datetime(msg["Date"]).tzinfo is not None
    assert abs(email.utils.parsedate_to_datetime(msg["Date"]).timestamp() - time.time()) < 60
    assert msg["Message-ID"].startswith("<gf.") and msg["Message-ID"].endswith("@plant.example>")
    assert msg["Auto-Submitted"] == "auto-generated"

    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    text_part, html_part = alternative.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert text_part.get_content_charset() == "utf-8"
    body = text_part.get_content()
    assert TEXT in body
    assert "More: greenfoundry alerts list --firing" in body
    page = html_part.get_content()
    assert html_part.get_content_type() == "text/html"
    assert "烟囱 S1 的二氧化硫小时均值为 36 mg/m³" in page
    assert "<code>greenfoundry alerts list --firing</code>" in page
    assert "<td>36 mg/m³</td>" in page and "<td>50 mg/m³</td>" in page
    assert "2026-11-30 08:00 UTC" in page  # 1_796_025_600 s (date -u -d @1796025600)

    assert attachment.get_content_type() == "text/html"
    assert attachment.get_filename() == "mail-test-2026-11.html"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_payload(decode=True) == REPORT


def test_a_notification_without_attachments_is_multipart_alternative(server):
    inbox, port = server()
    plain(port).send(notification(attachments=(), link="https://grafana.example/d/gf"))
    msg = inbox.parsed()
    assert msg.get_content_type() == "multipart/alternative"
    html_part = msg.get_body(("html",))
    assert "<a href='https://grafana.example/d/gf'>" in html_part.get_content()


def test_the_same_notification_keeps_its_message_id_and_another_gets_its_own(server):
    inbox, port = server()
    channel = plain(port)
    channel.send(notification())
    channel.send(notification())
    channel.send(notification(event="resolved"))
    ids = [inbox.parsed(i)["Message-ID"] for i in range(3)]
    assert ids[0] == ids[1] != ids[2]


# ------------------------------------------------------------------------------ refusals


def test_a_wrong_password_is_permanent_and_the_right_one_delivers(server):
    inbox, port = server(authenticator=authenticator("gf", "s3cret"), auth_require_tls=False)
    good = plain(port, username="gf", password_env="GF_SMTP_PASSWORD")
    bad = parse(
        {**_raw(port), "username": "gf", "password_env": "GF_SMTP_PASSWORD"},
        env={"GF_SMTP_PASSWORD": "wrong"},
    )
    with pytest.raises(PermanentChannelError, match=r"login refused: 535"):
        bad.send(notification())
    assert inbox.envelopes == []
    good.send(notification())
    assert len(inbox.envelopes) == 1


def test_a_451_at_data_is_retryable_and_a_550_recipient_is_permanent(server):
    inbox, port = server()
    inbox.data_answer = "451 4.3.0 Mail server temporarily rejected message"
    with pytest.raises(ChannelError, match=r"message refused: 451") as caught:
        plain(port).send(notification())
    assert not isinstance(caught.value, PermanentChannelError)

    inbox.data_answer = None
    inbox.rcpt_answers = {
        "lead@plant.example": "550 5.1.1 No such user",
        "ehs@plant.example": "550 5.1.1 No such user",
    }
    with pytest.raises(PermanentChannelError, match=r"every recipient refused.*550"):
        plain(port).send(notification())
    assert inbox.envelopes == []


def test_a_recipient_refused_for_now_gets_the_retry_and_nobody_else_twice(server):
    inbox, port = server()
    channel = plain(port)
    inbox.rcpt_answers = {"ehs@plant.example": "451 4.2.1 Mailbox busy, try later"}
    with pytest.raises(ChannelError, match="refused for now") as caught:
        channel.send(notification())
    assert not isinstance(caught.value, PermanentChannelError)
    assert inbox.envelopes[0].rcpt_tos == ["lead@plant.example"]
    inbox.rcpt_answers = {}
    channel.send(notification())  # the dispatcher's retry of the same notification
    assert inbox.envelopes[1].rcpt_tos == ["ehs@plant.example"]
    channel.send(notification(event="resolved"))  # a new one goes to everyone again
    assert inbox.envelopes[2].rcpt_tos == ["lead@plant.example", "ehs@plant.example"]


def test_one_recipient_refused_for_good_does_not_fail_the_others(server, caplog):
    inbox, port = server()
    inbox.rcpt_answers = {"ehs@plant.example": "550 5.1.1 No such user"}
    plain(port).send(notification())
    assert inbox.envelopes[0].rcpt_tos == ["lead@plant.example"]
    assert "recipients refused for good: ehs@plant.example" in caplog.text


def test_a_line_break_in_a_subject_stays_one_header(server):
    inbox, port = server()
    plain(port).send(notification(subject="告警：烟囱 S1\n二氧化硫 0.72 C"))
    assert inbox.parsed()["Subject"] == "[gf] 告警：烟囱 S1 二氧化硫 0.72 C"


def test_a_refused_connection_and_a_silent_server_are_retryable():
    with pytest.raises(ChannelError, match="refused") as caught:
        plain(free_port()).send(notification())
    assert not isinstance(caught.value, PermanentChannelError)

    # A server that accepts the connection and never greets: the send gives up on its own.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    try:
        channel = plain(silent.getsockname()[1], timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(ChannelError, match=r"no answer within 0.5 s") as caught:
            channel.send(notification())
        assert time.monotonic() - started < 5
        assert not isinstance(caught.value, PermanentChannelError)
    finally:
        for conn, _ in accepted:
            conn.close()
        silent.close()


# ------------------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A CA and a server certificate for 127.0.0.1 and localhost, by the stack's own openssl
    recipe (greenfoundry.stack.make_certificates)."""
    directory = tmp_path_factory.mktemp("smtp-certs")
    make_certificates(directory)
    return directory


def _server_context(certs: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "server.crt", certs / "server.key")
    return context


def _raw(port: int, **extra) -> dict:
    return {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "alerts@plant.example",
        "to": ["lead@plant.example"],
        "timeout_s": 5,
        **extra,
    }


def test_starttls_with_a_login_over_the_encrypted_session(server, certs):
    # auth_require_tls (aiosmtpd's default): AUTH is offered only after STARTTLS, so the login
    # below succeeding shows the session was encrypted first.
    inbox, port = server(
        tls_context=_server_context(certs),
        require_starttls=True,
        authenticator=authenticator("gf", "s3cret"),
    )
    raw = _raw(port, security="starttls", ca_file=str(certs / "ca.crt"))
    raw.update(username="gf", password_env="GF_SMTP_PASSWORD")
    parse(raw, env={"GF_SMTP_PASSWORD": "s3cret"}).send(notification())
    assert inbox.parsed()["Subject"] == "[greenfoundry] " + SUBJECT

    # Without the CA the certificate does not verify: no retry will change that.
    del raw["ca_file"]
    with pytest.raises(PermanentChannelError, match="certificate does not verify"):
        parse(raw, env={"GF_SMTP_PASSWORD": "s3cret"}).send(notification())


def test_starttls_is_never_downgraded_when_the_server_does_not_offer_it(server):
    inbox, port = server()  # no tls_context: no STARTTLS in its EHLO
    with pytest.raises(PermanentChannelError, match="does not offer STARTTLS"):
        parse(_raw(port, security="starttls")).send(notification())
    assert inbox.envelopes == []


def test_implicit_tls(server, certs):
    inbox, port = server(ssl_context=_server_context(certs))
    parse(_raw(port, security="tls", ca_file=str(certs / "ca.crt"))).send(notification())
    assert inbox.parsed().get_body(("plain",)).get_content().startswith(TEXT.splitlines()[0])


# ------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"host": "smtp.example.com", "security": "none"},
            r"alerts\.channels\.mail\.security: 'none' is allowed only to localhost",
        ),
        ({"password": "x"}, r"alerts\.channels\.mail\.password: secrets are not read"),
        ({"username": "gf"}, r"alerts\.channels\.mail\.username: a username needs"),
        ({"password_env": "GF_SMTP_PASSWORD"}, r"mail\.username: a password needs a username"),
        ({"to": ["lead@plant.example", "nobody"]}, r"alerts\.channels\.mail\.to\[1\]: 'nobody'"),
        ({"to": []}, r"alerts\.channels\.mail\.to: \[\] is not allowed"),
        ({"security": "ssl"}, r"mail\.security: 'ssl' is not allowed; expected one of starttls"),
        ({"port": 0}, r"alerts\.channels\.mail\.port: 0 is not allowed"),
        ({"timeout_s": 0}, r"alerts\.channels\.mail\.timeout_s: 0 is not allowed"),
        ({"ca_file": "/nonexistent/ca.crt", "security": "tls"}, r"mail\.ca_file: '/nonexi"),
        ({"retry_count": 3}, r"alerts\.channels\.mail\.retry_count: unknown key"),
        ({"retry_for": "soon"}, r"alerts\.channels\.mail\.retry_for: 'soon' is not allowed"),
    ],
)
def test_a_bad_config_names_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        parse({**_raw(25), **change}, env={"GF_SMTP_PASSWORD": "s3cret"})


def test_the_password_comes_from_the_environment_or_a_file_and_never_shows(tmp_path):
    raw = _raw(25, username="gf", password_env="GF_SMTP_PASSWORD")
    with pytest.raises(ConfigError, match=r"mail\.password_env: environment variable"):
        parse(raw, env={})
    secret_file = tmp_path / "smtp-password"
    secret_file.write_text("from-a-file\n")
    raw = _raw(25, username="gf", password_file=str(secret_file))
    channel = parse(raw, env={})
    assert channel._password.value == "from-a-file"
    assert "from-a-file" not in repr(channel)
    # Loaded without secrets (env None): parsed, but it refuses to send rather than try.
    unresolved = parse(raw, env=None)
    with pytest.raises(PermanentChannelError, match="password was not resolved"):
        unresolved.send(notification())


def test_retries_are_the_dispatchers_keys():
    assert parse(_raw(25)).retry == DEFAULT_RETRY
    channel = parse({**_raw(25), "retries": 3, "retry_for": "2h"})
    assert channel.retry == RetryPolicy(retries=3, retry_for_s=7200.0)


def test_through_the_dispatcher_a_451_is_retried_and_the_report_arrives_whole(server, tmp_path):
    # The real Dispatcher: the notification goes through its SQLite outbox (attachments in
    # base64) and its worker; the first attempt meets 451, the retry after the backoff lands.
    inbox, port = server()
    answers = iter(["451 4.3.0 Try again later"])

    async def data_once_refused(server_, session, envelope):
        answer = next(answers, None)
        if answer:
            return answer
        inbox.envelopes.append(envelope)
        return "250 OK"

    inbox.handle_DATA = data_once_refused
    channel = plain(port)
    dispatcher = Dispatcher({"mail": channel}, tmp_path / "alerts", backoff_s=(0.1,))
    try:
        dispatcher.submit(notification(event="snapshot", rule="snapshot"), ["mail"])
        assert dispatcher.flush(20)
        stats = dispatcher.stats()["mail"]
    finally:
        dispatcher.close()
    assert stats["sent"] == 1 and stats["failed"] == 0 and stats["attempts_failed"] == 1
    attachment = next(inbox.parsed().iter_attachments())
    assert attachment.get_payload(decode=True) == REPORT


def test_the_sample_parses():
    sample = yaml.safe_load((Path(smtp.__file__).parent / "sample.yaml").read_text())
    for name, raw in sample["alerts"]["channels"].items():
        channel = parse(raw, env={"GF_SMTP_PASSWORD": "x"}, name=name)
        assert channel.type == "smtp" and channel.security == "starttls"


def test_the_sample_loads_through_the_plant_config(tmp_path):
    # The whole path a plant takes at start: plant.yaml → alerts config → this module's parse.
    raw = copy.deepcopy(EXAMPLE)
    sample = yaml.safe_load((Path(smtp.__file__).parent / "sample.yaml").read_text())
    raw.setdefault("alerts", {}).setdefault("channels", {}).update(sample["alerts"]["channels"])
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    env = {"GF_MQTT_PASSWORD": "x", "GF_INFLUX_PASSWORD": "x", "GF_SMTP_PASSWORD": "x"}
    channels = plant.load(path, env=env).alerts.channels
    assert [channels[name].type for name in sample["alerts"]["channels"]] == ["smtp"]
