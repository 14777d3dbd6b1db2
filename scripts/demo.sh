#!/usr/bin/env bash
# Set up c360 from nothing and run the demo end to end: a virtualenv with the pinned
# dependencies, a generated landing zone, the whole pipeline through Dagster, and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/data/dagster_home}"
.venv/bin/c360 demo "$@"
