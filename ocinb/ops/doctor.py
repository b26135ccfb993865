"""The registry doctor: what one registry supports, checked capability by capability, as :class:`DoctorCheck` rows.

Each check is a small function named after what it checks; it sends what it needs through the registry's
:class:`HttpCore` (so auth, retries and redaction are the client's own), records what it learns in the
:class:`RegistryState` the client shares, and says what it saw (``evidence``) and what to do (``advice``).
Read-only unless a scratch repository is given: then uploads, mount, deletes and ``OCI-Subject`` are tried,
and everything pushed is deleted again (:func:`cleanup`). Results: see :data:`RESULTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import ssl
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from .. import media_types as mt
from .._http.auth import CATALOG_SCOPE
from .._http.headers import next_link
from .._http.transport import HttpCore, Reply
from ..endpoints._base import RegistryState
from ..endpoints.manifests import ACCEPT
from ..endpoints.repository import RepositoryEndpoints
from ..endpoints.uploads import UploadSession
from ..errors import OcinbError, RegistryError, TransportError, redact_url
from ..manifest import Manifest
from ..models import Descriptor
from ..reference import fallback_tag, is_fallback_tag, is_local_host

__all__ = ["RESULTS", "Diagnosis", "DoctorCheck", "diagnose"]

RESULTS: dict[str, str] = {
    "pass": "works as the OCI distribution spec says",
    "warn": "a gap or quirk: clients cope (ocinb does), but some tools trip on it",
    "fail": "broken: requests will fail (unreachable, TLS invalid, a wrong digest, credentials refused)",
    "info": "a fact about the registry, no judgement",
    "skip": "not checked: needs a repository, write=, or an earlier check that did not succeed",
}
"""The results a check can have, and what each means."""

ANY_STATUS = tuple(range(200, 600))
"""Every status: the doctor wants to see the answer, not an exception."""
PROBE_ARTIFACT = "application/vnd.ocinb.doctor.probe.v1"
"""The ``artifactType`` the doctor filters referrers by and gives the referrer it pushes."""
ACCEPT_SCAN = 20
"""How many tags the Accept check HEADs looking for an OCI index and a Docker manifest list."""
TLS_TIMEOUT = 15.0
EXPIRY_WARN_DAYS = 14
MAX_CHUNK = 16 * 1024 * 1024
"""The largest chunk the write checks send, whatever ``OCI-Chunk-Min-Length`` asks (bounds what they push)."""


@dataclass(frozen=True)
class DoctorCheck:
    """One row of the report: what was checked, the result (a key of :data:`RESULTS`), what was seen, what to do."""

    check: str
    result: str
    evidence: str
    advice: str = ""

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise ValueError(f"a check's result is one of {sorted(RESULTS)}, not {self.result!r}")


@dataclass
class Diagnosis:
    """What :func:`diagnose` found: the checks in order, and what the write checks pushed and left behind."""

    registry: str
    base_url: str
    repository: str | None
    checks: list[DoctorCheck] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    """Everything the write checks created, as ``repo@digest`` (manifests and blobs) and ``repo:tag``."""
    left: list[str] = field(default_factory=list)
    """What cleanup could not remove (empty when the registry is as it was)."""

    @property
    def failed(self) -> bool:
        return any(c.result == "fail" for c in self.checks)


@dataclass
class _Probe:
    """The doctor's working state: the registry, the repositories in play, and what earlier checks found."""

    core: HttpCore
    state: RegistryState
    registry: str
    repo: RepositoryEndpoints | None
    scratch: RepositoryEndpoints | None
    verify: bool | str | ssl.SSLContext
    anonymous: HttpCore | None
    out: Diagnosis
    reachable: bool = False
    authorized: bool = False
    repo_tags: list[str] = field(default_factory=list)
    sample: Manifest | None = None
    image: Manifest | None = None
    ping_ms: list[float] = field(default_factory=list)
    config_blob: bytes | None = None
    layer_blob: bytes | None = None
    blobs: list[tuple[str, str]] = field(default_factory=list)
    """(repository, digest) of every blob the write checks created (deleted by :func:`cleanup`)."""
    manifests: list[tuple[str, str]] = field(default_factory=list)
    """(repository, digest) of every manifest the write checks pushed."""
    tags: list[tuple[str, str]] = field(default_factory=list)
    """(repository, tag) the write checks pushed."""
    undeleted: list[tuple[str, str]] = field(default_factory=list)
    """Manifests pushed and not deleted yet."""
    sessions: list[tuple[RepositoryEndpoints, UploadSession]] = field(default_factory=list)

    def add(self, check: str, result: str, evidence: str, advice: str = "") -> None:
        self.out.checks.append(DoctorCheck(check, result, evidence, advice))

    def endpoints(self, name: str) -> RepositoryEndpoints:
        return RepositoryEndpoints(self.core, name, registry=self.registry, state=self.state)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _describe(exc: BaseException) -> str:
    """One line about an error (registry errors carry redacted URLs already)."""
    return " ".join(str(exc).split())[:400] or type(exc).__name__


def _codes(reply: Reply) -> str:
    """The OCI error codes of an error answer, for evidence (``DIGEST_INVALID``), or ``""``."""
    try:
        doc = json.loads(reply.content)
    except (ValueError, RecursionError):
        return ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return ""
    return ", ".join(str(e.get("code")) for e in errors if isinstance(e, dict))[:200]


def _status(reply: Reply) -> str:
    codes = _codes(reply) if reply.status >= 400 else ""
    return f"{reply.status}" + (f" {codes}" if codes else "")


def _json_list(reply: Reply, key: str) -> list[str] | None:
    try:
        doc = json.loads(reply.content)
    except (ValueError, RecursionError):
        return None
    values = doc.get(key) if isinstance(doc, dict) else None
    if values is None and isinstance(doc, dict):
        return []
    return [str(v) for v in values] if isinstance(values, list) else None


