"""The scorer: F = Σ fi × Li over the rows of T/CFA 0308011.5-2024, the grade, and the gap.

Inputs are the plant config (`greenfoundry.plant`: the plant's facts every threshold depends on,
read without its secrets), the indicator values (`indicators.py`: measured values with window
and coverage) and the declared evidence (`evidence.py`: declared values with provenance). The
standard (rows, tiers, errata, grades, the default Li policy) comes from `standard.py`. A bad
input raises one `InputError` (or `ConfigError` for the plant config) naming the file, the key
path (`rows[<row id>]…`), the value and what is allowed; nothing is scored.

Plant context: the standard's context keys come from the plant config: ``product``,
``residential_within_1200m``, ``iron_source``, a configured ``annual_mean_air_temp_c``, and for
Table C.1 ``furnace_kind`` and ``furnace_capacity`` from its furnaces, when they all fall on one
Table C.1 row (`table_c1.plant_furnace`; otherwise the row is refused, citing decision
D-c1-plant, whose plant value the metrics compute). A row's own context may add what is not
plant-wide (a DN the plant casts, a tapping temperature, a printed condition) but may not
contradict the plant config. Every number is held to its plausible range (`check_plausible`,
`greenfoundry.glossary`); a percent of at most 1 is scored with a warning.

Every row ends in exactly one status (never a silent 0):

* ``scored``            a value was evaluated: tier 1, 2 or 3, or below tier 3 (Li = 0, a real 0);
* ``not_applicable``    the evidence declares the row does not apply to the plant;
* ``no_data``           no value in either file (or declared after the evaluation date);
* ``evidence_expired``  the declaration's ``valid_until`` is before the evaluation date;
* ``not_covered``       no row of the standard covers the plant (e.g. an induction furnace ≤ 5 t);
* ``low_coverage``      the measured value's data covers less than ``min_coverage`` of its window.

Only ``scored`` rows add points. The other statuses add none and are listed as such; rows whose
points are lost only because data is missing (no data, expired, low coverage) are named in the
gap analysis with the points they hold. A not-applicable row's points are not redistributed: the
standard gives no rule for that, so F keeps its 1000-point base and the report shows the cost.

Li policy (stated in every result, clause 5.2.2 gives only floors):

* ``floor`` (default): Li is the floor of the tier met, from the standard's ``li_policy``
  (0.90 / 0.75 / 0.60; below tier 3, 0).
* ``interpolate``: for rows compared with < ≤ > ≥ (not levels or yes/no). Inside tier 2 or 3,
  Li rises linearly from the tier's floor at its threshold to the next tier's floor at the next
  threshold (the data defines both ends). Inside tier 1 it rises from 0.90 at the threshold to
  1.00 at the best value, only where the data defines one: a percent (100 when higher is better,
  0 when lower is), a ratio to a limit such as 0.6C (0), the power factor (1). Elsewhere tier 1
  keeps 0.90, and below tier 3 Li stays 0.

Gap analysis ("least change"): the next grade is the lowest grade of Table 9 above the current
one. Candidate moves are rows that scored below tier 1; a move takes a row to a better tier and
adds fi × (that tier's floor − the row's Li now). A plan is a set of moves, at most one per row,
whose points added reach the next grade's minimum F. Among plans the scorer picks, in order:

1. the fewest rows;
2. the smallest total relative change of value, where a numeric row's change is
   |target − value| / max(|value|, |target|) (the target is the threshold of the tier moved to; a strict
   comparator such as ``< 200`` is reported as "must be below 200" and measured to 200), and a
   level or yes/no row counts 1 per tier step (a declared level changes whole, not by a share);
3. the most points added; then row ids, for a deterministic answer.

The search is exact (branch and bound over rows sorted by the most each can add). Rows without
data are not candidates: providing their data is listed separately.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from greenfoundry import glossary, inputs
from greenfoundry.errors import ConfigError, GreenfoundryError, InputError
from greenfoundry.plant import PlantConfig
from greenfoundry.scoring import standard as std_mod
from greenfoundry.scoring import table_c1
from greenfoundry.scoring.evidence import Declaration, Evidence
from greenfoundry.scoring.indicators import Indicators, Measured

STATUS_SCORED = "scored"
STATUS_NOT_APPLICABLE = "not_applicable"
STATUS_NO_DATA = "no_data"
STATUS_EVIDENCE_EXPIRED = "evidence_expired"
STATUS_NOT_COVERED = "not_covered"
STATUS_LOW_COVERAGE = "low_coverage"
STATUSES = (
    STATUS_SCORED,
    STATUS_NOT_APPLICABLE,
    STATUS_NO_DATA,
    STATUS_EVIDENCE_EXPIRED,
    STATUS_NOT_COVERED,
    STATUS_LOW_COVERAGE,
)
# Statuses that lose a row's points only because data is missing or unusable.
MISSING_DATA_STATUSES = (STATUS_NO_DATA, STATUS_EVIDENCE_EXPIRED, STATUS_LOW_COVERAGE)

# A measured value whose data covers less than this share of its window does not score. 0.9
# follows the usual rule of thumb for a valid aggregate (HJ 75 asks 45 of 60 minutes for an
# hourly mean, 0.75; a yearly figure that scores a plant should be held to more).
DEFAULT_MIN_COVERAGE = 0.9

LI_MODES = ("floor", "interpolate")

# Context keys the plant config states once; a row's context may not contradict them.
PLANT_KEYS = (
    "product",
    "residential_within_1200m",
    "furnace_kind",
    "furnace_capacity",
    "iron_source",
    "annual_mean_air_temp_c",
)

# Node budget of the exact gap search; the plan says "exact: false" when it is exhausted.
_SEARCH_BUDGET = 400_000


@dataclass(frozen=True)
class Options:
    as_of: dt.date
    min_coverage: float = DEFAULT_MIN_COVERAGE
    li_mode: str = "floor"

    def __post_init__(self) -> None:
        if self.li_mode not in LI_MODES:
            raise InputError(
                f"li_mode (--li-policy): {inputs.show(self.li_mode)} is not allowed; expected "
                "one of " + ", ".join(LI_MODES)
            )
        if not 0.0 <= self.min_coverage <= 1.0:
            raise InputError(
                f"min_coverage (--min-coverage): {inputs.show(self.min_coverage)} is not allowed; "
                "expected a share of the window from 0 to 1"
            )


@dataclass(frozen=True)
class TierChange:
    """A tier the row would move to if an assumed temperature were another."""

    tier: int | None  # None: below tier 3
    temp_c: float  # the boundary temperature
    side: str  # "above", "at or above", "below", "at or below": where the change lies
    points: Fraction  # points gained (moving up) or lost (moving down)
    plausible: bool  # False when no real plant or site has such a temperature


@dataclass(frozen=True)
class Assumption:
    """A Table C.1 note not applied because its temperature was not given (decision D-c1-no-temp):
    what was assumed and what it can cost, a tier up or down."""

    row_id: str
    note: int
    missing: str  # the context key: tap_temp_c or annual_mean_air_temp_c
    assumed_c: float | None  # None when the DN needed to pick the specified temperature is unknown
    better: TierChange | None
    worse: TierChange | None
    message: str


@dataclass(frozen=True)
class RowScore:
    row_id: str
    group_id: str
    indicator_id: str
    name_zh: str
    name_en: str
    status: str
    source: str | None  # "indicators" | "evidence" | None
    value: Any
    unit: str
    tier: int | None  # 1..3; None when below tier 3 or not scored
    li: Fraction | None  # None unless scored
    points: Fraction  # fi × Li when scored, else 0 (the status says why)
    points_max: Fraction  # fi in force (after errata)
    reason: str
    variant: str | None = None
    tiers: tuple = ()  # the thresholds applied (standard.Tier), after any Table C.1 correction
    next_tier: Any = None  # standard.Tier of the next better tier, or None
    notes: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    window: Any = None  # indicators.Window for a measured value
    coverage: float | None = None
    declaration: Declaration | None = None
    would_be_tier: int | None = None  # for an expired or low-coverage value: the tier it meets
    warnings: tuple[str, ...] = ()  # e.g. a percent that looks like a fraction
    corrections: tuple = ()  # table_c1.Correction: Table C.1 notes applied or not, with amounts
    assumptions: tuple[Assumption, ...] = ()  # a missing temperature and what it can cost


@dataclass(frozen=True)
class Move:
    row_id: str
    from_tier: int | None
    to_tier: int
    target: Any  # standard.Tier
    value: Any
    relative_change: Fraction
    points_added: Fraction
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Gap:
    next_grade: Any  # standard.Grade or None at the top grade
    deficit: Fraction | None
    plan: tuple[Move, ...] | None  # None when no plan reaches the next grade
    exact: bool
    missing_data: tuple[RowScore, ...]
    reason: str
    note: str | None = None  # a consequence of the policy worth saying (e.g. level 1 needs all)


@dataclass(frozen=True)
class ScoreResult:
    standard: Any  # standard.Standard
    options: Options
    plant: PlantConfig
    rows: tuple[RowScore, ...]
    f: Fraction
    grade: Any  # standard.Grade or None
    gap: Gap
    # Table C.1's (furnace_kind, furnace_capacity) for the plant; None when it has none or its
    # furnaces fall on different rows (then the row could not score)
    furnace: tuple[str, float] | None = None

    @property
    def warnings(self) -> tuple[tuple[str, str], ...]:
        """(row id, message) of every value scored with a warning, in table order."""
        return tuple((r.row_id, w) for r in self.rows for w in r.warnings)

    @property
    def assumptions(self) -> tuple[Assumption, ...]:
        return tuple(a for r in self.rows for a in r.assumptions)

    def row(self, row_id: str) -> RowScore:
        for r in self.rows:
            if r.row_id == row_id:
                return r
        raise InputError(
            f"{row_id}: no such row in the score; `greenfoundry standard show` lists them"
        )

    def group_points(self) -> list[tuple[Any, Fraction, Fraction]]:
        """(group, points, maximum) per first-level indicator, in table order."""
        out = []
        for g in self.standard.groups:
            rows = [r for r in self.rows if r.group_id == g.id]
            out.append((g, sum((r.points for r in rows), Fraction(0)), Fraction(str(g.points))))
        return out

    def indicator_points(self, indicator_id: str) -> tuple[Fraction, Fraction]:
        rows = [r for r in self.rows if r.indicator_id == indicator_id]
        return (
            sum((r.points for r in rows), Fraction(0)),
            sum((r.points_max for r in rows), Fraction(0)),
        )


# --------------------------------------------------------------------------- inputs


def _frac(x: Any) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(str(x))


def _where(source: str, row_id: str, key: str | None = None) -> str:
    """``<file>: rows[<row id>](.<key>)``: the place of a row's value in its file."""
    path = inputs.key_path("rows", row_id)
    return f"{source}: {path}.{key}" if key else f"{source}: {path}"


