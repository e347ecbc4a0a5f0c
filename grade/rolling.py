"""The rolling grade in InfluxDB: one grade per plant-local day, so F has a history.

Three measurements (schema in grade/README.md), every point stamped with the plant-local
midnight that starts the day graded, in UTC ns:

* ``gf_grade`` (tag ``plant``): F, the level, the gap, row counts by status, the window scored;
* ``gf_grade_indicator`` (tags ``plant``, ``indicator``: a first-level indicator of Table 1);
* ``gf_grade_row`` (tags ``plant``, ``row``: a third-level row of the standard).

Recomputing a day writes the same points (same series, same timestamp; the same inputs give
the same fields, ``computed_at_ns`` aside). InfluxDB merges the fields of a point written twice,
so a field a recompute leaves out (a row that had a value and now has none) would keep its old
value: every point therefore carries ``fields_written``, the names of the fields of its last
write, and ``read_grade`` keeps only those. On InfluxDB 1.x the day's old points are also
deleted first, so other readers (a dashboard) see no stale field either; 2.x and 3 take no
DELETE through /query, and there ``status`` and ``fields_written`` tell. Written as the metrics
role (it may write and delete), read as the reader role.

``run_due(cfg, now)`` is what the metrics service calls once a day and at start: it grades
every day after the newest stored grade up to today (at most the last ``MAX_DAYS``; a plant
with no grade yet gets today's), and today again on every call, so a late reading or a
recomputed rollup reaches today's grade. A day that cannot be graded (an input refused, the
plant's facts not yet declared that day) is logged and counted, never fatal to the others.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pandas as pd

from greenfoundry.errors import GreenfoundryError, InputError, StoreError
from greenfoundry.grade import compute as comp
from greenfoundry.metrics import indicators as metrics_indicators
from greenfoundry.metrics import schema as metrics_schema
from greenfoundry.metrics import source
from greenfoundry.scoring import scorer
from greenfoundry.scoring.standard import load_standard
from greenfoundry.store import line, where

log = logging.getLogger("greenfoundry.grade")

GRADE = "gf_grade"
# Every point names the fields it was written with: a reader keeps only those (module docstring).
WRITTEN = "fields_written"
INDICATOR = "gf_grade_indicator"
ROW = "gf_grade_row"
MEASUREMENTS = (GRADE, INDICATOR, ROW)
# run_due grades at most this many days back: a service down for longer resumes with the last
# month, not with a backlog that would delay today's grade.
MAX_DAYS = 31
# How far back run_due looks for the newest stored grade (every query is bounded in time).
LOOKBACK_DAYS = 3660
_DAY_NS = 24 * 3600 * 10**9

# The rows `metrics indicators` can fill; any other measured row has to be declared.
METRICS_ROWS = frozenset(
    {metrics_indicators.C1_ROW, metrics_indicators.AIR_ROW, metrics_indicators.OUTPUT_ROW}
    | {row for (_m, _f, _u, row) in metrics_schema.PLANT_INDICATORS.values() if row}
)


@dataclass(frozen=True)
class DueRun:
    """What one ``run_due`` did: the days graded and stored, and the days that failed with
    why (the one line the library error says)."""

    days: tuple[dt.date, ...]
    failed: tuple[tuple[dt.date, str], ...] = ()


# --------------------------------------------------------------------------- points


def _num(x: Fraction | float | None) -> float | None:
    return None if x is None else float(x)


def _compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _row_notes(notes: tuple[str, ...], row_id: str) -> list[str]:
    """What `metrics indicators` said about a row (its notes start ``<row id>: ``)."""
    head = f"{row_id}: "
    return [n[len(head) :] for n in notes if n.startswith(head)]


def missing_text(standard, r: scorer.RowScore, notes: tuple[str, ...], window: dict) -> str | None:
    """What a row that scores nothing only for want of data lacks, for the person who can
    provide it; None for the other statuses."""
    if r.status not in scorer.MISSING_DATA_STATUSES:
        return None
    said = _row_notes(notes, r.row_id)
    if r.status == scorer.STATUS_EVIDENCE_EXPIRED:
        return f"{r.reason}; renew the declaration in evidence.yaml"
    if r.status == scorer.STATUS_LOW_COVERAGE:
        return "; ".join([r.reason, *said])
    if r.source is not None:  # declared after the day graded
        return r.reason
    if said:
        return "; ".join(said)
    span = f"{window['start']} to {window['end']} (end excluded)"
    if r.row_id in METRICS_ROWS:
        return (
            f"no rollup of {span}: the plant config maps no input for it, or the metrics have "
            "not computed the window (`greenfoundry metrics backfill`)"
        )
    if standard.rows[r.row_id].kind == "measured":
        return "the metrics do not compute this row; declare its value in evidence.yaml"
    return "not declared in evidence.yaml"


def _value_fields(value: Any) -> dict[str, Any]:
    """A row's value: ``value`` (float) for a number, ``value_text`` for a level or yes/no, so
    neither field ever changes type."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"value_text": "yes" if value else "no"}
    if isinstance(value, (int, float, Fraction)):
        return {"value": float(value)}
    return {"value_text": str(value)}


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields with a value, and ``fields_written`` naming them (module docstring)."""
    out = {k: v for k, v in fields.items() if v is not None}
    out[WRITTEN] = ",".join(sorted(out))
    return out


def grade_lines(graded: comp.Graded, tz: str, computed_at_ns: int) -> list[str]:
    """The line protocol of one day's grade (module docstring; grade/README.md)."""
    res = graded.result
    ts = int(comp.day_start(graded.as_of, tz).value)
    plant = graded.plant
    std = res.standard
    gap = scorer.result_to_dict(res)["gap"]
    counts = {status: 0 for status in scorer.STATUSES}
    for r in res.rows:
        counts[r.status] += 1
    expiring = {e["row"]: e for e in graded.expiring}
    grade = res.grade
    out = [
        line(
            GRADE,
            {"plant": plant},
            _clean(
                {
                    "f": float(res.f),
                    "f_exact": str(res.f),
                    "level": None if grade is None else int(grade.level),
                    "level_name": "not rated (F < 600, Table 9)"
                    if grade is None
                    else f"{grade.name_zh} ({grade.name_en})",
                    "next_level": None if gap["next_grade"] is None else gap["next_grade"]["level"],
                    "points_to_next": _num(res.gap.deficit),
                    "rows_scored": counts[scorer.STATUS_SCORED],
                    "rows_no_data": counts[scorer.STATUS_NO_DATA],
                    "rows_low_coverage": counts[scorer.STATUS_LOW_COVERAGE],
                    "rows_evidence_expired": counts[scorer.STATUS_EVIDENCE_EXPIRED],
                    "rows_not_applicable": counts[scorer.STATUS_NOT_APPLICABLE],
                    "rows_not_covered": counts[scorer.STATUS_NOT_COVERED],
                    "expiring_rows": len(graded.expiring),
                    "expiring": _compact(list(graded.expiring)),
                    "window_start": graded.window["start"],
                    "window_end": graded.window["end"],
                    "as_of": graded.as_of.isoformat(),
                    "standard": std.id,
                    "li_policy": res.options.li_mode,
                    "min_coverage": float(res.options.min_coverage),
                    "notes": _compact(list(graded.notes)),
                    "gap_plan": _compact(gap),
                    "computed_at_ns": int(computed_at_ns),
                }
            ),
            ts,
        )
    ]
    for group, points, maximum in res.group_points():
        out.append(
            line(
                INDICATOR,
                {"plant": plant, "indicator": group.id},
                _clean(
                    {
                        "points": float(points),
                        "max_points": float(maximum),
                        "no": int(group.no),
                        "name_zh": group.name_zh,
                        "name_en": group.name_en,
                    }
                ),
                ts,
            )
        )
    for r in res.rows:
        d = r.declaration
        e = expiring.get(r.row_id)
        holds = d is not None and not d.expired(graded.as_of)
        holds = holds and not d.not_yet_declared(graded.as_of)
        fields = {
            "group": r.group_id,
            "status": r.status,
            **_value_fields(r.value),
            "unit": r.unit,
            "tier": r.tier,
            "would_be_tier": r.would_be_tier,
            "li": _num(r.li),
            "points": float(r.points),
            "max_points": float(r.points_max),
            "coverage": _num(r.coverage),
            "source": r.source or "none",
            "reason": r.reason,
            "missing": missing_text(std, r, graded.notes, graded.window),
            "notes": "; ".join(_row_notes(graded.notes, r.row_id)) or None,
            "window_start": r.window.start.isoformat() if r.window else None,
            "window_end": r.window.end.isoformat() if r.window else None,
            "evidence_valid_until": d.valid_until.isoformat() if d else None,
            "expires_in_days": (d.valid_until - graded.as_of).days + 1 if holds else None,
            "expiring": e is not None,
        }
        out.append(line(ROW, {"plant": plant, "row": r.row_id}, _clean(fields), ts))
    return out


