"""Listing eStargz and zstd:chunked layers from their tables of contents alone, on the real registry.

The layers are built by ``_lazykit`` following the published formats (eStargz ``docs/estargz.md``, containers/storage
zstd:chunked), pushed with their annotations, and read through ``ocinb``; the registry's access log shows every
blob request and how many bytes it sent. Rows are checked against GNU ``tar -tv`` of the same bytes (decompressed by
the ``gzip`` and ``zstd`` tools) and against ocinb's full streamed reading of the same layer.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import random
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _faultproxy import FaultProxy
from _layerkit import build_tar
from _lazykit import ESTARGZ_TOC_DIGEST, LazyLayer, estargz, estargz_footer, zstd_chunked
from test_layer_reader import LETTER, RICH, gnu_tar_listing, perm_string

from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.client import AsyncClient
from ocinb.errors import LayerError, RegistryError
from ocinb.models import Descriptor, ImageManifest
from ocinb.ops.layer_reader import cache_kind, read_layer
from ocinb.ops.push import Layer
from ocinb.ops.toc_reader import TocUnavailable, toc_claim, toc_entries
from ocinb.tarfs import FileEntry, LayerFiles, LayerLimits
from ocinb.testing import AccessLogEntry, LocalRegistry

FILLER = random.Random(12).randbytes(3 * 1024 * 1024)
CONTENT = [*RICH, ("file", "opt/blob.bin", FILLER, 0o755), ("dir", "usr/share"),
           *(("file", f"usr/share/doc/f{i:03d}.txt", f"text {i}\n".encode() * (i + 1)) for i in range(40))]
SOURCE = {"estargz": "estargz-toc", "zstd-chunked": "zstd-chunked-toc"}


def build(kind: str, content: list[Any] | None = None, **kw: Any) -> LazyLayer:
    tar = build_tar(content if content is not None else CONTENT)
    return estargz(tar, **kw) if kind == "estargz" else zstd_chunked(tar, **kw)


def media(kind: str) -> str:
    return mt.OCI_LAYER_GZIP if kind == "estargz" else mt.OCI_LAYER_ZSTD


def client_for(server: LocalRegistry | FaultProxy, cache_dir: Path) -> AsyncClient:
    return AsyncClient(server.address, cache=ContentCache(cache_dir), docker_config=False, environment=False)


def push(registry: LocalRegistry, repo: str, layer: LazyLayer, kind: str, annotations: dict[str, str] | None = None,
         tag: str = "v1", *, where: Path) -> Descriptor:
    """Push a one-layer image whose layer carries ``annotations`` (the built layer's by default)."""
    notes = layer.annotations if annotations is None else annotations
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}

    async def go() -> Descriptor:
        async with client_for(registry, where / "push-cache") as client:
            await client.repo(repo).push_image(tag, json.dumps(config).encode(),
                                               [Layer(layer.blob, media(kind), notes)])
            image = await client.repo(repo).manifests.get(tag)
            parsed = image.parsed
            assert isinstance(parsed, ImageManifest)
            return parsed.layers[0]

    return asyncio.run(go())


def read(server: LocalRegistry | FaultProxy, repo: str, desc: Descriptor, cache_dir: Path, **kw: Any) -> LayerFiles:
    async def go() -> LayerFiles:
        async with client_for(server, cache_dir) as client:
            return await read_layer(client.repo(repo), desc, **kw)

    return asyncio.run(go())


def blob_gets(registry: LocalRegistry, start: int, digest: str) -> list[AccessLogEntry]:
    return [e for e in registry.access_log()[start:] if e.method == "GET" and e.path.endswith(f"/blobs/{digest}")]


def shape(e: FileEntry) -> tuple[Any, ...]:
    """What a TOC and a tar header both record about an entry."""
    return (e.path, e.type, e.size, e.mode, e.uid, e.gid, e.linkname, int(e.mtime), e.devmajor, e.devminor,
            e.xattrs, e.whiteout_target, e.flags, e.entry_index)


