"""Every decision the metrics cite is one the standard's data file records.

A decision id in a docstring, a message, a point's `decision` field or the metrics README is a
reference a reader follows with `greenfoundry standard show`; an id the file does not have is a
dead end (the air points said `D-c6-window` for the file's `D-t6-window`, and `D-a1-dn` was
recorded nowhere). The ids are read from the sources as text, so a new citation is checked too.
"""

from __future__ import annotations

import re
from pathlib import Path

from greenfoundry.errors import InputError
from greenfoundry.scoring.standard import load_standard

REPO = Path(__file__).resolve().parents[2]
# A decision id: "D-" and words of lower-case letters and digits joined by "-", not ending on
# one (the README's "D-t6-water-" is a prefix in prose: "D-t6-water-period, -valid, …").
DECISION = re.compile(r"\bD-[a-z0-9]+(?:-[a-z0-9]+)*\b(?!-)")


def _cited() -> dict[str, set[str]]:
    files = [*sorted((REPO / "metrics").glob("*.py")), REPO / "metrics" / "README.md"]
    out: dict[str, set[str]] = {}
    for f in files:
        for m in DECISION.finditer(f.read_text(encoding="utf-8")):
            out.setdefault(m.group(0), set()).add(f.name)
    return out


def test_the_pattern_finds_the_ids_it_must_and_no_prose_prefix():
    text = "D-t6-window, (D-a1-dn) and D-t6-water-period; the D-t6-noise- rows"
    assert [m.group(0) for m in DECISION.finditer(text)] == [
        "D-t6-window",
        "D-a1-dn",
        "D-t6-water-period",
    ]


def test_every_decision_the_metrics_cite_is_in_the_standard():
    standard = load_standard()
    cited = _cited()
    assert {"D-t6-window", "D-c1-plant", "D-a1-dn"} <= set(cited)  # the scan reads the files
    unknown = {}
    for did, where in sorted(cited.items()):
        try:
            standard.decision(did)
        except InputError:
            unknown[did] = sorted(where)
    assert not unknown, f"decisions cited by the metrics but not in the standard: {unknown}"