def _day_span(cfg, day: dt.date) -> dict[str, int]:
    start = int(comp.day_start(day, cfg.plant.timezone).value)
    return {"start_ns": start, "end_ns": start + 1}


def write_grade(store, cfg, graded: comp.Graded, *, computed_at_ns: int | None = None) -> int:
    """Replace the stored grade of ``graded.as_of`` with ``graded``; the number of points."""
    if graded.plant != cfg.plant.id:
        raise InputError(f"a grade of plant {graded.plant!r} cannot be stored as {cfg.plant.id!r}")
    global _delete_refused
    lines = grade_lines(graded, cfg.plant.timezone, computed_at_ns or time.time_ns())
    clause = where({"plant": cfg.plant.id}, **_day_span(cfg, graded.as_of))
    try:
        store.query_raw("; ".join(f"DELETE FROM {m} {clause}" for m in MEASUREMENTS))
    except StoreError as exc:
        # InfluxDB 2.x and 3 take no DELETE through /query (2.x deletes through its own API).
        # The new points still replace every field they write, and `fields_written` tells a
        # reader which are current; say so once.
        if not _delete_refused:
            log.info("grade: InfluxDB refused the DELETE of a day's old grade (%s); "
                     "readers rely on fields_written", exc)  # fmt: skip
        _delete_refused = True
    store.write_lines(lines)
    return len(lines)