def _origin(url: str) -> str:
    """Scheme and host of a URL, never its path or query (signed storage URLs carry secrets there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


async def api_version(p: _Probe) -> None:
    """``GET /v2/`` answers, and with which ``Docker-Distribution-API-Version``."""
    start = time.perf_counter()
    try:
        reply = await p.core.request("GET", "/v2/", expect=ANY_STATUS)
    except TransportError as exc:
        p.add("api_version", "fail", f"GET /v2/ did not answer: {_describe(exc)}",
              "check the host and port, the scheme (insecure= for plain HTTP), proxies and the certificate")
        return
    p.ping_ms.append((time.perf_counter() - start) * 1000)
    p.reachable = True
    version = reply.headers.get("docker-distribution-api-version")
    if reply.status == 200:
        p.authorized = True
        p.state.api_version = version or ""
        if version == "registry/2.0":
            p.add("api_version", "pass", "GET /v2/ → 200, Docker-Distribution-API-Version: registry/2.0")
        else:
            p.add("api_version", "warn", f"GET /v2/ → 200, Docker-Distribution-API-Version: {version or 'absent'}",
                  "OCI makes the header optional, but Docker clients check for registry/2.0")
    elif reply.status == 401:
        if p.core.anonymous:
            p.add("api_version", "warn", f"GET /v2/ → 401 {_codes(reply)}: the registry needs credentials",
                  "pass username=/password= (or log in with docker) to check the rest")
        else:
            p.add("api_version", "fail", f"GET /v2/ → 401 {_codes(reply)}: the credentials were refused",
                  "check the user name and password or token")
    elif reply.status == 404:
        p.add("api_version", "fail", "GET /v2/ → 404: no OCI distribution API at this address",
              "check the host, port and any path prefix a proxy needs")
    else:
        p.add("api_version", "fail", f"GET /v2/ → {_status(reply)}", "the registry is not answering as it should")


def _tls_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """The verifying context the client itself would use for ``verify`` (certifi's CAs by default)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if verify is True:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


@dataclass(frozen=True)
class _Peer:
    version: str | None
    cipher: str | None
    cert: dict[str, object]
    der: bytes | None


async def _handshake(host: str, port: int, ctx: ssl.SSLContext) -> _Peer:
    """One TLS handshake with the registry, nothing sent over it."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), TLS_TIMEOUT)
    try:
        obj = writer.get_extra_info("ssl_object")
        cipher = obj.cipher() if obj is not None else None
        return _Peer(obj.version() if obj is not None else None, cipher[0] if cipher else None,
                     dict(obj.getpeercert() or {}) if obj is not None else {},
                     obj.getpeercert(binary_form=True) if obj is not None else None)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def _der(data: bytes, pos: int) -> tuple[int, int, int]:
    """One DER element at ``pos``: (tag, start of content, end of content)."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _asn1_time(tag: int, raw: bytes) -> datetime:
    text = raw.decode("ascii")
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def certificate_facts(der: bytes) -> tuple[datetime, datetime, bool] | None:
    """(not before, not after, self-issued) of a DER certificate, read without verifying it; ``None`` if unreadable.

    A certificate that failed verification is not decoded by :mod:`ssl`; its validity is what the report needs.
    """
    try:
        _, cert, _ = _der(der, 0)
        _, pos, _ = _der(der, cert)  # TBSCertificate
        tag, _, end = _der(der, pos)
        if tag == 0xA0:  # [0] version
            pos = end
        _, _, pos = _der(der, pos)  # serial number
        _, _, pos = _der(der, pos)  # signature algorithm
        _, issuer_start, issuer_end = _der(der, pos)
        _, validity, pos = _der(der, issuer_end)
        _, subject_start, subject_end = _der(der, pos)
        t1, s1, e1 = _der(der, validity)
        t2, s2, e2 = _der(der, e1)
        self_issued = der[issuer_start:issuer_end] == der[subject_start:subject_end]
        return _asn1_time(t1, der[s1:e1]), _asn1_time(t2, der[s2:e2]), self_issued
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _tls_advice(message: str) -> str:
    text = message.lower()
    if "expired" in text:
        return "renew the registry's certificate"
    if "not yet valid" in text:
        return "the certificate's validity starts in the future: check the clocks, or reissue it"
    if "hostname" in text or "ip address mismatch" in text:
        return "the certificate does not name this host: reissue it with the host in subjectAltName"
    if "self-signed" in text or "self signed" in text or "local issuer" in text or "issuer" in text:
        return ("the chain does not lead to a CA this client trusts: serve the intermediate certificates, "
                "or pass verify='ca.pem' for a private CA")
    return "fix the registry's certificate or pass verify= with its CA"


async def tls(p: _Probe) -> None:
    """TLS protocol, cipher, certificate validity and chain, or that the registry speaks plain HTTP."""
    parts = urlsplit(p.core.base_url)
    host = parts.hostname or p.core.host
    if parts.scheme == "http":
        if is_local_host(p.core.host):
            p.add("tls", "info", f"plain HTTP to {p.core.host} (a local address)")
        else:
            p.add("tls", "warn", f"plain HTTP to {p.core.host}: requests and credentials travel unencrypted",
                  "serve the registry over TLS")
        return
    port = parts.port or 443
    try:
        peer = await _handshake(host, port, _tls_context(p.verify))
    except ssl.SSLCertVerificationError as exc:
        message = exc.verify_message or exc.reason or str(exc)
        evidence = f"certificate verify failed: {message}"
        try:
            unverified = await _handshake(host, port, _tls_context(False))
        except (OSError, ssl.SSLError, TimeoutError):
            unverified = None
        facts = certificate_facts(unverified.der) if unverified is not None and unverified.der else None
        if facts is not None:
            not_before, not_after, self_issued = facts
            evidence += (f"; certificate valid {not_before:%Y-%m-%d %H:%M} to {not_after:%Y-%m-%d %H:%M} UTC"
                         + (", self-signed" if self_issued else ""))
        if unverified is not None and unverified.version:
            evidence += f"; {unverified.version}"
        p.add("tls", "fail", evidence, _tls_advice(message))
        return
    except ssl.SSLError as exc:
        p.add("tls", "fail", f"TLS handshake failed: {exc.reason or _describe(exc)}",
              "the registry's TLS setup refuses this client (protocol or cipher)")
        return
    except (OSError, TimeoutError) as exc:
        p.add("tls", "fail", f"cannot connect to {host}:{port}: {_describe(exc)}", "check the host, port and firewall")
        return
    evidence = f"{peer.version}, {peer.cipher}"
    result, advice = "pass", ""
    not_after_text = peer.cert.get("notAfter")
    if isinstance(not_after_text, str):
        not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after_text), UTC)
        days = (not_after - datetime.now(UTC)).days
        evidence += f"; certificate valid until {not_after:%Y-%m-%d %H:%M} UTC ({days} days left)"
        if days < EXPIRY_WARN_DAYS:
            result, advice = "warn", "renew the certificate soon"
    elif p.verify is False:
        result, advice = "warn", "verification is off (verify=False): any certificate is accepted"
        facts = certificate_facts(peer.der) if peer.der else None
        if facts is not None:
            evidence += f"; certificate valid until {facts[1]:%Y-%m-%d %H:%M} UTC" + (
                ", self-signed" if facts[2] else "")
    if peer.version in ("SSLv3", "TLSv1", "TLSv1.1"):
        result, advice = "warn", f"{peer.version} is obsolete: enable TLS 1.2 or 1.3"
    p.add("tls", result, evidence, advice)


