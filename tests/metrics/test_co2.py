"""CO2 per tonne of pipe and of liquid iron, hand computed from domain.md §5's factors
(0.5306 kgCO2/kWh, 2023 national grid average; 2.162 kgCO2/m³ gas; 2.86 kgCO2/kg coke)."""

import pytest

from greenfoundry.metrics.co2 import co2_per_t
from greenfoundry.metrics.factors import load_factors
from greenfoundry.metrics.measured import NO_DATA, OK, Measured


def m(value, coverage=1.0):
    return Measured(value, 10, coverage, OK)


def test_per_tonne_of_pipe_keeps_the_factors_year_and_series():
    # 150 000 × 0.5306 = 79 590; 45 000 × 2.162 = 97 290; Σ 176 880 kg / 1 000 t = 176.88.
    r = co2_per_t({"electricity": m(150_000.0), "natural_gas": m(45_000.0), "oxygen": m(2_000.0)},
                  m(1_000.0))  # fmt: skip
    assert r.value == pytest.approx(176.88) and r.status == OK and r.per == "pipe"
    assert r.years["electricity"] == 2023 and r.series["electricity"] == "national grid average"
    assert "no CO2 factor for oxygen: not counted" in r.lacking


def test_per_tonne_of_liquid_iron_of_a_cupola():
    # 60 000 kg coke × 2.86 = 171 600 kg over 500 t of iron = 343.2 kgCO2/t.
    r = co2_per_t({"coke": m(60_000.0)}, m(500.0), per="liquid_iron")
    assert r.value == pytest.approx(343.2) and r.per == "liquid_iron"


def test_an_overridden_grid_factor():
    # 1 000 kWh × 0.5703 (a regional grid) / 10 t = 57.03.
    r = co2_per_t({"electricity": m(1_000.0)}, m(10.0),
                  factors=load_factors({"co2.electricity": 0.5703}))  # fmt: skip
    assert r.value == pytest.approx(57.03)


def test_no_data_is_said():
    r = co2_per_t({"electricity": None}, m(10.0))
    assert r.status == NO_DATA and "no electricity data" in r.lacking[0]
    assert co2_per_t({"electricity": m(1.0)}, None).status == NO_DATA
    with pytest.raises(ValueError, match="per"):
        co2_per_t({}, m(1.0), per="casting")
