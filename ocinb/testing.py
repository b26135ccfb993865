"""Run a real CNCF distribution registry locally for tests, demos and benchmarks."""

from __future__ import annotations

import atexit
import copy
import ctypes
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "AccessLogEntry",
    "LocalRegistry",
    "TokenAuthSettings",
    "find_registry_binary",
    "parse_access_log_line",
]

logger = logging.getLogger(__name__)

_INSTALL_HINT = (
    "install Debian's docker-registry package: `scripts/system-deps.sh registry` from an ocinb checkout "
    "(as root), or `apt-get install docker-registry`; or run `docker run -d -p 5000:5000 registry:2` and point "
    "your tests at localhost:5000; set OCINB_REGISTRY_BIN to use a binary elsewhere"
)

# Apache combined log format, as written by the registry's access log (gorilla/handlers).
_ACCESS_RE = re.compile(
    r"^(?P<remote>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<path>\S+) (?P<proto>[^"]+)" (?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
)
_START_TIMEOUT = 15.0
_PROBE_AGENT = "ocinb-testing-readiness-probe"
_SENTINEL_AGENT = "ocinb-testing-log-sentinel"
_SENTINEL_DEADLINE = 60.0
_PORT_RETRIES = 3


@dataclass(frozen=True)
class TokenAuthSettings:
    """Settings for the registry's `auth.token` section (Docker token authentication)."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@dataclass(frozen=True)
class AccessLogEntry:
    """One parsed access-log line of the registry."""

    method: str
    path: str
    status: int
    size: int
    user: str | None
    user_agent: str | None


def parse_access_log_line(line: str) -> AccessLogEntry | None:
    """Parse one combined-format access-log line; None for any other log line."""
    m = _ACCESS_RE.match(line)
    if m is None:
        return None
    size = m.group("size")
    user = m.group("user")
    return AccessLogEntry(
        method=m.group("method"),
        path=m.group("path"),
        status=int(m.group("status")),
        size=0 if size == "-" else int(size),
        user=None if user == "-" else user,
        user_agent=m.group("agent"),
    )


def find_registry_binary() -> str:
    """Locate the registry binary: $OCINB_REGISTRY_BIN, then `docker-registry`, then `registry` on PATH."""
    env = os.environ.get("OCINB_REGISTRY_BIN")
    if env:
        if Path(env).is_file() and os.access(env, os.X_OK):
            return env
        found = shutil.which(env)
        if found:
            return found
        raise RuntimeError(f"OCINB_REGISTRY_BIN={env!r} is not an executable file; {_INSTALL_HINT}")
    for name in ("docker-registry", "registry"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"The CNCF distribution registry binary was not found; {_INSTALL_HINT}")


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when its parent dies (a killed test run leaves
    no registry behind); ``None`` where ``prctl`` is not available."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (AttributeError, OSError):
        return None
    pr_set_pdeathsig = 1

    def arm() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return arm


def _free_port(host: str) -> int:
    """Ask the OS for a currently free TCP port on `host`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge `extra` into a copy of `base` (extra wins)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _bcrypt_htpasswd(users: Mapping[str, str]) -> str:
    """Render an htpasswd file with bcrypt hashes (the only kind the registry accepts)."""
    import bcrypt

    lines = []
    for user, password in users.items():
        if ":" in user:
            raise ValueError(f"htpasswd user names cannot contain ':': {user!r}")
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        lines.append(f"{user}:{hashed}")
    return "\n".join(lines) + "\n"