async def auth(p: _Probe) -> None:
    """The authentication scheme the registry asks for, with its realm and service."""
    authenticator = p.core.auth
    challenge = authenticator.challenge if authenticator is not None else None
    if challenge is None or challenge.scheme == "none":
        p.add("auth", "info", "no authentication asked for (GET /v2/ answered without a challenge)")
    elif challenge.scheme == "bearer":
        realm = redact_url(challenge.realm) if challenge.realm else "absent"
        result = "info" if challenge.realm else "fail"
        p.add("auth", result, f"Bearer, realm={realm}, service={challenge.service or 'absent'}",
              "" if challenge.realm else "a Bearer challenge needs a realm: no client can get a token")
    else:
        plain = p.core.base_url.startswith("http:") and not is_local_host(p.core.host)
        p.add("auth", "warn" if plain else "info", f"{challenge.scheme.capitalize()}"
              + (f", realm={challenge.realm}" if challenge.realm else ""),
              "Basic credentials over plain HTTP can be read on the way: use TLS" if plain else "")


async def anonymous_pull(p: _Probe) -> None:
    """Whether pulling works without credentials."""
    core = p.anonymous or p.core
    if not core.anonymous:
        p.add("anonymous_pull", "skip", "no anonymous connection to try with")
        return
    path = f"/v2/{p.repo.name}/tags/list" if p.repo is not None else "/v2/"
    scopes = p.repo.ctx.pull_scopes if p.repo is not None else ()
    try:
        reply = await core.request("GET", path, scopes=scopes, expect=ANY_STATUS)
    except OcinbError as exc:
        p.add("anonymous_pull", "info", f"anonymous GET {path} failed: {_describe(exc)}")
        return
    what = f"anonymous GET {path} → {_status(reply)}"
    if reply.status == 200:
        p.add("anonymous_pull", "info", f"{what}: anonymous pull works")
    elif reply.status in (401, 403):
        p.add("anonymous_pull", "info", f"{what}: pulling needs credentials")
    else:
        p.add("anonymous_pull", "info", what)


async def token_lifetime(p: _Probe) -> None:
    """How long the registry's Bearer tokens live (``expires_in``)."""
    authenticator = p.core.auth
    challenge = authenticator.challenge if authenticator is not None else None
    if authenticator is None or challenge is None or challenge.scheme != "bearer":
        p.add("token_lifetime", "skip", "the registry does not use Bearer tokens")
        return
    lifetime = authenticator.token_lifetime
    if lifetime is None:
        p.add("token_lifetime", "skip", "no token was fetched")
    elif not authenticator.token_lifetime_stated:
        p.add("token_lifetime", "warn", f"the token server stated no expires_in: {lifetime:.0f} s assumed (spec)",
              "clients refresh early; long pulls may see a 401 and fetch a new token")
    elif lifetime < 60:
        p.add("token_lifetime", "warn", f"expires_in={lifetime:.0f} s, under the spec's 60 s minimum",
              "tokens expire mid-transfer; ocinb refreshes them, other clients may fail")
    else:
        p.add("token_lifetime", "pass", f"expires_in={lifetime:.0f} s")


async def latency(p: _Probe) -> None:
    """Round-trip time of ``GET /v2/`` (median of a few)."""
    for _ in range(3):
        start = time.perf_counter()
        await p.core.request("GET", "/v2/", expect=ANY_STATUS)
        p.ping_ms.append((time.perf_counter() - start) * 1000)
    times = ", ".join(f"{t:.1f}" for t in p.ping_ms)
    p.add("latency", "info", f"GET /v2/ median {statistics.median(p.ping_ms):.1f} ms over {len(p.ping_ms)} "
          f"requests ({times} ms)")


