"""The parser's contract under inputs nobody wrote by hand: seeded random bytes, random topics,
random JSON built from awkward values, and mutated good payloads. Every call must return, never
raise, and keep the contract (one reason of REASONS, the raw payload whole, one outcome per
single-reading message). Also: `rfc3339_ns` against an independent integer computation.

Seeds are fixed, so a failure reproduces; the seed and the input are in the assertion message.
"""

from __future__ import annotations

import calendar
import json
import math
import random
import re
from datetime import datetime

import pytest

from greenfoundry import glossary
from greenfoundry.ingest.payload import (
    _RFC3339_RE,
    REASONS,
    PayloadParser,
    Reading,
    _for_fromisoformat_310,
    rfc3339_ns,
)
from tests.ingest.test_payload import NOW_NS, make_config

ROOT = "gf/v1/demo-dip"
TOPICS = [
    f"{ROOT}/melt/if1/energy",
    f"{ROOT}/melt/if1/power",
    f"{ROOT}/melt/if2/tap_temp",
    f"{ROOT}/site/weather/air_temp",
    f"{ROOT}/hall/meter-2/flow",
    f"{ROOT}/casting/line1/pipe_count",
    f"{ROOT}/melt/if1/_batch",
    f"{ROOT}/utility/site-intake/_batch",
    f"{ROOT}/melt/if9/_batch",
    f"{ROOT}/melt/if1/voltage",
    "gf/v1/other/melt/if1/power",
    "gf/v1",
    "",
    "/",
    "gf/v1/demo-dip/melt/if1/power\n",
    "gf/v1/demo-dip/melt/if1/power/",
    "$SYS/broker/uptime",
]
SIGNAL_NAMES = ["energy", "power", "tap_weight", "tap_temp", "volume", "voltage", "", "_batch"]
AWKWARD = [
    None,
    True,
    False,
    0,
    -1,
    7,
    2**63,
    10**400,
    10**4299,  # 4,300 digits: the most Python's JSON reader accepts
    -(10**4299),
    1.5,
    -0.0,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "kWh",
    "K",
    "°F",
    "2026-11-22T23:59:59Z",
    "2026-11-22T23:59:59.123456789+08:00",
    "2026-11-22T23:59:60Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "\ud800",
    "\x00\n",
    1795391999000,
    1795392300000,
    -(10**30),
    [],
    {},
    [1, 2],
    {"value": 1},
]
KEYS = ["ts", "ts_ms", "value", "unit", "seq", "signal", "readings", "Value", "\u0000"]


@pytest.fixture(scope="module")
def parser(tmp_path_factory) -> PayloadParser:
    # 64 KiB, not the golden 1 KiB: the 4,300-digit numbers must reach the checks, not `oversized`.
    return PayloadParser(make_config(tmp_path_factory.mktemp("cfg"), max_payload_bytes=65536))


def check_contract(parser: PayloadParser, topic: str, payload: bytes, now_ns: int, why: str):
    out = parser.parse(topic, payload, now_ns)
    assert isinstance(out, tuple) and len(out) == 2, why
    readings, rejects = out
    assert isinstance(readings, list) and isinstance(rejects, list), why
    if not topic.endswith("/_batch"):
        assert len(readings) + len(rejects) == 1, why
    for rej in rejects:
        assert rej.reason in REASONS, why
        assert rej.topic == topic and rej.raw == payload, why
        assert isinstance(rej.detail, str) and 0 < len(rej.detail) < 600, why
        assert not rej.detail.startswith("internal error"), f"{why}: {rej.detail}"
        rej.detail.encode("utf-8")  # the sink writes it as UTF-8: no lone surrogates
        if len(readings) + len(rejects) > 1 or rej.index is not None:
            assert topic.endswith("/_batch") and isinstance(rej.index, int), why
    for r in readings:
        assert isinstance(r, Reading), why
        assert type(r.value) is float and math.isfinite(r.value), why
        sig = glossary.SIGNALS[r.signal]
        assert sig.low <= r.value <= sig.high, why
        assert type(r.ts_ns) is int, why
        line = r.line()
        assert "\n" not in line and line.endswith(f" {r.ts_ns}"), why
    return readings, rejects


def test_random_bytes_and_topics_never_raise(parser):
    rng = random.Random(20261123)
    for n in range(3000):
        size = rng.choice([0, 1, 2, 8, 64, 300, 1024, 65536, 65537])
        payload = rng.randbytes(size)
        if rng.random() < 0.5:
            topic = rng.choice(TOPICS)
        else:
            alphabet = "abz09-_/+#$ \n\x00é\ud800"
            topic = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        check_contract(parser, topic, payload, NOW_NS, f"case {n}: {topic!r} {payload[:60]!r}")


def _random_reading(rng: random.Random, batch: bool) -> dict:
    """A plausible reading with some of its keys replaced by, or added as, awkward values."""
    obj: dict = {"ts_ms": 1795391999000, "value": rng.choice([1.5, 20.0, 1500.0])}
    if batch:
        obj["signal"] = rng.choice(SIGNAL_NAMES)
    for key in ("ts", "ts_ms", "value", "unit", "seq", "signal"):
        if rng.random() < 0.15:
            obj[key] = rng.choice(AWKWARD)
        elif rng.random() < 0.05:
            obj.pop(key, None)
    if rng.random() < 0.05:
        obj[rng.choice(KEYS)] = rng.choice(AWKWARD)
    return obj


