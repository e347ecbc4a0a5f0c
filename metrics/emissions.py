"""Stack concentrations (``stack_conc_mg_m3``): valid hourly means, their multiples of the limit C,
and the window's value and band shares of T/CFA 0308011.5-2024, Table 6.

Table 6 (污染物环境排放指标), row 大气污染物排放指标, scores the concentration as a multiple of C,
the compliance limit (GB 39726-2020 or a stricter local limit or permit), with tiers printed
``＜0.6C  ＜0.8C  ＜C`` (checked against the Chinese text). Compliance is judged on hourly means.

From readings to the window's value:

1. **Minute means** of the concentration (``instantaneous`` rules). A minute is not valid when
   it has no reading, when the analyser status says anything but normal at any instant of it
   (calibration, maintenance, fault, source stopped …), or, with oxygen correction, when it
   has no valid O₂ minute.
2. **Analyser status** is a series of codes over time, each in force from its timestamp until
   the next one (a state, not a sample). Codes in ``normal_codes`` (default ``N`` and
   ``normal``; ``N`` is the normal flag of HJ 212's data flags as we read them) keep minutes
   valid; any other code, an empty one included, invalidates every minute it touches. Before
   the first status the analyser is taken as normal: the caller passes the status in force at
   the range start with the range's readings. No status series: every reading is normal.
3. **Oxygen correction** (optional, per stack, where the permit or standard sets a reference
   O₂): each valid minute is converted to the reference oxygen content with
   ``C_ref = C_meas × (21 − O2_ref) / (21 − O2_meas)`` (``o2_corrected_mg_m3``), using that
   minute's mean O₂ (% by volume, dry). A minute with O₂ ≥ 21 % or < 0 has no correction and
   is not valid.
4. **Hourly mean** = the mean of the hour's valid minutes, valid only with at least
   ``min_valid_minutes`` (default 45) of its 60 minutes valid. The 45-minute rule is the one of
   HJ 75-2017 / HJ 76-2017 for CEMS hourly data (小时数据应包含本小时内至少45min的分钟有效数据),
   NOT verified here against those texts (we saw it quoted, not the standard): keep it
   configurable.
5. **Multiple of C** of each valid hour = hourly mean / C (Table 6; standard decision
   D-multiple). A window's value (day, month, year, trailing 12 months) follows ``rule``: by
   default the strict ``"max"``, the highest valid hourly multiple (compliance is judged hour by
   hour); ``"mean"`` is the mean of the valid hourly multiples. The rule is a decision to record
   with the standard's others.
6. **Bands**: the share of the window's valid hours in each of Table 6's bands, as printed:
   tier 1 ``m < 0.6``, tier 2 ``0.6 <= m < 0.8``, tier 3 ``0.8 <= m < 1``, no tier ``m >= 1``. A
   value exactly on 0.6C is not "< 0.6C", so it is in tier 2.

NOT verified against a text: the 45-minute rule (HJ 75 / HJ 76), the O₂ formula's wording in
GB 39726-2020 (we could not read that standard; the formula is the usual form of Chinese
emission standards, e.g. GB 13271 and GB 9078, for "实测浓度折算为基准氧含量排放浓度"), whether
the correction is meant per minute or per hourly mean (we correct per minute), and the HJ 212
status letters other than N.

Public API: ``o2_corrected_mg_m3``, ``hourly_means_mg_m3``, ``multiples_of_c``,
``window_multiples_of_c``, ``HOURLY_MIN_VALID_MINUTES``, ``TABLE6_BANDS``,
``NORMAL_STATUS_CODES``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from greenfoundry.metrics.events import refused_columns
from greenfoundry.metrics.instantaneous import NS_PER_MIN, default_range, minutes_from
from greenfoundry.metrics.measured import (
    BAD_INPUT,
    DEFAULT_MIN_COVERAGE,
    LOW_COVERAGE,
    NO_DATA,
    OK,
    bad_input_frame,
    check_min_coverage,
    judge,
    window_bounds_ns,
    window_frame,
)
from greenfoundry.metrics.readings import clean_codes, clean_readings, index_problem, times_ns

# HJ 75-2017 / HJ 76-2017 (as quoted, not verified here): an hourly value needs 45 valid minutes.
HOURLY_MIN_VALID_MINUTES = 45
# Table 6 as printed: ＜0.6C ＜0.8C ＜C (the standard file's emissions.air.multiple_of_c tiers).
TABLE6_BANDS = (0.6, 0.8, 1.0)
NORMAL_STATUS_CODES = ("N", "normal")
# Words for status codes in messages (HJ 212 data flags as we read them; only a label).
STATUS_WORDS = {
    "C": "calibration",
    "M": "maintenance",
    "D": "fault",
    "F": "source stopped",
    "T": "over range",
    "B": "communication fault",
    "": "no status code",
}
O2_IN_AIR_PCT = 21.0
WINDOW_RULES = ("max", "mean")


def o2_corrected_mg_m3(conc_mg_m3, o2_pct, o2_ref_pct: float):
    """The concentration at the reference oxygen content:
    ``C_ref = C_meas × (21 − O2_ref) / (21 − O2_meas)`` (O₂ in % by volume, dry; the usual
    form in Chinese emission standards for 基准氧含量; GB 39726-2020's wording not verified).
    Scalars or arrays; NaN where O₂ is not below 21 % or is negative."""
    if not 0 <= o2_ref_pct < O2_IN_AIR_PCT:
        raise ValueError(f"o2_ref_pct {o2_ref_pct!r}: expected 0 <= O2_ref < 21 (% by volume)")
    c = np.asarray(conc_mg_m3, dtype=float)
    o2 = np.asarray(o2_pct, dtype=float)
    ok = (o2 >= 0) & (o2 < O2_IN_AIR_PCT)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ok, c * (O2_IN_AIR_PCT - o2_ref_pct) / (O2_IN_AIR_PCT - o2), np.nan)
    return float(out) if out.ndim == 0 else out


def _word(code: str) -> str:
    w = STATUS_WORDS.get(code)
    return f"{code} {w}" if w and code else (w or code)


def _clean_status(status) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``readings.clean_codes`` of the status series. A series of strings only (what the engine
    passes: ``rollups.status_codes``) is its own codes, so it is only sorted and deduplicated
    here, as ``clean_codes`` does, without turning each code into a string again."""
    if (
        not isinstance(status, pd.Series)
        or status.dtype != object
        or index_problem(status, "analyser status")
        or pd.api.types.infer_dtype(status.to_numpy(), skipna=False) != "string"
    ):
        return clean_codes(status, "analyser status")
    t = times_ns(status.index)
    order = np.argsort(t, kind="stable")
    t, codes = t[order], status.to_numpy()[order]
    last = np.ones(len(t), bool)
    last[:-1] = t[:-1] != t[1:]
    return t[last], codes[last], None


def _status_minutes(status, grid: np.ndarray, normal: set[str]):
    """For each minute start of ``grid``: the first non-normal code touching the minute, or ""
    when the minute is normal throughout; and the refusal reason for the status series."""
    flagged = np.zeros(len(grid), bool)
    codes = np.full(len(grid), "", dtype=object)
    if status is None:
        return flagged, codes, None
    ts, cs, problem = _clean_status(status)
    if problem:
        return flagged, codes, problem
    if len(ts) == 0:
        return flagged, codes, None
    bad = np.array([c not in normal for c in cs], bool)
    at = np.searchsorted(ts, grid, "right") - 1  # the status in force at the minute's start
    known = at >= 0
    flag_at = np.zeros(len(grid), bool)
    flag_at[known] = bad[at[known]]
    codes[flag_at] = cs[at[flag_at]]
    # A change to a non-normal code inside the minute flags it as well.
    bad_t, bad_c = ts[bad], cs[bad]
    if len(bad_t) == 0:
        return flag_at, codes, None
    first_in = np.searchsorted(bad_t, grid, "right")
    inside = first_in < len(bad_t)
    inside[inside] = bad_t[first_in[inside]] < grid[inside] + NS_PER_MIN
    take = inside & ~flag_at
    codes[take] = bad_c[first_in[take]]
    return flag_at | inside, codes, None


def hourly_means_mg_m3(
    conc_mg_m3: pd.Series,
    hours: Sequence,
    *,
    status: pd.Series | None = None,
    normal_codes: Iterable[str] = NORMAL_STATUS_CODES,
    o2_pct: pd.Series | None = None,
    o2_ref_pct: float | None = None,
    min_valid_minutes: int = HOURLY_MIN_VALID_MINUTES,
    name: str = "stack_conc_mg_m3",
    valid_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Hourly means of one stack and pollutant, in mg/m³ (at the reference O₂ when
    ``o2_ref_pct`` is given, which needs ``o2_pct``), by the module's rules.

    ``hours``: hour windows (``windows_covering("hour", …)``); each must be 60 minutes.
    Columns: ``value`` (the hourly mean; NaN when the hour is not valid), ``valid`` (bool),
    ``n`` (concentration readings in the valid minutes), ``coverage`` (valid minutes / 60),
    ``status`` (ok: valid; low_coverage: some valid minutes but fewer than
    ``min_valid_minutes``; no_data: none), ``lacking``, ``valid_minutes``,
    ``minutes_flagged`` (by the analyser status), ``minutes_no_reading`` (not flagged, no
    concentration), ``minutes_no_o2`` (not flagged, a concentration but no valid O₂),
    ``mean_of_valid_minutes`` (the mean whether or not the hour is valid, for diagnosis).
    """
    return window_frame(
        hours,
        _hourly_columns(
            conc_mg_m3,
            hours,
            status=status,
            normal_codes=normal_codes,
            o2_pct=o2_pct,
            o2_ref_pct=o2_ref_pct,
            min_valid_minutes=min_valid_minutes,
            name=name,
            valid_range=valid_range,
        ),
    )


def _hourly_columns(
    conc_mg_m3: pd.Series,
    hours: Sequence,
    *,
    status: pd.Series | None = None,
    normal_codes: Iterable[str] = NORMAL_STATUS_CODES,
    o2_pct: pd.Series | None = None,
    o2_ref_pct: float | None = None,
    min_valid_minutes: int = HOURLY_MIN_VALID_MINUTES,
    name: str = "stack_conc_mg_m3",
    valid_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The columns of ``hourly_means_mg_m3`` (``measured.window_frame`` makes its frame of
    them): the engine reads them without building the frame."""
    if not 1 <= min_valid_minutes <= 60:
        raise ValueError(f"min_valid_minutes {min_valid_minutes!r}: expected 1..60")
    if (o2_ref_pct is None) != (o2_pct is None):
        raise ValueError("oxygen correction needs both o2_pct readings and o2_ref_pct")
    extra = {
        "valid": False,
        "valid_minutes": 0,
        "minutes_flagged": 0,
        "minutes_no_reading": 0,
        "minutes_no_o2": 0,
        "mean_of_valid_minutes": np.nan,
    }
    c = clean_readings(conc_mg_m3, name, valid_range=default_range(name, valid_range))
    if c.problem:
        return refused_columns(len(hours), c.problem, extra)
    starts, ends = window_bounds_ns(hours)
    if np.any(ends - starts != 60 * NS_PER_MIN):
        raise ValueError("hourly means need hour windows of 60 minutes")
    k = len(hours)
    grid = (starts[:, None] + np.arange(60)[None, :] * NS_PER_MIN).ravel()

    m = minutes_from(c)
    pos = np.searchsorted(m.start_ns, grid)
    pos_ok = pos < len(m.start_ns)
    has = np.zeros(len(grid), bool)
    has[pos_ok] = m.start_ns[pos[pos_ok]] == grid[pos_ok]
    value = np.full(len(grid), np.nan)
    value[has] = m.mean[pos[has]]
    nread = np.zeros(len(grid), dtype=np.int64)
    nread[has] = m.n[pos[has]]

    flagged, codes, problem = _status_minutes(status, grid, set(normal_codes))
    if problem:
        return refused_columns(len(hours), problem, extra)
    no_o2 = np.zeros(len(grid), bool)
    if o2_pct is not None:
        co = clean_readings(o2_pct, "o2_pct", valid_range=(0.0, 100.0))
        if co.problem:
            return refused_columns(len(hours), co.problem, extra)
        mo = minutes_from(co)
        p2 = np.searchsorted(mo.start_ns, grid)
        p2_ok = p2 < len(mo.start_ns)
        has_o2 = np.zeros(len(grid), bool)
        has_o2[p2_ok] = mo.start_ns[p2[p2_ok]] == grid[p2_ok]
        o2 = np.full(len(grid), np.nan)
        o2[has_o2] = mo.mean[p2[has_o2]]
        corrected = o2_corrected_mg_m3(value, o2, float(o2_ref_pct))
        no_o2 = has & ~flagged & np.isnan(corrected)
        value = corrected

    valid = has & ~flagged & ~no_o2
    shape = (k, 60)
    valid2, value2 = valid.reshape(shape), np.where(valid, value, 0.0).reshape(shape)
    n_valid = valid2.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_valid > 0, value2.sum(axis=1) / np.maximum(n_valid, 1), np.nan)
    n_flag = flagged.reshape(shape).sum(axis=1)
    n_noread = (~has & ~flagged).reshape(shape).sum(axis=1)
    n_noo2 = no_o2.reshape(shape).sum(axis=1)
    n_used = np.where(valid, nread, 0).reshape(shape).sum(axis=1)
    codes2 = codes.reshape(shape)
    flagged2 = flagged.reshape(shape)
    invalid = c.invalid_in(starts, ends)

    out_v, ok, statuses, lacking = [], [], [], []
    for i in range(k):
        lack = []
        is_valid = n_valid[i] >= min_valid_minutes
        if not is_valid:
            lack.append(
                f"{n_valid[i]} of 60 minutes valid; a valid hourly mean needs {min_valid_minutes} "
                "(HJ 75, not verified against the text)"
            )
        if n_flag[i]:
            cs = Counter(codes2[i][flagged2[i]])
            parts = ", ".join(f"{_word(str(code))}: {cnt}" for code, cnt in cs.most_common())
            lack.append(f"{n_flag[i]} minutes flagged by the analyser status ({parts})")
        if n_noread[i]:
            lack.append(f"{n_noread[i]} minutes without a {name} reading")
        if n_noo2[i]:
            lack.append(f"{n_noo2[i]} minutes without a valid O2 reading for the correction")
        if invalid[i]:
            lack.append(f"{invalid[i]} {name} readings not valid (NaN or out of range), dropped")
        st = OK if is_valid else (NO_DATA if n_valid[i] == 0 else LOW_COVERAGE)
        statuses.append(st)
        ok.append(bool(is_valid))
        out_v.append(float(mean[i]) if is_valid else np.nan)
        lacking.append(tuple(lack))
    return {
        "value": out_v,
        "valid": ok,
        "n": n_used.astype(np.int64),
        "coverage": n_valid / 60.0,
        "status": statuses,
        "lacking": lacking,
        "valid_minutes": n_valid.astype(np.int64),
        "minutes_flagged": n_flag.astype(np.int64),
        "minutes_no_reading": n_noread.astype(np.int64),
        "minutes_no_o2": n_noo2.astype(np.int64),
        "mean_of_valid_minutes": mean,
    }


def multiples_of_c(hourly: pd.DataFrame, limit_mg_m3: float) -> pd.Series:
    """Each valid hourly mean as a multiple of its limit C (Table 6; decision D-multiple): the
    hourly mean / C, NaN for an hour that is not valid. Same index as ``hourly``."""
    if not (isinstance(limit_mg_m3, int | float) and limit_mg_m3 > 0):
        raise ValueError(f"limit_mg_m3 {limit_mg_m3!r}: expected a positive limit C in mg/m3")
    values = hourly["value"].astype(float).where(hourly["valid"].astype(bool))
    return (values / float(limit_mg_m3)).rename("multiple_of_c")


def _band_of(m: np.ndarray, bands: Sequence[float]) -> np.ndarray:
    """1, 2, 3 for the tiers (each printed '<' its band), 4 for none."""
    b1, b2, b3 = bands
    return np.where(m < b1, 1, np.where(m < b2, 2, np.where(m < b3, 3, 4)))


def window_multiples_of_c(
    hourly: pd.DataFrame,
    limit_mg_m3: float,
    windows: Sequence,
    *,
    rule: str = "max",
    bands: Sequence[float] = TABLE6_BANDS,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> pd.DataFrame:
    """The window's multiple of C and the share of its valid hours in each Table 6 band.

    ``hourly``: the result of ``hourly_means_mg_m3`` (hours indexed by their start); an hour
    belongs to the window holding its start. ``rule``: "max" (default, strict: the highest valid
    hourly multiple) or "mean". ``bands``: the three tier thresholds in multiples of C, each
    read with the printed ``<`` (Table 6: 0.6, 0.8, 1; pass the standard row's tiers to follow
    its file).

    Columns: ``value`` (the multiple; NaN without a valid hour), ``n`` (valid hours),
    ``coverage`` (valid hours / the window's hours), ``status``, ``lacking``, ``valid_hours``,
    ``hours``, ``hour_of_max`` (start of the highest hour, UTC), ``max_multiple``,
    ``mean_multiple``, ``share_tier_1`` (< 0.6C), ``share_tier_2`` (0.6C ≤ m < 0.8C),
    ``share_tier_3`` (0.8C ≤ m < C), ``share_no_tier`` (≥ C); the shares are of valid hours.
    """
    if rule not in WINDOW_RULES:
        raise ValueError(f"rule {rule!r}: allowed {', '.join(WINDOW_RULES)}")
    bands = tuple(float(b) for b in bands)
    if len(bands) != 3 or not bands[0] < bands[1] < bands[2]:
        raise ValueError(
            f"bands {bands!r}: expected three rising thresholds (Table 6: 0.6, 0.8, 1)"
        )
    min_coverage = check_min_coverage(min_coverage)
    shares = ("share_tier_1", "share_tier_2", "share_tier_3", "share_no_tier")
    extra = {
        "valid_hours": 0,
        "hours": 0,
        "hour_of_max": pd.NaT,
        "max_multiple": np.nan,
        "mean_multiple": np.nan,
        **dict.fromkeys(shares, np.nan),
    }
    if not isinstance(hourly, pd.DataFrame) or not {"value", "valid", "status"} <= set(hourly):
        return bad_input_frame(windows, "hourly: expected the frame of hourly_means_mg_m3", extra)
    mult = multiples_of_c(hourly, limit_mg_m3)
    bad_hours = hourly["status"] == BAD_INPUT
    h = hourly.index.tz_convert("UTC").as_unit("ns").asi8
    order = np.argsort(h, kind="stable")
    h, mv = h[order], mult.to_numpy(float)[order]
    refused = bad_hours.to_numpy()[order]
    keep = ~np.isnan(mv)
    vh, vm = h[keep], mv[keep]
    band = _band_of(vm, bands)
    starts, ends = window_bounds_ns(windows)
    lo = np.searchsorted(vh, starts, "left")
    hi = np.searchsorted(vh, ends, "left")
    r_lo = np.searchsorted(h, starts, "left")
    r_hi = np.searchsorted(h, ends, "left")
    rows: dict[str, list] = {k: [] for k in ("value", "status", "lacking", *extra)}
    for i, w in enumerate(windows):
        seg, bseg = vm[lo[i] : hi[i]], band[lo[i] : hi[i]]
        hours_n = w.minutes // 60
        n = len(seg)
        coverage = n / hours_n if hours_n else 0.0
        lack = []
        if refused[r_lo[i] : r_hi[i]].any():
            lack.append("some hours had bad input (see the hourly means)")
        if n < hours_n:
            lack.append(f"{hours_n - n} of {hours_n} hours without a valid hourly mean")
        st = judge(n, coverage, min_coverage)
        rows["status"].append(st)
        rows["lacking"].append(tuple(lack))
        rows["valid_hours"].append(n)
        rows["hours"].append(hours_n)
        if n:
            j = int(np.argmax(seg))
            rows["hour_of_max"].append(pd.Timestamp(int(vh[lo[i] + j]), unit="ns", tz="UTC"))
            rows["max_multiple"].append(float(seg[j]))
            rows["mean_multiple"].append(float(seg.mean()))
            rows["value"].append(float(seg[j]) if rule == "max" else float(seg.mean()))
            for b, key in enumerate(shares, start=1):
                rows[key].append(float((bseg == b).sum()) / n)
        else:
            rows["hour_of_max"].append(pd.NaT)
            rows["max_multiple"].append(np.nan)
            rows["mean_multiple"].append(np.nan)
            rows["value"].append(np.nan)
            for key in shares:
                rows[key].append(np.nan)
    return window_frame(
        windows,
        {
            "value": rows["value"],
            "n": np.array(rows["valid_hours"], dtype=np.int64),
            "coverage": np.array(
                [
                    v / hh if hh else 0.0
                    for v, hh in zip(rows["valid_hours"], rows["hours"], strict=True)
                ]
            ),
            "status": rows["status"],
            "lacking": rows["lacking"],
            "valid_hours": np.array(rows["valid_hours"], dtype=np.int64),
            "hours": np.array(rows["hours"], dtype=np.int64),
            "hour_of_max": pd.DatetimeIndex(rows["hour_of_max"], tz="UTC")
            if windows
            else pd.DatetimeIndex([], tz="UTC"),
            "max_multiple": rows["max_multiple"],
            "mean_multiple": rows["mean_multiple"],
            **{k: rows[k] for k in shares},
        },
    )
