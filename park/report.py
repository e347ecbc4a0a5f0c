"""The park report: the plants of a park side by side for one month, from each plant's monthly
grade snapshot (docs/snapshot-json-schema.md), as one self-contained HTML file.

What is compared, each from the snapshot's `month_grade` rows (so every number is the one the
plant's own report shows):

* Table C.1, energy per tonne of liquid iron (`energy.liquid_iron.energy_per_t`), grouped by the
  furnace kind of the plant's Table C.1 row (kWh/t for induction furnaces, kgce/t for cupolas:
  the two are not put on one axis), against that plant's corrected tier limits. The limits are
  computed as the scorer computes them (`scoring.scorer.row_context` from the plant config and
  the row's context in the snapshot's indicators, then `scoring.table_c1.limits_for_context`):
  the snapshot keeps only the next tier's limit;
* Table 5, overall energy per tonne of pipe (`energy.pipe.kgce_per_t`, kgce/t);
* Table 6, the worst multiple of the limit C (`emissions.air.multiple_of_c`), against the bands
  at 0.6, 0.8 and 1.0 C;
* water reuse: the four `energy.water.*` rows (%);
* F (clause 6.1) of the month and of the trailing 12 months, and the level of Table 9.

Where a snapshot comes from (`snapshot_for`): the stored point `gf_snapshot` of the plant and
month (its `json` field, read as the plant's reader), else the JSON file in the plant's
`report.dir`, else it is made now with `grade.snapshot.make` (as the metrics role, which also
stores it, as `greenfoundry report` would).

Anonymised (`--anonymise` or the park file's `anonymise: true`): plants are "Plant A", "Plant
B", … in the park's keyed order (`Park.labels`), listed in that order, and neither a plant's
name nor its id appears anywhere in the file (not in the text, the plots' titles or the SVG
ids); the park's name stays.

Same data, same bytes, apart from the one line `<p class="generated">…` (the plots are
byte-stable as the monthly report's, grade/report_plots.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
from contextlib import closing
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from greenfoundry.errors import GreenfoundryError, InputError
from greenfoundry.grade import report_plots as plots

log = logging.getLogger("greenfoundry.park.report")

C1_ROW = "energy.liquid_iron.energy_per_t"
PIPE_ROW = "energy.pipe.kgce_per_t"
AIR_ROW = "emissions.air.multiple_of_c"
WATER_ROWS = (
    "energy.water.cooling_recirculation",
    "energy.water.process_wastewater_reuse",
    "energy.water.coating_wastewater_reuse",
    "energy.water.reclaimed_share",
)
ROWS = (C1_ROW, PIPE_ROW, AIR_ROW, *WATER_ROWS)
TIER_LINES = ("#2e7d32", "#b58900", "#d9480f")  # the tier 1, 2, 3 limit lines
FURNACE_KIND_NAMES = {  # Chinese and English, as the monthly report labels furnaces
    "induction": ("感应电炉", "induction furnace"),
    "cupola": ("冲天炉", "cupola"),
}


@dataclass(frozen=True)
class C1:
    furnace_kind: str | None
    furnace_capacity: float | None
    unit: str
    value: float | None
    tier: int | None
    limits: tuple[float, ...] | None  # corrected tier 1, 2, 3 limits (None: not computable)
    printed: tuple[str, ...] | None  # the standard's printed limits


@dataclass(frozen=True)
class PlantColumn:
    """One plant of the park report: its snapshot's numbers."""

    plant_id: str
    name: str
    label: str  # what the report shows: its name, or "Plant A" when anonymised
    source: str  # where the snapshot came from: "gf_snapshot", "file" or "made"
    f: float
    level: int | None
    f_trailing_12m: float
    level_trailing_12m: int | None
    c1: C1
    rows: dict  # row id → the snapshot's row (value, unit, tier, status, points, …)


# --------------------------------------------------------------------------- snapshots


