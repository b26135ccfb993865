"""``ocinb.packages`` against independent tools on the same content, read from the real registry: an image made of
this machine's own ``/var/lib/dpkg/status`` (and a few installed packages' files and ``.list`` files, in a later
layer) compared with ``dpkg-query --admindir=… -W``; a venv made here, tarred into a layer, compared with that
venv's ``pip list --format=json``; the streams read once (the registry's access log), only wanted files held."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from _layerkit import MTIME, Pushed, push_layers

import ocinb
from ocinb.cache import ContentCache
from ocinb.client import AsyncClient
from ocinb.ops import catalogers
from ocinb.ops.capture import capture_layers
from ocinb.ops.describe import describe_image
from ocinb.testing import LocalRegistry

DPKG = Path("/var/lib/dpkg")
PACKAGES = ("hostname", "debianutils", "sed")
"""Installed packages whose files (and ``.list``) go into layer 1, so their installing layer is known."""


def dpkg_query(admindir: Path) -> set[tuple[str, str, str]]:
    """(package, version, arch) of every installed package of ``admindir``, as dpkg-query says."""
    out = subprocess.run(["dpkg-query", f"--admindir={admindir}", "-W",
                          "-f=${Package}\t${Version}\t${Architecture}\t${db:Status-Status}\n"],
                         check=True, capture_output=True, text=True).stdout
    return {(p, v, a) for p, v, a, s in (line.split("\t") for line in out.splitlines())
            if s not in ("not-installed", "config-files")}


def add_bytes(tf: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, MTIME
    tf.addfile(info, io.BytesIO(data))


def add_path(tf: tarfile.TarFile, path: Path, arcname: str) -> None:
    """A file, link or directory tree from disk (tarfile's own walk), regular files and links only below."""
    tf.add(str(path), arcname=arcname, recursive=True,
           filter=lambda ti: ti if ti.isreg() or ti.issym() or ti.isdir() else None)


def tar_of(fill: Callable[[tarfile.TarFile], None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        fill(tf)
    return buf.getvalue()


def wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal wheel (PEP 427) built here, for the venv's pip to install without an index."""
    dist = f"{name}-{version}.dist-info"
    path = directory / f"{name}-{version}-py3-none-any.whl"
    contents = {f"{name}/__init__.py": b"x = 1\n", f"{dist}/METADATA":
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: MIT\n".encode(),
                f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: ocinb-test\nRoot-Is-Purelib: true\n"
                                 b"Tag: py3-none-any\n"}
    with zipfile.ZipFile(path, "w") as archive:
        for p, b in contents.items():
            archive.writestr(p, b)
        record = "".join(f"{p},,{len(b)}\n" for p, b in contents.items()) + f"{dist}/RECORD,,\n"
        archive.writestr(f"{dist}/RECORD", record)
    return path


def run(registry: LocalRegistry, cache_dir: Path, fn: Callable[[AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with AsyncClient(registry.address, cache=ContentCache(cache_dir), docker_config=False,
                               environment=False) as c:
            return await fn(c)

    return asyncio.run(main())


class Built:
    def __init__(self, pushed: Pushed, venv: Path, site: str, status: bytes) -> None:
        self.pushed, self.venv, self.site, self.status = pushed, venv, site, status


@pytest.fixture(scope="module")
def built(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Built:
    if not (DPKG / "status").exists() or shutil.which("dpkg-query") is None:
        pytest.skip("needs a Debian machine's dpkg")
    tmp = tmp_path_factory.mktemp("pkgs")
    status = (DPKG / "status").read_bytes()
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check",
                    "-q", str(wheel(tmp, "ocinb_probe", "1.2.3")), str(wheel(tmp, "doomed_probe", "0.1"))],
                   check=True, capture_output=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    site_rel = "opt/venv/" + os.path.relpath(site, venv)

    def base(tf: tarfile.TarFile) -> None:
        add_bytes(tf, "var/lib/dpkg/status", status)
        add_path(tf, Path("/usr/lib/os-release").resolve(), "usr/lib/os-release")
        add_path(tf, Path("/etc/os-release"), "etc/os-release")
        add_bytes(tf, "big/unwanted.bin", os.urandom(3_000_000))

    def installed(tf: tarfile.TarFile) -> None:
        for name in PACKAGES:
            lst = next(DPKG.glob(f"info/{name}.list"), None) or next(DPKG.glob(f"info/{name}:*.list"))
            add_path(tf, lst, f"var/lib/dpkg/info/{lst.name}")
            for line in lst.read_text().splitlines():
                p = Path(line)
                if p.is_file() and not p.is_symlink() and p.stat().st_size < 200_000:
                    add_path(tf, p, line.lstrip("/"))

    def python_layer(tf: tarfile.TarFile) -> None:
        add_path(tf, Path(site), site_rel)

    def delete(tf: tarfile.TarFile) -> None:
        add_bytes(tf, f"{site_rel}/.wh.doomed_probe-0.1.dist-info", b"")

    pushed = run(registry, tmp / "push", lambda c: push_layers(
        c, "pkgs/app", "v1", [tar_of(base), tar_of(installed), tar_of(python_layer), tar_of(delete)]))
    return Built(pushed, venv, site_rel, status)


def test_packages_agree_with_dpkg_query_and_pip(built: Built, registry: LocalRegistry, tmp_path: Path) -> None:
    """Every dpkg package dpkg-query lists for the same status file, with its version and arch; the packages
    whose ``.list`` came in layer 1 installed by layer 1; the venv's own ``pip list`` minus the dist-info a
    later layer whited out; the OS from ``/etc/os-release`` through its symlink."""
    df = run(registry, tmp_path / "c", lambda c: c.packages(built.pushed.ref))
    admindir = tmp_path / "dpkg"
    (admindir / "info").mkdir(parents=True)
    (admindir / "updates").mkdir()
    (admindir / "status").write_bytes(built.status)
    deb = df[df["ecosystem"] == "deb"]
    assert set(zip(deb["name"], deb["version"], deb["arch"], strict=True)) == dpkg_query(admindir)
    layers = dict(zip(deb["name"], deb["layer"], strict=True))
    assert {layers[p] for p in PACKAGES} == {1}
    assert {layer for name, layer in layers.items() if name not in PACKAGES} == {0}
    pip = json.loads(subprocess.run([str(built.venv / "bin" / "python"), "-m", "pip", "list", "--format=json",
                                     "--disable-pip-version-check"], check=True, capture_output=True,
                                    text=True).stdout)
    expected = {(p["name"], p["version"]) for p in pip if p["name"] != "doomed_probe"}
    assert ("doomed_probe", "0.1") in {(p["name"], p["version"]) for p in pip}
    py = df[(df["ecosystem"] == "pypi") & df["path"].str.startswith(built.site + "/")
            & (df["path"].str.count("/") == built.site.count("/") + 2)]
    assert set(zip(py["name"], py["version"], strict=True)) == expected
    assert set(py["layer"]) == {2}
    os_id = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    assert df.attrs["os_id"] == os_id["ID"].strip('"')
    assert df["warning"].isna().all(), df[df["warning"].notna()]
    assert df["purl"].notna().all()


def test_only_wanted_files_are_held_and_each_layer_is_read_once(built: Built, registry: LocalRegistry,
                                                                tmp_path: Path) -> None:
    """The captured bytes are exactly the wanted files (the 3 MB unwanted file never held); the first call
    streams each layer blob once, a second call is served from the cache (the access log shows no blob GET)."""

    async def capture(c: AsyncClient) -> Any:
        repo = c.repo("pkgs/app")
        details = await describe_image(repo, "v1")
        return await capture_layers(repo, details.image.layers)

    layers = run(registry, tmp_path / "cap", capture)
    for layer in layers:
        for index in layer.captured:
            entry = layer.table.entries[index]
            assert catalogers.wanted(entry.path, entry.mode), entry.path
        wanted = [i for i, e in enumerate(layer.table.entries)
                  if e.type == "file" and catalogers.read_limit(e.path, e.mode) is not None]
        assert set(wanted) >= set(layer.captured)
    assert "/big/unwanted.bin" in {e.path for e in layers[0].table.entries}
    assert "/var/lib/dpkg/status" in {layers[0].table.entries[i].path for i in layers[0].captured}

    cache_dir = tmp_path / "twice"
    before = len(registry.access_log())
    first = run(registry, cache_dir, lambda c: c.packages(built.pushed.ref))
    log = registry.access_log()[before:]
    blob_gets = [e.path.rsplit("/", 1)[-1] for e in log if e.method == "GET" and "/blobs/" in e.path]
    assert sorted(d for d in blob_gets if d in built.pushed.layer_digests) == sorted(built.pushed.layer_digests)
    before = len(registry.access_log())
    second = run(registry, cache_dir, lambda c: c.packages(built.pushed.ref))
    log = registry.access_log()[before:]
    assert not [e for e in log if e.method == "GET" and any(d in e.path for d in built.pushed.layer_digests)]
    assert first.reset_index(drop=True).equals(second.reset_index(drop=True))


def test_module_level_and_cli(built: Built, registry: LocalRegistry, isolated_defaults: None,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """``ocinb.packages(full_ref)`` and ``ocinb packages REF -f json`` give the same packages."""
    df = ocinb.packages(f"{registry.address}/{built.pushed.ref}")
    from ocinb.cli import main

    code = main(["-f", "json", "packages", f"{registry.address}/{built.pushed.ref}"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["ecosystem"], r["name"], r["version"]) for r in rows} == set(
        zip(df["ecosystem"], df["name"], df["version"], strict=True))


def test_inspect_shows_the_os_and_package_counts(built: Built, registry: LocalRegistry, tmp_path: Path) -> None:
    """``inspect(contents=True)`` names the OS from os-release and counts the packages per ecosystem: the deb
    count is dpkg-query's, from the same layer streams."""
    admindir = tmp_path / "dpkg"
    (admindir / "info").mkdir(parents=True)
    (admindir / "status").write_bytes(built.status)
    view = run(registry, tmp_path / "c", lambda c: c.inspect(built.pushed.ref, contents=True))
    pretty = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    assert view.os == pretty["PRETTY_NAME"].strip('"')
    assert view.package_counts["deb"] == len(dpkg_query(admindir))
    assert view.package_counts["pypi"] >= 2
    html = view._repr_html_()
    assert f">{view.package_counts['deb']}<" in html and "Packages" in html
    assert f"{view.package_counts['deb']} deb" in repr(view)
