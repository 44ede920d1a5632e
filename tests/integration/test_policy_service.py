"""Policy versions, what-if and replay on real storage; a peer's apply reaches the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from nevertrust.app import Services
from nevertrust.audit import Action, AuditEntry, Outcome
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from nevertrust.control import request_sync
from nevertrust.domain import AccessRequest, Decision, Effect, Reason
from nevertrust.pdp import PolicyError, decide
from nevertrust.policy import RequestSpec
from nevertrust.server import Runtime

from ._support import audit_records, changes, db_state, last_change_id

ADMIN = "admin:root"

V1 = """\
version: 1
policies:
  - name: wiki
    apps: [wiki]
    rules:
      - name: engineers
        effect: allow
        when:
          groups: [engineering]
      - name: edits-need-mfa
        effect: step-up
        when:
          http: {methods: [POST, PUT, PATCH, DELETE]}
        step_up: {methods: [otp, webauthn], max_age: 15m}
"""

# v1 plus a deny rule and a report-only policy.
V2 = (
    V1
    + """\
      - name: no-admin
        effect: deny
        when:
          http: {paths: ["/admin*"]}
  - name: trial
    mode: report-only
    apps: ["*"]
    rules:
      - name: no-sales
        effect: deny
        when:
          groups: [sales]
"""
)

# Who may use the wiki changes: sales instead of engineering.
SALES_ONLY = V1.replace("groups: [engineering]", "groups: [sales]").replace(
    "name: engineers", "name: sellers"
)


@pytest.fixture
def svc(any_services: Services) -> Services:
    directory = any_services.directory
    for user in ("alice", "bob", "erin"):
        directory.add_user(user, actor=ADMIN)
    for group, user in (("engineering", "alice"), ("sales", "bob"), ("hr", "erin")):
        directory.add_group(group, actor=ADMIN)
        directory.set_membership(group, user, True, actor=ADMIN)
    any_services.catalog.add_app("wiki", upstream="http://127.0.0.1:9002", actor=ADMIN)
    any_services.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor=ADMIN)
    return any_services


def apply(svc: Services, text: str, **kwargs: bool) -> int | None:
    return svc.policy.apply(text, file="policy.yaml", actor=ADMIN, **kwargs).version


def policy_audits(svc: Services) -> list[tuple[str, str, dict[str, object]]]:
    return [
        (r.actor, r.target, json.loads(r.details))
        for r in audit_records(svc)
        if r.action == Action.POLICY_APPLIED
    ]


# Versions


def test_apply_stores_version_1_with_one_audit_record_and_a_policy_change(svc: Services) -> None:
    start = last_change_id(svc)

    result = svc.policy.apply(V1, file="policy.yaml", actor=ADMIN)

    assert (result.version, result.summary, result.warnings) == (
        1,
        ("policy wiki: added (enforce)",),
        (),
    )
    active = svc.policy.active()
    assert active is not None
    assert (active.version, active.document, active.source, active.applied_by) == (
        1,
        V1,
        "policy.yaml",
        ADMIN,
    )
    assert active.sha256 == hashlib.sha256(V1.encode()).hexdigest()
    assert active.summary == "policy wiki: added (enforce)"
    assert active.applied_at == svc.clock.now()
    assert policy_audits(svc) == [
        (ADMIN, "policy:v1", {"file": "policy.yaml", "changes": ["policy wiki: added (enforce)"]})
    ]
    assert [e for e in changes(svc, after=start) if e.topic == Topic.POLICY] == [
        ChangeEvent(Topic.POLICY, "1")
    ]


def test_the_summary_of_a_second_version_is_a_diff_against_the_first(svc: Services) -> None:
    apply(svc, V1)

    result = svc.policy.apply(V2, file="v2.yaml", actor=ADMIN)

    assert result.version == 2
    assert result.summary == ("policy trial: added (report-only)", "policy wiki: changed")
    assert policy_audits(svc)[-1] == (
        ADMIN,
        "policy:v2",
        {
            "file": "v2.yaml",
            "changes": ["policy trial: added (report-only)", "policy wiki: changed"],
        },
    )
    mode_only = V2.replace("mode: report-only", "mode: enforce")
    assert svc.policy.apply(mode_only, file="v3.yaml", actor=ADMIN).summary == (
        "policy trial: mode report-only -> enforce",
    )
    assert svc.policy.apply(V1, file="v4.yaml", actor=ADMIN).summary == (
        "policy trial: removed",
        "policy wiki: changed",
    )


def test_applying_the_identical_text_again_writes_nothing(svc: Services) -> None:
    apply(svc, V1)
    before = db_state(svc)

    again = svc.policy.apply(V1, file="other-name.yaml", actor="user:someone-else")

    assert (again.version, again.summary) == (None, ())
    assert db_state(svc) == before
    assert [v.version for v in svc.policy.history()] == [1]
    assert len(policy_audits(svc)) == 1


def test_dry_run_validates_and_reports_but_writes_nothing(svc: Services) -> None:
    apply(svc, V1)
    before = db_state(svc)

    result = svc.policy.apply(V2, file="policy.yaml", actor=ADMIN, dry_run=True)

    assert result.version is None
    assert result.summary == ("policy trial: added (report-only)", "policy wiki: changed")
    assert db_state(svc) == before
    active = svc.policy.active()
    assert active is not None and active.version == 1


def test_dry_run_of_the_first_version_writes_nothing(svc: Services) -> None:
    before = db_state(svc)

    result = svc.policy.apply(V1, file="policy.yaml", actor=ADMIN, dry_run=True)

    assert (result.version, result.summary) == (None, ("policy wiki: added (enforce)",))
    assert db_state(svc) == before
    assert svc.policy.active() is None


BAD_CIDR = V1.replace(
    "groups: [engineering]\n", "groups: [engineering]\n          source: {cidr: [10.0.0.300/8]}\n"
)
BAD_EFFECT = V1.replace("effect: allow", "effect: permit")
UNKNOWN_KEY = V1.replace("    apps: [wiki]\n", "    apps: [wiki]\n    colour: red\n")
BAD_YAML = V1 + "      - name: [unclosed\n"
TWICE = V1 + "      - name: engineers\n        effect: deny\n"


@pytest.mark.parametrize(
    ("text", "line", "column", "says"),
    [
        (BAD_CIDR, 10, 26, "'10.0.0.300/8' is not an IP network"),
        (BAD_EFFECT, 7, 17, "policies.0.rules.0.effect"),
        (UNKNOWN_KEY, 5, 5, "policies.0.colour"),
        (BAD_YAML, 16, 1, "not valid YAML"),
        (TWICE, 3, 5, "rule 'engineers' appears twice"),
    ],
    ids=["bad-cidr", "bad-effect", "unknown-key", "bad-yaml", "rule-twice"],
)
def test_an_invalid_document_names_the_place_and_the_version_in_force_stays(
    svc: Services, text: str, line: int, column: int, says: str
) -> None:
    apply(svc, V1)
    before = db_state(svc)

    with pytest.raises(PolicyError) as caught:
        svc.policy.apply(text, file="policy.yaml", actor=ADMIN)

    error = caught.value
    assert (error.file, error.line, error.column) == ("policy.yaml", line, column), error.message
    assert error.message.startswith(f"policy.yaml:{line}:{column}: ")
    assert says in error.message
    assert error.code == "invalid-policy"
    assert db_state(svc) == before
    active = svc.policy.active()
    assert active is not None and (active.version, active.document) == (1, V1)


def test_rollback_restores_an_old_document_as_a_new_version(svc: Services) -> None:
    apply(svc, V1)
    apply(svc, V2)
    start = last_change_id(svc)

    result = svc.policy.rollback(1, actor="user:alice")

    assert result.version == 3
    active = svc.policy.active()
    assert active is not None
    assert (active.version, active.document, active.source, active.applied_by) == (
        3,
        svc.policy.get(1).document,
        "rollback to v1",
        "user:alice",
    )
    assert active.sha256 == svc.policy.get(1).sha256
    assert svc.policy.get(2).document == V2  # history is kept
    assert policy_audits(svc)[-1][:2] == ("user:alice", "policy:v3")
    assert ChangeEvent(Topic.POLICY, "3") in changes(svc, after=start)
    # Rolling back to what is already in force changes nothing.
    assert svc.policy.rollback(3, actor=ADMIN).version is None
    assert svc.policy.rollback(1, actor=ADMIN).version is None


def test_rollback_to_an_unknown_version_is_refused(svc: Services) -> None:
    apply(svc, V1)
    before = db_state(svc)

    with pytest.raises(Exception, match="no policy version 7") as caught:
        svc.policy.rollback(7, actor=ADMIN)

    assert getattr(caught.value, "code", None) == "unknown-policy-version"
    assert db_state(svc) == before


def test_history_lists_versions_newest_first(svc: Services, clock: FixedClock) -> None:
    for text in (V1, V2, SALES_ONLY):
        apply(svc, text)
        clock.advance(timedelta(minutes=1))

    history = svc.policy.history()

    assert [v.version for v in history] == [3, 2, 1]
    assert [v.document for v in history] == [SALES_ONLY, V2, V1]
    assert history[0].applied_at > history[1].applied_at > history[2].applied_at
    assert [v.version for v in svc.policy.history(limit=2)] == [3, 2]


def test_validate_warns_about_an_app_that_does_not_exist_and_apply_still_accepts_it(
    svc: Services,
) -> None:
    text = V1.replace("apps: [wiki]", "apps: [wiki, nosuch]")

    document, warnings = svc.policy.validate(text, file="policy.yaml")

    assert [p.name for p in document.policies] == ["wiki"]
    assert warnings == ("policy 'wiki' names app 'nosuch', which does not exist",)
    assert svc.policy.validate(V1, file="policy.yaml")[1] == ()
    result = svc.policy.apply(text, file="policy.yaml", actor=ADMIN)
    assert (result.version, result.warnings) == (1, warnings)


def test_validate_writes_nothing_and_raises_for_a_bad_document(svc: Services) -> None:
    before = db_state(svc)

    svc.policy.validate(V2, file="policy.yaml")
    with pytest.raises(PolicyError):
        svc.policy.validate(BAD_CIDR, file="policy.yaml")

    assert db_state(svc) == before


# What-if


def test_what_if_uses_the_users_current_groups_unless_groups_are_given(svc: Services) -> None:
    apply(svc, V1)

    as_member = svc.policy.what_if(RequestSpec(user="alice", app="wiki"))
    as_given = svc.policy.what_if(RequestSpec(user="alice", app="wiki", groups=["sales"]))

    assert (as_member.effect, as_member.reasons, as_member.rule_id) == (
        Effect.ALLOW,
        (Reason.ALLOWED_BY_RULE,),
        "wiki/engineers",
    )
    assert (as_given.effect, as_given.reasons) == (Effect.DENY, (Reason.NOT_IN_ALLOWED_GROUP,))
    # The user's groups are read at the time of asking.
    svc.directory.set_membership("engineering", "alice", False, actor=ADMIN)
    removed = svc.policy.what_if(RequestSpec(user="alice", app="wiki"))
    assert removed.reasons == (Reason.NOT_IN_ALLOWED_GROUP,)
    given = svc.policy.what_if(RequestSpec(user="alice", app="wiki", groups=["engineering"]))
    assert given.effect is Effect.ALLOW


def test_what_if_denies_a_disabled_user_as_the_gateway_does(svc: Services) -> None:
    apply(svc, V1)
    svc.directory.set_enabled("alice", False, actor=ADMIN)

    decision = svc.policy.what_if(RequestSpec(user="alice", app="wiki"))

    assert (decision.effect, decision.reasons) == (Effect.DENY, (Reason.USER_DISABLED,))
    svc.directory.set_enabled("alice", True, actor=ADMIN)
    assert svc.policy.what_if(RequestSpec(user="alice", app="wiki")).effect is Effect.ALLOW


def test_what_if_decides_step_up_from_the_described_sign_in(svc: Services) -> None:
    apply(svc, V1)

    password_only = svc.policy.what_if(RequestSpec(user="alice", app="wiki", method="POST"))
    fresh = svc.policy.what_if(
        RequestSpec(
            user="alice", app="wiki", method="post", auth_methods=["pwd", "otp"], auth_age="5m"
        )
    )
    stale = svc.policy.what_if(
        RequestSpec(user="alice", app="wiki", method="POST", auth_methods=["otp"], auth_age="1h")
    )

    assert (password_only.effect, password_only.reasons, password_only.rule_id) == (
        Effect.STEP_UP,
        (Reason.MFA_REQUIRED,),
        "wiki/edits-need-mfa",
    )
    assert password_only.step_up is not None
    assert password_only.step_up.max_age_seconds == 15 * 60
    assert fresh.effect is Effect.ALLOW
    assert stale.reasons == (Reason.MFA_STALE,)


def test_what_if_honours_a_draft_and_leaves_the_policy_in_force_alone(svc: Services) -> None:
    apply(svc, V1)
    before = db_state(svc)

    under_draft = svc.policy.what_if(RequestSpec(user="bob", app="wiki"), draft=SALES_ONLY)
    in_force = svc.policy.what_if(RequestSpec(user="bob", app="wiki"))

    assert (under_draft.effect, under_draft.rule_id) == (Effect.ALLOW, "wiki/sellers")
    assert in_force.reasons == (Reason.NOT_IN_ALLOWED_GROUP,)
    assert db_state(svc) == before
    with pytest.raises(PolicyError) as caught:
        svc.policy.what_if(RequestSpec(user="bob", app="wiki"), draft=BAD_CIDR)
    assert (caught.value.file, caught.value.line) == ("draft", 10)


def test_what_if_without_any_policy_uses_the_apps_allow_rules(svc: Services) -> None:
    svc.catalog.set_rule("whoami", "hr", True, actor=ADMIN)

    erin = svc.policy.what_if(RequestSpec(user="erin", app="whoami"))
    bob = svc.policy.what_if(RequestSpec(user="bob", app="whoami"))
    nobody = svc.policy.what_if(RequestSpec(user="erin", app="wiki"))

    assert erin.reasons == (Reason.ALLOWED_BY_GROUP,)
    assert bob.reasons == (Reason.NOT_IN_ALLOWED_GROUP,)
    assert nobody.reasons == (Reason.NO_RULE_FOR_APP,)


NEAR_MISSES = """\
version: 1
policies:
  - name: wiki
    apps: [wiki]
    rules:
      - name: engineers
        effect: allow
        when:
          groups: [engineering]
      - name: from-the-office
        effect: allow
        when:
          source: {cidr: [10.0.0.0/8]}
      - name: bob-with-otp
        effect: allow
        when:
          users: [bob]
          auth_methods: [otp]
