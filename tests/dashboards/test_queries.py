"""Every query of every dashboard, taken out of the committed JSON, its variables and macros
substituted as Grafana does (`tests/dashboards/grafana.py`), run as the reader role against the
real InfluxDB holding a simulated month: each returns data, in the unit its panel says, and
every name it reads is one the data really has.

The simulated month (as tests/grade/test_snapshot.py makes it): the simulator's plant
(`sim.plant.PlantModel`, every signal of the example config the metrics read, 60 s sampling)
for the plant-local month 2026-10, written straight into InfluxDB with the store's line protocol
and rolled up by the metrics engine's backfill. On it, with the real writers: the rolling grade
of three days (`grade.compute` + `grade.rolling.write_grade`; the example evidence's declaration
valid until 2026-10-31 is within 60 days of each, so "expiring" rows exist) and, since a plant
with one month of readings is not rated (its trailing 12 months lack coverage), one day scored
by the scorer on the example indicators of the demo plant (level 2 with its evidence,
config/plants/demo-dip/indicators.example.yaml), so the level has a value; the month's
snapshot (`grade.snapshot.make`, its gf_snapshot point), stack alert transitions
(`alerts.engine.transition_line`: one alarm fired and resolved, one critical still firing), and
the ingest's self-metrics and dead letters from a real `Ingest` fed over the real broker, with
a sequence gap and two bad payloads, plus a deadman alert firing in that window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import time
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from greenfoundry.alerts.engine import transition_line
from greenfoundry.alerts.machine import FIRING, OK, PENDING, AlertState, Transition
from greenfoundry.dashboards import build
from greenfoundry.grade import compute, rolling, snapshot
from greenfoundry.ingest.service import Ingest
from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from greenfoundry.metrics.source import store_for_metrics
from greenfoundry.scoring import scorer
from greenfoundry.scoring.indicators import parse_indicators
from greenfoundry.scoring.standard import load_standard
from greenfoundry.sim.plant import PlantModel
from greenfoundry.store import series_key, value_line
from tests.dashboards import grafana
from tests.dashboards.documented import GRAFANA, documented, panel_unit, schema_unit
from tests.metrics.engine_helpers import metrics_config
from tests.plant import REPO, Publisher, store, wait_for

pytestmark = pytest.mark.servers

PID = "d-dash"
MONTH = "2026-10"
# The local month 2026-10 in Asia/Shanghai (+08:00 all year): [Sep 30 16:00Z, Oct 31 16:00Z).
START = datetime(2026, 9, 30, 16, tzinfo=timezone.utc)
END = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)
GRADED_DAYS = (dt.date(2026, 10, 10), dt.date(2026, 10, 20), dt.date(2026, 10, 30))
RATED_DAY = dt.date(2026, 10, 5)
UNREAD = ("furnace_power_kw", "stack_flow_m3_h", "stack_o2_pct")  # no rollup reads them here
# The plants' dashboards (the park dashboard's queries run in test_park_dashboard.py).
MODELS = {
    p.name: json.loads(p.read_text(encoding="utf-8"))
    for p in build.JSON_DIR.glob("*.json")
    if p.name in build.DASHBOARDS
}
NS = 1_000_000_000
CUPOLA_FIELD = schema.UNIT_FIELD["kgce/t"]


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * NS


def _simulate(st, cfg) -> int:
    routes = {k: r for k, r in cfg.routes.items() if r.signal not in UNREAD}
    model = PlantModel(dataclasses.replace(cfg, routes=routes), seed=11)
    keys: dict = {}
    batch: list[str] = []
    n = 0
    # From two hours before the month, so every counter's first hour has a reading before it.
    for e in model.events(START - timedelta(hours=2), END + timedelta(hours=1)):
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


def _alert(cfg, rule_id: str, key: str, events: list[tuple[datetime | int, str, str, float]]):
    """gf_alert points of one target, by the alerts engine's own writer: (at, from, to, value)."""
    target = next(t for t in cfg.alerts.targets(cfg) if t.rule.id == rule_id and t.key == key)
    lines = []
    since = None
    for at, from_state, to_state, value in events:
        at_ns = at if isinstance(at, int) else _ns(at)
        since = since or at_ns
        event = {FIRING: "firing", OK: "resolved"}.get(to_state)
        aid = f"{rule_id}-{since:x}"[:24]
        tr = Transition(key, rule_id, aid, from_state, to_state, at_ns, value, event, since)
        state = AlertState(key, rule_id, state=to_state, since_ns=at_ns, pending_since_ns=since)
        lines.append(transition_line(cfg.plant.id, target, tr, state, f"{key} {to_state}"))
    return lines


