from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest

from nevertrust.pdp import PolicyDocument, PolicyError, json_schema, parse_policy_document

VALID = """\
version: 1
policies:
  - name: engineering
    description: Engineers reach internal tools from managed laptops.
    apps: [grafana, wiki]
    rules:
      - name: engineers
        effect: allow
        when:
          groups: [eng]
          users: [alice, bob.smith]
          roles: [admin]
          auth_methods: [pwd, webauthn]
          mfa_max_age: 15m
          device: {compliant: true, managed: true, platform: [macos, linux],
                   posture: {disk_encrypted: true, os_major: 14}}
          source: {cidr: [10.0.0.0/8, "2001:db8::/32"], not_cidr: [10.9.0.0/16],
                   country: [DE, FR]}
          time: {days: [mon-fri, sun], hours: "08:00-18:00", timezone: Europe/Berlin}
          risk_max: medium
          http: {methods: [GET, HEAD], paths: ["/api/*", "/?"]}
      - name: no-contractors
        effect: deny
        when: {groups: [contractors]}
      - name: admin-needs-mfa
        effect: step-up
        step_up: {methods: [webauthn], max_age: 300}
        when: {http: {paths: ["/admin/*"]}}
      - name: laptops
        effect: require-device
  - name: prod
    mode: report-only
    app_labels: {tier: prod}
    rules:
      - {name: everyone, effect: allow}
  - name: parked
    mode: disabled
    apps: ["*"]
    rules:
      - {name: nobody, effect: deny}
"""


def test_parses_a_document_using_every_condition() -> None:
    document = parse_policy_document(VALID, file="policies.yaml")
    assert isinstance(document, PolicyDocument)
    assert [p.name for p in document.policies] == ["engineering", "prod", "parked"]
    assert [p.mode for p in document.policies] == ["enforce", "report-only", "disabled"]
    engineers = document.policies[0].rules[0]
    assert engineers.when.groups == ["eng"]
    assert engineers.when.users == ["alice", "bob.smith"]
    assert engineers.when.device is not None and engineers.when.device.posture == {
        "disk_encrypted": True,
        "os_major": 14,
    }
    assert engineers.when.source is not None and engineers.when.source.cidr == [
        "10.0.0.0/8",
        "2001:db8::/32",
    ]
    assert engineers.when.time is not None and engineers.when.time.timezone == "Europe/Berlin"
    step_up = document.policies[0].rules[2].step_up
    assert step_up is not None and step_up.max_age_seconds == 300
    assert document.policies[1].app_labels == {"tier": "prod"}


@pytest.mark.parametrize(
    "text",
    [
        "policies: []\n",
        "version: 1\n",
        "policies:\n  - {name: p, apps: ['*'], rules: [{name: r, effect: allow}]}\n",
        "policies:\n  - {name: p, app_labels: {team: ops}, rules: [{name: r, effect: deny}]}\n",
        "policies:\n  - {name: p, apps: [a], rules: [{name: r, effect: step-up, step_up: {}}]}\n",
        "policies:\n  - name: p\n    apps: [a]\n    rules:\n      - {name: r, effect: allow, "
        "when: {time: {hours: '22:00-06:00'}}}\n",
    ],
    ids=["no-policies", "version-only", "every-app", "by-label", "step-up-defaults", "wrap-hours"],
)
def test_accepts_minimal_valid_documents(text: str) -> None:
    assert isinstance(parse_policy_document(text, file="p.yaml"), PolicyDocument)


def test_step_up_defaults_to_otp_or_webauthn_within_15_minutes() -> None:
    document = parse_policy_document(
        "policies:\n  - {name: p, apps: [a], rules: [{name: r, effect: step-up, step_up: {}}]}\n",
        file="p.yaml",
    )
    spec = document.policies[0].rules[0].step_up
    assert spec is not None
    assert spec.methods == ["otp", "webauthn"]
    assert spec.max_age_seconds == 900


HEAD = "policies:\n  - name: p\n    apps: [whoami]\n    rules:\n"


def rule(*lines: str) -> str:
    """A document whose one rule starts on line 5 with the given lines (8-space indent)."""
    return HEAD + "      - name: r\n" + "".join(f"        {line}\n" for line in lines)


