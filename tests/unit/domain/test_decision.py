from __future__ import annotations

import pytest

from nevertrust.domain import Decision, Effect, Reason, RuleTrace, StepUp
from nevertrust.domain.decision import explain


def test_reason_codes_are_stable_kebab_case() -> None:
    assert {r.value for r in Reason} == {
        "allowed-by-group",
        "allowed-by-rule",
        "denied-by-rule",
        "no-matching-rule",
        "user-unauthenticated",
        "user-disabled",
        "unknown-app",
        "not-in-allowed-group",
        "no-rule-for-app",
        "mfa-required",
        "mfa-stale",
        "device-unknown",
        "device-noncompliant",
        "internal-error",
    }


def test_effect_codes_are_stable_kebab_case() -> None:
    assert [e.value for e in Effect] == ["allow", "deny", "step-up", "require-device"]


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_a_readable_explanation(reason: Reason) -> None:
    sentence = explain(reason)
    assert sentence[0].isupper()
    assert sentence.endswith(".")
    assert str(reason) not in sentence


def test_explanations_are_distinct() -> None:
    sentences = [explain(r) for r in Reason]
    assert len(set(sentences)) == len(sentences)


def test_allow_carries_rule_id_reason_and_explanation() -> None:
    decision = Decision.allow(Reason.ALLOWED_BY_GROUP, rule_id="r-1", detail="member of 'eng'")
    assert decision.allowed
    assert decision.effect is Effect.ALLOW
    assert decision.reasons == (Reason.ALLOWED_BY_GROUP,)
    assert decision.rule_id == "r-1"
    assert decision.detail == "member of 'eng'"
    assert decision.explanations == (explain(Reason.ALLOWED_BY_GROUP),)
    assert decision.report_only is False


def test_deny_is_not_allowed_and_explains_itself() -> None:
    decision = Decision.deny(Reason.USER_DISABLED)
    assert not decision.allowed
    assert decision.effect is Effect.DENY
    assert decision.reasons == (Reason.USER_DISABLED,)
    assert decision.rule_id is None
    assert decision.explanations == ("Your account is disabled.",)


@pytest.mark.parametrize("effect", [Effect.STEP_UP, Effect.REQUIRE_DEVICE])
def test_step_up_and_require_device_are_not_allowed(effect: Effect) -> None:
    decision = Decision.deny(Reason.MFA_REQUIRED, rule_id="p/r", effect=effect)
    assert decision.effect is effect
    assert not decision.allowed
    assert decision.rule_id == "p/r"


def test_step_up_decision_says_what_it_asks_for() -> None:
    need = StepUp(frozenset({"otp", "webauthn"}), 900)
    decision = Decision.deny(Reason.MFA_STALE, rule_id="p/r", effect=Effect.STEP_UP, step_up=need)
    assert decision.step_up == need
    assert decision.explanations == (explain(Reason.MFA_STALE),)


def test_with_shadow_keeps_everything_else() -> None:
    trace = (RuleTrace("p/r", "allow", False, "groups", "needs a member of ['eng']"),)
    enforced = Decision.deny(Reason.NO_MATCHING_RULE, detail="d", trace=trace)
    shadow = Decision.allow(Reason.ALLOWED_BY_RULE, rule_id="ro/r")
    both = enforced.with_shadow(shadow)
    assert both == enforced  # the shadow does not take part in equality
    assert both.shadow is shadow
    assert both.trace == trace
    assert both.explanations == enforced.explanations
    assert enforced.shadow is None


def test_decisions_compare_by_value_not_by_explanation_text() -> None:
    plain = Decision(Effect.DENY, (Reason.UNKNOWN_APP,), detail="x")
    assert plain == Decision.deny(Reason.UNKNOWN_APP, detail="x")
    assert plain != Decision.deny(Reason.UNKNOWN_APP, detail="y")


def test_decision_is_immutable() -> None:
    decision = Decision.deny(Reason.UNKNOWN_APP)
    with pytest.raises(AttributeError):
        decision.effect = Effect.ALLOW  # type: ignore[misc]
