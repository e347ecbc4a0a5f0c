"""A local Mosquitto + InfluxDB stack, with authentication on, for the demo and the tests.

`greenfoundry stack up --dir DIR` starts both servers as local processes with their data under DIR,
waits until each answers with credentials, and writes `DIR/stack.json` (mode 0600) with the
endpoints and the credentials a client needs. The same code backs the pytest fixtures, so every
test that crosses MQTT or InfluxDB talks to the real servers.

Ports are free ports picked at the first start (or given), then kept in stack.json, so a server
restarted in a test comes back where its clients expect it. Passwords are random per stack and
never logged.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from greenfoundry import mqtt
from greenfoundry.errors import StackError, StoreError

if TYPE_CHECKING:  # imported when used: `stack` commands do not need pandas
    from greenfoundry.store import InfluxStore

MQTT_USER = "greenfoundry"
INFLUX_ADMIN = "admin"
INFLUX_DATABASE = "greenfoundry"
START_TIMEOUT_S = 60.0

# Debian package that provides each binary; the stack installs it when it can.
PACKAGES = {"mosquitto": "mosquitto", "influxd": "influxdb"}


@dataclass(frozen=True)
class StackInfo:
    """What a client needs to reach the local stack. Printing it never shows the passwords."""

    dir: Path
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str
    mqtt_password: str = dataclasses.field(repr=False)
    influx_url: str = ""
    influx_username: str = ""
    influx_password: str = dataclasses.field(default="", repr=False)
    influx_database: str = INFLUX_DATABASE
    influx_rpc_port: int = 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binary(name: str, *, install: bool = True) -> str:
    """The path of `name`; install its Debian package when missing and we may, else a clear error."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    package = PACKAGES.get(name, name)
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
            subprocess.run(
                cmd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        return find_binary(name, install=False)
    raise StackError(
        f"{name} is not installed: install the Debian package '{package}' "
        f"(sudo apt-get install {package})"
    )


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
) -> None:
    """Poll `condition` until it holds; fail early if `proc` exits, with the tail of its log."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise StackError(
                f"{what}: the process exited with status {proc.returncode}{_log_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise StackError(f"{what}: not ready after {timeout_s:.0f} s{_log_tail(log)}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _log_tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    lines = log.read_text(errors="replace").strip().splitlines()[-5:]
    return ("; last log lines: " + " | ".join(lines)) if lines else ""


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int | None, name: str) -> bool:
    """True if `pid` runs and is `name` (after a reboot the pid in stack.json may be another
    program's: it must not be signalled, nor taken for our server)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie child of ours counts as gone
        return False
    return bool(cmdline) and os.path.basename(cmdline[0].decode(errors="replace")) == name


def mosquitto_password_line(username: str, password: str) -> str:
    """A line of a Mosquitto 2.0 password file: PBKDF2-SHA512, 101 iterations, 12-byte salt
    (the `$7$` format `mosquitto_passwd` writes). Made here so the password never appears in a
    command line or in an error message."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    b64 = base64.b64encode
    return f"{username}:$7$101${b64(salt).decode()}${b64(digest).decode()}\n"


class LocalStack:
    """Mosquitto and InfluxDB under one directory. Start, stop and restart each on its own."""

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        mqtt_port: int | None = None,
        influx_port: int | None = None,
    ):
        self.dir = Path(directory).resolve()
        self.state_file = self.dir / "stack.json"
        self._procs: dict[str, subprocess.Popen] = {}
        self.state = self._load_state()
        if mqtt_port:
            self.state["mqtt"]["port"] = mqtt_port
        if influx_port:
            self.state["influxdb"]["port"] = influx_port

    # ---- state --------------------------------------------------------------------------

    def _load_state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return {
            "mqtt": {
                "host": "127.0.0.1",
                "port": None,
                "username": MQTT_USER,
                "password": secrets.token_urlsafe(18),
            },
            "influxdb": {
                "port": None,
                "rpc_port": None,
                "username": INFLUX_ADMIN,
                "password": secrets.token_urlsafe(18),
                "database": INFLUX_DATABASE,
            },
            "pids": {},
        }

    def _save_state(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.state, fh, indent=2)
        os.replace(tmp, self.state_file)

    @property
    def info(self) -> StackInfo:
        m, i = self.state["mqtt"], self.state["influxdb"]
        return StackInfo(
            dir=self.dir,
            mqtt_host=m["host"],
            mqtt_port=m["port"],
            mqtt_username=m["username"],
            mqtt_password=m["password"],
            influx_url=f"http://127.0.0.1:{i['port']}" if i["port"] else "",
            influx_username=i["username"],
            influx_password=i["password"],
            influx_database=i["database"],
            influx_rpc_port=i["rpc_port"] or 0,
        )

    # ---- whole stack --------------------------------------------------------------------

    def up(self) -> StackInfo:
        self.start_mosquitto()
        self.start_influxdb()
        return self.info

    def down(self) -> None:
        errors = []
        for name in ("mosquitto", "influxd"):
            try:
                self._stop(name)
            except StackError as exc:
                errors.append(str(exc))
        if errors:
            raise StackError("; ".join(errors))

    def status(self) -> dict[str, dict]:
        info = self.info
        pids = self.state.get("pids", {})
        return {
            "mosquitto": {
                "pid": pids.get("mosquitto"),
                "running": _pid_alive(pids.get("mosquitto"), "mosquitto"),
                "endpoint": f"mqtt://{info.mqtt_host}:{info.mqtt_port}",
                "answering": bool(info.mqtt_port) and _port_open(info.mqtt_port),
            },
            "influxd": {
                "pid": pids.get("influxd"),
                "running": _pid_alive(pids.get("influxd"), "influxd"),
                "endpoint": info.influx_url,
                "answering": bool(info.influx_url) and self._influx_ping(),
            },
        }

    # ---- Mosquitto ----------------------------------------------------------------------

    def start_mosquitto(self) -> None:
        if self._running("mosquitto"):
            return
        binary = find_binary("mosquitto")
        m = self.state["mqtt"]
        m["port"] = m["port"] or free_port()
        base = self.dir / "mosquitto"
        (base / "data").mkdir(parents=True, exist_ok=True)
        passwd = base / "passwd"
        fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(mosquitto_password_line(m["username"], m["password"]))
        log = base / "mosquitto.log"
        conf = base / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    "# Written by greenfoundry stack; regenerated at every start.",
                    f"listener {m['port']} 127.0.0.1",
                    "allow_anonymous false",
                    f"password_file {passwd}",
                    # Persistence on: a graceful restart keeps persistent sessions and their queues.
                    "persistence true",
                    f"persistence_location {base / 'data'}/",
                    "autosave_interval 5",
                    # A persistent session's queue must hold a long ingest outage at plant rates.
                    "max_queued_messages 2000000",
                    "max_queued_bytes 0",
                    # No broker-side cap on QoS 1 messages in flight: the ingest's MQTT v5 receive
                    # maximum bounds it, so acknowledgements can be batched with the durable write.
                    "max_inflight_messages 0",
                    f"log_dest file {log}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "connection_messages false",
                    f"user {_current_user()}",
                    "",
                ]
            )
        )
        proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._procs["mosquitto"] = proc
        self.state["pids"]["mosquitto"] = proc.pid
        self._save_state()
        wait_until(
            lambda: self._mqtt_answers(),
            START_TIMEOUT_S,
            f"mosquitto on port {m['port']}",
            proc,
            log,
        )

    def _mqtt_answers(self) -> bool:
        """True once the broker accepts a CONNECT with the stack's credentials."""
        if not _port_open(self.state["mqtt"]["port"]):
            return False
        info = self.info
        return mqtt.can_connect(
            info.mqtt_host, info.mqtt_port, info.mqtt_username, info.mqtt_password
        )

    def stop_mosquitto(self) -> None:
        self._stop("mosquitto")

    # ---- InfluxDB -----------------------------------------------------------------------

    def start_influxdb(self) -> None:
        if self._running("influxd"):
            return
        binary = find_binary("influxd")
        i = self.state["influxdb"]
        i["port"] = i["port"] or free_port()
        i["rpc_port"] = i["rpc_port"] or free_port()
        base = self.dir / "influxdb"
        for sub in ("meta", "data", "wal"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        conf = base / "influxdb.conf"
        conf.write_text(
            "\n".join(
                [
                    "# Written by greenfoundry stack; regenerated at every start.",
                    "reporting-disabled = true",
                    f'bind-address = "127.0.0.1:{i["rpc_port"]}"',
                    "[meta]",
                    f'  dir = "{base / "meta"}"',
                    "[data]",
                    f'  dir = "{base / "data"}"',
                    f'  wal-dir = "{base / "wal"}"',
                    '  wal-fsync-delay = "0s"',
                    "  query-log-enabled = false",
                    "[monitor]",
                    "  store-enabled = false",
                    "[http]",
                    "  enabled = true",
                    f'  bind-address = "127.0.0.1:{i["port"]}"',
                    "  auth-enabled = true",
                    "  log-enabled = false",
                    "[continuous_queries]",
                    "  enabled = false",
                    "[logging]",
                    '  level = "warn"',
                    "",
                ]
            )
        )
        log = base / "influxd.log"
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                [binary, "-config", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=fh,
                start_new_session=True,
            )
        self._procs["influxd"] = proc
        self.state["pids"]["influxd"] = proc.pid
        self._save_state()
        wait_until(self._influx_ping, START_TIMEOUT_S, f"influxd on port {i['port']}", proc, log)
        self._influx_bootstrap()

    def _influx(self, *, auth: bool = True) -> InfluxStore:
        """A store on this stack's InfluxDB, as its admin or anonymous (for /ping and the first
        user). A new one each time, closed by the caller: a server restarted in between leaves
        no stale connection behind."""
        from greenfoundry.store import InfluxStore, StoreSettings

        i = self.state["influxdb"]
        return InfluxStore(
            StoreSettings(
                url=f"http://127.0.0.1:{i['port']}",
                database=i["database"],
                username=i["username"] if auth else None,
                password=i["password"] if auth else None,
            )
        )

    def _influx_ping(self) -> bool:
        with closing(self._influx(auth=False)) as store:
            return store.ping() is not None

    def _influx_bootstrap(self) -> None:
        """Create the admin user (allowed without auth while no user exists) and the database."""
        from greenfoundry.store import quote_ident, quote_string

        i = self.state["influxdb"]
        with closing(self._influx()) as admin, closing(self._influx(auth=False)) as anonymous:
            try:
                admin.query_raw("SHOW DATABASES", database="")
            except StoreError:  # no admin yet (or not ours): create it
                try:
                    anonymous.query_raw(
                        f"CREATE USER {quote_ident(i['username'])} WITH PASSWORD "
                        f"{quote_string(i['password'])} WITH ALL PRIVILEGES",
                        database="",
                    )
                except StoreError:  # its text is not shown: it could quote the statement
                    raise StackError(
                        "influxd: could not create the admin user; is the data directory "
                        f"{self.dir / 'influxdb'} from another stack?"
                    ) from None
            try:
                admin.create_database()
            except StoreError as exc:
                raise StackError(
                    f"influxd: could not create the database {i['database']!r}: {exc}"
                ) from None

    def stop_influxdb(self) -> None:
        self._stop("influxd")

    # ---- processes ----------------------------------------------------------------------

    def _running(self, name: str) -> bool:
        proc = self._procs.get(name)
        if proc is not None:
            return proc.poll() is None
        return _pid_alive(self.state.get("pids", {}).get(name), name)

    def _stop(self, name: str, timeout_s: float = 30.0) -> None:
        pid = self.state.get("pids", {}).get(name)
        proc = self._procs.pop(name, None)
        if pid and _pid_alive(pid, name):
            os.kill(pid, signal.SIGTERM)
            try:
                wait_until(lambda: not _pid_alive(pid, name), timeout_s, f"stopping {name}")
            except StackError:
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: not _pid_alive(pid, name), 10, f"killing {name}")
        if proc is not None:
            proc.wait(timeout=10)
        self.state.setdefault("pids", {})[name] = None
        if self.state_file.exists():
            self._save_state()


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def store_for(info: StackInfo, database: str | None = None):
    """An InfluxStore on the stack's InfluxDB, with its admin credentials."""
    from greenfoundry.store import InfluxStore, StoreSettings

    return InfluxStore(
        StoreSettings(
            url=info.influx_url,
            database=database or info.influx_database,
            username=info.influx_username,
            password=info.influx_password,
        )
    )


def load_stack_info(stack_dir: str | os.PathLike) -> StackInfo:
    path = Path(stack_dir) / "stack.json"
    if not path.exists():
        raise StackError(
            f"{path} does not exist: start the stack with `greenfoundry stack up --dir {stack_dir}`"
        )
    return LocalStack(stack_dir).info


def apply_stack(cfg, stack_dir: str | os.PathLike):
    """A copy of the plant config `cfg` pointed at the local stack in `stack_dir`."""
    from greenfoundry.plant import Secret

    info = load_stack_info(stack_dir)
    src = f"file:{Path(stack_dir) / 'stack.json'}"
    mqtt = dataclasses.replace(
        cfg.mqtt,
        host=info.mqtt_host,
        port=info.mqtt_port,
        username=info.mqtt_username,
        password=Secret(src, info.mqtt_password),
    )
    influx = dataclasses.replace(
        cfg.influxdb,
        url=info.influx_url,
        database=info.influx_database,
        username=info.influx_username,
        password=Secret(src, info.influx_password),
        token=None,
    )
    return dataclasses.replace(cfg, mqtt=mqtt, influxdb=influx)


# ---- CLI ------------------------------------------------------------------------------------


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stack",
        help="start, stop or inspect a local Mosquitto + InfluxDB (with auth)",
        description="A local Mosquitto and InfluxDB, each with authentication on, their data under "
        "DIR. `up` writes DIR/stack.json (mode 0600) with endpoints and credentials.",
    )
    sub = p.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start both servers and wait until they answer")
    up.add_argument("--dir", required=True, help="directory for data, logs and stack.json")
    up.add_argument("--mqtt-port", type=int, help="MQTT port (default: a free port, then kept)")
    up.add_argument(
        "--influx-port", type=int, help="InfluxDB HTTP port (default: a free port, then kept)"
    )
    up.set_defaults(func=_cmd_up)
    down = sub.add_parser("down", help="stop both servers")
    down.add_argument("--dir", required=True)
    down.set_defaults(func=_cmd_down)
    st = sub.add_parser("status", help="say whether each server runs and answers")
    st.add_argument("--dir", required=True)
    st.set_defaults(func=_cmd_status)


def _cmd_up(args) -> int:
    stack = LocalStack(args.dir, mqtt_port=args.mqtt_port, influx_port=args.influx_port)
    info = stack.up()
    print(f"mosquitto  mqtt://{info.mqtt_host}:{info.mqtt_port}  user {info.mqtt_username}")
    print(
        f"influxdb   {info.influx_url}  user {info.influx_username}  "
        f"database {info.influx_database}"
    )
    print(f"credentials in {stack.state_file}")
    return 0


def _cmd_down(args) -> int:
    if not (Path(args.dir) / "stack.json").exists():
        raise StackError(f"no stack in {args.dir} (no stack.json)")
    LocalStack(args.dir).down()
    print("stopped")
    return 0


def _cmd_status(args) -> int:
    if not (Path(args.dir) / "stack.json").exists():
        raise StackError(f"no stack in {args.dir} (no stack.json)")
    status = LocalStack(args.dir).status()
    ok = True
    for name, s in status.items():
        state = "running" if s["running"] else "stopped"
        answer = "answering" if s["answering"] else "not answering"
        print(f"{name:<10} {state:<8} {answer:<14} {s['endpoint']}  pid {s['pid'] or '-'}")
        ok = ok and s["running"] and s["answering"]
    return 0 if ok else 1
