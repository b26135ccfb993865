"""Digest parsing, hashing and streaming verification."""

from __future__ import annotations

import hashlib

import pytest

from ocinb import media_types as mt
from ocinb.digest import Digest, Hasher, is_digest, verify_bytes
from ocinb.errors import DigestMismatchError, InvalidDigestError, InvalidReferenceError, SizeMismatchError

HELLO = b"hello"
HELLO_256 = "sha256:" + hashlib.sha256(HELLO).hexdigest()
HELLO_512 = "sha512:" + hashlib.sha512(HELLO).hexdigest()


@pytest.mark.parametrize("text", [
    "sha256:" + "0" * 64,
    HELLO_256,
    HELLO_512,
    "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
    "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
    "blake3:" + "a" * 64,
    "a.b-c_d:xyz=",
])
def test_parse_accepts(text: str) -> None:
    d = Digest.parse(text)
    assert d == text
    assert isinstance(d, str)
    assert is_digest(text)
    assert f"{d.algorithm}:{d.encoded}" == text


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "empty"),
    ("sha256", "algorithm:encoded"),
    ("sha256:xyz", "sha256 needs 64 lowercase hex characters"),
    ("sha256:" + "A" * 64, "sha256 needs 64 lowercase hex characters"),
    ("sha256:" + "a" * 63, "sha256 needs 64"),
    ("sha256:" + "a" * 65, "sha256 needs 64"),
    ("sha512:" + "a" * 64, "sha512 needs 128 lowercase hex characters"),
    ("SHA256:" + "a" * 64, "algorithm 'SHA256'"),
    (":abc", "algorithm ''"),
    ("sha-:abc", "algorithm 'sha-'"),
    ("foo:", "encoded part ''"),
    ("foo:a b", "encoded part 'a b'"),
    ("foo:a/b", "encoded part 'a/b'"),
    ("foo:a:b", "encoded part 'a:b'"),
])
def test_parse_rejects_naming_the_part(text: str, fragment: str) -> None:
    with pytest.raises(InvalidDigestError) as info:
        Digest.parse(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)
    assert isinstance(info.value, InvalidReferenceError)
    assert isinstance(info.value, ValueError)
    assert not is_digest(text)


@pytest.mark.parametrize("value", [None, 5, b"sha256:abc"])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidDigestError):
        Digest.parse(value)
    assert not is_digest(value)


def test_properties() -> None:
    d = Digest.parse(HELLO_256)
    assert d.algorithm == "sha256"
    assert d.encoded == HELLO_256[7:]
    assert d.short == HELLO_256[:7 + 12]
    assert Digest.parse(d) is d
    assert "Digest(" in repr(d)
    assert {d: 1}[HELLO_256] == 1


def test_of() -> None:
    assert Digest.of(HELLO) == HELLO_256
    assert Digest.of(HELLO, "sha512") == HELLO_512
    assert Digest.of(mt.EMPTY_DATA) == mt.EMPTY_DIGEST
    assert len(mt.EMPTY_DATA) == mt.EMPTY_SIZE
    assert isinstance(Digest.of(b""), Digest)
    with pytest.raises(InvalidDigestError, match="blake3"):
        Digest.of(HELLO, "blake3")


@pytest.mark.parametrize("chunks", [[], [b""], [HELLO], [b"he", b"llo"], [b"h", b"", b"e", b"l", b"l", b"o"]])
def test_hasher_streaming(chunks: list[bytes]) -> None:
    data = b"".join(chunks)
    h = Hasher(Digest.of(data), len(data))
    for c in chunks:
        h.update(c)
    assert h.size == len(data)
    assert h.verify() == Digest.of(data)
    assert h.digest() == Digest.of(data)


def test_hasher_defaults_and_algorithms() -> None:
    h = Hasher()
    h.update(HELLO)
    assert h.digest() == HELLO_256
    assert h.verify() == HELLO_256
    h = Hasher(HELLO_512)
    h.update(HELLO)
    assert h.verify() == HELLO_512
    h = Hasher(algorithm="sha512")
    h.update(HELLO)
    assert h.digest() == HELLO_512


def test_hasher_rejects_unhashable_or_bad_expected() -> None:
    with pytest.raises(InvalidDigestError, match="blake3"):
        Hasher("blake3:" + "a" * 64)
    with pytest.raises(InvalidDigestError):
        Hasher("sha256:nothex")
    with pytest.raises(InvalidDigestError):
        Hasher(HELLO_256, algorithm="sha512")
    with pytest.raises(ValueError):
        Hasher(size=-1)


def test_hasher_overflow_raises_at_once() -> None:
    h = Hasher(HELLO_256, 5, what="blob x")
    h.update(b"hel")
    with pytest.raises(SizeMismatchError) as info:
        h.update(b"lo!")
    assert info.value.expected == 5
    assert info.value.actual == 6
    assert "blob x" in str(info.value)


def test_hasher_short_content_is_size_mismatch_first() -> None:
    h = Hasher("sha256:" + "0" * 64, 10)
    h.update(HELLO)
    with pytest.raises(SizeMismatchError) as info:
        h.verify()
    assert (info.value.expected, info.value.actual) == (10, 5)


def test_hasher_digest_mismatch() -> None:
    wrong = "sha256:" + "0" * 64
    h = Hasher(wrong, 5, what="layer 1")
    h.update(HELLO)
    with pytest.raises(DigestMismatchError) as info:
        h.verify()
    assert info.value.expected == wrong
    assert info.value.actual == HELLO_256
    assert "layer 1" in str(info.value)


def test_hasher_without_size_only_checks_digest() -> None:
    h = Hasher(HELLO_256)
    h.update(HELLO * 1000)
    with pytest.raises(DigestMismatchError):
        h.verify()


def test_hasher_what_attribute() -> None:
    assert Hasher(what="upload").what == "upload"


@pytest.mark.parametrize(("data", "expected", "size", "error"), [
    (HELLO, HELLO_256, None, None),
    (HELLO, HELLO_256, 5, None),
    (HELLO, HELLO_512, 5, None),
    (HELLO, HELLO_256, 4, SizeMismatchError),
    (HELLO, HELLO_256, 6, SizeMismatchError),
    (HELLO, "sha256:" + "0" * 64, 5, DigestMismatchError),
    (HELLO, "sha256:" + "0" * 64, 6, SizeMismatchError),
    (HELLO + b"\n", HELLO_256, None, DigestMismatchError),
    (HELLO, "sha256:bad", None, InvalidDigestError),
])
def test_verify_bytes(data: bytes, expected: str, size: int | None, error: type[Exception] | None) -> None:
    if error is None:
        assert verify_bytes(data, expected, size) == expected
    else:
        with pytest.raises(error):
            verify_bytes(data, expected, size, what="manifest")
