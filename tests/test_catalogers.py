"""The package catalogers against independent tools on the same content: dpkg-query on this machine's dpkg
database, pip on real environments, rpm on a database rpm itself wrote, ``go version -m`` on a binary built here,
the shell on os-release, and packageurl-python on every purl. Hostile input gives warning rows, never a crash."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packageurl import PackageURL

from ocinb.frames import PACKAGES_COLUMNS, STR, packages_frame
from ocinb.ops.catalogers import (
    CATALOGERS,
    Catalog,
    CatalogContext,
    PackageRow,
    TreeEntry,
    WantedFile,
    catalog_files,
    catalog_tree,
    dpkg,
    golang,
    keep,
    read_limit,
    rpm,
    wanted,
)
from ocinb.ops.catalogers.base import MIB

DPKG_STATUS = Path("/var/lib/dpkg/status")
OS_RELEASE = Path("/usr/lib/os-release")
SITE_PACKAGES = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def tree_of(root: Path, *, under: str = "", layer: int = 0) -> Iterator[TreeEntry]:
    """A directory on disk as squashed-tree entries (paths relative to ``root``, prefixed by ``under``)."""
    for dirpath, dirs, files in os.walk(root):
        for name in [*files, *(d for d in dirs if os.path.islink(os.path.join(dirpath, d)))]:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            rel = os.path.join(under, os.path.relpath(full, root))
            if stat.S_ISLNK(info.st_mode):
                yield TreeEntry(rel, layer, 0, refuse(rel), info.st_mode & 0o7777, os.readlink(full))
            elif stat.S_ISREG(info.st_mode):
                yield TreeEntry(rel, layer, info.st_size, (lambda p=full: Path(p).read_bytes()), info.st_mode & 0o7777)


def refuse(path: str) -> Callable[[], bytes]:
    """A read callable that fails the test: for entries a cataloger must not read."""
    def read() -> bytes:
        raise AssertionError(f"{path} was read")
    return read


def check_purls(catalog: Catalog) -> None:
    """Every package row's purl parses with packageurl-python into the row's own type, name and version."""
    for row in catalog.packages:
        assert row.purl, row
        parsed = PackageURL.from_string(row.purl)
        assert parsed.type == row.ecosystem
        if row.ecosystem == "npm" or row.ecosystem == "golang":
            assert (f"{parsed.namespace}/{parsed.name}" if parsed.namespace else parsed.name) == row.name
        elif row.ecosystem == "pypi":
            assert parsed.name == row.name.lower().replace("_", "-")
        else:
            assert parsed.name == row.name
        if row.ecosystem in ("deb", "apk", "rpm"):
            assert parsed.qualifiers.get("arch") == row.arch
        if row.ecosystem not in ("rpm", "golang"):
            assert parsed.version == row.version


# --- dpkg -------------------------------------------------------------------------------------------------


def dpkg_query(admindir: Path) -> list[tuple[str, ...]]:
    """dpkg-query's view of a database: (package, version, arch, source, installed bytes), installed ones."""
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-W",
         "-f=${Package}\t${Version}\t${Architecture}\t${source:Package}\t${Installed-Size}\t${db:Status-Status}\n"],
        check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        package, version, arch, source, size, state = line.split("\t")
        if state in ("not-installed", "config-files"):
            continue
        rows.append((package, version, arch, source, str(int(size) * 1024) if size else ""))
    return sorted(rows)


def ours(catalog: Catalog) -> list[tuple[str, ...]]:
    return sorted((r.name or "", r.version or "", r.arch or "", r.source_name or "",
                   "" if r.size is None else str(r.size)) for r in catalog.packages)


@pytest.fixture(scope="module")
def status_bytes() -> bytes:
    if not DPKG_STATUS.exists() or shutil.which("dpkg-query") is None:
        pytest.skip("needs a Debian machine's dpkg")
    return DPKG_STATUS.read_bytes()


def admindir_with(tmp_path: Path, status: bytes) -> Path:
    admindir = tmp_path / "dpkg"
    (admindir / "info").mkdir(parents=True)
    (admindir / "updates").mkdir()
    (admindir / "status").write_bytes(status)
    return admindir


def test_dpkg_status_agrees_with_dpkg_query(tmp_path: Path, status_bytes: bytes) -> None:
    """Every installed package of this machine's database, every field dpkg-query prints, the same."""
    expected = dpkg_query(admindir_with(tmp_path, status_bytes))
    catalog = catalog_files(
        {"var/lib/dpkg/status": (3, status_bytes), "usr/lib/os-release": (0, OS_RELEASE.read_bytes())},
        links={"etc/os-release": "../usr/lib/os-release"})
    assert len(expected) > 50
    assert ours(catalog) == expected
    assert not catalog.warnings
    assert {r.layer for r in catalog.packages} == {3} and {r.path for r in catalog.packages} == {"var/lib/dpkg/status"}
    assert {r.license for r in catalog.packages} == {None}  # no copyright files in this view
    check_purls(catalog)
    assert catalog.os is not None
    distro = {PackageURL.from_string(r.purl or "").qualifiers.get("distro") for r in catalog.packages}
    namespace = {PackageURL.from_string(r.purl or "").namespace for r in catalog.packages}
    shell = subprocess.run(["sh", "-c", f'. "{OS_RELEASE}"; printf "%s-%s" "$ID" "$VERSION_ID"'],
                           check=True, capture_output=True, text=True).stdout
    assert distro == {shell} and namespace == {shell.split("-")[0]}


def test_dpkg_skips_what_dpkg_query_calls_removed(tmp_path: Path) -> None:
    """``config-files`` and ``not-installed`` entries are not packages; a ``deinstall`` mark on an installed
    package does not remove it (dpkg-query still lists it as installed)."""
    status = textwrap.dedent("""\
        Package: gone
        Status: deinstall ok config-files
        Architecture: amd64
        Version: 1.0-1

        Package: kept
        Status: deinstall ok installed
        Architecture: amd64
        Version: 2.0-1
        Installed-Size: 12
        Source: kept-src (2.0-0)

        Package: purged
        Status: purge ok not-installed
        Architecture: amd64

        Package: fine
        Status: install ok installed
        Architecture: all
        Multi-Arch: foreign
        Version: 1:3.0~rc1-2+b1
        Description: a package
         with a long description
         .
         over lines
        """).encode()
    expected = dpkg_query(admindir_with(tmp_path, status))
    catalog = catalog_files({"var/lib/dpkg/status": (0, status)})
    assert ours(catalog) == expected
    assert [r.name for r in catalog.packages] == ["kept", "fine"]
    kept = catalog.packages[0]
    assert PackageURL.from_string(kept.purl or "").qualifiers["upstream"] == "kept-src@2.0-0"


