"""ocinb.demo.seed against the real registry, checked by independent reads with plain httpx (not ocinb)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ocinb.demo import APP_PLATFORMS, COSIGN_SIG, MANY_TAGS_COUNT, SPDX_JSON, DemoInfo, many_tag_names, seed
from ocinb.testing import LocalRegistry

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([OCI_INDEX, "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])


@pytest.fixture(scope="module")
def demo(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoInfo]:
    """The seeded registry, with the default clients' cache in a temporary directory for this module only."""
    with pytest.MonkeyPatch.context() as mp:
        if "OCINB_CACHE_DIR" not in os.environ:
            mp.setenv("OCINB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "demo-cache"))
        yield seed(registry.address)


@pytest.fixture(scope="module")
def http(registry: LocalRegistry) -> Any:
    with httpx.Client(base_url=registry.url, trust_env=False, timeout=30) as client:
        yield client


def manifest(http: httpx.Client, repo: str, ref: str) -> tuple[dict[str, Any], str]:
    reply = http.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
    assert reply.status_code == 200, (repo, ref, reply.text)
    assert reply.headers["docker-content-digest"] == "sha256:" + hashlib.sha256(reply.content).hexdigest()
    return reply.json(), reply.headers["docker-content-digest"]


def blob(http: httpx.Client, repo: str, digest: str) -> bytes:
    reply = http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert reply.status_code == 200
    assert "sha256:" + hashlib.sha256(reply.content).hexdigest() == digest
    return reply.content


def test_repositories_and_tags(demo: DemoInfo, http: httpx.Client) -> None:
    repos = http.get("/v2/_catalog").json()["repositories"]
    assert {"demo/app", "demo/tools", "demo/many-tags"} <= set(repos)
    app_tags = set(http.get("/v2/demo/app/tags/list").json()["tags"])
    assert {"1.0", "1.1", "2.0", "latest"} <= app_tags
    many = http.get("/v2/demo/many-tags/tags/list").json()["tags"]
    assert len(many) == MANY_TAGS_COUNT == len(set(many_tag_names()))
    assert set(many) == set(many_tag_names())
    assert set(http.get("/v2/demo/tools/tags/list").json()["tags"]) == {"3.19", "latest"}
    assert demo.repositories["demo/many-tags"] == many_tag_names()
    assert 20 * 1024 * 1024 < demo.bytes < 100 * 1024 * 1024


def test_multi_arch_index_with_attestations(demo: DemoInfo, http: httpx.Client) -> None:
    index, digest = manifest(http, "demo/app", "2.0")
    assert digest == demo.digests["demo/app:2.0"] == manifest(http, "demo/app", "latest")[1]
    assert index["mediaType"] == OCI_INDEX
    assert index["annotations"]["org.opencontainers.image.version"] == "2.0"
    runnable = [m for m in index["manifests"] if m["platform"]["os"] != "unknown"]
    platforms = ["/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"],
                                        m["platform"].get("variant")))) for m in runnable]
    assert platforms == list(APP_PLATFORMS)
    attestations = [m for m in index["manifests"] if m["platform"] == {"architecture": "unknown", "os": "unknown"}]
    assert len(attestations) == 3
    assert {a["annotations"]["vnd.docker.reference.digest"] for a in attestations} == {m["digest"] for m in runnable}
    assert {a["annotations"]["vnd.docker.reference.type"] for a in attestations} == {"attestation-manifest"}
    att, _ = manifest(http, "demo/app", attestations[0]["digest"])
    types = {layer["annotations"]["in-toto.io/predicate-type"] for layer in att["layers"]}
    assert types == {"https://spdx.dev/Document", "https://slsa.dev/provenance/v0.2"}
    statement = json.loads(blob(http, "demo/app", att["layers"][0]["digest"]))
    assert statement["subject"][0]["digest"]["sha256"] == attestations[0]["annotations"][
        "vnd.docker.reference.digest"].split(":")[1]


