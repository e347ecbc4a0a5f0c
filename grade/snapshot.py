"""The monthly grade snapshot (issue 9): the month just ended and the trailing 12 months,
scored, stored as JSON (docs/snapshot-json-schema.md), in InfluxDB and as an HTML report.

When: the snapshot of a plant-local month is due at ``report.lateness`` (default 06:00,
plant-local) on the 1st of the next month, so late readings of the month's last hours have
time to arrive and the metrics to compose the month. ``run_due`` makes every due month that has
no snapshot yet (a month missed while the service was down is caught up at its next run);
``make`` makes one on demand (`greenfoundry report`).

What is scored: ``grade.compute.compute_window`` for the month (``YYYY-MM``) and for the 12
months ending with it (``YYYY-MM/P12M``), both evaluated as of the month's last day: evidence
that lapsed before then is expired, evidence declared after it does not count.

Idempotent: the JSON and the HTML are a function of the data (rollups, evidence, the plant
config, the month's alerts and the previous snapshot); the generation time is their one
varying line. Points are read in a fixed order and floats written with Python's shortest repr.

Storage and order of a run (``store_snapshot``): the JSON and the HTML (and the PDF) are written
to ``<report.dir>/<plant>/`` (each via a temporary file renamed into place), the snapshot is
handed to the dispatcher (durable outbox), and the point ``gf_snapshot`` is written last, as
the mark that the month is done. A crash before the mark makes the month again on the next run,
and sends it again: at least once, as the dispatcher delivers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from greenfoundry.errors import GreenfoundryError, InputError, UsageError
from greenfoundry.metrics import schema, source
from greenfoundry.metrics import windows as win
from greenfoundry.scoring import scorer
from greenfoundry.scoring.standard import Standard, load_standard
from greenfoundry.store import line, quote_ident, where

log = logging.getLogger("greenfoundry.grade.snapshot")

SCHEMA_ID = "greenfoundry.snapshot/1"
MEASUREMENT = "gf_snapshot"
ALERT_MEASUREMENT = "gf_alert"
MAX_CATCH_UP = 12  # months run_due goes back at most
ALERT_FIELDS = (  # of a gf_alert point (the alerts engine's transition schema)
    "rule",
    "target",
    "alert_id",
    "state",
    "from_state",
    "event",
    "severity",
    "kind",
    "value",
    "limit",
    "unit",
    "message",
    "since_ns",
    "acked_by",
)
# Table 9 as a ladder, for the change of level: not rated 0, level 3 → 1, 2 → 2, 1 → 3.
LADDER = {None: 0, 3: 1, 2: 2, 1: 3}
ROW_KEYS = (
    "row_id",
    "group",
    "indicator",
    "name_zh",
    "name_en",
    "status",
    "source",
    "value",
    "unit",
    "tier",
    "li",
    "points",
    "points_max",
    "would_be_tier",
    "reason",
    "coverage",
    "window",
    "next_tier",
)
GAP_KEYS = (
    "next_grade",
    "deficit",
    "plan",
    "plan_points_added",
    "exact",
    "reason",
    "note",
    "missing_data",
    "missing_data_points_max",
)


@dataclass(frozen=True)
class Snapshot:
    month: str  # YYYY-MM, plant-local
    document: dict  # the JSON document (docs/snapshot-json-schema.md)
    report: Any  # ReportData: the series the HTML plots
    json_text: str  # the document as written (indent 2, one key per line)
    html: str
    month_result: scorer.ScoreResult = field(repr=False)
    trailing_result: scorer.ScoreResult = field(repr=False)


@dataclass(frozen=True)
class Stored:
    json_path: Path
    html_path: Path
    pdf_path: Path | None


# --------------------------------------------------------------------------- months and time


def month_window(cfg, month: str) -> win.Window:
    """The plant-local calendar month ``YYYY-MM``."""
    try:
        w = win.calendar_window(month, cfg.plant.timezone)
    except ValueError:
        w = None
    if w is None or w.kind != "month" or len(month) != 7:
        raise UsageError(f"--month {month!r} is not allowed; expected a month YYYY-MM")
    return w


def _label(w: win.Window) -> str:
    return f"{w.local_start:%Y-%m}"


def next_month(w: win.Window) -> win.Window:
    return win.window_containing(w.end, "month", w.tz)


def previous_month(w: win.Window) -> win.Window:
    return win.window_containing(w.start - pd.Timedelta(1, "ns"), "month", w.tz)


def due_at(cfg, w: win.Window) -> pd.Timestamp:
    """When the snapshot of month ``w`` is due: ``report.lateness`` plant-local on the 1st of the
    next month, as a UTC instant (a time in a DST gap moves past the gap)."""
    t = cfg.report.lateness
    local = pd.Timestamp(w.end.tz_convert(w.tz).date()) + pd.Timedelta(
        hours=t.hour, minutes=t.minute
    )
    return local.tz_localize(w.tz, nonexistent="shift_forward", ambiguous=False).tz_convert("UTC")


def _utc(now) -> pd.Timestamp:
    if isinstance(now, int | float) and not isinstance(now, bool):
        return pd.Timestamp(now, unit="s", tz="UTC")
    t = pd.Timestamp(now)
    if t.tzinfo is None:
        raise ValueError("run_due: `now` must be timezone-aware (or epoch seconds)")
    return t.tz_convert("UTC")


def latest_due(cfg, now) -> win.Window:
    """The newest month whose snapshot is due at ``now``."""
    now = _utc(now)
    w = previous_month(win.window_containing(now, "month", cfg.plant.timezone))
    return w if due_at(cfg, w) <= now else previous_month(w)


def paths(cfg, month: str) -> tuple[Path, Path, Path]:
    """(JSON, HTML, PDF) paths of a month's snapshot: ``<dir>/<plant>/<plant>-<YYYY-MM>.*``."""
    folder = Path(cfg.report.dir) / cfg.plant.id
    stem = f"{cfg.plant.id}-{month}"
    return folder / f"{stem}.json", folder / f"{stem}.html", folder / f"{stem}.pdf"


