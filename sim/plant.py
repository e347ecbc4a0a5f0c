"""A deterministic model of a centrifugal ductile-iron pipe plant: readings, not a network.

`PlantModel(cfg, seed).events(start, end)` yields the plant's MQTT messages in time order, each an
`Event` (topic, payload, timestamp). There is no clock and no network here: the publisher
(`greenfoundry.sim.publisher`) paces and sends them.

What is simulated is derived from the plant config: every topic mapped in `cfg.routes` whose
canonical signal the model knows gets readings, and no other topic is ever used (except by the
`unknown_topic` bad payload, on purpose). A furnace signal belongs to the furnace whose id is the
topic's device; a water meter's role is the route's `role` tag (or the meter with the device's
id); a stack concentration's pollutant is the route's `pollutant` tag, scaled to the stack's
limit C. `PlantModel.unsimulated` lists the mapped topics the model cannot fill, with why.

Time: the plant is simulated in UTC days counted from `EPOCH` (the plant's commissioning). Each
day of each device is drawn from its own random generator keyed by (seed, device, day), and
counters and sequence numbers carry over from day to day by summing the totals of every earlier
day. So the same seed gives the same reading for the same instant whatever range is asked for:
a 90-day backfill followed by a live run continues the same counters without a step.

Physics (domain.md §5 and Table C.1 of T/CFA 0308011.5-2024), per coreless induction furnace:
hot metal arrives at about the temperature Table C.1 states (1300 °C), is charged (85–100 % of
capacity), superheated to the tapping temperature Table C.1 specifies for the plant's product and
the furnace's DN range at 0.40–0.45 kWh/(t·K) (150–250 K: about 60–90
kWh/t), held until the casting machines call for it and tapped, every 10–20 minutes. Holding
losses run all the time at 45–65 kW per tonne of capacity (10–30 kWh/t at these cycle times). The
energy counter is the exact integral of that power profile; a power reading is the mean power of
the sampling interval that ends at its timestamp (a power meter's demand register), so counter
increments and power readings agree. A cupola melts cold charge continuously at 80–100 % of its
capacity (t/h) on 100–130 kgce/t of coke and about 30 kWh/t for its blower, and taps up to 40 K
above its specified temperature. The standard's numbers (the 1300 °C hot metal, the specified
tapping temperatures) are asked of `greenfoundry.scoring.table_c1`, which reads them from the
standard's file; the constants here are physics and plant behaviour only.
"""

from __future__ import annotations

import json
import math
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import numpy as np

from greenfoundry import glossary
from greenfoundry.errors import UsageError
from greenfoundry.ingest import units
from greenfoundry.plant import Furnace, PlantConfig, SignalRoute
from greenfoundry.scoring import table_c1
from greenfoundry.sim.faults import (
    NOISE_CALIBRATOR_DBA,
    ROLLOVER_MODULUS,
    Faults,
    bad_payload_plan,
    calibration_interval,
    drift_fraction,
    gap_intervals,
    gap_mask,
    late_intervals,
    noise_calibration_interval,
    outfall_calibration_interval,
    reset_times,
    rng_for,
    spike_mask,
    stack_drift_weight,
)

EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)  # the simulated plant's first day
EPOCH_MS = int(EPOCH.timestamp() * 1000)
DAY_S = 86400
DAY_MS = DAY_S * 1000
BLOCK_S = 900  # slow process variations (flows, concentrations) change every 15 minutes
BLOCKS = DAY_S // BLOCK_S

# σ of the received hot metal around Table C.1's temperature, clipped at 2.5 σ.
HOT_METAL_SPREAD_C = 8.0
SUPERHEAT_KWH_PER_T_K = (0.40, 0.45)  # 150–250 K of superheat → about 60–90 kWh/t (domain.md §5)
HOLDING_KW_PER_T = (45.0, 65.0)  # holding losses per tonne of capacity → 10–30 kWh/t per tap
RATED_KW_PER_T = 600.0  # induction furnace supply rating per tonne of capacity
TAP_TEMP_RANGE_C = (1450.0, 1550.0)  # domain.md §5
PIPE_YIELD = (0.88, 0.93)  # net pipe weight / liquid iron tapped
# Production quality, drawn per casting line and day (Table A.1's tiers for ductile pipe lie
# across these: scrap ≤ 6/8/10 %, first-pass hydrostatic 93–99 %, inspection rate 94–100 %).
SCRAP_SHARE = (0.03, 0.06)  # scrap / (good + scrap), by pieces
UNTESTED_SHARE = (0.0, 0.03)  # pipes that bypass the online test and inspection
HYDRO_FIRST_PASS = (0.965, 0.995)
INSPECTION_FIRST_PASS = (0.93, 0.975)
SAND_RECLAIMED = (0.90, 0.97)  # reclaimed share of the core sand mixed
RETURNS_CHARGED = (0.95, 1.0)  # share of the metal returns charged back to the furnaces
CUT_ENDS = 0.015  # cut ends and chips, as a share of the good pipe's weight
# Site utilities per tonne of furnace capacity (about 80 t/h of pipe for 24 t of induction
# capacity): auxiliary electricity (casting machines, annealing fans, pumps, compressors,
# lighting) 200 kW/t ≈ 60 kWh/t of pipe; natural gas for annealing, coating and ladle heating
# 150 m³/h per t ≈ 45 m³/t of pipe; purchased oxygen 6.7 m³/h per t ≈ 2 m³/t. With the
# furnaces' 70–120 kWh/t this gives about 70–80 kgce/t of pipe (Table 5, ductile ≤ 100).
AUX_KW_PER_T = 200.0
GAS_M3_H_PER_T = 150.0
OXYGEN_M3_H_PER_T = 6.7
POWER_FACTOR = (0.93, 0.97)  # the site's, drawn per day (Table 5 tiers 0.95 / 0.92 / 0.90)
STACK_O2_PCT = (16.0, 18.5)  # flue gas after bag filters: much dilution air
# Treated wastewater at the outfall, as a share of its limit D (drawn per outfall and pollutant),
# and the daily swing around it; an online analyser takes one sample an hour.
DISCHARGE_SHARE_OF_D = (0.25, 0.55)
DISCHARGE_DAILY_SD = 0.15
# Boundary noise: the hourly level below the period's limit E (drawn per point), dB(A), and the
# spread of the 1-minute Leqs around it. Night shifts run fewer machines.
NOISE_BELOW_E_DBA = {"day": (3.0, 8.0), "night": (2.0, 7.0)}
NOISE_MINUTE_SD_DBA = 1.5
SPAN_OF_C = 0.9  # a calibrating analyser reads its span gas, 0.9 × C
COKE_KGCE_PER_KG = 0.9714  # GB/T 2589
STANDARD_DN = (80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 1100,
               1200, 1400, 1500, 1600, 1800, 2000, 2200, 2400, 2600)  # fmt: skip

# Resolution of published values, in decimals of the canonical unit.
DECIMALS = {
    "furnace_energy_kwh": 1,
    "furnace_power_kw": 1,
    "fuel_coke_kg": 1,
    "tap_iron_t": 2,
    "tap_temp_c": 1,
    "stack_conc_mg_m3": 2,
    "stack_flow_m3_h": 0,
    "water_m3": 2,
    "water_flow_m3_h": 2,
    "ambient_temp_c": 1,
    "pipe_output_t": 3,
    "pipe_output_count": 0,
    "site_energy_kwh": 1,
    "site_reactive_kvarh": 1,
    "fuel_gas_m3": 2,
    "oxygen_m3": 2,
    "stack_o2_pct": 2,
    "stack_analyser_status": 0,
    "pipe_dn": 0,
    "pipe_cast_count": 0,
    "pipe_scrap_t": 3,
    "hydro_tested_count": 0,
    "hydro_passed_count": 0,
    "inspected_count": 0,
    "inspection_passed_count": 0,
    "sand_used_t": 3,
    "sand_reclaimed_t": 3,
    "returns_arising_t": 3,
    "returns_charged_t": 3,
    "discharge_conc_mg_l": 2,
    "discharge_analyser_status": 0,
    "noise_leq_dba": 1,
    "noise_monitor_status": 0,
}
NOISE_SIGNALS = ("noise_leq_dba", "noise_monitor_status")
WHOLE = {s for s, d in DECIMALS.items() if d == 0 and s != "stack_flow_m3_h"}
SITE_COUNTERS = ("site_energy_kwh", "site_reactive_kvarh", "fuel_gas_m3", "oxygen_m3")
# One batch per casting line, furnace (its DN) and hour, all stamped alike; and per line and hour.
BATCH_SIGNALS = (
    "pipe_dn",
    "pipe_cast_count",
    "pipe_output_count",
    "pipe_output_t",
    "pipe_scrap_t",
    "hydro_tested_count",
    "hydro_passed_count",
    "inspected_count",
    "inspection_passed_count",
)
LINE_SIGNALS = ("sand_used_t", "sand_reclaimed_t", "returns_arising_t", "returns_charged_t")
COUNTERS = {"furnace_energy_kwh", "fuel_coke_kg", "water_m3", *SITE_COUNTERS}
# Event.fault names by priority, lowest first: a later one overwrites an earlier one.
FAULT_LABELS = (
    None,
    "late",
    "drift",
    "spike",
    "calibration",
    "outfall_calibration",  # an outfall analyser's (two hours), apart from the stacks' 15 minutes
    "noise_calibration",  # a noise monitor's acoustic calibrator (two minutes)
    "rollover",
    "reset",
    "stack_drift",
    "hot_furnace",
)
GRID_SIGNALS = {
    "furnace_energy_kwh",
    "furnace_power_kw",
    "fuel_coke_kg",
    "stack_conc_mg_m3",
    "stack_flow_m3_h",
    "water_m3",
    "water_flow_m3_h",
    "ambient_temp_c",
    *SITE_COUNTERS,
    "stack_o2_pct",
    "stack_analyser_status",
}
# Sensors that can drift or spike: instantaneous signals and the tap thermocouple.
FAULTY_SENSORS = {
    "furnace_power_kw",
    "stack_conc_mg_m3",
    "stack_flow_m3_h",
    "water_flow_m3_h",
    "ambient_temp_c",
    "tap_temp_c",
}


