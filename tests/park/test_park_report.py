"""`greenfoundry park report` on the real InfluxDB and in headless Chromium: two plants of one
park with rollup points written by hand (the month's Table C.1, Table 6, Table 5 and water-reuse
points the snapshot scores). One plant's snapshot is stored beforehand (`greenfoundry report`),
the other's is made by the park report. The park report's numbers are each plant's snapshot's;
anonymised, no byte of the file names a plant. A screenshot is copied to
/tmp/gf/park-report-screenshot.png."""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from greenfoundry.cli import main
from greenfoundry.grade import snapshot
from greenfoundry.metrics import schema
from greenfoundry.metrics import windows as win
from greenfoundry.park import config
from greenfoundry.stack import store_for
from tests.plant import EXAMPLE, REPO

pytestmark = pytest.mark.servers

MONTH = "2026-10"
TZ = "Asia/Shanghai"
CHROMIUM = "/usr/bin/chromium"
ARGS = list(snapshot.CHROMIUM_ARGS)  # the flags the report's PDF is printed with
# id, name, kWh/t of liquid iron, worst multiple of C, kgce/t of pipe, cooling recirculation %,
# process wastewater reuse %.
PLANTS = (
    ("pk-rep-north", "Northern Test Works", 590.0, 0.55, 112.0, 96.5, 81.0),
    ("pk-rep-south", "Southern Test Works", 540.0, 0.92, 131.5, 91.0, 60.5),
)


def _plant_file(tmp: Path, plant_id: str, name: str) -> Path:
    raw = copy.deepcopy(EXAMPLE)
    raw["plant"].update({"id": plant_id, "name": name})
    raw["mqtt"]["client_id"] = f"gf-ingest-{plant_id}"
    folder = tmp / plant_id
    folder.mkdir()
    (folder / "plant.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    ev = yaml.safe_load((REPO / "config/plants/demo-dip/evidence.yaml").read_text("utf-8"))
    ev["plant"] = plant_id
    (folder / "evidence.yaml").write_text(yaml.safe_dump(ev, allow_unicode=True), "utf-8")
    return folder / "plant.yaml"


def _write_month(st, plant_id, kwh_per_t, multiple_of_c, kgce_per_t, cooling, process) -> None:
    month = win.calendar_window(MONTH, TZ)
    ok = {"n": 100, "coverage": 1.0, "status": "ok"}
    tags = {"plant": plant_id, "window": "month"}
    lines = [
        schema.point(schema.C1_PLANT, tags, month, {"kwh_per_t": kwh_per_t, **ok}),
        schema.point(schema.AIR_PLANT, tags, month, {"multiple_of_c": multiple_of_c, **ok}),
    ]
    for indicator, fields in (
        ("energy_per_t_pipe", {"kgce_per_t": kgce_per_t}),
        ("cooling_recirculation", {"rate_pct": cooling}),
        ("process_wastewater_reuse", {"rate_pct": process}),
    ):
        t = {**tags, "indicator": indicator}
        lines.append(schema.point(schema.T5_PLANT, t, month, {**fields, **ok}))
    st.write_lines(lines)


@pytest.fixture(scope="module")
def park(tmp_path_factory, stack):
    tmp = tmp_path_factory.mktemp("park-report")
    files = [_plant_file(tmp, pid, name) for pid, name, *_ in PLANTS]
    st = store_for(stack, role="metrics")
    for pid, _name, *values in PLANTS:
        _write_month(st, pid, *values)
    doc = {"version": 1, "id": "test-park", "name": "Test park 测试园区", "plants": [str(f) for f in files]}  # fmt: skip
    path = tmp / "park.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    # The first plant's snapshot is stored beforehand; the second's the park report makes.
    argv = ["report", "--config", str(files[0]), "--stack", str(stack.dir), "--month", MONTH]
    assert main(argv) == 0
    return tmp, path, files


def _cells(page) -> dict[str, list[str]]:
    """The comparison table as the browser shows it: row key → the plants' cell texts."""
    rows = page.evaluate(
        "[...document.querySelectorAll('#compare tbody tr')].map(tr => "
        "[tr.dataset.row, ...[...tr.querySelectorAll('td')].slice(2).map(td => "
        "(td.querySelector('.v') || td).textContent)])"
    )
    return {r[0]: r[1:] for r in rows}


def _load(html: Path, shot: Path | None = None):
    from playwright.sync_api import sync_playwright

    messages, errors, requests = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: messages.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.as_uri(), wait_until="load")
            cells = _cells(page)
            heads = page.evaluate(
                "[...document.querySelectorAll('#compare thead th')].slice(2)"
                ".map(th => th.textContent)"
            )
            for plot in ("plot-c1", "plot-rows", "plot-grade"):
                svg = page.locator(f"figure#{plot} > svg")
                assert svg.count() == 1, plot
                box = svg.bounding_box()
                assert box["width"] > 600 and box["height"] > 150, (plot, box)
                assert page.locator(f"figure#{plot} svg text").count() == 0  # text as paths
            if shot is not None:
                page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert [m for m in messages if m[0] in ("error", "warning")] == []
    assert requests == [html.as_uri()]
    return heads, cells


