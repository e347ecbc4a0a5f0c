"""The webhook channel against a real local HTTP server (alerts/channels/webhook)."""

from __future__ import annotations

import json
import logging
import time

import pytest

from greenfoundry.alerts.channels import webhook
from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.alerts.dispatch import Dispatcher
from greenfoundry.errors import ConfigError
from greenfoundry.stack import free_port, make_certificates
from tests.alerts.channels import (
    HangServer,
    HookServer,
    node,
    notification,
    plant_cfg,
    sample,
    with_attachment,
)

SECRET_URL_QUERY = "access_token=S3CRET-t0ken"
AUTH = "Bearer 5ECRET-bearer"


@pytest.fixture
def server():
    s = HookServer()
    yield s
    s.close()


def hook(tmp_path, plant_id, url, **keys):
    env = {"HOOK_URL": url, "HOOK_AUTH": AUTH}
    spec = {"type": "webhook", "url_env": "HOOK_URL", **keys}
    return webhook.parse(node(spec, "ops-hook"), plant_cfg(tmp_path, plant_id), env, "ops-hook")


def test_the_body_and_headers_the_server_receives(tmp_path, server):
    channel = hook(
        tmp_path,
        "hook-a",
        server.url(f"/in?{SECRET_URL_QUERY}"),
        headers={"X-Source": "greenfoundry", "Authorization_env": "HOOK_AUTH"},
    )
    n = with_attachment(notification(3, "hook-a"))
    channel.send(n)
    [request] = server.requests
    assert request["path"] == f"/in?{SECRET_URL_QUERY}"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["authorization"] == AUTH
    assert headers["x-source"] == "greenfoundry"
    received = json.loads(request["body"].decode("utf-8"))
    # The notification's own fields, plus the layout's version.
    assert received == {"version": 1, **n.to_dict()}
    assert received["plant_name"].endswith("演示球墨铸管厂")
    assert received["attachments"][0]["filename"] == "p-2026-10.html"
    # Nothing of the secrets in its repr.
    assert "S3CRET" not in repr(channel) and "5ECRET" not in repr(channel)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, ChannelError),
        (500, ChannelError),
        (503, ChannelError),
        (400, PermanentChannelError),
        (401, PermanentChannelError),
        (404, PermanentChannelError),
        (302, PermanentChannelError),  # a redirect is not followed (it would become a GET)
    ],
)
def test_what_each_answer_means(tmp_path, status, error):
    server = HookServer([(status, {"Location": "/elsewhere"} if status == 302 else {})])
    try:
        channel = hook(tmp_path, f"hook-s{status}", server.url(f"/in?{SECRET_URL_QUERY}"))
        with pytest.raises(ChannelError, match=rf"channel ops-hook: .*HTTP {status}") as info:
            channel.send(notification(0, f"hook-s{status}"))
        assert type(info.value) is error
        assert "S3CRET" not in str(info.value)
        assert len(server.requests) == 1  # and no GET to /elsewhere
    finally:
        server.close()


