"""A green-factory standard as data: the model, the loader with its validation, and tier evaluation.

The numbers live in ``scoring/standards/<id>.yaml`` (package data), never in this module. This
module knows the *shape* shared by every part of T/CFA 0308011 (cast iron, cast steel, die
casting, investment casting, centrifugal pipe): first-level groups, second-level indicators,
third-level rows with tiers per context variant, the errata decisions, the grades of Table 9 and
the Li policy of clause 5.2.2. Another part is one more YAML file, loaded by id.

Public API (stable: the scorer builds on it)
--------------------------------------------
``load_standard(path_or_id=None) -> Standard``
    ``None`` loads ``DEFAULT_ID``; an id loads ``standards/<id>.yaml`` from the package; a path
    (``str`` ending in ``.yaml``/``.yml`` or a ``Path``) loads that file. The file is validated
    once, here, through ``greenfoundry.inputs`` (a key given twice, an unknown key, comparators,
    thresholds out of order, point sums, references to decisions, an impossible date). Every
    problem raises one ``ConfigError`` naming the file and the key path (a row as
    ``rows[<row id>]``), the value and what is allowed.

``Standard``: ``id``, ``title_zh``, ``title_en``, ``total_points`` (int, 1000), ``groups``
    (tuple of ``Group``), ``indicators`` (dict id -> ``Indicator``), ``rows`` (dict id -> ``Row``,
    in table order), ``errata`` (tuple of ``Decision``) and ``decision(id)``, ``grades`` (tuple of
    ``Grade``, best first) and ``grade_for(f) -> Grade | None``, ``li_policy`` (``LiPolicy``),
    ``context_keys`` (dict name -> ``ContextKey``), ``scales`` (dict name -> ``Scale``),
    ``furnace_table`` (the parsed Table C.1, see ``table_c1``), ``path``, ``revised_on`` (the
    date the data file was last revised).
``Group``: ``id``, ``no``, ``name_zh``, ``name_en``, ``points``, ``points_printed``, ``source``,
    ``indicators``.
``Indicator``: ``id``, ``group_id``, ``name_zh``, ``name_en``, ``points`` (in force),
    ``points_printed`` (dict table -> points as printed there), ``source``, ``decisions``, ``rows``.
``Row``: ``id``, ``indicator_id``, ``name_zh``, ``name_en``, ``points`` (float, in force after
    errata), ``points_exact`` (``Fraction``), ``points_printed``, ``unit``, ``kind``
    (``"measured"`` | ``"declared"``), ``value_type`` (``"number"`` | ``"percent"`` |
    ``"ratio"`` | ``"count"`` | ``"level"`` | ``"boolean"`` | ``"years"``), ``source``, ``status``
    (``"as_printed"`` | ``"interpreted"`` | ``"corrected"``), ``decisions`` (ids),
    ``context`` (tuple of context keys it may need), ``conditions`` (``Condition``s read from the
    context), ``scale`` (``Scale`` for level rows), ``items`` (checklist items), ``variants``
    (tuple of ``Variant``), ``limits_from`` (``"C.1"`` when the tiers come from Table C.1);
    ``standard`` (the ``Standard`` it belongs to); methods ``variant_for(context)``,
    ``tiers_for(context) -> (tiers, variant id, notes)``, ``evaluate(value, context)`` and
    ``next_threshold(value, context)``.
``Variant``: ``id``, ``label``, ``when`` (dict key -> value or bound dict), ``tiers``, ``source``.
``Tier``: ``tier`` (1..3), ``cmp`` (``<`` ``≤`` ``>`` ``≥`` ``=`` ``at_least``), ``value``,
    ``printed`` (the cell exactly as printed), ``decision``; ``met(value, scale=None)``.
``Evaluation``: ``row_id``, ``status`` (``STATUS_TIER`` | ``STATUS_BELOW`` |
    ``STATUS_NOT_APPLICABLE`` | ``STATUS_NOT_COVERED`` | ``STATUS_NO_DATA``), ``tier`` (1..3 or
    ``None``), ``li_floor`` (Li at the tier's floor under the policy; 0.0 when below; ``None``
    when not applicable, not covered or no data), ``variant`` (id), ``tiers`` (thresholds
    applied, after any Table C.1 correction), ``next_tier`` (the next better tier's ``Tier`` or
    ``None`` at tier 1), ``value``, ``reason``, ``notes`` (corrections applied, decisions used).
``NOT_APPLICABLE``: pass it as the value of a row that does not apply to the plant.
``ContextError``: a required context key is missing or has a value the standard does not allow.

Context is a plain mapping. Keys and their allowed values are data (``context_keys`` in the
YAML); for this standard: ``product`` ("gray" | "ductile"), ``dn`` (int), ``iron_source``,
``residential_within_1200m`` (bool), ``furnace_kind`` ("cupola" | "induction"),
``furnace_capacity`` (t/h for a cupola, t for an induction furnace), ``tap_temp_c``,
``annual_mean_air_temp_c`` and the boolean conditions ``water_based_coating`` and ``no_serious_injury``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from greenfoundry import glossary, inputs
from greenfoundry.errors import ConfigError, ContextError, InputError, NotCoveredError

DEFAULT_ID = "t-cfa-0308011.5-2024"

STATUS_TIER = "tier"
STATUS_BELOW = "below"
STATUS_NOT_APPLICABLE = "not_applicable"
STATUS_NOT_COVERED = "not_covered"
STATUS_NO_DATA = "no_data"

KINDS = ("measured", "declared")
VALUE_TYPES = ("number", "percent", "ratio", "count", "level", "boolean", "years")
NUMERIC_CMPS = ("<", "≤", ">", "≥", "=")
CMPS = (*NUMERIC_CMPS, "at_least")
LOWER_IS_BETTER = ("<", "≤")
HIGHER_IS_BETTER = (">", "≥")
BOUND_KEYS = ("ge", "gt", "le", "lt")


class _NotApplicable:
    """Sentinel value: the row does not apply to this plant (distinct from no data and from 0)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_APPLICABLE"


