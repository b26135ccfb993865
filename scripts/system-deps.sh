#!/usr/bin/env bash
# Install the Debian packages ocinb needs, when missing (needs root).
# Groups: "registry" (the CNCF registry, Debian's docker-registry), "browser" (Chromium, which
# Playwright drives in the explorer's browser test; Playwright's own browser download is never used)
# "skopeo" (the independent resolver some tests compare with) and "proxy" (tinyproxy, the real HTTP
# proxy the proxy tests put in front of the registry).
set -euo pipefail
want=()
for group in "${@:-registry}"; do
  case "$group" in
    registry) command -v docker-registry >/dev/null 2>&1 || want+=(docker-registry) ;;
    browser) [ -x /usr/bin/chromium ] || want+=(chromium) ;;
    skopeo) command -v skopeo >/dev/null 2>&1 || want+=(skopeo) ;;
    proxy) command -v tinyproxy >/dev/null 2>&1 || want+=(tinyproxy) ;;
    *) echo "unknown group: $group (registry, browser, skopeo, proxy)" >&2; exit 2 ;;
  esac
done
if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "missing Debian packages: ${want[*]}; as root: apt-get update && apt-get install -y ${want[*]}" >&2
  echo "(for the registry alone you can also run: docker run -d -p 5000:5000 registry:2)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
