"""The WeCom group robot channel against a real local HTTP server that checks what WeCom's
robot API checks (developer.work.weixin.qq.com/document/path/91770, and the errcodes its
users report): the webhook path and key, a JSON body of a known msgtype, markdown.content at
most 4096 bytes of UTF-8 (errcode 40058 beyond), text.content at most 2048, and at most N
messages a minute per robot (errcode 45009)."""

from __future__ import annotations

import copy
import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from greenfoundry import plant
from greenfoundry.alerts.channels import wecom
from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.alerts.dispatch import DEFAULT_RETRY, RetryPolicy
from greenfoundry.alerts.notification import Notification
from greenfoundry.errors import ConfigError
from greenfoundry.inputs import Node
from greenfoundry.stack import free_port, make_certificates
from tests.plant import EXAMPLE

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
LINK = "greenfoundry alerts list --firing"
MARKDOWN = (
    '**<font color="warning">预警</font>：烟囱 S1 二氧化硫 0.72 C**\n'
    "> 小时均值 36 mg/m³，限值 C 50 mg/m³\n"
    "> 自 2026-11-30 16:00（北京时间）起；趋势 +0.04 C/h\n"
    f"查看：`{LINK}`"
)


def notification(**changes) -> Notification:
    base = dict(
        id="wecom-test-stack-warning-s1-so2",
        plant="wecom-test",
        plant_name="示范管厂",
        event="firing",
        severity="warning",
        rule="stack-warning",
        subject="预警：烟囱 S1 二氧化硫 0.72 C",
        text="烟囱 S1 二氧化硫小时均值 36 mg/m³（0.72 C）",
        markdown=MARKDOWN,
        at_ns=1_796_025_600 * 10**9,
        link=LINK,
    )
    base.update(changes)
    return Notification(**base)


class Robot:
    """What the fake WeCom robot knows and has accepted."""

    def __init__(self, key: str = KEY, per_minute: int = 20):
        self.key, self.per_minute = key, per_minute
        self.accepted: list[dict] = []
        self.sent_at: list[float] = []  # accepted or not, as WeCom counts every call
        self.headers: list[dict] = []
        self.http_status: int | None = None  # answer this status instead (a broken gateway)
        self.raw_answer: bytes | None = None
        self.redirect_to: str | None = None
        self.hold = threading.Event()  # set: answer; clear: hang until set (a silent peer)
        self.hold.set()

    def answer(self, path: str, headers, data: bytes) -> tuple[int, dict]:
        url = urllib.parse.urlsplit(path)
        if url.path != "/cgi-bin/webhook/send":
            return 404, {}
        if urllib.parse.parse_qs(url.query).get("key") != [self.key]:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        now = time.monotonic()
        self.sent_at = [t for t in self.sent_at if now - t < 60] + [now]
        if len(self.sent_at) > self.per_minute:
            return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}
        if not headers.get("Content-Type", "").startswith("application/json"):
            return 200, {"errcode": 40058, "errmsg": "invalid Request Parameter"}
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return 200, {"errcode": 40058, "errmsg": "invalid Request Parameter"}
        kind = body.get("msgtype")
        limits = {"markdown": 4096, "text": 2048}
        if kind not in limits or not isinstance(body.get(kind), dict):
            return 200, {"errcode": 40008, "errmsg": "invalid message type"}
        content = body[kind].get("content")
        if not isinstance(content, str) or not content:
            return 200, {"errcode": 40058, "errmsg": f"{kind}.content missing"}
        if len(content.encode("utf-8")) > limits[kind]:
            return 200, {
                "errcode": 40058,
                "errmsg": f"{kind}.content exceed max length {limits[kind]}. invalid Request Parameter",
            }
        mobiles = body[kind].get("mentioned_mobile_list", [])
        if not isinstance(mobiles, list) or not all(isinstance(m, str) for m in mobiles):
            return 200, {"errcode": 40058, "errmsg": "invalid mentioned_mobile_list"}
        self.accepted.append(body)
        return 200, {"errcode": 0, "errmsg": "ok"}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        robot: Robot = self.server.robot
        robot.hold.wait(30)
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        robot.headers.append(dict(self.headers))
        if robot.redirect_to:
            self.send_response(302)
            self.send_header("Location", robot.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if robot.http_status or robot.raw_answer:
            out = robot.raw_answer or b"<html>bad gateway</html>"
            self.send_response(robot.http_status or 200)
        else:
            status, answer = robot.answer(self.path, self.headers, data)
            out = json.dumps(answer).encode()
            self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        try:
            self.end_headers()
            self.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the silent-server test): nobody to answer

    def log_message(self, *args):  # the test's output stays readable
        pass


