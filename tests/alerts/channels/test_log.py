"""The log channel: one line per notification, its level by severity (alerts/channels/log)."""

from __future__ import annotations

import logging

import pytest

from greenfoundry.alerts.channels import log as log_channel
from greenfoundry.errors import ConfigError
from tests.alerts.channels import node, notification, plant_cfg, sample


@pytest.mark.parametrize(
    ("severity", "event", "level"),
    [
        # The table of alerts/channels/log/README.md.
        ("info", "firing", logging.INFO),
        ("warning", "firing", logging.WARNING),
        ("alarm", "repeat", logging.ERROR),
        ("critical", "stale", logging.CRITICAL),
        # Good news is INFO whatever the rule's severity.
        ("critical", "resolved", logging.INFO),
        ("alarm", "acknowledged", logging.INFO),
    ],
)
def test_one_line_at_the_level_of_the_severity(tmp_path, caplog, severity, event, level):
    channel = log_channel.parse(node({"type": "log"}), plant_cfg(tmp_path, "log-a"), {}, "log")
    n = notification(7, "log-a", severity=severity, event=event, subject="Stack S1\nSO2 high")
    with caplog.at_level(logging.DEBUG, logger="greenfoundry.alerts"):
        channel.send(n)
    records = [r for r in caplog.records if r.name == "greenfoundry.alerts"]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == level
    # The subject's line break is joined: one notification, one line.
    assert record.getMessage() == (
        f"alert {event} {severity} plant=log-a id=log-a-stack-warning-0007: Stack S1 SO2 high"
    )
    assert record.alert_id == "log-a-stack-warning-0007"


def test_the_sample_parses_and_an_unknown_key_is_named(tmp_path):
    cfg = plant_cfg(tmp_path, "log-b")
    for name, mapping in sample("log").items():
        channel = log_channel.parse(node(mapping, name), cfg, None, name)
        assert (channel.name, channel.type) == (name, "log")
    with pytest.raises(ConfigError, match=r"alerts\.channels\.log\.level: unknown key"):
        log_channel.parse(node({"type": "log", "level": "info"}, "log"), cfg, None, "log")
    with pytest.raises(ConfigError, match=r"alerts\.channels\.log\.type: 'jsonl' is not allowed"):
        log_channel.parse(node({"type": "jsonl"}, "log"), cfg, None, "log")
