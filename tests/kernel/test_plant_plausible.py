"""The plant config refuses what the scorer would: its plausible ranges are the glossary's
(`greenfoundry.glossary.PLAUSIBLE_BY_KEY`), one source. Before, the config took a yearly mean
air temperature from -60 to 60 °C and any furnace up to 1000 t or t/h, which the scorer and
`standard limits` then refused. The boundaries below are the glossary's, read from its
comments by hand: -30 and 40 °C, a cupola above 0 and at most 200 t/h, an induction furnace
above 0 and at most 300 t."""

from __future__ import annotations

import copy

import pytest
import yaml

from greenfoundry import glossary, plant
from greenfoundry.config import plant_file
from greenfoundry.errors import ConfigError

EXAMPLE = yaml.safe_load(plant_file().read_text())


def _load(tmp_path, *, air=None, kind=None, capacity=None):
    raw = copy.deepcopy(EXAMPLE)
    if air is not None:
        raw["plant"]["site"]["annual_mean_air_temp_c"] = air
    if kind is not None:
        unit = glossary.CAPACITY_UNITS[kind]
        raw["furnaces"][0].update(kind=kind, capacity={"value": capacity, "unit": unit})
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return plant.load(path, resolve_secrets=False)


@pytest.mark.parametrize("air", [-30, 40, 16.2])
def test_a_plausible_yearly_mean_air_temperature_is_taken(tmp_path, air):
    assert _load(tmp_path, air=air).plant.annual_mean_air_temp_c == air


@pytest.mark.parametrize("air", [-30.5, 40.5, 60, -60])
def test_an_implausible_yearly_mean_air_temperature_is_refused(tmp_path, air):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, air=air)
    assert "plant.site.annual_mean_air_temp_c" in str(err.value)
    assert "expected between -30 and 40 °C" in str(err.value)


@pytest.mark.parametrize(("kind", "top"), [("cupola", 200), ("induction", 300)])
def test_a_furnace_capacity_is_taken_up_to_the_glossarys_top_and_no_further(tmp_path, kind, top):
    assert _load(tmp_path, kind=kind, capacity=top).furnaces[0].capacity == top
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, kind=kind, capacity=top + 0.5)
    assert f"{top + 0.5:g} is not allowed" in str(err.value)
    assert f"{top} or less {glossary.CAPACITY_UNITS[kind]}" in str(err.value)
    with pytest.raises(ConfigError, match="expected a number above 0"):
        _load(tmp_path, kind=kind, capacity=0)


def test_the_configs_ranges_are_the_glossarys():
    # The values the config enforces are the scorer's: the same Range objects, by key.
    expected = {
        "annual_mean_air_temp_c": (-30, 40, False),
        "furnace_capacity.cupola": (0, 200, True),
        "furnace_capacity.induction": (0, 300, True),
    }
    got = {
        k: (r.low, r.high, r.low_open)
        for k, r in glossary.PLAUSIBLE_BY_KEY.items()
        if k in expected
    }
    assert got == expected
