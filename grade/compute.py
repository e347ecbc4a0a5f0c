"""The grade of one plant-local day: the metrics' indicators plus the declared evidence, scored.

Which months a day's grade takes (grade/README.md, "Which window"): the grade of day D scores
the latest complete trailing 12 months before D's month (``metrics.windows.latest_complete(
"trailing_12m", <D's local midnight>)``, label ``YYYY-MM/P12M``), the window the metrics compose
from complete plant-local months. A month that has not ended is never scored, so every day of a
month scores the same twelve months, and the grade changes on the 1st as a month closes, and on
any other day only because the data behind it changed (a late reading, a recomputed rollup) or a
declaration expired. The three-year row (``scale.output.annual_output``, decision D-three-years:
the mean of the latest three calendar years) takes the latest three complete calendar years at
the end of the scored window, the same years the year window of ``metrics indicators`` gives.

Evidence is the ``evidence.yaml`` beside the plant config (``scoring.cli.evidence_path``),
validated as ``greenfoundry score`` validates it, and evaluated as of D: a declaration whose
``valid_until`` is before D is expired and scores nothing. A declaration whose last valid day is
within the next 60 days (``EXPIRING_DAYS``) is listed in ``Graded.expiring`` with the points it
holds today. A row both declared and computed by the metrics is scored from its declaration,
with a note: the scorer takes a row from one file only, and where `greenfoundry score` refuses
such a pair of files, a daily grade must not stop.

Public API: ``Graded``, ``indicators_for``, ``compute``, ``compute_window``, ``day_start``,
``window_for_day``, ``EXPIRING_DAYS``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from greenfoundry.errors import UsageError
from greenfoundry.metrics import indicators as metrics_indicators
from greenfoundry.metrics import source
from greenfoundry.metrics import windows as win
from greenfoundry.scoring import scorer
from greenfoundry.scoring.cli import evidence_path
from greenfoundry.scoring.evidence import Evidence, load_evidence
from greenfoundry.scoring.indicators import parse_indicators
from greenfoundry.scoring.standard import Standard, load_standard

OUTPUT_ROW = metrics_indicators.OUTPUT_ROW
# A declaration is flagged while it has at most this many days left (issue 9).
EXPIRING_DAYS = 60


@dataclass(frozen=True)
class Graded:
    plant: str
    as_of: dt.date  # the plant-local day the grade is for
    window: dict  # {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"} of the scored months (end excl.)
    indicators: dict  # the indicators document scored (metrics.indicators format)
    notes: tuple[str, ...]  # what indicators_file said (rows left out and why)
    result: scorer.ScoreResult
    expiring: tuple[dict, ...]  # {"row", "valid_until", "days_left", "points"} within 60 days


def day_start(as_of: dt.date, tz: str) -> pd.Timestamp:
    """The plant-local midnight that starts ``as_of``, in UTC (the day's window start: a
    midnight that falls in a DST gap starts at the first instant after it, metrics.windows)."""
    return win.calendar_window(as_of.isoformat(), tz).start


def window_for_day(as_of: dt.date, tz: str) -> win.Window:
    """The trailing 12 complete months the grade of ``as_of`` scores (module docstring)."""
    return win.latest_complete("trailing_12m", day_start(as_of, tz), tz)


def _three_year_row(cfg, end: pd.Timestamp, *, store) -> tuple[dict | None, list[str]]:
    """The three-year row of the latest complete calendar year at ``end`` (its rows and notes
    from `metrics.indicators` for that year; only the three-year row is kept)."""
    tz = cfg.plant.timezone
    year = win.latest_complete("year", end, tz)
    label = f"{year.local_start:%Y}"
    doc, notes = metrics_indicators.indicators_file(cfg, label, store=store)
    mine = [n for n in notes if n.startswith(OUTPUT_ROW)]
    row = doc["rows"].get(OUTPUT_ROW)
    if row is None and not mine:
        mine.append(
            f"{OUTPUT_ROW}: no output rollup of the year {label} yet (the row takes the mean of "
            f"{int(label) - 2}–{label}, decision D-three-years); left out"
        )
    return row, mine


def _document(cfg, label: str, now_s: float | None, *, store) -> tuple[dict, list[str]]:
    doc, notes = metrics_indicators.indicators_file(cfg, label, store=store, now_s=now_s)
    notes = list(notes)
    if OUTPUT_ROW not in doc["rows"] and not any(n.startswith(OUTPUT_ROW) for n in notes):
        end = pd.Timestamp(doc["window"]["end"]).tz_localize(cfg.plant.timezone)
        row, more = _three_year_row(cfg, end, store=store)
        if row is not None:
            doc["rows"][OUTPUT_ROW] = row
        notes.extend(more)
    return doc, notes


def indicators_for(cfg, as_of: dt.date, *, store) -> tuple[dict, list[str]]:
    """(the indicators document, notes) the grade of ``as_of`` scores: the trailing 12 complete
    months before ``as_of``'s month, and the three-year row of the latest three complete
    calendar years before that window's end."""
    start = day_start(as_of, cfg.plant.timezone)
    return _document(cfg, "trailing-12m", start.value / 1e9, store=store)