def _iso_utc(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- reading InfluxDB


def _clean(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if v is not None and not (isinstance(v, float) and v != v)}


def _records(store, q: str) -> list[dict]:
    df = store.query(q)
    if df.empty:
        return []
    return [_clean(r) for r in df.to_dict("records")]


def _raw(store, q: str) -> list[dict]:
    """The rows of an InfluxQL answer as dicts, values as InfluxDB sent them (integer ns stay
    integers: a pandas column with a gap would turn them into floats and round them)."""
    out = []
    for result in store.query_raw(q):
        for series in result.get("series", []):
            tags = series.get("tags") or {}
            for values in series.get("values", []):
                rec = dict(zip(series["columns"], values, strict=True))
                rec.update(tags)
                out.append(rec)
    return out


def stored_months(cfg, store, start_ns: int, end_ns: int) -> set[str]:
    """The months of the plant's gf_snapshot points in [start, end) that stand for their month
    (only `month` and `generated_at_ns` are read: run_due asks every run). A snapshot made
    before its month was due (`greenfoundry report` on the running month) scored part of the
    month: it does not count, so the month is made when due; a point without
    `generated_at_ns` (written before the field existed) counts."""
    q = (
        f"SELECT {quote_ident('month')}, {quote_ident('generated_at_ns')} "
        f"FROM {quote_ident(MEASUREMENT)} "
        f"{where({'plant': cfg.plant.id}, start_ns=start_ns, end_ns=end_ns)}"
    )
    out = set()
    for r in _raw(store, q):
        month, made = r.get("month"), r.get("generated_at_ns")
        if not month:
            continue
        if made is not None and int(made) < due_at(cfg, month_window(cfg, month)).value:
            continue
        out.add(month)
    return out


def month_alerts(cfg, store, w: win.Window) -> list[dict]:
    """The alert transitions (gf_alert, written by the alerts engine) of the month, oldest first;
    [] when there are none (or no alerts engine ran)."""
    q = (
        f"SELECT * FROM {quote_ident(ALERT_MEASUREMENT)} "
        f"{where({'plant': cfg.plant.id}, start_ns=w.start.value, end_ns=w.end.value)}"
    )
    out = []
    for r in _raw(store, q):
        at_ns = int(r["time"])
        item = {"at": _iso_utc(at_ns), "at_ns": at_ns}
        for k in ALERT_FIELDS:
            item[k] = r.get(k)
        out.append(item)
    out.sort(key=lambda a: (a["at_ns"], a["rule"] or "", a["target"] or "", a["state"] or ""))
    return out


@dataclass(frozen=True)
class ReportData:
    """The series the report plots, read from the rollups (metrics/README.md, Schema)."""

    tz: str
    month_start: pd.Timestamp
    month_end: pd.Timestamp
    c1_unit: str
    c1_days: dict  # furnace → DataFrame[time, value, limit_tier1..3, coverage]
    air_hours: dict  # (stack, pollutant) → DataFrame[time, value]
    furnace_names: dict  # furnace → its label in the plots (kind in Chinese and English, size)
    stack_names: dict  # (stack, pollutant) → its label (the stack's source, the limit C)
    t5_months: list  # [(YYYY-MM, kgce/t or None)], the last 24 months, oldest first
    coverage: dict  # {"days": [...], "series": [{"series", "row_id", "name_zh", "name_en", …}]}


def _frame(recs: list[dict], value: str, extra: dict[str, str] | None = None) -> pd.DataFrame:
    cols = {"time": [r["time"] for r in recs], "value": [r.get(value) for r in recs]}
    for name, src in (extra or {}).items():
        cols[name] = [r.get(src) for r in recs]
    return pd.DataFrame(cols).sort_values("time", kind="stable").reset_index(drop=True)


def _c1_unit(cfg) -> str:
    kinds = {f.kind for f in cfg.furnaces}
    return "kgce/t" if kinds == {"cupola"} else "kWh/t"


def report_data(cfg, store, w: win.Window, standard: Standard) -> ReportData:
    pid, tz = cfg.plant.id, cfg.plant.timezone
    span = {"start_ns": w.start.value, "end_ns": w.end.value}
    unit = _c1_unit(cfg)
    ufield = schema.UNIT_FIELD[unit]
    c1 = _records(
        store,
        f"SELECT * FROM {schema.C1_FURNACE} {where({'plant': pid, 'window': 'day'}, **span)} "
        "GROUP BY furnace",
    )
    c1_days = {}
    for fid in sorted({r["furnace"] for r in c1}):
        recs = [r for r in c1 if r["furnace"] == fid]
        c1_days[fid] = _frame(
            recs,
            ufield,
            {f"limit_tier{k}": f"limit_tier{k}_{ufield}" for k in (1, 2, 3)}
            | {"coverage": "coverage"},
        )
    air = _records(
        store,
        f"SELECT multiple_of_c FROM {schema.AIR_STACK} "
        f"{where({'plant': pid, 'window': 'hour'}, **span)} GROUP BY stack, pollutant",
    )
    air_hours = {}
    for key in sorted({(r["stack"], r["pollutant"]) for r in air}):
        recs = [r for r in air if (r["stack"], r["pollutant"]) == key]
        air_hours[key] = _frame(recs, "multiple_of_c")
    # The last 24 months, this one included: enough for the CUSUM, whose earliest month is
    # January of the year before (at most 22 months back).
    first = w
    for _ in range(23):
        first = previous_month(first)
    t5 = _records(
        store,
        f"SELECT kgce_per_t FROM {schema.T5_PLANT} "
        f"{where({'plant': pid, 'window': 'month', 'indicator': 'energy_per_t_pipe'}, start_ns=first.start.value, end_ns=w.end.value)}",
    )
    by_month = {
        f"{r['time'].tz_convert(tz):%Y-%m}": float(r["kgce_per_t"]) for r in t5 if "kgce_per_t" in r
    }
    months, m = [], first
    for _ in range(24):
        months.append((_label(m), by_month.get(_label(m))))
        m = next_month(m)
    spec = getattr(standard.furnace_table, "furnaces", {}) if standard.furnace_table else {}
    furnace_names = {}
    for f in cfg.furnaces:
        kind = spec.get(f.kind)
        kind_text = f"{kind.name_zh} {kind.name_en}" if kind is not None else f.kind
        dn = f", DN{f.dn_min}–{f.dn_max}" if f.dn_range else ""
        furnace_names[f.id] = f"furnace {f.id}: {kind_text}, {f.capacity:g} {f.capacity_unit}{dn}"
    stack_names = {}
    for s in cfg.stacks:
        for pollutant, limit in s.limits_mg_m3.items():
            stack_names[(s.id, pollutant)] = (
                f"stack {s.id} ({s.source}): {pollutant}, C = {limit:g} mg/m³"
            )
    return ReportData(
        tz=tz,
        furnace_names=furnace_names,
        stack_names=stack_names,
        month_start=w.start,
        month_end=w.end,
        c1_unit=unit,
        c1_days=c1_days,
        air_hours=air_hours,
        t5_months=months,
        coverage=daily_coverage(cfg, store, w, standard),
    )


def daily_coverage(cfg, store, w: win.Window, standard: Standard) -> dict:
    """Per rollup series behind a row of the standard, the coverage of each day of the month
    (the day window's `coverage`; null for a day without a rollup)."""
    pid, tz = cfg.plant.id, cfg.plant.timezone
    span = {"start_ns": w.start.value, "end_ns": w.end.value}
    days = [d for d in win.windows_covering("day", w.start, w.end, tz)]
    labels = [f"{d.local_start:%Y-%m-%d}" for d in days]
    index = {d.start.value: i for i, d in enumerate(days)}
    series: list[dict] = []

    def add(name: str, row_id: str | None, recs: list[dict]) -> None:
        cov: list[float | None] = [None] * len(days)
        for r in recs:
            i = index.get(int(r["time"].value))
            if i is not None and "coverage" in r:
                cov[i] = round(float(r["coverage"]), 6)
        row = standard.rows.get(row_id) if row_id else None
        series.append(
            {
                "series": name,
                "row_id": row_id,
                "name_zh": row.name_zh if row else None,
                "name_en": row.name_en if row else None,
                "coverage": cov,
            }
        )

    day = {"plant": pid, "window": "day"}
    c1 = _records(
        store, f"SELECT coverage FROM {schema.C1_FURNACE} {where(day, **span)} GROUP BY furnace"
    )
    for fid in sorted({r["furnace"] for r in c1}):
        add(
            f"Table C.1 {fid}",
            "energy.liquid_iron.energy_per_t",
            [r for r in c1 if r["furnace"] == fid],
        )
    air = _records(
        store,
        f"SELECT coverage FROM {schema.AIR_STACK} {where(day, **span)} GROUP BY stack, pollutant",
    )
    for key in sorted({(r["stack"], r["pollutant"]) for r in air}):
        add(
            f"Table 6 {key[0]}/{key[1]}",
            "emissions.air.multiple_of_c",
            [r for r in air if (r["stack"], r["pollutant"]) == key],
        )
    for measurement in (schema.T5_PLANT, schema.A1_PLANT):
        recs = _records(
            store, f"SELECT coverage FROM {measurement} {where(day, **span)} GROUP BY indicator"
        )
        for name in sorted({r["indicator"] for r in recs}):
            spec = schema.PLANT_INDICATORS.get(name.split(":", 1)[0])
            row_id = spec[3] if spec else None
            if row_id is None:
                continue  # CO2, the overall water rate, the output: no row scored monthly
            add(name, row_id, [r for r in recs if r["indicator"] == name])
    return {"days": labels, "series": series}


# --------------------------------------------------------------------------- the document


def _window_grade(graded, label: str) -> dict:
    d = scorer.result_to_dict(graded.result)
    rows = [{k: r[k] for k in ROW_KEYS} for r in d["rows"]]
    measured = [r for r in rows if r["coverage"] is not None]
    minimum = d["min_coverage"]
    return {
        "label": label,
        "window": dict(graded.window),
        "as_of": graded.as_of.isoformat(),
        "f": d["f"],
        "f_exact": d["f_exact"],
        "points_max": d["points_max"],
        "grade": d["grade"],
        "status_counts": d["status_counts"],
        "groups": [
            {k: g[k] for k in ("id", "no", "name_zh", "name_en", "points", "points_max")}
            for g in d["groups"]
        ],
        "rows": rows,
        "gap": {k: d["gap"][k] for k in GAP_KEYS},
        "coverage": {
            "min_coverage": minimum,
            "measured_rows": len(measured),
            "rows_below_min": [r["row_id"] for r in measured if r["coverage"] < minimum],
            "lowest": None if not measured else min(r["coverage"] for r in measured),
        },
        "warnings": d["warnings"],
        "notes": list(graded.notes),
        # The indicators file scored, as `greenfoundry score --indicators` reads it: anyone can
        # score the snapshot again from the document alone.
        "indicators": graded.indicators,
        "expiring": [{**e, "points": round(float(e["points"]), 4)} for e in graded.expiring],
    }


def _level(grade: dict | None) -> int | None:
    return None if grade is None else grade["level"]


def change(now: dict, before: dict | None, previous_month_label: str | None) -> dict:
    """The change against the previous snapshot: F and the level (steps on the Table 9 ladder,
    positive = better) of both windows, and every row whose status, tier or points changed."""
    if before is None:
        return {
            "previous": None,
            "f_change": None,
            "level_change": None,
            "f_change_trailing_12m": None,
            "level_change_trailing_12m": None,
            "rows": [],
        }

    def diff(key: str) -> tuple[float, int]:
        a, b = now[key], before[key]
        return (
            round(a["f"] - b["f"], 4),
            LADDER[_level(a["grade"])] - LADDER[_level(b["grade"])],
        )

    f_m, l_m = diff("month_grade")
    f_t, l_t = diff("trailing_12m")
    old = {r["row_id"]: r for r in before["month_grade"]["rows"]}
    rows = []
    for r in now["month_grade"]["rows"]:
        o = old.get(r["row_id"])
        if o is None:
            continue
        if (o["status"], o["tier"], o["points"]) != (r["status"], r["tier"], r["points"]):
            rows.append(
                {
                    "row_id": r["row_id"],
                    "status_before": o["status"],
                    "status": r["status"],
                    "tier_before": o["tier"],
                    "tier": r["tier"],
                    "points_before": o["points"],
                    "points": r["points"],
                    "points_change": round(r["points"] - o["points"], 4),
                }
            )
    return {
        "previous": previous_month_label,
        "f_change": f_m,
        "level_change": l_m,
        "f_change_trailing_12m": f_t,
        "level_change_trailing_12m": l_t,
        "rows": rows,
    }


def previous_snapshot(cfg, store, w: win.Window) -> tuple[str | None, dict | None]:
    """The newest stored snapshot before month ``w`` within the 12 months before it."""
    first = w
    for _ in range(MAX_CATCH_UP):
        first = previous_month(first)
    q = (
        f"SELECT {quote_ident('month')}, {quote_ident('json')} FROM {quote_ident(MEASUREMENT)} "
        f"{where({'plant': cfg.plant.id}, start_ns=first.start.value, end_ns=w.start.value)} "
        "ORDER BY time DESC LIMIT 1"
    )
    for r in _raw(store, q):
        try:
            doc = json.loads(r["json"])
        except (TypeError, ValueError):
            doc = None
        if isinstance(doc, dict) and doc.get("schema") == SCHEMA_ID:
            return r["month"], doc
        log.warning(
            "gf_snapshot %s of %s: its json field is not a %s document; the change is left out",
            r.get("month"),
            cfg.plant.id,
            SCHEMA_ID,
        )
    return None, None


def _standard(standard) -> Standard:
    return standard if isinstance(standard, Standard) else load_standard(standard)


def build(
    cfg,
    month: str,
    *,
    store=None,
    standard=None,
    evidence=None,
    generated_at=None,
) -> Snapshot:
    """The snapshot of the plant-local month ``YYYY-MM`` from the stored data (nothing is
    written). ``generated_at`` (default now) is the document's one varying field."""
    from greenfoundry.grade import compute, report_html

    store = store or source.store_for_metrics(cfg)
    std = _standard(standard)
    if evidence is None:
        evidence = compute.load_plant_evidence(cfg)
    w = month_window(cfg, month)
    as_of = (w.end.tz_convert(w.tz) - pd.Timedelta(hours=12)).date()
    first = w
    for _ in range(11):
        first = previous_month(first)
    trailing_label = f"{_label(first)}/P12M"
    graded_m = compute.compute_window(
        cfg, month, as_of, store=store, standard=std, evidence=evidence
    )
    graded_t = compute.compute_window(
        cfg, trailing_label, as_of, store=store, standard=std, evidence=evidence
    )
    generated = _utc(generated_at if generated_at is not None else dt.datetime.now(dt.UTC))
    data = report_data(cfg, store, w, std)
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "generated_at": generated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "plant": {
            "id": cfg.plant.id,
            "name": cfg.plant.name,
            "timezone": cfg.plant.timezone,
            "product": cfg.plant.product,
        },
        "month": month,
        "window": {
            "start": f"{w.local_start:%Y-%m-%d}",
            "end": f"{w.end.tz_convert(w.tz):%Y-%m-%d}",
            "start_ns": w.start.value,
            "end_ns": w.end.value,
        },
        "as_of": as_of.isoformat(),
        "standard": {"id": std.id, "title_zh": std.title_zh, "title_en": std.title_en},
        "li_policy": graded_m.result.options.li_mode,
        "month_grade": _window_grade(graded_m, month),
        "trailing_12m": _window_grade(graded_t, trailing_label),
        "coverage": data.coverage,
        "alerts": month_alerts(cfg, store, w),
    }
    prev_label, prev = previous_snapshot(cfg, store, w)
    doc["change"] = change(doc, prev, prev_label)
    text = dump(doc)
    html = report_html.render(doc, data)
    return Snapshot(month, doc, data, text, html, graded_m.result, graded_t.result)


