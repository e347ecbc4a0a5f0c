"""The indicators file `greenfoundry score` reads, from the rollup points in InfluxDB.

Rows written (the standard's ids, `greenfoundry standard show`):

* ``energy.liquid_iron.energy_per_t`` (Table C.1): the plant value of ``gf_c1_plant`` (decision
  D-c1-plant: Σ energy / Σ tonnes), its coverage, and as context the DN and tapping temperature
  at which the scorer's one Table C.1 row gives the plant's tonnage-weighted corrected limits
  (``rollups.scorer_tap_temp_c``). The site's mean air temperature (note 4) goes in the context
  only when the plant config has none: the scorer refuses a context that contradicts the
  config, so when both exist and differ the file says so in a note.
* ``emissions.air.multiple_of_c`` (Table 6): the plant value of ``gf_air_plant`` (decision
  D-t6-window: the highest valid hourly multiple of C over every stack and pollutant, with the
  lowest coverage among them).
* ``emissions.water.multiple_of_d`` (Table 6): the plant value of ``gf_water_plant`` (decisions
  D-t6-water-*: the highest valid daily mean as a multiple of D over every outfall and
  pollutant, with the lowest coverage among them).
* ``emissions.noise.multiple_of_e`` (Table 6): the plant value of ``gf_noise_plant`` (decisions
  D-t6-noise-*: the highest valid hourly Leq / E over every boundary point, day and night hours
  against their own E), with the context ``residential_within_1200m`` of the plant config,
  which picks the row's variant. A plant whose config maps no outfall or no boundary noise
  gets no row here: the row stays the evidence file's (declared), with a note.

* The plant indicators of Table 5, Table A.1 (``gf_t5_plant``, ``gf_a1_plant``, tag
  ``indicator``; the rows of ``schema.PLANT_INDICATORS``): energy per tonne of good pipe, the
  power factor, the water-reuse rates, sand and metal reuse, scrap rate, process yield, the
  first-pass and online inspection rates. For ductile pipe the first-pass rows depend on the
  DN range (Table A.1) and take one value: decision D-a1-dn, the rate of the DN range with the
  most pipes tested in the window, with the other ranges in a note; its context ``dn`` is a
  size inside that range (``DN_CONTEXT``), which only picks the row's tiers.
* ``scale.output.annual_output`` (Table 2, decision D-three-years): for a calendar-year window
  only, the mean of the output of that year and the two before (``table_a1
  .three_year_output_10kt``), with its own three-year window.

CO2 per tonne and the overall water repeat-use rate are rollups with no row of the standard:
they are not in the file.

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
WATER_ROW = "emissions.water.multiple_of_d"
NOISE_ROW = "emissions.noise.multiple_of_e"
OUTPUT_ROW = "scale.output.annual_output"
DN_ROWS = ("hydro_first_pass", "pipe_first_pass")  # Table A.1 rows with tiers by DN range
# A size inside each Table A.1 range, given as the row's context `dn`: it picks the range's
# tiers and nothing else (table_a1.dn_range_of; DN1100 is a standard size above DN1000).
DN_CONTEXT = {"DN80-300": 80, "DN350-1000": 350, "DN>1000": 1100}


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
    # A field this point lacks is None (or NaN) when another series of the measurement has it.
    return {k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and v != v)}


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
    rows.update(_t6_rows(store, cfg, w, notes))
    rows.update(_plant_rows(store, cfg, w, notes))
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


def _plant_points(store, measurement: str, plant_id: str, w: win.Window) -> dict[str, dict]:
    """indicator → its point's fields, of the plant measurement for window ``w``."""
    span = {"start_ns": w.start.value, "end_ns": w.start.value + 1}
    df = store.query(
        f"SELECT * FROM {measurement} {where({'plant': plant_id, 'window': w.kind}, **span)}"
    )
    out = {}
    for rec in [] if df.empty else df.to_dict("records"):
        out[rec["indicator"]] = {
            k: v for k, v in rec.items() if v is not None and not (isinstance(v, float) and v != v)
        }
    return out


def _row(point: dict, name: str, row: str, notes: list[str], **context) -> dict | None:
    _m, field, unit, _row = schema.plant_spec(name)
    if field not in point:
        notes.append(f"{row}: {point.get('status')}: {point.get('lacking', '')}; left out")
        return None
    if point.get("status") != "ok":
        notes.append(f"{row}: {point.get('status')}: {point.get('lacking', '')}")
    out = {
        "value": round(float(point[field]), 6),
        "unit": unit,
        "coverage": round(min(1.0, float(point.get("coverage", 0.0))), 6),
    }
    if context:
        out["context"] = context
    return out


