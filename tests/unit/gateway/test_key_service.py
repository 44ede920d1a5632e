"""KeyService over a real SQLite home with a fixed clock: rotation with overlap, the JWKS,
which key signs, retirement, automatic rotation, and what each change leaves behind."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from nevertrust.gateway import AssertionSigner, verify_assertion
from nevertrust.gateway.models import KeyState
from nevertrust.gateway.signing_keys import InvalidOverlap, SigningKeyInUse, UnknownSigningKey

HOUR = timedelta(hours=1)
ISSUER = "http://auth.localhost"
AUDIENCE = "http://whoami.localhost"


def kids(jwks: dict[str, Any]) -> list[str]:
    return [k["kid"] for k in jwks["keys"]]


def states(svc: Services) -> dict[str, KeyState]:
    return {v.kid: v.state for v in svc.keys.list()}


def audit(svc: Services, *actions: Action) -> list[tuple[str, str, dict[str, Any]]]:
    with svc.uow.read() as uow:
        return [
            (r.actor, r.target, json.loads(r.details))
            for r in uow.audit.iterate()
            if r.action in actions
        ]


def events(svc: Services) -> list[ChangeEvent]:
    with svc.uow.read() as uow:
        return [e for _, e in uow.changes.since(0) if e.topic is Topic.SIGNING_KEY]


def verifies(svc: Services, clock: FixedClock, jwks: dict[str, Any] | None = None) -> str:
    """Sign with the active key and verify against the JWKS; returns the kid used."""
    key = svc.keys.active()
    token = AssertionSigner(key=key, issuer=ISSUER, ttl_seconds=60).sign(
        audience=AUDIENCE, subject="1", name="alice", groups=[], email="",
        auth_methods=["pwd"], auth_time=clock.now(), now=clock.now(),
    )  # fmt: skip
    verify_assertion(
        token,
        jwks=jwks or svc.keys.jwks(),
        expected_issuer=ISSUER,
        expected_audience=AUDIENCE,
        now=clock.now(),
    )
    return key.kid


def test_first_use_creates_one_key_audited_as_created(services: Services) -> None:
    first = services.keys.active()
    assert services.keys.active().kid == first.kid  # created once, then reused
    assert kids(services.keys.jwks()) == [first.kid]
    assert states(services) == {first.kid: KeyState.ACTIVE}
    assert audit(services, Action.SIGNING_KEY_CREATED) == [
        ("system", f"signing-key:{first.kid}", {})
    ]
    assert events(services) == [ChangeEvent(Topic.SIGNING_KEY, first.kid)]


def test_rotation_signs_with_the_new_key_at_once_and_keeps_the_old_one_for_the_overlap(
    services: Services, clock: FixedClock
) -> None:
    old = services.keys.active().kid
    clock.advance(timedelta(days=3))

    rotation = services.keys.rotate(actor="user:root", overlap=HOUR)

    new = rotation.active.kid
    assert new != old
    assert services.keys.active().kid == new
    assert [(v.kid, v.state, v.retired_at) for v in rotation.replaced] == [
        (old, KeyState.RETIRING, clock.now() + HOUR)
    ]
    assert kids(services.keys.jwks()) == [new, old]  # the active key first
    assert states(services) == {old: KeyState.RETIRING, new: KeyState.ACTIVE}
    assert verifies(services, clock) == new

    clock.advance(HOUR - timedelta(seconds=1))
    assert kids(services.keys.jwks()) == [new, old]
    clock.advance(timedelta(seconds=1))
    assert kids(services.keys.jwks()) == [new]
    assert states(services) == {old: KeyState.RETIRED, new: KeyState.ACTIVE}


def test_rotation_is_audited_and_announced_in_the_same_transaction(services: Services) -> None:
    old = services.keys.active().kid
    rotation = services.keys.rotate(actor="user:root", overlap=HOUR)
    new = rotation.active.kid
    [(actor, target, details)] = audit(services, Action.SIGNING_KEY_ROTATED)
    assert (actor, target) == ("user:root", f"signing-key:{new}")
    assert details == {
        "previous": old,
        "automatic": False,
        "overlap_seconds": 3600,
        "retiring": {old: rotation.replaced[0].retired_at.isoformat()},  # type: ignore[union-attr]
    }
    assert events(services)[-1] == ChangeEvent(Topic.SIGNING_KEY, new)


def test_a_second_rotation_never_extends_the_first_replaced_keys_life(
    services: Services, clock: FixedClock
) -> None:
    first = services.keys.active().kid
    clock.advance(timedelta(minutes=1))
    second = services.keys.rotate(actor="user:root", overlap=HOUR).active.kid
    clock.advance(timedelta(minutes=10))
    third = services.keys.rotate(actor="user:root", overlap=HOUR).active.kid

    retired_at = {v.kid: v.retired_at for v in services.keys.list()}
    assert retired_at[first] == clock.now() + timedelta(minutes=50)
    assert retired_at[second] == clock.now() + HOUR
    assert retired_at[third] is None
    assert kids(services.keys.jwks()) == [third, second, first]


def test_rotate_refuses_an_overlap_beyond_seven_days(services: Services) -> None:
    before = services.keys.active().kid
    with pytest.raises(InvalidOverlap):
        services.keys.rotate(actor="user:root", overlap=timedelta(days=8))
    assert services.keys.active().kid == before


def test_retire_takes_a_retiring_key_out_of_the_jwks_at_once(
    services: Services, clock: FixedClock
) -> None:
    old = services.keys.active().kid
    new = services.keys.rotate(actor="user:root", overlap=HOUR).active.kid
    clock.advance(timedelta(minutes=1))

    view = services.keys.retire(old, actor="user:root")

    assert (view.kid, view.state, view.retired_at) == (old, KeyState.RETIRED, clock.now())
    assert kids(services.keys.jwks()) == [new]
    [(actor, target, details)] = audit(services, Action.SIGNING_KEY_RETIRED)
    assert (actor, target) == ("user:root", f"signing-key:{old}")
    assert details["scheduled_for"] == (clock.now() + timedelta(minutes=59)).isoformat()
    assert events(services)[-1] == ChangeEvent(Topic.SIGNING_KEY, new)


def test_retiring_the_active_key_is_refused_with_advice_to_rotate_first(
    services: Services,
) -> None:
    active = services.keys.active().kid
    with pytest.raises(SigningKeyInUse, match="rotate first") as refused:
        services.keys.retire(active, actor="user:root")
    assert (refused.value.code, refused.value.http_status) == ("signing-key-in-use", 409)
    assert kids(services.keys.jwks()) == [active]
    assert audit(services, Action.SIGNING_KEY_RETIRED) == []


def test_retiring_an_unknown_key_says_so_and_a_retired_one_changes_nothing(
    services: Services, clock: FixedClock
) -> None:
    old = services.keys.active().kid
    services.keys.rotate(actor="user:root", overlap=timedelta(0))
    with pytest.raises(UnknownSigningKey, match="no signing key with kid 'nope'"):
        services.keys.retire("nope", actor="user:root")
    view = services.keys.retire(old, actor="user:root")
    assert (view.state, view.retired_at) == (KeyState.RETIRED, clock.now())
    assert audit(services, Action.SIGNING_KEY_RETIRED) == []  # nothing happened to record


def test_automatic_rotation_waits_for_the_maximum_age_then_rotates_once(
    services: Services, clock: FixedClock
) -> None:
    first = services.keys.active().kid
    max_age = timedelta(days=30)
    clock.advance(max_age - timedelta(seconds=1))
    assert services.keys.rotate_if_due(max_age=max_age, overlap=HOUR) is False
    assert services.keys.active().kid == first

    clock.advance(timedelta(seconds=1))
    assert services.keys.rotate_if_due(max_age=max_age, overlap=HOUR) is True
    assert services.keys.rotate_if_due(max_age=max_age, overlap=HOUR) is False
    second = services.keys.active().kid
    assert second != first
    assert kids(services.keys.jwks()) == [second, first]
    [(actor, _, details)] = audit(services, Action.SIGNING_KEY_ROTATED)
    assert (actor, details["automatic"]) == ("system", True)


def test_automatic_rotation_is_off_when_the_maximum_age_is_zero(
    services: Services, clock: FixedClock
) -> None:
    first = services.keys.active().kid
    clock.advance(timedelta(days=3650))
    assert services.keys.rotate_if_due(max_age=timedelta(0), overlap=HOUR) is False
    assert services.keys.active().kid == first


def test_automatic_rotation_creates_the_first_key_of_an_empty_home(services: Services) -> None:
    assert services.keys.list() == []
    assert services.keys.rotate_if_due(max_age=timedelta(days=30), overlap=HOUR) is True
    [view] = services.keys.list()
    assert view.state is KeyState.ACTIVE
    assert audit(services, Action.SIGNING_KEY_CREATED) != []


_operations = st.lists(
    st.one_of(
        st.tuples(st.just("rotate"), st.integers(min_value=0, max_value=180)),
        st.tuples(st.just("retire"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("advance"), st.integers(min_value=0, max_value=240)),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=_operations)
def test_any_sequence_of_changes_leaves_one_active_published_key_that_verifies(
    services: Services, clock: FixedClock, operations: list[tuple[str, int]]
) -> None:
    """Whatever operators do (rotations with any overlap, retirements, time passing), the
    gateway has exactly one key to sign with, it is published, the JWKS is exactly the
    keys not retired, and the key a rotation replaced stays published for its overlap."""
    for op, n in operations:
        if op == "rotate":
            before = services.keys.active().kid
            services.keys.rotate(actor="user:root", overlap=timedelta(minutes=n))
            if n > 0:
                assert before in kids(services.keys.jwks())
        elif op == "retire":
            views = services.keys.list()
            target = views[n % len(views)] if views else None
            if target is not None and target.state is KeyState.ACTIVE:
                with pytest.raises(SigningKeyInUse):
                    services.keys.retire(target.kid, actor="user:root")
            elif target is not None:
                services.keys.retire(target.kid, actor="user:root")
        else:
            clock.advance(timedelta(minutes=n))

        views = services.keys.list()
        active = [v.kid for v in views if v.state is KeyState.ACTIVE]
        assert active == [services.keys.active().kid]
        jwks = kids(services.keys.jwks())
        assert jwks[0] == active[0]
        assert sorted(jwks) == sorted(v.kid for v in views if v.state is not KeyState.RETIRED)
        assert verifies(services, clock) == active[0]
