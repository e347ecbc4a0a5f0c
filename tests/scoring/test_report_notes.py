"""The text report shows what decides the Table C.1 row and the grade (issue 8): every note
applied with its amount, every temperature assumed because it was missing and what that can
cost, and that under the floor policy level 1 needs every row at tier 1.

Hand computation (Table C.1, induction ductile >5 t: ＜200 / ＜250 / ＜300 kWh/t; note 2: 0.6 kWh/t
per °C from the specified 1450 °C for DN350-1000; note 4: −0.4 kWh/t per °C from 25 °C). The demo
row: 205 kWh/t, tapping 1462 °C (+7.2), site 16.2 °C (+3.52): limits 210.72 / 260.72 / 310.72,
tier 1, 30 × 0.9 = 27 points (as in test_scorer.py).
"""

from __future__ import annotations

import datetime as dt

import pytest

from greenfoundry.scoring import report, scorer
from greenfoundry.scoring.standard import load_standard
from tests.scoring.rows import demo_inputs, with_plant, with_row

AS_OF = dt.date(2026, 3, 31)
C1 = "energy.liquid_iron.energy_per_t"


@pytest.fixture(scope="module")
def standard():
    return load_standard()


def run(standard, cfg=None, ind=None, ev=None):
    c, i, e = demo_inputs()
    return scorer.score(standard, cfg or c, ind or i, ev or e, scorer.Options(as_of=AS_OF))


def test_the_report_prints_each_table_c1_correction_with_its_amount(standard):
    text = report.score_text(run(standard))
    assert (
        "      note 2: tapping 1462 °C vs specified 1450 °C (DN350-1000，1450℃) -> limits +7.2 kWh/t"
        in text
    )
    assert "      note 4: site mean 16.2 °C vs 25 °C -> limits +3.52 kWh/t" in text
    assert (
        "      limits (tier 1 / 2 / 3) after the notes: < 210.72 / < 260.72 / < 310.72 kWh/t"
        in text
    )
    assert "Assumed, because" not in text and "      assumed:" not in text  # nothing was
    data = scorer.result_to_dict(run(standard))
    row = next(r for r in data["rows"] if r["row_id"] == C1)
    assert [(c["note"], c["applied"], c["delta"]) for c in row["corrections"]] == [
        (2, True, 7.2),
        (4, True, 3.52),
    ]
    assert data["assumptions"] == []


def test_a_missing_tapping_temperature_is_said_with_what_it_costs(standard):
    # Without tap_temp_c note 2 is not applied (D-c1-no-temp): limits 203.52 / 253.52 / 303.52,
    # so 205 is tier 2 (30 × 0.75 = 22.5), 4.5 points below the hand 27. Tier 1 needs
    # 205 < 203.52 + (T − 1450) × 0.6, T > 1450 + 1.48 / 0.6 = 1452.47 °C; tier 2 is lost when
    # 205 ≥ 253.52 + (T − 1450) × 0.6, T ≤ 1450 − 48.52 / 0.6 = 1369.13 °C (each 4.5 points).
    _cfg, ind, _ev = demo_inputs()
    result = run(standard, ind=with_row(ind, C1, context={"dn": 600}))
    r = result.row(C1)
    assert (r.tier, r.points) == (2, 22.5)
    (a,) = r.assumptions
    assert (a.note, a.missing, a.assumed_c) == (2, "tap_temp_c", 1450)
    assert a.better.tier == 1 and a.better.side == "above"
    assert a.better.temp_c == pytest.approx(1450 + 1.48 / 0.6)
    assert a.worse.tier == 3 and a.worse.side == "at or below"
    assert a.worse.temp_c == pytest.approx(1450 - 48.52 / 0.6)
    assert float(a.better.points) == float(a.worse.points) == 4.5
    text = report.score_text(result)
    message = (
        "note 2: no tonnage-weighted tapping temperature given, 1450 °C assumed (limits not "
        "corrected); above 1452.47 °C it would meet tier 1 (+4.50 points); at or below "
        "1369.13 °C it would fall to tier 3 (−4.50 points)"
    )
    assert f"      assumed: {message}" in text  # under the row
    assert "Assumed, because a temperature was not given (decision D-c1-no-temp):" in text
    assert f"  {C1}: {message}" in text  # and beside F
    data = scorer.result_to_dict(result)
    assert data["assumptions"][0]["message"] == message
    assert data["assumptions"][0]["better"]["temp_c"] == pytest.approx(1452.4667, abs=1e-4)


def test_a_missing_site_temperature_is_said_with_what_it_costs(standard):
    # No annual_mean_air_temp_c in the config: 25 °C is assumed (note 4 not applied), limits
    # 207.2 / 257.2 / 307.2, 205 still tier 1. Tier 1 is lost when
    # 205 ≥ 207.2 − 0.4 × (A − 25), A ≥ 25 + 2.2 / 0.4 = 30.5 °C: a warmer site than assumed.
    cfg, _ind, _ev = demo_inputs()
    result = run(standard, cfg=with_plant(cfg, annual_mean_air_temp_c=None))
    (a,) = result.row(C1).assumptions
    assert (a.note, a.missing, a.assumed_c, a.better) == (4, "annual_mean_air_temp_c", 25, None)
    assert (a.worse.tier, a.worse.side) == (2, "at or above")
    assert a.worse.temp_c == pytest.approx(30.5)
    assert a.worse.plausible  # 30.5 °C is within −30..40 °C
    assert "at or above 30.50 °C it would fall to tier 2 (−4.50 points)" in report.score_text(
        result
    )


def test_the_level_1_note_is_printed_even_when_no_plan_reaches_level_1(standard):
    # One row declared not applicable keeps F below 0.9 × 1000 = 900 whatever the other rows
    # do, so there is no plan; the reason level 1 is out of reach must still be printed.
    _cfg, _ind, ev = demo_inputs()
    ev = with_row(ev, "mgmt.tools.ohs_investment", value="not_applicable", note="no such spend")
    result = run(standard, ev=ev)
    assert result.gap.plan is None and result.gap.next_grade.level == 1
    text = report.score_text(result)
    assert (
        "  Under the floor policy tier 1 gives Li 0.9, so F is at most 900: level 1 needs every "
        "row at tier 1." in text
    )
    assert scorer.result_to_dict(result)["gap"]["note"] == result.gap.note