NOT_APPLICABLE = _NotApplicable()


# --------------------------------------------------------------------------- comparators


def compare(value: float, cmp: str, threshold: float) -> bool:
    """``value <cmp> threshold`` for the printed numeric comparators (``<`` ``≤`` ``>`` ``≥`` ``=``).

    A value exactly on a boundary is decided by the comparator: ``compare(300, "<", 300)`` is
    False and ``compare(330, "≤", 330)`` is True (clause 5.2.2 reads each cell as printed).
    """
    if cmp == "<":
        return value < threshold
    if cmp == "≤":
        return value <= threshold
    if cmp == ">":
        return value > threshold
    if cmp == "≥":
        return value >= threshold
    if cmp == "=":
        return value == threshold
    raise ValueError(f"unknown comparator {cmp!r} (allowed: {', '.join(NUMERIC_CMPS)})")


_PRINTED_CMP = {"<": "<", "＜": "<", "≤": "≤", "<=": "≤", ">": ">", "＞": ">", "≥": "≥", ">=": "≥"}
_PRINTED_RE = re.compile(r"^\s*(<=|>=|[<＜≤>＞≥])?\s*([0-9][0-9 ]*(?:\.[0-9]+)?)\s*(%|‰|年)?\s*$")


def parse_printed(printed: str) -> tuple[str | None, float] | None:
    """The comparator and number of a simple printed cell (``"＜300"`` -> ``("<", 300.0)``).

    ``None`` for text cells. A bare number (``"100"``) gives comparator ``None``. Thousands
    separated by a space, as printed in Table 2 (``"≥20 000"``), are read as one number.
    """
    m = _PRINTED_RE.match(printed)
    if not m:
        return None
    cmp = _PRINTED_CMP[m.group(1)] if m.group(1) else None
    return cmp, float(m.group(2).replace(" ", ""))


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Decision:
    """One erratum or reading of an ambiguity: what we decided, why, and which ids it touches."""

    id: str
    about: str
    decision: str
    reason: str
    affects: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True)
class Grade:
    """A row of Table 9: the level, the minimum F for it, and its name."""

    level: int
    min_f: float
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class LiPolicy:
    """Li for a met tier: clause 5.2.2 gives only floors (≥ 90 / 75 / 60 %); the policy says where."""

    floors: dict[int, float]
    below: float
    source: str
    note: str

    def li_floor(self, tier: int | None) -> float:
        return self.below if tier is None else self.floors[tier]


@dataclass(frozen=True)
class ContextKey:
    name: str
    type: str  # "enum" | "int" | "number" | "bool"
    values: tuple[str, ...]
    unit: str
    description: str

    def allowed(self) -> str:
        """What the key takes, for messages."""
        unit = f" ({self.unit})" if self.unit else ""
        return {
            "enum": "one of " + ", ".join(self.values),
            "int": f"a whole number{unit}",
            "number": f"a number{unit}",
            "bool": "true or false",
        }[self.type]

    def check(self, value: Any, row_id: str) -> Any:
        ok = {
            "enum": isinstance(value, str) and value in self.values,
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
        }[self.type]
        if not ok:
            raise ContextError(
                f"rows[{row_id}].context.{self.name}: {inputs.show(value)} is not allowed; "
                f"expected {self.allowed()}"
            )
        return value


@dataclass(frozen=True)
class ScaleLevel:
    key: str
    zh: str
    en: str


@dataclass(frozen=True)
class Scale:
    """An ordinal scale of declared levels, best first (e.g. 国内领先至国际先进水平 …)."""

    name: str
    levels: tuple[ScaleLevel, ...]
    source: str

    def rank(self, key: str) -> int:
        for i, level in enumerate(self.levels):
            if level.key == key:
                return i
        raise ContextError(
            f"level {key!r} is not on scale {self.name} (allowed: "
            + ", ".join(lv.key for lv in self.levels)
            + ")"
        )


