#!/usr/bin/env bash
# `make lab`: start a seeded local registry, open JupyterLab on notebooks/ against it, stop it on exit.
# Needs jupyterlab (pip install jupyterlab) besides ocinb; PYTHON selects the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import jupyterlab" 2>/dev/null; then
  echo "JupyterLab is not installed for $PYTHON; install it with: $PYTHON -m pip install jupyterlab" >&2
  exit 1
fi

# `ocinb demo --keep` starts the registry (installing docker-registry when root), seeds it, and prints
# OCINB_REGISTRY=…, OCINB_REGISTRY_PID=…, OCINB_IMAGE=…, OCINB_REGISTRY_DIR=… for eval.
env_lines="$("$PYTHON" -m ocinb demo --keep ${OCINB_PORT:+--port "$OCINB_PORT"})"
eval "$env_lines"
export OCINB_REGISTRY OCINB_IMAGE
export OCINB_TAGS="" OCINB_PLATFORM="linux/amd64" OCINB_INSIDE_IMAGE="demo/layered:1.0" \
  OCINB_DIFF_A="demo/layered:1.1" OCINB_DIFF_B="demo/layered:2.0"
cleanup() {
  kill "$OCINB_REGISTRY_PID" 2>/dev/null || true
  if [ -n "${OCINB_REGISTRY_DIR:-}" ]; then sleep 1; rm -rf "$OCINB_REGISTRY_DIR"; fi
}
trap cleanup EXIT INT TERM

echo "registry $OCINB_REGISTRY (pid $OCINB_REGISTRY_PID) seeded; notebooks use OCINB_IMAGE=$OCINB_IMAGE"
"$PYTHON" -m jupyterlab --notebook-dir=notebooks ${LAB_ARGS:-}