def gnu_listing(layer: LazyLayer, kind: str) -> list[dict[str, object]]:
    """GNU tar's reading of the blob, decompressed by the gzip or zstd tool (skippable frames and all)."""
    tool = ["gzip", "-dc"] if kind == "estargz" else ["zstd", "-dcq"]
    expanded = subprocess.run(tool, input=layer.blob, capture_output=True, check=True).stdout
    assert expanded == layer.tar
    return gnu_tar_listing(expanded)


@pytest.fixture
def repo(repo_name: str) -> str:
    return repo_name


@pytest.mark.parametrize("kind", ["estargz", "zstd-chunked"])
def test_toc_only_is_fetched_and_rows_match_tar(registry: LocalRegistry, repo: str, tmp_path: Path,
                                                kind: str) -> None:
    """Only the footer and TOC (eStargz) or the TOC frame (zstd:chunked) are fetched, ≤ 2% of the layer; the rows
    are GNU tar's entries and ocinb's streamed reading of the same layer, with ``source`` the TOC's."""
    layer = build(kind)
    desc = push(registry, repo, layer, kind, where=tmp_path)
    start = len(registry.access_log())
    listed = read(registry, repo, desc, tmp_path / "cache")
    gets = blob_gets(registry, start, desc.digest)
    fetched = sum(e.size for e in gets)
    print(f"{kind}: fetched {fetched} of {desc.size} bytes ({100 * fetched / desc.size:.3f}%)")
    assert [e.status for e in gets] == ([206, 206] if kind == "estargz" else [206])
    if kind == "estargz":
        assert fetched == desc.size - layer.toc_offset
    else:
        offset, length = (int(x) for x in layer.annotations[
            "io.github.containers.zstd-chunked.manifest-position"].split(":")[:2])
        assert fetched == length and offset == layer.toc_offset
    assert fetched <= 0.02 * desc.size
    assert listed.source == SOURCE[kind] and {e.source for e in listed.entries} == {SOURCE[kind]}
    assert listed.toc_note is None

    theirs = gnu_listing(layer, kind)
    assert len(listed.entries) == len(theirs)
    for ours, gnu in zip(listed.entries, theirs, strict=True):
        raw = str(gnu["name"])
        shown = ("/" + raw.removeprefix("./").rstrip("/")).encode("utf-8", "surrogateescape").decode(
            "utf-8", "backslashreplace")
        assert ours.path == shown
        assert LETTER[ours.type] == gnu["letter"], ours.path
        assert ours.size == gnu["size"], ours.path
        assert (ours.uid, ours.gid) == (gnu["uid"], gnu["gid"])
        assert perm_string(ours.mode) == gnu["mode"], ours.path
        if gnu["link"] is not None:
            assert ours.linkname is not None and ours.linkname.lstrip("/") == str(gnu["link"]).lstrip("/")

    streamed = read(registry, repo, desc, tmp_path / "plain", toc=False, use_cache=False)
    assert streamed.source == "tar" and streamed.diff_id == layer.diff_id
    assert [shape(e) for e in listed.entries] == [shape(e) for e in streamed.entries]
    by_path = {e.path: e for e in listed.entries}
    assert by_path["/bin/ping"].xattrs == {"security.capability": "\x01\x00"}
    assert by_path["/etc/.wh.old"].type == "whiteout"
    assert "non_utf8" in by_path["/caf\xe9-\\xff.txt"].flags


@pytest.mark.parametrize("kind", ["estargz", "zstd-chunked"])
def test_the_toc_table_is_cached_under_its_source(registry: LocalRegistry, repo: str, tmp_path: Path,
                                                  kind: str) -> None:
    """The second reading comes from the cache (no blob request), keyed by the TOC source, never as ``tar``."""
    layer = build(kind, CONTENT[:20])
    desc = push(registry, repo, layer, kind, where=tmp_path)
    first = read(registry, repo, desc, tmp_path / "cache")
    start = len(registry.access_log())
    again = read(registry, repo, desc, tmp_path / "cache")
    assert blob_gets(registry, start, desc.digest) == []
    assert again.source == SOURCE[kind] and [shape(e) for e in again.entries] == [shape(e) for e in first.entries]
    cache = ContentCache(tmp_path / "cache")
    assert cache.get_table(cache_kind(False, SOURCE[kind], toc_claim(desc, kind)), desc.digest) is not None
    assert cache.get_table(cache_kind(False), desc.digest) is None


