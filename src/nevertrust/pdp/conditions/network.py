"""Where from: source address ranges and country.

Addresses and networks are compared as integers: ``(address & mask) == network``. The
source address of a request is parsed once and remembered in a bounded cache, since the
same clients come back request after request.
"""

from __future__ import annotations

import ipaddress

from nevertrust.pdp.conditions._base import Condition

__all__ = ["cidr", "country", "not_cidr", "parse_address"]

_Network = tuple[int, int, int]  # (ip version, network as int, mask as int)
_CACHE_LIMIT = 65_536
_parsed: dict[str, tuple[int, int] | None] = {}


def parse_address(text: str) -> tuple[int, int] | None:
    """(version, integer) of an IP address, or None when it is not one."""
    found = _parsed.get(text, False)
    if found is not False:
        return found  # type: ignore[return-value]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        value = None
    else:
        # An IPv4 client on a dual-stack listener shows up as ::ffff:a.b.c.d; compare it
        # as the IPv4 address it is, or a 10.0.0.0/8 rule would not see it.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        value = (address.version, int(address))
    if len(_parsed) >= _CACHE_LIMIT:
        _parsed.clear()
    _parsed[text] = value
    return value


def _networks(ranges: list[str]) -> tuple[_Network, ...]:
    result = []
    for item in ranges:
        network = ipaddress.ip_network(item, strict=False)
        result.append((network.version, int(network.network_address), int(network.netmask)))
    return tuple(result)


def _inside(text: str, networks: tuple[_Network, ...]) -> bool | None:
    parsed = parse_address(text)
    if parsed is None:
        return None
    version, value = parsed
    for net_version, net, mask in networks:
        if net_version == version and value & mask == net:
            return True
    return False


def cidr(ranges: list[str]) -> Condition:
    networks = _networks(ranges)
    return Condition(
        "source.cidr",
        lambda r, _n: _inside(r.source_ip, networks) is True,
        lambda r, _n: f"needs a source in {ranges}; came from {r.source_ip or 'unknown'}",
    )


def not_cidr(ranges: list[str]) -> Condition:
    networks = _networks(ranges)
    # An unknown source is not known to be outside: the condition is false.
    return Condition(
        "source.not_cidr",
        lambda r, _n: _inside(r.source_ip, networks) is False,
        lambda r, _n: f"needs a source outside {ranges}; came from {r.source_ip or 'unknown'}",
    )


def country(codes: list[str]) -> Condition:
    allowed = frozenset(codes)
    return Condition(
        "source.country",
        lambda r, _n: r.country is not None and r.country in allowed,
        lambda r, _n: f"needs a country in {sorted(allowed)}; came from {r.country or 'unknown'}",
    )
