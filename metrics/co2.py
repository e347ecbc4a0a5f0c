"""CO₂ per tonne of pipe and of liquid iron (issue 7; T/CFA 0308011.5-2024 scores no CO₂ row,
the figure is for the plant's carbon accounting and the park's networked queries).

``kgCO₂/t = Σ_c E_c × f_c / tonnes`` over the energy carriers c (electricity in kWh, natural gas
in m³, coke in kg …) with the CO₂ factors of ``metrics.factors`` (grid electricity 0.5306
kgCO₂/kWh, the national average of 2023 data published 2025; coke 2.86 kgCO₂/kg; natural gas
2.162 kgCO₂/m³), each kept with its year and series in the result. A carrier without a CO₂
factor (bought-in oxygen: its emissions are its supplier's electricity) is not counted and is
named; a carrier without data makes the value no_data.

Public API: ``Co2PerTonne``, ``co2_per_t``.
"""

from __future__ import annotations

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

PER = ("pipe", "liquid_iron")


@dataclass(frozen=True)
class Co2PerTonne:
    value: float | None  # kgCO2/t of `per`
    per: str  # "pipe" (net weight of good pipe) or "liquid_iron"
    n: int
    coverage: float
    status: str
    lacking: tuple[str, ...] = ()
    kg_co2_by_carrier: Mapping[str, float] = field(default_factory=dict)
    tonnes: float | None = None
    factors: tuple[str, ...] = ()  # each factor with its series, year and source
    years: Mapping[str, int | None] = field(default_factory=dict)  # factor year by carrier
    series: Mapping[str, str] = field(default_factory=dict)

    def measured(self) -> Measured:
        return Measured(self.value, self.n, self.coverage, self.status, self.lacking)


def co2_per_t(
    carriers: Mapping[str, Measured | None],
    tonnes: Measured | None,
    *,
    per: str = "pipe",
    factors: Factors | None = None,
    made_on_site: Iterable[str] = (),
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> Co2PerTonne:
    """kgCO₂ per tonne of good pipe (``tonnes`` = Σ pipe_output_t, ``per="pipe"``) or of liquid
    iron (Σ tap_iron_t, ``per="liquid_iron"``) in one window, by the module's formula.
    ``made_on_site`` as in ``table5.plant_energy_per_t_pipe``: not counted again."""
    if per not in PER:
        raise ValueError(f"per {per!r}: allowed {', '.join(PER)}")
    min_coverage = check_min_coverage(min_coverage)
    factors = factors or load_factors()
    on_site = set(made_on_site)
    n = sum(m.n for m in carriers.values() if m is not None) + (tonnes.n if tonnes else 0)
    lacking: list[str] = [
        f"{c} is made on site: not counted again" for c in carriers if c in on_site
    ]
    missing: list[str] = []
    kg: dict[str, float] = {}
    used, years, series = [], {}, {}
    ins: list[Measured] = []
    for c, m in carriers.items():
        if c in on_site:
            continue
        f = factors.co2_of(c)
        if f is None:
            lacking.append(f"no CO2 factor for {c}: not counted")
            continue
        if m is not None and m.status == BAD_INPUT:
            return Co2PerTonne(None, per, n, 0.0, BAD_INPUT, tuple(f"{c}: {x}" for x in m.lacking))
        if m is None or not m.usable:
            missing.append(f"no {c} data: the CO2 would be too low")
            continue
        kg[c] = m.value * f.value
        used.append(f.describe())
        years[c], series[c] = f.year, f.series
        ins.append(m)
    t = tonnes.value if tonnes is not None and tonnes.usable else None
    what = "good pipe (pipe_output_t)" if per == "pipe" else "liquid iron (tap_iron_t)"
    if t is None:
        missing.append(f"no {what} in the window")
    elif t <= 0:
        missing.append(f"the window's {what} weighs 0 t")
    if not kg and not missing:
        missing.append("no energy carrier with a CO2 factor")
    if missing:
        return Co2PerTonne(None, per, n, 0.0, NO_DATA, (*missing, *lacking), kg, t, tuple(used),
                           years, series)  # fmt: skip
    ins.append(tonnes)
    coverage = min(m.coverage for m in ins)
    low = coverage < min_coverage or any(m.status == LOW_COVERAGE for m in ins)
    return Co2PerTonne(
        sum(kg.values()) / t, per, n, coverage, LOW_COVERAGE if low else OK, tuple(lacking), kg,
        t, tuple(used), years, series,
    )  # fmt: skip
