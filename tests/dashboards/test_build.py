"""The dashboards without a Grafana server (none installs here): the committed JSON is what the
code generates (`greenfoundry dashboards build --check`), it is valid for Grafana 11.6 (decoded
and encoded again by Grafana's own SDK for 11.6 without a key lost, and a strict structural
check written from the dashboard schema's documentation), every name a query reads is in the
documented schema, and the provisioning files are what Grafana's provisioning expects."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

from greenfoundry.cli import main
from greenfoundry.dashboards import build, park
from tests.dashboards import grafana
from tests.dashboards.documented import REPO, documented

PACKAGE = REPO / "dashboards"
MODELS = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in build.JSON_DIR.glob("*.json")}
# The park dashboards of the shipped park files (the demo park), by file name.
PARKS = {park.file_name(m): m for m in map(park.load_park, park.shipped_parks())}


def test_the_committed_json_is_what_the_code_generates():
    assert sorted(MODELS) == [
        "ehs.json",
        "energy.json",
        "ingest.json",
        "management.json",
        "park-demo-park.json",
    ]
    assert sorted(PARKS) == ["park-demo-park.json"]
    assert build.differences(build.JSON_DIR, None, build.DATASOURCES_DIR) == []
    assert main(["dashboards", "build", "--check"]) == 0  # the defaults: the package's folders


def test_check_fails_on_a_hand_edited_file_and_build_mends_it(tmp_path, capsys):
    out = tmp_path / "json"
    assert main(["dashboards", "build", "--out", str(out)]) == 0
    # With --out alone the park's data sources go beside the dashboards, not into the package.
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*MODELS, "park-demo-park-influxdb-1x.yaml", "park-demo-park-influxdb-2x-3x.yaml"]
    )
    assert main(["dashboards", "build", "--out", str(out), "--check"]) == 0
    capsys.readouterr()
    path = out / "ehs.json"
    path.write_text(path.read_text().replace('"now-2d"', '"now-3d"'), encoding="utf-8")
    (out / "extra.json").write_text("{}", encoding="utf-8")
    ds = out / "park-demo-park-influxdb-1x.yaml"
    ds.write_text(ds.read_text().replace("greenfoundry-park-south", "greenfoundry"))
    (out / "park-old-influxdb-1x.yaml").write_text("apiVersion: 1\n", encoding="utf-8")
    assert main(["dashboards", "build", "--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the dashboards differ") and err.count("\n") == 1
    assert "ehs.json: differs" in err and "extra.json: not generated" in err
    assert "park-demo-park-influxdb-1x.yaml: differs" in err
    assert "park-old-influxdb-1x.yaml: not generated" in err
    (out / "extra.json").unlink()
    (out / "park-old-influxdb-1x.yaml").unlink()
    assert main(["dashboards", "build", "--out", str(out)]) == 0
    assert main(["dashboards", "build", "--out", str(out), "--check"]) == 0


def _strip_annotations(model: dict) -> dict:
    # The InfluxQL annotation's target is written by build.py itself: the SDK models only the
    # built-in annotation target, so it is checked structurally below instead.
    return {**model, "annotations": {"list": []}}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_grafana_sdk_for_11_6_decodes_and_encodes_it_without_losing_a_key(name):
    model = _strip_annotations(MODELS[name])
    decoded = dm.Dashboard.from_json(model)
    again = json.loads(json.dumps(decoded, cls=JSONEncoder))
    assert again == model
    # Every target decodes as the InfluxQL target, the park's on the Mixed data source too
    # (decoded by its own data source's type, as build._mixed_target does): none is left as
    # the SDK's bag of unknown keys, which would check nothing.
    targets = [t for p in decoded.panels or [] if hasattr(p, "targets") for t in p.targets or []]
    assert targets and all(isinstance(t, build.InfluxQLQuery) for t in targets), name
    assert not any(isinstance(t, cogruntime.UnknownDataquery) for t in targets)


# Grafana 11.6's transformation ids used here, and the handler keys of "Config from query
# results" (public/app/features/transformers/fieldToConfigMapping: there is one threshold
# handler, `threshold1`, which appends a step per mapped column).
TRANSFORMATIONS = {"configFromData", "filterByValue", "extractFields", "organize", "merge"}
CONFIG_HANDLERS = {"field.name", "field.value", "field.label", "__ignore", "max", "min", "unit",
                   "decimals", "displayName", "color", "threshold1", "mappings.value",
                   "mappings.color", "mappings.text"}  # fmt: skip


def _targets(panel: dict) -> list[dict]:
    return panel.get("targets", [])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_dashboard_is_structurally_valid_for_grafana_11_6(name):
    model = MODELS[name]
    # A park's panels are on Grafana's Mixed data source, each target on its plant's own data
    # source (one per park plant, provisioned from the park file); a plant's all on its one.
    if name in PARKS:
        panel_ds = park.MIXED_DATASOURCE
        target_uids = {p.datasource_uid for p in PARKS[name].plants}
    else:
        panel_ds = {"type": "influxdb", "uid": build.DATASOURCE_UID}
        target_uids = {build.DATASOURCE_UID}
    assert model["schemaVersion"] == build.SCHEMA_VERSION == 41  # Grafana 11.6's
    assert re.fullmatch(r"gf-[a-z0-9_-]+", model["uid"]) and len(model["uid"]) <= 40
    ids = [p["id"] for p in model["panels"]]
    ids += [q["id"] for p in model["panels"] for q in p.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    refs_by_panel = []
    for p in model["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24, p["title"]
        assert g["h"] >= 1 and g["y"] >= 0
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & occupied, f"{p['title']} overlaps another panel"
        occupied |= cells
        if p["type"] == "row":
            assert "targets" not in p
            continue
        assert p["datasource"] == panel_ds
        assert _targets(p), f"{p['title']} has no query"
        refs = [t["refId"] for t in _targets(p)]
        assert len(refs) == len(set(refs)) and all(refs)
        refs_by_panel.append(refs)
        for t in _targets(p):
            assert t["datasource"]["type"] == "influxdb" and t["datasource"]["uid"] in target_uids
            assert set(t["datasource"]) == {"type", "uid"}
            assert t["rawQuery"] is True and t["query"].startswith("SELECT ")
            assert t["resultFormat"] in ("time_series", "table")
            assert "$timeFilter" in t["query"], "every query is bounded in time"
        for tr in p.get("transformations", []):
            assert tr["id"] in TRANSFORMATIONS, tr["id"]
            if tr["id"] == "configFromData":
                assert tr["options"]["configRefId"] in refs
                assert tr["options"]["applyTo"]["options"] in refs
                for m in tr["options"]["mappings"]:
                    assert m["handlerKey"] in CONFIG_HANDLERS, m
    assert refs_by_panel
    variables = {v["name"]: v for v in model["templating"]["list"]}
    plant = variables["plant"]
    if name in PARKS:
        # The park's plants, several at once: a custom variable of the park file's plants
        # (text the name, value the id), All among them; no value a viewer types in.
        assert list(variables) == ["plant"] and plant["type"] == "custom"
        assert plant["multi"] is True and plant["includeAll"] is True
        assert plant["allowCustomValue"] is False
        ids = [p.id for p in PARKS[name].plants]
        assert [o["value"] for o in plant["options"]] == ["$__all", *ids]
        assert plant["query"] == ", ".join(f"{p.name} : {p.id}" for p in PARKS[name].plants)
        assert plant["current"]["value"] == ["$__all"]
    else:
        assert plant["type"] == "query" and plant["datasource"]["uid"] == build.DATASOURCE_UID
        assert re.fullmatch(r'SHOW TAG VALUES FROM "gf_\w+" WITH KEY = "plant"', plant["query"])
        assert plant.get("multi") is not True  # one plant at a time: `'$plant'` in the queries
        for v in variables.values():
            assert v["type"] == "query" and v["query"].startswith("SHOW TAG VALUES FROM ")
    used = " ".join(t["query"] for p, _r in grafana.panels(model) for t in _targets(p))
    used += " ".join(r["title"] for r in model["panels"] if r["type"] == "row")
    for name_ in variables:
        assert f"${name_}" in used, f"variable {name_} is not used"
    for p in model["panels"]:
        if p.get("repeat"):
            assert p["repeat"] in variables and variables[p["repeat"]].get("multi")
    for a in model["annotations"]["list"]:
        assert a["datasource"]["uid"] == build.DATASOURCE_UID and a["enable"] is True
        t = a["target"]
        assert t["rawQuery"] and "$timeFilter" in t["query"] and t["textColumn"]


def _queries(model: dict) -> list[str]:
    qs = [t["query"] for p, _r in grafana.panels(model) for t in _targets(p)]
    qs += [v["query"] for v in model["templating"]["list"] if v["type"] == "query"]
    qs += [a["target"]["query"] for a in model["annotations"]["list"]]
    return qs


def unknown_names(queries: list[str], schema: dict) -> list[str]:
    """Every measurement, tag or field a query names that the documented schema lacks."""
    bad = []
    for q in queries:
        measurements, idents = grafana.names(q)
        for m in measurements:
            if m not in schema:
                bad.append(f"measurement {m}")
                continue
        known = set().union(*(schema[m][0] | schema[m][1] for m in measurements if m in schema))
        bad += [f"{','.join(measurements)}: {i}" for i in idents if i not in known]
    return bad


# Written by the ingest's self-metrics (`Ingest._maybe_emit_metrics`) besides the counters and
# not listed in ingest/README.md: test_queries checks them against a real Ingest's points.
INGEST_EXTRA = {"spool_pending", "spool_files"}


def test_every_name_a_query_reads_is_in_the_documented_schema():
    schema = documented()
    schema["gf_ingest"][1].update(INGEST_EXTRA)
    queries = [q for model in MODELS.values() for q in _queries(model)]
    assert len(queries) > 25
    assert unknown_names(queries, schema) == []


def test_a_renamed_rollup_field_or_measurement_is_found():
    # The check itself can fail: the schema with kwh_per_t renamed, and gf_air_stack gone.
    schema = documented()
    tags, fields = schema["gf_c1_furnace"]
    schema["gf_c1_furnace"] = (tags, (fields - {"kwh_per_t"}) | {"kwh_per_tonne"})
    del schema["gf_air_stack"]
    queries = [q for model in MODELS.values() for q in _queries(model)]
    bad = unknown_names(queries, schema)
    assert "gf_c1_furnace: kwh_per_t" in bad and "measurement gf_air_stack" in bad


def test_names_parses_what_a_query_reads():
    m, idents = grafana.names(
        'SELECT last("a") AS "x", "b" FROM "m1", "m2" WHERE "plant" = \'$plant\' AND $timeFilter '
        'GROUP BY time($__interval), "t" fill(none)'
    )
    assert m == ["m1", "m2"] and idents == ["a", "b", "plant", "t"]


def test_substitution_and_interval_as_grafana_does():
    # $__interval: 30 days over 1000 points is 2592000 ms, below roundInterval's 2700000 ms
    # step, so 1800000 ms, "30m"; 60 s over 1000 points is 60 ms, below 75 ms: 50 ms.
    assert grafana.interval_ms(30 * 86_400_000) == 1_800_000
    assert grafana.interval_text(1_800_000) == "30m"
    assert grafana.interval_ms(60_000) == 50 and grafana.interval_text(50) == "50ms"
    q = grafana.substitute(
        'SELECT x FROM m WHERE "plant" = \'$plant\' AND "f" =~ /^$furnace$/ AND $timeFilter '
        "GROUP BY time($__interval)",
        {"plant": ["p-1"], "furnace": ["if1", "if.2"]},
        {"furnace"},
        start_ms=1000,
        end_ms=2000,
        interval=60_000,
    )
    assert q == (
        'SELECT x FROM m WHERE "plant" = \'p-1\' AND "f" =~ /^(if1|if\\.2)$/ AND '
        "time >= 1000ms and time <= 2000ms GROUP BY time(1m)"
    )


# ---------------------------------------------------------------------- provisioning

DATASOURCES = PACKAGE / "provisioning" / "datasources"
ENV_REF = re.compile(r"^\$\{[A-Z][A-Z0-9_]*\}$")


def _datasources(name: str) -> list[dict]:
    doc = yaml.safe_load((DATASOURCES / name).read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1 and set(doc) == {"apiVersion", "datasources"}
    return doc["datasources"]


def _datasource(name: str) -> dict:
    (ds,) = _datasources(name)
    return ds


def check_influxql(ds: dict, env: str, variant: str) -> None:
    """One data source of one InfluxDB variant: InfluxQL, proxied, its address and secrets
    only from Grafana's environment (``env`` the variables' prefix)."""
    assert ds["type"] == "influxdb" and ds["access"] == "proxy"
    assert ds["jsonData"]["version"] == "InfluxQL" and ds["url"] == f"${{{env}URL}}"
    if variant == "1x":
        # The reader's user and password, the password a secure field from the environment.
        assert ds["user"] == f"${{{env}READER_USER}}" and set(ds["secureJsonData"]) == {"password"}
        assert ds["secureJsonData"]["password"] == f"${{{env}READER_PASSWORD}}"
    else:
        # No user; the token in the Authorization header.
        assert "user" not in ds and "password" not in ds
        assert ds["jsonData"]["httpHeaderName1"] == "Authorization"
        assert ds["secureJsonData"] == {"httpHeaderValue1": f"Token ${{{env}READER_TOKEN}}"}


def test_the_plants_data_source_variants_are_influxql_with_the_dashboards_uid_and_env_secrets():
    assert sorted(p.name for p in DATASOURCES.glob("*.yaml")) == [
        "influxdb-1x.yaml",
        "influxdb-2x-3x.yaml",
        "park-demo-park-influxdb-1x.yaml",
        "park-demo-park-influxdb-2x-3x.yaml",
    ]
    for variant in ("1x", "2x-3x"):
        ds = _datasource(f"influxdb-{variant}.yaml")
        assert ds["uid"] == build.DATASOURCE_UID and ds["isDefault"] is True
        assert ENV_REF.match(ds["jsonData"]["dbName"])  # the plant's database, from the env
        check_influxql(ds, "GF_INFLUX_", variant)


# The demo park's plants and their databases, read here from the plant configs' own text
# (config/plants/park-*/plant.yaml, influxdb.database), not from the generator.
DEMO_DATABASES = {
    pid: yaml.safe_load((REPO / f"config/plants/{pid}/plant.yaml").read_text())["influxdb"][
        "database"
    ]
    for pid in ("park-north", "park-south")
}


def test_the_park_data_sources_are_one_per_plant_on_its_database_with_the_parks_reader():
    assert DEMO_DATABASES == {
        "park-north": "greenfoundry-park-north",
        "park-south": "greenfoundry-park-south",
    }
    model = MODELS["park-demo-park.json"]
    referenced = {t["datasource"]["uid"] for p, _r in grafana.panels(model) for t in _targets(p)}
    for variant in ("1x", "2x-3x"):
        sources = _datasources(f"park-demo-park-influxdb-{variant}.yaml")
        # One per plant, in the park file's order; the uid gf-park-<park>-<plant> (both under
        # Grafana's 40 characters here), the plant's own database written out: it is no
        # secret, and on 3.x the database of the request is the only one a query reads.
        assert [(ds["uid"], ds["jsonData"]["dbName"]) for ds in sources] == [
            ("gf-park-demo-park-park-north", "greenfoundry-park-north"),
            ("gf-park-demo-park-park-south", "greenfoundry-park-south"),
        ]
        names = [ds["name"] for ds in sources]
        assert len(set(names)) == len(names)  # Grafana keys a provisioned data source by name
        for ds in sources:
            check_influxql(ds, "GF_PARK_INFLUX_", variant)
            # A Grafana holding a plant's data source too keeps the plant's as its default.
            assert ds["isDefault"] is False and ds["editable"] is False
        # Every data source is referenced by the dashboard, every uid it references provisioned.
        assert {ds["uid"] for ds in sources} == referenced


def test_a_park_plants_data_source_uid_fits_grafanas_40_characters_and_stays_distinct():
    assert park.datasource_uid("demo-park", "park-north") == "gf-park-demo-park-park-north"
    # 40 characters exactly keep their text; 41 are cut to 31 and 8 hex digits of a digest.
    assert park.datasource_uid("p" * 15, "q" * 16) == "gf-park-" + "p" * 15 + "-" + "q" * 16
    long_a, long_b = (park.datasource_uid("a-long-park-id", f"a-long-plant-id-{i}") for i in "12")
    for uid in (long_a, long_b):
        assert len(uid) == 40 and re.fullmatch(r"[a-z0-9_-]+", uid)
        assert uid.startswith("gf-park-a-long-park-id-a-long-p")
    assert long_a != long_b  # the same first 31 characters, different plants
    assert park.datasource_uid("x" * 63, "y" * 63) == park.datasource_uid("x" * 63, "y" * 63)


def test_two_long_park_ids_give_two_dashboard_uids():
    # A park id may be 63 characters: "gf-park-" + the id is cut to 40 as a data source's uid is
    # (31 characters and 8 hex digits of a digest), so two ids with the same first 32 characters
    # still make two dashboards; a short id keeps its uid (the demo park's: gf-park-demo-park).
    assert park.dashboard_uid("demo-park") == "gf-park-demo-park"
    a, b = (park.dashboard_uid("the-northern-industrial-park-of-x-" + c) for c in "ab")
    assert (
        a != b and len(a) == len(b) == 40 and a[:31] == b[:31] == "gf-park-the-northern-industrial"
    )
    assert park.dashboard_uid("p" * 32) == "gf-park-" + "p" * 32  # 40 exactly: kept whole


def test_no_literal_secret_in_the_provisioning_files():
    for path in (PACKAGE / "provisioning").rglob("*.yaml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for ds in doc.get("datasources", []):
            for k, v in ds.get("secureJsonData", {}).items():
                assert "${" in v, f"{path.name}: secureJsonData.{k} is not from the environment"
            assert "password" not in ds and "basicAuthPassword" not in ds


def test_the_dashboard_provider_reads_the_generated_folder(tmp_path):
    doc = yaml.safe_load((PACKAGE / "provisioning/dashboards/greenfoundry.yaml").read_text())
    (p,) = doc["providers"]
    assert doc["apiVersion"] == 1 and p["type"] == "file" and p["allowUiUpdates"] is False
    # The folder it reads, laid out as the README says (json/ mounted at options.path), holds
    # exactly the generated dashboards.
    mounted = tmp_path / p["options"]["path"].lstrip("/")
    shutil.copytree(build.JSON_DIR, mounted)
    assert build.differences(Path(mounted), None, build.DATASOURCES_DIR) == []
