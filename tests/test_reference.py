"""Reference parsing with Docker's rules, validation messages and helpers."""

from __future__ import annotations

import dataclasses

import pytest

from ocinb.errors import InvalidDigestError, InvalidReferenceError
from ocinb.reference import (
    Reference,
    is_local_host,
    normalize_registry,
    parse_registry,
    validate_registry,
    validate_repository,
    validate_tag,
)

D = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), [
    ("node", "docker.io", "library/node", None, None),
    ("node:22", "docker.io", "library/node", "22", None),
    ("library/node", "docker.io", "library/node", None, None),
    ("docker.io/node", "docker.io", "library/node", None, None),
    ("docker.io/library/node", "docker.io", "library/node", None, None),
    ("index.docker.io/library/node:latest", "docker.io", "library/node", "latest", None),
    ("registry-1.docker.io/node:lts", "docker.io", "library/node", "lts", None),
    ("Index.Docker.IO/node", "docker.io", "library/node", None, None),
    ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None),
    ("a/b/c/d", "docker.io", "a/b/c/d", None, None),
    (f"ghcr.io/org/app@{D}", "ghcr.io", "org/app", None, D),
    (f"localhost:5000/a/b:tag@{D}", "localhost:5000", "a/b", "tag", D),
    ("localhost/x", "localhost", "x", None, None),
    ("127.0.0.1:5000/x", "127.0.0.1:5000", "x", None, None),
    ("[::1]:5000/x:y", "[::1]:5000", "x", "y", None),
    ("[::1]/x", "[::1]", "x", None, None),
    ("[2001:db8::1]:443/ns/app:v1", "[2001:db8::1]:443", "ns/app", "v1", None),
    (f"node:22@{D}", "docker.io", "library/node", "22", D),
    (f"node@{D}", "docker.io", "library/node", None, D),
    ("quay.io/prometheus/node-exporter:v1.8.0", "quay.io", "prometheus/node-exporter", "v1.8.0", None),
    ("my-registry.example.com:8443/team/a__b/c.d-e:_T.1-x", "my-registry.example.com:8443", "team/a__b/c.d-e",
     "_T.1-x", None),
    ("example.com/a---b", "example.com", "a---b", None, None),
    ("node.js", "docker.io", "library/node.js", None, None),
    ("localhost:5000", "docker.io", "library/localhost", "5000", None),
    ("Registry.Example.COM/x", "Registry.Example.COM", "x", None, None),
    ("node:" + "t" * 128, "docker.io", "library/node", "t" * 128, None),
    (f"sha256:{'c' * 64}", "docker.io", "library/sha256", "c" * 64, None),
])
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert Reference.parse(str(ref)) == ref


@pytest.mark.parametrize(("text", "fragments"), [
    ("Foo/bar:1", ["repository 'Foo/bar' must be lowercase",
                   "([a-z0-9] components separated by '.', '_', '__' or '-')"]),
    ("NODE", ["repository 'NODE' must be lowercase"]),
    ("ghcr.io/Org/app", ["repository 'Org/app' must be lowercase"]),
    ("", ["reference is empty"]),
    (" ", ["whitespace", "position 0"]),
    ("node :1", ["whitespace", "' '", "position 4"]),
    ("node\t", ["whitespace", "'\\t'"]),
    ("node\n", ["'\\n'"]),
    ("no\x00de", ["control character", "'\\x00'", "position 2"]),
    ("no\x7fde", ["control character"]),
    ("node:", ["tag is empty"]),
    ("ghcr.io/a/b:", ["tag is empty"]),
    ("a//b", ["repository 'a//b'", "empty path component"]),
    ("a/", ["repository 'a/'", "empty path component"]),
    ("/a", ["repository '/a'", "empty path component"]),
    ("ghcr.io/", ["repository is empty"]),
    ("ghcr.io//x", ["repository '/x'", "empty path component"]),
    (":tag", ["repository is empty"]),
    ("@" + D, ["repository is empty"]),
    ("node:" + "t" * 129, ["tag 'ttt", "129 characters", "at most 128"]),
    ("node:-x", ["tag '-x' must match", "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"]),
    ("node:.x", ["tag '.x' must match"]),
    ("node:a+b", ["tag 'a+b' must match"]),
    ("node@sha256:xyz", ["digest 'sha256:xyz'", "sha256 needs 64 lowercase hex characters"]),
    ("node@", ["digest is empty"]),
    (f"node@{D}@{D2}", ["digest"]),
    ("node@sha256", ["digest 'sha256'", "algorithm:encoded"]),
    ("x" * 300, ["characters long", "at most 255"]),
    ("ghcr.io/" + "a" * 250, ["name 'ghcr.io/aaa", "258 characters long"]),
    ("http://x/y", ["URL scheme", "'http://'", "'x/y'"]),
    ("https://ghcr.io/a/b:1", ["URL scheme", "'https://'"]),
    ("a$b", ["repository 'a$b'", "component 'a$b'"]),
    ("ghcr.io/a/-b", ["component '-b'"]),
    ("ghcr.io/a/b_", ["component 'b_'"]),
    ("ghcr.io/a/b___c", ["component 'b___c'"]),
    ("ghcr.io/a/b..c", ["component 'b..c'"]),
    ("nöde", ["repository 'nöde'"]),
    ("localhost:0/x", ["registry 'localhost:0'", "port '0'", "1 to 65535"]),
    ("localhost:65536/x", ["port '65536'"]),
    ("localhost:/x", ["registry 'localhost:'", "port ''"]),
    ("localhost:50a/x", ["port '50a'"]),
    ("host:1:2/x", ["registry 'host:1:2'"]),
    ("-bad.com/x", ["registry '-bad.com'", "host label '-bad'"]),
    ("bad-.com/x", ["host label 'bad-'"]),
    ("a..com/x", ["registry 'a..com'", "empty label"]),
    (".com/x", ["registry '.com'", "empty label"]),
    ("under_score.com/x", ["host label 'under_score'"]),
    ("[zz]:5000/x", ["registry '[zz]:5000'", "'zz' is not a valid IPv6 address"]),
    ("[::1/x", ["registry '[::1'", "IPv6"]),
    ("[::1]x/y", ["registry '[::1]x'", "IPv6"]),
    ("ex" + "a" * 62 + ".com/x", ["host label 'ex"]),
])
def test_rejects_naming_the_part(text: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        Reference.parse(text)
    message = str(info.value)
    assert message.startswith(f"invalid reference {text!r}: ")
    for fragment in fragments:
        assert fragment in message
    assert isinstance(info.value, ValueError)


def test_bad_digest_raises_invalid_digest_error() -> None:
    with pytest.raises(InvalidDigestError):
        Reference.parse("node@sha256:1234")


@pytest.mark.parametrize("value", [None, 12, b"node"])
def test_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidReferenceError, match="must be a string"):
        Reference.parse(value)  # type: ignore[arg-type]


