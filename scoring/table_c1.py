"""Table C.1 of T/CFA 0308011.5-2024: energy per tonne of liquid iron, as a pure function.

``table_c1_limits(furnace_kind, furnace_capacity, product, dn=None, tap_temp_c=None,
annual_mean_air_temp_c=None)`` picks the Table C.1 row for a furnace and returns its three limits
corrected by notes 1, 2 and 4, with
every correction it applied (and every one it did not, and why). The rows, reference
temperatures, note coefficients, the kWh -> kgce factor and the open readings (does note 4 apply
to cupola rows?) are data in the standard's YAML (``furnace_table``), so they are visible and can
be overridden: pass ``options={"note4_cupola": "convert"}`` or ``kwh_to_kgce=…``, or another
file.

Notes as printed (T/CFA 0308011.5-2024, Table C.1):

* note 1: a cupola tapping temperature other than 1480 °C moves every limit 0.6 kgce/t per °C,
  up when hotter;
* note 2: an induction-furnace tapping temperature other than the specified one (gray 1480 °C;
  ductile DN80–300 1500 °C, DN350–1000 1450 °C, above DN1000 1450 °C) moves every limit
  0.6 kWh/t per °C, up when hotter;
* note 3: a capacity between two rows is scored on the lower row (cupola 9.5 t/h -> 6～9 row);
* note 4: a site whose mean air temperature of the latest calendar year is not 25 °C moves every
  limit 0.4 kWh/t per °C, DOWN when warmer.

A capacity below every row (cupola < 5 t/h, induction ≤ 5 t) raises ``NotCoveredError``: the
standard sets no limit there, and a tier would be invented.

Every number of the table (rows, reference tapping temperatures, the 1300 °C hot metal of the
induction rows, note coefficients) is read from the standard's file; other code asks this module
(``specified_tap_temp_c``, ``hot_metal_c``) instead of keeping copies.

Public API: ``table_c1_limits``, ``limits_for_context``, ``tier_for``, ``row_for``,
``specified_tap_temp_c``, ``hot_metal_c``, ``plant_furnace``, ``weighted_tap_temp_c``,
``C1Limits``, ``Correction``, ``FurnaceTable`` (``parse_table``), ``FurnaceSpec``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from greenfoundry import glossary, inputs
from greenfoundry.errors import ConfigError, InputError, NotCoveredError
from greenfoundry.scoring.standard import (
    NUMERIC_CMPS,
    ContextError,
    Tier,
    compare,
    item_path,
    parse_printed,
)

OPTION_NOTE4_CUPOLA = ("skip", "convert")
# The standard file's decision on one Table C.1 value for a plant with several furnaces.
PLANT_DECISION = "D-c1-plant"


@dataclass(frozen=True)
class FurnaceSpec:
    """A furnace kind as Table C.1 prints it."""

    kind: str  # glossary.FURNACE_KINDS
    name_zh: str
    name_en: str
    capacity_unit: str  # t/h (cupola) or t (induction)
    capacity_printed: str
    unit: str  # the unit of the row's value: kgce/t (cupola) or kWh/t (induction), D-c1-unit
    decision: str | None = None
    hot_metal_c: float | None = None  # the temperature of the iron it receives (induction: 1300)
    hot_metal_printed: str = ""


@dataclass(frozen=True)
class C1Row:
    id: str
    label: str
    furnace_kind: str
    product: str | None
    capacity_printed: str
    capacity_bound: tuple[str, float]  # ("ge" | "gt", lower bound)
    capacity_top: float | None  # the printed upper end; beyond it only note 3 reaches the row
    tiers: tuple[Tier, ...]


@dataclass(frozen=True)
class RefTemp:
    furnace_kind: str
    product: str | None
    dn: dict[str, float] | None
    temp_c: float
    printed: str


@dataclass(frozen=True)
class Note:
    no: int
    kind: str  # "tap_temp" | "capacity_lower_row" | "ambient"
    furnace_kind: str | None
    per_c: float | None
    unit: str
    reference_c: float | None
    printed: str


@dataclass(frozen=True)
class FurnaceTable:
    """Table C.1 as parsed from the standard's ``furnace_table`` (see ``parse_table``)."""

    id: str
    source: str
    row_id: str
    furnaces: dict[str, FurnaceSpec]
    rows: tuple[C1Row, ...]
    reference_tap_temps: tuple[RefTemp, ...]
    notes: tuple[Note, ...]
    kwh_to_kgce: float
    kwh_to_kgce_source: str
    options: dict[str, str]
    option_help: dict[str, str]
    decision_ids: tuple[str, ...]

    def note(self, kind: str, furnace_kind: str | None = None) -> Note | None:
        for n in self.notes:
            if n.kind == kind and (furnace_kind is None or n.furnace_kind in (None, furnace_kind)):
                return n
        return None