@pytest.fixture(params=["ignore", "refuse"])
def range_proxy(request: pytest.FixtureRequest, registry: LocalRegistry) -> Iterator[FaultProxy]:
    """The real registry always honours Range, so a proxy strips it (200 with the whole body) or answers 416."""
    p = FaultProxy(registry.url, range_mode=request.param)
    yield p
    p.stop()


@pytest.mark.parametrize("kind", ["estargz", "zstd-chunked"])
def test_range_refused_streams_the_whole_layer(registry: LocalRegistry, range_proxy: FaultProxy, repo: str,
                                               tmp_path: Path, kind: str) -> None:
    """Range stripped or refused by a proxy (the real registry cannot be made to): the layer is streamed whole,
    the rows equal the TOC-less reading, and ``toc_note`` says why."""
    layer = build(kind, CONTENT[:20])
    desc = push(registry, repo, layer, kind, where=tmp_path)
    start = len(registry.access_log())
    listed = read(range_proxy, repo, desc, tmp_path / "cache")
    assert listed.source == "tar" and {e.source for e in listed.entries} == {"tar"}
    assert listed.toc_note is not None and "Range" in listed.toc_note
    assert listed.diff_id == layer.diff_id
    full = [e for e in blob_gets(registry, start, desc.digest) if e.status == 200 and e.size == desc.size]
    assert full, "the fallback streamed the whole blob"
    plain = read(registry, repo, desc, tmp_path / "plain", toc=False, use_cache=False)
    assert [shape(e) for e in listed.entries] == [shape(e) for e in plain.entries]


def test_toc_digest_mismatch_falls_back(registry: LocalRegistry, repo: str, tmp_path: Path) -> None:
    """A TOC whose sha256 is not its annotation is not used: the layer is streamed and the note says so."""
    layer = build("estargz", CONTENT[:20])
    notes = {**layer.annotations, ESTARGZ_TOC_DIGEST: "sha256:" + "0" * 64}
    desc = push(registry, repo, layer, "estargz", notes, where=tmp_path)
    start = len(registry.access_log())
    listed = read(registry, repo, desc, tmp_path / "cache")
    assert listed.source == "tar" and listed.toc_note is not None and "toc.digest" in listed.toc_note
    assert sum(1 for e in blob_gets(registry, start, desc.digest) if e.status == 200) == 1
    assert ContentCache(tmp_path / "cache").get_table(cache_kind(False, "estargz-toc", toc_claim(desc, "estargz")),
                                                      desc.digest) is None


def test_footer_pointing_past_the_blob(registry: LocalRegistry, repo: str, tmp_path: Path) -> None:
    """A footer whose TOC offset lies past the blob: only the footer is range-read, then the layer streams."""
    good = build("estargz", CONTENT[:20])
    blob = good.blob[:-51] + estargz_footer(len(good.blob) + 4096)
    layer = LazyLayer(blob, good.annotations, good.tar)
    desc = push(registry, repo, layer, "estargz", where=tmp_path)
    start = len(registry.access_log())
    listed = read(registry, repo, desc, tmp_path / "cache")
    assert listed.toc_note is not None and "past the TOC area" in listed.toc_note
    gets = blob_gets(registry, start, desc.digest)
    assert [(e.status, e.size) for e in gets] == [(206, 51), (200, desc.size)]
    assert listed.source == "tar" and listed.diff_id == layer.diff_id


