"""The water-reuse rows of Table 5 of T/CFA 0308011.5-2024 (工业用水重复利用率) from water-meter
consumption (``water_m3`` by its ``role`` tag, read by ``counters.counter_consumption``).

The standard prints the rows and their tiers but no formulas. The formulas used, each stated
with why (the usual definitions of Chinese water-saving standards, GB/T 7119 and GB/T 21534, as
we read them; NOT verified against those texts here):

* cooling-water recirculation rate (工业炉窑及其他设备冷却水循环利用率, ≥98 / ≥95 / ≥90 %):
  ``circulating / (circulating + make-up) × 100`` — the share of the water the cooling loops
  use that is recirculated rather than fresh make-up (roles ``cooling_circulating``,
  ``cooling_makeup``);
* process wastewater reused after treatment (其他用水工艺废水处理后回用, ≥90 / ≥85 / ≥80 %;
  two rows, wet processes and coating/demoulding, with the same tiers):
  ``reused / (reused + fresh process intake) × 100`` — the share of the process's water demand
  met by treated wastewater (roles ``process_reused``, ``process_intake``). The plant has no
  meter of wastewater produced, so "reused / produced" cannot be had; this is the same
  repeat-use form as the first row. Each row is this function over its own meters; the
  glossary's roles cover one process group today (a second pair of roles is needed for the
  coating row);
* reclaimed municipal water share of intake (消纳和利用城市污水或利用中水量占企业生产取水量的比例,
  ≥10 / ≥7 / ≥5 %): ``reclaimed intake / total intake × 100``, the total including the
  reclaimed water (roles ``reclaimed_intake``, ``total_intake``), as the wording "占…取水量的
  比例" says;
* the heading's overall rate (工业用水重复利用率), for display: ``(circulating + reused) /
  (circulating + reused + total intake) × 100`` (GB/T 7119's repeat-use rate: water used
  again over all water used).

A rate above 100 % is no plant's: it is refused (bad_input, "check the meters"), never scored.

Public API: ``cooling_recirculation_rate_pct``, ``process_reuse_rate_pct``,
``reclaimed_share_of_intake_pct``, ``water_reuse_rate_pct``.
"""

from __future__ import annotations

import dataclasses

from greenfoundry.metrics.measured import BAD_INPUT, LOW_COVERAGE, NO_DATA, Measured
from greenfoundry.metrics.table5 import ratio as _ratio


def ratio(num, den, *, parts=(), **kw) -> Measured:
    """``table5.ratio`` where the numerator is part of the denominator: ``n`` counts each
    input's readings once (``parts``: the distinct inputs)."""
    r = _ratio(num, den, **kw)
    if parts:
        r = dataclasses.replace(r, n=sum(m.n for m in parts if m is not None))
    return r


def sum_measured(a: Measured | None, b: Measured | None) -> Measured | None:
    """The sum of two consumptions of one window (coverage the lower; no value if either has
    none: the sum would be too low)."""
    if a is None or b is None:
        return None
    if BAD_INPUT in (a.status, b.status):
        return Measured(None, a.n + b.n, 0.0, BAD_INPUT, (*a.lacking, *b.lacking))
    if not (a.usable and b.usable):
        return Measured(None, a.n + b.n, 0.0, NO_DATA, (*a.lacking, *b.lacking))
    status = LOW_COVERAGE if LOW_COVERAGE in (a.status, b.status) else a.status
    return Measured(
        a.value + b.value, a.n + b.n, min(a.coverage, b.coverage), status, (*a.lacking, *b.lacking)
    )


def cooling_recirculation_rate_pct(
    circulating_m3: Measured | None, makeup_m3: Measured | None, **kw
) -> Measured:
    """Cooling-water recirculation rate, % = circulating / (circulating + make-up) × 100
    (Table 5; the module says why)."""
    return ratio(circulating_m3, sum_measured(circulating_m3, makeup_m3), scale=100.0,
                 parts=(circulating_m3, makeup_m3),
                 num_name="cooling_circulating", den_name="cooling_circulating + cooling_makeup",
                 high=100.0, **kw)  # fmt: skip


def process_reuse_rate_pct(
    reused_m3: Measured | None, intake_m3: Measured | None, **kw
) -> Measured:
    """Process wastewater reused after treatment, % = reused / (reused + fresh process intake)
    × 100 (Table 5; the module says why)."""
    return ratio(reused_m3, sum_measured(reused_m3, intake_m3), scale=100.0, num_name="process_reused",
                 parts=(reused_m3, intake_m3),
                 den_name="process_reused + process_intake", high=100.0, **kw)  # fmt: skip


def reclaimed_share_of_intake_pct(
    reclaimed_m3: Measured | None, total_intake_m3: Measured | None, **kw
) -> Measured:
    """Reclaimed municipal water's share of the plant's intake, % = reclaimed intake / total
    intake × 100, the total including the reclaimed water (Table 5)."""
    return ratio(reclaimed_m3, total_intake_m3, scale=100.0, num_name="reclaimed_intake",
                 den_name="total_intake", high=100.0, **kw)  # fmt: skip


def water_reuse_rate_pct(
    circulating_m3: Measured | None,
    reused_m3: Measured | None,
    total_intake_m3: Measured | None,
    **kw,
) -> Measured:
    """The overall repeat-use rate, % = (circulating + reused) / (circulating + reused + total
    intake) × 100 (the heading 工业用水重复利用率; GB/T 7119's form as we read it)."""
    again = sum_measured(circulating_m3, reused_m3)
    return ratio(again, sum_measured(again, total_intake_m3), scale=100.0,
                 parts=(circulating_m3, reused_m3, total_intake_m3),
                 num_name="water used again", den_name="all water used", high=100.0, **kw)  # fmt: skip
