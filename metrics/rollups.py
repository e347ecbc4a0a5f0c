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
  (decision D-c6-window: strict default "max", the highest valid hourly multiple), the share of
  valid hours in each band; and the plant's value, the worst stack and pollutant.

Exact composition: energy (counter increments belong to the window of their later reading, so
hours add up to the day), tonnes, Σ tonnes × temperature, paired tonnes, covered counter time,
valid hours, band counts, the highest hourly mean and the sum of hourly multiples. Nothing of
these is recomputed from readings for a longer window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from greenfoundry.metrics import emissions, table_c1
from greenfoundry.metrics.counters import counter_consumption
from greenfoundry.metrics.events import event_sums, tonnage_weighted_tap_temp_c
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
    energy = counter_consumption(
        readings.get(sig, device=furnace.id),
        hours,
        rollover_modulus=rollover,
        min_coverage=min_coverage,
        name=sig,
    )
    weights = readings.get("tap_iron_t", device=furnace.id)
    taps = event_sums(weights, hours, name="tap_iron_t")
    temps = tonnage_weighted_tap_temp_c(
        readings.get("tap_temp_c", device=furnace.id), weights, hours
    )
    out = []
    rows = zip(
        energy.to_dict("records"), taps.to_dict("records"), temps.to_dict("records"), strict=True
    )
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
) -> table_c1.FurnaceC1:
    """The furnace's Table C.1 result for ``window`` from its composed partial (None: the engine
    never saw a reading of the window)."""
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
        **kw,
    )
    refused = [x for x in (p["e_bad"], p["t_bad"]) if x]
    if refused and r.value is None:
        # A refused input series is bad input, not an absence of data: say so first.
        r = dataclasses.replace(r, status=BAD_INPUT, lacking=(*refused, *r.lacking))
    return r


def scorer_tap_temp_c(results: Sequence[table_c1.FurnaceC1], facts: dict, product: str):
    """(DN, °C) for the scorer's one Table C.1 row, so that its note-2 corrected limits equal
    the plant's tonnage-weighted corrected limits (decision D-c1-plant): the DN of the furnace
    with the most tonnes, and its specified temperature S plus the tonnage-weighted excess
    Σ t_f (T_f − S_f) / Σ t_f (each furnace against its own specified temperature S_f; a furnace
    without a tapping temperature counts at its S_f, as its own limits do). With every furnace
    on one specified temperature this is the tonnage-weighted mean tapping temperature."""
    from greenfoundry.scoring.table_c1 import specified_tap_temp_c

    used = [r for r in results if r.energy is not None and (r.iron_t or 0) > 0 and r.limits]
    if not used:
        return None, None
    total = sum(r.iron_t for r in used)
    excess = 0.0
    for r in used:
        f = facts[r.furnace_id]
        spec = specified_tap_temp_c(f.kind, product, dn=f.dn)
        if r.tap_temp_c is not None and spec is not None:
            excess += r.iron_t * (r.tap_temp_c - spec)
    ref = facts[max(used, key=lambda r: r.iron_t).furnace_id]
    spec = specified_tap_temp_c(ref.kind, product, dn=ref.dn)
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
    codes = [ANALYSER_CODES.get(int(v), str(int(v))) if np.isfinite(v) else "" for v in series]
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
    hourly = emissions.hourly_means_mg_m3(
        conc,
        hours,
        status=status,
        o2_pct=o2,
        o2_ref_pct=o2_ref_pct,
        min_valid_minutes=min_valid_minutes,
    )
    mult = emissions.multiples_of_c(hourly, limit).to_numpy(float)
    out = []
    for i, (h, r) in enumerate(zip(hours, hourly.to_dict("records"), strict=True)):
        m = _f(mult[i])
        band = (
            int(emissions._band_of(np.array([m]), emissions.TABLE6_BANDS)[0])
            if m is not None
            else 0
        )
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


def air_combine(parts: Sequence[dict]) -> dict:
    out: dict[str, Any] = {k: 0 for k in AIR_SUMS}
    out["sum_m"] = 0.0
    out["max_m"], out["max_at"] = None, None
    for p in parts:
        for k in AIR_SUMS:
            out[k] += p[k]
        if p["max_m"] is not None and (out["max_m"] is None or p["max_m"] > out["max_m"]):
            out["max_m"], out["max_at"] = p["max_m"], p["max_at"]
    out["bad"] = _first(p.get("bad", "") for p in parts)
    return out


def air_finish(
    window, p: dict | None, *, rule: str, min_coverage: float, min_valid_minutes: int
) -> dict:
    """A window's Table 6 result of one stack's pollutant from its composed partial."""
    p = p or air_combine([])
    hours = window.minutes // 60
    n = p["valid_h"]
    cov = n / hours if hours else 0.0
    lack = []
    if p["bad"]:
        lack.append(p["bad"])
    if n < hours:
        lack.append(
            f"{hours - n} of {hours} hours without a valid hourly mean (a valid hour needs "
            f"{min_valid_minutes} valid minutes, HJ 75)"
        )
    if p["flagged_min"]:
        lack.append(f"{p['flagged_min']} minutes flagged by the analyser status")
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
