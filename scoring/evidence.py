"""The declared-evidence file: what a person declares about the plant, and until when it holds.

`config/plants/<plant>/evidence.yaml` carries two things:

* `plant:` the plant context every row's thresholds depend on (product gray/ductile, the DN range
  cast, whether a residential area lies within 1200 m, the melting furnace kind and capacity).
  The context is declared, not measured: an expert checks it against the permit and the plant
  list, so it lives here, with who declared it and when, and not in the indicators file.
* `rows:` per third-level row of T/CFA 0308011.5-2024 that is read from documents rather than from
  sensors (checklists, certificates, levels, years without a violation): the declared value, who
  declared it, when, until when it is valid, and references to the documents that support it.

Dates are calendar dates (plant-local); `valid_until` is the last day the declaration holds, so a
row is expired when the evaluation date ("as of") is after it. The file is validated once, on
load, and the first problem stops it with one line naming the row (or key) and the problem
(`ConfigError`); nothing is kept from a guess. Whether a row id exists in the standard, and whether
its value has the right type, is checked by the scorer, which knows the standard.

Example::

    version: 1
    plant:
      id: demo-dip
      product: ductile              # gray | ductile
      dn_range: [80, 1000]          # smallest and largest DN cast
      residential_within_1200m: false
      furnace: {kind: induction, capacity: 12}   # t for induction, t/h for cupola
      # iron_source: blast_furnace_or_cupola   # gray pipe only (Table 5)
      declared_by: Wang Fang (energy manager)
      declared_on: 2026-01-12
    rows:
      mgmt.four_systems:
        value: effective_with_results
        declared_by: Wang Fang (energy manager)
        declared_on: 2026-01-12
        valid_until: 2026-12-31
        references: [ISO9001 cert CN-Q-1234, ISO14001 cert CN-E-5678]
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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from greenfoundry.errors import ConfigError
from greenfoundry.glossary import CAPACITY_UNITS, FURNACE_KINDS, IRON_SOURCES, PRODUCTS

PLANT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

_PLANT_KEYS = {
    "id",
    "product",
    "dn_range",
    "residential_within_1200m",
    "furnace",
    "iron_source",
    "declared_by",
    "declared_on",
    "valid_until",
    "references",
}
_ROW_KEYS = {"value", "declared_by", "declared_on", "valid_until", "references", "note", "context"}
# `value: not_applicable` declares that a row does not apply to the plant (with a note saying why).
NOT_APPLICABLE_VALUE = "not_applicable"


@dataclass(frozen=True)
class Furnace:
    kind: str  # cupola | induction
    capacity: float  # t/h for a cupola, t for an induction furnace (CAPACITY_UNITS)

    @property
    def capacity_unit(self) -> str:
        return CAPACITY_UNITS[self.kind]


@dataclass(frozen=True)
class PlantContext:
    """The facts the standard's thresholds depend on (domain.md §1, 'Thresholds depend on context')."""

    id: str
    product: str  # gray | ductile
    dn_min: int | None  # smallest DN cast; required for a ductile plant
    dn_max: int | None  # largest DN cast
    residential_within_1200m: bool  # Table 6, noise tiers
    furnace: Furnace | None  # Table C.1; None when the plant declares no melting furnace
    iron_source: str | None  # gray pipe only (Table 5); IRON_SOURCES
    declared_by: str
    declared_on: dt.date
    valid_until: dt.date | None = None
    references: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The context as plain values, in the names the scorer and the JSON output use."""
        return {
            "id": self.id,
            "product": self.product,
            "dn_range": [self.dn_min, self.dn_max] if self.dn_min is not None else None,
            "residential_within_1200m": self.residential_within_1200m,
            "furnace_kind": self.furnace.kind if self.furnace else None,
            "furnace_capacity": self.furnace.capacity if self.furnace else None,
            "furnace_capacity_unit": self.furnace.capacity_unit if self.furnace else None,
            "iron_source": self.iron_source,
        }


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
    plant: PlantContext
    rows: dict[str, Declaration] = field(default_factory=dict)


def parse_date(value: Any, where: str, key: str) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ConfigError(f"{where}: {key} {value!r} must be a date (YYYY-MM-DD), not a date-time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: {key} {value!r} is not a date (YYYY-MM-DD)")


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty text, got {value!r}")
    return value.strip()


def _references(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: references must be a list of document references (text)")
    return tuple(v.strip() for v in value)


def check_keys(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def parse_plant(data: Any, source: str) -> PlantContext:
    where = f"{source}: plant"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping with id, product, dn_range, ...")
    check_keys(data, _PLANT_KEYS, where)
    plant_id = data.get("id")
    if not isinstance(plant_id, str) or not PLANT_ID_RE.match(plant_id):
        raise ConfigError(
            f"{where}: id {plant_id!r} must be lower-case letters, digits, - and _ (1–63 characters)"
        )
    product = data.get("product")
    if product not in PRODUCTS:
        raise ConfigError(f"{where}: product {product!r} must be one of {', '.join(PRODUCTS)}")
    dn_min = dn_max = None
    dn = data.get("dn_range")
    if dn is not None:
        if (
            not isinstance(dn, list)
            or len(dn) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in dn)
        ):
            raise ConfigError(f"{where}: dn_range {dn!r} must be [smallest DN, largest DN]")
        dn_min, dn_max = dn
        if dn_min > dn_max:
            raise ConfigError(f"{where}: dn_range {dn!r} is in the wrong order (smallest first)")
    elif product == "ductile":
        raise ConfigError(
            f"{where}: dn_range is required for a ductile plant (Tables A.1 and C.1 depend on DN)"
        )
    residential = data.get("residential_within_1200m")
    if not isinstance(residential, bool):
        raise ConfigError(
            f"{where}: residential_within_1200m must be true or false (Table 6 noise tiers), got {residential!r}"
        )
    furnace = None
    raw_furnace = data.get("furnace")
    if raw_furnace is not None:
        fwhere = f"{where}.furnace"
        if not isinstance(raw_furnace, dict):
            raise ConfigError(f"{fwhere}: must be a mapping with kind and capacity")
        check_keys(raw_furnace, {"kind", "capacity"}, fwhere)
        kind = raw_furnace.get("kind")
        if kind not in FURNACE_KINDS:
            raise ConfigError(f"{fwhere}: kind {kind!r} must be one of {', '.join(FURNACE_KINDS)}")
        capacity = _number(
            raw_furnace.get("capacity"), fwhere, f"capacity ({CAPACITY_UNITS[kind]})"
        )
        if capacity <= 0:
            raise ConfigError(f"{fwhere}: capacity {capacity} must be positive")
        furnace = Furnace(kind, capacity)
    iron_source = data.get("iron_source")
    if iron_source is not None and iron_source not in IRON_SOURCES:
        raise ConfigError(
            f"{where}: iron_source {iron_source!r} must be one of {', '.join(IRON_SOURCES)}"
        )
    declared_on = parse_date(data.get("declared_on"), where, "declared_on")
    valid_until = None
    if data.get("valid_until") is not None:
        valid_until = parse_date(data["valid_until"], where, "valid_until")
        if valid_until < declared_on:
            raise ConfigError(
                f"{where}: valid_until {valid_until} is before declared_on {declared_on}"
            )
    return PlantContext(
        id=plant_id,
        product=product,
        dn_min=dn_min,
        dn_max=dn_max,
        residential_within_1200m=residential,
        furnace=furnace,
        iron_source=iron_source,
        declared_by=_text(data.get("declared_by"), where, "declared_by"),
        declared_on=declared_on,
        valid_until=valid_until,
        references=_references(data.get("references"), where),
    )


def parse_declaration(row_id: Any, data: Any, source: str) -> Declaration:
    if not isinstance(row_id, str) or not row_id:
        raise ConfigError(f"{source}: rows: row id {row_id!r} must be text")
    where = f"{source}: row {row_id}"
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: must be a mapping with value, declared_by, declared_on, valid_until"
        )
    check_keys(data, _ROW_KEYS, where)
    if "value" not in data or data["value"] is None:
        raise ConfigError(f"{where}: value is missing (leave the row out if nothing is declared)")
    declared_on = parse_date(data.get("declared_on"), where, "declared_on")
    if "valid_until" not in data:
        raise ConfigError(
            f"{where}: valid_until is missing; every declaration must say until when it holds"
        )
    valid_until = parse_date(data.get("valid_until"), where, "valid_until")
    if valid_until < declared_on:
        raise ConfigError(f"{where}: valid_until {valid_until} is before declared_on {declared_on}")
    note = data.get("note")
    if note is not None and not isinstance(note, str):
        raise ConfigError(f"{where}: note must be text")
    if data["value"] == NOT_APPLICABLE_VALUE and not (note and note.strip()):
        raise ConfigError(f"{where}: a row declared not_applicable needs a note saying why")
    context = data.get("context") or {}
    if not isinstance(context, dict) or not all(isinstance(k, str) for k in context):
        raise ConfigError(f"{where}: context must be a mapping of names to values")
    return Declaration(
        row_id=row_id,
        value=data["value"],
        declared_by=_text(data.get("declared_by"), where, "declared_by"),
        declared_on=declared_on,
        valid_until=valid_until,
        references=_references(data.get("references"), where),
        note=note,
        context=dict(context),
    )


def parse_evidence(data: Any, source: str) -> Evidence:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping with version, plant and rows")
    check_keys(data, {"version", "plant", "rows"}, source)
    if data.get("version") != 1:
        raise ConfigError(
            f"{source}: version {data.get('version')!r} is not supported (allowed: 1)"
        )
    plant = parse_plant(data.get("plant"), source)
    raw_rows = data.get("rows") or {}
    if not isinstance(raw_rows, dict):
        raise ConfigError(f"{source}: rows must be a mapping from row id to its declaration")
    rows = {row_id: parse_declaration(row_id, item, source) for row_id, item in raw_rows.items()}
    return Evidence(source=source, plant=plant, rows=rows)


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice: PyYAML would keep the last one silently."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"line {key_node.start_mark.line + 1}: key {key!r} is given twice")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def read_yaml(path: str | Path, what: str) -> Any:
    """Read a YAML (or JSON) file; a duplicate key is an error, not a silent overwrite."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path.name}: not valid YAML{at}") from exc


def load_evidence(path: str | Path) -> Evidence:
    """Read and validate an evidence file. Raises ConfigError naming the row and the problem."""
    return parse_evidence(read_yaml(path, "evidence file"), Path(path).name)
