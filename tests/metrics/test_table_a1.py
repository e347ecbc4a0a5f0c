"""Table A.1 from production events, on hand-made batches with the arithmetic in each test."""

import pandas as pd
import pytest

from greenfoundry.metrics.measured import BAD_INPUT, NO_DATA, OK, Measured
from greenfoundry.metrics.table_a1 import (
    annual_output_10kt,
    dn_range_of,
    first_pass_rate_pct,
    online_inspection_rate_pct,
    process_yield_pct,
    scrap_rate_pct,
    split_by_dn,
    three_year_output_10kt,
)


def m(value, coverage=1.0):
    return Measured(value, 5, coverage, OK)


def ts(*hours):
    return pd.DatetimeIndex(
        [pd.Timestamp("2026-03-02", tz="UTC") + pd.Timedelta(hours=h) for h in hours]
    )


def test_scrap_rate_and_yield():
    # 60 t scrap, 940 t good: 60 / 1 000 = 6 % (ductile tier 1: ≤ 6).
    assert scrap_rate_pct(m(60.0), m(940.0)).value == pytest.approx(6.0)
    # 940 t good pipe from 1 030 t of iron: 91.2621… % (ductile tier 2: ≥ 90).
    assert process_yield_pct(m(940.0), m(1_030.0)).value == pytest.approx(940 / 1030 * 100)
    assert process_yield_pct(m(1_100.0), m(1_030.0)).status == BAD_INPUT  # more pipe than iron
    assert scrap_rate_pct(m(60.0), None).status == NO_DATA


def test_dn_ranges_of_table_a1():
    assert [dn_range_of(x) for x in (80, 300, 350, 1000, 1100, 50, 320)] == [
        "DN80-300", "DN80-300", "DN350-1000", "DN350-1000", "DN>1000", None, None,
    ]  # fmt: skip


def test_first_pass_rates_by_dn_range():
    # Three batches: DN300 at 0 h (100 tested, 97 passed), DN600 at 1 h (50, 50), DN300 at 2 h
    # (100, 95); a batch at 3 h has no pipe_dn. DN80-300: 192 / 200 = 96 %; DN350-1000: 100 %.
    dn = pd.Series([300.0, 600.0, 300.0], index=ts(0, 1, 2))
    tested = pd.Series([100.0, 50.0, 100.0, 10.0], index=ts(0, 1, 2, 3))
    passed = pd.Series([97.0, 50.0, 95.0, 9.0], index=ts(0, 1, 2, 3))
    t, p = split_by_dn(dn, tested), split_by_dn(dn, passed)
    assert t["DN80-300"].sum() == 200 and t["DN350-1000"].sum() == 50
    assert t["DN>1000"].empty and t["unpaired"].tolist() == [10.0]
    r = first_pass_rate_pct(m(p["DN80-300"].sum()), m(t["DN80-300"].sum()))
    assert r.value == pytest.approx(96.0)
    assert first_pass_rate_pct(m(50.0), m(50.0)).value == 100.0
    naive = pd.Series([300.0], index=[pd.Timestamp("2026-03-02")])  # no time zone: refused
    with pytest.raises(ValueError, match="no time zone"):
        split_by_dn(naive, tested)


def test_online_inspection_rate_takes_the_lower_count():
    # 1 000 cast, 985 hydro-tested, 990 inspected: both tests for at most 985 → 98.5 %.
    r = online_inspection_rate_pct(m(985.0), m(990.0), m(1_000.0))
    assert r.value == pytest.approx(98.5) and r.status == OK
    assert online_inspection_rate_pct(None, m(990.0), m(1_000.0)).status == NO_DATA


def test_yearly_output_in_10kt():
    # 305 000 t in a year = 30.5 × 10⁴ t (ductile tier 1: ≥ 30).
    assert annual_output_10kt(m(305_000.0)).value == pytest.approx(30.5)
    # Mean of 30.5, 28.0 and 25.0: 83.5 / 3 = 27.8333….
    r = three_year_output_10kt([m(305_000.0), m(280_000.0), m(250_000.0)])
    assert r.value == pytest.approx(83.5 / 3)
    r = three_year_output_10kt([m(305_000.0), None, m(250_000.0)])
    assert r.status == NO_DATA and "year(s) 2" in r.lacking[0]
