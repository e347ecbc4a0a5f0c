"""Tier evaluation of every table, on and around each printed boundary.

Expected tiers are read by hand off T/CFA 0308011.5-2024 (seeds/002_…txt): the cell, its
comparator as printed, and the value placed exactly on, just inside or just outside it. Where a
cell is read through a decision (errata in the standard file) the comment names it. Li is the
floor of clause 5.2.2: 0.90 / 0.75 / 0.60, and 0 below tier 3.
"""

from __future__ import annotations

import pytest

from greenfoundry.scoring.standard import (
    NOT_APPLICABLE,
    STATUS_BELOW,
    STATUS_NO_DATA,
    STATUS_NOT_APPLICABLE,
    STATUS_NOT_COVERED,
    STATUS_TIER,
    ContextError,
    load_standard,
)


@pytest.fixture(scope="module")
def std():
    return load_standard()


def tier(std, row_id, value, **context):
    ev = std.rows[row_id].evaluate(value, context)
    assert ev.status in (STATUS_TIER, STATUS_BELOW), ev
    return ev.tier


# --------------------------------------------------------------------------- Table 2


@pytest.mark.parametrize(
    ("product", "value", "want"),
    [
        # 球墨铸铁管 ≥30 ≥20 ≥10 (万吨/年)
        ("ductile", 30, 1), ("ductile", 29.99, 2), ("ductile", 20, 2), ("ductile", 19.99, 3),
        ("ductile", 10, 3), ("ductile", 9.99, None),
        # 灰铸铁管 ≥4 ≥3 ≥2
        ("gray", 4, 1), ("gray", 3.99, 2), ("gray", 3, 2), ("gray", 2, 3), ("gray", 1.99, None),
    ],
)  # fmt: skip
def test_table_2_output(std, product, value, want):
    assert tier(std, "scale.output.annual_output", value, product=product) == want


@pytest.mark.parametrize(
    ("product", "value", "want"),
    [
        # 球墨铸铁管 ≥150000 ≥100000 ≥50000; 灰铸铁管 ≥20 000 ≥15 000 ≥10 000 (万元/年)
        ("ductile", 150000, 1), ("ductile", 149999, 2), ("ductile", 50000, 3),
        ("ductile", 49999, None), ("gray", 20000, 1), ("gray", 19999, 2), ("gray", 15000, 2),
        ("gray", 10000, 3), ("gray", 9999, None),
    ],
)  # fmt: skip
def test_table_2_sales(std, product, value, want):
    assert tier(std, "scale.sales.annual_sales", value, product=product) == want


# --------------------------------------------------------------------------- Table A.1


def test_table_a1_productivity(std):
    # 灰铸铁管 ≥120 ≥100 ≥80 t/人·年; 球墨铸铁管 ≥500 ≥400 ≥300 (Table A.1 rules, D-a1-rules).
    row = "techeco.productivity.tonnes_per_person"
    assert tier(std, row, 120, product="gray") == 1
    assert tier(std, row, 119.9, product="gray") == 2
    assert tier(std, row, 80, product="gray") == 3
    assert tier(std, row, 79.9, product="gray") is None
    assert tier(std, row, 400, product="ductile") == 2
    # 人均产值 灰 ≥90 ≥70 ≥50; 球 ≥250 ≥200 ≥150 (万元/人·年)
    row = "techeco.productivity.output_per_person"
    assert tier(std, row, 50, product="gray") == 3
    assert tier(std, row, 250, product="ductile") == 1
    assert tier(std, row, 149.9, product="ductile") is None


def test_table_a1_online_inspection_rate(std):
    # 铸铁管 100 ≥96 ≥94; the bare "100" is read as ≥ 100 (D-full-rate).
    row = "techeco.quality.online_inspection_rate"
    assert tier(std, row, 100) == 1
    assert tier(std, row, 99.9) == 2
    assert tier(std, row, 96) == 2
    assert tier(std, row, 95.9) == 3
    assert tier(std, row, 94) == 3
    assert tier(std, row, 93.9) is None


