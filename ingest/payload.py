"""The pure edge of the ingest: an MQTT (topic, payload) to canonical readings or rejections.

`PayloadParser.parse` implements `ingest/README.md` (topics, payloads, rejection reasons and their
precedence). It does no I/O, keeps no state between messages and never raises: every problem becomes
a `Reject` with one reason of `REASONS`. Sequence numbers are carried on the `Reading`; counting
gaps is the caller's job.

The hot path (a good single reading on a mapped topic) is one dict lookup for the topic, one JSON
decode and a handful of type checks; everything that can be is precomputed per route in
`__init__`, and the slower diagnosis of what exactly is wrong runs only for rejected messages.
"""

from __future__ import annotations

import json
import logging
import re
import reprlib
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from fractions import Fraction
from typing import NamedTuple

from greenfoundry import glossary, mqtt, store
from greenfoundry.errors import ConfigError
from greenfoundry.ingest import units
from greenfoundry.plant import PlantConfig

log = logging.getLogger(__name__)

# The reasons of the README's rejection table, in its order (a test compares the two).
REASONS: tuple[str, ...] = (
    "oversized",
    "malformed_json",
    "bad_shape",
    "batch_too_large",
    "bad_topic",
    "unknown_plant",
    "unknown_topic",
    "missing_timestamp",
    "bad_timestamp",
    "timestamp_future",
    "timestamp_past",
    "missing_value",
    "bad_value",
    "non_finite",
    "unknown_unit",
    "implausible",
    "bad_seq",
    "unknown_key",
)

BATCH_LEVEL = "_batch"
SEQ_LIMIT = 2**63  # seq must fit a signed 64-bit integer, InfluxDB's integer field
DETAIL_VALUE_CHARS = 80  # an offending value is shown in a detail text up to this many characters

# A topic level: the config's id rule (greenfoundry.plant.ID_RE), used with fullmatch because
# ID_RE's `$` also matches before a trailing newline.
_LEVEL_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_READING_KEYS = frozenset(("ts", "ts_ms", "value", "unit", "seq"))
_ELEMENT_KEYS = _READING_KEYS | {"signal"}
_BATCH_KEYS = frozenset(("readings",))
_MISSING = object()
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_fromisoformat = datetime.fromisoformat
_FROMISO_311 = sys.version_info >= (3, 11)  # fromisoformat takes 'Z' and any fraction length


class Reading(NamedTuple):
    """One accepted reading, in the signal's canonical unit, ready to be written to InfluxDB.

    A named tuple, not a frozen dataclass: as immutable, and built several times faster (a
    frozen dataclass sets each field through `object.__setattr__`), which counts at 100,000
    readings a second."""

    signal: str  # canonical signal = InfluxDB measurement
    tags: tuple[tuple[str, str], ...]  # plant, area, device + the route's extra tags, sorted by key
    ts_ns: int  # UTC ns since epoch, from the payload (never receipt time)
    value: float  # in the signal's canonical unit
    seq: int | None
    device: str  # "<plant>/<area>/<device>", the key for sequence tracking
    # The series key of signal and tags in line protocol, built once per route by the parser
    # (the store's `series_key`); derived data. Empty: built when needed.
    key: str = ""

    def line(self) -> str:
        """This reading as one InfluxDB line-protocol line (no trailing newline), by the store.

        The field `value` is always written as a float in `repr` form, which round-trips exactly;
        a non-finite value cannot be written in line protocol and raises ValueError.
        """
        return store.value_line(
            self.key or store.series_key(self.signal, self.tags), self.value, self.ts_ns
        )


@dataclass(frozen=True, slots=True)
class Reject:
    """One rejected message or batch element, for the counters and the dead-letter sink."""

    reason: str  # one of REASONS
    detail: str  # a human sentence: what was wrong, with the offending value (truncated)
    topic: str
    raw: bytes  # the whole MQTT payload, also for a batch element; never truncated here
    index: int | None  # element index within a batch, else None


