"""Reading what a reverse proxy tells a forward-auth endpoint about the request to decide.

A forward-auth question arrives as headers set by the proxy: Caddy ``forward_auth`` and
Traefik ``ForwardAuth`` send ``X-Forwarded-Method/-Proto/-Host/-Uri/-For``; nginx
``auth_request`` (in Authelia's convention) sends ``X-Original-URL`` and
``X-Original-Method``; Envoy's ``ext_authz`` HTTP service sends the original ``Host``
(``:authority``) and method, and the original ``:path`` (with its query) appended to the
configured ``path_prefix``; other headers, ``X-Forwarded-Proto`` and
``x-envoy-external-address`` among them, only when listed in ``allowed_headers``.

These headers are believed only because the peer is one of our proxies (``peer_allowed``
over ``gateway.forward_auth_clients``), so everything else here is strict:

* A header this module reads appearing more than once is refused: two values invite the
  proxy and us to pick different ones (request smuggling and confusion).
* A required header missing is refused, naming it. Nothing is defaulted except nginx's
  method (``GET``, as Authelia does) and the client address (``""``).
* The host must be a DNS name or an IP literal, with an optional port 1-65535: no
  userinfo, ``@``, spaces, lists or paths, which could make the policy decide for one host
  while the proxy routes to another.
* The client is the RIGHTMOST ``X-Forwarded-For`` entry: the one the proxy itself appended
  or set. Entries to its left came from the client and are whatever it wished to claim.
  An entry that is not an IP address gives ``""`` (never a guess, never the entry to its
  left); authentik skipped IP policies on an unparsable value (CVE-2024-47070), so the
  decision point must read ``""`` as "unknown" and fail closed.
* The path goes through ``normalise_path``; its ``BadPath`` is wrapped into
  ``BadForwardedRequest`` naming the header it came from, so callers catch one error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from nevertrust.errors import ConfigError, InvalidInput
from nevertrust.gateway.paths import BadPath, split_target

__all__ = [
    "BadForwardedRequest",
    "ForwardedRequest",
    "IPNetwork",
    "from_envoy",
    "from_original_url",
    "from_x_forwarded",
    "parse_networks",
    "peer_allowed",
]

IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ForwardedRequest:
    """The original request, as the proxy in front of the app describes it."""

    method: str  # upper-case token, e.g. "GET"
    scheme: str  # "http" | "https"
    host: str  # lower-case, without port; IPv6 literals in brackets
    port: int | None  # explicit port if the host carried one
    path: str  # normalise_path(...) of the original path
    query: str  # raw query, without "?"
    client_ip: str  # the client as the proxy saw it ("" if unknown)


class BadForwardedRequest(InvalidInput):
    """The proxy's description of the request is missing, ambiguous or malformed (400)."""

    code = "bad-forwarded-request"
    http_status = 400


_XF_METHOD = b"x-forwarded-method"
_XF_PROTO = b"x-forwarded-proto"
_XF_HOST = b"x-forwarded-host"
_XF_URI = b"x-forwarded-uri"
_XF_FOR = b"x-forwarded-for"
_ORIGINAL_URL = b"x-original-url"
_ORIGINAL_METHOD = b"x-original-method"
_REAL_IP = b"x-real-ip"
_HOST = b"host"
_ENVOY_EXTERNAL = b"x-envoy-external-address"

# How each header is named in messages.
_DISPLAY = {
    _XF_METHOD: "X-Forwarded-Method",
    _XF_PROTO: "X-Forwarded-Proto",
    _XF_HOST: "X-Forwarded-Host",
    _XF_URI: "X-Forwarded-Uri",
    _XF_FOR: "X-Forwarded-For",
    _ORIGINAL_URL: "X-Original-URL",
    _ORIGINAL_METHOD: "X-Original-Method",
    _REAL_IP: "X-Real-IP",
    _HOST: "Host",
    _ENVOY_EXTERNAL: "X-Envoy-External-Address",
}

_X_FORWARDED = frozenset((_XF_METHOD, _XF_PROTO, _XF_HOST, _XF_URI, _XF_FOR))
_ORIGINAL = frozenset((_ORIGINAL_URL, _ORIGINAL_METHOD, _XF_FOR, _REAL_IP))
_ENVOY = frozenset((_HOST, _XF_PROTO, _ENVOY_EXTERNAL, _XF_FOR))

_SCHEMES = {"http": "http", "https": "https"}
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_"
_MAX_CACHE = 4096


def from_x_forwarded(headers: Sequence[tuple[bytes, bytes]]) -> ForwardedRequest:
    """Caddy ``forward_auth`` and Traefik ``ForwardAuth``: ``X-Forwarded-*``."""
    found = _collect(headers, _X_FORWARDED)
    host, port = _host_port(_required(found, _XF_HOST), "X-Forwarded-Host")
    path, query = _target(_required(found, _XF_URI), "X-Forwarded-Uri")
    return ForwardedRequest(
        method=_method(_required(found, _XF_METHOD), "X-Forwarded-Method"),
        scheme=_scheme(_required(found, _XF_PROTO), "X-Forwarded-Proto"),
        host=host,
        port=port,
        path=path,
        query=query,
        client_ip=_rightmost(found.get(_XF_FOR)),
    )


