"""Table C.1 of T/CFA 0308011.5-2024 from measured data: energy per tonne of liquid iron per
furnace and window, the site's annual mean air temperature (note 4), and one plant value.

The limits, their corrections (notes 1-4), the tier and the row's unit come from
``greenfoundry.scoring.table_c1`` (``table_c1_limits``, ``tier_for``): this module keeps none of
the table's numbers. What it adds is reading the data:

* **Energy per tonne** (``furnace_energy_per_t``) = the furnace's energy in the window / the
  tonnes of liquid iron it tapped in the window (Σ ``tap_iron_t``): kWh/t for an induction
  furnace (``furnace_energy_kwh`` consumption), kgce/t for a cupola (its fuels converted to
  standard coal by the caller; an electric energy given to a kgce/t row is converted at the
  row's ``kwh_to_kgce``, GB/T 2589 equivalent value). The tapping temperature is the window's
  tonnage-weighted mean (``events.tonnage_weighted_tap_temp_c``); without one, notes 1/2 are
  not applied and the result says so.
* **Site mean air temperature** (``annual_mean_air_temp_c``, note 4: "企业所在地最近自然年的年平均
  温度"): the mean of ``ambient_temp_c`` over the latest complete calendar year in the plant's
  zone, as the mean of its twelve monthly means weighted by each month's length (the
  time-weighted mean when no minute is missing; a missing stretch does not shift the seasons'
  weights). The readings COVER the year when at least ``min_coverage`` (default 0.9) of the
  year's minutes are valid AND every month has at least ``min_month_coverage`` (default 0.8).
  Otherwise the plant config's ``annual_mean_air_temp_c`` is used, and the result says which
  source was used and why.
* **Plant value** (``plant_energy_per_t``): see its docstring; the decision is to be recorded
  with the standard's others.

Public API: ``FurnaceFacts``, ``AirTemp``, ``FurnaceC1``, ``PlantC1``,
``annual_mean_air_temp_c``, ``furnace_energy_per_t``, ``plant_energy_per_t``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from greenfoundry.errors import InputError, NotCoveredError
from greenfoundry.metrics import windows as win
from greenfoundry.metrics.instantaneous import time_weighted_means
from greenfoundry.metrics.measured import (
    BAD_INPUT,
    DEFAULT_MIN_COVERAGE,
    LOW_COVERAGE,
    NO_DATA,
    NOT_COVERED,
    OK,
    Measured,
    check_min_coverage,
)
from greenfoundry.scoring.table_c1 import C1Limits, FurnaceTable, table_c1_limits, tier_for

DEFAULT_MIN_MONTH_COVERAGE = 0.8
# Id under which the plant-value decision is to be recorded in the standard's file.
PLANT_DECISION_ID = "D-c1-plant"


@dataclass(frozen=True)
class FurnaceFacts:
    """What Table C.1 needs to know of one furnace (``greenfoundry.plant.Furnace``)."""

    id: str
    kind: str  # glossary.FURNACE_KINDS
    capacity: float  # t/h for a cupola, t for an induction furnace
    product: str  # glossary.PRODUCTS
    dn: int | None = None  # picks the specified tapping temperature of ductile pipe (note 2)

    @classmethod
    def from_plant(cls, furnace: Any, product: str, dn: int | None = None) -> FurnaceFacts:
        """From a plant config furnace (``greenfoundry.plant.Furnace``) and the plant's product
        (``plant.product``: a furnace's iron is the plant's product). ``dn`` defaults to the
        lower end of the furnace's DN range; a range that spans two of note 2's DN bands is for
        the caller to split."""
        return cls(
            furnace.id,
            furnace.kind,
            float(furnace.capacity),
            product,
            dn if dn is not None else getattr(furnace, "dn_min", None),
        )


@dataclass(frozen=True)
class AirTemp:
    """The site's mean air temperature of one calendar year (Table C.1 note 4)."""

    value_c: float | None  # the value to use; None when neither source has one
    source: str | None  # "readings", "config", or None
    year: str  # the calendar year's label
    readings_value_c: float | None  # the readings' mean, even when it was not used
    n: int
    coverage: float  # valid minutes / minutes of the year
    month_coverage: tuple[float, ...]
    status: str
    lacking: tuple[str, ...] = ()