def _last(st, field: str) -> float:
    df = st.query(
        f'SELECT last("{field}") FROM gf_ingest WHERE "plant" = \'{PID}\' AND time > now() - 1h'
    )
    return 0 if df.empty else float(df.iloc[0]["last"])


def _run_ingest(stack, cfg) -> tuple[int, int]:
    """A real Ingest fed two bursts over the broker, each awaited in its self-metrics: readings
    with seq 1, 2 then 5, 6 (a gap of 2) and one bad payload per burst. (start, end) ns."""
    admin = store(stack)
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "power")])
    svc = Ingest(cfg)
    svc.start()
    pub = Publisher(stack, f"gf-dev-{PID}", plant=PID)
    start_ns = time.time_ns()
    try:
        assert svc.wait_connected(10)
        for seqs, bad, written in (((1, 2), b"{not json", 2), ((5, 6), b'{"ts_ms": 1}', 4)):
            for s in seqs:
                now_ms = time.time_ns() // 1_000_000
                pub.publish(topic, json.dumps({"ts_ms": now_ms, "value": 900.0 + s, "seq": s}))
            pub.publish(topic, bad)
            pub.wait_all()
            wait_for(lambda w=written: _last(admin, "written") >= w, 30, f"{written} written")
        wait_for(lambda: _last(admin, "seq_gaps") >= 2 and _last(admin, "rejected") >= 2, 30)
    finally:
        pub.close()
        svc.stop()
    return start_ns, time.time_ns()


def _rated_day(cfg, as_of: dt.date, rows: dict | None = None) -> compute.Graded:
    """The grade of ``as_of`` from the demo plant's example indicators and evidence, made as
    grade.compute makes a day's grade (scorer.score on the document, the expiring evidence);
    ``rows``: rows of the document replaced (a plant with other furnaces)."""
    doc = yaml.safe_load((REPO / "config/plants/demo-dip/indicators.example.yaml").read_text())
    doc["plant"] = cfg.plant.id  # the demo plant's facts under this test's plant id
    doc["rows"].update(rows or {})
    evidence = compute.load_plant_evidence(cfg)
    indicators = parse_indicators(doc, "indicators.example.yaml")
    result = scorer.score(load_standard(), cfg, indicators, evidence, scorer.Options(as_of=as_of))
    return compute.Graded(
        plant=cfg.plant.id,
        as_of=as_of,
        window={k: str(v) for k, v in doc["window"].items()},  # dates as the metrics write them
        indicators=doc,
        notes=(),
        result=result,
        expiring=compute.expiring(result, evidence, as_of),
    )


