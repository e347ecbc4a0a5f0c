"""The park dashboard: the plants of an industrial park side by side, for the park's energy
office (dashboards/README.md, "The park dashboard"), and the Grafana data sources it reads.

How it reads across the plants' databases while each plant's own people still read only their
plant (README.md, "Least privilege": a database per plant, each with its own read user). The
park has a reader of its own, READ on each park plant's database and nothing else
(``LocalStack.add_park_reader``; in a deployment the same two InfluxQL statements; on 2.x/3.x a
token that reads the park's buckets or databases). Grafana gets one data source per park plant
(``datasource_uid``: ``gf-park-<park>-<plant>``), each with that plant's database as its
database (the plant config's ``influxdb.database``) and the park reader's credentials, written
by ``datasource_files`` from the park file, so a plant's Grafana never holds the park's
credential. Every target of a plant is on its plant's data source and names its measurement
plainly, ``"gf_…"``: it is read from the request's database, which is how InfluxDB 1.x, 2.x
(through the DBRP mapping of the plant's bucket) and 3.x (whose InfluxQL reads every FROM name
from the request's database, whatever database is written before it) all resolve it, so the
layout is the same on the three. A panel holds one target per plant, so it is on Grafana's
``-- Mixed --`` data source (``MIXED_DATASOURCE``), and each target carries its own.

The plant variable is a multi-value custom variable of the park's plants (text: the plant's
name, value: its id); each target also has ``"plant" = '<its plant>'`` beside
``"plant" =~ /^$plant$/``, so a plant not chosen answers nothing (its target still goes to its
data source, and finds no row), and a park whose plants share one database (a park without
read isolation) still shows each plant once.

The park file is the source: which plants, their names, their databases, and the furnace kinds
they have (a Table C.1 row is drawn for a kind only with targets of the plants that have it:
kWh/t for induction furnaces, kgce/t for cupolas, never on one axis).

Anonymisation is not offered here (the park report's ``--anonymise`` is the anonymous
comparison): Grafana sends each target's query to the browser, and a viewer's query inspector
shows the plant ids in it, the data sources' names and the ``plant`` tag values in the
answers, so a variable that showed "Plant A" instead of the name would hide nothing from
anyone who looks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from greenfoundry.dashboards.build import (
    GRAFANA_UNITS,
    TABLE6_BANDS,
    InfluxQL,
    Q,
    _dashboard,
    _Layout,
    _steps,
    _window,
    table9_grades,
    table9_lines,
)
from greenfoundry.errors import ConfigError
from greenfoundry.grade import rolling
from greenfoundry.metrics import schema
from greenfoundry.park.config import _letters
from greenfoundry.store import quote_string

# Grafana's data source of a panel whose targets each name their own (Grafana's built-in
# "-- Mixed --" data source, as a dashboard saved by Grafana 11.6 references it).
MIXED_DATASOURCE = {"type": "datasource", "uid": "-- Mixed --"}
UID_MAX = 40  # Grafana's longest uid (util.MaxUIDLength), of a data source as of a dashboard
TIME = "$timeFilter"
# Table C.1's units by furnace kind (T/CFA 0308011.5-2024, Table C.1: cupola rows in kgce/t,
# induction rows in kWh/t as notes 2 and 4 read them; scoring/README.md).
KIND_UNIT = {"induction": "kWh/t", "cupola": "kgce/t"}
KIND_TITLE = {"induction": "induction furnaces", "cupola": "cupolas"}
C1_TIERS = (1, 2, 3)
TIER_COLORS = {1: "green", 2: "yellow", 3: "orange"}
# The water-reuse rows of Table 5 the metrics fill (schema.PLANT_INDICATORS, row energy.water.*).
WATER_INDICATORS = tuple(
    name
    for name, (_m, _f, _u, row) in schema.PLANT_INDICATORS.items()
    if row and row.startswith("energy.water.")
)
GRAFANA_UNITS_PARK = {**GRAFANA_UNITS, "%": "percent", "tier": "none"}


@dataclass(frozen=True)
class ParkPlant:
    """What the dashboard needs of one plant of the park, from its plant config."""

    id: str
    name: str
    database: str
    furnace_kinds: frozenset[str]
    datasource_uid: str  # its Grafana data source in the park's Grafana (``datasource_uid``)

    @property
    def datasource(self) -> dict[str, str]:
        return {"type": "influxdb", "uid": self.datasource_uid}


@dataclass(frozen=True)
class ParkModel:
    id: str
    name: str
    plants: tuple[ParkPlant, ...]


def datasource_uid(park_id: str, plant_id: str) -> str:
    """The uid of a park plant's data source: ``gf-park-<park>-<plant>``, a function of the two
    ids alone so that a rebuild keeps it. Ids may be 63 characters each, Grafana's uid at most
    40: a longer one keeps its first 31 characters and adds 8 hex digits of the SHA-256 of the
    whole, so two plants whose uids share their first 31 characters still differ."""
    return _fitted_uid(f"gf-park-{park_id}-{plant_id}")


def _fitted_uid(whole: str) -> str:
    """``whole`` when it fits Grafana's 40 characters, else its first 31 and 8 hex digits of
    its SHA-256, so that two uids cut to the same first characters still differ."""
    if len(whole) <= UID_MAX:
        return whole
    digest = hashlib.sha256(whole.encode("utf-8")).hexdigest()[:8]
    return f"{whole[: UID_MAX - 9]}-{digest}"


def load_park(path: str | os.PathLike) -> ParkModel:
    """The park file and its plants' configs, without resolving a secret (the dashboard needs
    neither the park's anonymisation key nor a plant's credentials)."""
    from greenfoundry import plant
    from greenfoundry.park import config

    park = config.load(path, env=plant.ScopedEnv({}, ()))
    plants = []
    for f in park.plant_files:
        cfg = plant.load(f, resolve_secrets=False)
        plants.append(
            ParkPlant(
                id=cfg.plant.id,
                name=cfg.plant.name,
                database=cfg.influxdb.database,
                furnace_kinds=frozenset(fu.kind for fu in cfg.furnaces),
                datasource_uid=datasource_uid(park.id, cfg.plant.id),
            )
        )
    uids = [p.datasource_uid for p in plants]
    # Two plants' cut uids with the same digest would make one data source serve both.
    if len(set(uids)) != len(uids):
        raise ConfigError(f"{path}: plants: two plants would have one data source uid ({uids})")
    return ParkModel(park.id, park.name, tuple(plants))


def file_name(park: ParkModel) -> str:
    return f"park-{park.id}.json"


def source(measurement: str) -> str:
    """The measurement, plainly: read from the database of the target's data source, the
    plant's own (module docstring)."""
    return Q(measurement)


