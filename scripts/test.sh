#!/usr/bin/env bash
# The test suite: set up (plus chromium and Playwright for the report's browser tests),
# lint, run the default tests (Docker, the tiny model and the browser included; `slow`
# excluded unless SWESCALE_SLOW=1), then validate the bundled mini benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The reward-model verifier's tests need torch. Install it only from a CPU wheel that pip
# finds without an index (its configured local wheel directories): a plain `pip install
# torch` would pull gigabytes of CUDA packages. Without such a wheel those tests skip.
if ! .venv/bin/python -c 'import torch, transformers' >/dev/null 2>&1; then
  wheel_dir=$(mktemp -d)
  if .venv/bin/pip download -q --no-deps --no-index -d "$wheel_dir" 'torch==2.13.0' >/dev/null 2>&1; then
    echo "[test] installing torch (local CPU wheel) and transformers for the reward-model tests" >&2
    .venv/bin/pip install -q "$wheel_dir"/torch-*.whl transformers >/dev/null 2>&1 \
      || echo "[test] torch install failed; reward-model tests will skip" >&2
  fi
  rm -rf "$wheel_dir"
fi
# The Ray executor's tests start a small local Ray cluster: install the optional `ray`
# extra (one wheel of about 70 MB, a minute) so they run here rather than skip. The
# registry test needs Debian's docker-registry (a 10 MB package).
if ! .venv/bin/python -c 'import ray' >/dev/null 2>&1; then
  echo "[test] installing the ray extra for the cluster executor tests" >&2
  .venv/bin/pip install -q -e ".[ray]" >/dev/null 2>&1 \
    || echo "[test] ray install failed; the cluster executor tests will skip" >&2
fi
if ! command -v docker-registry >/dev/null 2>&1; then
  (apt-get install -y -qq docker-registry >/dev/null 2>&1 \
    || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null 2>&1)) \
    || echo "[test] docker-registry install failed; the registry test will fail in CI" >&2
fi
# The report's browser tests: Debian's chromium (never a browser Playwright downloads)
# and the Playwright package that drives it. Only here: scripts/run.sh stays light.
if ! command -v chromium >/dev/null 2>&1; then
  echo "[test] installing chromium for the report's browser tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! .venv/bin/python -c 'import playwright' >/dev/null 2>&1; then
  .venv/bin/pip install -q -e ".[browser]" >/dev/null
fi
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
validation=$(mktemp -d)
.venv/bin/swescale validate --dataset mini --eval-dir "$validation"
