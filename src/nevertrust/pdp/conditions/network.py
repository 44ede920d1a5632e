"""Where from: source address ranges and country."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from nevertrust.pdp.conditions._base import Condition

__all__ = ["cidr", "country", "not_cidr"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _inside(text: str, networks: tuple[_Network, ...]) -> bool | None:
    address = _address(text)
    if address is None:
        return None
    return any(address in network for network in networks)


def cidr(ranges: list[str]) -> Condition:
    networks = tuple(ipaddress.ip_network(r, strict=False) for r in ranges)
    return Condition(
        "source.cidr",
        lambda r, _n: _inside(r.source_ip, networks) is True,
        lambda r, _n: f"needs a source in {ranges}; came from {r.source_ip or 'unknown'}",
    )


def not_cidr(ranges: list[str]) -> Condition:
    networks = tuple(ipaddress.ip_network(r, strict=False) for r in ranges)
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
