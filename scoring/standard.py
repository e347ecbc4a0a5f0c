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
    once, here: unknown keys, comparators, thresholds out of order, point sums, references to
    decisions. Every problem raises ``ConfigError`` naming the file and the row.

``Standard``: ``id``, ``title_zh``, ``title_en``, ``total_points`` (int, 1000), ``groups``
    (tuple of ``Group``), ``indicators`` (dict id -> ``Indicator``), ``rows`` (dict id -> ``Row``,
    in table order), ``errata`` (tuple of ``Decision``) and ``decision(id)``, ``grades`` (tuple of
    ``Grade``, best first) and ``grade_for(f) -> Grade | None``, ``li_policy`` (``LiPolicy``),
    ``context_keys`` (dict name -> ``ContextKey``), ``scales`` (dict name -> ``Scale``),
    ``furnace_table`` (the parsed Table C.1, see ``table_c1``), ``path``.
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
``residential_within_1200m`` (bool), ``furnace`` ("cupola" | "induction"),
``furnace_capacity`` (t/h for a cupola, t for an induction furnace), ``tap_temp_c``,
``annual_mean_air_temp_c`` and the boolean conditions ``water_based_coating`` and ``no_serious_injury``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from greenfoundry.errors import ConfigError, ContextError, NotCoveredError

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

    def check(self, value: Any, row_id: str) -> Any:
        ok = {
            "enum": isinstance(value, str) and value in self.values,
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
        }[self.type]
        if not ok:
            allowed = (
                ", ".join(self.values) if self.type == "enum" else f"a {self.type} ({self.unit})"
            )
            raise ContextError(
                f"row {row_id}: context {self.name}={value!r} is not allowed (expected {allowed})"
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
    _standard: Standard | None = field(default=None, repr=False, compare=False)

    @property
    def points(self) -> float:
        return float(self.points_exact)

    @property
    def standard(self) -> Standard | None:
        """The standard this row belongs to (its Li policy, context keys, Table C.1)."""
        return self._standard

    # -- context ---------------------------------------------------------------------------

    def _ctx(self, context: Mapping[str, Any] | None, key: str, why: str) -> Any:
        context = context or {}
        if key not in context or context[key] is None:
            raise ContextError(f"row {self.id} ({self.name_en}) needs context key '{key}' {why}")
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
        if vt == "level":
            if not isinstance(value, str):
                raise ContextError(f"row {self.id}: a level row takes a level key, got {value!r}")
            self.scale.rank(value)
            return value
        if vt == "boolean":
            if not isinstance(value, bool):
                raise ContextError(f"row {self.id}: a boolean row takes true/false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ContextError(f"row {self.id}: expected a number ({self.unit}), got {value!r}")
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

    def decision(self, decision_id: str) -> Decision:
        for d in self.errata:
            if d.id == decision_id:
                return d
        raise KeyError(decision_id)

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
        raise ConfigError(f"standard id {path_or_id!r}: only letters, digits, '.', '_' and '-'")
    path = _package_path(str(path_or_id))
    if not path.exists():
        have = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"standard {path_or_id!r} not found (shipped: {', '.join(have)})")
    return path


def load_standard(path_or_id: str | Path | None = None) -> Standard:
    """Load and validate a standard file; see the module docstring."""
    path = standard_path(path_or_id).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the standard file ({exc.strerror})") from exc
    return _load_cached(str(path), mtime)


@lru_cache(maxsize=16)
def _load_cached(path: str, _mtime: int) -> Standard:
    text = Path(path).read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return build_standard(raw, Path(path))


class _Reader:
    """Reads one mapping of the file, refusing unknown keys, with the place named in errors."""

    def __init__(self, file: str, where: str, data: Any, required: tuple, optional: tuple = ()):
        self.file, self.where = file, where
        if not isinstance(data, dict):
            self.fail(f"expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(required) - set(optional), key=str)
        if unknown:
            self.fail(
                f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted((*required, *optional)))})"
            )
        missing = [k for k in required if k not in data]
        if missing:
            self.fail(f"missing key {missing[0]!r}")
        self.data = data

    def fail(self, msg: str):
        raise ConfigError(f"{self.file}: {self.where}: {msg}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def str(self, key: str, default: str | None = None) -> str:
        v = self.data.get(key, default)
        if not isinstance(v, str):
            self.fail(f"{key} must be text, got {v!r}")
        return v

    def num(self, key: str) -> float:
        v = self.data.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(f"{key} must be a number, got {v!r}")
        return v

    def list(self, key: str) -> list:
        v = self.data.get(key, [])
        if not isinstance(v, list):
            self.fail(f"{key} must be a list, got {v!r}")
        return v


_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def build_standard(raw: Any, path: Path) -> Standard:
    """Validate the parsed YAML and build the model. Raises ``ConfigError`` naming the row."""
    f = path.name
    top = _Reader(
        f,
        "top level",
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
        ("scales", "furnace_table", "source", "notes"),
    )
    total = top.num("total_points")

    # decisions first: rows cite them
    errata = []
    for i, d in enumerate(top.list("errata")):
        r = _Reader(
            f, f"errata[{i}]", d, ("id", "about", "decision", "reason"), ("affects", "source")
        )
        errata.append(
            Decision(
                r.str("id"),
                r.str("about"),
                r.str("decision"),
                r.str("reason"),
                tuple(r.list("affects")),
                r.get("source", ""),
            )
        )
    decision_ids = {d.id for d in errata}
    if len(decision_ids) != len(errata):
        top.fail("two errata decisions share an id")

    lp = _Reader(f, "li_policy", top.get("li_policy"), ("floors", "below", "source"), ("note",))
    floors = lp.get("floors")
    if not isinstance(floors, dict) or sorted(floors) != [1, 2, 3]:
        lp.fail(f"floors must map tiers 1, 2, 3 to Li, got {floors!r}")
    if not (1 >= floors[1] > floors[2] > floors[3] > lp.num("below") >= 0):
        lp.fail(f"floors must fall with the tier, within [0, 1]: {floors!r}")
    li_policy = LiPolicy(
        {int(k): float(v) for k, v in floors.items()},
        float(lp.num("below")),
        lp.str("source"),
        lp.get("note", ""),
    )

    grades = []
    for i, g in enumerate(top.list("grades")):
        r = _Reader(f, f"grades[{i}]", g, ("level", "min_f", "name_zh", "name_en"))
        grades.append(
            Grade(int(r.num("level")), r.num("min_f"), r.str("name_zh"), r.str("name_en"))
        )
    if [g.min_f for g in grades] != sorted((g.min_f for g in grades), reverse=True):
        top.fail("grades must be listed best first (min_f falling)")

    context_keys = {}
    for name, spec in (top.get("context_keys") or {}).items():
        r = _Reader(f, f"context_keys.{name}", spec, ("type", "description"), ("values", "unit"))
        if r.get("type") not in ("enum", "int", "number", "bool"):
            r.fail(f"type must be enum, int, number or bool, got {r.get('type')!r}")
        if r.get("type") == "enum" and not r.list("values"):
            r.fail("an enum needs values")
        context_keys[name] = ContextKey(
            name,
            r.get("type"),
            tuple(r.list("values")),
            r.get("unit", ""),
            r.str("description"),
        )

    scales = {}
    for name, spec in (top.get("scales") or {}).items():
        r = _Reader(f, f"scales.{name}", spec, ("levels", "source"))
        levels = []
        for j, lv in enumerate(r.list("levels")):
            lr = _Reader(f, f"scales.{name}.levels[{j}]", lv, ("key", "zh", "en"))
            levels.append(ScaleLevel(lr.str("key"), lr.str("zh"), lr.str("en")))
        scales[name] = Scale(name, tuple(levels), r.str("source"))

    furnace_table = None
    if top.get("furnace_table") is not None:
        from greenfoundry.scoring import table_c1

        furnace_table = table_c1.parse_table(top.get("furnace_table"), f, context_keys)

    std = Standard(
        id=top.str("id"),
        title_zh=top.str("title_zh"),
        title_en=top.str("title_en"),
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
    )

    def cite(r: _Reader, ids: list) -> tuple[str, ...]:
        for d in ids:
            if d not in decision_ids:
                r.fail(f"cites decision {d!r}, which is not in errata")
        return tuple(ids)

    groups = []
    seen_ids: set[str] = set()

    def new_id(r: _Reader, i: str) -> str:
        if not isinstance(i, str) or not _ID_RE.match(i):
            r.fail(f"id {i!r} must be lower-case letters, digits, '.', '_' or '-'")
        if i in seen_ids:
            r.fail(f"id {i!r} is used twice")
        seen_ids.add(i)
        return i

    for gi, g in enumerate(top.list("groups")):
        gr = _Reader(
            f,
            f"groups[{gi}]",
            g,
            ("id", "number", "name_zh", "name_en", "points", "source", "indicators"),
            ("points_printed", "decisions"),
        )
        gid = new_id(gr, gr.get("id"))
        gr.where = f"group {gid}"
        cite(gr, gr.list("decisions"))
        indicators = []
        for ii, ind in enumerate(gr.list("indicators")):
            iid_raw = ind.get("id") if isinstance(ind, dict) else None
            ir = _Reader(
                f,
                f"indicator {iid_raw}"
                if isinstance(iid_raw, str)
                else f"group {gid} indicator[{ii}]",
                ind,
                ("id", "name_zh", "name_en", "points", "source", "rows"),
                ("points_printed", "decisions", "scale_rows"),
            )
            iid = new_id(ir, ir.get("id"))
            ir.where = f"indicator {iid}"
            decisions = cite(ir, ir.list("decisions"))
            rows_raw = ir.list("rows")
            if not rows_raw:
                ir.fail("has no rows")
            rows = [_build_row(f, rr, iid, std, new_id, cite) for rr in rows_raw]
            printed_sum = sum(Fraction(str(r.points_printed)) for r in rows)
            in_force = Fraction(str(ir.num("points")))
            if printed_sum != in_force:
                scale_by = ir.get("scale_rows")
                if scale_by is None:
                    ir.fail(
                        f"rows sum to {_num(float(printed_sum))} points but the indicator has "
                        f"{_num(float(in_force))} in force; fix the points or cite the decision "
                        "that scales the rows (scale_rows)"
                    )
                cite(ir, [scale_by])
                k = in_force / printed_sum
                rows = [_rescale(r, k, scale_by) for r in rows]
            for r in rows:
                std.rows[r.id] = r
            indicator = Indicator(
                iid,
                gid,
                ir.str("name_zh"),
                ir.str("name_en"),
                ir.num("points"),
                dict(ir.get("points_printed") or {}),
                ir.str("source"),
                decisions,
                tuple(rows),
            )
            std.indicators[iid] = indicator
            indicators.append(indicator)
        isum = sum(i.points for i in indicators)
        if isum != gr.num("points"):
            gr.fail(f"indicators sum to {isum} points, the group has {gr.num('points')}")
        groups.append(
            Group(
                gid,
                int(gr.num("number")),
                gr.str("name_zh"),
                gr.str("name_en"),
                gr.num("points"),
                dict(gr.get("points_printed") or {}),
                gr.str("source"),
                tuple(indicators),
            )
        )
    std.groups = tuple(groups)

    gsum = sum(g.points for g in groups)
    if gsum != total:
        top.fail(f"groups sum to {gsum} points, total_points is {total}")
    if std.points_in_force() != total:
        top.fail(f"rows in force sum to {float(std.points_in_force())}, not {total}")
    want = std.structure
    if want.get("first_level") not in (None, len(groups)):
        top.fail(
            f"structure says {want['first_level']} first-level indicators, found {len(groups)}"
        )
    if want.get("second_level") not in (None, len(std.indicators)):
        top.fail(
            f"structure says {want['second_level']} second-level indicators, "
            f"found {len(std.indicators)}"
        )
    for d in errata:
        for a in d.affects:
            if a not in seen_ids and a not in ("li_policy", "furnace_table"):
                top.fail(f"decision {d.id} affects {a!r}, which is no group, indicator or row id")
    if furnace_table is not None:
        fr = furnace_table.row_id
        if fr not in std.rows or std.rows[fr].limits_from != "C.1":
            top.fail(f"furnace_table.row_id {fr!r} must be a row with limits_from: C.1")
        cite(top, list(furnace_table.decision_ids))
    return std


def _rescale(row: Row, k: Fraction, decision: str) -> Row:
    from dataclasses import replace

    return replace(
        row,
        points_exact=row.points_exact * k,
        status="corrected",
        decisions=tuple(dict.fromkeys((*row.decisions, decision))),
    )


def _build_row(f, raw, indicator_id, std: Standard, new_id, cite) -> Row:
    rid_raw = raw.get("id") if isinstance(raw, dict) else None
    r = _Reader(
        f,
        f"row {rid_raw}" if isinstance(rid_raw, str) else f"indicator {indicator_id} row",
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
        ),
    )
    rid = new_id(r, r.get("id"))
    r.where = f"row {rid}"
    if not rid.startswith(indicator_id + "."):
        r.fail(f"a row id starts with its indicator id {indicator_id!r}.")
    if r.get("kind") not in KINDS:
        r.fail(f"kind must be one of {', '.join(KINDS)}, got {r.get('kind')!r}")
    if r.get("value_type") not in VALUE_TYPES:
        r.fail(f"value_type must be one of {', '.join(VALUE_TYPES)}, got {r.get('value_type')!r}")
    decisions = cite(r, r.list("decisions"))
    context = tuple(r.list("context"))
    for k in context:
        if k not in std.context_keys:
            r.fail(f"context key {k!r} is not declared in context_keys")
    scale = None
    if r.get("value_type") == "level":
        if r.get("scale") not in std.scales:
            r.fail(f"a level row needs a scale from scales, got {r.get('scale')!r}")
        scale = std.scales[r.get("scale")]
    elif r.get("scale") is not None:
        r.fail("only a level row has a scale")
    conditions = []
    for j, c in enumerate(r.list("conditions")):
        cr = _Reader(f, f"row {rid} conditions[{j}]", c, ("key", "printed"))
        key = cr.str("key")
        if key not in context:
            r.fail(f"condition key {key!r} must be listed in the row's context")
        if std.context_keys[key].type != "bool":
            r.fail(f"condition key {key!r} must be a bool context key")
        conditions.append(Condition(key, cr.str("printed")))

    limits_from = r.get("limits_from")
    variants: list[Variant] = []
    if limits_from is not None:
        if limits_from != "C.1" or std.furnace_table is None:
            r.fail(f"limits_from {limits_from!r}: only 'C.1' with a furnace_table is known")
        if r.get("variants") or r.get("tiers"):
            r.fail("a row with limits_from has no tiers of its own")
    else:
        if (r.get("variants") is None) == (r.get("tiers") is None):
            r.fail("give either tiers (one context) or variants, not both or neither")
        raw_variants = r.list("variants") or [
            {"id": "all", "label": "all", "tiers": r.list("tiers")}
        ]
        vids = set()
        for j, v in enumerate(raw_variants):
            vr = _Reader(
                f, f"row {rid} variants[{j}]", v, ("id", "tiers"), ("label", "when", "source")
            )
            vid = vr.str("id")
            if vid in vids:
                vr.fail(f"variant id {vid!r} is used twice")
            vids.add(vid)
            vr.where = f"row {rid} variant {vid}"
            when = vr.get("when") or {}
            for key, want in when.items():
                if key not in context:
                    vr.fail(f"when key {key!r} must be listed in the row's context")
                spec = std.context_keys[key]
                if isinstance(want, dict):
                    if (
                        not want
                        or set(want) - set(BOUND_KEYS)
                        or spec.type not in ("int", "number")
                    ):
                        vr.fail(f"when {key}: bounds take {', '.join(BOUND_KEYS)} on a number")
                else:
                    spec.check(want, rid)
            tiers = _build_tiers(f, vr, rid, r.get("value_type"), scale, decisions, cite)
            variants.append(
                Variant(vid, vr.get("label", vid), dict(when), tiers, vr.get("source", ""))
            )
    pts = r.num("points")
    status = "interpreted" if decisions else "as_printed"
    return Row(
        id=rid,
        indicator_id=indicator_id,
        name_zh=r.str("name_zh"),
        name_en=r.str("name_en"),
        points_exact=Fraction(str(pts)),
        points_printed=pts,
        unit=r.str("unit"),
        kind=r.get("kind"),
        value_type=r.get("value_type"),
        source=r.str("source"),
        status=status,
        decisions=decisions,
        context=context,
        conditions=tuple(conditions),
        scale=scale,
        items=tuple(r.list("items")),
        variants=tuple(variants),
        limits_from=limits_from,
        note=r.get("note", ""),
        _standard=std,
    )


