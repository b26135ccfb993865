"""Seed a registry with demo content that looks like a real image repository, through ocinb's own push API.

Everything is generated from a fixed seed (no internet, same digests on every run): multi-arch indexes
with BuildKit attestation entries, versions sharing base layers, config history, an SBOM and cosign-style
signatures as referrers, a single-platform image and a repository with hundreds of tags. Re-running is
fast because blobs already present are skipped.
"""

from __future__ import annotations

import asyncio
import contextvars
import gzip
import hashlib
import io
import json
import random
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import media_types as mt
from .cache import ContentCache
from .client import AsyncClient, AsyncRepository
from .digest import Digest
from .endpoints import PutResult
from .models import Descriptor, ImageManifest
from .ops.push import Layer

if TYPE_CHECKING:
    from .sync_client import Client

__all__ = [
    "APP_PLATFORMS",
    "APP_REPO",
    "APP_VERSIONS",
    "COSIGN_SIG",
    "LAYERED_REPO",
    "MANY_TAGS_COUNT",
    "MANY_TAGS_REPO",
    "SPDX_JSON",
    "TOOLS_REPO",
    "DemoInfo",
    "many_tag_names",
    "seed",
    "seed_async",
]

APP_REPO = "demo/app"
TOOLS_REPO = "demo/tools"
MANY_TAGS_REPO = "demo/many-tags"
LAYERED_REPO = "demo/layered"
APP_VERSIONS = ("1.0", "1.1", "2.0")
APP_TAGS = (*APP_VERSIONS, "latest")
APP_PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/arm/v7")
MANY_TAGS_COUNT = 300
SPDX_JSON = "application/spdx+json"
COSIGN_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
KIB = 1024
MIB = 1024 * KIB

_EPOCH = datetime(2024, 1, 8, 9, 30, tzinfo=UTC)
_RELEASED = {"1.0": _EPOCH + timedelta(days=20), "1.1": _EPOCH + timedelta(days=75),
             "2.0": _EPOCH + timedelta(days=160)}
# Compressed-size targets per architecture (bytes): the base OS is big and shared by every version.
_BASE_SIZE = {"amd64": 3 * MIB + 420 * KIB, "arm64": 3 * MIB + 130 * KIB, "arm": 2 * MIB + 700 * KIB}
_RUNTIME_SIZE = {"3.11": 1 * MIB + 600 * KIB, "3.12": 1 * MIB + 900 * KIB}
_RUNTIME_OF = {"1.0": "3.11", "1.1": "3.11", "2.0": "3.12"}
_DEPS_OF = {"1.0": "deps-1", "1.1": "deps-1", "2.0": "deps-2"}
_DEPS_SIZE = {"deps-1": 760 * KIB, "deps-2": 1 * MIB + 80 * KIB}
_APP_SIZE = {"1.0": 96 * KIB, "1.1": 112 * KIB, "2.0": 180 * KIB}


@dataclass
class DemoInfo:
    """What :func:`seed` put in the registry, with the numbers of the run."""

    registry: str
    repositories: dict[str, list[str]]
    image: str
    platforms: list[str]
    digests: dict[str, str] = field(default_factory=dict)
    referrers: dict[str, list[str]] = field(default_factory=dict)
    blobs: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def reference(self, ref: str | None = None) -> str:
        """A full reference on the demo registry, ``demo/app:2.0`` by default."""
        return f"{self.registry}/{ref or self.image}"

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"seeded {self.registry} in {self.seconds:.1f} s ({self.blobs} blobs, {self.bytes / MIB:.1f} MiB)"]
        for repo, tags in self.repositories.items():
            shown = ", ".join(tags[:6]) + (f", … ({len(tags)} tags)" if len(tags) > 6 else "")
            lines.append(f"  {self.registry}/{repo}: {shown}")
        return "\n".join(lines)


def _rng(*parts: str) -> random.Random:
    """A random generator seeded by name, so every run produces the same bytes."""
    return random.Random(hashlib.sha256("/".join(("ocinb-demo", *parts)).encode()).digest())


