"""`greenfoundry grade`: the stored day printed as text and JSON as the reader role, a day with
nothing stored refused in one line, --compute. Expected points by hand (points × Li floor)."""

from __future__ import annotations

import datetime as dt
import json

import yaml

from greenfoundry.cli import main
from greenfoundry.grade import compute, rolling
from greenfoundry.metrics.source import store_for_metrics
from greenfoundry.scoring import scorer
from greenfoundry.scoring.indicators import parse_indicators
from greenfoundry.scoring.standard import load_standard
from tests.grade import declaration, plant, store, write_air, write_c1, write_evidence
from tests.plant import REPO

DAY = dt.date(2026, 3, 10)
SYSTEMS = "mgmt.systems.four_systems"


def _grade(cfg, stack, *extra):
    return main(["grade", "--config", str(cfg.path), "--stack", str(stack.dir), *extra])


def test_the_stored_day_is_printed_and_a_day_with_nothing_stored_is_refused(
    tmp_path, stack, capsys
):
    cfg = plant(tmp_path, stack, "grade-cli")
    write_c1(store(stack), cfg, DAY, 150.0)
    # The four systems hold 40 more days after DAY: expiring, with its 27 points.
    write_evidence(cfg, {SYSTEMS: declaration("effective_significant", DAY + dt.timedelta(39))})
    rolling.write_grade(store_for_metrics(cfg), cfg, compute.compute(cfg, DAY))

    assert _grade(cfg, stack, "--as-of", DAY.isoformat()) == 0
    out = capsys.readouterr().out
    # By hand: C.1 tier 1, 30 × 0.90 = 27; the four systems tier 1, 30 × 0.90 = 27.
    assert "F = Σ fi × Li = 54.00 / 1000 → not rated (F < 600, Table 9)" in out
    assert "Grade of plant grade-cli for 2026-03-10 (plant-local)" in out
    assert "Scored window: 2025-03-01 to 2026-03-01 (end excluded)" in out
    lines = out.splitlines()
    air = next(
        x for x in lines if x.strip().startswith("emissions.air.multiple_of_c") and "up to" in x
    )
    assert "no data" in air and "up to 120.00 points: no rollup of window 2025-03/P12M" in air
    assert any(
        x.split()[:1] == [SYSTEMS] and "valid until 2026-04-18 (40 day(s) left): holds 27.00" in x
        for x in lines
    )
    assert "Gap to level 3" in out and "546.00 points" in out  # 600 − 54

    assert _grade(cfg, stack, "--as-of", DAY.isoformat(), "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["f"] == 54.0 and doc["window"] == {"start": "2025-03-01", "end": "2026-03-01"}
    assert doc["expiring"] == [
        {"row": SYSTEMS, "valid_until": "2026-04-18", "days_left": 40, "points": 27.0}
    ]
    assert len(doc["rows"]) == 68 and doc["gap"]["next_grade"]["level"] == 3

    other = (DAY + dt.timedelta(days=1)).isoformat()
    assert _grade(cfg, stack, "--as-of", other) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert captured.out == "" and len(err) == 1
    assert err[0] == (
        "error: no grade of plant grade-cli is stored for 2026-03-11: run `greenfoundry "
        "metrics run` (it grades every day), or add --compute to compute it now"
    )

    # --compute grades the day now and prints what it stored (the same F: nothing changed but
    # one day less of the declaration).
    assert _grade(cfg, stack, "--as-of", other, "--compute") == 0
    out = capsys.readouterr().out
    assert "F = Σ fi × Li = 54.00" in out and "(39 day(s) left)" in out
    assert rolling.read_grade(store_for_metrics(cfg), cfg, DAY + dt.timedelta(days=1))


def test_the_gap_plan_and_the_rows_are_printed_as_the_scorer_has_them(tmp_path, stack, capsys):
    cfg = plant(tmp_path, stack, "grade-cli-plan")
    st = store(stack)
    write_c1(st, cfg, DAY, 150.0)
    write_air(st, cfg, DAY, 0.5)
    # The demo plant's declarations (all valid through 2026) under this plant's id, and the
    # example's measured values the metrics have no rollup for here, declared, so that F is
    # high enough for a plan to reach the next level.
    demo = yaml.safe_load((REPO / "config/plants/demo-dip/evidence.yaml").read_text())
    example = yaml.safe_load((REPO / "config/plants/demo-dip/indicators.example.yaml").read_text())
    rows = dict(demo["rows"])
    for rid, m in example["rows"].items():
        if rid not in ("energy.liquid_iron.energy_per_t", "emissions.air.multiple_of_c"):
            rows[rid] = declaration(m["value"], dt.date(2026, 12, 31))
            if "context" in m:
                rows[rid]["context"] = m["context"]
    write_evidence(cfg, rows)
    graded = compute.compute(cfg, DAY)
    rolling.write_grade(store_for_metrics(cfg), cfg, graded)
    assert _grade(cfg, stack, "--as-of", DAY.isoformat()) == 0
    out = capsys.readouterr().out
    # The scorer on the same document and the same evidence (a cross-check, not a copy: the
    # CLI reads what InfluxDB holds, not the result object).
    result = scorer.score(
        load_standard(),
        cfg,
        parse_indicators(graded.indicators, "doc"),
        compute.load_plant_evidence(cfg),
        scorer.Options(as_of=DAY),
    )
    assert f"F = Σ fi × Li = {float(result.f):.2f} / 1000" in out
    plan = result.gap.plan
    assert plan, "the demo's declarations leave a plan to the next level"
    lines = out.splitlines()
    start = next(i for i, x in enumerate(lines) if "Least change:" in x)
    printed = [x.split()[0] for x in lines[start + 1 : start + 1 + len(plan)]]
    assert printed == [m.row_id for m in plan]
    assert f"Least change: {len(plan)} row(s)" in lines[start]
    for r in result.rows:  # every row with its status and points, as stored
        line = next(x for x in lines if x.split()[:1] == [r.row_id] and " / " in x)
        assert f"{float(r.points):.2f} / {float(r.points_max):.2f}" in line
