"""Two defects found on real images (issue 16), against the real registry 2.8.2.

An image index entry without a ``platform`` (optional in the image-index spec) resolves by its config's
platform, and a signed Docker schema 1 manifest (which distribution re-signs on every GET) verifies by its
JWS payload and then meets the clear "schema 1 is not supported" error everywhere.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from _support import run
from conftest import _start
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import ocinb
from ocinb import cli
from ocinb import media_types as mt
from ocinb.client import AsyncClient
from ocinb.errors import DigestMismatchError, ManifestError, PlatformNotFoundError
from ocinb.manifest import schema1_payload
from ocinb.ops.push import Layer
from ocinb.testing import LocalRegistry

T = TypeVar("T")

NOT_SUPPORTED = "schema 1 manifests are deprecated and not supported"


pytestmark = pytest.mark.usefixtures("isolated_defaults")




def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- an index entry without a platform ---------------------------------------------------------------------


@dataclass
class Image:
    """One pushed image: its manifest digest, config digest, layer digests and build steps."""

    digest: str
    config_digest: str
    layers: list[str]
    steps: list[str]


@dataclass
class Seeded:
    repo: str
    images: dict[str, Image]


def _config(arch: str, variant: str | None, steps: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "architecture": arch, "os": "linux", "created": "2024-01-02T03:04:05Z",
        "rootfs": {"type": "layers", "diff_ids": [sha256(s.encode()) for s in steps]},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": s} for s in steps],
    }
    if variant:
        config["variant"] = variant
    return config


async def _seed(client: AsyncClient, name: str) -> Seeded:
    """Images for linux/amd64 and linux/arm64/v8 and an attestation, and three indexes over them:
    ``solo`` (the amd64 image without a platform, and the attestation), ``mixed`` (arm64 declared, amd64
    without a platform, the attestation) and ``bare`` (arm64 then amd64, neither with a platform)."""
    repo = client.repo(name)
    images: dict[str, Image] = {}
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        steps = [f"ADD rootfs-{arch}.tar /", f"RUN build for {arch}"]
        layers = [f"layer {i} of {arch}".encode() * 100 for i in range(len(steps))]
        pushed = await repo.push_image(arch, _config(arch, variant, steps), layers)
        image = (await repo.manifests.get(pushed.digest)).as_manifest()
        assert [layer.digest for layer in image.layers] == [sha256(data) for data in layers]
        images[arch] = Image(pushed.digest, image.config.digest, [sha256(data) for data in layers], steps)
    att_config = {"architecture": "unknown", "os": "unknown", "rootfs": {"type": "layers", "diff_ids": []}}
    att = await repo.push_image("att", att_config, [b'{"_type":"https://in-toto.io/Statement/v1"}'])
    att_entry = att.descriptor.model_copy(update={"annotations": {
        mt.ATTESTATION_ANNOTATION: mt.ATTESTATION_MANIFEST, mt.ATTESTATION_DIGEST_ANNOTATION: images["amd64"].digest}})
    amd = await repo.manifests.head(images["amd64"].digest)
    arm = await repo.manifests.head(images["arm64"].digest)
    await repo.push_index("solo", [amd, att_entry], platforms=[None, "unknown/unknown"])
    await repo.push_index("mixed", [arm, amd, att_entry], platforms=["linux/arm64/v8", None, "unknown/unknown"])
    await repo.push_index("bare", [arm, amd])
    for tag in ("solo", "mixed", "bare"):  # what was pushed really has entries without a platform
        raw = json.loads((await repo.manifests.get(tag)).data)
        assert [("platform" in e) for e in raw["manifests"]] == {
            "solo": [False, True], "mixed": [True, False, True], "bare": [False, False]}[tag]
    return Seeded(name, images)


@pytest.fixture(scope="module")
def seeded(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return run(registry, tmp_path_factory.mktemp("seed"), lambda c: _seed(c, "defects/no-platform"))


def _skopeo(registry: LocalRegistry, ref: str, arch: str) -> dict[str, Any]:
    """``skopeo inspect`` of ``ref`` as a linux/``arch`` host would pull it (an independent resolver)."""
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.fail("skopeo is not installed (make test installs it: scripts/system-deps.sh)", pytrace=False)
    out = subprocess.run([skopeo, "inspect", "--tls-verify=false", "--override-os", "linux", "--override-arch",
                          arch, f"docker://{registry.address}/{ref}"], capture_output=True, text=True, check=False,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_only_image_entry_without_platform_resolves(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    """``solo``: the one image entry has no platform; with no platform asked it is the only candidate (the
    attestation is never chosen), and no config is fetched to choose it."""
    amd = seeded.images["amd64"]
    registry.reset_request_count()
    resolved = run(registry, tmp_path / "a", lambda c: c.repo(seeded.repo).resolve("solo"))
    assert resolved.manifest.digest == amd.digest and resolved.entry is not None
    assert resolved.entry.digest == amd.digest and resolved.entry.platform is None
    assert registry.request_count("GET", "/blobs/") == 0
    skopeo = _skopeo(registry, f"{seeded.repo}:solo", "amd64")
    assert skopeo["Layers"] == amd.layers and skopeo["Architecture"] == "amd64"

    config = run(registry, tmp_path / "b", lambda c: c.repo(seeded.repo).config("solo"))
    assert (config.os, config.architecture) == ("linux", "amd64")

    ref = f"{registry.address}/{seeded.repo}:solo"
    layers = ocinb.layers(ref)
    assert list(layers["digest"]) == amd.layers == skopeo["Layers"]
    assert list(layers["created_by"]) == amd.steps
    assert layers.attrs["digest"] == amd.digest and layers.attrs["platform"] == "linux/amd64"
    history = ocinb.history(ref)
    assert list(history["created_by"]) == amd.steps and list(history["layer_digest"]) == amd.layers
    view = ocinb.inspect(ref)
    assert view.note is None and view.image_digest == amd.digest and view.platform == "linux/amd64"


def test_cli_reads_entry_without_platform(registry: LocalRegistry, seeded: Seeded,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``ocinb layers`` and ``history`` of ``mixed``, with and without ``--platform``, as JSON records."""
    amd, arm = seeded.images["amd64"], seeded.images["arm64"]
    ref = f"{registry.address}/{seeded.repo}:mixed"
    for extra, want in (([], amd), (["--platform", "linux/amd64"], amd), (["-p", "linux/arm64"], arm)):
        capsys.readouterr()
        assert cli.main(["layers", ref, "--format", "json", *extra]) == 0
        assert [row["digest"] for row in json.loads(capsys.readouterr().out)] == want.layers, extra
        assert cli.main(["history", ref, "--format", "json", *extra]) == 0
        assert [row["created_by"] for row in json.loads(capsys.readouterr().out)] == want.steps, extra
    assert cli.main(["layers", ref, "-p", "linux/s390x"]) == 1
    assert "no manifest for platform linux/s390x" in capsys.readouterr().err


