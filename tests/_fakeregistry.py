"""In-memory, spec-faithful OCI Distribution v1.1 registry (plus a blob mirror) for tests; stdlib only."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

NAME_RE = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_HEX = {"sha256": 64, "sha512": 128}

_DEFAULT_CODES = {
    400: "UNKNOWN",
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NAME_UNKNOWN",
    405: "UNSUPPORTED",
    413: "SIZE_INVALID",
    416: "RANGE_INVALID",
    429: "TOOMANYREQUESTS",
    503: "UNAVAILABLE",
}


def sha256_digest(data: bytes) -> str:
    """Return the ``sha256:<hex>`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """Return ``algorithm:hex`` for ``data`` (sha256 or sha512)."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def digest_ok(digest: str) -> bool:
    """True if ``digest`` is well formed and uses an algorithm this server can verify."""
    m = DIGEST_RE.fullmatch(digest)
    return bool(m) and m.group(1) in _HEX and re.fullmatch(f"[a-f0-9]{{{_HEX[m.group(1)]}}}", m.group(2)) is not None


def oci_error(code: str, message: str = "", detail: Any = None) -> bytes:
    """Serialise one OCI error body."""
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


class CIHeaders(dict[str, str]):
    """Header dict with case-insensitive access; keys are stored lower-case, repeats joined with ', '."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for key, value in items:
            k = key.lower()
            super().__setitem__(k, f"{super().__getitem__(k)}, {value}" if super().__contains__(k) else value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        """Case-insensitive ``dict.get``."""
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    raw_query: str
    query: list[tuple[str, str]]
    headers: CIHeaders
    body_length: int = 0

    def param(self, name: str) -> str | None:
        """First value of query parameter ``name``."""
        return next((v for k, v in self.query if k == name), None)

    @property
    def target(self) -> str:
        """Path plus raw query, as sent."""
        return f"{self.path}?{self.raw_query}" if self.raw_query else self.path


def iter_chunked(rfile: Any) -> Iterator[bytes]:
    """Decode a chunked request body; stops early (without raising) if the peer goes away."""
    while True:
        line = rfile.readline(65537)
        if not line:
            return
        try:
            size = int(line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            return
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return
        data = rfile.read(size)
        if data:
            yield data
        if len(data) < size:
            raise EOFError("truncated chunk")
        rfile.readline(3)


def read_body(handler: BaseHTTPRequestHandler) -> tuple[bytes, bool]:
    """Read the whole request body (Content-Length or chunked); return (data, complete)."""
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        parts: list[bytes] = []
        try:
            parts.extend(iter_chunked(handler.rfile))
        except (EOFError, OSError):
            return b"".join(parts), False
        return b"".join(parts), True
    try:
        n = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        n = 0
    if n <= 0:
        return b"", True
    try:
        data = handler.rfile.read(n)
    except OSError:
        return b"", False
    return data, len(data) == n


def parse_request(handler: BaseHTTPRequestHandler) -> RecordedRequest:
    """Build a RecordedRequest (body length 0) from a handler's request line and headers."""
    parts = urlsplit(handler.path)
    return RecordedRequest(
        method=handler.command,
        path=unquote(parts.path),
        raw_query=parts.query,
        query=parse_qsl(parts.query, keep_blank_values=True),
        headers=CIHeaders(handler.headers.items()),
    )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: ServerBase

    def server_bind(self) -> None:
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (OSError, ValueError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)
            self.server.owner.connection_closed(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        try:
            self.server.owner.handle(self)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            text = traceback.format_exc()
            print(text, file=sys.stderr)
            self.close_connection = True
            try:
                body = text.encode()
                self.send_response(500)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_OPTIONS = _dispatch


class ServerBase:
    """A ThreadingHTTPServer (HTTP/1.1, keep-alive) on a daemon thread; subclasses implement ``handle`` and
    record what they serve in ``requests`` under ``_lock``."""

    requests: list[RecordedRequest]
    _lock: threading.Lock | threading.RLock

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        """Number of recorded requests with that method and path prefix."""
        with self._lock:
            return sum(1 for r in self.requests if (method is None or r.method == method.upper())
                       and (path_prefix is None or r.path.startswith(path_prefix)))

    def reset_log(self) -> None:
        """Clear the request log."""
        with self._lock:
            self.requests.clear()

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._server = _HTTPServer((host, port), _Handler)
        self._server.owner = self
        self.host: str = self._server.server_address[0]
        self.port: int = self._server.server_address[1]
        self._stopped = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=type(self).__name__
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True until ``stop()``."""
        return not self._stopped

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one request."""
        raise NotImplementedError

    def connection_closed(self, handler: BaseHTTPRequestHandler) -> None:
        """Hook called when a client connection ends."""

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def stop(self) -> None:
        """Stop serving and drop every open connection."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> ServerBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def abort_connection(handler: BaseHTTPRequestHandler) -> None:
    """Close the client socket abruptly (shutdown + close), without a response."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.wfile.flush()
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)
    handler.connection.close()


@dataclass
class Resp:
    """A response to send."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None


def send_response(handler: BaseHTTPRequestHandler, resp: Resp, *, chunked: bool = False) -> None:
    """Write ``resp`` with Content-Length (or chunked encoding when asked); no body for HEAD/204/304."""
    handler.send_response(resp.status)
    if resp.content_type:
        handler.send_header("Content-Type", resp.content_type)
    for key, value in resp.headers:
        handler.send_header(key, value)
    no_body = handler.command == "HEAD" or resp.status in (204, 304)
    if chunked and not no_body and resp.body:
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        half = max(1, len(resp.body) // 2)
        for piece in (resp.body[:half], resp.body[half:]):
            if piece:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        handler.wfile.write(b"0\r\n\r\n")
        return
    handler.send_header("Content-Length", str(len(resp.body)))
    handler.end_headers()
    if not no_body and resp.body:
        handler.wfile.write(resp.body)


def range_response(data: bytes, range_header: str | None, headers: list[tuple[str, str]], content_type: str) -> Resp:
    """200 for the whole ``data`` or 206/416 for a single ``bytes=`` range (RFC 9110)."""
    headers = [*headers, ("Accept-Ranges", "bytes")]
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header or "")
    if not range_header or not m or (not m.group(1) and not m.group(2)):
        return Resp(200, data, headers, content_type)
    size = len(data)
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:
        start, end = max(0, size - int(m.group(2))), size - 1
    if start >= size or end < start:
        return Resp(416, b"", [*headers, ("Content-Range", f"bytes */{size}")], content_type)
    headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
    return Resp(206, data[start : end + 1], headers, content_type)


@dataclass
class _Manifest:
    data: bytes
    media_type: str
    digest: str
    subject: str | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None


@dataclass
class _Upload:
    repo: str
    uuid: str
    state: str
    issued: set[str]
    data: bytearray = field(default_factory=bytearray)
    short_chunk: bool = False
    lost_chunk: bool = False


@dataclass
class _FailRule:
    remaining: int
    status: int
    retry_after: int | float | str | None
    body: bytes | str | None
    headers: dict[str, str] | None
    match: Callable[[str, str], bool] | None


@dataclass
class _Token:
    scopes: dict[tuple[str, str], set[str]]
    expires_at: float


def _parse_scope(scope: str) -> tuple[str, str, set[str]] | None:
    if scope.count(":") < 2:
        return None
    typ, rest = scope.split(":", 1)
    name, actions = rest.rsplit(":", 1)
    return typ, name, {a for a in actions.split(",") if a}


class FakeRegistry(ServerBase):
    """In-memory OCI Distribution v1.1 registry (end-1…end-13, referrers, auth, fault and quirk injection).

    Quirk/fault attributes may be changed at any time from the test thread.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        referrers_api: bool = True,
        tag_page_size: int = 100,
        catalog_page_size: int = 100,
        referrers_page_size: int = 100,
        chunk_min_length: int | None = None,
        mount_mode: Literal["auto", "always_202"] = "auto",
        single_post: bool = True,
        enforce_accept: bool = True,
        check_references: bool = True,
        delete_enabled: bool = True,
        max_manifest_size: int = 4 * 1024 * 1024,
        absolute_locations: bool = False,
        chunked_responses: bool = False,
        basic_auth: tuple[str, str] | None = None,
        bearer: dict[str, Any] | None = None,
        warning: str | list[str] | None = None,
        ratelimit: tuple[int, int] | None = None,
        redirect_blobs_to: str | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.referrers_api = referrers_api
        self.tag_page_size = tag_page_size
        self.catalog_page_size = catalog_page_size
        self.referrers_page_size = referrers_page_size
        self.chunk_min_length = chunk_min_length
        self.mount_mode = mount_mode
        self.single_post = single_post
        self.enforce_accept = enforce_accept
        self.check_references = check_references
        self.delete_enabled = delete_enabled
        self.max_manifest_size = max_manifest_size
        self.absolute_locations = absolute_locations
        self.chunked_responses = chunked_responses
        self.basic_auth = basic_auth
        self.bearer = bearer
        self.warning = warning
        self.ratelimit = ratelimit
        self.redirect_blobs_to = redirect_blobs_to
        self._blobs: dict[str, bytes] = {}
        self._links: dict[str, set[str]] = {}
        self._manifests: dict[str, dict[str, _Manifest]] = {}
        self._tags: dict[str, dict[str, str]] = {}
        self._repos: set[str] = set()
        self._uploads: dict[str, _Upload] = {}
        self._fail_rules: list[_FailRule] = []
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._chunks_to_pass = 0
        self._chunks_to_lose = 0
        super().__init__(host, port)

    def put_blob(self, repo: str, data: bytes, algorithm: str = "sha256") -> str:
        """Store ``data`` as a blob linked into ``repo``; return its digest."""
        digest = compute_digest(data, algorithm)
        with self._lock:
            self._blobs[digest] = bytes(data)
            self._links.setdefault(repo, set()).add(digest)
            self._repos.add(repo)
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes | dict[str, Any], media_type: str | None = None) -> str:
        """Store a manifest (raw bytes kept as given) under a tag or digest without checks; return its digest."""
        raw = json.dumps(data).encode() if isinstance(data, dict) else bytes(data)
        doc = json.loads(raw)
        media_type = media_type or doc.get("mediaType") or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
        algorithm = ref.split(":", 1)[0] if ":" in ref else "sha256"
        with self._lock:
            return self._store_manifest(repo, ref, raw, doc, media_type, compute_digest(raw, algorithm))

    def get_blob(self, digest: str) -> bytes | None:
        """Blob bytes by digest (any repo)."""
        with self._lock:
            return self._blobs.get(digest)

    def has_blob(self, repo: str, digest: str) -> bool:
        """True if ``digest`` is linked into ``repo``."""
        with self._lock:
            return digest in self._links.get(repo, set())

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str] | None:
        """(raw bytes, media type) of a manifest by tag or digest."""
        with self._lock:
            m = self._lookup_manifest(repo, ref)
            return (m.data, m.media_type) if m else None

    def tags(self, repo: str) -> list[str]:
        """Tags of ``repo`` in listing order."""
        with self._lock:
            return sorted(self._tags.get(repo, {}), key=_tag_key)

    def upload_sessions(self) -> int:
        """Number of open upload sessions."""
        with self._lock:
            return len(self._uploads)

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: int | float | str | None = None,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        match: Callable[[str, str], bool] | None = None,
    ) -> None:
        """Answer the next ``n`` requests for which ``match(method, path)`` holds with ``status``."""
        with self._lock:
            self._fail_rules.append(_FailRule(n, status, retry_after, body, headers, match))

    def clear_faults(self) -> None:
        """Forget pending ``fail_next`` and ``lose_next_chunks`` faults."""
        with self._lock:
            self._fail_rules.clear()
            self._chunks_to_pass = self._chunks_to_lose = 0

    def lose_next_chunks(self, n: int = 1, *, after: int = 0) -> None:
        """Acknowledge ``n`` non-empty PATCH chunks, those following the next ``after`` ones, with a 202 whose
        ``Range`` counts them, but keep nothing, as a backend that lost a write: the chunk after one then
        arrives out of order and gets the spec's 416 with the ``Range`` the upload really holds and a (new)
        ``Location`` to continue at."""
        with self._lock:
            self._chunks_to_pass, self._chunks_to_lose = after, n

    def expire_tokens(self) -> None:
        """Make every issued bearer token expire now."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = 0.0

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Read, record and answer one request."""
        rec = parse_request(handler)
        body, complete = read_body(handler)
        rec.body_length = len(body)
        with self._lock:
            self.requests.append(rec)
            if not complete:
                self._partial_body(rec, body)
        if not complete:
            handler.close_connection = True
            return
        with self._lock:
            resp = self._respond(rec, body)
        for warning in [self.warning] if isinstance(self.warning, str) else self.warning or []:
            resp.headers.append(("Warning", f'299 - "{warning}"'))
        send_response(handler, resp, chunked=self.chunked_responses)

    def _err(self, status: int, code: str, message: str = "", detail: Any = None, **headers: str) -> Resp:
        hdrs = [(k.replace("_", "-"), v) for k, v in headers.items()]
        return Resp(status, oci_error(code, message, detail), hdrs, "application/json")

    def _loc(self, path: str) -> str:
        return self.url + path if self.absolute_locations else path

    def _respond(self, rec: RecordedRequest, body: bytes) -> Resp:
        rule = self._take_fail_rule(rec)
        if rule is not None:
            return self._fail_response(rule)
        if rec.path == "/token":
            return self._token_endpoint(rec, body)
        if not rec.path.startswith("/v2/"):
            return Resp(404, b"404 page not found\n", [], "text/plain; charset=utf-8")
        resp = self._route(rec, body)
        resp.headers.append(("Docker-Distribution-API-Version", "registry/2.0"))
        return resp

    def _take_fail_rule(self, rec: RecordedRequest) -> _FailRule | None:
        for rule in self._fail_rules:
            if rule.remaining > 0 and (rule.match is None or rule.match(rec.method, rec.path)):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._fail_rules.remove(rule)
                return rule
        return None

    def _fail_response(self, rule: _FailRule) -> Resp:
        headers = list((rule.headers or {}).items())
        if rule.retry_after is not None:
            headers.append(("Retry-After", str(rule.retry_after)))
        if rule.body is None:
            code = _DEFAULT_CODES.get(rule.status, "UNKNOWN")
            return Resp(rule.status, oci_error(code, f"injected {rule.status}"), headers, "application/json")
        body = rule.body.encode() if isinstance(rule.body, str) else rule.body
        ctype = None if any(k.lower() == "content-type" for k, _ in headers) else "text/plain"
        return Resp(rule.status, body, headers, ctype)

    def _needed_scopes(self, rec: RecordedRequest, kind: str, name: str | None) -> list[str]:
        if kind == "catalog":
            return ["registry:catalog:*"]
        if name is None:
            return []
        if rec.method in ("GET", "HEAD"):
            return [f"repository:{name}:pull"]
        if rec.method == "DELETE" and kind != "uploads":
            return [f"repository:{name}:delete"]
        scopes = [f"repository:{name}:pull,push"]
        src = rec.param("from")
        if kind == "uploads" and rec.method == "POST" and rec.param("mount") and src and src != name:
            scopes.append(f"repository:{src}:pull")
        return scopes

    def _check_auth(self, rec: RecordedRequest, kind: str, name: str | None) -> Resp | None:
        auth = rec.headers.get("Authorization") or ""
        if self.bearer is None:
            if self.basic_auth is None or self._basic_ok(auth):
                return None
            return self._err(401, "UNAUTHORIZED", "authentication required", WWW_Authenticate='Basic realm="fake"')
        needed = self._needed_scopes(rec, kind, name)
        cfg = self.bearer
        challenge = f'Bearer realm="{cfg.get("realm") or self.url + "/token"}",service="{cfg.get("service", "fake")}"'
        if needed:
            challenge += f',scope="{" ".join(needed)}"'
        token = self._tokens.get(auth[7:].strip()) if auth[:7].lower() == "bearer " else None
        if token is None or token.expires_at <= time.time():
            if token is not None:
                challenge += ',error="invalid_token"'
            return self._err(401, "UNAUTHORIZED", "authentication required", WWW_Authenticate=challenge)
        for scope in needed:
            typ, sname, actions = _parse_scope(scope) or ("", "", set())
            granted = token.scopes.get((typ, sname), set())
            if "*" not in granted and not actions <= granted:
                challenge += ',error="insufficient_scope"'
                return self._err(401, "UNAUTHORIZED", "insufficient scope", WWW_Authenticate=challenge)
        return None

    def _basic_ok(self, auth: str) -> bool:
        if self.basic_auth is None:
            return True
        if auth[:6].lower() != "basic ":
            return False
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == tuple(self.basic_auth)

    def _token_endpoint(self, rec: RecordedRequest, body: bytes) -> Resp:
        cfg = self.bearer
        if cfg is None:
            return Resp(404, b"404 page not found\n", [], "text/plain; charset=utf-8")
        if rec.method == "POST":
            if not cfg.get("oauth"):
                return Resp(404, b"404 page not found\n", [], "text/plain; charset=utf-8")
            form = parse_qsl(body.decode(), keep_blank_values=True)
            fields = dict(form)
            scopes = [s for k, v in form if k == "scope" for s in v.split()]
            grant = fields.get("grant_type")
            if grant == "password":
                if self.basic_auth and (fields.get("username"), fields.get("password")) != tuple(self.basic_auth):
                    return self._err(401, "UNAUTHORIZED", "bad credentials")
            elif grant == "refresh_token":
                if fields.get("refresh_token") not in self._refresh_tokens:
                    return self._err(401, "UNAUTHORIZED", "bad refresh token")
            else:
                return self._err(400, "UNSUPPORTED", "unsupported grant_type")
            refresh = fields.get("refresh_token") if grant == "refresh_token" else secrets.token_urlsafe(16)
            self._refresh_tokens[refresh or ""] = fields.get("username", "")
            return self._issue(scopes, cfg, refresh)
        if rec.method != "GET":
            return self._err(405, "UNSUPPORTED", "method not allowed")
        auth = rec.headers.get("Authorization") or ""
        if self.basic_auth is not None and not self._basic_ok(auth):
            return self._err(401, "UNAUTHORIZED", "bad credentials", WWW_Authenticate='Basic realm="fake-token"')
        scopes = [s for k, v in rec.query if k == "scope" for s in v.split()]
        refresh = None
        if rec.param("offline_token") == "true" and self.basic_auth is not None:
            refresh = secrets.token_urlsafe(16)
            self._refresh_tokens[refresh] = self.basic_auth[0]
        return self._issue(scopes, cfg, refresh)

    def _issue(self, scopes: list[str], cfg: dict[str, Any], refresh: str | None) -> Resp:
        granted: dict[tuple[str, str], set[str]] = {}
        grant_fn = cfg.get("grant")
        for scope in scopes:
            parsed = _parse_scope(scope)
            if parsed is None or (grant_fn is not None and not grant_fn(scope)):
                continue
            granted.setdefault(parsed[:2], set()).update(parsed[2])
        expires_in = int(cfg.get("expires_in", 60))
        token = secrets.token_urlsafe(24)
        self._tokens[token] = _Token(granted, time.time() + expires_in)
        doc: dict[str, Any] = {"expires_in": expires_in, "issued_at": datetime.now(UTC).isoformat()}
        field_mode = cfg.get("token_field", "both")
        if field_mode in ("both", "token"):
            doc["token"] = token
        if field_mode in ("both", "access_token"):
            doc["access_token"] = token
        if refresh:
            doc["refresh_token"] = refresh
        return Resp(200, json.dumps(doc).encode(), [], "application/json")


    _ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
        ("base", re.compile(r"/v2/")),
        ("catalog", re.compile(r"/v2/_catalog")),
        ("uploads", re.compile(r"/v2/(?P<name>.+)/blobs/uploads/(?P<ref>[^/]*)")),
        ("blobs", re.compile(r"/v2/(?P<name>.+)/blobs/(?P<ref>[^/]+)")),
        ("manifests", re.compile(r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)")),
        ("tags", re.compile(r"/v2/(?P<name>.+)/tags/list")),
        ("referrers", re.compile(r"/v2/(?P<name>.+)/referrers/(?P<ref>[^/]+)")),
    )

    def _route(self, rec: RecordedRequest, body: bytes) -> Resp:
        kind, m = next(((k, p.fullmatch(rec.path)) for k, p in self._ROUTES if p.fullmatch(rec.path)), ("", None))
        if m is None:
            return Resp(404, b"404 page not found\n", [], "text/plain; charset=utf-8")
        groups = m.groupdict()
        name, ref = groups.get("name"), groups.get("ref")
        if kind == "referrers" and not self.referrers_api:
            return Resp(404, b"404 page not found\n", [], "text/plain; charset=utf-8")
        denied = self._check_auth(rec, kind, name)
        if denied is not None:
            return denied
        if name is not None and not NAME_RE.fullmatch(name):
            return self._err(400, "NAME_INVALID", "invalid repository name", {"name": name})
        method = rec.method
        if kind == "base":
            return Resp(200, b"{}", [], "application/json") if method in ("GET", "HEAD") else self._method_not_allowed()
        if kind == "catalog" and method in ("GET", "HEAD"):
            return self._catalog(rec)
        if kind == "tags" and method in ("GET", "HEAD"):
            return self._tag_list(rec, name or "")
        if kind == "referrers" and method in ("GET", "HEAD"):
            return self._referrers(rec, name or "", ref or "")
        if kind == "blobs":
            if method in ("GET", "HEAD"):
                return self._blob_get(rec, name or "", ref or "")
            if method == "DELETE":
                return self._blob_delete(name or "", ref or "")
        if kind == "manifests":
            if method in ("GET", "HEAD"):
                return self._manifest_get(rec, name or "", ref or "")
            if method == "PUT":
                return self._manifest_put(rec, name or "", ref or "", body)
            if method == "DELETE":
                return self._manifest_delete(name or "", ref or "")
        if kind == "uploads":
            if method == "POST" and not ref:
                return self._upload_start(rec, name or "", body)
            if ref:
                return self._upload_op(rec, name or "", ref, body)
        return self._method_not_allowed()

    def _method_not_allowed(self) -> Resp:
        return self._err(405, "UNSUPPORTED", "the operation is unsupported")


    @staticmethod
    def _paginate(
        items: list[str], rec: RecordedRequest, page_size: int, key: Callable[[str], Any]
    ) -> tuple[list[str], int | None, bool] | Resp:
        n_raw = rec.param("n")
        n: int | None = None
        if n_raw is not None and n_raw != "":
            try:
                n = int(n_raw)
            except ValueError:
                n = -1
            if n < 0:
                return Resp(
                    400,
                    oci_error("PAGINATION_NUMBER_INVALID", "invalid number of results requested"),
                    [],
                    "application/json",
                )
        if n == 0:
            return [], n, False
        last = rec.param("last")
        if last is not None:
            items = [i for i in items if key(i) > key(last)]
        limit = min(n, page_size) if n is not None else page_size
        return items[:limit], n if n is not None else limit, len(items) > limit

    def _tag_list(self, rec: RecordedRequest, name: str) -> Resp:
        if name not in self._repos:
            return self._err(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        paged = self._paginate(sorted(self._tags.get(name, {}), key=_tag_key), rec, self.tag_page_size, _tag_key)
        if isinstance(paged, Resp):
            return paged
        page, n, more = paged
        headers = []
        if more:
            headers.append(("Link", f'</v2/{name}/tags/list?n={n}&last={quote(page[-1], safe="")}>; rel="next"'))
        return Resp(200, json.dumps({"name": name, "tags": page}).encode(), headers, "application/json")

    def _catalog(self, rec: RecordedRequest) -> Resp:
        paged = self._paginate(sorted(self._repos), rec, self.catalog_page_size, lambda s: s)
        if isinstance(paged, Resp):
            return paged
        page, n, more = paged
        headers = []
        if more:
            headers.append(("Link", f'</v2/_catalog?n={n}&last={quote(page[-1], safe="")}>; rel="next"'))
        return Resp(200, json.dumps({"repositories": page}).encode(), headers, "application/json")

    def _referrers(self, rec: RecordedRequest, name: str, digest: str) -> Resp:
        if not DIGEST_RE.fullmatch(digest):
            return self._err(400, "DIGEST_INVALID", "invalid digest", {"digest": digest})
        found = sorted(
            (m for m in self._manifests.get(name, {}).values() if m.subject == digest), key=lambda m: m.digest
        )
        headers: list[tuple[str, str]] = []
        artifact_type = rec.param("artifactType")
        if artifact_type:
            found = [m for m in found if m.artifact_type == artifact_type]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        last = rec.param("last")
        if last:
            found = [m for m in found if m.digest > last]
        page, more = found[: self.referrers_page_size], len(found) > self.referrers_page_size
        if more:
            query = f"last={quote(page[-1].digest, safe='')}"
            if artifact_type:
                query += f"&artifactType={quote(artifact_type, safe='')}"
            headers.append(("Link", f'</v2/{name}/referrers/{digest}?{query}>; rel="next"'))
        descriptors = []
        for m in page:
            desc: dict[str, Any] = {"mediaType": m.media_type, "digest": m.digest, "size": len(m.data)}
            if m.artifact_type:
                desc["artifactType"] = m.artifact_type
            if m.annotations:
                desc["annotations"] = m.annotations
            descriptors.append(desc)
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        return Resp(200, json.dumps(doc).encode(), headers, OCI_INDEX)

    def _blob_get(self, rec: RecordedRequest, name: str, digest: str) -> Resp:
        if digest not in self._links.get(name, set()):
            return self._err(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
        if self.redirect_blobs_to and rec.method == "GET":
            target = f"{self.redirect_blobs_to.rstrip('/')}/blobs/{digest}?sig=abc"
            return Resp(307, b"", [("Location", target), ("Docker-Content-Digest", digest)])
        headers = [("Docker-Content-Digest", digest), ("ETag", f'"{digest}"')]
        return range_response(self._blobs[digest], rec.headers.get("Range"), headers, "application/octet-stream")

    def _blob_delete(self, name: str, digest: str) -> Resp:
        if not self.delete_enabled:
            return self._method_not_allowed()
        links = self._links.get(name, set())
        if digest not in links:
            return self._err(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
        links.discard(digest)
        return Resp(202, b"", [("Docker-Content-Digest", digest)])

    def _lookup_manifest(self, name: str, ref: str) -> _Manifest | None:
        repo = self._manifests.get(name, {})
        if ":" in ref:
            return repo.get(ref)
        digest = self._tags.get(name, {}).get(ref)
        return repo.get(digest) if digest else None

    def _manifest_headers(self, rec: RecordedRequest) -> list[tuple[str, str]] | Resp:
        if self.ratelimit is None:
            return []
        limit, remaining = self.ratelimit
        if rec.method == "GET":
            if remaining <= 0:
                return self._err(
                    429,
                    "TOOMANYREQUESTS",
                    "rate limit exceeded",
                    ratelimit_limit=f"{limit};w=21600",
                    ratelimit_remaining="0;w=21600",
                )
            remaining -= 1
            self.ratelimit = (limit, remaining)
        return [("ratelimit-limit", f"{limit};w=21600"), ("ratelimit-remaining", f"{remaining};w=21600")]

    def _manifest_get(self, rec: RecordedRequest, name: str, ref: str) -> Resp:
        if name not in self._repos:
            return self._err(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        m = self._lookup_manifest(name, ref)
        if m is None:
            return self._err(404, "MANIFEST_UNKNOWN", "manifest unknown", {"reference": ref})
        if self.enforce_accept and not _accepts(rec.headers.get("Accept"), m.media_type):
            return self._err(404, "MANIFEST_UNKNOWN", "manifest not acceptable", {"mediaType": m.media_type})
        extra = self._manifest_headers(rec)
        if isinstance(extra, Resp):
            return extra
        headers = [("Docker-Content-Digest", m.digest), ("ETag", f'"{m.digest}"'), *extra]
        return Resp(200, m.data, headers, m.media_type)

    def _manifest_put(self, rec: RecordedRequest, name: str, ref: str, body: bytes) -> Resp:
        if len(body) > self.max_manifest_size:
            return self._err(413, "MANIFEST_INVALID", "manifest too large", {"size": len(body)})
        is_digest = ":" in ref
        if is_digest and not digest_ok(ref):
            return self._err(400, "DIGEST_INVALID", "invalid or unsupported digest", {"digest": ref})
        if not is_digest and not TAG_RE.fullmatch(ref):
            return self._err(400, "MANIFEST_INVALID", "invalid tag", {"tag": ref})
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return self._err(400, "MANIFEST_INVALID", "manifest is not a JSON object")
        ctype = (rec.headers.get("Content-Type") or "").split(";")[0].strip()
        declared = doc.get("mediaType")
        if declared and ctype and declared != ctype:
            return self._err(
                400,
                "MANIFEST_INVALID",
                "mediaType does not match Content-Type",
                {"mediaType": declared, "contentType": ctype},
            )
        media_type = ctype or declared or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
        digest = compute_digest(body, ref.split(":", 1)[0] if is_digest else "sha256")
        if is_digest and digest != ref:
            return self._err(400, "DIGEST_INVALID", "manifest digest did not match", {"digest": ref})
        if self.check_references:
            missing = self._missing_references(name, doc)
            if missing:
                errors = [
                    {"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": {"digest": d}}
                    for d in missing
                ]
                return Resp(400, json.dumps({"errors": errors}).encode(), [], "application/json")
        self._store_manifest(name, ref, body, doc, media_type, digest)
        headers = [("Location", self._loc(f"/v2/{name}/manifests/{digest}")), ("Docker-Content-Digest", digest)]
        subject = doc.get("subject")
        if self.referrers_api and isinstance(subject, dict) and subject.get("digest"):
            headers.append(("OCI-Subject", str(subject["digest"])))
        return Resp(201, b"", headers)

    def _missing_references(self, name: str, doc: dict[str, Any]) -> list[str]:
        missing: list[str] = []
        if isinstance(doc.get("manifests"), list):
            known = self._manifests.get(name, {})
            for d in doc["manifests"]:
                if isinstance(d, dict) and d.get("digest") not in known:
                    missing.append(str(d.get("digest")))
            return missing
        descriptors = [doc.get("config")] if isinstance(doc.get("config"), dict) else []
        descriptors += [d for d in doc.get("layers") or [] if isinstance(d, dict)]
        links = self._links.get(name, set())
        for d in descriptors:
            if not d.get("urls") and d.get("digest") not in links:
                missing.append(str(d.get("digest")))
        return missing

    def _store_manifest(
        self, name: str, ref: str, raw: bytes, doc: dict[str, Any], media_type: str, digest: str
    ) -> str:
        subject = doc.get("subject") if isinstance(doc.get("subject"), dict) else None
        artifact_type = doc.get("artifactType")
        if not artifact_type and "manifests" not in doc and isinstance(doc.get("config"), dict):
            artifact_type = doc["config"].get("mediaType")
        annotations = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else None
        self._manifests.setdefault(name, {})[digest] = _Manifest(
            raw, media_type, digest, subject.get("digest") if subject else None, artifact_type or None, annotations
        )
        self._tags.setdefault(name, {})
        if ":" not in ref:
            self._tags[name][ref] = digest
        self._repos.add(name)
        return digest

    def _manifest_delete(self, name: str, ref: str) -> Resp:
        if not self.delete_enabled:
            return self._method_not_allowed()
        if name not in self._repos:
            return self._err(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        tags = self._tags.setdefault(name, {})
        if ":" not in ref:
            if ref not in tags:
                return self._err(404, "MANIFEST_UNKNOWN", "manifest unknown", {"reference": ref})
            del tags[ref]
            return Resp(202)
        if self._manifests.get(name, {}).pop(ref, None) is None:
            return self._err(404, "MANIFEST_UNKNOWN", "manifest unknown", {"reference": ref})
        for tag in [t for t, d in tags.items() if d == ref]:
            del tags[tag]
        return Resp(202)

    def _new_upload(self, name: str) -> Resp:
        uuid = secrets.token_hex(16)
        state = secrets.token_urlsafe(12)
        self._uploads[uuid] = _Upload(name, uuid, state, {state})
        headers = [
            ("Location", self._loc(f"/v2/{name}/blobs/uploads/{uuid}?_state={state}")),
            ("Range", "0-0"),
            ("Docker-Upload-UUID", uuid),
        ]
        if self.chunk_min_length:
            headers.append(("OCI-Chunk-Min-Length", str(self.chunk_min_length)))
        return Resp(202, b"", headers)

    def _blob_created(self, name: str, digest: str, data: bytes) -> Resp:
        self._blobs[digest] = bytes(data)
        self._links.setdefault(name, set()).add(digest)
        self._repos.add(name)
        return Resp(
            201, b"", [("Location", self._loc(f"/v2/{name}/blobs/{digest}")), ("Docker-Content-Digest", digest)]
        )

    def _upload_start(self, rec: RecordedRequest, name: str, body: bytes) -> Resp:
        mount, source, digest = rec.param("mount"), rec.param("from"), rec.param("digest")
        if mount is not None:
            if self.mount_mode == "auto" and source and mount in self._links.get(source, set()):
                return self._blob_created(name, mount, self._blobs[mount])
            return self._new_upload(name)
        if digest is not None and self.single_post:
            if not digest_ok(digest):
                return self._err(400, "DIGEST_INVALID", "invalid or unsupported digest", {"digest": digest})
            if compute_digest(body, digest.split(":", 1)[0]) != digest:
                return self._err(
                    400, "DIGEST_INVALID", "provided digest did not match uploaded content", {"digest": digest}
                )
            return self._blob_created(name, digest, body)
        return self._new_upload(name)

    def _upload_resp(self, status: int, up: _Upload, rotate: bool) -> Resp:
        if rotate:
            up.state = secrets.token_urlsafe(12)
            up.issued.add(up.state)
        end = max(len(up.data) - 1, 0)
        headers = [
            ("Location", self._loc(f"/v2/{up.repo}/blobs/uploads/{up.uuid}?_state={up.state}")),
            ("Range", f"0-{end}"),
            ("Docker-Upload-UUID", up.uuid),
        ]
        return Resp(status, b"", headers)

    def _upload_op(self, rec: RecordedRequest, name: str, uuid: str, body: bytes) -> Resp:
        up = self._uploads.get(uuid)
        state = rec.param("_state")
        lenient = rec.method in ("GET", "HEAD", "DELETE")
        if up is None or up.repo != name or (state != up.state and not (lenient and state in up.issued)):
            return self._err(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": uuid})
        if rec.method in ("GET", "HEAD"):
            return self._upload_resp(204, up, rotate=False)
        if rec.method == "DELETE":
            del self._uploads[uuid]
            return Resp(204)
        if rec.method == "PATCH":
            return self._patch(rec, up, body)
        if rec.method == "PUT":
            return self._put(rec, up, body)
        return self._method_not_allowed()

    def _range_invalid(self, up: _Upload, message: str) -> Resp:
        # The spec's 416 carries the Range held and the Location to continue at: a new one after a lost
        # chunk, so a test can tell whether the client took it.
        resp = self._upload_resp(416, up, rotate=up.lost_chunk)
        up.lost_chunk = False
        resp.body, resp.content_type = oci_error("RANGE_INVALID", message, {"size": len(up.data)}), "application/json"
        return resp

    def _check_chunk(self, rec: RecordedRequest, up: _Upload, body: bytes) -> Resp | None:
        content_range = rec.headers.get("Content-Range")
        if content_range is None:
            return None
        m = re.fullmatch(r"(\d+)-(\d+)", content_range.strip())
        if not m:
            return self._range_invalid(up, f"malformed Content-Range {content_range!r}")
        start, end = int(m.group(1)), int(m.group(2))
        if start != len(up.data):
            return self._range_invalid(up, f"chunk starts at {start}, expected {len(up.data)}")
        if end - start + 1 != len(body):
            return self._err(
                400,
                "SIZE_INVALID",
                "Content-Range does not match the chunk length",
                {"range": content_range, "length": len(body)},
            )
        return None

    def _patch(self, rec: RecordedRequest, up: _Upload, body: bytes) -> Resp:
        bad = self._check_chunk(rec, up, body)
        if bad is not None:
            return bad
        if up.short_chunk and body:
            return self._range_invalid(
                up, f"previous chunk was shorter than OCI-Chunk-Min-Length {self.chunk_min_length}"
            )
        if body and self._chunks_to_pass:
            self._chunks_to_pass -= 1
        elif body and self._chunks_to_lose:
            self._chunks_to_lose -= 1
            up.lost_chunk = True
            resp = self._upload_resp(202, up, rotate=True)
            resp.headers = [(k, f"0-{len(up.data) + len(body) - 1}" if k == "Range" else v) for k, v in resp.headers]
            return resp
        up.data += body
        if self.chunk_min_length and len(body) < self.chunk_min_length:
            up.short_chunk = True
        return self._upload_resp(202, up, rotate=True)

    def _put(self, rec: RecordedRequest, up: _Upload, body: bytes) -> Resp:
        digest = rec.param("digest")
        if not digest or not digest_ok(digest):
            return self._err(400, "DIGEST_INVALID", "missing, invalid or unsupported digest", {"digest": digest})
        if body:
            bad = self._check_chunk(rec, up, body)
            if bad is not None:
                return bad
        data = bytes(up.data) + body
        if compute_digest(data, digest.split(":", 1)[0]) != digest:
            return self._err(
                400, "DIGEST_INVALID", "provided digest did not match uploaded content", {"digest": digest}
            )
        del self._uploads[up.uuid]
        return self._blob_created(up.repo, digest, data)

    def _partial_body(self, rec: RecordedRequest, body: bytes) -> None:
        """Keep the bytes of an interrupted PATCH, as a streaming registry would."""
        m = re.fullmatch(r"/v2/(.+)/blobs/uploads/([^/]+)", rec.path)
        if rec.method != "PATCH" or not m:
            return
        up = self._uploads.get(m.group(2))
        if up is None or rec.param("_state") != up.state:
            return
        content_range = rec.headers.get("Content-Range")
        if content_range and not content_range.strip().startswith(f"{len(up.data)}-"):
            return
        up.data += body
        up.state = secrets.token_urlsafe(12)
        up.issued.add(up.state)


def _tag_key(tag: str) -> tuple[str, str]:
    return (tag.lower(), tag)


def _accepts(accept: str | None, media_type: str) -> bool:
    if not accept or not accept.strip():
        return True
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    major = media_type.split("/")[0].lower()
    return bool({media_type.lower(), "*/*", f"{major}/*"} & types)


class BlobMirror(ServerBase):
    """Stand-in for blob storage/CDN: serves a FakeRegistry's blobs at ``/blobs/<digest>`` and logs headers.

    Binds 127.0.0.2 (a different host from the registry) when possible, else 127.0.0.1.
    """

    def __init__(
        self, registry: FakeRegistry, host: str = "127.0.0.2", port: int = 0, require_sig: bool = True
    ) -> None:
        self.registry = registry
        self.require_sig = require_sig
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        try:
            super().__init__(host, port)
        except OSError:
            super().__init__("127.0.0.1", 0)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Serve one blob request."""
        rec = parse_request(handler)
        body, complete = read_body(handler)
        rec.body_length = len(body)
        with self._lock:
            self.requests.append(rec)
        if not complete:
            handler.close_connection = True
            return
        m = re.fullmatch(r"/blobs/([^/]+)", rec.path)
        data = self.registry.get_blob(m.group(1)) if m else None
        if rec.method not in ("GET", "HEAD"):
            resp = Resp(405, b"method not allowed\n", [], "text/plain")
        elif self.require_sig and rec.param("sig") is None:
            resp = Resp(403, b"<Error><Code>AccessDenied</Code></Error>", [], "application/xml")
        elif data is None:
            resp = Resp(404, b"<Error><Code>NoSuchKey</Code></Error>", [], "application/xml")
        else:
            resp = range_response(data, rec.headers.get("Range"), [], "application/octet-stream")
        send_response(handler, resp)
