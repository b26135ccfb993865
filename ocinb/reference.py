"""Image references (``registry/repository[:tag][@digest]``) parsed with Docker's rules.

Every malformed input raises :class:`InvalidReferenceError` naming the bad part and the rule it breaks,
before any network call is made.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from .digest import Digest
from .errors import InvalidDigestError, InvalidReferenceError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
MAX_NAME_LENGTH = 255
MAX_TAG_LENGTH = 128

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_LABEL = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")

_REPOSITORY_RULE = "[a-z0-9] components separated by '.', '_', '__' or '-'"
_TAG_RULE = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"


def _repository_problem(name: str) -> str | None:
    if not name:
        return "repository is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"repository {name[:40]!r}… is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed"
    if _REPOSITORY.fullmatch(name):
        return None
    if name != name.lower() and _REPOSITORY.fullmatch(name.lower()):
        return f"repository {name!r} must be lowercase ({_REPOSITORY_RULE})"
    for component in name.split("/"):
        if not component:
            return f"repository {name!r} has an empty path component (leading, trailing or double '/')"
        if not _COMPONENT.fullmatch(component):
            if component != component.lower():
                return f"repository {name!r} must be lowercase ({_REPOSITORY_RULE})"
            return f"repository {name!r}: component {component!r} must be {_REPOSITORY_RULE}"
    return f"repository {name!r} must be {_REPOSITORY_RULE}"


def _tag_problem(tag: str) -> str | None:
    if not tag:
        return "tag is empty (nothing after ':')"
    if _TAG.fullmatch(tag):
        return None
    if len(tag) > MAX_TAG_LENGTH and _TAG.fullmatch(tag[:MAX_TAG_LENGTH]):
        return f"tag {tag!r} is {len(tag)} characters long; at most {MAX_TAG_LENGTH} are allowed"
    return f"tag {tag!r} must match {_TAG_RULE} (letters, digits, '_', '.', '-'; not starting with '.' or '-')"


def _split_port(host: str) -> tuple[str, str | None]:
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            return host, None
        rest = host[end + 1:]
        if rest.startswith(":"):
            return host[:end + 1], rest[1:]
        return host[:end + 1] + rest, None
    name, sep, port = host.rpartition(":")
    if sep and ":" not in name:
        return name, port
    return host, None


def _registry_problem(host: str) -> str | None:
    if not host:
        return "registry is empty"
    name, port = _split_port(host)
    if port is not None and (not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535):
        return f"registry {host!r}: port {port!r} must be a number from 1 to 65535"
    if name.startswith("["):
        if not name.endswith("]"):
            return f"registry {host!r}: IPv6 address must be written as '[address]' or '[address]:port'"
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return f"registry {host!r}: {name[1:-1]!r} is not a valid IPv6 address"
        return None
    if not name:
        return f"registry {host!r}: host name is empty"
    if len(name) > 253:
        return f"registry {host!r}: host name is longer than 253 characters"
    for label in name.split("."):
        if not label:
            return f"registry {host!r}: host name has an empty label (leading, trailing or double '.')"
        if len(label) > 63 or not _LABEL.fullmatch(label):
            return (f"registry {host!r}: host label {label!r} must be 1-63 letters, digits or '-' "
                    "(not starting or ending with '-')")
    return None


def validate_repository(name: str) -> str:
    """Return ``name`` if it is a valid repository path, else raise :class:`InvalidReferenceError`."""
    problem = _repository_problem(name) if isinstance(name, str) else "repository must be a string"
    if problem:
        raise InvalidReferenceError(f"invalid repository: {problem}")
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid tag, else raise :class:`InvalidReferenceError`."""
    problem = _tag_problem(tag) if isinstance(tag, str) else "tag must be a string"
    if problem:
        raise InvalidReferenceError(f"invalid tag: {problem}")
    return tag


def validate_tag_or_digest(ref: str) -> str:
    """A tag or a digest (what follows ``:`` or ``@`` in a reference), validated, the digest normalised."""
    if ":" in ref:
        return str(Digest.parse(ref))
    return validate_tag(ref)


def validate_registry(host: str) -> str:
    """Return ``host`` if it is a valid ``host[:port]``, else raise :class:`InvalidReferenceError`."""
    problem = _registry_problem(host) if isinstance(host, str) else "registry must be a string"
    if problem:
        raise InvalidReferenceError(f"invalid registry: {problem}")
    return host


def normalize_registry(host: str) -> str:
    """Map Docker Hub's aliases (``index.docker.io``, ``registry-1.docker.io``) to ``docker.io``."""
    return DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host