def dump(doc: dict) -> str:
    """The document's file text: keys in the document's order, indent 2, UTF-8 kept, so
    `generated_at` is a line of its own."""
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


# --------------------------------------------------------------------------- storing, sending


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"report.dir: cannot write {path}: {exc.strerror}") from None


# Headless Chromium as root on a closed network: no sandbox, no GPU, and none of the background
# connections a closed network refuses. The tests open the reports with the same flags.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def print_pdf(html_path: Path, pdf_path: Path, *, timeout_s: float = 120.0) -> None:
    """The HTML printed to PDF by headless Chromium (its print CSS applies)."""
    import shutil
    import subprocess

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise InputError("report.pdf: no chromium on PATH (Debian: apt install chromium)")
    tmp = pdf_path.with_name(f".{pdf_path.name}.tmp")
    cmd = [
        exe,
        "--headless",
        *CHROMIUM_ARGS,
        "--no-pdf-header-footer",
        f"--print-to-pdf={tmp}",
        html_path.resolve().as_uri(),
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout_s)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"report.pdf: chromium could not print {html_path}: {exc}") from None
    if not tmp.exists() or tmp.stat().st_size == 0:
        raise InputError(f"report.pdf: chromium printed nothing for {html_path}")
    os.replace(tmp, pdf_path)


