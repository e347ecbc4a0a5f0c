"""Rollups from the readings: the standard's indicators per plant-local window, with what they covered.

The foundation is pure functions over pandas, one module per concept (house style 2):

* ``windows``: plant-local hours, shifts, days, calendar months and years, trailing 12 months
  (labelled by their start, ``[start, end)`` in UTC, DST-safe);
* ``measured``: what every metric returns (value, ``n``, ``coverage``, status, what it lacked);
* ``readings``: the checks every input series passes first;
* ``counters``, ``events``, ``instantaneous``: reading each kind of the glossary right;
* ``emissions``: stack hourly means (HJ 75), multiples of C and the Table 6 bands;
* ``table_c1``: energy per tonne of liquid iron per furnace and for the plant (Table C.1).

Nothing here reads InfluxDB or schedules anything: the rollup engine calls these functions.
"""
