#!/usr/bin/env bash
# Install the peers the benchmark suite compares ocinb with: oras-py, python-dxf and httpx-aiohttp (a
# candidate wire, case 1) into the venv
# (pip), skopeo, curl, openssl and GNU time from Debian when missing (apt needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${BENCH_PYTHON:-.venv/bin/python}"
if [ ! -x "$PY" ]; then
  echo "no $PY: run 'make install' first (or set BENCH_PYTHON)" >&2
  exit 1
fi
"$PY" - <<'PYEOF' || "$PY" -m pip install --quiet oras python-dxf psutil httpx-aiohttp
import importlib.util, sys
sys.exit(0 if all(importlib.util.find_spec(m) for m in ("oras", "dxf", "psutil", "httpx_aiohttp")) else 1)
PYEOF
want=()
command -v skopeo >/dev/null 2>&1 || want+=(skopeo)
command -v curl >/dev/null 2>&1 || want+=(curl)
command -v zstd >/dev/null 2>&1 || want+=(zstd)
command -v openssl >/dev/null 2>&1 || want+=(openssl)
[ -x /usr/bin/time ] || want+=(time)
command -v docker-registry >/dev/null 2>&1 || want+=(docker-registry)
if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "missing Debian packages: ${want[*]}; the benchmark skips the peers it cannot find." >&2
  echo "as root: apt-get install -y --no-install-recommends ${want[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
