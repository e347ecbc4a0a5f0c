"""The jsonl channel: one JSON line per notification, appended and fsync'd (alerts/channels/jsonl)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from greenfoundry.alerts.channels import jsonl
from greenfoundry.alerts.channels.base import ChannelError
from greenfoundry.errors import ConfigError
from tests.alerts.channels import node, notification, plant_cfg, sample, with_attachment


def test_lines_parse_back_in_order_and_a_reopened_file_appends(tmp_path):
    cfg = plant_cfg(tmp_path, "jsonl-a")
    spec = {"type": "jsonl", "path": "out/alerts/n.jsonl"}
    channel = jsonl.parse(node(spec), cfg, None, "journal")
    # Relative to the plant file (tmp_path/config/), not to the working directory.
    assert channel.path == tmp_path / "config" / "out" / "alerts" / "n.jsonl"
    sent = [notification(i, "jsonl-a") for i in range(3)]
    sent.append(with_attachment(notification(3, "jsonl-a", event="snapshot", rule="snapshot")))
    for n in sent[:2]:
        channel.send(n)
    channel.close()
    # Another instance on the same file (a restart) appends after what is there.
    again = jsonl.parse(node(spec), cfg, None, "journal")
    for n in sent[2:]:
        again.send(n)

    raw = channel.path.read_bytes()
    # Non-ASCII as it is, not \u escapes.
    assert "演示球墨铸管厂".encode() in raw and b"\\u" not in raw
    lines = raw.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [n.to_dict() for n in sent]
    # The attachment by name, type and size: 16 bytes (`<html>` 6 + 3 bytes of 测 + `</html>` 7).
    assert json.loads(lines[3])["attachments"] == [
        {"filename": "p-2026-10.html", "content_type": "text/html; charset=utf-8", "bytes": 16}
    ]


def test_file_mode_0640_whatever_the_umask_and_directories_made(tmp_path):
    cfg = plant_cfg(tmp_path, "jsonl-b")
    channel = jsonl.parse(
        node({"type": "jsonl", "path": str(tmp_path / "a/b/c.jsonl")}), cfg, None, "j"
    )
    old = os.umask(0o077)
    try:
        channel.send(notification(0, "jsonl-b"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(channel.path.stat().st_mode) == 0o640
    assert (tmp_path / "a" / "b").is_dir()


def test_a_torn_last_line_costs_only_itself(tmp_path):
    cfg = plant_cfg(tmp_path, "jsonl-c")
    channel = jsonl.parse(node({"type": "jsonl", "path": "n.jsonl"}), cfg, None, "j")
    channel.send(notification(0, "jsonl-c"))
    with open(channel.path, "ab") as f:
        f.write(b'{"id": "torn')  # a crash in the middle of a line
    channel.send(notification(1, "jsonl-c"))
    lines = channel.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and lines[1] == '{"id": "torn'
    assert json.loads(lines[2])["id"] == "jsonl-c-stack-warning-0001"


def test_an_unwritable_file_is_a_retryable_channel_error(tmp_path):
    cfg = plant_cfg(tmp_path, "jsonl-d")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    channel = jsonl.parse(node({"type": "jsonl", "path": str(blocker / "n.jsonl")}), cfg, None, "j")
    with pytest.raises(ChannelError, match=r"channel j: cannot append to .*n\.jsonl") as info:
        channel.send(notification(0, "jsonl-d"))
    assert type(info.value) is ChannelError


def test_sample_and_config_errors_name_the_key(tmp_path):
    cfg = plant_cfg(tmp_path, "jsonl-e")
    for name, mapping in sample("jsonl").items():
        channel = jsonl.parse(node(mapping, name), cfg, None, name)
        assert channel.path == tmp_path / "config" / "var" / "alerts" / "notifications.jsonl"
        assert (channel.retry.retries, channel.retry.retry_for_s) == (100, 86400.0)
    default = jsonl.parse(node({"type": "jsonl"}), cfg, None, "j")
    assert default.path == tmp_path / "config" / "var" / "alerts" / "notifications.jsonl"
    bad = [
        ({"type": "jsonl", "file": "x"}, r"alerts\.channels\.test\.file: unknown key"),
        ({"type": "jsonl", "path": 3}, r"alerts\.channels\.test\.path: 3 is not allowed"),
        ({"type": "jsonl", "path": str(tmp_path)}, r"\.path: .* expected a file, not a directory"),
        ({"type": "jsonl", "retries": -1}, r"\.retries: -1 is not allowed; expected between 0"),
        ({"type": "jsonl", "retry_for": "soon"}, r"\.retry_for: 'soon' is not allowed"),
    ]
    for spec, message in bad:
        with pytest.raises(ConfigError, match=message):
            jsonl.parse(node(spec), cfg, None, "test")
    assert (
        jsonl.parse(node({"type": "jsonl", "retry_for": "2h"}), cfg, None, "j").retry.retry_for_s
        == 7200
    )
