"""The ipywidgets pickers and the explorer, driven headless (no kernel) against the real local registry."""

from __future__ import annotations

import gzip
import hashlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import ocinb
from ocinb import media_types as mt
from ocinb._sync import loop_thread, run_sync
from ocinb.cache import ContentCache
from ocinb.ops.push import Layer
from ocinb.testing import LocalRegistry
from ocinb.widgets import Explorer, LayerPicker, PlatformPicker, RepositoryPicker, TagPicker, explorer

MANY_TAGS = 312


@dataclass
class Seed:
    """What :func:`seed_registry` pushed: repository names and the digests a view must show."""

    app: str
    many: str
    index_digest: str
    images: dict[str, str] = field(default_factory=dict)
    layers: dict[str, list[str]] = field(default_factory=dict)
    single_digest: str = ""


def _image(platform: str, steps: list[str]) -> tuple[dict[str, Any], list[Layer]]:
    """A small image config and its gzip layers, one per step, with an empty-layer step in front."""
    os_name, arch, *variant = platform.split("/")
    blobs = [f"{platform} {step}\n".encode() for step in steps]
    config: dict[str, Any] = {
        "architecture": arch, "os": os_name, "created": "2024-05-01T12:00:00Z",
        "config": {"Cmd": ["/bin/app"], "Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]},
        "history": [{"created_by": "ENV PATH=/usr/bin", "empty_layer": True}]
        + [{"created_by": step, "created": "2024-05-01T12:00:00Z"} for step in steps],
    }
    if variant:
        config["variant"] = variant[0]
    return config, [Layer(gzip.compress(b, mtime=0), mt.OCI_LAYER_GZIP) for b in blobs]


def seed_registry(client: ocinb.Client, prefix: str) -> Seed:
    """Push a multi-arch index with an attestation entry (``:multi``), a single-platform ``:single`` and a
    ``:latest``, and a second repository with MANY_TAGS tags."""
    app, many = f"{prefix}/app", f"{prefix}/many"
    repo = client.repo(app)
    pushed = {}
    layer_digests = {}
    for platform, steps in {"linux/amd64": ["RUN make amd64", "COPY app /bin/app"],
                            "linux/arm64/v8": ["RUN make arm64", "COPY lib /lib", "COPY app /bin/app"]}.items():
        config, layers = _image(platform, steps)
        result = repo.push_image(f"build-{platform.replace('/', '-')}", config, layers)
        pushed[platform] = result
        layer_digests[platform] = [d.digest for d in repo.get_manifest(result.descriptor.digest).as_manifest().layers]
    attestation = repo.push_image(
        "attestation", {"architecture": "unknown", "os": "unknown"},
        [Layer(b'{"_type":"https://in-toto.io/Statement/v0.1"}', "application/vnd.in-toto+json")],
        annotations={mt.ATTESTATION_ANNOTATION: mt.ATTESTATION_MANIFEST,
                     mt.ATTESTATION_DIGEST_ANNOTATION: pushed["linux/amd64"].descriptor.digest})
    index = repo.push_index("multi", [pushed["linux/amd64"], pushed["linux/arm64/v8"], attestation],
                            platforms=["linux/amd64", "linux/arm64/v8", "unknown/unknown"])
    repo.push_index("latest", [pushed["linux/amd64"], pushed["linux/arm64/v8"]],
                    platforms=["linux/amd64", "linux/arm64/v8"])
    config, layers = _image("linux/amd64", ["RUN echo single"])
    single = repo.push_image("single", config, layers)
    many_repo = client.repo(many)
    config, layers = _image("linux/amd64", ["RUN echo many"])
    first = many_repo.push_image("v0-000", config, layers)
    data = many_repo.get_manifest(first.descriptor.digest).data

    async def tag_all() -> None:
        import asyncio

        arepo = client.aio.repo(many)
        await asyncio.gather(*(arepo.manifests.put(f"v{i // 100}-{i:03d}", data, mt.OCI_MANIFEST)
                               for i in range(1, MANY_TAGS)))

    run_sync(tag_all())
    return Seed(app=app, many=many, index_digest=index.descriptor.digest,
                images={p: r.descriptor.digest for p, r in pushed.items()}, layers=layer_digests,
                single_digest=single.descriptor.digest)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def client(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ocinb.Client]:
    c = ocinb.Client(registry.address, docker_config=False, environment=False,
                     cache=ContentCache(tmp_path_factory.mktemp("widget-cache")))
    yield c
    run_sync(c.aio.aclose())


@pytest.fixture(scope="module")
def seed(client: ocinb.Client) -> Seed:
    return seed_registry(client, f"w{uuid.uuid4().hex[:8]}")


def _recorder(picker: Any) -> list[Any]:
    seen: list[Any] = []
    picker.observe(lambda change: seen.append(change["new"]), names="value")
    return seen


def test_repository_picker_lists_the_catalog_and_accepts_typed_names(client: ocinb.Client, seed: Seed) -> None:
    picker = RepositoryPicker(client)
    seen = _recorder(picker)
    picker.wait()
    assert {seed.app, seed.many} <= set(picker.widget.options)
    assert picker.error is None and "loading" not in picker.status.value
    picker.value = "typed/not-in-catalog"
    assert seen == ["typed/not-in-catalog"] and picker.widget.value == "typed/not-in-catalog"


def test_tag_picker_stays_small_with_hundreds_of_tags(client: ocinb.Client, seed: Seed) -> None:
    picker = TagPicker(client, seed.many)
    seen = _recorder(picker)
    picker.wait()
    assert len(picker.tags) == MANY_TAGS
    assert len(picker.select.options) == 200 and picker.select.options[0] == "v0-000"
    assert "showing the first 200" in picker.count.value
    picker.filter.value = "v2-29"
    assert list(picker.select.options) == [f"v2-29{i}" for i in range(10)]
    assert "10 of 312 tags match" in picker.count.value
    picker.select.value = "v2-293"
    assert picker.value == "v2-293" and seen[-1] == "v2-293"
    assert picker.ref == f"{seed.many}:v2-293"
    picker.value = "v3-311"
    assert picker.select.value is None and picker.input.value == "v3-311"
    picker.filter.value = ""
    assert len(picker.select.options) == 200


def test_platform_picker_offers_runnable_platforms_only(client: ocinb.Client, seed: Seed) -> None:
    picker = PlatformPicker(client, f"{seed.app}:multi")
    picker.wait()
    assert picker.platforms == ["linux/amd64", "linux/arm64/v8"]
    assert picker.value == "linux/amd64" and picker.is_index and picker.digest == seed.index_digest
    single = PlatformPicker(client, f"{seed.app}:single")
    single.wait()
    assert single.platforms == ["linux/amd64"] and not single.is_index
    assert single.widget.options[0][0] == "linux/amd64 (single-platform image)"


def test_layer_picker_lists_the_layers_with_their_steps(client: ocinb.Client, seed: Seed) -> None:
    picker = LayerPicker(client, f"{seed.app}:multi", "linux/arm64/v8")
    picker.wait()
    assert len(picker.widget.options) == 3 == len(seed.layers["linux/arm64/v8"])
    assert picker.digest == seed.images["linux/arm64/v8"]
    assert "RUN make arm64" in picker.layers[0] and "COPY app /bin/app" in picker.layers[2]
    picker.value = 1
    layer = picker.layer
    assert layer is not None and layer["digest"] == seed.layers["linux/arm64/v8"][1]
    assert layer["created_by"] == "COPY lib /lib"


def test_pickers_chain_repository_tag_platform_layers(client: ocinb.Client, seed: Seed) -> None:
    repos = RepositoryPicker(client, load_catalog=False)
    tags = TagPicker(client, repos)
    platforms = PlatformPicker(client, tags)
    layers = LayerPicker(client, platforms)
    seen_platforms = _recorder(platforms)
    repos.value = seed.app
    layers.wait()
    assert tags.tags == sorted(["attestation", "build-linux-amd64", "build-linux-arm64-v8", "latest", "multi",
                                "single"])
    assert tags.value == "latest" and platforms.platforms == ["linux/amd64", "linux/arm64/v8"]
    assert len(layers.widget.options) == 2 and layers.digest == seed.images["linux/amd64"]
    tags.value = "multi"
    platforms.wait()
    platforms.value = "linux/arm64/v8"
    assert "linux/arm64/v8" in seen_platforms
    layers.wait()
    assert len(layers.widget.options) == 3 and layers.digest == seed.images["linux/arm64/v8"]
    tags.value = "single"
    layers.wait()
    assert platforms.platforms == ["linux/amd64"]
    assert len(layers.widget.options) == 1 and layers.digest == seed.single_digest
    assert repos.status.value == ""


def test_explorer_shows_the_inspect_view_of_the_choice(client: ocinb.Client, seed: Seed) -> None:
    ex = explorer(client, tag="multi")
    assert isinstance(ex, Explorer)
    ex.repository.value = seed.app
    ex.wait()
    assert ex.platform.value == "linux/amd64" and ex.view.image_digest == seed.images["linux/amd64"]
    assert seed.index_digest in ex.html and seed.images["linux/amd64"] in ex.html
    assert "ocinb.inspect" in ex.html and "RUN make amd64" in ex.html
    ex.platform.value = "linux/arm64/v8"
    ex.wait()
    assert ex.view.image_digest == seed.images["linux/arm64/v8"] and ex.view.platform == "linux/arm64/v8"
    assert seed.images["linux/arm64/v8"] in ex.html and "RUN make arm64" in ex.html
    assert "RUN make amd64" not in ex.html
    assert len(ex.layer.widget.options) == 3
    ex.layer.value = 1
    assert "Selected layer" in ex.html and seed.layers["linux/arm64/v8"][1] in ex.html
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert ex.widget.children[2] is ex.status and ex.widget.children[3] is ex.output


def test_explorer_from_a_reference_string(registry: LocalRegistry, seed: Seed, tmp_path: Path) -> None:
    ex = explorer(f"{registry.address}/{seed.app}:single", docker_config=False, environment=False,
                  cache=ContentCache(tmp_path), load_catalog=True)
    ex.wait()
    assert ex.repository.value == seed.app and ex.tag.value == "single"
    assert seed.single_digest in ex.html and ex.errors == []
    assert seed.app in ex.repository.widget.options
    run_sync(ex.client.aclose())


def test_unknown_and_hostile_tags_show_errors_not_tracebacks(client: ocinb.Client, seed: Seed) -> None:
    ex = explorer(client, load_catalog=False)
    ex.repository.value = seed.app
    ex.wait()
    assert seed.images["linux/amd64"] in ex.html
    ex.tag.value = "no-such-tag"
    ex.wait()
    assert any("not found" in e for e in ex.errors), ex.status.value
    assert "no-such-tag" in ex.status.value and "Traceback" not in ex.status.value
    assert ex.platform.platforms == [] and ex.layer.widget.options == () and ex.output.outputs == ()
    ex.tag.input.value = '<script>alert("x")</script>'
    ex.wait()
    assert "<script>" not in ex.status.value and "&lt;script&gt;" in ex.status.value
    ex.tag.value = "latest"
    ex.wait()
    assert ex.errors == [] and seed.images["linux/amd64"] in ex.html


def test_unknown_repository_shows_an_error(client: ocinb.Client, seed: Seed) -> None:
    picker = TagPicker(client, f"{seed.app}-missing")
    picker.wait()
    assert picker.error is not None and "not found" in picker.error
    assert picker.tags == [] and picker.value is None


def test_unauthorised_registry_shows_errors_in_status(basic_registry: LocalRegistry, tmp_path: Path) -> None:
    ex = explorer(basic_registry.address, docker_config=False, environment=False, cache=ContentCache(tmp_path))
    ex.wait()
    # A registry that will not list its catalog is normal (Docker Hub, GHCR): a hint, not an error.
    assert ex.errors == [] and "does not list its repositories" in ex.status.value, ex.status.value
    ex.repository.value = "some/repo"
    ex.wait()
    assert ex.tag.error is not None and "unauthorised" in ex.tag.error
    assert ex.output.outputs == () and "Traceback" not in ex.status.value
    run_sync(ex.client.aclose())


def test_setting_a_value_never_blocks_and_shows_loading(client: ocinb.Client, seed: Seed) -> None:
    """The background loop is held busy until the test releases it: the setter must return while the loop
    is still held (a setter that waited for the loop would return only after the hold ran out), showing
    loading. No clock: the hold's end is an event, checked after the setter returned."""
    picker = PlatformPicker(client)
    release, holding, hold_over = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        release.wait(120)
        hold_over.set()

    loop_thread().loop.call_soon_threadsafe(hold)
    try:
        assert holding.wait(120), "the background loop never ran the hold"
        picker.ref = f"{seed.app}:multi"
        assert not hold_over.is_set(), "setting ref waited for the busy background loop"
        assert picker.loading and "loading the platforms" in picker.status.value
        with pytest.raises(TimeoutError):
            picker.wait(timeout=0.2)
    finally:
        release.set()
    picker.wait()
    assert not picker.loading and picker.platforms == ["linux/amd64", "linux/arm64/v8"]


def test_stale_results_are_dropped(client: ocinb.Client, seed: Seed) -> None:
    picker = PlatformPicker(client)
    release = threading.Event()
    loop_thread().loop.call_soon_threadsafe(release.wait, 10)
    try:
        picker.ref = f"{seed.app}:multi"
        picker.ref = f"{seed.app}:no-such-tag"
        picker.ref = f"{seed.app}:single"
    finally:
        release.set()
    picker.wait()
    assert picker.platforms == ["linux/amd64"] and picker.digest == seed.single_digest
    assert picker.error is None and picker.status.value == ""


def test_tag_picker_hides_fallback_tags_and_labels_layers_without_history(client: ocinb.Client, seed: Seed,
                                                                         registry: LocalRegistry) -> None:
    """Referrers fallback tags are not images; a layer with no history step is labelled by its digest."""
    name = f"{seed.app}-signed"  # its own repository: the shared seed keeps its tag list
    repo = client.repo(name)
    image = repo.push_image("bare", {"architecture": "amd64", "os": "linux"}, [b"no history"])
    repo.push_image("sig", b"{}", [b"signature"], config_media_type="application/vnd.oci.empty.v1+json",
                    subject=image.descriptor, artifact_type="application/vnd.example.sig")
    picker = TagPicker(client, name)
    picker.wait()
    assert picker.tags == ["bare", "sig"]
    layers = LayerPicker(client, f"{name}:bare")
    layers.wait()
    (label, _), = layers.widget.options
    layer = repo.manifests.get("bare").as_manifest().layers[0]
    assert "nan" not in label and label.endswith(str(layer.digest)[:19]), label


def test_a_choice_made_while_another_thread_applies_a_result_still_propagates(client: ocinb.Client,
                                                                              seed: Seed) -> None:
    """The loop thread updating a picker quietly must not swallow the user's change on the kernel thread."""
    tags = TagPicker(client, seed.app)
    platforms = PlatformPicker(client, tags)
    platforms.wait()
    inside, release = threading.Event(), threading.Event()

    def apply_quietly() -> None:
        with tags._quietly():
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=apply_quietly)
    worker.start()
    try:
        assert inside.wait(5)
        tags.value = "single"
    finally:
        release.set()
        worker.join()
    platforms.wait()
    assert platforms.ref == f"{seed.app}:single" and platforms.platforms == ["linux/amd64"]


