#!/usr/bin/env bash
# Install the Debian packages ocinb's tests and demo use, when missing (needs root).
set -euo pipefail
want=()
command -v docker-registry >/dev/null 2>&1 || want+=(docker-registry)
if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "missing Debian packages: ${want[*]}; run as root: apt-get install -y ${want[*]}" >&2
  echo "(or run a registry yourself: docker run -d -p 5000:5000 registry:2 and set OCINB_REGISTRY)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
