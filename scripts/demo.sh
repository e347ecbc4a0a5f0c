#!/usr/bin/env bash
# The main job: a self-contained local demo. Sets up what is missing, then starts a local
# Mosquitto and InfluxDB under var/demo, the ingest and a simulated plant, and shows what flows.
# Extra arguments go to `greenfoundry demo` (e.g. scripts/demo.sh --speed 600 --duration 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/greenfoundry demo "$@"