@pytest.mark.parametrize(
    ("product", "dn", "value", "want"),
    [
        # 灰铸铁管 ≥98 ≥94 ≥92 (no DN needed)
        ("gray", None, 98, 1), ("gray", None, 97.9, 2), ("gray", None, 92, 3),
        ("gray", None, 91.9, None),
        # 球 DN80-300 ≥97 ≥95 ≥93: both ends of the range
        ("ductile", 80, 97, 1), ("ductile", 300, 97, 1), ("ductile", 300, 93, 3),
        ("ductile", 300, 92.9, None),
        # 球 DN350-1000 ≥99 ≥97 ≥95: 97 is tier 2 here, 93 below
        ("ductile", 350, 97, 2), ("ductile", 1000, 99, 1), ("ductile", 1000, 93, None),
        # 球 DN 1000以上 ≥99 ≥97 ≥93 (read as > 1000, D-dn): 93 is tier 3 here
        ("ductile", 1100, 93, 3), ("ductile", 2600, 98.9, 2),
    ],
)  # fmt: skip
def test_table_a1_hydro_first_pass_by_dn(std, product, dn, value, want):
    ctx = {"product": product} if dn is None else {"product": product, "dn": dn}
    assert tier(std, "techeco.quality.hydro_first_pass", value, **ctx) == want


@pytest.mark.parametrize(
    ("dn", "value", "want"),
    [
        # 铸铁管一次检验合格率 球: DN80-300 ≥95 ≥93 ≥91; DN350-1000 ≥96 ≥94 ≥92; >1000 ≥97 ≥95 ≥93
        (100, 95, 1), (100, 91, 3), (100, 90.9, None),
        (600, 95, 2), (600, 92, 3), (600, 91.9, None),
        (1200, 96, 2), (1200, 93, 3), (1200, 92.9, None),
    ],
)  # fmt: skip
def test_table_a1_pipe_first_pass_by_dn(std, dn, value, want):
    assert tier(std, "techeco.quality.pipe_first_pass", value, product="ductile", dn=dn) == want


def test_dn_outside_every_range_is_not_covered(std):
    # Printed ranges: DN80-300, DN350-1000, DN1000以上. DN 60 and DN 320 are in none (D-dn).
    row = std.rows["techeco.quality.hydro_first_pass"]
    for dn in (60, 79, 301, 320, 349):
        ev = row.evaluate(99, {"product": "ductile", "dn": dn})
        assert ev.status == STATUS_NOT_COVERED and ev.tier is None and ev.li_floor is None
        assert "techeco.quality.hydro_first_pass" in ev.reason


def test_missing_dn_names_the_row_and_key(std):
    with pytest.raises(
        ContextError, match=r"rows\[techeco\.quality\.hydro_first_pass\]\.context\.dn: missing"
    ):
        std.rows["techeco.quality.hydro_first_pass"].evaluate(99, {"product": "ductile"})


def test_table_a1_scrap_and_yield(std):
    # 综合废品率 灰 ≤4 ≤6 ≤8; 球 ≤6 ≤8 ≤10 (%): lower is better, boundary included.
    row = "techeco.scrap.scrap_rate"
    assert tier(std, row, 4, product="gray") == 1
    assert tier(std, row, 4.01, product="gray") == 2
    assert tier(std, row, 8, product="gray") == 3
    assert tier(std, row, 8.01, product="gray") is None
    assert tier(std, row, 6, product="ductile") == 1
    assert tier(std, row, 10, product="ductile") == 3
    assert tier(std, row, 10.01, product="ductile") is None
    # 工艺出品率 灰 ≥90 ≥87 ≥85; 球 ≥92 ≥90 ≥88
    row = "techeco.yield.process_yield"
    assert tier(std, row, 90, product="gray") == 1
    assert tier(std, row, 90, product="ductile") == 2
    assert tier(std, row, 87.99, product="ductile") is None