@dataclass(frozen=True)
class Correction:
    """One note applied (or not) to the limits: ``delta`` in the row's unit, added to each limit."""

    note: int
    applied: bool
    delta: float
    explanation: str
    # When a temperature was not given (decision D-c1-no-temp): the context key, the temperature
    # assumed in its place (None when the DN needed to pick it is unknown), the note's slope in
    # the row's unit per °C; the scorer says what the assumption can cost.
    missing: str | None = None
    assumed_c: float | None = None
    per_c: float | None = None


@dataclass(frozen=True)
class C1Limits:
    """The Table C.1 row for one furnace and its limits, base and corrected."""

    table: str
    row_id: str
    label: str
    furnace_kind: str
    furnace_capacity: float
    furnace_capacity_unit: str
    product: str
    dn: int | None
    unit: str
    printed: tuple[str, ...]
    comparators: tuple[str, ...]
    base_limits: tuple[float, ...]
    limits: tuple[float, ...]
    tiers: tuple[Tier, ...]
    corrections: tuple[Correction, ...]
    reference_tap_temp_c: float | None
    tap_temp_c: float | None
    annual_mean_air_temp_c: float | None
    kwh_to_kgce: float
    options: dict[str, str] = field(default_factory=dict)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(c.explanation for c in self.corrections)

    @property
    def limits_kgce(self) -> tuple[float, ...] | None:
        """The limits in kgce/t when the row is in kWh/t (equivalent value, GB/T 2589)."""
        if self.unit != "kWh/t":
            return None
        f = Fraction(str(self.kwh_to_kgce))
        return tuple(float(Fraction(str(v)) * f) for v in self.limits)


# --------------------------------------------------------------------------- parsing


def _node(file: str, path: str, data: Any, required=(), optional=()) -> inputs.Node:
    return inputs.Node(data, path, file=file, error=ConfigError).expect(required, optional)