def test_a_100_mb_declared_toc_is_never_fetched(registry: LocalRegistry, repo: str, tmp_path: Path) -> None:
    """zstd:chunked's manifest-position declaring a 100 MB TOC is refused by LayerLimits.max_toc_bytes before any
    ranged read; an eStargz TOC over a small limit is refused before its range is read."""
    layer = build("zstd-chunked", CONTENT[:20], declared_size=100 * 1024**2)
    desc = push(registry, repo, layer, "zstd-chunked", where=tmp_path)
    start = len(registry.access_log())
    listed = read(registry, repo, desc, tmp_path / "cache")
    assert listed.toc_note is not None and "max_toc_bytes" in listed.toc_note
    assert [e.status for e in blob_gets(registry, start, desc.digest)] == [200]

    big = build("estargz", CONTENT)
    desc = push(registry, repo, big, "estargz", tag="v2", where=tmp_path)
    start = len(registry.access_log())
    listed = read(registry, repo, desc, tmp_path / "cache2", limits=LayerLimits(max_toc_bytes=1024))
    assert listed.toc_note is not None and "max_toc_bytes" in listed.toc_note
    assert [(e.status, e.size) for e in blob_gets(registry, start, desc.digest)] == [(206, 51), (200, desc.size)]


@pytest.mark.parametrize("kind", ["estargz", "zstd-chunked"])
def test_dotdot_names_in_a_toc_are_flagged_like_tar(registry: LocalRegistry, repo: str, tmp_path: Path,
                                                    kind: str) -> None:
    """``..`` and absolute names in a verified TOC are clamped at the root and flagged, as the tar reader does."""
    content = [("file", "../../etc/evil", b"x" * 10), ("file", "/abs/olute", b"y"), ("dir", "a/../../b")]
    layer = build(kind, content)
    desc = push(registry, repo, layer, kind, where=tmp_path)
    listed = read(registry, repo, desc, tmp_path / "cache")
    streamed = read(registry, repo, desc, tmp_path / "plain", toc=False, use_cache=False)
    assert listed.source == SOURCE[kind]
    by_path = {e.path: e for e in listed.entries}
    assert "dotdot" in by_path["/etc/evil"].flags and "dotdot" in by_path["/b"].flags
    assert [shape(e) for e in listed.entries] == [shape(e) for e in streamed.entries]


def test_files_frame_reports_source_and_fallbacks(registry: LocalRegistry, repo: str, tmp_path: Path) -> None:
    """``files`` shows each row's source; a layer streamed instead of its TOC is named in ``toc_fallbacks``."""
    good = build("estargz", CONTENT[:20])
    push(registry, repo, good, "estargz", where=tmp_path)
    bad_notes = {**good.annotations, ESTARGZ_TOC_DIGEST: "sha256:" + "1" * 64}
    push(registry, repo, good, "estargz", bad_notes, tag="bad", where=tmp_path)

    async def go() -> tuple[Any, Any]:
        async with client_for(registry, tmp_path / "c") as client:
            return await client.files(f"{repo}:v1"), await client.files(f"{repo}:bad")

    ok, bad = asyncio.run(go())
    assert set(ok["source"]) == {"estargz-toc"} and ok.attrs.get("toc_fallbacks") is None
    assert set(bad["source"]) == {"tar"} and "toc.digest" in bad.attrs["toc_fallbacks"][0]


def test_read_range_returns_exactly_the_bytes_or_none(registry: LocalRegistry, range_proxy: FaultProxy, repo: str,
                                                      tmp_path: Path) -> None:
    """The ranged read gives the blob's bytes [a, b) from the real registry (206, length checked), and ``None``
    through a proxy that strips Range (200, whose body is not read) or refuses it (416); the real registry
    always honours Range, hence the proxy."""
    layer = build("zstd-chunked", CONTENT[:5])
    desc = push(registry, repo, layer, "zstd-chunked", where=tmp_path)

    async def go(server: LocalRegistry | FaultProxy) -> list[bytes | None]:
        async with client_for(server, tmp_path / "c") as client:
            blobs = client.repo(repo).blobs
            return [await blobs.read_range(desc.digest, a, b) for a, b in ((0, 1), (100, 300), (desc.size - 9,
                                                                                                 desc.size))]

    async def past_the_end() -> None:
        async with client_for(registry, tmp_path / "c") as client:
            await client.repo(repo).blobs.read_range(desc.digest, 100, desc.size + 100)

    assert asyncio.run(go(registry)) == [layer.blob[0:1], layer.blob[100:300], layer.blob[-9:]]
    assert asyncio.run(go(range_proxy)) == [None, None, None]
    with pytest.raises(RegistryError, match="RANGE_INVALID"):  # the registry clips it: a short 206 is an error
        asyncio.run(past_the_end())