# --------------------------------------------------------------------------- Table B.1


@pytest.mark.parametrize(
    ("row", "value", "want"),
    [
        # 设计: 4 项达标 / 3 / 2 of 5 (D-checklist: "≥ N")
        ("process.design.checklist", 5, 1), ("process.design.checklist", 4, 1),
        ("process.design.checklist", 3, 2), ("process.design.checklist", 2, 3),
        ("process.design.checklist", 1, None),
        # 熔炼: 13 项及以上 / 11 项及以上 / 9 项
        ("process.melting.checklist", 13, 1), ("process.melting.checklist", 12, 2),
        ("process.melting.checklist", 11, 2), ("process.melting.checklist", 10, 3),
        ("process.melting.checklist", 9, 3), ("process.melting.checklist", 8, None),
        # 铸型: 10 / 8 / 5 of 11 (E5)
        ("process.moulding.checklist", 11, 1), ("process.moulding.checklist", 10, 1),
        ("process.moulding.checklist", 9, 2), ("process.moulding.checklist", 5, 3),
        ("process.moulding.checklist", 4, None),
        # 离心: 4 / 3 / 2; 模具: 3 / 2 / 1
        ("process.centrifugal.checklist", 2, 3), ("process.centrifugal.checklist", 1, None),
        ("process.moulds.checklist", 1, 3), ("process.moulds.checklist", 0, None),
        # 清理: 12 / 10 / 9; 质量监控: 15 / 13 / 11
        ("process.cleaning.checklist", 12, 1), ("process.cleaning.checklist", 9, 3),
        ("process.cleaning.checklist", 8, None),
        ("process.quality_equipment.checklist", 14, 2),
        ("process.quality_equipment.checklist", 10, None),
    ],
)  # fmt: skip
def test_table_b1_checklists(std, row, value, want):
    assert tier(std, row, value) == want


def test_table_b1_levels(std):
    # 国内领先至国际先进水平 / 国内先进至领先水平 / 国内较先进至先进水平 (D-levels).
    row = "process.utilities.level"
    assert tier(std, row, "leading_to_international") == 1
    assert tier(std, row, "advanced_to_leading") == 2
    assert tier(std, row, "fairly_advanced_to_advanced") == 3
    assert tier(std, row, "below") is None
    with pytest.raises(ContextError, match="expected a level of scale advancement"):
        std.rows[row].evaluate("world_class")


# --------------------------------------------------------------------------- Table 5


@pytest.mark.parametrize(
    ("source", "value", "want"),
    [
        # 灰铸铁管 接收高炉/冲天炉铁液开始 ＜300 ≤330 ≤350: mixed comparators as printed
        ("blast_furnace_or_cupola", 299.9, 1), ("blast_furnace_or_cupola", 300, 2),
        ("blast_furnace_or_cupola", 330, 2), ("blast_furnace_or_cupola", 330.1, 3),
        ("blast_furnace_or_cupola", 350, 3), ("blast_furnace_or_cupola", 350.1, None),
        # 接收中频电炉铁液开始 ＜150 ≤170 ≤200
        ("medium_frequency_furnace", 149.9, 1), ("medium_frequency_furnace", 150, 2),
        ("medium_frequency_furnace", 170, 2), ("medium_frequency_furnace", 200, 3),
        ("medium_frequency_furnace", 200.1, None),
    ],
)  # fmt: skip
def test_table_5_gray_pipe_energy(std, source, value, want):
    row = "energy.pipe.kgce_per_t"
    assert tier(std, row, value, product="gray", iron_source=source) == want