def parse_table(raw: Any, file: str, context_keys: Mapping[str, Any]) -> FurnaceTable:
    """Validate the ``furnace_table`` section of a standard file."""
    top = _node(
        file,
        "furnace_table",
        raw,
        ("id", "source", "row_id", "furnaces", "rows", "notes", "factors", "options"),
        ("reference_tap_temp_c", "decisions"),
    )
    furnaces: dict[str, FurnaceSpec] = {}
    kinds_key = context_keys.get("furnace_kind")
    for kind, spec in top.child("furnaces").data.items():
        r = _node(
            file,
            f"furnace_table.furnaces.{kind}",
            spec,
            ("name_zh", "name_en", "capacity_unit", "capacity_printed", "unit"),
            ("decision", "hot_metal_c", "hot_metal_printed"),
        )
        if kind not in glossary.FURNACE_KINDS:
            top.child("furnaces").fail(
                f"unknown furnace kind; expected one of {', '.join(glossary.FURNACE_KINDS)} "
                "(greenfoundry.glossary)",
                str(kind),
            )
        furnaces[kind] = FurnaceSpec(
            kind,
            r.text("name_zh"),
            r.text("name_en"),
            r.choice("capacity_unit", (glossary.CAPACITY_UNITS[kind],)),
            r.text("capacity_printed"),
            r.text("unit"),
            r.get("decision", None),
            r.number("hot_metal_c", None, low=0, high=2000, unit="°C"),
            r.get("hot_metal_printed", ""),
        )
    if kinds_key is not None and set(furnaces) != set(kinds_key.values):
        top.refuse(
            "furnaces",
            sorted(furnaces),
            f"the values of context_keys.furnace_kind ({', '.join(kinds_key.values)})",
        )

    rows = []
    for where, row in top.items("rows"):
        r = _node(
            file,
            item_path(where, "furnace_table.rows", row),
            row,
            ("id", "label", "furnace_kind", "capacity", "tiers"),
            ("product",),
        )
        kind = r.choice("furnace_kind", tuple(furnaces))
        cap = _node(file, f"{r.path}.capacity", r.get("capacity"), ("printed",), ("ge", "gt", "le"))
        bounds = [k for k in ("ge", "gt") if cap.has(k)]
        if len(bounds) != 1:
            cap.fail("give exactly one lower bound, ge or gt (note 3 makes the next row the top)")
        tiers = []
        for k, (twhere, t) in enumerate(r.items("tiers")):
            tr = _node(file, twhere, t, ("tier", "cmp", "value", "printed"))
            tr.choice("tier", (k + 1,))
            cmp = tr.choice("cmp", NUMERIC_CMPS[:4])
            if parse_printed(tr.text("printed")) != (cmp, float(tr.number("value"))):
                tr.fail(f"evaluated as {cmp} {tr.get('value')} but printed {tr.get('printed')!r}")
            tiers.append(Tier(k + 1, cmp, tr.number("value"), tr.text("printed")))
        vals = [t.value for t in tiers]
        if len(tiers) != 3 or vals != sorted(vals):
            r.refuse("tiers", vals, "three '<' limits rising from tier 1 to tier 3")
        rows.append(
            C1Row(
                r.text("id"),
                r.text("label"),
                kind,
                r.get("product", None),
                str(cap.get("printed")),
                (bounds[0], cap.number(bounds[0])),
                cap.number("le", None),
                tuple(tiers),
            )
        )

    refs = []
    for where, ref in top.items("reference_tap_temp_c"):
        r = _node(file, where, ref, ("furnace_kind", "temp_c", "printed"), ("product", "dn"))
        refs.append(
            RefTemp(
                r.choice("furnace_kind", tuple(furnaces)),
                r.get("product", None),
                r.get("dn", None),
                r.number("temp_c", unit="°C"),
                r.text("printed"),
            )
        )

    notes = []
    for where, n in top.items("notes"):
        r = _node(
            file,
            where,
            n,
            ("number", "kind", "printed"),
            ("furnace_kind", "per_c", "unit", "reference_c"),
        )
        notes.append(
            Note(
                r.number("number", integer=True),
                r.choice("kind", ("tap_temp", "capacity_lower_row", "ambient")),
                r.choice("furnace_kind", tuple(furnaces), None),
                r.number("per_c", None),
                r.get("unit", ""),
                r.number("reference_c", None, unit="°C"),
                r.text("printed"),
            )
        )

    fac = _node(file, "furnace_table.factors", top.get("factors"), ("kwh_to_kgce",))
    k2k = _node(
        file,
        "furnace_table.factors.kwh_to_kgce",
        fac.get("kwh_to_kgce"),
        ("value", "unit", "source"),
    )
    opts = _node(file, "furnace_table.options", top.get("options"), ("note4_cupola",))
    o4 = _node(
        file,
        "furnace_table.options.note4_cupola",
        opts.get("note4_cupola"),
        ("value", "allowed", "help"),
        ("decision",),
    )
    o4.choice("value", OPTION_NOTE4_CUPOLA)
    if o4.list("allowed") != list(OPTION_NOTE4_CUPOLA):
        o4.refuse("allowed", o4.get("allowed"), ", ".join(OPTION_NOTE4_CUPOLA))
    decision_ids = list(top.list("decisions"))
    for d in (*(spec.decision for spec in furnaces.values()), o4.get("decision", None)):
        if d:
            decision_ids.append(d)
    return FurnaceTable(
        id=top.text("id"),
        source=top.text("source"),
        row_id=top.text("row_id"),
        furnaces=furnaces,
        rows=tuple(rows),
        reference_tap_temps=tuple(refs),
        notes=tuple(notes),
        kwh_to_kgce=k2k.number("value", above=0, unit="kgce/kWh"),
        kwh_to_kgce_source=k2k.text("source"),
        options={"note4_cupola": o4.get("value")},
        option_help={"note4_cupola": o4.text("help")},
        decision_ids=tuple(dict.fromkeys(decision_ids)),
    )