def test_only_image_entry_without_platform_matched_by_config(registry: LocalRegistry, seeded: Seeded,
                                                             tmp_path: Path) -> None:
    """``solo`` asked for linux/amd64: matched by its config's platform; asked for another: not found, and the
    error offers the platform the config declares."""
    amd = seeded.images["amd64"]
    resolved = run(registry, tmp_path / "a", lambda c: c.repo(seeded.repo).resolve("solo", "linux/amd64"))
    assert resolved.manifest.digest == amd.digest
    assert resolved.platform is not None and str(resolved.platform) == "linux/amd64"
    config = run(registry, tmp_path / "b", lambda c: c.repo(seeded.repo).config("solo", "linux/amd64"))
    assert config.architecture == "amd64"
    ref = f"{registry.address}/{seeded.repo}:solo"
    assert list(ocinb.layers(ref, "linux/amd64")["digest"]) == amd.layers
    assert list(ocinb.history(ref, "linux/amd64")["created_by"]) == amd.steps

    with pytest.raises(PlatformNotFoundError) as err:
        run(registry, tmp_path / "c", lambda c: c.repo(seeded.repo).resolve("solo", "linux/arm64"))
    assert err.value.offered == ["linux/amd64"]
    for call in (lambda: ocinb.layers(ref, "linux/arm64"), lambda: ocinb.history(ref, "linux/arm64"),
                 lambda: run(registry, tmp_path / "d", lambda c: c.repo(seeded.repo).config("solo", "linux/arm64"))):
        with pytest.raises(PlatformNotFoundError):
            call()