def test_the_park_report_shows_each_plants_snapshot(park, stack, capsys):
    tmp, path, files = park
    capsys.readouterr()
    assert main(["park", "report", "--park", str(path), "--month", MONTH, "--stack", str(stack.dir)]) == 0  # fmt: skip
    html = Path(capsys.readouterr().out.strip())
    assert html == tmp / "var" / "reports" / f"test-park-{MONTH}.html"
    shot = tmp / "park-report.png"
    heads, cells = _load(html, shot)
    assert shot.stat().st_size > 50_000
    Path("/tmp/gf").mkdir(exist_ok=True)
    shutil.copyfile(shot, "/tmp/gf/park-report-screenshot.png")
    assert heads == [name for _, name, *_ in PLANTS]  # the park file's order
    docs = []
    for f, (pid, *_rest) in zip(files, PLANTS, strict=True):
        # Made by the park report for the second plant: now stored like the first's.
        snap = f.parent / "var" / "reports" / pid / f"{pid}-{MONTH}.json"
        docs.append(json.loads(snap.read_text("utf-8")))
    for i, ((_pid, _name, kwh, mult, kgce, cooling, process), doc) in enumerate(
        zip(PLANTS, docs, strict=True)
    ):
        rows = {r["row_id"]: r for r in doc["month_grade"]["rows"]}
        # The snapshot's values are the points written above, and the park report shows them.
        expected = {
            "energy.liquid_iron.energy_per_t": kwh,
            "emissions.air.multiple_of_c": mult,
            "energy.pipe.kgce_per_t": kgce,
            "energy.water.cooling_recirculation": cooling,
            "energy.water.process_wastewater_reuse": process,
        }
        for row_id, value in expected.items():
            assert rows[row_id]["value"] == value
            assert float(cells[row_id][i]) == value, row_id
        for row_id in ("energy.water.coating_wastewater_reuse", "energy.water.reclaimed_share"):
            assert rows[row_id]["value"] is None and cells[row_id][i] == "–"
        assert cells["f"][i] == f"{doc['month_grade']['f']:.1f}"
        assert cells["f_trailing_12m"][i] == f"{doc['trailing_12m']['f']:.1f}"
        level = doc["month_grade"]["grade"]
        assert cells["level"][i] == ("not rated 未评级" if level is None else f"level {level['level']} 级")  # fmt: skip
        # Table C.1: 590 and 540 kWh/t meet no tier of a 12 t induction furnace, so the
        # snapshot keeps the tier-3 limit as the next tier; the park report's third limit,
        # computed from the plant config as the scorer does, is that same number.
        c1 = rows["energy.liquid_iron.energy_per_t"]
        assert c1["tier"] is None and c1["next_tier"]["tier"] == 3
        limits = [float(x) for x in cells["c1_limits"][i].split(" / ")]
        assert len(limits) == 3 and limits[0] < limits[1] < limits[2]
        assert limits[2] == c1["next_tier"]["value"]
        assert cells["c1_furnace"][i] == "感应电炉 induction furnace, 12"


