"""Execute every notebook in notebooks/ with nbclient against the seeded local registry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from ocinb.demo import DemoInfo, notebook_env, seed
from ocinb.testing import LocalRegistry

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120


@pytest.fixture(scope="module")
def demo(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> DemoInfo:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OCINB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "nb-cache"))
        return seed(registry.address)


_executed: dict[Path, nbformat.NotebookNode] = {}


def execute(path: Path, demo: DemoInfo, cache: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Each notebook runs once per session (the audit assertions reuse the executed copy)."""
    if path not in _executed:
        _executed[path] = _execute(path, demo, cache, monkeypatch)
    return _executed[path]


def _execute(path: Path, demo: DemoInfo, cache: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run ``path`` top to bottom in a fresh kernel pointed at the demo registry; raise on any cell error."""
    env = {**notebook_env(demo.registry, demo.image),  # what `make demo` runs the notebooks with
           "OCINB_CACHE_DIR": str(cache), "OCINB_CRAWL_OUT": str(cache.parent / "crawl"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return book


def outputs(book: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def text_of(book: nbformat.NotebookNode) -> str:
    parts = []
    for o in outputs(book):
        if o["output_type"] == "stream":
            parts.append(o["text"])
        for mime in ("text/plain", "text/html"):
            if mime in o.get("data", {}):
                parts.append(o["data"][mime])
    return "\n".join(parts)


def test_notebooks_are_committed_clean() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_size_audit.ipynb", "03_supply_chain.ipynb",
                                           "04_explorer.ipynb", "05_inside_the_image.ipynb",
                                           "06_what_changed.ipynb", "07_org_audit.ipynb"]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        nbformat.validate(book)
        code = [c for c in book.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"
        first = code[0]
        assert "parameters" in first.metadata.get("tags", []), path.name
        assert 'os.environ.get("OCINB_REGISTRY", "ghcr.io")' in first.source  # Binder: a public registry
        assert 'os.environ.get("OCINB_IMAGE", "oras-project/oras:' in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, demo: DemoInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = execute(path, demo, tmp_path / "cache", monkeypatch)
    errors = [o for o in outputs(book) if o["output_type"] == "error"]
    assert not errors, [f"{e['ename']}: {e['evalue']}" for e in errors]
    stderr = "".join(o["text"] for o in outputs(book) if o["output_type"] == "stream" and o["name"] == "stderr")
    assert "Traceback" not in stderr
    text = text_of(book)
    if path.stem == "05_inside_the_image":
        assert demo.reference("demo/layered:1.0") in text
        assert "/opt/model/weights.bin" in text and "efficiency " in text and "lowestEfficiency" not in text
        assert "<details" in text and "image/png" in json.dumps(book)
    elif path.stem == "06_what_changed":
        assert demo.reference("demo/layered:2.0") in text and "/usr/share/app/legacy.dat" in text
        assert "upgraded" in text and "APP_MODE" in text and "3 shared layers, not read" in text
    elif path.stem != "04_explorer":
        assert demo.reference() in text
    if path.stem == "01_quickstart":
        assert "linux/arm64/v8" in text and "OCI-Distribution" not in text.split("\n")[0]
    elif path.stem == "03_supply_chain":
        assert "3 attestation manifests" in text
        assert "3 referrers, read from the fallback tag" in text
        assert "└─ application/spdx+json" in text and "    └─ application/vnd.dev.cosign.artifact.sig.v1+json" in text
        assert "demo/app:2.0 — 2 packages" in text
    elif path.stem == "07_org_audit":
        assert f"crawled {demo.registry}: " in text and ", 0 errors" in text
        signed, unsigned, repos = _signatures_counted_by_hand(demo.registry)
        assert f"{signed} signed tags, {unsigned} without a signature, in {repos} repositories" in text
        assert "ADD file:" in text and "unique_mib" in text
    elif path.stem == "04_explorer":
        widgets = [o for o in outputs(book) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert widgets
        assert "2.0 linux/amd64 ok" in text


def _signatures_counted_by_hand(address: str) -> tuple[int, int, int]:
    """(signed tags, unsigned tags, repositories with unsigned tags), read with raw HTTP: a tag is signed when its
    digest's referrers tag (the spec's fallback schema) lists a cosign or Notary signature."""
    import re

    import httpx

    kinds = {"application/vnd.dev.cosign.artifact.sig.v1+json", "application/vnd.cncf.notary.signature"}
    accept = {"Accept": "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
                        "application/vnd.docker.distribution.manifest.list.v2+json, "
                        "application/vnd.docker.distribution.manifest.v2+json"}
    base = f"http://{address}/v2"
    signed = unsigned = 0
    repos: set[str] = set()
    with httpx.Client() as http:
        for repo in http.get(f"{base}/_catalog", params={"n": 1000}).json()["repositories"]:
            listed = http.get(f"{base}/{repo}/tags/list").json().get("tags") or []
            for tag in listed:
                if re.fullmatch(r"[a-z0-9]+-[0-9a-f]{32,64}", tag):
                    continue
                digest = http.head(f"{base}/{repo}/manifests/{tag}", headers=accept).headers["docker-content-digest"]
                index = http.get(f"{base}/{repo}/manifests/{digest.replace(':', '-')}", headers=accept)
                found = index.json().get("manifests", []) if index.status_code == 200 else []
                if any(d.get("artifactType") in kinds for d in found):
                    signed += 1
                else:
                    unsigned += 1
                    repos.add(repo)
    return signed, unsigned, len(repos)


def test_size_audit_tables_and_charts(demo: DemoInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = execute(ROOT / "notebooks" / "02_size_audit.ipynb", demo, tmp_path / "cache", monkeypatch)
    by_source: dict[str, list[dict[str, Any]]] = {}
    for cell in book.cells:
        if cell.cell_type == "code":
            by_source[cell.source] = cell.outputs
    html = {src: "".join(o.get("data", {}).get("text/html", "") for o in outs) for src, outs in by_source.items()}
    pngs = [o for outs in by_source.values() for o in outs if "image/png" in o.get("data", {})]
    assert len(pngs) == 2, "expected the sizes chart and the layers chart"
    sizes_html = next(h for s, h in html.items() if s.startswith("sizes = ocinb.sizes("))
    for column in ("tag", "platform", "size", "unique_size", "shared_size", "layer_count"):
        assert f">{column}<" in sizes_html
    for tag in ("1.0", "1.1", "2.0", "latest"):
        assert f">{tag}<" in sizes_html
    assert sizes_html.count("linux/arm/v7") == 4
    largest_html = next(h for s, h in html.items() if s.startswith("layers = ocinb.layers("))
    assert ">created_by<" in largest_html and "ADD file:" in largest_html
    shared_html = next(h for s, h in html.items() if s.startswith("audited = "))
    assert ">shared_by<" in shared_html and "1.0, 1.1, 2.0, latest" in shared_html
    summary = next(o["text"] for outs in by_source.values() for o in outs if o["output_type"] == "stream"
                   and "MiB of distinct layers" in o["text"])
    assert summary.startswith("4 tags on linux/amd64")
    # the chart PNGs are real images
    for png in pngs:
        data = png["data"]["image/png"]
        assert isinstance(data, str) and len(data) > 1000
    json.dumps(book)  # executed notebook is serialisable