def snapshot_point(cfg, snap: Snapshot, html_path: Path) -> str:
    """The gf_snapshot point (docs/snapshot-json-schema.md, InfluxDB): tag plant; the month's
    start, UTC ns."""
    doc = snap.document
    m, t = doc["month_grade"], doc["trailing_12m"]
    fields: dict[str, Any] = {
        "month": snap.month,
        "f": float(m["f"]),
        "f_trailing_12m": float(t["f"]),
    }
    if m["grade"] is not None:
        fields["level"] = int(m["grade"]["level"])
    if t["grade"] is not None:
        fields["level_trailing_12m"] = int(t["grade"]["level"])
    ch = doc["change"]
    if ch["previous"] is not None:
        fields["f_change"] = float(ch["f_change"])
        fields["level_change"] = int(ch["level_change"])
    for status, n in m["status_counts"].items():
        fields[f"rows_{status}"] = int(n)
    fields["alerts"] = len(doc["alerts"])
    # When it was made: one made before its month was due is not the month's (stored_months).
    fields["generated_at_ns"] = int(pd.Timestamp(doc["generated_at"]).value)
    fields["json"] = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    fields["html_path"] = str(html_path)
    return line(MEASUREMENT, {"plant": cfg.plant.id}, fields, int(doc["window"]["start_ns"]))