def _where(p: ParkPlant, *conditions: str) -> str:
    parts = [f"{Q('plant')} = {quote_string(p.id)}", f"{Q('plant')} =~ /^$plant$/", *conditions]
    return "WHERE " + " AND ".join([*parts, TIME])


def _target(i: int, p: ParkPlant, query: str, fmt: str = "time_series", alias: str | None = None):
    """The panel's target of its i-th plant, on that plant's data source: refId A, B, … Z, AA
    in the park file's order."""
    return InfluxQL(_letters(i), query, fmt, datasource=p.datasource, alias=alias)


def _ds() -> dm.DataSourceRef:
    return dm.DataSourceRef(type_val=MIXED_DATASOURCE["type"], uid=MIXED_DATASOURCE["uid"])


def _merge(panel):
    """One table of every plant's row: each target answers one frame, "merge" joins them."""
    return panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))


def _tier_column(panel):
    """Table C.1's tier as text on its colour (green tier 1, yellow 2, orange 3); no tier
    (above the third limit, or no value) is left blank rather than coloured as one."""
    mappings = [
        dm.ValueMap(
            options={
                str(t): dm.ValueMappingResult(text=f"tier {t}", color=TIER_COLORS[t], index=t - 1)
                for t in C1_TIERS
            }
        )
    ]
    return panel.with_override(
        dm.MatcherConfig(id_val="byName", options="tier"),
        [
            dm.DynamicConfigValue(id_val="unit", value=GRAFANA_UNITS_PARK["tier"]),
            dm.DynamicConfigValue(id_val="mappings", value=mappings),
            dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ],
    )