def test_declared_and_undeclared_entries(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    """``mixed``: a declared linux/arm64/v8 entry and a linux/amd64 image without a platform. A declared match
    fetches no config; linux/amd64 (asked, or the default) is the platform-less entry, as skopeo says."""
    amd, arm = seeded.images["amd64"], seeded.images["arm64"]
    registry.reset_request_count()
    resolved = run(registry, tmp_path / "a", lambda c: c.repo(seeded.repo).resolve("mixed", "linux/arm64"))
    assert resolved.manifest.digest == arm.digest and str(resolved.platform) == "linux/arm64/v8"
    assert registry.request_count("GET", amd.config_digest) == 0  # a declared match needs no config
    assert _skopeo(registry, f"{seeded.repo}:mixed", "arm64")["Layers"] == arm.layers

    for platform in ("linux/amd64", None):
        resolved = run(registry, tmp_path / f"b{platform is None}",
                       lambda c, p=platform: c.repo(seeded.repo).resolve("mixed", p))
        assert resolved.manifest.digest == amd.digest, platform
        assert str(resolved.platform) == "linux/amd64"
    assert _skopeo(registry, f"{seeded.repo}:mixed", "amd64")["Layers"] == amd.layers

    ref = f"{registry.address}/{seeded.repo}:mixed"
    assert list(ocinb.layers(ref)["digest"]) == amd.layers
    assert list(ocinb.layers(ref, "linux/arm64/v8")["digest"]) == arm.layers
    assert list(ocinb.history(ref)["created_by"]) == amd.steps
    assert list(ocinb.history(ref, "linux/arm64")["created_by"]) == arm.steps
    assert ocinb.layers(ref).attrs["platform"] == "linux/amd64"

    with pytest.raises(PlatformNotFoundError) as err:
        ocinb.layers(ref, "linux/s390x")
    assert sorted(err.value.offered) == ["linux/amd64", "linux/arm64/v8"]


def test_entries_without_platform_only(registry: LocalRegistry, seeded: Seeded, tmp_path: Path) -> None:
    """``bare``: arm64 first, then amd64, neither with a platform. Each is found by its config's platform
    (the exact variant too), and with none asked the default linux/amd64 is the second entry, not the first."""
    amd, arm = seeded.images["amd64"], seeded.images["arm64"]
    for platform, want in (("linux/arm64/v8", arm), ("linux/arm64", arm), ("linux/amd64", amd), (None, amd)):
        resolved = run(registry, tmp_path / str(platform).replace("/", "-"),
                       lambda c, p=platform: c.repo(seeded.repo).resolve("bare", p))
        assert resolved.manifest.digest == want.digest, platform
    with pytest.raises(PlatformNotFoundError) as err:
        run(registry, tmp_path / "x", lambda c: c.repo(seeded.repo).resolve("bare", "linux/arm64/v7"))
    assert sorted(err.value.offered) == ["linux/amd64", "linux/arm64/v8"]
    platforms = ocinb.platforms(f"{registry.address}/{seeded.repo}:bare")
    assert list(platforms["platform"]) == ["linux/arm64/v8", "linux/amd64"]


# --- signed Docker schema 1 ----------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _key_id(key: ec.EllipticCurvePublicKey) -> str:
    """libtrust's key ID: the first 240 bits of the SHA-256 of the DER public key, base32, in groups of 4."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


def sign_schema1(payload: bytes, key: ec.EllipticCurvePrivateKey, when: str = "2024-01-02T03:04:05Z") -> bytes:
    """A signed schema 1 manifest of ``payload`` built as Docker's libtrust does (``NewJSONSignature``, ``Sign``
    with ES256, ``PrettySignature``): the payload up to its closing brace, then the ``signatures`` block."""
    close = payload.rstrip().rindex(b"}")
    length = len(payload[:close].rstrip())
    protected = _b64url(json.dumps({"formatLength": length, "formatTail": _b64url(payload[length:]),
                                    "time": when}, separators=(",", ":")).encode())
    der = key.sign(f"{protected}.{_b64url(payload)}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    numbers = key.public_key().public_numbers()
    jwk = {"crv": "P-256", "kid": _key_id(key.public_key()), "kty": "EC",
           "x": _b64url(numbers.x.to_bytes(32, "big")), "y": _b64url(numbers.y.to_bytes(32, "big"))}
    signatures = [{"header": {"jwk": jwk, "alg": "ES256"},
                   "signature": _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")), "protected": protected}]
    block = json.dumps(signatures, indent=3).replace("\n", "\n   ")
    return payload[:length] + b',\n   "signatures": ' + block.encode() + b"\n}"


def schema1_document(name: str, tag: str, layers: list[bytes]) -> bytes:
    """The unsigned payload of a schema 1 manifest over ``layers`` (fsLayers and history newest first)."""
    ids = [hashlib.sha256(f"{name}/{i}".encode()).hexdigest() for i in range(len(layers))]
    history = []
    for i in range(len(layers)):
        v1: dict[str, Any] = {"id": ids[i], "created": f"2016-0{i + 1}-01T00:00:00Z", "os": "linux",
                              "architecture": "amd64",
                              "container_config": {"Cmd": [f"/bin/sh -c #(nop) ADD layer{i}.tar /"]}}
        if i:
            v1["parent"] = ids[i - 1]
        history.append({"v1Compatibility": json.dumps(v1, separators=(",", ":"))})
    doc = {"schemaVersion": 1, "name": name, "tag": tag, "architecture": "amd64",
           "fsLayers": [{"blobSum": sha256(data)} for data in reversed(layers)], "history": history[::-1]}
    return json.dumps(doc, indent=3).encode()


@pytest.fixture(scope="module")
def schema1_registry() -> Iterator[LocalRegistry]:
    """A registry that accepts and serves schema 1 (distribution 2.8 refuses it unless enabled)."""
    reg = _start(LocalRegistry(extra_config={"compatibility": {"schema1": {"enabled": True}}}))
    yield reg
    reg.stop()


@dataclass
class Schema1:
    repo: str
    tag: str
    payload: bytes
    digest: str
    """The registry's digest of the manifest, from its PUT answer."""

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"


