"""``ocinb.diff`` against the real registry, on images whose differences are known because the test built them:
added, removed, modified (content, mode, owner, symlink target), a file moved between layers, a shared base of
several layers that the registry's access log shows was never downloaded, whiteouts that need the base (read
once, then from the cache), history, config and packages; the Debian version order against
``dpkg --compare-versions``."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import random
import shutil
import subprocess
import tarfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import ocinb
from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.client import AsyncClient
from ocinb.image_diff import ImageDiff
from ocinb.ops.imagediff import chain_ids, compare_deb
from ocinb.ops.push import Layer
from ocinb.testing import LocalRegistry

MTIME = 1_700_000_000
Entry = dict[str, Any]
"""{"name", "kind" (file/dir/symlink/whiteout), "data", "mode", "uid", "gid", "link", "mtime", "uname"}"""


def tar_of(entries: Sequence[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            kind = e.get("kind", "file")
            name = e["name"]
            if kind == "whiteout":
                head, _, base = name.rpartition("/")
                name = f"{head}/.wh.{base}" if head else f".wh.{base}"
            info = tarfile.TarInfo(name)
            info.mtime = e.get("mtime", MTIME)
            info.uid, info.gid = e.get("uid", 0), e.get("gid", 0)
            info.uname = info.gname = e.get("uname", "root")
            data = e.get("data", b"") if kind == "file" else b""
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, e.get("mode", 0o755)
            elif kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, e["link"], 0o777
            else:
                info.size, info.mode = len(data), e.get("mode", 0o644)
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def push(client: AsyncClient, repo: str, tag: str, layers: Sequence[bytes], env: Sequence[str] = (),
               history: Sequence[str] | None = None) -> list[str]:
    """Push an image of gzip ``layers`` (tars) with a config of real diff_ids; the layer digests."""
    blobs = [gzip.compress(t, mtime=0) for t in layers]
    config = {"architecture": "amd64", "os": "linux", "config": {"Env": list(env), "Cmd": ["/app/run"]},
              "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]},
              "history": [{"created_by": h} for h in (history or [f"layer {i}" for i in range(len(layers))])]}
    await client.repo(repo).push_image(tag, json.dumps(config).encode(), [Layer(b, mt.OCI_LAYER_GZIP) for b in blobs])
    return [sha(b) for b in blobs]


def run(registry: LocalRegistry, cache_dir: Path, fn: Callable[[AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with AsyncClient(registry.address, cache=ContentCache(cache_dir), docker_config=False,
                               environment=False) as c:
            return await fn(c)

    return asyncio.run(main())


STATUS = """Package: {name}
Status: install ok installed
Architecture: amd64
Version: {version}
Installed-Size: 10

