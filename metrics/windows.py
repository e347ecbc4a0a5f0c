"""Plant-local windows: hours, shifts, days, calendar months, calendar years, trailing 12 months.

Every window is cut in the plant's time zone (``plant.timezone``), labelled by its START, and
held as a half-open interval ``[start, end)`` of tz-aware UTC ``pd.Timestamp`` (house style 5:
UTC in storage, plant-local for calendar grouping). Nothing here reads data: these are the
windows the metrics of ``counters``, ``events``, ``instantaneous`` and ``emissions`` fill.

DST rules (stated once, used everywhere):

* **Hours** are the intervals between consecutive instants at which the local clock shows a
  whole hour. In a zone with whole-hour offsets every hour is 60 minutes: the spring gap has no
  02:00 hour (Europe/Berlin, 2026-03-29: 01:00 CET is followed by 03:00 CEST), the autumn fold
  has two hours labelled 02:00, told apart by their offset (``2026-10-25T02:00+02:00`` and
  ``2026-10-25T02:00+01:00``).
* **Days, months, years and shifts** start at a local wall-clock time. A start that does not
  exist (it falls in the spring gap) begins at the first instant after the gap (a 02:00 shift on
  2026-03-29 in Berlin begins at 03:00 CEST = 01:00 UTC, so that shift is an hour short). A start
  that exists twice (the autumn fold) begins at its FIRST occurrence (02:00 CEST = 00:00 UTC on
  2026-10-25, so that shift is an hour long). The earlier of the two instants is taken, so a
  zone whose tz database marks winter as its DST (Europe/Dublin) follows the same rule. Hence a
  local day is 23, 24 or 25 hours long.
* If two shift starts fall on the same instant (both in one spring gap), the earlier shift has
  no length that day and is left out.
* **Trailing 12 months** ending with month M run from the start of month M-11 to the end of M,
  labelled by their start as ``YYYY-MM/P12M``.

Coverage is measured against a window's nominal length, ``window.minutes``: the minutes that
actually elapse in it (1380 for a 23-hour day), not 24 × 60.

Public API: ``Window``, ``Shift``, ``parse_shifts``, ``windows_covering``, ``window_containing``,
``parent_windows``, ``affected_windows``, ``latest_complete``, ``calendar_window``,
``nominal_minutes``, ``WINDOW_KINDS``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from greenfoundry.errors import ConfigError

WINDOW_KINDS = ("hour", "shift", "day", "month", "year", "trailing_12m")
# The calendar hierarchy: each kind lies whole inside one window of every kind after it.
HIERARCHY = ("hour", "day", "month", "year")

_NS_PER_MIN = 60 * 10**9
_ONE_NS = pd.Timedelta(1, "ns")


@dataclass(frozen=True)
class Shift:
    """One shift of the plant, by the local wall-clock time it starts; it ends where the next
    shift (cyclically) starts, so the last one of the day may cross midnight."""

    name: str
    start: dt.time


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in UTC, cut in ``tz``, labelled by its start (``label`` is plant-local)."""

    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    tz: str
    label: str

    @property
    def minutes(self) -> int:
        """Nominal length in minutes: the minutes that elapse in the window (DST included)."""
        return nominal_minutes(self)

    @property
    def duration(self) -> pd.Timedelta:
        return self.end - self.start

    @property
    def local_start(self) -> pd.Timestamp:
        return self.start.tz_convert(self.tz)

    def contains(self, instant: pd.Timestamp | dt.datetime) -> bool:
        t = _utc(instant)
        return self.start <= t < self.end


def nominal_minutes(window: Window) -> int:
    """The minutes that elapse in the window: 60 for every hour, 1380 / 1440 / 1500 for a
    23 / 24 / 25-hour local day. The denominator of every coverage."""
    return int((window.end.value - window.start.value) // _NS_PER_MIN)


# ------------------------------------------------------------------------------ shifts

_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)\Z")


