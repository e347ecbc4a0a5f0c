"""The rollup engine: which hours are dirty, recomputing them, composing the windows above.

One ``Engine`` per plant. Its work, every run (``run_once``):

1. **Detect** late data from the data: the fingerprint (COUNT, SUM of ``value``) of every input
   series per UTC hour (``source.fingerprints``) over the recent ``lookback_h`` and, every
   ``SWEEP_EVERY``-th run, one ``sweep_h`` slice of older history (a cursor that walks back to
   ``history_days`` and starts again), compared with the fingerprints the last computation used (``state``). An hour whose
   fingerprint changed is dirty; for a counter also the hour before it (a reading on the hour
   closes the hour before) and the next hour with a reading of that series (its first increment
   starts from the changed reading).
2. **Recompute** the dirty hours from the readings (chunks of at most ``CHUNK_H`` hours): one
   partial per hour and item (``rollups``), the hour's points, and in ONE transaction the
   partials, the new fingerprints and the windows above them marked dirty.
3. **Compose** each dirty shift, day and month from its hours' partials and each year and
   trailing 12 months from its months' partials (exact sums, ``rollups``), write the points
   and mark them clean.

At start (``reconcile``) the whole history is checked once, chunk by chunk. A killed process
finds its dirty windows and unchanged fingerprints again; recomputing writes the same points,
so a restart changes nothing. The site's mean air temperature of a year (Table C.1 note 4) is
computed from that year's ``ambient_temp_c`` readings when the fingerprints of its hours change,
and the windows that used it are composed again.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from greenfoundry.glossary import SIGNALS
from greenfoundry.metrics import noise as noise_fns
from greenfoundry.metrics import rollups, schema, source
from greenfoundry.metrics import windows as win
from greenfoundry.metrics.factors import load_factors
from greenfoundry.metrics.measured import judge
from greenfoundry.metrics.state import State, slice_partials
from greenfoundry.metrics.table_c1 import AirTemp, FurnaceFacts, annual_mean_air_temp_c

log = logging.getLogger(__name__)

NS_PER_H = 3600 * 10**9
CHUNK_H = 24 * 7  # hours recomputed per read of the readings
FP_CHUNK_H = 24 * 31  # hours per fingerprint query
# Hours a backfill detects at a time (one fingerprint query, at most FP_CHUNK_H): InfluxDB
# fingerprints the next span while this one's hours are computed.
BACKFILL_SPAN_H = 4 * CHUNK_H
# Every cumulative counter of the glossary (furnace and site energy, coke, gas, oxygen, water).
COUNTER_SIGNALS = tuple(sorted(n for n, s in SIGNALS.items() if s.kind == "counter"))
COUNTER_AFTER_NS = 901 * 10**9  # the counter reading after a chunk's end (max gap 900 s)
UPPER = ("shift", "day", "month", "year", "trailing_12m")
FROM_HOURS = ("hour", "shift", "day", "month")  # composed from hour partials
FROM_MONTHS = ("year", "trailing_12m")  # composed from month partials
ROLLUPS = ("c1", "air", "plant", "water", "noise")
AMBIENT = "ambient_temp_c"
# One run in this many also fingerprints a slice of older history (the sweep). The slice costs
# InfluxDB a scan of its readings, as much as the rest of a run on a plant with a year of
# history; one run in four keeps a run's mean cost within a tenth of the cost without history
# (bench/metrics.py), and the whole history is still checked in a few hours (metrics/README.md).
SWEEP_EVERY = 4
WRITE_BATCH = 5000


def _li_floors() -> dict:
    """Li of each tier by the standard file's policy (clause 5.2.2), read once."""
    from greenfoundry.scoring.standard import load_standard

    policy = load_standard().li_policy
    return {
        1: policy.li_floor(1),
        2: policy.li_floor(2),
        3: policy.li_floor(3),
        "below": policy.li_floor(None),
    }


def _c1_table():
    """The standard's Table C.1 as ``load_standard`` has it now: taken again for every chunk
    of hours and every block of windows, so a changed standard file is read at the next one,
    and not looked up for each of the thousands of evaluations in between."""
    from greenfoundry.scoring.standard import load_standard

    return load_standard().furnace_table


def _floor_h(ns: int) -> int:
    return ns - ns % NS_PER_H


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def _series_text(key: source.SeriesKey) -> str:
    return ",".join(f"{k}={v}" for k, v in key[1])


@dataclass
class Progress:
    """What a backfill (or reconcile) has done so far, for its progress bar."""

    readings: int = 0
    hours_done: int = 0
    hours_total: int = 0
    windows_done: int = 0
    points: int = 0
    started: float = 0.0


def _runs(buckets: list[int]) -> list[list[int]]:
    """Sorted UTC buckets as runs of consecutive ones, at most ``CHUNK_H`` each."""
    runs: list[list[int]] = []
    for bkt in buckets:
        if runs and bkt == runs[-1][-1] + NS_PER_H and len(runs[-1]) < CHUNK_H:
            runs[-1].append(bkt)
        else:
            runs.append([bkt])
    return runs


def _ambient_series(found: Iterable[source.Readings]) -> pd.Series:
    """One series of the ambient readings of several ranges (months, in time order)."""
    parts = [s for r in found for s in r.series.values()]
    if not parts:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    return pd.concat(parts).sort_index()


class _Gathered:
    """Several futures as one: ``result`` combines their results, in order."""

    def __init__(self, futures: list[Future], combine: Callable):
        self.futures, self.combine = futures, combine

    def result(self):
        return self.combine(f.result() for f in self.futures)


class _Writes:
    """The points of one chunk (or block of windows) written by a thread of their own while
    the next one is computed. ``submit`` sends them; the state the caller has put with them
    stays uncommitted until ``flush`` has InfluxDB's acknowledgement, then commits. A failed
    write (or any error while one is in flight) rolls that state back, so its hours stay
    dirty and are computed again: fingerprints are never committed for unwritten points."""

    def __init__(self, engine: Engine, on_done=None):
        self.engine = engine
        self.on_done = on_done
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gf-metrics-write")
        self.pending: tuple[Future, int, int] | None = None

    def submit(self, lines: list[str], hours: int = 0) -> None:
        assert self.pending is None, "one write in flight at a time"
        self.pending = (self.pool.submit(self.engine._write, lines), len(lines), hours)

    def flush(self) -> int:
        """Wait for the write in flight, commit the state put with it; its points."""
        if self.pending is None:
            return 0
        fut, n, hours = self.pending
        self.pending = None
        fut.result()
        self.engine.state.commit()
        self.engine.progress.points += n
        self.engine.progress.hours_done += hours
        if self.on_done:
            self.on_done()
        return n

    def __enter__(self) -> _Writes:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            self.pending = None
            self.pool.shutdown(wait=True)
            self.engine.state.rollback()
            # The note-4 values kept in memory may have been found in the rolled-back work:
            # the windows that used a changed value were marked dirty in it, so a value kept
            # now would never mark them again. Forgotten, the next use compares the year's
            # fingerprints with the state's (rolled back too) and marks them again.
            self.engine._air.clear()
            self.engine._ambient_ahead.clear()
            self.engine._ambient_months.clear()
            return
        assert self.pending is None, "a write left unflushed"
        self.pool.shutdown(wait=True)


