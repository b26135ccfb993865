"""``ocinb.doctor`` against the real registry 2.8.2 (its known gaps reported as they are, each checked against raw
requests made here), TLS registries with certificates made here (valid, expired), authenticated registries, the
CLI's exit codes, and the spec-faithful fake for what 2.8.2 cannot show."""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import itertools
import json
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pandas as pd
import pytest
from _fakeregistry import BlobMirror, FakeRegistry
from _tokenserver import TokenServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import ocinb
from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.cli import main
from ocinb.frames import DOCTOR_COLUMNS, doctor_frame
from ocinb.ops.doctor import RESULTS, DoctorCheck
from ocinb.testing import LocalRegistry
from ocinb.views import DoctorReport

CONFIG = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
_names = itertools.count(1)


def client(address: str, **kwargs: Any) -> ocinb.Client:
    return ocinb.Client(address, cache=ContentCache(enabled=False), docker_config=False, environment=False, **kwargs)


def row(report: pd.DataFrame, check: str) -> pd.Series:
    """The one row of ``check``."""
    found = report[report["check"] == check]
    assert len(found) == 1, f"{check}: {len(found)} rows in {report['check'].tolist()}"
    return found.iloc[0]


def results(report: pd.DataFrame) -> dict[str, str]:
    return dict(zip(report["check"], report["result"], strict=True))


def seed(address: str, name: str) -> dict[str, str]:
    """Three image tags, an OCI index and a Docker manifest list: what the read checks look at."""
    with client(address) as c:
        repo = c.repo(name)
        pushed = {t: repo.push_image(t, {**CONFIG, "config": {"Labels": {"t": t}}}, [f"layer {t}".encode()]).digest
                  for t in ("1.0", "1.1", "latest")}
        amd = repo.push_image("d-amd64", CONFIG, [b"docker layer"], media_type=mt.DOCKER_MANIFEST,
                              config_media_type=mt.DOCKER_CONFIG)
        repo.push_index("oci-index", [repo.push_image("arm", {**CONFIG, "architecture": "arm64"}, [b"arm"])],
                        platforms=["linux/arm64"])
        repo.push_index("docker-list", [amd], platforms=["linux/amd64"], media_type=mt.DOCKER_MANIFEST_LIST)
    return pushed


@pytest.fixture(scope="module")
def seeded(registry: LocalRegistry) -> tuple[str, dict[str, str]]:
    name = f"t/doctor-seeded-{next(_names)}"
    return name, seed(registry.address, name)


