"""Debian's tinyproxy as a subprocess on 127.0.0.1, with its own config and log file (proxy tests, bench)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

_REQUEST = re.compile(r"Request \(file descriptor \d+\): (\S+) (\S+) HTTP/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TinyProxy:
    """``tinyproxy -d -c CONF`` with ``BasicAuth`` when ``auth`` is given; :meth:`requests` reads its log."""

    def __init__(self, workdir: Path, *, auth: tuple[str, str] | None = None) -> None:
        self.workdir = workdir
        self.auth = auth
        self.port = 0
        self.log_path = workdir / "tinyproxy.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The proxy URL, credentials included (what a user puts in ``HTTPS_PROXY``)."""
        who = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"http://{who}127.0.0.1:{self.port}"

    def start(self) -> TinyProxy:
        binary = shutil.which("tinyproxy")
        if binary is None:
            raise RuntimeError("tinyproxy is not installed: apt-get install -y tinyproxy (scripts/system-deps.sh)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        lines = [f"Port {self.port}", "Listen 127.0.0.1", "Timeout 60", f'LogFile "{self.log_path}"',
                 "LogLevel Info", "MaxClients 64", "Allow 127.0.0.1", "DisableViaHeader Yes"]
        # No ConnectPort line: CONNECT is allowed to every port (the registry's is not 443).
        if self.auth:
            lines.append(f"BasicAuth {self.auth[0]} {self.auth[1]}")
        conf = self.workdir / "tinyproxy.conf"
        conf.write_text("\n".join(lines) + "\n")
        self._proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # ready once its log says it listens
            if self._proc.poll() is not None:
                raise RuntimeError(f"tinyproxy exited: {self._log()[-2000:]}")
            if "Accepting connections" in self._log():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"tinyproxy did not start: {self._log()[-2000:]}")

    def _log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def requests(self) -> list[tuple[str, str]]:
        """(method, target) of every request tinyproxy received, from its own log, in order."""
        return [(m.group(1), m.group(2)) for m in _REQUEST.finditer(self._log())]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self) -> TinyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