def _c1_table(plants, kind: str, window: str, title: str):
    unit = KIND_UNIT[kind]
    value = schema.UNIT_FIELD[unit]
    cols = [value, *(f"limit_tier{t}_{value}" for t in C1_TIERS), "tier", "status"]
    # The newest window's point whole (not last() of each field, which would take a value
    # from an older window when the newest has none, beside the newest one's status).
    select = ", ".join(Q(c) for c in cols)
    p = (
        table.Panel()
        .title(title)
        .description(
            f"Each plant's Table C.1 value of its newest {window} window in the time range "
            f"({unit}, gf_c1_plant: Σ energy / Σ tonnes of its furnaces, decision D-c1-plant) "
            "beside its own limits, corrected by notes 1–4 of T/CFA 0308011.5-2024 for its "
            "tapping temperatures and site, the tier they give and the window's status."
        )
        .datasource(_ds())
        .unit(GRAFANA_UNITS_PARK[unit])
    )
    for i, pl in enumerate(plants):
        p.with_target(
            _target(
                i,
                pl,
                f"SELECT {select} FROM {source(schema.C1_PLANT)} "
                f"{_where(pl, _window(window))} GROUP BY {Q('plant')} ORDER BY time DESC LIMIT 1",
                "table",
            )
        )
    return _tier_column(_merge(p))


def _c1_by_month(plants, kind: str):
    unit = KIND_UNIT[kind]
    value = schema.UNIT_FIELD[unit]
    cols = ", ".join(Q(c) for c in (value, *(f"limit_tier{t}_{value}" for t in C1_TIERS)))
    p = (
        timeseries.Panel()
        .title(f"{unit} of liquid iron by month, each plant with its corrected tier limits")
        .description(
            "gf_c1_plant, window month: the value as points, the plant's tier 1, 2 and 3 "
            "limits (Table C.1, notes 1–4) as dashed lines of its colour."
        )
        .datasource(_ds())
        .unit(GRAFANA_UNITS_PARK[unit])
        .show_points(common.VisibilityMode.ALWAYS)
    )
    for i, pl in enumerate(plants):
        p.with_target(
            _target(
                i,
                pl,
                f"SELECT {cols} FROM {source(schema.C1_PLANT)} {_where(pl, _window('month'))}",
                alias=f"{pl.name}: $col",
            )
        )
    return p.with_override(
        dm.MatcherConfig(id_val="byRegexp", options=".*limit_tier.*"),
        [
            dm.DynamicConfigValue(
                id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
            ),
            dm.DynamicConfigValue(id_val="custom.showPoints", value="never"),
        ],
    )


def _monthly(plants, title: str, description: str, measurement: str, field_: str, unit: str,
             *conditions: str, group_by: str | None = None, alias: str = "$col"):  # fmt: skip
    p = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(_ds())
        .unit(GRAFANA_UNITS_PARK[unit])
        .draw_style(common.GraphDrawStyle.BARS)
    )
    group = f" GROUP BY {group_by}" if group_by else ""
    for i, pl in enumerate(plants):
        p.with_target(
            _target(
                i,
                pl,
                f"SELECT {Q(field_)} FROM {source(measurement)} "
                f"{_where(pl, *conditions, _window('month'))}{group}",
                alias=f"{pl.name}: {alias}",
            )
        )
    return p