def from_original_url(headers: Sequence[tuple[bytes, bytes]]) -> ForwardedRequest:
    """nginx ``auth_request`` (Authelia's convention): ``X-Original-URL`` (absolute URL),
    ``X-Original-Method`` (``GET`` when absent), the client from the rightmost
    ``X-Forwarded-For`` entry, else ``X-Real-IP``."""
    found = _collect(headers, _ORIGINAL)
    url = _required(found, _ORIGINAL_URL)
    parsed = _url_cache.get(url)
    if parsed is None:
        parsed = _parse_original_url(url)
        if len(_url_cache) >= _MAX_CACHE:
            _url_cache.clear()
        _url_cache[url] = parsed
    scheme, host, port, path, query = parsed
    method = found.get(_ORIGINAL_METHOD)
    client_ip = _rightmost(found.get(_XF_FOR)) or _address(found.get(_REAL_IP))
    return ForwardedRequest(
        method=_method(method, "X-Original-Method") if method is not None else "GET",
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        query=query,
        client_ip=client_ip,
    )


# The same few URLs come again and again (one per page and asset of each app): parsing and
# normalising was the largest single cost of an nginx question, so answers are kept in a
# bounded dict, like host names below. Failures are not cached; they raise each time.
_url_cache: dict[str, tuple[str, str, int | None, str, str]] = {}


def _parse_original_url(url: str) -> tuple[str, str, int | None, str, str]:
    raw_scheme, sep, rest = url.partition("://")
    if not sep:
        raise BadForwardedRequest("X-Original-URL must be an absolute URL like https://host/path")
    scheme = _scheme(raw_scheme, "X-Original-URL scheme")
    cut = len(rest)
    for delimiter in "/?#":
        at = rest.find(delimiter, 0, cut)
        if at >= 0:
            cut = at
    authority, target = rest[:cut], rest[cut:]
    if "@" in authority:
        raise BadForwardedRequest("X-Original-URL must not carry userinfo ('user@host')")
    host, port = _host_port(authority, "X-Original-URL host")
    path, query = _target(target if target.startswith("/") else "/" + target, "X-Original-URL")
    return scheme, host, port, path, query


def from_envoy(
    headers: Sequence[tuple[bytes, bytes]], *, path_after_prefix: str, method: str
) -> ForwardedRequest:
    """Envoy ``ext_authz`` HTTP service.

    ``path_after_prefix`` is the check request's target with the configured ``path_prefix``
    cut off: the original path, and its query when the caller passes it (Envoy appends the
    whole original ``:path``). ``method`` is the check request's own method, which Envoy
    copies from the original request. ``Host`` is the original ``:authority``.
    ``X-Forwarded-Proto`` is required: list it (and ``x-envoy-external-address``) in the
    filter's ``allowed_headers``, since Envoy forwards neither by default. The client is
    ``x-envoy-external-address`` (set by Envoy with ``use_remote_address``), else the
    rightmost ``X-Forwarded-For`` entry.
    """
    found = _collect(headers, _ENVOY)
    host, port = _host_port(_required(found, _HOST), "Host")
    path, query = _target(path_after_prefix, "ext_authz path")
    client_ip = _address(found.get(_ENVOY_EXTERNAL)) or _rightmost(found.get(_XF_FOR))
    return ForwardedRequest(
        method=_method(method, "method"),
        scheme=_scheme(
            _required(found, _XF_PROTO, " (add it to the ext_authz allowed_headers)"),
            "X-Forwarded-Proto",
        ),
        host=host,
        port=port,
        path=path,
        query=query,
        client_ip=client_ip,
    )


# Peers allowed to ask


