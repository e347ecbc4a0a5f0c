"""Table 5's water-reuse rates, each on hand-made meter consumptions with the arithmetic here
(the formulas are those metrics/water.py states)."""

import pytest

from greenfoundry.metrics.measured import BAD_INPUT, LOW_COVERAGE, NO_DATA, OK, Measured
from greenfoundry.metrics.water import (
    cooling_recirculation_rate_pct,
    process_reuse_rate_pct,
    reclaimed_share_of_intake_pct,
    water_reuse_rate_pct,
)


def m(value, coverage=1.0, n=24):
    return Measured(value, n, coverage, OK if coverage >= 0.9 else LOW_COVERAGE)


def test_cooling_recirculation():
    # 19 600 m³ circulated, 400 m³ make-up: 19 600 / 20 000 = 98 % (Table 5 tier 1: ≥ 98).
    r = cooling_recirculation_rate_pct(m(19_600.0), m(400.0))
    assert r.value == pytest.approx(98.0) and r.status == OK and r.n == 48


def test_process_reuse():
    # 2 700 m³ reused, 300 m³ fresh: 2 700 / 3 000 = 90 %.
    assert process_reuse_rate_pct(m(2_700.0), m(300.0)).value == pytest.approx(90.0)


def test_reclaimed_share_of_intake():
    # 110 m³ reclaimed in 1 100 m³ taken in (reclaimed included): 10 %.
    assert reclaimed_share_of_intake_pct(m(110.0), m(1_100.0)).value == pytest.approx(10.0)
    # Reclaimed above the total intake is no plant's: the meters are wrong.
    r = reclaimed_share_of_intake_pct(m(1_200.0), m(1_100.0))
    assert r.status == BAD_INPUT and r.value is None and "check the meters" in r.lacking[0]


def test_overall_repeat_use():
    # (19 600 + 2 700) / (19 600 + 2 700 + 1 100) = 22 300 / 23 400 = 95.2991… %.
    r = water_reuse_rate_pct(m(19_600.0), m(2_700.0), m(1_100.0))
    assert r.value == pytest.approx(22_300 / 23_400 * 100)


def test_missing_or_short_meters():
    r = cooling_recirculation_rate_pct(m(19_600.0), None)
    assert r.status == NO_DATA and r.value is None
    r = cooling_recirculation_rate_pct(
        m(19_600.0), Measured(None, 0, 0.0, NO_DATA, ("no readings",))
    )
    assert r.status == NO_DATA
    r = process_reuse_rate_pct(m(2_700.0, 0.5), m(300.0))
    assert r.status == LOW_COVERAGE and r.coverage == 0.5 and r.value == pytest.approx(90.0)
    bad = Measured(None, 0, 0.0, BAD_INPUT, ("water_m3: values are object, expected numbers",))
    assert process_reuse_rate_pct(m(2_700.0), bad).status == BAD_INPUT