def test_distroless_status_d_agrees_with_dpkg_query(tmp_path: Path, status_bytes: bytes) -> None:
    """Distroless keeps one file per package in ``status.d/`` with ``.md5sums`` beside it: split this machine's
    database that way, each file in its own layer; the packages are dpkg-query's on the whole file."""
    expected = dpkg_query(admindir_with(tmp_path, status_bytes))
    files: dict[str, tuple[int | None, bytes]] = {}
    paragraphs = [p for p in status_bytes.decode().split("\n\n") if p.strip()]
    for layer, paragraph in enumerate(paragraphs):
        name = next(line.split(":", 1)[1].strip() for line in paragraph.splitlines() if line.startswith("Package:"))
        arch = next((line.split(":", 1)[1].strip() for line in paragraph.splitlines()
                     if line.startswith("Architecture:")), "none")
        files[f"var/lib/dpkg/status.d/{name}_{arch}"] = (layer, paragraph.encode() + b"\n")
        files[f"var/lib/dpkg/status.d/{name}_{arch}.md5sums"] = (layer, b"not a control file at all\n")
    catalog = catalog_files(files)
    assert ours(catalog) == expected
    assert not catalog.warnings
    for row in catalog.packages:
        assert files[row.path][0] == row.layer


def test_dpkg_layer_is_the_layer_that_unpacked_the_package(status_bytes: bytes) -> None:
    """With ``info/<name>[:arch].list`` in the tree (never read), a package's layer is that file's layer."""
    entries = [TreeEntry("var/lib/dpkg/status", 5, len(status_bytes), lambda: status_bytes, 0o644),
               TreeEntry("var/lib/dpkg/info/bash.list", 1, 10, refuse("bash.list"), 0o644),
               TreeEntry("var/lib/dpkg/info/libc6:amd64.list", 0, 10, refuse("libc6.list"), 0o644)]
    catalog = catalog_tree(entries)
    layers = {r.name: r.layer for r in catalog.packages}
    assert layers["bash"] == 1
    if "libc6" in layers:
        assert layers["libc6"] == 0
    assert {layer for name, layer in layers.items() if name not in ("bash", "libc6")} == {5}


def test_dpkg_licenses_agree_with_python_debian(status_bytes: bytes) -> None:
    """Licenses from this machine's ``usr/share/doc/*/copyright`` (doc directories that are symlinks followed),
    against python-debian's DEP-5 parser: the header's and each ``Files`` paragraph's short name, once each."""
    from debian.copyright import Copyright

    doc = Path("/usr/share/doc")
    entries = [TreeEntry("var/lib/dpkg/status", 0, len(status_bytes), lambda: status_bytes, 0o644)]
    for child in doc.iterdir():
        rel = f"usr/share/doc/{child.name}"
        if child.is_symlink():
            entries.append(TreeEntry(rel, 0, 0, refuse(rel), 0o777, os.readlink(child)))
        elif (child / "copyright").is_file() and not (child / "copyright").is_symlink():
            entries.append(TreeEntry(f"{rel}/copyright", 0, (child / "copyright").stat().st_size,
                                     (lambda p=child / "copyright": p.read_bytes()), 0o644))
    catalog = catalog_tree(entries)
    checked = 0
    for row in catalog.packages:
        path = Path(os.path.realpath(doc / (row.name or ""))) / "copyright"
        if not path.is_file():
            assert row.license is None, row
            continue
        try:
            with path.open(encoding="utf-8", errors="replace") as fh:
                parsed = Copyright(fh, strict=False)
        except Exception:  # not machine-readable, or beyond python-debian: nothing to compare with
            continue
        names = [parsed.header.license.synopsis if parsed.header.license else ""]
        names += [p.license.synopsis if p.license else "" for p in parsed.all_files_paragraphs()]
        expected = " AND ".join(dict.fromkeys(n.strip() for n in names if n and n.strip())) or None
        assert row.license == expected, (row.name, path)
        checked += 1
    assert checked > 100


# --- Python ------------------------------------------------------------------------------------------------


def pip_list(python: Path) -> set[tuple[str, str]]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                         check=True, capture_output=True, text=True).stdout
    return {(p["name"], p["version"]) for p in json.loads(out)}


def direct(catalog: Catalog, site: Path) -> set[tuple[str, str]]:
    """Rows whose metadata sits directly in ``site`` (pip's view; vendored copies sit deeper)."""
    return {(r.name or "", r.version or "") for r in catalog.packages
            if r.ecosystem == "pypi" and Path("/", r.path).parent.parent == site}


def test_python_agrees_with_pip_on_the_test_environment() -> None:
    """The environment running these tests, read as files, lists what its own pip lists."""
    if not SITE_PACKAGES.is_dir():
        pytest.skip("not a venv layout")
    catalog = catalog_tree(tree_of(SITE_PACKAGES, under=str(SITE_PACKAGES).lstrip("/")))
    expected = pip_list(Path(sys.executable))
    assert len(expected) > 20
    assert direct(catalog, SITE_PACKAGES) == expected
    deeper = [r for r in catalog.packages if Path("/", r.path).parent.parent != SITE_PACKAGES]
    assert all("_vendor" in r.path or "/vendor" in r.path for r in deeper), deeper
    assert not catalog.warnings
    check_purls(catalog)
    pytest_row = next(r for r in catalog.packages if r.name == "pytest")
    assert pytest_row.license and "MIT" in pytest_row.license
    assert pytest_row.size and pytest_row.size > 100_000


def wheel(directory: Path, name: str, version: str, files: dict[str, bytes], metadata: str) -> Path:
    """A minimal wheel (PEP 427) built here: the files, METADATA, WHEEL and RECORD."""
    dist = f"{name}-{version}.dist-info"
    path = directory / f"{name}-{version}-py3-none-any.whl"
    contents = {**files, f"{dist}/METADATA": metadata.encode(), f"{dist}/WHEEL":
                b"Wheel-Version: 1.0\nGenerator: ocinb-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{p},,{len(b)}\n" for p, b in contents.items()) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for p, b in contents.items():
            archive.writestr(p, b)
        archive.writestr(f"{dist}/RECORD", record)
    return path


