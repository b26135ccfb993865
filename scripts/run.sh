#!/usr/bin/env bash
# The README's commands, `bash scripts/run.sh demo` and `bash scripts/run.sh test`, for a Debian machine
# (as root): install the Debian packages that are missing (saying which), then run that make target with
# a Python that can make the venv (python3 on PATH, else Debian's /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-}"
case "$target" in
  test) groups=(base registry browser skopeo umoci catalogers proxy) ;;
  demo | lab | bench | fuzz | install | lint | binder-check) groups=(base registry) ;;
  *) echo "usage: bash scripts/run.sh demo|test|lab|bench|fuzz|lint|binder-check [make arguments]" >&2; exit 2 ;;
esac
shift
bash scripts/system-deps.sh "${groups[@]}"
python="$(bash scripts/system-deps.sh python)"
echo "ocinb: make $target with $python ($("$python" --version 2>&1))" >&2
exec make --no-print-directory "$target" PYTHON="$python" "$@"
