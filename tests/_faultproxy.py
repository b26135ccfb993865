"""HTTP/1.1 forwarding proxy that injects transport faults (cuts, flipped bytes, Range quirks); stdlib only."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Literal
from urllib.parse import urlsplit

from _fakeregistry import (
    RecordedRequest,
    Resp,
    ServerBase,
    abort_connection,
    iter_chunked,
    parse_request,
    read_body,
    send_response,
)

FaultKind = Literal["cut_response", "cut_request", "flip_byte", "status"]
Match = Callable[[str, str], bool]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}
_STATUS_CODES = {429: "TOOMANYREQUESTS", 503: "UNAVAILABLE", 401: "UNAUTHORIZED", 404: "NAME_UNKNOWN"}


@dataclass
class Fault:
    """One fault to apply to one request.

    ``n`` is a byte count (cuts) or body offset (flip); ``fraction`` (0..1) instead scales it by the body length.
    """

    kind: FaultKind
    n: int = 0
    fraction: float | None = None
    mask: int = 0xFF
    status: int = 0
    body: bytes | str | None = None
    headers: dict[str, str] | None = None
    retry_after: int | float | str | None = None
    forward_partial: bool = False


@dataclass
class _Queued:
    fault: Fault
    match: Match | None
    remaining: int | None


class FaultProxy(ServerBase):
    """Forwarding proxy in front of ``upstream_url`` that injects faults from a queue, a rule or seeded chaos."""

    def __init__(
        self,
        upstream_url: str,
        *,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        range_mode: Literal["pass", "refuse", "ignore"] = "pass",
        timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported upstream URL {upstream_url!r}")
        self.upstream_url = f"{parts.scheme}://{parts.netloc}"
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._up_host = parts.hostname
        self._up_port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl_context = ssl_context
        self.timeout = timeout
        self.range_mode = range_mode
        self.random = random.Random(seed)
        self.rule: Callable[[RecordedRequest], Fault | None] | None = None
        self.requests: list[RecordedRequest] = []
        self.fired: list[tuple[RecordedRequest, Fault]] = []
        self._lock = threading.RLock()
        self._queue: list[_Queued] = []
        self._chaos: tuple[float, tuple[FaultKind, ...], Match | None] | None = None
        self._upstreams: dict[int, http.client.HTTPConnection] = {}
        super().__init__(host, port)


    def add_fault(self, fault: Fault, match: Match | None = None, once: bool = True, times: int | None = None) -> None:
        """Queue ``fault`` for requests where ``match(method, path)`` holds; fires once, ``times`` times, or forever."""
        remaining = times if times is not None else (1 if once else None)
        with self._lock:
            self._queue.append(_Queued(fault, match, remaining))

    def cut_response_after(
        self, n_bytes: int, match: Match | None = None, once: bool = True, times: int | None = None
    ) -> None:
        """Send the headers and first ``n_bytes`` of the response body, then close the socket abruptly."""
        self.add_fault(Fault("cut_response", n_bytes), match, once, times)

    def cut_request_after(
        self,
        n_bytes: int,
        match: Match | None = None,
        once: bool = True,
        times: int | None = None,
        forward_partial: bool = False,
    ) -> None:
        """Read ``n_bytes`` of the request body, then close without answering (optionally forwarding them first)."""
        self.add_fault(Fault("cut_request", n_bytes, forward_partial=forward_partial), match, once, times)

    def flip_byte(
        self, offset: int, match: Match | None = None, once: bool = True, times: int | None = None, mask: int = 0xFF
    ) -> None:
        """XOR the response body byte at ``offset`` with ``mask``."""
        self.add_fault(Fault("flip_byte", offset, mask=mask), match, once, times)

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: int | float | str | None = None,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        match: Match | None = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` without contacting upstream."""
        fault = Fault("status", status=status, body=body, headers=headers, retry_after=retry_after)
        self.add_fault(fault, match, times=n)

    def chaos(self, rate: float, kinds: tuple[FaultKind, ...] = ("cut_response",), match: Match | None = None) -> None:
        """With probability ``rate`` (seeded ``self.random``) apply a random fault of ``kinds`` at a random point."""
        with self._lock:
            self._chaos = (rate, kinds, match) if rate > 0 else None

    def clear_faults(self) -> None:
        """Drop queued faults, the rule and chaos."""
        with self._lock:
            self._queue.clear()
            self._chaos = None
            self.rule = None

    def pending_faults(self) -> int:
        """Number of queued faults not yet consumed."""
        with self._lock:
            return len(self._queue)

    def reset_log(self) -> None:
        """Clear the request log and the list of fired faults."""
        super().reset_log()
        with self._lock:
            self.fired.clear()

    def _select(self, rec: RecordedRequest) -> Fault | None:
        with self._lock:
            fault = self.rule(rec) if self.rule is not None else None
            if fault is None:
                for queued in self._queue:
                    if queued.match is None or queued.match(rec.method, rec.path):
                        fault = queued.fault
                        if queued.remaining is not None:
                            queued.remaining -= 1
                            if queued.remaining <= 0:
                                self._queue.remove(queued)
                        break
            if fault is None and self._chaos is not None:
                rate, kinds, match = self._chaos
                if (match is None or match(rec.method, rec.path)) and self.random.random() < rate:
                    fault = Fault(self.random.choice(kinds), fraction=self.random.random())
            if fault is not None:
                self.fired.append((rec, fault))
            return fault


    def _connect(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(
                self._up_host, self._up_port, timeout=self.timeout, context=self._ssl_context
            )
        return http.client.HTTPConnection(self._up_host, self._up_port, timeout=self.timeout)

    def _upstream(self, handler: BaseHTTPRequestHandler, fresh: bool = False) -> http.client.HTTPConnection:
        key = id(handler)
        with self._lock:
            conn = self._upstreams.get(key)
            if conn is not None and fresh:
                conn.close()
                conn = None
            if conn is None:
                conn = self._upstreams[key] = self._connect()
            return conn

    def _drop_upstream(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            conn = self._upstreams.pop(id(handler), None)
        if conn is not None:
            conn.close()

    def connection_closed(self, handler: BaseHTTPRequestHandler) -> None:
        """Close the upstream connection paired with a finished client connection."""
        self._drop_upstream(handler)

    def stop(self) -> None:
        """Stop serving and close upstream connections."""
        super().stop()
        with self._lock:
            conns = list(self._upstreams.values())
            self._upstreams.clear()
        for conn in conns:
            conn.close()


    def _rewrite(self, value: str) -> str:
        return value.replace(self.upstream_url, self.url)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Forward one request upstream, applying at most one fault."""
        rec = parse_request(handler)
        with self._lock:
            self.requests.append(rec)
        fault = self._select(rec)
        chunked_in = "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower()
        length_in = int(handler.headers.get("Content-Length") or 0) if not chunked_in else 0

        if fault is not None and fault.kind == "status":
            body, complete = read_body(handler)
            rec.body_length = len(body)
            if not complete:
                abort_connection(handler)
                return
            send_response(handler, self._status_response(fault))
            return
        if self.range_mode == "refuse" and "range" in rec.headers:
            body, complete = read_body(handler)
            rec.body_length = len(body)
            if not complete:
                abort_connection(handler)
                return
            send_response(handler, Resp(416, b"", [("Content-Range", "bytes */*")]))
            return

        headers = [
            (k, v)
            for k, v in handler.headers.items()
            if k.lower() not in _HOP_BY_HOP
            and k.lower() != "host"
            and not (self.range_mode == "ignore" and k.lower() == "range")
        ]
        body_iter = self._body_chunks(handler, chunked_in, length_in)
        has_body = chunked_in or "content-length" in rec.headers
        limit = fault.n if fault is not None and fault.kind == "cut_request" else None

        if limit is not None and fault is not None:
            self._cut_request(handler, rec, fault, headers, body_iter, chunked_in, limit)
            return

        resp = self._forward(handler, rec, headers, body_iter, chunked_in, has_body)
        if resp is None:
            return
        self._relay(handler, rec, resp, fault)

    def _status_response(self, fault: Fault) -> Resp:
        headers = list((fault.headers or {}).items())
        if fault.retry_after is not None:
            headers.append(("Retry-After", str(fault.retry_after)))
        if fault.body is None:
            code = _STATUS_CODES.get(fault.status, "UNKNOWN")
            body = json.dumps({"errors": [{"code": code, "message": f"injected {fault.status}"}]}).encode()
            return Resp(fault.status, body, headers, "application/json")
        body = fault.body.encode() if isinstance(fault.body, str) else fault.body
        ctype = None if any(k.lower() == "content-type" for k, _ in headers) else "text/plain"
        return Resp(fault.status, body, headers, ctype)

    @staticmethod
    def _body_chunks(handler: BaseHTTPRequestHandler, chunked: bool, length: int) -> Iterator[bytes]:
        if chunked:
            yield from iter_chunked(handler.rfile)
            return
        left = length
        while left > 0:
            piece = handler.rfile.read(min(left, 65536))
            if not piece:
                raise EOFError("client closed mid-body")
            left -= len(piece)
            yield piece

    def _send_head(
        self, conn: http.client.HTTPConnection, rec: RecordedRequest, headers: list[tuple[str, str]], chunked: bool
    ) -> None:
        conn.putrequest(rec.method, rec.target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", self._netloc)
        for key, value in headers:
            conn.putheader(key, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()

    def _cut_request(
        self,
        handler: BaseHTTPRequestHandler,
        rec: RecordedRequest,
        fault: Fault,
        headers: list[tuple[str, str]],
        body_iter: Iterator[bytes],
        chunked: bool,
        limit: int,
    ) -> None:
        got = bytearray()
        with contextlib.suppress(EOFError, OSError):
            for piece in body_iter:
                got += piece
                if len(got) >= limit:
                    break
        del got[limit:]
        rec.body_length = len(got)
        if fault.forward_partial:
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = self._upstream(handler, fresh=True)
                self._send_head(conn, rec, headers, chunked)
                if got:
                    conn.send(b"%x\r\n%s\r\n" % (len(got), bytes(got)) if chunked else bytes(got))
        self._drop_upstream(handler)
        abort_connection(handler)

    def _forward(
        self,
        handler: BaseHTTPRequestHandler,
        rec: RecordedRequest,
        headers: list[tuple[str, str]],
        body_iter: Iterator[bytes],
        chunked: bool,
        has_body: bool,
    ) -> http.client.HTTPResponse | None:
        attempts = 1 if has_body else 2
        for attempt in range(attempts):
            conn = self._upstream(handler, fresh=attempt > 0)
            sent = 0
            try:
                self._send_head(conn, rec, headers, chunked)
                for piece in body_iter:
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    sent += len(piece)
                if chunked:
                    conn.send(b"0\r\n\r\n")
                rec.body_length = sent
                return conn.getresponse()
            except EOFError:
                rec.body_length = sent
                self._drop_upstream(handler)
                abort_connection(handler)
                return None
            except (OSError, http.client.HTTPException) as exc:
                self._drop_upstream(handler)
                if attempt + 1 < attempts:
                    continue
                msg = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": f"proxy: upstream failed: {exc}"}]})
                handler.close_connection = True
                with contextlib.suppress(EOFError, OSError):
                    for _ in body_iter:
                        pass
                send_response(handler, Resp(502, msg.encode(), [("Connection", "close")], "application/json"))
                return None
        return None

    def _relay(
        self, handler: BaseHTTPRequestHandler, rec: RecordedRequest, resp: http.client.HTTPResponse, fault: Fault | None
    ) -> None:
        handler.send_response(resp.status, resp.reason)
        length: int | None = None
        for key, value in resp.getheaders():
            low = key.lower()
            if low in _HOP_BY_HOP or low in ("server", "date"):
                continue
            if low == "content-length":
                length = int(value)
            if low in ("location", "content-location", "link", "www-authenticate"):
                value = self._rewrite(value)
            handler.send_header(key, value)
        no_body = rec.method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        if no_body:
            handler.end_headers()
            resp.read()
            if resp.will_close:
                self._drop_upstream(handler)
            return
        chunked_out = length is None
        if chunked_out:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        cut: int | None = None
        flip: int | None = None
        if fault is not None and fault.kind in ("cut_response", "flip_byte"):
            point = fault.n
            if fault.fraction is not None and length:
                point = int(fault.fraction * length)
            if fault.kind == "cut_response":
                cut = point
            else:
                flip = point
        pos = 0
        try:
            while True:
                piece = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                if not piece:
                    break
                if flip is not None and pos <= flip < pos + len(piece):
                    i = flip - pos
                    piece = piece[:i] + bytes([piece[i] ^ fault.mask]) + piece[i + 1 :]  # type: ignore[union-attr]
                if cut is not None and pos + len(piece) >= cut:
                    piece = piece[: cut - pos]
                    self._write(handler, piece, chunked_out)
                    self._drop_upstream(handler)
                    abort_connection(handler)
                    return
                self._write(handler, piece, chunked_out)
                pos += len(piece)
        except (OSError, http.client.HTTPException):
            self._drop_upstream(handler)
            abort_connection(handler)
            return
        if chunked_out:
            handler.wfile.write(b"0\r\n\r\n")
        resp.close()
        if resp.will_close:
            self._drop_upstream(handler)

    @staticmethod
    def _write(handler: BaseHTTPRequestHandler, piece: bytes, chunked: bool) -> None:
        if not piece:
            return
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)


__all__ = ["Fault", "FaultProxy"]