def test_a_refused_connection_and_a_hanging_peer_are_retryable(tmp_path):
    refused = hook(tmp_path, "hook-b", f"http://127.0.0.1:{free_port()}/hook")
    with pytest.raises(ChannelError, match="channel ops-hook: cannot reach the webhook") as info:
        refused.send(notification(0, "hook-b"))
    assert type(info.value) is ChannelError

    hang = HangServer()
    try:
        slow = hook(tmp_path, "hook-b", f"http://127.0.0.1:{hang.port}/hook", timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(ChannelError, match=r"within 0\.3 s") as info:
            slow.send(notification(1, "hook-b"))
        assert type(info.value) is ChannelError
        # It gave up on its own: after its timeout, well before a second one would pass.
        assert 0.3 <= time.monotonic() - started < 5
    finally:
        hang.close()


def test_https_with_the_plants_own_ca(tmp_path):
    certs = tmp_path / "certs"
    make_certificates(certs)  # a CA, and a server certificate for 127.0.0.1 and localhost
    server = HookServer(tls_dir=certs)
    try:
        url = server.url("/secure")
        assert url.startswith("https://")
        trusting = hook(tmp_path, "hook-i", url, ca_file=str(certs / "ca.crt"))
        trusting.send(notification(0, "hook-i"))
        assert [b["id"] for b in server.bodies()] == ["hook-i-stack-warning-0000"]
        # The system's CAs do not know the local one: refused before anything is sent.
        system = hook(tmp_path, "hook-i", url)
        with pytest.raises(ChannelError, match=r"cannot reach the webhook: .*CERTIFICATE_VERIFY"):
            system.send(notification(1, "hook-i"))
        assert len(server.requests) == 1
    finally:
        server.close()
    with pytest.raises(ConfigError, match=r"\.ca_file: cannot read CA certificates from"):
        hook(tmp_path, "hook-i", url, ca_file="missing-ca.crt")


def test_503_twice_then_200_is_sent_once_after_the_backoff(tmp_path):
    server = HookServer([(503, {}), (503, {})])
    try:
        channel = hook(tmp_path, "hook-c", server.url())
        with Dispatcher({"ops-hook": channel}, tmp_path / "state", backoff_s=(0.2, 0.4)) as d:
            n = notification(0, "hook-c")
            d.submit(n, ["ops-hook"])
            assert d.flush(10)
            stats = d.stats()["ops-hook"]
        assert [r["status"] for r in server.requests] == [503, 503, 200]
        assert server.bodies(200) == [{"version": 1, **n.to_dict()}]
        assert (stats["sent"], stats["failed"], stats["attempts_failed"]) == (1, 0, 2)
        # The retries waited for the schedule: 0.2 s after the first, 0.4 s after the second.
        t = [r["at"] for r in server.requests]
        assert t[1] - t[0] >= 0.2 and t[2] - t[1] >= 0.4
    finally:
        server.close()


def test_retry_after_is_respected(tmp_path):
    server = HookServer([(429, {"Retry-After": "1"})])
    try:
        channel = hook(tmp_path, "hook-d", server.url())
        with Dispatcher({"ops-hook": channel}, tmp_path / "state", backoff_s=(0.01,)) as d:
            d.submit(notification(0, "hook-d"), ["ops-hook"])
            assert d.flush(10)
        t = [r["at"] for r in server.requests]
        assert len(t) == 2 and t[1] - t[0] >= 1.0  # the server's 1 s, not our 0.01 s
    finally:
        server.close()


def test_a_400_is_not_retried_and_its_log_line_shows_no_secret(tmp_path, caplog):
    server = HookServer([(400, {})])
    try:
        channel = hook(
            tmp_path,
            "hook-e",
            server.url(f"/in?{SECRET_URL_QUERY}"),
            headers={"Authorization_env": "HOOK_AUTH"},
        )
        with (
            caplog.at_level(logging.DEBUG, logger="greenfoundry.alerts"),
            Dispatcher({"ops-hook": channel}, tmp_path / "state", backoff_s=(0.01,)) as d,
        ):
            d.submit(notification(0, "hook-e"), ["ops-hook"])
            d.submit(notification(1, "hook-e"), ["ops-hook"])
            assert d.flush(10)
            stats = d.stats()["ops-hook"]
        # Each tried once: the first refused for good and dropped, the second sent.
        assert [r["status"] for r in server.requests] == [400, 200]
        assert (stats["sent"], stats["failed"], stats["attempts_failed"]) == (1, 1, 1)
        assert stats["last_error"] == "channel ops-hook: the webhook answered HTTP 400: answer 400"
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert [r.getMessage() for r in errors] == [
            "alert channel ops-hook: notification hook-e-stack-warning-0000 dropped: "
            "channel ops-hook: the webhook answered HTTP 400: answer 400"
        ]
        assert "S3CRET" not in caplog.text and "5ECRET" not in caplog.text
    finally:
        server.close()


def test_retries_and_retry_for_cap_a_failing_delivery(tmp_path, caplog):
    server = HookServer([(503, {})] * 10)
    try:
        capped = hook(tmp_path, "hook-f", server.url("/a"), retries=2)
        aged = hook(tmp_path, "hook-f", server.url("/b"), retry_for=0)
        with (
            caplog.at_level(logging.WARNING, logger="greenfoundry.alerts"),
            Dispatcher({"a": capped, "b": aged}, tmp_path / "state", backoff_s=(0.01,)) as d,
        ):
            d.submit(notification(0, "hook-f"), ["a"])
            assert d.flush(10)
            d.submit(notification(1, "hook-f"), ["b"])
            assert d.flush(10)
            stats = d.stats()
        paths = [r["path"] for r in server.requests]
        # retries: 2 is the first attempt and two retries; retry_for 0 is the first attempt only.
        assert paths == ["/a", "/a", "/a", "/b"]
        assert (stats["a"]["failed"], stats["a"]["attempts_failed"]) == (1, 3)
        assert (stats["b"]["failed"], stats["b"]["attempts_failed"]) == (1, 1)
        dropped = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(dropped) == 2
        assert "hook-f-stack-warning-0000 dropped: " in dropped[0]
        assert "(after 3 attempt(s) over" in dropped[0]
        # One WARNING for the first failure of the first delivery (its retries are DEBUG).
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "(attempt 1), next try in 0.01 s" in warnings[0]
    finally:
        server.close()


def test_the_sample_parses(tmp_path):
    cfg = plant_cfg(tmp_path, "hook-g")
    env = {
        "GF_ALERT_WEBHOOK_URL": "https://hooks.example.com/x?key=1",
        "GF_ALERT_WEBHOOK_AUTH": "B",
    }
    for name, mapping in sample("webhook").items():
        channel = webhook.parse(node(mapping, name), cfg, env, name)
        assert (channel.name, channel.timeout_s, channel.retry.retries) == (name, 10, 100)
        # Without env (a config checked, not run) the secrets are not resolved; a send says so.
        unresolved = webhook.parse(node(mapping, name), cfg, None, name)
        with pytest.raises(PermanentChannelError, match="its URL was not resolved"):
            unresolved.send(notification(0, "hook-g"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, r"\.url_env: give one of url_env, url_file or url"),
        (
            {"url": "http://a/x", "url_env": "HOOK_URL"},
            r"\.url_env: give one of url_env, url_file or url .*, not url and url_env",
        ),
        ({"url": "ftp://a/x"}, r"\.url: 'ftp://a/x' is not allowed; expected an absolute http"),
        (
            {"url": "https://a/x?token=abc"},
            r"\.url: 'https://a/x\?token=\*\*\*' is not allowed; expected a URL without a key",
        ),
        (
            {"url": "https://u:pw@a/x"},
            r"\.url: 'https://\*\*\*@a/x' is not allowed; expected a URL without user",
        ),
        ({"url_env": "NOPE"}, r"\.url_env: environment variable NOPE is not set"),
        (
            {"url_env": "BAD_URL"},
            r"\.url_env: the URL it gives is not allowed; expected an absolute",
        ),
        (
            {"url_env": "HOOK_URL", "headers": {"Authorization": "Bearer x"}},
            r"\.headers\.Authorization: secrets are not read from the YAML; give Authorization_env",
        ),
        (
            {"url_env": "HOOK_URL", "headers": {"Content-Type": "text/plain"}},
            r"\.headers\.Content-Type: not allowed",
        ),
        (
            {"url_env": "HOOK_URL", "timeout_s": 0},
            r"\.timeout_s: 0 is not allowed; expected between 0.1 and 120",
        ),
        ({"url_env": "HOOK_URL", "method": "PUT"}, r"ops-hook\.method: unknown key"),
    ],
)
def test_config_errors_name_the_key_and_never_a_secret(tmp_path, spec, message):
    env = {"HOOK_URL": "https://hooks.example.com/x", "BAD_URL": "hooks.example.com/S3CRET"}
    cfg = plant_cfg(tmp_path, "hook-h")
    with pytest.raises(ConfigError, match=message) as info:
        webhook.parse(node({"type": "webhook", **spec}, "ops-hook"), cfg, env, "ops-hook")
    assert "S3CRET" not in str(info.value)
