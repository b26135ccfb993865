"""Hostile registry content: only documented exceptions (``OcinbError`` subclasses), and every HTML view
escapes what the registry sent.

All of it needs tests/_fakeregistry.py: the CNCF registry validates what it stores and never serves
crafted error bodies, oversized or deeply nested manifests, or repository names outside the grammar.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _fakeregistry import OCI_INDEX, OCI_MANIFEST, FakeRegistry, sha256_digest

import ocinb
from ocinb import views
from ocinb.cache import ContentCache
from ocinb.errors import OcinbError, RegistryError

XSS = "<script>alert(1)</script><img src=x onerror=\"alert('2')\">"
CONTROL = "bell\x07 esc\x1b[31m red nul\x00 cr\r lf\n del\x7f"
BIG = "<b>" + "x" * (1024 * 1024)
CONFIG_MT = "application/vnd.oci.image.config.v1+json"
FORBIDDEN = ("<script", "<img", "<b>x")


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    reg = FakeRegistry(enforce_accept=False)
    yield reg
    reg.stop()


def _client(reg: FakeRegistry, tmp_path: Path) -> ocinb.AsyncClient:
    return ocinb.AsyncClient(reg.address, docker_config=False, environment=False,
                             cache=ContentCache(tmp_path / "cache"), retry=ocinb._http.transport.RetryPolicy(
                                 retries=1, backoff=0.01))


def _image(reg: FakeRegistry, repo: str, tag: str, annotations: dict[str, str], labels: dict[str, str]) -> str:
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                      "config": {"Labels": labels, "Cmd": [XSS, CONTROL]},
                      "history": [{"created_by": XSS + CONTROL, "comment": BIG}]}).encode()
    layer = b"layer"
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": CONFIG_MT, "digest": reg.put_blob(repo, cfg), "size": len(cfg)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": reg.put_blob(repo, layer),
                       "size": len(layer), "annotations": annotations}],
           "annotations": annotations}
    return reg.put_manifest(repo, tag, doc)


def _check_html(html: str, where: str) -> None:
    low = html.lower()
    for bad in FORBIDDEN:
        assert bad not in low, f"{where}: unescaped {bad!r}"
    assert "\x1b" not in html and "\x00" not in html, f"{where}: raw control characters"


async def _outcome(aw: Awaitable[Any]) -> tuple[str, Any]:
    """('ok', value) or ('error', exc) for a documented error; anything else propagates and fails the test."""
    try:
        return "ok", await aw
    except OcinbError as exc:
        return "error", exc


def test_hostile_annotations_labels_history_are_escaped_in_every_view(fake: FakeRegistry, tmp_path: Path) -> None:
    """Annotations, labels and history holding ``<script>``, quotes, control characters and 1 MB strings."""
    hostile = {XSS: XSS, "ctl": CONTROL, "big": BIG, "q": "\"'`&"}
    _image(fake, "team/app", "v1", hostile, hostile)
    _image(fake, "team/app", "x" * 128, hostile, {})
    _image(fake, "team/app", "_.-A9", {}, hostile)
    htmls: list[tuple[str, str]] = []

    async def run() -> None:
        async with _client(fake, tmp_path) as c:
            repo = c.repo("team/app")
            m = await repo.get_manifest("v1")
            htmls.append(("Manifest", m._repr_html_()))
            htmls.append(("ImageManifest", views.render(m.as_manifest())))
            config = await repo.config("v1")
            htmls.append(("ImageConfig", views.render(config)))
            view = await c.inspect("team/app:v1")
            htmls.append(("inspect", view._repr_html_()))
            for name, df in (("tags", await c.tags("team/app", resolve=True)),
                             ("layers", await c.layers("team/app:v1")),
                             ("history", await c.history("team/app:v1"))):
                htmls.append((f"table:{name}", views.table(df)))
                if hasattr(df, "_repr_html_") and df.attrs:
                    htmls.append((f"df:{name}", df.to_html()))
            for tag in ("x" * 128, "_.-A9"):
                htmls.append((f"inspect:{tag}", (await c.inspect(f"team/app:{tag}"))._repr_html_()))

    asyncio.run(run())
    for where, html in htmls:
        if where.startswith("df:"):
            continue  # pandas' own to_html escapes; checked through views.table above
        _check_html(html, where)
    sizes = [len(h) for _, h in htmls]
    print(f"{len(htmls)} HTML views of hostile content, 0 unescaped '<'; largest {max(sizes) // 1024} KiB")
    assert len(htmls) >= 9
    assert any("&lt;script&gt;" in h for _, h in htmls)


def test_hostile_repository_names_in_catalog_are_escaped(fake: FakeRegistry, tmp_path: Path) -> None:
    """Catalog entries outside the name grammar (``<script>``, quotes, control chars): listed or refused
    with a documented error, never rendered raw."""
    for name in (XSS, 'quo"te/\'name', "ctl\x1b[2J/x", "ok/repo"):
        fake.put_blob(name, b"x")

    async def run() -> tuple[tuple[str, Any], tuple[str, Any]]:
        async with _client(fake, tmp_path) as c:
            return await _outcome(c.catalog()), await _outcome(c.catalog_frame())

    (kind, names), (fkind, df) = asyncio.run(run())
    print(f"hostile catalog: catalog() -> {kind} ({names if kind == 'error' else len(names)}), frame -> {fkind}")
    if kind == "ok":
        assert "ok/repo" in names
    if fkind == "ok":
        _check_html(views.table(df), "catalog frame")


@pytest.mark.parametrize(
    "body,ctype",
    [
        (json.dumps({"errors": [{"code": XSS, "message": XSS + CONTROL, "detail": {"x": BIG}}]}), "application/json"),
        (json.dumps({"errors": [{"code": "DENIED", "message": BIG}] * 1000}), "application/json"),
        ("<html><body><h1>502 Bad Gateway</h1>" + XSS + "</body></html>", "text/html"),
        ("\x00\x01\x02binary\xff garbage" * 5000, "application/octet-stream"),
        ('{"errors": "not a list", "message": ' + json.dumps(XSS) + "}", "application/json"),
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        ("", "application/json"),
    ],
    ids=["oci-xss", "huge-list", "html", "binary", "odd-json", "nested", "empty"],
)
@pytest.mark.parametrize("status", [400, 404, 500])
def test_hostile_error_bodies_give_bounded_registry_errors(
    fake: FakeRegistry, tmp_path: Path, body: str, ctype: str, status: int
) -> None:
    """Any error body → a RegistryError naming the status, whose message stays under 4 KiB."""
    fake.fail_next(10, status, body=body, headers={"Content-Type": ctype})

    async def run() -> tuple[str, Any]:
        async with _client(fake, tmp_path) as c:
            return await _outcome(c.repo("team/app").manifests.get("v1"))

    kind, err = asyncio.run(run())
    text = str(err)
    print(f"HTTP {status} with a {len(body)}-byte {ctype} body -> {type(err).__name__} of {len(text)} chars")
    assert kind == "error" and isinstance(err, RegistryError)
    assert err.status == status and f"HTTP {status}" in text
    assert len(text) < 4096 and len(repr(err)) < 8192


def _serve(fake: FakeRegistry, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
    fake.put_blob("team/app", b"{}")
    fake.fail_next(50, 200, body=body, headers={"Content-Type": ctype, **(headers or {})},
                   match=lambda m, p: p.endswith("/manifests/v1"))


def _manifest(**over: Any) -> bytes:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": CONFIG_MT, "digest": sha256_digest(b"{}"), "size": 2},
                           "layers": []}
    doc.update(over)
    return json.dumps(doc).encode()


LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256_digest(b"l")}
CASES: dict[str, tuple[bytes, str]] = {
    "over-4MiB": (_manifest(annotations={"pad": "x" * (5 * 1024 * 1024)}), OCI_MANIFEST),
    "nested-100k": (b'{"schemaVersion":2,"mediaType":"%s","config":' % OCI_MANIFEST.encode()
                    + b"[" * 100_000 + b"]" * 100_000 + b"}", OCI_MANIFEST),
    "nested-objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, OCI_MANIFEST),
    "mediatype-text-html": (_manifest(mediaType="text/html"), "text/html"),
    "mediatype-mismatch": (_manifest(), OCI_INDEX),
    "index-claims-manifest": (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                          "manifests": [XSS]}).encode(), OCI_MANIFEST),
    "negative-size": (_manifest(layers=[{**LAYER, "size": -5}]), OCI_MANIFEST),
    "absurd-size": (_manifest(layers=[{**LAYER, "size": 10**30}]), OCI_MANIFEST),
    "absurd-config-size": (_manifest(config={"mediaType": CONFIG_MT, "digest": sha256_digest(b"{}"),
                                             "size": 2**62}), OCI_MANIFEST),
    "size-not-int": (_manifest(layers=[{**LAYER, "size": "12"}]), OCI_MANIFEST),
    "bad-digest": (_manifest(layers=[{**LAYER, "digest": XSS, "size": 1}]), OCI_MANIFEST),
    "not-json": (b"<html>" + XSS.encode() + b"</html>", OCI_MANIFEST),
    "json-array": (b"[1,2,3]", OCI_MANIFEST),
    "invalid-utf8": (b'{"schemaVersion":2,"x":"\xff\xfe"}', OCI_MANIFEST),
    "schema1": (json.dumps({"schemaVersion": 1, "name": XSS}).encode(),
                "application/vnd.docker.distribution.manifest.v1+prettyjws"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_manifests_raise_only_documented_errors(fake: FakeRegistry, tmp_path: Path, case: str) -> None:
    """Crafted manifests through get, parse, resolve, config, inspect and the frames: OcinbError or success,
    and whatever renders is escaped."""
    body, ctype = CASES[case]
    _serve(fake, body, ctype)
    outcomes: dict[str, str] = {}

    async def run() -> None:
        async with _client(fake, tmp_path) as c:
            repo = c.repo("team/app")
            kind, m = await _outcome(repo.manifests.get("v1"))
            outcomes["get"] = kind
            if kind == "ok":
                try:
                    m.parsed  # noqa: B018 - parsing is the point
                    outcomes["parse"] = "ok"
                except OcinbError:
                    outcomes["parse"] = "error"
                try:
                    _check_html(m._repr_html_(), f"{case}: Manifest")
                    outcomes["html"] = "ok"
                except OcinbError:
                    outcomes["html"] = "error"
            for name, aw in (("resolve", repo.resolve("v1")), ("config", repo.config("v1")),
                             ("layers", c.layers("team/app:v1")), ("inspect", c.inspect("team/app:v1"))):
                kind, value = await _outcome(aw)
                outcomes[name] = kind
                if kind == "ok" and name == "inspect":
                    _check_html(value._repr_html_(), f"{case}: inspect")
                if kind == "ok" and name == "layers":
                    _check_html(views.table(value), f"{case}: layers")

    asyncio.run(run())
    print(f"{case}: {outcomes}")
    # Undocumented exceptions already failed the test inside _outcome; a manifest over the 4 MiB limit is
    # refused while it is read, before anything parses it.
    assert outcomes["get"] == ("error" if case == "over-4MiB" else "ok"), outcomes
    if case in ("over-4MiB", "nested-100k", "nested-objects", "not-json", "json-array", "negative-size",
                "bad-digest", "schema1"):
        assert outcomes["resolve"] == "error", f"{case} must be refused"


def test_gzipped_error_body_keeps_its_oci_codes(fake: FakeRegistry, tmp_path: Path) -> None:
    """A registry or CDN that gzips its JSON errors: the codes must survive (the resume and referrers
    logic reads them). FakeRegistry, since distribution never compresses its errors."""
    import gzip

    body = gzip.compress(json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "nope"}]}).encode())
    fake.fail_next(1, 404, body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async def run() -> RegistryError:
        async with _client(fake, tmp_path) as c:
            with pytest.raises(ocinb.NotFoundError) as err:
                await c.repo("team/app").manifests.get("v1")
            return err.value

    error = asyncio.run(run())
    assert error.codes == ["MANIFEST_UNKNOWN"] and error.message == "nope"


def test_unusable_upload_location_is_a_registry_error(fake: FakeRegistry, tmp_path: Path) -> None:
    """A 202 whose Location cannot be parsed (FakeRegistry: distribution always sends a good one)."""
    fake.fail_next(1, 202, body=b"", headers={"Location": "http://[::1"},
                   match=lambda method, path: method == "POST")

    async def run() -> None:
        async with _client(fake, tmp_path) as c:
            await c.repo("team/app").blobs.upload(b"x" * 10)

    with pytest.raises(RegistryError, match="unusable Location") as err:
        asyncio.run(run())
    assert err.value.code == "BLOB_UPLOAD_INVALID"


def test_upload_opened_without_location_is_a_registry_error(fake: FakeRegistry, tmp_path: Path) -> None:
    """A 202 opening an upload with no Location at all (FakeRegistry: distribution always sends one); the
    spec's end-4a answer carries ``Location``, so there is nowhere to send the data."""
    fake.fail_next(1, 202, body=b"", match=lambda method, path: method == "POST")

    async def run() -> None:
        async with _client(fake, tmp_path) as c:
            await c.repo("team/app").blobs.upload(b"y" * 10)

    with pytest.raises(RegistryError, match="without a Location") as err:
        asyncio.run(run())
    assert err.value.code == "BLOB_UPLOAD_INVALID" and err.value.status == 202
    assert fake.count("PUT") == 0 and fake.count("PATCH") == 0
