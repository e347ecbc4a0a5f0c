"""The canonical signal catalogue: one name per quantity, its unit, its kind, its plausible range.

Every reading that enters InfluxDB is one of these signals, in its canonical unit; vendor and topic
names and units are mapped to them at the ingest edge only (the plant config's `signals` table and
`greenfoundry.ingest.units`). The measurement in InfluxDB is the signal name.

Kinds (how a series must be read, after Home Assistant's sensor state classes):
- ``instantaneous``: a sampled value (power, concentration, temperature).
- ``counter``: a cumulative total that only grows, except when the meter resets to zero
  (energy, water volume). Consumption over a window is the sum of non-negative increments.
- ``event``: one value per discrete event (one tap of iron, one batch of pipes); the timestamp is
  the event's time and values over a window are summed (tonnes) or tonnage-weighted (temperature).

Timestamps are UTC in storage. Plausible ranges reject readings no sensor of that kind can give; they
are wide on purpose (a plausibility check, not a process alarm).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    name: str
    unit: str
    kind: str  # instantaneous | counter | event
    low: float
    high: float
    description: str


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal(
            "furnace_energy_kwh",
            "kWh",
            "counter",
            0.0,
            1e12,
            "Electricity into a furnace, cumulative meter reading",
        ),
        Signal(
            "furnace_power_kw", "kW", "instantaneous", 0.0, 2e5, "Electrical power into a furnace"
        ),
        Signal("fuel_coke_kg", "kg", "counter", 0.0, 1e12, "Coke charged to a cupola, cumulative"),
        Signal(
            "fuel_gas_m3",
            "m3",
            "counter",
            0.0,
            1e12,
            "Natural gas burnt, cumulative, at standard conditions",
        ),
        Signal("tap_iron_t", "t", "event", 0.0, 200.0, "Liquid iron tapped in one tap"),
        Signal(
            "tap_temp_c",
            "degC",
            "event",
            1000.0,
            1800.0,
            "Iron temperature at tapping, one value per tap",
        ),
        Signal(
            "stack_conc_mg_m3",
            "mg/m3",
            "instantaneous",
            0.0,
            1e5,
            "Pollutant concentration in a stack (tag `pollutant`), at standard conditions",
        ),
        Signal(
            "stack_flow_m3_h",
            "m3/h",
            "instantaneous",
            0.0,
            1e8,
            "Flue-gas flow in a stack, at standard conditions",
        ),
        Signal(
            "water_m3",
            "m3",
            "counter",
            0.0,
            1e12,
            "Water through a meter (tag `role` says which flow), cumulative",
        ),
        Signal("water_flow_m3_h", "m3/h", "instantaneous", 0.0, 1e6, "Water flow through a meter"),
        Signal(
            "ambient_temp_c",
            "degC",
            "instantaneous",
            -70.0,
            65.0,
            "Outdoor air temperature at the site",
        ),
        Signal(
            "pipe_output_t", "t", "event", 0.0, 1000.0, "Net weight of finished pipe from one batch"
        ),
        Signal(
            "pipe_output_count", "pcs", "event", 0.0, 1e5, "Number of finished pipes in one batch"
        ),
    )
}


def get(name: str) -> Signal | None:
    return SIGNALS.get(name)
