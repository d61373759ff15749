#!/usr/bin/env bash
# The main job on built-in defaults: set up, then `swescale demo` (extra arguments pass on).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/swescale demo "$@"