def test_real_registry_gaps_reported_as_they_are(registry: LocalRegistry, seeded: tuple[str, dict[str, str]]) -> None:
    """2.8.2: tags ignore ``n`` and send no ``Link``, no referrers API; each row agrees with a raw request."""
    name, pushed = seeded
    with client(registry.address) as c:
        report = c.doctor(name)
        state = c.state
    assert isinstance(report, DoctorReport)
    assert list(report.columns) == list(DOCTOR_COLUMNS)
    assert set(report["result"]) <= set(RESULTS)
    assert not report.failed, report[report["result"] == "fail"].to_dict("records")
    got = results(report)
    assert got["api_version"] == "pass"
    assert got["tls"] == "info" and "plain HTTP" in row(report, "tls").evidence
    assert got["tags_n"] == "warn" and got["tags_link"] == "warn"
    assert got["referrers_api"] == "warn" and got["referrers_filter"] == "skip"
    assert got["head_digest"] == "pass" and got["blob_range"] == "pass"
    assert got["accept_oci_index"] == "pass" and got["accept_docker_list"] == "pass"
    assert got["catalog"] == "pass" and got["write"] == "skip"
    assert got["rate_limit"] == "info" and got["token_lifetime"] == "skip"

    with httpx.Client(base_url=registry.url, trust_env=False) as raw:
        ping = raw.get("/v2/")
        assert f"Docker-Distribution-API-Version: {ping.headers['docker-distribution-api-version']}" in row(
            report, "api_version").evidence
        all_tags = raw.get(f"/v2/{name}/tags/list").json()["tags"]
        one = raw.get(f"/v2/{name}/tags/list", params={"n": 1})
        assert len(one.json()["tags"]) == len(all_tags) > 1 and "link" not in one.headers
        assert f"n=1 → {len(all_tags)} tags (of {len(all_tags)})" in row(report, "tags_n").evidence
        assert "no Link" in row(report, "tags_link").evidence
        assert f"largest page: {len(all_tags)} tags" in row(report, "tags_page_max").evidence

        head = raw.head(f"/v2/{name}/manifests/latest", headers={"Accept": ", ".join(mt.MANIFEST_ACCEPT)})
        assert head.headers["docker-content-digest"] == pushed["latest"]
        assert pushed["latest"] in row(report, "head_digest").evidence
        referrers = raw.get(f"/v2/{name}/referrers/{pushed['latest']}")
        assert referrers.status_code == 404
        assert f"→ {referrers.status_code}" in row(report, "referrers_api").evidence
        config = raw.get(f"/v2/{name}/manifests/latest", headers={"Accept": mt.OCI_MANIFEST}).json()["config"]
        ranged = raw.get(f"/v2/{name}/blobs/{config['digest']}", headers={"Range": "bytes=0-0"})
        assert ranged.status_code == 206
        assert f"Content-Range: {ranged.headers['content-range']}" in row(report, "blob_range").evidence
        narrow = raw.get(f"/v2/{name}/manifests/oci-index",
                         headers={"Accept": f"{mt.OCI_MANIFEST}, {mt.DOCKER_MANIFEST}"})
        assert f"Accept image manifests only → {narrow.status_code}" in row(report, "accept_oci_index").evidence
        listed = raw.get(f"/v2/{name}/manifests/docker-list", headers={"Accept": mt.DOCKER_MANIFEST_LIST})
        assert listed.headers["content-type"] == mt.DOCKER_MANIFEST_LIST
        assert f"→ 200 {mt.DOCKER_MANIFEST_LIST}" in row(report, "accept_docker_list").evidence

        assert state.api_version == "registry/2.0"
        assert state.tags_n_honoured is False and state.tags_link is False
        assert state.tags_max_page == len(all_tags)
        assert state.referrers_api is False and state.head_digest is True and state.blob_range is True
        assert state.catalog is True and state.blob_redirect == ""


def _pushed_by_log(registry: LocalRegistry, start: int, repos: tuple[str, ...]) -> tuple[set[str], set[str], set[str]]:
    """(manifest digests, blob digests, tags) the registry's access log shows were created in ``repos``."""
    manifests, blobs, tags = set(), set(), set()
    for entry in registry.access_log()[start:]:
        path = urlsplit(entry.path)
        m = re.fullmatch(r"/v2/(.+)/(manifests|blobs/uploads)/(.*)", path.path)
        if m is None or m.group(1) not in repos or entry.status != 201:
            continue
        query = parse_qs(path.query)
        if m.group(2) == "manifests" and entry.method == "PUT":
            ref = unquote(m.group(3))
            (manifests if ref.startswith("sha256:") else tags).add(ref)
        elif entry.method in ("PUT", "POST"):
            blobs.update(query.get("digest", []) + query.get("mount", []))
    return manifests, blobs, tags