def _unknown_row(source: str, row_id: str, standard) -> InputError:
    close = difflib.get_close_matches(row_id, list(standard.rows), n=1)
    hint = f"; did you mean {close[0]}?" if close else " (`greenfoundry standard show` lists them)"
    return InputError(f"{_where(source, row_id)}: not a row of {standard.id}{hint}")


def plant_source(plant: PlantConfig) -> str:
    """The plant config's name in messages."""
    return inputs.display(plant.path)


def check_inputs(
    standard, plant: PlantConfig, indicators: Indicators, evidence: Evidence, options: Options
) -> None:
    """Cross-file checks: plant ids, the plant's declaration, unknown rows, a row in both files,
    windows."""
    config = plant_source(plant)
    info = plant.plant
    for inp in (indicators, evidence):
        if inp.plant != info.id:
            raise InputError(
                f"{inp.source}: plant: {inputs.show(inp.plant)} is not allowed; expected the "
                f"plant config's plant.id {info.id!r} ({config})"
            )
    for key in ("declared_by", "declared_on"):
        if getattr(info, key) is None:
            raise ConfigError(
                f"{config}: plant.{key}: missing; the scorer needs who declared the plant's "
                "facts and when (plant.declared_by, plant.declared_on)"
            )
    if info.valid_until is not None and options.as_of > info.valid_until:
        raise InputError(
            f"{config}: plant.valid_until: the plant's facts declared by {info.declared_by} hold "
            f"until {info.valid_until}, before the evaluation date {options.as_of}; renew the "
            "declaration"
        )
    check_plant_facts(plant)
    if options.as_of < info.declared_on:
        raise InputError(
            f"{config}: plant.declared_on: the plant's facts were declared on "
            f"{info.declared_on}, after the evaluation date {options.as_of}"
        )
    for rid in indicators.rows:
        if rid not in standard.rows:
            raise _unknown_row(indicators.source, rid, standard)
    for rid in evidence.rows:
        if rid not in standard.rows:
            raise _unknown_row(evidence.source, rid, standard)
        if rid in indicators.rows:
            raise InputError(
                f"{_where(evidence.source, rid)}: also given in {indicators.source}; give each "
                "row in one file only"
            )
    for rid, m in indicators.rows.items():
        # A window ending after the evaluation date holds data that did not exist yet.
        if m.window.end > options.as_of + dt.timedelta(days=1):
            raise InputError(
                f"{_where(indicators.source, rid, 'window')}: ends {m.window.end} (exclusive), "
                f"after the evaluation date {options.as_of}"
            )