def _layer(size: int, files: Sequence[str], *parts: str) -> tuple[bytes, str]:
    """A real gzipped tar of ``files`` filled with seeded random bytes, about ``size`` compressed; (blob, diff_id)."""
    rng = _rng(*parts)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        weights = [rng.random() + 0.2 for _ in files]
        total = sum(weights)
        for name, weight in zip(files, weights, strict=True):
            data = rng.randbytes(max(64, int(size * weight / total)))
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(_EPOCH.timestamp())
            info.mode = 0o755 if "/bin/" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    return blob, "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def _stamp(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _platform_parts(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        out["variant"] = parts[2]
    return out


def _app_image(version: str, platform: str) -> tuple[dict[str, Any], list[Layer]]:
    """Config and layers of demo/app ``version`` for ``platform`` (base, runtime and deps shared)."""
    plat = _platform_parts(platform)
    arch = plat["architecture"]
    runtime, deps = _RUNTIME_OF[version], _DEPS_OF[version]
    built = _RELEASED[version]
    base = _layer(_BASE_SIZE[arch], ["bin/sh", "lib/libc.so.6", "usr/lib/libssl.so.3", "usr/share/zoneinfo/UTC",
                                     "var/lib/dpkg/status"], "base", arch)
    rt = _layer(_RUNTIME_SIZE[runtime], [f"usr/local/bin/python{runtime}", f"usr/local/lib/python{runtime}/os.py",
                                         f"usr/local/lib/libpython{runtime}.so"], "runtime", runtime, arch)
    dep = _layer(_DEPS_SIZE[deps], ["app/.venv/lib/site-packages/httpx/__init__.py",
                                    "app/.venv/lib/site-packages/pydantic_core/_core.so"], deps, arch)
    app = _layer(_APP_SIZE[version], ["app/server.py", "app/static/bundle.js", "app/VERSION"], "app", version, arch)
    steps: list[tuple[str, bool, datetime]] = [
        ("/bin/sh -c #(nop) ADD file:4d1e0b8c2f3a in / ", False, _EPOCH),
        ('/bin/sh -c #(nop)  CMD ["bash"]', True, _EPOCH),
        (f"ENV PYTHON_VERSION={runtime}.4", True, built - timedelta(hours=3)),
        (f"RUN /bin/sh -c set -eux; apt-get update; install-python {runtime} # buildkit", False,
         built - timedelta(hours=3)),
        ("WORKDIR /app", True, built - timedelta(minutes=9)),
        ("COPY requirements.lock . # buildkit", True, built - timedelta(minutes=9)),
        ("RUN /bin/sh -c pip install --no-cache-dir -r requirements.lock # buildkit", False,
         built - timedelta(minutes=8)),
        ("COPY . /app # buildkit", False, built - timedelta(minutes=1)),
        ("EXPOSE map[8080/tcp:{}]", True, built - timedelta(minutes=1)),
        ('ENTRYPOINT ["python" "-m" "server"]', True, built - timedelta(minutes=1)),
        ('CMD ["--port" "8080"]', True, built - timedelta(minutes=1)),
    ]
    history = []
    for created_by, empty, when in steps:
        entry: dict[str, Any] = {"created": _stamp(when), "created_by": created_by}
        if empty:
            entry["empty_layer"] = True
        if "buildkit" in created_by:
            entry["comment"] = "buildkit.dockerfile.v0"
        history.append(entry)
    config = {
        "created": _stamp(built),
        "author": "Demo Team <demo@example.com>",
        **plat,
        "config": {
            "User": "1000:1000",
            "ExposedPorts": {"8080/tcp": {}},
            "Env": ["PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
                    f"PYTHON_VERSION={runtime}.4", f"APP_VERSION={version}"],
            "Entrypoint": ["python", "-m", "server"],
            "Cmd": ["--port", "8080"],
            "WorkingDir": "/app",
            "Labels": {
                "org.opencontainers.image.title": "demo-app",
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.source": "https://example.com/demo/app",
                "org.opencontainers.image.licenses": "Apache-2.0",
                "maintainer": "demo@example.com",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [base[1], rt[1], dep[1], app[1]]},
        "history": history,
    }
    layers = [Layer(blob, mt.OCI_LAYER_GZIP) for blob, _ in (base, rt, dep, app)]
    return config, layers


def _attestation(version: str, platform: str, subject: str) -> tuple[dict[str, Any], list[Layer]]:
    """A BuildKit attestation manifest body: an SPDX and an SLSA provenance in-toto statement for ``subject``."""
    statement_base = {"_type": "https://in-toto.io/Statement/v0.1",
                      "subject": [{"name": f"pkg:docker/{APP_REPO}@{version}?platform={platform.replace('/', '%2F')}",
                                   "digest": {"sha256": subject.split(":", 1)[1]}}]}
    spdx = {**statement_base, "predicateType": "https://spdx.dev/Document",
            "predicate": {"spdxVersion": "SPDX-2.3", "name": f"demo-app-{version}", "packages": [
                {"name": "python", "versionInfo": _RUNTIME_OF[version]}, {"name": "httpx", "versionInfo": "0.27.0"}]}}
    slsa = {**statement_base, "predicateType": "https://slsa.dev/provenance/v0.2",
            "predicate": {"builder": {"id": "https://github.com/docker/buildx"}, "buildType":
                          "https://mobyproject.org/buildkit@v1",
                          "metadata": {"buildFinishedOn": _stamp(_RELEASED[version])}}}
    layers = [
        Layer(json.dumps(spdx, sort_keys=True).encode(), IN_TOTO,
              {"in-toto.io/predicate-type": str(spdx["predicateType"])}),
        Layer(json.dumps(slsa, sort_keys=True).encode(), IN_TOTO,
              {"in-toto.io/predicate-type": str(slsa["predicateType"])}),
    ]
    config = {"architecture": "unknown", "os": "unknown", "config": {},
              "rootfs": {"type": "layers", "diff_ids": []}}
    return config, layers


_TALLY: contextvars.ContextVar[dict[str, int]] = contextvars.ContextVar("ocinb_demo_tally")


def _count(descs: Sequence[Descriptor]) -> None:
    """Remember the blobs of this seeding run (digest → size) for :class:`DemoInfo`."""
    tally = _TALLY.get(None)
    if tally is not None:
        tally.update((d.digest, d.size) for d in descs)


async def _push_untagged(repo: AsyncRepository, config: dict[str, Any] | bytes, layers: Sequence[Layer], *,
                         config_media_type: str = mt.OCI_CONFIG, artifact_type: str | None = None,
                         subject: Descriptor | None = None, annotations: dict[str, str] | None = None,
                         media_type: str = mt.OCI_MANIFEST) -> PutResult:
    """Push blobs, then the manifest by its own digest (no tag), as BuildKit does for index entries."""
    config_bytes = config if isinstance(config, bytes) else json.dumps(config, separators=(",", ":")).encode()
    pushed = await asyncio.gather(repo.blobs.upload(config_bytes),
                                  *(repo.blobs.upload(layer.source) for layer in layers))
    _count(pushed)
    config_desc = Descriptor(media_type=config_media_type, digest=pushed[0].digest, size=pushed[0].size)
    layer_descs = [Descriptor(media_type=layer.media_type, digest=d.digest, size=d.size,
                              annotations=dict(layer.annotations) if layer.annotations else None)
                   for layer, d in zip(layers, pushed[1:], strict=True)]
    manifest = ImageManifest(schema_version=2, media_type=media_type, artifact_type=artifact_type,
                             config=config_desc, layers=layer_descs, subject=subject, annotations=annotations)
    digest = str(Digest.of(manifest.to_json_bytes()))
    return await repo.push_manifest(digest, manifest, media_type)


async def _push_app_version(repo: AsyncRepository, version: str) -> tuple[PutResult, list[str]]:
    """One multi-arch release: platform images, their attestation manifests, the index, then its referrers."""
    images = await asyncio.gather(*(_push_untagged(repo, *_app_image(version, p)) for p in APP_PLATFORMS))
    attestations = await asyncio.gather(*(
        _push_untagged(repo, *_attestation(version, p, img.digest)) for img, p in zip(images, APP_PLATFORMS,
                                                                                       strict=True)))
    entries: list[Descriptor] = [img.descriptor for img in images]
    platforms: list[str | None] = list(APP_PLATFORMS)
    for att, img in zip(attestations, images, strict=True):
        entries.append(att.descriptor.model_copy(update={"annotations": {
            mt.ATTESTATION_DIGEST_ANNOTATION: img.digest, mt.ATTESTATION_ANNOTATION: mt.ATTESTATION_MANIFEST}}))
        platforms.append("unknown/unknown")
    annotations = {mt.ANNOTATION_VERSION: version, mt.ANNOTATION_CREATED: _stamp(_RELEASED[version]),
                   mt.ANNOTATION_SOURCE: "https://example.com/demo/app",
                   mt.ANNOTATION_REVISION: hashlib.sha1(version.encode()).hexdigest()}
    index = await repo.push_index(version, entries, platforms=platforms, annotations=annotations)
    return index, await _push_referrers(repo, version, index.descriptor)


async def _push_referrers(repo: AsyncRepository, version: str, subject: Descriptor) -> list[str]:
    """An SBOM of the image, a signature of the image and a signature of the SBOM, all with ``subject``."""
    sbom_doc = {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": f"{APP_REPO}:{version}",
                "dataLicense": "CC0-1.0", "creationInfo": {"created": _stamp(_RELEASED[version]),
                                                          "creators": ["Tool: ocinb-demo"]},
                "packages": [{"SPDXID": "SPDXRef-python", "name": "python", "versionInfo": _RUNTIME_OF[version]},
                             {"SPDXID": "SPDXRef-app", "name": "demo-app", "versionInfo": version}]}
    created = {mt.ANNOTATION_CREATED: _stamp(_RELEASED[version] + timedelta(minutes=5))}
    sbom = await _push_untagged(
        repo, mt.EMPTY_DATA, [Layer(json.dumps(sbom_doc, sort_keys=True).encode(), SPDX_JSON,
                                    {mt.ANNOTATION_TITLE: "sbom.spdx.json"})],
        config_media_type=mt.OCI_EMPTY, artifact_type=SPDX_JSON, subject=subject, annotations=created)
    out = [str(sbom.digest)]
    for target in (subject, sbom.descriptor):
        payload = {"critical": {"identity": {"docker-reference": f"{APP_REPO}:{version}"},
                                "image": {"docker-manifest-digest": target.digest},
                                "type": "cosign container image signature"}, "optional": None}
        body = json.dumps(payload, sort_keys=True).encode()
        sig_annotations = {**created, "dev.cosignproject.cosign/signature": hashlib.sha256(body).hexdigest()}
        sig = await _push_untagged(
            repo, mt.EMPTY_DATA, [Layer(body, "application/vnd.dev.cosign.simplesigning.v1+json")],
            config_media_type=mt.OCI_EMPTY, artifact_type=COSIGN_SIG, subject=target, annotations=sig_annotations)
        out.append(str(sig.digest))
    return out


def _small_image(name: str, version: str, platform: str, size: int, when: datetime,
                 docker: bool = False) -> tuple[dict[str, Any], list[Layer]]:
    """A one- or two-layer image (busybox-like tools, nightly builds)."""
    plat = _platform_parts(platform)
    base = _layer(size, ["bin/busybox", "etc/ssl/certs/ca-certificates.crt"], name, "base", plat["architecture"])
    tool = _layer(size // 6, [f"usr/local/bin/{name.rsplit('/', 1)[-1]}"], name, version)
    config = {"created": _stamp(when), **plat,
              "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"],
                         "Labels": {"org.opencontainers.image.version": version}},
              "rootfs": {"type": "layers", "diff_ids": [base[1], tool[1]]},
              "history": [{"created": _stamp(when - timedelta(days=30)),
                           "created_by": "ADD rootfs.tar.gz / # buildkit"},
                          {"created": _stamp(when), "created_by": f"COPY {name} /usr/local/bin/ # buildkit"},
                          {"created": _stamp(when), "created_by": 'CMD ["/bin/sh"]', "empty_layer": True}]}
    layer_type = mt.DOCKER_LAYER_GZIP if docker else mt.OCI_LAYER_GZIP
    return config, [Layer(base[0], layer_type), Layer(tool[0], layer_type)]