def test_name_length_limit_is_inclusive() -> None:
    repo = "a" * (255 - len("ghcr.io/"))
    assert Reference.parse(f"ghcr.io/{repo}").repository == repo
    with pytest.raises(InvalidReferenceError, match="256 characters"):
        Reference.parse(f"ghcr.io/{repo}a")


def test_default_registry() -> None:
    ref = Reference.parse("team/app:1", default_registry="registry.example.com:5000")
    assert (ref.registry, ref.repository) == ("registry.example.com:5000", "team/app")
    assert Reference.parse("app", default_registry="ghcr.io").repository == "app"
    assert Reference.parse("app", default_registry="index.docker.io").repository == "library/app"
    assert Reference.parse("quay.io/a/b", default_registry="ghcr.io").registry == "quay.io"
    with pytest.raises(InvalidReferenceError, match="registry 'bad host'"):
        Reference.parse("app", default_registry="bad host")


@pytest.mark.parametrize(("text", "api_host", "identifier", "tag_or_latest", "hub", "canonical", "familiar"), [
    ("node", "registry-1.docker.io", "latest", "latest", True, "docker.io/library/node", "node"),
    ("node:22", "registry-1.docker.io", "22", "22", True, "docker.io/library/node:22", "node:22"),
    ("index.docker.io/bitnami/redis:7", "registry-1.docker.io", "7", "7", True, "docker.io/bitnami/redis:7",
     "bitnami/redis:7"),
    ("library/a/b", "registry-1.docker.io", "latest", "latest", True, "docker.io/library/a/b", "library/a/b"),
    (f"node:22@{D}", "registry-1.docker.io", D, "22", True, f"docker.io/library/node:22@{D}", f"node:22@{D}"),
    (f"ghcr.io/org/app@{D}", "ghcr.io", D, "latest", False, f"ghcr.io/org/app@{D}", f"ghcr.io/org/app@{D}"),
    ("localhost:5000/a:b", "localhost:5000", "b", "b", False, "localhost:5000/a:b", "localhost:5000/a:b"),
    ("docker.io/a.b/c", "registry-1.docker.io", "latest", "latest", True, "docker.io/a.b/c", "docker.io/a.b/c"),
    ("docker.io/localhost/c", "registry-1.docker.io", "latest", "latest", True, "docker.io/localhost/c",
     "docker.io/localhost/c"),
])
def test_properties(text: str, api_host: str, identifier: str, tag_or_latest: str, hub: bool, canonical: str,
                    familiar: str) -> None:
    ref = Reference.parse(text)
    assert ref.api_host == api_host
    assert ref.identifier == identifier
    assert ref.tag_or_latest == tag_or_latest
    assert ref.is_docker_hub is hub
    assert str(ref) == canonical
    assert ref.familiar() == familiar
    assert Reference.parse(ref.familiar()) == ref


def test_frozen_and_hashable() -> None:
    ref = Reference.parse("node:22")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "x"  # type: ignore[misc]
    assert {ref: 1}[Reference.parse("docker.io/library/node:22")] == 1
    assert ref.name == "docker.io/library/node"


