from __future__ import annotations

import pytest

from nevertrust.pdp.conditions import network

from ._helpers import NOW, request

RANGES = ["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "10.200.0.1/16"]


@pytest.mark.parametrize(
    ("source", "inside"),
    [
        ("10.1.2.3", True),
        ("192.168.1.255", True),
        ("192.168.2.1", False),
        ("8.8.8.8", False),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
        ("::1", False),
        ("10.200.77.1", True),  # a range written with host bits set means its network
    ],
)
def test_cidr_and_not_cidr_are_opposites_for_a_known_source(source: str, inside: bool) -> None:
    seen = request(source_ip=source)
    assert network.cidr(RANGES).test(seen, NOW) is inside
    assert network.not_cidr(RANGES).test(seen, NOW) is not inside


@pytest.mark.parametrize("source", ["", "not-an-ip", "10.0.0.256", "10.0.0.0/8", " 10.0.0.1"])
def test_an_unknown_or_unparseable_source_is_neither_inside_nor_outside(source: str) -> None:
    # Failing both keeps a `not_cidr` allow rule from admitting a request of unknown origin.
    seen = request(source_ip=source)
    assert network.cidr(RANGES).test(seen, NOW) is False
    assert network.not_cidr(RANGES).test(seen, NOW) is False


def test_an_empty_range_list_contains_nothing() -> None:
    seen = request(source_ip="10.0.0.1")
    assert network.cidr([]).test(seen, NOW) is False
    assert network.not_cidr([]).test(seen, NOW) is True


def test_parse_address_gives_version_and_integer_or_none() -> None:
    assert network.parse_address("10.0.0.1") == (4, 0x0A000001)
    assert network.parse_address("::1") == (6, 1)
    assert network.parse_address("nope") is None
    assert network.parse_address("nope") is None  # remembered, same answer


@pytest.mark.parametrize(
    ("country", "holds"), [("DE", True), ("FR", True), ("US", False), ("de", False), (None, False)]
)
def test_country_holds_for_a_listed_code_only(country: str | None, holds: bool) -> None:
    assert network.country(["DE", "FR"]).test(request(country=country), NOW) is holds


def test_explanations_say_expected_versus_got() -> None:
    seen = request(source_ip="8.8.8.8", country="US")
    assert network.cidr(["10.0.0.0/8"]).explain(seen, NOW) == (
        "needs a source in ['10.0.0.0/8']; came from 8.8.8.8"
    )
    assert network.not_cidr(["8.0.0.0/8"]).explain(seen, NOW) == (
        "needs a source outside ['8.0.0.0/8']; came from 8.8.8.8"
    )
    assert network.country(["FR", "DE"]).explain(seen, NOW) == (
        "needs a country in ['DE', 'FR']; came from US"
    )
    unknown = request()
    assert network.cidr(["10.0.0.0/8"]).explain(unknown, NOW).endswith("came from unknown")
    assert network.country(["DE"]).explain(unknown, NOW).endswith("came from unknown")


def test_ipv4_mapped_ipv6_source_is_matched_as_ipv4() -> None:
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; a 10/8 rule must see them.
    from nevertrust.domain import AccessRequest, Principal
    from nevertrust.pdp.conditions import network

    request = AccessRequest(Principal(1, "u", frozenset()), "app", source_ip="::ffff:10.1.2.3")
    assert network.cidr(["10.0.0.0/8"]).test(request, None)  # type: ignore[arg-type]
    assert not network.not_cidr(["10.0.0.0/8"]).test(request, None)  # type: ignore[arg-type]