def notification(cfg, snap: Snapshot, stored: Stored):
    """The snapshot as a Notification (event "snapshot") with the HTML (and PDF) attached."""
    from greenfoundry.alerts.notification import Attachment, Notification

    doc = snap.document
    m, t, ch = doc["month_grade"], doc["trailing_12m"], doc["change"]

    def grade_text(g: dict) -> str:
        lvl = g["grade"]
        return f"F {g['f']:.1f}, " + (f"level {lvl['level']}" if lvl else "not rated")

    delta = "" if ch["previous"] is None else f" ({ch['f_change']:+.1f} vs {ch['previous']})"
    subject = f"{cfg.plant.name}: grade snapshot {snap.month}: {grade_text(m)}{delta}"
    plan = m["gap"]["plan"] or []
    lines = [
        f"Monthly grade snapshot of {cfg.plant.name} ({cfg.plant.id}), {snap.month}, "
        f"against {doc['standard']['id']}.",
        f"The month: {grade_text(m)}{delta}.",
        f"The trailing 12 months ({t['label']}): {grade_text(t)}.",
    ]
    if m["gap"]["next_grade"] is not None:
        lines.append(
            f"To level {m['gap']['next_grade']['level']}: {m['gap']['deficit']:.1f} points; "
            f"{m['gap']['reason']}"
        )
        for mv in plan:
            tgt = mv["target"]
            lines.append(f"  - {mv['row_id']}: to tier {mv['to_tier']} ({tgt['printed']})")
    lines.append(f"Alerts in the month: {len(doc['alerts'])}.")
    lines.append(f"The report is attached ({stored.html_path.name}).")
    text = "\n".join(lines)
    markdown = f"**{subject}**\n\n" + "\n".join(
        f"> {x}" if not x.startswith("  - ") else x.strip() for x in lines[1:]
    )
    attachments = [
        Attachment(stored.html_path.name, "text/html; charset=utf-8", snap.html.encode("utf-8"))
    ]
    if stored.pdf_path is not None:
        attachments.append(
            Attachment(stored.pdf_path.name, "application/pdf", stored.pdf_path.read_bytes())
        )
    return Notification(
        id=f"snapshot:{cfg.plant.id}:{snap.month}",
        plant=cfg.plant.id,
        plant_name=cfg.plant.name,
        event="snapshot",
        severity="info",
        rule="snapshot",
        subject=subject,
        text=text,
        markdown=markdown,
        at_ns=int(doc["window"]["end_ns"]),
        value=float(m["f"]),
        unit="points",
        link=f"greenfoundry report --config {cfg.path} --month {snap.month}",
        details={
            "month": snap.month,
            "f": m["f"],
            "level": _level(m["grade"]),
            "f_trailing_12m": t["f"],
            "level_trailing_12m": _level(t["grade"]),
            "f_change": ch["f_change"],
            "json_path": str(stored.json_path),
            "html_path": str(stored.html_path),
        },
        attachments=tuple(attachments),
    )