def _row_unit(standard, row, context: Mapping[str, Any]) -> str:
    """The row's unit; for Table C.1 the unit of the plant's furnace (kgce/t or kWh/t)."""
    if row.limits_from == "C.1" and context.get("furnace_kind"):
        table = standard.furnace_table
        spec = table.furnaces.get(context["furnace_kind"]) if table else None
        if spec is not None:
            return spec.unit
    return row.unit


def _check_unit(standard, row, measured: Measured, context: Mapping[str, Any], source: str) -> None:
    if measured.unit is None:
        return
    unit = _row_unit(standard, row, context)
    if measured.unit != unit:
        raise InputError(
            f"{_where(source, row.id, 'unit')}: {measured.unit!r} is not allowed; expected the "
            f"row's unit {unit} (convert the value at the source)"
        )


def _hint(rng: glossary.Range, value: float) -> str:
    """A likely slip behind a value outside its range, or ""."""
    if rng.high == 1 and 1 < value <= 100:
        return f" ({value:g} looks like a percent: give {value / 100:g})"
    if rng.unit == "°C" and rng.holds(value - 273.15):
        return f" ({value:g} looks like kelvin: {value - 273.15:g} °C)"
    return ""


def check_plausible(rng: glossary.Range | None, value: Any, where: str) -> None:
    """Refuse a number no plant can have: one `InputError` naming `where`, the value and the
    plausible range (greenfoundry.glossary.PLAUSIBLE_BY_UNIT / PLAUSIBLE_BY_KEY)."""
    if rng is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not rng.holds(value):
        raise InputError(
            f"{where}: {inputs.show(value)} is not allowed; expected {rng.describe()}"
            + _hint(rng, value)
        )


def fraction_warning(row_id: str, value: Any, unit: str) -> str | None:
    """A percent of at most 1 is more often a fraction (0.985 for 98.5 %) than a real value."""
    if unit != "%" or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if 0 < value <= 1:
        return (
            f"rows[{row_id}].value: {value:g} % looks like a fraction; if it is one, the "
            f"percent is {value * 100:g} (scored as {value:g} %)"
        )
    return None


def _check_range(row, value: Any, source: str, unit: str | None = None) -> tuple[str, ...]:
    """What no plant can have is refused (a count above the items listed, a percent above 100, a
    power factor of 93, an energy per tonne of 0); a percent that looks like a fraction is
    scored with a warning, returned."""
    if value is std_mod.NOT_APPLICABLE or isinstance(value, (bool, str)):
        return ()
    if not isinstance(value, (int, float)):
        return ()  # the standard's own check names the wrong type
    where = f"{_where(source, row.id, 'value')}: {inputs.show(value)} is not allowed; expected"
    if row.value_type == "count":
        if isinstance(value, float) and not value.is_integer():
            raise InputError(f"{where} a whole count of items")
        if value < 0 or (row.items and value > len(row.items)):
            raise InputError(f"{where} a count from 0 to {len(row.items)}, the items the row lists")
        return ()
    check_plausible(row.plausible_range(unit), value, _where(source, row.id, "value"))
    warning = fraction_warning(row.id, value, unit or row.unit)
    return (f"{source}: {warning}",) if warning else ()


