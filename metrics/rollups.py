"""What the engine computes per hour, and how hours compose into longer windows, per indicator.

A rollup turns an hour's readings into a *partial* (a dict of exact sums and counts) per item
(a furnace, a stack's pollutant), composes partials by ``combine`` (sums, counts, maxima: the
composed value is exactly the one of the longer window), and ``finish``-es a partial into a
window's result with the pure functions of this package. Hours compose into shifts, days and
months; months into years and trailing 12 months.

* ``c1``: Table C.1 per furnace (energy per tonne of liquid iron, tonnage-weighted tapping
  temperature, corrected limits, tier, Li) and for the plant (decision D-c1-plant,
  ``table_c1.plant_energy_per_t``).
* ``air``: Table 6 per stack and pollutant: valid hourly means (HJ 75, analyser status, O2
  correction), each as a multiple of C; a longer window's value by ``metrics.table6_rule``
  (decision D-t6-window: strict default "max", the highest valid hourly multiple), the share of
  valid hours in each band; and the plant's value, the worst stack and pollutant.

Exact composition: energy (counter increments belong to the window of their later reading, so
hours add up to the day), tonnes, Σ tonnes × temperature, paired tonnes, covered counter time,
valid hours, band counts, the highest hourly mean and the sum of hourly multiples. Nothing of
these is recomputed from readings for a longer window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from greenfoundry.metrics import counters as counter_fns
from greenfoundry.metrics import emissions, table_a1, table_c1
from greenfoundry.metrics import events as event_fns
from greenfoundry.metrics.measured import BAD_INPUT, NO_DATA, OK, Measured, judge

# GB/T 2589: coke 0.9714 kgce/kg (domain.md §5); a cupola's energy is its coke. An override
# comes from the plant config's metrics.factors (or metrics/factors.py when it exists).
COKE_KGCE_PER_KG = 0.9714
ENERGY_SIGNAL = {"induction": "furnace_energy_kwh", "cupola": "fuel_coke_kg"}
STACK_SIGNAL = "stack_conc_mg_m3"
O2_SIGNAL = "stack_o2_pct"
# The analyser's state, one numeric code per change (the field `value` is a float), read as HJ
# 212's data flags: 0 N normal, 1 C calibration, 2 M maintenance, 3 D fault, 4 F source stopped,
# 5 T over range, 6 B communication fault. Anything but 0 invalidates the minutes it touches.
STATUS_SIGNAL = "stack_analyser_status"
ANALYSER_CODES = {0: "N", 1: "C", 2: "M", 3: "D", 4: "F", 5: "T", 6: "B"}
NS_PER_H = 3600 * 10**9


def _f(x) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def _records(cols: dict) -> list[dict]:
    """The rows of a per-window result given as its columns, as ``to_dict("records")`` of its
    frame gives them: one dict per window of Python scalars (``tolist`` boxes them as the
    frame's ``to_dict`` does)."""
    keys = list(cols)
    columns = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in cols.values()]
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def _first(values) -> str:
    return next((v for v in values if v), "")


# ---------------------------------------------------------------------------- Table C.1


C1_SUMS = (
    "e",
    "e_n",
    "e_cov_ns",
    "resets",
    "rollovers",
    "jitter",
    "gaps",
    "gap_s",
    "iron_t",
    "taps",
    "tw",
    "tw_t",
    "tw_n",
    "lone_t",
    "lone_temp",
    "invalid",
    "hours",
)


def c1_hours(readings, hours: Sequence, furnace, *, rollover=None, min_coverage=0.9) -> list:
    """One partial per hour of one furnace (in hour order)."""
    sig = ENERGY_SIGNAL[furnace.kind]
    # The columns of counter_consumption, event_sums and tonnage_weighted_tap_temp_c, read
    # without building their frames (the same values: the frames are made of these columns).
    energy = counter_fns._consumption_columns(
        readings.get(sig, device=furnace.id),
        hours,
        rollover_modulus=rollover,
        min_coverage=min_coverage,
        name=sig,
    )
    weights = readings.get("tap_iron_t", device=furnace.id)
    taps = event_fns._sums_columns(weights, hours, name="tap_iron_t")
    temps = event_fns._weighted_mean_columns(
        readings.get("tap_temp_c", device=furnace.id),
        weights,
        hours,
        value_name="tap_temp_c",
        weight_name="tap_iron_t",
    )
    out = []
    rows = zip(_records(energy), _records(taps), _records(temps), strict=True)
    for h, (e, t, w) in zip(hours, rows, strict=True):
        e_bad = e["lacking"][0] if e["status"] == BAD_INPUT else ""
        t_bad = (t["lacking"][0] if t["status"] == BAD_INPUT else "") or (
            w["lacking"][0] if w["status"] == BAD_INPUT else ""
        )
        tw_t = float(w["weight_paired"])
        mean = _f(w["value"])
        out.append(
            {
                "e": 0.0 if e_bad or _f(e["value"]) is None else float(e["value"]),
                "e_n": int(e["n"]),
                "e_cov_ns": round(float(e["coverage"]) * (h.end.value - h.start.value)),
                "resets": int(e["resets"]),
                "rollovers": int(e["rollovers"]),
                "jitter": int(e["jitter"]),
                "gaps": int(e["gaps"]),
                "gap_s": float(e["gap_s"]),
                "e_bad": e_bad,
                "iron_t": 0.0 if _f(t["value"]) is None else float(t["value"]),
                "taps": int(t["n"]),
                "tw": 0.0 if mean is None or tw_t <= 0 else mean * tw_t,
                "tw_t": tw_t if mean is not None else 0.0,
                "tw_n": int(w["n"]),
                "lone_t": int(w["weights_without_value"]),
                "lone_temp": int(w["values_without_weight"]),
                "invalid": sum(1 for x in (*t["lacking"], *w["lacking"]) if "not valid" in x),
                "t_bad": t_bad,
                "hours": 1,
            }
        )
    return out