def _standard(standard) -> Standard:
    return standard if isinstance(standard, Standard) else load_standard(standard)


def load_plant_evidence(cfg) -> Evidence:
    """The ``evidence.yaml`` beside the plant config, validated as `greenfoundry score` does."""
    return load_evidence(evidence_path(cfg.path, None))


def expiring(result: scorer.ScoreResult, evidence: Evidence, as_of: dt.date) -> tuple[dict, ...]:
    """Declarations that still hold on ``as_of`` and stop holding within ``EXPIRING_DAYS``.

    ``days_left`` counts the days from ``as_of`` on which the declaration still holds, ``as_of``
    included: 1 when ``valid_until`` is ``as_of`` (today is its last day), 60 when it is 59 days
    later. ``points`` (a float) are what the row scores today and loses when it expires."""
    out = []
    for r in result.rows:
        d = r.declaration
        if d is None or d.expired(as_of) or d.not_yet_declared(as_of):
            continue
        days_left = (d.valid_until - as_of).days + 1
        if days_left <= EXPIRING_DAYS:
            out.append(
                {
                    "row": r.row_id,
                    "valid_until": d.valid_until.isoformat(),
                    "days_left": days_left,
                    "points": float(r.points),
                }
            )
    return tuple(sorted(out, key=lambda e: (e["days_left"], e["row"])))


def _grade(cfg, as_of, doc, notes, *, standard, evidence) -> Graded:
    std = _standard(standard)
    ev = evidence if evidence is not None else load_plant_evidence(cfg)
    notes = list(notes)
    for rid in [r for r in doc["rows"] if r in ev.rows]:
        # The scorer takes each row from one file only. A row the plant declares (an audited
        # figure, or a value the metrics cannot compute yet) keeps its declaration: editing
        # evidence.yaml is how a plant moves a row to the metrics' value.
        m = doc["rows"].pop(rid)
        notes.append(
            f"{rid}: declared in {ev.source}, which is scored; the metrics' value "
            f"{m['value']:g} {m.get('unit', '')} is not (remove the declaration to score it)"
        )
    source_name = (
        f"indicators of {cfg.plant.id} for {doc['window']['start']}–{doc['window']['end']}"
    )
    indicators = parse_indicators(doc, source_name)
    result = scorer.score(std, cfg, indicators, ev, scorer.Options(as_of=as_of))
    return Graded(
        plant=cfg.plant.id,
        as_of=as_of,
        window=dict(doc["window"]),
        indicators=doc,
        notes=tuple(notes),
        result=result,
        expiring=expiring(result, ev, as_of),
    )


def compute(cfg, as_of: dt.date, *, store=None, standard=None, evidence=None) -> Graded:
    """The grade of the plant-local day ``as_of`` (module docstring). ``store`` defaults to the
    metrics role's; ``standard`` is a `Standard`, an id or a path (default the shipped one);
    ``evidence`` an `Evidence` (default the evidence.yaml beside the plant config)."""
    store = store or source.store_for_metrics(cfg)
    doc, notes = indicators_for(cfg, as_of, store=store)
    return _grade(cfg, as_of, doc, notes, standard=standard, evidence=evidence)


def compute_window(
    cfg, label: str, as_of: dt.date, *, store=None, standard=None, evidence=None
) -> Graded:
    """The grade of a calendar month ``YYYY-MM``, a calendar year ``YYYY`` or the trailing 12
    months ``YYYY-MM/P12M`` (labelled by their first month), evaluated as of ``as_of`` (the
    evidence's date; it must not be before the window's end). The three-year row takes the
    latest three complete calendar years at the window's end."""
    store = store or source.store_for_metrics(cfg)
    if label.endswith("/P12M"):
        try:
            first = win.calendar_window(label[: -len("/P12M")], cfg.plant.timezone)
        except ValueError:
            first = None
        if first is None or first.kind != "month":
            raise UsageError(
                f"window {label!r} is not allowed; expected YYYY, YYYY-MM or YYYY-MM/P12M"
            )
        # The trailing window starting with that month ends 12 months later; it is the latest
        # complete one at its own end.
        end = pd.Timestamp(first.local_start) + pd.DateOffset(months=12)
        doc, notes = _document(cfg, "trailing-12m", end.value / 1e9, store=store)
    else:
        doc, notes = _document(cfg, label, None, store=store)
    return _grade(cfg, as_of, doc, notes, standard=standard, evidence=evidence)