def test_real_registry_write_checks_and_cleanup(registry: LocalRegistry, seeded: tuple[str, dict[str, str]]) -> None:
    """2.8.2: single POST answers 202, delete by tag 400, no OCI-Subject; mount and deletes work; and afterwards
    nothing the doctor pushed (as the access log lists it) is left."""
    name, _ = seeded
    scratch = f"t/doctor-scratch-{next(_names)}"
    start = len(registry.access_log())
    with client(registry.address) as c:
        report = c.doctor(name, write=scratch)
        state = c.state
    assert not report.failed, report[report["result"] == "fail"].to_dict("records")
    got = results(report)
    assert got["upload_monolithic"] == "pass" and got["upload_chunked"] == "pass"
    assert got["upload_single_post"] == "warn" and "202" in row(report, "upload_single_post").evidence
    assert got["delete_by_tag"] == "warn" and "400" in row(report, "delete_by_tag").evidence
    assert got["oci_subject"] == "warn" and got["mount"] == "pass" and got["manifest_delete"] == "pass"
    assert got["chunk_min_length"] == "info" and got["cleanup"] == "pass"
    assert state.single_post is False and state.delete_by_tag is False and state.mount is True
    assert state.oci_subject is False and state.chunk_min_length == 0 and state.manifest_delete is True

    with httpx.Client(base_url=registry.url, trust_env=False) as raw:
        post = raw.post(f"/v2/{scratch}-raw/blobs/uploads/", params={"digest": mt.EMPTY_DIGEST}, content=mt.EMPTY_DATA,
                        headers={"Content-Type": "application/octet-stream"})
        assert post.status_code == 202  # what the report says 2.8.2 does with a single POST
        raw.delete(httpx.URL(registry.url).join(post.headers["location"]))
        assert raw.delete(f"/v2/{name}/manifests/no-such-tag").status_code == 400

        manifests, blobs, tags = _pushed_by_log(registry, start, (scratch, f"{scratch}-mount"))
        assert len(manifests) == 1 and len(tags) == 1 and len(blobs) >= 4  # the referrer by digest, the image by tag
        reported = {p.split("@", 1)[1] for p in report.attrs["pushed"] if "@" in p}
        assert manifests | blobs <= reported
        accept = {"Accept": ", ".join(mt.MANIFEST_ACCEPT)}
        for repo in (scratch, f"{scratch}-mount"):
            for digest in reported:
                assert raw.head(f"/v2/{repo}/manifests/{digest}", headers=accept).status_code == 404
                assert raw.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
            listed = raw.get(f"/v2/{repo}/tags/list")
            assert listed.status_code == 404 or not (listed.json().get("tags") or [])
        assert report.attrs["left"] == []
        assert {p.split(":", 1)[1] for p in report.attrs["pushed"] if "@" not in p} == {t for t in tags}


