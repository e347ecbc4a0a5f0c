"""The loader refuses a malformed standard file with one message that names the row.

Each test takes the shipped file, breaks one thing, and checks the error names the file, the
key path (a row as `rows[<row id>]`, a variant as `…variants[<id>]`) and the problem. The last tests load another part of the standard from a new file, to show that a
part is data and needs no code.
"""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from greenfoundry.errors import ConfigError
from greenfoundry.scoring.standard import load_standard, standard_path


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(standard_path().read_text(encoding="utf-8"))


def find_row(data, row_id):
    for g in data["groups"]:
        for ind in g["indicators"]:
            for row in ind["rows"]:
                if row["id"] == row_id:
                    return row
    raise KeyError(row_id)


def find_indicator(data, ind_id):
    for g in data["groups"]:
        for ind in g["indicators"]:
            if ind["id"] == ind_id:
                return ind
    raise KeyError(ind_id)


def load_broken(tmp_path, data):
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_standard(path)


def broken(raw, change):
    data = copy.deepcopy(raw)
    change(data)
    return data


def test_the_unchanged_copy_loads(tmp_path, raw):
    # A control: the round trip through safe_dump alone must not break anything.
    assert len(load_broken(tmp_path, copy.deepcopy(raw)).rows) == 68


def test_unknown_key_in_a_row(tmp_path, raw):
    data = broken(raw, lambda d: find_row(d, "energy.pipe.kgce_per_t").update(treshold=3))
    with pytest.raises(
        ConfigError, match=r"broken\.yaml: rows\[energy\.pipe\.kgce_per_t\]\.treshold: unknown key"
    ):
        load_broken(tmp_path, data)


def test_unknown_key_at_top_level(tmp_path, raw):
    data = broken(raw, lambda d: d.update(weights={}))
    with pytest.raises(
        ConfigError, match=r"broken\.yaml: weights: unknown key; allowed here: context_keys"
    ):
        load_broken(tmp_path, data)


def test_thresholds_out_of_order(tmp_path, raw):
    def swap(d):
        tiers = find_row(d, "energy.water.cooling_recirculation")["tiers"]
        tiers[0].update(value=95, printed="≥95")
        tiers[1].update(value=98, printed="≥98")

    with pytest.raises(
        ConfigError,
        match=r"rows\[energy\.water\.cooling_recirculation\]: .*out of order.*\[95, 98, 90\]",
    ):
        load_broken(tmp_path, broken(raw, swap))


def test_lower_is_better_out_of_order(tmp_path, raw):
    def swap(d):
        tiers = find_row(d, "techeco.scrap.scrap_rate")["variants"][0]["tiers"]
        tiers[2].update(value=5, printed="≤5")

    with pytest.raises(
        ConfigError, match=r"rows\[techeco\.scrap\.scrap_rate\]\.variants\[gray\]: .*out of order"
    ):
        load_broken(tmp_path, broken(raw, swap))


def test_mixed_directions(tmp_path, raw):
    def mix(d):
        find_row(d, "energy.heat_recovery.rate")["tiers"][2].update(cmp="≤", printed="≤20")

    with pytest.raises(ConfigError, match=r"energy\.heat_recovery\.rate.*mix directions"):
        load_broken(tmp_path, broken(raw, mix))


def test_unknown_comparator(tmp_path, raw):
    def bad(d):
        find_row(d, "energy.heat_recovery.rate")["tiers"][0]["cmp"] = "=>"

    with pytest.raises(
        ConfigError,
        match=r"rows\[energy\.heat_recovery\.rate\]\.tiers\[0\]\.cmp: '=>' is not allowed",
    ):
        load_broken(tmp_path, broken(raw, bad))


def test_evaluated_cell_must_match_the_printed_one(tmp_path, raw):
    # ≥60 printed, 61 evaluated, and no decision cited: refused.
    def drift(d):
        find_row(d, "energy.heat_recovery.rate")["tiers"][0]["value"] = 61

    with pytest.raises(ConfigError, match=r"energy\.heat_recovery\.rate.*printed '≥60'"):
        load_broken(tmp_path, broken(raw, drift))


