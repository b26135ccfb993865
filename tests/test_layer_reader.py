"""The streamed layer reader against the real registry: every layer media type, listings checked against GNU tar,
verification while streaming, and hostile layers (each a clear error or a flagged row, nothing cached)."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from _faultproxy import FaultProxy
from _layerkit import build_tar, compress, push_layers, sha

from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.client import AsyncClient
from ocinb.errors import DigestMismatchError, LayerError, LayerLimitError, UnsupportedLayerError
from ocinb.models import Descriptor
from ocinb.ops.describe import image_files
from ocinb.ops.layer_reader import cache_kind, read_layer
from ocinb.tarfs import LayerLimits
from ocinb.testing import LocalRegistry

RICH = [
    ("dir", "etc"), ("file", "etc/hosts", b"127.0.0.1 localhost\n"), ("file", "./etc/passwd", 700, 0o600),
    ("symlink", "etc/localtime", "/usr/share/zoneinfo/UTC"), ("hardlink", "etc/hosts.bak", "etc/hosts"),
    ("file", "deep/" + "n" * 120 + "/" + "long-name-" * 12, 33),
    ("file", "caf\xe9-\udcff.txt", 5), ("char", "dev/null", 1, 3), ("block", "dev/sda", 8, 0), ("fifo", "run/fifo"),
    ("xattr", "bin/ping", 10, {"security.capability": "\x01\x00"}), ("dir", "empty"),
    ("whiteout", "etc/old"), ("opaque", "var/cache"),
]


def client_for(registry: LocalRegistry | FaultProxy, cache_dir: Path) -> AsyncClient:
    return AsyncClient(registry.address, cache=ContentCache(cache_dir), docker_config=False, environment=False)


def run(coro_fn, registry, cache_dir: Path):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        async with client_for(registry, cache_dir) as client:
            return await coro_fn(client)

    return asyncio.run(main())


TAR_LINE = re.compile(r"^(?P<perm>\S{10}) (?P<uid>\d+)/(?P<gid>\d+)\s+(?P<size>\d+|\d+,\s*\d+) "
                      r"(?P<date>\S+ \S+) (?P<rest>.*)$")


def gnu_tar_listing(tar_bytes: bytes) -> list[dict[str, object]]:
    """GNU ``tar -tv`` of a tar, parsed: name (as ``/``-rooted, clean), type letter, size, uid, gid, link."""
    out = subprocess.run(["tar", "-tv", "--numeric-owner", "--quoting-style=literal", "-f", "-"], input=tar_bytes,
                         capture_output=True, check=True).stdout
    rows = []
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        m = TAR_LINE.match(line)
        assert m, line
        rest, link = m["rest"], None
        if " -> " in rest:
            rest, link = rest.split(" -> ", 1)
        elif " link to " in rest:
            rest, link = rest.split(" link to ", 1)
        size = m["size"]
        rows.append({"name": rest, "letter": m["perm"][0], "size": 0 if "," in size else int(size),
                     "uid": int(m["uid"]), "gid": int(m["gid"]), "link": link, "mode": m["perm"][1:]})
    return rows


LETTER = {"file": "-", "dir": "d", "symlink": "l", "hardlink": "h", "char": "c", "block": "b", "fifo": "p",
          "whiteout": "-", "opaque_whiteout": "-", "meta": "-"}


def perm_string(mode: int) -> str:
    out = ""
    for shift in (6, 3, 0):
        bits = (mode >> shift) & 7
        out += ("r" if bits & 4 else "-") + ("w" if bits & 2 else "-") + ("x" if bits & 1 else "-")
    return out


@pytest.mark.parametrize("how", ["gzip", "zstd", "tar", "docker"])
def test_listing_matches_gnu_tar(registry: LocalRegistry, repo_name: str, tmp_path: Path, how: str) -> None:
    """Every entry of every media type, in tar order, against GNU tar's own reading of the same bytes."""
    tar = build_tar(RICH)

    async def go(client: AsyncClient):  # type: ignore[no-untyped-def]
        pushed = await push_layers(client, repo_name, "v1", [tar], how)
        return pushed, await image_files(client.repo(repo_name), "v1")

    _, found = run(go, registry, tmp_path / "c")
    layer = found.layers[0]
    theirs = gnu_tar_listing(tar)
    assert len(layer.entries) == len(theirs) == len(RICH)
    for ours, gnu in zip(layer.entries, theirs, strict=True):
        raw = gnu["name"]
        assert isinstance(raw, str)
        shown_raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        assert ours.raw_name == (shown_raw.rstrip("/") if ours.type == "dir" else shown_raw)
        expect = "/" + raw.removeprefix("./").rstrip("/")
        shown = expect.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        assert ours.path == shown
        assert LETTER[ours.type] == gnu["letter"]
        assert ours.size == gnu["size"], ours.path
        assert (ours.uid, ours.gid) == (gnu["uid"], gnu["gid"])
        assert perm_string(ours.mode) == gnu["mode"]
        if gnu["link"] is not None:
            assert ours.linkname is not None and ours.linkname.lstrip("/") == str(gnu["link"]).lstrip("/")
    assert layer.format == {"docker": "gzip"}.get(how, how)
    assert layer.diff_id == sha(tar)
    assert layer.expanded_size == len(tar)
    by_path = {e.path: e for e in layer.entries}
    wh, opq = by_path["/etc/.wh.old"], by_path["/var/cache/.wh..wh..opq"]
    assert wh.type == "whiteout" and wh.whiteout_target == "/etc/old"
    assert opq.type == "opaque_whiteout" and opq.whiteout_target == "/var/cache"
    assert by_path["/bin/ping"].xattrs == {"security.capability": "\x01\x00"}
    assert (by_path["/dev/sda"].devmajor, by_path["/dev/sda"].devminor) == (8, 0)
    assert "non_utf8" in by_path["/caf\xe9-\\xff.txt"].flags


