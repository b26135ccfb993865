"""ocinb/sync_client.pyi gives the sync facade its static types: it must name exactly the async API's
methods, with the same parameters, or type checkers would describe a Client that does not exist."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from ocinb.client import AsyncClient, AsyncRepository
from ocinb.endpoints import Blobs, Manifests, Referrers, Tags, Uploads

STUB = Path(__file__).resolve().parent.parent / "ocinb" / "sync_client.pyi"
PAIRS = {"Client": AsyncClient, "Repository": AsyncRepository, "SyncTags": Tags, "SyncManifests": Manifests,
         "SyncBlobs": Blobs, "SyncUploads": Uploads, "SyncReferrers": Referrers}
ASYNC_ONLY = {"aclose", "lock"}  # the sync Client closes with close(); locks belong to the async side
SYNC_ONLY = {"aio", "close"}


def _stub_classes() -> dict[str, dict[str, list[str]]]:
    tree = ast.parse(STUB.read_text())
    out: dict[str, dict[str, list[str]]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = {}
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                    args = item.args
                    methods[item.name] = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
                                          if a.arg != "self"]
            out[node.name] = methods
    return out


def _public(cls: type) -> dict[str, list[str]]:
    out = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or name in ASYNC_ONLY:
            continue
        if isinstance(inspect.getattr_static(cls, name), property):
            out[name] = []
        elif callable(member):
            params = inspect.signature(member).parameters.values()
            out[name] = [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_KEYWORD,)]
    return out


@pytest.mark.parametrize("stub_name", sorted(PAIRS))
def test_stub_matches_the_async_api(stub_name: str) -> None:
    stub = _stub_classes()[stub_name]
    real = _public(PAIRS[stub_name])
    assert set(stub) - SYNC_ONLY == set(real), f"{stub_name}: stub and async API name different methods"
    for name, params in real.items():
        assert stub[name] == params, f"{stub_name}.{name}: {stub[name]} != {params}"
