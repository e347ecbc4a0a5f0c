"""The shipped standard file against the printed standard: structure, weights, errata.

Every expected number below is read off T/CFA 0308011.5-2024 (seeds/002_…txt) by hand, or
derived from it by the errata decisions of domain.md §4, as each comment says. None is copied
from the loader's output.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from greenfoundry.scoring.standard import DEFAULT_ID, load_standard


@pytest.fixture(scope="module")
def std():
    return load_standard()


def test_default_id_and_lookup_by_id_load_the_same_file(std):
    assert std.id == DEFAULT_ID == "t-cfa-0308011.5-2024"
    assert load_standard(DEFAULT_ID).path == std.path
    assert std.path.name == "t-cfa-0308011.5-2024.yaml"


def test_structure_is_7_first_level_and_33_second_level(std):
    # Clause 5.1.2: 一级指标 … 共 7 项；二级指标 33 项 (Table 1 lists 2+4+9+6+5+4+3 = 33).
    assert len(std.groups) == 7
    assert len(std.indicators) == 33
    assert [len(g.indicators) for g in std.groups] == [2, 4, 9, 6, 5, 4, 3]


def test_weights_in_force_sum_to_exactly_1000(std):
    # Clause 5.1.1: 本文件分值共计 1000 分. Summed as exact fractions, because E3 scales the
    # occupational-disease rows by 60/70 (10 -> 60/7, 5 -> 30/7), which floats cannot hold.
    total = sum((r.points_exact for r in std.rows.values()), Fraction(0))
    assert total == Fraction(1000)
    assert std.total_points == 1000


def test_first_level_points_are_table_1(std):
    # Table 1 column 分值: 50, 100, 200, 200, 200, 150, 100.
    assert [(g.id, g.points) for g in std.groups] == [
        ("scale", 50),
        ("techeco", 100),
        ("process", 200),
        ("energy", 200),
        ("emissions", 200),
        ("ohs", 150),
        ("mgmt", 100),
    ]


def test_second_level_points_in_force(std):
    # Table 1 second-level points, except where an erratum decides otherwise:
    # - section 3 (E1): Tables 4 and B.1 rule: design 20, melting 40, moulding 30,
    #   centrifugal 20, moulds 20 (Table 1 prints 20, 20, 20, 40, 30);
    # - section 6 (E3): Table 1 rules: 60, 40, 30, 20 (Table 7 rows print 70, 30, 30, 30).
    want = {
        "scale.output": 20, "scale.sales": 30,
        "techeco.productivity": 20, "techeco.quality": 30, "techeco.scrap": 30, "techeco.yield": 20,
        "process.design": 20, "process.melting": 40, "process.moulding": 30,
        "process.centrifugal": 20, "process.moulds": 20, "process.cleaning": 20,
        "process.quality_equipment": 10, "process.utilities": 20, "process.pollution_equipment": 20,
        "energy.pipe": 60, "energy.liquid_iron": 30, "energy.sand_waste": 50,
        "energy.heat_recovery": 20, "energy.water": 20, "energy.power_factor": 20,
        "emissions.air": 120, "emissions.voc": 20, "emissions.water": 20, "emissions.noise": 20,
        "emissions.solid_waste": 20,
        "ohs.occupational_disease": 60, "ohs.injury": 40, "ohs.major_accident": 30,
        "ohs.safety_standardisation": 20,
        "mgmt.systems": 30, "mgmt.digital": 20, "mgmt.tools": 50,
    }  # fmt: skip
    assert {i.id: i.points for i in std.indicators.values()} == want


def test_each_indicator_rows_sum_to_its_points_in_force(std):
    for ind in std.indicators.values():
        assert sum(r.points_exact for r in ind.rows) == ind.points, ind.id


def test_table_7_occupational_disease_rows_are_scaled_by_six_sevenths(std):
    # Table 7 prints 10 for five rates and 5 for four rows (70 points); E3 keeps Table 1's 60,
    # so 10 -> 10 * 60/70 = 60/7 and 5 -> 30/7.
    rows = std.indicators["ohs.occupational_disease"].rows
    assert [r.points_printed for r in rows] == [10, 10, 10, 10, 10, 5, 5, 5, 5]
    assert [r.points_exact for r in rows] == [Fraction(60, 7)] * 5 + [Fraction(30, 7)] * 4
    assert all(r.status == "corrected" and "E3" in r.decisions for r in rows)
    # Injury prevention: printed 30, Table 1 40; safety standardisation: printed 30, Table 1 20.
    assert std.rows["ohs.injury.minor_injury_rate"].points == 40
    assert std.rows["ohs.safety_standardisation.level"].points == 20


def test_table_d1_rows_sum_to_50(std):
    # Table D.1 as printed: 2+2+5+5+4+2+2+2+4+3+3+2+3+3+4+4 = 50 (the plot ratio's "3[1]" as 3).
    rows = std.indicators["mgmt.tools"].rows
    assert [r.points_printed for r in rows] == [2, 2, 5, 5, 4, 2, 2, 2, 4, 3, 3, 2, 3, 3, 4, 4]


def test_table_b1_pollution_equipment_sub_points(std):
    # Table B.1, 污染治理及健康安全防护设备: 5, 3, 2, 5, 5 = 20.
    assert [r.points for r in std.indicators["process.pollution_equipment"].rows] == [5, 3, 2, 5, 5]


def test_every_errata_item_of_domain_md_is_a_decision(std):
    # domain.md §4 lists six errata; each must be a decision with a reason, beside the tables.
    for eid in ("E1", "E2", "E3", "E4", "E5", "E6"):
        d = std.decision(eid)
        assert d.decision and d.reason and d.affects
    assert std.decision("E2").decision.startswith("200")


def test_table_c1_open_questions_are_decisions(std):
    for did in ("D-c1-unit", "D-c1-note3", "D-c1-note4-cupola", "D-c1-outside", "D-c1-kgce"):
        assert std.decision(did).reason
    table = std.furnace_table
    assert table.kwh_to_kgce == 0.1229  # GB/T 2589 equivalent value, domain.md §2
    assert table.options["note4_cupola"] == "skip"


def test_grades_are_table_9(std):
    # Table 9: F ≥ 900 level 1; 750 ≤ F < 900 level 2; 600 ≤ F < 750 level 3; below: none.
    assert [(g.level, g.min_f) for g in std.grades] == [(1, 900), (2, 750), (3, 600)]
    assert std.grade_for(900).level == 1
    assert std.grade_for(899.99).level == 2
    assert std.grade_for(750).level == 2
    assert std.grade_for(749.99).level == 3
    assert std.grade_for(600).level == 3
    assert std.grade_for(599.99) is None
    assert std.grade_for(900).name_zh == "铸造行业绿色工厂示范企业"


def test_li_policy_is_the_floor_of_clause_5_2_2(std):
    assert std.li_policy.floors == {1: 0.90, 2: 0.75, 3: 0.60}
    assert std.li_policy.li_floor(None) == 0.0


def test_every_row_is_complete(std):
    for row in std.rows.values():
        assert row.name_zh and row.name_en and row.source and row.unit, row.id
        assert row.kind in ("measured", "declared"), row.id
        assert row.status in ("as_printed", "interpreted", "corrected"), row.id
        assert row.variants or row.limits_from == "C.1", row.id


def test_checklist_rows_list_their_items(std):
    # Table B.1 lists 5, 15, 11 (item 3 missing, E5), 5, 4, 13 and 18 items.
    counts = {
        "process.design.checklist": 5,
        "process.melting.checklist": 15,
        "process.moulding.checklist": 11,
        "process.centrifugal.checklist": 5,
        "process.moulds.checklist": 4,
        "process.cleaning.checklist": 13,
        "process.quality_equipment.checklist": 18,
        "mgmt.tools.management_tools": 14,  # Table D.1
    }
    for rid, n in counts.items():
        assert len(std.rows[rid].items) == n, rid
    assert not any(i.startswith("3)") for i in std.rows["process.moulding.checklist"].items)


def test_an_unknown_decision_is_a_domain_error_naming_it(std):
    # A lookup by a name the standard does not have is the user's input, not a bug: one line.
    from greenfoundry.errors import InputError

    with pytest.raises(InputError, match="E99: no such decision"):
        std.decision("E99")
