"""The ingest edge: (topic, payload) -> readings or rejects, against ingest/README.md.

The golden corpora live in ingest/testdata/ (good_payloads.yaml: expected lines computed by hand;
bad_payloads.yaml: expected reasons). The tests here load them, plus checks of the API contract
(never raises, one reason from REASONS, the raw payload kept whole) and of the line protocol.
No servers are involved.
"""

from __future__ import annotations

import base64
import copy
import math
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.errors import ConfigError
from greenfoundry.ingest.payload import REASONS, PayloadParser, Reading, Reject

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "ingest" / "testdata"
ENV = {"GF_MQTT_PASSWORD": "unused", "GF_INFLUX_PASSWORD": "unused"}
OVERLAY = yaml.safe_load((TESTDATA / "config.yaml").read_text(encoding="utf-8"))
GOOD = yaml.safe_load((TESTDATA / "good_payloads.yaml").read_text(encoding="utf-8"))["cases"]
BAD = yaml.safe_load((TESTDATA / "bad_payloads.yaml").read_text(encoding="utf-8"))["cases"]


def _ns(text: str) -> int:
    """An RFC 3339 time in ns, computed with datetime (independent of the parser's own code)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


NOW_NS = _ns(OVERLAY["now"])


def make_config(tmp_path: Path, *, signals: list | None = None, **ingest) -> plant.PlantConfig:
    """config/plants/demo-dip/plant.yaml with the golden overlay, more signals and ingest settings."""
    raw = yaml.safe_load(plant_file().read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    raw["ingest"].update(OVERLAY["ingest"], **ingest)
    raw["signals"].extend(OVERLAY["extra_signals"])
    raw["signals"].extend(signals or [])
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return plant.load(path, env=ENV)


@pytest.fixture(scope="module")
def parser(tmp_path_factory) -> PayloadParser:
    return PayloadParser(make_config(tmp_path_factory.mktemp("cfg")))


def payload_of(case: dict) -> bytes:
    if "payload_b64" in case:
        data = base64.b64decode(case["payload_b64"])
    else:
        data = case["payload"].encode("utf-8")
    if "pad_to" in case:
        data += b" " * (case["pad_to"] - len(data))
        assert len(data) == case["pad_to"]
    return data


def now_of(case: dict) -> int:
    return _ns(case["now"]) if "now" in case else NOW_NS


# --------------------------------------------------------------------------------------------
# The spec's reason table


def test_reasons_are_the_readme_table_in_order():
    readme = (REPO / "ingest" / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Rejections", 1)[1]
    table = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)
    assert tuple(table) == REASONS


# --------------------------------------------------------------------------------------------
# Golden bad payloads


def test_bad_corpus_covers_every_reason():
    assert len(BAD) >= 30
    assert len({c["id"] for c in BAD}) == len(BAD), "case ids must be unique"
    assert {c["reason"] for c in BAD} == set(REASONS)


@pytest.mark.parametrize("case", BAD, ids=[c["id"] for c in BAD])
def test_bad_payload(parser, case):
    payload = payload_of(case)
    readings, rejects = parser.parse(case["topic"], payload, now_of(case))
    assert readings == []
    assert len(rejects) == 1, rejects
    (rej,) = rejects
    assert (rej.reason, rej.index) == (case["reason"], case.get("index")), rej.detail
    assert rej.topic == case["topic"]
    assert rej.raw == payload  # the whole payload, for a batch element too
    assert rej.detail and not rej.detail.startswith("internal error")
    if "detail" in case:
        assert case["detail"] in rej.detail


# --------------------------------------------------------------------------------------------
# Golden good payloads


def _split_line(line: str) -> tuple[str, float, int]:
    """(measurement and tags, value, timestamp) of a line this parser writes."""
    head, field, ts = line.rsplit(" ", 2)
    assert field.startswith("value=")
    return head, float(field[len("value=") :]), int(ts)


def test_good_corpus_ids_unique():
    assert len({c["id"] for c in GOOD}) == len(GOOD)


@pytest.mark.parametrize("case", GOOD, ids=[c["id"] for c in GOOD])
def test_good_payload(parser, case):
    payload = payload_of(case)
    readings, rejects = parser.parse(case["topic"], payload, now_of(case))
    assert [(r.reason, r.index) for r in rejects] == [
        (r["reason"], r["index"]) for r in case.get("rejects", [])
    ], [r.detail for r in rejects]
    assert all(r.raw == payload for r in rejects)
    lines = [r.line() for r in readings]
    assert len(lines) == len(case["lines"]), lines
    for got, want in zip(lines, case["lines"], strict=True):
        got_head, got_value, got_ts = _split_line(got)
        want_head, want_value, want_ts = _split_line(want)
        assert (got_head, got_ts) == (want_head, want_ts)
        # Relative 1e-12: the expected values are decimal hand results; the conversion runs in
        # binary floating point (300 K -> 26.850000000000023 degC). Unconverted values are exact.
        assert got_value == pytest.approx(want_value, rel=1e-12, abs=0.0), got
        assert "value=" + repr(got_value) in got  # written as the float's repr
    if "seqs" in case:
        assert [r.seq for r in readings] == case["seqs"]


# --------------------------------------------------------------------------------------------
# Readings and rejects


def test_reading_carries_tags_device_seq_and_the_payload_timestamp(parser):
    topic = "gf/v1/demo-dip/env/coat-stack/nmhc"
    payload = b'{"ts": "2026-11-22T23:00:00Z", "value": 12.5, "unit": "mg/m3", "seq": 41}'
    (r,), rejects = parser.parse(topic, payload, NOW_NS)
    assert rejects == []
    assert r._replace(key="") == Reading(
        signal="stack_conc_mg_m3",
        tags=(
            ("area", "env"),
            ("device", "coat-stack"),
            ("plant", "demo-dip"),
            ("pollutant", "nmhc"),
        ),
        ts_ns=NOW_NS - 3600 * 1_000_000_000,
        value=12.5,
        seq=41,
        device="demo-dip/env/coat-stack",
    )
    # The time of receipt plays no part: another clock within the window gives the same reading.
    assert parser.parse(topic, payload, NOW_NS + 10**9) == ([r], [])


def test_value_is_always_a_float(parser):
    (r,), _ = parser.parse("gf/v1/demo-dip/melt/if1/power", b'{"ts_ms": 0, "value": 7}', 0)
    assert type(r.value) is float


def test_batch_reject_detail_names_the_element(parser):
    payload = (
        b'{"readings": [{"signal": "power", "ts_ms": 1795391999000, "value": 1},'
        b' {"signal": "power", "ts_ms": 1795391999000, "value": "x"}]}'
    )
    readings, (rej,) = parser.parse("gf/v1/demo-dip/melt/if1/_batch", payload, NOW_NS)
    assert len(readings) == 1
    assert rej.index == 1 and rej.detail.startswith("readings[1]: ")
    assert rej.raw == payload


def test_detail_truncates_a_long_offending_value(parser):
    payload = ('{"ts_ms": 1795391999000, "value": "%s"}' % ("9" * 500)).encode()
    _, (rej,) = parser.parse("gf/v1/demo-dip/melt/if1/power", payload, NOW_NS)
    assert rej.reason == "bad_value"
    assert len(rej.detail) < 200 and "…" in rej.detail
    assert rej.raw == payload  # the raw payload itself is never truncated


def test_records_are_frozen():
    r = Reading("s", (), 0, 1.0, None, "p/a/d")
    with pytest.raises(AttributeError):
        r.value = 2.0  # type: ignore[misc]
    j = Reject("bad_value", "x", "t", b"", None)
    with pytest.raises(AttributeError):
        j.reason = "oversized"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Line protocol


def test_line_escapes_measurement_tag_keys_and_values():
    r = Reading("a b,c=d", (("k,1", "v 2=3,4"), ("z", "plain")), 5, 1.0, None, "p/a/d")
    # Measurement: comma and space escaped, equals not; tag key and value: comma, equals, space.
    assert r.line() == r"a\ b\,c=d,k\,1=v\ 2\=3\,4,z=plain value=1.0 5"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (7, "7.0"),  # an int is still written as a float field (no `i` suffix)
        (1500.0, "1500.0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e20, "1e+20"),
        (-2.5e-7, "-2.5e-07"),
        (-0.0, "-0.0"),
    ],
)
def test_line_value_is_the_float_repr(value, text):
    line = Reading("m", (("plant", "p"),), 1795392000123456789, value, None, "p/a/d").line()
    assert line == f"m,plant=p value={text} 1795392000123456789"
    assert float(text) == value  # round-trips exactly


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_line_refuses_a_non_finite_value(value):
    with pytest.raises(ValueError):
        Reading("m", (), 1, value, None, "p/a/d").line()


# --------------------------------------------------------------------------------------------
# Configuration seen by the parser


def test_fractional_time_limits_are_exact(tmp_path):
    p = PayloadParser(make_config(tmp_path, max_future_s=0.5, max_past_days=0.5))
    topic = "gf/v1/demo-dip/melt/if1/power"

    def reason(ts: str) -> str | None:
        _, rejects = p.parse(topic, f'{{"ts": "{ts}", "value": 1}}'.encode(), NOW_NS)
        return rejects[0].reason if rejects else None

    assert reason("2026-11-23T00:00:00.5Z") is None
    assert reason("2026-11-23T00:00:00.500000001Z") == "timestamp_future"
    assert reason("2026-11-22T12:00:00Z") is None  # half a day
    assert reason("2026-11-22T11:59:59.999999999Z") == "timestamp_past"


@pytest.mark.parametrize("value", ["a\\b", "line\nbreak", ""])
def test_a_tag_value_line_protocol_cannot_carry_is_refused_at_start(tmp_path, value):
    extra = [{"topic": "lab/x/y", "signal": "ambient_temp_c", "tags": {"note": value}}]
    cfg = make_config(tmp_path, signals=extra)
    with pytest.raises(ConfigError, match="lab/x/y"):
        PayloadParser(cfg)
