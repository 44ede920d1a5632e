"""`require_compliant_device` in the access file: every listed group, or the ones named."""

from __future__ import annotations

import textwrap

import pytest

from nevertrust.apps import ConfigFileError, parse_access_document


def doc(allow: str) -> str:
    return textwrap.dedent(
        """\
        apps:
          - name: wiki
            upstream: http://127.0.0.1:9001
            allow:
        """
    ) + textwrap.indent(textwrap.dedent(allow), " " * 6)


def needs(text: str) -> dict[str, bool]:
    allow = parse_access_document(text, file="access.yaml").apps[0].allow
    return {group: allow.needs_device(group) for group in allow.groups}


def test_true_requires_a_compliant_device_for_every_listed_group() -> None:
    text = doc("groups: [eng, ops]\nrequire_compliant_device: true\n")
    assert needs(text) == {"eng": True, "ops": True}


def test_a_list_requires_it_for_the_named_groups_only() -> None:
    text = doc("groups: [eng, contractors]\nrequire_compliant_device: [contractors]\n")
    assert needs(text) == {"eng": False, "contractors": True}


def test_absent_or_false_requires_nothing() -> None:
    assert needs(doc("groups: [eng]\n")) == {"eng": False}
    assert needs(doc("groups: [eng]\nrequire_compliant_device: false\n")) == {"eng": False}


def test_naming_a_group_that_is_not_allowed_is_an_error_with_its_place() -> None:
    text = doc("groups: [eng]\nrequire_compliant_device: [ops]\n")
    with pytest.raises(ConfigFileError) as info:
        parse_access_document(text, file="access.yaml")
    assert "require_compliant_device names group 'ops'" in info.value.message
    assert (info.value.line, info.value.column) == (5, 7)  # the allow block


def test_a_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigFileError, match="require_compliant_device"):
        parse_access_document(doc("groups: [eng]\nrequire_compliant_device: sometimes\n"), file="a")