async def catalog(p: _Probe) -> None:
    """Whether ``/v2/_catalog`` is served, honours ``n`` and paginates with ``Link``."""
    reply = await p.core.request("GET", "/v2/_catalog", scopes=(CATALOG_SCOPE,), params={"n": 2},
                                 expect=ANY_STATUS)
    names = _json_list(reply, "repositories") if reply.status == 200 else None
    if names is None:
        p.state.catalog = False
        p.add("catalog", "info", f"GET /v2/_catalog?n=2 → {_status(reply)}: not served to this client",
              "the catalog is optional (Docker Hub and most clouds do not serve it): name repositories yourself")
        return
    p.state.catalog = True
    link = next_link(reply.headers.get("link"), reply.url)
    picked = ""
    if p.repo is None and names:
        p.repo = p.endpoints(names[0])
        p.out.repository = names[0]
        picked = f"; the repository checks look into {names[0]}, the first listed"
    if len(names) > 2:
        p.add("catalog", "warn", f"GET /v2/_catalog?n=2 → 200 with {len(names)} repositories (n ignored){picked}",
              "expect the whole catalog in one answer")
    else:
        p.add("catalog", "pass", f"GET /v2/_catalog?n=2 → 200 with {len(names)} repositories"
              + (", Link rel=next" if link else ", no Link (no more)") + picked)


async def _tag_page(p: _Probe, n: int | None) -> tuple[Reply, list[str]]:
    assert p.repo is not None
    reply = await p.core.request("GET", p.repo.ctx.path("tags/list"), scopes=p.repo.ctx.pull_scopes,
                                 params={"n": n} if n is not None else None, expect=ANY_STATUS)
    if reply.status != 200:
        raise RegistryError(reply.status, "GET", reply.url, [])
    return reply, _json_list(reply, "tags") or []


async def tags(p: _Probe) -> None:
    """Tag listing: ``n`` honoured, ``Link`` on a short page, and the largest page the registry serves."""
    assert p.repo is not None
    total = [t async for page in p.repo.tags.pages() for t in page]
    first, first_tags = await _tag_page(p, None)
    p.repo_tags = [t for t in total if not is_fallback_tag(t)]
    if len(total) < 2:
        p.add("tags_n", "skip", f"{p.repo.name} has {len(total)} tag(s): n cannot be told apart from the total",
              "point the doctor at a repository with two tags or more")
        p.add("tags_link", "skip", "needs two tags or more")
    else:
        reply, page = await _tag_page(p, 1)
        link = next_link(reply.headers.get("link"), reply.url)
        honoured = len(page) <= 1
        p.state.tags_n_honoured = honoured
        p.state.tags_link = bool(link)
        if honoured:
            p.add("tags_n", "pass", f"tags/list?n=1 → {len(page)} tag (of {len(total)})")
        else:
            p.add("tags_n", "warn", f"tags/list?n=1 → {len(page)} tags (of {len(total)}): n ignored",
                  "every tag comes in one answer; ocinb follows Link and never assumes the page size")
        if link:
            p.add("tags_link", "pass", "tags/list?n=1 → Link rel=next")
        elif len(page) < len(total):
            p.add("tags_link", "fail", f"tags/list?n=1 → {len(page)} of {len(total)} tags and no Link",
                  "clients stop at the first page and miss tags")
        else:
            p.add("tags_link", "warn", "tags/list?n=1 → no Link header (every tag on one page)",
                  "pagination is not implemented: large repositories arrive in one response")
    _, big = await _tag_page(p, 10000)
    largest = max(len(first_tags), len(big))
    p.state.tags_max_page = max(largest, p.state.tags_max_page or 0)
    p.add("tags_page_max", "info", f"largest page: {largest} tags (no n: {len(first_tags)}, n=10000: {len(big)}; "
          f"{len(total)} in all)" + (", Link on the first page" if next_link(first.headers.get("link"), first.url)
                                     else ""))


def _sample_tag(p: _Probe) -> str | None:
    return "latest" if "latest" in p.repo_tags else (p.repo_tags[0] if p.repo_tags else None)


async def head_digest(p: _Probe) -> None:
    """A manifest HEAD carries ``Docker-Content-Digest``, and it is the digest of the bytes a GET returns."""
    assert p.repo is not None
    tag = _sample_tag(p)
    if tag is None:
        p.add("head_digest", "skip", f"{p.repo.name} has no tags to HEAD")
        return
    reply = await p.core.request("HEAD", p.repo.ctx.path(f"manifests/{tag}"), scopes=p.repo.ctx.pull_scopes,
                                 headers={"Accept": ACCEPT}, expect=ANY_STATUS)
    sample = await p.repo.manifests.get(tag)
    p.sample = sample
    header = reply.headers.get("docker-content-digest")
    actual = _sha(sample.data)
    if reply.status != 200:
        p.state.head_digest = False
        p.add("head_digest", "fail", f"HEAD manifests/{tag} → {_status(reply)} but GET → 200",
              "HEAD must answer as GET does; clients checking for updates will fail")
    elif not header:
        p.state.head_digest = False
        p.add("head_digest", "warn", f"HEAD manifests/{tag} → 200 without Docker-Content-Digest",
              "clients need a GET to learn the digest (on Docker Hub a GET counts against the rate limit)")
    elif header != actual and header != str(sample.digest):
        p.state.head_digest = False
        p.add("head_digest", "fail", f"HEAD manifests/{tag}: Docker-Content-Digest {header}, but the GET body "
              f"hashes to {actual}", "the registry reports a wrong digest: pinned pulls will fail")
    else:
        p.state.head_digest = True
        p.add("head_digest", "pass",
              f"HEAD manifests/{tag} → Docker-Content-Digest {header} (= sha256 of the GET body)")
    if sample.media_type in (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST):
        index = sample.as_index()
        child = next((d for d in index.manifests if d.media_type in (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST)), None)
        p.image = await p.repo.manifests.get(child.digest) if child is not None else None
    elif sample.media_type in (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST):
        p.image = sample