def _evidence_beside(cfg) -> None:
    doc = yaml.safe_load((REPO / "config/plants/demo-dip/evidence.yaml").read_text("utf-8"))
    doc["plant"] = cfg.plant.id
    (Path(cfg.path).parent / "evidence.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8"
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory, stack):
    tmp = tmp_path_factory.mktemp("dashboards")
    cfg = metrics_config(tmp, stack, PID)
    _evidence_beside(cfg)
    st = store_for_metrics(cfg)
    assert _simulate(st, cfg) > 500_000
    engine = Engine(cfg, store=st)
    try:
        engine.backfill(_ns(START), _ns(END))
    finally:
        engine.close()
    for day in GRADED_DAYS:
        rolling.write_grade(st, cfg, compute.compute(cfg, day, store=st))
    rated = _rated_day(cfg, RATED_DAY)
    assert rated.result.grade is not None and rated.result.grade.level == 2
    rolling.write_grade(st, cfg, rated)
    snapshot.make(cfg, MONTH, store=st, generated_at=datetime(2026, 11, 1, 7, tzinfo=timezone.utc))
    t = datetime(2026, 10, 12, 2, tzinfo=timezone.utc)
    lines = _alert(cfg, "stack-alarm", "melt-stack/particulate", [
        (t, OK, PENDING, 0.82), (t + timedelta(minutes=5), PENDING, FIRING, 0.84),
        (t + timedelta(hours=2), FIRING, OK, 0.6),
    ])  # fmt: skip
    t = datetime(2026, 10, 25, 3, tzinfo=timezone.utc)
    lines += _alert(cfg, "stack-critical", "coat-stack/nmhc", [(t, OK, FIRING, 1.05)])
    st.write_lines(lines)
    live = _run_ingest(stack, cfg)
    deadman = next(t for t in cfg.alerts.targets(cfg) if t.rule.kind == "deadman")
    st.write_lines(_alert(cfg, deadman.rule.id, deadman.key, [(live[0], OK, FIRING, 900.0)]))
    ranges = {  # (start_ms, end_ms) of each dashboard's time picker in this test
        "energy.json": (_ns(START) // 10**6, _ns(END) // 10**6),
        "ehs.json": (_ns(START) // 10**6, _ns(END) // 10**6),
        "management.json": (_ns(START) // 10**6, _ns(END) // 10**6),
        "ingest.json": (live[0] // 10**6 - 1000, live[1] // 10**6 + 1000),
    }
    reader = store(stack, role="reader")
    return types.SimpleNamespace(cfg=cfg, reader=reader, ranges=ranges)


def _variables(model: dict, reader, plant: str) -> tuple[dict[str, list[str]], set[str]]:
    """Each variable's values, from its own query run as Grafana runs it ($plant first)."""
    values: dict[str, list[str]] = {}
    multi = set()
    for v in model["templating"]["list"]:
        q = v["query"].replace("$plant", values["plant"][0]) if "plant" in values else v["query"]
        found = sorted(
            {
                row[1]
                for r in reader.query_raw(q)
                for s in r.get("series", [])
                for row in s["values"]
            }
        )
        assert found, f"variable {v['name']}: {q} found nothing"
        if v["name"] == "plant":
            assert plant in found
            found = [plant]
        values[v["name"]] = found
        if v.get("multi") or v.get("includeAll"):
            multi.add(v["name"])
    return values, multi


def _select_items(query: str) -> dict[str, str]:
    """{column: its expression} of a SELECT list (aliases, or the bare field's name)."""
    select = re.match(r"SELECT (.*?) FROM ", query).group(1)
    out = {}
    for item in re.split(r",\s*(?![^()]*\))", select):
        m = re.fullmatch(r'(.*?) AS "([^"]+)"', item.strip())
        expr, col = (m.group(1), m.group(2)) if m else (item.strip(), item.strip().strip('"'))
        out[col] = expr
    return out


def _runs(world, name: str):
    """(panel, target, the query as sent, its DataFrame) for every target of every panel of
    the dashboard, a repeated row's panels once per value of its variable."""
    model = MODELS[name]
    values, multi = _variables(model, world.reader, PID)
    start_ms, end_ms = world.ranges[name]
    interval = grafana.interval_ms(end_ms - start_ms, 1000)
    for panel, repeat in grafana.panels(model):
        for value in values[repeat] if repeat else [None]:
            vs = dict(values)
            if repeat:
                vs[repeat] = [value]
            for t in panel["targets"]:
                q = grafana.substitute(
                    t["query"], vs, multi, start_ms=start_ms, end_ms=end_ms, interval=interval
                )
                yield panel, t, q, world.reader.query(q)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_query_returns_data_in_the_unit_its_panel_says(world, name):
    checked = 0
    for panel, target, q, df in _runs(world, name):
        assert not df.empty, f"{name} / {panel['title']} / {target['refId']}: no rows for {q}"
        measurements, _ = grafana.names(q)
        items = _select_items(target["query"])
        for col, expr in items.items():
            assert col in df.columns, f"{panel['title']}: no column {col} in {list(df.columns)}"
            numbers = df[col].dropna()
            if numbers.empty or not all(isinstance(x, int | float) for x in numbers):
                continue  # text, or a field this item does not have (kgce/t of an induction furnace)
            expected = {schema_unit(m, col, expr) for m in measurements}
            assert len(expected) == 1, (col, expected)
            unit = GRAFANA[expected.pop()]
            assert panel_unit(panel, col) == unit, f"{name} / {panel['title']}: {col}"
            checked += 1
    assert checked >= 3


def _transformation(panel: dict, id_: str) -> dict | None:
    return next((t["options"] for t in panel.get("transformations", []) if t["id"] == id_), None)


def test_the_transformations_find_what_they_name(world):
    """What Grafana does after the query, checked on the answers: the Table C.1 limits the
    threshold bands take (configFromData), the firing alerts the tables keep (filterByValue)
    and the snapshot's gap plan (extractFields)."""
    seen = set()
    for name in MODELS:
        for panel, target, _q, df in _runs(world, name):
            cfd = _transformation(panel, "configFromData")
            if cfd and target["refId"] == cfd["configRefId"]:
                # Grafana's threshold1 handler appends a step per mapped column that has a
                # number (a green base first): an induction furnace's three kWh/t limits, in
                # increasing order, so the bands run green, yellow, orange, red.
                row = df.iloc[0]
                steps = [
                    (row[m["fieldName"]], m["handlerArguments"]["threshold"]["color"])
                    for m in cfd["mappings"]
                    if m["fieldName"] in df.columns and row[m["fieldName"]] == row[m["fieldName"]]
                    and row[m["fieldName"]] is not None
                ]  # fmt: skip
                values = [v for v, _c in steps]
                assert [c for _v, c in steps] == ["yellow", "orange", "red"], steps
                assert values == sorted(values) and values[0] > 0
                seen.add("limits")
            fbv = _transformation(panel, "filterByValue")
            if fbv:
                keep = {f["config"]["options"]["value"] for f in fbv["filters"]}
                firing = df[df["state"].isin(keep)]
                # EHS: the critical alert still firing, not the resolved alarm; the deadman.
                assert len(firing) == 1, (panel["title"], df[["rule", "target", "state"]])
                seen.add(firing.iloc[0]["rule"])
            ef = _transformation(panel, "extractFields")
            if ef:
                doc = json.loads(df.iloc[0][ef["source"]])
                assert doc["month"] == MONTH
                for p in ef["jsonPaths"]:
                    node = doc
                    for part in p["path"].split("."):
                        node = node[part]
                    assert node is not None or p["alias"] == "next_grade", p
                seen.add("gap")
    assert {"limits", "stack-critical", "deadman", "gap"} <= seen, seen


def test_the_alert_annotation_query_returns_the_transitions(world):
    (a,) = MODELS["ehs.json"]["annotations"]["list"]
    start_ms, end_ms = world.ranges["ehs.json"]
    q = grafana.substitute(
        a["target"]["query"], {"plant": [PID]}, set(), start_ms=start_ms, end_ms=end_ms, interval=1
    )
    df = world.reader.query(q)
    # The alarm's firing and resolution and the critical's firing (not its PENDING step).
    assert sorted(df["event"]) == ["firing", "firing", "resolved"]
    assert a["target"]["textColumn"] in df.columns
    for col in a["target"]["tagsColumn"].split(","):
        assert col in df.columns


def test_every_name_a_panel_reads_is_in_the_data(world):
    """The live side of the schema test: each name a query reads is a field or tag key the
    data in InfluxDB has (so the dashboards follow the writers, not only their documents)."""
    have = {r for res in world.reader.query_raw("SHOW MEASUREMENTS") for s in res.get("series", []) for (r,) in s["values"]}  # fmt: skip
    keys: dict[str, set[str]] = {}
    docs = documented()
    missing = []
    for model in MODELS.values():
        for panel, _r in grafana.panels(model):
            for t in panel["targets"]:
                measurements, idents = grafana.names(t["query"])
                present = [m for m in measurements if m in have]
                assert present, t["query"]
                for m in present:
                    if m not in keys:
                        keys[m] = set()
                        for kind in ("FIELD", "TAG"):
                            for res in world.reader.query_raw(f'SHOW {kind} KEYS FROM "{m}"'):
                                for s in res.get("series", []):
                                    keys[m] |= {row[0] for row in s["values"]}
                known = set().union(*(keys[m] for m in present))
                for i in idents:
                    # A tag a raw signal has only on some series (pollutant, role) is documented;
                    # the demo plant has no cupola, so its kgce/t fields (schema.c1_fields names
                    # them by the row's unit) are checked against the documents only.
                    if i in known or all(i in docs[m][0] for m in measurements):
                        continue
                    if i.endswith(CUPOLA_FIELD) and measurements == [schema.C1_FURNACE]:
                        continue
                    missing.append(f"{measurements}: {i}")
    assert missing == [], "\n".join(missing)
    # The ingest's spool fields (not in ingest/README.md) are what a real Ingest writes.
    assert {"spool_pending", "spool_files"} <= keys["gf_ingest"]
