"""`report:` of the plant config: the rolling grade and the monthly snapshot (grade/README.md).

Placeholder of the lead, replaced by the snapshot's own parser: it accepts no keys yet.
"""

from __future__ import annotations

from typing import Any


def parse_report(node, cfg, base, env: dict[str, str] | None) -> Any:
    node.done()
    return None
