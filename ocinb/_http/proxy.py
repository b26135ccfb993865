"""Which proxy a request goes through, decided as curl and requests decide it.

The environment: ``https_proxy``/``HTTPS_PROXY`` for https URLs, ``http_proxy``/``HTTP_PROXY`` for http URLs,
``all_proxy``/``ALL_PROXY`` for either when the scheme's own is unset, and ``no_proxy``/``NO_PROXY``: a comma
list of hosts (``example.com`` and ``.example.com`` both match the domain and its subdomains), ``*`` (all),
IP addresses, CIDR networks and ``host:port``. A ``proxy=`` given explicitly replaces the scheme variables
(``""`` means no proxy at all); ``NO_PROXY`` still applies to it. Loopback hosts never go through a proxy
from the environment, only through one given explicitly. :func:`proxy_for` is the whole decision, pure.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..reference import is_local_host

__all__ = ["Proxy", "ProxyRules", "no_proxy_matches", "parse_proxy", "proxy_for"]

_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Proxy:
    """A proxy's URL without credentials, and the credentials apart (they never print)."""

    url: str
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        who = "***@" if self.username or self.password else ""
        scheme, _, rest = self.url.partition("://")
        return f"Proxy({scheme}://{who}{rest})"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (Basic, RFC 7617), or None without credentials."""
        if self.username is None and self.password is None:
            return None
        pair = f"{self.username or ''}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def parse_proxy(value: str) -> Proxy:
    """``[scheme://][user:password@]host[:port]`` → :class:`Proxy` (``http://`` when no scheme, as curl).

    Only HTTP(S) proxies are spoken; a SOCKS or other URL raises ``ValueError`` (without its credentials).
    """
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    hostname = parts.hostname
    safe = f"{scheme}://{hostname or ''}" + (f":{parts.port}" if _port(parts) else "")
    if scheme not in _SCHEMES:
        raise ValueError(f"unsupported proxy {safe!r}: only http:// and https:// proxies are supported")
    if not hostname:
        raise ValueError(f"proxy URL without a host: {safe!r}")
    host = f"[{hostname}]" if ":" in hostname else hostname
    port = _port(parts) or (443 if scheme == "https" else 1080)  # curl's defaults for a proxy
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(f"{scheme}://{host}:{port}", user, password)


def _port(parts: object) -> int | None:
    try:
        return parts.port  # type: ignore[attr-defined, no-any-return]
    except ValueError:
        raise ValueError("proxy URL with an invalid port") from None


def _host_port(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    return host, port or _DEFAULT_PORTS.get(scheme, 0), scheme


def _split_entry(entry: str) -> tuple[str, int | None]:
    """A ``NO_PROXY`` entry → (host or network, port or None)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


def no_proxy_matches(url: str, no_proxy: str) -> bool:
    """Whether ``url``'s host (and port) is in the ``NO_PROXY`` list ``no_proxy``.

    Names match the name itself and its subdomains (a leading ``.`` or ``*.`` changes nothing); IP
    entries and CIDR networks match IP literals only (nothing is resolved); ``*`` matches everything.
    """
    host, port, _ = _host_port(url)
    host = host.lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, want_port = _split_entry(entry)
        if want_port is not None and want_port != port:
            continue
        if "/" in name:
            try:
                network = ipaddress.ip_network(name, strict=False)
            except ValueError:
                continue
            if address is not None and address.version == network.version and address in network:
                return True
            continue
        try:
            entry_address = ipaddress.ip_address(name)
        except ValueError:
            entry_address = None
        if entry_address is not None:  # an IP entry matches that IP literal only
            if entry_address == address:
                return True
            continue
        name = name.removeprefix("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _env(env: Mapping[str, str], name: str) -> str | None:
    for key in (name.lower(), name.upper()):
        value = env.get(key)
        if value is not None and value.strip():
            return value.strip()
    return None


def proxy_for(url: str, env: Mapping[str, str], proxy: str | None = None) -> str | None:
    """The proxy URL (credentials included) ``url`` goes through, or None for a direct connection.

    ``proxy`` is the explicit choice (``""``: never a proxy), else ``env`` decides (see the module).
    """
    host, _, scheme = _host_port(url)
    if proxy is not None:
        chosen: str | None = proxy.strip() or None
    else:
        if is_local_host(host):
            return None
        chosen = _env(env, f"{scheme}_proxy") or _env(env, "all_proxy")
    if chosen is None:
        return None
    no_proxy = _env(env, "no_proxy")
    if no_proxy and no_proxy_matches(url, no_proxy):
        return None
    return chosen


class ProxyRules:
    """The proxy decision of one client: an explicit ``proxy=`` and the environment read when it was made."""

    def __init__(self, proxy: str | None = None, env: Mapping[str, str] | None = None) -> None:
        keys = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        source = os.environ if env is None else env
        self._env = {k: v for k, v in source.items() if k.lower() in keys}
        self._explicit = proxy
        self._parsed: dict[str, Proxy] = {}
        if proxy:
            self._parsed[proxy] = parse_proxy(proxy)  # a bad explicit proxy fails now, not at the first request

    def __repr__(self) -> str:
        shown = [repr(p) for p in self._parsed.values()]
        return f"<ProxyRules explicit={bool(self._explicit)} {', '.join(shown)}>"

    @property
    def any(self) -> bool:
        """Whether any request could go through a proxy."""
        return bool(self._explicit) or any(k.lower() != "no_proxy" and v.strip() for k, v in self._env.items())

    def proxy_for(self, url: str) -> Proxy | None:
        """The :class:`Proxy` for ``url``, or None (see :func:`proxy_for`)."""
        chosen = proxy_for(url, self._env, self._explicit)
        if chosen is None:
            return None
        parsed = self._parsed.get(chosen)
        if parsed is None:
            parsed = self._parsed[chosen] = parse_proxy(chosen)
        return parsed