async def _push_tools(repo: AsyncRepository) -> dict[str, str]:
    """demo/tools: a single-platform Docker v2 image under two tags."""
    config, layers = _small_image("tools", "3.19", "linux/amd64", 900 * KIB, _EPOCH + timedelta(days=40), docker=True)
    result = await repo.push_image("3.19", config, layers, config_media_type=mt.DOCKER_CONFIG,
                                   media_type=mt.DOCKER_MANIFEST)
    pushed = (await repo.manifests.get(result.digest)).as_manifest()
    _count([pushed.config, *pushed.layers])
    await repo.push_manifest("latest", await repo.manifests.get(result.digest))
    return {f"{TOOLS_REPO}:3.19": result.digest, f"{TOOLS_REPO}:latest": result.digest}


def _tar(entries: Sequence[tuple[Any, ...]], *parts: str) -> tuple[bytes, str]:
    """A gzipped tar of ``(kind, name, arg)`` entries (file with a size of seeded bytes, text with its bytes, dir,
    symlink, hardlink, whiteout, opaque), with the spec's whiteout names; (blob, diff_id)."""
    raw = io.BytesIO()
    rng = _rng("layered", *parts)
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mtime = int(_EPOCH.timestamp())
            data = b""
            if kind in ("file", "text"):
                data = rng.randbytes(rest[0]) if kind == "file" else rest[0]
                info.size, info.mode = len(data), 0o755 if "/bin/" in name else 0o644
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind in ("symlink", "hardlink"):
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname, info.mode = rest[0], 0o777 if kind == "symlink" else 0o755
            else:
                head, _, base = name.rpartition("/")
                info.name = f"{head}/.wh.{base}" if kind == "whiteout" else f"{name}/.wh..wh..opq"
            tar.addfile(info, io.BytesIO(data) if data else None)
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, compresslevel=1, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


