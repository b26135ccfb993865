"""Crawls against the real CNCF registry: row counts against an independent count made with raw httpx GETs, the
tables equal to the DataFrames of the public API, failures in ``errors``, a real ``ocinb crawl`` process
SIGKILLed half way and resumed (checked in the registry's access log), and a Dask LocalCluster run giving the
same dataset as the single-process run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import ocinb
from ocinb import media_types as mt
from ocinb.demo import DemoInfo, seed
from ocinb.frames import STR
from ocinb.ops.crawl import JOURNAL_DIR
from ocinb.testing import LocalRegistry

ROOT = Path(__file__).resolve().parent.parent
ACCEPT = ", ".join(mt.MANIFEST_ACCEPT)
TABLES = ["tags", "platforms", "layers", "history", "referrers", "sizes"]


@pytest.fixture(scope="module")
def demo_registry() -> Iterator[tuple[LocalRegistry, DemoInfo]]:
    """A registry of its own (its catalog and access log are this module's alone), seeded with the demo."""
    reg = LocalRegistry()
    reg.start()
    try:
        yield reg, seed(reg.address, many_tags=25)
    finally:
        reg.stop()


def _count_independently(address: str) -> dict[str, int]:
    """What the registry holds, counted with plain GETs (no ocinb code): rows each table should have."""
    base = f"http://{address}/v2"
    counts = dict.fromkeys(["tags", "platforms", "layers", "history", "referrers"], 0)
    with httpx.Client(timeout=30) as h:
        def manifest(repo: str, ref: str) -> dict[str, Any]:
            r = h.get(f"{base}/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
            r.raise_for_status()
            return dict(r.json(), _digest=r.headers["docker-content-digest"])

        for repo in h.get(f"{base}/_catalog").json()["repositories"]:
            all_tags = h.get(f"{base}/{repo}/tags/list").json()["tags"]
            tags = [t for t in all_tags if not t.startswith("sha256-")]
            counts["tags"] += len(tags)
            for tag in tags:
                top = manifest(repo, tag)
                entries = top.get("manifests")
                children = [e for e in entries or [] if
                            e.get("annotations", {}).get("vnd.docker.reference.type") != "attestation-manifest"]
                counts["platforms"] += len(entries) if entries is not None else 1
                for image in ([manifest(repo, e["digest"]) for e in children] if entries is not None else [top]):
                    counts["layers"] += len(image["layers"])
                    config = h.get(f"{base}/{repo}/blobs/{image['config']['digest']}").json()
                    counts["history"] += len(config.get("history", []))
                frontier = [top["_digest"]]
                while frontier:  # referrers, read through the fallback tag schema (registry 2.8 has no API)
                    nxt = []
                    for digest in frontier:
                        fallback = digest.replace(":", "-")
                        if fallback in all_tags:
                            found = manifest(repo, fallback)["manifests"]
                            counts["referrers"] += len(found)
                            nxt += [d["digest"] for d in found]
                    frontier = nxt
    return counts


def _read(out: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(out / table)


def test_crawl_counts_match_the_registry(demo_registry: tuple[LocalRegistry, DemoInfo], tmp_path: Path,
                                         cache: Any) -> None:
    reg, _ = demo_registry
    report = ocinb.crawl(reg.address, tmp_path / "out", TABLES, progress=False)
    expected = _count_independently(reg.address)
    for table, rows in expected.items():
        assert len(_read(tmp_path / "out", table)) == rows, table
        assert report.rows[table] == rows
    assert expected["referrers"] > 0 and expected["platforms"] > expected["tags"]
    assert len(_read(tmp_path / "out", "errors")) == 0 and report.errors == 0
    sizes = _read(tmp_path / "out", "sizes")
    listed = httpx.get(f"http://{reg.address}/v2/_catalog", params={"n": 1000}).json()["repositories"]
    assert set(sizes["repository"]) == set(listed)


def test_crawl_tables_are_the_api_frames(demo_registry: tuple[LocalRegistry, DemoInfo], tmp_path: Path,
                                         cache: Any) -> None:
    reg, info = demo_registry
    out = tmp_path / "out"
    ocinb.crawl([f"{reg.address}/demo/app", f"{reg.address}/demo/tools:3.19"], out, TABLES, progress=False)
    provenance = ["registry", "repository", "reference"]
    ref = info.reference("demo/app:1.1")

    def rows_of(table: str, **where: str) -> pd.DataFrame:
        df = _read(out, table)
        for k, v in where.items():
            df = df[df[k] == v]
        assert (df[provenance].dtypes == STR).all()
        return df.drop(columns=[c for c in [*provenance, *where] if c in df.columns]).reset_index(drop=True)

    pd.testing.assert_frame_equal(rows_of("platforms", reference=ref), ocinb.platforms(ref))
    for platform in info.platforms:
        image = ocinb.layers(ref, platform)
        got = rows_of("layers", reference=ref, platform=platform).drop(columns="image_digest")
        pd.testing.assert_frame_equal(got, image)
        hist = rows_of("history", reference=ref, platform=platform).drop(columns="image_digest")
        pd.testing.assert_frame_equal(hist, ocinb.history(ref, platform))
    pd.testing.assert_frame_equal(rows_of("referrers", reference=ref), ocinb.referrers(ref))
    tags = rows_of("tags", repository="demo/app").sort_values("tag").reset_index(drop=True)
    api_tags = ocinb.tags(f"{reg.address}/demo/app", resolve=True).sort_values("tag").reset_index(drop=True)
    pd.testing.assert_frame_equal(tags, api_tags)
    sizes = rows_of("sizes", reference=f"{reg.address}/demo/app").sort_values(["tag", "platform"])
    api = ocinb.sizes(f"{reg.address}/demo/app").sort_values(["tag", "platform"])
    pd.testing.assert_frame_equal(sizes.reset_index(drop=True), api.reset_index(drop=True))
    assert set(_read(out, "platforms")["reference"]) == {*(info.reference(f"demo/app:{t}") for t in
                                                           ("1.0", "1.1", "2.0", "latest")),
                                                         info.reference("demo/tools:3.19")}


def test_failures_go_to_errors_and_the_rest_is_crawled(demo_registry: tuple[LocalRegistry, DemoInfo],
                                                       tmp_path: Path, cache: Any) -> None:
    reg, _ = demo_registry
    out = tmp_path / "out"
    report = ocinb.crawl([f"{reg.address}/nope/missing", f"{reg.address}/demo/app:9.9",
                          f"{reg.address}/demo/tools"], out, ["tags", "platforms"], progress=False)
    errors = _read(out, "errors").sort_values(["reference", "table"]).reset_index(drop=True)
    assert errors[["reference", "table", "error", "status"]].to_dict("records") == [
        {"reference": f"{reg.address}/demo/app:9.9", "table": "platforms", "error": "NotFoundError", "status": 404},
        {"reference": f"{reg.address}/demo/app:9.9", "table": "tags", "error": "NotFoundError", "status": 404},
        {"reference": f"{reg.address}/nope/missing", "table": "expand", "error": "NotFoundError", "status": 404},
    ]
    assert report.errors == 3
    assert sorted(_read(out, "tags")["tag"]) == ["3.19", "latest"]
    again = ocinb.crawl([f"{reg.address}/nope/missing", f"{reg.address}/demo/app:9.9",
                         f"{reg.address}/demo/tools"], out, ["tags", "platforms"], progress=False)
    assert again.done == 0 and len(_read(out, "errors")) == 3  # failures are finished work too


def test_bad_input_is_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown crawl table.*'colours'.*choose from tags, platforms"):
        ocinb.crawl("127.0.0.1:9/demo/app", tmp_path, ["tags", "colours"])
    with pytest.raises(ocinb.InvalidReferenceError):
        ocinb.crawl("127.0.0.1:9/Demo/App", tmp_path)
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(NotADirectoryError):
        ocinb.crawl("127.0.0.1:9/demo/app", tmp_path / "file")
    assert (tmp_path / "file").read_text() == "keep me"


@pytest.fixture(scope="module")
def unique_registry() -> Iterator[tuple[LocalRegistry, dict[str, str]]]:
    """A registry of 8 repositories × 10 tags, every tag a distinct single-platform image: {reference: digest}."""
    reg = LocalRegistry()
    reg.start()
    images: dict[str, str] = {}
    try:
        with ocinb.Client(reg.address, cache=ocinb.ContentCache(enabled=False)) as client:
            for r in range(8):
                repo = client.repo(f"org/svc{r}")
                for t in range(10):
                    config = {"architecture": "amd64", "os": "linux", "created": "2024-05-01T00:00:00Z",
                              "rootfs": {"type": "layers", "diff_ids": []},
                              "history": [{"created_by": f"build svc{r} v{t}"}, {"created_by": "label",
                                                                                 "empty_layer": True}]}
                    result = repo.push_image(f"v{t}", config, [ocinb.Layer(f"svc{r} v{t}".encode())])
                    images[f"{reg.address}/org/svc{r}:v{t}"] = result.digest
        yield reg, images
    finally:
        reg.stop()


def _journaled(out: Path) -> set[str]:
    """References whose units the journal names (its batch files, written atomically)."""
    done = set()
    for path in (out / JOURNAL_DIR).glob("batch-*.json"):
        done.update(key.split("\t", 1)[1] for key in json.loads(path.read_text())["units"])
    return done


def _cli(*args: str, cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OCINB_CACHE_DIR": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "ocinb", "crawl", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_sigkill_half_way_then_resume_fetches_nothing_twice(unique_registry: tuple[LocalRegistry, dict[str, str]],
                                                            tmp_path: Path) -> None:
    reg, images = unique_registry
    out = tmp_path / "out"
    tables = "tags,platforms,layers,history"
    # --rps paces the crawl (the budget's requests per second) so that half way lasts long enough to be hit
    proc = _cli(reg.address, "-o", str(out), "--tables", tables, "--rps", "100", cache=tmp_path / "cache1")
    try:
        while len(_journaled(out)) < len(images) // 2:  # poll the journal, the crawl's own progress
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    done = _journaled(out) & set(images)
    assert len(images) // 2 <= len(done) < len(images), "killed half way"
    before = len(reg.access_log())
    proc = _cli(reg.address, "-o", str(out), "--tables", tables, cache=tmp_path / "cache2")  # a cold cache
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert f"{len(done) * 4} already done" in stdout.decode()
    served = reg.access_log()[before:]
    for ref in done:  # neither the tag, nor the manifest, nor its config or layer was asked for again
        repo, tag = ref.removeprefix(reg.address + "/").split(":")
        assert not [e for e in served if e.path in (f"/v2/{repo}/manifests/{tag}",
                                                    f"/v2/{repo}/manifests/{images[ref]}")], ref
    manifest_gets = [e for e in served if e.method == "GET" and "/manifests/" in e.path]
    assert len(manifest_gets) == len(images) - len(done)  # each remaining image fetched once
    platforms = _read(out, "platforms")
    assert sorted(platforms["reference"]) == sorted(images)  # no row lost, none twice
    assert sorted(platforms["digest"]) == sorted(images.values())
    assert len(_read(out, "history")) == 2 * len(images) and len(_read(out, "layers")) == len(images)


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns), key=lambda s: s.astype(str)).reset_index(drop=True)


def test_dask_cluster_gives_the_same_dataset(demo_registry: tuple[LocalRegistry, DemoInfo], tmp_path: Path,
                                             cache: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    reg, _ = demo_registry
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    single = ocinb.crawl(reg.address, tmp_path / "single", TABLES, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as dask_client:
        report = ocinb.crawl(reg.address, tmp_path / "dask", TABLES, scheduler=dask_client)
        workers = len(dask_client.scheduler_info()["workers"])
    assert workers == 2
    parts = {p.name for t in TABLES for p in (tmp_path / "dask" / t).glob("part-*.parquet")}
    assert len(parts) > len(TABLES), "several workers wrote parts of one dataset"
    assert report.rows == single.rows
    for table in [*TABLES, "errors"]:
        pd.testing.assert_frame_equal(_canonical(_read(tmp_path / "dask", table)),
                                      _canonical(_read(tmp_path / "single", table)))


def test_cli_crawl(demo_registry: tuple[LocalRegistry, DemoInfo], tmp_path: Path, cache: Any,
                   capsys: pytest.CaptureFixture[str]) -> None:
    from ocinb.cli import main

    reg, _ = demo_registry
    args = ["crawl", f"{reg.address}/demo/tools", "-o", str(tmp_path / "out"), "--tables", "tags,platforms"]
    assert main(args) == 0
    assert "4 of 4 units done now, 0 already done; rows: tags 2, platforms 2; 0 errors" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 of 4 units done now, 4 already done" in capsys.readouterr().out
    assert main([*args[:-1], "tags,colours"]) == 2
    assert "unknown crawl table(s) 'colours'" in capsys.readouterr().err
    assert main([*args, "--rps", "0"]) == 2
    assert "requests_per_second must be a positive number" in capsys.readouterr().err


def test_client_crawl_takes_references_relative_to_its_registry(demo_registry: tuple[LocalRegistry, DemoInfo],
                                                                tmp_path: Path, cache: Any) -> None:
    reg, info = demo_registry
    with ocinb.Client(reg.address) as client:
        report = client.crawl(["demo/tools", "demo/app:2.0"], tmp_path / "out", "tags,platforms", progress=False)
    assert report.errors == 0
    assert sorted(_read(tmp_path / "out", "tags")["reference"]) == [
        info.reference("demo/app:2.0"), info.reference("demo/tools:3.19"), info.reference("demo/tools:latest")]
    assert len(_read(tmp_path / "out", "platforms")) == 6 + 2  # 3 platforms and 3 attestations, 2 single images


def test_a_catalogued_repository_without_tags_is_empty_not_an_error(tmp_path: Path, cache: Any) -> None:
    """distribution lists a repository that holds blobs but no tag (a scratch upload, a mount target) in its
    catalog and answers its tags list with NAME_UNKNOWN: a crawl of the registry finds no tags there and records
    no error, while the same repository named explicitly is an error."""
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    with LocalRegistry(storage_dir=tmp_path / "storage") as reg:
        with ocinb.Client(reg.address, docker_config=False, environment=False) as c:
            kept = c.repo("keep/app").push_image("1", config, [b"kept"])
            c.repo("gone/app").blobs.upload(b"a blob and no manifest")
        listed = httpx.get(f"{reg.url}/v2/gone/app/tags/list")
        assert listed.status_code == 404 and "NAME_UNKNOWN" in listed.text  # the witness: 2.8's own answer
        assert "gone/app" in httpx.get(f"{reg.url}/v2/_catalog").json()["repositories"]
        ocinb.configure(docker_config=False, environment=False)
        try:
            report = ocinb.crawl(reg.address, tmp_path / "out", ("tags",), progress=False)
            named = ocinb.crawl(f"{reg.address}/gone/app", tmp_path / "named", ("tags",), progress=False)
        finally:
            ocinb.configure()
    assert report.errors == 0 and len(_read(tmp_path / "out", "errors")) == 0
    tags = _read(tmp_path / "out", "tags")
    assert list(tags["repository"]) == ["keep/app"] and list(tags["digest"]) == [kept.digest]
    assert named.errors == 1