def test_fake_with_every_capability() -> None:
    """The fake, because 2.8.2 cannot show these: tag pagination with Link, the referrers API with
    OCI-Filters-Applied, a 201 single POST, OCI-Chunk-Min-Length, OCI-Subject, delete by tag, blob redirects
    to storage, and Docker Hub's rate-limit headers (which count manifest GETs, HEADs free)."""
    with FakeRegistry(tag_page_size=2, chunk_min_length=1500, ratelimit=(100, 100)) as fake, \
            BlobMirror(fake) as mirror:
        fake.redirect_blobs_to = mirror.url
        with client(fake.address) as c:
            repo = c.repo("r/app")
            for t in ("1.0", "1.1", "latest"):
                repo.push_image(t, {**CONFIG, "os.version": t}, [f"layer {t}".encode()])
            fake.reset_log()
            report = c.doctor("r/app", write="r/scratch")
            state = c.state
        got = results(report)
        assert not report.failed, report[report["result"] == "fail"].to_dict("records")
        for check in ("api_version", "tags_n", "tags_link", "head_digest", "referrers_api", "referrers_filter",
                      "blob_range", "upload_monolithic", "upload_single_post", "upload_chunked", "mount",
                      "oci_subject", "delete_by_tag", "manifest_delete", "cleanup", "catalog"):
            assert got[check] == "pass", (check, row(report, check).evidence)
        assert "OCI-Chunk-Min-Length: 1500" in row(report, "chunk_min_length").evidence
        assert "OCI-Filters-Applied: artifactType" in row(report, "referrers_filter").evidence
        assert _origin(mirror.url) in row(report, "blob_redirect").evidence
        assert mirror.count("GET") >= 1 and "sig=" not in row(report, "blob_redirect").evidence
        limit, remaining = fake.ratelimit  # type: ignore[misc]
        manifest_gets = sum(1 for r in fake.requests if r.method == "GET" and "/manifests/" in r.path)
        assert remaining == 100 - manifest_gets  # HEADs spent nothing
        assert f"ratelimit-limit {limit} per 21600 s, ratelimit-remaining {remaining}" in row(
            report, "rate_limit").evidence
        assert got["rate_limit"] == "info"
        assert state.tags_n_honoured is True and state.tags_link is True and state.referrers_api is True
        assert state.referrers_filtering is True and state.single_post is True and state.chunk_min_length == 1500
        assert state.oci_subject is True and state.delete_by_tag is True and state.mount is True
        assert state.blob_redirect == _origin(mirror.url)
        for repo_name in ("r/scratch", "r/scratch-mount"):
            assert fake.tags(repo_name) == []
            for item in report.attrs["pushed"]:
                if "@" in item:
                    digest = item.split("@", 1)[1]
                    assert fake.get_manifest(repo_name, digest) is None
                    assert not fake.has_blob(repo_name, digest)
        assert fake.upload_sessions() == 0


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_fake_rate_limit_nearly_spent_warns() -> None:
    """The fake, because 2.8.2 sends no rate-limit headers: little quota left is a warning, with what remains."""
    with FakeRegistry(ratelimit=(100, 8)) as fake:
        with client(fake.address) as c:
            c.repo("r/app").push_image("latest", CONFIG, [b"x"])
            report = c.doctor("r/app")
        r = row(report, "rate_limit")
        assert r.result == "warn"
        assert f"ratelimit-remaining {fake.ratelimit[1]}" in r.evidence  # type: ignore[index]


def _certificates(tmp: Path, *, expired: bool) -> tuple[Path, Path, Path, dt.datetime]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem, not after)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocinb doctor test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=30))
          .not_valid_after(now + dt.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=90)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=10)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return *paths, not_after


def _tls_registry(cert: Path, key: Path) -> LocalRegistry:
    return LocalRegistry(extra_config={"http": {"tls": {"certificate": str(cert), "key": str(key)}}})


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[tuple[LocalRegistry, Path, dt.datetime]]:
    ca, cert, key, not_after = _certificates(tmp_path, expired=False)
    with _tls_registry(cert, key) as reg:
        yield reg, ca, not_after


def test_tls_registry_valid_certificate(tls_registry: tuple[LocalRegistry, Path, dt.datetime]) -> None:
    """The real registry serving TLS with a certificate made here: protocol and expiry as an ssl handshake of
    the test's own sees them."""
    reg, ca, not_after = tls_registry
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", reg.port)) as sock, \
            ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        version = tls.version()
    with client(reg.address, insecure=False, verify=str(ca)) as c:
        report = c.doctor()
    r = row(report, "tls")
    assert r.result == "pass", r.evidence
    assert r.evidence.startswith(f"{version}, ")
    assert f"valid until {not_after:%Y-%m-%d %H:%M} UTC" in r.evidence
    assert row(report, "api_version").result == "pass"


def test_tls_untrusted_chain_fails(tls_registry: tuple[LocalRegistry, Path, dt.datetime]) -> None:
    """Without the private CA the chain leads nowhere trusted: a fail that says so."""
    reg, _, _ = tls_registry
    with client(reg.address, insecure=False) as c:
        report = c.doctor()
    r = row(report, "tls")
    assert r.result == "fail" and "local issuer" in r.evidence and "verify=" in r.advice
    assert report.failed