# (text, line, column, words the message must contain)
ERRORS: dict[str, tuple[str, int, int, str]] = {
    "bad-yaml": ("policies:\n  - name: [oops\n", 3, 1, "not valid YAML"),
    "bad-yaml-indent": ("policies:\n  - name: p\n   apps: x\n", 3, 4, "not valid YAML"),
    "unknown-key-in-policy": (
        HEAD.replace("    rules:\n", "    colour: red\n    rules:\n")
        + "      - {name: r, effect: allow}\n",
        4,
        5,
        "policies.0.colour: Extra inputs are not permitted",
    ),
    "unknown-condition": (
        rule("effect: allow", "when:", "  group: [eng]"),
        8,
        11,
        "policies.0.rules.0.when.group: Extra inputs are not permitted",
    ),
    "bad-effect": (
        rule("effect: permit"),
        6,
        17,
        "policies.0.rules.0.effect: Input should be 'allow', 'deny', 'step-up' or",
    ),
    "step-up-on-allow": (
        rule("effect: allow", "step_up: {methods: [otp]}"),
        5,
        9,
        "policies.0.rules.0: step_up is only allowed on rules with effect: step-up",
    ),
    "bad-cidr": (
        rule("effect: allow", "when:", "  source:", "    cidr: [10.0.0.0/8, 10.0.0.0/33]"),
        9,
        19,
        "source.cidr: '10.0.0.0/33' is not an IP network like 10.0.0.0/8",
    ),
    "bad-not-cidr-block-list": (
        rule(
            "effect: allow",
            "when:",
            "  source:",
            "    not_cidr:",
            "      - 10.0.0.0/8",
            "      - x",
        ),
        10,
        15,
        "source.not_cidr: 'x' is not an IP network",
    ),
    "bad-country": (
        rule("effect: allow", "when: {source: {country: [DE, de]}}"),
        7,
        34,
        "source.country: 'de' is not a two-letter upper-case country code",
    ),
    "bad-day": (
        rule("effect: allow", "when: {time: {days: [mon, funday]}}"),
        7,
        29,
        "time.days: 'funday': expected mon..sun or a range like mon-fri",
    ),
    "day-range-of-three": (
        rule("effect: allow", "when: {time: {days: [mon-tue-wed]}}"),
        7,
        29,
        "time.days: 'mon-tue-wed': expected mon..sun or a range",
    ),
    "bad-hours": (
        rule("effect: allow", "when: {time: {hours: '8-18'}}"),
        7,
        30,
        "time.hours: '8-18': expected HH:MM-HH:MM, e.g. 08:00-18:00",
    ),
    "hours-past-24": (
        rule("effect: allow", "when: {time: {hours: '08:00-25:00'}}"),
        7,
        30,
        "expected HH:MM-HH:MM",
    ),
    "unknown-time-zone": (
        rule("effect: allow", "when: {time: {timezone: Mars/Olympus}}"),
        7,
        33,
        "time.timezone: unknown time zone 'Mars/Olympus'",
    ),
    "bad-mfa-age": (
        rule("effect: allow", "when: {mfa_max_age: 15x}"),
        7,
        29,
        "when.mfa_max_age: expected a duration like 90s, 15m, 2h or 1d, got '15x'",
    ),
    "bad-step-up-age": (
        rule("effect: step-up", "step_up: {max_age: soon}"),
        7,
        28,
        "step_up.max_age: expected a duration like 90s, 15m, 2h or 1d, got 'soon'",
    ),
    "duplicate-policy-name": (
        "policies:\n"
        "  - name: p\n    apps: [a]\n    rules: [{name: r, effect: allow}]\n"
        "  - name: p\n    apps: [b]\n    rules: [{name: r, effect: allow}]\n",
        5,
        11,
        "policies.1.name: policy 'p' appears twice",
    ),
    "duplicate-rule-name": (
        rule("effect: allow") + "      - name: r\n        effect: deny\n",
        2,
        5,
        "policies.0: rule 'r' appears twice in policy 'p'",
    ),
    "policy-without-targets": (
        "policies:\n  - name: p\n    rules:\n      - {name: r, effect: allow}\n",
        2,
        5,
        "policies.0: a policy needs 'apps' (names or ['*']) or 'app_labels'",
    ),
    "empty-app-labels": (
        "policies:\n  - name: p\n    app_labels: {}\n    rules: [{name: r, effect: allow}]\n",
        3,
        17,
        "policies.0.app_labels: Dictionary should have at least 1 item",
    ),
    "bad-app-name": (
        "policies:\n  - name: p\n    apps: ['*', Whoami]\n    rules: [{name: r, effect: allow}]\n",
        2,
        5,
        "policies.0: app name 'Whoami' is invalid",
    ),
    "bad-http-method": (
        rule("effect: allow", "when: {http: {methods: [GET, get]}}"),
        7,
        32,
        "http.methods: 'get' is not an HTTP method in upper case",
    ),
    "relative-path": (
        rule("effect: allow", "when: {http: {paths: [admin/*]}}"),
        7,
        30,
        "http.paths: path pattern 'admin/*' must start with '/'",
    ),
    "bad-auth-method": (
        rule("effect: allow", "when: {auth_methods: [pwd, sms]}"),
        7,
        30,
        "when.auth_methods: 'sms' is not one of ['hwk', 'mfa', 'mtls', 'otp', 'pwd',",
    ),
    "bad-step-up-method": (
        rule("effect: step-up", "step_up: {methods: [sms]}"),
        7,
        28,
        "step_up.methods: 'sms' is not one of",
    ),
    "bad-group-name": (
        rule("effect: allow", "when: {groups: [eng, Ops]}"),
        7,
        24,
        "when.groups: group name 'Ops' is invalid",
    ),
    "bad-platform": (
        rule("effect: allow", "when: {device: {platform: [beos]}}"),
        7,
        36,
        "device.platform.0: Input should be 'linux', 'macos'",
    ),
    "bad-risk": (
        rule("effect: allow", "when: {risk_max: severe}"),
        7,
        26,
        "when.risk_max: Input should be 'low', 'medium', 'high' or 'critical'",
    ),
    "duplicate-yaml-key": (
        rule("effect: allow", "effect: deny"),
        7,
        9,
        "key 'effect' appears twice",
    ),
    "yaml-boolean-as-name": (
        "policies:\n  - name: off\n    apps: [a]\n    rules: [{name: r, effect: allow}]\n",
        2,
        11,
        "policies.0.name: Input should be a valid string",
    ),
    "no-rules": (
        "policies:\n  - name: p\n    apps: [a]\n    rules: []\n",
        4,
        12,
        "policies.0.rules: List should have at least 1 item",
    ),
    "wrong-version": ("version: 2\npolicies: []\n", 1, 10, "version: Input should be 1"),
    "empty-document": ("", 1, 1, "the file is empty: expected 'policies:'"),
    "only-a-comment": ("# nothing yet\n", 1, 1, "the file is empty: expected 'policies:'"),
    "top-level-list": ("- a\n", 1, 1, "expected a mapping with 'policies:' at the top, got list"),
}