def test_python_agrees_with_pip_in_a_new_venv(tmp_path: Path) -> None:
    """A venv made here, with two wheels built here installed by its pip (no index) and an egg-info directory
    written as distutils did: the cataloger and that venv's ``pip list`` agree."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    one = wheel(tmp_path, "Ocinb_Probe", "1.2.3.post4",
                {"ocinb_probe/__init__.py": b"x = 1\n" * 100},
                "Metadata-Version: 2.4\nName: Ocinb_Probe\nVersion: 1.2.3.post4\n"
                "License-Expression: MIT OR Apache-2.0\n")
    two = wheel(tmp_path, "zope.probe", "0.1rc1", {"zope_probe.py": b"y = 2\n"},
                "Metadata-Version: 2.1\nName: zope.probe\nVersion: 0.1rc1\nLicense: UNKNOWN\n"
                "Classifier: License :: OSI Approved :: BSD License\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check",
                    "-q", str(one), str(two)], check=True, capture_output=True)
    egg = site / "old_probe-0.9-py3.11.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: old-probe\nVersion: 0.9\nLicense: GPL-2.0-only\n")
    catalog = catalog_tree(tree_of(venv, under="opt/venv"))
    expected = pip_list(python)
    assert {("Ocinb_Probe", "1.2.3.post4"), ("zope.probe", "0.1rc1"), ("old-probe", "0.9")} <= expected
    assert direct(catalog, Path("/opt/venv") / site.relative_to(venv)) == expected
    rows = {r.name: r for r in catalog.packages}
    assert rows["Ocinb_Probe"].license == "MIT OR Apache-2.0"
    assert rows["zope.probe"].license == "BSD License"
    assert rows["old-probe"].license == "GPL-2.0-only" and rows["old-probe"].size is None
    recorded = (site / "Ocinb_Probe-1.2.3.post4.dist-info" / "RECORD").read_text().splitlines()
    on_disk = sum((site / line.split(",")[0]).stat().st_size for line in recorded if line.split(",")[2])
    assert rows["Ocinb_Probe"].size == on_disk  # the files pip recorded with a size, as they are on disk
    assert PackageURL.from_string(rows["Ocinb_Probe"].purl or "").to_string() == "pkg:pypi/ocinb-probe@1.2.3.post4"
    check_purls(catalog)


def test_python_metadata_without_version_is_a_warning() -> None:
    catalog = catalog_files({
        "usr/lib/python3/dist-packages/nov-1.dist-info/METADATA": (2, b"Metadata-Version: 2.1\nName: nov\n"),
        "usr/lib/python3/dist-packages/ok-1.dist-info/METADATA": (2, b"Metadata-Version: 2.1\nName: ok\nVersion: 1\n"),
        "usr/lib/python3/dist-packages/junk-1.dist-info/METADATA": (2, b"\x00\xff\xfe binary"),
    })
    assert [r.name for r in catalog.packages] == ["ok"]
    warnings = {r.path.split("/")[-2]: r for r in catalog.warnings}
    assert warnings["nov-1.dist-info"].name == "nov" and "Version" in (warnings["nov-1.dist-info"].warning or "")
    assert "Name and Version" in (warnings["junk-1.dist-info"].warning or "")


# --- rpm ---------------------------------------------------------------------------------------------------


SPEC = """\
Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: a package built by ocinb's tests
License: {license}
BuildArch: {arch}
%description
Built by tests/test_catalogers.py.
%install
mkdir -p %{{buildroot}}/usr/share/{name}
head -c {size} /dev/zero > %{{buildroot}}/usr/share/{name}/data
%files
/usr/share/{name}/data
"""

PACKAGES = [
    {"name": "ocinb-alpha", "version": "1.2.3", "release": "4.el9", "epoch": "Epoch: 2\n", "license": "MIT and BSD",
     "arch": "noarch", "size": 1000},
    {"name": "ocinb-beta", "version": "0.9~rc1", "release": "1", "epoch": "", "license": "GPL-2.0-or-later",
     "arch": "x86_64", "size": 4096},
]
QUERY = "%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SIZE}\t%{LICENSE}\t%{SOURCERPM}\n"


@pytest.fixture(scope="module")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An rpm database written by rpm itself: two packages built with rpmbuild, installed with ``--justdb``."""
    if shutil.which("rpmbuild") is None:
        pytest.skip("needs Debian's rpm package (scripts/system-deps.sh catalogers)")
    top = tmp_path_factory.mktemp("rpm")
    dbpath = top / "db"
    subprocess.run(["rpm", "--initdb", "--dbpath", str(dbpath)], check=True, capture_output=True)
    for package in PACKAGES:
        spec = top / f"{package['name']}.spec"
        spec.write_text(SPEC.format(**package))
        subprocess.run(["rpmbuild", "--define", f"_topdir {top / 'build'}", "-bb", str(spec)],
                       check=True, capture_output=True)
    built = sorted((top / "build" / "RPMS").rglob("*.rpm"))
    assert len(built) == 2
    subprocess.run(["rpm", "-i", "--dbpath", str(dbpath), "--nodeps", "--justdb", "--ignorearch", *map(str, built)],
                   check=True, capture_output=True)
    return dbpath


def test_rpm_sqlite_agrees_with_rpm(rpmdb: Path) -> None:
    """Debian 12's rpm writes the SQLite backend (``rpmdb.sqlite``); the cataloger's rows are ``rpm -qa``'s."""
    assert (rpmdb / "rpmdb.sqlite").exists() and not (rpmdb / "Packages").exists()
    out = subprocess.run(["rpm", "-qa", "--dbpath", str(rpmdb), "--qf", QUERY],
                         check=True, capture_output=True, text=True).stdout
    expected = sorted(tuple(line.split("\t")) for line in out.splitlines())
    files = {f"var/lib/rpm/{p.name}": (4, p.read_bytes()) for p in rpmdb.iterdir() if p.name.startswith("rpmdb.sqlite")}
    files["etc/os-release"] = (0, b'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.3"\n')
    catalog = catalog_files(files)
    assert not catalog.warnings
    rows = catalog.packages
    got = sorted((r.name or "", r.version or "", r.arch or "", str(r.size), r.license or "",
                  PackageURL.from_string(r.purl or "").qualifiers["upstream"]) for r in rows)
    assert got == expected
    assert {r.name: r.source_name for r in rows} == {"ocinb-alpha": "ocinb-alpha", "ocinb-beta": "ocinb-beta"}
    assert {r.layer for r in rows} == {4}
    check_purls(catalog)
    alpha = PackageURL.from_string(next(r.purl for r in rows if r.name == "ocinb-alpha") or "")
    assert (alpha.namespace, alpha.version, alpha.qualifiers["epoch"], alpha.qualifiers["distro"]) == (
        "rocky", "1.2.3-4.el9", "2", "rocky-9.3")


