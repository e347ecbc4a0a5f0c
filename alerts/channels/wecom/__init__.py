"""The WeCom (企业微信) group robot channel: a markdown message to one group chat (README.md).

The robot's webhook URL carries its key, so the URL is a secret (`url_env` / `url_file`) and is
never logged or shown in an error. WeCom answers HTTP 200 with ``{"errcode": 0, "errmsg":
"ok"}`` on success and a non-zero errcode otherwise: 45009 (the robot's limit of 20 messages a
minute) is retried, any other errcode is permanent.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict

from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.alerts.dispatch import DEFAULT_RETRY, RetryPolicy, parse_retry
from greenfoundry.alerts.notification import Notification
from greenfoundry.plant import Secret, _secret

log = logging.getLogger(__name__)

TYPE = "wecom"
# WeCom's group robot documentation (developer.work.weixin.qq.com/document/path/91770):
# markdown.content "最长不超过4096个字节，必须是utf8编码"; text.content at most 2048 bytes.
MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048
# "api freq out of limit": the robot sent more than 20 messages in a minute; later is fine.
# The window is a minute, so the next try waits at least that long (the dispatcher's
# `retry_after_s`).
RETRYABLE_ERRCODES = frozenset({45009})
RATE_LIMIT_WAIT_S = 60.0
MOBILE_RE = re.compile(r"(\+?\d{5,20}|@all)\Z")


def check_url(url: str, param: str) -> str | None:
    """Why `url` is not a robot webhook URL holding `param`, or None. Plain http only to
    localhost: the URL is the robot's credential."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "it is not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return "it is not an http(s) URL"
    if parts.scheme == "http" and not _loopback(host):
        return "it is plain http to another machine; the URL holds the robot's key, use https"
    if not urllib.parse.parse_qs(parts.query).get(param):
        return f"it has no {param}= parameter"
    return None


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_url(node, env, param: str, vendor: str) -> Secret | None:
    """The robot URL from `url_env` / `url_file`; refused without naming its value."""
    if node.has("url"):
        node.fail(
            f"the webhook URL holds the robot's {param}, a secret, and is not read from the "
            "YAML; give url_env (an environment variable name) or url_file (a path)",
            "url",
        )
    key = "url_env" if node.has("url_env") else "url_file"
    if not node.has("url_env") and not node.has("url_file"):
        node.fail(f"missing; give url_env or url_file, the {vendor} robot's webhook URL", "url_env")
    url = _secret(node, "url", env)
    if url is not None:
        problem = check_url(url.value, param)
        if problem:
            node.fail(f"the URL from {url.source} is refused: {problem}", key)
    return url


def parse(node, cfg, env: dict[str, str] | None, name: str) -> WecomChannel:
    """`alerts.channels.<name>` of type wecom (keys in README.md). With `env` None the URL is
    checked for presence but not resolved, and such a channel refuses to send."""
    node.choice("type", (TYPE,), TYPE)
    url = secret_url(node, env, "key", "WeCom")
    mobiles = node.texts("mentioned_mobile_list")
    for i, mobile in enumerate(mobiles):
        if not MOBILE_RE.match(mobile):
            node.refuse(f"mentioned_mobile_list[{i}]", mobile, "a mobile number or @all")
    timeout_s = node.number("timeout_s", 10, above=0, high=120, unit="s")
    retry = parse_retry(node)
    node.done()
    return WecomChannel(
        name, url=url, mentioned_mobile_list=mobiles, timeout_s=float(timeout_s), retry=retry
    )


