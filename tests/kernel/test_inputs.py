"""One strict reader for every input file: a key given twice, an impossible date, or a date-time
where a date is expected is one `error:` line naming the file and the key, never a traceback.

Each input kind is taken through the command that reads it: the plant config and the evidence
and indicator files through `greenfoundry score`, the standard's file through `greenfoundry
standard check`. Every case starts from the shipped files (config/plants/demo-dip, the standard's
YAML) copied to a temporary folder, with one line of the text changed, so the YAML parser sees
exactly what a user would type. Before `greenfoundry.inputs`, PyYAML itself turned an unquoted
`2026-02-30` into a date and raised ValueError from inside the parser.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from greenfoundry import inputs
from greenfoundry.cli import main
from greenfoundry.config import plant_file
from greenfoundry.errors import InputError
from greenfoundry.scoring.standard import standard_path

DEMO = plant_file().parent
AS_OF = ["--as-of", "2026-03-31"]


@pytest.fixture()
def plant_dir(tmp_path) -> Path:
    """A copy of the demo plant's folder, with the indicators also as JSON."""
    folder = tmp_path / "demo-dip"
    shutil.copytree(DEMO, folder)
    data, _ = inputs.read(folder / "indicators.example.yaml", "the indicators file")
    (folder / "indicators.json").write_text(json.dumps(data, ensure_ascii=False, indent=2))
    return folder


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def one_error(capsys, argv) -> str:
    """Run the CLI; it must fail with exactly one `error:` line and print nothing else."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code != 0
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def score(folder: Path, indicators: str = "indicators.example.yaml") -> list[str]:
    return [
        "score",
        "--config",
        str(folder / "plant.yaml"),
        "--indicators",
        str(folder / indicators),
        *AS_OF,
    ]


# One row per input kind and date field: (file, text of the line as shipped, the key path the
# message must name). The evidence row is mgmt.digital.level's (declared 2026-01-15).
DECLARED = "    value: erp\n    declared_by: Gao Yan (quality manager)\n    declared_on: 2026-01-15"
DATES = [
    ("plant.yaml", "  declared_on: 2026-01-12", "  declared_on: {}", "plant.declared_on"),
    ("evidence.yaml", DECLARED, DECLARED[:-10] + "{}", "rows[mgmt.digital.level].declared_on"),
    (
        "indicators.example.yaml",
        "window: {start: 2025-01-01, end: 2026-01-01}",
        "window: {{start: {}, end: 2026-01-01}}",
        "window.start",
    ),
    ("indicators.json", '"end": "2026-01-01"', '"end": "{}"', "window.end"),
]


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("2026-02-30", "expected a calendar date YYYY-MM-DD (day is out of range for month)"),
        ("2026-13-01", "expected a calendar date YYYY-MM-DD (month must be in 1..12)"),
        ("2026-01-15T08:00:00", "expected a date YYYY-MM-DD, not a date-time"),
        ("2026-01-15 08:00", "expected a date YYYY-MM-DD, not a date-time"),
    ],
)
@pytest.mark.parametrize(("name", "old", "new", "key"), DATES, ids=[d[0] for d in DATES])
def test_a_bad_date_is_one_line_naming_the_file_and_the_key(
    capsys, plant_dir, name, old, new, key, bad, expected
):
    path = edit(plant_dir / name, old, new.format(bad))
    indicators = "indicators.json" if name == "indicators.json" else "indicators.example.yaml"
    line = one_error(capsys, score(plant_dir, indicators))
    assert line == f"error: {inputs.display(path)}: {key}: {bad!r} is not allowed; {expected}"


DUPLICATES = [
    # (file, a line as shipped, the same line followed by the key again, key path, lines)
    (
        "plant.yaml",
        "  timezone: Asia/Shanghai",
        "  timezone: Asia/Shanghai\n  timezone: UTC",
        "plant.timezone",
    ),
    ("evidence.yaml", "    value: erp\n", "    value: erp\n    value: mes\n", None),
    (
        "indicators.example.yaml",
        "energy.pipe.kgce_per_t: {value: 108.4,",
        "energy.pipe.kgce_per_t: {value: 108.4, value: 99.0,",
        "rows[energy.pipe.kgce_per_t].value",
    ),
    (
        "indicators.json",
        '"rows": {',
        '"rows": {\n    "energy.pipe.kgce_per_t": {"value": 99.0, "coverage": 1.0},',
        "rows[energy.pipe.kgce_per_t]",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "key"), DUPLICATES, ids=[d[0] for d in DUPLICATES])
def test_a_key_given_twice_is_one_line_naming_the_file_and_the_key(
    capsys, plant_dir, name, old, new, key
):
    path = edit(plant_dir / name, old, new)
    indicators = "indicators.json" if name == "indicators.json" else "indicators.example.yaml"
    line = one_error(capsys, score(plant_dir, indicators))
    text = path.read_text(encoding="utf-8").splitlines()
    if name == "indicators.json":
        # JSON gives no line numbers to its object hook: the message names the key only.
        assert line == (
            f"error: {inputs.display(path)}: {key}: given twice is not allowed; expected each "
            "key once"
        )
        return
    if key is None:  # the evidence row: the line of mgmt.digital.level's value
        key = "rows[mgmt.digital.level].value"
        first = text.index("  mgmt.digital.level:") + 2
        lines = (first, first + 1)
    elif name == "indicators.example.yaml":  # both on the row's one line (a flow mapping)
        row = next(i for i, t in enumerate(text, 1) if t.startswith("  energy.pipe.kgce_per_t"))
        lines = (row, row)
    else:
        first = text.index("  timezone: Asia/Shanghai") + 1
        lines = (first, first + 1)
    assert line == (
        f"error: {inputs.display(path)}: {key}: given twice (lines {lines[0]} and {lines[1]}) "
        "is not allowed; expected each key once"
    )


@pytest.fixture()
def standard_copy(tmp_path) -> Path:
    path = tmp_path / "t-cfa-0308011.5-2024.yaml"
    shutil.copy(standard_path(), path)
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "total_points: 1000\n",
            "total_points: 1000\ntotal_points: 1000\n",
            "total_points: given twice (lines {n} and {m}) is not allowed; expected each key once",
        ),
        (
            "revised_on: 2026-12-01",
            "revised_on: 2026-02-30",
            "revised_on: '2026-02-30' is not allowed; expected a calendar date YYYY-MM-DD "
            "(day is out of range for month)",
        ),
        (
            "revised_on: 2026-12-01",
            "revised_on: 2026-12-01T09:30:00",
            "revised_on: '2026-12-01T09:30:00' is not allowed; expected a date YYYY-MM-DD, not a "
            "date-time",
        ),
        (
            "  - id: D-c1-kgce\n",
            "  - id: D-c1-kgce\n    id: D-c1-kgce\n",
            "errata[{i}].id: given twice (lines {n} and {m}) is not allowed; expected each key once",
        ),
    ],
)
def test_the_standards_file_is_read_the_same_way(capsys, standard_copy, old, new, message):
    shipped, _ = inputs.read(standard_copy, "the standard's file")
    edit(standard_copy, old, new)
    text = standard_copy.read_text(encoding="utf-8").splitlines()
    # The line numbers are where the edit put the two keys; errata[i] is D-c1-kgce's place.
    n = next(i for i, t in enumerate(text, 1) if t.startswith(new.splitlines()[0]))
    i = [d["id"] for d in shipped["errata"]].index("D-c1-kgce")
    expected = message.format(n=n, m=n + 1, i=i)
    line = one_error(capsys, ["standard", "check", "--standard", str(standard_copy)])
    assert line == f"error: {inputs.display(standard_copy)}: {expected}"


def test_a_bad_date_in_a_real_process_is_one_line_and_no_traceback(plant_dir):
    # The original symptom, end to end through the installed entry point and a real stderr.
    edit(plant_dir / "evidence.yaml", DECLARED, DECLARED[:-10] + "2026-02-30")
    res = subprocess.run(
        [sys.executable, "-m", "greenfoundry", *score(plant_dir)],
        capture_output=True,
        text=True,
        cwd=plant_dir,
        check=False,
    )
    assert res.returncode == 1
    assert res.stdout == ""
    assert res.stderr == (
        "error: evidence.yaml: rows[mgmt.digital.level].declared_on: '2026-02-30' is not "
        "allowed; expected a calendar date YYYY-MM-DD (day is out of range for month)\n"
    )


# --------------------------------------------------------------------------- the reader itself


def test_no_value_is_turned_into_a_date_by_the_parser():
    data = inputs.parse_yaml("a: 2026-01-15\nb: !!timestamp 2026-01-15\nc: 2026-02-30\n", "f")
    assert data == {"a": "2026-01-15", "b": "2026-01-15", "c": "2026-02-30"}


def test_dates_are_read_by_our_code():
    node = inputs.Node({"on": "2026-01-15", "py": __import__("datetime").date(2026, 1, 15)})
    assert node.date("on") == node.date("py")
    with pytest.raises(InputError, match=r"^on2: missing; this key is required$"):
        node.date("on2")


def test_key_paths_bracket_keys_that_hold_a_dot():
    assert inputs.key_path("rows", "mgmt.digital.level") == "rows[mgmt.digital.level]"
    assert inputs.key_path("rows", "r1") == "rows.r1"
    assert inputs.key_path("", "plant") == "plant"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": NaN}', "f.json: NaN is not allowed; expected a finite number"),
        ('{"a": [1, }', "f.json: not valid JSON at line 1: "),
    ],
)
def test_json_is_strict_too(text, message):
    with pytest.raises(InputError) as err:
        inputs.parse_json(text, "f.json")
    assert str(err.value).startswith(message)


def test_a_file_that_is_not_text_is_one_line(tmp_path):
    path = tmp_path / "evidence.yaml"
    path.write_bytes(b"\xff\xfe\x00version: 1")
    with pytest.raises(InputError, match=r"evidence\.yaml: cannot read the file: not UTF-8 text"):
        inputs.read(path, "the file")