"""


def status(**packages: str) -> bytes:
    return "".join(STATUS.format(name=n.replace("_", "-"), version=v) for n, v in packages.items()).encode()


rng = random.Random(13)
BASE = [
    tar_of([{"name": "etc", "kind": "dir"}, {"name": "etc/keep", "data": b"keep"},
            {"name": "etc/motd", "data": b"hello"}, {"name": "base", "kind": "dir"},
            {"name": "base/blob0", "data": rng.randbytes(400_000)}]),
    tar_of([{"name": "base/blob1", "data": rng.randbytes(300_000)}, {"name": "base/dir", "kind": "dir"},
            {"name": "base/dir/a", "data": b"a"}, {"name": "base/dir/b", "data": b"b"}]),
    tar_of([{"name": "base/blob2", "data": rng.randbytes(200_000)}]),
]
A_TOP = [
    tar_of([{"name": "app", "kind": "dir"}, {"name": "app/content", "data": b"version 1"},
            {"name": "app/mode", "data": b"m", "mode": 0o644}, {"name": "app/owner", "data": b"o"},
            {"name": "app/link", "kind": "symlink", "link": "target-1"}, {"name": "app/removed", "data": b"bye"},
            {"name": "app/same", "data": b"same"}, {"name": "app/touched", "data": b"t", "mtime": MTIME},
            {"name": "app/renamed-owner", "data": b"n", "uname": "root"},
            {"name": "app/moved", "data": b"moving between layers"},
            {"name": "var/lib/dpkg/status", "data": status(libfoo="1.0-1", oldpkg="2:0.9", same_pkg="3.0",
                                                              downer="1.2~rc1")}]),
]
B_TOP = [
    tar_of([{"name": "app", "kind": "dir"}, {"name": "app/content", "data": b"version 2"},
            {"name": "app/mode", "data": b"m", "mode": 0o755}, {"name": "app/owner", "data": b"o", "uid": 1000},
            {"name": "app/link", "kind": "symlink", "link": "target-2"}, {"name": "app/added", "data": b"hi"},
            {"name": "app/same", "data": b"same"}, {"name": "app/touched", "data": b"t", "mtime": MTIME + 60},
            {"name": "app/renamed-owner", "data": b"n", "uname": "daemon"},
            {"name": "var/lib/dpkg/status", "data": status(libfoo="1.0-2", newpkg="0.1", same_pkg="3.0",
                                                              downer="1.2~beta1")}]),
    tar_of([{"name": "app/moved", "data": b"moving between layers"}]),
]


@pytest.fixture(scope="module")
def images(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    async def build(c: AsyncClient) -> dict[str, list[str]]:
        a = await push(c, "diff/app", "a", [*BASE, *A_TOP], env=["PATH=/bin", "MODE=old"],
                       history=["base 0", "base 1", "base 2", "app v1"])
        b = await push(c, "diff/app", "b", [*BASE, *B_TOP], env=["PATH=/bin", "MODE=new", "EXTRA=1"],
                       history=["base 0", "base 1", "base 2", "app v2", "move"])
        c_ = await push(c, "diff/app", "c", [*BASE, tar_of([{"name": "etc/keep", "kind": "whiteout"},
                                                            {"name": "base/dir", "kind": "whiteout"},
                                                            {"name": "new", "data": b"n"}])])
        return {"a": a, "b": b, "c": c_}

    return run(registry, tmp_path_factory.mktemp("push"), build)


def blob_gets(registry: LocalRegistry, since: int) -> list[str]:
    return [e.path.rsplit("/", 1)[-1] for e in registry.access_log()[since:] if e.method == "GET"
            and "/blobs/" in e.path]


def test_files_layers_history_config_packages_and_the_base_never_read(
        images: dict[str, list[str]], registry: LocalRegistry, tmp_path: Path) -> None:
    """Every known difference, each with what changed; the 3 shared base layers recognised by ChainID and never
    downloaded (the access log has no GET of them, and the bytes fetched are the differing layers')."""
    before = len(registry.access_log())
    d: ImageDiff = run(registry, tmp_path / "c", lambda c: c.diff("diff/app:a", "diff/app:b"))
    log = registry.access_log()[before:]
    got = [e.path.rsplit("/", 1)[-1] for e in log if e.method == "GET" and "/blobs/" in e.path]
    base = set(images["a"][:3])
    assert not base & set(got)
    layer_bytes = sum(e.size for e in log if e.method == "GET" and e.path.rsplit("/", 1)[-1] in
                      set(images["a"][3:]) | set(images["b"][3:]))
    assert layer_bytes == sum(len(gzip.compress(t, mtime=0)) for t in [*A_TOP, *B_TOP])
    assert d.shared_layers == 3 and not d.base_read

    rows = {r.path: r for r in d.files.itertuples()}
    status_a, status_b = (tar_member(t, "var/lib/dpkg/status") for t in (A_TOP[0], B_TOP[0]))
    status_change = "size" if len(status_a) != len(status_b) else "content"
    assert {p: (r.change, r.changed if isinstance(r.changed, str) else None) for p, r in rows.items()} == {
        "/app/added": ("added", None), "/app/removed": ("removed", None),
        "/app/content": ("modified", "content"), "/app/mode": ("modified", "mode"),
        "/app/owner": ("modified", "owner"), "/app/link": ("modified", "link"),
        "/var/lib/dpkg/status": ("modified", status_change),
    }
    assert rows["/app/mode"].a_mode == "0644" and rows["/app/mode"].b_mode == "0755"
    assert rows["/app/owner"].b_owner == "1000:0"
    assert (rows["/app/link"].a_link, rows["/app/link"].b_link) == ("target-1", "target-2")
    assert rows["/app/content"].a_digest == sha(b"version 1") and rows["/app/content"].b_digest == sha(b"version 2")
    assert rows["/app/added"].base_unknown and rows["/app/removed"].base_unknown
    assert not rows["/app/content"].base_unknown

    layers = d.layers
    assert layers["shared"].tolist() == [True, True, True, False, False]
    assert layers["same_chain_id"].tolist() == [True, True, True, False, False]
    assert layers["read"].tolist() == [False, False, False, True, True]
    assert layers["a_entries"].isna().tolist() == [True, True, True, False, True]
    expected_chain = chain_ids([sha(t) for t in [*BASE, *A_TOP]])
    assert layers["a_chain_id"].tolist()[:4] == expected_chain
    assert d.history["same"].tolist() == [True, True, True, False, False]
    cfg = {r.key: (val(r.a), val(r.b), r.change) for r in d.config.itertuples()}
    assert cfg == {"Env.MODE": ("old", "new", "modified"), "Env.EXTRA": (None, "1", "added")}
    pk = {r.name: (r.change, val(r.a_version), val(r.b_version)) for r in d.packages.itertuples()}
    assert pk == {"libfoo": ("upgraded", "1.0-1", "1.0-2"), "oldpkg": ("removed", "2:0.9", None),
                  "newpkg": ("added", None, "0.1"), "downer": ("downgraded", "1.2~rc1", "1.2~beta1")}
    sizes = d.sizes.set_index("measure")
    assert sizes.loc["compressed", "delta"] == (sum(len(gzip.compress(t, mtime=0)) for t in B_TOP)
                                                - sum(len(gzip.compress(t, mtime=0)) for t in A_TOP))
    assert sizes.loc["uncompressed", "delta"] == sum(map(len, B_TOP)) - sum(map(len, A_TOP))
    assert pd_na(sizes.loc["squashed", "a"])
    html = d._repr_html_()
    assert "<script" not in html.lower() and "diff/app:a" in html


def tar_member(tar: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


def val(value: Any) -> Any:
    return None if pd_na(value) else value


def pd_na(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_not_semantic_sees_times_and_names_and_globs_ignore(images: dict[str, list[str]], registry: LocalRegistry,
                                                           tmp_path: Path) -> None:
    """``semantic=False`` adds the mtime and the user name changes; ``ignore_paths`` leaves paths out."""
    d = run(registry, tmp_path / "c", lambda c: c.diff("diff/app:a", "diff/app:b", semantic=False,
                                                       ignore_paths=["app/l*", "/var/lib/dpkg"]))
    rows = dict(zip(d.files["path"], d.files["changed"], strict=True))
    assert rows["/app/touched"] == "mtime" and rows["/app/renamed-owner"] == "names"
    assert "/app/link" not in rows and "/var/lib/dpkg/status" not in rows
    assert "/app/content" in rows


def test_read_base_gives_exact_one_sided_rows(images: dict[str, list[str]], registry: LocalRegistry,
                                              tmp_path: Path) -> None:
    """With the base read (``read_base=True``), the one-sided paths are exact (the base lacks them), the rows are
    the same, and the sizes of both sides are known; the base blobs are each fetched once."""
    before = len(registry.access_log())
    d = run(registry, tmp_path / "c", lambda c: c.diff("diff/app:a", "diff/app:b", read_base=True))
    got = blob_gets(registry, before)
    assert sorted(x for x in got if x in images["a"][:3]) == sorted(images["a"][:3])
    assert d.base_read and not d.files["base_unknown"].any()
    assert set(d.files["path"]) == {"/app/added", "/app/removed", "/app/content", "/app/mode", "/app/owner",
                                    "/app/link", "/var/lib/dpkg/status"}
    sizes = d.sizes.set_index("measure")
    assert sizes.loc["uncompressed", "a"] == sum(map(len, [*BASE, *A_TOP]))
    assert sizes.loc["squashed", "delta"] == (len(b"hi") - len(b"bye") + len(status(
        libfoo="1.0-2", newpkg="0.1", same_pkg="3.0", downer="1.2~beta1")) - len(status(
        libfoo="1.0-1", oldpkg="2:0.9", same_pkg="3.0", downer="1.2~rc1")))


def test_whiteouts_read_the_base_once_then_the_cache(images: dict[str, list[str]], registry: LocalRegistry,
                                                     tmp_path: Path) -> None:
    """A whiteout of a base file and of a base directory: the exact removed paths (the directory's children
    too) need the base, read once; a second diff with the same cache fetches no blob at all."""
    cache_dir = tmp_path / "c"
    before = len(registry.access_log())
    d = run(registry, cache_dir, lambda c: c.diff("diff/app:b", "diff/app:c"))
    got = blob_gets(registry, before)
    assert sorted(x for x in got if x in images["a"][:3]) == sorted(images["a"][:3])
    removed = set(d.files.loc[d.files["change"] == "removed", "path"])
    assert {"/etc/keep", "/base/dir", "/base/dir/a", "/base/dir/b", "/app/content", "/app/moved"} <= removed
    assert "/new" in set(d.files.loc[d.files["change"] == "added", "path"])
    assert "/etc/motd" not in set(d.files["path"])
    before = len(registry.access_log())
    again = run(registry, cache_dir, lambda c: c.diff("diff/app:b", "diff/app:c"))
    assert blob_gets(registry, before) == []
    assert again.files.equals(d.files)


def test_base_table_from_the_cache_when_known(images: dict[str, list[str]], registry: LocalRegistry,
                                              tmp_path: Path) -> None:
    """After ``packages`` of image a (which reads and caches every layer's table, without content digests),
    diffing a with c reads only the differing top layers (with digests): the base's tables come from the cache."""
    cache_dir = tmp_path / "c"
    run(registry, cache_dir, lambda c: c.packages("diff/app:a"))
    before = len(registry.access_log())
    d = run(registry, cache_dir, lambda c: c.diff("diff/app:a", "diff/app:c"))
    got = blob_gets(registry, before)
    assert not set(got) & set(images["a"][:3])
    assert {images["c"][3], images["a"][3]} <= set(got)
    assert d.base_read and "/etc/keep" in set(d.files["path"])


def test_module_level_and_cli(images: dict[str, list[str]], registry: LocalRegistry, isolated_defaults: None,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """``ocinb.diff(full_a, full_b)`` and ``ocinb diff A B -t packages -f json`` agree."""
    a, b = f"{registry.address}/diff/app:a", f"{registry.address}/diff/app:b"
    d = ocinb.diff(a, b)
    from ocinb.cli import main

    assert main(["-f", "json", "diff", a, b, "--table", "packages"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["change"]) for r in rows] == list(zip(d.packages["name"], d.packages["change"],
                                                                strict=True))
    assert main(["diff", a, b]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ImageDiff(") and "/app/content" in out


DEB_VERSIONS = ["1.0", "1.0-1", "1.0-2", "1:0.9", "2:0.1", "1.0~rc1", "1.0~~", "1.0~", "1.0+b1", "1.0.1",
                "1.00", "1.0a", "1.0-1ubuntu1", "1.0-1~bpo", "0.9.9", "10", "9", "1.0-0", "1.0.0", "a", "1.0-a",
                "1.2~beta1", "1.2~rc1", "2.36-9+deb12u4", "2.36-9+deb12u10", "1:2.3", "0:2.3"]


def test_debian_order_agrees_with_dpkg() -> None:
    """Every pair of a list of tricky versions, and random ones, ordered as ``dpkg --compare-versions`` does."""
    if shutil.which("dpkg") is None:
        pytest.skip("needs dpkg")
    rand = random.Random(7)
    alphabet = "0123456789ab~+.-"
    extra = ["".join(rand.choice(alphabet) for _ in range(rand.randint(1, 6))) for _ in range(40)]
    extra = ["1" + v.replace("-", ".") for v in extra]  # upstream must start with a digit for dpkg to accept it
    versions = DEB_VERSIONS + extra
    pairs = [(x, y) for x in versions for y in versions if x != y][::3]
    for x, y in pairs:
        lt = subprocess.run(["dpkg", "--compare-versions", x, "lt", y], capture_output=True).returncode == 0
        eq = subprocess.run(["dpkg", "--compare-versions", x, "eq", y], capture_output=True).returncode == 0
        ours = compare_deb(x, y)
        assert (ours < 0, ours == 0) == (lt, eq), (x, y)


def test_tables_have_the_documented_columns(images: dict[str, list[str]], registry: LocalRegistry,
                                            tmp_path: Path) -> None:
    """Each table of an ImageDiff has exactly the columns and dtypes docs/columns.md lists, in order."""
    import re

    from ocinb.frames import STR

    docs = (Path(__file__).resolve().parent.parent / "docs" / "columns.md").read_text()
    section = docs.split("## Diff:", 1)[1].split("\n## ", 1)[0]
    d = run(registry, tmp_path / "c", lambda c: c.diff("diff/app:a", "diff/app:c"))
    for part in section.split("\n### ")[1:]:
        name = part.split("`")[1]
        documented: list[tuple[str, str]] = []
        for line in part.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| `") else []
            if len(cells) == 3:
                documented += [(n, cells[1]) for n in re.findall(r"`(\w+)`", cells[0])]
        frame = d.table(name)
        dtypes = {"str": STR}
        assert [(c, dtypes.get(t, t)) for c, t in documented] == [(c, str(t)) for c, t in frame.dtypes.items()], name


def test_summary_html_escapes_registry_strings(registry: LocalRegistry, tmp_path: Path) -> None:
    """A path and an env value made of markup appear escaped in the HTML summary, never as markup."""
    hostile = "<script>alert(1)</script>"

    async def build(c: AsyncClient) -> ImageDiff:
        await push(c, "diff/hostile", "a", [tar_of([{"name": "x", "data": b"1"}])], env=["K=1"])
        await push(c, "diff/hostile", "b", [tar_of([{"name": "x", "data": b"1"}, {"name": hostile, "data": b"!"}])],
                   env=[f"K={hostile}"])
        return await c.diff("diff/hostile:a", "diff/hostile:b")

    d = run(registry, tmp_path / "c", build)
    html = d._repr_html_()
    assert hostile not in html and "&lt;script&gt;" in html
    assert "<script" not in html.lower()


def test_sync_client_across_two_registries(images: dict[str, list[str]], registry: LocalRegistry,
                                           registry2: LocalRegistry, tmp_path: Path) -> None:
    """``Client.diff(a, b, b_client=other)``: image b on a second registry, the same file rows as within one."""
    run(registry2, tmp_path / "p", lambda c: push(c, "diff/app", "b", [*BASE, *B_TOP],
                                                  env=["PATH=/bin", "MODE=new", "EXTRA=1"]))
    with ocinb.Client(registry.address, cache=ContentCache(tmp_path / "c1"), docker_config=False,
                      environment=False) as one, \
            ocinb.Client(registry2.address, cache=ContentCache(tmp_path / "c2"), docker_config=False,
                         environment=False) as two:
        across = one.diff("diff/app:a", "diff/app:b", b_client=two)
        within = one.diff("diff/app:a", "diff/app:b")
    assert across.files.equals(within.files) and across.shared_layers == 3