async def _negotiate(p: _Probe, name: str, media_type: str, found: str | None) -> None:
    assert p.repo is not None
    if found is None:
        p.add(name, "skip", f"no {media_type} among the first {ACCEPT_SCAN} tags of {p.repo.name}")
        return
    path = p.repo.ctx.path(f"manifests/{found}")
    exact = await p.core.request("GET", path, scopes=p.repo.ctx.pull_scopes, headers={"Accept": media_type},
                                 expect=ANY_STATUS)
    narrow = await p.core.request("GET", path, scopes=p.repo.ctx.pull_scopes,
                                  headers={"Accept": f"{mt.OCI_MANIFEST}, {mt.DOCKER_MANIFEST}"}, expect=ANY_STATUS)
    served = mt.strip_params(exact.headers.get("content-type"))
    narrow_text = (f"{narrow.status} {mt.strip_params(narrow.headers.get('content-type'))}" if narrow.status == 200
                   else _status(narrow))
    evidence = (f"{found}: Accept {media_type} → {exact.status} {served}; "
                f"Accept image manifests only → {narrow_text}")
    if exact.status == 200 and served == media_type:
        p.add(name, "pass", evidence)
    else:
        p.add(name, "fail", evidence, f"the registry does not serve {media_type} when asked for it")


async def accept(p: _Probe) -> None:
    """Accept negotiation: an OCI index and a Docker manifest list are served when asked for by their type."""
    assert p.repo is not None
    found: dict[str, str] = {}
    for tag in p.repo_tags[:ACCEPT_SCAN]:
        reply = await p.core.request("HEAD", p.repo.ctx.path(f"manifests/{tag}"), scopes=p.repo.ctx.pull_scopes,
                                     headers={"Accept": ACCEPT}, expect=ANY_STATUS)
        found.setdefault(mt.strip_params(reply.headers.get("content-type")), tag)
        if mt.OCI_INDEX in found and mt.DOCKER_MANIFEST_LIST in found:
            break
    await _negotiate(p, "accept_oci_index", mt.OCI_INDEX, found.get(mt.OCI_INDEX))
    await _negotiate(p, "accept_docker_list", mt.DOCKER_MANIFEST_LIST, found.get(mt.DOCKER_MANIFEST_LIST))


async def referrers(p: _Probe) -> None:
    """The referrers API (native, else the fallback tag schema), ``artifactType`` filtering, ``OCI-Filters-Applied``."""
    assert p.repo is not None
    if p.sample is None:
        p.add("referrers_api", "skip", "no manifest to ask about")
        p.add("referrers_filter", "skip", "no manifest to ask about")
        return
    digest = str(p.sample.digest)
    path = p.repo.ctx.path(f"referrers/{digest}")
    reply = await p.core.request("GET", path, scopes=p.repo.ctx.pull_scopes, headers={"Accept": mt.OCI_INDEX},
                                 expect=ANY_STATUS)
    ctype = mt.strip_params(reply.headers.get("content-type"))
    if reply.status == 200 and ctype == mt.OCI_INDEX:
        p.state.referrers_api = True
        count = len(json.loads(reply.content).get("manifests") or [])
        p.add("referrers_api", "pass", f"GET referrers/{digest[:19]}… → 200 {ctype} ({count} referrers)")
        filtered = await p.core.request("GET", path, scopes=p.repo.ctx.pull_scopes, params={
            "artifactType": PROBE_ARTIFACT}, headers={"Accept": mt.OCI_INDEX}, expect=ANY_STATUS)
        applied = filtered.headers.get("oci-filters-applied", "")
        ok = "artifacttype" in applied.lower().replace(" ", "")
        p.state.referrers_filtering = ok
        if ok:
            p.add("referrers_filter", "pass", f"?artifactType= → {filtered.status}, OCI-Filters-Applied: {applied}")
        else:
            p.add("referrers_filter", "warn", f"?artifactType= → {filtered.status} without OCI-Filters-Applied",
                  "the registry does not filter: clients filter the full list (ocinb does)")
        return
    fallback = await p.core.request("HEAD", p.repo.ctx.path(f"manifests/{fallback_tag(digest)}"),
                                    scopes=p.repo.ctx.pull_scopes, headers={"Accept": mt.OCI_INDEX}, expect=ANY_STATUS)
    tag_state = "present" if fallback.status == 200 else "absent"
    if reply.status == 404 and "NAME_UNKNOWN" not in _codes(reply):
        p.state.referrers_api = False
    p.add("referrers_api", "warn", f"GET referrers/{digest[:19]}… → {_status(reply)}"
          + (f" {ctype}" if ctype and reply.status == 200 else "")
          + f": no referrers API; fallback tag {fallback_tag(digest)[:20]}… {tag_state}",
          "referrers are found and recorded through the fallback tag schema (ocinb, oras and cosign do this)")
    p.add("referrers_filter", "skip", "no referrers API to filter")


def _config(p: _Probe) -> Descriptor | None:
    if p.image is None:
        return None
    try:
        return p.image.as_manifest().config
    except OcinbError:
        return None


