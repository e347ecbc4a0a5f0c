"""The conversion factors: GB/T 2589 and CO2 defaults with their source, and overrides checked.

Expected numbers are GB/T 2589-2020's (electricity's equivalent value 3600 kJ/kWh / 29 307
kJ/kgce = 0.1229 kgce/kWh, as T/CFA 0308011.5-2024's note under Table 5 asks) and domain.md §5.
"""

import pytest

from greenfoundry.errors import ConfigError
from greenfoundry.metrics.factors import load_factors


def test_defaults_with_their_source_year_and_confidence():
    f = load_factors()
    e = f.kgce("electricity")
    assert e.value == 0.1229 and e.unit == "kgce/kWh" and e.confidence == "high"
    # The equivalent value by hand: 3600 / 29 307 = 0.12284, printed 0.1229 in GB/T 2589.
    assert e.value == pytest.approx(3600 / 29307, abs=1e-4)
    assert "当量值" in e.source and not e.overridden
    assert f.kgce("coke").value == 0.9714 and f.kgce("natural_gas").value == 1.2143
    assert f.kgce("diesel").value == 1.4571 and f.kgce("fuel_oil").value == 1.4286
    assert f.kgce("oxygen").value == 0.4 and f.kgce("compressed_air").value == 0.04
    grid = f.co2_of("electricity")
    assert (grid.value, grid.year, grid.series) == (0.5306, 2023, "national grid average")
    assert f.co2_of("coke").value == 2.86 and f.co2_of("natural_gas").value == 2.162
    assert f.co2_of("oxygen") is None


def test_an_override_replaces_one_factor_and_says_so():
    f = load_factors({"standard_coal.natural_gas": 1.19, "co2.electricity": 0.5703})
    assert f.kgce("natural_gas").value == 1.19 and f.kgce("natural_gas").overridden
    assert f.co2_of("electricity").value == 0.5703
    assert f.kgce("coke").value == 0.9714 and not f.kgce("coke").overridden
    assert "plant config" in f.kgce("natural_gas").describe()


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"standard_coal.steam": 0.1}, r"metrics\.factors\.standard_coal\.steam: unknown carrier"),
        ({"kgce.coke": 0.97}, r"metrics\.factors\.kgce\.coke: unknown factor"),
        ({"natural_gas": 1.2}, r"metrics\.factors\.natural_gas: unknown factor"),
        ({"standard_coal.coke": "0.97"}, r"standard_coal\.coke: '0\.97' is not a number"),
        ({"standard_coal.coke": True}, r"standard_coal\.coke: .* is not a number"),
        ({"standard_coal.coke": float("nan")}, r"standard_coal\.coke: .* is not a number"),
        # 0.9714 kgce/kg given per tonne: refused, with the allowed range.
        (
            {"standard_coal.coke": 971.4},
            r"standard_coal\.coke: 971\.4 kgce/kg is not plausible; expected 0\.8 to 1\.1",
        ),
        # GB/T 2589-2020 allows natural gas 1.1000-1.3300 kgce/m3.
        ({"standard_coal.natural_gas": 1.4}, r"natural_gas: 1\.4 kgce/m3 is not plausible"),
        ({"co2.electricity": 530.6}, r"co2\.electricity: 530\.6 kgCO2/kWh is not plausible"),
    ],
)
def test_bad_overrides_are_refused_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_factors(overrides)