@pytest.mark.parametrize(("text", "line", "column", "words"), ERRORS.values(), ids=ERRORS.keys())
def test_errors_name_file_line_and_column(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy_document(text, file="policies/main.yaml")
    error = caught.value
    assert (error.file, error.line, error.column) == ("policies/main.yaml", line, column)
    assert str(error).startswith(f"policies/main.yaml:{line}:{column}: ")
    assert words in str(error)
    assert error.code == "invalid-policy"


# What the reported position points at, for the cases above that have one. An error about
# one item of a list points at the list; one about a whole rule or policy (step_up on the
# wrong effect, a rule name used twice, a bad app name) at the rule's or policy's first key.
POINTS_AT = {
    "bad-yaml-indent": "apps: x",
    "unknown-key-in-policy": "colour:",
    "unknown-condition": "group:",
    "bad-effect": "permit",
    "step-up-on-allow": "name: r",
    "bad-cidr": "[10.0.0.0/8, 10.0.0.0/33]",
    "bad-not-cidr-block-list": "- 10.0.0.0/8",
    "bad-country": "[DE, de]",
    "bad-day": "[mon, funday]",
    "day-range-of-three": "[mon-tue-wed]",
    "bad-hours": "'8-18'",
    "hours-past-24": "'08:00-25:00'",
    "unknown-time-zone": "Mars/Olympus",
    "bad-mfa-age": "15x",
    "bad-step-up-age": "soon",
    "duplicate-policy-name": "p",
    "duplicate-rule-name": "name: p",
    "policy-without-targets": "name: p",
    "empty-app-labels": "{}",
    "bad-app-name": "name: p",
    "bad-http-method": "[GET, get]",
    "relative-path": "[admin/*]",
    "bad-auth-method": "[pwd, sms]",
    "bad-step-up-method": "[sms]",
    "bad-group-name": "[eng, Ops]",
    "bad-platform": "beos",
    "bad-risk": "severe",
    "duplicate-yaml-key": "effect: deny",
    "yaml-boolean-as-name": "off",
    "no-rules": "[]",
    "wrong-version": "2",
    "top-level-list": "- a",
}


@pytest.mark.parametrize(("case", "token"), POINTS_AT.items(), ids=POINTS_AT.keys())
def test_error_position_lands_on_the_offending_text(case: str, token: str) -> None:
    text = ERRORS[case][0]
    with pytest.raises(PolicyError) as caught:
        parse_policy_document(text, file="p.yaml")
    line = text.splitlines()[caught.value.line - 1]
    assert line[caught.value.column - 1 :].startswith(token)


def test_duplicate_names_are_also_rejected_without_yaml() -> None:
    # The model checks names too (for documents built from data, not text).
    rule = {"name": "r", "effect": "allow"}
    policy: dict[str, Any] = {"name": "p", "apps": ["a"], "rules": [rule]}
    with pytest.raises(ValueError, match="policy 'p' appears twice"):
        PolicyDocument.model_validate({"policies": [policy, policy]})
    twice = {**policy, "rules": [rule, rule]}
    with pytest.raises(ValueError, match="rule 'r' appears twice in policy 'p'"):
        PolicyDocument.model_validate({"policies": [twice]})


def test_json_schema_describes_the_document() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "NeverTrust policy document"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"version", "policies"}
    defs = schema["$defs"]
    assert {"Policy", "Rule", "When", "StepUpSpec", "TimeCondition"} <= set(defs)
    assert defs["Rule"]["properties"]["effect"]["enum"] == [
        "allow",
        "deny",
        "step-up",
        "require-device",
    ]
    assert set(defs["When"]["properties"]) == {
        "users",
        "groups",
        "roles",
        "auth_methods",
        "mfa_max_age",
        "device",
        "source",
        "time",
        "risk_max",
        "http",
    }
    json.dumps(schema)  # plain JSON all the way down


