"""`greenfoundry standard show|check|limits` through the real entry point.

Expected limits are hand-computed from Table C.1 and its notes (see test_table_c1.py for the
arithmetic); the CLI must print them, the unit and comparator, the corrections, and exit 2 with
one line when no row covers the furnace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenfoundry.cli import main

README = Path(__file__).resolve().parents[2] / "scoring" / "README.md"


def run(capsys, *argv):
    code = main(["standard", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_limits_cupola_between_rows_with_tapping_temperature(capsys):
    # 9.5 t/h -> 6～9 row (note 3), 120/125/135; tapping 1500 °C: +20 × 0.6 = +12 -> 132/137/147.
    # 130 < 132 -> tier 1, Li 0.9 (floor).
    code, out, _ = run(
        capsys, "limits", "--furnace-kind", "cupola", "--furnace-capacity", "9.5", "--product", "gray",
        "--tap-temp-c", "1500", "--value", "130",
    )  # fmt: skip
    assert code == 0
    assert "row cupola-6-9" in out
    assert "unit: kgce/t" in out and "comparator: <" in out
    assert "< 132 / < 137 / < 147 kgce/t" in out
    assert "note 3" in out and "note 1" in out
    assert "note4_cupola=skip" in out and "0.1229" in out
    assert "tier 1, Li 0.9" in out


def test_limits_induction_json(capsys):
    # Ductile DN600 (1450 °C), tapping 1470: +12; site 28 °C: -1.2 -> 210.8/260.8/310.8 kWh/t.
    # 260.8 is not < 260.8 -> tier 3, Li 0.6.
    code, out, _ = run(
        capsys, "limits", "--furnace-kind", "induction", "--furnace-capacity", "20", "--product", "ductile",
        "--dn", "600", "--tap-temp-c", "1470", "--annual-mean-air-temp-c", "28", "--value", "260.8", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["row"] == "induction-ductile" and data["unit"] == "kWh/t"
    # The glossary's names, as in the plant config and the score's JSON.
    assert (data["furnace_kind"], data["furnace_capacity"], data["furnace_capacity_unit"]) == (
        "induction",
        20,
        "t",
    )
    assert data["limits"] == [210.8, 260.8, 310.8]
    assert data["comparators"] == ["<", "<", "<"]
    assert data["tier"] == 3 and data["li"] == 0.6
    assert [c["note"] for c in data["corrections"] if c["applied"]] == [2, 4]


def test_limits_value_below_every_tier(capsys):
    # Induction gray ＜180 ＜220 ＜250; 250 meets none -> "tier none", Li 0.
    code, out, _ = run(
        capsys, "limits", "--furnace-kind", "induction", "--furnace-capacity", "8", "--product", "gray",
        "--value", "250",
    )  # fmt: skip
    assert code == 0
    assert "tier none, Li 0" in out


def test_limits_note4_cupola_convert(capsys):
    # Convert: -0.4 × 0.1229 × (30 - 25) = -0.2458 on 110/115/125 -> 109.754 / 114.754 / 124.754.
    code, out, _ = run(
        capsys, "limits", "--furnace-kind", "cupola", "--furnace-capacity", "12", "--product", "gray",
        "--annual-mean-air-temp-c", "30", "--note4-cupola", "convert", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["limits"] == [109.7542, 114.7542, 124.7542]


@pytest.mark.parametrize(
    ("furnace", "capacity"), [("cupola", "4.5"), ("induction", "5"), ("induction", "2")]
)
def test_limits_not_covered_exits_2_with_one_line(capsys, furnace, capacity):
    code, out, err = run(
        capsys,
        "limits",
        "--furnace-kind",
        furnace,
        "--furnace-capacity",
        capacity,
        "--product",
        "gray",
    )
    assert code == 2
    assert out == ""
    assert err.startswith("error: Table C.1 does not cover")
    assert err.count("\n") == 1


def test_limits_dn_outside_every_range_exits_2(capsys):
    code, _, err = run(
        capsys, "limits", "--furnace-kind", "induction", "--furnace-capacity", "12", "--product", "ductile",
        "--dn", "320", "--tap-temp-c", "1480",
    )  # fmt: skip
    assert code == 2 and "DN 320" in err


def test_limits_missing_dn_is_an_error_not_a_guess(capsys):
    code, _, err = run(
        capsys, "limits", "--furnace-kind", "induction", "--furnace-capacity", "12", "--product", "ductile",
        "--tap-temp-c", "1480",
    )  # fmt: skip
    assert code == 1 and "--dn" in err


def test_check_prints_totals_and_errata(capsys):
    code, out, _ = run(capsys, "check")
    assert code == 0
    assert "7 first-level, 33 second-level indicators" in out
    assert "total" in out and "1000 pts" in out
    for eid in ("E1:", "E2:", "E3:", "E4:", "E5:", "E6:", "D-c1-note4-cupola:"):
        assert eid in out
    assert "reason:" in out


def test_check_json(capsys):
    code, out, _ = run(capsys, "check", "--json")
    data = json.loads(out)
    assert code == 0 and data["valid"] and data["points_in_force"] == 1000
    assert {g["id"]: g["points"] for g in data["groups"]}["ohs"] == 150


def test_check_of_a_broken_file_is_one_error_line(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n", encoding="utf-8")
    code, out, err = run(capsys, "check", "--standard", str(bad))
    assert code == 1 and out == ""
    # The file has an id and nothing else: the first required key it lacks is named.
    assert err.startswith(f"error: {bad}: title_zh: missing; this key is required")


def test_show_lists_rows_with_printed_cells(capsys):
    code, out, _ = run(capsys, "show")
    assert code == 0
    assert "energy.pipe.kgce_per_t" in out
    assert "＜300 / ≤330 / ≤350" in out  # Table 5, mixed comparators as printed
    assert "0.99～0.95 / 0.94～0.92 / 0.91～0.90" in out


def test_show_one_row(capsys):
    code, out, _ = run(capsys, "show", "--row", "process.moulding.checklist")
    assert code == 0
    assert "E5" in out and "12）型芯砂、废砂芯回收再生循环系统" in out
    code, _, err = run(capsys, "show", "--row", "no.such.row")
    assert code == 1 and "no.such.row" in err


def test_help_texts_are_reference(capsys):
    for argv in (["standard", "--help"], ["standard", "limits", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--furnace-kind", "--furnace-capacity", "--product", "--dn", "--tap-temp-c", "--annual-mean-air-temp-c",
                 "--value", "--json", "--note4-cupola", "--kwh-to-kgce"):  # fmt: skip
        assert flag in out
    assert "not covered" in out


def test_every_standard_subcommand_is_in_the_readme():
    text = README.read_text(encoding="utf-8")
    for cmd in ("greenfoundry standard show", "greenfoundry standard check",
                "greenfoundry standard limits"):  # fmt: skip
        assert cmd in text


@pytest.mark.parametrize(
    ("decision", "words"),
    [
        ("D-c1-plant", ("Σ energy / Σ tonnes", "tonnage-weighted corrected limits", "duplex")),
        ("D-t6-window", ("highest valid hourly mean", "share of the window's valid hours")),
    ],
)
def test_the_metrics_decisions_are_recorded_and_printed(capsys, decision, words):
    # The two decisions the metrics implement (metrics/table_c1.py plant_energy_per_t,
    # metrics/emissions.py window_multiples_of_c) are the standard file's, printed by check.
    code, out, _ = run(capsys, "check")
    assert code == 0
    assert f"  {decision}: " in out
    block = out.split(f"  {decision}: ", 1)[1].split("\n  D-", 1)[0]
    assert all(w in block for w in words)
    code, out, _ = run(capsys, "check", "--json")
    (d,) = [d for d in json.loads(out)["errata"] if d["id"] == decision]
    assert d["reason"] and d["affects"]
