#!/usr/bin/env bash
# The test command: set up what is missing, then lint and run the whole suite against real
# Mosquitto and InfluxDB servers that the fixtures start on free ports. Extra arguments go to
# pytest (e.g. scripts/test.sh -k spool).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
