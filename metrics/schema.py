"""The rollup points the engine writes: measurement names, tags, fields (metrics/README.md).

Tags are what a point is *of* and never change for it: ``plant``, the item (``furnace``, or
``stack`` and ``pollutant``) and ``window`` (the window's kind: hour, shift, day, month, year,
trailing_12m). Their values are few (a plant has a handful of furnaces and stacks; six kinds),
so the series count stays small. Everything that varies with the data is a field: values (unit
in the name), ``label`` (the plant-local label), ``end_ns``, ``n``, ``coverage``, ``status``,
``lacking``. No field has a tag's name (InfluxDB 3 refuses a tag and a field of one name). The
timestamp is the window's start, UTC ns.

A field without a value (a value the window does not have) is left out, never written as 0 or
NaN; ``status`` says why.
"""

from __future__ import annotations

from typing import Any

from greenfoundry.store import line

C1_FURNACE = "gf_c1_furnace"
C1_PLANT = "gf_c1_plant"
AIR_STACK = "gf_air_stack"
AIR_PLANT = "gf_air_plant"
T5_PLANT = "gf_t5_plant"
A1_PLANT = "gf_a1_plant"
CO2_PLANT = "gf_co2_plant"
WATER_OUTFALL = "gf_water_outfall"
WATER_PLANT = "gf_water_plant"
NOISE_POINT = "gf_noise_point"
NOISE_PLANT = "gf_noise_plant"
MEASUREMENTS = (
    C1_FURNACE, C1_PLANT, AIR_STACK, AIR_PLANT, T5_PLANT, A1_PLANT, CO2_PLANT,
    WATER_OUTFALL, WATER_PLANT, NOISE_POINT, NOISE_PLANT,
)  # fmt: skip
TAGS = ("plant", "furnace", "stack", "pollutant", "indicator", "outfall", "point", "window")
# The rollup name of each plant measurement in the state (`metrics status`).
ROLLUP_OF = {T5_PLANT: "t5", A1_PLANT: "a1", CO2_PLANT: "co2"}

# The plant indicators (rollups.plant_finish), by the tag `indicator`: (measurement, the field
# holding the value, its unit, the standard's row `metrics indicators` fills, or None). A
# first-pass rate of one Table A.1 DN range is `<name>:<range>` (`hydro_first_pass:DN80-300`).
PLANT_INDICATORS: dict[str, tuple[str, str, str, str | None]] = {
    "energy_per_t_pipe": (T5_PLANT, "kgce_per_t", "kgce/t", "energy.pipe.kgce_per_t"),
    "power_factor": (T5_PLANT, "power_factor", "1", "energy.power_factor.power_factor"),
    "cooling_recirculation": (T5_PLANT, "rate_pct", "%", "energy.water.cooling_recirculation"),
    "process_wastewater_reuse": (
        T5_PLANT, "rate_pct", "%", "energy.water.process_wastewater_reuse",
    ),
    "reclaimed_share": (T5_PLANT, "rate_pct", "%", "energy.water.reclaimed_share"),
    "water_reuse": (T5_PLANT, "rate_pct", "%", None),
    "sand_reuse": (T5_PLANT, "rate_pct", "%", "energy.sand_waste.resin_sand_reuse"),
    "metal_returns": (T5_PLANT, "rate_pct", "%", "energy.sand_waste.metal_returns"),
    "scrap_rate": (A1_PLANT, "rate_pct", "%", "techeco.scrap.scrap_rate"),
    "process_yield": (A1_PLANT, "rate_pct", "%", "techeco.yield.process_yield"),
    "hydro_first_pass": (A1_PLANT, "rate_pct", "%", "techeco.quality.hydro_first_pass"),
    "pipe_first_pass": (A1_PLANT, "rate_pct", "%", "techeco.quality.pipe_first_pass"),
    "online_inspection_rate": (
        A1_PLANT, "rate_pct", "%", "techeco.quality.online_inspection_rate",
    ),
    "output": (A1_PLANT, "output_10kt", "万吨", None),  # the row takes three years: indicators.py
    "co2_per_t_pipe": (CO2_PLANT, "kg_co2_per_t", "kgCO2/t", None),
    "co2_per_t_liquid_iron": (CO2_PLANT, "kg_co2_per_t", "kgCO2/t", None),
}  # fmt: skip


def plant_spec(name: str) -> tuple[str, str, str, str | None]:
    return PLANT_INDICATORS[name.split(":", 1)[0]]


UNIT_FIELD = {"kWh/t": "kwh_per_t", "kgce/t": "kgce_per_t"}


_TAG_SET = frozenset(TAGS)


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    # Called for every point a backfill writes: a plain float, str or int (most fields) is
    # decided by its type alone; anything else as before.
    out = {}
    for k, v in fields.items():
        assert k not in _TAG_SET, k
        kind = type(v)
        if kind is float:
            if v == v:
                out[k] = v
        elif kind is str or kind is int:
            out[k] = v
        elif v is None or (isinstance(v, float) and v != v):
            continue
        elif isinstance(v, tuple | list):
            out[k] = "; ".join(str(x) for x in v)
        else:
            out[k] = v
    return out


