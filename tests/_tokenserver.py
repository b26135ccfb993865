"""A small Docker-registry token server (GET token flow + OAuth2 POST) for tests."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from ocinb.testing import TokenAuthSettings

logger = logging.getLogger(__name__)

GrantFunc = Callable[[str | None, str, str, list[str]], list[str]]
KeyMode = Literal["kid", "x5c", "jwk"]
TokenField = Literal["both", "token", "access_token"]


def b64url(data: bytes) -> str:
    """URL-safe base64 without padding (JOSE encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64url(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """Key ID in docker/libtrust format: base32 of the first 240 bits of sha256(DER SPKI), in groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """Split `type:name:action,action` (the name may contain ':' for a port); None if malformed."""
    head, sep, actions = scope.rpartition(":")
    if not sep:
        return None
    rtype, sep, name = head.partition(":")
    if not sep or not rtype or not name:
        return None
    return rtype, name, [a for a in actions.split(",") if a]


@dataclass
class RecordedRequest:
    """One request received by the token server."""

    method: str
    path: str
    query: list[tuple[str, str]]
    basic_auth: bool
    username: str | None
    grant_type: str | None
    scopes: list[str]
    form: dict[str, str] = field(default_factory=dict)
    status: int = 0


class TokenServer:
    """Docker registry token server on 127.0.0.1 (signs RS256 JWTs that distribution 2.8 trusts).

    `clock_skew` shifts iat/nbf/exp (seconds): distribution allows 60 s of leeway on exp/nbf, so a
    token only expires for the registry when `clock_skew + expires_in < -60`.
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        restrictions: dict[str, list[str]] | None = None,
        grant: GrantFunc | None = None,
        anonymous_pull: bool = False,
        expires_in: int = 300,
        clock_skew: int = 0,
        token_field: TokenField = "both",
        post_supported: bool = True,
        key_mode: KeyMode = "kid",
        service: str = "ocinb-test",
        issuer: str = "ocinb-test-issuer",
        cert_dir: str | Path | None = None,
        rotate_refresh_tokens: bool = False,
    ) -> None:
        """``rotate_refresh_tokens``: each refresh-token grant answers a new refresh token, and the one
        presented stops working (OAuth2 refresh-token rotation)."""
        self.users = dict(users or {})
        self.restrictions = dict(restrictions or {})
        self.grant_func = grant
        self.anonymous_pull = anonymous_pull
        self.expires_in = expires_in
        self.clock_skew = clock_skew
        self.token_field = token_field
        self.post_supported = post_supported
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.key_mode = key_mode
        self.service = service
        self.issuer = issuer
        self.requests: list[RecordedRequest] = []
        self.issued: list[dict[str, Any]] = []
        self.refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._own_dir = cert_dir is None
        self._dir = Path(cert_dir) if cert_dir is not None else Path(tempfile.mkdtemp(prefix="ocinb-tokensrv-"))
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._cert = self._self_signed_cert()
        self.cert_path = self._dir / "token-root.pem"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.key_id = libtrust_key_id(self._key.public_key())
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _self_signed_cert(self) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocinb test token signer")])
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )

    @property
    def port(self) -> int:
        """Port the server listens on."""
        assert self._httpd is not None, "token server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        """Token endpoint URL (the `realm` of the registry's Bearer challenge)."""
        return f"{self.url}/token"

    def settings(self, service: str | None = None, issuer: str | None = None) -> TokenAuthSettings:
        """Registry `auth.token` settings trusting this server (also sets the issuer used in tokens)."""
        if service is not None:
            self.service = service
        if issuer is not None:
            self.issuer = issuer
        return TokenAuthSettings(
            realm=self.realm, service=self.service, issuer=self.issuer, rootcertbundle=self.cert_path
        )

    def start(self) -> TokenServer:
        """Serve in a daemon thread on 127.0.0.1 with an OS-chosen port."""
        if self._httpd is not None:
            return self
        server = self

        class Handler(_Handler):
            token_server = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="ocinb-token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and remove its temp dir."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_dir:
            for p in self._dir.iterdir():
                p.unlink(missing_ok=True)
            self._dir.rmdir()
            self._own_dir = False

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def clear(self) -> None:
        """Forget recorded requests and issued tokens."""
        with self._lock:
            self.requests.clear()
            self.issued.clear()

    def authenticate(self, username: str | None, password: str | None) -> bool:
        """True when the credentials match a configured user."""
        return (
            username is not None
            and username in self.users
            and secrets.compare_digest(self.users[username].encode(), (password or "").encode())
        )

    def allowed_actions(self, user: str | None, rtype: str, name: str, actions: list[str]) -> list[str]:
        """Actions granted to `user` (None = anonymous) out of those requested."""
        if self.grant_func is not None:
            granted = self.grant_func(user, rtype, name, list(actions))
        elif user is None:
            granted = ["pull"] if self.anonymous_pull and rtype == "repository" else []
        elif user in self.restrictions:
            granted = self.restrictions[user]
        else:
            granted = list(actions)
        return [a for a in actions if a in granted or (a != "*" and "*" in granted)]

    def make_token(self, user: str | None, scopes: list[str], service: str | None = None) -> tuple[str, list[dict]]:
        """Sign a JWT for `user` granting the allowed subset of `scopes`; return (token, access)."""
        access: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            rtype, name, actions = parsed
            granted = self.allowed_actions(user, rtype, name, actions)
            access.append({"type": rtype, "name": name, "actions": granted})
        now = int(time.time()) + self.clock_skew
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": service or self.service,
            "exp": now + self.expires_in,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "access": access,
        }
        return self.sign(claims), access

    def sign(self, claims: dict[str, Any]) -> str:
        """Encode and RS256-sign `claims` with a header the registry can trust (per `key_mode`)."""
        header: dict[str, Any] = {"typ": "JWT", "alg": "RS256"}
        if self.key_mode == "kid":
            header["kid"] = self.key_id
        elif self.key_mode == "x5c":
            header["x5c"] = [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]
        else:
            numbers = self._key.public_key().public_numbers()
            header["jwk"] = {
                "kty": "RSA",
                "kid": self.key_id,
                "n": _int_b64url(numbers.n),
                "e": _int_b64url(numbers.e),
            }
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def token_response(self, token: str, access: list[dict], refresh_token: str | None) -> dict[str, Any]:
        """Build the JSON body for a successful token request."""
        body: dict[str, Any] = {}
        if self.token_field in ("both", "token"):
            body["token"] = token
        if self.token_field in ("both", "access_token"):
            body["access_token"] = token
        body["expires_in"] = self.expires_in
        body["issued_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body["scope"] = " ".join(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access if a["actions"])
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body

    def new_refresh_token(self, user: str) -> str:
        """Create and remember a refresh token for `user`."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.refresh_tokens[token] = user
        return token

    def record_issued(self, entry: dict[str, Any]) -> None:
        """Remember an issued token (thread-safe)."""
        with self._lock:
            self.issued.append(entry)

    def record(self, req: RecordedRequest) -> None:
        """Append a request record (thread-safe)."""
        with self._lock:
            self.requests.append(req)


def _split_scopes(values: list[str]) -> list[str]:
    return [s for v in values for s in v.split(" ") if s]


class _Handler(BaseHTTPRequestHandler):
    token_server: TokenServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("token server: " + format, *args)

    def _basic(self) -> tuple[str | None, str | None, bool]:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None, None, False
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None, True
        return user, password, True

    def _send_json(self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, rec: RecordedRequest, status: int, error: str, description: str) -> None:
        rec.status = status
        extra = {"WWW-Authenticate": 'Basic realm="ocinb-token-server"'} if status == 401 else None
        self._send_json(
            status,
            {
                "error": error,
                "error_description": description,
                "errors": [{"code": "UNAUTHORIZED", "message": description}],
            },
            extra,
        )

    def do_GET(self) -> None:
        ts = self.token_server
        url = urlsplit(self.path)
        query = parse_qsl(url.query, keep_blank_values=True)
        user, password, has_basic = self._basic()
        scopes = _split_scopes([v for k, v in query if k == "scope"])
        rec = RecordedRequest("GET", url.path, query, has_basic, user, None, scopes)
        ts.record(rec)
        if url.path != "/token":
            self._error(rec, 404, "not_found", "unknown path")
            return
        if has_basic and not ts.authenticate(user, password):
            self._error(rec, 401, "invalid_grant", "invalid username or password")
            return
        service = dict(query).get("service")
        token, access = ts.make_token(user if has_basic else None, scopes, service)
        offline = dict(query).get("offline_token", "").lower() == "true"
        refresh = ts.new_refresh_token(user) if offline and has_basic and user else None
        rec.status = 200
        ts.record_issued({"user": rec.username, "access": access, "token": token})
        self._send_json(200, ts.token_response(token, access, refresh))

    def do_POST(self) -> None:
        ts = self.token_server
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode(errors="replace") if length else ""
        form = dict(parse_qsl(raw, keep_blank_values=True))
        _, _, has_basic = self._basic()
        grant_type = form.get("grant_type")
        scopes = _split_scopes([v for k, v in parse_qsl(raw) if k == "scope"])
        user = form.get("username")
        rec = RecordedRequest(
            "POST",
            url.path,
            parse_qsl(url.query),
            has_basic,
            user,
            grant_type,
            scopes,
            form={k: ("***" if k in ("password", "refresh_token") else v) for k, v in form.items()},
        )
        ts.record(rec)
        if url.path != "/token" or not ts.post_supported:
            self._error(rec, 404, "not_found", "POST is not supported by this token server")
            return
        if grant_type == "password":
            if not ts.authenticate(user, form.get("password")):
                self._error(rec, 401, "invalid_grant", "invalid username or password")
                return
            assert user is not None
            refresh = ts.new_refresh_token(user)
        elif grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            with ts._lock:
                user = ts.refresh_tokens.get(refresh)
                if user is not None and ts.rotate_refresh_tokens:
                    del ts.refresh_tokens[refresh]  # used once: the answer carries its successor
            if user is None:
                self._error(rec, 401, "invalid_grant", "unknown refresh token")
                return
            rec.username = user
            if ts.rotate_refresh_tokens:
                refresh = ts.new_refresh_token(user)
        else:
            self._error(rec, 400, "unsupported_grant_type", f"unsupported grant_type {grant_type!r}")
            return
        token, access = ts.make_token(user, scopes, form.get("service"))
        rec.status = 200
        ts.record_issued({"user": user, "access": access, "token": token})
        self._send_json(200, ts.token_response(token, access, refresh))
