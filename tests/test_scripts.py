"""scripts/system-deps.sh, which the README's commands run first: what it decides a machine lacks. Checked
in a sandbox PATH of stand-in tools (a non-root `id`, a `dpkg-query` that knows no package, a `python3`
without ensurepip), so nothing is installed; `make fresh-debian` runs the real thing on a stock Debian."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "system-deps.sh"


def _sandbox(tmp_path: Path, *, python_ok: bool, present: tuple[str, ...] = ()) -> dict[str, str]:
    """A PATH holding only bash, grep, find and stand-ins: no make, no docker-registry, no skopeo."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "grep", "find"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    stand_ins = {
        "id": "echo 1000",
        "dpkg-query": "exit 1",
        "python3": f'exec {sys.executable} "$@"' if python_ok else "exit 1",
        **{name: "exit 0" for name in present},
    }
    for name, body in stand_ins.items():
        path = bin_dir / name
        path.write_text(f"#!{shutil.which('bash')}\n{body}\n")
        path.chmod(0o755)
    return {"PATH": str(bin_dir), "OCINB_SYSTEM_PYTHON": str(tmp_path / "no-such-python"), "HOME": str(tmp_path)}


def _run(env: dict[str, str], *groups: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shutil.which("bash") or "bash", str(SCRIPT), *groups], env=env, capture_output=True,
                          text=True, check=False)


def test_a_machine_without_python_venv_make_or_registry_is_told_all_of_them(tmp_path: Path) -> None:
    result = _run(_sandbox(tmp_path, python_ok=False), "base", "registry", "skopeo")
    assert result.returncode == 1, result
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("missing Debian packages:")]
    wanted = line.split(":", 1)[1].split(";")[0].split()
    expected = ["python3", "python3-venv", "make", "docker-registry", "skopeo"]
    if not Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        expected.insert(3, "ca-certificates")
    assert wanted == expected
    assert f"apt-get install -y {' '.join(expected)}" in line


def test_a_usable_python_on_path_is_chosen_and_not_installed(tmp_path: Path) -> None:
    env = _sandbox(tmp_path, python_ok=True)
    chosen = _run(env, "python")
    assert chosen.returncode == 0, chosen
    assert chosen.stdout.strip() == str(tmp_path / "bin" / "python3")
    result = _run(env, "base")
    wanted = result.stderr.split("missing Debian packages:", 1)[1].split(";")[0].split()
    assert "python3" not in wanted and "python3-venv" not in wanted and "make" in wanted


def test_nothing_missing_runs_no_apt_and_says_nothing(tmp_path: Path) -> None:
    """With every tool there (apt-get is not even on PATH) the script exits 0 silently; a typo is exit 2."""
    env = _sandbox(tmp_path, python_ok=True, present=("make", "docker-registry", "skopeo"))
    result = _run(env, "base", "registry", "skopeo")
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    else:  # a machine without a CA bundle is told exactly that
        assert result.returncode == 1 and "missing Debian packages: ca-certificates;" in result.stderr
    unknown = _run(env, "nonsense")
    assert unknown.returncode == 2 and "unknown group: nonsense" in unknown.stderr
