"""Fixtures of the simulator tests: the example plant config, and events computed once."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.sim.faults import Faults
from greenfoundry.sim.plant import PlantModel

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load(plant_file().read_text())
ENV = {"GF_MQTT_PASSWORD": "unused", "GF_INFLUX_PASSWORD": "unused"}
DAY0 = datetime(2026, 3, 2, tzinfo=timezone.utc)  # any day after the model's epoch


def make_config(tmp_path: Path, edit=None) -> plant.PlantConfig:
    """The example config, changed by `edit(raw)` when given."""
    raw = copy.deepcopy(EXAMPLE)
    if edit:
        edit(raw)
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return plant.load(path, env=ENV)


@pytest.fixture(scope="session")
def cfg() -> plant.PlantConfig:
    return plant.load(plant_file(), env=ENV)


@pytest.fixture(scope="session")
def clean_day(cfg):
    """Two full UTC days of the example plant without faults (seed 1), and the model."""
    model = PlantModel(cfg, seed=1)
    return model, list(model.events(DAY0, DAY0 + timedelta(days=2)))


@pytest.fixture(scope="session")
def faulty_day(cfg):
    """The same two days with every fault mode on, ten times as often as by default."""
    model = PlantModel(cfg, seed=1, faults=Faults.parse("all", rate=10.0))
    return model, list(model.events(DAY0, DAY0 + timedelta(days=2)))
