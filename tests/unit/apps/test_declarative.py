from __future__ import annotations

import textwrap

import pytest

from nevertrust.apps import ConfigFileError, parse_access_document
from nevertrust.errors import InvalidInput

VALID = textwrap.dedent(
    """\
    version: 1
    groups:
      - name: engineering
        description: People who build things
        members: [alice, bob.smith]
      - name: ops
    apps:
      - name: whoami
        upstream: http://127.0.0.1:9001/
        description: Echoes who you are
        allow:
          groups: [engineering, ops]
      - name: wiki
        upstream: https://wiki.internal:8443
    """
)


def test_parses_a_valid_document() -> None:
    doc = parse_access_document(VALID, file="access.yaml")
    assert doc.version == 1
    assert [g.name for g in doc.groups] == ["engineering", "ops"]
    assert doc.groups[0].members == ("alice", "bob.smith")
    assert doc.groups[0].description == "People who build things"
    assert doc.groups[1].members is None  # membership left alone
    assert [a.name for a in doc.apps] == ["whoami", "wiki"]
    assert doc.apps[0].upstream == "http://127.0.0.1:9001"  # trailing slash normalised
    assert doc.apps[0].allow.groups == ("engineering", "ops")
    assert doc.apps[1].allow.groups == ()  # nobody allowed until granted


def test_groups_only_and_apps_only_documents_are_valid() -> None:
    assert parse_access_document("groups:\n  - name: eng\n", file="f").apps == ()
    doc = parse_access_document("apps:\n  - name: w\n    upstream: http://a\n", file="f")
    assert doc.groups == ()


def test_error_message_leads_with_file_line_and_column() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_access_document("apps:\n  - name: Bad\n    upstream: http://a\n", file="conf/a.yaml")
    err = info.value
    assert str(err).startswith("conf/a.yaml:2:11: apps.0.name: app name 'Bad' is invalid")
    assert err.details == {"file": "conf/a.yaml", "line": 2, "column": 11}
    assert isinstance(err, InvalidInput)
    assert err.code == "invalid-config-file"


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (
            "apps:\n  - name: whoami\n    upstream: [http://x\n",
            4,
            1,
            "not valid YAML: expected ',' or ']'",
        ),
        ("apps:\n  - name: a\n   upstream: b\n", 3, 4, "not valid YAML"),
        ("apps:\n\t- name: x\n", 2, 1, "not valid YAML: found character '\\t'"),
        (
            "version: 1\napps:\n  - name: whoami\n    upstream: http://127.0.0.1:9001\n"
            "    colour: red\n",
            5,
            5,
            "apps.0.colour: Extra inputs are not permitted",
        ),
        (
            "apps:\n  - name: whoami\n    upstream: http://a\n    extra:\n      nested: 1\n",
            4,
            5,
            "apps.0.extra: Extra inputs are not permitted",
        ),
        ("colour: red\n", 1, 1, "colour: Extra inputs are not permitted"),
        (
            "apps:\n  - name: Who_Ami\n    upstream: http://127.0.0.1:9001\n",
            2,
            11,
            "apps.0.name: app name 'Who_Ami' is invalid",
        ),
        (
            "apps:\n  - name: auth\n    upstream: http://127.0.0.1:9001\n",
            2,
            11,
            "apps.0.name: app name 'auth' is reserved for the platform",
        ),
        (
            "apps:\n  - name: whoami\n    upstream: ftp://127.0.0.1:9001\n",
            3,
            15,
            "apps.0.upstream: upstream 'ftp://127.0.0.1:9001': scheme must be http or https, "
            "got 'ftp'",
        ),
        ("apps:\n  - name: whoami\n", 2, 5, "apps.0.upstream: Field required"),
        (
            "apps:\n  - name: whoami\n    upstream: http://a\n    upstream: http://b\n",
            4,
            5,
            "key 'upstream' appears twice",
        ),
        ("apps: []\ngroups: []\napps: []\n", 3, 1, "key 'apps' appears twice"),
        (
            "apps:\n  - name: whoami\n    upstream: http://a\n  - name: other\n"
            "    upstream: http://b\n  - name: whoami\n    upstream: http://c\n",
            6,
            11,
            "app 'whoami' is declared twice",
        ),
        ("groups:\n  - name: eng\n  - name: eng\n", 3, 11, "group 'eng' is declared twice"),
        (
            "groups:\n  - name: eng\n    members: [alice, Bob!]\n",
            3,
            14,
            "groups.0.members: user name 'Bob!' is invalid",
        ),
        (
            "apps:\n  - name: whoami\n    upstream: http://a\n    allow:\n"
            "      groups: [eng, 'bad group']\n",
            5,
            15,
            "apps.0.allow.groups: group name 'bad group' is invalid",
        ),
        ("version: 2\n", 1, 10, "version: Input should be 1"),
        ("", 1, 1, "the file is empty"),
        ("# only a comment\n", 1, 1, "the file is empty"),
        (
            "- apps\n- groups\n",
            1,
            1,
            "expected a mapping with 'apps:' and/or 'groups:' at the top, got list",
        ),
        ("hello\n", 1, 1, "expected a mapping with 'apps:' and/or 'groups:' at the top, got str"),
    ],
    ids=[
        "bad_yaml_unclosed_list",
        "bad_yaml_indentation",
        "bad_yaml_tab",
        "unknown_key",
        "unknown_key_with_nested_value",
        "unknown_top_level_key",
        "bad_app_name",
        "reserved_app_name",
        "bad_upstream_scheme",
        "missing_upstream",
        "duplicate_key",
        "duplicate_top_level_key",
        "app_declared_twice",
        "group_declared_twice",
        "bad_member_name",
        "bad_allowed_group_name",
        "unsupported_version",
        "empty_file",
        "comment_only_file",
        "top_level_list",
        "top_level_scalar",
    ],
)
def test_errors_point_at_file_line_and_column(
    text: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_access_document(text, file="access.yaml")
    err = info.value
    assert (err.file, err.line, err.column) == ("access.yaml", line, column)
    assert err.message.startswith(f"access.yaml:{line}:{column}: ")
    assert message in err.message


def test_whole_file_is_validated_before_returning() -> None:
    # A valid first app does not get through when a later one is wrong.
    text = "apps:\n  - name: good\n    upstream: http://a\n  - name: bad!\n    upstream: http://b\n"
    with pytest.raises(ConfigFileError) as info:
        parse_access_document(text, file="f")
    assert (info.value.line, info.value.column) == (4, 11)


def test_yaml_tags_that_build_objects_are_refused() -> None:
    with pytest.raises(ConfigFileError, match="not valid YAML"):
        parse_access_document("apps: !!python/object/apply:os.system ['true']\n", file="f")