_delete_refused = False


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class StoredGrade:
    """One stored day: the ``gf_grade`` fields (its JSON texts decoded), the first-level
    indicators in table order and the rows in the standard's order."""

    plant: str
    as_of: dt.date
    grade: dict
    indicators: tuple[dict, ...]
    rows: tuple[dict, ...]

    def to_dict(self) -> dict[str, Any]:
        g = self.grade
        return {
            "schema": "greenfoundry.grade/1",
            "plant": self.plant,
            "as_of": self.as_of.isoformat(),
            "window": {"start": g.get("window_start"), "end": g.get("window_end")},
            "standard": g.get("standard"),
            "f": g.get("f"),
            "f_exact": g.get("f_exact"),
            "level": g.get("level"),
            "level_name": g.get("level_name"),
            "next_level": g.get("next_level"),
            "points_to_next": g.get("points_to_next"),
            "status_counts": {s: g.get(f"rows_{s}", 0) for s in scorer.STATUSES},
            "li_policy": g.get("li_policy"),
            "min_coverage": g.get("min_coverage"),
            "computed_at_ns": g.get("computed_at_ns"),
            "indicators": list(self.indicators),
            "rows": list(self.rows),
            "expiring": g.get("expiring", []),
            "gap": g.get("gap_plan"),
            "notes": g.get("notes", []),
        }


def _records(store, measurement: str, tags: dict, span: dict) -> list[dict]:
    """The points' fields, only those their last write named (and their tags)."""
    df = store.query(f"SELECT * FROM {measurement} {where(tags, **span)}")
    out = []
    for rec in [] if df.empty else df.to_dict("records"):
        written = set(str(rec.get(WRITTEN) or "").split(","))
        keep = written | {"plant", "row", "indicator"}
        out.append(
            {
                k: (int(v) if k in _INT_FIELDS else v)
                for k, v in rec.items()
                if k in keep and v is not None and not (isinstance(v, float) and v != v)
            }
        )
    return out


