"""Conversion factors: energy carriers to standard coal (GB/T 2589) and to CO₂, as overridable
defaults with their source (``factors.yaml`` beside this file).

T/CFA 0308011.5-2024 counts energy in kilograms of standard coal (kgce) and, in the note under
Table 5, takes electricity at its equivalent value (当量值), 0.1229 kgce/kWh by GB/T 2589. The
other factors are GB/T 2589-2020's (coke, natural gas, diesel, fuel oil; oxygen and compressed
air as energy-carrying utilities, 耗能工质) and, for CO₂, the national grid average of 2023 data
and the usual defaults for coke and natural gas (domain.md §5). A plant overrides any of them
in its config (``metrics.factors``): the key is ``<table>.<carrier>`` (``standard_coal.natural_gas``,
``co2.electricity``) and the value a number inside the factor's ``plausible`` range; anything
else is refused at start with the key named (``ConfigError``).

Public API: ``Factor``, ``Factors``, ``load_factors``, ``TABLES``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from greenfoundry import inputs
from greenfoundry.errors import ConfigError

FILE = Path(__file__).with_name("factors.yaml")
TABLES = ("standard_coal", "co2")
CONFIG_KEY = "metrics.factors"


@dataclass(frozen=True)
class Factor:
    """One factor: ``value`` in ``unit`` (per unit of the carrier), where it comes from."""

    table: str  # "standard_coal" or "co2"
    carrier: str  # electricity, coke, natural_gas …
    value: float
    unit: str  # "kgce/kWh", "kgCO2/m3" …
    source: str
    series: str
    year: int | None
    confidence: str
    plausible: tuple[float, float]
    overridden: bool = False  # True: the plant config's value, not the default

    @property
    def key(self) -> str:
        return f"{self.table}.{self.carrier}"

    @property
    def carrier_unit(self) -> str:
        """The unit of the carrier the factor multiplies: kWh, kg, m3."""
        return self.unit.split("/", 1)[1]

    def describe(self) -> str:
        year = f", {self.year}" if self.year else ""
        origin = "plant config" if self.overridden else self.source
        return f"{self.key} = {self.value:g} {self.unit} ({self.series}{year}; {origin})"


@dataclass(frozen=True)
class Factors:
    """Every factor by table and carrier."""

    standard_coal: Mapping[str, Factor]
    co2: Mapping[str, Factor]

    def kgce(self, carrier: str) -> Factor | None:
        return self.standard_coal.get(carrier)

    def co2_of(self, carrier: str) -> Factor | None:
        return self.co2.get(carrier)


def _defaults() -> dict[str, dict[str, Factor]]:
    raw = inputs.parse_yaml(FILE.read_text(encoding="utf-8"), str(FILE), ConfigError)
    out: dict[str, dict[str, Factor]] = {}
    for table in TABLES:
        out[table] = {}
        for carrier, d in raw[table].items():
            lo, hi = d["plausible"]
            out[table][carrier] = Factor(
                table,
                carrier,
                float(d["value"]),
                d["unit"],
                d["source"],
                d["series"],
                d.get("year"),
                d["confidence"],
                (float(lo), float(hi)),
            )
    return out


def load_factors(overrides: Mapping[str, float] | None = None) -> Factors:
    """The default factors with the plant's ``overrides`` applied.

    ``overrides``: the plant config's ``metrics.factors`` mapping, ``{"standard_coal.natural_gas":
    1.19, "co2.electricity": 0.5703}``. Raises ``ConfigError`` naming the key for an unknown
    table or carrier, a value that is not a number, or one outside the factor's plausible range.
    """
    tables = _defaults()
    for key, value in (overrides or {}).items():
        where = f"{CONFIG_KEY}.{key}"
        table, _, carrier = str(key).partition(".")
        if table not in tables or not carrier:
            raise ConfigError(
                f"{where}: unknown factor; expected <table>.<carrier> with table one of "
                f"{', '.join(TABLES)}"
            )
        if carrier not in tables[table]:
            raise ConfigError(
                f"{where}: unknown carrier {carrier!r}; expected one of "
                f"{', '.join(sorted(tables[table]))}"
            )
        f = tables[table][carrier]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{where}: {inputs.show(value)} is not a number; expected {f.unit}")
        lo, hi = f.plausible
        if not lo <= value <= hi:
            raise ConfigError(
                f"{where}: {value:g} {f.unit} is not plausible; expected {lo:g} to {hi:g} "
                f"{f.unit} (default {f.value:g}, {f.source})"
            )
        tables[table][carrier] = Factor(
            f.table, f.carrier, float(value), f.unit, f.source, f.series, f.year, f.confidence,
            f.plausible, overridden=True,
        )  # fmt: skip
    return Factors(tables["standard_coal"], tables["co2"])