def parse_shifts(spec: Iterable[str | Shift] | Mapping[str, str]) -> tuple[Shift, ...]:
    """Shifts from a list of local start times (``["08:00", "16:00", "00:00"]``, each named by
    its time) or a mapping name -> start time (``{"day": "06:00", "night": "22:00"}``).

    Raises ``ConfigError`` naming the value when a time is not HH:MM, a start repeats, or the
    list is empty. The result is ordered by start time of day.
    """
    items: list[tuple[str, str | dt.time]]
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        items = []
        for s in spec:
            if isinstance(s, Shift):
                items.append((s.name, s.start))
            else:
                items.append((str(s), s))
    shifts = []
    for name, value in items:
        if isinstance(value, dt.time):
            t = value
        else:
            m = _HHMM.match(str(value))
            if not m:
                raise ConfigError(
                    f"shifts: {value!r} is not allowed; expected a local start time HH:MM (00:00-23:59)"
                )
            t = dt.time(int(m.group(1)), int(m.group(2)))
        if t.second or t.microsecond:
            raise ConfigError(f"shifts: {value!r} is not allowed; a shift starts on a minute")
        shifts.append(Shift(name, t))
    if not shifts:
        raise ConfigError("shifts: empty; give at least one local start time HH:MM")
    starts = [s.start for s in shifts]
    if len(set(starts)) != len(starts):
        raise ConfigError(f"shifts: a start time repeats in {[str(s)[:5] for s in starts]}")
    return tuple(sorted(shifts, key=lambda s: s.start))


# ------------------------------------------------------------------------------ helpers


def _utc(instant: pd.Timestamp | dt.datetime | str) -> pd.Timestamp:
    t = pd.Timestamp(instant)
    if t.tzinfo is None:
        raise ValueError(f"{instant!r} has no time zone; give a tz-aware instant (UTC in storage)")
    return t.tz_convert("UTC").as_unit("ns")


def _zone(tz: str) -> str:
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"timezone: {tz!r} is not an IANA time zone") from exc
    return tz


