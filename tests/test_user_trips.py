"""What a new user tripped on, checked against the real registry with raw HTTP as the independent witness:
``bytes(manifest)``, ``ocinb.copy`` across registries, and ``manifests.put``/``delete`` keeping the referrers
tag as the distribution spec says a client MUST when the registry answers without ``OCI-Subject``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

import ocinb
from ocinb import AsyncClient, Client, ContentCache, Repository
from ocinb import media_types as mt
from ocinb.models import Descriptor, ImageManifest
from ocinb.testing import LocalRegistry

CONFIG: dict[str, Any] = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
ACCEPT = ", ".join(mt.MANIFEST_ACCEPT)


def raw_get(registry: LocalRegistry, path: str) -> httpx.Response:
    return httpx.get(f"http://{registry.address}/v2/{path}", headers={"Accept": ACCEPT})


def referrers_tag(digest: str) -> str:
    algorithm, encoded = digest.split(":")
    return f"{algorithm}-{encoded}"  # the spec's tag schema, written out here rather than taken from ocinb


def client(registry: LocalRegistry) -> Client:
    return Client(registry.address, cache=ContentCache(enabled=False), docker_config=False, environment=False)


def artifact(subject: Descriptor, empty: Descriptor) -> ImageManifest:
    return ImageManifest(schema_version=2, media_type=mt.OCI_MANIFEST, artifact_type="application/example",
                         config=empty, layers=[empty], subject=subject)


def image_and_empty(repo: Repository) -> tuple[Descriptor, Descriptor]:
    """An image to be a subject, and the empty JSON blob an artifact's config and layer point at."""
    image = repo.push_image("v1", CONFIG, [b"layer"]).descriptor
    pushed = repo.blobs.upload(b"{}")
    return image, Descriptor(media_type=mt.OCI_EMPTY, digest=pushed.digest, size=2)


def test_bytes_of_a_manifest_are_the_served_bytes(registry: LocalRegistry, repo_name: str) -> None:
    with client(registry) as c:
        repo = c.repo(repo_name)
        repo.push_image("v1", CONFIG, [b"layer"])
        m = repo.manifests.get("v1")
    served = raw_get(registry, f"{repo_name}/manifests/v1")
    assert bytes(m) == served.content
    assert f"sha256:{hashlib.sha256(bytes(m)).hexdigest()}" == served.headers["docker-content-digest"]


def test_put_with_subject_updates_the_referrers_tag(registry: LocalRegistry, repo_name: str) -> None:
    with client(registry) as c:
        repo = c.repo(repo_name)
        image, empty = image_and_empty(repo)
        first = repo.manifests.put("sig", artifact(image, empty))
        assert first.subject is None  # distribution 2.8 sends no OCI-Subject: the client must keep the tag
        tag = raw_get(registry, f"{repo_name}/manifests/{referrers_tag(image.digest)}")
        assert tag.status_code == 200
        index = json.loads(tag.content)
        assert index["mediaType"] == mt.OCI_INDEX
        assert [d["digest"] for d in index["manifests"]] == [first.digest]
        assert index["manifests"][0]["artifactType"] == "application/example"

        other_subject = repo.push_image("v2", {**CONFIG, "architecture": "arm64"}, [b"other"]).descriptor
        repo.manifests.put("sig2", artifact(other_subject, empty), update_referrers=False)
        assert raw_get(registry, f"{repo_name}/manifests/{referrers_tag(other_subject.digest)}").status_code == 404

        repo.manifests.delete(first.digest)
        after = json.loads(raw_get(registry, f"{repo_name}/manifests/{referrers_tag(image.digest)}").content)
        assert after["manifests"] == []
        assert raw_get(registry, f"{repo_name}/manifests/{first.digest}").status_code == 404


def test_delete_can_leave_the_referrers_tag_alone(registry: LocalRegistry, repo_name: str) -> None:
    with client(registry) as c:
        image, empty = image_and_empty(c.repo(repo_name))
        repo = c.repo(repo_name)
        sig = repo.manifests.put("sig", artifact(image, empty))
        repo.manifests.delete(sig.digest, update_referrers=False)
    index = json.loads(raw_get(registry, f"{repo_name}/manifests/{referrers_tag(image.digest)}").content)
    assert [d["digest"] for d in index["manifests"]] == [sig.digest]


def test_module_level_copy_across_registries(registry: LocalRegistry, registry2: LocalRegistry, repo_name: str,
                                             cache: ContentCache) -> None:
    with client(registry) as c:
        pushed = c.repo(repo_name).push_image("1", CONFIG, [b"copy me", b"and me"])
    ocinb.configure(docker_config=False, environment=False)
    try:
        report = ocinb.copy(f"{registry.address}/{repo_name}:1", f"{registry2.address}/mirror/{repo_name}:1")
        untagged = ocinb.copy(f"{registry.address}/{repo_name}:1", f"{registry2.address}/keep/{repo_name}")
    finally:
        ocinb.configure()
    assert report.digest == pushed.digest == untagged.digest
    there = raw_get(registry2, f"mirror/{repo_name}/manifests/1")
    assert there.status_code == 200
    assert f"sha256:{hashlib.sha256(there.content).hexdigest()}" == pushed.digest
    for layer in json.loads(there.content)["layers"]:
        blob = httpx.get(f"http://{registry2.address}/v2/mirror/{repo_name}/blobs/{layer['digest']}")
        assert f"sha256:{hashlib.sha256(blob.content).hexdigest()}" == layer["digest"]
    assert raw_get(registry2, f"keep/{repo_name}/manifests/1").status_code == 200  # the source's tag kept


@pytest.mark.asyncio
async def test_async_repository_is_the_endpoints_plus_operations(registry: LocalRegistry, repo_name: str) -> None:
    async with AsyncClient(registry.address, cache=ContentCache(enabled=False), docker_config=False,
                           environment=False) as c:
        repo = c.repo(repo_name)
        assert isinstance(repo, ocinb.RepositoryEndpoints)
        assert repo.ctx.state is c.state and repo.cache is c.cache
        await repo.push_image("v1", CONFIG, [b"layer"])
        assert repo.same_registry(c.repo("other/name"))