def tapping_temp_spec_c(furnace: Furnace, product: str) -> float:
    """The tapping temperature Table C.1 specifies for the furnace's iron (asked of the standard:
    `table_c1.specified_tap_temp_c`), at the largest DN the furnace feeds: a furnace whose DN
    range reaches above DN300 taps at the temperature of the larger pipe."""
    return table_c1.specified_tap_temp_c(furnace.kind, product, dn=furnace.dn_max)


def pipe_mass_t(dn: int) -> float:
    """Net mass of one 6 m K9 ductile-iron pipe of nominal size DN, socket included, in t.

    Wall thickness ISO 2531: e = K (0.5 + 0.001 DN) mm with K = 9, at least 6 mm; outside
    diameter about DN + 18 + 0.03 DN mm; iron 7050 kg/m³; the socket adds about 8 %. Gives
    0.33 t for DN300 and 2.0 t for DN1000, as in makers' tables.
    """
    e_mm = max(6.0, 9.0 * (0.5 + 0.001 * dn))
    od_mm = dn + 18.0 + 0.03 * dn
    kg_per_m = math.pi * (od_mm - e_mm) * e_mm * 7.05e-3
    return kg_per_m * 6.0 * 1.08 / 1000.0


def pipe_sizes(furnace: Furnace) -> tuple[int, ...]:
    """Standard DN sizes a furnace's iron is cast into (its DN range; gray pipe DN100–300)."""
    lo, hi = furnace.dn_min or 100, furnace.dn_max or 300
    sizes = tuple(dn for dn in STANDARD_DN if lo <= dn <= hi)
    return sizes or (lo,)


@dataclass(frozen=True, slots=True)
class Event:
    """One MQTT message of the plant.

    A good reading has `route`, `value`, `unit` and `seq`; its single-message payload is
    `{"ts": <RFC 3339, plant-local offset>, "value", "unit", "seq"}` and its batch element
    `{"signal", "ts_ms", "value", "unit", "seq"}`. A bad payload has `raw` bytes and `reject`,
    the reason the ingest must give; its route is None when its topic is unmapped on purpose.
    """

    ts_ms: int  # UTC milliseconds since 1970: the reading's time (a bad payload's send time)
    topic: str
    route: SignalRoute | None
    value: float | int | None
    unit: str | None
    seq: int | None
    raw: bytes | None = None
    fault: str | None = None  # a fault mode's name (FAULT_LABELS) or "bad_payload"
    reject: str | None = None  # for a bad payload: the ingest's rejection reason
    tz: tzinfo = field(default=timezone.utc, repr=False, compare=False)
    sent_ms: int | None = None  # sent later than its time (fault `late`); None: at ts_ms

    @property
    def send_ms(self) -> int:
        """When the message is sent: its time, or later for a late reading."""
        return self.ts_ms if self.sent_ms is None else self.sent_ms

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000, tz=timezone.utc)

    @property
    def payload(self) -> dict | bytes:
        """The message on its own topic: a dict to encode as JSON, or raw bytes."""
        if self.raw is not None:
            return self.raw
        ts = datetime.fromtimestamp(self.ts_ms / 1000, tz=self.tz)
        return {
            "ts": ts.isoformat(timespec="milliseconds"),
            "value": self.value,
            "unit": self.unit,
            "seq": self.seq,
        }

    def encode(self) -> bytes:
        payload = self.payload
        if isinstance(payload, bytes):
            return payload
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def reading(self) -> dict:
        """The element of a `_batch` message for this reading (good readings only)."""
        assert self.route is not None and self.raw is None
        return {
            "signal": self.route.name,
            "ts_ms": self.ts_ms,
            "value": self.value,
            "unit": self.unit,
            "seq": self.seq,
        }

    @property
    def device_key(self) -> tuple[str, str] | None:
        return (self.route.area, self.route.device) if self.route else None


@dataclass
class _Sim:
    """A mapped topic the model fills, and how."""

    route: SignalRoute
    topic: str
    index: int
    gen: str
    device: tuple[str, str]
    furnace: Furnace | None = None
    key: str = ""  # pollutant, water role or casting line
    unit: str = ""
    scale: float = 1.0  # canonical = published * scale + offset
    offset: float = 0.0
    decimals: int = 1
    drift_abs: float = 0.0  # offset at full drift, canonical unit


@dataclass
class _FurnaceDay:
    bounds_s: np.ndarray  # profile breakpoints, seconds from the day's start, 0 … 86400
    cum_kwh: np.ndarray  # electricity used since the day's start at each breakpoint
    cum_coke_kg: np.ndarray  # coke charged since the day's start at each breakpoint
    tap_s: np.ndarray
    tap_t: np.ndarray
    tap_c: np.ndarray  # measured tapping temperature

    def totals(self) -> np.ndarray:
        return np.array([self.cum_kwh[-1], float(self.tap_s.size), self.cum_coke_kg[-1]])