class LocalRegistry:
    """A CNCF distribution registry (`docker-registry serve`) running as a local subprocess."""

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        storage_dir: str | Path | None = None,
        delete_enabled: bool = True,
        htpasswd: dict[str, str] | None = None,
        token_auth: TokenAuthSettings | None = None,
        binary: str | None = None,
        extra_config: dict[str, Any] | None = None,
        log_path: Path | None = None,
        detach: bool = False,
        tls: tuple[str | Path, str | Path] | None = None,
    ) -> None:
        """``detach=True`` lets the registry outlive this process (``ocinb demo --keep``); otherwise it
        is stopped with :meth:`stop`, at exit, and (on Linux) when this process dies. ``tls`` is a
        (certificate, key) pair of PEM files: the registry then serves HTTPS only."""
        if htpasswd is not None and token_auth is not None:
            raise ValueError("htpasswd and token_auth are mutually exclusive")
        self.host = host
        self._requested_port = port
        self._port = port
        self._storage_arg = Path(storage_dir) if storage_dir is not None else None
        self.delete_enabled = delete_enabled
        self.htpasswd = dict(htpasswd) if htpasswd is not None else None
        self.token_auth = token_auth
        self._binary = binary
        self.detach = detach
        self.extra_config = extra_config or {}
        self.tls = (Path(tls[0]), Path(tls[1])) if tls is not None else None
        self._log_arg = Path(log_path) if log_path is not None else None
        self._tmpdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._storage_dir: Path | None = None
        self._count_base = 0

    @property
    def port(self) -> int:
        """The TCP port the registry listens on (0 until started when auto-picked)."""
        return self._port

    @property
    def address(self) -> str:
        """`HOST:PORT`, the registry address to pass to `ocinb.Client`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self._port}"

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:5000` (`https://` with ``tls``)."""
        return f"{'https' if self.tls else 'http'}://{self.address}"

    @property
    def pid(self) -> int | None:
        """PID of the registry process, or None when not running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def storage_dir(self) -> Path | None:
        """Filesystem storage root of the registry."""
        return self._storage_dir or self._storage_arg

    @property
    def log_path(self) -> Path | None:
        """File receiving the registry's stdout and stderr (access log included)."""
        return self._log_path or self._log_arg

    @property
    def running(self) -> bool:
        """True while the registry process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def build_config(self) -> dict[str, Any]:
        """Return the registry configuration as a dict (written as JSON, which is valid YAML)."""
        assert self._tmpdir is not None and self._storage_dir is not None
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {
                "level": "info",
                "formatter": "text",
                "accesslog": {"disabled": False},
                "fields": {"service": "registry"},
            },
            "storage": {
                "filesystem": {"rootdirectory": str(self._storage_dir)},
                "delete": {"enabled": self.delete_enabled},
                "maintenance": {"uploadpurging": {"enabled": False}},
                "redirect": {"disable": True},
            },
            "http": {
                "addr": self.address,
                "secret": secrets.token_hex(32),
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.tls is not None:
            config["http"]["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
        if self.htpasswd is not None:
            htpath = self._tmpdir / "htpasswd"
            htpath.write_text(_bcrypt_htpasswd(self.htpasswd))
            config["auth"] = {"htpasswd": {"realm": "ocinb-registry", "path": str(htpath)}}
        elif self.token_auth is not None:
            config["auth"] = {
                "token": {
                    "realm": self.token_auth.realm,
                    "service": self.token_auth.service,
                    "issuer": self.token_auth.issuer,
                    "rootcertbundle": str(self.token_auth.rootcertbundle),
                }
            }
        return _deep_merge(config, self.extra_config)

    def _resolve_binary(self) -> str:
        if self._binary:
            found = shutil.which(self._binary)
            if found is None:
                raise RuntimeError(f"registry binary {self._binary!r} is not executable; {_INSTALL_HINT}")
            return found
        return find_registry_binary()

    def start(self) -> LocalRegistry:
        """Spawn the registry and wait until `GET /v2/` answers; raise RuntimeError on failure."""
        if self.running:
            return self
        binary = self._resolve_binary()
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="ocinb-registry-"))
        self._storage_dir = self._storage_arg or self._tmpdir / "storage"
        self._storage_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = self._log_arg or self._tmpdir / "registry.log"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        attempts = _PORT_RETRIES if self._requested_port == 0 else 1
        error = ""
        for _ in range(attempts):
            self._port = self._requested_port or _free_port(self.host)
            ok, error = self._spawn_and_wait(binary)
            if ok:
                self._count_base = len(self.access_log(flush=False))
                atexit.register(self.stop)
                logger.info("registry started at %s (pid %s)", self.url, self.pid)
                return self
            self._terminate()
            if "address already in use" not in error:
                break
            logger.info("port %s was taken, retrying with another one", self._port)
        self._cleanup_tmp()
        raise RuntimeError(f"registry failed to start on {self.address}; log tail:\n{error}")

    def _spawn_and_wait(self, binary: str) -> tuple[bool, str]:
        """Start one process and poll `/v2/`; return (ok, log tail)."""
        assert self._tmpdir is not None and self._log_path is not None
        config_path = self._tmpdir / "config.yml"
        config_path.write_text(json.dumps(self.build_config(), indent=2))
        start_offset = self._log_path.stat().st_size if self._log_path.exists() else 0
        with open(self._log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [binary, "serve", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.detach,
                preexec_fn=None if self.detach else _die_with_parent(),
            )
        started = time.monotonic()
        deadline = started + _START_TIMEOUT
        listening = False
        with httpx.Client(timeout=1.0, trust_env=False, headers={"User-Agent": _PROBE_AGENT},
                          verify=not self.tls) as client:  # probing the bind, not the certificate
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                # "listening on" is logged only after the bind succeeded: without it, a 200/401 could
                # come from some other server already holding the port (other versions: wait 1 s instead).
                if not listening:
                    listening = "listening on" in self._log_tail(start_offset, limit=None)
                if listening or time.monotonic() - started > 1.0:
                    try:
                        client.get(f"{self.url}/v2/")
                        return True, ""
                    except httpx.HTTPError:
                        pass
                time.sleep(0.05)
        return False, self._log_tail(start_offset)

    def _log_tail(self, offset: int = 0, limit: int | None = 4000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        with open(self._log_path, "rb") as f:
            f.seek(offset)
            data = f.read()
        return (data[-limit:] if limit else data).decode(errors="replace")

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def _cleanup_tmp(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self._storage_dir = None
        self._log_path = None

    def stop(self) -> None:
        """Terminate the registry by PID (kill if it does not exit) and remove the temp dir."""
        atexit.unregister(self.stop)
        self._terminate()
        self._cleanup_tmp()
        if self._requested_port == 0:
            self._port = 0

    def access_log(self, *, flush: bool = True) -> list[AccessLogEntry]:
        """Parsed access-log entries so far, without the readiness probes of `start()` and the sentinels.

        With `flush` (and the registry running) a sentinel request is sent first and the log is polled
        until its line appears: the registry writes a line only after it answered, so every request
        answered before this call is then in the file."""
        path = self.log_path
        if path is None or not path.exists():
            return []
        if flush and self.running:
            self._await_sentinel(path)
        entries = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                entry = parse_access_log_line(line)
                if entry is not None and entry.user_agent not in (_PROBE_AGENT, _SENTINEL_AGENT):
                    entries.append(entry)
        return entries

    def _await_sentinel(self, path: Path) -> None:
        """GET a unique path, then read the log from where it ended until that request's access line
        shows up; RuntimeError if it does not within a generous deadline (a registry not logging)."""
        token = secrets.token_hex(8)
        offset = path.stat().st_size
        sentinel = f"/v2/ocinb-testing/log-sentinel/manifests/{token}"
        try:
            with httpx.Client(timeout=_SENTINEL_DEADLINE, trust_env=False, headers={"User-Agent": _SENTINEL_AGENT},
                              verify=not self.tls) as client:  # flushing the log, not checking the certificate
                client.get(f"{self.url}{sentinel}")
        except httpx.HTTPError as exc:
            raise RuntimeError(f"registry at {self.url} did not answer the access-log sentinel: {exc!r}") from exc
        deadline = time.monotonic() + _SENTINEL_DEADLINE
        pending = b""
        with open(path, "rb") as f:
            f.seek(offset)
            while True:
                pending += f.read()
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    entry = parse_access_log_line(line.decode(errors="replace"))
                    if entry is not None and entry.path == sentinel:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the access log {path} has no line for the sentinel GET {sentinel} after "
                        f"{_SENTINEL_DEADLINE:.0f} s (is the registry's access log disabled?)")
                time.sleep(0.005)  # poll interval between reads of the growing file

    def request_count(self, method: str | None = None, path_contains: str | None = None) -> int:
        """Count requests served since start (or the last `reset_request_count()`), optionally filtered."""
        wanted = method.upper() if method else None
        return sum(
            1
            for e in self.access_log()[self._count_base :]
            if (wanted is None or e.method == wanted) and (path_contains is None or path_contains in e.path)
        )

    def reset_request_count(self) -> None:
        """Make `request_count()` ignore every request served so far."""
        self._count_base = len(self.access_log())

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"LocalRegistry({self.address}, {state})"