def point(measurement: str, tags: dict[str, str], window, fields: dict[str, Any]) -> str:
    base = {"label": window.label, "end_ns": int(window.end.value)}
    return line(measurement, tags, _clean({**base, **fields}), int(window.start.value))


def c1_fields(r) -> dict[str, Any]:
    """A ``table_c1.FurnaceC1`` or ``PlantC1`` as fields; the value and the limits are named by
    the row's unit (``kwh_per_t``, ``limit_tier1_kwh_per_t`` …; kgce for a cupola row)."""
    unit = UNIT_FIELD.get(r.unit or "")
    lim = r.limits.limits if hasattr(r.limits, "limits") else r.limits
    f: dict[str, Any] = {}
    if unit:
        f[unit] = r.value
        if lim:
            for k, v in enumerate(lim, start=1):
                f[f"limit_tier{k}_{unit}"] = float(v)
    energy_unit = getattr(r, "energy_unit", None) or ("kWh" if r.unit == "kWh/t" else "kgce")
    f[f"energy_{energy_unit.lower()}"] = r.energy
    f["iron_t"] = r.iron_t
    f["tier"] = r.tier
    f["li"] = r.li
    f["n"] = int(r.n)
    f["coverage"] = float(r.coverage)
    f["status"] = r.status
    f["lacking"] = r.lacking
    return f


SHARES = ("share_tier1", "share_tier2", "share_tier3", "share_no_tier")


def _hourly_multiple_fields(res: dict, of: str, **more: Any) -> dict[str, Any]:
    """The fields of a window's hourly multiples (``rollups._hourly_finish``) of the limit
    ``of`` ("c" a stack's, "e" a boundary point's): the value, the highest and mean hourly
    multiple, ``more`` (after them), the hours, the band shares and the hour of the highest."""
    f = {
        f"multiple_of_{of}": res["value"],
        f"max_multiple_of_{of}": res["max"],
        f"mean_multiple_of_{of}": res["mean"],
        **more,
        "valid_hours": int(res["valid_hours"]),
        "hours": int(res["hours"]),
        "n": int(res["n"]),
        "coverage": float(res["coverage"]),
        "status": res["status"],
        "lacking": res["lacking"],
    }
    if res["max_at"] is not None:
        f["hour_of_max_ns"] = int(res["max_at"])
    for name, v in zip(SHARES, res["shares"], strict=True):
        f[name] = v
    return f


def air_fields(res: dict, limit: float | None = None) -> dict[str, Any]:
    f = _hourly_multiple_fields(res, "c")
    if limit is not None:
        f["limit_mg_m3"] = float(limit)
    return f


def plant_fields(r) -> tuple[str, dict[str, Any]]:
    """(measurement, fields) of a ``rollups.PlantResult``: the value under the indicator's
    field (``PLANT_INDICATORS``), ``n``, ``coverage``, ``status``, ``lacking`` and its extras."""
    measurement, field, _unit, _row = plant_spec(r.name)
    m = r.measured
    f: dict[str, Any] = {
        field: m.value,
        "n": int(m.n),
        "coverage": float(m.coverage),
        "status": m.status,
        "lacking": m.lacking,
    }
    for k, v in r.extra.items():
        f[k] = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    return measurement, f


def water_fields(res: dict, limit_mg_l: float) -> dict[str, Any]:
    """A ``rollups.water_finish`` result as fields: a day or longer ``multiple_of_d`` (decision
    D-t6-water-window) with its daily statistics; every window the mean of its valid samples
    (``mean_mg_l``, for an hour or a shift a running value only)."""
    f: dict[str, Any] = {
        "multiple_of_d": res["value"],
        "max_multiple_of_d": res["max"],
        "mean_multiple_of_d": res["mean"],
        "day_of_max": res["max_day"],
        "mean_mg_l": res["mean_mg_l"],
        "samples": int(res["samples"]),
        "samples_flagged": int(res["flagged"]),
        "limit_mg_l": float(limit_mg_l),
        "n": int(res["n"]),
        "coverage": float(res["coverage"]),
        "status": res["status"],
        "lacking": res["lacking"],
    }
    if res["days"]:
        f["valid_days"], f["days"] = int(res["valid_days"]), int(res["days"])
        for name, v in zip(SHARES, res["shares"], strict=True):
            f[name] = v
    return f


def noise_fields(res: dict) -> dict[str, Any]:
    """A ``rollups.noise_finish`` result as fields (decisions D-t6-noise-*)."""
    return _hourly_multiple_fields(
        res, "e", max_day_multiple_of_e=res["max_day"], max_night_multiple_of_e=res["max_night"]
    )
