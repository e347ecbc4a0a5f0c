"""`greenfoundry score`: the table, the JSON and its documented schema, and one-line errors.

Expected numbers are the demo plant's hand computation in test_scorer.py (F = 756.6, level 2;
with stack emissions at 0.85 C, F = 738.6, 11.4 short of level 2, and the plan names the air
row). Nothing here is copied from the command's own output.

The command takes the plant config (--config); the evidence defaults to the evidence.yaml beside
it, and the indicators are always given.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from greenfoundry.cli import main
from greenfoundry.config import plant_file

ROOT = Path(__file__).resolve().parents[2]
DEMO = plant_file().parent
CONFIG = DEMO / "plant.yaml"
INDICATORS = DEMO / "indicators.example.yaml"
EVIDENCE = DEMO / "evidence.yaml"
DEMO_ARGS = ["score", "--config", str(CONFIG), "--indicators", str(INDICATORS)]
AS_OF = ["--as-of", "2026-03-31"]


def changed_copy(src: Path, tmp_path: Path, change) -> Path:
    data = yaml.safe_load(src.read_text(encoding="utf-8"))
    change(data)
    out = tmp_path / src.name
    out.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def test_the_evidence_defaults_to_the_plant_folders(capsys, tmp_path):
    # Without --evidence the demo folder's evidence.yaml is scored: the hand-computed 756.6.
    assert main([*DEMO_ARGS, *AS_OF, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["f"] == 756.6
    # Given explicitly, the same file gives the same F.
    assert main([*DEMO_ARGS, *AS_OF, "--json", "--evidence", str(EVIDENCE)]) == 0
    assert json.loads(capsys.readouterr().out)["f"] == 756.6
    # A plant folder without evidence.yaml says which file it looked for.
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(CONFIG, lone / "plant.yaml")
    rc = main(["score", "--config", str(lone / "plant.yaml"), "--indicators", str(INDICATORS)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1
    assert err[0].startswith(f"error: {lone / 'evidence.yaml'}: cannot read the evidence file")
    assert "give --evidence FILE" in err[0]


def test_two_plants_side_by_side_are_scored_each_from_its_own_folder(capsys, tmp_path):
    # A second plant, the demo plant made a gray-pipe plant with one 7.5 t/h cupola under another
    # id, lives beside it; each folder's files are scored for its own plant.
    plants = tmp_path / "plants"
    shutil.copytree(DEMO, plants / "demo-dip")
    other = plants / "other-gray"
    other.mkdir()

    def gray(data):
        data["plant"]["id"] = "other-gray"
        data["plant"]["product"] = "gray"
        data["plant"]["iron_source"] = "blast_furnace_or_cupola"
        data["furnaces"] = [
            {"id": "cu1", "kind": "cupola", "capacity": {"value": 7.5, "unit": "t/h"}}
        ]

    shutil.move(changed_copy(CONFIG, tmp_path, gray), other / "plant.yaml")
    ev = changed_copy(EVIDENCE, tmp_path, lambda d: d.update(plant="other-gray"))
    shutil.move(ev, other / "evidence.yaml")

    def gray_values(data):
        data["plant"] = "other-gray"
        # Gray pipe: the first-pass rows have one variant, no DN; Table C.1 (cupola) is kgce/t.
        for rid in ("techeco.quality.hydro_first_pass", "techeco.quality.pipe_first_pass"):
            data["rows"][rid].pop("context")
        data["rows"]["energy.liquid_iron.energy_per_t"] = {
            "value": 118.0,
            "unit": "kgce/t",
            "coverage": 0.96,
        }

    ind = changed_copy(INDICATORS, tmp_path, gray_values)
    shutil.move(ind, other / "indicators.yaml")

    args = [*AS_OF, "--json"]
    demo = ["score", "--config", str(plants / "demo-dip" / "plant.yaml")]
    assert main([*demo, "--indicators", str(plants / "demo-dip" / INDICATORS.name), *args]) == 0
    assert json.loads(capsys.readouterr().out)["f"] == 756.6
    gray_args = ["score", "--config", str(other / "plant.yaml")]
    assert main([*gray_args, "--indicators", str(other / "indicators.yaml"), *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plant"]["id"] == "other-gray" and out["plant"]["product"] == "gray"
    c1 = next(r for r in out["rows"] if r["row_id"] == "energy.liquid_iron.energy_per_t")
    # Table C.1, cupola 6～9 t/h (7.5 t/h): ＜120 ＜125 ＜135 kgce/t; 118 → tier 1.
    assert (c1["variant"], c1["unit"], c1["tier"]) == ("cupola-6-9", "kgce/t", 1)
    # Mixing the folders is refused: the demo evidence names plant demo-dip.
    rc = main([*gray_args, "--evidence", str(plants / "demo-dip" / "evidence.yaml"),
               "--indicators", str(other / "indicators.yaml"), *AS_OF])  # fmt: skip
    assert rc == 1
    assert "expected the plant config's plant.id 'other-gray'" in capsys.readouterr().err


def test_the_help_says_where_the_inputs_come_from(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["score", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--config FILE" in out and "--indicators FILE" in out
    assert "(default: evidence.yaml in the folder of --config)" in out


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
    args = ["score", "--config", str(CONFIG), "--indicators", str(indicators), *AS_OF]
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
    keys |= set(data["plant"]["furnaces"][0])
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
    rc = main(["score", "--config", str(CONFIG), "--indicators", str(indicators), *AS_OF])
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {indicators}: rows[energy.pipe.kgce_per_tonne]: not a row")


def test_evidence_dates_in_the_wrong_order_are_one_error_line(capsys, tmp_path):
    def backwards(data):
        data["rows"]["mgmt.digital.level"]["valid_until"] = "2025-12-31"

    evidence = changed_copy(EVIDENCE, tmp_path, backwards)
    rc = main([*DEMO_ARGS, "--evidence", str(evidence), *AS_OF])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err == [
        f"error: {evidence}: rows[mgmt.digital.level].valid_until: '2025-12-31' is not allowed; "
        "expected a date on or after declared_on (2026-01-15)"
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
    assert "'31/03/2026' is not allowed; expected a date YYYY-MM-DD" in capsys.readouterr().err


def test_a_coverage_share_outside_0_to_1_is_one_error_line(capsys):
    # --min-coverage is a share of the window (0.9 by default), not a percent.
    assert main([*DEMO_ARGS, *AS_OF, "--min-coverage", "90"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: min_coverage (--min-coverage): 90.0 is not allowed; expected a share of the "
        "window from 0 to 1"
    ]


def test_scoring_needs_none_of_the_configs_secrets(capsys, monkeypatch):
    # plant.yaml names GF_MQTT_PASSWORD and GF_INFLUX_PASSWORD; the scorer reads only facts.
    for name in ("GF_MQTT_PASSWORD", "GF_INFLUX_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    assert main([*DEMO_ARGS, *AS_OF, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["f"] == 756.6  # hand: test_scorer.py
