"""A local Mosquitto + InfluxDB stack, with authentication and least privilege, for the demo and
the tests.

`greenfoundry stack up --dir DIR` starts both servers as local processes with their data under
DIR (mode 0700), waits until each answers with credentials, and writes `DIR/stack.json` (mode
0600) with the endpoints and each role's credentials. The same code backs the pytest fixtures,
so every test that crosses MQTT or InfluxDB talks to the real servers.

Accounts, one per role (stack.json `mqtt.accounts`, `influxdb.users`):

- Mosquitto runs the dynamic security plugin (Debian's 2.0.11 ships it). Unlike an `acl_file`,
  which grants every SUBSCRIBE and only filters at delivery (a device in the ingest's share group
  then takes its share of the stream into nowhere), the plugin refuses a subscription it does not
  allow, and it can bind an account to one client id. Roles: `ingest` subscribes to the plants'
  topics (plain or in a share group) and reads `$SYS/broker/#`, and may not publish; a plant's
  devices (`plant-<id>`) publish under `<topic_root>/<id>/#` only, never under the system's
  `<topic_root>/<id>/_alerts/#`, and subscribe to nothing; `alerts` (the alerts engine's MQTT
  channel) publishes and retains the alerts' state under `<topic_root>/+/_alerts/#` and may read
  that back, nothing else; `admin` only manages the plugin (`$CONTROL/dynamic-security/#`);
  `operator` is the stack owner's tool account (tests that both publish and read, dashboards,
  `mosquitto_sub`), which reads the alerts too: no component uses it.
  Every device account is bound to its own client id, so no device can connect with the ingest's
  client id and wipe its queued session (the plugin binds an account to an id, not an id to an
  account: an unbound account may use any id).
- InfluxDB: `admin` (set-up only), `ingest` (WRITE on the database), `metrics` (ALL: it reads
  readings and writes rollups), `reader` (READ: status, dashboards, the demo).
- A park (`stack up --park FILE`, `LocalStack.add_park`): each plant of the park file gets a
  database and a reader of its own (`add_plant`), and the park a reader of its own
  (`gf-park-reader-<park>`, `add_park_reader`) with READ on those plant databases and on nothing
  else, for the park dashboard's data sources; `stack env --park ID` prints its user and
  password, on request, for Grafana's environment.

Ports are free ports picked at the first start (or given), then kept in stack.json, so a server
restarted in a test comes back where its clients expect it. Passwords are random per stack and
never logged.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from greenfoundry import mqtt
from greenfoundry.errors import ConfigError, StackError, StoreError
from greenfoundry.mqtt import ALERTS_LEVEL

if TYPE_CHECKING:  # imported when used: `stack` commands do not need pandas
    from greenfoundry.store import InfluxStore

TOPIC_ROOT = "gf/v1"
INFLUX_DATABASE = "greenfoundry"
START_TIMEOUT_S = 60.0
DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"

MQTT_ROLES = ("admin", "ingest", "operator", "alerts")  # device accounts are made per plant
INFLUX_ROLES = ("admin", "ingest", "metrics", "reader")
# What each InfluxDB role may do on the plant's database (InfluxQL GRANT).
INFLUX_GRANTS = {"ingest": "WRITE", "metrics": "ALL", "reader": "READ"}

# Broker limits (see README, "Delivery guarantees"). A save of the persistence file blocks the
# broker for a time that grows with what is queued (about 0.2 s for 200,000 messages here), so
# the interval is short but time-based: saving on every change would cost a save per message.
AUTOSAVE_INTERVAL_S = 1
# A persistent session's queue while its ingest is away: the outage it survives is
# MAX_QUEUED_MESSAGES / the plant's message rate (1,000,000 at 1,000 messages/s: 16 min). Past
# either limit Mosquitto drops new messages for that session, after acknowledging them.
MAX_QUEUED_MESSAGES = 1_000_000
MAX_QUEUED_BYTES = 1024 * 2**20  # payload bytes
# Room for the fixed header, the topic and the properties on top of the payload limit: the
# same allowance as the Maximum Packet Size the ingest announces
# (greenfoundry.ingest.service.PACKET_HEADER_ALLOWANCE).
PACKET_OVERHEAD_BYTES = 16 * 1024

# Debian package that provides each binary; the stack installs it when it can.
PACKAGES = {"mosquitto": "mosquitto", "influxd": "influxdb", "openssl": "openssl"}


# The park dashboard's Grafana environment for InfluxDB 1.x (dashboards/park.py ENV_URL,
# ENV_USER, ENV_PASSWORD). Named here again because the `stack` commands do not import the
# dashboards, which need pandas and the Grafana SDK; tests/kernel/test_stack_park_reader.py
# fails when the two disagree.
PARK_ENV_URL = "GF_PARK_INFLUX_URL"
PARK_ENV_USER = "GF_PARK_INFLUX_READER_USER"
PARK_ENV_PASSWORD = "GF_PARK_INFLUX_READER_PASSWORD"


@dataclass(frozen=True)
class Account:
    username: str
    password: str = dataclasses.field(repr=False)


@dataclass(frozen=True)
class ParkReader:
    """What `LocalStack.add_park` made for a park: its reader, the database of each of its
    plants (plant id → database, in the park file's order), and the databases whose grant this
    call revoked (plants that left the park since the last call)."""

    park_id: str
    account: Account
    databases: dict[str, str]
    revoked: tuple[str, ...] = ()


@dataclass(frozen=True)
class StackInfo:
    """What a client needs to reach the local stack. Printing it never shows the passwords.

    `mqtt_username`/`mqtt_password` are the operator account and `influx_username`/
    `influx_password` the InfluxDB admin (for tests and tools); components take their role's
    account from `mqtt_account(role)` / `influx_account(role)`, or a plant's device account from
    `device_account(...)`."""

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
    mqtt_tls_port: int = 0  # 0: no TLS listener
    tls_dir: Path | None = None  # ca.crt, client.crt, client.key when the TLS listener runs
    mqtt_accounts: dict = dataclasses.field(default_factory=dict, repr=False)
    influx_users: dict = dataclasses.field(default_factory=dict, repr=False)
    device_secret: str = dataclasses.field(default="", repr=False)
    topic_root: str = TOPIC_ROOT
    # The plants of a park with a database and reader of their own (`LocalStack.add_plant`):
    # plant id → {database, username, password}.
    influx_plants: dict = dataclasses.field(default_factory=dict, repr=False)
    # The readers of parks (`LocalStack.add_park_reader`): park id → {username, password}.
    influx_parks: dict = dataclasses.field(default_factory=dict, repr=False)

    def park_account(self, park_id: str) -> Account:
        """The reader of park `park_id` (READ on its plants' databases only)."""
        if park_id not in self.influx_parks:
            raise StackError(
                f"the stack in {self.dir} has no reader of park {park_id!r}: make it with "
                f"`greenfoundry stack up --dir {self.dir} --park FILE`"
            )
        return Account(**self.influx_parks[park_id])

    def mqtt_account(self, role: str) -> Account:
        if role not in self.mqtt_accounts:
            raise StackError(f"the stack has no MQTT account for role {role!r}")
        return Account(**self.mqtt_accounts[role])

    def influx_account(self, role: str) -> Account:
        if role not in self.influx_users:
            raise StackError(f"the stack has no InfluxDB user for role {role!r}")
        return Account(**self.influx_users[role])

    def device_account(
        self, plant_id: str, client_id: str | None = None, *, bind: bool = True
    ) -> Account:
        """The account of a device of `plant_id` that connects as `client_id` (default
        `dev-<plant>`; the account's username), created at the broker when new. It may publish
        under the plant's topics only, and, bound, connect with that client id only.

        Its password is derived from the stack's device secret, so any holder of stack.json
        gets the same account without stack.json being rewritten."""
        name = client_id or f"dev-{plant_id}"
        password = hmac.new(self.device_secret.encode(), name.encode(), "sha256").hexdigest()
        _ensure_device(self, plant_id, name, password, bind=bind)
        return Account(name, password)


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


def _port_taken(port: int) -> bool:
    """True if something listens on 127.0.0.1:`port` (or it cannot be bound). SO_REUSEADDR, as
    the servers themselves set it, so a port in TIME_WAIT after our own server stopped is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _pbkdf2(password: str) -> tuple[str, str]:
    """(salt, hash) in base64, PBKDF2-SHA512 with 101 iterations: what Mosquitto 2.0 writes in
    its password file and the dynamic security plugin's file."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    return base64.b64encode(salt).decode(), base64.b64encode(digest).decode()


def _acl(acltype: str, topic: str, *, allow: bool = True, priority: int = 0) -> dict:
    return {"acltype": acltype, "topic": topic, "priority": priority, "allow": allow}


def alerts_filter(topic_root: str, plant_id: str = "+") -> str:
    """The topic filter of the alerts' state: of one plant, or of every plant (`+`)."""
    return f"{topic_root}/{plant_id}/{ALERTS_LEVEL}/#"


def _device_role(plant_id: str, topic_root: str) -> dict:
    """A plant's devices publish under the plant's topics, except the alerts' state. Within a
    role the plugin checks ACLs from the highest priority down and the first whose topic matches
    decides (Mosquitto's dynamic-security documentation, "Priorities"), so the deny at priority
    1 wins over the allow at 0 for `_alerts` and nowhere else."""
    return {
        "rolename": f"plant-{plant_id}",
        "acls": [
            _device_alerts_deny(plant_id, topic_root),
            _acl("publishClientSend", f"{topic_root}/{plant_id}/#"),
        ],
    }


def _device_alerts_deny(plant_id: str, topic_root: str) -> dict:
    return _acl("publishClientSend", alerts_filter(topic_root, plant_id), allow=False, priority=1)


def _alerts_role(topic_root: str) -> dict:
    """The alerts engine's channel: it publishes (retained) the alerts' state of every plant and
    may read it back (the current state after a restart); no reading topic, no `$SYS`."""
    alerts = alerts_filter(topic_root)
    return {
        "rolename": "alerts",
        "acls": [
            _acl("publishClientSend", alerts),
            _acl("subscribePattern", alerts),
            _acl("publishClientReceive", alerts),
        ],
    }


def dynsec_config(accounts: dict, topic_root: str) -> dict:
    """The dynamic security plugin's first configuration: the roles, and one client per role.
    Default access: nothing, so a role gets only what it lists."""
    everything = f"{topic_root}/#"
    roles = [
        {
            "rolename": "admin",
            "acls": [
                _acl("publishClientSend", "$CONTROL/dynamic-security/#"),
                _acl("subscribePattern", "$CONTROL/dynamic-security/#"),
                _acl("publishClientReceive", "$CONTROL/dynamic-security/#"),
            ],
        },
        {
            "rolename": "ingest",
            "acls": [
                _acl("subscribePattern", everything),
                _acl("subscribePattern", f"$share/+/{everything}"),
                _acl("publishClientReceive", everything),
                _acl("subscribePattern", "$SYS/broker/#"),
                _acl("publishClientReceive", "$SYS/broker/#"),
            ],
        },
        {
            "rolename": "operator",
            "acls": [
                _acl("publishClientSend", everything),
                _acl("subscribePattern", everything),
                _acl("publishClientReceive", everything),
                _acl("subscribePattern", "$SYS/#"),
                _acl("publishClientReceive", "$SYS/#"),
            ],
        },
        _alerts_role(topic_root),
    ]
    clients = []
    for role, acc in accounts.items():
        salt, digest = _pbkdf2(acc["password"])
        clients.append(
            {
                "username": acc["username"],
                "salt": salt,
                "password": digest,
                "iterations": 101,
                "roles": [{"rolename": role}],
            }
        )
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "roles": roles,
        "groups": [],
    }


def _ensure_device(
    info: StackInfo, plant_id: str, username: str, password: str, *, bind: bool
) -> None:
    """Create the plant's device role and this device's account (bound to its client id) at the
    broker, through the plugin's control topic as the stack's admin. Idempotent. A role made
    before devices were kept out of `_alerts` gets that deny added."""
    admin = info.mqtt_account("admin")
    deny = _device_alerts_deny(plant_id, info.topic_root)
    commands = [
        {"command": "createRole", **_device_role(plant_id, info.topic_root)},
        {"command": "addRoleACL", "rolename": f"plant-{plant_id}", **deny},
        {
            "command": "createClient",
            "username": username,
            "password": password,
            "roles": [{"rolename": f"plant-{plant_id}"}],
            **({"clientid": username} if bind else {}),
        },
        {"command": "getClient", "username": username},
    ]
    answers = _dynsec_call(info, admin, commands)
    for cmd, answer in zip(commands, answers, strict=True):
        error = answer.get("error")
        if error and "already exists" not in error:
            raise StackError(f"mosquitto: {cmd['command']} for plant {plant_id!r}: {error}")
    # An account made unbound before (the simulator's was, by an older stack) is bound now.
    bound_to = answers[-1].get("data", {}).get("client", {}).get("clientid")
    if bind and bound_to != username:
        set_id = {"command": "setClientId", "username": username, "clientid": username}
        (answer,) = _dynsec_call(info, admin, [set_id])
        if answer.get("error"):
            raise StackError(f"mosquitto: setClientId for {username!r}: {answer['error']}")


def _ensure_accounts(info: StackInfo) -> None:
    """Give a broker whose account file was written by an older stack the roles and accounts
    it lacks (the `alerts` account came later), through the plugin's control topic. What
    exists is left as it is."""
    roles = dynsec_config({}, info.topic_root)["roles"]
    commands = [{"command": "createRole", **role} for role in roles] + [
        {
            "command": "createClient",
            "username": acc["username"],
            "password": acc["password"],
            "roles": [{"rolename": role}],
        }
        for role, acc in info.mqtt_accounts.items()
    ]
    answers = _dynsec_call(info, info.mqtt_account("admin"), commands)
    for cmd, answer in zip(commands, answers, strict=True):
        error = answer.get("error")
        if error and "already exists" not in error:
            name = cmd.get("rolename") or cmd.get("username")
            raise StackError(f"mosquitto: {cmd['command']} {name!r}: {error}")


def _dynsec_call(info: StackInfo, admin: Account, commands: list[dict]) -> list[dict]:
    """Send `commands` to the dynamic security plugin and return its responses, one per
    command, in their order.

    Every admin connection reads the one response topic, so a caller also receives the
    answers to commands another process or thread sent at the same time (two ingests, two
    simulators making their device accounts): each command carries a `correlationData` of
    this call's own, which the plugin returns with its response, and a response without ours
    is not this call's. Matching by position alone once handed a caller another's shorter
    answer (a raw ValueError of `zip`)."""
    done = threading.Event()
    answer: dict = {}
    tag = secrets.token_hex(8)
    commands = [{**cmd, "correlationData": f"{tag}-{n}"} for n, cmd in enumerate(commands)]
    wanted = {cmd["correlationData"]: n for n, cmd in enumerate(commands)}
    responses: dict[int, dict] = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            answer["error"] = f"the admin account was refused ({reason_code})"
            done.set()
        else:
            client.subscribe(f"{DYNSEC_TOPIC}/response", qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        if reason_codes[0].is_failure:
            answer["error"] = "the admin account may not read the plugin's answers"
            done.set()
        else:
            client.publish(DYNSEC_TOPIC, json.dumps({"commands": commands}), qos=1)

    def on_message(client, userdata, msg):
        try:
            got = json.loads(msg.payload).get("responses", [])
        except (ValueError, AttributeError):
            return  # not the plugin's answer: nothing of ours
        for response in got if isinstance(got, list) else []:
            n = wanted.get(response.get("correlationData")) if isinstance(response, dict) else None
            if n is not None:
                responses[n] = response
        if len(responses) == len(commands):
            done.set()

    client = mqtt.make_client("", admin.username, admin.password)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    try:
        client.connect(info.mqtt_host, info.mqtt_port, keepalive=10, clean_start=True)
    except OSError as exc:
        raise StackError(f"mosquitto on port {info.mqtt_port} unreachable: {exc}") from None
    client.loop_start()
    try:
        if not done.wait(10):
            raise StackError("mosquitto: no answer from the dynamic security plugin in 10 s")
    finally:
        client.disconnect()
        client.loop_stop()
    if "error" in answer:
        raise StackError(f"mosquitto: {answer['error']}")
    return [responses[n] for n in range(len(commands))]


def make_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, made
    with openssl into `directory` (keys 0600). Kept across restarts; made once."""
    if (directory / "client.crt").exists():
        return
    openssl = find_binary("openssl")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def run(*args: str) -> None:
        proc = subprocess.run(
            [openssl, *args], cwd=directory, capture_output=True, text=True, umask=0o077
        )
        if proc.returncode:
            raise StackError(f"openssl {args[0]} failed: {proc.stderr.strip()[-300:]}")

    days = "3650"
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", days, "-subj", "/CN=greenfoundry local stack CA")  # fmt: skip
    _write_private(
        directory / "server.ext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    _write_private(directory / "client.ext", "extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "gf-ingest")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", f"/CN={cn}")  # fmt: skip
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", days, "-extfile", f"{name}.ext")  # fmt: skip


class LocalStack:
    """Mosquitto and InfluxDB under one directory. Start, stop and restart each on its own."""

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        mqtt_port: int | None = None,
        influx_port: int | None = None,
        tls: bool = False,
        tls_port: int | None = None,
        max_payload_bytes: int | None = None,
    ):
        self.dir = Path(directory).resolve()
        self.state_file = self.dir / "stack.json"
        self._procs: dict[str, subprocess.Popen] = {}
        self.state = self._load_state()
        if mqtt_port:
            self.state["mqtt"]["port"] = mqtt_port
        if influx_port:
            self.state["influxdb"]["port"] = influx_port
        if tls or tls_port:
            self.state["mqtt"]["tls_port"] = tls_port or self.state["mqtt"].get("tls_port") or 0
            self.state["mqtt"]["tls"] = True
        if max_payload_bytes:
            self.state["mqtt"]["max_payload_bytes"] = max_payload_bytes

    # ---- state --------------------------------------------------------------------------

    def _load_state(self) -> dict:
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        m = state.setdefault("mqtt", {"host": "127.0.0.1", "port": None})
        i = state.setdefault("influxdb", {"port": None, "rpc_port": None})
        i.setdefault("database", INFLUX_DATABASE)
        state.setdefault("pids", {})
        m.setdefault("topic_root", TOPIC_ROOT)
        m.setdefault("device_secret", secrets.token_urlsafe(24))
        m.setdefault("max_payload_bytes", _default_max_payload_bytes())
        accounts = m.setdefault("accounts", {})
        for role in MQTT_ROLES:
            accounts.setdefault(
                role, {"username": f"gf-{role}", "password": secrets.token_urlsafe(18)}
            )
        users = i.setdefault("users", {})
        for role in INFLUX_ROLES:
            users.setdefault(
                role, {"username": f"gf-{role}", "password": secrets.token_urlsafe(18)}
            )
        # The plain fields every client read before there were roles: operator and admin.
        m["username"], m["password"] = (
            accounts["operator"]["username"],
            accounts["operator"]["password"],
        )
        i["username"], i["password"] = users["admin"]["username"], users["admin"]["password"]
        return state

    def _save_state(self) -> None:
        self._make_dir(self.dir)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.state, fh, indent=2)
        os.replace(tmp, self.state_file)

    @staticmethod
    def _make_dir(path: Path) -> None:
        """A directory only its owner can enter (raw payloads and credentials live below)."""
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)

    @property
    def info(self) -> StackInfo:
        m, i = self.state["mqtt"], self.state["influxdb"]
        tls = bool(m.get("tls"))
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
            mqtt_tls_port=(m.get("tls_port") or 0) if tls else 0,
            tls_dir=self.dir / "mosquitto" / "tls" if tls else None,
            mqtt_accounts=m["accounts"],
            influx_users=i["users"],
            device_secret=m["device_secret"],
            topic_root=m["topic_root"],
            influx_plants=i.get("plants", {}),
            influx_parks=i.get("parks", {}),
        )

    # ---- whole stack --------------------------------------------------------------------

    def up(self) -> StackInfo:
        """Start both servers. Ports are checked first, and a server this call started is
        stopped again when the other cannot start: nothing is left running half-way."""
        self._check_ports()
        started = []
        try:
            for name, start in (
                ("mosquitto", self.start_mosquitto),
                ("influxd", self.start_influxdb),
            ):
                if not self._running(name):
                    started.append(name)
                start()
        except BaseException:
            for name in reversed(started):
                with suppress(StackError):
                    self._stop(name)
            raise
        return self.info

    def _check_ports(self) -> None:
        m, i = self.state["mqtt"], self.state["influxdb"]
        wanted = []
        if not self._running("mosquitto"):
            wanted += [(m["port"], "MQTT", "--mqtt-port")]
            if m.get("tls"):
                wanted += [(m.get("tls_port"), "MQTT over TLS", "--tls-port")]
        if not self._running("influxd"):
            wanted += [
                (i["port"], "InfluxDB HTTP", "--influx-port"),
                (i["rpc_port"], "InfluxDB RPC", None),
            ]
        for port, what, option in wanted:
            if port and _port_taken(port):
                hint = f"; choose another with {option}" if option else ""
                raise StackError(f"port {port} ({what}) is already in use by another program{hint}")

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

    def mosquitto_conf(self) -> str:
        """The broker's config (also what `docker/mosquitto/mosquitto.conf` mirrors)."""
        m = self.state["mqtt"]
        base = self.dir / "mosquitto"
        payload = int(m["max_payload_bytes"])
        lines = [
            "# Written by greenfoundry stack; regenerated at every start.",
            "per_listener_settings false",
            f"listener {m['port']} 127.0.0.1",
        ]
        if m.get("tls"):
            tls = base / "tls"
            lines += [
                f"listener {m['tls_port']} 127.0.0.1",
                f"cafile {tls / 'ca.crt'}",
                f"certfile {tls / 'server.crt'}",
                f"keyfile {tls / 'server.key'}",
                "require_certificate true",
                "tls_version tlsv1.2",
            ]
        lines += [
            "allow_anonymous false",
            f"plugin {_dynsec_plugin()}",
            f"plugin_opt_config_file {base / 'dynsec.json'}",
            # Persistence on: a restart keeps persistent sessions and their queues. A crash
            # loses what arrived since the last save: at most AUTOSAVE_INTERVAL_S of traffic.
            "persistence true",
            f"persistence_location {base / 'data'}/",
            f"autosave_interval {AUTOSAVE_INTERVAL_S}",
            "autosave_on_changes false",
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            f"max_queued_bytes {MAX_QUEUED_BYTES}",
            # The ingest's limit at the broker: a packet with no room in the ingest's Maximum
            # Packet Size (its payload limit + the header allowance) is refused, the publisher
            # disconnected with "packet too large", whatever its protocol version. Not
            # message_size_limit: it completes the QoS flow, so a v3.1.1 publisher is told
            # "success" for a message dropped, and paho cannot decode its v5 refusal. A payload
            # just over the ingest's limit still reaches the ingest, which dead-letters it.
            "message_size_limit 0",
            f"max_packet_size {payload + PACKET_OVERHEAD_BYTES}",
            # No broker-side cap on QoS 1 messages in flight: the ingest's MQTT v5 receive
            # maximum bounds it, so acknowledgements can be batched with the durable write.
            "max_inflight_messages 0",
            f"log_dest file {base / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages false",
            f"user {_current_user()}",
            "",
        ]
        return "\n".join(lines)

    def start_mosquitto(self) -> None:
        if self._running("mosquitto"):
            return
        binary = find_binary("mosquitto")
        m = self.state["mqtt"]
        m["port"] = m["port"] or free_port()
        if m.get("tls"):
            m["tls_port"] = m.get("tls_port") or free_port()
        base = self.dir / "mosquitto"
        self._make_dir(self.dir)
        self._make_dir(base)
        self._make_dir(base / "data")
        if m.get("tls"):
            make_certificates(base / "tls")
        dynsec = base / "dynsec.json"
        existed = dynsec.exists()
        if not existed:  # the plugin owns it afterwards (device accounts are added)
            fd = os.open(dynsec, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(dynsec_config(m["accounts"], m["topic_root"]), fh, indent=1)
        log = base / "mosquitto.log"
        conf = base / "mosquitto.conf"
        _write_private(conf, self.mosquitto_conf())
        proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,  # its log, persistence file and the plugin's file: owner only
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
        if existed:
            _ensure_accounts(self.info)

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

    def kill_mosquitto(self) -> None:
        """SIGKILL the broker: a crash, with no final save."""
        pid = self.state.get("pids", {}).get("mosquitto")
        if pid and _pid_alive(pid, "mosquitto"):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not _pid_alive(pid, "mosquitto"), 10, "killing mosquitto")
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
        self._make_dir(self.dir)
        self._make_dir(base)
        for sub in ("meta", "data", "wal"):
            self._make_dir(base / sub)
        conf = base / "influxdb.conf"
        _write_private(
            conf,
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
            ),
        )
        log = base / "influxd.log"
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as fh:
            proc = subprocess.Popen(
                [binary, "-config", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=fh,
                start_new_session=True,
                umask=0o077,  # influxd makes meta.db 0644 and its shards 0755 otherwise
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
        """Create the admin user (allowed without auth while no user exists), the database, and
        one user per role with only its grant on that database."""
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
                existing = _influx_users(admin)
                db = quote_ident(i["database"])
                for role, grant in INFLUX_GRANTS.items():
                    user = i["users"][role]
                    _create_user(admin, user["username"], user["password"], existing)
                    name = quote_ident(user["username"])
                    admin.query_raw(f"GRANT {grant} ON {db} TO {name}", database="")
            except StoreError as exc:
                raise StackError(
                    f"influxd: could not set up the database {i['database']!r} and its users: "
                    f"{_without(exc, i)}"
                ) from None

    def stop_influxdb(self) -> None:
        self._stop("influxd")

    def add_plant(self, plant_id: str) -> Account:
        """Read isolation in a park on InfluxDB 1.x: a database of the plant's own
        (`plant_database(plant_id)`) and a reader of its own with READ on that database only,
        so the plant's people read their plant and nothing else (README, "Least privilege").
        The stack's ingest (WRITE) and metrics (ALL) users get their grants on it too, so the
        components serve it as they serve the shared database. Idempotent: the same account
        again, its grants set again. Returns the reader's account (kept in stack.json,
        `influxdb.plants`, mode 0600). InfluxDB must be running."""
        from greenfoundry.plant import ID_RE
        from greenfoundry.store import quote_ident

        if not isinstance(plant_id, str) or not ID_RE.match(plant_id):
            raise StackError(f"add_plant: {plant_id!r} is not a plant id")
        i = self.state["influxdb"]
        plants = i.setdefault("plants", {})
        entry = plants.get(plant_id) or {
            "database": plant_database(plant_id),
            "username": f"gf-reader-{plant_id}",
            "password": secrets.token_urlsafe(18),
        }
        db = quote_ident(entry["database"])
        try:
            with closing(self._influx()) as admin:
                admin.query_raw(f"CREATE DATABASE {db}", database="")  # a no-op when it exists
                _create_user(admin, entry["username"], entry["password"], _influx_users(admin))
                name = quote_ident(entry["username"])
                admin.query_raw(f"GRANT READ ON {db} TO {name}", database="")
                for role, grant in INFLUX_GRANTS.items():
                    if role != "reader":  # the stack's reader reads the shared database only
                        user = quote_ident(i["users"][role]["username"])
                        admin.query_raw(f"GRANT {grant} ON {db} TO {user}", database="")
        except StoreError as exc:
            raise StackError(
                f"influxd: could not set up the database of plant {plant_id!r} and its reader: "
                f"{_without(exc, {'users': {**i['users'], plant_id: entry}})}"
            ) from None
        plants[plant_id] = entry
        self._save_state()
        return Account(entry["username"], entry["password"])

    def add_park_reader(self, park_id: str, databases: list[str]) -> Account:
        """The park's reader (the park dashboard's data sources, dashboards/README.md): READ on
        each of `databases` (its plants' databases) and on nothing else, so the park's energy
        office reads its plants side by side while each plant's own reader still reads only its
        plant. A grant on a database no longer listed is revoked (a plant that left the park,
        or a grant an older stack gave). Idempotent; kept in stack.json (`influxdb.parks`, mode
        0600). InfluxDB must be running.

        Only databases of plants the stack knows (`add_plant`) are granted. The stack's shared
        database is refused: on 1.x a grant covers a whole database, so READ there would read
        every plant that writes into it, in the park or not, which is the very isolation the
        park reader exists to keep. A park without read isolation (its plants on the shared
        database) needs no reader of its own: the stack's reader (`gf-reader`) already reads
        them all, and its data sources can take that account."""
        return self._park_reader(park_id, databases)[0]

    def add_park(self, park) -> ParkReader:
        """Everything a park file (`greenfoundry.park.config.Park`) needs of the stack: each of
        its plants a database and reader of its own (`add_plant`), and the park's reader with
        READ on those databases and nothing else (`add_park_reader`), whose grant on a plant
        that left the park is revoked. Idempotent. Each plant config must name its own database
        (`park_plant_databases`): checked for every plant before anything is made, so a refused
        park leaves the stack as it was."""
        databases = park_plant_databases(park, self.state["influxdb"]["database"])
        for plant_id in databases:
            self.add_plant(plant_id)
        account, revoked = self._park_reader(park.id, list(databases.values()))
        return ParkReader(park.id, account, databases, revoked)

    def _park_reader(self, park_id: str, databases: list[str]) -> tuple[Account, tuple[str, ...]]:
        from greenfoundry.plant import ID_RE
        from greenfoundry.store import quote_ident

        if not isinstance(park_id, str) or not ID_RE.match(park_id):
            raise StackError(f"add_park_reader: {park_id!r} is not a park id")
        i = self.state["influxdb"]
        known = {entry["database"] for entry in i.get("plants", {}).values()}
        for db in databases:
            if db == i["database"]:
                raise StackError(
                    f"add_park_reader: {db!r} is the stack's shared database: READ on it would "
                    f"let park {park_id!r}'s reader read every plant in it, not only the "
                    "park's; a park reader reads plant databases only (add_plant), and a park "
                    "without read isolation reads the shared database with the stack's reader"
                )
            if db not in known:
                raise StackError(
                    f"add_park_reader: {db!r} is not the database of a plant of this stack; "
                    "give the plant its own first (add_plant, `stack up --plant ID`)"
                )
        parks = i.setdefault("parks", {})
        entry = parks.get(park_id) or {
            "username": f"gf-park-reader-{park_id}",
            "password": secrets.token_urlsafe(18),
        }
        name = quote_ident(entry["username"])
        try:
            with closing(self._influx()) as admin:
                _create_user(admin, entry["username"], entry["password"], _influx_users(admin))
                granted = {  # a revoked grant stays listed as NO PRIVILEGES
                    row[0]
                    for r in admin.query_raw(f"SHOW GRANTS FOR {name}", database="")
                    for s in r.get("series", [])
                    for row in s.get("values", [])
                    if row[1] != "NO PRIVILEGES"
                }
                revoked = tuple(sorted(granted - set(databases)))
                for db in revoked:
                    admin.query_raw(f"REVOKE ALL ON {quote_ident(db)} FROM {name}", database="")
                for db in databases:
                    admin.query_raw(f"GRANT READ ON {quote_ident(db)} TO {name}", database="")
        except StoreError as exc:
            raise StackError(
                f"influxd: could not set up the reader of park {park_id!r}: "
                f"{_without(exc, {'users': {**i['users'], park_id: entry}})}"
            ) from None
        parks[park_id] = entry
        self._save_state()
        return Account(entry["username"], entry["password"]), revoked

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


def _influx_users(admin) -> set[str]:
    """The user names InfluxDB 1.x knows (`SHOW USERS`)."""
    return {
        row[0]
        for r in admin.query_raw("SHOW USERS", database="")
        for s in r.get("series", [])
        for row in s.get("values", [])
    }


def _create_user(admin, username: str, password: str, existing: set[str]) -> None:
    """`CREATE USER` unless `existing` holds it: a stack started again keeps its accounts."""
    from greenfoundry.store import quote_ident, quote_string

    if username not in existing:
        admin.query_raw(
            f"CREATE USER {quote_ident(username)} WITH PASSWORD {quote_string(password)}",
            database="",
        )


def _without(exc: Exception, influx_state: dict) -> str:
    """An error's text with every password of the stack blanked out."""
    text = str(exc)
    for user in influx_state["users"].values():
        text = text.replace(user["password"], "***")
    return text


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (mode 0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _dynsec_plugin() -> str:
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/lib64"):
        path = Path(d) / DYNSEC_PLUGIN
        if path.exists():
            return str(path)
    raise StackError(
        f"mosquitto's dynamic security plugin ({DYNSEC_PLUGIN}) is not installed: it comes "
        "with Debian's mosquitto package from 2.0"
    )


def _default_max_payload_bytes() -> int:
    """The demo plant's `ingest.max_payload_bytes`: the broker refuses what the ingest would."""
    from greenfoundry import plant
    from greenfoundry.config import plant_file

    return plant.load(plant_file(), resolve_secrets=False).ingest.max_payload_bytes


def store_for(info: StackInfo, database: str | None = None, *, role: str = "admin"):
    """An InfluxStore on the stack's InfluxDB as `role`'s user (admin: set-up and tests only)."""
    from greenfoundry.store import InfluxStore, StoreSettings

    user = (
        info.influx_account(role)
        if info.influx_users
        else Account(info.influx_username, info.influx_password)
    )
    return InfluxStore(
        StoreSettings(
            url=info.influx_url,
            database=database or info.influx_database,
            username=user.username,
            password=user.password,
        )
    )


def plant_database(plant_id: str) -> str:
    """The InfluxDB 1.x database of one plant of a park (`LocalStack.add_plant`)."""
    return f"{INFLUX_DATABASE}-{plant_id}"


def park_plant_databases(park, shared_database: str = INFLUX_DATABASE) -> dict[str, str]:
    """plant id → its database, for each plant of `park` (a `greenfoundry.park.config.Park`),
    in the park file's order, checked against what the park dashboard will read.

    The park's Grafana data sources read the database each plant config names in
    `influxdb.database` (dashboards/park.py), so that name must be the plant's own database
    as the local stack makes it (`plant_database(id)`). The shared database is refused, with
    the plant file and the key named: the park reader would need READ on it, and on 1.x that
    reads every plant in it (the key's default, `greenfoundry`, is the shared database, so a
    plant config that leaves the key out is refused too). Any other name is refused as
    `apply_stack` refuses it: the stack never makes that database and the plant's ingest and
    metrics would not write there."""
    from greenfoundry import plant

    out = {}
    for path, plant_id in zip(park.plant_files, park.plant_ids, strict=True):
        cfg = plant.load(path, resolve_secrets=False)
        database, own = cfg.influxdb.database, plant_database(plant_id)
        where = f"{path}: influxdb.database"
        if database == shared_database:
            raise ConfigError(
                f"{where}: {database!r} is the local stack's shared database (also the default "
                f"when the key is left out); park {park.id!r}'s reader would then read every "
                f"plant in it, not only the park's. Give plant {plant_id!r} its own: "
                f"influxdb.database: {own}"
            )
        if database != own:
            raise ConfigError(
                f"{where}: {database!r} is not a database the local stack makes for plant "
                f"{plant_id!r}; expected {own!r}"
            )
        out[plant_id] = own
    return out


def load_park(path: str | os.PathLike):
    """A park file read for the stack: its plants and their configs checked, no secret read
    (the key of the report's anonymous order is not the stack's business, so it may be unset
    where the stack runs)."""
    from greenfoundry.park import config as park_config
    from greenfoundry.plant import ScopedEnv

    return park_config.load(path, env=ScopedEnv({}, ()))


def simulator_client_id(plant_id: str) -> str:
    """The client id (and device account) of the simulator of `plant_id`: one per plant."""
    return f"gf-sim-{plant_id}"


def load_stack_info(stack_dir: str | os.PathLike) -> StackInfo:
    path = Path(stack_dir) / "stack.json"
    if not path.exists():
        raise StackError(
            f"{path} does not exist: start the stack with `greenfoundry stack up --dir {stack_dir}`"
        )
    return LocalStack(stack_dir).info


def apply_stack(cfg, stack_dir: str | os.PathLike, *, role: str | None = None):
    """A copy of the plant config `cfg` pointed at the local stack in `stack_dir`, with the
    credentials of `role`:

    - "ingest": the ingest's MQTT account;
    - "device": the account `gf-sim-<plant>` of a device of the plant, for the simulator,
      bound to the client id of the same name (`simulator_client_id`), so
      nobody holding its password connects with another client's id and takes its session;
    - None: the operator's MQTT account (tools and tests that both publish and subscribe).

    InfluxDB: every role's user (`influxdb.users`), so `InfluxStore.from_config(cfg.influxdb,
    role=...)` picks each component's own; a caller that names no role gets the metrics user.

    The database, in a park that splits InfluxDB per plant for read isolation: a plant the
    stack knows (`greenfoundry stack up --plant ID`, `LocalStack.add_plant`) gets its own
    database (`plant_database(id)`) and its own reader, who reads that database only; the
    ingest and metrics users stay the stack's, to which add_plant granted WRITE and ALL on it
    (one ingest may serve several plants; it writes a plant's readings only under that plant).
    Any other plant gets the stack's shared database and users. The config's own
    `influxdb.database` may name the shared database (the default, so a plant config needs no
    change when the stack splits the park) or the plant's own; any other name (another
    plant's database, or one the stack never made) is refused, naming the key, rather than
    reading or writing elsewhere than the config says.
    """
    from greenfoundry.plant import InfluxUser, Secret

    info = load_stack_info(stack_dir)
    src = f"file:{Path(stack_dir) / 'stack.json'}"
    own = info.influx_plants.get(cfg.plant.id)
    database = own["database"] if own else info.influx_database
    if cfg.influxdb.database not in (info.influx_database, database):
        where = f"{cfg.path}: influxdb.database"
        hint = (
            f"{info.influx_database!r} or this plant's {database!r}"
            if own
            else f"{info.influx_database!r}, or {plant_database(cfg.plant.id)!r} once the "
            f"stack has the plant (`greenfoundry stack up --dir {stack_dir} --plant "
            f"{cfg.plant.id}`)"
        )
        raise StackError(
            f"{where}: {cfg.influxdb.database!r} is not a database of the local stack for plant "
            f"{cfg.plant.id!r}; expected {hint}"
        )
    if role == "device":
        account = info.device_account(cfg.plant.id, simulator_client_id(cfg.plant.id))
    elif role in (None, "operator"):
        account = info.mqtt_account("operator")
    else:
        account = info.mqtt_account(role)
    mqtt_cfg = dataclasses.replace(
        cfg.mqtt,
        host=info.mqtt_host,
        port=info.mqtt_port,
        username=account.username,
        password=Secret(src, account.password),
    )
    users = {
        r: InfluxUser(u.username, Secret(src, u.password), None)
        for r in INFLUX_GRANTS
        for u in [info.influx_account(r)]
    }
    if own:
        users["reader"] = InfluxUser(own["username"], Secret(src, own["password"]), None)
    influx = dataclasses.replace(
        cfg.influxdb,
        url=info.influx_url,
        database=database,
        # For a component that does not name its role yet: read and write, never admin.
        username=users["metrics"].username,
        password=users["metrics"].password,
        token=None,
        users=users,
    )
    return dataclasses.replace(cfg, mqtt=mqtt_cfg, influxdb=influx)


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
    up.add_argument(
        "--tls",
        action="store_true",
        help="also run an MQTT over TLS listener (client certificate required), with a CA, a "
        "server and a client certificate made by openssl under DIR/mosquitto/tls",
    )
    up.add_argument("--tls-port", type=int, help="its port (default: a free port, then kept)")
    up.add_argument(
        "--plant",
        action="append",
        default=[],
        metavar="ID",
        help="a plant of a park with its own InfluxDB database and reader (READ on it only); "
        "repeatable (LocalStack.add_plant)",
    )
    up.add_argument(
        "--park",
        action="append",
        default=[],
        metavar="FILE",
        help="a park file (config/parks/<park>/park.yaml): each of its plants gets its own "
        "database and reader as with --plant, and the park a reader with READ on those "
        "databases only (a plant that left the park loses it); a plant config naming the "
        "shared database is refused; repeatable (LocalStack.add_park)",
    )
    up.set_defaults(func=_cmd_up)
    env = sub.add_parser(
        "env",
        help="print to stdout, on request, the environment a park's Grafana needs: the URL and "
        "the park reader's user and password",
        description="Print NAME=value lines (a shell's or docker compose's env file) for the park "
        "dashboard's data sources on InfluxDB 1.x: the stack's InfluxDB URL and the park "
        "reader's user and PASSWORD. They go to stdout only, never to a log; redirect them into "
        "a file of mode 0600.",
    )
    env.add_argument("--dir", required=True)
    env.add_argument(
        "--park", required=True, metavar="ID", help="the park id (made by `stack up --park FILE`)"
    )
    env.set_defaults(func=_cmd_env)
    down = sub.add_parser("down", help="stop both servers")
    down.add_argument("--dir", required=True)
    down.set_defaults(func=_cmd_down)
    st = sub.add_parser("status", help="say whether each server runs and answers")
    st.add_argument("--dir", required=True)
    st.set_defaults(func=_cmd_status)


def _cmd_up(args) -> int:
    stack = LocalStack(
        args.dir,
        mqtt_port=args.mqtt_port,
        influx_port=args.influx_port,
        tls=args.tls,
        tls_port=args.tls_port,
    )
    # Every park file and its plants' databases are checked before a server starts, so a bad
    # park file fails at once, naming its key, and makes nothing.
    parks = [load_park(path) for path in args.park]
    for park in parks:
        park_plant_databases(park, stack.state["influxdb"]["database"])
    info = stack.up()
    accounts = ", ".join(f"{r} {a['username']}" for r, a in sorted(info.mqtt_accounts.items()))
    print(f"mosquitto  mqtt://{info.mqtt_host}:{info.mqtt_port}  accounts: {accounts}")
    if info.mqtt_tls_port:
        print(f"           mqtts://{info.mqtt_host}:{info.mqtt_tls_port}  CA {info.tls_dir}/ca.crt")
    users = ", ".join(f"{r} {u['username']}" for r, u in sorted(info.influx_users.items()))
    print(f"influxdb   {info.influx_url}  database {info.influx_database}  users: {users}")
    for plant_id in args.plant:
        reader = stack.add_plant(plant_id)
        print(
            f"           plant {plant_id}: database {plant_database(plant_id)}  reader {reader.username}"
        )
    for park in parks:
        made = stack.add_park(park)
        for plant_id, database in made.databases.items():
            reader = stack.info.influx_plants[plant_id]["username"]
            print(f"           plant {plant_id}: database {database}  reader {reader}")
        print(
            f"           park {park.id}: reader {made.account.username}, READ on "
            f"{', '.join(made.databases.values())} and nothing else"
        )
        for database in made.revoked:
            print(
                f"           park {park.id}: READ on {database} revoked (not a plant of the park)"
            )
        print(
            f"           park {park.id}: its user and password in {stack.state_file} "
            f"(influxdb.parks.{park.id}); Grafana's environment {PARK_ENV_URL}, "
            f"{PARK_ENV_USER}, {PARK_ENV_PASSWORD}: printed by "
            f"`greenfoundry stack env --dir {args.dir} --park {park.id}`"
        )
    print(f"credentials in {stack.state_file}")
    return 0


def _cmd_env(args) -> int:
    """The park reader's credentials, on the operator's explicit request, to stdout only."""
    import shlex

    info = load_stack_info(args.dir)
    account = info.park_account(args.park)
    for name, value in (
        (PARK_ENV_URL, info.influx_url),
        (PARK_ENV_USER, account.username),
        (PARK_ENV_PASSWORD, account.password),
    ):
        print(f"{name}={shlex.quote(value)}")
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
