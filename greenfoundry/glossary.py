"""The glossary of the kernel: one name per thing, with its unit, used everywhere.

Config keys, evidence, CLI flags, the standard's context keys, InfluxDB measurements and the JSON
output all use these names (house style 1: the unit is in the name). Vendor and topic names and
units are mapped to them only at the ingest edge (the plant config's `signals` table and
`greenfoundry.ingest.units`). What is specific to one part of T/CFA 0308011 (its tables, tiers,
reference temperatures) lives in that part's standard file, not here.

Signals are what a plant publishes: every reading that enters InfluxDB is one of SIGNALS, in its
canonical unit, and the measurement is the signal's name. Timestamps are UTC in storage.

Derived quantities keep the same rule, e.g. ``annual_mean_air_temp_c`` (the site's mean air
temperature of the latest calendar year, Table C.1 note 4) is computed from ``ambient_temp_c``
readings, and ``tap_temp_c`` over a window is the tonnage-weighted mean of the taps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """How a series must be read (after Home Assistant's sensor state classes), with its time rules."""

    name: str
    reading: str  # what one reading means
    window: str  # how a window's value is made from readings
    labelling: str  # which instant a reading's timestamp names


# House style 5: every series documents its kind, its labelling and its time zone. Readings are
# stored in UTC; windows (hours, shifts, days, months, years) are cut in the plant's time zone
# (`plant.timezone`) and labelled by their start.
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "instantaneous",
            "a sampled value at its timestamp (power, concentration, temperature, flow)",
            "time-weighted mean over the valid minutes; a minute with no valid reading is invalid",
            "the instant of measurement",
        ),
        Kind(
            "counter",
            "a cumulative meter total that only grows, except when the meter resets or rolls over "
            "(energy, gas, water)",
            "the sum of the increments between readings inside the window; a drop is a reset",
            "the instant the total was read",
        ),
        Kind(
            "event",
            "one value per discrete event (a tap of iron, a batch of pipes, a test result)",
            "summed (tonnes, counts) or weighted (tapping temperature by tonnes), never interpolated",
            "the instant of the event",
        ),
    )
}

# Melting furnaces of Table C.1: cupola (冲天炉) and coreless induction furnace (无芯感应电炉).
FURNACE_KINDS = ("cupola", "induction")
# One line per furnace kind, for help texts and messages. The config calls it `furnaces[].kind`,
# the standard's context and the CLI `furnace_kind` / `--furnace-kind`.
FURNACE_KIND_DESCRIPTIONS = {
    "cupola": "cupola (冲天炉), melts cold charge on coke; capacity is its melting rate in t/h",
    "induction": "coreless induction furnace (无芯感应电炉), electric; capacity in t",
}
# The capacity's unit follows the furnace kind, as in Table C.1: a cupola by melting rate, an
# induction furnace by holding capacity.
CAPACITY_UNITS = {"cupola": "t/h", "induction": "t"}
# Centrifugal cast-iron pipe: gray (灰铸铁管) or ductile (球墨铸铁管).
PRODUCTS = ("gray", "ductile")
# Gray pipe only (Table 5): where the iron comes from.
IRON_SOURCES = ("blast_furnace_or_cupola", "medium_frequency_furnace")
# Stack pollutants with a limit C (tag `pollutant` of stack_conc_mg_m3).
POLLUTANTS = ("particulate", "so2", "nox", "nmhc", "benzene", "voc", "co", "fluoride", "lead")
# Wastewater pollutants with a limit D at an outfall (tag `pollutant` of discharge_conc_mg_l):
# chemical oxygen demand (CODCr), ammonia nitrogen, suspended solids, total phosphorus, total
# nitrogen, five-day biochemical oxygen demand, petroleum oils. pH is not among them: its limit
# is a range (6-9 in GB 8978), not a ceiling, so a reading has no multiple of D (pH 4 is as far
# out as pH 10, and pH 9 / 9 = 1 says nothing about pH 3).
WATER_POLLUTANTS = ("cod", "nh3_n", "ss", "tp", "tn", "bod5", "oil")
# Water meters (tag `role` of water_m3): which flow a meter measures.
WATER_ROLES = (
    "cooling_circulating",  # water circulated in the furnace/machine cooling loops
    "cooling_makeup",  # fresh water added to those loops
    "process_intake",  # fresh water taken in for process use
    "process_reused",  # process wastewater reused after treatment
    "reclaimed_intake",  # municipal reclaimed water (中水) taken in
    "total_intake",  # all water taken in for production
)


