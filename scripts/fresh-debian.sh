#!/usr/bin/env bash
# `make fresh-debian`: prove the README's two commands on a stock minimal Debian 12. Builds a fresh root
# with `mmdebstrap --variant=minbase bookworm` (no python3, no venv, no make), copies a clean clone of this
# repository's HEAD into /root/ocinb, and runs `bash scripts/run.sh demo` then `bash scripts/run.sh test`
# in it with chroot (then `make test` again in a network namespace with loopback only), as root, with the host's apt sources and options, resolv.conf, CA bundle and pip
# configuration (so the same mirrors are used). Needs root and the network; takes minutes.
# The log goes to build/fresh-debian.log (FRESH_LOG overrides) and ends with a summary.
# Safety: nothing of the host's /dev, /proc or /sys is bind-mounted (proc, sysfs, devpts and tmpfs are
# mounted as new instances), and the root is deleted only after /proc/mounts shows nothing under it.
set -euo pipefail
# The body is one compound command, read whole before it runs: editing this file mid-run cannot break it.
{
cd "$(dirname "$0")/.."
SRC="$PWD"
LOG="${FRESH_LOG:-$SRC/build/fresh-debian.log}"
if [ "$(id -u)" != "0" ]; then
  echo "make fresh-debian needs root (mmdebstrap, mount, chroot)" >&2
  exit 1
fi
mkdir -p "$(dirname "$LOG")"
: >"$LOG"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }

if ! command -v mmdebstrap >/dev/null 2>&1; then
  log "installing mmdebstrap on the host"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

commit="$(git rev-parse HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  log "note: uncommitted changes are not tested; the clone is of HEAD $commit"
fi

WORK="$(mktemp -d /var/tmp/ocinb-fresh-debian.XXXXXX)"
ROOT="$WORK/root"

mounts_under() { awk -v r="$ROOT" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r; }

in_chroot_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo "${p#/proc/}"
  done
  return 0
}

cleanup() {
  local status=$? pids m tries=0
  trap - EXIT INT TERM
  # Processes this run left in the chroot (a registry, a kernel): ended by PID, so the mounts free up.
  pids="$(in_chroot_pids)"
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    while [ -n "$(in_chroot_pids)" ] && [ $tries -lt 50 ]; do sleep 0.2; tries=$((tries + 1)); done
    pids="$(in_chroot_pids)"
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  fi
  for m in $(mounts_under); do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
  if [ -n "$(mounts_under)" ]; then
    echo "still mounted under $ROOT:" >&2
    mounts_under >&2
    echo "NOT deleting $WORK; unmount those, then: rm -rf --one-file-system $WORK" >&2
    exit 1
  fi
  rm -rf --one-file-system "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The host's Debian sources (deb822 .sources and one-line .list files) and apt options, as given.
mirrors=()
[ -s /etc/apt/sources.list ] && grep -q '^[[:space:]]*deb' /etc/apt/sources.list && mirrors+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] && mirrors+=("$f")
done
aptopts=()
for f in /etc/apt/apt.conf.d/99*; do
  [ -f "$f" ] && aptopts+=("--aptopt=$f")
done

started=$(date +%s)
log "bootstrapping Debian 12 minbase into $ROOT (sources: ${mirrors[*]:-default}; apt options: ${aptopts[*]:-none})"
mmdebstrap --variant=minbase --mode=root --quiet "${aptopts[@]}" bookworm "$ROOT" "${mirrors[@]}" >>"$LOG" 2>&1
boot_done=$(date +%s)
dpkg_list() { chroot "$ROOT" dpkg-query -W -f '${Package}\n' | sort; }
dpkg_list >"$WORK/pkgs.0"
has() { chroot "$ROOT" /bin/sh -c "command -v $1" >/dev/null 2>&1 && echo yes || echo no; }
tools="python3: $(has python3), make: $(has make), git: $(has git), docker-registry: $(has docker-registry), chromium: $(has chromium)"
log "bootstrap done in $((boot_done - started)) s: $(wc -l <"$WORK/pkgs.0") packages; $tools"

# Device nodes of the chroot's own (no host /dev), a fresh devpts, /dev/shm, /proc and /sys.
for spec in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r name major minor <<<"$spec"
  [ -e "$ROOT/dev/$name" ] || mknod -m 666 "$ROOT/dev/$name" c "$major" "$minor"
done
mkdir -p "$ROOT/dev/pts" "$ROOT/dev/shm" "$ROOT/proc" "$ROOT/sys"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys" || log "note: could not mount sysfs; running without /sys"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$ROOT/dev/pts"
[ -e "$ROOT/dev/ptmx" ] || ln -s pts/ptmx "$ROOT/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm"

# Network and trust as the host has them: resolv.conf, the CA bundle, pip's configuration files.
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$ROOT/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
fi
# The machine's own CAs too, where Debian keeps them: installing ca-certificates in the chroot (a
# dependency of what the commands install) regenerates the bundle from these.
if [ -d /usr/local/share/ca-certificates ]; then
  mkdir -p "$ROOT/usr/local/share"
  cp -rL /usr/local/share/ca-certificates "$ROOT/usr/local/share/"