def test_anonymised_no_byte_names_a_plant(park, stack):
    tmp, path, _files = park
    out = tmp / "anon.html"
    argv = ["park", "report", "--park", str(path), "--month", MONTH, "--stack", str(stack.dir)]
    assert main([*argv, "--anonymise", "--out", str(out)]) == 0
    data = out.read_bytes()
    for pid, name, *_ in PLANTS:
        for x in (pid, name, name.replace(" ", "&#x20;")):
            assert x.encode("utf-8") not in data, x
    assert b"Test park" in data  # the park's own name stays
    labels = config.load(path).labels()
    heads, cells = _load(out)
    # Listed in the keyed order, A first; each column holds that plant's numbers.
    assert heads == ["Plant A", "Plant B"]
    by_label = {labels[pid]: kwh for pid, _name, kwh, *_ in PLANTS}
    assert [float(x) for x in cells["energy.liquid_iron.energy_per_t"]] == [
        by_label["Plant A"],
        by_label["Plant B"],
    ]
    # The same data gives the same bytes apart from the generation line.
    assert main([*argv, "--anonymise", "--out", str(tmp / "anon2.html")]) == 0
    again = (tmp / "anon2.html").read_text("utf-8").splitlines()
    first = data.decode("utf-8").splitlines()
    assert [x for x in again if "generated" not in x] == [x for x in first if "generated" not in x]
    assert not re.search(r"<script|<link|<img|@import", data.decode("utf-8"))


def test_a_bad_month_or_park_is_one_error_line(park, stack, capsys):
    _tmp, path, _files = park
    argv = ["park", "report", "--park", str(path), "--stack", str(stack.dir), "--month"]
    assert main([*argv, "2026-13"]) == 2
    assert "error: --month '2026-13' is not allowed" in capsys.readouterr().err
    assert main(["park", "report", "--park", str(path.parent / "none.yaml"), "--month", MONTH]) == 1  # fmt: skip
    assert "cannot read the park file" in capsys.readouterr().err


def test_a_snapshot_is_read_stored_else_from_its_file_else_made(tmp_path, stack):
    from greenfoundry.grade import snapshot
    from greenfoundry.ingest.cli import load_config
    from greenfoundry.park import report

    st = store_for(stack, role="metrics")
    cfgs = {}
    for pid, value in (("pk-rep-made", 600.0), ("pk-rep-file", 610.0)):
        path = _plant_file(tmp_path, pid, f"Plant {pid}")
        _write_month(st, pid, value, 0.5, 120.0, 90.0, 70.0)
        ns = argparse.Namespace(config=path, stack=str(stack.dir))
        cfgs[pid] = load_config(ns, mqtt_secret=False)
    # Nothing stored and no file: made now, and stored, so the next read finds the point.
    doc, source = report.snapshot_for(cfgs["pk-rep-made"], MONTH)
    assert source == "made"
    assert report.snapshot_for(cfgs["pk-rep-made"], MONTH) == (doc, "gf_snapshot")
    # Only the JSON file (a snapshot built and written, its point not stored): the file.
    cfg = cfgs["pk-rep-file"]
    snap = snapshot.build(cfg, MONTH)
    json_path = snapshot.paths(cfg, MONTH)[0]
    json_path.parent.mkdir(parents=True)
    json_path.write_text(snap.json_text, "utf-8")
    doc, source = report.snapshot_for(cfg, MONTH)
    assert source == "file" and doc == snap.document
    rows = {r["row_id"]: r["value"] for r in doc["month_grade"]["rows"]}
    assert rows["energy.liquid_iron.energy_per_t"] == 610.0