LAYERED_STEPS: list[tuple[str, list[tuple[Any, ...]]]] = [
    ("ADD rootfs.tar.gz /", [
        ("dir", "bin"), ("file", "bin/busybox", 300 * KIB), ("hardlink", "bin/sh", "bin/busybox"),
        ("hardlink", "bin/ls", "bin/busybox"), ("dir", "etc"), ("file", "etc/os-release", 200),
        ("symlink", "usr/lib/os-release", "../../etc/os-release"), ("dir", "var/cache/apk"),
        ("file", "var/cache/apk/APKINDEX.tar.gz", 400 * KIB), ("file", "var/cache/apk/openssl.apk", 250 * KIB)]),
    ("RUN download model and build deps", [
        ("dir", "opt/model"), ("file", "opt/model/weights.bin", 1536 * KIB), ("dir", "tmp/build"),
        ("file", "tmp/build/deps.tar", 700 * KIB), ("file", "tmp/build/compile.log", 60 * KIB),
        ("symlink", "opt/model/current", "weights.bin")]),
    ("RUN rm -rf /tmp/build && fine-tune model", [
        ("whiteout", "tmp/build"), ("file", "opt/model/weights.bin", 1536 * KIB), ("file", "etc/model.conf", 300)]),
    ("RUN apk update (cache emptied, rebuilt)", [
        ("opaque", "var/cache/apk"), ("file", "var/cache/apk/APKINDEX.tar.gz", 410 * KIB),
        ("file", "usr/bin/app", 120 * KIB), ("symlink", "usr/local/bin/app", "/usr/bin/app")]),
]
"""demo/layered: an image with something to find. Layer 2 deletes what layer 1 added (/tmp/build), overwrites
a big file (/opt/model/weights.bin); layer 3 empties /var/cache/apk with an opaque whiteout; hardlinks (busybox)
and symlinks throughout."""