def test_table_5_ductile_pipe_energy(std):
    # 球墨铸铁管 ≤100 ≤120 ≤140: the boundary is in the tier; no iron_source needed.
    row = "energy.pipe.kgce_per_t"
    assert tier(std, row, 100, product="ductile") == 1
    assert tier(std, row, 100.1, product="ductile") == 2
    assert tier(std, row, 120, product="ductile") == 2
    assert tier(std, row, 140, product="ductile") == 3
    assert tier(std, row, 140.1, product="ductile") is None


def test_table_5_sand_heat_water(std):
    assert tier(std, "energy.sand_waste.resin_sand_reuse", 95) == 1  # ≥95 ≥92 ≥90
    assert tier(std, "energy.sand_waste.resin_sand_reuse", 91.9) == 3
    assert tier(std, "energy.sand_waste.sand_slag_use", 80) == 3  # ≥95 ≥90 ≥80
    assert tier(std, "energy.sand_waste.sand_slag_use", 79.9) is None
    assert tier(std, "energy.sand_waste.metal_returns", 100) == 1  # ≥100 ≥95 ≥90
    assert tier(std, "energy.sand_waste.metal_returns", 99.9) == 2
    assert tier(std, "energy.heat_recovery.rate", 40) == 2  # ≥60 ≥40 ≥20
    assert tier(std, "energy.heat_recovery.rate", 19.9) is None
    assert tier(std, "energy.water.cooling_recirculation", 98) == 1  # ≥98 ≥95 ≥90
    assert tier(std, "energy.water.cooling_recirculation", 97.9) == 2
    assert tier(std, "energy.water.cooling_recirculation", 89.9) is None
    # ≥90 ≥85 ≥80, printed once for both wastewater rows
    for row in ("energy.water.process_wastewater_reuse", "energy.water.coating_wastewater_reuse"):
        assert tier(std, row, 85) == 2
        assert tier(std, row, 79.9) is None
    assert tier(std, "energy.water.reclaimed_share", 7) == 2  # ≥10% ≥7% ≥5%
    assert tier(std, "energy.water.reclaimed_share", 4.9) is None


@pytest.mark.parametrize(
    ("value", "want"),
    [
        # printed 0.99～0.95 / 0.94～0.92 / 0.91～0.90, read as ≥0.95 / ≥0.92 / ≥0.90
        # (D-power-factor): 1.00 and 0.945 would otherwise fall in no column.
        (1.00, 1), (0.99, 1), (0.95, 1), (0.945, 2), (0.94, 2), (0.92, 2), (0.915, 3),
        (0.90, 3), (0.899, None),
    ],
)  # fmt: skip
def test_table_5_power_factor(std, value, want):
    assert tier(std, "energy.power_factor.power_factor", value) == want


# --------------------------------------------------------------------------- Table 6


@pytest.mark.parametrize(
    ("row", "value", "want"),
    [
        # ＜0.6C ＜0.8C ＜C: strict, so the boundary itself falls to the next tier
        ("emissions.air.multiple_of_c", 0.59, 1), ("emissions.air.multiple_of_c", 0.6, 2),
        ("emissions.air.multiple_of_c", 0.8, 3), ("emissions.air.multiple_of_c", 0.99, 3),
        ("emissions.air.multiple_of_c", 1.0, None),
        ("emissions.water.multiple_of_d", 0.6, 2), ("emissions.water.multiple_of_d", 1.0, None),
    ],
)  # fmt: skip
def test_table_6_air_and_water(std, row, value, want):
    assert tier(std, row, value) == want


@pytest.mark.parametrize(
    ("residential", "value", "want"),
    [
        # 有居民区 ＜0.6E ＜0.8E ＜E; 无居民区 ＜0.9E ＜0.95E ＜E
        (True, 0.59, 1), (True, 0.6, 2), (True, 0.8, 3), (True, 1.0, None),
        (False, 0.6, 1), (False, 0.89, 1), (False, 0.9, 2), (False, 0.95, 3), (False, 1.0, None),
    ],
)  # fmt: skip
def test_table_6_noise(std, residential, value, want):
    row = "emissions.noise.multiple_of_e"
    assert tier(std, row, value, residential_within_1200m=residential) == want


