#!/usr/bin/env bash
# Install Debian's chromium for the browser test (tests/test_browser.py) when /usr/bin/chromium is missing.
# Needs root. Playwright drives this binary (executable_path); its own browser download is never used.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "missing /usr/bin/chromium; run as root: apt-get update && apt-get install -y chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
test -x /usr/bin/chromium
