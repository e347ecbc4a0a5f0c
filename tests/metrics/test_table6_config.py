"""The plant config's Table 6 water and noise keys (`outfalls`, `boundary_noise`): the example
holds them, and a value no plant can have stops the start naming the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.errors import ConfigError

EXAMPLE = yaml.safe_load(plant_file().read_text())
ENV = {"GF_MQTT_PASSWORD": "m", "GF_INFLUX_PASSWORD": "i"}


def _parse(raw):
    return plant.parse(raw, base=plant_file().parent, env=ENV)


def test_the_example_has_an_outfall_and_class_3_boundary_noise():
    cfg = _parse(copy.deepcopy(EXAMPLE))
    assert cfg.outfalls[0].limits_mg_l == {"cod": 500.0, "nh3_n": 45.0, "ss": 400.0}
    bn = cfg.boundary_noise
    # GB 12348-2008 class 3: 65 dB(A) by day, 55 by night; day 06:00-22:00.
    assert (bn.gb12348_class, bn.day_limit_dba, bn.night_limit_dba) == (3, 65.0, 55.0)
    assert (bn.day_start_h, bn.night_start_h) == (6, 22)
    assert cfg.metrics.water_min_valid_samples == 12 and cfg.metrics.noise_min_valid_minutes == 45


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        (lambda r: r["outfalls"][0]["pollutants"].update(ph={"limit_mg_l": 9}),
         "outfalls[0].pollutants.ph", "no multiple of D"),
        (lambda r: r["outfalls"][0]["pollutants"]["cod"].update(limit_mg_l=-1),
         "limit_mg_l", "between"),
        (lambda r: r["boundary_noise"].update(night_limit_dba=60),
         "boundary_noise.night_limit_dba", "between 20 and 55"),
        (lambda r: r["boundary_noise"].update(day_start="06:30"),
         "boundary_noise.day_start", "whole hour"),
        (lambda r: r.pop("boundary_noise"), "signal", "needs boundary_noise"),
        (lambda r: r.update(outfalls=[]), "topic", "not an outfall of this plant"),
        (lambda r: r["outfalls"][0]["pollutants"].pop("ss"), "tags.pollutant", "no limit D"),
        # A noise monitor's status for a device that reads no Leq would flag nothing.
        (lambda r: r["signals"].append({"topic": "env/boundary-x/status",
                                        "signal": "noise_monitor_status", "unit": "code"}),
         "topic", "no noise_leq_dba of that device"),
        # Boundary noise without saying whether residents live within 1200 m: the tiers would
        # silently be the laxer variant's (0.9/0.95 E).
        (lambda r: r["plant"]["site"].pop("residential_within_1200m"),
         "plant.site.residential_within_1200m", "missing; boundary_noise is scored"),
    ],
)  # fmt: skip
def test_a_bad_table6_value_is_refused_naming_its_key(change, where, words):
    raw = copy.deepcopy(EXAMPLE)
    change(raw)
    with pytest.raises(ConfigError) as e:
        _parse(raw)
    assert where in str(e.value) and words in str(e.value)


def test_the_water_and_noise_rows_cite_the_decisions_that_read_them():
    # Each decision the metrics apply to Table 6's water and noise rows names the row in its
    # `affects`, and the row cites it, so `standard show --row` lists what its value rests on
    # (as emissions.air.multiple_of_c cites D-t6-window).
    from greenfoundry.scoring.standard import load_standard

    std = load_standard()
    for row, prefix in (("emissions.water.multiple_of_d", "D-t6-water-"),
                        ("emissions.noise.multiple_of_e", "D-t6-noise-")):  # fmt: skip
        affecting = {d.id for d in std.errata if row in d.affects}
        assert {d for d in affecting if d.startswith(prefix)} == {
            f"{prefix}{k}" for k in (("period", "valid", "window") if "water" in row
                                     else ("period", "multiple", "window"))
        }  # fmt: skip
        assert affecting <= set(std.rows[row].decisions), (row, affecting)