# --------------------------------------------------------------------------- the function


def _default_table() -> FurnaceTable:
    from greenfoundry.scoring.standard import load_standard

    table = load_standard().furnace_table
    if table is None:
        raise ConfigError("the default standard has no furnace_table (Table C.1)")
    return table


def _dn_in(bounds: Mapping[str, float] | None, dn: int) -> bool:
    cmp = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return bounds is None or all(compare(dn, cmp[k], v) for k, v in bounds.items())


@functools.lru_cache(maxsize=65536)
def _frac(x: float) -> Fraction:
    """The exact decimal a number was written as (its shortest repr). Cached: the metrics call
    Table C.1 twice an hour with the same table constants, and Fraction parsing was a fifth of
    a backfill's profile. Fractions are immutable, so sharing them is safe."""
    return Fraction(str(x))


def _spec(table: FurnaceTable, furnace_kind: str, product: str) -> FurnaceSpec:
    if furnace_kind not in table.furnaces:
        raise ContextError(
            f"Table C.1: furnace_kind {inputs.show(furnace_kind)} is not allowed; expected one "
            f"of {', '.join(table.furnaces)}"
        )
    if product not in glossary.PRODUCTS:
        raise ContextError(
            f"Table C.1: product {inputs.show(product)} is not allowed; expected one of "
            f"{', '.join(glossary.PRODUCTS)}"
        )
    return table.furnaces[furnace_kind]


def row_for(
    furnace_kind: str,
    furnace_capacity: float,
    product: str,
    *,
    table: FurnaceTable | None = None,
) -> C1Row:
    """The Table C.1 row of a furnace (note 3: a capacity between two rows takes the lower row).

    Raises ``NotCoveredError`` below every row (cupola < 5 t/h, induction ≤ 5 t; D-c1-outside).
    """
    table = table or _default_table()
    spec = _spec(table, furnace_kind, product)
    if isinstance(furnace_capacity, bool) or not isinstance(furnace_capacity, (int, float)):
        raise ContextError(
            f"Table C.1: furnace_capacity {inputs.show(furnace_capacity)} is not allowed; "
            f"expected a number ({spec.capacity_unit})"
        )
    candidates = [
        r for r in table.rows if r.furnace_kind == furnace_kind and r.product in (None, product)
    ]
    # Note 3: a capacity between two rows is scored on the lower row, so each row covers from its
    # own lower bound up to the next row's; the row with the highest bound the capacity reaches.
    reached = [
        r
        for r in candidates
        if compare(
            furnace_capacity, "≥" if r.capacity_bound[0] == "ge" else ">", r.capacity_bound[1]
        )
    ]
    if not reached:
        printed = ", ".join(f"{r.capacity_printed} {spec.capacity_unit}" for r in candidates)
        raise NotCoveredError(
            f"Table C.1 does not cover a {spec.name_en} of {furnace_capacity:g} "
            f"{spec.capacity_unit}: its rows start at {printed}"
        )
    return max(reached, key=lambda r: r.capacity_bound[1])


def _references(table: FurnaceTable, furnace_kind: str, product: str) -> list[RefTemp]:
    return [
        t
        for t in table.reference_tap_temps
        if t.furnace_kind == furnace_kind and t.product in (None, product)
    ]


def _reference_for_dn(
    table: FurnaceTable, furnace_kind: str, product: str, dn: int | None, note_no: int
) -> RefTemp:
    spec = table.furnaces[furnace_kind]
    refs = _references(table, furnace_kind, product)
    if any(t.dn for t in refs):
        if dn is None:
            raise ContextError(
                f"Table C.1 note {note_no}: a {product} pipe {spec.name_en} needs --dn: the "
                "specified tapping temperature depends on the DN range ("
                + "; ".join(t.printed for t in refs)
                + ")"
            )
        refs = [t for t in refs if _dn_in(t.dn, dn)]
        if not refs:
            raise NotCoveredError(
                f"Table C.1 note {note_no}: DN {dn} is in no DN range of the table ("
                + "; ".join(t.printed for t in _references(table, furnace_kind, product) if t.dn)
                + ")"
            )
    if not refs:
        raise ContextError(
            f"Table C.1 gives no specified tapping temperature for a {product} pipe {spec.name_en}"
        )
    return refs[0]