def test_rpm_database_in_wal_mode_with_a_pending_wal(rpmdb: Path, tmp_path: Path) -> None:
    """A database copied while its ``-wal`` still holds a transaction: the rows in the WAL are seen."""
    copy = tmp_path / "rpmdb.sqlite"
    shutil.copy(rpmdb / "rpmdb.sqlite", copy)
    connection = sqlite3.connect(copy)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        connection.execute("PRAGMA wal_autocheckpoint = 0")
        connection.execute("DELETE FROM Packages WHERE hnum = (SELECT min(hnum) FROM Packages)")
        connection.commit()
        main, wal = copy.read_bytes(), (tmp_path / "rpmdb.sqlite-wal").read_bytes()  # before close checkpoints
    finally:
        connection.close()
    assert wal
    with_wal = catalog_files({"usr/lib/sysimage/rpm/rpmdb.sqlite": (0, main),
                              "usr/lib/sysimage/rpm/rpmdb.sqlite-wal": (0, wal)})
    without = catalog_files({"usr/lib/sysimage/rpm/rpmdb.sqlite": (0, main)})
    assert len(with_wal.packages) == 1 and len(without.packages) == 2


def test_rpm_hostile_databases_are_warnings(rpmdb: Path, tmp_path: Path) -> None:
    """Not SQLite, SQLite without ``Packages``, a header blob cut short, a Berkeley DB: warning rows, and the
    good headers around a bad one are kept."""
    empty = tmp_path / "empty.sqlite"
    connection = sqlite3.connect(empty)
    connection.execute("CREATE TABLE other (x)")
    connection.commit()
    connection.close()
    broken = tmp_path / "broken.sqlite"
    shutil.copy(rpmdb / "rpmdb.sqlite", broken)
    connection = sqlite3.connect(broken)
    connection.execute("UPDATE Packages SET blob = substr(blob, 1, 40) WHERE hnum = (SELECT min(hnum) FROM Packages)")
    connection.commit()
    connection.close()  # checkpoints the WAL into the file
    cases = {
        "var/lib/rpm/rpmdb.sqlite": b"this is not a database" * 100,
        "usr/lib/sysimage/rpm/rpmdb.sqlite": empty.read_bytes(),
        "usr/share/rpm/rpmdb.sqlite": broken.read_bytes(),
    }
    catalog = catalog_files({p: (1, b) for p, b in cases.items()}, layers={"var/lib/rpm/Packages": 0})
    warnings = {r.path: r.warning or "" for r in catalog.warnings}
    assert "not an SQLite database" in warnings["var/lib/rpm/rpmdb.sqlite"]
    assert "no Packages table" in warnings["usr/lib/sysimage/rpm/rpmdb.sqlite"]
    assert "malformed rpm headers" in warnings["usr/share/rpm/rpmdb.sqlite"]
    assert "Berkeley DB" in warnings["var/lib/rpm/Packages"]
    assert [r.path for r in catalog.packages] == ["usr/share/rpm/rpmdb.sqlite"]


# --- Go ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny module with a dependency replaced by a local directory, built offline with the Go toolchain."""
    if shutil.which("go") is None:
        pytest.skip("needs Debian's golang-go (scripts/system-deps.sh catalogers)")
    src = tmp_path_factory.mktemp("go")
    (src / "dep").mkdir()
    (src / "go.mod").write_text("module example.com/ocinb/probe\n\ngo 1.18\n\nrequire example.com/ocinb/dep v0.1.0\n\n"
                                "replace example.com/ocinb/dep => ./dep\n")
    (src / "main.go").write_text('package main\n\nimport (\n\t"fmt"\n\n\t"example.com/ocinb/dep"\n)\n\n'
                                 "func main() { fmt.Println(dep.Hello()) }\n")
    (src / "dep" / "go.mod").write_text("module example.com/ocinb/dep\n\ngo 1.18\n")
    (src / "dep" / "dep.go").write_text('package dep\n\nfunc Hello() string { return "hello" }\n')
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local",
           "GOCACHE": str(src / "cache"), "GOPATH": str(src / "gopath")}
    subprocess.run(["go", "build", "-o", "probe", "."], cwd=src, env=env, check=True, capture_output=True)
    return src / "probe"


def go_version_m(binary: Path) -> tuple[str, list[tuple[str, str, str | None]]]:
    """``go version -m``: the Go version and (module, version, replacement) for the main module and each dep."""
    out = subprocess.run(["go", "version", "-m", str(binary)], check=True, capture_output=True, text=True).stdout
    lines = out.splitlines()
    version = lines[0].split(": ", 1)[1]
    modules: list[tuple[str, str, str | None]] = []
    for line in lines[1:]:
        parts = line.strip("\t").split("\t")
        if parts[0] in ("mod", "dep"):
            modules.append((parts[1], parts[2], None))
        elif parts[0] == "=>":
            modules[-1] = (modules[-1][0], parts[2], parts[1])
    return version, modules


