"""The plots of the monthly report, as SVG text to inline in one HTML file.

matplotlib with the Agg backend, no pyplot (no global figure state between reports). Text is
drawn as paths (`svg.fonttype: path`), so the browser needs no font and Chinese names show
wherever the report is opened; the CJK glyphs come from WenQuanYi Micro Hei (Debian's
fonts-wqy-microhei), with a warning when it is missing. `svg.hashsalt` is fixed and the SVG
carries no date, so the same data gives the same bytes (docs/snapshot-json-schema.md).

Every function takes plain pandas data and returns a `Plot`; none reads InfluxDB.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import pandas as pd
from matplotlib import font_manager
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

CJK_FONT = "WenQuanYi Micro Hei"
HASH_SALT = "greenfoundry-report"
# Table 6 bands of the multiple of the limit C (T/CFA 0308011.5-2024, Table 6: < 0.6C tier 1,
# < 0.8C tier 2, < 1.0C tier 3, at or above C no tier).
C_BANDS = (0.6, 0.8, 1.0)
TIER_COLOURS = ("#d9f0d3", "#fff2b3", "#fdd0a2", "#f4b6b6")  # tier 1, 2, 3, below tier 3
LINE = "#1f4e79"


@dataclass(frozen=True)
class Plot:
    id: str  # the HTML id of the figure
    title: str  # the SVG's <title> and the figure's caption
    svg: str  # the <svg> element, without XML declaration or doctype


@functools.cache
def _fonts() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The font family list (Latin first, CJK as fallback) and warnings (logged once)."""
    try:
        font_manager.findfont(CJK_FONT, fallback_to_default=False)
    except ValueError:
        msg = (
            f"the CJK font {CJK_FONT!r} (Debian: fonts-wqy-microhei) is not installed; the "
            "report's Chinese names are drawn as empty boxes"
        )
        log.warning(msg)
        return ("DejaVu Sans",), (msg,)
    return ("DejaVu Sans", CJK_FONT), ()


def font_warnings() -> list[str]:
    return list(_fonts()[1])


def _rc() -> dict:
    family, _ = _fonts()
    return {
        "svg.fonttype": "path",
        "svg.hashsalt": HASH_SALT,
        "font.family": list(family),
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.unicode_minus": False,
    }


_SVG_OPEN = re.compile(r"<svg\b[^>]*>")


def _render(fig: Figure, plot_id: str, title: str) -> Plot:
    buf = io.StringIO()
    FigureCanvasSVG(fig)
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    start = text.index("<svg")
    text = text[start:].strip()
    m = _SVG_OPEN.match(text)
    head = m.group(0)
    # An id, a role and a <title> make the plot addressable and accessible in the page.
    new_head = head.replace("<svg", f'<svg id="{plot_id}-svg" role="img"', 1)
    text = new_head + f"\n <title>{escape(title)}</title>" + text[m.end() :]
    return Plot(plot_id, title, text)


def _figure(n_rows: int, height_per_row: float = 2.2, width: float = 9.5) -> Figure:
    return Figure(figsize=(width, max(2.4, height_per_row * n_rows + 0.6)), layout="constrained")


def _styled(fn):
    """Run a plot function inside the report's rc settings: matplotlib reads them when each
    text and line is made, not only when the figure is saved."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_rc()):
            return fn(*args, **kwargs)

    return wrapper


def _local(times: pd.Series | pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    """UTC timestamps as naive plant-local ones (matplotlib's date axis has no zone)."""
    idx = pd.DatetimeIndex(times)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    return idx.tz_convert(tz).tz_localize(None)


def _no_data(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no data: {what}", ha="center", va="center", transform=ax.transAxes)


def _month_axis(ax, start: pd.Timestamp, end: pd.Timestamp, tz: str) -> None:
    a, b = _local([start], tz)[0], _local([end], tz)[0]
    ax.set_xlim(a, b)
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=3))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d"))
    ax.set_xlabel(f"day of {a:%Y-%m} (plant-local, {tz})")


# --------------------------------------------------------------------------- Table C.1


