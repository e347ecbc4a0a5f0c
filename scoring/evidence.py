"""The declared-evidence file: what a person declares about a row, and until when it holds.

`config/plants/<plant>/evidence.yaml` holds only declarations: per third-level row of
T/CFA 0308011.5-2024 that is read from documents rather than from sensors (checklists,
certificates, levels, years without a violation), the declared value, who declared it, when,
the last day it holds and the documents behind it. The plant's own facts (product, furnaces, DN
ranges, site, residential area) are not declared here: they are the plant config's
(`plant.yaml`, `greenfoundry.plant`), and `plant:` here only names that plant's id.

Dates are calendar dates YYYY-MM-DD (plant-local); `valid_until` is the last day the declaration
holds, so a row is expired when the evaluation date ("as of") is after it. The file is read by
`greenfoundry.inputs` (a key given twice or an impossible date is refused) and validated once, on
load: the first problem stops it with one `InputError` line naming the file, the key path
(`rows[<row id>].<key>`), the value and what is allowed; nothing is kept from a guess. Whether a
row id exists in the standard, and whether its value has the right type, is checked by the
scorer, which knows the standard.

Example::

    version: 1
    plant: demo-dip                  # the plant config's plant.id
    rows:
      mgmt.systems.four_systems:
        value: effective
        declared_by: Gao Yan (quality manager)
        declared_on: 2026-01-15
        valid_until: 2026-12-31
        references: [ISO 9001, ISO 14001, ISO 45001, ISO 50001 certificates]
      energy.sand_waste.resin_sand_reuse:
        value: not_applicable        # the row does not apply; a note must say why
        note: no resin-bonded sand on site (sockets use shell cores)
        declared_by: Wang Fang (energy manager)
        declared_on: 2026-01-12
        valid_until: 2026-12-31

A row's `context` adds the facts its tiers need that are not plant-wide (e.g. the VOC row's
`water_based_coating`, the injury row's `no_serious_injury`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenfoundry import inputs
from greenfoundry.errors import InputError
from greenfoundry.plant import ID_RE, ID_RULE

_ROW_KEYS = ("value", "declared_by", "declared_on", "valid_until", "references", "note", "context")
# `value: not_applicable` declares that a row does not apply to the plant (with a note saying why).
NOT_APPLICABLE_VALUE = "not_applicable"


@dataclass(frozen=True)
class Declaration:
    """One row's declared value and its provenance."""

    row_id: str
    value: Any
    declared_by: str
    declared_on: dt.date
    valid_until: dt.date
    references: tuple[str, ...] = ()
    note: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def not_applicable(self) -> bool:
        return self.value == NOT_APPLICABLE_VALUE

    def expired(self, as_of: dt.date) -> bool:
        """True when `as_of` is after the last valid day (`valid_until` itself still holds)."""
        return as_of > self.valid_until

    def not_yet_declared(self, as_of: dt.date) -> bool:
        """True when `as_of` is before the declaration was made: it cannot support that date."""
        return as_of < self.declared_on


@dataclass(frozen=True)
class Evidence:
    source: str  # the file it was read from, for messages
    plant: str  # the plant's id (the plant config's plant.id)
    rows: dict[str, Declaration] = field(default_factory=dict)


def plant_id(top: inputs.Node) -> str:
    """The `plant:` of an evidence or indicators file: the plant config's id."""
    return top.text("plant", pattern=ID_RE, expected=f"the plant config's plant.id ({ID_RULE})")


def row_context(row: inputs.Node) -> dict[str, Any]:
    """A row's `context`: a mapping of context keys to values (checked by the scorer)."""
    context = row.child("context", required=False)
    for key in context.data:
        if not isinstance(key, str):
            context.refuse(None, key, "context keys as text")
    return dict(context.data)


def parse_declaration(row: inputs.Node, row_id: str) -> Declaration:
    row.expect(("value", "declared_by", "declared_on", "valid_until"), _ROW_KEYS[4:])
    declared_on = row.date("declared_on")
    valid_until = row.date("valid_until")
    if valid_until < declared_on:
        row.refuse("valid_until", valid_until, f"a date on or after declared_on ({declared_on})")
    note = row.text("note", None)
    if row.get("value") == NOT_APPLICABLE_VALUE and not note:
        row.fail("missing; a row declared not_applicable needs a note saying why", "note")
    return Declaration(
        row_id=row_id,
        value=row.get("value"),
        declared_by=row.text("declared_by").strip(),
        declared_on=declared_on,
        valid_until=valid_until,
        references=row.texts("references"),
        note=note,
        context=row_context(row),
    )


def parse_evidence(data: Any, source: str) -> Evidence:
    top = inputs.Node(data, file=source, what="a mapping with version, plant and rows")
    top.expect(("version", "plant"), ("rows",))
    top.choice("version", (1,))
    plant = plant_id(top)
    rows_node = top.child("rows", required=False)
    rows = {}
    for row_id, item in rows_node.data.items():
        where = inputs.key_path("rows", row_id)
        if not isinstance(row_id, str):
            rows_node.refuse(None, row_id, "row ids as text")
        row = rows_node.node(
            item, where, "a mapping with value, declared_by, declared_on, valid_until"
        )
        rows[row_id] = parse_declaration(row, row_id)
    return Evidence(source=source, plant=plant, rows=rows)


def load_evidence(path: str | Path) -> Evidence:
    """Read and validate an evidence file. Raises one `InputError` line naming the file, the
    key path, the value and what is allowed."""
    data, file = inputs.read(path, "the evidence file", InputError)
    return parse_evidence(data, file)