def test_explorer_of_a_repository_skips_the_catalog(registry: LocalRegistry, seed: Seed, tmp_path: Path) -> None:
    ex = explorer(f"{registry.address}/{seed.app}", docker_config=False, environment=False,
                  cache=ContentCache(tmp_path))
    ex.wait()
    assert ex.repository.repositories == [] and ex.tag.tags
    run_sync(ex.client.aclose())


def test_a_picker_refuses_a_picker_it_cannot_follow(client: ocinb.Client) -> None:
    """A picker of the wrong kind as the source is a clear error, not a silently empty picker."""
    tags = TagPicker(client)
    with pytest.raises(TypeError, match="LayerPicker follows PlatformPicker, not a TagPicker"):
        LayerPicker(client, tags)  # type: ignore[arg-type]
    assert tags._downstream == [] and tags.status.value == ""


def test_explorer_pair_of_tag_pickers_opens_their_diff(client: ocinb.Client, seed: Seed) -> None:
    """Two tags of one repository picked below the explorer: the diff of the two shows (the file one of them
    added); the same tag on both sides shows nothing."""
    from _layerkit import push_layers

    repo = f"{seed.app}-diff"
    run_sync(push_layers(client.aio, repo, "old", [[("file", "etc/conf", b"1")]]))
    run_sync(push_layers(client.aio, repo, "new", [[("file", "etc/conf", b"2"), ("file", "etc/added", b"+")]]))
    ex = explorer(client, load_catalog=False)
    ex.repository.value = repo
    ex.wait()
    ex.diff_a.value = ex.diff_b.value = "old"
    ex.wait()
    assert ex.diff is None and ex.diff_html == ""
    ex.diff_b.value = "new"
    ex.wait()
    assert ex.diff is not None, ex.errors
    assert set(ex.diff.files["path"]) == {"/etc/conf", "/etc/added"}
    assert f"{repo}:old" in ex.diff_html and "/etc/added" in ex.diff_html
    assert ex.widget.children[2] is ex.status and ex.widget.children[3] is ex.output
