#!/usr/bin/env bash
# Set up what is missing (idempotent, fast when done), then run `coco` with the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh >&2
exec .venv/bin/coco "$@"