class PlantModel:
    """The plant of a config, with a seed. Pure: `events(start, end)` depends on nothing else."""

    def __init__(
        self,
        cfg: PlantConfig,
        seed: int = 1,
        *,
        interval_s: int = 60,
        faults: Faults | None = None,
    ):
        if interval_s <= 0 or DAY_S % interval_s:
            raise UsageError(
                f"sampling interval {interval_s!r} s is not allowed; expected a whole number of "
                "seconds that divides a day (10, 15, 30, 60, 300 …)"
            )
        self.cfg = cfg
        self.seed = int(seed)
        self.interval_s = int(interval_s)
        self.faults = faults or Faults()
        self.tz = ZoneInfo(cfg.plant.timezone)
        self.stats: Counter[str] = Counter()
        self.unsimulated: list[tuple[str, str]] = []  # (topic, why)
        self._sims: list[_Sim] = []
        self._furnace_cache: OrderedDict[tuple[str, int], _FurnaceDay] = OrderedDict()
        self._prefixes: dict[str, list[np.ndarray]] = {}
        self._build()

    # ---------------------------------------------------------------- what to simulate
    def _build(self) -> None:
        cfg = self.cfg
        furnaces = {f.id: f for f in cfg.furnaces}
        meters = {m.id: m.role for m in cfg.water_meters}
        stacks = {s.id: s for s in cfg.stacks}
        outfalls = {o.id: o for o in cfg.outfalls}
        self._outfalls = outfalls
        sole = cfg.furnaces[0] if len(cfg.furnaces) == 1 else None
        self._stacks = stacks
        # Table C.1's induction rows: hot metal received at this temperature and superheated.
        self._hot_metal_c = table_c1.hot_metal_c("induction")
        for index, route in enumerate(cfg.routes.values()):
            topic = cfg.topic_for(route)
            tags = dict(route.tags)
            sig = route.signal
            sim = _Sim(route, topic, index, "", (route.area, route.device))
            furnace = furnaces.get(route.device, sole)
            why = ""
            if sig in ("furnace_energy_kwh", "furnace_power_kw", "tap_iron_t", "tap_temp_c"):
                if furnace is None:
                    why = f"no furnace with id {route.device!r}"
                sim.gen, sim.furnace = sig, furnace
            elif sig == "fuel_coke_kg":
                if furnace is None or furnace.kind != "cupola":
                    why = f"no cupola with id {route.device!r} (induction furnaces burn no coke)"
                sim.gen, sim.furnace = sig, furnace
            elif sig == "stack_conc_mg_m3":
                sim.gen, sim.key = sig, tags.get("pollutant", "particulate")
            elif sig == "stack_flow_m3_h":
                sim.gen = sig
            elif sig in ("water_m3", "water_flow_m3_h"):
                sim.gen, sim.key = sig, tags.get("role") or meters.get(route.device, "")
                if not sim.key:
                    why = f"no water role: give the route a role tag or a meter id {route.device!r}"
            elif sig in SITE_COUNTERS:
                sim.gen, sim.key = sig, sig
            elif sig in ("stack_o2_pct", "stack_analyser_status"):
                sim.gen = sig
            elif sig in ("discharge_conc_mg_l", "discharge_analyser_status"):
                sim.gen, sim.key = sig, tags.get("pollutant", "")
                if route.device not in outfalls:
                    why = f"no outfall with id {route.device!r}"
            elif sig in ("noise_leq_dba", "noise_monitor_status"):
                sim.gen = sig
                if cfg.boundary_noise is None:
                    why = "no boundary_noise in the config (the limits E)"
            elif sig in ("ambient_temp_c", *BATCH_SIGNALS, *LINE_SIGNALS):
                sim.gen, sim.key = sig, route.device
            else:
                why = f"the simulator has no model of {sig}"
            if why:
                self.unsimulated.append((topic, why))
                continue
            canonical = glossary.SIGNALS[sig].unit
            sim.unit = route.unit if route.unit is not None else canonical
            sim.scale, sim.offset = units.conversion(sim.unit, canonical) or (1.0, 0.0)
            sim.decimals = max(0, DECIMALS[sig] + round(math.log10(sim.scale)))
            if sig in WHOLE:
                sim.decimals = 0
            sim.drift_abs = self._drift_scale(sim, stacks)
            self._sims.append(sim)
        self._devices = sorted({s.device for s in self._sims})
        # The noise monitors that publish their status: only they are calibrated (faults.py).
        self._noise_status = {s.device for s in self._sims if s.gen == "noise_monitor_status"}
        self._lines = sorted(
            {s.key for s in self._sims if s.gen in (*BATCH_SIGNALS, *LINE_SIGNALS)}
        )
        self._capacity_t = (
            sum(f.capacity if f.kind == "induction" else f.capacity / 4.0 for f in cfg.furnaces)
            or 10.0
        )
        self._roles: dict[str, list[str]] = {}
        for s in self._sims:
            roles = self._roles.setdefault(s.key, [])
            if s.gen in ("water_m3", *SITE_COUNTERS) and s.route.device not in roles:
                roles.append(s.route.device)
        faults = self.faults
        ids = [f.id for f in cfg.furnaces]
        if (
            faults.hot_furnace
            and faults.hot_furnace_id is not None
            and faults.hot_furnace_id not in ids
        ):
            raise UsageError(
                f"hot furnace {faults.hot_furnace_id!r} is not a furnace of the config; "
                f"expected one of {', '.join(ids)}"
            )
        self._hot_id = (
            (faults.hot_furnace_id or (ids[0] if ids else None)) if faults.hot_furnace else None
        )
        self._drift_target: tuple[str, str] | None = None
        if faults.stack_drift:
            target = faults.stack_drift_target
            pairs = [(st.id, p) for st in cfg.stacks for p in st.limits_mg_m3]
            if target is None:
                self._drift_target = pairs[0] if pairs else None
            else:
                pair = tuple(target.split("/", 1))
                if pair not in pairs:
                    raise UsageError(
                        f"stack drift target {target!r} is not a stack/pollutant of the config; "
                        f"expected one of {', '.join('/'.join(x) for x in pairs)}"
                    )
                self._drift_target = pair

    def _drift_scale(self, sim: _Sim, stacks) -> float:
        """The offset a drifting sensor reaches at the end of an episode (canonical unit)."""
        g = sim.gen
        if g == "furnace_power_kw":
            return 0.1 * RATED_KW_PER_T * (sim.furnace.capacity if sim.furnace else 10.0) / 3
        if g == "stack_conc_mg_m3":
            return 1.5 * self._stack_level(sim.route.device, sim.key)
        if g == "stack_flow_m3_h":
            return 15000.0
        if g == "water_flow_m3_h":
            return 20.0
        if g == "ambient_temp_c":
            return 6.0
        if g == "tap_temp_c":
            return 25.0
        return 0.0

    # ---------------------------------------------------------------- ground truth
    def truth(self, start: datetime, end: datetime) -> dict:
        """What the plant really did in [start, end), in canonical units, without sensor noise
        or faults of meters and transport (a process fault, hot_furnace or stack_drift, is the
        plant's truth): what the metrics computed from the published readings must agree with.

        Keys: ``counters`` {topic: consumption, the true meter difference end − start};
        ``events`` {topic: Σ values of events with start ≤ t < end}; ``furnaces`` {id:
        energy_kwh, iron_t, tap_temp_c (tonnage-weighted, as measured), kwh_per_t};
        ``site`` (energy_kwh, reactive_kvarh, power_factor, fuel_gas_m3, oxygen_m3, of the
        site topics); ``water`` {role: m³}; ``production`` (Σ of every batch signal, and
        ``by_dn`` {"80-300" | "350-1000" | ">1000": the same sums}).
        """
        s_ms, e_ms = _ms(start), _ms(end)
        if e_ms <= s_ms:
            raise ValueError("truth needs start < end")
        out: dict = {"counters": {}, "events": {}, "furnaces": {}, "site": {}, "water": {}}
        for sim in self._sims:
            if sim.gen in COUNTERS:
                v = self._counter_at(sim, (e_ms - EPOCH_MS) / 1000) - self._counter_at(
                    sim, (s_ms - EPOCH_MS) / 1000
                )
                out["counters"][sim.topic] = v
                if sim.gen == "water_m3":
                    out["water"][sim.key] = out["water"].get(sim.key, 0.0) + v
                if sim.gen in SITE_COUNTERS:
                    out["site"][sim.gen] = out["site"].get(sim.gen, 0.0) + v
        day0, day1 = (s_ms - EPOCH_MS) // DAY_MS, (e_ms - 1 - EPOCH_MS) // DAY_MS
        taps: dict[str, list[np.ndarray]] = {}
        prod: dict = {k: 0.0 for k in BATCH_SIGNALS if k != "pipe_dn"}
        by_dn: dict = {}
        for day in range(int(day0), int(day1) + 1):
            t0 = EPOCH_MS + day * DAY_MS
            pipes = self._pipe_batches(day) if self._lines else {}
            for sim in self._sims:
                if glossary.SIGNALS[sim.route.signal].kind != "event":
                    continue
                ts, v = self._series(sim, day, np.zeros(0, dtype=np.int64), pipes)
                sel = (ts + t0 >= s_ms) & (ts + t0 < e_ms)
                out["events"][sim.topic] = out["events"].get(sim.topic, 0.0) + float(v[sel].sum())
            for f in self.cfg.furnaces:
                fd = self._furnace_day(f, day)
                t = np.round(fd.tap_s * 1000.0) + t0
                sel = (t >= s_ms) & (t < e_ms)
                taps.setdefault(f.id, []).append(np.stack([fd.tap_t[sel], fd.tap_c[sel]]))
            for cols in pipes.values():
                ts, dn = cols["pipe_dn"]
                sel = (ts + t0 >= s_ms) & (ts + t0 < e_ms)
                band = np.where(dn <= 300, "80-300", np.where(dn <= 1000, "350-1000", ">1000"))
                for k in prod:
                    v = cols[k][1]
                    prod[k] += float(v[sel].sum())
                    for b in np.unique(band[sel]):
                        d = by_dn.setdefault(str(b), {x: 0.0 for x in prod})
                        d[k] += float(v[sel & (band == b)].sum())
        for f in self.cfg.furnaces:
            tw = np.concatenate(taps[f.id], axis=1) if taps.get(f.id) else np.zeros((2, 0))
            energy = None
            for sim in self._sims:
                if sim.gen == "furnace_energy_kwh" and sim.furnace is f:
                    energy = out["counters"][sim.topic]
            iron = float(tw[0].sum())
            out["furnaces"][f.id] = {
                "energy_kwh": energy,
                "iron_t": iron,
                "tap_temp_c": float((tw[0] * tw[1]).sum() / iron) if iron else None,
                "kwh_per_t": energy / iron if energy is not None and iron else None,
            }
        site = out["site"]
        if "site_energy_kwh" in site and "site_reactive_kvarh" in site:
            p, q = site["site_energy_kwh"], site["site_reactive_kvarh"]
            site["power_factor"] = p / math.hypot(p, q)
        out["production"] = {**prod, "by_dn": by_dn}
        return out

    def stack_hourly_mg_m3(self, stack_id: str, pollutant: str, day: int) -> np.ndarray:
        """The true hourly means of a day (UTC hours 0–23), mg/m³: the mean of each hour's four
        15-minute blocks (``stack_blocks_mg_m3``)."""
        return self.stack_blocks_mg_m3(stack_id, pollutant, day).reshape(24, -1).mean(axis=1)

    def calibration(self, stack_id: str, day: int) -> tuple[float, float] | None:
        """The calibration of a stack's analysers on a day (s from its start, UTC), or None."""
        return calibration_interval(self.faults, self.seed, stack_id, day)

    # ---------------------------------------------------------------- the events
    def events(self, start: datetime, end: datetime | None = None) -> Iterator[Event]:
        """The plant's messages with start ≤ timestamp < end (end None: forever), in the order
        they are sent: time order, except that a late reading (fault ``late``) comes when its
        device sends it (``Event.sent_ms``). A late stretch stays within its day."""
        start_ms = _ms(start)
        end_ms = None if end is None else _ms(end)
        if start_ms < EPOCH_MS:
            raise UsageError(f"the simulated plant starts on {EPOCH:%Y-%m-%d} (UTC)")
        day = (start_ms - EPOCH_MS) // DAY_MS
        while end_ms is None or EPOCH_MS + day * DAY_MS < end_ms:
            yield from self._day_events(day, start_ms, end_ms)
            day += 1

    def _day_events(self, day: int, start_ms: int, end_ms: int | None) -> list[Event]:
        t0_ms = EPOCH_MS + day * DAY_MS
        lo = max(start_ms, t0_ms)
        hi = t0_ms + DAY_MS if end_ms is None else min(end_ms, t0_ms + DAY_MS)
        interval_ms = self.interval_s * 1000
        n_grid = DAY_S // self.interval_s
        faults = self.faults
        pipes = self._pipe_batches(day) if self._lines else {}
        label = {name: k for k, name in enumerate(FAULT_LABELS)}
        out: list[tuple[int, int, int, Event]] = []
        for device in self._devices:
            sims = [s for s in self._sims if s.device == device]
            phase_ms = int(rng_for(self.seed, "phase", "/".join(device)).integers(0, interval_ms))
            grid_ms = phase_ms + np.arange(n_grid, dtype=np.int64) * interval_ms
            parts_ts, parts_idx, parts_val, parts_fault = [], [], [], []
            seq0 = 0
            calib = calibration_interval(faults, self.seed, device[1], day)
            for sim in sims:
                ts_ms, values = self._series(sim, day, grid_ms, pipes)
                seq0 += self._count_prefix(sim, day)
                flag = np.zeros(ts_ms.size, dtype=np.int8)
                if sim.gen in FAULTY_SENSORS and (faults.drift or faults.spikes):
                    abs_s = (t0_ms - EPOCH_MS + ts_ms) / 1000.0
                    frac = drift_fraction(faults, self.seed, sim.topic, abs_s)
                    values = values + frac * sim.drift_abs
                    flag[frac > 0] = label["drift"]
                    spikes = spike_mask(faults, self.seed, sim.topic, day, ts_ms.size)
                    hit = spikes > 0
                    values = np.where(hit, self._spiked(sim, values, spikes), values)
                    flag[hit] = label["spike"]
                if sim.gen in ("discharge_conc_mg_l", "discharge_analyser_status"):
                    o_cal = outfall_calibration_interval(faults, self.seed, device[1], day)
                    if o_cal:
                        inside = (ts_ms >= o_cal[0] * 1000) & (ts_ms < o_cal[1] * 1000)
                        if sim.gen == "discharge_analyser_status":
                            values = np.where(inside, 1.0, values)
                        else:  # the analyser reads its standard solution, 0.9 × D
                            values = np.where(inside, SPAN_OF_C * self._limit_d(sim), values)
                        flag[inside] = label["outfall_calibration"]
                if device in self._noise_status and sim.gen in NOISE_SIGNALS:
                    n_cal = noise_calibration_interval(faults, self.seed, device[1], day)
                    if n_cal:
                        inside = (ts_ms >= n_cal[0] * 1000) & (ts_ms < n_cal[1] * 1000)
                        tone = 1.0 if sim.gen == "noise_monitor_status" else NOISE_CALIBRATOR_DBA
                        values = np.where(inside, tone, values)
                        flag[inside] = label["noise_calibration"]
                if calib and sim.gen in ("stack_conc_mg_m3", "stack_analyser_status"):
                    inside = (ts_ms >= calib[0] * 1000) & (ts_ms < calib[1] * 1000)
                    span = self._span_mg_m3(sim) if sim.gen == "stack_conc_mg_m3" else 1.0
                    values = np.where(inside, span, values)
                    flag[inside] = label["calibration"]
                if sim.gen in COUNTERS and (faults.resets or faults.rollovers):
                    values, reset, rolled = self._meter_faults(sim, day, ts_ms, values)
                    flag[rolled] = label["rollover"]
                    flag[reset] = label["reset"]
                if sim.gen == "stack_conc_mg_m3" and self._drift_target == (device[1], sim.key):
                    w = stack_drift_weight(faults, (t0_ms - EPOCH_MS + ts_ms) / 1000.0)
                    flag[(w > 0) & (flag < label["stack_drift"])] = label["stack_drift"]
                if self._hot_id is not None and self._touched_by_hot_furnace(sim):
                    flag[:] = label["hot_furnace"]
                parts_ts.append(ts_ms)
                parts_idx.append(np.full(ts_ms.size, sim.index))
                parts_val.append(np.round((values - sim.offset) / sim.scale, sim.decimals))
                parts_fault.append(flag)
            ts_ms = np.concatenate(parts_ts)
            idx = np.concatenate(parts_idx)
            val = np.concatenate(parts_val)
            flag = np.concatenate(parts_fault)
            order = np.lexsort((idx, ts_ms))
            ts_ms, idx, val, flag = ts_ms[order], idx[order], val[order], flag[order]
            seq = seq0 + np.arange(ts_ms.size, dtype=np.int64)
            keep = (ts_ms + t0_ms >= lo) & (ts_ms + t0_ms < hi)
            gaps = gap_intervals(faults, self.seed, "/".join(device), day)
            if gaps:
                lost = gap_mask(gaps, ts_ms / 1000.0) & keep
                self.stats["gap_dropped"] += int(lost.sum())
                keep &= ~lost
            # A late stretch is sent at its end, oldest first, a millisecond apart.
            sent = ts_ms.copy()
            is_late = np.zeros(ts_ms.size, bool)
            for a_s, b_s in late_intervals(faults, self.seed, "/".join(device), day):
                inside = (ts_ms >= a_s * 1000) & (ts_ms < b_s * 1000)
                k = np.flatnonzero(inside)
                sent[k] = round(b_s * 1000) + np.arange(k.size)
                is_late |= inside
            flag[is_late & (flag == 0)] = label["late"]
            by_index = {s.index: s for s in sims}
            integral = {s.index for s in sims if s.decimals == 0}
            tz = self.tz
            for t, i, v, fl, q, snt, lt in zip(
                (ts_ms[keep] + t0_ms).tolist(),
                idx[keep].tolist(),
                val[keep].tolist(),
                flag[keep].tolist(),
                seq[keep].tolist(),
                (sent[keep] + t0_ms).tolist(),
                is_late[keep].tolist(),
                strict=True,
            ):
                sim = by_index[i]
                fault = FAULT_LABELS[fl]
                if fault:
                    self.stats[fault] += 1
                if i in integral:
                    v = int(v)
                ev = Event(t, sim.topic, sim.route, v, sim.unit, q, None, fault, None, tz,
                           snt if lt else None)  # fmt: skip
                out.append((snt, t, i, ev))
        for t_s, kind, u in bad_payload_plan(faults, self.seed, day):
            t = t0_ms + int(t_s * 1000)
            if lo <= t < hi and self._sims:
                ev = self._bad_payload(t, kind, u)
                self.stats["bad_payload"] += 1
                out.append((t, t, 1 << 30, ev))
        out.sort(key=lambda x: (x[0], x[1], x[2]))
        self.stats["readings"] += sum(1 for x in out if x[3].raw is None)
        return [x[3] for x in out]

    def _touched_by_hot_furnace(self, sim: _Sim) -> bool:
        """The topics a hot furnace changes: its own energy, power, coke and taps, and the site
        meters that include its electricity. Its tap weights, times and the pipe cast from
        them do not change (same cycles)."""
        if sim.furnace is not None and sim.furnace.id == self._hot_id:
            return sim.gen in (
                "furnace_energy_kwh",
                "furnace_power_kw",
                "fuel_coke_kg",
                "tap_temp_c",
            )
        return sim.gen in ("site_energy_kwh", "site_reactive_kvarh")

    def _meter_faults(self, sim: _Sim, day: int, ts_ms: np.ndarray, values: np.ndarray):
        """A counter's readings after resets (it reads from zero at each) and rollovers (it
        wraps at ROLLOVER_MODULUS of its unit); with which readings each changed."""
        abs_s = (day * DAY_MS + ts_ms) / 1000.0
        reset = np.zeros(ts_ms.size, bool)
        if self.faults.resets and ts_ms.size:
            times = reset_times(self.faults, self.seed, sim.topic, float(abs_s[-1]) + 1.0)
            if times.size:
                at = np.searchsorted(times, abs_s, "right") - 1
                has = at >= 0
                offsets = np.array([self._counter_at(sim, t) for t in times])
                values = values - np.where(has, offsets[np.maximum(at, 0)], 0.0)
                reset = has
        rolled = np.zeros(ts_ms.size, bool)
        if self.faults.rollovers:
            modulus = ROLLOVER_MODULUS.get(glossary.SIGNALS[sim.route.signal].unit)
            if modulus:
                rolled = values >= modulus
                values = np.mod(values, modulus)
        return values, reset, rolled

    def _counter_at(self, sim: _Sim, abs_s: float) -> float:
        """A counter's true reading (canonical unit, no faults) at an instant since the epoch."""
        day = int(abs_s // DAY_S)
        ms = np.array([round((abs_s - day * DAY_S) * 1000)], dtype=np.int64)
        return float(self._series(sim, day, ms, None)[1][0])

    def _span_mg_m3(self, sim: _Sim) -> float:
        stack = self._stacks.get(sim.route.device)
        limit = stack.limits_mg_m3.get(sim.key) if stack else None
        return SPAN_OF_C * limit if limit else 4.0 * self._stack_level(sim.route.device, sim.key)

    def _spiked(self, sim: _Sim, values: np.ndarray, factors: np.ndarray) -> np.ndarray:
        """Outliers, but within the ingest's plausible range: a spike lands in InfluxDB and is
        the metrics' to handle (rejections are the bad payloads' part)."""
        if sim.gen == "tap_temp_c":
            spiked = values + 40.0 * factors  # +160 … +400 °C
        elif sim.gen == "ambient_temp_c":
            spiked = values + 4.0 * factors  # +16 … +40 °C
        else:
            spiked = values * factors
        return np.minimum(spiked, glossary.SIGNALS[sim.route.signal].high)

    # ---------------------------------------------------------------- series per signal
    def _series(self, sim: _Sim, day: int, grid_ms: np.ndarray, pipes) -> tuple[np.ndarray, ...]:
        """(time in ms from the day's start, canonical value) of one topic on one day."""
        g = sim.gen
        grid_s = grid_ms / 1000.0
        if g in ("furnace_energy_kwh", "fuel_coke_kg"):
            f = sim.furnace
            fd = self._furnace_day(f, day)
            cum = fd.cum_kwh if g == "furnace_energy_kwh" else fd.cum_coke_kg
            col = 0 if g == "furnace_energy_kwh" else 2
            base = self._furnace_base(f, g) + self._furnace_prefix(f, day)[col]
            return grid_ms, base + np.interp(grid_s, fd.bounds_s, cum)
        if g == "furnace_power_kw":
            f = sim.furnace
            e_now = self._energy_since_day_start(f, day, grid_s)
            e_before = self._energy_since_day_start(f, day, grid_s - self.interval_s)
            mean_kw = (e_now - e_before) * 3600.0 / self.interval_s
            noise = self._noise(sim, day).normal(0.0, 0.005, grid_s.size)
            return grid_ms, mean_kw * (1.0 + noise)
        if g in ("tap_iron_t", "tap_temp_c"):
            fd = self._furnace_day(sim.furnace, day)
            ts = np.round(fd.tap_s * 1000.0).astype(np.int64)
            return ts, (fd.tap_t if g == "tap_iron_t" else fd.tap_c)
        if g == "stack_conc_mg_m3":
            blocks = self.stack_blocks_mg_m3(sim.route.device, sim.key, day)
            noise = self._noise(sim, day).normal(0.0, 0.03, grid_s.size)
            return grid_ms, blocks[(grid_s // BLOCK_S).astype(int)] * (1.0 + noise)
        if g == "stack_flow_m3_h":
            rng = rng_for(self.seed, "stack-flow", sim.route.device, day)
            blocks = self._stack_flow_nominal(sim.route.device) * rng.normal(1.0, 0.04, BLOCKS)
            noise = self._noise(sim, day).normal(0.0, 0.01, grid_s.size)
            return grid_ms, blocks[(grid_s // BLOCK_S).astype(int)] * (1.0 + noise)
        if g == "water_m3":
            share = self._meter_share(sim)
            rates = self._water_day(day)[sim.key] * share  # m³/h per block
            cum = np.concatenate(([0.0], np.cumsum(rates * BLOCK_S / 3600.0)))
            bounds = np.arange(BLOCKS + 1) * float(BLOCK_S)
            base = self._water_base(sim) + self._water_prefix(sim.key, day) * share
            return grid_ms, base + np.interp(grid_s, bounds, cum)
        if g == "water_flow_m3_h":
            rates = self._water_day(day)[sim.key]
            noise = self._noise(sim, day).normal(0.0, 0.01, grid_s.size)
            return grid_ms, rates[(grid_s // BLOCK_S).astype(int)] * (1.0 + noise)
        if g == "ambient_temp_c":
            noise = self._noise(sim, day).normal(0.0, 0.15, grid_s.size)
            return grid_ms, self.ambient_temp_c(day, grid_s) + noise
        if g in BATCH_SIGNALS or g in LINE_SIGNALS:
            if pipes is None:
                pipes = self._pipe_batches(day)
            return pipes[sim.key][g]
        if g in SITE_COUNTERS:
            share = self._meter_share(sim)
            base = self._meter_base(sim) + self._site_prefix(g, day) * share
            return grid_ms, base + self._site_since_day_start(g, day, grid_s) * share
        if g == "stack_o2_pct":
            rng = rng_for(self.seed, "stack-o2", sim.route.device, day)
            level = rng_for(self.seed, "stack-o2", sim.route.device).uniform(*STACK_O2_PCT)
            blocks = np.clip(level + rng.normal(0.0, 0.4, BLOCKS), 12.0, 20.5)
            noise = self._noise(sim, day).normal(0.0, 0.05, grid_s.size)
            return grid_ms, blocks[(grid_s // BLOCK_S).astype(int)] + noise
        if g == "stack_analyser_status":
            return grid_ms, np.zeros(grid_s.size)
        if g in ("discharge_conc_mg_l", "discharge_analyser_status"):
            ts = grid_ms[:: self._step(g)]
            if g == "discharge_analyser_status":
                return ts, np.zeros(ts.size)
            return ts, self._discharge_mg_l(sim, day, ts.size)
        if g == "noise_leq_dba":
            ts = grid_ms[:: self._step(g)]
            return ts, self._noise_leq_dba(sim, day, ts)
        if g == "noise_monitor_status":
            ts = grid_ms[:: self._step(g)]
            return ts, np.zeros(ts.size)
        raise AssertionError(g)  # pragma: no cover - _build only keeps known generators

    def _noise(self, sim: _Sim, day: int) -> np.random.Generator:
        return rng_for(self.seed, "noise", sim.topic, day)

    def _count_prefix(self, sim: _Sim, day: int) -> int:
        """Readings a topic sent on all days before `day` (its share of the device's seq)."""
        if sim.gen in GRID_SIGNALS:
            return day * (DAY_S // self.interval_s)
        if sim.gen in ("discharge_conc_mg_l", "discharge_analyser_status", *NOISE_SIGNALS):
            return day * (DAY_S // self.interval_s // self._step(sim.gen))
        if sim.gen in ("tap_iron_t", "tap_temp_c"):
            return int(self._furnace_prefix(sim.furnace, day)[1])
        if sim.gen in BATCH_SIGNALS:
            return day * 24 * len(self.cfg.furnaces)  # a batch per furnace and hour
        return day * 24  # hourly line totals

    def _prefix(self, key: str, day: int, total) -> np.ndarray:
        """Sum of total(k) over the days k < day since the epoch, extended lazily and kept."""
        sums = self._prefixes.get(key)
        if sums is None:
            sums = self._prefixes[key] = [np.zeros_like(np.asarray(total(0), dtype=float))]
        while len(sums) <= day:
            sums.append(sums[-1] + total(len(sums) - 1))
        return sums[day]

    # ---------------------------------------------------------------- furnaces
    def _furnace_const(self, f: Furnace) -> tuple[float, float]:
        """(holding losses kW, base of the energy counter kWh) of a furnace."""
        rng = rng_for(self.seed, "furnace-const", f.id)
        hold_kw = f.capacity * rng.uniform(*HOLDING_KW_PER_T)
        return hold_kw, float(rng.uniform(2e5, 2e6))

    def _furnace_base(self, f: Furnace, gen: str) -> float:
        base = self._furnace_const(f)[1]
        return base if gen == "furnace_energy_kwh" else base * 3.0

    def _furnace_prefix(self, f: Furnace, day: int) -> np.ndarray:
        return self._prefix("furnace:" + f.id, day, lambda k: self._make_furnace_day(f, k).totals())

    def _furnace_day(self, f: Furnace, day: int) -> _FurnaceDay:
        key = (f.id, day)
        fd = self._furnace_cache.get(key)
        if fd is None:
            fd = self._furnace_cache[key] = self._make_furnace_day(f, day)
            if len(self._furnace_cache) > 4 * max(1, len(self.cfg.furnaces)):
                self._furnace_cache.popitem(last=False)
        return fd

    def _energy_since_day_start(self, f: Furnace, day: int, t_s: np.ndarray) -> np.ndarray:
        """Electricity used from the day's start to t_s (negative before it: from the day before)."""
        fd = self._furnace_day(f, day)
        out = np.interp(t_s, fd.bounds_s, fd.cum_kwh)
        before = t_s < 0
        if before.any():
            prev = self._furnace_day(f, day - 1) if day > 0 else None
            if prev is None:
                hold_kw = self._furnace_const(f)[0]
                out[before] = t_s[before] * hold_kw / 3600.0
            else:
                out[before] = (
                    np.interp(t_s[before] + DAY_S, prev.bounds_s, prev.cum_kwh) - prev.cum_kwh[-1]
                )
        return out

    def _make_furnace_day(self, f: Furnace, day: int) -> _FurnaceDay:
        if f.kind == "cupola":
            return self._make_cupola_day(f, day)
        rng = rng_for(self.seed, "furnace", f.id, day)
        n = 256  # more cycles than fit in a day
        hold_kw_nominal = self._furnace_const(f)[0]
        cap = f.capacity
        tonnes = cap * rng.uniform(0.85, 1.0, n)
        spec = tapping_temp_spec_c(f, self.cfg.plant.product)
        drawn = spec + rng.uniform(-5.0, 25.0, n)
        temp = np.clip(drawn, *TAP_TEMP_RANGE_C)
        hot = f.id == self._hot_id
        received = self._hot_metal_c
        spread = 2.5 * HOT_METAL_SPREAD_C
        hot_metal = np.clip(
            received + rng.normal(0.0, HOT_METAL_SPREAD_C, n), received - spread, received + spread
        )
        e_superheat = tonnes * (temp - hot_metal) * rng.uniform(*SUPERHEAT_KWH_PER_T_K, n)
        p_heat = cap * RATED_KW_PER_T * rng.uniform(0.85, 0.95, n)
        p_hold = hold_kw_nominal * rng.uniform(0.95, 1.05, n)
        t_charge = rng.uniform(120.0, 180.0, n)
        t_heat = e_superheat / (p_heat - p_hold) * 3600.0
        t_rest = rng.uniform(60.0, 360.0, n) + rng.uniform(60.0, 120.0, n)  # wait, then tap
        if hot:
            # Fault hot_furnace: the same cycles, hotter iron, the heating power that takes.
            k_t = e_superheat / (tonnes * (temp - hot_metal))
            temp = np.clip(drawn + self.faults.hot_furnace_k, *TAP_TEMP_RANGE_C)
            e_hot = tonnes * (temp - hot_metal) * k_t
            p_heat = p_hold + e_hot * 3600.0 / t_heat
        measured = np.clip(temp + rng.normal(0.0, 2.0, n), *TAP_TEMP_RANGE_C)
        ends = np.cumsum(t_charge + t_heat + t_rest)
        m = int(np.searchsorted(ends, DAY_S, side="right"))  # whole cycles within the day
        # Each cycle: charge at holding power, superheat at heating power, hold and tap.
        durations = np.stack([t_charge[:m], t_heat[:m], t_rest[:m]], axis=1).ravel()
        powers = np.stack([p_hold[:m], p_heat[:m], p_hold[:m]], axis=1).ravel()
        tail = DAY_S - (ends[m - 1] if m else 0.0)  # shift change: the furnace holds its heel
        durations = np.append(durations, tail)
        powers = np.append(powers, hold_kw_nominal)
        bounds = np.concatenate(([0.0], np.cumsum(durations)))
        bounds[-1] = float(DAY_S)
        cum = np.concatenate(([0.0], np.cumsum(durations * powers / 3600.0)))
        return _FurnaceDay(bounds, cum, np.zeros_like(cum), ends[:m], tonnes[:m], measured[:m])

    def _make_cupola_day(self, f: Furnace, day: int) -> _FurnaceDay:
        rng = rng_for(self.seed, "furnace", f.id, day)
        n = 256
        rate_t_h = f.capacity * rng.uniform(0.8, 1.0)
        coke_kg_per_t = rng.uniform(100.0, 130.0) / COKE_KGCE_PER_KG
        blower_kw = rate_t_h * 30.0 * rng.uniform(0.95, 1.05)
        durations = rng.uniform(600.0, 1200.0, n)
        ends = np.cumsum(durations)
        m = int(np.searchsorted(ends, DAY_S, side="right"))
        tonnes = rate_t_h * durations[:m] / 3600.0
        spec = tapping_temp_spec_c(f, self.cfg.plant.product)
        drawn = spec + rng.uniform(0.0, 40.0, n)
        if f.id == self._hot_id:
            # Fault hot_furnace: hotter iron, and the coke Table C.1 note 1 allows for it
            # (0.6 kgce/t per K), so the cupola's limits and its use move together.
            drawn = drawn + self.faults.hot_furnace_k
            coke_kg_per_t += 0.6 * self.faults.hot_furnace_k / COKE_KGCE_PER_KG
        temp = np.clip(drawn, *TAP_TEMP_RANGE_C)[:m]
        measured = np.clip(temp + rng.normal(0.0, 2.0, m), *TAP_TEMP_RANGE_C)
        bounds = np.array([0.0, float(DAY_S)])
        cum_kwh = np.array([0.0, blower_kw * 24.0])
        cum_coke = np.array([0.0, rate_t_h * 24.0 * coke_kg_per_t])
        return _FurnaceDay(bounds, cum_kwh, cum_coke, ends[:m], tonnes, measured)

    # ---------------------------------------------------------------- casting
    def _pipe_batches(self, day: int) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """The production events of a day per casting line: {signal: (ms from the day's
        start, values)}.

        Every hour each line makes one batch per furnace (its iron, one DN drawn from the
        furnace's DN range), stamped hh:00:00 plus the furnace's index in seconds: the batch
        holds the pipe cast from the iron tapped in the hour before, every furnace's iron shared
        equally between the casting lines. A batch's good pipes (``pipe_output_*``) come at a
        yield of 0.88–0.93 of the iron; scrap adds SCRAP_SHARE of the cast pieces; all cast
        pipes but UNTESTED_SHARE go through the online hydrostatic test and the inspection,
        passing at first with the drawn first-pass shares. Per line and hour (at hh:00:00) come
        the core sand mixed (4 kg + 1 % of a pipe's mass per pipe cast) and reclaimed, and the
        metal returns arising (scrap, cut ends) and charged back.
        """
        out = {}
        hours_ms = np.arange(24, dtype=np.int64) * 3_600_000
        for line in self._lines:
            rng = rng_for(self.seed, "pipe", line, day)
            q = rng_for(self.seed, "quality", line, day)
            scrap_share = q.uniform(*SCRAP_SHARE)
            untested = q.uniform(*UNTESTED_SHARE)
            p_hydro = q.uniform(*HYDRO_FIRST_PASS)
            p_insp = q.uniform(*INSPECTION_FIRST_PASS)
            reclaimed = q.uniform(*SAND_RECLAIMED)
            charged = q.uniform(*RETURNS_CHARGED)
            cols: dict[str, list[np.ndarray]] = {k: [] for k in BATCH_SIGNALS}
            stamps = []
            sand = np.zeros(24)
            returns = np.zeros(24)
            for k, f in enumerate(self.cfg.furnaces):
                iron = np.zeros(24)
                for d, shift in ((day - 1, -DAY_S), (day, 0)):
                    if d < 0:
                        continue
                    fd = self._furnace_day(f, d)
                    hour = np.floor((fd.tap_s + shift) / 3600.0).astype(int) + 1
                    ok = (hour >= 0) & (hour < 24)
                    np.add.at(iron, hour[ok], fd.tap_t[ok])
                iron /= len(self._lines)
                sizes = pipe_sizes(f)
                dn = np.array(sizes)[rng.integers(0, len(sizes), 24)]
                mass = np.array([pipe_mass_t(int(x)) for x in dn])
                good = np.floor(iron * rng.uniform(*PIPE_YIELD, 24) / mass + rng.random(24))
                good_t = good * mass * rng.uniform(0.99, 1.01, 24)
                scrap = q.binomial(good.astype(np.int64), scrap_share / (1.0 - scrap_share))
                cast = good + scrap
                tested = cast - q.binomial(cast.astype(np.int64), untested)
                hydro_ok = tested - q.binomial(tested.astype(np.int64), 1.0 - p_hydro)
                insp_ok = tested - q.binomial(tested.astype(np.int64), 1.0 - p_insp)
                scrap_t = scrap * mass * q.uniform(0.99, 1.01, 24)
                stamps.append(hours_ms + 1000 * k)
                for name, v in (
                    ("pipe_dn", dn),
                    ("pipe_cast_count", cast),
                    ("pipe_output_count", good),
                    ("pipe_output_t", good_t),
                    ("pipe_scrap_t", scrap_t),
                    ("hydro_tested_count", tested),
                    ("hydro_passed_count", hydro_ok),
                    ("inspected_count", tested),
                    ("inspection_passed_count", insp_ok),
                ):
                    cols[name].append(np.asarray(v, dtype=float))
                sand += cast * (0.004 + 0.01 * mass)
                returns += scrap_t + CUT_ENDS * good_t
            ts = np.concatenate(stamps) if stamps else hours_ms[:0]
            order = np.argsort(ts, kind="stable")
            line_out = {k: (ts[order], np.concatenate(v)[order]) for k, v in cols.items()}
            line_out["sand_used_t"] = (hours_ms, sand)
            line_out["sand_reclaimed_t"] = (hours_ms, sand * reclaimed)
            line_out["returns_arising_t"] = (hours_ms, returns)
            line_out["returns_charged_t"] = (hours_ms, returns * charged)
            out[line] = line_out
        return out

    # ---------------------------------------------------------------- site utilities
    def _utility_day(self, day: int) -> dict[str, np.ndarray | float]:
        """The site's auxiliary electricity (kW), natural gas and oxygen (m³/h) per 15-minute
        block, and its power factor, of one day."""
        rng = rng_for(self.seed, "utility", day)
        cap = self._capacity_t
        aux = AUX_KW_PER_T * cap * rng.uniform(0.9, 1.1) * rng.lognormal(0.0, 0.05, BLOCKS)
        gas = GAS_M3_H_PER_T * cap * rng.uniform(0.9, 1.1) * rng.lognormal(0.0, 0.08, BLOCKS)
        oxy = OXYGEN_M3_H_PER_T * cap * rng.uniform(0.8, 1.2) * rng.lognormal(0.0, 0.1, BLOCKS)
        return {
            "aux_kw": aux,
            "fuel_gas_m3": gas,
            "oxygen_m3": oxy,
            "pf": rng.uniform(*POWER_FACTOR),
        }

    def power_factor(self, day: int) -> float:
        """The site's power factor on a day (UTC): kWh / sqrt(kWh² + kvarh²) of that day."""
        return float(self._utility_day(day)["pf"])

    @staticmethod
    def _blocks_until(rates: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        cum = np.concatenate(([0.0], np.cumsum(rates * BLOCK_S / 3600.0)))
        return np.interp(t_s, np.arange(BLOCKS + 1) * float(BLOCK_S), cum)

    def _site_since_day_start(self, g: str, day: int, t_s: np.ndarray) -> np.ndarray:
        """A site meter's consumption from the day's start (UTC) to t_s (0 ≤ t_s ≤ a day)."""
        u = self._utility_day(day)
        if g in ("fuel_gas_m3", "oxygen_m3"):
            return self._blocks_until(u[g], t_s)
        kwh = self._blocks_until(u["aux_kw"], t_s)
        for f in self.cfg.furnaces:
            fd = self._furnace_day(f, day)
            kwh = kwh + np.interp(t_s, fd.bounds_s, fd.cum_kwh)
        if g == "site_energy_kwh":
            return kwh
        pf = float(u["pf"])
        return kwh * math.sqrt(1.0 - pf * pf) / pf  # kvarh = kWh · tan φ

    def _site_prefix(self, g: str, day: int) -> float:
        return float(
            self._prefix(
                "site:" + g,
                day,
                lambda k: np.asarray(self._site_since_day_start(g, k, np.array([float(DAY_S)]))[0]),
            )
        )

    def _meter_base(self, sim: _Sim) -> float:
        return float(rng_for(self.seed, "meter-base", sim.topic).uniform(1e4, 1e5))

    # ---------------------------------------------------------------- outfall and noise
    def _step(self, gen: str) -> int:
        """Every how many grid points a sampled signal is published: an outfall analyser once an
        hour, a noise monitor (its Leq and its status) once a minute (every grid point when the grid is coarser, or does
        not divide the period)."""
        period = 60 if gen in NOISE_SIGNALS else 3600
        if self.interval_s >= period or period % self.interval_s:
            return 1
        return period // self.interval_s

    def _limit_d(self, sim: _Sim) -> float:
        # The plant config refuses a discharge_conc_mg_l route of a device that is not an
        # outfall or of a pollutant without a limit D (plant._check_table6_routes).
        return self._outfalls[sim.route.device].limits_mg_l[sim.key]

    def _discharge_mg_l(self, sim: _Sim, day: int, n: int) -> np.ndarray:
        """An outfall's samples of one day: a level drawn per outfall and pollutant as a share of
        D, a daily swing and a sample-to-sample noise (treated water changes slowly)."""
        limit = self._limit_d(sim)
        level = rng_for(self.seed, "outfall-level", sim.route.device, sim.key).uniform(
            *DISCHARGE_SHARE_OF_D
        )
        rng = rng_for(self.seed, "outfall", sim.route.device, sim.key, day)
        daily = level * max(0.2, 1.0 + rng.normal(0.0, DISCHARGE_DAILY_SD))
        noise = self._noise(sim, day).normal(0.0, 0.05, n)
        return np.maximum(limit * daily * (1.0 + noise), 0.0)

    def _noise_leq_dba(self, sim: _Sim, day: int, ts_ms: np.ndarray) -> np.ndarray:
        """A boundary point's 1-minute Leqs: a level a few dB below the period's limit E (the
        plant-local day or night of GB 12348), with minute-to-minute spread."""
        bn = self.cfg.boundary_noise
        t0 = EPOCH + timedelta(days=day)
        # The plant-local hour of each UTC hour of the day (zoneinfo handles DST).
        local_h = np.array([(t0 + timedelta(hours=h)).astimezone(self.tz).hour for h in range(24)])
        lo, hi = bn.day_start_h, bn.night_start_h
        is_day_h = (
            (local_h >= lo) & (local_h < hi) if lo < hi else ~((local_h >= hi) & (local_h < lo))
        )
        is_day = is_day_h[(ts_ms // 3_600_000).astype(int)]
        below = {
            p: rng_for(self.seed, "noise-level", sim.route.device, p).uniform(*NOISE_BELOW_E_DBA[p])
            for p in ("day", "night")
        }
        mean = np.where(
            is_day, bn.day_limit_dba - below["day"], bn.night_limit_dba - below["night"]
        )
        return mean + self._noise(sim, day).normal(0.0, NOISE_MINUTE_SD_DBA, ts_ms.size)

    # ---------------------------------------------------------------- stacks
    def _stack_level(self, stack_id: str, pollutant: str) -> float:
        """Typical concentration of a pollutant in a stack, mg/m³."""
        rng = rng_for(self.seed, "stack-level", stack_id, pollutant)
        stack = self._stacks.get(stack_id)
        limit = stack.limits_mg_m3.get(pollutant) if stack else None
        if pollutant == "particulate":
            # After bag filters 2–10 mg/m³ (domain.md §5); never above half a strict limit.
            level = rng.uniform(4.0, 6.5)
            return min(level, 0.25 * limit) if limit else level
        default_limit = {"so2": 200.0, "nox": 300.0, "nmhc": 100.0, "co": 1000.0}
        return (limit or default_limit.get(pollutant, 10.0)) * rng.uniform(0.15, 0.35)

    def stack_blocks_mg_m3(self, stack_id: str, pollutant: str, day: int) -> np.ndarray:
        """The true concentration of each 15-minute block of a day (UTC), mg/m³, before sensor
        noise, faults of the analyser and calibration: the ground truth of hourly means (the
        mean of an hour's four blocks). With ``stack_drift`` on the drifting stack it rises
        towards ``stack_drift_multiple`` × C (the block's weight at its middle)."""
        rng = rng_for(self.seed, "stack", stack_id, pollutant, day)
        level = self._stack_level(stack_id, pollutant)
        blocks = level * rng.uniform(0.85, 1.15) * rng.lognormal(0.0, 0.15, BLOCKS)
        if pollutant == "particulate" and level >= 4.0:
            blocks = np.clip(blocks, 2.0, 10.0)
        if self._drift_target == (stack_id, pollutant):
            stack = self._stacks[stack_id]
            target = self.faults.stack_drift_multiple * stack.limits_mg_m3[pollutant]
            mid_s = day * DAY_S + (np.arange(BLOCKS) + 0.5) * BLOCK_S
            w = stack_drift_weight(self.faults, mid_s)
            blocks = blocks * (1.0 + w * (target / level - 1.0))
        return blocks

    def _stack_flow_nominal(self, stack_id: str) -> float:
        return float(rng_for(self.seed, "stack-flow", stack_id).uniform(40_000.0, 120_000.0))

    # ---------------------------------------------------------------- water
    def _water_day(self, day: int) -> dict[str, np.ndarray]:
        """Flows per 15-minute block of the whole plant, m³/h, by meter role.

        - cooling: circulating Q and make-up Q (1 - r) / r, so the recirculation rate
          circulating / (circulating + make-up) is r, 95–98 % (domain.md §5), drawn per day;
        - process: demand D, of which a share f (86–93 %) is treated wastewater reused and the
          rest fresh intake;
        - total intake = make-up + process intake + other uses (offices, washing), of which a
          share s (7–13 %) is municipal reclaimed water.
        """
        rng = rng_for(self.seed, "water", day)
        cap = self._capacity_t
        r = rng.uniform(0.95, 0.98)
        f = rng.uniform(0.86, 0.93)
        s = rng.uniform(0.07, 0.13)
        circ = (200.0 + 25.0 * cap) * rng.normal(1.0, 0.03, BLOCKS)
        makeup = circ * (1.0 - r) / r
        demand = 5.0 * cap * rng.uniform(0.8, 1.2, BLOCKS)
        process_in = demand * (1.0 - f)
        other = 10.0 * rng.uniform(0.5, 1.5, BLOCKS)
        total = makeup + process_in + other
        return {
            "cooling_circulating": circ,
            "cooling_makeup": makeup,
            "process_intake": process_in,
            "process_reused": demand * f,
            "reclaimed_intake": total * s,
            "total_intake": total,
        }

    def _water_prefix(self, role: str, day: int) -> float:
        return float(
            self._prefix(
                "water:" + role,
                day,
                lambda k: np.asarray(self._water_day(k)[role].sum() * BLOCK_S / 3600.0),
            )
        )

    def _meter_share(self, sim: _Sim) -> float:
        """A meter's share of its role's flow (meters of one role split it in fixed weights)."""
        ids = self._roles.get(sim.key, [sim.route.device])
        if len(ids) == 1:
            return 1.0
        w = {i: rng_for(self.seed, "meter-share", i).uniform(0.5, 1.5) for i in ids}
        return w.get(sim.route.device, 1.0) / sum(w.values())

    def _water_base(self, sim: _Sim) -> float:
        return float(rng_for(self.seed, "meter-base", sim.route.device).uniform(1e4, 1e5))

    # ---------------------------------------------------------------- weather
    def ambient_temp_c(self, day: int, t_s: np.ndarray) -> np.ndarray:
        """Air temperature at t_s seconds after the start of `day` (UTC), without sensor noise.

        Annual mean from the config (`annual_mean_air_temp_c`, else 16 °C), a yearly swing of
        ±11 °C peaking in late July (a northern-hemisphere site), a daily swing of ±4 °C peaking
        at 15:00 plant time, and weather: an offset drawn each day at 00:00 UTC (σ 2.5 °C),
        interpolated linearly through the day.
        """
        mean = self.cfg.plant.annual_mean_air_temp_c
        mean = 16.0 if mean is None else mean
        abs_s = day * DAY_S + t_s
        peak_s = (datetime(2024, 7, 25, tzinfo=timezone.utc) - EPOCH).total_seconds()
        yearly = 11.0 * np.cos(2 * np.pi * (abs_s - peak_s) / (365.2425 * DAY_S))
        utc_offset_h = _utc_offset_h(self.tz, EPOCH + timedelta(days=day, hours=12))
        local_h = (t_s / 3600.0 + utc_offset_h) % 24.0
        daily = 4.0 * np.cos(2 * np.pi * (local_h - 15.0) / 24.0)
        w0 = rng_for(self.seed, "weather", day).normal(0.0, 2.5)
        w1 = rng_for(self.seed, "weather", day + 1).normal(0.0, 2.5)
        weather = w0 + (w1 - w0) * (t_s / DAY_S)
        return mean + yearly + daily + weather

    # ---------------------------------------------------------------- bad payloads
    def _bad_payload(self, t_ms: int, kind: str, u: float) -> Event:
        sim = self._sims[min(int(u * len(self._sims)), len(self._sims) - 1)]
        root, plant = self.cfg.mqtt.topic_root, self.cfg.plant.id
        ts = datetime.fromtimestamp(t_ms / 1000, tz=self.tz).isoformat(timespec="milliseconds")
        sig = glossary.SIGNALS[sim.route.signal]
        good_value = round((sig.low + min(sig.high, sig.low + 100.0)) / 2 - sim.offset, 1)
        good_value = round(good_value / sim.scale, 3)
        body: dict | None = {"ts": ts, "value": good_value, "unit": sim.unit}
        raw: bytes | None = None
        topic, route = sim.topic, sim.route
        if kind == "malformed_json":
            raw = json.dumps(body).encode()[:-7]
        elif kind == "bad_shape":
            raw = json.dumps([body]).encode()
        elif kind == "unknown_topic":
            name = "nosuch"
            while (sim.route.area, sim.route.device, name) in self.cfg.routes:
                name += "_x"
            topic, route = "/".join((root, plant, sim.route.area, sim.route.device, name)), None
        elif kind == "unknown_plant":
            other = ("other-" + plant)[:63]
            topic = "/".join((root, other, sim.route.area, sim.route.device, sim.route.name))
            route = None
        elif kind == "missing_timestamp":
            del body["ts"]
        elif kind == "bad_timestamp":
            body["ts"] = ts[:19]  # no offset
        elif kind == "timestamp_future":
            body["ts"] = datetime.fromtimestamp(t_ms / 1000 + 3650 * DAY_S, tz=self.tz).isoformat()
        elif kind == "missing_value":
            del body["value"]
        elif kind == "bad_value":
            body["value"] = str(good_value)
        elif kind == "non_finite":
            raw = json.dumps({**body, "value": float("nan")}).encode()
        elif kind == "unknown_unit":
            body["unit"] = "furlong"
        elif kind == "implausible":
            body["value"] = round((sig.high * 10 + 1000.0 - sim.offset) / sim.scale, 3)
        elif kind == "bad_seq":
            body["seq"] = -1
        elif kind == "unknown_key":
            body["uint"] = body.pop("unit")
        else:  # pragma: no cover - Faults.bad_kinds is validated against the list
            raise ValueError(kind)
        if raw is None:
            raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return Event(
            t_ms, topic, route, None, None, None, raw=raw, fault="bad_payload", reject=kind,
            tz=self.tz,
        )  # fmt: skip


def iter_batches(
    cfg: PlantConfig,
    events: Iterable[Event],
    *,
    max_readings: int | None = None,
    window_s: int = 3600,
) -> Iterator[tuple[str, bytes, list[Event]]]:
    """Group good readings into `_batch` messages per device; bad payloads stay single.

    Yields (topic, payload, the events it carries) in send order: the readings of one device
    sent within one `window_s` window (UTC, from the epoch) go into one batch, split when it reaches
    `max_readings` (default: the ingest's `max_batch_readings`, and no more than its
    `max_payload_bytes` allow at about 120 bytes a reading).
    """
    limit = max_readings or max(
        1, min(cfg.ingest.max_batch_readings, cfg.ingest.max_payload_bytes // 120)
    )
    root, plant = cfg.mqtt.topic_root, cfg.plant.id
    window_ms = window_s * 1000
    open_batches: dict[tuple[str, str], list[Event]] = {}
    current = None

    def flush(key: tuple[str, str]) -> tuple[str, bytes, list[Event]]:
        evs = open_batches.pop(key)
        payload = {"readings": [e.reading() for e in evs]}
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return "/".join((root, plant, key[0], key[1], "_batch")), data, evs

    for ev in events:
        window = ev.send_ms // window_ms  # a late reading goes with those sent when it is
        if window != current:
            for key in sorted(open_batches):
                yield flush(key)
            current = window
        if ev.raw is not None:
            yield ev.topic, ev.raw, [ev]
            continue
        key = ev.device_key
        batch = open_batches.setdefault(key, [])
        batch.append(ev)
        if len(batch) >= limit:
            yield flush(key)
    for key in sorted(open_batches):
        yield flush(key)


def _ms(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("a simulation time needs a time zone (e.g. UTC)")
    return round(t.timestamp() * 1000)


def _utc_offset_h(tz: tzinfo, at: datetime) -> float:
    offset = at.astimezone(tz).utcoffset()
    return offset.total_seconds() / 3600.0 if offset else 0.0
