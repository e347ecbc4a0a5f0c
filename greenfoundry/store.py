"""The InfluxDB store: line protocol over `/write`, InfluxQL over `/query`, for every generation.

InfluxDB 1.x serves these two endpoints natively; 2.x serves them as its v1 compatibility API
(a bucket is mapped to a database of its name since 2.4); 3 Core/Enterprise serves them too
(InfluxQL, no Flux). So this one data path is tested against the real 1.6.7 server that Debian
ships and runs unchanged on 2.x and 3.x (see the README). The `influxdb-client` package speaks
only the v2 API and Flux, which 1.x does not have and 3.x dropped, so queries do not go through it.

Authentication: a 1.x user and password go in an HTTP Basic header (never in the URL, so they
stay out of access logs); a 2.x/3.x token goes in `Authorization: Token …`.

Line protocol is built here and nowhere else (`line`, `series_key`, `value_line`), and InfluxQL
names, strings and time bounds are quoted here (`quote_ident`, `quote_string`, `time_literal`,
`where`): every writer and every query of the package goes through these.

Errors (see `classify_write_failure`): `RetryableWriteError` for what may succeed later
(connection refused, timeouts, 5xx, 429, 408, redirects, any status we do not expect);
`RejectedWriteError` for a 4xx, whose `lines_at_fault` says whether InfluxDB refused these lines
(400/413/422: find and dead-letter them) or this deployment (401/403/404, a series or tag-value
limit: wait, with the lines kept, until an operator fixes it).
"""

from __future__ import annotations

import base64
import gzip
import json
import numbers
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd
import urllib3

from greenfoundry.errors import StoreError


class RetryableWriteError(StoreError):
    """InfluxDB is unreachable or failing; the same write may succeed later."""


class RejectedWriteError(StoreError):
    """InfluxDB refused the write (HTTP 4xx). `lines_at_fault`: the body's lines are what it
    refused (find them, dead-letter them); otherwise it refused this deployment (credentials,
    database, limits) and the lines must wait."""

    def __init__(self, status: int, message: str, lines_at_fault: bool):
        super().__init__(f"InfluxDB refused the write (HTTP {status}): {message}")
        self.status = status
        self.server_message = message
        self.lines_at_fault = lines_at_fault


# InfluxDB 1.x reports these per-database limits as a 400 partial write; they are a deployment's
# setting, not bad lines, so the lines wait for the operator instead of being dead-lettered.
_LIMIT_MESSAGES = ("max-series-per-database", "max-values-per-tag")


def classify_write_failure(status: int, message: str) -> str:
    """What a non-2xx answer to /write means: "retry" (may succeed as it is, later), "wait"
    (refused until an operator acts; keep the lines) or "bad_lines" (these lines are refused)."""
    if status in (400, 413, 422):
        return "wait" if any(m in message for m in _LIMIT_MESSAGES) else "bad_lines"
    if status in (401, 403, 404):
        return "wait"
    return "retry"  # 5xx, 429, 408, a redirect, or anything we do not expect


@dataclass(frozen=True)
class StoreSettings:
    url: str
    database: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    retention_policy: str | None = None
    timeout_s: float = 10.0