def _apk_db(**packages: str) -> bytes:
    return "".join(f"P:{n}\nV:{v}\nA:x86_64\nL:MIT\n\n" for n, v in packages.items()).encode()


LAYERED_VERSIONS: dict[str, tuple[list[tuple[Any, ...]], list[str]]] = {
    "1.1": ([("file", "var/cache/apk/APKINDEX.tar.gz", 410 * KIB),
             ("file", "usr/bin/app", 120 * KIB), ("symlink", "usr/local/bin/app", "/usr/bin/app"),
             ("file", "usr/share/app/legacy.dat", 30 * KIB),
             ("text", "lib/apk/db/installed", _apk_db(busybox="1.36.1-r15", openssl="3.1.4-r1", app="1.1.0-r0"))],
            ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=classic"]),
    "2.0": ([("file", "var/cache/apk/APKINDEX.tar.gz", 410 * KIB),
             ("file", "usr/bin/app", 150 * KIB), ("symlink", "usr/local/bin/app", "/usr/bin/app"),
             ("file", "usr/bin/app-helper", 40 * KIB), ("file", "usr/share/app/templates.dat", 24 * KIB),
             ("text", "lib/apk/db/installed", _apk_db(busybox="1.36.1-r15", openssl="3.1.7-r0", app="2.0.0-r0",
                                                      zlib="1.3.1-r0"))],
            ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=fast", "APP_WORKERS=4"]),
}
"""demo/layered 1.1 and 2.0: 1.0's first three layers (the same blobs) and a top layer of their own. 2.0
upgrades openssl and the app, adds zlib, a helper and templates, removes legacy.dat and changes APP_MODE; no
whiteouts, so a diff of the two never reads the shared base."""


async def _push_layered(repo: AsyncRepository) -> dict[str, str]:
    layers = [_tar(entries, str(i)) for i, (_, entries) in enumerate(LAYERED_STEPS)]
    when = _EPOCH + timedelta(days=60)
    config = {"created": _stamp(when), "architecture": "amd64", "os": "linux",
              "config": {"Cmd": ["/usr/bin/app"], "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
              "history": [{"created": _stamp(when + timedelta(minutes=i)), "created_by": step}
                          for i, (step, _) in enumerate(LAYERED_STEPS)]}
    result = await repo.push_image("1.0", config, [Layer(blob, mt.OCI_LAYER_GZIP) for blob, _ in layers])
    pushed = await repo.manifests.get(result.digest)
    _count([pushed.as_manifest().config, *pushed.as_manifest().layers])
    digests = {"1.0": str(result.digest)}
    for n, (version, (top, env)) in enumerate(LAYERED_VERSIONS.items()):
        later = when + timedelta(days=30 * (n + 1))
        mine = [*layers[:3], _tar(top, "top", version)]
        steps = [step for step, _ in LAYERED_STEPS[:3]] + [f"RUN apk add app={version}"]
        config = {"created": _stamp(later), "architecture": "amd64", "os": "linux",
                  "config": {"Cmd": ["/usr/bin/app"], "Env": env},
                  "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in mine]},
                  "history": [{"created": _stamp(later + timedelta(minutes=i)), "created_by": step}
                              for i, step in enumerate(steps)]}
        result = await repo.push_image(version, config, [Layer(blob, mt.OCI_LAYER_GZIP) for blob, _ in mine])
        pushed = await repo.manifests.get(result.digest)
        _count([pushed.as_manifest().config, pushed.as_manifest().layers[-1]])
        digests[version] = str(result.digest)
    return digests


def many_tag_names(count: int = MANY_TAGS_COUNT) -> list[str]:
    """Release and nightly tags, like a busy CI repository: ``0.M.P`` releases then ``nightly-YYYYMMDD``."""
    releases = [f"0.{minor}.{patch}" for minor in range(1, 11) for patch in range(10)]
    nightly = [f"nightly-{(_EPOCH + timedelta(days=i)).strftime('%Y%m%d')}" for i in range(count)]
    return (releases + nightly)[:count]


async def _push_many_tags(repo: AsyncRepository, count: int) -> list[str]:
    """demo/many-tags: ``count`` tags over three builds (cheap: only manifests are PUT per tag)."""
    builds = []
    for i in range(3):
        when = _EPOCH + timedelta(days=10 * i)
        config, layers = _small_image("many", f"build-{i}", "linux/amd64", 64 * KIB, when)
        builds.append(await _push_untagged(repo, config, layers))
    manifests = [await repo.manifests.get(b.digest) for b in builds]
    names = many_tag_names(count)
    await asyncio.gather(*(repo.manifests.put(tag, manifests[i % 3]) for i, tag in enumerate(names)))
    return names


async def seed_async(client: AsyncClient, *, many_tags: int = MANY_TAGS_COUNT) -> DemoInfo:
    """Seed ``client``'s registry with demo/app, demo/tools and demo/many-tags; see the module docstring."""
    started = time.monotonic()
    tally: dict[str, int] = {}
    token = _TALLY.set(tally)
    try:
        return await _seed(client, many_tags, started, tally)
    finally:
        _TALLY.reset(token)


async def _seed(client: AsyncClient, many_tags: int, started: float, tally: dict[str, int]) -> DemoInfo:
    info = DemoInfo(registry=client.registry, repositories={}, image=f"{APP_REPO}:2.0", platforms=list(APP_PLATFORMS))
    app = client.repo(APP_REPO)
    for version in APP_VERSIONS:
        index, refs = await _push_app_version(app, version)
        info.digests[f"{APP_REPO}:{version}"] = index.digest
        info.referrers[f"{APP_REPO}:{version}"] = refs
    latest = await app.manifests.get(info.digests[f"{APP_REPO}:{APP_VERSIONS[-1]}"])
    await app.push_manifest("latest", latest)
    info.digests[f"{APP_REPO}:latest"] = str(latest.digest)
    info.repositories[APP_REPO] = list(APP_TAGS)
    info.digests.update(await _push_tools(client.repo(TOOLS_REPO)))
    info.repositories[TOOLS_REPO] = ["3.19", "latest"]
    info.repositories[MANY_TAGS_REPO] = await _push_many_tags(client.repo(MANY_TAGS_REPO), many_tags)
    layered = await _push_layered(client.repo(LAYERED_REPO))
    info.digests.update({f"{LAYERED_REPO}:{v}": d for v, d in layered.items()})
    info.repositories[LAYERED_REPO] = list(layered)
    info.blobs, info.bytes = len(tally), sum(tally.values())
    info.seconds = time.monotonic() - started
    return info


def seed(client_or_address: str | Client | AsyncClient, *, many_tags: int = MANY_TAGS_COUNT) -> DemoInfo:
    """Seed a registry (an address like ``127.0.0.1:5000``, a :class:`Client` or an :class:`AsyncClient`)."""
    from ._sync import run_sync
    from .sync_client import Client

    if isinstance(client_or_address, str):
        client = AsyncClient(client_or_address, cache=ContentCache(enabled=False))
        try:
            return run_sync(seed_async(client, many_tags=many_tags))
        finally:
            run_sync(client.aclose())
    aclient = client_or_address.aio if isinstance(client_or_address, Client) else client_or_address
    return run_sync(seed_async(aclient, many_tags=many_tags))


def notebook_env(address: str, image: str) -> dict[str, str]:
    """The environment variables the notebooks' parameters cells read, pointed at a seeded demo registry."""
    return {"OCINB_REGISTRY": address, "OCINB_IMAGE": image, "OCINB_TAGS": "", "OCINB_PLATFORM": "linux/amd64",
            "OCINB_INSIDE_IMAGE": LAYERED_REPO + ":1.0", "OCINB_DIFF_A": LAYERED_REPO + ":1.1",
            "OCINB_DIFF_B": LAYERED_REPO + ":2.0"}