def check_plant_facts(plant: PlantConfig) -> None:
    """The plant config's numbers the thresholds depend on, against their plausible ranges."""
    config = plant_source(plant)
    temp = plant.plant.annual_mean_air_temp_c
    if temp is not None:
        try:
            check_plausible(
                glossary.plausible_for_key("annual_mean_air_temp_c"),
                temp,
                f"{config}: plant.site.annual_mean_air_temp_c",
            )
        except InputError as exc:
            raise ConfigError(str(exc)) from None
    for f in plant.furnaces:
        try:
            check_plausible(
                glossary.plausible_for_key("furnace_capacity", f.kind),
                f.capacity,
                f"{config}: furnaces[{f.id}].capacity.value",
            )
        except InputError as exc:
            raise ConfigError(str(exc)) from None


def plant_furnace(standard, plant: PlantConfig) -> tuple[str, float] | None:
    """The (furnace_kind, furnace_capacity) of Table C.1 for the plant (`table_c1.plant_furnace`);
    None when the plant lists no furnace or the standard has no furnace table."""
    if standard.furnace_table is None:
        return None
    return table_c1.plant_furnace(
        plant.furnaces,
        plant.plant.product,
        table=standard.furnace_table,
        source=plant_source(plant),
    )


def _plant_context(standard, plant: PlantConfig, row) -> dict[str, Any]:
    """The plant's facts as the standard's context keys (the ones `row` uses need computing)."""
    info = plant.plant
    ctx: dict[str, Any] = {
        "product": info.product,
        "residential_within_1200m": info.residential_within_1200m,
    }
    if info.iron_source is not None:
        ctx["iron_source"] = info.iron_source
    if info.annual_mean_air_temp_c is not None:
        ctx["annual_mean_air_temp_c"] = info.annual_mean_air_temp_c
    if {"furnace_kind", "furnace_capacity"} & set(row.context):
        furnace = plant_furnace(standard, plant)
        if furnace is None:
            raise ConfigError(
                f"{plant_source(plant)}: furnaces: missing; row {row.id} (Table C.1) needs the "
                "plant's melting furnace (kind and capacity)"
            )
        ctx["furnace_kind"], ctx["furnace_capacity"] = furnace
    return ctx


def _tiers_or_exc(row, ctx):
    try:
        tiers, variant, _notes = row.tiers_for(ctx)
        return tuple((t.tier, t.cmp, t.value) for t in tiers), variant
    except GreenfoundryError as exc:  # NotCoveredError or ContextError: not one band
        return ("error", str(exc)), None


def _check_dn(plant: PlantConfig, dn: int, where: str) -> None:
    """A row's DN must be one the plant casts (its furnaces' DN ranges), or it would be scored on
    the band of a pipe the plant does not make."""
    ranges = plant.dn_ranges
    if ranges and not any(low <= dn <= high for low, high in ranges):
        cast = " and ".join(f"DN{low}–{high}" for low, high in ranges)
        raise InputError(
            f"{where}: DN {dn} is not allowed; expected a DN the plant casts: {cast} (the "
            f"furnaces' dn_range in {plant_source(plant)})"
        )


def row_context(
    standard, row, plant: PlantConfig, extra: Mapping[str, Any], source: str
) -> dict[str, Any]:
    """The context a row is evaluated in: the plant config's facts plus the row's own.

    A row's own context may add keys the row uses (tapping temperature, DN, a printed condition)
    but may not contradict the plant config. A DN-dependent row of a ductile plant takes the
    row's `dn`, or else the plant's DN ranges when every DN in them gives the same tiers; DN
    ranges that span bands with different tiers are an error naming the row.
    """
    ctx = _plant_context(standard, plant, row)
    for key, value in extra.items():
        where = _where(source, row.id, f"context.{key}")
        if key not in standard.context_keys or key not in row.context:
            used = ", ".join(row.context) or "none"
            raise InputError(
                f"{where}: unknown key for this row; allowed here: {used}"
                if key not in standard.context_keys
                else f"{where}: not used by this row; allowed here: {used}"
            )
        if key in PLANT_KEYS and key in ctx and ctx[key] != value:
            raise InputError(
                f"{where}: {inputs.show(value)} is not allowed; expected the plant config's "
                f"{key} {ctx[key]!r} ({plant_source(plant)}), or leave it out"
            )
        try:
            standard.context_keys[key].check(value, row.id)
        except GreenfoundryError as exc:
            raise InputError(f"{source}: {exc}") from None
        check_plausible(glossary.plausible_for_key(key, ctx.get("furnace_kind")), value, where)
        if key == "dn":
            _check_dn(plant, value, where)
        ctx[key] = value
    if "dn" in row.context and "dn" not in ctx and plant.plant.product == "ductile":
        ranges = plant.dn_ranges
        if not ranges:
            raise InputError(
                f"{_where(source, row.id, 'context.dn')}: missing; the row needs the DN and the "
                f"plant config ({plant_source(plant)}) lists no furnace with a dn_range"
            )
        ends = [dn for r in ranges for dn in r]
        bands = {_tiers_or_exc(row, {**ctx, "dn": dn}) for dn in ends}
        if len(bands) > 1:
            cast = " and ".join(f"DN{low}–{high}" for low, high in ranges)
            raise InputError(
                f"{_where(source, row.id, 'context.dn')}: missing; the plant casts {cast}, "
                "which spans DN ranges with different tiers: give the DN this value is for as "
                "context: {dn: …}"
            )
        ctx["dn"] = ends[0]
    # Keep only the keys the row uses, so the output shows what decided its tiers.
    return {k: v for k, v in ctx.items() if k in row.context}


# --------------------------------------------------------------------------- Li policy