"""


def test_what_if_denials_carry_a_trace_of_near_misses(svc: Services) -> None:
    svc.catalog.set_rule("wiki", "hr", True, actor=ADMIN)

    decision = svc.policy.what_if(
        RequestSpec(user="bob", app="wiki", source_ip="203.0.113.9"), draft=NEAR_MISSES
    )

    assert (decision.effect, decision.reasons, decision.rule_id) == (
        Effect.DENY,
        (Reason.NO_MATCHING_RULE,),
        None,
    )
    trace = {t.rule_id: (t.matched, t.failed_condition) for t in decision.trace}
    group_rule = svc.catalog.list_rules()[0].rule_id  # `apps allow wiki --group hr`
    assert trace == {
        "wiki/engineers": (False, "groups"),
        "wiki/from-the-office": (False, "source.cidr"),
        "wiki/bob-with-otp": (False, "auth_methods"),
        group_rule: (False, "groups"),
    }
    details = {t.rule_id: t.detail for t in decision.trace}
    assert "'bob' is in ['sales']" in details["wiki/engineers"]
    assert "203.0.113.9" in details["wiki/from-the-office"]
    # Inside the office the second rule applies, and nothing is traced on the allow path.
    inside = svc.policy.what_if(
        RequestSpec(user="bob", app="wiki", source_ip="10.1.2.3"), draft=NEAR_MISSES
    )
    assert (inside.effect, inside.rule_id) == (Effect.ALLOW, "wiki/from-the-office")


def test_what_if_reports_what_a_report_only_policy_would_change(svc: Services) -> None:
    apply(svc, V2)
    svc.catalog.set_rule("wiki", "sales", True, actor=ADMIN)

    bob = svc.policy.what_if(RequestSpec(user="bob", app="wiki"))
    alice = svc.policy.what_if(RequestSpec(user="alice", app="wiki"))
    admin_page = svc.policy.what_if(RequestSpec(user="alice", app="wiki", path="/admin/x"))

    assert (bob.effect, bob.reasons) == (Effect.ALLOW, (Reason.ALLOWED_BY_GROUP,))
    assert bob.shadow is not None
    assert (bob.shadow.effect, bob.shadow.rule_id) == (Effect.DENY, "trial/no-sales")
    assert alice.effect is Effect.ALLOW and alice.shadow is None
    assert (admin_page.effect, admin_page.reasons, admin_page.rule_id) == (
        Effect.DENY,
        (Reason.DENIED_BY_RULE,),
        "wiki/no-admin",
    )


# Replay


def decision_record(
    svc: Services,
    user: str,
    groups: list[str],
    *,
    allowed: bool,
    ago: timedelta,
    app: str = "wiki",
    method: str = "GET",
    path: str = "/",
    methods: tuple[str, ...] = ("pwd",),
    signed_in: timedelta = timedelta(minutes=10),
) -> AuditEntry:
    """A gateway decision as ``Gateway._record`` writes it (see ``Gateway._details``)."""
    ts = svc.clock.now() - ago
    return AuditEntry(
        ts=ts,
        actor=f"user:{user}",
        action=Action.DECISION_ALLOWED if allowed else Action.DECISION_DENIED,
        outcome=Outcome.ALLOW if allowed else Outcome.DENY,
        target=f"app:{app}",
        source="192.0.2.10",
        reason="allowed-by-rule" if allowed else "not-in-allowed-group",
        details={
            "method": method,
            "path": path,
            "rule": "wiki/engineers" if allowed else None,
            "detail": "",
            "request_id": "0123456789abcdef",
            "groups": sorted(groups),
            "methods": sorted(methods),
            "auth_time": (ts - signed_in).isoformat(),
        },
    )


def users(groups: object) -> list[str]:
    """The users of a replay report's newly_denied or newly_allowed list."""
    assert isinstance(groups, list)
    return [str(g["user"]) for g in groups]


