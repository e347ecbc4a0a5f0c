"""Table C.1 of T/CFA 0308011.5-2024: energy per tonne of liquid iron, as a pure function.

``table_c1_limits(furnace, capacity, product, dn=None, tap_temp_c=None, annual_mean_air_temp_c=None)`` picks
the Table C.1 row for a furnace and returns its three limits corrected by notes 1, 2 and 4, with
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

Public API: ``table_c1_limits``, ``limits_for_context``, ``tier_for``,
``weighted_tap_temp_c``, ``C1Limits``, ``Correction``, ``FurnaceTable`` (``parse_table``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from greenfoundry.errors import ConfigError, NotCoveredError
from greenfoundry.scoring.standard import (
    NUMERIC_CMPS,
    ContextError,
    Tier,
    _Reader,
    compare,
    parse_printed,
)

OPTION_NOTE4_CUPOLA = ("skip", "convert")


@dataclass(frozen=True)
class C1Row:
    id: str
    label: str
    furnace: str
    product: str | None
    capacity_printed: str
    capacity_bound: tuple[str, float]  # ("ge" | "gt", lower bound)
    capacity_top: float | None  # the printed upper end; beyond it only note 3 reaches the row
    tiers: tuple[Tier, ...]


@dataclass(frozen=True)
class RefTemp:
    furnace: str
    product: str | None
    dn: dict[str, float] | None
    temp_c: float
    printed: str


@dataclass(frozen=True)
class Note:
    no: int
    kind: str  # "tap_temp" | "capacity_lower_row" | "ambient"
    furnace: str | None
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
    furnaces: dict[str, dict[str, str]]
    rows: tuple[C1Row, ...]
    reference_tap_temps: tuple[RefTemp, ...]
    notes: tuple[Note, ...]
    kwh_to_kgce: float
    kwh_to_kgce_source: str
    options: dict[str, str]
    option_help: dict[str, str]
    decision_ids: tuple[str, ...]

    def note(self, kind: str, furnace: str | None = None) -> Note | None:
        for n in self.notes:
            if n.kind == kind and (furnace is None or n.furnace in (None, furnace)):
                return n
        return None


@dataclass(frozen=True)
class Correction:
    """One note applied (or not) to the limits: ``delta`` in the row's unit, added to each limit."""

    note: int
    applied: bool
    delta: float
    explanation: str


@dataclass(frozen=True)
class C1Limits:
    """The Table C.1 row for one furnace and its limits, base and corrected."""

    table: str
    row_id: str
    label: str
    furnace: str
    capacity: float
    capacity_unit: str
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


