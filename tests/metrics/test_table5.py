"""Table 5: plant energy per tonne of good pipe, the power factor, sand and metal reuse.

Every expected value is hand computed in the test from the GB/T 2589 factors (0.1229 kgce/kWh,
1.2143 kgce/m³ natural gas, 0.4 kgce/m³ oxygen, 0.9714 kgce/kg coke) and the formulas of
T/CFA 0308011.5-2024 Table 5 as metrics/table5.py states them.
"""

import math

import pytest

from greenfoundry.metrics.factors import load_factors
from greenfoundry.metrics.measured import BAD_INPUT, LOW_COVERAGE, NO_DATA, OK, Measured
from greenfoundry.metrics.table5 import (
    metal_returns_reuse_rate_pct,
    plant_energy_per_t_pipe,
    power_factor,
    ratio,
    sand_reuse_rate_pct,
    waste_heat_recovery_pct,
)


def m(value, coverage=1.0, n=10, status=None):
    if status is None:
        status = OK if coverage >= 0.9 else LOW_COVERAGE
    return Measured(value, n, coverage, status)


def test_energy_per_tonne_over_every_carrier():
    # 150 000 kWh × 0.1229 = 18 435 kgce; 45 000 m³ gas × 1.2143 = 54 643.5 kgce;
    # 2 000 m³ oxygen × 0.4 = 800 kgce; Σ = 73 878.5 kgce over 1 000 t of good pipe.
    r = plant_energy_per_t_pipe(
        {"electricity": m(150_000.0), "natural_gas": m(45_000.0), "oxygen": m(2_000.0)},
        m(1_000.0),
    )
    assert r.status == OK and r.lacking == ()
    assert r.value == pytest.approx(73.8785, abs=1e-9)
    assert r.kgce_by_carrier["natural_gas"] == pytest.approx(54_643.5)
    assert r.pipe_t == 1_000.0 and r.n == 40
    assert any("0.1229 kgce/kWh" in f for f in r.factors)


def test_a_utility_made_on_site_is_not_counted_twice():
    # Oxygen from the plant's own air-separation unit: its electricity is on the site meter.
    # (150 000 × 0.1229 + 45 000 × 1.2143) / 1 000 = 73.0785 kgce/t.
    r = plant_energy_per_t_pipe(
        {"electricity": m(150_000.0), "natural_gas": m(45_000.0), "oxygen": m(2_000.0)},
        m(1_000.0),
        made_on_site=["oxygen"],
    )
    assert r.value == pytest.approx(73.0785, abs=1e-9)
    assert r.excluded == ("oxygen",) and "made on site" in r.lacking[0]


def test_a_cupola_plant_with_coke_and_an_overridden_gas_factor():
    # 60 000 kg coke × 0.9714 = 58 284 kgce; 10 000 kWh × 0.1229 = 1 229; 1 000 m³ gas × 1.19
    # (measured heating value) = 1 190: Σ 60 703 kgce / 200 t = 303.515 kgce/t.
    r = plant_energy_per_t_pipe(
        {"coke": m(60_000.0), "electricity": m(10_000.0), "natural_gas": m(1_000.0)},
        m(200.0),
        factors=load_factors({"standard_coal.natural_gas": 1.19}),
    )
    assert r.value == pytest.approx(303.515, abs=1e-9)


def test_a_missing_carrier_or_no_pipe_is_no_data_never_a_partial_sum():
    r = plant_energy_per_t_pipe({"electricity": m(150_000.0), "natural_gas": None}, m(1_000.0))
    assert r.status == NO_DATA and r.value is None
    assert "no natural_gas data" in r.lacking[0]
    r = plant_energy_per_t_pipe({"electricity": m(150_000.0)}, Measured(None, 0, 0.0, NO_DATA))
    assert r.status == NO_DATA and "no good pipe output" in r.lacking[0]
    r = plant_energy_per_t_pipe({"electricity": m(150_000.0)}, m(0.0))
    assert r.status == NO_DATA and "0 t" in r.lacking[0]


def test_low_coverage_unknown_carriers_and_impossible_values():
    r = plant_energy_per_t_pipe({"electricity": m(150_000.0, 0.8)}, m(1_000.0))
    assert r.status == LOW_COVERAGE and r.coverage == 0.8
    assert r.value == pytest.approx(18.435)
    r = plant_energy_per_t_pipe({"steam": m(10.0)}, m(1_000.0))
    assert r.status == BAD_INPUT and "no standard-coal factor for steam" in r.lacking[0]
    # 150 000 kWh entered as Wh (×1000): 18 435 kgce/t, which no pipe plant uses.
    r = plant_energy_per_t_pipe({"electricity": m(1.5e8)}, m(1_000.0))
    assert r.status == BAD_INPUT and r.value is None and "no pipe plant's" in r.lacking[0]


def test_power_factor_from_active_and_reactive_energy():
    # 3-4-5: 4 000 kWh and 3 000 kvarh → PF = 4000 / 5000 = 0.8.
    assert power_factor(m(4_000.0), m(3_000.0)).value == pytest.approx(0.8)
    # tan(acos(0.95)) = 0.328684…: 1 000 kWh with 328.684 kvarh is PF 0.95.
    q = 1000 * math.tan(math.acos(0.95))
    assert power_factor(m(1_000.0), m(q)).value == pytest.approx(0.95, abs=1e-12)
    assert power_factor(m(1_000.0), m(0.0)).value == 1.0
    assert power_factor(m(0.0), m(10.0)).status == NO_DATA
    assert power_factor(None, m(10.0)).status == NO_DATA
    assert power_factor(m(1_000.0, 0.5), m(300.0)).status == LOW_COVERAGE
    assert power_factor(m(-1.0), m(10.0)).status == BAD_INPUT


def test_sand_and_metal_reuse():
    # 950 t reclaimed of 1 000 t mixed: 95 %; 102 t of returns charged for 100 t arising: 102 %.
    assert sand_reuse_rate_pct(m(950.0), m(1_000.0)).value == pytest.approx(95.0)
    assert metal_returns_reuse_rate_pct(m(102.0), m(100.0)).value == pytest.approx(102.0)
    assert sand_reuse_rate_pct(m(1_100.0), m(1_000.0)).status == BAD_INPUT  # > 100 %
    assert metal_returns_reuse_rate_pct(m(300.0), m(100.0)).status == BAD_INPUT  # > 200 %


def test_waste_heat_has_no_signal_and_says_why():
    r = waste_heat_recovery_pct()
    assert r.status == NO_DATA and r.value is None and "no signal" in r.lacking[0]


def test_ratio_carries_refusals_and_gaps():
    bad = Measured(None, 3, 0.0, BAD_INPUT, ("values are object, expected numbers",))
    r = ratio(bad, m(1.0), num_name="a")
    assert r.status == BAD_INPUT and r.lacking == ("a: values are object, expected numbers",)
    r = ratio(m(1.0), m(0.0), den_name="b")
    assert r.status == NO_DATA and "b is 0" in r.lacking[0]
    r = ratio(m(1.0, 0.95, 3), m(4.0, 0.5, 7), scale=100)
    assert (r.value, r.coverage, r.n, r.status) == (25.0, 0.5, 10, LOW_COVERAGE)
