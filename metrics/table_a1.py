"""Table A.1 of T/CFA 0308011.5-2024 (离心铸铁管技术经济评价分级, scored through Table 3) from
production events: scrap rate, process yield, first-pass rates of the hydrostatic test and of
the pipe inspection by DN range, the online inspection rate, and the yearly output (Table 2).

The events (glossary): one batch per casting line and DN, every event of a batch at the same
timestamp: ``pipe_dn`` (its nominal size), ``pipe_cast_count``, ``pipe_output_t`` /
``pipe_output_count`` (good pipe), ``pipe_scrap_t``, ``hydro_tested_count`` /
``hydro_passed_count``, ``inspected_count`` / ``inspection_passed_count``. Window sums come
from ``events.event_sums``; ``split_by_dn`` splits a batch signal into Table A.1's DN ranges
first. The standard defines none of the rates; each formula below is the usual foundry one,
stated with why.

Public API: ``DN_RANGES``, ``dn_range_of``, ``split_by_dn``, ``scrap_rate_pct``,
``process_yield_pct``, ``first_pass_rate_pct``, ``online_inspection_rate_pct``,
``annual_output_10kt``, ``three_year_output_10kt``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from greenfoundry.metrics.measured import (
    BAD_INPUT,
    DEFAULT_MIN_COVERAGE,
    LOW_COVERAGE,
    NO_DATA,
    OK,
    Measured,
    check_min_coverage,
)
from greenfoundry.metrics.readings import clean_readings
from greenfoundry.metrics.table5 import ratio
from greenfoundry.metrics.water import ratio as _part_ratio
from greenfoundry.metrics.water import sum_measured

# Table A.1's ductile rows: DN80-300, DN350-1000, DN 1000以上 (a DN1000 pipe is in the middle
# row, read with its "-1000"). Gray pipe has one row for all sizes.
DN_RANGES: dict[str, tuple[float, float]] = {
    "DN80-300": (80, 300),
    "DN350-1000": (350, 1000),
    "DN>1000": (1000, float("inf")),  # above 1000: low end open
}


def dn_range_of(dn: float) -> str | None:
    """The Table A.1 DN range of a nominal size, or None (below DN80, or DN301-349, which no
    standard pipe size has: not covered by a row)."""
    if 80 <= dn <= 300:
        return "DN80-300"
    if 350 <= dn <= 1000:
        return "DN350-1000"
    if dn > 1000:
        return "DN>1000"
    return None


def split_by_dn(dn: pd.Series, events: pd.Series, *, name: str = "events") -> dict[str, pd.Series]:
    """The events of one batch signal per Table A.1 DN range, each paired with the ``pipe_dn``
    event of its batch (the same timestamp, the same casting line). Returns a Series per range
    (possibly empty) and, under ``"unpaired"``, the events with no DN at their timestamp or a DN
    no range covers: they count in plant totals, not in a DN row. Raises ``ValueError`` for a
    refused series (``readings.clean_readings``)."""
    cd = clean_readings(dn, "pipe_dn", valid_range=(40.0, 3000.0))
    ce = clean_readings(events, name)
    if cd.problem or ce.problem:
        raise ValueError(cd.problem or ce.problem)
    j = np.searchsorted(cd.times_ns, ce.times_ns)
    ok = j < len(cd.times_ns)
    hit = np.zeros(len(ce.times_ns), bool)
    hit[ok] = cd.times_ns[j[ok]] == ce.times_ns[ok]
    bands = np.full(len(ce.times_ns), "unpaired", dtype=object)
    bands[hit] = [dn_range_of(x) or "unpaired" for x in cd.values[j[hit]]]
    index = pd.DatetimeIndex(ce.times_ns.astype("datetime64[ns]")).tz_localize("UTC")
    series = pd.Series(ce.values, index=index, name=name)
    return {b: series[bands == b] for b in (*DN_RANGES, "unpaired")}


def scrap_rate_pct(scrap_t: Measured | None, good_t: Measured | None, **kw) -> Measured:
    """Composite scrap rate (综合废品率), % = scrap / (good + scrap) × 100 by weight (Table A.1,
    ductile ≤6 / ≤8 / ≤10, gray ≤4 / ≤6 / ≤8). "Composite" counts scrap found at every stage,
    customer returns included (``pipe_scrap_t``); good pipe is ``pipe_output_t``."""
    return _part_ratio(scrap_t, sum_measured(scrap_t, good_t), scale=100.0, parts=(scrap_t, good_t), num_name="pipe_scrap_t",
                 den_name="pipe_scrap_t + pipe_output_t", high=100.0, **kw)  # fmt: skip


def process_yield_pct(good_t: Measured | None, iron_t: Measured | None, **kw) -> Measured:
    """Process yield (工艺出品率), % = good pipe, net weight / liquid iron × 100 (Table A.1,
    ductile ≥92 / ≥90 / ≥88, gray ≥90 / ≥87 / ≥85). Liquid iron is Σ ``tap_iron_t`` of the
    furnaces (iron tapped is iron poured in a plant without iron sold liquid: stated, not
    measured). At most 100 %."""
    return ratio(good_t, iron_t, scale=100.0, num_name="pipe_output_t", den_name="tap_iron_t",
                 high=100.0, **kw)  # fmt: skip


def first_pass_rate_pct(passed: Measured | None, tested: Measured | None, **kw) -> Measured:
    """A first-pass rate, % = pipes passing at their first test / pipes tested × 100: the
    hydrostatic test (水压试验一次检验合格率: ``hydro_passed_count`` / ``hydro_tested_count``) or
    the pipe inspection (铸铁管一次检验合格率: ``inspection_passed_count`` /
    ``inspected_count``), per DN range (``split_by_dn``) for ductile pipe (Table A.1)."""
    return ratio(passed, tested, scale=100.0, num_name="passed", den_name="tested",
                 high=100.0, **kw)  # fmt: skip


def online_inspection_rate_pct(
    hydro_tested: Measured | None,
    inspected: Measured | None,
    cast: Measured | None,
    *,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> Measured:
    """Online hydrostatic-test and inspection rate (水压和管材在线检验率), % = min(Σ
    hydro_tested_count, Σ inspected_count) / Σ pipe_cast_count × 100 (Table A.1, 100 / ≥96 /
    ≥94). DECISION: the row names both the hydrostatic test and the pipe inspection, so a pipe
    counts only when it went through both; the lower of the two counts bounds that (the
    counts carry no pipe identities). At most 100 %."""
    min_coverage = check_min_coverage(min_coverage)
    both = [m for m in (hydro_tested, inspected) if m is not None]
    if any(m.status == BAD_INPUT for m in both):
        bad = next(m for m in both if m.status == BAD_INPUT)
        return Measured(None, bad.n, 0.0, BAD_INPUT, bad.lacking)
    if len(both) < 2 or not all(m.usable for m in both):
        lower = None
    else:
        lower = min(both, key=lambda m: m.value)
        lower = Measured(lower.value, sum(m.n for m in both), min(m.coverage for m in both),
                         LOW_COVERAGE if any(m.status == LOW_COVERAGE for m in both) else OK,
                         lower.lacking)  # fmt: skip
    return ratio(lower, cast, scale=100.0, num_name="pipes through both online tests",
                 den_name="pipe_cast_count", high=100.0, min_coverage=min_coverage)  # fmt: skip


def annual_output_10kt(good_t_year: Measured | None) -> Measured:
    """A calendar year's output of pipe in 10⁴ t (万吨/年, Table 2, 近三年铸件年产量: ductile ≥30 /
    ≥20 / ≥10, gray ≥4 / ≥3 / ≥2) = Σ pipe_output_t of the year / 10 000."""
    if good_t_year is None or not good_t_year.usable:
        status = (
            good_t_year.status
            if good_t_year is not None and good_t_year.status == BAD_INPUT
            else NO_DATA
        )
        return Measured(None, good_t_year.n if good_t_year else 0, 0.0, status,
                        ("no pipe output in the year",))  # fmt: skip
    m = good_t_year
    return Measured(m.value / 1e4, m.n, m.coverage, m.status, m.lacking)


def three_year_output_10kt(years: Sequence[Measured | None]) -> Measured:
    """The mean yearly output of the last three calendar years, 10⁴ t (近三年, Table 2): the mean
    of three ``annual_output_10kt`` values. Fewer than three years with a value: no_data (the
    row asks for three), with which years were missing."""
    if len(years) != 3:
        raise ValueError(f"expected the three latest years, got {len(years)}")
    got = [annual_output_10kt(y) for y in years]
    missing = [str(i + 1) for i, m in enumerate(got) if not m.usable]
    n = sum(m.n for m in got)
    if missing:
        return Measured(None, n, 0.0, NO_DATA,
                        (f"year(s) {', '.join(missing)} of the three have no output",))  # fmt: skip
    coverage = min(m.coverage for m in got)
    status = LOW_COVERAGE if any(m.status == LOW_COVERAGE for m in got) else OK
    return Measured(sum(m.value for m in got) / 3.0, n, coverage, status)