@dataclass(frozen=True)
class FurnaceC1:
    """Table C.1 for one furnace and window."""

    furnace_id: str
    furnace_kind: str
    value: float | None  # energy per tonne in ``unit``
    unit: str | None  # "kWh/t" or "kgce/t" (the row's unit)
    energy: float | None  # in ``energy_unit``
    energy_unit: str | None  # "kWh" or "kgce"
    iron_t: float | None
    tap_temp_c: float | None
    annual_mean_air_temp_c: float | None
    air_temp_source: str | None
    limits: C1Limits | None
    tier: int | None
    li: float | None
    n: int
    coverage: float
    status: str
    lacking: tuple[str, ...] = ()

    def as_row(self) -> dict[str, Any]:
        """Flat fields for a rollup point (limits by tier, corrected)."""
        lim = self.limits.limits if self.limits else (None, None, None)
        return {
            "furnace": self.furnace_id,
            "value": self.value,
            "unit": self.unit,
            "energy": self.energy,
            "iron_t": self.iron_t,
            "tap_temp_c": self.tap_temp_c,
            "annual_mean_air_temp_c": self.annual_mean_air_temp_c,
            "air_temp_source": self.air_temp_source,
            "limit_tier_1": lim[0],
            "limit_tier_2": lim[1],
            "limit_tier_3": lim[2],
            "tier": self.tier,
            "li": self.li,
            "n": self.n,
            "coverage": self.coverage,
            "status": self.status,
            "lacking": self.lacking,
        }


@dataclass(frozen=True)
class PlantC1:
    """One Table C.1 value for a plant with several furnaces (``plant_energy_per_t``)."""

    value: float | None
    unit: str | None
    energy: float | None
    iron_t: float | None
    limits: tuple[float, ...] | None  # tonnage-weighted corrected limits, tier 1..3
    comparators: tuple[str, ...] | None
    tier: int | None
    li: float | None
    furnaces: tuple[FurnaceC1, ...]
    included: tuple[str, ...]  # furnace ids in the value
    n: int
    coverage: float
    status: str
    lacking: tuple[str, ...] = ()
    decision: str = PLANT_DECISION_ID


# ---------------------------------------------------------------------------- note 4


def annual_mean_air_temp_c(
    ambient_temp_c: pd.Series,
    year: int | str | win.Window,
    tz: str,
    *,
    config_value_c: float | None = None,
    hold_minutes: int = 0,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    min_month_coverage: float = DEFAULT_MIN_MONTH_COVERAGE,
) -> AirTemp:
    """The site's mean air temperature of a calendar year (T/CFA 0308011.5-2024, Table C.1
    note 4), from ``ambient_temp_c`` readings when they cover the year (module docstring),
    else ``config_value_c`` (the plant config's ``plant.site.annual_mean_air_temp_c``).

    ``year``: the year (``windows.latest_complete("year", now, tz)`` is the latest complete one)
    as an int, a label or a year Window. ``hold_minutes``: a reading stands for that many
    following minutes (a station reporting every 10 minutes: 9), see ``instantaneous``.
    """
    min_coverage = check_min_coverage(min_coverage)
    min_month_coverage = check_min_coverage(min_month_coverage)
    y = year if isinstance(year, win.Window) else win.calendar_window(str(year), tz)
    if y.kind != "year":
        raise ValueError(f"annual_mean_air_temp_c needs a calendar year, got a {y.kind}")
    months = win.windows_covering("month", y.start, y.end, tz)
    m = time_weighted_means(
        ambient_temp_c,
        [*months, y],
        name="ambient_temp_c",
        hold_minutes=hold_minutes,
        min_coverage=min_coverage,
    )
    mf, yf = m.iloc[: len(months)], m.iloc[len(months)]
    lacking: list[str] = []
    if yf["status"] == BAD_INPUT:
        lacking.extend(yf["lacking"])
        readings_value = None
        covered = False
        n, coverage, month_cov = 0, 0.0, tuple(0.0 for _ in months)
    else:
        n, coverage = int(yf["n"]), float(yf["coverage"])
        month_cov = tuple(float(c) for c in mf["coverage"])
        weights = mf["minutes"].astype(float)
        usable = mf["value"].notna()
        readings_value = (
            float((mf["value"][usable] * weights[usable]).sum() / weights[usable].sum())
            if usable.all()
            else None
        )
        short = [
            lab for lab, c in zip(mf["label"], month_cov, strict=True) if c < min_month_coverage
        ]
        covered = coverage >= min_coverage and not short and readings_value is not None
        if coverage < min_coverage:
            lacking.append(
                f"ambient_temp_c readings cover {coverage:.1%} of {y.label}; the year counts as "
                f"covered from {min_coverage:.0%}"
            )
        if short:
            lacking.append(f"months below {min_month_coverage:.0%} coverage: {', '.join(short)}")
    if covered:
        return AirTemp(
            readings_value,
            "readings",
            y.label,
            readings_value,
            n,
            coverage,
            month_cov,
            OK,
            tuple(lacking),
        )
    if config_value_c is not None:
        lacking.append(f"the plant config's {config_value_c:g} °C is used instead")
        return AirTemp(
            float(config_value_c),
            "config",
            y.label,
            readings_value,
            n,
            coverage,
            month_cov,
            OK,
            tuple(lacking),
        )
    lacking.append("no annual_mean_air_temp_c in the plant config to fall back on")
    status = BAD_INPUT if yf["status"] == BAD_INPUT else (NO_DATA if n == 0 else LOW_COVERAGE)
    return AirTemp(
        None, None, y.label, readings_value, n, coverage, month_cov, status, tuple(lacking)
    )


