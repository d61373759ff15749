#!/usr/bin/env bash
# The test suite: set up, lint, run the default tests (Docker and the tiny model included;
# `slow` excluded unless SWESCALE_SLOW=1), then validate the bundled mini benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check swescale tests benchmarks
markers="not slow"
[ "${SWESCALE_SLOW:-0}" = 1 ] && markers=""
set +e
.venv/bin/python -m pytest -m "$markers" "$@"
status=$?
set -e
# pytest exits 5 when it collected no test: that is a failure here, never a pass.
if [ "$status" -eq 5 ]; then echo "no tests ran" >&2; exit 1; fi
[ "$status" -eq 0 ] || exit "$status"
.venv/bin/swescale validate --dataset mini
