"""Hypothesis: the parsers of registry-supplied and user-supplied text raise only their documented errors.

``Digest.parse`` → :class:`InvalidDigestError`; ``Platform.parse`` → ``ValueError``; ``parse_manifest`` →
:class:`ManifestError`; ``parse_retry_after``, ``parse_range_end``, ``parse_timestamp`` and the Docker
``config.json`` reader never raise (``None`` for what they cannot read). Set ``OCINB_FUZZ_EXAMPLES``
(default 300) for longer runs.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ocinb._http.credentials import Credentials, from_docker_config
from ocinb._http.headers import parse_range_end, parse_retry_after
from ocinb.digest import Digest
from ocinb.errors import InvalidDigestError, ManifestError
from ocinb.models import ImageIndex, ImageManifest, Platform, parse_manifest, parse_timestamp

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("OCINB_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def pieces(*parts: str, size: int = 30) -> st.SearchStrategy[str]:
    """Text built from ``parts`` and random snippets: reaches the parsers' branches more often than noise."""
    return st.one_of(st.text(max_size=200),
                     st.lists(st.one_of(st.sampled_from(parts), st.text(max_size=4)), max_size=size).map("".join))


# Digits that str.isdigit() accepts but int()/float() refuse, and digits of other scripts.
ODD_DIGITS = ["²", "³", "¹", "①", "٣", "१", "０", "𝟗"]

digest_text = pieces("sha256", "sha512", "blake3", ":", "+", ".", "_", "-", "a" * 64, "0" * 64, "f" * 128, "=",
                     "A", "\n", *ODD_DIGITS)
platform_text = pieces("linux", "windows", "amd64", "arm64", "v8", "/", "(", ")", ":", "10.0.17763", " ", "\t",
                       "unknown", "")
range_text = pieces("bytes=", "bytes ", "0", "-", "9" * 30, " ", "*", "/", ",", *ODD_DIGITS)
retry_text = pieces("0", "5", "9" * 400, " ", "Wed, 21 Oct 2015 07:28:00 GMT", "GMT", "Mon", ",", ":", "-",
                    "+0000", "9999", "0000", *ODD_DIGITS)
time_text = pieces("2024", "0000", "9999", "-", "13", "00", "31", "T", "t", " ", ":", "60", "99", ".", ",",
                   "123456789", "Z", "+", "-", "24:00", "99:99", "UTC", *ODD_DIGITS, "\n")

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=20)
OCI_KEYS = ["schemaVersion", "mediaType", "config", "layers", "manifests", "digest", "size", "annotations",
            "platform", "subject", "artifactType", "urls", "os", "architecture"]
manifest_like = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(OCI_KEYS), st.text(max_size=8)), inner,
                                            max_size=6)),
    max_leaves=30)


@FUZZ
@given(st.one_of(digest_text, st.none(), st.integers(), st.binary(max_size=10)))
@example("sha256:" + "²" * 64)
def test_digest_parse_raises_only_invalid_digest(value: Any) -> None:
    try:
        digest = Digest.parse(value)
    except InvalidDigestError:
        return
    assert Digest.parse(str(digest)) == digest


@FUZZ
@given(platform_text)
def test_platform_parse_raises_only_value_error(value: str) -> None:
    try:
        platform = Platform.parse(value)
    except ValueError:
        return
    assert platform.os and platform.architecture


@FUZZ
@given(st.one_of(st.none(), range_text))
@example("0-²")
@example("bytes=0-" + "9" * 5000)
def test_range_end_never_raises(value: str | None) -> None:
    end = parse_range_end(value)
    assert end is None or (isinstance(end, int) and end >= 0)


@FUZZ
@given(st.one_of(st.none(), retry_text))
@example("²")
@example("9" * 400)
def test_retry_after_never_raises(value: str | None) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or seconds >= 0


@FUZZ
@given(st.one_of(time_text, st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                 st.datetimes(), st.lists(st.integers(), max_size=2)))
@example("2024-03-09T12:30:00+23:59")
@example("9999-12-31T23:59:59-23:59")
@example("0001-01-01T00:00:00+00:01")
def test_parse_timestamp_never_raises(value: Any) -> None:
    result = parse_timestamp(value)
    assert result is None or (isinstance(result, datetime) and result.tzinfo is not None
                              and result.utcoffset() == UTC.utcoffset(None))


@FUZZ
@given(st.one_of(
    st.binary(max_size=300),
    manifest_like.map(lambda doc: json.dumps(doc).encode()),
    st.integers(0, 20_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(0, 20_000).map(lambda depth: b'{"config":' * depth + b"{}" + b"}" * depth),
), st.one_of(st.none(), st.sampled_from(["application/vnd.oci.image.manifest.v1+json",
                                         "application/vnd.oci.image.index.v1+json",
                                         "application/vnd.docker.distribution.manifest.v1+prettyjws",
                                         "application/json", "text/html", ""])))
def test_parse_manifest_raises_only_manifest_error(data: bytes, media_type: str | None) -> None:
    try:
        parsed = parse_manifest(data, media_type)
    except ManifestError:
        return
    assert isinstance(parsed, ImageManifest | ImageIndex)


def _config_docs() -> st.SearchStrategy[Any]:
    """Docker config.json documents, well-formed to odd (no credential helpers: they would run programs)."""
    entry = st.one_of(json_values, st.fixed_dictionaries({}, optional={
        "auth": st.one_of(st.text(max_size=40), st.sampled_from(["dTpw", "OnA=", "dQ==", "////", "\xff"]),
                          json_values),
        "identitytoken": json_values, "username": json_values, "password": json_values}))
    keys = st.one_of(st.sampled_from(["reg.example", "https://reg.example", "https://index.docker.io/v1/",
                                      "docker.io"]), st.text(max_size=10))
    return st.one_of(json_values, st.fixed_dictionaries({}, optional={
        "auths": st.one_of(json_values, st.dictionaries(keys, entry, max_size=4))}))


@FUZZ
@given(st.one_of(
    st.binary(max_size=300),
    _config_docs().map(lambda doc: json.dumps(doc).encode()),
    st.integers(0, 20_000).map(lambda depth: b'{"auths":' + b"[" * depth + b"]" * depth + b"}"),
), st.sampled_from(["reg.example", "docker.io"]))
def test_docker_config_reader_never_raises(tmp_path: Path, raw: bytes, registry: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(raw)
    creds = from_docker_config(registry, path=path)
    assert creds is None or isinstance(creds, Credentials)
