"""Test helpers: an indicators or evidence input with one row changed or removed."""

from __future__ import annotations

import dataclasses


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
