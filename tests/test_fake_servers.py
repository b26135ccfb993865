"""Tests of the test-only servers (FakeRegistry, BlobMirror, FaultProxy) using plain httpx."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _fakeregistry import OCI_INDEX, OCI_MANIFEST, BlobMirror, FakeRegistry, sha256_digest
from _faultproxy import Fault, FaultProxy

ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


@pytest.fixture
def reg() -> Iterator[FakeRegistry]:
    """A fresh FakeRegistry, stopped afterwards."""
    with FakeRegistry() as server:
        yield server


@pytest.fixture
def client(reg: FakeRegistry) -> Iterator[httpx.Client]:
    """An httpx client bound to the FakeRegistry."""
    with httpx.Client(base_url=reg.url, timeout=10) as c:
        yield c


def _image(reg: FakeRegistry, repo: str, tag: str | None = "v1", **extra: Any) -> tuple[str, bytes]:
    """Store a small OCI image; return (manifest digest, manifest bytes)."""
    config = reg.put_blob(repo, b"{}")
    layer = reg.put_blob(repo, b"layer-" + repo.encode() + json.dumps(extra).encode())
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 10}],
        **extra,
    }
    raw = json.dumps(doc, indent=1).encode()
    return reg.put_manifest(repo, tag or sha256_digest(raw), raw), raw


def _artifact(reg: FakeRegistry, repo: str, subject: str, artifact_type: str | None, config_type: str, n: int) -> bytes:
    """Manifest bytes for an artifact referring to ``subject`` (blobs stored)."""
    empty = reg.put_blob(repo, b"{}")
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100},
        "annotations": {"n": str(n)},
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    return json.dumps(doc).encode()


def _add_digest(location: str, digest: str) -> str:
    """Append ``digest=`` keeping the existing query (httpx ``params=`` would replace it)."""
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def _next_link(resp: httpx.Response) -> str | None:
    link = resp.headers.get("Link")
    if not link:
        return None
    assert link.startswith("</") and link.endswith('>; rel="next"'), link
    return link[1 : link.index(">")]


def test_tags_pagination_link_and_last_exclusive(reg: FakeRegistry, client: httpx.Client) -> None:
    """Tags come lexically sorted, `last` is exclusive, Link is relative and n=0 is empty without Link."""
    digest, _ = _image(reg, "app")
    names = [f"t{i:02d}" for i in range(7)]
    for tag in reversed(names):
        reg.put_manifest("app", tag, reg.get_manifest("app", digest)[0])  # type: ignore[index]
    collected: list[str] = []
    url: str | None = "/v2/app/tags/list?n=3"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200
        collected += r.json()["tags"]
        url = _next_link(r)
        pages += 1
    assert collected == sorted([*names, "v1"])
    assert pages == 3
    first = client.get("/v2/app/tags/list?n=3")
    assert first.headers["Link"] == '</v2/app/tags/list?n=3&last=t02>; rel="next"'
    assert client.get("/v2/app/tags/list?n=2&last=t02").json()["tags"] == ["t03", "t04"]
    zero = client.get("/v2/app/tags/list?n=0")
    assert zero.json()["tags"] == [] and "Link" not in zero.headers
    assert client.get("/v2/app/tags/list?last=t05").json()["tags"] == ["t06", "v1"]
    reg.tag_page_size = 4
    r = client.get("/v2/app/tags/list")
    assert r.json()["tags"] == names[:4] and _next_link(r) == "/v2/app/tags/list?n=4&last=t03"
    assert client.get("/v2/nope/tags/list").json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_catalog_pagination(reg: FakeRegistry, client: httpx.Client) -> None:
    """The catalog paginates like tags."""
    for repo in ["c", "a", "b/x", "b"]:
        reg.put_blob(repo, b"x")
    r = client.get("/v2/_catalog?n=2")
    assert r.json()["repositories"] == ["a", "b"]
    assert _next_link(r) == "/v2/_catalog?n=2&last=b"
    r2 = client.get(_next_link(r) or "")
    assert r2.json()["repositories"] == ["b/x", "c"] and "Link" not in r2.headers


def test_manifest_push_pull_and_checks(reg: FakeRegistry, client: httpx.Client) -> None:
    """PUT keeps exact bytes, verifies digests, rejects missing blobs; GET honours Accept and HEAD has no body."""
    config = reg.put_blob("img", b"{}")
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "x", "digest": sha256_digest(b"missing"), "size": 7}],
        },
        indent=3,
    ).encode()
    r = client.put("/v2/img/manifests/v1", content=raw, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    reg.put_blob("img", b"missing")
    wrong = sha256_digest(b"other")
    r = client.put(f"/v2/img/manifests/{wrong}", content=raw, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
    r = client.put("/v2/img/manifests/v1", content=raw, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201
    assert r.headers["Docker-Content-Digest"] == sha256_digest(raw)
    assert r.headers["Location"] == f"/v2/img/manifests/{sha256_digest(raw)}"
    assert "OCI-Subject" not in r.headers
    got = client.get("/v2/img/manifests/v1", headers={"Accept": ACCEPT})
    assert got.content == raw and got.headers["Content-Type"] == OCI_MANIFEST
    head = client.head(f"/v2/img/manifests/{sha256_digest(raw)}", headers={"Accept": ACCEPT})
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) == len(raw)
    assert client.get("/v2/img/manifests/v1", headers={"Accept": OCI_INDEX}).status_code == 404
    missing = client.get("/v2/img/manifests/v9")
    assert missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert client.delete("/v2/img/manifests/v1").status_code == 202
    assert client.get(f"/v2/img/manifests/{sha256_digest(raw)}").status_code == 200
    assert client.delete(f"/v2/img/manifests/{sha256_digest(raw)}").status_code == 202
    assert client.get(f"/v2/img/manifests/{sha256_digest(raw)}").status_code == 404


def test_oci_subject_and_referrers(reg: FakeRegistry, client: httpx.Client) -> None:
    """PUT with subject answers OCI-Subject; referrers list, filter header and pagination follow the spec."""
    subject, _ = _image(reg, "app")
    sbom, sig = "application/vnd.example.sbom.v1", "application/vnd.example.sig.v1"
    pushed = {}
    for n, (atype, ctype) in enumerate([(sbom, "application/vnd.oci.empty.v1+json"), (None, sig), (sbom, "x")]):
        raw = _artifact(reg, "app", subject, atype, ctype, n)
        r = client.put(f"/v2/app/manifests/{sha256_digest(raw)}", content=raw, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201 and r.headers["OCI-Subject"] == subject
        pushed[sha256_digest(raw)] = (atype or ctype, len(raw), str(n))
    r = client.get(f"/v2/app/referrers/{subject}")
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in r.headers
    index = r.json()
    assert index["mediaType"] == OCI_INDEX and index["schemaVersion"] == 2
    listed = {d["digest"]: (d["artifactType"], d["size"], d["annotations"]["n"]) for d in index["manifests"]}
    assert listed == pushed
    filtered = client.get(f"/v2/app/referrers/{subject}", params={"artifactType": sbom})
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert {d["artifactType"] for d in filtered.json()["manifests"]} == {sbom}
    assert len(filtered.json()["manifests"]) == 2
    reg.referrers_page_size = 2
    seen: list[str] = []
    url: str | None = f"/v2/app/referrers/{subject}"
    while url:
        page = client.get(url)
        seen += [d["digest"] for d in page.json()["manifests"]]
        url = _next_link(page)
    assert sorted(seen) == sorted(pushed) and len(seen) == 3
    empty = client.get(f"/v2/app/referrers/{sha256_digest(b'nothing')}")
    assert empty.status_code == 200 and empty.json()["manifests"] == []
    assert client.get("/v2/app/referrers/not-a-digest").status_code == 400


def test_referrers_api_disabled_like_distribution_28() -> None:
    """With referrers_api=False: 404 plain text and no OCI-Subject on PUT."""
    with FakeRegistry(referrers_api=False) as reg, httpx.Client(base_url=reg.url) as client:
        subject, _ = _image(reg, "app")
        raw = _artifact(reg, "app", subject, "a/b", "c/d", 0)
        r = client.put("/v2/app/manifests/x", content=raw, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201 and "OCI-Subject" not in r.headers
        ref = client.get(f"/v2/app/referrers/{subject}")
        assert ref.status_code == 404 and ref.headers["Content-Type"].startswith("text/plain")


def test_chunked_upload_rotating_location_and_416() -> None:
    """PATCH validates order and min length, rotates Location; stale Location → 404; GET status → 204 + Range."""
    data = bytes(range(256)) * 40
    digest = sha256_digest(data)
    with FakeRegistry(chunk_min_length=1000) as reg, httpx.Client(base_url=reg.url) as client:
        r = client.post("/v2/up/blobs/uploads/", headers={"Content-Length": "0"})
        assert r.status_code == 202 and r.headers["OCI-Chunk-Min-Length"] == "1000"
        loc0 = r.headers["Location"]
        assert loc0.startswith("/v2/up/blobs/uploads/") and "?_state=" in loc0
        r = client.patch(loc0, content=data[:1000], headers={"Content-Range": "0-999"})
        assert r.status_code == 202 and r.headers["Range"] == "0-999"
        loc1 = r.headers["Location"]
        assert loc1 != loc0
        stale = client.patch(loc0, content=data[1000:2000], headers={"Content-Range": "1000-1999"})
        assert stale.status_code == 404 and stale.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
        gap = client.patch(loc1, content=data[1500:2500], headers={"Content-Range": "1500-2499"})
        assert gap.status_code == 416 and gap.headers["Range"] == "0-999"
        status = client.get(loc1)
        assert status.status_code == 204 and status.headers["Range"] == "0-999"
        loc = status.headers["Location"]
        r = client.patch(loc, content=data[1000:2000], headers={"Content-Range": "1000-1999"})
        assert r.status_code == 202
        loc = r.headers["Location"]
        bad = client.put(_add_digest(loc, sha256_digest(b"x")), content=data[2000:])
        assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "DIGEST_INVALID"
        r = client.patch(loc, content=data[2000:2100], headers={"Content-Range": "2000-2099"})
        assert r.status_code == 202
        loc = r.headers["Location"]
        short = client.patch(loc, content=data[2100:3200], headers={"Content-Range": "2100-3199"})
        assert short.status_code == 416
        final = client.put(_add_digest(loc, digest), content=data[2100:])
        assert final.status_code == 201 and final.headers["Location"] == f"/v2/up/blobs/{digest}"
        assert "_state" in final.request.url.query.decode() and "digest=" in final.request.url.query.decode()
        assert client.get(f"/v2/up/blobs/{digest}").content == data
        assert reg.upload_sessions() == 0


def test_single_post_mount_and_blob_range(reg: FakeRegistry, client: httpx.Client) -> None:
    """Single POST → 201; mount → 201 or 202 by mount_mode; Range → 206 with Content-Range; HEAD/DELETE."""
    blob = b"0123456789" * 10
    digest = sha256_digest(blob)
    r = client.post("/v2/src/blobs/uploads/", params={"digest": digest}, content=blob)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == digest
    r = client.post("/v2/dst/blobs/uploads/", params={"mount": digest, "from": "src"})
    assert r.status_code == 201 and r.headers["Location"] == f"/v2/dst/blobs/{digest}"
    reg.mount_mode = "always_202"
    r = client.post("/v2/dst2/blobs/uploads/", params={"mount": digest, "from": "src"})
    assert r.status_code == 202 and "_state=" in r.headers["Location"]
    part = client.get(f"/v2/dst/blobs/{digest}", headers={"Range": "bytes=95-"})
    assert part.status_code == 206 and part.content == blob[95:]
    assert part.headers["Content-Range"] == "bytes 95-99/100"
    head = client.head(f"/v2/dst/blobs/{digest}")
    assert head.headers["Content-Length"] == "100" and head.headers["Docker-Content-Digest"] == digest
    assert client.delete(f"/v2/dst/blobs/{digest}").status_code == 202
    assert client.get(f"/v2/dst/blobs/{digest}").json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_fail_next_429_then_success_and_bare_500(reg: FakeRegistry, client: httpx.Client) -> None:
    """fail_next answers matching requests with the injected status, then the real answer."""
    reg.fail_next(1, 429, retry_after=1, match=lambda m, p: p == "/v2/")
    reg.fail_next(1, 502, body="<html>bad gateway</html>", match=lambda m, p: "/tags/" in p)
    r = client.get("/v2/")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert client.get("/v2/").status_code == 200
    r = client.get("/v2/x/tags/list")
    assert r.status_code == 502 and r.text == "<html>bad gateway</html>"
    assert reg.count("GET", "/v2/") == 3 and reg.count(path_prefix="/v2/x/") == 1
    assert reg.requests[0].headers["ACCEPT"] == reg.requests[0].headers["accept"]
    reg.reset_log()
    assert reg.requests == []


def test_warning_and_ratelimit_headers(reg: FakeRegistry, client: httpx.Client) -> None:
    """Warning on every response; rate-limit headers on manifest GET/HEAD, decremented by GET only."""
    _image(reg, "lib")
    reg.warning = "deprecated"
    reg.ratelimit = (100, 2)
    assert client.get("/v2/").headers["Warning"] == '299 - "deprecated"'
    head = client.head("/v2/lib/manifests/v1")
    assert head.headers["ratelimit-remaining"] == "2;w=21600"
    get = client.get("/v2/lib/manifests/v1")
    assert get.headers["ratelimit-limit"] == "100;w=21600" and get.headers["ratelimit-remaining"] == "1;w=21600"
    client.get("/v2/lib/manifests/v1")
    assert client.get("/v2/lib/manifests/v1").status_code == 429


def test_redirect_to_mirror_never_gets_authorization() -> None:
    """Blob GETs redirect to the mirror on 127.0.0.2; httpx does not forward Authorization there."""
    with FakeRegistry(basic_auth=("u", "p")) as reg, BlobMirror(reg) as mirror:
        digest = reg.put_blob("r", b"blob-bytes")
        reg.redirect_blobs_to = mirror.url
        assert mirror.host == "127.0.0.2"
        with httpx.Client(auth=("u", "p"), follow_redirects=True) as client:
            r = client.get(f"{reg.url}/v2/r/blobs/{digest}")
            assert r.status_code == 200 and r.content == b"blob-bytes"
            assert r.history[0].status_code == 307
            part = client.get(f"{reg.url}/v2/r/blobs/{digest}", headers={"Range": "bytes=5-"})
            assert part.status_code == 206 and part.content == b"bytes"
        assert reg.requests[0].headers.get("authorization", "").startswith("Basic ")
        assert mirror.count("GET", "/blobs/") == 2
        assert all("authorization" not in rec.headers for rec in mirror.requests)
        assert httpx.get(f"{mirror.url}/blobs/{digest}").status_code == 403


def test_basic_auth_challenge(reg: FakeRegistry) -> None:
    """basic_auth answers 401 with a Basic challenge until credentials are given."""
    reg.basic_auth = ("alice", "secret")
    r = httpx.get(f"{reg.url}/v2/")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="fake"'
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert httpx.get(f"{reg.url}/v2/", auth=("alice", "secret")).status_code == 200


def _bearer_token(reg: FakeRegistry, challenge: str, auth: tuple[str, str] | None = None) -> dict[str, Any]:
    fields = dict(part.split("=", 1) for part in challenge[len("Bearer ") :].split('",'))
    fields = {k: v.strip('"') for k, v in fields.items()}
    params = [("service", fields["service"])] + [("scope", s) for s in fields.get("scope", "").split() if s]
    r = httpx.get(fields["realm"], params=params, auth=auth)
    assert r.status_code == 200
    return r.json()


def test_bearer_token_flow_expiry_and_insufficient_scope() -> None:
    """Bearer: challenge with scope, token endpoint, insufficient_scope re-challenge, server-side expiry."""
    with FakeRegistry(bearer={"service": "fake-svc", "expires_in": 30}, basic_auth=("u", "p")) as reg:
        _image(reg, "team/app")
        r = httpx.get(f"{reg.url}/v2/team/app/tags/list")
        challenge = r.headers["WWW-Authenticate"]
        assert r.status_code == 401
        assert challenge == f'Bearer realm="{reg.url}/token",service="fake-svc",scope="repository:team/app:pull"'
        assert httpx.get(f"{reg.url}/token", params={"scope": "repository:team/app:pull"}).status_code == 401
        doc = _bearer_token(reg, challenge, auth=("u", "p"))
        assert doc["token"] == doc["access_token"] and doc["expires_in"] == 30
        bearer = {"Authorization": f"Bearer {doc['token']}"}
        assert httpx.get(f"{reg.url}/v2/team/app/tags/list", headers=bearer).json()["tags"] == ["v1"]
        push = httpx.post(f"{reg.url}/v2/team/app/blobs/uploads/", headers=bearer)
        assert push.status_code == 401
        assert 'error="insufficient_scope"' in push.headers["WWW-Authenticate"]
        assert 'scope="repository:team/app:pull,push"' in push.headers["WWW-Authenticate"]
        mount = httpx.post(
            f"{reg.url}/v2/team/app/blobs/uploads/", params={"mount": sha256_digest(b"x"), "from": "other/repo"}
        )
        assert 'scope="repository:team/app:pull,push repository:other/repo:pull"' in mount.headers["WWW-Authenticate"]
        reg.expire_tokens()
        expired = httpx.get(f"{reg.url}/v2/team/app/tags/list", headers=bearer)
        assert expired.status_code == 401 and 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
        assert httpx.post(f"{reg.url}/token", data={"grant_type": "password"}).status_code == 404


def test_chunked_request_body_and_chunked_responses() -> None:
    """The registry de-chunks streamed request bodies and can answer with chunked encoding."""
    with FakeRegistry(chunked_responses=True) as reg, httpx.Client(base_url=reg.url) as client:
        data = b"abc" * 5000
        r = client.post("/v2/s/blobs/uploads/")
        r = client.patch(r.headers["Location"], content=iter([data[:7000], data[7000:]]))
        assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
        assert reg.requests[-1].headers["transfer-encoding"] == "chunked"
        r = client.put(_add_digest(r.headers["Location"], sha256_digest(data)))
        assert r.status_code == 201
        got = client.get(f"/v2/s/blobs/{sha256_digest(data)}")
        assert got.content == data and got.headers["Transfer-Encoding"] == "chunked"


def test_proxy_cut_mid_body_then_range_retry() -> None:
    """A cut response gives a client-side transport error; a Range retry through the proxy completes the blob."""
    blob = hashlib.sha512(b"seed").digest() * 2000
    with FakeRegistry() as reg, FaultProxy(reg.url, seed=1) as proxy, httpx.Client(base_url=proxy.url) as client:
        digest = reg.put_blob("r", blob)
        proxy.cut_response_after(50_000, match=lambda m, p: m == "GET" and "/blobs/" in p)
        received = bytearray()
        with pytest.raises(httpx.TransportError), client.stream("GET", f"/v2/r/blobs/{digest}") as resp:
            assert resp.status_code == 200 and resp.headers["Content-Length"] == str(len(blob))
            for piece in resp.iter_raw():
                received += piece
        assert len(received) == 50_000
        assert proxy.pending_faults() == 0
        rest = client.get(f"/v2/r/blobs/{digest}", headers={"Range": f"bytes={len(received)}-"})
        assert rest.status_code == 206
        assert hashlib.sha256(bytes(received) + rest.content).hexdigest() == digest.split(":")[1]
        assert proxy.count("GET", "/v2/r/blobs/") == 2 and reg.count("GET", "/v2/r/blobs/") == 2


def test_proxy_flip_byte_changes_exactly_one_byte() -> None:
    """flip_byte XORs one byte at the given offset, once."""
    blob = bytes(range(256)) * 50
    with FakeRegistry() as reg, FaultProxy(reg.url) as proxy, httpx.Client(base_url=proxy.url) as client:
        digest = reg.put_blob("r", blob)
        proxy.flip_byte(1234)
        bad = client.get(f"/v2/r/blobs/{digest}").content
        diffs = [i for i, (a, b) in enumerate(zip(bad, blob, strict=True)) if a != b]
        assert diffs == [1234] and bad[1234] == blob[1234] ^ 0xFF
        assert client.get(f"/v2/r/blobs/{digest}").content == blob


def test_proxy_upload_rewrites_location_and_cut_request() -> None:
    """Absolute upstream Locations are rewritten to the proxy; a cut request body gives a client error."""
    data = b"z" * 100_000
    with (
        FakeRegistry(absolute_locations=True) as reg,
        FaultProxy(reg.url) as proxy,
        httpx.Client(base_url=proxy.url) as client,
    ):
        r = client.post("/v2/u/blobs/uploads/")
        loc = r.headers["Location"]
        assert loc.startswith(proxy.url + "/v2/u/blobs/uploads/")
        proxy.cut_request_after(10_000, match=lambda m, p: m == "PATCH", forward_partial=True)
        with pytest.raises(httpx.TransportError):
            client.patch(loc, content=data, headers={"Content-Range": f"0-{len(data) - 1}"})
        deadline = time.monotonic() + 30
        while True:  # the fake stores the forwarded part when its side of the cut connection ends: poll for it
            status = client.get(loc)
            assert status.status_code == 204
            end = int(status.headers["Range"].split("-")[1])
            if end == 9_999 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert end == 9_999
        r = client.put(_add_digest(status.headers["Location"], sha256_digest(data)), content=data[end + 1 :])
        assert r.status_code == 201 and r.headers["Location"].startswith(proxy.url)
        assert reg.get_blob(sha256_digest(data)) == data


def test_proxy_range_modes_status_faults_and_chunked_upstream() -> None:
    """range_mode refuse/ignore, injected statuses, rule callbacks and de-chunking of a chunked upstream."""
    blob = b"0123456789" * 1000
    with (
        FakeRegistry(chunked_responses=True) as reg,
        FaultProxy(reg.url, range_mode="refuse") as proxy,
        httpx.Client(base_url=proxy.url) as client,
    ):
        digest = reg.put_blob("r", blob)
        assert client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=10-"}).status_code == 416
        proxy.range_mode = "ignore"
        full = client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=10-"})
        assert full.status_code == 200 and full.content == blob
        proxy.range_mode = "pass"
        part = client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=10-"})
        assert part.status_code == 206 and part.content == blob[10:]
        proxy.fail_next(2, 503, retry_after=2)
        assert [client.get("/v2/").status_code for _ in range(3)] == [503, 503, 200]
        proxy.rule = lambda rec: Fault("status", status=500, body="boom") if rec.method == "DELETE" else None
        assert client.delete(f"/v2/r/blobs/{digest}").text == "boom"
        proxy.rule = None
        proxy.cut_response_after(3000)
        with pytest.raises(httpx.TransportError):
            client.get(f"/v2/r/blobs/{digest}")
        assert client.get(f"/v2/r/blobs/{digest}").content == blob


def test_proxy_seeded_chaos_is_reproducible() -> None:
    """The same seed gives the same sequence of injected faults."""
    blob = b"q" * 20_000

    def run(seed: int) -> list[bool]:
        with FakeRegistry() as reg, FaultProxy(reg.url, seed=seed) as proxy, httpx.Client(base_url=proxy.url) as c:
            digest = reg.put_blob("r", blob)
            proxy.chaos(0.5)
            outcome = []
            for _ in range(12):
                try:
                    outcome.append(c.get(f"/v2/r/blobs/{digest}").content == blob)
                except httpx.TransportError:
                    outcome.append(False)
            return outcome

    first = run(7)
    assert first == run(7)
    assert True in first and False in first


def test_concurrent_clients_and_stop_closes_everything() -> None:
    """Parallel keep-alive clients work; after stop() nothing listens and no server thread is left."""
    reg = FakeRegistry()
    proxy = FaultProxy(reg.url)
    digest = reg.put_blob("r", b"x" * 5000)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with httpx.Client(base_url=proxy.url) as c:
                for _ in range(10):
                    assert c.get(f"/v2/r/blobs/{digest}").content == b"x" * 5000
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    idle = httpx.Client(base_url=proxy.url)
    assert idle.get("/v2/").status_code == 200
    proxy.stop()
    reg.stop()
    idle.close()
    for server in (reg, proxy):
        with pytest.raises(OSError), socket.create_connection((server.host, server.port), timeout=1):
            pass
    assert not [t for t in threading.enumerate() if t.name in ("FakeRegistry", "FaultProxy") and t.is_alive()]


def test_token_endpoint_oauth_post_and_refresh() -> None:
    """With bearer["oauth"] the token endpoint accepts the OAuth2 password and refresh_token grants."""
    with FakeRegistry(bearer={"oauth": True, "token_field": "access_token"}, basic_auth=("u", "p")) as reg:
        form = {
            "grant_type": "password",
            "username": "u",
            "password": "p",
            "service": "fake",
            "scope": "registry:catalog:*",
        }
        doc = httpx.post(f"{reg.url}/token", data=form).json()
        assert "token" not in doc and doc["refresh_token"]
        assert httpx.get(
            f"{reg.url}/v2/_catalog", headers={"Authorization": f"Bearer {doc['access_token']}"}
        ).is_success
        again = httpx.post(
            f"{reg.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": doc["refresh_token"], "scope": "registry:catalog:*"},
        ).json()
        assert again["access_token"] != doc["access_token"]
        bad = httpx.post(f"{reg.url}/token", data={**form, "password": "nope"})
        assert bad.status_code == 401
