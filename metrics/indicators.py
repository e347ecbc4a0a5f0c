"""The indicators file `greenfoundry score` reads, from the rollup points in InfluxDB.

Rows written (the standard's ids, `greenfoundry standard show`):

* ``energy.liquid_iron.energy_per_t`` (Table C.1): the plant value of ``gf_c1_plant`` (decision
  D-c1-plant: Σ energy / Σ tonnes), its coverage, and as context the DN and tapping temperature
  at which the scorer's one Table C.1 row gives the plant's tonnage-weighted corrected limits
  (``rollups.scorer_tap_temp_c``). The site's mean air temperature (note 4) goes in the context
  only when the plant config has none: the scorer refuses a context that contradicts the
  config, so when both exist and differ the file says so in a note.
* ``emissions.air.multiple_of_c`` (Table 6): the plant value of ``gf_air_plant`` (decision
  D-c6-window: the highest valid hourly multiple of C over every stack and pollutant, with the
  lowest coverage among them).

A row whose rollup has no value (no data, bad input) is left out, with a note: the scorer then
reports it as no data, never a silent 0.
"""

from __future__ import annotations

import sys
import time

import pandas as pd
import yaml

from greenfoundry.errors import InputError, UsageError
from greenfoundry.metrics import schema, source
from greenfoundry.metrics import windows as win
from greenfoundry.store import where

C1_ROW = "energy.liquid_iron.energy_per_t"
AIR_ROW = "emissions.air.multiple_of_c"


def window_for(label: str, tz: str, now_s: float | None = None) -> win.Window:
    """``YYYY``, ``YYYY-MM`` or ``trailing-12m`` as a plant-local window."""
    if label == "trailing-12m":
        now = pd.Timestamp(time.time() if now_s is None else now_s, unit="s", tz="UTC")
        return win.latest_complete("trailing_12m", now, tz)
    try:
        w = win.calendar_window(label, tz)
    except ValueError:
        w = None
    if w is None or w.kind == "day":
        raise UsageError(
            f"--window {label!r} is not allowed; expected YYYY, YYYY-MM or trailing-12m"
        )
    return w


def _point(store, measurement: str, plant_id: str, w: win.Window) -> dict | None:
    q = (
        f"SELECT * FROM {measurement} "
        f"{where({'plant': plant_id, 'window': w.kind}, start_ns=w.start.value, end_ns=w.start.value + 1)}"
    )
    df = store.query(q)
    if df.empty:
        return None
    row = df.iloc[0].to_dict()
    return {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}


def _local_date(t: pd.Timestamp, tz: str) -> str:
    return f"{t.tz_convert(tz):%Y-%m-%d}"


def indicators_file(cfg, label: str, *, store=None, now_s: float | None = None):
    """(the indicators document, notes) for the window ``label``."""
    tz = cfg.plant.timezone
    w = window_for(label, tz, now_s)
    store = store or source.store_for_metrics(cfg)
    notes: list[str] = []
    rows: dict = {}
    c1 = _point(store, schema.C1_PLANT, cfg.plant.id, w)
    if c1 is None:
        notes.append(
            f"{C1_ROW}: no rollup of window {w.label} yet (run `greenfoundry metrics backfill` "
            "or `metrics run`); left out"
        )
    else:
        unit_field = next((f for f in ("kwh_per_t", "kgce_per_t") if f in c1), None)
        if unit_field is None:
            notes.append(f"{C1_ROW}: {c1.get('status')}: {c1.get('lacking', '')}; left out")
        else:
            context = {}
            if "scorer_dn" in c1:
                context["dn"] = int(c1["scorer_dn"])
            if "scorer_tap_temp_c" in c1:
                context["tap_temp_c"] = round(float(c1["scorer_tap_temp_c"]), 3)
            air = c1.get("annual_mean_air_temp_c")
            configured = cfg.plant.annual_mean_air_temp_c
            source_ = c1.get("air_temp_source")
            if air is not None and configured is None:
                context["annual_mean_air_temp_c"] = round(float(air), 3)
            elif air is not None and source_ == "readings" and abs(air - configured) > 1e-9:
                notes.append(
                    f"{C1_ROW}: the {c1.get('air_temp_year')} ambient_temp_c readings give "
                    f"{air:.2f} °C, the plant config says {configured:g} °C; the scorer takes "
                    "the config's (remove plant.site.annual_mean_air_temp_c to score on the "
                    "readings)"
                )
            if c1.get("status") != "ok":
                notes.append(f"{C1_ROW}: {c1.get('status')}: {c1.get('lacking', '')}")
            rows[C1_ROW] = {
                "value": round(float(c1[unit_field]), 6),
                "unit": "kWh/t" if unit_field == "kwh_per_t" else "kgce/t",
                "coverage": round(min(1.0, float(c1.get("coverage", 0.0))), 6),
                "context": context,
            }
    air = _point(store, schema.AIR_PLANT, cfg.plant.id, w)
    if air is None:
        notes.append(f"{AIR_ROW}: no rollup of window {w.label} yet; left out")
    elif "multiple_of_c" not in air:
        notes.append(f"{AIR_ROW}: {air.get('status')}: {air.get('lacking', '')}; left out")
    else:
        if air.get("status") != "ok":
            notes.append(f"{AIR_ROW}: {air.get('status')}: {air.get('lacking', '')}")
        rows[AIR_ROW] = {
            "value": round(float(air["multiple_of_c"]), 6),
            "unit": "C",
            "coverage": round(min(1.0, float(air.get("coverage", 0.0))), 6),
        }
    doc = {
        "version": 1,
        "plant": cfg.plant.id,
        "window": {"start": _local_date(w.start, tz), "end": _local_date(w.end, tz)},
        "rows": rows,
    }
    return doc, notes


def write_indicators(doc: dict, out: str | None) -> None:
    text = (
        "# Indicator values computed by `greenfoundry metrics indicators` from the rollups in\n"
        "# InfluxDB (metrics/README.md); window start inclusive, end exclusive, plant-local.\n"
        + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    )
    if out is None:
        sys.stdout.write(text)
        return
    try:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write: {exc.strerror}") from None