def li_policy_dict(standard, options: Options) -> dict[str, Any]:
    p = standard.li_policy
    return {
        "mode": options.li_mode,
        "floors": {str(k): v for k, v in sorted(p.floors.items())},
        "below": p.below,
        "source": p.source,
        "note": p.note,
        "interpolation": (
            "rows compared with < ≤ > ≥: inside tier 2 or 3 Li rises linearly from the tier's "
            "floor at its threshold to the next tier's floor at the next threshold; inside tier 1 "
            "from 0.90 to 1.00 at the best value where the data defines one (percent: 100, or 0 "
            "when lower is better; ratio to a limit: 0; power factor: 1), else 0.90; levels, "
            "yes/no rows and below tier 3 keep the floor"
            if options.li_mode == "interpolate"
            else None
        ),
    }


def best_value(row, tiers) -> Fraction | None:
    """The best value the data defines for a row, or None (clause-free: a property of the unit)."""
    if not tiers or any(
        t.cmp not in (*std_mod.LOWER_IS_BETTER, *std_mod.HIGHER_IS_BETTER) for t in tiers
    ):
        return None
    higher = tiers[0].cmp in std_mod.HIGHER_IS_BETTER
    if row.value_type == "percent":
        return Fraction(100) if higher else Fraction(0)
    if row.value_type == "ratio":
        return Fraction(1) if higher else Fraction(0)
    return None


def interpolated_li(row, ev, policy) -> Fraction:
    """Li inside the tier met, linear between the tier's threshold and the next (see module doc)."""
    floor = _frac(policy.li_floor(ev.tier))
    numeric = (*std_mod.LOWER_IS_BETTER, *std_mod.HIGHER_IS_BETTER)
    if ev.tier is None or row.value_type in ("level", "boolean"):
        return floor
    if any(t.cmp not in numeric for t in ev.tiers):
        return floor
    by_tier = {t.tier: t for t in ev.tiers}
    lo = _frac(by_tier[ev.tier].value)
    if ev.tier == 1:
        best = best_value(row, ev.tiers)
        if best is None:
            return floor
        hi, li_hi = best, Fraction(1)
    else:
        hi, li_hi = _frac(by_tier[ev.tier - 1].value), _frac(policy.li_floor(ev.tier - 1))
    if hi == lo:
        return floor
    share = (_frac(ev.value) - lo) / (hi - lo)
    share = min(max(share, Fraction(0)), Fraction(1))
    return floor + (li_hi - floor) * share


# --------------------------------------------------------------------------- scoring


def _evaluate(row, value, ctx, source):
    try:
        return row.evaluate(value, ctx)
    except std_mod.ContextError as exc:
        raise InputError(f"{source}: {exc}") from None


def score_row(standard, row, plant, indicators, evidence, options) -> RowScore:
    indicator = standard.indicators[row.indicator_id]
    base = {
        "row_id": row.id,
        "group_id": indicator.group_id,
        "indicator_id": row.indicator_id,
        "name_zh": row.name_zh,
        "name_en": row.name_en,
        "unit": row.unit,
        "points_max": row.points_exact,
    }
    measured = indicators.rows.get(row.id)
    declared = evidence.rows.get(row.id)
    if measured is None and declared is None:
        return RowScore(
            **base,
            status=STATUS_NO_DATA,
            source=None,
            value=None,
            tier=None,
            li=None,
            points=Fraction(0),
            reason="no value in either file",
        )

    if measured is not None:
        src_name, source, extra = indicators.source, "indicators", measured.context
        value = measured.value
    else:
        src_name, source, extra = evidence.source, "evidence", declared.context
        value = std_mod.NOT_APPLICABLE if declared.not_applicable else declared.value
    ctx = row_context(standard, row, plant, extra, src_name)
    base["unit"] = _row_unit(standard, row, ctx)
    if measured is not None:
        _check_unit(standard, row, measured, ctx, src_name)
    warnings = _check_range(row, value, src_name, base["unit"])
    ev = _evaluate(row, value, ctx, src_name)  # validates the value's type, even if not scored
    corrections: tuple = ()
    if row.limits_from == "C.1" and ev.status in (std_mod.STATUS_TIER, std_mod.STATUS_BELOW):
        corrections = table_c1.limits_for_context(
            standard.furnace_table, ctx, row_id=row.id
        ).corrections
    provenance = {
        "source": source,
        "value": None if value is std_mod.NOT_APPLICABLE else value,
        "context": ctx,
        "window": measured.window if measured else None,
        "coverage": measured.coverage if measured else None,
        "declaration": declared,
        "variant": ev.variant,
        "tiers": ev.tiers,
        "next_tier": ev.next_tier,
        "notes": tuple(ev.notes),
        "warnings": warnings,
        "corrections": corrections,
    }
    unscored = {"tier": None, "li": None, "points": Fraction(0)}

    if declared is not None:
        if declared.expired(options.as_of):
            return RowScore(
                **base,
                **provenance,
                **unscored,
                status=STATUS_EVIDENCE_EXPIRED,
                would_be_tier=ev.tier,
                reason=f"declaration valid until {declared.valid_until}, evaluation "
                f"date {options.as_of}",
            )
        if declared.not_yet_declared(options.as_of):
            return RowScore(
                **base,
                **provenance,
                **unscored,
                status=STATUS_NO_DATA,
                reason=f"declared on {declared.declared_on}, after the evaluation "
                f"date {options.as_of}",
            )
    if ev.status == std_mod.STATUS_NOT_APPLICABLE:
        return RowScore(
            **base,
            **provenance,
            **unscored,
            status=STATUS_NOT_APPLICABLE,
            reason=f"declared not applicable: {declared.note}",
        )
    if ev.status == std_mod.STATUS_NOT_COVERED:
        return RowScore(
            **base, **provenance, **unscored, status=STATUS_NOT_COVERED, reason=ev.reason
        )
    if measured is not None and measured.coverage < options.min_coverage:
        return RowScore(
            **base,
            **provenance,
            **unscored,
            status=STATUS_LOW_COVERAGE,
            would_be_tier=ev.tier,
            reason=f"data covers {measured.coverage:.0%} of the window, below "
            f"{options.min_coverage:.0%}",
        )
    if ev.status not in (std_mod.STATUS_TIER, std_mod.STATUS_BELOW):
        raise InputError(f"{_where(src_name, row.id)}: cannot be scored ({ev.reason})")
    policy = standard.li_policy
    if options.li_mode == "interpolate":
        li = interpolated_li(row, ev, policy)
    else:
        li = _frac(policy.li_floor(ev.tier))
    return RowScore(
        **base,
        **provenance,
        status=STATUS_SCORED,
        tier=ev.tier,
        li=li,
        points=row.points_exact * li,
        reason=ev.reason,
        assumptions=assumptions(row, ev, li, corrections, policy),
    )