def test_go_buildinfo_agrees_with_go_version_m(go_binary: Path) -> None:
    """An executable outside ``bin`` (found by its mode), a non-executable copy beside it (not read), and the
    modules ``go version -m`` prints."""
    data = go_binary.read_bytes()
    entries = [TreeEntry("app/server", 2, len(data), lambda: data, 0o755),
               TreeEntry("app/server.bak", 2, len(data), refuse("app/server.bak"), 0o644),
               TreeEntry("usr/bin/script", 1, 20, lambda: b"#!/bin/sh\necho hi\n", 0o755)]
    catalog = catalog_tree(entries)
    version, modules = go_version_m(go_binary)
    rows = [r for r in catalog.packages if r.name != "stdlib"]
    assert [(r.name, r.version, r.source_name) for r in rows] == modules
    stdlib = next(r for r in catalog.packages if r.name == "stdlib")
    assert stdlib.version == version
    assert PackageURL.from_string(stdlib.purl or "").version == version.removeprefix("go")
    goarch = subprocess.run(["go", "env", "GOARCH"], check=True, capture_output=True, text=True).stdout.strip()
    assert {r.arch for r in catalog.packages} == {goarch}
    assert {(r.path, r.layer) for r in catalog.packages} == {("app/server", 2)}
    assert not catalog.warnings
    check_purls(catalog)
    dep = PackageURL.from_string(next(r.purl for r in rows if r.name == "example.com/ocinb/dep") or "")
    assert (dep.namespace, dep.name) == ("example.com/ocinb", "dep")


def test_go_binaries_of_this_machine_agree_with_go_version_m(go_binary: Path) -> None:
    """Every executable in ``/usr/bin`` (Debian's and others' Go builds among them, with many dependencies and
    version strings like ``go1.23.1 X:…``): the same binaries are Go binaries for both, with the same modules."""
    out = subprocess.run(["go", "version", "-m", "/usr/bin"], capture_output=True, text=True).stdout
    theirs: dict[str, list[tuple[str, str, str | None]]] = {}
    versions: dict[str, str] = {}
    current = ""
    for line in out.splitlines():
        if not line.startswith("\t"):
            current, _, version = line.partition(": ")
            theirs[current], versions[current] = [], version
            continue
        parts = line.strip("\t").split("\t")
        if parts[0] in ("mod", "dep"):
            theirs[current].append((parts[1], parts[2] if len(parts) > 2 else "", None))
        elif parts[0] == "=>":
            theirs[current][-1] = (theirs[current][-1][0], parts[2] if len(parts) > 2 else "", parts[1])
    assert theirs, "no Go binary in /usr/bin (the Go toolchain itself should be there)"
    entries = list(tree_of(Path("/usr/bin"), under="usr/bin"))
    for link in [e for e in entries if e.linkname is not None]:  # go follows links: put their targets in the tree
        real = Path(os.path.realpath("/" + link.path))
        if real.is_file() and not str(real).startswith("/usr/bin/"):
            entries.append(TreeEntry(str(real).lstrip("/"), 0, real.stat().st_size, real.read_bytes,
                                     real.stat().st_mode & 0o7777))
    catalog = catalog_tree(entries)
    ours: dict[str, list[tuple[str, str, str | None]]] = {}
    for row in catalog.packages:
        real = os.path.realpath("/" + row.path)
        ours.setdefault(real, [])
        if row.name == "stdlib":
            assert row.version == versions[next(p for p in versions if os.path.realpath(p) == real)]
        else:
            ours[real].append((row.name or "", row.version or "", row.source_name))
    assert ours == {os.path.realpath(p): modules for p, modules in theirs.items()}
    assert not [w for w in catalog.warnings if "cap" not in (w.warning or "")]


def test_go_binaries_are_reduced_as_they_are_read(go_binary: Path) -> None:
    """Only the build info region of each executable is kept (so a tree's executables are not all held), and
    the reduction gives the same rows as the whole binary."""
    data = go_binary.read_bytes()
    kept = golang.extract("app/server", data)
    assert kept is not None and len(kept) < 4096 < len(data)
    assert golang.extract("app/server", kept) == kept
    assert golang.extract("usr/bin/script", b"#!/bin/sh\n") is None
    whole = catalog_files({"usr/bin/server": (0, data)}).rows
    assert catalog_files({"usr/bin/server": (0, kept)}).rows == whole
    assert golang.parse([WantedFile("usr/bin/server", 0, data)], CatalogContext()) == whole


def test_go_buildinfo_cut_short_is_a_warning(go_binary: Path) -> None:
    data = go_binary.read_bytes()
    at = data.find(b"\xff Go buildinf:")
    catalog = catalog_files({"usr/local/bin/cut": (0, data[: at + 40])})
    assert not catalog.packages
    assert "runs past the end" in (catalog.warnings[0].warning or "")


# --- apk and npm: fixtures quoted from their formats' documentation ---------------------------------------


APK_INSTALLED = """\
C:Q1p78yvTLG094tHE1+dToJGbmYzQE=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1698154154
c:0f2e3c5fd93bec1c7c34e9a1bdd3e5b7e8d2e1fe
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1nQhVDIJ9s6qfF1FpvD1Uq4xcC+A=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1Xf9KpMXaMSrK3PM1RLeiF5M0qhQ=
P:libcrypto3
V:3.1.4-r1
A:x86_64
S:1710837
I:4411392
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1698935329
c:5c1ff6c4c3ee7a4fc9e88f3b6b4a7a01df72c62f
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3
F:usr/lib
R:libcrypto.so.3
a:0:0:755
Z:Q1a4uT9bqB7CCRzC1LFGmLH+B8Xm0=

"""


