"""The indicator-values input: measured values per row of the standard, with window and coverage.

A YAML or JSON mapping (JSON is read by the same YAML parser; `.json` files are parsed as JSON)::

    version: 1
    plant: demo-dip                  # must match the evidence file's plant id
    window: {start: 2025-01-01, end: 2026-01-01}   # default window of every row
    rows:
      energy.pipe.ductile:           # a row id of the standard (`greenfoundry standard show`)
        value: 96.4
        unit: kgce/t                 # optional; when given it must be the row's unit
        coverage: 0.97               # share of the window with valid data, 0..1
      energy.liquid_iron.induction.ductile:
        value: 212.0
        unit: kWh/t
        coverage: 0.95
        context: {tap_temp_c: 1478.0, annual_mean_air_temp_c: 16.2}   # Table C.1 notes 2 and 4
      economic.output.ductile:
        value: 31.5
        coverage: 1.0
        window: {start: 2023-01-01, end: 2026-01-01}   # a row may cover its own window

Time: a window is `start` (inclusive) to `end` (exclusive), plant-local calendar dates, so the year
2025 is `{start: 2025-01-01, end: 2026-01-01}`. `coverage` is the fraction of that window for which
the value's underlying data was valid (computed by the metrics, not here); below the scorer's
threshold the row is "low coverage" and does not score.

`context` carries measured facts a row's limits depend on (Table C.1: the tonnage-weighted mean
tapping temperature and the latest calendar year's mean air temperature). The declared plant
context (product, DN, furnace, residential area) lives in the evidence file.

Validation here is of shape only (the first problem stops with one line naming the row); whether
the row exists, and whether value, unit and context fit it, is checked by the scorer.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenfoundry.errors import ConfigError
from greenfoundry.scoring.evidence import PLANT_ID_RE, check_keys, parse_date, read_yaml

_ROW_KEYS = {"value", "unit", "coverage", "window", "context"}


@dataclass(frozen=True)
class Window:
    start: dt.date  # inclusive, plant-local
    end: dt.date  # exclusive, plant-local

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class Measured:
    """One row's measured value."""

    row_id: str
    value: Any
    unit: str | None
    coverage: float  # 0..1 of the window
    window: Window
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Indicators:
    source: str
    plant: str
    window: Window | None
    rows: dict[str, Measured]


def _window(data: Any, where: str) -> Window:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: window must be a mapping {{start: YYYY-MM-DD, end: YYYY-MM-DD}}"
        )
    check_keys(data, {"start", "end"}, f"{where}: window")
    start = parse_date(data.get("start"), where, "window start")
    end = parse_date(data.get("end"), where, "window end")
    if end <= start:
        raise ConfigError(
            f"{where}: window end {end} must be after start {start} (end is exclusive)"
        )
    return Window(start, end)


def parse_measured(row_id: Any, data: Any, default_window: Window | None, source: str) -> Measured:
    if not isinstance(row_id, str) or not row_id:
        raise ConfigError(f"{source}: rows: row id {row_id!r} must be text")
    where = f"{source}: row {row_id}"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping with value and coverage, got {data!r}")
    check_keys(data, _ROW_KEYS, where)
    if "value" not in data or data["value"] is None:
        raise ConfigError(f"{where}: value is missing (leave the row out when there is no data)")
    unit = data.get("unit")
    if unit is not None and (not isinstance(unit, str) or not unit.strip()):
        raise ConfigError(f"{where}: unit must be text, got {unit!r}")
    coverage = data.get("coverage")
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float)):
        raise ConfigError(f"{where}: coverage must be a number from 0 to 1, got {coverage!r}")
    if not 0.0 <= coverage <= 1.0:
        raise ConfigError(
            f"{where}: coverage {coverage} is outside 0..1 (a fraction of the window, not a percent)"
        )
    if "window" in data:
        window = _window(data["window"], where)
    elif default_window is not None:
        window = default_window
    else:
        raise ConfigError(f"{where}: no window (give one for the row or for the whole file)")
    context = data.get("context") or {}
    if not isinstance(context, dict) or not all(isinstance(k, str) for k in context):
        raise ConfigError(f"{where}: context must be a mapping of names to values")
    return Measured(
        row_id=row_id,
        value=data["value"],
        unit=unit.strip() if unit else None,
        coverage=float(coverage),
        window=window,
        context=dict(context),
    )


def parse_indicators(data: Any, source: str) -> Indicators:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping with version, plant, window and rows")
    check_keys(data, {"version", "plant", "window", "rows"}, source)
    if data.get("version") != 1:
        raise ConfigError(
            f"{source}: version {data.get('version')!r} is not supported (allowed: 1)"
        )
    plant = data.get("plant")
    if not isinstance(plant, str) or not PLANT_ID_RE.match(plant):
        raise ConfigError(f"{source}: plant {plant!r} must be the plant id of the evidence file")
    window = _window(data["window"], source) if data.get("window") is not None else None
    raw_rows = data.get("rows") or {}
    if not isinstance(raw_rows, dict):
        raise ConfigError(f"{source}: rows must be a mapping from row id to its value")
    rows = {rid: parse_measured(rid, item, window, source) for rid, item in raw_rows.items()}
    return Indicators(source=source, plant=plant, window=window, rows=rows)


def load_indicators(path: str | Path) -> Indicators:
    """Read and validate an indicators file (YAML, or JSON when it ends in .json)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the indicators file ({exc.strerror})") from exc

        def no_duplicates(pairs):
            keys = [k for k, _ in pairs]
            for k in keys:
                if keys.count(k) > 1:
                    raise ConfigError(f"{path.name}: key {k!r} is given twice")
            return dict(pairs)

        try:
            data = json.loads(text, object_pairs_hook=no_duplicates)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path.name}: not valid JSON at line {exc.lineno}") from exc
    else:
        data = read_yaml(path, "indicators file")
    return parse_indicators(data, path.name)
