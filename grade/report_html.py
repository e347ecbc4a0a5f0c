"""The monthly report: one self-contained HTML file from a snapshot document and its series.

Inline CSS, the plots as inline SVG (grade/report_plots.py), no script, no external resource:
it opens offline, prints (``@media print``: A4, page breaks between sections, tables kept
whole where they fit) and can be mailed as one attachment. Every row appears with its Chinese
and English names, both from the standard's file (`scoring/standards/*.yaml`).

The generation time is written once, on its own line (``<p class="generated">…``): two reports
of the same data differ only there.
"""

from __future__ import annotations

from html import escape
from typing import Any

from greenfoundry.grade import report_plots as plots

STATUS_TEXT = {
    "scored": "scored 已评分",
    "not_applicable": "not applicable 不适用",
    "no_data": "no data 无数据",
    "evidence_expired": "evidence expired 证据过期",
    "not_covered": "not covered 未覆盖",
    "low_coverage": "low coverage 覆盖不足",
}

CSS = """
:root { --ink: #1b1b1b; --muted: #5f6b73; --line: #d0d7de; --good: #2e7d32; --bad: #b3261e; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC",
  "DejaVu Sans", sans-serif; color: var(--ink); margin: 2em auto; max-width: 1100px;
  padding: 0 1em; line-height: 1.4; font-size: 14px; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid var(--line); padding-bottom: .2em;
  margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 1em 0 .4em; }
.muted, .generated { color: var(--muted); }
.cards { display: flex; gap: 1em; flex-wrap: wrap; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .8em 1.2em; min-width: 18em;
  flex: 1; }
.card .f { font-size: 2.2em; font-weight: bold; }
.up { color: var(--good); } .down { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; font-size: .92em; }
th, td { border: 1px solid var(--line); padding: .25em .45em; text-align: left;
  vertical-align: top; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.group td { background: #eef3f8; font-weight: bold; }
.st-scored { color: var(--good); } .st-no_data, .st-evidence_expired, .st-low_coverage {
  color: var(--bad); }
figure { margin: 1em 0; break-inside: avoid; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: .9em; margin-top: .3em; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  @page { size: A4; margin: 14mm 12mm; }
  section { break-before: page; page-break-before: always; }
  section.first { break-before: auto; page-break-before: auto; }
  tr, .card { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(x: Any) -> str:
    return escape("" if x is None else str(x))


def _num(x: Any, digits: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | float):
        return f"{x:.{digits}f}"
    return _e(x)


def _value(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.0f}"
    return _num(x)


def _signed(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "–"
    cls = "up" if x > 0 else "down" if x < 0 else ""
    return f'<span class="{cls}">{x:+.{digits}f}</span>'


def _grade_name(g: dict | None) -> str:
    if g is None:
        return "not rated 未评级 (F &lt; 600)"
    return f"level {g['level']}: {_e(g['name_zh'])} ({_e(g['name_en'])})"


def _card(title: str, wg: dict, f_change: float | None, level_change: int | None) -> str:
    lc = ""
    if level_change:
        word = "up" if level_change > 0 else "down"
        lc = f", level {word} {abs(level_change)} step{'s' if abs(level_change) > 1 else ''}"
    return (
        f'<div class="card"><h3>{_e(title)}</h3>'
        f'<div class="f">F = {wg["f"]:.1f}</div>'
        f"<div>{_grade_name(wg['grade'])}</div>"
        f'<div class="muted">window {_e(wg["window"]["start"])} – {_e(wg["window"]["end"])} '
        f"(end excluded), evidence as of {_e(wg['as_of'])}</div>"
        f"<div>change against the previous snapshot: {_signed(f_change)} points{lc}</div>"
        "</div>"
    )


def _target(t: dict | None) -> str:
    if t is None:
        return "–"
    cmp = {"<": "below", "≤": "at most", ">": "above", "≥": "at least"}.get(t["cmp"], t["cmp"])
    return f"{_e(cmp)} {_e(t['value'])} <span class='muted'>({_e(t['printed'])})</span>"


def _gap_table(wg: dict, names: dict[str, tuple[str, str]]) -> str:
    gap = wg["gap"]
    out = []
    if gap["next_grade"] is None:
        out.append("<p>At the top grade: no next level.</p>")
    else:
        ng = gap["next_grade"]
        out.append(
            f"<p>Next level: {_grade_name(ng)}, F ≥ {ng['min_f']:g}; "
            f"<strong>{gap['deficit']:.1f}</strong> points short. {_e(gap['reason'])}</p>"
        )
    if gap["note"]:
        out.append(f'<p class="muted">{_e(gap["note"])}</p>')
    plan = gap["plan"]
    if plan:
        out.append(
            "<table><thead><tr><th>row 指标</th><th>value now</th><th>tier now</th>"
            "<th>must reach</th><th>to tier</th><th>relative change</th><th>points added</th>"
            "<th>conditions</th></tr></thead><tbody>"
        )
        for mv in plan:
            zh, en = names.get(mv["row_id"], ("", ""))
            out.append(
                f"<tr><td>{_e(zh)}<br><span class='muted'>{_e(en)} · {_e(mv['row_id'])}</span>"
                f"</td><td class='num'>{_value(mv['value'])}</td>"
                f"<td class='num'>{_num(mv['from_tier'], 0) if mv['from_tier'] else 'below 3'}"
                f"</td><td>{_target(mv['target'])}</td><td class='num'>{mv['to_tier']}</td>"
                f"<td class='num'>{mv['relative_change'] * 100:.1f} %</td>"
                f"<td class='num'>{mv['points_added']:.2f}</td>"
                f"<td>{_e('; '.join(mv['conditions']))}</td></tr>"
            )
        out.append(
            f"</tbody></table><p>Points added by the plan: {gap['plan_points_added']:.2f}.</p>"
        )
    elif plan is None and gap["next_grade"] is not None:
        out.append("<p>No improvement of the scored rows alone reaches the next level.</p>")
    if gap["missing_data"]:
        out.append(
            f"<p>Rows that score nothing only because data is missing "
            f"({gap['missing_data_points_max']:.1f} points at most):</p><table><thead><tr>"
            "<th>row 指标</th><th>status</th><th>points at most</th><th>why</th></tr></thead>"
            "<tbody>"
        )
        for r in gap["missing_data"]:
            zh, en = names.get(r["row_id"], ("", ""))
            out.append(
                f"<tr><td>{_e(zh)}<br><span class='muted'>{_e(en)}</span></td>"
                f"<td>{_e(STATUS_TEXT.get(r['status'], r['status']))}</td>"
                f"<td class='num'>{r['points_max']:.1f}</td><td>{_e(r['reason'])}</td></tr>"
            )
        out.append("</tbody></table>")
    return "\n".join(out)


def _rows_table(wg: dict) -> str:
    groups = {g["id"]: g for g in wg["groups"]}
    out = [
        "<table><thead><tr><th>row 指标 (中文 / English)</th><th>value</th><th>unit</th>"
        "<th>tier</th><th>points</th><th>max</th><th>status</th><th>coverage</th>"
        "<th>reason</th></tr></thead><tbody>"
    ]
    current = None
    for r in wg["rows"]:
        if r["group"] != current:
            current = r["group"]
            g = groups.get(current, {})
            out.append(
                f"<tr class='group'><td colspan='4'>{_e(g.get('no'))}. {_e(g.get('name_zh'))} "
                f"{_e(g.get('name_en'))}</td><td class='num'>{_num(g.get('points'))}</td>"
                f"<td class='num'>{_num(g.get('points_max'))}</td><td colspan='3'></td></tr>"
            )
        tier = (
            r["tier"] if r["tier"] is not None else ("below 3" if r["status"] == "scored" else "–")
        )
        cov = "–" if r["coverage"] is None else f"{r['coverage'] * 100:.1f} %"
        out.append(
            f"<tr><td>{_e(r['name_zh'])}<br><span class='muted'>{_e(r['name_en'])}</span></td>"
            f"<td class='num'>{_value(r['value'])}</td><td>{_e(r['unit'])}</td>"
            f"<td class='num'>{_e(tier)}</td><td class='num'>{r['points']:.2f}</td>"
            f"<td class='num'>{r['points_max']:.2f}</td>"
            f"<td class='st-{_e(r['status'])}'>{_e(STATUS_TEXT.get(r['status'], r['status']))}"
            f"</td><td class='num'>{cov}</td><td>{_e(r['reason'])}</td></tr>"
        )
    out.append("</tbody></table>")
    return "\n".join(out)


def _figure(p: plots.Plot, caption: str) -> str:
    return (
        f'<figure id="{p.id}">\n{p.svg}\n<figcaption>{_e(p.title)}. {_e(caption)}'
        "</figcaption>\n</figure>"
    )


def _alerts(alerts: list[dict]) -> str:
    if not alerts:
        return "<p>No alert transitions in the month.</p>"
    out = [
        "<table><thead><tr><th>time (UTC)</th><th>rule</th><th>target</th><th>state</th>"
        "<th>severity</th><th>value</th><th>limit</th><th>message</th><th>acked by</th></tr>"
        "</thead><tbody>"
    ]
    for a in alerts:
        state = f"{_e(a['from_state'])} → {_e(a['state'])}" if a["from_state"] else _e(a["state"])
        out.append(
            f"<tr><td>{_e(a['at'])}</td><td>{_e(a['rule'])}</td><td>{_e(a['target'])}</td>"
            f"<td>{state}</td><td>{_e(a['severity'])}</td>"
            f"<td class='num'>{_value(a['value'])} {_e(a['unit'])}</td>"
            f"<td class='num'>{_value(a['limit'])}</td><td>{_e(a['message'])}</td>"
            f"<td>{_e(a['acked_by'])}</td></tr>"
        )
    out.append("</tbody></table>")
    return "\n".join(out)


def _coverage_summary(doc: dict) -> str:
    out = []
    for key, title in (("month_grade", "the month"), ("trailing_12m", "the trailing 12 months")):
        c = doc[key]["coverage"]
        low = ", ".join(c["rows_below_min"]) or "none"
        lowest = "–" if c["lowest"] is None else f"{c['lowest'] * 100:.1f} %"
        out.append(
            f"<li>{_e(title)}: {c['measured_rows']} measured rows, the lowest coverage "
            f"{lowest}; below {c['min_coverage'] * 100:.0f} %: {_e(low)}</li>"
        )
    return "<ul>" + "".join(out) + "</ul>"


def render(doc: dict, data) -> str:
    """The report of snapshot ``doc`` (grade/snapshot.py) with the series ``data``
    (snapshot.ReportData)."""
    m, t, ch = doc["month_grade"], doc["trailing_12m"], doc["change"]
    names = {r["row_id"]: (r["name_zh"], r["name_en"]) for r in m["rows"]}
    plant, month = doc["plant"], doc["month"]
    year, mon = int(month[:4]), int(month[5:])

    furnace_names = {fid: data.furnace_names.get(fid, f"furnace {fid}") for fid in data.c1_days}
    air_names = {k: data.stack_names.get(k, f"stack {k[0]}, {k[1]}") for k in data.air_hours}
    cov = doc["coverage"]
    cov_labels = [
        f"{s['series']} · {s['name_zh'] or ''}" if s["name_zh"] else s["series"]
        for s in cov["series"]
    ]
    figures = [
        _figure(
            plots.furnace_energy(
                data.c1_days,
                furnace_names,
                data.c1_unit,
                data.month_start,
                data.month_end,
                data.tz,
            ),
            f"Daily values of gf_c1_furnace (window=day); the bands are that day's limits "
            f"of the three tiers after Table C.1 notes 1–4, in {data.c1_unit}.",
        ),
        _figure(
            plots.stack_multiples(
                data.air_hours, air_names, data.month_start, data.month_end, data.tz
            ),
            "Valid hourly means of gf_air_stack (window=hour) divided by the limit C; bands at "
            "0.6, 0.8 and 1.0 C (Table 6 tiers). Hours without a valid mean are gaps.",
        ),
        _figure(
            plots.energy_per_t_pipe(data.t5_months, year, mon),
            "gf_t5_plant energy_per_t_pipe (window=month), kgce per tonne of good pipe. CUSUM: "
            "the running sum over this year's months of (this month − the same month of the "
            "year before), in kgce/t; a month lacking either value adds nothing.",
        ),
        _figure(
            plots.coverage_heatmap(cov_labels, cov["days"], [s["coverage"] for s in cov["series"]]),
            "Coverage of each day window (0–1) of every rollup series behind a row; grey: no "
            "rollup for that day.",
        ),
    ]
    title = f"{plant['name']}: grade snapshot {month}"
    prev = ch["previous"] or "none"
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        '<section class="first" id="grade">',
        f"<h1>{_e(plant['name'])} · 月度评价快照 grade snapshot · {_e(month)}</h1>",
        f"<p class='muted'>Plant {_e(plant['id'])} ({_e(plant['product'])}, "
        f"{_e(plant['timezone'])}); scored against {_e(doc['standard']['id'])} "
        f"{_e(doc['standard']['title_zh'])} ({_e(doc['standard']['title_en'])}); Li policy "
        f"{_e(doc['li_policy'])}. Previous snapshot: {_e(prev)}.</p>",
        '<div class="cards">',
        _card(f"The month {month} 本月", m, ch["f_change"], ch["level_change"]),
        _card(
            f"The trailing 12 months 近12个月 ({t['label']})",
            t,
            ch["f_change_trailing_12m"],
            ch["level_change_trailing_12m"],
        ),
        "</div>",
        "<h2>Gap plan 差距 (the month)</h2>",
        _gap_table(m, names),
        "<h2>Gap plan 差距 (the trailing 12 months)</h2>",
        _gap_table(t, names),
        "</section>",
        '<section id="rows">',
        f"<h2>Every row 全部三级指标 (the month {_e(month)})</h2>",
        _rows_table(m),
        "</section>",
        '<section id="rows-t12m">',
        f"<h2>Every row 全部三级指标 (the trailing 12 months {_e(t['label'])})</h2>",
        _rows_table(t),
        "</section>",
        '<section id="plots">',
        "<h2>The month's data 本月数据</h2>",
        *figures[:3],
        "</section>",
        '<section id="coverage">',
        "<h2>Data coverage 数据覆盖率</h2>",
        _coverage_summary(doc),
        figures[3],
        "</section>",
        '<section id="alerts">',
        f"<h2>Alerts of the month 本月告警 ({len(doc['alerts'])})</h2>",
        _alerts(doc["alerts"]),
        "</section>",
        '<section id="notes">',
        "<h2>Notes 说明</h2>",
    ]
    for key, label in (("month_grade", "the month"), ("trailing_12m", "the trailing 12 months")):
        notes = doc[key]["notes"]
        lines.append(f"<h3>Indicators of {_e(label)}</h3>")
        lines.append(
            "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"
            if notes
            else "<p>No notes.</p>"
        )
    expiring = t["expiring"]
    lines.append("<h3>Evidence expiring within 60 days of the month's end</h3>")
    if expiring:
        lines.append(
            "<ul>"
            + "".join(
                f"<li>{_e(e['row'])}: valid until {_e(e['valid_until'])} "
                f"({e['days_left']} days), {e['points']:.2f} points</li>"
                for e in expiring
            )
            + "</ul>"
        )
    else:
        lines.append("<p>None.</p>")
    for w in plots.font_warnings():
        lines.append(f"<p class='muted'>{_e(w)}</p>")
    lines += [
        "</section>",
        "<footer>",
        f'<p class="generated">Generated {_e(doc["generated_at"])} by greenfoundry.</p>',
        "</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"
