"""Statuses other than "scored", and bad inputs that must stop the scorer with one line.

Every case starts from the demo plant (config/plants/demo-dip, F = 756.6 by hand in
test_scorer.py) and changes one thing, so each expected F is 756.6 minus the points of the row
that stops scoring, taken from that hand computation. A bad input is one line naming the file,
the key path (`rows[<row id>]…`), the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from fractions import Fraction

import pytest

from greenfoundry.errors import ConfigError, InputError
from greenfoundry.scoring import scorer
from greenfoundry.scoring.evidence import Declaration
from greenfoundry.scoring.standard import load_standard
from tests.scoring.rows import demo_inputs, with_furnaces, with_plant, with_row, without_row

AS_OF = dt.date(2026, 3, 31)
HAND_F = Fraction("756.6")


@pytest.fixture(scope="module")
def standard():
    return load_standard()


@pytest.fixture()
def cfg():
    return demo_inputs()[0]


@pytest.fixture()
def ind():
    return demo_inputs()[1]


@pytest.fixture()
def ev():
    return demo_inputs()[2]


def run(standard, ind, ev, as_of=AS_OF, cfg=None, **options):
    cfg = cfg or demo_inputs()[0]
    return scorer.score(standard, cfg, ind, ev, scorer.Options(as_of=as_of, **options))


def declaration(row_id, value, **kw):
    base = {
        "declared_by": "Li Wei (EHS manager)",
        "declared_on": dt.date(2026, 1, 15),
        "valid_until": dt.date(2026, 12, 31),
    }
    base.update(kw)
    return Declaration(row_id=row_id, value=value, **base)


def one_line_error(call, error=InputError) -> str:
    with pytest.raises(error) as err:
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


def test_a_furnace_the_standard_does_not_cover_is_not_covered_not_zero(standard, ind, ev, cfg):
    # Table C.1 has induction rows only for > 5 t; 5 t furnaces are outside every row.
    cfg = with_furnaces(cfg, ("if1", "induction", 5, 80, 300), ("if2", "induction", 5, 350, 1000))
    result = run(standard, ind, ev, cfg=cfg)
    r = result.row("energy.liquid_iron.energy_per_t")
    assert r.status == scorer.STATUS_NOT_COVERED
    assert r.points == 0 and r.li is None
    assert result.f == HAND_F - 27  # the row scored 27 by hand
    assert r not in result.gap.missing_data


def test_a_plant_within_one_dn_range_needs_no_dn_per_row(standard, ind, ev, cfg):
    # A plant whose furnaces both cast DN80–300: the hydrostatic row (98.2 %) is read on the
    # DN80-300 tiers ≥97/95/93, tier 1, without the row naming its DN.
    cfg = with_furnaces(cfg, ("if1", "induction", 12, 80, 300), ("if2", "induction", 12, 80, 200))
    rid = "techeco.quality.hydro_first_pass"
    ind = with_row(ind, rid, context={})
    # The Table C.1 value is then for a DN this plant casts (DN 600 is refused, below).
    ind = with_row(
        ind, "energy.liquid_iron.energy_per_t", context={"dn": 200, "tap_temp_c": 1462.0}
    )
    r = run(standard, ind, ev, cfg=cfg).row(rid)
    assert (r.variant, r.tier, r.context["dn"]) == ("ductile-dn80-300", 1, 80)


# --- the plant's facts come from its config ---------------------------------------------------

C1 = "energy.liquid_iron.energy_per_t"


def test_two_furnaces_on_one_table_c1_row_are_the_plants_row(standard, ind, ev, cfg):
    # The demo plant's two 12 t induction furnaces both fall on row induction-ductile (>5 t):
    # the row scores as for one such furnace, 27 points by hand (test_scorer.py). Furnaces of
    # 8 t and 20 t fall on the same row, with the same limits: the same 27 points.
    result = run(standard, ind, ev, cfg=cfg)
    assert result.row(C1).context["furnace_kind"] == "induction"
    assert result.furnace == ("induction", 12.0)
    cfg = with_furnaces(cfg, ("if1", "induction", 8, 80, 300), ("if2", "induction", 20, 350, 1000))
    result = run(standard, ind, ev, cfg=cfg)
    assert (result.row(C1).variant, result.row(C1).points) == ("induction-ductile", 27)
    assert result.f == HAND_F


def test_furnaces_on_different_table_c1_rows_cite_the_plant_value_decision(standard, ind, ev, cfg):
    # A 12 t furnace (row induction-ductile) and a 4 t one (no row: ≤ 5 t) give no one plant
    # row; their one plant value is decision D-c1-plant's, which the metrics compute into the
    # indicators file, so the scorer refuses the row and says where the plant value comes from.
    cfg = with_furnaces(cfg, ("if1", "induction", 12, 80, 300), ("if2", "induction", 4, 350, 1000))
    text = one_line_error(lambda: run(standard, ind, ev, cfg=cfg))
    assert text.startswith("config/plants/demo-dip/plant.yaml: furnaces: ")
    assert "if1 (induction 12 t: induction-ductile), if2 (induction 4 t: not covered)" in text
    assert "decision D-c1-plant" in text
    assert "the indicators file from `greenfoundry metrics indicators` carries it" in text
    assert standard.decision("D-c1-plant").affects == (
        "furnace_table",
        "energy.liquid_iron.energy_per_t",
    )
    # Without a Table C.1 value there is nothing to refuse: the row has no data.
    result = run(standard, without_row(ind, C1), ev, cfg=cfg)
    assert result.row(C1).status == scorer.STATUS_NO_DATA
    assert result.furnace is None


def test_the_configured_air_temperature_is_the_plants(standard, ind, ev, cfg):
    # plant.yaml configures 16.2 °C (note 4: limits + (25 − 16.2) × 0.4 = +3.52). The same value
    # in a row's context is accepted; another one contradicts the plant config.
    rid = C1
    ctx = {"dn": 600, "tap_temp_c": 1462.0, "annual_mean_air_temp_c": 16.2}
    r = run(standard, with_row(ind, rid, context=ctx), ev).row(rid)
    assert r.tiers[0].value == pytest.approx(210.72, abs=1e-9)
    text = one_line_error(
        lambda: run(standard, with_row(ind, rid, context={**ctx, "annual_mean_air_temp_c": 20}), ev)
    )
    assert f"rows[{rid}].context.annual_mean_air_temp_c: 20 is not allowed" in text
    assert "expected the plant config's annual_mean_air_temp_c 16.2" in text
    # Without a configured value, the row's own (computed by the metrics) is used: 20 °C gives
    # + (25 − 20) × 0.4 = +2 on top of note 2's +7.2: 209.2.
    cfg = with_plant(cfg, annual_mean_air_temp_c=None)
    ind = with_row(ind, rid, context={**ctx, "annual_mean_air_temp_c": 20})
    r = run(standard, ind, ev, cfg=cfg).row(rid)
    assert r.tiers[0].value == pytest.approx(209.2, abs=1e-9)


def test_a_plant_config_without_its_declaration_is_not_scored(standard, ind, ev, cfg):
    cfg = with_plant(cfg, declared_on=None)
    text = one_line_error(lambda: run(standard, ind, ev, cfg=cfg), ConfigError)
    assert text.startswith("config/plants/demo-dip/plant.yaml: plant.declared_on: missing")


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
    assert "rows[energy.pipe.kgce_per_tonne]: not a row of t-cfa-0308011.5-2024" in text
    assert "did you mean energy.pipe.kgce_per_t?" in text


@pytest.mark.parametrize(
    ("row_id", "value", "message"),
    [
        (
            "energy.pipe.kgce_per_t",
            "108.4",
            "rows[energy.pipe.kgce_per_t].value: '108.4' is not allowed; expected a number",
        ),
        (
            "energy.pipe.kgce_per_t",
            True,
            "rows[energy.pipe.kgce_per_t].value: True is not allowed; expected a number",
        ),
        (
            "energy.water.reclaimed_share",
            410,
            "rows[energy.water.reclaimed_share].value: 410 is not allowed; expected a percent",
        ),
        (
            "emissions.air.multiple_of_c",
            -0.2,
            "rows[emissions.air.multiple_of_c].value: -0.2 is not allowed; expected a multiple "
            "of the limit C from 0 to 10 C",
        ),
    ],
)
def test_a_measured_value_of_the_wrong_type_or_range_stops(
    standard, ind, ev, row_id, value, message
):
    text = one_line_error(lambda: run(standard, with_row(ind, row_id, value=value), ev))
    assert message in text
    assert text.startswith("config/plants/demo-dip/indicators.example.yaml: ")


@pytest.mark.parametrize(
    ("row_id", "value", "message"),
    [
        (
            "process.melting.checklist",
            16,
            "rows[process.melting.checklist].value: 16 is not allowed; expected a count from 0 "
            "to 15",
        ),
        ("process.melting.checklist", 9.5, "9.5 is not allowed; expected a whole count of items"),
        (
            "ohs.safety_standardisation.level",
            "level_0",
            "'level_0' is not allowed; expected a level of scale safety_standardisation: "
            "level_1, level_2, level_3, none",
        ),
        (
            "ohs.major_accident.no_major_incident",
            1,
            "rows[ohs.major_accident.no_major_incident].value: 1 is not allowed; expected true "
            "or false",
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
    assert (
        "rows[energy.pipe.kgce_per_t].unit: 'kWh/t' is not allowed; expected the row's unit "
        "kgce/t" in text
    )
    # Table C.1 for an induction furnace is kWh/t, not kgce/t (decision D-c1-unit).
    rid = "energy.liquid_iron.energy_per_t"
    text = one_line_error(lambda: run(standard, with_row(ind, rid, unit="kgce/t"), ev))
    assert f"rows[{rid}].unit: 'kgce/t' is not allowed; expected the row's unit kWh/t" in text


def test_a_ductile_row_without_its_dn_stops_when_the_plant_spans_dn_ranges(standard, ind, ev):
    # The demo plant casts DN80–300 and DN350–1000, which have different tiers.
    rid = "techeco.quality.hydro_first_pass"
    text = one_line_error(lambda: run(standard, with_row(ind, rid, context={}), ev))
    assert f"rows[{rid}].context.dn: missing; the plant casts DN80–300 and DN350–1000" in text
    assert "context: {dn: …}" in text


def test_a_missing_printed_condition_stops(standard, ind, ev):
    # The VOC row's tiers are printed as "使用水性涂料VOC<1%": it needs water_based_coating.
    rid = "emissions.voc.voc_content"
    text = one_line_error(lambda: run(standard, ind, with_row(ev, rid, context={})))
    assert f"rows[{rid}].context.water_based_coating: missing" in text


@pytest.mark.parametrize(
    ("row_id", "context", "message"),
    [
        (
            "emissions.air.multiple_of_c",
            {"product": "ductile"},
            "context.product: not used by this row; allowed here: none",
        ),
        (
            "energy.pipe.kgce_per_t",
            {"product": "gray"},
            "context.product: 'gray' is not allowed; expected the plant config's product "
            "'ductile' (config/plants/demo-dip/plant.yaml), or leave it out",
        ),
        (
            C1,
            {"dn": 600, "furnace_kind": "cupola"},
            "context.furnace_kind: 'cupola' is not allowed; expected the plant config's "
            "furnace_kind 'induction'",
        ),
        (C1, {"dn": 600, "tap_temp": 1460}, "context.tap_temp: unknown key for this row"),
        (
            C1,
            {"dn": "600"},
            "context.dn: '600' is not allowed; expected a whole number (mm)",
        ),
    ],
)
def test_a_bad_row_context_stops(standard, ind, ev, row_id, context, message):
    text = one_line_error(lambda: run(standard, with_row(ind, row_id, context=context), ev))
    assert f"rows[{row_id}].{message}" in text


def test_a_row_given_in_both_files_stops(standard, ind, ev):
    rows = dict(ev.rows)
    rows["energy.pipe.kgce_per_t"] = declaration("energy.pipe.kgce_per_t", 99.0)
    ev = dataclasses.replace(ev, rows=rows)
    text = one_line_error(lambda: run(standard, ind, ev))
    assert (
        "rows[energy.pipe.kgce_per_t]: also given in config/plants/demo-dip/"
        "indicators.example.yaml" in text
    )


def test_a_window_ending_after_the_evaluation_date_stops(standard, ind, ev, cfg):
    # The demo windows end 2026-01-01 (exclusive): on 2025-12-30 the year is not over. (The
    # plant's facts are re-dated so that their own declaration date is not the error.)
    ev = dataclasses.replace(ev, rows={})
    cfg = with_plant(cfg, declared_on=dt.date(2025, 1, 1))
    text = one_line_error(lambda: run(standard, ind, ev, as_of=dt.date(2025, 12, 30), cfg=cfg))
    assert (
        "rows[scale.output.annual_output].window: ends 2026-01-01 (exclusive), after the "
        "evaluation date 2025-12-30" in text
    )
    # On 2025-12-31 the last day of the window is the evaluation date itself: allowed.
    run(standard, ind, ev, as_of=dt.date(2025, 12, 31), cfg=cfg)


def test_plant_ids_must_match_and_the_plant_declaration_must_hold(standard, ind, ev, cfg):
    for other in (dataclasses.replace(ind, plant="other"), dataclasses.replace(ev, plant="other")):
        args = (other, ev) if other is not ev and hasattr(other, "window") else (ind, other)
        text = one_line_error(lambda args=args: run(standard, *args))
        assert (
            "plant: 'other' is not allowed; expected the plant config's plant.id 'demo-dip' "
            "(config/plants/demo-dip/plant.yaml)" in text
        )
    expired = with_plant(cfg, valid_until=dt.date(2026, 3, 1))
    text = one_line_error(lambda: run(standard, ind, ev, cfg=expired))
    assert (
        "plant.yaml: plant.valid_until: the plant's facts declared by Wang Fang (energy manager) "
        "hold until 2026-03-01, before the evaluation date 2026-03-31" in text
    )
    text = one_line_error(lambda: run(standard, ind, ev, as_of=dt.date(2026, 1, 11)))
    assert (
        "plant.yaml: plant.declared_on: the plant's facts were declared on 2026-01-12, after "
        "the evaluation date 2026-01-11" in text
    )