def stored_snapshot(cfg, store, month: str) -> dict | None:
    """The stored gf_snapshot document of the plant's ``month``, or None."""
    from greenfoundry.grade import snapshot
    from greenfoundry.store import quote_ident, where

    w = snapshot.month_window(cfg, month)
    q = (
        f"SELECT {quote_ident('month')}, {quote_ident('json')} FROM "
        f"{quote_ident(snapshot.MEASUREMENT)} "
        f"{where({'plant': cfg.plant.id}, start_ns=w.start.value, end_ns=w.end.value)}"
    )
    for r in snapshot._raw(store, q):
        if r.get("month") != month:
            continue
        try:
            doc = json.loads(r["json"])
        except (TypeError, ValueError):
            doc = None
        if isinstance(doc, dict) and doc.get("schema") == snapshot.SCHEMA_ID:
            return doc
        log.warning(
            "gf_snapshot %s of %s is not a %s document", month, cfg.plant.id, snapshot.SCHEMA_ID
        )
    return None


def snapshot_for(cfg, month: str, *, reader=None, metrics=None) -> tuple[dict, str]:
    """(the plant's snapshot document of ``month``, where it came from): stored point, file, or
    made now (module docstring). ``reader`` / ``metrics``: stores of those roles (default: the
    plant config's)."""
    from greenfoundry.grade import snapshot
    from greenfoundry.store import InfluxStore

    if reader is None:
        with closing(InfluxStore.from_config(cfg.influxdb, role="reader")) as own:
            doc = stored_snapshot(cfg, own, month)
    else:
        doc = stored_snapshot(cfg, reader, month)
    if doc is not None:
        return doc, "gf_snapshot"
    json_path = snapshot.paths(cfg, month)[0]
    if json_path.exists():
        try:
            doc = json.loads(json_path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{json_path}: cannot read the snapshot: {exc}") from None
        if isinstance(doc, dict) and doc.get("schema") == snapshot.SCHEMA_ID:
            return doc, "file"
        raise InputError(f"{json_path}: not a {snapshot.SCHEMA_ID} document")
    stored = snapshot.make(cfg, month, store=metrics)
    return json.loads(stored.json_path.read_text("utf-8")), "made"


def _c1(cfg, doc: dict, row: dict, standard) -> C1:
    """The plant's Table C.1 row with its corrected limits, computed as the scorer does."""
    from greenfoundry.scoring import scorer, table_c1

    ctx_extra = (doc["month_grade"]["indicators"].get("rows", {}).get(C1_ROW) or {}).get(
        "context"
    ) or {}
    kind = capacity = limits = printed = None
    try:
        ctx = scorer.row_context(
            standard, standard.rows[C1_ROW], cfg, ctx_extra, "the snapshot's indicators"
        )
        kind, capacity = ctx.get("furnace_kind"), ctx.get("furnace_capacity")
        res = table_c1.limits_for_context(standard.furnace_table, ctx, row_id=C1_ROW)
        limits, printed = tuple(res.limits), tuple(res.printed)
    except GreenfoundryError as exc:  # no C.1 row covers the furnace: shown without limits
        log.warning("park report: Table C.1 limits of %s: %s", cfg.plant.id, exc)
    return C1(kind, capacity, row["unit"], row["value"], row["tier"], limits, printed)


def column(cfg, doc: dict, source: str, label: str, standard) -> PlantColumn:
    m, t = doc["month_grade"], doc["trailing_12m"]
    rows = {r["row_id"]: r for r in m["rows"] if r["row_id"] in ROWS}
    missing = [r for r in ROWS if r not in rows]
    if missing:
        raise InputError(f"the snapshot of {cfg.plant.id} {doc['month']} lacks rows {missing}")
    return PlantColumn(
        plant_id=cfg.plant.id,
        name=cfg.plant.name,
        label=label,
        source=source,
        f=m["f"],
        level=(m["grade"] or {}).get("level"),
        f_trailing_12m=t["f"],
        level_trailing_12m=(t["grade"] or {}).get("level"),
        c1=_c1(cfg, doc, rows[C1_ROW], standard),
        rows=rows,
    )


def collect(park, month: str, *, anonymise: bool, stack: str | None = None) -> list[PlantColumn]:
    """Every plant's column, in the file's order, or the anonymous order when anonymised."""
    from greenfoundry.grade import snapshot
    from greenfoundry.ingest.cli import load_config
    from greenfoundry.scoring.standard import load_standard

    standard = load_standard()
    labels = park.labels() if anonymise else {}
    cols = []
    for path in park.plant_files:
        # As `greenfoundry report` loads a plant: no MQTT secret is needed, `--stack` gives the
        # InfluxDB users of every role.
        cfg = load_config(argparse.Namespace(config=path, stack=stack), mqtt_secret=False)
        snapshot.month_window(cfg, month)
        doc, source = snapshot_for(cfg, month)
        label = labels.get(cfg.plant.id, cfg.plant.name)
        cols.append(column(cfg, doc, source, label, standard))
    if anonymise:
        cols.sort(key=lambda c: c.label)
    return cols


# --------------------------------------------------------------------------- plots


def _bars(ax, labels: list[str], values: list[float | None], unit: str) -> None:
    x = np.arange(len(labels))
    shown = [v if v is not None else 0.0 for v in values]
    ax.bar(x, shown, width=0.55, color=plots.LINE, zorder=2)
    for i, v in enumerate(values):
        text = "no data" if v is None else f"{v:g}"
        ax.annotate(
            text,
            (i, shown[i]),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xticks(x, labels)
    ax.set_ylabel(unit)


@plots._styled
def c1_plot(cols: list[PlantColumn]) -> plots.Plot:
    """Table C.1 per furnace kind: each plant's value against its own corrected tier limits."""
    kinds = sorted({(c.c1.furnace_kind or "unknown", c.c1.unit) for c in cols})
    fig = plots._figure(len(kinds), height_per_row=2.8)
    axes = fig.subplots(len(kinds), 1, squeeze=False)[:, 0]
    for ax, (kind, unit) in zip(axes, kinds, strict=True):
        group = [c for c in cols if (c.c1.furnace_kind or "unknown", c.c1.unit) == (kind, unit)]
        labels = [
            f"{c.label}\n{c.c1.furnace_capacity:g} t" if c.c1.furnace_capacity else c.label
            for c in group
        ]
        _bars(ax, labels, [c.c1.value for c in group], unit)
        for i, c in enumerate(group):
            for tier, limit in enumerate(c.c1.limits or (), start=1):
                ax.hlines(
                    limit,
                    i - 0.38,
                    i + 0.38,
                    colors=TIER_LINES[tier - 1],
                    linewidth=2,
                    zorder=3,
                    label=f"tier {tier} limit 级限值" if i == 0 else None,
                )
        zh, en = FURNACE_KIND_NAMES.get(kind, (kind, kind))
        ax.set_title(
            f"表C.1 吨铁液能耗 · {zh} — Table C.1 energy per tonne of liquid iron, {en} ({unit})"
        )
        ax.set_ylabel(f"{unit} (吨铁液能耗)")
        if any(c.c1.limits for c in group):
            ax.legend(loc="upper right", fontsize=7)
    return plots._render(
        fig,
        "plot-c1",
        "Table C.1 energy per tonne of liquid iron by furnace kind, each plant against its corrected tier limits",
    )


@plots._styled
def others_plot(cols: list[PlantColumn]) -> plots.Plot:
    """kgce/t of pipe, the worst multiple of C and the water-reuse rates, per plant."""
    fig = plots._figure(3, height_per_row=2.6)
    ax_pipe, ax_air, ax_water = fig.subplots(3, 1)
    labels = [c.label for c in cols]
    _bars(ax_pipe, labels, [c.rows[PIPE_ROW]["value"] for c in cols], "kgce/t")
    ax_pipe.set_title("表5 吨铸铁管综合能耗 — Table 5 overall energy per tonne of pipe (kgce/t)")
    ax_pipe.set_ylabel("kgce/t")
    values = [c.rows[AIR_ROW]["value"] for c in cols]
    for lo, hi, colour in zip(
        (0.0, *plots.C_BANDS), (*plots.C_BANDS, 10.0), plots.TIER_COLOURS, strict=True
    ):
        ax_air.axhspan(lo, hi, color=colour, zorder=0)
    _bars(ax_air, labels, values, "multiple of C")
    top = max([v for v in values if v is not None] + [1.0]) * 1.2
    ax_air.set_ylim(0, top)
    ax_air.set_title(
        "表6 最大C值倍数 — Table 6 worst multiple of the limit C (bands 0.6, 0.8, 1.0 C)"
    )
    ax_air.set_ylabel("multiple of C (C值倍数)")
    x = np.arange(len(cols))
    width = 0.8 / len(WATER_ROWS)
    for k, row_id in enumerate(WATER_ROWS):
        vals = [c.rows[row_id]["value"] for c in cols]
        name = cols[0].rows[row_id]["name_en"].split(" (")[0]
        ax_water.bar(
            x - 0.4 + width * (k + 0.5), [v or 0.0 for v in vals], width, label=name, zorder=2
        )
        for i, v in enumerate(vals):
            if v is None:
                ax_water.annotate(
                    "–", (x[i] - 0.4 + width * (k + 0.5), 0), ha="center", va="bottom", fontsize=8
                )
    ax_water.set_xticks(x, labels)
    ax_water.set_ylim(0, 110)
    ax_water.set_ylabel("% (回用率)")
    ax_water.set_title("水资源回用 — water reuse rates (%); – no data")
    ax_water.legend(loc="upper right", fontsize=6)
    return plots._render(
        fig,
        "plot-rows",
        "Table 5 energy per tonne of pipe, Table 6 worst multiple of C and the water-reuse rates, per plant",
    )


@plots._styled
def grade_plot(cols: list[PlantColumn], grades) -> plots.Plot:
    """F of the month and of the trailing 12 months per plant, with the Table 9 lines."""
    fig = plots._figure(1, height_per_row=2.8)
    ax = fig.subplots()
    x = np.arange(len(cols))
    ax.bar(x - 0.18, [c.f for c in cols], 0.34, label="month 本月", color=plots.LINE, zorder=2)
    ax.bar(
        x + 0.18,
        [c.f_trailing_12m for c in cols],
        0.34,
        label="trailing 12 months 近12个月",
        color="#7fa7c9",
        zorder=2,
    )
    for g in grades:
        ax.axhline(g.min_f, color="#888888", linestyle="--", linewidth=0.8, zorder=1)
        # At the axes' right edge (axes x, data y): an annotation outside the data range is
        # clipped.
        ax.text(
            0.995,
            g.min_f,
            f"level {g.level} 级 (F ≥ {g.min_f})",
            ha="right",
            va="bottom",
            fontsize=7,
            transform=ax.get_yaxis_transform(),
        )
    ax.set_xticks(x, [c.label for c in cols])
    ax.set_ylim(0, 1000)
    ax.set_ylabel("F (points 分, of 1000)")
    ax.set_title("综合评分F与等级 — the score F and the level of Table 9")
    ax.legend(loc="upper left", fontsize=7)
    return plots._render(
        fig,
        "plot-grade",
        "The score F of the month and of the trailing 12 months per plant, with the Table 9 levels",
    )


# --------------------------------------------------------------------------- HTML


def _e(x: Any) -> str:
    return escape("" if x is None else str(x), quote=True)


def _num(x: Any) -> str:
    if x is None:
        return "–"
    return f"{x:g}" if isinstance(x, float) else _e(x)


def _level(level: int | None) -> str:
    return "not rated 未评级" if level is None else f"level {level} 级"


CSS = """
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC",
  "DejaVu Sans", sans-serif; color: #1b1b1b; margin: 2em auto; max-width: 1100px;
  padding: 0 1em; line-height: 1.4; font-size: 14px; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #d0d7de; padding-bottom: .2em; }
.muted, .generated { color: #5f6b73; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; font-size: .92em; }
th, td { border: 1px solid #d0d7de; padding: .25em .45em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1em 0; break-inside: avoid; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: #5f6b73; font-size: .9em; margin-top: .3em; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  @page { size: A4 landscape; margin: 12mm; }
  section { break-before: page; page-break-before: always; }
  section.first { break-before: auto; page-break-before: auto; }
  tr { break-inside: avoid; page-break-inside: avoid; }
}
"""


def _limits(c: PlantColumn, unit: str) -> str:
    """A plant's three corrected limits; its unit beside them when it is not the column's (a
    cupola's kgce/t beside induction furnaces' kWh/t)."""
    if not c.c1.limits:
        return "–"
    text = " / ".join(f"{v:g}" for v in c.c1.limits)
    return text if c.c1.unit == unit else f"{text} {_e(c.c1.unit)}"


def _table(cols: list[PlantColumn]) -> str:
    head = "".join(f"<th>{_e(c.label)}</th>" for c in cols)
    out = [
        f"<table id='compare'><thead><tr><th>indicator 指标</th><th>unit 单位</th>{head}</tr></thead><tbody>"
    ]

    def tr(row_key: str, name: str, unit: str, cells: list[str]) -> None:
        tds = "".join(f"<td class='num'>{x}</td>" for x in cells)
        out.append(f"<tr data-row='{_e(row_key)}'><td>{name}</td><td>{_e(unit)}</td>{tds}</tr>")

    tr(
        "f",
        "综合评分 F<br><span class='muted'>score F, the month</span>",
        "points",
        [f"{c.f:.1f}" for c in cols],
    )
    tr(
        "level",
        "等级<br><span class='muted'>level of Table 9, the month</span>",
        "",
        [_level(c.level) for c in cols],
    )
    tr(
        "f_trailing_12m",
        "近12个月 F<br><span class='muted'>F, trailing 12 months</span>",
        "points",
        [f"{c.f_trailing_12m:.1f}" for c in cols],
    )
    tr(
        "level_trailing_12m",
        "近12个月等级<br><span class='muted'>level, trailing 12 months</span>",
        "",
        [_level(c.level_trailing_12m) for c in cols],
    )
    kinds = [
        FURNACE_KIND_NAMES.get(c.c1.furnace_kind, (c.c1.furnace_kind, c.c1.furnace_kind))
        for c in cols
    ]
    tr(
        "c1_furnace",
        "表C.1 熔炼炉<br><span class='muted'>Table C.1 furnace kind, capacity</span>",
        "t",
        [
            f"{_e(zh)} {_e(en)}, {_num(c.c1.furnace_capacity)}"
            for (zh, en), c in zip(kinds, cols, strict=True)
        ],
    )
    tr(
        "c1_limits",
        "表C.1 修正后限值<br><span class='muted'>Table C.1 corrected limits, tiers 1 / 2 / 3</span>",
        cols[0].c1.unit,
        [_limits(c, cols[0].c1.unit) for c in cols],
    )
    for row_id in ROWS:
        r0 = cols[0].rows[row_id]
        cells = []
        for c in cols:
            r = c.rows[row_id]
            tier = "" if r["tier"] is None else f" <span class='muted'>(tier {r['tier']})</span>"
            unit = "" if r["unit"] == r0["unit"] else f" {_e(r['unit'])}"
            cells.append(f"<span class='v'>{_num(r['value'])}</span>{unit}{tier}")
        name = f"{_e(r0['name_zh'])}<br><span class='muted'>{_e(r0['name_en'])}</span>"
        tr(row_id, name, r0["unit"], cells)
    out.append("</tbody></table>")
    return "\n".join(out)


def _figure(p: plots.Plot, caption: str) -> str:
    return (
        f'<figure id="{p.id}">\n{p.svg}\n<figcaption>{_e(p.title)}. {_e(caption)}'
        "</figcaption>\n</figure>"
    )


def render(park, month: str, cols: list[PlantColumn], *, anonymise: bool, generated_at=None) -> str:
    from greenfoundry.scoring.standard import load_standard

    std = load_standard()
    generated = generated_at or dt.datetime.now(dt.UTC)
    title = f"{park.name}: plants side by side, {month}"
    figures = [
        _figure(
            c1_plot(cols),
            "Bars: each plant's month value of the row; lines: that plant's "
            "tier 1, 2 and 3 limits after Table C.1 notes 1–4, as its scorer computed them.",
        ),
        _figure(others_plot(cols), "The month's values of each row of the plants' snapshots."),
        _figure(grade_plot(cols, std.grades), "Dashed: the lowest F of each level (Table 9)."),
    ]
    if anonymise:
        who = (
            "Anonymised: the plants are named Plant A, B, … in an order keyed by the park, "
            "unrelated to their names. 匿名：各厂以 Plant A、B… 表示。"
        )
    else:
        who = "Plants: " + "; ".join(f"{_e(c.label)} ({_e(c.plant_id)})" for c in cols) + "."
    warnings = "".join(f"<p class='warning'>{_e(w)}</p>" for w in plots.font_warnings())
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="zh-CN">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{_e(title)}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            "<section class='first'>",
            f"<h1>{_e(park.name)}: 园区各厂对比 {_e(month)}</h1>",
            f"<p>The plants of the park side by side for the plant-local month {_e(month)}, "
            f"from each plant's monthly grade snapshot against {_e(std.id)} "
            f"({_e(std.title_zh)}). {who}</p>",
            warnings,
            _table(cols),
            "</section>",
            "<section>",
            "<h2>图 Plots</h2>",
            *figures,
            "</section>",
            f'<p class="generated">Generated {generated:%Y-%m-%dT%H:%M:%SZ} by greenfoundry '
            "park report.</p>",
            "</body>",
            "</html>",
            "",
        ]
    )


