"""The DingTalk (钉钉) custom robot channel: a markdown message to one group chat (README.md).

The robot's webhook URL carries its access_token and is a secret (`url_env` / `url_file`), as is
the signing secret of the robot's "加签" security mode (`secret_env` / `secret_file`). In signed
mode every request carries ``&timestamp=<ms>&sign=<urlencoded base64(HMAC-SHA256(secret,
"<timestamp>\\n<secret>"))>``, computed at each send: DingTalk refuses a timestamp more than an
hour away from its clock. DingTalk answers ``{"errcode": 0, "errmsg": "ok"}``; the rate limit (20
messages a minute per robot) is retried, 310000 (signature, keyword or IP check failed) and
every other errcode are permanent.

The HTTP exchange, the secret URL's checks and the safe cut of a long text are the WeCom
channel's (`greenfoundry.alerts.channels.wecom`): the two group robots speak alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable

from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.alerts.channels.wecom import MOBILE_RE, fit, post_json, secret_url
from greenfoundry.alerts.dispatch import DEFAULT_RETRY, RetryPolicy, parse_retry
from greenfoundry.alerts.notification import Notification
from greenfoundry.plant import Secret, _secret

TYPE = "dingtalk"
# DingTalk refuses a request body over 20000 bytes (errcode 460101 "message too long, exceed
# 20000 bytes"; "body 大小不合法 ... 请保持大小在 20000bytes 以内").
BODY_MAX_BYTES = 20000
# The rate limit's errcodes: 130101 "send too fast" (as the brief of this channel gives it) and
# 410100 "发送速度太快而限流" (DingTalk's newer list, from memory); neither is confirmed by a
# page found here, see README.md. Retrying a code that turns out permanent only costs retries.
RETRYABLE_ERRCODES = frozenset({130101, 410100})
# "每个机器人每分钟最多发送20条消息到群里，如果超过20条，会限流10分钟": an earlier retry is refused.
RATE_LIMIT_WAIT_S = 600.0


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature of the signed ("加签") mode, URL-encoded: base64 of
    HMAC-SHA256 with the secret as key over "<timestamp>\\n<secret>", both UTF-8."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def parse(node, cfg, env: dict[str, str] | None, name: str) -> DingtalkChannel:
    """`alerts.channels.<name>` of type dingtalk (keys in README.md). With `env` None the secrets
    are checked for presence but not resolved, and such a channel refuses to send."""
    node.choice("type", (TYPE,), TYPE)
    if node.has("secret"):
        node.fail(
            "the signing secret is not read from the YAML; give secret_env (an environment "
            "variable name) or secret_file (a path)",
            "secret",
        )
    url = secret_url(node, env, "access_token", "DingTalk")
    signed = node.has("secret_env") or node.has("secret_file")
    secret = _secret(node, "secret", env)
    mobiles = node.texts("at_mobiles")
    for i, mobile in enumerate(mobiles):
        if not MOBILE_RE.match(mobile):
            node.refuse(f"at_mobiles[{i}]", mobile, "a mobile number or @all")
    keyword = node.text("keyword", None)
    timeout_s = node.number("timeout_s", 10, above=0, high=120, unit="s")
    retry = parse_retry(node)
    node.done()
    return DingtalkChannel(
        name,
        url=url,
        secret=secret,
        signed=signed,
        at_mobiles=mobiles,
        keyword=keyword,
        timeout_s=float(timeout_s),
        retry=retry,
    )


class DingtalkChannel:
    """Posts each notification's markdown to one DingTalk custom robot."""

    type = TYPE

    def __init__(
        self,
        name: str,
        *,
        url: Secret | None,
        secret: Secret | None = None,
        signed: bool | None = None,
        at_mobiles: tuple[str, ...] = (),
        keyword: str | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        clock: Callable[[], float] = time.time,
    ):
        self.name, self._url, self._secret, self.retry = name, url, secret, retry
        self.signed = secret is not None if signed is None else signed
        self.at_mobiles = tuple(at_mobiles)
        self.keyword, self.timeout_s, self._clock = keyword, timeout_s, clock
        self.sent = 0
        self.truncated = 0

    def __repr__(self) -> str:
        return f"DingtalkChannel(name={self.name!r}, signed={self.signed})"

    def body(self, n: Notification) -> dict:
        """The markdown message for `n`, its text cut so the whole body stays within 20000
        bytes. In markdown an @-mention shows only when "@<mobile>" is in the text as well."""
        title = n.subject
        if self.keyword and self.keyword not in title:
            # The keyword security mode refuses a message without one of its words.
            title = f"{self.keyword} {title}"
        mentions = [m for m in self.at_mobiles if m != "@all"]
        text = n.markdown or n.text
        ending = "".join(f" @{m}" for m in mentions)
        body: dict = {"msgtype": "markdown", "markdown": {"title": title[:100], "text": ""}}
        if self.at_mobiles:
            body["at"] = {"atMobiles": mentions, "isAtAll": "@all" in self.at_mobiles}
        room = BODY_MAX_BYTES - len(_encode(body)) - len(ending.encode())
        while True:
            cut = fit(text, room, n.link)
            body["markdown"]["text"] = cut + ("\n\n" + ending.strip() if ending else "")
            over = len(_encode(body)) - BODY_MAX_BYTES
            if over <= 0:
                return body
            room -= over  # JSON escapes (\n, \") took more bytes than the text had

    def url(self) -> str:
        """The robot's URL for one request: with a fresh timestamp and signature when signed."""
        if not self.signed:
            return self._url.value
        timestamp_ms = int(self._clock() * 1000)
        return f"{self._url.value}&timestamp={timestamp_ms}&sign={sign(self._secret.value, timestamp_ms)}"

    def send(self, notification: Notification) -> None:
        where = f"dingtalk channel {self.name}"
        if self._url is None or (self.signed and self._secret is None):
            raise PermanentChannelError(
                f"{where}: the URL or the secret was not resolved (the config was loaded "
                "without secrets)"
            )
        body = self.body(notification)
        answer = post_json(self.url(), body, self.timeout_s, where)
        code = answer.get("errcode")
        if code != 0:
            said = f"errcode {code}: {str(answer.get('errmsg', ''))[:200]}"
            if code in RETRYABLE_ERRCODES:
                error = ChannelError(f"{where}: rate limited ({said})")
                error.retry_after_s = RATE_LIMIT_WAIT_S
                raise error
            raise PermanentChannelError(f"{where}: refused ({said})")
        if not body["markdown"]["text"].startswith(notification.markdown or notification.text):
            self.truncated += 1
        self.sent += 1

    def close(self) -> None:
        """Nothing is held open: each send is its own HTTPS request."""


def _encode(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
