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
MEASUREMENTS = (C1_FURNACE, C1_PLANT, AIR_STACK, AIR_PLANT)
TAGS = ("plant", "furnace", "stack", "pollutant", "window")
UNIT_FIELD = {"kWh/t": "kwh_per_t", "kgce/t": "kgce_per_t"}


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in fields.items():
        assert k not in TAGS, k
        if v is None:
            continue
        if isinstance(v, float) and v != v:
            continue
        if isinstance(v, tuple | list):
            v = "; ".join(str(x) for x in v)
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


def air_fields(res: dict, limit: float | None = None) -> dict[str, Any]:
    f = {
        "multiple_of_c": res["value"],
        "max_multiple_of_c": res["max"],
        "mean_multiple_of_c": res["mean"],
        "valid_hours": int(res["valid_hours"]),
        "hours": int(res["hours"]),
        "n": int(res["n"]),
        "coverage": float(res["coverage"]),
        "status": res["status"],
        "lacking": res["lacking"],
    }
    if res["max_at"] is not None:
        f["hour_of_max_ns"] = int(res["max_at"])
    for k, name in enumerate(("share_tier1", "share_tier2", "share_tier3", "share_no_tier")):
        f[name] = res["shares"][k]
    if limit is not None:
        f["limit_mg_m3"] = float(limit)
    return f
