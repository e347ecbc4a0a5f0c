"""Tests of the alert channels and the dispatcher, and what they share: a plant config in a
test's folder, a notification, and a channel's node as the alerts config hands it over."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from greenfoundry import plant
from greenfoundry.alerts.notification import Attachment, Notification
from greenfoundry.errors import ConfigError
from greenfoundry.inputs import Node
from tests.plant import EXAMPLE, REPO

CHANNELS = REPO / "alerts" / "channels"
ENV = {"GF_MQTT_PASSWORD": "unused", "GF_INFLUX_PASSWORD": "unused"}


def plant_cfg(tmp_path: Path, plant_id: str, **mqtt) -> plant.PlantConfig:
    """The example plant under another id, its file in `tmp_path/config/` (so that paths
    relative to the plant file are visibly not relative to the working directory)."""
    raw = copy.deepcopy(EXAMPLE)
    raw["plant"]["id"] = plant_id
    raw["mqtt"].update(mqtt)
    folder = tmp_path / "config"
    folder.mkdir(exist_ok=True)
    path = folder / f"{plant_id}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return plant.load(path, env=ENV)


def node(data: dict, name: str = "test") -> Node:
    """A channel's mapping as `alerts.channels.<name>`, with the plant config's error class."""
    return Node(data, f"alerts.channels.{name}", file="plant.yaml", error=ConfigError)


def sample(type_: str) -> dict[str, dict]:
    """The channels of a type's sample.yaml (name → mapping)."""
    raw = yaml.safe_load((CHANNELS / type_ / "sample.yaml").read_text(encoding="utf-8"))
    return raw["alerts"]["channels"]


def notification(n: int = 0, plant_id: str = "p", **changes) -> Notification:
    """A notification as the alerts engine makes one (its words written here by hand)."""
    fields = dict(
        id=f"{plant_id}-stack-warning-{n:04d}",
        plant=plant_id,
        plant_name="Demo ductile-iron pipe plant 演示球墨铸管厂",
        event="firing",
        severity="warning",
        rule="stack-warning",
        subject=f"Warning: stack S1 SO2 at 0.72 C (limit 0.7 C) #{n}",
        text="Stack S1 SO2: the hourly mean reached 36 mg/m³, 0.72 of its limit C = 50 mg/m³.",
        markdown="**Stack S1 SO2** at 0.72 C",
        at_ns=1_790_000_000_000_000_000 + n * 60 * 10**9,
        since_ns=1_789_999_700_000_000_000,
        value=0.72,
        limit=0.7,
        unit="C",
        trend="+0.04 C/h, 0.8 C in about 2 h",
        link="greenfoundry alerts list --config plant.yaml",
        details={"target": "S1/so2", "stack": "S1", "pollutant": "so2"},
    )
    fields.update(changes)
    return Notification(**fields)


def with_attachment(n: Notification) -> Notification:
    import dataclasses

    report = Attachment("p-2026-10.html", "text/html; charset=utf-8", b"<html>\xe6\xb5\x8b</html>")
    return dataclasses.replace(n, attachments=(report,))


class HookServer:
    """A real HTTP server on 127.0.0.1 in a thread that records every request and answers
    from a script: `answers` is a list of (status, headers) taken in order, then 200."""

    def __init__(
        self,
        answers: list[tuple[int, dict[str, str]]] | None = None,
        *,
        tls_dir: Path | None = None,
    ):
        import http.server
        import ssl
        import threading
        import time

        self.requests: list[dict] = []
        self.answers = list(answers or [])
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                size = int(self.headers.get("Content-Length", 0))
                data = self.rfile.read(size)
                status, headers = server.answers.pop(0) if server.answers else (200, {})
                server.requests.append(
                    {
                        "at": time.monotonic(),
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": data,
                        "status": status,
                    }
                )
                answer = f"answer {status}".encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.scheme = "http"
        if tls_dir is not None:  # HTTPS with the certificate of greenfoundry.stack's local CA
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_dir / "server.crt", tls_dir / "server.key")
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        # A short poll: shutdown() waits for it, once per test.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def bodies(self, status: int | None = None) -> list[dict]:
        import json

        return [
            json.loads(r["body"]) for r in self.requests if status is None or r["status"] == status
        ]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class HangServer:
    """A TCP server that accepts connections and never answers, until closed."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        import contextlib
        import socket

        with contextlib.suppress(OSError):  # not connected: nothing to shut down
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in self.held:
            conn.close()