class InfluxStore:
    """A small client for `/ping`, `/write` and `/query` with a keep-alive connection pool."""

    def __init__(self, settings: StoreSettings):
        self.settings = settings
        self._http = urllib3.PoolManager(
            num_pools=2,
            maxsize=4,
            retries=False,
            timeout=urllib3.Timeout(connect=min(2.0, settings.timeout_s), read=settings.timeout_s),
        )
        self._headers: dict[str, str] = {}
        if settings.token:
            self._headers["Authorization"] = f"Token {settings.token}"
        elif settings.username is not None:
            cred = f"{settings.username}:{settings.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()

    def __repr__(self) -> str:
        return f"InfluxStore({self.settings.url!r}, database={self.settings.database!r})"

    @classmethod
    def from_config(cls, influx, role: str | None = None) -> InfluxStore:
        """From a `greenfoundry.plant.InfluxConfig`, as `role`'s user: "ingest" (write-only),
        "metrics" (read and write) or "reader" (read-only); its `influxdb.users.<role>`, else
        the config's one `username`. The one way a component gets its store."""
        user = influx.user(role)
        return cls(
            StoreSettings(
                url=influx.url,
                database=influx.database,
                username=user.username,
                password=user.password.value if user.password else None,
                token=user.token.value if user.token else None,
                retention_policy=influx.retention_policy,
                timeout_s=influx.timeout_s,
            )
        )

    def close(self) -> None:
        self._http.clear()

    # ---- health ---------------------------------------------------------------------------

    def ping(self) -> str | None:
        """The server's version string when it answers, else None."""
        try:
            resp = self._http.request(
                "GET", f"{self.settings.url}/ping", headers=self._headers, timeout=2.0
            )
        except urllib3.exceptions.HTTPError:
            return None
        if resp.status != 204:
            return None
        return resp.headers.get("X-Influxdb-Version", "unknown")

    # ---- write ----------------------------------------------------------------------------

    def write_lines(self, lines: Iterable[str] | bytes, *, compress: bool = True) -> None:
        """POST line protocol (ns precision). Raises RetryableWriteError or RejectedWriteError."""
        body = lines if isinstance(lines, bytes) else "\n".join(lines).encode()
        if not body:
            return
        headers = dict(self._headers)
        headers["Content-Type"] = "text/plain; charset=utf-8"
        if compress:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        fields = {"db": self.settings.database, "precision": "ns"}
        if self.settings.retention_policy:
            fields["rp"] = self.settings.retention_policy
        url = f"{self.settings.url}/write?{urllib.parse.urlencode(fields)}"
        try:
            resp = self._http.request("POST", url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableWriteError(
                f"InfluxDB at {self.settings.url} unreachable: {type(exc).__name__}"
            ) from None
        if resp.status in (200, 204):
            return
        message = _error_text(resp)
        kind = classify_write_failure(resp.status, message)
        if kind == "retry":
            raise RetryableWriteError(f"InfluxDB failed the write (HTTP {resp.status}): {message}")
        raise RejectedWriteError(resp.status, message, lines_at_fault=kind == "bad_lines")

    # ---- query ----------------------------------------------------------------------------

    def query_raw(self, q: str, *, database: str | None = None) -> list[dict]:
        """InfluxQL; the `results` list of the JSON answer, timestamps as integer ns."""
        fields = {"q": q, "epoch": "ns"}
        db = database if database is not None else self.settings.database
        if db:
            fields["db"] = db
        if self.settings.retention_policy:
            fields["rp"] = self.settings.retention_policy
        try:
            resp = self._http.request_encode_body(
                "POST",
                f"{self.settings.url}/query",
                fields=fields,
                headers=self._headers,
                encode_multipart=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise StoreError(
                f"InfluxDB at {self.settings.url} unreachable: {type(exc).__name__}"
            ) from None
        if resp.status != 200:
            raise StoreError(
                f"InfluxDB refused the query (HTTP {resp.status}): {_error_text(resp)}"
            )
        results = json.loads(resp.data).get("results", [])
        for r in results:
            if "error" in r:
                raise StoreError(f"InfluxDB query error: {r['error']}")
        return results

    def query(self, q: str) -> pd.DataFrame:
        """InfluxQL → one DataFrame: a UTC `time` column, the tags of GROUP BY, the fields.

        Every statement's series are concatenated; an empty answer is an empty DataFrame.
        Time ranges must be bounded by the caller (domain.md §6).
        """
        frames = []
        for result in self.query_raw(q):
            for series in result.get("series", []):
                df = pd.DataFrame(series.get("values", []), columns=series["columns"])
                for tag, value in (series.get("tags") or {}).items():
                    df[tag] = value
                if "name" in series:
                    df.insert(0, "measurement", series["name"])
                frames.append(df)
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True)
        if "time" in df.columns:
            df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="ns", utc=True)
        return df

    def create_database(self) -> None:
        """CREATE DATABASE on 1.x (idempotent). 2.x and 3.x map buckets instead: create those
        with their own tools."""
        self.query_raw(f"CREATE DATABASE {quote_ident(self.settings.database)}", database="")


def _error_text(resp) -> str:
    text = resp.data[:500].decode("utf-8", errors="replace")
    try:
        return json.loads(text).get("error", text).strip()
    except (ValueError, AttributeError):
        return text.strip()