# --------------------------------------------------------------------------- assumptions

_WHAT_MISSING = {
    "tap_temp_c": "tonnage-weighted tapping temperature",
    "annual_mean_air_temp_c": "site mean air temperature",
}


def _change(row, value, tier_now, li_now, tiers, target, c, policy, up: bool):
    """The temperature at which the assumed note moves the row to `target` (a tier, or None for
    below tier 3), and the points that move gains or loses (Table C.1 note, linear in °C)."""
    by_tier = {t.tier: t for t in tiers}
    limit = by_tier[target if up else tier_now]
    per_c = _frac(c.per_c)
    # With the note applied at temperature T every limit moves by (T − assumed) × per_c; the
    # value meets `limit` while value (cmp) limit + that shift.
    boundary = _frac(c.assumed_c) + (_frac(value) - _frac(limit.value)) / per_c
    strict = limit.cmp in ("<", ">")
    if up:  # the shift must pass value − limit
        side = (
            ("above" if strict else "at or above")
            if per_c > 0
            else ("below" if strict else "at or below")
        )
        points = row.points_exact * (_frac(policy.li_floor(target)) - li_now)
    else:  # the shift falls to value − limit or lower
        side = (
            ("at or below" if strict else "below")
            if per_c > 0
            else ("at or above" if strict else "above")
        )
        points = row.points_exact * (li_now - _frac(policy.li_floor(target)))
    rng = glossary.plausible_for_key(c.missing)
    return TierChange(target, float(boundary), side, points, rng is None or rng.holds(boundary))


def assumptions(row, ev, li, corrections, policy) -> tuple[Assumption, ...]:
    """For each Table C.1 note not applied because its temperature was missing (decision
    D-c1-no-temp): the temperature assumed, and the temperatures at which the row would reach
    the next better tier or fall to the next worse one, with the points each costs."""
    out = []
    numeric = [
        t for t in ev.tiers if t.cmp in (*std_mod.LOWER_IS_BETTER, *std_mod.HIGHER_IS_BETTER)
    ]
    for c in corrections:
        if c.applied or c.missing is None:
            continue
        what = _WHAT_MISSING.get(c.missing, c.missing)
        better = worse = None
        if c.assumed_c is not None and c.per_c and len(numeric) == len(ev.tiers) == 3:
            if ev.tier != 1:
                target = 3 if ev.tier is None else ev.tier - 1
                better = _change(row, ev.value, ev.tier, li, ev.tiers, target, c, policy, True)
            if ev.tier is not None:
                target = None if ev.tier == 3 else ev.tier + 1
                worse = _change(row, ev.value, ev.tier, li, ev.tiers, target, c, policy, False)
        assumed = f"{c.assumed_c:g} °C" if c.assumed_c is not None else "the specified temperature"
        parts = [f"note {c.note}: no {what} given, {assumed} assumed (limits not corrected)"]
        for change, verb, sign in ((better, "would meet", "+"), (worse, "would fall to", "−")):
            if change is None:
                continue
            to = f"tier {change.tier}" if change.tier else "below tier 3"
            text = (
                f"{change.side} {change.temp_c:.2f} °C it {verb} {to} "
                f"({sign}{float(change.points):.2f} points)"
            )
            if not change.plausible:
                text += ", a temperature no real plant has"
            parts.append(text)
        out.append(
            Assumption(row.id, c.note, c.missing, c.assumed_c, better, worse, "; ".join(parts))
        )
    return tuple(out)


def score(
    standard,
    plant: PlantConfig,
    indicators: Indicators,
    evidence: Evidence,
    options: Options,
) -> ScoreResult:
    """Score every row of the standard for the plant of `plant` (its config); see the module
    docstring for the plant context, statuses, Li and the gap."""
    check_inputs(standard, plant, indicators, evidence, options)
    rows = tuple(
        score_row(standard, row, plant, indicators, evidence, options)
        for row in standard.rows.values()
    )
    f = sum((r.points for r in rows), Fraction(0))
    grade = standard.grade_for(f)
    gap = gap_analysis(standard, rows, f, grade, options.li_mode)
    try:
        furnace = plant_furnace(standard, plant)
    except InputError:  # furnaces on different rows: the Table C.1 row had no value to score
        furnace = None
    return ScoreResult(standard, options, plant, rows, f, grade, gap, furnace)


# --------------------------------------------------------------------------- gap analysis


def _relative_change(row, value, target) -> Fraction:
    if row.value_type in ("level", "boolean"):
        if row.value_type == "level" and row.scale is not None:
            return Fraction(row.scale.rank(value) - row.scale.rank(target.value))
        return Fraction(1)
    v, t = _frac(value), _frac(target.value)
    denom = max(abs(v), abs(t))
    return Fraction(0) if denom == 0 else abs(t - v) / denom


