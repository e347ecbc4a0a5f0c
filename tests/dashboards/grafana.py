"""What Grafana does to a dashboard's InfluxQL before it sends it, done here without a Grafana
server: the panels of the JSON (repeated rows included), the variables and macros substituted
as Grafana's InfluxDB data source does, and the names a query reads.

Sources, Grafana 11.6: `public/app/plugins/datasource/influxdb` (``$timeFilter`` is
``time >= <from>ms and time <= <to>ms``; a multi-value or include-all variable inside a regex
``/^$var$/`` becomes ``(a|b)`` of its regex-escaped values, a single value its escaped value,
and a single-value variable elsewhere its text as it is), and `rangeutil.calculateInterval` /
`roundInterval` for ``$__interval`` (the range divided by the panel's data points, rounded to
Grafana's steps, at least the panel's or the data source's minimum interval, 1 ms without one).
"""

from __future__ import annotations

import re

GRAFANA_ROUND_MS = (  # roundInterval: (below this many ms, the interval it rounds to)
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (27_000_000, 21_600_000),
    (43_200_000, 43_200_000),
    (86_400_000, 86_400_000),
    (604_800_000, 604_800_000),
)


def interval_ms(range_ms: int, max_data_points: int = 1000, min_ms: int = 1) -> int:
    """Grafana's ``$__interval_ms`` for a panel about ``max_data_points`` pixels wide."""
    raw = range_ms / max_data_points
    rounded = next((to for below, to in GRAFANA_ROUND_MS if raw < below), 31_536_000_000)
    return max(rounded, min_ms)


def interval_text(ms: int) -> str:
    """``$__interval`` as Grafana writes it (the largest whole unit)."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def regex_escape(value: str) -> str:
    return re.sub(r"[\\^$*+?.()|{}\[\]/]", lambda m: "\\" + m.group(0), value)


def substitute(query: str, variables: dict[str, list[str]], multi: set[str], *, start_ms: int,
               end_ms: int, interval: int) -> str:  # fmt: skip
    """The query as Grafana sends it: ``variables`` name → its value(s) for this panel."""
    q = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    q = q.replace("$__interval_ms", str(interval)).replace("$__interval", interval_text(interval))

    def in_regex(m: re.Match) -> str:
        name = m.group(1)
        values = [regex_escape(v) for v in variables[name]]
        if name in multi and len(values) > 1:
            return "/^(" + "|".join(values) + ")$/"
        return "/^" + values[0] + "$/"

    q = re.sub(r"/\^\$(\w+)\$/", in_regex, q)
    for name in sorted(variables, key=len, reverse=True):
        q = q.replace(f"${{{name}}}", variables[name][0]).replace(f"${name}", variables[name][0])
    assert "$" not in q.replace("$/", ""), f"a variable is left in {q!r}"
    return q


def panels(model: dict) -> list[tuple[dict, str | None]]:
    """Every panel of a dashboard with the variable its row repeats over (or None), rows
    themselves left out: a panel after a repeated row, up to the next row, belongs to it."""
    out = []
    repeat = None
    for p in model["panels"]:
        if p["type"] == "row":
            repeat = p.get("repeat")
            for inner in p.get("panels", []):
                out.append((inner, repeat))
            continue
        out.append((p, p.get("repeat") or repeat))
    return out


IDENT = re.compile(r'"((?:[^"\\]|\\.)*)"')
QUALIFIED = re.compile(r'(?:"((?:[^"\\]|\\.)*)"\."((?:[^"\\]|\\.)*)"\.)?"((?:[^"\\]|\\.)*)"')


def sources(query: str) -> list[tuple[str | None, str | None, str]]:
    """(database, retention policy, measurement) of each source of a query's FROM; database and
    policy None for a measurement of the request's database."""
    m = re.search(r"\bFROM\s+(.*?)(?:\s+WHERE\b|\s+WITH\b|\s+GROUP\b|$)", query)
    assert m, f"no FROM in {query!r}"
    return [(d or None, rp or None, name) for d, rp, name in QUALIFIED.findall(m.group(1))]


def names(query: str) -> tuple[list[str], list[str]]:
    """(measurements, the other identifiers) a query reads: the double-quoted names of its FROM
    (a fully qualified ``"db"."rp"."m"`` is its measurement m) and the rest, aliases (after AS)
    left out. Every name in a generated query is quoted."""
    m = re.search(r"\bFROM\s+(.*?)(?:\s+WHERE\b|\s+WITH\b|\s+GROUP\b|$)", query)
    assert m, f"no FROM in {query!r}"
    measurements = [name for _d, _rp, name in sources(query)]
    rest = query[: m.start()] + " " + query[m.end(1) :]
    rest = re.sub(r'\bAS\s+"(?:[^"\\]|\\.)*"', "", rest)
    return measurements, IDENT.findall(rest)


# Grafana's provisioning replaces $VAR and ${VAR} of its environment in every value of a
# provisioning file, and $$ by a literal $ (its provisioning docs, "Using environment
# variables"); a variable it lacks becomes "". Here a missing one fails, since a data source
# with an empty user would only hide it.
ENV_VAR = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")


def expand(value, env: dict[str, str]):
    """A provisioning file's value with Grafana's environment substituted, recursively."""
    if isinstance(value, dict):
        return {k: expand(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2)
        assert name in env, f"{name} is not in Grafana's environment"
        return env[name]

    return ENV_VAR.sub(one, value)


def provisioned(doc: dict, env: dict[str, str]) -> dict[str, dict]:
    """The data sources of a provisioning document, by uid, as Grafana holds them: the
    environment substituted."""
    out = {}
    for ds in doc["datasources"]:
        assert ds["uid"] not in out, f"uid {ds['uid']} provisioned twice"
        out[ds["uid"]] = expand(ds, env)
    return out