def c1_combine(parts: Sequence[dict]) -> dict:
    out: dict[str, Any] = {k: 0 for k in C1_SUMS}
    for k in ("e", "gap_s", "iron_t", "tw", "tw_t"):
        out[k] = 0.0
    for p in parts:
        for k in C1_SUMS:
            out[k] += p[k]
    out["e_bad"] = _first(p["e_bad"] for p in parts)
    out["t_bad"] = _first(p["t_bad"] for p in parts)
    return out


def c1_finish(
    window,
    p: dict | None,
    furnace,
    facts,
    *,
    air,
    product: str,
    coke_kgce_per_kg: float,
    min_coverage: float,
    li_floors=None,
    table=None,
) -> table_c1.FurnaceC1:
    """The furnace's Table C.1 result for ``window`` from its composed partial (None: the engine
    never saw a reading of the window). ``table``: the parsed Table C.1 (None: the default
    standard's)."""
    p = p or c1_combine([])
    sig = ENERGY_SIGNAL[furnace.kind]
    span = window.end.value - window.start.value
    e_cov = min(1.0, p["e_cov_ns"] / span)
    e_lack = []
    if p["e_n"] == 0 and p["e_cov_ns"] == 0:
        e_lack.append(f"no {sig} readings in the window")
    elif e_cov < 1:
        e_lack.append(f"{sig} readings cover {e_cov:.1%} of the window")
    if p["gaps"]:
        e_lack.append(
            f"{p['gaps']} gap(s) in {sig} cover {p['gap_s'] / 3600:.2f} h; consumption across "
            "a gap is counted at the reading that ends it, never spread"
        )
    if p["resets"]:
        e_lack.append(f"{p['resets']} meter reset(s): the reading after each counts from zero")
    if p["rollovers"]:
        e_lack.append(f"{p['rollovers']} rollover(s)")
    if p["jitter"]:
        e_lack.append(f"{p['jitter']} reading(s) below the meter's previous high: not consumption")
    if p["e_bad"]:
        energy = Measured(None, 0, 0.0, BAD_INPUT, (p["e_bad"],))
    else:
        st = judge(p["e_n"], e_cov, min_coverage)
        value = None if st == NO_DATA else p["e"]
        if furnace.kind == "cupola" and value is not None:
            value *= coke_kgce_per_kg
        energy = Measured(value, p["e_n"], e_cov, st, tuple(e_lack))
    if p["t_bad"]:
        iron = Measured(None, 0, 0.0, BAD_INPUT, (p["t_bad"],))
        temp = None
    else:
        iron = (
            Measured(p["iron_t"], p["taps"], 1.0, OK)
            if p["taps"]
            else Measured(None, 0, 0.0, NO_DATA, ("no tap_iron_t events in the window",))
        )
        t_lack = []
        if p["lone_t"]:
            t_lack.append(f"{p['lone_t']} taps without a tap_temp_c: not in the mean")
        if p["lone_temp"]:
            t_lack.append(f"{p['lone_temp']} tap_temp_c events without a tap_iron_t: not used")
        if p["tw_t"] > 0:
            cov = p["tw_t"] / p["iron_t"] if p["iron_t"] > 0 else 0.0
            temp = Measured(
                p["tw"] / p["tw_t"],
                p["tw_n"],
                cov,
                judge(p["tw_n"], cov, min_coverage),
                tuple(t_lack),
            )
        else:
            temp = Measured(None, 0, 0.0, NO_DATA, ("no tap with a tap_temp_c", *t_lack))
    kw = {"energy_kwh": energy} if furnace.kind == "induction" else {"energy_kgce": energy}
    r = table_c1.furnace_energy_per_t(
        facts,
        iron_t=iron,
        tap_temp_c=temp,
        air_temp=air,
        min_coverage=min_coverage,
        li_floors=li_floors,
        c1_table=table,
        **kw,
    )
    refused = [x for x in (p["e_bad"], p["t_bad"]) if x]
    if refused and r.value is None:
        # A refused input series is bad input, not an absence of data: say so first.
        r = dataclasses.replace(r, status=BAD_INPUT, lacking=(*refused, *r.lacking))
    return r


# The specified tapping temperature per (table, furnace kind, product, DN): a pure function of
# them that the engine asks for every window; the table is kept with its entry, so an id is
# never taken for another table's.
_SPECIFIED: dict[tuple, tuple[Any, float]] = {}


def _specified_tap_temp_c(kind: str, product: str, dn, table) -> float:
    from greenfoundry.scoring.table_c1 import specified_tap_temp_c

    if table is None:
        return specified_tap_temp_c(kind, product, dn=dn)
    key = (id(table), kind, product, dn)
    hit = _SPECIFIED.get(key)
    if hit is not None and hit[0] is table:
        return hit[1]
    value = specified_tap_temp_c(kind, product, dn=dn, table=table)  # a refusal is not kept
    if len(_SPECIFIED) >= 256:
        _SPECIFIED.clear()
    _SPECIFIED[key] = (table, value)
    return value