@pytest.fixture
def robot():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.robot = Robot()
    server.robot.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.robot
    server.robot.hold.set()
    server.shutdown()
    server.server_close()


def parse(raw: dict, env: dict | None, name: str = "wecom-ops"):
    return wecom.parse(Node(raw, f"alerts.channels.{name}", error=ConfigError), None, env, name)


def channel(robot: Robot, key: str = KEY, **extra) -> wecom.WecomChannel:
    url = f"{robot.base}/cgi-bin/webhook/send?key={key}"
    raw = {"type": "wecom", "url_env": "GF_WECOM_URL", "timeout_s": 5, **extra}
    return parse(raw, {"GF_WECOM_URL": url})


# ------------------------------------------------------------------------------ delivery


def test_the_markdown_arrives_in_wecoms_format(robot):
    channel(robot).send(notification())
    assert robot.accepted == [{"msgtype": "markdown", "markdown": {"content": MARKDOWN}}]
    assert robot.headers[0]["Content-Type"] == "application/json; charset=utf-8"


def test_a_long_markdown_is_cut_on_a_character_boundary_with_the_link(robot):
    # 1500 three-byte characters (4500 bytes) and a line break every 100: over WeCom's 4096.
    long = "\n".join("烟" * 100 for _ in range(15))
    assert len(long.encode()) == 15 * 300 + 14 > 4096
    # First the fake's own check: the whole text is refused, as WeCom refuses it.
    with pytest.raises(PermanentChannelError, match=r"errcode 40058: markdown\.content exceed"):
        channel(robot)._post({"msgtype": "markdown", "markdown": {"content": long}})

    sender = channel(robot)
    sender.send(notification(markdown=long))
    content = robot.accepted[-1]["markdown"]["content"]
    tail = f"\n…\n`{LINK}`"
    assert content.endswith(tail)
    kept = content[: -len(tail)]
    # Cut at the last whole line that fits: 4096 bytes less the tail's, in 301-byte lines.
    budget = 4096 - len(tail.encode())
    lines = budget // 301  # the newline after line k is byte 301k − 1
    assert kept == "\n".join("烟" * 100 for _ in range(lines))
    assert sender.truncated == 1


def test_a_cut_inside_a_character_never_splits_it():
    # No line breaks: the cut falls inside the 3-byte sequences and must back off to a whole
    # character. 4096 − len("\n…") = 4092 bytes: 1364 characters (4092 bytes) fit exactly, so
    # shift by one byte with a leading ASCII letter: 1 + 1363 × 3 = 4090 ≤ 4092 < 4093.
    text = "a" + "铸" * 2000
    cut = wecom.fit(text, 4096, None)
    assert cut == "a" + "铸" * 1363 + "\n…"
    assert len(cut.encode()) <= 4096


def test_mentions_follow_as_a_text_message_and_a_retry_does_not_repeat_the_markdown(robot):
    sender = channel(robot, mentioned_mobile_list=["13800001111", "@all"])
    robot.per_minute = 1  # the markdown goes through, the mention meets the rate limit
    with pytest.raises(ChannelError, match=r"rate limited.*errcode 45009") as caught:
        sender.send(notification())
    assert not isinstance(caught.value, PermanentChannelError)
    assert [b["msgtype"] for b in robot.accepted] == ["markdown"]
    robot.per_minute = 20
    sender.send(notification())  # the dispatcher's retry
    assert [b["msgtype"] for b in robot.accepted] == ["markdown", "text"]
    assert robot.accepted[1]["text"] == {
        "content": "预警：烟囱 S1 二氧化硫 0.72 C",
        "mentioned_mobile_list": ["13800001111", "@all"],
    }


# ------------------------------------------------------------------------------ refusals


def test_the_rate_limit_is_retryable_and_a_wrong_key_is_permanent(robot):
    robot.per_minute = 2
    sender = channel(robot)
    sender.send(notification())
    sender.send(notification())
    with pytest.raises(ChannelError, match="errcode 45009") as caught:
        sender.send(notification())
    assert not isinstance(caught.value, PermanentChannelError)
    # The window the vendor documents, for the dispatcher to wait before the next try.
    assert caught.value.retry_after_s == 60
    robot.per_minute = 20
    with pytest.raises(PermanentChannelError, match="errcode 93000: invalid webhook url"):
        channel(robot, key="not-the-key").send(notification())


