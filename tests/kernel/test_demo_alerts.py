"""`greenfoundry demo` runs the whole path and shows the promises of the alerts and the grade:
the rolling F and level on the live line, a warning fired by the simulated stack drifting
towards 0.8 C and resolved when it drops back, at the end the monthly report of the simulated
month by its path, and every published message acknowledged and accounted for."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from greenfoundry.stack import LocalStack


def test_the_demo_fires_and_resolves_a_stack_warning_and_writes_the_month_s_report(tmp_path):
    demo = tmp_path / "demo"
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "greenfoundry",
                "--log-level",
                "WARNING",
                "demo",
                "--dir",
                str(demo),
                "--speed",
                "900",
                "--plant-hours",
                "6",
                "--duration",
                "60",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        if (demo / "stack" / "stack.json").exists():
            LocalStack(demo / "stack").down()
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    live = [x for x in out.splitlines() if "readings/s" in x]
    # The rolling grade is on the live line once it is computed (F with its level).
    assert any(re.search(r"F \d+\.\d (level \d|not rated)", x) for x in live), out[-3000:]
    assert any("FIRING: stack-warning melt-stack/particulate" in x for x in live), out[-3000:]
    # The journal holds the warning's firing and its resolution, one alert id for both.
    journal = demo / "alerts" / "alerts.jsonl"
    rows = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines()]
    warning = [
        r
        for r in rows
        if r["rule"] == "stack-warning" and r["details"]["target"] == "melt-stack/particulate"
    ]
    events = [r["event"] for r in warning]
    assert events[0] == "firing" and events[-1] == "resolved", events
    assert events.count("firing") == 1  # no flapping: one alert, fired once, resolved once
    assert len({r["id"] for r in warning}) == 1
    assert re.search(r"firing\s+Warning — stack melt-stack, particulate matter", out)
    assert re.search(r"resolved\s+Resolved: warning — stack melt-stack", out)
    report = re.search(r"monthly report for (\d{4}-\d{2}): (\S+\.html)", out)
    assert report, out[-2000:]
    html = Path(report.group(2))
    assert html.is_file() and html.with_suffix(".json").is_file()
    doc = json.loads(html.with_suffix(".json").read_text(encoding="utf-8"))
    assert doc["schema"] == "greenfoundry.snapshot/1" and doc["month"] == report.group(1)
    # The whole path held: every message the simulator published was acknowledged, every good
    # reading written and every one of its bad payloads rejected by the ingest; the stack
    # stopped in order.
    summary = next(x for x in out.splitlines() if x.startswith("ingest: received"))
    received, written, rejected = (
        int(n)
        for n in re.search(r"received (\d+), written (\d+), .* rejected (\d+)", summary).groups()
    )
    assert written > 0 and received == written + rejected
    sim = next(x for x in out.splitlines() if x.startswith("simulator:"))
    published, bad = (
        int(n)
        for n in re.search(
            r"published (\d+) messages \(\d+ readings, (\d+) bad payloads\)", sim
        ).groups()
    )
    assert f"{published} acknowledged" in sim
    assert rejected == bad
    assert "stack stopped" in out
