"""Parsers for the HTTP headers the protocol depends on: ``WWW-Authenticate``, ``Link``, ``Range``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_WS_RE = re.compile(r"[ \t]*")
_MAX_HEADER = 64 * 1024


class HeaderParseError(ValueError):
    """A header could not be parsed at all."""


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: its scheme (lowercased) and its parameters (keys lowercased)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> list[str]:
        """The space-separated scopes of the ``scope`` parameter."""
        return self.params.get("scope", "").split()

    @property
    def error(self) -> str | None:
        return self.params.get("error")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        m = _WS_RE.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def eof(self) -> bool:
        return self.pos >= len(self.text)

    def token(self) -> str | None:
        m = _TOKEN_RE.match(self.text, self.pos)
        if not m:
            return None
        self.pos = m.end()
        return m.group(0)

    def quoted(self) -> str:
        assert self.peek() == '"'
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == '"':
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise HeaderParseError("unterminated quoted string")

    def skip_to_comma(self) -> None:
        while not self.eof() and self.peek() != ",":
            if self.peek() == '"':
                try:
                    self.quoted()
                except HeaderParseError:
                    self.pos = len(self.text)
            else:
                self.pos += 1


def parse_www_authenticate(value: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into its challenges (RFC 7235).

    Handles several challenges in one header, quoted strings containing commas and escapes,
    token68 values, and tolerates junk by skipping it. Never raises for malformed input; an
    unparseable header yields the challenges that could be read.
    """
    value = value[:_MAX_HEADER]
    s = _Scanner(value)
    challenges: list[Challenge] = []
    current: Challenge | None = None
    while not s.eof():
        s.skip_ws()
        if s.peek() == ",":
            s.pos += 1
            continue
        if s.eof():
            break
        tok = s.token()
        if tok is None:
            s.pos += 1
            s.skip_to_comma()
            continue
        s.skip_ws()
        if s.peek() == "=":
            # auth-param of the current challenge (or token68 ending in '=')
            s.pos += 1
            s.skip_ws()
            if s.peek() == '"':
                opened = s.pos
                try:
                    val = s.quoted()
                except HeaderParseError:
                    val = value[opened + 1 :]
                    s.pos = len(value)
            elif s.peek() in ("", ","):
                # token68 with trailing '=' padding, e.g. "Negotiate abc=="
                val = ""
            else:
                val = s.token() or ""
                s.skip_to_comma()
            if current is not None:
                current.params.setdefault(tok.lower(), val)
            continue
        # a new challenge: scheme [token68 | params]
        current = Challenge(tok.lower(), {})
        challenges.append(current)
        # a token68 right after the scheme (no '=' following a token)
        save = s.pos
        t68 = s.token()
        if t68 is not None:
            s.skip_ws()
            if s.peek() == "=" and not value[s.pos:].startswith("=="):
                s.pos = save  # it was the first param's name
            else:
                while s.peek() == "=":
                    s.pos += 1
                current.params.setdefault("token68", t68)
    return challenges


@dataclass(frozen=True)
class Link:
    """One entry of a ``Link`` header: the target resolved against the request URL and its params."""

    url: str
    params: dict[str, str]

    @property
    def rel(self) -> str:
        return self.params.get("rel", "")


def parse_link(value: str, base_url: str = "") -> list[Link]:
    """Parse an RFC 8288 ``Link`` header; relative targets are resolved against ``base_url``."""
    value = value[:_MAX_HEADER]
    links: list[Link] = []
    s = _Scanner(value)
    while not s.eof():
        s.skip_ws()
        if s.peek() == ",":
            s.pos += 1
            continue
        if s.peek() != "<":
            s.skip_to_comma()
            continue
        end = value.find(">", s.pos)
        if end < 0:
            break
        target = value[s.pos + 1 : end].strip()
        s.pos = end + 1
        params: dict[str, str] = {}
        while True:
            s.skip_ws()
            if s.peek() != ";":
                break
            s.pos += 1
            s.skip_ws()
            name = s.token()
            if name is None:
                break
            s.skip_ws()
            val = ""
            if s.peek() == "=":
                s.pos += 1
                s.skip_ws()
                if s.peek() == '"':
                    try:
                        val = s.quoted()
                    except HeaderParseError:
                        s.pos = len(value)
                        break
                else:
                    val = s.token() or ""
            params.setdefault(name.lower(), val)
        s.skip_to_comma()
        try:
            resolved = urljoin(base_url, target) if base_url else target
        except ValueError:
            continue
        links.append(Link(resolved, params))
    return links


def next_link(value: str | None, base_url: str) -> str | None:
    """The URL of the ``rel="next"`` entry of a ``Link`` header, resolved, or ``None``."""
    if not value:
        return None
    for link in parse_link(value, base_url):
        if "next" in link.rel.split():
            return link.url
    return None


def parse_range_end(value: str | None) -> int | None:
    """The inclusive end offset of an upload ``Range: 0-N`` answer (tolerating ``bytes=``), or ``None``."""
    if not value:
        return None
    v = value.strip()
    if v.startswith("bytes="):
        v = v[len("bytes=") :]
    elif v.startswith("bytes "):
        v = v[len("bytes ") :]
    _start, sep, end = v.partition("-")
    end = end.strip()
    # ASCII digits only (str.isdigit() also passes '²', which int() refuses), and no absurd lengths.
    if not sep or not (end.isascii() and end.isdigit()) or len(end) > 20:
        return None
    return int(end)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_ratelimit(value: str | None) -> tuple[int, int | None] | None:
    """Docker Hub's ``ratelimit-*: 100;w=21600`` → ``(100, 21600)``; ``None`` when absent or odd."""
    if not value:
        return None
    head, _, rest = value.partition(";")
    head = head.strip()
    if not head.isdigit():
        return None
    window = None
    for part in rest.split(";"):
        k, _, v = part.strip().partition("=")
        if k == "w" and v.isdigit():
            window = int(v)
    return int(head), window