@dataclass(frozen=True)
class Signal:
    name: str
    unit: str
    kind: str  # a key of KINDS
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
        # Site energy (Table 5: plant energy per tonne of pipe, power factor). The site meter is
        # the incoming one: the furnaces' meters are sub-meters of it, never added to it.
        Signal(
            "site_energy_kwh",
            "kWh",
            "counter",
            0.0,
            1e12,
            "Active electricity imported by the whole site (its incoming meter), cumulative",
        ),
        Signal(
            "site_reactive_kvarh",
            "kvarh",
            "counter",
            0.0,
            1e12,
            "Reactive energy at the site's incoming meter, cumulative (for the power factor)",
        ),
        Signal(
            "oxygen_m3",
            "m3",
            "counter",
            0.0,
            1e12,
            "Oxygen drawn by the plant, cumulative, at standard conditions",
        ),
        # Stack analysers: the flue gas's oxygen for the reference-O2 correction, and the
        # analyser's status, a numeric code in force from its timestamp until the next one:
        # 0 normal (HJ 212 flag N), 1 calibration (C), 2 maintenance (M), 3 fault (D),
        # 4 source stopped (F), 5 over range (T), 6 communication fault (B). Only 0 is valid data.
        Signal(
            "stack_o2_pct",
            "%",
            "instantaneous",
            0.0,
            25.0,
            "Oxygen content of a stack's flue gas, % by volume, dry",
        ),
        Signal(
            "stack_analyser_status",
            "code",
            "instantaneous",
            0.0,
            9.0,
            "Status code of a stack's analyser (0 normal, 1 calibration, 2 maintenance, 3 fault, "
            "4 source stopped, 5 over range, 6 communication fault)",
        ),
        # Table 6, water: the online analysers at a wastewater outfall (device = the outfall of
        # the plant config's `outfalls`). Each reading is one analysed sample (an analyser's
        # cycle, about an hour), in mg/L, labelled by the sample's instant; the status is a code
        # in force from its timestamp, with the stack analysers' codes (0 normal, 1
        # calibration, 2 maintenance, 3 fault, 4 source stopped, 5 over range, 6 communication
        # fault). Only a sample taken while the status is 0 is valid data.
        Signal(
            "discharge_conc_mg_l",
            "mg/L",
            "instantaneous",
            0.0,
            1e5,
            "Pollutant concentration of a wastewater outfall's sample (tag `pollutant`), mg/L",
        ),
        Signal(
            "discharge_analyser_status",
            "code",
            "instantaneous",
            0.0,
            9.0,
            "Status code of an outfall's online analysers (the stack analysers' codes)",
        ),
        # Table 6, boundary noise: the A-weighted equivalent continuous level Leq of one
        # measuring interval (1 min: GB 12348-2008, 5.4.2, for steady noise) at a boundary
        # point (device = the point), labelled by the interval's start. Below 20 dB(A) is under
        # the self-noise of a class 1 sound level meter (the lowest limit E the plant config
        # takes, too): such a reading is a dead microphone or a zero sent for "no value", never
        # a plant's boundary, and would pull an hourly Leq down and make a quiet hour of it.
        Signal(
            "noise_leq_dba",
            "dB(A)",
            "instantaneous",
            20.0,
            140.0,
            "Boundary noise: A-weighted Leq of one measuring interval at a boundary point",
        ),
        # The boundary noise monitor's status (device = the point), a code in force from its
        # timestamp, with the stack analysers' codes; a noise monitor uses 0 normal, 1
        # calibration (an acoustic calibrator's tone, about 94 dB(A), at the microphone), 2
        # maintenance, 3 fault and 6 communication fault. Only a minute throughout which the
        # status is 0 is valid data: a calibration tone is not the plant's boundary noise.
        Signal(
            "noise_monitor_status",
            "code",
            "instantaneous",
            0.0,
            9.0,
            "Status code of a boundary noise monitor (the stack analysers' codes)",
        ),
        # Production events of Table A.1, one batch per casting line and DN: every event of a
        # batch carries the same timestamp, and pipe_dn at it names the batch's nominal size.
        Signal("pipe_dn", "DN", "event", 40.0, 3000.0, "Nominal size DN of one batch of pipe"),
        Signal(
            "pipe_cast_count",
            "pcs",
            "event",
            0.0,
            1e5,
            "Pipes cast in one batch, good and scrap (off the centrifugal machines)",
        ),
        Signal(
            "pipe_scrap_t",
            "t",
            "event",
            0.0,
            1000.0,
            "Scrap pipe of one batch, t (rejected at any stage, customer returns included)",
        ),
        Signal(
            "hydro_tested_count",
            "pcs",
            "event",
            0.0,
            1e5,
            "Pipes of one batch given their first hydrostatic test on line",
        ),
        Signal(
            "hydro_passed_count",
            "pcs",
            "event",
            0.0,
            1e5,
            "Pipes of one batch that passed their first hydrostatic test",
        ),
        Signal(
            "inspected_count",
            "pcs",
            "event",
            0.0,
            1e5,
            "Pipes of one batch through the online pipe inspection (first inspection)",
        ),
        Signal(
            "inspection_passed_count",
            "pcs",
            "event",
            0.0,
            1e5,
            "Pipes of one batch that passed their first inspection",
        ),
        # Table 5 reuse rows: resin sand (cores) and metal returns, per batch or shift.
        Signal("sand_used_t", "t", "event", 0.0, 1e4, "Core sand (resin sand) mixed, t"),
        Signal("sand_reclaimed_t", "t", "event", 0.0, 1e4, "Reclaimed sand in the sand mixed, t"),
        Signal(
            "returns_arising_t",
            "t",
            "event",
            0.0,
            1e4,
            "Metal returns arising: scrap pipe, cut ends, runners, chips, t",
        ),
        Signal(
            "returns_charged_t",
            "t",
            "event",
            0.0,
            1e4,
            "Metal returns charged to the furnaces as return material, t",
        ),
    )
}


