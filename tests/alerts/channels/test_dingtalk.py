"""The DingTalk custom robot channel against a real local HTTP server that checks what
DingTalk's robot API checks: the access_token; in signed mode (加签) a signature it recomputes
itself from the shared secret and the request's timestamp — "sign not match" and a timestamp
more than an hour off both answer errcode 310000, as DingTalk does; in keyword mode a keyword in
the message (310000 "keywords not in content"); a markdown message with a title and a text; a
body of at most 20000 bytes (460101); at most N messages a minute (130101)."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from greenfoundry import plant
from greenfoundry.alerts.channels import dingtalk
from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.alerts.dispatch import DEFAULT_RETRY, RetryPolicy
from greenfoundry.alerts.notification import Notification
from greenfoundry.errors import ConfigError
from greenfoundry.inputs import Node
from tests.plant import EXAMPLE

TOKEN = "d5f2e1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2"
SECRET = "SEC0f3a5e2c9d1b7a4e6f8c0d2b4a6e8f0c1d3b5a7e9f1c3d5b7a9e1f3c5d7b9a1e"
LINK = "greenfoundry alerts list --firing"
MARKDOWN = (
    "#### 报警：1 号中频炉本班吨铁电耗高于表 C.1 二级限值\n"
    "> 本班 612 kWh/t，二级限值 600 kWh/t（1.02 倍）\n"
    "> 自 08:00 交班起；趋势 +4 kWh/t·h\n\n"
    f"查看：`{LINK}`"
)


def notification(**changes) -> Notification:
    base = dict(
        id="dingtalk-test-furnace-tier3-if1",
        plant="dingtalk-test",
        plant_name="示范管厂",
        event="firing",
        severity="alarm",
        rule="furnace-tier3",
        subject="报警：IF1 本班电耗 612 kWh/t，高于二级限值",
        text="IF1 本班电耗 612 kWh/t",
        markdown=MARKDOWN,
        at_ns=1_796_025_600 * 10**9,
        link=LINK,
    )
    base.update(changes)
    return Notification(**base)


class Robot:
    """What the fake DingTalk robot is configured with and has accepted."""

    def __init__(self):
        self.token = TOKEN
        self.secret: str | None = SECRET  # None: not in signed mode
        self.keywords: tuple[str, ...] = ()
        self.per_minute = 20
        self.calls: list[float] = []
        self.accepted: list[dict] = []
        self.queries: list[str] = []

    def answer(self, path: str, data: bytes) -> dict:
        url = urllib.parse.urlsplit(path)
        self.queries.append(url.query)
        query = urllib.parse.parse_qs(url.query)
        if url.path != "/robot/send" or query.get("access_token") != [self.token]:
            return {"errcode": 300005, "errmsg": "token is not exist"}
        if self.secret is not None:
            try:
                timestamp_ms = int(query["timestamp"][0])
                given = query["sign"][0]  # parse_qs has undone the URL-encoding
            except (KeyError, ValueError):
                return {"errcode": 310000, "errmsg": "sign not match"}
            if abs(time.time() * 1000 - timestamp_ms) > 3600 * 1000:
                return {"errcode": 310000, "errmsg": "invalid timestamp"}
            # DingTalk's recipe, recomputed here from the shared secret.
            mac = hmac.new(
                self.secret.encode(), f"{timestamp_ms}\n{self.secret}".encode(), hashlib.sha256
            )
            if given != base64.b64encode(mac.digest()).decode():
                return {"errcode": 310000, "errmsg": "sign not match"}
        now = time.monotonic()
        self.calls = [t for t in self.calls if now - t < 60] + [now]
        if len(self.calls) > self.per_minute:
            return {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
        if len(data) > 20000:
            return {"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"}
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {"errcode": 40035, "errmsg": "缺少参数 json"}
        markdown = body.get("markdown")
        if body.get("msgtype") != "markdown" or not isinstance(markdown, dict):
            return {"errcode": 40035, "errmsg": "缺少参数 msgtype/markdown"}
        title, text = markdown.get("title"), markdown.get("text")
        if not (isinstance(title, str) and title and isinstance(text, str) and text):
            return {"errcode": 40035, "errmsg": "缺少参数 title/text"}
        at = body.get("at", {})
        if not isinstance(at.get("atMobiles", []), list) or not isinstance(
            at.get("isAtAll", False), bool
        ):
            return {"errcode": 40035, "errmsg": "at 格式错误"}
        if self.keywords and not any(k in title + text for k in self.keywords):
            return {"errcode": 310000, "errmsg": "keywords not in content"}
        self.accepted.append(body)
        return {"errcode": 0, "errmsg": "ok"}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out = json.dumps(self.server.robot.answer(self.path, data)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def robot():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.robot = Robot()
    server.robot.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.robot
    server.shutdown()
    server.server_close()


def parse(raw: dict, env: dict | None, name: str = "ding-ops"):
    return dingtalk.parse(Node(raw, f"alerts.channels.{name}", error=ConfigError), None, env, name)


def channel(robot: Robot, *, secret: str | None = SECRET, **extra) -> dingtalk.DingtalkChannel:
    env = {"GF_DING_URL": f"{robot.base}/robot/send?access_token={TOKEN}"}
    raw = {"type": "dingtalk", "url_env": "GF_DING_URL", "timeout_s": 5, **extra}
    if secret is not None:
        env["GF_DING_SECRET"] = secret
        raw["secret_env"] = "GF_DING_SECRET"
    return parse(raw, env)


# ------------------------------------------------------------------------------ signing


def test_a_signed_message_is_accepted_in_dingtalks_format(robot):
    channel(robot).send(notification())
    assert robot.accepted == [
        {
            "msgtype": "markdown",
            "markdown": {"title": "报警：IF1 本班电耗 612 kWh/t，高于二级限值", "text": MARKDOWN},
        }
    ]
    query = robot.queries[-1]
    # The signature is URL-encoded in the query: base64 of 32 bytes ends in one "=", "%3D".
    assert query.startswith(f"access_token={TOKEN}&timestamp=")
    assert query.endswith("%3D")


def test_the_signature_matches_dingtalks_published_example_recipe():
    # DingTalk's documentation gives the recipe as Python code; computed here by that recipe,
    # independently of the channel: hmac(secret, f"{ts}\n{secret}") → base64 → quote_plus.
    ts, secret = 1_700_000_000_000, "this is secret"
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), digestmod=hashlib.sha256)
    assert dingtalk.sign(secret, ts) == urllib.parse.quote_plus(base64.b64encode(mac.digest()))


def test_a_wrong_secret_is_refused_for_good(robot):
    with pytest.raises(PermanentChannelError, match="errcode 310000: sign not match"):
        channel(robot, secret=SECRET + "x").send(notification())
    robot.secret = None  # a robot not in signed mode ignores the signature
    channel(robot, secret=None).send(notification())
    assert len(robot.accepted) == 1


def test_a_timestamp_more_than_an_hour_off_is_refused_and_59_minutes_is_not(robot):
    late = channel(robot)
    late._clock = lambda: time.time() - 2 * 3600
    with pytest.raises(PermanentChannelError, match="errcode 310000: invalid timestamp"):
        late.send(notification())
    almost = channel(robot)
    almost._clock = lambda: time.time() - 59 * 60
    almost.send(notification())
    assert len(robot.accepted) == 1


def test_each_send_signs_anew(robot):
    clock = iter([1000.0, 1001.0])
    sender = channel(robot)
    sender._clock = lambda: next(clock) + time.time() - 1000.0
    sender.send(notification())
    sender.send(notification())
    first, second = (urllib.parse.parse_qs(q) for q in robot.queries)
    assert first["timestamp"] != second["timestamp"] and first["sign"] != second["sign"]


# ------------------------------------------------------------------------------ content


def test_mentions_are_in_the_text_and_in_at(robot):
    channel(robot, at_mobiles=["13800001111", "13900002222"]).send(notification())
    body = robot.accepted[-1]
    assert body["at"] == {"atMobiles": ["13800001111", "13900002222"], "isAtAll": False}
    assert body["markdown"]["text"] == MARKDOWN + "\n\n@13800001111 @13900002222"
    channel(robot, at_mobiles=["@all"]).send(notification())
    assert robot.accepted[-1]["at"] == {"atMobiles": [], "isAtAll": True}


def test_the_keyword_mode(robot):
    robot.keywords = ("铸造告警",)
    with pytest.raises(PermanentChannelError, match="keywords not in content"):
        channel(robot).send(notification())
    channel(robot, keyword="铸造告警").send(notification())
    assert robot.accepted[-1]["markdown"]["title"].startswith("铸造告警 ")


def test_a_long_text_is_cut_to_fit_the_20000_byte_body(robot):
    # 8000 three-byte characters in lines of 80 with a quote in each: 24000+ bytes, and the
    # JSON escapes of the newlines and quotes add more.
    long = "\n".join('"' + "铁" * 80 + '"' for _ in range(100))
    # First the fake's own check: the whole text in one body is refused, as DingTalk does.
    whole = {"msgtype": "markdown", "markdown": {"title": "t", "text": long}}
    answer = dingtalk.post_json(channel(robot).url(), whole, 5, "test")
    assert answer["errcode"] == 460101
    sender = channel(robot)
    sender.send(notification(markdown=long))
    text = robot.accepted[-1]["markdown"]["text"]
    assert text.endswith(f"\n…\n`{LINK}`")
    assert long.startswith(text[: -len(f"\n…\n`{LINK}`")])
    sent = json.dumps(robot.accepted[-1], ensure_ascii=False).encode()
    assert 19000 < len(sent) <= 20000  # cut to fit, not far below
    assert sender.truncated == 1


# ------------------------------------------------------------------------------ refusals


def test_the_rate_limit_is_retryable_and_an_unknown_token_is_permanent(robot):
    robot.per_minute = 1
    sender = channel(robot)
    sender.send(notification())
    with pytest.raises(ChannelError, match=r"rate limited.*errcode 130101") as caught:
        sender.send(notification())
    assert not isinstance(caught.value, PermanentChannelError)
    # The window the vendor documents, for the dispatcher to wait before the next try.
    assert caught.value.retry_after_s == 600
    robot.token = "another"
    with pytest.raises(PermanentChannelError, match="errcode 300005: token is not exist"):
        sender.send(notification())


# ------------------------------------------------------------------------------ config


URL = f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"


@pytest.mark.parametrize(
    ("raw", "env", "message"),
    [
        ({"url": URL}, {}, r"ding-ops\.url: the webhook URL holds the robot's access_token"),
        ({"url_env": "U", "secret": SECRET}, {"U": URL}, r"ding-ops\.secret: the signing secret"),
        ({}, {}, r"ding-ops\.url_env: missing; give url_env or url_file"),
        (
            {"url_env": "U"},
            {"U": "https://oapi.dingtalk.com/robot/send"},
            r"url_env: the URL from env:U is refused: it has no access_token= parameter",
        ),
        (
            {"url_env": "U", "secret_env": "S"},
            {"U": URL},
            r"ding-ops\.secret_env: environment variable S is not set",
        ),
        (
            {"url_env": "U", "at_mobiles": ["lead"]},
            {"U": URL},
            r"ding-ops\.at_mobiles\[0\]: 'lead' is not allowed",
        ),
        ({"url_env": "U", "atMobiles": []}, {"U": URL}, r"ding-ops\.atMobiles: unknown key"),
    ],
)
def test_a_bad_config_names_the_key_and_never_a_secret(raw, env, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse({"type": "dingtalk", **raw}, env)
    assert TOKEN not in str(caught.value) and SECRET not in str(caught.value)


def test_unresolved_secrets_refuse_to_send_and_nothing_shows_them(robot):
    unresolved = parse({"type": "dingtalk", "url_env": "U", "secret_env": "S"}, None)
    with pytest.raises(PermanentChannelError, match="not resolved"):
        unresolved.send(notification())
    sender = channel(robot)
    assert TOKEN not in repr(sender) and SECRET not in repr(sender)


def test_retries_are_the_dispatchers_keys(robot):
    assert channel(robot).retry == DEFAULT_RETRY
    assert channel(robot, retries=0, retry_for="30m").retry == RetryPolicy(0, 1800.0)


def test_the_sample_parses():
    sample = yaml.safe_load((Path(dingtalk.__file__).parent / "sample.yaml").read_text())
    env = {"GF_DINGTALK_URL": URL, "GF_DINGTALK_SECRET": SECRET}
    for name, raw in sample["alerts"]["channels"].items():
        assert parse(raw, env, name=name).signed


def test_the_sample_loads_through_the_plant_config(tmp_path):
    # The whole path a plant takes at start: plant.yaml → alerts config → this module's parse.
    raw = copy.deepcopy(EXAMPLE)
    sample = yaml.safe_load((Path(dingtalk.__file__).parent / "sample.yaml").read_text())
    raw.setdefault("alerts", {}).setdefault("channels", {}).update(sample["alerts"]["channels"])
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    env = {
        "GF_MQTT_PASSWORD": "x",
        "GF_INFLUX_PASSWORD": "x",
        "GF_DINGTALK_URL": URL,
        "GF_DINGTALK_SECRET": SECRET,
    }
    channels = plant.load(path, env=env).alerts.channels
    assert [channels[name].type for name in sample["alerts"]["channels"]] == ["dingtalk"]