def test_images_look_real_and_share_base_layers(demo: DemoInfo, http: httpx.Client) -> None:
    layers: dict[str, list[dict[str, Any]]] = {}
    for version in ("1.0", "1.1", "2.0"):
        index, _ = manifest(http, "demo/app", version)
        amd64 = next(m for m in index["manifests"] if m["platform"]["architecture"] == "amd64")
        image, _ = manifest(http, "demo/app", amd64["digest"])
        layers[version] = image["layers"]
        config = json.loads(blob(http, "demo/app", image["config"]["digest"]))
        assert config["architecture"] == "amd64" and config["os"] == "linux"
        assert config["config"]["Labels"]["org.opencontainers.image.version"] == version
        assert config["config"]["Entrypoint"] == ["python", "-m", "server"]
        assert any(e == f"APP_VERSION={version}" for e in config["config"]["Env"])
        history = config["history"]
        assert len([h for h in history if not h.get("empty_layer")]) == len(image["layers"]) == 4
        assert any(h.get("empty_layer") and h["created_by"].startswith("ENV ") for h in history)
        assert all(h["created"].endswith("Z") for h in history)
        assert len(config["rootfs"]["diff_ids"]) == 4
    sizes = [layer["size"] for layer in layers["2.0"]]
    assert sizes[0] > 2 * 1024 * 1024 and sizes[0] == max(sizes) and sizes[3] < 512 * 1024
    digests = {v: [layer["digest"] for layer in ls] for v, ls in layers.items()}
    assert digests["1.0"][:3] == digests["1.1"][:3]          # base, runtime, deps shared
    assert digests["1.0"][3] != digests["1.1"][3]            # app layer differs
    assert digests["2.0"][0] == digests["1.0"][0]            # base shared across majors
    assert digests["2.0"][1] != digests["1.0"][1]
    # layers are real gzipped tars
    raw = gzip.decompress(blob(http, "demo/app", digests["2.0"][3]))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        assert "app/server.py" in tar.getnames()


def test_referrers_through_fallback_tag(demo: DemoInfo, http: httpx.Client) -> None:
    """distribution 2.8 has no referrers API: the fallback tag sha256-<hex> holds the referrers index."""
    subject = demo.digests["demo/app:2.0"]
    fallback, _ = manifest(http, "demo/app", subject.replace(":", "-"))
    types = sorted(m["artifactType"] for m in fallback["manifests"])
    assert types == [SPDX_JSON, COSIGN_SIG]
    sbom_desc = next(m for m in fallback["manifests"] if m["artifactType"] == SPDX_JSON)
    sbom, _ = manifest(http, "demo/app", sbom_desc["digest"])
    assert sbom["subject"]["digest"] == subject
    assert sbom["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    doc = json.loads(blob(http, "demo/app", sbom["layers"][0]["digest"]))
    assert doc["spdxVersion"] == "SPDX-2.3"
    on_sbom, _ = manifest(http, "demo/app", sbom_desc["digest"].replace(":", "-"))
    assert [m["artifactType"] for m in on_sbom["manifests"]] == [COSIGN_SIG]
    sig, _ = manifest(http, "demo/app", on_sbom["manifests"][0]["digest"])
    assert sig["subject"]["digest"] == sbom_desc["digest"]


def test_tools_single_platform_docker_image(demo: DemoInfo, http: httpx.Client) -> None:
    image, digest = manifest(http, "demo/tools", "3.19")
    assert image["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert image["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert digest == demo.digests["demo/tools:latest"]


def test_reseed_is_idempotent_and_skips_blobs(demo: DemoInfo, registry: LocalRegistry) -> None:
    registry.reset_request_count()
    again = seed(registry.address)
    assert again.digests == demo.digests
    assert again.referrers == demo.referrers
    assert registry.request_count("PATCH") == 0
    assert registry.request_count("PUT", "/blobs/uploads/") == 0
    assert registry.request_count("HEAD", "/blobs/") >= demo.blobs - 5