def scorer_tap_temp_c(
    results: Sequence[table_c1.FurnaceC1], facts: dict, product: str, *, table=None
):
    """(DN, °C) for the scorer's one Table C.1 row, so that its note-2 corrected limits equal
    the plant's tonnage-weighted corrected limits (decision D-c1-plant): the DN of the furnace
    with the most tonnes, and its specified temperature S plus the tonnage-weighted excess
    Σ t_f (T_f − S_f) / Σ t_f (each furnace against its own specified temperature S_f; a furnace
    without a tapping temperature counts at its S_f, as its own limits do). With every furnace
    on one specified temperature this is the tonnage-weighted mean tapping temperature.
    ``table``: the parsed Table C.1 (None: the default standard's)."""
    used = [r for r in results if r.energy is not None and (r.iron_t or 0) > 0 and r.limits]
    if not used:
        return None, None
    total = sum(r.iron_t for r in used)
    excess = 0.0
    for r in used:
        f = facts[r.furnace_id]
        spec = _specified_tap_temp_c(f.kind, product, f.dn, table)
        if r.tap_temp_c is not None and spec is not None:
            excess += r.iron_t * (r.tap_temp_c - spec)
    ref = facts[max(used, key=lambda r: r.iron_t).furnace_id]
    spec = _specified_tap_temp_c(ref.kind, product, ref.dn, table)
    if spec is None:
        return ref.dn, None
    return ref.dn, spec + excess / total


# ---------------------------------------------------------------------------- Table 6 (air)

AIR_SUMS = ("hours", "valid_h", "sum_m", "b1", "b2", "b3", "b4", "valid_min", "flagged_min", "n")


def status_codes(series: pd.Series) -> pd.Series | None:
    """The analyser status series as HJ 212 letters (``ANALYSER_CODES``); None when absent."""
    if series is None or series.empty:
        return None
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(object)  # refused by emissions as it is: a clear bad_input
    # Each distinct value is named once (a status series holds a handful of codes).
    values = series.to_numpy(dtype=float)
    codes = np.full(len(values), "", dtype=object)
    finite = np.isfinite(values)
    uniq, inverse = np.unique(values[finite], return_inverse=True)
    names = np.array([ANALYSER_CODES.get(int(u), str(int(u))) for u in uniq], dtype=object)
    codes[finite] = names[inverse] if len(uniq) else codes[finite]
    return pd.Series(codes, index=series.index, dtype=object)


def air_hours(
    readings,
    hours: Sequence,
    stack_id: str,
    pollutant: str,
    limit: float,
    *,
    o2_ref_pct=None,
    min_valid_minutes=45,
) -> list:
    """One partial per hour of one stack's pollutant, with the hour's own result."""
    conc = readings.get(STACK_SIGNAL, device=stack_id, pollutant=pollutant)
    status = status_codes(readings.get(STATUS_SIGNAL, device=stack_id))
    o2 = readings.get(O2_SIGNAL, device=stack_id) if o2_ref_pct is not None else None
    hourly = emissions._hourly_columns(  # hourly_means_mg_m3's columns, without its frame
        conc,
        hours,
        status=status,
        o2_pct=o2,
        o2_ref_pct=o2_ref_pct,
        min_valid_minutes=min_valid_minutes,
    )
    frame = pd.DataFrame({"value": hourly["value"], "valid": hourly["valid"]})
    mult = emissions.multiples_of_c(frame, limit).to_numpy(float)
    bands = emissions._band_of(mult, emissions.TABLE6_BANDS)  # read only where m is a value
    out = []
    for i, (h, r) in enumerate(zip(hours, _records(hourly), strict=True)):
        m = _f(mult[i])
        band = int(bands[i]) if m is not None else 0
        out.append(
            {
                "hours": 1,
                "valid_h": 1 if m is not None else 0,
                "max_m": m,
                "max_at": h.start.value if m is not None else None,
                "sum_m": m or 0.0,
                **{f"b{k}": int(band == k) for k in (1, 2, 3, 4)},
                "valid_min": int(r["valid_minutes"]),
                "flagged_min": int(r["minutes_flagged"]),
                "n": int(r["n"]),
                "mean_mg_m3": _f(r["value"]),
                "status": str(r["status"]),
                "lacking": list(r["lacking"]),
                "bad": r["lacking"][0] if r["status"] == BAD_INPUT else "",
            }
        )
    return out


def _hourly_combine(parts: Sequence[dict], sums: Sequence[str], maxima: Sequence[str] = ()):
    """Exact composition of hourly multiples (a stack's pollutant, a boundary point): the
    counts and the sum of multiples add, the highest multiple keeps the hour it was first
    reached in; ``maxima``: further highest values (a noise point's by day and by night)."""
    out: dict[str, Any] = {k: 0 for k in sums}
    out["sum_m"] = 0.0
    out["max_m"], out["max_at"] = None, None
    for k in maxima:
        out[k] = None
    for p in parts:
        for k in sums:
            out[k] += p[k]
        if p["max_m"] is not None and (out["max_m"] is None or p["max_m"] > out["max_m"]):
            out["max_m"], out["max_at"] = p["max_m"], p["max_at"]
        for k in maxima:
            if p[k] is not None and (out[k] is None or p[k] > out[k]):
                out[k] = p[k]
    out["bad"] = _first(p.get("bad", "") for p in parts)
    return out


