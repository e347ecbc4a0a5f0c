"""Wastewater at an outfall (``discharge_conc_mg_l``): valid samples, daily means, their
multiples of the limit D, and the window's value and band shares of T/CFA 0308011.5-2024,
Table 6, row 水污染物排放指标 (合规性指标D值的倍数, tiers printed ``＜0.6D  ＜0.8 D  ＜D``).

Table 6 note 2: D is the requirement of GB 8978, CJ 3082 and GB 18918, or of an industry, local
or group standard (the plant config's ``outfalls[].pollutants.<p>.limit_mg_l``, from the
discharge permit). The standard names no averaging period; these are the rules we chose, each
a decision of the standard's file (``D-t6-water-period``, ``D-t6-water-valid``,
``D-t6-water-window``):

1. **Samples.** Each reading is one sample analysed by the outfall's online analyser (a cycle of
   about an hour for COD and NH3-N analysers). A sample is valid when its value is a number in
   the signal's range and the analyser status in force at its instant is normal (the codes of
   the stack analysers, ``emissions.NORMAL_STATUS_CODES``; a status series is a state, each code
   in force from its timestamp until the next one; before the first code the analyser is
   taken as normal, and without a status series every sample is).
2. **Daily mean.** GB 8978-1996 judges the maximum permitted concentrations on daily means
   (按日均值计算), and HJ 356-2019 (data validity of wastewater online monitoring, section 7)
   computes a valid daily mean from the day's valid data. The period is the plant-local
   calendar day; its mean is the arithmetic mean of the day's valid samples, valid with at
   least ``min_valid_samples`` of them (default 12: a sample every two hours on average).
   NOT verified against the texts of GB 8978 and HJ 356 (we saw them quoted, not the
   standards): keep it configurable (``metrics.water_min_valid_samples``).
3. **Multiple of D** of each valid day = daily mean / D (decision D-multiple).
4. **Window value** (a day, month, year, trailing 12 months): by default the strict ``"max"``,
   the highest valid daily multiple (compliance is judged day by day), or ``"mean"``, the mean
   of the valid daily multiples (``metrics.table6_rule``, shared with the air rows); and the
   share of the window's valid days in each band, read with the printed ``<``: tier 1
   ``m < 0.6``, tier 2 ``0.6 <= m < 0.8``, tier 3 ``0.8 <= m < 1``, no tier ``m >= 1``.

An hour or a shift is shorter than the period: its mean of valid samples is written as a
running value for the plant's people to watch, never as the window's multiple of D.

pH is not a pollutant here (``glossary.WATER_POLLUTANTS``): its limit is a range, not a ceiling.

Public API: ``sample_validity``, ``hourly_sample_sums``, ``daily_mean_mg_l``,
``window_multiple``, ``DAILY_MIN_VALID_SAMPLES``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from greenfoundry.metrics.emissions import (
    NORMAL_STATUS_CODES,
    TABLE6_BANDS,
    WINDOW_RULES,
    _band_of,
    _clean_status,
)
from greenfoundry.metrics.instantaneous import default_range
from greenfoundry.metrics.measured import window_bounds_ns
from greenfoundry.metrics.readings import clean_readings

SIGNAL = "discharge_conc_mg_l"
# HJ 356-2019 section 7 as we read it (not verified): a valid daily mean needs enough valid
# samples; 12 is a sample every two hours, the longest usual cycle of a COD analyser.
DAILY_MIN_VALID_SAMPLES = 12


@dataclass(frozen=True)
class Samples:
    """The samples of one outfall's pollutant: ``times_ns`` and ``values`` of the valid ones,
    ``flagged_ns`` (numbers, but taken while the analyser status was not normal), ``invalid``
    (not a number or out of range, dropped), and ``problem`` when the series was refused."""

    times_ns: np.ndarray
    values: np.ndarray
    flagged_ns: np.ndarray
    invalid_ns: np.ndarray
    problem: str | None = None


def sample_validity(
    conc_mg_l: pd.Series,
    *,
    status: pd.Series | None = None,
    normal_codes: Iterable[str] = NORMAL_STATUS_CODES,
    name: str = SIGNAL,
) -> Samples:
    """Rule 1 of the module: which samples are valid. ``status``: the analyser's codes (as
    ``rollups.status_codes`` gives them: HJ 212 letters), in force from their timestamps."""
    empty = np.array([], dtype=np.int64)
    c = clean_readings(conc_mg_l, name, valid_range=default_range(name, None))
    if c.problem:
        return Samples(empty, np.array([], dtype=float), empty, empty, c.problem)
    invalid = c.invalid_ns if c.invalid_ns is not None else empty
    if status is None or len(status) == 0:
        return Samples(c.times_ns, c.values, empty, invalid)
    ts, codes, problem = _clean_status(status)
    if problem:
        return Samples(empty, np.array([], dtype=float), empty, empty, problem)
    normal = set(normal_codes)
    bad = np.array([code not in normal for code in codes], bool)
    at = np.searchsorted(ts, c.times_ns, "right") - 1  # the code in force at each sample
    flagged = np.zeros(c.n, bool)
    known = at >= 0
    flagged[known] = bad[at[known]]
    return Samples(c.times_ns[~flagged], c.values[~flagged], c.times_ns[flagged], invalid)


def hourly_sample_sums(samples: Samples, hours: Sequence) -> dict[str, np.ndarray]:
    """Per hour window (``start <= t < end``): ``sum_mg_l`` and ``valid`` (count) of the valid
    samples, ``flagged`` and ``invalid`` samples. Sums, so that hours add up to the day
    exactly in the order they are added."""
    starts, ends = window_bounds_ns(hours)
    lo = np.searchsorted(samples.times_ns, starts, "left")
    hi = np.searchsorted(samples.times_ns, ends, "left")
    # Each hour's own sum (not a difference of running sums), so a day's sum is the same
    # floats whichever range of hours was read.
    sums = np.array([float(samples.values[a:b].sum()) for a, b in zip(lo, hi, strict=True)])

    def count(t: np.ndarray) -> np.ndarray:
        return np.searchsorted(t, ends, "left") - np.searchsorted(t, starts, "left")

    return {
        "sum_mg_l": sums,
        "valid": (hi - lo).astype(np.int64),
        "flagged": count(samples.flagged_ns).astype(np.int64),
        "invalid": count(samples.invalid_ns).astype(np.int64),
    }


def daily_mean_mg_l(
    sum_mg_l: float, valid_samples: int, *, min_valid_samples: int = DAILY_MIN_VALID_SAMPLES
) -> float | None:
    """Rule 2: the day's mean of its valid samples, mg/L, or None when the day has fewer than
    ``min_valid_samples`` valid samples (GB 8978 daily means; HJ 356-2019 section 7, not
    verified against the text)."""
    if not isinstance(min_valid_samples, int) or min_valid_samples < 1:
        raise ValueError(f"min_valid_samples {min_valid_samples!r}: expected a whole number >= 1")
    if valid_samples < min_valid_samples:
        return None
    return float(sum_mg_l) / int(valid_samples)


def window_multiple(
    multiples: Sequence[float],
    *,
    rule: str = "max",
    bands: Sequence[float] = TABLE6_BANDS,
) -> dict:
    """Rules 4 (Table 6, decisions D-t6-water-window and D-t6-noise-window): a window's value
    from the multiples of its valid periods (days for water, hours for noise), in period
    order. ``rule`` "max" (strict, default) or "mean"; ``bands``: three rising tier
    thresholds read with the printed ``<``.

    Returns ``value`` (None without a valid period), ``max``, ``mean``, ``argmax`` (index of
    the first highest period), ``valid`` (periods) and ``shares`` (tier 1, 2, 3, none: the
    share of valid periods in each band; None without one)."""
    if rule not in WINDOW_RULES:
        raise ValueError(f"rule {rule!r}: allowed {', '.join(WINDOW_RULES)}")
    bands = tuple(float(b) for b in bands)
    if len(bands) != 3 or not bands[0] < bands[1] < bands[2]:
        raise ValueError(f"bands {bands!r}: expected three rising thresholds")
    m = np.asarray(list(multiples), dtype=float)
    if np.isnan(m).any():
        raise ValueError("multiples: only valid periods, without NaN")
    n = len(m)
    if n == 0:
        return {"value": None, "max": None, "mean": None, "argmax": None, "valid": 0,
                "shares": (None, None, None, None)}  # fmt: skip
    band = _band_of(m, bands)
    j = int(np.argmax(m))
    mean = float(m.sum()) / n
    return {
        "value": float(m[j]) if rule == "max" else mean,
        "max": float(m[j]),
        "mean": mean,
        "argmax": j,
        "valid": n,
        "shares": tuple(float((band == b).sum()) / n for b in (1, 2, 3, 4)),
    }
