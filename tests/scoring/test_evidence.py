"""The declared-evidence file and the indicator-values input: shape, dates, and one-line errors.

Each bad input must stop with one line that names the file, the key path (`rows[<row id>]…`),
the value and what is allowed; nothing is kept from a guess. These tests check the loaders
alone; the scorer's checks against the standard and the plant config (unknown row id, wrong
type or unit, missing DN, another plant's id) are in test_scorer_inputs.py, and the reader's
own refusals (a key given twice, an impossible date) for every kind of file in
tests/kernel/test_inputs.py.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest

from greenfoundry.errors import InputError
from greenfoundry.scoring.evidence import load_evidence, parse_evidence
from greenfoundry.scoring.indicators import load_indicators, parse_indicators


def evidence(rows=None, **top):
    return {"version": 1, "plant": "demo-dip", "rows": rows or {}, **top}


def declaration(**kw):
    base = {
        "value": 3,
        "declared_by": "Wang Fang",
        "declared_on": "2026-01-12",
        "valid_until": "2026-12-31",
        "references": ["cert CN-1"],
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def test_a_valid_file_keeps_the_plant_id_and_the_provenance(tmp_path):
    path = tmp_path / "evidence.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            plant: demo-dip
            rows:
              ohs.safety_standardisation.level:
                value: level_2
                declared_by: Li Wei (EHS)
                declared_on: 2026-01-10
                valid_until: 2027-01-09
                references: [certificate AQBJX-2-0042]
            """
        ),
        encoding="utf-8",
    )
    ev = load_evidence(path)
    assert ev.plant == "demo-dip"
    d = ev.rows["ohs.safety_standardisation.level"]
    assert d.value == "level_2"
    assert d.declared_by == "Li Wei (EHS)"
    # Dates are read by our code from the text 2026-01-10, not by the YAML parser.
    assert (d.declared_on, d.valid_until) == (dt.date(2026, 1, 10), dt.date(2027, 1, 9))
    assert d.references == ("certificate AQBJX-2-0042",)


def test_expiry_is_decided_by_the_last_valid_day():
    d = parse_evidence(evidence({"r": declaration()}), "e.yaml").rows["r"]
    # valid_until 2026-12-31 is the last day the declaration holds.
    assert not d.expired(dt.date(2026, 12, 31))
    assert d.expired(dt.date(2027, 1, 1))
    assert d.not_yet_declared(dt.date(2026, 1, 11))
    assert not d.not_yet_declared(dt.date(2026, 1, 12))


R = "rows[mgmt.digital.level]"


@pytest.mark.parametrize(
    ("rows", "top", "message"),
    [
        (
            {"mgmt.digital.level": declaration(valid_until="2025-01-01")},
            {},
            f"{R}.valid_until: '2025-01-01' is not allowed; expected a date on or after "
            "declared_on (2026-01-12)",
        ),
        (
            {"mgmt.digital.level": declaration(valid_until=None)},
            {},
            f"{R}.valid_until: missing; this key is required",
        ),
        (
            {"mgmt.digital.level": declaration(declared_on="12/01/2026")},
            {},
            f"{R}.declared_on: '12/01/2026' is not allowed; expected a date YYYY-MM-DD",
        ),
        (
            {"mgmt.digital.level": declaration(value=None)},
            {},
            f"{R}.value: missing; this key is required",
        ),
        (
            {"mgmt.digital.level": declaration(declared_by="")},
            {},
            f"{R}.declared_by: '' is not allowed; expected a text",
        ),
        (
            {"mgmt.digital.level": {**declaration(), "valu": 3}},
            {},
            f"{R}.valu: unknown key; allowed here: context, declared_by",
        ),
        (
            {"mgmt.digital.level": declaration(value="not_applicable")},
            {},
            f"{R}.note: missing; a row declared not_applicable needs a note saying why",
        ),
        (
            {"mgmt.digital.level": declaration(context=[1])},
            {},
            f"{R}.context: [1] is not allowed; expected a mapping",
        ),
        (
            {"mgmt.digital.level": declaration(references=[3])},
            {},
            f"{R}.references: [3] is not allowed; expected a list of texts",
        ),
        # The plant's facts are the plant config's: a plant block here is refused.
        (
            {},
            {"plant": {"id": "demo-dip", "product": "ductile"}},
            "plant: {'id': 'demo-dip', 'product': 'ductile'} is not allowed; expected a text",
        ),
        ({}, {"plant": "Demo DIP"}, "plant: 'Demo DIP' is not allowed; expected the plant config"),
        ({}, {"version": 2}, "version: 2 is not allowed; expected 1"),
    ],
)
def test_a_bad_evidence_file_stops_with_one_line_naming_the_key(rows, top, message):
    with pytest.raises(InputError) as err:
        parse_evidence(evidence(rows, **top), "evidence.yaml")
    text = str(err.value)
    assert text.startswith("evidence.yaml: ")
    assert message in text
    assert "\n" not in text


def test_a_row_declared_twice_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "evidence.yaml"
    row = "  r1: {value: 1, declared_by: A, declared_on: 2026-01-01, valid_until: 2026-02-01}\n"
    path.write_text("version: 1\nplant: p\nrows:\n" + row + row, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_evidence(path)
    # Lines 4 and 5 of the file hold the two r1 rows.
    assert str(err.value).endswith("rows.r1: given twice (lines 4 and 5) is not allowed; "
                                   "expected each key once")  # fmt: skip


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read the evidence file"):
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
                    "window": {"start": dt.date(2023, 1, 1), "end": "2026-01-01"},
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
        ({"value": 1}, {}, "rows.a.coverage: missing; this key is required"),
        (
            {"value": 1, "coverage": 97},
            {},
            "rows.a.coverage: 97 is not allowed; expected a share of the window from 0 to 1",
        ),
        ({"coverage": 0.9}, {}, "rows.a.value: missing"),
        (
            {"value": 1, "coverage": 1},
            {"window": None},
            "rows.a.window: missing; give a window for the row or for the whole file",
        ),
        (
            {"value": 1, "coverage": 1, "window": {"start": "2025-02-01", "end": "2025-01-01"}},
            {},
            "rows.a.window.end: '2025-01-01' is not allowed; expected a date after start "
            "(2025-02-01)",
        ),
        ({"value": 1, "coverage": 1, "units": "%"}, {}, "rows.a.units: unknown key"),
        (
            {"value": 1, "coverage": 1, "context": [1]},
            {},
            "rows.a.context: [1] is not allowed; expected a mapping",
        ),
        ({"value": 1, "coverage": 1}, {"version": 2}, "version: 2 is not allowed; expected 1"),
    ],
)
def test_a_bad_indicators_file_stops_with_one_line_naming_the_key(row, top, message):
    with pytest.raises(InputError) as err:
        parse_indicators(indicators({"a": row}, **top), "indicators.yaml")
    assert str(err.value).startswith("indicators.yaml: ")
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
    with pytest.raises(InputError, match=r"ind\.json: rows\.a: given twice is not allowed"):
        load_indicators(path)