def specified_tap_temp_c(
    furnace_kind: str, product: str, dn: int | None = None, *, table: FurnaceTable | None = None
) -> float:
    """The tapping temperature Table C.1 specifies (notes 1 and 2 correct from it), in °C: a
    cupola 1480 °C; an induction furnace 1480 °C for gray pipe, and for ductile pipe DN80–300
    1500 °C, DN350–1000 and above DN1000 1450 °C. The numbers are the standard file's."""
    table = table or _default_table()
    _spec(table, furnace_kind, product)
    note = table.note("tap_temp", furnace_kind)
    return _reference_for_dn(table, furnace_kind, product, dn, note.no if note else 0).temp_c


def hot_metal_c(furnace_kind: str, *, table: FurnaceTable | None = None) -> float | None:
    """The temperature of the iron a furnace of this kind receives, as Table C.1 states it
    (induction rows: hot metal received at 1300 °C and superheated); None when it says none."""
    table = table or _default_table()
    spec = table.furnaces.get(furnace_kind)
    return spec.hot_metal_c if spec else None


def plant_furnace(
    furnaces: Iterable[Any], product: str, *, table: FurnaceTable | None = None, source: str = ""
) -> tuple[str, float] | None:
    """The (furnace_kind, furnace_capacity) Table C.1 scores a plant on, from its furnaces
    (`greenfoundry.plant.Furnace`: `id`, `kind`, `capacity`); None when it lists none.

    Table C.1 gives one row per furnace. When every furnace falls on the same row (or none is
    covered, on the same kind), that row is the plant's: the capacity returned is the smallest
    (any furnace of the row gives the same limits). Furnaces on different rows are refused with
    an `InputError` citing decision D-c1-plant: the plant's one value is then Σ energy / Σ tonnes
    against the tonnage-weighted corrected limits, which the metrics compute
    (`greenfoundry.metrics.table_c1.plant_energy_per_t`), not this function.
    """
    table = table or _default_table()
    furnaces = list(furnaces)
    if not furnaces:
        return None
    rows = {}
    for f in furnaces:
        try:
            rows[f.id] = row_for(f.kind, f.capacity, product, table=table).id
        except NotCoveredError:
            rows[f.id] = "not covered"
    kinds = {f.kind for f in furnaces}
    if len(kinds) == 1 and len(set(rows.values())) == 1:
        return furnaces[0].kind, min(f.capacity for f in furnaces)
    prefix = f"{source}: " if source else ""
    shown = ", ".join(
        f"{f.id} ({f.kind} {f.capacity:g} {f.capacity_unit}: {rows[f.id]})" for f in furnaces
    )
    raise InputError(
        f"{prefix}furnaces: {shown} fall on different Table C.1 rows; their one plant value "
        f"is decision {PLANT_DECISION}'s (Σ energy / Σ tonnes against the tonnage-weighted "
        "corrected limits; a cupola with an induction furnace is refused), and the indicators "
        "file from `greenfoundry metrics indicators` carries it; the scorer still takes one "
        "Table C.1 row from the plant's furnaces, so score a plant whose furnaces share one row"
    )