class Engine:
    """The rollups of one plant (see the module docstring). ``clock`` gives now in epoch s."""

    def __init__(self, cfg, store=None, state: State | None = None, clock: Callable = time.time):
        from greenfoundry.plant import MetricsConfig  # noqa: F401 (the section's type)

        self.cfg = cfg
        self.m = cfg.metrics
        self.tz = cfg.plant.timezone
        self.plant_id = cfg.plant.id
        self.shifts = {name: start for name, start in self.m.shifts}
        self.store = store or source.store_for_metrics(cfg)
        self.state = state or State(self.m.state_dir)
        self.clock = clock
        self.facts = {f.id: FurnaceFacts.from_plant(f, cfg.plant.product) for f in cfg.furnaces}
        self.air_items = [
            (s.id, p, limit) for s in cfg.stacks for p, limit in sorted(s.limits_mg_m3.items())
        ]
        ms = {rollups.ENERGY_SIGNAL[f.kind] for f in cfg.furnaces} | {"tap_iron_t", "tap_temp_c"}
        if self.air_items:
            ms |= {rollups.STACK_SIGNAL, rollups.STATUS_SIGNAL}
        if self.m.o2_ref_pct:
            ms.add(rollups.O2_SIGNAL)
        # Table 5, the water-reuse rates, Table A.1 and CO2: the plant's inputs its config maps.
        self.p_counters, self.p_events = rollups.plant_inputs(cfg)
        ms |= {rollups.PLANT_COUNTERS[k][0] for k in self.p_counters}
        ms |= {rollups.PLANT_EVENTS[k] for k in self.p_events}
        if self.p_events & set(rollups.DN_KEYS):
            ms.add(rollups.DN_SIGNAL)
        # Table 6 water and noise: each outfall's pollutants with a limit D, and the boundary
        # points of the noise signals (with the config's limits E).
        self.water_items = [
            (o.id, p, limit) for o in cfg.outfalls for p, limit in sorted(o.limits_mg_l.items())
        ]
        self.noise_points = sorted(
            {r.device for r in cfg.routes.values() if r.signal == rollups.NOISE_SIGNAL}
            if cfg.boundary_noise
            else ()
        )
        if self.water_items:
            ms |= {rollups.WATER_SIGNAL, rollups.WATER_STATUS_SIGNAL}
        if self.noise_points:
            ms |= {rollups.NOISE_SIGNAL, rollups.NOISE_STATUS_SIGNAL}
        self.inputs = tuple(sorted(ms))
        self.watched = (*self.inputs, AMBIENT)
        self.before = tuple(m for m in self.inputs if m in COUNTER_SIGNALS) + (
            (rollups.STATUS_SIGNAL,) if self.air_items else ()
        )
        if self.water_items:  # the outfall analysers' status in force at a range's start
            self.before += (rollups.WATER_STATUS_SIGNAL,)
        if self.noise_points:  # the noise monitors' status in force at a range's start
            self.before += (rollups.NOISE_STATUS_SIGNAL,)
        self.factors = load_factors(self.m.factors)  # GB/T 2589 and CO2, with the overrides
        self.coke = self.factors.kgce("coke").value
        self._air: dict[str, AirTemp] = {}
        self._years: dict[int, win.Window] = {}
        self._end_year: dict[int, int] = {}  # a window's end (UTC ns) → the year before its own
        # Ambient readings of a year read ahead by a thread of its own (note 4, ``_air_year``).
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gf-metrics-air")
        self._ambient_ahead: dict[str, Future] = {}
        # The ambient readings of the years ``_ambient`` read last, by local month (start ns →
        # (end ns, the month's readings)): a window of the running year takes note 4 from that
        # year, whose fingerprints change with every new reading, and reading the whole year
        # again every run cost a run as much as the year's readings. A month is read again
        # only once fingerprint rows of its hours are set (``_forget_air``).
        self._ambient_months: dict[str, dict[int, tuple[int, source.Readings]]] = {}
        self.li_floors = _li_floors()
        self._c1_table = _c1_table()
        self.progress = Progress()
        self.stop = threading.Event()  # set: finish the chunk in progress, then return
        self.read_in_process = False  # a backfill reads its chunks in a process (``_reader``)
        self._pool: ProcessPoolExecutor | None = None  # that process, while it reads
        self._check_rules()

    # ---- the rules the state was built with ---------------------------------------------------

    def rules(self) -> dict:
        m = self.m
        rules = {
            "tz": self.tz,
            "shifts": list(m.shifts),
            "min_valid_minutes": m.min_valid_minutes,
            "min_coverage": m.min_coverage,
            "table6_rule": m.table6_rule,
            "o2": m.o2_ref_pct,
            "rollover": m.rollover_modulus,
            "factors": m.factors,
            "furnaces": [dataclasses.astuple(f) for f in self.cfg.furnaces],
            "stacks": [(s.id, sorted(s.limits_mg_m3.items())) for s in self.cfg.stacks],
            "product": self.cfg.plant.product,
            "air_c": self.cfg.plant.annual_mean_air_temp_c,
            "version": 2,  # 2: the plant rollup (Table 5, water, Table A.1, CO2)
        }
        if m.made_on_site:  # only when set, so the states of plants without it stay valid
            rules["made_on_site"] = list(m.made_on_site)
        if self.water_items or self.noise_points:  # Table 6 water and noise, where mapped
            bn = self.cfg.boundary_noise
            rules["table6_water_noise"] = {
                "water": self.water_items,
                "noise": self.noise_points,
                "boundary": dataclasses.astuple(bn) if bn else None,
                "residential": self.cfg.plant.residential_within_1200m,
                "min_samples": m.water_min_valid_samples,
                "min_minutes": m.noise_min_valid_minutes,
            }
        return rules

    def _check_rules(self) -> None:
        digest = hashlib.sha256(json.dumps(self.rules(), sort_keys=True).encode()).hexdigest()
        if self.state.get("rules") != digest:
            if self.state.get("rules") is not None:
                log.warning("metrics rules changed since the state was built: recomputing all")
            self.state.reset()
            self.state.put("rules", digest)
            self.state.commit()

    # ---- windows -------------------------------------------------------------------------------

    def window_at(self, kind: str, start_ns: int) -> win.Window:
        t = _ts(start_ns)
        if kind == "trailing_12m":
            m = win.window_containing(t, "month", self.tz)
            for _ in range(11):
                m = win.window_containing(m.end, "month", self.tz)
            return win.window_containing(m.start, kind, self.tz)
        return win.window_containing(t, kind, self.tz, shifts=self.shifts)

    def windows_at(self, kind: str, starts: list[int]) -> dict[int, win.Window]:
        """``window_at`` for many starts at once: the windows of ``kind`` over the starts'
        range (padded by days, so none of them lies at an edge of the range), by start; the
        same windows ``window_containing`` finds one by one (both cut the same calendar). A
        trailing 12 months is found by its last month, so its range reaches a year past the
        last start. A start not found is left to ``window_at``."""
        if not starts:
            return {}
        pad = pd.Timedelta(days=3)
        a, b = _ts(min(starts)) - pad, _ts(max(starts)) + pad
        if kind == "trailing_12m":
            b += pd.Timedelta(days=366)
        ws = win.windows_covering(kind, a, b, self.tz, shifts=self.shifts)
        return {w.start.value: w for w in ws}

    def _above(self, start_ns: int, end_ns: int) -> set[tuple[str, int]]:
        """Every window above the hours of ``[start, end)``: what recomputing them makes dirty."""
        a, b = _ts(start_ns), _ts(end_ns)
        out = set()
        for kind in ("shift", "day", "month", "year"):
            out |= {
                (kind, w.start.value)
                for w in win.windows_covering(kind, a, b, self.tz, shifts=self.shifts)
            }
        for m in win.windows_covering("month", a, b, self.tz):
            for w in win.windows_covering(
                "trailing_12m", m.start, m.start + pd.Timedelta(days=366), self.tz
            ):
                if w.start <= m.start < w.end:
                    out.add(("trailing_12m", w.start.value))
        return out

    # ---- detection -----------------------------------------------------------------------------

    def detect(
        self, start_ns: int, end_ns: int, *, force: bool = False, read=None
    ) -> tuple[set[int], list]:
        """Dirty UTC hour buckets in ``[start, end)`` and the fingerprint rows to commit. With
        ``force`` every hour with readings is dirty (a backfill). ``read``: InfluxDB's
        fingerprints of the range already asked for (a ``Future`` of ``source.fingerprints``
        over the whole range, at most ``FP_CHUNK_H`` hours)."""
        dirty: set[int] = set()
        rows = []
        old = self.state.fingerprints(start_ns - NS_PER_H, end_ns)
        spans = []
        a = start_ns
        while a < end_ns:
            spans.append((a, min(end_ns, a + FP_CHUNK_H * NS_PER_H)))
            a = spans[-1][1]
        found = [read.result()] if read is not None else self._fingerprints(spans)
        for fp in found:
            by_series: dict[tuple, list[int]] = {}
            for key, bucket in fp.rows:
                by_series.setdefault(key, []).append(bucket)
            for key, buckets in by_series.items():
                m, text = key[0], _series_text(key)
                buckets.sort()
                for i, bucket in enumerate(buckets):
                    c, s = fp.rows[(key, bucket)]
                    if not force and old.get((m, text, bucket)) == (c, s):
                        continue
                    rows.append((m, text, bucket, c, s))
                    if m == AMBIENT:
                        continue  # read per year for Table C.1 note 4 (air_temp)
                    dirty.add(bucket)
                    if m in COUNTER_SIGNALS:
                        dirty.add(bucket - NS_PER_H)
                        if i + 1 < len(buckets):
                            dirty.add(buckets[i + 1])
        return {d for d in dirty if start_ns - NS_PER_H <= d < end_ns}, rows

    def _fp_call(self, a: int, b: int) -> tuple:
        return (source.fingerprints, self.store, self.plant_id, self.watched, a, b)

    def _fingerprints(self, spans: list[tuple[int, int]]) -> Iterable[source.Fingerprints]:
        """The fingerprints of each span in turn; with several, InfluxDB computes the next
        span's while this one's are compared."""
        if len(spans) == 1:
            yield source.fingerprints(self.store, self.plant_id, self.watched, *spans[0])
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gf-metrics-fp") as ahead:
            pending = None
            for i, span in enumerate(spans):
                fp = pending.result() if pending is not None else None
                if fp is None:
                    fp = source.fingerprints(self.store, self.plant_id, self.watched, *span)
                pending = None
                if i + 1 < len(spans):
                    pending = ahead.submit(
                        source.fingerprints, self.store, self.plant_id, self.watched, *spans[i + 1]
                    )
                yield fp

    # ---- recomputing hours ---------------------------------------------------------------------

    def compute_hours(
        self, buckets: Iterable[int], fp_rows: list | None = None, *, on_chunk=None
    ) -> int:
        """Recompute the local hours overlapping the UTC hour ``buckets``; commit with them the
        fingerprint rows ``fp_rows`` (those of buckets in each chunk) and the windows above."""
        runs = _runs(sorted(set(buckets)))
        rows = sorted(fp_rows or [], key=lambda r: r[2])
        chunks = self._chunks(runs, rows)
        if len(rows):
            chunks.append((None, rows))  # after the last run (ambient hours), committed last
        if len(runs) > 1:
            self._read_ambient_ahead([h for h, _ in chunks if h])
        return self._compute_chunks(chunks, on_chunk=on_chunk)

    def _chunks(self, runs: list[list[int]], rows: list) -> list[tuple[list, list]]:
        """The chunks of ``runs`` (consecutive UTC buckets): (their local hours, the fingerprint
        rows committed with them: those of their buckets and of any bucket before), taken out
        of ``rows`` (sorted by bucket)."""
        out = []
        for run in runs:
            b = run[-1] + NS_PER_H
            hours = win.windows_covering("hour", _ts(run[0]), _ts(b), self.tz)
            k = bisect.bisect_left([r[2] for r in rows], b)
            out.append((hours, rows[:k]))
            del rows[:k]
        return out

    def _compute_chunks(self, chunks: Iterable[tuple], *, on_chunk=None) -> int:
        """Compute ``chunks`` ((local hours or None, fingerprint rows) each) in order; they may
        come lazily (a backfill detects the next span's dirty hours while this one's are
        computed).

        Three things overlap, one chunk apart: InfluxDB reads the next chunk's readings and
        writes the last chunk's points while this process computes the current one (InfluxDB
        answers in its own process, so its time and ours overlap instead of adding up). Every
        chunk is still computed in order, one at a time, and its state (partials, fingerprints,
        the windows above marked dirty) commits only once InfluxDB has acknowledged its
        points: a killed or failed run leaves those hours dirty, as before."""
        points = 0
        writes = _Writes(self, on_chunk)
        with self._reader() as ahead, writes:
            it = iter(chunks)
            cur = next(it, None)
            nxt = next(it, None) if cur is not None else None
            pending = ahead.submit(*self._read_call(cur[0])) if nxt and cur[0] else None
            while cur is not None:
                hours, rows = cur
                lines: list[str] = []
                if hours:
                    readings = pending.result() if pending is not None else self._read(hours)
                    pending = None
                if nxt is not None and nxt[0] and pending is None and not self.stop.is_set():
                    pending = ahead.submit(*self._read_call(nxt[0]))
                if hours:
                    lines, partials, computed = self._hours(hours, readings)
                points += writes.flush()
                if self.stop.is_set():
                    return points  # the rest stays dirty: its fingerprints were not committed
                if hours:
                    self.state.set_partials(partials)
                    self.state.set_computed(computed)
                # Fingerprints of this run's buckets (and of ambient hours) commit with it.
                self.state.set_fingerprints(rows)
                self._forget_air(rows)
                if hours:
                    self.state.mark_dirty(self._above(hours[0].start.value, hours[-1].end.value))
                writes.submit(lines, len(hours or ()))
                cur, nxt = nxt, (next(it, None) if nxt is not None else None)
            points += writes.flush()
        return points

    def _reader(self):
        """Where chunks are read ahead: a thread, or for a backfill (``read_in_process``) a
        process of its own, started now so that it is up by the first chunk."""
        if not self.read_in_process:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="gf-metrics-read")
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=source.reader_init,
            initargs=(self.store.settings, os.getpid()),
        )
        pool.submit(int)  # starts the process while the first fingerprints are read
        self._pool = pool
        return pool

    def _read_call(self, hours: list[win.Window]) -> tuple:
        """``_read`` of ``hours`` as a call for the reader of ``_reader``."""
        if not self.read_in_process:
            return (self._read, hours)
        a, b = hours[0].start.value, hours[-1].end.value
        return (
            source.read_range_worker,
            self.plant_id,
            self.inputs,
            a,
            b + COUNTER_AFTER_NS,
            self.before,
        )

    def _read(self, hours: list[win.Window]) -> source.Readings:
        """The readings a chunk of hours is computed from (and the counters' next reading)."""
        a, b = hours[0].start.value, hours[-1].end.value
        return source.read_range(
            self.store, self.plant_id, self.inputs, a, b + COUNTER_AFTER_NS, before=self.before
        )

    def _hours(self, hours: list[win.Window], readings: source.Readings) -> tuple:
        """The chunk's points, and its partials and computed rows for the state (the caller
        puts them once the points before them are written)."""
        self.progress.readings += readings.count
        self._c1_table = _c1_table()
        lines, partials, computed = [], [], []
        now = time.time_ns()
        furnace_hours = {}
        for f in self.cfg.furnaces:
            parts = rollups.c1_hours(
                readings,
                hours,
                f,
                rollover=self.m.rollover_modulus.get(f.id),
                min_coverage=self.m.min_coverage,
            )
            furnace_hours[f.id] = parts
            for h, p in zip(hours, parts, strict=True):
                partials.append(("c1", f.id, "hour", h.start.value, p))
        air_hours = {}
        for sid, pol, limit in self.air_items:
            parts = rollups.air_hours(
                readings,
                hours,
                sid,
                pol,
                limit,
                o2_ref_pct=self.m.o2_ref_pct.get(sid),
                min_valid_minutes=self.m.min_valid_minutes,
            )
            air_hours[(sid, pol)] = parts
            for h, p in zip(hours, parts, strict=True):
                partials.append(("air", f"{sid}/{pol}", "hour", h.start.value, p))
        plant_hours = rollups.plant_hours(
            readings,
            hours,
            self.p_counters,
            self.p_events,
            rollover=self.m.rollover_modulus,
            min_coverage=self.m.min_coverage,
        )
        for h, p in zip(hours, plant_hours, strict=True):
            # An hour without a plant reading adds nothing to a sum: no partial is kept for it
            # (a plant that maps none of these signals keeps no rows for them).
            if rollups.plant_has_data(p):
                partials.append(("plant", "plant", "hour", h.start.value, p))
        t6_hours = self._t6_hours(hours, readings, partials)
        for i, h in enumerate(hours):
            c1 = {fid: parts[i] for fid, parts in furnace_hours.items()}
            air = {k: parts[i] for k, parts in air_hours.items()}
            t6 = {r: {k: parts[i] for k, parts in d.items()} for r, d in t6_hours.items()}
            lines += self._window_points(h, c1, air, computed, now, plant=plant_hours[i], t6=t6)
        return lines, partials, computed

    def _write(self, lines: list[str]) -> None:
        for i in range(0, len(lines), WRITE_BATCH):
            self.store.write_lines(lines[i : i + WRITE_BATCH])

    # ---- one window's points -------------------------------------------------------------------

    def air_temp(self, window: win.Window) -> AirTemp:
        """Table C.1 note 4 for ``window``: the site's mean air temperature of the latest
        calendar year complete at the window's end."""
        # The latest year complete at the window's end: the local year before the one holding
        # the end instant (windows.latest_complete), cached by that year.
        return self._air_year(self._year_before(window.end))

    def _forget_air(self, fp_rows: list) -> None:
        """Drop the kept note-4 value of every year whose ambient fingerprints these rows
        change: ``_air_year`` then compares the year's fingerprints again. Only this engine
        writes the state's fingerprints (the lock), so a value kept otherwise still holds."""
        buckets = [r[2] for r in fp_rows if r[0] == AMBIENT]
        if not buckets:
            return
        for months in self._ambient_months.values():
            # A month holding any instant of a changed UTC hour (a local month may start
            # within an hour) is read again.
            for start in [
                s
                for s, (e, _r) in months.items()
                if any(s < b + NS_PER_H and b < e for b in buckets)
            ]:
                del months[start]
        for y in list(self._air):
            w = next((w for w in self._years.values() if w.label == y), None)
            if w is None or any(w.start.value <= b < w.end.value for b in buckets):
                del self._air[y]

    def _year_before(self, end: pd.Timestamp) -> win.Window:
        """The latest calendar year complete at ``end``."""
        y = self._end_year.get(end.value)
        if y is None:
            y = self._end_year[end.value] = end.tz_convert(self.tz).year - 1
        if y not in self._years:
            self._years[y] = win.latest_complete("year", end, self.tz)
            assert self._years[y].label == str(y)
        return self._years[y]

    def _ambient(self, year: win.Window, *, keep: bool = False) -> pd.Series:
        """The year's ``ambient_temp_c`` readings, a month per request. With ``keep`` (this
        engine's own thread only) the months are kept and only those whose hours changed
        since are read again (``_ambient_months``): the same readings of every month as a new
        read gives while its fingerprints are unchanged, in the same order, so the same
        series. The years read ahead by another thread neither use nor keep them, so no kept
        month can be one read before its hours changed."""
        months = win.windows_covering("month", year.start, year.end, self.tz)
        kept = self._ambient_months.get(year.label, {}) if keep else {}
        parts = []
        for m in months:
            got = kept.get(m.start.value)
            if got is None:
                r = source.read_range(
                    self.store, self.plant_id, (AMBIENT,), m.start.value, m.end.value
                )
                got = kept[m.start.value] = (m.end.value, r)
            parts.append(got[1])
        if keep:
            # The two years a run takes note 4 from at most (the last complete one and the
            # running one): older ones are dropped, so memory stays at two years of readings.
            self._ambient_months.pop(year.label, None)
            self._ambient_months[year.label] = kept
            while len(self._ambient_months) > 2:
                del self._ambient_months[next(iter(self._ambient_months))]
        return _ambient_series(parts)

    def _read_ambient_ahead(self, chunks: list[list[win.Window]]) -> None:
        """Start reading the ambient readings of the years the chunks' hours take note 4 from,
        for a year the state has no value of yet (a first computation reads all of them; later
        ones compare the year's fingerprints first and mostly find the value kept)."""
        for end in sorted({h.end for c in chunks for h in (c[0], c[-1])}):
            year = self._year_before(end)
            if year.label in self._air or year.label in self._ambient_ahead:
                continue
            if self.state.get(f"air:{year.label}") is None and self._pool is not None:
                # A backfill's reader process reads the year's months between its chunks.
                months = win.windows_covering("month", year.start, year.end, self.tz)
                reads = [
                    self._pool.submit(
                        source.read_range_worker, self.plant_id, (AMBIENT,), m.start.value,
                        m.end.value,
                    )
                    for m in months
                ]  # fmt: skip
                self._ambient_ahead[year.label] = _Gathered(reads, _ambient_series)
            elif self.state.get(f"air:{year.label}") is None:
                self._ambient_ahead[year.label] = self._ahead.submit(self._ambient, year)

    def _air_year(self, year: win.Window) -> AirTemp:
        if year.label in self._air:
            return self._air[year.label]
        fp = self.state.db.execute(
            "SELECT COUNT(*), SUM(count), SUM(sum) FROM fingerprints WHERE measurement = ? "
            "AND bucket >= ? AND bucket < ?",
            (AMBIENT, year.start.value, year.end.value),
        ).fetchone()
        key = f"air:{year.label}"
        cached = self.state.get(key)
        if cached and cached["fp"] == list(fp):
            d = cached["air"]
            d["month_coverage"] = tuple(d["month_coverage"])
            d["lacking"] = tuple(d["lacking"])
            at = AirTemp(**d)
        else:
            # Read ahead (``_read_ambient_ahead``) no earlier than the fingerprints just read:
            # those of the hours being computed were read before the chunks began.
            ahead = self._ambient_ahead.pop(year.label, None)
            ambient = ahead.result() if ahead is not None else self._ambient(year, keep=True)
            at = annual_mean_air_temp_c(
                ambient,
                year,
                self.tz,
                config_value_c=self.cfg.plant.annual_mean_air_temp_c,
                hold_minutes=self.m.ambient_hold_minutes,
                min_coverage=self.m.min_coverage,
            )
            if cached is not None and cached["air"]["value_c"] != at.value_c:
                # The year's value changed: every window that used it is composed again.
                rows = self.state.db.execute(
                    "SELECT kind, start FROM computed WHERE air = ?", (year.label,)
                ).fetchall()
                self.state.mark_dirty(rows)
            self.state.put(key, {"fp": list(fp), "air": dataclasses.asdict(at)})
        self._air[year.label] = at
        return at

    def _window_points(
        self, w: win.Window, c1: dict, air: dict, computed: list, now: int, plant=None, t6=None
    ) -> list[str]:
        lines = self._plant_points(w, plant, computed, now)
        at = self.air_temp(w)
        tags = {"plant": self.plant_id, "window": w.kind}
        results = []
        for f in self.cfg.furnaces:
            r = rollups.c1_finish(
                w,
                c1.get(f.id),
                f,
                self.facts[f.id],
                air=at,
                product=self.cfg.plant.product,
                coke_kgce_per_kg=self.coke,
                min_coverage=self.m.min_coverage,
                li_floors=self.li_floors,
                table=self._c1_table,
            )
            results.append(r)
            p = c1.get(f.id) or rollups.c1_combine([])
            fields = schema.c1_fields(r)
            fields.update(
                tap_temp_c=r.tap_temp_c,
                annual_mean_air_temp_c=r.annual_mean_air_temp_c,
                air_temp_source=r.air_temp_source,
                air_temp_year=at.year,
                energy_coverage=min(1.0, p["e_cov_ns"] / (w.end.value - w.start.value)),
                taps=int(p["taps"]),
                resets=int(p["resets"]),
                rollovers=int(p["rollovers"]),
                gaps=int(p["gaps"]),
            )
            lines.append(schema.point(schema.C1_FURNACE, {**tags, "furnace": f.id}, w, fields))
            computed.append(
                ("c1", f.id, w.kind, w.start.value, w.label, r.coverage, r.status, now, at.year)
            )
        if results:
            from greenfoundry.metrics.table_c1 import plant_energy_per_t

            pr = plant_energy_per_t(
                results, min_coverage=self.m.min_coverage, li_floors=self.li_floors
            )
            fields = schema.c1_fields(pr)
            dn, t_eq = rollups.scorer_tap_temp_c(
                results, self.facts, self.cfg.plant.product, table=self._c1_table
            )
            tw = sum((c1.get(f.id) or {}).get("tw", 0.0) for f in self.cfg.furnaces)
            tw_t = sum((c1.get(f.id) or {}).get("tw_t", 0.0) for f in self.cfg.furnaces)
            fields.update(
                tap_temp_c=tw / tw_t if tw_t > 0 else None,
                scorer_tap_temp_c=t_eq,
                scorer_dn=dn,
                annual_mean_air_temp_c=at.value_c,
                air_temp_source=at.source,
                air_temp_year=at.year,
                furnaces=",".join(pr.included) or None,
                decision=pr.decision,
            )
            lines.append(schema.point(schema.C1_PLANT, tags, w, fields))
            computed.append(
                (
                    "c1",
                    "plant",
                    w.kind,
                    w.start.value,
                    w.label,
                    pr.coverage,
                    pr.status,
                    now,
                    at.year,
                )
            )
        worst = None
        for sid, pol, limit in self.air_items:
            p = air.get((sid, pol))
            res = rollups.air_finish(
                w,
                p,
                rule=self.m.table6_rule,
                min_coverage=self.m.min_coverage,
                min_valid_minutes=self.m.min_valid_minutes,
            )
            fields = schema.air_fields(res, limit)
            if w.kind == "hour" and p is not None:
                fields.update(
                    mean_mg_m3=p["mean_mg_m3"],
                    valid_minutes=p["valid_min"],
                    minutes_flagged=p["flagged_min"],
                    status=p["status"],
                    lacking=p["lacking"] or res["lacking"],
                )
                res = {**res, "status": p["status"]}
            lines.append(
                schema.point(schema.AIR_STACK, {**tags, "stack": sid, "pollutant": pol}, w, fields)
            )
            computed.append(
                (
                    "air",
                    f"{sid}/{pol}",
                    w.kind,
                    w.start.value,
                    w.label,
                    res["coverage"],
                    res["status"],
                    now,
                    None,
                )
            )
            # A stack without a value may come first: it is the worst only until one has a value.
            if res["value"] is not None and (
                worst is None or worst[0]["value"] is None or res["value"] > worst[0]["value"]
            ):
                worst = (res, f"{sid}/{pol}")
            elif worst is None or worst[0]["value"] is None:
                worst = worst or (res, f"{sid}/{pol}")
        if self.air_items:
            covs = []
            for sid, pol, _ in self.air_items:
                p = air.get((sid, pol))
                covs.append((p["valid_h"] if p else 0) / max(1, w.minutes // 60))
            res, which = worst
            st = res["status"]
            if st in ("ok", "low_coverage"):
                st = judge(res["valid_hours"], min(covs), self.m.min_coverage)
                st = "low_coverage" if st == "no_data" else st
            fields = {
                "multiple_of_c": res["value"],
                "worst": which if res["value"] is not None else None,
                "coverage": min(covs),
                "status": st,
                "lacking": res["lacking"],
                "decision": "D-t6-window",
            }
            lines.append(schema.point(schema.AIR_PLANT, tags, w, fields))
            computed.append(
                ("air", "plant", w.kind, w.start.value, w.label, min(covs), st, now, None)
            )
        lines += self._t6_points(w, t6 or {}, computed, now)
        return lines

    def _plant_points(self, w: win.Window, p: dict | None, computed: list, now: int) -> list:
        """The plant indicators of Table 5, Table A.1 and CO2 of ``w`` (``rollups.plant_finish``),
        one point each (``schema.PLANT_INDICATORS``)."""
        if not (self.p_counters or self.p_events):
            return []
        results = rollups.plant_finish(
            w,
            p,
            self.p_counters,
            self.p_events,
            factors=self.factors,
            min_coverage=self.m.min_coverage,
            made_on_site=self.m.made_on_site,
        )
        lines = []
        for r in results:
            measurement, fields = schema.plant_fields(r)
            tags = {"plant": self.plant_id, "indicator": r.name, "window": w.kind}
            lines.append(schema.point(measurement, tags, w, fields))
            m = r.measured
            rollup = schema.ROLLUP_OF[measurement]
            computed.append(
                (rollup, r.name, w.kind, w.start.value, w.label, m.coverage, m.status, now, None)
            )
        return lines

    def _t6_hours(self, hours: list[win.Window], readings, partials: list) -> dict:
        """Table 6 water and noise partials of a chunk of hours (``rollups.water_hours``,
        ``noise_hours``), added to ``partials``: {"water": {outfall/pollutant: parts},
        "noise": {point: parts}}."""
        out: dict[str, dict] = {"water": {}, "noise": {}}
        for oid, pol, _limit in self.water_items:
            out["water"][f"{oid}/{pol}"] = rollups.water_hours(readings, hours, oid, pol, self.tz)
        bands = noise_fns.bands_for(self.cfg.plant.residential_within_1200m)
        for pt in self.noise_points:
            out["noise"][pt] = rollups.noise_hours(
                readings, hours, pt, self.cfg.boundary_noise, bands, self.tz,
                min_valid_minutes=self.m.noise_min_valid_minutes,
            )  # fmt: skip
        for r, d in out.items():
            for k, parts in d.items():
                partials += [
                    (r, k, "hour", h.start.value, p) for h, p in zip(hours, parts, strict=True)
                ]
        return out

    def _t6_points(self, w: win.Window, t6: dict, computed: list, now: int) -> list[str]:
        """Table 6 water (per outfall's pollutant) and noise (per boundary point) of ``w``, and
        the plant's worst of each with the lowest coverage among them (decisions
        D-t6-water-window, D-t6-noise-window; the water's only for a day and longer, the
        period of its daily means)."""
        m, lines = self.m, []
        tags = {"plant": self.plant_id, "window": w.kind}
        water, noise = [], []
        for oid, pol, limit in self.water_items:
            res = rollups.water_finish(
                w, t6.get("water", {}).get(f"{oid}/{pol}"), limit, rule=m.table6_rule,
                min_valid_samples=m.water_min_valid_samples, min_coverage=m.min_coverage,
            )  # fmt: skip
            item = {**tags, "outfall": oid, "pollutant": pol}
            lines.append(
                schema.point(schema.WATER_OUTFALL, item, w, schema.water_fields(res, limit))
            )
            water.append((f"{oid}/{pol}", res))
        for pt in self.noise_points:
            p = t6.get("noise", {}).get(pt)
            res = rollups.noise_finish(
                w, p, rule=m.table6_rule, min_coverage=m.min_coverage,
                min_valid_minutes=m.noise_min_valid_minutes,
            )  # fmt: skip
            fields = schema.noise_fields(res)
            if w.kind == "hour" and p is not None:
                fields.update(
                    leq_dba=p["leq_dba"], limit_dba=p["limit_dba"], period=p["period"],
                    valid_minutes=p["valid_min"], status=p["status"],
                    lacking=p["lacking"] or res["lacking"],
                )  # fmt: skip
                res = {**res, "status": p["status"]}
            lines.append(schema.point(schema.NOISE_POINT, {**tags, "point": pt}, w, fields))
            noise.append((pt, res))
        plants = (
            ("water", schema.WATER_PLANT, "multiple_of_d", "D-t6-water-window", water),
            ("noise", schema.NOISE_PLANT, "multiple_of_e", "D-t6-noise-window", noise),
        )
        for rollup, measurement, field, decision, items in plants:
            for k, res in items:
                computed.append(
                    (rollup, k, w.kind, w.start.value, w.label, res["coverage"], res["status"],
                     now, None)
                )  # fmt: skip
            if not items or (rollup == "water" and w.kind in ("hour", "shift")):
                continue
            cov = min(res["coverage"] for _k, res in items)
            valued = [(k, res) for k, res in items if res["value"] is not None]
            lack = [f"{k}: {res['status']}" for k, res in items if res["value"] is None]
            if valued:
                which, res = max(valued, key=lambda x: x[1]["value"])  # the first of equals
                periods = res["valid_days"] if rollup == "water" else res["valid_hours"]
                st = judge(periods, cov, m.min_coverage)
                lack = [*res["lacking"], *lack]
            else:
                which = None
                bad = any(res["status"] == "bad_input" for _k, res in items)
                st = "bad_input" if bad else "no_data"
            fields = {field: res["value"] if valued else None, "worst": which, "coverage": cov,
                      "status": st, "lacking": lack, "decision": decision}  # fmt: skip
            lines.append(schema.point(measurement, tags, w, fields))
            computed.append((rollup, "plant", w.kind, w.start.value, w.label, cov, st, now, None))
        return lines

    # ---- composing -----------------------------------------------------------------------------

    def compose(self, *, on_window=None) -> int:
        """Compose every dirty window, finest kind first (months before years). The windows
        made of hours (hours, shifts, days, months) go a local calendar month at a time, finest
        kind first within it: each block reads and decodes its hours' partials once, and its
        points, computed rows and cleaned dirty rows commit together. Years and trailing 12
        months follow, from the months' partials. A block's points are written while the next
        block is composed, and its rows commit once they are written (``_Writes``)."""
        points = 0
        self._c1_table = _c1_table()
        with _Writes(self, on_window) as writes:
            for block in self._blocks():
                lines, computed = [], []
                now = time.time_ns()
                self._c1_table = _c1_table()
                a = min(w.start.value for w in block)
                b = max(w.end.value for w in block)
                loaded = {r: self.state.partials_by_start(r, "hour", a, b) for r in ROLLUPS}
                for w in block:
                    lines += self._compose_one(w, computed, now, loaded=loaded)
                    self.progress.windows_done += 1
                points += writes.flush()
                if self.stop.is_set():
                    return points
                self.state.set_computed(computed)
                for kind in FROM_HOURS:
                    self.state.clean(kind, [w.start.value for w in block if w.kind == kind])
                writes.submit(lines)
            for kind in FROM_MONTHS:
                # The months' partials these windows read are put: the last block's are still
                # uncommitted until its points are written, which the same connection sees.
                starts = self.state.dirty(kind)
                for i in range(0, len(starts), 200):
                    batch = starts[i : i + 200]
                    lines, computed = [], []
                    now = time.time_ns()
                    found = self.windows_at(kind, batch)
                    ws = [found.get(start) or self.window_at(kind, start) for start in batch]
                    # The batch's month partials read and decoded once: a per-minute run
                    # composes a year and twelve trailing 12 months, which would otherwise
                    # decode each of the last months again for every window holding it.
                    a = min(w.start.value for w in ws)
                    b = max(w.end.value for w in ws)
                    loaded = {r: self.state.partials_by_start(r, "month", a, b) for r in ROLLUPS}
                    for w in ws:
                        lines += self._compose_one(w, computed, now, loaded=loaded)
                        self.progress.windows_done += 1
                    points += writes.flush()
                    if self.stop.is_set():
                        return points
                    self.state.set_computed(computed)
                    self.state.clean(kind, batch)
                    writes.submit(lines)
            points += writes.flush()
        return points

    def _blocks(self) -> list[list[win.Window]]:
        """The dirty hours, shifts, days and months in blocks of the local month holding each
        window's start, in time order; within a block finest kind first, then by start."""
        windows: list[win.Window] = []
        for kind in FROM_HOURS:
            starts = self.state.dirty(kind)
            found = self.windows_at(kind, starts)
            windows += [found.get(s) or self.window_at(kind, s) for s in starts]
        if not windows:
            return []
        months = win.windows_covering(
            "month",
            min(w.start for w in windows),
            max(w.start for w in windows) + pd.Timedelta(hours=1),
            self.tz,
        )
        month_starts = [m.start.value for m in months]
        blocks: dict[int, list[win.Window]] = {}
        for w in windows:
            i = bisect.bisect_right(month_starts, w.start.value) - 1
            blocks.setdefault(i, []).append(w)
        rank = {k: i for i, k in enumerate(FROM_HOURS)}
        return [
            sorted(blocks[i], key=lambda w: (rank[w.kind], w.start.value)) for i in sorted(blocks)
        ]

    def _compose_one(
        self, w: win.Window, computed: list, now: int, *, loaded: dict | None = None
    ) -> list[str]:
        below = "hour" if w.kind in FROM_HOURS else "month"
        a, b = w.start.value, w.end.value
        # ``loaded``: the partials of the kind below over a range holding the window's.
        if loaded is not None:
            c1_parts = slice_partials(loaded["c1"], a, b)
            air_parts = slice_partials(loaded["air"], a, b)
            plant_parts = slice_partials(loaded["plant"], a, b).get("plant")
        else:
            c1_parts = self.state.partials("c1", below, a, b)
            air_parts = self.state.partials("air", below, a, b)
            plant_parts = self.state.partials("plant", below, a, b).get("plant")
        c1 = {k: rollups.c1_combine(v) for k, v in c1_parts.items()}
        plant = rollups.plant_combine(plant_parts) if plant_parts else None
        air = {}
        for k, v in air_parts.items():
            sid, pol = k.split("/", 1)
            air[(sid, pol)] = v[0] if w.kind == "hour" else rollups.air_combine(v)
        t6 = {}
        for r, combine in (("water", rollups.water_combine), ("noise", rollups.noise_combine)):
            if loaded is not None:
                parts = slice_partials(loaded[r], a, b)
            else:
                parts = self.state.partials(r, below, a, b)
            t6[r] = {k: v[0] if w.kind == "hour" else combine(v) for k, v in parts.items()}
            if w.kind == "month":
                self.state.set_partials([(r, k, "month", a, v) for k, v in t6[r].items()])
        if w.kind == "month":
            rows = [("c1", k, "month", a, p) for k, p in c1.items()]
            rows += [("air", f"{s}/{p}", "month", a, v) for (s, p), v in air.items()]
            if plant is not None:
                rows.append(("plant", "plant", "month", a, plant))
            self.state.set_partials(rows)
        return self._window_points(w, c1, air, computed, now, plant=plant, t6=t6)

    # ---- the runs ------------------------------------------------------------------------------

    def horizon_ns(self, now_ns: int) -> int:
        return _floor_h(now_ns - self.m.history_days * 24 * NS_PER_H)

    def run_once(self, now: float | None = None) -> dict:
        """One scheduled run: the recent lookback, on every ``SWEEP_EVERY``-th run one slice of
        the sweep, then compose."""
        t0 = time.perf_counter()
        now_ns = int((self.clock() if now is None else now) * 1e9)
        end = _floor_h(now_ns) + NS_PER_H
        look = end - self.m.lookback_h * NS_PER_H
        self._ambient_ahead.clear()
        sweep = None  # (start, end, InfluxDB's fingerprints of the slice, being read)
        turn = self.state.get("sweep_turn", 0)
        if turn == 0:
            cursor = self.state.get("sweep_cursor", look)
            if cursor <= self.horizon_ns(now_ns) or cursor > look:
                cursor = look
            s0 = max(self.horizon_ns(now_ns), cursor - self.m.sweep_h * NS_PER_H)
            if s0 < cursor and cursor - s0 > FP_CHUNK_H * NS_PER_H:
                sweep = (s0, cursor, None)  # a slice of more than one request: read in turn
            elif s0 < cursor:
                # InfluxDB scans the slice while this thread computes the recent hours: the
                # slice's readings are old, so they rarely change anything, and its dirty
                # hours (if any) are computed and composed after the recent ones.
                sweep = (s0, cursor, self._ahead.submit(*self._fp_call(s0, cursor)))
            self.state.put("sweep_cursor", s0)
        self.state.put("sweep_turn", (turn + 1) % SWEEP_EVERY)
        self.state.commit()
        dirty, rows = self.detect(look, end)
        n = self.compute_hours(dirty, rows)
        n += self.compose()
        d2: set[int] = set()
        if sweep is not None:
            s0, s1, read = sweep
            d2, r2 = self.detect(s0, s1, read=read)
            if d2 or r2:
                n += self.compute_hours(d2, r2)
                n += self.compose()
        self.state.put(
            "last_run",
            {
                "at_ns": now_ns,
                "dirty_hours": len(dirty | d2),
                "points": n,
                "seconds": time.perf_counter() - t0,
            },
        )
        self.state.commit()
        return {"dirty_hours": len(dirty | d2), "points": n, "seconds": time.perf_counter() - t0}

    def reconcile(self, now: float | None = None, *, on_chunk=None) -> dict:
        """The whole history once (at start): every hour whose fingerprint is not the state's."""
        now_ns = int((self.clock() if now is None else now) * 1e9)
        end = _floor_h(now_ns) + NS_PER_H
        self._air.clear()
        self._ambient_ahead.clear()
        self._ambient_months.clear()
        dirty, rows = self.detect(self.horizon_ns(now_ns), end)
        self.progress.hours_total = len(dirty)
        n = self.compute_hours(dirty, rows, on_chunk=on_chunk)
        n += self.compose(on_window=on_chunk)
        return {"dirty_hours": len(dirty), "points": n}

    def backfill(self, start_ns: int, end_ns: int, *, on_chunk=None) -> dict:
        """Recompute every hour of ``[start, end)`` that has readings (as a clean reconcile
        would), whatever the fingerprints say, then compose the windows above.

        The range is detected a span of ``BACKFILL_SPAN_H`` hours at a time, and InfluxDB
        computes the next span's fingerprints while this one's hours are computed: the hours,
        their chunks and the rows committed with them are those one ``detect`` of the whole
        range gives (it also compares span by span), and every chunk's readings are still
        read after its fingerprints."""
        a, b = _floor_h(start_ns), _floor_h(end_ns - 1) + NS_PER_H
        self._air.clear()
        self._ambient_ahead.clear()
        self._ambient_months.clear()
        spans = [
            (s, min(b, s + BACKFILL_SPAN_H * NS_PER_H))
            for s in range(a, b, BACKFILL_SPAN_H * NS_PER_H)
        ]
        self.progress.hours_total = (b - a) // NS_PER_H  # until the spans are detected
        self.progress.started = time.monotonic()
        seen: set[int] = set()

        def chunks(ahead: ThreadPoolExecutor):
            buckets: list[int] = []  # dirty, in no chunk yet: the last run may grow
            rows: list = []  # fingerprint rows not yet given to a chunk, by bucket
            read = ahead.submit(*self._fp_call(*spans[0])) if spans else None
            for i, (s0, s1) in enumerate(spans):
                this, read = read, None
                this.result()  # InfluxDB has answered before the next span is asked for
                if i + 1 < len(spans):
                    read = ahead.submit(*self._fp_call(*spans[i + 1]))
                dirty, found = self.detect(s0, s1, force=True, read=this)
                # A span's first hour may close the hour before it (a counter's reading on
                # the hour), which then joins the run the span before ended with: the runs
                # are those of one detection of the whole range.
                dirty = {d for d in dirty if a <= d < b and d not in seen}
                seen.update(dirty)
                buckets = sorted({*buckets, *dirty})
                rows = sorted(rows + found, key=lambda r: r[2])
                runs = _runs(buckets)
                last = i + 1 == len(spans)
                buckets = [] if last or not runs else runs.pop()
                done = self._chunks(runs, rows)
                if last:
                    self.progress.hours_total = len(seen)
                    if rows:
                        done.append((None, rows))
                self._read_ambient_ahead([h for h, _ in done if h])
                yield from done

        # A process starts in about a second: worth it for more than one span of readings.
        self.read_in_process = len(spans) > 1
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gf-metrics-fp") as ahead:
                n = self._compute_chunks(chunks(ahead), on_chunk=on_chunk)
        finally:
            self.read_in_process, self._pool = False, None
        self.progress.hours_total = len(seen)
        n += self.compose(on_window=on_chunk)
        return {"hours": len(seen), "points": n, "readings": self.progress.readings}

    def close(self) -> None:
        self._ahead.shutdown(wait=True, cancel_futures=True)
        self._ambient_ahead.clear()
        self.state.close()