class _Route:
    """Everything `parse` needs about one mapped topic, computed once."""

    __slots__ = (
        "convs",
        "default_conv",
        "device",
        "high",
        "key",
        "low",
        "signal",
        "tags",
        "unit_list",
    )

    def __init__(self, plant: str, route, convs: dict[str, tuple[float, float]]):
        sig = glossary.SIGNALS[route.signal]
        self.signal = route.signal
        tags = dict(route.tags)
        tags.update(plant=plant, area=route.area, device=route.device)
        self.tags = tuple(sorted(tags.items()))
        self.key = store.series_key(route.signal, self.tags)
        self.device = f"{plant}/{route.area}/{route.device}"
        self.convs = convs
        # A mapping without a unit means the device publishes the canonical unit.
        self.default_conv = convs[route.unit if route.unit is not None else sig.unit]
        self.low = sig.low
        self.high = sig.high
        self.unit_list = ", ".join(repr(u) for u in convs)


class _Invalid(Exception):
    """Raised inside the reading checks to carry a reason and a detail out of a nested check."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_duplicates)
_decode = _DECODER.decode
# The decoder's own scanner (C), called straight for the usual payload: one object from the first
# character to the last. `decode` adds two whitespace matches and a wrapper around the same scan;
# anything else (whitespace around, extra data, an error) goes through `decode`, whose result and
# error messages are therefore unchanged.
_scan_once = _DECODER.scan_once


_JSON_WORDS = {None: "null", True: "true", False: "false"}
_CONTAINER_REPR = reprlib.Repr()
_CONTAINER_REPR.maxlevel = 3
_CONTAINER_REPR.maxlist = _CONTAINER_REPR.maxdict = 6
_CONTAINER_REPR.maxstring = _CONTAINER_REPR.maxother = 40


def _show(value: object) -> str:
    """An offending value for a detail text: JSON's spelling of null, true and false, else the
    repr (which escapes control characters and lone surrogates), truncated."""
    if type(value) in (bool, type(None)):
        text = _JSON_WORDS[value]
    elif type(value) in (list, dict):
        text = _CONTAINER_REPR.repr(value)  # bounded work for a huge or deep array or object
    else:
        text = repr(value)
    if len(text) > DETAIL_VALUE_CHARS:
        text = text[: DETAIL_VALUE_CHARS - 1] + "…"
    return text


def _seconds_to_ns(seconds: float) -> int:
    """Exact for ints; for floats, the nearest ns to the float's own binary value."""
    return round(Fraction(seconds) * 1_000_000_000)


# The RFC 3339 profile accepted for `ts` (see the README). The regex fixes the shape, strictly and
# ASCII only; `datetime.fromisoformat` (C code) then checks the ranges (month 13, Feb 30, hour 24,
# second 60, offset ±24:00) and applies the offset.
_RFC3339_RE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d{1,9}))?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)", re.ASCII
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _for_fromisoformat_310(text: str, frac: str | None) -> str:
    """Python 3.10's fromisoformat wants 'Z' as +00:00 and exactly 3 or 6 fraction digits."""
    if text[-1] == "Z":
        text = text[:-1] + "+00:00"
    if frac is not None:
        text = f"{text[:20]}{frac[:6].ljust(6, '0')}{text[20 + len(frac) :]}"
    return text


