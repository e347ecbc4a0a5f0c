"""The spool on its own (no servers): order, durability across a restart, torn writes."""

from __future__ import annotations

import pytest

from greenfoundry.ingest.spool import Spool, SpoolBusyError


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
    assert list(tmp_path.glob("*.lp")) == []


def test_a_restarted_spool_keeps_order_and_counts(tmp_path):
    first = Spool(tmp_path)
    for n in range(12):  # more than 10 so a lexical sort of unpadded numbers would fail
        first.append([f"m{n} 1"], 1)
    first.close()
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
    spool.close()
    # A crash between write and rename leaves a .tmp: its messages were never acknowledged,
    # so the broker still has them; the spool must not replay a partial batch.
    (tmp_path / "00000000000000000001-2-2.lp.tmp").write_bytes(b"torn 1\ntor")
    again = Spool(tmp_path)
    assert again.peek(100)[1] == b"kept 1\n"
    assert not list(tmp_path.glob("*.tmp"))


def test_two_owners_of_one_spool_are_refused(tmp_path):
    # Two processes sharing a spool would pick the same next file name and overwrite each
    # other's acknowledged batches.
    owner = Spool(tmp_path)
    with pytest.raises(SpoolBusyError, match="--instance"):
        Spool(tmp_path)
    owner.close()
    Spool(tmp_path).close()  # free again once released


def test_a_readonly_view_counts_without_touching_anything(tmp_path):
    owner = Spool(tmp_path)
    owner.append(["a 1", "a 2"], 2)
    inflight = tmp_path / "00000000000000000001-1-1.lp.tmp"
    inflight.write_bytes(b"being written")  # the owner's write in progress
    view = Spool(tmp_path, readonly=True)  # no lock taken, nothing deleted
    assert (view.pending_readings, len(view)) == (2, 1)
    assert inflight.exists()
    assert Spool(tmp_path / "absent", readonly=True).pending_readings == 0


def test_files_not_named_by_the_spool_are_ignored(tmp_path):
    spool = Spool(tmp_path)
    spool.append(["a 1"], 1)
    spool.close()
    (tmp_path / "notes.lp").write_text("hand-made")
    again = Spool(tmp_path)
    assert again.peek(10)[1] == b"a 1\n"


def test_the_spool_and_the_dead_letters_are_the_owners_only(tmp_path):
    # Issue 8: raw payloads and readings are not for other local users (0700 / 0600).
    import os

    from greenfoundry.ingest.deadletter import DeadLetterFile

    loose = tmp_path / "spool"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    spool = Spool(loose)
    spool.append(["m value=1.0 1"], 1)
    dead_path = tmp_path / "dead.jsonl"
    dead_path.write_text("")
    os.chmod(dead_path, 0o644)  # as an older ingest left it
    dead = DeadLetterFile(dead_path)
    dead.append([{"reason": "bad_shape"}])
    dead.mark_retained(["k"])
    dead.close()
    spool.close()
    assert oct(loose.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in loose.glob("*.lp")} == {"0o600"}
    assert oct(dead_path.stat().st_mode & 0o777) == "0o600"
    assert oct(dead.retained_path.stat().st_mode & 0o777) == "0o600"