# Integer fields a DataFrame may hand back as floats (a column with gaps is float in pandas).
_INT_FIELDS = frozenset(
    {"level", "next_level", "tier", "would_be_tier", "expires_in_days", "no", "computed_at_ns"}
    | {f"rows_{s}" for s in scorer.STATUSES}
    | {"expiring_rows"}
)


def read_grade(store, cfg, as_of: dt.date) -> StoredGrade | None:
    """The stored grade of the plant-local day ``as_of``, or None when none is stored."""
    span = _day_span(cfg, as_of)
    tags = {"plant": cfg.plant.id}
    head = _records(store, GRADE, tags, span)
    if not head:
        return None
    grade = head[0]
    for key in ("expiring", "notes", "gap_plan"):
        if key in grade:
            grade[key] = json.loads(grade[key])
    indicators = sorted(_records(store, INDICATOR, tags, span), key=lambda r: r.get("no", 0))
    rows = _records(store, ROW, tags, span)
    try:
        order = {rid: i for i, rid in enumerate(load_standard(grade.get("standard")).rows)}
    except GreenfoundryError:  # a standard file no longer at hand: the ids' order will do
        order = {}
    rows.sort(key=lambda r: (order.get(r["row"], len(order)), r["row"]))
    return StoredGrade(cfg.plant.id, as_of, grade, tuple(indicators), tuple(rows))


def newest_stored(store, cfg, today: dt.date) -> dt.date | None:
    """The newest plant-local day with a stored grade, looking back ``LOOKBACK_DAYS``."""
    tz = cfg.plant.timezone
    end = int(comp.day_start(today, tz).value) + 2 * _DAY_NS
    span = {"start_ns": end - LOOKBACK_DAYS * _DAY_NS, "end_ns": end}
    df = store.query(f'SELECT LAST("f") FROM {GRADE} {where({"plant": cfg.plant.id}, **span)}')
    if df.empty:
        return None
    return df["time"].iloc[0].tz_convert(tz).date()


def due_days(newest: dt.date | None, today: dt.date) -> list[dt.date]:
    """The days ``run_due`` grades: after ``newest`` up to ``today``, at most ``MAX_DAYS``, and
    always today (module docstring)."""
    first = today if newest is None else max(min(newest + dt.timedelta(days=1), today),
                                             today - dt.timedelta(days=MAX_DAYS - 1))  # fmt: skip
    return [first + dt.timedelta(days=i) for i in range((today - first).days + 1)]


def _today(cfg, now: dt.datetime) -> dt.date:
    if now.tzinfo is None:
        raise ValueError("run_due: `now` is a tz-aware instant (UTC), not a naive datetime")
    return pd.Timestamp(now).tz_convert(cfg.plant.timezone).date()


def run_due(cfg, now: dt.datetime, *, store=None, stop=None) -> DueRun:
    """Grade and store every due day of the plant (module docstring); ``now`` is a tz-aware
    instant, ``store`` defaults to the metrics role's. ``stop`` (a ``threading.Event``, the
    service's) ends the catch-up after the day in progress; the days left are graded at the
    next call."""
    store = store or source.store_for_metrics(cfg)
    today = _today(cfg, now)
    try:
        days = due_days(newest_stored(store, cfg, today), today)
    except GreenfoundryError as exc:  # InfluxDB unreachable: the next call tries again
        log.warning("grade of %s: %s", cfg.plant.id, exc)
        return DueRun((), ((today, str(exc)),))
    try:
        standard = load_standard(None)
        evidence = comp.load_plant_evidence(cfg)
    except GreenfoundryError as exc:
        log.warning("grade of %s: %s", cfg.plant.id, exc)
        return DueRun((), tuple((d, str(exc)) for d in days))
    done, failed = [], []
    for day in days:
        if stop is not None and stop.is_set():
            break
        try:
            graded = comp.compute(cfg, day, store=store, standard=standard, evidence=evidence)
            write_grade(store, cfg, graded)
        except GreenfoundryError as exc:
            log.warning("grade of %s for %s: %s", cfg.plant.id, day, exc)
            failed.append((day, str(exc)))
            continue
        done.append(day)
    return DueRun(tuple(done), tuple(failed))
