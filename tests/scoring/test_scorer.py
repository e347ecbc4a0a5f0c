"""The scorer against the demo plant, scored by hand from the standard's tables.

The demo plant is the shipped example: config/plants/demo-dip/plant.yaml (its facts: ductile
pipe, two 12 t coreless induction furnaces casting DN80–300 and DN350–1000, no residential area
within 1200 m, a site mean air temperature of 16.2 °C), evidence.yaml and indicators.example.yaml,
evaluated as of 2026-03-31.

Hand computation (T/CFA 0308011.5-2024; Li at the tier floor of clause 5.2.2: tier 1 0.90,
tier 2 0.75, tier 3 0.60, below 0; points fi in force after the errata decisions E1 (Table B.1
weights), E2 (Table 5 is 200) and E3 (occupational disease rows scaled by 60/70):

Group 1, scale (Table 2, ductile):
  output 24.6 万吨/年: ≥20 → tier 2, 20 × 0.75 = 15
  sales 118000 万元/年: ≥100000 → tier 2, 30 × 0.75 = 22.5                         = 37.5 / 50
Group 2, technical-economic (Table A.1, ductile):
  tonnes per person 520: ≥500 → tier 1, 10 × 0.9 = 9
  output per person 212: ≥200 → tier 2, 10 × 0.75 = 7.5
  online inspection 97 %: ≥96 → tier 2, 7.5
  hydrostatic first pass 98.2 % at DN600 (DN350-1000: ≥99/97/95) → tier 2, 7.5
  pipe first pass 94.0 % at DN200 (DN80-300: ≥95/93/91) → tier 2, 7.5
  scrap rate 7.2 % (≤6/≤8/≤10) → tier 2, 30 × 0.75 = 22.5
  process yield 91.0 % (≥92/90/88) → tier 2, 20 × 0.75 = 15                        = 76.5 / 100
Group 3, process (Table B.1; weights per E1: design 20, melting 40, moulding 30, centrifugal 20,
moulds 20, cleaning 20, quality 10, utilities 20, pollution equipment 5/3/2/5/5):
  design 4 items (≥4) → tier 1, 18;  melting 9 (≥13/11/9) → tier 3, 40 × 0.6 = 24
  moulding 8 (≥10/8/5) → tier 2, 22.5;  centrifugal 5 (≥4) → tier 1, 18
  moulds 3 (≥3) → tier 1, 18;  cleaning 10 (≥12/10/9) → tier 2, 15
  quality equipment 14 (≥15/13/11) → tier 2, 7.5;  utilities 国内先进至领先 → tier 2, 15
  air equipment 国内领先至国际先进 → tier 1, 4.5;  wastewater 先进至领先 → tier 2, 2.25
  noise 先进至领先 → tier 2, 1.5;  injury protection 领先 → tier 1, 4.5
  fire/explosion 先进至领先 → tier 2, 3.75                                         = 154.5 / 200
Group 4, energy (Table 5, Table C.1):
  pipe 108.4 kgce/t (ductile ≤100/≤120/≤140) → tier 2, 60 × 0.75 = 45
  liquid iron 205.0 kWh/t, induction ductile ＜200/＜250/＜300, DN600 → specified tapping
    1450 °C; note 2: tapping 1462 °C → +12 × 0.6 = +7.2; note 4: site 16.2 °C (plant.yaml) → (25 − 16.2)
    × 0.4 = +3.52; limits 210.72 / 260.72 / 310.72; 205.0 < 210.72 → tier 1, 30 × 0.9 = 27
    (without the notes it would be tier 2: the corrections decide this row)
  resin sand 91 % (≥95/92/90) → tier 3, 20 × 0.6 = 12;  sand and slag 86 % (≥95/90/80) → tier 3, 6
  metal returns 97 % (≥100/95/90) → tier 2, 15;  heat recovery 30 % (≥60/40/20) → tier 3, 12
  cooling water 97.2 % (≥98/95/90) → tier 2, 3.75;  process wastewater 87 % (≥90/85/80) → tier 2, 3.75
  coating wastewater 82 % → tier 3, 3;  reclaimed water 4.1 % (≥10/7/5) → below tier 3, 0
  power factor 0.93 (≥0.95/0.92/0.90, decision D-power-factor) → tier 2, 15          = 142.5 / 200
Group 5, emissions (Table 6):
  air 0.64 C (＜0.6/0.8/1 C) → tier 2, 120 × 0.75 = 90;  VOC 3.2 % water-based (＜1/5/10) → tier 2, 15
  water 0.70 D → tier 2, 15;  noise 0.93 E, no residential area (＜0.9/0.95/1 E) → tier 2, 15
  8 years without a waste penalty (＞10/＞5) → tier 2, 15                            = 150 / 200
Group 6, occupational health and safety (Table 7; E3: 10-point rows are 60/7, 5-point rows 30/7):
  dust 75 % (≥80/70/60) → tier 2, 60/7 × 0.75 = 45/7;  gas 88 % (≥90/85/80) → tier 2, 45/7
  noise 76 % (≥80/70/60) → tier 2, 45/7;  hazard monitoring 100 % (≥98) → tier 1, 54/7
  health checks 97 % (≥95) → tier 1, 54/7;  check quality 90 % (≥95/85) → tier 2, 30/7 × 0.75 = 45/14
  injury insurance 100 % → tier 1, 27/7;  PPE 100 % → tier 1, 27/7;  disease 0 ‰ (＜0.2) → tier 1, 27/7
    subtotal 3 × 45/7 + 2 × 54/7 + 45/14 + 3 × 27/7 = 324/7 + 45/14 = 693/14 = 49.5
  minor injuries 2.4 ‰, no serious injury (＜1/2/3 ‰) → tier 3, 40 × 0.6 = 24
  no major incident → tier 1, 30 × 0.9 = 27;  standardisation level 2 → tier 2, 20 × 0.75 = 15
                                                                                     = 115.5 / 150
Group 7, management (Table 8, Table D.1):
  four systems 有效实施 → tier 2, 22.5;  digital ERP → tier 2, 15
  building design 3/3 → 1.8;  staffing 专职 → 1.8;  production rules 6/6 → 4.5
  management tools 9 (≥11/9/7) → tier 2, 3.75;  uptime 100 % → 3.6;  training 95 % (≥100/90/70) → 1.5
  certified operators 100 % → 1.8;  general waste yes → 1.8;  hazardous waste 5/5 → 3.6
  environmental investment 4.2 % (＞5/＞3/＞2) → tier 2, 2.25;  pollution grade B → tier 2, 2.25
  OHS investment yes → 1.8;  PPE and surveillance 6/6 → 2.7;  plot ratio 18 % (≥20/15/10) → tier 2, 2.25
  emergency 8/8 → 3.6;  fire safety 6/6 → 3.6                                       = 80.1 / 100

F = 37.5 + 76.5 + 154.5 + 142.5 + 150 + 115.5 + 80.1 = 756.6 → 750 ≤ F < 900: level 2,
铸造行业绿色工厂企业 (Table 9).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from greenfoundry.scoring import scorer
from greenfoundry.scoring.standard import load_standard
from tests.scoring import rows
from tests.scoring.rows import with_row

AS_OF = dt.date(2026, 3, 31)
F = Fraction

# Each row's expected tier and points, from the docstring's hand computation (not from the code).
HAND = {
    "scale.output.annual_output": (2, F(15)),
    "scale.sales.annual_sales": (2, F("22.5")),
    "techeco.productivity.tonnes_per_person": (1, F(9)),
    "techeco.productivity.output_per_person": (2, F("7.5")),
    "techeco.quality.online_inspection_rate": (2, F("7.5")),
    "techeco.quality.hydro_first_pass": (2, F("7.5")),
    "techeco.quality.pipe_first_pass": (2, F("7.5")),
    "techeco.scrap.scrap_rate": (2, F("22.5")),
    "techeco.yield.process_yield": (2, F(15)),
    "process.design.checklist": (1, F(18)),
    "process.melting.checklist": (3, F(24)),
    "process.moulding.checklist": (2, F("22.5")),
    "process.centrifugal.checklist": (1, F(18)),
    "process.moulds.checklist": (1, F(18)),
    "process.cleaning.checklist": (2, F(15)),
    "process.quality_equipment.checklist": (2, F("7.5")),
    "process.utilities.level": (2, F(15)),
    "process.pollution_equipment.air": (1, F("4.5")),
    "process.pollution_equipment.wastewater": (2, F("2.25")),
    "process.pollution_equipment.noise": (2, F("1.5")),
    "process.pollution_equipment.injury_protection": (1, F("4.5")),
    "process.pollution_equipment.fire_explosion": (2, F("3.75")),
    "energy.pipe.kgce_per_t": (2, F(45)),
    "energy.liquid_iron.energy_per_t": (1, F(27)),
    "energy.sand_waste.resin_sand_reuse": (3, F(12)),
    "energy.sand_waste.sand_slag_use": (3, F(6)),
    "energy.sand_waste.metal_returns": (2, F(15)),
    "energy.heat_recovery.rate": (3, F(12)),
    "energy.water.cooling_recirculation": (2, F("3.75")),
    "energy.water.process_wastewater_reuse": (2, F("3.75")),
    "energy.water.coating_wastewater_reuse": (3, F(3)),
    "energy.water.reclaimed_share": (None, F(0)),
    "energy.power_factor.power_factor": (2, F(15)),
    "emissions.air.multiple_of_c": (2, F(90)),
    "emissions.voc.voc_content": (2, F(15)),
    "emissions.water.multiple_of_d": (2, F(15)),
    "emissions.noise.multiple_of_e": (2, F(15)),
    "emissions.solid_waste.years_without_penalty": (2, F(15)),
    "ohs.occupational_disease.dust_compliance": (2, F(45, 7)),
    "ohs.occupational_disease.gas_compliance": (2, F(45, 7)),
    "ohs.occupational_disease.noise_compliance": (2, F(45, 7)),
    "ohs.occupational_disease.hazard_monitoring": (1, F(54, 7)),
    "ohs.occupational_disease.health_check_completion": (1, F(54, 7)),
    "ohs.occupational_disease.health_check_quality": (2, F(45, 14)),
    "ohs.occupational_disease.injury_insurance": (1, F(27, 7)),
    "ohs.occupational_disease.ppe_compliance": (1, F(27, 7)),
    "ohs.occupational_disease.disease_rate": (1, F(27, 7)),
    "ohs.injury.minor_injury_rate": (3, F(24)),
    "ohs.major_accident.no_major_incident": (1, F(27)),
    "ohs.safety_standardisation.level": (2, F(15)),
    "mgmt.systems.four_systems": (2, F("22.5")),
    "mgmt.digital.level": (2, F(15)),
    "mgmt.tools.building_design": (1, F("1.8")),
    "mgmt.tools.staffing": (1, F("1.8")),
    "mgmt.tools.production_rules": (1, F("4.5")),
    "mgmt.tools.management_tools": (2, F("3.75")),
    "mgmt.tools.equipment_uptime": (1, F("3.6")),
    "mgmt.tools.training_rate": (2, F("1.5")),
    "mgmt.tools.certified_operators": (1, F("1.8")),
    "mgmt.tools.general_waste": (1, F("1.8")),
    "mgmt.tools.hazardous_waste": (1, F("3.6")),
    "mgmt.tools.env_investment": (2, F("2.25")),
    "mgmt.tools.pollution_grade": (2, F("2.25")),
    "mgmt.tools.ohs_investment": (1, F("1.8")),
    "mgmt.tools.ppe_health_surveillance": (1, F("2.7")),
    "mgmt.tools.plot_ratio": (2, F("2.25")),
    "mgmt.tools.emergency_management": (1, F("3.6")),
    "mgmt.tools.fire_safety": (1, F("3.6")),
}
HAND_GROUPS = {
    "scale": (F("37.5"), 50),
    "techeco": (F("76.5"), 100),
    "process": (F("154.5"), 200),
    "energy": (F("142.5"), 200),
    "emissions": (F(150), 200),
    "ohs": (F("115.5"), 150),
    "mgmt": (F("80.1"), 100),
}
HAND_F = F("756.6")


@pytest.fixture(scope="module")
def standard():
    return load_standard()


@pytest.fixture()
def demo_inputs():
    return rows.demo_inputs()


def run(standard, plant, indicators, evidence, **options):
    return scorer.score(
        standard, plant, indicators, evidence, scorer.Options(as_of=AS_OF, **options)
    )


def test_the_hand_table_covers_every_row_of_the_standard(standard):
    # The example plant is complete: one hand-scored entry per third-level row.
    assert set(HAND) == set(standard.rows)
    assert sum(p for _, p in HAND.values()) == HAND_F
    assert sum(g for g, _ in HAND_GROUPS.values()) == HAND_F


def test_the_demo_plant_scores_as_computed_by_hand(standard, demo_inputs):
    result = run(standard, *demo_inputs)
    for row_id, (tier, points) in HAND.items():
        r = result.row(row_id)
        assert r.status == scorer.STATUS_SCORED, (row_id, r.reason)
        assert (r.tier, r.points) == (tier, points), row_id
    for group, points, maximum in result.group_points():
        assert (points, maximum) == HAND_GROUPS[group.id], group.id
    assert result.f == HAND_F  # exact: the points are fractions, no rounding
    assert result.grade.level == 2
    assert result.grade.name_zh == "铸造行业绿色工厂企业"


def test_the_liquid_iron_row_is_tier_1_only_thanks_to_notes_2_and_4(standard, demo_inputs):
    r = run(standard, *demo_inputs).row("energy.liquid_iron.energy_per_t")
    # Hand: 200 + 12 × 0.6 + (25 − 16.2) × 0.4 = 210.72 (tier 1 limit after notes 2 and 4).
    assert r.tiers[0].value == pytest.approx(210.72, abs=1e-9)
    assert r.context["dn"] == 600
    assert any("note 2" in n for n in r.notes) and any("note 4" in n for n in r.notes)


def test_every_row_below_tier_1_is_needed_for_level_1(standard, demo_inputs):
    # Under the floor policy tier 1 gives Li = 0.90, so the most any plant can score is
    # 0.90 × 1000 = 900: level 1 (F ≥ 900) needs every row at tier 1. The gap from 756.6 is
    # 143.4, and the only plan moves every row that is not at tier 1 to tier 1.
    result = run(standard, *demo_inputs)
    gap = result.gap
    assert gap.next_grade.level == 1
    assert gap.deficit == F(900) - HAND_F
    below_tier_1 = {rid for rid, (tier, _) in HAND.items() if tier != 1}
    assert {m.row_id for m in gap.plan} == below_tier_1
    assert all(m.to_tier == 1 for m in gap.plan)
    assert sum(m.points_added for m in gap.plan) == F("143.4")
    assert gap.exact
    assert "level 1 needs every row at tier 1" in gap.note


def test_the_same_plant_one_row_short_of_level_2_names_the_air_row(standard, demo_inputs):
    """The demo plant with stack emissions at 0.85 C instead of 0.64 C.

    Hand: the air row falls to tier 3 (＜C but not ＜0.8C): 120 × 0.6 = 72 instead of 90, so
    F = 756.6 − 18 = 738.6, level 3; 750 − 738.6 = 11.4 points short of level 2.
    Single rows that can add ≥ 11.4 points (fi × (0.90 − Li) at most):
      air 0.85 → ＜0.8 C, tier 2: +120 × 0.15 = 18, relative change 0.05 / 0.85 = 1/17
      air 0.85 → ＜0.6 C, tier 1: +36, relative change 0.25 / 0.85 = 5/17
      melting checklist 9 → 13 items, tier 1: +40 × 0.3 = 12, relative change 4/13
      minor injuries 2.4 → ＜1 ‰, tier 1: +40 × 0.3 = 12, relative change 1.4 / 2.4 = 7/12
    Every other row adds at most 9 (energy per tonne of pipe, 60 × 0.15). One row is the
    fewest; the least relative change is the air row to tier 2, adding 18 points.
    """
    plant, indicators, evidence = demo_inputs
    indicators = with_row(indicators, "emissions.air.multiple_of_c", value=0.85)
    result = run(standard, plant, indicators, evidence)
    assert result.row("emissions.air.multiple_of_c").tier == 3
    assert result.f == F("738.6")
    assert result.grade.level == 3
    gap = result.gap
    assert gap.next_grade.level == 2
    assert gap.deficit == F("11.4")
    (move,) = gap.plan
    assert move.row_id == "emissions.air.multiple_of_c"
    assert (move.from_tier, move.to_tier) == (3, 2)
    assert (move.target.cmp, move.target.value) == ("<", 0.8)
    assert move.points_added == F(18)
    assert move.relative_change == F(1, 17)
    assert gap.note is None  # 750 is below the 900 ceiling of the floor policy


def test_following_the_plan_reaches_the_grade(standard, demo_inputs):
    # The plan above says: air below 0.8 C. At 0.79 C the plant scores 738.6 + 18 = 756.6 again.
    plant, indicators, evidence = demo_inputs
    indicators = with_row(indicators, "emissions.air.multiple_of_c", value=0.79)
    result = run(standard, plant, indicators, evidence)
    assert result.f == HAND_F
    assert result.grade.level == 2


def test_a_boundary_value_is_decided_by_the_printed_comparator(standard, demo_inputs):
    # Exactly 0.8 C is not ＜0.8C: tier 3 (Table 6 prints strict comparators).
    plant, indicators, evidence = demo_inputs
    indicators = with_row(indicators, "emissions.air.multiple_of_c", value=0.8)
    assert run(standard, plant, indicators, evidence).row("emissions.air.multiple_of_c").tier == 3
    # Exactly 120 kgce/t is ≤120: tier 2 (Table 5 prints ≤).
    indicators = with_row(indicators, "energy.pipe.kgce_per_t", value=120.0)
    assert run(standard, plant, indicators, evidence).row("energy.pipe.kgce_per_t").tier == 2


def test_a_row_below_tier_3_is_a_scored_zero_not_missing(standard, demo_inputs):
    r = run(standard, *demo_inputs).row("energy.water.reclaimed_share")
    assert r.status == scorer.STATUS_SCORED
    assert r.tier is None and r.li == 0 and r.points == 0
    # Its next tier is tier 3 (≥5 %), and the gap's candidate moves include it.
    assert r.next_tier.tier == 3
