"""The spool on its own (no servers): order, durability across a restart, torn writes."""

from __future__ import annotations

from greenfoundry.ingest.spool import Spool


def test_batches_come_back_oldest_first_within_the_line_limit(tmp_path):
    spool = Spool(tmp_path)
    spool.append(["a 1", "a 2"], 2)
    spool.append(["b 1"], 0)  # e.g. a self-metrics line: not a reading
    spool.append(["c 1", "c 2", "c 3"], 3)
    assert (len(spool), spool.pending_lines, spool.pending_readings) == (3, 6, 5)
    paths, body, readings = spool.peek(3)
    # The first two batches hold 3 lines; the third would exceed the limit.
    assert body == b"a 1\na 2\nb 1\n" and readings == 2 and len(paths) == 2
    spool.drop(paths)
    paths, body, readings = spool.peek(1)  # at least one whole batch, even above the limit
    assert body == b"c 1\nc 2\nc 3\n" and readings == 3
    spool.drop(paths)
    assert (len(spool), spool.pending_lines, spool.pending_readings) == (0, 0, 0)
    assert list(tmp_path.iterdir()) == []


def test_a_restarted_spool_keeps_order_and_counts(tmp_path):
    first = Spool(tmp_path)
    for n in range(12):  # more than 10 so a lexical sort of unpadded numbers would fail
        first.append([f"m{n} 1"], 1)
    again = Spool(tmp_path)
    assert again.pending_readings == 12
    _, body, _ = again.peek(100)
    assert body == b"".join(f"m{n} 1\n".encode() for n in range(12))
    again.append(["last 1"], 1)  # continues the numbering after a restart
    _, body, _ = again.peek(100)
    assert body.endswith(b"m11 1\nlast 1\n")


def test_a_torn_write_is_discarded_at_start(tmp_path):
    spool = Spool(tmp_path)
    spool.append(["kept 1"], 1)
    # A crash between write and rename leaves a .tmp: its messages were never acknowledged,
    # so the broker still has them; the spool must not replay a partial batch.
    (tmp_path / "00000000000000000001-2-2.lp.tmp").write_bytes(b"torn 1\ntor")
    again = Spool(tmp_path)
    assert again.peek(100)[1] == b"kept 1\n"
    assert not list(tmp_path.glob("*.tmp"))
