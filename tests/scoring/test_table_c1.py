"""Table C.1 (energy per tonne of liquid iron) and its notes 1-4.

Every expected limit is computed by hand from T/CFA 0308011.5-2024, Table C.1 and its notes
(seeds/002_…txt), with the readings of the standard file's decisions (D-c1-*): the arithmetic is
in each comment. Limits are compared exactly: the corrections are exact decimal arithmetic
(0.6 × ΔT, 0.4 × ΔT), so 125 + 0.6 × 7 must be 129.2, not 129.19999….
"""

from __future__ import annotations

import pytest

from greenfoundry.errors import ContextError, NotCoveredError
from greenfoundry.scoring.table_c1 import table_c1_limits, tier_for, weighted_tap_temp_c


def applied(res):
    return [(c.note, c.applied) for c in res.corrections]


# --------------------------------------------------------------------------- rows


@pytest.mark.parametrize(
    ("capacity", "row", "limits"),
    [
        # 冲天炉熔化能力 5 t/h: ＜125 ＜130 ＜140
        (5, "cupola-5", (125, 130, 140)),
        # 6～9 t/h: ＜120 ＜125 ＜135, both printed ends and inside
        (6, "cupola-6-9", (120, 125, 135)),
        (7.5, "cupola-6-9", (120, 125, 135)),
        (9, "cupola-6-9", (120, 125, 135)),
        # ≥10 t/h (水冷炉): ＜110 ＜115 ＜125, open above
        (10, "cupola-10", (110, 115, 125)),
        (40, "cupola-10", (110, 115, 125)),
    ],
)
def test_cupola_rows(capacity, row, limits):
    res = table_c1_limits("cupola", capacity, "gray")
    assert res.row_id == row
    assert res.limits == limits == res.base_limits
    assert res.unit == "kgce/t" and res.furnace_capacity_unit == "t/h"
    assert res.comparators == ("<", "<", "<")
    assert res.printed == tuple(f"＜{v}" for v in limits)


def test_cupola_rows_do_not_depend_on_the_product():
    # Table C.1 prints one set of cupola limits for gray and ductile iron alike.
    assert table_c1_limits("cupola", 8, "ductile").limits == (120, 125, 135)


@pytest.mark.parametrize(
    ("product", "row", "limits"),
    [
        # 无芯感应电炉容量 >5 t: 灰铸铁管 ＜180 ＜220 ＜250; 球墨铸铁管 ＜200 ＜250 ＜300 (kWh/t)
        ("gray", "induction-gray", (180, 220, 250)),
        ("ductile", "induction-ductile", (200, 250, 300)),
    ],
)
def test_induction_rows(product, row, limits):
    for capacity in (5.01, 12, 60):
        res = table_c1_limits("induction", capacity, product)
        assert res.row_id == row and res.limits == limits
        assert res.unit == "kWh/t" and res.furnace_capacity_unit == "t"  # D-c1-unit


# --------------------------------------------------------------------------- note 3 and outside


@pytest.mark.parametrize(
    ("capacity", "row"),
    [
        # Note 3: between two rows -> the lower row (D-c1-note3 applies it to the cupola rows).
        (5.5, "cupola-5"),
        (5.99, "cupola-5"),
        (9.5, "cupola-6-9"),
        (9.99, "cupola-6-9"),
    ],
)
def test_note_3_capacity_between_rows_takes_the_lower_row(capacity, row):
    res = table_c1_limits("cupola", capacity, "gray")
    assert res.row_id == row
    assert (3, True) in applied(res)
    assert any("note 3" in n and "lower row" in n for n in res.notes)


def test_note_3_is_not_reported_inside_a_printed_range():
    for capacity in (5, 6, 9, 10, 12):
        assert 3 not in [c.note for c in table_c1_limits("cupola", capacity, "gray").corrections]


@pytest.mark.parametrize(
    ("furnace", "capacity"),
    [
        # Below every row: cupola < 5 t/h; induction ≤ 5 t (">5" is strict). D-c1-outside.
        ("cupola", 4.99),
        ("cupola", 3),
        ("cupola", 0),
        ("induction", 5),
        ("induction", 3),
    ],
)
def test_capacity_outside_every_row_is_not_covered(furnace, capacity):
    with pytest.raises(NotCoveredError, match="does not cover") as exc:
        table_c1_limits(furnace, capacity, "gray")
    assert exc.value.exit_code == 2
    assert "\n" not in str(exc.value)


