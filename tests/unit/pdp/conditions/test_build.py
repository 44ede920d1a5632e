from __future__ import annotations

from nevertrust.pdp.conditions import build_conditions
from nevertrust.pdp.language import When


def test_conditions_come_in_the_languages_field_order_whatever_the_written_order() -> None:
    when = When.model_validate(
        {
            "http": {"paths": ["/x"], "methods": ["GET"]},
            "risk_max": "low",
            "time": {"hours": "08:00-18:00"},
            "source": {"country": ["DE"], "not_cidr": ["10.0.0.0/8"], "cidr": ["0.0.0.0/0"]},
            "device": {
                "posture": {"a": 1},
                "platform": ["linux"],
                "managed": True,
                "compliant": True,
            },
            "mfa_max_age": "5m",
            "auth_methods": ["otp"],
            "roles": ["admin"],
            "groups": ["eng"],
            "users": ["alice"],
        }
    )
    assert [c.name for c in build_conditions(when)] == [
        "users",
        "groups",
        "roles",
        "auth_methods",
        "mfa_max_age",
        "device.compliant",
        "device.managed",
        "device.platform",
        "device.posture",
        "source.cidr",
        "source.not_cidr",
        "source.country",
        "time",
        "risk_max",
        "http.methods",
        "http.paths",
    ]


def test_an_empty_when_builds_no_conditions() -> None:
    assert build_conditions(When()) == ()