def parse_networks(items: Sequence[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings (``gateway.forward_auth_clients``) as networks; a bare address is a
    network of one. Host bits are allowed (``10.0.0.1/8`` is ``10.0.0.0/8``)."""
    networks: list[IPNetwork] = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"expected an IP address or CIDR network, got {item!r}", value=item
            ) from exc
    return tuple(networks)


_peer_cache: dict[tuple[str, int], tuple[Sequence[IPNetwork], bool]] = {}


def peer_allowed(peer_ip: str, networks: Sequence[IPNetwork]) -> bool:
    """Whether the connecting peer lies in one of ``networks``; runs on every request.

    Answers are cached per (address, networks object) in a dict bounded at 4096 entries
    (cleared whole when full; an attacker cycling addresses only costs a recomputation).
    The key holds the networks' ``id`` rather than the tuple, which would be hashed
    element by element on every call; the entry keeps a reference to the very object, so
    the id cannot be reused while the entry lives. Only tuples are cached: a list could be
    changed under the cache. An unparseable peer (a Unix socket, "") is not allowed;
    an IPv4-mapped IPv6 peer (``::ffff:127.0.0.1``, dual-stack sockets) is read as IPv4.
    """
    key = (peer_ip, id(networks))
    hit = _peer_cache.get(key)
    if hit is not None and hit[0] is networks:
        return hit[1]
    allowed = _in_networks(peer_ip, networks)
    if type(networks) is tuple:
        if len(_peer_cache) >= _MAX_CACHE:
            _peer_cache.clear()
        _peer_cache[key] = (networks, allowed)
    return allowed


def _in_networks(peer_ip: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


# Header reading


def _collect(headers: Sequence[tuple[bytes, bytes]], wanted: frozenset[bytes]) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for name, value in headers:
        if name in wanted:
            if name in found:
                raise BadForwardedRequest(f"{_DISPLAY[name]} appears more than once")
            found[name] = value.decode("latin-1").strip(" \t")
    return found


def _required(found: dict[bytes, str], name: bytes, hint: str = "") -> str:
    value = found.get(name)
    if not value:
        raise BadForwardedRequest(f"missing {_DISPLAY[name]} header{hint}")
    return value


def _method(value: str, what: str) -> str:
    if 0 < len(value) <= 20 and value.isascii() and value.isalpha() and value.isupper():
        return value
    raise BadForwardedRequest(f"{what} must be an upper-case method like GET, got {value[:24]!r}")


def _scheme(value: str, what: str) -> str:
    scheme = _SCHEMES.get(value.lower())
    if scheme is None:
        raise BadForwardedRequest(f"{what} must be http or https, got {value[:24]!r}")
    return scheme


def _target(target: str, what: str) -> tuple[str, str]:
    try:
        return split_target(target)
    except BadPath as exc:
        raise BadForwardedRequest(f"{what}: {exc.message}") from exc


_host_cache: dict[str, tuple[str, int | None]] = {}


def _host_port(value: str, what: str) -> tuple[str, int | None]:
    """``name[:port]``, ``ipv4[:port]`` or ``[ipv6][:port]``, validated and lower-cased.

    Hosts repeat (a handful of app hosts), so answers are cached in a bounded dict.
    """
    cached = _host_cache.get(value)
    if cached is not None:
        return cached
    parsed = _parse_host_port(value.lower(), what)
    if len(_host_cache) >= _MAX_CACHE:
        _host_cache.clear()
    _host_cache[value] = parsed
    return parsed


def _parse_host_port(value: str, what: str) -> tuple[str, int | None]:
    if value.startswith("["):
        end = value.find("]")
        literal = value[1:end] if end > 0 else ""
        try:
            if "%" in literal:  # a zone id names an interface of the proxy, not a host
                raise ValueError(literal)
            host = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            raise BadForwardedRequest(f"{what} is not a valid IPv6 literal") from None
        rest = value[end + 1 :]
    else:
        name, colon, port_text = value.partition(":")
        host = _host_name(name, what)
        rest = colon + port_text
    if not rest:
        return host, None
    port_text = rest[1:]
    if rest[0] != ":" or not (0 < len(port_text) <= 5 and port_text.isascii()):
        raise BadForwardedRequest(f"{what} must be host or host:port")
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise BadForwardedRequest(f"{what} port must be 1-65535, got {port_text!r}")
    return host, int(port_text)


def _host_name(name: str, what: str) -> str:
    """A DNS name (letters, digits, '-', '_'; labels of 1-63) or a dotted-quad IPv4."""
    if name.endswith("."):
        name = name[:-1]  # the absolute form names the same host
    labels = name.split(".")
    if (
        not name
        or len(name) > 253
        or name.strip(_NAME_CHARS + ".")
        or any(not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-" for label in labels)
    ):
        raise BadForwardedRequest(f"{what} is not a valid host name")
    if labels[-1].isdigit():
        # An all-numeric last label is an IPv4 address or nothing: refuse the inet_aton
        # shorthands ("127.1", "0x7f.1") that resolvers read differently.
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise BadForwardedRequest(f"{what} is not a valid IPv4 address") from None
    return name


def _rightmost(value: str | None) -> str:
    """The last X-Forwarded-For entry: the address our proxy appended; "" if none or junk."""
    if not value:
        return ""
    return _address(value.rpartition(",")[2])


_address_cache: dict[str, str] = {}


def _address(value: str | None) -> str:
    """A canonical IP address, or "" for anything else; parsed answers are cached (bounded),
    since ``ipaddress`` parsing is the dearest step of reading a request."""
    if not value:
        return ""
    cached = _address_cache.get(value)
    if cached is not None:
        return cached
    text = value.strip(" \t")
    address = ""
    if "%" not in text:  # a zone id names an interface of the proxy, not a client
        try:
            address = str(ipaddress.ip_address(text))
        except ValueError:
            pass
    if len(_address_cache) >= _MAX_CACHE:
        _address_cache.clear()
    _address_cache[value] = address
    return address