def rfc3339_ns(text: str) -> int | None:
    """Nanoseconds since the epoch for an RFC 3339 date-time with an offset, else None.

    Accepted: `YYYY-MM-DDTHH:MM:SS[.F](Z|±HH:MM)` with 1 to 9 fraction digits. Refused: a space or
    lower-case separator, a missing offset, a leap second (`:60`, which UTC storage cannot hold),
    other ISO 8601 forms (week dates, basic format, a comma fraction, `+08` or `+0800` offsets).
    The result is computed from integer parts (days, seconds, µs, sub-µs digits), so it is exact.
    """
    match = _RFC3339_RE.fullmatch(text)
    if match is None:
        return None
    frac = match.group(1)
    try:
        delta = (
            _fromisoformat(text if _FROMISO_311 else _for_fromisoformat_310(text, frac)) - _EPOCH
        )
    except (ValueError, OverflowError):
        return None
    ns = (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if frac is not None and len(frac) > 6:  # fromisoformat keeps µs; add the digits below them
        ns += int(frac[6:].ljust(3, "0"))
    return ns


_NAIVE_RE = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?", re.ASCII)


def _timestamp_problem(text: str) -> str:
    """Why `rfc3339_ns` refused `text`, as a sentence. Runs on rejected readings only."""
    shown = _show(text)
    example = "such as 2026-11-23T08:15:00.250+08:00"
    if _NAIVE_RE.fullmatch(text):
        return f"ts {shown} has no UTC offset; give one ('Z' or ±hh:mm), {example}"
    if len(text) > 19 and text[10] == " ":
        return f"ts {shown} separates date and time with a space; use 'T', {example}"
    if len(text) > 19 and (text[10] == "t" or text[-1] == "z"):
        return f"ts {shown}: write the 'T' and 'Z' in upper case, {example}"
    if len(text) > 19 and text[17:19] == "60":
        return f"ts {shown} is a leap second, which UTC storage cannot hold"
    frac = re.fullmatch(r".{19}[.,](\d*)(.*)", text, re.ASCII)
    if frac and len(frac.group(1)) > 9:
        return f"ts {shown} has more than 9 fraction digits; nanoseconds are the finest kept"
    if _RFC3339_RE.fullmatch(text):
        return f"ts {shown} is not a valid date, time or offset"
    return f"ts {shown} is not an RFC 3339 time with an offset, {example}"


def _kind(value: object) -> str:
    """What a JSON value is, with the value: "a string ('12.5')", "null", "a boolean (true)"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, int | float):
        kind = "a number"
    elif isinstance(value, list):
        kind = "an array"
    elif isinstance(value, dict):
        kind = "an object"
    else:  # pragma: no cover - json gives no other types
        kind = type(value).__name__
    return f"{kind} ({_show(value)})"


class PayloadParser:
    """Turns MQTT messages into readings or rejections, for one plant config."""

    def __init__(self, cfg: PlantConfig):
        plant = cfg.plant.id
        root = cfg.mqtt.topic_root
        g = cfg.ingest
        self._plant = plant
        self._root_prefix = root + "/"
        self._max_bytes = g.max_payload_bytes
        self._max_batch = g.max_batch_readings
        self._max_future_ns = _seconds_to_ns(g.max_future_s)
        self._max_past_ns = _seconds_to_ns(g.max_past_days * 86400)
        self._max_future_s = g.max_future_s
        self._max_past_days = g.max_past_days
        # Topic -> route for single readings; batch topic -> {signal level: route} for batches.
        self._singles: dict[str, _Route] = {}
        self._batches: dict[str, dict[str, _Route]] = {}
        conv_tables: dict[str, dict[str, tuple[float, float]]] = {}
        for key, route in cfg.routes.items():
            for tag, value in route.tags:
                # Line protocol has no escape for a control character or an empty tag value, and
                # InfluxDB 1.x and 2.x read a backslash differently: refuse them before any write.
                if not value or any(c in value for c in store.NAME_FORBIDDEN):
                    raise ConfigError(
                        f"signals (topic {'/'.join(key)}).tags.{tag}: {_show(value)} is not "
                        "allowed; expected a non-empty text without backslash or control characters"
                    )
            canonical = glossary.SIGNALS[route.signal].unit
            if canonical not in conv_tables:
                conv_tables[canonical] = dict(units.CONVERSIONS.get(canonical, {}))
            r = _Route(plant, route, conv_tables[canonical])
            self._singles[f"{root}/{plant}/{route.area}/{route.device}/{route.name}"] = r
            batch_topic = f"{root}/{plant}/{route.area}/{route.device}/{BATCH_LEVEL}"
            self._batches.setdefault(batch_topic, {})[route.name] = r

    # ----------------------------------------------------------------------------------------

    def is_system(self, topic: str) -> bool:
        """A topic of the system's namespace (`<root>/<plant>/_…`, the alerts' state): not a
        reading, not a reject; the ingest acknowledges and counts it, nothing more."""
        if topic in self._singles:  # the usual message: its third level is an area, never `_…`
            return False
        return mqtt.is_system_topic(topic, self._root_prefix)

    def parse(self, topic: str, payload: bytes, now_ns: int) -> tuple[list[Reading], list[Reject]]:
        """(readings, rejects) for one MQTT message; `now_ns` is the clock for the time window.

        Never raises. A single reading gives one of the two lists with one item; a batch gives its
        good readings and one reject per bad element; a whole-message problem gives one reject.
        """
        try:
            route = self._singles.get(topic)
            if route is not None:
                obj = self._decode(topic, payload)
                if type(obj) is not dict:
                    return [], [self._whole_reject(topic, payload, obj)]
                try:
                    return [self._reading(route, obj, now_ns, _READING_KEYS)], []
                except _Invalid as bad:
                    return [], [Reject(bad.reason, bad.detail, topic, payload, None)]
            device_routes = self._batches.get(topic)
            if device_routes is not None:
                obj = self._decode(topic, payload)
                if type(obj) is not dict:
                    return [], [self._whole_reject(topic, payload, obj)]
                return self._batch(topic, payload, obj, device_routes, now_ns)
            if len(payload) > self._max_bytes:
                return [], [self._oversized(topic, payload)]
            reason, detail = self._topic_problem(topic)
            return [], [Reject(reason, detail, topic, payload, None)]
        except _Invalid as bad:
            return [], [Reject(bad.reason, bad.detail, topic, _as_bytes(payload), None)]
        except Exception as exc:  # a bug here must not stop the ingest: dead-letter the message
            log.exception("internal error while parsing a message on %r", topic)
            detail = f"internal error while parsing ({type(exc).__name__}: {_show(str(exc))}); please report it"
            return [], [Reject("bad_shape", detail, str(topic), _as_bytes(payload), None)]

    # ----------------------------------------------------------------------------------------

    def _decode(self, topic: str, payload: bytes) -> object:
        """The JSON value of a payload, or _Invalid (oversized / malformed_json)."""
        if len(payload) > self._max_bytes:
            raise _Invalid("oversized", self._oversized(topic, payload).detail)
        try:
            text = payload.decode("utf-8")
            if text[:1] == "{":
                try:
                    obj, end = _scan_once(text, 0)
                except StopIteration:
                    return _decode(text)
                if end == len(text):
                    return obj
            return _decode(text)
        except UnicodeDecodeError as exc:
            raise _Invalid(
                "malformed_json",
                f"payload is not UTF-8: byte {_show(payload[exc.start : exc.start + 1])} "
                f"at offset {exc.start} ({exc.reason})",
            ) from None
        except _DuplicateKey as exc:
            raise _Invalid(
                "malformed_json",
                f"payload has the key {_show(exc.args[0])} twice in one object; "
                "which one is meant is ambiguous",
            ) from None
        except RecursionError:
            raise _Invalid("malformed_json", "payload JSON is nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, and ints beyond Python's digit limit
            if payload.startswith(b"\xef\xbb\xbf"):
                raise _Invalid(
                    "malformed_json", "payload starts with a UTF-8 byte-order mark; JSON has none"
                ) from None
            raise _Invalid("malformed_json", f"payload is not JSON: {exc}") from None

    def _oversized(self, topic: str, payload: bytes) -> Reject:
        detail = (
            f"payload is {len(payload)} bytes, more than ingest.max_payload_bytes "
            f"({self._max_bytes})"
        )
        return Reject("oversized", detail, topic, payload, None)

    def _whole_reject(self, topic: str, payload: bytes, obj: object) -> Reject:
        detail = f"payload is {_kind(obj)}; expected a JSON object"
        return Reject("bad_shape", detail, topic, payload, None)

    def _topic_problem(self, topic: str) -> tuple[str, str]:
        """Reason and detail for a topic that is neither a mapped reading nor a known batch."""
        shown = _show(topic)
        if not isinstance(topic, str) or not topic.startswith(self._root_prefix):
            return "bad_topic", f"topic {shown} does not start with {self._root_prefix!r}"
        levels = topic[len(self._root_prefix) :].split("/")
        if len(levels) != 4:
            return "bad_topic", (
                f"topic {shown} has {len(levels)} levels after {self._root_prefix!r}; "
                "expected <plant>/<area>/<device>/<signal or _batch>"
            )
        for n, level in enumerate(levels):
            if not _LEVEL_RE.fullmatch(level) and not (n == 3 and level == BATCH_LEVEL):
                return "bad_topic", (
                    f"topic {shown}: level {_show(level)} is not lower-case letters, digits, "
                    "'-' or '_' (at most 63 characters, not starting with '-' or '_')"
                )
        plant, area, device, name = levels
        if plant != self._plant:
            return "unknown_plant", f"topic {shown} is for plant {plant!r}, not {self._plant!r}"
        if name == BATCH_LEVEL:
            return "unknown_topic", f"topic {shown}: no signal of device {area}/{device} is mapped"
        return "unknown_topic", f"topic {shown}: {area}/{device}/{name} is not mapped in signals"

    def _batch(
        self,
        topic: str,
        payload: bytes,
        obj: dict,
        device_routes: dict[str, _Route],
        now_ns: int,
    ) -> tuple[list[Reading], list[Reject]]:
        if not obj.keys() <= _BATCH_KEYS:
            extra = sorted(set(obj) - _BATCH_KEYS)
            raise _Invalid(
                "unknown_key",
                f"batch has the key {_show(extra[0])}; a batch object holds only 'readings'",
            )
        items = obj.get("readings", _MISSING)
        if items is _MISSING:
            raise _Invalid("bad_shape", "batch has no 'readings' key")
        if type(items) is not list:
            raise _Invalid(
                "bad_shape",
                f"batch 'readings' is {_kind(items)}; expected a list",
            )
        if len(items) > self._max_batch:
            raise _Invalid(
                "batch_too_large",
                f"batch has {len(items)} readings, more than ingest.max_batch_readings "
                f"({self._max_batch})",
            )
        readings: list[Reading] = []
        rejects: list[Reject] = []
        reading = self._reading
        for index, item in enumerate(items):
            try:
                if type(item) is not dict:
                    raise _Invalid(
                        "bad_shape",
                        f"readings[{index}] is {_kind(item)}; expected an object",
                    )
                # The usual element first: a text `signal` of this device, no unknown key.
                name = item.get("signal")
                route = device_routes.get(name) if type(name) is str else None
                if route is None or not item.keys() <= _ELEMENT_KEYS:
                    route = self._element_route(item, device_routes, topic, index)
                readings.append(reading(route, item, now_ns, _ELEMENT_KEYS))
            except _Invalid as bad:
                detail = f"readings[{index}]: {bad.detail}" if type(item) is dict else bad.detail
                rejects.append(Reject(bad.reason, detail, topic, payload, index))
        return readings, rejects

    def _element_route(
        self, item: dict, device_routes: dict[str, _Route], topic: str, index: int
    ) -> _Route:
        # Unknown keys first, as for a single reading: a typo such as `sginal` must say so.
        if not item.keys() <= _ELEMENT_KEYS:
            self._unknown_key(item, _ELEMENT_KEYS)
        name = item.get("signal", _MISSING)
        if name is _MISSING:
            raise _Invalid("bad_shape", "a batch element needs 'signal', the last topic level")
        if type(name) is not str:
            raise _Invalid("bad_shape", f"signal is {_kind(name)}; expected a text")
        route = device_routes.get(name)
        if route is not None:
            return route
        if not _LEVEL_RE.fullmatch(name):
            raise _Invalid(
                "bad_topic",
                f"signal {_show(name)} is not a topic level (lower-case letters, digits, '-', '_')",
            )
        device = topic[len(self._root_prefix) :].rsplit("/", 1)[0]
        raise _Invalid("unknown_topic", f"signal {_show(name)}: {device}/{name} is not mapped")

    @staticmethod
    def _unknown_key(obj: dict, allowed: frozenset[str]) -> None:
        extra = sorted(set(obj) - allowed)
        raise _Invalid(
            "unknown_key",
            f"unknown key {_show(extra[0])}; allowed: {', '.join(sorted(allowed))}",
        )

    def _reading(self, route: _Route, obj: dict, now_ns: int, allowed: frozenset[str]) -> Reading:
        """One checked reading, or _Invalid. The order of the checks is the README's precedence."""
        if not obj.keys() <= allowed:
            self._unknown_key(obj, allowed)

        ts = obj.get("ts", _MISSING)
        ts_ms = obj.get("ts_ms", _MISSING)
        if ts is not _MISSING:
            if ts_ms is not _MISSING:
                raise _Invalid("bad_timestamp", "both ts and ts_ms are given; give one of them")
            ts_ns = rfc3339_ns(ts) if type(ts) is str else None
            if ts_ns is None:
                if type(ts) is not str:
                    raise _Invalid(
                        "bad_timestamp",
                        f"ts is {_kind(ts)}; expected an RFC 3339 text",
                    )
                raise _Invalid("bad_timestamp", _timestamp_problem(ts))
        elif ts_ms is not _MISSING:
            if type(ts_ms) is not int:
                raise _Invalid(
                    "bad_timestamp",
                    f"ts_ms is {_kind(ts_ms)}; expected a whole number of milliseconds",
                )
            ts_ns = ts_ms * 1_000_000
        else:
            raise _Invalid("missing_timestamp", "neither ts nor ts_ms is given")

        value = obj.get("value", _MISSING)
        vtype = type(value)
        if vtype is float:
            if value - value != 0.0:
                raise _Invalid("non_finite", f"value is {value!r}; expected a finite number")
        elif vtype is int:
            try:
                value = float(value)
            except OverflowError:
                raise _Invalid(
                    "non_finite", f"value {_show(value)} is too large for a float"
                ) from None
        elif value is _MISSING:
            raise _Invalid("missing_value", "no value is given")
        else:
            raise _Invalid("bad_value", f"value is {_kind(value)}; expected a number")

        unit = obj.get("unit", _MISSING)
        if unit is _MISSING:
            scale, offset = route.default_conv
        else:
            conv = route.convs.get(unit) if type(unit) is str else None
            if conv is None:
                raise _Invalid(
                    "unknown_unit",
                    f"unit {_show(unit)} is not accepted for {route.signal}; "
                    f"accepted: {route.unit_list}",
                )
            scale, offset = conv

        seq = obj.get("seq", _MISSING)
        if seq is _MISSING:
            seq = None
        elif type(seq) is not int or not 0 <= seq < SEQ_LIMIT:
            raise _Invalid(
                "bad_seq",
                f"seq is {_show(seq)}; expected a whole number from 0 to 2**63-1",
            )

        ahead = ts_ns - now_ns
        if ahead > self._max_future_ns:
            raise _Invalid(
                "timestamp_future",
                f"timestamp {_ns_text(ts_ns)} is {_decimal(ahead, 10**9)} s ahead of the clock, "
                f"more than ingest.max_future_s ({self._max_future_s})",
            )
        if -ahead > self._max_past_ns:
            raise _Invalid(
                "timestamp_past",
                f"timestamp {_ns_text(ts_ns)} is {_decimal(-ahead, 86400 * 10**9)} days old, "
                f"more than ingest.max_past_days ({self._max_past_days})",
            )

        if scale != 1.0 or offset != 0.0:
            value = value * scale + offset
        if not route.low <= value <= route.high:
            shown = (
                f"{value!r}" if unit is _MISSING else f"{value!r} (from {obj['value']!r} {unit})"
            )
            raise _Invalid(
                "implausible",
                f"value {shown} is outside the plausible range of {route.signal}, "
                f"{route.low!r} to {route.high!r}",
            )
        return Reading(route.signal, route.tags, ts_ns, value, seq, route.device, route.key)


