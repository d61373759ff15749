#!/usr/bin/env bash
# All set-up on a fresh Debian machine, as root; safe to run again (each step is skipped
# when already done): system packages, a running Docker engine, the virtual environment
# with swescale installed, and the base image.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# Silent when everything is already in place (scripts/run.sh calls this every time).
changed=0
log() { changed=1; printf '[setup] %s\n' "$*" >&2; }

# 1. System packages: the Docker engine (Debian's docker.io), debootstrap for base images,
#    git, and Python's venv module.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v git >/dev/null 2>&1 || missing+=(git)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. A running engine: start dockerd if nothing answers, then wait until it does.
if ! docker info >/dev/null 2>&1; then
  log "starting the Docker engine"
  if ! (command -v systemctl >/dev/null && systemctl start docker >/dev/null 2>&1); then
    nohup dockerd >/var/log/swescale-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 90); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/swescale-dockerd.log"; exit 1; }
fi

# 2b. Room for a state watcher per sandbox (swescale/sandbox/state_watcher.py): each takes
#     an inotify instance and a watch per directory of its repository, counted per user
#     across every container that runs as root (the kernel's default: 128 instances).
#     Only ever raised; where the kernel refuses, sandboxes keep to the shell function.
for pair in max_user_instances:8192 max_user_watches:1048576; do
  key=/proc/sys/fs/inotify/${pair%%:*}
  want=${pair##*:}
  if [ -r "$key" ] && [ "$(cat "$key")" -lt "$want" ]; then
    log "raising fs.inotify.${pair%%:*} to $want"
    echo "$want" >"$key" 2>/dev/null || log "could not raise fs.inotify.${pair%%:*}"
  fi
done

# 3. The virtual environment. Prebuilt wheels beside the checkout (../shared/wheels) save
#    a long llama.cpp compile; pip falls back to the registry without them.
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.swescale-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing swescale and its dependencies (a few minutes the first time)"
  links=()
  for dir in "${SWESCALE_WHEELS:-}" "$ROOT/../shared/wheels"; do
    [ -n "$dir" ] && [ -d "$dir" ] && links+=(--find-links "$dir")
  done
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q "${links[@]}" -e ".[dev,local-model,report]"
  echo "$want" >"$stamp"
fi

# 4. The install recipes of SWE-bench, which the current official package no longer ships:
#    swebench 4.1.0 beside the environment (see swescale/swebench/recipes.py).
.venv/bin/python -c 'from swescale.swebench.recipes import install_recipes; install_recipes()'

# 5. The base image (found by its content tag when the recipe is unchanged). Quiet when
#    there is nothing to do; its output is shown only when it fails.
if ! out=$(.venv/bin/swescale images build 2>&1); then
  printf '%s\n' "$out" >&2
  log "building the base image failed"
  exit 1
fi
if [ "$changed" = 1 ]; then log "ready"; fi
