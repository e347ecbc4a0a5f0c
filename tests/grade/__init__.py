"""Tests of the rolling grade. Helpers: a plant on the test stack, its evidence file and rollup
points written by hand (the points `metrics indicators` reads, metrics/schema.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import yaml

from greenfoundry.grade import compute
from greenfoundry.metrics import schema
from greenfoundry.metrics import windows as win
from tests.plant import plant_config, store

__all__ = ["declaration", "plant", "store", "write_air", "write_c1", "write_evidence"]


def plant(tmp_path: Path, stack, plant_id: str):
    """The example plant (ductile pipe, two 12 t induction furnaces, site mean 16.2 °C, facts
    declared on 2026-01-12) under `plant_id`, its config in `tmp_path`."""
    return plant_config(tmp_path, stack, plant_id)


def declaration(value, valid_until: dt.date, declared_on: dt.date = dt.date(2026, 1, 15)):
    return {
        "value": value,
        "declared_by": "Gao Yan (quality manager)",
        "declared_on": declared_on.isoformat(),
        "valid_until": valid_until.isoformat(),
    }


def write_evidence(cfg, rows: dict) -> None:
    """The evidence.yaml beside the plant config."""
    doc = {"version": 1, "plant": cfg.plant.id, "rows": rows}
    (Path(cfg.path).parent / "evidence.yaml").write_text(yaml.safe_dump(doc))


def _window(cfg, as_of: dt.date) -> win.Window:
    return compute.window_for_day(as_of, cfg.plant.timezone)


def write_c1(st, cfg, as_of: dt.date, kwh_per_t: float, coverage: float = 1.0) -> None:
    """The plant's Table C.1 point of the trailing window the grade of `as_of` scores."""
    w = _window(cfg, as_of)
    status = "ok" if coverage >= 0.9 else "low_coverage"
    fields = {"kwh_per_t": kwh_per_t, "n": 100, "coverage": coverage, "status": status}
    if status != "ok":
        fields["lacking"] = "furnace_energy_kwh of IF2 silent for months"
    tags = {"plant": cfg.plant.id, "window": w.kind}
    st.write_lines([schema.point(schema.C1_PLANT, tags, w, fields)])


def write_air(st, cfg, as_of: dt.date, multiple_of_c: float) -> None:
    """The plant's Table 6 point (the worst stack and pollutant) of the same window."""
    w = _window(cfg, as_of)
    fields = {"multiple_of_c": multiple_of_c, "n": 100, "coverage": 1.0, "status": "ok"}
    tags = {"plant": cfg.plant.id, "window": w.kind}
    st.write_lines([schema.point(schema.AIR_PLANT, tags, w, fields)])


def write_output(st, cfg, year: int, output_10kt: float) -> None:
    """The plant's Table A.1 output of a calendar year (the three-year row's inputs)."""
    w = win.calendar_window(str(year), cfg.plant.timezone)
    fields = {"output_10kt": output_10kt, "n": 100, "coverage": 1.0, "status": "ok"}
    tags = {"plant": cfg.plant.id, "indicator": "output", "window": w.kind}
    st.write_lines([schema.point(schema.A1_PLANT, tags, w, fields)])


def local_noon(cfg, day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(f"{day}T12:00").tz_localize(cfg.plant.timezone).tz_convert("UTC")