def store_snapshot(
    cfg, snap: Snapshot, *, store=None, pdf: bool | None = None, dispatcher=None
) -> Stored:
    """Write the files, send through `report.channels` (when a dispatcher is given), then the
    gf_snapshot point (the mark that the month is done; module docstring)."""
    store = store or source.store_for_metrics(cfg)
    json_path, html_path, pdf_path = paths(cfg, snap.month)
    _write_atomic(json_path, snap.json_text.encode("utf-8"))
    _write_atomic(html_path, snap.html.encode("utf-8"))
    want_pdf = cfg.report.pdf if pdf is None else pdf
    if want_pdf:
        print_pdf(html_path, pdf_path)
    stored = Stored(json_path, html_path, pdf_path if want_pdf else None)
    if dispatcher is not None and cfg.report.channels:
        dispatcher.submit(notification(cfg, snap, stored), cfg.report.channels)
    store.write_lines([snapshot_point(cfg, snap, html_path)])
    return stored


def make(
    cfg,
    month: str,
    *,
    store=None,
    standard=None,
    evidence=None,
    pdf=None,
    dispatcher=None,
    generated_at=None,
) -> Stored:
    """Build and store the snapshot of ``month`` (`greenfoundry report`); again when it exists:
    the same data gives the same files."""
    store = store or source.store_for_metrics(cfg)
    snap = build(
        cfg, month, store=store, standard=standard, evidence=evidence, generated_at=generated_at
    )
    return store_snapshot(cfg, snap, store=store, pdf=pdf, dispatcher=dispatcher)