def test_replay_groups_changed_decisions_per_user_and_app(svc: Services) -> None:
    apply(svc, V1)
    hour = timedelta(hours=1)
    svc.audit.append(
        [
            *(
                decision_record(
                    svc, "alice", ["engineering"], allowed=True, ago=i * hour, path=f"/p{i}"
                )
                for i in (3, 2, 1)
            ),
            decision_record(svc, "bob", ["sales"], allowed=False, ago=2 * hour),
            decision_record(svc, "bob", ["sales"], allowed=False, ago=hour),
            decision_record(svc, "erin", ["hr"], allowed=False, ago=hour),
            # Not gateway decisions of a user on an app: not replayed.
            AuditEntry(
                ts=svc.clock.now(),
                actor=ADMIN,
                action=Action.DECISION_ALLOWED,
                outcome=Outcome.ALLOW,
                target="app:wiki",
            ),
            AuditEntry(
                ts=svc.clock.now(),
                actor="user:alice",
                action=Action.LOGIN_SUCCEEDED,
                outcome=Outcome.SUCCESS,
                target="user:alice",
            ),
        ]
    )
    before = db_state(svc)

    report = svc.policy.replay(SALES_ONLY, since=timedelta(days=7))

    assert db_state(svc) == before
    out = report.to_json()
    assert (out["replayed"], out["unchanged"]) == (6, 1)
    assert out["newly_denied"] == [
        {
            "user": "alice",
            "app": "wiki",
            "requests": 3,
            "example_path": "/p3",
            "reasons": ["not-in-allowed-group"],
            "rule": None,
        }
    ]
    assert out["newly_allowed"] == [
        {
            "user": "bob",
            "app": "wiki",
            "requests": 2,
            "example_path": "/",
            "reasons": ["allowed-by-rule"],
            "rule": "wiki/sellers",
        }
    ]
    now = svc.clock.now()
    assert (report.first, report.last) == (now - 3 * hour, now - hour)
    # Replaying the policy in force changes nothing.
    same = svc.policy.replay(V1, since=timedelta(days=7))
    assert (same.replayed, same.unchanged, same.newly_denied, same.newly_allowed) == (6, 6, {}, {})


