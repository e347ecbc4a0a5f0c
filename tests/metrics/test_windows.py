"""Plant-local windows, in a zone without DST (Asia/Shanghai, UTC+8 all year) and one with it
(Europe/Berlin: CET UTC+1, CEST UTC+2; in 2026 summer time starts on 29 March at 01:00 UTC,
02:00 CET -> 03:00 CEST, and ends on 25 October at 01:00 UTC, 03:00 CEST -> 02:00 CET).

Every expected instant is converted by hand from local time with those offsets; the comment
next to it shows the sum.
"""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from greenfoundry.errors import ConfigError
from greenfoundry.metrics import windows as w

SH, BER = "Asia/Shanghai", "Europe/Berlin"


def utc(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def local(s: str, tz: str) -> pd.Timestamp:
    return pd.Timestamp(s).tz_localize(tz)


def test_shanghai_day_is_24_hours_from_16_utc():
    # 2026-03-29 00:00 +08:00 = 2026-03-28 16:00 UTC; the next midnight 24 h later.
    day = w.window_containing(local("2026-03-29 12:00", SH), "day", SH)
    assert (day.start, day.end) == (utc("2026-03-28 16:00"), utc("2026-03-29 16:00"))
    assert day.label == "2026-03-29" and day.minutes == 24 * 60


def test_berlin_spring_day_has_23_hours_and_no_0200():
    # 29 March: 00:00 CET = 28 Mar 23:00 UTC; 30 March 00:00 CEST = 29 Mar 22:00 UTC: 23 h.
    day = w.window_containing(local("2026-03-29 12:00", BER), "day", BER)
    assert (day.start, day.end) == (utc("2026-03-28 23:00"), utc("2026-03-29 22:00"))
    assert day.minutes == 23 * 60
    hours = w.windows_covering("hour", day.start, day.end, BER)
    assert len(hours) == 23
    assert all(h.minutes == 60 for h in hours)
    labels = [h.label for h in hours]
    # 01:00 CET (00:00 UTC) is followed by 03:00 CEST (01:00 UTC): local 02:00 does not exist.
    i = labels.index("2026-03-29T01:00+01:00")
    assert labels[i + 1] == "2026-03-29T03:00+02:00"
    assert hours[i + 1].start == utc("2026-03-29 01:00")
    assert not any("T02:" in lab for lab in labels)


def test_berlin_autumn_day_has_25_hours_and_two_0200():
    # 25 October: 00:00 CEST = 24 Oct 22:00 UTC; 26 October 00:00 CET = 25 Oct 23:00 UTC: 25 h.
    day = w.window_containing(local("2026-10-25 12:00", BER), "day", BER)
    assert (day.start, day.end) == (utc("2026-10-24 22:00"), utc("2026-10-25 23:00"))
    assert day.minutes == 25 * 60
    hours = w.windows_covering("hour", day.start, day.end, BER)
    assert len(hours) == 25
    two = [h for h in hours if "T02:00" in h.label]
    # 02:00 CEST = 00:00 UTC and 02:00 CET = 01:00 UTC, each 60 minutes.
    assert [(h.label, h.start, h.minutes) for h in two] == [
        ("2026-10-25T02:00+02:00", utc("2026-10-25 00:00"), 60),
        ("2026-10-25T02:00+01:00", utc("2026-10-25 01:00"), 60),
    ]


def test_windows_tile_the_range_without_overlap():
    day = w.window_containing(utc("2026-10-25 12:00"), "day", BER)
    hours = w.windows_covering("hour", day.start, day.end, BER)
    assert hours[0].start == day.start and hours[-1].end == day.end
    assert all(a.end == b.start for a, b in itertools.pairwise(hours))
    assert sum(h.minutes for h in hours) == day.minutes


def test_hours_follow_the_local_clock_in_a_half_hour_zone():
    # Asia/Kolkata is UTC+05:30: local 2026-01-01 00:00 = 2025-12-31 18:30 UTC.
    h = w.window_containing(utc("2025-12-31 18:45"), "hour", "Asia/Kolkata")
    assert (h.start, h.end, h.label) == (
        utc("2025-12-31 18:30"),
        utc("2025-12-31 19:30"),
        "2026-01-01T00:00+05:30",
    )


def test_shift_across_midnight():
    # Shanghai shifts 06:00 / 14:00 / 22:00. The 22:00 shift of 28 March runs to 06:00 on the
    # 29th: 22:00 +08:00 = 14:00 UTC, 06:00 +08:00 = 22:00 UTC, 8 hours. 01:30 local on the
    # 29th (17:30 UTC on the 28th) is in it, labelled by its start's date.
    shifts = ["06:00", "14:00", "22:00"]
    s = w.window_containing(local("2026-03-29 01:30", SH), "shift", SH, shifts=shifts)
    assert (s.start, s.end) == (utc("2026-03-28 14:00"), utc("2026-03-28 22:00"))
    assert s.label == "2026-03-28 22:00" and s.minutes == 480


def test_named_shifts():
    shifts = {"early": "06:00", "late": "14:00", "night": "22:00"}
    s = w.window_containing(local("2026-03-29 15:00", SH), "shift", SH, shifts=shifts)
    assert s.label == "2026-03-29 late"


def test_shift_starting_in_the_spring_gap_starts_after_it():
    # Berlin shifts 02:00 / 10:00 / 18:00. On 29 March 02:00 does not exist: the shift begins
    # at 03:00 CEST = 01:00 UTC and ends at 10:00 CEST = 08:00 UTC: 7 hours. The shift before
    # (28 Mar 18:00 CET = 17:00 UTC to 01:00 UTC) keeps its 8 hours.
    shifts = ["02:00", "10:00", "18:00"]
    got = w.windows_covering(
        "shift", utc("2026-03-28 18:00"), utc("2026-03-29 02:00"), BER, shifts=shifts
    )
    assert [(s.label, s.start, s.end, s.minutes) for s in got] == [
        ("2026-03-28 18:00", utc("2026-03-28 17:00"), utc("2026-03-29 01:00"), 480),
        ("2026-03-29 02:00", utc("2026-03-29 01:00"), utc("2026-03-29 08:00"), 420),
    ]


def test_shift_starting_in_the_autumn_fold_takes_the_first_0200():
    # On 25 October 02:00 happens twice; the shift begins at the first (02:00 CEST = 00:00 UTC)
    # and ends at 10:00 CET = 09:00 UTC: 9 hours. The one before: 24 Oct 18:00 CEST = 16:00 UTC
    # to 00:00 UTC, 8 hours.
    shifts = ["02:00", "10:00", "18:00"]
    got = w.windows_covering(
        "shift", utc("2026-10-24 18:00"), utc("2026-10-25 02:00"), BER, shifts=shifts
    )
    assert [(s.label, s.start, s.end, s.minutes) for s in got] == [
        ("2026-10-24 18:00", utc("2026-10-24 16:00"), utc("2026-10-25 00:00"), 480),
        ("2026-10-25 02:00", utc("2026-10-25 00:00"), utc("2026-10-25 09:00"), 540),
    ]


def test_months_with_a_transition():
    # March 2026 in Berlin: 1 Mar 00:00 CET = 28 Feb 23:00 UTC to 1 Apr 00:00 CEST = 31 Mar
    # 22:00 UTC: 31 × 24 − 1 = 743 h. October: 30 Sep 22:00 UTC to 31 Oct 23:00 UTC: 745 h.
    march = w.calendar_window("2026-03", BER)
    assert (march.start, march.end) == (utc("2026-02-28 23:00"), utc("2026-03-31 22:00"))
    assert march.minutes == 743 * 60
    october = w.calendar_window("2026-10", BER)
    assert october.minutes == 745 * 60


def test_calendar_year():
    # 2025 in Shanghai: 1 Jan 00:00 +08:00 = 2024-12-31 16:00 UTC; 365 days (not a leap year).
    y = w.calendar_window("2025", SH)
    assert (y.kind, y.start, y.end, y.label) == (
        "year",
        utc("2024-12-31 16:00"),
        utc("2025-12-31 16:00"),
        "2025",
    )
    assert y.minutes == 365 * 1440


def test_trailing_12_months():
    # The trailing window holding 15 Oct 2026 (Shanghai) ends with October: Nov 2025 .. Oct
    # 2026, 1 Nov 2025 00:00 +08:00 = 31 Oct 2025 16:00 UTC to 1 Nov 2026 = 31 Oct 2026 16:00.
    t = w.window_containing(local("2026-10-15 12:00", SH), "trailing_12m", SH)
    assert (t.start, t.end, t.label) == (
        utc("2025-10-31 16:00"),
        utc("2026-10-31 16:00"),
        "2025-11/P12M",
    )
    # The latest COMPLETE one on 15 Oct is Oct 2025 .. Sep 2026.
    done = w.latest_complete("trailing_12m", local("2026-10-15 12:00", SH), SH)
    assert (done.start, done.end, done.label) == (
        utc("2025-09-30 16:00"),
        utc("2026-09-30 16:00"),
        "2025-10/P12M",
    )


def test_trailing_12_months_across_both_transitions_is_365_days():
    # Berlin, Nov 2025 .. Oct 2026: both ends are at CET midnight (1 Nov 2025 00:00 CET =
    # 31 Oct 2025 23:00 UTC; 1 Nov 2026 00:00 CET = 31 Oct 2026 23:00 UTC), so the lost spring
    # hour and the gained autumn hour cancel: 30+31+31+28+31+30+31+30+31+31+30+31 = 365 days.
    t = w.window_containing(utc("2026-10-31 12:00"), "trailing_12m", BER)
    assert (t.start, t.end) == (utc("2025-10-31 23:00"), utc("2026-10-31 23:00"))
    assert t.minutes == 365 * 1440


def test_trailing_windows_covering_a_range_one_per_month():
    got = w.windows_covering("trailing_12m", utc("2026-01-15"), utc("2026-03-02"), BER)
    assert [t.label for t in got] == ["2025-02/P12M", "2025-03/P12M", "2025-04/P12M"]


def test_latest_complete_year():
    # On 1 Jan 2026 at 00:30 in Shanghai (31 Dec 2025 16:30 UTC) 2025 is complete.
    assert w.latest_complete("year", utc("2025-12-31 16:30"), SH).label == "2025"
    # Half an hour earlier it is still 2025 locally: the latest complete year is 2024.
    assert w.latest_complete("year", utc("2025-12-31 15:30"), SH).label == "2024"


def test_parent_windows_of_the_second_0200_hour():
    hour = w.window_containing(utc("2026-10-25 01:30"), "hour", BER)
    assert hour.label == "2026-10-25T02:00+01:00"
    assert [p.label for p in w.parent_windows(hour)] == ["2026-10-25", "2026-10", "2026"]
    with_trailing = w.parent_windows(hour, include_trailing=True)
    trailing = [p.label for p in with_trailing if p.kind == "trailing_12m"]
    # The twelve trailing windows that hold October 2026 end with Oct 2026 .. Sep 2027.
    assert trailing[0] == "2025-11/P12M" and trailing[-1] == "2026-10/P12M"
    assert len(trailing) == 12


def test_affected_windows_include_the_shift_across_midnight():
    # Shanghai 23:00-24:00 on 28 March (15:00-16:00 UTC) lies in the 22:00 shift, the 28th,
    # March, 2026 and twelve trailing windows.
    hour = w.window_containing(utc("2026-03-28 15:00"), "hour", SH)
    got = w.affected_windows(hour, shifts=["06:00", "14:00", "22:00"])
    kinds = [a.kind for a in got]
    assert kinds.count("shift") == 1 and got[0].label == "2026-03-28 22:00"
    assert kinds.count("trailing_12m") == 12
    assert [a.label for a in got if a.kind in ("day", "month", "year")] == [
        "2026-03-28",
        "2026-03",
        "2026",
    ]


@pytest.mark.parametrize(
    "spec",
    [["25:00"], ["08:00", "08:00"], [], ["8h"]],
)
def test_bad_shift_lists_name_the_value(spec):
    with pytest.raises(ConfigError, match="shifts"):
        w.parse_shifts(spec)


def test_naive_instants_and_unknown_zones_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        w.window_containing(pd.Timestamp("2026-01-01"), "day", SH)
    with pytest.raises(ConfigError, match="IANA"):
        w.window_containing(utc("2026-01-01"), "day", "Mars/Olympus")
    with pytest.raises(ValueError, match="shifts"):
        w.window_containing(utc("2026-01-01"), "shift", SH)