def candidate_moves(standard, rows: tuple[RowScore, ...]) -> dict[str, list[Move]]:
    """Per scored row below tier 1: one move to each better tier, with the points it adds."""
    policy = standard.li_policy
    out: dict[str, list[Move]] = {}
    for r in rows:
        if r.status != STATUS_SCORED or r.tier == 1 or not r.tiers:
            continue
        row = standard.rows[r.row_id]
        conditions = tuple(c.printed for c in row.conditions)
        moves = []
        for t in r.tiers:
            if r.tier is not None and t.tier >= r.tier:
                continue
            gain = r.points_max * (_frac(policy.li_floor(t.tier)) - r.li)
            if gain <= 0:
                continue
            moves.append(
                Move(
                    r.row_id,
                    r.tier,
                    t.tier,
                    t,
                    r.value,
                    _relative_change(row, r.value, t),
                    gain,
                    conditions,
                )
            )
        if moves:
            out[r.row_id] = moves
    return out


def least_change_plan(
    moves: dict[str, list[Move]], deficit: Fraction, budget: int = _SEARCH_BUDGET
) -> tuple[tuple[Move, ...] | None, bool]:
    """The plan of least change reaching `deficit` points (module doc); (plan, exact)."""
    if deficit <= 0:
        return (), True
    order = sorted(moves, key=lambda rid: (-max(m.points_added for m in moves[rid]), rid))
    best_gain = [max(m.points_added for m in moves[rid]) for rid in order]
    k = None
    running = Fraction(0)
    for i, g in enumerate(best_gain):
        running += g
        if running >= deficit:
            k = i + 1
            break
    if k is None:
        return None, True
    best: list = [None, None]  # [key, plan]
    nodes = 0
    exact = True

    def key(plan, rel, gain):
        return (rel, -gain, tuple(sorted(m.row_id for m in plan)))

    def dfs(i: int, plan: list[Move], gain: Fraction, rel: Fraction) -> None:
        nonlocal nodes, exact
        nodes += 1
        if nodes > budget:
            exact = False
            return
        if gain >= deficit:
            kk = key(plan, rel, gain)
            if best[0] is None or kk < best[0]:
                best[0], best[1] = kk, tuple(plan)
            return
        need = k - len(plan)
        if need == 0 or i >= len(order):
            return
        if gain + sum(best_gain[i : i + need]) < deficit:
            return  # even the best remaining rows cannot close the gap with the rows left
        if best[0] is not None and rel > best[0][0]:
            return
        for m in sorted(moves[order[i]], key=lambda m: (m.relative_change, -m.points_added)):
            plan.append(m)
            dfs(i + 1, plan, gain + m.points_added, rel + m.relative_change)
            plan.pop()
        dfs(i + 1, plan, gain, rel)

    dfs(0, [], Fraction(0), Fraction(0))
    plan = best[1]
    if plan is not None:
        plan = tuple(sorted(plan, key=lambda m: (-m.points_added, m.row_id)))
    return plan, exact


def gap_analysis(
    standard, rows: tuple[RowScore, ...], f: Fraction, grade, li_mode: str = "floor"
) -> Gap:
    missing = tuple(r for r in rows if r.status in MISSING_DATA_STATUSES)
    better = [g for g in standard.grades if _frac(g.min_f) > f]
    if not better:
        return Gap(None, None, (), True, missing, "already at the top grade of Table 9")
    next_grade = min(better, key=lambda g: g.min_f)
    deficit = _frac(next_grade.min_f) - f
    plan, exact = least_change_plan(candidate_moves(standard, rows), deficit)
    if plan is None:
        held = sum((r.points_max for r in missing), Fraction(0))
        reason = (
            f"no improvement of scored rows reaches {next_grade.min_f:g}; rows without usable "
            f"data hold {float(held):g} points"
        )
    else:
        reason = (
            f"{len(plan)} row(s) reach F ≥ {next_grade.min_f:g} with the least change "
            "(fewest rows, then smallest total relative change, then most points)"
        )
    note = None
    ceiling = _frac(standard.li_policy.floors[1]) * _frac(standard.total_points)
    if li_mode == "floor" and _frac(next_grade.min_f) >= ceiling:
        note = (
            f"Under the floor policy tier 1 gives Li {standard.li_policy.floors[1]:g}, so F is at "
            f"most {float(ceiling):g}: level {next_grade.level} needs every row at tier 1."
        )
    return Gap(next_grade, deficit, plan, exact, missing, reason, note)


# --------------------------------------------------------------------------- JSON (docs/score-json-schema.md)

SCHEMA_ID = "greenfoundry.score/1"