def _build_tiers(f, vr: _Reader, rid, value_type, scale, row_decisions, cite) -> tuple[Tier, ...]:
    tiers = []
    for k, t in enumerate(vr.list("tiers")):
        tr = _Reader(
            f, f"{vr.where} tier[{k}]", t, ("tier", "cmp", "value", "printed"), ("decision",)
        )
        n = tr.get("tier")
        if n != k + 1:
            tr.fail(f"tiers are numbered 1, 2, 3 in order; found tier {n!r} at position {k + 1}")
        cmp, value, printed = tr.get("cmp"), tr.get("value"), tr.str("printed")
        if cmp not in CMPS:
            tr.fail(f"comparator {cmp!r} is not one of {' '.join(CMPS)}")
        decision = tr.get("decision")
        if decision is not None:
            cite(tr, [decision])
        if value_type == "level":
            if cmp != "at_least":
                tr.fail("a level row compares with at_least")
            try:
                scale.rank(value)
            except ContextError as exc:
                tr.fail(str(exc))
        elif value_type == "boolean":
            if cmp != "=" or not isinstance(value, bool):
                tr.fail("a boolean row's tier is cmp '=' with value true or false")
        else:
            if cmp == "at_least" or isinstance(value, bool) or not isinstance(value, (int, float)):
                tr.fail(f"a {value_type} row compares a number with < ≤ > ≥ =, got {cmp} {value!r}")
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
        vr.fail("has no tiers")
    _check_order(vr, tiers, scale)
    return tuple(tiers)


def _check_order(vr: _Reader, tiers: list[Tier], scale: Scale | None) -> None:
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