def test_replay_ignores_records_older_than_since(svc: Services) -> None:
    apply(svc, V1)
    svc.audit.append(
        [
            decision_record(svc, "alice", ["engineering"], allowed=True, ago=timedelta(days=8)),
            decision_record(svc, "bob", ["sales"], allowed=False, ago=timedelta(days=3)),
        ]
    )

    week = svc.policy.replay(SALES_ONLY, since=timedelta(days=7)).to_json()
    day = svc.policy.replay(SALES_ONLY, since=timedelta(days=1)).to_json()
    fortnight = svc.policy.replay(SALES_ONLY, since=timedelta(days=14)).to_json()

    assert (week["replayed"], week["newly_denied"], users(week["newly_allowed"])) == (
        1,
        [],
        ["bob"],
    )
    assert (day["replayed"], day["newly_allowed"], day["from"]) == (0, [], None)
    assert (fortnight["replayed"], users(fortnight["newly_denied"])) == (2, ["alice"])


def test_replay_uses_the_recorded_groups_and_sign_in_not_todays(svc: Services) -> None:
    apply(svc, V1)
    minute = timedelta(minutes=1)
    svc.audit.append(
        [
            # POSTs: one with a second factor five minutes before (20 hours ago: judged at the
            # time of the request, not now), and two with a password only.
            decision_record(
                svc,
                "alice",
                ["engineering"],
                allowed=True,
                ago=20 * 60 * minute,
                method="POST",
                methods=("otp", "pwd"),
                signed_in=5 * minute,
            ),
            decision_record(svc, "carol", ["engineering"], allowed=True, ago=minute, method="POST"),
            decision_record(
                svc, "carol", ["engineering"], allowed=True, ago=minute, method="POST", path="/edit"
            ),
        ]
    )
    # Today alice is no longer in engineering, and carol does not exist: replay does not care.
    svc.directory.set_membership("engineering", "alice", False, actor=ADMIN)

    # Recorded as allowed (before step-up was enforced): under v1 only carol's
    # password-only POSTs change; alice's second factor was 5 minutes old at the time.
    report = svc.policy.replay(V1, since=timedelta(days=1)).to_json()

    assert (report["replayed"], report["unchanged"]) == (3, 1)
    assert report["newly_denied"] == [
        {
            "user": "carol",
            "app": "wiki",
            "requests": 2,
            "example_path": "/",
            "reasons": ["mfa-required"],
            "rule": "wiki/edits-need-mfa",
        }
    ]


