"""The configuration files greenfoundry ships: one folder per plant under `plants/`.

`plants/<plant>/plant.yaml` is the plant's config (the one place for its facts, and its
endpoints and signals), `evidence.yaml` the row values people declare about it (`greenfoundry
score` reads it by default from beside the plant.yaml), `indicators.example.yaml` a hand-typed
indicators file. Plants' folders sit side by side; nothing assumes one plant. The demo plant, `plants/demo-dip/`, documents every key. These files are package data: an
installed greenfoundry finds them here without the source tree.
"""

from __future__ import annotations

from pathlib import Path

PLANTS_DIR = Path(__file__).resolve().parent / "plants"
DEMO_PLANT_ID = "demo-dip"


def plant_file(plant_id: str = DEMO_PLANT_ID, name: str = "plant.yaml") -> Path:
    """A file of a shipped plant's folder (default: the demo plant's config)."""
    return PLANTS_DIR / plant_id / name
