"""Write the broker's dynsec.json for docker-compose from the environment, once.

Run by the `broker-init` service (the greenfoundry image) before Mosquitto starts. The accounts
are the local stack's (greenfoundry.stack.dynsec_config): admin (manages the plugin only),
ingest (subscribes, reads $SYS/broker/#), alerts (publishes and retains the alerts' state under
gf/v1/+/_alerts/#, nothing else), and one device account per plant in GF_PLANTS, bound to its
client id `dev-<plant>` and allowed to publish under its plant's topics only, never under its
`_alerts`. No operator account: a deployment's dashboards get their own. Passwords come from the environment (.env), are stored hashed, and are never printed.
An existing file is left alone: the plugin owns it once the broker has run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from greenfoundry.stack import TOPIC_ROOT, _device_role, _pbkdf2, dynsec_config


def main() -> int:
    path = Path(os.environ.get("GF_DYNSEC_FILE", "/mosquitto/config/dynsec.json"))
    if path.exists():
        print(f"{path} exists; left as it is")
        return 0
    missing = [
        name
        for name in (
            "GF_MQTT_ADMIN_PASSWORD",
            "GF_MQTT_INGEST_PASSWORD",
            "GF_MQTT_ALERTS_PASSWORD",
            "GF_MQTT_DEVICE_PASSWORD",
        )
        if not os.environ.get(name)
    ]
    plants = os.environ.get("GF_PLANTS", "").split()
    if missing or not plants:
        print(f"error: set {', '.join(missing) or 'GF_PLANTS'} in .env", file=sys.stderr)
        return 2
    accounts = {
        "admin": {"username": "gf-admin", "password": os.environ["GF_MQTT_ADMIN_PASSWORD"]},
        "ingest": {"username": "gf-ingest", "password": os.environ["GF_MQTT_INGEST_PASSWORD"]},
        "alerts": {"username": "gf-alerts", "password": os.environ["GF_MQTT_ALERTS_PASSWORD"]},
    }
    config = dynsec_config(accounts, TOPIC_ROOT)
    config["roles"] = [r for r in config["roles"] if r["rolename"] != "operator"]
    for plant in plants:
        role = _device_role(plant, TOPIC_ROOT)
        config["roles"].append(role)
        salt, digest = _pbkdf2(os.environ["GF_MQTT_DEVICE_PASSWORD"])
        config["clients"].append(
            {
                "username": f"dev-{plant}",
                "clientid": f"dev-{plant}",
                "salt": salt,
                "password": digest,
                "iterations": 101,
                "roles": [{"rolename": role["rolename"]}],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=1)
    os.chown(path, int(os.environ.get("GF_DYNSEC_UID", "1883")), -1)
    devices = ", ".join(f"dev-{p}" for p in plants)
    print(f"wrote {path}: accounts gf-admin, gf-ingest, gf-alerts, {devices}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