def test_gzip_multi_member_and_zstd_multi_frame(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    """A gzip layer of several members (as eStargz writes) and a zstd layer of several frames, read to the end."""
    tar = build_tar([("file", f"f{i}", 4000 + i) for i in range(40)])
    cut = [0, 512 * 10, 512 * 40, len(tar)]
    parts = [tar[a:b] for a, b in itertools.pairwise(cut)]
    gz = b"".join(gzip.compress(p) for p in parts)
    zs = b"".join(zstandard.ZstdCompressor().compress(p) for p in parts)
    for blob, media in ((gz, mt.OCI_LAYER_GZIP), (zs, mt.OCI_LAYER_ZSTD)):

        async def go(client: AsyncClient, blob: bytes = blob, media: str = media):  # type: ignore[no-untyped-def]
            repo = client.repo(repo_name)
            pushed = await repo.blobs.upload(blob)
            return await read_layer(repo, Descriptor(media_type=media, digest=pushed.digest, size=pushed.size))

        layer = run(go, registry, tmp_path / media[-4:])
        assert [e.path for e in layer.entries] == [f"/f{i}" for i in range(40)]
        assert layer.diff_id == sha(tar)


def test_foreign_and_nondistributable_are_reported_without_download(
        registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    for media, status in ((mt.DOCKER_FOREIGN_LAYER, "foreign"), (mt.OCI_LAYER_NONDIST_GZIP, "non-distributable")):
        desc = Descriptor(media_type=media, digest=digest, size=1234, urls=["https://example.invalid/l.tgz"])
        registry.reset_request_count()

        async def go(client: AsyncClient, desc: Descriptor = desc):  # type: ignore[no-untyped-def]
            return await read_layer(client.repo(repo_name), desc)

        layer = run(go, registry, tmp_path)
        assert layer.status == status and layer.entries == [] and layer.urls == ("https://example.invalid/l.tgz",)
        assert registry.request_count(path_contains="/blobs/") == 0


@pytest.mark.parametrize("media", ["application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                                   "application/vnd.example.weird"])
def test_encrypted_or_unknown_type_names_the_type(registry: LocalRegistry, repo_name: str, tmp_path: Path,
                                                  media: str) -> None:
    desc = Descriptor(media_type=media, digest="sha256:" + "cd" * 32, size=10)

    async def go(client: AsyncClient):  # type: ignore[no-untyped-def]
        return await read_layer(client.repo(repo_name), desc)

    with pytest.raises(UnsupportedLayerError, match=re.escape(media)):
        run(go, registry, tmp_path)


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.url)
    yield p
    p.stop()


def test_flipped_byte_in_transit_raises_and_caches_nothing(registry: LocalRegistry, proxy: FaultProxy,
                                                           repo_name: str, tmp_path: Path) -> None:
    """The registry holds the right bytes; the proxy flips one on the way (a real registry cannot show this)."""
    tar = build_tar([("file", f"f{i}", 3000) for i in range(30)])
    blob = compress(tar)
    pushed = run(lambda c: push_layers(c, repo_name, "v1", [tar]), registry, tmp_path / "push")
    # flip a byte inside the deflate data's stored trailer region is as good as anywhere: the digest must catch it
    proxy.flip_byte(len(blob) - 3, match=lambda method, path: method == "GET" and pushed.layer_digests[0] in path)
    cache_dir = tmp_path / "c"

    async def go(client: AsyncClient):  # type: ignore[no-untyped-def]
        return await image_files(client.repo(repo_name), "v1")

    with pytest.raises((DigestMismatchError, LayerError)) as info:
        run(go, proxy, cache_dir)
    assert isinstance(info.value, DigestMismatchError) or "digest" in str(info.value)
    assert ContentCache(cache_dir).get_table(cache_kind(False), pushed.layer_digests[0]) is None
    layer = run(go, registry, cache_dir).layers[0]  # and straight from the registry it is fine
    assert len(layer.entries) == 30


def _bad_layer(registry: LocalRegistry, repo_name: str, tmp_path: Path, blob: bytes,
               media: str = mt.OCI_LAYER_GZIP, limits: LayerLimits | None = None):  # type: ignore[no-untyped-def]
    async def go(client: AsyncClient):  # type: ignore[no-untyped-def]
        repo = client.repo(repo_name)
        pushed = await repo.blobs.upload(blob)
        desc = Descriptor(media_type=media, digest=pushed.digest, size=pushed.size)
        try:
            return await read_layer(repo, desc, limits=limits)
        except Exception:
            assert repo.cache.get_table(cache_kind(False), pushed.digest) is None  # nothing bad is cached
            raise

    return run(go, registry, tmp_path / "c")


def test_truncated_layers(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    tar = build_tar([("file", f"f{i}", 5000) for i in range(20)])
    with pytest.raises(LayerError, match="truncated"):
        _bad_layer(registry, repo_name, tmp_path, compress(tar)[:-200])
    with pytest.raises(LayerError, match="tar"):
        _bad_layer(registry, repo_name, tmp_path, compress(tar[:30000]))
    with pytest.raises(LayerError):
        _bad_layer(registry, repo_name, tmp_path, compress(tar, "zstd")[:-50], mt.OCI_LAYER_ZSTD)


def test_flipped_byte_in_the_stored_layer(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    """A layer whose deflate data was damaged before it was pushed (its digest matches the damage): CRC error."""
    blob = bytearray(compress(build_tar([("file", f"f{i}", bytes(range(256)) * 20) for i in range(20)])))
    blob[len(blob) // 2] ^= 0x40
    with pytest.raises(LayerError, match=r"corrupt|CRC|invalid"):
        _bad_layer(registry, repo_name, tmp_path, bytes(blob))


def test_trailing_garbage_after_gzip(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    blob = compress(build_tar([("file", "a", 10)])) + b"GARBAGE-AFTER-THE-STREAM"
    with pytest.raises(LayerError, match=r"trailing garbage|corrupt"):
        _bad_layer(registry, repo_name, tmp_path, blob)
    # zero padding after the last member is what gzip allows, and is not an error
    padded = compress(build_tar([("file", "a", 10)])) + b"\0" * 100
    assert [e.path for e in _bad_layer(registry, repo_name, tmp_path, padded).entries] == ["/a"]


def test_gzip_bomb_stops_at_the_documented_limit(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    """A few tens of KB of gzip expanding to 64 MiB stops past LayerLimits.ratio_floor (16 MiB) at 256×."""
    buf = gzip.compress(build_tar([("file", "zeros", b"\0" * (64 * 1024 * 1024))]), compresslevel=9)
    assert len(buf) < 100_000
    with pytest.raises(LayerLimitError, match="max_ratio"):
        _bad_layer(registry, repo_name, tmp_path, buf)
    with pytest.raises(LayerLimitError, match="max_expanded_bytes"):
        _bad_layer(registry, repo_name, tmp_path, buf, limits=LayerLimits(max_expanded_bytes=1 << 20, max_ratio=None))
    trusted = _bad_layer(registry, repo_name, tmp_path, buf, limits=LayerLimits(max_ratio=None))
    assert trusted.entries[0].size == 64 * 1024 * 1024


def test_huge_pax_header_and_entry_count_limits(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    info = tarfile.TarInfo("big-pax")
    info.pax_headers = {"comment": "p" * (3 * 1024 * 1024)}
    import io

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(info)
    with pytest.raises(LayerLimitError, match="max_header_bytes"):
        _bad_layer(registry, repo_name, tmp_path, compress(raw.getvalue()))
    many = compress(build_tar([("file", f"f{i}", 0) for i in range(50)]))
    with pytest.raises(LayerLimitError, match="max_entries"):
        _bad_layer(registry, repo_name, tmp_path, many, limits=LayerLimits(max_entries=10))


def test_not_a_tar_at_all(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="tar"):
        _bad_layer(registry, repo_name, tmp_path, gzip.compress(b"hello, I am not a tar archive " * 40))


def test_hostile_names_are_normalised_and_flagged(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    tar = build_tar([("file", "../../etc/shadow", 4), ("file", "/abs/file", 3), ("file", "a/./b/../c", 2),
                     ("file", "x/.wh.", 0), ("symlink", "loop1", "loop2"), ("symlink", "loop2", "loop1"),
                     ("symlink", "up", "../../../../etc/passwd")])
    layer = _bad_layer(registry, repo_name, tmp_path, compress(tar))
    rows = {e.path: e for e in layer.entries}
    assert "dotdot" in rows["/etc/shadow"].flags
    assert "absolute" in rows["/abs/file"].flags
    assert "/a/c" in rows and rows["/a/c"].raw_name == "a/./b/../c"
    assert all(p.startswith("/") and ".." not in p.split("/") for p in rows)
    assert "bare_whiteout" in rows["/x/.wh."].flags and rows["/x/.wh."].type == "meta"


def test_memory_stays_bounded_while_a_big_layer_streams(registry: LocalRegistry, repo_name: str,
                                                        tmp_path: Path) -> None:
    """A 96 MiB tar (random-ish content, so about that much crosses the wire) never has more than a few MiB of it
    held: tracemalloc's peak over the read, all threads, stays under 24 MiB."""
    import os
    import tracemalloc

    tar = build_tar([("file", f"f{i}", os.urandom(1 << 20) * 4) for i in range(24)])

    async def go(client: AsyncClient):  # type: ignore[no-untyped-def]
        repo = client.repo(repo_name)
        pushed = await repo.blobs.upload(tar)
        desc = Descriptor(media_type=mt.OCI_LAYER, digest=pushed.digest, size=pushed.size)
        tracemalloc.start()
        try:
            layer = await read_layer(repo, desc)
            return layer, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    layer, peak = run(go, registry, tmp_path / "c")
    assert len(layer.entries) == 24
    assert peak < 24 * 1024 * 1024, peak


@pytest.mark.parametrize("fmt", ["gnu", "oldgnu", "posix", "ustar"])
def test_archives_written_by_gnu_tar(registry: LocalRegistry, repo_name: str, tmp_path: Path, fmt: str) -> None:
    """Archives GNU tar writes itself (long names as GNU 'L' records or PAX, base-256 owners, a sparse file, a
    hardlink, a symlink, a fifo), listed by ocinb and by GNU tar and Python's tarfile, entry by entry."""
    import os

    root = tmp_path / "tree"
    deep = root / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "file.txt").write_bytes(b"hello" * 100)
    (root / "small").write_bytes(b"x")
    with open(root / "sparse.img", "wb") as fh:
        fh.seek(5 * 1024 * 1024)
        fh.write(b"end")
    os.link(root / "small", root / "small.hard")
    os.symlink("small", root / "small.sym")
    os.mkfifo(root / "fifo")
    owner = ["--owner=someone:3000000"] if fmt in ("gnu", "oldgnu", "posix") else []
    if fmt == "ustar":  # names over 100 bytes do not fit these formats
        import shutil

        shutil.rmtree(root / ("d" * 60))
    sparse = ["-S"] if fmt != "ustar" else []
    tar = subprocess.run(["tar", "-c", f"--format={fmt}", *owner, *sparse, "-C", str(root), "."],
                         capture_output=True, check=True).stdout
    layer = _bad_layer(registry, repo_name, tmp_path, compress(tar, "zstd"), mt.OCI_LAYER_ZSTD)
    theirs = gnu_tar_listing(tar)
    with tarfile.open(fileobj=__import__("io").BytesIO(tar)) as tf:
        python = tf.getmembers()
    assert len(layer.entries) == len(theirs) == len(python)
    for ours, gnu, py in zip(layer.entries, theirs, python, strict=True):
        assert ours.path == "/" + str(gnu["name"]).removeprefix("./").rstrip("/") or ours.path == "/"
        assert ours.path.lstrip("/") == py.name.removeprefix("./").removeprefix(".").lstrip("/")
        assert LETTER[ours.type] == gnu["letter"], ours.path
        assert (ours.uid, ours.gid, ours.mode) == (py.uid, py.gid, py.mode & 0o7777)
        assert ours.size == py.size and ours.mtime == py.mtime, ours.path
        assert ours.linkname == (py.linkname or None) or ours.linkname == "/" + py.linkname.removeprefix("./")
    assert layer.diff_id == sha(tar)
    if owner:
        assert {e.uid for e in layer.entries} == {3000000}


def _walk_bytes(blob: bytes, limits: LayerLimits | None = None):  # type: ignore[no-untyped-def]
    """The reader's worker on ``blob`` fed through its queue, in-process (parsing needs no registry)."""
    import queue
    import threading

    from ocinb.ops import layer_reader

    q: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    pipe = layer_reader._Pipe(q, lambda: None)

    def feed() -> None:
        for i in range(0, len(blob), 4096):
            q.put(blob[i:i + 4096])
        q.put(None)

    threading.Thread(target=feed, daemon=True).start()
    desc = Descriptor(media_type=mt.OCI_LAYER, digest=sha(blob), size=len(blob))
    return layer_reader._walk(pipe, desc, True, limits or LayerLimits())


@pytest.mark.parametrize("how", ["tar", "gzip", "zstd"])
def test_damaged_bytes_give_a_layer_error_or_a_listing_never_a_crash(how: str) -> None:
    """Hypothesis damages a tar with PAX, GNU long names, links and devices (byte flips, cuts, insertions): the
    parser answers with rows or a LayerError, nothing else, and ends (no loop on a hostile size field)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = build_tar([*RICH[:6], ("file", "z" * 150, 1500)])
    blob0 = compress(base, how)

    @settings(max_examples=int(__import__("os").environ.get("OCINB_FUZZ_EXAMPLES", "150")), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.integers(0, len(blob0) - 1), st.integers(0, 255), st.sampled_from("fcx")),
                    min_size=1, max_size=4))
    def check(edits: list[tuple[int, int, str]]) -> None:
        blob = bytearray(blob0)
        for pos, value, kind in edits:
            pos = min(pos, len(blob) - 1)
            if kind == "f":
                blob[pos] = value
            elif kind == "c":
                del blob[pos:]
                if not blob:
                    blob = bytearray(b"\0")
            else:
                blob[pos:pos] = bytes([value]) * 7
        try:
            layer = _walk_bytes(bytes(blob))
        except LayerError:
            return
        assert all(e.path.startswith("/") for e in layer.entries)

    check()
