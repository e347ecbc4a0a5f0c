"""The one line-protocol writer (`greenfoundry.store.line`, `series_key`, `value_line`) and the
InfluxQL quoting beside it.

Every expected line below is written out by hand from the InfluxDB line-protocol reference
("Special characters": a measurement escapes comma and space; a tag key, tag value and field key
escape comma, equals sign and space; a string field value escapes double quote and backslash;
an integer field ends in `i`; a boolean is true/false; a newline is allowed in no tag or field
value), never copied from the code's output. The last test writes a point with every awkward
character to the real InfluxDB 1.6 and reads it back through /query.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from greenfoundry.stack import store_for
from greenfoundry.store import (
    line,
    quote_ident,
    quote_string,
    series_key,
    value_line,
    where,
)

# --------------------------------------------------------------------------------------------
# Names: measurement, tag keys and values, field keys


def test_measurement_escapes_comma_and_space_but_not_equals():
    assert line("a b,c=d", {}, {"v": 1.0}, 5) == r"a\ b\,c=d v=1.0 5"


def test_tag_keys_and_values_escape_comma_equals_and_space():
    tags = {"k,1 =": "v 2=3,4"}
    assert line("m", tags, {"v": 1.0}, 5) == r"m,k\,1\ \==v\ 2\=3\,4 v=1.0 5"


def test_field_keys_escape_comma_equals_and_space():
    assert line("m", {}, {"f,k=x y": 1.0}, 5) == r"m f\,k\=x\ y=1.0 5"


def test_tags_are_sorted_by_key_and_fields_keep_their_order():
    got = line("m", {"plant": "p", "instance": "i", "area": "a"}, {"z": 1, "a": 2}, 5)
    assert got == "m,area=a,instance=i,plant=p z=1i,a=2i 5"
    assert series_key("m", [("b", "2"), ("a", "1")]) == "m,a=1,b=2"


def test_quotes_and_unicode_in_names_are_written_as_they_are():
    # Quotes are not special in a name (the space still is); UTF-8 text passes through.
    assert (
        line("炉'1\"", {"t": 'it\'s "x"'}, {"温度": 1.0}, 5) == r"""炉'1",t=it's\ "x" 温度=1.0 5"""
    )


@pytest.mark.parametrize("bad", ["a\\b", "a\tb", "a\rb", "a\nb", ""])
def test_a_name_line_protocol_cannot_carry_is_refused(bad):
    # A backslash is read differently by InfluxDB 1.x (kept) and 2.x (an escape); tab, CR and
    # newline have no escape; an empty name or tag value has no line.
    with pytest.raises(ValueError):
        series_key(bad)
    with pytest.raises(ValueError):
        series_key("m", {bad: "v"})
    with pytest.raises(ValueError):
        series_key("m", {"k": bad})
    with pytest.raises(ValueError):
        line("m", {}, {bad: 1.0}, 5)


def test_a_measurement_that_would_be_a_comment_and_a_repeated_tag_are_refused():
    with pytest.raises(ValueError, match="comment"):
        series_key("#m")
    with pytest.raises(ValueError, match="twice"):
        series_key("m", [("k", "1"), ("k", "2")])


def test_a_name_that_is_not_a_str_is_a_type_error():
    with pytest.raises(TypeError):
        series_key("m", {"k": 3})


# --------------------------------------------------------------------------------------------
# Field values


def test_string_fields_escape_double_quote_and_backslash_only():
    # Comma, space and equals are plain inside the quotes; a backslash is doubled, a quote escaped.
    fields = {"s": 'say "hi", a=b c:\\dir\\', "t": "tab\there 'single'"}
    expected = 'm s="say \\"hi\\", a=b c:\\\\dir\\\\",t="tab\there \'single\'" 5'
    assert line("m", {}, fields, 5) == expected


def test_a_newline_in_a_string_field_is_refused():
    with pytest.raises(ValueError, match="newline"):
        line("m", {}, {"s": "two\nlines"}, 5)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0i"),
        (-5, "-5i"),
        (2**63 - 1, "9223372036854775807i"),
        (-(2**63), "-9223372036854775808i"),
        (np.int64(7), "7i"),
        (True, "true"),
        (False, "false"),
        (7.0, "7.0"),
        (1500.0, "1500.0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e20, "1e+20"),
        (-2.5e-7, "-2.5e-07"),
        (-0.0, "-0.0"),
        (np.float64(1.5), "1.5"),  # numpy's own repr would be np.float64(1.5)
        (Fraction(1, 4), "0.25"),
    ],
)
def test_field_values_by_type(value, text):
    assert line("m", {}, {"f": value}, 5) == f"m f={text} 5"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_a_non_finite_float_is_refused(value):
    with pytest.raises(ValueError, match="non-finite"):
        line("m", {}, {"f": value}, 5)
    with pytest.raises(ValueError, match="non-finite"):
        value_line("m", value, 5)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_an_integer_beyond_64_bits_is_refused(value):
    with pytest.raises(ValueError, match="64 bits"):
        line("m", {}, {"f": value}, 5)


def test_a_field_value_of_another_type_is_a_type_error():
    with pytest.raises(TypeError):
        line("m", {}, {"f": None}, 5)
    with pytest.raises(TypeError):
        line("m", {}, {"f": b"bytes"}, 5)


def test_a_point_without_fields_is_refused():
    with pytest.raises(ValueError, match="at least one field"):
        line("m", {"k": "v"}, {}, 5)


# --------------------------------------------------------------------------------------------
# Timestamps


def test_timestamps_are_integer_nanoseconds_in_influxdbs_range():
    # InfluxDB's range is [-2**63 + 2, 2**63 - 2] ns (its MinNanoTime and MaxNanoTime).
    assert line("m", {}, {"f": 1}, 1795392000123456789) == "m f=1i 1795392000123456789"
    assert line("m", {}, {"f": 1}, -(2**63) + 2) == "m f=1i -9223372036854775806"
    assert line("m", {}, {"f": 1}, np.int64(2**63 - 2)) == "m f=1i 9223372036854775806"
    for bad in (2**63 - 1, -(2**63) + 1):
        with pytest.raises(ValueError, match="range"):
            line("m", {}, {"f": 1}, bad)
    for bad in (1.5, True, "5", None):
        with pytest.raises(TypeError):
            line("m", {}, {"f": 1}, bad)


# --------------------------------------------------------------------------------------------
# The reading hot path


def test_value_line_is_the_value_field_of_a_series_key():
    key = series_key("furnace_energy_kwh", {"plant": "demo-dip", "area": "melt", "device": "if1"})
    assert key == "furnace_energy_kwh,area=melt,device=if1,plant=demo-dip"
    expected = "furnace_energy_kwh,area=melt,device=if1,plant=demo-dip value=1234.5 5"
    assert value_line(key, 1234.5, 5) == expected
    assert value_line(key, 7, 5).endswith(" value=7.0 5")  # an int is written as a float
    tags = {"plant": "demo-dip", "area": "melt", "device": "if1"}
    assert line("furnace_energy_kwh", tags, {"value": 1234.5}, 5) == expected


# --------------------------------------------------------------------------------------------
# InfluxQL quoting


def test_influxql_identifiers_and_strings_are_quoted_and_escaped():
    assert quote_ident('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert quote_string("o'hara \\x") == "'o\\'hara \\\\x'"


def test_where_quotes_every_tag_and_bounds_the_time():
    assert where({"plant": "p'1", "de vice": "x"}, start_ns=0, end_ns=10) == (
        "WHERE \"plant\" = 'p\\'1' AND \"de vice\" = 'x' AND time >= 0 AND time < 10"
    )
    assert where({}, last_s=3600) == "WHERE time > now() - 3600s"
    for bad in (
        {},  # no time range: every query is bounded
        {"start_ns": 0},
        {"start_ns": 0, "end_ns": 1, "last_s": 5},
        {"last_s": 0},
        {"last_s": 1.5},
        {"start_ns": 0.5, "end_ns": 1},
    ):
        with pytest.raises(ValueError):
            where({"plant": "p"}, **bad)


# --------------------------------------------------------------------------------------------
# Across the real InfluxDB


@pytest.mark.servers
def test_every_awkward_character_round_trips_through_influxdb(stack):
    measurement = "gf lines,awkward=1 ü"
    tags = {"tag key,= 'q'\"": "value, = 'q' \"d\" 炉", "plant": "p lines"}
    fields = {
        "text": "quote \" backslash \\ comma, space = single ' tab\t 温度",
        # A backslash before a quote, two backslashes, and one at the very end.
        "path": r'C:\"q"\\share\ ' + "\\",
        "field key,= x": 1.5,
        "count": -(2**63),
        "big": 2**63 - 1,
        "ok": True,
        "not_ok": False,
        "sum": 0.1 + 0.2,
        "huge": 1e20,
        "tiny": -2.5e-7,
        "max": 1.7976931348623157e308,
    }
    ts = 1_795_392_000_123_456_789
    st = store_for(stack)
    st.write_lines([line(measurement, tags, fields, ts)])

    (result,) = st.query_raw(
        f"SELECT * FROM {quote_ident(measurement)} "
        f"{where(tags, start_ns=ts, end_ns=ts + 1)} GROUP BY *"
    )
    (series,) = result["series"]
    assert series["name"] == measurement
    assert series["tags"] == tags
    (row,) = series["values"]
    got = dict(zip(series["columns"], row, strict=True))
    assert got.pop("time") == ts
    assert got == fields
    assert type(got["count"]) is int and type(got["ok"]) is bool  # integer and boolean fields
