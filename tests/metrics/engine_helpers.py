"""Helpers for the engine tests: a plant config on the test stack with its own state folder,
hand-made readings written straight to InfluxDB, and every rollup point read back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from greenfoundry.metrics import schema
from greenfoundry.store import line, where
from tests.plant import ALL_TIME, plant_config, store


def metrics_config(tmp_path: Path, stack, plant_id: str, **metrics):
    cfg = plant_config(tmp_path, stack, plant_id)
    m = dataclasses.replace(cfg.metrics, state_dir=tmp_path / f"state-{plant_id}", **metrics)
    return dataclasses.replace(cfg, metrics=m)


def ns(text: str) -> int:
    """A UTC instant 'YYYY-MM-DDTHH:MM[:SS]' as integer ns."""
    return pd.Timestamp(text, tz="UTC").value


def write(st, plant_id: str, measurement: str, tags: dict, points) -> None:
    """points: [(utc text or ns, value), …] as float `value` readings of one series."""
    lines = []
    for t, v in points:
        t_ns = ns(t) if isinstance(t, str) else int(t)
        lines.append(
            line(measurement, {"plant": plant_id, "area": "a", **tags}, {"value": v}, t_ns)
        )
    st.write_lines(lines)


def every(start: str, minutes: int, step_min: float, value):
    """(ns, value) every step_min minutes for `minutes` minutes from start; value(i) or const."""
    t0 = ns(start)
    k = int(minutes / step_min)
    return [
        (t0 + int(i * step_min * 60e9), value(i) if callable(value) else value) for i in range(k)
    ]


def all_points(st, plant_id: str) -> dict:
    """{(measurement, tags…, time ns): {field: value}} of every rollup point of the plant."""
    out = {}
    for m in schema.MEASUREMENTS:
        df = st.query(f"SELECT * FROM {m} {where({'plant': plant_id}, **ALL_TIME)} GROUP BY *")
        if df.empty:
            continue
        tag_cols = [
            c
            for c in ("furnace", "stack", "outfall", "pollutant", "point", "window")
            if c in df.columns
        ]
        for rec in df.to_dict("records"):
            key = (m, *(rec.get(c) or "" for c in tag_cols), rec["time"].value)
            out[key] = {
                k: v
                for k, v in rec.items()
                if k not in ("time", "measurement", "plant", *tag_cols)
                and v is not None
                and not (isinstance(v, float) and v != v)
            }
    return out


def one(points: dict, measurement: str, *tags_and_time) -> dict:
    return points[(measurement, *tags_and_time)]


__all__ = ["all_points", "every", "metrics_config", "ns", "one", "store", "write"]