async def blob_range(p: _Probe) -> None:
    """A blob GET with ``Range: bytes=0-0`` answers 206 with ``Content-Range`` (resumable downloads)."""
    assert p.repo is not None
    config = _config(p)
    if config is None:
        p.add("blob_range", "skip", "no image manifest found to take a blob from")
        return
    reply = await p.core.request("GET", p.repo.ctx.path(f"blobs/{config.digest}"), scopes=p.repo.ctx.pull_scopes,
                                 headers={"Range": "bytes=0-0"}, expect=ANY_STATUS,
                                 max_body=max(config.size, 0) + 1024)
    content_range = reply.headers.get("content-range")
    if reply.status == 206 and content_range and len(reply.content) == 1:
        p.state.blob_range = True
        p.add("blob_range", "pass", f"Range: bytes=0-0 → 206, Content-Range: {content_range}")
    elif reply.status == 200:
        p.state.blob_range = False
        p.add("blob_range", "warn", f"Range: bytes=0-0 → 200 with {len(reply.content)} bytes (Range ignored)",
              "an interrupted download restarts from the beginning")
    else:
        p.add("blob_range", "fail", f"Range: bytes=0-0 → {_status(reply)}", "blob reads are broken")


async def blob_redirect(p: _Probe) -> None:
    """Where a blob GET ends up: the registry itself, or a redirect to storage (a CDN, S3, GCS)."""
    assert p.repo is not None
    config = _config(p)
    if config is None:
        p.add("blob_redirect", "skip", "no image manifest found to take a blob from")
        return
    before = p.core.stats.redirects
    reply = await p.core.request("GET", p.repo.ctx.path(f"blobs/{config.digest}"), scopes=p.repo.ctx.pull_scopes,
                                 expect=ANY_STATUS, max_body=max(config.size, 0) + 1024)
    hops = p.core.stats.redirects - before
    final = _origin(reply.url)
    if hops == 0 or final == _origin(p.core.base_url):
        p.state.blob_redirect = ""
        p.add("blob_redirect", "info", f"GET blobs/{config.digest[:19]}… → {reply.status}, served by the registry")
    else:
        p.state.blob_redirect = final
        p.add("blob_redirect", "info", f"GET blobs/{config.digest[:19]}… → redirected ({hops} hop(s)) to {final} "
              f"→ {reply.status}", "blob downloads need network access to that host too (proxies, firewalls)")


async def rate_limit(p: _Probe) -> None:
    """Docker Hub's ``ratelimit-limit``/``ratelimit-remaining`` headers, and what remains."""
    rl = p.core.rate_limit
    if rl.limit is None and rl.remaining is None:
        p.add("rate_limit", "info", "no ratelimit-limit / ratelimit-remaining headers on manifest requests")
        return
    window = f" per {rl.window_seconds} s" if rl.window_seconds else ""
    source = f" (source {rl.source})" if rl.source else ""
    evidence = f"ratelimit-limit {rl.limit}{window}, ratelimit-remaining {rl.remaining}{source}"
    low = rl.remaining is not None and (rl.remaining == 0 or (rl.limit and rl.remaining < 0.1 * rl.limit))
    if low:
        p.add("rate_limit", "warn", evidence, "little quota left: use HEAD (free on Docker Hub), log in, or wait for "
              "the window")
    else:
        p.add("rate_limit", "info", evidence, "manifest GETs count against the limit; HEADs do not")


async def _push_blob(p: _Probe, repo: RepositoryEndpoints, data: bytes, how: str) -> str:
    """Push ``data`` into ``repo`` monolithically (POST, then PUT) or by single POST; returns what happened."""
    digest = _sha(data)
    p.blobs.append((repo.name, digest))
    if how == "monolithic":
        session = await repo.uploads.start()
        await repo.uploads.finish(session, digest, data)
        return "POST → 202, PUT ?digest= with the body → 201"
    if how == "single_post":
        answer = await repo.uploads.post(digest, data)
        if isinstance(answer, Descriptor):
            p.state.single_post = True
            return "201"
        p.state.single_post = False
        p.sessions.append((repo, answer))
        await repo.uploads.finish(answer, digest, data)
        p.sessions.remove((repo, answer))
        return "202"
    raise ValueError(f"unknown upload kind {how!r}")


async def _push_chunked(p: _Probe, repo: RepositoryEndpoints, token: bytes) -> tuple[bytes, str]:
    """A chunked upload (end-5): two PATCHes of the chunk size the registry asks for (at least 1 KiB, at most
    :data:`MAX_CHUNK`), then the PUT with the rest. Returns the bytes sent and what happened."""
    session = await repo.uploads.start()
    p.sessions.append((repo, session))
    p.state.chunk_min_length = session.min_chunk or 0
    size = min(max(session.min_chunk or 0, 1024), MAX_CHUNK)
    data = secrets.token_bytes(2 * size) + token
    p.blobs.append((repo.name, _sha(data)))
    for part in (data[:size], data[size:2 * size]):
        session = await repo.uploads.patch(session, part)
        p.sessions[-1] = (repo, session)  # the newest Location, for cancelling should the next step fail
    await repo.uploads.finish(session, _sha(data), data[2 * size:])
    p.sessions.pop()
    return data, f"2 PATCH of {size} bytes and a PUT with the last {len(token)} → 201"


async def _verify_blob(repo: RepositoryEndpoints, data: bytes) -> bool:
    digest = _sha(data)
    return await repo.blobs.get(digest, size=len(data)) == data