def test_table_6_noise_needs_the_residential_context(std):
    with pytest.raises(ContextError, match="residential_within_1200m"):
        std.rows["emissions.noise.multiple_of_e"].evaluate(0.5, {})


def test_table_6_voc(std):
    # 使用水性涂料 VOC<1% / <5% / <10%: the VOC threshold with the water-based condition.
    row = "emissions.voc.voc_content"
    assert tier(std, row, 0.99, water_based_coating=True) == 1
    assert tier(std, row, 1, water_based_coating=True) == 2
    assert tier(std, row, 9.99, water_based_coating=True) == 3
    assert tier(std, row, 10, water_based_coating=True) is None
    ev = std.rows[row].evaluate(0.5, {"water_based_coating": False})
    assert ev.status == STATUS_BELOW and ev.li_floor == 0.0 and "使用水性涂料" in ev.reason


@pytest.mark.parametrize(
    ("years", "want"),
    [
        # ＞10年 ＞5 年 ＜5 年, the gap at exactly 5 closed into tier 3 (D-years)
        (11, 1), (10.01, 1), (10, 2), (5.01, 2), (5, 3), (4.99, 3), (0, 3),
    ],
)  # fmt: skip
def test_table_6_years_without_penalty(std, years, want):
    assert tier(std, "emissions.solid_waste.years_without_penalty", years) == want


# --------------------------------------------------------------------------- Table 7


def test_table_7_rates(std):
    assert tier(std, "ohs.occupational_disease.dust_compliance", 80) == 1  # ≥80 ≥70 ≥60
    assert tier(std, "ohs.occupational_disease.dust_compliance", 59.9) is None
    assert tier(std, "ohs.occupational_disease.gas_compliance", 85) == 2  # ≥90 ≥85 ≥80
    assert tier(std, "ohs.occupational_disease.noise_compliance", 60) == 3  # ≥80 ≥70 ≥60
    assert tier(std, "ohs.occupational_disease.hazard_monitoring", 98) == 1  # ≥98 ≥85 ≥60
    assert tier(std, "ohs.occupational_disease.hazard_monitoring", 84.9) == 3
    assert tier(std, "ohs.occupational_disease.health_check_completion", 79.9) is None
    assert tier(std, "ohs.occupational_disease.health_check_quality", 95) == 1
    assert tier(std, "ohs.occupational_disease.injury_insurance", 60) == 3


def test_table_7_ppe_single_column(std):
    # "100%" printed once across the columns: 100 meets tier 1, anything less none (D-single).
    row = std.rows["ohs.occupational_disease.ppe_compliance"]
    assert row.evaluate(100).tier == 1
    ev = row.evaluate(99.9)
    assert ev.tier is None and ev.li_floor == 0.0
    assert ev.next_tier.tier == 1 and ev.next_tier.value == 100


def test_table_7_disease_rate_per_mille(std):
    # ＜0.2‰ ＜0.5‰ ＜1‰ (E6: the unit is ‰, not the header's %).
    row = "ohs.occupational_disease.disease_rate"
    assert std.rows[row].unit == "‰"
    assert tier(std, row, 0.19) == 1
    assert tier(std, row, 0.2) == 2
    assert tier(std, row, 0.5) == 3
    assert tier(std, row, 1) is None


def test_table_7_injury(std):
    # 无重伤以上事故发生，每年轻伤事故起数 ＜1‰ / ＜2‰ / ＜3‰
    row = "ohs.injury.minor_injury_rate"
    assert tier(std, row, 0.99, no_serious_injury=True) == 1
    assert tier(std, row, 1, no_serious_injury=True) == 2
    assert tier(std, row, 2.99, no_serious_injury=True) == 3
    assert tier(std, row, 3, no_serious_injury=True) is None
    assert tier(std, row, 0, no_serious_injury=False) is None
    with pytest.raises(ContextError, match="no_serious_injury"):
        std.rows[row].evaluate(0.5, {})