def test_apk_installed_database() -> None:
    """An ``installed`` database with the fields of Alpine's "Apk spec" wiki table and apk-package(5) (``P``
    name, ``V`` version, ``A`` arch, ``I`` installed size, ``L`` license, ``o`` origin; ``F``/``R``/``a``/``Z``
    per file), two records as an Alpine 3.19 image holds them."""
    catalog = catalog_files({"lib/apk/db/installed": (1, APK_INSTALLED.encode()),
                             "etc/os-release": (0, b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.0\n')})
    assert [(r.name, r.version, r.arch, r.size, r.license, r.source_name, r.layer) for r in catalog.packages] == [
        ("musl", "1.2.4-r2", "x86_64", 622592, "MIT", "musl", 1),
        ("libcrypto3", "3.1.4-r1", "x86_64", 4411392, "Apache-2.0", "openssl", 1)]
    assert not catalog.warnings
    check_purls(catalog)
    crypto = PackageURL.from_string(catalog.packages[1].purl or "")
    assert (crypto.namespace, crypto.qualifiers) == (
        "alpine", {"arch": "x86_64", "distro": "alpine-3.19.0", "upstream": "openssl"})


def test_apk_malformed_lines_are_a_warning_and_the_rest_is_kept() -> None:
    broken = APK_INSTALLED.replace("T:the musl", "this line has no field letter\nT:the musl")
    catalog = catalog_files({"lib/apk/db/installed": (0, broken.encode())})
    assert [r.name for r in catalog.packages] == ["musl", "libcrypto3"]
    assert "not an 'X:value' line" in (catalog.warnings[0].warning or "")


NPM = {
    # npm docs, package.json: "name", "version", an SPDX "license"; a scoped package "@myorg/mypackage".
    "usr/lib/node_modules/npm/node_modules/@myorg/mypackage/package.json":
        '{"name": "@myorg/mypackage", "version": "1.0.0", "license": "(MIT OR Apache-2.0)"}',
    # the deprecated object form the docs show: {"type": "ISC", "url": ...}
    "app/node_modules/old/package.json":
        '{"name": "old", "version": "0.0.1", "license": {"type": "ISC", "url": "https://opensource.org/licenses/ISC"}}',
    # and the deprecated "licenses" array
    "app/node_modules/older/package.json":
        '{"name": "older", "version": "0.0.2", "licenses": [{"type": "MIT", "url": "https://www.opensource.org/licenses'
        '/mit-license.php"}, {"type": "Apache-2.0", "url": "https://opensource.org/licenses/apache2.0.php"}]}',
    "app/node_modules/broken/package.json": '{"name": "broken", "version": ',
    "app/node_modules/noversion/package.json": '{"name": "noversion"}',
    "app/node_modules/old/esm/package.json": '{"type": "module"}',
    "app/package.json": '{"name": "the-app", "version": "9.9.9"}',
}


def test_npm_package_json() -> None:
    """Package roots under ``node_modules`` only (not a package's inner ``esm/package.json``, not the app's own);
    the license forms of npm's package.json docs; not-JSON and no-version are warnings."""
    catalog = catalog_files({p: (0, s.encode()) for p, s in NPM.items()})
    assert [(r.name, r.version, r.license) for r in catalog.packages] == [
        ("old", "0.0.1", "ISC"), ("older", "0.0.2", "MIT OR Apache-2.0"),
        ("@myorg/mypackage", "1.0.0", "(MIT OR Apache-2.0)")]
    warnings = {r.path.split("/")[-2]: r.warning or "" for r in catalog.warnings}
    assert set(warnings) == {"broken", "noversion"}
    assert "not JSON" in warnings["broken"] and "version" in warnings["noversion"]
    check_purls(catalog)
    scoped = next(r for r in catalog.packages if r.name == "@myorg/mypackage")
    assert scoped.purl == "pkg:npm/%40myorg/mypackage@1.0.0"
    assert PackageURL.from_string(scoped.purl).to_string() == scoped.purl


# --- os-release, the squashed view, caps, memory ------------------------------------------------------------


def test_os_release_through_its_symlink_matches_the_shell() -> None:
    """``etc/os-release`` → ``../usr/lib/os-release``: read through the link; the fields are what ``sh``
    sees when it sources the file (the format is shell assignments)."""
    data = b'PRETTY_NAME="Distro \\"Quoted\\" 1.0"\nID=distro\n# a comment\nVERSION_ID="1.0"\nID_LIKE="debian ubuntu"\n'
    entries = [TreeEntry("etc/os-release", 3, 0, refuse("the link itself"), 0o777, "../usr/lib/os-release"),
               TreeEntry("./usr/lib/os-release", 1, len(data), lambda: data, 0o644)]
    catalog = catalog_tree(entries)
    assert catalog.os is not None
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"ocinb-os-release-{os.getpid()}"
    script.write_bytes(data)
    try:
        shell = subprocess.run(["sh", "-c", f'. "{script}"; printf "%s\\n%s\\n%s\\n%s" "$PRETTY_NAME" "$ID" '
                                f'"$VERSION_ID" "$ID_LIKE"'], check=True, capture_output=True, text=True).stdout
    finally:
        script.unlink()
    assert [catalog.os.pretty_name, catalog.os.id, catalog.os.version_id, " ".join(catalog.os.id_like)] == \
        shell.split("\n")
    assert catalog.os.layer == 1


def test_a_wanted_link_to_an_unwanted_path_is_read_through_the_link() -> None:
    """``etc/os-release`` → ``/opt/release/current`` (absolute, through a second link): the target, which no
    cataloger names, is read once, for the link; a loop gives nothing and no crash."""
    data = b"ID=probe\nVERSION_ID=7\n"
    read: list[str] = []
    def reader() -> bytes:
        read.append("x")
        return data
    catalog = catalog_tree([
        TreeEntry("etc/os-release", 0, 0, refuse("link"), 0o777, "/opt/release/current"),
        TreeEntry("opt/release/current", 0, 0, refuse("link"), 0o777, "v7"),
        TreeEntry("opt/release/v7", 2, len(data), reader, 0o644),
        TreeEntry("usr/lib/os-release", 0, 0, refuse("loop"), 0o777, "../../usr/lib/os-release"),
    ])
    assert catalog.os is not None
    assert (catalog.os.id, catalog.os.layer, catalog.os.path) == ("probe", 2, "etc/os-release")
    assert read == ["x"]


def test_bytes_not_at_hand_are_skipped() -> None:
    """A streaming reader that did not buffer a file answers ``None``: no row, no crash."""
    catalog = catalog_tree([TreeEntry("etc/os-release", 0, 0, refuse("link"), 0o777, "/opt/unforeseen"),
                            TreeEntry("opt/unforeseen", 0, 10, lambda: None, 0o644),
                            TreeEntry("var/lib/dpkg/status", 0, 10, lambda: None, 0o644)])
    assert catalog.os is None and not catalog.rows


def test_etc_os_release_wins_over_usr_lib() -> None:
    catalog = catalog_files({"etc/os-release": (2, b"ID=ubuntu\nVERSION_ID=24.04\n"),
                             "usr/lib/os-release": (1, b"ID=debian\nVERSION_ID=12\n")})
    assert catalog.os is not None and (catalog.os.id, catalog.os.path) == ("ubuntu", "etc/os-release")


def test_deleted_database_gives_no_packages(status_bytes: bytes) -> None:
    """The squashed view is the input: a database a later layer deleted is absent, so are its packages."""
    assert catalog_files({"var/lib/dpkg/status": (0, status_bytes)}).packages
    assert not catalog_files({"var/lib/dpkg/other": (0, status_bytes)}).rows


def test_only_wanted_files_are_read() -> None:
    """Everything a cataloger does not name is never read; each cataloger names its paths."""
    entries = [TreeEntry(p, 0, 10, refuse(p), 0o644) for p in (
        "etc/passwd", "usr/share/doc/bash/changelog.gz", "app/node_modules/x/lib/package.json",
        "opt/x.dist-info/RECORDS", "var/lib/dpkg/status.d/foo.md5sums", "var/lib/dpkg/info/bash.list",
        "var/lib/rpm/Packages")]
    entries.append(TreeEntry("usr/bin/tool", 0, 10, refuse("a 0644 file in bin"), 0o644))
    catalog_tree(entries)
    for path in ("etc/os-release", "var/lib/dpkg/status", "var/lib/dpkg/status.d/base", "lib/apk/db/installed",
                 "usr/lib/sysimage/rpm/rpmdb.sqlite", "x/y.dist-info/METADATA", "z.egg-info/PKG-INFO",
                 "a/node_modules/@s/n/package.json"):
        assert wanted(path), path
    assert [c.name for c in CATALOGERS][:2] == ["os-release", "dpkg"]
    assert read_limit("etc/passwd") is None and read_limit("var/lib/dpkg/status") == 32 * MIB
    assert read_limit("app/server", 0o755) == 256 * MIB and read_limit("app/server", 0o644) is None


def test_keep_is_what_a_reader_holds(go_binary: Path) -> None:
    data = go_binary.read_bytes()
    assert keep("etc/passwd", b"root:x:0:0") is None
    assert keep("var/lib/dpkg/status", b"Package: x\n") == b"Package: x\n"
    assert keep("/app/server", data, 0o755) == golang.extract("app/server", data)


def test_copyright_reduction_is_idempotent() -> None:
    text = (b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\n"
            b"Files: *\nCopyright: someone\nLicense: GPL-2+\n long text\n .\n more\n\n"
            b"Files: a/*\nLicense: MIT or Expat\n\nFiles: b/*\nLicense: GPL-2+\n\nLicense: GPL-2+\n text\n")
    kept = dpkg.extract("usr/share/doc/x/copyright", text)
    assert kept is not None and dpkg.copyright_licenses(kept) == ["GPL-2+", "MIT or Expat"]
    assert dpkg.extract("usr/share/doc/x/copyright", kept) == kept
    assert dpkg.extract("usr/share/doc/x/copyright", b"This is not machine-readable.\n") is None
    assert dpkg.extract("var/lib/dpkg/status", text) == text


def test_hundred_megabyte_status_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """A 100 MB dpkg status file is over the dpkg cap: a warning row, never read, and the process's peak RSS
    grows by far less than the file (measured in a fresh interpreter against the same run on a small file)."""
    big = tmp_path / "status"
    paragraph = b"Package: p%d\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n"
    with big.open("wb") as out:
        block = b"".join(paragraph % i for i in range(10_000))
        while out.tell() < 100 * MIB:
            out.write(block)
    small = tmp_path / "small"
    small.write_bytes(block)
    probe = textwrap.dedent("""\
        import resource, sys
        from pathlib import Path
        from ocinb.ops.catalogers import TreeEntry, catalog_tree
        path = Path(sys.argv[1])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        catalog = catalog_tree([TreeEntry("var/lib/dpkg/status", 0, path.stat().st_size, path.read_bytes, 0o644)])
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(after - before, len(catalog.packages), catalog.warnings[0].warning if catalog.warnings else "-")
        """)
    def run(path: Path) -> list[str]:
        out = subprocess.run([sys.executable, "-c", probe, str(path)], check=True, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}).stdout
        return out.strip().split(" ", 2)
    growth, count, warning = run(big)
    assert count == "0" and "over the dpkg cataloger's cap" in warning and str(big.stat().st_size) in warning
    assert int(growth) < 20 * 1024  # KiB: a fifth of the file would already be 20 MiB
    _, small_count, _ = run(small)
    assert small_count == "10000"


FUZZ_PATHS = ["etc/os-release", "var/lib/dpkg/status", "var/lib/dpkg/status.d/x", "usr/share/doc/x/copyright",
              "lib/apk/db/installed", "a/x.dist-info/METADATA", "a/x.dist-info/RECORD", "a/x.egg-info",
              "a/node_modules/x/package.json", "var/lib/rpm/rpmdb.sqlite", "usr/bin/x"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(FUZZ_PATHS), prefix=st.sampled_from([b"", b"\x7fELF", b"SQLite format 3\x00",
                                                                  b"\xff Go buildinf:\x08\x02", b"Package: x\n"]),
       body=st.binary(max_size=3000))
def test_any_bytes_give_rows_never_an_exception(path: str, prefix: bytes, body: bytes) -> None:
    """Whatever the bytes of a wanted file, every cataloger answers with rows (packages or warnings)."""
    data = prefix + body
    if prefix.startswith(b"\xff Go"):
        data = b"\x7fELF" + b"\x00" * 12 + data  # the magic at a 16-byte aligned offset of an executable
    files = {path: (0, data)}
    if path.endswith("RECORD"):
        files["a/x.dist-info/METADATA"] = (0, b"Name: x\nVersion: 1\n")
    catalog = catalog_files(files)
    assert all(isinstance(r, PackageRow) for r in catalog.rows)
    packages_frame(catalog.rows)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_rpm_header_parser_refuses_mutated_headers_cleanly(rpmdb: Path, data: st.DataObject) -> None:
    """A real header blob from rpm's own database, with bytes changed, cut or appended: it parses or raises
    the header error, nothing else."""
    connection = sqlite3.connect(rpmdb / "rpmdb.sqlite")
    try:
        blob = bytearray(connection.execute("SELECT blob FROM Packages LIMIT 1").fetchone()[0])
    finally:
        connection.close()
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    blob = blob[: data.draw(st.integers(0, len(blob)))]
    with contextlib.suppress(rpm.HeaderError):
        rpm.parse_header(bytes(blob))


def test_record_beyond_csv_limits_gives_no_size() -> None:
    metadata = b"Metadata-Version: 2.1\nName: x\nVersion: 1\n"
    for record in (b"a," + b"x" * 200_000 + b",1\n", b"a\x00b,sha256=x,10\n" * 3, b'"unterminated,1,2\n'):
        catalog = catalog_files({"s/x-1.dist-info/METADATA": (0, metadata), "s/x-1.dist-info/RECORD": (0, record)})
        assert [(r.name, r.version) for r in catalog.packages] == [("x", "1")]


def test_hostile_numbers_and_nesting_are_not_crashes(tmp_path: Path) -> None:
    """A 5,000-digit or a superscript ``Installed-Size``, JSON nested past the recursion limit, an rpm
    ``Packages`` table whose blobs are text and whose keys are not numbers: rows and warnings only."""
    status = (b"Package: a\nVersion: 1\nArchitecture: all\nInstalled-Size: " + b"9" * 5000 + b"\n\n"
              b"Package: b\nVersion: 1\nArchitecture: all\nInstalled-Size: \xc2\xb2\n")
    nested = b"[" * 100_000 + b"]" * 100_000
    db = tmp_path / "rpmdb.sqlite"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE Packages (hnum, blob)")
    connection.execute("INSERT INTO Packages VALUES ('x', 'not a blob'), (2, 123456789012)")
    connection.commit()
    connection.close()
    catalog = catalog_files({"var/lib/dpkg/status": (0, status), "a/node_modules/deep/package.json": (0, nested),
                             "var/lib/rpm/rpmdb.sqlite": (0, db.read_bytes())})
    assert [(r.name, r.size) for r in catalog.packages] == [("a", None), ("b", None)]
    warnings = {r.ecosystem: r.warning or "" for r in catalog.warnings}
    assert "not JSON" in warnings["npm"] and "malformed rpm headers" in warnings["rpm"]


def test_the_magic_as_a_string_before_the_real_header_is_skipped(go_binary: Path) -> None:
    """A binary that holds the magic as data (as ``go`` itself does, reading build info) at an aligned offset
    before its own header: the header that parses is used."""
    data = go_binary.read_bytes()
    decoy = b"\xff Go buildinf:" + bytes([8, 0]) + b"\x00" * 16
    planted = data[:64] + decoy + data[64 + len(decoy):]
    assert planted.find(b"\xff Go buildinf:") == 64
    assert catalog_files({"usr/bin/p": (0, planted)}).rows == catalog_files({"usr/bin/p": (0, data)}).rows


def test_go_build_info_before_1_18_is_a_warning() -> None:
    """The pointer form (flags without bit 2) is named, not guessed at."""
    header = b"\xff Go buildinf:" + bytes([8, 0]) + b"\x00" * 16
    catalog = catalog_files({"usr/bin/old": (0, b"\x7fELF" + b"\x00" * 12 + header + b"\x00" * 64)})
    assert not catalog.packages and "before 1.18" in (catalog.warnings[0].warning or "")


HOSTILE_SHAPES = {
    "blank lines": (b"\n", 30 * MIB),
    "tiny paragraphs": (b"Package: a\n\n", 30 * MIB),
    "one long field": (b" continued\n", 8 * MIB),
    "junk lines": (b"junk\n", 8 * MIB),
}


@pytest.mark.parametrize("shape", list(HOSTILE_SHAPES))
def test_hostile_shapes_under_the_cap_stay_in_bounded_memory(tmp_path: Path, shape: str) -> None:
    """Files under the dpkg cap shaped to blow up a naive parser (millions of blank lines, millions of
    one-line packages, one field continued a million times, a million bad lines): the listing is capped at
    ``MAX_PACKAGES``, problems are counted not kept, and peak RSS grows by a bounded amount (fresh interpreter)."""
    unit, size = HOSTILE_SHAPES[shape]
    path = tmp_path / "status"
    head = b"Package: x\nVersion: 1\nDescription: d\n" if shape == "one long field" else b""
    path.write_bytes(head + unit * (size // len(unit)))
    probe = textwrap.dedent("""\
        import resource, sys
        from pathlib import Path
        from ocinb.ops.catalogers import catalog_files
        data = Path(sys.argv[1]).read_bytes()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        catalog = catalog_files({"var/lib/dpkg/status": (0, data)})
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(after - before, len(catalog.packages), len(catalog.warnings[0].warning or "") if catalog.warnings else 0)
        """)
    out = subprocess.run([sys.executable, "-c", probe, str(path)], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}).stdout
    growth, packages, warning_length = (int(v) for v in out.split())
    assert growth < 200 * 1024, f"{growth} KiB"  # ru_maxrss is in KiB; the data itself is read before
    assert int(packages) <= 100_000 and warning_length < 1000
    if shape == "tiny paragraphs":
        assert packages == 100_000 and warning_length > 0


def test_cap_applies_to_bytes_given_directly() -> None:
    catalog = catalog_files({"lib/apk/db/installed": (0, b"P:x\n" * (9 * MIB))})
    assert not catalog.packages and "cap" in (catalog.warnings[0].warning or "")


def test_dpkg_garbage_is_a_warning_not_a_crash() -> None:
    catalog = catalog_files({"var/lib/dpkg/status": (0, bytes(range(256)) * 100)})
    assert not catalog.packages
    assert "malformed dpkg database" in (catalog.warnings[0].warning or "")


# --- the frame ---------------------------------------------------------------------------------------------


def test_packages_frame_columns_match_the_docs(status_bytes: bytes) -> None:
    """The frame has the documented columns and dtypes, packages first, warnings last, even when empty."""
    catalog = catalog_files({"var/lib/dpkg/status": (0, status_bytes),
                             "app/node_modules/broken/package.json": (1, b"{")})
    df = packages_frame(catalog.rows)
    assert list(df.columns) == list(PACKAGES_COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == PACKAGES_COLUMNS
    assert df["warning"].notna().tolist() == [False] * len(catalog.packages) + [True]
    assert int(df["size"].sum()) == sum(r.size or 0 for r in catalog.packages)
    empty = packages_frame([])
    assert list(empty.columns) == list(PACKAGES_COLUMNS) and len(empty) == 0
    docs = (Path(__file__).resolve().parent.parent / "docs" / "columns.md").read_text()
    section = docs.split("## Packages", 1)[1].split("\n## ", 1)[0]
    documented = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            name, dtype = (cell.strip().strip("`") for cell in line.split("|")[1:3])
            documented[name] = dtype
    assert documented == {c: ("str" if t == STR else t) for c, t in PACKAGES_COLUMNS.items()}


def test_rows_are_plain_dataclasses() -> None:
    row = PackageRow(ecosystem="deb", name="x", version="1", path="var/lib/dpkg/status")
    assert row.warning is None and row.layer is None