def parse_registry(text: str) -> str:
    """A registry host as a person types it: surrounding blanks, an ``http(s)://`` scheme and trailing
    slashes tolerated, then validated (:class:`InvalidReferenceError`) and Docker Hub named ``docker.io``."""
    if not isinstance(text, str):
        raise InvalidReferenceError("invalid registry: registry must be a string")
    host = text.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    return normalize_registry(validate_registry(host))


def api_host(registry: str) -> str:
    """The host that serves ``registry``'s API: ``registry-1.docker.io`` for Docker Hub, else the registry."""
    return DOCKER_HUB_API if normalize_registry(registry) == DOCKER_HUB else registry


def fallback_tag(digest: str) -> str:
    """The referrers tag schema: ``<alg>-<ref>``, ``<ref>`` the encoded digest truncated to 64 characters."""
    d = Digest.parse(digest)
    return f"{d.algorithm}-{d.encoded[:64]}"


_FALLBACK_TAG = re.compile(r"[a-z0-9]+-[0-9a-f]{32,64}")


def is_fallback_tag(tag: str) -> bool:
    """Whether ``tag`` looks like a referrers fallback tag (``sha256-<hex>``) rather than an image's."""
    return bool(_FALLBACK_TAG.fullmatch(tag))


def is_local_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1, with or without a port (these default to plain HTTP)."""
    if not host:
        return False
    name, _ = _split_port(host.strip())
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    name = name.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _looks_like_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component.startswith("[")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference; ``registry`` is ``docker.io`` for every spelling of Docker Hub."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, s: str, *, default_registry: str = DOCKER_HUB) -> Reference:
        """Parse ``[registry/]repository[:tag][@digest]`` the way ``docker pull`` does."""
        if not isinstance(s, str):
            raise InvalidReferenceError(f"invalid reference {s!r}: must be a string, not {type(s).__name__}")

        def fail(why: str) -> InvalidReferenceError:
            return InvalidReferenceError(f"invalid reference {s!r}: {why}")

        if not s:
            raise fail("reference is empty")
        for i, ch in enumerate(s):
            if ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
                raise fail(f"contains whitespace or control character {ch!r} at position {i}")
        if "://" in s:
            scheme, _, rest = s.partition("://")
            raise fail(f"must not include a URL scheme ({scheme + '://'!r}); write {rest!r}")

        name, at, digest = s.partition("@")
        if at:
            if not digest:
                raise fail("digest is empty (nothing after '@')")
            try:
                digest = str(Digest.parse(digest))
            except InvalidDigestError as exc:
                raise InvalidDigestError(f"invalid reference {s!r}: {exc}") from None
        tag: str | None = None
        colon, slash = name.rfind(":"), name.rfind("/")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1:]
            problem = _tag_problem(tag)
            if problem:
                raise fail(problem)
        if not name:
            raise fail("repository is empty")

        first, sep, rest = name.partition("/")
        if sep and _looks_like_registry(first):
            registry, repository = first, rest
        else:
            registry, repository = default_registry, name
        problem = _registry_problem(registry)
        if problem:
            raise fail(problem)
        registry = normalize_registry(registry)
        problem = _repository_problem(repository)
        if problem:
            raise fail(problem)
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        full = f"{registry}/{repository}"
        if len(full) > MAX_NAME_LENGTH:
            raise fail(f"name {full!r} is {len(full)} characters long; at most {MAX_NAME_LENGTH} are allowed")
        return cls(registry, repository, tag, digest or None)

    @property
    def is_docker_hub(self) -> bool:
        """True when the registry is Docker Hub."""
        return self.registry == DOCKER_HUB

    @property
    def api_host(self) -> str:
        """The host that serves the API: ``registry-1.docker.io`` for Docker Hub, else the registry."""
        return api_host(self.registry)

    @property
    def identifier(self) -> str:
        """What goes in ``/manifests/<identifier>``: the digest if set, else the tag, else ``latest``."""
        return self.digest or self.tag or "latest"

    @property
    def tag_or_latest(self) -> str:
        """The tag, defaulting to ``latest``."""
        return self.tag or "latest"

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str | None) -> Reference:
        """A copy with another tag (validated); the digest is kept."""
        return replace(self, tag=validate_tag(tag) if tag is not None else None)

    def with_digest(self, digest: str | None) -> Reference:
        """A copy pinned to ``digest`` (validated); the tag is kept."""
        return replace(self, digest=str(Digest.parse(digest)) if digest is not None else None)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def familiar(self) -> str:
        """The short form Docker prints: ``node:22`` for ``docker.io/library/node:22``."""
        out = str(self)
        if self.is_docker_hub:
            path = self.repository
            if path.startswith("library/") and "/" not in path[len("library/"):]:
                path = path[len("library/"):]
            first, sep, _ = path.partition("/")
            if not (sep and _looks_like_registry(first)):
                out = path + out[len(self.name):]
        return out
