"""The declared-evidence file and the indicator-values input: shape, dates, and one-line errors.

Each bad input must stop with one line that names the row (or key) and the problem; nothing is
kept from a guess. These tests check the loaders alone; the scorer's checks against the standard
(unknown row id, wrong type or unit, missing DN) are in test_scorer.py.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest

from greenfoundry.errors import ConfigError
from greenfoundry.scoring.evidence import load_evidence, parse_evidence
from greenfoundry.scoring.indicators import load_indicators, parse_indicators

PLANT = {
    "id": "demo-dip",
    "product": "ductile",
    "dn_range": [80, 1000],
    "residential_within_1200m": False,
    "furnace": {"kind": "induction", "capacity": 12},
    "declared_by": "Wang Fang",
    "declared_on": "2026-01-12",
}


def evidence(rows=None, **plant):
    return {"version": 1, "plant": {**PLANT, **plant}, "rows": rows or {}}


def declaration(**kw):
    base = {
        "value": 3,
        "declared_by": "Wang Fang",
        "declared_on": dt.date(2026, 1, 12),
        "valid_until": dt.date(2026, 12, 31),
        "references": ["cert CN-1"],
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def test_a_valid_file_keeps_the_context_and_the_provenance(tmp_path):
    path = tmp_path / "evidence.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            plant:
              id: demo-dip
              product: ductile
              dn_range: [80, 1000]
              residential_within_1200m: false
              furnace: {kind: induction, capacity: 12}
              declared_by: Wang Fang
              declared_on: 2026-01-12
            rows:
              safety.standardisation:
                value: 2
                declared_by: Li Wei (EHS)
                declared_on: 2026-01-10
                valid_until: 2027-01-09
                references: [certificate AQBJX-2-0042]
            """
        ),
        encoding="utf-8",
    )
    ev = load_evidence(path)
    assert ev.plant.product == "ductile"
    assert (ev.plant.dn_min, ev.plant.dn_max) == (80, 1000)
    assert ev.plant.furnace.kind == "induction"
    assert ev.plant.furnace.capacity_unit == "t"
    d = ev.rows["safety.standardisation"]
    assert d.value == 2
    assert d.declared_by == "Li Wei (EHS)"
    assert d.references == ("certificate AQBJX-2-0042",)


def test_expiry_is_decided_by_the_last_valid_day():
    d = parse_evidence(evidence({"r": declaration()}), "e.yaml").rows["r"]
    # valid_until 2026-12-31 is the last day the declaration holds.
    assert not d.expired(dt.date(2026, 12, 31))
    assert d.expired(dt.date(2027, 1, 1))
    assert d.not_yet_declared(dt.date(2026, 1, 11))
    assert not d.not_yet_declared(dt.date(2026, 1, 12))


