"""The dispatcher: a durable outbox, one worker per channel, retries with backoff, a slow or
dead channel never delays the others, a restart sends what was pending (alerts/dispatch.py)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time

import pytest

from greenfoundry.alerts import dispatch
from greenfoundry.alerts.channels import jsonl, webhook
from greenfoundry.alerts.channels import log as log_channel
from greenfoundry.alerts.dispatch import Dispatcher, RetryPolicy, mask_secrets
from greenfoundry.errors import BusyError
from greenfoundry.stack import free_port
from tests.alerts.channels import (
    REPO,
    HangServer,
    HookServer,
    node,
    notification,
    plant_cfg,
    with_attachment,
)
from tests.plant import wait_for


def journal(tmp_path, plant_id, name="journal", **keys):
    cfg = plant_cfg(tmp_path, plant_id)
    return jsonl.parse(node({"type": "jsonl", "path": f"{name}.jsonl", **keys}), cfg, None, name)


def ids(path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_channel_gets_every_notification_in_order(tmp_path, caplog):
    a, b = journal(tmp_path, "disp-a", "a"), journal(tmp_path, "disp-a", "b")
    channels = {"a": a, "b": b, "log": log_channel.LogChannel("log")}
    sent = [notification(i, "disp-a") for i in range(20)]
    with (
        caplog.at_level(logging.INFO, logger="greenfoundry.alerts"),
        Dispatcher(channels, tmp_path / "state") as d,
    ):
        for i, n in enumerate(sent):
            # Every notification to a and the log, every other one to b too.
            d.submit(n, ["a", "log", "b"] if i % 2 == 0 else ["a", "log"])
        assert d.flush(10)
        stats = d.stats()
    assert ids(a.path) == [n.id for n in sent]
    assert ids(b.path) == [n.id for n in sent[::2]]
    logged = [r.alert_id for r in caplog.records if hasattr(r, "alert_id")]
    assert logged == [n.id for n in sent]
    assert stats["a"] == {
        "sent": 20,
        "failed": 0,
        "attempts_failed": 0,
        "pending": 0,
        "retrying": 0,
        "last_error": None,
    }
    assert stats["b"]["sent"] == 10


def test_a_hanging_or_refusing_webhook_never_delays_log_and_jsonl(tmp_path, caplog):
    hang = HangServer()
    cfg = plant_cfg(tmp_path, "disp-f")
    env = {"HANG": f"http://127.0.0.1:{hang.port}/x", "DOWN": f"http://127.0.0.1:{free_port()}/x"}
    # The hanging peer holds its first send for 60 s: far longer than this test may take.
    hanging = webhook.parse(
        node({"type": "webhook", "url_env": "HANG", "timeout_s": 60}), cfg, env, "hanging"
    )
    down = webhook.parse(node({"type": "webhook", "url_env": "DOWN"}), cfg, env, "down")
    channels = {
        "log": log_channel.LogChannel("log"),
        "journal": journal(tmp_path, "disp-f"),
        "hanging": hanging,
        "down": down,
    }
    sent = [notification(i, "disp-f") for i in range(5)]
    try:
        with caplog.at_level(logging.INFO, logger="greenfoundry.alerts"):
            d = Dispatcher(channels, tmp_path / "state", backoff_s=(30,))
            for n in sent:
                d.submit(n, ["hanging", "down", "log", "journal"])
            # All five reach the journal and the log while the hanging webhook still waits in
            # its first send (its peer holds the connection, nothing was sent, nothing failed)
            # and the refused one waits 30 s for its first retry.
            wait_for(lambda: len(ids(channels["journal"].path)) == 5, 10, "the journal")
            wait_for(lambda: d.stats()["log"]["sent"] == 5, 10, "the log")
            stats = d.stats()
            assert ids(channels["journal"].path) == [n.id for n in sent]
            wait_for(lambda: len(hang.held) == 1, 10, "the hanging webhook's connection")
            assert stats["hanging"] | {"last_error": None} == {
                "sent": 0,
                "failed": 0,
                "attempts_failed": 0,
                "pending": 5,
                "retrying": 0,
                "last_error": None,
            }
            wait_for(lambda: d.stats()["down"]["retrying"] == 1, 10, "the refused webhook")
            assert d.stats()["down"]["pending"] == 5
            assert "cannot reach the webhook" in d.stats()["down"]["last_error"]
    finally:
        # The hanging peer lets go: its send fails, and close() returns without waiting 60 s.
        hang.close()
        d.close()
    logged = [r.alert_id for r in caplog.records if hasattr(r, "alert_id")]
    assert logged == [n.id for n in sent]


def test_an_unknown_channel_name_is_a_programming_error_and_stores_nothing(tmp_path):
    channel = journal(tmp_path, "disp-b")
    with Dispatcher({"journal": channel}, tmp_path / "state") as d:
        with pytest.raises(ValueError, match=r"unknown alert channel\(s\) \['pager'\]"):
            d.submit(notification(0, "disp-b"), ["journal", "pager"])
        d.submit(notification(1, "disp-b"), [])  # no channel: nothing to do
        d.submit(notification(2, "disp-b"), ["journal", "journal"])  # named twice: sent once
        assert d.flush(10)
    assert ids(channel.path) == ["disp-b-stack-warning-0002"]


def test_the_outbox_keeps_every_field_and_attachment(tmp_path):
    n = with_attachment(notification(5, "disp-c", details={"target": "S1/so2", "hours": [1, 2]}))
    assert dispatch.decode(dispatch.encode(n)) == n


def test_a_second_sending_dispatcher_on_one_outbox_is_refused(tmp_path):
    channel = journal(tmp_path, "disp-d")
    with Dispatcher({"journal": channel}, tmp_path / "state", poll_s=0.1):
        with pytest.raises(BusyError, match=r"outbox\.lock: another dispatcher .* is sending"):
            Dispatcher({"journal": channel}, tmp_path / "state")
        # A writer only (a CLI beside the service) is allowed; the service's worker sends it.
        writer = Dispatcher({"journal": channel}, tmp_path / "state", deliver=False)
        writer.submit(notification(0, "disp-d"), ["journal"])
        writer.close()
        wait_for(lambda: ids(channel.path) == ["disp-d-stack-warning-0000"], 10, "the poll")


def test_a_crash_mid_send_loses_nothing_and_the_restart_sends_in_order(tmp_path):
    # A service submits three notifications to a webhook whose peer hangs, and is killed
    # (SIGKILL: nothing runs after it) while its worker waits in the first send.
    hang = HangServer()
    state = tmp_path / "state"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from greenfoundry.alerts.channels.webhook import WebhookChannel
        from greenfoundry.alerts.dispatch import Dispatcher
        from tests.alerts.channels import notification

        channel = WebhookChannel("hook", "http://127.0.0.1:{hang.port}/x", timeout_s=60)
        d = Dispatcher({{"hook": channel}}, Path({str(state)!r}))
        for i in range(3):
            d.submit(notification(i, "disp-e"), ["hook"])
        print("submitted", flush=True)
        time.sleep(120)
        """
    )
    service = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert service.stdout.readline() == "submitted\n"
        wait_for(lambda: len(hang.held) == 1, 20, "the service's first send")
    finally:
        service.kill()
        service.wait(20)
        hang.close()
    # Restarted, with the peer back: all three, in order (the first again: at least once).
    server = HookServer()
    try:
        cfg = plant_cfg(tmp_path, "disp-e")
        spec = {"type": "webhook", "url": server.url("/x")}
        channel = webhook.parse(node(spec), cfg, None, "hook")
        with Dispatcher({"hook": channel}, state) as d:
            assert d.flush(10)
        assert [b["id"] for b in server.bodies()] == [
            f"disp-e-stack-warning-{i:04d}" for i in range(3)
        ]
    finally:
        server.close()


