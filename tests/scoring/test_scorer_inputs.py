"""Statuses other than "scored", and bad inputs that must stop the scorer with one line.

Every case starts from the demo plant (config/plants/demo-dip, F = 756.6 by hand in
test_scorer.py) and changes one thing, so each expected F is 756.6 minus the points of the row
that stops scoring, taken from that hand computation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from fractions import Fraction

import pytest

from greenfoundry.config import plant_file
from greenfoundry.errors import ConfigError
from greenfoundry.scoring import scorer
from greenfoundry.scoring.evidence import Declaration, Furnace, load_evidence
from greenfoundry.scoring.indicators import load_indicators
from greenfoundry.scoring.standard import load_standard
from tests.scoring.rows import with_row, without_row

DEMO = plant_file().parent
AS_OF = dt.date(2026, 3, 31)
HAND_F = Fraction("756.6")


@pytest.fixture(scope="module")
def standard():
    return load_standard()


@pytest.fixture()
def ind():
    return load_indicators(DEMO / "indicators.example.yaml")


@pytest.fixture()
def ev():
    return load_evidence(DEMO / "evidence.yaml")


def run(standard, ind, ev, as_of=AS_OF, **options):
    return scorer.score(standard, ind, ev, scorer.Options(as_of=as_of, **options))


def plant(ev, **changes):
    return dataclasses.replace(ev, plant=dataclasses.replace(ev.plant, **changes))


def declaration(row_id, value, **kw):
    base = {
        "declared_by": "Li Wei (EHS manager)",
        "declared_on": dt.date(2026, 1, 15),
        "valid_until": dt.date(2026, 12, 31),
    }
    base.update(kw)
    return Declaration(row_id=row_id, value=value, **base)


def one_line_error(call) -> str:
    with pytest.raises(ConfigError) as err:
        call()
    text = str(err.value)
    assert "\n" not in text
    return text


# --- statuses -------------------------------------------------------------------------------


def test_expired_evidence_does_not_score_and_is_listed_as_missing(standard, ind, ev):
    # Safety standardisation (tier 2, 20 × 0.75 = 15 points by hand) valid until the day before.
    ev = with_row(ev, "ohs.safety_standardisation.level", valid_until=dt.date(2026, 3, 30))
    result = run(standard, ind, ev)
    r = result.row("ohs.safety_standardisation.level")
    assert r.status == scorer.STATUS_EVIDENCE_EXPIRED
    assert (r.points, r.li, r.tier) == (0, None, None)
    assert r.would_be_tier == 2
    assert result.f == HAND_F - 15  # 741.6: below 750, level 3
    assert result.grade.level == 3
    assert [m.row_id for m in result.gap.missing_data] == ["ohs.safety_standardisation.level"]


def test_evidence_holds_on_its_last_valid_day(standard, ind, ev):
    ev = with_row(ev, "ohs.safety_standardisation.level", valid_until=AS_OF)
    assert run(standard, ind, ev).row("ohs.safety_standardisation.level").status == "scored"


def test_evidence_declared_after_the_evaluation_date_is_no_data(standard, ind, ev):
    # Scoring as of 2026-01-14, the day before most declarations were made.
    result = run(standard, ind, ev, as_of=dt.date(2026, 1, 14))
    r = result.row("process.melting.checklist")
    assert r.status == scorer.STATUS_NO_DATA
    assert "after the evaluation date" in r.reason


def test_low_coverage_is_its_own_status_and_the_threshold_is_inclusive(standard, ind, ev):
    # Energy per tonne of pipe scores 45 by hand (tier 2). At 0.85 coverage it does not score.
    low = run(standard, with_row(ind, "energy.pipe.kgce_per_t", coverage=0.85), ev)
    r = low.row("energy.pipe.kgce_per_t")
    assert r.status == scorer.STATUS_LOW_COVERAGE
    assert r.points == 0 and r.would_be_tier == 2
    assert low.f == HAND_F - 45
    assert "energy.pipe.kgce_per_t" in [m.row_id for m in low.gap.missing_data]
    # Exactly at the threshold (0.9 of the window) the value scores.
    at = run(standard, with_row(ind, "energy.pipe.kgce_per_t", coverage=0.9), ev)
    assert at.row("energy.pipe.kgce_per_t").status == scorer.STATUS_SCORED
    # The threshold is an option.
    strict = run(standard, ind, ev, min_coverage=0.97)
    assert strict.row("energy.water.reclaimed_share").status == "scored"  # coverage 0.99
    assert strict.row("energy.liquid_iron.energy_per_t").status == "low_coverage"  # 0.96


def test_a_row_declared_not_applicable_adds_nothing_and_is_not_missing_data(standard, ind, ev):
    # Resin sand reuse scores 12 by hand (tier 3). Declared not applicable, it scores nothing.
    ind = without_row(ind, "energy.sand_waste.resin_sand_reuse")
    rows = dict(ev.rows)
    rows["energy.sand_waste.resin_sand_reuse"] = declaration(
        "energy.sand_waste.resin_sand_reuse", "not_applicable", note="no resin-bonded sand"
    )
    ev = dataclasses.replace(ev, rows=rows)
    result = run(standard, ind, ev)
    r = result.row("energy.sand_waste.resin_sand_reuse")
    assert r.status == scorer.STATUS_NOT_APPLICABLE
    assert r.points == 0 and r.points_max == 20
    assert "no resin-bonded sand" in r.reason
    assert result.f == HAND_F - 12
    assert result.gap.missing_data == ()


def test_a_row_with_no_value_is_no_data_and_named_in_the_gap(standard, ind, ev):
    result = run(standard, without_row(ind, "emissions.water.multiple_of_d"), ev)
    r = result.row("emissions.water.multiple_of_d")
    assert r.status == scorer.STATUS_NO_DATA and r.source is None
    assert result.f == HAND_F - 15  # water discharge: tier 2, 20 × 0.75 = 15 by hand
    (missing,) = result.gap.missing_data
    assert (missing.row_id, missing.points_max) == ("emissions.water.multiple_of_d", 20)


def test_a_furnace_the_standard_does_not_cover_is_not_covered_not_zero(standard, ind, ev):
    # Table C.1 has induction rows only for > 5 t; a 5 t furnace is outside every row.
    ev = plant(ev, furnace=Furnace("induction", 5.0))
    result = run(standard, ind, ev)
    r = result.row("energy.liquid_iron.energy_per_t")
    assert r.status == scorer.STATUS_NOT_COVERED
    assert r.points == 0 and r.li is None
    assert result.f == HAND_F - 27  # the row scored 27 by hand
    assert r not in result.gap.missing_data


def test_a_plant_within_one_dn_range_needs_no_dn_per_row(standard, ind, ev):
    # A DN80–300 plant: the hydrostatic row (98.2 %) is read on the DN80-300 tiers ≥97/95/93,
    # tier 1, without the row naming its DN.
    ev = plant(ev, dn_min=80, dn_max=300)
    rid = "techeco.quality.hydro_first_pass"
    ind = with_row(ind, rid, context={})
    r = run(standard, ind, ev).row(rid)
    assert (r.variant, r.tier, r.context["dn"]) == ("ductile-dn80-300", 1, 80)


def test_no_gap_plan_when_scored_rows_cannot_reach_the_next_grade(standard, ind, ev):
    # Without any evidence only the 23 measured rows score. Their fi sum to 20 + 10 + 10 + 10 +
    # 30 + 20 (Tables 2, A.1) + 60 + 30 + 20 + 10 + 20 + 20 + 4 × 5 + 20 (Table 5) + 120 + 20 + 20
    # (Table 6) + 3 × 60/7 (Table 7) = 485.71; all at tier 1 that is 0.9 × 485.71 = 437.1 < 600.
    ev = dataclasses.replace(ev, rows={})
    result = run(standard, ind, ev)
    assert result.grade is None
    assert result.gap.next_grade.level == 3
    assert result.gap.plan is None
    assert "no improvement of scored rows reaches 600" in result.gap.reason
    assert len(result.gap.missing_data) == len(standard.rows) - len(ind.rows)


# --- bad inputs: one line naming the row, nothing scored --------------------------------------


def test_an_unknown_row_id_is_named_with_the_closest_id(standard, ind, ev):
    rows = dict(ind.rows)
    rows["energy.pipe.kgce_per_tonne"] = dataclasses.replace(
        rows.pop("energy.pipe.kgce_per_t"), row_id="energy.pipe.kgce_per_tonne"
    )
    ind = dataclasses.replace(ind, rows=rows)
    text = one_line_error(lambda: run(standard, ind, ev))
    assert "row energy.pipe.kgce_per_tonne: not a row of t-cfa-0308011.5-2024" in text
    assert "did you mean energy.pipe.kgce_per_t?" in text


@pytest.mark.parametrize(
    ("row_id", "value", "message"),
    [
        ("energy.pipe.kgce_per_t", "108.4", "row energy.pipe.kgce_per_t: expected a number"),
        ("energy.pipe.kgce_per_t", True, "row energy.pipe.kgce_per_t: expected a number"),
        (
            "energy.water.reclaimed_share",
            410,
            "row energy.water.reclaimed_share: 410 is not a percent",
        ),
        (
            "emissions.air.multiple_of_c",
            -0.2,
            "row emissions.air.multiple_of_c: -0.2 must not be negative",
        ),
    ],
)
def test_a_measured_value_of_the_wrong_type_or_range_stops(
    standard, ind, ev, row_id, value, message
):
    text = one_line_error(lambda: run(standard, with_row(ind, row_id, value=value), ev))
    assert message in text
    assert text.startswith("indicators.example.yaml: ")


@pytest.mark.parametrize(
    ("row_id", "value", "message"),
    [
        (
            "process.melting.checklist",
            16,
            "row process.melting.checklist: 16 items, but the row lists 15",
        ),
        ("process.melting.checklist", 9.5, "a count of items must be whole"),
        ("ohs.safety_standardisation.level", "level_0", "level 'level_0' is not on scale"),
        (
            "ohs.major_accident.no_major_incident",
            1,
            "row ohs.major_accident.no_major_incident: a boolean row takes true/false",
        ),
    ],
)
def test_a_declared_value_of_the_wrong_type_stops(standard, ind, ev, row_id, value, message):
    text = one_line_error(lambda: run(standard, ind, with_row(ev, row_id, value=value)))
    assert message in text


def test_a_value_in_another_unit_stops(standard, ind, ev):
    # Energy per tonne of pipe is kgce/t (Table 5); a kWh/t value is not converted from a guess.
    text = one_line_error(
        lambda: run(standard, with_row(ind, "energy.pipe.kgce_per_t", unit="kWh/t"), ev)
    )
    assert "row energy.pipe.kgce_per_t: unit 'kWh/t' is not the row's unit (kgce/t)" in text
    # Table C.1 for an induction furnace is kWh/t, not kgce/t (decision D-c1-unit).
    rid = "energy.liquid_iron.energy_per_t"
    text = one_line_error(lambda: run(standard, with_row(ind, rid, unit="kgce/t"), ev))
    assert f"row {rid}: unit 'kgce/t' is not the row's unit (kWh/t)" in text


def test_a_ductile_row_without_its_dn_stops_when_the_plant_spans_dn_ranges(standard, ind, ev):
    # The demo plant casts DN80–1000: DN80-300 and DN350-1000 have different tiers.
    rid = "techeco.quality.hydro_first_pass"
    text = one_line_error(lambda: run(standard, with_row(ind, rid, context={}), ev))
    assert f"row {rid}: the plant casts DN80–1000, which spans DN ranges" in text
    assert "context: {dn: …}" in text


def test_a_missing_printed_condition_stops(standard, ind, ev):
    # The VOC row's tiers are printed as "使用水性涂料VOC<1%": it needs water_based_coating.
    rid = "emissions.voc.voc_content"
    text = one_line_error(lambda: run(standard, ind, with_row(ev, rid, context={})))
    assert f"row {rid}" in text and "water_based_coating" in text


C1 = "energy.liquid_iron.energy_per_t"


@pytest.mark.parametrize(
    ("row_id", "context", "message"),
    [
        (
            "emissions.air.multiple_of_c",
            {"product": "ductile"},
            "context key 'product' is not used by this row",
        ),
        (
            "energy.pipe.kgce_per_t",
            {"product": "gray"},
            "context product='gray' contradicts the plant's declared product='ductile'",
        ),
        (
            C1,
            {"dn": 600, "furnace": "cupola"},
            "context furnace='cupola' contradicts the plant's declared furnace='induction'",
        ),
        (C1, {"dn": 600, "tap_temp": 1460}, "unknown context key 'tap_temp'"),
        (C1, {"dn": "600"}, "context dn='600' is not allowed"),
    ],
)
def test_a_bad_row_context_stops(standard, ind, ev, row_id, context, message):
    text = one_line_error(lambda: run(standard, with_row(ind, row_id, context=context), ev))
    assert f"row {row_id}" in text
    assert message in text


def test_a_row_given_in_both_files_stops(standard, ind, ev):
    rows = dict(ev.rows)
    rows["energy.pipe.kgce_per_t"] = declaration("energy.pipe.kgce_per_t", 99.0)
    ev = dataclasses.replace(ev, rows=rows)
    text = one_line_error(lambda: run(standard, ind, ev))
    assert "row energy.pipe.kgce_per_t: also given in indicators.example.yaml" in text


def test_a_window_ending_after_the_evaluation_date_stops(standard, ind, ev):
    # The demo windows end 2026-01-01 (exclusive): on 2025-12-30 the year is not over. (The
    # plant context is re-dated so that its own declaration date is not the error.)
    ev = dataclasses.replace(
        ev, rows={}, plant=dataclasses.replace(ev.plant, declared_on=dt.date(2025, 1, 1))
    )
    text = one_line_error(lambda: run(standard, ind, ev, as_of=dt.date(2025, 12, 30)))
    assert "window ends 2026-01-01 (exclusive), after the evaluation date 2025-12-30" in text
    # On 2025-12-31 the last day of the window is the evaluation date itself: allowed.
    run(standard, ind, ev, as_of=dt.date(2025, 12, 31))


def test_plant_ids_must_match_and_the_plant_declaration_must_hold(standard, ind, ev):
    text = one_line_error(lambda: run(standard, dataclasses.replace(ind, plant="other"), ev))
    assert "plant 'other' is not the evidence file's plant 'demo-dip'" in text
    text = one_line_error(lambda: run(standard, ind, plant(ev, valid_until=dt.date(2026, 3, 1))))
    assert "plant context declared by Wang Fang (energy manager) expired on 2026-03-01" in text
    text = one_line_error(lambda: run(standard, ind, ev, as_of=dt.date(2026, 1, 11)))
    assert "plant context was declared on 2026-01-12, after the evaluation date 2026-01-11" in text