def _hourly_finish(window, p: dict, *, rule: str, min_coverage: float, lacks: str, flags: str):
    """A window's Table 6 result from composed hourly multiples (``_hourly_combine``): the
    value by ``rule`` ("max" the highest valid hour, "mean" their mean), the band shares of the
    valid hours, coverage = valid hours / hours. ``lacks``: what an hour without a valid value
    lacks (for the message); ``flags``: whose status flagged minutes."""
    hours = window.minutes // 60
    n = p["valid_h"]
    cov = n / hours if hours else 0.0
    lack = []
    if p["bad"]:
        lack.append(p["bad"])
    if n < hours:
        lack.append(f"{hours - n} of {hours} hours without {lacks}")
    if p["flagged_min"]:
        lack.append(f"{p['flagged_min']} minutes flagged by the {flags} status")
    status = BAD_INPUT if p["bad"] and n == 0 else judge(n, cov, min_coverage)
    if n == 0 and status != BAD_INPUT:
        status = NO_DATA
    value = None
    if n:
        value = p["max_m"] if rule == "max" else p["sum_m"] / n
    return {
        "value": value,
        "max": p["max_m"],
        "max_at": p["max_at"],
        "mean": p["sum_m"] / n if n else None,
        "valid_hours": n,
        "hours": hours,
        "shares": tuple(p[f"b{k}"] / n if n else None for k in (1, 2, 3, 4)),
        "n": p["n"],
        "coverage": cov,
        "status": status,
        "lacking": tuple(lack),
    }


def air_combine(parts: Sequence[dict]) -> dict:
    return _hourly_combine(parts, AIR_SUMS)


def air_finish(
    window, p: dict | None, *, rule: str, min_coverage: float, min_valid_minutes: int
) -> dict:
    """A window's Table 6 result of one stack's pollutant from its composed partial."""
    return _hourly_finish(
        window,
        p or air_combine([]),
        rule=rule,
        min_coverage=min_coverage,
        lacks=f"a valid hourly mean (a valid hour needs {min_valid_minutes} valid minutes, HJ 75)",
        flags="analyser",
    )


# ------------------------------------------- Table 5, water reuse, Table A.1, CO2 (the plant)
#
# One partial per hour for the whole plant: a flat dict of exact sums. For each counter input
# (``PLANT_COUNTERS``) ``<key>.v`` (consumption, summed over the input's meters), ``.n``
# (increments), ``.cov_ns`` (the covered time of its least covered meter), ``.gaps``,
# ``.resets``, ``.rollovers``; for each event input (``PLANT_EVENTS``) ``<key>.v`` (the sum)
# and ``.n`` (events); the first refusal of an input in ``<key>.bad``. The test counts of
# Table A.1 also per DN range (``<key>@<range>.v`` / ``.n``, ``table_a1.split_by_dn``). Every
# one of them composes by addition; the pure functions finish the composed sums.

# key → (signal, tags a series must have). Electricity is the site's incoming meter (it
# includes the furnaces); coke is every fuel_coke_kg meter (a cupola's).
PLANT_COUNTERS: dict[str, tuple[str, dict[str, str]]] = {
    "electricity": ("site_energy_kwh", {}),
    "reactive": ("site_reactive_kvarh", {}),
    "natural_gas": ("fuel_gas_m3", {}),
    "oxygen": ("oxygen_m3", {}),
    "coke": ("fuel_coke_kg", {}),
    **{
        role: ("water_m3", {"role": role})
        for role in (
            "cooling_circulating",
            "cooling_makeup",
            "process_intake",
            "process_reused",
            "reclaimed_intake",
            "total_intake",
        )
    },
}
PLANT_EVENTS: dict[str, str] = {
    "pipe_t": "pipe_output_t",
    "scrap_t": "pipe_scrap_t",
    "iron_t": "tap_iron_t",
    "cast": "pipe_cast_count",
    "hydro_tested": "hydro_tested_count",
    "hydro_passed": "hydro_passed_count",
    "inspected": "inspected_count",
    "inspection_passed": "inspection_passed_count",
    "sand_used": "sand_used_t",
    "sand_reclaimed": "sand_reclaimed_t",
    "returns_arising": "returns_arising_t",
    "returns_charged": "returns_charged_t",
}
DN_KEYS = ("hydro_tested", "hydro_passed", "inspected", "inspection_passed")
DN_SIGNAL = "pipe_dn"
CARRIERS = ("electricity", "natural_gas", "oxygen", "coke")  # Table 5's energy carriers


def plant_inputs(cfg) -> tuple[dict[str, tuple[str, ...]], set[str]]:
    """(counter key → the meters (devices) the plant config maps for it, event keys): a counter
    by its signal and tags (a water role by its meters), an event by its signal."""
    routes = list(cfg.routes.values())
    counters = {}
    for key, (sig, tags) in PLANT_COUNTERS.items():
        devices = sorted(
            {r.device for r in routes if r.signal == sig and set(tags.items()) <= set(r.tags)}
        )
        if devices:
            counters[key] = tuple(devices)
    signals = {r.signal for r in routes}
    events = {k for k, sig in PLANT_EVENTS.items() if sig in signals}
    return counters, events


def _series_of(readings, signal: str, tags: dict[str, str]) -> list[tuple[str, pd.Series]]:
    """(device, series) of every meter of ``signal`` with ``tags``, in device order."""
    by_device: dict[str, list[pd.Series]] = {}
    for (m, t), s in sorted(readings.series.items(), key=lambda kv: kv[0]):
        d = dict(t)
        if m == signal and all(d.get(k) == v for k, v in tags.items()):
            by_device.setdefault(d.get("device", ""), []).append(s)
    return [
        (d, pd.concat(v).sort_index() if len(v) > 1 else v[0]) for d, v in sorted(by_device.items())
    ]


