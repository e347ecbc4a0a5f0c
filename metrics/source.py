"""Reading raw readings out of InfluxDB for the rollup engine: bounded queries, pandas out.

Every store the metrics use comes from ``store_for_metrics`` (one place to set its InfluxDB
role). Every query bounds its time range (``greenfoundry.store.where``); nothing here uses
continuous queries, ``SELECT INTO`` or ``GROUP BY time`` for calendar windows. The one
``GROUP BY time(1h)`` is the fingerprint of fixed UTC hours (``fingerprints``).

Raw readings (ingest/README.md, "Storage"): measurement = the signal's name, tags ``plant``,
``area``, ``device`` (+ ``pollutant``, ``role``), float field ``value``, UTC ns timestamps.
A series is named here by its measurement and its tags other than ``plant`` and ``area``
(``SeriesKey``), e.g. ``("furnace_energy_kwh", (("device", "if1"),))``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from greenfoundry.errors import StoreError
from greenfoundry.store import InfluxStore, quote_ident, where

NS_PER_H = 3600 * 10**9
# Tags that are not part of a series' identity for the metrics (the area is the topic's, and a
# device id is unique in a plant).
IGNORED_TAGS = ("plant", "area")

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def store_for_metrics(cfg) -> InfluxStore:
    """The one InfluxDB client of the metrics: reads raw readings, writes rollups, on the plant's
    database, as the metrics' own least-privilege user (role "metrics")."""
    return InfluxStore.from_config(cfg.influxdb, role="metrics")


def series_key(measurement: str, tags: dict[str, str]) -> SeriesKey:
    return measurement, tuple(sorted((k, v) for k, v in tags.items() if k not in IGNORED_TAGS))


def _tag_columns(df: pd.DataFrame, skip: Iterable[str]) -> list[str]:
    return [c for c in df.columns if c not in set(skip) and c not in ("measurement", "time")]


@dataclass(frozen=True)
class Fingerprints:
    """COUNT and SUM of ``value`` per (series, UTC hour); ``bad`` names measurements whose
    ``value`` is not a number (SUM refused) with the reason."""

    rows: dict[tuple[SeriesKey, int], tuple[int, float | None]]
    bad: dict[str, str]


def _fp_statement(m: str, plant_id: str, start_ns: int, end_ns: int, with_sum: bool) -> str:
    w = where({"plant": plant_id}, start_ns=start_ns, end_ns=end_ns)
    agg = 'COUNT("value") AS c, SUM("value") AS s' if with_sum else 'COUNT("value") AS c'
    return f"SELECT {agg} FROM {quote_ident(m)} {w} GROUP BY time(1h), * fill(none)"


def fingerprints(
    store: InfluxStore, plant_id: str, measurements: Iterable[str], start_ns: int, end_ns: int
) -> Fingerprints:
    """The per-(series, UTC hour) fingerprint of every measurement over ``[start_ns, end_ns)``
    (``GROUP BY time(1h), *``, fill(none): only hours with readings). One request for all
    measurements; when InfluxDB cannot SUM one of them (a ``value`` that is not a number in
    some shard), each is asked on its own and that one is fingerprinted by COUNT only."""
    measurements = tuple(measurements)
    rows: dict[tuple[SeriesKey, int], tuple[int, float | None]] = {}
    bad: dict[str, str] = {}
    q = ";".join(_fp_statement(m, plant_id, start_ns, end_ns, True) for m in measurements)
    try:
        results = list(zip(measurements, store.query_raw(q), strict=True))
    except StoreError as exc:
        if "query error" not in str(exc):
            raise
        results = []
        for m in measurements:
            try:
                r = store.query_raw(_fp_statement(m, plant_id, start_ns, end_ns, True))
            except StoreError as exc2:
                if "query error" not in str(exc2):
                    raise
                bad[m] = f"{m}: InfluxDB cannot sum its value field ({exc2}); not a number"
                r = store.query_raw(_fp_statement(m, plant_id, start_ns, end_ns, False))
            results.append((m, r[0] if r else {}))
    for m, result in results:
        for series in result.get("series", []):
            key = series_key(m, {k: v for k, v in (series.get("tags") or {}).items() if v})
            cols = series["columns"]
            ci, si = cols.index("c"), cols.index("s") if "s" in cols else None
            for v in series.get("values", []):
                sv = v[si] if si is not None else None
                rows[(key, int(v[0]))] = (int(v[ci]), None if sv is None else float(sv))
    return Fingerprints(rows, bad)


@dataclass
class Readings:
    """The readings of a time range, per series (``pd.Series`` of values indexed by UTC time),
    and how many raw readings were read."""

    series: dict[SeriesKey, pd.Series]
    count: int

    def get(self, measurement: str, **tags: str) -> pd.Series:
        """The series of ``measurement`` whose tags include ``tags``; several (a device with
        two areas) are merged; none gives an empty float series."""
        found = [
            s
            for (m, t), s in self.series.items()
            if m == measurement and all(dict(t).get(k) == v for k, v in tags.items())
        ]
        if not found:
            return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
        if len(found) == 1:
            return found[0]
        return pd.concat(found).sort_index()