def table_c1_limits(
    furnace_kind: str,
    furnace_capacity: float,
    product: str,
    dn: int | None = None,
    tap_temp_c: float | None = None,
    annual_mean_air_temp_c: float | None = None,
    *,
    table: FurnaceTable | None = None,
    options: Mapping[str, str] | None = None,
    kwh_to_kgce: float | None = None,
) -> C1Limits:
    """The Table C.1 row and its three corrected limits (T/CFA 0308011.5-2024, Table C.1, notes 1–4).

    ``furnace_kind`` is "cupola" or "induction"; ``furnace_capacity`` is the melting capacity in
    t/h for a cupola and the furnace capacity in t for an induction furnace; ``product`` "gray"
    or "ductile"; ``dn`` is needed for a ductile-pipe induction furnace when a tapping
    temperature is given (it picks the specified temperature of note 2); ``tap_temp_c`` is the
    tonnage-weighted mean tapping temperature (see ``weighted_tap_temp_c``);
    ``annual_mean_air_temp_c`` the site's mean air temperature of the latest calendar year
    (note 4). A temperature not given means its note is not applied, and the result says so.

    Raises ``NotCoveredError`` for a capacity below every row or a DN in no printed range, and
    ``ContextError`` for a furnace kind or product the table does not know.
    """
    table = table or _default_table()
    opts = {**table.options, **(options or {})}
    if opts["note4_cupola"] not in OPTION_NOTE4_CUPOLA:
        raise ContextError(
            f"option note4_cupola {inputs.show(opts['note4_cupola'])} is not allowed; expected "
            f"one of {', '.join(OPTION_NOTE4_CUPOLA)}"
        )
    factor = table.kwh_to_kgce if kwh_to_kgce is None else kwh_to_kgce
    row = row_for(furnace_kind, furnace_capacity, product, table=table)
    spec = table.furnaces[furnace_kind]
    cap_unit = spec.capacity_unit
    corrections: list[Correction] = []
    if row.capacity_top is not None and furnace_capacity > row.capacity_top:
        candidates = [
            r for r in table.rows if r.furnace_kind == furnace_kind and r.product in (None, product)
        ]
        higher = [r for r in candidates if r.capacity_bound[1] > row.capacity_bound[1]]
        nxt = min(higher, key=lambda r: r.capacity_bound[1]).capacity_printed if higher else "-"
        corrections.append(
            Correction(
                3,
                True,
                0.0,
                f"note 3: {furnace_capacity:g} {cap_unit} lies between row {row.capacity_printed} "
                f"and row {nxt}; scored on the lower row",
            )
        )

    unit = spec.unit
    delta = Fraction(0)

    # Notes 1 and 2: tapping temperature against the reference for this furnace/product/DN.
    tap_note = table.note("tap_temp", furnace_kind)
    ref_c = None
    if tap_note is not None:
        refs = _references(table, furnace_kind, product)
        if tap_temp_c is None:
            if len({t.temp_c for t in refs}) == 1:
                ref_c = refs[0].temp_c
            elif dn is not None:
                try:
                    ref_c = _reference_for_dn(table, furnace_kind, product, dn, tap_note.no).temp_c
                except NotCoveredError:
                    ref_c = None
            assumed = "the specified temperature" + (f", {ref_c:g} °C," if ref_c else "")
            corrections.append(
                Correction(
                    tap_note.no,
                    False,
                    0.0,
                    f"note {tap_note.no}: not applied, no tapping temperature given "
                    f"({assumed} is assumed)",
                    missing="tap_temp_c",
                    assumed_c=ref_c,
                    per_c=tap_note.per_c,
                )
            )
        else:
            ref = _reference_for_dn(table, furnace_kind, product, dn, tap_note.no)
            ref_c = ref.temp_c
            d = (_frac(tap_temp_c) - _frac(ref.temp_c)) * _frac(tap_note.per_c)
            delta += d
            corrections.append(
                Correction(
                    tap_note.no,
                    True,
                    float(d),
                    f"note {tap_note.no}: tapping {tap_temp_c:g} °C vs specified "
                    f"{ref.temp_c:g} °C ({ref.printed}) -> limits {float(d):+g} {tap_note.unit}",
                )
            )

    # Note 4: site mean air temperature. Its unit is kWh/t; for a cupola row (kgce/t) the option
    # note4_cupola says whether it is skipped or converted at the equivalent value.
    amb = table.note("ambient")
    if amb is not None:
        applies = amb.furnace_kind in (None, furnace_kind)
        per_c = _frac(amb.per_c)
        unit_note = amb.unit
        if not applies and opts["note4_cupola"] == "convert" and unit == "kgce/t":
            per_c = per_c * _frac(factor)
            unit_note = f"kgce/t (converted at {factor:g} kgce/kWh)"
            applies = True
        if not applies:
            corrections.append(
                Correction(
                    amb.no,
                    False,
                    0.0,
                    f"note {amb.no}: not applied to {spec.name_en} rows "
                    f"(option note4_cupola=skip: the note is in {amb.unit}, the row in {unit})",
                )
            )
        elif annual_mean_air_temp_c is None:
            corrections.append(
                Correction(
                    amb.no,
                    False,
                    0.0,
                    f"note {amb.no}: not applied, no site mean air temperature given "
                    f"({amb.reference_c:g} °C is assumed)",
                    missing="annual_mean_air_temp_c",
                    assumed_c=amb.reference_c,
                    per_c=float(per_c),
                )
            )
        else:
            d = (_frac(annual_mean_air_temp_c) - _frac(amb.reference_c)) * per_c
            delta += d
            corrections.append(
                Correction(
                    amb.no,
                    True,
                    float(d),
                    f"note {amb.no}: site mean {annual_mean_air_temp_c:g} °C vs "
                    f"{amb.reference_c:g} °C -> limits {float(d):+g} {unit_note}",
                )
            )

    base = tuple(t.value for t in row.tiers)
    limits = tuple(float(_frac(v) + delta) for v in base)
    tiers = tuple(
        Tier(t.tier, t.cmp, lim, t.printed) for t, lim in zip(row.tiers, limits, strict=True)
    )
    corrections.sort(key=lambda c: c.note)
    return C1Limits(
        table=table.id,
        row_id=row.id,
        label=row.label,
        furnace_kind=furnace_kind,
        furnace_capacity=furnace_capacity,
        furnace_capacity_unit=cap_unit,
        product=product,
        dn=dn,
        unit=unit,
        printed=tuple(t.printed for t in row.tiers),
        comparators=tuple(t.cmp for t in row.tiers),
        base_limits=base,
        limits=limits,
        tiers=tiers,
        corrections=tuple(corrections),
        reference_tap_temp_c=ref_c,
        tap_temp_c=tap_temp_c,
        annual_mean_air_temp_c=annual_mean_air_temp_c,
        kwh_to_kgce=factor,
        options=opts,
    )