# ---- line protocol --------------------------------------------------------------------------
#
# The escapes are those of the InfluxDB line-protocol reference ("Special characters", 1.x and
# 2.x): in a measurement, comma and space; in a tag key, a tag value and a field key, comma,
# equals sign and space; in a string field value, double quote and backslash. The reference
# allows no newline in a tag or field value. A name (measurement, tag key, tag value, field key)
# here also refuses what InfluxDB's generations read differently or would store other than as
# given: a backslash (1.x keeps `a\\b` in a tag as two backslashes, 2.x reads one), a tab and a
# carriage return (1.x keeps them raw; the `\t` of other clients is stored as two characters), a
# newline, an empty text, and a measurement starting with `#` (the line would be a comment).
#
# Every refusal is a ValueError (TypeError for a value of the wrong type): a bug in the caller,
# whose own edge (the plant config, the payload parser) must have refused such a value first.

NAME_FORBIDDEN = "\\\t\r\n"  # characters no measurement, tag key, tag value or field key holds
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # an integer field is a signed 64-bit integer
TIME_MIN_NS, TIME_MAX_NS = -(2**63) + 2, 2**63 - 2  # InfluxDB's time range (models.MinNanoTime)

_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_FORBIDDEN_RE = re.compile(f"[{re.escape(NAME_FORBIDDEN)}]")
_float_repr = float.__repr__  # the shortest text that reads back as the same float, also for
#                               a float subclass such as numpy.float64 (whose repr differs)


def _name(text: str, what: str) -> str:
    if type(text) is not str:
        raise TypeError(f"line protocol: a {what} is a str, not {type(text).__name__} ({text!r})")
    if not text:
        raise ValueError(f"line protocol: a {what} cannot be empty")
    bad = _FORBIDDEN_RE.search(text)
    if bad is not None:
        raise ValueError(
            f"line protocol: the {what} {text!r} holds {bad.group()!r}; a name holds no "
            "backslash, tab, carriage return or newline"
        )
    return text


