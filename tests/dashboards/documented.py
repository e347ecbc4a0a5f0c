"""The documented InfluxDB schema, read from where it is documented and from the constants of
the packages that write it (nothing copied here), and each value's unit.

* rollups: measurement names from ``metrics.schema``, tags from ``schema.TAGS`` and the tag
  cell of the measurement's row in metrics/README.md ("Schema"), fields from that row's
  backticked names, the fields every point has (the sentence "Every point has …") and the
  tier limits ``schema.c1_fields`` names (``limit_tier{1,2,3}_<schema.UNIT_FIELD>``);
* the rolling grade: grade/README.md's table ("Stored in InfluxDB"), names from
  ``grade.rolling``;
* the snapshot: docs/snapshot-json-schema.md, section "InfluxDB: `gf_snapshot`";
* alert transitions: ``grade.snapshot.ALERT_FIELDS`` (the alerts engine's transition schema),
  tags plant, rule, target (session preamble; ``alerts.engine.transition_line``);
* dead letters, readings and self-metrics: ingest/README.md ("Storage"), the signals of the
  glossary, and the counters of ``ingest.service.Counters``.
"""

from __future__ import annotations

import re
from pathlib import Path

from greenfoundry import glossary
from greenfoundry.alerts import engine as alerts_engine
from greenfoundry.grade import rolling, snapshot
from greenfoundry.ingest import deadletter
from greenfoundry.ingest import service as ingest_service
from greenfoundry.metrics import schema

REPO = Path(__file__).resolve().parents[2]
TICKED = re.compile(r"`([^`]+)`")


def _table_rows(path: Path) -> dict[str, list[str]]:
    """{measurement: its cells} of every table row whose first cell is a backticked gf_ name."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and re.fullmatch(r"`gf_\w+`", cells[0]):
            out[cells[0].strip("`")] = cells[1:]
    return out


def _idents(text: str) -> set[str]:
    return {t for t in TICKED.findall(text) if re.fullmatch(r"[a-z_][a-z0-9_]*", t)}


def documented() -> dict[str, tuple[set[str], set[str]]]:
    """{measurement: (tags, fields)} as documented."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    readme = (REPO / "metrics" / "README.md").read_text(encoding="utf-8")
    every = re.search(r"Every point has (.*?)\.\n", readme, re.S)
    common = _idents(every.group(1))
    limits = {f"limit_tier{k}_{u}" for u in schema.UNIT_FIELD.values() for k in (1, 2, 3)}
    rows = _table_rows(REPO / "metrics" / "README.md")
    above: set[str] = set()
    for m in (m for m in rows if m in schema.MEASUREMENTS):  # the table's order
        tags_cell, fields_cell = rows[m][0], rows[m][1]
        tags = {t.strip() for t in tags_cell.split(",")} & set(schema.TAGS)
        fields = _idents(fields_cell) | common | (limits if m.startswith("gf_c1") else set())
        # "as above for the plant": the row above's fields, and the row's own.
        if fields_cell.startswith("as above"):
            fields |= above
        out[m] = (tags, fields)
        above = fields
    assert set(schema.MEASUREMENTS) <= set(out), set(schema.MEASUREMENTS) - set(out)
    rows = _table_rows(REPO / "grade" / "README.md")
    for m in rolling.MEASUREMENTS:
        out[m] = (_idents(rows[m][0]), _idents(rows[m][1]) | {rolling.WRITTEN})
    doc = (REPO / "docs" / "snapshot-json-schema.md").read_text(encoding="utf-8")
    section = doc.split(f"## InfluxDB: `{snapshot.MEASUREMENT}`", 1)[1].split("\n## ", 1)[0]
    fields = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            fields |= _idents(line.split("|")[1])
    out[snapshot.MEASUREMENT] = (_idents(section.split("Fields", 1)[0]), fields)
    alert_tags = {"plant", "rule", "target"}
    out[alerts_engine.MEASUREMENT] = (alert_tags, set(snapshot.ALERT_FIELDS) - alert_tags)
    storage = (REPO / "ingest" / "README.md").read_text(encoding="utf-8")
    storage = storage.split("## Storage", 1)[1].split("\n## ", 1)[0]
    bullet = re.search(r"dead letters \(`gf_deadletter`\): tags (.*?);(.*?)\n- ", storage, re.S)
    out[deadletter.MEASUREMENT] = (_idents(bullet.group(1)), _idents(bullet.group(2)))
    tags_line = re.search(r"- tags: (.*)\n", storage).group(1)
    for name in glossary.SIGNALS:
        out[name] = (_idents(tags_line), {"value"})
    counters = set(ingest_service.Counters().snapshot())
    bullet = re.search(r"self-metrics \(`gf_ingest`\): tags (.*?);", storage).group(1)
    out[ingest_service.SELF_MEASUREMENT] = (_idents(bullet), counters)
    return out