def plant_hours(
    readings, hours: Sequence, counters: dict[str, Sequence[str]], events: set[str], *,
    rollover=None, min_coverage=0.9,
) -> list[dict]:  # fmt: skip
    """One plant partial per hour (in hour order) of the inputs ``counters`` (key → the meters
    it sums) and ``events`` (``plant_inputs``); ``rollover``: meter id → its rollover modulus.
    A configured meter without readings covers nothing, so its input's coverage is 0: the
    sum of the others would be too low."""
    rollover = rollover or {}
    out = [{} for _ in hours]
    spans = [h.end.value - h.start.value for h in hours]
    for key in sorted(counters):
        sig, tags = PLANT_COUNTERS[key]
        found = dict(_series_of(readings, sig, tags))
        meters = [(d, found.get(d)) for d in sorted(set(counters[key]) | set(found))]
        for p in out:
            p.update({f"{key}.{k}": 0 for k in ("n", "gaps", "resets", "rollovers")})
            p.update({f"{key}.v": 0.0, f"{key}.cov_ns": 0, f"{key}.bad": ""})
        for i, (device, s) in enumerate(meters):
            if s is None:  # a silent meter: the input covers nothing
                for p in out:
                    p[f"{key}.cov_ns"] = 0
                continue
            df = counter_fns._consumption_columns(
                s, hours, rollover_modulus=rollover.get(device), min_coverage=min_coverage,
                name=sig,
            )  # fmt: skip
            for j, (p, r) in enumerate(zip(out, _records(df), strict=True)):
                if r["status"] == BAD_INPUT:
                    p[f"{key}.bad"] = p[f"{key}.bad"] or str(r["lacking"][0])
                    continue
                v = _f(r["value"])
                p[f"{key}.v"] += v or 0.0
                p[f"{key}.n"] += int(r["n"])
                cov = round(float(r["coverage"]) * spans[j])
                # The input covers what its least covered meter covers (silent ones: 0).
                p[f"{key}.cov_ns"] = cov if i == 0 else min(p[f"{key}.cov_ns"], cov)
                for k in ("gaps", "resets", "rollovers"):
                    p[f"{key}.{k}"] += int(r[k])
    for key in sorted(events):
        sig = PLANT_EVENTS[key]
        s = readings.get(sig)
        _event_into(out, key, sig, s, hours)
        if key in DN_KEYS:
            try:
                split = _split_by_dn(readings, sig)
            except ValueError as exc:
                for p in out:
                    for rng in table_a1.DN_RANGES:
                        p[f"{key}@{rng}.v"], p[f"{key}@{rng}.n"] = 0.0, 0
                        p[f"{key}@{rng}.bad"] = str(exc)
                continue
            for rng in table_a1.DN_RANGES:
                _event_into(out, f"{key}@{rng}", sig, split[rng], hours)
    # Only what is not 0 or empty is kept (a missing key composes as 0: x + 0.0 == x exactly),
    # so an hour's stored partial holds the inputs it saw, not every input the plant maps.
    return [{k: v for k, v in p.items() if v} for p in out]


def _split_by_dn(readings, sig: str) -> dict[str, pd.Series]:
    """The events of ``sig`` per Table A.1 DN range, each casting line (device) paired with
    its own ``pipe_dn`` events (two lines may post batches at one instant)."""
    devices = sorted({dict(t).get("device", "") for (m, t) in readings.series if m == sig})
    parts: dict[str, list[pd.Series]] = {rng: [] for rng in table_a1.DN_RANGES}
    for d in devices:
        tags = {"device": d} if d else {}
        split = table_a1.split_by_dn(
            readings.get(DN_SIGNAL, **tags), readings.get(sig, **tags), name=sig
        )
        for rng in parts:
            parts[rng].append(split[rng])
    empty = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    return {
        rng: pd.concat(v).sort_index() if len(v) > 1 else (v[0] if v else empty)
        for rng, v in parts.items()
    }


def _event_into(out: list[dict], key: str, sig: str, s: pd.Series, hours: Sequence) -> None:
    df = event_fns._sums_columns(s, hours, name=sig)
    for p, r in zip(out, _records(df), strict=True):
        bad = r["status"] == BAD_INPUT
        p[f"{key}.v"] = 0.0 if bad or _f(r["value"]) is None else float(r["value"])
        p[f"{key}.n"] = 0 if bad else int(r["n"])
        p[f"{key}.bad"] = str(r["lacking"][0]) if bad else ""


def plant_has_data(p: dict) -> bool:
    """True when a plant partial holds a reading or a refusal (composing it changes a sum)."""
    return any(v for k, v in p.items() if k.endswith((".n", ".cov_ns", ".bad")))


def plant_combine(parts: Sequence[dict]) -> dict:
    """The exact composition of plant partials (in the given order): numbers add, the first
    refusal is kept."""
    out: dict[str, Any] = {}
    for p in parts:
        for k, v in p.items():
            if isinstance(v, str):
                out[k] = out.get(k) or v
            else:
                out[k] = out.get(k, 0) + v
    return out