def test_with_tag_and_digest() -> None:
    ref = Reference.parse("ghcr.io/a/b:1")
    assert str(ref.with_tag("2")) == "ghcr.io/a/b:2"
    assert str(ref.with_digest(D)) == f"ghcr.io/a/b:1@{D}"
    assert str(ref.with_digest(D).with_tag(None)) == f"ghcr.io/a/b@{D}"
    assert ref.with_digest(D).with_digest(None) == ref
    assert ref.tag == "1"
    with pytest.raises(InvalidReferenceError, match="tag '-x'"):
        ref.with_tag("-x")
    with pytest.raises(InvalidDigestError):
        ref.with_digest("sha256:nope")


@pytest.mark.parametrize("name", ["a", "library/node", "a.b/c_d/e__f/g-h/i---j", "0", "a/b/c/d/e/f"])
def test_validate_repository_accepts(name: str) -> None:
    assert validate_repository(name) == name


@pytest.mark.parametrize(("name", "fragment"), [
    ("", "repository is empty"),
    ("A", "repository 'A' must be lowercase"),
    ("a//b", "empty path component"),
    ("a/", "empty path component"),
    ("a b", "component 'a b'"),
    ("a:b", "component 'a:b'"),
    (".a", "component '.a'"),
])
def test_validate_repository_rejects(name: str, fragment: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        validate_repository(name)
    assert fragment in str(info.value)


@pytest.mark.parametrize("tag", ["latest", "_", "A", "v1.2.3-rc.1_x", "t" * 128, "0"])
def test_validate_tag_accepts(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(("tag", "fragment"), [
    ("", "tag is empty"),
    ("t" * 129, "at most 128"),
    ("-a", "tag '-a'"),
    (".a", "tag '.a'"),
    ("a/b", "tag 'a/b'"),
    ("a:b", "tag 'a:b'"),
    ("ä", "tag 'ä'"),
])
def test_validate_tag_rejects(tag: str, fragment: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        validate_tag(tag)
    assert fragment in str(info.value)


@pytest.mark.parametrize("host", ["ghcr.io", "localhost", "localhost:5000", "127.0.0.1", "10.0.0.1:65535",
                                  "[::1]", "[::1]:5000", "[fe80::1]:1", "a-b.c-d.example", "host:1",
                                  "UPPER.example"])
def test_validate_registry_accepts(host: str) -> None:
    assert validate_registry(host) == host


@pytest.mark.parametrize(("host", "fragment"), [
    ("", "registry is empty"),
    (":5000", "host name is empty"),
    ("host:0", "port '0'"),
    ("host:99999", "port '99999'"),
    ("host:-1", "port '-1'"),
    ("host:５０００", "port '５０００'"),
    ("ho st", "host label 'ho st'"),
    ("a_b.com", "host label 'a_b'"),
    ("[::g]", "not a valid IPv6"),
    ("[::1", "IPv6"),
    ("a." * 127 + "com", "longer than 253"),
])
def test_validate_registry_rejects(host: str, fragment: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        validate_registry(host)
    assert fragment in str(info.value)


@pytest.mark.parametrize(("host", "expected"), [
    ("localhost", True),
    ("LOCALHOST:5000", True),
    ("app.localhost:8080", True),
    ("127.0.0.1", True),
    ("127.1.2.3:5000", True),
    ("::1", True),
    ("[::1]", True),
    ("[::1]:5000", True),
    ("[::ffff:127.0.0.1]:5000", True),
    ("0.0.0.0", False),
    ("10.0.0.1:5000", False),
    ("128.0.0.1", False),
    ("localhost.example.com", False),
    ("mylocalhost", False),
    ("ghcr.io", False),
    ("[2001:db8::1]:5000", False),
    ("", False),
])
def test_is_local_host(host: str, expected: bool) -> None:
    assert is_local_host(host) is expected


@pytest.mark.parametrize(("host", "expected"), [
    ("docker.io", "docker.io"), ("index.docker.io", "docker.io"), ("registry-1.docker.io", "docker.io"),
    ("INDEX.docker.io", "docker.io"), ("ghcr.io", "ghcr.io"), ("docker.example.io", "docker.example.io"),
])
def test_normalize_registry(host: str, expected: str) -> None:
    assert normalize_registry(host) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("ghcr.io", "ghcr.io"), ("https://ghcr.io", "ghcr.io"), ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
    ("  localhost:5000//  ", "localhost:5000"), ("https://index.docker.io/", "docker.io"),
    ("registry-1.docker.io", "docker.io"), ("[::1]:5000", "[::1]:5000"),
])
def test_parse_registry_tolerates_what_people_type(text: str, expected: str) -> None:
    assert parse_registry(text) == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "registry is empty"), ("https://", "registry is empty"), ("not a host", "host label"),
    ("ftp://ghcr.io", "ftp://ghcr.io"), ("ghcr.io/org", "host label"), ("host:0", "port '0'"),
])
def test_parse_registry_rejects_what_is_no_host(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_registry(text)
    assert fragment in str(info.value)


def test_parse_registry_rejects_non_strings() -> None:
    with pytest.raises(InvalidReferenceError, match="must be a string"):
        parse_registry(5000)  # type: ignore[arg-type]
