"""binder/: a fresh virtual environment built from binder/requirements.txt (as repo2docker does, from the
repository root) can import ocinb and its notebook layer, on binder/runtime.txt's Python. The install test
downloads from the package index, so it is marked ``network`` and runs only with ``make binder-check``."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"


def test_requirements_and_runtime_files() -> None:
    lines = [line.strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    reqs = [line for line in lines if line and not line.startswith("#")]
    assert reqs[0] == "."
    pinned = dict(line.split("==") for line in reqs[1:])
    assert {"matplotlib", "ipywidgets", "ipykernel", "pandas"} <= set(pinned)
    assert int(pinned["pandas"].split(".")[0]) >= 3
    assert _runtime() >= (3, 11)  # pandas 3 needs Python 3.11+


def _runtime() -> tuple[int, int]:
    """binder/runtime.txt's Python as (major, minor)."""
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert match, runtime
    return int(match.group(1)), int(match.group(2))


@pytest.mark.network
def test_fresh_venv_installs_and_imports(tmp_path: Path) -> None:
    """The pins resolve and import on the Python runtime.txt names (Binder's), not merely on some Python."""
    if sys.version_info[:2] != _runtime():
        pytest.fail(f"binder/runtime.txt says {_runtime()} but this is Python {sys.version_info[:2]}: resolve the "
                    "pins on that Python (make binder-check PYTHON=python3.X) or change runtime.txt", pytrace=False)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
         "binder/requirements.txt"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    probe = ("import ocinb, ocinb.frames, ocinb.views, ocinb.widgets, matplotlib, pandas; "
             "print(ocinb.__file__); print(pandas.__version__)")
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    location, pandas_version = result.stdout.split()
    assert Path(location).is_relative_to(env_dir)  # installed into the venv, not imported from the checkout
    assert pandas_version.startswith("3.")