def _counter_measured(p: dict, key: str, span_ns: int, min_coverage: float) -> Measured:
    sig = PLANT_COUNTERS[key][0]
    if p.get(f"{key}.bad"):
        return Measured(None, 0, 0.0, BAD_INPUT, (p[f"{key}.bad"],))
    n, cov = int(p.get(f"{key}.n", 0)), min(1.0, p.get(f"{key}.cov_ns", 0) / span_ns)
    lack = []
    if n == 0 and cov == 0:
        lack.append(f"no {sig} readings ({key}) in the window")
    elif cov < 1:
        lack.append(f"{sig} ({key}) readings cover {cov:.1%} of the window")
    for k, what in (("gaps", "gap(s)"), ("resets", "meter reset(s)"), ("rollovers", "rollover(s)")):
        if p.get(f"{key}.{k}"):
            lack.append(f"{p[f'{key}.{k}']} {what} in {sig} ({key})")
    st = judge(n, cov, min_coverage)
    value = None if st == NO_DATA else float(p.get(f"{key}.v", 0.0))
    return Measured(value, n, cov, st, tuple(lack))


def _event_measured(p: dict, key: str) -> Measured:
    sig = PLANT_EVENTS[key.split("@", 1)[0]]
    if p.get(f"{key}.bad"):
        return Measured(None, 0, 0.0, BAD_INPUT, (p[f"{key}.bad"],))
    n = int(p.get(f"{key}.n", 0))
    if n == 0:
        where = f" of {key.split('@', 1)[1]}" if "@" in key else ""
        return Measured(None, 0, 0.0, NO_DATA, (f"no {sig} events{where} in the window",))
    return Measured(float(p.get(f"{key}.v", 0.0)), n, 1.0, OK)


@dataclass(frozen=True)
class PlantResult:
    """One plant indicator of one window: ``measured`` (value, n, coverage, status, lacking)
    and the ``extra`` fields its point carries (inputs, breakdowns, factors)."""

    name: str
    measured: Measured
    extra: dict


def plant_finish(
    window, p: dict | None, counters: set[str], events: set[str], *, factors,
    min_coverage: float, made_on_site: Sequence[str] = (),
) -> list[PlantResult]:  # fmt: skip
    """Every plant indicator the inputs allow, for ``window``, from its composed partial:
    Table 5 (energy per tonne of good pipe, power factor, water-reuse rates, sand and metal
    reuse), Table A.1 (scrap rate, process yield, first-pass rates overall and by DN range,
    online inspection rate, output) and CO2 per tonne of pipe and of liquid iron. An indicator
    whose inputs the plant config does not map is not produced."""
    from greenfoundry.metrics import co2, table5, water

    p = p or {}
    span = window.end.value - window.start.value
    c = {k: _counter_measured(p, k, span, min_coverage) for k in sorted(counters)}
    e = {k: _event_measured(p, k) for k in sorted(events)}
    kw = {"min_coverage": min_coverage}
    out: list[PlantResult] = []

    def add(name, m, *inputs, **extra):
        # A refused input series is bad input, not an absence of data (the energy and CO2
        # functions report a refused tonnes series as no_data): say so first.
        bad = [x for x in inputs if x is not None and x.status == BAD_INPUT]
        if bad and m.value is None and m.status != BAD_INPUT:
            why = tuple(y for x in bad for y in x.lacking)
            m = dataclasses.replace(m, status=BAD_INPUT, lacking=(*why, *m.lacking))
        out.append(PlantResult(name, m, extra))

    carriers = {k: c[k] for k in CARRIERS if k in c}
    if carriers and "pipe_t" in e:
        r = table5.plant_energy_per_t_pipe(
            carriers, e["pipe_t"], factors=factors, made_on_site=made_on_site, **kw
        )
        add(
            "energy_per_t_pipe", r.measured(), e["pipe_t"], kgce=r.kgce, pipe_t=r.pipe_t,
            factors="; ".join(r.factors) or None,
            **{f"kgce_{k}": v for k, v in r.kgce_by_carrier.items()},
        )  # fmt: skip
    if {"electricity", "reactive"} <= set(c):
        add(
            "power_factor", table5.power_factor(c["electricity"], c["reactive"], **kw),
            active_kwh=c["electricity"].value, reactive_kvarh=c["reactive"].value,
        )  # fmt: skip
    pairs = (
        ("cooling_recirculation", water.cooling_recirculation_rate_pct,
         "cooling_circulating", "cooling_makeup"),
        ("process_wastewater_reuse", water.process_reuse_rate_pct,
         "process_reused", "process_intake"),
        ("reclaimed_share", water.reclaimed_share_of_intake_pct,
         "reclaimed_intake", "total_intake"),
    )  # fmt: skip
    for name, fn, a, b in pairs:
        if {a, b} <= set(c):
            add(name, fn(c[a], c[b], **kw), **{f"{a}_m3": c[a].value, f"{b}_m3": c[b].value})
    if {"cooling_circulating", "process_reused", "total_intake"} <= set(c):
        add("water_reuse", water.water_reuse_rate_pct(
            c["cooling_circulating"], c["process_reused"], c["total_intake"], **kw))  # fmt: skip
    if {"sand_reclaimed", "sand_used"} <= set(e):
        add("sand_reuse", table5.sand_reuse_rate_pct(e["sand_reclaimed"], e["sand_used"], **kw))
    if {"returns_charged", "returns_arising"} <= set(e):
        add("metal_returns", table5.metal_returns_reuse_rate_pct(
            e["returns_charged"], e["returns_arising"], **kw))  # fmt: skip
    if {"scrap_t", "pipe_t"} <= set(e):
        add("scrap_rate", table_a1.scrap_rate_pct(e["scrap_t"], e["pipe_t"], **kw),
            scrap_t=e["scrap_t"].value, pipe_t=e["pipe_t"].value)  # fmt: skip
    if {"pipe_t", "iron_t"} <= set(e):
        add("process_yield", table_a1.process_yield_pct(e["pipe_t"], e["iron_t"], **kw),
            pipe_t=e["pipe_t"].value, iron_t=e["iron_t"].value)  # fmt: skip
    for name, passed, tested in (
        ("hydro_first_pass", "hydro_passed", "hydro_tested"),
        ("pipe_first_pass", "inspection_passed", "inspected"),
    ):
        if {passed, tested} <= set(e):
            add(name, table_a1.first_pass_rate_pct(e[passed], e[tested], **kw),
                passed=e[passed].value, tested=e[tested].value)  # fmt: skip
            for rng in table_a1.DN_RANGES:
                pm, tm = (
                    _event_measured(p, f"{passed}@{rng}"),
                    _event_measured(p, f"{tested}@{rng}"),
                )
                if tm.n:
                    add(f"{name}:{rng}", table_a1.first_pass_rate_pct(pm, tm, **kw),
                        passed=pm.value, tested=tm.value)  # fmt: skip
    if {"hydro_tested", "inspected", "cast"} <= set(e):
        add("online_inspection_rate", table_a1.online_inspection_rate_pct(
            e["hydro_tested"], e["inspected"], e["cast"], **kw))  # fmt: skip
    if "pipe_t" in e:
        add("output", table_a1.annual_output_10kt(e["pipe_t"]), pipe_t=e["pipe_t"].value)
    for per, tonnes in (("pipe", "pipe_t"), ("liquid_iron", "iron_t")):
        if carriers and tonnes in e:
            r = co2.co2_per_t(
                carriers, e[tonnes], per=per, factors=factors, made_on_site=made_on_site, **kw
            )
            add(
                f"co2_per_t_{per}", r.measured(), e[tonnes], tonnes=r.tonnes,
                kg_co2=sum(r.kg_co2_by_carrier.values()) if r.kg_co2_by_carrier else None,
                factors="; ".join(r.factors) or None,
            )  # fmt: skip
    return out