def test_table_7_major_incident_and_safety_level(std):
    assert tier(std, "ohs.major_accident.no_major_incident", True) == 1  # D-no-criteria
    assert tier(std, "ohs.major_accident.no_major_incident", False) is None
    row = "ohs.safety_standardisation.level"
    assert tier(std, row, "level_1") == 1
    assert tier(std, row, "level_2") == 2
    assert tier(std, row, "level_3") == 3
    assert tier(std, row, "none") is None


# --------------------------------------------------------------------------- Table 8 / D.1


def test_table_8_levels(std):
    # 四体系: 有效实施且绩效显著 / 有效实施 / 有效实施 -> "effective" meets column 2
    # (D-repeated-level).
    assert tier(std, "mgmt.systems.four_systems", "effective_significant") == 1
    assert tier(std, "mgmt.systems.four_systems", "effective") == 2
    assert tier(std, "mgmt.systems.four_systems", "none") is None
    assert tier(std, "mgmt.digital.level", "mes") == 1
    assert tier(std, "mgmt.digital.level", "erp") == 2
    assert tier(std, "mgmt.digital.level", "basic") == 3


def test_table_d1(std):
    # 管理工具 11 / 9 / 7 项 of 14
    assert tier(std, "mgmt.tools.management_tools", 11) == 1
    assert tier(std, "mgmt.tools.management_tools", 8) == 3
    assert tier(std, "mgmt.tools.management_tools", 6) is None
    # 全员培训达标率 100 % / 90 %以上 / 70 %以上 (以上 inclusive, D-yishang)
    assert tier(std, "mgmt.tools.training_rate", 100) == 1
    assert tier(std, "mgmt.tools.training_rate", 90) == 2
    assert tier(std, "mgmt.tools.training_rate", 70) == 3
    assert tier(std, "mgmt.tools.training_rate", 69.9) is None
    # 投入占总投资额比例 ＞5% / ＞3% / ＞2%: strict
    assert tier(std, "mgmt.tools.env_investment", 5.01) == 1
    assert tier(std, "mgmt.tools.env_investment", 5) == 2
    assert tier(std, "mgmt.tools.env_investment", 3) == 3
    assert tier(std, "mgmt.tools.env_investment", 2) is None
    # 环保评级 A / B / B
    assert tier(std, "mgmt.tools.pollution_grade", "a") == 1
    assert tier(std, "mgmt.tools.pollution_grade", "b") == 2
    assert tier(std, "mgmt.tools.pollution_grade", "c") is None
    # 部门设置: 专职 text over columns 1-2, 专/兼职 column 3
    assert tier(std, "mgmt.tools.staffing", "full_time") == 1
    assert tier(std, "mgmt.tools.staffing", "part_time") == 3
    # 厂区容积率 ≥20 ≥15 ≥10
    assert tier(std, "mgmt.tools.plot_ratio", 15) == 2
    assert tier(std, "mgmt.tools.plot_ratio", 9.9) is None
    # Single requirements across all columns (D-single): all listed items, or 100 %.
    assert tier(std, "mgmt.tools.hazardous_waste", 5) == 1
    assert tier(std, "mgmt.tools.hazardous_waste", 4) is None
    assert tier(std, "mgmt.tools.emergency_management", 8) == 1
    assert tier(std, "mgmt.tools.emergency_management", 7) is None
    assert tier(std, "mgmt.tools.equipment_uptime", 100) == 1
    assert tier(std, "mgmt.tools.equipment_uptime", 99.5) is None
    assert tier(std, "mgmt.tools.general_waste", True) == 1


# --------------------------------------------------------------------------- results


