"""Late data older than the lookback is found by the sweep on its run, and the standard's file
is read again when it changes (the engine keeps the parsed standard between evaluations)."""

from __future__ import annotations

import os
import shutil

from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import SWEEP_EVERY, Engine
from greenfoundry.scoring import standard
from tests.metrics.engine_helpers import all_points, metrics_config, ns, store, write

NOW = ns("2025-06-01T12:30") / 1e9


def test_the_sweep_finds_old_late_data_on_the_run_its_slice_is_checked(tmp_path, stack):
    pid = "m-sweep-latency"
    cfg = metrics_config(tmp_path, stack, pid, history_days=3, lookback_h=2, sweep_h=24)
    st = store(stack)
    write(st, pid, "tap_iron_t", {"device": "if1"}, [("2025-05-31T08:10", 6.0)])
    engine = Engine(cfg, store=st)
    try:
        engine.reconcile(now=NOW)
        late_hour = ns("2025-05-30T20:00")
        key = (schema.C1_FURNACE, "if1", "hour", late_hour)
        assert key not in all_points(st, pid)
        write(st, pid, "tap_iron_t", {"device": "if1"}, [("2025-05-30T20:30", 5.0)])
        # By hand: NOW 12:30 ends the run at 13:00, so the lookback is [11:00, 13:00) of
        # 2025-06-01 and the sweep walks back from 11:00 in slices of 24 h, one slice on every
        # fourth run (SWEEP_EVERY), the first run after the reconcile included: run 0 checks
        # [05-31 11:00, 06-01 11:00), run 4 checks [05-30 11:00, 05-31 11:00), which holds the
        # late tap at 05-30 20:30. Runs 1-3 check the lookback only.
        assert SWEEP_EVERY == 4
        for run in range(4):
            assert engine.run_once(now=NOW)["dirty_hours"] == 0, run
            assert key not in all_points(st, pid)
        assert engine.run_once(now=NOW)["dirty_hours"] >= 1
        point = all_points(st, pid)[key]
        assert point["iron_t"] == 5.0 and point["taps"] == 1
    finally:
        engine.close()


def test_a_changed_standard_file_is_read_again(tmp_path):
    path = tmp_path / "standard.yaml"
    shutil.copy(standard.standard_path(None), path)
    first = standard.load_standard(path)
    assert standard.load_standard(path) is first  # unchanged: the parsed file is kept
    text = path.read_text(encoding="utf-8")
    old = "Green factory evaluation for the casting industry"
    assert old in text
    path.write_text(text.replace(old, "Changed title", 1), encoding="utf-8")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later time, whatever the fs
    second = standard.load_standard(path)
    assert second is not first and second.title_en.startswith("Changed title")


def test_the_shipped_standard_is_kept_until_its_file_changes():
    first = standard.load_standard()
    assert standard.load_standard() is first and standard.load_standard(None) is first
    shipped = standard.standard_path(None)
    st = os.stat(shipped)
    try:
        # Only the file's time changes (its text stays): the loader must look again.
        os.utime(shipped, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        again = standard.load_standard()
        assert again is not first and again.title_en == first.title_en
    finally:
        os.utime(shipped, ns=(st.st_atime_ns, st.st_mtime_ns))