def test_attempts_and_due_times_survive_a_restart(tmp_path):
    cfg = plant_cfg(tmp_path, "disp-g")
    down = webhook.parse(
        node({"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/x"}), cfg, None, "hook"
    )
    with Dispatcher({"hook": down}, tmp_path / "s", backoff_s=(3600,)) as d:
        d.submit(notification(0, "disp-g"), ["hook"])
        wait_for(lambda: d.stats()["hook"]["retrying"] == 1, 10, "the first failure")
    server = HookServer()
    try:
        up = webhook.parse(node({"type": "webhook", "url": server.url()}), cfg, None, "hook")
        # Restarted with the peer back: the failed delivery keeps its count and its next try,
        # an hour after the failure, so nothing is sent yet (the worker cannot send it early).
        with Dispatcher({"hook": up}, tmp_path / "s") as d:
            stats = d.stats()["hook"]
            assert (stats["pending"], stats["retrying"], stats["sent"]) == (1, 1, 0)
        assert server.requests == []
        # Two hours on, it is due: sent.
        with Dispatcher({"hook": up}, tmp_path / "s", clock=lambda: time.time() + 7200) as d:
            assert d.flush(10)
        assert [b["id"] for b in server.bodies()] == ["disp-g-stack-warning-0000"]
    finally:
        server.close()


