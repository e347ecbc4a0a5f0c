"""Table 5 of T/CFA 0308011.5-2024 (能源资源有效利用指标) from measured data: plant energy per
tonne of good pipe, the power factor, sand and metal reuse, waste-heat recovery. The water-reuse
rows are in ``metrics.water``.

Every function takes window values already read by the kind rules (``Measured``: a counter's
consumption from ``counters.counter_consumption``, an event sum from ``events.event_sums``) and
returns a ``Measured`` (value, n, coverage, status, lacking; ``measured`` module) or, for the
energy per tonne, ``EnergyPerTonne`` with the breakdown by carrier. A ratio of two inputs is
no_data when either has no value or the denominator is 0, bad_input when either was refused,
low_coverage when either is; its coverage is the lower of the two. A value no plant can have
(a rate above its ceiling, energy per tonne above 1000 kgce/t) is refused (bad_input), never
scored.

Public API: ``EnergyPerTonne``, ``ratio``, ``plant_energy_per_t_pipe``, ``power_factor``,
``sand_reuse_rate_pct``, ``metal_returns_reuse_rate_pct``, ``waste_heat_recovery_pct``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from greenfoundry.metrics.factors import Factors, load_factors
from greenfoundry.metrics.measured import (
    BAD_INPUT,
    DEFAULT_MIN_COVERAGE,
    LOW_COVERAGE,
    NO_DATA,
    OK,
    Measured,
    check_min_coverage,
)

# kgce per tonne of pipe no pipe plant reaches (Table 5's loosest tier is 350 kgce/t).
MAX_KGCE_PER_T = 1000.0


def _status(inputs: Iterable[Measured], coverage: float, min_coverage: float) -> str:
    low = coverage < min_coverage or any(m.status == LOW_COVERAGE for m in inputs)
    return LOW_COVERAGE if low else OK


def ratio(
    num: Measured | None,
    den: Measured | None,
    *,
    scale: float = 1.0,
    num_name: str = "numerator",
    den_name: str = "denominator",
    high: float | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> Measured:
    """``scale × num / den`` with what it stood on (the module's rules). ``high``: the largest
    value any plant can have (a rate of 100 %); above it the result is refused (bad_input)."""
    min_coverage = check_min_coverage(min_coverage)
    parts = [m for m in (num, den) if m is not None]
    n = sum(m.n for m in parts)
    lacking: list[str] = []
    for m, name in ((num, num_name), (den, den_name)):
        if m is not None and m.status == BAD_INPUT:
            why = tuple(f"{name}: {x}" for x in m.lacking) or (f"{name}: refused",)
            return Measured(None, n, 0.0, BAD_INPUT, why)
    for m, name in ((num, num_name), (den, den_name)):
        if m is None or not m.usable:
            lacking.append(f"no {name} in the window")
            if m is not None:
                lacking.extend(f"{name}: {x}" for x in m.lacking)
    if lacking:
        return Measured(None, n, 0.0, NO_DATA, tuple(lacking))
    assert num is not None and den is not None and num.value is not None and den.value is not None
    if den.value <= 0:
        return Measured(
            None, n, 0.0, NO_DATA, (f"{den_name} is {den.value:g}: the ratio is undefined",)
        )
    value = scale * num.value / den.value
    coverage = min(num.coverage, den.coverage)
    if value < 0 or (high is not None and value > high):
        return Measured(
            None, n, coverage, BAD_INPUT,
            (f"{value:g} is not possible (expected 0 to {high:g}): {num_name} {num.value:g}, "
             f"{den_name} {den.value:g}; check the meters",),
        )  # fmt: skip
    status = _status((num, den), coverage, min_coverage)
    if status == LOW_COVERAGE:
        lacking.extend(f"{num_name}: {x}" for x in num.lacking)
        lacking.extend(f"{den_name}: {x}" for x in den.lacking)
    return Measured(value, n, coverage, status, tuple(lacking))


# ---------------------------------------------------------------------------- energy per tonne


@dataclass(frozen=True)
class EnergyPerTonne:
    """Plant energy per tonne of good pipe (kgce/t, net weight) in one window."""

    value: float | None  # kgce/t
    n: int
    coverage: float
    status: str
    lacking: tuple[str, ...] = ()
    kgce_by_carrier: Mapping[str, float] = field(default_factory=dict)
    kgce: float | None = None  # Σ over the carriers counted
    pipe_t: float | None = None
    excluded: tuple[str, ...] = ()  # utilities made on site, not counted again
    factors: tuple[str, ...] = ()  # each factor used, with its source (Factor.describe)

    def measured(self) -> Measured:
        return Measured(self.value, self.n, self.coverage, self.status, self.lacking)


def plant_energy_per_t_pipe(
    carriers: Mapping[str, Measured | None],
    pipe_t: Measured | None,
    *,
    factors: Factors | None = None,
    made_on_site: Iterable[str] = (),
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> EnergyPerTonne:
    """Plant energy per tonne of good pipe, net weight, kgce/t (T/CFA 0308011.5-2024, Table 5,
    row 吨铸铁管综合能耗; ductile pipe "from the receipt of iron, mixer included, net pipe weight").

    ``kgce/t = Σ_c E_c × k_c / Σ pipe_output_t`` over the energy carriers c of the window:
    ``carriers`` maps a carrier of ``factors.standard_coal`` (electricity, natural_gas, coke,
    oxygen, compressed_air, diesel, fuel_oil) to its consumption in the factor's unit
    (electricity in kWh: the site's incoming meter ``site_energy_kwh``, which includes the
    furnaces; natural gas and oxygen in m³, coke in kg), ``k_c`` the GB/T 2589 factor
    (electricity at its equivalent value, 0.1229 kgce/kWh, as the note under Table 5 says).
    ``pipe_t``: Σ ``pipe_output_t`` (good pipe, net weight).

    "Do not count a utility made on site twice": a carrier in ``made_on_site`` (oxygen or
    compressed air from the plant's own plant, whose electricity is already on the site
    meter) is left out and named in ``excluded``. A carrier without a factor is refused
    (bad_input); a carrier without data makes the value no_data (the sum would be too low),
    never a partial sum.
    """
    min_coverage = check_min_coverage(min_coverage)
    factors = factors or load_factors()
    on_site = set(made_on_site)
    n = sum(m.n for m in carriers.values() if m is not None) + (pipe_t.n if pipe_t else 0)
    kgce: dict[str, float] = {}
    used, lacking, missing = [], [], []
    excluded = tuple(sorted(c for c in carriers if c in on_site))
    for c in excluded:
        lacking.append(
            f"{c} is made on site: its energy is in the site's electricity, not counted again"
        )
    counted = {c: m for c, m in carriers.items() if c not in on_site}
    unknown = [c for c in counted if factors.kgce(c) is None]
    if unknown:
        return EnergyPerTonne(
            None, n, 0.0, BAD_INPUT,
            (f"no standard-coal factor for {', '.join(unknown)}; known: "
             f"{', '.join(sorted(factors.standard_coal))}",),
        )  # fmt: skip
    if not counted:
        return EnergyPerTonne(
            None, n, 0.0, NO_DATA, ("no energy carriers", *lacking), excluded=excluded
        )
    for c, m in counted.items():
        if m is not None and m.status == BAD_INPUT:
            return EnergyPerTonne(None, n, 0.0, BAD_INPUT, tuple(f"{c}: {x}" for x in m.lacking))
        if m is None or not m.usable:
            missing.append(f"no {c} data: the plant's energy would be too low")
            if m is not None:
                lacking.extend(f"{c}: {x}" for x in m.lacking)
            continue
        f = factors.kgce(c)
        kgce[c] = m.value * f.value
        used.append(f.describe())
    tonnes = pipe_t.value if pipe_t is not None and pipe_t.usable else None
    if tonnes is None:
        missing.append("no good pipe output (pipe_output_t) in the window")
    elif tonnes <= 0:
        missing.append("the good pipe of the window weighs 0 t: energy per tonne is undefined")
    if missing:
        return EnergyPerTonne(
            None, n, 0.0, NO_DATA, (*missing, *lacking), kgce, sum(kgce.values()) if kgce else None,
            tonnes, excluded, tuple(used),
        )  # fmt: skip
    total = sum(kgce.values())
    value = total / tonnes
    ins = [m for m in counted.values() if m is not None] + [pipe_t]
    coverage = min(m.coverage for m in ins)
    if not 0 < value <= MAX_KGCE_PER_T:
        return EnergyPerTonne(
            None, n, coverage, BAD_INPUT,
            (f"{value:g} kgce/t is no pipe plant's (expected above 0 and at most "
             f"{MAX_KGCE_PER_T:g}); check the meters and their units",),
            kgce, total, tonnes, excluded, tuple(used),
        )  # fmt: skip
    status = _status(ins, coverage, min_coverage)
    if status == LOW_COVERAGE:
        for c, m in counted.items():
            lacking.extend(f"{c}: {x}" for x in m.lacking)
        lacking.extend(f"pipe: {x}" for x in pipe_t.lacking)
    return EnergyPerTonne(
        value, n, coverage, status, tuple(lacking), kgce, total, tonnes, excluded, tuple(used)
    )


# ---------------------------------------------------------------------------- power factor


def power_factor(
    active_kwh: Measured | None,
    reactive_kvarh: Measured | None,
    *,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> Measured:
    """The window's power factor, ``PF = kWh / sqrt(kWh² + kvarh²)`` from the site's active and
    reactive energy (``site_energy_kwh``, ``site_reactive_kvarh`` consumption) (T/CFA
    0308011.5-2024, Table 5, row 用电功率因数, tiers 0.99～0.95 / 0.94～0.92 / 0.91～0.90). The
    energy-weighted mean power factor of the window: the one a utility bills, not a mean of
    instantaneous readings."""
    min_coverage = check_min_coverage(min_coverage)
    lacking: list[str] = []
    for m, name in ((active_kwh, "active energy"), (reactive_kvarh, "reactive energy")):
        if m is not None and m.status == BAD_INPUT:
            return Measured(None, m.n, 0.0, BAD_INPUT, tuple(f"{name}: {x}" for x in m.lacking))
        if m is None or not m.usable:
            lacking.append(f"no {name} in the window")
    n = sum(m.n for m in (active_kwh, reactive_kvarh) if m is not None)
    if lacking:
        return Measured(None, n, 0.0, NO_DATA, tuple(lacking))
    p, q = active_kwh.value, reactive_kvarh.value
    if p < 0 or q < 0:
        return Measured(None, n, 0.0, BAD_INPUT, (f"negative energy ({p:g} kWh, {q:g} kvarh)",))
    if p == 0:
        return Measured(
            None, n, 0.0, NO_DATA, ("no active energy used: the power factor is undefined",)
        )
    coverage = min(active_kwh.coverage, reactive_kvarh.coverage)
    return Measured(
        p / math.hypot(p, q), n, coverage,
        _status((active_kwh, reactive_kvarh), coverage, min_coverage),
    )  # fmt: skip


# ---------------------------------------------------------------------------- reuse rows


def sand_reuse_rate_pct(reclaimed_t: Measured | None, used_t: Measured | None, **kw) -> Measured:
    """Resin self-hardening sand reuse rate, % = Σ sand_reclaimed_t / Σ sand_used_t × 100
    (Table 5, row 旧砂回用率, 树脂自硬砂, tiers ≥95 / ≥92 / ≥90). The standard gives no
    formula; we read 旧砂回用率 as the reclaimed share of the sand put through the mixers, the
    usual foundry definition. At most 100 %."""
    return ratio(reclaimed_t, used_t, scale=100.0, num_name="sand_reclaimed_t",
                 den_name="sand_used_t", high=100.0, **kw)  # fmt: skip


def metal_returns_reuse_rate_pct(
    charged_t: Measured | None, arising_t: Measured | None, **kw
) -> Measured:
    """Metal returns used as return charge, % = Σ returns_charged_t / Σ returns_arising_t ×
    100 (Table 5, row 废铸件、浇冒口、切屑等金属废料作为回炉料使用, tiers ≥100 / ≥95 / ≥90). The
    standard gives no formula; a window may charge returns that arose before it, so values a
    little above 100 % are real; above 200 % is refused (a meter or unit error)."""
    return ratio(charged_t, arising_t, scale=100.0, num_name="returns_charged_t",
                 den_name="returns_arising_t", high=200.0, **kw)  # fmt: skip


WASTE_HEAT_NO_SIGNAL = (
    "no signal: waste-heat recovery (Table 5, 工业炉窑余热余能回收利用率) needs the recoverable "
    "heat of the furnaces' flue gas and cooling water, which no plant meter measures; it is an "
    "energy-balance figure an auditor declares (evidence file), not a reading"
)


def waste_heat_recovery_pct() -> Measured:
    """Table 5, row 工业炉窑余热余能回收利用率 (tiers ≥60 / ≥40 / ≥20): always no_data from readings,
    with why (``WASTE_HEAT_NO_SIGNAL``): declare it in the evidence file."""
    return Measured(None, 0, 0.0, NO_DATA, (WASTE_HEAT_NO_SIGNAL,))
