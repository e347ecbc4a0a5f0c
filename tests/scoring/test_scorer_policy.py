"""The Li policy (floor or interpolate) and the least-change search, by hand.

Interpolation (scoring/scorer.py, docs/score-json-schema.md): inside tier 2 or 3 Li rises
linearly from the tier's floor at its threshold to the next tier's floor at the next threshold;
inside tier 1 from 0.90 to 1.00 at the best value where the data defines one. The demo plant's
values are those of config/plants/demo-dip.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from fractions import Fraction

import pytest

from greenfoundry.scoring import scorer
from greenfoundry.scoring.standard import Tier, load_standard
from tests.scoring.rows import demo_inputs

F = Fraction


@pytest.fixture(scope="module")
def interpolated():
    return scorer.score(
        load_standard(),
        *demo_inputs(),
        scorer.Options(as_of=dt.date(2026, 3, 31), li_mode="interpolate"),
    )


@pytest.mark.parametrize(
    ("row_id", "li"),
    [
        # 108.4 kgce/t, tier 2 (≤120), next ≤100: 0.75 + 0.15 × (120 − 108.4) / 20 = 0.837
        ("energy.pipe.kgce_per_t", F("0.837")),
        # 7.2 % scrap, tier 2 (≤8), next ≤6: 0.75 + 0.15 × (8 − 7.2) / 2 = 0.81
        ("techeco.scrap.scrap_rate", F("0.81")),
        # power factor 0.93, tier 2 (≥0.92), next ≥0.95: 0.75 + 0.15 × 0.01 / 0.03 = 0.80
        ("energy.power_factor.power_factor", F("0.80")),
        # health checks 97 %, tier 1 (≥95), best 100 %: 0.90 + 0.10 × 2 / 5 = 0.94
        ("ohs.occupational_disease.health_check_completion", F("0.94")),
        # hazard monitoring 100 %, tier 1 (≥98), at the best value: 1.00
        ("ohs.occupational_disease.hazard_monitoring", F(1)),
        # 520 t/person, tier 1: a count of tonnes has no best value, so the floor 0.90
        ("techeco.productivity.tonnes_per_person", F("0.9")),
        # 9 melting items, exactly tier 3's threshold: 0.60
        ("process.melting.checklist", F("0.6")),
        # level rows keep the floor: standardisation level 2 → 0.75
        ("ohs.safety_standardisation.level", F("0.75")),
        # below tier 3 stays 0 (reclaimed water 4.1 % < 5 %)
        ("energy.water.reclaimed_share", F(0)),
    ],
)
def test_interpolated_li_by_hand(interpolated, row_id, li):
    assert interpolated.row(row_id).li == li


def test_interpolation_never_scores_below_the_floor(interpolated):
    floor = {1: F("0.9"), 2: F("0.75"), 3: F("0.6"), None: F(0)}
    for r in interpolated.rows:
        assert floor[r.tier] <= r.li <= 1
    assert interpolated.f > F("756.6")  # the floor F of the same plant


# --- the least-change search on hand-made candidates ------------------------------------------


def move(row_id, points, rel, to_tier=1, from_tier=2):
    target = Tier(to_tier, "≥", 1, "≥1")
    return scorer.Move(row_id, from_tier, to_tier, target, 0, F(rel), F(points))


def test_fewest_rows_come_before_the_smallest_change():
    # Deficit 10: "big" alone adds 12 at relative change 0.5; "a" + "b" add 5 + 5 at 0.01 each.
    # One row beats two, however small their change.
    moves = {
        "big": [move("big", 12, "0.5")],
        "a": [move("a", 5, "0.01")],
        "b": [move("b", 5, "0.01")],
    }
    plan, exact = scorer.least_change_plan(moves, F(10))
    assert [m.row_id for m in plan] == ["big"] and exact


def test_among_plans_with_as_few_rows_the_smallest_change_wins():
    # Deficit 6: x→tier 2 (+6, change 0.2), x→tier 1 (+9, change 0.4), y (+7, change 0.1).
    # All single rows; y has the smallest relative change.
    moves = {
        "x": [
            move("x", 6, "0.2", to_tier=2, from_tier=3),
            move("x", 9, "0.4", to_tier=1, from_tier=3),
        ],
        "y": [move("y", 7, "0.1")],
    }
    plan, _ = scorer.least_change_plan(moves, F(6))
    assert [(m.row_id, m.to_tier) for m in plan] == [("y", 1)]
    # With deficit 8, y (+7) no longer suffices alone: x must go to tier 1 (+9).
    plan, _ = scorer.least_change_plan(moves, F(8))
    assert [(m.row_id, m.to_tier) for m in plan] == [("x", 1)]


def test_two_rows_when_no_single_row_suffices_and_none_when_nothing_does():
    moves = {"a": [move("a", 4, "0.3")], "b": [move("b", 4, "0.1")], "c": [move("c", 3, "0.05")]}
    # Deficit 7: one row gives at most 4. Pairs: a+b (8, 0.4), a+c (7, 0.35), b+c (7, 0.15).
    plan, _ = scorer.least_change_plan(moves, F(7))
    assert sorted(m.row_id for m in plan) == ["b", "c"]
    # Deficit 12: all three give 11 < 12.
    assert scorer.least_change_plan(moves, F(12)) == (None, True)


def _brute_force(moves, deficit):
    """Every choice of at most one move per row, ranked by the documented order."""
    rows = sorted(moves)
    best = None
    for choice in itertools.product(*[[None, *moves[r]] for r in rows]):
        plan = [m for m in choice if m is not None]
        gain = sum((m.points_added for m in plan), F(0))
        if not plan or gain < deficit:
            continue
        rel = sum((m.relative_change for m in plan), F(0))
        key = (len(plan), rel, -gain, tuple(sorted(m.row_id for m in plan)))
        if best is None or key < best:
            best = key
    return best


@pytest.mark.parametrize("seed", range(25))
def test_the_search_agrees_with_brute_force(seed):
    rng = random.Random(seed)
    moves = {}
    for i in range(7):
        rid = f"r{i}"
        fi = rng.choice([2, 5, 10, 20, 30, 60])
        n = rng.randint(1, 3)
        moves[rid] = [
            move(rid, F(fi) * F(rng.randint(1, 18), 20), F(rng.randint(1, 60), 100), to_tier=t)
            for t in range(1, n + 1)
        ]
    total = sum(max(m.points_added for m in v) for v in moves.values())
    deficit = F(rng.randint(1, int(total) + 5))
    plan, exact = scorer.least_change_plan(moves, deficit)
    expected = _brute_force(moves, deficit)
    if expected is None:
        assert plan is None
        return
    gain = sum((m.points_added for m in plan), F(0))
    rel = sum((m.relative_change for m in plan), F(0))
    assert exact
    assert (len(plan), rel, -gain, tuple(sorted(m.row_id for m in plan))) == expected