def due_months(cfg, now, *, store) -> list[str]:
    """The months whose snapshot is due at ``now`` and not stored yet, oldest first: every month
    after the newest stored snapshot, at most ``MAX_CATCH_UP`` (the newest due month and the 11
    before it). With no snapshot stored in the ten years before ``now``, only the newest due
    month: a new plant starts its series there. A month stored on demand (`greenfoundry
    report`) after it was due counts as stored, and so do the months before it; one stored
    before it was due does not count (``stored_months``)."""
    last = latest_due(cfg, now)
    months = [last]
    for _ in range(MAX_CATCH_UP - 1):
        months.append(previous_month(months[-1]))
    months.reverse()
    horizon = (last.start - pd.Timedelta(days=3653)).value
    end = win.window_containing(_utc(now), "month", cfg.plant.timezone).end.value
    stored = stored_months(cfg, store, horizon, end)
    if not stored:
        return [_label(last)]
    newest = max(stored)
    return [_label(m) for m in months if _label(m) > newest]


# The last failure logged per (plant, month): run_due runs every minute, so the same reason is
# logged at ERROR once and then at DEBUG until it changes or the month succeeds.
_LAST_FAILURE: dict[tuple[str, str], str] = {}


def run_due(cfg, now, *, store=None, dispatcher=None, stop=None) -> list[Path]:
    """Make every snapshot due at ``now`` (a timezone-aware datetime or epoch seconds) that is
    not stored yet (``due_months``), store it and send it through ``report.channels`` with
    ``dispatcher.submit(notification, channels)`` when a dispatcher is given. Returns the JSON
    paths made, oldest first; [] when nothing is due. The metrics service calls it each run.

    A month that cannot be made (an input the scorer refuses, InfluxDB away) is logged with its
    reason and counted in ``failures``; the months after it wait (each is compared with the one
    before), and the next run tries again. Nothing is raised for those."""
    store = store or source.store_for_metrics(cfg)
    made = []
    try:
        months = due_months(cfg, now, store=store)
    except GreenfoundryError as exc:
        _failed(cfg, "?", exc)
        return made
    for month in months:
        if stop is not None and stop.is_set():  # the service stops: the rest at the next run
            break
        log.info("grade snapshot of %s for %s is due; making it", cfg.plant.id, month)
        try:
            # Made at the caller's now: the instant that made the month due (stored_months).
            stored = make(cfg, month, store=store, dispatcher=dispatcher, generated_at=now)
        except GreenfoundryError as exc:
            _failed(cfg, month, exc)
            break
        _LAST_FAILURE.pop((cfg.plant.id, month), None)
        made.append(stored.json_path)
    return made


failures = 0  # months run_due could not make, since the process started


def _failed(cfg, month: str, exc: Exception) -> None:
    global failures
    failures += 1
    key, reason = (cfg.plant.id, month), str(exc)
    level = logging.DEBUG if _LAST_FAILURE.get(key) == reason else logging.ERROR
    _LAST_FAILURE[key] = reason
    log.log(level, "grade snapshot of %s for %s not made: %s", cfg.plant.id, month, reason)
