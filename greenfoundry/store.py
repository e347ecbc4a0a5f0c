"""The InfluxDB store: line protocol over `/write`, InfluxQL over `/query`, for every generation.

InfluxDB 1.x serves these two endpoints natively; 2.x serves them as its v1 compatibility API
(a bucket is mapped to a database of its name since 2.4); 3 Core/Enterprise serves them too
(InfluxQL, no Flux). So this one data path is tested against the real 1.6.7 server that Debian
ships and runs unchanged on 2.x and 3.x (see the README). The `influxdb-client` package speaks
only the v2 API and Flux, which 1.x does not have and 3.x dropped, so queries do not go through it.

Authentication: a 1.x user and password go in an HTTP Basic header (never in the URL, so they
stay out of access logs); a 2.x/3.x token goes in `Authorization: Token …`.

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
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

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
    def from_config(cls, influx) -> InfluxStore:
        """From a `greenfoundry.plant.InfluxConfig`."""
        return cls(
            StoreSettings(
                url=influx.url,
                database=influx.database,
                username=influx.username,
                password=influx.password.value if influx.password else None,
                token=influx.token.value if influx.token else None,
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


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_literal(ns: int) -> str:
    """An InfluxQL time bound from integer nanoseconds (exact, no float)."""
    if not isinstance(ns, int) or isinstance(ns, bool):
        raise ValueError("time bounds are integer nanoseconds")
    return str(ns)