def test_printed_comparator_must_match_too(tmp_path, raw):
    # ＜300 printed (Table 5) but evaluated as ≤300: refused, the boundary would move.
    def drift(d):
        find_row(d, "energy.pipe.kgce_per_t")["variants"][0]["tiers"][0]["cmp"] = "≤"

    with pytest.raises(
        ConfigError,
        match=r"rows\[energy\.pipe\.kgce_per_t\]\.variants\[gray-bf-cupola\]\.tiers\[0\]",
    ):
        load_broken(tmp_path, broken(raw, drift))


def test_a_cited_decision_must_exist(tmp_path, raw):
    def cite(d):
        find_row(d, "energy.power_factor.power_factor")["decisions"] = ["D-nowhere"]

    with pytest.raises(
        ConfigError,
        match=r"power_factor\]\.decisions: 'D-nowhere' is not allowed; expected the id of a decision",
    ):
        load_broken(tmp_path, broken(raw, cite))


def test_row_points_must_sum_to_the_indicator(tmp_path, raw):
    data = broken(raw, lambda d: find_row(d, "energy.water.reclaimed_share").update(points=6))
    with pytest.raises(
        ConfigError, match=r"indicators\[energy\.water\]: rows sum to 21 .* 20 in force"
    ):
        load_broken(tmp_path, data)


def test_scaling_rows_needs_a_decision(tmp_path, raw):
    # Table 7's occupational-disease rows print 70 against Table 1's 60; without E3 cited in
    # scale_rows the mismatch is an error.
    data = broken(raw, lambda d: find_indicator(d, "ohs.occupational_disease").pop("scale_rows"))
    with pytest.raises(
        ConfigError, match=r"indicators\[ohs\.occupational_disease\]: rows sum to 70 .* 60"
    ):
        load_broken(tmp_path, data)


def test_indicators_must_sum_to_the_group(tmp_path, raw):
    def move(d):
        find_indicator(d, "energy.water")["points"] = 25
        find_row(d, "energy.water.reclaimed_share")["points"] = 10

    with pytest.raises(ConfigError, match=r"groups\[energy\]: indicators sum to 205 points"):
        load_broken(tmp_path, broken(raw, move))


def test_total_must_be_total_points(tmp_path, raw):
    data = broken(raw, lambda d: d.update(total_points=999))
    with pytest.raises(ConfigError, match=r"groups sum to 1000 points, total_points is 999"):
        load_broken(tmp_path, data)


def test_structure_counts(tmp_path, raw):
    data = broken(raw, lambda d: d["structure"].update(second_level=34))
    with pytest.raises(ConfigError, match=r"34 second-level indicators, found 33"):
        load_broken(tmp_path, data)


def test_variant_context_must_be_declared(tmp_path, raw):
    def undeclared(d):
        find_row(d, "techeco.scrap.scrap_rate")["variants"][0]["when"] = {"dn": {"ge": 80}}

    with pytest.raises(
        ConfigError, match=r"scrap_rate\]\.variants\[gray\]\.when\.dn: 'dn' must be listed"
    ):
        load_broken(tmp_path, broken(raw, undeclared))


def test_duplicate_ids(tmp_path, raw):
    def dup(d):
        find_row(d, "energy.water.reclaimed_share")["id"] = "energy.water.cooling_recirculation"

    with pytest.raises(
        ConfigError,
        match=r"\.id: 'energy\.water\.cooling_recirculation' is not allowed; expected an id used once",
    ):
        load_broken(tmp_path, broken(raw, dup))


def test_table_c1_cell_must_match_its_print(tmp_path, raw):
    data = broken(raw, lambda d: d["furnace_table"]["rows"][1]["tiers"][0].update(value=121))
    with pytest.raises(
        ConfigError, match=r"furnace_table\.rows\[cupola-6-9\]\.tiers\[0\]: .*＜120"
    ):
        load_broken(tmp_path, data)


def test_unknown_standard_id_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=re.escape("t-cfa-0308011.5-2024")):
        load_standard("t-cfa-0308011.9-2099")


# --------------------------------------------------------------------------- another part