@_styled
def furnace_energy(
    days: Mapping[str, pd.DataFrame],
    names: Mapping[str, str],
    unit: str,
    month_start: pd.Timestamp,
    month_end: pd.Timestamp,
    tz: str,
) -> Plot:
    """Per furnace, its energy per tonne of liquid iron day by day (`gf_c1_furnace`,
    window=day) against that day's corrected Table C.1 limits (notes 1–4), as tier bands.

    `days[furnace]`: columns `time` (UTC day start), `value` (in `unit`), `limit_tier1`,
    `limit_tier2`, `limit_tier3` (same unit); `names[furnace]`: the furnace's label."""
    title = (
        f"Table C.1 液态铁水单位能耗 energy per tonne of liquid iron, {unit}, per furnace by day"
    )
    furnaces = sorted(days) or ["-"]
    fig = _figure(len(furnaces))
    axes = fig.subplots(len(furnaces), 1, squeeze=False)[:, 0]
    for ax, fid in zip(axes, furnaces, strict=True):
        df = days.get(fid)
        ax.set_title(names.get(fid, fid), loc="left")
        ax.set_ylabel(unit)
        _month_axis(ax, month_start, month_end, tz)
        if df is None or df.empty or df["value"].isna().all():
            _no_data(ax, f"gf_c1_furnace {fid} window=day")
            continue
        # A day's bar spans the day; the limits are step lines over the same spans.
        x = _local(df["time"], tz) + pd.Timedelta(hours=12)
        lim = [df.get(f"limit_tier{k}") for k in (1, 2, 3)]
        known = [s for s in lim if s is not None and s.notna().any()]
        high = max(float(df["value"].max()), *(float(s.max()) for s in known))
        low = min(float(df["value"].min()), *(float(s.min()) for s in known))
        # The axis spans the values and the limits with a margin, not from 0: the tiers are
        # a few percent apart and would be thin stripes on a scale from 0.
        margin = max(0.08 * (high - low), 0.03 * abs(high), 1.0)
        bottom, top = max(0.0, low - margin), high + margin
        if len(known) == 3:
            bounds = [pd.Series(bottom, index=df.index), *lim, pd.Series(top, index=df.index)]
            labels = ("tier 1 (一级)", "tier 2 (二级)", "tier 3 (三级)", "below tier 3")
            for k in range(4):
                ax.fill_between(
                    x,
                    bounds[k].astype(float),
                    bounds[k + 1].astype(float),
                    step="mid",
                    color=TIER_COLOURS[k],
                    label=labels[k],
                    linewidth=0,
                )
        ax.plot(x, df["value"].astype(float), marker="o", ms=3, color=LINE, label=f"{unit}")
        ax.set_ylim(bottom, top)
        ax.legend(loc="upper left", fontsize=7, ncols=5)
    return _render(fig, "plot-c1", title)


# --------------------------------------------------------------------------- Table 6


@_styled
def stack_multiples(
    hours: Mapping[tuple[str, str], pd.DataFrame],
    names: Mapping[tuple[str, str], str],
    month_start: pd.Timestamp,
    month_end: pd.Timestamp,
    tz: str,
) -> Plot:
    """Per stack and pollutant, the valid hourly means as multiples of the limit C
    (`gf_air_stack`, window=hour) against Table 6's bands at 0.6, 0.8 and 1.0 C.

    `hours[(stack, pollutant)]`: columns `time` (UTC hour start), `value` (multiple of C)."""
    title = "Table 6 大气污染物排放浓度 stack concentrations as multiples of C, hourly"
    keys = sorted(hours) or [("-", "-")]
    fig = _figure(len(keys))
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys, strict=True):
        df = hours.get(key)
        ax.set_title(names.get(key, "/".join(key)), loc="left")
        ax.set_ylabel("multiple of C (hourly mean / C)")
        _month_axis(ax, month_start, month_end, tz)
        top = 1.2
        if df is not None and not df.empty and df["value"].notna().any():
            top = max(1.2, float(df["value"].max()) * 1.1)
        edges = (0.0, *C_BANDS, top)
        labels = ("< 0.6C tier 1", "< 0.8C tier 2", "< 1.0C tier 3", "≥ C")
        for k in range(4):
            ax.axhspan(edges[k], edges[k + 1], color=TIER_COLOURS[k], label=labels[k], lw=0)
        for c in C_BANDS:
            ax.axhline(c, color="#7f7f7f", lw=0.6)
        ax.set_ylim(0, top)
        if df is None or df.empty or df["value"].isna().all():
            _no_data(ax, f"gf_air_stack {'/'.join(key)} window=hour")
            continue
        x = _local(df["time"], tz) + pd.Timedelta(minutes=30)
        ax.plot(x, df["value"].astype(float), lw=0.7, color=LINE, label="hourly multiple of C")
        ax.legend(loc="upper left", fontsize=7, ncols=5)
    return _render(fig, "plot-air", title)


# --------------------------------------------------------------------------- Table 5