def test_random_json_of_awkward_values_never_raises(parser):
    rng = random.Random(118)
    accepted = 0
    for n in range(4000):
        topic = rng.choice(TOPICS)
        batch = topic.endswith("/_batch")
        if batch and rng.random() < 0.9:
            items = [
                _random_reading(rng, True) if rng.random() < 0.9 else rng.choice(AWKWARD)
                for _ in range(rng.randint(0, 6))
            ]
            doc = {"readings": items} if rng.random() < 0.9 else rng.choice(AWKWARD)
        else:
            doc = _random_reading(rng, batch) if rng.random() < 0.95 else rng.choice(AWKWARD)
        text = json.dumps(doc, allow_nan=True, ensure_ascii=rng.random() < 0.5)
        payload = text.encode("utf-8", "surrogatepass")
        readings, _ = check_contract(parser, topic, payload, NOW_NS, f"case {n}: {topic} {text}")
        accepted += len(readings)
    assert accepted > 50  # the generator does reach the happy path, not only rejections


def test_mutated_good_payloads_never_raise(parser):
    rng = random.Random(7)
    seeds = [
        (
            f"{ROOT}/melt/if1/energy",
            b'{"ts": "2026-11-22T23:59:59.250+08:00", "value": 1.5, "seq": 1}',
        ),
        (
            f"{ROOT}/melt/if1/_batch",
            b'{"readings": [{"signal": "energy", "ts_ms": 1795391999000, "value": 1.5, '
            b'"unit": "MWh", "seq": 7}, {"signal": "power", "ts_ms": 1795391999000, "value": 9}]}',
        ),
    ]
    for n in range(4000):
        topic, good = rng.choice(seeds)
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(data) + 1)
            if op < 0.4 and data:
                data[min(pos, len(data) - 1)] = rng.randrange(256)
            elif op < 0.7:
                data[pos:pos] = rng.choice(
                    [b"0", b"-", b".", b"e9", b'"', b",", b"]", b"}", b"\\u"]
                )
            else:
                del data[pos : pos + rng.randint(1, 5)]
        payload = bytes(data)
        now = NOW_NS + rng.choice([0, 10**18, -(10**18)])
        check_contract(parser, topic, payload, now, f"case {n}: {payload!r}")


def test_deeply_nested_json_is_malformed_not_a_crash(tmp_path):
    p = PayloadParser(make_config(tmp_path, max_payload_bytes=2**20))
    payload = b"[" * 200_000 + b"]" * 200_000
    _, (rej,) = p.parse(f"{ROOT}/melt/if1/power", payload, NOW_NS)
    assert rej.reason == "malformed_json" and "deeply" in rej.detail


def test_a_bug_is_dead_lettered_not_raised(parser, monkeypatch):
    def broken(*args):
        raise KeyError("boom")

    monkeypatch.setattr(parser, "_reading", broken)
    payload = b'{"ts_ms": 1795391999000, "value": 1}'
    readings, (rej,) = parser.parse(f"{ROOT}/melt/if1/power", payload, NOW_NS)
    assert readings == []
    assert rej.reason == "bad_shape" and rej.detail.startswith("internal error")
    assert rej.raw == payload


# --------------------------------------------------------------------------------------------
# rfc3339_ns against integer arithmetic


def _random_rfc3339(rng: random.Random) -> tuple[str, int]:
    """A valid RFC 3339 text and its ns, computed with calendar.timegm (pure integer maths)."""
    year = rng.choice([rng.randint(1, 9999), rng.randint(1965, 2100)])
    month = rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    digits = rng.randint(0, 9)
    frac = "".join(rng.choice("0123456789") for _ in range(digits))
    frac_ns = int(frac.ljust(9, "0")) if digits else 0
    if rng.random() < 0.3:
        offset_s, offset = 0, "Z"
    else:
        oh, om = rng.randint(0, 23), rng.randint(0, 59)
        sign = rng.choice("+-")
        offset_s = (oh * 3600 + om * 60) * (1 if sign == "+" else -1)
        offset = f"{sign}{oh:02d}:{om:02d}"
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    text += (f".{frac}" if digits else "") + offset
    utc_s = calendar.timegm((year, month, day, hour, minute, second)) - offset_s
    return text, utc_s * 1_000_000_000 + frac_ns


def test_rfc3339_ns_is_exact_against_integer_arithmetic():
    rng = random.Random(3339)
    for _ in range(5000):
        text, expected = _random_rfc3339(rng)
        assert rfc3339_ns(text) == expected, text


def test_python_310_form_parses_to_the_same_time():
    """The 3.10 fallback rewrites 'Z' and the fraction for its stricter fromisoformat; on this
    Python both forms must give the same µs, and the rewrite must be in the 3.10 grammar."""
    rng = random.Random(310)
    form_310 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d")
    for _ in range(2000):
        text, _ = _random_rfc3339(rng)
        frac = _RFC3339_RE.fullmatch(text).group(1)
        rewritten = _for_fromisoformat_310(text, frac)
        assert form_310.fullmatch(rewritten), rewritten
        assert datetime.fromisoformat(rewritten) == datetime.fromisoformat(text), text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T23:59:59",
        "2026-11-22 23:59:59Z",
        "2026-11-22t23:59:59Z",
        "2026-11-22T23:59:59z",
        "2026-11-22T23:59:59+08",
        "2026-11-22T23:59:59+0800",
        "2026-11-22T23:59:59+08:00:00",
        "2026-11-22T23:59:59.Z",
        "2026-11-22T23:59:59.1234567890Z",
        "2026-11-22T23:59:60Z",
        "2026-13-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-11-22T23:59:59Z\n",
        " 2026-11-22T23:59:59Z",
        "2026-11-22",
        "",
    ],
)
def test_rfc3339_ns_refuses(text):
    assert rfc3339_ns(text) is None