def test_http_failures_are_sorted_into_retryable_and_permanent(robot):
    robot.http_status = 502
    with pytest.raises(ChannelError, match="HTTP 502") as caught:
        channel(robot).send(notification())
    assert not isinstance(caught.value, PermanentChannelError)
    robot.http_status = 403
    with pytest.raises(PermanentChannelError, match="HTTP 403"):
        channel(robot).send(notification())
    robot.http_status, robot.raw_answer = None, b"<html>captive portal</html>"
    with pytest.raises(ChannelError, match="not the robot's JSON") as caught:
        channel(robot).send(notification())
    assert not isinstance(caught.value, PermanentChannelError)
    robot.raw_answer, robot.redirect_to = None, "http://127.0.0.1:9/elsewhere"
    with pytest.raises(PermanentChannelError, match="HTTP 302"):
        channel(robot).send(notification())
    assert robot.accepted == []


def test_no_server_and_a_silent_server_are_retryable_and_never_show_the_url(robot):
    url = f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send?key={KEY}"
    sender = parse({"type": "wecom", "url_env": "U", "timeout_s": 5}, {"U": url})
    with pytest.raises(ChannelError, match="cannot reach the robot") as caught:
        sender.send(notification())
    assert KEY not in str(caught.value)

    robot.hold.clear()  # the server reads nothing and answers nothing
    sender = channel(robot, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(ChannelError, match=r"no answer within 0.5 s") as caught:
        sender.send(notification())
    assert time.monotonic() - started < 5
    assert not isinstance(caught.value, PermanentChannelError)
    assert KEY not in str(caught.value) and KEY not in repr(sender)


def test_https_is_verified_and_an_unknown_certificate_refused_for_good(tmp_path):
    # The fake robot over TLS with a certificate of a CA the system does not know (made by the
    # stack's openssl recipe): the channel verifies and refuses, it never sends the key to it.
    make_certificates(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.robot = Robot()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/cgi-bin/webhook/send?key={KEY}"
        sender = parse({"type": "wecom", "url_env": "U", "timeout_s": 5}, {"U": url})
        with pytest.raises(PermanentChannelError, match="certificate does not verify"):
            sender.send(notification())
        assert server.robot.accepted == []
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("raw", "env", "message"),
    [
        ({"url": "https://x/?key=1"}, {}, r"wecom-ops\.url: the webhook URL holds the robot's key"),
        ({}, {}, r"wecom-ops\.url_env: missing; give url_env or url_file"),
        ({"url_env": "U"}, {}, r"wecom-ops\.url_env: environment variable U is not set"),
        (
            {"url_env": "U"},
            {"U": "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + KEY},
            r"url_env: the URL from env:U is refused: it is plain http to another machine",
        ),
        (
            {"url_env": "U"},
            {"U": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"},
            r"url_env: the URL from env:U is refused: it has no key= parameter",
        ),
        (
            {"url_env": "U", "mentioned_mobile_list": ["138-0000"]},
            {"U": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + KEY},
            r"wecom-ops\.mentioned_mobile_list\[0\]: '138-0000' is not allowed",
        ),
        (
            {"url_env": "U", "msgtype": "text"},
            {"U": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + KEY},
            r"wecom-ops\.msgtype: unknown key",
        ),
    ],
)
def test_a_bad_config_names_the_key_and_never_the_url(raw, env, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse({"type": "wecom", **raw}, env)
    assert KEY not in str(caught.value)


def test_the_url_from_a_file_and_unresolved(tmp_path):
    secret = tmp_path / "wecom-url"
    secret.write_text(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}\n")
    sender = parse({"type": "wecom", "url_file": str(secret)}, {})
    assert sender._url.value.endswith(KEY)
    unresolved = parse({"type": "wecom", "url_env": "GF_WECOM_URL"}, None)
    with pytest.raises(PermanentChannelError, match="URL was not resolved"):
        unresolved.send(notification())


def test_retries_are_the_dispatchers_keys(robot):
    assert channel(robot).retry == DEFAULT_RETRY
    assert channel(robot, retries=0, retry_for="30m").retry == RetryPolicy(0, 1800.0)


def test_the_sample_parses():
    sample = yaml.safe_load((Path(wecom.__file__).parent / "sample.yaml").read_text())
    url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
    for name, raw in sample["alerts"]["channels"].items():
        assert parse(raw, {"GF_WECOM_URL": url}, name=name).type == "wecom"


def test_the_sample_loads_through_the_plant_config(tmp_path):
    # The whole path a plant takes at start: plant.yaml → alerts config → this module's parse.
    raw = copy.deepcopy(EXAMPLE)
    sample = yaml.safe_load((Path(wecom.__file__).parent / "sample.yaml").read_text())
    raw.setdefault("alerts", {}).setdefault("channels", {}).update(sample["alerts"]["channels"])
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    env = {
        "GF_MQTT_PASSWORD": "x",
        "GF_INFLUX_PASSWORD": "x",
        "GF_WECOM_URL": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}",
    }
    channels = plant.load(path, env=env).alerts.channels
    assert [channels[name].type for name in sample["alerts"]["channels"]] == ["wecom"]
