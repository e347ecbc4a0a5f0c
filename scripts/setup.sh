#!/usr/bin/env bash
# Set up everything greenfoundry needs on a Debian/Ubuntu machine, idempotently:
#   - Debian packages: mosquitto, mosquitto-clients, influxdb (1.x), openssl (the stack's TLS
#     certificates), docker-compose (to validate docker-compose.yml; no engine needed), python3-venv,
#     chromium (the HTML report's check), fonts-wqy-microhei (Chinese text in its plots)
#   - a virtual environment in .venv with greenfoundry installed editable, with its dev tools
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# The monthly report: checked in headless Chromium; its plots name the rows in Chinese.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi 'WenQuanYi Micro Hei' || need+=(fonts-wqy-microhei)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "error: missing Debian packages: ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
      exit 1
    fi
  fi
  echo "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # The packages' own services are not needed: greenfoundry starts its own servers on free ports.
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

stamp=.venv/.greenfoundry-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "creating .venv and installing greenfoundry with its dev tools"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
