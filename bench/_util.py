"""Shared helpers of the benchmark suite: timing, peak-RSS sampling, big files, machine facts."""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def median(values: list[float]) -> float:
    """The median of ``values`` (NaN for none)."""
    return statistics.median(values) if values else float("nan")


def make_file(path: Path, size: int, chunk: int = MIB) -> str:
    """Write ``size`` random bytes to ``path`` in ``chunk`` pieces (memory flat); return ``sha256:<hex>``."""
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            data = os.urandom(min(chunk, left))
            h.update(data)
            fh.write(data)
            left -= len(data)
    return f"sha256:{h.hexdigest()}"


def sha256_file(path: Path, chunk: int = MIB) -> str:
    """``sha256:<hex>`` of a file, read in pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            h.update(data)
    return f"sha256:{h.hexdigest()}"


class PeakRSS:
    """Samples this process's RSS on a thread (every ``interval`` s) to find the peak during a block."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.base


def timed_subprocess(cmd: list[str] | str, *, shell: bool = False, env: dict[str, str] | None = None,
                     stdin: Any = subprocess.DEVNULL) -> tuple[float, int, str]:
    """Run ``cmd`` under GNU time; return (wall seconds, peak RSS bytes of the largest process, stdout)."""
    full: list[str]
    if shell:
        full = ["/usr/bin/time", "-f", "@@MAXRSS %M", "sh", "-c", str(cmd)]
    else:
        full = ["/usr/bin/time", "-f", "@@MAXRSS %M", *cmd]
    start = time.perf_counter()
    proc = subprocess.run(full, stdin=stdin, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    rss = 0
    for line in proc.stderr.splitlines():
        if line.startswith("@@MAXRSS "):
            rss = int(line.split()[1]) * 1024
    return seconds, rss, proc.stdout


def repeat(fn: Callable[[], float], runs: int, warmup: int = 0) -> list[float]:
    """Call ``fn`` (which returns seconds) ``warmup`` + ``runs`` times; the timed results."""
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(runs)]


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, kernel, Python, load: what the numbers depend on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(ram / 1024**3, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": os.getloadavg(),
    }


def tool_version(cmd: list[str]) -> str | None:
    """First line of ``cmd`` (a ``--version`` call), or None when the tool is missing."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None