def _decimal(count: int, unit: int) -> str:
    """`count / unit` with three decimals, in integer maths (a huge ts_ms overflows a float)."""
    whole, rest = divmod(count, unit)
    if whole.bit_length() > 64:  # keep the detail short: the size is what matters
        return f"about 10^{whole.bit_length() * 0.30103:.0f}"
    return f"{whole}.{rest * 1000 // unit:03d}"


def _ns_text(ts_ns: int) -> str:
    """A UTC ns timestamp as RFC 3339 text for details, or the raw number when out of range."""
    try:
        secs, frac = divmod(ts_ns, 1_000_000_000)
        day, sec = divmod(secs, 86400)
        d = date.fromordinal(day + _EPOCH_ORDINAL)
        h, rest = divmod(sec, 3600)
        return f"{d.isoformat()}T{h:02d}:{rest // 60:02d}:{rest % 60:02d}.{frac:09d}Z"
    except (ValueError, OverflowError):
        if ts_ns.bit_length() < 200:
            return f"{ts_ns} ns"
        # Python refuses to print an int of more than 4,300 digits; the size is what matters.
        return f"{'-' if ts_ns < 0 else ''}10^{ts_ns.bit_length() * 0.30103:.0f} ns or so"


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes):
        return payload
    try:
        return bytes(payload)  # type: ignore[arg-type]
    except Exception:
        return repr(payload).encode("utf-8", "backslashreplace")