def test_li_floor_per_tier(std):
    row = std.rows["energy.water.cooling_recirculation"]  # ≥98 ≥95 ≥90
    assert [row.evaluate(v).li_floor for v in (98, 95, 90, 80)] == [0.90, 0.75, 0.60, 0.0]


def test_no_data_not_applicable_and_below_are_distinct(std):
    row = std.rows["energy.water.cooling_recirculation"]
    assert row.evaluate(None).status == STATUS_NO_DATA
    assert row.evaluate(None).li_floor is None
    na = row.evaluate(NOT_APPLICABLE)
    assert na.status == STATUS_NOT_APPLICABLE and na.tier is None and na.li_floor is None
    below = row.evaluate(10)
    assert below.status == STATUS_BELOW and below.li_floor == 0.0


def test_next_threshold_for_gap_analysis(std):
    # ＜300 ≤330 ≤350: at 320 (tier 2) the next cell is tier 1 ＜300; at 360 (none) tier 3 ≤350.
    row = std.rows["energy.pipe.kgce_per_t"]
    ctx = {"product": "gray", "iron_source": "blast_furnace_or_cupola"}
    nxt = row.next_threshold(320, ctx)
    assert (nxt.tier, nxt.cmp, nxt.value, nxt.printed) == (1, "<", 300, "＜300")
    nxt = row.next_threshold(360, ctx)
    assert (nxt.tier, nxt.cmp, nxt.value) == (3, "≤", 350)
    assert row.next_threshold(290, ctx) is None


def test_values_of_the_wrong_type_are_refused(std):
    with pytest.raises(ContextError, match=r"energy\.water\.cooling_recirculation"):
        std.rows["energy.water.cooling_recirculation"].evaluate(True)
    with pytest.raises(ContextError, match=r"ohs\.major_accident\.no_major_incident"):
        std.rows["ohs.major_accident.no_major_incident"].evaluate(1)
    with pytest.raises(
        ContextError,
        match=r"context\.product: 'steel' is not allowed; expected one of gray, ductile",
    ):
        std.rows["techeco.scrap.scrap_rate"].evaluate(5, {"product": "steel"})


def test_table_c1_row_through_the_standard(std):
    # Induction ductile ＜200 ＜250 ＜300 kWh/t, DN600 (specified 1450 °C), tapping 1460 °C:
    # note 2 adds 10 × 0.6 = 6 -> ＜206 ＜256 ＜306. 206 is not < 206, so tier 2.
    row = std.rows["energy.liquid_iron.energy_per_t"]
    ctx = {
        "furnace_kind": "induction",
        "furnace_capacity": 12,
        "product": "ductile",
        "dn": 600,
        "tap_temp_c": 1460,
    }
    assert row.evaluate(205.9, ctx).tier == 1
    ev = row.evaluate(206, ctx)
    assert ev.tier == 2 and ev.variant == "induction-ductile"
    assert [t.value for t in ev.tiers] == [206, 256, 306]
    assert any(n.startswith("note 2") for n in ev.notes)
    ctx["furnace_capacity"] = 5  # induction ≤ 5 t: no row
    assert row.evaluate(150, ctx).status == STATUS_NOT_COVERED
    with pytest.raises(ContextError, match="furnace_capacity"):
        row.evaluate(150, {"furnace_kind": "cupola", "product": "gray"})


def test_table_c1_row_says_its_unit(std):
    # D-c1-unit: the value of the liquid-iron row is kgce/t for a cupola, kWh/t for induction.
    row = std.rows["energy.liquid_iron.energy_per_t"]
    cupola = row.evaluate(
        100, {"furnace_kind": "cupola", "furnace_capacity": 12, "product": "gray"}
    )
    assert cupola.notes[0].endswith("value in kgce/t") and cupola.variant == "cupola-10"
    induction = row.evaluate(
        100, {"furnace_kind": "induction", "furnace_capacity": 12, "product": "gray"}
    )
    assert induction.notes[0].endswith("value in kWh/t")