def test_an_estargz_toc_header_declaring_100_mb(registry: LocalRegistry, repo: str, tmp_path: Path) -> None:
    """A TOC member whose tar header declares a 100 MB ``stargz.index.json`` (with a few bytes behind it) is refused
    at LayerLimits.max_toc_bytes without reading more; the stream then finds the tar truncated: a clear
    LayerError, and nothing is cached."""
    good = build("estargz", CONTENT[:5])
    info = tarfile.TarInfo("stargz.index.json")
    info.size = 100 * 1024**2
    member = gzip.compress(info.tobuf(tarfile.PAX_FORMAT) + b"{}" + bytes(510), mtime=0)
    blob = good.blob[:good.toc_offset] + member + estargz_footer(good.toc_offset)
    layer = LazyLayer(blob, {ESTARGZ_TOC_DIGEST: "sha256:" + hashlib.sha256(b"{}").hexdigest()},
                      gzip.decompress(blob))
    desc = push(registry, repo, layer, "estargz", where=tmp_path)
    with pytest.raises(LayerError, match=r"unexpected end of data|truncated"):
        read(registry, repo, desc, tmp_path / "cache")
    cache = ContentCache(tmp_path / "cache")
    assert cache.get_table(cache_kind(False), desc.digest) is None
    assert cache.get_table(cache_kind(False, "estargz-toc", toc_claim(desc, "estargz")), desc.digest) is None


@pytest.mark.parametrize("entry", [
    {"name": "a", "type": "weird", "mode": 420}, {"name": "a", "type": "reg", "size": -5, "mode": 420},
    {"name": 7, "type": "reg", "mode": 420}, {"name": "", "type": "dir", "mode": 493},
    {"name": "a", "type": "reg", "mode": 420, "modtime": "yesterday"},
    {"name": "a", "type": "reg", "mode": 420, "xattrs": {"user.x": "%%%"}}, "not an object"])
def test_absurd_toc_entries_are_refused(entry: Any) -> None:
    """A verified TOC whose entries are absurd (unknown type, negative size, no name, bad time or xattr) is not
    used: TocUnavailable, which makes the reader stream the layer and say why."""
    with pytest.raises(TocUnavailable):
        toc_entries({"version": 1, "entries": [entry]}, "estargz-toc", LayerLimits())


def test_toc_entries_skip_chunks_and_respect_max_entries() -> None:
    """``chunk`` entries continue a file and are no rows; more entries than LayerLimits.max_entries are refused."""
    doc = {"version": 1, "entries": [{"name": "big", "type": "reg", "size": 10, "mode": 420},
                                     {"name": "big", "type": "chunk", "chunkOffset": 5, "chunkSize": 5},
                                     {"name": "d/", "type": "dir", "mode": 493}]}
    rows = toc_entries(doc, "estargz-toc", LayerLimits())
    assert [(e.path, e.type, e.size) for e in rows] == [("/big", "file", 10), ("/d", "dir", 0)]
    with pytest.raises(TocUnavailable, match="max_entries"):
        toc_entries(doc, "estargz-toc", LayerLimits(max_entries=1))
    with pytest.raises(TocUnavailable, match="version 1"):
        toc_entries({"version": 2, "entries": []}, "estargz-toc", LayerLimits())