def test_tls_expired_certificate_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An expired certificate is a fail, with the date it expired; ``ocinb doctor`` exits 1."""
    ca, cert, key, not_after = _certificates(tmp_path, expired=True)
    with _tls_registry(cert, key) as reg:
        with client(reg.address, insecure=False, verify=str(ca)) as c:
            report = c.doctor()
        r = row(report, "tls")
        assert r.result == "fail"
        assert "certificate has expired" in r.evidence
        assert f"to {not_after:%Y-%m-%d %H:%M} UTC" in r.evidence
        assert "renew" in r.advice
        assert row(report, "api_version").result == "fail"
        code = main(["doctor", reg.address, "--ca-file", str(ca), "-f", "json"])
        out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {"check": "tls", "result": "fail"}.items() <= next(o for o in out if o["check"] == "tls").items()


def test_cli_doctor(registry: LocalRegistry, seeded: tuple[str, dict[str, str]],
                    capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 0 with a table, CSV or JSON when nothing fails; 1 when the registry does not answer."""
    name, _ = seeded
    code = main(["doctor", registry.address, name, "-f", "json"])
    records = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {r["check"]: r["result"] for r in records}["tags_n"] == "warn"
    assert set(records[0]) == set(DOCTOR_COLUMNS)
    assert main(["doctor", registry.address, name]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == list(DOCTOR_COLUMNS) and "referrers_api" in table
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert main(["doctor", f"127.0.0.1:{closed}", "-f", "csv"]) == 1
    out = capsys.readouterr().out
    assert "\napi_version,fail," in out
    assert main(["doctor", registry.address, "Not/Valid"]) == 2


def test_module_level_doctor_shares_state(registry: LocalRegistry, seeded: tuple[str, dict[str, str]],
                                          cache: ContentCache) -> None:
    """``ocinb.doctor`` runs on the default client, which keeps what was learnt for later calls."""
    name, _ = seeded
    report = ocinb.doctor(registry.address, name)
    assert isinstance(report, ocinb.DoctorReport) and report.attrs["repository"] == name
    assert ocinb.default_client(registry.address).state.tags_n_honoured is False


def test_basic_auth_registry(basic_registry: LocalRegistry, basic_credentials: tuple[str, str]) -> None:
    """Basic auth: the scheme and realm reported, anonymous pull refused, the password nowhere in the report."""
    user, password = basic_credentials
    with client(basic_registry.address, username=user, password=password) as c:
        c.repo("t/basic").push_image("latest", CONFIG, [b"basic"])
        report = c.doctor("t/basic")
    assert not report.failed
    assert row(report, "auth").evidence == "Basic, realm=ocinb-registry"
    assert "401" in row(report, "anonymous_pull").evidence
    for text in (report._repr_html_(), repr(report), report.to_csv(), json.dumps(report.attrs, default=str)):
        assert password not in text
    with client(basic_registry.address) as anonymous:
        refused = anonymous.doctor()
    assert row(refused, "api_version").result == "warn" and "needs credentials" in row(refused, "api_version").evidence


def test_token_registry(token_registry: LocalRegistry, token_server: TokenServer,
                        basic_credentials: tuple[str, str]) -> None:
    """Bearer: realm and service as the registry's challenge names them, and the token server's expires_in."""
    user, password = basic_credentials
    with client(token_registry.address, username=user, password=password) as c:
        c.repo("t/token").push_image("latest", CONFIG, [b"token"])
        report = c.doctor("t/token")
    challenge = httpx.get(f"{token_registry.url}/v2/", timeout=10).headers["www-authenticate"]
    realm = re.search(r'realm="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]
    service = re.search(r'service="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]
    assert row(report, "auth").evidence == f"Bearer, realm={realm}, service={service}"
    assert row(report, "token_lifetime").result == "pass"
    assert row(report, "token_lifetime").evidence == f"expires_in={token_server.expires_in} s"
    assert password not in report._repr_html_()


def test_report_card_is_escaped_and_has_no_script() -> None:
    """Registry strings in evidence and advice are escaped; the card counts each result; no JavaScript."""
    checks = [DoctorCheck("tags_n", "fail", "<script>alert(1)</script>", "a & b"),
              DoctorCheck("tls", "pass", "TLSv1.3", ""), DoctorCheck("catalog", "info", "<img src=x onerror=y>")]
    report = DoctorReport.of(doctor_frame(checks))
    report.attrs["registry"] = "reg<istry>"
    html = report._repr_html_()
    assert "<script" not in html.lower() and "<img" not in html and "onerror=y>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a &amp; b" in html and "reg&lt;istry&gt;" in html
    assert "fail 1" in html and "pass 1" in html and "info 1" in html and "warn 0" in html
    assert report.failed and not DoctorReport.of(doctor_frame(checks[1:])).failed
    assert isinstance(report[report["result"] == "fail"], DoctorReport)
    with pytest.raises(ValueError, match="result is one of"):
        DoctorCheck("x", "ok", "")
    assert ocinb.views.render(report) == html  # the notebook renderer of ocinb objects agrees


def test_unreachable_registry_skips_the_rest() -> None:
    """Nothing listening: one fail that says so, everything after it skipped (no exception)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with client(f"127.0.0.1:{closed}") as c:
        report = c.doctor("some/repo", write="some/scratch")
    assert results(report)["api_version"] == "fail" and "did not answer" in row(report, "api_version").evidence
    assert set(report[~report["check"].isin(["tls", "api_version"])]["result"]) == {"skip"}
    assert io.StringIO(report.to_csv()).getvalue().count("\n") == len(report) + 1


def test_deletes_disabled_reports_what_is_left(seeded: tuple[str, dict[str, str]]) -> None:
    """A registry with deletes off (``storage.delete.enabled: false``): the write checks still run, the deletes
    are warnings, and ``cleanup`` names every manifest and tag left behind, as a HEAD of each confirms."""
    with LocalRegistry(delete_enabled=False) as reg:
        seed(reg.address, "t/app")
        with client(reg.address) as c:
            report = c.doctor("t/app", write="t/scratch")
        assert not report.failed, report[report["result"] == "fail"].to_dict("records")
        assert row(report, "manifest_delete").result == "warn" and "405" in row(report, "manifest_delete").evidence
        assert row(report, "cleanup").result == "warn"
        left = report.attrs["left"]
        assert left and set(left) <= set(report.attrs["pushed"])
        with httpx.Client(base_url=reg.url, trust_env=False) as raw:
            for item in left:
                repo, sep, ref = item.partition("@")
                if sep:
                    accept = {"Accept": mt.OCI_MANIFEST}
                    statuses = {raw.head(f"/v2/{repo}/manifests/{ref}", headers=accept).status_code,
                                raw.head(f"/v2/{repo}/blobs/{ref}").status_code}
                    assert 200 in statuses, item
                else:
                    repo, _, tag = item.partition(":")
                    assert tag in raw.get(f"/v2/{repo}/tags/list").json()["tags"]
            assert all(item in left for item in report.attrs["pushed"])  # nothing could be deleted


def test_later_calls_start_from_what_the_doctor_learnt(registry: LocalRegistry,
                                                       seeded: tuple[str, dict[str, str]]) -> None:
    """After the doctor found that 2.8.2 answers a single POST with 202, the same client's next upload does not
    try one: the access log shows a POST without ``digest=`` and then the PUT."""
    name, _ = seeded
    scratch = f"t/doctor-later-{next(_names)}"
    with client(registry.address) as c:
        c.doctor(name, write=scratch)
        assert c.state.single_post is False
        start = len(registry.access_log())
        data = b"uploaded after the doctor"
        c.repo(scratch).blobs.upload(data)
    sent = [(e.method, urlsplit(e.path)) for e in registry.access_log()[start:] if "/blobs/uploads/" in e.path]
    posts = [parts for method, parts in sent if method == "POST"]
    assert len(posts) == 1 and "digest" not in parse_qs(posts[0].query)
    assert [method for method, _ in sent] == ["POST", "PUT"]