@lru_cache(maxsize=4096)
def _series_key(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    _name(measurement, "measurement")
    if measurement[0] == "#":
        raise ValueError(f"line protocol: the measurement {measurement!r} would make a comment")
    parts = [measurement.translate(_ESCAPE_MEASUREMENT)]
    previous = None
    for key, value in tags:
        if key == previous:
            raise ValueError(f"line protocol: the tag key {key!r} is given twice")
        previous = key
        k = _name(key, "tag key").translate(_ESCAPE_KEY)
        parts.append(f"{k}={_name(value, f'value of tag {key}').translate(_ESCAPE_KEY)}")
    return ",".join(parts)


def series_key(measurement: str, tags: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> str:
    """`measurement,tag=value,…` escaped, the tags sorted by key (InfluxDB's own order). Cached:
    a plant has a few hundred series; a hot path builds the key once and keeps it."""
    items = tags.items() if isinstance(tags, (dict, Mapping)) else tags  # dict: the quick check
    return _series_key(measurement, tuple(sorted(items)))


@lru_cache(maxsize=1024)
def _field_key(key: str) -> str:
    return _name(key, "field key").translate(_ESCAPE_KEY)


def _float(value: float) -> str:
    if value - value != 0.0:  # NaN or ±inf: line protocol has no spelling for them
        raise ValueError(f"line protocol: a non-finite float ({value!r}) cannot be written")
    return _float_repr(value)


def _field_value(value: object) -> str:
    kind = type(value)
    if kind is float:
        return _float(value)
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError(f"line protocol: the integer {value} does not fit in 64 bits")
        return f"{value}i"
    if kind is str:
        if "\n" in value:
            raise ValueError(f"line protocol: a string field cannot hold a newline ({value!r})")
        if "\\" in value or '"' in value:
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{value}"'
    if kind is bool:
        return "true" if value else "false"
    # Other numeric types (numpy's, Fraction, Decimal) by what they are.
    if isinstance(value, numbers.Integral):
        return _field_value(int(value))
    if isinstance(value, numbers.Real):
        return _float(float(value))
    raise TypeError(
        f"line protocol: a field value is a float, int, str or bool, not {kind.__name__}"
    )


def _timestamp(ts_ns: int) -> str:
    if type(ts_ns) is not int:
        if isinstance(ts_ns, bool) or not isinstance(ts_ns, numbers.Integral):
            raise TypeError(f"line protocol: a timestamp is integer ns, not {ts_ns!r}")
        ts_ns = int(ts_ns)
    if not TIME_MIN_NS <= ts_ns <= TIME_MAX_NS:
        raise ValueError(f"line protocol: the timestamp {ts_ns} ns is outside InfluxDB's range")
    return str(ts_ns)


def line(
    measurement: str,
    tags: Mapping[str, str] | Iterable[tuple[str, str]],
    fields: Mapping[str, float | int | str | bool],
    ts_ns: int,
) -> str:
    """One point as a line of line protocol, without the newline.

    Fields keep their order; a float is written in its shortest exact form (`repr`: 7.0, 1e+20),
    an int with the `i` of an integer field, a bool as true/false, a str quoted. Never a
    non-finite float, an int beyond 64 bits or a newline in a string (ValueError).
    """
    if not fields:
        raise ValueError(f"line protocol: a point of {measurement!r} needs at least one field")
    # The rollups' hot path (a backfill writes some hundred thousand points of twenty fields):
    # a field's `key=` is kept once checked, and a finite float is written without the type
    # dispatch of `_field_value`; everything else goes through it, with its checks.
    parts = []
    for k, v in fields.items():
        key = _FIELD_KEYS.get(k) if type(k) is str else None
        if key is None:
            key = f"{_field_key(k)}="
            if len(_FIELD_KEYS) < 4096:
                _FIELD_KEYS[k] = key
        if type(v) is float and v - v == 0.0:
            parts.append(key + _float_repr(v))
        else:
            parts.append(key + _field_value(v))
    return f"{series_key(measurement, tags)} {','.join(parts)} {_timestamp(ts_ns)}"


_FIELD_KEYS: dict[str, str] = {}  # field key → its escaped text and `=`, checked (`line`)


def value_line(key: str, value: float, ts_ns: int) -> str:
    """One reading: the float field `value` of the series `key` (from `series_key`) at `ts_ns`.

    The ingest's hot path (one call per reading), so only the value is checked; the timestamp
    must be an int in InfluxDB's range, which the payload parser's time window guarantees.
    """
    if type(value) is not float:
        value = float(value)
    if value - value != 0.0:
        raise ValueError(f"line protocol: a non-finite float ({value!r}) cannot be written")
    return f"{key} value={_float_repr(value)} {ts_ns}"


# ---- InfluxQL ---------------------------------------------------------------------------------


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_literal(ns: int) -> str:
    """An InfluxQL time bound from integer nanoseconds (exact, no float). Anything else is a bug
    of the caller (ValueError), never a user's input: callers convert times at their edge."""
    if not isinstance(ns, int) or isinstance(ns, bool):
        raise ValueError("time bounds are integer nanoseconds")
    return str(ns)


def where(
    tags: Mapping[str, str] | None = None,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    last_s: int | None = None,
) -> str:
    """`WHERE "tag" = 'value' AND … AND <time range>`, each tag key quoted as an identifier and
    each value as a string.

    Every query is bounded in time, so the range is required: `start_ns` to `end_ns` (integer
    ns, start included, end excluded: `time >= start AND time < end`), or `last_s`, the last
    whole seconds before now() (`time > now() - <last_s>s`). Anything else is a bug (ValueError).
    """
    parts = [f"{quote_ident(k)} = {quote_string(v)}" for k, v in (tags or {}).items()]
    if last_s is not None and start_ns is None and end_ns is None:
        if type(last_s) is not int or last_s <= 0:
            raise ValueError(f"last_s is a whole number of seconds above 0, not {last_s!r}")
        parts.append(f"time > now() - {last_s}s")
    elif last_s is None and start_ns is not None and end_ns is not None:
        parts.append(f"time >= {time_literal(start_ns)} AND time < {time_literal(end_ns)}")
    else:
        raise ValueError("a query's time range is start_ns and end_ns, or last_s")
    return "WHERE " + " AND ".join(parts)