def tier_for(limits: C1Limits, value: float) -> int | None:
    """The tier (1, 2, 3) a value in the row's unit meets against the corrected limits, else None."""
    return next((t.tier for t in limits.tiers if compare(value, t.cmp, t.value)), None)


def limits_for_context(
    table: FurnaceTable, context: Mapping[str, Any], *, row_id: str = ""
) -> C1Limits:
    """``table_c1_limits`` fed from a scorer context (keys furnace_kind, furnace_capacity,
    product, dn, tap_temp_c, annual_mean_air_temp_c, and optionally c1_options)."""
    for key in ("furnace_kind", "furnace_capacity", "product"):
        if context.get(key) is None:
            raise ContextError(
                f"rows[{row_id}].context.{key}: missing; Table C.1 needs it to choose its row"
            )
    return table_c1_limits(
        context["furnace_kind"],
        context["furnace_capacity"],
        context["product"],
        dn=context.get("dn"),
        tap_temp_c=context.get("tap_temp_c"),
        annual_mean_air_temp_c=context.get("annual_mean_air_temp_c"),
        table=table,
        options=context.get("c1_options"),
    )


def weighted_tap_temp_c(temps_c: Iterable[float], tonnes: Iterable[float]) -> float:
    """The tonnage-weighted mean tapping temperature, Σ(T·m)/Σm (Table C.1 notes 1 and 2 take one
    temperature per window; each tap counts by the iron it delivered)."""
    temps, masses = list(temps_c), list(tonnes)
    if len(temps) != len(masses):
        raise ValueError("one tonnage per tapping temperature")
    total = sum(masses)
    if not temps or total <= 0 or any(m < 0 for m in masses):
        raise ValueError("need at least one tap and a positive total tonnage")
    return sum(t * m for t, m in zip(temps, masses, strict=True)) / total
