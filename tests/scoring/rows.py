"""Test helpers: the demo plant's inputs, and those inputs with one row or plant fact changed."""

from __future__ import annotations

import dataclasses

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.scoring.evidence import load_evidence
from greenfoundry.scoring.indicators import load_indicators

DEMO = plant_file().parent


def demo_inputs():
    """The demo plant (config/plants/demo-dip): its config, indicators and evidence."""
    return (
        plant.load(DEMO / "plant.yaml", resolve_secrets=False),
        load_indicators(DEMO / "indicators.example.yaml"),
        load_evidence(DEMO / "evidence.yaml"),
    )


def with_row(inputs, row_id, **changes):
    """`inputs` (indicator values or evidence) with row `row_id`'s fields replaced."""
    rows = dict(inputs.rows)
    rows[row_id] = dataclasses.replace(rows[row_id], **changes)
    return dataclasses.replace(inputs, rows=rows)


def without_row(inputs, row_id):
    """`inputs` without row `row_id`."""
    rows = dict(inputs.rows)
    del rows[row_id]
    return dataclasses.replace(inputs, rows=rows)


def with_plant(cfg, **changes):
    """A plant config with facts of `plant:` replaced (product, declared_on, …)."""
    return dataclasses.replace(cfg, plant=dataclasses.replace(cfg.plant, **changes))


def with_furnaces(cfg, *furnaces):
    """A plant config with these furnaces: (id, kind, capacity, dn_min, dn_max) each."""
    units = {"cupola": "t/h", "induction": "t"}
    return dataclasses.replace(
        cfg,
        furnaces=tuple(
            plant.Furnace(fid, kind, float(cap), units[kind], lo, hi)
            for fid, kind, cap, lo, hi in furnaces
        ),
    )