def _frame_to_series(df: pd.DataFrame, measurement: str, value_col: str) -> dict:
    out: dict[SeriesKey, pd.Series] = {}
    if df.empty:
        return out
    tags = _tag_columns(df, (value_col,))
    if tags:
        groups = df.groupby([df[k].fillna("") for k in tags], sort=False, dropna=False)
    else:
        groups = [((), df)]
    for values, g in groups:
        values = values if isinstance(values, tuple) else (values,)
        key = series_key(measurement, {k: v for k, v in zip(tags, values, strict=True) if v})
        s = pd.Series(g[value_col].to_numpy(), index=pd.DatetimeIndex(g["time"]), name=measurement)
        out[key] = pd.concat([out[key], s]).sort_index() if key in out else s
    return out


def _result_series(result: dict, measurement: str) -> tuple[dict[SeriesKey, pd.Series], int]:
    """One statement's answer (``SELECT "value" … GROUP BY *``, ns epochs) per series, and its
    row count: the series ``_frame_to_series`` makes of ``InfluxStore.query``'s frame (same
    keys, values, dtypes and index), without building and regrouping that frame. InfluxDB
    answers one series per tag set, so its rows are already grouped; two tag sets that differ
    only in an ignored tag (``area``) make one series, concatenated in time order."""
    out: dict[SeriesKey, pd.Series] = {}
    found = [s for s in result.get("series", []) if s.get("values")]
    if not found:
        return out, 0
    times, values, spans = [], [], []
    for series in found:
        cols, rows = series["columns"], series["values"]
        ti, vi = cols.index("time"), cols.index("value")
        times.extend(r[ti] for r in rows)
        values.extend(r[vi] for r in rows)
        spans.append(len(rows))
    # The frame's column has one dtype for every series of the answer (a string in one series
    # makes them all strings, refused downstream): infer it over all values at once, as the
    # frame does.
    v_all = pd.Series(values).to_numpy()
    t_all = pd.DatetimeIndex(np.array(times, dtype=np.int64).view("datetime64[ns]"), name="time")
    t_all = t_all.tz_localize("UTC")
    at = 0
    for series, k in zip(found, spans, strict=True):
        tags = {t: v for t, v in (series.get("tags") or {}).items() if v}
        key = series_key(measurement, tags)
        s = pd.Series(v_all[at : at + k], index=t_all[at : at + k], name=measurement)
        at += k
        out[key] = pd.concat([out[key], s]).sort_index() if key in out else s
    return out, len(values)


def read_range(
    store: InfluxStore,
    plant_id: str,
    measurements: Iterable[str],
    start_ns: int,
    end_ns: int,
    *,
    before: Iterable[str] = (),
    before_lookback_ns: int = 31 * 24 * NS_PER_H,
) -> Readings:
    """Every reading of ``measurements`` in ``[start_ns, end_ns)``, per series. For the
    measurements in ``before`` (counters, state signals) also the last reading at or before
    ``start_ns`` (within ``before_lookback_ns``): a counter's first increment and a state in
    force at the start need it."""
    series: dict[SeriesKey, pd.Series] = {}
    count = 0
    before = set(before)
    for m in measurements:
        parts = []
        if m in before:
            w0 = where(
                {"plant": plant_id}, start_ns=start_ns - before_lookback_ns, end_ns=start_ns + 1
            )
            q = f'SELECT LAST("value") AS value FROM {quote_ident(m)} {w0} GROUP BY *'
            parts.append(_result_series(_one(store.query_raw(q)), m)[0])
        w = where({"plant": plant_id}, start_ns=start_ns, end_ns=end_ns)
        q = f'SELECT "value" FROM {quote_ident(m)} {w} GROUP BY *'
        found, n = _result_series(_one(store.query_raw(q)), m)
        count += n
        parts.append(found)
        for part in parts:
            for key, s in part.items():
                if key in series:
                    s = pd.concat([series[key], s])
                    s = s[~s.index.duplicated(keep="last")].sort_index()
                series[key] = s
    return Readings(series, count)


def _one(results: list[dict]) -> dict:
    return results[0] if results else {}


# ---- reading in a process of its own -----------------------------------------------------------
#
# A backfill reads a year of readings while it computes: parsing InfluxDB's JSON answers is as
# much CPU as a third of the computing, and a thread of the computing process would take it from
# the same interpreter lock. A worker process (``read_range_worker``) parses on the other core
# and hands the readings back pickled: the same series, values, dtypes and index.

_WORKER_STORE: InfluxStore | None = None


def reader_init(settings, parent: int | None = None) -> None:
    """A reader process's start: its own client of the same database, as the same user, and a
    watch on its parent: a parent killed outright (SIGKILL) cannot stop it, so it ends itself
    within a second of becoming an orphan. ``parent``: the pid of the process that started
    it, as that process gave it (``os.getpid()`` there): read here, a parent killed before
    this ran would already be the orphan's new parent, and the watch would never end it."""
    global _WORKER_STORE
    _WORKER_STORE = InfluxStore(settings)
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="gf-metrics-reader-watch").start()


def read_range_worker(plant_id: str, measurements, start_ns: int, end_ns: int, before=()):
    """``read_range`` in a reader process (``reader_init`` gave it its store)."""
    assert _WORKER_STORE is not None, "reader_init did not run"
    return read_range(_WORKER_STORE, plant_id, measurements, start_ns, end_ns, before=before)