@pytest.mark.parametrize(
    ("rows", "plant", "message"),
    [
        (
            {"r1": declaration(valid_until=dt.date(2025, 1, 1))},
            {},
            "row r1: valid_until 2025-01-01 is before declared_on 2026-01-12",
        ),
        ({"r1": declaration(valid_until=None)}, {}, "row r1: valid_until is missing"),
        ({"r1": declaration(declared_on="12/01/2026")}, {}, "row r1: declared_on '12/01/2026'"),
        ({"r1": declaration(value=None)}, {}, "row r1: value is missing"),
        ({"r1": declaration(declared_by="")}, {}, "row r1: declared_by must be"),
        ({"r1": {**declaration(), "valu": 3}}, {}, "row r1: unknown key 'valu'"),
        ({}, {"product": "steel"}, "product 'steel' must be one of gray, ductile"),
        ({}, {"dn_range": None}, "dn_range is required for a ductile plant"),
        ({}, {"dn_range": [1000, 80]}, "dn_range [1000, 80] is in the wrong order"),
        ({}, {"residential_within_1200m": "no"}, "residential_within_1200m must be true or false"),
        ({}, {"furnace": {"kind": "arc", "capacity": 5}}, "kind 'arc' must be one of"),
        ({}, {"furnace": {"kind": "cupola", "capacity": -1}}, "capacity -1.0 must be positive"),
        ({}, {"id": "Demo DIP"}, "id 'Demo DIP' must be lower-case"),
        ({}, {"iron_source": "scrap"}, "iron_source 'scrap' must be one of"),
        (
            {"r1": declaration(value="not_applicable")},
            {},
            "row r1: a row declared not_applicable needs a note saying why",
        ),
        ({"r1": declaration(context=[1])}, {}, "row r1: context must be a mapping"),
        ({"r1": declaration(references=[3])}, {}, "row r1: references must be a list"),
    ],
)
def test_a_bad_evidence_file_stops_with_one_line_naming_the_row(rows, plant, message):
    with pytest.raises(ConfigError) as err:
        parse_evidence(evidence(rows, **plant), "evidence.yaml")
    text = str(err.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith("evidence.yaml")


def test_a_gray_plant_needs_no_dn_range():
    ev = parse_evidence(evidence(product="gray", dn_range=None), "e.yaml")
    assert ev.plant.dn_min is None


def test_a_row_declared_twice_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "evidence.yaml"
    row = "  r1: {value: 1, declared_by: A, declared_on: 2026-01-01, valid_until: 2026-02-01}\n"
    path.write_text(
        "version: 1\nplant: {id: p, product: gray, residential_within_1200m: false,"
        " declared_by: A, declared_on: 2026-01-01}\nrows:\n" + row + row,
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="key 'r1' is given twice"):
        load_evidence(path)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the evidence file"):
        load_evidence(tmp_path / "nope.yaml")


# --- the indicators input -------------------------------------------------------------------


def indicators(rows, **top):
    data = {
        "version": 1,
        "plant": "demo-dip",
        "window": {"start": "2025-01-01", "end": "2026-01-01"},
        "rows": rows,
    }
    data.update(top)
    return data


def test_rows_take_the_file_window_unless_they_give_their_own():
    ind = parse_indicators(
        indicators(
            {
                "a": {"value": 96.4, "coverage": 0.97},
                "b": {
                    "value": 31.5,
                    "coverage": 1,
                    "window": {"start": dt.date(2023, 1, 1), "end": dt.date(2026, 1, 1)},
                },
            }
        ),
        "i.yaml",
    )
    assert ind.rows["a"].window.start == dt.date(2025, 1, 1)
    assert ind.rows["a"].window.end == dt.date(2026, 1, 1)
    assert ind.rows["b"].window.start == dt.date(2023, 1, 1)
    assert ind.rows["b"].coverage == 1.0


@pytest.mark.parametrize(
    ("row", "top", "message"),
    [
        ({"value": 1}, {}, "row a: coverage must be a number from 0 to 1"),
        ({"value": 1, "coverage": 97}, {}, "row a: coverage 97 is outside 0..1"),
        ({"coverage": 0.9}, {}, "row a: value is missing"),
        ({"value": 1, "coverage": 1}, {"window": None}, "row a: no window"),
        (
            {"value": 1, "coverage": 1, "window": {"start": "2025-02-01", "end": "2025-01-01"}},
            {},
            "row a: window end 2025-01-01 must be after start 2025-02-01",
        ),
        ({"value": 1, "coverage": 1, "units": "%"}, {}, "row a: unknown key 'units'"),
        ({"value": 1, "coverage": 1, "context": [1]}, {}, "row a: context must be a mapping"),
        ({"value": 1, "coverage": 1}, {"version": 2}, "version 2 is not supported"),
    ],
)
def test_a_bad_indicators_file_stops_with_one_line_naming_the_row(row, top, message):
    with pytest.raises(ConfigError) as err:
        parse_indicators(indicators({"a": row}, **top), "indicators.yaml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_indicators_read_from_json_too(tmp_path):
    path = tmp_path / "ind.json"
    path.write_text(json.dumps(indicators({"a": {"value": 2.5, "unit": "%", "coverage": 0.95}})))
    ind = load_indicators(path)
    assert ind.rows["a"].value == 2.5
    assert ind.rows["a"].unit == "%"
    assert ind.rows["a"].window.end == dt.date(2026, 1, 1)


def test_a_json_row_given_twice_is_refused(tmp_path):
    path = tmp_path / "ind.json"
    path.write_text(
        '{"version": 1, "plant": "p", "window": {"start": "2025-01-01", "end": "2026-01-01"},'
        ' "rows": {"a": {"value": 1, "coverage": 1}, "a": {"value": 2, "coverage": 1}}}'
    )
    with pytest.raises(ConfigError, match="key 'a' is given twice"):
        load_indicators(path)