OTHER_PART = """
id: t-cfa-0308011.x-example
title_zh: 示例部分
title_en: An example part, to show that a part is one more file
total_points: 100
structure: {first_level: 1, second_level: 2}
li_policy: {floors: {1: 0.9, 2: 0.75, 3: 0.6}, below: 0.0, source: clause 5.2.2}
grades:
  - {level: 1, min_f: 90, name_zh: 示范, name_en: demonstration}
context_keys:
  product: {type: enum, values: [steel, iron], description: casting alloy}
errata:
  - {id: D-x, about: a bare number, decision: read as ≥, reason: a rate cannot exceed 100}
groups:
  - id: energy
    number: 1
    name_zh: 能源
    name_en: energy
    points: 100
    source: Table 1
    indicators:
      - id: energy.casting
        name_zh: 吨铸件综合能耗
        name_en: energy per tonne of castings
        points: 60
        source: Table 5
        rows:
          - id: energy.casting.kgce_per_t
            name_zh: 吨铸件综合能耗
            name_en: energy per tonne of castings
            points: 60
            unit: kgce/t
            kind: measured
            value_type: number
            source: Table 5 row 1
            context: [product]
            variants:
              - id: steel
                when: {product: steel}
                tiers:
                  - {tier: 1, cmp: "＜", value: 0, printed: "x"}
              - id: iron
                when: {product: iron}
                tiers:
                  - {tier: 1, cmp: "≤", value: 300, printed: "≤300"}
                  - {tier: 2, cmp: "≤", value: 400, printed: "≤400"}
      - id: energy.water
        name_zh: 水
        name_en: water reuse
        points: 40
        source: Table 5
        rows:
          - id: energy.water.reuse
            name_zh: 水重复利用率
            name_en: water reuse rate
            points: 40
            unit: "%"
            kind: measured
            value_type: percent
            source: Table 5 row 2
            tiers:
              - {tier: 1, cmp: "≥", value: 100, printed: "100", decision: D-x}
              - {tier: 2, cmp: "≥", value: 90, printed: "≥90"}
              - {tier: 3, cmp: "≥", value: 80, printed: "≥80"}
"""


def test_another_part_is_one_more_file(tmp_path):
    text = OTHER_PART.replace(
        '{tier: 1, cmp: "＜", value: 0, printed: "x"}',
        '{tier: 1, cmp: "≤", value: 500, printed: "≤500"}',
    )
    path = tmp_path / "t-cfa-0308011.x-example.yaml"
    path.write_text(text, encoding="utf-8")
    std = load_standard(path)
    assert std.id == "t-cfa-0308011.x-example"
    assert std.total_points == 100 and std.furnace_table is None
    row = std.rows["energy.casting.kgce_per_t"]
    assert row.evaluate(300, {"product": "iron"}).tier == 1
    assert row.evaluate(400.1, {"product": "iron"}).tier is None
    assert row.evaluate(500, {"product": "steel"}).tier == 1
    assert std.rows["energy.water.reuse"].evaluate(95).tier == 2
    assert std.grade_for(90).level == 1 and std.grade_for(89) is None


def test_another_part_is_validated_the_same_way(tmp_path):
    # The unedited text prints a full-width ＜ as the comparator, which is not one we evaluate.
    path = tmp_path / "other.yaml"
    path.write_text(OTHER_PART, encoding="utf-8")
    with pytest.raises(
        ConfigError,
        match=r"rows\[energy\.casting\.kgce_per_t\]\.variants\[steel\]\.tiers\[0\]\.cmp: '＜'",
    ):
        load_standard(path)


@pytest.mark.parametrize(
    ("printed", "want"),
    [
        # Cells as printed in the standard, full-width comparators included.
        ("＜300", ("<", 300.0)),  # Table 5
        ("≤330", ("≤", 330.0)),  # Table 5
        ("≥20 000", ("≥", 20000.0)),  # Table 2, thousands separated by a space
        ("≥10%", ("≥", 10.0)),  # Table 5
        ("＜0.2‰", ("<", 0.2)),  # Table 7
        ("＞5 年", (">", 5.0)),  # Table 6
        ("100", (None, 100.0)),  # Table A.1, no comparator printed
        ("0.99～0.95", None),  # Table 5, a range: text, read by a decision
        ("＜0.6C", None),  # Table 6, a multiple of C: text, read by a decision
    ],
)
def test_parse_printed(printed, want):
    from greenfoundry.scoring.standard import parse_printed

    assert parse_printed(printed) == want
