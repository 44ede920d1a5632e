"""The declarative access file read by ``nevertrust apply -f FILE``.

Errors point at the place in the file (line and column, 1-based) so a user can fix it
without guessing. The whole file is validated before anything is written.

    version: 1
    groups:
      - name: engineering
        members: [alice, bob]      # optional; when given, the exact membership
    apps:
      - name: whoami
        upstream: http://127.0.0.1:9001
        allow:
          groups: [engineering]    # the exact set of groups allowed
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nevertrust.apps.errors import ConfigFileError
from nevertrust.apps.upstreams import validate_upstream
from nevertrust.domain.names import validate_name
from nevertrust.errors import InvalidInput

__all__ = ["AccessDocument", "AppSpec", "GroupSpec", "parse_access_document"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _name(kind: str, value: str) -> str:
    try:
        return validate_name(kind, value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from exc


class GroupSpec(_Strict):
    name: str
    description: str = Field(default="", max_length=500)
    members: tuple[str, ...] | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _name("group", value)

    @field_validator("members")
    @classmethod
    def _valid_members(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            for member in value:
                _name("user", member)
        return value


class AllowSpec(_Strict):
    groups: tuple[str, ...] = ()

    @field_validator("groups")
    @classmethod
    def _valid_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for group in value:
            _name("group", group)
        return value


class AppSpec(_Strict):
    name: str
    upstream: str
    description: str = Field(default="", max_length=500)
    allow: AllowSpec = Field(default_factory=AllowSpec)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _name("app", value)

    @field_validator("upstream")
    @classmethod
    def _valid_upstream(cls, value: str) -> str:
        try:
            return validate_upstream(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from exc


class AccessDocument(_Strict):
    version: Literal[1] = 1
    groups: tuple[GroupSpec, ...] = ()
    apps: tuple[AppSpec, ...] = ()


def _node_at(root: yaml.Node, loc: tuple[int | str, ...], *, key: bool = False) -> yaml.Node:
    """The deepest node along ``loc`` that exists in the YAML tree.

    With ``key``, the last step stops at the mapping key rather than its value: an unknown
    key is wrong where the key is written, and its value may start on another line.
    """
    node = root
    for index, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    node = key_node if key and index == len(loc) - 1 else value_node
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _check_duplicate_keys(node: yaml.Node, file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                mark = key_node.start_mark
                raise ConfigFileError(
                    f"key {key_node.value!r} appears twice",
                    file=file,
                    line=mark.line + 1,
                    column=mark.column + 1,
                )
            seen.add(key_node.value)
            _check_duplicate_keys(value_node, file)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, file)


def _check_unique(doc: AccessDocument, root: yaml.Node, file: str) -> None:
    sections: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("groups", tuple(g.name for g in doc.groups)),
        ("apps", tuple(a.name for a in doc.apps)),
    )
    for section, names in sections:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                mark = _node_at(root, (section, index, "name")).start_mark
                raise ConfigFileError(
                    f"{section[:-1]} {name!r} is declared twice",
                    file=file,
                    line=mark.line + 1,
                    column=mark.column + 1,
                )
            seen.add(name)


def parse_access_document(text: str, *, file: str) -> AccessDocument:
    """Parse and validate a whole document or raise ``ConfigFileError`` naming the place."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigFileError(
            f"not valid YAML: {exc.problem}", file=file, line=line, column=column
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"not valid YAML: {exc}", file=file, line=1, column=1) from exc
    if root is None or data is None:
        raise ConfigFileError(
            "the file is empty: expected 'apps:' and/or 'groups:'", file=file, line=1, column=1
        )
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"expected a mapping with 'apps' and 'groups' at the top, got {type(data).__name__}",
            file=file,
            line=1,
            column=1,
        )
    _check_duplicate_keys(root, file)
    try:
        doc = AccessDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        mark = _node_at(root, loc, key=first["type"] == "extra_forbidden").start_mark
        where = ".".join(str(p) for p in loc) or "document"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigFileError(
            f"{where}: {message}", file=file, line=mark.line + 1, column=mark.column + 1
        ) from exc
    _check_unique(doc, root, file)
    return doc


def node_mark(text: str, loc: tuple[int | str, ...]) -> tuple[int, int]:
    """Line and column (1-based) of ``loc`` in ``text``; for errors found after parsing."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return 1, 1
    mark = _node_at(root, loc).start_mark
    return mark.line + 1, mark.column + 1