def park_dashboard(park: ParkModel) -> gd.Dashboard:
    plants = park.plants
    lay = _Layout()
    for kind in KIND_UNIT:
        having = [p for p in plants if kind in p.furnace_kinds]
        if not having:
            continue  # no plant of the park has this kind: no row that could only be empty
        lay.row(f"Table C.1 — {KIND_TITLE[kind]}: {KIND_UNIT[kind]} of liquid iron")
        unit = KIND_UNIT[kind]
        for window, title in (("month", "The month"), ("day", "The running day")):
            lay.add(
                _c1_table(having, kind, window, f"{title}: {unit} against each plant's limits"),
                12,
                7,
            )
        lay.add(_c1_by_month(having, kind), 24, 8)

    lay.row("Table 5 and Table 6, by month")
    ind = "energy_per_t_pipe"
    measurement, fld, unit, _row = schema.PLANT_INDICATORS[ind]
    lay.add(
        _monthly(
            plants,
            "Plant energy per tonne of good pipe by month (Table 5)",
            "gf_t5_plant, indicator energy_per_t_pipe, window month: kgce/t of each plant.",
            measurement,
            fld,
            unit,
            f"{Q('indicator')} = {quote_string(ind)}",
        ),
        12,
        8,
    )
    air = _monthly(
        plants,
        "Worst multiple of C by month (Table 6)",
        "gf_air_plant, window month: each plant's worst stack and pollutant (field worst), its "
        "highest valid hourly mean over the limit C under the default rule "
        "(metrics.table6_rule: strict; with mean, the mean of the valid hours), against "
        "Table 6's bands at 0.6, 0.8 and 1.0 C.",
        schema.AIR_PLANT,
        "multiple_of_c",
        "C",
    )
    air.min(0).thresholds(
        _steps((None, "green"), *zip(TABLE6_BANDS, ("yellow", "orange", "red"), strict=True))
    ).thresholds_style(
        cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE_AND_AREA)
    )
    lay.add(air, 12, 8)
    indicators = "|".join(WATER_INDICATORS)
    water = _monthly(
        plants,
        "Water reuse by month (Table 5)",
        "gf_t5_plant, window month, field rate_pct of the water rows: "
        + ", ".join(WATER_INDICATORS)
        + " (a plant without a row's meters has none).",
        schema.T5_PLANT,
        "rate_pct",
        "%",
        f"{Q('indicator')} =~ /^({indicators})$/",
        group_by=Q("indicator"),
        alias="$tag_indicator",
    )
    lay.add(water.min(0).max(100), 24, 8)

    lay.row("The rolling grade")
    grades = table9_grades()
    f_panel = (
        timeseries.Panel()
        .title("Rolling F of each plant (the grade of each day)")
        .description(
            "gf_grade: F of each plant-local day over the latest complete trailing 12 months "
            "and the declared evidence (T/CFA 0308011.5-2024 clause 6.1); the dashed lines "
            "are Table 9's levels: "
            + ", ".join(f"level {g.level} from {g.min_f:g}" for g in grades)
            + "."
        )
        .datasource(_ds())
        .unit(GRAFANA_UNITS_PARK["points"])
    )
    table9_lines(f_panel, grades)
    level = (
        timeseries.Panel()
        .title("Level of Table 9 (1 is the highest; no value: not rated)")
        .datasource(_ds())
        .unit(GRAFANA_UNITS_PARK["level"])
        .line_interpolation(common.LineInterpolation.STEP_AFTER)
        .decimals(0)
    )
    for i, pl in enumerate(plants):
        for panel, fld_ in ((f_panel, "f"), (level, "level")):
            panel.with_target(
                _target(
                    i,
                    pl,
                    f"SELECT {Q(fld_)} FROM {source(rolling.GRADE)} {_where(pl)}",
                    alias=f"{pl.name}: $col",
                )
            )
    lay.add(f_panel, 16, 8)
    lay.add(level, 8, 8)
    return _dashboard(
        _uid(park),
        f"greenfoundry — park: {park.name}",
        "The plants of the park side by side: Table C.1 per furnace kind against each plant's "
        "corrected limits, energy per tonne of pipe, the worst multiple of C, water reuse, the "
        "rolling F and level (T/CFA 0308011.5-2024).",
        "now-1y",
        lay,
        [_plant_variable(plants)],
    )


def dashboard_uid(park_id: str) -> str:
    """The park dashboard's uid, ``gf-park-<park>``, cut as a data source's is
    (``_fitted_uid``): park ids may be 63 characters, and two long ids with the same first 32
    would otherwise give one uid, so that Grafana's provider loads one park's dashboard over
    the other's."""
    return _fitted_uid(f"gf-park-{park_id}")


def _uid(park: ParkModel) -> str:
    return dashboard_uid(park.id)


def _custom_text(text: str) -> str:
    # Grafana splits a custom variable's query at unescaped commas, a pair at " : ".
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(" : ", " - ")


def _plant_variable(plants):
    options = [dm.VariableOption(selected=False, text=p.name, value=p.id) for p in plants]
    return (
        gd.CustomVariable("plant")
        .label("Plant")
        .description("The plants of the park (the park file); several or all at once.")
        .values(", ".join(f"{_custom_text(p.name)} : {p.id}" for p in plants))
        .multi(True)
        .include_all(True)
        .allow_custom_value(False)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .options([dm.VariableOption(selected=True, text="All", value="$__all"), *options])
    )


# ----------------------------------------------------------------- the data sources

# The park's data sources, one file per InfluxDB variant, made from the park file: Grafana
# provisions one of the two (both give each plant's data source the same uid). The reader's
# credential is the same for every plant of the park, taken from Grafana's environment; no
# secret is ever written in a file.
ENV_URL = "GF_PARK_INFLUX_URL"
ENV_USER = "GF_PARK_INFLUX_READER_USER"
ENV_PASSWORD = "GF_PARK_INFLUX_READER_PASSWORD"
ENV_TOKEN = "GF_PARK_INFLUX_READER_TOKEN"
VARIANTS = ("1x", "2x-3x")