# ------------------------------------------------------------- Table 6 (water and noise)
#
# Water (``discharge``): per outfall and pollutant, an hour's partial holds its valid samples'
# sum and count under the plant-local day it belongs to (``days``: label → [Σ mg/L, n]), so a
# month or a year composes the exact daily means (decision D-t6-water-period); hours and shifts
# are shorter than the period and carry a running mean only. Noise (``noise``): per boundary
# point, as the air's stack hours: each valid hourly Leq as a multiple of its period's E, with
# the highest, the sum and the band counts (decisions D-t6-noise-period, -multiple, -window).

WATER_SIGNAL = "discharge_conc_mg_l"
WATER_STATUS_SIGNAL = "discharge_analyser_status"  # the stack analysers' codes
NOISE_SIGNAL = "noise_leq_dba"
NOISE_STATUS_SIGNAL = "noise_monitor_status"  # the stack analysers' codes
NOISE_SUMS = (*AIR_SUMS, "over_e")


def water_hours(readings, hours: Sequence, outfall_id: str, pollutant: str, tz: str) -> list:
    """One partial per hour of one outfall's pollutant (in hour order)."""
    from greenfoundry.metrics import discharge

    conc = readings.get(WATER_SIGNAL, device=outfall_id, pollutant=pollutant)
    status = status_codes(readings.get(WATER_STATUS_SIGNAL, device=outfall_id))
    s = discharge.sample_validity(conc, status=status)
    if s.problem:
        return [{"hours": 1, "with": 0, "days": {}, "flagged": 0, "invalid": 0, "bad": s.problem}
                for _ in hours]  # fmt: skip
    sums = discharge.hourly_sample_sums(s, hours)
    out = []
    for i, h in enumerate(hours):
        n = int(sums["valid"][i])
        day = f"{h.start.tz_convert(tz):%Y-%m-%d}"
        out.append(
            {
                "hours": 1,
                "with": int(n > 0),
                "days": {day: [float(sums["sum_mg_l"][i]), n]} if n else {},
                "flagged": int(sums["flagged"][i]),
                "invalid": int(sums["invalid"][i]),
                "bad": "",
            }
        )
    return out


def water_combine(parts: Sequence[dict]) -> dict:
    """Exact composition: counts add, each day's Σ and n add in the given (hour) order."""
    out: dict[str, Any] = {"hours": 0, "with": 0, "days": {}, "flagged": 0, "invalid": 0}
    for p in parts:
        for k in ("hours", "with", "flagged", "invalid"):
            out[k] += p[k]
        for day, (s, n) in p["days"].items():
            d = out["days"].setdefault(day, [0.0, 0])
            d[0] += s
            d[1] += n
    out["bad"] = _first(p.get("bad", "") for p in parts)
    return out


