"""`greenfoundry score`: the table, the JSON and its documented schema, and one-line errors.

Expected numbers are the demo plant's hand computation in test_scorer.py (F = 756.6, level 2;
with stack emissions at 0.85 C, F = 738.6, 11.4 short of level 2, and the plan names the air
row). Nothing here is copied from the command's own output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from greenfoundry.cli import main
from greenfoundry.config import plant_file

ROOT = Path(__file__).resolve().parents[2]
DEMO = plant_file().parent
INDICATORS = DEMO / "indicators.example.yaml"
EVIDENCE = DEMO / "evidence.yaml"
DEMO_ARGS = ["score", "--indicators", str(INDICATORS), "--evidence", str(EVIDENCE)]
AS_OF = ["--as-of", "2026-03-31"]


def changed_copy(src: Path, tmp_path: Path, change) -> Path:
    data = yaml.safe_load(src.read_text(encoding="utf-8"))
    change(data)
    out = tmp_path / src.name
    out.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def test_the_table_shows_groups_names_f_and_grade(capsys):
    assert main([*DEMO_ARGS, *AS_OF]) == 0
    out = capsys.readouterr().out
    assert (
        "F = Σ fi × Li = 756.60 / 1000 → level 2 铸造行业绿色工厂企业 (green factory enterprise)"
        in out
    )
    # Grouped by first-level indicator with both names and points of the maximum (hand: 37.5/50).
    assert re.search(r"1 企业规模\(产能/产值\) · enterprise scale .* 37\.50 / 50\n", out)
    assert re.search(r"7 现代企业管理 · modern enterprise management .* 80\.10 / 100\n", out)
    # A row line, then its Chinese and English names.
    assert re.search(
        r"emissions\.air\.multiple_of_c +0\.64 C +tier 2 +Li 0\.75 +90\.00 / 120\.00 +scored", out
    )
    assert "合规性指标C值的倍数 · emission as a multiple of the compliance limit C" in out
    assert "Li policy: floor of the tier met: tier 1/2/3 → 0.90/0.75/0.60" in out
    assert "Gap to level 1" in out
    assert "No row is missing data." in out


def test_the_gap_names_the_one_row_short(capsys, tmp_path):
    def air_085(data):
        data["rows"]["emissions.air.multiple_of_c"]["value"] = 0.85

    indicators = changed_copy(INDICATORS, tmp_path, air_085)
    args = ["score", "--indicators", str(indicators), "--evidence", str(EVIDENCE), *AS_OF]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "F = Σ fi × Li = 738.60 / 1000 → level 3" in out
    assert (
        "Gap to level 2 铸造行业绿色工厂企业 (green factory enterprise, F ≥ 750): 11.40 points"
        in out
    )
    assert "Least change: 1 row(s) adding 18.00 points" in out
    assert re.search(
        r"emissions\.air\.multiple_of_c +now 0\.85 C +must be below 0\.8 \(tier 3 → tier 2\) \+18\.00",
        out,
    )


def test_json_follows_the_documented_schema(capsys):
    assert main([*DEMO_ARGS, *AS_OF, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "greenfoundry.score/1"
    assert data["as_of"] == "2026-03-31"
    assert data["f"] == 756.6 and data["f_exact"] == "3783/5"
    assert data["grade"]["level"] == 2
    assert data["li_policy"]["mode"] == "floor"
    assert data["li_policy"]["floors"] == {"1": 0.9, "2": 0.75, "3": 0.6}
    assert data["status_counts"]["scored"] == 68 == len(data["rows"])
    assert [g["points"] for g in data["groups"]] == [37.5, 76.5, 154.5, 142.5, 150.0, 115.5, 80.1]
    c1 = next(r for r in data["rows"] if r["row_id"] == "energy.liquid_iron.energy_per_t")
    assert c1["unit"] == "kWh/t"
    assert c1["thresholds"][0]["value"] == pytest.approx(210.72)  # hand: 200 + 7.2 + 3.52
    assert data["gap"]["next_grade"]["level"] == 1
    assert data["gap"]["deficit"] == pytest.approx(143.4)

    # Every field the command prints is described in docs/score-json-schema.md.
    doc = (ROOT / "docs" / "score-json-schema.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z0-9_]+)`", doc))
    keys = set(data) | set(data["plant"]) | set(data["li_policy"]) | set(data["groups"][0])
    keys |= set(data["groups"][0]["indicators"][0]) | set(data["rows"][0]) | set(data["gap"])
    keys |= set(data["gap"]["plan"][0]) | set(data["rows"][0]["thresholds"][0])
    keys |= set(next(r for r in data["rows"] if r["evidence"])["evidence"])
    assert keys - documented == set()


def test_the_li_policy_option_is_stated_in_the_output(capsys):
    assert main([*DEMO_ARGS, *AS_OF, "--json", "--li-policy", "interpolate"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["li_policy"]["mode"] == "interpolate"
    assert data["li_policy"]["interpolation"]
    air = next(r for r in data["rows"] if r["row_id"] == "emissions.air.multiple_of_c")
    # Hand: tier 2 at 0.64 C, between ＜0.8C (Li 0.75) and ＜0.6C (Li 0.90):
    # 0.75 + 0.15 × (0.8 − 0.64) / (0.8 − 0.6) = 0.87; 120 × 0.87 = 104.4.
    assert air["li"] == pytest.approx(0.87)
    assert air["points"] == pytest.approx(104.4)


def test_an_unknown_row_id_is_one_error_line(capsys, tmp_path):
    def typo(data):
        data["rows"]["energy.pipe.kgce_per_tonne"] = data["rows"].pop("energy.pipe.kgce_per_t")

    indicators = changed_copy(INDICATORS, tmp_path, typo)
    rc = main(["score", "--indicators", str(indicators), "--evidence", str(EVIDENCE), *AS_OF])
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: indicators.example.yaml: row energy.pipe.kgce_per_tonne:")


def test_evidence_dates_in_the_wrong_order_are_one_error_line(capsys, tmp_path):
    def backwards(data):
        data["rows"]["mgmt.digital.level"]["valid_until"] = "2025-12-31"

    evidence = changed_copy(EVIDENCE, tmp_path, backwards)
    rc = main(["score", "--indicators", str(INDICATORS), "--evidence", str(evidence), *AS_OF])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err == [
        "error: evidence.yaml: row mgmt.digital.level: valid_until 2025-12-31 is before "
        "declared_on 2026-01-15"
    ]


def test_expired_evidence_shows_in_the_table_with_the_points_it_holds(capsys):
    # As of 2027-01-01 every declaration valid until 2026-12-31 has expired; the safety
    # standardisation certificate (valid to 2027-06-30) still holds.
    assert main([*DEMO_ARGS, "--as-of", "2027-01-01"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"mgmt\.digital\.level +erp +\(tier 2\) +Li — +0\.00 / 20\.00 +evidence expired", out
    )
    assert re.search(r"ohs\.safety_standardisation\.level +level_2 +tier 2 .* scored", out)
    assert "Rows that score nothing only because data is missing" in out


def test_a_bad_as_of_date_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main([*DEMO_ARGS, "--as-of", "31/03/2026"])
    assert exc.value.code == 2
    assert "is not a date (YYYY-MM-DD)" in capsys.readouterr().err