def cusum_against_previous_year(
    months: Mapping[str, float], year: int, last_month: int
) -> list[tuple[str, float | None, float | None]]:
    """The CUSUM of a year against the year before: for each month m = 1 … `last_month` of
    `year`, d_m = value(year, m) − value(year − 1, m) and S_m = Σ_{k ≤ m} d_k (kgce/t, the unit of
    the values). A month missing either value adds nothing and has d None; S stays None until
    the first month with both. Returns [(YYYY-MM, d, S)]."""
    out: list[tuple[str, float | None, float | None]] = []
    total: float | None = None
    for m in range(1, last_month + 1):
        label = f"{year:04d}-{m:02d}"
        now, before = months.get(label), months.get(f"{year - 1:04d}-{m:02d}")
        d = None if now is None or before is None else float(now) - float(before)
        if d is not None:
            total = d if total is None else total + d
        out.append((label, d, total))
    return out


@_styled
def energy_per_t_pipe(
    months: Sequence[tuple[str, float | None]], year: int, last_month: int
) -> Plot:
    """Plant energy per tonne of good pipe by month (`gf_t5_plant`, indicator
    energy_per_t_pipe, window=month) for the last 24 months, and the CUSUM of this year's months
    against the same months of the year before (`cusum_against_previous_year`).

    `months`: [(YYYY-MM, kgce/t or None)], oldest first."""
    title = (
        "Table 5 单位产品综合能耗 plant kgce/t of good pipe by month, with CUSUM vs the year before"
    )
    fig = _figure(2, height_per_row=2.4)
    ax, bx = fig.subplots(2, 1, squeeze=False)[:, 0]
    labels = [m for m, _ in months]
    values = [float("nan") if v is None else float(v) for _, v in months]
    ax.bar(range(len(labels)), values, color=LINE, width=0.7, label="kgce/t of good pipe")
    ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7)
    ax.set_xlabel("month (plant-local)")
    ax.set_ylabel("kgce/t of good pipe")
    ax.set_title("energy per tonne of good pipe, the last 24 months", loc="left")
    if all(v != v for v in values):
        _no_data(ax, "gf_t5_plant energy_per_t_pipe window=month")
    cus = cusum_against_previous_year(dict(months_with_values(months)), year, last_month)
    xs = list(range(len(cus)))
    ss = [float("nan") if s is None else s for _, _, s in cus]
    ds = [float("nan") if d is None else d for _, d, _ in cus]
    bx.bar(xs, ds, color="#9ecae1", width=0.6, label="this month − same month last year")
    bx.plot(xs, ss, marker="o", color="#c0392b", label="CUSUM Σ (this − last year)")
    bx.axhline(0, color="#7f7f7f", lw=0.8)
    bx.set_xticks(xs, [m for m, _, _ in cus], rotation=60, fontsize=7)
    bx.set_xlabel(f"month of {year} (plant-local)")
    bx.set_ylabel("CUSUM, kgce/t")
    bx.set_title(f"CUSUM of {year} against {year - 1}: below 0 uses less energy", loc="left")
    if all(s != s for s in ss):
        _no_data(bx, f"no month of {year} with the same month of {year - 1}")
    else:
        bx.legend(loc="best", fontsize=7)
    return _render(fig, "plot-t5", title)


def months_with_values(months: Sequence[tuple[str, float | None]]):
    return [(m, v) for m, v in months if v is not None]


# --------------------------------------------------------------------------- coverage


@_styled
def coverage_heatmap(
    rows: Sequence[str],
    days: Sequence[str],
    matrix: Sequence[Sequence[float | None]],
) -> Plot:
    """Coverage (0..1, the share of the day each series' data covers) by series and day; an
    empty cell has no rollup. `matrix[i][j]`: row i, day j."""
    title = "Data coverage 数据覆盖率 by series and day"
    import numpy as np

    n = max(1, len(rows))
    fig = Figure(figsize=(9.5, 1.2 + 0.28 * n), layout="constrained")
    ax = fig.subplots()
    data = np.full((n, max(1, len(days))), np.nan)
    for i, r in enumerate(matrix):
        for j, v in enumerate(r):
            if v is not None:
                data[i, j] = float(v)
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#dddddd")
    # Vector cells (pcolormesh), not an embedded bitmap: sharp in print, nothing but SVG paths.
    im = ax.pcolormesh(data, cmap=cmap, vmin=0.0, vmax=1.0, edgecolors="#ffffff", linewidth=0.3)
    ax.invert_yaxis()
    ax.set_yticks([i + 0.5 for i in range(len(rows))], list(rows), fontsize=7)
    ax.set_xticks([j + 0.5 for j in range(len(days))], [d[-2:] for d in days], fontsize=7)
    ax.set_xlabel(f"day of {days[0][:7] if days else ''} (plant-local)")
    ax.set_ylabel("series (row of the standard)")
    ax.grid(False)
    bar = fig.colorbar(im, ax=ax, fraction=0.03)
    bar.set_label("coverage (share of the day, 0–1)")
    bar.solids.set_rasterized(False)  # the colour scale as vector cells too
    return _render(fig, "plot-coverage", title)
