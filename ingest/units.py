"""Unit conversion at the ingest edge: a source unit to a signal's canonical unit.

Each canonical unit has a table of accepted source spellings with a scale and an offset:
canonical = value * scale + offset. An unknown spelling is rejected, never guessed.
"""

from __future__ import annotations

# canonical unit -> {accepted source spelling: (scale, offset)}
CONVERSIONS: dict[str, dict[str, tuple[float, float]]] = {
    "kWh": {
        "kWh": (1.0, 0.0),
        "kwh": (1.0, 0.0),
        "Wh": (1e-3, 0.0),
        "MWh": (1e3, 0.0),
        "GJ": (1e3 / 3.6, 0.0),
        "MJ": (1 / 3.6, 0.0),
    },
    "kW": {"kW": (1.0, 0.0), "kw": (1.0, 0.0), "W": (1e-3, 0.0), "MW": (1e3, 0.0)},
    "kg": {"kg": (1.0, 0.0), "t": (1e3, 0.0), "g": (1e-3, 0.0)},
    "t": {"t": (1.0, 0.0), "kg": (1e-3, 0.0)},
    "degC": {
        "degC": (1.0, 0.0),
        "°C": (1.0, 0.0),
        "C": (1.0, 0.0),
        "℃": (1.0, 0.0),
        "K": (1.0, -273.15),
        "degF": (5 / 9, -32 * 5 / 9),
        "°F": (5 / 9, -32 * 5 / 9),
    },
    "mg/m3": {
        "mg/m3": (1.0, 0.0),
        "mg/m³": (1.0, 0.0),
        "mg/Nm3": (1.0, 0.0),
        "mg/Nm³": (1.0, 0.0),
        "g/m3": (1e3, 0.0),
        "ug/m3": (1e-3, 0.0),
        "µg/m3": (1e-3, 0.0),
        "μg/m3": (1e-3, 0.0),
    },
    "mg/L": {"mg/L": (1.0, 0.0), "mg/l": (1.0, 0.0), "g/m3": (1.0, 0.0), "ug/L": (1e-3, 0.0)},
    "dB(A)": {"dB(A)": (1.0, 0.0), "dBA": (1.0, 0.0)},  # an unweighted "dB" is not dB(A)
    "m3": {"m3": (1.0, 0.0), "m³": (1.0, 0.0), "L": (1e-3, 0.0), "l": (1e-3, 0.0)},
    "m3/h": {
        "m3/h": (1.0, 0.0),
        "m³/h": (1.0, 0.0),
        "L/s": (3.6, 0.0),
        "l/s": (3.6, 0.0),
        "m3/s": (3600.0, 0.0),
        "L/min": (0.06, 0.0),
    },
    "pcs": {"pcs": (1.0, 0.0), "": (1.0, 0.0)},
    "kvarh": {"kvarh": (1.0, 0.0), "varh": (1e-3, 0.0), "Mvarh": (1e3, 0.0)},
    "%": {"%": (1.0, 0.0), "pct": (1.0, 0.0)},
    "code": {"code": (1.0, 0.0), "": (1.0, 0.0)},
    "DN": {"DN": (1.0, 0.0), "": (1.0, 0.0)},
}


def conversion(source_unit: str, canonical_unit: str) -> tuple[float, float] | None:
    """(scale, offset) from `source_unit` to `canonical_unit`, or None if not accepted."""
    return CONVERSIONS.get(canonical_unit, {}).get(source_unit)