def _good_and_bad() -> tuple[list[Any], list[Any]]:
    good = [
        {"policies": []},
        {"policies": [{"name": "p", "apps": ["*"], "rules": [{"name": "r", "effect": "allow"}]}]},
    ]
    bad = [
        {"policies": [{"name": "p", "apps": ["*"], "rules": [{"name": "r", "effect": "permit"}]}]},
        {"policies": [], "extra": 1},
        {"version": 2},
    ]
    return good, bad


@pytest.mark.skipif(
    importlib.util.find_spec("jsonschema") is None, reason="jsonschema is not installed"
)
def test_json_schema_accepts_good_and_rejects_bad_snippets() -> None:
    import jsonschema  # type: ignore[import-untyped, unused-ignore]

    validator = jsonschema.Draft202012Validator(json_schema())
    good, bad = _good_and_bad()
    for snippet in good:
        assert validator.is_valid(snippet), snippet
    for snippet in bad:
        assert not validator.is_valid(snippet), snippet


def test_good_and_bad_snippets_agree_with_the_parser() -> None:
    # The same snippets the schema is checked with, through the model: keeps them honest.
    good, bad = _good_and_bad()
    for snippet in good:
        PolicyDocument.model_validate(snippet)
    for snippet in bad:
        with pytest.raises(ValueError):
            PolicyDocument.model_validate(snippet)


def test_rejects_hours_with_equal_start_and_end() -> None:
    from nevertrust.pdp import PolicyError, parse_policy_document

    text = (
        "policies:\n  - name: p\n    apps: [a]\n    rules:\n      - name: r\n"
        "        effect: allow\n        when:\n          time: {hours: '09:00-09:00'}\n"
    )
    with pytest.raises(PolicyError, match="start and end are equal"):
        parse_policy_document(text, file="p.yaml")