def signal(name: str) -> Signal | None:
    """The signal of that name, or None."""
    return SIGNALS.get(name)


# --------------------------------------------------------------------------- plausible ranges
# What no plant can have is refused, not scored. These are the ranges of the scorer's values
# (the standard's rows and context keys), wide enough for any real plant and narrow enough to
# refuse a value in the wrong unit (a percent given as a fraction is the exception: 0.985 is a
# possible percent, so the scorer only warns). A row of the standard may narrow its unit's range
# with its own `plausible` (the power factor's unit "1" has none here).


@dataclass(frozen=True)
class Range:
    """A closed or open interval of plausible values, with what the value is, for messages."""

    low: float | None
    high: float | None
    what: str  # "a percent", "a tonnage-weighted tapping temperature", …
    unit: str = ""
    low_open: bool = False  # True: the value must be above `low`, not equal to it
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value >= self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """``a percent from 0 to 100 %``, ``… above 0 and at most 1500 kWh/t``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None and not (self.low_open or self.high_open):
            return f"{self.what} from {self.low:g} to {self.high:g}{unit}"
        parts = []
        if self.low is not None:
            parts.append(f"{'above' if self.low_open else 'at least'} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'below' if self.high_open else 'at most'} {self.high:g}")
        return f"{self.what} {' and '.join(parts)}{unit}"


# By the unit of a row of the standard (its `unit`; for Table C.1 the furnace's row unit).
PLAUSIBLE_BY_UNIT: dict[str, Range] = {
    "%": Range(0, 100, "a percent", "%"),
    "‰": Range(0, 1000, "a per mille rate", "‰"),
    # Energy per tonne: realistic values are 90-140 kgce/t for a cupola, 60-120 kWh/t for an
    # induction furnace superheating hot metal and 500-600 kWh/t melting cold charge, at most a
    # few hundred kgce/t for a whole pipe plant (domain.md §5, Tables 5 and C.1). Zero energy is
    # no plant's; the highs leave room for a poor plant and refuse a value in kWh or kgce per kg.
    "kgce/t": Range(0, 1000, "an energy per tonne", "kgce/t", low_open=True),
    "kWh/t": Range(0, 2000, "an energy per tonne", "kWh/t", low_open=True),
    # Table 6: the measured level divided by its limit C, D or E (decision D-multiple). A value
    # in mg/m³, mg/L or dB(A) (usually above 10) is refused; a stack at 10 × its limit is not a
    # plant being evaluated.
    "C": Range(0, 10, "a multiple of the limit C", "C"),
    "D": Range(0, 10, "a multiple of the limit D", "D"),
    "E": Range(0, 10, "a multiple of the limit E", "E"),
    "a": Range(0, 100, "a number of years", "a"),
    # Tables 2 and A.1: yearly output in 10⁴ t (the largest pipe plants cast a few hundred), sales
    # in 10⁴ yuan, labour productivity. The highs refuse a value given in t or yuan.
    "万吨/年": Range(0, 1000, "a yearly output in 10⁴ t", "万吨/年"),
    "万元/年": Range(0, 1e7, "yearly sales in 10⁴ yuan", "万元/年"),
    "t/(person·a)": Range(0, 20000, "tonnes per person and year", "t/(person·a)"),
    "万元/(person·a)": Range(0, 10000, "output value per person and year", "万元/(person·a)"),
}

# By context key (the standard's `context_keys`, the plant config and `standard limits` flags).
PLAUSIBLE_BY_KEY: dict[str, Range] = {
    # Cast iron is tapped for pipe at about 1450-1550 °C (domain.md §5; Table C.1 specifies
    # 1450-1500 °C); below 1200 °C it is near its liquidus, above 1650 °C no cupola or induction
    # furnace of a pipe plant runs. 1773 is a temperature in K, not °C.
    "tap_temp_c": Range(1200, 1650, "a tonnage-weighted mean tapping temperature", "°C"),
    # The coldest and the hottest inhabited places have yearly means of about −15 °C and 35 °C.
    "annual_mean_air_temp_c": Range(-30, 40, "a site's yearly mean air temperature", "°C"),
    # Table C.1 capacities: the largest cupolas melt about 100 t/h, the largest coreless
    # induction furnaces hold about 100 t. A capacity in kg or kg/h is refused.
    "furnace_capacity.cupola": Range(0, 200, "a cupola melting capacity", "t/h", low_open=True),
    "furnace_capacity.induction": Range(
        0, 300, "an induction furnace capacity", "t", low_open=True
    ),
}


def plausible_for_key(key: str, furnace_kind: str | None = None) -> Range | None:
    """The plausible range of a context key (``furnace_capacity`` by furnace kind), or None."""
    if key == "furnace_capacity":
        return PLAUSIBLE_BY_KEY.get(f"furnace_capacity.{furnace_kind}")
    return PLAUSIBLE_BY_KEY.get(key)