class WecomChannel:
    """Posts each notification's markdown to one WeCom group robot."""

    type = TYPE

    def __init__(
        self,
        name: str,
        *,
        url: Secret | None,
        mentioned_mobile_list: tuple[str, ...] = (),
        timeout_s: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ):
        self.name, self._url, self.retry = name, url, retry
        self.mentioned_mobile_list = tuple(mentioned_mobile_list)
        self.timeout_s = timeout_s
        # Notifications whose markdown went out but whose mention did not: a retry sends the
        # mention only (bounded: the oldest are forgotten first).
        self._mention_owed: OrderedDict[str, None] = OrderedDict()
        self.sent = 0
        self.truncated = 0

    def __repr__(self) -> str:
        source = self._url.source if self._url else "unresolved"
        return f"WecomChannel(name={self.name!r}, url=<secret from {source}>)"

    def bodies(self, n: Notification) -> list[dict]:
        """What is posted for `n`: the markdown message, then, with mentions, a short text
        message that @-mentions them (WeCom's markdown type has no mentioned_mobile_list)."""
        content = fit(n.markdown or n.text, MARKDOWN_MAX_BYTES, n.link)
        out = [{"msgtype": "markdown", "markdown": {"content": content}}]
        if self.mentioned_mobile_list:
            text = fit(n.subject, TEXT_MAX_BYTES, None)
            out.append(
                {
                    "msgtype": "text",
                    "text": {
                        "content": text,
                        "mentioned_mobile_list": list(self.mentioned_mobile_list),
                    },
                }
            )
        return out

    def send(self, notification: Notification) -> None:
        if self._url is None:
            raise PermanentChannelError(
                f"wecom channel {self.name}: the URL was not resolved (the config was loaded "
                "without secrets)"
            )
        n = notification
        key = f"{n.plant}|{n.id}|{n.event}|{n.at_ns}"
        markdown, *mentions = self.bodies(n)
        if key not in self._mention_owed:
            self._post(markdown)
            if len(markdown["markdown"]["content"].encode()) < len((n.markdown or n.text).encode()):
                self.truncated += 1
            if mentions:
                self._mention_owed[key] = None
                while len(self._mention_owed) > 256:
                    self._mention_owed.popitem(last=False)
        for body in mentions:
            self._post(body)
        self._mention_owed.pop(key, None)
        self.sent += 1

    def _post(self, body: dict) -> None:
        where = f"wecom channel {self.name}"
        answer = post_json(self._url.value, body, self.timeout_s, where)
        code = answer.get("errcode")
        if code == 0:
            return
        said = f"errcode {code}: {str(answer.get('errmsg', ''))[:200]}"
        if code in RETRYABLE_ERRCODES:
            error = ChannelError(f"{where}: rate limited ({said})")
            error.retry_after_s = RATE_LIMIT_WAIT_S
            raise error
        raise PermanentChannelError(f"{where}: refused ({said})")

    def close(self) -> None:
        """Nothing is held open: each send is its own HTTPS request."""


def fit(text: str, max_bytes: int, link: str | None) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, on a character boundary (at a line break
    when one is near), ending with "…" and the link so the reader still finds the rest."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    tail = "\n…"
    if link:
        shown = f"[{link}]({link})" if link.startswith(("http://", "https://")) else f"`{link}`"
        if len(shown.encode()) <= max_bytes // 4:
            tail += "\n" + shown
    budget = max_bytes - len(tail.encode("utf-8"))
    # A cut inside a multi-byte character leaves a partial sequence at the end: "ignore"
    # drops exactly those bytes (the rest is valid UTF-8 by construction).
    head = raw[:budget].decode("utf-8", "ignore")
    line = head.rfind("\n")
    if line >= len(head) // 2:
        head = head[:line]
    return head.rstrip() + tail


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A robot endpoint that redirects is misconfigured; following it would resend the key
    (urllib would also turn the POST into a GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, body: dict, timeout_s: float, where: str) -> dict:
    """POST `body` as UTF-8 JSON and return the JSON object answered. Transport failures, 429
    and 5xx raise ChannelError; other HTTP errors raise PermanentChannelError. Messages never
    hold the URL (it is the robot's credential)."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            raw = response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 429 or exc.code >= 500:
            raise ChannelError(f"{where}: HTTP {exc.code} {exc.reason}") from None
        raise PermanentChannelError(f"{where}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise PermanentChannelError(
                f"{where}: the server's certificate does not verify ({reason.verify_message})"
            ) from None
        if isinstance(reason, TimeoutError):
            raise ChannelError(f"{where}: no answer within {timeout_s:g} s") from None
        raise ChannelError(f"{where}: cannot reach the robot: {reason}") from None
    except TimeoutError:
        raise ChannelError(f"{where}: no answer within {timeout_s:g} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise ChannelError(f"{where}: the connection failed: {exc}") from None
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("errcode"), int):
        # A proxy's or gateway's page instead of the robot's answer: it may be gone later.
        raise ChannelError(f"{where}: the answer is not the robot's JSON: {raw[:120]!r}")
    return answer
