"""The backfill's overlapped path (issue 7, benchmark): spans detected while the hours before
are computed, the next chunk read and the last chunk's points written meanwhile. It must write
exactly the points of the plain path (one detection of the whole range, chunks in turn), a
chunk whose write fails must stay dirty, and its reader process must not outlive it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from greenfoundry.errors import StoreError
from greenfoundry.metrics import engine as engine_mod
from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from greenfoundry.store import RetryableWriteError
from tests.metrics.engine_helpers import all_points, metrics_config, ns, store, write

H = 3600 * 10**9
T0 = ns("2032-05-03T00:00")  # a range no other test writes to
HOURS = 30
GAP_H = 9  # no reading in [T0 + 9 h, T0 + 10 h): the span boundary below (10 h) closes it


def _plant(st, pid: str) -> None:
    """30 hours of two furnaces (meters every 5 min from T0 + 1 min), a tap each half hour,
    stack dust every minute; nothing at all in hour 9, and a meter reading exactly on hour 10.
    With spans of 10 hours, hour 9 has no reading of its own: only span 2's first reading
    (on the hour) makes it dirty, in the span after the one holding it."""
    gap = (T0 + GAP_H * H, T0 + (GAP_H + 1) * H)

    def keep(t: int) -> bool:
        return not gap[0] <= t < gap[1]

    for dev, kwh in (("if1", 75.0), ("if2", 60.0)):
        meter = [T0 + 60 * 10**9 + i * 300 * 10**9 for i in range(HOURS * 12)]
        meter = [t for t in meter if keep(t)] + [gap[1]]
        write(
            st,
            pid,
            "furnace_energy_kwh",
            {"device": dev},
            [(t, 1e5 + kwh * (t - T0) / 3e11) for t in sorted(meter)],
        )
        taps = [t for t in (T0 + (k * 1800 + 900) * 10**9 for k in range(HOURS * 2)) if keep(t)]
        write(
            st, pid, "tap_iron_t", {"device": dev}, [(t, 9.0 + k % 3) for k, t in enumerate(taps)]
        )
        write(
            st,
            pid,
            "tap_temp_c",
            {"device": dev},
            [(t, 1490.0 + k % 7) for k, t in enumerate(taps)],
        )
    dust = [t for t in (T0 + i * 60 * 10**9 for i in range(HOURS * 60)) if keep(t)]
    write(
        st,
        pid,
        "stack_conc_mg_m3",
        {"device": "melt-stack", "pollutant": "particulate"},
        [(t, 8.0 + (k % 50) / 10) for k, t in enumerate(dust)],
    )  # fmt: skip


@pytest.fixture(scope="module")
def plain(tmp_path_factory, stack) -> dict:
    """The plain path's points: with the default chunk and span (a week, four weeks) the 30
    hours are one detection and one chunk, read, computed and written in turn."""
    st = store(stack)
    pid = "m-bf-plain"
    _plant(st, pid)
    cfg = metrics_config(tmp_path_factory.mktemp("plain"), stack, pid, history_days=3)
    engine = Engine(cfg, store=st)
    engine.backfill(T0, T0 + HOURS * H)
    engine.close()
    assert engine_mod.CHUNK_H >= HOURS and engine_mod.BACKFILL_SPAN_H >= HOURS
    return all_points(st, pid)


def test_the_overlapped_backfill_writes_the_points_of_the_plain_path(
    tmp_path, stack, monkeypatch, plain
):
    st = store(stack)
    clean = plain
    pid = "m-bf-overlap"
    _plant(st, pid)
    # Chunks of 5 hours and spans of 2 chunks: 30 hours make 3 spans and 6 chunks, each read,
    # computed and written while its neighbours are. Hour 9 is found by the second span and
    # joins the run the first one ended with (hours 5-9), as one detection of the range has
    # it: a chunk's read ends 901 s after it, so where a chunk ends decides whether hour 8
    # sees the meter's gap to 10:00.
    monkeypatch.setattr(engine_mod, "CHUNK_H", 5)
    monkeypatch.setattr(engine_mod, "BACKFILL_SPAN_H", 10)
    engine = Engine(metrics_config(tmp_path, stack, pid, history_days=3), store=st)
    chunks = []
    result = engine.backfill(T0, T0 + HOURS * H, on_chunk=lambda: chunks.append(1))
    engine.close()
    assert result["hours"] == HOURS  # hour 9 too, once
    assert len(chunks) >= 6
    got = all_points(st, pid)
    # Hour 9 has no reading of its own; the meter reading on hour 10 closes it. By hand: the
    # last if1 reading before the gap is at 8:56 (1 + 5 × 107 minutes), so the increment to
    # 10:00 is 64 minutes at 75 kWh per 5 minutes, 960 kWh, counted in hour 9.
    gap_hour = got[(schema.C1_FURNACE, "if1", "hour", T0 + GAP_H * H)]
    assert gap_hour["energy_kwh"] == pytest.approx(64 * 15.0)
    assert len(clean) > HOURS * 5
    assert got == clean  # point for point, field for field


def test_a_failed_write_leaves_its_chunk_dirty_and_a_rerun_completes_it(
    tmp_path, stack, monkeypatch, plain
):
    st = store(stack)
    clean = plain
    pid = "m-bf-fail"
    _plant(st, pid)
    monkeypatch.setattr(engine_mod, "CHUNK_H", 5)
    monkeypatch.setattr(engine_mod, "BACKFILL_SPAN_H", 10)
    cfg = metrics_config(tmp_path, stack, pid, history_days=3)
    engine = Engine(cfg, store=st)
    real = st.write_lines
    calls = []

    def failing(lines, **kw):
        # InfluxDB's own refusal when it is away (the store raises it for a refused
        # connection): the third chunk's points never arrive.
        calls.append(1)
        if len(calls) == 3:
            raise RetryableWriteError("InfluxDB at test unreachable: ConnectionRefused")
        return real(lines, **kw)

    monkeypatch.setattr(st, "write_lines", failing)
    with pytest.raises(StoreError):
        engine.backfill(T0, T0 + HOURS * H)
    # Two chunks committed (hours 0-9, their fingerprints with them); the third's hours have
    # no fingerprint, so a run finds them dirty; a backfill computes them again anyway.
    assert len(engine.state.fingerprints(T0 + 10 * H, T0 + HOURS * H)) == 0
    assert len(engine.state.fingerprints(T0, T0 + 10 * H)) > 0
    monkeypatch.setattr(st, "write_lines", real)
    engine.backfill(T0, T0 + HOURS * H)
    engine.close()
    assert all_points(st, pid) == clean


def test_the_reader_process_ends_when_its_parent_is_killed():
    """A backfill's reader process (``source.reader_init``) outlives no SIGKILL of the backfill:
    nothing else would stop it, and it would hold its database connection for ever."""
    script = (
        "import concurrent.futures as cf, multiprocessing, os, sys, time\n"
        "from greenfoundry.metrics import source\n"
        "from greenfoundry.store import StoreSettings\n"
        "if __name__ == '__main__':\n"
        "    pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn'),\n"
        "        initializer=source.reader_init,\n"
        "        initargs=(StoreSettings(url='http://127.0.0.1:9', database='none'),))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker):
            assert time.monotonic() < deadline, f"reader process {worker} outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has ended: only its exit status is left)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_reader_process_watches_the_parent_it_was_given():
    """The watch takes its parent's pid from the parent (``reader_init(settings, parent)``): one
    read in the reader itself would already be the new parent's if the backfill was killed
    before the reader started, and the watch would never fire. A reader given a pid that is
    not its parent's (its parent is then gone, as far as it knows) ends itself."""
    script = (
        "import os, time\n"
        "from greenfoundry.metrics import source\n"
        "from greenfoundry.store import StoreSettings\n"
        "source.reader_init(StoreSettings(url='http://127.0.0.1:9', database='none'),\n"
        "                   os.getppid() + 1 if os.getppid() + 1 != os.getpid() else 1)\n"
        "time.sleep(60)\n"
        "print('outlived', flush=True)\n"
    )
    reader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        out, _ = reader.communicate(timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0 and "outlived" not in out
