"""grade.rolling: the day's grade stored in InfluxDB, its history, idempotent recomputes and
run_due's days. Expected points by hand from the standard's rows (points × Li floor)."""

from __future__ import annotations

import datetime as dt

from greenfoundry.grade import compute, rolling
from greenfoundry.metrics.source import store_for_metrics
from greenfoundry.store import InfluxStore, where
from tests.grade import declaration, local_noon, plant, store, write_air, write_c1, write_evidence

DAY = dt.timedelta(days=1)
C1 = "energy.liquid_iron.energy_per_t"
AIR = "emissions.air.multiple_of_c"
SYSTEMS = "mgmt.systems.four_systems"
SALES = "scale.sales.annual_sales"


def _reader(cfg):
    return InfluxStore.from_config(cfg.influxdb, role="reader")


def _rows(stored) -> dict:
    return {r["row"]: r for r in stored.rows}


def test_due_days_follow_the_newest_stored_grade():
    today = dt.date(2026, 3, 10)
    assert rolling.due_days(None, today) == [today]  # the first run grades today
    assert rolling.due_days(today, today) == [today]  # today again, for late data
    assert rolling.due_days(today - 3 * DAY, today) == [today - 2 * DAY, today - DAY, today]
    far = rolling.due_days(today - 90 * DAY, today)  # a service down for 90 days
    assert len(far) == 31 and far[0] == today - 30 * DAY and far[-1] == today
    assert rolling.due_days(today + 5 * DAY, today) == [today]  # a clock set back


def test_an_expiry_between_two_days_drops_f_by_that_rows_points(tmp_path, stack):
    cfg = plant(tmp_path, stack, "grade-history")
    st = store(stack)
    d1, d2 = dt.date(2026, 3, 10), dt.date(2026, 3, 11)
    write_c1(st, cfg, d1, 150.0)  # both days score March 2025 – February 2026
    write_air(st, cfg, d1, 0.5)
    # The four systems hold until d1 inclusive; the sales declaration all year.
    write_evidence(
        cfg,
        {
            SYSTEMS: declaration("effective_significant", d1),
            SALES: declaration(160000, dt.date(2026, 12, 31)),
        },
    )
    first = rolling.run_due(cfg, local_noon(cfg, d1))
    assert first.days == (d1,) and first.failed == ()  # nothing stored yet: today only
    second = rolling.run_due(cfg, local_noon(cfg, d2))
    assert second.days == (d2,)
    reader = _reader(cfg)
    one, two = rolling.read_grade(reader, cfg, d1), rolling.read_grade(reader, cfg, d2)
    # By hand: C.1 tier 1, 30 × 0.90 = 27; Table 6 tier 1, 120 × 0.90 = 108; sales 160 000 万元
    # ductile tier 1 (≥ 150 000), 30 × 0.90 = 27; the four systems tier 1, 30 × 0.90 = 27.
    assert one.grade["f"] == 189.0 and one.grade["f_exact"] == "189"
    assert two.grade["f"] == 162.0  # the four systems expired: exactly its 27 points less
    assert one.grade["f"] - two.grade["f"] == _rows(one)[SYSTEMS]["points"] == 27.0
    assert one.grade["expiring"] == [
        {"row": SYSTEMS, "valid_until": "2026-03-10", "days_left": 1, "points": 27.0}
    ]
    assert _rows(one)[SYSTEMS]["expiring"] is True and _rows(one)[SYSTEMS]["expires_in_days"] == 1
    assert _rows(two)[SYSTEMS]["status"] == "evidence_expired"
    assert "renew the declaration" in _rows(two)[SYSTEMS]["missing"]
    assert two.grade["expiring"] == [] and two.grade["expiring_rows"] == 0
    assert (two.grade["window_start"], two.grade["window_end"]) == ("2025-03-01", "2026-03-01")
    # Points per first-level indicator: energy 27 of 240, emissions 108, mgmt 27 → 0 on d2.
    ind = {i["indicator"]: i for i in one.indicators}
    assert one.indicators[0]["indicator"] == "scale"  # table order
    assert (ind["energy"]["points"], ind["emissions"]["points"], ind["mgmt"]["points"]) == (
        27.0,
        108.0,
        27.0,
    )
    assert {i["indicator"]: i["points"] for i in two.indicators}["mgmt"] == 0.0
    # Rows without data say what is missing; the gap plan is stored as JSON.
    missing = _rows(two)["energy.pipe.kgce_per_t"]
    assert (
        missing["status"] == "no_data"
        and "no rollup of 2025-03-01 to 2026-03-01" in (missing["missing"])
    )
    assert two.grade["gap_plan"]["next_grade"]["level"] == 3  # not rated: the next is level 3
    assert two.grade["points_to_next"] == 600 - 162 and "level" not in two.grade


