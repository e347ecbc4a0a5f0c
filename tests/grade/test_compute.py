"""grade.compute: which window a day scores, F from hand-written rollups and evidence, the
expiring flag, rows without data. Expected points are computed by hand from the standard's
rows (points in force × the Li floor of the tier met: 0.90 / 0.75 / 0.60, clause 5.2.2)."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from greenfoundry import plant as plant_config
from greenfoundry.errors import UsageError
from greenfoundry.grade import compute
from greenfoundry.scoring import scorer
from greenfoundry.scoring.evidence import parse_evidence
from greenfoundry.scoring.indicators import parse_indicators
from greenfoundry.scoring.standard import load_standard
from tests.grade import (
    declaration,
    plant,
    store,
    write_air,
    write_c1,
    write_evidence,
    write_output,
)
from tests.plant import REPO

AS_OF = dt.date(2026, 3, 10)
C1 = "energy.liquid_iron.energy_per_t"  # 30 points, Table C.1
AIR = "emissions.air.multiple_of_c"  # 120 points, Table 6
SYSTEMS = "mgmt.systems.four_systems"  # 30 points, Table 8
SALES = "scale.sales.annual_sales"  # 30 points, Table 2
INCIDENT = "ohs.major_accident.no_major_incident"  # 30 points, Table 7
OUTPUT = "scale.output.annual_output"  # 20 points, Table 2


# --------------------------------------------------------------------------- the window


@pytest.mark.parametrize(
    ("day", "tz", "start", "end"),
    [
        # Every day of March 2026 scores March 2025 – February 2026, the 1st included.
        (dt.date(2026, 3, 1), "Asia/Shanghai", "2025-03-01", "2026-03-01"),
        (dt.date(2026, 3, 31), "Asia/Shanghai", "2025-03-01", "2026-03-01"),
        # The last day of February still scores the twelve months before February.
        (dt.date(2026, 2, 28), "Asia/Shanghai", "2025-02-01", "2026-02-01"),
        # January scores the previous calendar year.
        (dt.date(2026, 1, 1), "Europe/Berlin", "2025-01-01", "2026-01-01"),
        # The day the clocks go forward in Berlin is an ordinary day of its month.
        (dt.date(2026, 3, 29), "Europe/Berlin", "2025-03-01", "2026-03-01"),
    ],
)
def test_a_day_scores_the_twelve_complete_months_before_its_month(day, tz, start, end):
    w = compute.window_for_day(day, tz)
    assert w.kind == "trailing_12m"
    assert (f"{w.local_start:%Y-%m-%d}", f"{w.end.tz_convert(tz):%Y-%m-%d}") == (start, end)


def test_day_start_is_the_plant_local_midnight_in_utc():
    # Asia/Shanghai is UTC+8 all year: 2026-03-10 00:00 local is 2026-03-09 16:00 UTC.
    t = compute.day_start(AS_OF, "Asia/Shanghai")
    assert t.isoformat() == "2026-03-09T16:00:00+00:00"


# --------------------------------------------------------------------------- expiring


def _demo():
    return plant_config.load(REPO / "config/plants/demo-dip/plant.yaml", resolve_secrets=False)


def _score(cfg, rows: dict, as_of: dt.date):
    evidence = parse_evidence({"version": 1, "plant": cfg.plant.id, "rows": rows}, "ev.yaml")
    empty = parse_indicators({"version": 1, "plant": cfg.plant.id, "rows": {}}, "ind.yaml")
    result = scorer.score(load_standard(), cfg, empty, evidence, scorer.Options(as_of=as_of))
    return result, evidence


def test_evidence_is_flagged_with_60_days_left_and_not_with_61():
    cfg = _demo()
    day = dt.timedelta(days=1)
    rows = {
        SYSTEMS: declaration("effective_significant", AS_OF + 60 * day),  # 61 days left
        SALES: declaration(120000, AS_OF + 59 * day),  # 60 days left
        INCIDENT: declaration(True, AS_OF),  # today is its last day: 1 day left
    }
    result, evidence = _score(cfg, rows, AS_OF)
    flagged = compute.expiring(result, evidence, AS_OF)
    # Points by hand: annual sales 120 000 万元 is ductile tier 2 (≥ 100 000): 30 × 0.75 = 22.5;
    # the incident row is yes/no, tier 1 when yes: 30 × 0.90 = 27. Nearest expiry first.
    assert flagged == (
        {"row": INCIDENT, "valid_until": "2026-03-10", "days_left": 1, "points": 27.0},
        {"row": SALES, "valid_until": "2026-05-08", "days_left": 60, "points": 22.5},
    )
    # The next day the incident declaration has expired: no longer "expiring", it scores 0.
    result, evidence = _score(cfg, rows, AS_OF + day)
    assert [e["row"] for e in compute.expiring(result, evidence, AS_OF + day)] == [
        SALES,
        SYSTEMS,
    ]
    assert result.row(INCIDENT).status == scorer.STATUS_EVIDENCE_EXPIRED


# --------------------------------------------------------------------------- against InfluxDB


def test_the_grade_of_a_day_from_hand_written_rollups(tmp_path, stack):
    cfg = plant(tmp_path, stack, "grade-c1-air")
    st = store(stack)
    # 150 kWh/t is below the induction-ductile row's tier-1 limit (< 200 kWh/t before notes
    # 1-4, whose corrections here are a few kWh/t): tier 1. 0.5 C is below 0.6 C: tier 1.
    write_c1(st, cfg, AS_OF, 150.0)
    write_air(st, cfg, AS_OF, 0.5)
    write_evidence(cfg, {SYSTEMS: declaration("effective_significant", dt.date(2026, 12, 31))})
    g = compute.compute(cfg, AS_OF)
    assert g.plant == "grade-c1-air" and g.as_of == AS_OF
    assert g.window == {"start": "2025-03-01", "end": "2026-03-01"}
    assert set(g.indicators["rows"]) == {C1, AIR}
    # By hand: C.1 30 × 0.90 + Table 6 120 × 0.90 + the four systems 30 × 0.90 = 162.
    assert g.result.f == Fraction(162)
    assert g.result.grade is None  # below 600: not rated (Table 9)
    assert {r.row_id for r in g.result.rows if r.status == scorer.STATUS_SCORED} == {
        C1,
        AIR,
        SYSTEMS,
    }
    # The same document and evidence through the scorer itself give the same F.
    again = scorer.score(
        load_standard(),
        cfg,
        parse_indicators(g.indicators, "doc"),
        compute.load_plant_evidence(cfg),
        scorer.Options(as_of=AS_OF),
    )
    assert again.f == g.result.f
    points = {grp.id: p for grp, p, _m in g.result.group_points()}
    assert points["energy"] == 27 and points["emissions"] == 108 and points["mgmt"] == 27
    assert g.expiring == ()  # 296 days left


def test_rows_without_usable_data_say_what_is_missing(tmp_path, stack):
    cfg = plant(tmp_path, stack, "grade-missing")
    st = store(stack)
    write_c1(st, cfg, AS_OF, 150.0, coverage=0.5)  # no Table 6 point at all
    write_evidence(cfg, {})
    g = compute.compute(cfg, AS_OF)
    c1, air = g.result.row(C1), g.result.row(AIR)
    assert c1.status == scorer.STATUS_LOW_COVERAGE and c1.would_be_tier == 1
    assert air.status == scorer.STATUS_NO_DATA and air.points == 0
    assert any(n.startswith(f"{AIR}: no rollup of window 2025-03/P12M") for n in g.notes)
    assert any(n.startswith(f"{C1}: low_coverage: furnace_energy_kwh of IF2") for n in g.notes)
    assert any(n.startswith(f"{OUTPUT}: no output rollup of the year 2025") for n in g.notes)
    assert g.result.f == 0


def test_the_three_year_row_takes_the_three_calendar_years_before_the_window_end(tmp_path, stack):
    cfg = plant(tmp_path, stack, "grade-three-years")
    st = store(stack)
    for year, output in ((2023, 20.0), (2024, 24.0), (2025, 29.8)):
        write_output(st, cfg, year, output)
    write_output(st, cfg, 2026, 99.0)  # the year of the day graded is not complete: not used
    write_evidence(cfg, {})
    g = compute.compute(cfg, AS_OF)
    row = g.indicators["rows"][OUTPUT]
    # (20 + 24 + 29.8) / 3 = 24.6 (10⁴ t a year), ductile tier 2 (≥ 20): 20 × 0.75 = 15.
    assert row["value"] == pytest.approx(24.6)
    assert row["window"] == {"start": "2023-01-01", "end": "2026-01-01"}
    assert g.result.row(OUTPUT).tier == 2 and g.result.f == 15
    # A calendar month's grade takes the same years; the year 2025's grade the same row.
    month = compute.compute_window(cfg, "2026-02", AS_OF)
    assert month.window == {"start": "2026-02-01", "end": "2026-03-01"}
    assert month.indicators["rows"][OUTPUT]["value"] == pytest.approx(24.6)
    year = compute.compute_window(cfg, "2025", AS_OF)
    assert year.indicators["rows"][OUTPUT]["value"] == pytest.approx(24.6)
    trailing = compute.compute_window(cfg, "2025-03/P12M", AS_OF)
    assert trailing.window == g.window
    with pytest.raises(UsageError, match="2025/P12M"):
        compute.compute_window(cfg, "2025/P12M", AS_OF)


def test_a_row_both_declared_and_computed_is_scored_from_its_declaration(tmp_path, stack):
    cfg = plant(tmp_path, stack, "grade-declared-c1")
    write_c1(store(stack), cfg, AS_OF, 150.0)
    write_evidence(cfg, {C1: declaration(280.0, dt.date(2026, 12, 31))})
    g = compute.compute(cfg, AS_OF)
    # 280 kWh/t against the induction-ductile limits < 200 / 250 / 300 kWh/t, +3.52 kWh/t by
    # note 4 (site mean 16.2 °C: 0.4 × (25 − 16.2)): tier 3, 30 × 0.60 = 18.
    assert g.result.row(C1).source == "evidence" and g.result.row(C1).tier == 3
    assert g.result.f == 18
    assert C1 not in g.indicators["rows"]
    assert any(n.startswith(f"{C1}: declared in ") and "150 kWh/t is not" in n for n in g.notes)