async def uploads(p: _Probe) -> None:
    """Monolithic (POST+PUT), single-POST and chunked (PATCH) uploads, and ``OCI-Chunk-Min-Length``."""
    assert p.scratch is not None
    token = secrets.token_hex(8)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"org.ocinb.doctor": token}}}).encode()
    single = f"ocinb doctor single POST {token}\n".encode()
    chunked = b""
    for name, data, how in (("upload_monolithic", config, "monolithic"),
                            ("upload_single_post", single, "single_post"), ("upload_chunked", b"", "chunked")):
        try:
            if how == "chunked":
                data, said = await _push_chunked(p, p.scratch, token.encode())
                chunked = data
            else:
                said = await _push_blob(p, p.scratch, data, how)
            readable = await _verify_blob(p.scratch, data)
        except OcinbError as exc:
            if how == "chunked":
                p.state.chunked_upload = False
            p.add(name, "fail", f"{how} upload failed: {_describe(exc)}", "pushes of this kind will fail")
            continue
        if not readable:
            p.add(name, "fail", f"{how} upload: the blob read back differs", "the registry stores wrong bytes")
        elif how == "single_post":
            if said == "201":
                p.add(name, "pass", "POST ?digest= with the body → 201")
            else:
                p.add(name, "warn", "POST ?digest= with the body → 202: the body was not taken, an upload was opened",
                      "clients must PUT the bytes again (ocinb does, and remembers to skip single POST here)")
        else:
            if how == "chunked":
                p.state.chunked_upload = True
            p.add(name, "pass", said + f" ({len(data)} bytes, read back equal)")
    min_chunk = p.state.chunk_min_length
    if min_chunk is None:
        p.add("chunk_min_length", "skip", "no chunked upload was opened")
    elif min_chunk:
        p.add("chunk_min_length", "info", f"OCI-Chunk-Min-Length: {min_chunk}",
              "chunks (all but the last) must be at least this long")
    else:
        p.add("chunk_min_length", "info", "no OCI-Chunk-Min-Length header: any chunk size is accepted")
    p.config_blob, p.layer_blob = config, chunked


async def mount(p: _Probe) -> None:
    """Cross-repository blob mount (end-11): 201, or 202 with an upload session when declined."""
    assert p.scratch is not None
    if not p.blobs:
        p.add("mount", "skip", "no blob was pushed to mount")
        return
    source, digest = p.blobs[0]
    target = p.endpoints(f"{p.scratch.name}-mount")
    p.blobs.append((target.name, digest))
    answer = await target.blobs.mount(digest, source)
    if isinstance(answer, Descriptor):
        p.state.mount = True
        p.add("mount", "pass", f"POST {target.name}/blobs/uploads/?mount=…&from={source} → 201")
    else:
        p.state.mount = False
        await target.uploads.cancel(answer)
        p.add("mount", "warn", f"POST {target.name}/blobs/uploads/?mount=…&from={source} → 202 (declined)",
              "blobs are uploaded again instead of linked (copies within this registry cost bandwidth)")


def _manifest_bytes(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


async def manifests(p: _Probe) -> None:
    """Push an image and a referrer with a ``subject``; ``OCI-Subject``; delete by tag; delete by digest."""
    assert p.scratch is not None
    config, layer = p.config_blob, p.layer_blob
    if config is None or layer is None or not p.out.checks or not all(
            c.result in ("pass", "warn") for c in p.out.checks if c.check.startswith("upload_")):
        for name in ("oci_subject", "delete_by_tag", "manifest_delete"):
            p.add(name, "skip", "the uploads did not succeed")
        return
    image_doc: dict[str, object] = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": _sha(config), "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER, "digest": _sha(layer), "size": len(layer)}],
    }
    image = _manifest_bytes(image_doc)
    tag = f"ocinb-doctor-{secrets.token_hex(4)}"
    image_digest = _sha(image)
    p.manifests.append((p.scratch.name, image_digest))
    p.undeleted.append((p.scratch.name, image_digest))
    p.tags.append((p.scratch.name, tag))
    await p.scratch.manifests.put(tag, image, mt.OCI_MANIFEST, update_referrers=False)
    if not await p.scratch.blobs.exists(mt.EMPTY_DIGEST):  # one already there may serve other artifacts: keep it
        await _push_blob(p, p.scratch, mt.EMPTY_DATA, "monolithic")
    empty = {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST, "size": mt.EMPTY_SIZE}
    referrer = _manifest_bytes({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": PROBE_ARTIFACT, "config": empty,
        "layers": [empty], "subject": {"mediaType": mt.OCI_MANIFEST, "digest": image_digest, "size": len(image)},
    })
    referrer_digest = _sha(referrer)
    p.manifests.append((p.scratch.name, referrer_digest))
    p.undeleted.insert(0, (p.scratch.name, referrer_digest))
    result = await p.scratch.manifests.put(referrer_digest, referrer, mt.OCI_MANIFEST, update_referrers=False)
    p.state.oci_subject = result.subject is not None
    if result.subject == image_digest:
        p.add("oci_subject", "pass", f"PUT a manifest with a subject → OCI-Subject: {result.subject}")
    elif result.subject:
        p.add("oci_subject", "fail", f"PUT a manifest with subject {image_digest} → OCI-Subject: {result.subject}",
              "the registry names the wrong subject")
    else:
        p.add("oci_subject", "warn", "PUT a manifest with a subject → 201 without OCI-Subject",
              "the registry does not index referrers: clients must update the fallback tag (ocinb does)")
    by_tag = await p.core.request("DELETE", p.scratch.ctx.path(f"manifests/{tag}"), scopes=p.scratch.ctx.delete_scopes,
                                  expect=ANY_STATUS)
    if by_tag.status in (200, 202, 204):
        p.state.delete_by_tag = True
        p.add("delete_by_tag", "pass", f"DELETE manifests/{tag} → {by_tag.status}")
    else:
        p.state.delete_by_tag = False
        p.add("delete_by_tag", "warn", f"DELETE manifests/{tag} → {_status(by_tag)}",
              "delete by digest instead (ocinb does); deleting a digest removes its tags")
    statuses = []
    for repo_name, digest in list(p.undeleted):
        reply = await p.core.request("DELETE", f"/v2/{repo_name}/manifests/{digest}",
                                     scopes=p.scratch.ctx.delete_scopes, expect=ANY_STATUS)
        statuses.append(_status(reply))
        if reply.status in (200, 202, 204):
            p.undeleted.remove((repo_name, digest))
    if not p.undeleted:
        p.state.manifest_delete = True
        p.add("manifest_delete", "pass", f"DELETE manifests/<digest> → {', '.join(statuses)} (referrer, image)")
    else:
        p.state.manifest_delete = False
        p.add("manifest_delete", "warn", f"DELETE manifests/<digest> → {', '.join(statuses)}",
              "deletes are disabled (distribution: storage.delete.enabled): pushed manifests stay")


