"""The public surface: ``ocinb.__all__`` is exactly what ``ocinb`` offers, and every ocinb class that appears in
a public signature can be imported from ``ocinb`` itself (no user needs a private module to pass an option)."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterator
from typing import Any

import ocinb
from ocinb import endpoints, frames, views, widgets


def public_names() -> set[str]:
    """What ``dir(ocinb)`` offers that is not private and not a submodule."""
    return {n for n in dir(ocinb) if not n.startswith("_") and not isinstance(getattr(ocinb, n), types.ModuleType)}


def test_all_is_exactly_the_public_surface() -> None:
    assert len(ocinb.__all__) == len(set(ocinb.__all__)), "a name is listed twice"
    imported = {"annotations", "importlib", "TYPE_CHECKING", "Any"}  # the module's own imports, not API
    assert public_names() - imported == set(ocinb.__all__)
    for name in ocinb.__all__:
        assert getattr(ocinb, name) is not None


def test_lazy_names_are_listed_and_load() -> None:
    listed = set(dir(ocinb))
    for name in ("tags", "platforms", "layers", "history", "referrers", "catalog", "sizes", "inspect", "copy",
                 "configure", "default_client", "explorer", "Explorer", "InspectView", "LocalRegistry"):
        assert name in listed
        assert callable(getattr(ocinb, name))


def _ocinb_classes(annotation: Any) -> Iterator[type]:
    """Every class from ocinb named inside ``annotation`` (unions, generics and containers opened)."""
    if isinstance(annotation, type):
        if annotation.__module__.split(".")[0] == "ocinb":
            yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _ocinb_classes(arg)


def _hints(member: Any) -> dict[str, Any]:
    """Resolved annotations, with the names modules import only under ``TYPE_CHECKING`` supplied."""
    import pandas as pd
    from matplotlib.axes import Axes

    names = {"pd": pd, "Axes": Axes, **{n: getattr(ocinb, n) for n in ocinb.__all__}}
    if isinstance(member, type) and any(k.__module__.split(".")[0] != "ocinb" for k in member.__mro__[1:-1]):
        # A subclass of a foreign class (DoctorReport of pandas' DataFrame): the annotations of its ocinb
        # classes only; the foreign base's name types its own modules import under TYPE_CHECKING.
        own = {}
        for klass in reversed(member.__mro__):
            if klass.__module__.split(".")[0] == "ocinb":
                own.update(vars(klass).get("__annotations__", {}))
        member = type(member.__name__, (), {"__annotations__": own, "__module__": member.__module__})
    return typing.get_type_hints(member, localns=names)


def _signatures(obj: Any) -> Iterator[tuple[str, Any]]:
    """(where, annotation) for the parameters and return value of every public callable of ``obj``."""
    members = [(n, m) for n, m in inspect.getmembers(obj) if not n.startswith("_") and callable(m)]
    if not isinstance(obj, types.ModuleType):
        members.append(("__init__", obj.__init__))
    for name, member in members:
        if isinstance(obj, types.ModuleType) and getattr(member, "__module__", None) != obj.__name__:
            continue
        try:
            hints = _hints(member)
        except TypeError:  # not a function (a class attribute that is callable, a builtin)
            continue
        for param, annotation in hints.items():
            if param.startswith("_"):
                continue
            yield f"{getattr(obj, '__name__', obj)}.{name}({param})", annotation


def test_every_type_in_a_public_signature_is_exported() -> None:
    owners: list[Any] = [ocinb.AsyncClient, ocinb.AsyncRepository, ocinb.RepositoryEndpoints, ocinb.ContentCache,
                         ocinb.Manifest, ocinb.InspectView, frames, views, widgets]
    owners += [getattr(endpoints, n) for n in endpoints.__all__ if isinstance(getattr(endpoints, n), type)]
    owners += [getattr(ocinb, n) for n in ("tags", "platforms", "layers", "inspect", "copy", "default_client")]
    missing: dict[str, str] = {}
    for owner in owners:
        found = _signatures(owner) if not inspect.isfunction(owner) else (
            (f"ocinb.{owner.__name__}({p})", a) for p, a in _hints(owner).items())
        for where, annotation in found:
            for cls in _ocinb_classes(annotation):
                if getattr(ocinb, cls.__name__, None) is not cls:
                    missing.setdefault(f"{cls.__module__}.{cls.__name__}", where)
    assert not missing, f"types in public signatures that ocinb does not export: {missing}"