# ---------------------------------------------------------------------------- per furnace


def _li(tier: int | None, li_floors: Mapping[Any, float] | None) -> tuple[float | None, str | None]:
    """Li of a met tier by the floor policy (clause 5.2.2): the caller's floors, or the
    standard file's ``li_policy``."""
    if li_floors is not None:
        key = tier if tier is not None else "below"
        return (float(li_floors[key]) if key in li_floors else 0.0), None
    try:
        from greenfoundry.scoring.standard import load_standard

        return float(load_standard().li_policy.li_floor(tier)), None
    except (ImportError, AttributeError, InputError, OSError) as exc:  # pragma: no cover
        return None, f"Li not computed: the standard's li_policy could not be read ({exc})"


def _usable(m: Measured | None) -> bool:
    return m is not None and m.usable


def furnace_energy_per_t(
    furnace: FurnaceFacts,
    *,
    iron_t: Measured | None,
    energy_kwh: Measured | None = None,
    energy_kgce: Measured | None = None,
    tap_temp_c: Measured | None = None,
    air_temp: AirTemp | float | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    li_floors: Mapping[Any, float] | None = None,
    c1_options: Mapping[str, str] | None = None,
    c1_table: FurnaceTable | None = None,
) -> FurnaceC1:
    """Energy per tonne of liquid iron of one furnace in one window, against its Table C.1 row
    (T/CFA 0308011.5-2024, Table C.1 and notes 1-4, via ``scoring.table_c1.table_c1_limits``).

    ``iron_t``: the window's Σ tap_iron_t (``events.event_sums``); ``energy_kwh`` (induction,
    ``counters.counter_consumption`` of furnace_energy_kwh) or ``energy_kgce`` (cupola);
    ``tap_temp_c``: the tonnage-weighted tapping temperature; ``air_temp``: note 4's site mean
    (an ``AirTemp`` or °C). ``li_floors``: {1: .9, 2: .75, 3: .6, "below": 0} or None for the
    standard file's policy. ``c1_table``: the parsed Table C.1 (None: the default standard's,
    ``load_standard().furnace_table``). A missing input gives a status (no_data: "no tap
    events", "no furnace energy"), never a crash: ``value`` is None then, and the limits are
    still given when the furnace has a row.
    """
    min_coverage = check_min_coverage(min_coverage)
    lacking: list[str] = []
    air_c = air_temp.value_c if isinstance(air_temp, AirTemp) else air_temp
    air_src = (
        air_temp.source
        if isinstance(air_temp, AirTemp)
        else ("given" if air_temp is not None else None)
    )
    if isinstance(air_temp, AirTemp):
        lacking.extend(
            f"air temperature: {x}" for x in air_temp.lacking if air_temp.source != "readings"
        )
    if air_c is None:
        lacking.append(
            "no site mean air temperature: note 4 is not applied (its reference temperature is assumed)"
        )
    temp = tap_temp_c.value if _usable(tap_temp_c) else None
    if tap_temp_c is not None and tap_temp_c.lacking:
        lacking.extend(f"tapping temperature: {x}" for x in tap_temp_c.lacking)
    if temp is None:
        lacking.append(
            "no tapping temperature: its note is not applied (the specified one is assumed)"
        )

    def out(status: str, why: tuple[str, ...] = (), **values: Any) -> FurnaceC1:
        fields: dict[str, Any] = {
            **dict.fromkeys(("value", "unit", "energy", "energy_unit", "iron_t", "limits")),
            **dict.fromkeys(("tier", "li")),
            "n": 0,
            "coverage": 0.0,
        }
        fields.update(values)
        return FurnaceC1(
            furnace_id=furnace.id,
            furnace_kind=furnace.kind,
            tap_temp_c=temp,
            annual_mean_air_temp_c=air_c,
            air_temp_source=air_src,
            status=status,
            lacking=(*why, *lacking),
            **fields,
        )

    try:
        limits = table_c1_limits(
            furnace_kind=furnace.kind,
            furnace_capacity=furnace.capacity,
            product=furnace.product,
            dn=furnace.dn,
            tap_temp_c=temp,
            annual_mean_air_temp_c=air_c,
            table=c1_table,
            options=c1_options,
        )
    except NotCoveredError as exc:
        return out(NOT_COVERED, (str(exc),))
    except InputError as exc:
        return out(BAD_INPUT, (str(exc),))

    unit = limits.unit
    energy, energy_unit, e_meas = None, None, None
    if unit == "kWh/t":
        e_meas, energy_unit = energy_kwh, "kWh"
        if energy_kwh is None and energy_kgce is not None:
            lacking.append("a kWh/t row needs the furnace's energy in kWh, got kgce")
        if _usable(energy_kwh):
            energy = energy_kwh.value
    else:
        energy_unit = "kgce"
        if _usable(energy_kgce):
            e_meas, energy = energy_kgce, energy_kgce.value
        elif _usable(energy_kwh):
            e_meas, energy = energy_kwh, energy_kwh.value * limits.kwh_to_kgce
            lacking.append(f"electric energy converted at {limits.kwh_to_kgce:g} kgce/kWh")
        else:
            e_meas = energy_kgce or energy_kwh
    tonnes = iron_t.value if _usable(iron_t) else None
    n = (e_meas.n if e_meas else 0) + (iron_t.n if iron_t else 0)

    missing = []
    if energy is None:
        missing.append(f"no furnace energy ({energy_unit})")
        if e_meas is not None:
            lacking.extend(f"energy: {x}" for x in e_meas.lacking)
    if tonnes is None:
        missing.append("no tap events (tap_iron_t)")
    elif tonnes <= 0:
        missing.append("the taps weigh 0 t: energy per tonne is undefined")
    if missing:
        if tonnes is None and iron_t is not None:
            lacking.extend(f"taps: {x}" for x in iron_t.lacking)
        return out(
            NO_DATA,
            tuple(missing),
            unit=unit,
            energy=energy,
            energy_unit=energy_unit,
            iron_t=tonnes,
            limits=limits,
            n=n,
        )

    value = energy / tonnes
    coverage = min(e_meas.coverage, iron_t.coverage)
    low = coverage < min_coverage or LOW_COVERAGE in (e_meas.status, iron_t.status)
    if low:
        lacking.extend(f"energy: {x}" for x in e_meas.lacking)
        lacking.extend(f"taps: {x}" for x in iron_t.lacking)
    tier = tier_for(limits, value)
    li, li_note = _li(tier, li_floors)
    if li_note:
        lacking.append(li_note)
    return out(
        LOW_COVERAGE if low else OK,
        value=value,
        unit=unit,
        energy=energy,
        energy_unit=energy_unit,
        iron_t=tonnes,
        limits=limits,
        tier=tier,
        li=li,
        n=n,
        coverage=coverage,
    )