@dataclass(frozen=True)
class Tier:
    """One tier cell: evaluated as ``value <cmp> threshold``; ``printed`` is the cell as printed."""

    tier: int
    cmp: str
    value: Any
    printed: str
    decision: str | None = None

    def met(self, value: Any, scale: Scale | None = None) -> bool:
        if self.cmp == "at_least":
            if scale is None:
                raise ValueError("an at_least tier needs the row's scale")
            return scale.rank(value) <= scale.rank(self.value)
        if isinstance(self.value, bool):
            return value is self.value
        return compare(value, self.cmp, self.value)

    def describe(self) -> str:
        if self.cmp == "at_least":
            return f"at least {self.value}"
        if isinstance(self.value, bool):
            return "yes" if self.value else "no"
        return f"{self.cmp} {_num(self.value)}"


@dataclass(frozen=True)
class Condition:
    """A printed precondition read from the context (e.g. 使用水性涂料); false -> no tier."""

    key: str
    printed: str


@dataclass(frozen=True)
class Variant:
    """The tiers for one context (gray / ductile DN range / residential area …)."""

    id: str
    label: str
    when: dict[str, Any]
    tiers: tuple[Tier, ...]
    source: str


@dataclass(frozen=True)
class Evaluation:
    row_id: str
    status: str
    tier: int | None
    li_floor: float | None
    variant: str | None
    tiers: tuple[Tier, ...]
    next_tier: Tier | None
    value: Any
    reason: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    id: str
    indicator_id: str
    name_zh: str
    name_en: str
    points_exact: Fraction
    points_printed: float
    unit: str
    kind: str
    value_type: str
    source: str
    status: str
    decisions: tuple[str, ...]
    context: tuple[str, ...]
    conditions: tuple[Condition, ...]
    scale: Scale | None
    items: tuple[str, ...]
    variants: tuple[Variant, ...]
    limits_from: str | None
    note: str
    plausible: glossary.Range | None = None  # the row's own range, narrower than its unit's
    _standard: Standard | None = field(default=None, repr=False, compare=False)

    @property
    def points(self) -> float:
        return float(self.points_exact)

    @property
    def standard(self) -> Standard | None:
        """The standard this row belongs to (its Li policy, context keys, Table C.1)."""
        return self._standard

    def plausible_range(self, unit: str | None = None) -> glossary.Range | None:
        """The values a plant can have: the row's own ``plausible``, else its unit's
        (``glossary.PLAUSIBLE_BY_UNIT``; ``unit`` overrides the row's, for Table C.1 the unit of
        the plant's furnace). None for rows that are not numbers (levels, yes/no) and counts,
        whose range is their list of items."""
        if self.value_type in ("level", "boolean", "count"):
            return None
        return self.plausible or glossary.PLAUSIBLE_BY_UNIT.get(unit or self.unit)

    # -- context ---------------------------------------------------------------------------

    def _ctx(self, context: Mapping[str, Any] | None, key: str, why: str) -> Any:
        context = context or {}
        if key not in context or context[key] is None:
            raise ContextError(
                f"rows[{self.id}].context.{key}: missing; the row ({self.name_en}) needs it {why}"
            )
        spec = self._standard.context_keys[key] if self._standard else None
        return spec.check(context[key], self.id) if spec else context[key]

    def _matches(self, variant: Variant, context: Mapping[str, Any] | None) -> bool:
        labels = ", ".join(v.label for v in self.variants)
        for key, want in variant.when.items():
            got = self._ctx(context, key, f"to choose between its variants ({labels})")
            if isinstance(want, dict):
                if not all(compare(got, _BOUND_CMP[b], lim) for b, lim in want.items()):
                    return False
            elif got != want:
                return False
        return True

    def variant_for(self, context: Mapping[str, Any] | None) -> Variant:
        """The variant whose ``when`` matches; ``NotCoveredError`` when none does."""
        for variant in self.variants:
            if self._matches(variant, context):
                return variant
        shown = {k: (context or {}).get(k) for k in self.context}
        raise NotCoveredError(
            f"row {self.id} ({self.source}): no variant covers {shown}; variants: "
            + "; ".join(v.label for v in self.variants)
        )

    def tiers_for(self, context: Mapping[str, Any] | None) -> tuple[tuple[Tier, ...], str, tuple]:
        """``(tiers, variant id, notes)`` for this context, with Table C.1's notes applied."""
        if self.limits_from == "C.1":
            from greenfoundry.scoring import table_c1

            c = context or {}
            res = table_c1.limits_for_context(self._standard.furnace_table, c, row_id=self.id)
            head = f"Table C.1 row {res.row_id} ({res.label}); value in {res.unit}"
            return res.tiers, res.row_id, (head, *res.notes)
        variant = self.variant_for(context)
        return variant.tiers, variant.id, ()

    # -- evaluation ------------------------------------------------------------------------

    def _check_value(self, value: Any) -> Any:
        vt = self.value_type
        where = f"rows[{self.id}].value: {inputs.show(value)} is not allowed; expected"
        if vt == "level":
            keys = ", ".join(lv.key for lv in self.scale.levels)
            if not isinstance(value, str) or value not in keys.split(", "):
                raise ContextError(f"{where} a level of scale {self.scale.name}: {keys}")
            return value
        if vt == "boolean":
            if not isinstance(value, bool):
                raise ContextError(f"{where} true or false (a yes/no row)")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ContextError(f"{where} a number ({self.unit})")
        return value

    def evaluate(self, value: Any, context: Mapping[str, Any] | None = None) -> Evaluation:
        """The tier this value meets, by the printed comparators (clause 5.2.2).

        ``value`` is ``None`` -> no data; ``NOT_APPLICABLE`` -> not applicable; a context that no
        variant (or no Table C.1 row) covers -> not covered. None of these is a tier or a 0. A
        missing context key raises ``ContextError`` naming the row and the key.
        """
        policy = self._standard.li_policy if self._standard else None
        if value is NOT_APPLICABLE:
            return Evaluation(
                self.id,
                STATUS_NOT_APPLICABLE,
                None,
                None,
                None,
                (),
                None,
                value,
                "declared not applicable to this plant",
            )
        if value is None:
            return Evaluation(self.id, STATUS_NO_DATA, None, None, None, (), None, None, "no value")
        value = self._check_value(value)
        try:
            tiers, variant, notes = self.tiers_for(context)
        except NotCoveredError as exc:
            return Evaluation(
                self.id, STATUS_NOT_COVERED, None, None, None, (), None, value, str(exc)
            )
        for cond in self.conditions:
            if not self._ctx(context, cond.key, f"(printed condition: {cond.printed})"):
                return Evaluation(
                    self.id,
                    STATUS_BELOW,
                    None,
                    policy.li_floor(None) if policy else 0.0,
                    variant,
                    tiers,
                    tiers[-1],
                    value,
                    f"printed condition not met: {cond.printed}",
                    notes,
                )
        tier = next((t.tier for t in tiers if t.met(value, self.scale)), None)
        li = policy.li_floor(tier) if policy else None
        status = STATUS_BELOW if tier is None else STATUS_TIER
        reason = (
            f"meets tier {tier} ({_tier(tiers, tier).printed})"
            if tier
            else "meets no tier (" + " / ".join(t.printed for t in tiers) + ")"
        )
        return Evaluation(
            self.id, status, tier, li, variant, tiers, _next(tiers, tier), value, reason, notes
        )

    def next_threshold(self, value: Any, context: Mapping[str, Any] | None = None) -> Tier | None:
        """The next better tier's cell for this value (tier 3 when below); ``None`` at tier 1."""
        return self.evaluate(value, context).next_tier