def names_a_plant(text: str, cols: list[PlantColumn]) -> bool:
    """Whether `text` holds a plant's id or name as a word of its own (ids and names shorter
    than 4 characters are not checked: they are words of the report's own text)."""
    for c in cols:
        for x in (c.plant_id, c.name):
            if len(x) >= 4 and re.search(rf"(?<![\w-]){re.escape(x)}(?![\w-])", text):
                return True
    return False


def output_path(park, month: str, anonymise: bool) -> Path:
    """Default: ``var/reports/<park>-<month>[-anonymous].html`` beside the park file."""
    stem = f"{park.id}-{month}" + ("-anonymous" if anonymise else "")
    return park.path.parent / "var" / "reports" / f"{stem}.html"


def make(park, month: str, *, anonymise: bool | None = None, stack=None, out=None) -> Path:
    """Collect, render and write the park report; returns its path."""
    from greenfoundry.grade.snapshot import _write_atomic

    anon = park.anonymise if anonymise is None else anonymise
    cols = collect(park, month, anonymise=anon, stack=stack)
    html = render(park, month, cols, anonymise=anon)
    if anon and names_a_plant(html, cols):  # a guard: the file must never name a plant
        raise InputError("the anonymised park report would name a plant; not written")
    path = Path(out) if out else output_path(park, month, anon)
    _write_atomic(path, html.encode("utf-8"))
    return path
