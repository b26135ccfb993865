"""The layering kept true: every import in ``ocinb/`` (module level, ``TYPE_CHECKING`` and function-local) points
down the stack, and no module imports another's private name (as go-containerregistry's depcheck tests do)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ocinb"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("types", ("ocinb.errors", "ocinb.reference", "ocinb.digest", "ocinb.media_types", "ocinb.models", "ocinb.tarfs",
               "ocinb.manifest", "ocinb.cache", "ocinb._display", "ocinb._redact", "ocinb._sync")),
    ("http core", ("ocinb._http",)),
    ("endpoints", ("ocinb.endpoints",)),
    ("operations", ("ocinb.ops",)),
    ("notebook layer", ("ocinb.frames", "ocinb.image_diff", "ocinb.layer_frames", "ocinb.layer_views", "ocinb.plots",
                        "ocinb.views", "ocinb.crawl_tables")),
    ("client", ("ocinb.client",)),
    ("sync facade", ("ocinb.sync_client",)),
    ("top", ("ocinb._defaults", "ocinb.widgets", "ocinb.cli", "ocinb.demo", "ocinb.testing", "ocinb.__main__",
             "ocinb.dask", "ocinb")),
]
"""From the bottom up: a module may import its own layer and those below, never one above."""


def layer_of(module: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel / "__init__.py").exists()


def imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) for every import of ``ocinb`` in ``path``."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "ocinb"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ocinb":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub, None) if is_module(sub) else (node.lineno, target, alias.name))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in ("import_module", "__import__") and layer_of(mod) < len(LAYERS) - 1:
                found.append((node.lineno, "<dynamic import>", None))
    return found


SOURCES = sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".pyi"))


def test_every_module_has_a_layer() -> None:
    for path in SOURCES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_point_down(path: Path) -> None:
    mod = module_name(path)
    own = layer_of(mod)
    wrong = []
    for line, target, name in imports(path):
        if target == "<dynamic import>":
            wrong.append(f"{path.name}:{line}: a dynamic import below the top layer hides a dependency")
            continue
        there = layer_of(target)
        if there > own:
            wrong.append(f"{path.name}:{line}: {mod} ({LAYERS[own][0]}) imports {target} ({LAYERS[there][0]})")
        if name is not None and name.startswith("_") and not name.startswith("__") and target != mod:
            wrong.append(f"{path.name}:{line}: {mod} imports the private name {target}.{name}")
    assert not wrong, "\n".join(wrong)


def test_the_walk_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: module-level, TYPE_CHECKING and function-local imports are all found."""
    probe = PACKAGE / "ops" / "pull.py"
    found = {target for _, target, _ in imports(probe)}
    assert "ocinb.endpoints.repository" in found and "ocinb.errors" in found
    source = PACKAGE / "client.py"
    local = {target for _, target, _ in imports(source)}
    assert "ocinb.frames" in local and "ocinb.views" in local  # function-local and TYPE_CHECKING ones
