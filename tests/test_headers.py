"""Table tests of the header parsers the protocol depends on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from ocinb._http.auth import normalize_scopes
from ocinb._http.headers import (
    Challenge,
    next_link,
    parse_link,
    parse_range_end,
    parse_ratelimit,
    parse_retry_after,
    parse_www_authenticate,
)

WWW_AUTHENTICATE = [
    ('Basic realm="registry"', [Challenge("basic", {"realm": "registry"})]),
    (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/node:pull"',
        [Challenge("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                              "scope": "repository:library/node:pull"})],
    ),
    (
        'Bearer realm="https://r/token", service="r", scope="repository:a/b:pull,push", error="insufficient_scope"',
        [Challenge("bearer", {"realm": "https://r/token", "service": "r", "scope": "repository:a/b:pull,push",
                              "error": "insufficient_scope"})],
    ),
    (
        'Basic realm="a, b", Bearer realm="https://t/x",service="s"',
        [Challenge("basic", {"realm": "a, b"}), Challenge("bearer", {"realm": "https://t/x", "service": "s"})],
    ),
    (
        r'Bearer realm="quo\"ted\\back",service="s,with,commas"',
        [Challenge("bearer", {"realm": 'quo"ted\\back', "service": "s,with,commas"})],
    ),
    (
        'Negotiate abc123==, Bearer realm="x"',
        [Challenge("negotiate", {"token68": "abc123"}), Challenge("bearer", {"realm": "x"})],
    ),
    ('BEARER REALM="x" , SERVICE=tok', [Challenge("bearer", {"realm": "x", "service": "tok"})]),
    ("", []),
    (",,, ,", []),
    ('Bearer realm="unterminated', [Challenge("bearer", {"realm": "unterminated"})]),
    ('Bearer realm="x",realm="second"', [Challenge("bearer", {"realm": "x"})]),
]


@pytest.mark.parametrize(("value", "expected"), WWW_AUTHENTICATE)
def test_www_authenticate(value: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(value) == expected


def test_www_authenticate_several_scopes() -> None:
    [c] = parse_www_authenticate(
        'Bearer realm="https://r/token",service="reg:5000",'
        'scope="repository:dst/app:pull,push repository:src/app:pull registry:catalog:*"'
    )
    assert c.realm == "https://r/token" and c.service == "reg:5000"
    assert c.scopes == ["repository:dst/app:pull,push", "repository:src/app:pull", "registry:catalog:*"]
    assert c.error is None


def test_normalize_scopes_keeps_host_port_names() -> None:
    scopes = ["repository:localhost:5000/a:pull", "repository:localhost:5000/a:push", "repository:b:pull"]
    assert normalize_scopes(scopes) == ("repository:b:pull", "repository:localhost:5000/a:pull,push")
    assert normalize_scopes(["registry:catalog:*"]) == ("registry:catalog:*",)


BASE = "http://127.0.0.1:5000/v2/a/b/tags/list?n=2"
LINKS = [
    ('</v2/a/b/tags/list?n=2&last=b>; rel="next"',
     [("http://127.0.0.1:5000/v2/a/b/tags/list?n=2&last=b", {"rel": "next"})]),
    ('<https://other.example/v2/x?last=y>; rel=next',
     [("https://other.example/v2/x?last=y", {"rel": "next"})]),
    ('<?n=2&last=c>; rel="next"', [("http://127.0.0.1:5000/v2/a/b/tags/list?n=2&last=c", {"rel": "next"})]),
    ('</p1>; rel="prev", </p3>; rel="next"; title="a, b; c"',
     [("http://127.0.0.1:5000/p1", {"rel": "prev"}),
      ("http://127.0.0.1:5000/p3", {"rel": "next", "title": "a, b; c"})]),
    ('</x>; REL="Next First"', [("http://127.0.0.1:5000/x", {"rel": "Next First"})]),
    ("", []),
    ("garbage, <", []),
    ('</only>', [("http://127.0.0.1:5000/only", {})]),
]


@pytest.mark.parametrize(("value", "expected"), LINKS)
def test_link(value: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    assert [(link.url, link.params) for link in parse_link(value, BASE)] == expected


def test_next_link() -> None:
    assert next_link('</p1>; rel="prev", </p3>; rel="next"', BASE) == "http://127.0.0.1:5000/p3"
    assert next_link('</p3>; rel="last next"', BASE) == "http://127.0.0.1:5000/p3"
    assert next_link('</p1>; rel="prev"', BASE) is None
    assert next_link(None, BASE) is None
    assert next_link("", BASE) is None


@pytest.mark.parametrize(("value", "end"), [
    ("0-0", 0), ("0-1023", 1023), ("bytes=0-99", 99), ("bytes 0-5", 5), (" 0-7 ", 7),
    (None, None), ("", None), ("0-", None), ("junk", None), ("0-x", None),
])
def test_range_end(value: str | None, end: int | None) -> None:
    assert parse_range_end(value) == end


def test_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    wait = parse_retry_after(future)
    assert wait is not None and 25 <= wait <= 31
    past = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    assert parse_retry_after(past) == 0.0


@pytest.mark.parametrize(("value", "expected"), [
    ("100;w=21600", (100, 21600)), ("76;w=21600", (76, 21600)), ("100", (100, None)),
    ("x;w=1", None), (None, None), ("", None),
])
def test_ratelimit(value: str | None, expected: tuple[int, int | None] | None) -> None:
    assert parse_ratelimit(value) == expected