async def cleanup(p: _Probe) -> None:
    """Delete what the write checks pushed, then look again: nothing the doctor made may be left."""
    assert p.scratch is not None
    for repo, session in p.sessions:
        with contextlib.suppress(OcinbError):
            await repo.uploads.cancel(session)
    for repo_name, digest in list(p.undeleted):
        reply = await p.core.request("DELETE", f"/v2/{repo_name}/manifests/{digest}",
                                     scopes=p.scratch.ctx.delete_scopes, expect=ANY_STATUS)
        if reply.status in (200, 202, 204, 404):
            p.undeleted.remove((repo_name, digest))
    blob_statuses: set[str] = set()
    for repo_name, digest in dict.fromkeys(p.blobs):
        reply = await p.core.request("DELETE", f"/v2/{repo_name}/blobs/{digest}",
                                     scopes=p.endpoints(repo_name).ctx.delete_scopes, expect=ANY_STATUS)
        blob_statuses.add(_status(reply))
    p.out.pushed = ([f"{r}@{d}" for r, d in p.manifests] + [f"{r}:{t}" for r, t in p.tags]
                    + [f"{r}@{d}" for r, d in dict.fromkeys(p.blobs)])
    left = []
    for kind, made in (("manifests", p.manifests), ("blobs", list(dict.fromkeys(p.blobs)))):
        for repo_name, digest in made:
            reply = await p.core.request("HEAD", f"/v2/{repo_name}/{kind}/{digest}",
                                         scopes=p.endpoints(repo_name).ctx.pull_scopes,
                                         headers={"Accept": ACCEPT}, expect=ANY_STATUS)
            if reply.status == 200:
                left.append(f"{repo_name}@{digest}")
    for repo_name, tag in p.tags:
        try:
            listed = await p.endpoints(repo_name).tags.list()
        except RegistryError:
            listed = []
        if tag in listed:
            left.append(f"{repo_name}:{tag}")
    p.out.left = left
    deleted = f"blob DELETE → {', '.join(sorted(blob_statuses))}" if blob_statuses else "no blob pushed"
    if left:
        p.add("cleanup", "warn", f"left behind: {', '.join(left)} ({deleted})",
              "enable deletes on the registry or remove these by hand; the scratch repository may be dropped")
    else:
        p.add("cleanup", "pass", f"removed all {len(p.out.pushed)} things pushed ({deleted}); their HEADs "
              "answer 404 and the tag is gone")


_READ_ONLY: tuple[Callable[[_Probe], Awaitable[None]], ...] = (tls, api_version, auth, catalog)
_REPOSITORY: tuple[Callable[[_Probe], Awaitable[None]], ...] = (
    tags, head_digest, accept, referrers, blob_range, blob_redirect)
_AFTER: tuple[Callable[[_Probe], Awaitable[None]], ...] = (anonymous_pull, token_lifetime, rate_limit, latency)
_WRITE: tuple[Callable[[_Probe], Awaitable[None]], ...] = (uploads, mount, manifests)


async def _run(p: _Probe, check: Callable[[_Probe], Awaitable[None]]) -> None:
    """Run one check; an error becomes its ``fail`` row rather than ending the report."""
    before = len(p.out.checks)
    try:
        await check(p)
    except (OcinbError, ValueError, KeyError, TypeError, AttributeError) as exc:
        del p.out.checks[before:]
        p.add(check.__name__, "fail", f"{type(exc).__name__}: {_describe(exc)}",
              "this check could not complete; the error says why")


async def diagnose(core: HttpCore, state: RegistryState, *, registry: str,
                   repository: RepositoryEndpoints | None = None, scratch: RepositoryEndpoints | None = None,
                   verify: bool | str | ssl.SSLContext = True, anonymous: HttpCore | None = None) -> Diagnosis:
    """Check what the registry behind ``core`` supports; learn it into ``state``; return every check in order.

    ``repository`` is where the read checks look (default: the first repository of the catalog, if served);
    ``scratch`` enables the write checks there, which delete what they pushed. ``verify`` is the client's TLS
    setting; ``anonymous`` a credential-less core of the same registry, to tell whether anonymous pull works.
    """
    p = _Probe(core, state, registry, repository, scratch, verify, anonymous,
               Diagnosis(registry, core.base_url, repository.name if repository is not None else None))
    for check in _READ_ONLY:
        if check not in (tls, api_version) and not p.reachable:
            p.add(check.__name__, "skip", "the registry did not answer GET /v2/")
            continue
        if check is catalog and not p.authorized:
            p.add("catalog", "skip", "GET /v2/ was not authorized")
            continue
        await _run(p, check)
    usable = p.reachable and p.authorized
    for check in _REPOSITORY:
        if not usable or p.repo is None:
            p.add(check.__name__, "skip", "pass a repository to check it" if usable else "GET /v2/ did not succeed")
            continue
        await _run(p, check)
    for check in _AFTER:
        if not p.reachable:
            p.add(check.__name__, "skip", "the registry did not answer GET /v2/")
            continue
        await _run(p, check)
    if scratch is None:
        p.add("write", "skip", "read-only: pass write='scratch/repo' to check uploads, mount, deletes and "
              "OCI-Subject")
    elif not usable:
        p.add("write", "skip", "GET /v2/ did not succeed")
    else:
        try:
            for check in _WRITE:
                await _run(p, check)
        finally:
            await _run(p, cleanup)
    return p.out
