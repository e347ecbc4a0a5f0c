"""The indicator-values input: measured values per row of the standard, with window and coverage.

A YAML or JSON mapping (a file ending in ``.json`` is read as JSON), read by
`greenfoundry.inputs` (a key given twice or an impossible date is refused)::

    version: 1
    plant: demo-dip                  # the plant config's plant.id
    window: {start: 2025-01-01, end: 2026-01-01}   # default window of every row
    rows:
      energy.pipe.kgce_per_t:        # a row id of the standard (`greenfoundry standard show`)
        value: 108.4
        unit: kgce/t                 # optional; when given it must be the row's unit
        coverage: 0.97               # share of the window with valid data, 0..1
      energy.liquid_iron.energy_per_t:
        value: 205.0
        unit: kWh/t
        coverage: 0.96
        context: {dn: 600, tap_temp_c: 1462.0}   # Table C.1: the DN and note 2's temperature
      scale.output.annual_output:
        value: 24.6
        coverage: 1.0
        window: {start: 2023-01-01, end: 2026-01-01}   # a row may cover its own window

Time: a window is `start` (inclusive) to `end` (exclusive), plant-local calendar dates
YYYY-MM-DD, so the year 2025 is `{start: 2025-01-01, end: 2026-01-01}`. `coverage` is the
fraction of that window for which the value's underlying data was valid (computed by the
metrics, not here); below the scorer's threshold the row is "low coverage" and does not score.

`context` carries measured facts a row's limits depend on (Table C.1: the tonnage-weighted mean
tapping temperature; the DN the value is for). The plant's facts (product, furnaces, DN ranges,
residential area, a configured annual mean air temperature) are the plant config's; a row's
context may not contradict them.

Validation here is of shape only: the first problem stops with one `InputError` line naming the
file, the key path (`rows[<row id>].<key>`), the value and what is allowed. Whether the row
exists, and whether value, unit and context fit it, is checked by the scorer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenfoundry import inputs
from greenfoundry.errors import InputError
from greenfoundry.scoring.evidence import plant_id, row_context

_ROW_KEYS = ("value", "coverage", "unit", "window", "context")


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


def _window(parent: inputs.Node) -> Window:
    w = parent.child("window").expect(("start", "end"))
    start, end = w.date("start"), w.date("end")
    if end <= start:
        w.refuse("end", end, f"a date after start ({start}); end is exclusive")
    return Window(start, end)


def parse_measured(row: inputs.Node, row_id: str, default_window: Window | None) -> Measured:
    row.expect(("value", "coverage"), _ROW_KEYS[2:])
    unit = row.text("unit", None)
    coverage = row.number("coverage")
    if not 0.0 <= coverage <= 1.0:
        row.refuse("coverage", coverage, "a share of the window from 0 to 1 (not a percent)")
    if row.has("window"):
        window = _window(row)
    elif default_window is not None:
        window = default_window
    else:
        row.fail("missing; give a window for the row or for the whole file", "window")
    return Measured(
        row_id=row_id,
        value=row.get("value"),
        unit=unit.strip() if unit else None,
        coverage=float(coverage),
        window=window,
        context=row_context(row),
    )


def parse_indicators(data: Any, source: str) -> Indicators:
    top = inputs.Node(data, file=source, what="a mapping with version, plant, window and rows")
    top.expect(("version", "plant"), ("window", "rows"))
    top.choice("version", (1,))
    plant = plant_id(top)
    window = _window(top) if top.has("window") else None
    rows_node = top.child("rows", required=False)
    rows = {}
    for row_id, item in rows_node.data.items():
        if not isinstance(row_id, str):
            rows_node.refuse(None, row_id, "row ids as text")
        row = rows_node.node(
            item, inputs.key_path("rows", row_id), "a mapping with value and coverage"
        )
        rows[row_id] = parse_measured(row, row_id, window)
    return Indicators(source=source, plant=plant, window=window, rows=rows)


def load_indicators(path: str | Path) -> Indicators:
    """Read and validate an indicators file (YAML, or JSON when it ends in .json)."""
    data, file = inputs.read(path, "the indicators file", InputError)
    return parse_indicators(data, file)