def _plant_rows(store, cfg, w: win.Window, notes: list[str]) -> dict:
    """The rows of Table 5 and Table A.1 (and Table 2's output) from the plant rollups."""
    from greenfoundry.metrics.measured import LOW_COVERAGE, OK, Measured
    from greenfoundry.metrics.table_a1 import three_year_output_10kt

    points = {}
    for measurement in (schema.T5_PLANT, schema.A1_PLANT):
        points.update(_plant_points(store, measurement, cfg.plant.id, w))
    rows: dict = {}
    ductile = cfg.plant.product == "ductile"
    for name, (_m, _field, _unit, row) in schema.PLANT_INDICATORS.items():
        if row is None or name == "output":
            continue
        if ductile and name in DN_ROWS:
            ranges = [
                (float(p.get("tested", 0.0)), k.split(":", 1)[1], p)
                for k, p in points.items()
                if k.startswith(f"{name}:")
            ]
            if not ranges:
                if name in points:
                    notes.append(f"{row}: no pipes tested in a Table A.1 DN range; left out")
                continue
            tested, rng, p = max(ranges, key=lambda x: (x[0], x[1]))
            others = [
                f"{r} {q['rate_pct']:.2f} % of {t:g}"
                for t, r, q in sorted(ranges)
                if r != rng and "rate_pct" in q
            ]
            if others:
                notes.append(
                    f"{row}: the value is {rng}'s, the range with the most pipes tested "
                    f"({tested:g}; decision D-a1-dn); also {', '.join(others)}"
                )
            r = _row(p, name, row, notes, dn=DN_CONTEXT[rng])
        elif name in points:
            r = _row(points[name], name, row, notes)
        else:
            continue
        if r is not None:
            rows[row] = r
    if w.kind == "year" and "output" in points:
        years, year = [], w
        for i in range(3):
            if i:
                year = win.window_containing(
                    year.start - pd.Timedelta(days=1), "year", cfg.plant.timezone
                )
            p = (
                points["output"]
                if i == 0
                else _plant_points(store, schema.A1_PLANT, cfg.plant.id, year).get("output", {})
            )
            if "output_10kt" in p:
                st = p.get("status") if p.get("status") == LOW_COVERAGE else OK
                years.append(
                    Measured(float(p["output_10kt"]) * 1e4, int(p.get("n", 0)),
                             float(p.get("coverage", 0.0)), st)
                )  # fmt: skip
            else:
                years.append(None)
        m = three_year_output_10kt(years[::-1])
        if m.value is None:
            notes.append(
                f"{OUTPUT_ROW}: {'; '.join(m.lacking)} (the row takes three years); left out"
            )
        else:
            rows[OUTPUT_ROW] = {
                "value": round(m.value, 6),
                "unit": "万吨/年",
                "coverage": round(m.coverage, 6),
                "window": {
                    "start": _local_date(year.start, cfg.plant.timezone),
                    "end": _local_date(w.end, cfg.plant.timezone),
                },
            }
    return rows


def _t6_rows(store, cfg, w: win.Window, notes: list[str]) -> dict:
    """Table 6's water and noise rows from the plant rollups, where the config maps them."""
    noise_mapped = cfg.boundary_noise is not None and any(
        r.signal == "noise_leq_dba" for r in cfg.routes.values()
    )
    specs = (
        (WATER_ROW, schema.WATER_PLANT, "multiple_of_d", "D", bool(cfg.outfalls),
         "no outfall (outfalls, with discharge_conc_mg_l signals)", None),
        (NOISE_ROW, schema.NOISE_PLANT, "multiple_of_e", "E", noise_mapped,
         "no boundary noise (boundary_noise, with noise_leq_dba signals)",
         {"residential_within_1200m": bool(cfg.plant.residential_within_1200m)}),
    )  # fmt: skip
    rows: dict = {}
    for row, measurement, field, unit, mapped, what, context in specs:
        if not mapped:
            notes.append(f"{row}: the plant config maps {what}; left out (the row stays declared)")
            continue
        p = _point(store, measurement, cfg.plant.id, w)
        if p is None:
            notes.append(f"{row}: no rollup of window {w.label} yet; left out")
            continue
        if field not in p:
            notes.append(f"{row}: {p.get('status')}: {p.get('lacking', '')}; left out")
            continue
        if p.get("status") != "ok":
            notes.append(f"{row}: {p.get('status')}: {p.get('lacking', '')}")
        rows[row] = {
            "value": round(float(p[field]), 6),
            "unit": unit,
            "coverage": round(min(1.0, float(p.get("coverage", 0.0))), 6),
        }
        if context:
            rows[row]["context"] = context
    return rows