def test_replay_of_an_invalid_draft_names_the_place(svc: Services) -> None:
    with pytest.raises(PolicyError) as caught:
        svc.policy.replay(BAD_EFFECT, since=timedelta(days=7))
    assert (caught.value.file, caught.value.line, caught.value.column) == ("draft", 7, 17)


# The serving runtime


@contextlib.asynccontextmanager
async def running(svc: Services) -> AsyncIterator[Runtime]:
    runtime = Runtime(svc)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def decide_now(runtime: Runtime, user: str, *, method: str = "GET", path: str = "/") -> Decision:
    snapshot = runtime.snapshots.snapshot
    [principal] = [p for p in snapshot.principals.values() if p.name == user]
    request = AccessRequest(principal, "wiki", method, path, auth_methods=frozenset({"pwd"}))
    return decide(request, snapshot.policy, runtime.services.clock.now())


async def test_a_policy_applied_by_another_process_is_enforced_after_request_sync(
    svc: Services, peer: Services
) -> None:
    svc.catalog.set_rule("wiki", "sales", True, actor=ADMIN)

    async with running(svc) as runtime:
        assert decide_now(runtime, "bob").reasons == (Reason.ALLOWED_BY_GROUP,)
        assert decide_now(runtime, "alice").reasons == (Reason.NOT_IN_ALLOWED_GROUP,)
        before = runtime.snapshots.snapshot.version

        assert peer.policy.apply(V2, file="policy.yaml", actor="cli").version == 1
        answered = await asyncio.to_thread(request_sync, svc.settings.control_socket)

        # When the CLI's request returns, the server already enforces the new version.
        assert answered is True
        assert runtime.snapshots.snapshot.version > before
        alice = decide_now(runtime, "alice")
        assert (alice.effect, alice.rule_id) == (Effect.ALLOW, "wiki/engineers")
        bob = decide_now(runtime, "bob")
        assert bob.effect is Effect.ALLOW
        assert bob.shadow is not None and bob.shadow.rule_id == "trial/no-sales"
        admin = decide_now(runtime, "alice", path="/admin")
        assert (admin.reasons, admin.rule_id) == ((Reason.DENIED_BY_RULE,), "wiki/no-admin")
        post = decide_now(runtime, "alice", method="POST")
        assert (post.effect, post.reasons) == (Effect.STEP_UP, (Reason.MFA_REQUIRED,))

        # A rollback elsewhere is enforced just as fast.
        assert peer.policy.apply(SALES_ONLY, file="policy.yaml", actor="cli").version == 2
        assert await asyncio.to_thread(peer.notify_server) is True
        assert decide_now(runtime, "alice").reasons == (Reason.NOT_IN_ALLOWED_GROUP,)
        bob = decide_now(runtime, "bob")
        assert bob.effect is Effect.ALLOW and bob.shadow is None  # no report-only policy now

        assert peer.policy.rollback(1, actor="cli").version == 3
        assert await asyncio.to_thread(peer.notify_server) is True
        assert decide_now(runtime, "alice").rule_id == "wiki/engineers"


async def test_a_rejected_document_leaves_the_runtime_enforcing_the_previous_version(
    svc: Services, peer: Services
) -> None:
    apply(svc, V1)

    async with running(svc) as runtime:
        with pytest.raises(PolicyError):
            peer.policy.apply(BAD_CIDR, file="policy.yaml", actor="cli")
        assert await asyncio.to_thread(peer.notify_server) is True

        assert decide_now(runtime, "alice").rule_id == "wiki/engineers"
        assert runtime.snapshots.stale is False
