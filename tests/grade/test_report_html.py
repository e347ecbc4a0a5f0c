"""The HTML report in real headless Chromium (Debian's, driven by Playwright): made by
`greenfoundry report --pdf` from rollup and alert points written by hand, it loads with no
console error and no request beyond its own file, every plot is an inline <svg> with its title
and a size, text is drawn as paths, every row of the standard shows its Chinese and English
names, the month's alerts are listed, print CSS breaks pages, and a screenshot is taken
(under the test's tmp dir and copied to /tmp/gf/report-screenshot.png)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from greenfoundry.cli import main
from greenfoundry.grade import snapshot
from greenfoundry.metrics import schema
from greenfoundry.metrics import windows as win
from greenfoundry.metrics.source import store_for_metrics
from greenfoundry.scoring.standard import load_standard
from greenfoundry.store import line
from tests.metrics.engine_helpers import metrics_config
from tests.plant import REPO

pytestmark = pytest.mark.servers

PID = "g-report-html"
MONTH = "2026-10"
TZ = "Asia/Shanghai"
CHROMIUM = "/usr/bin/chromium"
ARGS = list(snapshot.CHROMIUM_ARGS)  # the flags the report's PDF is printed with
PLOTS = ("plot-c1", "plot-air", "plot-t5", "plot-coverage")
ALERT_MESSAGE = "Warning: stack melt-stack particulate at 1.08 C (limit 0.8 C)"


def _write_month(st, cfg) -> None:
    """A month of day and hour rollups, the month's plant points and two alert transitions."""
    pid = cfg.plant.id
    month = win.calendar_window(MONTH, TZ)
    days = win.windows_covering("day", month.start, month.end, TZ)
    hours = win.windows_covering("hour", month.start, month.end, TZ)
    lines = []
    for i, d in enumerate(days):
        for fid, base in (("if1", 560.0), ("if2", 590.0)):
            fields = {
                "kwh_per_t": base + i,
                "limit_tier1_kwh_per_t": 570.0,
                "limit_tier2_kwh_per_t": 600.0,
                "limit_tier3_kwh_per_t": 630.0,
                "n": 1440,
                "coverage": 0.5 if (fid, i) == ("if2", 4) else 1.0,
                "status": "ok",
            }
            tags = {"plant": pid, "furnace": fid, "window": "day"}
            lines.append(schema.point(schema.C1_FURNACE, tags, d, fields))
        tags = {"plant": pid, "stack": "melt-stack", "pollutant": "particulate", "window": "day"}
        fields = {"multiple_of_c": 0.7, "n": 24, "coverage": 1.0, "status": "ok"}
        lines.append(schema.point(schema.AIR_STACK, tags, d, fields))
    for j, h in enumerate(hours):
        multiple = 1.08 if j == 300 else 0.3 + 0.4 * (j % 24) / 24
        tags = {"plant": pid, "stack": "melt-stack", "pollutant": "particulate", "window": "hour"}
        fields = {"multiple_of_c": multiple, "n": 60, "coverage": 1.0, "status": "ok"}
        lines.append(schema.point(schema.AIR_STACK, tags, h, fields))
    for k in range(24):
        y, m = (2024 + (10 + k) // 12, (10 + k) % 12 + 1)  # 2024-11 … 2026-10
        w = win.calendar_window(f"{y}-{m:02d}", TZ)
        tags = {"plant": pid, "indicator": "energy_per_t_pipe", "window": "month"}
        fields = {"kgce_per_t": 320.0 - k, "n": 100, "coverage": 1.0, "status": "ok"}
        lines.append(schema.point(schema.T5_PLANT, tags, w, fields))
    for measurement, fields in (
        (schema.C1_PLANT, {"kwh_per_t": 590.0, "n": 100, "coverage": 1.0, "status": "ok"}),
        (schema.AIR_PLANT, {"multiple_of_c": 1.08, "n": 744, "coverage": 1.0, "status": "ok"}),
    ):
        tags = {"plant": pid, "window": "month"}
        lines.append(schema.point(measurement, tags, month, fields))
    at = month.start.value + 300 * 3600 * 10**9
    for state, frm, offset, event in (("FIRING", "PENDING", 0, "firing"), ("OK", "FIRING", 2, "resolved")):  # fmt: skip
        lines.append(
            line(
                "gf_alert",
                {"plant": pid, "rule": "stack-particulate", "target": "melt-stack/particulate"},
                {
                    "alert_id": "a-1",
                    "state": state,
                    "from_state": frm,
                    "event": event,
                    "severity": "warning",
                    "kind": "stack",
                    "value": 1.08,
                    "limit": 0.8,
                    "unit": "C",
                    "message": ALERT_MESSAGE if state == "FIRING" else "Resolved: melt-stack",
                    "since_ns": at,
                },
                at + offset * 3600 * 10**9,
            )
        )
    st.write_lines(lines)


def _without(text: str, marker: str) -> list[str]:
    return [x for x in text.splitlines() if marker not in x]


@pytest.fixture(scope="module")
def report(tmp_path_factory, stack):
    tmp = tmp_path_factory.mktemp("report-html")
    cfg = metrics_config(tmp, stack, PID)
    ev = yaml.safe_load((REPO / "config/plants/demo-dip/evidence.yaml").read_text("utf-8"))
    ev["plant"] = PID
    (tmp / "evidence.yaml").write_text(yaml.safe_dump(ev, allow_unicode=True), "utf-8")
    _write_month(store_for_metrics(cfg), cfg)
    return tmp, cfg


def test_greenfoundry_report_makes_json_html_and_pdf(report, capsys, stack):
    tmp, cfg = report
    capsys.readouterr()
    argv = ["report", "--config", str(cfg.path), "--stack", str(stack.dir), "--month", MONTH]
    assert main([*argv, "--pdf"]) == 0
    printed = capsys.readouterr().out.split()
    folder = tmp / "var" / "reports" / PID
    assert printed == [str(folder / f"{PID}-{MONTH}.{ext}") for ext in ("json", "html", "pdf")]
    assert Path(printed[2]).read_bytes().startswith(b"%PDF-")
    doc = json.loads(Path(printed[0]).read_text("utf-8"))
    assert [a["message"] for a in doc["alerts"]] == [ALERT_MESSAGE, "Resolved: melt-stack"]
    assert [(a["from_state"], a["state"]) for a in doc["alerts"]] == [
        ("PENDING", "FIRING"),
        ("FIRING", "OK"),
    ]
    # The coverage table: if2's fifth day covers half of it (written above).
    series = {s["series"]: s["coverage"] for s in doc["coverage"]["series"]}
    assert series["Table C.1 if2"][4] == 0.5 and series["Table C.1 if1"][4] == 1.0
    assert len(series["Table 6 melt-stack/particulate"]) == 31
    # Made again by another process (another hash seed), the files are the same bytes apart
    # from the generation time.
    before = {ext: Path(printed[i]).read_text("utf-8") for i, ext in enumerate(("json", "html"))}
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run(
        [sys.executable, "-m", "greenfoundry", *argv],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    for ext, marker in (("json", '"generated_at"'), ("html", 'class="generated"')):
        after = (folder / f"{PID}-{MONTH}.{ext}").read_text("utf-8")
        a, b = _without(after, marker), _without(before[ext], marker)
        assert a == b and len(after.splitlines()) == len(a) + 1, ext
    # A bad month is one error line, exit 2.
    assert main([*argv[:-1], "2026-13"]) == 2
    assert "error: --month '2026-13' is not allowed" in capsys.readouterr().err


def test_the_report_in_chromium(report, stack):
    from playwright.sync_api import sync_playwright

    tmp, cfg = report
    html = tmp / "var" / "reports" / PID / f"{PID}-{MONTH}.html"
    if not html.exists():  # this test alone: make it first
        assert main(["report", "--config", str(cfg.path), "--stack", str(stack.dir),
                     "--month", MONTH]) == 0  # fmt: skip
    text = html.read_text("utf-8")
    # Every row of the standard with both its names (from the standard's file).
    for row in load_standard().rows.values():
        assert row.name_zh and row.name_en
        assert f"{row.name_zh}<br><span class='muted'>{row.name_en}" in text.replace("&#x27;", "'")
    # Self-contained: no script, no stylesheet or image to fetch, only in-document references.
    assert not re.search(r"<script|<link|<img|@import|url\((?!#)", text)
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#)""", text)

    messages, errors, requests = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: messages.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.as_uri(), wait_until="load")
            for plot in PLOTS:
                svg = page.locator(f"figure#{plot} > svg")
                assert svg.count() == 1, plot
                title = page.locator(f"figure#{plot} > svg > title").text_content()
                assert title and len(title) > 20, plot
                box = svg.bounding_box()
                assert box["width"] > 600 and box["height"] > 150, (plot, box)
                # Text as paths: no font is needed, so no <text> element.
                assert page.locator(f"figure#{plot} svg text").count() == 0
                assert page.locator(f"figure#{plot} svg path").count() > 50
            assert page.locator("#alerts td", has_text=ALERT_MESSAGE).count() == 1
            assert page.title() == f"{cfg.plant.name}: grade snapshot {MONTH}"
            shot = tmp / "report-screenshot.png"
            page.screenshot(path=str(shot), full_page=True)
            # Print: each section after the first starts a page.
            page.emulate_media(media="print")
            breaks = page.evaluate(
                "[...document.querySelectorAll('section')].map("
                "s => getComputedStyle(s).breakBefore)"
            )
            assert breaks[0] == "auto" and set(breaks[1:]) == {"page"}, breaks
        finally:
            browser.close()
    assert errors == []
    assert [m for m in messages if m[0] in ("error", "warning")] == []
    assert requests == [html.as_uri()]  # nothing fetched beyond the file itself
    assert shot.stat().st_size > 50_000
    Path("/tmp/gf").mkdir(exist_ok=True)
    shutil.copyfile(shot, "/tmp/gf/report-screenshot.png")


def test_without_the_cjk_font_the_plots_are_made_with_a_warning(monkeypatch, caplog):
    from greenfoundry.grade import report_plots

    monkeypatch.setattr(report_plots, "CJK_FONT", "No Such Font Family 9")
    report_plots._fonts.cache_clear()
    try:
        with (
            caplog.at_level("WARNING", logger="greenfoundry.grade.report_plots"),
            pytest.warns(UserWarning, match="missing from font"),  # matplotlib's, for 炉
        ):
            plot = report_plots.coverage_heatmap(["炉 if1"], ["2026-10-01"], [[1.0]])
            warnings = report_plots.font_warnings()
        assert plot.svg.startswith("<svg") and "<title>" in plot.svg
        assert len(warnings) == 1 and "No Such Font Family 9" in warnings[0]
        assert "fonts-wqy-microhei" in warnings[0]
        assert [r.getMessage() for r in caplog.records] == warnings  # logged once
    finally:
        report_plots._fonts.cache_clear()