def parse_table(raw: Any, file: str, context_keys: Mapping[str, Any]) -> FurnaceTable:
    """Validate the ``furnace_table`` section of a standard file."""
    top = _Reader(
        file,
        "furnace_table",
        raw,
        ("id", "source", "row_id", "furnaces", "rows", "notes", "factors", "options"),
        ("reference_tap_temp_c", "decisions"),
    )
    furnaces = {}
    for name, spec in (top.get("furnaces") or {}).items():
        r = _Reader(
            file,
            f"furnace_table.furnaces.{name}",
            spec,
            ("name_zh", "name_en", "capacity_unit", "capacity_printed", "unit"),
            ("decision",),
        )
        furnaces[name] = {k: str(v) for k, v in r.data.items()}
    if "furnace" in context_keys and set(furnaces) != set(context_keys["furnace"].values):
        top.fail(f"furnaces {sorted(furnaces)} must match context_keys.furnace values")

    rows = []
    for i, row in enumerate(top.list("rows")):
        r = _Reader(
            file,
            f"furnace_table.rows[{i}]",
            row,
            ("id", "label", "furnace", "capacity", "tiers"),
            ("product",),
        )
        r.where = f"Table C.1 row {r.get('id')}"
        if r.get("furnace") not in furnaces:
            r.fail(f"furnace {r.get('furnace')!r} is not in furnaces")
        cap = _Reader(
            file, f"{r.where} capacity", r.get("capacity"), ("printed",), ("ge", "gt", "le")
        )
        bounds = [k for k in ("ge", "gt") if k in cap.data]
        if len(bounds) != 1:
            cap.fail("give exactly one lower bound, ge or gt (note 3 makes the next row the top)")
        tiers = []
        for k, t in enumerate(r.list("tiers")):
            tr = _Reader(file, f"{r.where} tier[{k}]", t, ("tier", "cmp", "value", "printed"))
            if tr.get("tier") != k + 1 or tr.get("cmp") not in NUMERIC_CMPS[:4]:
                tr.fail("tiers are numbered 1, 2, 3 with a comparator < ≤ > ≥")
            if parse_printed(tr.str("printed")) != (tr.get("cmp"), float(tr.num("value"))):
                tr.fail(
                    f"evaluated as {tr.get('cmp')} {tr.get('value')} but printed {tr.get('printed')!r}"
                )
            tiers.append(Tier(k + 1, tr.get("cmp"), tr.num("value"), tr.str("printed")))
        vals = [t.value for t in tiers]
        if len(tiers) != 3 or vals != sorted(vals):
            r.fail(f"needs three '<' limits rising from tier 1 to tier 3, got {vals}")
        rows.append(
            C1Row(
                r.str("id"),
                r.str("label"),
                r.get("furnace"),
                r.get("product"),
                str(cap.get("printed")),
                (bounds[0], cap.num(bounds[0])),
                cap.num("le") if "le" in cap.data else None,
                tuple(tiers),
            )
        )

    refs = []
    for i, ref in enumerate(top.list("reference_tap_temp_c")):
        r = _Reader(
            file,
            f"furnace_table.reference_tap_temp_c[{i}]",
            ref,
            ("furnace", "temp_c", "printed"),
            ("product", "dn"),
        )
        refs.append(
            RefTemp(
                r.get("furnace"), r.get("product"), r.get("dn"), r.num("temp_c"), r.str("printed")
            )
        )

    notes = []
    for i, n in enumerate(top.list("notes")):
        r = _Reader(
            file,
            f"furnace_table.notes[{i}]",
            n,
            ("number", "kind", "printed"),
            ("furnace", "per_c", "unit", "reference_c"),
        )
        if r.get("kind") not in ("tap_temp", "capacity_lower_row", "ambient"):
            r.fail(f"kind {r.get('kind')!r}: allowed tap_temp, capacity_lower_row, ambient")
        notes.append(
            Note(
                int(r.num("number")),
                r.get("kind"),
                r.get("furnace"),
                r.get("per_c"),
                r.get("unit", ""),
                r.get("reference_c"),
                r.str("printed"),
            )
        )

    fac = _Reader(file, "furnace_table.factors", top.get("factors"), ("kwh_to_kgce",))
    k2k = _Reader(
        file,
        "furnace_table.factors.kwh_to_kgce",
        fac.get("kwh_to_kgce"),
        ("value", "unit", "source"),
    )
    opts = _Reader(file, "furnace_table.options", top.get("options"), ("note4_cupola",))
    o4 = _Reader(
        file,
        "furnace_table.options.note4_cupola",
        opts.get("note4_cupola"),
        ("value", "allowed", "help"),
        ("decision",),
    )
    if o4.get("value") not in OPTION_NOTE4_CUPOLA or o4.list("allowed") != list(
        OPTION_NOTE4_CUPOLA
    ):
        o4.fail(f"value must be one of {', '.join(OPTION_NOTE4_CUPOLA)}")
    decision_ids = list(top.list("decisions"))
    for d in (*(f.get("decision") for f in furnaces.values()), o4.get("decision")):
        if d:
            decision_ids.append(d)
    return FurnaceTable(
        id=top.str("id"),
        source=top.str("source"),
        row_id=top.str("row_id"),
        furnaces=furnaces,
        rows=tuple(rows),
        reference_tap_temps=tuple(refs),
        notes=tuple(notes),
        kwh_to_kgce=k2k.num("value"),
        kwh_to_kgce_source=k2k.str("source"),
        options={"note4_cupola": o4.get("value")},
        option_help={"note4_cupola": o4.str("help")},
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


def _frac(x: float) -> Fraction:
    return Fraction(str(x))


def table_c1_limits(
    furnace: str,
    capacity: float,
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

    ``furnace`` is "cupola" or "induction"; ``capacity`` is the melting capacity in t/h for a
    cupola and the furnace capacity in t for an induction furnace; ``product`` "gray" or
    "ductile"; ``dn`` is needed for a ductile-pipe induction furnace when a tapping temperature
    is given (it picks the specified temperature of note 2); ``tap_temp_c`` is the
    tonnage-weighted mean tapping temperature (see ``weighted_tap_temp_c``); ``annual_mean_air_temp_c`` the
    site's mean air temperature of the latest calendar year (note 4). A temperature not given
    means its note is not applied, and the result says so.

    Raises ``NotCoveredError`` for a capacity below every row or a DN in no printed range, and
    ``ContextError`` for a furnace or product the table does not know.
    """
    table = table or _default_table()
    opts = {**table.options, **(options or {})}
    if opts["note4_cupola"] not in OPTION_NOTE4_CUPOLA:
        raise ContextError(
            f"option note4_cupola={opts['note4_cupola']!r}: allowed {', '.join(OPTION_NOTE4_CUPOLA)}"
        )
    factor = table.kwh_to_kgce if kwh_to_kgce is None else kwh_to_kgce
    if furnace not in table.furnaces:
        raise ContextError(
            f"Table C.1: furnace {furnace!r} is not covered (allowed: {', '.join(table.furnaces)})"
        )
    if product not in ("gray", "ductile"):
        raise ContextError(f"Table C.1: product {product!r} (allowed: gray, ductile)")
    if isinstance(capacity, bool) or not isinstance(capacity, (int, float)):
        raise ContextError(f"Table C.1: capacity must be a number, got {capacity!r}")
    fdef = table.furnaces[furnace]
    cap_unit = fdef["capacity_unit"]

    candidates = [r for r in table.rows if r.furnace == furnace and r.product in (None, product)]
    # Note 3: a capacity between two rows is scored on the lower row, so each row covers from its
    # own lower bound up to the next row's; the row with the highest bound the capacity reaches.
    reached = [
        r
        for r in candidates
        if compare(capacity, "≥" if r.capacity_bound[0] == "ge" else ">", r.capacity_bound[1])
    ]
    if not reached:
        printed = ", ".join(f"{r.capacity_printed} {cap_unit}" for r in candidates)
        raise NotCoveredError(
            f"Table C.1 does not cover a {fdef['name_en']} of {capacity:g} {cap_unit}: "
            f"its rows start at {printed}"
        )
    row = max(reached, key=lambda r: r.capacity_bound[1])
    corrections: list[Correction] = []
    if row.capacity_top is not None and capacity > row.capacity_top:
        higher = [r for r in candidates if r.capacity_bound[1] > row.capacity_bound[1]]
        nxt = min(higher, key=lambda r: r.capacity_bound[1]).capacity_printed if higher else "-"
        corrections.append(
            Correction(
                3,
                True,
                0.0,
                f"note 3: {capacity:g} {cap_unit} lies between row {row.capacity_printed} "
                f"and row {nxt}; scored on the lower row",
            )
        )

    unit = fdef["unit"]
    delta = Fraction(0)

    # Notes 1 and 2: tapping temperature against the reference for this furnace/product/DN.
    tap_note = table.note("tap_temp", furnace)
    ref_c = None
    if tap_note is not None:
        refs = [
            t
            for t in table.reference_tap_temps
            if t.furnace == furnace and t.product in (None, product)
        ]
        if tap_temp_c is None:
            corrections.append(
                Correction(
                    tap_note.no,
                    False,
                    0.0,
                    f"note {tap_note.no}: not applied, no tapping temperature given "
                    "(the specified temperature is assumed)",
                )
            )
            if len({t.temp_c for t in refs}) == 1:
                ref_c = refs[0].temp_c
        else:
            if any(t.dn for t in refs):
                if dn is None:
                    raise ContextError(
                        f"Table C.1 note {tap_note.no}: a {product} pipe {fdef['name_en']} needs "
                        "--dn: the specified tapping temperature depends on the DN range ("
                        + "; ".join(t.printed for t in refs)
                        + ")"
                    )
                refs = [t for t in refs if _dn_in(t.dn, dn)]
                if not refs:
                    raise NotCoveredError(
                        f"Table C.1 note {tap_note.no}: DN {dn} is in no DN range of the table "
                        + "("
                        + "; ".join(
                            t.printed
                            for t in table.reference_tap_temps
                            if t.furnace == furnace and t.product == product
                        )
                        + ")"
                    )
            ref = refs[0]
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
        applies = amb.furnace in (None, furnace)
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
                    f"note {amb.no}: not applied to {fdef['name_en']} rows "
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
                    f"note {amb.no}: site mean {annual_mean_air_temp_c:g} °C vs {amb.reference_c:g} °C "
                    f"-> limits {float(d):+g} {unit_note}",
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
        furnace=furnace,
        capacity=capacity,
        capacity_unit=cap_unit,
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
    """``table_c1_limits`` fed from a scorer context (keys furnace, furnace_capacity, product, dn,
    tap_temp_c, annual_mean_air_temp_c, and optionally c1_options)."""
    for key in ("furnace", "furnace_capacity", "product"):
        if context.get(key) is None:
            raise ContextError(f"row {row_id} (Table C.1) needs context key '{key}'")
    return table_c1_limits(
        context["furnace"],
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