def push_schema1(registry: LocalRegistry, repo: str, tag: str = "old") -> Schema1:
    """Upload two gzip layers and PUT a schema 1 manifest signed here, with plain HTTP (no ocinb)."""
    layers = [gzip.compress(f"{repo} layer {i}".encode() * 50, mtime=0) for i in range(2)]
    with httpx.Client(base_url=registry.url, trust_env=False) as http:
        for data in layers:
            started = http.post(f"/v2/{repo}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["Location"]
            answer = http.put(f"{location}{'&' if '?' in location else '?'}digest={sha256(data)}", content=data,
                              headers={"Content-Type": "application/octet-stream"})
            assert answer.status_code == 201, answer.text
        payload = schema1_document(repo, tag, layers)
        body = sign_schema1(payload, ec.generate_private_key(ec.SECP256R1()))
        answer = http.put(f"/v2/{repo}/manifests/{tag}", content=body,
                          headers={"Content-Type": mt.DOCKER_SCHEMA1_SIGNED})
        assert answer.status_code == 201, answer.text  # the registry checked the signature
    digest = answer.headers["Docker-Content-Digest"]
    assert digest == sha256(payload)  # schema 1's digest: the payload without the signatures
    return Schema1(repo, tag, payload, digest)


def raw_get(registry: LocalRegistry, repo: str, ref: str) -> httpx.Response:
    with httpx.Client(base_url=registry.url, trust_env=False) as http:
        answer = http.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": mt.DOCKER_SCHEMA1_SIGNED})
    assert answer.status_code == 200, answer.text
    return answer


def test_signed_schema1_verifies_by_its_payload(schema1_registry: LocalRegistry, tmp_path: Path) -> None:
    """distribution re-signs schema 1 on every GET: the body changes and never hashes to its digest, but the
    payload does, and that is what ocinb verifies."""
    old = push_schema1(schema1_registry, "defects/schema1")
    first, second = raw_get(schema1_registry, old.repo, old.tag), raw_get(schema1_registry, old.repo, old.digest)
    assert first.content != second.content  # re-signed each time
    for answer in (first, second):
        assert answer.headers["Docker-Content-Digest"] == old.digest != sha256(answer.content)
        assert mt.strip_params(answer.headers["Content-Type"]) == mt.DOCKER_SCHEMA1_SIGNED
        assert schema1_payload(answer.content) == old.payload

    async def fetch(c: AsyncClient) -> list[ocinb.Manifest]:
        repo = c.repo(old.repo)
        return [await repo.manifests.get(old.tag), await repo.manifests.get(old.digest),
                await repo.get_manifest(old.tag), await repo.get_manifest(old.tag)]

    for m in run(schema1_registry, tmp_path, fetch):
        assert m.digest == old.digest and m.media_type == mt.DOCKER_SCHEMA1_SIGNED
        assert json.loads(m.data)["fsLayers"] == json.loads(old.payload)["fsLayers"]
    head = run(schema1_registry, tmp_path, lambda c: c.repo(old.repo).manifests.head(old.tag))
    assert head.digest == old.digest and head.media_type == mt.DOCKER_SCHEMA1_SIGNED


def test_schema1_is_a_clear_error_everywhere(schema1_registry: LocalRegistry, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Every table, view and CLI command: the documented "not supported" error, never a digest mismatch."""
    old = push_schema1(schema1_registry, "defects/schema1-everywhere")
    ref = f"{schema1_registry.address}/{old.ref}"
    calls: dict[str, Callable[[], object]] = {
        "layers": lambda: ocinb.layers(ref), "history": lambda: ocinb.history(ref),
        "platforms": lambda: ocinb.platforms(ref), "inspect": lambda: ocinb.inspect(ref),
        "layers-platform": lambda: ocinb.layers(ref, "linux/amd64"),
        "resolve": lambda: run(schema1_registry, tmp_path, lambda c: c.repo(old.repo).resolve(old.tag)),
        "config": lambda: run(schema1_registry, tmp_path, lambda c: c.repo(old.repo).config(old.digest)),
        "pull": lambda: run(schema1_registry, tmp_path, lambda c: c.repo(old.repo).pull(old.tag)),
    }
    for name, call in calls.items():
        try:
            call()
        except ManifestError as exc:
            assert NOT_SUPPORTED in str(exc), name
        else:
            pytest.fail(f"{name} of a schema 1 manifest did not raise")

    for command in (["layers", ref], ["history", ref], ["platforms", ref], ["inspect", ref],
                    ["layers", ref, "--platform", "linux/amd64"]):
        capsys.readouterr()
        assert cli.main(command) == 1, command
        out, err = capsys.readouterr()
        assert NOT_SUPPORTED in err and "digest mismatch" not in err and "Traceback" not in err, (command, err)
        assert out == ""


def test_tampered_schema1_payload_is_a_digest_mismatch(schema1_registry: LocalRegistry, tmp_path: Path) -> None:
    """The stored payload altered on the registry's disk: distribution signs and serves it under the old
    digest, and ocinb refuses it as a digest mismatch (the signatures, the registry's own, prove nothing)."""
    old = push_schema1(schema1_registry, "defects/schema1-tampered")
    assert schema1_registry.storage_dir is not None
    encoded = old.digest.removeprefix("sha256:")
    stored = schema1_registry.storage_dir / "docker/registry/v2/blobs/sha256" / encoded[:2] / encoded / "data"
    assert stored.read_bytes() == old.payload  # distribution keeps the payload and signs it on GET
    tampered = old.payload.replace(b'"architecture": "amd64"', b'"architecture": "arm64"', 1)
    assert tampered != old.payload
    stored.write_bytes(tampered)
    served = raw_get(schema1_registry, old.repo, old.tag)
    assert served.headers["Docker-Content-Digest"] == old.digest
    assert schema1_payload(served.content) == tampered  # signed again, so the JWS itself is valid

    for ident in (old.tag, old.digest):
        with pytest.raises(DigestMismatchError) as err:
            run(schema1_registry, tmp_path, lambda c, i=ident: c.repo(old.repo).manifests.get(i))
        assert err.value.expected == old.digest and err.value.actual == sha256(tampered)
    with pytest.raises(DigestMismatchError):
        ocinb.layers(f"{schema1_registry.address}/{old.ref}")


def test_schema2_served_as_schema1_verifies(schema1_registry: LocalRegistry, tmp_path: Path) -> None:
    """A Docker v2 image asked for as schema 1 only: distribution converts and signs it on each GET; ocinb
    verifies the conversion by its payload against the registry's digest."""
    async def push(c: AsyncClient) -> str:
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(b"x")]},
                  "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "ADD x /"}]}
        pushed = await c.repo("defects/converted").push_image(
            "v2", config, [Layer(gzip.compress(b"x", mtime=0), mt.DOCKER_LAYER_GZIP)],
            config_media_type=mt.DOCKER_CONFIG, media_type=mt.DOCKER_MANIFEST)
        return pushed.digest

    schema2 = run(schema1_registry, tmp_path, push)
    served = raw_get(schema1_registry, "defects/converted", "v2")
    digest = served.headers["Docker-Content-Digest"]
    assert digest != schema2 and digest == sha256(schema1_payload(served.content))
    m = run(schema1_registry, tmp_path,
            lambda c: c.repo("defects/converted").manifests.get("v2", accept=mt.DOCKER_SCHEMA1_SIGNED))
    assert m.media_type == mt.DOCKER_SCHEMA1_SIGNED and m.digest == digest


# --- the payload of a signed schema 1 manifest (no server: crafted JWS a registry would not produce) ---------


KEY = ec.generate_private_key(ec.SECP256R1())
PAYLOAD = schema1_document("team/app", "old", [b"one", b"two"])


def _protected(length: int, tail: bytes) -> str:
    return _b64url(json.dumps({"formatLength": length, "formatTail": _b64url(tail)}).encode())


def _with_signatures(body: bytes, signatures: list[dict[str, Any]]) -> bytes:
    doc = json.loads(body)
    doc["signatures"] = signatures
    return json.dumps(doc).encode()


def test_schema1_payload_is_the_document_without_signatures() -> None:
    signed = sign_schema1(PAYLOAD, KEY)
    assert schema1_payload(signed) == PAYLOAD
    doc = json.loads(signed)
    assert set(doc) - set(json.loads(PAYLOAD)) == {"signatures"}


@pytest.mark.parametrize("case", ["format-length-zero", "keys-after-signatures", "no-signatures",
                                  "disagreeing", "bad-base64", "length-too-long", "length-not-int",
                                  "schema-version-2", "other-media-type"])
def test_unusable_schema1_payload_is_a_manifest_error(case: str) -> None:
    """Forms a registry would not send: each refused with a clear :class:`ManifestError`, never a payload that
    says something the document does not (``formatLength`` 0 with the whole payload as ``formatTail``)."""
    signed = sign_schema1(PAYLOAD, KEY)
    sig = json.loads(signed)["signatures"][0]
    other = json.dumps({**json.loads(PAYLOAD), "architecture": "arm64"}, indent=3).encode()
    bodies = {
        "format-length-zero": _with_signatures(other, [{**sig, "protected": _protected(0, PAYLOAD)}]),
        "keys-after-signatures": signed[:-1] + b',"fsLayers": []}',
        "no-signatures": PAYLOAD,
        "disagreeing": _with_signatures(PAYLOAD, [sig, {**sig, "protected": _protected(3, b"}")}]),
        "bad-base64": _with_signatures(PAYLOAD, [{**sig, "protected": "***"}]),
        "length-too-long": _with_signatures(PAYLOAD, [{**sig, "protected": _protected(10**9, b"}")}]),
        "length-not-int": _with_signatures(PAYLOAD, [{**sig, "protected": _b64url(b'{"formatLength": "9"}')}]),
        "schema-version-2": signed.replace(b'"schemaVersion": 1', b'"schemaVersion": 2', 1),
        "other-media-type": signed[:-1] + b',"mediaType": "' + mt.OCI_MANIFEST.encode() + b'"}',
    }
    with pytest.raises(ManifestError, match="signed schema 1 manifest"):
        schema1_payload(bodies[case])


def test_schema1_recognised_behind_a_generic_content_type() -> None:
    """A registry or file server that says ``application/json``: the JSON's shape names schema 1, so the
    manifest still meets the documented error rather than being read as an OCI manifest."""
    signed = sign_schema1(PAYLOAD, KEY)
    for body, want in ((signed, mt.DOCKER_SCHEMA1_SIGNED), (PAYLOAD, mt.DOCKER_SCHEMA1)):
        m = ocinb.Manifest.from_bytes(body, "application/json; charset=utf-8")
        assert m.media_type == want
        with pytest.raises(ManifestError, match=NOT_SUPPORTED):
            m.parsed  # noqa: B018 - parsing is the point