fi
for f in /etc/pip.conf /etc/xdg/pip "${HOME:-/root}/.config/pip" "${HOME:-/root}/.pip"; do
  if [ -e "$f" ]; then
    dest="$ROOT${f/#${HOME:-/root}//root}"
    mkdir -p "$(dirname "$dest")"
    cp -rL "$f" "$dest"
  fi
done
# Local package directories that pip's configuration names (find-links, file:// indexes), read-only at
# the same paths, so pip inside sees the host's mirrors as they are (the registry beyond them stays PyPI).
pip_conf=(/etc/pip.conf /etc/xdg/pip/pip.conf "${HOME:-/root}/.config/pip/pip.conf" "${HOME:-/root}/.pip/pip.conf")
for dir in $( { cat "${pip_conf[@]}" 2>/dev/null; printf '%s\n' "${PIP_FIND_LINKS:-}" "${PIP_EXTRA_INDEX_URL:-}" "${PIP_INDEX_URL:-}"; } |
  grep -oE '(file://)?/[^[:space:]]+' | sed 's|^file://||; s|/simple/*$||' | sort -u); do
  case "$dir" in /etc/* | /proc* | /sys* | /dev* | /) continue ;; esac
  [ -d "$dir" ] || continue
  mkdir -p "$ROOT$dir"
  mount --bind "$dir" "$ROOT$dir"
  mount -o remount,bind,ro "$ROOT$dir"
  log "pip's local package directory $dir: bind-mounted read-only"
done
# A chroot has no init: keep package scripts from starting services (docker-registry's) in it.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# A clean clone of HEAD (what a user gets), without the host's build products.
git clone --quiet --no-hardlinks "$SRC" "$ROOT/root/ocinb"
git -C "$ROOT/root/ocinb" checkout --quiet --detach "$commit"

passenv=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb)
while IFS= read -r name; do
  passenv+=("$name=${!name}")
done < <(compgen -e | grep -E '^(PIP_[A-Z_]+|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)$' || true)

# $1: the command; $2 = offline: in a network namespace of its own with loopback only (the network cut).
run_in_chroot() {
  local wrap=()
  [ "${2:-}" = offline ] && wrap=(unshare --net /bin/sh -c 'ip link set lo up && exec "$@"' sh)
  "${wrap[@]}" chroot "$ROOT" /usr/bin/env -i "${passenv[@]}" /bin/bash -c "cd /root/ocinb && $1" </dev/null >>"$LOG" 2>&1
}

summary=()
overall=0
# The README's two commands as pasted, then the suite again with the network cut (all installed by now).
steps=("bash scripts/run.sh demo|online" "bash scripts/run.sh test|online" "make test|offline")
for step in "${steps[@]}"; do
  cmd="${step%|*}" net="${step#*|}"
  dpkg_list >"$WORK/before"
  log "running in the chroot ($net): $cmd"
  mark=$(wc -l <"$LOG")
  t0=$(date +%s)
  rc=0
  run_in_chroot "$cmd" "$net" || rc=$?
  t1=$(date +%s)
  dpkg_list >"$WORK/after"
  added="$(comm -13 "$WORK/before" "$WORK/after" | tr '\n' ' ')"
  said="$(tail -n +"$((mark + 1))" "$LOG" | grep -h '^ocinb: installing Debian packages' | sed 's/^ocinb: installing Debian packages: //; s/ (apt-get.*//' | tr '\n' ' ' || true)"
  tests="$(tail -n +"$((mark + 1))" "$LOG" | grep -E '^(=+ )?[0-9]+ (passed|failed)' | tail -1 || true)"
  line="$cmd ($net): exit $rc in $((t1 - t0)) s; asked apt for: ${said:-nothing}; ${tests:+pytest: $tests; }packages added with dependencies: $(wc -w <<<"$added")"
  summary+=("$line")
  log "$line"
  [ -z "$added" ] || echo "  added: $added" >>"$LOG"
  [ "$rc" = 0 ] || overall=$rc
done
finished=$(date +%s)
{
  echo "== fresh-debian summary"
  echo "commit $commit; bootstrap $((boot_done - started)) s ($(wc -l <"$WORK/pkgs.0") packages, minbase; $tools)"
  printf '%s\n' "${summary[@]}"
  echo "packages added to minbase in all: $(comm -13 "$WORK/pkgs.0" "$WORK/after" | wc -l); venv: $(chroot "$ROOT" /root/ocinb/.venv/bin/python --version 2>&1 || echo none), $(chroot "$ROOT" /root/ocinb/.venv/bin/python -m pip list 2>/dev/null | tail -n +3 | wc -l) pip packages"
  echo "total $((finished - started)) s; result: $([ "$overall" = 0 ] && echo PASS || echo "FAIL ($overall)")"
} | tee -a "$LOG" >&2
exit "$overall"
}