_BOUND_CMP = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


def _tier(tiers: tuple[Tier, ...], n: int) -> Tier:
    return next(t for t in tiers if t.tier == n)


def _next(tiers: tuple[Tier, ...], tier: int | None) -> Tier | None:
    if tier == 1:
        return None
    better = [t for t in tiers if tier is None or t.tier < tier]
    return max(better, key=lambda t: t.tier) if better else None


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Indicator:
    id: str
    group_id: str
    name_zh: str
    name_en: str
    points: int
    points_printed: dict[str, float]
    source: str
    decisions: tuple[str, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Group:
    id: str
    no: int
    name_zh: str
    name_en: str
    points: int
    points_printed: dict[str, float]
    source: str
    indicators: tuple[Indicator, ...]


@dataclass
class Standard:
    id: str
    title_zh: str
    title_en: str
    total_points: int
    groups: tuple[Group, ...]
    indicators: dict[str, Indicator]
    rows: dict[str, Row]
    errata: tuple[Decision, ...]
    grades: tuple[Grade, ...]
    li_policy: LiPolicy
    context_keys: dict[str, ContextKey]
    scales: dict[str, Scale]
    furnace_table: Any
    path: Path
    structure: dict[str, int]
    revised_on: dt.date | None = None  # when this data file was last revised

    def decision(self, decision_id: str) -> Decision:
        for d in self.errata:
            if d.id == decision_id:
                return d
        raise InputError(
            f"{decision_id}: no such decision; `greenfoundry standard check` lists them"
        )

    def grade_for(self, f: float) -> Grade | None:
        """The Table 9 grade for a total score F (best first); ``None`` below the lowest."""
        for grade in self.grades:
            if f >= grade.min_f:
                return grade
        return None

    def points_in_force(self) -> Fraction:
        """Σ of every row's points in force, exactly (formula (1) with every Li = 1)."""
        return sum((r.points_exact for r in self.rows.values()), Fraction(0))


# --------------------------------------------------------------------------- loader


def _package_path(standard_id: str) -> Path:
    return Path(str(resources.files("greenfoundry.scoring") / "standards" / f"{standard_id}.yaml"))


def standard_path(path_or_id: str | Path | None = None) -> Path:
    """The file for an id (package data) or a path."""
    if path_or_id is None:
        return _package_path(DEFAULT_ID)
    if isinstance(path_or_id, Path) or str(path_or_id).endswith((".yaml", ".yml")):
        return Path(path_or_id)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", str(path_or_id)):
        raise ConfigError(
            f"standard id {path_or_id!r} is not allowed; expected letters, digits, '.', '_' "
            "and '-', or the path of a .yaml file"
        )
    path = _package_path(str(path_or_id))
    if not path.exists():
        have = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(
            f"standard {path_or_id!r} is not allowed; expected one of the shipped standards "
            f"({', '.join(have)}) or the path of a .yaml file"
        )
    return path


def load_standard(path_or_id: str | Path | None = None) -> Standard:
    """Load and validate a standard file; see the module docstring. The parsed file is cached
    by its resolved path and modification time: a file changed on disk is read again."""
    if path_or_id is None or (
        isinstance(path_or_id, str) and not path_or_id.endswith((".yaml", ".yml"))
    ):
        path = _shipped_path(path_or_id)
    else:
        path = standard_path(path_or_id).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(
            f"{inputs.display(path)}: cannot read the standard's file: {exc.strerror}"
        ) from None
    return _load_cached(str(path), mtime)


@lru_cache(maxsize=16)
def _shipped_path(standard_id: str | None) -> Path:
    """The resolved file of a shipped standard (``None``: the default). Finding package data
    costs far more than the stat that checks the file's time, and the rollup engine asks for
    the standard for every window it evaluates; a shipped file does not move, and an id that
    is refused raises again on every call (``lru_cache`` keeps no exception)."""
    return standard_path(standard_id).resolve()


@lru_cache(maxsize=16)
def _load_cached(path: str, _mtime: int) -> Standard:
    raw, file = inputs.read(path, "the standard's file", ConfigError)
    return build_standard(raw, Path(path), file)


def _node(file: str, path: str, data: Any, required=(), optional=()) -> inputs.Node:
    """A mapping of the standard's file, its keys checked up front."""
    node = inputs.Node(data, path, file=file, error=ConfigError)
    return node.expect(required, optional)


def item_path(where: str, name: str, raw: Any) -> str:
    """An id'd item's key path, `name[<id>]`, as soon as it has an id; else its position."""
    rid = raw.get("id") if isinstance(raw, dict) else None
    return f"{name}[{rid}]" if isinstance(rid, str) and rid else where


_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_ID_RULE = "lower-case letters, digits, '.', '_' or '-'"


def build_standard(raw: Any, path: Path, file: str | None = None) -> Standard:
    """Validate the parsed YAML and build the model. Raises ``ConfigError`` naming the file and
    the key path (rows as ``rows[<row id>]``)."""
    f = file or inputs.display(path)
    top = _node(
        f,
        "",
        raw,
        (
            "id",
            "title_zh",
            "title_en",
            "total_points",
            "structure",
            "li_policy",
            "grades",
            "context_keys",
            "errata",
            "groups",
        ),
        ("scales", "furnace_table", "source", "notes", "revised_on"),
    )
    total = top.number("total_points", integer=True, above=0)
    revised_on = top.date("revised_on", None)

    # decisions first: rows cite them
    errata = []
    decision_ids: set[str] = set()
    for where, d in top.items("errata"):
        r = _node(
            f,
            item_path(where, "errata", d),
            d,
            ("id", "about", "decision", "reason"),
            ("affects", "source"),
        )
        did = r.text("id")
        if did in decision_ids:
            r.refuse("id", did, "an id no other decision has")
        decision_ids.add(did)
        r.path = f"errata[{did}]"
        errata.append(
            Decision(
                did,
                r.text("about"),
                r.text("decision"),
                r.text("reason"),
                tuple(r.list("affects")),
                r.get("source", ""),
            )
        )

    lp = _node(f, "li_policy", top.get("li_policy"), ("floors", "below", "source"), ("note",))
    floors = lp.get("floors")
    if not isinstance(floors, dict) or sorted(floors) != [1, 2, 3]:
        lp.refuse("floors", floors, "a mapping of tiers 1, 2, 3 to Li")
    if not (1 >= floors[1] > floors[2] > floors[3] > lp.number("below") >= 0):
        lp.refuse("floors", floors, "Li falling with the tier, within [0, 1], above `below`")
    li_policy = LiPolicy(
        {int(k): float(v) for k, v in floors.items()},
        float(lp.number("below")),
        lp.text("source"),
        lp.get("note", ""),
    )

    grades = []
    for where, g in top.items("grades"):
        r = _node(f, where, g, ("level", "min_f", "name_zh", "name_en"))
        grades.append(
            Grade(
                r.number("level", integer=True),
                r.number("min_f"),
                r.text("name_zh"),
                r.text("name_en"),
            )
        )
    if [g.min_f for g in grades] != sorted((g.min_f for g in grades), reverse=True):
        top.refuse("grades", [g.min_f for g in grades], "grades listed best first (min_f falling)")

    context_keys = {}
    for name, spec in top.child("context_keys").data.items():
        r = _node(f, f"context_keys.{name}", spec, ("type", "description"), ("values", "unit"))
        ctype = r.choice("type", ("enum", "int", "number", "bool"))
        if ctype == "enum" and not r.list("values"):
            r.refuse("values", r.get("values", None), "the allowed values of the enum")
        context_keys[name] = ContextKey(
            name,
            ctype,
            tuple(r.list("values")),
            r.get("unit", ""),
            r.text("description"),
        )

    scales = {}
    for name, spec in top.child("scales", required=False).data.items():
        r = _node(f, f"scales.{name}", spec, ("levels", "source"))
        levels = []
        for where, lv in r.items("levels"):
            lr = _node(f, where, lv, ("key", "zh", "en"))
            levels.append(ScaleLevel(lr.text("key"), lr.text("zh"), lr.text("en")))
        scales[name] = Scale(name, tuple(levels), r.text("source"))

    furnace_table = None
    if top.has("furnace_table"):
        from greenfoundry.scoring import table_c1

        furnace_table = table_c1.parse_table(top.get("furnace_table"), f, context_keys)

    std = Standard(
        id=top.text("id"),
        title_zh=top.text("title_zh"),
        title_en=top.text("title_en"),
        total_points=int(total),
        groups=(),
        indicators={},
        rows={},
        errata=tuple(errata),
        grades=tuple(grades),
        li_policy=li_policy,
        context_keys=context_keys,
        scales=scales,
        furnace_table=furnace_table,
        path=path,
        structure=dict(top.get("structure") or {}),
        revised_on=revised_on,
    )

    def cite(r: inputs.Node, key: str, ids: list) -> tuple[str, ...]:
        for d in ids:
            if d not in decision_ids:
                r.refuse(key, d, "the id of a decision in errata")
        return tuple(ids)

    groups = []
    seen_ids: set[str] = set()

    def new_id(r: inputs.Node) -> str:
        i = r.text("id", pattern=_ID_RE, expected=_ID_RULE)
        if i in seen_ids:
            r.refuse("id", i, f"an id used once ({i!r} is used twice)")
        seen_ids.add(i)
        return i

    for where, g in top.items("groups"):
        gr = _node(
            f,
            item_path(where, "groups", g),
            g,
            ("id", "number", "name_zh", "name_en", "points", "source", "indicators"),
            ("points_printed", "decisions"),
        )
        gid = new_id(gr)
        gr.path = f"groups[{gid}]"
        cite(gr, "decisions", gr.list("decisions"))
        indicators = []
        for iwhere, ind in gr.items("indicators"):
            ir = _node(
                f,
                item_path(iwhere, "indicators", ind),
                ind,
                ("id", "name_zh", "name_en", "points", "source", "rows"),
                ("points_printed", "decisions", "scale_rows"),
            )
            iid = new_id(ir)
            ir.path = f"indicators[{iid}]"
            decisions = cite(ir, "decisions", ir.list("decisions"))
            rows_raw = ir.list("rows")
            if not rows_raw:
                ir.refuse("rows", rows_raw, "at least one row")
            rows = [
                _build_row(f, f"{ir.path}.rows[{k}]", rr, iid, std, new_id, cite)
                for k, rr in enumerate(rows_raw)
            ]
            printed_sum = sum(Fraction(str(r.points_printed)) for r in rows)
            in_force = Fraction(str(ir.number("points")))
            if printed_sum != in_force:
                scale_by = ir.get("scale_rows", None)
                if scale_by is None:
                    ir.fail(
                        f"rows sum to {_num(float(printed_sum))} points but the indicator has "
                        f"{_num(float(in_force))} in force; fix the points or cite the decision "
                        "that scales the rows (scale_rows)"
                    )
                cite(ir, "scale_rows", [scale_by])
                k = in_force / printed_sum
                rows = [_rescale(r, k, scale_by) for r in rows]
            for r in rows:
                std.rows[r.id] = r
            indicator = Indicator(
                iid,
                gid,
                ir.text("name_zh"),
                ir.text("name_en"),
                ir.number("points"),
                dict(ir.get("points_printed", {})),
                ir.text("source"),
                decisions,
                tuple(rows),
            )
            std.indicators[iid] = indicator
            indicators.append(indicator)
        isum = sum(i.points for i in indicators)
        if isum != gr.number("points"):
            gr.fail(f"indicators sum to {isum} points, the group has {gr.number('points')}")
        groups.append(
            Group(
                gid,
                gr.number("number", integer=True),
                gr.text("name_zh"),
                gr.text("name_en"),
                gr.number("points"),
                dict(gr.get("points_printed", {})),
                gr.text("source"),
                tuple(indicators),
            )
        )
    std.groups = tuple(groups)

    gsum = sum(g.points for g in groups)
    if gsum != total:
        top.fail(f"groups sum to {gsum} points, total_points is {total}", "groups")
    if std.points_in_force() != total:
        top.fail(f"rows in force sum to {float(std.points_in_force())}, not {total}", "groups")
    want = std.structure
    if want.get("first_level") not in (None, len(groups)):
        top.fail(
            f"structure says {want['first_level']} first-level indicators, found {len(groups)}",
            "structure",
        )
    if want.get("second_level") not in (None, len(std.indicators)):
        top.fail(
            f"structure says {want['second_level']} second-level indicators, "
            f"found {len(std.indicators)}",
            "structure",
        )
    for d in errata:
        for a in d.affects:
            if a not in seen_ids and a not in ("li_policy", "furnace_table"):
                top.fail(
                    f"{inputs.show(a)} is not allowed; expected a group, indicator or row id",
                    at=f"errata[{d.id}].affects",
                )
    if furnace_table is not None:
        ft = top.child("furnace_table")
        fr = furnace_table.row_id
        if fr not in std.rows or std.rows[fr].limits_from != "C.1":
            ft.refuse("row_id", fr, "the id of a row with limits_from: C.1")
        cite(ft, "decisions", list(furnace_table.decision_ids))
    return std


def _rescale(row: Row, k: Fraction, decision: str) -> Row:
    from dataclasses import replace

    return replace(
        row,
        points_exact=row.points_exact * k,
        status="corrected",
        decisions=tuple(dict.fromkeys((*row.decisions, decision))),
    )


def _build_row(f, where, raw, indicator_id, std: Standard, new_id, cite) -> Row:
    r = _node(
        f,
        item_path(where, "rows", raw),
        raw,
        ("id", "name_zh", "name_en", "points", "unit", "kind", "value_type", "source"),
        (
            "decisions",
            "context",
            "conditions",
            "scale",
            "items",
            "variants",
            "tiers",
            "limits_from",
            "note",
            "plausible",
        ),
    )
    rid = new_id(r)
    r.path = f"rows[{rid}]"
    if not rid.startswith(indicator_id + "."):
        r.refuse("id", rid, f"an id that starts with its indicator id {indicator_id!r}.")
    kind = r.choice("kind", KINDS)
    value_type = r.choice("value_type", VALUE_TYPES)
    decisions = cite(r, "decisions", r.list("decisions"))
    context = tuple(r.list("context"))
    for k in context:
        if k not in std.context_keys:
            r.refuse("context", k, "a key declared in context_keys")
    scale = None
    if value_type == "level":
        r.choice("scale", tuple(std.scales))
        scale = std.scales[r.get("scale")]
    elif r.has("scale"):
        r.fail("only a level row has a scale", "scale")
    conditions = []
    for cwhere, c in r.items("conditions"):
        cr = _node(f, cwhere, c, ("key", "printed"))
        key = cr.text("key")
        if key not in context:
            cr.refuse("key", key, "a key listed in the row's context")
        if std.context_keys[key].type != "bool":
            cr.refuse("key", key, "a bool context key")
        conditions.append(Condition(key, cr.text("printed")))

    limits_from = r.get("limits_from", None)
    variants: list[Variant] = []
    if limits_from is not None:
        if limits_from != "C.1" or std.furnace_table is None:
            r.refuse("limits_from", limits_from, "'C.1', with a furnace_table in the file")
        if r.has("variants") or r.has("tiers"):
            r.fail("a row with limits_from has no tiers of its own", "limits_from")
    else:
        if r.has("variants") == r.has("tiers"):
            r.fail("give either tiers (one context) or variants, not both or neither")
        if r.has("tiers"):
            raw_variants = [(r.path, {"id": "all", "label": "all", "tiers": r.list("tiers")})]
        else:
            raw_variants = list(r.items("variants"))
        vids = set()
        for vwhere, v in raw_variants:
            path = vwhere if vwhere == r.path else item_path(vwhere, f"{r.path}.variants", v)
            vr = _node(f, path, v, ("id", "tiers"), ("label", "when", "source"))
            vid = vr.text("id")
            if vid in vids:
                vr.refuse("id", vid, "a variant id used once in the row")
            vids.add(vid)
            if vid != "all":
                vr.path = f"rows[{rid}].variants[{vid}]"
            when = vr.child("when", required=False)
            for key, want in when.data.items():
                if key not in context:
                    when.fail(f"{key!r} must be listed in the row's context", key)
                spec = std.context_keys[key]
                if isinstance(want, dict):
                    if (
                        not want
                        or set(want) - set(BOUND_KEYS)
                        or spec.type not in ("int", "number")
                    ):
                        when.refuse(key, want, f"bounds {', '.join(BOUND_KEYS)} on a number")
                else:
                    try:
                        spec.check(want, rid)
                    except ContextError:
                        when.refuse(key, want, spec.allowed())
            tiers = _build_tiers(f, vr, value_type, scale, decisions, cite)
            variants.append(
                Variant(vid, vr.get("label", vid), dict(when.data), tiers, vr.get("source", ""))
            )
    plausible = _plausible(f, r, value_type, variants, std)
    pts = r.number("points")
    status = "interpreted" if decisions else "as_printed"
    return Row(
        id=rid,
        indicator_id=indicator_id,
        name_zh=r.text("name_zh"),
        name_en=r.text("name_en"),
        points_exact=Fraction(str(pts)),
        points_printed=pts,
        unit=r.text("unit"),
        kind=kind,
        value_type=value_type,
        source=r.text("source"),
        status=status,
        decisions=decisions,
        context=context,
        conditions=tuple(conditions),
        scale=scale,
        items=tuple(r.list("items")),
        variants=tuple(variants),
        limits_from=limits_from,
        note=r.get("note", ""),
        plausible=plausible,
        _standard=std,
    )


def _plausible(f, r: inputs.Node, value_type, variants, std) -> glossary.Range | None:
    """The row's own ``plausible: {ge|gt: …, le|lt: …, what: …}``, and the check that every
    numeric row has a range (its own or its unit's) holding all its thresholds: what no plant
    can have is refused by the scorer, never scored."""
    own = None
    if r.has("plausible"):
        if value_type in ("level", "boolean", "count"):
            r.fail("a level, yes/no or checklist row has no plausible range", "plausible")
        p = _node(f, f"{r.path}.plausible", r.get("plausible"), ("what",), BOUND_KEYS)
        lows = [k for k in ("ge", "gt") if p.has(k)]
        highs = [k for k in ("le", "lt") if p.has(k)]
        if len(lows) > 1 or len(highs) > 1 or not (lows or highs):
            p.fail("give at most one lower bound (ge or gt) and one upper (le or lt), at least one")
        low = p.number(lows[0]) if lows else None
        high = p.number(highs[0]) if highs else None
        if low is not None and high is not None and not low < high:
            p.refuse(highs[0], high, f"a bound above the lower bound {low:g}")
        unit = "" if r.get("unit") == "1" else r.get("unit")  # a pure number prints no unit
        own = glossary.Range(low, high, p.text("what"), unit, lows == ["gt"], highs == ["lt"])
    if value_type in ("level", "boolean", "count"):
        return own
    if r.get("limits_from", None) == "C.1":
        table = std.furnace_table
        checks = [
            (c1.id, t, table.furnaces[c1.furnace_kind].unit) for c1 in table.rows for t in c1.tiers
        ]
    else:
        checks = [(v.id, t, r.get("unit")) for v in variants for t in v.tiers]
    for where, tier, unit in checks:
        rng = own or glossary.PLAUSIBLE_BY_UNIT.get(unit)
        if rng is None:
            r.fail(
                f"unit {unit!r} has no plausible range (greenfoundry.glossary.PLAUSIBLE_BY_UNIT); "
                "give the row its own plausible: {ge|gt: …, le|lt: …, what: …}",
                "plausible",
            )
        if not rng.holds(float(tier.value)):
            r.fail(
                f"[{where}] tier {tier.tier} threshold {tier.value:g} is outside the plausible "
                f"range ({rng.describe()})",
                "plausible",
            )
    return own


def _build_tiers(f, vr: inputs.Node, value_type, scale, row_decisions, cite) -> tuple[Tier, ...]:
    tiers = []
    for k, (twhere, t) in enumerate(vr.items("tiers")):
        tr = _node(f, twhere, t, ("tier", "cmp", "value", "printed"), ("decision",))
        n = tr.choice("tier", (k + 1,))
        cmp = tr.choice("cmp", CMPS)
        value, printed = tr.get("value"), tr.text("printed")
        decision = tr.get("decision", None)
        if decision is not None:
            cite(tr, "decision", [decision])
        if value_type == "level":
            if cmp != "at_least":
                tr.refuse("cmp", cmp, "at_least (a level row)")
            try:
                scale.rank(value)
            except ContextError:
                tr.refuse("value", value, "a level of scale " + scale.name)
        elif value_type == "boolean":
            if cmp != "=" or not isinstance(value, bool):
                tr.refuse("value", value, "cmp '=' with value true or false (a boolean row)")
        else:
            if cmp == "at_least" or isinstance(value, bool) or not isinstance(value, (int, float)):
                tr.refuse("value", value, f"a number compared with < ≤ > ≥ = (a {value_type} row)")
        # The evaluated comparator and value must be what is printed, unless a decision says why.
        as_printed = value_type not in ("level", "boolean") and parse_printed(printed) == (
            cmp,
            float(value),
        )
        if not as_printed and not (decision or row_decisions):
            tr.fail(
                f"evaluated as '{cmp} {value}' but printed {printed!r}; cite the decision "
                "that reads it so (decision on the tier or decisions on the row)"
            )
        tiers.append(Tier(n, cmp, value, printed, decision))
    if not tiers:
        vr.refuse("tiers", vr.get("tiers", None), "at least one tier")
    _check_order(vr, tiers, scale)
    return tuple(tiers)


def _check_order(vr: inputs.Node, tiers: list[Tier], scale: Scale | None) -> None:
    """Tier 1 must be the hardest to meet, tier 3 the easiest, in one direction."""
    if len(tiers) < 2:
        return
    cmps = {t.cmp for t in tiers}
    if cmps <= {"at_least"}:
        ranks = [scale.rank(t.value) for t in tiers]
        if ranks != sorted(ranks):
            vr.fail(f"levels out of order: {[t.value for t in tiers]} (tier 1 must be the best)")
        return
    if cmps <= set(LOWER_IS_BETTER):
        vals = [t.value for t in tiers]
        if vals != sorted(vals):
            vr.fail(f"thresholds out of order for '<'/'≤': {vals} (tier 1 must be the lowest)")
    elif cmps <= set(HIGHER_IS_BETTER):
        vals = [t.value for t in tiers]
        if vals != sorted(vals, reverse=True):
            vr.fail(f"thresholds out of order for '>'/'≥': {vals} (tier 1 must be the highest)")
    else:
        vr.fail(f"tiers mix directions or use '=' across tiers: {sorted(cmps)}")
