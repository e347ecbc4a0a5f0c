"""grade.snapshot: the monthly snapshot of a simulated month, its F against `greenfoundry score`
on the same indicators and evidence, what InfluxDB holds, byte-stable files, and the catch-up
of missed months by run_due (once each).

The simulated month: the simulator's plant (`greenfoundry.sim.plant.PlantModel`, every signal
of the example config that the metrics read, 60 s sampling) for the plant-local month 2026-10,
written straight into InfluxDB with the store's line protocol (as bench/metrics.py does) and
rolled up by the metrics engine's backfill. No expected F is typed here: F is compared with what `greenfoundry score`
makes of the indicators the snapshot scored, and those indicators with what `greenfoundry
metrics indicators` makes of the same rollups."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import yaml

from greenfoundry.alerts.channels.jsonl import JsonlChannel
from greenfoundry.alerts.dispatch import Dispatcher
from greenfoundry.cli import main
from greenfoundry.errors import ConfigError
from greenfoundry.grade import config as report_config
from greenfoundry.grade import report_plots, snapshot
from greenfoundry.inputs import Node
from greenfoundry.metrics import schema
from greenfoundry.metrics import windows as win
from greenfoundry.metrics.engine import Engine
from greenfoundry.metrics.source import store_for_metrics
from greenfoundry.sim.plant import PlantModel
from greenfoundry.store import series_key, value_line, where
from tests.metrics.engine_helpers import metrics_config
from tests.plant import REPO

PID = "g-snap-sim"
MONTH = "2026-10"
TZ = "Asia/Shanghai"
# The local month 2026-10 in Asia/Shanghai (+08:00 all year): [Sep 30 16:00Z, Oct 31 16:00Z).
START = datetime(2026, 9, 30, 16, tzinfo=timezone.utc)
END = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)
T1 = datetime(2026, 11, 1, 7, 0, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 3, 9, 30, 15, tzinfo=timezone.utc)
EVIDENCE = REPO / "config/plants/demo-dip/evidence.yaml"


def _evidence_beside(cfg) -> None:
    doc = yaml.safe_load(EVIDENCE.read_text(encoding="utf-8"))
    doc["plant"] = cfg.plant.id
    (Path(cfg.path).parent / "evidence.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8"
    )


# Signals of the example plant that no rollup of this plant reads (stack O2 only where
# metrics.o2_ref_pct asks for it): left out of the simulation to keep the test short.
UNREAD = ("furnace_power_kw", "stack_flow_m3_h", "stack_o2_pct")


def _simulate(st, cfg, start: datetime, end: datetime) -> int:
    routes = {k: r for k, r in cfg.routes.items() if r.signal not in UNREAD}
    model = PlantModel(dataclasses.replace(cfg, routes=routes), seed=11)
    keys: dict = {}
    batch: list[str] = []
    n = 0
    for e in model.events(start, end):
        if e.route is None or e.value is None:
            continue
        r = e.route
        k = keys.get(r.key)
        if k is None:
            tags = {"plant": cfg.plant.id, "area": r.area, "device": r.device, **dict(r.tags)}
            k = keys[r.key] = series_key(r.signal, tags)
        batch.append(value_line(k, float(e.value), e.ts_ms * 1_000_000))
        n += 1
        if len(batch) >= 50_000:
            st.write_lines(batch)
            batch = []
    st.write_lines(batch)
    return n


# Plant energy per tonne of good pipe of the 21 months before the simulated one (kgce/t),
# written as month rollups so the report's 24 months and its CUSUM have a year before.
EARLIER_KGCE_PER_T = {
    f"{y}-{m:02d}": 310.0 - 0.5 * i
    for i, (y, m) in enumerate((y, m) for y in (2025, 2026) for m in range(1, 13))
    if (y, m) < (2026, 10)
}


def _write_earlier_months(st, cfg) -> None:
    lines = []
    for label, value in EARLIER_KGCE_PER_T.items():
        w = win.calendar_window(label, TZ)
        tags = {"plant": cfg.plant.id, "indicator": "energy_per_t_pipe", "window": "month"}
        fields = {"kgce_per_t": value, "n": 100, "coverage": 1.0, "status": "ok"}
        lines.append(schema.point(schema.T5_PLANT, tags, w, fields))
    st.write_lines(lines)


@pytest.fixture(scope="module")
def sim(tmp_path_factory, stack):
    tmp = tmp_path_factory.mktemp("snapshot")
    cfg = metrics_config(tmp, stack, PID)
    _evidence_beside(cfg)
    st = store_for_metrics(cfg)
    # From two hours before the month, so every counter's first hour has a reading before it.
    assert _simulate(st, cfg, START - timedelta(hours=2), END + timedelta(hours=1)) > 500_000
    engine = Engine(cfg, store=st)
    try:
        engine.backfill(int(START.timestamp() * 1e9), int(END.timestamp() * 1e9))
    finally:
        engine.close()
    _write_earlier_months(st, cfg)
    stored = snapshot.make(cfg, MONTH, store=st, generated_at=T1)
    return types.SimpleNamespace(cfg=cfg, st=st, stored=stored, tmp=tmp, stack=stack)


def _score_cli(capsys, cfg, indicators: dict, path: Path, as_of: str) -> dict:
    path.write_text(yaml.safe_dump(indicators, allow_unicode=True), encoding="utf-8")
    capsys.readouterr()
    assert main(["score", "--config", str(cfg.path), "--indicators", str(path),
                 "--as-of", as_of, "--json"]) == 0  # fmt: skip
    return json.loads(capsys.readouterr().out)


@pytest.mark.servers
def test_the_snapshot_f_is_greenfoundry_score_on_the_same_indicators_and_evidence(sim, capsys):
    doc = json.loads(sim.stored.json_path.read_text(encoding="utf-8"))
    assert doc["schema"] == "greenfoundry.snapshot/1" and doc["month"] == MONTH
    assert doc["as_of"] == "2026-10-31"
    assert doc["alerts"] == []  # no alert point of this plant
    month = doc["month_grade"]
    # The simulated month's measured rows are there: Table C.1, Table 6, Table 5's kgce/t.
    by_row = {r["row_id"]: r for r in month["rows"]}
    for rid in ("energy.liquid_iron.energy_per_t", "emissions.air.multiple_of_c",
                "energy.pipe.kgce_per_t"):  # fmt: skip
        assert by_row[rid]["source"] == "indicators" and by_row[rid]["value"] is not None, rid

    # 1. The indicators the snapshot scored are what `metrics indicators` gives for the month.
    out = sim.tmp / "month-indicators.yaml"
    capsys.readouterr()
    assert main(["metrics", "indicators", "--config", str(sim.cfg.path), "--stack",
                 str(sim.stack.dir), "--window", MONTH, "--out", str(out)]) == 0  # fmt: skip
    from_cli = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert (
        from_cli["window"]
        == month["indicators"]["window"]
        == {
            "start": "2026-10-01",
            "end": "2026-11-01",
        }
    )
    assert from_cli["rows"] == month["indicators"]["rows"]

    # 2. `greenfoundry score` on them, with the evidence beside the config, as of the month's
    # last day: the same F, exactly, the same grade and every row alike.
    score = _score_cli(capsys, sim.cfg, month["indicators"], sim.tmp / "m.yaml", "2026-10-31")
    assert (score["f"], score["f_exact"]) == (month["f"], month["f_exact"])
    assert score["grade"] == month["grade"]
    assert score["status_counts"] == month["status_counts"]
    assert [(r["row_id"], r["status"], r["tier"], r["points"]) for r in score["rows"]] == [
        (r["row_id"], r["status"], r["tier"], r["points"]) for r in month["rows"]
    ]
    assert score["gap"]["plan"] == month["gap"]["plan"]

    # 3. The same for the trailing 12 months (2025-11 … 2026-10, one month of it simulated).
    t12 = doc["trailing_12m"]
    assert t12["label"] == "2025-11/P12M"
    assert t12["window"] == {"start": "2025-11-01", "end": "2026-11-01"}
    score = _score_cli(capsys, sim.cfg, t12["indicators"], sim.tmp / "t.yaml", "2026-10-31")
    assert (score["f"], score["f_exact"], score["grade"]) == (
        t12["f"],
        t12["f_exact"],
        t12["grade"],
    )


@pytest.mark.servers
def test_influxdb_holds_the_snapshot_point_with_the_whole_document(sim):
    doc = json.loads(sim.stored.json_path.read_text(encoding="utf-8"))
    w = win.calendar_window(MONTH, TZ)
    df = sim.st.query(
        f"SELECT * FROM gf_snapshot {where({'plant': PID}, start_ns=w.start.value, end_ns=w.start.value + 1)}"
    )
    assert len(df) == 1
    p = df.iloc[0].to_dict()
    assert p["time"].value == w.start.value  # the month's start, UTC ns
    assert p["month"] == MONTH and p["f"] == doc["month_grade"]["f"]
    assert p["f_trailing_12m"] == doc["trailing_12m"]["f"]
    level = doc["month_grade"]["grade"]
    assert (p.get("level") if level else None) == (level["level"] if level else None)
    for status, n in doc["month_grade"]["status_counts"].items():
        assert p[f"rows_{status}"] == n, status
    # No previous snapshot: no change fields.
    assert "f_change" not in p or p["f_change"] != p["f_change"]
    assert json.loads(p["json"]) == doc  # the whole document, not cut
    assert p["html_path"] == str(sim.stored.html_path)


def _without(text: str, marker: str) -> list[str]:
    return [ln for ln in text.splitlines() if marker not in ln]


@pytest.mark.servers
def test_the_same_data_gives_the_same_files_apart_from_the_generation_time(sim):
    again = snapshot.build(sim.cfg, MONTH, store=sim.st, generated_at=T2)
    first_json = sim.stored.json_path.read_text(encoding="utf-8")
    first_html = sim.stored.html_path.read_text(encoding="utf-8")
    assert again.json_text != first_json and again.html != first_html
    assert _without(again.json_text, '"generated_at"') == _without(first_json, '"generated_at"')
    assert _without(again.html, 'class="generated"') == _without(first_html, 'class="generated"')
    # Exactly one line differs in each.
    assert len(first_json.splitlines()) - len(_without(first_json, '"generated_at"')) == 1
    assert len(first_html.splitlines()) - len(_without(first_html, 'class="generated"')) == 1
    assert "2026-11-03T09:30:15Z" in again.json_text


@pytest.mark.servers
def test_run_due_catches_up_missed_months_once_and_sends_each(sim):
    cfg = dataclasses.replace(
        sim.cfg, report=dataclasses.replace(sim.cfg.report, channels=("ops-log",))
    )
    # The alerts' own dispatcher and jsonl channel: the snapshot goes through the outbox.
    sent_file = sim.tmp / "notifications.jsonl"
    dispatcher = Dispatcher({"ops-log": JsonlChannel("ops-log", sent_file)}, sim.tmp / "outbox")
    try:
        # 2026-12-01 05:00 local: November is not due before 06:00; October is stored.
        early = pd.Timestamp("2026-12-01T05:00", tz=TZ)
        assert snapshot.run_due(cfg, early, store=sim.st, dispatcher=dispatcher) == []
        # The service was down on 1 December: on 1 January (after 06:00) November and
        # December are both made, oldest first, and each is sent once.
        late = pd.Timestamp("2027-01-01T07:00", tz=TZ)
        made = snapshot.run_due(cfg, late, store=sim.st, dispatcher=dispatcher)
        assert [p.name for p in made] == [f"{PID}-2026-11.json", f"{PID}-2026-12.json"]
        # Not made twice: the same instant, and a day later, find nothing to do.
        assert snapshot.run_due(cfg, late, store=sim.st, dispatcher=dispatcher) == []
        assert snapshot.run_due(cfg, late + pd.Timedelta(days=1), store=sim.st) == []
        assert dispatcher.flush(30)
    finally:
        dispatcher.close()
    sent = [json.loads(x) for x in sent_file.read_text(encoding="utf-8").splitlines()]
    assert [(n["id"], n["event"], n["rule"]) for n in sent] == [
        (f"snapshot:{PID}:2026-11", "snapshot", "snapshot"),
        (f"snapshot:{PID}:2026-12", "snapshot", "snapshot"),
    ]
    for n, path in zip(sent, made, strict=True):
        html = path.with_suffix(".html")
        assert n["attachments"] == [
            {
                "filename": html.name,
                "content_type": "text/html; charset=utf-8",
                "bytes": html.stat().st_size,
            }
        ]
        assert n["details"]["json_path"] == str(path)
    nov = json.loads(made[0].read_text(encoding="utf-8"))
    dec = json.loads(made[1].read_text(encoding="utf-8"))
    oct_ = json.loads(sim.stored.json_path.read_text(encoding="utf-8"))
    # Each is compared with the snapshot before it.
    assert nov["change"]["previous"] == "2026-10" and dec["change"]["previous"] == "2026-11"
    assert nov["change"]["f_change"] == round(nov["month_grade"]["f"] - oct_["month_grade"]["f"], 4)
    # Months due later: every month after the newest stored one, at most 12 back.
    mar = pd.Timestamp("2027-03-01T06:00", tz=TZ)
    assert snapshot.due_months(cfg, mar, store=sim.st) == ["2027-01", "2027-02"]
    far = pd.Timestamp("2028-06-01T06:00", tz=TZ)
    assert snapshot.due_months(cfg, far, store=sim.st) == [
        f"{y}-{m:02d}" for y, m in [(2027, 6 + i) if i < 7 else (2028, i - 6) for i in range(12)]
    ]


@pytest.mark.servers
def test_a_snapshot_made_before_its_month_is_due_does_not_stand_for_the_month(tmp_path, stack):
    # `greenfoundry report --month 2026-11` on 15 November scores half a month. On 1 December
    # after 06:00 local the month is due: it is made then, from the whole month, and sent;
    # the early one must not count as November's snapshot. Made once: then nothing is due.
    cfg = metrics_config(tmp_path, stack, "g-snap-early")
    _evidence_beside(cfg)
    st = store_for_metrics(cfg)
    early = pd.Timestamp("2026-11-15T10:00", tz=TZ)
    snapshot.make(cfg, "2026-11", store=st, generated_at=early)
    # Nor does it hide October, the month due then, from a plant with no snapshot yet.
    assert snapshot.due_months(cfg, early + pd.Timedelta(days=1), store=st) == ["2026-10"]
    due = pd.Timestamp("2026-12-01T06:00", tz=TZ)
    assert snapshot.due_months(cfg, due, store=st) == ["2026-11"]
    made = snapshot.run_due(cfg, due, store=st)
    assert [p.name for p in made] == ["g-snap-early-2026-11.json"]
    doc = json.loads(made[0].read_text(encoding="utf-8"))
    assert doc["generated_at"] == "2026-11-30T22:00:00Z"  # 06:00 at +08:00
    assert snapshot.due_months(cfg, due, store=st) == []
    assert snapshot.run_due(cfg, due + pd.Timedelta(hours=1), store=st) == []


@pytest.mark.servers
def test_a_plant_without_snapshots_starts_with_the_newest_due_month(tmp_path, stack):
    cfg = metrics_config(tmp_path, stack, "g-snap-none")
    st = store_for_metrics(cfg)
    assert snapshot.due_months(cfg, pd.Timestamp("2026-11-01T06:00", tz=TZ), store=st) == [
        "2026-10"
    ]
    assert snapshot.due_months(cfg, pd.Timestamp("2026-11-01T05:59", tz=TZ), store=st) == [
        "2026-09"
    ]


@pytest.mark.servers
def test_a_month_that_cannot_be_made_is_logged_once_and_nothing_is_raised(tmp_path, stack, caplog):
    # This plant has no evidence.yaml beside its config: the scorer's input is refused.
    cfg = metrics_config(tmp_path, stack, "g-snap-broken")
    st = store_for_metrics(cfg)
    now = pd.Timestamp("2026-11-02T08:00", tz=TZ)
    before = snapshot.failures
    with caplog.at_level(logging.DEBUG, logger="greenfoundry.grade.snapshot"):
        assert snapshot.run_due(cfg, now, store=st) == []
        assert snapshot.run_due(cfg, now, store=st) == []
    failed = [r for r in caplog.records if "not made" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.ERROR, logging.DEBUG]
    assert "g-snap-broken for 2026-10 not made" in failed[0].getMessage()
    assert "evidence" in failed[0].getMessage()
    assert snapshot.failures == before + 2
    assert snapshot.stored_months(cfg, st, 0, now.value) == set()


# --------------------------------------------------------------------------- pure parts


def test_a_month_is_due_at_the_lateness_on_the_first_plant_local():
    cfg = types.SimpleNamespace(
        report=types.SimpleNamespace(lateness=dt.time(6, 0)),
        plant=types.SimpleNamespace(timezone=TZ),
    )
    # 2026-11-01 06:00 in Shanghai (+08:00) is 2026-10-31 22:00 UTC.
    w = win.calendar_window(MONTH, TZ)
    assert snapshot.due_at(cfg, w) == pd.Timestamp("2026-10-31T22:00", tz="UTC")
    # Berlin in December is on CET (+01:00): 2026-12-01 02:30 local is 01:30 UTC.
    cfg.report.lateness = dt.time(2, 30)
    w = win.calendar_window("2026-11", "Europe/Berlin")
    assert snapshot.due_at(cfg, w) == pd.Timestamp("2026-12-01T01:30", tz="UTC")


def test_the_cusum_is_the_running_sum_of_this_year_minus_the_year_before():
    months = {
        "2025-01": 300.0,
        "2025-02": 310.0,
        "2025-03": 305.0,
        "2026-01": 296.0,  # −4
        "2026-02": 311.5,  # +1.5
        # 2026-03 missing: adds nothing
        "2026-04": 299.0,  # 2025-04 missing: adds nothing
    }
    got = report_plots.cusum_against_previous_year(months, 2026, 4)
    # By hand: S1 = −4, S2 = −4 + 1.5 = −2.5, S3 = S2, S4 = S2.
    assert got == [
        ("2026-01", -4.0, -4.0),
        ("2026-02", 1.5, -2.5),
        ("2026-03", None, -2.5),
        ("2026-04", None, -2.5),
    ]
    assert report_plots.cusum_against_previous_year({}, 2026, 2) == [
        ("2026-01", None, None),
        ("2026-02", None, None),
    ]


def _grade(f: float, level: int | None, rows=()) -> dict:
    g = None if level is None else {"level": level}
    return {"f": f, "grade": g, "rows": list(rows)}


def test_the_change_counts_steps_on_the_table_9_ladder():
    row = {"row_id": "r", "status": "scored", "tier": 2, "points": 7.5}
    before = {"month_grade": _grade(620.0, 3, [row]), "trailing_12m": _grade(755.0, 2)}
    now = {
        "month_grade": _grade(590.5, None, [{**row, "tier": None, "points": 0.0}]),
        "trailing_12m": _grade(910.0, 1),
    }
    ch = snapshot.change(now, before, "2026-09")
    # Level 3 → not rated is one step down; level 2 → level 1 one step up (by hand).
    assert (ch["f_change"], ch["level_change"]) == (-29.5, -1)
    assert (ch["f_change_trailing_12m"], ch["level_change_trailing_12m"]) == (155.0, 1)
    assert ch["rows"] == [
        {
            "row_id": "r",
            "status_before": "scored",
            "status": "scored",
            "tier_before": 2,
            "tier": None,
            "points_before": 7.5,
            "points": 0.0,
            "points_change": -7.5,
        }
    ]
    assert snapshot.change(now, None, None)["previous"] is None


def _parse(data: dict, alerts=None):
    node = Node(data, "report", file="plant.yaml", error=ConfigError)
    cfg = types.SimpleNamespace(alerts=alerts)
    return report_config.parse_report(node, cfg, Path("/plant"), None)


def test_the_report_section_defaults_and_refusals():
    r = _parse({})
    assert r == report_config.ReportConfig(
        dir=Path("/plant/var/reports"), lateness=dt.time(6, 0), channels=(), pdf=False
    )
    r = _parse({"dir": "/srv/reports", "lateness": "07:30", "channels": ["mail"], "pdf": True})
    assert (r.dir, r.lateness, r.channels, r.pdf) == (
        Path("/srv/reports"), dt.time(7, 30), ("mail",), True,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"plant.yaml: report.lateness: '6:00' is not allowed"):
        _parse({"lateness": "6:00"})
    with pytest.raises(ConfigError, match=r"report.pdf: 'yes' is not allowed; expected true or"):
        _parse({"pdf": "yes"})
    with pytest.raises(ConfigError, match=r"report.colour: unknown key"):
        _parse({"colour": "green"})
    # Against the alerts section's channels, when it has them.
    alerts = types.SimpleNamespace(channels={"mail": object(), "ops-log": object()})
    assert _parse({"channels": ["ops-log"]}, alerts).channels == ("ops-log",)
    with pytest.raises(ConfigError, match=r"report.channels: 'pager' is not a channel of alerts"):
        _parse({"channels": ["pager"]}, alerts)


def test_the_demo_plant_has_the_report_block():
    from greenfoundry import plant

    cfg = plant.load(REPO / "config/plants/demo-dip/plant.yaml", resolve_secrets=False)
    assert cfg.report.lateness == dt.time(6, 0) and cfg.report.pdf is False
    assert cfg.report.dir == REPO / "config/plants/demo-dip/var/reports"


def test_a_month_label_is_checked():
    cfg = types.SimpleNamespace(plant=types.SimpleNamespace(timezone=TZ))
    from greenfoundry.errors import UsageError

    for bad in ("2026-13", "2026", "2026-10-01", "oct"):
        with pytest.raises(UsageError, match="expected a month YYYY-MM"):
            snapshot.month_window(cfg, bad)


def test_report_channels_are_checked_against_the_alerts_channels_of_the_plant(tmp_path):
    from greenfoundry import plant

    raw = yaml.safe_load((REPO / "config/plants/demo-dip/plant.yaml").read_text("utf-8"))
    raw["alerts"] = {
        "channels": {"journal": {"type": "jsonl", "path": "n.jsonl"}},
        "default_channels": ["journal"],
    }
    raw["report"] = {"channels": ["journal"], "lateness": "07:15"}
    cfg = plant.parse(raw, base=tmp_path, env=None, path=tmp_path / "plant.yaml")
    assert cfg.report.channels == ("journal",) and cfg.report.lateness == dt.time(7, 15)
    raw["report"] = {"channels": ["mail"]}
    with pytest.raises(ConfigError, match=r"plant.yaml: report.channels: 'mail' is not a channel "
                       r"of alerts.channels; expected one of: journal"):  # fmt: skip
        plant.parse(raw, base=tmp_path, env=None, path=tmp_path / "plant.yaml")