def test_retry_for_is_measured_on_the_clock_from_the_submit(tmp_path):
    # A peer that always answers 503; the dispatcher's clock is the test's: it moves only when
    # the test moves it, so what is retried and what is dropped does not depend on speed.
    server = HookServer([(503, {})] * 5)
    now = [1000.0]
    try:
        spec = {"type": "webhook", "url": server.url(), "retry_for": "100s"}
        channel = webhook.parse(node(spec), plant_cfg(tmp_path, "disp-h"), None, "hook")
        with Dispatcher(
            {"hook": channel}, tmp_path / "s", backoff_s=(10,), clock=lambda: now[0], poll_s=0.02
        ) as d:
            d.submit(notification(0, "disp-h"), ["hook"])
            wait_for(lambda: d.stats()["hook"]["attempts_failed"] == 1, 10, "the first attempt")
            now[0] += 10  # due again (1010), age 10 s: a failure is retried
            wait_for(lambda: d.stats()["hook"]["attempts_failed"] == 2, 10, "the second attempt")
            assert d.stats()["hook"]["failed"] == 0
            now[0] += 95  # due again (1105), age 105 s ≥ 100 s: a failure now drops it
            wait_for(lambda: d.stats()["hook"]["failed"] == 1, 10, "the drop")
            assert d.stats()["hook"]["pending"] == 0
        assert len(server.requests) == 3
    finally:
        server.close()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx failed",
            "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=*** failed",
        ),
        (
            "https://oapi.dingtalk.com/robot/send?access_token=abc123&timestamp=1&sign=x%2By",
            "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=***&sign=***",
        ),
        ("http://user:pa55@host:8080/hook", "http://***@host:8080/hook"),
        ("refused: token=abc password: hunter2", "refused: token=*** password: ***"),
        ("connection refused (errno 111)", "connection refused (errno 111)"),
    ],
)
def test_mask_secrets(text, masked):
    assert mask_secrets(text) == masked


def test_retry_policy_keys():
    from tests.alerts.channels import node as n

    assert dispatch.parse_retry(n({})) == RetryPolicy(100, 86400.0)
    assert dispatch.parse_retry(n({"retries": 0, "retry_for": "90s"})) == RetryPolicy(0, 90.0)
    assert dispatch.parse_retry(n({"retry_for": 30})) == RetryPolicy(100, 30.0)
    assert dispatch.parse_retry(n({"retry_for": "1d"})).retry_for_s == 86400.0


def test_json_text_carries_what_the_engine_may_put_in_details():
    import datetime as dt

    import numpy as np

    data = {
        "value": float("nan"),
        "limit": np.float64(50.0),
        "n": np.int64(3),
        "day": dt.date(2026, 10, 1),
        "pair": (1, float("inf")),
        "名": "球墨铸管",
    }
    # By hand: NaN and inf have no JSON form (null), numpy scalars their Python values.
    assert json.loads(dispatch.json_text(data)) == {
        "value": None,
        "limit": 50.0,
        "n": 3,
        "day": "2026-10-01",
        "pair": [1, None],
        "名": "球墨铸管",
    }
    assert "球墨铸管" in dispatch.json_text(data)


class BuggyChannel:
    """A channel with a bug (not a ChannelError): what the dispatcher does with one is the
    dispatcher's own logic, so this one is written here rather than found in a real peer."""

    type = "webhook"

    def __init__(self, name):
        self.name = name

    def send(self, notification):
        raise KeyError(f"https://robot.example.com/send?access_token=S3CRET#{notification.id}")

    def close(self):
        return None


def test_a_channels_bug_drops_the_delivery_once_and_logs_no_secret(tmp_path, caplog):
    good = journal(tmp_path, "disp-i")
    with (
        caplog.at_level(logging.INFO, logger="greenfoundry.alerts"),
        Dispatcher({"bug": BuggyChannel("bug"), "journal": good}, tmp_path / "s") as d,
    ):
        d.submit(notification(0, "disp-i"), ["bug", "journal"])
        assert d.flush(10)
        stats = d.stats()
    assert (stats["bug"]["failed"], stats["bug"]["attempts_failed"]) == (1, 1)
    assert ids(good.path) == ["disp-i-stack-warning-0000"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "Traceback" in errors[0]
    assert "dropped: KeyError" in errors[1]
    assert "S3CRET" not in caplog.text and "access_token=***" in caplog.text


def test_deliveries_of_a_channel_no_longer_configured_wait_and_are_named(tmp_path, caplog):
    old = journal(tmp_path, "disp-j", "old")
    down = webhook.parse(
        node({"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/x"}),
        plant_cfg(tmp_path, "disp-j"),
        None,
        "pager",
    )
    with Dispatcher({"pager": down, "old": old}, tmp_path / "s", backoff_s=(3600,)) as d:
        d.submit(notification(0, "disp-j"), ["pager"])
        d.submit(notification(1, "disp-j"), ["pager"])
        wait_for(lambda: d.stats()["pager"]["retrying"] == 1, 10, "the first failure")
    # The config no longer has `pager`: its two deliveries are kept and named at the start,
    # and flush() does not wait for them.
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="greenfoundry.alerts"),
        Dispatcher({"old": old}, tmp_path / "s") as d,
    ):
        assert d.flush(5)
        assert d.stats() == {
            "old": {
                "sent": 0,
                "failed": 0,
                "attempts_failed": 0,
                "pending": 0,
                "retrying": 0,
                "last_error": None,
            }
        }
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "alerts outbox: 2 notification(s) for channel pager wait, but no channel of that name "
        "is configured"
    ]
    # Back in the config, they are due (after the hour's backoff) and reported at the start.
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="greenfoundry.alerts"),
        Dispatcher({"pager": down}, tmp_path / "s") as d,
    ):
        assert d.stats()["pager"]["pending"] == 2
    assert "alerts outbox: 2 notification(s) for channel pager to send" in caplog.text
