#!/usr/bin/env bash
# Screenshots of the report's pages (see scripts/report_screenshots.py): installs what it
# needs first (the environment, Debian's chromium, Playwright), then takes them.
#   bash scripts/report_screenshots.sh [RUN_DIR] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/python -c 'import playwright' >/dev/null 2>&1 || .venv/bin/pip install -q -e ".[browser]" >/dev/null
exec .venv/bin/python scripts/report_screenshots.py "$@"
