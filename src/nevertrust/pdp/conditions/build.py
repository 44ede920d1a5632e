"""Turn a rule's ``when`` into compiled conditions, in the language's field order.

That order (users, groups, roles, auth_methods, mfa_max_age, device.*, source.*, time,
risk_max, http.*), not the order written in YAML, decides which condition a near miss
names first; the reference interpreter follows the same order.
"""

from __future__ import annotations

from nevertrust.pdp._durations import parse_duration
from nevertrust.pdp.conditions import auth, device, identity, network, request, time
from nevertrust.pdp.conditions._base import Condition
from nevertrust.pdp.language import When

__all__ = ["build_conditions"]


def build_conditions(when: When) -> tuple[Condition, ...]:
    built: list[Condition] = []
    if when.users is not None:
        built.append(identity.users(when.users))
    if when.groups is not None:
        built.append(identity.groups(when.groups))
    if when.roles is not None:
        built.append(identity.roles(when.roles))
    if when.auth_methods is not None:
        built.append(auth.auth_methods(when.auth_methods))
    if when.mfa_max_age is not None:
        age = when.mfa_max_age
        built.append(auth.mfa_max_age(age if isinstance(age, int) else parse_duration(age)))
    if when.device is not None:
        d = when.device
        if d.compliant is not None:
            built.append(device.compliant(d.compliant))
        if d.managed is not None:
            built.append(device.managed(d.managed))
        if d.platform is not None:
            built.append(device.platform(list(d.platform)))
        if d.posture is not None:
            built.append(device.posture(d.posture))
    if when.source is not None:
        s = when.source
        if s.cidr is not None:
            built.append(network.cidr(s.cidr))
        if s.not_cidr is not None:
            built.append(network.not_cidr(s.not_cidr))
        if s.country is not None:
            built.append(network.country(s.country))
    if when.time is not None:
        t = when.time
        built.append(time.time_window(days=t.days, hours=t.hours, timezone=t.timezone))
    if when.risk_max is not None:
        built.append(request.risk_max(when.risk_max))
    if when.http is not None:
        if when.http.methods is not None:
            built.append(request.methods(when.http.methods))
        if when.http.paths is not None:
            built.append(request.paths(when.http.paths))
    return tuple(built)