# ---------------------------------------------------------------------------- the plant


def plant_energy_per_t(
    furnaces: Sequence[FurnaceC1],
    *,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    li_floors: Mapping[Any, float] | None = None,
) -> PlantC1:
    """One Table C.1 value for a plant with several furnaces, in one window.

    DECISION (to be recorded with the standard's others, as ``D-c1-plant``): the plant value is
    Σ energy / Σ tonnes over its furnaces, against the tonnage-weighted corrected limits
    ``L_k = Σ t_f · L_f,k / Σ t_f`` for each tier k, read with the rows' printed comparators.
    Where the furnaces share a row and a specified tapping temperature, these limits are the
    row's limits with note 2 applied to the tonnage-weighted temperature of all taps. Table
    C.1 itself gives one row per furnace and says nothing of plants with several.

    How furnaces count: a furnace with energy but no taps adds its energy and no tonnes (it
    held or heated iron the others tapped) and has no weight in the limits. A furnace without
    energy data is left out with its tonnes (so the ratio is not flattered) and a furnace no
    row covers (not_covered) is left out whole; both are named in ``lacking`` and lower the
    coverage, which is the tonnage-weighted coverage of the furnaces in the value over all
    the tonnes tapped.

    The decision is for furnaces that melt in parallel. Furnaces in series (a duplex line: a
    cupola melts, an induction furnace superheats the same iron) tap the same tonnes twice; a
    cupola (kgce/t) and an induction furnace (kWh/t) together are therefore refused
    (bad_input), each to be scored on its own row.
    """
    min_coverage = check_min_coverage(min_coverage)
    furnaces = tuple(furnaces)
    lacking: list[str] = []
    inc = []
    for f in furnaces:
        if f.status == NOT_COVERED:
            lacking.append(f"furnace {f.furnace_id}: not covered by Table C.1, left out")
        elif f.limits is None:
            lacking.append(f"furnace {f.furnace_id}: {f.status}, left out")
        elif f.energy is None:
            lacking.append(f"furnace {f.furnace_id}: no energy data, left out with its taps")
        else:
            inc.append(f)
    all_t = sum(f.iron_t or 0.0 for f in furnaces)
    n = sum(f.n for f in furnaces)

    def result(status: str, why: tuple[str, ...], coverage: float = 0.0, **values: Any) -> PlantC1:
        fields = dict.fromkeys(
            ("value", "unit", "energy", "iron_t", "limits", "comparators", "tier", "li")
        )
        fields.update(values)
        return PlantC1(
            **fields,
            furnaces=furnaces,
            included=tuple(f.furnace_id for f in inc),
            n=n,
            coverage=coverage,
            status=status,
            lacking=(*why, *lacking),
        )

    def empty(status: str, why: str) -> PlantC1:
        return result(status, (why,))

    if not furnaces:
        return empty(NO_DATA, "no furnaces")
    if not inc:
        return empty(NO_DATA, "no furnace with both energy data and a Table C.1 row")
    units = {f.limits.unit for f in inc}
    if len(units) != 1:
        return empty(
            BAD_INPUT,
            "furnaces on kWh/t and kgce/t rows: a cupola and an induction furnace usually work in "
            "series (duplex), tapping the same iron twice, so Σ tonnes would count it twice; "
            "score each furnace on its own row",
        )
    unit = units.pop()
    energy = sum(f.energy for f in inc)
    tonnes = sum(f.iron_t or 0.0 for f in inc)
    if tonnes <= 0:
        return empty(NO_DATA, "no tap events in any furnace with energy data")
    comparators = {f.limits.comparators for f in inc}
    if len(comparators) != 1:
        return empty(BAD_INPUT, f"the furnaces' rows print different comparators: {comparators}")
    weighted = [f for f in inc if (f.iron_t or 0) > 0]
    limits = tuple(sum(f.iron_t * f.limits.limits[k] for f in weighted) / tonnes for k in range(3))
    value = energy / tonnes
    # Evaluate with the scorer's own tier logic: the first furnace's row with the plant limits.
    first = weighted[0].limits
    plant_limits = dataclasses.replace(
        first,
        limits=limits,
        tiers=tuple(
            dataclasses.replace(t, value=v) for t, v in zip(first.tiers, limits, strict=True)
        ),
    )
    tier = tier_for(plant_limits, value)
    li, li_note = _li(tier, li_floors)
    if li_note:
        lacking.append(li_note)
    coverage = sum((f.iron_t or 0.0) * f.coverage for f in weighted) / all_t if all_t else 0.0
    low = coverage < min_coverage or any(f.status == LOW_COVERAGE for f in inc)
    if any(f.status == LOW_COVERAGE for f in inc):
        lacking.extend(
            f"furnace {f.furnace_id}: low coverage" for f in inc if f.status == LOW_COVERAGE
        )
    for f in inc:
        if not (f.iron_t or 0) > 0:
            lacking.append(f"furnace {f.furnace_id}: energy without taps, counted in Σ energy")
    return result(
        LOW_COVERAGE if low else OK,
        (),
        value=value,
        unit=unit,
        energy=energy,
        iron_t=tonnes,
        limits=limits,
        comparators=next(iter(comparators)),
        tier=tier,
        li=li,
        coverage=coverage,
    )