def _num(x: Fraction | float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def _tier_dict(t) -> dict[str, Any] | None:
    if t is None:
        return None
    value = t.value if isinstance(t.value, (str, bool)) else _num(t.value, 6)
    return {"tier": t.tier, "cmp": t.cmp, "value": value, "printed": t.printed}


def _row_dict(r: RowScore) -> dict[str, Any]:
    d = r.declaration
    return {
        "row_id": r.row_id,
        "group": r.group_id,
        "indicator": r.indicator_id,
        "name_zh": r.name_zh,
        "name_en": r.name_en,
        "status": r.status,
        "source": r.source,
        "value": r.value,
        "unit": r.unit,
        "tier": r.tier,
        "li": _num(r.li),
        "points": _num(r.points),
        "points_max": _num(r.points_max),
        "would_be_tier": r.would_be_tier,
        "reason": r.reason,
        "variant": r.variant,
        "context": r.context,
        "thresholds": [_tier_dict(t) for t in r.tiers],
        "next_tier": _tier_dict(r.next_tier),
        "notes": list(r.notes),
        "corrections": [
            {
                "note": c.note,
                "applied": c.applied,
                "delta": _num(c.delta, 6),
                "explanation": c.explanation,
            }
            for c in r.corrections
        ],
        "assumptions": [_assumption_dict(a) for a in r.assumptions],
        "warnings": list(r.warnings),
        "window": r.window.as_dict() if r.window else None,
        "coverage": r.coverage,
        "evidence": None
        if d is None
        else {
            "declared_by": d.declared_by,
            "declared_on": d.declared_on.isoformat(),
            "valid_until": d.valid_until.isoformat(),
            "references": list(d.references),
            "note": d.note,
        },
    }


def _change_dict(c: TierChange | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "tier": c.tier,
        "temp_c": _num(c.temp_c),
        "side": c.side,
        "points": _num(c.points),
        "plausible": c.plausible,
    }


def _assumption_dict(a: Assumption) -> dict[str, Any]:
    return {
        "row_id": a.row_id,
        "note": a.note,
        "missing": a.missing,
        "assumed_c": a.assumed_c,
        "better": _change_dict(a.better),
        "worse": _change_dict(a.worse),
        "message": a.message,
    }


def _grade_dict(g) -> dict[str, Any] | None:
    if g is None:
        return None
    return {"level": g.level, "min_f": g.min_f, "name_zh": g.name_zh, "name_en": g.name_en}


def _move_dict(m: Move) -> dict[str, Any]:
    return {
        "row_id": m.row_id,
        "from_tier": m.from_tier,
        "to_tier": m.to_tier,
        "value": m.value,
        "target": _tier_dict(m.target),
        "relative_change": _num(m.relative_change),
        "points_added": _num(m.points_added),
        "conditions": list(m.conditions),
    }


def plant_dict(result: ScoreResult) -> dict[str, Any]:
    """The plant as the scorer read it from its config (docs/score-json-schema.md, `plant`)."""
    cfg = result.plant
    info = cfg.plant
    ranges = cfg.dn_ranges
    kind, capacity = result.furnace or (None, None)
    return {
        "id": info.id,
        "config": plant_source(cfg),
        "product": info.product,
        "dn_range": [ranges[0][0], ranges[-1][1]] if ranges else None,
        "dn_ranges": [list(r) for r in ranges],
        "residential_within_1200m": info.residential_within_1200m,
        "annual_mean_air_temp_c": info.annual_mean_air_temp_c,
        "furnace_kind": kind,
        "furnace_capacity": capacity,
        "furnace_capacity_unit": glossary.CAPACITY_UNITS[kind] if kind else None,
        "furnaces": [
            {
                "id": f.id,
                "kind": f.kind,
                "capacity": f.capacity,
                "capacity_unit": f.capacity_unit,
                "dn_range": list(f.dn_range) if f.dn_range else None,
            }
            for f in cfg.furnaces
        ],
        "iron_source": info.iron_source,
    }


def result_to_dict(result: ScoreResult) -> dict[str, Any]:
    """The result as plain JSON values, in the schema of docs/score-json-schema.md."""
    s = result.standard
    gap = result.gap
    groups = []
    for g, points, maximum in result.group_points():
        indicators = []
        for ind in g.indicators:
            p, m = result.indicator_points(ind.id)
            indicators.append(
                {
                    "id": ind.id,
                    "name_zh": ind.name_zh,
                    "name_en": ind.name_en,
                    "points": _num(p),
                    "points_max": _num(m),
                }
            )
        groups.append(
            {
                "id": g.id,
                "no": g.no,
                "name_zh": g.name_zh,
                "name_en": g.name_en,
                "points": _num(points),
                "points_max": _num(maximum),
                "indicators": indicators,
            }
        )
    counts = {status: 0 for status in STATUSES}
    for r in result.rows:
        counts[r.status] += 1
    return {
        "schema": SCHEMA_ID,
        "standard": {"id": s.id, "title_zh": s.title_zh, "title_en": s.title_en},
        "as_of": result.options.as_of.isoformat(),
        "plant": plant_dict(result),
        "li_policy": li_policy_dict(s, result.options),
        "min_coverage": result.options.min_coverage,
        "f": _num(result.f),
        "f_exact": str(result.f),
        "points_max": s.total_points,
        "grade": _grade_dict(result.grade),
        "status_counts": counts,
        "warnings": [{"row_id": rid, "message": m} for rid, m in result.warnings],
        "assumptions": [_assumption_dict(a) for a in result.assumptions],
        "groups": groups,
        "rows": [_row_dict(r) for r in result.rows],
        "gap": {
            "next_grade": _grade_dict(gap.next_grade),
            "deficit": _num(gap.deficit),
            "least_change": "fewest rows; then smallest total relative change of value "
            "(|target − value| / max(|value|, |target|); a level or yes/no row counts 1 per "
            "tier step); then most points added",
            "plan": None if gap.plan is None else [_move_dict(m) for m in gap.plan],
            "plan_points_added": None
            if not gap.plan
            else _num(sum((m.points_added for m in gap.plan), Fraction(0))),
            "exact": gap.exact,
            "reason": gap.reason,
            "note": gap.note,
            "missing_data": [
                {
                    "row_id": r.row_id,
                    "status": r.status,
                    "points_max": _num(r.points_max),
                    "reason": r.reason,
                }
                for r in gap.missing_data
            ],
            "missing_data_points_max": _num(
                sum((r.points_max for r in gap.missing_data), Fraction(0))
            ),
        },
    }
