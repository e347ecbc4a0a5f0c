"""The demo plant's example files say what they score: their comments and the score agree.

The example (config/plants/demo-dip: plant.yaml, evidence.yaml, indicators.example.yaml) states
F, the grade and a fixed evaluation date in its comments. Its declarations expire (2026-10-31,
2026-12-31), so only a fixed --as-of makes the statement true on any day. These tests read the
numbers from the comments, so a comment and the files can only change together. The F itself is
hand computed in test_scorer.py (756.6).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from greenfoundry.cli import main
from greenfoundry.scoring import scorer
from greenfoundry.scoring.evidence import load_evidence
from greenfoundry.scoring.indicators import load_indicators
from greenfoundry.scoring.standard import load_standard
from tests.scoring.rows import demo_inputs

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "plants" / "demo-dip"
INDICATORS = DEMO / "indicators.example.yaml"
EVIDENCE = DEMO / "evidence.yaml"


def comment(path) -> str:
    return "\n".join(
        line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    )


def stated(path) -> tuple[float, dt.date]:
    """F and the --as-of date a file's comment states."""
    text = comment(path)
    f = re.findall(r"F = (\d+(?:\.\d+)?)", text)
    as_of = re.findall(r"--as-of (\d{4}-\d{2}-\d{2})", text)
    assert len(set(f)) == 1, f"{path.name}: one F in its comment, found {f}"
    assert len(set(as_of)) == 1, f"{path.name}: one --as-of in its comment, found {as_of}"
    return float(f[0]), dt.date.fromisoformat(as_of[0])


def test_the_example_scores_what_its_comments_say(capsys):
    f, as_of = stated(INDICATORS)
    assert stated(EVIDENCE) == (f, as_of)  # both files state the same score and date
    level = re.search(r"level (\d)", comment(INDICATORS))
    # The command in the comment, as a user runs it.
    assert (
        main(
            [
                "score",
                "--config",
                str(DEMO / "plant.yaml"),
                "--indicators",
                str(INDICATORS),
                "--as-of",
                as_of.isoformat(),
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["f"] == pytest.approx(f, abs=0.005)  # the comment gives F to 0.1 point
    assert data["grade"]["level"] == int(level.group(1))
    # On the stated date every declaration holds: the example shows a complete plant.
    assert data["status_counts"]["evidence_expired"] == 0
    assert data["warnings"] == [] and data["assumptions"] == []


def test_a_later_day_scores_less_so_the_date_must_be_given():
    # The reason the comment fixes the date: on 2027-01-01 most declarations (valid until
    # 2026-12-31) have expired. This guards the comment's advice, not a number.
    _f, as_of = stated(INDICATORS)
    standard = load_standard()
    cfg, ind, ev = demo_inputs()
    later = dt.date(2027, 1, 1)
    expiring = [d for d in load_evidence(EVIDENCE).rows.values() if d.valid_until < later]
    assert expiring and all(d.valid_until >= as_of for d in expiring)
    at = scorer.score(standard, cfg, ind, ev, scorer.Options(as_of=as_of)).f
    after = scorer.score(standard, cfg, ind, ev, scorer.Options(as_of=later)).f
    assert after < at
    assert load_indicators(INDICATORS).window.end <= as_of