def water_finish(
    window, p: dict | None, limit_mg_l: float, *, rule: str, min_valid_samples: int,
    min_coverage: float,
) -> dict:  # fmt: skip
    """A window's Table 6 water result of one outfall's pollutant from its composed partial.
    A day and longer: the multiple of D by decision D-t6-water-window over its valid daily
    means; an hour or a shift: the mean of its valid samples, a running value (no multiple)."""
    from greenfoundry.metrics import discharge

    p = p or water_combine([])
    samples = sum(n for _s, n in p["days"].values())
    total = sum(s for s, _n in p["days"].values())
    lack = [p["bad"]] if p["bad"] else []
    if p["flagged"]:
        lack.append(f"{p['flagged']} samples taken while the analyser status was not normal")
    if p["invalid"]:
        lack.append(f"{p['invalid']} {WATER_SIGNAL} readings not valid (NaN or out of range)")
    res: dict[str, Any] = {
        "value": None, "max": None, "max_day": None, "mean": None, "valid_days": 0, "days": 0,
        "shares": (None, None, None, None), "samples": samples, "flagged": p["flagged"],
        "mean_mg_l": total / samples if samples else None,
    }  # fmt: skip
    if window.kind in ("hour", "shift"):
        hours = window.minutes // 60
        cov = p["with"] / hours if hours else 0.0
        if p["with"] < hours:
            lack.append(f"{hours - p['with']} of {hours} hours without a valid sample")
        status = BAD_INPUT if p["bad"] and not samples else judge(samples, cov, min_coverage)
        return {**res, "n": samples, "coverage": cov, "status": status, "lacking": tuple(lack)}
    days = max(1, round(window.minutes / 1440))
    valid = []
    for day in sorted(p["days"]):
        s, n = p["days"][day]
        mean = discharge.daily_mean_mg_l(s, n, min_valid_samples=min_valid_samples)
        if mean is not None:
            valid.append((day, mean / limit_mg_l))
    r = discharge.window_multiple([m for _d, m in valid], rule=rule)
    short = len(p["days"]) - len(valid)
    if short:
        lack.append(
            f"{short} day(s) with fewer than {min_valid_samples} valid samples: no daily mean "
            "(HJ 356, not verified against the text)"
        )
    if len(valid) < days:
        lack.append(f"{days - len(valid)} of {days} days without a valid daily mean")
    cov = len(valid) / days
    status = judge(len(valid), cov, min_coverage) if valid else NO_DATA
    if p["bad"] and not valid:
        status = BAD_INPUT
    return {
        **res,
        "value": r["value"],
        "max": r["max"],
        "max_day": valid[r["argmax"]][0] if valid else None,
        "mean": r["mean"],
        "valid_days": len(valid),
        "days": days,
        "shares": r["shares"],
        "n": samples,
        "coverage": cov,
        "status": status,
        "lacking": tuple(lack),
    }


def noise_hours(
    readings, hours: Sequence, point_id: str, boundary, bands: Sequence[float], tz: str, *,
    min_valid_minutes: int,
) -> list:  # fmt: skip
    """One partial per hour of one boundary point, with the hour's own Leq, period and E.
    ``min_valid_minutes``: the plant config's ``metrics.noise_min_valid_minutes``."""
    from greenfoundry.metrics import noise

    r = noise.hourly_leq_dba(
        readings.get(NOISE_SIGNAL, device=point_id),
        hours,
        status=status_codes(readings.get(NOISE_STATUS_SIGNAL, device=point_id)),
        min_valid_minutes=min_valid_minutes,
    )
    out = []
    for i, h in enumerate(hours):
        period = noise.period_of(
            h.start.tz_convert(tz).hour,
            day_start_h=boundary.day_start_h,
            night_start_h=boundary.night_start_h,
        )
        limit = noise.limit_e_dba(
            period, day_limit_dba=boundary.day_limit_dba, night_limit_dba=boundary.night_limit_dba
        )
        m = float(noise.multiple_of_e(r["value"][i], limit)) if r["valid"][i] else None
        band = int(emissions._band_of(np.array([m]), bands)[0]) if m is not None else 0
        out.append(
            {
                "hours": 1,
                "valid_h": int(m is not None),
                "max_m": m,
                "max_at": h.start.value if m is not None else None,
                "sum_m": m or 0.0,
                **{f"b{k}": int(band == k) for k in (1, 2, 3, 4)},
                "max_day_m": m if period == "day" else None,
                "max_night_m": m if period == "night" else None,
                "over_e": int(band == 4),
                "valid_min": int(r["valid_minutes"][i]),
                "flagged_min": int(r["minutes_flagged"][i]),
                "n": int(r["n"][i]),
                "leq_dba": _f(r["value"][i]),
                "period": period,
                "limit_dba": limit,
                "status": str(r["status"][i]),
                "lacking": list(r["lacking"][i]),
                "bad": r["problem"] or "",
            }
        )
    return out


def _noise_partial(p: dict) -> dict:
    # A partial kept in a state from before noise_monitor_status has no flagged minutes: none
    # could be flagged then, so it stands as it is.
    return p if "flagged_min" in p else {**p, "flagged_min": 0}


def noise_combine(parts: Sequence[dict]) -> dict:
    parts = [_noise_partial(p) for p in parts]
    return _hourly_combine(parts, NOISE_SUMS, ("max_day_m", "max_night_m"))


def noise_finish(
    window, p: dict | None, *, rule: str, min_coverage: float, min_valid_minutes: int
) -> dict:
    """A window's Table 6 noise result of one boundary point from its composed partial
    (decision D-t6-noise-window), as a stack's, with the highest multiples by day and night."""
    p = _noise_partial(p) if p else noise_combine([])
    res = _hourly_finish(
        window,
        p,
        rule=rule,
        min_coverage=min_coverage,
        lacks=f"a valid hourly Leq (a valid hour needs {min_valid_minutes} minutes with a "
        f"{NOISE_SIGNAL} reading)",
        flags="noise monitor",
    )
    if p["over_e"]:
        res["lacking"] = (*res["lacking"], f"{p['over_e']} hour(s) at or over their limit E")
    return {**res, "max_day": p["max_day_m"], "max_night": p["max_night_m"]}