def _localize(naive: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    """Local wall-clock times -> UTC by the module's rule: a time in the spring gap moves to the
    first instant after it; a time in the autumn fold takes its earlier occurrence."""
    if len(naive) == 0:
        return pd.DatetimeIndex([], tz="UTC").as_unit("ns")
    naive = naive.as_unit("ns")
    a = naive.tz_localize(tz, ambiguous=np.ones(len(naive), bool), nonexistent="shift_forward")
    b = naive.tz_localize(tz, ambiguous=np.zeros(len(naive), bool), nonexistent="shift_forward")
    first = np.minimum(a.tz_convert("UTC").asi8, b.tz_convert("UTC").asi8)
    return pd.DatetimeIndex(first.astype("datetime64[ns]")).tz_localize("UTC")


def _local_dates(start: pd.Timestamp, end: pd.Timestamp, tz: str, pad_days: int) -> tuple:
    d0 = start.tz_convert(tz).tz_localize(None).normalize() - pd.Timedelta(days=pad_days)
    d1 = end.tz_convert(tz).tz_localize(None).normalize() + pd.Timedelta(days=pad_days)
    return d0, d1


def _pairs(kind, bounds_utc, labels, tz) -> list[Window]:
    ns = bounds_utc.asi8
    stamps = list(bounds_utc)  # boxed once, in one pass
    return [
        Window(kind, stamps[i], stamps[i + 1], tz, labels[i])
        for i in range(len(ns) - 1)
        if ns[i + 1] > ns[i]
    ]


def _hours(start, end, tz) -> list[Window]:
    # Candidates every 15 minutes catch the whole hours of zones offset by :30 or :45 too.
    a = start.floor("h") - pd.Timedelta(hours=3)
    b = end.ceil("h") + pd.Timedelta(hours=3)
    cand = pd.date_range(a, b, freq="15min", tz="UTC", unit="ns")
    local = cand.tz_convert(tz)
    keep = (local.minute == 0) & (local.second == 0)
    bounds, loc = cand[keep], local[keep]
    offset_min = (loc.tz_localize(None).as_unit("ns").asi8 - bounds.asi8) // _NS_PER_MIN
    signs = np.where(offset_min < 0, "-", "+")
    a = np.abs(offset_min)
    labels = [
        f"{text}{sign}{m // 60:02d}:{m % 60:02d}"
        for text, sign, m in zip(loc.strftime("%Y-%m-%dT%H:%M"), signs, a.tolist(), strict=True)
    ]
    return _pairs("hour", bounds, labels, tz)


def _days(start, end, tz) -> list[Window]:
    d0, d1 = _local_dates(start, end, tz, 2)
    naive = pd.date_range(d0, d1, freq="D", unit="ns")
    return _pairs("day", _localize(naive, tz), [f"{d:%Y-%m-%d}" for d in naive], tz)


def _month_starts(start, end, tz, pad_months: int) -> pd.DatetimeIndex:
    d0, d1 = _local_dates(start, end, tz, 1)
    m0 = d0.to_period("M").to_timestamp() - pd.DateOffset(months=pad_months)
    m1 = d1.to_period("M").to_timestamp() + pd.DateOffset(months=2)
    return pd.date_range(m0, m1, freq="MS", unit="ns")


def _months(start, end, tz) -> list[Window]:
    naive = _month_starts(start, end, tz, 1)
    return _pairs("month", _localize(naive, tz), [f"{d:%Y-%m}" for d in naive], tz)


def _years(start, end, tz) -> list[Window]:
    y0 = start.tz_convert(tz).year - 1
    y1 = end.tz_convert(tz).year + 1
    naive = pd.DatetimeIndex([pd.Timestamp(year=y, month=1, day=1) for y in range(y0, y1 + 1)])
    return _pairs("year", _localize(naive, tz), [f"{d:%Y}" for d in naive], tz)


def _trailing(start, end, tz) -> list[Window]:
    naive = _month_starts(start, end, tz, 12)
    utc = _localize(naive, tz).asi8
    out = []
    for i in range(11, len(naive) - 1):
        # The window that ENDS with month i: months i-11 .. i.
        out.append(
            Window(
                "trailing_12m",
                pd.Timestamp(utc[i - 11], unit="ns", tz="UTC"),
                pd.Timestamp(utc[i + 1], unit="ns", tz="UTC"),
                tz,
                f"{naive[i - 11]:%Y-%m}/P12M",
            )
        )
    return out


def _shifts(start, end, tz, shifts: Sequence[Shift]) -> list[Window]:
    d0, d1 = _local_dates(start, end, tz, 2)
    days = pd.date_range(d0, d1, freq="D", unit="ns")
    naive, labels = [], []
    for d in days:
        for s in shifts:
            naive.append(d + pd.Timedelta(hours=s.start.hour, minutes=s.start.minute))
            labels.append(f"{d:%Y-%m-%d} {s.name}")
    utc = _localize(pd.DatetimeIndex(naive), tz)
    # Two starts on one instant (both in a spring gap): the later shift keeps the instant.
    ns = utc.asi8
    keep = np.ones(len(ns), bool)
    keep[:-1] = ns[:-1] != ns[1:]
    return _pairs("shift", utc[keep], [lab for lab, k in zip(labels, keep, strict=True) if k], tz)


def _all(kind, start, end, tz, shifts) -> list[Window]:
    if kind not in WINDOW_KINDS:
        raise ValueError(f"window kind {kind!r}: allowed {', '.join(WINDOW_KINDS)}")
    _zone(tz)
    if kind == "shift":
        if not shifts:
            raise ValueError("shift windows need the plant's shifts (parse_shifts)")
        return _shifts(start, end, tz, parse_shifts(shifts))
    return {
        "hour": _hours,
        "day": _days,
        "month": _months,
        "year": _years,
        "trailing_12m": _trailing,
    }[kind](start, end, tz)


# ------------------------------------------------------------------------------ public


def windows_covering(
    kind: str,
    start: pd.Timestamp | dt.datetime,
    end: pd.Timestamp | dt.datetime,
    tz: str,
    *,
    shifts: Iterable[str | Shift] | Mapping[str, str] | None = None,
) -> list[Window]:
    """Every window of ``kind`` that overlaps the UTC range ``[start, end)``, in time order (the
    first may start before ``start``, the last end after ``end``).

    For ``trailing_12m`` (windows that overlap one another) it is the trailing windows whose
    LAST month overlaps the range: one per month.
    """
    a, b = _utc(start), _utc(end)
    if b <= a:
        raise ValueError(f"empty range: end {b} is not after start {a}")
    if kind == "trailing_12m":
        # A trailing window ends where its last month ends.
        month_ends = {w.end for w in windows_covering("month", a, b, tz)}
        return [w for w in _trailing(a, b, _zone(tz)) if w.end in month_ends]
    return [w for w in _all(kind, a, b, tz, shifts) if w.end > a and w.start < b]


def window_containing(
    instant: pd.Timestamp | dt.datetime,
    kind: str,
    tz: str,
    *,
    shifts: Iterable[str | Shift] | Mapping[str, str] | None = None,
) -> Window:
    """The window of ``kind`` with ``start <= instant < end``. For ``trailing_12m`` (each
    instant lies in twelve of them) it is the one that ends with the instant's month."""
    t = _utc(instant)
    if kind == "trailing_12m":
        month = window_containing(t, "month", tz)
        return next(w for w in _trailing(t, t, _zone(tz)) if w.end == month.end)
    for w in _all(kind, t, t, tz, shifts):
        if w.start <= t < w.end:
            return w
    raise AssertionError(f"no {kind} window holds {t}")  # pragma: no cover - a bug


def parent_windows(window: Window, *, include_trailing: bool = False) -> list[Window]:
    """The calendar windows that hold ``window`` whole, finest first: an hour's day, month and
    year; a day's month and year; a month's year. With ``include_trailing`` a month (or any
    window inside one) also gets the twelve trailing-12-month windows that include its month.

    Shifts are not in the hierarchy (a shift may cross midnight, so no day holds it): the shift
    an hour belongs to is ``window_containing(hour.start, "shift", …)``; see
    ``affected_windows``.
    """
    if window.kind in ("shift", "trailing_12m"):
        return []
    level = HIERARCHY.index(window.kind)
    out = [window_containing(window.start, k, window.tz) for k in HIERARCHY[level + 1 :]]
    if include_trailing and window.kind != "year":
        month = (
            window
            if window.kind == "month"
            else window_containing(window.start, "month", window.tz)
        )
        out.extend(_trailing_holding(month))
    return out


def _trailing_holding(month: Window) -> list[Window]:
    later = month.start + pd.Timedelta(days=366)
    return [w for w in _trailing(month.start, later, month.tz) if w.start <= month.start < w.end]


def affected_windows(
    window: Window,
    *,
    shifts: Iterable[str | Shift] | Mapping[str, str] | None = None,
) -> list[Window]:
    """Every window of a coarser kind that overlaps ``window``: what a late reading in it makes
    dirty. For an hour: the shift(s) it overlaps (when ``shifts`` are given), its day, month,
    year and the twelve trailing windows that hold its month."""
    out: list[Window] = []
    if shifts and window.kind == "hour":
        out.extend(windows_covering("shift", window.start, window.end, window.tz, shifts=shifts))
    out.extend(parent_windows(window, include_trailing=True))
    return out


def latest_complete(
    kind: str,
    now: pd.Timestamp | dt.datetime,
    tz: str,
    *,
    shifts: Iterable[str | Shift] | Mapping[str, str] | None = None,
) -> Window:
    """The latest window of ``kind`` that has ended at ``now`` (for ``year``: the latest complete
    calendar year, as Table C.1 note 4 asks; for ``trailing_12m``: the twelve complete months
    before the month of ``now``)."""
    if kind == "trailing_12m":
        month = window_containing(now, "month", tz)
        return window_containing(month.start - _ONE_NS, kind, tz)
    current = window_containing(now, kind, tz, shifts=shifts)
    return window_containing(current.start - _ONE_NS, kind, tz, shifts=shifts)


_LABEL = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?\Z")


def calendar_window(label: str, tz: str) -> Window:
    """The year, month or day named ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` in the plant's zone."""
    m = _LABEL.match(label)
    if not m:
        raise ValueError(f"window {label!r}: expected YYYY, YYYY-MM or YYYY-MM-DD")
    y, mo, d = (int(g) if g else None for g in m.groups())
    kind = "day" if d else "month" if mo else "year"
    naive = pd.Timestamp(year=y, month=mo or 1, day=d or 1, hour=12)
    local = naive.tz_localize(_zone(tz))
    return window_containing(local, kind, tz)
