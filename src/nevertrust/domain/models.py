"""Core value objects shared by the decision point, the gateway and the services."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AccessRequest", "AccessRule", "App", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the identity as the decision point sees it."""

    user_id: int
    name: str
    groups: frozenset[str]
    enabled: bool = True
    display_name: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class App:
    """An application published through the gateway at ``NAME.<base domain>``."""

    name: str
    upstream: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class AccessRule:
    """Members of ``group`` may use ``app``. The minimal rule until the policy language lands."""

    rule_id: str
    app: str
    group: str


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One request to decide: who, to what, from where."""

    principal: Principal
    app: str
    method: str = "GET"
    path: str = "/"
    source_ip: str = ""
