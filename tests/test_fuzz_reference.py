"""Hypothesis fuzzing of Reference.parse: only InvalidReferenceError escapes, valid references round-trip.

Set ``OCINB_FUZZ_EXAMPLES`` (default 300) for longer runs, e.g. ``OCINB_FUZZ_EXAMPLES=10000``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ocinb.errors import InvalidReferenceError
from ocinb.reference import MAX_NAME_LENGTH, Reference

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("OCINB_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

components = st.from_regex(r"[a-z0-9]{1,8}(?:(?:\.|_|__|-{1,3})[a-z0-9]{1,8}){0,2}", fullmatch=True)
repositories = st.lists(components, min_size=1, max_size=4).map("/".join)
_TAG_START = "abcxyzABCXYZ0129_"
tags = st.builds(lambda first, rest: first + rest, st.sampled_from(_TAG_START),
                 st.text(alphabet=_TAG_START + ".-", max_size=127))
digests = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda b: f"sha256:{b.hex()}"),
    st.binary(min_size=64, max_size=64).map(lambda b: f"sha512:{b.hex()}"),
    st.from_regex(r"[a-z0-9]{1,6}(?:[+._-][a-z0-9]{1,4}){0,2}:[a-zA-Z0-9=_-]{1,40}", fullmatch=True).filter(
        lambda d: not d.startswith(("sha256:", "sha512:"))),
)
labels = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?", fullmatch=True)
ports = st.integers(min_value=1, max_value=65535).map(lambda p: f":{p}")
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a.compressed}]")
dotted = st.lists(labels, min_size=2, max_size=4).map(".".join)
registries = st.one_of(
    st.tuples(dotted, st.one_of(st.just(""), ports)).map("".join),
    st.tuples(st.one_of(labels, ipv4, st.just("localhost")), ports).map("".join),
    st.tuples(ipv6, st.one_of(st.just(""), ports)).map("".join),
    st.sampled_from(["localhost", "docker.io", "index.docker.io", "registry-1.docker.io", "ghcr.io"]),
)


@st.composite
def references(draw: st.DrawFn) -> tuple[str, str | None, str, str | None, str | None]:
    registry = draw(st.one_of(st.none(), registries))
    repository = draw(repositories)
    if registry is None:
        assume("." not in repository.split("/")[0])
    tag = draw(st.one_of(st.none(), tags))
    digest = draw(st.one_of(st.none(), digests))
    text = repository if registry is None else f"{registry}/{repository}"
    if tag is not None:
        text += f":{tag}"
    if digest is not None:
        text += f"@{digest}"
    return text, registry, repository, tag, digest


def _check(text: str) -> Reference | None:
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError as exc:
        assert str(exc).startswith("invalid reference "), str(exc)
        return None
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse(ref.familiar()) == ref
    assert len(f"{ref.registry}/{ref.repository}") <= MAX_NAME_LENGTH
    return ref


@FUZZ
@given(st.text())
def test_fuzz_any_text(text: str) -> None:
    _check(text)


@FUZZ
@given(st.text(alphabet=st.sampled_from("aAz09:/@._-[]+= \t\x00éＡ"), max_size=80))
def test_fuzz_reference_alphabet(text: str) -> None:
    _check(text)


@FUZZ
@given(st.lists(st.one_of(components, tags, digests, registries, st.sampled_from([":", "/", "@", "//", "::"])),
                max_size=8).map("".join))
def test_fuzz_recombined_pieces(text: str) -> None:
    _check(text)


@FUZZ
@given(references())
def test_fuzz_valid_references_round_trip(parts: tuple[str, str | None, str, str | None, str | None]) -> None:
    text, registry, repository, tag, digest = parts
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError as exc:
        assert "characters long" in str(exc), str(exc)
        return
    assert _check(str(ref)) == ref
    assert ref.tag == tag
    assert ref.digest == digest
    if registry is None or registry.lower() in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert ref.registry == "docker.io"
        assert ref.repository == (repository if "/" in repository else f"library/{repository}")
    else:
        assert ref.registry == registry
        assert ref.repository == repository
    assert ref.identifier == (digest or tag or "latest")