def test_recomputing_a_day_writes_the_same_points_and_drops_what_is_gone(tmp_path, stack):
    cfg = plant(tmp_path, stack, "grade-idempotent")
    st = store(stack)
    day = dt.date(2026, 3, 10)
    write_c1(st, cfg, day, 150.0)
    write_evidence(cfg, {SALES: declaration(160000, dt.date(2026, 12, 31))})
    metrics = store_for_metrics(cfg)
    rolling.write_grade(metrics, cfg, compute.compute(cfg, day), computed_at_ns=1)
    before = rolling.read_grade(_reader(cfg), cfg, day)
    rolling.write_grade(metrics, cfg, compute.compute(cfg, day), computed_at_ns=1)
    after = rolling.read_grade(_reader(cfg), cfg, day)
    assert after == before
    span = rolling._day_span(cfg, day)
    df = st.query(
        f"SELECT COUNT(status) FROM {rolling.ROW} {where({'plant': cfg.plant.id}, **span)}"
    )
    assert int(df.iloc[0, -1]) == 68  # one point per row of the standard, not two
    # The sales declaration withdrawn: the recompute leaves no stale value in the row's point.
    assert _rows(before)[SALES]["value"] == 160000.0
    write_evidence(cfg, {})
    rolling.write_grade(metrics, cfg, compute.compute(cfg, day))
    gone = _rows(rolling.read_grade(_reader(cfg), cfg, day))[SALES]
    assert (
        gone["status"] == "no_data" and "value" not in gone and "evidence_valid_until" not in gone
    )
    assert gone["missing"] == "not declared in evidence.yaml"


def test_without_a_delete_the_reader_keeps_only_the_fields_of_the_last_write(tmp_path, stack):
    # What happens on an InfluxDB that takes no DELETE through /query (2.x, 3): the new points
    # are written over the old ones, which InfluxDB merges field by field.
    cfg = plant(tmp_path, stack, "grade-no-delete")
    st = store(stack)
    day = dt.date(2026, 3, 10)
    write_evidence(cfg, {SALES: declaration(160000, dt.date(2026, 12, 31))})
    metrics = store_for_metrics(cfg)
    rolling.write_grade(metrics, cfg, compute.compute(cfg, day))
    write_evidence(cfg, {})
    metrics.write_lines(
        rolling.grade_lines(compute.compute(cfg, day), cfg.plant.timezone, computed_at_ns=2)
    )
    span = rolling._day_span(cfg, day)
    raw = st.query(
        f"SELECT * FROM {rolling.ROW} {where({'plant': cfg.plant.id, 'row': SALES}, **span)}"
    ).iloc[0]
    assert raw["value"] == 160000.0 and raw["status"] == "no_data"  # the merge kept the value
    row = _rows(rolling.read_grade(_reader(cfg), cfg, day))[SALES]
    assert row["status"] == "no_data" and "value" not in row and "tier" not in row
    assert rolling.read_grade(_reader(cfg), cfg, day).grade["computed_at_ns"] == 2


def test_run_due_fills_the_days_since_the_newest_grade_and_counts_a_day_it_cannot_grade(
    tmp_path, stack
):
    cfg = plant(tmp_path, stack, "grade-due")
    write_evidence(cfg, {})
    # The example plant's facts are declared on 2026-01-12: a day before that cannot be graded.
    metrics = store_for_metrics(cfg)
    rolling.write_grade(metrics, cfg, compute.compute(cfg, dt.date(2026, 1, 12)))
    done = rolling.run_due(cfg, local_noon(cfg, dt.date(2026, 1, 15)))
    assert done.days == (dt.date(2026, 1, 13), dt.date(2026, 1, 14), dt.date(2026, 1, 15))
    assert rolling.newest_stored(_reader(cfg), cfg, dt.date(2026, 1, 20)) == dt.date(2026, 1, 15)
    (tmp_path / "early").mkdir()  # its own folder: its own evidence.yaml
    early = plant(tmp_path / "early", stack, "grade-due-early")
    write_evidence(early, {})
    failed = rolling.run_due(early, local_noon(early, dt.date(2026, 1, 11)))
    assert failed.days == () and len(failed.failed) == 1
    day, why = failed.failed[0]
    assert day == dt.date(2026, 1, 11) and "declared on 2026-01-12" in why
    assert rolling.read_grade(_reader(early), early, day) is None


def test_run_due_with_influxdb_unreachable_reports_the_day_and_does_not_raise(tmp_path, stack):
    import dataclasses
    import socket

    cfg = plant(tmp_path, stack, "grade-unreachable")
    with socket.socket() as s:  # a port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    influx = dataclasses.replace(cfg.influxdb, url=f"http://127.0.0.1:{port}")
    cfg = dataclasses.replace(cfg, influxdb=influx)
    day = dt.date(2026, 3, 10)
    done = rolling.run_due(cfg, local_noon(cfg, day))
    assert done.days == () and len(done.failed) == 1
    assert done.failed[0][0] == day and "unreachable" in done.failed[0][1]


class _StopAfter:
    """A stop event that reads as set from its n-th look on: the service stopping mid-catch-up."""

    def __init__(self, n: int):
        self.looks, self.n = 0, n

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks > self.n


def test_run_due_stops_after_the_day_in_progress_and_the_next_call_goes_on(tmp_path, stack):
    cfg = plant(tmp_path, stack, "grade-due-stop")
    write_evidence(cfg, {})
    metrics = store_for_metrics(cfg)
    rolling.write_grade(metrics, cfg, compute.compute(cfg, dt.date(2026, 1, 12)))
    # Three days are due (13th to 15th); the service stops after the first one's look.
    done = rolling.run_due(cfg, local_noon(cfg, dt.date(2026, 1, 15)), stop=_StopAfter(1))
    assert done.days == (dt.date(2026, 1, 13),) and done.failed == ()
    # The next call (no stop) grades the days that were left.
    done = rolling.run_due(cfg, local_noon(cfg, dt.date(2026, 1, 15)))
    assert done.days == (dt.date(2026, 1, 14), dt.date(2026, 1, 15))