_HEADER = {
    "1x": """\
# Grafana data source provisioning of the park dashboard {dashboard} (dashboards/park.py),
# InfluxDB 1.x: one data source per plant of park {park}, each on its plant's own database,
# all as the park's reader (READ on each park plant's database and on nothing else:
# LocalStack.add_park_reader, or CREATE USER and GRANT READ per plant, dashboards/README.md).
# Generated from the park file by `greenfoundry dashboards build`; do not edit.
# Provision this file OR {other} in the park's Grafana.
# Grafana replaces ${{VAR}} from its environment here, never in dashboard JSON; no secret is
# written in this file.
#   {url}              http://influxdb:8086
#   {user}      gf-park-reader-{park}
#   {password}  its password
""",
    "2x-3x": """\
# Grafana data source provisioning of the park dashboard {dashboard} (dashboards/park.py),
# InfluxDB 2.x or 3.x through InfluxQL (their v1-compatible /query): one data source per plant
# of park {park}, each on its plant's own database (2.x: the database its bucket is mapped to,
# a bucket's own name since 2.4; 3.x: the database itself), all with the park's read token
# (read on the park plants' buckets or databases and nothing else, dashboards/README.md).
# Generated from the park file by `greenfoundry dashboards build`; do not edit.
# Provision this file OR {other} in the park's Grafana.
# Grafana replaces ${{VAR}} from its environment here, never in dashboard JSON; no secret is
# written in this file.
#   {url}           http://influxdb:8086 (2.x) or :8181 (3.x)
#   {token}  the park's read token
""",
}


def datasource_file_name(park: ParkModel, variant: str) -> str:
    return f"park-{park.id}-influxdb-{variant}.yaml"


def datasources(park: ParkModel, variant: str) -> list[dict]:
    """The provisioning entries of the park's data sources for one InfluxDB variant."""
    out = []
    for p in park.plants:
        ds: dict = {
            "name": f"greenfoundry park {park.id}: {p.id}",
            "uid": p.datasource_uid,
            "type": "influxdb",
            "access": "proxy",
            "url": f"${{{ENV_URL}}}",
        }
        if variant == "1x":
            ds["user"] = f"${{{ENV_USER}}}"
        # A Grafana that holds a plant's data source too keeps the plant's as its default.
        ds.update({"isDefault": False, "editable": False})
        # Grafana expands $VAR in every value of the file, $$ is its literal $: a database
        # name is the config's text, written so that Grafana reads it back unchanged.
        json_data = {"version": "InfluxQL", "dbName": p.database.replace("$", "$$"),
                     "httpMode": "GET", "timeInterval": "1m"}  # fmt: skip
        if variant == "1x":
            secure = {"password": f"${{{ENV_PASSWORD}}}"}
        else:
            json_data["httpHeaderName1"] = "Authorization"
            secure = {"httpHeaderValue1": f"Token ${{{ENV_TOKEN}}}"}
        ds["jsonData"] = json_data
        ds["secureJsonData"] = secure
        out.append(ds)
    return out


def datasource_files(park: ParkModel) -> dict[str, str]:
    """The park's data-source provisioning files, by file name: their text, as committed."""
    import yaml

    out = {}
    for variant in VARIANTS:
        (other,) = [v for v in VARIANTS if v != variant]
        header = _HEADER[variant].format(
            dashboard=file_name(park),
            park=park.id,
            other=datasource_file_name(park, other),
            url=ENV_URL,
            user=ENV_USER,
            password=ENV_PASSWORD,
            token=ENV_TOKEN,
        )
        doc = {"apiVersion": 1, "datasources": datasources(park, variant)}
        body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
        out[datasource_file_name(park, variant)] = header + body
    return out


def shipped_parks() -> list[Path]:
    """The park files shipped in the config package (config/parks/<park>/park.yaml)."""
    from greenfoundry.config import PLANTS_DIR

    return sorted((PLANTS_DIR.parent / "parks").glob("*/park.yaml"))


__all__ = [
    "MIXED_DATASOURCE",
    "ParkModel",
    "ParkPlant",
    "dashboard_uid",
    "datasource_files",
    "datasource_uid",
    "file_name",
    "load_park",
    "park_dashboard",
    "shipped_parks",
]