# The unit of a value, in the words of the schema: the unit in a rollup field's name
# (schema.UNIT_FIELD), a plant indicator's (schema.PLANT_INDICATORS), the multiple of C of the
# alerts' stack kind, a signal's canonical unit (glossary), the coverage's 0..1 (metrics
# README), F and points out of the standard's 1000 (clause 6.1), days (the name says it).
UNIT_OF_FIELD = {f: u for u, f in schema.UNIT_FIELD.items()}


def schema_unit(measurement: str, field: str, expression: str) -> str | None:
    """The unit of the column ``field`` a query computes as ``expression`` from
    ``measurement``; None for a value whose unit differs by series or row."""
    if expression.startswith("non_negative_derivative"):
        return "readings/s"  # counters of readings, per second
    if expression.startswith(("count(", "non_negative_difference")):
        return "count"
    for unit_field, unit in UNIT_OF_FIELD.items():
        if field == unit_field or re.fullmatch(rf"limit_tier\d_{unit_field}", field):
            return unit
    if measurement in (schema.AIR_STACK, schema.AIR_PLANT) and field == "multiple_of_c":
        return alerts_engine.UNITS["stack"]
    if field == "coverage":
        return "0..1"
    if measurement in (schema.T5_PLANT, schema.A1_PLANT, schema.CO2_PLANT):
        units = {f: u for (m, f, u, _r) in schema.PLANT_INDICATORS.values() if m == measurement}
        return units[field]
    if field == "tap_temp_c":
        return glossary.SIGNALS["tap_temp_c"].unit
    if field == "iron_t":
        return glossary.SIGNALS["tap_iron_t"].unit  # the sum of the taps' tonnes
    if field in ("f", "points", "max_points"):
        return "points"
    if field == "level":
        return "level"
    if field == "tier":
        return "tier"  # Table C.1's tier 1, 2, 3 (no unit; the park tables map it to text)
    if field.endswith("_days"):
        return "d"
    if field.startswith("spool_"):
        return "count"
    if measurement == alerts_engine.MEASUREMENT or field == "value":
        return None  # an alert's value is in its row's `unit`; a reading in its signal's
    raise AssertionError(f"no unit known for {measurement}.{field}")


# Grafana's unit ids for the schema's units (Grafana's unit list: celsius, masst, percentunit,
# percent (0–100), short, d, none; "suffix: …" is its custom unit).
GRAFANA = {
    "kWh/t": "suffix: kWh/t",
    "kgce/t": "suffix: kgce/t",
    "C": "suffix: × C",
    "degC": "celsius",
    "t": "masst",
    "0..1": "percentunit",
    "points": "suffix: points",
    "level": "none",
    "d": "d",
    "count": "short",
    "readings/s": "suffix: readings/s",
    "%": "percent",
    "tier": "none",
    None: None,
}


def panel_unit(panel: dict, column: str) -> str | None:
    """The unit Grafana shows for a column: the first override matching its name, else the
    panel's default."""
    fc = panel.get("fieldConfig", {})
    for o in fc.get("overrides", []):
        m = o["matcher"]
        hit = (m["id"] == "byRegexp" and re.fullmatch(m["options"], column)) or (
            m["id"] == "byName" and m["options"] == column
        )
        if hit:
            for prop in o["properties"]:
                if prop["id"] == "unit":
                    return prop["value"]
    return fc.get("defaults", {}).get("unit")
