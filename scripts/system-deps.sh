#!/usr/bin/env bash
# Install the Debian packages ocinb needs, when missing (needs root), saying which as it does.
# Groups: "base" (a Python >= 3.11 that can make a venv, make, a CA bundle), "registry" (the CNCF
# registry, Debian's docker-registry), "browser" (Chromium and a font, which Playwright drives in the
# explorer's browser test; Playwright's own browser download is never used), "skopeo" (the independent
# resolver some tests compare with), "umoci" (the independent layer unpacker the squash tests compare
# with, and the zstd tool the TOC tests decompress zstd:chunked layers with) "catalogers" (rpm with rpmbuild and the Go
# toolchain: the package catalogers' tests build an rpm database and a Go binary and compare with rpm and go)
# and "proxy" (tinyproxy, the real HTTP proxy the proxy tests put in front of the registry).
# `apt-get update` runs once, and only when something is missing.
set -euo pipefail

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# A Python that can build the venv: $PYTHON, else python3 on PATH (pyenv's on a dev machine), else
# Debian's /usr/bin/python3. Debian's needs python3-venv for ensurepip.
usable_python() {
  local py
  for py in ${PYTHON:-} python3 "${OCINB_SYSTEM_PYTHON:-/usr/bin/python3}"; do
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$py"
      return 0
    fi
  done
  return 1
}

want=()
for group in "${@:-registry}"; do
  case "$group" in
    base)
      if ! usable_python >/dev/null; then
        installed python3 || want+=(python3)
        installed python3-venv || want+=(python3-venv)
      fi
      command -v make >/dev/null 2>&1 || want+=(make)
      [ -s /etc/ssl/certs/ca-certificates.crt ] || want+=(ca-certificates)
      ;;
    registry) command -v docker-registry >/dev/null 2>&1 || want+=(docker-registry) ;;
    browser)
      [ -x /usr/bin/chromium ] || want+=(chromium)
      [ -n "$(find /usr/share/fonts -name '*.ttf' -print -quit 2>/dev/null)" ] || want+=(fonts-dejavu-core)
      # Playwright's bundled node driver (from its wheel) links libatomic.so.1, which minbase lacks.
      installed libatomic1 || want+=(libatomic1)
      ;;
    skopeo) command -v skopeo >/dev/null 2>&1 || want+=(skopeo) ;;
    umoci)
      command -v umoci >/dev/null 2>&1 || want+=(umoci)
      command -v zstd >/dev/null 2>&1 || want+=(zstd) ;;
    catalogers)
      command -v rpmbuild >/dev/null 2>&1 || want+=(rpm)
      command -v go >/dev/null 2>&1 || want+=(golang-go) ;;
    proxy) command -v tinyproxy >/dev/null 2>&1 || want+=(tinyproxy) ;;
    python) usable_python || { echo "no Python >= 3.11 with venv; run: bash $0 base" >&2; exit 1; }; exit 0 ;;
    *) echo "unknown group: $group (base, registry, browser, skopeo, umoci, catalogers, proxy, python)" >&2; exit 2 ;;
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
echo "ocinb: installing Debian packages: ${want[*]} (apt-get update, then apt-get install)" >&2
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
echo "ocinb: installed ${want[*]}" >&2
