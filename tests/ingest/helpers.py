"""Helpers of the ingest tests: declared instances, a broker of the test's own, process memory."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from greenfoundry.plant import PlantConfig


def with_instances(cfg: PlantConfig, instances: dict[str, list[str]]) -> PlantConfig:
    """`cfg` with `mqtt.instances` declared (each name its own topic filters)."""
    m = dataclasses.replace(
        cfg.mqtt, instances={k: tuple(v) for k, v in instances.items()}, subscribe=()
    )
    return dataclasses.replace(cfg, mqtt=m)


def with_share_group(cfg: PlantConfig, group: str, members: list[str]) -> PlantConfig:
    m = dataclasses.replace(cfg.mqtt, share_group=group, share_members=tuple(members))
    return dataclasses.replace(cfg, mqtt=m)


def ingest_process(
    cfg_path: Path, stack_dir: Path, log_path: Path, *args: str, env: dict | None = None
) -> subprocess.Popen:
    """`greenfoundry ingest` as its own process, its stderr appended to `log_path`."""
    env = {
        **os.environ,
        "GF_MQTT_PASSWORD": "unused",
        "GF_INFLUX_PASSWORD": "unused",
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "greenfoundry", "ingest", "--config", str(cfg_path)]
    if stack_dir is not None:
        cmd += ["--stack", str(stack_dir)]
    return subprocess.Popen(
        [*cmd, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "ab"),
    )


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


class OwnBroker:
    """A Mosquitto of the test's own (anonymous, on a free port, its own directory) for broker
    settings the shared stack does not have: tiny queue limits, a 1 s `$SYS` interval."""

    def __init__(self, tmp_path: Path, *conf_lines: str):
        from greenfoundry.stack import find_binary, free_port

        self.port = free_port()
        self.dir = tmp_path / f"mosquitto-{self.port}"
        self.dir.mkdir()
        self.log = self.dir / "mosquitto.log"
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    "persistence false",
                    f"log_dest file {self.log}",
                    *conf_lines,
                    "",
                ]
            )
        )
        self.proc = subprocess.Popen(
            [find_binary("mosquitto"), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from greenfoundry import mqtt
        from tests.plant import wait_for

        wait_for(lambda: mqtt.can_connect("127.0.0.1", self.port, None, None), 30, "mosquitto")

    def config(self, cfg: PlantConfig) -> PlantConfig:
        """`cfg` pointed at this broker, anonymously."""
        m = dataclasses.replace(
            cfg.mqtt, host="127.0.0.1", port=self.port, username=None, password=None
        )
        return dataclasses.replace(cfg, mqtt=m)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