# --------------------------------------------------------------------------- notes 1 and 2


@pytest.mark.parametrize(
    ("tap", "limits"),
    [
        # Note 1: 0.6 kgce/t per °C from 1480 °C, every limit, on the 6～9 row (120/125/135).
        (1500, (132, 137, 147)),  # +20 °C -> +12
        (1470, (114, 119, 129)),  # -10 °C -> -6
        (1480, (120, 125, 135)),  # specified: no change
        (1481, (120.6, 125.6, 135.6)),  # +1 °C -> +0.6
    ],
)
def test_note_1_cupola_tapping_temperature(tap, limits):
    res = table_c1_limits("cupola", 7, "gray", tap_temp_c=tap)
    assert res.limits == limits
    assert res.reference_tap_temp_c == 1480
    assert (1, True) in applied(res)


def test_note_1_boundary_is_exact():
    # 5 t/h row, tapping 1487 °C: 125 + 7 × 0.6 = 129.2. A value of exactly 129.2 is not ＜129.2.
    res = table_c1_limits("cupola", 5, "gray", tap_temp_c=1487)
    assert res.limits == (129.2, 134.2, 144.2)
    assert tier_for(res, 129.19) == 1
    assert tier_for(res, 129.2) == 2


@pytest.mark.parametrize(
    ("product", "dn", "tap", "limits"),
    [
        # Note 2: 0.6 kWh/t per °C from the specified temperature:
        # gray 1480 °C: 1500 -> +12 on 180/220/250
        ("gray", None, 1500, (192, 232, 262)),
        # ductile DN80-300 1500 °C: 1480 -> -12 on 200/250/300, at both ends of the range
        ("ductile", 80, 1480, (188, 238, 288)),
        ("ductile", 300, 1480, (188, 238, 288)),
        # DN350-1000 1450 °C: 1480 -> +18
        ("ductile", 350, 1480, (218, 268, 318)),
        ("ductile", 1000, 1480, (218, 268, 318)),
        # DN1000以上 1450 °C: 1450 -> 0
        ("ductile", 1200, 1450, (200, 250, 300)),
        ("ductile", 1200, 1440, (194, 244, 294)),
    ],
)
def test_note_2_induction_tapping_temperature(product, dn, tap, limits):
    res = table_c1_limits("induction", 12, product, dn=dn, tap_temp_c=tap)
    assert res.limits == limits
    assert (2, True) in applied(res)


def test_note_2_reference_temperature_per_dn_range():
    # Printed: gray 1480 °C; ductile DN80-300 1500 °C, DN350-1000 1450 °C, DN1000以上 1450 °C.
    def ref(product, dn):
        return table_c1_limits(
            "induction", 12, product, dn=dn, tap_temp_c=1460
        ).reference_tap_temp_c

    assert ref("gray", None) == 1480
    assert ref("ductile", 300) == 1500
    assert ref("ductile", 350) == 1450
    assert ref("ductile", 1400) == 1450


def test_note_2_ductile_needs_the_dn_when_a_tapping_temperature_is_given():
    with pytest.raises(ContextError, match="--dn"):
        table_c1_limits("induction", 12, "ductile", tap_temp_c=1480)
    # Without a tapping temperature, the DN is not needed and note 2 says it was not applied.
    res = table_c1_limits("induction", 12, "ductile")
    assert res.limits == (200, 250, 300)
    assert (2, False) in applied(res)


@pytest.mark.parametrize("dn", [60, 301, 320, 349])
def test_note_2_dn_in_no_printed_range_is_not_covered(dn):
    with pytest.raises(NotCoveredError, match=f"DN {dn}"):
        table_c1_limits("induction", 12, "ductile", dn=dn, tap_temp_c=1480)


def test_notes_not_applied_without_temperatures_are_said():
    res = table_c1_limits("induction", 12, "gray")
    assert applied(res) == [(2, False), (4, False)]
    assert all("not applied" in n for n in res.notes)


# --------------------------------------------------------------------------- note 4


@pytest.mark.parametrize(
    ("ambient", "limits"),
    [
        # Note 4: 0.4 kWh/t per °C from 25 °C, warmer LOWERS the limits (gray 180/220/250).
        (30, (178, 218, 248)),  # +5 °C -> -2
        (15, (184, 224, 254)),  # -10 °C -> +4
        (25, (180, 220, 250)),
        (26.5, (179.4, 219.4, 249.4)),  # +1.5 °C -> -0.6
    ],
)
def test_note_4_site_air_temperature_on_induction_rows(ambient, limits):
    res = table_c1_limits("induction", 12, "gray", annual_mean_air_temp_c=ambient)
    assert res.limits == limits
    assert (4, True) in applied(res)


def test_note_4_is_skipped_on_cupola_rows_by_default():
    # D-c1-note4-cupola: the note is in kWh/t, the cupola rows in kgce/t.
    res = table_c1_limits("cupola", 7, "gray", annual_mean_air_temp_c=35)
    assert res.limits == (120, 125, 135)
    assert (4, False) in applied(res)
    assert res.options["note4_cupola"] == "skip"
    assert any("note4_cupola=skip" in n for n in res.notes)


def test_note_4_on_cupola_rows_when_converted():
    # Option convert: -0.4 kWh/t × 0.1229 kgce/kWh × (30 - 25) °C = -0.2458 kgce/t.
    res = table_c1_limits(
        "cupola", 7, "gray", annual_mean_air_temp_c=30, options={"note4_cupola": "convert"}
    )
    assert res.limits == (119.7542, 124.7542, 134.7542)
    # With the factor overridden to 0.3: -0.4 × 0.3 × 5 = -0.6.
    res = table_c1_limits(
        "cupola",
        7,
        "gray",
        annual_mean_air_temp_c=30,
        options={"note4_cupola": "convert"},
        kwh_to_kgce=0.3,
    )
    assert res.limits == (119.4, 124.4, 134.4)


def test_notes_2_and_4_together():
    # Ductile DN600 (1450 °C), tapping 1470 °C: +20 × 0.6 = +12; site 28 °C: -3 × 0.4 = -1.2.
    # 200/250/300 + 10.8 = 210.8/260.8/310.8 kWh/t.
    res = table_c1_limits(
        "induction", 20, "ductile", dn=600, tap_temp_c=1470, annual_mean_air_temp_c=28
    )
    assert res.limits == (210.8, 260.8, 310.8)
    assert applied(res) == [(2, True), (4, True)]
    assert [c.delta for c in res.corrections] == [12, -1.2]


def test_notes_1_and_3_together():
    # Cupola 9.5 t/h -> 6～9 row (note 3); tapping 1500 °C -> +12: 132/137/147 kgce/t.
    res = table_c1_limits("cupola", 9.5, "gray", tap_temp_c=1500, annual_mean_air_temp_c=15)
    assert res.row_id == "cupola-6-9"
    assert res.limits == (132, 137, 147)
    assert applied(res) == [(1, True), (3, True), (4, False)]


# --------------------------------------------------------------------------- tiers, units


@pytest.mark.parametrize(
    ("value", "want"),
    [(109.99, 1), (110, 2), (114.99, 2), (115, 3), (124.99, 3), (125, None)],
)
def test_tier_on_each_strict_boundary(value, want):
    # ≥10 t/h row ＜110 ＜115 ＜125: a value on a limit falls to the next tier.
    assert tier_for(table_c1_limits("cupola", 12, "gray"), value) == want


def test_induction_limits_in_kgce():
    # 0.1229 kgce/kWh (GB/T 2589 equivalent value): 180 -> 22.122, 220 -> 27.038, 250 -> 30.725.
    res = table_c1_limits("induction", 12, "gray")
    assert res.limits_kgce == pytest.approx((22.122, 27.038, 30.725), abs=1e-12)
    assert table_c1_limits("cupola", 12, "gray").limits_kgce is None


def test_unknown_furnace_product_or_option_is_refused():
    with pytest.raises(ContextError, match="arc"):
        table_c1_limits("arc", 12, "gray")
    with pytest.raises(ContextError, match="steel"):
        table_c1_limits("cupola", 12, "steel")
    with pytest.raises(ContextError, match="note4_cupola"):
        table_c1_limits("cupola", 12, "gray", options={"note4_cupola": "maybe"})


def test_weighted_tap_temperature():
    # (1500 × 10 + 1460 × 30) / 40 = 58800 / 40 = 1470 °C.
    assert weighted_tap_temp_c([1500, 1460], [10, 30]) == 1470
    with pytest.raises(ValueError):
        weighted_tap_temp_c([1500], [0])
    with pytest.raises(ValueError):
        weighted_tap_temp_c([1500, 1490], [1])
